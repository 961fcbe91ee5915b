/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * bench/delay: a TCP relay on loopback that holds every chunk of data for
 * MS milliseconds in each direction, a user-space stand-in for netem when
 * the kernel has no sch_netem.  A client talking through it sees a
 * round-trip time of 2 x MS on every exchange.
 *
 * It also counts round trips the way the client lives them: a server
 * flight that reaches the client after the client last sent something,
 * and before the client hung up, is one wait.  One line per connection
 * goes to the log (-L): waits, bytes each way, seconds.
 *
 * usage: delay -t TARGETPORT [-d MS] [-L LOGFILE]; prints "ready PORT".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#define CHUNK (64 * 1024)

struct item { /* len 0: the sender's end of stream */
    struct item *next;
    double due;
    size_t len;
    char data[];
};

struct queue {
    struct item *head, *tail;
    bool eof_in; /* the source has ended (its EOF is queued) */
};

static int target_port, log_fd = 2;
static double delay_s = 0.025;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void push(struct queue *q, const char *p, size_t n)
{
    struct item *it = malloc(sizeof(*it) + n);

    if (!it)
        abort();
    it->next = NULL, it->due = now() + delay_s, it->len = n;
    memcpy(it->data, p, n);
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r, n -= (size_t)r;
    }
    return true;
}

/* Deliver what is due from q to fd; returns false when fd failed. */
static bool deliver(struct queue *q, int fd, bool *delivered, bool *closed)
{
    double t = now();

    while (q->head && q->head->due <= t) {
        struct item *it = q->head;
        if (it->len == 0) {
            shutdown(fd, SHUT_WR);
            *closed = true;
        } else if (!write_all(fd, it->data, it->len)) {
            return false;
        } else {
            *delivered = true;
        }
        q->head = it->next;
        if (!q->head)
            q->tail = NULL;
        free(it);
    }
    return true;
}

static void *relay(void *arg)
{
    int cfd = (int)(long)arg, sfd, one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)target_port)};
    struct queue up = {0}, down = {0}; /* up: client to server */
    unsigned waits = 0;
    bool client_spoke = true, client_gone = false, up_closed = false, down_closed = false;
    unsigned long long nup = 0, ndown = 0;
    double t0 = now();
    char buf[CHUNK], line[256];

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((sfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        connect(sfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(cfd);
        return NULL;
    }
    setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    while (!(up_closed && down_closed)) {
        struct pollfd p[2] = {{.fd = up.eof_in ? -1 : cfd, .events = POLLIN},
                              {.fd = down.eof_in ? -1 : sfd, .events = POLLIN}};
        double due = 1e30;
        int timeout = -1;
        if (up.head)
            due = up.head->due;
        if (down.head && down.head->due < due)
            due = down.head->due;
        if (due < 1e30) {
            double w = (due - now()) * 1000;
            timeout = w <= 0 ? 0 : (int)w + 1;
        }
        if (poll(p, 2, timeout) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            struct queue *q = i == 0 ? &up : &down;
            ssize_t n;
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            n = read(p[i].fd, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                q->eof_in = true;
                push(q, buf, 0);
                if (i == 0)
                    client_gone = true;
                continue;
            }
            push(q, buf, (size_t)n);
            if (i == 0)
                client_spoke = true, nup += (unsigned long long)n;
            else
                ndown += (unsigned long long)n;
        }
        bool got = false;
        if (!deliver(&up, sfd, &(bool){false}, &up_closed) ||
            !deliver(&down, cfd, &got, &down_closed))
            break;
        if (got && client_spoke && !client_gone)
            waits++, client_spoke = false;
    }
    for (struct queue *q = &up; q; q = q == &up ? &down : NULL)
        while (q->head) {
            struct item *it = q->head;
            q->head = it->next;
            free(it);
        }
    close(sfd);
    close(cfd);
    int n = snprintf(line, sizeof(line), "waits=%u up=%llu down=%llu secs=%.6f\n", waits, nup,
                     ndown, now() - t0);
    if (write(log_fd, line, (size_t)n) != n)
        perror("delay: log");
    return NULL;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int ch, lfd, one = 1;

    while ((ch = getopt(argc, argv, "t:d:L:")) != -1) {
        switch (ch) {
        case 't':
            target_port = atoi(optarg);
            break;
        case 'd':
            delay_s = atof(optarg) / 1000;
            break;
        case 'L':
            if ((log_fd = open(optarg, O_WRONLY | O_CREAT | O_APPEND, 0644)) < 0) {
                perror("delay: log");
                return 1;
            }
            break;
        default:
            fprintf(stderr, "usage: delay -t TARGETPORT [-d MS] [-L LOGFILE]\n");
            return 2;
        }
    }
    if (target_port <= 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) {
        perror("delay");
        return 1;
    }
    printf("ready %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        pthread_t t;
        if (fd < 0)
            continue;
        if (pthread_create(&t, NULL, relay, (void *)(long)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
}
