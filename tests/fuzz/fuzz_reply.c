/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * libFuzzer target: arbitrary server bytes, split into lines, through the
 * reply parser and the EHLO capability parser.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    struct reply r;
    struct mc_err err;
    struct caps c;
    char sum[128];

    reply_init(&r);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (reply_add_line(&r, p, len, &err) < 0) {
            reply_reset(&r);
        } else if (r.done) {
            caps_parse(&r, &c);
            reply_summary(&r, sum, sizeof sum);
            size_t tl;
            (void)reply_first_text(&r, &tl);
            reply_reset(&r);
        }
        p += len + (nl != NULL);
    }
    reply_release(&r);
    return 0;
}
