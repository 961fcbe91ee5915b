/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * -bs: SMTP on standard input and output, for programs that talk SMTP to
 * `sendmail -bs` (Symfony Mailer, SwiftMailer, Alpine).  Each accepted
 * message goes through the normal send path in a child process, and the
 * DATA reply carries the upstream result.
 */
#ifndef MC_BS_H
#define MC_BS_H

#include "cli.h"
#include "err.h"

/* The server loop until QUIT or end of input.  Returns 0, or -1 on local I/O failure. */
int bs_run(const struct cli *o, int in, int out, struct mc_err *err);

/* The SMTP reply for a send that ended with exit status `status` (tests use it). */
const char *bs_reply_for_status(int status);

#endif
