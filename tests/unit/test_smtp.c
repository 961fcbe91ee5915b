/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The SMTP engine driven from memory: exact bytes sent, write batching,
 * and the error class of every failure.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "memconn.h"
#include "reply.h"
#include "smtp.h"

struct fixture {
    struct memconn mc;
    struct conn c;
    struct smtp_params p;
    struct smtp_session s;
    struct msg m;
    struct smtp_rcpt rcpts[3];
    struct smtp_envelope env;
    struct mc_err err;
    struct buf trace;
};

static void trace_cb(void *arg, enum smtp_trace_dir dir, const char *line, size_t len)
{
    struct buf *b = arg;

    buf_addstr(b, dir == SMTP_TRACE_CLIENT ? "C: " : dir == SMTP_TRACE_SERVER ? "S: " : "I: ");
    buf_add(b, line, len);
    buf_addch(b, '\n');
}

static void load_msg(struct msg *m, const char *text)
{
    char path[] = "/tmp/mailcar-test-XXXXXX";
    int fd = mkstemp(path);
    struct msg_opts o = {.set_date = MSG_OFF, .set_msgid = MSG_OFF, .set_from = MSG_OFF};
    struct mc_err err;

    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    lseek(fd, 0, SEEK_SET);
    assert_int_equal(msg_read(fd, &o, m, &err), 0);
    close(fd);
}

static struct fixture *setup(const char *const *script, const char *message, size_t nrcpt)
{
    static const char *const addrs[] = {"a@example.test", "b@example.test", "c@example.test"};
    struct fixture *f = calloc(1, sizeof *f);

    memconn_init(&f->mc, &f->c, script);
    buf_init(&f->trace, BUF_NOLIMIT);
    f->p.helo = "client.example.test";
    f->p.tls = SMTP_TLS_NONE;
    f->p.partial_delivery = true;
    f->p.chunking = true;
    f->p.trace = trace_cb;
    f->p.trace_arg = &f->trace;
    for (size_t i = 0; i < nrcpt; i++)
        f->rcpts[i].addr = addrs[i];
    f->env.from = "s@example.test";
    f->env.rcpts = f->rcpts;
    f->env.nrcpts = nrcpt;
    load_msg(&f->m, message ? message : "Subject: t\n\nbody\n");
    smtp_init(&f->s, &f->c, &f->p);
    return f;
}

static void teardown_f(struct fixture *f)
{
    smtp_release(&f->s);
    msg_free(&f->m);
    buf_release(&f->mc.sent);
    buf_release(&f->trace);
    free(f);
}

static int run_all(struct fixture *f)
{
    if (smtp_open(&f->s, &f->err) < 0)
        return -1;
    f->s.quit_after = true;
    if (smtp_send(&f->s, &f->env, &f->m, &f->err) < 0)
        return -1;
    smtp_quit(&f->s);
    return 0;
}

#define EHLO_PIPE "250-srv\r\n250-PIPELINING\r\n250 8BITMIME\r\n"

