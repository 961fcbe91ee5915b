/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Unit tests for msg.c: real input through pipes and files, the canonical
 * bytes read back through msg_reader.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "msg.h"

#define NOW 1700000000 /* Tue, 14 Nov 2023 22:13:20 +0000 */

/* ---- helpers ------------------------------------------------------------ */

/* Options under which the output is exactly predictable: nothing is added. */
static struct msg_opts opts(void)
{
    struct msg_opts o = {
        .dot_ends = true,
        .remove_bcc = true,
        .set_from = MSG_OFF,
        .set_date = MSG_OFF,
        .set_msgid = MSG_OFF,
        .set_to = MSG_AUTO,
        .from_addr = "alice@example.org",
        .domain = "example.org",
        .now = NOW,
    };
    return o;
}

/* A child writes the input into a pipe, in steps of `step` octets (0: at once). */
static int pipe_from(const char *s, size_t n, size_t step, pid_t *pid)
{
    int fd[2];

    assert_int_equal(pipe(fd), 0);
    *pid = fork();
    assert_true(*pid >= 0);
    if (*pid == 0) {
        signal(SIGPIPE, SIG_IGN);
        close(fd[0]);
        for (size_t off = 0; off < n;) {
            size_t k = step && n - off > step ? step : n - off;
            ssize_t w = write(fd[1], s + off, k);
            if (w <= 0)
                _exit(0); /* the reader stopped early (a lone dot): fine */
            off += (size_t)w;
            if (step)
                usleep(200);
        }
        _exit(0);
    }
    close(fd[1]);
    return fd[0];
}

static int read_step(const char *s, size_t n, size_t step, const struct msg_opts *o, struct msg *m,
                     struct mc_err *err)
{
    pid_t pid;
    int status, fd = pipe_from(s, n, step, &pid);
    int r = msg_read(fd, o, m, err);

    close(fd);
    waitpid(pid, &status, 0);
    return r;
}

static int read_n(const char *s, size_t n, const struct msg_opts *o, struct msg *m,
                  struct mc_err *err)
{
    return read_step(s, n, 0, o, m, err);
}

/* The same through a regular file, as when stdin is redirected from one. */
static int read_file(const char *s, size_t n, const struct msg_opts *o, struct msg *m,
                     struct mc_err *err)
{
    FILE *f = tmpfile();
    int r;

    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, n, f), n);
    fflush(f);
    rewind(f);
    r = msg_read(fileno(f), o, m, err);
    fclose(f);
    return r;
}

/* Everything msg_reader produces with flags, read `chunk` octets at a time; NUL-terminated. */
static char *dump_flags(const struct msg *m, unsigned flags, size_t chunk, size_t *len)
{
    struct msg_reader r;
    struct mc_err err;
    size_t cap = 2 * (size_t)msg_size(m) + 3, n = 0;
    char *p = malloc(cap + chunk);
    ssize_t k;

    assert_non_null(p);
    msg_reader_init(&r, m, flags);
    while ((k = msg_reader_read(&r, p + n, chunk, &err)) > 0) {
        n += (size_t)k;
        assert_true(n <= cap - 1);
    }
    msg_reader_done(&r);
    if (k < 0)
        fail_msg("msg_reader_read failed: %s", err.msg);
    p[n] = '\0';
    if (len)
        *len = n;
    return p;
}

/* The same through msg_reader_next (with a helper thread for a large body). */
static char *dump_next(const struct msg *m, unsigned flags, size_t *len)
{
    struct msg_reader r;
    struct mc_err err;
    size_t cap = 2 * (size_t)msg_size(m) + 3, n = 0;
    char *p = malloc(cap);
    const char *piece;
    ssize_t k;

    assert_non_null(p);
    msg_reader_init(&r, m, flags);
    while ((k = msg_reader_next(&r, &piece, &err)) > 0) {
        assert_true(n + (size_t)k <= cap - 1);
        memcpy(p + n, piece, (size_t)k);
        n += (size_t)k;
    }
    msg_reader_done(&r);
    if (k < 0)
        fail_msg("msg_reader_next failed: %s", err.msg);
    p[n] = '\0';
    *len = n;
    return p;
}

static char *dump_chunk(const struct msg *m, size_t chunk, size_t *len)
{
    size_t n;
    char *p = dump_flags(m, 0, chunk, &n);

    assert_int_equal(n, (size_t)msg_size(m));
    if (len)
        *len = n;
    return p;
}

static char *dump(const struct msg *m)
{
    return dump_chunk(m, 65536, NULL);
}

/* s (CRLF lines) dot-stuffed, the slow obvious way. */
static char *stuff(const char *s)
{
    char *o = malloc(2 * strlen(s) + 1), *q = o;
    bool bol = true;

    assert_non_null(o);
    for (; *s; s++) {
        if (bol && *s == '.')
            *q++ = '.';
        *q++ = *s;
        bol = *s == '\n';
    }
    *q = '\0';
    return o;
}

/* m read every way (whole, in small odd pieces, dot-stuffed) gives want. */
static void expect_reads(const struct msg *m, const char *want)
{
    static const size_t chunks[] = {65536, 16, 17, 101};
    char *st = stuff(want), *got;
    size_t n;

    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        got = dump_chunk(m, chunks[i], NULL);
        assert_string_equal(got, want);
        free(got);
        got = dump_flags(m, MSG_RD_STUFF, chunks[i], NULL);
        assert_string_equal(got, st);
        free(got);
    }
    got = dump_next(m, MSG_RD_STUFF, &n);
    assert_string_equal(got, st);
    free(got);
    free(st);
}

/* in, through a pipe (spooled) and from a regular file (read in place), gives want. */
static void expect(const struct msg_opts *o, const char *in, const char *want)
{
    for (int file = 0; file < 2; file++) {
        struct msg m;
        struct mc_err err;
        int r = file ? read_file(in, strlen(in), o, &m, &err) : read_n(in, strlen(in), o, &m, &err);

        if (r < 0)
            fail_msg("msg_read (%s) failed: %s", file ? "file" : "pipe", err.msg);
        /* An empty file is spooled like the files of /proc (size 0). */
        assert_int_equal(m.body.in_place, file && !m.qp_encoded && in[0] != '\0');
        expect_reads(&m, want);
        msg_free(&m);
    }
}

static void expect_err_n(const struct msg_opts *o, const char *in, size_t n, enum mc_class cls,
                         const char *msg)
{
    for (int file = 0; file < 2; file++) {
        struct msg m;
        struct mc_err err;

        assert_int_equal(file ? read_file(in, n, o, &m, &err) : read_n(in, n, o, &m, &err), -1);
        assert_int_equal(err.cls, cls);
        assert_string_equal(err.msg, msg);
        assert_false(m.body.open);
        msg_free(&m);
    }
}

