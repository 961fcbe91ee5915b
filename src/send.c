/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The orchestration of one invocation; see send.h.  The order matters: the
 * whole message is read and checked, and the envelope validated, before any
 * connection is made, so a bad message or address never half-reaches a
 * server.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "check.h"
#include "configure.h"
#include "dns.h"
#include "import.h"
#include "log.h"
#include "msg.h"
#include "net.h"
#include "progress.h"
#include "queue_cmd.h"
#include "run.h"
#include "secret.h"
#include "send.h"
#include "settings.h"
#include "smtp.h"
#include "util.h"

static const char *user_config_path(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");

    if (xdg && *xdg) {
        snprintf(buf, len, "%s/mailcar/config", xdg);
        if (access(buf, F_OK) == 0)
            return buf;
    } else if (home) {
        snprintf(buf, len, "%s/.config/mailcar/config", home);
        if (access(buf, F_OK) == 0)
            return buf;
    }
    if (home == NULL)
        return NULL;
    snprintf(buf, len, "%s/.mailcarrc", home);
    return buf;
}

static int load_config(struct run *r, struct mc_err *err)
{
    char path[4096];
    const char *user;

    conf_init(&r->conf);
    if (conf_load_file(&r->conf, SYSCONFDIR "/mailcar.conf", true, err) < 0)
        return -1;
    if (r->o->config)
        return conf_load_file(&r->conf, r->o->config, false, err);
    user = user_config_path(path, sizeof path);
    return user ? conf_load_file(&r->conf, user, true, err) : 0;
}

/* Strip one pair of angle brackets; "<>" and MAILER-DAEMON are the null sender. */
static char *sender_from_arg(const char *arg)
{
    size_t n = strlen(arg);

    if (mc_streq_ci(arg, "MAILER-DAEMON"))
        return mc_strdup("");
    if (n >= 2 && arg[0] == '<' && arg[n - 1] == '>')
        return mc_strndup(arg + 1, n - 2);
    return mc_strdup(arg);
}

static int select_account(struct run *r, const char *from, struct mc_err *err)
{
    account_free(&r->acc);
    if (conf_select(&r->conf, r->o->account, from, &r->acc, r->why, sizeof r->why, err) < 0)
        return -1;
    /* Command-line options win over every file. */
    for (size_t i = 0; i < r->o->set.n; i++)
        account_set(&r->acc, r->o->set.v[i].key, r->o->set.v[i].value, "command line", 0);
    return settings_load(&r->st, &r->acc, err);
}

static void default_sender(struct run *r)
{
    struct passwd *pw = getpwuid(getuid());

    free(r->from);
    /* A glob in `from` selects the account for -f; it is no address to send from. */
    if (r->st.from && strpbrk(r->st.from, "*?[") == NULL)
        r->from = mc_strdup(r->st.from);
    else {
        char buf[512];
        snprintf(buf, sizeof buf, "%s@%s", pw ? pw->pw_name : "nobody", r->st.domain);
        r->from = mc_strdup(buf);
    }
}

/* For rewrite_from: the local user's full name (GECOS up to the first comma), or "". */
static void user_full_name(char *out, size_t len)
{
    struct passwd *pw = getpwuid(getuid());
    const char *g = pw && pw->pw_gecos ? pw->pw_gecos : "";

    snprintf(out, len, "%.*s", (int)strcspn(g, ","), g);
    if (*out == '\0' && pw)
        snprintf(out, len, "%s", pw->pw_name);
}

static int read_one(struct run *r, int fd, struct msg *m, struct mc_err *err)
{
    char name[128] = "";
    struct msg_opts mo = {
        .dot_ends = r->o->dot_ends,
        .extract_rcpts = r->o->extract || r->st.read_recipients,
        .remove_bcc = r->st.remove_bcc,
        .set_from = r->st.rewrite_from ? MSG_ON : r->st.set_from,
        .set_date = r->st.set_date,
        .set_msgid = r->st.set_msgid,
        .set_to = r->st.set_to,
        .from_addr = r->from,
        .from_name = r->o->fullname ? r->o->fullname : r->st.from_name,
        .domain = r->st.domain,
    };

    if (r->st.rewrite_from && mo.from_name == NULL) {
        user_full_name(name, sizeof name);
        mo.from_name = name[0] && !mc_has_ctl(name) ? name : NULL;
    }
    return msg_read(fd, &mo, m, err);
}

