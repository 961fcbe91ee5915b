/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Aliases for local recipients; see aliases.h for the format and rules.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "aliases.h"

void aliases_free(struct aliases *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->v[i].name);
        strlist_free(&a->v[i].targets);
    }
    free(a->v);
    free(a->file);
    memset(a, 0, sizeof *a);
}

/* Leading blanks of a line of n octets (text need not be NUL-terminated). */
static size_t blanks(const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    return i;
}

static char *trim(const char *p, size_t n)
{
    while (n && isspace((unsigned char)*p)) {
        p++;
        n--;
    }
    while (n && isspace((unsigned char)p[n - 1]))
        n--;
    return mc_strndup(p, n);
}

/* Comma-separated items; commas inside quotes or angle brackets do not split. */
static void split_targets(const char *p, size_t n, struct strlist *out)
{
    size_t start = 0;
    bool quoted = false;
    int angle = 0;

    for (size_t i = 0; i <= n; i++) {
        char c = i < n ? p[i] : ',';
        if (c == '"' && (i == 0 || p[i - 1] != '\\'))
            quoted = !quoted;
        else if (!quoted && c == '<')
            angle++;
        else if (!quoted && c == '>' && angle > 0)
            angle--;
        if (c != ',' || quoted || angle > 0)
            continue;
        char *t = trim(p + start, i - start);
        size_t tl = strlen(t);
        if (tl >= 2 && t[0] == '<' && t[tl - 1] == '>') {
            memmove(t, t + 1, tl - 2);
            t[tl - 2] = '\0';
        }
        if (*t)
            strlist_add_owned(out, t);
        else
            free(t);
        start = i + 1;
    }
}

static int add_entry(struct aliases *a, const char *entry, size_t n, unsigned line,
                     const char *file, struct mc_err *err)
{
    const char *colon = memchr(entry, ':', n);
    char *name;

    if (colon == NULL)
        return mc_err_set(err, MC_CONFIG, "%s:%u: expected 'name: address, ...'", file, line);
    name = trim(entry, (size_t)(colon - entry));
    if (*name == '\0' || strpbrk(name, " \t@,\"") || mc_has_ctl(name)) {
        free(name);
        return mc_err_set(err, MC_CONFIG, "%s:%u: bad alias name", file, line);
    }
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    a->v = mc_reallocarray(a->v, a->n + 1, sizeof *a->v);
    memset(&a->v[a->n], 0, sizeof a->v[a->n]);
    a->v[a->n].name = name;
    a->v[a->n].line = line;
    split_targets(colon + 1, n - (size_t)(colon + 1 - entry), &a->v[a->n].targets);
    a->n++;
    return 0;
}

int aliases_parse(const char *text, size_t len, const char *file, struct aliases *out,
                  struct mc_err *err)
{
    struct buf entry;
    unsigned line = 0, entry_line = 0;
    size_t i = 0;
    int r = 0;

    memset(out, 0, sizeof *out);
    out->file = mc_strdup(file ? file : "aliases");
    buf_init(&entry, ALIASES_FILE_MAX);
    while (r == 0 && i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
        const char *p = text + i;
        line++;
        i += n + (nl != NULL);
        if (n && p[n - 1] == '\r')
            n--;
        if (memchr(p, '\0', n))
            r = mc_err_set(err, MC_CONFIG, "%s:%u: NUL byte", out->file, line);
        else if (blanks(p, n) == n || p[blanks(p, n)] == '#')
            continue;
        else if (p[0] == ' ' || p[0] == '\t') {
            if (entry.len == 0)
                r = mc_err_set(err, MC_CONFIG, "%s:%u: continuation line without an alias",
                               out->file, line);
            else if (buf_addch(&entry, ' ') < 0 || buf_add(&entry, p, n) < 0)
                r = mc_err_set(err, MC_CONFIG, "%s: too large", out->file);
        } else {
            if (entry.len)
                r = add_entry(out, entry.data, entry.len, entry_line, out->file, err);
            buf_reset(&entry);
            entry_line = line;
            if (r == 0 && buf_add(&entry, p, n) < 0)
                r = mc_err_set(err, MC_CONFIG, "%s: too large", out->file);
        }
    }
    if (r == 0 && entry.len)
        r = add_entry(out, entry.data, entry.len, entry_line, out->file, err);
    buf_release(&entry);
    if (r < 0)
        aliases_free(out);
    return r;
}

static const struct alias *lookup(const struct aliases *a, const char *name)
{
    /* The last definition wins, as a later line overrides an earlier one. */
    for (size_t i = a->n; i-- > 0;)
        if (mc_streq_ci(a->v[i].name, name))
            return &a->v[i];
    return NULL;
}

struct expand {
    const struct aliases *a;
    aliases_read_fn rd;
    void *arg;
    struct strlist path;     /* names being expanded, for loops */
    struct strlist done;     /* names fully expanded: their targets are in out already */
    unsigned includes;       /* :include: files being read, nested */
    struct strlist *out;
};

