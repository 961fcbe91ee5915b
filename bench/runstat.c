/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * bench/runstat: run a command N times (default 1), each with standard
 * input from FILE and standard output to /dev/null, and print one line per
 * run: wall seconds (CLOCK_MONOTONIC around fork to wait), user and system
 * CPU seconds and peak RSS in KiB (from wait4), and the exit status
 * (128+N for signal N).  Only the child is measured, not this wrapper.
 * A run still going after -t SECONDS (default 120) is killed: status 137.
 *
 * usage: runstat [-n N] [-i FILE] [-t SECONDS] -- COMMAND [ARG]...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile pid_t child;

static void on_alarm(int sig)
{
    (void)sig;
    if (child > 0)
        kill(child, SIGKILL);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double tv(struct timeval t)
{
    return (double)t.tv_sec + t.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    const char *input = "/dev/null";
    int ch, runs = 1, limit = 120;
    struct sigaction sa = {.sa_handler = on_alarm};

    while ((ch = getopt(argc, argv, "+n:i:t:")) != -1) {
        switch (ch) {
        case 'n':
            runs = atoi(optarg);
            break;
        case 'i':
            input = optarg;
            break;
        case 't':
            limit = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: runstat [-n N] [-i FILE] [-t SECONDS] -- COMMAND [ARG]...\n");
            return 2;
        }
    }
    if (optind >= argc)
        return 2;
    sigaction(SIGALRM, &sa, NULL);
    for (int i = 0; i < runs; i++) {
        int in = open(input, O_RDONLY), out = open("/dev/null", O_WRONLY), status;
        struct rusage ru;
        double t0, t1;
        pid_t pid;

        if (in < 0 || out < 0) {
            perror(input);
            return 1;
        }
        t0 = now();
        if ((pid = fork()) == 0) {
            dup2(in, 0), dup2(out, 1);
            close(in), close(out);
            execvp(argv[optind], argv + optind);
            perror(argv[optind]);
            _exit(127);
        }
        if (pid < 0) {
            perror("runstat");
            return 1;
        }
        child = pid;
        alarm((unsigned)limit);
        while (wait4(pid, &status, 0, &ru) < 0) {
            if (errno != EINTR) {
                perror("runstat");
                return 1;
            }
        }
        t1 = now();
        alarm(0);
        child = 0;
        close(in), close(out);
        printf("%.6f %.6f %.6f %ld %d\n", t1 - t0, tv(ru.ru_utime), tv(ru.ru_stime), ru.ru_maxrss,
               WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        fflush(stdout);
    }
    return 0;
}