static int read_messages(struct run *r, struct mc_err *err)
{
    size_t n = r->o->inputs.n ? r->o->inputs.n : 1;

    r->msgs = mc_calloc(n, sizeof *r->msgs);
    for (size_t i = 0; i < n; i++) {
        const char *name = r->o->inputs.n ? r->o->inputs.v[i] : NULL;
        int fd = name ? open(name, O_RDONLY | O_CLOEXEC) : 0;
        if (fd < 0)
            return mc_err_set(err, MC_IOERR, "cannot open input '%s': %s", name, strerror(errno));
        int rc = read_one(r, fd, &r->msgs[i], err);
        if (fd > 0)
            close(fd);
        if (rc < 0)
            return name ? mc_err_prefix(err, "%s", name) : -1;
        r->nmsgs++;
    }
    return 0;
}

static int parse_argv_rcpts(struct run *r, struct mc_err *err)
{
    for (size_t i = 0; i < r->o->rcpts.n; i++) {
        const char *a = r->o->rcpts.v[i];
        if (a[0] == '-')
            return mc_err_set(err, MC_USAGE, "recipient '%s' starts with '-': refused, since "
                              "it could be an option meant for another program", a);
        if (addr_parse_list(a, strlen(a), &r->argv_rcpts, err) < 0)
            return -1;
    }
    return 0;
}

/* "root" becomes root@qualify_domain when one is set; addr_check refuses it otherwise. */
static void add_qualified(struct run *r, struct addrlist *all, const char *addr)
{
    char *q;

    if (r->st.qualify_domain == NULL || *addr == '\0' || strchr(addr, '@')) {
        addrlist_add(all, addr, NULL);
        return;
    }
    q = mc_calloc(1, strlen(addr) + strlen(r->st.qualify_domain) + 2);
    snprintf(q, strlen(addr) + strlen(r->st.qualify_domain) + 2, "%s@%s", addr,
             r->st.qualify_domain);
    addrlist_add(all, q, NULL);
    free(q);
}

/* A local name goes through the aliases first (each result then qualified). */
static int add_rcpt(struct run *r, struct addrlist *all, const char *addr, struct mc_err *err)
{
    struct strlist ex = {0};

    if (r->aliases.file == NULL || *addr == '\0' || strchr(addr, '@')) {
        add_qualified(r, all, addr);
        return 0;
    }
    if (aliases_expand(&r->aliases, addr, aliases_read_file, NULL, &ex, err) < 0)
        return -1;
    for (size_t i = 0; i < ex.n; i++)
        add_qualified(r, all, ex.v[i]);
    strlist_free(&ex);
    return 0;
}

/* The envelope for message m: argv recipients, plus the headers' with -t. */
static int build_envelope(struct run *r, struct msg *m, struct smtp_envelope *env,
                          struct addrlist *all, struct mc_err *err)
{
    for (size_t i = 0; i < r->argv_rcpts.n; i++)
        if (add_rcpt(r, all, r->argv_rcpts.v[i].addr, err) < 0)
            return -1;
    for (size_t i = 0; i < m->rcpts.n; i++)
        if (add_rcpt(r, all, m->rcpts.v[i].addr, err) < 0)
            return -1;
    if (all->n == 0)
        return mc_err_set(err, MC_USAGE, "no recipients: name them on the command line or use -t");
    env->from = r->from;
    env->smtputf8 = addr_is_utf8(r->from) || m->utf8_headers;
    env->rcpts = mc_calloc(all->n, sizeof *env->rcpts);
    env->nrcpts = all->n;
    for (size_t i = 0; i < all->n; i++) {
        if (addr_check(all->v[i].addr, "recipient", err) < 0)
            return -1;
        env->rcpts[i].addr = all->v[i].addr;
        env->smtputf8 |= addr_is_utf8(all->v[i].addr);
    }
    return 0;
}

static void smtp_params_from(struct run *r, struct smtp_params *p, const char *secret)
{
    memset(p, 0, sizeof *p);
    p->helo = r->st.domain;
    p->tls = r->st.tls;
    p->auth = r->st.auth;
    p->auth_forced = r->st.auth_forced;
    p->mech = r->st.mech;
    p->creds.user = r->st.user;
    p->creds.secret = secret;
    p->creds.host = r->st.host;
    p->creds.port = atoi(r->st.port);
    /* EXTERNAL is chosen only when the certificate is the sole credential. */
    p->have_client_cert = r->st.tlsp.cert_file != NULL && secret == NULL;
    p->partial_delivery = r->st.partial_delivery;
    p->dsn_required = r->st.dsn_required;
    p->chunking = true;
    p->lmtp = r->st.lmtp;
    p->dsn_notify = r->o->dsn_notify ? r->o->dsn_notify : r->st.dsn_notify;
    p->dsn_ret = r->o->dsn_ret ? r->o->dsn_ret : r->st.dsn_return;
    p->dsn_envid = r->o->envid;
    p->want_8bitmime = r->o->body && mc_streq_ci(r->o->body, "8BITMIME");
    p->trace = log_trace;
    p->trace_arg = &r->log;
}

