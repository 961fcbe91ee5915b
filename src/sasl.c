/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * SASL client mechanisms and base64.  A context holds copies of the
 * credentials and a small state machine; each mechanism turns a decoded
 * challenge into a raw response.  SCRAM keeps the client-first message and
 * the server signature it expects, so the server has to prove it knows the
 * password before sasl_done agrees.  libcrypto supplies the digests, HMAC,
 * PBKDF2 and the nonce; this is its only use outside tls.c.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "sasl.h"
#include "util.h"

/* Challenges are small; a bigger one is a server trying to make us allocate. */
#define SASL_CHAL_MAX 8192
#define SCRAM_NONCE_MAX 64
#define SCRAM_NONCE_RAND 24 /* bytes of randomness: 32 base64 characters */
#define SCRAM_SALT_MAX 1024
#define SCRAM_ITER_ADVISED 4096 /* RFC 7677 section 4 */
#define CBIND_MAX 1024
#define LOGIN_MAX_PROMPTS 4

enum mech_kind { K_SCRAM, K_PLAIN, K_LOGIN, K_CRAM, K_EXTERNAL, K_OAUTHBEARER, K_XOAUTH2 };

static const struct mech_info {
    const char *name;
    enum mech_kind kind;
    bool initial;      /* has an initial response */
    bool sends_secret; /* the server (or a listener) learns a reusable secret */
    bool needs_user;
    bool needs_secret;
    bool plus;   /* SCRAM with channel binding */
    bool sha256; /* SCRAM digest, SHA-1 otherwise */
} mech_tab[SASL_NMECH] = {
    [SASL_SCRAM_SHA_256_PLUS] = {"SCRAM-SHA-256-PLUS", K_SCRAM, true, false, true, true, true,
                                 true},
    [SASL_SCRAM_SHA_1_PLUS] = {"SCRAM-SHA-1-PLUS", K_SCRAM, true, false, true, true, true, false},
    [SASL_SCRAM_SHA_256] = {"SCRAM-SHA-256", K_SCRAM, true, false, true, true, false, true},
    [SASL_SCRAM_SHA_1] = {"SCRAM-SHA-1", K_SCRAM, true, false, true, true, false, false},
    [SASL_PLAIN] = {"PLAIN", K_PLAIN, true, true, true, true, false, false},
    [SASL_LOGIN] = {"LOGIN", K_LOGIN, false, true, true, true, false, false},
    [SASL_CRAM_MD5] = {"CRAM-MD5", K_CRAM, false, false, true, true, false, false},
    [SASL_EXTERNAL] = {"EXTERNAL", K_EXTERNAL, true, false, false, false, false, false},
    [SASL_OAUTHBEARER] = {"OAUTHBEARER", K_OAUTHBEARER, true, true, false, true, false, false},
    [SASL_XOAUTH2] = {"XOAUTH2", K_XOAUTH2, true, true, true, true, false, false},
};

enum sasl_state {
    ST_INIT,  /* nothing sent yet */
    ST_FIRST, /* initial response (or first answer) sent */
    ST_FINAL, /* SCRAM: client-final sent, the server's signature is due */
    ST_DONE,  /* nothing more to say: another challenge is an error */
};

struct scram {
    const EVP_MD *md;
    size_t mdlen;
    char nonce[SCRAM_NONCE_MAX + 1];
    struct buf gs2;        /* gs2 header: "n,,", "y,,", "p=tls-exporter,," (+ a=) */
    struct buf first_bare; /* client-first-message-bare, part of AuthMessage */
    unsigned char server_sig[EVP_MAX_MD_SIZE];
    unsigned long max_iter;
    bool verified;
};

struct sasl {
    enum sasl_mech mech;
    const struct mech_info *info;
    enum sasl_state state;
    char *user;    /* SASLprep'd for SCRAM */
    char *secret;  /* password or token; SASLprep'd for SCRAM */
    char *authzid; /* NULL when none */
    char *host;
    int port;
    char *cbtype; /* channel binding for -PLUS, NULL otherwise */
    unsigned char *cbdata;
    size_t cblen;
    bool cb_y; /* gs2 flag "y": we could bind, the server cannot */
    bool login_user_sent, login_pass_sent;
    int login_prompts;
    struct scram sc;
    char note[200];
};

/* --- names and choice ---------------------------------------------------- */

const char *sasl_mech_name(enum sasl_mech m)
{
    if ((unsigned)m >= SASL_NMECH)
        return "unknown";
    return mech_tab[m].name;
}

int sasl_mech_parse(const char *name, enum sasl_mech *out)
{
    for (int m = 0; m < SASL_NMECH; m++) {
        if (name != NULL && strcasecmp(name, mech_tab[m].name) == 0) {
            *out = (enum sasl_mech)m;
            return 0;
        }
    }
    return -1;
}

bool sasl_mech_sends_secret(enum sasl_mech m)
{
    return (unsigned)m < SASL_NMECH && mech_tab[m].sends_secret;
}

bool sasl_offered(const char *offered, enum sasl_mech m)
{
    const char *p = offered, *name = sasl_mech_name(m);
    size_t n, want = strlen(name);

    if (p == NULL || (unsigned)m >= SASL_NMECH)
        return false;
    for (;;) {
        p += strspn(p, " \t");
        if (*p == '\0')
            return false;
        n = strcspn(p, " \t");
        if (n == want && strncasecmp(p, name, n) == 0)
            return true;
        p += n;
    }
}

