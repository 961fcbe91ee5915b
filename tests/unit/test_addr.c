/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Unit tests for addr: address-list parsing, deduplication and the
 * envelope-address check.  Every parse runs on an exact-size copy of the
 * text with no NUL after it, so a read past len shows up under ASan.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "addr.h"
#include "buf.h"
#include "err.h"

struct want {
    const char *addr;
    const char *display; /* NULL: no display name */
};

/* Parse len bytes of text from a buffer that ends exactly there. */
static int parse_n(const char *text, size_t len, struct addrlist *l, struct mc_err *err)
{
    char *copy;
    int r;

    if (text == NULL)
        return addr_parse_list(NULL, 0, l, err);
    copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    r = addr_parse_list(copy, len, l, err);
    free(copy);
    return r;
}

static void check_list(const struct addrlist *l, const struct want *w, size_t n)
{
    assert_int_equal(l->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(l->v[i].addr, w[i].addr);
        if (w[i].display == NULL)
            assert_null(l->v[i].display);
        else
            assert_string_equal(l->v[i].display, w[i].display);
    }
}

static void ok_n(const char *text, size_t len, const struct want *w, size_t n)
{
    struct addrlist l = {0};
    struct mc_err err = {0};

    if (parse_n(text, len, &l, &err) != 0)
        fail_msg("parsing \"%s\": %s", text, err.msg);
    check_list(&l, w, n);
    addrlist_free(&l);
}

#define PARSE_OK(text, ...)                                                                        \
    do {                                                                                           \
        const struct want w_[] = {__VA_ARGS__};                                                    \
        ok_n((text), strlen(text), w_, sizeof w_ / sizeof w_[0]);                                  \
    } while (0)

#define PARSE_NONE(text) ok_n((text), strlen(text), NULL, 0)

/* The parse fails with MC_DATAERR and exactly this message. */
static void err_n(const char *text, size_t len, const char *msg)
{
    struct addrlist l = {0};
    struct mc_err err = {0};

    assert_int_equal(parse_n(text, len, &l, &err), -1);
    assert_int_equal(err.cls, MC_DATAERR);
    assert_string_equal(err.msg, msg);
    assert_null(strchr(err.msg, '\n'));
    assert_int_equal(l.n, 0);
    addrlist_free(&l);
}

#define PARSE_ERR(text, msg) err_n((text), strlen(text), (msg))

static void check_ok(const char *addr, const char *what)
{
    struct mc_err err = {0};

    if (addr_check(addr, what, &err) != 0)
        fail_msg("checking \"%s\": %s", addr, err.msg);
}

static void check_err_n(const char *addr, size_t len, const char *what, const char *msg)
{
    struct mc_err err = {0};

    assert_int_equal(addr_check_n(addr, len, what, &err), -1);
    assert_int_equal(err.cls, MC_DATAERR);
    assert_string_equal(err.msg, msg);
}

static void check_err(const char *addr, const char *what, const char *msg)
{
    struct mc_err err = {0};

    assert_int_equal(addr_check(addr, what, &err), -1);
    assert_int_equal(err.cls, MC_DATAERR);
    assert_string_equal(err.msg, msg);
}

/* --- mailboxes ------------------------------------------------------------ */

static void test_plain_addr_spec(void **state)
{
    PARSE_OK("a@b", {"a@b", NULL});
    PARSE_OK("  user.name+tag@example.org  ", {"user.name+tag@example.org", NULL});
}

static void test_name_addr(void **state)
{
    PARSE_OK("Name <a@b>", {"a@b", "Name"});
    PARSE_OK("John  Q.  Public <jqp@example.org>", {"jqp@example.org", "John Q. Public"});
    PARSE_OK("<a@b>", {"a@b", NULL});
}

static void test_quoted_display(void **state)
{
    PARSE_OK("\"Quoted, Name\" <a@b>, c@d", {"a@b", "\"Quoted, Name\""}, {"c@d", NULL});
    PARSE_OK("\"Doe, \\\"JD\\\" John\" <j@d>", {"j@d", "\"Doe, \\\"JD\\\" John\""});
}

