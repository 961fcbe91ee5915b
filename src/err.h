/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The one error idiom: library functions return -1 (or NULL) and fill a
 * struct mc_err with a class, a one-line message and, when a server said
 * something, its reply code and enhanced status code.  Only main() maps the
 * class to a sysexits status and prints.
 */
#ifndef MC_ERR_H
#define MC_ERR_H

#include <stddef.h>

enum mc_class {
    MC_OK = 0,
    MC_USAGE,      /* bad command line                        -> EX_USAGE 64 */
    MC_DATAERR,    /* bad message or address                  -> EX_DATAERR 65 */
    MC_NOUSER,     /* recipients refused with 5xx             -> EX_NOUSER 67 */
    MC_NOHOST,     /* host name does not exist                -> EX_NOHOST 68 */
    MC_UNAVAIL,    /* other permanent server refusal          -> EX_UNAVAILABLE 69 */
    MC_SOFTWARE,   /* internal error                          -> EX_SOFTWARE 70 */
    MC_OSERR,      /* out of memory, fork failed              -> EX_OSERR 71 */
    MC_IOERR,      /* local I/O                               -> EX_IOERR 74 */
    MC_TEMPFAIL,   /* try again later: 4xx, network, timeouts -> EX_TEMPFAIL 75 */
    MC_PROTOCOL,   /* server spoke nonsense                   -> EX_PROTOCOL 76 */
    MC_NOPERM,     /* authentication refused                  -> EX_NOPERM 77 */
    MC_CONFIG,     /* bad configuration                       -> EX_CONFIG 78 */
    MC_CLASS_MAX
};

#define MC_ERR_MSG_MAX 512

struct mc_err {
    enum mc_class cls;
    int code;          /* SMTP reply code, 0 when none */
    char esc[16];      /* enhanced status code ("5.1.1"), "" when none */
    char msg[MC_ERR_MSG_MAX];
};

/* Fill err (when not NULL) and return -1, so callers can `return mc_err_set(...)`. */
int mc_err_set(struct mc_err *err, enum mc_class cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with the server's reply attached. */
int mc_err_reply(struct mc_err *err, enum mc_class cls, int code, const char *esc,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Prefix the existing message with context: "reading config: <old message>". */
int mc_err_prefix(struct mc_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mc_err_clear(struct mc_err *err);

int mc_class_exit(enum mc_class cls);
const char *mc_class_name(enum mc_class cls);

#endif