static void print_tlsa(FILE *f, const struct dns_tlsa *t)
{
    fprintf(f, "mailcar:   TLSA %u %u %u ", t->usage, t->selector, t->mtype);
    for (size_t i = 0; i < t->len; i++)
        fprintf(f, "%02x", t->data[i]);
    fputc('\n', f);
}

/*
 * tls_dane: TLSA records of the route, used only when a validating resolver
 * vouched for them (AD bit); -v says which check applies.  *out is NULL when
 * the usual verification applies.
 */
static int dane_lookup(struct run *r, struct dns_answer **out, struct mc_err *err)
{
    FILE *tr = r->log.transcript;
    struct dns_answer *a;
    const char *why = NULL;
    bool on;

    *out = NULL;
    if (conf_bool(&r->acc, "tls_dane", false, &on, err) < 0)
        return -1;
    if (!on || r->st.tls == SMTP_TLS_NONE || r->st.socket_path || !r->st.tlsp.certcheck ||
        r->st.tlsp.fingerprint)
        return 0;
    a = mc_calloc(1, sizeof *a);
    if (dns_tlsa_lookup(r->st.host, r->st.port, a, err) < 0) {
        free(a);
        return -1;
    }
    if (a->n == 0)
        why = "no TLSA records";
    else if (!a->ad)
        why = "TLSA records not DNSSEC-validated (no AD bit from the resolver)";
    if (tr && why)
        fprintf(tr, "mailcar: DANE: %s for _%s._tcp.%s; usual certificate verification\n",
                why, r->st.port, r->st.host);
    if (why) {
        free(a);
        return 0;
    }
    if (tr) {
        fprintf(tr, "mailcar: DANE: %zu DNSSEC-validated TLSA record%s for _%s._tcp.%s; the "
                "certificate must match\n", a->n, a->n == 1 ? "" : "s", r->st.port, r->st.host);
        for (size_t i = 0; i < a->n; i++)
            print_tlsa(tr, &a->tlsa[i]);
    }
    *out = a;
    return 0;
}

static int connect_open(struct run *r, struct conn *c, struct smtp_session *s,
                        struct smtp_params *p, const struct net_params *npp, struct mc_err *err);

/* One route: connect to the account's (single) host and open the session. */
static int open_one(struct run *r, struct conn *c, struct smtp_session *s,
                    struct smtp_params *p, char **secret, struct mc_err *err)
{
    struct net_params np = {
        .host = r->st.host,
        .port = r->st.port,
        .source_ip = r->st.source_ip,
        .family = r->st.family,
        .connect_timeout_ms = r->st.connect_timeout_s * 1000,
        .lim = {.timeout_ms = r->st.timeout_s * 1000,
                .deadline_ms = r->st.deadline_s ? net_now_ms() + r->st.deadline_s * 1000 : 0},
        .implicit_tls = r->st.tls == SMTP_TLS_IMPLICIT,
        .socket_path = r->st.socket_path,
        .proxy_host = r->st.proxy_host,
        .proxy_port = r->st.proxy_port,
        .proxy_user = r->st.proxy_user,
        .proxy_password = r->st.proxy_password,
        .tls = r->st.tls == SMTP_TLS_NONE ? NULL : &r->st.tlsp,
    };

    if (r->st.host == NULL)
        return mc_err_set(err, MC_CONFIG, "no server configured: add 'host NAME' to the "
                          "configuration (account '%s') or use --host",
                          r->acc.name ? r->acc.name : "default");
    struct secret_ctx sx = {.host = r->st.host, .user = r->st.user, .timeout_s = r->st.timeout_s,
                            .fd = r->o->password_fd, .may_prompt = r->st.tlsp.cert_file == NULL};
    if (r->st.auth && r->o->mode != MODE_SERVERINFO && secret_get(&r->acc, &sx, secret, err) < 0)
        return -1;
    if (r->log.transcript && r->st.tls != SMTP_TLS_NONE && !r->st.tlsp.certcheck)
        fprintf(r->log.transcript, "mailcar: WARNING: tls_certcheck is off: the server's "
                "certificate is NOT verified; anyone on the path can read this session\n");
    smtp_params_from(r, p, *secret);
    struct dns_answer *dane = NULL;
    if (np.tls && dane_lookup(r, &dane, err) < 0)
        return -1;
    r->st.tlsp.dane = dane;
    int rc = connect_open(r, c, s, p, &np, err);
    r->st.tlsp.dane = NULL;
    free(dane);
    return rc;
}

static int connect_open(struct run *r, struct conn *c, struct smtp_session *s,
                        struct smtp_params *p, const struct net_params *npp, struct mc_err *err)
{
    const struct net_params np = *npp;

