/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The msmtp-syntax configuration: the table of every key, the parser, account
 * selection and typed access to values.  The rules, and where they come from,
 * are in conf.h.  Each file is parsed into a scratch conf and merged into the
 * caller's only when the whole file was read without error.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"

extern char **environ;

/* ---- the key table ------------------------------------------------------ */

#define S CONF_STRING
#define P CONF_PATH
#define B CONF_BOOL
#define I CONF_INT
#define T CONF_TIME
#define E CONF_ENUM
#define OLD (CONF_LEGACY | CONF_NOARGV)

const struct conf_key conf_keys[] = {
    /* Where to connect. */
    {"host", S, NULL, CONF_REQARG, "SMTP server host name or address"},
    {"port", I, NULL, CONF_REQARG, "server port (default 587, 465 with tls_starttls off)"},
    {"protocol", E, "smtp lmtp", CONF_REQARG, "protocol to speak: smtp or lmtp"},
    {"socket", P, NULL, 0, "Unix domain socket to connect to instead of host and port"},
    {"source_ip", S, NULL, 0, "local address to bind the connection to"},
    {"address_family", E, "any ipv4 ipv6", 0, "which addresses of host to try"},
    {"proxy_host", S, NULL, 0, "SOCKS5 proxy host"},
    {"proxy_port", I, NULL, 0, "SOCKS5 proxy port (default 1080)"},
    {"proxy_user", S, NULL, 0, "user name for the SOCKS5 proxy (a proxy on this machine only)"},
    {"proxy_password", S, NULL, CONF_SECRET | CONF_NOARGV, "password for the SOCKS5 proxy"},
    {"domain", S, NULL, 0, "EHLO name and Message-ID domain (default /etc/mailname, else the FQDN)"},
    {"fallback_account", S, NULL, 0, "account to try when this one fails temporarily"},
    /* Time limits. */
    {"timeout", T, NULL, CONF_REQARG, "time limit for each network step (off, N, Ns, Nm, Nh)"},
    {"connect_timeout", T, NULL, CONF_REQARG, "time limit for each TCP connection attempt (default 30s)"},
    {"deadline", T, NULL, 0, "time limit for the whole delivery"},
    /* Authentication. */
    {"auth", S, NULL, 0, "authenticate: on, off, or a SASL mechanism name"},
    {"user", S, NULL, 0, "user name for authentication"},
    {"password", S, NULL, CONF_SECRET | CONF_NOARGV,
     "password for authentication (the file must be chmod 600)"},
    {"passwordeval", S, NULL, 0, "command whose first output line is the password"},
    {"password_file", P, NULL, 0, "file whose first line is the password"},
    {"ntlmdomain", S, NULL, 0, "domain for NTLM authentication (obsolete)"},
    /* TLS. */
    {"tls", B, NULL, 0, "use TLS"},
    {"tls_starttls", B, NULL, 0, "start TLS with STARTTLS (on) or connect with TLS (off)"},
    {"tls_certcheck", B, NULL, 0, "verify the server certificate"},
    {"tls_trust_file", P, NULL, 0, "file of trusted CA certificates, or 'system'"},
    {"tls_crl_file", P, NULL, 0, "certificate revocation list file"},
    {"tls_fingerprint", S, NULL, 0, "fingerprint of the one server certificate to trust"},
    {"tls_key_file", P, NULL, 0, "private key of the client certificate"},
    {"tls_cert_file", P, NULL, 0, "client certificate to present"},
    {"tls_host_override", S, NULL, 0, "host name to check the certificate against"},
    {"tls_min_version", E, "tls1.2 tls1.3", 0, "lowest TLS version to accept"},
    {"tls_ciphers", S, NULL, 0, "OpenSSL cipher list for TLS 1.2 and below"},
    {"tls_priorities", S, NULL, 0, "TLS priority string (GnuTLS syntax, for msmtp files)"},
    {"tls_min_dh_prime_bits", I, NULL, 0, "smallest Diffie-Hellman prime to accept (obsolete)"},
    {"tls_session_cache", P, NULL, 0, "file that keeps TLS sessions for resumption"},
    {"tls_dane", B, NULL, 0, "check the certificate against DNSSEC-signed TLSA records"},
    /* Envelope and headers. */
    {"from", S, NULL, 0, "envelope sender; a glob here selects the account by -f"},
    {"from_full_name", S, NULL, 0, "display name for a From header that mailcar writes"},
    {"allow_from_override", B, NULL, 0, "let -f replace the from address"},
    {"read_envelope_from", B, NULL, 0, "take the envelope sender from the From header"},
    {"read_recipients", B, NULL, 0, "take recipients from To, Cc and Bcc, like -t"},
    {"rewrite_from", B, NULL, 0, "make the From header's address the envelope sender"},
    {"qualify_domain", S, NULL, 0, "domain added to addresses without one"},
    {"auto_from", B, NULL, 0, "make the envelope sender from user and maildomain (obsolete)"},
    {"maildomain", S, NULL, 0, "domain for auto_from (obsolete)"},
    {"set_from_header", E, "auto on off", 0, "write a From header: auto (if missing), on, off"},
    {"set_date_header", E, "auto off", 0, "add a Date header when missing"},
    {"set_msgid_header", E, "auto off", 0, "add a Message-ID header when missing"},
    {"set_to_header", E, "off on", 0, "add 'To: undisclosed-recipients:;' when no To or Cc"},
    {"remove_bcc_headers", B, NULL, 0, "remove Bcc headers before sending"},
    {"undisclosed_recipients", B, NULL, 0, "replace To, Cc and Bcc with undisclosed-recipients"},
    {"aliases", P, NULL, 0, "aliases file for recipients without a domain"},
    /* Delivery status notifications. */
    {"dsn_notify", S, NULL, CONF_REQARG, "off, never, or a list of failure,delay,success"},
    {"dsn_return", E, "off headers full", CONF_REQARG, "what a DSN returns: off, headers, full"},
    {"dsn_required", B, NULL, 0, "fail when dsn_* is set but the server lacks DSN"},
    {"partial_delivery", B, NULL, 0, "send to the recipients accepted when others are refused"},
    /* Queue. */
    {"queue", B, NULL, 0, "queue the message when delivery fails temporarily"},
    {"queue_dir", P, NULL, 0, "directory of the queue"},
    {"queue_lifetime", T, NULL, 0, "how long a queued message is retried (default 5d)"},
    {"queue_retry", T, NULL, 0, "wait before the first retry, doubled each time (default 5m)"},
    {"queue_retry_max", T, NULL, 0, "longest wait between retries (default 4h)"},
    /* Logging. */
    {"logfile", P, NULL, 0, "log file, or '-' for standard output"},
    {"logfile_time_format", S, NULL, 0, "strftime format of log file time stamps"},
    {"syslog", S, NULL, 0, "syslog: on, off, or a facility (LOG_MAIL, LOG_LOCAL0...)"},
    /* Old msmtp names. */
    {"add_missing_from_header", B, NULL, OLD, "old name: set_from_header auto|off"},
    {"add_missing_date_header", B, NULL, OLD, "old name: set_date_header auto|off"},
    {"tls_nocertcheck", B, NULL, OLD, "old name: tls_certcheck off"},
    {"tls_nostarttls", B, NULL, OLD, "old name: tls_starttls off"},
    {"keepbcc", B, NULL, OLD, "old name: remove_bcc_headers off"},
    {"tls_force_sslv3", B, NULL, OLD, "ignored: SSLv3 is never used"},
};

