/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Unit tests for import: format detection, each converter over buffers, and
 * the rule that every output loads with mailcar's own configuration parser.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "conf.h"
#include "err.h"
#include "import.h"

/* Convert, check the output parses, and return it (caller frees). */
static char *convert(enum import_format f, const struct import_input *in, struct account *acc,
                     const char *name)
{
    struct buf b;
    struct mc_err err = {0};
    struct conf c;
    char *text;

    buf_init(&b, BUF_NOLIMIT);
    assert_int_equal(import_convert(f, in, &b, &err), 0);
    text = buf_detach(&b, NULL);
    conf_init(&c);
    c.no_eval = true;
    if (conf_load_buffer(&c, "converted", text, strlen(text), &err) != 0)
        fail_msg("output does not load: %s\n%s", err.msg, text);
    assert_int_equal(conf_select(&c, name, NULL, acc, NULL, 0, &err), 0);
    assert_int_equal(conf_check_account(acc, &err), 0);
    conf_free(&c);
    return text;
}

static void test_detect(void **state)
{
    (void)state;
    assert_int_equal(import_detect("/home/a/.msmtprc", ""), IMPORT_MSMTP);
    assert_int_equal(import_detect("/etc/ssmtp/ssmtp.conf", ""), IMPORT_SSMTP);
    assert_int_equal(import_detect("/etc/dma/dma.conf", ""), IMPORT_DMA);
    assert_int_equal(import_detect("/etc/nullmailer/remotes", ""), IMPORT_NULLMAILER);
    assert_int_equal(import_detect("x", "account a\nhost h\n"), IMPORT_MSMTP);
    assert_int_equal(import_detect("x", "MailHub=h\nAuthUser=u\n"), IMPORT_SSMTP);
    assert_int_equal(import_detect("x", "SMARTHOST h\n"), IMPORT_DMA);
    assert_int_equal(import_detect("x", "relay.example smtp port=587\n"), IMPORT_NULLMAILER);
    assert_int_equal(import_detect("x", "hello\n"), IMPORT_UNKNOWN);
    assert_int_equal(import_detect(NULL, ""), IMPORT_UNKNOWN);
    assert_string_equal(import_format_name(IMPORT_DMA), "dma");
}

static void test_msmtp_passthrough(void **state)
{
    struct import_input in = {.name = "rc", .text = "account a\nhost h\nport 25\ntls off\n"
                                                    "aliases /etc/aliases\nfoo bar\n"};
    struct account a;
    char *out;

    (void)state;
    out = convert(IMPORT_MSMTP, &in, &a, "a");
    assert_string_equal(conf_str(&a, "host", ""), "h");
    assert_string_equal(conf_str(&a, "tls", ""), "off");
    assert_null(conf_lookup(&a, "aliases"));
    assert_non_null(strstr(out, "# not carried over ('aliases'"));
    assert_non_null(strstr(out, "# not carried over (mailcar has no 'foo')"));
    assert_null(strstr(out, "msmtp's defaults differ"));
    account_free(&a);
    free(out);
}

static void test_ssmtp(void **state)
{
    struct import_input in = {
        .name = "ssmtp.conf",
        .text = "mailhub=[2001:db8::1]:465\nUseTLS=YES\nAuthUser=u\nAuthPass= p w \n"
                "TLSCert=/etc/c.pem\nbogus=1\n",
        .aux = "root:r@example.org\n",
    };
    struct account a;
    char *out;

    (void)state;
    out = convert(IMPORT_SSMTP, &in, &a, "default");
    assert_string_equal(conf_str(&a, "host", ""), "2001:db8::1");
    assert_string_equal(conf_str(&a, "port", ""), "465");
    assert_string_equal(conf_str(&a, "tls_starttls", ""), "off");
    assert_string_equal(conf_str(&a, "password", ""), "p w");
    assert_string_equal(conf_str(&a, "tls_key_file", ""), "/etc/c.pem");
    assert_non_null(strstr(out, "bogus=1"));
    assert_non_null(strstr(out, "#   root:r@example.org"));
    account_free(&a);
    free(out);
}