    if (net_connect(c, &np, err) < 0) {
        /* An msmtprc that relied on msmtp's default port 25 says nothing about the port. */
        if (strstr(err->msg, "refused") && conf_lookup(&r->acc, "port") == NULL &&
            r->st.proxy_host == NULL && r->st.socket_path == NULL &&
            r->st.host == conf_str(&r->acc, "host", NULL)) {
            char was[MC_ERR_MSG_MAX];
            memcpy(was, err->msg, sizeof was);
            mc_err_set(err, err->cls, "%.300s (mailcar's default port is %s; add 'port 25' "
                       "if the server listens where msmtp's default pointed)", was, r->st.port);
        }
        return -1;
    }
    if (r->log.transcript)
        fprintf(r->log.transcript, "mailcar: connected to %s%s%s%s%s%s%s\n",
                r->st.socket_path ? "socket " : "", r->st.socket_path ? r->st.socket_path : r->st.host,
                r->st.socket_path ? "" : " port ", r->st.socket_path ? "" : r->st.port,
                r->st.proxy_host ? " through the SOCKS proxy" : "",
                np.implicit_tls ? ", TLS " : "", np.implicit_tls ? c->ops->tls_desc(c) : "");
    smtp_init(s, c, p);
    return smtp_open(s, err);
}

#define MAX_FALLBACKS 8

/* A failed route: said with -v, and a line in the log file. */
static void note_attempt(struct run *r, const char *host, const struct mc_err *err)
{
    struct log_entry e = {.host = host, .from = r->from, .result = err->msg,
                          .status = mc_class_exit(err->cls)};
    struct mc_err ignored;

    if (r->log.transcript)
        fprintf(r->log.transcript, "mailcar: %s failed: %s\n", host, err->msg);
    log_attempt(&r->log, &e, &ignored);
}

static void close_route(struct conn *c, struct smtp_session *s, char **secret)
{
    if (s->p)
        smtp_release(s);
    memset(s, 0, sizeof *s);
    if (c->impl)
        c->ops->close(c);
    c->impl = NULL;
    mc_free_secret(*secret);
    *secret = NULL;
}

static void print_srv(FILE *f, const char *how, const struct dns_srv *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "mailcar: %s%s %u %u %u %s%s\n", how, v[i].implicit_tls ? "_submissions" :
                "_submission", v[i].prio, v[i].weight, v[i].port,
                v[i].target[0] ? v[i].target : ".", v[i].validated ? " (DNSSEC-validated)" : "");
}

/*
 * "srv:DOMAIN" in a host list becomes the routes its SRV records name, in
 * RFC 2782 order: smtps://TARGET:PORT for _submissions, smtp://TARGET:PORT
 * for _submission.  Returns the list to walk (owned), or NULL with err.
 */
static char *expand_srv(struct run *r, const char *hosts, struct mc_err *err)
{
    struct dns_srv *v = mc_calloc(4 * DNS_MAX_RECORDS, sizeof *v), *raw = v + 2 * DNS_MAX_RECORDS;
    char *list = mc_strdup(hosts), *save = NULL, *h;
    struct buf out;

    buf_init(&out, BUF_NOLIMIT);
    for (h = strtok_r(list, ", \t", &save); h; h = strtok_r(NULL, ", \t", &save)) {
        size_t n, rawn;
        if (strncasecmp(h, "srv:", 4) != 0) {
            buf_printf(&out, "%s%s", out.len ? "," : "", h);
            continue;
        }
        if (dns_srv_lookup(h + 4, v, &n, raw, &rawn, err) < 0) {
            if (r->log.transcript)
                fprintf(r->log.transcript, "mailcar: %s: %s\n", h, err->msg);
            continue;
        }
        if (r->log.transcript) {
            print_srv(r->log.transcript, "SRV record ", raw, rawn);
            print_srv(r->log.transcript, "SRV choice ", v, n);
        }
        for (size_t i = 0; i < n; i++)
            buf_printf(&out, "%s%s://%s:%u", out.len ? "," : "", v[i].implicit_tls ? "smtps" :
                       "smtp", v[i].target, v[i].port);
    }
    free(list);
    free(v);
    if (out.len == 0) {
        buf_release(&out);
        return NULL;    /* err says why the last one failed */
    }
    return buf_detach(&out, NULL);
}

/* Try each host of a "host a, b, c" list in turn while the failures are temporary. */
static int open_hosts(struct run *r, struct conn *c, struct smtp_session *s,
                      struct smtp_params *p, char **secret, struct mc_err *err)
{
    const struct conf_value *hv = conf_lookup(&r->acc, "host");
    char *list, *save = NULL, *h;
    int rc = -1;

