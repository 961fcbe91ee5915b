/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The SMTP protocol engine; see smtp.h.  Written against RFC 5321, 2920
 * (pipelining), 3030 (CHUNKING), 3207 (STARTTLS), 3461 (DSN), 4954 (AUTH),
 * 6531 (SMTPUTF8).  Every reply goes through smtp_fail() when it is not
 * what the state expects, so the class of each failure is decided in one
 * place.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"
#include "util.h"

enum state {
    ST_GREETING,
    ST_EHLO,
    ST_HELO,
    ST_STARTTLS,
    ST_AUTH,
    ST_READY,
    ST_MAIL,
    ST_RCPT,
    ST_DATA,
    ST_BODY,
    ST_RSET,
    ST_QUIT,
    ST_MAX
};

static const char *const state_names[ST_MAX] = {
    "greeting", "EHLO", "HELO", "STARTTLS", "AUTH", "ready",
    "MAIL", "RCPT", "DATA", "end of data", "RSET", "QUIT",
};

#define LINE_MAX_BYTES (REPLY_MAX)
#define BODY_CHUNK (128 * 1024)

const char *smtp_state_name(int state)
{
    return state >= 0 && state < ST_MAX ? state_names[state] : "?";
}

void smtp_init(struct smtp_session *s, struct conn *c, const struct smtp_params *p)
{
    memset(s, 0, sizeof *s);
    s->conn = c;
    s->p = p;
    buf_init(&s->in, LINE_MAX_BYTES + BODY_CHUNK);
    buf_init(&s->out, BUF_NOLIMIT);
    reply_init(&s->reply);
}

void smtp_release(struct smtp_session *s)
{
    buf_release(&s->in);
    buf_release(&s->out);   /* AUTH responses were wiped as they were sent */
    reply_release(&s->reply);
}

static void trace(struct smtp_session *s, enum smtp_trace_dir dir, const char *line, size_t len)
{
    if (s->p->trace)
        s->p->trace(s->p->trace_arg, dir, line, len);
}

static void info(struct smtp_session *s, const char *text)
{
    trace(s, SMTP_TRACE_INFO, text, strlen(text));
}

static void warn(struct smtp_session *s, const char *text)
{
    trace(s, SMTP_TRACE_WARN, text, strlen(text));
}