static void test_pipelined_send(void **state)
{
    static const char *const script[] = {
        "220 srv ready\r\n", EHLO_PIPE,
        "250 ok\r\n250 ok\r\n354 go\r\n", "250 2.0.0 queued as X\r\n221 bye\r\n", NULL};
    struct fixture *f = setup(script, "Subject: t\n\nbody\n", 1);

    (void)state;
    assert_int_equal(run_all(f), 0);
    assert_string_equal(f->mc.sent.data,
                        "EHLO client.example.test\r\n"
                        "MAIL FROM:<s@example.test>\r\nRCPT TO:<a@example.test>\r\nDATA\r\n"
                        "Subject: t\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    /* EHLO, the envelope turn, and body + end + QUIT: three writes, four round trips. */
    assert_int_equal(f->mc.writes, 3);
    assert_string_equal(f->s.final_reply, "250 2.0.0 queued as X");
    assert_int_equal(f->rcpts[0].state, RCPT_OK);
    teardown_f(f);
}

static void test_unpipelined_send(void **state)
{
    static const char *const script[] = {
        "220 srv\r\n", "250 srv\r\n", "250 ok\r\n", "250 ok\r\n", "250 ok\r\n", "354 go\r\n",
        "250 ok\r\n", "221 bye\r\n", NULL};
    struct fixture *f = setup(script, NULL, 2);

    (void)state;
    assert_int_equal(run_all(f), 0);
    assert_int_equal(f->mc.writes, 7);
    assert_string_equal(f->mc.sent.data,
                        "EHLO client.example.test\r\nMAIL FROM:<s@example.test>\r\n"
                        "RCPT TO:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
                        "Subject: t\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    teardown_f(f);
}

static void test_dot_stuffing(void **state)
{
    static const char *const script[] = {
        "220 srv\r\n", EHLO_PIPE, "250 ok\r\n250 ok\r\n354 go\r\n", "250 ok\r\n221 bye\r\n", NULL};
    struct fixture *f = setup(script, "Subject: t\n\n.\n..x\n a.\n.end", 1);

    (void)state;
    assert_int_equal(run_all(f), 0);
    assert_non_null(strstr(f->mc.sent.data, "\r\n\r\n..\r\n...x\r\n a.\r\n..end\r\n.\r\nQUIT"));
    teardown_f(f);
}

static void test_bdat(void **state)
{
    static const char *const script[] = {
        "220 srv\r\n", "250-srv\r\n250-PIPELINING\r\n250 CHUNKING\r\n", "250 ok\r\n250 ok\r\n",
        "250 ok\r\n221 bye\r\n", NULL};
    struct fixture *f = setup(script, "Subject: t\n\n.x\n", 1);

    (void)state;
    assert_int_equal(run_all(f), 0);
    assert_non_null(strstr(f->mc.sent.data, "BDAT 18 LAST\r\nSubject: t\r\n\r\n.x\r\nQUIT\r\n"));
    teardown_f(f);
}

static void test_partial_rcpt(void **state)
{
    static const char *const script[] = {
        "220 srv\r\n", EHLO_PIPE,
        "250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n354 go\r\n", "250 ok\r\n221 bye\r\n", NULL};
    struct fixture *f = setup(script, NULL, 2);

    (void)state;
    assert_int_equal(run_all(f), 0);
    assert_int_equal(f->rcpts[0].state, RCPT_PERMFAIL);
    assert_string_equal(f->rcpts[0].reply, "550 5.1.1 no such user");
    assert_int_equal(f->rcpts[1].state, RCPT_OK);
    teardown_f(f);
}

static void test_all_rcpts_refused(void **state)
{
    static const char *const script[] = {
        "220 srv\r\n", EHLO_PIPE, "250 ok\r\n550 no\r\n550 no\r\n554 no valid recipients\r\n",
        "250 reset\r\n", NULL};
    struct fixture *f = setup(script, NULL, 2);

    (void)state;
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_NOUSER);
    assert_null(strstr(f->mc.sent.data, "Subject"));
    assert_non_null(strstr(f->mc.sent.data, "RSET\r\n"));
    teardown_f(f);
}

static void test_rcpt_tempfail_is_temporary(void **state)
{
    static const char *const script[] = {
        "220 srv\r\n", EHLO_PIPE, "250 ok\r\n450 4.2.0 try later\r\n554 no\r\n", "250 r\r\n",
        NULL};
    struct fixture *f = setup(script, NULL, 1);

    (void)state;
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_TEMPFAIL);
    teardown_f(f);
}

static void test_no_partial_delivery(void **state)
{
    static const char *const script[] = {
        "220 srv\r\n", EHLO_PIPE, "250 ok\r\n550 no\r\n250 ok\r\n", "250 reset\r\n", NULL};
    struct fixture *f = setup(script, NULL, 2);

    (void)state;
    f->p.partial_delivery = false;
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_NOUSER);
    /* DATA is held back, so the decision to send nothing costs no dropped connection. */
    assert_null(strstr(f->mc.sent.data, "DATA"));
    teardown_f(f);
}

static void test_greeting_classes(void **state)
{
    static const char *const s421[] = {"421 busy\r\n", NULL};
    static const char *const s554[] = {"554 go away\r\n", NULL};
    static const char *const sbad[] = {"hello there\r\n", NULL};
    struct fixture *f;

    (void)state;
    f = setup(s421, NULL, 1);
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_TEMPFAIL);
    assert_int_equal(f->err.code, 421);
    teardown_f(f);
    f = setup(s554, NULL, 1);
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_UNAVAIL);
    teardown_f(f);
    f = setup(sbad, NULL, 1);
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_PROTOCOL);
    teardown_f(f);
}

static void test_helo_fallback(void **state)
{
    static const char *const script[] = {
        "220 old\r\n", "502 what\r\n", "250 hi\r\n", "250 ok\r\n", "250 ok\r\n", "354 go\r\n",
        "250 ok\r\n", "221 bye\r\n", NULL};
    struct fixture *f = setup(script, NULL, 1);

    (void)state;
    assert_int_equal(run_all(f), 0);
    assert_non_null(strstr(f->mc.sent.data, "EHLO client.example.test\r\nHELO client.example.test\r\n"));
    teardown_f(f);
}

