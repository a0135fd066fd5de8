/*
 * Overlap: intersects the index's bitmaps. Matrices use and_cardinality (no
 * bitmap is materialized); cell listings materialize one intersection and
 * join it with each org's records of those entities.
 */
#include "acctmap/overlap.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

am_status am_overlap_matrix_compute(am_matrix *out, const am_index *ix, size_t ours,
                                    size_t theirs, am_error *err)
{
    size_t i, j;

    memset(out, 0, sizeof(*out));
    AM_ASSERT(ours < am_index_org_count(ix) && theirs < am_index_org_count(ix), err);
    out->rows = am_index_population_count(ix, ours);
    out->cols = am_index_population_count(ix, theirs);
    out->cells = calloc(out->rows * out->cols + 1, sizeof(*out->cells));
    if (!out->cells) {
        return am_error_set(err, AM_ENOMEM, "out of memory for a %zux%zu matrix", out->rows,
                            out->cols);
    }
    for (i = 0; i < out->rows; i++) {
        for (j = 0; j < out->cols; j++) {
            out->cells[i * out->cols + j] = am_overlap_cell_count(ix, ours, i, theirs, j);
        }
    }
    return AM_OK;
}

void am_matrix_dispose(am_matrix *m)
{
    if (m) {
        free(m->cells);
        memset(m, 0, sizeof(*m));
    }
}

void am_pipeline_dispose(am_pipeline *p)
{
    if (p) {
        free(p->cents);
        memset(p, 0, sizeof(*p));
    }
}

am_status am_overlap_pipeline_compute(am_pipeline *out, const am_index *ix, size_t ours,
                                      size_t theirs, size_t open_pop,
                                      const int64_t *amount_cents, am_error *err)
{
    const roaring_bitmap_t *open = am_index__bitmap(ix, ours, open_pop);
    uint32_t open_bit = (uint32_t)1 << open_pop;
    roaring_bitmap_t *cell = NULL;
    roaring_uint32_iterator_t *it = NULL;
    size_t j;
    am_status rc = AM_OK;

    memset(out, 0, sizeof(*out));
    AM_ASSERT(ours < am_index_org_count(ix) && theirs < am_index_org_count(ix) &&
                  open_pop < am_index_population_count(ix, ours),
              err);
    out->rows = am_index_population_count(ix, ours);
    out->cols = am_index_population_count(ix, theirs);
    out->cents = calloc(out->rows * out->cols + 1, sizeof(*out->cents));
    if (!out->cents) {
        return am_error_set(err, AM_ENOMEM, "out of memory for a %zux%zu pipeline", out->rows,
                            out->cols);
    }
    /*
     * Only entities with an open opportunity of ours can add to a cell:
     * walk those in each of their populations, then our records of each.
     */
    for (j = 0; j < out->cols; j++) {
        const roaring_bitmap_t *b = am_index__bitmap(ix, theirs, j);
        if (!open || !b) {
            continue;
        }
        cell = roaring_bitmap_and(open, b);
        it = cell ? roaring_create_iterator(cell) : NULL;
        if (!it) {
            rc = am_error_set(err, AM_ENOMEM, "out of memory summing the open pipeline");
            goto cleanup;
        }
        for (; it->has_value; roaring_advance_uint32_iterator(it)) {
            const uint32_t *recs;
            size_t n = am_index_entity_records(&recs, ix, ours, it->current_value), r, i;

            for (r = 0; r < n; r++) {
                uint32_t mask = am_index_record_populations(ix, ours, recs[r]);
                if (!(mask & open_bit) || amount_cents[recs[r]] == 0) {
                    continue;
                }
                for (i = 0; i < out->rows; i++) {
                    int64_t *c = &out->cents[i * out->cols + j];
                    if ((mask & ((uint32_t)1 << i)) &&
                        __builtin_add_overflow(*c, amount_cents[recs[r]], c)) {
                        rc = am_error_set(err, AM_ELIMIT, "the open pipeline of a cell does "
                                          "not fit in 64 bits; check the amounts of the "
                                          "opportunities");
                        goto cleanup;
                    }
                }
            }
        }
        roaring_free_uint32_iterator(it);
        it = NULL;
        am_index__bitmap_free(cell);
        cell = NULL;
    }
cleanup:
    if (it) {
        roaring_free_uint32_iterator(it);
    }
    am_index__bitmap_free(cell);
    if (rc) {
        am_pipeline_dispose(out);
    }
    return rc;
}

