/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * SRV and TLSA lookups through libresolv; see dns.h.  Parsing goes through
 * ns_initparse/ns_parserr, which check every length against the message.
 */
#include "config.h"

#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/random.h>

#include "dns.h"
#include "util.h"

#define T_SRV_ 33
#define T_TLSA_ 52
#define T_MX_ 15
#define ANSWER_MAX 65536

typedef int (*rr_fn)(const ns_msg *h, const ns_rr *rr, bool flag, struct dns_answer *out,
                     struct mc_err *err);

static int parse(const unsigned char *msg, size_t len, int type, rr_fn fn, bool flag,
                 struct dns_answer *out, struct mc_err *err)
{
    ns_msg h;
    ns_rr rr;
    int count;

    memset(out, 0, sizeof *out);
    if (len > ANSWER_MAX || ns_initparse(msg, (int)len, &h) < 0)
        return mc_err_set(err, MC_TEMPFAIL, "malformed DNS answer");
    out->rcode = ns_msg_getflag(h, ns_f_rcode);
    out->ad = ns_msg_getflag(h, ns_f_ad) != 0;
    count = ns_msg_count(h, ns_s_an);
    for (int i = 0; i < count; i++) {
        if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
            return mc_err_set(err, MC_TEMPFAIL, "malformed DNS answer (record %d)", i + 1);
        if ((int)ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in)
            continue;
        if (out->n == DNS_MAX_RECORDS)
            return mc_err_set(err, MC_TEMPFAIL, "more than %d records in a DNS answer",
                              DNS_MAX_RECORDS);
        if (fn(&h, &rr, flag, out, err) < 0)
            return -1;
    }
    return 0;
}

static int srv_rr(const ns_msg *h, const ns_rr *rr, bool implicit_tls, struct dns_answer *out,
                  struct mc_err *err)
{
    const unsigned char *d = ns_rr_rdata(*rr);
    struct dns_srv *s = &out->srv[out->n];
    char name[NS_MAXDNAME];

    if (ns_rr_rdlen(*rr) < 7)
        return mc_err_set(err, MC_TEMPFAIL, "malformed SRV record (too short)");
    s->prio = (unsigned)(d[0] << 8 | d[1]);
    s->weight = (unsigned)(d[2] << 8 | d[3]);
    s->port = (unsigned)(d[4] << 8 | d[5]);
    s->implicit_tls = implicit_tls;
    s->validated = out->ad;
    if (ns_name_uncompress(ns_msg_base(*h), ns_msg_end(*h), d + 6, name, sizeof name) < 0)
        return mc_err_set(err, MC_TEMPFAIL, "malformed SRV record (target name)");
    if (strcmp(name, ".") == 0)
        name[0] = '\0';
    for (const char *p = name; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == ',' || *p == '/' || *p == '[' || *p == ']' ||
            *p == '\\')
            return mc_err_set(err, MC_TEMPFAIL, "SRV target is not a host name");
    if (strlen(name) >= sizeof s->target)
        return mc_err_set(err, MC_TEMPFAIL, "SRV target name too long");
    if (name[0] && s->port == 0)
        return mc_err_set(err, MC_TEMPFAIL, "SRV record for '%s' has port 0", name);
    memcpy(s->target, name, strlen(name) + 1);
    out->n++;
    return 0;
}

static int tlsa_rr(const ns_msg *h, const ns_rr *rr, bool unused, struct dns_answer *out,
                   struct mc_err *err)
{
    const unsigned char *d = ns_rr_rdata(*rr);
    struct dns_tlsa *t = &out->tlsa[out->n];
    size_t len = ns_rr_rdlen(*rr);

    (void)h;
    (void)unused;
    if (len < 4)
        return mc_err_set(err, MC_TEMPFAIL, "malformed TLSA record (too short)");
    if (len - 3 > sizeof t->data)
        return mc_err_set(err, MC_TEMPFAIL, "TLSA record longer than %d bytes",
                          DNS_TLSA_DATA_MAX);
    t->usage = d[0];
    t->selector = d[1];
    t->mtype = d[2];
    t->len = len - 3;
    memcpy(t->data, d + 3, t->len);
    out->n++;
    return 0;
}

static int mx_rr(const ns_msg *h, const ns_rr *rr, bool unused, struct dns_answer *out,
                 struct mc_err *err)
{
    const unsigned char *d = ns_rr_rdata(*rr);
    struct dns_srv *s = &out->srv[out->n];
    char name[NS_MAXDNAME];

