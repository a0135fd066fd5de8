/*
 * Store: the backend-independent half. Chooses the backend from the URI and
 * encodes a run's parts: run.json (what was read and found), records-N.bin
 * (org N's records), entities-N.bin (their entities and populations) and
 * bitmaps-N.bin (one roaring bitmap per population). Every binary part
 * carries an XXH3-128 checksum that is verified before anything is decoded.
 */
#include "acctmap/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "internal.h"
#include "store_backend.h"

/* Version 2 adds each record's source; version 1 parts (older runs) still load, as source 0. */
#define RECORDS_MAGIC "AMREC02\n"
#define RECORDS_MAGIC_V1 "AMREC01\n"
#define RECORDS_TRAILER "AMRECEND"
#define ENTITIES_MAGIC "AMENT01\n"
#define BITMAPS_MAGIC "AMBMP01\n"
#define MAGIC_LEN 8
#define HASH_LEN 16
#define RUN_FORMAT 1
#define RECORD_STRINGS 7

struct am_store {
    const am_store_ops *ops;
    void *state;
    char display[256];
};

typedef struct org_stream {
    XXH3_state_t *hash;
    uint64_t count;
    bool started;
} org_stream;

struct am_run_writer {
    am_store *st;
    void *txn;
    org_stream *orgs;
    size_t org_cap;
    unsigned char *buf;
    size_t buf_cap;
};

static const am_store_ops *const backends[] = {&am_store_dir_ops, &am_store_pg_ops,
                                               &am_store_pg_short_ops};

/* ---- little-endian encoding ---------------------------------------------- */

typedef struct out_buf {
    unsigned char *data;
    size_t len;
    size_t cap;
    bool failed;
} out_buf;

static void out_reserve(out_buf *b, size_t more)
{
    if (b->failed || b->cap - b->len >= more) {
        return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < more) {
        cap *= 2;
    }
    unsigned char *grown = realloc(b->data, cap);
    if (!grown) {
        b->failed = true;
        return;
    }
    b->data = grown;
    b->cap = cap;
}

static void out_bytes(out_buf *b, const void *p, size_t n)
{
    out_reserve(b, n);
    if (!b->failed && n) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}

static void out_u32(out_buf *b, uint32_t v)
{
    unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24)};
    out_bytes(b, le, 4);
}

static void out_u64(out_buf *b, uint64_t v)
{
    out_u32(b, (uint32_t)v);
    out_u32(b, (uint32_t)(v >> 32));
}

static void out_hash(out_buf *b, XXH128_hash_t h)
{
    XXH128_canonical_t c;

    XXH128_canonicalFromHash(&c, h);
    out_bytes(b, c.digest, HASH_LEN);
}

/* Reading stops at the end of the data: every read checks the bytes left. */
typedef struct in_buf {
    const unsigned char *p;
    size_t left;
    bool bad;
} in_buf;

static const unsigned char *in_take(in_buf *in, size_t n)
{
    const unsigned char *p = in->p;

    if (in->bad || in->left < n) {
        in->bad = true;
        return NULL;
    }
    in->p += n;
    in->left -= n;
    return p;
}

static uint32_t in_u32(in_buf *in)
{
    const unsigned char *p = in_take(in, 4);

    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                   (uint32_t)p[3] << 24
             : 0;
}

static uint64_t in_u64(in_buf *in)
{
    uint64_t lo = in_u32(in);

    return lo | (uint64_t)in_u32(in) << 32;
}

static bool hash_matches(const void *data, size_t len, const unsigned char *digest)
{
    XXH128_canonical_t c;

    XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
    return memcmp(c.digest, digest, HASH_LEN) == 0;
}

/* ---- runs in memory ------------------------------------------------------ */

am_status am_run_new(am_run **out, size_t org_count, am_error *err)
{
    am_run *run = calloc(1, sizeof(*run));

    *out = NULL;
    if (!run) {
        return am_error_set(err, AM_ENOMEM, "out of memory for a run");
    }
    am_arena_init(&run->arena);
    run->orgs = calloc(org_count ? org_count : 1, sizeof(*run->orgs));
    if (!run->orgs) {
        free(run);
        return am_error_set(err, AM_ENOMEM, "out of memory for a run");
    }
    run->org_count = org_count;
    *out = run;
    return AM_OK;
}

void am_run_free(am_run *run)
{
    size_t i;

    if (!run) {
        return;
    }
    for (i = 0; i < run->org_count; i++) {
        am_matrix_dispose(&run->orgs[i].matrix);
        am_pipeline_dispose(&run->orgs[i].pipeline);
    }
    free(run->orgs);
    am_arena_dispose(&run->arena);
    free(run);
}

int am_run_org_find(const am_run *run, const char *id)
{
    size_t i;

    for (i = 0; i < run->org_count; i++) {
        if (strcmp(run->orgs[i].id, id) == 0) {
            return (int)i;
        }
    }
    return -1;
}

bool am_store__valid_run_id(const char *id)
{
    /* 20261123T115000Z, optionally .2 to .99 */
    size_t i, n = strlen(id);

    if (n != 16 && !(n >= 18 && n <= 19 && id[16] == '.')) {
        return false;
    }
    for (i = 0; i < 16; i++) {
        bool digit = id[i] >= '0' && id[i] <= '9';
        if ((i == 8 && id[i] != 'T') || (i == 15 && id[i] != 'Z') ||
            (i != 8 && i != 15 && !digit)) {
            return false;
        }
    }
    for (i = 17; i < n; i++) {
        if (id[i] < '0' || id[i] > '9') {
            return false;
        }
    }
    return true;
}

/* ---- opening ------------------------------------------------------------- */

