/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * bench/sink: a fast SMTP sink for the benchmarks.  It accepts every
 * envelope, reads DATA (or BDAT) and throws the bytes away, counting them.
 * ESMTP with PIPELINING, 8BITMIME, SIZE, ENHANCEDSTATUSCODES, optional
 * STARTTLS and implicit TLS (-c/-k), AUTH PLAIN and LOGIN for one user
 * (-u/-w), optional CHUNKING (-B) and a per-command delay (-d, default 0).
 *
 * One thread per connection, blocking I/O.  Replies are buffered and
 * written only when no more input is waiting, as a pipelining server
 * does, so every write after a read is one server "flight": the client
 * has to wait for it.  On close each connection appends one line to the
 * log (-L): counters, flights and seconds.  Flights are counted on the
 * raw socket, TLS handshake records included.
 *
 * Prints "ready PLAINPORT TLSPORT" on stdout once listening (ports are
 * chosen by the kernel unless -p/-s name them; TLSPORT is 0 without -s).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define IN_SIZE (256 * 1024)  /* input buffer: one read can fill it */
#define OUT_FLUSH (64 * 1024) /* write replies early past this much */
#define MAX_SIZE "1073741824"

static struct {
    const char *addr, *user, *pass;
    int delay_ms, log_fd;
    bool chunking;
    SSL_CTX *ctx;
} opt = {.addr = "127.0.0.1", .log_fd = 2};

static unsigned long conn_seq; /* only the accepting thread touches it */

enum { OP_NONE, OP_READ, OP_WRITE };

struct conn {
    int fd;
    unsigned long id;
    SSL *ssl;
    bool implicit, tls, resumed, ehlo, mail, auth, injected;
    unsigned rcpts, msgs, flights, lastop;
    unsigned long long bytes;
    struct timespec t0;
    size_t ioff, ilen; /* unread input is in[ioff..ilen) */
    char tail[4];      /* last bytes of DATA seen, for CRLF.CRLF across reads */
    size_t tl;
    char *out;
    size_t olen, ocap;
    char in[IN_SIZE + 1];
};

static void die(const char *what)
{
    fprintf(stderr, "sink: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* ---- raw I/O and flight counting --------------------------------------- */

static void note(struct conn *c, unsigned op)
{
    if (op == OP_WRITE && c->lastop != OP_WRITE)
        c->flights++;
    c->lastop = op;
}

static long bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl, int ret,
                   size_t *processed)
{
    struct conn *c = (struct conn *)BIO_get_callback_arg(b);

    (void)argp, (void)len, (void)argi, (void)argl;
    if (ret > 0 && processed && *processed > 0) {
        if (oper == (BIO_CB_READ | BIO_CB_RETURN))
            note(c, OP_READ);
        else if (oper == (BIO_CB_WRITE | BIO_CB_RETURN))
            note(c, OP_WRITE);
    }
    return ret;
}

/* Read what is there (blocking until something is); 0 on end or error. */
static size_t io_read(struct conn *c, char *p, size_t n)
{
    if (c->ssl) {
        size_t got = 0;
        return SSL_read_ex(c->ssl, p, n, &got) == 1 ? got : 0;
    }
    for (;;) {
        ssize_t r = read(c->fd, p, n);
        if (r > 0)
            note(c, OP_READ);
        if (r >= 0 || errno != EINTR)
            return r > 0 ? (size_t)r : 0;
    }
}

static bool io_write(struct conn *c, const char *p, size_t n)
{
    while (n > 0) {
        size_t put = 0;
        if (c->ssl) {
            if (SSL_write_ex(c->ssl, p, n, &put) != 1)
                return false;
        } else {
            ssize_t r = write(c->fd, p, n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return false;
            note(c, OP_WRITE);
            put = (size_t)r;
        }
        p += put, n -= put;
    }
    return true;
}

static bool flush(struct conn *c)
{
    bool ok = c->olen == 0 || io_write(c, c->out, c->olen);
    c->olen = 0;
    return ok;
}

static bool input_waiting(struct conn *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};

    if (c->ilen > c->ioff || (c->ssl && SSL_has_pending(c->ssl)))
        return true;
    return poll(&p, 1, 0) > 0;
}

/* Before waiting for input, send the replies unless more input is there. */
static bool fill(struct conn *c)
{
    if (c->ioff > 0) {
        memmove(c->in, c->in + c->ioff, c->ilen - c->ioff);
        c->ilen -= c->ioff, c->ioff = 0;
    }
    if ((c->olen > 0 && !input_waiting(c)) || c->olen > OUT_FLUSH)
        if (!flush(c))
            return false;
    size_t n = io_read(c, c->in + c->ilen, IN_SIZE - c->ilen);
    c->ilen += n;
    return n > 0;
}

static void reply(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    char line[512];
    int n;

    if (opt.delay_ms > 0)
        usleep((useconds_t)opt.delay_ms * 1000);
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n > sizeof(line) - 3)
        n = (int)sizeof(line) - 3;
    memcpy(line + n, "\r\n", 2), n += 2;
    if (c->olen + (size_t)n > c->ocap) {
        c->ocap = (c->ocap + (size_t)n) * 2;
        if (!(c->out = realloc(c->out, c->ocap)))
            die("out of memory");
    }
    memcpy(c->out + c->olen, line, (size_t)n);
    c->olen += (size_t)n;
}

