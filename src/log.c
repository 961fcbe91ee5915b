/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Transcript, log file and syslog; see log.h.  Bytes from the server are
 * escaped before they reach a terminal or a log line.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "util.h"

static void put_escaped(FILE *f, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            putc(c, f);
    }
}

void log_trace(void *arg, enum smtp_trace_dir dir, const char *line, size_t len)
{
    const struct log *l = arg;
    static const char *const prefix[] = {"--> ", "<-- ", "mailcar: ", "mailcar: warning: "};
    FILE *f = dir == SMTP_TRACE_WARN ? l->warnings : l->transcript;

    if (f == NULL)
        return;
    fputs(prefix[dir], f);
    put_escaped(f, line, len);
    putc('\n', f);
}

static const struct {
    const char *name;
    int facility;
} facilities[] = {
    {"LOG_MAIL", LOG_MAIL}, {"LOG_USER", LOG_USER}, {"LOG_DAEMON", LOG_DAEMON},
    {"LOG_LOCAL0", LOG_LOCAL0}, {"LOG_LOCAL1", LOG_LOCAL1}, {"LOG_LOCAL2", LOG_LOCAL2},
    {"LOG_LOCAL3", LOG_LOCAL3}, {"LOG_LOCAL4", LOG_LOCAL4}, {"LOG_LOCAL5", LOG_LOCAL5},
    {"LOG_LOCAL6", LOG_LOCAL6}, {"LOG_LOCAL7", LOG_LOCAL7},
};

int log_facility(const char *value, int *out, struct mc_err *err)
{
    if (value == NULL || mc_streq_ci(value, "off") || mc_streq_ci(value, "no")) {
        *out = -1;
        return 0;
    }
    if (value[0] == '\0' || mc_streq_ci(value, "on") || mc_streq_ci(value, "yes")) {
        *out = LOG_MAIL;
        return 0;
    }
    for (size_t i = 0; i < sizeof facilities / sizeof facilities[0]; i++) {
        if (mc_streq_ci(value, facilities[i].name) || mc_streq_ci(value, facilities[i].name + 4)) {
            *out = facilities[i].facility;
            return 0;
        }
    }
    return mc_err_set(err, MC_CONFIG, "bad syslog value '%s': use on, off or LOG_MAIL, LOG_USER, "
                      "LOG_LOCAL0..7", value);
}

/* key=value pairs; values with spaces or quotes are quoted so the line stays parseable. */
static void add_field(struct buf *b, const char *key, const char *val)
{
    if (val == NULL || *val == '\0')
        return;
    buf_printf(b, "%s%s=", b->len ? " " : "", key);
    if (strpbrk(val, " \"\\") == NULL && !mc_has_ctl(val)) {
        buf_addstr(b, val);
        return;
    }
    buf_addch(b, '"');
    for (const char *p = val; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            buf_printf(b, "\\x%02x", c);
        else
            buf_addch(b, (char)c);
    }
    buf_addch(b, '"');
}

static void format_entry(struct buf *b, const struct log_entry *e)
{
    char num[32];

    add_field(b, "host", e->host);
    add_field(b, "tls", e->tls);
    add_field(b, "auth", e->auth);
    add_field(b, "user", e->user);
    add_field(b, "from", e->from);
    add_field(b, "recipients", e->rcpts);
    add_field(b, "refused", e->refused);
    snprintf(num, sizeof num, "%lld", e->size);
    add_field(b, "size", num);
    add_field(b, "msgid", e->msgid);
    snprintf(num, sizeof num, "%lldms", e->duration_ms);
    add_field(b, "duration", num);
    add_field(b, "reply", e->result);
    snprintf(num, sizeof num, "%d", e->status);
    add_field(b, "exitcode", num);
}

static int append_line(const char *path, const struct buf *line, struct mc_err *err)
{
    char stamp[40];
    time_t now = time(NULL);
    struct tm tm;
    struct buf out;
    int fd, r = 0;

    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S%z", &tm);
    buf_init(&out, BUF_NOLIMIT);
    buf_printf(&out, "%s %s\n", stamp, line->data);
    /* "-" is standard output, as in msmtp. */
    fd = strcmp(path, "-") == 0 ? dup(1)
                                : open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    /* One write with O_APPEND: concurrent mailcars never interleave within a line. */
    if (fd < 0 || write(fd, out.data, out.len) != (ssize_t)out.len)
        r = mc_err_set(err, MC_IOERR, "cannot write log file '%s': %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    buf_release(&out);
    return r;
}

int log_attempt(const struct log *l, const struct log_entry *e, struct mc_err *err)
{
    struct buf line;
    int r = 0;

    if (l->logfile == NULL && l->syslog_facility < 0)
        return 0;
    buf_init(&line, BUF_NOLIMIT);
    format_entry(&line, e);
    if (l->syslog_facility >= 0) {
        openlog("mailcar", LOG_PID, l->syslog_facility);
        syslog(e->status == 0 ? LOG_INFO : LOG_ERR, "%s", line.data);
        closelog();
    }
    if (l->logfile)
        r = append_line(l->logfile, &line, err);
    buf_release(&line);
    return r;
}
