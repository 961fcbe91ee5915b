/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Unit tests for sasl.c: the exact bytes of every mechanism, the RFC 5802
 * and RFC 7677 SCRAM vectors, a small SCRAM server of our own for the
 * cases the RFCs have no vector for (-PLUS, "y", escaping, SASLprep),
 * malformed challenges, base64 and mechanism choice.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"
#include "err.h"
#include "sasl.h"

#define OUT_MAX 65536

/* --- helpers ------------------------------------------------------------ */

static struct sasl *new_ok(enum sasl_mech m, const char *user, const char *secret)
{
    struct sasl_creds c = {.user = user, .secret = secret};
    struct mc_err err = {0};
    struct sasl *s = sasl_new(m, &c, NULL, &err);

    if (s == NULL)
        fail_msg("sasl_new(%s): %s", sasl_mech_name(m), err.msg);
    return s;
}

static void expect_new_fails(enum sasl_mech m, const struct sasl_creds *c,
                             const struct sasl_cbind *cb, enum mc_class cls, const char *msg)
{
    struct mc_err err = {0};

    assert_null(sasl_new(m, c, cb, &err));
    assert_int_equal(err.cls, cls);
    if (msg)
        assert_string_equal(err.msg, msg);
}

/* sasl_start must return `want` and, when 1, exactly these bytes. */
static void expect_start(struct sasl *s, int want, const void *bytes, size_t len)
{
    struct buf out;
    struct mc_err err = {0};

    buf_init(&out, OUT_MAX);
    assert_int_equal(sasl_start(s, &out, &err), want);
    assert_int_equal(out.len, len);
    if (len)
        assert_memory_equal(out.data, bytes, len);
    buf_wipe(&out);
}

static void expect_step(struct sasl *s, const void *chal, size_t clen, const void *resp,
                        size_t rlen)
{
    struct buf out;
    struct mc_err err = {0};

    buf_init(&out, OUT_MAX);
    if (sasl_step(s, chal, clen, &out, &err) != 0)
        fail_msg("sasl_step: %s", err.msg);
    assert_int_equal(out.len, rlen);
    if (rlen)
        assert_memory_equal(out.data, resp, rlen);
    buf_wipe(&out);
}

static void expect_step_str(struct sasl *s, const char *chal, const char *resp)
{
    expect_step(s, chal, strlen(chal), resp, strlen(resp));
}

/* The step must fail with cls; msg (when not NULL) is the whole message. */
static void expect_step_fails(struct sasl *s, const void *chal, size_t clen, enum mc_class cls,
                              const char *msg)
{
    struct buf out;
    struct mc_err err = {0};

    buf_init(&out, OUT_MAX);
    assert_int_equal(sasl_step(s, chal, clen, &out, &err), -1);
    assert_int_equal(err.cls, cls);
    assert_int_equal(out.len, 0);
    if (msg)
        assert_string_equal(err.msg, msg);
    buf_wipe(&out);
}

static void expect_step_fails_str(struct sasl *s, const char *chal, enum mc_class cls,
                                  const char *msg)
{
    expect_step_fails(s, chal, strlen(chal), cls, msg);
}

/* --- a SCRAM server for cross-checks -------------------------------------- */

struct fake_server {
    const EVP_MD *md;
    const char *password; /* already prepared */
    const char *salt;     /* raw bytes */
    int iter;
    const unsigned char *cbdata;
    size_t cblen;
    char gs2[128];   /* what the client must echo in c= */
    char bare[512];  /* client-first-message-bare */
    char first[512]; /* server-first-message */
};

static void fake_first(struct fake_server *f, const char *client_first, char *user_out)
{
    const char *p = strchr(client_first, ','), *bare, *r;
    struct buf salt;

    assert_non_null(p);
    p = strchr(p + 1, ',');
    assert_non_null(p);
    bare = p + 1;
    snprintf(f->gs2, sizeof f->gs2, "%.*s", (int)(bare - client_first), client_first);
    snprintf(f->bare, sizeof f->bare, "%s", bare);
    assert_memory_equal(bare, "n=", 2);
    r = strstr(bare, ",r=");
    assert_non_null(r);
    if (user_out)
        snprintf(user_out, 64, "%.*s", (int)(r - bare - 2), bare + 2);
    buf_init(&salt, 1024);
    assert_int_equal(b64_encode((const unsigned char *)f->salt, strlen(f->salt), &salt), 0);
    snprintf(f->first, sizeof f->first, "r=%s%s,s=%s,i=%d", r + 3, "S3rv3r", salt.data, f->iter);
    buf_release(&salt);
}

static void mac(const EVP_MD *md, const unsigned char *key, size_t klen, const void *d, size_t n,
                unsigned char *out)
{
    unsigned int len;

    assert_non_null(HMAC(md, key, (int)klen, d, n, out, &len));
}

/*
 * Check c= and the client proof as a server would (ClientKey = proof XOR
 * ClientSignature, H(ClientKey) == StoredKey), then write the server-final.
 */
static void fake_final(struct fake_server *f, const char *client_final, char *final_out)
{
    unsigned char salted[64], ckey[64], stored[64], csig[64], skey[64], ssig[64], h[64];
    const char *p = strstr(client_final, ",p=");
    size_t n = (size_t)EVP_MD_size(f->md);
    char authmsg[2048];
    struct buf c, proof, v;

    assert_non_null(p);
    buf_init(&c, 4096);
    buf_add(&c, f->gs2, strlen(f->gs2));
    buf_add(&c, f->cbdata, f->cblen);
    buf_init(&v, 4096);
    buf_addstr(&v, "c=");
    b64_encode((const unsigned char *)c.data, c.len, &v);
    assert_memory_equal(client_final, v.data, v.len);
    snprintf(authmsg, sizeof authmsg, "%s,%s,%.*s", f->bare, f->first, (int)(p - client_final),
             client_final);
    assert_int_equal(PKCS5_PBKDF2_HMAC(f->password, (int)strlen(f->password),
                                       (const unsigned char *)f->salt, (int)strlen(f->salt),
                                       f->iter, f->md, (int)n, salted),
                     1);
    mac(f->md, salted, n, "Client Key", 10, ckey);
    EVP_Digest(ckey, n, stored, NULL, f->md, NULL);
    mac(f->md, stored, n, authmsg, strlen(authmsg), csig);
    buf_init(&proof, 256);
    assert_int_equal(b64_decode(p + 3, strlen(p + 3), &proof), 0);
    assert_int_equal(proof.len, n);
    for (size_t i = 0; i < n; i++)
        ckey[i] = (unsigned char)proof.data[i] ^ csig[i];
    EVP_Digest(ckey, n, h, NULL, f->md, NULL);
    assert_memory_equal(h, stored, n);
    mac(f->md, salted, n, "Server Key", 10, skey);
    mac(f->md, skey, n, authmsg, strlen(authmsg), ssig);
    buf_reset(&v);
    buf_addstr(&v, "v=");
    b64_encode(ssig, n, &v);
    snprintf(final_out, 256, "%s", v.data);
    buf_release(&c);
    buf_release(&v);
    buf_release(&proof);
}

