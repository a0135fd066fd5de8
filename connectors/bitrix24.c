/*
 * Bitrix24 connector: pulls a portal's companies (crm.company.list), their INN
 * (crm.requisite.list) and deal states (crm.deal.list) over the REST API, then
 * hands the companies out as records with their populations. The first stage
 * of the data flow for Bitrix24 sources; all HTTP goes through connectors/http.c.
 */
#include "acctmap/connector.h"
#include "acctmap/parse.h"
#include "connectors/crm.h"
#include "connectors/http.h"

#include <inttypes.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

/* The one exported symbol, defined at the end of this file. */
extern const am_connector_ops am_connector_bitrix24;

/* Records handed out per next_batch call. */
#define B24_BATCH_ROWS 4096
/* The authorization server of Bitrix24 applications (settings/oauth). */
#define B24_TOKEN_URL "https://oauth.bitrix.info/oauth/token/"

typedef struct b24_source {
    am_source base; /* first: an am_source * points here */
    am_http *http;
    char *webhook;  /* webhook mode: the whole URL, a secret */
    char *base_url; /* OAuth mode: the portal's REST base, ending in '/' */
    char *token;    /* OAuth mode: the access token to start with, or NULL */
    char *client_secret;
    char *refresh_token;
    const char *webhook_var; /* the variables' names (not secret), for messages */
    const char *refresh_var;
    bool oauth;
    am_arena arena; /* the companies' strings */
    am_crm_list list; /* the companies (status: COMPANY_TYPE) */
    size_t deals_without_company;
    size_t deals_unknown_company;
    bool pulled;
    bool failed; /* base.last says why */
} b24_source;

/* ---- JSON values as the portal writes them --------------------------------- */

/*
 * Bitrix24 writes ids and numbers as strings ("4"); a portal behind a newer
 * API version may write integers. Either becomes text in `buf`. NULL when the
 * value is neither.
 */
