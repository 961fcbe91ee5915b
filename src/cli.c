/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Command-line parsing; see cli.h.  getopt_long runs with a leading '-' in
 * the option string so arguments are seen in order whatever POSIXLY_CORRECT
 * says: an argument that looks like an option before "--" is always parsed
 * as one, never taken as a recipient.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum {
    OPT_HELP = 0x100,
    OPT_VERSION,
    OPT_PRETEND,
    OPT_SERVERINFO,
    OPT_INPUT,
    OPT_PASSWORD_FD,
    OPT_IMPORT,
    OPT_CHECK,
    OPT_CONFIGURE,
    OPT_QUEUE_DELETE,
    OPT_QUEUE_HOLD,
    OPT_QUEUE_RELEASE,
    OPT_JSON,
    OPT_KEY_BASE = 0x200,   /* + index into conf_keys */
};

/* -h takes the hop count; everything else is as in sendmail 8. */
static const char short_opts[] = "-A:B:b:C:F:f:Gh:iL:mN:nO:o:q::R:r:StUV:vX:a:";

static const struct option fixed_long[] = {
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {"pretend", no_argument, NULL, OPT_PRETEND},
    {"serverinfo", no_argument, NULL, OPT_SERVERINFO},
    {"input", required_argument, NULL, OPT_INPUT},
    {"password-fd", required_argument, NULL, OPT_PASSWORD_FD},
    {"import", required_argument, NULL, OPT_IMPORT},
    {"check", no_argument, NULL, OPT_CHECK},
    {"configure", required_argument, NULL, OPT_CONFIGURE},
    {"queue-delete", required_argument, NULL, OPT_QUEUE_DELETE},
    {"queue-hold", required_argument, NULL, OPT_QUEUE_HOLD},
    {"queue-release", required_argument, NULL, OPT_QUEUE_RELEASE},
    {"json", no_argument, NULL, OPT_JSON},
};
#define NFIXED (sizeof fixed_long / sizeof fixed_long[0])

/* Long option names are the key names with '-' for '_', owned by this table. */
static char key_names[256][40];

static struct option *long_options(void)
{
    struct option *v = mc_calloc(NFIXED + conf_nkeys + 1, sizeof *v);
    size_t n = NFIXED;

    memcpy(v, fixed_long, sizeof fixed_long);
    for (size_t i = 0; i < conf_nkeys && i < 256; i++) {
        const struct conf_key *k = &conf_keys[i];
        if (k->flags & (CONF_SECRET | CONF_NOARGV))
            continue;
        snprintf(key_names[i], sizeof key_names[i], "%s", k->name);
        for (char *p = key_names[i]; *p; p++)
            if (*p == '_')
                *p = '-';
        v[n].name = key_names[i];
        /* Booleans, and syslog (msmtp's --syslog[=on|off|facility]), may stand alone. */
        v[n].has_arg = k->type == CONF_BOOL || strcmp(k->name, "syslog") == 0 ? optional_argument
                                                                                : required_argument;
        v[n].val = OPT_KEY_BASE + (int)i;
        n++;
    }
    return v;
}

static int set_mode(struct cli *o, enum cli_mode m, const char *opt, struct mc_err *err)
{
    if (o->mode != MODE_SEND && o->mode != m)
        return mc_err_set(err, MC_USAGE, "option '%s' conflicts with an earlier mode option", opt);
    o->mode = m;
    return 0;
}

static int opt_b(struct cli *o, const char *arg, struct mc_err *err)
{
    if (strcmp(arg, "m") == 0)
        return 0;
    if (strcmp(arg, "p") == 0)
        return set_mode(o, MODE_QUEUE_LIST, "-bp", err);
    if (strcmp(arg, "i") == 0)
        return set_mode(o, MODE_NEWALIASES, "-bi", err);
    if (strcmp(arg, "v") == 0)
        return set_mode(o, MODE_VERIFY, "-bv", err);
    if (strcmp(arg, "s") == 0)
        return set_mode(o, MODE_BS, "-bs", err);
    if (strcmp(arg, "d") == 0 || strcmp(arg, "D") == 0)
        return mc_err_set(err, MC_USAGE, "-b%s: mailcar does not receive mail, it only sends",
                          arg);
    return mc_err_set(err, MC_USAGE, "unsupported mode '-b%s'", arg);
}

