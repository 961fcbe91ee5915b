/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * A growable byte buffer with a hard maximum.
 *
 * Invariants: after buf_init, data is never NULL and data[len] == '\0'
 * (so text can be used as a C string); len <= max.  An append that would
 * pass max fails with MC_SOFTWARE-free -1 and leaves the buffer unchanged:
 * nothing is truncated silently.  The buffer owns data until buf_detach,
 * which hands it to the caller and re-initialises the buffer.
 */
#ifndef MC_BUF_H
#define MC_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

#define BUF_NOLIMIT ((size_t)-1 / 2)

void buf_init(struct buf *b, size_t max);
/* Free the contents; the buffer may be reused after buf_init. */
void buf_release(struct buf *b);
/* Like buf_release, but zeroes the memory first (for secrets). */
void buf_wipe(struct buf *b);
/* Empty the buffer, keeping its memory. */
void buf_reset(struct buf *b);
char *buf_detach(struct buf *b, size_t *len);

/* Each returns 0, or -1 when the result would exceed max or memory ran out. */
int buf_reserve(struct buf *b, size_t extra);
int buf_add(struct buf *b, const void *p, size_t n);
int buf_addstr(struct buf *b, const char *s);
int buf_addch(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/*
 * Writing in place: buf_space makes room for n more bytes and returns where
 * they go (NULL as buf_reserve fails); buf_commit then adds the k <= n
 * written there.
 */
char *buf_space(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t k);
/* Remove the first n bytes. */
void buf_consume(struct buf *b, size_t n);

#endif