/* OAuth needs a token nobody configured by accident, so it is never picked for the user. */
static bool choosable(enum sasl_mech m, bool have_cbind, bool have_client_cert)
{
    if (mech_tab[m].plus)
        return have_cbind;
    if (m == SASL_EXTERNAL)
        return have_client_cert;
    return m != SASL_OAUTHBEARER && m != SASL_XOAUTH2;
}

/* Why an offered mechanism was passed over, so the user knows what to change. */
static const char *skip_reason(enum sasl_mech m)
{
    if (mech_tab[m].plus)
        return "needs TLS channel binding";
    if (m == SASL_EXTERNAL)
        return "needs a client certificate";
    return "is used only when 'auth' names it";
}

/* Copy server text into a message: printable ASCII only, at most max bytes. */
static void sanitize(char *dst, size_t dstlen, const char *src, size_t len, size_t max)
{
    size_t i, n = len < max ? len : max;

    if (n > dstlen - 1)
        n = dstlen - 1;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[i] = '\0';
    if (len > n && n >= 3)
        memcpy(dst + n - 3, "...", 3);
}

static int no_common(const char *offered, bool have_cbind, bool have_client_cert,
                     struct mc_err *err)
{
    struct buf sup, why;
    char shown[204];
    const char *off = offered ? offered : "";

    /* Both lists are short and bounded by the table; MC_ERR_MSG_MAX trims the rest. */
    buf_init(&sup, MC_ERR_MSG_MAX);
    buf_init(&why, MC_ERR_MSG_MAX);
    for (int m = 0; m < SASL_NMECH; m++) {
        const char *name = mech_tab[m].name;

        if (choosable((enum sasl_mech)m, have_cbind, have_client_cert))
            buf_printf(&sup, "%s%s", sup.len ? " " : "", name);
        else if (sasl_offered(off, (enum sasl_mech)m))
            buf_printf(&why, "%s%s %s", why.len ? "; " : " (", name,
                       skip_reason((enum sasl_mech)m));
    }
    if (why.len)
        buf_addch(&why, ')');
    sanitize(shown, sizeof shown, off, strlen(off), 200);
    mc_err_set(err, MC_UNAVAIL,
               "no authentication mechanism in common: server offers \"%s\", "
               "mailcar supports \"%s\"%s",
               shown, sup.data, why.data);
    buf_release(&sup);
    buf_release(&why);
    return -1;
}

int sasl_choose(const char *offered, bool have_cbind, bool have_client_cert, enum sasl_mech *out,
                struct mc_err *err)
{
    for (int m = 0; m < SASL_NMECH; m++) {
        if (choosable((enum sasl_mech)m, have_cbind, have_client_cert) &&
            sasl_offered(offered, (enum sasl_mech)m)) {
            *out = (enum sasl_mech)m;
            return 0;
        }
    }
    return no_common(offered, have_cbind, have_client_cert, err);
}

/* --- base64 ------------------------------------------------------------- */

static const char b64_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_encode(const unsigned char *in, size_t len, struct buf *out)
{
    size_t i, olen;
    char *p;

    if (len > BUF_NOLIMIT / 4 * 3)
        return -1;
    olen = (len + 2) / 3 * 4;
    if (buf_reserve(out, olen) < 0)
        return -1;
    p = out->data + out->len;
    for (i = 0; i + 3 <= len; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *p++ = b64_alpha[w >> 18];
        *p++ = b64_alpha[w >> 12 & 63];
        *p++ = b64_alpha[w >> 6 & 63];
        *p++ = b64_alpha[w & 63];
    }
    if (i < len) {
        uint32_t w = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        *p++ = b64_alpha[w >> 18];
        *p++ = b64_alpha[w >> 12 & 63];
        *p++ = i + 1 < len ? b64_alpha[w >> 6 & 63] : '=';
        *p++ = '=';
    }
    out->len += olen;
    out->data[out->len] = '\0';
    return 0;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * One group of four characters into 1 to 3 bytes, or -1.  Padding only in
 * the last group and only in its last two places; the bits padding leaves
 * unused must be zero, so every byte string has exactly one encoding.
 */
static int b64_quantum(const char *q, bool last, unsigned char *o)
{
    int v[4], npad = 0;
    uint32_t w;

    for (int i = 0; i < 4; i++) {
        if (q[i] == '=' && last && i >= 2) {
            v[i] = 0;
            npad++;
            continue;
        }
        if (npad || (v[i] = b64_val(q[i])) < 0)
            return -1;
    }
    if ((npad == 2 && (v[1] & 15)) || (npad == 1 && (v[2] & 3)))
        return -1;
    w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    o[0] = (unsigned char)(w >> 16);
    o[1] = (unsigned char)(w >> 8);
    o[2] = (unsigned char)w;
    return 3 - npad;
}

int b64_decode(const char *in, size_t len, struct buf *out)
{
    size_t i, n = 0, want;
    unsigned char *p, q[3];

    if (len % 4)
        return -1;
    /* Reserve what the padding says, not the worst case: a full buffer may still fit it. */
    want = len / 4 * 3 - (len && in[len - 1] == '=') - (len > 1 && in[len - 2] == '=');
    if (buf_reserve(out, want) < 0)
        return -1;
    p = (unsigned char *)out->data + out->len;
    for (i = 0; i < len; i += 4) {
        int r = b64_quantum(in + i, i + 4 == len, q);

        if (r < 0) {
            /* The input may be a secret: leave none of it behind. */
            mc_wipe(p, n);
            out->data[out->len] = '\0';
            return -1;
        }
        memcpy(p + n, q, (size_t)r);
        n += (size_t)r;
    }
    mc_wipe(q, sizeof q);
    out->len += n;
    out->data[out->len] = '\0';
    return 0;
}

/* --- SASLprep, the practical part ---------------------------------------- */

/* Decode one UTF-8 sequence strictly (no overlongs, surrogates or > U+10FFFF). */
static int utf8_next(const unsigned char **pp, const unsigned char *end, uint32_t *cp)
{
    const unsigned char *p = *pp;
    uint32_t c = *p, min;
    int n;

    if (c < 0x80)
        n = 0, min = 0;
    else if ((c & 0xe0) == 0xc0)
        n = 1, min = 0x80, c &= 0x1f;
    else if ((c & 0xf0) == 0xe0)
        n = 2, min = 0x800, c &= 0x0f;
    else if ((c & 0xf8) == 0xf0)
        n = 3, min = 0x10000, c &= 0x07;
    else
        return -1;
    if (end - p <= n)
        return -1;
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return -1;
        c = c << 6 | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return -1;
    *cp = c;
    *pp = p + n + 1;
    return 0;
}

struct cp_range {
    uint32_t lo, hi;
};

static bool in_ranges(uint32_t c, const struct cp_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c >= r[i].lo && c <= r[i].hi)
            return true;
    return false;
}

