/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The queue modes on top of queue.c: enqueueing after a temporary failure,
 * -q (flush, retries, expiry and the one bounce), -bp / mailq, and
 * --queue-delete / --queue-hold / --queue-release.
 */
#ifndef MC_QUEUE_CMD_H
#define MC_QUEUE_CMD_H

#include "err.h"

struct run;

/*
 * After a direct attempt with `queue on`: errs[i] is message i's result
 * (cls MC_OK when delivered).  Messages, or recipients, that failed
 * temporarily are queued and count as done, with a note on r->errf.
 * Returns 0, or -1 with the first failure that was not queued.
 */
int queue_after_send(struct run *r, const struct mc_err *errs, struct mc_err *err);

/* After a successful send: deliver due messages of the same account from a detached child. */
void queue_flush_background(struct run *r);

int queue_cmd_run(struct run *r, struct mc_err *err);
/* -bp: 0 when empty, -1 with MC_TEMPFAIL when messages wait. */
int queue_cmd_list(struct run *r, struct mc_err *err);
int queue_cmd_modify(struct run *r, struct mc_err *err);

#endif
