/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The durable queue; the on-disk format is described in queue.h.  Every
 * write goes to a temporary file that is fsynced, then linked or renamed
 * into place, then the directory is fsynced, so a crash at any instant
 * leaves either the old state or the new one.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"

void queue_crash_point(const char *step)
{
    const char *crash = getenv("MAILCAR_TEST_CRASH"), *stop = getenv("MAILCAR_TEST_STOP");

    if (crash && strcmp(crash, step) == 0)
        kill(getpid(), SIGKILL);
    if (stop && strcmp(stop, step) == 0)
        kill(getpid(), SIGSTOP);   /* the test does something, then sends SIGCONT */
}

long long queue_now(void)
{
    const char *v = getenv("MAILCAR_NOW");
    long long now = (long long)time(NULL);
    char *end;

    if (v == NULL || *v == '\0')
        return now;
    long long n = strtoll(v, &end, 10);
    if (*end != '\0')
        return now;
    return (*v == '+' || *v == '-') ? now + n : n;
}

long queue_backoff(long first, long max, long attempts)
{
    long d = first > 0 ? first : 1;

    for (long i = 1; i < attempts && d < max; i++)
        d = d > LONG_MAX / 2 ? LONG_MAX : d * 2;
    return d < max ? d : max;
}

bool queue_id_valid(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > QUEUE_ID_MAX || id[0] == '-')
        return false;
    return strspn(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") == n;
}

/* ---- the envelope text ------------------------------------------------ */

void qenv_init(struct qenv *e)
{
    memset(e, 0, sizeof *e);
    e->version = QUEUE_FORMAT;
    buf_init(&e->head, MSG_HEADER_MAX + 65536);
}

void qenv_free(struct qenv *e)
{
    free(e->account);
    free(e->from);
    free(e->notify);
    free(e->ret);
    free(e->envid);
    free(e->body);
    free(e->error);
    strlist_free(&e->set);
    strlist_free(&e->argv);
    for (size_t i = 0; i < e->nrcpts; i++) {
        free(e->rcpts[i].addr);
        free(e->rcpts[i].reply);
    }
    free(e->rcpts);
    buf_release(&e->head);
    memset(e, 0, sizeof *e);
}

void qenv_add_rcpt(struct qenv *e, const char *addr, enum qrcpt_state st, const char *reply)
{
    e->rcpts = mc_reallocarray(e->rcpts, e->nrcpts + 1, sizeof *e->rcpts);
    e->rcpts[e->nrcpts].addr = mc_strdup(addr);
    e->rcpts[e->nrcpts].state = st;
    e->rcpts[e->nrcpts].reply = reply && *reply ? mc_strdup(reply) : NULL;
    e->nrcpts++;
}

size_t qenv_count(const struct qenv *e, enum qrcpt_state st)
{
    size_t n = 0;

    for (size_t i = 0; i < e->nrcpts; i++)
        n += e->rcpts[i].state == st;
    return n;
}

void queue_encode(struct buf *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < '!' || *p > '~' || *p == '%')
            buf_printf(out, "%%%02X", *p);
        else
            buf_addch(out, (char)*p);
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

char *queue_decode(const char *s, size_t n)
{
    char *out = mc_calloc(1, n + 1);
    size_t j = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c < '!' || c > '~') {
            free(out);
            return NULL;
        } else {
            out[j++] = (char)c;
        }
    }
    out[j] = '\0';
    return out;
}

static const struct {
    unsigned flag;
    const char *name;
} flag_names[] = {
    {QF_HOLD, "hold"},         {QF_BOUNCE, "bounce"},       {QF_BOUNCED, "bounced"},
    {QF_SMTPUTF8, "smtputf8"}, {QF_EIGHTBIT, "eightbit"},   {QF_BODY8, "body-eightbit"},
    {QF_UTF8HDR, "utf8-headers"}, {QF_MIME, "mime"},
};

