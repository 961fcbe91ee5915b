/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The byte stream the SMTP engine talks through.  The engine knows nothing
 * of sockets or OpenSSL: net.c provides TCP (and upgrades itself to TLS via
 * tls.c), the unit tests provide memory.  Every operation honours the
 * transport's own per-step timeout and overall deadline; a timeout is
 * MC_TEMPFAIL.
 */
#ifndef MC_CONN_H
#define MC_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"

struct conn;

struct conn_ops {
    /* Some bytes into p: >0, 0 at end of stream, -1 on error. */
    ssize_t (*read)(struct conn *c, void *p, size_t n, struct mc_err *err);
    /* All n bytes, or -1. */
    int (*write)(struct conn *c, const void *p, size_t n, struct mc_err *err);
    /* Switch to TLS in place (STARTTLS); NULL when the transport cannot. */
    int (*starttls)(struct conn *c, struct mc_err *err);
    /* True when bytes have arrived that nobody has read yet. */
    bool (*pending)(struct conn *c);
    /*
     * TLS channel binding for SCRAM-PLUS: fills type and data, returns the
     * length, 0 when none is available (plain connection).
     */
    size_t (*cbind)(struct conn *c, const char **type, unsigned char *data, size_t max);
    /* Short description for logs: "TLSv1.3 TLS_AES_256_GCM_SHA384" or "none". */
    const char *(*tls_desc)(struct conn *c);
    /* The certificate chain and session details, for --serverinfo (may be NULL). */
    void (*tls_report)(struct conn *c, struct buf *out);
    void (*close)(struct conn *c);
};

struct conn {
    const struct conn_ops *ops;
    void *impl;
};

#endif