static void expect_err(const struct msg_opts *o, const char *in, enum mc_class cls, const char *msg)
{
    expect_err_n(o, in, strlen(in), cls, msg);
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decode quoted-printable, checking the encoder's rules on the way. */
static char *qp_decode(const char *s, size_t n, size_t *outn)
{
    char *o = malloc(n + 1);
    size_t k = 0, col = 0;

    assert_non_null(o);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r') {
            assert_true(i + 1 < n && s[i + 1] == '\n');
            assert_true(col == 0 || (s[i - 1] != ' ' && s[i - 1] != '\t'));
            o[k++] = '\r';
            o[k++] = '\n';
            i++;
            col = 0;
            continue;
        }
        assert_true(c == '\t' || (c >= 32 && c < 127));
        if (c == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
            assert_true(col + 1 <= 76);
            i += 2;
            col = 0;
            continue;
        }
        if (c == '=') {
            assert_true(i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0);
            o[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
            col += 3;
        } else {
            o[k++] = (char)c;
            col++;
        }
        assert_true(col <= 76);
    }
    *outn = k;
    o[k] = '\0';
    return o;
}

/* The body part of a dump (after the first empty line). */
static const char *body_of(const char *all)
{
    const char *b = strstr(all, "\r\n\r\n");

    if (strncmp(all, "\r\n", 2) == 0)
        return all + 2;
    assert_non_null(b);
    return b + 4;
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);

    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static char *concat(const char *a, const char *b, const char *c)
{
    size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
    char *s = malloc(na + nb + nc + 1);

    assert_non_null(s);
    memcpy(s, a, na);
    memcpy(s + na, b, nb);
    memcpy(s + na + nb, c, nc + 1);
    return s;
}

/* Every line of the dump is at most 998 octets and every CR/LF a CRLF pair. */
static void assert_canonical(const char *p, size_t n)
{
    size_t col = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r') {
            assert_true(i + 1 < n && p[i + 1] == '\n');
            i++;
            col = 0;
            continue;
        }
        assert_true(p[i] != '\n' && p[i] != '\0');
        assert_true(++col <= 998);
    }
}

/* ---- line endings ------------------------------------------------------- */

static void lf_becomes_crlf(void **state)
{
    struct msg_opts o = opts();

    expect(&o, "Subject: hi\n\nline one\nline two\n",
           "Subject: hi\r\n\r\nline one\r\nline two\r\n");
}

static void crlf_kept(void **state)
{
    struct msg_opts o = opts();

    expect(&o, "Subject: hi\r\n\r\nline one\r\nline two\r\n",
           "Subject: hi\r\n\r\nline one\r\nline two\r\n");
}

static void mixed_endings(void **state)
{
    struct msg_opts o = opts();

    expect(&o, "Subject: hi\r\nTo: a@example.org\n\r\none\ntwo\r\n\nthree\n",
           "Subject: hi\r\nTo: a@example.org\r\n\r\none\r\ntwo\r\n\r\nthree\r\n");
}

static void last_line_without_newline(void **state)
{
    struct msg_opts o = opts();

    expect(&o, "Subject: hi\n\nno newline", "Subject: hi\r\n\r\nno newline\r\n");
    expect(&o, "Subject: hi", "Subject: hi\r\n\r\n");
}

static void bare_cr_in_body(void **state)
{
    struct msg_opts o = opts();

    expect_err(&o, "Subject: hi\n\nok\nbad\rline\n", MC_DATAERR,
               "line 4: bare CR (carriage return without line feed)");
    expect_err(&o, "Subject: hi\r\n\r\nok\r\nok\r\nbad\r\r\n", MC_DATAERR,
               "line 5: bare CR (carriage return without line feed)");
}

static void bare_cr_in_header(void **state)
{
    struct msg_opts o = opts();

    expect_err(&o, "Subject: a\rb\n\nbody\n", MC_DATAERR,
               "line 1: bare CR (carriage return without line feed)");
}

static void cr_at_end_of_input(void **state)
{
    struct msg_opts o = opts();

    expect_err(&o, "Subject: a\n\nbody\r", MC_DATAERR,
               "line 3: bare CR (carriage return without line feed)");
}

static void nul_in_body(void **state)
{
    struct msg_opts o = opts();
    static const char in[] = "Subject: a\n\nwor\0ld\n";

    expect_err_n(&o, in, sizeof in - 1, MC_DATAERR, "line 3: NUL byte");
}

/* msmtp: a header line starting with NUL stopped Bcc removal.  Here it is refused. */
static void nul_starting_header_line(void **state)
{
    struct msg_opts o = opts();
    static const char in[] = "To: a@example.org\n\0X: y\nBcc: secret@example.org\n\nbody\n";

    expect_err_n(&o, in, sizeof in - 1, MC_DATAERR, "line 2: NUL byte");
}

static void slow_writer_crlf_split(void **state)
{
    struct msg_opts o = opts();
    static const char in[] = "Subject: hi\r\n\r\nab\r\ncd\r\n.\r\nignored\r\n";
    struct msg m;
    struct mc_err err;
    char *got;

    assert_int_equal(read_step(in, sizeof in - 1, 1, &o, &m, &err), 0);
    got = dump(&m);
    assert_string_equal(got, "Subject: hi\r\n\r\nab\r\ncd\r\n");
    free(got);
    msg_free(&m);
}

static void slow_writer_bare_cr(void **state)
{
    struct msg_opts o = opts();
    static const char in[] = "Subject: hi\r\n\r\nab\rcd\r\n";
    struct msg m;
    struct mc_err err;

    assert_int_equal(read_step(in, sizeof in - 1, 1, &o, &m, &err), -1);
    assert_string_equal(err.msg, "line 3: bare CR (carriage return without line feed)");
}

/* ---- the lone dot ------------------------------------------------------- */

static void lone_dot_ends_input(void **state)
{
    struct msg_opts o = opts();

    expect(&o, "Subject: a\n\nbody\n.\nnot part of it\n", "Subject: a\r\n\r\nbody\r\n");
    expect(&o, "Subject: a\r\n\r\nbody\r\n.\r\nnot part of it\r\n", "Subject: a\r\n\r\nbody\r\n");
}

static void lone_dot_at_end_without_newline(void **state)
{
    struct msg_opts o = opts();

    expect(&o, "Subject: a\n\nbody\n.", "Subject: a\r\n\r\nbody\r\n");
}

static void lone_dot_in_header_block(void **state)
{
    struct msg_opts o = opts();

    expect(&o, "Subject: a\n.\nTo: b@example.org\n", "Subject: a\r\n\r\n");
}

static void dot_with_i_is_text(void **state)
{
    struct msg_opts o = opts();

    o.dot_ends = false;
    expect(&o, "Subject: a\n\nbody\n.\nmore\n", "Subject: a\r\n\r\nbody\r\n.\r\nmore\r\n");
}

static void dots_not_alone_are_text(void **state)
{
    struct msg_opts o = opts();

    /* No dot-stuffing here: that is the SMTP engine's job. */
    expect(&o, "Subject: a\n\n..\n. \n.x\n", "Subject: a\r\n\r\n..\r\n. \r\n.x\r\n");
}

/* ---- the header block --------------------------------------------------- */

