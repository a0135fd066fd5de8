/*
 * HubSpot connector: companies over the CRM v3 objects API (paged by the
 * `after` cursor, or through the search endpoint when the config filters
 * them), then deals with their company associations to tell customers and
 * open pipeline apart; each company becomes one record with its populations.
 * The first stage of the data flow for HubSpot sources; HTTP goes through http.c.
 */
#include "acctmap/connector.h"
#include "acctmap/parse.h"
#include "connectors/crm.h"
#include "connectors/http.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

extern const am_connector_ops am_connector_hubspot;

#define CUSTOMERS (1u << AM_POP_CUSTOMERS)
#define PROSPECTS (1u << AM_POP_PROSPECTS)
#define OPPORTUNITIES (1u << AM_POP_OPPORTUNITIES)

#define DEFAULT_BASE_URL "https://api.hubapi.com"
#define COMPANIES_PATH "/crm/v3/objects/companies"
#define SEARCH_PATH "/crm/v3/objects/companies/search"
#define DEALS_PATH "/crm/v3/objects/deals"
/* The list endpoints give at most 100 rows a page, search at most 200. */
#define LIST_LIMIT "100"
#define SEARCH_LIMIT 200
/* HubSpot's search cannot page past its 10,000th result. */
#define SEARCH_MAX 10000
#define COMPANY_PROPERTIES                                                                         \
    "name,domain,website,lifecyclestage,country,city,hubspot_owner_id,annualrevenue"
#define DEAL_PROPERTIES "dealstage,hs_is_closed,hs_is_closed_won,pipeline,amount"
#define BATCH_RECORDS 1000
/* Stops a server that never ends its pages, far beyond any real portal. */
#define PAGES_MAX 1000000u
#define WHAT_MAX 160
#define SEARCH_FILTERS_MAX 6 /* HubSpot's limit of filters in one group */

typedef struct hs_source {
    am_source base; /* first: an am_source * points here */
    am_http *http;
    char *token;           /* the private-app token; never printed */
    const char *token_var; /* the environment variable's name, for messages */
    json_t *filters;       /* search filters from "search"; NULL: list every company */
    bool skip_deals;       /* "deals": "skip" */
    enum am_crm_amount amount_from;
    size_t deal_serial; /* deals read so far */
    char where[300];    /* "hubspot https://api.hubapi.com": starts every message */

    am_arena arena;     /* companies' strings and reject messages, until close */
    am_crm_table table; /* the companies (status: lifecyclestage) and rejects */
    size_t archived;        /* archived companies: not the org's */
    size_t deals_unmatched; /* deals without a company of ours */

    bool pulled;
    bool failed;
} hs_source;

static const char *const hs_fields[] = {
    "token_env", "search", "deals", "amount", AM_HTTP_CONFIG_FIELDS, NULL,
};

/* ---- small helpers ---------------------------------------------------------- */

static am_status no_memory(hs_source *s, am_error *err)
{
    return am_error_set(err, AM_ENOMEM, "%s: out of memory", s->where);
}

/* ---- one page of companies or deals ---------------------------------------- */

/*
 * A property of a row: absent or null gives "", a string its copy. HubSpot
 * sends every property as a string; anything else sets *bad.
 */
static am_status text_property(const char **out, hs_source *s, const json_t *props,
                               const char *name, bool *bad, am_error *err)
{
    const json_t *v = json_object_get(props, name);

    *out = "";
    if (!v || json_is_null(v)) {
        return AM_OK;
    }
    if (!json_is_string(v)) {
        *bad = true;
        return AM_OK;
    }
    *out = am_arena_strndup(&s->arena, json_string_value(v), json_string_length(v));
    return *out ? AM_OK : no_memory(s, err);
}

