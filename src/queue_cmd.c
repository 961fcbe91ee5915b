/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The queue modes; see queue_cmd.h.  A flush takes the due messages of one
 * account (and command-line settings) at a time over one connection, each
 * message under its own lock, so a stuck message never blocks the rest and
 * two flushes never send the same message.  A recipient the server took is
 * marked done before anything else happens, so it is never sent again.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "queue.h"
#include "queue_cmd.h"
#include "run.h"

/* ---- enqueue after a direct attempt ------------------------------------ */

/* Refused for good: a 503 only says MAIL failed before it, no verdict on the address. */
static bool refused(const struct smtp_rcpt *rc)
{
    return rc->state == RCPT_PERMFAIL && rc->code != 503;
}

static unsigned msg_flags(const struct msg *m, const struct smtp_envelope *env)
{
    return (env->smtputf8 ? QF_SMTPUTF8 : 0) | (m->eightbit ? QF_EIGHTBIT : 0) |
           (m->body_eightbit ? QF_BODY8 : 0) | (m->utf8_headers ? QF_UTF8HDR : 0) |
           (m->mime ? QF_MIME : 0);
}

static void env_from_run(struct run *r, size_t i, const struct mc_err *why, struct qenv *e)
{
    const struct cli *o = r->o;
    const struct msg *m = &r->msgs[i];

    qenv_init(e);
    e->created = queue_now();
    e->attempts = 1;
    e->next = e->created + queue_backoff(r->st.queue_retry_s, r->st.queue_retry_max_s, 1);
    e->size = (long long)msg_size(m);
    e->flags = msg_flags(m, &r->envs[i]);
    e->account = r->acc.name ? mc_strdup(r->acc.name) : NULL;
    e->from = mc_strdup(r->from);
    e->notify = o->dsn_notify ? mc_strdup(o->dsn_notify) : NULL;
    e->ret = o->dsn_ret ? mc_strdup(o->dsn_ret) : NULL;
    e->envid = o->envid ? mc_strdup(o->envid) : NULL;
    e->body = o->body ? mc_strdup(o->body) : NULL;
    for (size_t k = 0; k < o->set.n; k++) {
        size_t n = strlen(o->set.v[k].key) + strlen(o->set.v[k].value) + 2;
        char *kv = mc_calloc(1, n);
        snprintf(kv, n, "%s=%s", o->set.v[k].key, o->set.v[k].value);
        strlist_add_owned(&e->set, kv);
    }
    for (int k = 0; o->argv && k < o->argc; k++)
        strlist_add(&e->argv, o->argv[k]);
    e->error = mc_strdup(why->msg);
    buf_add(&e->head, m->head.data, m->head.len);
}

int queue_after_send(struct run *r, const struct mc_err *errs, struct mc_err *err)
{
    struct mc_err first = {0};
    struct queue q;
    bool opened = false;

    for (size_t i = 0; i < r->nmsgs; i++) {
        const struct smtp_envelope *env = &r->envs[i];
        struct qenv e;
        char id[QUEUE_ID_MAX + 1];
        struct mc_err qerr;
        bool whole = !r->sent[i] && errs[i].cls == MC_TEMPFAIL;

        if (errs[i].cls == MC_OK)
            continue;
        env_from_run(r, i, &errs[i], &e);
        for (size_t k = 0; k < env->nrcpts; k++) {
            enum rcpt_state st = env->rcpts[k].state;
            if (whole ? !refused(&env->rcpts[k])
                      : r->sent[i] && st != RCPT_OK && st != RCPT_PERMFAIL)
                qenv_add_rcpt(&e, env->rcpts[k].addr, QR_PENDING, env->rcpts[k].reply);
        }
        if (e.nrcpts == 0) {
            qenv_free(&e);
            if (first.cls == MC_OK)
                first = errs[i];
            continue;
        }
        if ((!opened && queue_open(&q, r->st.queue_dir, &qerr) < 0) ||
            queue_add(&q, &e, &r->msgs[i], id, &qerr) < 0) {
            fprintf(r->errf, "mailcar: cannot queue the message: %s\n", qerr.msg);
            if (first.cls == MC_OK)
                first = errs[i];
            qenv_free(&e);
            continue;
        }
        opened = true;
        fprintf(r->errf, "mailcar: queued as %s (%zu recipient%s) for a later attempt with "
                "'mailcar -q': %s\n", id, e.nrcpts, e.nrcpts == 1 ? "" : "s", errs[i].msg);
        /* A temporary failure now queued is done; a permanent refusal still counts. */
        if (errs[i].cls != MC_TEMPFAIL && first.cls == MC_OK)
            first = errs[i];
        qenv_free(&e);
    }
    if (first.cls == MC_OK)
        return 0;
    *err = first;
    return -1;
}

