/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * From a resolved account to typed settings; see settings.h.
 */
#include "config.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "settings.h"
#include "util.h"

static int bad(const struct account *a, const char *key, const char *expect, struct mc_err *err)
{
    const struct conf_value *v = conf_lookup(a, key);

    if (v && v->line)
        return mc_err_set(err, MC_CONFIG, "%s:%u: bad value '%s' for '%s': %s", v->file,
                          v->line, v->value, key, expect);
    return mc_err_set(err, MC_CONFIG, "bad value '%s' for '%s' (%s): %s", v ? v->value : "",
                      key, v ? v->file : "default", expect);
}

static int tristate(const struct account *a, const char *key, enum msg_tristate def,
                    enum msg_tristate *out, struct mc_err *err)
{
    const char *v = conf_str(a, key, NULL);

    *out = def;
    if (v == NULL)
        return 0;
    if (mc_streq_ci(v, "auto"))
        *out = MSG_AUTO;
    else if (mc_streq_ci(v, "on") || mc_streq_ci(v, "yes") || *v == '\0')
        *out = MSG_ON;
    else if (mc_streq_ci(v, "off") || mc_streq_ci(v, "no"))
        *out = MSG_OFF;
    else
        return bad(a, key, "expected auto, on or off", err);
    return 0;
}

/* EHLO name: `domain`, else /etc/mailname, else the host's FQDN. */
static void default_domain(char *out, size_t len)
{
    struct addrinfo hints = {.ai_flags = AI_CANONNAME}, *res = NULL;
    char host[256] = "localhost";
    FILE *f = fopen("/etc/mailname", "re");

    if (f && fgets(out, (int)len, f) && out[strspn(out, " \t\r\n")] != '\0') {
        out[strcspn(out, " \t\r\n")] = '\0';
        fclose(f);
        return;
    }
    if (f)
        fclose(f);
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    if (strchr(host, '.') == NULL && getaddrinfo(host, NULL, &hints, &res) == 0 && res &&
        res->ai_canonname && strchr(res->ai_canonname, '.'))
        snprintf(out, len, "%s", res->ai_canonname);
    else
        snprintf(out, len, "%s", host);
    if (res)
        freeaddrinfo(res);
}

/*
 * tls_session_cache: on (default: $XDG_CACHE_HOME/mailcar/tls, else
 * ~/.cache/mailcar/tls), off, or a directory.  Created private (0700).
 */
static int load_session_cache(struct settings *st, const struct account *a)
{
    const char *v = conf_str(a, "tls_session_cache", "on");
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char *path = NULL;

    st->tlsp.session_dir = NULL;
    if (mc_streq_ci(v, "off") || mc_streq_ci(v, "no"))
        return 0;
    if (!mc_streq_ci(v, "on") && *v)
        path = conf_expand_path(v);
    if (path) {
        snprintf(st->session_dir, sizeof st->session_dir, "%s", path);
        free(path);
    } else if (xdg && *xdg == '/') {
        snprintf(st->session_dir, sizeof st->session_dir, "%s/mailcar/tls", xdg);
    } else if (home && *home == '/') {
        snprintf(st->session_dir, sizeof st->session_dir, "%s/.cache/mailcar/tls", home);
    } else {
        return 0;
    }
    if (mc_mkdir_p(st->session_dir, 0700) == 0)
        st->tlsp.session_dir = st->session_dir;
    return 0;
}

/*
 * msmtp's tls_priorities is a GnuTLS priority string.  The common forms map
 * onto OpenSSL: a base keyword (NORMAL, PERFORMANCE, PFS, SECURE128,
 * SECURE192, SECURE256), then ':'-separated modifiers of which only the
 * protocol ones mean something here (-VERS-TLS1.2, or -VERS-ALL with
 * +VERS-TLS1.3: TLS 1.3 only); %-flags are ignored.  Anything else is
 * refused rather than guessed.  tls_ciphers, when set, wins.
 */
