/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * SASL client mechanisms, written for mailcar (no GNU SASL): PLAIN, LOGIN,
 * CRAM-MD5, SCRAM-SHA-1/-256 and their -PLUS variants, XOAUTH2, OAUTHBEARER,
 * EXTERNAL.  Pure functions over buffers: the SMTP engine does the base64
 * and the AUTH/334/235 exchange; this module only turns challenges into
 * responses.  Secrets are wiped when a context is freed.
 */
#ifndef MC_SASL_H
#define MC_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

/* Strongest first: the order sasl_choose prefers. */
enum sasl_mech {
    SASL_SCRAM_SHA_256_PLUS,
    SASL_SCRAM_SHA_1_PLUS,
    SASL_SCRAM_SHA_256,
    SASL_SCRAM_SHA_1,
    SASL_PLAIN,
    SASL_LOGIN,
    SASL_CRAM_MD5,
    SASL_EXTERNAL,
    SASL_OAUTHBEARER,
    SASL_XOAUTH2,
    SASL_NMECH
};

struct sasl_creds {
    const char *user;      /* authentication identity (or OAuth user) */
    const char *secret;    /* password, or OAuth access token */
    const char *authzid;   /* authorization identity, NULL or "" for none */
    const char *host;      /* for OAUTHBEARER's host= */
    int port;              /* for OAUTHBEARER's port= */
};

/* TLS channel binding for the -PLUS mechanisms; type NULL when unavailable. */
struct sasl_cbind {
    const char *type;              /* "tls-exporter" or "tls-unique" */
    const unsigned char *data;
    size_t len;
};

struct sasl;

const char *sasl_mech_name(enum sasl_mech m);
/* Case-insensitive; returns -1 for an unknown name. */
int sasl_mech_parse(const char *name, enum sasl_mech *out);
/* True for mechanisms that send a reusable secret (PLAIN, LOGIN, OAuth). */
bool sasl_mech_sends_secret(enum sasl_mech m);

/*
 * Pick the strongest mechanism the server offers (`offered`: the EHLO AUTH
 * words, space separated) that can run: -PLUS only with a channel binding,
 * EXTERNAL only when `have_client_cert`, OAuth mechanisms never (they must be
 * chosen explicitly).  Returns -1 with MC_UNAVAIL listing both sides when
 * nothing fits.
 */
int sasl_choose(const char *offered, bool have_cbind, bool have_client_cert,
                enum sasl_mech *out, struct mc_err *err);

/* NULL with err set (MC_CONFIG for missing user/secret, MC_SOFTWARE ...). */
struct sasl *sasl_new(enum sasl_mech m, const struct sasl_creds *c,
                      const struct sasl_cbind *cb, struct mc_err *err);

/*
 * Initial response: returns 1 and fills out (raw bytes, not base64) when the
 * mechanism has one (an empty response is 1 with out->len == 0), 0 when the
 * client must wait for the first challenge.
 */
int sasl_start(struct sasl *s, struct buf *out, struct mc_err *err);
/*
 * Answer a decoded server challenge.  Returns 0 and fills out, or -1 with
 * MC_PROTOCOL when the challenge is malformed or the SCRAM server signature
 * does not verify (the server is not who it claims).
 */
int sasl_step(struct sasl *s, const unsigned char *chal, size_t len, struct buf *out,
              struct mc_err *err);
/* After 235: -1 (MC_PROTOCOL) if the mechanism expected to verify the server and did not. */
int sasl_done(struct sasl *s, struct mc_err *err);
void sasl_free(struct sasl *s);

/* Base64 (RFC 4648, no line breaks). decode returns -1 on malformed input. */
int b64_encode(const unsigned char *in, size_t len, struct buf *out);
int b64_decode(const char *in, size_t len, struct buf *out);

#endif
