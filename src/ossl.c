/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * OpenSSL, loaded when it is first used.
 *
 * Linked the usual way, libssl and libcrypto cost every run of mailcar
 * about 3 M instructions and 1-2 ms of relocation before main (Debian builds
 * them with BIND_NOW): all of `--version`, most of a plain submission to a
 * local relay.  With --enable-openssl-dlopen (the default where dlopen
 * exists) every OpenSSL function mailcar calls is defined here, with the
 * prototype from OpenSSL's own headers so that the compiler checks each one,
 * and forwards to the library, opened on the first call.  The definitions
 * are hidden: the libraries themselves (opened RTLD_LOCAL) and anything else
 * cannot bind to them.  Only tls.c and sasl.c call OpenSSL, and only from
 * the main thread; msg.c's threads never do.
 *
 * Without the library there is nothing sensible to go on with: the first
 * call exits with status 71 and says which file it could not open.  That
 * first call is always the TLS set-up, before anything is sent.
 */
#include "config.h"

#ifdef MC_OPENSSL_DLOPEN

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ossl.h"

#ifndef MC_LIBSSL_SONAME
#if OPENSSL_VERSION_MAJOR >= 3
#define MC_LIBSSL_SONAME "libssl.so." OPENSSL_MSTR(OPENSSL_VERSION_MAJOR)
#else
#define MC_LIBSSL_SONAME "libssl.so.1.1"
#endif
#endif

#define HIDDEN __attribute__((visibility("hidden")))

static void *libssl;   /* its dependencies (libcrypto) are searched through it */

