/*
 * Resolve: keys come from keys.c, entity ids go to the index. Records are
 * added as they are read (their keys become dense key ids through an
 * open-addressing table); finishing links them in three passes, strongest
 * evidence first: tax ids, then domains, then names. Each key is taken in a
 * canonical order and links the components of its records all at once, or
 * not at all when they conflict, so the result does not depend on the order
 * the records came in, and no link ever chains through a conflict:
 *   - two different tax ids of one class (am_key.scheme) are two companies;
 *   - a domain shared by companies with different tax ids (a group's website)
 *     links none of them;
 *   - a record whose website is a page on the site ("romashka.ru/moscow/":
 *     maybe another company's site, a branch or a dealer listed there) is
 *     linked by the domain only to the records of the site that share one of
 *     its names; the domain first links the records of the site itself, then
 *     for each name of its pages (in the order of the names' hashes) the
 *     records of that name, each set all at once or not at all;
 *   - a name links only records of one country (the key holds it; a record
 *     without a country joins the one country a name is known in, in the same
 *     city), never an individual entrepreneur, only where the cities agree,
 *     and never two companies that each have a website of their own or a tax
 *     id that differs.
 */
#include "acctmap/resolve.h"

#include <stdlib.h>
#include <string.h>

#define NO_KEY UINT32_MAX
#define MAX_RECORDS (UINT32_MAX - 1)
#define TABLE_MIN (1u << 16)
#define CITY_SEVERAL UINT32_MAX /* a component whose records name two cities */
#define TAX_SLOTS 2             /* tax ids of different schemes a component remembers */
#define REC_PERSON 1u           /* am_resolver.flags: an individual entrepreneur */
#define REC_PAGE 2u             /* am_resolver.flags: the website is a page on its site */

typedef struct key_slot {
    uint64_t lo;
    uint64_t hi;
    uint32_t key; /* dense key id; NO_KEY when the slot is empty */
} key_slot;

typedef struct u32_vec {
    uint32_t *v;
    size_t count;
    size_t cap;
} u32_vec;

struct am_resolver {
    key_slot *table;
    size_t table_cap; /* power of two */
    /* per key id */
    uint32_t *key_slot_of; /* its slot in `table` (moves when the table grows) */
    uint8_t *key_kind;
    uint8_t *key_scheme;
    uint8_t *key_no_country;
    uint64_t *key_core;
    uint64_t *key_hi;  /* filled by finish, which frees the table */
    uint64_t *key_lo;
    size_t key_count;
    size_t key_cap;
    /* per record */
    u32_vec rec_keys;   /* key ids of every record, one after the other */
    uint32_t *rec_end;  /* rec_keys[rec_end[r-1] .. rec_end[r]) are record r's */
    uint8_t *group;
    uint8_t *flags;     /* REC_PERSON, REC_PAGE */
    uint32_t *city;
    uint32_t *identity;
    size_t count;
    size_t cap;
    u32_vec page_domains; /* the domain key of every page record (repeats allowed) */
};

/* A name of a record of a site that has a page on it: (site key, name core, record). */
typedef struct site_name {
    uint64_t core;
    uint32_t key;
    uint32_t rec;
} site_name;

/* Union-find over records, with what each component holds at its root. */
typedef struct forest {
    uint32_t *parent;
    uint8_t *rank;
    uint32_t *tax[TAX_SLOTS]; /* key ids of the component's tax ids, NO_KEY when none */
    uint8_t *has_domain;
    uint32_t *city;           /* 0 none, a city hash, or CITY_SEVERAL */
    uint8_t *group;
} forest;

static am_status u32_push(u32_vec *vec, uint32_t x, am_error *err)
{
    if (vec->count == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 1u << 16;
        uint32_t *grown = realloc(vec->v, cap * sizeof(*grown));
        if (!grown) {
            return am_error_set(err, AM_ENOMEM, "out of memory: %zu keys", cap);
        }
        vec->v = grown;
        vec->cap = cap;
    }
    vec->v[vec->count++] = x;
    return AM_OK;
}

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
        r->table[i].key = NO_KEY;
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
    free(r->key_slot_of);
    free(r->key_kind);
    free(r->key_scheme);
    free(r->key_no_country);
    free(r->key_core);
    free(r->key_hi);
    free(r->key_lo);
    free(r->rec_keys.v);
    free(r->rec_end);
    free(r->group);
    free(r->flags);
    free(r->city);
    free(r->identity);
    free(r->page_domains.v);
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