static int map_priorities(struct settings *st, const struct account *a, struct mc_err *err)
{
    static const struct {
        const char *word;
        const char *ciphers;
    } bases[] = {
        {"NORMAL", NULL}, {"PERFORMANCE", NULL},
        {"PFS", "ECDHE:DHE:!aNULL:!eNULL:!RC4:!3DES"},
        {"SECURE128", "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES"},
        {"SECURE192", "ECDHE+AES256:ECDHE+CHACHA20:DHE+AES256:!aNULL:!SHA1"},
        {"SECURE256", "ECDHE+AES256:ECDHE+CHACHA20:DHE+AES256:!aNULL:!SHA1"},
    };
    const char *v = conf_str(a, "tls_priorities", "");
    char copy[512], *save = NULL, *tok;
    bool known = false, no12 = false, plus13 = false;

    snprintf(copy, sizeof copy, "%s", v);
    tok = strtok_r(copy, ":", &save);
    for (size_t i = 0; tok && i < sizeof bases / sizeof bases[0]; i++) {
        if (mc_streq_ci(tok, bases[i].word)) {
            known = true;
            if (st->tlsp.ciphers == NULL)
                st->tlsp.ciphers = bases[i].ciphers;
        }
    }
    if (!known)
        return bad(a, "tls_priorities", "only the GnuTLS keywords NORMAL, PERFORMANCE, PFS, "
                   "SECURE128, SECURE192, SECURE256 are mapped; use tls_ciphers and "
                   "tls_min_version", err);
    while ((tok = strtok_r(NULL, ":", &save)) != NULL) {
        if (tok[0] == '%')
            continue;
        if (mc_streq_ci(tok, "-VERS-TLS1.2") || mc_streq_ci(tok, "-VERS-ALL"))
            no12 = true;
        else if (mc_streq_ci(tok, "+VERS-TLS1.3"))
            plus13 = true;
        else if (!mc_streq_ci(tok, "-VERS-TLS1.0") && !mc_streq_ci(tok, "-VERS-TLS1.1") &&
                 !mc_streq_ci(tok, "-VERS-SSL3.0") && !mc_streq_ci(tok, "+VERS-TLS1.2"))
            return bad(a, "tls_priorities", "this modifier has no OpenSSL equivalent here; use "
                       "tls_ciphers and tls_min_version", err);
    }
    if (no12 && (plus13 || strstr(v, "-VERS-TLS1.2")) && st->tlsp.min_version == NULL)
        st->tlsp.min_version = "tls1.3";
    return 0;
}

static int load_tls(struct settings *st, const struct account *a, struct mc_err *err)
{
    bool tls, starttls;

    if (conf_bool(a, "tls", true, &tls, err) < 0 ||
        conf_bool(a, "tls_starttls", true, &starttls, err) < 0 ||
        conf_bool(a, "tls_certcheck", true, &st->tlsp.certcheck, err) < 0)
        return -1;
    st->tls = !tls ? SMTP_TLS_NONE : starttls ? SMTP_TLS_STARTTLS : SMTP_TLS_IMPLICIT;
    st->tlsp.port = st->port;
    st->tlsp.trust_file = conf_str(a, "tls_trust_file", NULL);
    if (st->tlsp.trust_file && (mc_streq_ci(st->tlsp.trust_file, "system") ||
                                st->tlsp.trust_file[0] == '\0'))
        st->tlsp.trust_file = NULL;
    st->tlsp.fingerprint = conf_str(a, "tls_fingerprint", NULL);
    st->tlsp.cert_file = conf_str(a, "tls_cert_file", NULL);
    st->tlsp.key_file = conf_str(a, "tls_key_file", NULL);
    st->tlsp.min_version = conf_str(a, "tls_min_version", NULL);
    if (st->tlsp.min_version && !mc_streq_ci(st->tlsp.min_version, "tls1.2") &&
        !mc_streq_ci(st->tlsp.min_version, "tls1.3"))
        return bad(a, "tls_min_version", "expected tls1.2 or tls1.3", err);
    st->tlsp.ciphers = conf_str(a, "tls_ciphers", NULL);
    if (load_session_cache(st, a) < 0)
        return -1;
    if (conf_str(a, "tls_priorities", NULL) && map_priorities(st, a, err) < 0)
        return -1;
    return 0;
}

