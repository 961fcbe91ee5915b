/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * RFC 5322 address lists and the envelope-address check.
 *
 * The parser is a one-token-lookahead lexer under a loop, never recursive:
 * comments nest by counting, so hostile input costs linear time and constant
 * stack.  The text is read only up to len; it need not be NUL-terminated.
 * Folding (CRLF or LF before white space) is dropped as the tokens are
 * copied out; any other control character is an error, so nothing that could
 * end an SMTP command line ever reaches an address.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "buf.h"
#include "util.h"

/* How much of the offending text an error message shows. */
#define QUOTE_MAX 72

enum tok_kind { TK_END, TK_ATOM, TK_QSTR, TK_DLIT, TK_SPECIAL };

struct tok {
    enum tok_kind kind;
    char ch;           /* TK_SPECIAL: which one */
    size_t start, end; /* source bytes [start, end) */
    bool space;        /* white space or a comment came before it */
};

struct parser {
    const char *s;
    size_t len;
    size_t pos;
    size_t elem;  /* start of the current list element, for messages */
    size_t angle; /* where the current '<' is */
    struct tok ahead;
    bool have_ahead;
    struct mc_err *err;
    struct buf display, local, addr;
};

/* --- messages ------------------------------------------------------------ */

/*
 * Copy s[0..len) into out for an error message: control characters escaped
 * so the message stays one line, cut with "..." past QUOTE_MAX characters.
 */