/* Queue one command line; `shown` replaces it in the trace (for secrets). */
static int cmd_shown(struct smtp_session *s, const char *shown, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cmd_shown(struct smtp_session *s, const char *shown, const char *fmt, ...)
{
    size_t start = s->out.len;
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = buf_vprintf(&s->out, fmt, ap);
    va_end(ap);
    if (r < 0 || buf_add(&s->out, "\r\n", 2) < 0)
        return -1;
    if (shown)
        trace(s, SMTP_TRACE_CLIENT, shown, strlen(shown));
    else
        trace(s, SMTP_TRACE_CLIENT, s->out.data + start, s->out.len - start - 2);
    return 0;
}

#define cmd(s, ...) cmd_shown((s), NULL, __VA_ARGS__)

static int flush(struct smtp_session *s, struct mc_err *err)
{
    int r = 0;

    if (s->out.len)
        r = s->conn->ops->write(s->conn, s->out.data, s->out.len, err);
    buf_reset(&s->out);
    if (r < 0)
        s->broken = true;
    return r;
}

/* The next line from the server, without its line end, in s->in. */
static int read_line(struct smtp_session *s, size_t *len, struct mc_err *err)
{
    char tmp[16384];
    char *nl;

    while ((nl = memchr(s->in.data, '\n', s->in.len)) == NULL) {
        if (s->in.len > LINE_MAX_BYTES)
            return mc_err_set(err, MC_PROTOCOL, "server sent a line longer than %d bytes",
                              LINE_MAX_BYTES);
        ssize_t n = s->conn->ops->read(s->conn, tmp, sizeof tmp, err);
        if (n < 0)
            return -1;
        if (n == 0)
            return mc_err_set(err, MC_TEMPFAIL, "server closed the connection");
        if (buf_add(&s->in, tmp, (size_t)n) < 0)
            return mc_err_set(err, MC_PROTOCOL, "server sent a line longer than %d bytes",
                              LINE_MAX_BYTES);
    }
    *len = (size_t)(nl - s->in.data);
    if (*len > 0 && s->in.data[*len - 1] == '\r')
        (*len)--;
    return 0;
}

static void consume_line(struct smtp_session *s)
{
    char *nl = memchr(s->in.data, '\n', s->in.len);

    buf_consume(&s->in, nl ? (size_t)(nl - s->in.data) + 1 : s->in.len);
}

static int read_reply(struct smtp_session *s, struct mc_err *err)
{
    size_t len;

    reply_reset(&s->reply);
    do {
        if (read_line(s, &len, err) < 0) {
            s->broken = true;
            return mc_err_prefix(err, "waiting for the reply to %s", state_names[s->state]);
        }
        trace(s, SMTP_TRACE_SERVER, s->in.data, len);
        if (reply_add_line(&s->reply, s->in.data, len, err) < 0) {
            s->broken = true;
            return -1;
        }
        consume_line(s);
    } while (!s->reply.done);
    if (s->reply.code == 421)
        s->broken = true;   /* the server is closing the transmission channel */
    return 0;
}

/*
 * The one place a reply becomes a failure.  4xx is always temporary; `perm`
 * is the class for 5xx in this state.
 */
static int smtp_fail(struct smtp_session *s, enum mc_class perm, const char *what,
                     struct mc_err *err)
{
    char sum[300];
    int code = s->reply.code;

    reply_summary(&s->reply, sum, sizeof sum);
    return mc_err_reply(err, code >= 400 && code < 500 ? MC_TEMPFAIL : perm, code, s->reply.esc,
                        "%s: %s", what, sum);
}

static int expect(struct smtp_session *s, int cls, enum mc_class perm, const char *what,
                  struct mc_err *err)
{
    if (read_reply(s, err) < 0)
        return -1;
    if (s->reply.code / 100 != cls)
        return smtp_fail(s, perm, what, err);
    return 0;
}

static int do_greeting(struct smtp_session *s, struct mc_err *err)
{
    s->state = ST_GREETING;
    if (expect(s, 2, MC_UNAVAIL, "server refused the connection", err) < 0)
        return -1;
    if (s->reply.code != 220)
        return smtp_fail(s, MC_PROTOCOL, "unexpected greeting", err);
    reply_summary(&s->reply, s->greeting, sizeof s->greeting);
    return 0;
}

static int do_ehlo(struct smtp_session *s, struct mc_err *err)
{
    s->state = ST_EHLO;
    memset(&s->caps, 0, sizeof s->caps);
    if (cmd(s, "%s %s", s->p->lmtp ? "LHLO" : "EHLO", s->p->helo) < 0 || flush(s, err) < 0 ||
        read_reply(s, err) < 0)
        return -1;
    if (s->reply.code == 250) {
        caps_parse(&s->reply, &s->caps);
        return 0;
    }
    if (s->reply.code / 100 == 4 || s->reply.code == 421)
        return smtp_fail(s, MC_TEMPFAIL, "server refused EHLO", err);
    /* An old server: HELO works, but none of the extensions do.  LMTP has no HELO. */
    if (s->p->lmtp)
        return smtp_fail(s, MC_UNAVAIL, "server refused LHLO", err);
    if (s->p->tls == SMTP_TLS_STARTTLS && !s->tls_active)
        return smtp_fail(s, MC_TEMPFAIL,
                         "server refused EHLO, so STARTTLS is impossible", err);
    s->state = ST_HELO;
    if (cmd(s, "HELO %s", s->p->helo) < 0 || flush(s, err) < 0)
        return -1;
    return expect(s, 2, MC_UNAVAIL, "server refused HELO", err);
}

static int do_starttls(struct smtp_session *s, struct mc_err *err)
{
    s->state = ST_STARTTLS;
    if (!(s->caps.flags & CAP_STARTTLS))
        return mc_err_set(err, MC_TEMPFAIL,
                          "server does not offer STARTTLS; refusing to send in clear text "
                          "(for a server that speaks TLS from the first byte add 'tls_starttls "
                          "off'; for a trusted relay without TLS add 'tls off')");
    if (cmd(s, "STARTTLS") < 0 || flush(s, err) < 0)
        return -1;
    if (expect(s, 2, MC_TEMPFAIL, "server refused STARTTLS", err) < 0)
        return -1;
    if (s->reply.code != 220) {   /* RFC 3207 knows only 220 as "go ahead" */
        s->broken = true;
        return smtp_fail(s, MC_PROTOCOL, "server answered STARTTLS without 220", err);
    }
    /* RFC 3207 section 6: anything already buffered was injected before TLS. */
    if (s->in.len > 0 || (s->conn->ops->pending && s->conn->ops->pending(s->conn))) {
        s->broken = true;
        return mc_err_set(err, MC_PROTOCOL,
                          "server sent data after its STARTTLS reply and before the TLS "
                          "handshake (possible response injection); aborted");
    }
    if (s->conn->ops->starttls == NULL)
        return mc_err_set(err, MC_SOFTWARE, "transport cannot start TLS");
    if (s->conn->ops->starttls(s->conn, err) < 0) {
        s->broken = true;
        return -1;
    }
    s->tls_active = true;
    s->caps_plain = s->caps;
    if (s->conn->ops->tls_desc) {
        char line[160];
        snprintf(line, sizeof line, "TLS started: %s", s->conn->ops->tls_desc(s->conn));
        info(s, line);
    }
    return do_ehlo(s, err);
}

static int auth_send(struct smtp_session *s, const struct buf *raw, const char *prefix,
                     struct mc_err *err)
{
    struct buf b64;
    char shown[64];
    int r;

    buf_init(&b64, BUF_NOLIMIT);
    if (b64_encode((const unsigned char *)raw->data, raw->len, &b64) < 0) {
        buf_wipe(&b64);
        return mc_err_set(err, MC_OSERR, "out of memory");
    }
    snprintf(shown, sizeof shown, "%s%s<redacted>", prefix ? prefix : "", prefix ? " " : "");
    if (prefix)
        r = cmd_shown(s, shown, "%s %s", prefix, raw->len ? b64.data : "=");
    else
        r = cmd_shown(s, shown, "%s", b64.data);
    buf_wipe(&b64);
    if (r < 0)
        return mc_err_set(err, MC_OSERR, "out of memory");
    /* Nothing else is queued with it: the bytes to wipe are the whole buffer. */
    size_t sent = s->out.len;
    r = flush(s, err);
    mc_wipe(s->out.data, sent);
    return r;
}

static int auth_pick(struct smtp_session *s, enum sasl_mech *mech, struct mc_err *err)
{
    if (!(s->caps.flags & CAP_AUTH))
        return mc_err_set(err, MC_UNAVAIL,
                          "server offers no authentication (no AUTH in its EHLO reply); "
                          "set 'auth off' if it needs none");
    /* A client certificate with no password: the certificate is the credential. */
    if (!s->p->auth_forced && s->p->have_client_cert && sasl_offered(s->caps.auth, SASL_EXTERNAL)) {
        *mech = SASL_EXTERNAL;
        return 0;
    }
    if (!s->p->auth_forced)
        return sasl_choose(s->caps.auth, s->conn->ops->cbind != NULL && s->tls_active,
                           s->p->have_client_cert, mech, err);
    *mech = s->p->mech;
    char word[40];
    const char *name = sasl_mech_name(*mech);
    for (const char *p = s->caps.auth; *p;) {
        size_t n = strcspn(p, " ");
        if (n < sizeof word) {
            memcpy(word, p, n);
            word[n] = '\0';
            if (mc_streq_ci(word, name))
                return 0;
        }
        p += n + (p[n] == ' ');
    }
    return mc_err_set(err, MC_UNAVAIL, "server does not offer AUTH %s (it offers \"%s\")", name,
                      s->caps.auth);
}

static int auth_exchange(struct smtp_session *s, struct sasl *sasl, enum sasl_mech mech,
                         struct mc_err *err)
{
    struct buf resp, chal;
    int r, rounds = 0;

    buf_init(&resp, BUF_NOLIMIT);
    buf_init(&chal, REPLY_MAX);
    r = sasl_start(sasl, &resp, err);
    if (r < 0)
        goto out;
    if (r == 1) {
        char prefix[48];
        snprintf(prefix, sizeof prefix, "AUTH %s", sasl_mech_name(mech));
        r = auth_send(s, &resp, prefix, err) < 0 ? -1 : 0;
    }
    else
        r = cmd(s, "AUTH %s", sasl_mech_name(mech)) < 0 || flush(s, err) < 0 ? -1 : 0;
    while (r == 0 && (r = read_reply(s, err)) == 0 && s->reply.code == 334) {
        size_t len;
        const char *t;

        buf_wipe(&resp);
        buf_reset(&chal);
        /* The challenge is the whole text: no enhanced code is parsed out of base64. */
        t = s->reply.text.data;
        len = s->reply.text.len;
        if (++rounds > 10 || b64_decode(t, len, &chal) < 0) {
            r = mc_err_set(err, MC_PROTOCOL, "server sent a malformed AUTH challenge");
            s->broken = true;
            break;
        }
        r = sasl_step(sasl, (const unsigned char *)chal.data, chal.len, &resp, err);
        if (r == 0)
            r = auth_send(s, &resp, NULL, err);
    }
    if (r == 0 && s->reply.code == 235)
        r = sasl_done(sasl, err);
    else if (r == 0)
        r = smtp_fail(s, MC_NOPERM, "authentication failed", err);
out:
    buf_wipe(&resp);
    buf_wipe(&chal);
    return r;
}

static int do_auth(struct smtp_session *s, struct mc_err *err)
{
    struct sasl_cbind cb = {0};
    unsigned char cbdata[128];
    enum sasl_mech mech;
    struct sasl *sasl;
    int r;

    s->state = ST_AUTH;
    if (!s->tls_active && !(s->p->auth_forced && s->p->mech == SASL_EXTERNAL))
        return mc_err_set(err, MC_CONFIG,
                          "refusing to send credentials over an unencrypted connection; "
                          "turn on TLS ('tls on') or set 'auth off'");
    if (auth_pick(s, &mech, err) < 0)
        return -1;
    if (s->conn->ops->cbind)
        cb.len = s->conn->ops->cbind(s->conn, &cb.type, cbdata, sizeof cbdata);
    if (cb.len) {
        cb.data = cbdata;
        /* "y,,": we could bind, the server offered no -PLUS (a stripped list shows up). */
        cb.server_lacks_plus = strstr(s->caps.auth, "-PLUS") == NULL;
    } else {
        cb.type = NULL;
    }
    sasl = sasl_new(mech, &s->p->creds, &cb, err);
    if (sasl == NULL)
        return -1;
    r = auth_exchange(s, sasl, mech, err);
    if (sasl_note(sasl))
        info(s, sasl_note(sasl));
    if (r < 0 && err->cls == MC_PROTOCOL)
        mc_err_prefix(err, "AUTH %s", sasl_mech_name(mech));
    sasl_free(sasl);
    mc_wipe(cbdata, sizeof cbdata);
    if (r == 0)
        s->authenticated = true;
    return r;
}

int smtp_open(struct smtp_session *s, struct mc_err *err)
{
    s->tls_active = s->p->tls == SMTP_TLS_IMPLICIT;
    if (do_greeting(s, err) < 0 || do_ehlo(s, err) < 0)
        return -1;
    if (s->p->tls == SMTP_TLS_STARTTLS && do_starttls(s, err) < 0)
        return -1;
    if (s->p->auth && do_auth(s, err) < 0)
        return -1;
    s->state = ST_READY;
    return 0;
}

/* RFC 3461 xtext: '+', '=' and anything outside printable ASCII as +XX. */
static int add_xtext(struct buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int r = c < 33 || c > 126 || c == '+' || c == '='
                    ? buf_printf(b, "+%02X", c)
                    : buf_addch(b, (char)c);
        if (r < 0)
            return -1;
    }
    return 0;
}

