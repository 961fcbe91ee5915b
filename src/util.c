/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Small helpers shared by every module.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

void mc_wipe(void *p, size_t n)
{
#ifdef HAVE_EXPLICIT_BZERO
    /* A byte loop over the 256 KiB output buffer cost 2 M instructions a send. */
    explicit_bzero(p, n);
#else
    volatile unsigned char *q = p;

    while (n--)
        *q++ = 0;
#endif
}

void mc_free_secret(char *s)
{
    if (s == NULL)
        return;
    mc_wipe(s, strlen(s));
    free(s);
}

static void oom(void)
{
    /* Nothing can be sent without memory; say so once and leave with EX_OSERR. */
    fputs("mailcar: out of memory\n", stderr);
    exit(71);
}

char *mc_strdup(const char *s)
{
    char *p = strdup(s);

    if (p == NULL)
        oom();
    return p;
}

char *mc_strndup(const char *s, size_t n)
{
    char *p = strndup(s, n);

    if (p == NULL)
        oom();
    return p;
}

void *mc_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL)
        oom();
    return p;
}

void *mc_reallocarray(void *p, size_t n, size_t size)
{
    void *q;

    if (size && n > ((size_t)-1) / size)
        oom();
    q = realloc(p, n && size ? n * size : 1);
    if (q == NULL)
        oom();
    return q;
}

void strlist_add_owned(struct strlist *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = mc_reallocarray(l->v, l->cap, sizeof *l->v);
    }
    l->v[l->n++] = s;
}

void strlist_add(struct strlist *l, const char *s)
{
    strlist_add_owned(l, mc_strdup(s));
}

bool strlist_has_ci(const struct strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcasecmp(l->v[i], s) == 0)
            return true;
    return false;
}

void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

bool mc_streq_ci(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

bool mc_has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

int mc_mkdir_p(const char *path, mode_t mode)
{
    char buf[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, mode) < 0 && errno != EEXIST ? -1 : 0;
}

bool mc_second_core(void)
{
    return sysconf(_SC_NPROCESSORS_ONLN) > 1;
}

int mc_thread_start(pthread_t *tid, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    int r;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(tid, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}