static int load_auth(struct settings *st, const struct account *a, struct mc_err *err)
{
    const char *v;

    st->user = conf_str(a, "user", NULL);
    v = conf_str(a, "auth", NULL);
    st->auth = v == NULL ? st->user != NULL : !(mc_streq_ci(v, "off") || mc_streq_ci(v, "no"));
    st->auth_forced = false;
    if (v && !mc_streq_ci(v, "on") && !mc_streq_ci(v, "off") && !mc_streq_ci(v, "yes") &&
        !mc_streq_ci(v, "no") && *v != '\0') {
        if (sasl_mech_parse(v, &st->mech) < 0)
            return bad(a, "auth", "expected on, off or a mechanism (plain, login, cram-md5, "
                       "scram-sha-1, scram-sha-256, ...-plus, xoauth2, oauthbearer, external)",
                       err);
        st->auth_forced = true;
    }
    return 0;
}

/*
 * host may be written as a URL: smtps://name[:port] is implicit TLS (465),
 * smtp://name[:port] is STARTTLS (587); [v6]:port brackets an IPv6 address.
 * The URL's scheme and port win over tls_starttls and port.
 */
static int parse_host_url(struct settings *st, const struct account *a, long *port,
                          struct mc_err *err)
{
    const char *h = st->host, *rest, *colon;
    size_t n;

    *port = 0;
    /* A list ("a, b") is parsed one host at a time when the hosts are tried. */
    if (h == NULL || strstr(h, "://") == NULL || strchr(h, ','))
        return 0;
    if (strncasecmp(h, "smtps://", 8) == 0) {
        st->tls = SMTP_TLS_IMPLICIT;
        rest = h + 8;
    } else if (strncasecmp(h, "smtp://", 7) == 0) {
        if (st->tls == SMTP_TLS_IMPLICIT)
            st->tls = SMTP_TLS_STARTTLS;
        rest = h + 7;
    } else {
        return bad(a, "host", "expected a host name, smtp://HOST[:PORT] or smtps://HOST[:PORT]",
                   err);
    }
    if (*rest == '[') {
        const char *close = strchr(rest, ']');
        if (close == NULL)
            return bad(a, "host", "unbalanced '[' in the address", err);
        n = (size_t)(close - rest - 1);
        snprintf(st->host_buf, sizeof st->host_buf, "%.*s", (int)n, rest + 1);
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = strchr(rest, ':');
        n = colon ? (size_t)(colon - rest) : strcspn(rest, "/");
        snprintf(st->host_buf, sizeof st->host_buf, "%.*s", (int)n, rest);
    }
    if (colon) {
        char *end;
        *port = strtol(colon + 1, &end, 10);
        if (*port < 1 || *port > 65535 || (*end != '\0' && *end != '/'))
            return bad(a, "host", "bad port in the URL", err);
    }
    if (st->host_buf[0] == '\0')
        return bad(a, "host", "no host name in the URL", err);
    st->host = st->host_buf;
    return 0;
}

static int load_proxy_port(struct settings *st, const struct account *a, struct mc_err *err)
{
    long port;

    if (conf_int(a, "proxy_port", 1080, &port, err) < 0)
        return -1;
    if (port < 1 || port > 65535)
        return bad(a, "proxy_port", "expected a number from 1 to 65535", err);
    snprintf(st->proxy_port, sizeof st->proxy_port, "%ld", port);
    return 0;
}

static int load_port(struct settings *st, const struct account *a, struct mc_err *err)
{
    long port;

    st->lmtp = mc_streq_ci(conf_str(a, "protocol", "smtp"), "lmtp");
    if (parse_host_url(st, a, &port, err) < 0)
        return -1;
    if (port) {
        snprintf(st->port, sizeof st->port, "%ld", port);
        return 0;
    }
    if (conf_int(a, "port", st->lmtp ? 24 : st->tls == SMTP_TLS_IMPLICIT ? 465 : 587, &port,
                 err) < 0)
        return -1;
    if (port < 1 || port > 65535)
        return bad(a, "port", "expected a number from 1 to 65535", err);
    snprintf(st->port, sizeof st->port, "%ld", port);
    return 0;
}

