/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Bounded growable buffers; see buf.h for the invariants.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"

static char buf_empty[1];

void buf_init(struct buf *b, size_t max)
{
    b->data = buf_empty;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void buf_release(struct buf *b)
{
    if (b->cap)
        free(b->data);
    buf_init(b, b->max);
}

void buf_wipe(struct buf *b)
{
    if (b->cap)
        mc_wipe(b->data, b->cap);
    buf_release(b);
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->cap)
        b->data[0] = '\0';
}

char *buf_detach(struct buf *b, size_t *len)
{
    char *p;

    if (b->cap == 0) {
        p = calloc(1, 1);
    } else {
        p = b->data;
    }
    if (len)
        *len = b->len;
    buf_init(b, b->max);
    return p;
}

int buf_reserve(struct buf *b, size_t extra)
{
    size_t want, ncap;
    char *p;

    if (extra > b->max - b->len)
        return -1;
    want = b->len + extra + 1;
    if (want <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 64;
    while (ncap < want)
        ncap = ncap < BUF_NOLIMIT ? ncap * 2 : want;
    p = realloc(b->cap ? b->data : NULL, ncap);
    if (p == NULL)
        return -1;
    if (b->cap == 0)
        p[0] = '\0';
    b->data = p;
    b->cap = ncap;
    return 0;
}

int buf_add(struct buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

char *buf_space(struct buf *b, size_t n)
{
    return buf_reserve(b, n) < 0 ? NULL : b->data + b->len;
}

void buf_commit(struct buf *b, size_t k)
{
    b->len += k;
    b->data[b->len] = '\0';
}

int buf_addstr(struct buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

int buf_addch(struct buf *b, char c)
{
    return buf_add(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    int n;

    va_copy(cp, ap);
    n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0 || buf_reserve(b, (size_t)n) < 0)
        return -1;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}
