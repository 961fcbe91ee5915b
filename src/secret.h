/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Where the password (or OAuth token) comes from.  The secret is returned
 * in memory the caller wipes with mc_free_secret; it never reaches argv,
 * the environment of a child, a log or a transcript.
 */
#ifndef MC_SECRET_H
#define MC_SECRET_H

#include <stdbool.h>

#include "conf.h"
#include "err.h"

struct secret_ctx {
    const char *host;      /* for netrc and the prompt */
    const char *user;
    long timeout_s;        /* for passwordeval */
    int fd;                /* --password-fd, or -1 */
    bool may_prompt;       /* ask on /dev/tty when nothing else answers */
};

/*
 * The first source that answers: password, passwordeval, password_file,
 * --password-fd, ~/.netrc then /etc/netrc, a prompt on the terminal.
 * *out is NULL when none does.  Errors: MC_CONFIG, MC_TEMPFAIL (eval timed out).
 */
int secret_get(const struct account *a, const struct secret_ctx *x, char **out,
               struct mc_err *err);

/* The first line read from fd (--password-fd). */
int secret_from_fd(int fd, char **out, struct mc_err *err);

/* Run `cmd` with /bin/sh, stdin from /dev/null; its first line, or an error naming the exit status. */
int secret_eval(const char *cmd, long timeout_s, char **out, struct mc_err *err);

#endif