const size_t conf_nkeys = sizeof conf_keys / sizeof conf_keys[0];

#undef S
#undef P
#undef B
#undef I
#undef T
#undef E
#undef OLD

/* How an old msmtp name is stored: under `key`, as `if_on` or `if_off`. */
static const struct legacy {
    const char *name, *key, *if_on, *if_off;
} legacy_keys[] = {
    {"add_missing_from_header", "set_from_header", "auto", "off"},
    {"add_missing_date_header", "set_date_header", "auto", "off"},
    {"tls_nocertcheck", "tls_certcheck", "off", "on"},
    {"tls_nostarttls", "tls_starttls", "off", "on"},
    {"keepbcc", "remove_bcc_headers", "off", "on"},
    {"tls_force_sslv3", NULL, NULL, NULL},
};

const struct conf_key *conf_key_find(const char *name)
{
    for (size_t i = 0; i < conf_nkeys; i++)
        if (strcmp(conf_keys[i].name, name) == 0)
            return &conf_keys[i];
    return NULL;
}

static const struct legacy *legacy_find(const char *name)
{
    for (size_t i = 0; i < sizeof legacy_keys / sizeof legacy_keys[0]; i++)
        if (strcmp(legacy_keys[i].name, name) == 0)
            return &legacy_keys[i];
    return NULL;
}

/* ---- small helpers ------------------------------------------------------ */

