/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * `mailcar --check`: the configuration tried out without sending anything.
 * The account was already read and checked (syntax, permissions, values);
 * this connects, greets, starts TLS and verifies the certificate,
 * authenticates when the account says so, and quits: no MAIL command.
 */
#ifndef MC_CHECK_H
#define MC_CHECK_H

#include "err.h"

struct run;

/*
 * One line on r->out per step that passed ("ok: ..."), and per thing worth
 * knowing that does not stop mail ("note: ..."); the first failure is
 * returned in err, in the words send mode would use, so main prints it as
 * the last line and exits with its status.
 */
int check_run(struct run *r, struct mc_err *err);

#endif