static void test_starttls_required(void **state)
{
    static const char *const script[] = {"220 srv\r\n", EHLO_PIPE, NULL};
    struct fixture *f = setup(script, NULL, 1);

    (void)state;
    f->p.tls = SMTP_TLS_STARTTLS;
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_TEMPFAIL);
    assert_non_null(strstr(f->err.msg, "does not offer STARTTLS"));
    assert_string_equal(f->mc.sent.data, "EHLO client.example.test\r\n");
    teardown_f(f);
}

static void test_starttls_rereads_caps(void **state)
{
    static const char *const script[] = {
        "220 srv\r\n", "250-srv\r\n250 STARTTLS\r\n", "220 go ahead\r\n",
        "250-srv\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n", "235 ok\r\n", NULL};
    struct fixture *f = setup(script, NULL, 1);

    (void)state;
    f->p.tls = SMTP_TLS_STARTTLS;
    f->p.auth = true;
    f->p.creds.user = "u";
    f->p.creds.secret = "p";
    assert_int_equal(smtp_open(&f->s, &f->err), 0);
    assert_true(f->mc.starttls_called);
    assert_true(f->s.caps.flags & CAP_PIPELINING);
    assert_false(f->s.caps.flags & CAP_STARTTLS);
    assert_string_equal(f->mc.sent.data, "EHLO client.example.test\r\nSTARTTLS\r\n"
                                         "EHLO client.example.test\r\nAUTH PLAIN AHUAcA==\r\n");
    /* The secret never reaches the trace. */
    assert_null(strstr(f->trace.data, "AHUAcA"));
    assert_non_null(strstr(f->trace.data, "C: AUTH PLAIN <redacted>"));
    teardown_f(f);
}

static void test_starttls_injection(void **state)
{
    static const char *const script[] = {
        "220 srv\r\n", "250-srv\r\n250 STARTTLS\r\n", "220 go ahead\r\n250 injected\r\n", NULL};
    struct fixture *f = setup(script, NULL, 1);

    (void)state;
    f->p.tls = SMTP_TLS_STARTTLS;
    assert_int_equal(smtp_open(&f->s, &f->err), -1);
    assert_int_equal(f->err.cls, MC_PROTOCOL);
    assert_non_null(strstr(f->err.msg, "injection"));
    assert_false(f->mc.starttls_called);
    teardown_f(f);
}

static void test_auth_refused_and_temporary(void **state)
{
    static const char *const s535[] = {
        "220 srv\r\n", "250-srv\r\n250 AUTH PLAIN LOGIN\r\n", "535 5.7.8 bad credentials\r\n",
        NULL};
    static const char *const s454[] = {
        "220 srv\r\n", "250-srv\r\n250 AUTH PLAIN\r\n", "454 4.7.0 try later\r\n", NULL};
    struct fixture *f;

    (void)state;
    f = setup(s535, NULL, 1);
    f->p.tls = SMTP_TLS_IMPLICIT;
    f->p.auth = true;
    f->p.creds.user = "u";
    f->p.creds.secret = "p";
    assert_int_equal(smtp_open(&f->s, &f->err), -1);
    assert_int_equal(f->err.cls, MC_NOPERM);
    assert_string_equal(f->err.esc, "5.7.8");
    teardown_f(f);
    f = setup(s454, NULL, 1);
    f->p.tls = SMTP_TLS_IMPLICIT;
    f->p.auth = true;
    f->p.creds.user = "u";
    f->p.creds.secret = "p";
    assert_int_equal(smtp_open(&f->s, &f->err), -1);
    assert_int_equal(f->err.cls, MC_TEMPFAIL);
    teardown_f(f);
}

static void test_auth_login_exchange(void **state)
{
    static const char *const script[] = {
        "220 srv\r\n", "250-srv\r\n250 AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n",
        "334 UGFzc3dvcmQ6\r\n", "235 ok\r\n", NULL};
    struct fixture *f = setup(script, NULL, 1);

    (void)state;
    f->p.tls = SMTP_TLS_IMPLICIT;
    f->p.auth = true;
    f->p.auth_forced = true;
    f->p.mech = SASL_LOGIN;
    f->p.creds.user = "user";
    f->p.creds.secret = "pass";
    assert_int_equal(smtp_open(&f->s, &f->err), 0);
    assert_string_equal(f->mc.sent.data,
                        "EHLO client.example.test\r\nAUTH LOGIN\r\ndXNlcg==\r\ncGFzcw==\r\n");
    assert_null(strstr(f->trace.data, "cGFzcw"));
    teardown_f(f);
}

