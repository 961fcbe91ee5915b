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
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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

/* Start a non-blocking connect; the fd, or -1 with err set (then try the next address). */
static int start_one(const struct addrinfo *ai, const struct net_params *p, struct mc_err *err)
{
    int fd, one = 1;

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return mc_err_set(err, MC_TEMPFAIL, "socket: %s", strerror(errno));
    /* Each protocol turn is one write: Nagle would only add a delayed-ACK stall. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if ((p->source_ip && bind_source(fd, p, ai->ai_family, err) < 0) ||
        (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS &&
         mc_err_set(err, MC_TEMPFAIL, "%s", strerror(errno)) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

#define RACE_MAX 16
#define RACE_STAGGER_MS 250   /* RFC 8305's connection attempt delay */

/* IPv6 first, then the families alternate (RFC 8305 section 4). */
static size_t race_order(struct addrinfo *res, struct addrinfo **out)
{
    struct addrinfo *v6[RACE_MAX], *v4[RACE_MAX];
    size_t n6 = 0, n4 = 0, n = 0;

    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET6 && n6 < RACE_MAX)
            v6[n6++] = ai;
        else if (ai->ai_family != AF_INET6 && n4 < RACE_MAX)
            v4[n4++] = ai;
    }
    for (size_t i = 0; (i < n6 || i < n4) && n < RACE_MAX; i++) {
        if (i < n6)
            out[n++] = v6[i];
        if (i < n4 && n < RACE_MAX)
            out[n++] = v4[i];
    }
    return n;
}

struct race {
    struct pollfd pfd[RACE_MAX];
    size_t who[RACE_MAX];          /* index into the address list */
    long long began[RACE_MAX];
    size_t live;
};

static void race_drop(struct race *r, size_t i)
{
    close(r->pfd[i].fd);
    r->live--;
    r->pfd[i] = r->pfd[r->live];
    r->who[i] = r->who[r->live];
    r->began[i] = r->began[r->live];
}

