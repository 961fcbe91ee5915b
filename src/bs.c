/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The -bs server; see bs.h.  It speaks the server side of RFC 5321 with
 * PIPELINING (replies are buffered and written when no more input is
 * waiting), 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES.  The message is
 * collected, dot-unstuffed, into an unlinked temporary file; then a forked
 * child runs the ordinary send path with the envelope given here and
 * partial delivery off, so the one DATA reply is true for every recipient:
 * all got it (or it was queued), or none did.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "bs.h"
#include "buf.h"
#include "send.h"
#include "util.h"

#define BS_LINE_MAX 4096          /* command lines; RFC 5321 asks for 512 */
#define BS_MAX_RCPTS 1000

struct bs {
    const struct cli *o;
    int in, out;
    struct buf inbuf;
    struct buf outbuf;
    bool greeted;
    char *from;                   /* NULL until MAIL */
    struct strlist rcpts;
    char helo[256];
};

static int flush_out(struct bs *b, struct mc_err *err)
{
    size_t off = 0;

    while (off < b->outbuf.len) {
        ssize_t n = write(b->out, b->outbuf.data + off, b->outbuf.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return mc_err_set(err, MC_IOERR, "-bs: writing a reply: %s", strerror(errno));
        off += (size_t)n;
    }
    buf_reset(&b->outbuf);
    return 0;
}

static void reply(struct bs *b, const char *text)
{
    buf_addstr(&b->outbuf, text);
    buf_addstr(&b->outbuf, "\r\n");
}

/* More input already waiting means the client pipelines: keep replies for one write. */
static bool input_waiting(struct bs *b)
{
    struct pollfd p = {.fd = b->in, .events = POLLIN};

    return b->inbuf.len > 0 || poll(&p, 1, 0) > 0;
}

/* One line without its CRLF into *line (pointing into inbuf); 0 at end of input. */
static int read_line(struct bs *b, size_t *len, struct mc_err *err)
{
    char tmp[8192];
    char *nl;

    while ((nl = memchr(b->inbuf.data, '\n', b->inbuf.len)) == NULL) {
        ssize_t n;
        if (!input_waiting(b) && flush_out(b, err) < 0)
            return -1;
        n = read(b->in, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return mc_err_set(err, MC_IOERR, "-bs: reading: %s", strerror(errno));
        if (n == 0)
            return 0;
        if (buf_add(&b->inbuf, tmp, (size_t)n) < 0)
            return mc_err_set(err, MC_OSERR, "out of memory");
    }
    *len = (size_t)(nl - b->inbuf.data);
    return 1;
}

static void consume(struct bs *b, size_t len)
{
    buf_consume(&b->inbuf, len + 1);
}

static void reset_envelope(struct bs *b)
{
    free(b->from);
    b->from = NULL;
    strlist_free(&b->rcpts);
}

/* "MAIL FROM:<a@b> BODY=8BITMIME" -> "a@b"; NULL when malformed. */
static char *path_arg(const char *line, const char *verb)
{
    size_t vl = strlen(verb);
    const char *p, *close;

    if (strncasecmp(line, verb, vl) != 0)
        return NULL;
    p = line + vl;
    while (*p == ' ')
        p++;
    if (*p != '<' || (close = strchr(p, '>')) == NULL)
        return NULL;
    return mc_strndup(p + 1, (size_t)(close - p - 1));
}

const char *bs_reply_for_status(int status)
{
    switch (status) {
    case 0: return "250 2.0.0 message accepted for delivery";
    case EX_TEMPFAIL: return "451 4.3.0 temporary failure, try again later";
    case EX_NOUSER: return "550 5.1.1 recipient refused, nothing was sent";
    case EX_DATAERR: return "554 5.6.0 message refused";
    case EX_UNAVAILABLE: return "554 5.0.0 refused by the relay";
    case EX_USAGE: return "501 5.5.4 envelope refused";
    case EX_NOHOST: return "451 4.4.0 relay host not found";
    case EX_NOPERM: return "451 4.7.0 authentication with the relay failed";
    case EX_CONFIG: return "451 4.3.5 mailcar is not configured correctly";
    case EX_PROTOCOL: return "451 4.5.0 the relay broke the protocol";
    default: return "451 4.3.0 local error";
    }
}

/* The child: the ordinary send path with this envelope and the message in fd. */
static void child_send(struct bs *b, int msgfd, int errpipe)
{
    struct cli c = *b->o;
    char input[64];
    struct mc_err err = {0};
    int null = open("/dev/null", O_RDWR), rc;

    /* The SMTP stream belongs to the parent. */
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(errpipe, 2) < 0)
        _exit(EX_OSERR);
    snprintf(input, sizeof input, "/dev/fd/%d", msgfd);
    c.mode = MODE_SEND;
    c.extract = false;
    c.dot_ends = false;
    c.from = b->from[0] ? b->from : "<>";
    c.rcpts = b->rcpts;
    memset(&c.inputs, 0, sizeof c.inputs);
    strlist_add(&c.inputs, input);
    account_set(&c.set, "partial_delivery", "off", "-bs", 0);
    rc = send_run(&c, stdout, stderr, &err);
    if (rc < 0)
        fprintf(stderr, "mailcar: %s\n", err.msg);
    fflush(stderr);
    _exit(rc < 0 ? mc_class_exit(err.cls) : 0);
}

/* The child's last stderr line, made safe for a reply text. */
static void last_line(const char *text, char *out, size_t outlen)
{
    const char *end = text + strlen(text), *start;
    size_t n = 0;

    while (end > text && (end[-1] == '\n' || end[-1] == '\r'))
        end--;
    start = end;
    while (start > text && start[-1] != '\n')
        start--;
    if (strncmp(start, "mailcar: ", 9) == 0)
        start += 9;
    for (const char *p = start; p < end && n + 1 < outlen; p++)
        out[n++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    out[n] = '\0';
}

static int deliver(struct bs *b, int msgfd, struct mc_err *err)
{
    char text[4096] = "", why[400], line[600];
    int pfd[2], status = 0;
    size_t got = 0;
    pid_t pid;
    ssize_t n;

    if (pipe(pfd) < 0)
        return mc_err_set(err, MC_OSERR, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return mc_err_set(err, MC_OSERR, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(pfd[0]);
        child_send(b, msgfd, pfd[1]);
    }
    close(pfd[1]);
    while ((n = read(pfd[0], text + got, sizeof text - 1 - got)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        got += (size_t)n;
        if (got == sizeof text - 1)   /* keep only the tail: the last line matters */
            got = 0;
    }
    text[got] = '\0';
    close(pfd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    status = WIFEXITED(status) ? WEXITSTATUS(status) : EX_SOFTWARE;
    last_line(text, why, sizeof why);
    if (status == 0 || why[0] == '\0')
        reply(b, bs_reply_for_status(status));
    else {
        snprintf(line, sizeof line, "%s: %s", bs_reply_for_status(status), why);
        reply(b, line);
    }
    return 0;
}

/* DATA: lines up to a lone ".", unstuffed, into an unlinked temporary file. */
static int collect(struct bs *b, int *fdout, struct mc_err *err)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    size_t len;
    int fd, r;
    FILE *f;

    snprintf(path, sizeof path, "%s/mailcar-bs-XXXXXX", dir && *dir ? dir : "/tmp");
    fd = mkstemp(path);
    if (fd < 0)
        return mc_err_set(err, MC_IOERR, "-bs: temporary file: %s", strerror(errno));
    unlink(path);
    f = fdopen(dup(fd), "w");
    if (f == NULL) {
        close(fd);
        return mc_err_set(err, MC_IOERR, "-bs: temporary file: %s", strerror(errno));
    }
    while ((r = read_line(b, &len, err)) > 0) {
        const char *p = b->inbuf.data;
        size_t n = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
        if (n == 1 && p[0] == '.') {
            consume(b, len);
            break;
        }
        if (n > 0 && p[0] == '.') {
            p++;
            n--;
        }
        fwrite(p, 1, n, f);
        fputc('\n', f);
        consume(b, len);
    }
    if (fclose(f) != 0 || r <= 0) {
        close(fd);
        return r < 0 ? -1 : mc_err_set(err, MC_IOERR, "-bs: input ended inside DATA");
    }
    *fdout = fd;
    return 0;
}

static void cmd_mail(struct bs *b, const char *line)
{
    struct mc_err err;
    char *path;

    if (b->from) {
        reply(b, "503 5.5.1 MAIL already given");
        return;
    }
    path = path_arg(line, "MAIL FROM:");
    if (path == NULL) {
        reply(b, "501 5.5.4 syntax: MAIL FROM:<address>");
        return;
    }
    if (path[0] && addr_check(path, "sender", &err) < 0) {
        char text[600];
        snprintf(text, sizeof text, "553 5.1.7 %s", err.msg);
        reply(b, text);
        free(path);
        return;
    }
    b->from = path;
    reply(b, "250 2.1.0 sender ok");
}

static void cmd_rcpt(struct bs *b, const char *line)
{
    struct mc_err err;
    char *path;

    if (b->from == NULL) {
        reply(b, "503 5.5.1 MAIL first");
        return;
    }
    if (b->rcpts.n >= BS_MAX_RCPTS) {
        reply(b, "452 4.5.3 too many recipients");
        return;
    }
    path = path_arg(line, "RCPT TO:");
    if (path == NULL) {
        reply(b, "501 5.5.4 syntax: RCPT TO:<address>");
        return;
    }
    if (addr_check(path, "recipient", &err) < 0) {
        char text[600];
        snprintf(text, sizeof text, "553 5.1.3 %s", err.msg);
        reply(b, text);
        free(path);
        return;
    }
    strlist_add_owned(&b->rcpts, path);
    reply(b, "250 2.1.5 recipient ok");
}

static int cmd_data(struct bs *b, struct mc_err *err)
{
    int fd = -1;

    if (b->from == NULL || b->rcpts.n == 0) {
        reply(b, b->from ? "554 5.5.1 no valid recipients" : "503 5.5.1 MAIL first");
        return 0;
    }
    reply(b, "354 end data with <CR><LF>.<CR><LF>");
    if (flush_out(b, err) < 0 || collect(b, &fd, err) < 0)
        return -1;
    if (deliver(b, fd, err) < 0) {
        close(fd);
        return -1;
    }
    close(fd);
    reset_envelope(b);
    return 0;
}

static void cmd_ehlo(struct bs *b, const char *line, bool extended)
{
    snprintf(b->helo, sizeof b->helo, "%s", line + 4 + strspn(line + 4, " "));
    reset_envelope(b);
    b->greeted = true;
    if (!extended) {
        reply(b, "250 localhost");
        return;
    }
    reply(b, "250-localhost mailcar\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
             "250-ENHANCEDSTATUSCODES\r\n250 HELP");
}

static bool verb(const char *line, size_t len, const char *v)
{
    size_t n = strlen(v);

    return len >= n && strncasecmp(line, v, n) == 0 && (len == n || line[n] == ' ' || line[n] == ':');
}

/* One command; 1 for QUIT. */
static int command(struct bs *b, char *line, size_t len, struct mc_err *err)
{
    if (verb(line, len, "EHLO") || verb(line, len, "HELO"))
        cmd_ehlo(b, line, toupper((unsigned char)line[0]) == 'E');
    else if (verb(line, len, "MAIL"))
        cmd_mail(b, line);
    else if (verb(line, len, "RCPT"))
        cmd_rcpt(b, line);
    else if (verb(line, len, "DATA"))
        return cmd_data(b, err);
    else if (verb(line, len, "RSET")) {
        reset_envelope(b);
        reply(b, "250 2.0.0 reset");
    } else if (verb(line, len, "NOOP"))
        reply(b, "250 2.0.0 ok");
    else if (verb(line, len, "VRFY"))
        reply(b, "252 2.5.2 cannot verify here; send and see");
    else if (verb(line, len, "HELP"))
        reply(b, "214 2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP VRFY QUIT");
    else if (verb(line, len, "QUIT")) {
        reply(b, "221 2.0.0 bye");
        return 1;
    } else
        reply(b, "500 5.5.2 command not recognized");
    return 0;
}

int bs_run(const struct cli *o, int in, int out, struct mc_err *err)
{
    struct bs b = {.o = o, .in = in, .out = out};
    size_t len;
    int r = 0;

    buf_init(&b.inbuf, BUF_NOLIMIT);
    buf_init(&b.outbuf, BUF_NOLIMIT);
    reply(&b, "220 localhost mailcar ESMTP ready");
    while (r == 0 && (r = read_line(&b, &len, err)) > 0) {
        char *line;
        if (len > BS_LINE_MAX) {
            reply(&b, "500 5.5.6 line too long");
            consume(&b, len);
            r = 0;
            continue;
        }
        line = mc_strndup(b.inbuf.data, len > 0 && b.inbuf.data[len - 1] == '\r' ? len - 1 : len);
        consume(&b, len);
        r = command(&b, line, strlen(line), err);
        free(line);
    }
    if (r >= 0 && flush_out(&b, err) < 0)
        r = -1;
    reset_envelope(&b);
    buf_release(&b.inbuf);
    buf_release(&b.outbuf);
    return r < 0 ? -1 : 0;
}
