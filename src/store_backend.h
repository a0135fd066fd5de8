/*
 * Store backends: a run is a set of named parts (run.json, records, index);
 * src/store.c encodes them and a backend only keeps bytes. One ops struct
 * per backend: src/store_dir.c and src/store_pg.c.
 */
#ifndef AM_STORE_BACKEND_H
#define AM_STORE_BACKEND_H

#include <stddef.h>

#include "acctmap/error.h"
#include "acctmap/store.h"

typedef struct am_store_ops {
    const char *scheme; /* URI prefix: "dir:", "postgresql://" */

    /*
     * Called once by am_store_open with the URI after the scheme, the config's
     * directory and the schema (PostgreSQL; NULL: AM_STORE_SCHEMA_DEFAULT);
     * creates nothing.
     */
    am_status (*open)(void **state_out, const char *location, const char *base_dir,
                      const char *schema, am_error *err);
    /* What am_store_describe shows: never a password. NULL: the URI as written. */
    const char *(*describe)(const void *state);
    void (*close)(void *state);

    /* Create or migrate the layout; idempotent. */
    am_status (*init)(void *state, am_error *err);

    /* Committed run ids, oldest first; each id and the array are malloc'd. */
    am_status (*run_ids)(char ***ids_out, size_t *count_out, void *state, am_error *err);

    /*
     * A whole part of a committed run, malloc'd. AM_ENOTFOUND when the run or
     * the part does not exist.
     */
    am_status (*part_read)(char **data_out, size_t *len_out, void *state, const char *run_id,
                           const char *part, am_error *err);

    /* Start a hidden run: takes the store's lock. */
    am_status (*begin)(void **txn_out, void *state, am_error *err);
    /* Append bytes to a part of the hidden run (created on first append). */
    am_status (*part_append)(void *txn, const char *part, const void *data, size_t len,
                             am_error *err);
    /*
     * Make the run visible under `base_id`, or base_id.2, .3 ... if taken,
     * durably and atomically; the chosen id goes to `id_out`. Frees the txn.
     */
    am_status (*commit)(char id_out[AM_RUN_ID_MAX], void *txn, const char *base_id,
                        am_error *err);
    /* Drop the hidden run and release the lock; NULL is a no-op. */
    void (*abort)(void *txn);
    /*
     * What was appended so far to a part of the hidden run, malloc'd;
     * AM_ENOTFOUND when nothing was. Called between appends, never during one.
     */
    am_status (*part_read_pending)(char **data_out, size_t *len_out, void *txn,
                                   const char *part, am_error *err);

    /*
     * Secrets a source must keep between runs (rotated OAuth refresh tokens),
     * outside any run. `name` is checked by store.c ([a-z0-9._-]). load:
     * malloc'd value or AM_ENOTFOUND. save: durable and atomic before it
     * returns (a crash leaves the old value or the new one, never neither),
     * readable by the owner only. Called from several threads at once.
     */
    am_status (*secret_load)(char **value_out, void *state, const char *name, am_error *err);
    am_status (*secret_save)(void *state, const char *name, const char *value, am_error *err);
} am_store_ops;

extern const am_store_ops am_store_dir_ops;
extern const am_store_ops am_store_pg_ops;
extern const am_store_ops am_store_pg_short_ops; /* "postgres://" */

/*
 * Decoders of untrusted stored bytes, for store.c and the fuzz target.
 * run.json text -> am_run (AM_ESTORE naming `where` when it is not right);
 * a records part whose checksum was verified (its last 16 bytes cut off) ->
 * records, `expected` of them.
 */
am_status am_store__run_from_json(am_run **out, const char *text, size_t len,
                                  const char *where, am_error *err);
am_status am_store__records_decode(am_record_batch *out, const char *data, size_t len,
                                   uint64_t expected, const char *where, am_error *err);

/* True when `id` has the shape of a run id (no path tricks). */
bool am_store__valid_run_id(const char *id);

#endif