static void test_list_of_mailboxes(void **state)
{
    PARSE_OK("a@b, Name <c@d>,e@f", {"a@b", NULL}, {"c@d", "Name"}, {"e@f", NULL});
}

static void test_encoded_word_display(void **state)
{
    PARSE_OK("=?UTF-8?Q?J=C3=B6rg?= =?UTF-8?B?U2NobWlkdA==?= <j@example.de>",
             {"j@example.de", "=?UTF-8?Q?J=C3=B6rg?= =?UTF-8?B?U2NobWlkdA==?="});
}

static void test_null_address(void **state)
{
    PARSE_OK("<>", {"", NULL});
    PARSE_OK("Mailer Daemon <>", {"", "Mailer Daemon"});
}

static void test_bare_local_name(void **state)
{
    /* Kept for addr_check to refuse (or a later qualify_domain to complete). */
    PARSE_OK("root", {"root", NULL});
    PARSE_OK("root, Admin <postmaster>", {"root", NULL}, {"postmaster", "Admin"});
}

/* --- groups ------------------------------------------------------------------ */

static void test_group(void **state)
{
    PARSE_OK("team: a@b, Carl <c@d>;", {"a@b", NULL}, {"c@d", "Carl"});
    PARSE_OK("x@y, team: a@b;, z@w", {"x@y", NULL}, {"a@b", NULL}, {"z@w", NULL});
    PARSE_OK("\"The Team\" (ours): a@b ; ", {"a@b", NULL});
}

static void test_empty_group(void **state)
{
    PARSE_NONE("undisclosed-recipients:;");
    PARSE_NONE("undisclosed-recipients: ;, other: ;");
    PARSE_OK("a: ;, b@c", {"b@c", NULL});
}

static void test_group_left_open(void **state)
{
    /* The final ';' is often forgotten; nothing is ambiguous without it. */
    PARSE_OK("team: a@b, c@d", {"a@b", NULL}, {"c@d", NULL});
}

static void test_group_errors(void **state)
{
    PARSE_ERR("a: b: c@d;;", "nested group in address list \"b: c@d;;\"");
    PARSE_ERR("a@b;", "unexpected ';' after address in address list \"a@b;\"");
    PARSE_ERR(";", "unexpected ';' outside a group in address list \";\"");
    PARSE_ERR("g: a@b; c@d", "missing ',' after group in address list \"g: a@b; c@d\"");
}

/* --- comments ---------------------------------------------------------------- */

static void test_comments_everywhere(void **state)
{
    PARSE_OK("(c0)a(c1).(c2)b(c3)@(c4)x(c5).(c6)y(c7)", {"a.b@x.y", NULL});
    PARSE_OK("Name (nick) <(r)a@b(s)> (t), (only a comment)", {"a@b", "Name"});
    PARSE_OK("a@b (Alice Example)", {"a@b", NULL});
}

static void test_nested_comments_and_pairs(void **state)
{
    PARSE_OK("a@b (outer (inner (deep)) \\) \\( \\\\ still comment)", {"a@b", NULL});
    PARSE_OK("Bob (\\(x) <b@c>", {"b@c", "Bob"});
}

static void test_deep_comments(void **state)
{
    size_t depth = 200000, n = 2 * depth + 3;
    char *s = malloc(n);
    char msg[160];

    assert_non_null(s);
    memcpy(s, "a@b", 3);
    memset(s + 3, '(', depth);
    memset(s + 3 + depth, ')', depth);
    ok_n(s, n, (const struct want[]){{"a@b", NULL}}, 1);
    /* One ')' short: unterminated, found without recursion. */
    snprintf(msg, sizeof msg, "unterminated comment in address list \"a@b%.69s...\"", s + 3);
    err_n(s, n - 1, msg);
    free(s);
}

static void test_comment_errors(void **state)
{
    PARSE_ERR("a@b (open", "unterminated comment in address list \"a@b (open\"");
    PARSE_ERR("a@b (x \\", "unterminated comment in address list \"a@b (x \\\"");
    PARSE_ERR("a@b)", "unbalanced ')' in address list \"a@b)\"");
}

/* --- local parts and domains ----------------------------------------------------- */