/* One company row: a record, a reject, or nothing (archived). */
static am_status parse_company(hs_source *s, const json_t *row, uint32_t line, am_error *err)
{
    const json_t *id = json_object_get(row, "id");
    const json_t *props = json_object_get(row, "properties");
    const char *name, *domain, *website, *stage, *country, *city, *owner, *revenue;
    char id_text[64];
    bool bad = false;
    int64_t cents = 0;
    am_crm_company *c = NULL;
    size_t f;
    am_status rc;

    if (!json_is_object(row) || !json_is_string(id) || json_string_length(id) == 0) {
        return am_crm_table_reject(&s->table, &s->arena, line, s->where, err,
                          "%s: company row %u has no id; it was skipped, report this answer to "
                          "HubSpot",
                          s->where, line);
    }
    am_crm_excerpt(id_text, sizeof(id_text), json_string_value(id));
    if (json_is_true(json_object_get(row, "archived"))) {
        s->archived++; /* deleted in HubSpot: not a company of the org */
        return AM_OK;
    }
    if (props && !json_is_object(props)) {
        bad = true;
    }
    {
        const char **const dst[] = {&name,    &domain, &website, &stage,
                                    &country, &city,   &owner,   &revenue};
        static const char *const src[] = {"name",    "domain", "website",          "lifecyclestage",
                                          "country", "city",   "hubspot_owner_id", "annualrevenue"};

        for (f = 0; f < sizeof(src) / sizeof(src[0]); f++) {
            rc = text_property(dst[f], s, props, src[f], &bad, err);
            if (rc) {
                return rc;
            }
        }
    }
    if (bad) {
        return am_crm_table_reject(&s->table, &s->arena, line, s->where, err,
                          "%s: company %s: a property is not text; it was skipped, report this "
                          "answer to HubSpot",
                          s->where, id_text);
    }
    if (revenue[0] && am_parse_decimal_cents(&cents, revenue, strlen(revenue), NULL)) {
        char shown[40];
        am_crm_excerpt(shown, sizeof(shown), revenue);
        return am_crm_table_reject(&s->table, &s->arena, line, s->where, err,
                          "%s: company %s: annualrevenue \"%s\" is not an amount; fix it in "
                          "HubSpot",
                          s->where, id_text, shown);
    }
    if (!name[0] && !domain[0] && !website[0]) {
        return am_crm_table_reject(&s->table, &s->arena, line, s->where, err,
                          "%s: company %s: no name, domain or website; fill one in in HubSpot",
                          s->where, id_text);
    }
    rc = am_crm_table_push(&c, &s->table, s->where, err);
    if (rc) {
        return rc;
    }
    c->rec.id = am_arena_strndup(&s->arena, json_string_value(id), json_string_length(id));
    if (!c->rec.id) {
        return no_memory(s, err);
    }
    c->rec.name = name;
    /* `domain` is the company's primary domain; `website` is free text typed by people. */
    c->rec.domain = domain[0] ? domain : website;
    c->rec.tax_id = "";
    c->rec.country = country;
    c->rec.city = city;
    c->rec.owner = owner;
    c->rec.amount_cents = cents;
    c->rec.has_amount = revenue[0] != '\0';
    c->rec.line = line;
    c->status = stage;
    /* "customer" is the one lifecycle stage that means a customer. */
    c->status_pops = strcasecmp(stage, "customer") == 0 ? CUSTOMERS : 0;
    return AM_OK;
}

static am_status index_companies(hs_source *s, am_error *err)
{
    return am_crm_table_index(&s->table, s->where, err);
}

/*
 * The state of a deal: hs_is_closed / hs_is_closed_won, which hold for every
 * pipeline; portals that lack them fall back on the default pipeline's
 * closedwon / closedlost stages.
 */
static unsigned deal_state(const json_t *props)
{
    const char *closed = json_string_value(json_object_get(props, "hs_is_closed"));
    const char *won = json_string_value(json_object_get(props, "hs_is_closed_won"));
    const char *stage = json_string_value(json_object_get(props, "dealstage"));

    if (won && strcmp(won, "true") == 0) {
        return AM_CRM_DEAL_WON;
    }
    if (closed) {
        return strcmp(closed, "true") == 0 ? AM_CRM_DEAL_LOST : AM_CRM_DEAL_OPEN;
    }
    if (stage && strcmp(stage, "closedwon") == 0) {
        return AM_CRM_DEAL_WON;
    }
    if (stage && strcmp(stage, "closedlost") == 0) {
        return AM_CRM_DEAL_LOST;
    }
    return AM_CRM_DEAL_OPEN;
}

