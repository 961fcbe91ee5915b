/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * libFuzzer target: a whole hostile server.  The input, cut at each 0xff
 * byte into replies, drives a full session (STARTTLS, AUTH PLAIN, one
 * message to two recipients) through the engine over a memory connection.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../unit/memconn.h"
#include "smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct msg the_msg;
static int msg_ready;

static void load_msg(void)
{
    static const char text[] = "Subject: fuzz\n\n.line\nbody\n";
    char path[] = "/tmp/mailcar-fuzz-XXXXXX";
    struct msg_opts o = {.set_date = MSG_OFF, .set_msgid = MSG_OFF, .set_from = MSG_OFF};
    struct mc_err err;
    int fd = mkstemp(path);

    if (fd < 0 || write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1))
        abort();
    unlink(path);
    lseek(fd, 0, SEEK_SET);
    if (msg_read(fd, &o, &the_msg, &err) < 0)
        abort();
    close(fd);
    msg_ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    const char *chunks[64];
    size_t n = 0;
    struct memconn mc;
    struct conn c;
    struct smtp_params p = {.helo = "fuzz.test", .tls = SMTP_TLS_STARTTLS, .auth = true,
                            .creds = {.user = "u", .secret = "p"}, .partial_delivery = true,
                            .chunking = true};
    struct smtp_rcpt rcpts[2] = {{.addr = "a@x.test"}, {.addr = "b@x.test"}};
    struct smtp_envelope env = {.from = "s@x.test", .rcpts = rcpts, .nrcpts = 2};
    struct smtp_session s;
    struct mc_err err;

    if (!msg_ready)
        load_msg();
    memcpy(copy, data, size);
    copy[size] = '\0';
    /* NUL bytes end a chunk early; that is fine, the parser sees what remains. */
    for (char *q = copy, *tok; n < 63 && (tok = strsep(&q, "\xff")) != NULL;)
        if (*tok)
            chunks[n++] = tok;
    chunks[n] = NULL;
    memconn_init(&mc, &c, chunks);
    smtp_init(&s, &c, &p);
    if (smtp_open(&s, &err) == 0) {
        s.quit_after = true;
        if (smtp_send(&s, &env, &the_msg, &err) == 0)
            smtp_quit(&s);
    }
    smtp_release(&s);
    buf_release(&mc.sent);
    free(copy);
    return 0;
}
