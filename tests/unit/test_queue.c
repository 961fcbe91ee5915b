/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The queue: the envelope text (round trip, encoding, version and
 * truncation checks), the backoff schedule, and the files (add, list, lock,
 * update, remove, sweep) in a private directory; the -q option forms.
 */
#include "config.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include <cmocka.h>

#include "cli.h"
#include "queue.h"

static void sample(struct qenv *e)
{
    qenv_init(e);
    e->created = 1700000000;
    e->attempts = 2;
    e->next = 1700000600;
    e->size = 42;
    e->flags = QF_HOLD | QF_EIGHTBIT;
    e->account = mc_strdup("work");
    e->from = mc_strdup("s@example.test");
    e->notify = mc_strdup("FAILURE,DELAY");
    e->envid = mc_strdup("env id %1");
    strlist_add(&e->set, "host=mx.example.test");
    strlist_add(&e->argv, "mailcar");
    strlist_add(&e->argv, "-f");
    strlist_add(&e->argv, "a b\r\n@x");
    strlist_add(&e->argv, "");
    e->error = mc_strdup("451 4.3.0 try\r\nlater");
    qenv_add_rcpt(e, "a@example.test", QR_PENDING, NULL);
    qenv_add_rcpt(e, "b@example.test", QR_DONE, "250 2.1.5 ok");
    qenv_add_rcpt(e, "\"x y\"@example.test", QR_FAILED, "550 5.1.1 no");
    buf_addstr(&e->head, "Subject: t\r\nX: \xc3\xa9\r\n\r\n");
}

static void test_round_trip(void **state)
{
    struct qenv e, f;
    struct buf b;
    struct mc_err err;

    (void)state;
    sample(&e);
    buf_init(&b, QUEUE_ENV_MAX);
    assert_int_equal(qenv_format(&e, &b), 0);
    assert_memory_equal(b.data, "mailcar-queue 1\n", 16);
    assert_non_null(strstr(b.data, "error 451%204.3.0%20try%0D%0Alater\n"));
    assert_int_equal(qenv_parse(b.data, b.len, &f, &err), 0);
    assert_int_equal(f.created, 1700000000);
    assert_int_equal(f.attempts, 2);
    assert_int_equal(f.next, 1700000600);
    assert_int_equal(f.flags, QF_HOLD | QF_EIGHTBIT);
    assert_string_equal(f.account, "work");
    assert_string_equal(f.envid, "env id %1");
    assert_string_equal(f.error, e.error);
    assert_int_equal(f.set.n, 1);
    assert_int_equal(f.argv.n, 4);
    assert_string_equal(f.argv.v[2], "a b\r\n@x");
    assert_string_equal(f.argv.v[3], "");
    assert_int_equal(f.nrcpts, 3);
    assert_string_equal(f.rcpts[2].addr, "\"x y\"@example.test");
    assert_int_equal(f.rcpts[1].state, QR_DONE);
    assert_null(f.rcpts[0].reply);
    assert_int_equal(qenv_count(&f, QR_PENDING), 1);
    assert_int_equal(f.head.len, e.head.len);
    assert_memory_equal(f.head.data, e.head.data, e.head.len);
    qenv_free(&f);
    qenv_free(&e);
    buf_release(&b);
}

static void test_null_sender_round_trip(void **state)
{
    struct qenv e, f;
    struct buf b;
    struct mc_err err;

    (void)state;
    qenv_init(&e);
    e.from = mc_strdup("");
    qenv_add_rcpt(&e, "a@example.test", QR_PENDING, NULL);
    buf_init(&b, QUEUE_ENV_MAX);
    qenv_format(&e, &b);
    assert_int_equal(qenv_parse(b.data, b.len, &f, &err), 0);
    assert_string_equal(f.from, "");
    qenv_free(&f);
    qenv_free(&e);
    buf_release(&b);
}

