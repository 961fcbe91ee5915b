/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Configuration import from msmtp, ssmtp, dma and nullmailer; see import.h.
 * Each converter collects what the source says, then writes one account.
 * The keys and defaults of the sources are those of their manuals: msmtp(1),
 * ssmtp.conf(5), dma(8), nullmailer-send(8).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "import.h"
#include "util.h"

/* ---- output ------------------------------------------------------------- */

struct out {
    struct buf *b;
    int r;        /* -1 once the buffer refused an append */
};

static void emit(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct out *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (buf_vprintf(o->b, fmt, ap) < 0)
        o->r = -1;
    va_end(ap);
}

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return true;
    return false;
}

/* A value is written so that mailcar's parser reads it back unchanged. */
static void put(struct out *o, const char *key, const char *value)
{
    size_t n = strlen(value);
    bool quote;

    if (n == 0)
        return;   /* an empty value means the default, in every source */
    quote = value[0] == ' ' || value[0] == '\t' || value[n - 1] == ' ' || value[n - 1] == '\t' ||
            (n >= 2 && value[0] == '"' && value[n - 1] == '"');
    if (has_ctl(value)) {
        emit(o, "# '%s' not carried over: control character in its value\n", key);
        return;
    }
    emit(o, quote ? "%s \"%s\"\n" : "%s %s\n", key, value);
}

/* Comments quote the source; its control characters must not break the lines. */
static void sanitize(struct buf *b, size_t from)
{
    for (size_t i = from; i < b->len; i++) {
        unsigned char ch = (unsigned char)b->data[i];
        if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f)
            b->data[i] = '?';
    }
}

/* ---- lines -------------------------------------------------------------- */

struct lines {
    const char *p;
    unsigned no;
    char *cur;
};

/* The next line, trimmed of blanks and CR; NULL at the end.  Owned by it. */
static char *next_line(struct lines *l)
{
    const char *nl, *s, *e;

    free(l->cur);
    l->cur = NULL;
    if (l->p == NULL || *l->p == '\0')
        return NULL;
    nl = strchr(l->p, '\n');
    s = l->p;
    e = nl ? nl : s + strlen(s);
    l->p = nl ? nl + 1 : e;
    l->no++;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    l->cur = mc_strndup(s, (size_t)(e - s));
    return l->cur;
}

