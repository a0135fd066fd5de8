/*
 * Report: the one place that decides what a partner sees. Builds a model of
 * one partner's view of a run under its sharing policy (hidden populations
 * left out, numbers only where counts or accounts are shared, our records
 * only with the listed fields), keeps it as canonical JSON in the run, and
 * renders it as JSON, CSV, self-contained HTML or XLSX (libxlsxwriter).
 */
#include "acctmap/report.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xlsxwriter.h>

#include "acctmap/overlap.h"

#define REPORT_FORMAT 1
/* Ceiling of one rendering in memory. */
#define RENDER_MAX ((size_t)1 << 30)
#define XLSX_SHEET_NAME_MAX 31
#define XLSX_STRING_MAX 32767

/* One shared pair: the partner's own record id and our listed fields (NULL: not listed). */
typedef struct report_row {
    const char *their_id;
    const char *values[AM_FIELD_COUNT];
} report_row;

typedef struct report_cell {
    am_share_level level; /* none, counts or accounts: hidden rows are not in the model */
    uint64_t count;       /* entities; counts and accounts only */
    uint32_t fields;      /* accounts only */
    report_row *rows;
    size_t row_count;
    /*
     * The cell's open pipeline value (issue #7: the sum of `amount` over our
     * opportunities in the cell), only where pipeline_shared allows it.
     */
    bool has_pipeline;
    int64_t pipeline_cents;
} report_cell;

struct am_report {
    am_arena arena;
    int64_t finished_ms;
    const char *self_id;
    const char *self_name;
    const char *partner_id;
    const char *partner_name;
    const char *ours[AM_POPULATION_MAX];
    size_t our_count;
    const char *theirs[AM_POPULATION_MAX];
    size_t their_count;
    report_cell *cells; /* our_count x their_count, row-major */
};

static const char *const csv_head[] = {"record", "our_population", "their_population", "level",
                                       "count", "pipeline", "their_id", "id", "name", "domain",
                                       "tax_id", "country", "city", "owner", "amount"};

static report_cell *cell_at(const am_report *r, size_t i, size_t j)
{
    return &r->cells[i * r->their_count + j];
}

static const char *dup_str(am_report *r, const char *s)
{
    return am_arena_strndup(&r->arena, s, strlen(s));
}

static void format_cents(char *out, size_t cap, int64_t cents)
{
    uint64_t a = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;

    snprintf(out, cap, "%s%llu.%02llu", cents < 0 ? "-" : "", (unsigned long long)(a / 100),
             (unsigned long long)(a % 100));
}