static void test_quoted_local_part(void **state)
{
    PARSE_OK("\"a b\"@example.org", {"\"a b\"@example.org", NULL});
    PARSE_OK("X <\"a\\\"@q\"@example.org>", {"\"a\\\"@q\"@example.org", "X"});
    PARSE_OK("\"john\".\"smith\"@x", {"\"john\".\"smith\"@x", NULL});
}

static void test_obs_local_part(void **state)
{
    PARSE_OK("a . b@c", {"a.b@c", NULL});
    PARSE_OK("first . \"mid dle\" . last @ example . org",
             {"first.\"mid dle\".last@example.org", NULL});
}

static void test_domain_literal(void **state)
{
    PARSE_OK("a@[192.0.2.1]", {"a@[192.0.2.1]", NULL});
    PARSE_OK("V6 <a@[IPv6:2001:db8::1]>", {"a@[IPv6:2001:db8::1]", "V6"});
    PARSE_OK("a@[ 192.0.2.1 ]", {"a@[192.0.2.1]", NULL});
    PARSE_ERR("a@[192.0.2.1", "unterminated domain literal in address list \"a@[192.0.2.1\"");
    PARSE_ERR("a@[1\\.2]", "invalid character in domain literal in address list \"a@[1\\.2]\"");
    PARSE_ERR("a@b]", "unbalanced ']' in address list \"a@b]\"");
}

static void test_dot_errors(void **state)
{
    PARSE_ERR(".a@b", "invalid local part in address list \".a@b\"");
    PARSE_ERR("a..b@c", "invalid local part in address list \"a..b@c\"");
    PARSE_ERR("a.@c", "invalid local part in address list \"a.@c\"");
    PARSE_ERR("a@b.", "empty label in domain in address list \"a@b.\"");
    PARSE_ERR("a@b..c", "empty label in domain in address list \"a@b..c\"");
}

static void test_utf8(void **state)
{
    PARSE_OK("Jörg <jörg@bücher.example>", {"jörg@bücher.example", "Jörg"});
    PARSE_OK("\"δοκιμή\"@παράδειγμα.δοκιμή", {"\"δοκιμή\"@παράδειγμα.δοκιμή", NULL});
    assert_true(addr_is_utf8("jörg@example.org"));
    assert_true(addr_is_utf8("a@bücher.example"));
    assert_false(addr_is_utf8("a@b"));
    assert_false(addr_is_utf8(""));
    check_ok("jörg@bücher.example", "recipient");
}

/* --- folding and line ends --------------------------------------------------------- */

static void test_folding(void **state)
{
    PARSE_OK("a@b,\r\n c@d,\n\te@f", {"a@b", NULL}, {"c@d", NULL}, {"e@f", NULL});
    PARSE_OK("Long\r\n Name <a@b>", {"a@b", "Long Name"});
    PARSE_OK("\"folded\r\n quoted\"@x", {"\"folded quoted\"@x", NULL});
    PARSE_OK("a@b (folded\r\n comment)", {"a@b", NULL});
    PARSE_OK("a@\r\n b", {"a@b", NULL});
}

static void test_trailing_line_end(void **state)
{
    PARSE_OK("a@b\r\n", {"a@b", NULL});
    PARSE_OK("a@b\n", {"a@b", NULL});
}

static void test_bad_line_breaks(void **state)
{
    PARSE_ERR("a@b,\r\nc@d", "control character in address list \"\\r\\nc@d\"");
    PARSE_ERR("a@b,\nRCPT TO:<x@y>", "control character in address list \"\\nRCPT TO:<x@y>\"");
    PARSE_ERR("a\r@b", "control character in address list \"a\\r@b\"");
    PARSE_ERR("\"a\rb\"@c", "control character in address list \"\"a\\rb\"@c\"");
    PARSE_ERR("a@b (x\ry)", "control character in address list \"a@b (x\\ry)\"");
}

static void test_control_characters(void **state)
{
    err_n("a\0@b", 4, "control character in address list \"a\\x00@b\"");
    PARSE_ERR("a\x01@b", "control character in address list \"a\\x01@b\"");
    PARSE_ERR("a\x7f@b", "control character in address list \"a\\x7f@b\"");
    PARSE_ERR("\"a\\\x01\"@b", "control character in address list \"\"a\\\\x01\"@b\"");
    /* A tab is white space, not a control character. */
    PARSE_OK("\ta@b\t", {"a@b", NULL});
}