static int queue_mail(struct smtp_session *s, const struct smtp_envelope *env, struct msg *m,
                      bool dsn)
{
    struct buf params;
    int r = 0;

    buf_init(&params, 4096);
    if (m && (s->caps.flags & CAP_SIZE))
        r |= buf_printf(&params, " SIZE=%lld", (long long)msg_size(m));
    if (m && (m->eightbit || s->p->want_8bitmime) && (s->caps.flags & CAP_8BITMIME))
        r |= buf_addstr(&params, " BODY=8BITMIME");
    if (env->smtputf8)
        r |= buf_addstr(&params, " SMTPUTF8");
    if (dsn && s->p->dsn_ret)
        r |= buf_printf(&params, " RET=%s", s->p->dsn_ret);
    if (dsn && s->p->dsn_envid) {
        r |= buf_addstr(&params, " ENVID=");
        r |= add_xtext(&params, s->p->dsn_envid);
    }
    if (r == 0)
        r = cmd(s, "MAIL FROM:<%s>%s", env->from, params.data);
    buf_release(&params);
    return r;
}

static int queue_rcpt(struct smtp_session *s, const struct smtp_rcpt *rc, bool dsn)
{
    if (dsn && s->p->dsn_notify)
        return cmd(s, "RCPT TO:<%s> NOTIFY=%s", rc->addr, s->p->dsn_notify);
    return cmd(s, "RCPT TO:<%s>", rc->addr);
}