/* An MC_CONFIG error located at FILE:LINE, or at FILE when line is 0. */
static int loc_err(struct mc_err *err, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int loc_err(struct mc_err *err, const char *file, unsigned line, const char *fmt, ...)
{
    char what[MC_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (line)
        return mc_err_set(err, MC_CONFIG, "%s:%u: %s", file, line, what);
    return mc_err_set(err, MC_CONFIG, "%s: %s", file, what);
}

static void warn(struct conf *c, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void warn(struct conf *c, const char *file, unsigned line, const char *fmt, ...)
{
    struct buf b;
    va_list ap;
    int r;

    /* Account names can be as long as a line; size the warning to fit. */
    buf_init(&b, BUF_NOLIMIT);
    r = buf_printf(&b, "%s:%u: ", file, line);
    va_start(ap, fmt);
    if (r == 0)
        r = buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (r == 0)
        strlist_add_owned(&c->warnings, buf_detach(&b, NULL));
    buf_release(&b);
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Strip blanks (and the CR of a CRLF file) from both ends, in place. */
static char *trim(char *s)
{
    size_t n;

    while (is_blank(*s))
        s++;
    n = strlen(s);
    while (n > 0 && (is_blank(s[n - 1]) || s[n - 1] == '\r'))
        n--;
    s[n] = '\0';
    return s;
}

/* msmtp removes one pair of enclosing quotes and unescapes nothing. */
static char *unquote(char *s)
{
    size_t n = strlen(s);

    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s[n - 1] = '\0';
        return s + 1;
    }
    return s;
}

/* Control characters would reach the SMTP dialogue; tab is harmless. */
static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return true;
    return false;
}

static bool is_secret(const char *key)
{
    const struct conf_key *k = conf_key_find(key);

    return k != NULL && (k->flags & CONF_SECRET);
}

/* ---- accounts ----------------------------------------------------------- */

static void value_free(struct conf_value *v)
{
    if (is_secret(v->key))
        mc_free_secret(v->value);
    else
        free(v->value);
    free(v->key);
    free(v->file);
}

void account_free(struct account *a)
{
    for (size_t i = 0; i < a->n; i++)
        value_free(&a->v[i]);
    free(a->v);
    free(a->name);
    memset(a, 0, sizeof *a);
}

const struct conf_value *conf_lookup(const struct account *a, const char *key)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].key, key) == 0)
            return &a->v[i];
    return NULL;
}

const char *conf_str(const struct account *a, const char *key, const char *def)
{
    const struct conf_value *v = conf_lookup(a, key);

    return v ? v->value : def;
}

/* Store `value` (taking ownership) as it is; a key already present keeps its place. */
static struct conf_value *set_owned(struct account *a, const char *key, char *value,
                                    const char *file, unsigned line)
{
    struct conf_value *v = (struct conf_value *)conf_lookup(a, key);

    if (v != NULL) {
        if (is_secret(key))
            mc_free_secret(v->value);
        else
            free(v->value);
        free(v->file);
    } else {
        if (a->n == a->cap) {
            a->cap = a->cap ? a->cap * 2 : 16;
            a->v = mc_reallocarray(a->v, a->cap, sizeof *a->v);
        }
        v = &a->v[a->n++];
        v->key = mc_strdup(key);
    }
    v->value = value;
    v->file = mc_strdup(file);
    v->line = line;
    v->from_defaults = false;
    return v;
}

/* Find the choice `value` names; empty names "on", or the first choice without "on". */
static bool enum_match(const char *choices, const char *value, const char **word, size_t *len)
{
    const char *p = choices;
    const char *first = NULL;
    size_t firstlen = 0;

    while (*p) {
        size_t n = strcspn(p, " ");

        if (first == NULL) {
            first = p;
            firstlen = n;
        }
        if ((*value == '\0' && n == 2 && strncmp(p, "on", 2) == 0) ||
            (strlen(value) == n && strncasecmp(p, value, n) == 0)) {
            *word = p;
            *len = n;
            return true;
        }
        p += n;
        while (*p == ' ')
            p++;
    }
    if (*value == '\0' && first != NULL) {
        *word = first;
        *len = firstlen;
        return true;
    }
    return false;
}

static char *normalize(const char *key, const char *value)
{
    const struct conf_key *k = conf_key_find(key);
    const char *word;
    size_t len;

    if (k != NULL && k->type == CONF_PATH)
        return conf_expand_path(value);
    if (k != NULL && k->type == CONF_ENUM && enum_match(k->choices, value, &word, &len))
        return mc_strndup(word, len);
    return mc_strdup(value);
}

void account_set(struct account *a, const char *key, const char *value, const char *file,
                 unsigned line)
{
    set_owned(a, key, normalize(key, value), file, line);
}

enum copy_mode {
    COPY_ALL,       /* a copy as it is */
    COPY_DEFAULTS,  /* a defaults section filled into a new account */
    COPY_PARENT,    /* inheritance: what was set for the parent, not its defaults */
};

/* Copy values of src into dst, keeping where each was written. */
static void copy_values(struct account *dst, const struct account *src, enum copy_mode mode)
{
    for (size_t i = 0; i < src->n; i++) {
        const struct conf_value *s = &src->v[i];
        struct conf_value *d;

        if (mode == COPY_PARENT && s->from_defaults)
            continue;
        d = set_owned(dst, s->key, mc_strdup(s->value), s->file, s->line);
        d->from_defaults = mode == COPY_DEFAULTS || (mode == COPY_ALL && s->from_defaults);
    }
}

static struct account *find_account(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->nacc; i++)
        if (strcmp(c->acc[i].name, name) == 0)
            return &c->acc[i];
    return NULL;
}

static struct account *add_account(struct conf *c, const char *name)
{
    struct account *a;

    c->acc = mc_reallocarray(c->acc, c->nacc + 1, sizeof *c->acc);
    a = &c->acc[c->nacc++];
    memset(a, 0, sizeof *a);
    a->name = mc_strdup(name);
    return a;
}

void conf_init(struct conf *c)
{
    memset(c, 0, sizeof *c);
}

