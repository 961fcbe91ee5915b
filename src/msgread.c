/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The message as it is sent: msg_reader, see msg.h.  The header block comes
 * from memory, the body from its file: a spool or queue file of ours as it
 * is, or the caller's own file, converted as it is read (a CR before each
 * bare LF, a CRLF after a last line without one) and checked against what
 * msg_read saw.  For DATA, lines starting with a dot get another.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msg.h"
#include "util.h"

#define READ_SIZE (256 * 1024)   /* the most read from the body's file at once */

static int oom(struct mc_err *err)
{
    return mc_err_set(err, MC_OSERR, "out of memory");
}

/* Read exactly n octets at off (fewer only at the end of the file). */
static ssize_t pread_full(int fd, char *p, size_t n, off_t off, struct mc_err *err)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return mc_err_set(err, MC_IOERR, "reading the message spool: %s", strerror(errno));
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

void msg_reader_init(struct msg_reader *r, const struct msg *m, unsigned flags)
{
    memset(r, 0, sizeof *r);
    r->m = m;
    r->flags = flags;
    r->head_off = flags & MSG_RD_BODY ? m->head.len : 0;
    r->off = m->body.start;
    r->bol = true;
}

static void ahead_stop(struct msg_reader *r);

void msg_reader_done(struct msg_reader *r)
{
    ahead_stop(r);
    free(r->raw);
    free(r->chunk);
    r->raw = NULL;
    r->chunk = NULL;
}

/*
 * p[0..n) to out as CRLF lines (a CR goes before a LF that has none),
 * dot-stuffed when asked; out has room for 2n octets.  Returns the octets
 * written, *dots of them being stuffed dots.
 */