/*
 * One deal row: marks each associated company. A company listed twice (the
 * labelled and the unlabelled association) gets the same mark twice, which
 * changes nothing: marks are flags, not counts.
 */
static am_status parse_deal(hs_source *s, const json_t *row, am_error *err)
{
    const json_t *links = json_object_get(
        json_object_get(json_object_get(row, "associations"), "companies"), "results");
    const json_t *link;
    unsigned state;
    bool matched = false, has_amount = false;
    const char *amount;
    int64_t cents = 0;
    size_t i;
    char id_text[64];

    am_crm_excerpt(id_text, sizeof(id_text), json_string_value(json_object_get(row, "id")));
    if (!json_is_object(row) || (links && !json_is_array(links))) {
        return am_error_set(err, AM_EINPUT,
                            "%s: deal %s: not a deal with its company associations; report "
                            "this answer to HubSpot",
                            s->where, id_text[0] ? id_text : "without an id");
    }
    if (json_is_true(json_object_get(row, "archived"))) {
        return AM_OK;
    }
    state = deal_state(json_object_get(row, "properties"));
    amount = json_string_value(json_object_get(json_object_get(row, "properties"), "amount"));
    if (amount && amount[0] &&
        ((s->amount_from == AM_CRM_AMOUNT_PIPELINE && state == AM_CRM_DEAL_OPEN) ||
         (s->amount_from == AM_CRM_AMOUNT_WON && state == AM_CRM_DEAL_WON))) {
        if (am_parse_decimal_cents(&cents, amount, strlen(amount), NULL)) {
            char shown[40];
            am_crm_excerpt(shown, sizeof(shown), amount);
            return am_error_set(err, AM_EINPUT,
                                "%s: deal %s: amount \"%s\" is not an amount; fix it in HubSpot",
                                s->where, id_text, shown);
        }
        has_amount = true;
    }
    s->deal_serial++;
    json_array_foreach(links, i, link)
    {
        const json_t *id = json_object_get(link, "id");
        char num[32];
        const char *key = json_string_value(id);
        am_crm_company *c;

        if (!key && json_is_integer(json_object_get(link, "toObjectId"))) {
            /* The v4 association shape: a numeric toObjectId. */
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(link, "toObjectId")));
            key = num;
        } else if (!key && json_is_integer(id)) {
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
            key = num;
        }
        c = key ? am_crm_table_find(&s->table, key) : NULL;
        /* HubSpot lists a company once per association type (labelled, unlabelled). */
        if (!c || c->last_deal == s->deal_serial) {
            continue;
        }
        c->last_deal = s->deal_serial;
        c->deals |= state;
        matched = true;
        if (has_amount) {
            if (!am_crm_company_add_amount(c, state, cents)) {
                return am_error_set(err, AM_EINPUT,
                                    "%s: company %s: the sum of its deals' amounts overflows; "
                                    "check the amounts in HubSpot",
                                    s->where, c->rec.id);
            }
        }
    }
    if (!matched) {
        s->deals_unmatched++; /* no company, or not one of the list */
    }
    return AM_OK;
}

/*
 * One answer of a list or search: its rows, and the `after` cursor of the
 * next page (*after_out, malloc'd) when there is one. The `link` beside it
 * is never used: it may name another host.
 */
static am_status parse_page(hs_source *s, const json_t *root, bool companies, uint32_t *row_no,
                            char **after_out, const char *what, am_error *err)
{
    const json_t *results = json_object_get(root, "results");
    const json_t *paging = json_object_get(root, "paging");
    const json_t *after = json_object_get(json_object_get(paging, "next"), "after");
    const json_t *row;
    size_t i;
    am_status rc;

    *after_out = NULL;
    if (!json_is_object(root) || !json_is_array(results) ||
        (after && !json_is_string(after) && !json_is_integer(after))) {
        return am_error_set(err, AM_EINPUT,
                            "%s: %s: the answer is not a list of results with paging; check "
                            "base_url",
                            s->where, what);
    }
    json_array_foreach(results, i, row)
    {
        (*row_no)++;
        rc = companies ? parse_company(s, row, *row_no, err) : parse_deal(s, row, err);
        if (rc) {
            return rc;
        }
    }
    if (json_is_string(after) && json_string_length(after) > 0) {
        *after_out = strdup(json_string_value(after));
    } else if (json_is_integer(after)) {
        char num[32];
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(after));
        *after_out = strdup(num);
    } else {
        return AM_OK;
    }
    return *after_out ? AM_OK : no_memory(s, err);
}

