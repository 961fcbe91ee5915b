/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * A struct conn over memory for engine unit tests: the server's replies are
 * a list of chunks, each released only after the client has written since
 * the previous one (as a real server answers what it was sent); everything
 * the client writes is kept for byte-exact checks.
 */
#ifndef MC_TEST_MEMCONN_H
#define MC_TEST_MEMCONN_H

#include <stdbool.h>
#include <string.h>

#include "buf.h"
#include "conn.h"

struct memconn {
    const char *const *chunks;   /* NULL-terminated */
    size_t next;
    size_t off;                  /* within the current chunk */
    bool wrote;                  /* client wrote since the last chunk started */
    bool starttls_called;
    bool fail_starttls;
    size_t writes;               /* write calls: a pipelined turn is one */
    struct buf sent;
};

static ssize_t mem_read(struct conn *c, void *p, size_t n, struct mc_err *err)
{
    struct memconn *m = c->impl;
    const char *cur = m->chunks[m->next];

    if (cur == NULL)
        return 0;
    if (m->off == 0 && m->next > 0 && !m->wrote)
        return mc_err_set(err, MC_TEMPFAIL, "test: client waits for a reply it did not ask for");
    size_t left = strlen(cur) - m->off;
    if (n > left)
        n = left;
    memcpy(p, cur + m->off, n);
    m->off += n;
    if (m->off == strlen(cur)) {
        m->next++;
        m->off = 0;
        m->wrote = false;
    }
    return (ssize_t)n;
}

static int mem_write(struct conn *c, const void *p, size_t n, struct mc_err *err)
{
    struct memconn *m = c->impl;

    (void)err;
    m->wrote = true;
    m->writes++;
    return buf_add(&m->sent, p, n);
}

static int mem_starttls(struct conn *c, struct mc_err *err)
{
    struct memconn *m = c->impl;

    m->starttls_called = true;
    if (m->fail_starttls)
        return mc_err_set(err, MC_TEMPFAIL, "TLS handshake: test failure");
    return 0;
}

static bool mem_pending(struct conn *c)
{
    struct memconn *m = c->impl;

    return m->off > 0;
}

static const char *mem_desc(struct conn *c)
{
    (void)c;
    return "memory";
}

static const struct conn_ops mem_ops = {
    .read = mem_read,
    .write = mem_write,
    .starttls = mem_starttls,
    .pending = mem_pending,
    .tls_desc = mem_desc,
};

static inline void memconn_init(struct memconn *m, struct conn *c, const char *const *chunks)
{
    memset(m, 0, sizeof *m);
    m->chunks = chunks;
    buf_init(&m->sent, BUF_NOLIMIT);
    c->ops = &mem_ops;
    c->impl = m;
}

#endif