static void no_header_block(void **state)
{
    struct msg_opts o = opts();

    expect(&o, "hello world\nsecond: line\n", "\r\nhello world\r\nsecond: line\r\n");
}

static void first_line_empty(void **state)
{
    struct msg_opts o = opts();

    expect(&o, "\nTo: not-a-header@example.org\n", "\r\nTo: not-a-header@example.org\r\n");
}

static void first_line_indented(void **state)
{
    struct msg_opts o = opts();

    expect(&o, " indented: text\nmore\n", "\r\n indented: text\r\nmore\r\n");
}

static void text_line_ends_header_block(void **state)
{
    struct msg_opts o = opts();

    expect(&o, "Subject: a\nTo: b@example.org\nthis is text\nX-Not: header\n",
           "Subject: a\r\nTo: b@example.org\r\n\r\nthis is text\r\nX-Not: header\r\n");
}

static void folding_preserved(void **state)
{
    struct msg_opts o = opts();

    expect(&o, "Subject: a\n  long\n\tsubject\nX-Odd-Name : v\n\nbody\n",
           "Subject: a\r\n  long\r\n\tsubject\r\nX-Odd-Name : v\r\n\r\nbody\r\n");
}

static void header_line_too_long(void **state)
{
    struct msg_opts o = opts();
    char *v = repeat('x', 998 - 3), *in = concat("To: a@example.org\nX: ", v, "\n\nbody\n");
    char *want = concat("To: a@example.org\r\nX: ", v, "\r\n\r\nbody\r\n");

    /* "X: " + 995 = 998 octets: accepted. */
    expect(&o, in, want);
    free(want);
    free(in);
    in = concat("To: a@example.org\nX: ", v, "y\n\nbody\n");
    expect_err(&o, in, MC_DATAERR, "line 2: header line longer than 998 octets");
    free(in);
    free(v);
}

static void continuation_too_long(void **state)
{
    struct msg_opts o = opts();
    char *v = repeat('x', 1200), *in = concat("Subject: a\n ", v, "\n\nbody\n");

    expect_err(&o, in, MC_DATAERR, "line 2: header line longer than 998 octets");
    free(in);
    free(v);
}

/* Longer than the read buffer: the line arrives in pieces. */
static void huge_header_line(void **state)
{
    struct msg_opts o = opts();
    char *v = repeat('x', 600000), *in = concat("Subject: a\nX-Big: ", v, "\n\nbody\n");

    expect_err(&o, in, MC_DATAERR, "line 2: header line longer than 998 octets");
    free(in);
    free(v);
}

static void header_block_over_limit(void **state)
{
    struct msg_opts o = opts();
    size_t n = 12000, len = 100; /* 1.2 MB of 100-octet fields */
    char *in = malloc(n * len + 16), *p = in;

    for (size_t i = 0; i < n; i++, p += len) {
        memset(p, 'v', len);
        memcpy(p, "X-Pad: ", 7);
        p[len - 1] = '\n';
    }
    memcpy(p, "\nbody\n", 7);
    {
        struct msg m;
        struct mc_err err;
        assert_int_equal(read_n(in, strlen(in), &o, &m, &err), -1);
        assert_int_equal(err.cls, MC_DATAERR);
        assert_string_equal(err.msg, "line 10382: header block larger than 1 MiB");
    }
    free(in);
}

static void empty_message(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    char *got;

    expect(&o, "", "\r\n");
    o.set_from = o.set_date = o.set_msgid = MSG_AUTO;
    o.from_name = "Alice";
    assert_int_equal(read_n("", 0, &o, &m, &err), 0);
    got = dump(&m);
    assert_int_equal(strncmp(got, "From: Alice <alice@example.org>\r\nDate: ", 39), 0);
    assert_non_null(strstr(got, "\r\nMessage-ID: <"));
    assert_int_equal(m.body_size, 0);
    assert_string_equal(got + strlen(got) - 5, ">\r\n\r\n");
    free(got);
    msg_free(&m);
}

/* ---- Bcc ---------------------------------------------------------------- */

static void bcc_removed_with_folding(void **state)
{
    struct msg_opts o = opts();

    expect(&o,
           "To: a@example.org\nBcc: b@example.org,\n  c@example.org\nSubject: s\n"
           "bCC : d@example.org\nResent-Bcc: e@example.org\n\tf@example.org\nX: y\n\nbody\n",
           "To: a@example.org\r\nSubject: s\r\nX: y\r\n\r\nbody\r\n");
}

static void bcc_kept_when_asked(void **state)
{
    struct msg_opts o = opts();

    o.remove_bcc = false;
    expect(&o, "To: a@example.org\nBcc: b@example.org\n\nbody\n",
           "To: a@example.org\r\nBcc: b@example.org\r\n\r\nbody\r\n");
}

static void bcc_like_names_kept(void **state)
{
    struct msg_opts o = opts();

    expect(&o, "Bccx: 1\nX-Bcc: 2\n\nBcc: in the body\n",
           "Bccx: 1\r\nX-Bcc: 2\r\n\r\nBcc: in the body\r\n");
}

/* ---- -t ----------------------------------------------------------------- */