static void test_no_auth_in_clear(void **state)
{
    static const char *const script[] = {"220 srv\r\n", "250-srv\r\n250 AUTH PLAIN\r\n", NULL};
    struct fixture *f = setup(script, NULL, 1);

    (void)state;
    f->p.auth = true;
    f->p.auth_forced = true;
    f->p.mech = SASL_PLAIN;
    f->p.creds.user = "u";
    f->p.creds.secret = "p";
    assert_int_equal(smtp_open(&f->s, &f->err), -1);
    assert_int_equal(f->err.cls, MC_CONFIG);
    assert_null(strstr(f->mc.sent.data, "AUTH"));
    teardown_f(f);
}

static void test_size_refused_early(void **state)
{
    static const char *const script[] = {"220 srv\r\n", "250-srv\r\n250 SIZE 10\r\n", NULL};
    struct fixture *f = setup(script, NULL, 1);

    (void)state;
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_UNAVAIL);
    assert_null(strstr(f->mc.sent.data, "MAIL"));
    teardown_f(f);
}

static void test_mail_params(void **state)
{
    static const char *const script[] = {
        "220 srv\r\n", "250-srv\r\n250-SIZE 1000\r\n250-DSN\r\n250 8BITMIME\r\n", "250 ok\r\n",
        "250 ok\r\n", "354 go\r\n", "250 ok\r\n", "221 bye\r\n", NULL};
    struct fixture *f = setup(script, "Subject: t\n\nb\xc3\xa9\n", 1);

    (void)state;
    f->p.dsn_notify = "SUCCESS,FAILURE";
    f->p.dsn_ret = "HDRS";
    f->p.dsn_envid = "id+1=2 x";
    assert_int_equal(run_all(f), 0);
    assert_non_null(strstr(f->mc.sent.data, "MAIL FROM:<s@example.test> SIZE=19 BODY=8BITMIME "
                                            "RET=HDRS ENVID=id+2B1+3D2+20x\r\n"));
    assert_non_null(strstr(f->mc.sent.data, "RCPT TO:<a@example.test> NOTIFY=SUCCESS,FAILURE\r\n"));
    teardown_f(f);
}

static void test_lost_after_dot(void **state)
{
    static const char *const script[] = {
        "220 srv\r\n", EHLO_PIPE, "250 ok\r\n250 ok\r\n354 go\r\n", NULL};
    struct fixture *f = setup(script, NULL, 1);

    (void)state;
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_TEMPFAIL);
    assert_non_null(strstr(f->err.msg, "may have been delivered"));
    teardown_f(f);
}

static void test_data_refused(void **state)
{
    static const char *const script[] = {
        "220 srv\r\n", EHLO_PIPE, "250 ok\r\n250 ok\r\n554 5.7.1 no data for you\r\n",
        "250 reset\r\n", NULL};
    struct fixture *f = setup(script, NULL, 1);

    (void)state;
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_UNAVAIL);
    assert_null(strstr(f->mc.sent.data, "Subject"));
    teardown_f(f);
}

static void test_final_reply_classes(void **state)
{
    static const char *const s452[] = {
        "220 srv\r\n", EHLO_PIPE, "250 ok\r\n250 ok\r\n354 go\r\n",
        "452 4.3.1 out of space\r\n221 bye\r\n", NULL};
    static const char *const s552[] = {
        "220 srv\r\n", EHLO_PIPE, "250 ok\r\n250 ok\r\n354 go\r\n",
        "552 5.3.4 too big\r\n221 bye\r\n", NULL};
    struct fixture *f;

    (void)state;
    f = setup(s452, NULL, 1);
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_TEMPFAIL);
    teardown_f(f);
    f = setup(s552, NULL, 1);
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_UNAVAIL);
    assert_string_equal(f->err.esc, "5.3.4");
    teardown_f(f);
}

static void test_sender_refused(void **state)
{
    static const char *const script[] = {
        "220 srv\r\n", EHLO_PIPE, "553 5.7.1 sender rejected\r\n503 no mail\r\n503 no\r\n",
        "250 reset\r\n", NULL};
    struct fixture *f = setup(script, NULL, 1);

    (void)state;
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_UNAVAIL);
    assert_non_null(strstr(f->err.msg, "sender"));
    teardown_f(f);
}

static void test_malformed_multiline(void **state)
{
    static const char *const script[] = {"220 srv\r\n", "250-srv\r\n251 changed\r\n", NULL};
    struct fixture *f = setup(script, NULL, 1);

    (void)state;
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_PROTOCOL);
    teardown_f(f);
}