am_status am_store_open_schema(am_store **out, const char *uri, const char *base_dir,
                               const char *schema, am_error *err)
{
    am_store *st;
    size_t i;
    am_status rc;

    *out = NULL;
    if (strncmp(uri, "env:", 4) == 0) {
        /* The URI holds a password: it may live outside the config. */
        const char *name = uri + 4;
        const char *value;
        if (!am_config__is_env_name(name)) {
            return am_error_set(err, AM_ECONFIG, "store \"%.64s\": after env: comes the name of "
                                "an environment variable, like \"env:ACCTMAP_STORE\"", uri);
        }
        value = getenv(name);
        if (!value || !value[0]) {
            return am_error_set(err, AM_ECONFIG, "store env:%s: the environment variable %s is "
                                "not set; export it with the store URI (postgresql://... or "
                                "dir:PATH)", name, name);
        }
        if (strncmp(value, "env:", 4) == 0) {
            return am_error_set(err, AM_ECONFIG, "store env:%s: the variable names another "
                                "variable; give it the store URI itself", name);
        }
        rc = am_store_open_schema(out, value, base_dir, schema, err);
        if (rc == AM_ECONFIG && strncmp(err->msg, "store \"", 7) == 0) {
            /* Not the value (it may be a URI with a password): only where it came from. */
            am_error_set(err, AM_ECONFIG, "store env:%s: the variable's value is not a store; "
                         "give it \"dir:PATH\" or a postgresql:// URI", name);
        }
        return rc;
    }
    for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        size_t n = strlen(backends[i]->scheme);
        if (strncmp(uri, backends[i]->scheme, n) == 0) {
            st = calloc(1, sizeof(*st));
            if (!st) {
                return am_error_set(err, AM_ENOMEM, "out of memory opening the store");
            }
            st->ops = backends[i];
            rc = st->ops->open(&st->state, uri + n, base_dir, schema, err);
            if (rc) {
                free(st);
                return rc;
            }
            snprintf(st->display, sizeof(st->display), "%s",
                     st->ops->describe ? st->ops->describe(st->state) : uri);
            *out = st;
            return AM_OK;
        }
    }
    return am_error_set(err, AM_ECONFIG, "store \"%.64s\": unknown kind; use \"dir:PATH\" or a "
                        "postgresql:// URI", uri);
}

am_status am_store_open(am_store **out, const char *uri, const char *base_dir, am_error *err)
{
    return am_store_open_schema(out, uri, base_dir, NULL, err);
}

void am_store_close(am_store *st)
{
    if (st) {
        st->ops->close(st->state);
        free(st);
    }
}

const char *am_store_describe(const am_store *st)
{
    return st->display;
}

am_status am_store_init(am_store *st, am_error *err)
{
    return st->ops->init(st->state, err);
}

am_status am_store_run_ids(char ***ids_out, size_t *count_out, am_store *st, am_error *err)
{
    return st->ops->run_ids(ids_out, count_out, st->state, err);
}

void am_store_run_ids_free(char **ids, size_t count)
{
    size_t i;

    for (i = 0; i < count; i++) {
        free(ids[i]);
    }
    free(ids);
}

/* ---- run.json ------------------------------------------------------------ */

static json_t *matrix_to_json(const am_matrix *m)
{
    json_t *rows = json_array();
    size_t i, j;

    for (i = 0; rows && i < m->rows; i++) {
        json_t *row = json_array();
        for (j = 0; row && j < m->cols; j++) {
            json_array_append_new(row, json_integer((json_int_t)m->cells[i * m->cols + j]));
        }
        json_array_append_new(rows, row);
    }
    return rows;
}

static json_t *pipeline_to_json(const am_pipeline *p)
{
    json_t *rows = json_array();
    size_t i, j;

    for (i = 0; rows && i < p->rows; i++) {
        json_t *row = json_array();
        for (j = 0; row && j < p->cols; j++) {
            json_array_append_new(row, json_integer((json_int_t)p->cents[i * p->cols + j]));
        }
        json_array_append_new(rows, row);
    }
    return rows;
}

static char *run_to_json(const am_run *run)
{
    json_t *root = json_object();
    json_t *orgs = json_array();
    size_t i, s, p;
    char *text;

    json_object_set_new(root, "format", json_integer(RUN_FORMAT));
    json_object_set_new(root, "started_ms", json_integer(run->started_ms));
    json_object_set_new(root, "finished_ms", json_integer(run->finished_ms));
    json_object_set_new(root, "entities", json_integer(run->entity_count));
    json_object_set_new(root, "keys", json_integer((json_int_t)run->key_count));
    for (i = 0; i < run->org_count; i++) {
        const am_run_org *o = &run->orgs[i];
        json_t *org = json_object();
        json_t *pops = json_array();
        json_t *sources = json_array();

        json_object_set_new(org, "id", json_string(o->id));
        json_object_set_new(org, "name", json_string(o->name));
        json_object_set_new(org, "self", json_boolean(o->is_self));
        for (p = 0; p < o->population_count; p++) {
            json_array_append_new(pops, json_string(o->populations[p]));
        }
        json_object_set_new(org, "populations", pops);
        json_object_set_new(org, "records", json_integer((json_int_t)o->records));
        json_object_set_new(org, "rejected", json_integer((json_int_t)o->rejected));
        json_object_set_new(org, "warnings", json_integer((json_int_t)o->warnings));
        for (s = 0; s < o->source_count; s++) {
            const am_run_source *src = &o->sources[s];
            json_t *js = json_object();
            json_object_set_new(js, "type", json_string(src->type));
            json_object_set_new(js, "label", json_string(src->label));
            json_object_set_new(js, "fingerprint", json_string(src->fingerprint));
            json_object_set_new(js, "records", json_integer((json_int_t)src->records));
            json_object_set_new(js, "rejected", json_integer((json_int_t)src->rejected));
            json_object_set_new(js, "warnings", json_integer((json_int_t)src->warnings));
            json_array_append_new(sources, js);
        }
        json_object_set_new(org, "sources", sources);
        if (!o->is_self) {
            json_object_set_new(org, "overlap", json_integer((json_int_t)o->overlap));
            json_object_set_new(org, "matrix", matrix_to_json(&o->matrix));
            /* Absent when the run has no amounts, as in runs written before. */
            if (o->pipeline.cents) {
                json_object_set_new(org, "pipeline_cents", pipeline_to_json(&o->pipeline));
            }
        }
        json_array_append_new(orgs, org);
    }
    json_object_set_new(root, "orgs", orgs);
    text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

/* Readers of untrusted run.json: every field checked, a damaged file is AM_ESTORE. */
typedef struct run_reader {
    const char *where; /* "dir:x: run ID: run.json" */
    am_run *run;
    am_error *err;
} run_reader;

static am_status damaged(run_reader *r, const char *what)
{
    return am_error_set(r->err, AM_ESTORE, "%s: %s; the run is damaged, run acctmap again",
                        r->where, what);
}

static am_status read_uint(uint64_t *out, run_reader *r, const json_t *obj, const char *field)
{
    json_t *v = json_object_get(obj, field);

    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        char what[96];
        snprintf(what, sizeof(what), "\"%s\" is missing or not a count", field);
        return damaged(r, what);
    }
    *out = (uint64_t)json_integer_value(v);
    return AM_OK;
}

