/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Entry point: parse, run, map the error class to a sysexits status.
 */
#include "config.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>

#include "bs.h"
#include "buf.h"
#include "cli.h"
#include "err.h"
#include "progress.h"
#include "send.h"

int main(int argc, char **argv)
{
    struct mc_err err = {0};
    struct cli o;
    int rc;

    /* A vanished server must be an error return, not a silent death. */
    signal(SIGPIPE, SIG_IGN);
    /* Passwords and tokens pass through memory: no core file, no ptrace by others. */
    setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
    prctl(PR_SET_DUMPABLE, 0);
    rc = cli_parse(argc, argv, &o, &err);
    if (rc == 0 && o.mode == MODE_HELP) {
        struct buf b;
        buf_init(&b, BUF_NOLIMIT);
        cli_help(&b);
        fputs(b.data, stdout);
        buf_release(&b);
    } else if (rc == 0 && o.mode == MODE_BS) {
        rc = bs_run(&o, 0, 1, &err);
    } else if (rc == 0) {
        rc = send_run(&o, stdout, stderr, &err);
    }
    cli_free(&o);
    if (fflush(stdout) != 0 && rc == 0)
        rc = mc_err_set(&err, MC_IOERR, "writing standard output failed");
    if (rc == 0)
        return 0;
    if (progress_colour(stderr))
        fprintf(stderr, "\033[1;31mmailcar:\033[0m %s\n", err.msg);
    else
        fprintf(stderr, "mailcar: %s\n", err.msg);
    return mc_class_exit(err.cls);
}