/* The key hash is uniform: its low bits index the table directly. */
static size_t table_find(const key_slot *table, size_t cap, uint64_t lo, uint64_t hi)
{
    size_t mask = cap - 1;
    size_t i = (size_t)lo & mask;

    while (table[i].key != NO_KEY && !(table[i].lo == lo && table[i].hi == hi)) {
        i = (i + 1) & mask;
    }
    return i;
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
        table[i].key = NO_KEY;
    }
    for (i = 0; i < r->table_cap; i++) {
        const key_slot *s = &r->table[i];
        if (s->key != NO_KEY) {
            size_t at = table_find(table, cap, s->lo, s->hi);
            table[at] = *s;
            r->key_slot_of[s->key] = (uint32_t)at;
        }
    }
    free(r->table);
    r->table = table;
    r->table_cap = cap;
    return AM_OK;
}

static am_status keys_grow(am_resolver *r, am_error *err)
{
    size_t cap = r->key_cap ? r->key_cap * 2 : 1u << 16;
    void *p;

#define GROW(field)                                                                \
    p = realloc(r->field, cap * sizeof(*r->field));                                \
    if (!p) {                                                                      \
        return am_error_set(err, AM_ENOMEM, "out of memory: %zu keys", cap);       \
    }                                                                              \
    r->field = p;
    GROW(key_slot_of)
    GROW(key_kind)
    GROW(key_scheme)
    GROW(key_no_country)
    GROW(key_core)
#undef GROW
    r->key_cap = cap;
    return AM_OK;
}

static am_status records_grow(am_resolver *r, am_error *err)
{
    size_t cap = r->cap ? r->cap * 2 : 1u << 16;
    void *p;

    if (cap > MAX_RECORDS) {
        cap = MAX_RECORDS;
    }
#define GROW(field)                                                                \
    p = realloc(r->field, cap * sizeof(*r->field));                                \
    if (!p) {                                                                      \
        return am_error_set(err, AM_ENOMEM, "out of memory: %zu records", cap);    \
    }                                                                              \
    r->field = p;
    GROW(rec_end)
    GROW(group)
    GROW(flags)
    GROW(city)
    GROW(identity)
#undef GROW
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

am_status am_resolver_add(am_resolver *r, const am_key *keys, size_t count,
                          const am_resolve_facts *facts, am_error *err)
{
    size_t i;
    am_status rc;

    AM_ASSERT(count <= AM_KEYS_MAX, err);
    if (r->count == MAX_RECORDS) {
        return am_error_set(err, AM_ELIMIT, "more than %u records in one run", MAX_RECORDS);
    }
    if (r->count == r->cap) {
        rc = records_grow(r, err);
        if (rc) {
            return rc;
        }
    }
    for (i = 0; i < count; i++) {
        size_t at;
        /* Keep the load under 5/8 so probes stay short. */
        if ((r->key_count + 1) * 8 > r->table_cap * 5) {
            rc = table_grow(r, err);
            if (rc) {
                return rc;
            }
        }
        at = table_find(r->table, r->table_cap, keys[i].lo, keys[i].hi);
        if (r->table[at].key == NO_KEY) {
            if (r->key_count == r->key_cap) {
                rc = keys_grow(r, err);
                if (rc) {
                    return rc;
                }
            }
            r->table[at].lo = keys[i].lo;
            r->table[at].hi = keys[i].hi;
            r->table[at].key = (uint32_t)r->key_count;
            r->key_slot_of[r->key_count] = (uint32_t)at;
            r->key_kind[r->key_count] = (uint8_t)keys[i].kind;
            r->key_scheme[r->key_count] = keys[i].scheme;
            r->key_no_country[r->key_count] = keys[i].no_country;
            r->key_core[r->key_count] = keys[i].core;
            r->key_count++;
        }
        rc = u32_push(&r->rec_keys, r->table[at].key, err);
        if (!rc && facts->page && keys[i].kind == AM_KEY_DOMAIN) {
            rc = u32_push(&r->page_domains, r->table[at].key, err);
        }
        if (rc) {
            return rc;
        }
    }
    r->rec_end[r->count] = (uint32_t)r->rec_keys.count;
    r->group[r->count] = facts->group;
    r->flags[r->count] = (uint8_t)((facts->person ? REC_PERSON : 0) | (facts->page ? REC_PAGE : 0));
    r->city[r->count] = facts->city;
    r->identity[r->count] = facts->identity;
    r->count++;
    return AM_OK;
}

/* ---- finishing ------------------------------------------------------------ */

/* Something to put in canonical order: by (top, hi, lo). */
typedef struct ordered {
    uint64_t hi;
    uint64_t lo;
    uint32_t id;
    uint8_t top;
} ordered;

static bool ordered_before(const ordered *a, const ordered *b)
{
    if (a->top != b->top) {
        return a->top < b->top;
    }
    if (a->hi != b->hi) {
        return a->hi < b->hi;
    }
    if (a->lo != b->lo) {
        return a->lo < b->lo;
    }
    return a->id < b->id;
}

/* 16-bit digit `d` of (top, hi): digits 0-3 of hi, 4 the top byte. */
static unsigned ordered_digit(const ordered *o, unsigned d)
{
    return d < 4 ? (unsigned)(o->hi >> (16 * d)) & 0xffff : o->top;
}

/*
 * LSD radix sort on (top, hi), linear where qsort was the slowest part of
 * finishing millions of entities; then the rare runs equal in both are put in
 * (lo, id) order by insertion.
 */
static am_status sort_ordered(ordered *items, size_t n, am_error *err)
{
    ordered *tmp = malloc((n ? n : 1) * sizeof(*tmp));
    size_t *count = malloc(65537 * sizeof(*count));
    ordered *src = items, *dst = tmp;
    unsigned d;
    size_t i, j;

    if (!tmp || !count) {
        free(tmp);
        free(count);
        return am_error_set(err, AM_ENOMEM, "out of memory sorting %zu items", n);
    }
    for (d = 0; d < 5; d++) {
        ordered *t;
        memset(count, 0, 65537 * sizeof(*count));
        for (i = 0; i < n; i++) {
            count[ordered_digit(&src[i], d) + 1]++;
        }
        for (i = 1; i <= 65536; i++) {
            count[i] += count[i - 1];
        }
        for (i = 0; i < n; i++) {
            dst[count[ordered_digit(&src[i], d)]++] = src[i];
        }
        t = src;
        src = dst;
        dst = t;
    }
    if (src != items) {
        memcpy(items, src, n * sizeof(*items));
    }
    for (i = 1; i < n; i++) {
        ordered o = items[i];
        for (j = i; j > 0 && ordered_before(&o, &items[j - 1]); j--) {
            items[j] = items[j - 1];
        }
        items[j] = o;
    }
    free(tmp);
    free(count);
    return AM_OK;
}

static uint32_t find_root(uint32_t *parent, uint32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]]; /* path halving */
        x = parent[x];
    }
    return x;
}

