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
};

/*
 * Parse an RFC 5322 address-list (also accepts a single mailbox, groups
 * "name: a, b;", comments, quoted local parts "a b"@x, folded text with CRLF
 * or LF followed by white space, obsolete route addresses <@r:a@b> and
 * obs-local-part dotted words, encoded-word display names left as written).
 * Empty groups and empty list elements are allowed.  Each mailbox found is
 * appended to out, skipping addresses already present (compared with the
 * local part case-sensitive, the domain case-insensitive).
 * Returns 0, or -1 with MC_DATAERR naming the offending text.
 */
int addr_parse_list(const char *text, size_t len, struct addrlist *out, struct mc_err *err);

/*
 * Check one envelope address before it is used in MAIL FROM or RCPT TO:
 * refuses control characters (CR, LF, NUL, ...), a leading '-', '<' or '>'
 * or unbalanced quotes, white space outside a quoted local part, a missing
 * local part or domain, more than 256 octets.  `what` names the address in
 * the message ("recipient", "sender").  Returns 0 or -1 with MC_DATAERR.
 */
int addr_check(const char *addr, const char *what, struct mc_err *err);

/* True when addr has a non-ASCII byte (needs SMTPUTF8). */
bool addr_is_utf8(const char *addr);

/* Append a copy unless already present (same comparison as addr_parse_list). */
void addrlist_add(struct addrlist *l, const char *addr, const char *display);
bool addrlist_has(const struct addrlist *l, const char *addr);
void addrlist_free(struct addrlist *l);

#endif
