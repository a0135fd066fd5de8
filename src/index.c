/*
 * Index: one CRoaring bitmap of entity ids per org x population, built from
 * the resolver's entity ids; plus, on demand, each org's records sorted by
 * entity for cell listings. Feeds overlap and the store.
 */
#include "acctmap/index.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Buckets of one radix-sort digit (16 bits). */
#define RADIX_BUCKETS 65536

typedef struct org_index {
    bool indexed;
    size_t population_count;
    roaring_bitmap_t *bitmaps[32];
    uint32_t *entity_of;   /* per record */
    uint32_t *populations; /* per record */
    size_t record_count;
    uint32_t *by_entity; /* record indexes sorted by (entity, record), after prepare_lookup */
} org_index;

struct am_index {
    org_index *orgs;
    size_t org_count;
};

am_status am_index_new(am_index **out, size_t org_count, am_error *err)
{
    am_index *ix = calloc(1, sizeof(*ix));

    *out = NULL;
    if (!ix) {
        return am_error_set(err, AM_ENOMEM, "out of memory creating the index");
    }
    ix->orgs = calloc(org_count ? org_count : 1, sizeof(*ix->orgs));
    if (!ix->orgs) {
        free(ix);
        return am_error_set(err, AM_ENOMEM, "out of memory creating the index");
    }
    ix->org_count = org_count;
    *out = ix;
    return AM_OK;
}

static void org_dispose(org_index *o)
{
    size_t p;

    for (p = 0; p < o->population_count; p++) {
        am_index__bitmap_free(o->bitmaps[p]);
    }
    free(o->entity_of);
    free(o->populations);
    free(o->by_entity);
    memset(o, 0, sizeof(*o));
}

void am_index_free(am_index *ix)
{
    size_t i;

    if (!ix) {
        return;
    }
    for (i = 0; i < ix->org_count; i++) {
        org_dispose(&ix->orgs[i]);
    }
    free(ix->orgs);
    free(ix);
}

/*
 * Sort u32 ascending: LSD radix sort in two 16-bit passes (linear, and much
 * faster than qsort for the millions of ids a big org has).
 */
static am_status sort_u32(uint32_t *v, size_t n, am_error *err)
{
    uint32_t *tmp;
    size_t *count;
    int pass;

    if (n < 2) {
        return AM_OK;
    }
    tmp = malloc(n * sizeof(*tmp));
    count = malloc(65537 * sizeof(*count));
    if (!tmp || !count) {
        free(tmp);
        free(count);
        return am_error_set(err, AM_ENOMEM, "out of memory sorting %zu entity ids", n);
    }
    for (pass = 0; pass < 2; pass++) {
        unsigned shift = (unsigned)pass * 16;
        uint32_t *src = pass == 0 ? v : tmp;
        uint32_t *dst = pass == 0 ? tmp : v;
        size_t i;

        memset(count, 0, 65537 * sizeof(*count));
        for (i = 0; i < n; i++) {
            count[((src[i] >> shift) & 0xffff) + 1]++;
        }
        for (i = 1; i <= 65536; i++) {
            count[i] += count[i - 1];
        }
        for (i = 0; i < n; i++) {
            dst[count[(src[i] >> shift) & 0xffff]++] = src[i];
        }
    }
    free(tmp);
    free(count);
    return AM_OK;
}

static am_status build_bitmaps(org_index *o, am_error *err)
{
    uint32_t *ids = NULL;
    size_t p, i;
    am_status rc = AM_OK;

    ids = malloc((o->record_count ? o->record_count : 1) * sizeof(*ids));
    if (!ids) {
        return am_error_set(err, AM_ENOMEM, "out of memory indexing %zu records",
                            o->record_count);
    }
    for (p = 0; p < o->population_count; p++) {
        uint32_t bit = (uint32_t)1 << p;
        size_t n = 0, unique = 0;

        for (i = 0; i < o->record_count; i++) {
            if (o->populations[i] & bit) {
                ids[n++] = o->entity_of[i];
            }
        }
        rc = sort_u32(ids, n, err);
        if (rc) {
            goto cleanup;
        }
        for (i = 0; i < n; i++) {
            if (unique == 0 || ids[unique - 1] != ids[i]) {
                ids[unique++] = ids[i];
            }
        }
        o->bitmaps[p] = roaring_bitmap_create();
        if (!o->bitmaps[p]) {
            rc = am_error_set(err, AM_ENOMEM, "out of memory creating a bitmap");
            goto cleanup;
        }
        /* Sorted input makes add_many append whole containers at once. */
        roaring_bitmap_add_many(o->bitmaps[p], unique, ids);
        roaring_bitmap_run_optimize(o->bitmaps[p]);
    }
cleanup:
    free(ids);
    return rc;
}

/*
 * Give org `org` its per-record arrays and bitmaps (NULL: none yet), taking
 * ownership of all of them, also when the call is a misuse.
 */