static am_status read_str(const char **out, run_reader *r, const json_t *obj, const char *field)
{
    json_t *v = json_object_get(obj, field);

    if (!json_is_string(v)) {
        char what[96];
        snprintf(what, sizeof(what), "\"%s\" is missing or not a string", field);
        return damaged(r, what);
    }
    *out = am_arena_strndup(&r->run->arena, json_string_value(v), json_string_length(v));
    if (!*out) {
        return am_error_set(r->err, AM_ENOMEM, "out of memory loading a run");
    }
    return AM_OK;
}

static am_status read_matrix(am_matrix *m, run_reader *r, const json_t *rows, size_t n_rows,
                             size_t n_cols)
{
    size_t i, j;

    if (!json_is_array(rows) || json_array_size(rows) != n_rows) {
        return damaged(r, "a matrix does not have one row per population");
    }
    m->rows = n_rows;
    m->cols = n_cols;
    m->cells = calloc(n_rows * n_cols + 1, sizeof(*m->cells));
    if (!m->cells) {
        return am_error_set(r->err, AM_ENOMEM, "out of memory loading a run");
    }
    for (i = 0; i < n_rows; i++) {
        json_t *row = json_array_get(rows, i);
        if (!json_is_array(row) || json_array_size(row) != n_cols) {
            return damaged(r, "a matrix row does not have one cell per population");
        }
        for (j = 0; j < n_cols; j++) {
            json_t *c = json_array_get(row, j);
            if (!json_is_integer(c) || json_integer_value(c) < 0) {
                return damaged(r, "a matrix cell is not a count");
            }
            m->cells[i * n_cols + j] = (uint64_t)json_integer_value(c);
        }
    }
    return AM_OK;
}

/* A partner's open pipeline: absent (no amounts) or one signed sum per matrix cell. */
static am_status read_pipeline(am_pipeline *p, run_reader *r, const json_t *rows, size_t n_rows,
                               size_t n_cols)
{
    size_t i, j;

    if (!rows) {
        return AM_OK;
    }
    if (!json_is_array(rows) || json_array_size(rows) != n_rows) {
        return damaged(r, "a pipeline does not have one row per population");
    }
    p->rows = n_rows;
    p->cols = n_cols;
    p->cents = calloc(n_rows * n_cols + 1, sizeof(*p->cents));
    if (!p->cents) {
        return am_error_set(r->err, AM_ENOMEM, "out of memory loading a run");
    }
    for (i = 0; i < n_rows; i++) {
        json_t *row = json_array_get(rows, i);
        if (!json_is_array(row) || json_array_size(row) != n_cols) {
            return damaged(r, "a pipeline row does not have one cell per population");
        }
        for (j = 0; j < n_cols; j++) {
            json_t *c = json_array_get(row, j);
            if (!json_is_integer(c)) {
                return damaged(r, "a pipeline cell is not an amount in cents");
            }
            p->cents[i * n_cols + j] = (int64_t)json_integer_value(c);
        }
    }
    return AM_OK;
}