/* One command line without its CRLF, or NULL when the client is gone. */
static char *get_line(struct conn *c)
{
    for (;;) {
        char *s = c->in + c->ioff, *nl = memchr(s, '\n', c->ilen - c->ioff);
        if (nl) {
            c->ioff = (size_t)(nl + 1 - c->in);
            if (nl > s && nl[-1] == '\r')
                nl--;
            *nl = '\0';
            return s;
        }
        if (c->ioff == 0 && c->ilen == IN_SIZE) { /* too long: drop it */
            c->ilen = 0;
            reply(c, "500 5.5.2 line too long");
        }
        if (!fill(c))
            return NULL;
    }
}

/* ---- message data ------------------------------------------------------ */

/*
 * CRLF.CRLF in p[0..n), or NULL.  memchr for the dot, which is rare in
 * text, runs many times faster than memmem: the sink must outrun clients.
 */
static const char *find_end(const char *p, size_t n)
{
    const char *s = p, *e = p + n, *d;

    while ((d = memchr(s, '.', (size_t)(e - s))) != NULL) {
        if (d - p >= 2 && e - d >= 3 && d[-2] == '\r' && d[-1] == '\n' && d[1] == '\r' &&
            d[2] == '\n')
            return d - 2;
        s = d + 1;
    }
    return NULL;
}

/* Bytes of p[0..n) up to and including CRLF.CRLF, or 0 if it is not there. */
static size_t scan_end(struct conn *c, const char *p, size_t n)
{
    char j[8];
    size_t m = n < 4 ? n : 4, tot;
    const char *f;

    memcpy(j, c->tail, c->tl), memcpy(j + c->tl, p, m);
    if ((f = find_end(j, c->tl + m)))
        return (size_t)(f - j) + 5 - c->tl;
    if ((f = find_end(p, n)))
        return (size_t)(f - p) + 5;
    tot = c->tl + n; /* keep the last four bytes of tail + p */
    if (n >= 4) {
        memcpy(c->tail, p + n - 4, 4), c->tl = 4;
    } else {
        memcpy(j + c->tl, p, n);
        size_t keep = tot < 4 ? tot : 4;
        memcpy(c->tail, j + tot - keep, keep), c->tl = keep;
    }
    return 0;
}

static bool read_data(struct conn *c)
{
    memcpy(c->tail, "\r\n", 2), c->tl = 2; /* DATA's own CRLF precedes the text */
    for (;;) {
        size_t have = c->ilen - c->ioff, k = scan_end(c, c->in + c->ioff, have);
        if (k > 0) {
            c->bytes += k, c->bytes -= 3, c->ioff += k; /* ".\r\n" is not text */
            return true;
        }
        c->bytes += have, c->ioff = c->ilen = 0;
        if (!fill(c))
            return false;
    }
}