static size_t rec_begin(const am_resolver *r, uint32_t rec)
{
    return rec ? r->rec_end[rec - 1] : 0;
}

static void forest_free(forest *f)
{
    size_t i;

    free(f->parent);
    free(f->rank);
    for (i = 0; i < TAX_SLOTS; i++) {
        free(f->tax[i]);
    }
    free(f->has_domain);
    free(f->city);
    free(f->group);
}

/* One component per record; its tax id and website come from the keys' record lists. */
static am_status forest_init(forest *f, const am_resolver *r, const uint32_t *start,
                             const uint32_t *recs, am_error *err)
{
    size_t n = r->count ? r->count : 1, i, k, t;

    memset(f, 0, sizeof(*f));
    f->parent = malloc(n * sizeof(*f->parent));
    f->rank = calloc(n, 1);
    f->has_domain = calloc(n, 1);
    for (t = 0; t < TAX_SLOTS; t++) {
        f->tax[t] = malloc(n * sizeof(*f->tax[t]));
        if (!f->tax[t]) {
            return am_error_set(err, AM_ENOMEM, "out of memory resolving %zu records", n);
        }
    }
    if (!f->parent || !f->rank || !f->has_domain) {
        return am_error_set(err, AM_ENOMEM, "out of memory resolving %zu records", n);
    }
    f->city = malloc(n * sizeof(*f->city));
    f->group = malloc(n);
    if (!f->city || !f->group) {
        return am_error_set(err, AM_ENOMEM, "out of memory resolving %zu records", n);
    }
    memcpy(f->city, r->city, r->count * sizeof(*f->city)); /* a record's city is its component's */
    memcpy(f->group, r->group, r->count);
    for (i = 0; i < r->count; i++) {
        f->parent[i] = (uint32_t)i;
        for (t = 0; t < TAX_SLOTS; t++) {
            f->tax[t][i] = NO_KEY;
        }
    }
    /* A record has one tax id column, so one tax key at most: slot 0 holds it. */
    for (k = 0; k < r->key_count; k++) {
        for (i = start[k]; i < start[k + 1]; i++) {
            if (r->key_kind[k] == AM_KEY_TAX) {
                f->tax[0][recs[i]] = (uint32_t)k;
            } else if (r->key_kind[k] == AM_KEY_DOMAIN) {
                f->has_domain[recs[i]] = 1;
            }
        }
    }
    return AM_OK;
}

