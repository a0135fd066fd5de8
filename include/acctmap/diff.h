/*
 * Diff: what changed between two stored runs, partner by partner and cell by
 * cell. Entity ids are per run, so a matched pair is named by its records'
 * (source, id) on both sides: our record and the partner's record.
 */
#ifndef AM_DIFF_H
#define AM_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acctmap/arena.h"
#include "acctmap/error.h"
#include "acctmap/store.h"

/* A partner of either run, with its pairs gained and lost in any population. */
typedef struct am_diff_partner {
    const char *partner; /* org id */
    const char *name;
    bool in_a;           /* the partner took part in run A */
    bool in_b;
    uint64_t gained;     /* pairs matched in run B and not in run A, whatever their cell */
    uint64_t lost;       /* pairs matched in run A and not in run B */
} am_diff_partner;

/* One cell (our population, their population) of a partner in either run. */
typedef struct am_diff_cell {
    size_t partner;      /* index into am_diff.partners */
    const char *ours;    /* our population */
    const char *theirs;  /* their population */
    uint64_t gained;     /* pairs in this cell in run B and not in run A */
    uint64_t lost;
    bool has_pipeline_a; /* run A has this cell and amounts (see am_pipeline) */
    bool has_pipeline_b;
    int64_t pipeline_a_cents;
    int64_t pipeline_b_cents;
} am_diff_cell;

/* One pair of records that entered or left a cell. */
typedef struct am_diff_change {
    size_t cell;         /* index into am_diff.cells */
    bool gained;         /* false: lost */
    uint32_t our_source; /* position of the record's source in our org's sources */
    const char *our_id;
    const char *our_name;
    uint32_t their_source;
    const char *their_id;
    const char *their_name;
    /* Our record is an open opportunity with an amount (in the run that has the pair). */
    bool has_open_amount;
    int64_t open_amount_cents;
} am_diff_change;

typedef struct am_diff {
    am_diff_partner *partners; /* run B's partners in its order, then those only in run A */
    size_t partner_count;
    am_diff_cell *cells;       /* by partner; our populations, then theirs, in run B's order */
    size_t cell_count;
    am_diff_change *changes;   /* by cell, then our id and source, then theirs */
    size_t change_count;
    am_arena arena;            /* every string above */
} am_diff;

/*
 * Compare run `a` with run `b` of store `st` (the runs, as am_store_run_load
 * gave them, may be freed afterwards). With `counts_only`, only the
 * partners' gained and lost counts are filled (no cells, no changes). Runs
 * written before records carried their source count every record as source
 * 0. AM_ESTORE when a run is damaged. Free with am_diff_free.
 */
am_status am_diff_runs(am_diff **out, am_store *st, const am_run *a, const am_run *b,
                       bool counts_only, am_error *err);
void am_diff_free(am_diff *d);

#endif
