/*
 * Run: drives one batch through the stages in data-flow order: connectors ->
 * keys (normalize) -> resolve -> index -> overlap -> store. Records stream to
 * the store as they are read; only their keys' effect (union-find) and their
 * populations stay in memory.
 */
#include "acctmap/run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "acctmap/connector.h"
#include "acctmap/keys.h"
#include "acctmap/normalize.h"
#include "acctmap/overlap.h"
#include "acctmap/resolve.h"

typedef struct u32_vec {
    uint32_t *v;
    size_t count;
    size_t cap;
} u32_vec;

static am_status u32_push(u32_vec *vec, uint32_t x, am_error *err)
{
    if (vec->count == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 4096;
        uint32_t *grown = realloc(vec->v, cap * sizeof(*grown));
        if (!grown) {
            return am_error_set(err, AM_ENOMEM, "out of memory: %zu records", cap);
        }
        vec->v = grown;
        vec->cap = cap;
    }
    vec->v[vec->count++] = x;
    return AM_OK;
}

/* State of one batch run, freed at one place. */
typedef struct batch {
    const am_config *cfg;
    const am_run_observer *obs;
    am_run *run;
    am_run_writer *writer;
    am_normalizer *norm;
    am_resolver *resolver;
    am_index *index;
    u32_vec *populations; /* per org: population mask of each record */
    am_key_set keys;
    am_record_batch records;
    XXH3_state_t *fingerprint;
    am_key *batch_keys;  /* AM_KEYS_MAX slots per record of the current batch */
    uint8_t *key_counts; /* keys used per record */
    size_t key_cap;
    am_run_timings t;
} batch;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static am_status report(batch *b, const char *org, bool rejected, const char *line,
                        am_error *err)
{
    if (b->obs && b->obs->on_message) {
        b->obs->on_message(b->obs->ctx, org, rejected, line);
    }
    return am_run_writer_add_message(b->writer, line, err);
}

/* The fingerprint covers what a record says, so a changed input changes it. */
static void fingerprint_record(XXH3_state_t *h, const am_record *r)
{
    const char *fields[] = {r->id, r->name, r->domain, r->tax_id, r->country, r->city, r->owner};
    size_t i;

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        XXH3_128bits_update(h, fields[i], strlen(fields[i]) + 1);
    }
    XXH3_128bits_update(h, &r->populations, sizeof(r->populations));
    XXH3_128bits_update(h, &r->amount_cents, sizeof(r->amount_cents));
    XXH3_128bits_update(h, &r->has_amount, sizeof(r->has_amount));
}

/* Lowest population of a self record: it orders entity ids (see resolve.h). */
static uint8_t self_group(uint32_t populations)
{
    uint8_t g = 0;

    if (!populations) {
        return AM_RESOLVE_GROUP_NONE;
    }
    while (!(populations & 1u)) {
        populations >>= 1;
        g++;
    }
    return g;
}

static am_status batch_keys_reserve(batch *b, size_t records, am_error *err)
{
    size_t need = records * AM_KEYS_MAX;

    if (need > b->key_cap) {
        am_key *grown = realloc(b->batch_keys, need * sizeof(*grown));
        uint8_t *counts = realloc(b->key_counts, records);
        if (grown) {
            b->batch_keys = grown;
        }
        if (counts) {
            b->key_counts = counts;
        }
        if (!grown || !counts) {
            return am_error_set(err, AM_ENOMEM, "out of memory for %zu records' keys", records);
        }
        b->key_cap = need;
    }
    return AM_OK;
}

/*
 * One batch through keys, then resolve, then the store: stage by stage so
 * each is timed once per batch, not per record.
 */