/* RFC 3454 table C.1.2, mapped to SPACE by RFC 4013 section 2.1. */
static const struct cp_range nonascii_space[] = {
    {0x00a0, 0x00a0}, {0x1680, 0x1680}, {0x2000, 0x200b},
    {0x202f, 0x202f}, {0x205f, 0x205f}, {0x3000, 0x3000},
};

/* RFC 3454 table B.1, mapped to nothing. */
static const struct cp_range to_nothing[] = {
    {0x00ad, 0x00ad}, {0x034f, 0x034f}, {0x1806, 0x1806}, {0x180b, 0x180d},
    {0x200b, 0x200d}, {0x2060, 0x2060}, {0xfe00, 0xfe0f}, {0xfeff, 0xfeff},
};

/* RFC 4013 section 2.3: tables C.2.1 to C.9 of RFC 3454. */
static const struct cp_range prohibited[] = {
    {0x0000, 0x001f},   {0x007f, 0x009f},    {0x0340, 0x0341},   {0x06dd, 0x06dd},
    {0x070f, 0x070f},   {0x180e, 0x180e},    {0x200c, 0x200f},   {0x2028, 0x202e},
    {0x2060, 0x2063},   {0x206a, 0x206f},    {0x2ff0, 0x2ffb},   {0xe000, 0xf8ff},
    {0xfdd0, 0xfdef},   {0xfff9, 0xfffd},    {0x1d173, 0x1d17a}, {0xe0001, 0xe0001},
    {0xe0020, 0xe007f}, {0xf0000, 0x10ffff},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* U+xFFFE and U+xFFFF in every plane are non-characters (table C.4). */
static bool is_prohibited(uint32_t c)
{
    return (c & 0xfffe) == 0xfffe || in_ranges(c, prohibited, NELEM(prohibited));
}

/*
 * Map and check one string (see sasl.h for what is left out).  Kept code
 * points are copied as their original bytes, so no encoder is needed.
 * Returns a new string, or NULL with *why set.
 */
static char *saslprep(const char *in, const char **why)
{
    const unsigned char *p = (const unsigned char *)in, *end = p + strlen(in), *start;
    struct buf out;
    uint32_t c;
    int r = 0;

    buf_init(&out, BUF_NOLIMIT);
    while (p < end && r == 0) {
        start = p;
        if (utf8_next(&p, end, &c) < 0) {
            *why = "is not valid UTF-8";
            r = -1;
        } else if (in_ranges(c, nonascii_space, NELEM(nonascii_space))) {
            r = buf_addch(&out, ' ');
        } else if (in_ranges(c, to_nothing, NELEM(to_nothing))) {
            continue;
        } else if (is_prohibited(c)) {
            *why = "contains a character SASLprep (RFC 4013) prohibits";
            r = -1;
        } else {
            r = buf_add(&out, start, (size_t)(p - start));
        }
    }
    if (r == 0 && out.len == 0) {
        *why = "is empty after SASLprep (RFC 4013)";
        r = -1;
    }
    if (r < 0) {
        buf_wipe(&out);
        return NULL;
    }
    return buf_detach(&out, NULL);
}

/* --- contexts ----------------------------------------------------------- */

static bool empty(const char *s)
{
    return s == NULL || *s == '\0';
}

static int check_creds(const struct mech_info *mi, const struct sasl_creds *c, struct mc_err *err)
{
    bool oauth = mi->kind == K_OAUTHBEARER || mi->kind == K_XOAUTH2;

    if (mi->needs_user && empty(c->user))
        return mc_err_set(err, MC_CONFIG, "authentication with %s needs a user name: set 'user'",
                          mi->name);
    if (mi->needs_secret && empty(c->secret))
        return mc_err_set(err, MC_CONFIG,
                          "authentication with %s needs %s: set 'password' or 'passwordeval'",
                          mi->name, oauth ? "an access token" : "a password");
    /* OAuth fields are framed by ^A; a control character would break the frame. */
    if (oauth && ((c->user && mc_has_ctl(c->user)) || mc_has_ctl(c->secret) ||
                  (c->host && mc_has_ctl(c->host))))
        return mc_err_set(err, MC_CONFIG,
                          "authentication with %s: the user name, token or host contains a "
                          "control character",
                          mi->name);
    return 0;
}

/* ASCII only, whatever the locale says. */
static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* cb-name = 1*(ALPHA / DIGIT / "." / "-"), RFC 5056 section 7. */
static bool valid_cbtype(const char *t)
{
    if (empty(t) || strlen(t) > 64)
        return false;
    for (; *t; t++)
        if (!(is_alpha(*t) || (*t >= '0' && *t <= '9') || *t == '.' || *t == '-'))
            return false;
    return true;
}

static int take_cbind(struct sasl *s, const struct sasl_cbind *cb, struct mc_err *err)
{
    if (!s->info->plus) {
        s->cb_y = cb != NULL && !empty(cb->type) && cb->server_lacks_plus;
        return 0;
    }
    if (cb == NULL || empty(cb->type) || cb->data == NULL || cb->len == 0)
        return mc_err_set(err, MC_CONFIG,
                          "authentication with %s needs TLS channel binding, which this "
                          "connection does not have",
                          s->info->name);
    if (!valid_cbtype(cb->type) || cb->len > CBIND_MAX)
        return mc_err_set(err, MC_SOFTWARE, "bad channel binding for %s", s->info->name);
    s->cbtype = mc_strdup(cb->type);
    s->cbdata = mc_calloc(1, cb->len);
    memcpy(s->cbdata, cb->data, cb->len);
    s->cblen = cb->len;
    return 0;
}

/* Replace *field with its SASLprep form. */
static int prep_field(struct sasl *s, char **field, const char *what, struct mc_err *err)
{
    const char *why = "";
    char *p = saslprep(*field, &why);

    if (p == NULL)
        return mc_err_set(err, MC_CONFIG, "authentication with %s: the %s %s", s->info->name, what,
                          why);
    mc_free_secret(*field);
    *field = p;
    return 0;
}

/* saslname: ',' and '=' would end or confuse an attribute, RFC 5802 section 5.1. */
static int add_saslname(struct buf *b, const char *name)
{
    int r = 0;

    for (; *name && r == 0; name++) {
        if (*name == ',')
            r = buf_addstr(b, "=2C");
        else if (*name == '=')
            r = buf_addstr(b, "=3D");
        else
            r = buf_addch(b, *name);
    }
    return r;
}

static int build_gs2(struct sasl *s)
{
    struct buf *g = &s->sc.gs2;
    int r;

    if (s->cbtype)
        r = buf_printf(g, "p=%s,", s->cbtype);
    else
        r = buf_addstr(g, s->cb_y ? "y," : "n,");
    if (r == 0 && s->authzid) {
        r = buf_addstr(g, "a=");
        r |= add_saslname(g, s->authzid);
    }
    return r | buf_addch(g, ',');
}

static int scram_init(struct sasl *s, const struct sasl_cbind *cb, struct mc_err *err)
{
    s->sc.md = s->info->sha256 ? EVP_sha256() : EVP_sha1();
    s->sc.mdlen = (size_t)EVP_MD_size(s->sc.md);
    s->sc.max_iter = SASL_SCRAM_MAX_ITER;
    buf_init(&s->sc.gs2, 256);
    buf_init(&s->sc.first_bare, 4096);
    if (prep_field(s, &s->user, "user name", err) < 0 ||
        prep_field(s, &s->secret, "password", err) < 0 || take_cbind(s, cb, err) < 0)
        return -1;
    if (build_gs2(s) < 0)
        return mc_err_set(err, MC_CONFIG, "authentication with %s: the authzid is too long",
                          s->info->name);
    return 0;
}

static char *dup_or_null(const char *p)
{
    return empty(p) ? NULL : mc_strdup(p);
}

struct sasl *sasl_new(enum sasl_mech m, const struct sasl_creds *c, const struct sasl_cbind *cb,
                      struct mc_err *err)
{
    static const struct sasl_creds none;
    struct sasl *s;

    if ((unsigned)m >= SASL_NMECH) {
        mc_err_set(err, MC_SOFTWARE, "unknown SASL mechanism %d", (int)m);
        return NULL;
    }
    if (c == NULL)
        c = &none;
    if (check_creds(&mech_tab[m], c, err) < 0)
        return NULL;
    s = mc_calloc(1, sizeof *s);
    s->mech = m;
    s->info = &mech_tab[m];
    s->user = dup_or_null(c->user);
    s->secret = dup_or_null(c->secret);
    s->authzid = dup_or_null(c->authzid);
    s->host = dup_or_null(c->host);
    s->port = c->port;
    if (s->info->kind == K_SCRAM && scram_init(s, cb, err) < 0) {
        sasl_free(s);
        return NULL;
    }
    return s;
}

void sasl_free(struct sasl *s)
{
    if (s == NULL)
        return;
    mc_free_secret(s->user);
    mc_free_secret(s->secret);
    mc_free_secret(s->authzid);
    free(s->host);
    free(s->cbtype);
    if (s->cbdata)
        OPENSSL_cleanse(s->cbdata, s->cblen);
    free(s->cbdata);
    if (s->info->kind == K_SCRAM) {
        buf_wipe(&s->sc.gs2);
        buf_wipe(&s->sc.first_bare);
    }
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

const char *sasl_note(const struct sasl *s)
{
    return s->note[0] ? s->note : NULL;
}

int sasl_scram_set_nonce_for_test(struct sasl *s, const char *nonce)
{
    size_t n = strlen(nonce);

    if (s->info->kind != K_SCRAM || s->state != ST_INIT || n == 0 || n > SCRAM_NONCE_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (nonce[i] < 0x21 || nonce[i] > 0x7e || nonce[i] == ',')
            return -1;
    memcpy(s->sc.nonce, nonce, n + 1);
    return 0;
}

void sasl_scram_set_max_iter_for_test(struct sasl *s, unsigned long max)
{
    s->sc.max_iter = max < SASL_SCRAM_MAX_ITER ? max : SASL_SCRAM_MAX_ITER;
}

/* --- responses without SCRAM -------------------------------------------- */

/* out could not hold the response; what it holds may be half a secret. */
static int too_long(struct sasl *s, struct buf *out, struct mc_err *err)
{
    mc_wipe(out->data, out->len);
    buf_reset(out);
    return mc_err_set(err, MC_SOFTWARE, "the %s response does not fit in %zu bytes", s->info->name,
                      out->max);
}

static int plain_response(struct sasl *s, struct buf *out)
{
    int r = 0;

    if (s->authzid)
        r |= buf_addstr(out, s->authzid);
    r |= buf_addch(out, '\0');
    r |= buf_addstr(out, s->user);
    r |= buf_addch(out, '\0');
    r |= buf_addstr(out, s->secret);
    return r;
}

static int xoauth2_response(struct sasl *s, struct buf *out)
{
    return buf_printf(out, "user=%s\001auth=Bearer %s\001\001", s->user, s->secret);
}

/* RFC 7628 section 3.1; host and port are left out when unknown. */
static int oauthbearer_response(struct sasl *s, struct buf *out)
{
    int r = buf_addstr(out, "n,");

    if (s->user) {
        r |= buf_addstr(out, "a=");
        r |= add_saslname(out, s->user);
    }
    r |= buf_addstr(out, ",\001");
    if (s->host)
        r |= buf_printf(out, "host=%s\001", s->host);
    if (s->port > 0)
        r |= buf_printf(out, "port=%d\001", s->port);
    r |= buf_printf(out, "auth=Bearer %s\001\001", s->secret);
    return r;
}

/* Keep the OAuth server's error JSON for the log: it says which scope or token failed. */
static void note_server_said(struct sasl *s, const unsigned char *chal, size_t len)
{
    char shown[160];

    sanitize(shown, sizeof shown, (const char *)chal, len, 150);
    snprintf(s->note, sizeof s->note, "server said: %s", shown);
}

static bool prompt_is(const unsigned char *chal, size_t len, const char *word)
{
    size_t n = strlen(word);

    return len >= n && strncasecmp((const char *)chal, word, n) == 0;
}

static int login_step(struct sasl *s, const unsigned char *chal, size_t len, struct buf *out,
                      struct mc_err *err)
{
    bool pass;

    if (++s->login_prompts > LOGIN_MAX_PROMPTS)
        return mc_err_set(err, MC_PROTOCOL, "server keeps prompting after %d LOGIN answers",
                          LOGIN_MAX_PROMPTS);
    if (prompt_is(chal, len, "user"))
        pass = false;
    else if (prompt_is(chal, len, "pass"))
        pass = true;
    else if (!s->login_user_sent || !s->login_pass_sent)
        pass = s->login_user_sent;
    else
        return mc_err_set(err, MC_PROTOCOL, "unexpected LOGIN prompt after the password");
    if (buf_addstr(out, pass ? s->secret : s->user) < 0)
        return too_long(s, out, err);
    if (pass)
        s->login_pass_sent = true;
    else
        s->login_user_sent = true;
    return 0;
}

/* RFC 2195: the user name, a space, HMAC-MD5(password, challenge) in lower-case hex. */
static int cram_step(struct sasl *s, const unsigned char *chal, size_t len, struct buf *out,
                     struct mc_err *err)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    int r;

    if (len == 0)
        return mc_err_set(err, MC_PROTOCOL, "empty CRAM-MD5 challenge");
    if (HMAC(EVP_md5(), s->secret, (int)strlen(s->secret), chal, len, mac, &maclen) == NULL)
        return mc_err_set(err, MC_SOFTWARE, "HMAC-MD5 is not available in libcrypto");
    r = buf_printf(out, "%s ", s->user);
    for (unsigned i = 0; i < maclen && r == 0; i++)
        r = buf_printf(out, "%02x", mac[i]);
    OPENSSL_cleanse(mac, sizeof mac);
    s->state = ST_DONE;
    return r < 0 ? too_long(s, out, err) : 0;
}

/* --- SCRAM -------------------------------------------------------------- */

static int scram_first(struct sasl *s, struct buf *out, struct mc_err *err)
{
    struct buf *bare = &s->sc.first_bare;
    unsigned char rnd[SCRAM_NONCE_RAND];
    struct buf nb;

    if (s->sc.nonce[0] == '\0') {
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return mc_err_set(err, MC_SOFTWARE, "libcrypto has no random bytes for the nonce");
        buf_init(&nb, SCRAM_NONCE_MAX);
        if (b64_encode(rnd, sizeof rnd, &nb) < 0)
            return mc_err_set(err, MC_OSERR, "out of memory");
        memcpy(s->sc.nonce, nb.data, nb.len + 1);
        buf_release(&nb);
    }
    buf_reset(bare);
    if (buf_addstr(bare, "n=") < 0 || add_saslname(bare, s->user) < 0 ||
        buf_printf(bare, ",r=%s", s->sc.nonce) < 0)
        return mc_err_set(err, MC_CONFIG, "authentication with %s: the user name is too long",
                          s->info->name);
    if (buf_add(out, s->sc.gs2.data, s->sc.gs2.len) < 0 || buf_add(out, bare->data, bare->len) < 0)
        return too_long(s, out, err);
    return 0;
}

/* A parsed server-first message; pointers into the challenge. */
struct server_first {
    const char *nonce, *salt, *iter;
    size_t nonce_len, salt_len, iter_len;
    unsigned long iterations;
};

/* Read "<name>=<value>" at *p up to the next ',' or the end; leaves *p there. */
static bool attr(const char **p, const char *end, char name, const char **val, size_t *len)
{
    const char *q = *p, *comma;

    if (end - q < 2 || q[0] != name || q[1] != '=')
        return false;
    *val = q + 2;
    comma = memchr(*val, ',', (size_t)(end - *val));
    *len = (size_t)((comma ? comma : end) - *val);
    *p = *val + *len;
    return true;
}

static bool comma(const char **p, const char *end)
{
    if (*p < end && **p == ',') {
        (*p)++;
        return true;
    }
    return false;
}

/* Anything after the fields we know must still look like ",x=...". */
static bool extensions_ok(const char *p, const char *end)
{
    const char *v;
    size_t n;

    while (p < end) {
        if (!comma(&p, end) || end - p < 2 || !is_alpha(*p) || !attr(&p, end, *p, &v, &n))
            return false;
    }
    return true;
}

/* The server's messages are text; a control byte means we are not talking SCRAM. */
static bool has_ctl(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] == 0x7f)
            return true;
    return false;
}