static const char *json_text(json_t *v, char *buf, size_t cap)
{
    if (json_is_string(v)) {
        return json_string_value(v);
    }
    if (json_is_integer(v)) {
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    return NULL;
}

static const char *member_text(json_t *obj, const char *key, char *buf, size_t cap)
{
    return json_text(json_object_get(obj, key), buf, cap);
}

/*
 * The company site among the WEB multi-field values: a WORK value first, then
 * HOME, then OTHER. Social types (VK, FACEBOOK, TELEGRAM, LIVEJOURNAL, TWITTER,
 * INSTAGRAM...) are profiles on someone else's site, never the company's.
 */
static const char *pick_site(json_t *web)
{
    static const char *const ranked[] = {"WORK", "HOME", "OTHER"};
    const char *best = "";
    size_t best_rank = sizeof(ranked) / sizeof(ranked[0]);
    size_t i, r;
    json_t *item;

    if (!json_is_array(web)) {
        return best;
    }
    json_array_foreach(web, i, item)
    {
        const char *type = json_string_value(json_object_get(item, "VALUE_TYPE"));
        const char *value = json_string_value(json_object_get(item, "VALUE"));

        if (!type || !value || !value[0]) {
            continue;
        }
        for (r = 0; r < best_rank; r++) {
            if (strcasecmp(type, ranked[r]) == 0) {
                best = value;
                best_rank = r;
                break;
            }
        }
    }
    return best;
}

/* ---- the company table -------------------------------------------------------- */

static char *keep(b24_source *s, const char *text)
{
    return am_arena_strndup(&s->arena, text, strlen(text));
}

/* Add the companies of one crm.company.list page (`result`, an array). */
static am_status add_companies(b24_source *s, json_t *result, am_error *err)
{
    size_t i;
    json_t *row;

    json_array_foreach(result, i, row)
    {
        char idbuf[32], ownerbuf[32];
        const char *id = member_text(row, "ID", idbuf, sizeof(idbuf));
        const char *name = json_string_value(json_object_get(row, "TITLE"));
        const char *type = json_string_value(json_object_get(row, "COMPANY_TYPE"));
        const char *owner = member_text(row, "ASSIGNED_BY_ID", ownerbuf, sizeof(ownerbuf));
        am_crm_entry *c;
        am_status rc = am_crm_list_push(&c, &s->list, s->base.label, err);

        if (rc) {
            return rc;
        }
        if (!json_is_object(row) || !id || !id[0]) {
            c->bad = true;
            continue;
        }
        c->id = keep(s, id);
        c->name = keep(s, name ? name : "");
        c->site = keep(s, pick_site(json_object_get(row, "WEB")));
        c->status = keep(s, type ? type : "");
        c->inn = "";
        c->owner = keep(s, owner ? owner : "");
        if (!c->id || !c->name || !c->site || !c->status || !c->owner) {
            return am_error_set(err, AM_ENOMEM, "%s: out of memory for company %s", s->base.label,
                                id);
        }
        c->status_pops = strcasecmp(c->status, "CUSTOMER") == 0 ? 1u << AM_POP_CUSTOMERS : 0;
    }
    return AM_OK;
}

/* Index the companies by id for the joins (repeated ids: am_crm_list_index). */
static am_status index_companies(b24_source *s, am_error *err)
{
    return am_crm_list_index(&s->list, s->base.label, err);
}

/*
 * Requisites of one crm.requisite.list page. Only company requisites
 * (ENTITY_TYPE_ID 4) count; a company may have several (branches with their
 * own KPP share the INN): the first INN found is kept.
 */
static am_status apply_requisites(b24_source *s, json_t *result, am_error *err)
{
    size_t i;
    json_t *row;

    json_array_foreach(result, i, row)
    {
        char tbuf[32], ebuf[32];
        const char *type = member_text(row, "ENTITY_TYPE_ID", tbuf, sizeof(tbuf));
        const char *entity = member_text(row, "ENTITY_ID", ebuf, sizeof(ebuf));
        const char *inn = json_string_value(json_object_get(row, "RQ_INN"));
        am_crm_entry *c;

        if (!type || strcmp(type, "4") != 0 || !entity || !inn || !inn[0]) {
            continue;
        }
        c = am_crm_list_find(&s->list, entity);
        if (c && !c->inn[0]) {
            c->inn = keep(s, inn);
            if (!c->inn) {
                c->inn = "";
                return am_error_set(err, AM_ENOMEM, "%s: out of memory for company %s's INN",
                                    s->base.label, c->id);
            }
        }
    }
    return AM_OK;
}

/*
 * Deals of one crm.deal.list page. STAGE_SEMANTIC_ID is the stage's meaning
 * in every pipeline: P in progress, S success, F failure. Bitrix24 writes
 * COMPANY_ID "0" for a deal without a company.
 */
static void apply_deals(b24_source *s, json_t *result)
{
    size_t i;
    json_t *row;

    json_array_foreach(result, i, row)
    {
        char cbuf[32];
        const char *company = member_text(row, "COMPANY_ID", cbuf, sizeof(cbuf));
        const char *sem = json_string_value(json_object_get(row, "STAGE_SEMANTIC_ID"));
        am_crm_entry *c;
        unsigned bit;

        if (!company || !company[0] || strcmp(company, "0") == 0) {
            s->deals_without_company++;
            continue;
        }
        c = am_crm_list_find(&s->list, company);
        if (!c) {
            s->deals_unknown_company++;
            continue;
        }
        if (sem && strcmp(sem, "S") == 0) {
            bit = AM_CRM_DEAL_WON;
        } else if (sem && strcmp(sem, "F") == 0) {
            bit = AM_CRM_DEAL_LOST;
        } else {
            bit = AM_CRM_DEAL_OPEN; /* "P", and anything newer is not closed */
        }
        c->deals |= bit;
    }
}

/* ---- pages ------------------------------------------------------------------ */

/*
 * Read one answer of a list method: `result` (an array, borrowed from `root`)
 * and `next` (the offset of the next page, 0 when this was the last).
 */
static am_status read_page(json_t **result_out, long *next_out, const b24_source *s,
                           const char *method, long start, json_t *root, am_error *err)
{
    json_t *result = json_object_get(root, "result");
    json_t *next = json_object_get(root, "next");

    *result_out = NULL;
    *next_out = 0;
    if (!json_is_array(result)) {
        const char *code = json_string_value(json_object_get(root, "error"));
        char text[65];

        if (code) {
            snprintf(text, sizeof(text), "%s", code);
            am_crm_one_line(text);
            return am_error_set(err, AM_EHTTP,
                                "%s: %s (start %ld): the portal answered error \"%s\"; "
                                "check that the webhook or application has the crm scope",
                                s->base.label, method, start, text);
        }
        return am_error_set(err, AM_EINPUT,
                            "%s: %s (start %ld): the answer has no \"result\" list; check that "
                            "the URL is the portal's REST API",
                            s->base.label, method, start);
    }
    if (next) {
        char buf[32];
        const char *text = json_text(next, buf, sizeof(buf));
        int64_t n = 0;
        am_error ignored;

        /* A next offset that does not move forward would page forever. */
        if (!text || am_parse_i64(&n, text, strlen(text), &ignored) || n <= start || n > LONG_MAX) {
            return am_error_set(err, AM_EINPUT,
                                "%s: %s (start %ld): \"next\" is not an offset after this page; "
                                "the portal's answer is damaged, run again later",
                                s->base.label, method, start);
        }
        *next_out = (long)n;
    }
    *result_out = result;
    return AM_OK;
}

/* ---- records ------------------------------------------------------------------ */

/* Hand out the pulled companies not handed out yet, up to a batch. */
static am_status emit_companies(b24_source *s, am_record_batch *batch, am_error *err)
{
    return am_crm_list_emit(&s->list, batch, s->base.cfg, B24_BATCH_ROWS, s->base.label,
                            "crm.company.list", "ID", "portal", err);
}

/* ---- requests ------------------------------------------------------------------ */

/*
 * Bitrix24 answers 503 {"error": "QUERY_LIMIT_EXCEEDED"} past its request
 * intensity limit (about 2 a second, "limits.html"): wait and repeat.
 */
static am_http_verdict classify(void *ctx, const am_http_response *resp, double *wait_s, char *why,
                                size_t why_len)
{
    json_t *body;
    const char *code;
    am_http_verdict verdict = AM_HTTP_DEFAULT;

    (void)ctx;
    (void)wait_s;
    if (resp->status != 503) {
        return verdict;
    }
    body = am_http_error_json(resp);
    code = json_string_value(json_object_get(body, "error"));
    if (code && strcmp(code, "QUERY_LIMIT_EXCEEDED") == 0) {
        snprintf(why, why_len, "QUERY_LIMIT_EXCEEDED");
        verdict = AM_HTTP_RATE_LIMITED;
    }
    json_decref(body);
    return verdict;
}

/* The JSON body of a list call: page offset, stable order, the columns we read. */
static char *list_body(const b24_source *s, const char *method, long start)
{
    json_t *body = json_object();
    json_t *select = json_array();
    char *text = NULL;
    const char *const *col;
    static const char *const company_cols[] = {"ID",  "TITLE", "COMPANY_TYPE", "ASSIGNED_BY_ID",
                                               "WEB", NULL};
    static const char *const requisite_cols[] = {"ID", "ENTITY_TYPE_ID", "ENTITY_ID", "RQ_INN",
                                                 NULL};
    static const char *const deal_cols[] = {"ID", "COMPANY_ID", "STAGE_SEMANTIC_ID", NULL};
    const char *token = s->oauth ? am_http_oauth_access_token(s->http) : NULL;
    int bad = !body || !select;

    if (strcmp(method, "crm.company.list") == 0) {
        col = company_cols;
    } else if (strcmp(method, "crm.requisite.list") == 0) {
        col = requisite_cols;
        /* Requisites also belong to contacts (3); only companies' (4) count. */
        bad |= json_object_set_new(body, "filter", json_pack("{s:i}", "ENTITY_TYPE_ID", 4));
    } else {
        col = deal_cols;
    }
    for (; *col; col++) {
        bad |= json_array_append_new(select, json_string(*col));
    }
    /* Multi-fields (WEB) come only when selected by name. */
    bad |= json_object_set(body, "select", select);
    bad |= json_object_set_new(body, "order", json_pack("{s:s}", "ID", "ASC"));
    bad |= json_object_set_new(body, "start", json_integer(start));
    if (token) {
        /* OAuth: the access token travels in the body (`auth`), never in the URL. */
        bad |= json_object_set_new(body, "auth", json_string(token));
    }
    if (!bad) {
        text = json_dumps(body, JSON_COMPACT);
    }
    json_decref(select);
    json_decref(body);
    return text;
}

/*
 * A refused request: the portal's error code and description are what a
 * person can act on. Webhooks cannot be refreshed; an OAuth token has been
 * refreshed once already when we get here.
 */
static am_status auth_refused(const b24_source *s, const char *method, const am_http_response *resp,
                              am_error *err)
{
    json_t *body = am_http_error_json(resp);
    const char *code = json_string_value(json_object_get(body, "error"));
    const char *description = json_string_value(json_object_get(body, "error_description"));
    char what[160];
    am_status rc;

    if (code) {
        snprintf(what, sizeof(what), "%ld %.40s (%.80s)", resp->status, code,
                 description ? description : "no description");
    } else {
        snprintf(what, sizeof(what), "%ld", resp->status);
    }
    if (resp->status == 403) {
        rc = am_crm_fail_scrubbed(s->http, err, AM_EAUTH,
                           "%s: %s: the portal refused access: %s; give the %s the crm scope",
                           s->base.label, method, what, s->oauth ? "application" : "webhook");
    } else if (s->oauth) {
        rc = am_crm_fail_scrubbed(s->http, err, AM_EAUTH,
                           "%s: %s: the portal refused the access token after a refresh: %s; "
                           "authorise acctmap again and set %s",
                           s->base.label, method, what, s->refresh_var);
    } else {
        rc = am_crm_fail_scrubbed(s->http, err, AM_EAUTH,
                           "%s: %s: the portal refused the inbound webhook: %s; create a new "
                           "inbound webhook with the crm scope and set its URL in %s",
                           s->base.label, method, what, s->webhook_var);
    }
    json_decref(body);
    return rc;
}

/*
 * One page of a list method. With OAuth, a 401 (expired_token: access tokens
 * live an hour) gets one refresh and the same call again with the new token.
 * *root_out is a new reference.
 */
static am_status call_list(json_t **root_out, b24_source *s, const char *method, long start,
                           am_error *err)
{
    am_http_response resp = {0};
    char *body = NULL;
    bool refreshed = false;
    am_status rc;

    *root_out = NULL;
    if (s->oauth && !am_http_oauth_access_token(s->http)) {
        /* OAuth without a starting access token: get one first. */
        rc = am_http_oauth_refresh(s->http, err);
        if (rc) {
            return rc;
        }
        refreshed = true;
    }
    for (;;) {
        am_http_request rq = {0};

        body = list_body(s, method, start);
        if (!body) {
            return am_error_set(err, AM_ENOMEM, "%s: out of memory for a %s request", s->base.label,
                                method);
        }
        rq.method = "POST";
        rq.url = method;
        rq.body = body;
        rq.body_len = strlen(body);
        rq.content_type = "application/json";
        rq.classify = classify;
        rc = am_http_send(&resp, s->http, &rq, err);
        memset(body, 0, strlen(body)); /* it held the access token */
        free(body);
        body = NULL;
        if (rc == AM_EAUTH && resp.status == 401 && s->oauth && !refreshed) {
            am_http_response_dispose(&resp);
            rc = am_http_oauth_refresh(s->http, err);
            if (rc) {
                return rc;
            }
            refreshed = true;
            continue;
        }
        break;
    }
    if (rc == AM_EAUTH && resp.status) {
        rc = auth_refused(s, method, &resp, err);
    } else if (!rc) {
        rc = am_http_json(root_out, s->http, &resp, err);
        if (!rc && !*root_out) {
            rc = am_error_set(err, AM_EINPUT,
                              "%s: %s (start %ld): empty answer; check that the URL is the "
                              "portal's REST API",
                              s->base.label, method, start);
        }
    }
    am_http_response_dispose(&resp);
    return rc;
}

typedef am_status (*page_fn)(b24_source *s, json_t *result, am_error *err);

static am_status take_companies(b24_source *s, json_t *result, am_error *err)
{
    return add_companies(s, result, err);
}

static am_status take_requisites(b24_source *s, json_t *result, am_error *err)
{
    return apply_requisites(s, result, err);
}

static am_status take_deals(b24_source *s, json_t *result, am_error *err)
{
    (void)err;
    apply_deals(s, result);
    return AM_OK;
}

/* Every page of a list method, `start` 0, 50, ... as long as the portal says `next`. */
static am_status pull_list(b24_source *s, const char *method, page_fn take, am_error *err)
{
    long start = 0;
    am_status rc;

    do {
        json_t *root = NULL, *result;
        long next;

        rc = call_list(&root, s, method, start, err);
        if (!rc) {
            rc = read_page(&result, &next, s, method, start, root, err);
        }
        if (!rc) {
            rc = take(s, result, err);
        }
        if (!rc && strcmp(method, "crm.company.list") == 0) {
            am_http_progress(s->http, json_array_size(result));
        }
        json_decref(root);
        if (rc) {
            return rc;
        }
        start = next;
    } while (start);
    return AM_OK;
}

/* Companies first; their requisites and deals only matter when there are companies. */
static am_status pull(am_source *src, am_error *err)
{
    b24_source *s = (b24_source *)src;
    am_status rc = pull_list(s, "crm.company.list", take_companies, err);

    if (!rc) {
        rc = index_companies(s, err);
    }
    if (!rc && s->list.unique) {
        rc = pull_list(s, "crm.requisite.list", take_requisites, err);
    }
    if (!rc && s->list.unique) {
        rc = pull_list(s, "crm.deal.list", take_deals, err);
    }
    return rc;
}

/* ---- the connector ------------------------------------------------------------ */

/* The webhook's secret code: its last non-empty path segment ("/rest/1/<code>/"). */
static am_status add_webhook_secrets(b24_source *s, am_error *err)
{
    const char *path = strstr(s->webhook, "://");
    const char *p, *seg = NULL, *seg_end = NULL;
    char *code;
    am_status rc = am_http_add_secret(s->http, s->webhook);

    path = path ? strchr(path + 3, '/') : NULL;
    for (p = path; p && *p && *p != '?' && *p != '#';) {
        size_t n = strcspn(p + 1, "/?#");
        if (n) {
            seg = p + 1;
            seg_end = p + 1 + n;
        }
        p += 1 + n;
    }
    if (!rc && seg) {
        code = strndup(seg, (size_t)(seg_end - seg));
        if (!code) {
            return am_error_set(err, AM_ENOMEM, "out of memory");
        }
        rc = am_http_add_secret(s->http, code);
        free(code);
    }
    if (rc) {
        return am_error_set(err, rc, "out of memory");
    }
    return AM_OK;
}

static void b24_close(am_source *src)
{
    b24_source *s = (b24_source *)src;

    if (!s) {
        return;
    }
    am_http_free(s->http);
    free(s->webhook);
    free(s->base_url);
    free(s->token);
    free(s->client_secret);
    free(s->refresh_token);
    am_crm_list_dispose(&s->list);
    am_arena_dispose(&s->arena);
    free(s);
}

/* Webhook mode: the inbound webhook URL is the base of every call. */
static am_status open_webhook(b24_source *s, const am_http_options *opt, const am_source_env *env,
                              am_error *err)
{
    const am_source_config *cfg = s->base.cfg;
    char origin[200];
    am_status rc;

    rc = am_source_config_string(&s->webhook_var, cfg, "webhook_env", true, err);
    if (!rc) {
        rc = am_http_config_secret(&s->webhook, cfg, "webhook_env", true, err);
    }
    if (rc) {
        return rc;
    }
    if (opt->base_url) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.base_url: not used with webhook_env (the webhook URL names the "
                            "portal); remove one of them",
                            cfg->where);
    }
    if (s->webhook[strlen(s->webhook) - 1] != '/') {
        /* Method names are resolved against the webhook as a directory. */
        size_t n = strlen(s->webhook);
        char *grown = realloc(s->webhook, n + 2);
        if (!grown) {
            return am_error_set(err, AM_ENOMEM, "out of memory");
        }
        grown[n] = '/';
        grown[n + 1] = '\0';
        s->webhook = grown;
    }
    am_crm_url_origin(origin, sizeof(origin), s->webhook);
    snprintf(s->base.label, sizeof(s->base.label), "bitrix24 %s", origin);
    rc = am_http_new(&s->http, s->webhook, opt, s->base.label, env, err);
    if (rc) {
        /* The client's message may quote the URL: never let the webhook out. */
        am_error_set(err, rc,
                     "%s: the variable named by webhook_env (%s) is not a webhook URL; copy the "
                     "inbound webhook's URL (https://PORTAL/rest/USER/CODE/) into it",
                     cfg->where, s->webhook_var);
        return rc;
    }
    return add_webhook_secrets(s, err);
}