void conf_free(struct conf *c)
{
    account_free(&c->defaults);
    for (size_t i = 0; i < c->nacc; i++)
        account_free(&c->acc[i]);
    free(c->acc);
    free(c->default_name);
    strlist_free(&c->warnings);
    memset(c, 0, sizeof *c);
}

/* ---- ~ expansion -------------------------------------------------------- */

static const char *own_home(void)
{
    const char *home = getenv("HOME");
    struct passwd *pw;

    if (home != NULL && *home != '\0')
        return home;
    pw = getpwuid(geteuid());
    return pw ? pw->pw_dir : NULL;
}

char *conf_expand_path(const char *path)
{
    const char *rest, *home;
    struct passwd *pw;
    char *user, *out;
    size_t hl, rl;

    if (path[0] != '~')
        return mc_strdup(path);
    rest = path + 1 + strcspn(path + 1, "/");
    if (rest == path + 1) {
        home = own_home();
    } else {
        user = mc_strndup(path + 1, (size_t)(rest - path - 1));
        pw = getpwnam(user);
        free(user);
        home = pw ? pw->pw_dir : NULL;
    }
    /* An unknown user is left for the file's own open() to report. */
    if (home == NULL)
        return mc_strdup(path);
    hl = strlen(home);
    rl = strlen(rest);
    out = mc_calloc(hl + rl + 1, 1);
    memcpy(out, home, hl);
    memcpy(out + hl, rest, rl + 1);
    return out;
}

/* ---- typed values ------------------------------------------------------- */