static void format_finished(char *out, size_t cap, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static am_status report_new(am_report **out, size_t our_count, size_t their_count,
                            am_error *err)
{
    am_report *r = calloc(1, sizeof(*r));

    *out = NULL;
    if (!r) {
        return am_error_set(err, AM_ENOMEM, "out of memory for a report");
    }
    am_arena_init(&r->arena);
    r->our_count = our_count;
    r->their_count = their_count;
    r->cells = am_arena_alloc(&r->arena, (our_count * their_count + 1) * sizeof(*r->cells));
    if (!r->cells) {
        am_report_free(r);
        return am_error_set(err, AM_ENOMEM, "out of memory for a report");
    }
    memset(r->cells, 0, (our_count * their_count + 1) * sizeof(*r->cells));
    *out = r;
    return AM_OK;
}

void am_report_free(am_report *r)
{
    if (!r) {
        return;
    }
    am_arena_dispose(&r->arena);
    free(r);
}

void am_report_part_name(char *out, size_t cap, const char *partner)
{
    snprintf(out, cap, "report-%s.json", partner);
}

/* ---- building ------------------------------------------------------------- */

/*
 * Whether the partner may see the open pipeline value of cell (our_pop,
 * their_pop), a visible cell. The value sums the amounts of our records that
 * are in our_pop and in our opportunities and match their_pop, so every one
 * of them is a record of cell (opportunities, their_pop): that cell must show
 * our records with their `amount`. In another row the sum would also tell
 * which of those opportunities are in the row (an upsell among customers),
 * so that cell must show our records with their `amount` too. Overrides
 * count: the cells are read after them.
 */
static bool pipeline_shared(const am_policy *policy, size_t our_pop, size_t their_pop)
{
    const uint32_t amount = 1u << AM_FIELD_AMOUNT;
    am_share cell = am_policy_cell(policy, our_pop, their_pop);
    am_share open = am_policy_cell(policy, AM_POP_OPPORTUNITIES, their_pop);

    if (cell.level < AM_SHARE_COUNTS || open.level != AM_SHARE_ACCOUNTS ||
        !(open.fields & amount)) {
        return false;
    }
    return our_pop == AM_POP_OPPORTUNITIES ||
           (cell.level == AM_SHARE_ACCOUNTS && (cell.fields & amount));
}

static am_status fill_rows(am_report *r, report_cell *cell, const am_index *ix, size_t partner,
                           size_t our_pop, size_t their_pop, am_report_record_fn record,
                           void *ctx, am_error *err)
{
    am_pair *pairs = NULL;
    size_t count = 0, k, f;
    am_status rc;

    rc = am_overlap_cell_pairs(&pairs, &count, ix, 0, (int)our_pop, partner, (int)their_pop,
                               err);
    if (rc) {
        return rc;
    }
    cell->rows = am_arena_alloc(&r->arena, (count + 1) * sizeof(*cell->rows));
    if (!cell->rows) {
        free(pairs);
        return am_error_set(err, AM_ENOMEM, "out of memory building a report");
    }
    memset(cell->rows, 0, (count + 1) * sizeof(*cell->rows));
    for (k = 0; k < count; k++) {
        const am_record *o = record(ctx, 0, pairs[k].our_record);
        const am_record *t = record(ctx, partner, pairs[k].their_record);
        report_row *row = &cell->rows[k];

        if (!o || !t) {
            free(pairs);
            return am_error_set(err, AM_EINTERNAL, "report: a record of a shared cell is not "
                                "at hand; please report this bug");
        }
        row->their_id = dup_str(r, t->id);
        for (f = 0; f < AM_FIELD_COUNT; f++) {
            const char *v = NULL;
            char amount[32];
            if (!(cell->fields & (1u << f))) {
                continue;
            }
            switch ((am_share_field)f) {
            case AM_FIELD_ID: v = o->id; break;
            case AM_FIELD_NAME: v = o->name; break;
            case AM_FIELD_DOMAIN: v = o->domain; break;
            case AM_FIELD_TAX_ID: v = o->tax_id; break;
            case AM_FIELD_COUNTRY: v = o->country; break;
            case AM_FIELD_CITY: v = o->city; break;
            case AM_FIELD_OWNER: v = o->owner; break;
            case AM_FIELD_AMOUNT:
                amount[0] = '\0';
                if (o->has_amount) {
                    format_cents(amount, sizeof(amount), o->amount_cents);
                }
                v = amount;
                break;
            case AM_FIELD_COUNT: break;
            }
            row->values[f] = dup_str(r, v ? v : "");
            if (!row->values[f]) {
                free(pairs);
                return am_error_set(err, AM_ENOMEM, "out of memory building a report");
            }
        }
        if (!row->their_id) {
            free(pairs);
            return am_error_set(err, AM_ENOMEM, "out of memory building a report");
        }
    }
    cell->row_count = count;
    free(pairs);
    return AM_OK;
}

am_status am_report_build(am_report **out, const am_run *run, const am_index *ix,
                          size_t partner, const am_policy *policy, am_report_record_fn record,
                          void *ctx, am_error *err)
{
    const am_run_org *self, *them;
    am_report *r = NULL;
    size_t rows[AM_POPULATION_MAX], visible = 0, i, j;
    am_status rc;

    *out = NULL;
    AM_ASSERT(partner > 0 && partner < run->org_count, err);
    self = &run->orgs[0];
    them = &run->orgs[partner];
    AM_ASSERT(them->matrix.rows == self->population_count &&
                  them->matrix.cols == them->population_count &&
                  self->population_count > AM_POP_OPPORTUNITIES &&
                  (!them->pipeline.cents || (them->pipeline.rows == them->matrix.rows &&
                                             them->pipeline.cols == them->matrix.cols)),
              err);
    for (i = 0; i < self->population_count; i++) {
        if (am_policy_population(policy, i).level != AM_SHARE_HIDDEN) {
            rows[visible++] = i;
        }
    }
    rc = report_new(&r, visible, them->population_count, err);
    if (rc) {
        return rc;
    }
    r->finished_ms = run->finished_ms;
    r->self_id = dup_str(r, self->id);
    r->self_name = dup_str(r, self->name);
    r->partner_id = dup_str(r, them->id);
    r->partner_name = dup_str(r, them->name);
    for (i = 0; i < visible; i++) {
        r->ours[i] = dup_str(r, self->populations[rows[i]]);
        if (!r->ours[i]) {
            rc = AM_ENOMEM;
        }
    }
    for (j = 0; j < r->their_count; j++) {
        r->theirs[j] = dup_str(r, them->populations[j]);
        if (!r->theirs[j]) {
            rc = AM_ENOMEM;
        }
    }
    if (rc || !r->self_id || !r->self_name || !r->partner_id || !r->partner_name) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory building a report");
        goto cleanup;
    }
    for (i = 0; i < visible; i++) {
        for (j = 0; j < r->their_count; j++) {
            am_share share = am_policy_cell(policy, rows[i], j);
            report_cell *cell = cell_at(r, i, j);

            /* A visible row has no hidden cell (the policy refuses it); read it as none. */
            cell->level = share.level == AM_SHARE_HIDDEN ? AM_SHARE_NONE : share.level;
            if (cell->level >= AM_SHARE_COUNTS) {
                cell->count = them->matrix.cells[rows[i] * them->matrix.cols + j];
            }
            /* A run without amounts (or stored before them) has no pipeline to show. */
            if (cell->level >= AM_SHARE_COUNTS && them->pipeline.cents &&
                pipeline_shared(policy, rows[i], j)) {
                cell->has_pipeline = true;
                cell->pipeline_cents = them->pipeline.cents[rows[i] * them->pipeline.cols + j];
            }
            if (cell->level == AM_SHARE_ACCOUNTS) {
                cell->fields = share.fields;
                rc = fill_rows(r, cell, ix, partner, rows[i], j, record, ctx, err);
                if (rc) {
                    goto cleanup;
                }
            }
        }
    }
    *out = r;
    r = NULL;
cleanup:
    am_report_free(r);
    return rc;
}

/* ---- canonical JSON --------------------------------------------------------- */

static json_t *names_json(const char *const *names, size_t n)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; a && i < n; i++) {
        json_array_append_new(a, json_string(names[i]));
    }
    return a;
}

static json_t *org_json(const char *id, const char *name)
{
    json_t *o = json_object();

    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "name", json_string(name));
    return o;
}

