/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * One invocation from parsed options to the server's answer: configuration,
 * account, message, envelope, connection, engine, log.  Streams are passed
 * in so that the tests and main() decide where words go.
 */
#ifndef MC_SEND_H
#define MC_SEND_H

#include <stdio.h>

#include "cli.h"
#include "err.h"

/*
 * Run the mode chosen on the command line.  Returns 0 or -1 with err set;
 * per-recipient refusals and warnings are written to errf as they happen,
 * results of -bv, --pretend, --serverinfo to out.
 */
int send_run(const struct cli *o, FILE *out, FILE *errf, struct mc_err *err);

#endif