static void test_refusals(void **state)
{
    struct qenv e, f;
    struct buf b;
    struct mc_err err;
    static const char *const bad[] = {
        "",
        "garbage\n",
        "mailcar-queue 1\nfrom a@b\nrcpt pending x@y\n",               /* no head */
        "mailcar-queue 1\nfrom a@b\nrcpt pending x@y\nhead 5\nab\nend\n", /* wrong size */
        "mailcar-queue 1\nfrom a@b\nhead 0\nend\n",                      /* no recipient */
        "mailcar-queue 1\nrcpt pending x@y\nhead 0\nend\n",              /* no sender */
        "mailcar-queue 1\nfrom a%0@b\nrcpt pending x@y\nhead 0\nend\n",  /* bad escape */
        "mailcar-queue 1\nfrom a%00b\nrcpt pending x@y\nhead 0\nend\n",  /* NUL */
        "mailcar-queue 1\nfrom a@b\nrcpt maybe x@y\nhead 0\nend\n",
        "mailcar-queue 1\nnext -5\nfrom a@b\nrcpt pending x@y\nhead 0\nend\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(qenv_parse(bad[i], strlen(bad[i]), &f, &err), -1);
        assert_int_equal(err.cls, MC_DATAERR);
    }
    assert_int_equal(qenv_parse("mailcar-queue 2\n", 16, &f, &err), -1);
    assert_int_equal(err.cls, MC_CONFIG);
    assert_non_null(strstr(err.msg, "version 2"));
    /* Unknown keys are skipped; truncation anywhere is caught. */
    const char *ok = "mailcar-queue 1\nfuture-key x\nfrom a@b\nrcpt pending x@y\nhead 0\nend\n";
    assert_int_equal(qenv_parse(ok, strlen(ok), &f, &err), 0);
    qenv_free(&f);
    sample(&e);
    buf_init(&b, QUEUE_ENV_MAX);
    qenv_format(&e, &b);
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(qenv_parse(b.data, n, &f, &err), -1);
    qenv_free(&e);
    buf_release(&b);
}

