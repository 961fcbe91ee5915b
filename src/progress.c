/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Progress on a terminal; see progress.h.  The wrapper keeps the real
 * connection's ops and impl and forwards every call, so STARTTLS, channel
 * binding and the TLS description work through it unchanged.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"
#include "progress.h"
#include "util.h"

#define SLICE (64 * 1024)
#define REDRAW_MS 200

struct wrap {
    struct conn inner;
    FILE *out;
    long long total, done, start_ms, drawn_ms;
    bool shown;
};

void progress_format(char *buf, size_t len, long long done, long long total, long long ms)
{
    double rate = ms > 0 ? (double)done * 1000.0 / (double)ms : 0.0;
    int pct = total > 0 ? (int)(done * 100 / total) : 100;

    if (rate > 0 && done < total)
        snprintf(buf, len, "%.1f of %.1f MB (%d%%), %.1f MB/s, %lld s left", done / 1e6,
                 total / 1e6, pct, rate / 1e6, (long long)((double)(total - done) / rate + 0.5));
    else if (rate > 0)
        snprintf(buf, len, "%.1f of %.1f MB (%d%%), %.1f MB/s", done / 1e6, total / 1e6, pct,
                 rate / 1e6);
    else
        snprintf(buf, len, "%.1f of %.1f MB (%d%%)", done / 1e6, total / 1e6, pct);
}

bool progress_colour(FILE *f)
{
    const char *nc = getenv("NO_COLOR");

    return (nc == NULL || *nc == '\0') && isatty(fileno(f));
}

static void draw(struct wrap *w, bool last)
{
    char line[128];
    long long now = net_now_ms();

    if (!last && now - w->drawn_ms < REDRAW_MS)
        return;
    w->drawn_ms = now;
    progress_format(line, sizeof line, w->done > w->total ? w->total : w->done, w->total,
                    now - w->start_ms);
    /* \r and "erase to end of line": the line is redrawn in place. */
    fprintf(w->out, "\rmailcar: sending %s\033[K%s", line, last ? "\n" : "");
    fflush(w->out);
    w->shown = true;
}

static struct wrap *W(struct conn *c)
{
    return c->impl;
}

static ssize_t w_read(struct conn *c, void *p, size_t n, struct mc_err *err)
{
    return W(c)->inner.ops->read(&W(c)->inner, p, n, err);
}

static int w_write(struct conn *c, const void *p, size_t n, struct mc_err *err)
{
    struct wrap *w = W(c);
    const char *s = p;

    /* Short protocol turns go out whole, as without the wrapper. */
    if (n < SLICE) {
        w->done += (long long)n;
        return w->inner.ops->write(&w->inner, p, n, err);
    }
    while (n > 0) {
        size_t k = n < SLICE ? n : SLICE;
        if (w->inner.ops->write(&w->inner, s, k, err) < 0)
            return -1;
        s += k;
        n -= k;
        w->done += (long long)k;
        draw(w, false);
    }
    return 0;
}

static int w_starttls(struct conn *c, struct mc_err *err)
{
    struct conn *in = &W(c)->inner;

    return in->ops->starttls ? in->ops->starttls(in, err) : -1;
}

static bool w_pending(struct conn *c)
{
    return W(c)->inner.ops->pending(&W(c)->inner);
}

static size_t w_cbind(struct conn *c, const char **type, unsigned char *data, size_t max)
{
    return W(c)->inner.ops->cbind(&W(c)->inner, type, data, max);
}

static const char *w_tls_desc(struct conn *c)
{
    return W(c)->inner.ops->tls_desc(&W(c)->inner);
}

static void w_tls_report(struct conn *c, struct buf *out)
{
    if (W(c)->inner.ops->tls_report)
        W(c)->inner.ops->tls_report(&W(c)->inner, out);
}

static void w_close(struct conn *c)
{
    struct wrap *w = W(c);

    if (w->done > 0)
        draw(w, true);   /* the last status line stays, ended by a newline */
    *c = w->inner;
    free(w);
    if (c->ops->close)
        c->ops->close(c);
}

static const struct conn_ops wrap_ops = {
    .read = w_read,
    .write = w_write,
    .starttls = w_starttls,
    .pending = w_pending,
    .cbind = w_cbind,
    .tls_desc = w_tls_desc,
    .tls_report = w_tls_report,
    .close = w_close,
};

void progress_attach(struct conn *c, long long total, FILE *out)
{
    struct wrap *w;

    if (c->impl == NULL || total < PROGRESS_MIN_BYTES || out == NULL || !isatty(fileno(out)))
        return;
    w = mc_calloc(1, sizeof *w);
    w->inner = *c;
    w->out = out;
    w->total = total;
    w->start_ms = net_now_ms();
    w->drawn_ms = w->start_ms - REDRAW_MS;   /* the first slice draws at once */
    c->ops = &wrap_ops;
    c->impl = w;
}