/* Run a whole SCRAM exchange against the fake server; first_out (256) gets the client-first. */
static void scram_roundtrip(struct sasl *s, struct fake_server *f, char *first_out, char *user_out)
{
    struct buf out;
    struct mc_err err = {0};
    char final[256];

    buf_init(&out, OUT_MAX);
    assert_int_equal(sasl_start(s, &out, &err), 1);
    if (first_out)
        snprintf(first_out, 256, "%s", out.data);
    fake_first(f, out.data, user_out);
    assert_int_equal(sasl_step(s, (unsigned char *)f->first, strlen(f->first), &out, &err), 0);
    fake_final(f, out.data, final);
    assert_int_equal(sasl_step(s, (unsigned char *) final, strlen(final), &out, &err), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(sasl_done(s, &err), 0);
    buf_wipe(&out);
}

/* --- base64 ------------------------------------------------------------- */

static const char *const b64_vec[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_b64_encode_rfc4648(void **state)
{
    for (size_t i = 0; i < sizeof b64_vec / sizeof b64_vec[0]; i++) {
        struct buf b;

        buf_init(&b, 64);
        assert_int_equal(
            b64_encode((const unsigned char *)b64_vec[i][0], strlen(b64_vec[i][0]), &b), 0);
        assert_string_equal(b.data, b64_vec[i][1]);
        buf_release(&b);
    }
}

static void test_b64_decode_rfc4648(void **state)
{
    for (size_t i = 0; i < sizeof b64_vec / sizeof b64_vec[0]; i++) {
        struct buf b;

        buf_init(&b, 64);
        assert_int_equal(b64_decode(b64_vec[i][1], strlen(b64_vec[i][1]), &b), 0);
        assert_int_equal(b.len, strlen(b64_vec[i][0]));
        assert_memory_equal(b.data, b64_vec[i][0], b.len);
        buf_release(&b);
    }
}

static void test_b64_decode_rejects(void **state)
{
    static const char *const bad[] = {
        "Zg=",      /* length not a multiple of 4 */
        "Zm9",      /* length not a multiple of 4 */
        "Z",        /* length not a multiple of 4 */
        "=",        /* padding alone */
        "====",     /* padding alone */
        "Zg==Zg==", /* padding mid-stream */
        "Z===",     /* three padding characters */
        "Zm=v",     /* data after padding */
        "Zg=A",     /* data after padding */
        "Zm9v\n",   /* no whitespace */
        " Zm9v",    /* no whitespace */
        "Zm 9v",    /* no whitespace */
        "Zm9v\r\n", /* no line breaks */
        "Zm-v",     /* base64url is another alphabet */
        "Zm_v",     /* base64url is another alphabet */
        "Zm9v!A==", /* not in the alphabet */
        "Zh==",     /* unused bits set */
        "Zm9=",     /* unused bits set */
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct buf b;

        buf_init(&b, 64);
        buf_addstr(&b, "kept");
        if (b64_decode(bad[i], strlen(bad[i]), &b) != -1)
            fail_msg("b64_decode accepted \"%s\"", bad[i]);
        assert_string_equal(b.data, "kept");
        buf_release(&b);
    }
}

static void test_b64_decode_nul_in_input(void **state)
{
    struct buf b;

    buf_init(&b, 64);
    assert_int_equal(b64_decode("Zm\0v", 4, &b), -1);
    assert_int_equal(b.len, 0);
    buf_release(&b);
}

static void test_b64_roundtrip_all_lengths(void **state)
{
    unsigned char in[300];

    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 7 + 3);
    for (size_t n = 0; n <= sizeof in; n++) {
        struct buf e, d;

        buf_init(&e, 1024);
        buf_init(&d, 1024);
        assert_int_equal(b64_encode(in, n, &e), 0);
        assert_int_equal(e.len, (n + 2) / 3 * 4);
        assert_int_equal(b64_decode(e.data, e.len, &d), 0);
        assert_int_equal(d.len, n);
        if (n)
            assert_memory_equal(d.data, in, n);
        buf_release(&e);
        buf_release(&d);
    }
}

static void test_b64_appends_and_respects_max(void **state)
{
    struct buf b;

    buf_init(&b, 8);
    buf_addstr(&b, "ab");
    assert_int_equal(b64_encode((const unsigned char *)"foo", 3, &b), 0);
    assert_string_equal(b.data, "abZm9v");
    assert_int_equal(b64_encode((const unsigned char *)"foo", 3, &b), -1);
    assert_string_equal(b.data, "abZm9v");
    assert_int_equal(b64_decode("Zm9vYmFy", 8, &b), -1);
    assert_string_equal(b.data, "abZm9v");
    assert_int_equal(b64_decode("Zg==", 4, &b), 0);
    assert_string_equal(b.data, "abZm9vf");
    buf_release(&b);
}

/* --- names and choice ------------------------------------------------------ */

static void test_mech_names(void **state)
{
    enum sasl_mech m;

    for (int i = 0; i < SASL_NMECH; i++) {
        assert_int_equal(sasl_mech_parse(sasl_mech_name((enum sasl_mech)i), &m), 0);
        assert_int_equal(m, i);
    }
    assert_int_equal(sasl_mech_parse("scram-sha-256-plus", &m), 0);
    assert_int_equal(m, SASL_SCRAM_SHA_256_PLUS);
    assert_int_equal(sasl_mech_parse("Cram-Md5", &m), 0);
    assert_int_equal(m, SASL_CRAM_MD5);
    assert_int_equal(sasl_mech_parse("GSSAPI", &m), -1);
    assert_int_equal(sasl_mech_parse("PLAIN ", &m), -1);
    assert_int_equal(sasl_mech_parse("", &m), -1);
    assert_string_equal(sasl_mech_name(SASL_XOAUTH2), "XOAUTH2");
    assert_string_equal(sasl_mech_name(SASL_NMECH), "unknown");
}

static void test_mech_sends_secret(void **state)
{
    assert_true(sasl_mech_sends_secret(SASL_PLAIN));
    assert_true(sasl_mech_sends_secret(SASL_LOGIN));
    assert_true(sasl_mech_sends_secret(SASL_XOAUTH2));
    assert_true(sasl_mech_sends_secret(SASL_OAUTHBEARER));
    assert_false(sasl_mech_sends_secret(SASL_CRAM_MD5));
    assert_false(sasl_mech_sends_secret(SASL_SCRAM_SHA_1));
    assert_false(sasl_mech_sends_secret(SASL_SCRAM_SHA_256_PLUS));
    assert_false(sasl_mech_sends_secret(SASL_EXTERNAL));
    assert_false(sasl_mech_sends_secret(SASL_NMECH));
}

static void test_offered(void **state)
{
    assert_true(sasl_offered("PLAIN LOGIN", SASL_LOGIN));
    assert_true(sasl_offered("  plain\tlogin  ", SASL_PLAIN));
    assert_false(sasl_offered("SCRAM-SHA-256-PLUS", SASL_SCRAM_SHA_256));
    assert_false(sasl_offered("SCRAM-SHA-256", SASL_SCRAM_SHA_256_PLUS));
    assert_false(sasl_offered("XPLAIN PLAINX", SASL_PLAIN));
    assert_false(sasl_offered("", SASL_PLAIN));
    assert_false(sasl_offered(NULL, SASL_PLAIN));
}

static void test_choose_table(void **state)
{
    static const struct {
        const char *offer;
        bool cbind, cert;
        enum sasl_mech want;
    } t[] = {
        {"PLAIN LOGIN", false, false, SASL_PLAIN},
        {"LOGIN PLAIN", false, false, SASL_PLAIN},
        {"LOGIN", false, false, SASL_LOGIN},
        {"CRAM-MD5 LOGIN", false, false, SASL_LOGIN},
        {"CRAM-MD5", false, false, SASL_CRAM_MD5},
        {"PLAIN SCRAM-SHA-1 SCRAM-SHA-256", false, false, SASL_SCRAM_SHA_256},
        {"SCRAM-SHA-1 PLAIN", false, false, SASL_SCRAM_SHA_1},
        {"SCRAM-SHA-256-PLUS SCRAM-SHA-256", false, false, SASL_SCRAM_SHA_256},
        {"SCRAM-SHA-256-PLUS SCRAM-SHA-256", true, false, SASL_SCRAM_SHA_256_PLUS},
        {"SCRAM-SHA-1-PLUS SCRAM-SHA-256", true, false, SASL_SCRAM_SHA_1_PLUS},
        {"SCRAM-SHA-1-PLUS SCRAM-SHA-256", false, false, SASL_SCRAM_SHA_256},
        {"scram-sha-256 plain", false, false, SASL_SCRAM_SHA_256},
        {"  PLAIN   XOAUTH2 ", false, false, SASL_PLAIN},
        {"XOAUTH2 OAUTHBEARER LOGIN", false, false, SASL_LOGIN},
        {"EXTERNAL", false, true, SASL_EXTERNAL},
        {"EXTERNAL PLAIN", false, true, SASL_PLAIN},
        {"EXTERNAL CRAM-MD5", false, false, SASL_CRAM_MD5},
        {"GSSAPI NTLM LOGIN", false, false, SASL_LOGIN},
    };

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        enum sasl_mech m = SASL_NMECH;
        struct mc_err err = {0};

        if (sasl_choose(t[i].offer, t[i].cbind, t[i].cert, &m, &err) != 0)
            fail_msg("\"%s\": %s", t[i].offer, err.msg);
        if (m != t[i].want)
            fail_msg("\"%s\": chose %s, want %s", t[i].offer, sasl_mech_name(m),
                     sasl_mech_name(t[i].want));
    }
}

