/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * SMTP replies (RFC 5321 section 4.2) and EHLO capabilities, parsed from
 * bytes with no I/O: the engine feeds complete lines, this module says
 * whether the reply is finished and what it meant.  Fuzzable.
 */
#ifndef MC_REPLY_H
#define MC_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

#define REPLY_MAX (64 * 1024)   /* a whole (multi-line) reply; more is a protocol error */

struct reply {
    int code;            /* 0 until the first line */
    char esc[16];        /* enhanced status code of the first line, "" when none */
    struct buf text;     /* all lines' text after "NNN-"/"NNN ", joined by '\n' */
    bool done;           /* the last line ("NNN ") has been seen */
};

void reply_init(struct reply *r);
void reply_reset(struct reply *r);
void reply_release(struct reply *r);
/*
 * Add one line (without CRLF).  Returns -1 with MC_PROTOCOL for a line that
 * is not "NNN", "NNN-text" or "NNN text", a code that changes in the middle
 * of a multi-line reply, or a reply over REPLY_MAX.
 */
int reply_add_line(struct reply *r, const char *line, size_t len, struct mc_err *err);
/* The first line's text without the enhanced code, for messages. */
const char *reply_first_text(const struct reply *r, size_t *len);
/* A one-line rendering for error messages: "550 5.1.1 no such user" (bounded, controls escaped). */
void reply_summary(const struct reply *r, char *out, size_t outlen);

#define CAP_PIPELINING  0x0001u
#define CAP_SIZE        0x0002u
#define CAP_8BITMIME    0x0004u
#define CAP_SMTPUTF8    0x0008u
#define CAP_DSN         0x0010u
#define CAP_ENHANCED    0x0020u
#define CAP_CHUNKING    0x0040u
#define CAP_STARTTLS    0x0080u
#define CAP_AUTH        0x0100u
#define CAP_BINARYMIME  0x0200u

struct caps {
    unsigned flags;
    unsigned long long size;   /* SIZE limit, 0 = none given */
    char auth[512];            /* AUTH mechanisms, space separated, upper case */
};

/* Parse an EHLO reply (every line after the first is a keyword with parameters). */
void caps_parse(const struct reply *r, struct caps *c);

#endif