static int expand_name(struct expand *x, const char *name, struct mc_err *err);

static int expand_target(struct expand *x, const char *t, struct mc_err *err)
{
    if (strncasecmp(t, ":include:", 9) == 0) {
        struct buf b;
        struct strlist items = {0};
        const char *path = t + 9;
        int r;
        while (*path == ' ' || *path == '\t')
            path++;
        if (x->path.n + x->includes >= ALIASES_DEPTH)
            return mc_err_set(err, MC_CONFIG, "%s: aliases and includes nested deeper than %d "
                              "(a loop?) at ':include:%s'", x->a->file, ALIASES_DEPTH, path);
        x->includes++;
        buf_init(&b, ALIASES_FILE_MAX);
        r = x->rd ? x->rd(x->arg, path, &b, err)
                  : mc_err_set(err, MC_CONFIG, "':include:%s' cannot be read here", path);
        for (size_t i = 0; r == 0 && i < b.len;) {
            const char *nl = memchr(b.data + i, '\n', b.len - i);
            size_t n = nl ? (size_t)(nl - (b.data + i)) : b.len - i;
            const char *p = b.data + i;
            i += n + (nl != NULL);
            if (blanks(p, n) < n && p[blanks(p, n)] != '#')
                split_targets(p, n, &items);
        }
        buf_release(&b);
        for (size_t i = 0; r == 0 && i < items.n; i++)
            r = expand_target(x, items.v[i], err);
        strlist_free(&items);
        x->includes--;
        return r;
    }
    if (t[0] == '|' || t[0] == '/')
        return mc_err_set(err, MC_DATAERR, "alias target '%s': pipes and files are not "
                          "supported (mailcar delivers nothing locally)", t);
    if (strchr(t, '@')) {
        if (!strlist_has_ci(x->out, t))
            strlist_add(x->out, t);
        return 0;
    }
    return expand_name(x, t, err);
}

static int expand_name(struct expand *x, const char *name, struct mc_err *err)
{
    const struct alias *al;
    int r = 0;

    if (strlist_has_ci(&x->path, name) || (al = lookup(x->a, name)) == NULL) {
        /* Not an alias (or one being expanded): the caller qualifies it. */
        if (!strlist_has_ci(&x->path, name) && (al = lookup(x->a, "default")) != NULL &&
            !mc_streq_ci(name, "default"))
            goto expand;
        if (!strlist_has_ci(x->out, name))
            strlist_add(x->out, name);
        return 0;
    }
expand:
    /* A name reached again by another route adds nothing new; without this,
     * "a: b b", "b: c c", ... fans out exponentially. */
    if (strlist_has_ci(&x->done, name))
        return 0;
    if (x->path.n + x->includes >= ALIASES_DEPTH)
        return mc_err_set(err, MC_CONFIG, "%s:%u: aliases nested deeper than %d (a loop?) at "
                          "'%s'", x->a->file, al->line, ALIASES_DEPTH, name);
    strlist_add(&x->path, name);
    for (size_t i = 0; r == 0 && i < al->targets.n; i++)
        r = expand_target(x, al->targets.v[i], err);
    free(x->path.v[--x->path.n]);
    if (r == 0)
        strlist_add(&x->done, name);
    return r;
}

int aliases_expand(const struct aliases *a, const char *rcpt, aliases_read_fn rd, void *arg,
                   struct strlist *out, struct mc_err *err)
{
    struct expand x = {.a = a, .rd = rd, .arg = arg, .out = out};
    int r;

    if (strchr(rcpt, '@')) {
        if (!strlist_has_ci(out, rcpt))
            strlist_add(out, rcpt);
        return 0;
    }
    r = expand_name(&x, rcpt, err);
    strlist_free(&x.path);
    strlist_free(&x.done);
    return r;
}

int aliases_read_file(void *arg, const char *path, struct buf *out, struct mc_err *err)
{
    char chunk[8192];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    (void)arg;
    if (fd < 0)
        return mc_err_set(err, MC_CONFIG, "cannot open aliases file '%s': %s", path,
                          strerror(errno));
    while ((n = read(fd, chunk, sizeof chunk)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || buf_add(out, chunk, (size_t)n) < 0) {
            close(fd);
            return mc_err_set(err, MC_CONFIG, "cannot read aliases file '%s': %s", path,
                              n < 0 ? strerror(errno) : "too large");
        }
    }
    close(fd);
    return 0;
}

int aliases_load(const char *path, struct aliases *out, struct mc_err *err)
{
    struct buf b;
    int r;

    memset(out, 0, sizeof *out);
    buf_init(&b, ALIASES_FILE_MAX);
    r = aliases_read_file(NULL, path, &b, err);
    if (r == 0)
        r = aliases_parse(b.data, b.len, path, out, err);
    buf_release(&b);
    return r;
}
