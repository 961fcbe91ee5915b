/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Where the password (or OAuth token) comes from, first that answers:
 * `password` in a private config file, `passwordeval` (a command whose
 * first output line is the secret), `password_file`.  The secret is
 * returned in memory the caller wipes with mc_free_secret.
 */
#ifndef MC_SECRET_H
#define MC_SECRET_H

#include "conf.h"
#include "err.h"

/* *out is NULL when no source is configured.  Errors: MC_CONFIG, MC_TEMPFAIL (eval timed out). */
int secret_get(const struct account *a, long timeout_s, char **out, struct mc_err *err);

/* Run `cmd` with /bin/sh, stdin from /dev/null; its first line, or an error naming the exit status. */
int secret_eval(const char *cmd, long timeout_s, char **out, struct mc_err *err);

#endif
