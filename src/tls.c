/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * TLS over a non-blocking socket with OpenSSL; see tls.h.  The CA store is
 * used through its hashed directory where possible, so that a send does not
 * parse the whole system bundle (about ten million instructions).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dns.h"
#include "net.h"
#include "ossl.h"
#include "tls.h"
#include "util.h"

struct tls {
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
    const struct io_limits *lim;
    char desc[96];
    char *cache_file;     /* this server's session cache entry, or NULL */
    char pin_note[64];    /* --serverinfo: whether tls_fingerprint matches */
};

/* OpenSSL's own reason for the last failure, or the errno text. */
static const char *ssl_reason(void)
{
    static char text[256];
    unsigned long e = ERR_peek_last_error();

    if (e == 0)
        return errno ? strerror(errno) : "connection closed";
    ERR_error_string_n(e, text, sizeof text);
    ERR_clear_error();
    return text;
}

static int set_min_version(SSL_CTX *ctx, const char *v, struct mc_err *err)
{
    int ver = TLS1_2_VERSION;

    if (v == NULL || mc_streq_ci(v, "tls1.2") || mc_streq_ci(v, "1.2"))
        ver = TLS1_2_VERSION;
    else if (mc_streq_ci(v, "tls1.3") || mc_streq_ci(v, "1.3"))
        ver = TLS1_3_VERSION;
    else
        return mc_err_set(err, MC_CONFIG, "bad tls_min_version '%s': use tls1.2 or tls1.3", v);
    /* A stricter minimum from the system's crypto policy stays. */
    if (SSL_CTX_get_min_proto_version(ctx) > ver)
        ver = (int)SSL_CTX_get_min_proto_version(ctx);
    SSL_CTX_set_min_proto_version(ctx, ver);
    return 0;
}

static int load_trust(SSL_CTX *ctx, const struct tls_params *p, struct mc_err *err)
{
    const char *file = p->trust_file ? p->trust_file : getenv("SSL_CERT_FILE");
    const char *dir = getenv("SSL_CERT_DIR");

    if (file && SSL_CTX_load_verify_locations(ctx, file, NULL) != 1)
        return mc_err_set(err, MC_CONFIG, "cannot load tls_trust_file '%s': %s", file,
                          ssl_reason());
    if (p->trust_file)
        return 0;
    if (dir == NULL)
        dir = X509_get_default_cert_dir();
    if (SSL_CTX_load_verify_locations(ctx, NULL, dir) != 1)
        return mc_err_set(err, MC_CONFIG, "cannot use the system CA directory '%s': %s", dir,
                          ssl_reason());
    return 0;
}