    (void)unused;
    if (ns_rr_rdlen(*rr) < 3 ||
        ns_name_uncompress(ns_msg_base(*h), ns_msg_end(*h), d + 2, name, sizeof name) < 0)
        return mc_err_set(err, MC_TEMPFAIL, "malformed MX record");
    if (strlen(name) >= sizeof s->target)
        return mc_err_set(err, MC_TEMPFAIL, "MX name too long");
    memset(s, 0, sizeof *s);
    s->prio = (unsigned)(d[0] << 8 | d[1]);
    memcpy(s->target, name, strlen(name) + 1);
    out->n++;
    return 0;
}

int dns_parse_mx(const unsigned char *msg, size_t len, struct dns_answer *out,
                 struct mc_err *err)
{
    return parse(msg, len, T_MX_, mx_rr, false, out, err);
}

int dns_parse_srv(const unsigned char *msg, size_t len, bool implicit_tls,
                  struct dns_answer *out, struct mc_err *err)
{
    return parse(msg, len, T_SRV_, srv_rr, implicit_tls, out, err);
}

int dns_parse_tlsa(const unsigned char *msg, size_t len, struct dns_answer *out,
                   struct mc_err *err)
{
    return parse(msg, len, T_TLSA_, tlsa_rr, false, out, err);
}

static int by_prio(const void *a, const void *b)
{
    const struct dns_srv *x = a, *y = b;

    return x->prio < y->prio ? -1 : x->prio > y->prio;
}

/* RFC 2782: zero weights first, then pick by running sum, repeatedly. */
static void order_group(struct dns_srv *v, size_t n, unsigned long (*rnd)(void *, unsigned long),
                        void *arg)
{
    struct dns_srv tmp;
    size_t z = 0;

    for (size_t i = 0; i < n; i++)
        if (v[i].weight == 0) {
            tmp = v[z];
            v[z++] = v[i];
            v[i] = tmp;
        }
    for (size_t k = 0; k + 1 < n; k++) {
        unsigned long sum = 0, pick, run = 0;
        size_t j = k;
        for (size_t i = k; i < n; i++)
            sum += v[i].weight;
        pick = rnd(arg, sum);
        for (size_t i = k; i < n; i++) {
            run += v[i].weight;
            if (run >= pick) {
                j = i;
                break;
            }
        }
        tmp = v[j];
        memmove(v + k + 1, v + k, (j - k) * sizeof *v);
        v[k] = tmp;
    }
}

void dns_srv_order(struct dns_srv *v, size_t *n, unsigned long (*rnd)(void *, unsigned long),
                   void *arg)
{
    size_t m = 0, i, j;

    for (i = 0; i < *n; i++)
        if (v[i].target[0])
            v[m++] = v[i];
    *n = m;
    /* qsort is not stable, but the order within a group is chosen afresh below. */
    qsort(v, m, sizeof *v, by_prio);
    for (i = 0; i < m; i = j) {
        for (j = i + 1; j < m && v[j].prio == v[i].prio; j++)
            ;
        order_group(v + i, j - i, rnd, arg);
    }
}

static unsigned long random_upto(void *arg, unsigned long n)
{
    unsigned long r = 0;

    (void)arg;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (unsigned long)rand();
    return n == 0 ? 0 : r % (n + 1);
}

/* One query; 0 with the answer, 1 when the name or the records do not exist, -1 on failure. */
static int query(res_state rs, const char *name, int type, unsigned char *ans, int *len,
                 int *why, struct mc_err *err)
{
    *len = res_nquery(rs, name, ns_c_in, type, ans, ANSWER_MAX);
    *why = rs->res_h_errno;
    if (*len >= 0)
        return 0;
    if (*why == HOST_NOT_FOUND || *why == NO_DATA)
        return 1;
    return mc_err_set(err, MC_TEMPFAIL, "looking up '%s': %s", name,
                      *why == TRY_AGAIN ? "temporary DNS failure" : "DNS lookup failed");
}

static int resolver_open(struct __res_state *rs, bool dnssec, struct mc_err *err)
{
    memset(rs, 0, sizeof *rs);
    if (res_ninit(rs) < 0)
        return mc_err_set(err, MC_TEMPFAIL, "cannot initialise the DNS resolver");
    if (dnssec)
        rs->options |= RES_USE_EDNS0 | RES_USE_DNSSEC;
    return 0;
}

