/*
 * Diff: compares two stored runs after the store (it reads both runs' index
 * and records). Each run's matched pairs of a cell are listed with overlap,
 * named by (source, id) on both sides, sorted, and merged: a pair only in
 * run B is gained, only in run A lost. Pairs sort by a hash of each side's
 * (source, id) first (ids are compared only when hashes tie): sorting millions
 * of pairs by their id strings was most of a diff's time.
 */
#include "acctmap/diff.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "acctmap/index.h"
#include "acctmap/overlap.h"
#include "internal.h"

/* A matched pair named the way runs can be compared. */
typedef struct pair_id {
    uint64_t our_hash; /* of (source, id): orders the lists; ties compare the ids */
    uint64_t their_hash;
    const char *our_id;
    const char *their_id;
    uint32_t our_source;
    uint32_t their_source;
    uint32_t our_record; /* index into the run's records, for names and amounts */
    uint32_t their_record;
} pair_id;

/* One run as the diff reads it: its index, our records and one partner's. */
typedef struct side {
    const am_run *run;
    am_index *ix;
    am_record_batch ours;
    am_record_batch theirs;
    uint64_t *our_hash; /* per record of ours: hash of (source, id) */
    uint64_t *their_hash;
    int partner; /* org index of the current partner in this run, or -1 */
    bool ids_only; /* records loaded without names (counts only) */
} side;

static uint64_t *hash_records(const am_record_batch *b)
{
    uint64_t *h = malloc((b->count ? b->count : 1) * sizeof(*h));
    size_t i;

    for (i = 0; h && i < b->count; i++) {
        h[i] = XXH3_64bits_withSeed(b->records[i].id, strlen(b->records[i].id),
                                    b->records[i].source);
    }
    return h;
}

static int compare_pair(const void *pa, const void *pb)
{
    const pair_id *a = pa, *b = pb;
    int c;

    if (a->our_hash != b->our_hash) {
        return a->our_hash < b->our_hash ? -1 : 1;
    }
    if (a->their_hash != b->their_hash) {
        return a->their_hash < b->their_hash ? -1 : 1;
    }
    c = strcmp(a->our_id, b->our_id);

    if (c) {
        return c;
    }
    if (a->our_source != b->our_source) {
        return a->our_source < b->our_source ? -1 : 1;
    }
    c = strcmp(a->their_id, b->their_id);
    if (c) {
        return c;
    }
    if (a->their_source != b->their_source) {
        return a->their_source < b->their_source ? -1 : 1;
    }
    return 0;
}

/*
 * The pairs of one cell of `s` (AM_POP_ANY: every population), sorted and
 * without repeats (a source may repeat an id). Missing population: none.
 */
static am_status list_pairs(pair_id **out, size_t *count_out, side *s, int our_pop,
                            int their_pop, am_error *err)
{
    am_pair *pairs = NULL;
    pair_id *ids = NULL;
    size_t n = 0, i, kept = 0;
    am_status rc;

    *out = NULL;
    *count_out = 0;
    if (s->partner < 0) {
        return AM_OK;
    }
    rc = am_overlap_cell_pairs(&pairs, &n, s->ix, 0, our_pop, (size_t)s->partner, their_pop,
                               err);
    if (rc) {
        return rc;
    }
    ids = malloc((n ? n : 1) * sizeof(*ids));
    if (!ids) {
        free(pairs);
        return am_error_set(err, AM_ENOMEM, "out of memory comparing %zu pairs", n);
    }
    for (i = 0; i < n; i++) {
        const am_record *o = &s->ours.records[pairs[i].our_record];
        const am_record *t = &s->theirs.records[pairs[i].their_record];
        ids[i] = (pair_id){s->our_hash[pairs[i].our_record],
                           s->their_hash[pairs[i].their_record], o->id, t->id, o->source,
                           t->source, pairs[i].our_record, pairs[i].their_record};
    }
    free(pairs);
    if (n > 1) { /* ids may be NULL when n is 0; qsort(NULL, 0) is undefined */
        qsort(ids, n, sizeof(*ids), compare_pair);
    }
    for (i = 0; i < n; i++) {
        if (kept == 0 || compare_pair(&ids[kept - 1], &ids[i]) != 0) {
            ids[kept++] = ids[i];
        }
    }
    *out = ids;
    *count_out = kept;
    return AM_OK;
}