static bool read_chunk(struct conn *c, unsigned long long n)
{
    while (n > 0) {
        size_t have = c->ilen - c->ioff, k = have < n ? have : (size_t)n;
        c->ioff += k, n -= k, c->bytes += k;
        if (n > 0) {
            c->ioff = c->ilen = 0;
            if (!fill(c))
                return false;
        }
    }
    return true;
}

/* ---- commands ---------------------------------------------------------- */

static size_t b64_decode(const char *s, char *out, size_t cap)
{
    size_t n = strlen(s);
    int k;

    if (n == 0 || n % 4 || n / 4 * 3 > cap ||
        (k = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n)) < 0)
        return (size_t)-1;
    return (size_t)k - (s[n - 1] == '=') - (s[n - 2] == '=');
}

static bool check_plain(const char *b64)
{
    char buf[768];
    size_t n = b64_decode(b64, buf, sizeof(buf) - 1);
    char *user, *pass;

    if (n == (size_t)-1)
        return false;
    buf[n] = '\0';
    if (!(user = memchr(buf, '\0', n)) ||
        !(pass = memchr(user + 1, '\0', n - (size_t)(user - buf) - 1)))
        return false;
    user++, pass++;
    return opt.user && strcmp(user, opt.user) == 0 && strlen(pass) == n - (size_t)(pass - buf) &&
           strcmp(pass, opt.pass) == 0;
}

/* Ask with a 334 and return the answer line, NULL if gone. */
static char *ask(struct conn *c, const char *prompt)
{
    reply(c, "334 %s", prompt);
    return get_line(c);
}

static bool do_auth(struct conn *c, char *arg)
{
    char *save = NULL, *mech = strtok_r(arg, " ", &save), *ir = strtok_r(NULL, " ", &save);
    char *u, *p, ubuf[256], pbuf[256];
    size_t n;
    bool ok = false;

    if (!opt.user || c->auth || !mech) {
        reply(c, "503 5.5.1 AUTH not available");
        return true;
    }
    if (strcasecmp(mech, "PLAIN") == 0) {
        if (!ir && !(ir = ask(c, "")))
            return false;
        ok = strcmp(ir, "*") != 0 && check_plain(ir);
    } else if (strcasecmp(mech, "LOGIN") == 0) {
        if (!(u = ir ? ir : ask(c, "VXNlcm5hbWU6")))
            return false;
        n = b64_decode(u, ubuf, sizeof(ubuf) - 1);
        ubuf[n == (size_t)-1 ? 0 : n] = '\0';
        if (!(p = ask(c, "UGFzc3dvcmQ6")))
            return false;
        n = b64_decode(p, pbuf, sizeof(pbuf) - 1);
        pbuf[n == (size_t)-1 ? 0 : n] = '\0';
        ok = strcmp(ubuf, opt.user) == 0 && strcmp(pbuf, opt.pass) == 0;
    } else {
        reply(c, "504 5.5.4 mechanism not supported");
        return true;
    }
    c->auth = ok;
    reply(c, ok ? "235 2.7.0 Authentication successful"
                : "535 5.7.8 Authentication credentials invalid");
    return true;
}

static bool start_tls(struct conn *c)
{
    BIO *bio = BIO_new_socket(c->fd, BIO_NOCLOSE);

    if (!bio || !(c->ssl = SSL_new(opt.ctx)))
        return false;
    BIO_set_callback_arg(bio, (char *)c);
    BIO_set_callback_ex(bio, bio_cb);
    SSL_set_bio(c->ssl, bio, bio);
    if (SSL_accept(c->ssl) != 1)
        return false;
    /* Send the ticket with the next reply, not as a flight of its own. */
    SSL_new_session_ticket(c->ssl);
    c->tls = true, c->resumed = SSL_session_reused(c->ssl);
    c->ehlo = c->mail = c->auth = false;
    return true;
}