static SSL_CTX *make_ctx(const struct tls_params *p, struct mc_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        mc_err_set(err, MC_SOFTWARE, "TLS setup: %s", ssl_reason());
        return NULL;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
    if (set_min_version(ctx, p->min_version, err) < 0)
        goto fail;
    if (p->ciphers && SSL_CTX_set_cipher_list(ctx, p->ciphers) != 1) {
        mc_err_set(err, MC_CONFIG, "bad tls_ciphers '%s': %s", p->ciphers, ssl_reason());
        goto fail;
    }
    if (p->certcheck && p->fingerprint == NULL && load_trust(ctx, p, err) < 0)
        goto fail;
    if (p->dane && SSL_CTX_dane_enable(ctx) <= 0) {
        mc_err_set(err, MC_SOFTWARE, "DANE setup: %s", ssl_reason());
        goto fail;
    }
    if (p->cert_file &&
        (SSL_CTX_use_certificate_chain_file(ctx, p->cert_file) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx, p->key_file ? p->key_file : p->cert_file,
                                     SSL_FILETYPE_PEM) != 1)) {
        mc_err_set(err, MC_CONFIG, "cannot load client certificate '%s': %s", p->cert_file,
                   ssl_reason());
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static bool is_ip(const char *host)
{
    unsigned char b[16];

    return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

/* --serverinfo wants to show a certificate even when it would be refused. */
static int keep_going(int ok, X509_STORE_CTX *ctx)
{
    (void)ok;
    (void)ctx;
    return 1;
}

/*
 * RFC 7672: the TLSA records replace the usual checks; DANE-EE(3) names no
 * host, so none is checked.  Records OpenSSL cannot use are skipped; with
 * none usable the usual verification applies.
 */
static int add_tlsa(SSL *ssl, const struct tls_params *p, struct mc_err *err)
{
    if (SSL_dane_enable(ssl, p->host) <= 0)
        return mc_err_set(err, MC_SOFTWARE, "DANE setup: %s", ssl_reason());
    SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    for (size_t i = 0; i < p->dane->n; i++) {
        const struct dns_tlsa *r = &p->dane->tlsa[i];
        SSL_dane_tlsa_add(ssl, r->usage, r->selector, r->mtype, r->data, r->len);
    }
    ERR_clear_error();
    return 0;
}

static int setup_ssl(struct tls *t, const struct tls_params *p, struct mc_err *err)
{
    t->ssl = SSL_new(t->ctx);
    if (t->ssl == NULL || SSL_set_fd(t->ssl, t->fd) != 1)
        return mc_err_set(err, MC_SOFTWARE, "TLS setup: %s", ssl_reason());
    if (!is_ip(p->host))
        SSL_set_tlsext_host_name(t->ssl, p->host);
    if (p->certcheck && p->fingerprint == NULL) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
        if (is_ip(p->host))
            X509_VERIFY_PARAM_set1_ip_asc(vp, p->host);
        else
            X509_VERIFY_PARAM_set1_host(vp, p->host, 0);
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (p->dane && add_tlsa(t->ssl, p, err) < 0)
            return -1;
        SSL_set_verify(t->ssl, SSL_VERIFY_PEER, p->report_only ? keep_going : NULL);
    } else {
        SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
    }
    return 0;
}

/* Wait as OpenSSL asks; returns 1 to retry, 0 for a clean end, -1 on error. */
static int ssl_wait(struct tls *t, int r, const char *what, struct mc_err *err)
{
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return net_wait(t->fd, POLLIN, t->lim, what, err) < 0 ? -1 : 1;
    case SSL_ERROR_WANT_WRITE:
        return net_wait(t->fd, POLLOUT, t->lim, what, err) < 0 ? -1 : 1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_last_error() == 0 && (errno == 0 || errno == ECONNRESET || errno == EPIPE))
            return 0;
        /* fall through */
    default:
        return mc_err_set(err, MC_TEMPFAIL, "%s: %s", what, ssl_reason());
    }
}

static void hex(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 3 * i, 4, "%02X%s", d[i], i + 1 < n ? ":" : "");
}

/* Accept "AA:BB..." or "aabb..." for the SHA-256 of the certificate or of its public key. */
static bool pin_matches(const char *want, const char *have)
{
    size_t i = 0, j = 0;

    while (want[i] && have[j]) {
        if (want[i] == ':' || want[i] == ' ') {
            i++;
            continue;
        }
        if (have[j] == ':') {
            j++;
            continue;
        }
        if ((want[i] | 0x20) != (have[j] | 0x20))
            return false;
        i++;
        j++;
    }
    while (want[i] == ':' || want[i] == ' ')
        i++;
    return want[i] == '\0' && have[j] == '\0';
}

static int check_pin(struct tls *t, const char *pin, struct mc_err *err)
{
    X509 *cert = SSL_get1_peer_certificate(t->ssl);
    unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
    char certfp[3 * 32 + 1], keyfp[3 * 32 + 1];
    unsigned int mdlen;
    int len;

    if (cert == NULL)
        return mc_err_set(err, MC_TEMPFAIL, "server sent no TLS certificate");
    X509_digest(cert, EVP_sha256(), md, &mdlen);
    hex(md, 32, certfp);
    len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    EVP_Digest(der, (size_t)(len > 0 ? len : 0), md, &mdlen, EVP_sha256(), NULL);
    hex(md, 32, keyfp);
    OPENSSL_free(der);
    X509_free(cert);
    if (pin_matches(pin, certfp) || pin_matches(pin, keyfp))
        return 0;
    return mc_err_set(err, MC_TEMPFAIL,
                      "TLS certificate does not match tls_fingerprint (certificate %s, key %s)",
                      certfp, keyfp);
}