/* --- obsolete forms and empty elements -------------------------------------------------- */

static void test_route_address(void **state)
{
    PARSE_OK("<@route,@r2:a@b>", {"a@b", NULL});
    PARSE_OK("Name <@r1 , ,@[192.0.2.1]:a@b>", {"a@b", "Name"});
    PARSE_OK("<,@r:a@b>", {"a@b", NULL});
    PARSE_ERR("<@r1,r2:a@b>", "invalid source route in address list \"<@r1,r2:a@b>\"");
    PARSE_ERR("<@r1", "unbalanced '<' in address list \"<@r1\"");
}

static void test_empty_elements(void **state)
{
    PARSE_OK("a@b,,c@d", {"a@b", NULL}, {"c@d", NULL});
    PARSE_OK(", ,a@b, ,", {"a@b", NULL});
    PARSE_OK("g: ,a@b,,;", {"a@b", NULL});
    PARSE_NONE("");
    PARSE_NONE("   \r\n ");
    PARSE_NONE(",");
    PARSE_NONE("(just a comment)");
}

/* --- parse errors ------------------------------------------------------------------ */

static void test_unbalanced_angle(void **state)
{
    PARSE_ERR("Foo <a@b", "unbalanced '<' in address list \"Foo <a@b\"");
    PARSE_ERR("x@y, Foo <a@b\r\n", "unbalanced '<' in address list \"Foo <a@b\"");
    PARSE_ERR("Foo <", "unbalanced '<' in address list \"Foo <\"");
    PARSE_ERR("a@b>", "unbalanced '>' in address list \"a@b>\"");
    PARSE_ERR("x>", "unbalanced '>' in address list \"x>\"");
    PARSE_ERR("Foo <a@b> >", "unbalanced '>' in address list \"Foo <a@b> >\"");
}

static void test_angle_errors(void **state)
{
    PARSE_ERR("<<a@b>>", "unexpected '<' in address list \"<<a@b>>\"");
    PARSE_ERR("<a@b c>", "unexpected text in '<...>' in address list \"<a@b c>\"");
    PARSE_ERR("<a@b, c@d>", "unexpected ',' in '<...>' in address list \"<a@b, c@d>\"");
    PARSE_ERR("<John Smith>", "invalid address in '<...>' in address list \"<John Smith>\"");
}

static void test_unterminated_quote(void **state)
{
    PARSE_ERR("\"Foo <a@b>", "unterminated quoted string in address list \"\"Foo <a@b>\"");
    PARSE_ERR("a@b, \"x\\\"", "unterminated quoted string in address list \"\"x\\\"\"");
}

static void test_missing_parts(void **state)
{
    PARSE_ERR("a@", "missing domain after '@' in address list \"a@\"");
    PARSE_ERR("a@,b@c", "missing domain after '@' in address list \"a@,b@c\"");
    PARSE_ERR("@b", "missing local part before '@' in address list \"@b\"");
    PARSE_ERR("Name <@b>", "missing local part before '@' in address list \"Name <@b>\"");
    PARSE_ERR("John Smith", "missing '@' or '<' in address list \"John Smith\"");
    PARSE_ERR("John Smith@x", "invalid local part in address list \"John Smith@x\"");
}

static void test_missing_comma(void **state)
{
    PARSE_ERR("a@b c@d", "missing ',' after address in address list \"a@b c@d\"");
    PARSE_ERR("Name <a@b> trailing",
              "missing ',' after address in address list \"Name <a@b> trailing\"");
    PARSE_ERR("a@b@c", "unexpected '@' after address in address list \"a@b@c\"");
    PARSE_ERR("a@b\\", "unexpected '\\' in address list \"a@b\\\"");
    PARSE_ERR("a [1.2.3.4]", "unexpected '[' after address in address list \"a [1.2.3.4]\"");
}

