/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * RFC 5322 address lists (header fields, command-line arguments) and the
 * safety check every envelope address passes before it reaches the wire.
 * Pure functions over buffers: no I/O, fuzzable.
 */
#ifndef MC_ADDR_H
#define MC_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct mc_addr {
    char *addr;     /* addr-spec as sent in MAIL/RCPT: local@domain, "" = null sender */
    char *display;  /* display name as written (unfolded, comments dropped), or NULL */
};

struct addrlist {
    struct mc_addr *v;
    size_t n;
    size_t cap;
    /*
     * Private to addr.c: a hash index over v[0..idx_n) so that adding to a
     * list of n addresses costs O(1), not O(n).  Zero-initialise the list and
     * change it only through addrlist_add and addrlist_free; the index is
     * rebuilt when n no longer matches it.
     */
    size_t *idx;
    size_t idx_cap;
    size_t idx_n;
};

/* Longest address accepted: the RFC 5321 path "<address>" is 256 octets at most. */
#define ADDR_MAX 254
/* Longest local part (RFC 5321 section 4.5.3.1.1). */
#define ADDR_LOCAL_MAX 64

/*
 * Parse an RFC 5322 address-list (also accepts a single mailbox, groups
 * "name: a, b;", comments, quoted local parts "a b"@x, folded text with CRLF
 * or LF followed by white space, obsolete route addresses <@r:a@b> and
 * obs-local-part dotted words, encoded-word display names left as written).
 * Empty groups and empty list elements are allowed.  Each mailbox found is
 * appended to out, skipping addresses already present (compared with the
 * local part case-sensitive, the domain case-insensitive).
 * Returns 0, or -1 with MC_DATAERR naming the offending text.
 * On error out is left as it was (nothing from this call is kept).
 * The display name keeps its quotes ("Doe, J" stays quoted), so it can be
 * written back as it is.  "<>" gives the null address "".  A bare word
 * without '@' ("root", "<root>") is kept as is for addr_check to refuse or a
 * caller to qualify.  A final line end and a group whose ';' is missing at
 * the very end are accepted.
 */
int addr_parse_list(const char *text, size_t len, struct addrlist *out, struct mc_err *err);

/*
 * Check one envelope address before it is used in MAIL FROM or RCPT TO:
 * refuses control characters (CR, LF, NUL, ...), a leading '-', '<' or '>'
 * or unbalanced quotes, white space outside a quoted local part, a missing
 * local part or domain, more than 256 octets.  `what` names the address in
 * the message ("recipient", "sender").  Returns 0 or -1 with MC_DATAERR.
 * "More than 256 octets" is the path limit: the address inside "<...>" may
 * have ADDR_MAX octets, its local part ADDR_LOCAL_MAX.  Invalid UTF-8 is
 * refused too.  The empty (null) address is accepted only when what is
 * "sender".
 */
int addr_check(const char *addr, const char *what, struct mc_err *err);
/* The same for an address of len octets that may hold a NUL (refused). */
int addr_check_n(const char *addr, size_t len, const char *what, struct mc_err *err);

/* True when addr has a non-ASCII byte (needs SMTPUTF8). */
bool addr_is_utf8(const char *addr);

/* Append a copy unless already present (same comparison as addr_parse_list). */
void addrlist_add(struct addrlist *l, const char *addr, const char *display);
bool addrlist_has(const struct addrlist *l, const char *addr);
void addrlist_free(struct addrlist *l);

#endif