static void test_dma(void **state)
{
    struct import_input in = {
        .name = "dma.conf",
        .text = "SMARTHOST relay.example\nSECURETRANSFER\nFINGERPRINT AB:CD\nMASQUERADE john@\n",
        .aux = "u|RELAY.example:pw\nbroken line\n",
        .aux_name = "auth.conf",
    };
    struct account a;
    char *out;

    (void)state;
    out = convert(IMPORT_DMA, &in, &a, "default");
    assert_string_equal(conf_str(&a, "tls_starttls", ""), "off");
    assert_string_equal(conf_str(&a, "port", ""), "25");
    assert_string_equal(conf_str(&a, "user", ""), "u");
    assert_string_equal(conf_str(&a, "tls_fingerprint", ""), "AB:CD");
    assert_non_null(strstr(out, "auth.conf line 2 not understood"));
    assert_non_null(strstr(out, "MASQUERADE john@"));
    account_free(&a);
    free(out);
}

static void test_nullmailer_quoting(void **state)
{
    struct import_input in = {
        .name = "remotes",
        .text = "h.example smtp --port=587 --starttls user=\"a b\" pass=x\\ y auth-login\n",
        .me = "box.example.org\n",
        .defaulthost = "example.org\n",
    };
    struct account a;
    char *out;

    (void)state;
    out = convert(IMPORT_NULLMAILER, &in, &a, "default");
    assert_string_equal(conf_str(&a, "user", ""), "a b");
    assert_string_equal(conf_str(&a, "password", ""), "x y");
    assert_string_equal(conf_str(&a, "auth", ""), "login");
    assert_string_equal(conf_str(&a, "domain", ""), "box.example.org");
    assert_string_equal(conf_str(&a, "qualify_domain", ""), "example.org");
    account_free(&a);
    free(out);
}

static void test_errors(void **state)
{
    struct import_input none = {.name = "n"};
    struct import_input empty = {.name = "remotes", .text = "# none\n"};
    struct mc_err err = {0};
    struct buf b;

    (void)state;
    buf_init(&b, BUF_NOLIMIT);
    assert_int_equal(import_convert(IMPORT_MSMTP, &none, &b, &err), -1);
    assert_int_equal(err.cls, MC_CONFIG);
    assert_int_equal(import_convert(IMPORT_NULLMAILER, &empty, &b, &err), -1);
    assert_string_equal(err.msg, "remotes: no remote server listed");
    assert_int_equal(import_convert(IMPORT_UNKNOWN, &empty, &b, &err), -1);
    assert_int_equal(err.cls, MC_CONFIG);
    assert_int_equal(import_path("/nonexistent/x", &b, &err), -1);
    assert_int_equal(err.cls, MC_IOERR);
    buf_release(&b);
}

static void test_bounded_output(void **state)
{
    struct import_input in = {.name = "rc", .text = "account a\nhost h\n"};
    struct mc_err err = {0};
    struct buf b;

    (void)state;
    buf_init(&b, 16);
    assert_int_equal(import_convert(IMPORT_MSMTP, &in, &b, &err), -1);
    assert_int_equal(err.cls, MC_OSERR);
    buf_release(&b);
}

static void test_dma_authpath(void **state)
{
    char *p;

    (void)state;
    p = import_dma_authpath("#AUTHPATH /x\nAUTHPATH  /etc/dma/auth.conf \n");
    assert_string_equal(p, "/etc/dma/auth.conf");
    free(p);
    assert_null(import_dma_authpath("SMARTHOST h\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_msmtp_passthrough),
        cmocka_unit_test(test_ssmtp),
        cmocka_unit_test(test_dma),
        cmocka_unit_test(test_nullmailer_quoting),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_bounded_output),
        cmocka_unit_test(test_dma_authpath),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
