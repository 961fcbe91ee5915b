/*
 * mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
 *
 * Error classes and the single table that maps them to sysexits.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "err.h"

static const struct {
    int status;
    const char *name;
} class_table[MC_CLASS_MAX] = {
    [MC_OK] = {EX_OK, "ok"},
    [MC_USAGE] = {EX_USAGE, "usage"},
    [MC_DATAERR] = {EX_DATAERR, "data"},
    [MC_NOUSER] = {EX_NOUSER, "nouser"},
    [MC_NOHOST] = {EX_NOHOST, "nohost"},
    [MC_UNAVAIL] = {EX_UNAVAILABLE, "unavailable"},
    [MC_SOFTWARE] = {EX_SOFTWARE, "software"},
    [MC_OSERR] = {EX_OSERR, "oserr"},
    [MC_IOERR] = {EX_IOERR, "ioerr"},
    [MC_TEMPFAIL] = {EX_TEMPFAIL, "tempfail"},
    [MC_PROTOCOL] = {EX_PROTOCOL, "protocol"},
    [MC_NOPERM] = {EX_NOPERM, "noperm"},
    [MC_CONFIG] = {EX_CONFIG, "config"},
};

int mc_class_exit(enum mc_class cls)
{
    if ((unsigned)cls >= MC_CLASS_MAX)
        return EX_SOFTWARE;
    return class_table[cls].status;
}

const char *mc_class_name(enum mc_class cls)
{
    if ((unsigned)cls >= MC_CLASS_MAX)
        return "software";
    return class_table[cls].name;
}

static void err_vset(struct mc_err *err, enum mc_class cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void err_vset(struct mc_err *err, enum mc_class cls, const char *fmt, va_list ap)
{
    err->cls = cls;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int mc_err_set(struct mc_err *err, enum mc_class cls, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return -1;
    err->code = 0;
    err->esc[0] = '\0';
    va_start(ap, fmt);
    err_vset(err, cls, fmt, ap);
    va_end(ap);
    return -1;
}

int mc_err_reply(struct mc_err *err, enum mc_class cls, int code, const char *esc,
                 const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return -1;
    err->code = code;
    snprintf(err->esc, sizeof err->esc, "%s", esc ? esc : "");
    va_start(ap, fmt);
    err_vset(err, cls, fmt, ap);
    va_end(ap);
    return -1;
}

int mc_err_prefix(struct mc_err *err, const char *fmt, ...)
{
    char old[MC_ERR_MSG_MAX];
    size_t n, room;
    va_list ap;

    if (err == NULL)
        return -1;
    memcpy(old, err->msg, sizeof old);
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    n = strlen(err->msg);
    room = sizeof err->msg - n;
    /* The tail of a long message is lost here, never the head that names the failure. */
    if (room > 3) {
        memcpy(err->msg + n, ": ", 2);
        n += 2;
        room -= 2;
        memcpy(err->msg + n, old, strnlen(old, room - 1));
        err->msg[n + strnlen(old, room - 1)] = '\0';
    }
    return -1;
}

void mc_err_clear(struct mc_err *err)
{
    memset(err, 0, sizeof *err);
}