/* OAuth mode: the portal's REST base and an application's rotating refresh token. */
static am_status open_oauth(b24_source *s, const am_http_options *opt, const am_source_env *env,
                            am_error *err)
{
    const am_source_config *cfg = s->base.cfg;
    am_http_oauth_config oauth = {0};
    const char *token_url = NULL;
    char origin[200];
    size_t n;
    am_status rc;

    if (!opt->base_url) {
        return am_error_set(err, AM_ECONFIG,
                            "%s: give webhook_env (an inbound webhook) or base_url (the portal's "
                            "REST address, like https://acme.bitrix24.ru/rest/) with client_id, "
                            "client_secret_env and refresh_token_env",
                            cfg->where);
    }
    rc = am_source_config_string(&oauth.client_id, cfg, "client_id", true, err);
    if (!rc) {
        rc = am_source_config_string(&s->refresh_var, cfg, "refresh_token_env", true, err);
    }
    if (!rc) {
        rc = am_source_config_string(&token_url, cfg, "token_url", false, err);
    }
    if (!rc) {
        rc = am_http_config_secret(&s->client_secret, cfg, "client_secret_env", true, err);
    }
    if (!rc) {
        rc = am_http_config_secret(&s->refresh_token, cfg, "refresh_token_env", true, err);
    }
    if (!rc) {
        rc = am_http_config_secret(&s->token, cfg, "token_env", false, err);
    }
    if (rc) {
        return rc;
    }
    /* Method names are resolved against the REST base as a directory ("/rest/"). */
    n = strlen(opt->base_url);
    s->base_url = malloc(n + 2);
    if (!s->base_url) {
        return am_error_set(err, AM_ENOMEM, "out of memory");
    }
    snprintf(s->base_url, n + 2, "%s%s", opt->base_url,
             n && opt->base_url[n - 1] == '/' ? "" : "/");
    am_crm_url_origin(origin, sizeof(origin), s->base_url);
    snprintf(s->base.label, sizeof(s->base.label), "bitrix24 %s", origin);
    rc = am_http_new(&s->http, s->base_url, opt, s->base.label, env, err);
    if (rc) {
        return rc;
    }
    oauth.token_url = token_url ? token_url : B24_TOKEN_URL;
    oauth.style = AM_HTTP_OAUTH_QUERY;
    oauth.client_secret = s->client_secret;
    oauth.refresh_token = s->refresh_token;
    oauth.access_token = s->token;
    oauth.refresh_field = "refresh_token_env";
    oauth.refresh_var = s->refresh_var;
    s->oauth = true;
    return am_http_oauth_setup(s->http, &oauth, err);
}