/* ---- bounces --------------------------------------------------------------- */

static void rfc5322_date(long long t, char *out, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* "451 4.3.0 text" gives "4.3.0"; def otherwise. */
static void status_of(const char *reply, const char *def, char *out, size_t len)
{
    unsigned a, b, c;

    if (reply && sscanf(reply, "%*3d %u.%u.%u", &a, &b, &c) == 3 && (a == 4 || a == 5) &&
        b < 1000 && c < 1000)
        snprintf(out, len, "%u.%u.%u", a == 4 && strcmp(def, "5.0.0") == 0 ? 5 : a, b, c);
    else
        snprintf(out, len, "%s", def);
}

/* b into an unlinked temporary file, as m's body; -1 with errno set. */
static int bounce_body(struct msg *m, const struct buf *b)
{
    FILE *f = tmpfile();
    int fd = -1, e;

    if (f && fwrite(b->data, 1, b->len, f) == b->len && fflush(f) == 0)
        fd = fcntl(fileno(f), F_DUPFD_CLOEXEC, 3);
    e = errno;
    if (f)
        fclose(f);
    errno = e;
    if (fd < 0)
        return -1;
    msg_set_body(m, fd, (off_t)b->len);
    return 0;
}

/*
 * The delivery status notification (RFC 3464) for the failed recipients
 * of it, from the null sender, as a new queued message.
 */
static int queue_bounce(struct run *r, struct queue *q, const struct qitem *it, char *id,
                        struct mc_err *err)
{
    const struct qenv *o = &it->env;
    struct qenv e;
    struct msg m;
    struct buf b;
    char date[64], arrival[64], status[32];
    const char *dom = r->st.domain;
    int rc;

    rfc5322_date(q->now, date, sizeof date);
    rfc5322_date(o->created, arrival, sizeof arrival);
    memset(&m, 0, sizeof m);
    buf_init(&m.head, MSG_HEADER_MAX);
    buf_printf(&m.head, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\nTo: <%s>\r\n"
               "Subject: Undelivered Mail Returned to Sender\r\nDate: %s\r\n"
               "Message-ID: <%s.bounce@%s>\r\nAuto-Submitted: auto-replied\r\n"
               "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
               "report-type=delivery-status;\r\n boundary=\"%s/%s\"\r\n\r\n",
               dom, o->from, date, it->id, dom, it->id, dom);
    buf_init(&b, BUF_NOLIMIT);
    buf_printf(&b, "This is a MIME-encapsulated message.\r\n\r\n--%s/%s\r\n"
               "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
               "mailcar on %s could not deliver your message (queue ID %s) to these\r\n"
               "recipients; it has stopped trying:\r\n\r\n", it->id, dom, dom, it->id);
    for (size_t i = 0; i < o->nrcpts; i++)
        if (o->rcpts[i].state == QR_FAILED)
            buf_printf(&b, "  <%s>: %s\r\n", o->rcpts[i].addr,
                       o->rcpts[i].reply ? o->rcpts[i].reply : "failed");
    buf_printf(&b, "\r\n--%s/%s\r\nContent-Type: message/delivery-status\r\n\r\n"
               "Reporting-MTA: dns; %s\r\nX-Mailcar-Queue-ID: %s\r\nArrival-Date: %s\r\n",
               it->id, dom, dom, it->id, arrival);
    for (size_t i = 0; i < o->nrcpts; i++) {
        if (o->rcpts[i].state != QR_FAILED)
            continue;
        const char *rep = o->rcpts[i].reply;
        bool expired = rep && strncmp(rep, "expired", 7) == 0;
        status_of(expired ? NULL : rep, expired ? "4.4.7" : "5.0.0", status, sizeof status);
        buf_printf(&b, "\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: %s\r\n"
                   "Diagnostic-Code: smtp; %s\r\nLast-Attempt-Date: %s\r\n", o->rcpts[i].addr,
                   status, rep ? rep : "failed", date);
    }
    buf_printf(&b, "\r\n--%s/%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", it->id, dom);
    buf_add(&b, o->head.data, o->head.len);
    buf_printf(&b, "--%s/%s--\r\n", it->id, dom);
    if (bounce_body(&m, &b) < 0) {
        buf_release(&b);
        msg_free(&m);
        return mc_err_set(err, MC_IOERR, "cannot write the bounce: %s", strerror(errno));
    }
    buf_release(&b);
    qenv_init(&e);
    e.created = e.next = q->now;
    e.size = (long long)msg_size(&m);
    e.flags = QF_BOUNCE | (addr_is_utf8(o->from) ? QF_SMTPUTF8 | QF_UTF8HDR : 0);
    e.account = o->account ? mc_strdup(o->account) : NULL;
    for (size_t i = 0; i < o->set.n; i++)
        strlist_add(&e.set, o->set.v[i]);
    e.from = mc_strdup("");
    qenv_add_rcpt(&e, o->from, QR_PENDING, NULL);
    buf_add(&e.head, m.head.data, m.head.len);
    rc = queue_add(q, &e, &m, id, err);
    qenv_free(&e);
    msg_free(&m);
    return rc;
}

/* ---- flush --------------------------------------------------------------- */

struct flush {
    struct run *r;
    struct queue q;
    struct strlist todo;        /* IDs of the current group, bounces appended */
    struct conn c;
    struct smtp_session s;
    struct smtp_params p;
    bool open;
    bool open_failed;
    struct mc_err open_err;
    unsigned delivered, deferred, bounced, dropped, errors;
    const char *only_key;       /* flush only this group (the background flush) */
};

/* The group a message belongs to: its account and command-line settings. */
static char *group_key(const struct qenv *e)
{
    struct buf b;

    buf_init(&b, BUF_NOLIMIT);
    buf_printf(&b, "%s", e->account ? e->account : "");
    for (size_t i = 0; i < e->set.n; i++)
        buf_printf(&b, "\n%s", e->set.v[i]);
    return buf_detach(&b, NULL);
}

static bool matches(const struct run *r, const char *id, const struct qenv *e)
{
    if (r->o->queue_id)
        return strcmp(r->o->queue_id, id) == 0;
    if (r->o->queue_match) {
        for (size_t i = 0; i < e->nrcpts; i++) {
            const char *at = strrchr(e->rcpts[i].addr, '@');
            if (e->rcpts[i].state == QR_PENDING && at && strcasestr(at, r->o->queue_match))
                return true;
        }
        return false;
    }
    return true;
}

/* Due now (or asked for by -qI / -qR), not held, and ours to take. */
static bool wanted(const struct flush *f, const char *id, const struct qenv *e)
{
    bool forced = f->r->o->queue_id || f->r->o->queue_match;

    if (e->flags & QF_HOLD)
        return false;
    return matches(f->r, id, e) && (forced || e->next <= f->q.now);
}

static int select_group(struct flush *f, const struct qenv *e, struct mc_err *err)
{
    struct run *r = f->r;

    account_free(&r->acc);
    if (conf_select(&r->conf, e->account, NULL, &r->acc, r->why, sizeof r->why, err) < 0)
        return -1;
    for (size_t i = 0; i < e->set.n; i++) {
        char *kv = mc_strdup(e->set.v[i]), *eq = strchr(kv, '=');
        if (eq) {
            *eq = '\0';
            account_set(&r->acc, kv, eq + 1, "queued message", 0);
        }
        free(kv);
    }
    return settings_load(&r->st, &r->acc, err);
}

static void close_session(struct flush *f)
{
    if (f->open) {
        smtp_quit(&f->s);
        smtp_release(&f->s);
    }
    if (f->c.impl)
        f->c.ops->close(&f->c);
    memset(&f->c, 0, sizeof f->c);
    f->open = false;
}

static int ensure_session(struct flush *f)
{
    char *secret = NULL;
    int rc;

    if (f->open && !f->s.broken)
        return 0;
    close_session(f);
    if (f->open_failed)
        return -1;
    memset(&f->s, 0, sizeof f->s);
    rc = open_session(f->r, &f->c, &f->s, &f->p, &secret, &f->open_err);
    mc_free_secret(secret);
    f->p.creds.secret = NULL;
    if (rc < 0) {
        if (f->s.p)
            smtp_release(&f->s);
        if (f->c.impl)
            f->c.ops->close(&f->c);
        memset(&f->c, 0, sizeof f->c);
        f->open_failed = true;
        return -1;
    }
    f->open = true;
    return 0;
}

static bool permanent(enum mc_class c)
{
    return c == MC_UNAVAIL || c == MC_NOUSER || c == MC_DATAERR;
}

/* Delivered to everyone, or failed for good: bounce once, then remove. */
static int complete(struct flush *f, struct qitem *it, struct mc_err *err)
{
    struct qenv *e = &it->env;
    char id[QUEUE_ID_MAX + 1];

    if (qenv_count(e, QR_FAILED) > 0) {
        if ((e->flags & (QF_BOUNCE | QF_BOUNCED)) || e->from == NULL || e->from[0] == '\0') {
            fprintf(f->r->errf, "mailcar: %s: failed; no bounce (%s)\n", it->id,
                    (e->flags & QF_BOUNCED) ? "already sent" : "null sender or a bounce itself");
            f->dropped++;
        } else {
            /* Marked first: a crash after this never sends a second bounce. */
            e->flags |= QF_BOUNCED;
            if (queue_update(&f->q, it, err) < 0)
                return -1;
            queue_crash_point("flush-bounce-marked");
            if (queue_bounce(f->r, &f->q, it, id, err) < 0)
                return -1;
            fprintf(f->r->errf, "mailcar: %s: failed; bounce %s queued for <%s>\n", it->id, id,
                    e->from);
            strlist_add(&f->todo, id);
            f->bounced++;
        }
    } else {
        f->delivered++;
    }
    return queue_remove(&f->q, it, err);
}

/* After an attempt: done, expired, or the next try scheduled. */
static int finish(struct flush *f, struct qitem *it, const char *why, struct mc_err *err)
{
    struct qenv *e = &it->env;
    const struct settings *st = &f->r->st;

    if (qenv_count(e, QR_PENDING) == 0)
        return complete(f, it, err);
    if (st->queue_lifetime_s > 0 && f->q.now - e->created >= st->queue_lifetime_s) {
        char text[400];
        snprintf(text, sizeof text, "expired after %lld s in the queue; last error: %s",
                 f->q.now - e->created, why ? why : "none");
        for (size_t i = 0; i < e->nrcpts; i++)
            if (e->rcpts[i].state == QR_PENDING) {
                e->rcpts[i].state = QR_FAILED;
                free(e->rcpts[i].reply);
                e->rcpts[i].reply = mc_strdup(text);
            }
        return complete(f, it, err);
    }
    e->attempts++;
    e->next = f->q.now + queue_backoff(st->queue_retry_s, st->queue_retry_max_s, e->attempts);
    if (why) {
        free(e->error);
        e->error = mc_strdup(why);
    }
    f->deferred++;
    return queue_update(&f->q, it, err);
}

static void set_reply(struct qrcpt *q, const char *reply)
{
    free(q->reply);
    q->reply = reply && *reply ? mc_strdup(reply) : NULL;
}

/* One attempt over the open session; rcpt states recorded in it->env. */
static int attempt(struct flush *f, struct qitem *it, struct mc_err *err)
{
    struct qenv *e = &it->env;
    struct smtp_envelope env = {.from = e->from, .smtputf8 = e->flags & QF_SMTPUTF8};
    size_t *map = mc_calloc(e->nrcpts, sizeof *map);
    struct mc_err merr = {0};
    long long start = net_now_ms();
    struct msg m;
    int rc;

    env.rcpts = mc_calloc(e->nrcpts, sizeof *env.rcpts);
    for (size_t i = 0; i < e->nrcpts; i++)
        if (e->rcpts[i].state == QR_PENDING) {
            map[env.nrcpts] = i;
            env.rcpts[env.nrcpts++].addr = e->rcpts[i].addr;
        }
    f->p.dsn_notify = e->notify ? e->notify : f->r->st.dsn_notify;
    f->p.dsn_ret = e->ret ? e->ret : f->r->st.dsn_return;
    f->p.dsn_envid = e->envid;
    f->p.want_8bitmime = e->body && mc_streq_ci(e->body, "8BITMIME");
    f->s.quit_after = false;
    rc = queue_msg(it, &m, &merr);
    if (rc == 0)
        rc = smtp_send(&f->s, &env, &m, &merr);
    free(f->r->from);
    f->r->from = mc_strdup(e->from);
    log_result(f->r, &f->s, &f->c, &env, &m, start, rc == 0 ? &(struct mc_err){0} : &merr);
    for (size_t k = 0; k < env.nrcpts; k++) {
        struct qrcpt *q = &e->rcpts[map[k]];
        const struct smtp_rcpt *s = &env.rcpts[k];
        if (rc == 0 && s->state == RCPT_OK)
            q->state = QR_DONE;
        else if (refused(s))
            q->state = QR_FAILED;
        else if (rc < 0 && permanent(merr.cls))
            q->state = QR_FAILED;
        /* A recipient's own answer, unless the message failed after it was accepted. */
        set_reply(q, s->state == RCPT_PENDING || (rc < 0 && s->state == RCPT_OK) ? merr.msg
                                                                                 : s->reply);
    }
    queue_crash_point("flush-sent");
    msg_free(&m);
    free(env.rcpts);
    free(map);
    if (rc == 0 && qenv_count(e, QR_PENDING))
        snprintf(merr.msg, sizeof merr.msg, "not every recipient accepted the message");
    return finish(f, it, rc == 0 && !qenv_count(e, QR_PENDING) ? NULL : merr.msg, err);
}

static void one(struct flush *f, const char *id)
{
    struct qitem it;
    struct mc_err err;
    int r = queue_lock(&f->q, id, false, &it, &err);

    if (r != 0) {
        if (r < 0) {
            fprintf(f->r->errf, "mailcar: %s: %s\n", id, err.msg);
            f->errors++;
        }
        return;
    }
    queue_crash_point("flush-locked");
    /* Read again under the lock: another run may have changed it. */
    if (!wanted(f, id, &it.env) && !(it.env.flags & QF_BOUNCE && it.env.attempts == 0)) {
        queue_unlock(&it);
        return;
    }
    if (ensure_session(f) < 0)
        r = finish(f, &it, f->open_err.msg, &err);
    else
        r = attempt(f, &it, &err);
    if (r < 0) {
        fprintf(f->r->errf, "mailcar: %s: %s\n", id, err.msg);
        f->errors++;
    }
    queue_unlock(&it);
}

/*
 * The group's account is gone from the configuration, or broken: its
 * messages are retried with that reason, on the default schedule, and
 * expire like any other, so none stays forever.
 */
static void account_gone(struct flush *f, const char *id, const struct mc_err *why)
{
    struct settings *st = &f->r->st;

    fprintf(f->r->errf, "mailcar: %s: %s\n", id, why->msg);
    f->open_failed = true;
    f->open_err = *why;
    if (st->queue_retry_s <= 0 || st->queue_retry_max_s <= 0 || st->queue_lifetime_s <= 0) {
        st->queue_retry_s = DEFAULT_QUEUE_RETRY_S;
        st->queue_retry_max_s = DEFAULT_QUEUE_RETRY_MAX_S;
        st->queue_lifetime_s = DEFAULT_QUEUE_LIFETIME_S;
    }
    if (st->domain[0] == '\0')
        snprintf(st->domain, sizeof st->domain, "localhost");
}

static int flush_group(struct flush *f, const char *key, struct strlist *ids, bool *done)
{
    struct mc_err err;
    bool selected = false;

    strlist_free(&f->todo);
    f->open_failed = false;
    for (size_t i = 0; i < ids->n; i++) {
        struct qenv e;
        char *k;
        if (done[i] || queue_read(&f->q, ids->v[i], &e, &err) != 0)
            continue;
        k = group_key(&e);
        if (strcmp(k, key) == 0) {
            done[i] = true;
            if (!selected && select_group(f, &e, &err) < 0)
                account_gone(f, ids->v[i], &err);
            selected = true;
            if (wanted(f, ids->v[i], &e))
                strlist_add(&f->todo, ids->v[i]);
        }
        free(k);
        qenv_free(&e);
    }
    for (size_t i = 0; i < f->todo.n; i++) {
        char id[QUEUE_ID_MAX + 1];
        snprintf(id, sizeof id, "%s", f->todo.v[i]);
        one(f, id);
    }
    close_session(f);
    return 0;
}

static int flush_once(struct flush *f, struct mc_err *err)
{
    struct strlist ids = {0};
    bool *done;

    f->q.now = queue_now();
    queue_sweep(&f->q, err);
    if (queue_list(&f->q, &ids, err) < 0)
        return -1;
    done = mc_calloc(ids.n + 1, sizeof *done);
    for (size_t i = 0; i < ids.n; i++) {
        struct qenv e;
        char *k;
        if (done[i])
            continue;
        int r = queue_read(&f->q, ids.v[i], &e, err);
        if (r < 0) {
            fprintf(f->r->errf, "mailcar: %s\n", err->msg);
            f->errors++;
        }
        if (r != 0) {
            done[i] = true;
            continue;
        }
        k = group_key(&e);
        qenv_free(&e);
        if (f->only_key == NULL || strcmp(k, f->only_key) == 0)
            flush_group(f, k, &ids, done);
        free(k);
    }
    free(done);
    strlist_free(&ids);
    return 0;
}

int queue_cmd_run(struct run *r, struct mc_err *err)
{
    struct flush f;
    int rc;

    memset(&f, 0, sizeof f);
    f.r = r;
    if (r->o->queue_id && !queue_id_valid(r->o->queue_id))
        return mc_err_set(err, MC_USAGE, "bad queue ID '%s'", r->o->queue_id);
    if (queue_open(&f.q, r->st.queue_dir, err) < 0)
        return -1;
    for (;;) {
        rc = flush_once(&f, err);
        if (r->o->verbose || f.delivered || f.bounced || f.errors)
            fprintf(r->errf, "mailcar: queue run: %u delivered, %u deferred, %u bounced, "
                    "%u dropped, %u errors\n", f.delivered, f.deferred, f.bounced, f.dropped,
                    f.errors);
        if (rc < 0 || r->o->queue_interval == 0)
            break;
        fflush(r->errf);
        sleep((unsigned)r->o->queue_interval);
        f.delivered = f.deferred = f.bounced = f.dropped = f.errors = 0;
    }
    strlist_free(&f.todo);
    if (rc == 0 && f.errors)
        return mc_err_set(err, MC_IOERR, "%u queued message%s could not be processed", f.errors,
                          f.errors == 1 ? "" : "s");
    return rc;
}

/*
 * After a successful direct send: if messages of the same account (and
 * command-line settings) are due, deliver them from a detached child, so
 * the caller has its answer at once.  The child holds none of the caller's
 * descriptors, so a caller waiting for end of file on our output is not
 * kept waiting either.
 */
void queue_flush_background(struct run *r)
{
    struct flush f;
    struct strlist ids = {0};
    struct qenv e;
    struct mc_err err;
    char *key;
    bool due = false;
    int fd;

    memset(&f, 0, sizeof f);
    f.r = r;
    if (queue_default_dir(r->st.queue_dir, f.q.dir, sizeof f.q.dir, &err) < 0 ||
        access(f.q.dir, F_OK) < 0 || queue_list(&f.q, &ids, &err) < 0)
        return;
    f.q.now = queue_now();
    qenv_init(&e);
    e.account = r->acc.name ? mc_strdup(r->acc.name) : NULL;
    for (size_t k = 0; k < r->o->set.n; k++) {
        size_t n = strlen(r->o->set.v[k].key) + strlen(r->o->set.v[k].value) + 2;
        char *kv = mc_calloc(1, n);
        snprintf(kv, n, "%s=%s", r->o->set.v[k].key, r->o->set.v[k].value);
        strlist_add_owned(&e.set, kv);
    }
    key = group_key(&e);
    qenv_free(&e);
    for (size_t i = 0; !due && i < ids.n; i++) {
        struct qenv q;
        if (queue_read(&f.q, ids.v[i], &q, &err) != 0)
            continue;
        char *k = group_key(&q);
        due = strcmp(k, key) == 0 && wanted(&f, ids.v[i], &q);
        free(k);
        qenv_free(&q);
    }
    strlist_free(&ids);
    if (!due || fork() != 0) {     /* nothing due, the parent, or fork failed */
        free(key);
        return;
    }
    setsid();
    fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int i = 0; fd >= 0 && i < 3; i++)
        dup2(fd, i);
    r->log.transcript = NULL;
    f.only_key = key;
    flush_once(&f, &err);
    _exit(0);
}

