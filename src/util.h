/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Small helpers every module uses: allocation that reports failure through
 * mc_err, secret wiping, string lists, and the banned-function list.
 */
#ifndef MC_UTIL_H
#define MC_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Zero memory in a way the compiler may not drop. */
void mc_wipe(void *p, size_t n);
/* Wipe and free a NUL-terminated secret. */
void mc_free_secret(char *s);

char *mc_strdup(const char *s);          /* aborts the process on ENOMEM */
char *mc_strndup(const char *s, size_t n);
void *mc_calloc(size_t n, size_t size);
void *mc_reallocarray(void *p, size_t n, size_t size);

/* A growable array of owned strings. */
struct strlist {
    char **v;
    size_t n;
    size_t cap;
};
void strlist_add(struct strlist *l, const char *s);
void strlist_add_owned(struct strlist *l, char *s);
bool strlist_has_ci(const struct strlist *l, const char *s);
void strlist_free(struct strlist *l);

/* mkdir -p; 0 when the directory exists afterwards. */
int mc_mkdir_p(const char *path, mode_t mode);

bool mc_streq_ci(const char *a, const char *b);
bool mc_has_ctl(const char *s);  /* any byte < 0x20 or 0x7f */

/* More than one processor online: a helper thread would have one of its own. */
bool mc_second_core(void);

/* pthread_create for a helper that takes no signals (they are the main thread's). */
int mc_thread_start(pthread_t *tid, void *(*fn)(void *), void *arg);

#endif
