/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Aliases for local recipients, in the /etc/aliases format:
 *
 *   # comment
 *   name: addr, addr,
 *     addr                      (a line starting with white space continues)
 *   name: :include:/path/file   (the addresses in that file, same syntax
 *                                without names, commas or new lines between)
 *   default: admin@example.org  (catch-all for local names not listed)
 *
 * Names are case-insensitive.  Expansion is recursive: a target without '@'
 * that is itself an alias is expanded; a name already being expanded is
 * kept as it is (so "root: root, ops@x" keeps root), and nesting deeper
 * than ALIASES_DEPTH is an error.  The result keeps the order of first
 * appearance, without duplicates.  Pipes ("|cmd") and files ("/path") are
 * refused: mailcar delivers nothing locally.  Parsing is pure (no I/O);
 * :include: files are read through a callback.
 */
#ifndef MC_ALIASES_H
#define MC_ALIASES_H

#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "util.h"

#define ALIASES_DEPTH 16
#define ALIASES_FILE_MAX (4 * 1024 * 1024)

struct alias {
    char *name;              /* lower case */
    struct strlist targets;  /* as written; ":include:PATH" kept as one target */
    unsigned line;
};

struct aliases {
    struct alias *v;
    size_t n;
    char *file;              /* for messages */
};

/* Parse text (file names it in errors).  MC_CONFIG "file:line: why" on a syntax error. */
int aliases_parse(const char *text, size_t len, const char *file, struct aliases *out,
                  struct mc_err *err);
void aliases_free(struct aliases *a);

/* Reads an :include: file into out; 0 or -1 with err. */
typedef int (*aliases_read_fn)(void *arg, const char *path, struct buf *out, struct mc_err *err);

/*
 * Expand one recipient.  An address with '@' is returned as it is; a local
 * name goes through the aliases (or `default`), and what is left unexpanded
 * is appended as the bare name, for the caller to qualify.
 */
int aliases_expand(const struct aliases *a, const char *rcpt, aliases_read_fn rd, void *arg,
                   struct strlist *out, struct mc_err *err);

/* Read and parse a file (the I/O half); also the default aliases_read_fn. */
int aliases_load(const char *path, struct aliases *out, struct mc_err *err);
int aliases_read_file(void *arg, const char *path, struct buf *out, struct mc_err *err);

#endif
