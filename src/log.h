/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Where mailcar's own words go: the -v transcript on stderr, the log file
 * and syslog (one line per attempt).  The only module besides main.c that
 * writes to a stream.  Secrets never reach it: the engine redacts AUTH.
 */
#ifndef MC_LOG_H
#define MC_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"
#include "smtp.h"

struct log {
    FILE *transcript;      /* stderr with -v, else NULL */
    FILE *warnings;        /* stderr */
    const char *logfile;   /* path, or NULL */
    int syslog_facility;   /* LOG_MAIL etc., or -1 for none */
};

/* The engine's trace callback: "--> EHLO x", "<-- 250 ok", "mailcar: note". */
void log_trace(void *arg, enum smtp_trace_dir dir, const char *line, size_t len);

/* Parse the `syslog` value: on, off, or a facility name (LOG_MAIL, LOG_USER, LOG_LOCAL0..7). */
int log_facility(const char *value, int *out, struct mc_err *err);

struct log_entry {
    const char *host;
    const char *tls;
    const char *auth;
    const char *user;
    const char *from;
    const char *rcpts;
    const char *refused;   /* "addr (reply); addr (reply)" or NULL */
    long long size;
    const char *msgid;
    long long duration_ms;
    const char *result;    /* the final reply, or the error */
    int status;            /* exit status */
};

/* Write the attempt to the log file and syslog.  A log file that cannot be written is MC_IOERR. */
int log_attempt(const struct log *l, const struct log_entry *e, struct mc_err *err);

#endif