uint64_t am_overlap_cell_count(const am_index *ix, size_t ours, size_t our_pop, size_t theirs,
                               size_t their_pop)
{
    const roaring_bitmap_t *a = am_index__bitmap(ix, ours, our_pop);
    const roaring_bitmap_t *b = am_index__bitmap(ix, theirs, their_pop);

    return a && b ? roaring_bitmap_and_cardinality(a, b) : 0;
}

/* The entities of `org` in `pop`, or in any population: a new bitmap. */
static roaring_bitmap_t *population_or_all(const am_index *ix, size_t org, int pop)
{
    const roaring_bitmap_t *all[32];
    size_t n = am_index_population_count(ix, org), p;

    if (pop != AM_POP_ANY) {
        const roaring_bitmap_t *b = am_index__bitmap(ix, org, (size_t)pop);
        return b ? roaring_bitmap_copy(b) : roaring_bitmap_create();
    }
    for (p = 0; p < n; p++) {
        all[p] = am_index__bitmap(ix, org, p);
    }
    return n ? roaring_bitmap_or_many(n, all) : roaring_bitmap_create();
}

uint64_t am_overlap_org_count(const am_index *ix, size_t ours, size_t theirs)
{
    roaring_bitmap_t *a = population_or_all(ix, ours, AM_POP_ANY);
    roaring_bitmap_t *b = population_or_all(ix, theirs, AM_POP_ANY);
    uint64_t n = a && b ? roaring_bitmap_and_cardinality(a, b) : 0;

    am_index__bitmap_free(a);
    am_index__bitmap_free(b);
    return n;
}

typedef struct pair_list {
    am_pair *pairs;
    size_t count;
    size_t cap;
} pair_list;

static am_status push_pair(pair_list *l, uint32_t entity, uint32_t ours, uint32_t theirs,
                           am_error *err)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        am_pair *grown = realloc(l->pairs, cap * sizeof(*grown));
        if (!grown) {
            return am_error_set(err, AM_ENOMEM, "out of memory listing %zu pairs", cap);
        }
        l->pairs = grown;
        l->cap = cap;
    }
    l->pairs[l->count].entity = entity;
    l->pairs[l->count].our_record = ours;
    l->pairs[l->count].their_record = theirs;
    l->count++;
    return AM_OK;
}

am_status am_overlap_cell_pairs(am_pair **out, size_t *count_out, const am_index *ix,
                                size_t ours, int our_pop, size_t theirs, int their_pop,
                                am_error *err)
{
    roaring_bitmap_t *a = NULL, *b = NULL;
    roaring_uint32_iterator_t *it = NULL;
    pair_list list = {NULL, 0, 0};
    uint32_t our_mask, their_mask;
    am_status rc = AM_OK;

    *out = NULL;
    *count_out = 0;
    AM_ASSERT(ours < am_index_org_count(ix) && theirs < am_index_org_count(ix), err);
    our_mask = our_pop == AM_POP_ANY ? UINT32_MAX : (uint32_t)1 << our_pop;
    their_mask = their_pop == AM_POP_ANY ? UINT32_MAX : (uint32_t)1 << their_pop;
    a = population_or_all(ix, ours, our_pop);
    b = population_or_all(ix, theirs, their_pop);
    if (!a || !b) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory intersecting populations");
        goto cleanup;
    }
    roaring_bitmap_and_inplace(a, b);
    it = roaring_create_iterator(a);
    if (!it) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory intersecting populations");
        goto cleanup;
    }
    for (; it->has_value; roaring_advance_uint32_iterator(it)) {
        const uint32_t *our_recs, *their_recs;
        size_t n_ours = am_index_entity_records(&our_recs, ix, ours, it->current_value);
        size_t n_theirs = am_index_entity_records(&their_recs, ix, theirs, it->current_value);
        size_t i, j;

        for (i = 0; i < n_ours; i++) {
            if (!(am_index_record_populations(ix, ours, our_recs[i]) & our_mask)) {
                continue;
            }
            for (j = 0; j < n_theirs; j++) {
                if (!(am_index_record_populations(ix, theirs, their_recs[j]) & their_mask)) {
                    continue;
                }
                rc = push_pair(&list, it->current_value, our_recs[i], their_recs[j], err);
                if (rc) {
                    goto cleanup;
                }
            }
        }
    }
    *out = list.pairs;
    *count_out = list.count;
    list.pairs = NULL;
