/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * TCP transport; see net.h.  Sockets are non-blocking so that every wait
 * goes through poll() with the smaller of the step timeout and what is left
 * of the overall deadline: a stalled or dripping server cannot hold us.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "util.h"

struct net_conn {
    int fd;
    struct io_limits lim;
    const struct tls_params *tlsp;
    struct tls *tls;
    struct tls *early;          /* context made while waiting for the server */
    bool early_tried;
    struct mc_err early_err;
    char peer[NI_MAXHOST + NI_MAXSERV + 8];
};

/*
 * Before STARTTLS the client only waits for the greeting and the EHLO
 * reply: the first time it would block, it builds the TLS context instead,
 * so that cost overlaps the network round trips.
 */
static bool prepare_tls_early(struct net_conn *nc)
{
    if (nc->early_tried || nc->tlsp == NULL || nc->tls)
        return false;
    nc->early_tried = true;
    nc->early = tls_prepare(nc->tlsp, &nc->early_err);
    return true;
}

long long net_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int net_wait(int fd, short events, const struct io_limits *lim, const char *what,
             struct mc_err *err)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    long long wait = lim->timeout_ms > 0 ? lim->timeout_ms : -1;
    bool by_deadline = false;
    int r;

    if (lim->deadline_ms) {
        long long left = lim->deadline_ms - net_now_ms();
        if (left < 0)
            left = 0;
        if (wait < 0 || left < wait) {
            wait = left;
            by_deadline = true;
        }
    }
    do {
        r = poll(&pfd, 1, (int)wait);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return mc_err_set(err, MC_IOERR, "poll: %s", strerror(errno));
    if (r == 0)
        return mc_err_set(err, MC_TEMPFAIL, "%s: %s", what,
                          by_deadline ? "overall deadline reached" : "timed out");
    return 0;
}