static am_status take_batch(batch *b, size_t org, const am_config_org *co, am_source *src,
                            am_run_source *rs, am_error *err)
{
    am_run_org *ro = &b->run->orgs[org];
    const am_record *recs = b->records.records;
    size_t n = b->records.count, i, w;
    double t0;
    am_status rc;

    for (i = 0; i < b->records.reject_count; i++) {
        rc = report(b, co->id, true, b->records.rejects[i].msg, err);
        if (rc) {
            return rc;
        }
    }
    rs->rejected += b->records.reject_count;
    ro->rejected += b->records.reject_count;
    rc = batch_keys_reserve(b, n, err);
    if (rc) {
        return rc;
    }

    t0 = now_s();
    for (i = 0; i < n; i++) {
        rc = am_keys_from_record(&b->keys, b->norm, co->id, &recs[i], err);
        if (rc) {
            return rc;
        }
        memcpy(&b->batch_keys[i * AM_KEYS_MAX], b->keys.keys, b->keys.count * sizeof(am_key));
        b->key_counts[i] = (uint8_t)b->keys.count;
        for (w = 0; w < b->keys.warning_count; w++) {
            char line[512];
            snprintf(line, sizeof(line), "%s:%u: %s; the record matches on its other keys",
                     src->label, recs[i].line, b->keys.warnings[w]);
            rc = report(b, co->id, false, line, err);
            if (rc) {
                return rc;
            }
        }
        rs->warnings += b->keys.warning_count;
        ro->warnings += b->keys.warning_count;
        fingerprint_record(b->fingerprint, &recs[i]);
    }
    b->t.keys += now_s() - t0;

    t0 = now_s();
    for (i = 0; i < n; i++) {
        uint8_t group = co->is_self ? self_group(recs[i].populations) : AM_RESOLVE_GROUP_NONE;
        rc = am_resolver_add(b->resolver, &b->batch_keys[i * AM_KEYS_MAX], b->key_counts[i],
                             group, err);
        if (!rc) {
            rc = u32_push(&b->populations[org], recs[i].populations, err);
        }
        if (rc) {
            return rc;
        }
    }
    b->t.resolve += now_s() - t0;
    rs->records += n;
    ro->records += n;

    t0 = now_s();
    rc = am_run_writer_add_records(b->writer, org, recs, n, err);
    b->t.store += now_s() - t0;
    return rc;
}

static am_status pull_source(batch *b, size_t org, const am_source_config *sc,
                             am_run_source *rs, am_error *err)
{
    const am_config_org *co = sc->org;
    am_source *src = NULL;
    am_status rc;
    XXH128_canonical_t digest;
    size_t i;

    rc = am_source_open(&src, sc, err);
    if (rc) {
        return rc;
    }
    rs->type = sc->type;
    rs->label = am_arena_strndup(&b->run->arena, src->label, strlen(src->label));
    if (!rs->label) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory");
        goto cleanup;
    }
    XXH3_128bits_reset(b->fingerprint);
    for (;;) {
        double t0 = now_s();
        rc = am_source_next_batch(src, &b->records, err);
        b->t.read += now_s() - t0;
        if (rc) {
            goto cleanup;
        }
        if (b->records.count == 0 && b->records.reject_count == 0) {
            break;
        }
        rc = take_batch(b, org, co, src, rs, err);
        if (rc) {
            goto cleanup;
        }
    }
    XXH128_canonicalFromHash(&digest, XXH3_128bits_digest(b->fingerprint));
    for (i = 0; i < sizeof(digest.digest); i++) {
        snprintf(rs->fingerprint + 2 * i, 3, "%02x", digest.digest[i]);
    }
    if (b->obs && b->obs->on_source_done) {
        b->obs->on_source_done(b->obs->ctx, co->id, rs);
    }
cleanup:
    am_source_close(src);
    return rc;
}

static am_status describe_orgs(batch *b, am_error *err)
{
    size_t i, p, s;

    for (i = 0; i < b->run->org_count; i++) {
        const am_config_org *co = am_config_org_at(b->cfg, i);
        am_run_org *ro = &b->run->orgs[i];

        ro->id = co->id;
        ro->name = co->name;
        ro->is_self = co->is_self;
        ro->population_count = co->population_count;
        for (p = 0; p < co->population_count; p++) {
            ro->populations[p] = co->populations[p];
        }
        ro->source_count = co->source_count;
        ro->sources = am_arena_alloc(&b->run->arena, co->source_count * sizeof(*ro->sources));
        if (!ro->sources) {
            return am_error_set(err, AM_ENOMEM, "out of memory");
        }
        memset(ro->sources, 0, co->source_count * sizeof(*ro->sources));
        for (s = 0; s < co->source_count; s++) {
            /* Refuse an unknown type before reading anything. */
            if (!am_connector_find(co->sources[s].type)) {
                return am_error_set(err, AM_ECONFIG,
                                    "%s.type: unknown source type \"%s\"; use one of: %s",
                                    co->sources[s].where, co->sources[s].type,
                                    am_connector_types());
            }
        }
    }
    return AM_OK;
}