/* Would joining the components of `roots` put two tax ids of one class together? */
static bool tax_conflict(const am_resolver *r, const forest *f, const uint32_t *roots, size_t n)
{
    /* The first tax id met of each class; a component holds at most TAX_SLOTS. */
    uint32_t first[2 * TAX_SLOTS * 8];
    size_t seen = 0, i, t, j;

    for (i = 0; i < n; i++) {
        for (t = 0; t < TAX_SLOTS; t++) {
            uint32_t key = f->tax[t][roots[i]];
            bool known = false;
            if (key == NO_KEY) {
                continue;
            }
            for (j = 0; j < seen; j++) {
                if (r->key_scheme[first[j]] == r->key_scheme[key]) {
                    if (first[j] != key) {
                        return true;
                    }
                    known = true;
                    break;
                }
            }
            if (!known && seen < sizeof(first) / sizeof(first[0])) {
                first[seen++] = key;
            }
        }
    }
    return false;
}

/* Names also need: at most one component with a website, and one city at most. */
static bool name_conflict(const forest *f, const uint32_t *roots, size_t n)
{
    size_t i, domains = 0;
    uint32_t city = 0;

    for (i = 0; i < n; i++) {
        uint32_t c = f->city[roots[i]];
        domains += f->has_domain[roots[i]];
        if (c == CITY_SEVERAL || (c && city && c != city)) {
            return true;
        }
        if (c) {
            city = c;
        }
    }
    return domains > 1;
}

static void merge_into(forest *f, uint32_t a, uint32_t b)
{
    size_t t, u;

    /* b joins a: a keeps the union of what both hold. */
    f->parent[b] = a;
    if (f->rank[a] == f->rank[b]) {
        f->rank[a]++;
    }
    f->has_domain[a] |= f->has_domain[b];
    if (f->group[b] < f->group[a]) {
        f->group[a] = f->group[b];
    }
    if (f->city[a] != f->city[b]) {
        f->city[a] = !f->city[a] ? f->city[b] : !f->city[b] ? f->city[a] : CITY_SEVERAL;
    }
    for (t = 0; t < TAX_SLOTS; t++) {
        uint32_t key = f->tax[t][b];
        bool have = key == NO_KEY;
        for (u = 0; !have && u < TAX_SLOTS; u++) {
            have = f->tax[u][a] == key;
        }
        for (u = 0; !have && u < TAX_SLOTS; u++) {
            if (f->tax[u][a] == NO_KEY) {
                f->tax[u][a] = key;
                have = true;
            }
        }
    }
}

static void unite_all(forest *f, const uint32_t *roots, size_t n)
{
    uint32_t a = roots[0];
    size_t i;

    for (i = 1; i < n; i++) {
        uint32_t b = roots[i];
        a = find_root(f->parent, a);
        b = find_root(f->parent, b);
        if (a == b) {
            continue;
        }
        if (f->rank[a] < f->rank[b]) {
            uint32_t t = a;
            a = b;
            b = t;
        }
        merge_into(f, a, b);
    }
}

/* Scratch for one key: the distinct roots of its records, found with a stamp per root. */
typedef struct scratch {
    uint32_t *stamp; /* per record */
    uint32_t now;
    u32_vec roots;
    u32_vec members;
} scratch;

/* Distinct roots of `members`; false on allocation failure. */
static am_status distinct_roots(scratch *s, forest *f, const uint32_t *members, size_t n,
                                am_error *err)
{
    size_t i;
    am_status rc;

    s->now++;
    s->roots.count = 0;
    for (i = 0; i < n; i++) {
        uint32_t root = find_root(f->parent, members[i]);
        if (s->stamp[root] != s->now) {
            s->stamp[root] = s->now;
            rc = u32_push(&s->roots, root, err);
            if (rc) {
                return rc;
            }
        }
    }
    return AM_OK;
}

/* Link the records of a tax or domain key, unless their companies' tax ids conflict. */
static am_status link_strong(const am_resolver *r, forest *f, scratch *s, const uint32_t *members,
                             size_t n, am_error *err)
{
    am_status rc = distinct_roots(s, f, members, n, err);

    if (!rc && s->roots.count > 1 && !tax_conflict(r, f, s->roots.v, s->roots.count)) {
        unite_all(f, s->roots.v, s->roots.count);
    }
    return rc;
}

static int compare_u32(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

    return a < b ? -1 : a > b;
}