/*
 * -oX: -oi is -i; the rest are sendmail 8 settings that have no meaning here.
 * A lone letter that takes a value in sendmail (-oA FILE, -oQ DIR, ...)
 * consumes the next argument so that it never becomes a recipient.
 */
static int opt_o(struct cli *o, const char *arg, int argc, char **argv)
{
    if (strcmp(arg, "i") == 0) {
        o->dot_ends = false;
        return 0;
    }
    if (strlen(arg) == 1 && strchr("AFLQTX", arg[0]) && optind < argc)
        optind++;
    (void)argv;
    return 0;
}

static int check_body(const char *arg, struct mc_err *err)
{
    if (mc_streq_ci(arg, "7BIT") || mc_streq_ci(arg, "8BITMIME"))
        return 0;
    return mc_err_set(err, MC_USAGE, "bad -B value '%s': use 7BIT or 8BITMIME", arg);
}

static int check_ret(const char *arg, struct mc_err *err)
{
    if (mc_streq_ci(arg, "full") || mc_streq_ci(arg, "hdrs"))
        return 0;
    return mc_err_set(err, MC_USAGE, "bad -R value '%s': use full or hdrs", arg);
}

/* -N: never, or a comma-separated list of success, failure, delay. */
static int check_notify(const char *arg, struct mc_err *err)
{
    char *copy = mc_strdup(arg), *save = NULL;
    int r = 0;

    if (mc_streq_ci(arg, "never")) {
        free(copy);
        return 0;
    }
    for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save))
        if (!mc_streq_ci(w, "success") && !mc_streq_ci(w, "failure") && !mc_streq_ci(w, "delay"))
            r = -1;
    free(copy);
    if (r < 0 || arg[0] == '\0')
        return mc_err_set(err, MC_USAGE,
                          "bad -N value '%s': use never, or success,failure,delay", arg);
    return 0;
}

/*
 * -q, -qf: run the queue once; -qI ID, -qR DOMAIN (argument attached or
 * next); -q30m (s, m, h, d): run it in a loop at that interval.
 */
static int opt_q(struct cli *o, const char *arg, int argc, char **argv, struct mc_err *err)
{
    char *end;
    long n, unit = 1;

    if (set_mode(o, MODE_QUEUE_RUN, "-q", err) < 0)
        return -1;
    if (arg == NULL || strcmp(arg, "f") == 0)
        return 0;
    if (arg[0] == 'I' || arg[0] == 'R') {
        const char *v = arg[1] ? arg + 1 : optind < argc ? argv[optind++] : NULL;
        if (v == NULL || *v == '\0')
            return mc_err_set(err, MC_USAGE, "option '-q%c' needs an argument", arg[0]);
        *(arg[0] == 'I' ? &o->queue_id : &o->queue_match) = v;
        return 0;
    }
    n = strtol(arg, &end, 10);
    if (*end && end[1] == '\0' && strchr("smhd", *end))
        unit = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : 86400;
    else if (*end)
        n = -1;
    if (end == arg || n <= 0 || n > 366L * 86400 / unit)
        return mc_err_set(err, MC_USAGE, "bad -q argument '%s': use -q, -qI ID, -qR DOMAIN or "
                          "an interval such as -q30m", arg);
    o->queue_interval = n * unit;
    return 0;
}

static void ignore(struct cli *o, int c, const char *arg)
{
    char text[64];

    snprintf(text, sizeof text, "-%c%s%s", c, arg ? " " : "", arg ? arg : "");
    strlist_add(&o->ignored, text);
}

static int opt_key(struct cli *o, int idx, const char *arg)
{
    const struct conf_key *k = &conf_keys[idx];

    account_set(&o->set, k->name, arg ? arg : "on",
                "command line", 0);
    return 0;
}