static int load_dsn(struct settings *st, const struct account *a, struct mc_err *err)
{
    const char *ret = conf_str(a, "dsn_return", NULL);

    st->dsn_notify = conf_str(a, "dsn_notify", NULL);
    if (st->dsn_notify && mc_streq_ci(st->dsn_notify, "off"))
        st->dsn_notify = NULL;
    st->dsn_return = NULL;
    if (ret == NULL || mc_streq_ci(ret, "off"))
        return 0;
    if (mc_streq_ci(ret, "headers") || mc_streq_ci(ret, "hdrs"))
        st->dsn_return = "HDRS";
    else if (mc_streq_ci(ret, "full"))
        st->dsn_return = "FULL";
    else
        return bad(a, "dsn_return", "expected off, headers or full", err);
    return 0;
}

static int load_family(struct settings *st, const struct account *a, struct mc_err *err)
{
    const char *v = conf_str(a, "address_family", NULL);

    st->family = AF_UNSPEC;
    if (v == NULL || mc_streq_ci(v, "any"))
        return 0;
    if (mc_streq_ci(v, "inet") || mc_streq_ci(v, "ipv4"))
        st->family = AF_INET;
    else if (mc_streq_ci(v, "inet6") || mc_streq_ci(v, "ipv6"))
        st->family = AF_INET6;
    else
        return bad(a, "address_family", "expected any, inet or inet6", err);
    return 0;
}

static int load_headers(struct settings *st, const struct account *a, struct mc_err *err)
{
    if (conf_bool(a, "remove_bcc_headers", true, &st->remove_bcc, err) < 0 ||
        tristate(a, "set_from_header", MSG_AUTO, &st->set_from, err) < 0 ||
        tristate(a, "set_date_header", MSG_AUTO, &st->set_date, err) < 0 ||
        tristate(a, "set_msgid_header", MSG_AUTO, &st->set_msgid, err) < 0 ||
        tristate(a, "set_to_header", MSG_OFF, &st->set_to, err) < 0)
        return -1;
    return 0;
}

/*
 * Keys msmtp files (or later mailcar versions) use that this version cannot
 * honour yet.  Where ignoring one would weaken security or privacy, or lose
 * mail, it is an error; otherwise a warning, so an msmtprc still loads.
 */
static const struct {
    const char *key;
    bool fatal;
} not_yet[] = {
    {"tls_crl_file", true},
    {"undisclosed_recipients", true},
    {"logfile_time_format", false}, {"ntlmdomain", false},
    {"tls_min_dh_prime_bits", false}, {"auto_from", false}, {"maildomain", false},
};

static bool harmless_value(const char *key, const char *value)
{
    /* Turning a missing feature off, or SMTP where SMTP is spoken, asks for nothing. */
    if (mc_streq_ci(value, "off") || mc_streq_ci(value, "no"))
        return true;
    return mc_streq_ci(key, "protocol") && mc_streq_ci(value, "smtp");
}

static int check_not_yet(struct settings *st, const struct account *a, struct mc_err *err)
{
    for (size_t i = 0; i < sizeof not_yet / sizeof not_yet[0]; i++) {
        const struct conf_value *v = conf_lookup(a, not_yet[i].key);
        char text[300];
        if (v == NULL || harmless_value(v->key, v->value))
            continue;
        if (v->line)
            snprintf(text, sizeof text, "%s:%u: '%s' is not supported by this version of mailcar",
                     v->file, v->line, v->key);
        else {
            int n = snprintf(text, sizeof text, "option --%s", v->key);
            for (int j = 9; j < n && j < (int)sizeof text; j++)
                if (text[j] == '_')
                    text[j] = '-';
            snprintf(text + n, sizeof text - (size_t)n, " is not supported by this version of mailcar");
        }
        if (not_yet[i].fatal)
            return mc_err_set(err, MC_CONFIG, "%s%s", text, v->line ? "; remove the line" : "");
        strlist_add(&st->warnings, text);
    }
    return 0;
}