static int compare_site_names(const void *pa, const void *pb)
{
    const site_name *a = pa, *b = pb;

    if (a->key != b->key) {
        return a->key < b->key ? -1 : 1;
    }
    if (a->core != b->core) {
        return a->core < b->core ? -1 : 1;
    }
    return a->rec < b->rec ? -1 : a->rec > b->rec;
}

/*
 * Link the records of a domain key that has pages on it (`names`, `count`: its
 * records' names, in (core, record) order): the records of the site itself
 * together, then for each name of a page the records of that name. Each set is
 * decided on what its components hold, whatever the order records came in.
 */
static am_status link_site(const am_resolver *r, forest *f, scratch *s, const uint32_t *members,
                           size_t n, const site_name *names, size_t count, am_error *err)
{
    size_t i, j, k;
    am_status rc = AM_OK;

    s->members.count = 0;
    for (i = 0; !rc && i < n; i++) {
        if (!(r->flags[members[i]] & REC_PAGE)) {
            rc = u32_push(&s->members, members[i], err);
        }
    }
    if (!rc && s->members.count > 1) {
        rc = link_strong(r, f, s, s->members.v, s->members.count, err);
    }
    for (i = 0; !rc && i < count; i = j) {
        bool page = false;
        for (j = i; j < count && names[j].core == names[i].core; j++) {
            page = page || (r->flags[names[j].rec] & REC_PAGE);
        }
        if (!page || j - i < 2) {
            continue; /* a name no page carries: the site itself has linked its records */
        }
        s->members.count = 0;
        for (k = i; !rc && k < j; k++) {
            rc = u32_push(&s->members, names[k].rec, err);
        }
        if (!rc) {
            rc = link_strong(r, f, s, s->members.v, s->members.count, err);
        }
    }
    return rc;
}

/*
 * The names of every record of the sites that have a page record, from the
 * records' name keys (both spellings), sorted by (site key, core, record).
 * Empty, at no cost, when no website is a page.
 */
static am_status collect_site_names(site_name **out, size_t *count_out, am_resolver *r,
                                    const uint32_t *start, const uint32_t *recs, am_error *err)
{
    site_name *names = NULL;
    size_t count = 0, cap = 0, i, k, prev = NO_KEY;
    uint32_t *domains = r->page_domains.v;

    *out = NULL;
    *count_out = 0;
    if (r->page_domains.count == 0) {
        return AM_OK;
    }
    qsort(domains, r->page_domains.count, sizeof(*domains), compare_u32);
    for (i = 0; i < r->page_domains.count; i++) {
        uint32_t key = domains[i], m;
        if (key == prev) {
            continue;
        }
        prev = key;
        for (m = start[key]; m < start[key + 1]; m++) {
            uint32_t rec = recs[m];
            for (k = rec_begin(r, rec); k < r->rec_end[rec]; k++) {
                uint32_t name = r->rec_keys.v[k];
                if (r->key_kind[name] != AM_KEY_NAME) {
                    continue;
                }
                if (count == cap) {
                    size_t grown_cap = cap ? cap * 2 : 64;
                    site_name *grown = realloc(names, grown_cap * sizeof(*grown));
                    if (!grown) {
                        free(names);
                        return am_error_set(err, AM_ENOMEM, "out of memory linking pages");
                    }
                    names = grown;
                    cap = grown_cap;
                }
                names[count].core = r->key_core[name];
                names[count].key = key;
                names[count].rec = rec;
                count++;
            }
        }
    }
    if (count) {
        qsort(names, count, sizeof(*names), compare_site_names);
    }
    *out = names;
    *count_out = count;
    return AM_OK;
}

