/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * libFuzzer target for msg.c: the input goes through a memfd to msg_read
 * (with -t; a regular file, so the body is used in place), the result is
 * read back with msg_reader, and the promises of msg.h are checked: CRLF
 * pairs only, no NUL, no line over 998 octets, an empty line after the
 * header block, 8-bit flags that tell the truth, dot-stuffing that undoes,
 * and the same again after msg_downgrade_7bit.  The same input through a
 * pipe (spooled) must give the same result.
 *
 *   clang -fsanitize=fuzzer,address,undefined -I. -Isrc src/msg.c src/addr.c \
 *       src/err.c src/buf.c src/util.c tests/fuzz/fuzz_msg.c -o fuzz_msg
 *   ./fuzz_msg tests/fuzz/corpus/msg
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static char *read_flags(const struct msg *m, unsigned flags, size_t *len)
{
    struct msg_reader r;
    struct mc_err err;
    size_t n = 0, cap = 2 * (size_t)msg_size(m) + 2;
    char *p = malloc(cap + 777);
    ssize_t k;

    check(p != NULL);
    msg_reader_init(&r, m, flags);
    /* An odd chunk size, so reads straddle the header and body. */
    while ((k = msg_reader_read(&r, p + n, 777, &err)) > 0) {
        n += (size_t)k;
        check(n <= cap);
    }
    msg_reader_done(&r);
    check(k == 0);
    *len = n;
    return p;
}

static char *read_back(const struct msg *m, size_t *len)
{
    char *p = read_flags(m, 0, len), *st, *q;
    size_t sn;
    bool bol = true;

    check(*len == (size_t)msg_size(m));
    /* Dot-stuffed, it is the same with a dot before each line's leading dot. */
    st = read_flags(m, MSG_RD_STUFF, &sn);
    q = st;
    for (size_t i = 0; i < *len; i++) {
        if (bol && p[i] == '.') {
            check(q < st + sn && *q == '.');
            q++;
        }
        check(q < st + sn && *q == p[i]);
        q++;
        bol = p[i] == '\n';
    }
    check(q == st + sn);
    free(st);
    return p;
}

static void check_canonical(const struct msg *m)
{
    size_t n, col = 0, i;
    char *p = read_back(m, &n);
    const char *end = m->head.data + m->head.len;
    bool head_hi = false, body_hi = false;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x80 && i < m->head.len)
            head_hi = true;
        else if (c >= 0x80)
            body_hi = true;
        if (c == '\r') {
            check(i + 1 < n && p[i + 1] == '\n');
            i++;
            col = 0;
            continue;
        }
        check(c != '\n' && c != '\0');
        check(++col <= 998);
    }
    check(m->utf8_headers == head_hi);
    check(m->body_eightbit == body_hi);
    check(m->eightbit == (head_hi || body_hi));
    /* The header block ends with its one empty line. */
    check(m->head.len >= 2 && memcmp(end - 2, "\r\n", 2) == 0);
    check(m->head.len == 2 || (m->head.len >= 4 && memcmp(end - 4, "\r\n\r\n", 4) == 0));
    check(memmem(m->head.data, m->head.len - 2, "\r\n\r\n", 4) == NULL);
    check(strncmp(m->head.data, "\r\n", 2) != 0 || m->head.len == 2);
    free(p);
}

static struct msg_opts options(uint8_t f)
{
    static const char *const names[] = {NULL, "Fuzz User", "J\xc3\xb6rg \"x\" \\ y",
                                        "Eve\r\nBcc: x@example.org"};
    struct msg_opts o = {
        .dot_ends = f & 1,
        .extract_rcpts = true,
        .remove_bcc = !(f & 2),
        .set_from = (enum msg_tristate)((f >> 2) % 3),
        .set_date = MSG_AUTO,
        .set_msgid = MSG_AUTO,
        .set_to = (f & 16) ? MSG_ON : MSG_AUTO,
        .from_addr = "fuzz@example.org",
        .from_name = names[(f >> 5) & 3],
        .domain = "example.org",
        .tmpdir = "/dev/shm",
        .now = 1700000000,
    };
    return o;
}

/* The input through a pipe: the spooled path, to compare with the file's. */
static int read_pipe(const uint8_t *data, size_t size, const struct msg_opts *o, struct msg *m,
                     struct mc_err *err)
{
    int p[2], r;

    check(pipe(p) == 0);
    check(fcntl(p[1], F_SETPIPE_SZ, 1 << 20) >= 0 || size <= 65536);
    check(write(p[1], data, size) == (ssize_t)size);
    close(p[1]);
    r = msg_read(p[0], o, m, err);
    close(p[0]);
    return r;
}

static char *body_of(const struct msg *m, size_t *n)
{
    struct msg_reader r;
    struct mc_err err;
    char *p = malloc((size_t)m->body_size + 16);
    ssize_t k;

    check(p != NULL);
    *n = 0;
    msg_reader_init(&r, m, MSG_RD_BODY);
    while ((k = msg_reader_read(&r, p + *n, 16, &err)) > 0)
        *n += (size_t)k;
    msg_reader_done(&r);
    check(k == 0 && *n == (size_t)m->body_size);
    return p;
}

/* The file's result and the pipe's agree (header blocks differ in the random Message-ID). */
static void same(const struct msg *a, const struct msg *b)
{
    size_t na, nb;
    char *pa = body_of(a, &na), *pb = body_of(b, &nb);

    check(a->head.len == b->head.len && a->body_size == b->body_size);
    check(a->eightbit == b->eightbit && a->body_eightbit == b->body_eightbit &&
          a->utf8_headers == b->utf8_headers && a->mime == b->mime &&
          a->qp_encoded == b->qp_encoded && a->rcpts.n == b->rcpts.n);
    check(na == nb && memcmp(pa, pb, na) == 0);
    free(pa);
    free(pb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct msg_opts o;
    struct msg m, mp;
    struct mc_err err, errp;
    int fd, r, rp;

    if (size < 1 || size > (1 << 20))
        return 0;
    o = options(data[0]);
    fd = memfd_create("fuzz_msg", MFD_CLOEXEC);
    check(fd >= 0);
    check(write(fd, data + 1, size - 1) == (ssize_t)(size - 1));
    check(lseek(fd, 0, SEEK_SET) == 0);
    r = msg_read(fd, &o, &m, &err);
    rp = read_pipe(data + 1, size - 1, &o, &mp, &errp);
    check(r == rp);
    if (r == 0) {
        /* An empty file is spooled, as are those of /proc (size 0). */
        check(m.body.in_place || m.qp_encoded || size == 1);
        same(&m, &mp);
        check_canonical(&m);
        if (msg_downgrade_7bit(&m, &err) == 0) {
            check_canonical(&m);
            check(!m.body_eightbit);
        }
    } else {
        check(err.cls == MC_DATAERR && strchr(err.msg, '\n') == NULL);
        check(err.cls == errp.cls && strcmp(err.msg, errp.msg) == 0);
    }
    msg_free(&m);
    msg_free(&mp);
    close(fd);
    return 0;
}