static const char *const state_names[] = {"pending", "done", "failed"};

static void put(struct buf *b, const char *key, const char *value)
{
    if (value == NULL)
        return;
    buf_printf(b, "%s ", key);
    queue_encode(b, value);
    buf_addch(b, '\n');
}

int qenv_format(const struct qenv *e, struct buf *b)
{
    bool first = true;

    buf_printf(b, "mailcar-queue %d\ncreated %lld\nattempts %ld\nnext %lld\nsize %lld\nflags ",
               QUEUE_FORMAT, e->created, e->attempts, e->next, e->size);
    for (size_t i = 0; i < sizeof flag_names / sizeof flag_names[0]; i++)
        if (e->flags & flag_names[i].flag) {
            buf_printf(b, "%s%s", first ? "" : ",", flag_names[i].name);
            first = false;
        }
    buf_addch(b, '\n');
    put(b, "account", e->account);
    put(b, "from", e->from ? e->from : "");
    put(b, "notify", e->notify);
    put(b, "ret", e->ret);
    put(b, "envid", e->envid);
    put(b, "body", e->body);
    for (size_t i = 0; i < e->set.n; i++)
        put(b, "set", e->set.v[i]);
    for (size_t i = 0; i < e->argv.n; i++)
        put(b, "argv", e->argv.v[i]);
    put(b, "error", e->error);
    for (size_t i = 0; i < e->nrcpts; i++) {
        buf_printf(b, "rcpt %s ", state_names[e->rcpts[i].state]);
        queue_encode(b, e->rcpts[i].addr);
        if (e->rcpts[i].reply) {
            buf_addch(b, ' ');
            queue_encode(b, e->rcpts[i].reply);
        }
        buf_addch(b, '\n');
    }
    buf_printf(b, "head %zu\n", e->head.len);
    buf_add(b, e->head.data, e->head.len);
    return buf_addstr(b, "end\n");
}

static int corrupt(struct mc_err *err, unsigned line, const char *why)
{
    return mc_err_set(err, MC_DATAERR, "corrupt queue file: line %u: %s", line, why);
}

static int parse_num(const char *s, size_t n, long long *out)
{
    char tmp[32];
    char *end;

    if (n == 0 || n >= sizeof tmp || s[0] == '-' || s[0] == '+')
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    *out = strtoll(tmp, &end, 10);
    return *end || errno ? -1 : 0;
}

static int parse_flags(const char *v, size_t n, unsigned *flags)
{
    size_t i = 0;

    while (i < n) {
        size_t w = 0, k;
        while (i + w < n && v[i + w] != ',')
            w++;
        for (k = 0; k < sizeof flag_names / sizeof flag_names[0]; k++)
            if (strlen(flag_names[k].name) == w && memcmp(flag_names[k].name, v + i, w) == 0)
                *flags |= flag_names[k].flag;
        i += w + 1;
    }
    return 0;
}

static char **str_field(struct qenv *e, const char *key, size_t kn)
{
    static const char *const names[] = {"account", "from", "notify", "ret", "envid", "body",
                                        "error"};
    char **fields[] = {&e->account, &e->from, &e->notify, &e->ret, &e->envid, &e->body,
                       &e->error};

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == kn && memcmp(names[i], key, kn) == 0)
            return fields[i];
    return NULL;
}

static int parse_rcpt(struct qenv *e, const char *v, size_t n)
{
    const char *sp = memchr(v, ' ', n), *sp2;
    enum qrcpt_state st;
    char *addr, *reply = NULL;

    if (sp == NULL)
        return -1;
    for (st = QR_PENDING; st <= QR_FAILED; st++)
        if (strlen(state_names[st]) == (size_t)(sp - v) && memcmp(state_names[st], v, (size_t)(sp - v)) == 0)
            break;
    if (st > QR_FAILED)
        return -1;
    n -= (size_t)(sp + 1 - v);
    v = sp + 1;
    sp2 = memchr(v, ' ', n);
    addr = queue_decode(v, sp2 ? (size_t)(sp2 - v) : n);
    if (sp2)
        reply = queue_decode(sp2 + 1, n - (size_t)(sp2 + 1 - v));
    if (addr == NULL || *addr == '\0' || (sp2 && reply == NULL)) {
        free(addr);
        free(reply);
        return -1;
    }
    qenv_add_rcpt(e, addr, st, reply);
    free(addr);
    free(reply);
    return 0;
}