cleanup:
    if (it) {
        roaring_free_uint32_iterator(it);
    }
    am_index__bitmap_free(a);
    am_index__bitmap_free(b);
    free(list.pairs);
    return rc;
}

/* ---- across partners: the co-sell list and who holds a record ----------------- */

static roaring_bitmap_t *populations_of_mask(const am_index *ix, size_t org, uint32_t mask)
{
    const roaring_bitmap_t *some[32];
    size_t n = 0, p;

    for (p = 0; p < am_index_population_count(ix, org); p++) {
        if (mask & ((uint32_t)1 << p)) {
            some[n++] = am_index__bitmap(ix, org, p);
        }
    }
    return n ? roaring_bitmap_or_many(n, some) : roaring_bitmap_create();
}

typedef struct ranked {
    const char *id;
    uint32_t source;
    am_target t;
} ranked;

static int compare_ranked(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    int c;

    if (a->t.partner_count != b->t.partner_count) {
        return a->t.partner_count > b->t.partner_count ? -1 : 1;
    }
    c = strcmp(a->id, b->id);
    if (c) {
        return c;
    }
    if (a->source != b->source) {
        return a->source < b->source ? -1 : 1;
    }
    return a->t.our_record < b->t.our_record ? -1 : a->t.our_record > b->t.our_record;
}

void am_targets_free(am_targets *t)
{
    if (t) {
        free(t->items);
        free(t->matches);
        free(t);
    }
}

/*
 * One pass over every partner's shared entities. Without `t->matches` it
 * counts partners and matches per record; with it, it writes the matches at
 * each record's `fill` position.
 */
static void targets_pass(am_targets *t, size_t *partners, size_t *matches, size_t *fill,
                         const am_index *ix, roaring_bitmap_t **shared, uint32_t our_mask,
                         const uint32_t *their_masks)
{
    size_t org;

    for (org = 1; org < am_index_org_count(ix); org++) {
        roaring_uint32_iterator_t *it;
        if (!shared[org]) {
            continue;
        }
        it = roaring_create_iterator(shared[org]);
        for (; it && it->has_value; roaring_advance_uint32_iterator(it)) {
            const uint32_t *ours, *theirs;
            size_t n_ours = am_index_entity_records(&ours, ix, 0, it->current_value);
            size_t n_theirs = am_index_entity_records(&theirs, ix, org, it->current_value);
            size_t i, j;
            for (i = 0; i < n_ours; i++) {
                if (!(am_index_record_populations(ix, 0, ours[i]) & our_mask)) {
                    continue;
                }
                if (!fill) {
                    partners[ours[i]]++;
                }
                for (j = 0; j < n_theirs; j++) {
                    if (!(am_index_record_populations(ix, org, theirs[j]) & their_masks[org])) {
                        continue;
                    }
                    if (fill) {
                        t->matches[fill[ours[i]]++] = (am_target_match){org, theirs[j]};
                    } else {
                        matches[ours[i]]++;
                    }
                }
            }
        }
        if (it) {
            roaring_free_uint32_iterator(it);
        }
    }
}