static json_t *report_json(const am_report *r, const char *run_id)
{
    json_t *root = json_object();
    json_t *levels = json_array(), *matrix = json_array(), *pipeline = NULL;
    json_t *accounts = json_array();
    char finished[32];
    size_t i, j, k, f;

    format_finished(finished, sizeof(finished), r->finished_ms);
    json_object_set_new(root, "format", json_integer(REPORT_FORMAT));
    if (run_id) {
        json_object_set_new(root, "run", json_string(run_id));
    }
    json_object_set_new(root, "finished", json_string(finished));
    json_object_set_new(root, "from", org_json(r->self_id, r->self_name));
    json_object_set_new(root, "partner", org_json(r->partner_id, r->partner_name));
    json_object_set_new(root, "ours", names_json(r->ours, r->our_count));
    json_object_set_new(root, "theirs", names_json(r->theirs, r->their_count));
    for (i = 0; i < r->our_count * r->their_count; i++) {
        if (r->cells[i].has_pipeline && !pipeline) {
            pipeline = json_array();
        }
    }
    for (i = 0; i < r->our_count; i++) {
        json_t *lrow = json_array(), *mrow = json_array(), *prow = json_array();
        for (j = 0; j < r->their_count; j++) {
            const report_cell *c = cell_at(r, i, j);
            char v[32];
            format_cents(v, sizeof(v), c->pipeline_cents);
            json_array_append_new(lrow, json_string(am_share_level_name(c->level)));
            json_array_append_new(mrow, c->level >= AM_SHARE_COUNTS
                                            ? json_integer((json_int_t)c->count)
                                            : json_null());
            json_array_append_new(prow, c->has_pipeline ? json_string(v) : json_null());
        }
        json_array_append_new(levels, lrow);
        json_array_append_new(matrix, mrow);
        if (pipeline) {
            json_array_append_new(pipeline, prow);
        } else {
            json_decref(prow);
        }
    }
    json_object_set_new(root, "levels", levels);
    json_object_set_new(root, "matrix", matrix);
    /* Only runs that carry per-cell pipeline values have the key (issue #7). */
    if (pipeline) {
        json_object_set_new(root, "pipeline", pipeline);
    }
    for (i = 0; i < r->our_count; i++) {
        for (j = 0; j < r->their_count; j++) {
            const report_cell *c = cell_at(r, i, j);
            json_t *cell, *fields, *rows;
            if (c->level != AM_SHARE_ACCOUNTS) {
                continue;
            }
            cell = json_object();
            fields = json_array();
            rows = json_array();
            json_object_set_new(cell, "ours", json_string(r->ours[i]));
            json_object_set_new(cell, "theirs", json_string(r->theirs[j]));
            for (f = 0; f < AM_FIELD_COUNT; f++) {
                if (c->fields & (1u << f)) {
                    json_array_append_new(fields, json_string(am_share_field_name(f)));
                }
            }
            json_object_set_new(cell, "fields", fields);
            for (k = 0; k < c->row_count; k++) {
                json_t *row = json_object();
                json_object_set_new(row, "their_id", json_string(c->rows[k].their_id));
                for (f = 0; f < AM_FIELD_COUNT; f++) {
                    if (c->fields & (1u << f)) {
                        json_object_set_new(row, am_share_field_name(f),
                                            json_string(c->rows[k].values[f]));
                    }
                }
                json_array_append_new(rows, row);
            }
            json_object_set_new(cell, "rows", rows);
            json_array_append_new(accounts, cell);
        }
    }
    json_object_set_new(root, "accounts", accounts);
    return root;
}

static am_status dump_json(char **out, size_t *len_out, json_t *doc, am_error *err)
{
    char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    char *with_nl;
    size_t n;

    json_decref(doc);
    *out = NULL;
    if (!text) {
        return am_error_set(err, AM_ENOMEM, "out of memory writing a report");
    }
    n = strlen(text);
    with_nl = realloc(text, n + 2);
    if (!with_nl) {
        free(text);
        return am_error_set(err, AM_ENOMEM, "out of memory writing a report");
    }
    with_nl[n] = '\n';
    with_nl[n + 1] = '\0';
    *out = with_nl;
    *len_out = n + 1;
    return AM_OK;
}

am_status am_report_save(char **json_out, size_t *len_out, const am_report *r, am_error *err)
{
    return dump_json(json_out, len_out, report_json(r, NULL), err);
}

/* ---- loading (untrusted) ------------------------------------------------------ */

typedef struct loader {
    am_report *r;
    const char *where;
    am_error *err;
} loader;

static am_status bad(loader *l, const char *what)
{
    return am_error_set(l->err, AM_ESTORE, "%s: %s; the stored report is damaged, run acctmap "
                        "again", l->where, what);
}

static am_status load_str(const char **out, loader *l, const json_t *v, const char *what)
{
    if (!json_is_string(v)) {
        return bad(l, what);
    }
    *out = am_arena_strndup(&l->r->arena, json_string_value(v), json_string_length(v));
    return *out ? AM_OK : am_error_set(l->err, AM_ENOMEM, "out of memory loading a report");
}

static am_status load_names(const char **names, size_t *count, loader *l, const json_t *a,
                            const char *what)
{
    size_t i;
    am_status rc = AM_OK;

    if (!json_is_array(a) || json_array_size(a) > AM_POPULATION_MAX) {
        return bad(l, what);
    }
    *count = json_array_size(a);
    for (i = 0; !rc && i < *count; i++) {
        rc = load_str(&names[i], l, json_array_get(a, i), what);
        /* Population names are what the config allows: [a-z0-9_-], 1..32 (sheet names too). */
        if (!rc && (!names[i][0] || strlen(names[i]) > 32 ||
                    strspn(names[i], "abcdefghijklmnopqrstuvwxyz0123456789_-") !=
                        strlen(names[i]))) {
            rc = bad(l, what);
        }
    }
    return rc;
}

