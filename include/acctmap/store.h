/*
 * Store: committed runs, immutable once written. `dir:PATH` (the embedded
 * default) keeps each run in its own directory, `postgresql://...` in a schema
 * of a PostgreSQL database; the backend is chosen by the store URI.
 */
#ifndef AM_STORE_H
#define AM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acctmap/arena.h"
#include "acctmap/error.h"
#include "acctmap/index.h"
#include "acctmap/overlap.h"
#include "acctmap/record.h"

typedef struct am_store am_store;
typedef struct am_run_writer am_run_writer;

#define AM_RUN_ID_MAX 40
#define AM_SECRET_NAME_MAX 128
/* The PostgreSQL schema a store lives in unless the config says otherwise. */
#define AM_STORE_SCHEMA_DEFAULT "acctmap"

/* One source of an org as it was read in a run. */
typedef struct am_run_source {
    const char *type;
    const char *label;       /* the CSV path, the CRM host */
    char fingerprint[33];    /* XXH3-128 of the records read, hex */
    uint64_t records;        /* records read */
    uint64_t rejected;       /* rows that could not be used */
    uint64_t warnings;       /* values that could not become keys */
} am_run_source;

typedef struct am_run_org {
    const char *id;
    const char *name;
    bool is_self;
    const char *populations[AM_POPULATION_MAX];
    size_t population_count;
    am_run_source *sources;
    size_t source_count;
    uint64_t records;
    uint64_t rejected;
    uint64_t warnings;
    uint64_t overlap; /* partners only: entities shared with self, any population */
    am_matrix matrix; /* partners only: ours (self's populations) x theirs */
    /*
     * Partners only: the open pipeline of each cell (see am_pipeline), same
     * shape as `matrix`. `pipeline.cents` is NULL when none of our
     * opportunities carries an amount, and in runs stored before amounts were.
     */
    am_pipeline pipeline;
} am_run_org;

/*
 * A run: what it read and what it found. Loaded from the store, or filled by
 * the batch before commit. Strings live in `arena`.
 */
typedef struct am_run {
    char id[AM_RUN_ID_MAX];  /* set by commit: "20261123T115000Z" (".2" ... if taken) */
    int64_t started_ms;      /* Unix time */
    int64_t finished_ms;
    uint32_t entity_count;
    uint64_t key_count;
    am_run_org *orgs;        /* self first */
    size_t org_count;
    am_arena arena;
} am_run;

/* A zeroed am_run with `org_count` zeroed orgs. */
am_status am_run_new(am_run **out, size_t org_count, am_error *err);
void am_run_free(am_run *run);
/* Index of the org with this id, or -1. */
int am_run_org_find(const am_run *run, const char *id);

/*
 * Open the store named by `uri` ("dir:PATH", relative to `base_dir`).
 * Creates nothing: reading verbs fail with AM_ENOTFOUND on an empty store;
 * am_store_init or the first commit creates it.
 */
am_status am_store_open(am_store **out, const char *uri, const char *base_dir, am_error *err);
/*
 * The same in a PostgreSQL schema (NULL: AM_STORE_SCHEMA_DEFAULT; ignored by
 * dir:). "env:NAME" for `uri` takes the URI from environment variable NAME.
 * A PostgreSQL store connects here: AM_ESTORE when the server cannot be
 * reached, AM_ECONFIG when the URI or the schema name is not right.
 */
am_status am_store_open_schema(am_store **out, const char *uri, const char *base_dir,
                               const char *schema, am_error *err);
void am_store_close(am_store *st);

/*
 * Where the store is, for messages ("dir:./acctmap-data",
 * "postgresql://user@host:5432/db"); never a password or a full connection string.
 */
const char *am_store_describe(const am_store *st);

/* Create or migrate the store's layout. Idempotent. */
am_status am_store_init(am_store *st, am_error *err);

/* Ids of committed runs, oldest first. Free with am_store_run_ids_free. */
am_status am_store_run_ids(char ***ids_out, size_t *count_out, am_store *st, am_error *err);
void am_store_run_ids_free(char **ids, size_t count);

/*
 * Load run `id` (NULL: the latest). AM_ENOTFOUND when there is no such run
 * (or none at all); AM_ESTORE when it is damaged.
 */
am_status am_store_run_load(am_run **out, am_store *st, const char *id, am_error *err);

/* The run's index (bitmaps checked against their checksums before use). */
am_status am_store_run_load_index(am_index **out, am_store *st, const am_run *run,
                                  am_error *err);

/* The records of org `org` of the run, in the order the index numbers them. */
am_status am_store_run_load_records(am_record_batch *out, am_store *st, const am_run *run,
                                    size_t org, am_error *err);

/*
 * The same, lighter: only each record's id, source, line, populations and
 * amount; every other string is "".
 */
am_status am_store_run_load_record_ids(am_record_batch *out, am_store *st, const am_run *run,
                                       size_t org, am_error *err);

/*
 * Writing a run: begin (takes the store's lock, creates a hidden temporary
 * run), add records and messages as they come, then commit (makes it visible
 * atomically) or abort. Nothing is visible to readers before commit.
 */
am_status am_store_run_begin(am_run_writer **out, am_store *st, am_error *err);
/* Append records of org `org` (in index order). */
am_status am_run_writer_add_records(am_run_writer *w, size_t org, const am_record *records,
                                    size_t count, am_error *err);
/*
 * The records of org `org` written so far (in index order), ids only as
 * am_store_run_load_record_ids gives them: for what must be built from the
 * run before it is published (partners' reports), without keeping them.
 */
am_status am_run_writer_load_record_ids(am_record_batch *out, am_run_writer *w, size_t org,
                                        am_error *err);
/* Append a line to the run's messages (rejected rows, warnings). */
am_status am_run_writer_add_message(am_run_writer *w, const char *line, am_error *err);
/*
 * Add a part of the run's own (a partner's report) under `part`: [a-z0-9._-],
 * not starting with '.', and not a name the store uses itself (run.json,
 * messages.txt, records-*, entities-*, bitmaps-*). Appends when called again.
 */
am_status am_run_writer_add_part(am_run_writer *w, const char *part, const void *data,
                                 size_t len, am_error *err);
/*
 * Write the index and the run, then publish it; sets run->id. The writer is
 * freed whatever the outcome.
 */
am_status am_store_run_commit(am_run_writer *w, am_run *run, const am_index *ix,
                              am_error *err);
/* Drop the temporary run; NULL is a no-op. */
void am_run_writer_abort(am_run_writer *w);

/*
 * Secrets kept between runs, outside any run: a source's rotated OAuth
 * refresh token. `name` is [a-z0-9._-], at most AM_SECRET_NAME_MAX bytes. Load gives a
 * malloc'd value, or AM_ENOTFOUND when none was saved; save replaces it
 * durably and atomically before it returns. Never written to a run, a
 * message or a report. Safe to call from several threads.
 */
am_status am_store_secret_load(char **value_out, am_store *st, const char *name, am_error *err);
am_status am_store_secret_save(am_store *st, const char *name, const char *value, am_error *err);

/*
 * A part added with am_run_writer_add_part, malloc'd and NUL-terminated.
 * AM_ENOTFOUND when the run has no such part.
 */
am_status am_store_run_part(char **data_out, size_t *len_out, am_store *st, const am_run *run,
                            const char *part, am_error *err);

/* The messages of a run (rejected rows, warnings), one per line; malloc'd. */
am_status am_store_run_messages(char **text_out, size_t *len_out, am_store *st,
                                const am_run *run, am_error *err);

#endif