/* Decide whether DSN parameters go out, and refuse what the server cannot carry. */
static int check_extensions(struct smtp_session *s, const struct smtp_envelope *env,
                            struct msg *m, bool *dsn, struct mc_err *err)
{
    bool want_dsn = s->p->dsn_notify || s->p->dsn_ret || s->p->dsn_envid;

    *dsn = want_dsn && (s->caps.flags & CAP_DSN);
    if (want_dsn && !*dsn) {
        if (s->p->dsn_required)
            return mc_err_set(err, MC_UNAVAIL, "server does not offer DSN, and 'dsn_required' is on");
        warn(s, "server does not offer DSN; sending without NOTIFY/RET/ENVID");
    }
    if (env->smtputf8 && !(s->caps.flags & CAP_SMTPUTF8))
        return mc_err_set(err, MC_DATAERR,
                          "the message needs SMTPUTF8 (non-ASCII addresses or headers), "
                          "which the server does not offer");
    if (m->eightbit && !(s->caps.flags & CAP_8BITMIME)) {
        info(s, "server lacks 8BITMIME; converting to quoted-printable");
        if (msg_downgrade_7bit(m, err) < 0)
            return -1;
    }
    /* After any conversion: quoted-printable makes a message larger. */
    if ((s->caps.flags & CAP_SIZE) && s->caps.size && (unsigned long long)msg_size(m) > s->caps.size)
        return mc_err_set(err, MC_UNAVAIL, "message is %lld bytes, the server accepts at most %llu",
                          (long long)msg_size(m), s->caps.size);
    return 0;
}