int dns_srv_lookup(const char *domain, struct dns_srv *v, size_t *n, struct dns_srv *raw,
                   size_t *rawn, struct mc_err *err)
{
    static const char *const services[] = {"_submissions._tcp", "_submission._tcp"};
    struct __res_state rs;
    unsigned char *ans;
    struct dns_answer a;
    struct mc_err tmp = {0};
    int nx = 0, nodot = 0, temp = 0, len, why;

    *n = 0;
    if (rawn)
        *rawn = 0;
    /* With the DO bit, so that -v can say whether the routes were validated. */
    if (resolver_open(&rs, true, err) < 0)
        return -1;
    ans = mc_calloc(1, ANSWER_MAX);
    for (int s = 0; s < 2; s++) {
        char name[DNS_NAME_MAX + 32];
        size_t got;
        snprintf(name, sizeof name, "%s.%s", services[s], domain);
        int rc = query(&rs, name, T_SRV_, ans, &len, &why, &tmp);
        if (rc < 0) {
            temp++;
            continue;
        }
        if (rc > 0) {
            nx += why == HOST_NOT_FOUND;
            continue;
        }
        if (dns_parse_srv(ans, (size_t)len, s == 0, &a, &tmp) < 0) {
            temp++;
            continue;
        }
        if (raw && rawn)
            for (size_t i = 0; i < a.n; i++)
                raw[(*rawn)++] = a.srv[i];
        got = a.n;
        dns_srv_order(a.srv, &got, random_upto, NULL);
        nodot += got < a.n;
        memcpy(v + *n, a.srv, got * sizeof *v);
        *n += got;
    }
    res_nclose(&rs);
    if (*n || temp) {
        free(ans);
        if (*n)
            return 0;
        *err = tmp;
        return -1;
    }
    if (nodot) {
        free(ans);
        return mc_err_set(err, MC_NOHOST, "domain '%s' says it offers no mail submission "
                          "(SRV target '.')", domain);
    }
    if (nx == 2) {
        char name[DNS_NAME_MAX + 8];
        /* Tell a missing domain from a domain without the records. */
        snprintf(name, sizeof name, "%s", domain);
        if (resolver_open(&rs, false, err) == 0) {
            int rc = query(&rs, name, ns_t_soa, ans, &len, &why, &tmp);
            res_nclose(&rs);
            if (rc > 0 && why == HOST_NOT_FOUND) {
                free(ans);
                return mc_err_set(err, MC_NOHOST, "domain '%s' not found", domain);
            }
        }
    }
    free(ans);
    return mc_err_set(err, MC_NOHOST, "no SRV records for mail submission at '%s' "
                      "(_submissions._tcp or _submission._tcp)", domain);
}

int dns_tlsa_lookup(const char *host, const char *port, struct dns_answer *out,
                    struct mc_err *err)
{
    struct __res_state rs;
    unsigned char *ans;
    char name[DNS_NAME_MAX + 16];
    int rc, len, why;

    memset(out, 0, sizeof *out);
    snprintf(name, sizeof name, "_%s._tcp.%s", port, host);
    if (resolver_open(&rs, true, err) < 0)
        return -1;
    ans = mc_calloc(1, ANSWER_MAX);
    rc = query(&rs, name, T_TLSA_, ans, &len, &why, err);
    res_nclose(&rs);
    if (rc == 0)
        rc = dns_parse_tlsa(ans, (size_t)len, out, err);
    free(ans);
    if (rc < 0)
        return mc_err_prefix(err, "DANE");
    return 0;
}

int dns_mx_lookup(const char *domain, struct dns_answer *out, struct mc_err *err)
{
    struct __res_state rs;
    unsigned char *ans;
    int rc, len, why;

    memset(out, 0, sizeof *out);
    if (resolver_open(&rs, false, err) < 0)
        return -1;
    ans = mc_calloc(1, ANSWER_MAX);
    rc = query(&rs, domain, T_MX_, ans, &len, &why, err);
    res_nclose(&rs);
    if (rc == 0)
        rc = dns_parse_mx(ans, (size_t)len, out, err);
    free(ans);
    return rc < 0 ? -1 : 0;
}