static size_t convert(struct msg_reader *r, const char *p, size_t n, char *out, size_t *dots)
{
    const char *end = p + n;
    char *o = out;
    bool stuff = r->flags & MSG_RD_STUFF;

    *dots = 0;
    while (p < end) {
        if (r->bol && stuff && *p == '.') {
            *o++ = '.';
            ++*dots;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t k = (size_t)((nl ? nl : end) - p);
        memcpy(o, p, k);
        o += k;
        if (k > 0)
            r->cr = p[k - 1] == '\r';
        if (nl == NULL) {
            r->bol = false;
            break;
        }
        if (!r->cr)
            *o++ = '\r';
        *o++ = '\n';
        r->cr = false;
        r->bol = true;
        p = nl + 1;
    }
    return (size_t)(o - out);
}

static ssize_t read_head(struct msg_reader *r, char *p, size_t n)
{
    const struct buf *h = &r->m->head;
    size_t k = h->len - r->head_off, dots;

    if (r->flags & MSG_RD_STUFF) {
        k = k < n / 2 ? k : n / 2;
        n = convert(r, h->data + r->head_off, k, p, &dots);
    } else {
        k = k < n ? k : n;
        memcpy(p, h->data + r->head_off, k);
        n = k;
    }
    r->head_off += k;
    return (ssize_t)n;
}

static int changed(const struct msg_body *b, struct mc_err *err)
{
    if (b->in_place)
        return mc_err_set(err, MC_IOERR, "the message file changed while it was being sent");
    return mc_err_set(err, MC_IOERR, "the message spool is shorter than expected");
}

/* All of the body is read: end its last line, and make sure it was what msg_read checked. */
static ssize_t end_body(struct msg_reader *r, char *p, struct mc_err *err)
{
    const struct msg_body *b = &r->m->body;
    struct stat st;
    size_t k = 0;

    if (b->in_place && !r->bol) {
        p[0] = '\r';
        p[1] = '\n';
        k = 2;
        r->made += 2;
    }
    if (b->in_place && fstat(b->fd, &st) < 0)
        return mc_err_set(err, MC_IOERR, "reading the message: %s", strerror(errno));
    if (b->in_place && (st.st_size != b->file_size || st.st_mtim.tv_sec != b->mtime.tv_sec ||
                        st.st_mtim.tv_nsec != b->mtime.tv_nsec))
        return changed(b, err);
    if (r->made != r->m->body_size)
        return changed(b, err);
    r->ended = true;
    return (ssize_t)k;
}

static ssize_t read_body(struct msg_reader *r, char *p, size_t n, struct mc_err *err)
{
    const struct msg_body *b = &r->m->body;
    off_t left = b->end - r->off;
    bool as_stored = !b->in_place && !(r->flags & MSG_RD_STUFF);
    size_t want, dots;
    ssize_t got;

    if (left == 0)
        return end_body(r, p, err);
    /* Changed on the way, the octets may double; room is kept for a last CRLF. */
    want = as_stored ? n : (n - 2) / 2 < READ_SIZE ? (n - 2) / 2 : READ_SIZE;
    if ((off_t)want > left)
        want = (size_t)left;
    if (!as_stored && r->raw == NULL && (r->raw = malloc(READ_SIZE)) == NULL)
        return oom(err);
    got = pread_full(b->fd, as_stored ? p : r->raw, want, r->off, err);
    if (got < 0)
        return -1;
    if ((size_t)got < want)
        return changed(b, err);
    r->off += got;
    if (as_stored) {
        r->made += got;
        return got;
    }
    n = convert(r, r->raw, want, p, &dots);
    r->made += (off_t)(n - dots);
    return (ssize_t)n;
}

ssize_t msg_reader_read(struct msg_reader *r, char *p, size_t n, struct mc_err *err)
{
    if (r->head_off < r->m->head.len)
        return read_head(r, p, n);
    if (r->ended || !r->m->body.open)
        return 0;
    return read_body(r, p, n, err);
}

/* ---- reading ahead on a second core -------------------------------------- */

/*
 * Sending a large message, reading and converting it (30 ms per 100 MB)
 * and writing it to the socket (about as much again) took turns on one
 * core.  A helper thread now fills a ring of pieces while the caller sends
 * the previous ones; the caller holds one piece at a time, the helper
 * fills the others.  An error (the file changed) reaches the caller after
 * the pieces before it, so it is still seen before the end of data.
 */
#define AHEAD_MIN ((off_t)4 * 1024 * 1024)
#define AHEAD_SLOTS 8
#define CHUNK_SIZE (128 * 1024 + 2)   /* read_body reads half, converted it may double, + CRLF */

struct msg_ahead {
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* signalled when what its one waiter waits for is there */
    struct msg_reader in;       /* the helper's reader */
    char *slot[AHEAD_SLOTS];
    size_t len[AHEAD_SLOTS];
    unsigned first, count;      /* filled pieces: slot[first], the count after it */
    bool held;                  /* the caller holds the slot before first */
    bool helper_waits, caller_waits;
    bool finished, stop;
    ssize_t last;               /* how the helper finished: 0 at the end, -1 on an error */
    struct mc_err err;
};

static unsigned slots_free(const struct msg_ahead *a)
{
    return AHEAD_SLOTS - a->count - a->held;
}

/*
 * With the ring full the helper sleeps until half of it is free: waking it
 * for every slot cost two context switches a piece.
 */
static void *ahead_run(void *arg)
{
    struct msg_ahead *a = arg;
    unsigned i;
    ssize_t n;

    for (;;) {
        pthread_mutex_lock(&a->mu);
        if (slots_free(a) == 0) {
            a->helper_waits = true;
            while (!a->stop && slots_free(a) < AHEAD_SLOTS / 2)
                pthread_cond_wait(&a->cv, &a->mu);
            a->helper_waits = false;
        }
        i = (a->first + a->count) % AHEAD_SLOTS;
        if (a->stop) {
            pthread_mutex_unlock(&a->mu);
            return NULL;
        }
        pthread_mutex_unlock(&a->mu);
        n = msg_reader_read(&a->in, a->slot[i], CHUNK_SIZE, &a->err);
        pthread_mutex_lock(&a->mu);
        if (n > 0) {
            a->len[i] = (size_t)n;
            a->count++;
        } else {
            a->finished = true;
            a->last = n;
        }
        if (a->caller_waits)
            pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        if (n <= 0)
            return NULL;
    }
}

static void ahead_free(struct msg_ahead *a)
{
    for (unsigned i = 0; i < AHEAD_SLOTS; i++)
        free(a->slot[i]);
    msg_reader_done(&a->in);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}

/* A helper for r, or NULL (no memory, no thread): then the caller reads itself. */
static struct msg_ahead *ahead_start(const struct msg_reader *r)
{
    struct msg_ahead *a = calloc(1, sizeof *a);
    int rc = -1;

    if (a == NULL)
        return NULL;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    msg_reader_init(&a->in, r->m, r->flags);
    for (unsigned i = 0; i < AHEAD_SLOTS; i++)
        if ((a->slot[i] = malloc(CHUNK_SIZE)) == NULL)
            goto out;
    rc = mc_thread_start(&a->tid, ahead_run, a);
out:
    if (rc != 0) {
        ahead_free(a);
        return NULL;
    }
    return a;
}

static void ahead_stop(struct msg_reader *r)
{
    struct msg_ahead *a = r->ahead;

    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->tid, NULL);
    ahead_free(a);
    r->ahead = NULL;
}

static ssize_t ahead_next(struct msg_ahead *a, const char **p, struct mc_err *err)
{
    ssize_t n;

    pthread_mutex_lock(&a->mu);
    a->held = false;
    if (a->helper_waits && slots_free(a) >= AHEAD_SLOTS / 2)
        pthread_cond_signal(&a->cv);
    a->caller_waits = true;
    while (a->count == 0 && !a->finished)
        pthread_cond_wait(&a->cv, &a->mu);
    a->caller_waits = false;
    if (a->count > 0) {
        *p = a->slot[a->first];
        n = (ssize_t)a->len[a->first];
        a->first = (a->first + 1) % AHEAD_SLOTS;
        a->count--;
        a->held = true;
    } else {
        n = a->last;
        if (n < 0)
            *err = a->err;
    }
    pthread_mutex_unlock(&a->mu);
    return n;
}

ssize_t msg_reader_next(struct msg_reader *r, const char **p, struct mc_err *err)
{
    if (r->ahead == NULL && r->chunk == NULL && r->m->body_size >= AHEAD_MIN && mc_second_core())
        r->ahead = ahead_start(r);
    if (r->ahead)
        return ahead_next(r->ahead, p, err);
    if (r->chunk == NULL && (r->chunk = malloc(CHUNK_SIZE)) == NULL)
        return oom(err);
    *p = r->chunk;
    return msg_reader_read(r, r->chunk, CHUNK_SIZE, err);
}