static void rcpt_record(struct smtp_session *s, struct smtp_rcpt *rc)
{
    int c = s->reply.code;

    rc->code = c;
    reply_summary(&s->reply, rc->reply, sizeof rc->reply);
    rc->state = c / 100 == 2 ? RCPT_OK : c / 100 == 4 ? RCPT_TEMPFAIL : RCPT_PERMFAIL;
}

static void rset(struct smtp_session *s)
{
    struct mc_err ignored;

    if (s->broken)
        return;
    s->state = ST_RSET;
    if (cmd(s, "RSET") < 0 || flush(s, &ignored) < 0 || read_reply(s, &ignored) < 0)
        s->broken = true;
}

/* Why not every recipient was accepted: temporary if any refusal was. */
static int no_recipients(struct smtp_session *s, const struct smtp_envelope *env,
                         struct mc_err *err)
{
    const struct smtp_rcpt *first = NULL;
    size_t refused = 0;
    bool temp = false;

    (void)s;
    for (size_t i = 0; i < env->nrcpts; i++) {
        const struct smtp_rcpt *rc = &env->rcpts[i];
        if (rc->state != RCPT_TEMPFAIL && rc->state != RCPT_PERMFAIL)
            continue;
        temp |= rc->state == RCPT_TEMPFAIL;
        refused++;
        if (first == NULL)
            first = rc;
    }
    if (first == NULL)
        return mc_err_set(err, MC_SOFTWARE, "no recipient was refused");
    if (refused == env->nrcpts && refused == 1)
        return mc_err_reply(err, temp ? MC_TEMPFAIL : MC_NOUSER, first->code, "",
                            "server refused the recipient <%s>: %s", first->addr, first->reply);
    return mc_err_reply(err, temp ? MC_TEMPFAIL : MC_NOUSER, first->code, "",
                        "server refused %zu of %zu recipients (first: <%s>: %s)", refused,
                        env->nrcpts, first->addr, first->reply);
}