static char *trim(char *s)
{
    size_t n;

    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static bool yes(const char *v)
{
    return mc_streq_ci(v, "yes") || mc_streq_ci(v, "true") || mc_streq_ci(v, "on") ||
           strcmp(v, "1") == 0;
}

/* The first non-empty, non-comment line of a one-line control file. */
static char *first_word_line(const char *text)
{
    struct lines l = {.p = text};
    char *s, *r = NULL;

    while ((s = next_line(&l)) != NULL)
        if (*s && *s != '#') {
            r = mc_strdup(s);
            break;
        }
    free(l.cur);
    return r;
}

/* ---- names -------------------------------------------------------------- */

const char *import_format_name(enum import_format f)
{
    switch (f) {
    case IMPORT_MSMTP: return "msmtp";
    case IMPORT_SSMTP: return "ssmtp";
    case IMPORT_DMA: return "dma";
    case IMPORT_NULLMAILER: return "nullmailer";
    case IMPORT_UNKNOWN: break;
    }
    return "unknown";
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');

    return s ? s + 1 : path;
}

static bool word_is(const char *line, const char *word, bool ci)
{
    size_t n = strlen(word);

    if ((ci ? strncasecmp(line, word, n) : strncmp(line, word, n)) != 0)
        return false;
    return line[n] == '\0' || line[n] == ' ' || line[n] == '\t' || line[n] == '=';
}

enum import_format import_detect(const char *name, const char *text)
{
    const char *b = name ? base_name(name) : "";
    struct lines l = {.p = text};
    int msmtp = 0, ssmtp = 0, dma = 0, nullm = 0;
    char *s;

    if (strstr(b, "msmtprc"))
        return IMPORT_MSMTP;
    if (strcmp(b, "ssmtp.conf") == 0)
        return IMPORT_SSMTP;
    if (strcmp(b, "dma.conf") == 0)
        return IMPORT_DMA;
    if (strcmp(b, "remotes") == 0)
        return IMPORT_NULLMAILER;
    while ((s = next_line(&l)) != NULL) {
        if (*s == '\0' || *s == '#')
            continue;
        if (word_is(s, "account", false) || word_is(s, "defaults", false) ||
            word_is(s, "host", false) || word_is(s, "tls_starttls", false))
            msmtp++;
        else if (word_is(s, "mailhub", true) || word_is(s, "AuthUser", true) ||
                 word_is(s, "UseSTARTTLS", true) || word_is(s, "RewriteDomain", true))
            ssmtp++;
        else if (word_is(s, "SMARTHOST", false) || word_is(s, "SECURETRANS", false) ||
                 word_is(s, "AUTHPATH", false) || word_is(s, "MASQUERADE", false))
            dma++;
        else if (strstr(s, " smtp") || strstr(s, " qmqp"))
            nullm++;
    }
    free(l.cur);
    if (msmtp > 0 && msmtp >= ssmtp && msmtp >= dma)
        return IMPORT_MSMTP;
    if (ssmtp > 0 && ssmtp >= dma)
        return IMPORT_SSMTP;
    if (dma > 0)
        return IMPORT_DMA;
    if (nullm > 0)
        return IMPORT_NULLMAILER;
    return IMPORT_UNKNOWN;
}

/* ---- the account every converter fills ---------------------------------- */

struct acct {
    char *host, *port, *user, *password, *auth;
    char *from, *domain, *qualify, *source_ip;
    char *trust, *cert, *key, *fingerprint;
    bool tls, starttls, certcheck_off, allow_from_override;
};

static void acct_free(struct acct *a)
{
    free(a->host);
    free(a->port);
    free(a->user);
    mc_free_secret(a->password);
    free(a->auth);
    free(a->from);
    free(a->domain);
    free(a->qualify);
    free(a->source_ip);
    free(a->trust);
    free(a->cert);
    free(a->key);
    free(a->fingerprint);
    memset(a, 0, sizeof *a);
}

static void set(char **field, const char *value)
{
    if (*field && *field != value)
        mc_wipe(*field, strlen(*field));
    free(*field);
    *field = mc_strdup(value);
}

/*
 * Write one account.  `src_port` is the port the source used when none was
 * given; it is written out because mailcar's default (587) differs.
 */
static void write_account(struct out *o, const char *name, struct acct *a, const char *src_port,
                          const char *src)
{
    emit(o, "account %s\n", name);
    if (a->host)
        put(o, "host", a->host);
    else
        emit(o, "# no server in the %s configuration: add 'host NAME'\n", src);
    put(o, "port", a->port ? a->port : src_port);
    if (!a->tls && a->user) {
        emit(o, "# %s sent the password without TLS; mailcar never does, so TLS stays on:\n"
                "# check that the server offers STARTTLS with 'mailcar --check'\n", src);
        a->tls = a->starttls = true;
    }
    if (!a->tls) {
        emit(o, "# %s spoke plain SMTP to this server; so does this account\n", src);
        put(o, "tls", "off");
    } else {
        put(o, "tls", "on");
        put(o, "tls_starttls", a->starttls ? "on" : "off");
        if (a->certcheck_off) {
            emit(o, "# %s did not verify the server's certificate; pin it instead with\n"
                    "# tls_fingerprint (mailcar -S prints it)\n", src);
            put(o, "tls_certcheck", "off");
        }
    }
    if (a->trust)
        put(o, "tls_trust_file", a->trust);
    if (a->cert)
        put(o, "tls_cert_file", a->cert);
    if (a->key)
        put(o, "tls_key_file", a->key);
    if (a->fingerprint)
        put(o, "tls_fingerprint", a->fingerprint);
    if (a->user) {
        put(o, "auth", a->auth ? a->auth : "on");
        put(o, "user", a->user);
    } else {
        put(o, "auth", "off");
    }
    if (a->password) {
        emit(o, "# keep this file private: chmod 600 (or use passwordeval)\n");
        put(o, "password", a->password);
    }
    if (a->from)
        put(o, "from", a->from);
    if (a->allow_from_override)
        put(o, "allow_from_override", "on");
    if (a->domain)
        put(o, "domain", a->domain);
    if (a->qualify)
        put(o, "qualify_domain", a->qualify);
    if (a->source_ip)
        put(o, "source_ip", a->source_ip);
}

static void header(struct out *o, const struct import_input *in, enum import_format f)
{
    emit(o, "# mailcar configuration imported from %s (%s) by mailcar --import.\n"
            "# Review it, save it as ~/.mailcarrc or /etc/mailcar.conf, and run\n"
            "# 'mailcar --check' before relying on it.\n\n",
         in->name ? in->name : "(input)", import_format_name(f));
}

/* ---- msmtp -------------------------------------------------------------- */

/* Keys mailcar reads but cannot honour yet (settings.c refuses them). */
static const char *const msmtp_unsupported[] = {
    "protocol", "socket", "proxy_host", "proxy_port", "proxy_user", "fallback_account",
    "tls_crl_file", "undisclosed_recipients", "aliases", "rewrite_from",
};

static bool unsupported(const char *key, const char *value)
{
    if (mc_streq_ci(value, "off") || (strcmp(key, "protocol") == 0 && mc_streq_ci(value, "smtp")))
        return false;
    for (size_t i = 0; i < sizeof msmtp_unsupported / sizeof msmtp_unsupported[0]; i++)
        if (strcmp(msmtp_unsupported[i], key) == 0)
            return true;
    return false;
}

static int import_msmtp(struct out *o, const struct import_input *in)
{
    struct lines l = {.p = in->text};
    bool sets_tls = false, sets_port = false;
    unsigned users = 0, secrets = 0;
    char *s;

    while ((s = next_line(&l)) != NULL) {
        sets_tls |= word_is(s, "tls", false);
        sets_port |= word_is(s, "port", false);
        users += word_is(s, "user", false);
        secrets += word_is(s, "password", false) || word_is(s, "passwordeval", false) ||
                   word_is(s, "password_file", false);
    }
    if (!sets_tls || !sets_port)
        emit(o, "# msmtp's defaults differ: it uses port 25 and no TLS unless told; mailcar\n"
                "# uses port 587 (465 with tls_starttls off) and requires STARTTLS.  This\n"
                "# file leaves %s to the default: for a relay without TLS add 'tls off'\n"
                "# and 'port 25' to its account.\n\n",
             !sets_tls && !sets_port ? "tls and port" : !sets_tls ? "tls" : "port");
    if (users > secrets)
        emit(o, "# msmtp can take a password from the system keyring; mailcar cannot.  An\n"
                "# account with 'user' but no password source below needs 'passwordeval'\n"
                "# (e.g. \"secret-tool lookup host HOST service smtp user USER\"), or\n"
                "# mailcar will ask on the terminal.\n\n");
    l = (struct lines){.p = in->text};
    while ((s = next_line(&l)) != NULL) {
        char key[64];
        size_t kn = strcspn(s, " \t");
        const char *val = s + kn + strspn(s + kn, " \t");

        if (*s == '\0' || *s == '#' || word_is(s, "account", false) ||
            word_is(s, "defaults", false) || word_is(s, "eval", false)) {
            emit(o, "%s\n", s);
            continue;
        }
        snprintf(key, sizeof key, "%.*s", (int)(kn < sizeof key ? kn : sizeof key - 1), s);
        if (has_ctl(s))
            emit(o, "# line %u not carried over: control character\n", l.no);
        else if (conf_key_find(key) == NULL)
            emit(o, "# not carried over (mailcar has no '%s'): %s\n", key, s);
        else if (unsupported(key, val))
            emit(o, "# not carried over ('%s' is not supported by mailcar yet): %s\n", key, s);
        else if (strcmp(key, "from") == 0 && strchr(val, '%'))
            emit(o, "# not carried over (msmtp expands %%U %%H %%C %%M in 'from'; mailcar does "
                    "not, and sends as USER@domain without 'from'): %s\n", s);
        else
            emit(o, "%s\n", s);
    }
    free(l.cur);
    return 0;
}

/* ---- ssmtp -------------------------------------------------------------- */

/* "host", "host:port", "[v6]:port"; ssmtp's default port is 25. */
static void split_hostport(struct acct *a, const char *v)
{
    const char *colon = strrchr(v, ':');

    free(a->host);
    a->host = NULL;
    if (v[0] == '[' && strchr(v, ']')) {
        const char *close = strchr(v, ']');
        a->host = mc_strndup(v + 1, (size_t)(close - v - 1));
        if (close[1] == ':')
            set(&a->port, close + 2);
        return;
    }
    if (colon && strchr(v, ':') == colon) {
        a->host = mc_strndup(v, (size_t)(colon - v));
        set(&a->port, colon + 1);
    } else {
        set(&a->host, v);
    }
}

static void ssmtp_revaliases(struct out *o, const struct import_input *in)
{
    struct lines l = {.p = in->aux};
    char *s;
    bool any = false;

    while ((s = next_line(&l)) != NULL) {
        if (*s == '\0' || *s == '#' || has_ctl(s))
            continue;
        if (!any)
            emit(o, "\n# From %s: mailcar does not pick the sender by local user.  Send as\n"
                    "# these with -f ADDRESS (allow_from_override is on), or give each an\n"
                    "# account with its 'from' and select it with -a:\n",
                 in->aux_name ? in->aux_name : "revaliases");
        any = true;
        emit(o, "#   %s\n", s);
    }
    free(l.cur);
}

static int import_ssmtp(struct out *o, const struct import_input *in)
{
    struct lines l = {.p = in->text};
    struct acct a = {0};
    char *s, *hostname = NULL;

    while ((s = next_line(&l)) != NULL) {
        char *eq = strchr(s, '='), *k, *v;

        if (*s == '\0' || *s == '#')
            continue;
        if (eq == NULL || has_ctl(s)) {
            emit(o, "# line %u not understood: %s\n", l.no, has_ctl(s) ? "(control character)" : s);
            continue;
        }
        *eq = '\0';
        k = trim(s);
        v = trim(eq + 1);
        if (mc_streq_ci(k, "mailhub"))
            split_hostport(&a, v);
        else if (mc_streq_ci(k, "UseTLS"))
            a.tls = a.tls || yes(v);
        else if (mc_streq_ci(k, "UseSTARTTLS") && yes(v))
            a.tls = a.starttls = true;   /* as in ssmtp.c: STARTTLS implies TLS */
        else if (mc_streq_ci(k, "AuthUser") && *v)
            set(&a.user, v);
        else if (mc_streq_ci(k, "AuthPass") && *v)
            set(&a.password, v);
        else if (mc_streq_ci(k, "AuthMethod") && mc_streq_ci(v, "cram-md5"))
            set(&a.auth, "cram-md5");
        else if (mc_streq_ci(k, "RewriteDomain") && *v)
            set(&a.domain, v);
        else if (mc_streq_ci(k, "Hostname") && *v) {
            free(hostname);
            hostname = mc_strdup(v);
        } else if (mc_streq_ci(k, "FromLineOverride"))
            a.allow_from_override = yes(v);
        else if (mc_streq_ci(k, "TLS_CA_File") && *v)
            set(&a.trust, v);
        else if (mc_streq_ci(k, "TLSCert") && *v)
            set(&a.cert, v);
        else if (mc_streq_ci(k, "TLSKey") && *v)
            set(&a.key, v);
        else if (mc_streq_ci(k, "Root"))
            emit(o, "# Root=%s: mailcar does not redirect mail for system users; give cron\n"
                    "# a full address (MAILTO) or set qualify_domain\n", v);
        else if (mc_streq_ci(k, "Debug"))
            emit(o, "# Debug=%s: use mailcar -v for the SMTP transcript\n", v);
        else if (mc_streq_ci(k, "AuthPass") || mc_streq_ci(k, "AuthUser") ||
                 mc_streq_ci(k, "AuthMethod") || mc_streq_ci(k, "UseSTARTTLS"))
            ;   /* empty or default values */
        else
            emit(o, "# not carried over (no mailcar equivalent): %s=%s\n", k, v);
    }
    free(l.cur);
    if (a.cert && a.key == NULL)
        set(&a.key, a.cert);   /* ssmtp reads the key from the certificate file */
    if (hostname && a.domain == NULL)
        a.domain = hostname;
    else if (hostname) {
        emit(o, "# Hostname=%s: mailcar uses one name, 'domain' (from RewriteDomain)\n", hostname);
        free(hostname);
    }
    if (a.tls && !a.starttls && a.port == NULL)
        emit(o, "# ssmtp used port 25 for UseTLS too; mailcar keeps it\n");
    write_account(o, "default", &a, "25", "ssmtp");
    acct_free(&a);
    if (in->aux)
        ssmtp_revaliases(o, in);
    return 0;
}

/* ---- dma ---------------------------------------------------------------- */

char *import_dma_authpath(const char *text)
{
    struct lines l = {.p = text};
    char *s, *r = NULL;

    while ((s = next_line(&l)) != NULL)
        if (word_is(s, "AUTHPATH", false)) {
            free(r);
            r = mc_strdup(trim(s + 8));
        }
    free(l.cur);
    return r;
}

/* auth.conf: "user|host:password"; the entry for the smarthost is used. */
static void dma_auth(struct out *o, const struct import_input *in, struct acct *a)
{
    struct lines l = {.p = in->aux};
    char *s;

    while ((s = next_line(&l)) != NULL) {
        char *bar = strchr(s, '|'), *colon = bar ? strchr(bar, ':') : NULL;

        if (*s == '\0' || *s == '#')
            continue;
        if (bar == NULL || colon == NULL || has_ctl(s)) {
            emit(o, "# %s line %u not understood\n", in->aux_name ? in->aux_name : "auth.conf",
                 l.no);
            continue;
        }
        *bar = *colon = '\0';
        if (a->host && mc_streq_ci(bar + 1, a->host) && a->user == NULL) {
            set(&a->user, s);
            set(&a->password, colon + 1);
        } else {
            emit(o, "# %s: the entry for '%s' (user %s) is not for the smarthost\n",
                 in->aux_name ? in->aux_name : "auth.conf", bar + 1, s);
        }
        mc_wipe(s, strlen(s));
        mc_wipe(colon + 1, strlen(colon + 1));
    }
    free(l.cur);
}

static int import_dma(struct out *o, const struct import_input *in)
{
    struct lines l = {.p = in->text};
    struct acct a = {0};
    bool secure = false, opportunistic = false;
    char *s;

    while ((s = next_line(&l)) != NULL) {
        size_t kn = strcspn(s, " \t");
        char *v = trim(s + kn);

        if (*s == '\0' || *s == '#')
            continue;
        s[kn] = '\0';
        if (has_ctl(v))
            emit(o, "# line %u not carried over: control character\n", l.no);
        else if (strcmp(s, "SMARTHOST") == 0 && *v)
            set(&a.host, v);
        else if (strcmp(s, "PORT") == 0 && *v)
            set(&a.port, v);
        else if (strcmp(s, "SECURETRANSFER") == 0 || strcmp(s, "SECURETRANS") == 0)
            secure = true;   /* dma's code reads SECURETRANSFER; dma(8) says SECURETRANS */
        else if (strcmp(s, "STARTTLS") == 0)
            a.starttls = true;
        else if (strcmp(s, "OPPORTUNISTIC_TLS") == 0)
            opportunistic = true;
        else if (strcmp(s, "FINGERPRINT") == 0 && *v)
            set(&a.fingerprint, v);
        else if (strcmp(s, "CERTFILE") == 0 && *v) {
            set(&a.cert, v);
            set(&a.key, v);   /* dma reads certificate and key from one file */
        } else if (strcmp(s, "MAILNAME") == 0 && *v) {
            if (v[0] == '/')
                emit(o, "# MAILNAME %s: mailcar reads /etc/mailname itself when 'domain' is "
                        "unset\n", v);
            else
                set(&a.domain, v);
        } else if (strcmp(s, "MASQUERADE") == 0 && *v) {
            size_t n = strlen(v);
            if (strchr(v, '@') && v[n - 1] != '@')
                set(&a.from, v);
            else
                emit(o, "# MASQUERADE %s: mailcar masquerades only with a full address; set "
                        "'from'\n", v);
        } else if (strcmp(s, "INSECURE") == 0)
            emit(o, "# INSECURE: mailcar never sends a password without TLS\n");
        else if (strcmp(s, "AUTHPATH") == 0 || strcmp(s, "SECURE") == 0)
            ;
        else if (strcmp(s, "NULLCLIENT") == 0 || strcmp(s, "ALIASES") == 0 ||
                 strcmp(s, "SPOOLDIR") == 0 || strcmp(s, "DEFER") == 0 ||
                 strcmp(s, "FULLBOUNCE") == 0)
            emit(o, "# %s%s%s: mailcar has no local delivery, aliases or spool\n", s,
                 *v ? " " : "", v);
        else
            emit(o, "# not carried over (no mailcar equivalent): %s%s%s\n", s, *v ? " " : "", v);
    }
    free(l.cur);
    a.tls = secure;
    if (!secure && a.starttls)
        emit(o, "# STARTTLS without SECURETRANS had no effect in dma\n");
    a.starttls = secure && a.starttls;
    if (opportunistic && secure)
        emit(o, "# OPPORTUNISTIC_TLS: mailcar never falls back to clear text; STARTTLS is "
                "required\n");
    if (a.host == NULL)
        emit(o, "# dma without SMARTHOST delivers to each domain's MX; mailcar only submits\n"
                "# to one server\n");
    if (in->aux)
        dma_auth(o, in, &a);
    write_account(o, "default", &a, "25", "dma");
    acct_free(&a);
    return 0;
}

/* ---- nullmailer --------------------------------------------------------- */

/* Split a remotes line by shell quoting ('...', "...", \x). */
static void shell_words(const char *s, struct strlist *w)
{
    struct buf b;
    bool in_word = false;
    char q = 0;

    buf_init(&b, BUF_NOLIMIT);
    for (; *s; s++) {
        if (q == 0 && (*s == ' ' || *s == '\t')) {
            if (in_word)
                strlist_add(w, b.data);
            buf_reset(&b);
            in_word = false;
            continue;
        }
        in_word = true;
        if (q == 0 && (*s == '\'' || *s == '"'))
            q = *s;
        else if (q && *s == q)
            q = 0;
        else if (*s == '\\' && q != '\'' && s[1])
            buf_addch(&b, *++s);
        else
            buf_addch(&b, *s);
    }
    if (in_word)
        strlist_add(w, b.data);
    buf_wipe(&b);
}

static void nm_option(struct out *o, struct acct *a, const char *opt)
{
    const char *eq = strchr(opt, '=');
    const char *v = eq ? eq + 1 : "";
    size_t kn = eq ? (size_t)(eq - opt) : strlen(opt);

    if (strncmp(opt, "--", 2) == 0) {
        opt += 2;
        kn -= 2;
    }
#define IS(name) (kn == strlen(name) && strncmp(opt, name, kn) == 0)
    if (IS("port"))
        set(&a->port, v);
    else if (IS("user"))
        set(&a->user, v);
    else if (IS("pass"))
        set(&a->password, v);
    else if (IS("source"))
        set(&a->source_ip, v);
    else if (IS("auth-login"))
        set(&a->auth, "login");
    else if (IS("tls") || IS("ssl"))
        a->tls = true, a->starttls = false;
    else if (IS("starttls"))
        a->tls = a->starttls = true;
    else if (IS("insecure"))
        a->certcheck_off = true;
    else if (IS("x509cafile"))
        set(&a->trust, v);
    else if (IS("x509certfile")) {
        set(&a->cert, v);
        if (a->key == NULL)
            set(&a->key, v);
    } else if (IS("x509keyfile"))
        set(&a->key, v);
    else
        emit(o, "# remote option not carried over: %.*s\n", (int)kn, opt);
#undef IS
}

static int import_nullmailer(struct out *o, const struct import_input *in, struct mc_err *err)
{
    struct lines l = {.p = in->text};
    char *me = in->me ? first_word_line(in->me) : NULL;
    char *dd = in->defaultdomain ? first_word_line(in->defaultdomain) : NULL;
    char *dh = in->defaulthost ? first_word_line(in->defaulthost) : NULL;
    char *admin = in->adminaddr ? first_word_line(in->adminaddr) : NULL;
    char *domain = NULL;
    unsigned n = 0;
    char *s;

    if (me && dd && strchr(me, '.') == NULL) {
        size_t len = strlen(me) + strlen(dd) + 2;
        domain = mc_calloc(1, len);
        snprintf(domain, len, "%s.%s", me, dd);
    } else if (me) {
        domain = mc_strdup(me);
    }
    if (admin)
        emit(o, "# adminaddr %s: mailcar does not redirect mail for local users; give cron\n"
                "# a full address (MAILTO)\n", admin);
    while ((s = next_line(&l)) != NULL) {
        struct strlist w = {0};
        struct acct a = {0};
        char name[32];

        if (*s == '\0' || *s == '#')
            continue;
        if (has_ctl(s)) {
            emit(o, "# remotes line %u not carried over: control character\n", l.no);
            continue;
        }
        shell_words(s, &w);
        if (w.n >= 2 && strcmp(w.v[1], "smtp") != 0) {
            emit(o, "# remotes line %u not carried over: mailcar speaks SMTP, not %s\n", l.no,
                 w.v[1]);
            strlist_free(&w);
            continue;
        }
        set(&a.host, w.v[0]);
        for (size_t i = 2; i < w.n; i++)
            nm_option(o, &a, w.v[i]);
        if (domain)
            set(&a.domain, domain);
        if (dh || me)
            set(&a.qualify, dh ? dh : domain);
        if (n == 1)
            emit(o, "\n# nullmailer tried the next remote when one failed; mailcar does not.\n"
                    "# Use the others with -a NAME.\n");
        if (n > 0)
            emit(o, "\n");
        snprintf(name, sizeof name, n == 0 ? "default" : "remote%u", n + 1);
        write_account(o, name, &a, a.tls && !a.starttls ? "465" : "25", "nullmailer");
        acct_free(&a);
        for (size_t i = 0; i < w.n; i++)
            mc_wipe(w.v[i], strlen(w.v[i]));
        strlist_free(&w);
        n++;
    }
    free(l.cur);
    free(me);
    free(dd);
    free(dh);
    free(admin);
    free(domain);
    if (n == 0)
        return mc_err_set(err, MC_CONFIG, "%s: no remote server listed",
                          in->name ? in->name : "remotes");
    return 0;
}

/* ---- entry points ------------------------------------------------------- */

int import_convert(enum import_format f, const struct import_input *in, struct buf *out,
                   struct mc_err *err)
{
    struct out o = {.b = out};
    size_t start = out->len;
    int r = 0;

    if (in->text == NULL)
        return mc_err_set(err, MC_CONFIG, "%s: nothing to import", in->name ? in->name : "input");
    header(&o, in, f);
    switch (f) {
    case IMPORT_MSMTP: r = import_msmtp(&o, in); break;
    case IMPORT_SSMTP: r = import_ssmtp(&o, in); break;
    case IMPORT_DMA: r = import_dma(&o, in); break;
    case IMPORT_NULLMAILER: r = import_nullmailer(&o, in, err); break;
    case IMPORT_UNKNOWN:
        return mc_err_set(err, MC_CONFIG, "%s: not an msmtp, ssmtp, dma or nullmailer "
                          "configuration", in->name ? in->name : "input");
    }
    if (r == 0 && o.r < 0)
        return mc_err_set(err, MC_OSERR, "the configuration does not fit in the output buffer");
    sanitize(out, start);
    return r;
}

/* Read a whole file; *text NULL (and 0) when it does not exist and missing_ok. */
static int read_file(const char *path, bool missing_ok, char **text, struct mc_err *err)
{
    struct buf b;
    char chunk[8192];
    ssize_t n;
    int fd, r = 0;

    *text = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT && missing_ok)
            return 0;
        return mc_err_set(err, MC_IOERR, "cannot read '%s': %s", path, strerror(errno));
    }
    buf_init(&b, IMPORT_MAX_SIZE);
    while ((n = read(fd, chunk, sizeof chunk)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = mc_err_set(err, MC_IOERR, "cannot read '%s': %s", path, strerror(errno));
            break;
        }
        if (buf_add(&b, chunk, (size_t)n) < 0) {
            r = mc_err_set(err, MC_CONFIG, "'%s' is larger than %u KiB", path,
                           IMPORT_MAX_SIZE >> 10);
            break;
        }
    }
    close(fd);
    mc_wipe(chunk, sizeof chunk);
    if (r == 0 && memchr(b.data, '\0', b.len))
        r = mc_err_set(err, MC_CONFIG, "'%s' holds a NUL byte: not a configuration file", path);
    if (r == 0)
        *text = buf_detach(&b, NULL);
    buf_wipe(&b);
    return r;
}

