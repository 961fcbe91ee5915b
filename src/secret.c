/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Password sources; see secret.h.  passwordeval gets /dev/null as stdin so
 * it cannot eat the message (msmtp's command inherits stdin), its exit
 * status is checked, and it is killed when it overruns the timeout.
 * netrc files and the password file must be private, like a config file
 * holding a password.
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
#include <termios.h>
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

/* Up to SECRET_MAX bytes from fd into b; -1 (with b wiped) when larger. */
static int slurp(int fd, struct buf *b)
{
    char tmp[4096];
    ssize_t n;
    int r = 0;

    while (r == 0 && (n = read(fd, tmp, sizeof tmp)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || buf_add(b, tmp, (size_t)n) < 0)
            r = -1;
    }
    mc_wipe(tmp, sizeof tmp);
    if (r < 0)
        buf_wipe(b);
    return r;
}

/* Open a file that may hold a secret: ours, and private. */
static int open_private(const char *path, const char *what, struct mc_err *err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return mc_err_set(err, MC_CONFIG, "cannot read %s '%s': %s", what, path, strerror(errno));
    if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
        close(fd);
        return mc_err_set(err, MC_CONFIG, "%s '%s' is readable by others; run: chmod 600 %s",
                          what, path, path);
    }
    return fd;
}

static int read_file(const char *path, char **out, struct mc_err *err)
{
    char *full = conf_expand_path(path);
    int fd = open_private(full, "password_file", err);
    struct buf b;
    int r;

    buf_init(&b, SECRET_MAX);
    r = fd < 0 ? -1 : slurp(fd, &b);
    if (fd >= 0)
        close(fd);
    if (fd >= 0 && r < 0)
        mc_err_set(err, MC_CONFIG, "cannot read password_file '%s' (or it is over %d bytes)",
                   full, SECRET_MAX);
    free(full);
    if (r < 0)
        return -1;
    *out = first_line(&b);
    return 0;
}

int secret_from_fd(int fd, char **out, struct mc_err *err)
{
    struct buf b;

    buf_init(&b, SECRET_MAX);
    if (slurp(fd, &b) < 0)
        return mc_err_set(err, MC_CONFIG, "cannot read the password from file descriptor %d "
                          "(or it is over %d bytes)", fd, SECRET_MAX);
    *out = first_line(&b);
    return 0;
}

/*
 * netrc (as ftp and curl read it): "machine HOST login USER password PW",
 * or "default ...".  The first entry for host (and user, when one is set)
 * wins.  Tokens are white-space separated; macdef bodies are skipped.
 */
static char *netrc_lookup(char *text, const char *host, const char *user)
{
    char *save = NULL, *tok, *found = NULL;
    bool in_entry = false, macdef = false;
    const char *login = NULL;
    char *pw = NULL;

    for (tok = strtok_r(text, " \t\r\n", &save); tok && !found;
         tok = strtok_r(NULL, " \t\r\n", &save)) {
        if (strcmp(tok, "machine") == 0 || strcmp(tok, "default") == 0) {
            if (in_entry && pw && (!user || (login && strcmp(login, user) == 0)))
                found = pw;
            if (found)
                break;
            macdef = false;
            login = NULL;
            pw = NULL;
            in_entry = strcmp(tok, "default") == 0;
            if (!in_entry && (tok = strtok_r(NULL, " \t\r\n", &save)) != NULL)
                in_entry = mc_streq_ci(tok, host);
        } else if (strcmp(tok, "macdef") == 0) {
            macdef = true;
            in_entry = false;
        } else if (!macdef && (strcmp(tok, "login") == 0 || strcmp(tok, "password") == 0)) {
            char *val = strtok_r(NULL, " \t\r\n", &save);
            if (tok[0] == 'l')
                login = val;
            else
                pw = val;
        }
    }
    if (!found && in_entry && pw && (!user || (login && strcmp(login, user) == 0)))
        found = pw;
    return found ? mc_strdup(found) : NULL;
}

static int netrc_get(const char *host, const char *user, char **out, struct mc_err *err)
{
    const char *home = getenv("HOME");
    char path[4096];
    const char *files[2] = {NULL, "/etc/netrc"};

    if (home) {
        snprintf(path, sizeof path, "%s/.netrc", home);
        files[0] = path;
    }
    for (int i = 0; i < 2 && *out == NULL; i++) {
        struct buf b;
        int fd;
        if (files[i] == NULL || access(files[i], F_OK) != 0)
            continue;
        if ((fd = open_private(files[i], "netrc file", err)) < 0)
            return -1;
        buf_init(&b, SECRET_MAX);
        if (slurp(fd, &b) == 0)
            *out = netrc_lookup(b.data, host, user);
        close(fd);
        buf_wipe(&b);
    }
    return 0;
}

/* Ask on the controlling terminal, echo off; nothing when there is none (cron). */
static int prompt(const char *host, const char *user, char **out, struct mc_err *err)
{
    struct termios old, quiet;
    struct buf b;
    char ch;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);

    if (fd < 0 || tcgetattr(fd, &old) < 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    /* Echo off before the prompt shows: what is typed after it must not be flushed. */
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    tcsetattr(fd, TCSAFLUSH, &quiet);
    dprintf(fd, "password for %s at %s: ", user ? user : "(no user)", host);
    buf_init(&b, SECRET_MAX);
    while (read(fd, &ch, 1) == 1 && ch != '\n' && ch != '\r')
        if (buf_addch(&b, ch) < 0)
            break;
    tcsetattr(fd, TCSANOW, &old);
    dprintf(fd, "\n");
    close(fd);
    mc_wipe(&ch, 1);
    if (b.len == 0) {
        buf_wipe(&b);
        return mc_err_set(err, MC_CONFIG, "no password given at the prompt");
    }
    *out = first_line(&b);
    return 0;
}

int secret_get(const struct account *a, const struct secret_ctx *x, char **out,
               struct mc_err *err)
{
    const char *v;

    *out = NULL;
    if ((v = conf_str(a, "password", NULL)) != NULL) {
        *out = mc_strdup(v);
        return 0;
    }
    if ((v = conf_str(a, "passwordeval", NULL)) != NULL)
        return secret_eval(v, x->timeout_s, out, err);
    if ((v = conf_str(a, "password_file", NULL)) != NULL)
        return read_file(v, out, err);
    if (x->fd >= 0)
        return secret_from_fd(x->fd, out, err);
    if (netrc_get(x->host, x->user, out, err) < 0 || *out != NULL)
        return *out ? 0 : -1;
    return x->may_prompt ? prompt(x->host, x->user, out, err) : 0;
}