static void test_long_error_is_shortened(void **state)
{
    struct buf b;

    buf_init(&b, BUF_NOLIMIT);
    assert_int_equal(buf_addstr(&b, "Someone With A Very Long Display Name Indeed Really"), 0);
    assert_int_equal(buf_addstr(&b, " Quite Long And Then Some <a@b"), 0);
    PARSE_ERR(b.data, "unbalanced '<' in address list \"...And Then Some <a@b\"");
    buf_reset(&b);
    for (int i = 0; i < 50; i++)
        assert_int_equal(buf_addstr(&b, "word "), 0);
    assert_int_equal(buf_addstr(&b, "\"open"), 0);
    PARSE_ERR(b.data, "unterminated quoted string in address list \"...word word word "
                      "\"open\"");
    buf_release(&b);
}

static void test_respects_len(void **state)
{
    /* Only the first len bytes count, whatever follows them in memory. */
    ok_n("a@b.c, x@y", 5, (const struct want[]){{"a@b.c", NULL}}, 1);
    err_n("Foo <a@b>", 8, "unbalanced '<' in address list \"Foo <a@b\"");
    err_n("\"ab\"@c", 3, "unterminated quoted string in address list \"\"ab\"");
    err_n("a@b (c)", 6, "unterminated comment in address list \"a@b (c\"");
    err_n("a@b\r\n", 4, "control character in address list \"a@b\\r\"");
    ok_n(NULL, 0, NULL, 0);
}

static void test_error_keeps_list(void **state)
{
    struct addrlist l = {0};
    struct mc_err err = {0};

    assert_int_equal(parse_n("x@y", 3, &l, &err), 0);
    assert_int_equal(parse_n("a@b, c@d, <e@f", 14, &l, &err), -1);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].addr, "x@y");
    /* The index was dropped with the rolled-back entries: a@b is new again. */
    assert_false(addrlist_has(&l, "a@b"));
    addrlist_add(&l, "a@b", NULL);
    addrlist_add(&l, "x@Y", NULL);
    assert_int_equal(l.n, 2);
    addrlist_free(&l);
}

/* --- deduplication -------------------------------------------------------------------- */

static void test_dedup(void **state)
{
    PARSE_OK("a@b, First <a@b>, A@b, a@B, a@EXAMPLE.org, a@example.ORG", {"a@b", NULL},
             {"A@b", NULL}, {"a@EXAMPLE.org", NULL});
    PARSE_OK("\"x@Y\"@z, \"x@y\"@Z", {"\"x@Y\"@z", NULL}, {"\"x@y\"@Z", NULL});
    PARSE_OK("\"x@y\"@z, \"x@y\"@Z", {"\"x@y\"@z", NULL});
    PARSE_OK("g: a@b;, a@b, Group2: A@B;", {"a@b", NULL}, {"A@B", NULL});
}

static void test_dedup_across_calls(void **state)
{
    struct addrlist l = {0};
    struct mc_err err = {0};

    addrlist_add(&l, "a@example.org", "A");
    assert_int_equal(parse_n("a@Example.ORG, b@x", 18, &l, &err), 0);
    assert_int_equal(parse_n("B@x, b@X", 8, &l, &err), 0);
    check_list(&l, (const struct want[]){{"a@example.org", "A"}, {"b@x", NULL}, {"B@x", NULL}}, 3);
    addrlist_free(&l);
    assert_null(l.v);
    assert_int_equal(l.n, 0);
}

static void test_addrlist_api(void **state)
{
    struct addrlist l = {0};
    char name[32];

    assert_false(addrlist_has(&l, "a@b"));
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "user%d@Example.org", i);
        addrlist_add(&l, name, i % 2 ? "Odd" : NULL);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "user%d@example.ORG", i);
        addrlist_add(&l, name, NULL);
        assert_true(addrlist_has(&l, name));
    }
    assert_int_equal(l.n, 1000);
    assert_string_equal(l.v[999].addr, "user999@Example.org");
    assert_string_equal(l.v[999].display, "Odd");
    assert_false(addrlist_has(&l, "User1@example.org"));
    assert_false(addrlist_has(&l, "user1000@example.org"));
    addrlist_free(&l);
}

