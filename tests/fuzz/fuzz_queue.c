/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * libFuzzer target for the queue's envelope parser (ID.env, see queue.h).
 * Whatever parses must write back to text that parses to the same
 * envelope, and the percent-decoder must never accept a NUL.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qenv e, f;
    struct mc_err err;
    struct buf b, c;
    char *d = queue_decode((const char *)data, size);

    if (d) {
        if (strlen(d) > size)
            abort();
        free(d);
    }
    if (qenv_parse((const char *)data, size, &e, &err) < 0)
        return 0;
    buf_init(&b, BUF_NOLIMIT);
    buf_init(&c, BUF_NOLIMIT);
    qenv_format(&e, &b);
    if (qenv_parse(b.data, b.len, &f, &err) < 0)
        abort();
    qenv_format(&f, &c);
    if (b.len != c.len || memcmp(b.data, c.data, b.len) != 0 || f.nrcpts != e.nrcpts)
        abort();
    qenv_free(&f);
    qenv_free(&e);
    buf_release(&b);
    buf_release(&c);
    return 0;
}