static void assert_rcpts(const struct msg *m, const char *const *want, size_t n)
{
    assert_int_equal(m->rcpts.n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(m->rcpts.v[i].addr, want[i]);
}

static void extract_to_cc_bcc(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    static const char in[] = "From: me@example.org\nTo: Bob <bob@example.org>, carol@example.org\n"
                             "Cc: =?UTF-8?B?SsO2aG4=?= <john@example.org>\nBcc: dave@example.org,\n"
                             " eve@example.org\nSubject: hi\n\nTo: body@example.org\n";
    static const char *const want[] = {"bob@example.org", "carol@example.org", "john@example.org",
                                       "dave@example.org", "eve@example.org"};
    char *got;

    o.extract_rcpts = true;
    assert_int_equal(read_n(in, sizeof in - 1, &o, &m, &err), 0);
    assert_rcpts(&m, want, 5);
    got = dump(&m);
    assert_null(strstr(got, "dave"));
    assert_null(strstr(got, "Bcc"));
    free(got);
    msg_free(&m);
}

static void extract_dedup(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    static const char in[] = "To: a@example.org, b@example.org\nCc: a@EXAMPLE.org\n\nx\n";
    static const char *const want[] = {"a@example.org", "b@example.org"};

    o.extract_rcpts = true;
    assert_int_equal(read_n(in, sizeof in - 1, &o, &m, &err), 0);
    assert_rcpts(&m, want, 2);
    msg_free(&m);
}

static void extract_only_when_asked(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;

    assert_int_equal(read_n("To: a@example.org\n\nx\n", 21, &o, &m, &err), 0);
    assert_int_equal(m.rcpts.n, 0);
    msg_free(&m);
}

static void extract_resent_first_block(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    static const char in[] = "Resent-From: r@example.org\nResent-To: new1@example.org\n"
                             "Resent-Cc: new2@example.org\nResent-Bcc: hidden@example.org\n"
                             "Resent-Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
                             "Received: from x by y; Tue, 14 Nov 2023 20:00:00 +0000\n"
                             "Resent-To: old@example.org\nTo: orig@example.org\n"
                             "Cc: orig2@example.org\n\nbody\n";
    static const char *const want[] = {"new1@example.org", "new2@example.org",
                                       "hidden@example.org"};
    char *got;

    o.extract_rcpts = true;
    assert_int_equal(read_n(in, sizeof in - 1, &o, &m, &err), 0);
    assert_rcpts(&m, want, 3);
    got = dump(&m);
    assert_null(strstr(got, "hidden"));
    assert_non_null(strstr(got, "Resent-To: old@example.org\r\n"));
    free(got);
    msg_free(&m);
}

static void extract_error_names_line(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    static const char in[] = "Subject: x\nCc: ok@example.org\nTo: <broken@example.org\n\nbody\n";

    o.extract_rcpts = true;
    assert_int_equal(read_n(in, sizeof in - 1, &o, &m, &err), -1);
    assert_int_equal(err.cls, MC_DATAERR);
    assert_int_equal(strncmp(err.msg, "line 3: ", 8), 0);
    assert_int_equal(m.rcpts.n, 0);
}

/* ---- long lines and quoted-printable ------------------------------------ */

/* Read `in`, expect a QP-encoded body decoding to `body` (CRLF form) and the given charset. */
static void expect_qp(const char *in, size_t n, const char *body, size_t bodylen, const char *ctype)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    size_t len, dn;
    char *got, *dec;
    const char *b;

    if (read_n(in, n, &o, &m, &err) < 0)
        fail_msg("msg_read: %s", err.msg);
    assert_true(m.qp_encoded);
    assert_true(m.mime);
    assert_false(m.body_eightbit);
    got = dump_chunk(&m, 65536, &len);
    assert_canonical(got, len);
    assert_non_null(strstr(got, "MIME-Version: 1.0\r\n"));
    assert_non_null(strstr(got, ctype));
    assert_non_null(strstr(got, "Content-Transfer-Encoding: quoted-printable\r\n\r\n"));
    b = body_of(got);
    dec = qp_decode(b, len - (size_t)(b - got), &dn);
    assert_int_equal(dn, bodylen);
    assert_memory_equal(dec, body, bodylen);
    free(dec);
    free(got);
    msg_free(&m);
}

static void long_line_becomes_qp(void **state)
{
    char *l = repeat('a', 1500), *in = concat("Subject: s\n\nshort\n", l, "\nend=\n");
    char *want = concat("short\r\n", l, "\r\nend=\r\n");

    expect_qp(in, strlen(in), want, strlen(want), "Content-Type: text/plain; charset=utf-8\r\n");
    free(in);
    free(want);
    free(l);
}

static void long_line_qp_utf8(void **state)
{
    char *l = repeat('e', 1200), *in, *want;

    memcpy(l + 500, "\xc3\xa9", 2); /* é */
    in = concat("Subject: s\n\n", l, " \t\n");
    want = concat("", l, " \t\r\n");
    expect_qp(in, strlen(in), want, strlen(want), "charset=utf-8\r\n");
    free(in);
    free(want);
    free(l);
}

static void long_line_qp_unknown_8bit(void **state)
{
    char *l = repeat('e', 1200), *in, *want;

    l[100] = (char)0xe9; /* Latin-1 é: not UTF-8 */
    in = concat("Subject: s\n\n", l, "\n");
    want = concat("", l, "\r\n");
    expect_qp(in, strlen(in), want, strlen(want), "Content-Type: text/plain; charset=unknown-8bit");
    free(in);
    free(want);
    free(l);
}

static void long_line_limit_exact(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    char *l = repeat('b', 998), *in = concat("Subject: s\n\n", l, "\n");

    assert_int_equal(read_n(in, strlen(in), &o, &m, &err), 0);
    assert_false(m.qp_encoded);
    assert_false(m.mime);
    msg_free(&m);
    free(in);
    in = concat("Subject: s\n\n", l, "b\n");
    assert_int_equal(read_n(in, strlen(in), &o, &m, &err), 0);
    assert_true(m.qp_encoded);
    msg_free(&m);
    free(in);
    free(l);
}

/* One line far longer than the read buffer, no newline at all: pieces and direct writes. */
static void huge_line_qp(void **state)
{
    size_t n = 3 * 1024 * 1024;
    char *l = repeat('q', n), *in, *want;

    for (size_t i = 0; i < n; i += 997)
        l[i] = "= \t\xc3\xa9x"[i % 5];
    l[n - 1] = 'z';
    in = concat("Subject: s\n\n", l, "");
    want = concat("", l, "\r\n");
    expect_qp(in, strlen(in), want, strlen(want), "charset=unknown-8bit");
    free(in);
    free(want);
    free(l);
}

static void long_line_mime_refused(void **state)
{
    struct msg_opts o = opts();
    char *l = repeat('a', 1000),
         *in = concat("MIME-Version: 1.0\nContent-Type: text/plain\n\nok\n", l, "\n");

    expect_err(&o, in, MC_DATAERR, "line 5: line longer than 998 octets in a MIME message");
    free(in);
    free(l);
}

static void long_line_multipart_refused(void **state)
{
    struct msg_opts o = opts();
    char *l = repeat('a', 1000),
         *in = concat("Content-Type: multipart/mixed; boundary=x\n\n", l, "\n");

    expect_err(&o, in, MC_DATAERR, "line 3: line longer than 998 octets in a MIME message");
    free(in);
    free(l);
}