static void *sym(const char *name)
{
    void *p;

    if (libssl == NULL && (libssl = dlopen(MC_LIBSSL_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        fprintf(stderr, "mailcar: cannot load OpenSSL, needed for TLS: %s\n", dlerror());
        exit(EX_OSERR);
    }
    if ((p = dlsym(libssl, name)) == NULL) {
        fprintf(stderr, "mailcar: OpenSSL (%s) lacks %s: %s\n", MC_LIBSSL_SONAME, name, dlerror());
        exit(EX_OSERR);
    }
    return p;
}

bool ossl_loaded(void)
{
    return libssl != NULL;
}

/* dlsym's void * to a function pointer, the way POSIX allows. */
#define RESOLVE(fn, name) \
    do { \
        if ((fn) == NULL) { \
            void *p_ = sym(name); \
            memcpy(&(fn), &p_, sizeof(fn)); \
        } \
    } while (0)

/* FWD(type, name, (params), (args)): name forwards to the library's name. */
#define FWD(ret, name, params, args) \
    HIDDEN ret name params \
    { \
        static ret(*fn) params; /* NOLINT(bugprone-macro-parentheses): a parameter list */ \
        RESOLVE(fn, #name); \
        return fn args; \
    }
#define FWD_VOID(name, params, args) \
    HIDDEN void name params \
    { \
        static void(*fn) params; /* NOLINT(bugprone-macro-parentheses) */ \
        RESOLVE(fn, #name); \
        fn args; \
    }

/* libcrypto */
FWD(int, ASN1_TIME_print, (BIO *b, const ASN1_TIME *t), (b, t))
FWD(long, BIO_ctrl, (BIO *b, int cmd, long larg, void *parg), (b, cmd, larg, parg))
FWD(const BIO_METHOD *, BIO_f_buffer, (void), ())
FWD(int, BIO_free, (BIO *a), (a))
FWD(long, BIO_int_ctrl, (BIO *b, int cmd, long larg, int iarg), (b, cmd, larg, iarg))
FWD(BIO *, BIO_new, (const BIO_METHOD *type), (type))
FWD(BIO *, BIO_push, (BIO *b, BIO *append), (b, append))
FWD(const BIO_METHOD *, BIO_s_mem, (void), ())
FWD(int, BIO_test_flags, (const BIO *b, int flags), (b, flags))
FWD(int, BIO_up_ref, (BIO *a), (a))
FWD_VOID(CRYPTO_clear_free, (void *ptr, size_t num, const char *file, int line),
         (ptr, num, file, line))
FWD_VOID(CRYPTO_free, (void *ptr, const char *file, int line), (ptr, file, line))
FWD(int, CRYPTO_memcmp, (const void *a, const void *b, size_t len), (a, b, len))
FWD_VOID(ERR_clear_error, (void), ())
FWD_VOID(ERR_error_string_n, (unsigned long e, char *buf, size_t len), (e, buf, len))
FWD(unsigned long, ERR_peek_last_error, (void), ())
FWD(int, EVP_Digest,
    (const void *data, size_t count, unsigned char *md, unsigned int *size, const EVP_MD *type,
     ENGINE *impl),
    (data, count, md, size, type, impl))
FWD(int, EVP_MD_get_size, (const EVP_MD *md), (md))
FWD(const EVP_MD *, EVP_md5, (void), ())
FWD(const EVP_MD *, EVP_sha1, (void), ())
FWD(const EVP_MD *, EVP_sha256, (void), ())
FWD(unsigned char *, HMAC,
    (const EVP_MD *evp_md, const void *key, int key_len, const unsigned char *data,
     size_t data_len, unsigned char *md, unsigned int *md_len),
    (evp_md, key, key_len, data, data_len, md, md_len))
FWD_VOID(OPENSSL_cleanse, (void *ptr, size_t len), (ptr, len))
FWD(int, OPENSSL_sk_num, (const OPENSSL_STACK *st), (st))
FWD(void *, OPENSSL_sk_value, (const OPENSSL_STACK *st, int i), (st, i))
FWD(const char *, OpenSSL_version, (int type), (type))
FWD(int, PKCS5_PBKDF2_HMAC,
    (const char *pass, int passlen, const unsigned char *salt, int saltlen, int iter,
     const EVP_MD *digest, int keylen, unsigned char *out),
    (pass, passlen, salt, saltlen, iter, digest, keylen, out))
FWD(int, RAND_bytes, (unsigned char *buf, int num), (buf, num))
FWD(int, X509_NAME_print_ex, (BIO *out, const X509_NAME *nm, int indent, unsigned long flags),
    (out, nm, indent, flags))
FWD(int, X509_VERIFY_PARAM_set1_host, (X509_VERIFY_PARAM *param, const char *name, size_t namelen),
    (param, name, namelen))
FWD(int, X509_VERIFY_PARAM_set1_ip_asc, (X509_VERIFY_PARAM *param, const char *ipasc),
    (param, ipasc))
FWD_VOID(X509_VERIFY_PARAM_set_hostflags, (X509_VERIFY_PARAM *param, unsigned int flags),
         (param, flags))
FWD(int, X509_digest,
    (const X509 *data, const EVP_MD *type, unsigned char *md, unsigned int *len),
    (data, type, md, len))
FWD_VOID(X509_free, (X509 *a), (a))
FWD(const ASN1_TIME *, X509_get0_notAfter, (const X509 *x), (x))
FWD(const ASN1_TIME *, X509_get0_notBefore, (const X509 *x), (x))
FWD(X509_PUBKEY *, X509_get_X509_PUBKEY, (const X509 *x), (x))
FWD(const char *, X509_get_default_cert_dir, (void), ())
FWD(X509_NAME *, X509_get_issuer_name, (const X509 *a), (a))
FWD(X509_NAME *, X509_get_subject_name, (const X509 *a), (a))
FWD(const char *, X509_verify_cert_error_string, (long n), (n))
FWD(int, i2d_X509_PUBKEY, (const X509_PUBKEY *a, unsigned char **out), (a, out))

/* libssl */
FWD(const char *, SSL_CIPHER_get_name, (const SSL_CIPHER *c), (c))
FWD(long, SSL_CTX_ctrl, (SSL_CTX *ctx, int cmd, long larg, void *parg), (ctx, cmd, larg, parg))
FWD(int, SSL_CTX_dane_enable, (SSL_CTX *ctx), (ctx))
FWD_VOID(SSL_CTX_free, (SSL_CTX *ctx), (ctx))
FWD(int, SSL_CTX_load_verify_locations, (SSL_CTX *ctx, const char *CAfile, const char *CApath),
    (ctx, CAfile, CApath))
FWD(SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *meth), (meth))
FWD_VOID(SSL_CTX_sess_set_new_cb,
         (SSL_CTX *ctx, int (*new_session_cb)(struct ssl_st *ssl, SSL_SESSION *sess)),
         (ctx, new_session_cb))
FWD(int, SSL_CTX_set_cipher_list, (SSL_CTX *ctx, const char *str), (ctx, str))
FWD(int, SSL_CTX_use_PrivateKey_file, (SSL_CTX *ctx, const char *file, int type),
    (ctx, file, type))
FWD(int, SSL_CTX_use_certificate_chain_file, (SSL_CTX *ctx, const char *file), (ctx, file))
FWD_VOID(SSL_SESSION_free, (SSL_SESSION *ses), (ses))
FWD(int, SSL_SESSION_is_resumable, (const SSL_SESSION *s), (s))
FWD(int, SSL_connect, (SSL *ssl), (ssl))
FWD(long, SSL_ctrl, (SSL *ssl, int cmd, long larg, void *parg), (ssl, cmd, larg, parg))
FWD(int, SSL_dane_enable, (SSL *s, const char *basedomain), (s, basedomain))
FWD(unsigned long, SSL_dane_set_flags, (SSL *ssl, unsigned long flags), (ssl, flags))
FWD(int, SSL_dane_tlsa_add,
    (SSL *s, uint8_t usage, uint8_t selector, uint8_t mtype, const unsigned char *data,
     size_t dlen),
    (s, usage, selector, mtype, data, dlen))
FWD(int, SSL_export_keying_material,
    (SSL *s, unsigned char *out, size_t olen, const char *label, size_t llen,
     const unsigned char *context, size_t contextlen, int use_context),
    (s, out, olen, label, llen, context, contextlen, use_context))
FWD_VOID(SSL_free, (SSL *ssl), (ssl))
FWD(X509_VERIFY_PARAM *, SSL_get0_param, (SSL *ssl), (ssl))
FWD(X509 *, SSL_get1_peer_certificate, (const SSL *s), (s))
FWD(const SSL_CIPHER *, SSL_get_current_cipher, (const SSL *s), (s))
FWD(int, SSL_get_error, (const SSL *s, int ret_code), (s, ret_code))
FWD(void *, SSL_get_ex_data, (const SSL *ssl, int idx), (ssl, idx))
FWD(size_t, SSL_get_finished, (const SSL *s, void *buf, size_t count), (s, buf, count))
FWD(STACK_OF(X509) *, SSL_get_peer_cert_chain, (const SSL *s), (s))
FWD(size_t, SSL_get_peer_finished, (const SSL *s, void *buf, size_t count), (s, buf, count))
FWD(int, SSL_get_verify_mode, (const SSL *s), (s))
FWD(long, SSL_get_verify_result, (const SSL *ssl), (ssl))
FWD(const char *, SSL_get_version, (const SSL *s), (s))
FWD(BIO *, SSL_get_wbio, (const SSL *s), (s))
FWD(int, SSL_is_init_finished, (const SSL *s), (s))
FWD(SSL *, SSL_new, (SSL_CTX *ctx), (ctx))
FWD(int, SSL_pending, (const SSL *s), (s))
FWD(int, SSL_read_ex, (SSL *ssl, void *buf, size_t num, size_t *readbytes),
    (ssl, buf, num, readbytes))
FWD(int, SSL_session_reused, (const SSL *s), (s))
FWD_VOID(SSL_set0_wbio, (SSL *s, BIO *wbio), (s, wbio))
FWD(int, SSL_set_ex_data, (SSL *ssl, int idx, void *data), (ssl, idx, data))
FWD(int, SSL_set_fd, (SSL *s, int fd), (s, fd))
FWD(int, SSL_set_session, (SSL *to, SSL_SESSION *session), (to, session))
FWD_VOID(SSL_set_verify, (SSL *s, int mode, SSL_verify_cb callback), (s, mode, callback))
FWD(int, SSL_shutdown, (SSL *s), (s))
FWD(int, SSL_version, (const SSL *ssl), (ssl))
FWD(int, SSL_write_ex, (SSL *s, const void *buf, size_t num, size_t *written),
    (s, buf, num, written))
FWD(const SSL_METHOD *, TLS_client_method, (void), ())
FWD(SSL_SESSION *, d2i_SSL_SESSION, (SSL_SESSION **a, const unsigned char **pp, long length),
    (a, pp, length))
FWD(int, i2d_SSL_SESSION, (const SSL_SESSION *in, unsigned char **pp), (in, pp))
FWD(int, OPENSSL_init_ssl, (uint64_t opts, const OPENSSL_INIT_SETTINGS *settings),
    (opts, settings))

#else

/* Linked the usual way: nothing to do here. */
#include "ossl.h"

bool ossl_loaded(void)
{
    return true;
}

#endif
