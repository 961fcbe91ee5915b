/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * libFuzzer target for --import.  The input is split at the first NUL byte
 * into a main file and a second file (revaliases, auth.conf, nullmailer's
 * me), converted as every format, and each output must load with mailcar's
 * own configuration parser: the importer never writes a line it cannot read.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "import.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = mc_calloc(1, size + 2);
    struct import_input in = {.name = "fuzz", .text = text, .aux_name = "aux"};
    size_t n;

    memcpy(text, data, size);
    n = strlen(text);
    in.aux = n < size ? text + n + 1 : NULL;
    in.me = in.defaultdomain = in.defaulthost = in.adminaddr = in.aux;
    import_detect("fuzz", text);
    for (int f = IMPORT_UNKNOWN; f <= IMPORT_NULLMAILER; f++) {
        struct mc_err err;
        struct buf b;
        struct conf c;

        buf_init(&b, BUF_NOLIMIT);
        if (import_convert((enum import_format)f, &in, &b, &err) == 0) {
            conf_init(&c);
            c.no_eval = true;
            /* msmtp input is copied line by line, so its own errors stay errors. */
            if (conf_load_buffer(&c, "out", b.data, b.len, &err) != 0 && f != IMPORT_MSMTP)
                abort();
            conf_free(&c);
        }
        buf_release(&b);
    }
    free(text);
    return 0;
}
