/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * DNS with libresolv: SRV records for submission (RFC 6186, RFC 8314,
 * ordered as RFC 2782 says) and TLSA records for DANE (RFC 7672/7673).
 * The parsers and the ordering are pure functions over buffers, so the unit
 * tests and the fuzzer reach them without a resolver; the lookups only add
 * res_nquery and map its failures onto the error classes (NXDOMAIN and no
 * records: MC_NOHOST; SERVFAIL, timeouts: MC_TEMPFAIL).
 */
#ifndef MC_DNS_H
#define MC_DNS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define DNS_NAME_MAX 256
#define DNS_MAX_RECORDS 64
#define DNS_TLSA_DATA_MAX 512

struct dns_srv {
    unsigned prio, weight, port;
    bool implicit_tls;            /* from _submissions._tcp */
    bool validated;               /* the answer had the AD bit (DNSSEC) */
    char target[DNS_NAME_MAX];    /* without the final dot; "" is "." (no service) */
};

struct dns_tlsa {
    unsigned char usage, selector, mtype;
    size_t len;
    unsigned char data[DNS_TLSA_DATA_MAX];
};

/* A DNS message as parsed: the header bits that matter and the records of one type. */
struct dns_answer {
    int rcode;
    bool ad;                       /* authenticated data: the resolver validated it */
    size_t n;
    struct dns_srv srv[DNS_MAX_RECORDS];
    struct dns_tlsa tlsa[DNS_MAX_RECORDS];
};

/*
 * Parse a whole DNS response, keeping the answer records of type 33 (SRV) or
 * 52 (TLSA); others (CNAMEs, signatures) are skipped.  Records beyond
 * DNS_MAX_RECORDS are an error, never silently dropped.  -1 on a malformed
 * message (MC_TEMPFAIL: the resolver's answer was unusable).
 */
int dns_parse_srv(const unsigned char *msg, size_t len, bool implicit_tls,
                  struct dns_answer *out, struct mc_err *err);
int dns_parse_tlsa(const unsigned char *msg, size_t len, struct dns_answer *out,
                   struct mc_err *err);

/* MX records (type 15) into srv[]: prio is the preference, target the exchange. */
int dns_parse_mx(const unsigned char *msg, size_t len, struct dns_answer *out,
                 struct mc_err *err);

/*
 * RFC 2782 order, in place: ascending priority; within a priority, a
 * weighted random choice repeated over the remaining records.  rnd(arg, n)
 * returns a number in [0, n]; the lookup uses getrandom, tests a fixed
 * sequence.  Records whose target is "." are removed (n shrinks).
 */
void dns_srv_order(struct dns_srv *v, size_t *n, unsigned long (*rnd)(void *, unsigned long),
                   void *arg);

/*
 * The submission routes of domain: _submissions._tcp (implicit TLS) first,
 * then _submission._tcp (STARTTLS), each ordered as above.  v holds up to
 * 2 * DNS_MAX_RECORDS.  When neither name has a usable record the error is
 * MC_NOHOST (saying whether the domain is missing, has no records, or says
 * "no service"); a temporary failure of both is MC_TEMPFAIL.  raw, when not
 * NULL, receives the records as found, before ordering, for -v (rawn of them).
 */
int dns_srv_lookup(const char *domain, struct dns_srv *v, size_t *n, struct dns_srv *raw,
                   size_t *rawn, struct mc_err *err);

/*
 * TLSA records of _PORT._tcp.HOST, asked for with the DNSSEC OK bit.  On
 * success out->n may be 0 (no records, or the name does not exist) and
 * out->ad says whether the resolver vouched for the answer; glibc passes the
 * AD bit through only with "options trust-ad" in resolv.conf.  A failed
 * lookup (SERVFAIL, which a validating resolver returns for a bogus answer,
 * or a timeout) is MC_TEMPFAIL.
 */
int dns_tlsa_lookup(const char *host, const char *port, struct dns_answer *out,
                    struct mc_err *err);

/* MX records of domain; out->n is 0 when it has none or does not exist.  Errors: TEMPFAIL. */
int dns_mx_lookup(const char *domain, struct dns_answer *out, struct mc_err *err);

#endif