/*
 * MAIL and the RCPTs, pipelined when the server allows (RFC 2920), with
 * DATA in the same write when the message goes out whatever some recipients
 * answer.  Returns the number of accepted recipients, or -1.
 */
static int envelope(struct smtp_session *s, struct smtp_envelope *env, struct msg *m,
                    bool dsn, bool with_data, struct mc_err *err)
{
    bool pipe = s->caps.flags & CAP_PIPELINING;
    int accepted = 0, mail_ok;

    s->state = ST_MAIL;
    if (queue_mail(s, env, m, dsn) < 0)
        return mc_err_set(err, MC_OSERR, "out of memory");
    if (!pipe && (flush(s, err) < 0 || read_reply(s, err) < 0))
        return -1;
    for (size_t i = 0; pipe && i < env->nrcpts; i++)
        if (queue_rcpt(s, &env->rcpts[i], dsn) < 0)
            return mc_err_set(err, MC_OSERR, "out of memory");
    if (pipe && with_data && cmd(s, "DATA") < 0)
        return mc_err_set(err, MC_OSERR, "out of memory");
    if (pipe && (flush(s, err) < 0 || read_reply(s, err) < 0))
        return -1;
    mail_ok = s->reply.code / 100 == 2;
    if (!mail_ok) {
        smtp_fail(s, MC_UNAVAIL, "server refused the sender", err);
        if (!pipe)
            return -1;
    }
    s->state = ST_RCPT;
    for (size_t i = 0; i < env->nrcpts; i++) {
        struct smtp_rcpt *rc = &env->rcpts[i];
        if (!pipe && (queue_rcpt(s, rc, dsn) < 0 || flush(s, err) < 0))
            return -1;
        if (read_reply(s, err) < 0)
            return -1;
        rcpt_record(s, rc);
        accepted += rc->state == RCPT_OK;
    }
    if (!mail_ok) {
        struct mc_err keep = *err;
        if (pipe && with_data && read_reply(s, err) == 0 && s->reply.code == 354)
            s->broken = true;   /* never send a message the sender was refused for */
        *err = keep;
        return -1;
    }
    return accepted;
}

/*
 * A piece of the body: small ones join the output buffer (a small message
 * goes out with its final dot and QUIT in one write), large ones are
 * written as they are, with no copy.
 */
static int body_piece(struct smtp_session *s, const char *p, size_t n, struct mc_err *err)
{
    if (s->out.len + n <= BODY_CHUNK)
        return buf_add(&s->out, p, n) < 0 ? mc_err_set(err, MC_OSERR, "out of memory") : 0;
    if (flush(s, err) < 0 || s->conn->ops->write(s->conn, p, n, err) < 0)
        return -1;
    return 0;
}

static int send_body(struct smtp_session *s, struct msg *m, bool bdat, struct mc_err *err)
{
    struct msg_reader rd;
    const char *p;
    ssize_t n = 0;
    int r = 0;

    msg_reader_init(&rd, m, bdat ? 0 : MSG_RD_STUFF);
    if (bdat)
        r = cmd(s, "BDAT %lld LAST", (long long)msg_size(m));
    while (r == 0 && (n = msg_reader_next(&rd, &p, err)) > 0)
        r = body_piece(s, p, (size_t)n, err);
    msg_reader_done(&rd);
    if (r < 0 || n < 0) {
        s->broken = true;   /* the server has part of a message: never let it end */
        return -1;
    }
    if (!bdat && buf_add(&s->out, ".\r\n", 3) < 0)
        return mc_err_set(err, MC_OSERR, "out of memory");
    if (!bdat)
        trace(s, SMTP_TRACE_CLIENT, ".", 1);
    /* The last message of a session: QUIT rides with the end of data (RFC 2920). */
    if (s->quit_after && (s->caps.flags & CAP_PIPELINING)) {
        if (cmd(s, "QUIT") < 0)
            return mc_err_set(err, MC_OSERR, "out of memory");
        s->quit_sent = true;
    }
    return 0;
}

static int lost_after_data(struct mc_err *err)
{
    char was[MC_ERR_MSG_MAX];

    if (err->cls != MC_TEMPFAIL && err->cls != MC_PROTOCOL)
        return -1;
    memcpy(was, err->msg, sizeof was);
    return mc_err_set(err, MC_TEMPFAIL,
                      "connection lost after the message was sent but before the server "
                      "confirmed it; the message may have been delivered (%.300s)", was);
}

