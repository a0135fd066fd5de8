/*
 * What the CRM connectors share (see crm.h): the population rule, records
 * into batches, text for messages, and the company table of Salesforce and
 * HubSpot. Written once so the four connectors cannot drift apart.
 */
#include "connectors/crm.h"
#include "connectors/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The source's `populations` rule for `value` first; else `defaults`. */
static uint32_t value_populations(const am_source_config *cfg, const char *value, uint32_t defaults)
{
    uint32_t mapped = am_source_config_rule_match(cfg, value, strlen(value));

    return mapped ? mapped : defaults;
}

uint32_t am_crm_populations(const am_source_config *cfg, const char *status,
                            uint32_t status_default, unsigned deals)
{
    uint32_t pops = 0;

    if (status && status[0]) {
        pops |= value_populations(cfg, status, status_default);
    }
    if (deals & AM_CRM_DEAL_WON) {
        pops |= value_populations(cfg, "won", 1u << AM_POP_CUSTOMERS);
    }
    if (deals & AM_CRM_DEAL_OPEN) {
        pops |= value_populations(cfg, "open", 1u << AM_POP_OPPORTUNITIES);
    }
    if (deals & AM_CRM_DEAL_LOST) {
        pops |= value_populations(cfg, "lost", 0);
    }
    return pops ? pops : 1u << AM_POP_PROSPECTS;
}

void am_crm_excerpt(char *out, size_t cap, const char *s)
{
    size_t n = s ? strlen(s) : 0, i;

    if (n > cap - 1) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
            n--; /* do not cut a character in two */
        }
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c == 0x7F || c == '"') ? ' ' : (char)c;
    }
    out[n] = '\0';
}

void am_crm_one_line(char *text)
{
    for (; *text; text++) {
        if ((unsigned char)*text < 0x20 || *text == 0x7f) {
            *text = ' ';
        }
    }
}

am_status am_crm_fail_scrubbed(const am_http *http, am_error *err, am_status status,
                               const char *fmt, ...)
{
    char line[sizeof(err->msg)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    am_crm_one_line(line);
    am_http_scrub(http, line, sizeof(line));
    return am_error_set(err, status, "%s", line);
}

void am_crm_url_origin(char *out, size_t cap, const char *url)
{
    const char *sep = strstr(url, "://");
    const char *host, *end, *at;

    if (!sep) {
        snprintf(out, cap, "(not a URL)");
        return;
    }
    host = sep + 3;
    end = host + strcspn(host, "/?#");
    at = memchr(host, '@', (size_t)(end - host));
    if (at) {
        host = at + 1;
    }
    snprintf(out, cap, "%.*s%.*s", (int)(sep + 3 - url), url, (int)(end - host), host);
}

bool am_crm_record_copy(am_record *out, const am_record *in, am_arena *arena)
{
    const char *const *const from[] = {&in->id,      &in->name, &in->domain, &in->tax_id,
                                       &in->country, &in->city, &in->owner};
    const char **const to[] = {&out->id,      &out->name, &out->domain, &out->tax_id,
                               &out->country, &out->city, &out->owner};
    size_t i;

    *out = *in;
    for (i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
        *to[i] = am_arena_strndup(arena, *from[i], strlen(*from[i]));
        if (!*to[i]) {
            return false;
        }
    }
    return true;
}

am_status am_crm_batch_add(am_record_batch *batch, const am_record *in, const char *label,
                           am_error *err)
{
    am_record *rec;
    am_status rc = am_record_batch_push(&rec, batch, err);

    if (rc) {
        return rc;
    }
    if (!am_crm_record_copy(rec, in, &batch->arena)) {
        return am_error_set(err, AM_ENOMEM, "%s: out of memory for a batch of records", label);
    }
    return AM_OK;
}

am_status am_crm_next_batch(am_source *src, bool *pulled, bool *failed, am_crm_pull_fn pull,
                            am_crm_emit_fn emit, am_record_batch *batch, am_error *err)
{
    am_status rc;

    am_record_batch_reset(batch);
    if (*failed) {
        *err = src->last;
        return err->status;
    }
    if (!*pulled) {
        rc = pull(src, err);
        if (rc) {
            goto fail;
        }
        *pulled = true;
    }
    rc = emit(src, batch, err);
    if (rc) {
        goto fail;
    }
    return AM_OK;
fail:
    *failed = true;
    src->last = *err;
    return rc;
}

/* ---- the company table ------------------------------------------------------ */

static am_status no_memory(const char *where, am_error *err)
{
    return am_error_set(err, AM_ENOMEM, "%s: out of memory", where);
}

void am_crm_table_dispose(am_crm_table *t)
{
    free(t->companies);
    free(t->by_id);
    free(t->rejects);
    memset(t, 0, sizeof(*t));
}

am_status am_crm_table_push(am_crm_company **out, am_crm_table *t, const char *where, am_error *err)
{
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        am_crm_company *grown = realloc(t->companies, cap * sizeof(*grown));
        if (!grown) {
            return no_memory(where, err);
        }
        t->companies = grown;
        t->cap = cap;
    }
    *out = &t->companies[t->count++];
    memset(*out, 0, sizeof(**out));
    return AM_OK;
}

