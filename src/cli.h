/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The sendmail command line: every way real programs call sendmail, the
 * historic options accepted and ignored (each consuming exactly its
 * argument), and a long option for every configuration key.
 */
#ifndef MC_CLI_H
#define MC_CLI_H

#include <stdbool.h>

#include "buf.h"
#include "conf.h"
#include "err.h"
#include "util.h"

enum cli_mode {
    MODE_SEND,        /* -bm, the default */
    MODE_VERIFY,      /* -bv */
    MODE_BS,          /* -bs: SMTP on standard input and output */
    MODE_QUEUE_LIST,  /* -bp, mailq */
    MODE_QUEUE_RUN,   /* -q, -qI ID, -qR DOMAIN, -q30m */
    MODE_QUEUE_DELETE,    /* --queue-delete ID */
    MODE_QUEUE_HOLD,      /* --queue-hold ID */
    MODE_QUEUE_RELEASE,   /* --queue-release ID */
    MODE_NEWALIASES,  /* -bi, newaliases */
    MODE_SERVERINFO,  /* -S, --serverinfo */
    MODE_PRETEND,     /* --pretend */
    MODE_IMPORT,      /* --import FILE */
    MODE_CHECK,       /* --check */
    MODE_CONFIGURE,   /* --configure ADDRESS */
    MODE_HELP,
    MODE_VERSION,
};

struct cli {
    enum cli_mode mode;
    bool extract;              /* -t */
    bool dot_ends;             /* false with -i / -oi */
    int verbose;               /* -v */
    const char *from;          /* -f / -r */
    const char *fullname;      /* -F */
    const char *dsn_notify;    /* -N */
    const char *dsn_ret;       /* -R */
    const char *envid;         /* -V */
    const char *body;          /* -B 7BIT|8BITMIME */
    const char *config;        /* -C */
    const char *account;       /* -a */
    int password_fd;           /* --password-fd, -1 when not given */
    const char *import;        /* --import FILE */
    const char *configure;     /* --configure ADDRESS */
    const char *queue_id;      /* -qI ID, --queue-delete/hold/release ID */
    const char *queue_match;   /* -qR DOMAIN: recipients containing it */
    long queue_interval;       /* -q30m: seconds between runs, 0 = run once */
    bool json;                 /* --json: -bp output for programs */
    int argc;                  /* the command line as given, for the queue's record */
    char **argv;
    struct strlist rcpts;      /* arguments, each an address list */
    struct strlist inputs;     /* --input FILE ... */
    struct account set;        /* config keys given as long options */
    struct strlist ignored;    /* historic options accepted and ignored, for -v */
};

/* Fills o; MC_USAGE errors name the option.  argv is not modified beyond getopt's permutation. */
int cli_parse(int argc, char **argv, struct cli *o, struct mc_err *err);
void cli_free(struct cli *o);
/* The --help text: every option, one per line, so tests can check the completions. */
void cli_help(struct buf *out);

#endif