static int server_error(const char *v, size_t n, struct mc_err *err)
{
    char shown[104];

    sanitize(shown, sizeof shown, v, n, 100);
    return mc_err_set(err, MC_PROTOCOL, "server refused: e=%s", shown);
}

/*
 * posit-number: digits, no sign, no leading zero.  A value past nine digits
 * saturates (it is over the cap anyway) so a 32-bit long cannot overflow.
 */
static bool parse_iter(const char *v, size_t n, unsigned long *out)
{
    unsigned long x = 0;

    if (n == 0 || v[0] == '0')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x < 100000000UL ? x * 10 + (unsigned long)(v[i] - '0') : 999999999UL;
    }
    *out = x;
    return true;
}

static bool printable_nonce(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            return false;
    return true;
}

static int check_server_first(struct sasl *s, struct server_first *sf, struct mc_err *err)
{
    size_t cn = strlen(s->sc.nonce);

    if (!printable_nonce(sf->nonce, sf->nonce_len))
        return mc_err_set(err, MC_PROTOCOL, "malformed server nonce");
    if (sf->nonce_len < cn || memcmp(sf->nonce, s->sc.nonce, cn) != 0)
        return mc_err_set(err, MC_PROTOCOL, "server nonce does not start with the client nonce");
    if (sf->nonce_len == cn)
        return mc_err_set(err, MC_PROTOCOL, "server nonce adds nothing to the client nonce");
    if (!parse_iter(sf->iter, sf->iter_len, &sf->iterations))
        return mc_err_set(err, MC_PROTOCOL, "malformed iteration count");
    if (sf->iterations > s->sc.max_iter)
        return mc_err_set(err, MC_PROTOCOL,
                          "server asks for %lu iterations, more than the %lu mailcar allows",
                          sf->iterations, s->sc.max_iter);
    if (sf->iterations < SCRAM_ITER_ADVISED)
        snprintf(s->note, sizeof s->note,
                 "server uses %lu SCRAM iterations, fewer than the %d RFC 7677 advises",
                 sf->iterations, SCRAM_ITER_ADVISED);
    return 0;
}

