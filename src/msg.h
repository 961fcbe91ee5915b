/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * The message: read in full before any connection is made, checked,
 * normalised to CRLF, headers rewritten (Bcc removed, Date / Message-ID /
 * From added), recipients extracted for -t.  The header block lives in
 * memory (bounded).  The body stays where it is when the message is a
 * regular file (stdin redirected from one, --input): it is checked there and
 * converted to CRLF as it is read, so a large message is read twice and never
 * copied.  Any other input (a pipe) goes to an unlinked spool file.  Memory
 * stays flat whatever the size.  msg_reader produces the bytes to send, with
 * dot-stuffing for DATA when asked.
 */
#ifndef MC_MSG_H
#define MC_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "addr.h"
#include "buf.h"
#include "err.h"

#define MSG_HEADER_MAX (1024 * 1024)   /* total header block; larger is an error */

enum msg_tristate { MSG_AUTO = 0, MSG_ON, MSG_OFF };

struct msg_opts {
    bool dot_ends;            /* no -i: a line with a lone "." ends input */
    bool extract_rcpts;       /* -t */
    bool remove_bcc;          /* remove Bcc and Resent-Bcc (default true) */
    enum msg_tristate set_from;   /* AUTO: add From: when missing */
    enum msg_tristate set_date;   /* AUTO: add Date: when missing */
    enum msg_tristate set_msgid;  /* AUTO: add Message-ID: when missing */
    enum msg_tristate set_to;     /* ON: add "To: undisclosed-recipients:;" when no To/Cc */
    const char *from_addr;    /* envelope sender, for an added From: (NULL/"" = none) */
    const char *from_name;    /* -F / from_full_name, quoted or RFC 2047 encoded as needed */
    const char *domain;       /* right-hand side of generated Message-IDs */
    const char *tmpdir;       /* where the body spool goes (NULL: $TMPDIR or /tmp) */
    time_t now;               /* time for an added Date:, 0 = the current time (tests) */
};

/*
 * Where the body's octets are: [start, end) of fd.  Either a file of ours
 * holding CRLF lines as they will be sent (the spool, a queue file), or, in
 * place, the caller's own regular file as it was given (lines ending in LF
 * or CRLF), with what it looked like when checked: if it changes before the
 * last octet is read, reading fails rather than send something unchecked.
 */
struct msg_body {
    bool open;                /* false: no body (a zeroed struct msg has none) */
    int fd;
    off_t start, end;
    bool in_place;
    off_t file_size;          /* in place: the file's size and mtime when it was checked */
    struct timespec mtime;
};

struct msg {
    struct buf head;          /* final header block, CRLF lines, ending with the empty line */
    struct msg_body body;
    off_t body_size;          /* octets of the body as sent: CRLF lines, not dot-stuffed */
    bool eightbit;            /* a byte >= 0x80 anywhere */
    bool utf8_headers;        /* a byte >= 0x80 in the header block */
    bool mime;                /* the message has a MIME-Version header */
    bool qp_encoded;          /* the body was re-encoded as quoted-printable */
    bool body_eightbit;       /* a byte >= 0x80 in the body */
    struct addrlist rcpts;    /* with -t: recipients from the headers */
    char *header_from;        /* first address of From:, or NULL */
    char *message_id;         /* the Message-ID (given or added), or NULL */
    char *spool_dir;          /* where the body spool was made (for msg_downgrade_7bit) */
};

/*
 * Read a whole message from fd (a regular file is used in place from its
 * current offset: fd must stay unchanged until the message is sent; msg
 * keeps a duplicate of it).  Refuses (MC_DATAERR, naming the line number)
 * a bare CR, a NUL, a header line over 998 octets, a header block over
 * MSG_HEADER_MAX, a body line over 998 octets in a MIME message.  A line that
 * is not a header field ends the header block (it starts the body).  A
 * non-MIME message with a line over 998 octets is re-encoded as
 * quoted-printable.  Local I/O failures are MC_IOERR.  m needs no
 * initialisation; after a failure it holds nothing, and msg_free is safe
 * either way.  The flags describe the message as it will be sent: after a
 * re-encoding the body is 7-bit and mime is true.
 */
int msg_read(int fd, const struct msg_opts *o, struct msg *m, struct mc_err *err);

/*
 * Re-encode a non-MIME 8-bit message as quoted-printable for a server
 * without 8BITMIME (nothing to do, 0, when the body is 7-bit).  Returns -1
 * with MC_DATAERR for a MIME message with 8-bit content (it cannot be
 * converted safely here) and for 8-bit header fields (those need SMTPUTF8).
 */
int msg_downgrade_7bit(struct msg *m, struct mc_err *err);

/* Total octets msg_reader will produce. */
off_t msg_size(const struct msg *m);

/* Take fd, a file of ours holding size octets of CRLF lines, as m's body. */
void msg_set_body(struct msg *m, int fd, off_t size);

/* Sequential access to the message as sent (header block, then body). */
enum {
    MSG_RD_BODY = 1,          /* the body only */
    MSG_RD_STUFF = 2,         /* dot-stuffed for DATA (RFC 5321 4.5.2) */
};
struct msg_reader {
    const struct msg *m;
    unsigned flags;
    size_t head_off;
    off_t off;                /* next octet of the body's file: the file position is unused */
    off_t made;               /* body octets produced, stuffed dots not counted */
    bool bol;                 /* at the start of a line */
    bool cr;                  /* the last octet read was a CR */
    bool ended;
    char *raw;                /* read buffer, when the octets are changed on the way */
    char *chunk;              /* msg_reader_next's buffer */
    struct msg_ahead *ahead;  /* msg_reader_next's helper thread, for a large body */
};
void msg_reader_init(struct msg_reader *r, const struct msg *m, unsigned flags);
/*
 * Returns octets read into p (0 at the end) or -1: MC_IOERR when the file
 * cannot be read or (in place) changed since it was checked.  n >= 16.
 */
ssize_t msg_reader_read(struct msg_reader *r, char *p, size_t n, struct mc_err *err);
/*
 * The same in pieces of the reader's own: *p is the next piece, valid until
 * the next call; returns its length, 0 at the end or -1 as msg_reader_read.
 * For a large body a helper thread reads and converts ahead while the
 * caller sends, so the two overlap (use one reader per thread).
 */
ssize_t msg_reader_next(struct msg_reader *r, const char **p, struct mc_err *err);
/* Stops the helper if any, frees what the reader holds. */
void msg_reader_done(struct msg_reader *r);

/* Free everything and close the spool; m may be zeroed or already freed. */
void msg_free(struct msg *m);

#endif