static int parse_bool(const char *s, bool *out)
{
    static const char *const on[] = {"", "on", "yes", "true", "1"};
    static const char *const off[] = {"off", "no", "false", "0"};

    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        if (strcasecmp(s, on[i]) == 0) {
            *out = true;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        if (strcasecmp(s, off[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Decimal digits only: strtol would take signs, blanks and hex. */
static int parse_num(const char *s, size_t n, long *out)
{
    long v = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (LONG_MAX - (s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int parse_time(const char *s, long *out)
{
    size_t n = strlen(s);
    long v, unit = 1;

    if (strcasecmp(s, "off") == 0) {
        *out = 0;
        return 0;
    }
    if (n > 0 && strchr("sSmMhHdD", s[n - 1]) != NULL) {
        char u = s[--n];

        unit = (u == 'm' || u == 'M') ? 60 : (u == 'h' || u == 'H') ? 3600
             : (u == 'd' || u == 'D') ? 86400 : 1;
    }
    if (parse_num(s, n, &v) < 0 || v > LONG_MAX / unit)
        return -1;
    *out = v * unit;
    return 0;
}

static int bad_value(const struct conf_value *v, const char *expected, struct mc_err *err)
{
    return loc_err(err, v->file, v->line, "bad value '%s' for '%s': expected %s", v->value,
                   v->key, expected);
}

int conf_bool(const struct account *a, const char *key, bool def, bool *out, struct mc_err *err)
{
    const struct conf_value *v = conf_lookup(a, key);

    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (parse_bool(v->value, out) < 0)
        return bad_value(v, "on or off", err);
    return 0;
}

int conf_int_range(const struct account *a, const char *key, long def, long min, long max,
                   long *out, struct mc_err *err)
{
    const struct conf_value *v = conf_lookup(a, key);
    char expected[96];
    long n;

    /* msmtp: an empty argument selects the default. */
    if (v == NULL || v->value[0] == '\0') {
        *out = def;
        return 0;
    }
    if (parse_num(v->value, strlen(v->value), &n) < 0 || n < min || n > max) {
        if (max == LONG_MAX)
            snprintf(expected, sizeof expected, "a whole number of at least %ld", min);
        else
            snprintf(expected, sizeof expected, "a number from %ld to %ld", min, max);
        return bad_value(v, expected, err);
    }
    *out = n;
    return 0;
}

int conf_int(const struct account *a, const char *key, long def, long *out, struct mc_err *err)
{
    return conf_int_range(a, key, def, 0, LONG_MAX, out, err);
}

int conf_time(const struct account *a, const char *key, long def, long *out, struct mc_err *err)
{
    const struct conf_value *v = conf_lookup(a, key);

    if (v == NULL || v->value[0] == '\0') {
        *out = def;
        return 0;
    }
    if (parse_time(v->value, out) < 0)
        return bad_value(v, "seconds, a number with s, m or h, or off", err);
    return 0;
}

static bool is_choice(const char *choices, const char *value)
{
    size_t n = strlen(value);

    for (const char *p = choices; *p;) {
        size_t w = strcspn(p, " ");

        if (w == n && strncmp(p, value, n) == 0)
            return true;
        p += w;
        while (*p == ' ')
            p++;
    }
    return false;
}

static int bad_choice(const struct conf_value *v, const char *choices, struct mc_err *err)
{
    char expected[128];
    size_t j = 0;

    /* "smtp lmtp" reads better as "smtp, lmtp". */
    for (const char *p = choices; *p && j + 3 < sizeof expected; p++) {
        if (*p == ' ')
            expected[j++] = ',';
        expected[j++] = *p;
    }
    expected[j] = '\0';
    return bad_value(v, expected, err);
}

int conf_enum(const struct account *a, const char *key, const char *def, const char **out,
              struct mc_err *err)
{
    const struct conf_value *v = conf_lookup(a, key);
    const struct conf_key *k = conf_key_find(key);

    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (k == NULL || k->choices == NULL)
        return mc_err_set(err, MC_SOFTWARE, "key '%s' is not a list of choices", key);
    if (!is_choice(k->choices, v->value))
        return bad_choice(v, k->choices, err);
    *out = v->value;
    return 0;
}

int conf_check_value(const struct conf_value *v, struct mc_err *err)
{
    const struct conf_key *k = conf_key_find(v->key);
    bool b;
    long n;

    if (k == NULL)
        return loc_err(err, v->file, v->line, "unknown key '%s'", v->key);
    if (has_ctl(v->value))
        return loc_err(err, v->file, v->line, "control character in the value of '%s'", v->key);
    if ((k->flags & CONF_REQARG) && v->value[0] == '\0')
        return loc_err(err, v->file, v->line, "'%s' needs a value", v->key);
    switch (k->type) {
    case CONF_BOOL:
        if (parse_bool(v->value, &b) < 0)
            return bad_value(v, "on or off", err);
        break;
    case CONF_INT:
        if (v->value[0] && parse_num(v->value, strlen(v->value), &n) < 0)
            return bad_value(v, "a whole number of at least 0", err);
        break;
    case CONF_TIME:
        if (v->value[0] && parse_time(v->value, &n) < 0)
            return bad_value(v, "seconds, a number with s, m or h, or off", err);
        break;
    case CONF_ENUM:
        if (!is_choice(k->choices, v->value))
            return bad_choice(v, k->choices, err);
        break;
    case CONF_STRING:
    case CONF_PATH:
        break;
    }
    return 0;
}

int conf_check_account(const struct account *a, struct mc_err *err)
{
    for (size_t i = 0; i < a->n; i++)
        if (conf_check_value(&a->v[i], err) < 0)
            return -1;
    return 0;
}

/* ---- eval --------------------------------------------------------------- */

static int spawn_sh(const char *cmd, int out_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    int r;

    if ((r = posix_spawn_file_actions_init(&fa)) != 0)
        return r;
    /* The pipe first: if fd 0 was closed, the pipe itself may be fd 0. */
    r = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    if (r == 0)
        r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (r == 0)
        r = posix_spawn(pid, "/bin/sh", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return r;
}

enum { EVAL_READ_ERROR = -1, EVAL_TOO_LONG = -2 };

/*
 * Keep the first line of the output in `line`; read the rest too, so the
 * command is not killed by SIGPIPE and its exit status means something.
 * Returns the number of bytes read, EVAL_READ_ERROR or EVAL_TOO_LONG.
 */
static long read_first_line(int fd, struct buf *line)
{
    char chunk[4096];
    bool done = false;
    size_t total = 0;
    ssize_t n;
    long r;

    for (;;) {
        n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? EVAL_READ_ERROR : (long)total;
            break;
        }
        total += (size_t)n;
        if (total > CONF_EVAL_MAX) {
            r = EVAL_TOO_LONG;
            break;
        }
        if (!done) {
            char *nl = memchr(chunk, '\n', (size_t)n);

            done = nl != NULL;
            if (buf_add(line, chunk, nl ? (size_t)(nl - chunk) : (size_t)n) < 0) {
                r = EVAL_TOO_LONG;
                break;
            }
        }
    }
    mc_wipe(chunk, sizeof chunk);
    return r;
}

static int wait_child(pid_t pid, int *status)
{
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

/* Run an eval command; `line` receives the first line it printed. */
static int run_eval(const char *cmd, struct buf *line, const char *file, unsigned lineno,
                    struct mc_err *err)
{
    int fds[2], status, r, read_errno;
    long got;
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return mc_err_set(err, MC_OSERR, "%s:%u: eval: pipe: %s", file, lineno, strerror(errno));
    r = spawn_sh(cmd, fds[1], &pid);
    close(fds[1]);
    if (r != 0) {
        close(fds[0]);
        return mc_err_set(err, MC_OSERR, "%s:%u: eval: cannot run /bin/sh: %s", file, lineno,
                          strerror(r));
    }
    got = read_first_line(fds[0], line);
    read_errno = errno;
    if (got < 0)
        kill(pid, SIGKILL);
    close(fds[0]);
    if (wait_child(pid, &status) < 0)
        return mc_err_set(err, MC_OSERR, "%s:%u: eval: waitpid: %s", file, lineno,
                          strerror(errno));
    /* The command is not quoted in messages: it may hold a secret. */
    if (got == EVAL_READ_ERROR)
        return mc_err_set(err, MC_OSERR, "%s:%u: eval: reading the output: %s", file, lineno,
                          strerror(read_errno));
    if (got == EVAL_TOO_LONG)
        return loc_err(err, file, lineno, "eval command printed more than %u bytes",
                       CONF_EVAL_MAX);
    if (WIFSIGNALED(status))
        return loc_err(err, file, lineno, "eval command was killed by signal %d",
                       WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        return loc_err(err, file, lineno, "eval command failed with exit status %d",
                       WEXITSTATUS(status));
    if (got == 0)
        return loc_err(err, file, lineno, "eval command printed nothing");
    return 0;
}

/* ---- the parser --------------------------------------------------------- */

enum { CUR_NONE = -2, CUR_DEFAULTS = -1 };

struct parser {
    struct conf *c;           /* scratch conf that this file is read into */
    const struct conf *prev;  /* files read before, where parents may also be */
    const char *file;
    long cur;                 /* index into c->acc, CUR_DEFAULTS or CUR_NONE */
    bool implicit_default;    /* lines before any section made account "default" */
    struct strlist seen;      /* keys set in the current section */
    bool password_in_text;    /* the file itself holds a password */
};

static int parse_line(struct parser *p, char *line, unsigned lineno, bool from_eval,
                      struct mc_err *err);

static struct account *section(struct parser *p)
{
    return p->cur == CUR_DEFAULTS ? &p->c->defaults : &p->c->acc[p->cur];
}

static void new_section(struct parser *p, long cur)
{
    p->cur = cur;
    strlist_free(&p->seen);
}

static int start_defaults(struct parser *p, const char *arg, unsigned lineno,
                          struct mc_err *err)
{
    if (*arg != '\0')
        return loc_err(err, p->file, lineno, "'defaults' takes no value");
    new_section(p, CUR_DEFAULTS);
    return 0;
}

/* Copy the parents named in "P1, P2" into a, in order. */
static int inherit(struct parser *p, struct account *a, char *list, unsigned lineno,
                   size_t *count, struct mc_err *err)
{
    char *name, *next;
    const struct account *parent;

    for (*count = 0; list != NULL; list = next) {
        next = strchr(list, ',');
        if (next != NULL)
            *next++ = '\0';
        name = trim(list);
        if (*name == '\0')
            return loc_err(err, p->file, lineno, "missing account name");
        parent = find_account(p->c, name);
        if (parent == NULL && p->prev != NULL)
            parent = find_account(p->prev, name);
        if (parent == NULL)
            return loc_err(err, p->file, lineno,
                           "account '%s' is not defined (a parent must be defined above)", name);
        copy_values(a, parent, COPY_PARENT);
        (*count)++;
    }
    return 0;
}

static int start_account(struct parser *p, char *arg, unsigned lineno, struct mc_err *err)
{
    char *colon = strchr(arg, ':');
    struct account a = {0};
    size_t nparents = 0;
    char *name;

    if (colon != NULL)
        *colon = '\0';
    name = trim(arg);
    if (*name == '\0')
        return loc_err(err, p->file, lineno, "missing account name");
    if (find_account(p->c, name) != NULL) {
        if (p->implicit_default && strcmp(name, "default") == 0)
            return loc_err(err, p->file, lineno,
                           "account 'default' was already defined by the lines before the "
                           "first 'account' or 'defaults' line");
        return loc_err(err, p->file, lineno, "account '%s' was already defined", name);
    }
    copy_values(&a, &p->c->defaults, COPY_DEFAULTS);
    if (colon != NULL && inherit(p, &a, colon + 1, lineno, &nparents, err) < 0) {
        account_free(&a);
        return -1;
    }
    a.name = mc_strdup(name);
    if (strcmp(name, "default") == 0) {
        /* "account default : work" names the default account. */
        free(p->c->default_name);
        p->c->default_name = nparents == 1 ? mc_strdup(trim(colon + 1)) : NULL;
    }
    p->c->acc = mc_reallocarray(p->c->acc, p->c->nacc + 1, sizeof *p->c->acc);
    p->c->acc[p->c->nacc++] = a;
    new_section(p, (long)p->c->nacc - 1);
    return 0;
}

static int store(struct parser *p, const char *key, const char *value, unsigned lineno,
                 bool from_eval)
{
    struct account *a;

    if (p->cur == CUR_NONE) {
        /* msmtp: lines before any section belong to an account named "default". */
        add_account(p->c, "default");
        p->implicit_default = true;
        new_section(p, (long)p->c->nacc - 1);
    }
    a = section(p);
    if (strlist_has_ci(&p->seen, key))
        warn(p->c, p->file, lineno, "key '%s' set twice in %s%s%s; the later value wins", key,
             a->name ? "account '" : "defaults", a->name ? a->name : "", a->name ? "'" : "");
    else
        strlist_add(&p->seen, key);
    account_set(a, key, value, p->file, lineno);
    if (strcmp(key, "password") == 0 && *value != '\0') {
        p->c->has_secret = true;
        if (!from_eval)
            p->password_in_text = true;
    }
    return 0;
}

static int set_legacy(struct parser *p, const struct conf_key *k, const char *value,
                      unsigned lineno, bool from_eval, struct mc_err *err)
{
    const struct legacy *l = legacy_find(k->name);
    bool on;

    if (parse_bool(value, &on) < 0)
        return loc_err(err, p->file, lineno, "bad value '%s' for '%s': expected on or off",
                       value, k->name);
    if (l->key == NULL) {
        if (on)
            warn(p->c, p->file, lineno, "'%s' is obsolete and ignored", k->name);
        return 0;
    }
    return store(p, l->key, on ? l->if_on : l->if_off, lineno, from_eval);
}

static int set_key(struct parser *p, const char *key, const char *value, unsigned lineno,
                   bool from_eval, struct mc_err *err)
{
    const struct conf_key *k = conf_key_find(key);

    if (k == NULL)
        return loc_err(err, p->file, lineno, "unknown key '%s'", key);
    if ((k->flags & CONF_REQARG) && *value == '\0')
        return loc_err(err, p->file, lineno, "'%s' needs a value", key);
    if (k->flags & CONF_LEGACY)
        return set_legacy(p, k, value, lineno, from_eval, err);
    return store(p, key, value, lineno, from_eval);
}

static int eval_line(struct parser *p, const char *cmd, unsigned lineno, bool from_eval,
                     struct mc_err *err)
{
    struct buf out;
    char *line;
    int r;

    if (p->c->no_eval)
        return loc_err(err, p->file, lineno, "'eval' is not allowed here");
    if (from_eval)
        return loc_err(err, p->file, lineno, "the output of 'eval' may not be another 'eval'");
    if (*cmd == '\0')
        return loc_err(err, p->file, lineno, "'eval' needs a command");
    buf_init(&out, CONF_EVAL_MAX);
    r = run_eval(cmd, &out, p->file, lineno, err);
    if (r == 0) {
        line = mc_strndup(out.data, out.len);
        r = parse_line(p, line, lineno, true, err);
        mc_free_secret(line);
    }
    buf_wipe(&out);
    return r;
}

/* One line, NUL-terminated and writable; `from_eval` when an eval printed it. */
static int parse_line(struct parser *p, char *line, unsigned lineno, bool from_eval,
                      struct mc_err *err)
{
    char *cmd = trim(line), *arg;

    if (*cmd == '\0' || *cmd == '#')
        return 0;
    if (has_ctl(cmd))
        return loc_err(err, p->file, lineno, "control character in line");
    arg = cmd;
    while (*arg != '\0' && !is_blank(*arg))
        arg++;
    if (*arg != '\0')
        *arg++ = '\0';
    arg = unquote(trim(arg));
    if (strcmp(cmd, "defaults") == 0)
        return start_defaults(p, arg, lineno, err);
    if (strcmp(cmd, "account") == 0)
        return start_account(p, arg, lineno, err);
    if (strcmp(cmd, "eval") == 0)
        return eval_line(p, arg, lineno, from_eval, err);
    return set_key(p, cmd, arg, lineno, from_eval, err);
}

static int parse_text(struct parser *p, const char *text, size_t len, struct mc_err *err)
{
    const char *s = text, *end = text + len;
    unsigned lineno = 0;

    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *eol = nl ? nl : end;
        char *line;
        int r;

        lineno++;
        if (memchr(s, '\0', (size_t)(eol - s)) != NULL)
            return loc_err(err, p->file, lineno, "NUL byte in line");
        line = mc_strndup(s, (size_t)(eol - s));
        r = parse_line(p, line, lineno, false, err);
        mc_free_secret(line);
        if (r < 0)
            return -1;
        s = nl ? nl + 1 : end;
    }
    return 0;
}

/* ---- loading ------------------------------------------------------------ */

/* Move what one file defined into c: its accounts replace same-named ones. */
static void merge(struct conf *c, struct conf *f)
{
    struct account *old;

    for (size_t i = 0; i < f->nacc; i++) {
        if (strcmp(f->acc[i].name, "default") == 0) {
            free(c->default_name);
            c->default_name = f->default_name;
            f->default_name = NULL;
        }
        old = find_account(c, f->acc[i].name);
        if (old == NULL) {
            c->acc = mc_reallocarray(c->acc, c->nacc + 1, sizeof *c->acc);
            old = &c->acc[c->nacc++];
        } else {
            account_free(old);
        }
        *old = f->acc[i];
    }
    free(f->acc);
    f->acc = NULL;
    f->nacc = 0;
    copy_values(&c->defaults, &f->defaults, COPY_ALL);
    c->has_secret |= f->has_secret;
    for (size_t i = 0; i < f->warnings.n; i++)
        strlist_add_owned(&c->warnings, f->warnings.v[i]);
    f->warnings.n = 0;
}

static int check_perms(const char *path, const struct stat *st, struct mc_err *err)
{
    if (st->st_uid != geteuid())
        return mc_err_set(err, MC_CONFIG, "%s: contains a password but is owned by uid %lu, not you",
                          path, (unsigned long)st->st_uid);
    if (st->st_mode & 077)
        return mc_err_set(err, MC_CONFIG,
                          "%s: contains a password but is readable by others; run: chmod 600 %s",
                          path, path);
    return 0;
}

/* Parse text into a scratch conf; merge it into c only when all went well. */
static int load_text(struct conf *c, const char *name, const char *text, size_t len,
                     const struct stat *st, struct mc_err *err)
{
    struct conf f;
    struct parser p = {.c = &f, .prev = c, .file = name, .cur = CUR_NONE};
    int r;

    conf_init(&f);
    f.no_eval = c->no_eval;
    r = parse_text(&p, text, len, err);
    /* Checked on the descriptor that was read, so the file cannot be swapped. */
    if (r == 0 && st != NULL && p.password_in_text)
        r = check_perms(name, st, err);
    if (r == 0)
        merge(c, &f);
    strlist_free(&p.seen);
    conf_free(&f);
    return r;
}

int conf_load_buffer(struct conf *c, const char *name, const char *text, size_t len,
                     struct mc_err *err)
{
    return load_text(c, name, text, len, NULL, err);
}

/* Read to the end into b; b->max is one more than allowed, to notice a file too large. */
static int read_fd(int fd, const char *path, struct buf *b, struct mc_err *err)
{
    size_t room;
    ssize_t n;

    for (;;) {
        room = b->max - b->len < 65536 ? b->max - b->len : 65536;
        if (room == 0)
            return mc_err_set(err, MC_CONFIG, "%s: larger than %u MiB", path,
                              CONF_MAX_SIZE >> 20);
        if (buf_reserve(b, room) < 0)
            return mc_err_set(err, MC_OSERR, "%s: out of memory", path);
        n = read(fd, b->data + b->len, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return mc_err_set(err, MC_CONFIG, "%s: %s", path, strerror(errno));
        if (n == 0)
            return 0;
        b->len += (size_t)n;
        b->data[b->len] = '\0';
    }
}

int conf_load_file(struct conf *c, const char *path, bool missing_ok, struct mc_err *err)
{
    struct stat st;
    struct buf text;
    int fd, r;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT && missing_ok)
            return 0;
        return mc_err_set(err, MC_CONFIG, "%s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) < 0) {
        r = mc_err_set(err, MC_CONFIG, "%s: %s", path, strerror(errno));
        close(fd);
        return r;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return mc_err_set(err, MC_CONFIG, "%s: is a directory", path);
    }
    buf_init(&text, CONF_MAX_SIZE + 1);
    r = read_fd(fd, path, &text, err);
    close(fd);
    if (r == 0)
        r = load_text(c, path, text.data, text.len, &st, err);
    buf_wipe(&text);
    return r;
}

/* ---- selection ---------------------------------------------------------- */

/* "user+detail@domain" -> "user@domain"; anything else is copied as it is. */
static char *strip_detail(const char *addr)
{
    const char *at = strrchr(addr, '@');
    const char *plus = at ? memchr(addr, '+', (size_t)(at - addr)) : NULL;
    size_t keep;
    char *out;

    if (plus == NULL || plus == addr)
        return mc_strdup(addr);
    keep = (size_t)(plus - addr);
    out = mc_calloc(keep + strlen(at) + 1, 1);
    memcpy(out, addr, keep);
    memcpy(out + keep, at, strlen(at) + 1);
    return out;
}

static bool from_matches(const char *pattern, const char *addr, const char *plain)
{
    if (strcasecmp(pattern, addr) == 0 || strcasecmp(pattern, plain) == 0)
        return true;
    if (strpbrk(pattern, "*?[") == NULL)
        return false;
    return fnmatch(pattern, addr, FNM_CASEFOLD) == 0 ||
           fnmatch(pattern, plain, FNM_CASEFOLD) == 0;
}

static const struct account *match_from(const struct conf *c, const char *addr)
{
    const struct account *found = NULL;
    char *plain = strip_detail(addr);

    for (size_t i = 0; i < c->nacc && found == NULL; i++) {
        const char *from = conf_str(&c->acc[i], "from", "");

        if (*from != '\0' && from_matches(from, addr, plain))
            found = &c->acc[i];
    }
    free(plain);
    return found;
}

static void say(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

int conf_select(const struct conf *c, const char *name, const char *envelope_from,
                struct account *out, char *why, size_t whylen, struct mc_err *err)
{
    const struct account *a = NULL;

    memset(out, 0, sizeof *out);
    if (name != NULL) {
        a = find_account(c, name);
        if (a == NULL)
            return mc_err_set(err, MC_CONFIG, "account '%s' not found", name);
        say(why, whylen, "-a %s", name);
    } else if (envelope_from != NULL && (a = match_from(c, envelope_from)) != NULL) {
        say(why, whylen, "from matches account %s", a->name);
    } else if ((a = find_account(c, "default")) != NULL) {
        if (c->default_name != NULL)
            say(why, whylen, "account default : %s", c->default_name);
        else
            say(why, whylen, "account default");
    } else {
        say(why, whylen, "no account default: the defaults alone");
    }
    if (a == NULL) {
        copy_values(out, &c->defaults, COPY_ALL);
        return 0;
    }
    out->name = mc_strdup(a->name);
    copy_values(out, a, COPY_ALL);
    return 0;
}