static void quote_text(char *out, size_t outsz, const char *s, size_t len, bool lead)
{
    size_t o = 0, i;

    if (lead)
        o += (size_t)snprintf(out, outsz, "...");
    for (i = 0; i < len && o < QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '\r' || c == '\n' || c == '\t') {
            out[o++] = '\\';
            out[o++] = c == '\r' ? 'r' : c == '\n' ? 'n' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    if (i < len) {
        /* Do not leave half a UTF-8 sequence before the ellipsis. */
        while (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0x80)
            o--;
        if (o > 0 && (unsigned char)out[o - 1] >= 0xc0)
            o--;
        o += (size_t)snprintf(out + o, outsz - o, "...");
    }
    out[o] = '\0';
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * "<what> in address list "<element>"".  The quote starts at the element
 * being parsed; when the trouble is far into it, at a window around `at`.
 */
static int perr(struct parser *p, size_t at, const char *what)
{
    char q[QUOTE_MAX + 16];
    size_t first = p->elem, start, end = p->len;

    if (first > end)
        first = end;
    /* Drop trailing white space and a final line end, but not a lone CR. */
    while (end > first && (p->s[end - 1] == ' ' || p->s[end - 1] == '\t'))
        end--;
    if (end > first && p->s[end - 1] == '\n') {
        end--;
        if (end > first && p->s[end - 1] == '\r')
            end--;
    }
    while (first < end && first < at && (is_blank(p->s[first]) || p->s[first] == ','))
        first++;
    if (at > end)
        at = end;
    start = first;
    if (at > first + QUOTE_MAX / 2) {
        start = at - QUOTE_MAX / 4;
        /* Begin the window at a word when one starts nearby. */
        for (size_t k = start; k < at && k < start + 12; k++) {
            if (p->s[k - 1] == ' ') {
                start = k;
                break;
            }
        }
    }
    quote_text(q, sizeof q, p->s + start, end - start, start > first);
    return mc_err_set(p->err, MC_DATAERR, "%s in address list \"%s\"", what, q);
}

static int oom(struct parser *p)
{
    return mc_err_set(p->err, MC_OSERR, "out of memory parsing an address list");
}

/* --- lexer --------------------------------------------------------------- */

static bool is_atext(unsigned char c)
{
    /* Bytes >= 0x80 are UTF-8 (RFC 6532); they are atext like letters. */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c >= 0x80 || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool is_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/*
 * Length of the line break at i when it is folding (followed by white space)
 * or ends the text, else 0: any other CR or LF is a control character.
 */
static size_t fold_at(const struct parser *p, size_t i)
{
    size_t n = 0;

    if (p->s[i] == '\n')
        n = 1;
    else if (p->s[i] == '\r' && i + 1 < p->len && p->s[i + 1] == '\n')
        n = 2;
    if (n == 0)
        return 0;
    if (i + n == p->len || p->s[i + n] == ' ' || p->s[i + n] == '\t')
        return n;
    return 0;
}

/*
 * Step over one character inside a quoted string, comment or domain literal:
 * a fold, a quoted pair (when allowed) or one ordinary character.
 */
static int step_inner(struct parser *p, size_t open, bool pairs, const char *unterminated)
{
    size_t n = fold_at(p, p->pos);
    unsigned char c = (unsigned char)p->s[p->pos];

    if (n > 0) {
        p->pos += n;
        return 0;
    }
    if (is_ctl(c))
        return perr(p, p->pos, "control character");
    if (c == '\\' && pairs) {
        if (p->pos + 1 >= p->len)
            return perr(p, open, unterminated);
        if (is_ctl((unsigned char)p->s[p->pos + 1]))
            return perr(p, p->pos, "control character");
        p->pos++;
    }
    p->pos++;
    return 0;
}

/* Comments nest; a counter instead of recursion keeps the stack flat. */
static int skip_comment(struct parser *p)
{
    size_t open = p->pos, depth = 0;

    for (;;) {
        if (p->pos >= p->len)
            return perr(p, open, "unterminated comment");
        if (p->s[p->pos] == '(') {
            depth++;
        } else if (p->s[p->pos] == ')') {
            if (--depth == 0) {
                p->pos++;
                return 0;
            }
        }
        if (step_inner(p, open, true, "unterminated comment") < 0)
            return -1;
    }
}

/* Skip CFWS; *space tells whether there was any. */
static int skip_cfws(struct parser *p, bool *space)
{
    size_t n;

    *space = false;
    while (p->pos < p->len) {
        char c = p->s[p->pos];

        if (c == ' ' || c == '\t') {
            p->pos++;
        } else if ((n = fold_at(p, p->pos)) > 0) {
            p->pos += n;
        } else if (c == '(') {
            if (skip_comment(p) < 0)
                return -1;
        } else {
            return 0;
        }
        *space = true;
    }
    return 0;
}

/* A quoted string or domain literal: from the opener to its closer. */
static int lex_delimited(struct parser *p, char close, bool pairs, const char *unterminated)
{
    size_t open = p->pos++;

    for (;;) {
        if (p->pos >= p->len)
            return perr(p, open, unterminated);
        if (p->s[p->pos] == close) {
            p->pos++;
            return 0;
        }
        if (!pairs && strchr("[\\", p->s[p->pos]) != NULL)
            return perr(p, p->pos, "invalid character in domain literal");
        if (step_inner(p, open, pairs, unterminated) < 0)
            return -1;
    }
}

static int lex_raw(struct parser *p, struct tok *t)
{
    unsigned char c;

    if (skip_cfws(p, &t->space) < 0)
        return -1;
    t->start = p->pos;
    t->kind = TK_END;
    t->ch = '\0';
    if (p->pos < p->len) {
        c = (unsigned char)p->s[p->pos];
        if (is_atext(c)) {
            t->kind = TK_ATOM;
            while (p->pos < p->len && is_atext((unsigned char)p->s[p->pos]))
                p->pos++;
        } else if (c == '"') {
            t->kind = TK_QSTR;
            if (lex_delimited(p, '"', true, "unterminated quoted string") < 0)
                return -1;
        } else if (c == '[') {
            t->kind = TK_DLIT;
            if (lex_delimited(p, ']', false, "unterminated domain literal") < 0)
                return -1;
        } else if (c != '\0' && strchr("<>@,;:.", c) != NULL) {
            t->kind = TK_SPECIAL;
            t->ch = (char)c;
            p->pos++;
        } else if (c == ')' || c == ']') {
            return perr(p, p->pos, c == ')' ? "unbalanced ')'" : "unbalanced ']'");
        } else if (is_ctl(c)) {
            return perr(p, p->pos, "control character");
        } else {
            return perr(p, p->pos, "unexpected '\\'");
        }
    }
    t->end = p->pos;
    return 0;
}

static int lex_next(struct parser *p, struct tok *t)
{
    if (p->have_ahead) {
        *t = p->ahead;
        p->have_ahead = false;
        return 0;
    }
    return lex_raw(p, t);
}

static int lex_peek(struct parser *p, struct tok *t)
{
    if (!p->have_ahead) {
        if (lex_raw(p, &p->ahead) < 0)
            return -1;
        p->have_ahead = true;
    }
    *t = p->ahead;
    return 0;
}

/* Give back the token just taken with lex_next. */
static void lex_unget(struct parser *p, const struct tok *t)
{
    p->ahead = *t;
    p->have_ahead = true;
}

static bool is_special(const struct tok *t, char c)
{
    return t->kind == TK_SPECIAL && t->ch == c;
}

/* "unexpected '<'" for a token that has no place here. */
static int unexpected(struct parser *p, const struct tok *t, const char *where)
{
    const char *sp = where[0] ? " " : "";
    char what[64];

    if (t->kind == TK_END)
        snprintf(what, sizeof what, "unexpected end%s%s", sp, where);
    else if (t->kind == TK_SPECIAL || t->kind == TK_DLIT)
        snprintf(what, sizeof what, "unexpected '%c'%s%s", p->s[t->start], sp, where);
    else
        snprintf(what, sizeof what, "unexpected text%s%s", sp, where);
    return perr(p, t->start, what);
}

/* --- output -------------------------------------------------------------- */

/* Append a token as written, minus folding (and white space if drop_ws). */
static int emit(struct parser *p, struct buf *b, const struct tok *t, bool drop_ws)
{
    size_t i, run;

    for (i = t->start; i < t->end; i += run) {
        for (run = 0; i + run < t->end; run++) {
            char c = p->s[i + run];

            /* Inside a lexed token every CR and LF is part of a fold. */
            if (c == '\r' || c == '\n' || (drop_ws && (c == ' ' || c == '\t')))
                break;
        }
        if (run > 0 && buf_add(b, p->s + i, run) < 0)
            return oom(p);
        if (i + run < t->end)
            run++;
    }
    return 0;
}

/* --- parser -------------------------------------------------------------- */

/*
 * Collect a phrase (words and dots) starting with the current token *t.
 * It goes to the display name (words separated by one space where the text
 * had white space or a comment) and to p->local (CFWS dropped).  *local_ok
 * tells whether it is also a local part: word *("." word).  On return *t
 * holds the first token after the phrase.
 */
static int collect_phrase(struct parser *p, struct tok *t, bool *local_ok)
{
    bool want_word = true, ok = true, any = false;

    buf_reset(&p->display);
    buf_reset(&p->local);
    while (t->kind == TK_ATOM || t->kind == TK_QSTR || is_special(t, '.')) {
        bool dot = t->kind == TK_SPECIAL;

        /* A leading, trailing or doubled dot, or two words in a row, still
         * make a phrase (obs-phrase) but no local part. */
        if (dot == want_word)
            ok = false;
        want_word = dot;
        any = true;
        if (t->space && p->display.len > 0 && buf_addch(&p->display, ' ') < 0)
            return oom(p);
        if (emit(p, &p->display, t, false) < 0 || emit(p, &p->local, t, false) < 0)
            return -1;
        if (lex_next(p, t) < 0)
            return -1;
    }
    *local_ok = any && ok && !want_word;
    return 0;
}

/* The domain after '@': a dot-atom (CFWS allowed around dots) or a literal. */
static int parse_domain(struct parser *p, struct buf *out)
{
    struct tok t;

    if (lex_next(p, &t) < 0)
        return -1;
    if (t.kind == TK_DLIT)
        return out ? emit(p, out, &t, true) : 0;
    if (t.kind != TK_ATOM)
        return perr(p, t.start, "missing domain after '@'");
    if (out && emit(p, out, &t, false) < 0)
        return -1;
    for (;;) {
        if (lex_peek(p, &t) < 0)
            return -1;
        if (!is_special(&t, '.'))
            return 0;
        if (lex_next(p, &t) < 0 || lex_next(p, &t) < 0)
            return -1;
        if (t.kind != TK_ATOM)
            return perr(p, t.start, "empty label in domain");
        if (out && (buf_addch(out, '.') < 0 || emit(p, out, &t, false) < 0))
            return oom(p);
    }
}

/*
 * Finish an addr-spec whose local part is in p->local and whose next token
 * is *t: "@domain", or nothing for a bare local name (addr_check refuses it
 * until the caller qualifies it).  The result goes to p->addr.
 */
static int finish_addr(struct parser *p, struct tok *t, bool local_ok, const char *noat)
{
    buf_reset(&p->addr);
    if (!is_special(t, '@')) {
        if (!local_ok)
            return p->local.len ? perr(p, t->start, noat) : unexpected(p, t, "");
        lex_unget(p, t);
        return buf_add(&p->addr, p->local.data, p->local.len) < 0 ? oom(p) : 0;
    }
    if (p->local.len == 0)
        return perr(p, t->start, "missing local part before '@'");
    if (!local_ok)
        return perr(p, t->start, "invalid local part");
    if (buf_add(&p->addr, p->local.data, p->local.len) < 0 || buf_addch(&p->addr, '@') < 0)
        return oom(p);
    return parse_domain(p, &p->addr);
}

/* Obsolete source route "@a,@b:" before the address: parsed and dropped. */
static int skip_route(struct parser *p, struct tok *t)
{
    for (;;) {
        if (is_special(t, ':'))
            return lex_next(p, t);
        if (is_special(t, '@')) {
            if (parse_domain(p, NULL) < 0)
                return -1;
        } else if (!is_special(t, ',')) {
            if (t->kind == TK_END)
                return perr(p, p->angle, "unbalanced '<'");
            if (is_special(t, '>'))
                return perr(p, t->start, "missing local part before '@'");
            return perr(p, t->start, "invalid source route");
        }
        if (lex_next(p, t) < 0)
            return -1;
    }
}

/* After '<': [route] addr-spec '>', or '>' alone for the null address. */
static int parse_angle(struct parser *p)
{
    struct tok t;
    bool local_ok;

    if (lex_next(p, &t) < 0)
        return -1;
    if (is_special(&t, '>')) {
        buf_reset(&p->addr);
        return 0;
    }
    if ((is_special(&t, '@') || is_special(&t, ',')) && skip_route(p, &t) < 0)
        return -1;
    if (t.kind == TK_END)
        return perr(p, p->angle, "unbalanced '<'");
    if (collect_phrase(p, &t, &local_ok) < 0)
        return -1;
    if (t.kind == TK_END)
        return perr(p, p->angle, "unbalanced '<'");
    if (finish_addr(p, &t, local_ok, "invalid address in '<...>'") < 0 || lex_next(p, &t) < 0)
        return -1;
    if (t.kind == TK_END)
        return perr(p, p->angle, "unbalanced '<'");
    if (!is_special(&t, '>'))
        return unexpected(p, &t, "in '<...>'");
    return 0;
}

/*
 * One list element starting with token *t: a mailbox (added to out) or the
 * start of a group.  Returns 0 for a mailbox, 1 for "name:", -1 on error.
 */
static int parse_element(struct parser *p, struct tok *t, bool in_group, struct addrlist *out)
{
    bool local_ok;
    char *display = NULL;

    if (collect_phrase(p, t, &local_ok) < 0)
        return -1;
    if (is_special(t, ':')) {
        if (in_group)
            return perr(p, t->start, "nested group");
        return 1;
    }
    if (is_special(t, '<')) {
        p->angle = t->start;
        if (p->display.len > 0)
            display = mc_strndup(p->display.data, p->display.len);
        if (parse_angle(p) < 0) {
            free(display);
            return -1;
        }
    } else if (is_special(t, '>')) {
        return perr(p, t->start, "unbalanced '>'");
    } else if (finish_addr(p, t, local_ok, "missing '@' or '<'") < 0) {
        return -1;
    }
    addrlist_add(out, p->addr.data, display);
    free(display);
    return 0;
}

/* What may follow a mailbox or a group: ',' (taken), ';' in a group, the end. */
static int end_element(struct parser *p, bool in_group, const char *after)
{
    struct tok t;
    char where[32];

    if (lex_peek(p, &t) < 0)
        return -1;
    if (t.kind == TK_END || (in_group && is_special(&t, ';')))
        return 0;
    if (is_special(&t, ','))
        return lex_next(p, &t);
    if (is_special(&t, '>'))
        return perr(p, t.start, "unbalanced '>'");
    if (t.kind == TK_ATOM || t.kind == TK_QSTR)
        snprintf(where, sizeof where, "missing ',' after %s", after);
    else
        snprintf(where, sizeof where, "unexpected '%c' after %s", p->s[t.start], after);
    return perr(p, t.start, where);
}

static int parse_list(struct parser *p, struct addrlist *out)
{
    bool in_group = false;
    size_t group = 0;
    struct tok t;
    int r;

    for (;;) {
        /* Quote from here should the element's first token be broken. */
        p->elem = p->have_ahead ? p->ahead.start : p->pos;
        if (lex_next(p, &t) < 0)
            return -1;
        p->elem = t.start;
        if (t.kind == TK_END)
            return 0; /* a group left open at the end is forgiven */
        if (is_special(&t, ','))
            continue; /* obsolete empty element */
        if (is_special(&t, ';')) {
            if (!in_group)
                return perr(p, t.start, "unexpected ';' outside a group");
            in_group = false;
            p->elem = group;
            if (end_element(p, false, "group") < 0)
                return -1;
            continue;
        }
        r = parse_element(p, &t, in_group, out);
        if (r < 0)
            return -1;
        if (r == 1) {
            in_group = true;
            group = p->elem;
        } else if (end_element(p, in_group, "address") < 0) {
            return -1;
        }
    }
}

int addr_parse_list(const char *text, size_t len, struct addrlist *out, struct mc_err *err)
{
    struct parser p = {.s = text, .len = len, .err = err};
    size_t n0 = out->n;
    int r;

    /* Nothing parsed can be longer than the text it came from. */
    buf_init(&p.display, len);
    buf_init(&p.local, len);
    buf_init(&p.addr, len);
    r = parse_list(&p, out);
    buf_release(&p.display);
    buf_release(&p.local);
    buf_release(&p.addr);
    if (r < 0) {
        /* All or nothing: drop what this call added. */
        while (out->n > n0) {
            out->n--;
            free(out->v[out->n].addr);
            free(out->v[out->n].display);
        }
        free(out->idx);
        out->idx = NULL;
        out->idx_cap = out->idx_n = 0;
    }
    return r;
}

/* --- envelope check ------------------------------------------------------ */

static int refuse(struct mc_err *err, const char *what, const char *a, size_t len, const char *why)
{
    char q[QUOTE_MAX + 16];

    quote_text(q, sizeof q, a, len, false);
    return mc_err_set(err, MC_DATAERR, "%s \"%s\" %s", what, q, why);
}

/* Length of the UTF-8 sequence at s (RFC 3629: no overlongs, surrogates), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    size_t n, i;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (n > len)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static bool utf8_valid(const char *s, size_t len)
{
    size_t i, n;

    for (i = 0; i < len; i += n)
        if ((n = utf8_seq((const unsigned char *)s + i, len - i)) == 0)
            return false;
    return true;
}

/*
 * Find the '@' that ends the local part (the first one outside quotes) and
 * check the local part's characters.  Returns NULL and sets *at (len when
 * there is no '@'), or the reason for refusing.
 */
static const char *scan_local(const char *a, size_t len, size_t *at)
{
    bool quoted = false;
    size_t i;

    for (i = 0; i < len; i++) {
        char c = a[i];

        if (quoted) {
            if (c == '\\')
                i++;
            else if (c == '"')
                quoted = false;
        } else if (c == '"') {
            quoted = true;
        } else if (c == '@') {
            break;
        } else if (c == '<' || c == '>') {
            return c == '<' ? "contains '<'" : "contains '>'";
        } else if (c == ' ' || c == '\t') {
            return "contains white space outside a quoted local part";
        }
    }
    if (quoted)
        return "has an unbalanced quote";
    *at = i;
    return NULL;
}

static const char *scan_domain(const char *d, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (d[i] == '<' || d[i] == '>')
            return d[i] == '<' ? "contains '<'" : "contains '>'";
        if (d[i] == ' ' || d[i] == '\t')
            return "contains white space outside a quoted local part";
        if (d[i] == '"')
            return "has a quote in its domain";
    }
    return NULL;
}

static bool has_ctl_n(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

int addr_check_n(const char *a, size_t len, const char *what, struct mc_err *err)
{
    const char *why;
    char lim[48];
    size_t at = 0;

    if (len == 0) {
        /* The null reverse-path is how bounces are sent; nobody receives at it. */
        if (what == NULL)
            return mc_err_set(err, MC_DATAERR, "empty address");
        if (strcmp(what, "sender") == 0)
            return 0;
        return mc_err_set(err, MC_DATAERR, "empty %s address", what);
    }
    if (what == NULL)
        what = "address";
    if (has_ctl_n(a, len))
        return refuse(err, what, a, len, "contains a control character");
    if (a[0] == '-')
        return refuse(err, what, a, len, "starts with '-'");
    if (!utf8_valid(a, len))
        return refuse(err, what, a, len, "is not valid utf-8");
    if (len > ADDR_MAX) {
        snprintf(lim, sizeof lim, "is longer than %d octets", ADDR_MAX);
        return refuse(err, what, a, len, lim);
    }
    why = scan_local(a, len, &at);
    if (why == NULL && at < len)
        why = scan_domain(a + at + 1, len - at - 1);
    if (why == NULL && at == 0)
        why = "has no local part";
    if (why == NULL && at + 1 >= len)
        why = "has no domain";
    if (why == NULL && at > ADDR_LOCAL_MAX) {
        snprintf(lim, sizeof lim, "has a local part longer than %d octets", ADDR_LOCAL_MAX);
        why = lim;
    }
    return why ? refuse(err, what, a, len, why) : 0;
}

int addr_check(const char *addr, const char *what, struct mc_err *err)
{
    return addr_check_n(addr, strlen(addr), what, err);
}

bool addr_is_utf8(const char *addr)
{
    for (; *addr; addr++)
        if ((unsigned char)*addr >= 0x80)
            return true;
    return false;
}

/* --- the list and its index ---------------------------------------------- */

/* Where the domain starts: after the first '@' outside quotes (len if none). */
static size_t domain_off(const char *a)
{
    bool quoted = false;
    size_t i;

    for (i = 0; a[i]; i++) {
        if (quoted && a[i] == '\\' && a[i + 1])
            i++;
        else if (a[i] == '"')
            quoted = !quoted;
        else if (a[i] == '@' && !quoted)
            return i + 1;
    }
    return i;
}

static unsigned char lower(unsigned char c)
{
    /* ASCII only: the result must not depend on the locale. */
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Local parts are case-sensitive (RFC 5321 section 2.4), domains are not. */
static bool addr_same(const char *a, const char *b)
{
    size_t da = domain_off(a), db = domain_off(b), i;

    if (da != db || memcmp(a, b, da) != 0)
        return false;
    for (i = da; a[i] && b[i]; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return a[i] == b[i];
}

static uint64_t addr_hash(const char *a)
{
    size_t d = domain_off(a), i;
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */

    for (i = 0; a[i]; i++) {
        h ^= i < d ? (unsigned char)a[i] : lower((unsigned char)a[i]);
        h *= 0x100000001b3u;
    }
    /* Mix the high bits down: the table uses the low ones. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    return h;
}

/* Slot of addr in the index: the one holding it, or the empty one to use. */
static size_t idx_slot(const struct addrlist *l, const char *addr)
{
    size_t mask = l->idx_cap - 1, i = (size_t)addr_hash(addr) & mask;

    /* Slots hold position + 1, 0 is empty; the table is never full. */
    while (l->idx[i] != 0) {
        size_t k = l->idx[i] - 1;

        if (k < l->n && addr_same(l->v[k].addr, addr))
            break;
        i = (i + 1) & mask;
    }
    return i;
}

/* Make the index cover all of v with room to spare (load at most 1/2). */
static void idx_sync(struct addrlist *l)
{
    size_t want = 16;

    if (l->idx != NULL && l->idx_n == l->n && (l->n + 1) * 2 <= l->idx_cap)
        return;
    while (want < (l->n + 1) * 2)
        want *= 2;
    free(l->idx);
    l->idx = mc_calloc(want, sizeof *l->idx);
    l->idx_cap = want;
    for (l->idx_n = 0; l->idx_n < l->n; l->idx_n++)
        l->idx[idx_slot(l, l->v[l->idx_n].addr)] = l->idx_n + 1;
}

bool addrlist_has(const struct addrlist *l, const char *addr)
{
    if (l->idx != NULL && l->idx_n == l->n)
        return l->idx[idx_slot(l, addr)] != 0;
    for (size_t i = 0; i < l->n; i++)
        if (addr_same(l->v[i].addr, addr))
            return true;
    return false;
}

void addrlist_add(struct addrlist *l, const char *addr, const char *display)
{
    size_t slot;

    idx_sync(l);
    slot = idx_slot(l, addr);
    if (l->idx[slot] != 0)
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = mc_reallocarray(l->v, l->cap, sizeof *l->v);
    }
    l->v[l->n].addr = mc_strdup(addr);
    l->v[l->n].display = display ? mc_strdup(display) : NULL;
    l->n++;
    l->idx[slot] = l->n;
    l->idx_n = l->n;
}

void addrlist_free(struct addrlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].addr);
        free(l->v[i].display);
    }
    free(l->v);
    free(l->idx);
    memset(l, 0, sizeof *l);
}
