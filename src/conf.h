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
 *   eval COMMAND         (COMMAND's output is read as more lines)
 *
 * Every key is listed in one table (conf_keys) with its type; the command
 * line's long options are generated from the same table, so there is a
 * `--port`, `--tls-starttls` ... for every key except the secret ones.
 * Values are kept as strings with the file and line they came from; typed
 * getters check them when they are read.
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
};

struct account {
    char *name;
    struct conf_value *v;   /* own values in order; parents are resolved at load */
    size_t n, cap;
};

struct conf {
    struct account defaults;
    struct account *acc;
    size_t nacc;
    char *default_name;       /* from "account default : NAME", or NULL */
    bool has_secret;          /* some file held `password` */
    struct strlist warnings;  /* duplicate keys etc., "FILE:LINE: ..." for main to print */
};

void conf_init(struct conf *c);
void conf_free(struct conf *c);

/*
 * Parse one file into c (later files add to or override earlier ones).
 * A file that holds a `password` must be owned by the user and not
 * readable or writable by group or others (MC_CONFIG with the chmod to run).
 * `missing_ok`: a file that does not exist is not an error.
 * Errors are MC_CONFIG, "FILE:LINE: what is wrong".
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
 *   else                  -> "default" (account default : X, or one named default),
 *                            else the defaults section alone.
 * `why` (may be NULL) receives a short reason: "-a work", "from matches account work", ...
 */
int conf_select(const struct conf *c, const char *name, const char *envelope_from,
                struct account *out, char *why, size_t whylen, struct mc_err *err);

/* Set (or replace) a value, e.g. from a command-line option. */
void account_set(struct account *a, const char *key, const char *value, const char *file,
                 unsigned line);
void account_free(struct account *a);

/* Typed lookups on a resolved account; `def` when the key is unset. */
const char *conf_str(const struct account *a, const char *key, const char *def);
const struct conf_value *conf_lookup(const struct account *a, const char *key);
/* These return -1 (MC_CONFIG naming file, line, key and the bad value) on a bad value. */
int conf_bool(const struct account *a, const char *key, bool def, bool *out, struct mc_err *err);
int conf_int(const struct account *a, const char *key, long def, long *out, struct mc_err *err);
int conf_time(const struct account *a, const char *key, long def, long *out, struct mc_err *err);

/* Expand a leading ~ or ~user. Returns a new string. */
char *conf_expand_path(const char *path);

#endif