/* ---- requests ------------------------------------------------------------- */

/* A field of a HubSpot error object (`category`, `policyName`, ...), excerpted. */
static bool error_field(const am_http_response *resp, const char *name, char *out, size_t cap)
{
    json_t *root = am_http_error_json(resp);
    const char *v = json_string_value(json_object_get(root, name));

    am_crm_excerpt(out, cap, v ? v : "");
    json_decref(root);
    return v != NULL;
}

/*
 * A 429 of the daily policy cannot be waited out in this run; the ten-second
 * and secondly ones can (the client backs off and repeats).
 */
static am_http_verdict hs_classify(void *ctx, const am_http_response *resp, double *wait_s,
                                   char *why, size_t why_len)
{
    char policy[64];

    (void)ctx;
    (void)wait_s;
    if (resp->status == 429 && error_field(resp, "policyName", policy, sizeof(policy)) &&
        strcmp(policy, "DAILY") == 0) {
        snprintf(why, why_len, "the daily API limit");
        return AM_HTTP_FAIL_LIMIT;
    }
    return AM_HTTP_DEFAULT;
}

/*
 * Replace the client's generic message of a failed answer by what HubSpot
 * said (category) and what to do; other failures (network, redirects, a
 * page on another host) keep the client's message.
 */
static am_status explain_failure(hs_source *s, const am_http_response *resp, const char *method,
                                 am_status rc, am_error *err)
{
    char category[64], msg[120], policy[64];

    if (resp->status < 400 || !error_field(resp, "message", msg, sizeof(msg))) {
        return rc;
    }
    if (!error_field(resp, "category", category, sizeof(category)) &&
        !error_field(resp, "errorType", category, sizeof(category))) {
        snprintf(category, sizeof(category), "error");
    }
    if (resp->status == 401) {
        am_error_set(err, rc,
                     "%s: %s %s: 401 %s; the private-app token in %s was refused (revoked, "
                     "rotated or mistyped); copy the app's current token from HubSpot into %s",
                     s->where, method, resp->url_path ? resp->url_path : "", category, s->token_var,
                     s->token_var);
    } else if (resp->status == 403) {
        am_error_set(err, rc,
                     "%s: %s %s: 403 %s (%s); give the private app the scopes "
                     "crm.objects.companies.read and crm.objects.deals.read",
                     s->where, method, resp->url_path ? resp->url_path : "", category, msg);
    } else if (resp->status == 429 && error_field(resp, "policyName", policy, sizeof(policy)) &&
               strcmp(policy, "DAILY") == 0) {
        am_error_set(err, rc,
                     "%s: %s %s: 429 %s (%s); the portal's daily API limit is used up, run "
                     "again after midnight in the portal's time zone",
                     s->where, method, resp->url_path ? resp->url_path : "", category, msg);
    } else {
        /* 429 past the wait budget keeps the client's message: it says how long it waited. */
        if (resp->status == 429) {
            return rc;
        }
        am_error_set(err, rc, "%s: %s %s: %ld %s (%s); check base_url and the source's config",
                     s->where, method, resp->url_path ? resp->url_path : "", resp->status, category,
                     msg);
    }
    am_http_scrub(s->http, err->msg, sizeof(err->msg));
    return rc;
}

