/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The state of one invocation, shared by send.c (direct sending) and
 * queue_cmd.c (the queue modes), and the few send.c steps both use;
 * check.c (--check) opens its session with them too.  Internal to the
 * library: nothing outside these three files includes it.
 */
#ifndef MC_RUN_H
#define MC_RUN_H

#include <stdbool.h>
#include <stdio.h>

#include "aliases.h"
#include "cli.h"
#include "conf.h"
#include "conn.h"
#include "log.h"
#include "msg.h"
#include "settings.h"
#include "smtp.h"

struct run {
    const struct cli *o;
    FILE *out;
    FILE *errf;
    struct conf conf;
    struct account acc;
    char why[160];
    struct settings st;
    struct log log;
    char *from;               /* envelope sender, "" for null */
    struct msg *msgs;
    size_t nmsgs;
    struct smtp_envelope *envs;   /* one per message, built before connecting */
    struct addrlist *alls;        /* owns the envelope's addresses */
    struct addrlist argv_rcpts;
    bool *sent;                   /* per message: the server took it (maybe not for all) */
    struct aliases aliases;       /* the `aliases` file, when set */
};

/* Connect, greet, TLS, AUTH for the selected account (send.c). */
int open_session(struct run *r, struct conn *c, struct smtp_session *s, struct smtp_params *p,
                 char **secret, struct mc_err *err);
/* One line for the log file / syslog about an attempt (send.c). */
void log_result(struct run *r, struct smtp_session *s, struct conn *c,
                const struct smtp_envelope *env, const struct msg *m, long long start,
                const struct mc_err *err);

#endif
