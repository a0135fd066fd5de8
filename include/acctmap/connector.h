/*
 * Connectors: one interface for every source type (CSV, CRMs, PostgreSQL).
 * A source yields batches of records until a batch comes back empty.
 */
#ifndef AM_CONNECTOR_H
#define AM_CONNECTOR_H

#include <stdbool.h>

#include "acctmap/config.h"
#include "acctmap/error.h"
#include "acctmap/record.h"

typedef struct am_connector_ops am_connector_ops;

/*
 * Where a source keeps what must outlive a run: a rotated OAuth refresh
 * token. `save` returns only once the value is durable, so that a crash
 * never loses the only valid token; `load` gives a malloc'd value or
 * AM_ENOTFOUND. `name` is [a-z0-9._-]. Both may be called from any thread.
 */
typedef struct am_secret_keeper {
    void *ctx;
    am_status (*load)(void *ctx, const char *name, char **value_out, am_error *err);
    am_status (*save)(void *ctx, const char *name, const char *value, am_error *err);
} am_secret_keeper;

/* What the run lends every source besides its config. Zeroed: none of it. */
typedef struct am_source_env {
    const am_secret_keeper *secrets; /* NULL: rotated tokens live only in memory */
    /* Stable per source across runs ("globex.0"): names its saved secrets. */
    const char *source_key;
    /*
     * Progress of a long pull (pages, records, waits): each line replaces the
     * one before, `done` ends the source's line. NULL: quiet. The library
     * never prints (STYLE.md); the CLI shows it when stderr is a terminal.
     * Called from worker threads; never given a secret.
     */
    void (*progress)(void *ctx, const char *line, bool done);
    void *progress_ctx;
} am_source_env;

/*
 * The state every source shares. A connector's own state struct begins with
 * this member, so an `am_source *` is also a pointer to it.
 */
typedef struct am_source {
    const am_connector_ops *ops;
    const am_source_config *cfg; /* borrowed from the config, outlives the source */
    char label[256];  /* what a person recognises: the CSV path, the CRM host */
    am_error last;    /* the last error, returned by last_error */
} am_source;

struct am_connector_ops {
    const char *type; /* the config "type": "csv", "hubspot", ... */

    /* Config fields the connector reads, NULL-terminated; others are refused. */
    const char *const *fields;

    /*
     * Called once per source before any batch. Validates the source's config,
     * opens files or connections. `env` (never NULL) is borrowed for the
     * source's life. On success *out is the caller's, to close;
     * on failure *out is NULL and err says what (AM_ECONFIG for config
     * mistakes, AM_EIO/AM_ENET/AM_EAUTH for an unreachable source).
     */
    am_status (*open)(am_source **out, const am_source_config *cfg, const am_source_env *env,
                      am_error *err);

    /*
     * Called until it returns AM_OK with batch->count == 0 and no rejects (end
     * of data). Resets `batch`, then fills it with records and rejected rows;
     * both stay valid until the next call or close. A failure that makes the
     * rest of the source unreadable returns non-zero; the run then fails.
     */
    am_status (*next_batch)(am_source *src, am_record_batch *batch, am_error *err);

    /* Release everything; NULL is a no-op. */
    void (*close)(am_source *src);

    /* The last error of this source, borrowed until the next call on it. */
    const am_error *(*last_error)(const am_source *src);
};

/* The connector for a config "type", or NULL. */
const am_connector_ops *am_connector_find(const char *type);

/* Comma-separated list of known types, for messages ("csv"). */
const char *am_connector_types(void);

/*
 * Find the connector for `cfg->type`, check the source's fields, and open it.
 * Errors are prefixed with `cfg->where`.
 */
am_status am_source_open(am_source **out, const am_source_config *cfg, const am_source_env *env,
                         am_error *err);
am_status am_source_next_batch(am_source *src, am_record_batch *batch, am_error *err);
void am_source_close(am_source *src);

#endif
