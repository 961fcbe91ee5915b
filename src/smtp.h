/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The SMTP protocol engine: an explicit state machine over a struct conn.
 * One function sends what a state needs, one decides the next state from
 * the reply; every failure goes through one abort path that records a class,
 * the reply and a reason.  It batches each protocol turn into one write
 * (MAIL + RCPTs + DATA under PIPELINING, body + "." + QUIT) and never sees a
 * socket or OpenSSL.
 */
#ifndef MC_SMTP_H
#define MC_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "conn.h"
#include "err.h"
#include "msg.h"
#include "reply.h"
#include "sasl.h"

enum smtp_tls_mode {
    SMTP_TLS_NONE,       /* plain text, no STARTTLS */
    SMTP_TLS_STARTTLS,   /* STARTTLS required */
    SMTP_TLS_IMPLICIT,   /* the transport is TLS from the first byte */
};

/* INFO lines are shown with -v; WARN lines always reach stderr. */
enum smtp_trace_dir { SMTP_TRACE_CLIENT, SMTP_TRACE_SERVER, SMTP_TRACE_INFO, SMTP_TRACE_WARN };

struct smtp_params {
    const char *helo;                /* EHLO/HELO name */
    enum smtp_tls_mode tls;
    bool auth;                       /* authenticate */
    bool auth_forced;                /* mech below was chosen by the user */
    enum sasl_mech mech;
    struct sasl_creds creds;
    bool have_client_cert;
    bool partial_delivery;           /* deliver to the accepted recipients when some fail */
    bool dsn_required;               /* refuse to send without DSN when DSN options given */
    bool chunking;                   /* use BDAT when the server offers CHUNKING */
    bool lmtp;                       /* LHLO, and one reply per recipient after the data */
    const char *dsn_notify;          /* NOTIFY= value or NULL */
    const char *dsn_ret;             /* RET= value (FULL/HDRS) or NULL */
    const char *dsn_envid;           /* ENVID= value (xtext-encoded here) or NULL */
    bool want_8bitmime;              /* -B 8BITMIME or 8-bit content */
    /* Called for every line that crosses the wire (AUTH payloads redacted). */
    void (*trace)(void *arg, enum smtp_trace_dir dir, const char *line, size_t len);
    void *trace_arg;
};

enum rcpt_state { RCPT_PENDING, RCPT_OK, RCPT_TEMPFAIL, RCPT_PERMFAIL };

struct smtp_rcpt {
    const char *addr;
    enum rcpt_state state;
    int code;
    char reply[256];                 /* one-line summary of the server's answer */
};

struct smtp_envelope {
    const char *from;                /* "" for the null sender */
    struct smtp_rcpt *rcpts;
    size_t nrcpts;
    bool smtputf8;                   /* an address or header needs SMTPUTF8 */
};

struct smtp_session {
    struct conn *conn;
    const struct smtp_params *p;
    struct caps caps;
    struct caps caps_plain;          /* what the server offered before STARTTLS */
    struct buf in;                   /* bytes read but not yet parsed */
    struct buf out;                  /* one protocol turn, written at once */
    struct reply reply;
    char greeting[256];
    char final_reply[256];           /* summary of the last message's final reply */
    bool tls_active;
    bool authenticated;
    bool data_sent;                  /* the final "." (or BDAT LAST) went out */
    bool broken;                     /* the connection can no longer be used */
    bool quit_after;                 /* set by the caller before the session's last message */
    bool quit_sent;
    int state;
};

void smtp_init(struct smtp_session *s, struct conn *c, const struct smtp_params *p);
void smtp_release(struct smtp_session *s);

/* Greeting, EHLO (HELO fallback), STARTTLS and the second EHLO, AUTH. */
int smtp_open(struct smtp_session *s, struct mc_err *err);

/*
 * One transaction: MAIL, RCPTs, DATA or BDAT, the message, its final reply.
 * Fills each rcpt's state.  Returns 0 when the server took the message for
 * at least one recipient (check rcpt states for the others), -1 otherwise.
 * A failure after which the session is still usable leaves s->broken false
 * (RSET has been sent), so the next message may follow.
 */
int smtp_send(struct smtp_session *s, struct smtp_envelope *env, struct msg *m,
              struct mc_err *err);

/* -bv: MAIL and RCPTs, then RSET; fills rcpt states. */
int smtp_verify(struct smtp_session *s, struct smtp_envelope *env, struct mc_err *err);

/* QUIT and wait briefly for its reply (errors ignored: the work is done). */
void smtp_quit(struct smtp_session *s);

const char *smtp_state_name(int state);

#endif
