/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * --configure; see configure.h.  SRV records win over the table: they are
 * the domain's own word (RFC 6186).  The address is checked strictly, since
 * it is written into a passwordeval command line.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "configure.h"
#include "dns.h"
#include "util.h"

#define APP_PASSWORD "# The password is an app password made in the provider's account settings.\n"

static const struct provider providers[] = {
    {"gmail.com googlemail.com", "Gmail", "smtp.gmail.com", 465, true, false, "plain",
     "# The password is an app password (Google Account > Security > App passwords;\n"
     "# it needs 2-Step Verification).  For OAuth 2.0 instead: 'auth oauthbearer' (or\n"
     "# xoauth2) with a passwordeval that prints a fresh access token (e.g. oama).\n"},
    {"outlook.com hotmail.com hotmail.co.uk hotmail.fr hotmail.de live.com live.co.uk msn.com",
     "Outlook.com", "smtp-mail.outlook.com", 587, false, false, "xoauth2",
     "# Microsoft accepts OAuth 2.0 only: the passwordeval command must print a fresh\n"
     "# access token (e.g. oama or mutt_oauth2.py), not a password.\n"
     "# Office 365 / Exchange Online domains use host smtp.office365.com, port 587.\n"},
    {"fastmail.com fastmail.fm", "Fastmail", "smtp.fastmail.com", 465, true, false, "plain",
     APP_PASSWORD},
    {"icloud.com me.com mac.com", "iCloud Mail", "smtp.mail.me.com", 587, false, false, "plain",
     "# The password is an app-specific password (account.apple.com > Sign-In and Security).\n"},
    {"yahoo.com ymail.com rocketmail.com yahoo.co.uk yahoo.fr yahoo.de", "Yahoo Mail",
     "smtp.mail.yahoo.com", 465, true, false, "plain", APP_PASSWORD},
    {"gmx.net gmx.de gmx.at gmx.ch", "GMX", "mail.gmx.net", 587, false, false, "plain",
     "# SMTP access must be switched on in the GMX web mail settings first.\n"},
    {"gmx.com gmx.us gmx.co.uk", "GMX", "mail.gmx.com", 587, false, false, "plain",
     "# SMTP access must be switched on in the GMX web mail settings first.\n"},
    {"mailbox.org", "mailbox.org", "smtp.mailbox.org", 465, true, false, "plain", ""},
    {"posteo.de posteo.net", "Posteo", "posteo.de", 465, true, false, "plain", ""},
    {"zoho.com zohomail.com", "Zoho Mail", "smtp.zoho.com", 465, true, false, "plain",
     "# With two-factor authentication the password is an application-specific password.\n"
     "# Accounts in Zoho's EU data centre use host smtp.zoho.eu.\n"},
    {"zoho.eu zohomail.eu", "Zoho Mail (EU)", "smtp.zoho.eu", 465, true, false, "plain",
     "# With two-factor authentication the password is an application-specific password.\n"},
};

static const struct provider google_workspace = {
    "", "Google Workspace", "smtp.gmail.com", 465, true, false, "plain",
    "# The password is an app password, where the Workspace administrator allows them;\n"
    "# otherwise 'auth oauthbearer' (or xoauth2) with a passwordeval that prints a\n"
    "# fresh OAuth 2.0 access token (e.g. oama).\n"};
static const struct provider microsoft_365 = {
    "", "Microsoft 365", "smtp.office365.com", 587, false, false, "xoauth2",
    "# Microsoft 365 wants OAuth 2.0: the passwordeval command must print a fresh\n"
    "# access token (e.g. oama or mutt_oauth2.py), and the tenant must allow SMTP AUTH.\n"};

static bool ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcasecmp(s + n - m, suffix) == 0 && (n == m || s[n - m - 1] == '.');
}

const struct provider *configure_provider_by_mx(const char *mx)
{
    if (ends_with_ci(mx, "aspmx.l.google.com") || ends_with_ci(mx, "googlemail.com") ||
        strcasecmp(mx, "smtp.google.com") == 0)
        return &google_workspace;
    if (ends_with_ci(mx, "mail.protection.outlook.com"))
        return &microsoft_365;
    return NULL;
}

static bool word_in(const char *list, const char *w)
{
    size_t n = strlen(w);

    for (const char *p = list; *p;) {
        size_t m = strcspn(p, " ");
        if (m == n && strncasecmp(p, w, n) == 0)
            return true;
        p += m + (p[m] == ' ');
    }
    return false;
}

const struct provider *configure_provider(const char *domain)
{
    for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++)
        if (word_in(providers[i].domains, domain))
            return &providers[i];
    return NULL;
}

/* Letters, digits and ".-_+=" only: the address goes into a shell command. */
static int check_address(const char *a, const char **domain, struct mc_err *err)
{
    const char *at = strchr(a, '@');

    if (at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '@'))
        return mc_err_set(err, MC_USAGE, "--configure: '%.200s' is not an address "
                          "(expected user@domain)", a);
    for (const char *p = a; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-_+=@", *p))
            return mc_err_set(err, MC_USAGE, "--configure: '%.200s' contains characters that "
                              "will not be written into a configuration; write it by hand", a);
    if (strlen(a) > 200 || at[1] == '.' || at[1] == '-' || strstr(at, ".."))
        return mc_err_set(err, MC_USAGE, "--configure: bad domain in '%.200s'", a);
    *domain = at + 1;
    return 0;
}

