/*
 * Run: drives one batch through the stages in data-flow order: connectors ->
 * keys (normalize) -> resolve -> index -> overlap -> store. Worker threads
 * pull sources and turn records into keys; this thread resolves the keys and
 * streams the records to the store as the batches come, so only the
 * union-find and each record's populations stay in memory.
 */
#include "acctmap/run.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "acctmap/connector.h"
#include "acctmap/keys.h"
#include "acctmap/normalize.h"
#include "acctmap/overlap.h"
#include "acctmap/policy.h"
#include "acctmap/report.h"
#include "acctmap/resolve.h"

#define WORKERS_MAX 8
#define SLOTS_PER_WORKER 3
/* Records ahead whose key slots are prefetched: enough to hide a cache miss. */
#define RESOLVE_PREFETCH 8
#define LABEL_MAX sizeof(((am_source *)0)->label)

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

/* ---- what workers hand to this thread ------------------------------------ */

typedef enum slot_kind {
    SLOT_BATCH,       /* records with their keys */
    SLOT_SOURCE_DONE, /* the source was read to its end */
    SLOT_FAILED,      /* the source failed; `err` says why */
    SLOT_END          /* to the store thread: nothing more comes */
} slot_kind;

typedef struct slot {
    slot_kind kind;
    size_t job;                 /* index into run_state.jobs */
    am_record_batch records;
    am_key *keys;               /* AM_KEYS_MAX slots per record */
    uint8_t *key_counts;
    am_resolve_facts *facts;    /* person and city of each record (group: set later) */
    size_t key_cap;             /* records the two arrays above can hold */
    const char **warnings;      /* lines, in records.arena */
    size_t warning_count;
    size_t warning_cap;
    double read_s;              /* time the worker spent on this batch */
    double keys_s;
    am_error err;
} slot;

/* A FIFO of slots with its own lock: one for free slots, one for filled ones. */
typedef struct slot_queue {
    slot **items;
    size_t cap;
    size_t head;
    size_t count;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} slot_queue;

static int queue_init(slot_queue *q, size_t cap)
{
    memset(q, 0, sizeof(*q));
    q->items = calloc(cap, sizeof(*q->items));
    q->cap = cap;
    if (!q->items) {
        return -1;
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    return 0;
}

static void queue_dispose(slot_queue *q)
{
    if (q->items) {
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cv);
        free(q->items);
    }
}