static void test_choose_nothing_in_common(void **state)
{
    enum sasl_mech m;
    struct mc_err err = {0};

    assert_int_equal(sasl_choose("GSSAPI NTLM", false, false, &m, &err), -1);
    assert_int_equal(err.cls, MC_UNAVAIL);
    assert_string_equal(err.msg, "no authentication mechanism in common: server offers "
                                 "\"GSSAPI NTLM\", mailcar supports "
                                 "\"SCRAM-SHA-256 SCRAM-SHA-1 PLAIN LOGIN CRAM-MD5\"");
}

static void test_choose_explains_skipped(void **state)
{
    enum sasl_mech m;
    struct mc_err err = {0};

    assert_int_equal(sasl_choose("XOAUTH2 SCRAM-SHA-256-PLUS EXTERNAL", false, false, &m, &err),
                     -1);
    assert_int_equal(err.cls, MC_UNAVAIL);
    assert_string_equal(err.msg, "no authentication mechanism in common: server offers "
                                 "\"XOAUTH2 SCRAM-SHA-256-PLUS EXTERNAL\", mailcar supports "
                                 "\"SCRAM-SHA-256 SCRAM-SHA-1 PLAIN LOGIN CRAM-MD5\" "
                                 "(SCRAM-SHA-256-PLUS needs TLS channel binding; EXTERNAL needs a "
                                 "client certificate; XOAUTH2 is used only when 'auth' names it)");
    assert_int_equal(sasl_choose("OAUTHBEARER", true, true, &m, &err), -1);
    assert_non_null(strstr(err.msg, "supports \"SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS "
                                    "SCRAM-SHA-256 SCRAM-SHA-1 PLAIN LOGIN CRAM-MD5 EXTERNAL\""));
}

static void test_choose_empty_and_hostile_offer(void **state)
{
    enum sasl_mech m;
    struct mc_err err = {0};
    char big[600];

    assert_int_equal(sasl_choose("", false, false, &m, &err), -1);
    assert_non_null(strstr(err.msg, "server offers \"\""));
    assert_int_equal(sasl_choose(NULL, false, false, &m, &err), -1);
    assert_int_equal(sasl_choose("X\033[2J Y", false, false, &m, &err), -1);
    assert_non_null(strstr(err.msg, "\"X?[2J Y\""));
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(sasl_choose(big, false, false, &m, &err), -1);
    assert_non_null(strstr(err.msg, "AAA...\", mailcar supports"));
}

