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
    const char *user;    /* authentication identity (or OAuth user) */
    const char *secret;  /* password, or OAuth access token */
    const char *authzid; /* authorization identity, NULL or "" for none */
    const char *host;    /* for OAUTHBEARER's host= */
    int port;            /* for OAUTHBEARER's port= */
};

/* TLS channel binding for the -PLUS mechanisms; type NULL when unavailable. */
struct sasl_cbind {
    const char *type; /* "tls-exporter" or "tls-unique" */
    const unsigned char *data;
    size_t len;
    /*
     * For plain SCRAM only: set when type is known but the server offered no
     * -PLUS mechanism.  The client then sends the gs2 flag "y" (RFC 5802
     * section 6), so a server that does support -PLUS, and so sees that its
     * -PLUS offer was stripped on the way, refuses.  Left false, the flag is
     * "n": right when the user chose plain SCRAM although -PLUS was offered.
     */
    bool server_lacks_plus;
};

struct sasl;

const char *sasl_mech_name(enum sasl_mech m);
/* Case-insensitive; returns -1 for an unknown name. */
int sasl_mech_parse(const char *name, enum sasl_mech *out);
/* True for mechanisms that send a reusable secret (PLAIN, LOGIN, OAuth). */
bool sasl_mech_sends_secret(enum sasl_mech m);
/* Whether the EHLO AUTH words (space separated) include m, case-insensitively. */
bool sasl_offered(const char *offered, enum sasl_mech m);

/*
 * Pick the strongest mechanism the server offers (`offered`: the EHLO AUTH
 * words, space separated) that can run: -PLUS only with a channel binding,
 * EXTERNAL only when `have_client_cert`, OAuth mechanisms never (they must be
 * chosen explicitly).  Returns -1 with MC_UNAVAIL listing both sides when
 * nothing fits.
 */
int sasl_choose(const char *offered, bool have_cbind, bool have_client_cert, enum sasl_mech *out,
                struct mc_err *err);

/*
 * NULL with err set (MC_CONFIG for missing user/secret, MC_SOFTWARE ...).
 * The context keeps its own copies of the credentials and wipes them in
 * sasl_free; c and cb need not outlive the call.  Mechanisms and what they
 * need: PLAIN, LOGIN, CRAM-MD5 and SCRAM a user and a password; XOAUTH2 a
 * user and a token; OAUTHBEARER a token (user, host and port when known);
 * EXTERNAL nothing (authzid when set); -PLUS a channel binding.
 *
 * SCRAM prepares the user name and password with SASLprep (RFC 4013) as far
 * as is practical without Unicode tables: ASCII passes unchanged, non-ASCII
 * spaces become U+0020, the "mapped to nothing" characters are removed, and
 * controls, private-use characters, non-characters and the other prohibited
 * ranges are refused (MC_CONFIG), as is invalid UTF-8.  Not done: NFKC
 * normalisation, the bidirectional check and the unassigned-code-point
 * check, so a non-ASCII password must already be in NFKC form.
 */
struct sasl *sasl_new(enum sasl_mech m, const struct sasl_creds *c, const struct sasl_cbind *cb,
                      struct mc_err *err);

/*
 * Initial response: returns 1 and fills out (raw bytes, not base64) when the
 * mechanism has one (an empty response is 1 with out->len == 0), 0 when the
 * client must wait for the first challenge.
 */
int sasl_start(struct sasl *s, struct buf *out, struct mc_err *err);
/*
 * Answer a decoded server challenge.  Returns 0 and fills out, or -1 with
 * MC_PROTOCOL when the challenge is malformed or the SCRAM server signature
 * does not verify (the server is not who it claims).  The messages describe
 * the server's fault without naming the mechanism: the caller adds that.
 *
 * Both functions empty out first; on failure out is wiped and left empty.
 * An empty challenge before anything was sent asks for the initial
 * response (RFC 4422 section 5), so an engine that does not send initial
 * responses may skip sasl_start.  Per mechanism:
 *   LOGIN        a prompt whose first word is "user" (Username:, User Name)
 *                gets the user name, "pass" the password, matched without
 *                regard to case; any other prompt gets the user name first,
 *                then the password, the order every LOGIN server asks in.
 *   SCRAM        the server-final message (v=...) is verified and answered
 *                with an empty response.  A server that puts it on the 235
 *                line instead: pass it here and ignore the response.
 *   XOAUTH2      an error challenge (JSON) gets the empty response,
 *   OAUTHBEARER  "\x01"; the server then sends 5xx.  See sasl_note.
 */
int sasl_step(struct sasl *s, const unsigned char *chal, size_t len, struct buf *out,
              struct mc_err *err);
/* After 235: -1 (MC_PROTOCOL) if the mechanism expected to verify the server and did not. */
int sasl_done(struct sasl *s, struct mc_err *err);
/*
 * A remark worth a line in the verbose log, or NULL: a SCRAM iteration
 * count below RFC 7677's 4096, the JSON an OAuth server sent with its
 * error.  Printable ASCII only; valid until the next call on s.
 */
const char *sasl_note(const struct sasl *s);
void sasl_free(struct sasl *s);

/* Largest SCRAM iteration count accepted: more is a server making us burn CPU. */
#define SASL_SCRAM_MAX_ITER 10000000UL

/*
 * Tests and fuzzing only.  Fix the SCRAM client nonce (1 to 64 printable
 * ASCII characters, no ',') so published vectors reproduce; call before the
 * first message.  Returns -1 for a bad nonce or a non-SCRAM context.
 */
int sasl_scram_set_nonce_for_test(struct sasl *s, const char *nonce);
/* Lower the iteration cap so a fuzzer does not spend its time in PBKDF2. */
void sasl_scram_set_max_iter_for_test(struct sasl *s, unsigned long max);

/*
 * Base64 (RFC 4648, standard alphabet, padded, no line breaks), appended
 * to out.  Decoding is strict: only the alphabet, length a multiple of 4,
 * '=' only as the final padding, unused bits zero; no whitespace.  Both
 * return -1 (out unchanged) on malformed input or when out would pass its
 * maximum.
 */
int b64_encode(const unsigned char *in, size_t len, struct buf *out);
int b64_decode(const char *in, size_t len, struct buf *out);

#endif