static int opt_short(struct cli *o, int c, int argc, char **argv, struct mc_err *err)
{
    switch (c) {
    case 't': o->extract = true; return 0;
    case 'i': o->dot_ends = false; return 0;
    case 'v': o->verbose++; return 0;
    case 'S': return set_mode(o, MODE_SERVERINFO, "-S", err);
    case 'f': case 'r': o->from = optarg; return 0;
    case 'F': o->fullname = optarg; return 0;
    case 'N': o->dsn_notify = optarg; return check_notify(optarg, err);
    case 'R': o->dsn_ret = optarg; return check_ret(optarg, err);
    case 'V': o->envid = optarg; return 0;
    case 'B': o->body = optarg; return check_body(optarg, err);
    case 'C': o->config = optarg; return 0;
    case 'a': o->account = optarg; return 0;
    case 'b': return opt_b(o, optarg, err);
    case 'o': ignore(o, c, optarg); return opt_o(o, optarg, argc, argv);
    case 'q': return opt_q(o, optarg, argc, argv, err);
    case 'A': case 'G': case 'h': case 'L': case 'm': case 'n':
    case 'O': case 'U': case 'X':
        /* Accepted for compatibility; -X in particular never writes a file. */
        ignore(o, c, optarg);
        return 0;
    }
    return mc_err_set(err, MC_SOFTWARE, "unhandled option -%c", c);
}

static int parse_fd(struct cli *o, const char *arg, struct mc_err *err)
{
    char *end;
    long fd = strtol(arg, &end, 10);

    if (*arg == '\0' || *end != '\0' || fd < 0 || fd > 1024 || fd == 0)
        return mc_err_set(err, MC_USAGE, "bad --password-fd '%s': a file descriptor number other "
                          "than 0 (standard input holds the message)", arg);
    o->password_fd = (int)fd;
    return 0;
}

static int opt_long(struct cli *o, int c, struct mc_err *err)
{
    switch (c) {
    case OPT_HELP: return set_mode(o, MODE_HELP, "--help", err);
    case OPT_VERSION: return set_mode(o, MODE_VERSION, "--version", err);
    case OPT_PRETEND: return set_mode(o, MODE_PRETEND, "--pretend", err);
    case OPT_SERVERINFO: return set_mode(o, MODE_SERVERINFO, "--serverinfo", err);
    case OPT_INPUT: strlist_add(&o->inputs, optarg); return 0;
    case OPT_PASSWORD_FD: return parse_fd(o, optarg, err);
    case OPT_IMPORT:
        o->import = optarg;
        return set_mode(o, MODE_IMPORT, "--import", err);
    case OPT_CHECK: return set_mode(o, MODE_CHECK, "--check", err);
    case OPT_CONFIGURE:
        o->configure = optarg;
        return set_mode(o, MODE_CONFIGURE, "--configure", err);
    case OPT_QUEUE_DELETE:
        o->queue_id = optarg;
        return set_mode(o, MODE_QUEUE_DELETE, "--queue-delete", err);
    case OPT_QUEUE_HOLD:
        o->queue_id = optarg;
        return set_mode(o, MODE_QUEUE_HOLD, "--queue-hold", err);
    case OPT_QUEUE_RELEASE:
        o->queue_id = optarg;
        return set_mode(o, MODE_QUEUE_RELEASE, "--queue-release", err);
    case OPT_JSON: o->json = true; return 0;
    }
    return opt_key(o, c - OPT_KEY_BASE, optarg);
}

static int bad_option(int argc, char **argv, struct mc_err *err)
{
    const char *arg = optind - 1 < argc ? argv[optind - 1] : "?";

    if (optopt && optopt < 0x100 && strchr(short_opts, optopt) == NULL)
        return mc_err_set(err, MC_USAGE, "unknown option '-%c' (see mailcar --help)", optopt);
    if (optopt)
        return mc_err_set(err, MC_USAGE, "option '-%c' needs an argument", optopt);
    return mc_err_set(err, MC_USAGE, "unknown or incomplete option '%s' (see mailcar --help)",
                      arg);
}

static void dispatch_argv0(struct cli *o, const char *argv0)
{
    const char *base = strrchr(argv0, '/');

    base = base ? base + 1 : argv0;
    if (strcmp(base, "mailq") == 0)
        o->mode = MODE_QUEUE_LIST;
    else if (strcmp(base, "newaliases") == 0)
        o->mode = MODE_NEWALIASES;
}