static int find_population(const am_run_org *o, const char *name)
{
    size_t i;

    for (i = 0; i < o->population_count; i++) {
        if (strcmp(o->populations[i], name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* ---- growing the result -------------------------------------------------- */

static am_status grow(void **items, size_t *cap, size_t count, size_t size, am_error *err)
{
    void *grown;
    size_t n;

    if (count < *cap) {
        return AM_OK;
    }
    n = *cap ? *cap * 2 : 16;
    grown = realloc(*items, n * size);
    if (!grown) {
        return am_error_set(err, AM_ENOMEM, "out of memory listing %zu changes", n);
    }
    *items = grown;
    *cap = n;
    return AM_OK;
}

typedef struct builder {
    am_diff *d;
    size_t partner_cap;
    size_t cell_cap;
    size_t change_cap;
} builder;

static const char *keep(builder *b, const char *s, am_error *err)
{
    char *copy = am_arena_strndup(&b->d->arena, s, strlen(s));

    if (!copy) {
        am_error_set(err, AM_ENOMEM, "out of memory comparing runs");
    }
    return copy;
}

static am_status add_change(builder *b, size_t cell, bool gained, const side *s,
                            const pair_id *p, am_error *err)
{
    am_diff *d = b->d;
    const am_record *o = &s->ours.records[p->our_record];
    const am_record *t = &s->theirs.records[p->their_record];
    am_diff_change *c;
    am_status rc = grow((void **)&d->changes, &b->change_cap, d->change_count, sizeof(*c), err);

    if (rc) {
        return rc;
    }
    c = &d->changes[d->change_count];
    memset(c, 0, sizeof(*c));
    c->cell = cell;
    c->gained = gained;
    c->our_source = o->source;
    c->their_source = t->source;
    c->our_id = keep(b, o->id, err);
    c->our_name = keep(b, o->name, err);
    c->their_id = keep(b, t->id, err);
    c->their_name = keep(b, t->name, err);
    if (!c->our_id || !c->our_name || !c->their_id || !c->their_name) {
        return AM_ENOMEM;
    }
    c->has_open_amount = o->has_amount &&
                         (o->populations & ((uint32_t)1 << AM_POP_OPPORTUNITIES)) != 0;
    c->open_amount_cents = c->has_open_amount ? o->amount_cents : 0;
    d->change_count++;
    return AM_OK;
}

/*
 * Merge two sorted pair lists. Counts what only one side has; with `cell`
 * (not SIZE_MAX) also records each such pair as a change of that cell.
 */
static am_status merge(uint64_t *gained, uint64_t *lost, builder *b, size_t cell,
                       const side *sa, const pair_id *a, size_t na, const side *sb,
                       const pair_id *pb, size_t nb, am_error *err)
{
    size_t i = 0, j = 0;
    am_status rc = AM_OK;

    *gained = *lost = 0;
    while (!rc && (i < na || j < nb)) {
        int c = i == na ? 1 : j == nb ? -1 : compare_pair(&a[i], &pb[j]);
        if (c == 0) {
            i++;
            j++;
        } else if (c < 0) {
            (*lost)++;
            if (cell != SIZE_MAX) {
                rc = add_change(b, cell, false, sa, &a[i], err);
            }
            i++;
        } else {
            (*gained)++;
            if (cell != SIZE_MAX) {
                rc = add_change(b, cell, true, sb, &pb[j], err);
            }
            j++;
        }
    }
    return rc;
}

/* ---- loading ---------------------------------------------------------------- */

static am_status load_org(am_record_batch *out, uint64_t **hash_out, side *s, am_store *st,
                          size_t org, am_error *err)
{
    am_status rc = s->ids_only ? am_store_run_load_record_ids(out, st, s->run, org, err)
                               : am_store_run_load_records(out, st, s->run, org, err);

    free(*hash_out);
    *hash_out = NULL;
    if (!rc) {
        *hash_out = hash_records(out);
        if (!*hash_out) {
            rc = am_error_set(err, AM_ENOMEM, "out of memory comparing runs");
        }
    }
    return rc;
}

static am_status side_open(side *s, am_store *st, const am_run *run, bool ids_only,
                           am_error *err)
{
    am_status rc;

    s->run = run;
    s->ids_only = ids_only;
    s->partner = -1;
    am_record_batch_init(&s->ours);
    am_record_batch_init(&s->theirs);
    rc = am_store_run_load_index(&s->ix, st, run, err);
    if (!rc) {
        rc = am_index_prepare_lookup(s->ix, 0, err);
    }
    if (!rc) {
        rc = load_org(&s->ours, &s->our_hash, s, st, 0, err);
    }
    return rc;
}

static void side_close(side *s)
{
    am_index_free(s->ix);
    am_record_batch_dispose(&s->ours);
    am_record_batch_dispose(&s->theirs);
    free(s->our_hash);
    free(s->their_hash);
}

/* Make `id` the current partner of `s` (-1 when the run does not have it). */
static am_status side_partner(side *s, am_store *st, const char *id, am_error *err)
{
    int p = am_run_org_find(s->run, id);
    am_status rc;

    s->partner = -1;
    am_record_batch_reset(&s->theirs);
    if (p <= 0) {
        return AM_OK;
    }
    rc = am_index_prepare_lookup(s->ix, (size_t)p, err);
    if (!rc) {
        rc = load_org(&s->theirs, &s->their_hash, s, st, (size_t)p, err);
    }
    if (!rc) {
        s->partner = p;
    }
    return rc;
}

/* ---- cells ------------------------------------------------------------------ */

static void cell_pipeline(bool *has, int64_t *cents, const side *s, int our_pop, int their_pop)
{
    const am_pipeline *p;

    *has = false;
    *cents = 0;
    if (s->partner < 0 || our_pop < 0 || their_pop < 0) {
        return;
    }
    p = &s->run->orgs[s->partner].pipeline;
    if (p->cents && (size_t)our_pop < p->rows && (size_t)their_pop < p->cols) {
        *has = true;
        *cents = p->cents[(size_t)our_pop * p->cols + (size_t)their_pop];
    }
}

/* Changes of a cell are listed by our id and source, then theirs: what people read. */
static int compare_change(const void *pa, const void *pb)
{
    const am_diff_change *a = pa, *b = pb;
    int c = strcmp(a->our_id, b->our_id);

    if (c) {
        return c;
    }
    if (a->our_source != b->our_source) {
        return a->our_source < b->our_source ? -1 : 1;
    }
    c = strcmp(a->their_id, b->their_id);
    if (c) {
        return c;
    }
    if (a->their_source != b->their_source) {
        return a->their_source < b->their_source ? -1 : 1;
    }
    return (int)a->gained - (int)b->gained;
}

static am_status diff_cell(builder *b, size_t partner, side *sa, side *sb, const char *ours,
                           const char *theirs, am_error *err)
{
    am_diff *d = b->d;
    int oa = find_population(&sa->run->orgs[0], ours);
    int ob = find_population(&sb->run->orgs[0], ours);
    int ta = sa->partner > 0 ? find_population(&sa->run->orgs[sa->partner], theirs) : -1;
    int tb = sb->partner > 0 ? find_population(&sb->run->orgs[sb->partner], theirs) : -1;
    pair_id *la = NULL, *lb = NULL;
    size_t na = 0, nb = 0, index = d->cell_count, first_change = d->change_count;
    am_diff_cell *cell;
    am_status rc;

    rc = grow((void **)&d->cells, &b->cell_cap, d->cell_count, sizeof(*cell), err);
    if (rc) {
        return rc;
    }
    cell = &d->cells[index];
    memset(cell, 0, sizeof(*cell));
    cell->partner = partner;
    cell->ours = keep(b, ours, err);
    cell->theirs = keep(b, theirs, err);
    if (!cell->ours || !cell->theirs) {
        return AM_ENOMEM;
    }
    d->cell_count++;
    cell_pipeline(&cell->has_pipeline_a, &cell->pipeline_a_cents, sa, oa, ta);
    cell_pipeline(&cell->has_pipeline_b, &cell->pipeline_b_cents, sb, ob, tb);
    if (oa >= 0 && ta >= 0) {
        rc = list_pairs(&la, &na, sa, oa, ta, err);
    }
    if (!rc && ob >= 0 && tb >= 0) {
        rc = list_pairs(&lb, &nb, sb, ob, tb, err);
    }
    if (!rc) {
        uint64_t gained, lost;
        rc = merge(&gained, &lost, b, index, sa, la, na, sb, lb, nb, err);
        d->cells[index].gained = gained;
        d->cells[index].lost = lost;
        if (d->change_count > first_change) {
            qsort(d->changes + first_change, d->change_count - first_change,
                  sizeof(*d->changes), compare_change);
        }
    }
    free(la);
    free(lb);
    return rc;
}

/* The names of our populations (or the partner's) in run B, then those only in run A. */
static size_t population_union(const char **out, const am_run_org *b, const am_run_org *a)
{
    size_t n = 0, i;

    for (i = 0; b && i < b->population_count; i++) {
        out[n++] = b->populations[i];
    }
    for (i = 0; a && i < a->population_count; i++) {
        if (!b || find_population(b, a->populations[i]) < 0) {
            out[n++] = a->populations[i];
        }
    }
    return n;
}

static am_status diff_partner(builder *b, am_store *st, side *sa, side *sb, const char *id,
                              bool counts_only, am_error *err)
{
    am_diff *d = b->d;
    size_t index = d->partner_count, i, j, n_ours, n_theirs;
    const char *ours[2 * AM_POPULATION_MAX], *theirs[2 * AM_POPULATION_MAX];
    const am_run_org *org_a, *org_b;
    pair_id *la = NULL, *lb = NULL;
    size_t na = 0, nb = 0;
    am_diff_partner *p;
    am_status rc;

    rc = grow((void **)&d->partners, &b->partner_cap, d->partner_count, sizeof(*p), err);
    if (!rc) {
        rc = side_partner(sa, st, id, err);
    }
    if (!rc) {
        rc = side_partner(sb, st, id, err);
    }
    if (rc) {
        return rc;
    }
    org_a = sa->partner > 0 ? &sa->run->orgs[sa->partner] : NULL;
    org_b = sb->partner > 0 ? &sb->run->orgs[sb->partner] : NULL;
    p = &d->partners[index];
    memset(p, 0, sizeof(*p));
    p->partner = keep(b, id, err);
    p->name = keep(b, org_b ? org_b->name : org_a->name, err);
    if (!p->partner || !p->name) {
        return AM_ENOMEM;
    }
    p->in_a = org_a != NULL;
    p->in_b = org_b != NULL;
    d->partner_count++;

    /* A pair that only moved to another cell is not new: counted in any population. */
    rc = list_pairs(&la, &na, sa, AM_POP_ANY, AM_POP_ANY, err);
    if (!rc) {
        rc = list_pairs(&lb, &nb, sb, AM_POP_ANY, AM_POP_ANY, err);
    }
    if (!rc) {
        rc = merge(&d->partners[index].gained, &d->partners[index].lost, b, SIZE_MAX, sa, la,
                   na, sb, lb, nb, err);
    }
    free(la);
    free(lb);
    if (rc || counts_only) {
        return rc;
    }
    n_ours = population_union(ours, &sb->run->orgs[0], &sa->run->orgs[0]);
    n_theirs = population_union(theirs, org_b, org_a);
    for (i = 0; !rc && i < n_ours; i++) {
        for (j = 0; !rc && j < n_theirs; j++) {
            rc = diff_cell(b, index, sa, sb, ours[i], theirs[j], err);
        }
    }
    return rc;
}

am_status am_diff_runs(am_diff **out, am_store *st, const am_run *a, const am_run *b,
                       bool counts_only, am_error *err)
{
    builder bld = {NULL, 0, 0, 0};
    side sa, sb;
    size_t i;
    am_status rc;

    *out = NULL;
    memset(&sa, 0, sizeof(sa));
    memset(&sb, 0, sizeof(sb));
    bld.d = calloc(1, sizeof(*bld.d));
    if (!bld.d) {
        return am_error_set(err, AM_ENOMEM, "out of memory comparing runs");
    }
    am_arena_init(&bld.d->arena);
    rc = side_open(&sa, st, a, counts_only, err);
    if (!rc) {
        rc = side_open(&sb, st, b, counts_only, err);
    }
    for (i = 1; !rc && i < b->org_count; i++) {
        rc = diff_partner(&bld, st, &sa, &sb, b->orgs[i].id, counts_only, err);
    }
    for (i = 1; !rc && i < a->org_count; i++) {
        if (am_run_org_find(b, a->orgs[i].id) < 0) {
            rc = diff_partner(&bld, st, &sa, &sb, a->orgs[i].id, counts_only, err);
        }
    }
    side_close(&sa);
    side_close(&sb);
    if (rc) {
        am_diff_free(bld.d);
        return rc;
    }
    *out = bld.d;
    return AM_OK;
}

void am_diff_free(am_diff *d)
{
    if (!d) {
        return;
    }
    free(d->partners);
    free(d->cells);
    free(d->changes);
    am_arena_dispose(&d->arena);
    free(d);
}