/* ---- listing --------------------------------------------------------------- */

static void fmt_span(long long s, char *out, size_t len)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(out, len, "%llds", s);
    else if (s < 3600)
        snprintf(out, len, "%lldm", s / 60);
    else if (s < 86400)
        snprintf(out, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(out, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

static void json_str(FILE *out, const char *s)
{
    if (s == NULL) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void list_json(FILE *out, const char *id, const struct qenv *e, long long now, bool first)
{
    static const char *const st[] = {"pending", "done", "failed"};

    fputs(first ? "\n  " : ",\n  ", out);
    fputs("{\"id\": ", out);
    json_str(out, id);
    fprintf(out, ", \"created\": %lld, \"age\": %lld, \"size\": %lld, \"from\": ", e->created,
            now - e->created, e->size);
    json_str(out, e->from);
    fputs(", \"account\": ", out);
    json_str(out, e->account);
    fprintf(out, ", \"attempts\": %ld, \"next_attempt\": %lld, \"held\": %s, \"bounce\": %s, "
            "\"last_error\": ", e->attempts, e->next, e->flags & QF_HOLD ? "true" : "false",
            e->flags & QF_BOUNCE ? "true" : "false");
    json_str(out, e->error);
    fputs(", \"argv\": [", out);
    for (size_t i = 0; i < e->argv.n; i++) {
        fputs(i ? ", " : "", out);
        json_str(out, e->argv.v[i]);
    }
    fputs("], \"recipients\": [", out);
    for (size_t i = 0; i < e->nrcpts; i++) {
        fputs(i ? ", {\"address\": " : "{\"address\": ", out);
        json_str(out, e->rcpts[i].addr);
        fprintf(out, ", \"state\": \"%s\", \"reply\": ", st[e->rcpts[i].state]);
        json_str(out, e->rcpts[i].reply);
        fputc('}', out);
    }
    fputs("]}", out);
}

static void list_text(FILE *out, const char *id, const struct qenv *e, long long now)
{
    char age[32], next[32];
    bool first = true;

    fmt_span(now - e->created, age, sizeof age);
    fmt_span(e->next - now, next, sizeof next);
    fprintf(out, "%s  %s  %lld  <%s>  ", id, age, e->size, e->from);
    for (size_t i = 0; i < e->nrcpts; i++)
        if (e->rcpts[i].state == QR_PENDING) {
            fprintf(out, "%s<%s>", first ? "" : ",", e->rcpts[i].addr);
            first = false;
        }
    if (e->flags & QF_HOLD)
        fputs("  held", out);
    else if (e->next <= now)
        fputs("  next: due now", out);
    else
        fprintf(out, "  next: in %s", next);
    fprintf(out, "  attempts: %ld  error: %s\n", e->attempts, e->error ? e->error : "-");
}

int queue_cmd_list(struct run *r, struct mc_err *err)
{
    struct queue q;
    struct strlist ids = {0};
    size_t shown = 0, held = 0, bad = 0;

    if (queue_open(&q, r->st.queue_dir, err) < 0 || queue_list(&q, &ids, err) < 0)
        return -1;
    if (r->o->json)
        fputs("{\"queue\": [", r->out);
    for (size_t i = 0; i < ids.n; i++) {
        struct qenv e;
        struct mc_err rerr;
        int rc = queue_read(&q, ids.v[i], &e, &rerr);
        if (rc < 0) {
            fprintf(r->errf, "mailcar: %s\n", rerr.msg);
            bad++;
        }
        if (rc != 0)
            continue;
        if (r->o->json)
            list_json(r->out, ids.v[i], &e, q.now, shown == 0);
        else
            list_text(r->out, ids.v[i], &e, q.now);
        shown++;
        held += (e.flags & QF_HOLD) != 0;
        qenv_free(&e);
    }
    if (r->o->json)
        fprintf(r->out, "%s], \"count\": %zu, \"held\": %zu, \"unreadable\": %zu}\n",
                shown ? "\n" : "", shown, held, bad);
    else if (shown == 0 && bad == 0)
        fputs("Mail queue is empty\n", r->out);
    else
        fprintf(r->out, "-- %zu message%s in %s%s\n", shown, shown == 1 ? "" : "s", q.dir,
                held ? " (some held)" : "");
    strlist_free(&ids);
    if (bad)
        return mc_err_set(err, MC_IOERR, "%zu queue file%s could not be read", bad,
                          bad == 1 ? "" : "s");
    if (shown)
        return mc_err_set(err, MC_TEMPFAIL, "%zu message%s waiting in the queue", shown,
                          shown == 1 ? "" : "s");
    return 0;
}

int queue_cmd_modify(struct run *r, struct mc_err *err)
{
    struct queue q;
    struct qitem it;
    const char *id = r->o->queue_id;
    int rc;

    if (!queue_id_valid(id))
        return mc_err_set(err, MC_USAGE, "bad queue ID '%s'", id);
    if (queue_open(&q, r->st.queue_dir, err) < 0)
        return -1;
    rc = queue_lock(&q, id, false, &it, err);
    if (rc > 0)
        return mc_err_set(err, access(q.dir, F_OK) == 0 ? MC_DATAERR : MC_IOERR,
                          "no message '%s' in the queue, or it is being delivered now", id);
    if (rc < 0)
        return -1;
    if (r->o->mode == MODE_QUEUE_DELETE) {
        rc = queue_remove(&q, &it, err);
        if (rc == 0)
            fprintf(r->errf, "mailcar: %s: deleted\n", id);
        return rc;
    }
    if (r->o->mode == MODE_QUEUE_HOLD)
        it.env.flags |= QF_HOLD;
    else
        it.env.flags &= ~(unsigned)QF_HOLD;
    rc = queue_update(&q, &it, err);
    if (rc == 0)
        fprintf(r->errf, "mailcar: %s: %s\n", id, r->o->mode == MODE_QUEUE_HOLD ? "held"
                                                                           : "released");
    queue_unlock(&it);
    return rc;
}
