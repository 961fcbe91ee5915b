/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Reading, checking and rewriting the message; see msg.h.
 *
 * msg_read makes one pass over the input in large blocks.  Header lines are
 * checked and kept in memory; body lines are checked and, from a pipe,
 * given CRLF and written to an unlinked spool file through a large buffer.
 * From a regular file the body is only checked and measured: it is read
 * again, in place, when sent (copying 100 MB to a spool and back cost more
 * than the whole send).  Only once the input is complete is the header
 * block rewritten (that needs the whole block) and, if a line was too long,
 * the body re-encoded into a spool.
 *
 * Where the issue left a choice open we follow Postfix:
 * - The header block ends at the first empty line, or at the first line that
 *   is neither a header field ("name:", "name :") nor a continuation (a line
 *   starting with white space after a field).  In the second case that line
 *   is the first line of the body and the empty separator line is supplied,
 *   so input with no header block at all ("hello\n") becomes all body.
 * - Header fields msg_read adds go at the end of the header block, in the
 *   order MIME fields, From, Date, Message-ID, To.  A From: forced by
 *   MSG_ON takes the place of the first existing From (the others go).
 * - A lone "." ends the input even without its newline.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/random.h>
#endif

#include "msg.h"
#include "util.h"

#define MSG_LINE_MAX 998       /* RFC 5322 2.1.1, without the CRLF */
#define IO_SIZE (256 * 1024)   /* read and write in blocks this large */
#define CARRY_MAX 4096         /* a longer unfinished line is handled in pieces */
#define HEAD_SLACK (64 * 1024) /* room for the fields msg_read adds */
#define QP_LINE 76             /* RFC 2045 6.7 (5) */
#define EW_BYTES 45            /* octets per encoded word: 60 base64 + 12 = 72 < 75 */

/* One header field: its lines with their CRLFs, in some block of CRLF lines. */
struct field {
    size_t off;
    size_t len;
    size_t namelen;
    unsigned long line; /* input line of its first line */
    bool drop;
};

struct fields {
    const char *base;
    struct field *v;
    size_t n;
    size_t cap;
};

/* Bytes on their way to an unlinked spool file, or only counted (fd -1, buf NULL). */
struct spool {
    int fd;
    char *buf;
    size_t len;
    off_t size; /* everything added, buffered or written */
};

/* State of one msg_read. */
struct rd {
    const struct msg_opts *o;
    struct msg *m;
    struct mc_err *err;
    struct buf raw;  /* the header lines as read, with CRLF */
    struct fields f; /* split from raw once the block has ended */
    struct spool sp;
    int place_fd;       /* >= 0: the input is a regular file, its body is used in place */
    off_t size;         /* in place: the file's size */
    off_t limit;        /* in place: stop reading here (-1: at the end) */
    struct half *half;  /* in place: the helper checking the rest, or NULL */
    bool split_tried;
    off_t base;         /* offset in the input of the read buffer's first octet */
    off_t cur, next;    /* offsets of the line being handled and of the one after it */
    off_t body_start;   /* offset of the body's first octet, -1 until known */
    off_t body_end;     /* offset just past the body */
    unsigned long line; /* number of the line being read, from 1 */
    size_t line_len;    /* octets of it seen so far */
    bool in_body;
    bool in_piece;                  /* the current line came in pieces: it is in the body */
    bool done;                      /* a lone "." was read */
    bool refuse_long;               /* MIME: a long body line is an error, not re-encoded */
    bool long_line;                 /* non-MIME: a long body line, re-encode at the end */
    bool blk_cr, blk_nul, blk_8bit; /* what the current input block holds */
};

/* ---- small helpers ------------------------------------------------------ */

static bool is_wsp(int c)
{
    return c == ' ' || c == '\t';
}

/*
 * True when any byte has the high bit set.  On the hot path (every octet of
 * the input): four words at a time in four independent accumulators, which
 * runs several times faster than one chain of ORs.
 */
static bool has_8bit(const char *p, size_t n)
{
    uint64_t acc[4] = {0, 0, 0, 0}, w[4];
    size_t i = 0;
    unsigned char tail = 0;

    for (; i + sizeof w <= n; i += sizeof w) {
        memcpy(w, p + i, sizeof w);
        acc[0] |= w[0];
        acc[1] |= w[1];
        acc[2] |= w[2];
        acc[3] |= w[3];
    }
    for (; i < n; i++)
        tail |= (unsigned char)p[i];
    return ((acc[0] | acc[1] | acc[2] | acc[3]) & UINT64_C(0x8080808080808080)) || (tail & 0x80);
}

static int oom(struct mc_err *err)
{
    return mc_err_set(err, MC_OSERR, "out of memory");
}