int cli_parse(int argc, char **argv, struct cli *o, struct mc_err *err)
{
    struct option *lo = long_options();
    int c, r = 0;

    memset(o, 0, sizeof *o);
    o->argc = argc;
    o->argv = argv;
    o->dot_ends = true;
    o->password_fd = -1;
    dispatch_argv0(o, argc > 0 ? argv[0] : "mailcar");
    optind = 0;     /* full re-initialisation of GNU getopt */
    opterr = 0;
    while (r == 0 && (c = getopt_long(argc, argv, short_opts, lo, NULL)) != -1) {
        if (c == 1)
            strlist_add(&o->rcpts, optarg);
        else if (c == '?' || c == ':')
            r = bad_option(argc, argv, err);
        else if (c >= OPT_HELP)
            r = opt_long(o, c, err);
        else
            r = opt_short(o, c, argc, argv, err);
    }
    for (int i = optind; r == 0 && i < argc; i++)
        strlist_add(&o->rcpts, argv[i]);
    free(lo);
    return r;
}

void cli_free(struct cli *o)
{
    strlist_free(&o->rcpts);
    strlist_free(&o->inputs);
    strlist_free(&o->ignored);
    account_free(&o->set);
}

static const char *const help_fixed[] = {
    "Usage: mailcar [OPTION]... [--] [RECIPIENT]...",
    "Send the message on standard input through the configured SMTP server.",
    "",
    "  -t                 read recipients from To, Cc, Bcc (or the first Resent- block)",
    "  -i, -oi            a line with a lone '.' does not end the message",
    "  -f ADDR, -r ADDR   envelope sender ('<>' or MAILER-DAEMON for the null sender)",
    "  -F NAME            full name for an added From: header",
    "  -N DSN             DSN notify: never, or success,failure,delay",
    "  -R RET             DSN return: full or hdrs",
    "  -V ENVID           DSN envelope id",
    "  -B TYPE            body type: 7BIT or 8BITMIME",
    "  -C FILE            configuration file (replaces the user configuration)",
    "  -a ACCOUNT         account to use",
    "  -v                 show the SMTP transcript on standard error",
    "  -bm                send (default)",
    "  -bv                verify recipients with the server, send nothing",
    "  -bs                speak SMTP on standard input and output (for Symfony, Alpine)",
    "  -bp                list the queue (as mailq); exit 75 when it is not empty",
    "  -bi                rebuild aliases (as newaliases; nothing to do)",
    "  -q                 deliver the queued messages that are due",
    "  -qI ID             deliver the queued message ID now",
    "  -qR DOMAIN         deliver now the messages to recipients containing DOMAIN",
    "  -q30m              run the queue every 30 minutes, in the foreground (s, m, h, d)",
    "  --queue-delete ID  remove a message from the queue",
    "  --queue-hold ID    keep a queued message from being delivered",
    "  --queue-release ID deliver a held message again",
    "  --json             with -bp: the queue as JSON",
    "  -S, --serverinfo   show what the server offers, its certificate, and exit",
    "  --pretend          print the resolved settings (secrets masked) and exit",
    "  --import FILE      print FILE (msmtprc, ssmtp.conf, dma.conf, /etc/nullmailer) as mailcar configuration",
    "  --check            try the configuration: connect, TLS, certificate, AUTH; send nothing",
    "  --configure ADDRESS print a configuration for ADDRESS from its SRV records or known providers",
    "  --input FILE       send FILE instead of standard input (repeatable)",
    "  --password-fd N    read the password from file descriptor N",
    "  --help             this text",
    "  --version          version and build features",
    "Accepted and ignored: -oXXX, -O OPT, -h N, -L TAG, -A X, -X FILE, -G, -U, -m, -n",
    "",
    "Every configuration key is also an option (see mailcar.conf(5)):",
};

void cli_help(struct buf *out)
{
    for (size_t i = 0; i < sizeof help_fixed / sizeof help_fixed[0]; i++)
        buf_printf(out, "%s\n", help_fixed[i]);
    for (size_t i = 0; i < conf_nkeys; i++) {
        const struct conf_key *k = &conf_keys[i];
        char name[48];
        if (k->flags & (CONF_SECRET | CONF_NOARGV))
            continue;
        snprintf(name, sizeof name, "%s", k->name);
        for (char *p = name; *p; p++)
            if (*p == '_')
                *p = '-';
        buf_printf(out, "  --%s%s  %s\n", name,
                   k->type == CONF_BOOL ? "[=on|off]" : strcmp(k->name, "syslog") == 0 ? "[=VALUE]" : "=VALUE",
                   k->help ? k->help : "");
    }
}