am_status am_crm_table_reject(am_crm_table *t, am_arena *arena, uint32_t line, const char *where,
                              am_error *err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (t->reject_count == t->reject_cap) {
        size_t cap = t->reject_cap ? t->reject_cap * 2 : 16;
        am_crm_reject *grown = realloc(t->rejects, cap * sizeof(*grown));
        if (!grown) {
            return no_memory(where, err);
        }
        t->rejects = grown;
        t->reject_cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    t->rejects[t->reject_count].line = line;
    t->rejects[t->reject_count].msg = am_arena_strndup(arena, msg, strlen(msg));
    if (!t->rejects[t->reject_count].msg) {
        return no_memory(where, err);
    }
    t->reject_count++;
    return AM_OK;
}

/* Sort company indexes by id (merge sort: qsort has no context argument). */
static void sort_ids(size_t *v, size_t *tmp, size_t n, const am_crm_company *companies)
{
    size_t mid = n / 2, i = 0, j = mid, k = 0;

    if (n < 2) {
        return;
    }
    sort_ids(v, tmp, mid, companies);
    sort_ids(v + mid, tmp, n - mid, companies);
    while (i < mid && j < n) {
        bool right = strcmp(companies[v[j]].rec.id, companies[v[i]].rec.id) < 0;
        tmp[k++] = right ? v[j++] : v[i++];
    }
    while (i < mid) {
        tmp[k++] = v[i++];
    }
    while (j < n) {
        tmp[k++] = v[j++];
    }
    memcpy(v, tmp, n * sizeof(*v));
}

am_status am_crm_table_index(am_crm_table *t, const char *where, am_error *err)
{
    size_t *tmp;
    size_t i;

    free(t->by_id);
    t->by_id = malloc((t->count + 1) * sizeof(*t->by_id));
    tmp = malloc((t->count + 1) * sizeof(*tmp));
    if (!t->by_id || !tmp) {
        free(tmp);
        return no_memory(where, err);
    }
    for (i = 0; i < t->count; i++) {
        t->by_id[i] = i;
    }
    sort_ids(t->by_id, tmp, t->count, t->companies);
    free(tmp);
    return AM_OK;
}

am_crm_company *am_crm_table_find(const am_crm_table *t, const char *id)
{
    size_t lo = 0, hi = t->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->companies[t->by_id[mid]].rec.id, id);
        if (c == 0) {
            return &t->companies[t->by_id[mid]];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

bool am_crm_company_add_amount(am_crm_company *c, unsigned state, int64_t cents)
{
    int64_t *sum = state == AM_CRM_DEAL_OPEN ? &c->open_cents : &c->won_cents;

    if ((cents > 0 && *sum > INT64_MAX - cents) || (cents < 0 && *sum < INT64_MIN - cents)) {
        return false;
    }
    *sum += cents;
    *(state == AM_CRM_DEAL_OPEN ? &c->has_open : &c->has_won) = true;
    return true;
}

am_status am_crm_table_emit(am_crm_table *t, am_record_batch *batch, const am_source_config *cfg,
                            enum am_crm_amount amount, size_t max, am_error *err)
{
    size_t n = 0;
    am_status rc;

    for (; t->next_reject < t->reject_count; t->next_reject++) {
        const am_crm_reject *r = &t->rejects[t->next_reject];
        rc = am_record_batch_reject(batch, r->line, err, "%s", r->msg);
        if (rc) {
            return rc;
        }
    }
    for (; t->next_company < t->count && n < max; t->next_company++, n++) {
        const am_crm_company *c = &t->companies[t->next_company];
        am_record *rec;

        rc = am_record_batch_push(&rec, batch, err);
        if (rc) {
            return rc;
        }
        if (!am_crm_record_copy(rec, &c->rec, &batch->arena)) {
            return am_error_set(err, AM_ENOMEM, "out of memory filling a batch");
        }
        rec->populations = am_crm_populations(cfg, c->status, c->status_pops, c->deals);
        if (amount != AM_CRM_AMOUNT_REVENUE) {
            bool pipeline = amount == AM_CRM_AMOUNT_PIPELINE;
            rec->has_amount = pipeline ? c->has_open : c->has_won;
            rec->amount_cents = pipeline ? c->open_cents : c->won_cents;
        }
    }
    return AM_OK;
}

/* ---- the company list of Bitrix24 and amoCRM -------------------------------- */

void am_crm_list_dispose(am_crm_list *l)
{
    free(l->entries);
    free(l->by_id);
    memset(l, 0, sizeof(*l));
}

am_status am_crm_list_push(am_crm_entry **out, am_crm_list *l, const char *label, am_error *err)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        am_crm_entry *grown = realloc(l->entries, cap * sizeof(*grown));
        if (!grown) {
            return am_error_set(err, AM_ENOMEM, "%s: out of memory for %zu companies", label, cap);
        }
        l->entries = grown;
        l->cap = cap;
    }
    *out = &l->entries[l->count++];
    memset(*out, 0, sizeof(**out));
    (*out)->row = (uint32_t)l->count;
    return AM_OK;
}

