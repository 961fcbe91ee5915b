/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * libFuzzer target for sasl.c: hostile server challenges fed to SASL
 * contexts, hostile text to b64_decode and sasl_choose.
 *
 * Input: a selector byte, then the challenges, already base64-decoded as the
 * SMTP engine passes them, separated by '\n'.  Selector '0'..'8' (other
 * bytes: modulo 9):
 *   0 SCRAM-SHA-256   1 SCRAM-SHA-1   2 SCRAM-SHA-256-PLUS   3 CRAM-MD5
 *   4 LOGIN   5 XOAUTH2   6 OAUTHBEARER   7 b64_decode   8 sasl_choose
 * SCRAM runs with the client nonce "fuzznonce", password "pencil", the
 * channel binding FUZZ_CB below and at most 64 iterations, so the seeds in
 * corpus/sasl can carry complete, verifying exchanges.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "sasl.h"

#define FUZZ_MAX_ITER 64
#define FUZZ_CB "0123456789abcdef0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum sasl_mech sel_mech[] = {
    SASL_SCRAM_SHA_256, SASL_SCRAM_SHA_1, SASL_SCRAM_SHA_256_PLUS, SASL_CRAM_MD5,
    SASL_LOGIN,         SASL_XOAUTH2,     SASL_OAUTHBEARER,
};

/* A strict decoder accepts one spelling per byte string: decoding then encoding is the identity. */
static void fuzz_b64(const uint8_t *data, size_t size)
{
    struct buf d, e;

    buf_init(&d, 1 << 20);
    buf_init(&e, 1 << 21);
    if (b64_decode((const char *)data, size, &d) == 0) {
        if (b64_encode((const unsigned char *)d.data, d.len, &e) != 0 || e.len != size ||
            memcmp(e.data, data, size) != 0)
            abort();
    }
    buf_release(&d);
    buf_release(&e);
}

static void fuzz_choose(const uint8_t *data, size_t size)
{
    char *offer = malloc(size + 1);
    struct mc_err err;
    enum sasl_mech m;

    if (offer == NULL)
        return;
    memcpy(offer, data, size);
    offer[size] = '\0';
    for (int i = 0; i < 4; i++)
        if (sasl_choose(offer, i & 1, i & 2, &m, &err) == 0 && !sasl_offered(offer, m))
            abort();
    free(offer);
}

static struct sasl *fuzz_context(enum sasl_mech m)
{
    static const struct sasl_cbind cb = {
        .type = "tls-exporter", .data = (const unsigned char *)FUZZ_CB, .len = sizeof FUZZ_CB - 1};
    struct sasl_creds c = {.user = "user", .secret = "pencil", .host = "mx.example", .port = 587};
    struct mc_err err;
    struct sasl *s = sasl_new(m, &c, &cb, &err);

    if (s == NULL)
        abort();
    if (m == SASL_SCRAM_SHA_256 || m == SASL_SCRAM_SHA_1 || m == SASL_SCRAM_SHA_256_PLUS) {
        if (sasl_scram_set_nonce_for_test(s, "fuzznonce") != 0)
            abort();
        sasl_scram_set_max_iter_for_test(s, FUZZ_MAX_ITER);
    }
    return s;
}

/* Feed each '\n'-separated challenge until the mechanism gives up. */
static void fuzz_mech(enum sasl_mech m, const uint8_t *data, size_t size)
{
    struct sasl *s = fuzz_context(m);
    const uint8_t *p = data, *end = data + size, *nl;
    struct mc_err err;
    struct buf out;

    buf_init(&out, 1 << 16);
    if (sasl_start(s, &out, &err) < 0)
        abort();
    for (;;) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (sasl_step(s, p, (size_t)((nl ? nl : end) - p), &out, &err) != 0)
            break;
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    (void)sasl_done(s, &err);
    (void)sasl_note(s);
    buf_wipe(&out);
    sasl_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned sel;

    if (size == 0)
        return 0;
    sel = data[0] >= '0' && data[0] <= '8' ? (unsigned)(data[0] - '0') : data[0] % 9u;
    if (sel == 7)
        fuzz_b64(data + 1, size - 1);
    else if (sel == 8)
        fuzz_choose(data + 1, size - 1);
    else
        fuzz_mech(sel_mech[sel], data + 1, size - 1);
    return 0;
}