static void test_large_list_is_fast(void **state)
{
    struct addrlist l = {0};
    struct mc_err err = {0};
    struct buf b;
    clock_t t0 = clock();

    buf_init(&b, BUF_NOLIMIT);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(buf_printf(&b, "user%d@example.org, User <USER%d@x>,", i % 50000, i), 0);
    assert_int_equal(parse_n(b.data, b.len, &l, &err), 0);
    assert_int_equal(l.n, 150000);
    /* Quadratic dedup would take minutes here; linear takes well under a second. */
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 10.0);
    addrlist_free(&l);
    buf_release(&b);
}

/* --- addr_check ------------------------------------------------------------------------ */

static void test_check_accepts(void **state)
{
    check_ok("a@b", "recipient");
    check_ok("user.name+tag@example.org", "recipient");
    check_ok("\"a b\"@example.org", "recipient");
    check_ok("\"<odd>\"@example.org", "recipient");
    check_ok("a@[192.0.2.1]", "sender");
    check_ok("a@b", NULL);
}

static void test_check_control_chars(void **state)
{
    check_err("a\r\nb@c", "recipient", "recipient \"a\\r\\nb@c\" contains a control character");
    check_err("a@b\r\nRCPT TO:<x@y>", "sender",
              "sender \"a@b\\r\\nRCPT TO:<x@y>\" contains a control character");
    check_err_n("a\0@b", 4, "recipient", "recipient \"a\\x00@b\" contains a control character");
    check_err("a\t@b", "recipient", "recipient \"a\\t@b\" contains a control character");
    check_err("a\x1b@b", "recipient", "recipient \"a\\x1b@b\" contains a control character");
    check_err("a\x7f@b", "recipient", "recipient \"a\\x7f@b\" contains a control character");
}

static void test_check_leading_dash(void **state)
{
    check_err("-oQ/tmp@x", "recipient", "recipient \"-oQ/tmp@x\" starts with '-'");
    check_err("-f", "sender", "sender \"-f\" starts with '-'");
}

static void test_check_angle_brackets(void **state)
{
    check_err("<a@b>", "recipient", "recipient \"<a@b>\" contains '<'");
    check_err("a@b>", "recipient", "recipient \"a@b>\" contains '>'");
    check_err("a>b@c", "recipient", "recipient \"a>b@c\" contains '>'");
}

static void test_check_quotes(void **state)
{
    check_err("\"a b@c", "recipient", "recipient \"\"a b@c\" has an unbalanced quote");
    check_err("\"a\\\"@c", "recipient", "recipient \"\"a\\\"@c\" has an unbalanced quote");
    check_err("a@\"b\"", "recipient", "recipient \"a@\"b\"\" has a quote in its domain");
}

static void test_check_white_space(void **state)
{
    check_err("a b@c", "recipient",
              "recipient \"a b@c\" contains white space outside a quoted local part");
    check_err("a@b c", "recipient",
              "recipient \"a@b c\" contains white space outside a quoted local part");
    check_err("a@[1.2.3.4 ]", "recipient",
              "recipient \"a@[1.2.3.4 ]\" contains white space outside a quoted local part");
}

static void test_check_missing_parts(void **state)
{
    check_err("root", "recipient", "recipient \"root\" has no domain");
    check_err("a@", "recipient", "recipient \"a@\" has no domain");
    check_err("@b", "recipient", "recipient \"@b\" has no local part");
    check_err("\"x@y\"", "recipient", "recipient \"\"x@y\"\" has no domain");
}

static void test_check_lengths(void **state)
{
    char a[400];
    size_t n;

    /* 64 + 1 + 189 = 254 octets: "<...>" is exactly the 256-octet path limit. */
    memset(a, 'l', 64);
    a[64] = '@';
    memset(a + 65, 'd', 189);
    a[254] = '\0';
    check_ok(a, "recipient");
    a[254] = 'd';
    a[255] = '\0';
    check_err(a, "recipient",
              "recipient \"llllllllllllllllllllllllllllllllllllllllllllllllllll"
              "llllllllllll@ddddddd...\" is longer than 254 octets");
    memset(a, 'l', 65);
    memcpy(a + 65, "@example.org", sizeof "@example.org");
    check_err(a, "recipient",
              "recipient \"llllllllllllllllllllllllllllllllllllllllllllllllllll"
              "lllllllllllll@exampl...\" has a local part longer than 64 octets");
    n = strlen(a);
    memmove(a, a + 1, n);
    check_ok(a, "recipient");
}