am_status am_overlap_targets(am_targets **out, const am_index *ix, const am_record_batch *ours,
                             uint32_t our_mask, const uint32_t *their_masks, am_error *err)
{
    size_t orgs = am_index_org_count(ix), n = am_index_record_count(ix, 0), org, r, k;
    roaring_bitmap_t **shared = calloc(orgs + 1, sizeof(*shared));
    size_t *partners = calloc(n + 1, sizeof(*partners));
    size_t *matches = calloc(n + 1, sizeof(*matches));
    size_t *fill = calloc(n + 1, sizeof(*fill));
    roaring_bitmap_t *mine = NULL;
    ranked *order = NULL;
    am_targets *t = calloc(1, sizeof(*t));
    am_status rc = AM_OK;

    *out = NULL;
    if (!shared || !partners || !matches || !fill || !t || ours->count != n) {
        rc = ours->count != n ? am_error_set(err, AM_EINTERNAL, "targets: the records are not "
                                             "the index's; please report this bug")
                              : am_error_set(err, AM_ENOMEM, "out of memory ranking targets");
        goto cleanup;
    }
    mine = populations_of_mask(ix, 0, our_mask);
    for (org = 1; mine && org < orgs; org++) {
        if (their_masks[org]) {
            shared[org] = populations_of_mask(ix, org, their_masks[org]);
            if (!shared[org]) {
                break;
            }
            roaring_bitmap_and_inplace(shared[org], mine);
        }
    }
    if (!mine || org < orgs) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory ranking targets");
        goto cleanup;
    }
    targets_pass(t, partners, matches, NULL, ix, shared, our_mask, their_masks);
    for (r = 0; r < n; r++) {
        if (partners[r]) {
            fill[r] = t->match_count;
            t->match_count += matches[r];
            t->count++;
        }
    }
    t->items = calloc(t->count + 1, sizeof(*t->items));
    t->matches = calloc(t->match_count + 1, sizeof(*t->matches));
    order = calloc(t->count + 1, sizeof(*order));
    if (!t->items || !t->matches || !order) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory ranking targets");
        goto cleanup;
    }
    for (r = 0, k = 0; r < n; r++) {
        if (partners[r]) {
            order[k].id = ours->records[r].id;
            order[k].source = ours->records[r].source;
            order[k].t = (am_target){(uint32_t)r, partners[r], fill[r], matches[r]};
            k++;
        }
    }
    targets_pass(t, partners, matches, fill, ix, shared, our_mask, their_masks);
    if (t->count > 1) { /* order may be NULL when empty; qsort(NULL, 0) is undefined */
        qsort(order, t->count, sizeof(*order), compare_ranked);
    }
    for (k = 0; k < t->count; k++) {
        t->items[k] = order[k].t;
    }
    *out = t;
    t = NULL;
cleanup:
    for (org = 0; shared && org < orgs; org++) {
        am_index__bitmap_free(shared[org]);
    }
    am_index__bitmap_free(mine);
    free(shared);
    free(partners);
    free(matches);
    free(fill);
    free(order);
    am_targets_free(t);
    return rc;
}

am_status am_overlap_record_matches(am_target_match **out, size_t *count_out,
                                    const am_index *ix, uint32_t our_record, am_error *err)
{
    am_target_match *matches;
    uint32_t entity;
    size_t org, i, n = 0;

    *out = NULL;
    *count_out = 0;
    AM_ASSERT(our_record < am_index_record_count(ix, 0), err);
    entity = am_index_record_entity(ix, 0, our_record);
    for (org = 1; org < am_index_org_count(ix); org++) {
        const uint32_t *theirs;
        n += am_index_entity_records(&theirs, ix, org, entity);
    }
    matches = calloc(n + 1, sizeof(*matches));
    if (!matches) {
        return am_error_set(err, AM_ENOMEM, "out of memory listing %zu matches", n);
    }
    n = 0;
    for (org = 1; org < am_index_org_count(ix); org++) {
        const uint32_t *theirs;
        size_t count = am_index_entity_records(&theirs, ix, org, entity);
        for (i = 0; i < count; i++) {
            matches[n++] = (am_target_match){org, theirs[i]};
        }
    }
    *out = matches;
    *count_out = n;
    return AM_OK;
}