static char *beside(const char *path, const char *name)
{
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) + 1 : 0;
    char *p = mc_calloc(1, dl + strlen(name) + 1);

    memcpy(p, path, dl);
    memcpy(p + dl, name, strlen(name) + 1);
    return p;
}

static int read_nullmailer(const char *dir, struct import_input *in, char **texts,
                           struct mc_err *err)
{
    static const char *const names[] = {"remotes", "me", "defaultdomain", "defaulthost",
                                        "adminaddr"};
    const char **slots[] = {&in->text, &in->me, &in->defaultdomain, &in->defaulthost,
                            &in->adminaddr};

    for (size_t i = 0; i < 5; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *p = mc_calloc(1, len);
        int r;

        snprintf(p, len, "%s/%s", dir, names[i]);
        r = read_file(p, i > 0, &texts[i], err);
        free(p);
        if (r < 0)
            return -1;
        *slots[i] = texts[i];
    }
    return 0;
}

int import_path(const char *path, struct buf *out, struct mc_err *err)
{
    struct import_input in = {.name = path};
    enum import_format f;
    char *texts[6] = {0}, *auxpath = NULL;
    struct stat st;
    int r;

    if (stat(path, &st) < 0)
        return mc_err_set(err, MC_IOERR, "cannot read '%s': %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        f = IMPORT_NULLMAILER;
        r = read_nullmailer(path, &in, texts, err);
    } else if ((r = read_file(path, false, &texts[0], err)) == 0) {
        in.text = texts[0];
        f = import_detect(path, in.text);
        if (f == IMPORT_NULLMAILER && strcmp(base_name(path), "remotes") == 0) {
            char *dir = mc_strndup(path, (size_t)(base_name(path) - path));
            free(texts[0]);
            texts[0] = NULL;
            r = read_nullmailer(*dir ? dir : ".", &in, texts, err);
            free(dir);
        } else if (f == IMPORT_SSMTP) {
            auxpath = beside(path, "revaliases");
        } else if (f == IMPORT_DMA) {
            auxpath = import_dma_authpath(in.text);
            if (auxpath == NULL || *auxpath == '\0') {
                free(auxpath);
                auxpath = beside(path, "auth.conf");
            }
        }
        if (r == 0 && auxpath) {
            r = read_file(auxpath, true, &texts[5], err);
            in.aux = texts[5];
            in.aux_name = auxpath;
        }
    }
    if (r == 0)
        r = import_convert(f, &in, out, err);
    for (size_t i = 0; i < 6; i++)
        mc_free_secret(texts[i]);
    free(auxpath);
    return r;
}

int import_print(const char *path, FILE *out, struct mc_err *err)
{
    struct buf b;
    int r;

    buf_init(&b, BUF_NOLIMIT);
    r = import_path(path, &b, err);
    if (r == 0 && (fwrite(b.data, 1, b.len, out) != b.len || fflush(out) != 0))
        r = mc_err_set(err, MC_IOERR, "writing the configuration: %s", strerror(errno));
    buf_wipe(&b);
    return r;
}
