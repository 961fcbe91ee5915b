/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * `mailcar --import FILE`: the configuration of another sendmail-compatible
 * client turned into mailcar's.  Four sources:
 *   msmtp       ~/.msmtprc, /etc/msmtprc (the same syntax: copied, with the
 *               keys mailcar cannot honour commented out);
 *   ssmtp       /etc/ssmtp/ssmtp.conf, and revaliases beside it;
 *   dma         /etc/dma/dma.conf, and its auth.conf (AUTHPATH, else beside it);
 *   nullmailer  the /etc/nullmailer/ folder: remotes, me, defaultdomain,
 *               defaulthost, adminaddr.
 * What has no equivalent becomes a `#` comment saying why.  The converters
 * are pure functions over NUL-terminated text; only import_path reads files.
 */
#ifndef MC_IMPORT_H
#define MC_IMPORT_H

#include <stdio.h>

#include "buf.h"
#include "err.h"

enum import_format {
    IMPORT_UNKNOWN,
    IMPORT_MSMTP,
    IMPORT_SSMTP,
    IMPORT_DMA,
    IMPORT_NULLMAILER,
};

/* Largest file read by import_path. */
#define IMPORT_MAX_SIZE (1u << 20)

/* The texts of one source; NULL for a file that is absent. */
struct import_input {
    const char *name;           /* shown in the header comment */
    const char *text;           /* msmtprc, ssmtp.conf, dma.conf, nullmailer remotes */
    const char *aux;            /* ssmtp revaliases, dma auth.conf */
    const char *aux_name;
    const char *me, *defaultdomain, *defaulthost, *adminaddr;   /* nullmailer */
};

const char *import_format_name(enum import_format f);
/* By file name first (msmtprc, ssmtp.conf, dma.conf, remotes), then by content. */
enum import_format import_detect(const char *name, const char *text);
/* dma: the AUTHPATH value of a dma.conf, or NULL (a new string). */
char *import_dma_authpath(const char *text);

/* Append the mailcar configuration for `in` to out.  -1 (MC_CONFIG) when
 * nothing can be made of it. */
int import_convert(enum import_format f, const struct import_input *in, struct buf *out,
                   struct mc_err *err);

/* Read PATH (a file, or nullmailer's folder) and the files beside it,
 * detect the format and convert.  MC_IOERR when it cannot be read. */
int import_path(const char *path, struct buf *out, struct mc_err *err);
/* import_path, written to out (for send_run; MC_IOERR when writing fails). */
int import_print(const char *path, FILE *out, struct mc_err *err);

#endif