/* server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," ext] */
static int parse_server_first(struct sasl *s, const char *p, const char *end,
                              struct server_first *sf, struct mc_err *err)
{
    const char *v;
    size_t n;

    if (attr(&p, end, 'm', &v, &n))
        return mc_err_set(err, MC_PROTOCOL, "server requires a SCRAM extension mailcar lacks");
    if (attr(&p, end, 'e', &v, &n))
        return server_error(v, n, err);
    if (!attr(&p, end, 'r', &sf->nonce, &sf->nonce_len) || !comma(&p, end) ||
        !attr(&p, end, 's', &sf->salt, &sf->salt_len) || !comma(&p, end) ||
        !attr(&p, end, 'i', &sf->iter, &sf->iter_len) || !extensions_ok(p, end))
        return mc_err_set(err, MC_PROTOCOL, "malformed server-first message");
    return check_server_first(s, sf, err);
}

static bool hmac(const struct scram *sc, const unsigned char *key, const void *data, size_t len,
                 unsigned char *mac)
{
    unsigned int n = 0;

    return HMAC(sc->md, key, (int)sc->mdlen, data, len, mac, &n) != NULL && n == sc->mdlen;
}

/*
 * RFC 5802 section 3: SaltedPassword, the client proof, and the server
 * signature we keep for the server-final message.  Every key is wiped.
 */