    if (hv == NULL || (strchr(hv->value, ',') == NULL && strncasecmp(hv->value, "srv:", 4) != 0))
        return open_one(r, c, s, p, secret, err);
    if (strcasestr(hv->value, "srv:") == NULL)
        list = mc_strdup(hv->value);
    else if ((list = expand_srv(r, hv->value, err)) == NULL)
        return -1;
    for (h = strtok_r(list, ", \t", &save); h; h = strtok_r(NULL, ", \t", &save)) {
        account_set(&r->acc, "host", h, "host list", 0);
        if (settings_load(&r->st, &r->acc, err) < 0)
            break;
        if ((rc = open_one(r, c, s, p, secret, err)) == 0 || err->cls != MC_TEMPFAIL)
            break;
        note_attempt(r, h, err);
        close_route(c, s, secret);
    }
    free(list);
    return rc;
}

/*
 * Failover: every host of the account, then the account named by
 * fallback_account (and its own fallback), for as long as the failures are
 * temporary (connection, TLS handshake, 4xx or 421 before the message).  A
 * permanent failure stops at once: another server would refuse alike.
 */
int open_session(struct run *r, struct conn *c, struct smtp_session *s, struct smtp_params *p,
                 char **secret, struct mc_err *err)
{
    int hops = 0;

    for (;;) {
        const char *fb;
        char name[256];

        if (open_hosts(r, c, s, p, secret, err) == 0)
            return 0;
        fb = conf_str(&r->acc, "fallback_account", NULL);
        if (err->cls != MC_TEMPFAIL || fb == NULL || *fb == '\0')
            return -1;
        if (++hops > MAX_FALLBACKS)
            return mc_err_prefix(err, "gave up after %d fallback accounts", MAX_FALLBACKS);
        note_attempt(r, r->st.host ? r->st.host : "?", err);
        close_route(c, s, secret);
        snprintf(name, sizeof name, "%s", fb);
        account_free(&r->acc);
        if (conf_select(&r->conf, name, NULL, &r->acc, r->why, sizeof r->why, err) < 0)
            return mc_err_prefix(err, "fallback_account");
        for (size_t i = 0; i < r->o->set.n; i++)
            account_set(&r->acc, r->o->set.v[i].key, r->o->set.v[i].value, "command line", 0);
        if (settings_load(&r->st, &r->acc, err) < 0)
            return -1;
        /* The old account's strings are gone; the log follows the new one. */
        r->log.logfile = r->st.logfile;
        r->log.syslog_facility = r->st.syslog_facility;
        if (r->log.transcript)
            fprintf(r->log.transcript, "mailcar: trying fallback account %s\n", name);
    }
}

/* Report refused recipients; the class for the exit status when some were. */
static enum mc_class report_rcpts(struct run *r, const struct smtp_envelope *env)
{
    enum mc_class cls = MC_OK;

    for (size_t i = 0; i < env->nrcpts; i++) {
        const struct smtp_rcpt *rc = &env->rcpts[i];
        if (rc->state == RCPT_OK || rc->state == RCPT_PENDING)
            continue;
        fprintf(r->errf, "mailcar: recipient <%s> refused: %s\n", rc->addr, rc->reply);
        if (rc->state == RCPT_PERMFAIL)
            cls = MC_NOUSER;
        else if (cls == MC_OK)
            cls = MC_TEMPFAIL;
    }
    return cls;
}

/* All recipients, or (refused) those the server turned down with its reply. */
static char *join_rcpts(const struct smtp_envelope *env, bool refused)
{
    struct buf b;

    buf_init(&b, BUF_NOLIMIT);
    for (size_t i = 0; i < env->nrcpts; i++) {
        const struct smtp_rcpt *rc = &env->rcpts[i];
        if (!refused)
            buf_printf(&b, "%s%s", b.len ? "," : "", rc->addr);
        else if (rc->state == RCPT_TEMPFAIL || rc->state == RCPT_PERMFAIL)
            buf_printf(&b, "%s%s (%s)", b.len ? "; " : "", rc->addr, rc->reply);
    }
    return buf_detach(&b, NULL);
}

void log_result(struct run *r, struct smtp_session *s, struct conn *c,
                       const struct smtp_envelope *env, const struct msg *m, long long start,
                       const struct mc_err *err)
{
    char *rcpts = join_rcpts(env, false), *refused = join_rcpts(env, true);
    struct mc_err lerr;
    struct log_entry e = {
        .host = r->st.host,
        .tls = c->impl ? c->ops->tls_desc(c) : "none",
        .auth = s && s->authenticated ? "on" : "off",
        .user = r->st.user,
        .from = r->from,
        .rcpts = rcpts,
        .refused = refused,
        .size = m ? (long long)msg_size(m) : 0,
        .msgid = m ? m->message_id : NULL,
        .duration_ms = net_now_ms() - start,
        .result = err->cls == MC_OK ? (s ? s->final_reply : "") : err->msg,
        .status = mc_class_exit(err->cls),
    };

    if (log_attempt(&r->log, &e, &lerr) < 0)
        fprintf(r->errf, "mailcar: %s\n", lerr.msg);
    free(rcpts);
    free(refused);
}