/*
 * The session cache: one file per server and trust setting, holding a DER
 * SSL_SESSION, written to a temporary name and renamed into place so that
 * concurrent mailcars never read half a file.  Every failure here only
 * costs a full handshake, so errors are not reported.
 */
static char *cache_path(const struct tls_params *p)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    char id[1024], hexid[33], *path;
    int n;

    n = snprintf(id, sizeof id, "%s|%s|%s|%d|%s|%s", p->host, p->port ? p->port : "",
                 p->trust_file ? p->trust_file : "", p->certcheck,
                 p->fingerprint ? p->fingerprint : "", p->cert_file ? p->cert_file : "");
    if (n < 0 || (size_t)n >= sizeof id ||
        EVP_Digest(id, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1)
        return NULL;
    for (int i = 0; i < 16; i++)
        snprintf(hexid + 2 * i, 3, "%02x", md[i]);
    path = malloc(strlen(p->session_dir) + 40);
    if (path)
        snprintf(path, strlen(p->session_dir) + 40, "%s/%s.tls", p->session_dir, hexid);
    return path;
}

static void cache_load(struct tls *t)
{
    unsigned char der[16384];
    const unsigned char *q = der;
    struct stat st;
    SSL_SESSION *sess;
    ssize_t n;
    int fd = open(t->cache_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return;
    /* Only a private file of our own: anything else could be planted. */
    if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && !(st.st_mode & 077) &&
        (n = read(fd, der, sizeof der)) > 0 &&
        (sess = d2i_SSL_SESSION(NULL, &q, (long)n)) != NULL) {
        if (SSL_SESSION_is_resumable(sess))
            SSL_set_session(t->ssl, sess);
        SSL_SESSION_free(sess);
    }
    close(fd);
    mc_wipe(der, sizeof der);
}

static int cache_store(SSL *ssl, SSL_SESSION *sess)
{
    struct tls *t = SSL_get_app_data(ssl);
    unsigned char *der = NULL;
    char tmp[4096];
    int len, fd;

    if (t == NULL || t->cache_file == NULL || (len = i2d_SSL_SESSION(sess, &der)) <= 0)
        return 0;
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", t->cache_file, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        bool ok = write(fd, der, (size_t)len) == len;
        close(fd);
        if (!ok || rename(tmp, t->cache_file) < 0)
            unlink(tmp);
    }
    OPENSSL_clear_free(der, (size_t)len);
    return 0;   /* we keep no reference */
}

static void cache_setup(struct tls *t, const struct tls_params *p)
{
    /* --serverinfo shows a full handshake, and never stores an unverified session. */
    /* Nor under DANE: a resumed session would skip the TLSA check. */
    if (p->session_dir == NULL || p->report_only || p->dane)
        return;
    if (mkdir(p->session_dir, 0700) < 0 && errno != EEXIST)
        return;
    t->cache_file = cache_path(p);
    if (t->cache_file == NULL)
        return;
    SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(t->ctx, cache_store);
    cache_load(t);
}

/*
 * After the handshake, records go out through a buffer: SSL_write makes one
 * 16 KiB record at a time, and a write(2) for each cost more than the
 * encryption does (100 MB: 6,400 writes, 30% of the time).  tls_write
 * flushes it.  Without the buffer (no memory) the records go one by one.
 */
#define GATHER_SIZE (256 * 1024)
static void gather_writes(struct tls *t)
{
    BIO *sock = SSL_get_wbio(t->ssl), *buf = BIO_new(BIO_f_buffer());

    if (buf == NULL || BIO_set_write_buffer_size(buf, GATHER_SIZE) != 1 || !BIO_up_ref(sock)) {
        BIO_free(buf);
        return;
    }
    BIO_push(buf, sock);
    SSL_set0_wbio(t->ssl, buf);
}

static int flush_writes(struct tls *t, struct mc_err *err)
{
    BIO *w = SSL_get_wbio(t->ssl);

    while (BIO_flush(w) <= 0) {
        if (!BIO_should_retry(w))
            return mc_err_set(err, MC_TEMPFAIL, "sending to the server: %s", ssl_reason());
        if (net_wait(t->fd, POLLOUT, t->lim, "sending to the server", err) < 0)
            return -1;
    }
    return 0;
}