static int name_index(const char *const *names, size_t count, const char *name)
{
    size_t i;

    for (i = 0; name && i < count; i++) {
        if (strcmp(names[i], name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static am_status load_finished(int64_t *ms_out, loader *l, const json_t *v)
{
    struct tm tm;
    int y, mo, d, h, mi, s;
    char check[32];
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (!json_is_string(v) ||
        sscanf(json_string_value(v), "%4d-%2d-%2dT%2d:%2d:%2dZ", &y, &mo, &d, &h, &mi, &s) != 6) {
        return bad(l, "\"finished\" is not a UTC time");
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    t = timegm(&tm);
    *ms_out = (int64_t)t * 1000;
    format_finished(check, sizeof(check), *ms_out);
    if (strcmp(check, json_string_value(v)) != 0) {
        return bad(l, "\"finished\" is not a UTC time");
    }
    return AM_OK;
}

static am_status load_level(am_share_level *out, loader *l, const json_t *v)
{
    const char *s = json_string_value(v);

    for (int k = AM_SHARE_NONE; s && k <= AM_SHARE_ACCOUNTS; k++) {
        if (strcmp(s, am_share_level_name((am_share_level)k)) == 0) {
            *out = (am_share_level)k;
            return AM_OK;
        }
    }
    return bad(l, "a level is not none, counts or accounts");
}

static am_status load_cents(int64_t *out, loader *l, const json_t *v)
{
    const char *s = json_string_value(v);
    char check[32];
    long long whole = 0, frac = 0;
    bool neg = s && s[0] == '-';

    if (!s || sscanf(s + neg, "%lld.%2lld", &whole, &frac) != 2 || whole < 0 ||
        whole > INT64_MAX / 100 - 1) {
        return bad(l, "a pipeline value is not an amount");
    }
    *out = (int64_t)(whole * 100 + frac) * (neg ? -1 : 1);
    format_cents(check, sizeof(check), *out);
    return strcmp(check, s) == 0 ? AM_OK : bad(l, "a pipeline value is not an amount");
}

static am_status load_cells(loader *l, const json_t *root)
{
    am_report *r = l->r;
    const json_t *levels = json_object_get(root, "levels");
    const json_t *matrix = json_object_get(root, "matrix");
    const json_t *pipeline = json_object_get(root, "pipeline");
    size_t i, j;
    am_status rc;

    if (!json_is_array(levels) || json_array_size(levels) != r->our_count ||
        !json_is_array(matrix) || json_array_size(matrix) != r->our_count ||
        (pipeline && (!json_is_array(pipeline) || json_array_size(pipeline) != r->our_count))) {
        return bad(l, "the matrix does not have one row per population");
    }
    for (i = 0; i < r->our_count; i++) {
        const json_t *lrow = json_array_get(levels, i), *mrow = json_array_get(matrix, i);
        const json_t *prow = pipeline ? json_array_get(pipeline, i) : NULL;
        if (!json_is_array(lrow) || json_array_size(lrow) != r->their_count ||
            !json_is_array(mrow) || json_array_size(mrow) != r->their_count ||
            (prow && (!json_is_array(prow) || json_array_size(prow) != r->their_count))) {
            return bad(l, "a matrix row does not have one cell per population");
        }
        for (j = 0; j < r->their_count; j++) {
            report_cell *c = cell_at(r, i, j);
            const json_t *m = json_array_get(mrow, j);
            const json_t *p = prow ? json_array_get(prow, j) : NULL;
            rc = load_level(&c->level, l, json_array_get(lrow, j));
            if (rc) {
                return rc;
            }
            if (c->level == AM_SHARE_NONE ? !json_is_null(m)
                                          : !json_is_integer(m) || json_integer_value(m) < 0) {
                return bad(l, "a matrix cell does not match its level");
            }
            c->count = c->level == AM_SHARE_NONE ? 0 : (uint64_t)json_integer_value(m);
            if (p && !json_is_null(p)) {
                rc = load_cents(&c->pipeline_cents, l, p);
                if (rc) {
                    return rc;
                }
                c->has_pipeline = true;
            }
        }
    }
    return AM_OK;
}

static am_status load_account_cell(loader *l, const json_t *obj, bool *seen)
{
    am_report *r = l->r;
    const json_t *fields = json_object_get(obj, "fields");
    const json_t *rows = json_object_get(obj, "rows");
    int i = name_index(r->ours, r->our_count, json_string_value(json_object_get(obj, "ours")));
    int j = name_index(r->theirs, r->their_count,
                       json_string_value(json_object_get(obj, "theirs")));
    report_cell *c;
    size_t k, f, n;
    am_status rc;

    if (i < 0 || j < 0 || !json_is_array(fields) || !json_is_array(rows)) {
        return bad(l, "a shared cell is not one of the matrix");
    }
    c = cell_at(r, (size_t)i, (size_t)j);
    if (c->level != AM_SHARE_ACCOUNTS || seen[(size_t)i * r->their_count + (size_t)j]) {
        return bad(l, "a cell lists accounts it does not share");
    }
    seen[(size_t)i * r->their_count + (size_t)j] = true;
    for (k = 0; k < json_array_size(fields); k++) {
        const char *name = json_string_value(json_array_get(fields, k));
        for (f = 0; name && f < AM_FIELD_COUNT; f++) {
            if (strcmp(name, am_share_field_name(f)) == 0) {
                break;
            }
        }
        if (!name || f == AM_FIELD_COUNT) {
            return bad(l, "a shared cell lists an unknown field");
        }
        c->fields |= 1u << f;
    }
    n = json_array_size(rows);
    c->rows = am_arena_alloc(&r->arena, (n + 1) * sizeof(*c->rows));
    if (!c->rows) {
        return am_error_set(l->err, AM_ENOMEM, "out of memory loading a report");
    }
    memset(c->rows, 0, (n + 1) * sizeof(*c->rows));
    for (k = 0; k < n; k++) {
        const json_t *row = json_array_get(rows, k);
        size_t listed = 1;
        if (!json_is_object(row)) {
            return bad(l, "an account is not an object");
        }
        rc = load_str(&c->rows[k].their_id, l, json_object_get(row, "their_id"),
                      "an account has no their_id");
        for (f = 0; !rc && f < AM_FIELD_COUNT; f++) {
            if (c->fields & (1u << f)) {
                listed++;
                rc = load_str(&c->rows[k].values[f], l,
                              json_object_get(row, am_share_field_name(f)),
                              "an account lacks a listed field");
            }
        }
        if (rc) {
            return rc;
        }
        /* Nothing beyond the listed fields may reach a rendering. */
        if (json_object_size(row) != listed) {
            return bad(l, "an account holds a field that is not listed");
        }
    }
    c->row_count = n;
    return AM_OK;
}

am_status am_report_load(am_report **out, const char *json, size_t len, const char *where,
                         am_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *accounts;
    am_report *r = NULL;
    loader l = {NULL, where, err};
    const char *ours[AM_POPULATION_MAX], *theirs[AM_POPULATION_MAX];
    size_t our_count = 0, their_count = 0, i;
    bool *seen = NULL;
    am_status rc;

    *out = NULL;
    if (!json_is_object(root) || !json_is_integer(json_object_get(root, "format"))) {
        json_decref(root);
        return am_error_set(err, AM_ESTORE, "%s: not a report; the stored report is damaged, "
                            "run acctmap again", where);
    }
    if (json_integer_value(json_object_get(root, "format")) != REPORT_FORMAT) {
        json_decref(root);
        return am_error_set(err, AM_ESTORE, "%s: report format %lld is not %d; use the acctmap "
                            "version that wrote it", where,
                            (long long)json_integer_value(json_object_get(root, "format")),
                            REPORT_FORMAT);
    }
    rc = report_new(&r, 0, 0, err);
    if (rc) {
        json_decref(root);
        return rc;
    }
    l.r = r;
    rc = load_names(ours, &our_count, &l, json_object_get(root, "ours"), "\"ours\" is wrong");
    if (!rc) {
        rc = load_names(theirs, &their_count, &l, json_object_get(root, "theirs"),
                        "\"theirs\" is wrong");
    }
    if (!rc) {
        r->cells = am_arena_alloc(&r->arena,
                                  (our_count * their_count + 1) * sizeof(*r->cells));
        seen = calloc(our_count * their_count + 1, sizeof(*seen));
        if (!r->cells || !seen) {
            rc = am_error_set(err, AM_ENOMEM, "out of memory loading a report");
        }
    }
    if (rc) {
        goto cleanup;
    }
    memset(r->cells, 0, (our_count * their_count + 1) * sizeof(*r->cells));
    r->our_count = our_count;
    r->their_count = their_count;
    memcpy(r->ours, ours, our_count * sizeof(*ours));
    memcpy(r->theirs, theirs, their_count * sizeof(*theirs));
    rc = load_finished(&r->finished_ms, &l, json_object_get(root, "finished"));
    if (!rc) {
        json_t *from = json_object_get(root, "from");
        rc = load_str(&r->self_id, &l, json_object_get(from, "id"), "\"from\" is wrong");
        if (!rc) {
            rc = load_str(&r->self_name, &l, json_object_get(from, "name"), "\"from\" is wrong");
        }
    }
    if (!rc) {
        json_t *p = json_object_get(root, "partner");
        rc = load_str(&r->partner_id, &l, json_object_get(p, "id"), "\"partner\" is wrong");
        if (!rc) {
            rc = load_str(&r->partner_name, &l, json_object_get(p, "name"),
                          "\"partner\" is wrong");
        }
    }
    if (!rc) {
        rc = load_cells(&l, root);
    }
    accounts = json_object_get(root, "accounts");
    if (!rc && !json_is_array(accounts)) {
        rc = bad(&l, "\"accounts\" is missing");
    }
    for (i = 0; !rc && i < json_array_size(accounts); i++) {
        rc = load_account_cell(&l, json_array_get(accounts, i), seen);
    }
    for (i = 0; !rc && i < our_count * their_count; i++) {
        if (r->cells[i].level == AM_SHARE_ACCOUNTS && !seen[i]) {
            rc = bad(&l, "a cell shared as accounts lists none");
        }
    }
    if (rc) {
        goto cleanup;
    }
    *out = r;
    r = NULL;
cleanup:
    free(seen);
    json_decref(root);
    am_report_free(r);
    return rc;
}

/* ---- text output ------------------------------------------------------------ */

typedef struct text_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
} text_buf;

static void put_n(text_buf *b, const char *s, size_t n)
{
    if (b->failed) {
        return;
    }
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 4096;
        char *grown;
        while (cap - b->len < n + 1 && cap <= RENDER_MAX) {
            cap *= 2;
        }
        grown = cap <= RENDER_MAX ? realloc(b->data, cap) : NULL;
        if (!grown) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void put(text_buf *b, const char *s)
{
    put_n(b, s, strlen(s));
}

static void putf(text_buf *b, const char *fmt, ...) AM_PRINTF(2, 3);

static void putf(text_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        b->failed = true;
        return;
    }
    put_n(b, tmp, (size_t)n);
}

static am_status finish_text(char **out, size_t *len_out, text_buf *b, am_error *err)
{
    if (b->failed || !b->data) {
        free(b->data);
        return am_error_set(err, AM_ELIMIT, "report: out of memory or over %zu MiB rendering; "
                            "share fewer accounts", RENDER_MAX >> 20);
    }
    *out = b->data;
    *len_out = b->len;
    return AM_OK;
}

/*
 * A CSV field (RFC 4180). A value a spreadsheet would run as a formula
 * (=, +, -, @, tab, CR first) gets a leading apostrophe: CRM text is data.
 */
static void csv_field(text_buf *b, const char *s, bool formula_guard, bool last)
{
    bool quote = strpbrk(s, ",\"\r\n") != NULL;

    if (formula_guard && strchr("=+-@\t\r", s[0]) && s[0]) {
        quote = true;
        put(b, "\"'");
    } else if (quote) {
        put(b, "\"");
    }
    for (; *s; s++) {
        put_n(b, s, 1);
        if (*s == '"') {
            put_n(b, "\"", 1);
        }
    }
    if (quote) {
        put(b, "\"");
    }
    put(b, last ? "\r\n" : ",");
}

static am_status render_csv(char **out, size_t *len_out, const am_report *r, am_error *err)
{
    text_buf b = {NULL, 0, 0, false};
    size_t i, j, k, f, n = sizeof(csv_head) / sizeof(csv_head[0]);

    for (i = 0; i < n; i++) {
        csv_field(&b, csv_head[i], false, i + 1 == n);
    }
    for (i = 0; i < r->our_count; i++) {
        for (j = 0; j < r->their_count; j++) {
            const report_cell *c = cell_at(r, i, j);
            char count[24] = "", pipeline[32] = "";
            if (c->level >= AM_SHARE_COUNTS) {
                snprintf(count, sizeof(count), "%llu", (unsigned long long)c->count);
            }
            if (c->has_pipeline) {
                format_cents(pipeline, sizeof(pipeline), c->pipeline_cents);
            }
            csv_field(&b, "cell", false, false);
            csv_field(&b, r->ours[i], true, false);
            csv_field(&b, r->theirs[j], true, false);
            csv_field(&b, am_share_level_name(c->level), false, false);
            csv_field(&b, count, false, false);
            csv_field(&b, pipeline, false, false);
            for (f = 0; f <= AM_FIELD_COUNT; f++) {
                csv_field(&b, "", false, f == AM_FIELD_COUNT);
            }
        }
    }
    for (i = 0; i < r->our_count; i++) {
        for (j = 0; j < r->their_count; j++) {
            const report_cell *c = cell_at(r, i, j);
            for (k = 0; c->level == AM_SHARE_ACCOUNTS && k < c->row_count; k++) {
                const report_row *row = &c->rows[k];
                csv_field(&b, "account", false, false);
                csv_field(&b, r->ours[i], true, false);
                csv_field(&b, r->theirs[j], true, false);
                csv_field(&b, "accounts", false, false);
                csv_field(&b, "", false, false);
                csv_field(&b, "", false, false);
                csv_field(&b, row->their_id, true, false);
                for (f = 0; f < AM_FIELD_COUNT; f++) {
                    csv_field(&b, row->values[f] ? row->values[f] : "", f != AM_FIELD_AMOUNT,
                              f + 1 == AM_FIELD_COUNT);
                }
            }
        }
    }
    return finish_text(out, len_out, &b, err);
}

/* Text from a CRM or the config inside HTML, in elements and in attributes alike. */
static void html_text(text_buf *b, const char *s)
{
    const char *run = s;

    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep) {
            put_n(b, run, (size_t)(s - run));
            put(b, rep);
            run = s + 1;
        }
    }
    put_n(b, run, (size_t)(s - run));
}

static const char html_style[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem;"
    "color:#1f2933;max-width:72rem}"
    "h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.15rem;margin-top:2rem}"
    "h3{font-size:1rem;margin:1.5rem 0 .5rem}"
    ".meta{color:#52606d;margin-top:0}"
    "table{border-collapse:collapse;margin:.5rem 0}"
    "th,td{border:1px solid #d9e2ec;padding:.4rem .7rem;text-align:left;vertical-align:top}"
    "thead th{background:#f0f4f8}"
    "table.matrix td{text-align:center;min-width:6.5rem;font-variant-numeric:tabular-nums;"
    "font-size:1.1rem}"
    "table.matrix td.none{color:#9aa5b1;font-size:.85rem;background:#f8f9fa}"
    "table.matrix td small{display:block;font-size:.75rem}"
    ".legend{color:#52606d;font-size:.85rem}"
    "td.empty{color:#9aa5b1}";

/* Heat-map colour of a count: darker blue for a larger share of the largest cell. */
static void heat_style(text_buf *b, uint64_t count, uint64_t max)
{
    unsigned shade = max ? (unsigned)((count * 100 + max / 2) / max) : 0;
    /* Alpha from 0.06 (empty cell) to 0.90 (the largest). */
    unsigned alpha = 6 + shade * 84 / 100;

    putf(b, " style=\"background:rgba(37,99,235,0.%02u);color:%s\"", alpha,
         alpha > 50 ? "#fff" : "#102a43");
}

static am_status render_html(char **out, size_t *len_out, const am_report *r,
                             const char *run_id, am_error *err)
{
    text_buf b = {NULL, 0, 0, false};
    char finished[32];
    uint64_t max = 0;
    size_t i, j, k, f, shared_cells = 0;
    bool any_pipeline = false;

    {
        time_t t = (time_t)(r->finished_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(finished, sizeof(finished), "%Y-%m-%d %H:%M UTC", &tm);
    }
    for (i = 0; i < r->our_count * r->their_count; i++) {
        if (r->cells[i].level >= AM_SHARE_COUNTS && r->cells[i].count > max) {
            max = r->cells[i].count;
        }
        shared_cells += r->cells[i].level == AM_SHARE_ACCOUNTS;
        any_pipeline = any_pipeline || r->cells[i].has_pipeline;
    }
    put(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    html_text(&b, r->self_name);
    put(&b, " and ");
    html_text(&b, r->partner_name);
    put(&b, ": account mapping</title>\n<style>");
    put(&b, html_style);
    put(&b, "</style>\n</head>\n<body>\n<h1>");
    html_text(&b, r->self_name);
    put(&b, " and ");
    html_text(&b, r->partner_name);
    put(&b, "</h1>\n<p class=\"meta\">Account mapping run <span id=\"run\">");
    html_text(&b, run_id ? run_id : "");
    put(&b, "</span>, finished ");
    html_text(&b, finished);
    put(&b, ". What ");
    html_text(&b, r->self_name);
    put(&b, " shares with ");
    html_text(&b, r->partner_name);
    put(&b, " under its sharing policy.</p>\n<h2>Companies we both have</h2>\n"
            "<table class=\"matrix\" id=\"matrix\">\n<thead><tr><th>ours \\ yours</th>");
    for (j = 0; j < r->their_count; j++) {
        put(&b, "<th scope=\"col\">your ");
        html_text(&b, r->theirs[j]);
        put(&b, "</th>");
    }
    put(&b, "</tr></thead>\n<tbody>\n");
    for (i = 0; i < r->our_count; i++) {
        put(&b, "<tr><th scope=\"row\">our ");
        html_text(&b, r->ours[i]);
        put(&b, "</th>");
        for (j = 0; j < r->their_count; j++) {
            const report_cell *c = cell_at(r, i, j);
            if (c->level == AM_SHARE_NONE) {
                put(&b, "<td class=\"none\">not shared</td>");
                continue;
            }
            put(&b, "<td class=\"count\" title=\"our ");
            html_text(&b, r->ours[i]);
            put(&b, " x your ");
            html_text(&b, r->theirs[j]);
            put(&b, "\"");
            heat_style(&b, c->count, max);
            putf(&b, ">%llu", (unsigned long long)c->count);
            if (c->has_pipeline) {
                char v[32];
                format_cents(v, sizeof(v), c->pipeline_cents);
                putf(&b, "<small>pipeline %s</small>", v);
            }
            put(&b, "</td>");
        }
        put(&b, "</tr>\n");
    }
    put(&b, "</tbody>\n</table>\n<p class=\"legend\">Each number counts companies that are in "
            "our population (row) and in yours (column). Darker is more. \"not shared\": the "
            "number is not part of this report.");
    /* Only reports with pipeline values say more: an old run's report keeps its bytes. */
    if (any_pipeline) {
        put(&b, " \"pipeline\": the open pipeline of the cell, the sum of the amounts of our "
                "open opportunities among its companies (shown where the amounts are shared).");
    }
    put(&b, "</p>\n");
    put(&b, "<h2>Shared accounts</h2>\n");
    if (!shared_cells) {
        put(&b, "<p class=\"legend\">No accounts are shared in this report, only numbers.</p>\n");
    }
    for (i = 0; i < r->our_count; i++) {
        for (j = 0; j < r->their_count; j++) {
            const report_cell *c = cell_at(r, i, j);
            if (c->level != AM_SHARE_ACCOUNTS) {
                continue;
            }
            put(&b, "<h3>Our ");
            html_text(&b, r->ours[i]);
            put(&b, " that are your ");
            html_text(&b, r->theirs[j]);
            /* A company the partner holds twice is one in the matrix and two rows here. */
            putf(&b, ": %llu %s", (unsigned long long)c->count,
                 c->count == 1 ? "company" : "companies");
            if (c->row_count != c->count) {
                putf(&b, " (%zu of your records)", c->row_count);
            }
            if (c->has_pipeline) {
                char v[32];
                format_cents(v, sizeof(v), c->pipeline_cents);
                putf(&b, ", open pipeline %s", v);
            }
            put(&b, "</h3>\n<table class=\"accounts\">\n<thead><tr><th>your id</th>");
            for (f = 0; f < AM_FIELD_COUNT; f++) {
                if (c->fields & (1u << f)) {
                    putf(&b, "<th>%s</th>", am_share_field_name(f));
                }
            }
            put(&b, "</tr></thead>\n<tbody>\n");
            for (k = 0; k < c->row_count; k++) {
                put(&b, "<tr><td>");
                html_text(&b, c->rows[k].their_id);
                put(&b, "</td>");
                for (f = 0; f < AM_FIELD_COUNT; f++) {
                    if (c->fields & (1u << f)) {
                        put(&b, "<td>");
                        html_text(&b, c->rows[k].values[f]);
                        put(&b, "</td>");
                    }
                }
                put(&b, "</tr>\n");
            }
            if (!c->row_count) {
                put(&b, "<tr><td class=\"empty\" colspan=\"9\">none</td></tr>\n");
            }
            put(&b, "</tbody>\n</table>\n");
        }
    }
    put(&b, "</body>\n</html>\n");
    return finish_text(out, len_out, &b, err);
}

/* ---- XLSX ----------------------------------------------------------------- */

static am_status xlsx_check(lxw_error e, const char *sheet, am_error *err)
{
    if (e == LXW_NO_ERROR) {
        return AM_OK;
    }
    return am_error_set(err, e == LXW_ERROR_MAX_STRING_LENGTH_EXCEEDED ? AM_ELIMIT : AM_EIO,
                        "report: sheet %s: %s%s", sheet, lxw_strerror(e),
                        e == LXW_ERROR_MAX_STRING_LENGTH_EXCEEDED
                            ? "; Excel holds at most 32767 characters in a cell, use csv or json"
                            : "");
}

/*
 * A sheet laid out as the matrix (their populations across, ours down) with
 * a heat map over its numbers: the counts ("Matrix"), or with `pipeline`
 * each cell's open pipeline value ("Pipeline"). "not shared" where the
 * report has no such number.
 */
static am_status xlsx_matrix_sheet(lxw_workbook *wb, const am_report *r, const char *sheet,
                                   bool pipeline, lxw_format *head, lxw_format *money,
                                   am_error *err)
{
    lxw_worksheet *ws = workbook_add_worksheet(wb, sheet);
    size_t i, j;
    am_status rc = AM_OK;

    if (!ws) {
        return am_error_set(err, AM_ENOMEM, "report: cannot add sheet %s to the workbook", sheet);
    }
    rc = xlsx_check(worksheet_write_string(ws, 0, 0, "ours \\ yours", head), sheet, err);
    for (j = 0; !rc && j < r->their_count; j++) {
        rc = xlsx_check(worksheet_write_string(ws, 0, (lxw_col_t)(j + 1), r->theirs[j], head),
                        sheet, err);
    }
    for (i = 0; !rc && i < r->our_count; i++) {
        rc = xlsx_check(worksheet_write_string(ws, (lxw_row_t)(i + 1), 0, r->ours[i], head),
                        sheet, err);
        for (j = 0; !rc && j < r->their_count; j++) {
            const report_cell *c = cell_at(r, i, j);
            lxw_row_t row = (lxw_row_t)(i + 1);
            lxw_col_t col = (lxw_col_t)(j + 1);
            lxw_error e;
            if (pipeline ? !c->has_pipeline : c->level == AM_SHARE_NONE) {
                e = worksheet_write_string(ws, row, col, "not shared", NULL);
            } else if (pipeline) {
                /* A spreadsheet number is a double: exact to the cent below 2^53 cents. */
                e = worksheet_write_number(ws, row, col, (double)c->pipeline_cents / 100.0,
                                           money);
            } else {
                e = worksheet_write_number(ws, row, col, (double)c->count, NULL);
            }
            rc = xlsx_check(e, sheet, err);
        }
    }
    worksheet_set_column(ws, 0, (lxw_col_t)r->their_count, 18, NULL);
    if (!rc && r->our_count && r->their_count) {
        /* The heat map: white to the HTML report's blue over the numbers. */
        lxw_conditional_format scale;
        memset(&scale, 0, sizeof(scale));
        scale.type = LXW_CONDITIONAL_2_COLOR_SCALE;
        scale.min_color = 0xF0F4F8;
        scale.max_color = 0x2563EB;
        rc = xlsx_check(worksheet_conditional_format_range(ws, 1, 1, (lxw_row_t)r->our_count,
                                                           (lxw_col_t)r->their_count, &scale),
                        sheet, err);
    }
    return rc;
}

static am_status xlsx_write(lxw_workbook *wb, const am_report *r, am_error *err)
{
    lxw_format *head = workbook_add_format(wb);
    lxw_format *money = NULL;
    lxw_worksheet *ws;
    size_t i, j, k, f, sheet_no = 0;
    bool any_pipeline = false;
    am_status rc = AM_OK;

    if (!head) {
        return am_error_set(err, AM_ENOMEM, "report: cannot add a format to the workbook");
    }
    format_set_bold(head);
    for (i = 0; i < r->our_count * r->their_count; i++) {
        any_pipeline = any_pipeline || r->cells[i].has_pipeline;
    }
    rc = xlsx_matrix_sheet(wb, r, "Matrix", false, head, NULL, err);
    /* Only reports with pipeline values get the sheet: an old run's report keeps its bytes. */
    if (!rc && any_pipeline) {
        money = workbook_add_format(wb);
        if (!money) {
            return am_error_set(err, AM_ENOMEM, "report: cannot add a format to the workbook");
        }
        format_set_num_format(money, "#,##0.00");
        rc = xlsx_matrix_sheet(wb, r, "Pipeline", true, head, money, err);
    }
    for (i = 0; !rc && i < r->our_count; i++) {
        for (j = 0; !rc && j < r->their_count; j++) {
            const report_cell *c = cell_at(r, i, j);
            char name[64];
            lxw_col_t col = 1;
            if (c->level != AM_SHARE_ACCOUNTS) {
                continue;
            }
            /* Population names are [a-z0-9_-]; the number keeps cut names unique. */
            snprintf(name, sizeof(name), "%zu %s x %s", ++sheet_no, r->ours[i], r->theirs[j]);
            name[XLSX_SHEET_NAME_MAX] = '\0';
            ws = workbook_add_worksheet(wb, name);
            if (!ws) {
                return am_error_set(err, AM_ENOMEM, "report: cannot add sheet %s", name);
            }
            rc = xlsx_check(worksheet_write_string(ws, 0, 0, "your id", head), name, err);
            for (f = 0; !rc && f < AM_FIELD_COUNT; f++) {
                if (c->fields & (1u << f)) {
                    rc = xlsx_check(worksheet_write_string(ws, 0, col++, am_share_field_name(f),
                                                           head),
                                    name, err);
                }
            }
            for (k = 0; !rc && k < c->row_count; k++) {
                lxw_row_t row = (lxw_row_t)(k + 1);
                col = 0;
                /* Strings stay strings: a CRM value is never a formula. */
                rc = xlsx_check(worksheet_write_string(ws, row, col++, c->rows[k].their_id, NULL),
                                name, err);
                for (f = 0; !rc && f < AM_FIELD_COUNT; f++) {
                    if (c->fields & (1u << f)) {
                        rc = xlsx_check(worksheet_write_string(ws, row, col++,
                                                               c->rows[k].values[f], NULL),
                                        name, err);
                    }
                }
            }
            worksheet_set_column(ws, 0, col, 20, NULL);
        }
    }
    return rc;
}

static am_status render_xlsx(char **out, size_t *len_out, const am_report *r, am_error *err)
{
    const char *tmpdir = getenv("TMPDIR");
    char path[4096];
    lxw_workbook *wb = NULL;
    lxw_doc_properties props;
    char title[256];
    FILE *f = NULL;
    char *data = NULL;
    long size;
    int fd;
    am_status rc = AM_OK;
    lxw_error e;

    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/acctmap-report-XXXXXX",
                 tmpdir && tmpdir[0] ? tmpdir : "/tmp") >= (int)sizeof(path)) {
        return am_error_set(err, AM_ELIMIT, "report: TMPDIR is too long");
    }
    fd = mkstemp(path);
    if (fd < 0) {
        return am_error_set(err, AM_EIO, "report: cannot create a temporary file in %s: %s; "
                            "set TMPDIR to a writable directory",
                            tmpdir && tmpdir[0] ? tmpdir : "/tmp", strerror(errno));
    }
    close(fd);
    wb = workbook_new(path);
    if (!wb) {
        rc = am_error_set(err, AM_EIO, "report: cannot start the workbook %s", path);
        goto cleanup;
    }
    memset(&props, 0, sizeof(props));
    snprintf(title, sizeof(title), "%s and %s: account mapping", r->self_name, r->partner_name);
    props.title = title;
    props.author = (char *)r->self_name;
    /* The run's time, not now: the same report gives the same bytes. */
    props.created = (time_t)(r->finished_ms / 1000);
    workbook_set_properties(wb, &props);
    rc = xlsx_write(wb, r, err);
    e = workbook_close(wb);
    wb = NULL;
    if (!rc && e != LXW_NO_ERROR) {
        rc = am_error_set(err, AM_EIO, "report: cannot write the workbook: %s",
                          lxw_strerror(e));
    }
    if (rc) {
        goto cleanup;
    }
    f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        rc = am_error_set(err, AM_EIO, "report: cannot read back the workbook %s", path);
        goto cleanup;
    }
    data = malloc((size_t)size + 1);
    if (!data) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory reading the workbook");
        goto cleanup;
    }
    if (fread(data, 1, (size_t)size, f) != (size_t)size) {
        rc = am_error_set(err, AM_EIO, "report: cannot read back the workbook %s", path);
        goto cleanup;
    }
    *out = data;
    *len_out = (size_t)size;
    data = NULL;
cleanup:
    if (wb) {
        workbook_close(wb);
    }
    if (f) {
        fclose(f);
    }
    free(data);
    unlink(path);
    return rc;
}

/* ---- formats ------------------------------------------------------------------- */

am_status am_report_render(char **out, size_t *len_out, const am_report *r, const char *run_id,
                           am_report_format format, am_error *err)
{
    *out = NULL;
    *len_out = 0;
    switch (format) {
    case AM_REPORT_JSON: return dump_json(out, len_out, report_json(r, run_id), err);
    case AM_REPORT_CSV: return render_csv(out, len_out, r, err);
    case AM_REPORT_HTML: return render_html(out, len_out, r, run_id, err);
    case AM_REPORT_XLSX: return render_xlsx(out, len_out, r, err);
    }
    return am_error_set(err, AM_EINVAL, "report: unknown format %d", (int)format);
}

am_status am_report_format_parse(am_report_format *out, const char *name, am_error *err)
{
    static const char *const names[] = {"json", "csv", "html", "xlsx"};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (am_report_format)i;
            return AM_OK;
        }
    }
    return am_error_set(err, AM_EUSAGE, "report: --format \"%.40s\" is not one of html, csv, "
                        "json, xlsx", name);
}
