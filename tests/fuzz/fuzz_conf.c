/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * libFuzzer target for the configuration parser.  The input is read as two
 * files in turn (so replacing accounts and inheriting across files run too),
 * then every account is selected, by name and by sender, and every key is
 * read through its typed getter.  `eval` is refused: no shell is started.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_every_key(const struct account *a)
{
    struct mc_err err;
    const char *s;
    bool b;
    long n;

    for (size_t i = 0; i < conf_nkeys; i++) {
        const struct conf_key *k = &conf_keys[i];

        switch (k->type) {
        case CONF_BOOL:
            conf_bool(a, k->name, false, &b, &err);
            break;
        case CONF_INT:
            conf_int_range(a, k->name, 0, 1, 65535, &n, &err);
            break;
        case CONF_TIME:
            conf_time(a, k->name, 0, &n, &err);
            break;
        case CONF_ENUM:
            conf_enum(a, k->name, NULL, &s, &err);
            break;
        case CONF_STRING:
        case CONF_PATH:
            conf_str(a, k->name, NULL);
            break;
        }
    }
    conf_check_account(a, &err);
}

static void select_and_read(const struct conf *c, const char *name, const char *from)
{
    struct account a;
    struct mc_err err;
    char why[64];

    if (conf_select(c, name, from, &a, why, sizeof why, &err) == 0)
        read_every_key(&a);
    account_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf c;
    struct mc_err err;

    conf_init(&c);
    c.no_eval = true;
    if (conf_load_buffer(&c, "fuzz", (const char *)data, size, &err) == 0 &&
        conf_load_buffer(&c, "again", (const char *)data, size, &err) == 0) {
        select_and_read(&c, NULL, NULL);
        select_and_read(&c, NULL, "joe+list@Example.ORG");
        for (size_t i = 0; i < c.nacc; i++)
            select_and_read(&c, c.acc[i].name, NULL);
    }
    conf_free(&c);
    return 0;
}