static int handshake(struct tls *t, const struct tls_params *p, struct mc_err *err)
{
    int r, w;

    while ((r = SSL_connect(t->ssl)) != 1) {
        long vr = SSL_get_verify_result(t->ssl);
        if (vr == X509_V_ERR_DANE_NO_MATCH && !p->report_only)
            return mc_err_set(err, MC_TEMPFAIL, "TLS certificate of '%s' does not match its "
                              "DNSSEC-signed TLSA records (DANE): refusing the server",
                              p->host);
        if (vr != X509_V_OK && !p->report_only)
            return mc_err_set(err, MC_TEMPFAIL, "TLS certificate of '%s' not accepted: %s",
                              p->host, X509_verify_cert_error_string(vr));
        w = ssl_wait(t, r, "TLS handshake", err);
        if (w == 0)
            return mc_err_set(err, MC_TEMPFAIL, "TLS handshake: server closed the connection");
        if (w < 0)
            return -1;
    }
    if (p->fingerprint && check_pin(t, p->fingerprint, err) < 0) {
        if (!p->report_only)
            return -1;
        snprintf(t->pin_note, sizeof t->pin_note, "does NOT match");
    } else if (p->fingerprint) {
        snprintf(t->pin_note, sizeof t->pin_note, "matches");
    }
    snprintf(t->desc, sizeof t->desc, "%s %s%s", SSL_get_version(t->ssl),
             SSL_get_cipher_name(t->ssl), tls_resumed(t) ? " (session resumed)" : "");
    gather_writes(t);
    return 0;
}

struct tls *tls_prepare(const struct tls_params *p, struct mc_err *err)
{
    struct tls *t = mc_calloc(1, sizeof *t);