static int write_all(int fd, const char *p, size_t n, struct mc_err *err)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return mc_err_set(err, MC_IOERR, "writing the message spool: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- the spool ---------------------------------------------------------- */

static const char *spool_dir(const struct msg_opts *o)
{
    const char *d = o->tmpdir;

    if (d == NULL || *d == '\0')
        d = getenv("TMPDIR");
    if (d == NULL || *d == '\0')
        d = "/tmp";
    return d;
}

/* The file is unlinked at once: nothing is left behind however we exit. */
static int spool_open(struct spool *s, const char *dir, struct mc_err *err)
{
    struct buf path;
    int e;

    s->fd = -1;
    s->len = 0;
    s->size = 0;
    s->buf = malloc(IO_SIZE);
    buf_init(&path, PATH_MAX);
    if (s->buf == NULL || buf_printf(&path, "%s/mailcar.XXXXXX", dir) < 0) {
        buf_release(&path);
        return oom(err);
    }
    s->fd = mkostemp(path.data, O_CLOEXEC);
    e = errno;
    if (s->fd >= 0)
        unlink(path.data);
    buf_release(&path);
    if (s->fd < 0)
        return mc_err_set(err, MC_IOERR, "creating a spool file in \"%s\": %s", dir, strerror(e));
    return 0;
}

/* A spool that only counts: the body stays in the input file. */
static void spool_count_only(struct spool *s)
{
    s->fd = -1;
    s->buf = NULL;
    s->len = 0;
    s->size = 0;
}

static int spool_flush(struct spool *s, struct mc_err *err)
{
    int r = write_all(s->fd, s->buf, s->len, err);

    s->len = 0;
    return r;
}

/* Add n octets, then CRLF when crlf is set. */
static int spool_put(struct spool *s, const char *p, size_t n, bool crlf, struct mc_err *err)
{
    size_t need = n + (crlf ? 2 : 0);

    if (s->buf == NULL) {
        s->size += (off_t)need;
        return 0;
    }
    if (need > IO_SIZE - s->len) {
        if (spool_flush(s, err) < 0)
            return -1;
        if (need > IO_SIZE) {
            /* Longer than the buffer: straight to the file, no copy. */
            if (write_all(s->fd, p, n, err) < 0)
                return -1;
            s->size += (off_t)n;
            return crlf ? spool_put(s, "\r\n", 2, false, err) : 0;
        }
    }
    memcpy(s->buf + s->len, p, n);
    if (crlf)
        memcpy(s->buf + s->len + n, "\r\n", 2);
    s->len += need;
    s->size += (off_t)need;
    return 0;
}

static void spool_discard(struct spool *s)
{
    free(s->buf);
    s->buf = NULL;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* Flush and hand the file over as m's body, replacing any earlier one. */
static int spool_finish(struct spool *s, struct msg *m, struct mc_err *err)
{
    if (spool_flush(s, err) < 0)
        return -1;
    msg_set_body(m, s->fd, s->size);
    s->fd = -1;
    spool_discard(s);
    return 0;
}

/* The body is [start, end) of the input file, as it is now. */
static int place_finish(struct rd *r)
{
    struct msg_body *b = &r->m->body;
    struct stat st;

    if (fstat(r->place_fd, &st) < 0)
        return mc_err_set(r->err, MC_IOERR, "reading the message: %s", strerror(errno));
    msg_set_body(r->m, r->place_fd, r->sp.size);
    r->place_fd = -1;
    b->start = r->body_start >= 0 ? r->body_start : r->body_end;
    b->end = r->body_end;
    b->in_place = true;
    b->file_size = st.st_size;
    b->mtime = st.st_mtim;
    return 0;
}

/* ---- header fields ------------------------------------------------------ */

/* Length of the field name when p starts a header field ("Name:" or "Name :"), else 0. */
static size_t field_name_len(const char *p, size_t n)
{
    size_t i = 0, name;

    while (i < n && (unsigned char)p[i] > ' ' && (unsigned char)p[i] < 0x7f && p[i] != ':')
        i++;
    name = i;
    while (i < n && is_wsp(p[i]))
        i++;
    return name > 0 && i < n && p[i] == ':' ? name : 0;
}

static void fields_add(struct fields *f, size_t off, size_t len, size_t namelen, unsigned long line)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 32;
        f->v = mc_reallocarray(f->v, f->cap, sizeof *f->v);
    }
    f->v[f->n++] = (struct field){off, len, namelen, line, false};
}

/*
 * Split a block of CRLF lines (each a field or a continuation, as msg_read
 * or head_build made them) into fields; an empty line ends the block.
 */
static void fields_split(struct fields *f, const char *p, size_t len)
{
    size_t off = 0, end;
    unsigned long line = 1;

    f->base = p;
    f->n = 0;
    for (; off < len && p[off] != '\r'; off = end, line++) {
        const char *nl = memchr(p + off, '\n', len - off);
        end = nl ? (size_t)(nl - p) + 1 : len;
        if (is_wsp(p[off]) && f->n > 0)
            f->v[f->n - 1].len = end - f->v[f->n - 1].off;
        else
            fields_add(f, off, end - off, field_name_len(p + off, end - off), line);
    }
}

static void fields_free(struct fields *f)
{
    free(f->v);
    memset(f, 0, sizeof *f);
}

static bool field_is(const struct fields *f, size_t i, const char *name)
{
    const struct field *fl = &f->v[i];

    return fl->namelen == strlen(name) && strncasecmp(f->base + fl->off, name, fl->namelen) == 0;
}

/* Index of the first field called name (not dropped), or -1. */
static ssize_t field_find(const struct fields *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (!f->v[i].drop && field_is(f, i, name))
            return (ssize_t)i;
    return -1;
}

/* The value: after the colon, up to (not including) the final CRLF; folds kept. */
static const char *field_value(const struct fields *f, size_t i, size_t *len)
{
    const struct field *fl = &f->v[i];
    const char *p = f->base + fl->off;
    const char *colon = memchr(p, ':', fl->len);

    if (colon == NULL || fl->len < 2 || (size_t)(colon + 1 - p) > fl->len - 2) {
        *len = 0;
        return p;
    }
    *len = fl->len - (size_t)(colon + 1 - p) - 2;
    return colon + 1;
}