static void long_line_keeps_html_type(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    char *l = repeat('a', 1000),
         *in = concat("Content-Type: text/html; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n",
                      l, "\n");
    char *got;

    assert_int_equal(read_n(in, strlen(in), &o, &m, &err), 0);
    got = dump(&m);
    assert_int_equal(strncmp(got,
                             "Content-Type: text/html; charset=UTF-8\r\nMIME-Version: 1.0\r\n"
                             "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                             106),
                     0);
    assert_null(strstr(got, "8bit"));
    free(got);
    msg_free(&m);
    free(in);
    free(l);
}

/* ---- flags and the 7-bit downgrade --------------------------------------- */

static void flags_7bit(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;

    assert_int_equal(read_n("Subject: a\n\nb\n", 14, &o, &m, &err), 0);
    assert_false(m.eightbit);
    assert_false(m.utf8_headers);
    assert_false(m.body_eightbit);
    assert_false(m.mime);
    assert_int_equal(msg_downgrade_7bit(&m, &err), 0);
    assert_false(m.qp_encoded);
    msg_free(&m);
}

static void flags_8bit_body(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    static const char in[] = "MIME-Version: 1.0\nSubject: a\n\nd\xc3\xa9j\xc3\xa0\n";

    assert_int_equal(read_n(in, sizeof in - 1, &o, &m, &err), 0);
    assert_true(m.eightbit);
    assert_true(m.body_eightbit);
    assert_false(m.utf8_headers);
    assert_true(m.mime);
    msg_free(&m);
}

static void flags_8bit_header(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    static const char in[] = "Subject: d\xc3\xa9j\xc3\xa0\n\nplain\n";

    assert_int_equal(read_n(in, sizeof in - 1, &o, &m, &err), 0);
    assert_true(m.eightbit);
    assert_true(m.utf8_headers);
    assert_false(m.body_eightbit);
    assert_int_equal(msg_downgrade_7bit(&m, &err), -1);
    assert_int_equal(err.cls, MC_DATAERR);
    assert_non_null(strstr(err.msg, "SMTPUTF8"));
    msg_free(&m);
}

static void downgrade_non_mime(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    static const char in[] = "Subject: a\nContent-Type: text/plain; charset=latin1\n\n"
                             "caf\xe9 = ok \nline two\n";
    static const char body[] = "caf\xe9 = ok \r\nline two\r\n";
    char *got, *dec;
    size_t len, dn;
    const char *b;

    assert_int_equal(read_n(in, sizeof in - 1, &o, &m, &err), 0);
    assert_true(m.eightbit);
    assert_int_equal(msg_downgrade_7bit(&m, &err), 0);
    assert_true(m.qp_encoded);
    assert_false(m.eightbit);
    assert_false(m.body_eightbit);
    got = dump_chunk(&m, 7, &len);
    assert_string_equal(got, "Subject: a\r\nMIME-Version: 1.0\r\n"
                             "Content-Type: text/plain; charset=unknown-8bit\r\n"
                             "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                             "caf=E9 =3D ok=20\r\nline two\r\n");
    b = body_of(got);
    dec = qp_decode(b, len - (size_t)(b - got), &dn);
    assert_int_equal(dn, sizeof body - 1);
    assert_memory_equal(dec, body, dn);
    free(dec);
    free(got);
    msg_free(&m);
}

static void downgrade_utf8_charset(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    static const char in[] = "Subject: a\n\nd\xc3\xa9j\xc3\xa0\n";
    char *got;

    assert_int_equal(read_n(in, sizeof in - 1, &o, &m, &err), 0);
    assert_int_equal(msg_downgrade_7bit(&m, &err), 0);
    got = dump(&m);
    assert_non_null(strstr(got, "Content-Type: text/plain; charset=utf-8\r\n"));
    assert_non_null(strstr(got, "\r\n\r\nd=C3=A9j=C3=A0\r\n"));
    assert_int_equal(m.body_size, (off_t)strlen("d=C3=A9j=C3=A0\r\n"));
    free(got);
    msg_free(&m);
}

static void downgrade_mime_refused(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    static const char in[] = "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                             "Content-Transfer-Encoding: 8bit\n\nd\xc3\xa9j\xc3\xa0\n";

    assert_int_equal(read_n(in, sizeof in - 1, &o, &m, &err), 0);
    assert_int_equal(msg_downgrade_7bit(&m, &err), -1);
    assert_int_equal(err.cls, MC_DATAERR);
    assert_non_null(strstr(err.msg, "8BITMIME"));
    assert_false(m.qp_encoded);
    msg_free(&m);
}

/* ---- generated fields --------------------------------------------------- */

static char *read_head(struct msg_opts *o, const char *in)
{
    struct msg m;
    struct mc_err err;
    char *got;

    if (read_n(in, strlen(in), o, &m, &err) < 0)
        fail_msg("msg_read: %s", err.msg);
    got = dump(&m);
    msg_free(&m);
    return got;
}

static void from_plain(void **state)
{
    struct msg_opts o = opts();
    char *got;

    o.set_from = MSG_AUTO;
    got = read_head(&o, "Subject: s\n\nb\n");
    assert_string_equal(got, "Subject: s\r\nFrom: alice@example.org\r\n\r\nb\r\n");
    free(got);
    o.from_name = "Alice Q Smith";
    got = read_head(&o, "Subject: s\n\nb\n");
    assert_string_equal(got, "Subject: s\r\nFrom: Alice Q Smith <alice@example.org>\r\n\r\nb\r\n");
    free(got);
}

static void from_quoted(void **state)
{
    struct msg_opts o = opts();
    char *got;

    o.set_from = MSG_AUTO;
    o.from_name = "Smith, Alice \"Al\" \\o/";
    got = read_head(&o, "");
    assert_string_equal(got,
                        "From: \"Smith, Alice \\\"Al\\\" \\\\o/\" <alice@example.org>\r\n\r\n");
    free(got);
    o.from_name = "=?utf-8?q?x?=";
    got = read_head(&o, "");
    assert_string_equal(got, "From: \"=?utf-8?q?x?=\" <alice@example.org>\r\n\r\n");
    free(got);
}

static void from_rfc2047(void **state)
{
    struct msg_opts o = opts();
    char *got;

    o.set_from = MSG_AUTO;
    o.from_name = "J\xc3\xb6hn D\xc5\x93";
    got = read_head(&o, "");
    assert_string_equal(got, "From: =?UTF-8?B?SsO2aG4gRMWT?= <alice@example.org>\r\n\r\n");
    free(got);
}

static const char *b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_decode(const char *s, size_t n, char *out)
{
    size_t k = 0;
    unsigned v = 0;
    int bits = 0;

    for (size_t i = 0; i < n && s[i] != '='; i++) {
        const char *c = strchr(b64, s[i]);
        assert_non_null(c);
        v = (v << 6) | (unsigned)(c - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (char)((v >> bits) & 0xff);
        }
    }
    return k;
}

/* A long name: several encoded words, folded, each whole UTF-8. */
static void from_rfc2047_long(void **state)
{
    struct msg_opts o = opts();
    char name[400], dec[400], *got, *p;
    size_t k = 0, words = 0;

    for (size_t i = 0; i < 60; i++)
        memcpy(name + 5 * i, "\xc3\xa9\xe2\x82\xac", 5); /* é€ */
    name[300] = '\0';
    o.set_from = MSG_AUTO;
    o.from_name = name;
    got = read_head(&o, "");
    assert_canonical(got, strlen(got));
    for (p = got; (p = strstr(p, "=?UTF-8?B?")) != NULL; words++) {
        char *end = strstr(p, "?=");
        size_t before = k;
        assert_non_null(end);
        assert_true(end + 2 - p <= 75);
        k += b64_decode(p + 10, (size_t)(end - p - 10), dec + k);
        /* Each word starts on a character boundary. */
        assert_true(((unsigned char)dec[before] & 0xc0) != 0x80);
        p = end + 2;
        assert_true(strncmp(p, "\r\n =?", 5) == 0 || strncmp(p, " <alice@example.org>", 20) == 0);
    }
    assert_true(words > 5);
    assert_int_equal(k, 300);
    assert_memory_equal(dec, name, 300);
    free(got);
}

/* CR and LF in -F can never start a header field of their own. */
static void from_name_injection(void **state)
{
    struct msg_opts o = opts();
    char *got;

    o.set_from = MSG_AUTO;
    o.from_name = "Eve\r\nBcc: victim@example.org\n";
    got = read_head(&o, "To: a@example.org\n\nb\n");
    assert_string_equal(got,
                        "To: a@example.org\r\n"
                        "From: \"Eve  Bcc: victim@example.org \" <alice@example.org>\r\n\r\nb\r\n");
    free(got);
    o.from_name = "\r\n";
    got = read_head(&o, "");
    assert_string_equal(got, "From: alice@example.org\r\n\r\n");
    free(got);
}

static void from_bad_address(void **state)
{
    struct msg_opts o = opts();

    o.set_from = MSG_AUTO;
    o.from_addr = "alice@example.org\r\nBcc: x@example.org";
    expect_err(&o, "Subject: s\n\nb\n", MC_DATAERR,
               "sender address for From: has control characters or is too long");
}

static void from_auto_keeps_existing(void **state)
{
    struct msg_opts o = opts();

    o.set_from = MSG_AUTO;
    o.from_name = "Alice";
    expect(&o, "From: Bob <bob@example.org>\n\nb\n", "From: Bob <bob@example.org>\r\n\r\nb\r\n");
    o.set_from = MSG_OFF;
    expect(&o, "Subject: s\n\nb\n", "Subject: s\r\n\r\nb\r\n");
}

static void from_on_replaces(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    static const char in[] = "X: 1\nFrom: Mallory\n <m@example.org>\nTo: b@example.org\n"
                             "from: second@example.org\n\nb\n";
    char *got;

    o.set_from = MSG_ON;
    o.from_name = "Alice";
    assert_int_equal(read_n(in, sizeof in - 1, &o, &m, &err), 0);
    got = dump(&m);
    assert_string_equal(
        got, "X: 1\r\nFrom: Alice <alice@example.org>\r\nTo: b@example.org\r\n\r\nb\r\n");
    assert_string_equal(m.header_from, "alice@example.org");
    free(got);
    msg_free(&m);
}

static void header_from_parsed(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    static const char in[] = "From: \"Bob B.\" <bob@example.org>, carol@example.org\n\nb\n";

    assert_int_equal(read_n(in, sizeof in - 1, &o, &m, &err), 0);
    assert_string_equal(m.header_from, "bob@example.org");
    msg_free(&m);
    assert_int_equal(read_n("Subject: x\n\n", 12, &o, &m, &err), 0);
    assert_null(m.header_from);
    msg_free(&m);
}

static char *date_in(const char *tz)
{
    struct msg_opts o = opts();
    char *got, *d;

    setenv("TZ", tz, 1);
    tzset();
    o.set_date = MSG_AUTO;
    got = read_head(&o, "");
    setenv("TZ", "UTC", 1);
    tzset();
    d = strdup(got);
    free(got);
    return d;
}

static void date_format(void **state)
{
    char *d = date_in("UTC");

    assert_string_equal(d, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\n");
    free(d);
    d = date_in("IST-5:30");
    assert_string_equal(d, "Date: Wed, 15 Nov 2023 03:43:20 +0530\r\n\r\n");
    free(d);
    d = date_in("EST5");
    assert_string_equal(d, "Date: Tue, 14 Nov 2023 17:13:20 -0500\r\n\r\n");
    free(d);
}

static void date_kept(void **state)
{
    struct msg_opts o = opts();

    o.set_date = MSG_ON;
    expect(&o, "date: Mon, 1 Jan 2024 00:00:00 +0000\n\nb\n",
           "date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nb\r\n");
}

static void check_msgid(const char *id, const char *domain)
{
    size_t dl = strlen(domain);

    assert_int_equal(strlen(id), 1 + 32 + 1 + dl + 1);
    assert_int_equal(id[0], '<');
    for (size_t i = 1; i <= 32; i++)
        assert_non_null(strchr("0123456789abcdef", id[i]));
    assert_int_equal(id[33], '@');
    assert_memory_equal(id + 34, domain, dl);
    assert_int_equal(id[34 + dl], '>');
}

static void message_id_generated(void **state)
{
    struct msg_opts o = opts();
    struct msg m1, m2;
    struct mc_err err;
    char *got;

    o.set_msgid = MSG_AUTO;
    o.from_addr = "secret-user@private.example";
    assert_int_equal(read_n("Subject: s\n\nb\n", 14, &o, &m1, &err), 0);
    assert_int_equal(read_n("Subject: s\n\nb\n", 14, &o, &m2, &err), 0);
    check_msgid(m1.message_id, "example.org");
    assert_string_not_equal(m1.message_id, m2.message_id);
    got = dump(&m1);
    assert_null(strstr(got, "secret"));
    assert_null(strstr(got, "private"));
    assert_non_null(strstr(got, "\r\nMessage-ID: <"));
    free(got);
    msg_free(&m1);
    msg_free(&m2);
    o.domain = NULL;
    assert_int_equal(read_n("", 0, &o, &m1, &err), 0);
    check_msgid(m1.message_id, "localhost.localdomain");
    msg_free(&m1);
    o.domain = "bad domain>";
    expect_err(&o, "", MC_CONFIG, "domain \"bad domain>\" cannot be used in a message-id");
}

static void message_id_kept(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    static const char in[] = "Message-Id:\n  <abc.123@example.net> \n\nb\n";
    char *got;

    o.set_msgid = MSG_ON;
    assert_int_equal(read_n(in, sizeof in - 1, &o, &m, &err), 0);
    assert_string_equal(m.message_id, "<abc.123@example.net>");
    got = dump(&m);
    assert_string_equal(got, "Message-Id:\r\n  <abc.123@example.net> \r\n\r\nb\r\n");
    free(got);
    msg_free(&m);
}

static void to_undisclosed(void **state)
{
    struct msg_opts o = opts();

    o.set_to = MSG_ON;
    expect(&o, "Bcc: x@example.org\n\nb\n", "To: undisclosed-recipients:;\r\n\r\nb\r\n");
    expect(&o, "Cc: x@example.org\n\nb\n", "Cc: x@example.org\r\n\r\nb\r\n");
    o.set_to = MSG_AUTO;
    expect(&o, "Subject: s\n\nb\n", "Subject: s\r\n\r\nb\r\n");
}

static void added_fields_order(void **state)
{
    struct msg_opts o = opts();
    char *got;

    o.set_from = o.set_date = o.set_msgid = MSG_AUTO;
    o.set_to = MSG_ON;
    got = read_head(&o, "Subject: s\n\nb\n");
    assert_int_equal(strncmp(got,
                             "Subject: s\r\nFrom: alice@example.org\r\n"
                             "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <",
                             89),
                     0);
    assert_non_null(strstr(got, "@example.org>\r\nTo: undisclosed-recipients:;\r\n\r\nb\r\n"));
    free(got);
}

/* ---- big messages, the reader, errors ------------------------------------ */

static char *make_text(size_t n, uint32_t seed, bool crlf)
{
    char *s = malloc(n + 1);
    uint32_t x = seed;

    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        s[i] = (char)(' ' + (x >> 16) % 90);
        if ((x >> 8) % 60 == 0 && i + 1 < n) {
            if (crlf)
                s[i++] = '\r';
            s[i] = '\n';
        }
    }
    s[n] = '\0';
    return s;
}

/* Expected canonical form: LF -> CRLF, a final CRLF added when missing. */
static char *to_crlf(const char *s, size_t *len)
{
    size_t n = strlen(s), k = 0;
    char *o = malloc(2 * n + 3);

    assert_non_null(o);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            o[k++] = '\r';
        o[k++] = s[i];
    }
    if (k == 0 || o[k - 1] != '\n') {
        o[k++] = '\r';
        o[k++] = '\n';
    }
    o[k] = '\0';
    *len = k;
    return o;
}

static void big_round_trip(bool crlf, bool file)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    char *text = make_text(12 * 1024 * 1024, crlf ? 7 : 3, crlf), *in, *want, *got;
    size_t wlen, glen;
    int r;

    o.dot_ends = false;
    in = concat("Subject: big\n\n", text, "");
    want = to_crlf(in, &wlen);
    r = file ? read_file(in, strlen(in), &o, &m, &err) : read_n(in, strlen(in), &o, &m, &err);
    if (r < 0)
        fail_msg("msg_read: %s", err.msg);
    assert_false(m.qp_encoded);
    got = dump_chunk(&m, 100000, &glen);
    assert_int_equal(glen, wlen);
    assert_true(memcmp(got, want, wlen) == 0);
    free(got);
    /* Over 4 MiB msg_reader_next reads ahead on a helper thread: the same octets. */
    got = dump_next(&m, 0, &glen);
    assert_int_equal(glen, wlen);
    assert_true(memcmp(got, want, wlen) == 0);
    free(got);
    msg_free(&m);
    free(in);
    free(want);
    free(text);
}