static int scram_proof(struct sasl *s, const struct buf *salt, unsigned long iter,
                       const struct buf *authmsg, unsigned char *proof, struct mc_err *err)
{
    struct scram *sc = &s->sc;
    unsigned char salted[EVP_MAX_MD_SIZE], ckey[EVP_MAX_MD_SIZE], stored[EVP_MAX_MD_SIZE];
    unsigned char csig[EVP_MAX_MD_SIZE], skey[EVP_MAX_MD_SIZE];
    bool ok;

    ok = PKCS5_PBKDF2_HMAC(s->secret, (int)strlen(s->secret), (const unsigned char *)salt->data,
                           (int)salt->len, (int)iter, sc->md, (int)sc->mdlen, salted) == 1 &&
         hmac(sc, salted, "Client Key", 10, ckey) &&
         EVP_Digest(ckey, sc->mdlen, stored, NULL, sc->md, NULL) == 1 &&
         hmac(sc, stored, authmsg->data, authmsg->len, csig) &&
         hmac(sc, salted, "Server Key", 10, skey) &&
         hmac(sc, skey, authmsg->data, authmsg->len, sc->server_sig);
    for (size_t i = 0; ok && i < sc->mdlen; i++)
        proof[i] = ckey[i] ^ csig[i];
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(ckey, sizeof ckey);
    OPENSSL_cleanse(stored, sizeof stored);
    OPENSSL_cleanse(csig, sizeof csig);
    OPENSSL_cleanse(skey, sizeof skey);
    return ok ? 0 : mc_err_set(err, MC_SOFTWARE, "libcrypto failed to compute the SCRAM proof");
}

