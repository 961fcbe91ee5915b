/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * libFuzzer target: arbitrary bytes as a DNS response, through the SRV, TLSA
 * and MX parsers, then the RFC 2782 ordering of whatever SRV records came out.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long draw(void *arg, unsigned long n)
{
    unsigned long *x = arg;

    *x = *x * 6364136223846793005UL + 1;
    return n == 0 ? 0 : (*x >> 33) % (n + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct dns_answer a;
    struct mc_err err;
    unsigned long seed = size;

    if (dns_parse_srv(data, size, size & 1, &a, &err) == 0) {
        size_t n = a.n;
        dns_srv_order(a.srv, &n, draw, &seed);
        for (size_t i = 0; i < n; i++)
            if (a.srv[i].target[0] == '\0' || strlen(a.srv[i].target) >= DNS_NAME_MAX)
                abort();
    }
    (void)dns_parse_tlsa(data, size, &a, &err);
    (void)dns_parse_mx(data, size, &a, &err);
    return 0;
}