static am_status read_org(am_run_org *o, run_reader *r, const json_t *obj)
{
    json_t *pops = json_object_get(obj, "populations");
    json_t *sources = json_object_get(obj, "sources");
    am_status rc;
    size_t i;

    if (!json_is_object(obj)) {
        return damaged(r, "an org is not an object");
    }
    rc = read_str(&o->id, r, obj, "id");
    if (!rc) {
        rc = read_str(&o->name, r, obj, "name");
    }
    if (!rc) {
        rc = read_uint(&o->records, r, obj, "records");
    }
    if (!rc) {
        rc = read_uint(&o->rejected, r, obj, "rejected");
    }
    if (!rc) {
        rc = read_uint(&o->warnings, r, obj, "warnings");
    }
    if (rc) {
        return rc;
    }
    o->is_self = json_is_true(json_object_get(obj, "self"));
    if (!json_is_array(pops) || json_array_size(pops) == 0 ||
        json_array_size(pops) > AM_POPULATION_MAX) {
        return damaged(r, "an org's populations are missing");
    }
    o->population_count = json_array_size(pops);
    for (i = 0; i < o->population_count; i++) {
        json_t *p = json_array_get(pops, i);
        if (!json_is_string(p)) {
            return damaged(r, "a population name is not a string");
        }
        o->populations[i] = am_arena_strndup(&r->run->arena, json_string_value(p),
                                             json_string_length(p));
        if (!o->populations[i]) {
            return am_error_set(r->err, AM_ENOMEM, "out of memory loading a run");
        }
    }
    if (!json_is_array(sources)) {
        return damaged(r, "an org's sources are missing");
    }
    o->source_count = json_array_size(sources);
    o->sources = am_arena_alloc(&r->run->arena, (o->source_count + 1) * sizeof(*o->sources));
    if (!o->sources) {
        return am_error_set(r->err, AM_ENOMEM, "out of memory loading a run");
    }
    memset(o->sources, 0, (o->source_count + 1) * sizeof(*o->sources));
    for (i = 0; i < o->source_count; i++) {
        json_t *js = json_array_get(sources, i);
        am_run_source *s = &o->sources[i];
        const char *fp = NULL;
        rc = read_str(&s->type, r, js, "type");
        if (!rc) {
            rc = read_str(&s->label, r, js, "label");
        }
        if (!rc) {
            rc = read_str(&fp, r, js, "fingerprint");
        }
        if (!rc) {
            rc = read_uint(&s->records, r, js, "records");
        }
        if (!rc) {
            rc = read_uint(&s->rejected, r, js, "rejected");
        }
        if (!rc) {
            rc = read_uint(&s->warnings, r, js, "warnings");
        }
        if (rc) {
            return rc;
        }
        snprintf(s->fingerprint, sizeof(s->fingerprint), "%s", fp);
    }
    return AM_OK;
}

am_status am_store__run_from_json(am_run **out, const char *text, size_t len,
                                  const char *where, am_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    json_t *orgs;
    am_run *run = NULL;
    run_reader r = {where, NULL, err};
    uint64_t v;
    size_t i;
    am_status rc;

    *out = NULL;
    if (!root) {
        return am_error_set(err, AM_ESTORE, "%s:%d: not valid JSON (%s); the run is damaged",
                            where, jerr.line, jerr.text);
    }
    orgs = json_object_get(root, "orgs");
    if (!json_is_object(root) || !json_is_array(orgs) || json_array_size(orgs) < 2) {
        json_decref(root);
        return am_error_set(err, AM_ESTORE, "%s: no orgs; the run is damaged", where);
    }
    rc = am_run_new(&run, json_array_size(orgs), err);
    if (rc) {
        json_decref(root);
        return rc;
    }
    r.run = run;
    rc = read_uint(&v, &r, root, "format");
    if (!rc && v != RUN_FORMAT) {
        rc = am_error_set(err, AM_ESTORE, "%s: format %llu is not %d; use the acctmap version "
                          "that wrote it", where, (unsigned long long)v, RUN_FORMAT);
    }
    if (!rc) {
        rc = read_uint(&v, &r, root, "started_ms");
        run->started_ms = (int64_t)v;
    }
    if (!rc) {
        rc = read_uint(&v, &r, root, "finished_ms");
        run->finished_ms = (int64_t)v;
    }
    if (!rc) {
        rc = read_uint(&v, &r, root, "entities");
        run->entity_count = (uint32_t)v;
        if (!rc && v > UINT32_MAX) {
            rc = damaged(&r, "too many entities");
        }
    }
    if (!rc) {
        rc = read_uint(&run->key_count, &r, root, "keys");
    }
    for (i = 0; !rc && i < run->org_count; i++) {
        rc = read_org(&run->orgs[i], &r, json_array_get(orgs, i));
    }
    if (!rc && !run->orgs[0].is_self) {
        rc = damaged(&r, "the first org is not self");
    }
    for (i = 1; !rc && i < run->org_count; i++) {
        rc = read_uint(&run->orgs[i].overlap, &r, json_array_get(orgs, i), "overlap");
    }
    for (i = 1; !rc && i < run->org_count; i++) {
        rc = read_matrix(&run->orgs[i].matrix, &r, json_object_get(json_array_get(orgs, i),
                         "matrix"), run->orgs[0].population_count,
                         run->orgs[i].population_count);
    }
    for (i = 1; !rc && i < run->org_count; i++) {
        rc = read_pipeline(&run->orgs[i].pipeline, &r,
                           json_object_get(json_array_get(orgs, i), "pipeline_cents"),
                           run->orgs[0].population_count, run->orgs[i].population_count);
    }
    json_decref(root);
    if (rc) {
        am_run_free(run);
        return rc;
    }
    *out = run;
    return AM_OK;
}

am_status am_store_run_load(am_run **out, am_store *st, const char *id, am_error *err)
{
    char **ids = NULL;
    size_t count = 0;
    char *text = NULL;
    size_t len = 0;
    char where[320];
    am_status rc;

    *out = NULL;
    if (id && !am_store__valid_run_id(id)) {
        return am_error_set(err, AM_ENOTFOUND, "\"%.40s\" is not a run id; `acctmap runs` "
                            "lists them", id);
    }
    if (!id) {
        rc = am_store_run_ids(&ids, &count, st, err);
        if (rc) {
            return rc;
        }
        if (count == 0) {
            am_store_run_ids_free(ids, count);
            return am_error_set(err, AM_ENOTFOUND, "%s: no run yet; start one with "
                                "`acctmap run`", st->display);
        }
        id = ids[count - 1];
    }
    rc = st->ops->part_read(&text, &len, st->state, id, "run.json", err);
    if (rc == AM_ENOTFOUND) {
        am_error_set(err, AM_ENOTFOUND, "%s: no run %s; `acctmap runs` lists them",
                     st->display, id);
    }
    if (!rc) {
        snprintf(where, sizeof(where), "%s: run %s: run.json", st->display, id);
        rc = am_store__run_from_json(out, text, len, where, err);
    }
    if (!rc) {
        snprintf((*out)->id, sizeof((*out)->id), "%s", id);
    }
    free(text);
    am_store_run_ids_free(ids, count);
    return rc;
}