static void test_reply_parsing(void **state)
{
    struct reply r;
    struct mc_err err;
    char sum[64];
    struct caps c;

    (void)state;
    reply_init(&r);
    assert_int_equal(reply_add_line(&r, "250-mx.example", sizeof "250-mx.example" - 1, &err), 0);
    assert_false(r.done);
    assert_int_equal(reply_add_line(&r, "250-SIZE 35882577", sizeof "250-SIZE 35882577" - 1, &err), 0);
    assert_int_equal(reply_add_line(&r, "250-AUTH=LOGIN", sizeof "250-AUTH=LOGIN" - 1, &err), 0);
    assert_int_equal(reply_add_line(&r, "250-auth plain login", sizeof "250-auth plain login" - 1, &err), 0);
    assert_int_equal(reply_add_line(&r, "250 PIPELINING", sizeof "250 PIPELINING" - 1, &err), 0);
    assert_true(r.done);
    caps_parse(&r, &c);
    assert_int_equal(c.size, 35882577);
    assert_true(c.flags & CAP_PIPELINING);
    assert_string_equal(c.auth, "LOGIN PLAIN LOGIN");
    reply_reset(&r);
    assert_int_equal(reply_add_line(&r, "550 5.1.1 <x@y>: no such user", sizeof "550 5.1.1 <x@y>: no such user" - 1, &err), 0);
    assert_string_equal(r.esc, "5.1.1");
    reply_summary(&r, sum, sizeof sum);
    assert_string_equal(sum, "550 5.1.1 <x@y>: no such user");
    reply_reset(&r);
    assert_int_equal(reply_add_line(&r, "250", sizeof "250" - 1, &err), 0);
    assert_true(r.done);
    reply_reset(&r);
    assert_int_equal(reply_add_line(&r, "25x ok", sizeof "25x ok" - 1, &err), -1);
    assert_int_equal(err.cls, MC_PROTOCOL);
    assert_int_equal(reply_add_line(&r, "600 ok", sizeof "600 ok" - 1, &err), -1);
    assert_int_equal(reply_add_line(&r, "250_ok", sizeof "250_ok" - 1, &err), -1);
    assert_int_equal(reply_add_line(&r, "250 a\0b", sizeof "250 a\0b" - 1, &err), -1);
    reply_release(&r);
}

static void test_reply_cap(void **state)
{
    struct reply r;
    struct mc_err err;
    char line[1000];
    int rc = 0;

    (void)state;
    memset(line, 'x', sizeof line);
    memcpy(line, "250-", 4);
    reply_init(&r);
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = reply_add_line(&r, line, sizeof line, &err);
    assert_int_equal(rc, -1);
    assert_int_equal(err.cls, MC_PROTOCOL);
    reply_release(&r);
}

static void test_huge_line_refused(void **state)
{
    static char big[REPLY_MAX + 100];
    static const char *script[] = {big, NULL};
    struct fixture *f;

    (void)state;
    memset(big, 'x', sizeof big - 1);
    memcpy(big, "220 ", 4);
    f = setup(script, NULL, 1);
    assert_int_equal(run_all(f), -1);
    assert_int_equal(f->err.cls, MC_PROTOCOL);
    teardown_f(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined_send),
        cmocka_unit_test(test_unpipelined_send),
        cmocka_unit_test(test_dot_stuffing),
        cmocka_unit_test(test_bdat),
        cmocka_unit_test(test_partial_rcpt),
        cmocka_unit_test(test_all_rcpts_refused),
        cmocka_unit_test(test_rcpt_tempfail_is_temporary),
        cmocka_unit_test(test_no_partial_delivery),
        cmocka_unit_test(test_greeting_classes),
        cmocka_unit_test(test_helo_fallback),
        cmocka_unit_test(test_starttls_required),
        cmocka_unit_test(test_starttls_rereads_caps),
        cmocka_unit_test(test_starttls_injection),
        cmocka_unit_test(test_auth_refused_and_temporary),
        cmocka_unit_test(test_auth_login_exchange),
        cmocka_unit_test(test_no_auth_in_clear),
        cmocka_unit_test(test_size_refused_early),
        cmocka_unit_test(test_mail_params),
        cmocka_unit_test(test_lost_after_dot),
        cmocka_unit_test(test_data_refused),
        cmocka_unit_test(test_final_reply_classes),
        cmocka_unit_test(test_sender_refused),
        cmocka_unit_test(test_malformed_multiline),
        cmocka_unit_test(test_reply_parsing),
        cmocka_unit_test(test_reply_cap),
        cmocka_unit_test(test_huge_line_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