static ssize_t tcp_read(struct conn *c, void *p, size_t n, struct mc_err *err)
{
    struct net_conn *nc = c->impl;

    if (nc->tls)
        return tls_read(nc->tls, p, n, err);
    for (;;) {
        ssize_t r = recv(nc->fd, p, n, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return mc_err_set(err, MC_TEMPFAIL, "reading from %s: %s", nc->peer, strerror(errno));
        if (prepare_tls_early(nc))
            continue;
        if (net_wait(nc->fd, POLLIN, &nc->lim, "waiting for the server", err) < 0)
            return -1;
    }
}

static int tcp_write(struct conn *c, const void *p, size_t n, struct mc_err *err)
{
    struct net_conn *nc = c->impl;
    const char *q = p;

    if (nc->tls)
        return tls_write(nc->tls, p, n, err);
    while (n > 0) {
        ssize_t r = send(nc->fd, q, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (net_wait(nc->fd, POLLOUT, &nc->lim, "sending to the server", err) < 0)
                return -1;
            continue;
        }
        if (r < 0)
            return mc_err_set(err, MC_TEMPFAIL, "sending to %s: %s", nc->peer, strerror(errno));
        q += r;
        n -= (size_t)r;
    }
    return 0;
}

static int tcp_starttls(struct conn *c, struct mc_err *err)
{
    struct net_conn *nc = c->impl;

    struct tls *t;

    if (nc->tlsp == NULL)
        return mc_err_set(err, MC_SOFTWARE, "STARTTLS without TLS settings");
    prepare_tls_early(nc);
    t = nc->early;
    nc->early = NULL;
    if (t == NULL) {
        *err = nc->early_err;
        return -1;
    }
    if (tls_handshake(t, nc->fd, nc->tlsp, &nc->lim, err) < 0) {
        tls_free(t);
        return -1;
    }
    nc->tls = t;
    return 0;
}

static bool tcp_pending(struct conn *c)
{
    struct net_conn *nc = c->impl;
    char b;

    if (nc->tls)
        return tls_pending(nc->tls);
    return recv(nc->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static size_t tcp_cbind(struct conn *c, const char **type, unsigned char *data, size_t max)
{
    struct net_conn *nc = c->impl;

    return nc->tls ? tls_cbind(nc->tls, type, data, max) : 0;
}

static const char *tcp_tls_desc(struct conn *c)
{
    struct net_conn *nc = c->impl;

    return nc->tls ? tls_desc(nc->tls) : "none";
}

static void tcp_tls_report(struct conn *c, struct buf *out)
{
    struct net_conn *nc = c->impl;

    if (nc->tls)
        tls_describe(nc->tls, out);
}

static void tcp_close(struct conn *c)
{
    struct net_conn *nc = c->impl;

    if (nc == NULL)
        return;
    if (nc->tls)
        tls_free(nc->tls);
    if (nc->early)
        tls_free(nc->early);
    close(nc->fd);
    free(nc);
    c->impl = NULL;
}

static const struct conn_ops tcp_ops = {
    .read = tcp_read,
    .write = tcp_write,
    .starttls = tcp_starttls,
    .pending = tcp_pending,
    .cbind = tcp_cbind,
    .tls_desc = tcp_tls_desc,
    .tls_report = tcp_tls_report,
    .close = tcp_close,
};

static int resolve(const struct net_params *p, const char *host, const char *port,
                   struct addrinfo **res, struct mc_err *err)
{
    struct addrinfo hints = {.ai_family = p->family, .ai_socktype = SOCK_STREAM};
    int r;

    if (host == NULL)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    r = getaddrinfo(host ? host : p->source_ip, port, &hints, res);
    if (r == 0)
        return 0;
    if (r == EAI_NONAME || r == EAI_NODATA)
        return mc_err_set(err, MC_NOHOST, "host '%s' not found", host ? host : p->source_ip);
    if (r == EAI_SERVICE)
        return mc_err_set(err, MC_CONFIG, "bad port '%s'", port);
    if (r == EAI_SYSTEM)
        return mc_err_set(err, MC_TEMPFAIL, "looking up '%s': %s", host, strerror(errno));
    return mc_err_set(err, MC_TEMPFAIL, "looking up '%s': %s", host, gai_strerror(r));
}

static int bind_source(int fd, const struct net_params *p, int family, struct mc_err *err)
{
    struct addrinfo *src;
    struct net_params sp = *p;

    sp.family = family;
    if (resolve(&sp, NULL, "0", &src, err) < 0)
        return mc_err_set(err, MC_CONFIG, "source_ip '%s' is not a usable %s address",
                          p->source_ip, family == AF_INET6 ? "IPv6" : "IPv4");
    int r = bind(fd, src->ai_addr, src->ai_addrlen);
    freeaddrinfo(src);
    if (r < 0)
        return mc_err_set(err, MC_CONFIG, "cannot bind to source_ip '%s': %s", p->source_ip,
                          strerror(errno));
    return 0;
}

static int try_one(const struct addrinfo *ai, const struct net_params *p, struct mc_err *err)
{
    struct io_limits lim = p->lim;
    int fd, one = 1, soerr = 0;
    socklen_t len = sizeof soerr;

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return mc_err_set(err, MC_TEMPFAIL, "socket: %s", strerror(errno));
    /* Each protocol turn is one write: Nagle would only add a delayed-ACK stall. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (p->source_ip && bind_source(fd, p, ai->ai_family, err) < 0)
        goto fail;
    lim.timeout_ms = p->connect_timeout_ms;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            mc_err_set(err, MC_TEMPFAIL, "%s", strerror(errno));
            goto fail;
        }
        if (net_wait(fd, POLLOUT, &lim, "connecting", err) < 0)
            goto fail;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr) {
            mc_err_set(err, MC_TEMPFAIL, "%s", strerror(soerr));
            goto fail;
        }
    }
    return fd;
fail:
    close(fd);
    return -1;
}

static void peer_name(const struct addrinfo *ai, char *out, size_t outlen)
{
    char h[NI_MAXHOST], s[NI_MAXSERV];

    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, h, sizeof h, s, sizeof s,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        snprintf(out, outlen, "server");
    else if (ai->ai_family == AF_INET6)
        snprintf(out, outlen, "[%s]:%s", h, s);
    else
        snprintf(out, outlen, "%s:%s", h, s);
}

int net_connect(struct conn *c, const struct net_params *p, struct mc_err *err)
{
    struct addrinfo *res, *ai;
    struct net_conn *nc;
    int fd = -1;

    if (resolve(p, p->host, p->port, &res, err) < 0)
        return -1;
    /* Every address in turn, all within the one deadline. */
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = try_one(ai, p, err);
        if (fd >= 0 || err->cls == MC_CONFIG)
            break;
    }
    if (fd < 0) {
        freeaddrinfo(res);
        return mc_err_prefix(err, "cannot connect to %s port %s", p->host, p->port);
    }
    nc = mc_calloc(1, sizeof *nc);
    nc->fd = fd;
    nc->lim = p->lim;
    nc->tlsp = p->tls;
    peer_name(ai, nc->peer, sizeof nc->peer);
    freeaddrinfo(res);
    c->ops = &tcp_ops;
    c->impl = nc;
    if (p->implicit_tls && tcp_starttls(c, err) < 0) {
        tcp_close(c);
        return -1;
    }
    return 0;
}