/* --- PLAIN, LOGIN, CRAM-MD5, EXTERNAL --------------------------------------- */

static void test_plain(void **state)
{
    struct sasl *s = new_ok(SASL_PLAIN, "tim", "tanstaaftanstaaf");

    expect_start(s, 1, "\0tim\0tanstaaftanstaaf", 21);
    expect_step_fails_str(s, "", MC_PROTOCOL, "unexpected challenge after the exchange finished");
    assert_int_equal(sasl_done(s, NULL), 0);
    sasl_free(s);
}

static void test_plain_authzid(void **state)
{
    struct sasl_creds c = {.user = "u", .secret = "p", .authzid = "admin"};
    struct sasl *s = sasl_new(SASL_PLAIN, &c, NULL, NULL);

    assert_non_null(s);
    expect_start(s, 1, "admin\0u\0p", 9);
    sasl_free(s);
}

static void test_plain_without_initial_response(void **state)
{
    struct sasl *s = new_ok(SASL_PLAIN, "u", "p");

    expect_step_fails_str(s, "hello", MC_PROTOCOL,
                          "unexpected challenge before the initial response");
    sasl_free(s);
    s = new_ok(SASL_PLAIN, "u", "p");
    expect_step(s, "", 0, "\0u\0p", 4);
    sasl_free(s);
}

static void test_missing_credentials(void **state)
{
    struct sasl_creds nouser = {.secret = "p"}, nopass = {.user = "u"},
                      emptyuser = {.user = "", .secret = "p"};

    expect_new_fails(SASL_PLAIN, &nouser, NULL, MC_CONFIG,
                     "authentication with PLAIN needs a user name: set 'user'");
    expect_new_fails(SASL_PLAIN, &emptyuser, NULL, MC_CONFIG,
                     "authentication with PLAIN needs a user name: set 'user'");
    expect_new_fails(SASL_LOGIN, &nopass, NULL, MC_CONFIG,
                     "authentication with LOGIN needs a password: set 'password' or "
                     "'passwordeval'");
    expect_new_fails(SASL_SCRAM_SHA_256, &nopass, NULL, MC_CONFIG, NULL);
    expect_new_fails(SASL_CRAM_MD5, NULL, NULL, MC_CONFIG,
                     "authentication with CRAM-MD5 needs a user name: set 'user'");
    expect_new_fails(SASL_XOAUTH2, &nopass, NULL, MC_CONFIG,
                     "authentication with XOAUTH2 needs an access token: set 'password' or "
                     "'passwordeval'");
    expect_new_fails(SASL_XOAUTH2, &nouser, NULL, MC_CONFIG, NULL);
    expect_new_fails(SASL_OAUTHBEARER, &nopass, NULL, MC_CONFIG, NULL);
    expect_new_fails(SASL_NMECH, &nopass, NULL, MC_SOFTWARE, NULL);
}

static void test_login_standard_prompts(void **state)
{
    struct sasl *s = new_ok(SASL_LOGIN, "alice", "s3cret");

    expect_start(s, 0, NULL, 0);
    expect_step_str(s, "Username:", "alice");
    expect_step_str(s, "Password:", "s3cret");
    assert_int_equal(sasl_done(s, NULL), 0);
    sasl_free(s);
    s = new_ok(SASL_LOGIN, "alice", "s3cret");
    expect_step_str(s, "USERNAME:", "alice");
    expect_step_str(s, "password:", "s3cret");
    sasl_free(s);
}

static void test_login_other_prompts(void **state)
{
    struct sasl *s = new_ok(SASL_LOGIN, "alice", "s3cret");

    /* "User Name\0" is what some servers send; unknown prompts go user, then password. */
    expect_step(s, "User Name\0", 10, "alice", 5);
    expect_step_str(s, "Secret please", "s3cret");
    expect_step_fails_str(s, "More?", MC_PROTOCOL, "unexpected LOGIN prompt after the password");
    sasl_free(s);
    s = new_ok(SASL_LOGIN, "alice", "s3cret");
    expect_step_str(s, "", "alice");
    expect_step_str(s, "", "s3cret");
    sasl_free(s);
}

static void test_login_password_first_and_cap(void **state)
{
    struct sasl *s = new_ok(SASL_LOGIN, "alice", "s3cret");

    expect_step_str(s, "Password:", "s3cret");
    expect_step_str(s, "Anything", "alice");
    expect_step_str(s, "Username:", "alice");
    expect_step_str(s, "Username:", "alice");
    expect_step_fails_str(s, "Username:", MC_PROTOCOL,
                          "server keeps prompting after 4 LOGIN answers");
    sasl_free(s);
}

static void test_cram_md5_rfc2195(void **state)
{
    static const char chal[] = "<1896.697170952@postoffice.reston.mci.net>";
    struct sasl *s = new_ok(SASL_CRAM_MD5, "tim", "tanstaaftanstaaf");

    expect_start(s, 0, NULL, 0);
    expect_step_str(s, chal, "tim b913a602c7eda7a495b4e6e7334d3890");
    expect_step_fails_str(s, chal, MC_PROTOCOL, NULL);
    assert_int_equal(sasl_done(s, NULL), 0);
    sasl_free(s);
}

static void test_cram_md5_empty_challenge(void **state)
{
    struct sasl *s = new_ok(SASL_CRAM_MD5, "tim", "x");

    expect_step_fails_str(s, "", MC_PROTOCOL, "empty CRAM-MD5 challenge");
    sasl_free(s);
}

static void test_external(void **state)
{
    struct sasl_creds c = {.authzid = "postmaster@example.org"};
    struct sasl *s = sasl_new(SASL_EXTERNAL, NULL, NULL, NULL);

    assert_non_null(s);
    expect_start(s, 1, "", 0);
    expect_step_fails_str(s, "x", MC_PROTOCOL, NULL);
    sasl_free(s);
    s = sasl_new(SASL_EXTERNAL, &c, NULL, NULL);
    assert_non_null(s);
    expect_start(s, 1, "postmaster@example.org", 22);
    sasl_free(s);
}

static void test_start_twice(void **state)
{
    struct sasl *s = new_ok(SASL_PLAIN, "u", "p");
    struct buf out;
    struct mc_err err = {0};

    buf_init(&out, OUT_MAX);
    assert_int_equal(sasl_start(s, &out, &err), 1);
    assert_int_equal(sasl_start(s, &out, &err), -1);
    assert_int_equal(err.cls, MC_SOFTWARE);
    assert_int_equal(out.len, 0);
    buf_wipe(&out);
    sasl_free(s);
}