/* ---- binary parts -------------------------------------------------------- */

static void part_name(char *out, size_t cap, const char *kind, size_t org)
{
    snprintf(out, cap, "%s-%zu.bin", kind, org);
}

/* Read a part and verify its trailing checksum over everything before it. */
static am_status read_checked(char **data_out, size_t *len_out, am_store *st, const am_run *run,
                              const char *part, const char *magic, am_error *err)
{
    char *data = NULL;
    size_t len = 0;
    am_status rc;

    *data_out = NULL;
    rc = st->ops->part_read(&data, &len, st->state, run->id, part, err);
    if (rc) {
        return rc == AM_ENOTFOUND ? am_error_set(err, AM_ESTORE, "%s: run %s: %s is missing; "
                                                 "the run is damaged", st->display, run->id,
                                                 part)
                                  : rc;
    }
    /* A records part may be of version 1: older runs stay readable. */
    if (len < MAGIC_LEN + HASH_LEN ||
        (memcmp(data, magic, MAGIC_LEN) != 0 &&
         !(strcmp(magic, RECORDS_MAGIC) == 0 &&
           memcmp(data, RECORDS_MAGIC_V1, MAGIC_LEN) == 0)) ||
        !hash_matches(data, len - HASH_LEN, (unsigned char *)data + len - HASH_LEN)) {
        free(data);
        return am_error_set(err, AM_ESTORE, "%s: run %s: %s fails its checksum; the run is "
                            "damaged, run acctmap again", st->display, run->id, part);
    }
    *data_out = data;
    *len_out = len - HASH_LEN;
    return AM_OK;
}

static am_status load_org_index(am_index *ix, am_store *st, const am_run *run, size_t org,
                                am_error *err)
{
    char part[64];
    char *ent = NULL, *bmp = NULL;
    size_t ent_len, bmp_len, i, pop_count = run->orgs[org].population_count;
    uint32_t *entity_of = NULL, *populations = NULL;
    roaring_bitmap_t *bitmaps[AM_POPULATION_MAX] = {NULL};
    in_buf in;
    uint64_t count;
    am_status rc;

    part_name(part, sizeof(part), "entities", org);
    rc = read_checked(&ent, &ent_len, st, run, part, ENTITIES_MAGIC, err);
    if (rc) {
        goto cleanup;
    }
    in = (in_buf){(unsigned char *)ent + MAGIC_LEN, ent_len - MAGIC_LEN, false};
    count = in_u64(&in);
    if (in.bad || count != run->orgs[org].records || in.left != count * 8) {
        rc = am_error_set(err, AM_ESTORE, "%s: run %s: %s does not match run.json; the run is "
                          "damaged", st->display, run->id, part);
        goto cleanup;
    }
    entity_of = malloc((count ? count : 1) * sizeof(*entity_of));
    populations = malloc((count ? count : 1) * sizeof(*populations));
    if (!entity_of || !populations) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory loading run %s", run->id);
        goto cleanup;
    }
    for (i = 0; i < count; i++) {
        entity_of[i] = in_u32(&in);
        if (entity_of[i] >= run->entity_count) {
            rc = am_error_set(err, AM_ESTORE, "%s: run %s: %s names entity %u of %u; the run "
                              "is damaged", st->display, run->id, part, entity_of[i],
                              run->entity_count);
            goto cleanup;
        }
    }
    for (i = 0; i < count; i++) {
        populations[i] = in_u32(&in);
    }

    part_name(part, sizeof(part), "bitmaps", org);
    rc = read_checked(&bmp, &bmp_len, st, run, part, BITMAPS_MAGIC, err);
    if (rc) {
        goto cleanup;
    }
    in = (in_buf){(unsigned char *)bmp + MAGIC_LEN, bmp_len - MAGIC_LEN, false};
    if (in_u32(&in) != pop_count) {
        rc = am_error_set(err, AM_ESTORE, "%s: run %s: %s has the wrong number of "
                          "populations; the run is damaged", st->display, run->id, part);
        goto cleanup;
    }
    for (i = 0; i < pop_count; i++) {
        uint64_t len = in_u64(&in);
        const unsigned char *digest = in_take(&in, HASH_LEN);
        const unsigned char *bytes = in.bad || len > in.left ? NULL : in_take(&in, (size_t)len);
        /* Each bitmap has its own checksum, checked before CRoaring sees a byte. */
        if (!bytes || !hash_matches(bytes, (size_t)len, digest)) {
            rc = am_error_set(err, AM_ESTORE, "%s: run %s: %s: bitmap %zu fails its checksum; "
                              "the run is damaged", st->display, run->id, part, i);
            goto cleanup;
        }
        bitmaps[i] = roaring_bitmap_portable_deserialize_safe((const char *)bytes, (size_t)len);
        if (!bitmaps[i]) {
            rc = am_error_set(err, AM_ESTORE, "%s: run %s: %s: bitmap %zu cannot be read; the "
                              "run is damaged", st->display, run->id, part, i);
            goto cleanup;
        }
    }
    rc = am_index__load_org(ix, org, pop_count, entity_of, populations, (size_t)count, bitmaps,
                            err);
    entity_of = NULL;
    populations = NULL;
    memset(bitmaps, 0, sizeof(bitmaps));
cleanup:
    for (i = 0; i < AM_POPULATION_MAX; i++) {
        am_index__bitmap_free(bitmaps[i]);
    }
    free(entity_of);
    free(populations);
    free(ent);
    free(bmp);
    return rc;
}

