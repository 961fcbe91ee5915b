/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * --check: connect, EHLO, STARTTLS, AUTH, QUIT through the same engine
 * that sends, and say in plain words what worked; see check.h.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "check.h"
#include "conf.h"
#include "run.h"
#include "smtp.h"
#include "util.h"

static const char *tls_mode_words(enum smtp_tls_mode m)
{
    switch (m) {
    case SMTP_TLS_NONE: return "no TLS";
    case SMTP_TLS_STARTTLS: return "STARTTLS";
    case SMTP_TLS_IMPLICIT: return "TLS from the first byte";
    }
    return "?";
}

/* What the account asks for, before anything is tried. */
static void say_config(struct run *r)
{
    const struct settings *st = &r->st;

    fprintf(r->out, "ok: configuration read: account %s (%s)\n",
            r->acc.name ? r->acc.name : "(defaults)", r->why);
    if (st->host)
        fprintf(r->out, "ok: server %s port %s, %s, authentication %s\n", st->host, st->port,
                tls_mode_words(st->tls), st->auth ? (st->user ? "as the user in 'user'" : "on")
                                                  : "off");
    if (st->tls == SMTP_TLS_NONE)
        fprintf(r->out, "note: 'tls off': messages cross the network in clear text\n");
    else if (!st->tlsp.certcheck)
        fprintf(r->out, "note: 'tls_certcheck off': the server's certificate is not verified; "
                "pin it with tls_fingerprint (mailcar -S prints it)\n");
}

/* The steps that passed, from what the session recorded. */
static void say_session(struct run *r, struct conn *c, const struct smtp_session *s)
{
    const struct settings *st = &r->st;

    if (s->greeting[0])
        fprintf(r->out, "ok: connected to %s port %s; the server greets: %s\n", st->host,
                st->port, s->greeting);
    if (s->tls_active && c->impl) {
        fprintf(r->out, "ok: TLS established (%s)\n", c->ops->tls_desc(c));
        if (st->tlsp.fingerprint)
            fprintf(r->out, "ok: the certificate matches tls_fingerprint\n");
        else if (st->tlsp.certcheck)
            fprintf(r->out, "ok: the certificate is valid for '%s' and signed by a trusted CA%s\n",
                    st->tlsp.host ? st->tlsp.host : st->host,
                    st->tlsp.trust_file ? " (tls_trust_file)" : "");
    }
}

static void say_auth(struct run *r, const struct smtp_session *s)
{
    const char *offered = s->caps.auth[0] ? s->caps.auth : NULL;

    if (r->st.auth && s->authenticated)
        fprintf(r->out, "ok: the server offers AUTH %s; user '%s' logged in\n",
                offered ? offered : "", r->st.user ? r->st.user : "");
    else if (!r->st.auth && offered)
        fprintf(r->out, "note: the server offers AUTH %s but 'auth' is off: fine for a relay "
                "that trusts this host, otherwise set 'user'\n", offered);
    else if (!r->st.auth)
        fprintf(r->out, "ok: no authentication asked or offered\n");
    if (s->caps.size)
        fprintf(r->out, "ok: the server takes messages up to %llu bytes (%.1f MiB)\n",
                s->caps.size, s->caps.size / 1048576.0);
}

int check_run(struct run *r, struct mc_err *err)
{
    struct conn c = {0};
    struct smtp_session s;
    struct smtp_params p;
    char *secret = NULL;
    int rc;

    say_config(r);
    memset(&s, 0, sizeof s);
    rc = open_session(r, &c, &s, &p, &secret, err);
    mc_free_secret(secret);
    p.creds.secret = NULL;
    if (s.p)
        say_session(r, &c, &s);
    if (rc == 0) {
        say_auth(r, &s);
        smtp_quit(&s);
        fprintf(r->out, "ok: all checks passed; nothing was sent\n");
    }
    if (s.p)
        smtp_release(&s);
    if (c.impl)
        c.ops->close(&c);
    fflush(r->out);
    return rc;
}