/* Send one request and parse its answer as JSON. */
static am_status hs_call(hs_source *s, json_t **out, const char *method, const char *url,
                         const char *body, am_error *err)
{
    am_http_response resp;
    am_http_request rq = {.method = method,
                          .url = url,
                          .body = body,
                          .body_len = body ? strlen(body) : 0,
                          .content_type = body ? "application/json" : NULL,
                          .bearer = s->token,
                          .classify = hs_classify,
                          .classify_ctx = s};
    am_status rc;

    *out = NULL;
    memset(&resp, 0, sizeof(resp));
    rc = am_http_send(&resp, s->http, &rq, err);
    if (rc) {
        rc = explain_failure(s, &resp, method, rc, err);
        am_http_response_dispose(&resp);
        return rc;
    }
    rc = am_http_json(out, s->http, &resp, err);
    if (!rc && !*out) {
        rc = am_error_set(err, AM_EINPUT, "%s: %s %s answered without a body; check base_url",
                          s->where, method, resp.url_path ? resp.url_path : url);
    }
    am_http_response_dispose(&resp);
    return rc;
}

/* The body of one search request: the filters, our properties, the cursor. */
static char *search_body(const hs_source *s, const char *after)
{
    json_t *body = json_object();
    json_t *props = json_array();
    char *text = NULL;
    const char *p = COMPANY_PROPERTIES;

    if (!body || !props) {
        goto cleanup;
    }
    while (*p) {
        size_t n = strcspn(p, ",");
        if (json_array_append_new(props, json_stringn(p, n))) {
            goto cleanup;
        }
        p += n + (p[n] == ',');
    }
    /* Sorted by id, pages stay stable while the list is read. */
    if (json_object_set_new(body, "filterGroups", json_pack("[{s:O}]", "filters", s->filters)) ||
        json_object_set(body, "properties", props) ||
        json_object_set_new(
            body, "sorts",
            json_pack("[{s:s,s:s}]", "propertyName", "hs_object_id", "direction", "ASCENDING")) ||
        json_object_set_new(body, "limit", json_integer(SEARCH_LIMIT)) ||
        (after && json_object_set_new(body, "after", json_string(after)))) {
        goto cleanup;
    }
    text = json_dumps(body, JSON_COMPACT);
cleanup:
    json_decref(props);
    json_decref(body);
    return text;
}

/*
 * Read companies (list or search) or deals to the last page. The cursor is
 * always `after` on our own base URL.
 */
static am_status read_all(hs_source *s, bool companies, am_error *err)
{
    char *after = NULL, *url = NULL, *body = NULL, *escaped_after = NULL;
    char *props = am_http_escape(companies ? COMPANY_PROPERTIES : DEAL_PROPERTIES);
    bool search = companies && s->filters;
    json_t *root = NULL;
    uint32_t rows = 0;
    unsigned page;
    char what[WHAT_MAX];
    am_status rc = AM_OK;

    if (!props) {
        return no_memory(s, err);
    }
    for (page = 1;; page++) {
        size_t before = s->table.count, url_len;
        char *next = NULL;

        snprintf(what, sizeof(what), "%s, page %u",
                 search      ? "company search"
                 : companies ? "companies"
                             : "deals",
                 page);
        free(url);
        free(body);
        free(escaped_after);
        url = body = escaped_after = NULL;
        if (after) {
            escaped_after = am_http_escape(after);
            if (!escaped_after) {
                rc = no_memory(s, err);
                goto cleanup;
            }
        }
        url_len = strlen(props) + (escaped_after ? strlen(escaped_after) : 0) + 200;
        url = malloc(url_len);
        if (!url) {
            rc = no_memory(s, err);
            goto cleanup;
        }
        if (search) {
            snprintf(url, url_len, "%s", SEARCH_PATH);
            body = search_body(s, after);
            if (!body) {
                rc = no_memory(s, err);
                goto cleanup;
            }
        } else {
            snprintf(url, url_len, "%s?limit=" LIST_LIMIT "&archived=false%s&properties=%s%s%s",
                     companies ? COMPANIES_PATH : DEALS_PATH,
                     companies ? "" : "&associations=companies", props,
                     escaped_after ? "&after=" : "", escaped_after ? escaped_after : "");
        }
        rc = hs_call(s, &root, search ? "POST" : "GET", url, body, err);
        if (rc) {
            goto cleanup;
        }
        if (search && page == 1 &&
            json_integer_value(json_object_get(root, "total")) > SEARCH_MAX) {
            rc = am_error_set(err, AM_ELIMIT,
                              "%s: the search matches %" JSON_INTEGER_FORMAT
                              " companies, more than the %d HubSpot's search can page "
                              "through; narrow \"search\" or drop it to list every company",
                              s->where, json_integer_value(json_object_get(root, "total")),
                              SEARCH_MAX);
            goto cleanup;
        }
        rc = parse_page(s, root, companies, &rows, &next, what, err);
        json_decref(root);
        root = NULL;
        if (rc) {
            goto cleanup;
        }
        am_http_progress(s->http, companies ? s->table.count - before : 0);
        if (!next) {
            break;
        }
        /* A cursor that does not move would loop forever. */
        if ((after && strcmp(next, after) == 0) || page == PAGES_MAX) {
            free(next);
            rc = am_error_set(err, AM_EINPUT,
                              "%s: %s: the paging cursor does not move on; the list cannot be "
                              "read to its end, report this to HubSpot",
                              s->where, what);
            goto cleanup;
        }
        free(after);
        after = next;
    }
cleanup:
    json_decref(root);
    free(props);
    free(after);
    free(url);
    free(body);
    free(escaped_after);
    return rc;
}

