/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * TCP transport: name resolution, connecting within a deadline, TCP_NODELAY,
 * and reads/writes bounded by a per-step timeout and an overall deadline.
 * Provides struct conn; STARTTLS and implicit TLS are delegated to tls.c.
 */
#ifndef MC_NET_H
#define MC_NET_H

#include <stdbool.h>

#include "conn.h"
#include "err.h"
#include "tls.h"

/* Milliseconds on a monotonic clock. */
long long net_now_ms(void);

struct io_limits {
    long timeout_ms;          /* each wait for the peer */
    long long deadline_ms;    /* absolute (net_now_ms), 0 = none */
};

/*
 * Wait until fd is ready for `events` (POLLIN/POLLOUT).  Returns 0, or -1
 * with MC_TEMPFAIL naming `what` on a timeout.
 */
int net_wait(int fd, short events, const struct io_limits *lim, const char *what,
             struct mc_err *err);

struct net_params {
    const char *host;
    const char *port;
    const char *source_ip;    /* bind to this local address, or NULL */
    int family;               /* AF_UNSPEC, AF_INET or AF_INET6 */
    long connect_timeout_ms;
    struct io_limits lim;
    const char *socket_path;  /* a Unix domain socket instead of host and port, or NULL */
    const char *proxy_host;   /* SOCKS5 proxy, or NULL; it resolves host itself */
    const char *proxy_port;
    const char *proxy_user;   /* RFC 1929 user name and password, or NULL */
    const char *proxy_password;
    bool implicit_tls;        /* TLS from the first byte (port 465) */
    const struct tls_params *tls;   /* for STARTTLS or implicit TLS; NULL for none */
};

/* Connect; on success c is ready for the SMTP engine.  Errors: NOHOST, TEMPFAIL. */
int net_connect(struct conn *c, const struct net_params *p, struct mc_err *err);

#endif