static void common_tail(const char *address, const char *user, struct buf *out)
{
    buf_printf(out, "from %s\nuser %s\n", address, user);
    buf_printf(out, "passwordeval \"secret-tool lookup mailcar %s\"\n", address);
    buf_printf(out, "# store the secret once with:\n"
               "#   secret-tool store --label='mailcar %s' mailcar %s\n"
               "# or use e.g. passwordeval \"pass show mail/%s\"\n", address, address, address);
    buf_printf(out, "# to make this the default account, add: account default : ");
}

void configure_from_provider(const char *address, const struct provider *p, const char *why,
                             struct buf *out)
{
    const char *domain = strchr(address, '@') + 1;
    char user[256];

    if (p->local_part_user)
        snprintf(user, sizeof user, "%.*s", (int)(domain - 1 - address), address);
    else
        snprintf(user, sizeof user, "%s", address);
    buf_printf(out, "# %s (%s), from mailcar's table of providers: %s\n", address, p->name,
               why);
    buf_printf(out, "account %s\nhost %s\nport %u\ntls on\ntls_starttls %s\nauth %s\n", domain,
               p->host, p->port, p->implicit_tls ? "off" : "on", p->auth);
    buf_printf(out, "%s", p->note);
    common_tail(address, user, out);
    buf_printf(out, "%s\n", domain);
}

static void from_srv(const char *address, const char *domain, const struct dns_srv *v,
                     size_t n, struct buf *out)
{
    buf_printf(out, "# %s, from the SRV records of %s:\n", address, domain);
    for (size_t i = 0; i < n; i++)
        buf_printf(out, "#   %s._tcp %u %u %u %s\n", v[i].implicit_tls ? "_submissions" :
                   "_submission", v[i].prio, v[i].weight, v[i].port, v[i].target);
    buf_printf(out, "# mailcar looks them up at each send and tries them in order; to pin the\n"
               "# first one instead: host %s://%s:%u\n", v[0].implicit_tls ? "smtps" : "smtp",
               v[0].target, v[0].port);
    buf_printf(out, "account %s\nhost srv:%s\ntls on\nauth on\n", domain, domain);
    buf_printf(out, "# The user name is usually the full address (RFC 6186); some servers\n"
               "# want only the local part.\n");
    common_tail(address, address, out);
    buf_printf(out, "%s\n", domain);
}

/* A domain of its own at a big provider: its MX hosts say which (a failed lookup says nothing). */
static const struct provider *by_mx(const char *domain, char *why, size_t len, FILE *trace)
{
    struct dns_answer *a = mc_calloc(1, sizeof *a);
    const struct provider *p = NULL;
    struct mc_err err;

    if (dns_mx_lookup(domain, a, &err) < 0 && trace)
        fprintf(trace, "mailcar: MX: %s\n", err.msg);
    for (size_t i = 0; p == NULL && i < a->n; i++) {
        if (trace)
            fprintf(trace, "mailcar: MX %u %s\n", a->srv[i].prio, a->srv[i].target);
        if ((p = configure_provider_by_mx(a->srv[i].target)) != NULL)
            snprintf(why, len, "no SRV records; its MX is %s", a->srv[i].target);
    }
    free(a);
    return p;
}

int configure_print(const char *address, FILE *out, FILE *trace, struct mc_err *err)
{
    struct dns_srv *v = mc_calloc(2 * DNS_MAX_RECORDS, sizeof *v);
    const struct provider *p;
    const char *domain = NULL;
    struct mc_err dnserr = {0};
    struct buf b;
    char why[DNS_NAME_MAX + 64];
    size_t n = 0;
    int rc = 0;

    if (check_address(address, &domain, err) < 0) {
        free(v);
        return -1;
    }
    buf_init(&b, BUF_NOLIMIT);
    if (dns_srv_lookup(domain, v, &n, NULL, NULL, &dnserr) == 0) {
        from_srv(address, domain, v, n, &b);
    } else if ((p = configure_provider(domain)) != NULL) {
        if (trace)
            fprintf(trace, "mailcar: SRV: %s\n", dnserr.msg);
        configure_from_provider(address, p, "no SRV records found", &b);
    } else if (dnserr.cls == MC_TEMPFAIL) {
        *err = dnserr;
        rc = -1;
    } else if ((p = by_mx(domain, why, sizeof why, trace)) != NULL) {
        configure_from_provider(address, p, why, &b);
    } else {
        rc = mc_err_set(err, MC_UNAVAIL, "--configure: %s, and '%s' is not in mailcar's table "
                        "of providers: find the submission server in the provider's "
                        "documentation", dnserr.msg, domain);
    }
    if (rc == 0)
        fputs(b.data, out);
    buf_release(&b);
    free(v);
    return rc;
}