/*
 * A body over 8 MiB from a file is checked on two cores, split at a line
 * boundary near its middle.  With `special` (n octets) as a line in the
 * second half, the outcome must be the pipe's to the octet: same body and
 * flags, or the same error with the same line number.
 */
static void split_agrees(const char *head, const char *special, size_t n, bool dot_ends)
{
    struct msg_opts o = opts();
    struct msg mf, mp;
    struct mc_err ef, ep;
    size_t tn = 12 * 1024 * 1024, hn = strlen(head), at, len, nf, np;
    char *text = make_text(tn, 11, false), *in, *bf, *bp;
    int rf, rp;

    at = (size_t)(strchr(text + tn * 3 / 4, '\n') - text) + 1;
    len = hn + tn + n;
    in = malloc(len);
    assert_non_null(in);
    memcpy(in, head, hn);
    memcpy(in + hn, text, at);
    memcpy(in + hn + at, special, n);
    memcpy(in + hn + at + n, text + at, tn - at);
    o.dot_ends = dot_ends;
    rf = read_file(in, len, &o, &mf, &ef);
    rp = read_n(in, len, &o, &mp, &ep);
    assert_int_equal(rf, rp);
    if (rf < 0) {
        assert_int_equal(ef.cls, ep.cls);
        assert_string_equal(ef.msg, ep.msg);
    } else {
        assert_int_equal(mf.body_size, mp.body_size);
        assert_int_equal(mf.body_eightbit, mp.body_eightbit);
        assert_int_equal(mf.qp_encoded, mp.qp_encoded);
        bf = dump_flags(&mf, MSG_RD_BODY, 65536, &nf);
        bp = dump_flags(&mp, MSG_RD_BODY, 65536, &np);
        assert_int_equal(nf, np);
        assert_true(memcmp(bf, bp, nf) == 0);
        free(bf);
        free(bp);
    }
    msg_free(&mf);
    msg_free(&mp);
    free(in);
    free(text);
}

