/*
 * Errors: formatting of the caller-owned am_error. The bottom of the library:
 * every module reports through here, nothing here calls another module.
 */
#include "acctmap/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A message is one line whatever went into it (a JSON parser quoting the
 * input, a CSV value): control characters become spaces.
 */
static void keep_one_line(char *msg)
{
    for (; *msg; msg++) {
        if ((unsigned char)*msg < 0x20 || *msg == 0x7f) {
            *msg = ' ';
        }
    }
}

am_status am_error_set(am_error *err, am_status status, const char *fmt, ...)
{
    va_list ap;

    if (!err) {
        return status;
    }
    err->status = status;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    keep_one_line(err->msg);
    return status;
}

am_status am_error_prefix(am_error *err, const char *fmt, ...)
{
    char prefix[sizeof(err->msg)];
    size_t plen, mlen;
    va_list ap;

    if (!err || err->status == AM_OK) {
        return err ? err->status : AM_OK;
    }
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    plen = strlen(prefix);
    mlen = strlen(err->msg);
    if (plen > sizeof(err->msg) - 1) {
        plen = sizeof(err->msg) - 1;
    }
    if (mlen > sizeof(err->msg) - 1 - plen) {
        mlen = sizeof(err->msg) - 1 - plen; /* keep the prefix, cut the tail */
    }
    memmove(err->msg + plen, err->msg, mlen);
    memcpy(err->msg, prefix, plen);
    err->msg[plen + mlen] = '\0';
    keep_one_line(err->msg);
    return err->status;
}

void am_error_clear(am_error *err)
{
    if (err) {
        err->status = AM_OK;
        err->msg[0] = '\0';
    }
}

const char *am_status_name(am_status status)
{
    static const char *const names[] = {
        "AM_OK",     "AM_ENOMEM", "AM_EINVAL", "AM_EUSAGE",  "AM_ECONFIG",
        "AM_EINPUT", "AM_EIO",    "AM_ENET",   "AM_EHTTP",   "AM_EAUTH",
        "AM_ELIMIT", "AM_ESTORE", "AM_ENOTFOUND", "AM_EINTERNAL",
    };

    if ((unsigned)status < sizeof(names) / sizeof(names[0])) {
        return names[status];
    }
    return "AM_EUNKNOWN";
}

am_status am_error__assert_failed(am_error *err, const char *cond, const char *file, int line)
{
#ifdef AM_DEBUG
    (void)err;
    fprintf(stderr, "acctmap: assertion failed: %s (%s:%d)\n", cond, file, line);
    abort();
#else
    return am_error_set(err, AM_EINTERNAL, "%s:%d: internal error: %s; please report this bug",
                        file, line, cond);
#endif
}