/* client-final-message-without-proof: "c=" base64(gs2 header + binding data) ",r=" nonce */
static int final_without_proof(struct sasl *s, const struct server_first *sf, struct buf *out)
{
    struct buf cb;
    int r;

    buf_init(&cb, SASL_CHAL_MAX);
    r = buf_add(&cb, s->sc.gs2.data, s->sc.gs2.len);
    if (s->cbdata)
        r |= buf_add(&cb, s->cbdata, s->cblen);
    r |= buf_addstr(out, "c=");
    if (r == 0)
        r = b64_encode((const unsigned char *)cb.data, cb.len, out);
    r |= buf_addstr(out, ",r=");
    r |= buf_add(out, sf->nonce, sf->nonce_len);
    buf_wipe(&cb);
    return r;
}

static int scram_final(struct sasl *s, const unsigned char *chal, size_t len, struct buf *out,
                       struct mc_err *err)
{
    const char *p = (const char *)chal;
    struct server_first sf = {0};
    struct buf salt, authmsg;
    unsigned char proof[EVP_MAX_MD_SIZE];
    int r = -1;

    if (has_ctl(chal, len))
        return mc_err_set(err, MC_PROTOCOL, "malformed server-first message");
    if (parse_server_first(s, p, p + len, &sf, err) < 0)
        return -1;
    buf_init(&salt, SCRAM_SALT_MAX);
    buf_init(&authmsg, 3 * SASL_CHAL_MAX);
    if (b64_decode(sf.salt, sf.salt_len, &salt) < 0 || salt.len == 0) {
        mc_err_set(err, MC_PROTOCOL, "malformed salt in the server-first message");
        goto out;
    }
    if (final_without_proof(s, &sf, out) < 0) {
        too_long(s, out, err);
        goto out;
    }
    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    if (buf_add(&authmsg, s->sc.first_bare.data, s->sc.first_bare.len) < 0 ||
        buf_addch(&authmsg, ',') < 0 || buf_add(&authmsg, chal, len) < 0 ||
        buf_addch(&authmsg, ',') < 0 || buf_add(&authmsg, out->data, out->len) < 0) {
        mc_err_set(err, MC_OSERR, "out of memory");
        goto out;
    }
    if (scram_proof(s, &salt, sf.iterations, &authmsg, proof, err) < 0)
        goto out;
    if (buf_addstr(out, ",p=") < 0 || b64_encode(proof, s->sc.mdlen, out) < 0) {
        too_long(s, out, err);
        goto out;
    }
    s->state = ST_FINAL;
    r = 0;
out:
    OPENSSL_cleanse(proof, sizeof proof);
    buf_wipe(&salt);
    buf_wipe(&authmsg);
    return r;
}

