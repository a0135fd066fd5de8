/*
 * Overlap: a partner's matrix (our populations x theirs, in entities) by
 * bitmap intersection without materializing, and the record pairs of a cell.
 */
#ifndef AM_OVERLAP_H
#define AM_OVERLAP_H

#include <stddef.h>
#include <stdint.h>

#include "acctmap/error.h"
#include "acctmap/index.h"
#include "acctmap/record.h"

/* Row i = our population i, column j = their population j. Caller's storage. */
typedef struct am_matrix {
    size_t rows;
    size_t cols;
    uint64_t *cells; /* rows * cols, row-major; malloc'd */
} am_matrix;

/*
 * Open pipeline per cell, same shape as a matrix: cell (i, j) sums the
 * amounts, in cents, of our records that are in our population i and in our
 * `opportunities` population, and whose entity is in their population j.
 * Each of our records counts once per cell, however many of their records
 * it matches. `cents` is NULL when the run has no amounts. Caller's storage.
 */
typedef struct am_pipeline {
    size_t rows;
    size_t cols;
    int64_t *cents; /* rows * cols, row-major; malloc'd */
} am_pipeline;

/* Any population: every entity the org has. */
#define AM_POP_ANY (-1)

/*
 * Fill `out` with the matrix between org `ours` and org `theirs`. Free with
 * am_matrix_dispose.
 */
am_status am_overlap_matrix_compute(am_matrix *out, const am_index *ix, size_t ours,
                                    size_t theirs, am_error *err);
void am_matrix_dispose(am_matrix *m);

/*
 * Fill `out` with the open pipeline between org `ours` and org `theirs`:
 * `open_pop` is our opportunities population, `amount_cents[r]` the amount
 * of our record r (0 when it has none). Needs am_index_prepare_lookup on
 * `ours`. AM_ELIMIT when a cell's sum does not fit in 64 bits. Free with
 * am_pipeline_dispose.
 */
am_status am_overlap_pipeline_compute(am_pipeline *out, const am_index *ix, size_t ours,
                                      size_t theirs, size_t open_pop,
                                      const int64_t *amount_cents, am_error *err);
void am_pipeline_dispose(am_pipeline *p);

/* One cell's count, without allocation. */
uint64_t am_overlap_cell_count(const am_index *ix, size_t ours, size_t our_pop, size_t theirs,
                               size_t their_pop);

/* Entities `ours` and `theirs` share, whatever their populations. */
uint64_t am_overlap_org_count(const am_index *ix, size_t ours, size_t theirs);

/* One matched pair of records: our record, their record, the entity they are. */
typedef struct am_pair {
    uint32_t entity;
    uint32_t our_record;
    uint32_t their_record;
} am_pair;

/*
 * Every (our record, their record) pair of one entity, for the entities in
 * our population `our_pop` and their population `their_pop` (AM_POP_ANY:
 * no filter); only records in those populations are paired. Sorted by
 * entity, then records. `*out` is malloc'd, the caller frees it. Needs
 * am_index_prepare_lookup on both orgs.
 */
am_status am_overlap_cell_pairs(am_pair **out, size_t *count_out, const am_index *ix,
                                size_t ours, int our_pop, size_t theirs, int their_pop,
                                am_error *err);

/* A partner's record that is the same entity as one of ours. */
typedef struct am_target_match {
    size_t partner;        /* org index */
    uint32_t their_record; /* index into the partner's records */
} am_target_match;

/* One of our records and the partners that hold it. */
typedef struct am_target {
    uint32_t our_record;  /* index into our (org 0's) records */
    size_t partner_count; /* partners that hold it */
    size_t first;         /* its matches: matches[first, first + match_count) */
    size_t match_count;
} am_target;

typedef struct am_targets {
    am_target *items; /* ranked */
    size_t count;
    am_target_match *matches; /* per item, by partner (org order), then their record */
    size_t match_count;
} am_targets;

/*
 * The co-sell list: our records (org 0) in any population of `our_mask`,
 * ranked by how many partners hold their entity in any population of
 * `their_masks[org]` (one mask per org of the index; 0 leaves a partner
 * out), most first, then by id and source (`ours`: org 0's records, for
 * the ids). Records no partner holds are left out. Only their records in
 * those populations are listed. Needs am_index_prepare_lookup on every org.
 * Free with am_targets_free.
 */
am_status am_overlap_targets(am_targets **out, const am_index *ix, const am_record_batch *ours,
                             uint32_t our_mask, const uint32_t *their_masks, am_error *err);
void am_targets_free(am_targets *t);

/*
 * Every record of every partner (org 1 on) that is the same entity as our
 * record `our_record`, whatever its populations: by partner, then record.
 * `*out` is malloc'd (the caller frees it). Needs am_index_prepare_lookup
 * on every org.
 */
am_status am_overlap_record_matches(am_target_match **out, size_t *count_out,
                                    const am_index *ix, uint32_t our_record, am_error *err);

#endif
