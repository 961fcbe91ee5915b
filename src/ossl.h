/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * OpenSSL loaded on first use (see ossl.c): nothing to call, the OpenSSL
 * functions themselves are defined there.
 */
#ifndef MC_OSSL_H
#define MC_OSSL_H

#include <stdbool.h>

/* Whether the library is in the process (always, when linked the usual way). */
bool ossl_loaded(void);

#endif