/* server-final-message = (server-error / verifier) ["," extensions] */
static int scram_verify(struct sasl *s, const unsigned char *chal, size_t len, struct mc_err *err)
{
    const char *p = (const char *)chal, *end = p + len, *v;
    struct buf sig;
    size_t n;
    bool good;

    if (has_ctl(chal, len))
        return mc_err_set(err, MC_PROTOCOL, "malformed server-final message");
    if (attr(&p, end, 'e', &v, &n))
        return server_error(v, n, err);
    buf_init(&sig, EVP_MAX_MD_SIZE);
    if (!attr(&p, end, 'v', &v, &n) || !extensions_ok(p, end) || b64_decode(v, n, &sig) < 0) {
        buf_release(&sig);
        return mc_err_set(err, MC_PROTOCOL, "malformed server-final message");
    }
    good = sig.len == s->sc.mdlen && CRYPTO_memcmp(sig.data, s->sc.server_sig, sig.len) == 0;
    buf_release(&sig);
    if (!good)
        return mc_err_set(err, MC_PROTOCOL,
                          "server signature does not verify: the server does not know the "
                          "password");
    s->sc.verified = true;
    s->state = ST_DONE;
    return 0;
}

/* --- driving ------------------------------------------------------------ */

static int initial_response(struct sasl *s, struct buf *out, struct mc_err *err)
{
    int r = 0;

    switch (s->info->kind) {
    case K_SCRAM:
        if (scram_first(s, out, err) < 0)
            return -1;
        break;
    case K_PLAIN:
        r = plain_response(s, out);
        break;
    case K_EXTERNAL:
        r = s->authzid ? buf_addstr(out, s->authzid) : 0;
        break;
    case K_XOAUTH2:
        r = xoauth2_response(s, out);
        break;
    case K_OAUTHBEARER:
        r = oauthbearer_response(s, out);
        break;
    default:
        return mc_err_set(err, MC_SOFTWARE, "%s has no initial response", s->info->name);
    }
    if (r < 0)
        return too_long(s, out, err);
    /* PLAIN and EXTERNAL have said everything; the others may still hear from the server. */
    s->state = s->info->kind == K_PLAIN || s->info->kind == K_EXTERNAL ? ST_DONE : ST_FIRST;
    return 0;
}

int sasl_start(struct sasl *s, struct buf *out, struct mc_err *err)
{
    buf_reset(out);
    if (s->state != ST_INIT)
        return mc_err_set(err, MC_SOFTWARE, "the %s exchange has already started", s->info->name);
    if (!s->info->initial)
        return 0;
    return initial_response(s, out, err) < 0 ? -1 : 1;
}

/* The OAuth error challenge gets the answer that lets the server send its 5xx. */
static int oauth_error(struct sasl *s, const unsigned char *chal, size_t len, struct buf *out,
                       struct mc_err *err)
{
    note_server_said(s, chal, len);
    s->state = ST_DONE;
    if (s->info->kind == K_OAUTHBEARER && buf_addch(out, '\001') < 0)
        return too_long(s, out, err);
    return 0;
}

static int step(struct sasl *s, const unsigned char *chal, size_t len, struct buf *out,
                struct mc_err *err)
{
    enum mech_kind k = s->info->kind;

    if (s->state == ST_INIT && s->info->initial) {
        if (len != 0)
            return mc_err_set(err, MC_PROTOCOL, "unexpected challenge before the initial response");
        return initial_response(s, out, err);
    }
    if (s->state == ST_DONE)
        return mc_err_set(err, MC_PROTOCOL, "unexpected challenge after the exchange finished");
    if (k == K_LOGIN)
        return login_step(s, chal, len, out, err);
    if (k == K_CRAM)
        return cram_step(s, chal, len, out, err);
    if (k == K_SCRAM)
        return s->state == ST_FIRST ? scram_final(s, chal, len, out, err)
                                    : scram_verify(s, chal, len, err);
    return oauth_error(s, chal, len, out, err);
}

int sasl_step(struct sasl *s, const unsigned char *chal, size_t len, struct buf *out,
              struct mc_err *err)
{
    buf_reset(out);
    if (len > SASL_CHAL_MAX)
        return mc_err_set(err, MC_PROTOCOL, "challenge of %zu bytes is longer than the %d allowed",
                          len, SASL_CHAL_MAX);
    if (step(s, chal, len, out, err) == 0)
        return 0;
    /* After a failure the exchange is over; anything in out must not be sent. */
    mc_wipe(out->data, out->len);
    buf_reset(out);
    s->state = ST_DONE;
    return -1;
}

int sasl_done(struct sasl *s, struct mc_err *err)
{
    if (s->info->kind == K_SCRAM && !s->sc.verified)
        return mc_err_set(err, MC_PROTOCOL,
                          "server accepted %s authentication without proving it knows the password",
                          s->info->name);
    return 0;
}
