/*
 * Run: one batch through every stage in order (the only module that knows
 * that order): pull every source, key and resolve every record, index,
 * intersect, commit to the store.
 */
#ifndef AM_RUN_H
#define AM_RUN_H

#include "acctmap/config.h"
#include "acctmap/error.h"
#include "acctmap/store.h"

/* Seconds spent in each stage of the last am_run_batch, for the summary and the benchmark. */
typedef struct am_run_timings {
    double read;    /* connectors: reading and parsing sources */
    double keys;    /* normalizing and hashing keys */
    double resolve; /* union-find and entity ids */
    double index;   /* bitmaps */
    double matrix;  /* every partner's matrix */
    double store;   /* writing records and committing */
    double reports; /* every partner's report, built before the commit */
} am_run_timings;

/* What a run tells while it works; every member may be NULL. */
typedef struct am_run_observer {
    void *ctx;
    /* A source's progress line (see am_source_env.progress); NULL: quiet. Any thread. */
    void (*on_source_progress)(void *ctx, const char *line, bool done);
    /* A row rejected or a value that could not become a key: one line, "file:line: ...". */
    void (*on_message)(void *ctx, const char *org, bool rejected, const char *line);
    /* A source was read to its end. */
    void (*on_source_done)(void *ctx, const char *org, const am_run_source *src);
} am_run_observer;

/*
 * Run the batch for `cfg` and commit it to `st`. On success *out is the
 * committed run (the caller frees it) with its id, counts and matrices, and
 * `timings` (may be NULL) says where the time went. On
 * failure nothing is committed and the previous runs are untouched; the error
 * names the source or the stage (AM_ECONFIG for config mistakes found while
 * opening sources, AM_EIO/AM_EINPUT/AM_ENET... for a source that cannot be
 * read, AM_EIO/AM_ESTORE for the store).
 */
am_status am_run_batch(am_run **out, am_run_timings *timings, const am_config *cfg,
                       am_store *st, const am_run_observer *obs, am_error *err);

#endif