static am_status org_take(org_index **out, am_index *ix, size_t org, size_t population_count,
                          uint32_t *entity_of, uint32_t *populations, size_t record_count,
                          roaring_bitmap_t **bitmaps, am_error *err)
{
    org_index *o;
    size_t p;

    *out = NULL;
    if (org >= ix->org_count || population_count > 32 || ix->orgs[org].indexed) {
        free(entity_of);
        free(populations);
        for (p = 0; bitmaps && p < population_count && p < 32; p++) {
            am_index__bitmap_free(bitmaps[p]);
        }
        AM_ASSERT(org < ix->org_count && population_count <= 32 && !ix->orgs[org].indexed,
                  err);
    }
    o = &ix->orgs[org];
    o->entity_of = entity_of;
    o->populations = populations;
    o->record_count = record_count;
    o->population_count = population_count;
    o->indexed = true;
    for (p = 0; bitmaps && p < population_count; p++) {
        o->bitmaps[p] = bitmaps[p];
    }
    *out = o;
    return AM_OK;
}

am_status am_index_add_org(am_index *ix, size_t org, size_t population_count,
                           uint32_t *entity_of, uint32_t *populations, size_t record_count,
                           am_error *err)
{
    org_index *o;
    am_status rc = org_take(&o, ix, org, population_count, entity_of, populations, record_count,
                            NULL, err);

    if (!rc) {
        rc = build_bitmaps(o, err);
        if (rc) {
            org_dispose(o);
        }
    }
    return rc;
}

am_status am_index__load_org(am_index *ix, size_t org, size_t population_count,
                             uint32_t *entity_of, uint32_t *populations, size_t record_count,
                             roaring_bitmap_t **bitmaps, am_error *err)
{
    org_index *o;

    return org_take(&o, ix, org, population_count, entity_of, populations, record_count, bitmaps,
                    err);
}

size_t am_index_org_count(const am_index *ix)
{
    return ix->org_count;
}

size_t am_index_population_count(const am_index *ix, size_t org)
{
    return org < ix->org_count ? ix->orgs[org].population_count : 0;
}

size_t am_index_record_count(const am_index *ix, size_t org)
{
    return org < ix->org_count ? ix->orgs[org].record_count : 0;
}

const roaring_bitmap_t *am_index__bitmap(const am_index *ix, size_t org, size_t pop)
{
    if (org >= ix->org_count || pop >= ix->orgs[org].population_count) {
        return NULL;
    }
    return ix->orgs[org].bitmaps[pop];
}

uint64_t am_index_population_cardinality(const am_index *ix, size_t org, size_t pop)
{
    const roaring_bitmap_t *b = am_index__bitmap(ix, org, pop);

    return b ? roaring_bitmap_get_cardinality(b) : 0;
}

uint32_t am_index_record_entity(const am_index *ix, size_t org, size_t record)
{
    return ix->orgs[org].entity_of[record];
}

uint32_t am_index_record_populations(const am_index *ix, size_t org, size_t record)
{
    return ix->orgs[org].populations[record];
}

am_status am_index_prepare_lookup(am_index *ix, size_t org, am_error *err)
{
    org_index *o;
    uint32_t *tmp = NULL;
    size_t *count = NULL;
    size_t i, pass;

    AM_ASSERT(org < ix->org_count && ix->orgs[org].indexed, err);
    o = &ix->orgs[org];
    if (o->by_entity) {
        return AM_OK;
    }
    /*
     * Record numbers sorted by entity: LSD radix sort on two 16-bit digits.
     * Stable, so the records of one entity stay in ascending order; linear in
     * the org's records, not in the run's entities (a partner of 200,000
     * records in a run of 6 M entities: listings of 100 partners add up).
     */
    o->by_entity = malloc((o->record_count ? o->record_count : 1) * sizeof(*o->by_entity));
    tmp = malloc((o->record_count ? o->record_count : 1) * sizeof(*tmp));
    count = malloc((RADIX_BUCKETS + 1) * sizeof(*count));
    if (!o->by_entity || !tmp || !count) {
        free(o->by_entity);
        o->by_entity = NULL;
        free(tmp);
        free(count);
        return am_error_set(err, AM_ENOMEM, "out of memory preparing listings");
    }
    for (pass = 0; pass < 2; pass++) {
        const uint32_t *from = pass == 0 ? NULL : tmp;
        uint32_t *to = pass == 0 ? tmp : o->by_entity;
        unsigned shift = pass == 0 ? 0 : 16;

        memset(count, 0, (RADIX_BUCKETS + 1) * sizeof(*count));
        for (i = 0; i < o->record_count; i++) {
            uint32_t r = from ? from[i] : (uint32_t)i;
            count[((o->entity_of[r] >> shift) & 0xFFFF) + 1]++;
        }
        for (i = 1; i <= RADIX_BUCKETS; i++) {
            count[i] += count[i - 1];
        }
        for (i = 0; i < o->record_count; i++) {
            uint32_t r = from ? from[i] : (uint32_t)i;
            to[count[(o->entity_of[r] >> shift) & 0xFFFF]++] = r;
        }
    }
    free(tmp);
    free(count);
    return AM_OK;
}

size_t am_index_entity_records(const uint32_t **records_out, const am_index *ix, size_t org,
                               uint32_t entity)
{
    const org_index *o = &ix->orgs[org];
    size_t lo = 0, hi = o->record_count, first;

    *records_out = NULL;
    if (!o->by_entity) {
        return 0;
    }
    /* First position whose record's entity >= entity. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->entity_of[o->by_entity[mid]] < entity) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    first = lo;
    while (hi < o->record_count && o->entity_of[o->by_entity[hi]] == entity) {
        hi++;
    }
    *records_out = o->by_entity + first;
    return hi - first;
}
