/*
 * Resolve: union-find over records, linked through an open-addressing table
 * from key hash to the first record that had the key. Keys come from keys.c;
 * the entity ids go to the index.
 */
#include "acctmap/resolve.h"

#include <stdlib.h>
#include <string.h>

#define NO_RECORD UINT32_MAX
#define MAX_RECORDS (UINT32_MAX - 1)
#define TABLE_MIN (1u << 16)

typedef struct key_slot {
    uint64_t lo;
    uint64_t hi;
    uint32_t record; /* NO_RECORD when the slot is empty */
} key_slot;

struct am_resolver {
    key_slot *table;
    size_t table_cap; /* power of two */
    size_t key_count;
    uint32_t *parent; /* union-find forest over records */
    uint8_t *rank;
    uint8_t *group;
    size_t count;
    size_t cap;
};

am_status am_resolver_new(am_resolver **out, am_error *err)
{
    am_resolver *r = calloc(1, sizeof(*r));
    size_t i;

    *out = NULL;
    if (!r) {
        return am_error_set(err, AM_ENOMEM, "out of memory starting resolution");
    }
    r->table_cap = TABLE_MIN;
    r->table = malloc(r->table_cap * sizeof(*r->table));
    if (!r->table) {
        free(r);
        return am_error_set(err, AM_ENOMEM, "out of memory starting resolution");
    }
    for (i = 0; i < r->table_cap; i++) {
        r->table[i].record = NO_RECORD;
    }
    *out = r;
    return AM_OK;
}

void am_resolver_free(am_resolver *r)
{
    if (!r) {
        return;
    }
    free(r->table);
    free(r->parent);
    free(r->rank);
    free(r->group);
    free(r);
}

size_t am_resolver_record_count(const am_resolver *r)
{
    return r->count;
}

size_t am_resolver_key_count(const am_resolver *r)
{
    return r->key_count;
}

static uint32_t find_root(uint32_t *parent, uint32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]]; /* path halving */
        x = parent[x];
    }
    return x;
}

static void unite(am_resolver *r, uint32_t a, uint32_t b)
{
    a = find_root(r->parent, a);
    b = find_root(r->parent, b);
    if (a == b) {
        return;
    }
    if (r->rank[a] < r->rank[b]) {
        uint32_t t = a;
        a = b;
        b = t;
    }
    r->parent[b] = a;
    if (r->rank[a] == r->rank[b]) {
        r->rank[a]++;
    }
    if (r->group[b] < r->group[a]) {
        r->group[a] = r->group[b];
    }
}

/* The key hash is uniform: its low bits index the table directly. */
static key_slot *table_slot(key_slot *table, size_t cap, uint64_t lo, uint64_t hi)
{
    size_t mask = cap - 1;
    size_t i = (size_t)lo & mask;

    for (;;) {
        key_slot *s = &table[i];
        if (s->record == NO_RECORD || (s->lo == lo && s->hi == hi)) {
            return s;
        }
        i = (i + 1) & mask;
    }
}

static am_status table_grow(am_resolver *r, am_error *err)
{
    size_t cap = r->table_cap * 2;
    key_slot *table = malloc(cap * sizeof(*table));
    size_t i;

    if (!table) {
        return am_error_set(err, AM_ENOMEM, "out of memory: key table of %zu slots", cap);
    }
    for (i = 0; i < cap; i++) {
        table[i].record = NO_RECORD;
    }
    for (i = 0; i < r->table_cap; i++) {
        const key_slot *s = &r->table[i];
        if (s->record != NO_RECORD) {
            *table_slot(table, cap, s->lo, s->hi) = *s;
        }
    }
    free(r->table);
    r->table = table;
    r->table_cap = cap;
    return AM_OK;
}

static am_status records_grow(am_resolver *r, am_error *err)
{
    size_t cap = r->cap ? r->cap * 2 : 1u << 16;
    uint32_t *parent;
    uint8_t *rank, *group;

    if (cap > MAX_RECORDS) {
        cap = MAX_RECORDS;
    }
    parent = realloc(r->parent, cap * sizeof(*parent));
    if (!parent) {
        return am_error_set(err, AM_ENOMEM, "out of memory: %zu records", cap);
    }
    r->parent = parent;
    rank = realloc(r->rank, cap);
    if (!rank) {
        return am_error_set(err, AM_ENOMEM, "out of memory: %zu records", cap);
    }
    r->rank = rank;
    group = realloc(r->group, cap);
    if (!group) {
        return am_error_set(err, AM_ENOMEM, "out of memory: %zu records", cap);
    }
    r->group = group;
    r->cap = cap;
    return AM_OK;
}

void am_resolver_prefetch(const am_resolver *r, const am_key *keys, size_t count)
{
    size_t i;

    for (i = 0; i < count; i++) {
        __builtin_prefetch(&r->table[(size_t)keys[i].lo & (r->table_cap - 1)]);
    }
}

am_status am_resolver_add(am_resolver *r, const am_key *keys, size_t count, uint8_t group,
                          am_error *err)
{
    uint32_t rec;
    size_t i;
    am_status rc;

    if (r->count == MAX_RECORDS) {
        return am_error_set(err, AM_ELIMIT, "more than %u records in one run", MAX_RECORDS);
    }
    if (r->count == r->cap) {
        rc = records_grow(r, err);
        if (rc) {
            return rc;
        }
    }
    rec = (uint32_t)r->count++;
    r->parent[rec] = rec;
    r->rank[rec] = 0;
    r->group[rec] = group;

    for (i = 0; i < count; i++) {
        key_slot *s;
        /* Keep the load under 5/8 so probes stay short. */
        if ((r->key_count + 1) * 8 > r->table_cap * 5) {
            rc = table_grow(r, err);
            if (rc) {
                return rc;
            }
        }
        s = table_slot(r->table, r->table_cap, keys[i].lo, keys[i].hi);
        if (s->record == NO_RECORD) {
            s->lo = keys[i].lo;
            s->hi = keys[i].hi;
            s->record = rec;
            r->key_count++;
        } else {
            unite(r, s->record, rec);
        }
    }
    return AM_OK;
}