static int send_one(struct run *r, struct smtp_session *s, struct conn *c, size_t i,
                    bool last, struct mc_err *err)
{
    struct smtp_envelope *env = &r->envs[i];
    long long start = net_now_ms();
    enum mc_class cls;
    int rc;

    s->quit_after = last;
    rc = smtp_send(s, env, &r->msgs[i], err);
    r->sent[i] = rc == 0;
    /* When nothing went out to a single recipient, the error line already names it. */
    cls = rc < 0 && env->nrcpts == 1 ? MC_OK : report_rcpts(r, env);
    if (rc == 0 && cls != MC_OK)
        rc = mc_err_set(err, cls, "message sent, but not to every recipient");
    log_result(r, s, c, env, &r->msgs[i], start, rc == 0 ? &(struct mc_err){0} : err);
    return rc;
}

/* Everything that can be checked without the server, before connecting. */
static int prepare(struct run *r, struct mc_err *err)
{
    if (r->st.rewrite_from) {
        /* System mail: the account's address, whatever -f or the message say. */
        if (r->st.from == NULL || strpbrk(r->st.from, "*?["))
            return mc_err_set(err, MC_CONFIG, "'rewrite_from' needs 'from' set to an address "
                              "(account '%s')", r->acc.name ? r->acc.name : "default");
        r->from = mc_strdup(r->st.from);
    } else if (r->o->from) {
        r->from = sender_from_arg(r->o->from);
        if (!r->st.allow_from_override && r->st.from)
            default_sender(r);
    } else {
        default_sender(r);
    }
    if (read_messages(r, err) < 0 || parse_argv_rcpts(r, err) < 0)
        return -1;
    if (!r->o->from && !r->st.rewrite_from && r->st.read_envelope_from &&
        r->msgs[0].header_from) {
        free(r->from);
        r->from = mc_strdup(r->msgs[0].header_from);
        if (r->o->account == NULL && select_account(r, r->from, err) < 0)
            return -1;
    }
    if (r->from[0] && addr_check(r->from, "sender", err) < 0)
        return -1;
    if (r->st.aliases && aliases_load(r->st.aliases, &r->aliases, err) < 0)
        return -1;
    r->envs = mc_calloc(r->nmsgs, sizeof *r->envs);
    r->alls = mc_calloc(r->nmsgs, sizeof *r->alls);
    r->sent = mc_calloc(r->nmsgs, sizeof *r->sent);
    for (size_t i = 0; i < r->nmsgs; i++)
        if (build_envelope(r, &r->msgs[i], &r->envs[i], &r->alls[i], err) < 0)
            return -1;
    return 0;
}

static int mode_send(struct run *r, struct mc_err *err)
{
    struct conn c = {0};
    struct smtp_session s;
    struct smtp_params p;
    char *secret = NULL;
    int rc, failed = 0;
    struct mc_err first = {0}, *errs;

    if (prepare(r, err) < 0)
        return -1;
    errs = mc_calloc(r->nmsgs, sizeof *errs);   /* per message, for the queue */
    memset(&s, 0, sizeof s);
    rc = open_session(r, &c, &s, &p, &secret, err);
    mc_free_secret(secret);
    p.creds.secret = NULL;
    if (rc == 0 && !r->o->verbose) {
        long long total = 0;
        for (size_t i = 0; i < r->nmsgs; i++)
            total += (long long)msg_size(&r->msgs[i]);
        progress_attach(&c, total, r->errf);   /* only on a terminal, only over 1 MB */
    }
    if (rc < 0) {
        for (size_t i = 0; i < r->nmsgs; i++) {
            log_result(r, NULL, &c, &r->envs[i], &r->msgs[i], net_now_ms(), err);
            errs[i] = *err;
        }
    }
    for (size_t i = 0; rc == 0 && i < r->nmsgs; i++) {
        if (send_one(r, &s, &c, i, i + 1 == r->nmsgs, err) < 0) {
            errs[i] = *err;
            if (failed++ == 0)
                first = *err;
            if (s.broken) {
                for (size_t j = i + 1; j < r->nmsgs; j++)
                    errs[j] = *err;    /* not tried: the connection is gone */
                break;
            }
        }
    }
    if (rc == 0)
        smtp_quit(&s);
    if (s.p)
        smtp_release(&s);
    if (c.impl)
        c.ops->close(&c);
    if (r->st.queue) {
        rc = queue_after_send(r, errs, err);
        if (rc == 0 && failed == 0)
            queue_flush_background(r);    /* the way is clear: older mail may follow */
    } else if (rc == 0 && failed) {
        *err = first;
        rc = -1;
    }
    free(errs);
    return rc;
}