void settings_free(struct settings *st)
{
    strlist_free(&st->warnings);
}

int settings_load(struct settings *st, const struct account *a, struct mc_err *err)
{
    settings_free(st);
    memset(st, 0, sizeof *st);
    if (check_not_yet(st, a, err) < 0)
        return -1;
    st->host = conf_str(a, "host", NULL);
    st->socket_path = conf_str(a, "socket", NULL);
    st->proxy_host = conf_str(a, "proxy_host", NULL);
    st->proxy_user = conf_str(a, "proxy_user", NULL);
    st->proxy_password = conf_str(a, "proxy_password", NULL);
    if (st->socket_path && *st->socket_path == '\0')
        st->socket_path = NULL;
    if (st->proxy_host && *st->proxy_host == '\0')
        st->proxy_host = NULL;
    if (st->host == NULL && st->socket_path)
        st->host = "localhost";   /* names the server for TLS and logs */
    st->source_ip = conf_str(a, "source_ip", NULL);
    st->from = conf_str(a, "from", NULL);
    st->from_name = conf_str(a, "from_full_name", NULL);
    st->qualify_domain = conf_str(a, "qualify_domain", NULL);
    st->aliases = conf_str(a, "aliases", NULL);
    if (st->aliases && (*st->aliases == '\0' || mc_streq_ci(st->aliases, "off")))
        st->aliases = NULL;
    st->queue_dir = conf_str(a, "queue_dir", NULL);
    if (st->queue_dir && *st->queue_dir == '\0')
        st->queue_dir = NULL;
    st->logfile = conf_str(a, "logfile", NULL);
    if (st->logfile && (*st->logfile == '\0' || mc_streq_ci(st->logfile, "off")))
        st->logfile = NULL;
    if (conf_str(a, "domain", NULL))
        snprintf(st->domain, sizeof st->domain, "%s", conf_str(a, "domain", NULL));
    else
        default_domain(st->domain, sizeof st->domain);
    if (load_tls(st, a, err) < 0 || load_port(st, a, err) < 0 || load_auth(st, a, err) < 0 ||
        load_dsn(st, a, err) < 0 || load_family(st, a, err) < 0 || load_headers(st, a, err) < 0)
        return -1;
    if (conf_time(a, "timeout", DEFAULT_TIMEOUT_S, &st->timeout_s, err) < 0 ||
        conf_time(a, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_S, &st->connect_timeout_s, err) < 0 ||
        conf_time(a, "deadline", DEFAULT_DEADLINE_S, &st->deadline_s, err) < 0 ||
        conf_bool(a, "allow_from_override", true, &st->allow_from_override, err) < 0 ||
        conf_bool(a, "read_envelope_from", false, &st->read_envelope_from, err) < 0 ||
        conf_bool(a, "read_recipients", false, &st->read_recipients, err) < 0 ||
        conf_bool(a, "partial_delivery", true, &st->partial_delivery, err) < 0 ||
        conf_bool(a, "dsn_required", false, &st->dsn_required, err) < 0 ||
        conf_bool(a, "queue", false, &st->queue, err) < 0 ||
        conf_bool(a, "rewrite_from", false, &st->rewrite_from, err) < 0 ||
        conf_time(a, "queue_lifetime", DEFAULT_QUEUE_LIFETIME_S, &st->queue_lifetime_s, err) < 0 ||
        conf_time(a, "queue_retry", DEFAULT_QUEUE_RETRY_S, &st->queue_retry_s, err) < 0 ||
        conf_time(a, "queue_retry_max", DEFAULT_QUEUE_RETRY_MAX_S, &st->queue_retry_max_s, err) < 0 ||
        log_facility(conf_str(a, "syslog", NULL), &st->syslog_facility, err) < 0)
        return -1;
    if (conf_check_account(a, err) < 0 || load_proxy_port(st, a, err) < 0)
        return -1;
    st->tlsp.host = conf_str(a, "tls_host_override", st->host);
    if (mc_has_ctl(st->domain) || strchr(st->domain, ' '))
        return bad(a, "domain", "contains white space or a control character", err);
    return 0;
}