/*
 * LMTP (RFC 2033): after the data, one reply per accepted recipient, in
 * order.  Each becomes that recipient's result; the message counts as sent
 * when at least one recipient took it.
 */
static int lmtp_replies(struct smtp_session *s, struct smtp_envelope *env, struct mc_err *err)
{
    const struct smtp_rcpt *refused = NULL;
    int delivered = 0;

    for (size_t i = 0; i < env->nrcpts; i++) {
        struct smtp_rcpt *rc = &env->rcpts[i];
        if (rc->state != RCPT_OK)
            continue;
        if (read_reply(s, err) < 0)
            return lost_after_data(err);
        rcpt_record(s, rc);
        if (rc->state == RCPT_OK)
            delivered++;
        else if (refused == NULL)
            refused = rc;
        if (delivered == 1 && rc->state == RCPT_OK)
            reply_summary(&s->reply, s->final_reply, sizeof s->final_reply);
    }
    if (delivered > 0)
        return 0;
    return mc_err_reply(err, refused && refused->state == RCPT_TEMPFAIL ? MC_TEMPFAIL : MC_NOUSER,
                        refused ? refused->code : 0, "", "server delivered to no recipient (%s)",
                        refused ? refused->reply : "?");
}

static int final_reply(struct smtp_session *s, struct smtp_envelope *env, struct mc_err *err)
{
    s->state = ST_BODY;
    s->data_sent = true;
    if (s->p->lmtp)
        return lmtp_replies(s, env, err);
    if (read_reply(s, err) < 0)
        return lost_after_data(err);
    reply_summary(&s->reply, s->final_reply, sizeof s->final_reply);
    if (s->reply.code / 100 != 2)
        return smtp_fail(s, MC_UNAVAIL, "server refused the message", err);
    return 0;
}

int smtp_send(struct smtp_session *s, struct smtp_envelope *env, struct msg *m,
              struct mc_err *err)
{
    bool bdat = s->p->chunking && (s->caps.flags & CAP_CHUNKING);
    bool data_piped = !bdat && s->p->partial_delivery && (s->caps.flags & CAP_PIPELINING);
    bool dsn;
    int accepted;

    s->data_sent = false;
    s->final_reply[0] = '\0';
    if (check_extensions(s, env, m, &dsn, err) < 0)
        return -1;
    accepted = envelope(s, env, m, dsn, data_piped, err);
    if (accepted < 0) {
        rset(s);
        return -1;
    }
    if (accepted == 0 || (accepted < (int)env->nrcpts && !s->p->partial_delivery)) {
        if (data_piped && read_reply(s, err) == 0 && s->reply.code == 354)
            s->broken = true;   /* a 354 with nobody to deliver to: drop, never send */
        no_recipients(s, env, err);
        if (accepted > 0)
            mc_err_set(err, err->cls, "some recipients were refused and 'partial_delivery' is "
                       "off; nothing was sent");
        rset(s);
        return -1;
    }
    s->state = ST_DATA;
    if (!bdat) {
        if (!data_piped && (cmd(s, "DATA") < 0 || flush(s, err) < 0))
            return -1;
        if (expect(s, 3, MC_UNAVAIL, "server refused DATA", err) < 0) {
            rset(s);
            return -1;
        }
    }
    if (send_body(s, m, bdat, err) < 0 || flush(s, err) < 0)
        return -1;
    return final_reply(s, env, err);
}

int smtp_verify(struct smtp_session *s, struct smtp_envelope *env, struct mc_err *err)
{
    bool dsn = false;
    int accepted;

    accepted = envelope(s, env, NULL, dsn, false, err);
    rset(s);
    if (accepted < 0)
        return -1;
    if (accepted < (int)env->nrcpts)
        return no_recipients(s, env, err);
    return 0;
}

void smtp_quit(struct smtp_session *s)
{
    struct mc_err ignored;

    if (s->broken)
        return;
    s->state = ST_QUIT;
    if (s->quit_sent || (cmd(s, "QUIT") == 0 && flush(s, &ignored) == 0))
        read_reply(s, &ignored);
    s->broken = true;
}