static int mode_verify(struct run *r, struct mc_err *err)
{
    struct conn c = {0};
    struct smtp_session s;
    struct smtp_params p;
    char *secret = NULL;
    struct addrlist all = {0};
    struct smtp_envelope env = {0};
    int rc;

    default_sender(r);
    if (r->o->from) {
        free(r->from);
        r->from = sender_from_arg(r->o->from);
    }
    if (parse_argv_rcpts(r, err) < 0)
        return -1;
    if (r->st.aliases && aliases_load(r->st.aliases, &r->aliases, err) < 0)
        return -1;
    struct msg none = {0};
    if (build_envelope(r, &none, &env, &all, err) < 0) {
        free(env.rcpts);
        addrlist_free(&all);
        return -1;
    }
    memset(&s, 0, sizeof s);
    rc = open_session(r, &c, &s, &p, &secret, err);
    mc_free_secret(secret);
    if (rc == 0)
        rc = smtp_verify(&s, &env, err);
    for (size_t i = 0; i < env.nrcpts; i++)
        fprintf(r->out, "%s: %s (%s)\n", env.rcpts[i].addr,
                env.rcpts[i].state == RCPT_OK ? "deliverable" : env.rcpts[i].state == RCPT_PENDING
                    ? "not checked" : "refused", env.rcpts[i].reply);
    if (s.p) {
        smtp_quit(&s);
        smtp_release(&s);
    }
    if (c.impl)
        c.ops->close(&c);
    free(env.rcpts);
    addrlist_free(&all);
    return rc;
}

static void print_caps(FILE *out, const struct caps *c)
{
    static const struct {
        unsigned flag;
        const char *name;
    } names[] = {
        {CAP_PIPELINING, "PIPELINING"}, {CAP_SIZE, "SIZE"}, {CAP_8BITMIME, "8BITMIME"},
        {CAP_SMTPUTF8, "SMTPUTF8"},     {CAP_DSN, "DSN"},   {CAP_ENHANCED, "ENHANCEDSTATUSCODES"},
        {CAP_CHUNKING, "CHUNKING"},     {CAP_STARTTLS, "STARTTLS"}, {CAP_AUTH, "AUTH"},
    };

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(c->flags & names[i].flag))
            continue;
        fprintf(out, "    %s", names[i].name);
        if (names[i].flag == CAP_SIZE && c->size)
            fprintf(out, " %llu (%.1f MiB)", c->size, c->size / 1048576.0);
        if (names[i].flag == CAP_AUTH)
            fprintf(out, " %s", c->auth);
        fputc('\n', out);
    }
}

static int mode_serverinfo(struct run *r, struct mc_err *err)
{
    struct conn c = {0};
    struct smtp_session s;
    struct smtp_params p;
    char *secret = NULL;
    struct buf tls;
    int rc;

    r->st.auth = false;   /* what the server offers, not whether we may use it */
    r->st.tlsp.report_only = true;
    memset(&s, 0, sizeof s);
    rc = open_session(r, &c, &s, &p, &secret, err);
    if (s.p) {
        fprintf(r->out, "server %s port %s\n", r->st.host, r->st.port);
        if (s.greeting[0])
            fprintf(r->out, "  greeting: %s\n", s.greeting);
        if (r->st.tls == SMTP_TLS_STARTTLS && s.tls_active) {
            fprintf(r->out, "  capabilities before STARTTLS:\n");
            print_caps(r->out, &s.caps_plain);
        }
        buf_init(&tls, BUF_NOLIMIT);
        if (c.impl && c.ops->tls_report)
            c.ops->tls_report(&c, &tls);
        fputs(tls.len ? tls.data : "  TLS: none\n", r->out);
        buf_release(&tls);
        fprintf(r->out, "  capabilities%s:\n", s.tls_active ? " (over TLS)" : "");
        print_caps(r->out, &s.caps);
        smtp_quit(&s);
        smtp_release(&s);
    }
    if (c.impl)
        c.ops->close(&c);
    return rc;
}

