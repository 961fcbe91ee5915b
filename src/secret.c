/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Password sources; see secret.h.  passwordeval gets /dev/null as stdin so
 * it cannot eat the message (msmtp's command inherits stdin), its exit
 * status is checked, and it is killed when it overruns the timeout.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "net.h"
#include "secret.h"
#include "util.h"

#define SECRET_MAX (64 * 1024)   /* OAuth tokens run to a few KiB */

/* Keep the first line, wiping the rest. */
static char *first_line(struct buf *b)
{
    size_t n = strcspn(b->data, "\r\n");
    char *s = mc_strndup(b->data, n);

    buf_wipe(b);
    return s;
}

static void child(const char *cmd, int wfd)
{
    int null = open("/dev/null", O_RDONLY);

    if (null < 0 || dup2(null, 0) < 0 || dup2(wfd, 1) < 0)
        _exit(126);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
}

static int collect(int fd, pid_t pid, long timeout_s, struct buf *out, struct mc_err *err)
{
    struct io_limits lim = {.timeout_ms = 0, .deadline_ms = net_now_ms() + timeout_s * 1000};
    char tmp[4096];
    ssize_t n;

    for (;;) {
        if (net_wait(fd, POLLIN, &lim, "passwordeval", err) < 0) {
            kill(pid, SIGKILL);
            return -1;
        }
        n = read(fd, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (buf_add(out, tmp, (size_t)n) < 0) {
            mc_wipe(tmp, sizeof tmp);
            kill(pid, SIGKILL);
            return mc_err_set(err, MC_CONFIG, "passwordeval printed more than %d bytes",
                              SECRET_MAX);
        }
    }
    mc_wipe(tmp, sizeof tmp);
    return 0;
}

int secret_eval(const char *cmd, long timeout_s, char **out, struct mc_err *err)
{
    struct buf b;
    int pfd[2], status, r;
    pid_t pid;

    if (pipe2(pfd, O_CLOEXEC) < 0)
        return mc_err_set(err, MC_OSERR, "pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return mc_err_set(err, MC_OSERR, "fork: %s", strerror(errno));
    }
    if (pid == 0)
        child(cmd, pfd[1]);
    close(pfd[1]);
    buf_init(&b, SECRET_MAX);
    r = collect(pfd[0], pid, timeout_s, &b, err);
    close(pfd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (r == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        r = mc_err_set(err, MC_CONFIG, "passwordeval command failed (%s %d)",
                       WIFEXITED(status) ? "exit status" : "signal",
                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    if (r == 0 && b.len == 0)
        r = mc_err_set(err, MC_CONFIG, "passwordeval command printed nothing");
    if (r < 0) {
        buf_wipe(&b);
        return -1;
    }
    *out = first_line(&b);
    return 0;
}

static int read_file(const char *path, char **out, struct mc_err *err)
{
    char *full = conf_expand_path(path);
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    struct buf b;
    struct stat st;
    char tmp[4096];
    ssize_t n;
    int r = 0;

    if (fd < 0) {
        r = mc_err_set(err, MC_CONFIG, "cannot read password_file '%s': %s", full,
                       strerror(errno));
        free(full);
        return r;
    }
    if (fstat(fd, &st) == 0 && (st.st_mode & 077))
        r = mc_err_set(err, MC_CONFIG,
                       "password_file '%s' is readable by others; run: chmod 600 %s", full, full);
    buf_init(&b, SECRET_MAX);
    while (r == 0 && (n = read(fd, tmp, sizeof tmp)) > 0)
        if (buf_add(&b, tmp, (size_t)n) < 0)
            r = mc_err_set(err, MC_CONFIG, "password_file '%s' is larger than %d bytes", full,
                           SECRET_MAX);
    mc_wipe(tmp, sizeof tmp);
    close(fd);
    free(full);
    if (r < 0) {
        buf_wipe(&b);
        return -1;
    }
    *out = first_line(&b);
    return 0;
}

int secret_get(const struct account *a, long timeout_s, char **out, struct mc_err *err)
{
    const char *v;

    *out = NULL;
    if ((v = conf_str(a, "password", NULL)) != NULL) {
        *out = mc_strdup(v);
        return 0;
    }
    if ((v = conf_str(a, "passwordeval", NULL)) != NULL)
        return secret_eval(v, timeout_s, out, err);
    if ((v = conf_str(a, "password_file", NULL)) != NULL)
        return read_file(v, out, err);
    return 0;
}