static int by_id_row(const void *a, const void *b)
{
    const am_crm_entry *x = *(am_crm_entry *const *)a;
    const am_crm_entry *y = *(am_crm_entry *const *)b;
    int c = strcmp(x->id, y->id);

    if (c) {
        return c;
    }
    return x->row < y->row ? -1 : x->row > y->row;
}

am_status am_crm_list_index(am_crm_list *l, const char *label, am_error *err)
{
    size_t i, n = 0;

    free(l->by_id);
    l->by_id = malloc((l->count + 1) * sizeof(*l->by_id));
    if (!l->by_id) {
        return am_error_set(err, AM_ENOMEM, "%s: out of memory indexing %zu companies", label,
                            l->count);
    }
    for (i = 0; i < l->count; i++) {
        if (!l->entries[i].bad && l->entries[i].id) { /* no id: a pull that ran out of memory */
            l->by_id[n++] = &l->entries[i];
        }
    }
    qsort(l->by_id, n, sizeof(*l->by_id), by_id_row);
    l->unique = 0;
    for (i = 0; i < n; i++) {
        if (l->unique && strcmp(l->by_id[l->unique - 1]->id, l->by_id[i]->id) == 0) {
            l->by_id[i]->repeated = true;
            continue;
        }
        l->by_id[l->unique++] = l->by_id[i];
    }
    return AM_OK;
}

am_crm_entry *am_crm_list_find(const am_crm_list *l, const char *id)
{
    size_t lo = 0, hi = l->unique;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->by_id[mid]->id, id);
        if (c == 0) {
            return l->by_id[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

am_status am_crm_list_emit(am_crm_list *l, am_record_batch *batch, const am_source_config *cfg,
                           size_t max, const char *label, const char *list, const char *id_word,
                           const char *holder, am_error *err)
{
    am_status rc = AM_OK;

    while (l->emitted < l->count && batch->count + batch->reject_count < max) {
        const am_crm_entry *c = &l->entries[l->emitted++];
        am_record rec = {.country = "", .city = ""}; /* copied into the batch's arena */

        if (c->repeated) {
            continue;
        }
        if (c->bad) {
            rc = am_record_batch_reject(batch, c->row, err,
                                        "%s: company #%u of %s has no %s; check the %s's data",
                                        label, c->row, list, id_word, holder);
            if (rc) {
                break;
            }
            continue;
        }
        rec.id = c->id;
        rec.name = c->name;
        rec.domain = c->site;
        rec.tax_id = c->inn;
        rec.owner = c->owner;
        rec.line = c->row;
        rec.populations = am_crm_populations(cfg, c->status, c->status_pops, c->deals);
        rc = am_crm_batch_add(batch, &rec, label, err);
        if (rc) {
            break;
        }
    }
    return rc;
}