static am_status index_and_intersect(batch *b, am_error *err)
{
    uint32_t *entity_of = NULL;
    uint32_t entity_count = 0;
    size_t org, first = 0;
    am_status rc;

    double t0 = now_s();

    rc = am_resolver_finish(&entity_of, &entity_count, b->resolver, err);
    b->t.resolve += now_s() - t0;
    if (rc) {
        return rc;
    }
    t0 = now_s();
    b->run->entity_count = entity_count;
    b->run->key_count = am_resolver_key_count(b->resolver);
    rc = am_index_new(&b->index, b->run->org_count, err);
    for (org = 0; !rc && org < b->run->org_count; org++) {
        size_t n = b->populations[org].count;
        uint32_t *slice = malloc((n ? n : 1) * sizeof(*slice));
        if (!slice) {
            rc = am_error_set(err, AM_ENOMEM, "out of memory indexing");
            break;
        }
        if (n) {
            memcpy(slice, entity_of + first, n * sizeof(*slice));
        }
        first += n;
        rc = am_index_add_org(b->index, org, b->run->orgs[org].population_count, slice,
                              b->populations[org].v, n, err);
        b->populations[org].v = NULL; /* owned by the index now */
    }
    free(entity_of);
    b->t.index = now_s() - t0;
    t0 = now_s();
    for (org = 1; !rc && org < b->run->org_count; org++) {
        rc = am_overlap_matrix_compute(&b->run->orgs[org].matrix, b->index, 0, org, err);
        b->run->orgs[org].overlap = am_overlap_org_count(b->index, 0, org);
    }
    b->t.matrix = now_s() - t0;
    return rc;
}

am_status am_run_batch(am_run **out, am_run_timings *timings, const am_config *cfg,
                       am_store *st, const am_run_observer *obs, am_error *err)
{
    batch b;
    size_t org, s;
    am_status rc;
    double t0;

    *out = NULL;
    memset(&b, 0, sizeof(b));
    b.cfg = cfg;
    b.obs = obs;
    am_record_batch_init(&b.records);
    rc = am_run_new(&b.run, am_config_org_count(cfg), err);
    if (rc) {
        goto cleanup;
    }
    b.run->started_ms = now_ms();
    rc = describe_orgs(&b, err);
    if (rc) {
        goto cleanup;
    }
    b.populations = calloc(b.run->org_count, sizeof(*b.populations));
    b.fingerprint = XXH3_createState();
    if (!b.populations || !b.fingerprint) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory starting the run");
        goto cleanup;
    }
    rc = am_normalizer_new(&b.norm, err);
    if (!rc) {
        rc = am_resolver_new(&b.resolver, err);
    }
    if (!rc) {
        /* The store first: an unwritable store fails before any source is pulled. */
        rc = am_store_run_begin(&b.writer, st, err);
    }
    if (rc) {
        goto cleanup;
    }
    for (org = 0; org < b.run->org_count; org++) {
        const am_config_org *co = am_config_org_at(cfg, org);
        for (s = 0; s < co->source_count; s++) {
            rc = pull_source(&b, org, &co->sources[s], &b.run->orgs[org].sources[s], err);
            if (rc) {
                am_error_prefix(err, "source %s/%s: ", co->id, co->sources[s].type);
                goto cleanup;
            }
        }
    }
    rc = index_and_intersect(&b, err);
    if (rc) {
        goto cleanup;
    }
    t0 = now_s();
    b.run->finished_ms = now_ms();
    rc = am_store_run_commit(b.writer, b.run, b.index, err);
    b.writer = NULL; /* commit frees it */
    b.t.store += now_s() - t0;
    if (rc) {
        goto cleanup;
    }
    if (timings) {
        *timings = b.t;
    }
    *out = b.run;
    b.run = NULL;
cleanup:
    am_run_writer_abort(b.writer);
    if (b.populations) {
        for (org = 0; org < am_config_org_count(cfg); org++) {
            free(b.populations[org].v);
        }
        free(b.populations);
    }
    XXH3_freeState(b.fingerprint);
    free(b.batch_keys);
    free(b.key_counts);
    am_index_free(b.index);
    am_resolver_free(b.resolver);
    am_normalizer_free(b.norm);
    am_record_batch_dispose(&b.records);
    am_run_free(b.run);
    return rc;
}