/* One "key value" line (without its LF); 1 at "head", which the caller finishes. */
static int parse_line(struct qenv *e, const char *p, size_t n, long long *head, unsigned line,
                      struct mc_err *err)
{
    const char *sp = memchr(p, ' ', n);
    size_t kn = sp ? (size_t)(sp - p) : n;
    const char *v = sp ? sp + 1 : p + n;
    size_t vn = sp ? n - kn - 1 : 0;
    long long num;
    char **field = NULL;

#define KEY(s) (kn == sizeof(s) - 1 && memcmp(p, s, kn) == 0)
    if (KEY("created") || KEY("attempts") || KEY("next") || KEY("size") || KEY("head")) {
        if (parse_num(v, vn, &num) < 0)
            return corrupt(err, line, "bad number");
        if (KEY("created"))
            e->created = num;
        else if (KEY("attempts"))
            e->attempts = num > LONG_MAX ? LONG_MAX : (long)num;
        else if (KEY("next"))
            e->next = num;
        else if (KEY("size"))
            e->size = num;
        else {
            *head = num;
            return 1;
        }
    } else if (KEY("flags")) {
        parse_flags(v, vn, &e->flags);
    } else if (KEY("rcpt")) {
        if (parse_rcpt(e, v, vn) < 0)
            return corrupt(err, line, "bad recipient");
    } else if (KEY("set") || KEY("argv") || (field = str_field(e, p, kn)) != NULL) {
        char *s = queue_decode(v, vn);
        if (s == NULL)
            return corrupt(err, line, "bad encoding");
        if (field == NULL) {
            strlist_add_owned(KEY("set") ? &e->set : &e->argv, s);
        } else {
            free(*field);
            *field = s;
        }
    }
#undef KEY
    return 0;
}

int qenv_parse(const char *data, size_t len, struct qenv *e, struct mc_err *err)
{
    const char *p = data, *end = data + len, *nl;
    long long head = -1, version;
    unsigned line = 1;
    int r;

    qenv_init(e);
    nl = memchr(p, '\n', len);
    if (nl == NULL || (size_t)(nl - p) < 14 || memcmp(p, "mailcar-queue ", 14) != 0 ||
        parse_num(p + 14, (size_t)(nl - p - 14), &version) < 0) {
        qenv_free(e);
        return mc_err_set(err, MC_DATAERR, "not a mailcar queue file");
    }
    if (version != QUEUE_FORMAT) {
        qenv_free(e);
        return mc_err_set(err, MC_CONFIG, "queue file format version %lld is not supported "
                          "(this mailcar reads version %d)", version, QUEUE_FORMAT);
    }
    for (p = nl + 1; p < end; p = nl + 1) {
        line++;
        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            break;
        r = parse_line(e, p, (size_t)(nl - p), &head, line, err);
        if (r < 0) {
            qenv_free(e);
            return -1;
        }
        if (r == 1)
            break;
    }
    if (head < 0 || nl == NULL || (unsigned long long)head > (unsigned long long)(end - nl - 1) ||
        (size_t)(end - nl - 1) - (size_t)head != 4 || memcmp(nl + 1 + head, "end\n", 4) != 0) {
        qenv_free(e);
        return corrupt(err, line, "truncated (no header block or no 'end')");
    }
    if (buf_add(&e->head, nl + 1, (size_t)head) < 0 || e->nrcpts == 0 || e->from == NULL) {
        qenv_free(e);
        return corrupt(err, line, e->nrcpts == 0 ? "no recipients" : "no sender or header too long");
    }
    return 0;
}

