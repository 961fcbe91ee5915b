/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Error classes and their exit statuses, bounded buffers, and the command
 * line: every historic option consumes exactly its argument.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <cmocka.h>

#include "buf.h"
#include "cli.h"
#include "err.h"

static void test_exit_table(void **state)
{
    static const struct {
        enum mc_class cls;
        int status;
    } rows[] = {
        {MC_OK, 0},           {MC_USAGE, EX_USAGE},       {MC_DATAERR, EX_DATAERR},
        {MC_NOUSER, EX_NOUSER}, {MC_NOHOST, EX_NOHOST},   {MC_UNAVAIL, EX_UNAVAILABLE},
        {MC_SOFTWARE, EX_SOFTWARE}, {MC_OSERR, EX_OSERR}, {MC_IOERR, EX_IOERR},
        {MC_TEMPFAIL, EX_TEMPFAIL}, {MC_PROTOCOL, EX_PROTOCOL}, {MC_NOPERM, EX_NOPERM},
        {MC_CONFIG, EX_CONFIG},
    };

    (void)state;
    assert_int_equal(sizeof rows / sizeof rows[0], MC_CLASS_MAX);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_int_equal(mc_class_exit(rows[i].cls), rows[i].status);
    assert_int_equal(mc_class_exit(MC_CLASS_MAX), EX_SOFTWARE);
    assert_int_equal(EX_TEMPFAIL, 75);
    assert_int_equal(EX_NOUSER, 67);
}

static void test_err_helpers(void **state)
{
    struct mc_err err;

    (void)state;
    assert_int_equal(mc_err_reply(&err, MC_NOUSER, 550, "5.1.1", "refused %s", "x"), -1);
    assert_int_equal(err.code, 550);
    assert_string_equal(err.esc, "5.1.1");
    assert_string_equal(err.msg, "refused x");
    mc_err_prefix(&err, "file %d", 3);
    assert_string_equal(err.msg, "file 3: refused x");
    assert_int_equal(err.code, 550);
    assert_int_equal(mc_err_set(NULL, MC_USAGE, "ignored"), -1);
}

static void test_buf_limits(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 8);
    assert_string_equal(b.data, "");
    assert_int_equal(buf_addstr(&b, "12345"), 0);
    assert_int_equal(buf_addstr(&b, "6789"), -1);   /* would pass max: refused whole */
    assert_string_equal(b.data, "12345");
    assert_int_equal(buf_printf(&b, "%d", 678), 0);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(buf_addch(&b, 'x'), -1);
    buf_consume(&b, 3);
    assert_string_equal(b.data, "45678");
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    buf_wipe(&b);
    buf_init(&b, BUF_NOLIMIT);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(buf_addstr(&b, "abcdefghij"), 0);
    assert_int_equal(b.len, 100000);
    size_t len;
    char *p = buf_detach(&b, &len);
    assert_int_equal(len, 100000);
    assert_int_equal(b.len, 0);
    free(p);
}

