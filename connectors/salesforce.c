/*
 * Salesforce connector: Accounts over the REST query API (SOQL, paged by
 * nextRecordsUrl), then Opportunities to tell customers and open pipeline
 * apart; each Account becomes one record with its populations. The first
 * stage of the data flow for Salesforce sources; HTTP goes through http.c.
 */
#include "acctmap/connector.h"
#include "acctmap/parse.h"
#include "connectors/crm.h"
#include "connectors/http.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

extern const am_connector_ops am_connector_salesforce;

#define CUSTOMERS (1u << AM_POP_CUSTOMERS)
#define PROSPECTS (1u << AM_POP_PROSPECTS)
#define OPPORTUNITIES (1u << AM_POP_OPPORTUNITIES)

#define DEFAULT_API_VERSION "v62.0"
#define TOKEN_PATH "/services/oauth2/token"
#define BATCH_RECORDS 1000
/* A query of a million Accounts is 500 pages of 2000 rows; this only stops a server looping. */
#define PAGES_MAX 1000000u
#define WHAT_MAX 160

/*
 * Every field the engine reads. IsDeleted and MasterRecordId let rows that
 * queryAll returns from the recycle bin, or merged away, be dropped.
 */
#define ACCOUNT_FIELDS                                                                             \
    "Id, Name, Website, Type, BillingCountry, BillingCity, OwnerId, Owner.Name, "                  \
    "AnnualRevenue, IsDeleted, MasterRecordId"
#define OPPORTUNITY_SOQL                                                                           \
    "SELECT Id, AccountId, IsClosed, IsWon, Amount FROM Opportunity WHERE AccountId != null"

typedef struct sf_source {
    am_source base; /* first: an am_source * points here */
    am_http *http;
    char *token;     /* the access token in use: token_env, then each refresh's */
    bool oauth;      /* a refresh token is configured */
    bool query_all;  /* "endpoint": "queryAll" */
    bool base_fixed; /* base_url given: every request goes there, whatever the token says */
    enum am_crm_amount amount_from;
    char api_version[16];
    char where[300]; /* "salesforce https://acme.my.salesforce.com": starts every message */

    am_arena arena;     /* accounts' strings and reject messages, until close */
    am_crm_table table; /* the Accounts (status: Type) and rejects */
    size_t dropped;         /* deleted or merged rows queryAll returned */
    size_t deals_unmatched; /* Opportunities whose Account is not one of ours */

    bool pulled;
    bool failed;
} sf_source;

static const char *const sf_fields[] = {
    "instance_url",
    "token_env",
    "client_id",
    "client_secret_env",
    "refresh_token_env",
    "login_url",
    "api_version",
    "endpoint",
    "amount",
    AM_HTTP_CONFIG_FIELDS,
    NULL,
};

/* ---- small helpers ---------------------------------------------------------- */

static am_status no_memory(sf_source *s, am_error *err)
{
    return am_error_set(err, AM_ENOMEM, "%s: out of memory", s->where);
}

/*
 * A JSON number as Salesforce wrote it, into cents. jansson keeps only the
 * double of "4.8E7"; its shortest round-trip spelling is the text Salesforce
 * sent (at most 17 significant digits), which am_parse_decimal_cents reads exactly.
 */
static bool json_to_cents(int64_t *out, const json_t *v)
{
    char text[64];
    int prec;

    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n > INT64_MAX / 100 || n < -(INT64_MAX / 100)) {
            return false;
        }
        *out = (int64_t)n * 100;
        return true;
    }
    if (!json_is_real(v)) {
        return false;
    }
    for (prec = 1; prec <= 17; prec++) {
        snprintf(text, sizeof(text), "%.*g", prec, json_real_value(v));
        if (strtod(text, NULL) == json_real_value(v)) {
            break;
        }
    }
    return am_parse_decimal_cents(out, text, strlen(text), NULL) == AM_OK;
}

/* ---- one page of a query answer -------------------------------------------- */

/*
 * A text field of a row: absent or null gives "", a string its copy. Any
 * other JSON type is a row Salesforce should not have sent: *bad is set.
 */