static void queue_push(slot_queue *q, slot *s)
{
    pthread_mutex_lock(&q->mu);
    q->items[(q->head + q->count++) % q->cap] = s;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* Blocks until a slot is there, or returns NULL once *cancelled is set. */
static slot *queue_pop(slot_queue *q, const bool *cancelled)
{
    slot *s = NULL;

    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && !(cancelled && *cancelled)) {
        pthread_cond_wait(&q->cv, &q->mu);
    }
    if (q->count && !(cancelled && *cancelled)) {
        s = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    pthread_mutex_unlock(&q->mu);
    return s;
}

/* ---- the state of one batch run ------------------------------------------ */

/*
 * Our records that partners' reports show, kept as they stream by: only
 * records of populations some partner sees as accounts, only the fields
 * shown. Nothing is kept when nothing is shared. Partners' records are not
 * kept: a report needs only their ids, read back from the run being written
 * (keeping every partner's records doubled the run's memory).
 */
typedef struct kept_records {
    uint32_t populations; /* records in any of these are kept */
    uint32_t fields;      /* bits of am_share_field; the id is always kept */
    uint32_t *number;     /* store-order number of each kept record, ascending */
    am_record *records;
    size_t count;
    size_t cap;
    am_arena arena;
} kept_records;

typedef struct job {
    size_t org;
    uint32_t source;    /* position in the org's sources: each record's `source` */
    const am_source_config *cfg;
    am_run_source *out; /* the worker sets label and fingerprint; this thread the counts */
    char *label;        /* out->label's buffer, in the run's arena */
    am_source_env env;  /* source_key points into the run's arena */
} job;

typedef struct run_state {
    const am_config *cfg;
    const am_run_observer *obs;
    am_run *run;
    am_run_writer *writer;
    am_resolver *resolver;
    am_index *index;
    u32_vec *populations; /* per org: population mask of each record, in store order */
    u32_vec *resolver_ids; /* per org: resolver number of each record, in store order */
    int64_t *self_amounts; /* self's records' amounts in cents (0: none), in store order */
    size_t self_amount_count;
    size_t self_amount_cap;
    bool open_amounts;     /* one of self's opportunities carries an amount */
    job *jobs;
    size_t job_count;
    size_t next_job; /* under jobs_mu */
    pthread_mutex_t jobs_mu;
    slot *slots;
    size_t slot_count;
    slot_queue free_slots;
    slot_queue filled;
    slot_queue to_store;
    slot end_marker;
    bool cancelled;     /* under free_slots.mu */
    bool store_failed;  /* under to_store.mu */
    am_error store_err; /* set by the store thread before store_failed */
    am_secret_keeper secrets; /* the store, for sources' rotated tokens */
    kept_records kept;           /* our records the reports show */
    am_record_batch partner_ids; /* one partner's record ids, while its report is built */
    size_t partner_ids_org;
    am_run_timings t;
} run_state;

/* ---- workers: read and key ------------------------------------------------ */

static am_status slot_reserve(slot *s, size_t records, am_error *err)
{
    if (records > s->key_cap) {
        am_key *keys = realloc(s->keys, records * AM_KEYS_MAX * sizeof(*keys));
        uint8_t *counts;
        am_resolve_facts *facts;
        if (!keys) {
            return am_error_set(err, AM_ENOMEM, "out of memory for %zu records' keys", records);
        }
        s->keys = keys;
        counts = realloc(s->key_counts, records);
        if (!counts) {
            return am_error_set(err, AM_ENOMEM, "out of memory for %zu records' keys", records);
        }
        s->key_counts = counts;
        facts = realloc(s->facts, records * sizeof(*facts));
        if (!facts) {
            return am_error_set(err, AM_ENOMEM, "out of memory for %zu records' keys", records);
        }
        s->facts = facts;
        s->key_cap = records;
    }
    s->warning_count = 0;
    return AM_OK;
}

static am_status slot_warn(slot *s, const char *label, uint32_t line, const char *what,
                           am_error *err)
{
    char text[512];
    char *copy;

    if (s->warning_count == s->warning_cap) {
        size_t cap = s->warning_cap ? s->warning_cap * 2 : 64;
        const char **grown = realloc(s->warnings, cap * sizeof(*grown));
        if (!grown) {
            return am_error_set(err, AM_ENOMEM, "out of memory recording a warning");
        }
        s->warnings = grown;
        s->warning_cap = cap;
    }
    if (strstr(label, "://")) {
        /* A URL label (CRM, database): "host:4" would read as a port. */
        snprintf(text, sizeof(text), "%s: record %u: %s", label, line, what);
    } else {
        snprintf(text, sizeof(text), "%s:%u: %s", label, line, what);
    }
    copy = am_arena_strndup(&s->records.arena, text, strlen(text));
    if (!copy) {
        return am_error_set(err, AM_ENOMEM, "out of memory recording a warning");
    }
    s->warnings[s->warning_count++] = copy;
    return AM_OK;
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

/* Tells apart records that agree in every key (see am_resolve_facts). */
static uint32_t record_identity(const char *org, const char *id)
{
    XXH64_hash_t h = XXH3_64bits_withSeed(id, strlen(id), XXH3_64bits(org, strlen(org)));

    return (uint32_t)(h ^ (h >> 32));
}

static am_status key_batch(slot *s, am_key_set *set, am_normalizer *norm, XXH3_state_t *fp,
                           const job *j, const char *label, am_error *err)
{
    const am_record *recs = s->records.records;
    size_t i, w;
    am_status rc = slot_reserve(s, s->records.count, err);

    for (i = 0; !rc && i < s->records.count; i++) {
        rc = am_keys_from_record(set, norm, j->cfg->org->id, &recs[i], err);
        if (rc) {
            break;
        }
        memcpy(&s->keys[i * AM_KEYS_MAX], set->keys, set->count * sizeof(am_key));
        s->key_counts[i] = (uint8_t)set->count;
        s->facts[i].person = set->person;
        s->facts[i].page = set->page;
        s->facts[i].city = set->city;
        s->facts[i].identity = record_identity(j->cfg->org->id, recs[i].id);
        for (w = 0; !rc && w < set->warning_count; w++) {
            rc = slot_warn(s, label, recs[i].line, set->warnings[w], err);
        }
        fingerprint_record(fp, &recs[i]);
    }
    return rc;
}

static void finish_fingerprint(char out[33], XXH3_state_t *fp)
{
    XXH128_canonical_t digest;
    size_t i;

    XXH128_canonicalFromHash(&digest, XXH3_128bits_digest(fp));
    for (i = 0; i < sizeof(digest.digest); i++) {
        snprintf(out + 2 * i, 3, "%02x", digest.digest[i]);
    }
}

static bool next_job(run_state *st, size_t *job_out)
{
    bool got;

    pthread_mutex_lock(&st->jobs_mu);
    got = st->next_job < st->job_count;
    if (got) {
        *job_out = st->next_job++;
    }
    pthread_mutex_unlock(&st->jobs_mu);
    return got;
}

/* Pull one source to its end, handing every batch over. False when cancelled or failed. */
static bool pull_source(run_state *st, size_t job_index, am_normalizer *norm, am_key_set *set,
                        XXH3_state_t *fp)
{
    const job *j = &st->jobs[job_index];
    am_source *src = NULL;
    slot *s = queue_pop(&st->free_slots, &st->cancelled);
    size_t i;
    am_status rc;

    if (!s) {
        return false;
    }
    s->job = job_index;
    am_error_clear(&s->err);
    rc = am_source_open(&src, j->cfg, &j->env, &s->err);
    if (!rc) {
        /* Only this worker writes the label; the store reads it after every worker ended. */
        snprintf(j->label, LABEL_MAX, "%s", src->label);
        XXH3_128bits_reset(fp);
    }
    while (!rc) {
        double t0 = now_s(), t1;
        rc = am_source_next_batch(src, &s->records, &s->err);
        t1 = now_s();
        s->read_s = t1 - t0;
        if (rc) {
            break;
        }
        for (i = 0; i < s->records.count; i++) {
            s->records.records[i].source = j->source;
        }
        if (s->records.count == 0 && s->records.reject_count == 0) {
            finish_fingerprint(j->out->fingerprint, fp);
            s->kind = SLOT_SOURCE_DONE;
            queue_push(&st->filled, s);
            am_source_close(src);
            return true;
        }
        rc = key_batch(s, set, norm, fp, j, src->label, &s->err);
        s->keys_s = now_s() - t1;
        if (rc) {
            break;
        }
        s->kind = SLOT_BATCH;
        queue_push(&st->filled, s);
        s = queue_pop(&st->free_slots, &st->cancelled);
        if (!s) {
            am_source_close(src);
            return false;
        }
        s->job = job_index;
    }
    s->kind = SLOT_FAILED;
    if (s->err.status != AM_ECONFIG) {
        /* A config mistake names its file and field already ("acctmap.json: orgs[1]..."). */
        am_error_prefix(&s->err, "source %s/%s: ", j->cfg->org->id, j->cfg->type);
    }
    queue_push(&st->filled, s);
    am_source_close(src);
    return false;
}

static void *worker_main(void *arg)
{
    run_state *st = arg;
    am_normalizer *norm = NULL;
    am_key_set *set = malloc(sizeof(*set));
    XXH3_state_t *fp = XXH3_createState();
    am_error err = {AM_OK, ""};
    size_t job_index;

    if (!set || !fp || am_normalizer_new(&norm, &err) != AM_OK) {
        slot *s = queue_pop(&st->free_slots, &st->cancelled);
        if (s) {
            s->kind = SLOT_FAILED;
            am_error_set(&s->err, err.status ? err.status : AM_ENOMEM, "%s",
                         err.status ? err.msg : "out of memory starting a worker");
            queue_push(&st->filled, s);
        }
        goto cleanup;
    }
    while (next_job(st, &job_index)) {
        if (!pull_source(st, job_index, norm, set, fp)) {
            break;
        }
    }
cleanup:
    am_normalizer_free(norm);
    XXH3_freeState(fp);
    free(set);
    return NULL;
}

/* ---- this thread: resolve and store ---------------------------------------- */

static void tell(run_state *st, const char *org, bool rejected, const char *line)
{
    if (st->obs && st->obs->on_message) {
        st->obs->on_message(st->obs->ctx, org, rejected, line);
    }
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

/* Self's amounts, kept for the open pipeline of each cell (8 bytes a record). */
static am_status keep_self_amounts(run_state *st, const am_record *recs, size_t n,
                                   am_error *err)
{
    size_t i;

    if (st->self_amount_cap - st->self_amount_count < n) {
        size_t cap = st->self_amount_cap ? st->self_amount_cap : 4096;
        int64_t *grown;
        while (cap - st->self_amount_count < n) {
            cap *= 2;
        }
        grown = realloc(st->self_amounts, cap * sizeof(*grown));
        if (!grown) {
            return am_error_set(err, AM_ENOMEM, "out of memory: %zu records' amounts", cap);
        }
        st->self_amounts = grown;
        st->self_amount_cap = cap;
    }
    for (i = 0; i < n; i++) {
        bool open = recs[i].has_amount && recs[i].amount_cents != 0 &&
                    (recs[i].populations & ((uint32_t)1 << AM_POP_OPPORTUNITIES));
        st->self_amounts[st->self_amount_count++] = recs[i].has_amount ? recs[i].amount_cents : 0;
        st->open_amounts = st->open_amounts || open;
    }
    return AM_OK;
}

static am_status keep_record(kept_records *k, const am_record *r, uint32_t number,
                             am_error *err)
{
    const char *src[AM_FIELD_COUNT] = {r->id,      r->name, r->domain, r->tax_id,
                                       r->country, r->city, r->owner,  ""};
    const char **dst[AM_FIELD_COUNT - 1];
    am_record *copy;
    size_t f;

    if (k->count == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 256;
        am_record *grown = realloc(k->records, cap * sizeof(*grown));
        uint32_t *numbers;
        if (!grown) {
            return am_error_set(err, AM_ENOMEM, "out of memory keeping records for reports");
        }
        k->records = grown;
        numbers = realloc(k->number, cap * sizeof(*numbers));
        if (!numbers) {
            return am_error_set(err, AM_ENOMEM, "out of memory keeping records for reports");
        }
        k->number = numbers;
        k->cap = cap;
    }
    copy = &k->records[k->count];
    *copy = *r;
    dst[AM_FIELD_ID] = &copy->id;
    dst[AM_FIELD_NAME] = &copy->name;
    dst[AM_FIELD_DOMAIN] = &copy->domain;
    dst[AM_FIELD_TAX_ID] = &copy->tax_id;
    dst[AM_FIELD_COUNTRY] = &copy->country;
    dst[AM_FIELD_CITY] = &copy->city;
    dst[AM_FIELD_OWNER] = &copy->owner;
    for (f = 0; f < AM_FIELD_AMOUNT; f++) {
        bool wanted = f == AM_FIELD_ID || (k->fields & (1u << f));
        *dst[f] = wanted ? am_arena_strndup(&k->arena, src[f], strlen(src[f])) : "";
        if (!*dst[f]) {
            return am_error_set(err, AM_ENOMEM, "out of memory keeping records for reports");
        }
    }
    if (!(k->fields & (1u << AM_FIELD_AMOUNT))) {
        copy->has_amount = false;
        copy->amount_cents = 0;
    }
    k->number[k->count++] = number;
    return AM_OK;
}

static am_status take_batch(run_state *st, slot *s, am_error *err)
{
    const job *j = &st->jobs[s->job];
    const am_config_org *co = j->cfg->org;
    am_run_org *ro = &st->run->orgs[j->org];
    const am_record *recs = s->records.records;
    size_t n = s->records.count, i;
    double t0;
    am_status rc = AM_OK;

    for (i = 0; i < s->records.reject_count; i++) {
        tell(st, co->id, true, s->records.rejects[i].msg);
    }
    for (i = 0; i < s->warning_count; i++) {
        tell(st, co->id, false, s->warnings[i]);
    }
    j->out->rejected += s->records.reject_count;
    ro->rejected += s->records.reject_count;
    j->out->warnings += s->warning_count;
    ro->warnings += s->warning_count;

    t0 = now_s();
    for (i = 0; i < n; i++) {
        am_resolve_facts facts;
        uint32_t number = (uint32_t)am_resolver_record_count(st->resolver);

        facts.group = co->is_self ? self_group(recs[i].populations) : AM_RESOLVE_GROUP_NONE;
        facts.person = s->facts[i].person;
        facts.page = s->facts[i].page;
        facts.city = s->facts[i].city;
        facts.identity = s->facts[i].identity;
        if (i + RESOLVE_PREFETCH < n) {
            am_resolver_prefetch(st->resolver, &s->keys[(i + RESOLVE_PREFETCH) * AM_KEYS_MAX],
                                 s->key_counts[i + RESOLVE_PREFETCH]);
        }
        rc = am_resolver_add(st->resolver, &s->keys[i * AM_KEYS_MAX], s->key_counts[i], &facts,
                             err);
        if (!rc && co->is_self && (st->kept.populations & recs[i].populations)) {
            rc = keep_record(&st->kept, &recs[i], (uint32_t)st->populations[j->org].count, err);
        }
        if (!rc) {
            rc = u32_push(&st->populations[j->org], recs[i].populations, err);
        }
        if (!rc) {
            rc = u32_push(&st->resolver_ids[j->org], number, err);
        }
        if (rc) {
            return rc;
        }
    }
    st->t.resolve += now_s() - t0;
    if (co->is_self) {
        rc = keep_self_amounts(st, recs, n, err);
        if (rc) {
            return rc;
        }
    }
    j->out->records += n;
    ro->records += n;
    return AM_OK;
}

/* ---- the store thread: records and messages go to the store in this order -- */

static am_status store_batch(run_state *st, slot *s, am_error *err)
{
    const job *j = &st->jobs[s->job];
    size_t i;
    am_status rc = AM_OK;

    for (i = 0; !rc && i < s->records.reject_count; i++) {
        rc = am_run_writer_add_message(st->writer, s->records.rejects[i].msg, err);
    }
    for (i = 0; !rc && i < s->warning_count; i++) {
        rc = am_run_writer_add_message(st->writer, s->warnings[i], err);
    }
    if (!rc) {
        rc = am_run_writer_add_records(st->writer, j->org, s->records.records, s->records.count,
                                       err);
    }
    return rc;
}

static void *store_main(void *arg)
{
    run_state *st = arg;
    bool failed = false;

    for (;;) {
        slot *s = queue_pop(&st->to_store, NULL);
        double t0 = now_s();

        if (s->kind == SLOT_END) {
            break;
        }
        if (!failed && store_batch(st, s, &st->store_err) != AM_OK) {
            failed = true;
            pthread_mutex_lock(&st->to_store.mu);
            st->store_failed = true;
            pthread_mutex_unlock(&st->to_store.mu);
        }
        st->t.store += now_s() - t0;
        queue_push(&st->free_slots, s);
    }
    return NULL;
}

static bool store_has_failed(run_state *st)
{
    bool failed;

    pthread_mutex_lock(&st->to_store.mu);
    failed = st->store_failed;
    pthread_mutex_unlock(&st->to_store.mu);
    return failed;
}

static void cancel_workers(run_state *st)
{
    pthread_mutex_lock(&st->free_slots.mu);
    st->cancelled = true;
    pthread_cond_broadcast(&st->free_slots.cv);
    pthread_mutex_unlock(&st->free_slots.mu);
}

/* Take filled slots until every source is done or one fails. */
static am_status collect(run_state *st, am_error *err)
{
    size_t done = 0;
    am_status rc = AM_OK;

    while (done < st->job_count) {
        slot *s = queue_pop(&st->filled, NULL);
        const job *j = &st->jobs[s->job];

        st->t.read += s->read_s;
        st->t.keys += s->keys_s;
        s->read_s = s->keys_s = 0;
        if (s->kind == SLOT_FAILED) {
            *err = s->err;
            rc = err->status ? err->status : AM_EINTERNAL;
        } else if (s->kind == SLOT_SOURCE_DONE) {
            done++;
            if (st->obs && st->obs->on_source_done) {
                st->obs->on_source_done(st->obs->ctx, j->cfg->org->id, j->out);
            }
        } else {
            rc = take_batch(st, s, err);
            if (!rc) {
                queue_push(&st->to_store, s); /* the store thread frees the slot */
                s = NULL;
            }
        }
        if (s) {
            queue_push(&st->free_slots, s);
        }
        if (!rc && store_has_failed(st)) {
            rc = AM_ESTORE; /* the message is taken after the store thread ended */
        }
        if (rc) {
            return rc;
        }
    }
    return AM_OK;
}

static am_status secret_load(void *ctx, const char *name, char **value_out, am_error *err)
{
    return am_store_secret_load(value_out, ctx, name, err);
}

static am_status secret_save(void *ctx, const char *name, const char *value, am_error *err)
{
    return am_store_secret_save(ctx, name, value, err);
}

static am_status describe_orgs(run_state *st, am_error *err)
{
    size_t i, p, s, k = 0;
    char *key;

    for (i = 0; i < st->run->org_count; i++) {
        const am_config_org *co = am_config_org_at(st->cfg, i);
        am_run_org *ro = &st->run->orgs[i];

        ro->id = co->id;
        ro->name = co->name;
        ro->is_self = co->is_self;
        ro->population_count = co->population_count;
        for (p = 0; p < co->population_count; p++) {
            ro->populations[p] = co->populations[p];
        }
        ro->source_count = co->source_count;
        ro->sources = am_arena_alloc(&st->run->arena, co->source_count * sizeof(*ro->sources));
        if (!ro->sources) {
            return am_error_set(err, AM_ENOMEM, "out of memory");
        }
        memset(ro->sources, 0, co->source_count * sizeof(*ro->sources));
        st->job_count += co->source_count;
    }
    st->jobs = calloc(st->job_count ? st->job_count : 1, sizeof(*st->jobs));
    if (!st->jobs) {
        return am_error_set(err, AM_ENOMEM, "out of memory");
    }
    for (i = 0; i < st->run->org_count; i++) {
        const am_config_org *co = am_config_org_at(st->cfg, i);
        for (s = 0; s < co->source_count; s++) {
            am_run_source *rs = &st->run->orgs[i].sources[s];
            /* Refuse an unknown type before reading anything. */
            if (!am_connector_find(co->sources[s].type)) {
                return am_error_set(err, AM_ECONFIG,
                                    "%s.type: unknown source type \"%s\"; use one of: %s",
                                    co->sources[s].where, co->sources[s].type,
                                    am_connector_types());
            }
            rs->type = co->sources[s].type;
            st->jobs[k].label = am_arena_alloc(&st->run->arena, LABEL_MAX);
            rs->label = st->jobs[k].label;
            if (!rs->label) {
                return am_error_set(err, AM_ENOMEM, "out of memory");
            }
            memset(st->jobs[k].label, 0, LABEL_MAX);
            st->jobs[k].org = i;
            st->jobs[k].source = (uint32_t)s;
            st->jobs[k].cfg = &co->sources[s];
            st->jobs[k].out = rs;
            /* Org ids are [a-z0-9_-], so "<org>.<n>" is a valid secret name. */
            key = am_arena_alloc(&st->run->arena, AM_SECRET_NAME_MAX + 1);
            if (!key) {
                return am_error_set(err, AM_ENOMEM, "out of memory");
            }
            snprintf(key, AM_SECRET_NAME_MAX + 1, "%s.%zu", co->id, s);
            st->jobs[k].env.source_key = key;
            st->jobs[k].env.secrets = &st->secrets;
            if (st->obs && st->obs->on_source_progress) {
                st->jobs[k].env.progress = st->obs->on_source_progress;
                st->jobs[k].env.progress_ctx = st->obs->ctx;
            }
            k++;
        }
    }
    return AM_OK;
}

static am_status index_and_intersect(run_state *st, am_error *err)
{
    uint32_t *entity_of = NULL;
    uint32_t entity_count = 0;
    size_t org, i;
    double t0 = now_s();
    am_status rc;

    rc = am_resolver_finish(&entity_of, &entity_count, st->resolver, err);
    st->t.resolve += now_s() - t0;
    if (rc) {
        return rc;
    }
    st->run->entity_count = entity_count;
    st->run->key_count = am_resolver_key_count(st->resolver);
    t0 = now_s();
    rc = am_index_new(&st->index, st->run->org_count, err);
    for (org = 0; !rc && org < st->run->org_count; org++) {
        u32_vec *ids = &st->resolver_ids[org];
        uint32_t *org_entities = malloc((ids->count ? ids->count : 1) * sizeof(*org_entities));
        if (!org_entities) {
            rc = am_error_set(err, AM_ENOMEM, "out of memory indexing");
            break;
        }
        for (i = 0; i < ids->count; i++) {
            org_entities[i] = entity_of[ids->v[i]];
        }
        rc = am_index_add_org(st->index, org, st->run->orgs[org].population_count, org_entities,
                              st->populations[org].v, ids->count, err);
        st->populations[org].v = NULL; /* owned by the index now */
    }
    free(entity_of);
    st->t.index = now_s() - t0;
    t0 = now_s();
    for (org = 1; !rc && org < st->run->org_count; org++) {
        rc = am_overlap_matrix_compute(&st->run->orgs[org].matrix, st->index, 0, org, err);
        st->run->orgs[org].overlap = am_overlap_org_count(st->index, 0, org);
    }
    /* Without an amount on any open opportunity of ours, the run has no pipeline. */
    if (!rc && st->open_amounts) {
        rc = am_index_prepare_lookup(st->index, 0, err);
    }
    for (org = 1; !rc && st->open_amounts && org < st->run->org_count; org++) {
        rc = am_overlap_pipeline_compute(&st->run->orgs[org].pipeline, st->index, 0, org,
                                         AM_POP_OPPORTUNITIES, st->self_amounts, err);
    }
    st->t.matrix = now_s() - t0;
    return rc;
}

/* Which of our records and fields the partners' reports show (see kept_records). */
static void plan_kept(run_state *st)
{
    size_t org;

    for (org = 1; org < st->run->org_count; org++) {
        const am_policy *p = am_config_org_at(st->cfg, org)->policy;
        uint32_t ours, fields, theirs;
        if (p) {
            am_policy_needs(&ours, &fields, &theirs, p);
            st->kept.populations |= ours;
            st->kept.fields |= fields;
        }
    }
}

static const am_record *kept_record(void *ctx, size_t org, uint32_t number)
{
    const run_state *st = ctx;
    const kept_records *k = &st->kept;
    size_t lo = 0, hi = k->count;

    if (org != 0) {
        /* The partner's ids, read back for this report (store order is index order). */
        return org == st->partner_ids_org && number < st->partner_ids.count
                   ? &st->partner_ids.records[number]
                   : NULL;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (k->number[mid] < number) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < k->count && k->number[lo] == number ? &k->records[lo] : NULL;
}

/* Every partner's report, as canonical JSON parts of the run (before it is published). */
static am_status write_reports(run_state *st, am_error *err)
{
    size_t org;
    bool prepared_self = false;
    am_status rc = AM_OK;

    for (org = 1; !rc && org < st->run->org_count; org++) {
        const am_config_org *co = am_config_org_at(st->cfg, org);
        am_report *report = NULL;
        char *json = NULL;
        size_t len = 0;
        char part[96];
        uint32_t ours, fields, theirs;

        if (!co->policy) {
            continue;
        }
        am_policy_needs(&ours, &fields, &theirs, co->policy);
        if (theirs) {
            /* Listing a cell's pairs needs both orgs' records by entity. */
            if (!prepared_self) {
                rc = am_index_prepare_lookup(st->index, 0, err);
                prepared_self = true;
            }
            if (!rc) {
                rc = am_index_prepare_lookup(st->index, org, err);
            }
            if (!rc) {
                rc = am_run_writer_load_record_ids(&st->partner_ids, st->writer, org, err);
                st->partner_ids_org = org;
            }
        }
        if (!rc) {
            rc = am_report_build(&report, st->run, st->index, org, co->policy, kept_record, st,
                                 err);
        }
        if (!rc) {
            rc = am_report_save(&json, &len, report, err);
        }
        if (!rc) {
            am_report_part_name(part, sizeof(part), co->id);
            rc = am_run_writer_add_part(st->writer, part, json, len, err);
        }
        free(json);
        am_report_free(report);
        if (rc && rc != AM_ESTORE && rc != AM_EIO) {
            /* A store failure speaks for itself (and names the store). */
            am_error_prefix(err, "report for %s: ", co->id);
        }
    }
    return rc;
}

static size_t worker_count(size_t jobs)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n = cpus > 0 ? (size_t)cpus : 1;

    if (n > WORKERS_MAX) {
        n = WORKERS_MAX;
    }
    return n < jobs ? n : (jobs ? jobs : 1);
}

static am_status start_and_collect(run_state *st, am_error *err)
{
    pthread_t threads[WORKERS_MAX], store_thread;
    size_t workers = worker_count(st->job_count), started = 0, i;
    am_status rc = AM_OK;

    st->slot_count = workers * SLOTS_PER_WORKER;
    st->slots = calloc(st->slot_count, sizeof(*st->slots));
    if (!st->slots || queue_init(&st->free_slots, st->slot_count) != 0 ||
        queue_init(&st->filled, st->slot_count) != 0 ||
        queue_init(&st->to_store, st->slot_count + 1) != 0) {
        return am_error_set(err, AM_ENOMEM, "out of memory starting the workers");
    }
    st->end_marker.kind = SLOT_END;
    if (pthread_create(&store_thread, NULL, store_main, st) != 0) {
        return am_error_set(err, AM_ENOMEM, "cannot start the store thread");
    }
    for (i = 0; i < st->slot_count; i++) {
        am_record_batch_init(&st->slots[i].records);
        queue_push(&st->free_slots, &st->slots[i]);
    }
    for (i = 0; i < workers; i++) {
        if (pthread_create(&threads[i], NULL, worker_main, st) != 0) {
            rc = am_error_set(err, AM_ENOMEM, "cannot start a worker thread");
            break;
        }
        started++;
    }
    if (!rc) {
        rc = collect(st, err);
    }
    if (rc) {
        cancel_workers(st);
    }
    for (i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
    }
    queue_push(&st->to_store, &st->end_marker);
    pthread_join(store_thread, NULL);
    if (st->store_failed && (!rc || rc == AM_ESTORE)) {
        *err = st->store_err;
        rc = err->status;
    }
    return rc;
}

am_status am_run_batch(am_run **out, am_run_timings *timings, const am_config *cfg,
                       am_store *st_, const am_run_observer *obs, am_error *err)
{
    run_state st;
    size_t org, i;
    double t0;
    am_status rc;

    *out = NULL;
    memset(&st, 0, sizeof(st));
    am_record_batch_init(&st.partner_ids);
    am_arena_init(&st.kept.arena);
    st.cfg = cfg;
    st.obs = obs;
    st.secrets.ctx = st_;
    st.secrets.load = secret_load;
    st.secrets.save = secret_save;
    pthread_mutex_init(&st.jobs_mu, NULL);
    rc = am_run_new(&st.run, am_config_org_count(cfg), err);
    if (rc) {
        goto cleanup;
    }
    st.run->started_ms = now_ms();
    rc = describe_orgs(&st, err);
    if (rc) {
        goto cleanup;
    }
    st.populations = calloc(st.run->org_count, sizeof(*st.populations));
    st.resolver_ids = calloc(st.run->org_count, sizeof(*st.resolver_ids));
    if (!st.populations || !st.resolver_ids) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory starting the run");
        goto cleanup;
    }
    plan_kept(&st);
    rc = am_resolver_new(&st.resolver, err);
    if (!rc) {
        /* The store first: an unwritable store fails before any source is pulled. */
        rc = am_store_run_begin(&st.writer, st_, err);
    }
    if (!rc) {
        rc = start_and_collect(&st, err);
    }
    if (!rc) {
        rc = index_and_intersect(&st, err);
    }
    if (rc) {
        goto cleanup;
    }
    t0 = now_s();
    st.run->finished_ms = now_ms();
    rc = write_reports(&st, err);
    st.t.reports = now_s() - t0;
    if (rc) {
        goto cleanup;
    }
    t0 = now_s();
    rc = am_store_run_commit(st.writer, st.run, st.index, err);
    st.writer = NULL; /* commit frees it */
    st.t.store += now_s() - t0;
    if (rc) {
        goto cleanup;
    }
    if (timings) {
        *timings = st.t;
    }
    *out = st.run;
    st.run = NULL;
cleanup:
    am_run_writer_abort(st.writer);
    for (i = 0; i < st.slot_count; i++) {
        am_record_batch_dispose(&st.slots[i].records);
        free(st.slots[i].keys);
        free(st.slots[i].key_counts);
        free(st.slots[i].facts);
        free(st.slots[i].warnings);
    }
    free(st.slots);
    queue_dispose(&st.free_slots);
    queue_dispose(&st.filled);
    queue_dispose(&st.to_store);
    for (org = 0; (st.populations || st.resolver_ids) && org < am_config_org_count(cfg); org++) {
        if (st.populations) {
            free(st.populations[org].v);
        }
        if (st.resolver_ids) {
            free(st.resolver_ids[org].v);
        }
    }
    free(st.kept.records);
    free(st.kept.number);
    am_arena_dispose(&st.kept.arena);
    am_record_batch_dispose(&st.partner_ids);
    free(st.populations);
    free(st.resolver_ids);
    free(st.self_amounts);
    free(st.jobs);
    pthread_mutex_destroy(&st.jobs_mu);
    am_index_free(st.index);
    am_resolver_free(st.resolver);
    am_run_free(st.run);
    return rc;
}