am_status am_store_run_load_index(am_index **out, am_store *st, const am_run *run,
                                  am_error *err)
{
    am_index *ix = NULL;
    size_t org;
    am_status rc;

    *out = NULL;
    rc = am_index_new(&ix, run->org_count, err);
    for (org = 0; !rc && org < run->org_count; org++) {
        rc = load_org_index(ix, st, run, org, err);
    }
    if (rc) {
        am_index_free(ix);
        return rc;
    }
    *out = ix;
    return AM_OK;
}

/* With `ids_only`, every string but the id is left "" (a diff needs no more). */
static am_status records_decode(am_record_batch *out, const char *data, size_t len,
                                uint64_t expected, const char *where, bool ids_only,
                                am_error *err)
{
    in_buf in;
    uint64_t count, i;
    bool with_source;
    am_status rc = AM_OK;

    am_record_batch_reset(out);
    /* After the magic: the records, then "AMRECEND" and their count. */
    if (len < MAGIC_LEN + 16 ||
        (memcmp(data, RECORDS_MAGIC, MAGIC_LEN) != 0 &&
         memcmp(data, RECORDS_MAGIC_V1, MAGIC_LEN) != 0) ||
        memcmp(data + len - 16, RECORDS_TRAILER, MAGIC_LEN) != 0) {
        return am_error_set(err, AM_ESTORE, "%s has no start or end marker; the run is damaged",
                            where);
    }
    in = (in_buf){(const unsigned char *)data + len - 8, 8, false};
    count = in_u64(&in);
    if (count != expected) {
        return am_error_set(err, AM_ESTORE, "%s holds %llu records, run.json says %llu; the run "
                            "is damaged", where, (unsigned long long)count,
                            (unsigned long long)expected);
    }
    with_source = memcmp(data, RECORDS_MAGIC, MAGIC_LEN) == 0;
    in = (in_buf){(const unsigned char *)data + MAGIC_LEN, len - MAGIC_LEN - 16, false};
    for (i = 0; i < count && !in.bad; i++) {
        am_record *rec;
        const char **fields[RECORD_STRINGS];
        size_t f;

        rc = am_record_batch_push(&rec, out, err);
        if (rc) {
            goto cleanup;
        }
        fields[0] = &rec->id;
        fields[1] = &rec->name;
        fields[2] = &rec->domain;
        fields[3] = &rec->tax_id;
        fields[4] = &rec->country;
        fields[5] = &rec->city;
        fields[6] = &rec->owner;
        rec->line = in_u32(&in);
        rec->populations = in_u32(&in);
        rec->source = with_source ? in_u32(&in) : 0;
        rec->amount_cents = (int64_t)in_u64(&in);
        {
            const unsigned char *flag = in_take(&in, 1);
            rec->has_amount = flag && *flag;
        }
        for (f = 0; f < RECORD_STRINGS && !in.bad; f++) {
            uint32_t n = in_u32(&in);
            const unsigned char *text = in_take(&in, n);
            if (!text) {
                break;
            }
            if (ids_only && f > 0) {
                continue;
            }
            *fields[f] = am_arena_strndup(&out->arena, (const char *)text, n);
            if (!*fields[f]) {
                rc = am_error_set(err, AM_ENOMEM, "out of memory loading records");
                goto cleanup;
            }
        }
    }
    if (in.bad || in.left != 0) {
        rc = am_error_set(err, AM_ESTORE, "%s is malformed at record %llu; the run is damaged",
                          where, (unsigned long long)i);
    }
cleanup:
    if (rc) {
        am_record_batch_reset(out);
    }
    return rc;
}

am_status am_store__records_decode(am_record_batch *out, const char *data, size_t len,
                                   uint64_t expected, const char *where, am_error *err)
{
    return records_decode(out, data, len, expected, where, false, err);
}

static am_status load_records(am_record_batch *out, am_store *st, const am_run *run,
                              size_t org, bool ids_only, am_error *err)
{
    char part[64], where[384];
    char *data = NULL;
    size_t len = 0;
    am_status rc;

    AM_ASSERT(org < run->org_count, err);
    am_record_batch_reset(out);
    part_name(part, sizeof(part), "records", org);
    rc = read_checked(&data, &len, st, run, part, RECORDS_MAGIC, err);
    if (rc) {
        return rc;
    }
    snprintf(where, sizeof(where), "%s: run %s: %s", st->display, run->id, part);
    rc = records_decode(out, data, len, run->orgs[org].records, where, ids_only, err);
    free(data);
    return rc;
}

am_status am_store_run_load_records(am_record_batch *out, am_store *st, const am_run *run,
                                    size_t org, am_error *err)
{
    return load_records(out, st, run, org, false, err);
}

am_status am_store_run_load_record_ids(am_record_batch *out, am_store *st, const am_run *run,
                                       size_t org, am_error *err)
{
    return load_records(out, st, run, org, true, err);
}

am_status am_store_run_messages(char **text_out, size_t *len_out, am_store *st,
                                const am_run *run, am_error *err)
{
    am_status rc = st->ops->part_read(text_out, len_out, st->state, run->id, "messages.txt",
                                      err);

    if (rc == AM_ENOTFOUND) {
        *text_out = strdup("");
        *len_out = 0;
        return *text_out ? AM_OK : am_error_set(err, AM_ENOMEM, "out of memory");
    }
    return rc;
}

/* ---- secrets kept between runs -------------------------------------------- */

static bool valid_secret_name(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > AM_SECRET_NAME_MAX || name[0] == '.') {
        return false;
    }
    for (; *name; name++) {
        char c = *name;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-')) {
            return false;
        }
    }
    return true;
}

am_status am_store_secret_load(char **value_out, am_store *st, const char *name, am_error *err)
{
    *value_out = NULL;
    if (!valid_secret_name(name)) {
        return am_error_set(err, AM_EINTERNAL, "%s: invalid secret name", st->display);
    }
    return st->ops->secret_load(value_out, st->state, name, err);
}