/* Read every company, then every deal with its companies. */
static am_status pull(am_source *src, am_error *err)
{
    hs_source *s = (hs_source *)src;
    am_status rc = read_all(s, true, err);

    if (rc || s->table.count == 0 || s->skip_deals) {
        return rc; /* without companies, deals cannot count */
    }
    rc = index_companies(s, err);
    if (rc) {
        return rc;
    }
    return read_all(s, false, err);
}

/* ---- the connector -------------------------------------------------------- */

static void hs_close(am_source *src)
{
    hs_source *s = (hs_source *)src;

    if (!s) {
        return;
    }
    am_http_free(s->http);
    free(s->token);
    json_decref(s->filters);
    am_crm_table_dispose(&s->table);
    am_arena_dispose(&s->arena);
    free(s);
}

/* One entry of "search": property -> value, or values joined with ';' (any of them). */
static am_status add_filter(void *ctx, const char *key, const char *value, am_error *err)
{
    hs_source *s = ctx;
    json_t *filter = NULL;
    const char *where = s->base.cfg->where;

    if (json_array_size(s->filters) == SEARCH_FILTERS_MAX) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.search: more than %d properties; HubSpot's search takes at "
                            "most %d filters",
                            where, SEARCH_FILTERS_MAX, SEARCH_FILTERS_MAX);
    }
    if (!key[0] || !value[0]) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.search: an empty property or value; write "
                            "{\"lifecyclestage\": \"customer;opportunity\"}",
                            where);
    }
    if (strchr(value, ';')) {
        json_t *values = json_array();
        const char *p = value;

        while (values && *p) {
            size_t n = strcspn(p, ";");
            size_t b = 0, e = n;
            while (b < e && p[b] == ' ') {
                b++;
            }
            while (e > b && p[e - 1] == ' ') {
                e--;
            }
            if (e > b && json_array_append_new(values, json_stringn(p + b, e - b))) {
                json_decref(values);
                values = NULL;
            }
            p += n + (p[n] == ';');
        }
        filter = values ? json_pack("{s:s,s:s,s:o}", "propertyName", key, "operator", "IN",
                                    "values", values)
                        : NULL;
    } else {
        filter = json_pack("{s:s,s:s,s:s}", "propertyName", key, "operator", "EQ", "value", value);
    }
    if (!filter || json_array_append_new(s->filters, filter)) {
        return no_memory(s, err);
    }
    return AM_OK;
}