/* Poll the attempts under way; the index of a connected one, or -1. */
static int race_poll(struct race *r, int wait_ms, long connect_ms, struct mc_err *err)
{
    int soerr;
    socklen_t len = sizeof soerr;

    if (poll(r->pfd, r->live, wait_ms) < 0 && errno != EINTR)
        return mc_err_set(err, MC_IOERR, "poll: %s", strerror(errno));
    for (size_t i = 0; i < r->live;) {
        if (r->pfd[i].revents) {
            soerr = 0;
            getsockopt(r->pfd[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
            if (soerr == 0)
                return (int)i;
            mc_err_set(err, MC_TEMPFAIL, "%s", strerror(soerr));
            race_drop(r, i);
        } else if (net_now_ms() - r->began[i] >= connect_ms) {
            mc_err_set(err, MC_TEMPFAIL, "connecting: timed out");
            race_drop(r, i);
        } else {
            i++;
        }
    }
    return -1;
}

/*
 * Happy Eyeballs (RFC 8305): start the next address whenever the current
 * attempts have had RACE_STAGGER_MS without success, keep them all going,
 * take the first that connects.  Each attempt has connect_timeout; the
 * whole race ends at the overall deadline.
 */
static int connect_race(struct addrinfo *res, const struct net_params *p, struct addrinfo **won,
                        struct mc_err *err)
{
    struct addrinfo *order[RACE_MAX];
    size_t n = race_order(res, order), next = 0;
    struct race r = {.live = 0};
    long connect_ms = p->connect_timeout_ms > 0 ? p->connect_timeout_ms : 30000;
    long long stagger_at = 0;
    int fd = -1;

    mc_err_set(err, MC_TEMPFAIL, "no address to connect to");
    while (fd < 0 && (next < n || r.live > 0)) {
        long long now = net_now_ms();
        if (p->lim.deadline_ms && now >= p->lim.deadline_ms) {
            mc_err_set(err, MC_TEMPFAIL, "connecting: overall deadline reached");
            break;
        }
        if (next < n && (r.live == 0 || now >= stagger_at)) {
            int nfd = start_one(order[next], p, err);
            if (nfd < 0 && err->cls == MC_CONFIG)
                break;
            if (nfd >= 0) {
                r.pfd[r.live] = (struct pollfd){.fd = nfd, .events = POLLOUT};
                r.who[r.live] = next;
                r.began[r.live++] = now;
            }
            next++;
            stagger_at = now + RACE_STAGGER_MS;
            continue;
        }
        long long wait = next < n ? stagger_at - now : 100;
        int i = race_poll(&r, (int)(wait < 0 ? 0 : wait), connect_ms, err);
        if (i >= 0) {
            fd = r.pfd[i].fd;
            *won = order[r.who[i]];
            r.pfd[i] = r.pfd[--r.live];
        }
    }
    while (r.live > 0)
        race_drop(&r, 0);
    return fd;
}

/* --- SOCKS5 (RFC 1928), no authentication; the proxy resolves the name --- */

static int sock_io(int fd, bool out, unsigned char *p, size_t n, const struct io_limits *lim,
                   struct mc_err *err)
{
    while (n > 0) {
        ssize_t r = out ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r == 0) {
            return mc_err_set(err, MC_TEMPFAIL, "SOCKS proxy closed the connection");
        } else if (errno == EAGAIN || errno == EINTR) {
            if (net_wait(fd, out ? POLLOUT : POLLIN, lim, "SOCKS proxy", err) < 0)
                return -1;
        } else {
            return mc_err_set(err, MC_TEMPFAIL, "SOCKS proxy: %s", strerror(errno));
        }
    }
    return 0;
}

static const char *socks_reason(unsigned char rep)
{
    static const char *const reasons[] = {
        "succeeded", "general failure", "connection not allowed by ruleset",
        "network unreachable", "host unreachable", "connection refused", "TTL expired",
        "command not supported", "address type not supported",
    };
    return rep < sizeof reasons / sizeof reasons[0] ? reasons[rep] : "unknown reply";
}

/* RFC 1929: the password goes to the proxy in clear, so only to one on this machine. */
static int socks5_login(int fd, const struct net_params *p, const struct addrinfo *proxy,
                        struct mc_err *err)
{
    unsigned char b[3 + 2 * 255];
    size_t ul = strlen(p->proxy_user), pl = p->proxy_password ? strlen(p->proxy_password) : 0;
    bool local = proxy->ai_family == AF_INET
                     ? (ntohl(((struct sockaddr_in *)proxy->ai_addr)->sin_addr.s_addr) >> 24) == 127
                     : IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)proxy->ai_addr)->sin6_addr);
    int r;

    if (!local)
        return mc_err_set(err, MC_CONFIG, "refusing to send proxy_user and proxy_password in "
                          "clear text to a SOCKS proxy that is not on this machine");
    if (ul > 255 || pl > 255)
        return mc_err_set(err, MC_CONFIG, "proxy_user or proxy_password longer than 255 bytes");
    b[0] = 1;
    b[1] = (unsigned char)ul;
    memcpy(b + 2, p->proxy_user, ul);
    b[2 + ul] = (unsigned char)pl;
    if (pl)
        memcpy(b + 3 + ul, p->proxy_password, pl);
    r = sock_io(fd, true, b, 3 + ul + pl, &p->lim, err);
    mc_wipe(b, sizeof b);
    if (r < 0 || sock_io(fd, false, b, 2, &p->lim, err) < 0)
        return -1;
    if (b[1] != 0)
        return mc_err_set(err, MC_CONFIG, "SOCKS proxy %s refused proxy_user '%s' or its "
                          "password", p->proxy_host, p->proxy_user);
    return 0;
}

static int socks5(int fd, const struct net_params *p, const struct addrinfo *proxy,
                  struct mc_err *err)
{
    unsigned char b[300];
    size_t hl = strlen(p->host), skip;
    long port = strtol(p->port, NULL, 10);
    bool login = p->proxy_user != NULL;

