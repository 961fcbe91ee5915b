/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * TLS client over a connected socket.  The only module that includes
 * OpenSSL headers.  Verification is on unless the user turned it off:
 * trust store or tls_trust_file, host name (with SNI), optional SHA-256
 * pinning of the certificate or its public key.
 */
#ifndef MC_TLS_H
#define MC_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"

struct io_limits;
struct dns_answer;

struct tls_params {
    const char *host;           /* name to verify and send as SNI */
    const char *trust_file;     /* CA bundle, NULL = system store */
    bool certcheck;             /* verify the chain and name */
    const char *fingerprint;    /* "AA:BB:..." SHA-256 of the cert or its key, or NULL */
    const char *cert_file;      /* client certificate, or NULL */
    const char *key_file;
    const char *min_version;    /* "tls1.2" (default) or "tls1.3" */
    const char *ciphers;        /* OpenSSL cipher list for TLS <= 1.2, or NULL */
    const char *port;           /* with host, names the session cache entry */
    const char *session_dir;    /* TLS session cache directory, NULL = off */
    bool report_only;           /* --serverinfo: verify and report, but go on */
    const struct dns_answer *dane;  /* DNSSEC-validated TLSA records, or NULL */
};

struct tls;

struct tls *tls_start(int fd, const struct tls_params *p, const struct io_limits *lim,
                      struct mc_err *err);
/*
 * The same in two steps: the context (trust store, keys: millions of
 * instructions in OpenSSL 3) can be made while the server is still
 * answering, and the handshake done later.  After a failed tls_handshake
 * the caller frees t.
 */
struct tls *tls_prepare(const struct tls_params *p, struct mc_err *err);
int tls_handshake(struct tls *t, int fd, const struct tls_params *p,
                  const struct io_limits *lim, struct mc_err *err);
ssize_t tls_read(struct tls *t, void *p, size_t n, struct mc_err *err);
int tls_write(struct tls *t, const void *p, size_t n, struct mc_err *err);
bool tls_pending(struct tls *t);
size_t tls_cbind(struct tls *t, const char **type, unsigned char *data, size_t max);
const char *tls_desc(struct tls *t);
/* Whether the handshake resumed a cached session. */
bool tls_resumed(struct tls *t);
/*
 * For --serverinfo: protocol, cipher, resumption, and each certificate of
 * the chain (subject, issuer, validity, SHA-256 of the certificate and of its
 * public key, the forms tls_fingerprint accepts).
 */
void tls_describe(struct tls *t, struct buf *out);
/* "OpenSSL 3.0.x ..." for --version. */
const char *tls_library_version(void);
/* Send close_notify (best effort) and free. */
void tls_free(struct tls *t);

#endif