static am_status hs_configure(hs_source *s, const am_source_config *cfg, const am_source_env *env,
                              am_error *err)
{
    const char *deals = NULL, *amount = NULL, *base;
    am_http_options opt;
    am_status rc;

    /* Private apps get 100 requests per 10 seconds (Starter and Free portals). */
    am_http_options_init(&opt, 10.0);
    rc = am_http_config_read(&opt, cfg, err);
    if (!rc) {
        rc = am_source_config_string(&deals, cfg, "deals", false, err);
    }
    if (!rc) {
        rc = am_source_config_string(&amount, cfg, "amount", false, err);
    }
    if (!rc) {
        rc = am_source_config_string(&s->token_var, cfg, "token_env", true, err);
    }
    if (rc) {
        return rc;
    }
    if (deals && strcmp(deals, "read") != 0 && strcmp(deals, "skip") != 0) {
        return am_error_set(err, AM_ECONFIG, "%s.deals: \"%.32s\" is neither \"read\" nor \"skip\"",
                            cfg->where, deals);
    }
    s->skip_deals = deals && strcmp(deals, "skip") == 0;
    if (!amount || strcmp(amount, "revenue") == 0) {
        s->amount_from = AM_CRM_AMOUNT_REVENUE;
    } else if (strcmp(amount, "pipeline") == 0) {
        s->amount_from = AM_CRM_AMOUNT_PIPELINE;
    } else if (strcmp(amount, "won") == 0) {
        s->amount_from = AM_CRM_AMOUNT_WON;
    } else {
        return am_error_set(err, AM_ECONFIG,
                            "%s.amount: \"%.32s\" is not one of \"revenue\", \"pipeline\", "
                            "\"won\"",
                            cfg->where, amount);
    }
    if (s->amount_from != AM_CRM_AMOUNT_REVENUE && s->skip_deals) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.amount: \"%s\" sums deals, which \"deals\": \"skip\" does not "
                            "read; read the deals or use \"revenue\"",
                            cfg->where, amount);
    }
    s->filters = json_array();
    if (!s->filters) {
        return no_memory(s, err);
    }
    rc = am_source_config_each_pair(cfg, "search", add_filter, s, err);
    if (rc) {
        return rc;
    }
    if (json_array_size(s->filters) == 0) {
        json_decref(s->filters);
        s->filters = NULL; /* no filter: the list endpoint, which has no 10,000 cap */
    }
    rc = am_http_config_secret(&s->token, cfg, "token_env", true, err);
    if (rc) {
        return rc;
    }
    base = opt.base_url ? opt.base_url : DEFAULT_BASE_URL;
    {
        size_t n = strlen(base);
        while (n > 0 && base[n - 1] == '/') {
            n--;
        }
        snprintf(s->base.label, sizeof(s->base.label), "%.*s", (int)n, base);
        snprintf(s->where, sizeof(s->where), "hubspot %s", s->base.label);
    }
    rc = am_http_new(&s->http, base, &opt, s->where, env, err);
    if (rc) {
        return rc;
    }
    return am_http_add_secret(s->http, s->token);
}

static am_status hs_open(am_source **out, const am_source_config *cfg, const am_source_env *env,
                         am_error *err)
{
    hs_source *s;
    am_status rc;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (!s) {
        return am_error_set(err, AM_ENOMEM, "%s: out of memory opening a HubSpot source",
                            cfg->where);
    }
    s->base.ops = &am_connector_hubspot;
    s->base.cfg = cfg;
    am_arena_init(&s->arena);
    snprintf(s->where, sizeof(s->where), "hubspot");
    rc = hs_configure(s, cfg, env, err);
    if (rc) {
        hs_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return AM_OK;
}

static am_status emit(am_source *src, am_record_batch *batch, am_error *err)
{
    hs_source *s = (hs_source *)src;

    return am_crm_table_emit(&s->table, batch, src->cfg, s->amount_from, BATCH_RECORDS, err);
}

static am_status hs_next_batch(am_source *src, am_record_batch *batch, am_error *err)
{
    hs_source *s = (hs_source *)src;

    return am_crm_next_batch(src, &s->pulled, &s->failed, pull, emit, batch, err);
}

static const am_error *hs_last_error(const am_source *src)
{
    return &src->last;
}

const am_connector_ops am_connector_hubspot = {
    .type = "hubspot",
    .fields = hs_fields,
    .open = hs_open,
    .next_batch = hs_next_batch,
    .close = hs_close,
    .last_error = hs_last_error,
};