    if (hl > 255)
        return mc_err_set(err, MC_CONFIG, "host name too long for a SOCKS proxy");
    /* Version 5, one method: none, or user name and password when configured. */
    b[0] = 5, b[1] = 1, b[2] = login ? 2 : 0;
    if (sock_io(fd, true, b, 3, &p->lim, err) < 0 || sock_io(fd, false, b, 2, &p->lim, err) < 0)
        return -1;
    if (b[0] != 5 || b[1] != (login ? 2 : 0))
        return mc_err_set(err, MC_CONFIG, "SOCKS proxy %s does not accept %s", p->proxy_host,
                          login ? "user name and password authentication"
                                : "clients without authentication (set proxy_user)");
    if (login && socks5_login(fd, p, proxy, err) < 0)
        return -1;
    b[0] = 5, b[1] = 1, b[2] = 0, b[3] = 3, b[4] = (unsigned char)hl;
    memcpy(b + 5, p->host, hl);
    b[5 + hl] = (unsigned char)(port >> 8);
    b[6 + hl] = (unsigned char)port;
    if (sock_io(fd, true, b, 7 + hl, &p->lim, err) < 0 || sock_io(fd, false, b, 5, &p->lim, err) < 0)
        return -1;
    if (b[0] != 5)
        return mc_err_set(err, MC_PROTOCOL, "SOCKS proxy sent a malformed reply");
    if (b[1] != 0)
        return mc_err_set(err, b[1] == 4 || b[1] == 3 ? MC_TEMPFAIL : b[1] == 2 ? MC_CONFIG
                          : MC_TEMPFAIL, "SOCKS proxy could not reach %s port %s: %s", p->host,
                          p->port, socks_reason(b[1]));
    /* The rest of the bound address: IPv4 4, IPv6 16, a name 1+len; then the port. */
    skip = b[3] == 1 ? 4 + 2 - 1 : b[3] == 4 ? 16 + 2 - 1 : b[3] == 3 ? (size_t)b[4] + 2 : 0;
    if (skip == 0)
        return mc_err_set(err, MC_PROTOCOL, "SOCKS proxy sent a malformed reply");
    return sock_io(fd, false, b, skip, &p->lim, err);
}

/* --- Unix domain sockets --------------------------------------------------- */

static int connect_unix(const struct net_params *p, struct mc_err *err)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(p->socket_path) >= sizeof sun.sun_path)
        return mc_err_set(err, MC_CONFIG, "socket path '%s' is too long", p->socket_path);
    memcpy(sun.sun_path, p->socket_path, strlen(p->socket_path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mc_err_set(err, MC_TEMPFAIL, "socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        int e = errno;
        close(fd);
        return mc_err_set(err, MC_TEMPFAIL, "cannot connect to socket '%s': %s", p->socket_path,
                          strerror(e));
    }
    return fd;
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

/* TCP to host (or to the proxy, which then reaches host): the fd, and the peer's name. */
static int connect_tcp(const struct net_params *p, char *peer, size_t peerlen, struct mc_err *err)
{
    const char *host = p->proxy_host ? p->proxy_host : p->host;
    const char *port = p->proxy_host ? p->proxy_port : p->port;
    struct addrinfo *res, *won = NULL;
    int fd;

    if (resolve(p, host, port, &res, err) < 0)
        return p->proxy_host ? mc_err_prefix(err, "proxy") : -1;
    fd = connect_race(res, p, &won, err);
    if (fd < 0) {
        freeaddrinfo(res);
        return mc_err_prefix(err, "cannot connect to %s%s port %s", p->proxy_host ? "proxy " : "",
                             host, port);
    }
    peer_name(won, peer, peerlen);
    if (p->proxy_host && socks5(fd, p, won, err) < 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int net_connect(struct conn *c, const struct net_params *p, struct mc_err *err)
{
    struct net_conn *nc;
    char peer[sizeof nc->peer];
    int fd;

    if (p->socket_path) {
        fd = connect_unix(p, err);
        snprintf(peer, sizeof peer, "%s", p->socket_path);
    } else {
        fd = connect_tcp(p, peer, sizeof peer, err);
    }
    if (fd < 0)
        return -1;
    nc = mc_calloc(1, sizeof *nc);
    nc->fd = fd;
    nc->lim = p->lim;
    nc->tlsp = p->tls;
    memcpy(nc->peer, peer, sizeof nc->peer);
    c->ops = &tcp_ops;
    c->impl = nc;
    if (p->implicit_tls && tcp_starttls(c, err) < 0) {
        tcp_close(c);
        return -1;
    }
    return 0;
}