static am_status text_field(const char **out, sf_source *s, const json_t *row, const char *name,
                            bool *bad, am_error *err)
{
    const json_t *v = json_object_get(row, name);

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

/* One Account row: a record, a reject, or nothing (deleted or merged away). */
static am_status parse_account(sf_source *s, const json_t *row, uint32_t line, am_error *err)
{
    const json_t *id = json_object_get(row, "Id");
    const json_t *deleted = json_object_get(row, "IsDeleted");
    const json_t *master = json_object_get(row, "MasterRecordId");
    const json_t *owner = json_object_get(row, "Owner");
    const json_t *revenue = json_object_get(row, "AnnualRevenue");
    const char *name, *website, *type, *country, *city, *owner_name = "", *owner_id;
    char id_text[64];
    bool bad = false;
    int64_t cents = 0;
    am_crm_company *a = NULL;
    am_status rc;

    if (!json_is_object(row) || !json_is_string(id) || json_string_length(id) == 0) {
        return am_crm_table_reject(&s->table, &s->arena, line, s->where, err,
                          "%s: Account row %u has no Id; it was skipped, report this answer "
                          "to your Salesforce admin",
                          s->where, line);
    }
    am_crm_excerpt(id_text, sizeof(id_text), json_string_value(id));
    /* queryAll also returns the recycle bin and the losers of a merge: not the org's. */
    if (json_is_true(deleted) || (master && !json_is_null(master))) {
        s->dropped++;
        return AM_OK;
    }
    {
        /* The text fields, in the order of ACCOUNT_FIELDS. */
        const char **const dst[] = {&name, &website, &type, &country, &city, &owner_id};
        static const char *const src[] = {"Name",           "Website",     "Type",
                                          "BillingCountry", "BillingCity", "OwnerId"};
        size_t f;

        for (f = 0; f < sizeof(src) / sizeof(src[0]); f++) {
            rc = text_field(dst[f], s, row, src[f], &bad, err);
            if (rc) {
                return rc;
            }
        }
    }
    if (json_is_object(owner)) {
        rc = text_field(&owner_name, s, owner, "Name", &bad, err);
        if (rc) {
            return rc;
        }
    }
    if (bad) {
        return am_crm_table_reject(&s->table, &s->arena, line, s->where, err,
                          "%s: Account %s: a text field holds something else; it was skipped, "
                          "check the field types of Account",
                          s->where, id_text);
    }
    if (revenue && !json_is_null(revenue) && !json_to_cents(&cents, revenue)) {
        return am_crm_table_reject(&s->table, &s->arena, line, s->where, err,
                          "%s: Account %s: AnnualRevenue is not an amount acctmap can hold; "
                          "fix it in Salesforce",
                          s->where, id_text);
    }
    if (!name[0] && !website[0]) {
        return am_crm_table_reject(&s->table, &s->arena, line, s->where, err,
                          "%s: Account %s: no Name and no Website; fill one in in Salesforce",
                          s->where, id_text);
    }
    rc = am_crm_table_push(&a, &s->table, s->where, err);
    if (rc) {
        return rc;
    }
    a->rec.id = am_arena_strndup(&s->arena, json_string_value(id), json_string_length(id));
    if (!a->rec.id) {
        return no_memory(s, err);
    }
    a->rec.name = name;
    a->rec.domain = website;
    a->rec.tax_id = "";
    a->rec.country = country;
    a->rec.city = city;
    /* The owner's name when the query could read the lookup, else the user id. */
    a->rec.owner = owner_name[0] ? owner_name : owner_id;
    a->rec.amount_cents = cents;
    a->rec.has_amount = revenue && !json_is_null(revenue);
    a->rec.line = line;
    a->status = type;
    /* "Customer - Direct", "Customer - Channel": Salesforce's customer Types. */
    a->status_pops = strncasecmp(type, "Customer", 8) == 0 ? CUSTOMERS : 0;
    return AM_OK;
}

static am_status index_accounts(sf_source *s, am_error *err)
{
    return am_crm_table_index(&s->table, s->where, err);
}

/* Add an Opportunity's Amount to its Account's open or won sum. A null Amount adds nothing. */
static am_status add_amount(sf_source *s, am_crm_company *a, unsigned state, const json_t *amount,
                            const char *id_text, am_error *err)
{
    int64_t cents;

    if (!amount || json_is_null(amount)) {
        return AM_OK;
    }
    if (!json_to_cents(&cents, amount) || !am_crm_company_add_amount(a, state, cents)) {
        return am_error_set(err, AM_EINPUT,
                            "%s: Opportunity %s: Amount is not an amount acctmap can hold (or "
                            "the Account's sum overflows); fix it in Salesforce",
                            s->where, id_text);
    }
    return AM_OK;
}

/* One Opportunity row: marks its Account won, open or lost. */
static am_status parse_opportunity(sf_source *s, const json_t *row, am_error *err)
{
    const json_t *account = json_object_get(row, "AccountId");
    const json_t *closed = json_object_get(row, "IsClosed");
    const json_t *won = json_object_get(row, "IsWon");
    char id_text[64];
    am_crm_company *a = NULL;
    unsigned state;

    am_crm_excerpt(id_text, sizeof(id_text), json_string_value(json_object_get(row, "Id")));
    if (!json_is_object(row) || !json_is_boolean(closed) || !json_is_boolean(won) ||
        (account && !json_is_null(account) && !json_is_string(account))) {
        return am_error_set(err, AM_EINPUT,
                            "%s: Opportunity %s: IsClosed, IsWon or AccountId is missing or of "
                            "the wrong type; check the user's access to these fields",
                            s->where, id_text[0] ? id_text : "without an Id");
    }
    if (!json_is_string(account)) {
        s->deals_unmatched++; /* no Account: nobody's pipeline */
        return AM_OK;
    }
    a = am_crm_table_find(&s->table, json_string_value(account));
    if (!a) {
        s->deals_unmatched++;
        return AM_OK;
    }
    state = !json_is_true(closed) ? AM_CRM_DEAL_OPEN : json_is_true(won) ? AM_CRM_DEAL_WON : AM_CRM_DEAL_LOST;
    a->deals |= state;
    if ((s->amount_from == AM_CRM_AMOUNT_PIPELINE && state == AM_CRM_DEAL_OPEN) ||
        (s->amount_from == AM_CRM_AMOUNT_WON && state == AM_CRM_DEAL_WON)) {
        return add_amount(s, a, state, json_object_get(row, "Amount"), id_text, err);
    }
    return AM_OK;
}

/*
 * One answer of a query: its rows, and the next page's URL (*next_out,
 * malloc'd) when it says it is not done. `what` names the query and page.
 */
static am_status parse_page(sf_source *s, const json_t *root, bool accounts, uint32_t *row_no,
                            char **next_out, const char *what, am_error *err)
{
    const json_t *records = json_object_get(root, "records");
    const json_t *done = json_object_get(root, "done");
    const json_t *next = json_object_get(root, "nextRecordsUrl");
    const json_t *row;
    size_t i;
    am_status rc = AM_OK;

    *next_out = NULL;
    if (!json_is_object(root) || !json_is_array(records) || !json_is_boolean(done) ||
        (!json_is_true(done) && !json_is_string(next))) {
        return am_error_set(err, AM_EINPUT,
                            "%s: %s: the answer is not a query result (records, done, "
                            "nextRecordsUrl); check instance_url and api_version",
                            s->where, what);
    }
    json_array_foreach(records, i, row)
    {
        (*row_no)++;
        rc = accounts ? parse_account(s, row, *row_no, err) : parse_opportunity(s, row, err);
        if (rc) {
            return rc;
        }
    }
    if (!json_is_true(done)) {
        *next_out = strdup(json_string_value(next));
        if (!*next_out) {
            return no_memory(s, err);
        }
    }
    return AM_OK;
}

/* ---- requests ------------------------------------------------------------- */

/* The errorCode and message of a Salesforce error answer (a JSON array), if it is one. */
static bool error_code(const am_http_response *resp, char *code, size_t code_cap, char *msg,
                       size_t msg_cap)
{
    json_t *root = am_http_error_json(resp);
    const json_t *first = json_is_array(root) ? json_array_get(root, 0) : root;
    const char *c = json_string_value(json_object_get(first, "errorCode"));
    bool found = c != NULL;

    am_crm_excerpt(code, code_cap, c ? c : "");
    am_crm_excerpt(msg, msg_cap, found ? json_string_value(json_object_get(first, "message")) : "");
    json_decref(root);
    return found;
}

/*
 * 403 REQUEST_LIMIT_EXCEEDED is the org's rolling 24-hour API allocation:
 * waiting minutes does not cure it, so the run stops this source at once.
 */
static am_http_verdict sf_classify(void *ctx, const am_http_response *resp, double *wait_s,
                                   char *why, size_t why_len)
{
    char code[64], msg[8];

    (void)ctx;
    (void)wait_s;
    if (resp->status == 403 && error_code(resp, code, sizeof(code), msg, sizeof(msg)) &&
        strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0) {
        snprintf(why, why_len, "%s", code);
        return AM_HTTP_FAIL_LIMIT;
    }
    return AM_HTTP_DEFAULT;
}

/*
 * Replace the client's generic message of a failed answer by what Salesforce
 * said (errorCode, message) and what to do about it; other failures
 * (network, a page on another host) keep the client's message.
 */
static am_status explain_failure(sf_source *s, const am_http_response *resp, am_status rc,
                                 am_error *err)
{
    char code[64], msg[160], advice[256];
    const char *var = NULL;

    if (resp->status < 400 || !error_code(resp, code, sizeof(code), msg, sizeof(msg))) {
        return rc;
    }
    if (strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0) {
        snprintf(advice, sizeof(advice),
                 "the org's API request allocation is used up; run again when it has recovered "
                 "(it is counted over 24 hours) or ask Salesforce for a higher limit");
    } else if (resp->status == 401 && s->oauth) {
        snprintf(advice, sizeof(advice),
                 "the token of a fresh refresh was refused too; check the connected app's "
                 "policies (permitted users, IP relaxation) and the user's API access");
    } else if (resp->status == 401) {
        (void)am_source_config_string(&var, s->base.cfg, "token_env", false, NULL);
        snprintf(advice, sizeof(advice),
                 "the access token%s%s expired or was revoked; set a fresh one, or give "
                 "client_id and refresh_token_env so that acctmap can refresh it",
                 var ? " in " : "", var ? var : "");
    } else if (resp->status == 403) {
        snprintf(advice, sizeof(advice),
                 "the user lacks API access or permission on Account or Opportunity; check "
                 "its profile");
    } else {
        snprintf(advice, sizeof(advice),
                 "check instance_url, api_version and the user's access to the Account and "
                 "Opportunity fields");
    }
    am_error_set(err, rc, "%s: GET %s: %ld %s (%s); %s", s->where,
                 resp->url_path ? resp->url_path : "", resp->status, code, msg, advice);
    am_http_scrub(s->http, err->msg, sizeof(err->msg));
    return rc;
}

/* Take the access token and instance of the last refresh. */
static am_status adopt_token(sf_source *s, am_error *err)
{
    const char *token = am_http_oauth_access_token(s->http);
    const char *instance = am_http_oauth_instance_url(s->http);
    char *copy;

    copy = token ? strdup(token) : NULL;
    if (!copy) {
        return token ? no_memory(s, err)
                     : am_error_set(err, AM_EAUTH,
                                    "%s: the token endpoint gave no access_token; check "
                                    "client_id and the connected app",
                                    s->where);
    }
    free(s->token);
    s->token = copy;
    /* Salesforce names the instance to call in the token answer; base_url (tests) wins. */
    if (instance && instance[0] && !s->base_fixed) {
        am_status rc = am_http_rebind(s->http, instance, err);
        if (rc) {
            return rc;
        }
        snprintf(s->base.label, sizeof(s->base.label), "%s", am_http_origin(s->http));
        snprintf(s->where, sizeof(s->where), "salesforce %s", s->base.label);
    }
    return AM_OK;
}

/*
 * GET one query page as JSON. A 401 with OAuth configured refreshes the
 * token once and repeats the request with the new one.
 */
static am_status sf_get(sf_source *s, json_t **out, const char *url, am_error *err)
{
    am_http_response resp;
    bool refreshed = false;
    am_status rc;

    *out = NULL;
    for (;;) {
        am_http_request rq = {.method = "GET",
                              .url = url,
                              .bearer = s->token,
                              .classify = sf_classify,
                              .classify_ctx = s};

        memset(&resp, 0, sizeof(resp));
        rc = am_http_send(&resp, s->http, &rq, err);
        if (rc == AM_EAUTH && resp.status == 401 && s->oauth && !refreshed) {
            char code[64], msg[8];
            am_error refresh_err;

            if (!error_code(&resp, code, sizeof(code), msg, sizeof(msg))) {
                snprintf(code, sizeof(code), "Unauthorized");
            }
            am_http_response_dispose(&resp);
            am_error_clear(&refresh_err);
            rc = am_http_oauth_refresh(s->http, &refresh_err);
            if (!rc) {
                rc = adopt_token(s, &refresh_err);
            }
            if (rc) {
                /* "<label>: the refresh token was refused ..." becomes the tail of ours. */
                const char *tail = refresh_err.msg;
                size_t label_len = strlen(am_http_label(s->http));
                if (strncmp(tail, am_http_label(s->http), label_len) == 0 &&
                    strncmp(tail + label_len, ": ", 2) == 0) {
                    tail += label_len + 2;
                }
                return am_error_set(err, rc, "%s: 401 %s and %s", s->where, code, tail);
            }
            refreshed = true;
            continue;
        }
        if (rc) {
            rc = explain_failure(s, &resp, rc, err);
            am_http_response_dispose(&resp);
            return rc;
        }
        rc = am_http_json(out, s->http, &resp, err);
        am_http_response_dispose(&resp);
        if (!rc && !*out) {
            rc = am_error_set(err, AM_EINPUT, "%s: %s answered without a body; check instance_url",
                              s->where, "a query");
        }
        return rc;
    }
}

/* Run one SOQL query to its last page, feeding every row to the parser. */
static am_status run_query(sf_source *s, const char *endpoint, const char *soql, bool accounts,
                           am_error *err)
{
    char *escaped = am_http_escape(soql);
    char *url = NULL, *next = NULL;
    json_t *root = NULL;
    uint32_t rows = 0;
    unsigned page;
    am_status rc = AM_OK;
    char what[WHAT_MAX];
    size_t url_len;

    if (!escaped) {
        return no_memory(s, err);
    }
    url_len = strlen(escaped) + 64;
    url = malloc(url_len);
    if (!url) {
        rc = no_memory(s, err);
        goto cleanup;
    }
    snprintf(url, url_len, "/services/data/%s/%s?q=%s", s->api_version, endpoint, escaped);
    for (page = 1;; page++) {
        size_t before = accounts ? s->table.count : 0;

        snprintf(what, sizeof(what), "%s query, page %u", accounts ? "Account" : "Opportunity",
                 page);
        rc = sf_get(s, &root, url, err);
        if (rc) {
            goto cleanup;
        }
        rc = parse_page(s, root, accounts, &rows, &next, what, err);
        json_decref(root);
        root = NULL;
        if (rc) {
            goto cleanup;
        }
        am_http_progress(s->http, accounts ? s->table.count - before : 0);
        if (!next) {
            break;
        }
        /* A server that hands back the page it just gave would loop forever. */
        if (strcmp(next, url) == 0 || page == PAGES_MAX) {
            rc = am_error_set(err, AM_EINPUT,
                              "%s: %s: nextRecordsUrl does not move on; the query cannot be "
                              "read to its end, report this to Salesforce",
                              s->where, what);
            goto cleanup;
        }
        free(url);
        url = next;
        next = NULL;
    }
cleanup:
    json_decref(root);
    free(escaped);
    free(url);
    free(next);
    return rc;
}

/* Read every Account, then every Opportunity with an Account. */
static am_status pull(am_source *src, am_error *err)
{
    sf_source *s = (sf_source *)src;
    am_status rc;

    if (s->query_all) {
        rc = run_query(s, "queryAll", "SELECT " ACCOUNT_FIELDS " FROM Account", true, err);
    } else {
        rc = run_query(s, "query",
                       "SELECT " ACCOUNT_FIELDS " FROM Account WHERE IsDeleted = false AND "
                       "MasterRecordId = null",
                       true, err);
    }
    if (rc) {
        return rc;
    }
    if (s->table.count == 0) {
        return AM_OK; /* no Account: their Opportunities cannot count */
    }
    rc = index_accounts(s, err);
    if (rc) {
        return rc;
    }
    return run_query(s, "query", OPPORTUNITY_SOQL, false, err);
}

/* ---- the connector -------------------------------------------------------- */

static void sf_close(am_source *src)
{
    sf_source *s = (sf_source *)src;

    if (!s) {
        return;
    }
    am_http_free(s->http);
    free(s->token);
    am_crm_table_dispose(&s->table);
    am_arena_dispose(&s->arena);
    free(s);
}

/* "v62.0" or "62.0" into "v62.0"; false when it is neither. */
static bool parse_api_version(char *out, size_t cap, const char *v)
{
    size_t i = v[0] == 'v' ? 1 : 0, digits = 0, frac = 0;

    for (; v[i] >= '0' && v[i] <= '9'; i++) {
        digits++;
    }
    if (v[i] == '.') {
        for (i++; v[i] >= '0' && v[i] <= '9'; i++) {
            frac++;
        }
    }
    if (v[i] != '\0' || digits == 0 || digits > 4 || frac != 1) {
        return false;
    }
    snprintf(out, cap, "v%s", v[0] == 'v' ? v + 1 : v);
    return true;
}

/* The URL as a label: without a trailing slash. */
static void set_where(sf_source *s, const char *url)
{
    size_t n = strlen(url);

    while (n > 0 && url[n - 1] == '/') {
        n--;
    }
    snprintf(s->base.label, sizeof(s->base.label), "%.*s", (int)n, url);
    snprintf(s->where, sizeof(s->where), "salesforce %s", s->base.label);
}

/* Read the source's config; on success s->http exists and s->token may be set. */
static am_status sf_configure(sf_source *s, const am_source_config *cfg, const am_source_env *env,
                              char **secrets, am_error *err)
{
    const char *instance = NULL, *login = NULL, *version = NULL, *endpoint = NULL;
    const char *amount = NULL;
    const char *client_id = NULL, *refresh_var = NULL, *base;
    char *refresh = NULL, *client_secret = NULL;
    char *token_url = NULL;
    am_http_options opt;
    am_status rc;

    am_http_options_init(&opt, 0);
    rc = am_http_config_read(&opt, cfg, err);
    if (!rc) {
        rc = am_source_config_string(&instance, cfg, "instance_url", false, err);
    }
    if (!rc) {
        rc = am_source_config_string(&login, cfg, "login_url", false, err);
    }
    if (!rc) {
        rc = am_source_config_string(&version, cfg, "api_version", false, err);
    }
    if (!rc) {
        rc = am_source_config_string(&endpoint, cfg, "endpoint", false, err);
    }
    if (!rc) {
        rc = am_source_config_string(&amount, cfg, "amount", false, err);
    }
    if (!rc) {
        rc = am_source_config_string(&client_id, cfg, "client_id", false, err);
    }
    if (!rc) {
        rc = am_source_config_string(&refresh_var, cfg, "refresh_token_env", false, err);
    }
    if (rc) {
        return rc;
    }
    if (!parse_api_version(s->api_version, sizeof(s->api_version),
                           version ? version : DEFAULT_API_VERSION)) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.api_version: \"%.32s\" is not an API version; write it like "
                            "\"v62.0\"",
                            cfg->where, version);
    }
    if (endpoint && strcmp(endpoint, "query") != 0 && strcmp(endpoint, "queryAll") != 0) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.endpoint: \"%.32s\" is neither \"query\" nor \"queryAll\"",
                            cfg->where, endpoint);
    }
    s->query_all = endpoint && strcmp(endpoint, "queryAll") == 0;
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
    if (client_id && !refresh_var) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.refresh_token_env: missing; OAuth with client_id needs the "
                            "environment variable that holds the refresh token",
                            cfg->where);
    }
    if (refresh_var && !client_id) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.client_id: missing; the refresh token flow needs the connected "
                            "app's consumer key",
                            cfg->where);
    }
    s->oauth = refresh_var != NULL;
    rc = am_http_config_secret(&s->token, cfg, "token_env", false, err);
    if (!rc) {
        rc = am_http_config_secret(&refresh, cfg, "refresh_token_env", false, err);
    }
    if (!rc) {
        rc = am_http_config_secret(&client_secret, cfg, "client_secret_env", false, err);
    }
    secrets[0] = refresh;
    secrets[1] = client_secret;
    if (rc) {
        return rc;
    }
    if (!s->token && !s->oauth) {
        return am_error_set(err, AM_ECONFIG,
                            "%s: no credentials; give token_env (an access token), or "
                            "client_id and refresh_token_env (OAuth refresh)",
                            cfg->where);
    }
    if (login && !s->oauth) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.login_url: only used to refresh a token; give client_id and "
                            "refresh_token_env too, or drop it",
                            cfg->where);
    }
    base = opt.base_url ? opt.base_url : instance ? instance : login;
    if (!base) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.instance_url: missing; give your org's URL "
                            "(https://yourdomain.my.salesforce.com), or login_url with OAuth",
                            cfg->where);
    }
    s->base_fixed = opt.base_url != NULL;
    set_where(s, base);
    rc = am_http_new(&s->http, base, &opt, s->where, env, err);
    if (!rc) {
        rc = am_http_add_secret(s->http, s->token);
    }
    if (!rc) {
        rc = am_http_add_secret(s->http, refresh);
    }
    if (!rc) {
        rc = am_http_add_secret(s->http, client_secret);
    }
    if (rc || !s->oauth) {
        return rc;
    }
    {
        /* The token endpoint: login_url's (login.salesforce.com, test.salesforce.com)
         * or the instance's own, which My Domain orgs serve too. */
        const char *root = login && !opt.base_url ? login : base;
        size_t n = strlen(root), tn = strlen(TOKEN_PATH);
        am_http_oauth_config oc;

        while (n > 0 && root[n - 1] == '/') {
            n--;
        }
        token_url = malloc(n + tn + 1);
        if (!token_url) {
            return no_memory(s, err);
        }
        if (n >= tn && memcmp(root + n - tn, TOKEN_PATH, tn) == 0) {
            snprintf(token_url, n + tn + 1, "%.*s", (int)n, root);
        } else {
            snprintf(token_url, n + tn + 1, "%.*s%s", (int)n, root, TOKEN_PATH);
        }
        memset(&oc, 0, sizeof(oc));
        oc.token_url = token_url;
        oc.style = AM_HTTP_OAUTH_FORM;
        oc.client_id = client_id;
        oc.client_secret = client_secret;
        oc.refresh_token = refresh;
        oc.access_token = s->token;
        oc.refresh_field = "refresh_token_env";
        oc.refresh_var = refresh_var;
        rc = am_http_oauth_setup(s->http, &oc, err);
        free(token_url);
    }
    return rc;
}

