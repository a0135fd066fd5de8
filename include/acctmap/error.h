/*
 * Errors: one status enum for the whole library and a caller-owned error
 * record that carries a one-line message "where: what; what to do".
 */
#ifndef AM_ERROR_H
#define AM_ERROR_H

#include <stdbool.h>

#if defined(__GNUC__)
#define AM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define AM_PRINTF(f, a)
#endif

/* Append new codes at the end; never renumber (scripts may log them). */
typedef enum am_status {
    AM_OK = 0,
    AM_ENOMEM,    /* out of memory */
    AM_EINVAL,    /* invalid argument from a caller */
    AM_EUSAGE,    /* bad command line */
    AM_ECONFIG,   /* bad configuration file */
    AM_EINPUT,    /* bad input data (a CSV row, a page from a CRM) */
    AM_EIO,       /* a file or directory could not be read or written */
    AM_ENET,      /* network failure */
    AM_EHTTP,     /* unexpected HTTP answer */
    AM_EAUTH,     /* credentials refused */
    AM_ELIMIT,    /* a size or rate limit was reached */
    AM_ESTORE,    /* the store is unusable or corrupt */
    AM_ENOTFOUND, /* the thing asked for does not exist */
    AM_EINTERNAL  /* a bug in acctmap */
} am_status;

typedef struct am_error {
    am_status status;
    char msg[512];
} am_error;

/*
 * Record `status` and a printf-formatted one-line message in `err` (which may
 * be NULL). Never allocates. Returns `status` so callers can write
 * `return am_error_set(err, AM_EINPUT, "...")`.
 */
am_status am_error_set(am_error *err, am_status status, const char *fmt, ...) AM_PRINTF(3, 4);

/*
 * Put a prefix that only the caller knows (e.g. "source globex/csv: ") in
 * front of the callee's message, keeping its status. Does nothing for AM_OK.
 * Returns err->status.
 */
am_status am_error_prefix(am_error *err, const char *fmt, ...) AM_PRINTF(2, 3);

/* Reset `err` to AM_OK with an empty message. */
void am_error_clear(am_error *err);

/* Short stable name of a status ("AM_EINPUT"). Never NULL. */
const char *am_status_name(am_status status);

/*
 * Misuse by our own code is a bug. In debug and test builds (AM_DEBUG) a
 * failed assertion aborts; in release it sets AM_EINTERNAL in `err` and the
 * enclosing function returns that status.
 */
am_status am_error__assert_failed(am_error *err, const char *cond, const char *file, int line);

#define AM_ASSERT(cond, err)                                                          \
    do {                                                                              \
        if (!(cond)) {                                                                \
            return am_error__assert_failed((err), #cond, __FILE__, __LINE__);         \
        }                                                                             \
    } while (0)

#endif