static am_status b24_open(am_source **out, const am_source_config *cfg, const am_source_env *env,
                          am_error *err)
{
    b24_source *s;
    am_http_options opt;
    const char *webhook_var = NULL;
    am_status rc;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (!s) {
        return am_error_set(err, AM_ENOMEM, "%s: out of memory opening a Bitrix24 source",
                            cfg->where);
    }
    s->base.ops = &am_connector_bitrix24;
    s->base.cfg = cfg;
    am_arena_init(&s->arena);
    am_http_options_init(&opt, 2.0);
    rc = am_http_config_read(&opt, cfg, err);
    if (!rc) {
        rc = am_source_config_string(&webhook_var, cfg, "webhook_env", false, err);
    }
    if (!rc) {
        rc = webhook_var ? open_webhook(s, &opt, env, err) : open_oauth(s, &opt, env, err);
    }
    if (!rc && !s->oauth) {
        const char *extra[] = {"client_id", "client_secret_env", "refresh_token_env", "token_url",
                               "token_env"};
        size_t i;
        for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
            const char *v = NULL;
            rc = am_source_config_string(&v, cfg, extra[i], false, err);
            if (!rc && v) {
                rc = am_error_set(err, AM_ECONFIG,
                                  "%s.%s: not used with webhook_env; remove it, or remove "
                                  "webhook_env to use OAuth",
                                  cfg->where, extra[i]);
            }
            if (rc) {
                break;
            }
        }
    }
    if (rc) {
        b24_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return AM_OK;
}

static am_status emit(am_source *src, am_record_batch *batch, am_error *err)
{
    return emit_companies((b24_source *)src, batch, err);
}

static am_status b24_next_batch(am_source *src, am_record_batch *batch, am_error *err)
{
    b24_source *s = (b24_source *)src;

    return am_crm_next_batch(src, &s->pulled, &s->failed, pull, emit, batch, err);
}

static const am_error *b24_last_error(const am_source *src)
{
    return &src->last;
}

static const char *const b24_fields[] = {"webhook_env",         "client_id", "client_secret_env",
                                         "refresh_token_env",   "token_env", "token_url",
                                         AM_HTTP_CONFIG_FIELDS, NULL};

const am_connector_ops am_connector_bitrix24 = {
    .type = "bitrix24",
    .fields = b24_fields,
    .open = b24_open,
    .next_batch = b24_next_batch,
    .close = b24_close,
    .last_error = b24_last_error,
};