static void test_backoff_and_ids(void **state)
{
    (void)state;
    assert_int_equal(queue_backoff(300, 14400, 1), 300);
    assert_int_equal(queue_backoff(300, 14400, 2), 600);
    assert_int_equal(queue_backoff(300, 14400, 5), 4800);
    assert_int_equal(queue_backoff(300, 14400, 6), 9600);
    assert_int_equal(queue_backoff(300, 14400, 7), 14400);
    assert_int_equal(queue_backoff(300, 14400, 1000000), 14400);
    assert_int_equal(queue_backoff(0, 10, 1), 1);
    assert_true(queue_id_valid("006b0b62bf1a2b3-d9bbadc1"));
    assert_false(queue_id_valid(""));
    assert_false(queue_id_valid("../x"));
    assert_false(queue_id_valid("-rf"));
    assert_false(queue_id_valid("a/b"));
    assert_false(queue_id_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

static void test_now_override(void **state)
{
    long long t = (long long)time(NULL);

    (void)state;
    setenv("MAILCAR_NOW", "12345", 1);
    assert_int_equal(queue_now(), 12345);
    setenv("MAILCAR_NOW", "+100", 1);
    assert_true(queue_now() >= t + 100 && queue_now() <= t + 102);
    setenv("MAILCAR_NOW", "junk", 1);
    assert_true(queue_now() >= t);
    unsetenv("MAILCAR_NOW");
}

static char *make_dir(void)
{
    char tmpl[] = "/tmp/mailcar-test-queue.XXXXXX";
    char *d = mkdtemp(tmpl);

    assert_non_null(d);
    return mc_strdup(d);
}

static void rm_dir(const char *d)
{
    char cmd[300];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
}

static void test_files(void **state)
{
    char *top = make_dir(), dir[300], id[QUEUE_ID_MAX + 1], id2[QUEUE_ID_MAX + 1], path[400];
    struct queue q;
    struct qenv e;
    struct qitem it, other;
    struct strlist ids = {0};
    struct mc_err err;
    struct msg m;
    struct stat st;
    FILE *f;

    (void)state;
    snprintf(dir, sizeof dir, "%s/a/b", top);
    assert_int_equal(queue_open(&q, dir, &err), 0);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    sample(&e);
    memset(&m, 0, sizeof m);
    buf_init(&m.head, 100);
    f = tmpfile();
    fputs("line 1\r\n.line 2\r\n", f);
    fflush(f);
    msg_set_body(&m, dup(fileno(f)), 17);
    fclose(f);
    assert_int_equal(queue_add(&q, &e, &m, id, &err), 0);
    assert_int_equal(queue_add(&q, &e, NULL, id2, &err), 0);
    assert_string_not_equal(id, id2);
    assert_int_equal(queue_list(&q, &ids, &err), 0);
    assert_int_equal(ids.n, 2);
    assert_string_equal(ids.v[0], id);     /* oldest first */
    strlist_free(&ids);

    /* A second locker is turned away, not blocked. */
    assert_int_equal(queue_lock(&q, id, false, &it, &err), 0);
    assert_int_equal(queue_lock(&q, id, false, &other, &err), 1);
    struct msg back;
    assert_int_equal(queue_msg(&it, &back, &err), 0);
    assert_int_equal(back.body_size, 17);
    assert_int_equal(back.head.len, e.head.len);
    assert_true(back.eightbit);
    msg_free(&back);
    it.env.attempts = 9;
    assert_int_equal(queue_update(&q, &it, &err), 0);
    queue_unlock(&it);
    struct qenv r;
    assert_int_equal(queue_read(&q, id, &r, &err), 0);
    assert_int_equal(r.attempts, 9);
    qenv_free(&r);

    assert_int_equal(queue_lock(&q, id, false, &it, &err), 0);
    assert_int_equal(queue_remove(&q, &it, &err), 0);
    snprintf(path, sizeof path, "%s/%s.msg", dir, id);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(queue_lock(&q, id, false, &it, &err), 1);
    assert_int_equal(queue_lock(&q, "../x", false, &it, &err), -1);

    /* Debris: an orphaned body, a stale temp file, a fresh one (kept). */
    snprintf(path, sizeof path, "%s/0000000001-dead.msg", dir);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    snprintf(path, sizeof path, "%s/.tmp-old.env.1", dir);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    struct utimbuf old = {.actime = q.now - 2 * QUEUE_STALE_S, .modtime = q.now - 2 * QUEUE_STALE_S};
    utime(path, &old);
    snprintf(path, sizeof path, "%s/.tmp-new.env.1", dir);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    assert_int_equal(queue_sweep(&q, &err), 2);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(queue_list(&q, &ids, &err), 0);
    assert_int_equal(ids.n, 1);
    strlist_free(&ids);

    msg_free(&m);
    qenv_free(&e);
    rm_dir(top);
    free(top);
}

static int parse(struct cli *o, struct mc_err *err, ...)
{
    char *argv[16];
    int argc = 0;
    va_list ap;

    va_start(ap, err);
    while (argc < 15 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    return cli_parse(argc, argv, o, err);
}

static void test_cli_q_forms(void **state)
{
    struct cli o;
    struct mc_err err;

    (void)state;
    assert_int_equal(parse(&o, &err, "mailcar", "-q", NULL), 0);
    assert_int_equal(o.mode, MODE_QUEUE_RUN);
    assert_int_equal(o.queue_interval, 0);
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "mailcar", "-q30m", NULL), 0);
    assert_int_equal(o.queue_interval, 1800);
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "mailcar", "-qI", "abc-1", NULL), 0);
    assert_string_equal(o.queue_id, "abc-1");
    assert_int_equal(o.rcpts.n, 0);
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "mailcar", "-qRexample.org", NULL), 0);
    assert_string_equal(o.queue_match, "example.org");
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "mailcar", "-qX", NULL), -1);
    assert_int_equal(err.cls, MC_USAGE);
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "mailcar", "-qI", NULL), -1);
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "mailcar", "--queue-hold", "x1", NULL), 0);
    assert_int_equal(o.mode, MODE_QUEUE_HOLD);
    cli_free(&o);
    assert_int_equal(parse(&o, &err, "mailq", "--json", NULL), 0);
    assert_int_equal(o.mode, MODE_QUEUE_LIST);
    assert_true(o.json);
    cli_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_null_sender_round_trip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_backoff_and_ids),
        cmocka_unit_test(test_now_override),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_cli_q_forms),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