typedef struct root_order {
    uint64_t canon_hi;
    uint64_t canon_lo;
    uint32_t root;
    uint8_t group;
} root_order;

static bool root_before(const root_order *a, const root_order *b)
{
    if (a->group != b->group) {
        return a->group < b->group;
    }
    if (a->canon_hi != b->canon_hi) {
        return a->canon_hi < b->canon_hi;
    }
    return a->canon_lo < b->canon_lo; /* two entities never share their smallest key */
}

/* 16-bit digit `d` of the sort key (group, canon_hi): digits 0-3 of canon_hi, 4 the group. */
static unsigned root_digit(const root_order *o, unsigned d)
{
    return d < 4 ? (unsigned)(o->canon_hi >> (16 * d)) & 0xffff : o->group;
}

/*
 * Sort roots by (group, canon_hi, canon_lo): LSD radix sort on (group,
 * canon_hi), linear where qsort was the slowest part of finishing millions of
 * entities; then runs equal in both (a 2^-64 event) are put in canon_lo order.
 */
static am_status sort_roots(root_order *roots, size_t n, am_error *err)
{
    root_order *tmp = malloc((n ? n : 1) * sizeof(*tmp));
    size_t *count = malloc(65537 * sizeof(*count));
    root_order *src = roots, *dst = tmp;
    unsigned d;
    size_t i, j;

    if (!tmp || !count) {
        free(tmp);
        free(count);
        return am_error_set(err, AM_ENOMEM, "out of memory sorting %zu entities", n);
    }
    for (d = 0; d < 5; d++) {
        memset(count, 0, 65537 * sizeof(*count));
        for (i = 0; i < n; i++) {
            count[root_digit(&src[i], d) + 1]++;
        }
        for (i = 1; i <= 65536; i++) {
            count[i] += count[i - 1];
        }
        for (i = 0; i < n; i++) {
            dst[count[root_digit(&src[i], d)]++] = src[i];
        }
        root_order *t = src;
        src = dst;
        dst = t;
    }
    if (src != roots) {
        memcpy(roots, src, n * sizeof(*roots));
    }
    for (i = 1; i < n; i++) {
        root_order o = roots[i];
        for (j = i; j > 0 && root_before(&o, &roots[j - 1]); j--) {
            roots[j] = roots[j - 1];
        }
        roots[j] = o;
    }
    free(tmp);
    free(count);
    return AM_OK;
}

am_status am_resolver_finish(uint32_t **entity_of_out, uint32_t *entity_count_out,
                             am_resolver *r, am_error *err)
{
    uint32_t *slot_of_root = NULL; /* root record -> index in `roots` */
    root_order *roots = NULL;
    uint32_t *entity_of = NULL;
    size_t root_count = 0, i;
    am_status rc = AM_OK;

    *entity_of_out = NULL;
    *entity_count_out = 0;
    entity_of = malloc((r->count ? r->count : 1) * sizeof(*entity_of));
    slot_of_root = malloc((r->count ? r->count : 1) * sizeof(*slot_of_root));
    if (!entity_of || !slot_of_root) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory assigning entity ids");
        goto cleanup;
    }
    for (i = 0; i < r->count; i++) {
        if (find_root(r->parent, (uint32_t)i) == i) {
            slot_of_root[i] = (uint32_t)root_count++;
        }
    }
    roots = malloc((root_count ? root_count : 1) * sizeof(*roots));
    if (!roots) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory assigning entity ids");
        goto cleanup;
    }
    for (i = 0; i < r->count; i++) {
        if (r->parent[i] == i) {
            root_order *o = &roots[slot_of_root[i]];
            o->root = (uint32_t)i;
            o->group = r->group[i];
            o->canon_hi = UINT64_MAX;
            o->canon_lo = UINT64_MAX;
        }
    }
    /* Every record has at least one key, so every entity gets a canonical key. */
    for (i = 0; i < r->table_cap; i++) {
        const key_slot *s = &r->table[i];
        if (s->record != NO_RECORD) {
            root_order *o = &roots[slot_of_root[find_root(r->parent, s->record)]];
            if (s->hi < o->canon_hi || (s->hi == o->canon_hi && s->lo < o->canon_lo)) {
                o->canon_hi = s->hi;
                o->canon_lo = s->lo;
            }
        }
    }
    rc = sort_roots(roots, root_count, err);
    if (rc) {
        goto cleanup;
    }
    for (i = 0; i < root_count; i++) {
        slot_of_root[roots[i].root] = (uint32_t)i; /* now: root -> entity id */
    }
    for (i = 0; i < r->count; i++) {
        entity_of[i] = slot_of_root[find_root(r->parent, (uint32_t)i)];
    }
    *entity_of_out = entity_of;
    *entity_count_out = (uint32_t)root_count;
    entity_of = NULL;
cleanup:
    free(entity_of);
    free(slot_of_root);
    free(roots);
    return rc;
}