/* The value unfolded (CR and LF removed) and trimmed; NULL when empty. */
static char *field_text(const struct fields *f, size_t i)
{
    size_t n, k = 0;
    const char *v = field_value(f, i, &n);
    char *s = mc_calloc(n + 1, 1);

    for (size_t j = 0; j < n; j++)
        if (v[j] != '\r' && v[j] != '\n')
            s[k++] = v[j];
    while (k > 0 && is_wsp(s[k - 1]))
        k--;
    s[k] = '\0';
    n = strspn(s, " \t");
    memmove(s, s + n, k - n + 1);
    if (*s == '\0') {
        free(s);
        return NULL;
    }
    return s;
}

/* Whether the (first) Content-Type value starts with one of the given types. */
static bool content_type_is(const struct fields *f, const char *const *types)
{
    ssize_t i = field_find(f, "Content-Type");
    char *t;
    bool yes = false;

    if (i < 0)
        return false;
    t = field_text(f, (size_t)i);
    for (size_t k = 0; t && types[k] && !yes; k++)
        yes = strncasecmp(t, types[k], strlen(types[k])) == 0;
    free(t);
    return yes;
}

/* Multipart and message bodies may not be quoted-printable (RFC 2045 6.4). */
static bool content_composite(const struct fields *f)
{
    static const char *const composite[] = {"multipart/", "message/", NULL};

    return content_type_is(f, composite);
}

/* ---- generated fields --------------------------------------------------- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int add_base64(struct buf *b, const unsigned char *p, size_t n)
{
    int r = 0;

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        char q[4];
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        q[0] = b64chars[v >> 18];
        q[1] = b64chars[(v >> 12) & 63];
        q[2] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        q[3] = i + 2 < n ? b64chars[v & 63] : '=';
        r |= buf_add(b, q, 4);
    }
    return r;
}

/* RFC 2047 "B" encoded words, folded, never splitting a UTF-8 sequence. */
static int add_encoded_words(struct buf *b, const char *s)
{
    size_t n = strlen(s), i = 0;
    int r = 0;

    while (i < n) {
        size_t k = n - i < EW_BYTES ? n - i : EW_BYTES;
        while (i + k < n && k > 1 && ((unsigned char)s[i + k] & 0xc0) == 0x80)
            k--;
        if (i > 0)
            r |= buf_addstr(b, "\r\n ");
        r |= buf_addstr(b, "=?UTF-8?B?");
        r |= add_base64(b, (const unsigned char *)s + i, k);
        r |= buf_addstr(b, "?=");
        i += k;
    }
    return r;
}

/* RFC 5322 atext */
static bool is_atext(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* A phrase of atoms can go as it is; "=?" would be read as an encoded word. */
static bool phrase_plain(const char *s)
{
    bool atom = false;

    for (; *s; s++) {
        if (!is_atext((unsigned char)*s) && *s != ' ')
            return false;
        atom |= *s != ' ';
        if (s[0] == '=' && s[1] == '?')
            return false;
    }
    return atom;
}

static int add_quoted(struct buf *b, const char *s)
{
    int r = buf_addch(b, '"');

    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            r |= buf_addch(b, '\\');
        r |= buf_addch(b, *s);
    }
    return r | buf_addch(b, '"');
}

/* Control characters in a display name become spaces: no CR or LF gets through. */
static char *clean_name(const char *name)
{
    char *s = mc_strdup(name ? name : "");
    bool any = false;

    for (char *p = s; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
        any |= *p != ' ';
    }
    if (!any)
        *s = '\0';
    return s;
}

static int add_from(struct buf *b, const struct msg_opts *o, struct mc_err *err)
{
    char *name;
    int r;

    if (mc_has_ctl(o->from_addr) || strlen(o->from_addr) > MSG_LINE_MAX / 2)
        return mc_err_set(err, MC_DATAERR,
                          "sender address for From: has control characters or is too long");
    name = clean_name(o->from_name);
    r = buf_addstr(b, "From: ");
    if (*name == '\0')
        r |= buf_addstr(b, o->from_addr);
    else if (phrase_plain(name) && strlen(name) < MSG_LINE_MAX / 2)
        r |= buf_addstr(b, name);
    else if (!has_8bit(name, strlen(name)) && strlen(name) < MSG_LINE_MAX / 4)
        r |= add_quoted(b, name);
    else
        r |= add_encoded_words(b, name);
    if (*name)
        r |= buf_printf(b, " <%s>", o->from_addr);
    free(name);
    return r | buf_addstr(b, "\r\n");
}

