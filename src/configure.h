/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * `mailcar --configure ADDRESS`: a ready configuration stanza for ADDRESS,
 * from its domain's submission SRV records (RFC 6186, RFC 8314) or else
 * from a table of major providers.  It never guesses: a domain that neither
 * knows is an error (MC_UNAVAIL).
 */
#ifndef MC_CONFIGURE_H
#define MC_CONFIGURE_H

#include <stdbool.h>
#include <stdio.h>

#include "buf.h"
#include "err.h"

struct provider {
    const char *domains;     /* space-separated mail domains */
    const char *name;
    const char *host;
    unsigned port;
    bool implicit_tls;       /* port 465 style; else STARTTLS */
    bool local_part_user;    /* the user name is the local part, not the address */
    const char *auth;        /* mechanism for the auth key */
    const char *note;        /* comment lines: passwords, OAuth */
};

/* The table entry for domain (case-insensitive), or NULL. */
const struct provider *configure_provider(const char *domain);

/*
 * A domain of its own hosted at Google Workspace or Microsoft 365, told by
 * the name of one of its MX hosts; NULL for any other.
 */
const struct provider *configure_provider_by_mx(const char *mx);

/* The stanza for address from a provider entry, why it was chosen in a comment (pure). */
void configure_from_provider(const char *address, const struct provider *p, const char *why,
                             struct buf *out);

/*
 * Look up SRV records, else the table, and print the stanza to out; trace,
 * when not NULL, gets the SRV records found (-v).
 */
int configure_print(const char *address, FILE *out, FILE *trace, struct mc_err *err);

#endif