#define SPLIT_TEST(name, head, special, dot_ends) \
    static void name(void **state) \
    { \
        (void)state; \
        split_agrees(head, special, sizeof special - 1, dot_ends); \
    }
SPLIT_TEST(split_plain, "Subject: s\n\n", "", false)
SPLIT_TEST(split_bare_cr, "Subject: s\n\n", "a bare\rCR\n", false)
SPLIT_TEST(split_nul, "Subject: s\n\n", "a NUL\0here\n", false)
SPLIT_TEST(split_eight_bit, "Subject: s\n\n", "caf\xc3\xa9\n", false)
SPLIT_TEST(split_long_line_reencoded, "Subject: s\n\n",
           "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234"
           "5678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
           "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234"
           "5678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
           "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234"
           "5678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
           "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234"
           "5678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
           "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234"
           "5678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
           "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234"
           "5678901234567890123456789012345678901234567890123456789012345678901234567890123456789\n",
           false)
SPLIT_TEST(split_long_line_mime, "MIME-Version: 1.0\nSubject: s\n\n",
           "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345"
           "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345"
           "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345"
           "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345"
           "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345"
           "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345"
           "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345"
           "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345"
           "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345"
           "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345"
           "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345"
           "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345\n",
           false)
SPLIT_TEST(split_lone_dot_ends, "Subject: s\n\n", ".\n", true)
SPLIT_TEST(split_lone_dot_kept, "Subject: s\n\n", ".\n", false)

/*
 * /proc files are regular but made up at each read (their size is 0), so
 * reading one twice need not give the same octets: such input is spooled.
 */
static void proc_file_spooled(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    int fd = open("/proc/self/stat", O_RDONLY);

    (void)state;
    if (fd < 0) {
        /* No procfs: nothing of the kind to read. */
        assert_int_equal(errno, ENOENT);
        return;
    }
    o.dot_ends = false;
    assert_int_equal(msg_read(fd, &o, &m, &err), 0);
    assert_true(m.body.open);
    assert_false(m.body.in_place);
    assert_true(m.body_size > 0);
    msg_free(&m);
    close(fd);
}

/* m from a 12 MB file, its body in place: large enough to be read ahead. */
static void read_big_file(uint32_t seed, struct msg *m)
{
    struct msg_opts o = opts();
    struct mc_err err;
    char *text = make_text(12 * 1024 * 1024, seed, false), *in = concat("Subject: s\n\n", text, "");

    assert_int_equal(read_file(in, strlen(in), &o, m, &err), 0);
    assert_true(m->body.in_place);
    free(in);
    free(text);
}

/* The caller stops after one piece: the helper is stopped and joined, nothing leaks. */
static void ahead_stopped_early(void **state)
{
    struct msg m;
    struct mc_err err;
    struct msg_reader r;
    const char *piece;

    (void)state;
    read_big_file(5, &m);
    for (int pieces = 0; pieces < 3; pieces++) {
        msg_reader_init(&r, &m, MSG_RD_STUFF);
        for (int i = 0; i < pieces; i++)
            assert_true(msg_reader_next(&r, &piece, &err) > 0);
        msg_reader_done(&r);
    }
    msg_free(&m);
}