/* RFC 5322 3.3, local time with a numeric zone; names spelt out, whatever the locale. */
static int add_date(struct buf *b, time_t now, struct mc_err *err)
{
    static const char days[][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    long off;
    char sign = '+';

    if (localtime_r(&now, &tm) == NULL)
        return mc_err_set(err, MC_SOFTWARE, "no local time for the date: %s", strerror(errno));
    off = tm.tm_gmtoff / 60;
    if (off < 0) {
        sign = '-';
        off = -off;
    }
    return buf_printf(b, "Date: %s, %d %s %d %02d:%02d:%02d %c%02ld%02ld\r\n", days[tm.tm_wday],
                      tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                      tm.tm_sec, sign, off / 60, off % 60);
}

static int random_bytes(unsigned char *p, size_t n, struct mc_err *err)
{
    size_t got = 0;
    int fd;

#ifdef __linux__
    ssize_t r;
    do
        r = getrandom(p, n, 0);
    while (r < 0 && errno == EINTR);
    if (r == (ssize_t)n)
        return 0;
#endif
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && got < n) {
        ssize_t k = read(fd, p + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (fd >= 0)
        close(fd);
    if (got < n)
        return mc_err_set(err, MC_OSERR, "no random bytes for a message-id: %s", strerror(errno));
    return 0;
}

/* Random and the configured domain only: nothing about the user or the sender. */
static int add_message_id(struct buf *b, const char *domain, struct mc_err *err)
{
    unsigned char rnd[16];
    char hex[33];

    if (domain == NULL || *domain == '\0')
        domain = "localhost.localdomain";
    if (mc_has_ctl(domain) || strpbrk(domain, " <>()@,;:\\\"") ||
        has_8bit(domain, strlen(domain)) || strlen(domain) > 255)
        return mc_err_set(err, MC_CONFIG, "domain \"%s\" cannot be used in a message-id", domain);
    if (random_bytes(rnd, sizeof rnd, err) < 0)
        return -1;
    for (size_t i = 0; i < sizeof rnd; i++) {
        hex[2 * i] = "0123456789abcdef"[rnd[i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[rnd[i] & 15];
    }
    hex[32] = '\0';
    if (buf_printf(b, "Message-ID: <%s@%s>\r\n", hex, domain) < 0)
        return oom(err);
    return 0;
}

/* ---- quoted-printable --------------------------------------------------- */

/* RFC 3629 validity, one octet at a time, so it can follow a stream. */
struct utf8v {
    int need;             /* continuation octets still expected */
    unsigned char lo, hi; /* range of the next one */
    bool bad;
};

static void utf8_feed(struct utf8v *u, unsigned char c)
{
    if (u->need) {
        u->bad |= c < u->lo || c > u->hi;
        u->need--;
        u->lo = 0x80;
        u->hi = 0xbf;
        return;
    }
    if (c < 0x80)
        return;
    u->lo = 0x80;
    u->hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        u->need = 1;
    else if (c >= 0xe0 && c <= 0xef)
        u->need = 2;
    else if (c >= 0xf0 && c <= 0xf4)
        u->need = 3;
    else
        u->bad = true;
    /* No overlong forms, surrogates or code points past U+10FFFF. */
    if (c == 0xe0)
        u->lo = 0xa0;
    else if (c == 0xed)
        u->hi = 0x9f;
    else if (c == 0xf0)
        u->lo = 0x90;
    else if (c == 0xf4)
        u->hi = 0x8f;
}

struct qp {
    struct spool *out;
    char line[QP_LINE + 4];
    size_t len;
    int ws; /* a space or tab not yet known to be inside the line, or -1 */
};

static int qp_token(struct qp *q, const char *t, size_t n, struct mc_err *err)
{
    /* Keep room for the "=" of a soft line break. */
    if (q->len + n > QP_LINE - 1) {
        q->line[q->len++] = '=';
        if (spool_put(q->out, q->line, q->len, true, err) < 0)
            return -1;
        q->len = 0;
    }
    memcpy(q->line + q->len, t, n);
    q->len += n;
    return 0;
}

static int qp_escape(struct qp *q, unsigned char c, struct mc_err *err)
{
    char t[3] = {'=', "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 15]};

    return qp_token(q, t, 3, err);
}

/* White space at the end of a line must be encoded; elsewhere it is literal. */
static int qp_pending(struct qp *q, bool eol, struct mc_err *err)
{
    char c = (char)q->ws;

    if (q->ws < 0)
        return 0;
    q->ws = -1;
    return eol ? qp_escape(q, (unsigned char)c, err) : qp_token(q, &c, 1, err);
}

static int qp_byte(struct qp *q, unsigned char c, struct mc_err *err)
{
    /* The spool holds CRLF pairs only, so LF alone marks each line break. */
    if (c == '\r')
        return 0;
    if (qp_pending(q, c == '\n', err) < 0)
        return -1;
    if (c == '\n') {
        int r = spool_put(q->out, q->line, q->len, true, err);
        q->len = 0;
        return r;
    }
    if (is_wsp(c)) {
        q->ws = c;
        return 0;
    }
    if (c >= 33 && c <= 126 && c != '=')
        return qp_token(q, (const char *)&c, 1, err);
    return qp_escape(q, c, err);
}

static int qp_block(struct qp *q, struct utf8v *u, const char *p, size_t n, struct mc_err *err)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        /* Most octets are literal and fit on the line: no call for them. */
        if (c >= 33 && c <= 126 && c != '=' && q->ws < 0 && q->len < QP_LINE - 1) {
            q->line[q->len++] = (char)c;
            continue;
        }
        if (c >= 0x80 || u->need)
            utf8_feed(u, c);
        if (qp_byte(q, c, err) < 0)
            return -1;
    }
    return 0;
}

/* Re-encode m's body as quoted-printable into a new spool; *utf8 tells whether it was UTF-8. */
static int body_to_qp(struct msg *m, bool *utf8, struct mc_err *err)
{
    struct spool out;
    struct qp q = {&out, {0}, 0, -1};
    struct utf8v u = {0, 0, 0, false};
    struct msg_reader rd;
    char *in = malloc(IO_SIZE);
    int r = spool_open(&out, m->spool_dir, err);
    ssize_t n;

    if (in == NULL && r == 0)
        r = oom(err);
    msg_reader_init(&rd, m, MSG_RD_BODY);
    while (r == 0 && (n = msg_reader_read(&rd, in, IO_SIZE, err)) != 0)
        r = n < 0 ? -1 : qp_block(&q, &u, in, (size_t)n, err);
    msg_reader_done(&rd);
    if (r == 0 && (q.ws >= 0 || q.len > 0))
        r = qp_byte(&q, '\n', err);
    free(in);
    if (r == 0)
        r = spool_finish(&out, m, err);
    spool_discard(&out);
    *utf8 = !u.bad && u.need == 0;
    return r;
}

/*
 * The fields a re-encoded body needs.  A Content-Type other than text/plain
 * (text/html from a script that forgot MIME-Version, say) is kept: it still
 * describes the body; text/plain is replaced to get the charset right.
 */
static void mime_drop(struct fields *f, bool *keep_type)
{
    static const char *const plain[] = {"text/plain", NULL};
    bool is_plain = content_type_is(f, plain);

    *keep_type = field_find(f, "Content-Type") >= 0 && !is_plain;
    for (size_t i = 0; i < f->n; i++)
        if (field_is(f, i, "Content-Transfer-Encoding") || field_is(f, i, "MIME-Version") ||
            (!*keep_type && field_is(f, i, "Content-Type")))
            f->v[i].drop = true;
}

static int mime_add(struct buf *b, bool keep_type, bool utf8)
{
    int r = buf_addstr(b, "MIME-Version: 1.0\r\n");

    if (!keep_type)
        r |= buf_printf(b, "Content-Type: text/plain; charset=%s\r\n",
                        utf8 ? "utf-8" : "unknown-8bit");
    return r | buf_addstr(b, "Content-Transfer-Encoding: quoted-printable\r\n");
}

/* ---- building the final header block ------------------------------------ */

/* What head_build adds, decided before it runs. */
struct head_plan {
    bool qp, keep_type, utf8; /* MIME fields for a re-encoded body */
    bool from_add;            /* a From: at the end */
    ssize_t from_replace;     /* the field a forced From: replaces, or -1 */
    bool date, msgid, to;
};

static void plan(const struct rd *r, struct head_plan *p)
{
    const struct msg_opts *o = r->o;
    const struct fields *f = &r->f;
    bool have_from = field_find(f, "From") >= 0;
    bool sender = o->from_addr && *o->from_addr;

    p->from_replace = -1;
    p->from_add = sender && o->set_from != MSG_OFF && !have_from;
    if (sender && o->set_from == MSG_ON && have_from)
        p->from_replace = field_find(f, "From");
    p->date = o->set_date != MSG_OFF && field_find(f, "Date") < 0;
    p->msgid = o->set_msgid != MSG_OFF && field_find(f, "Message-ID") < 0;
    p->to = o->set_to == MSG_ON && field_find(f, "To") < 0 && field_find(f, "Cc") < 0;
}

static int emit_fields(struct buf *b, const struct fields *f, const struct head_plan *p,
                       const struct msg_opts *o, struct mc_err *err)
{
    for (size_t i = 0; i < f->n; i++) {
        const struct field *fl = &f->v[i];
        if (p && p->from_replace >= 0 && field_is(f, i, "From")) {
            if ((ssize_t)i == p->from_replace && add_from(b, o, err) < 0)
                return -1;
            continue;
        }
        if (!fl->drop && buf_add(b, f->base + fl->off, fl->len) < 0)
            return -1;
    }
    return 0;
}

static int head_build(struct rd *r, const struct head_plan *p, struct buf *b)
{
    const struct msg_opts *o = r->o;
    time_t now = o->now ? o->now : time(NULL);

    if (emit_fields(b, &r->f, p, o, r->err) < 0)
        return -1;
    if (p->qp && mime_add(b, p->keep_type, p->utf8) < 0)
        return -1;
    if (p->from_add && add_from(b, o, r->err) < 0)
        return -1;
    if (p->date && add_date(b, now, r->err) < 0)
        return -1;
    if (p->msgid && add_message_id(b, o->domain, r->err) < 0)
        return -1;
    if (p->to && buf_addstr(b, "To: undisclosed-recipients:;\r\n") < 0)
        return -1;
    return buf_addstr(b, "\r\n");
}

/* header_from, message_id and the flags, read from the final header block. */
static void head_facts(struct msg *m)
{
    struct fields f = {0};
    struct addrlist from = {0};
    ssize_t i;

    fields_split(&f, m->head.data, m->head.len);
    free(m->header_from);
    free(m->message_id);
    m->header_from = NULL;
    m->message_id = NULL;
    i = field_find(&f, "From");
    if (i >= 0) {
        size_t n;
        const char *v = field_value(&f, (size_t)i, &n);
        /* A From: that does not parse is the recipient's problem: no header_from. */
        if (addr_parse_list(v, n, &from, NULL) == 0 && from.n > 0)
            m->header_from = mc_strdup(from.v[0].addr);
        addrlist_free(&from);
    }
    i = field_find(&f, "Message-ID");
    if (i >= 0)
        m->message_id = field_text(&f, (size_t)i);
    fields_free(&f);
    m->utf8_headers = has_8bit(m->head.data, m->head.len);
    m->eightbit = m->utf8_headers || m->body_eightbit;
}

/* ---- recipients and Bcc ------------------------------------------------- */

static int rcpts_from(struct rd *r, size_t i)
{
    size_t n;
    const char *v = field_value(&r->f, i, &n);

    if (addr_parse_list(v, n, &r->m->rcpts, r->err) < 0)
        return mc_err_prefix(r->err, "line %lu", r->f.v[i].line);
    return 0;
}

static bool is_resent(const struct fields *f, size_t i)
{
    return f->v[i].namelen > 7 && strncasecmp(f->base + f->v[i].off, "Resent-", 7) == 0;
}

/*
 * -t: To, Cc and Bcc; but when the message was resent, only the newest
 * resent block counts: the topmost run of Resent- fields (RFC 5322 3.6.6).
 */
static int extract_rcpts(struct rd *r)
{
    const struct fields *f = &r->f;
    size_t i = 0;

    while (i < f->n && !is_resent(f, i))
        i++;
    if (i < f->n) {
        for (; i < f->n && is_resent(f, i); i++)
            if ((field_is(f, i, "Resent-To") || field_is(f, i, "Resent-Cc") ||
                 field_is(f, i, "Resent-Bcc")) &&
                rcpts_from(r, i) < 0)
                return -1;
        return 0;
    }
    for (i = 0; i < f->n; i++)
        if ((field_is(f, i, "To") || field_is(f, i, "Cc") || field_is(f, i, "Bcc")) &&
            rcpts_from(r, i) < 0)
            return -1;
    return 0;
}

static void drop_bcc(struct fields *f)
{
    for (size_t i = 0; i < f->n; i++)
        if (field_is(f, i, "Bcc") || field_is(f, i, "Resent-Bcc"))
            f->v[i].drop = true;
}

/* ---- reading ------------------------------------------------------------ */

/* The header block is complete, the body starts at offset start: find out what it may do. */
static void head_end(struct rd *r, off_t start)
{
    r->in_body = true;
    r->body_start = start;
    fields_split(&r->f, r->raw.data, r->raw.len);
    r->m->mime = field_find(&r->f, "MIME-Version") >= 0;
    r->refuse_long = r->m->mime || content_composite(&r->f);
}

/* Bare CR and NUL, searched only when the block holds one. */
static int check(struct rd *r, const char *p, size_t n)
{
    if (r->blk_nul && memchr(p, '\0', n))
        return mc_err_set(r->err, MC_DATAERR, "line %lu: NUL byte", r->line);
    if (r->blk_cr && memchr(p, '\r', n))
        return mc_err_set(r->err, MC_DATAERR,
                          "line %lu: bare CR (carriage return without line feed)", r->line);
    return 0;
}

/* A body line or a piece of one; crlf ends the line. */
static int body_add(struct rd *r, const char *p, size_t n, bool crlf)
{
    r->line_len += n;
    if (r->line_len > MSG_LINE_MAX) {
        if (r->refuse_long)
            return mc_err_set(r->err, MC_DATAERR,
                              "line %lu: line longer than 998 octets in a MIME message", r->line);
        r->long_line = true;
    }
    if (r->blk_8bit && !r->m->body_eightbit)
        r->m->body_eightbit = has_8bit(p, n);
    return spool_put(&r->sp, p, n, crlf, r->err);
}

static int head_line(struct rd *r, const char *p, size_t n)
{
    bool cont = n > 0 && is_wsp(p[0]) && r->raw.len > 0;

    if (n == 0 || (!cont && field_name_len(p, n) == 0)) {
        /* The separator is not kept: head_build writes its own. */
        head_end(r, n == 0 ? r->next : r->cur);
        return n == 0 ? 0 : body_add(r, p, n, true);
    }
    if (n > MSG_LINE_MAX)
        return mc_err_set(r->err, MC_DATAERR, "line %lu: header line longer than 998 octets",
                          r->line);
    if (n + 2 > MSG_HEADER_MAX - r->raw.len)
        return mc_err_set(r->err, MC_DATAERR, "line %lu: header block larger than 1 MiB", r->line);
    if (buf_add(&r->raw, p, n) < 0 || buf_add(&r->raw, "\r\n", 2) < 0)
        return oom(r->err);
    return 0;
}

/* A whole line, or the last piece of one, without its LF (lf: it had one). */
static int line_end(struct rd *r, const char *p, size_t n, bool lf)
{
    int rc;

    if (lf && n > 0 && p[n - 1] == '\r')
        n--;
    if (!r->in_piece && r->o->dot_ends && n == 1 && p[0] == '.') {
        r->done = true;
        r->body_end = r->cur;
        return 0;
    }
    if (check(r, p, n) < 0)
        return -1;
    if (r->in_body)
        rc = body_add(r, p, n, true);
    else
        rc = head_line(r, p, n);
    r->in_piece = false;
    r->line_len = 0;
    r->line++;
    return rc;
}

/* Part of a line longer than CARRY_MAX, no CR at its end: too long for the header block. */
static int line_piece(struct rd *r, const char *p, size_t n)
{
    if (check(r, p, n) < 0)
        return -1;
    if (!r->in_body) {
        if ((is_wsp(p[0]) && r->raw.len > 0) || field_name_len(p, n) > 0)
            return mc_err_set(r->err, MC_DATAERR, "line %lu: header line longer than 998 octets",
                              r->line);
        head_end(r, r->cur);
    }
    r->in_piece = true;
    return body_add(r, p, n, false);
}

static void block_scan(struct rd *r, const char *p, size_t n)
{
    r->blk_cr = memchr(p, '\r', n) != NULL;
    r->blk_nul = memchr(p, '\0', n) != NULL;
    r->blk_8bit = has_8bit(p, n);
}

/*
 * The bulk of a large message: body lines in a block with no CR or NUL.
 * What line_end would do for each, less what cannot happen here; a line
 * that needs more (too long, a lone dot) is left to line_end.
 */
static int body_lines(struct rd *r, const char **sp, const char *end)
{
    const char *s = *sp, *nl;
    int rc = 0;

    while ((nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
        size_t n = (size_t)(nl - s);
        if (n > MSG_LINE_MAX || (n == 1 && s[0] == '.' && r->o->dot_ends))
            break;
        if (r->blk_8bit && !r->m->body_eightbit)
            r->m->body_eightbit = has_8bit(s, n);
        if ((rc = spool_put(&r->sp, s, n, true, r->err)) < 0)
            break;
        r->line++;
        s = nl + 1;
    }
    *sp = s;
    return rc;
}

/* Handle the complete lines in p[0..n); *used says how much was consumed. */
static int feed(struct rd *r, const char *p, size_t n, size_t *used)
{
    const char *s = p, *end = p + n, *nl;

    block_scan(r, p, n);
    while (!r->done) {
        if (r->in_body && !r->in_piece && !r->blk_cr && !r->blk_nul &&
            body_lines(r, &s, end) < 0)
            return -1;
        if ((nl = memchr(s, '\n', (size_t)(end - s))) == NULL)
            break;
        r->cur = r->base + (s - p);
        r->next = r->base + (nl + 1 - p);
        if (line_end(r, s, (size_t)(nl - s), true) < 0)
            return -1;
        s = nl + 1;
    }
    /* A long unfinished line goes on in pieces; a CR waits to see what follows. */
    if (!r->done && (size_t)(end - s) > CARRY_MAX) {
        size_t k = (size_t)(end - s) - (end[-1] == '\r');
        r->cur = r->base + (s - p);
        r->next = r->cur + (off_t)k;
        if (line_piece(r, s, k) < 0)
            return -1;
        s += k;
    }
    *used = (size_t)(s - p);
    return 0;
}

/* Up to n octets of input at offset at: read in place with pread, up to the limit. */
static ssize_t read_block(struct rd *r, int fd, char *p, size_t n, off_t at)
{
    ssize_t k;

    if (r->limit >= 0 && (off_t)n > r->limit - at)
        n = (size_t)(r->limit - at);
    if (n == 0)
        return 0;
    do
        k = r->place_fd >= 0 ? pread(r->place_fd, p, n, at) : read(fd, p, n);
    while (k < 0 && errno == EINTR);
    if (k < 0)
        return mc_err_set(r->err, MC_IOERR, "reading the message: %s", strerror(errno));
    return k;
}

static void start_half(struct rd *r, off_t at);

static int read_input(struct rd *r, int fd, char *in)
{
    size_t have = 0, used;

    for (;;) {
        ssize_t n = read_block(r, fd, in + have, IO_SIZE, r->base + (off_t)have);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        have += (size_t)n;
        if (feed(r, in, have, &used) < 0)
            return -1;
        if (r->done)
            return 0;
        memmove(in, in + used, have - used);
        have -= used;
        r->base += (off_t)used;
        if (r->in_body && !r->split_tried && r->place_fd >= 0)
            start_half(r, r->base + (off_t)have);
    }
    r->body_end = r->base + (off_t)have;
    /* The last line had no newline: it gets CRLF like the others. */
    if (have > 0 || r->in_piece) {
        block_scan(r, in, have);
        r->cur = r->base;
        r->next = r->body_end;
        return line_end(r, in, have, false);
    }
    return 0;
}

/* ---- checking a large body on two cores --------------------------------- */

/*
 * A large body in a regular file is checked on two cores: a helper thread
 * takes the second half while this one does the first (100 MB: 34 -> 20
 * ms of a 100 ms send).  The halves meet at a line boundary and the
 * helper's counts are added to ours.  An error it finds would carry a line
 * number counted from the middle: its half is then checked again here, in
 * order, so that errors read the same whichever way the message came.
 */
#define SPLIT_MIN ((off_t)8 * 1024 * 1024)

struct half {
    pthread_t tid;
    struct rd r;
    struct msg scratch; /* where its body_add records 8-bit octets */
    struct mc_err err;
    char *in;
    int rc;
};

static void *half_run(void *arg)
{
    struct half *h = arg;

    h->rc = read_input(&h->r, -1, h->in);
    return NULL;
}

/* In the body, with the next read to start at at: hand the second half of the rest over. */
static void start_half(struct rd *r, off_t at)
{
    char probe[4096];
    off_t mid = at + (r->size - at) / 2;
    ssize_t k;
    const char *nl;
    struct half *h;
    off_t split;

    r->split_tried = true;
    if (r->size - at < SPLIT_MIN || !mc_second_core() || (k = pread(r->place_fd, probe, sizeof probe, mid)) <= 0 ||
        (nl = memchr(probe, '\n', (size_t)k)) == NULL || (h = calloc(1, sizeof *h)) == NULL)
        return;
    split = mid + (nl - probe) + 1;
    h->r = (struct rd){.o = r->o, .m = &h->scratch, .err = &h->err, .sp.fd = -1,
                       .place_fd = r->place_fd, .size = r->size, .limit = -1,
                       .split_tried = true, .base = split, .body_start = -1,
                       .line = 1, .in_body = true, .refuse_long = r->refuse_long};
    h->in = malloc(IO_SIZE + CARRY_MAX);
    if (h->in == NULL || mc_thread_start(&h->tid, half_run, h) != 0) {
        free(h->in);
        free(h);
        return;
    }
    r->limit = split;   /* not h->r.base: the helper is already moving it */
    r->half = h;
}

/* After our half: wait for the helper, then take its counts or, on an error, redo its half. */
static int end_half(struct rd *r, int fd, char *in, bool merge)
{
    struct half *h = r->half;
    int rc = 0;

    pthread_join(h->tid, NULL);
    r->half = NULL;
    r->limit = -1;
    if (merge && !r->done && h->rc == 0) {
        r->sp.size += h->r.sp.size;
        r->line += h->r.line - 1;
        r->long_line |= h->r.long_line;
        r->m->body_eightbit |= h->scratch.body_eightbit;
        r->body_end = h->r.body_end;
    } else if (merge && !r->done) {
        rc = read_input(r, fd, in);
    }
    free(h->in);
    free(h);
    return rc;
}

/* Everything is read: rewrite the header block, re-encode the body if a line was too long. */
static int finish(struct rd *r)
{
    struct msg *m = r->m;
    struct head_plan p = {0};

    if ((r->place_fd >= 0 ? place_finish(r) : spool_finish(&r->sp, m, r->err)) < 0)
        return -1;
    if (r->long_line) {
        if (body_to_qp(m, &p.utf8, r->err) < 0)
            return -1;
        p.qp = true;
        mime_drop(&r->f, &p.keep_type);
        m->qp_encoded = true;
        m->mime = true;
        m->body_eightbit = false;
    }
    if (r->o->extract_rcpts && extract_rcpts(r) < 0)
        return -1;
    if (r->o->remove_bcc)
        drop_bcc(&r->f);
    plan(r, &p);
    buf_init(&m->head, MSG_HEADER_MAX + HEAD_SLACK);
    if (head_build(r, &p, &m->head) < 0) {
        /* Failures that said nothing were appends past the buffer's maximum. */
        if (r->err->cls == MC_OK)
            mc_err_set(r->err, MC_DATAERR, "header block larger than 1 MiB");
        return -1;
    }
    head_facts(m);
    return 0;
}

static void msg_init(struct msg *m)
{
    memset(m, 0, sizeof *m);
    buf_init(&m->head, MSG_HEADER_MAX + HEAD_SLACK);
}

/*
 * A regular file is read where it is: a duplicate of fd, for the reads
 * when sending, with the offset reading starts at.  -1 for anything else,
 * or when no descriptor is left (the spool then does the job).  Files with
 * no size or no blocks are spooled too: /proc and /sys files are "regular"
 * but made up at each read, so a second read need not match the first
 * (`sendmail root < /proc/meminfo` would fail as a changed file).
 */
static int place_open(int fd, off_t *base, off_t *size)
{
    struct stat st;

    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0 || st.st_blocks == 0 ||
        (*base = lseek(fd, 0, SEEK_CUR)) < 0)
        return -1;
    *size = st.st_size;
    return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

int msg_read(int fd, const struct msg_opts *o, struct msg *m, struct mc_err *err)
{
    struct mc_err scratch;
    struct rd r = {.o = o, .m = m, .err = err ? err : &scratch, .line = 1, .body_start = -1,
                   .limit = -1};
    char *in = malloc(IO_SIZE + CARRY_MAX);
    int rc;

    msg_init(m);
    mc_err_clear(r.err);
    buf_init(&r.raw, MSG_HEADER_MAX);
    m->spool_dir = mc_strdup(spool_dir(o));
    r.place_fd = place_open(fd, &r.base, &r.size);
    spool_count_only(&r.sp);
    if (in == NULL)
        rc = oom(r.err);
    else
        rc = r.place_fd >= 0 ? 0 : spool_open(&r.sp, m->spool_dir, r.err);
    if (rc == 0)
        rc = read_input(&r, fd, in);
    if (r.half) {
        int hr = end_half(&r, fd, in, rc == 0);
        rc = rc < 0 ? rc : hr;
    }
    if (rc == 0 && !r.in_body)
        head_end(&r, -1);
    if (rc == 0)
        rc = finish(&r);
    free(in);
    spool_discard(&r.sp);
    if (r.place_fd >= 0)
        close(r.place_fd);
    buf_release(&r.raw);
    fields_free(&r.f);
    if (rc < 0)
        msg_free(m);
    return rc;
}

int msg_downgrade_7bit(struct msg *m, struct mc_err *err)
{
    struct fields f = {0};
    struct buf b;
    bool keep_type, utf8;
    int r = 0;

    if (m->utf8_headers)
        return mc_err_set(err, MC_DATAERR,
                          "header fields hold 8-bit characters, which need SMTPUTF8");
    if (!m->body_eightbit)
        return 0;
    fields_split(&f, m->head.data, m->head.len);
    if (m->mime || content_composite(&f)) {
        fields_free(&f);
        return mc_err_set(err, MC_DATAERR,
                          "8-bit MIME message cannot be converted: the server lacks 8BITMIME");
    }
    buf_init(&b, MSG_HEADER_MAX + HEAD_SLACK);
    r = body_to_qp(m, &utf8, err);
    mime_drop(&f, &keep_type);
    if (r == 0 && (emit_fields(&b, &f, NULL, NULL, err) < 0 || mime_add(&b, keep_type, utf8) < 0 ||
                   buf_addstr(&b, "\r\n") < 0))
        r = oom(err);
    fields_free(&f);
    if (r < 0) {
        buf_release(&b);
        return -1;
    }
    buf_release(&m->head);
    m->head = b;
    m->qp_encoded = true;
    m->mime = true;
    m->body_eightbit = false;
    m->eightbit = false;
    return 0;
}

off_t msg_size(const struct msg *m)
{
    return (off_t)m->head.len + m->body_size;
}

void msg_set_body(struct msg *m, int fd, off_t size)
{
    if (m->body.open)
        close(m->body.fd);
    memset(&m->body, 0, sizeof m->body);
    m->body.open = true;
    m->body.fd = fd;
    m->body.end = size;
    m->body_size = size;
}

void msg_free(struct msg *m)
{
    buf_release(&m->head);
    if (m->body.open)
        close(m->body.fd);
    addrlist_free(&m->rcpts);
    free(m->header_from);
    free(m->message_id);
    free(m->spool_dir);
    msg_init(m);
}
