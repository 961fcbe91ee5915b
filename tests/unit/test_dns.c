/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * DNS without a resolver: SRV and TLSA answers built here byte by byte
 * (compression, "." targets, other record types, the AD bit, truncation),
 * RFC 2782 ordering with a fixed random sequence, and the --configure
 * provider table.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "configure.h"
#include "dns.h"

struct msg {
    unsigned char b[4096];
    size_t n;
};

static void put(struct msg *m, const void *p, size_t n)
{
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void put16(struct msg *m, unsigned v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    put(m, b, 2);
}

static void put_name(struct msg *m, const char *name)
{
    while (*name) {
        size_t l = strcspn(name, ".");
        unsigned char c = (unsigned char)l;
        put(m, &c, 1);
        put(m, name, l);
        name += l + (name[l] == '.');
    }
    put(m, "", 1);
}

/* Header and question; the answer count is patched by rr(). */
static void start(struct msg *m, const char *qname, unsigned type, unsigned flags)
{
    m->n = 0;
    put16(m, 0x1234);
    put16(m, flags);
    put16(m, 1);
    put16(m, 0);
    put16(m, 0);
    put16(m, 0);
    put_name(m, qname);
    put16(m, type);
    put16(m, 1);
}

static void rr(struct msg *m, unsigned type, const unsigned char *rdata, size_t len)
{
    unsigned an = (unsigned)(m->b[6] << 8 | m->b[7]) + 1;

    m->b[6] = (unsigned char)(an >> 8);
    m->b[7] = (unsigned char)an;
    put16(m, 0xc00c);    /* the question's name */
    put16(m, type);
    put16(m, 1);
    put16(m, 0);
    put16(m, 300);
    put16(m, (unsigned)len);
    put(m, rdata, len);
}

static void srv(struct msg *m, unsigned prio, unsigned weight, unsigned port, const char *target)
{
    struct msg r = {.n = 0};

    put16(&r, prio);
    put16(&r, weight);
    put16(&r, port);
    if (strcmp(target, ".") == 0)
        put(&r, "", 1);
    else
        put_name(&r, target);
    rr(m, 33, r.b, r.n);
}

static void test_parse_srv(void **state)
{
    struct dns_answer *a = calloc(1, sizeof *a);
    struct mc_err err;
    struct msg m;
    unsigned char cname[] = {4, 'm', 'a', 'i', 'l', 0};

    (void)state;
    start(&m, "_submissions._tcp.example.test", 33, 0x8180);
    srv(&m, 10, 5, 465, "mail.example.test");
    rr(&m, 5, cname, sizeof cname);    /* skipped */
    srv(&m, 0, 0, 0, ".");
    assert_int_equal(dns_parse_srv(m.b, m.n, true, a, &err), 0);
    assert_int_equal(a->n, 2);
    assert_false(a->ad);
    assert_string_equal(a->srv[0].target, "mail.example.test");
    assert_int_equal(a->srv[0].prio, 10);
    assert_int_equal(a->srv[0].weight, 5);
    assert_int_equal(a->srv[0].port, 465);
    assert_true(a->srv[0].implicit_tls);
    assert_string_equal(a->srv[1].target, "");

    /* A compressed target pointing at the question name. */
    start(&m, "example.test", 33, 0x8180);
    unsigned char rd[] = {0, 1, 0, 2, 0x02, 0x4b, 0xc0, 0x0c};
    rr(&m, 33, rd, sizeof rd);
    assert_int_equal(dns_parse_srv(m.b, m.n, false, a, &err), 0);
    assert_int_equal(a->n, 1);
    assert_string_equal(a->srv[0].target, "example.test");
    assert_int_equal(a->srv[0].port, 587);
    free(a);
}

static void test_parse_bad(void **state)
{
    struct dns_answer *a = calloc(1, sizeof *a);
    struct mc_err err;
    struct msg m;

    (void)state;
    start(&m, "example.test", 33, 0x8180);
    srv(&m, 1, 1, 587, "mail.example.test");
    for (size_t cut = 0; cut < m.n; cut++) {
        int rc = dns_parse_srv(m.b, cut, false, a, &err);
        if (rc < 0)
            assert_int_equal(err.cls, MC_TEMPFAIL);
        else
            assert_int_equal(a->n, 0);
    }
    /* Too short, port 0, a name with a comma (it would split the host list). */
    start(&m, "example.test", 33, 0x8180);
    unsigned char shortrd[] = {0, 1, 0, 1, 2};
    rr(&m, 33, shortrd, sizeof shortrd);
    assert_int_equal(dns_parse_srv(m.b, m.n, false, a, &err), -1);
    start(&m, "example.test", 33, 0x8180);
    srv(&m, 1, 1, 0, "mail.example.test");
    assert_int_equal(dns_parse_srv(m.b, m.n, false, a, &err), -1);
    start(&m, "example.test", 33, 0x8180);
    srv(&m, 1, 1, 25, "a,b.example.test");
    assert_int_equal(dns_parse_srv(m.b, m.n, false, a, &err), -1);
    assert_non_null(strstr(err.msg, "not a host name"));
    /* More records than fit: an error, not a silent cut. */
    start(&m, "example.test", 33, 0x8180);
    for (int i = 0; i <= DNS_MAX_RECORDS; i++)
        srv(&m, 1, 1, 25, "m.t");
    assert_int_equal(dns_parse_srv(m.b, m.n, false, a, &err), -1);
    free(a);
}

static void test_parse_tlsa(void **state)
{
    struct dns_answer *a = calloc(1, sizeof *a);
    unsigned char rd[3 + 32];
    struct mc_err err;
    struct msg m;

    (void)state;
    rd[0] = 3;
    rd[1] = 1;
    rd[2] = 1;
    for (int i = 0; i < 32; i++)
        rd[3 + i] = (unsigned char)i;
    start(&m, "_465._tcp.mail.example.test", 52, 0x81a0);    /* AD set */
    rr(&m, 52, rd, sizeof rd);
    assert_int_equal(dns_parse_tlsa(m.b, m.n, a, &err), 0);
    assert_true(a->ad);
    assert_int_equal(a->n, 1);
    assert_int_equal(a->tlsa[0].usage, 3);
    assert_int_equal(a->tlsa[0].selector, 1);
    assert_int_equal(a->tlsa[0].mtype, 1);
    assert_int_equal(a->tlsa[0].len, 32);
    assert_memory_equal(a->tlsa[0].data, rd + 3, 32);
    start(&m, "_465._tcp.mail.example.test", 52, 0x8180);
    rr(&m, 52, rd, 3);    /* no data */
    assert_int_equal(dns_parse_tlsa(m.b, m.n, a, &err), -1);
    free(a);
}

/* A fixed sequence of "random" numbers, each taken modulo n + 1. */
struct seq {
    unsigned long x;
};

static unsigned long lcg(void *arg, unsigned long n)
{
    struct seq *s = arg;

    s->x = s->x * 6364136223846793005UL + 1442695040888963407UL;
    return n == 0 ? 0 : (s->x >> 33) % (n + 1);
}

static unsigned long fixed(void *arg, unsigned long n)
{
    unsigned long v = *(unsigned long *)arg;
    return v > n ? n : v;
}

static struct dns_srv rec(unsigned prio, unsigned weight, const char *t)
{
    struct dns_srv s = {.prio = prio, .weight = weight, .port = 587};
    snprintf(s.target, sizeof s.target, "%s", t);
    return s;
}

static void test_order_priority(void **state)
{
    struct dns_srv v[5] = {rec(20, 0, "c"), rec(10, 0, "a"), rec(5, 0, ""), rec(30, 1, "d"),
                           rec(10, 0, "b")};
    size_t n = 5;
    struct seq s = {42};

    (void)state;
    dns_srv_order(v, &n, lcg, &s);
    assert_int_equal(n, 4);    /* "." dropped */
    assert_int_equal(v[0].prio, 10);
    assert_int_equal(v[1].prio, 10);
    assert_string_equal(v[2].target, "c");
    assert_string_equal(v[3].target, "d");
}

static void test_order_weights(void **state)
{
    unsigned long pick;
    int first_heavy = 0, zero_first = 0;
    struct seq s = {1};

    (void)state;
    /* Running sums 10, 100: a pick of 10 is the first, 11 the second. */
    struct dns_srv v[2] = {rec(1, 10, "light"), rec(1, 90, "heavy")};
    size_t n = 2;
    pick = 10;
    dns_srv_order(v, &n, fixed, &pick);
    assert_string_equal(v[0].target, "light");
    struct dns_srv w[2] = {rec(1, 10, "light"), rec(1, 90, "heavy")};
    pick = 11;
    dns_srv_order(w, &n, fixed, &pick);
    assert_string_equal(w[0].target, "heavy");
    assert_string_equal(w[1].target, "light");

    /*
     * 30:10:0 over many draws from a fixed sequence: the draw is in [0, 40],
     * so "heavy" comes first 30/41 of the time, "zero" only on a draw of 0.
     */
    for (int i = 0; i < 10000; i++) {
        struct dns_srv x[3] = {rec(1, 10, "light"), rec(1, 30, "heavy"), rec(1, 0, "zero")};
        size_t m = 3;
        dns_srv_order(x, &m, lcg, &s);
        first_heavy += strcmp(x[0].target, "heavy") == 0;
        zero_first += strcmp(x[0].target, "zero") == 0;
    }
    assert_in_range(first_heavy, 7000, 7600);
    assert_in_range(zero_first, 100, 400);
}

static void test_providers(void **state)
{
    const struct provider *p;
    struct buf b;

    (void)state;
    p = configure_provider("GMail.com");
    assert_non_null(p);
    assert_string_equal(p->host, "smtp.gmail.com");
    assert_non_null(configure_provider("posteo.net"));
    assert_non_null(configure_provider("hotmail.com"));
    assert_null(configure_provider("example.org"));
    assert_null(configure_provider("mail.com"));
    assert_null(configure_provider("gmail"));
    buf_init(&b, BUF_NOLIMIT);
    configure_from_provider("alice@fastmail.com", configure_provider("fastmail.com"), "test",
                            &b);
    assert_non_null(strstr(b.data, "\nhost smtp.fastmail.com\nport 465\ntls on\n"
                                   "tls_starttls off\n"));
    assert_non_null(strstr(b.data, "\nuser alice@fastmail.com\n"));
    assert_non_null(strstr(b.data, "\npasswordeval \"secret-tool lookup mailcar "
                                   "alice@fastmail.com\"\n"));
    buf_release(&b);
    p = configure_provider_by_mx("ASPMX.L.GOOGLE.COM");
    assert_non_null(p);
    assert_string_equal(p->host, "smtp.gmail.com");
    assert_non_null(configure_provider_by_mx("alt1.aspmx.l.google.com"));
    assert_non_null(configure_provider_by_mx("smtp.google.com"));
    p = configure_provider_by_mx("example-org.mail.protection.outlook.com");
    assert_non_null(p);
    assert_string_equal(p->host, "smtp.office365.com");
    assert_null(configure_provider_by_mx("evilaspmx.l.google.com"));
    assert_null(configure_provider_by_mx("aspmx.l.google.com.evil.test"));
    assert_null(configure_provider_by_mx("mx.example.org"));
}

static void test_parse_mx(void **state)
{
    struct dns_answer *a = calloc(1, sizeof *a);
    struct mc_err err;
    struct msg m, r = {.n = 0};

    (void)state;
    start(&m, "example.test", 15, 0x8180);
    put16(&r, 5);
    put_name(&r, "aspmx.l.google.com");
    rr(&m, 15, r.b, r.n);
    assert_int_equal(dns_parse_mx(m.b, m.n, a, &err), 0);
    assert_int_equal(a->n, 1);
    assert_int_equal(a->srv[0].prio, 5);
    assert_string_equal(a->srv[0].target, "aspmx.l.google.com");
    rr(&m, 15, r.b, 2);
    assert_int_equal(dns_parse_mx(m.b, m.n, a, &err), -1);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_srv),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_tlsa),
        cmocka_unit_test(test_order_priority),
        cmocka_unit_test(test_order_weights),
        cmocka_unit_test(test_providers),
        cmocka_unit_test(test_parse_mx),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