static int mode_pretend(struct run *r)
{
    fprintf(r->out, "account: %s (%s)\n", r->acc.name ? r->acc.name : "(defaults)", r->why);
    for (size_t i = 0; i < conf_nkeys; i++) {
        const struct conf_value *v = conf_lookup(&r->acc, conf_keys[i].name);
        if (v == NULL)
            continue;
        fprintf(r->out, "%-22s %s", v->key, (conf_keys[i].flags & CONF_SECRET) ? "********"
                                                                               : v->value);
        if (v->line)
            fprintf(r->out, "    # %s:%u", v->file, v->line);
        else
            fprintf(r->out, "    # %s", v->file);
        fputc('\n', r->out);
    }
    fprintf(r->out, "%-22s %s port %s, tls %s, auth %s\n", "# effective", r->st.host ? r->st.host
            : "(no host)", r->st.port, r->st.tls == SMTP_TLS_NONE ? "off" : r->st.tls ==
            SMTP_TLS_STARTTLS ? "starttls" : "implicit", r->st.auth ? (r->st.auth_forced ?
            sasl_mech_name(r->st.mech) : "on") : "off");
    fprintf(r->out, "%-22s %s\n", "# ehlo/domain", r->st.domain);
    return 0;
}

static void print_version(FILE *out)
{
    fprintf(out, "mailcar %s\n", PACKAGE_VERSION);
    fprintf(out, "TLS: %s (STARTTLS, implicit TLS, SNI, certificate pinning)\n",
            tls_library_version());
    fputs("SASL: SCRAM-SHA-256(-PLUS) SCRAM-SHA-1(-PLUS) PLAIN LOGIN CRAM-MD5 EXTERNAL "
          "OAUTHBEARER XOAUTH2\n", out);
    fputs("SMTP: PIPELINING SIZE 8BITMIME SMTPUTF8 DSN CHUNKING ENHANCEDSTATUSCODES\n", out);
    fputs("system configuration: " SYSCONFDIR "/mailcar.conf\n", out);
}

static void run_free(struct run *r)
{
    for (size_t i = 0; i < r->nmsgs; i++)
        msg_free(&r->msgs[i]);
    free(r->msgs);
    if (r->envs)
        for (size_t i = 0; i < r->nmsgs; i++) {
            free(r->envs[i].rcpts);
            addrlist_free(&r->alls[i]);
        }
    free(r->envs);
    free(r->alls);
    free(r->sent);
    addrlist_free(&r->argv_rcpts);
    aliases_free(&r->aliases);
    free(r->from);
    account_free(&r->acc);
    conf_free(&r->conf);
    settings_free(&r->st);
}

static int dispatch(struct run *r, struct mc_err *err)
{
    switch (r->o->mode) {
    case MODE_SEND: return mode_send(r, err);
    case MODE_VERIFY: return mode_verify(r, err);
    case MODE_SERVERINFO: return mode_serverinfo(r, err);
    case MODE_PRETEND: return mode_pretend(r);
    case MODE_CHECK: return check_run(r, err);
    case MODE_QUEUE_LIST: return queue_cmd_list(r, err);
    case MODE_QUEUE_RUN: return queue_cmd_run(r, err);
    case MODE_QUEUE_DELETE:
    case MODE_QUEUE_HOLD:
    case MODE_QUEUE_RELEASE: return queue_cmd_modify(r, err);
    default: return mc_err_set(err, MC_SOFTWARE, "unhandled mode");
    }
}

int send_run(const struct cli *o, FILE *out, FILE *errf, struct mc_err *err)
{
    struct run r = {.o = o, .out = out, .errf = errf};
    int rc;

    switch (o->mode) {
    case MODE_VERSION: print_version(out); return 0;
    case MODE_IMPORT: return import_print(o->import, out, err);
    case MODE_CONFIGURE: return configure_print(o->configure, out, o->verbose ? errf : NULL, err);
    case MODE_NEWALIASES: return 0;    /* aliases are read when used: nothing to build */
    default: break;
    }
    r.log.syslog_facility = -1;
    r.log.warnings = errf;
    if (o->verbose)
        r.log.transcript = errf;
    rc = load_config(&r, err);
    for (size_t i = 0; i < r.conf.warnings.n; i++)
        fprintf(errf, "mailcar: warning: %s\n", r.conf.warnings.v[i]);
    if (rc == 0 && o->verbose)
        for (size_t i = 0; i < o->ignored.n; i++)
            fprintf(errf, "mailcar: ignoring option %s\n", o->ignored.v[i]);
    if (rc == 0) {
        char *from = o->from ? sender_from_arg(o->from) : NULL;
        rc = select_account(&r, from, err);
        free(from);
    }
    for (size_t i = 0; rc == 0 && i < r.st.warnings.n; i++)
        fprintf(errf, "mailcar: warning: %s\n", r.st.warnings.v[i]);
    if (rc == 0) {
        r.log.logfile = r.st.logfile;
        r.log.syslog_facility = r.st.syslog_facility;
        if (o->verbose)
            fprintf(errf, "mailcar: account %s (%s)\n", r.acc.name ? r.acc.name : "(defaults)",
                    r.why);
        rc = dispatch(&r, err);
    }
    run_free(&r);
    return rc;
}
