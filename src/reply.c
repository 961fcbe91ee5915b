/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * SMTP reply and EHLO capability parsing; see reply.h.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reply.h"

void reply_init(struct reply *r)
{
    r->code = 0;
    r->esc[0] = '\0';
    r->done = false;
    buf_init(&r->text, REPLY_MAX);
}

void reply_reset(struct reply *r)
{
    r->code = 0;
    r->esc[0] = '\0';
    r->done = false;
    buf_reset(&r->text);
}

void reply_release(struct reply *r)
{
    buf_release(&r->text);
}

/* "5.1.1 " at the start of text: class 2/4/5, subject and detail up to 3 digits each. */
static size_t parse_esc(const char *p, size_t len, char *out, size_t outlen)
{
    size_t i = 0, digits;

    if (len < 5 || (p[0] != '2' && p[0] != '4' && p[0] != '5') || p[1] != '.')
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        for (digits = 0; i < len && isdigit((unsigned char)p[i]) && digits < 3; i++)
            digits++;
        if (digits == 0)
            return 0;
        if (part == 0) {
            if (i >= len || p[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < len && p[i] != ' ')
        return 0;
    if (i >= outlen)
        return 0;
    memcpy(out, p, i);
    out[i] = '\0';
    return i < len ? i + 1 : i;
}

static int bad_line(struct mc_err *err, const char *what, const char *line, size_t len)
{
    char shown[80];
    size_t n = 0;

    for (size_t i = 0; i < len && n + 5 < sizeof shown; i++) {
        unsigned char ch = (unsigned char)line[i];
        if (ch >= 0x20 && ch < 0x7f)
            shown[n++] = (char)ch;
        else
            n += (size_t)snprintf(shown + n, sizeof shown - n, "\\x%02x", ch);
    }
    shown[n] = '\0';
    return mc_err_set(err, MC_PROTOCOL, "malformed reply from server (%s): \"%s%s\"", what, shown,
                      len > 60 ? "..." : "");
}

int reply_add_line(struct reply *r, const char *line, size_t len, struct mc_err *err)
{
    int code;

    if (r->done)
        return mc_err_set(err, MC_SOFTWARE, "reply line after the end of a reply");
    if (len < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
        !isdigit((unsigned char)line[2]) || line[0] < '2' || line[0] > '5')
        return bad_line(err, "no reply code", line, len);
    if (len > 3 && line[3] != ' ' && line[3] != '-')
        return bad_line(err, "no space or dash after the code", line, len);
    code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (r->code != 0 && code != r->code)
        return bad_line(err, "code changed within a multi-line reply", line, len);
    if (memchr(line, '\0', len) != NULL)
        return bad_line(err, "NUL byte", line, len);

    const char *text = len > 4 ? line + 4 : "";
    size_t tlen = len > 4 ? len - 4 : 0;
    if (r->code == 0) {
        r->code = code;
        parse_esc(text, tlen, r->esc, sizeof r->esc);
    } else if (buf_addch(&r->text, '\n') < 0) {
        return mc_err_set(err, MC_PROTOCOL, "server reply longer than %d bytes", REPLY_MAX);
    }
    if (buf_add(&r->text, text, tlen) < 0)
        return mc_err_set(err, MC_PROTOCOL, "server reply longer than %d bytes", REPLY_MAX);
    r->done = len == 3 || line[3] == ' ';
    return 0;
}

const char *reply_first_text(const struct reply *r, size_t *len)
{
    const char *t = r->text.data;
    const char *nl = strchr(t, '\n');
    size_t n = nl ? (size_t)(nl - t) : r->text.len;
    char esc[16];
    size_t skip = parse_esc(t, n, esc, sizeof esc);

    *len = n - skip;
    return t + skip;
}

void reply_summary(const struct reply *r, char *out, size_t outlen)
{
    size_t tlen, n;
    const char *t = reply_first_text(r, &tlen);

    n = (size_t)snprintf(out, outlen, "%d%s%s", r->code, r->esc[0] ? " " : "", r->esc);
    if (n >= outlen)
        return;
    if (tlen && n + 1 < outlen)
        out[n++] = ' ';
    for (size_t i = 0; i < tlen && n + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)t[i];
        out[n++] = ch >= 0x20 && ch != 0x7f ? (char)ch : '?';
    }
    out[n] = '\0';
}

static bool keyword(const char *line, size_t len, const char *kw, const char **args)
{
    size_t k = strlen(kw);

    if (len < k || strncasecmp(line, kw, k) != 0)
        return false;
    if (len > k && line[k] != ' ' && line[k] != '=')
        return false;
    *args = len > k ? line + k + 1 : line + len;
    return true;
}

/* Append the AUTH words, upper-cased, without duplicates from AUTH= lines. */
static void caps_add_auth(struct caps *c, const char *args, size_t len)
{
    size_t n = strlen(c->auth);

    for (size_t i = 0; i < len && n + 2 < sizeof c->auth; i++) {
        char ch = args[i];
        if (ch == ' ' && (n == 0 || c->auth[n - 1] == ' '))
            continue;
        c->auth[n++] = (char)toupper((unsigned char)ch);
    }
    if (n && c->auth[n - 1] != ' ' && n + 1 < sizeof c->auth)
        c->auth[n++] = ' ';
    c->auth[n] = '\0';
}

static void caps_line(struct caps *c, const char *line, size_t len)
{
    static const struct {
        const char *kw;
        unsigned flag;
    } simple[] = {
        {"PIPELINING", CAP_PIPELINING}, {"8BITMIME", CAP_8BITMIME},
        {"SMTPUTF8", CAP_SMTPUTF8},     {"DSN", CAP_DSN},
        {"ENHANCEDSTATUSCODES", CAP_ENHANCED}, {"CHUNKING", CAP_CHUNKING},
        {"STARTTLS", CAP_STARTTLS},     {"BINARYMIME", CAP_BINARYMIME},
    };
    const char *args;

    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        if (keyword(line, len, simple[i].kw, &args)) {
            c->flags |= simple[i].flag;
            return;
        }
    }
    if (keyword(line, len, "SIZE", &args)) {
        c->flags |= CAP_SIZE;
        c->size = strtoull(args, NULL, 10);
    } else if (keyword(line, len, "AUTH", &args)) {
        c->flags |= CAP_AUTH;
        caps_add_auth(c, args, (size_t)(line + len - args));
    }
}

void caps_parse(const struct reply *r, struct caps *c)
{
    const char *p = r->text.data;
    const char *nl;

    memset(c, 0, sizeof *c);
    nl = strchr(p, '\n');    /* the first line is the greeting text */
    while (nl != NULL) {
        p = nl + 1;
        nl = strchr(p, '\n');
        caps_line(c, p, nl ? (size_t)(nl - p) : strlen(p));
    }
    size_t n = strlen(c->auth);
    if (n && c->auth[n - 1] == ' ')
        c->auth[n - 1] = '\0';
}