static void do_ehlo(struct conn *c, bool ehlo)
{
    c->ehlo = true, c->mail = false, c->rcpts = 0;
    if (!ehlo) {
        reply(c, "250 sink.test");
        return;
    }
    reply(c, "250-sink.test");
    reply(c, "250-PIPELINING");
    reply(c, "250-8BITMIME");
    reply(c, "250-ENHANCEDSTATUSCODES");
    reply(c, "250-SIZE " MAX_SIZE);
    if (opt.ctx && !c->tls)
        reply(c, "250-STARTTLS");
    if (opt.user)
        reply(c, "250-AUTH PLAIN LOGIN");
    if (opt.chunking)
        reply(c, "250-CHUNKING");
    reply(c, "250 HELP");
}

static bool is_cmd(const char *line, const char *cmd, char **arg)
{
    size_t n = strlen(cmd);

    if (strncasecmp(line, cmd, n) != 0 || (line[n] != '\0' && line[n] != ' ' && line[n] != ':'))
        return false;
    *arg = (char *)line + n + (line[n] == ' ');
    return true;
}

static void session(struct conn *c)
{
    char *line, *arg;
    unsigned long long n;

    if (c->implicit && !start_tls(c))
        return;
    reply(c, "220 sink.test ESMTP bench sink");
    while ((line = get_line(c))) {
        if (is_cmd(line, "EHLO", &arg) || is_cmd(line, "HELO", &arg)) {
            do_ehlo(c, toupper((unsigned char)line[0]) == 'E');
        } else if (is_cmd(line, "STARTTLS", &arg)) {
            if (!opt.ctx || c->tls) {
                reply(c, "454 4.7.0 TLS not available");
                continue;
            }
            reply(c, "220 2.0.0 Ready to start TLS");
            c->injected = c->ilen > c->ioff; /* bytes after STARTTLS: dropped */
            c->ioff = c->ilen = 0;
            if (!flush(c) || !start_tls(c))
                return;
        } else if (is_cmd(line, "AUTH", &arg)) {
            if (!do_auth(c, arg))
                return;
        } else if (is_cmd(line, "MAIL", &arg)) {
            c->mail = true, c->rcpts = 0;
            reply(c, "250 2.1.0 Ok");
        } else if (is_cmd(line, "RCPT", &arg)) {
            if (!c->mail) {
                reply(c, "503 5.5.1 need MAIL first");
                continue;
            }
            c->rcpts++;
            reply(c, "250 2.1.5 Ok");
        } else if (is_cmd(line, "DATA", &arg)) {
            if (!c->rcpts) {
                reply(c, "554 5.5.1 no valid recipients");
                continue;
            }
            reply(c, "354 End data with <CR><LF>.<CR><LF>");
            if (!read_data(c))
                return;
            c->msgs++, c->mail = false;
            reply(c, "250 2.0.0 Ok: queued");
        } else if (opt.chunking && is_cmd(line, "BDAT", &arg)) {
            bool last = strcasestr(arg, "LAST") != NULL;
            n = strtoull(arg, NULL, 10);
            if (!read_chunk(c, n))
                return;
            if (last)
                c->msgs++, c->mail = false;
            reply(c, "250 2.0.0 %llu octets received%s", n, last ? ", queued" : "");
        } else if (is_cmd(line, "RSET", &arg)) {
            c->mail = false, c->rcpts = 0;
            reply(c, "250 2.0.0 Ok");
        } else if (is_cmd(line, "NOOP", &arg)) {
            reply(c, "250 2.0.0 Ok");
        } else if (is_cmd(line, "QUIT", &arg)) {
            reply(c, "221 2.0.0 Bye");
            flush(c);
            return;
        } else {
            reply(c, "502 5.5.2 command not recognized");
        }
    }
}

