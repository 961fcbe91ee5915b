/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * libFuzzer target for addr: parse the input as an address list, check
 * every address found, and check the raw input as one envelope address.
 * Beyond "no crash", it aborts when an invariant breaks: an error message
 * is one line, and each address parsed re-parses to itself (so what the
 * parser hands to RCPT TO is exactly what it would read back).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(const struct mc_err *err)
{
    if (strchr(err->msg, '\n') != NULL || strchr(err->msg, '\r') != NULL)
        abort();
}

/* Parse text and abort unless it yields exactly addr with display. */
static void expect_one(const char *text, size_t len, const char *addr, const char *display)
{
    struct addrlist again = {0};
    struct mc_err err = {0};

    if (addr_parse_list(text, len, &again, &err) != 0 || again.n != 1)
        abort();
    if (strcmp(again.v[0].addr, addr) != 0)
        abort();
    if ((display == NULL) != (again.v[0].display == NULL))
        abort();
    if (display != NULL && strcmp(again.v[0].display, display) != 0)
        abort();
    addrlist_free(&again);
}

/* A mailbox parsed, written out again and re-parsed, must come back unchanged. */
static void reparse(const struct mc_addr *a)
{
    size_t na = strlen(a->addr), nd = a->display ? strlen(a->display) : 0;
    char *s;

    if (na > 0)
        expect_one(a->addr, na, a->addr, NULL);
    if (a->display == NULL)
        return;
    s = malloc(nd + na + 3);
    if (s == NULL)
        abort();
    memcpy(s, a->display, nd);
    memcpy(s + nd, " <", 2);
    memcpy(s + nd + 2, a->addr, na);
    s[nd + 2 + na] = '>';
    expect_one(s, nd + na + 3, a->addr, a->display);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct addrlist l = {0};
    struct mc_err err = {0};

    if (addr_parse_list(text, size, &l, &err) == 0) {
        for (size_t i = 0; i < l.n; i++) {
            if (strlen(l.v[i].addr) > size)
                abort();
            if (addr_check(l.v[i].addr, "recipient", &err) < 0)
                one_line(&err);
            if (addr_check(l.v[i].addr, "sender", &err) < 0)
                one_line(&err);
            (void)addr_is_utf8(l.v[i].addr);
            reparse(&l.v[i]);
        }
    } else {
        if (l.n != 0 || err.cls != MC_DATAERR)
            abort(); /* a failed parse adds nothing and blames the input */
        one_line(&err);
    }
    addrlist_free(&l);
    if (addr_check_n(text, size, "recipient", &err) < 0)
        one_line(&err);
    return 0;
}
