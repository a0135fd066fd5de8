/*
 * Records: one company row as a source gave it, and the batches connectors
 * fill. Strings are borrowed from the batch's arena.
 */
#ifndef AM_RECORD_H
#define AM_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acctmap/arena.h"
#include "acctmap/error.h"

/* Populations are bits in a mask; an org has at most this many. */
#define AM_POPULATION_MAX 32
/* The standard populations always hold these bit positions. */
#define AM_POP_CUSTOMERS 0
#define AM_POP_PROSPECTS 1
#define AM_POP_OPPORTUNITIES 2
#define AM_POP_STANDARD_COUNT 3

/*
 * A record. Every string is non-NULL and NUL-terminated ("" when the source
 * had no value). `populations` has bit i set when the record belongs to the
 * org's population i (see am_config_org).
 */
typedef struct am_record {
    const char *id;
    const char *name;
    const char *domain; /* a domain or website, as written */
    const char *tax_id;
    const char *country;
    const char *city;
    const char *owner;
    int64_t amount_cents; /* valid when has_amount */
    bool has_amount;
    uint32_t populations;
    uint32_t line; /* 1-based line (or row) in the source; 0 when not applicable */
    /*
     * Position of the record's source in its org's `sources` (config order).
     * Set by the run, not by connectors: ids are unique only within a source,
     * so (source, id) names a record across runs.
     */
    uint32_t source;
} am_record;

/* A row a connector could not use: counted, reported, never silently dropped. */
typedef struct am_reject {
    uint32_t line;
    const char *msg; /* one line, "file:line: what; what to do", in the batch arena */
} am_reject;

/*
 * A batch of records, caller's storage. A connector's next_batch resets it and
 * fills it; the records, rejects and strings stay valid until the next
 * am_record_batch_reset or am_record_batch_dispose.
 */
typedef struct am_record_batch {
    am_record *records;
    size_t count;
    size_t capacity;
    am_reject *rejects;
    size_t reject_count;
    size_t reject_capacity;
    am_arena arena;
} am_record_batch;

void am_record_batch_init(am_record_batch *batch);
void am_record_batch_dispose(am_record_batch *batch);
void am_record_batch_reset(am_record_batch *batch);

/*
 * A new record at the end of the batch, every string set to "" and numbers to
 * 0. Borrowed until the next reset. AM_ENOMEM on allocation failure.
 */
am_status am_record_batch_push(am_record **out, am_record_batch *batch, am_error *err);

/* Record a rejected row with a printf-formatted message. */
am_status am_record_batch_reject(am_record_batch *batch, uint32_t line, am_error *err,
                                 const char *fmt, ...) AM_PRINTF(4, 5);

#endif