static void *serve(void *arg)
{
    struct conn *c = arg;
    struct timespec t1;
    char line[512];
    int n;

    session(c);
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    close(c->fd);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    n = snprintf(line, sizeof(line),
                 "conn=%lu implicit=%d tls=%d resumed=%d auth=%d msgs=%u rcpts=%u bytes=%llu "
                 "flights=%u injected=%d secs=%.6f\n",
                 c->id, c->implicit, c->tls, c->resumed, c->auth, c->msgs, c->rcpts, c->bytes,
                 c->flights, c->injected,
                 (double)(t1.tv_sec - c->t0.tv_sec) + (t1.tv_nsec - c->t0.tv_nsec) / 1e9);
    if (write(opt.log_fd, line, (size_t)n) != n)
        perror("sink: log");
    free(c->out);
    free(c);
    return NULL;
}

/* ---- set-up ------------------------------------------------------------ */

static int listen_on(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof(sa);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0 || inet_pton(AF_INET, opt.addr, &sa.sin_addr) != 1)
        die("bad listen address");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        die(strerror(errno));
    return fd;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: sink [-a ADDR] [-p PORT] [-s TLSPORT] [-c CERT -k KEY] [-u USER -w PASS]"
            " [-B] [-d MS] [-L LOGFILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL;
    int ch, port = 0, tls_port = -1, lfd[2], one = 1;
    struct sockaddr_in sa;
    socklen_t len;

    while ((ch = getopt(argc, argv, "a:p:s:c:k:u:w:Bd:L:")) != -1) {
        switch (ch) {
        case 'a':
            opt.addr = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 's':
            tls_port = atoi(optarg);
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'u':
            opt.user = optarg;
            break;
        case 'w':
            opt.pass = optarg;
            break;
        case 'B':
            opt.chunking = true;
            break;
        case 'd':
            opt.delay_ms = atoi(optarg);
            break;
        case 'L':
            if ((opt.log_fd = open(optarg, O_WRONLY | O_CREAT | O_APPEND, 0644)) < 0)
                die(strerror(errno));
            break;
        default:
            usage();
        }
    }
    if (optind != argc || !cert != !key || (tls_port >= 0 && !cert) || !opt.user != !opt.pass)
        usage();
    signal(SIGPIPE, SIG_IGN);
    if (cert) {
        if (!(opt.ctx = SSL_CTX_new(TLS_server_method())) ||
            SSL_CTX_use_certificate_chain_file(opt.ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(opt.ctx, key, SSL_FILETYPE_PEM) != 1)
            die("cannot load the certificate and key");
        SSL_CTX_set_session_id_context(opt.ctx, (const unsigned char *)"sink", 4);
        SSL_CTX_set_num_tickets(opt.ctx, 0); /* one ticket, sent by start_tls */
        SSL_CTX_set_read_ahead(opt.ctx, 1);
    }
    lfd[0] = listen_on(port);
    lfd[1] = tls_port >= 0 ? listen_on(tls_port) : -1;
    printf("ready");
    for (int i = 0; i < 2; i++) {
        len = sizeof(sa);
        if (lfd[i] >= 0 && getsockname(lfd[i], (struct sockaddr *)&sa, &len) == 0)
            printf(" %d", ntohs(sa.sin_port));
        else
            printf(" 0");
    }
    printf("\n");
    fflush(stdout);
    for (;;) {
        struct pollfd p[2] = {{.fd = lfd[0], .events = POLLIN}, {.fd = lfd[1], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            die(strerror(errno));
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            int fd = accept(lfd[i], NULL, NULL);
            struct conn *c;
            pthread_t t;
            if (fd < 0)
                continue;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            if (!(c = calloc(1, sizeof(*c))))
                die("out of memory");
            c->fd = fd, c->implicit = i == 1;
            clock_gettime(CLOCK_MONOTONIC, &c->t0);
            c->id = ++conn_seq;
            if (pthread_create(&t, NULL, serve, c) != 0)
                die("cannot start a thread");
            pthread_detach(t);
        }
    }
}