    /*
     * Before any other OpenSSL call.  The system's openssl.cnf is read: it
     * is where a distribution's crypto policy lives.  No clean-up at exit,
     * which only frees memory the exit frees anyway (1.4 M instructions, 5%
     * of a STARTTLS submission).
     */
    t->fd = -1;
    if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, NULL) != 1) {
        mc_err_set(err, MC_SOFTWARE, "TLS setup: OpenSSL cannot start: %s", ssl_reason());
        free(t);
        return NULL;
    }
    ERR_clear_error();
    t->ctx = make_ctx(p, err);
    if (t->ctx == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

int tls_handshake(struct tls *t, int fd, const struct tls_params *p,
                  const struct io_limits *lim, struct mc_err *err)
{
    t->fd = fd;
    t->lim = lim;
    if (setup_ssl(t, p, err) < 0)
        return -1;
    SSL_set_app_data(t->ssl, t);
    cache_setup(t, p);
    if (handshake(t, p, err) < 0) {
        /* A failed handshake must not leave a session to resume. */
        if (t->cache_file)
            unlink(t->cache_file);
        SSL_set_app_data(t->ssl, NULL);
        return -1;
    }
    return 0;
}

struct tls *tls_start(int fd, const struct tls_params *p, const struct io_limits *lim,
                      struct mc_err *err)
{
    struct tls *t = tls_prepare(p, err);

    if (t == NULL)
        return NULL;
    if (tls_handshake(t, fd, p, lim, err) < 0) {
        tls_free(t);
        return NULL;
    }
    return t;
}

ssize_t tls_read(struct tls *t, void *p, size_t n, struct mc_err *err)
{
    size_t got;
    int r, w;

    while ((r = SSL_read_ex(t->ssl, p, n, &got)) != 1) {
        w = ssl_wait(t, r, "waiting for the server", err);
        if (w <= 0)
            return w;
    }
    return (ssize_t)got;
}

int tls_write(struct tls *t, const void *p, size_t n, struct mc_err *err)
{
    const char *q = p;
    size_t done;
    int r, w;

    while (n > 0) {
        r = SSL_write_ex(t->ssl, q, n, &done);
        if (r == 1) {
            q += done;
            n -= done;
            continue;
        }
        w = ssl_wait(t, r, "sending to the server", err);
        if (w == 0)
            return mc_err_set(err, MC_TEMPFAIL, "server closed the connection");
        if (w < 0)
            return -1;
    }
    return flush_writes(t, err);
}

bool tls_pending(struct tls *t)
{
    char b;

    return SSL_pending(t->ssl) > 0 || recv(t->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

size_t tls_cbind(struct tls *t, const char **type, unsigned char *data, size_t max)
{
    if (SSL_version(t->ssl) >= TLS1_3_VERSION) {
        /* RFC 9266 */
        if (max < 32 || SSL_export_keying_material(t->ssl, data, 32, "EXPORTER-Channel-Binding",
                                                   24, NULL, 0, 0) != 1)
            return 0;
        *type = "tls-exporter";
        return 32;
    }
    /* RFC 5929: the first Finished message of the handshake. */
    *type = "tls-unique";
    return SSL_session_reused(t->ssl) ? SSL_get_peer_finished(t->ssl, data, max)
                                      : SSL_get_finished(t->ssl, data, max);
}

const char *tls_desc(struct tls *t)
{
    return t->desc;
}

bool tls_resumed(struct tls *t)
{
    return SSL_session_reused(t->ssl) == 1;
}

void tls_free(struct tls *t)
{
    if (t == NULL)
        return;
    if (t->ssl) {
        if (SSL_is_init_finished(t->ssl))
            SSL_shutdown(t->ssl);   /* best effort close_notify; no waiting */
        SSL_free(t->ssl);
    }
    SSL_CTX_free(t->ctx);
    free(t->cache_file);
    free(t);
}

static void print_name(struct buf *out, const char *label, X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text;
    long n;

    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    n = BIO_get_mem_data(bio, &text);
    buf_printf(out, "    %-10s %.*s\n", label, (int)n, text);
    BIO_free(bio);
}

static void print_time(struct buf *out, const char *label, const ASN1_TIME *tm)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text;
    long n;

    ASN1_TIME_print(bio, tm);
    n = BIO_get_mem_data(bio, &text);
    buf_printf(out, "    %-10s %.*s\n", label, (int)n, text);
    BIO_free(bio);
}

static void print_cert(struct buf *out, X509 *cert, int depth)
{
    unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
    char fp[3 * 32 + 1];
    unsigned int mdlen;
    int len;

    buf_printf(out, "  certificate %d%s\n", depth, depth == 0 ? " (server)" : "");
    print_name(out, "subject", X509_get_subject_name(cert));
    print_name(out, "issuer", X509_get_issuer_name(cert));
    print_time(out, "valid from", X509_get0_notBefore(cert));
    print_time(out, "valid to", X509_get0_notAfter(cert));
    X509_digest(cert, EVP_sha256(), md, &mdlen);
    hex(md, 32, fp);
    buf_printf(out, "    %-10s %s\n", "sha256", fp);
    len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (len > 0 && EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) == 1) {
        hex(md, 32, fp);
        buf_printf(out, "    %-10s %s\n", "key sha256", fp);
    }
    OPENSSL_free(der);
}

void tls_describe(struct tls *t, struct buf *out)
{
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(t->ssl);
    long vr = SSL_get_verify_result(t->ssl);

    buf_printf(out, "  TLS: %s\n", t->desc);
    buf_printf(out, "  verification: %s\n", SSL_get_verify_mode(t->ssl) == SSL_VERIFY_NONE
                                                  ? "not done (tls_certcheck off or pinned)"
                                                  : X509_verify_cert_error_string(vr));
    if (t->pin_note[0])
        buf_printf(out, "  tls_fingerprint: %s\n", t->pin_note);
    for (int i = 0; chain && i < sk_X509_num(chain); i++)
        print_cert(out, sk_X509_value(chain, i), i);
}

const char *tls_library_version(void)
{
    /* Not worth loading the library for (see ossl.c): the version it was built with. */
    if (!ossl_loaded())
        return OPENSSL_VERSION_TEXT " (built with; loaded on first use)";
    return OpenSSL_version(OPENSSL_VERSION);
}