am_status am_store_secret_save(am_store *st, const char *name, const char *value, am_error *err)
{
    if (!valid_secret_name(name)) {
        return am_error_set(err, AM_EINTERNAL, "%s: invalid secret name", st->display);
    }
    return st->ops->secret_save(st->state, name, value, err);
}

/* ---- writing ------------------------------------------------------------- */

am_status am_store_run_begin(am_run_writer **out, am_store *st, am_error *err)
{
    am_run_writer *w = calloc(1, sizeof(*w));
    am_status rc;

    *out = NULL;
    if (!w) {
        return am_error_set(err, AM_ENOMEM, "out of memory starting a run");
    }
    w->st = st;
    rc = st->ops->begin(&w->txn, st->state, err);
    if (rc) {
        free(w);
        return rc;
    }
    *out = w;
    return AM_OK;
}

static void writer_free(am_run_writer *w)
{
    size_t i;

    for (i = 0; i < w->org_cap; i++) {
        XXH3_freeState(w->orgs[i].hash);
    }
    free(w->orgs);
    free(w->buf);
    free(w);
}

void am_run_writer_abort(am_run_writer *w)
{
    if (!w) {
        return;
    }
    w->st->ops->abort(w->txn);
    writer_free(w);
}

/* Append to a part and fold the bytes into the org's running checksum. */
static am_status append_hashed(am_run_writer *w, org_stream *s, const char *part,
                               const void *data, size_t len, am_error *err)
{
    XXH3_128bits_update(s->hash, data, len);
    return w->st->ops->part_append(w->txn, part, data, len, err);
}

static am_status org_stream_get(org_stream **out, am_run_writer *w, size_t org, am_error *err)
{
    if (org >= w->org_cap) {
        size_t cap = org + 16;
        org_stream *grown = realloc(w->orgs, cap * sizeof(*grown));
        if (!grown) {
            return am_error_set(err, AM_ENOMEM, "out of memory writing a run");
        }
        memset(grown + w->org_cap, 0, (cap - w->org_cap) * sizeof(*grown));
        w->orgs = grown;
        w->org_cap = cap;
    }
    *out = &w->orgs[org];
    if (!(*out)->started) {
        char part[64];
        (*out)->hash = XXH3_createState();
        if (!(*out)->hash) {
            return am_error_set(err, AM_ENOMEM, "out of memory writing a run");
        }
        XXH3_128bits_reset((*out)->hash);
        (*out)->started = true;
        part_name(part, sizeof(part), "records", org);
        return append_hashed(w, *out, part, RECORDS_MAGIC, MAGIC_LEN, err);
    }
    return AM_OK;
}

am_status am_run_writer_add_records(am_run_writer *w, size_t org, const am_record *records,
                                    size_t count, am_error *err)
{
    out_buf b = {w->buf, 0, w->buf_cap, false};
    org_stream *s;
    char part[64];
    size_t i, f;
    am_status rc;

    rc = org_stream_get(&s, w, org, err);
    if (rc) {
        return rc;
    }
    for (i = 0; i < count; i++) {
        const am_record *r = &records[i];
        const char *fields[RECORD_STRINGS] = {r->id,      r->name,    r->domain, r->tax_id,
                                              r->country, r->city,    r->owner};
        unsigned char flag = r->has_amount;
        out_u32(&b, r->line);
        out_u32(&b, r->populations);
        out_u32(&b, r->source);
        out_u64(&b, (uint64_t)r->amount_cents);
        out_bytes(&b, &flag, 1);
        for (f = 0; f < RECORD_STRINGS; f++) {
            size_t n = strlen(fields[f]);
            out_u32(&b, (uint32_t)n);
            out_bytes(&b, fields[f], n);
        }
    }
    w->buf = b.data;
    w->buf_cap = b.cap;
    if (b.failed) {
        return am_error_set(err, AM_ENOMEM, "out of memory writing records");
    }
    s->count += count;
    part_name(part, sizeof(part), "records", org);
    return append_hashed(w, s, part, b.data, b.len, err);
}

am_status am_run_writer_load_record_ids(am_record_batch *out, am_run_writer *w, size_t org,
                                        am_error *err)
{
    out_buf b = {NULL, 0, 0, false};
    char part[64], where[384];
    char *data = NULL;
    size_t len = 0;
    org_stream *s;
    am_status rc;

    am_record_batch_reset(out);
    rc = org_stream_get(&s, w, org, err);
    if (rc) {
        return rc;
    }
    part_name(part, sizeof(part), "records", org);
    rc = w->st->ops->part_read_pending(&data, &len, w->txn, part, err);
    if (rc) {
        return rc;
    }
    /* Close it in memory as the commit will, so that the one decoder reads it. */
    out_bytes(&b, data, len);
    out_bytes(&b, RECORDS_TRAILER, MAGIC_LEN);
    out_u64(&b, s->count);
    free(data);
    if (b.failed) {
        free(b.data);
        return am_error_set(err, AM_ENOMEM, "out of memory reading back records");
    }
    snprintf(where, sizeof(where), "%s: the run being written: %s", w->st->display, part);
    rc = records_decode(out, (const char *)b.data, b.len, s->count, where, true, err);
    free(b.data);
    return rc;
}

am_status am_run_writer_add_message(am_run_writer *w, const char *line, am_error *err)
{
    am_status rc = w->st->ops->part_append(w->txn, "messages.txt", line, strlen(line), err);

    return rc ? rc : w->st->ops->part_append(w->txn, "messages.txt", "\n", 1, err);
}

