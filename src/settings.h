/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * A resolved account turned into typed settings, with mailcar's secure
 * defaults where msmtp's are not: port 587, STARTTLS required, certificates
 * verified, finite timeouts and an overall deadline.  Every bad value is
 * reported with the file and line it came from.
 */
#ifndef MC_SETTINGS_H
#define MC_SETTINGS_H

#include <stdbool.h>

#include "conf.h"
#include "err.h"
#include "msg.h"
#include "sasl.h"
#include "smtp.h"
#include "tls.h"
#include "util.h"

#define DEFAULT_TIMEOUT_S 60
#define DEFAULT_CONNECT_TIMEOUT_S 30
#define DEFAULT_DEADLINE_S 900
#define DEFAULT_QUEUE_LIFETIME_S (5 * 86400)
#define DEFAULT_QUEUE_RETRY_S 300
#define DEFAULT_QUEUE_RETRY_MAX_S (4 * 3600)

struct settings {
    const char *host;
    char host_buf[256];        /* the host part of an smtp:// or smtps:// URL */
    char port[8];
    int family;
    const char *source_ip;
    enum smtp_tls_mode tls;
    bool lmtp;                 /* protocol lmtp */
    const char *socket_path;   /* socket: a Unix domain socket instead of host:port */
    const char *proxy_host;    /* SOCKS5 proxy */
    const char *proxy_user;    /* RFC 1929 credentials, for a proxy on loopback only */
    const char *proxy_password;
    char proxy_port[8];
    struct tls_params tlsp;
    bool auth;
    bool auth_forced;
    enum sasl_mech mech;
    const char *user;
    const char *from;
    const char *from_name;
    const char *qualify_domain;    /* appended to recipients without a domain */
    const char *aliases;           /* aliases file for local recipients, or NULL */
    bool rewrite_from;             /* `from` is the sender and the From: address, always */
    bool allow_from_override;
    bool read_envelope_from;
    bool read_recipients;
    char domain[256];          /* EHLO name and Message-ID domain */
    long timeout_s;
    long connect_timeout_s;
    long deadline_s;
    bool partial_delivery;
    bool dsn_required;
    const char *dsn_notify;
    const char *dsn_return;    /* FULL, HDRS or NULL */
    bool remove_bcc;
    enum msg_tristate set_from, set_date, set_msgid, set_to;
    const char *logfile;
    int syslog_facility;
    struct strlist warnings;   /* keys accepted but without effect yet */
    char session_dir[4096];
    bool queue;                /* queue on temporary failure */
    const char *queue_dir;     /* NULL: the default (see queue.h) */
    long queue_lifetime_s;
    long queue_retry_s;        /* first retry interval, doubled each time ... */
    long queue_retry_max_s;    /* ... up to this */
};

/* st must be zeroed before the first call; later calls replace it. */
int settings_load(struct settings *st, const struct account *a, struct mc_err *err);
void settings_free(struct settings *st);

#endif
