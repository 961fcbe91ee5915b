/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The durable queue: messages that could not be delivered for a temporary
 * reason, kept until delivered, expired or deleted.  No privileges: each
 * user has a private queue directory (mode 0700).
 *
 * On-disk format, version 1.  A queue directory holds, per message ID:
 *
 *   ID.msg   the message body exactly as sent (CRLF lines, not
 *            dot-stuffed).  Never changed after it is written.  A process
 *            working on a message holds flock(LOCK_EX) on this file.
 *   ID.env   the envelope, rewritten whole (temp file, fsync, rename, fsync
 *            the directory) on every change.  Its presence is the commit
 *            point: a message is queued exactly when ID.env exists.
 *   .tmp-*   temporary files; removed by a queue run once stale.
 *
 * ID.env is text, one "key value" line each, values percent-encoded (every
 * byte outside '!'..'~', and '%' itself, as %HH), then the header block:
 *
 *   mailcar-queue 1                  format version, always the first line
 *   created SECONDS                  Unix time of the first attempt
 *   attempts N                       delivery attempts so far
 *   next SECONDS                     earliest time of the next attempt
 *   size N                           message size in octets (head + body)
 *   flags WORD,...                   hold, bounce (this is a bounce: never
 *                                    bounce it), bounced (its bounce was
 *                                    queued), smtputf8, eightbit,
 *                                    body-eightbit, utf8-headers, mime
 *   account NAME                     absent: the default account
 *   from ADDR                        envelope sender; empty value: <>
 *   notify / ret / envid / body V    -N, -R, -V, -B of the original call
 *   set KEY=VALUE                    a configuration key given as an option
 *   argv ARG                         the original command line, one line per
 *                                    argument (a record; never re-parsed)
 *   error TEXT                       why the last attempt failed
 *   rcpt STATE ADDR [REPLY]          STATE: pending, done, failed
 *   head N                           then exactly N octets: the header block
 *   end                              last line; a file without it is corrupt
 *
 * Readers ignore keys they do not know; a change old readers would misread
 * gets a new version number, and a file with a version this program does
 * not know is left alone and reported.
 */
#ifndef MC_QUEUE_H
#define MC_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "buf.h"
#include "err.h"
#include "msg.h"
#include "util.h"

#define QUEUE_FORMAT 1
#define QUEUE_ID_MAX 48
#define QUEUE_ENV_MAX (MSG_HEADER_MAX + 1024 * 1024)
#define QUEUE_STALE_S 3600      /* a temporary file older than this is debris */

enum qrcpt_state { QR_PENDING, QR_DONE, QR_FAILED };

struct qrcpt {
    char *addr;
    enum qrcpt_state state;
    char *reply;                /* last answer for this recipient, or NULL */
};

#define QF_HOLD 0x01
#define QF_BOUNCE 0x02
#define QF_BOUNCED 0x04
#define QF_SMTPUTF8 0x08
#define QF_EIGHTBIT 0x10
#define QF_BODY8 0x20
#define QF_UTF8HDR 0x40
#define QF_MIME 0x80

/* One envelope; every string owned (NULL when absent). */
struct qenv {
    int version;
    long long created, next;
    long attempts;
    long long size;
    unsigned flags;
    char *account;
    char *from;
    char *notify, *ret, *envid, *body;
    struct strlist set;
    struct strlist argv;
    char *error;
    struct qrcpt *rcpts;
    size_t nrcpts;
    struct buf head;            /* the header block, CRLF lines, ending with an empty line */
};

void qenv_init(struct qenv *e);
void qenv_free(struct qenv *e);
void qenv_add_rcpt(struct qenv *e, const char *addr, enum qrcpt_state st, const char *reply);
size_t qenv_count(const struct qenv *e, enum qrcpt_state st);
/* Pure: parse / write the ID.env text.  Parse fails with MC_DATAERR (MC_CONFIG for a version). */
int qenv_parse(const char *data, size_t len, struct qenv *e, struct mc_err *err);
int qenv_format(const struct qenv *e, struct buf *out);

/* Percent-encoding used for values (pure). */
void queue_encode(struct buf *out, const char *s);
char *queue_decode(const char *s, size_t n);   /* NULL when malformed or holding a NUL */

struct queue {
    char dir[4096];
    long long now;              /* queue_now() when opened */
};

/*
 * The directory: dir when given, else /var/spool/mailcar for root, else
 * $XDG_STATE_HOME/mailcar/queue (~/.local/state/mailcar/queue).
 */
int queue_default_dir(const char *dir, char *out, size_t len, struct mc_err *err);
/* Create (0700) when missing. */
int queue_open(struct queue *q, const char *dir, struct mc_err *err);
/* Current time; MAILCAR_NOW (Unix seconds, or +N/-N relative) overrides it (a testing aid). */
long long queue_now(void);
/* Seconds to wait after attempt n (1-based): first * 2^(n-1), at most max. */
long queue_backoff(long first, long max, long attempts);
/* True when the ID is well-formed (letters, digits, '-', at most QUEUE_ID_MAX). */
bool queue_id_valid(const char *id);

/*
 * Write a new message durably.  body may be NULL (empty body).  id receives
 * the new ID (QUEUE_ID_MAX + 1 bytes).
 */
int queue_add(struct queue *q, const struct qenv *e, const struct msg *m, char *id,
              struct mc_err *err);

/* IDs of the queued messages (those with an ID.env), sorted, oldest first. */
int queue_list(struct queue *q, struct strlist *ids, struct mc_err *err);
/* Read ID.env without locking (for listing).  1 when it vanished meanwhile. */
int queue_read(struct queue *q, const char *id, struct qenv *e, struct mc_err *err);

/* A message locked for work. */
struct qitem {
    char id[QUEUE_ID_MAX + 1];
    int fd;                     /* ID.msg, holding the lock */
    struct qenv env;
};

/* 0 locked and loaded; 1 busy (another process has it) or gone; -1 error. */
int queue_lock(struct queue *q, const char *id, bool wait, struct qitem *it,
               struct mc_err *err);
/* Replace ID.env with it->env, durably. */
int queue_update(struct queue *q, struct qitem *it, struct mc_err *err);
/* Remove the message (ID.env first: the commit point), then unlock. */
int queue_remove(struct queue *q, struct qitem *it, struct mc_err *err);
void queue_unlock(struct qitem *it);
/* The message as struct msg for the SMTP engine (body read from ID.msg). */
int queue_msg(struct qitem *it, struct msg *m, struct mc_err *err);

/* Remove stale temporary files and orphaned ID.msg files; the number removed. */
int queue_sweep(struct queue *q, struct mc_err *err);

/*
 * Testing aid: when $MAILCAR_TEST_CRASH names this step, the process kills
 * itself with SIGKILL there, so the tests can check every crash point; when
 * $MAILCAR_TEST_STOP names it, it stops itself (SIGSTOP) for the test to act
 * on the queue at that instant.
 */
void queue_crash_point(const char *step);

#endif
