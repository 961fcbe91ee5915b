/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Aliases: the /etc/aliases syntax (comments, continuation lines, quoted
 * commas), case-insensitive names, recursion, loops, :include:, default:,
 * stable order without duplicates, refused pipes and files.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aliases.h"

static const char text[] =
    "# system aliases\n"
    "postmaster: root\n"
    "Root: ops@example.org, admin@example.org,\n"
    "  backup@example.org\n"
    "\n"
    "webmaster:\twww, ops@example.org\n"
    "www: \"Web, Team\"@example.org, <web2@example.org>\n"
    "self: self, me@example.org\n"
    "loop1: loop2\n"
    "loop2: loop1\n"
    "team: :include:/team\n"
    "pipe: |/usr/bin/proc\n";

/* Serves ":include:/team" from memory. */
static int fake_read(void *arg, const char *path, struct buf *out, struct mc_err *err)
{
    (void)arg;
    if (strcmp(path, "/team") != 0)
        return mc_err_set(err, MC_CONFIG, "no file '%s'", path);
    buf_addstr(out, "# the team\nalice@example.org, bob@example.org\npostmaster\n");
    return 0;
}

static char *expand(const struct aliases *a, const char *who, int want)
{
    struct strlist out = {0};
    struct mc_err err;
    struct buf b;

    assert_int_equal(aliases_expand(a, who, fake_read, NULL, &out, &err), want);
    buf_init(&b, BUF_NOLIMIT);
    for (size_t i = 0; i < out.n; i++)
        buf_printf(&b, "%s%s", i ? " " : "", out.v[i]);
    strlist_free(&out);
    return buf_detach(&b, NULL);
}

#define EXPECT(a, who, want)                                                                  \
    do {                                                                                      \
        char *got = expand((a), (who), 0);                                                    \
        assert_string_equal(got, (want));                                                     \
        free(got);                                                                            \
    } while (0)

static void test_expansion(void **state)
{
    struct aliases a;
    struct mc_err err;

    (void)state;
    assert_int_equal(aliases_parse(text, strlen(text), "aliases", &a, &err), 0);
    EXPECT(&a, "root", "ops@example.org admin@example.org backup@example.org");
    EXPECT(&a, "POSTMASTER", "ops@example.org admin@example.org backup@example.org");
    EXPECT(&a, "webmaster", "\"Web, Team\"@example.org web2@example.org ops@example.org");
    EXPECT(&a, "self", "self me@example.org");
    EXPECT(&a, "loop1", "loop1");
    EXPECT(&a, "team", "alice@example.org bob@example.org ops@example.org admin@example.org "
                       "backup@example.org");
    EXPECT(&a, "nobody", "nobody");
    EXPECT(&a, "x@example.org", "x@example.org");
    char *got = expand(&a, "pipe", -1);
    free(got);
    aliases_free(&a);
}

static void test_default_catch_all(void **state)
{
    static const char t[] = "default: catch@example.org\nroot: ops@example.org\n";
    struct aliases a;
    struct mc_err err;

    (void)state;
    assert_int_equal(aliases_parse(t, strlen(t), "aliases", &a, &err), 0);
    EXPECT(&a, "root", "ops@example.org");
    EXPECT(&a, "www-data", "catch@example.org");
    aliases_free(&a);
}

/* msmtp skipped the recipient after an expanded alias: each is expanded on its own. */
static void test_every_recipient_expanded(void **state)
{
    static const char t[] = "root: ops@example.org\nwww: web@example.org\n";
    struct aliases a;
    struct strlist out = {0};
    struct mc_err err;
    const char *rcpts[] = {"root", "www", "root", "x@example.org", "bob"};

    (void)state;
    assert_int_equal(aliases_parse(t, strlen(t), "aliases", &a, &err), 0);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(aliases_expand(&a, rcpts[i], NULL, NULL, &out, &err), 0);
    assert_int_equal(out.n, 4);
    assert_string_equal(out.v[0], "ops@example.org");
    assert_string_equal(out.v[1], "web@example.org");
    assert_string_equal(out.v[2], "x@example.org");
    assert_string_equal(out.v[3], "bob");
    strlist_free(&out);
    aliases_free(&a);
}

static void test_syntax_errors(void **state)
{
    static const char *const bad[] = {"  continued first\n", "no colon here\n", "a b: x@y\n",
                                      ": x@y\n"};
    struct aliases a;
    struct mc_err err;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(aliases_parse(bad[i], strlen(bad[i]), "f", &a, &err), -1);
        assert_int_equal(err.cls, MC_CONFIG);
        assert_non_null(strstr(err.msg, "f:1:"));
    }
    assert_int_equal(aliases_parse("a: b\n\0", 6, "f", &a, &err), -1);
    /* Deep chains end with an error, not a stack overflow. */
    struct buf b;
    buf_init(&b, BUF_NOLIMIT);
    for (int i = 0; i < 40; i++)
        buf_printf(&b, "a%d: a%d\n", i, i + 1);
    assert_int_equal(aliases_parse(b.data, b.len, "f", &a, &err), 0);
    char *got = expand(&a, "a0", -1);
    free(got);
    aliases_free(&a);
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expansion),
        cmocka_unit_test(test_default_catch_all),
        cmocka_unit_test(test_every_recipient_expanded),
        cmocka_unit_test(test_syntax_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