/* ---- files -------------------------------------------------------------- */

int queue_default_dir(const char *dir, char *out, size_t len, struct mc_err *err)
{
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    int n;

    if (dir && *dir)
        n = snprintf(out, len, "%s", dir);
    else if (getuid() == 0)
        n = snprintf(out, len, "/var/spool/mailcar");
    else if (xdg && *xdg == '/')
        n = snprintf(out, len, "%s/mailcar/queue", xdg);
    else if (home && *home == '/')
        n = snprintf(out, len, "%s/.local/state/mailcar/queue", home);
    else
        return mc_err_set(err, MC_CONFIG, "no queue directory: set queue_dir, HOME or "
                          "XDG_STATE_HOME");
    if (n < 0 || (size_t)n >= len)
        return mc_err_set(err, MC_CONFIG, "queue directory name too long");
    return 0;
}

int queue_open(struct queue *q, const char *dir, struct mc_err *err)
{
    struct stat st;

    memset(q, 0, sizeof *q);
    if (queue_default_dir(dir, q->dir, sizeof q->dir, err) < 0)
        return -1;
    q->now = queue_now();
    if (mc_mkdir_p(q->dir, 0700) < 0 || stat(q->dir, &st) < 0)
        return mc_err_set(err, MC_IOERR, "cannot create queue directory '%s': %s", q->dir,
                          strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return mc_err_set(err, MC_IOERR, "queue directory '%s' is not a directory", q->dir);
    return 0;
}

static int path_of(const struct queue *q, char *out, size_t len, const char *id,
                   const char *suffix)
{
    int n = snprintf(out, len, "%s/%s%s", q->dir, id, suffix);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_dir(const struct queue *q)
{
    int fd = open(q->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r;

    if (fd < 0)
        return -1;
    r = fsync(fd);
    close(fd);
    return r;
}

static void random_hex(char *out, size_t n)
{
    unsigned char raw[16];
    static unsigned counter;

    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (unsigned char)((unsigned)getpid() * 31u + counter++ * 17u + i);
    }
    for (size_t i = 0; i + 1 < n && i / 2 < sizeof raw; i++)
        out[i] = "0123456789abcdef"[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[n - 1] = '\0';
}

/*
 * Write e to a new temporary file in the directory; its name in tmp, its
 * descriptor, locked, in *fdp: the caller closes it once the file has its
 * final name.  Without the lock a queue run's sweep could take it for debris
 * (its age is judged by the queue's clock, which MAILCAR_NOW or a clock step
 * moves) and remove it between write and rename.
 */
static int write_env_tmp(const struct queue *q, const char *id, const struct qenv *e, char *tmp,
                         size_t tlen, int *fdp, struct mc_err *err)
{
    struct buf b;
    char rnd[9];
    int fd, r;

    *fdp = -1;
    random_hex(rnd, sizeof rnd);
    if (snprintf(tmp, tlen, "%s/.tmp-%s.env.%s", q->dir, id, rnd) >= (int)tlen)
        return mc_err_set(err, MC_IOERR, "queue path too long");
    buf_init(&b, QUEUE_ENV_MAX);
    if (qenv_format(e, &b) < 0) {
        buf_release(&b);
        return mc_err_set(err, MC_DATAERR, "queue envelope too large");
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    r = fd < 0 || flock(fd, LOCK_EX) < 0 || write_all(fd, b.data, b.len) < 0 || fsync(fd) < 0
            ? -1
            : 0;
    buf_release(&b);
    if (r < 0) {
        mc_err_set(err, MC_IOERR, "cannot write queue file '%s': %s", tmp, strerror(errno));
        unlink(tmp);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *fdp = fd;
    return 0;
}

static int copy_body(int fd, const struct msg *m, struct mc_err *err)
{
    char chunk[65536];
    struct msg_reader rd;
    ssize_t n = 0;

    if (m == NULL)
        return 0;
    msg_reader_init(&rd, m, MSG_RD_BODY);
    while ((n = msg_reader_read(&rd, chunk, sizeof chunk, err)) > 0)
        if (write_all(fd, chunk, (size_t)n) < 0) {
            n = mc_err_set(err, MC_IOERR, "writing the queue: %s", strerror(errno));
            break;
        }
    msg_reader_done(&rd);
    return n < 0 ? -1 : 0;
}

static int new_id(const struct queue *q, char *id)
{
    struct timespec ts;
    char rnd[9];

    /* Time first, so that IDs sort in the order the messages came. */
    clock_gettime(CLOCK_REALTIME, &ts);
    random_hex(rnd, sizeof rnd);
    return snprintf(id, QUEUE_ID_MAX + 1, "%010llx%05lx-%s", (unsigned long long)q->now,
                    (unsigned long)(ts.tv_nsec / 1000) & 0xfffff, rnd) > 0 ? 0 : -1;
}

int queue_add(struct queue *q, const struct qenv *e, const struct msg *m, char *id,
              struct mc_err *err)
{
    char tmsg[4200], tenv[4200], fmsg[4200], fenv[4200];
    int fd = -1, efd = -1, r = -1;

    for (int tries = 0; fd < 0 && tries < 10; tries++) {
        new_id(q, id);
        if (snprintf(tmsg, sizeof tmsg, "%s/.tmp-%s.msg", q->dir, id) >= (int)sizeof tmsg)
            return mc_err_set(err, MC_IOERR, "queue path too long");
        fd = open(tmsg, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0)
        return mc_err_set(err, MC_IOERR, "cannot create a file in the queue '%s': %s", q->dir,
                          strerror(errno));
    /* Locked before it has its name, so nobody takes it for an orphan. */
    if (flock(fd, LOCK_EX) < 0) {
        mc_err_set(err, MC_IOERR, "cannot lock '%s': %s", tmsg, strerror(errno));
        goto out;
    }
    if (copy_body(fd, m, err) < 0)
        goto out;
    queue_crash_point("enqueue-body");
    if (fsync(fd) < 0) {
        mc_err_set(err, MC_IOERR, "fsync '%s': %s", tmsg, strerror(errno));
        goto out;
    }
    if (write_env_tmp(q, id, e, tenv, sizeof tenv, &efd, err) < 0)
        goto out;
    queue_crash_point("enqueue-env");
    path_of(q, fmsg, sizeof fmsg, id, ".msg");
    path_of(q, fenv, sizeof fenv, id, ".env");
    if (link(tmsg, fmsg) < 0) {
        mc_err_set(err, MC_IOERR, "cannot link '%s': %s", fmsg, strerror(errno));
        unlink(tenv);
        goto out;
    }
    unlink(tmsg);
    tmsg[0] = '\0';
    queue_crash_point("enqueue-link");
    if (rename(tenv, fenv) < 0) {
        mc_err_set(err, MC_IOERR, "cannot rename into '%s': %s", fenv, strerror(errno));
        unlink(tenv);
        unlink(fmsg);
        goto out;
    }
    queue_crash_point("enqueue-rename");
    if (fsync_dir(q) < 0) {
        mc_err_set(err, MC_IOERR, "fsync '%s': %s", q->dir, strerror(errno));
        goto out;
    }
    r = 0;
out:
    if (r < 0 && tmsg[0])
        unlink(tmsg);
    if (efd >= 0)
        close(efd);
    close(fd);
    return r;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int queue_list(struct queue *q, struct strlist *ids, struct mc_err *err)
{
    DIR *d = opendir(q->dir);
    struct dirent *de;

    if (d == NULL)
        return mc_err_set(err, MC_IOERR, "cannot read queue directory '%s': %s", q->dir,
                          strerror(errno));
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".env") != 0 || de->d_name[0] == '.')
            continue;
        char *id = mc_strndup(de->d_name, n - 4);
        if (queue_id_valid(id))
            strlist_add_owned(ids, id);
        else
            free(id);
    }
    closedir(d);
    if (ids->n > 1)
        qsort(ids->v, ids->n, sizeof *ids->v, cmp_str);
    return 0;
}

static int read_file(const char *path, struct buf *b, struct mc_err *err)
{
    char chunk[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return errno == ENOENT ? 1 : mc_err_set(err, MC_IOERR, "cannot open '%s': %s", path,
                                                strerror(errno));
    while ((n = read(fd, chunk, sizeof chunk)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || buf_add(b, chunk, (size_t)n) < 0) {
            close(fd);
            return mc_err_set(err, MC_IOERR, "cannot read '%s': %s", path,
                              n < 0 ? strerror(errno) : "too large");
        }
    }
    close(fd);
    return 0;
}

int queue_read(struct queue *q, const char *id, struct qenv *e, struct mc_err *err)
{
    char path[4200];
    struct buf b;
    int r;

    if (!queue_id_valid(id) || path_of(q, path, sizeof path, id, ".env") < 0)
        return mc_err_set(err, MC_USAGE, "bad queue ID '%s'", id);
    buf_init(&b, QUEUE_ENV_MAX);
    r = read_file(path, &b, err);
    if (r == 0 && qenv_parse(b.data, b.len, e, err) < 0)
        r = mc_err_prefix(err, "%s", id);
    buf_release(&b);
    return r;
}

int queue_lock(struct queue *q, const char *id, bool wait, struct qitem *it, struct mc_err *err)
{
    char path[4200];
    struct stat a, b;
    int r;

    memset(it, 0, sizeof *it);
    it->fd = -1;
    if (!queue_id_valid(id) || path_of(q, path, sizeof path, id, ".msg") < 0)
        return mc_err_set(err, MC_USAGE, "bad queue ID '%s'", id);
    snprintf(it->id, sizeof it->id, "%s", id);
    it->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (it->fd < 0)
        return errno == ENOENT ? 1 : mc_err_set(err, MC_IOERR, "cannot open '%s': %s", path,
                                                strerror(errno));
    while ((r = flock(it->fd, LOCK_EX | (wait ? 0 : LOCK_NB))) < 0 && errno == EINTR)
        ;
    /* Busy, or removed while we waited for the lock. */
    if (r < 0 || fstat(it->fd, &a) < 0 || stat(path, &b) < 0 || a.st_ino != b.st_ino ||
        a.st_dev != b.st_dev) {
        queue_unlock(it);
        return 1;
    }
    r = queue_read(q, id, &it->env, err);
    if (r != 0)
        queue_unlock(it);
    return r;
}

void queue_unlock(struct qitem *it)
{
    if (it->fd >= 0)
        close(it->fd);
    it->fd = -1;
    qenv_free(&it->env);
}

int queue_update(struct queue *q, struct qitem *it, struct mc_err *err)
{
    char tmp[4200], final[4200];
    int fd, r;

    if (write_env_tmp(q, it->id, &it->env, tmp, sizeof tmp, &fd, err) < 0)
        return -1;
    path_of(q, final, sizeof final, it->id, ".env");
    r = rename(tmp, final);
    if (r < 0) {
        mc_err_set(err, MC_IOERR, "cannot rename into '%s': %s", final, strerror(errno));
        unlink(tmp);
    }
    close(fd);
    if (r < 0)
        return -1;
    if (fsync_dir(q) < 0)
        return mc_err_set(err, MC_IOERR, "fsync '%s': %s", q->dir, strerror(errno));
    return 0;
}

int queue_remove(struct queue *q, struct qitem *it, struct mc_err *err)
{
    char path[4200];
    int r = 0;

    path_of(q, path, sizeof path, it->id, ".env");
    if (unlink(path) < 0 && errno != ENOENT)
        r = mc_err_set(err, MC_IOERR, "cannot remove '%s': %s", path, strerror(errno));
    queue_crash_point("remove-env");
    if (r == 0 && fsync_dir(q) < 0)
        r = mc_err_set(err, MC_IOERR, "fsync '%s': %s", q->dir, strerror(errno));
    path_of(q, path, sizeof path, it->id, ".msg");
    if (r == 0)
        unlink(path);
    queue_unlock(it);
    return r;
}

int queue_msg(struct qitem *it, struct msg *m, struct mc_err *err)
{
    const char *tmp = getenv("TMPDIR");
    struct stat st;
    int fd;

    memset(m, 0, sizeof *m);
    buf_init(&m->head, MSG_HEADER_MAX + 65536);
    if (buf_add(&m->head, it->env.head.data, it->env.head.len) < 0)
        return mc_err_set(err, MC_DATAERR, "queued header block too large");
    fd = fcntl(it->fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        return mc_err_set(err, MC_IOERR, "cannot read queued message %s: %s", it->id,
                          strerror(errno));
    }
    msg_set_body(m, fd, st.st_size);
    m->eightbit = it->env.flags & QF_EIGHTBIT;
    m->body_eightbit = it->env.flags & QF_BODY8;
    m->utf8_headers = it->env.flags & QF_UTF8HDR;
    m->mime = it->env.flags & QF_MIME;
    m->spool_dir = mc_strdup(tmp && *tmp == '/' ? tmp : "/tmp");
    return 0;
}

/* An orphan: ID.msg whose ID.env never appeared (a crash mid-enqueue) or is gone. */
static int sweep_orphan(struct queue *q, const char *name)
{
    char id[QUEUE_ID_MAX + 1], env[4200];
    struct qitem it;
    size_t n = strlen(name) - 4;
    int removed = 0;

    if (n > QUEUE_ID_MAX)
        return 0;
    memcpy(id, name, n);
    id[n] = '\0';
    if (!queue_id_valid(id) || path_of(q, env, sizeof env, id, ".env") < 0 ||
        access(env, F_OK) == 0)
        return 0;
    memset(&it, 0, sizeof it);
    snprintf(it.id, sizeof it.id, "%s", id);
    path_of(q, env, sizeof env, id, ".msg");
    it.fd = open(env, O_RDONLY | O_CLOEXEC);
    if (it.fd < 0)
        return 0;
    if (flock(it.fd, LOCK_EX | LOCK_NB) == 0) {
        char envp[4200];
        path_of(q, envp, sizeof envp, id, ".env");
        /* Whoever made it holds the lock until ID.env exists: this one is dead. */
        if (access(envp, F_OK) < 0 && errno == ENOENT && unlink(env) == 0)
            removed = 1;
    }
    close(it.fd);
    return removed;
}

int queue_sweep(struct queue *q, struct mc_err *err)
{
    DIR *d = opendir(q->dir);
    struct dirent *de;
    int removed = 0;

    if (d == NULL)
        return mc_err_set(err, MC_IOERR, "cannot read queue directory '%s': %s", q->dir,
                          strerror(errno));
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        char path[4200];
        struct stat st;
        if (n > 4 && de->d_name[0] != '.' && strcmp(de->d_name + n - 4, ".msg") == 0) {
            removed += sweep_orphan(q, de->d_name);
            continue;
        }
        if (strncmp(de->d_name, ".tmp-", 5) != 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", q->dir, de->d_name) >= (int)sizeof path ||
            lstat(path, &st) < 0 || (long long)st.st_mtime > q->now - QUEUE_STALE_S)
            continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && unlink(path) == 0)
            removed++;
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
    return removed;
}