static am_status sf_open(am_source **out, const am_source_config *cfg, const am_source_env *env,
                         am_error *err)
{
    sf_source *s = NULL;
    char *secrets[2] = {NULL, NULL};
    am_status rc;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (!s) {
        return am_error_set(err, AM_ENOMEM, "%s: out of memory opening a Salesforce source",
                            cfg->where);
    }
    s->base.ops = &am_connector_salesforce;
    s->base.cfg = cfg;
    am_arena_init(&s->arena);
    snprintf(s->where, sizeof(s->where), "salesforce");
    rc = sf_configure(s, cfg, env, secrets, err);
    /* Without an access token, get one now: its answer also names the instance. */
    if (!rc && !s->token) {
        rc = am_http_oauth_refresh(s->http, err);
        if (!rc) {
            rc = adopt_token(s, err);
        }
    }
    free(secrets[0]);
    free(secrets[1]);
    if (rc) {
        sf_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return AM_OK;
}

static am_status emit(am_source *src, am_record_batch *batch, am_error *err)
{
    sf_source *s = (sf_source *)src;

    return am_crm_table_emit(&s->table, batch, src->cfg, s->amount_from, BATCH_RECORDS, err);
}

static am_status sf_next_batch(am_source *src, am_record_batch *batch, am_error *err)
{
    sf_source *s = (sf_source *)src;

    return am_crm_next_batch(src, &s->pulled, &s->failed, pull, emit, batch, err);
}

static const am_error *sf_last_error(const am_source *src)
{
    return &src->last;
}

const am_connector_ops am_connector_salesforce = {
    .type = "salesforce",
    .fields = sf_fields,
    .open = sf_open,
    .next_batch = sf_next_batch,
    .close = sf_close,
    .last_error = sf_last_error,
};