static void test_check_null_sender(void **state)
{
    check_ok("", "sender");
    check_err("", "recipient", "empty recipient address");
    check_err("", NULL, "empty address");
}

static void test_check_utf8(void **state)
{
    check_ok("δοκιμή@παράδειγμα.δοκιμή", "recipient");
    check_err("j\xf6rg@example.de", "recipient",
              "recipient \"j\xf6rg@example.de\" is not valid utf-8");
    check_err("a@\xc0\xaf", "recipient", "recipient \"a@\xc0\xaf\" is not valid utf-8");
    check_err("a@\xed\xa0\x80", "recipient", "recipient \"a@\xed\xa0\x80\" is not valid utf-8");
    check_err("a\xe2\x82@b", "recipient", "recipient \"a\xe2\x82@b\" is not valid utf-8");
}

static void test_check_parsed_addresses(void **state)
{
    struct addrlist l = {0};
    struct mc_err err = {0};
    const char *list = "Name <a@b>, \"q l\"@x, root, <@r:c@d>, <>";

    assert_int_equal(parse_n(list, strlen(list), &l, &err), 0);
    assert_int_equal(l.n, 5);
    check_ok(l.v[0].addr, "recipient");
    check_ok(l.v[1].addr, "recipient");
    check_err(l.v[2].addr, "recipient", "recipient \"root\" has no domain");
    check_ok(l.v[3].addr, "recipient");
    check_err(l.v[4].addr, "recipient", "empty recipient address");
    check_ok(l.v[4].addr, "sender");
    addrlist_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_addr_spec),
        cmocka_unit_test(test_name_addr),
        cmocka_unit_test(test_quoted_display),
        cmocka_unit_test(test_list_of_mailboxes),
        cmocka_unit_test(test_encoded_word_display),
        cmocka_unit_test(test_null_address),
        cmocka_unit_test(test_bare_local_name),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_empty_group),
        cmocka_unit_test(test_group_left_open),
        cmocka_unit_test(test_group_errors),
        cmocka_unit_test(test_comments_everywhere),
        cmocka_unit_test(test_nested_comments_and_pairs),
        cmocka_unit_test(test_deep_comments),
        cmocka_unit_test(test_comment_errors),
        cmocka_unit_test(test_quoted_local_part),
        cmocka_unit_test(test_obs_local_part),
        cmocka_unit_test(test_domain_literal),
        cmocka_unit_test(test_dot_errors),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_folding),
        cmocka_unit_test(test_trailing_line_end),
        cmocka_unit_test(test_bad_line_breaks),
        cmocka_unit_test(test_control_characters),
        cmocka_unit_test(test_route_address),
        cmocka_unit_test(test_empty_elements),
        cmocka_unit_test(test_unbalanced_angle),
        cmocka_unit_test(test_angle_errors),
        cmocka_unit_test(test_unterminated_quote),
        cmocka_unit_test(test_missing_parts),
        cmocka_unit_test(test_missing_comma),
        cmocka_unit_test(test_long_error_is_shortened),
        cmocka_unit_test(test_respects_len),
        cmocka_unit_test(test_error_keeps_list),
        cmocka_unit_test(test_dedup),
        cmocka_unit_test(test_dedup_across_calls),
        cmocka_unit_test(test_addrlist_api),
        cmocka_unit_test(test_large_list_is_fast),
        cmocka_unit_test(test_check_accepts),
        cmocka_unit_test(test_check_control_chars),
        cmocka_unit_test(test_check_leading_dash),
        cmocka_unit_test(test_check_angle_brackets),
        cmocka_unit_test(test_check_quotes),
        cmocka_unit_test(test_check_white_space),
        cmocka_unit_test(test_check_missing_parts),
        cmocka_unit_test(test_check_lengths),
        cmocka_unit_test(test_check_null_sender),
        cmocka_unit_test(test_check_utf8),
        cmocka_unit_test(test_check_parsed_addresses),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
