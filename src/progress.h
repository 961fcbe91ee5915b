/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Progress of a large send on a terminal, and colour for the error line.
 * progress_attach wraps an open connection in place: large writes are cut
 * into slices and, after each, one status line (bytes, rate, time left) is
 * redrawn on the terminal.  Nothing is shown unless `out` is a terminal.
 */
#ifndef MC_PROGRESS_H
#define MC_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

#include "conn.h"

/* Sends at least this large show progress (1 MB). */
#define PROGRESS_MIN_BYTES 1000000LL

/*
 * Show progress for `total` bytes on `out` when out is a terminal and total
 * is at least PROGRESS_MIN_BYTES; otherwise c is left as it is.  The wrap
 * ends with c->ops->close, which closes the real connection.
 */
void progress_attach(struct conn *c, long long total, FILE *out);

/* "3.2 of 12.0 MB (26%), 1.1 MB/s, 9 s left" into buf. */
void progress_format(char *buf, size_t len, long long done, long long total, long long ms);

/* Whether messages to this stream may use colour: a terminal, and NO_COLOR unset or empty. */
bool progress_colour(FILE *f);

#endif