static void test_response_too_big_for_buffer(void **state)
{
    struct sasl *s = new_ok(SASL_PLAIN, "user", "a-long-password");
    struct buf out;
    struct mc_err err = {0};

    buf_init(&out, 10);
    assert_int_equal(sasl_start(s, &out, &err), -1);
    assert_int_equal(err.cls, MC_SOFTWARE);
    assert_string_equal(err.msg, "the PLAIN response does not fit in 10 bytes");
    assert_int_equal(out.len, 0);
    buf_wipe(&out);
    sasl_free(s);
}

/* --- OAuth -------------------------------------------------------------- */

static void test_xoauth2(void **state)
{
    static const char ir[] = "user=someuser@example.com\001auth=Bearer "
                             "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\001\001";
    static const char json[] = "{\"status\":\"401\",\"schemes\":\"bearer mac\","
                               "\"scope\":\"https://mail.google.com/\"}";
    struct sasl *s = new_ok(SASL_XOAUTH2, "someuser@example.com",
                            "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");

    expect_start(s, 1, ir, sizeof ir - 1);
    assert_null(sasl_note(s));
    expect_step(s, json, sizeof json - 1, "", 0);
    assert_non_null(sasl_note(s));
    assert_string_equal(sasl_note(s), "server said: {\"status\":\"401\",\"schemes\":\"bearer "
                                      "mac\",\"scope\":\"https://mail.google.com/\"}");
    expect_step_fails_str(s, json, MC_PROTOCOL, NULL);
    sasl_free(s);
}

static void test_oauthbearer(void **state)
{
    static const char ir[] = "n,a=user@example.com,\001host=server.example.com\001port=587\001"
                             "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\001\001";
    struct sasl_creds c = {.user = "user@example.com",
                           .secret = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
                           .host = "server.example.com",
                           .port = 587};
    struct sasl *s = sasl_new(SASL_OAUTHBEARER, &c, NULL, NULL);

    assert_non_null(s);
    expect_start(s, 1, ir, sizeof ir - 1);
    expect_step_str(s, "{\"status\":\"invalid_token\"}", "\001");
    assert_string_equal(sasl_note(s), "server said: {\"status\":\"invalid_token\"}");
    sasl_free(s);
}

static void test_oauthbearer_minimal_and_escaped(void **state)
{
    static const char ir[] = "n,,\001auth=Bearer T\001\001";
    static const char ir2[] = "n,a=a=3Db=2Cc,\001auth=Bearer T\001\001";
    struct sasl_creds c = {.secret = "T"}, c2 = {.user = "a=b,c", .secret = "T"};
    struct sasl *s = sasl_new(SASL_OAUTHBEARER, &c, NULL, NULL);

    assert_non_null(s);
    expect_start(s, 1, ir, sizeof ir - 1);
    sasl_free(s);
    s = sasl_new(SASL_OAUTHBEARER, &c2, NULL, NULL);
    assert_non_null(s);
    expect_start(s, 1, ir2, sizeof ir2 - 1);
    sasl_free(s);
}

static void test_oauth_control_characters(void **state)
{
    struct sasl_creds c = {.user = "u", .secret = "tok\001en"};
    struct sasl_creds c2 = {.user = "u\001", .secret = "token"};

    expect_new_fails(SASL_XOAUTH2, &c, NULL, MC_CONFIG, NULL);
    expect_new_fails(SASL_OAUTHBEARER, &c2, NULL, MC_CONFIG, NULL);
}

/* --- SCRAM: the RFC vectors ----------------------------------------------- */

static struct sasl *rfc_scram(enum sasl_mech m, const char *nonce)
{
    struct sasl *s = new_ok(m, "user", "pencil");

    assert_int_equal(sasl_scram_set_nonce_for_test(s, nonce), 0);
    return s;
}