static int parse(struct cli *o, struct mc_err *err, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;

    va_start(ap, err);
    for (char *a; argc < 31 && (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    return cli_parse(argc, argv, o, err);
}

static void test_cli_sendmail_surface(void **state)
{
    struct cli o;
    struct mc_err err;

    (void)state;
    assert_int_equal(parse(&o, &err, "sendmail", "-t", "-oi", "-f", "a@b.test", "-F", "Ann",
                           "-N", "success,failure", "-R", "hdrs", "-V", "env1", "-B", "8BITMIME",
                           "-C", "/dev/null", "-a", "work", "-v", "-v", "x@y.test", NULL), 0);
    assert_true(o.extract);
    assert_false(o.dot_ends);
    assert_string_equal(o.from, "a@b.test");
    assert_string_equal(o.fullname, "Ann");
    assert_string_equal(o.dsn_notify, "success,failure");
    assert_string_equal(o.dsn_ret, "hdrs");
    assert_string_equal(o.envid, "env1");
    assert_string_equal(o.body, "8BITMIME");
    assert_string_equal(o.config, "/dev/null");
    assert_string_equal(o.account, "work");
    assert_int_equal(o.verbose, 2);
    assert_int_equal(o.rcpts.n, 1);
    assert_string_equal(o.rcpts.v[0], "x@y.test");
    assert_int_equal(o.mode, MODE_SEND);
    cli_free(&o);
}

/* ssmtp and msmtp turned these arguments into recipients (FIELD-NOTES). */
static void test_cli_ignored_options_consume_arguments(void **state)
{
    struct cli o;
    struct mc_err err;

    (void)state;
    assert_int_equal(parse(&o, &err, "sendmail", "-oem", "-oee", "-odi", "-odb", "-oQ",
                           "/var/spool", "-O", "Opt=1", "-h", "5", "-L", "tag", "-G", "-U", "-m",
                           "-n", "-A", "c", "-X", "/tmp/log", "-FCronDaemon", "-B8BITMIME",
                           "root@example.test", NULL), 0);
    assert_int_equal(o.rcpts.n, 1);
    assert_string_equal(o.rcpts.v[0], "root@example.test");
    assert_true(o.dot_ends);
    cli_free(&o);
}

static void test_cli_double_dash(void **state)
{
    struct cli o;
    struct mc_err err;

    (void)state;
    assert_int_equal(parse(&o, &err, "sendmail", "-oi", "--", "-x@y.test", "b@c.test", NULL), 0);
    assert_int_equal(o.rcpts.n, 2);
    assert_string_equal(o.rcpts.v[0], "-x@y.test");
    cli_free(&o);
    /* Options after a recipient are still options. */
    assert_int_equal(parse(&o, &err, "sendmail", "b@c.test", "-oi", NULL), 0);
    assert_int_equal(o.rcpts.n, 1);
    assert_false(o.dot_ends);
    cli_free(&o);
}

static void test_cli_errors(void **state)
{
    struct cli o;
    struct mc_err err;

    (void)state;
    assert_int_equal(parse(&o, &err, "sendmail", "-Y", NULL), -1);
    assert_int_equal(err.cls, MC_USAGE);
    assert_non_null(strstr(err.msg, "-Y"));
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "sendmail", "--no-such-option", NULL), -1);
    assert_int_equal(err.cls, MC_USAGE);
    assert_non_null(strstr(err.msg, "--no-such-option"));
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "sendmail", "-f", NULL), -1);
    assert_int_equal(err.cls, MC_USAGE);
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "sendmail", "-B", "9BIT", NULL), -1);
    assert_non_null(strstr(err.msg, "9BIT"));
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "sendmail", "-N", "sometimes", NULL), -1);
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "sendmail", "-R", "most", NULL), -1);
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "sendmail", "-bd", NULL), -1);
    assert_non_null(strstr(err.msg, "does not receive"));
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "sendmail", "-bp", "-bv", NULL), -1);
    cli_free(&o);
    /* Secrets never on the command line. */
    assert_int_equal(parse(&o, &err, "sendmail", "--password=x", NULL), -1);
    cli_free(&o);
}

static void test_cli_modes(void **state)
{
    struct cli o;
    struct mc_err err;

    (void)state;
    assert_int_equal(parse(&o, &err, "/usr/bin/mailq", NULL), 0);
    assert_int_equal(o.mode, MODE_QUEUE_LIST);
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "newaliases", NULL), 0);
    assert_int_equal(o.mode, MODE_NEWALIASES);
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "send-mail", "-bv", "a@b.test", NULL), 0);
    assert_int_equal(o.mode, MODE_VERIFY);
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "sendmail", "-bi", NULL), 0);
    assert_int_equal(o.mode, MODE_NEWALIASES);
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "sendmail", "-q30m", NULL), 0);
    assert_int_equal(o.mode, MODE_QUEUE_RUN);
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "sendmail", "-bm", "-S", NULL), 0);
    assert_int_equal(o.mode, MODE_SERVERINFO);
    cli_free(&o);
}

static void test_cli_long_keys(void **state)
{
    struct cli o;
    struct mc_err err;

    (void)state;
    assert_int_equal(parse(&o, &err, "mailcar", "--host=mx.example.test", "--port", "2525",
                           "--tls=off", "--tls-starttls", "--input", "a.eml", "--input", "b.eml",
                           NULL), 0);
    assert_string_equal(conf_str(&o.set, "host", NULL), "mx.example.test");
    assert_string_equal(conf_str(&o.set, "port", NULL), "2525");
    assert_string_equal(conf_str(&o.set, "tls", NULL), "off");
    assert_string_equal(conf_str(&o.set, "tls_starttls", NULL), "on");
    assert_int_equal(o.inputs.n, 2);
    cli_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_table),
        cmocka_unit_test(test_err_helpers),
        cmocka_unit_test(test_buf_limits),
        cmocka_unit_test(test_cli_sendmail_surface),
        cmocka_unit_test(test_cli_ignored_options_consume_arguments),
        cmocka_unit_test(test_cli_double_dash),
        cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_cli_modes),
        cmocka_unit_test(test_cli_long_keys),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
