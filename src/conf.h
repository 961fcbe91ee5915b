/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Configuration in msmtp's syntax, so an existing msmtprc works unchanged:
 *
 *   # comment
 *   defaults
 *   key value            (value may be "quoted", ~ expanded in path keys)
 *   account NAME [: PARENT[, PARENT...]]
 *   account default : NAME
 *   eval COMMAND         (the first line COMMAND prints replaces this line)
 *
 * Every key is listed in one table (conf_keys) with its type; the command
 * line's long options are generated from the same table, so there is a
 * `--port`, `--tls-starttls` ... for every key except the secret ones.
 * Values are kept as strings with the file and line they came from; typed
 * getters check them when they are read.
 *
 * The rules follow what msmtp 1.8 does, not what one might guess:
 * - Only whole lines are comments: in `host a # b` the value is "a # b".
 * - A value is trimmed; if it then starts and ends with '"' that one pair is
 *   removed and nothing else is unescaped ("a\"b" stays a\"b).
 * - Keys are case-sensitive.  Unknown keys are errors.
 * - `defaults` values are copied into each account defined after them in
 *   the same file; they do not reach accounts defined above them or in other
 *   files.  A parent must be defined above its child, in the same file or an
 *   earlier one, so inheritance cannot loop; the child copies the parent's
 *   values as they stand there.
 * - Lines before the first `account` or `defaults` line form an account
 *   named "default".
 * - An account defined again in a later file replaces the earlier one
 *   completely; defining it twice in one file is an error.
 * - `eval` runs COMMAND with /bin/sh -c, standard input from /dev/null; the
 *   first line of its output is parsed in place of the eval line (the rest is
 *   read and ignored).  Unlike msmtp, a non-zero exit status is an error.
 * - Old msmtp names (tls_nocertcheck, tls_nostarttls, keepbcc,
 *   add_missing_from_header, add_missing_date_header) are stored under the
 *   key that replaced them; tls_force_sslv3 is accepted and ignored.
 * mailcar is stricter in one place: a file that sets `password` must be
 * owned by the user and closed to group and others (root included).
 */
#ifndef MC_CONF_H
#define MC_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "util.h"

enum conf_type {
    CONF_STRING,
    CONF_PATH,     /* string with ~ expansion */
    CONF_BOOL,     /* on|off (also yes/no/true/false/1/0); empty value = on */
    CONF_INT,      /* non-negative integer */
    CONF_TIME,     /* seconds, or with s/m/h suffix; "off" = 0 */
    CONF_ENUM,     /* one of the words in `choices` (space separated) */
};

#define CONF_SECRET  0x01  /* never on the command line, masked in --pretend */
#define CONF_NOARGV  0x02  /* no long option generated */
#define CONF_REQARG  0x04  /* an empty value is an error when the file is read */
#define CONF_LEGACY  0x08  /* old msmtp name, stored under its replacement */

/* Largest configuration file, and largest output of one `eval` command. */
#define CONF_MAX_SIZE (16u << 20)
#define CONF_EVAL_MAX (1u << 20)

struct conf_key {
    const char *name;
    enum conf_type type;
    const char *choices;   /* CONF_ENUM: "on off auto" */
    unsigned flags;
    const char *help;      /* one line, for --help and completions */
};

extern const struct conf_key conf_keys[];
extern const size_t conf_nkeys;
const struct conf_key *conf_key_find(const char *name);

struct conf_value {
    char *key;
    char *value;
    char *file;       /* where it was set; "command line" for options */
    unsigned line;
    bool from_defaults; /* filled in from a defaults section; children do not inherit it */
};

/*
 * Every value that applies to the account, each key once, in the order keys
 * were first set: the file's defaults as they stood at the `account` line,
 * then each parent's values, then the account's own lines (later wins).
 * As in msmtp, a parent passes on what was set for it or its own parents,
 * not the defaults it was given.  Parents are resolved when the file is
 * read, so this list is complete.
 */
struct account {
    char *name;             /* NULL for the defaults section */
    struct conf_value *v;
    size_t n, cap;
};

struct conf {
    struct account defaults;
    struct account *acc;
    size_t nacc;
    char *default_name;       /* from "account default : NAME", or NULL */
    bool has_secret;          /* some file held `password` */
    struct strlist warnings;  /* duplicate keys etc., "FILE:LINE: ..." for main to print */
    bool no_eval;             /* refuse `eval` lines (fuzzing, untrusted text) */
};

void conf_init(struct conf *c);
/* Free everything; c may be used again after conf_init. */
void conf_free(struct conf *c);

/*
 * Parse one file into c (later files add to or override earlier ones).
 * A file that holds a `password` must be owned by the user and not
 * readable or writable by group or others (MC_CONFIG with the chmod to run).
 * `missing_ok`: a file that does not exist is not an error.
 * Errors are MC_CONFIG, "FILE:LINE: what is wrong" (MC_OSERR when `eval`
 * cannot start a shell).  A file is merged into c only when all of it was
 * read without error: on error c is unchanged.
 */
int conf_load_file(struct conf *c, const char *path, bool missing_ok, struct mc_err *err);
/* Parse from memory (tests, fuzzing); `name` is used in messages. */
int conf_load_buffer(struct conf *c, const char *name, const char *text, size_t len,
                     struct mc_err *err);

/*
 * Resolve the account to use into `out` (a flat list: defaults, then parents
 * in order, then the account itself, later values win):
 *   name != NULL          -> that account (MC_CONFIG if absent);
 *   else envelope_from    -> the first account whose `from` matches it
 *                            (exact, ignoring +detail, or glob like *@example.org);
 *   else (or none matches) -> "default" (account default : X, or one named default),
 *                            else the defaults section alone.
 * `why` (may be NULL) receives a short reason: "-a work", "from matches account work", ...
 * `from` matches the envelope sender exactly (ignoring case), or once a
 * "+detail" is removed from the sender's local part, or as a shell glob when
 * it holds * ? or [ (ignoring case); the first account in file order wins.
 * `out` is overwritten, not freed: release it with account_free.  Its name
 * is NULL when no account applies and it holds the defaults alone.
 */
int conf_select(const struct conf *c, const char *name, const char *envelope_from,
                struct account *out, char *why, size_t whylen, struct mc_err *err);

/*
 * Set (or replace) a value, e.g. from a command-line option (file "command
 * line", line 0).  Path keys get ~ expanded; enum values are stored as the
 * choice they name (case-insensitive; empty means "on", or the first choice
 * when "on" is not one), so conf_str gives the canonical word.
 */
void account_set(struct account *a, const char *key, const char *value, const char *file,
                 unsigned line);
/* Free the values (those of CONF_SECRET keys are wiped first) and zero a. */
void account_free(struct account *a);

/*
 * Typed lookups on a resolved account; `def` when the key is unset.
 * conf_str returns an empty value as "" (in msmtp an empty value often
 * means "unset" or "off": the caller knows which).
 */
const char *conf_str(const struct account *a, const char *key, const char *def);
const struct conf_value *conf_lookup(const struct account *a, const char *key);
/*
 * These return -1 (MC_CONFIG naming file, line, key and the bad value) on a bad value.
 * bool: on/off yes/no true/false 1/0 in any case; empty is on.
 * int: decimal digits only; empty means `def`.  conf_int allows 0..LONG_MAX.
 * time: seconds, or N followed by s, m, h or d; "off" is 0; empty means `def`.
 * enum: *out points at the stored canonical choice (valid while `a` lives).
 */
int conf_bool(const struct account *a, const char *key, bool def, bool *out, struct mc_err *err);
int conf_int(const struct account *a, const char *key, long def, long *out, struct mc_err *err);
int conf_int_range(const struct account *a, const char *key, long def, long min, long max,
                   long *out, struct mc_err *err);
int conf_time(const struct account *a, const char *key, long def, long *out, struct mc_err *err);
int conf_enum(const struct account *a, const char *key, const char *def, const char **out,
              struct mc_err *err);

/*
 * Check one value, or every value of an account, against its key's type
 * (known key, no control characters but tab, a value where one is required,
 * and the typed getters' rules), for --pretend and for command-line options.
 */
int conf_check_value(const struct conf_value *v, struct mc_err *err);
int conf_check_account(const struct account *a, struct mc_err *err);

/* Expand a leading ~ or ~user. Returns a new string. */
char *conf_expand_path(const char *path);

#endif