/* A part name a caller may use: plain, and none of the store's own. */
static bool valid_extra_part(const char *part)
{
    static const char *const reserved[] = {"records-", "entities-", "bitmaps-"};
    size_t n = strlen(part), i;

    if (n == 0 || n > 63 || part[0] == '.' || strcmp(part, "run.json") == 0 ||
        strcmp(part, "messages.txt") == 0) {
        return false;
    }
    for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strncmp(part, reserved[i], strlen(reserved[i])) == 0) {
            return false;
        }
    }
    for (i = 0; i < n; i++) {
        char c = part[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-')) {
            return false;
        }
    }
    return true;
}

am_status am_run_writer_add_part(am_run_writer *w, const char *part, const void *data,
                                 size_t len, am_error *err)
{
    AM_ASSERT(valid_extra_part(part), err);
    return w->st->ops->part_append(w->txn, part, data, len, err);
}

am_status am_store_run_part(char **data_out, size_t *len_out, am_store *st, const am_run *run,
                            const char *part, am_error *err)
{
    *data_out = NULL;
    *len_out = 0;
    if (!valid_extra_part(part)) {
        return am_error_set(err, AM_EINVAL, "%s: \"%.64s\" is not a part name", st->display,
                            part);
    }
    return st->ops->part_read(data_out, len_out, st->state, run->id, part, err);
}

static am_status write_org_index(am_run_writer *w, const am_index *ix, size_t org,
                                 am_error *err)
{
    out_buf b = {NULL, 0, 0, false};
    char part[64];
    size_t n = am_index_record_count(ix, org), pops = am_index_population_count(ix, org), i;
    am_status rc;

    out_bytes(&b, ENTITIES_MAGIC, MAGIC_LEN);
    out_u64(&b, n);
    for (i = 0; i < n; i++) {
        out_u32(&b, am_index_record_entity(ix, org, i));
    }
    for (i = 0; i < n; i++) {
        out_u32(&b, am_index_record_populations(ix, org, i));
    }
    if (!b.failed) {
        out_hash(&b, XXH3_128bits(b.data, b.len));
    }
    if (b.failed) {
        free(b.data);
        return am_error_set(err, AM_ENOMEM, "out of memory writing the index");
    }
    part_name(part, sizeof(part), "entities", org);
    rc = w->st->ops->part_append(w->txn, part, b.data, b.len, err);
    b.len = 0;

    out_bytes(&b, BITMAPS_MAGIC, MAGIC_LEN);
    out_u32(&b, (uint32_t)pops);
    for (i = 0; !rc && !b.failed && i < pops; i++) {
        const roaring_bitmap_t *bm = am_index__bitmap(ix, org, i);
        size_t size = roaring_bitmap_portable_size_in_bytes(bm);
        size_t at;
        out_u64(&b, size);
        out_reserve(&b, HASH_LEN + size);
        if (b.failed) {
            break;
        }
        at = b.len + HASH_LEN;
        roaring_bitmap_portable_serialize(bm, (char *)b.data + at);
        out_hash(&b, XXH3_128bits(b.data + at, size));
        b.len += size;
    }
    if (!rc && !b.failed) {
        out_hash(&b, XXH3_128bits(b.data, b.len));
    }
    if (!rc && b.failed) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory writing the index");
    }
    if (!rc) {
        part_name(part, sizeof(part), "bitmaps", org);
        rc = w->st->ops->part_append(w->txn, part, b.data, b.len, err);
    }
    free(b.data);
    return rc;
}

static void run_base_id(char *out, size_t cap, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y%m%dT%H%M%SZ", &tm);
}

am_status am_store_run_commit(am_run_writer *w, am_run *run, const am_index *ix,
                              am_error *err)
{
    char base_id[AM_RUN_ID_MAX];
    char *json = NULL;
    size_t org;
    am_status rc = AM_OK;

    AM_ASSERT(am_index_org_count(ix) == run->org_count, err);
    for (org = 0; !rc && org < run->org_count; org++) {
        org_stream *s;
        out_buf b = {NULL, 0, 0, false};
        char part[64];

        /* Every org has a records part, even with no record. */
        rc = org_stream_get(&s, w, org, err);
        if (rc) {
            break;
        }
        if (s->count != run->orgs[org].records) {
            /* A bug in the caller: the run would not describe its records. */
            rc = am_error_set(err, AM_EINTERNAL, "run: org %zu has %llu records written but "
                              "%llu counted; please report this bug", org,
                              (unsigned long long)s->count,
                              (unsigned long long)run->orgs[org].records);
            break;
        }
        out_bytes(&b, RECORDS_TRAILER, MAGIC_LEN);
        out_u64(&b, s->count);
        if (b.failed) {
            free(b.data);
            rc = am_error_set(err, AM_ENOMEM, "out of memory writing records");
            break;
        }
        part_name(part, sizeof(part), "records", org);
        rc = append_hashed(w, s, part, b.data, b.len, err);
        free(b.data);
        if (!rc) {
            XXH128_canonical_t c;
            XXH128_canonicalFromHash(&c, XXH3_128bits_digest(s->hash));
            rc = w->st->ops->part_append(w->txn, part, c.digest, HASH_LEN, err);
        }
        if (!rc) {
            rc = write_org_index(w, ix, org, err);
        }
    }
    if (!rc) {
        json = run_to_json(run);
        if (!json) {
            rc = am_error_set(err, AM_ENOMEM, "out of memory writing run.json");
        }
    }
    if (!rc) {
        rc = w->st->ops->part_append(w->txn, "run.json", json, strlen(json), err);
    }
    free(json);
    if (rc) {
        am_run_writer_abort(w);
        return rc;
    }
    run_base_id(base_id, sizeof(base_id), run->finished_ms);
    rc = w->st->ops->commit(run->id, w->txn, base_id, err);
    writer_free(w);
    return rc;
}