static void test_scram_sha1_rfc5802(void **state)
{
    struct sasl *s = rfc_scram(SASL_SCRAM_SHA_1, "fyko+d2lbbFgONRv9qkxdawL");

    expect_start(s, 1, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", 36);
    expect_step_str(s, "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
    assert_int_equal(sasl_done(s, NULL), -1);
    expect_step_str(s, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=", "");
    assert_int_equal(sasl_done(s, NULL), 0);
    assert_null(sasl_note(s));
    sasl_free(s);
}

static void test_scram_sha256_rfc7677(void **state)
{
    struct sasl *s = rfc_scram(SASL_SCRAM_SHA_256, "rOprNGfwEbeRWgbNEkqO");

    expect_start(s, 1, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", 32);
    expect_step_str(s,
                    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    expect_step_str(s, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", "");
    assert_int_equal(sasl_done(s, NULL), 0);
    expect_step_fails_str(s, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", MC_PROTOCOL,
                          "unexpected challenge after the exchange finished");
    sasl_free(s);
}

/* The RFC 7677 exchange up to the server's final message. */
static struct sasl *sha256_at_final(void)
{
    struct sasl *s = rfc_scram(SASL_SCRAM_SHA_256, "rOprNGfwEbeRWgbNEkqO");

    expect_start(s, 1, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", 32);
    expect_step_str(s,
                    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    return s;
}

static void test_scram_bad_server_signature(void **state)
{
    struct sasl *s = sha256_at_final();
    struct mc_err err = {0};

    /* One bit off in the last byte. */
    expect_step_fails_str(s, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G8=", MC_PROTOCOL,
                          "server signature does not verify: the server does not know the "
                          "password");
    assert_int_equal(sasl_done(s, &err), -1);
    assert_int_equal(err.cls, MC_PROTOCOL);
    sasl_free(s);
}

static void test_scram_wrong_length_signature(void **state)
{
    struct sasl *s = sha256_at_final();

    /* The SHA-1 vector's signature: valid base64, wrong size. */
    expect_step_fails_str(s, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=", MC_PROTOCOL,
                          "server signature does not verify: the server does not know the "
                          "password");
    sasl_free(s);
}

static void test_scram_server_error(void **state)
{
    struct sasl *s = sha256_at_final();

    expect_step_fails_str(s, "e=invalid-proof", MC_PROTOCOL, "server refused: e=invalid-proof");
    sasl_free(s);
    s = rfc_scram(SASL_SCRAM_SHA_256, "rOprNGfwEbeRWgbNEkqO");
    expect_start(s, 1, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", 32);
    expect_step_fails_str(s, "e=unknown-user", MC_PROTOCOL, "server refused: e=unknown-user");
    sasl_free(s);
}

static void test_scram_malformed_server_final(void **state)
{
    static const char *const bad[] = {
        "",
        "x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4",
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,",
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=\r\n",
        " v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sasl *s = sha256_at_final();

        expect_step_fails_str(s, bad[i], MC_PROTOCOL, "malformed server-final message");
        assert_int_equal(sasl_done(s, NULL), -1);
        sasl_free(s);
    }
}

static void test_scram_server_final_extension(void **state)
{
    struct sasl *s = sha256_at_final();

    expect_step_str(s, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,x=future", "");
    assert_int_equal(sasl_done(s, NULL), 0);
    sasl_free(s);
}

static void test_scram_done_without_verification(void **state)
{
    struct sasl *s = sha256_at_final();
    struct mc_err err = {0};

    assert_int_equal(sasl_done(s, &err), -1);
    assert_int_equal(err.cls, MC_PROTOCOL);
    assert_string_equal(err.msg, "server accepted SCRAM-SHA-256 authentication without proving "
                                 "it knows the password");
    sasl_free(s);
}

/* --- SCRAM: the server-first message ---------------------------------------- */

static void expect_first_fails(const char *server_first, const char *msg)
{
    struct sasl *s = rfc_scram(SASL_SCRAM_SHA_256, "rOprNGfwEbeRWgbNEkqO");

    expect_start(s, 1, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", 32);
    expect_step_fails_str(s, server_first, MC_PROTOCOL, msg);
    assert_int_equal(sasl_done(s, NULL), -1);
    sasl_free(s);
}

static void test_scram_nonce_not_extended(void **state)
{
    expect_first_fails("r=XOprNGfwEbeRWgbNEkqO%hvYDpWUa2,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                       "server nonce does not start with the client nonce");
    expect_first_fails("r=rOprNGfwEbe,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                       "server nonce does not start with the client nonce");
    expect_first_fails("r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                       "server nonce adds nothing to the client nonce");
    expect_first_fails("r=rOprNGfwEbeRWgbNEkqO\xc3\xa9,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                       "malformed server nonce");
}

static void test_scram_malformed_server_first(void **state)
{
    static const char *const bad[] = {
        "",
        "r=rOprNGfwEbeRWgbNEkqOxyz",
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==",
        "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOxyz,i=4096",
        "r=rOprNGfwEbeRWgbNEkqOxyz,i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==",
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,",
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,,x=1",
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096\n",
        "r=rOprNGfwEbeRWgbNEkqOxyz, s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "R=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_first_fails(bad[i], "malformed server-first message");
}

static void test_scram_bad_salt(void **state)
{
    expect_first_fails("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",
                       "malformed salt in the server-first message");
    expect_first_fails("r=rOprNGfwEbeRWgbNEkqOxyz,s=,i=4096",
                       "malformed salt in the server-first message");
    expect_first_fails("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22Z aJ0S,i=4096",
                       "malformed salt in the server-first message");
}

static void test_scram_bad_iterations(void **state)
{
    expect_first_fails("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
                       "malformed iteration count");
    expect_first_fails("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=04096",
                       "malformed iteration count");
    expect_first_fails("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
                       "malformed iteration count");
    expect_first_fails("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=",
                       "malformed iteration count");
    expect_first_fails("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4k",
                       "malformed iteration count");
    expect_first_fails("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000001",
                       "server asks for 10000001 iterations, more than the 10000000 mailcar "
                       "allows");
    expect_first_fails("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
                       "i=99999999999999999999999999",
                       "server asks for 999999999 iterations, more than the 10000000 mailcar "
                       "allows");
}

static void test_scram_mandatory_extension(void **state)
{
    expect_first_fails("m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                       "server requires a SCRAM extension mailcar lacks");
}

static void test_scram_low_iterations_noted(void **state)
{
    struct sasl *s = rfc_scram(SASL_SCRAM_SHA_256, "abc");
    struct buf out;
    struct mc_err err = {0};
    static const char first[] = "r=abcdef,s=c2FsdA==,i=1000,x=ignored";

    buf_init(&out, OUT_MAX);
    assert_int_equal(sasl_start(s, &out, &err), 1);
    assert_int_equal(sasl_step(s, (const unsigned char *)first, sizeof first - 1, &out, &err), 0);
    assert_non_null(sasl_note(s));
    assert_string_equal(sasl_note(s),
                        "server uses 1000 SCRAM iterations, fewer than the 4096 RFC 7677 advises");
    assert_memory_equal(out.data, "c=biws,r=abcdef,p=", 18);
    buf_wipe(&out);
    sasl_free(s);
}

static void test_scram_challenge_too_long(void **state)
{
    static char big[9000];
    struct sasl *s = rfc_scram(SASL_SCRAM_SHA_256, "abc");

    expect_start(s, 1, "n,,n=user,r=abc", 15);
    memset(big, 'a', sizeof big);
    expect_step_fails(s, big, sizeof big, MC_PROTOCOL,
                      "challenge of 9000 bytes is longer than the 8192 allowed");
    sasl_free(s);
}

static void test_scram_empty_challenge_starts(void **state)
{
    struct sasl *s = rfc_scram(SASL_SCRAM_SHA_1, "fyko+d2lbbFgONRv9qkxdawL");

    expect_step(s, "", 0, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", 36);
    expect_step_str(s, "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
    sasl_free(s);
}

static void test_scram_random_nonce(void **state)
{
    struct sasl *a = new_ok(SASL_SCRAM_SHA_256, "user", "pencil");
    struct sasl *b = new_ok(SASL_SCRAM_SHA_256, "user", "pencil");
    struct buf oa, ob;
    struct mc_err err = {0};

    buf_init(&oa, OUT_MAX);
    buf_init(&ob, OUT_MAX);
    assert_int_equal(sasl_start(a, &oa, &err), 1);
    assert_int_equal(sasl_start(b, &ob, &err), 1);
    assert_memory_equal(oa.data, "n,,n=user,r=", 12);
    assert_int_equal(oa.len, 12 + 32);
    assert_null(strchr(oa.data + 12, ','));
    assert_string_not_equal(oa.data, ob.data);
    buf_wipe(&oa);
    buf_wipe(&ob);
    sasl_free(a);
    sasl_free(b);
}

static void test_scram_nonce_hook_rejects(void **state)
{
    struct sasl *s = new_ok(SASL_SCRAM_SHA_256, "user", "pencil");
    struct sasl *p = new_ok(SASL_PLAIN, "user", "pencil");

    assert_int_equal(sasl_scram_set_nonce_for_test(s, ""), -1);
    assert_int_equal(sasl_scram_set_nonce_for_test(s, "a,b"), -1);
    assert_int_equal(sasl_scram_set_nonce_for_test(s, "a b"), -1);
    assert_int_equal(sasl_scram_set_nonce_for_test(p, "abc"), -1);
    sasl_free(s);
    sasl_free(p);
}

/* --- SCRAM against our own server ----------------------------------------------- */

static void test_scram_escaped_user_and_authzid(void **state)
{
    struct sasl_creds c = {.user = "a,b=c", .secret = "pw", .authzid = "x=y,z"};
    struct fake_server f = {.md = EVP_sha256(), .password = "pw", .salt = "NaCl", .iter = 4096};
    struct sasl *s = sasl_new(SASL_SCRAM_SHA_256, &c, NULL, NULL);
    char first[256], user[64];

    assert_non_null(s);
    scram_roundtrip(s, &f, first, user);
    assert_string_equal(user, "a=2Cb=3Dc");
    assert_string_equal(f.gs2, "n,a=x=3Dy=2Cz,");
    sasl_free(s);
}

static void test_scram_plus_tls_exporter(void **state)
{
    static const unsigned char ekm[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 255, 128};
    struct sasl_cbind cb = {.type = "tls-exporter", .data = ekm, .len = sizeof ekm};
    struct sasl_creds c = {.user = "user", .secret = "pencil"};
    struct fake_server f = {.md = EVP_sha256(),
                            .password = "pencil",
                            .salt = "salt",
                            .iter = 4096,
                            .cbdata = ekm,
                            .cblen = sizeof ekm};
    struct sasl *s = sasl_new(SASL_SCRAM_SHA_256_PLUS, &c, &cb, NULL);
    char first[256];

    assert_non_null(s);
    scram_roundtrip(s, &f, first, NULL);
    assert_memory_equal(first, "p=tls-exporter,,n=user,r=", 25);
    sasl_free(s);
}

static void test_scram_sha1_plus_tls_unique(void **state)
{
    static const unsigned char fin[12] = "finished-12";
    struct sasl_cbind cb = {.type = "tls-unique", .data = fin, .len = sizeof fin};
    struct sasl_creds c = {.user = "user", .secret = "pencil"};
    struct fake_server f = {.md = EVP_sha1(),
                            .password = "pencil",
                            .salt = "salt",
                            .iter = 4096,
                            .cbdata = fin,
                            .cblen = sizeof fin};
    struct sasl *s = sasl_new(SASL_SCRAM_SHA_1_PLUS, &c, &cb, NULL);

    assert_non_null(s);
    scram_roundtrip(s, &f, NULL, NULL);
    assert_string_equal(f.gs2, "p=tls-unique,,");
    sasl_free(s);
}

static void test_scram_plus_needs_binding(void **state)
{
    struct sasl_creds c = {.user = "user", .secret = "pencil"};
    struct sasl_cbind notype = {.data = (const unsigned char *)"x", .len = 1};
    struct sasl_cbind nodata = {.type = "tls-exporter"};
    struct sasl_cbind badtype = {
        .type = "tls exporter", .data = (const unsigned char *)"x", .len = 1};

    expect_new_fails(SASL_SCRAM_SHA_256_PLUS, &c, NULL, MC_CONFIG,
                     "authentication with SCRAM-SHA-256-PLUS needs TLS channel binding, which "
                     "this connection does not have");
    expect_new_fails(SASL_SCRAM_SHA_1_PLUS, &c, &notype, MC_CONFIG, NULL);
    expect_new_fails(SASL_SCRAM_SHA_1_PLUS, &c, &nodata, MC_CONFIG, NULL);
    expect_new_fails(SASL_SCRAM_SHA_256_PLUS, &c, &badtype, MC_SOFTWARE, NULL);
}

static void test_scram_gs2_y_flag(void **state)
{
    static const unsigned char ekm[4] = {1, 2, 3, 4};
    struct sasl_cbind y = {
        .type = "tls-exporter", .data = ekm, .len = 4, .server_lacks_plus = true};
    struct sasl_cbind n = {.type = "tls-exporter", .data = ekm, .len = 4};
    struct sasl_creds c = {.user = "user", .secret = "pencil"};
    struct fake_server f = {.md = EVP_sha256(), .password = "pencil", .salt = "salt", .iter = 4096};
    struct sasl *s = sasl_new(SASL_SCRAM_SHA_256, &c, &y, NULL);
    char first[256];

    assert_non_null(s);
    scram_roundtrip(s, &f, first, NULL);
    assert_memory_equal(first, "y,,n=user,", 10);
    sasl_free(s);
    s = sasl_new(SASL_SCRAM_SHA_256, &c, &n, NULL);
    assert_non_null(s);
    scram_roundtrip(s, &f, first, NULL);
    assert_memory_equal(first, "n,,n=user,", 10);
    sasl_free(s);
}

/* --- SASLprep ------------------------------------------------------------- */

/* A password SASLprep maps to "pencil" must give the RFC 5802 proof byte for byte. */
static void expect_prepares_to_pencil(const char *password)
{
    struct sasl *s = new_ok(SASL_SCRAM_SHA_1, "user", password);

    assert_int_equal(sasl_scram_set_nonce_for_test(s, "fyko+d2lbbFgONRv9qkxdawL"), 0);
    expect_start(s, 1, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", 36);
    expect_step_str(s, "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
    sasl_free(s);
}

static void test_saslprep_mapped_to_nothing(void **state)
{
    expect_prepares_to_pencil("pen\xc2\xad"
                              "cil");                /* SOFT HYPHEN */
    expect_prepares_to_pencil("\xef\xbb\xbfpencil"); /* BOM / ZWNBSP */
    expect_prepares_to_pencil("pen\xe2\x80\x8d"
                              "cil\xef\xb8\x8f"); /* ZWJ, VS-16 */
}

static void test_saslprep_spaces_and_nonascii(void **state)
{
    struct sasl_creds c = {.user = "user",
                           .secret = "a\xc2\xa0"
                                     "b\xe3\x80\x80"
                                     "c"};
    struct sasl_creds c2 = {.user = "\xc3\xa9l\xc3\xa8ve", .secret = "\xe5\xaf\x86\xe7\xa0\x81"};
    struct fake_server f = {.md = EVP_sha256(), .password = "a b c", .salt = "NaCl", .iter = 4096};
    struct fake_server f2 = {
        .md = EVP_sha256(), .password = "\xe5\xaf\x86\xe7\xa0\x81", .salt = "NaCl", .iter = 4096};
    struct sasl *s = sasl_new(SASL_SCRAM_SHA_256, &c, NULL, NULL);
    char user[64];

    assert_non_null(s);
    scram_roundtrip(s, &f, NULL, NULL);
    sasl_free(s);
    s = sasl_new(SASL_SCRAM_SHA_256, &c2, NULL, NULL);
    assert_non_null(s);
    scram_roundtrip(s, &f2, NULL, user);
    assert_string_equal(user, "\xc3\xa9l\xc3\xa8ve");
    sasl_free(s);
}

static void test_saslprep_rejects(void **state)
{
    static const char *const bad[] = {
        "pass\tword",        /* ASCII control */
        "pass\r",            /* a stray CR from passwordeval */
        "x\x7f",             /* DEL */
        "x\xc2\x85",         /* C1 control NEL */
        "x\xee\x80\x80",     /* private use U+E000 */
        "x\xef\xbf\xbe",     /* non-character U+FFFE */
        "x\xe2\x80\x8e",     /* LEFT-TO-RIGHT MARK */
        "x\xf3\xa0\x80\x81", /* LANGUAGE TAG U+E0001 */
        "x\xc3",             /* truncated UTF-8 */
        "x\xc0\xaf",         /* overlong '/' */
        "x\xed\xa0\x80",     /* surrogate */
        "\xe9t\xe9",         /* Latin-1, not UTF-8 */
        "\xc2\xad",          /* nothing left */
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sasl_creds c = {.user = "user", .secret = bad[i]};
        struct mc_err err = {0};

        if (sasl_new(SASL_SCRAM_SHA_256, &c, NULL, &err) != NULL)
            fail_msg("password %zu accepted", i);
        assert_int_equal(err.cls, MC_CONFIG);
        assert_non_null(strstr(err.msg, "authentication with SCRAM-SHA-256: the password "));
    }
}

static void test_saslprep_user_name(void **state)
{
    struct sasl_creds c = {.user = "us\ter", .secret = "pencil"};

    expect_new_fails(SASL_SCRAM_SHA_1, &c, NULL, MC_CONFIG,
                     "authentication with SCRAM-SHA-1: the user name contains a character "
                     "SASLprep (RFC 4013) prohibits");
}

static void test_plain_sends_password_unprepared(void **state)
{
    /* PLAIN leaves preparation to the server; the bytes go as configured. */
    struct sasl *s = new_ok(SASL_PLAIN, "u", "p\xc2\xad");

    expect_start(s, 1, "\0u\0p\xc2\xad", 6);
    sasl_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_encode_rfc4648),
        cmocka_unit_test(test_b64_decode_rfc4648),
        cmocka_unit_test(test_b64_decode_rejects),
        cmocka_unit_test(test_b64_decode_nul_in_input),
        cmocka_unit_test(test_b64_roundtrip_all_lengths),
        cmocka_unit_test(test_b64_appends_and_respects_max),
        cmocka_unit_test(test_mech_names),
        cmocka_unit_test(test_mech_sends_secret),
        cmocka_unit_test(test_offered),
        cmocka_unit_test(test_choose_table),
        cmocka_unit_test(test_choose_nothing_in_common),
        cmocka_unit_test(test_choose_explains_skipped),
        cmocka_unit_test(test_choose_empty_and_hostile_offer),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_plain_authzid),
        cmocka_unit_test(test_plain_without_initial_response),
        cmocka_unit_test(test_missing_credentials),
        cmocka_unit_test(test_login_standard_prompts),
        cmocka_unit_test(test_login_other_prompts),
        cmocka_unit_test(test_login_password_first_and_cap),
        cmocka_unit_test(test_cram_md5_rfc2195),
        cmocka_unit_test(test_cram_md5_empty_challenge),
        cmocka_unit_test(test_external),
        cmocka_unit_test(test_start_twice),
        cmocka_unit_test(test_response_too_big_for_buffer),
        cmocka_unit_test(test_xoauth2),
        cmocka_unit_test(test_oauthbearer),
        cmocka_unit_test(test_oauthbearer_minimal_and_escaped),
        cmocka_unit_test(test_oauth_control_characters),
        cmocka_unit_test(test_scram_sha1_rfc5802),
        cmocka_unit_test(test_scram_sha256_rfc7677),
        cmocka_unit_test(test_scram_bad_server_signature),
        cmocka_unit_test(test_scram_wrong_length_signature),
        cmocka_unit_test(test_scram_server_error),
        cmocka_unit_test(test_scram_malformed_server_final),
        cmocka_unit_test(test_scram_server_final_extension),
        cmocka_unit_test(test_scram_done_without_verification),
        cmocka_unit_test(test_scram_nonce_not_extended),
        cmocka_unit_test(test_scram_malformed_server_first),
        cmocka_unit_test(test_scram_bad_salt),
        cmocka_unit_test(test_scram_bad_iterations),
        cmocka_unit_test(test_scram_mandatory_extension),
        cmocka_unit_test(test_scram_low_iterations_noted),
        cmocka_unit_test(test_scram_challenge_too_long),
        cmocka_unit_test(test_scram_empty_challenge_starts),
        cmocka_unit_test(test_scram_random_nonce),
        cmocka_unit_test(test_scram_nonce_hook_rejects),
        cmocka_unit_test(test_scram_escaped_user_and_authzid),
        cmocka_unit_test(test_scram_plus_tls_exporter),
        cmocka_unit_test(test_scram_sha1_plus_tls_unique),
        cmocka_unit_test(test_scram_plus_needs_binding),
        cmocka_unit_test(test_scram_gs2_y_flag),
        cmocka_unit_test(test_saslprep_mapped_to_nothing),
        cmocka_unit_test(test_saslprep_spaces_and_nonascii),
        cmocka_unit_test(test_saslprep_rejects),
        cmocka_unit_test(test_saslprep_user_name),
        cmocka_unit_test(test_plain_sends_password_unprepared),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