/* The names of site key `key` in `names` (sorted by key): its first, and how many. */
static const site_name *names_of_site(size_t *n_out, const site_name *names, size_t count,
                                      uint32_t key)
{
    size_t lo = 0, hi = count, end;

    *n_out = 0;
    if (count == 0) {
        return NULL;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (names[mid].key < key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (end = lo; end < count && names[end].key == key; end++) {
    }
    *n_out = end - lo;
    return names + lo;
}

typedef struct city_member {
    uint32_t city;
    uint32_t rec;
} city_member;

static int compare_city_members(const void *pa, const void *pb)
{
    const city_member *a = pa, *b = pb;

    if (a->city != b->city) {
        return a->city < b->city ? -1 : 1;
    }
    return a->rec < b->rec ? -1 : a->rec > b->rec;
}

/* Link one city's share of a name key's records, unless their companies conflict. */
static am_status link_name_part(const am_resolver *r, forest *f, scratch *s,
                                const city_member *part, size_t n, am_error *err)
{
    size_t i;
    am_status rc;

    s->members.count = 0;
    for (i = 0; i < n; i++) {
        rc = u32_push(&s->members, part[i].rec, err);
        if (rc) {
            return rc;
        }
    }
    rc = distinct_roots(s, f, s->members.v, s->members.count, err);
    if (!rc && s->roots.count > 1 && !tax_conflict(r, f, s->roots.v, s->roots.count) &&
        !name_conflict(f, s->roots.v, s->roots.count)) {
        unite_all(f, s->roots.v, s->roots.count);
    }
    return rc;
}

/*
 * Link the records of a name key: never an individual entrepreneur; records
 * of one city together, and those without a city only when the name is known
 * in one city at most (else they could be either company); and only when the
 * companies have no conflicting tax ids, at most one of them a website, and
 * no two cities.
 */
static am_status link_name(const am_resolver *r, forest *f, scratch *s, city_member **buf,
                           size_t *buf_cap, const uint32_t *members, size_t n, am_error *err)
{
    size_t i, m = 0, start, first_city;
    uint32_t city = 0;
    bool several = false;
    am_status rc = AM_OK;

    if (n > *buf_cap) {
        city_member *grown = realloc(*buf, n * sizeof(*grown));
        if (!grown) {
            return am_error_set(err, AM_ENOMEM, "out of memory linking names");
        }
        *buf = grown;
        *buf_cap = n;
    }
    for (i = 0; i < n; i++) {
        if (!(r->flags[members[i]] & REC_PERSON)) {
            uint32_t c = r->city[members[i]];
            (*buf)[m].city = c;
            (*buf)[m].rec = members[i];
            m++;
            several = several || (c && city && c != city);
            city = c ? c : city;
        }
    }
    if (m < 2) {
        return AM_OK;
    }
    if (!several) {
        return link_name_part(r, f, s, *buf, m, err); /* one city at most: all together */
    }
    /* Several cities (the rare case): one part per city, without those that name none. */
    qsort(*buf, m, sizeof(**buf), compare_city_members);
    for (first_city = 0; first_city < m && (*buf)[first_city].city == 0; first_city++) {
    }
    for (start = first_city; !rc && start < m; start = i) {
        for (i = start; i < m && (*buf)[i].city == (*buf)[start].city; i++) {
        }
        rc = link_name_part(r, f, s, *buf + start, i - start, err);
    }
    return rc;
}

/*
 * Keys in canonical order (kind, then hash): the order links are tried in.
 * Name keys sort by the name without its country first, so the keys of one
 * name in several countries (and without one) come together.
 */
static am_status order_keys(ordered **out, size_t *count_out, const am_resolver *r,
                            const uint32_t *start, am_error *err)
{
    ordered *keys = malloc((r->key_count ? r->key_count : 1) * sizeof(*keys));
    size_t k, n = 0;
    am_status rc;

    *out = NULL;
    *count_out = 0;
    if (!keys) {
        return am_error_set(err, AM_ENOMEM, "out of memory ordering %zu keys", r->key_count);
    }
    for (k = 0; k < r->key_count; k++) {
        bool name = r->key_kind[k] == AM_KEY_NAME;
        /* A key of one record links nothing, except a name: its other countries may. */
        if (!name && start[k + 1] - start[k] < 2) {
            continue;
        }
        keys[n].hi = name ? r->key_core[k] : r->key_hi[k];
        keys[n].lo = name ? r->key_hi[k] : r->key_lo[k];
        keys[n].id = (uint32_t)k;
        keys[n].top = r->key_kind[k];
        n++;
    }
    rc = sort_ordered(keys, n, err);
    if (rc) {
        free(keys);
        return rc;
    }
    *out = keys;
    *count_out = n;
    return AM_OK;
}

/* The records of every key, as one array: records of key k are at [start[k], start[k+1]). */
static am_status invert_keys(uint32_t **start_out, uint32_t **recs_out, const am_resolver *r,
                             am_error *err)
{
    uint32_t *start = calloc(r->key_count + 2, sizeof(*start));
    uint32_t *recs = malloc((r->rec_keys.count ? r->rec_keys.count : 1) * sizeof(*recs));
    size_t i, k;

    *start_out = *recs_out = NULL;
    if (!start || !recs) {
        free(start);
        free(recs);
        return am_error_set(err, AM_ENOMEM, "out of memory indexing %zu keys", r->key_count);
    }
    for (i = 0; i < r->rec_keys.count; i++) {
        start[r->rec_keys.v[i] + 2]++;
    }
    for (k = 2; k < r->key_count + 2; k++) {
        start[k] += start[k - 1];
    }
    /* start[k + 1] is the fill position of key k; afterwards it is key k's end. */
    for (i = 0; i < r->count; i++) {
        for (k = rec_begin(r, (uint32_t)i); k < r->rec_end[i]; k++) {
            recs[start[r->rec_keys.v[k] + 1]++] = (uint32_t)i;
        }
    }
    *start_out = start;
    *recs_out = recs;
    return AM_OK;
}

/*
 * The keys of one name (`keys`, `n` of them, in canonical order): each
 * country's records are linked on their own, and so are the records that gave
 * no country. Those join the name's records in a country only when the name is
 * known in that one country and a record there names the same city: without
 * a country the name alone is too weak (another company abroad may carry it).
 */
static am_status link_one_name(const am_resolver *r, forest *f, scratch *s, u32_vec *combined,
                               city_member **buf, size_t *buf_cap, const ordered *keys, size_t n,
                               const uint32_t *start, const uint32_t *recs, am_error *err)
{
    size_t i, j, countries = 0;
    int bare = -1, country = -1;
    am_status rc = AM_OK;

    for (i = 0; !rc && i < n; i++) {
        uint32_t k = keys[i].id;
        if (r->key_no_country[k]) {
            bare = (int)i;
        } else {
            countries++;
            country = (int)i;
        }
        if (start[k + 1] - start[k] > 1) {
            rc = link_name(r, f, s, buf, buf_cap, recs + start[k], start[k + 1] - start[k], err);
        }
    }
    if (rc || bare < 0 || countries != 1) {
        return rc;
    }
    {
        uint32_t kb = keys[bare].id, kc = keys[country].id;
        combined->count = 0;
        for (j = start[kc]; !rc && j < start[kc + 1]; j++) {
            rc = u32_push(combined, recs[j], err);
        }
        for (i = start[kb]; !rc && i < start[kb + 1]; i++) {
            uint32_t city = r->city[recs[i]];
            bool seen = false;
            for (j = start[kc]; city && !seen && j < start[kc + 1]; j++) {
                seen = r->city[recs[j]] == city;
            }
            if (seen) {
                rc = u32_push(combined, recs[i], err);
            }
        }
    }
    if (!rc && combined->count > start[keys[country].id + 1] - start[keys[country].id]) {
        rc = link_name(r, f, s, buf, buf_cap, combined->v, combined->count, err);
    }
    return rc;
}

static am_status link_all(const am_resolver *r, forest *f, const uint32_t *start,
                          const uint32_t *recs, const site_name *names, size_t name_count,
                          am_error *err)
{
    ordered *keys = NULL;
    scratch s;
    city_member *buf = NULL;
    u32_vec combined = {NULL, 0, 0};
    size_t buf_cap = 0, i, next, key_count = 0;
    am_status rc;

    memset(&s, 0, sizeof(s));
    s.stamp = calloc(r->count ? r->count : 1, sizeof(*s.stamp));
    if (!s.stamp) {
        return am_error_set(err, AM_ENOMEM, "out of memory resolving");
    }
    rc = order_keys(&keys, &key_count, r, start, err);
    for (i = 0; !rc && i < key_count; i = next) {
        uint32_t k = keys[i].id;
        const uint32_t *members = recs + start[k];
        size_t n = start[k + 1] - start[k];

        next = i + 1;
        if (r->key_kind[k] != AM_KEY_NAME) {
            size_t site_n = 0;
            /* page_domains is sorted by now (collect_site_names). */
            if (r->key_kind[k] == AM_KEY_DOMAIN && r->page_domains.count &&
                bsearch(&k, r->page_domains.v, r->page_domains.count, sizeof(k), compare_u32)) {
                const site_name *site = names_of_site(&site_n, names, name_count, k);
                rc = link_site(r, f, &s, members, n, site, site_n, err);
            } else {
                rc = n > 1 ? link_strong(r, f, &s, members, n, err) : AM_OK;
            }
            continue;
        }
        /* One name: its keys for each country, and maybe one without a country. */
        while (next < key_count && r->key_kind[keys[next].id] == AM_KEY_NAME &&
               r->key_core[keys[next].id] == r->key_core[k]) {
            next++;
        }
        rc = link_one_name(r, f, &s, &combined, &buf, &buf_cap, keys + i, next - i, start, recs,
                           err);
    }
    free(keys);
    free(buf);
    free(combined.v);
    free(s.stamp);
    free(s.roots.v);
    free(s.members.v);
    return rc;
}

/*
 * The table is only needed to add records: keep each key's hash by its id
 * and free it, which makes room for what finishing allocates.
 */
static am_status take_key_hashes(am_resolver *r, am_error *err)
{
    size_t k;

    r->key_hi = malloc((r->key_count ? r->key_count : 1) * sizeof(*r->key_hi));
    r->key_lo = malloc((r->key_count ? r->key_count : 1) * sizeof(*r->key_lo));
    if (!r->key_hi || !r->key_lo) {
        return am_error_set(err, AM_ENOMEM, "out of memory keeping %zu keys", r->key_count);
    }
    for (k = 0; k < r->key_count; k++) {
        const key_slot *s = &r->table[r->key_slot_of[k]];
        r->key_hi[k] = s->hi;
        r->key_lo[k] = s->lo;
    }
    free(r->table);
    r->table = NULL;
    r->table_cap = 0;
    free(r->key_slot_of);
    r->key_slot_of = NULL;
    return AM_OK;
}

am_status am_resolver_finish(uint32_t **entity_of_out, uint32_t *entity_count_out,
                             am_resolver *r, am_error *err)
{
    forest f;
    site_name *names = NULL;
    size_t name_count = 0;
    ordered *roots = NULL;
    uint32_t *slot_of_root = NULL, *entity_of = NULL, *start = NULL, *recs = NULL;
    size_t n = r->count ? r->count : 1, root_count = 0, i, k;
    am_status rc;

    *entity_of_out = NULL;
    *entity_count_out = 0;
    memset(&f, 0, sizeof(f));
    rc = take_key_hashes(r, err);
    if (!rc) {
        rc = invert_keys(&start, &recs, r, err);
    }
    if (!rc) {
        rc = collect_site_names(&names, &name_count, r, start, recs, err);
    }
    if (!rc) {
        /* From here on a key's records are read from `recs`: drop the per-record lists. */
        free(r->rec_keys.v);
        memset(&r->rec_keys, 0, sizeof(r->rec_keys));
        free(r->rec_end);
        r->rec_end = NULL;
        rc = forest_init(&f, r, start, recs, err);
    }
    if (!rc) {
        rc = link_all(r, &f, start, recs, names, name_count, err);
    }
    if (rc) {
        goto cleanup;
    }
    entity_of = malloc(n * sizeof(*entity_of));
    slot_of_root = malloc(n * sizeof(*slot_of_root));
    if (!entity_of || !slot_of_root) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory assigning entity ids");
        goto cleanup;
    }
    for (i = 0; i < r->count; i++) {
        /* Point every record straight at its root: the loops below read parent[] as root. */
        f.parent[i] = find_root(f.parent, (uint32_t)i);
        if (f.parent[i] == i) {
            slot_of_root[i] = (uint32_t)root_count++;
        }
    }
    roots = malloc((root_count ? root_count : 1) * sizeof(*roots));
    if (!roots) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory assigning entity ids");
        goto cleanup;
    }
    for (i = 0; i < r->count; i++) {
        if (f.parent[i] == i) {
            ordered *o = &roots[slot_of_root[i]];
            o->id = (uint32_t)i;
            o->top = f.group[i];
            o->hi = 0;
            o->lo = 0;
        }
    }
    /*
     * An entity's place: its group, then sums over its records of their key
     * hashes, city, person flag and identity. Sums do not depend on order, and
     * two entities tie only if their records are alike in all of that.
     */
    for (k = 0; k < r->key_count; k++) {
        for (i = start[k]; i < start[k + 1]; i++) {
            ordered *o = &roots[slot_of_root[f.parent[recs[i]]]];
            o->hi += r->key_hi[k];
            o->lo += r->key_lo[k];
        }
    }
    for (i = 0; i < r->count; i++) {
        ordered *o = &roots[slot_of_root[f.parent[i]]];
        o->hi += ((uint64_t)r->city[i] << 32 | r->identity[i]) * 0x9e3779b97f4a7c15ull;
        o->lo += (uint64_t)(r->flags[i] & REC_PERSON) * 0xc2b2ae3d27d4eb4full;
    }
    rc = sort_ordered(roots, root_count, err);
    if (rc) {
        goto cleanup;
    }
    for (i = 0; i < root_count; i++) {
        slot_of_root[roots[i].id] = (uint32_t)i; /* now: root -> entity id */
    }
    for (i = 0; i < r->count; i++) {
        entity_of[i] = slot_of_root[f.parent[i]];
    }
    *entity_of_out = entity_of;
    *entity_count_out = (uint32_t)root_count;
    entity_of = NULL;
cleanup:
    free(names);
    free(entity_of);
    free(slot_of_root);
    free(roots);
    free(start);
    free(recs);
    forest_free(&f);
    return rc;
}