/* A file cut short while it is read ahead: the error comes, never a clean end. */
static void ahead_file_changed(void **state)
{
    struct msg m;
    struct mc_err err;
    struct msg_reader r;
    const char *piece;
    ssize_t k;

    (void)state;
    read_big_file(6, &m);
    msg_reader_init(&r, &m, MSG_RD_STUFF);
    assert_true(msg_reader_next(&r, &piece, &err) > 0);
    assert_int_equal(ftruncate(m.body.fd, 6 * 1024 * 1024), 0);
    while ((k = msg_reader_next(&r, &piece, &err)) > 0)
        ;
    msg_reader_done(&r);
    assert_int_equal(k, -1);
    assert_int_equal(err.cls, MC_IOERR);
    assert_string_equal(err.msg, "the message file changed while it was being sent");
    msg_free(&m);
}

static void big_lf_pipe(void **state)
{
    big_round_trip(false, false);
}

static void big_crlf_file(void **state)
{
    big_round_trip(true, true);
}

static void reader_chunk_sizes(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;
    char *text = make_text(300000, 11, false), *in = concat("Subject: x\n\n", text, "");
    char *a, *b;
    size_t na, nb;

    o.dot_ends = false;
    assert_int_equal(read_n(in, strlen(in), &o, &m, &err), 0);
    a = dump_chunk(&m, 1, &na);
    b = dump_chunk(&m, 65536, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    assert_int_equal((off_t)na, msg_size(&m));
    free(a);
    free(b);
    msg_free(&m);
    free(in);
    free(text);
}

static void spool_dir_missing(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;

    o.tmpdir = "/nonexistent/mailcar-test";
    assert_int_equal(read_n("Subject: x\n\nb\n", 14, &o, &m, &err), -1);
    assert_int_equal(err.cls, MC_IOERR);
    assert_string_equal(err.msg, "creating a spool file in \"/nonexistent/mailcar-test\": "
                                 "No such file or directory");
    msg_free(&m);
}

static void spool_dir_from_env(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;

    setenv("TMPDIR", "/nonexistent/from-env", 1);
    assert_int_equal(read_n("", 0, &o, &m, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/from-env"));
    o.tmpdir = "/tmp";
    assert_int_equal(read_n("", 0, &o, &m, &err), 0);
    msg_free(&m);
    unsetenv("TMPDIR");
}

static void read_error(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;

    assert_int_equal(msg_read(-1, &o, &m, &err), -1);
    assert_int_equal(err.cls, MC_IOERR);
    assert_string_equal(err.msg, "reading the message: Bad file descriptor");
}

static void free_twice_and_zeroed(void **state)
{
    struct msg_opts o = opts();
    struct msg m;
    struct mc_err err;

    assert_int_equal(read_n("Subject: x\n\nb\n", 14, &o, &m, &err), 0);
    msg_free(&m);
    msg_free(&m);
    memset(&m, 0, sizeof m);
    msg_free(&m);
    assert_int_equal(msg_size(&m), 0);
}

static int setup(void **state)
{
    setenv("TZ", "UTC", 1);
    tzset();
    unsetenv("TMPDIR");
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lf_becomes_crlf),
        cmocka_unit_test(crlf_kept),
        cmocka_unit_test(mixed_endings),
        cmocka_unit_test(last_line_without_newline),
        cmocka_unit_test(bare_cr_in_body),
        cmocka_unit_test(bare_cr_in_header),
        cmocka_unit_test(cr_at_end_of_input),
        cmocka_unit_test(nul_in_body),
        cmocka_unit_test(nul_starting_header_line),
        cmocka_unit_test(slow_writer_crlf_split),
        cmocka_unit_test(slow_writer_bare_cr),
        cmocka_unit_test(lone_dot_ends_input),
        cmocka_unit_test(lone_dot_at_end_without_newline),
        cmocka_unit_test(lone_dot_in_header_block),
        cmocka_unit_test(dot_with_i_is_text),
        cmocka_unit_test(dots_not_alone_are_text),
        cmocka_unit_test(no_header_block),
        cmocka_unit_test(first_line_empty),
        cmocka_unit_test(first_line_indented),
        cmocka_unit_test(text_line_ends_header_block),
        cmocka_unit_test(folding_preserved),
        cmocka_unit_test(header_line_too_long),
        cmocka_unit_test(continuation_too_long),
        cmocka_unit_test(huge_header_line),
        cmocka_unit_test(header_block_over_limit),
        cmocka_unit_test(empty_message),
        cmocka_unit_test(bcc_removed_with_folding),
        cmocka_unit_test(bcc_kept_when_asked),
        cmocka_unit_test(bcc_like_names_kept),
        cmocka_unit_test(extract_to_cc_bcc),
        cmocka_unit_test(extract_dedup),
        cmocka_unit_test(extract_only_when_asked),
        cmocka_unit_test(extract_resent_first_block),
        cmocka_unit_test(extract_error_names_line),
        cmocka_unit_test(long_line_becomes_qp),
        cmocka_unit_test(long_line_qp_utf8),
        cmocka_unit_test(long_line_qp_unknown_8bit),
        cmocka_unit_test(long_line_limit_exact),
        cmocka_unit_test(huge_line_qp),
        cmocka_unit_test(long_line_mime_refused),
        cmocka_unit_test(long_line_multipart_refused),
        cmocka_unit_test(long_line_keeps_html_type),
        cmocka_unit_test(flags_7bit),
        cmocka_unit_test(flags_8bit_body),
        cmocka_unit_test(flags_8bit_header),
        cmocka_unit_test(downgrade_non_mime),
        cmocka_unit_test(downgrade_utf8_charset),
        cmocka_unit_test(downgrade_mime_refused),
        cmocka_unit_test(from_plain),
        cmocka_unit_test(from_quoted),
        cmocka_unit_test(from_rfc2047),
        cmocka_unit_test(from_rfc2047_long),
        cmocka_unit_test(from_name_injection),
        cmocka_unit_test(from_bad_address),
        cmocka_unit_test(from_auto_keeps_existing),
        cmocka_unit_test(from_on_replaces),
        cmocka_unit_test(header_from_parsed),
        cmocka_unit_test(date_format),
        cmocka_unit_test(date_kept),
        cmocka_unit_test(message_id_generated),
        cmocka_unit_test(message_id_kept),
        cmocka_unit_test(to_undisclosed),
        cmocka_unit_test(added_fields_order),
        cmocka_unit_test(big_lf_pipe),
        cmocka_unit_test(proc_file_spooled),
        cmocka_unit_test(ahead_stopped_early),
        cmocka_unit_test(ahead_file_changed),
        cmocka_unit_test(split_plain),
        cmocka_unit_test(split_bare_cr),
        cmocka_unit_test(split_nul),
        cmocka_unit_test(split_eight_bit),
        cmocka_unit_test(split_long_line_reencoded),
        cmocka_unit_test(split_long_line_mime),
        cmocka_unit_test(split_lone_dot_ends),
        cmocka_unit_test(split_lone_dot_kept),
        cmocka_unit_test(big_crlf_file),
        cmocka_unit_test(reader_chunk_sizes),
        cmocka_unit_test(spool_dir_missing),
        cmocka_unit_test(spool_dir_from_env),
        cmocka_unit_test(read_error),
        cmocka_unit_test(free_twice_and_zeroed),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
