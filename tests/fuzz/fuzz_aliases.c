/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * libFuzzer target for the aliases parser and expansion: the input is the
 * aliases file, and every :include: reads the same input again, so loops
 * through includes are exercised too.  Every name and "default" and an
 * unknown name are expanded.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "aliases.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
    const uint8_t *data;
    size_t size;
};

static int read_self(void *arg, const char *path, struct buf *out, struct mc_err *err)
{
    const struct input *in = arg;

    (void)path;
    if (buf_add(out, in->data, in->size) < 0)
        return mc_err_set(err, MC_CONFIG, "too large");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    struct aliases a;
    struct mc_err err;

    if (aliases_parse((const char *)data, size, "fuzz", &a, &err) < 0)
        return 0;
    for (size_t i = 0; i < a.n && i < 64; i++) {
        struct strlist out = {0};
        aliases_expand(&a, a.v[i].name, read_self, &in, &out, &err);
        strlist_free(&out);
    }
    struct strlist out = {0};
    aliases_expand(&a, "no-such-name", read_self, &in, &out, &err);
    strlist_free(&out);
    aliases_free(&a);
    return 0;
}
