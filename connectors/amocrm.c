/*
 * amoCRM connector: pulls an account's companies and leads over API v4
 * (/api/v4/companies, /api/v4/leads), then hands the companies out as records
 * with their populations. The first stage of the data flow for amoCRM (Kommo)
 * sources; all HTTP goes through connectors/http.c.
 */
#include "acctmap/connector.h"
#include "acctmap/parse.h"
#include "connectors/crm.h"
#include "connectors/http.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

/* The one exported symbol, defined at the end of this file. */
extern const am_connector_ops am_connector_amocrm;

/* Records handed out per next_batch call. */
#define AMO_BATCH_ROWS 4096
/* Rows asked per page: the API's maximum. */
#define AMO_PAGE_ROWS 250
/* The INN field when the config names none: amoCRM has no standard one. */
#define AMO_INN_FIELD_DEFAULT "ИНН"
/* Lead statuses with the same meaning in every pipeline ("Воронки и этапы"). */
#define AMO_STATUS_WON 142
#define AMO_STATUS_LOST 143

typedef struct amo_source {
    am_source base; /* first: an am_source * points here */
    am_http *http;
    const am_source_env *env; /* borrowed for the source's life: the secret keeper */
    char *token; /* the long-lived token, or OAuth's current access token (NULL: none yet) */
    char *client_secret;
    char *refresh_token; /* OAuth: the current refresh token */
    const char *client_id;
    const char *redirect_uri;
    const char *token_var; /* the variables' names (not secret), for messages */
    const char *refresh_var;
    unsigned refreshes;
    bool refresh_from_store; /* the refresh token is the one a run saved */
    bool oauth;
    const char *inn_field; /* name of the INN custom field, or NULL when inn_field_id is set */
    int64_t inn_field_id;  /* 0: choose by name */
    am_arena arena;        /* the companies' strings */
    am_crm_list list;      /* the companies (no status: amoCRM companies have none) */
    size_t leads_without_company;
    size_t leads_unknown_company;
    bool pulled;
    bool failed; /* base.last says why */
} amo_source;

/* ---- custom fields --------------------------------------------------------- */

/* The first non-empty value of a custom field entry, or NULL. */
static const char *field_first_value(json_t *field)
{
    json_t *values = json_object_get(field, "values");
    size_t i;
    json_t *v;

    json_array_foreach(values, i, v)
    {
        const char *text = json_string_value(json_object_get(v, "value"));
        if (text && text[0]) {
            return text;
        }
    }
    return NULL;
}

/*
 * The site and the INN among a company's custom_fields_values (null when the
 * company has none). The site is the field with field_code WEB; a company may
 * list several sites, the first is its main one. The INN field is a custom
 * text field the account created: chosen by id, or by name as shown in the
 * account ("ИНН").
 */
static void read_custom_fields(const char **site_out, const char **inn_out, const amo_source *s,
                               json_t *fields)
{
    size_t i;
    json_t *f;

    *site_out = NULL;
    *inn_out = NULL;
    json_array_foreach(fields, i, f)
    {
        const char *code = json_string_value(json_object_get(f, "field_code"));
        const char *name = json_string_value(json_object_get(f, "field_name"));
        json_t *id = json_object_get(f, "field_id");
        bool is_inn;

        if (s->inn_field_id) {
            is_inn = json_is_integer(id) && json_integer_value(id) == s->inn_field_id;
        } else {
            is_inn = name && strcmp(name, s->inn_field) == 0;
        }
        if (is_inn && !*inn_out) {
            *inn_out = field_first_value(f);
        } else if (code && strcmp(code, "WEB") == 0 && !*site_out) {
            *site_out = field_first_value(f);
        }
    }
}

/* ---- the company table -------------------------------------------------------- */

static char *keep(amo_source *s, const char *text)
{
    return am_arena_strndup(&s->arena, text, strlen(text));
}

/* Add the companies of one page (`_embedded.companies`, an array). */
static am_status add_companies(amo_source *s, json_t *list, am_error *err)
{
    size_t i;
    json_t *row;

    json_array_foreach(list, i, row)
    {
        json_t *id = json_object_get(row, "id");
        json_t *owner = json_object_get(row, "responsible_user_id");
        const char *name = json_string_value(json_object_get(row, "name"));
        const char *site = NULL, *inn = NULL;
        char idbuf[32], ownerbuf[32] = "";
        am_crm_entry *c;
        am_status rc = am_crm_list_push(&c, &s->list, s->base.label, err);

        if (rc) {
            return rc;
        }
        if (!json_is_object(row) || !json_is_integer(id) || json_integer_value(id) <= 0) {
            c->bad = true;
            continue;
        }
        snprintf(idbuf, sizeof(idbuf), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
        if (json_is_integer(owner)) {
            snprintf(ownerbuf, sizeof(ownerbuf), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(owner));
        }
        read_custom_fields(&site, &inn, s, json_object_get(row, "custom_fields_values"));
        c->id = keep(s, idbuf);
        c->name = keep(s, name ? name : "");
        c->site = keep(s, site ? site : "");
        c->inn = keep(s, inn ? inn : "");
        c->owner = keep(s, ownerbuf);
        if (!c->id || !c->name || !c->site || !c->inn || !c->owner) {
            return am_error_set(err, AM_ENOMEM, "%s: out of memory for company %s", s->base.label,
                                idbuf);
        }
    }
    return AM_OK;
}

/* Index the companies by id for the lead join (repeated ids: am_crm_list_index). */
static am_status index_companies(amo_source *s, am_error *err)
{
    return am_crm_list_index(&s->list, s->base.label, err);
}

/*
 * Leads of one page (`_embedded.leads`). Status 142 is won and 143 lost in
 * every pipeline; any other status is open. A lead's company is
 * `_embedded.companies[0]` (a lead has at most one).
 */
static void apply_leads(amo_source *s, json_t *list)
{
    size_t i;
    json_t *row;

    json_array_foreach(list, i, row)
    {
        json_t *companies = json_object_get(json_object_get(row, "_embedded"), "companies");
        json_t *company = json_object_get(json_array_get(companies, 0), "id");
        json_t *status = json_object_get(row, "status_id");
        char idbuf[32];
        am_crm_entry *c;
        unsigned bit = AM_CRM_DEAL_OPEN;

        if (json_is_true(json_object_get(row, "is_deleted"))) {
            continue;
        }
        if (!json_is_integer(company)) {
            s->leads_without_company++;
            continue;
        }
        snprintf(idbuf, sizeof(idbuf), "%" JSON_INTEGER_FORMAT, json_integer_value(company));
        c = am_crm_list_find(&s->list, idbuf);
        if (!c) {
            s->leads_unknown_company++;
            continue;
        }
        if (json_is_integer(status) && json_integer_value(status) == AMO_STATUS_WON) {
            bit = AM_CRM_DEAL_WON;
        } else if (json_is_integer(status) && json_integer_value(status) == AMO_STATUS_LOST) {
            bit = AM_CRM_DEAL_LOST;
        }
        c->deals |= bit;
    }
}

/* ---- records ------------------------------------------------------------------ */

/* Hand out the pulled companies not handed out yet, up to a batch. */
static am_status emit_companies(amo_source *s, am_record_batch *batch, am_error *err)
{
    return am_crm_list_emit(&s->list, batch, s->base.cfg, AMO_BATCH_ROWS, s->base.label,
                            "/api/v4/companies", "id", "account", err);
}

/* ---- pages ------------------------------------------------------------------ */

/*
 * Read one page of a v4 list: `_embedded.<key>` (an array) and
 * `_links.next.href` (NULL on the last page), both borrowed from `root`.
 */
static am_status parse_page(json_t **list_out, const char **next_out, const amo_source *s,
                            const char *key, long page, json_t *root, am_error *err)
{
    json_t *list = json_object_get(json_object_get(root, "_embedded"), key);

    *list_out = NULL;
    *next_out = NULL;
    if (!json_is_array(list)) {
        return am_error_set(err, AM_EINPUT,
                            "%s: /api/v4/%s page %ld: the answer has no \"_embedded\".\"%s\" "
                            "list; check that base_url is the account's address",
                            s->base.label, key, page, key);
    }
    *next_out = json_string_value(
        json_object_get(json_object_get(json_object_get(root, "_links"), "next"), "href"));
    *list_out = list;
    return AM_OK;
}

/* ---- requests ------------------------------------------------------------------ */

/*
 * amoCRM answers 429 past about 7 requests a second, with the wait in the
 * problem+json body ("retry_after", seconds) rather than a header.
 */
static am_http_verdict classify(void *ctx, const am_http_response *resp, double *wait_s, char *why,
                                size_t why_len)
{
    json_t *body, *after;

    (void)ctx;
    if (resp->status != 429) {
        return AM_HTTP_DEFAULT;
    }
    body = am_http_error_json(resp);
    after = json_object_get(body, "retry_after");
    if (json_is_number(after) && json_number_value(after) >= 0) {
        *wait_s = json_number_value(after);
    }
    snprintf(why, why_len, "429 Too Many Requests");
    json_decref(body);
    return AM_HTTP_RATE_LIMITED;
}

/* A refused request, with amoCRM's problem title and detail. */
static am_status auth_refused(const amo_source *s, const am_http_response *resp, am_error *err)
{
    json_t *body = am_http_error_json(resp);
    const char *title = json_string_value(json_object_get(body, "title"));
    const char *detail = json_string_value(json_object_get(body, "detail"));
    char what[200];
    am_status rc;

    snprintf(what, sizeof(what), "%ld %.60s%s%.100s%s", resp->status, title ? title : "",
             detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
    if (resp->status == 403) {
        rc = am_crm_fail_scrubbed(s->http, err, AM_EAUTH,
                           "%s: GET %s: the account refused access: %s; give the integration's "
                           "user access to companies and leads",
                           s->base.label, resp->url_path ? resp->url_path : "", what);
    } else if (s->oauth) {
        rc = am_crm_fail_scrubbed(s->http, err, AM_EAUTH,
                           "%s: GET %s: the account refused the access token after a refresh: "
                           "%s; authorise acctmap again and set %s",
                           s->base.label, resp->url_path ? resp->url_path : "", what,
                           s->refresh_var);
    } else {
        rc = am_crm_fail_scrubbed(s->http, err, AM_EAUTH,
                           "%s: GET %s: the account refused the long-lived token: %s; create a "
                           "new one in the integration's settings and set %s",
                           s->base.label, resp->url_path ? resp->url_path : "", what, s->token_var);
    }
    json_decref(body);
    return rc;
}

/* ---- OAuth ------------------------------------------------------------------ */

/*
 * The keeper's name of this source's refresh token. The same name the shared
 * client uses (connectors/http.c), so that a token saved by one is found by
 * the other. False without a keeper.
 */
static bool secret_name(char *buf, size_t cap, const amo_source *s)
{
    int n;

    if (!s->env->secrets || !s->env->source_key) {
        return false;
    }
    n = snprintf(buf, cap, "%s.refresh_token", s->env->source_key);
    return n > 0 && (size_t)n < cap;
}

static am_status set_secret(char **slot, amo_source *s, const char *value, am_error *err)
{
    char *copy = strdup(value);

    if (!copy || am_http_add_secret(s->http, value)) {
        free(copy);
        return am_error_set(err, AM_ENOMEM, "%s: out of memory", s->base.label);
    }
    free(*slot);
    *slot = copy;
    return AM_OK;
}

/* What the token endpoint said when it refused: problem+json "hint", else "title". */
static void refusal_reason(char *buf, size_t cap, const am_http_response *resp)
{
    json_t *body = am_http_error_json(resp);
    const char *why = json_string_value(json_object_get(body, "hint"));

    if (!why) {
        why = json_string_value(json_object_get(body, "error"));
    }
    if (!why) {
        why = json_string_value(json_object_get(body, "title"));
    }
    snprintf(buf, cap, "%.80s", why ? why : "HTTP error");
    json_decref(body);
}

/*
 * Trade the refresh token for a new access token at the account's
 * /oauth2/access_token ("Get token"). amoCRM rotates refresh tokens: the old
 * one dies with this answer, so the new one is saved through the secret
 * keeper before anything uses it; a crash after the save loses nothing.
 *
 * Done here rather than with am_http_oauth_refresh because amoCRM wants the
 * integration's redirect_uri in the request, which the shared helper cannot
 * send (yet).
 */
static am_status refresh(amo_source *s, am_error *err)
{
    am_http_request rq = {0};
    am_http_response resp = {0};
    json_t *body = NULL, *root = NULL;
    char *text = NULL;
    const char *access, *rotated;
    char name[256], why[100];
    am_status rc;

    s->refreshes++;
    body = json_pack("{s:s, s:s, s:s, s:s}", "client_id", s->client_id, "client_secret",
                     s->client_secret, "grant_type", "refresh_token", "refresh_token",
                     s->refresh_token);
    if (body && s->redirect_uri &&
        json_object_set_new(body, "redirect_uri", json_string(s->redirect_uri))) {
        json_decref(body);
        body = NULL;
    }
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        return am_error_set(err, AM_ENOMEM, "%s: out of memory", s->base.label);
    }
    rq.method = "POST";
    rq.url = "/oauth2/access_token";
    rq.body = text;
    rq.body_len = strlen(text);
    rq.content_type = "application/json";
    rq.headers = (const char *const[]){"Accept: application/json", NULL};
    rc = am_http_send(&resp, s->http, &rq, err);
    if (rc == AM_EAUTH || (rc == AM_EHTTP && resp.status >= 400 && resp.status < 500)) {
        char note[600] = "";

        refusal_reason(why, sizeof(why), &resp);
        if (s->refresh_from_store && secret_name(name, sizeof(name), s)) {
            /* Else the saved token would keep winning over a new one in the variable. */
            snprintf(note, sizeof(note),
                     ", then delete the token the store saved as %s (dir: store: secrets/%s)", name,
                     name);
        }
        rc = am_crm_fail_scrubbed(s->http, err, AM_EAUTH,
                           "%s: the refresh token was refused (%s); authorise acctmap again and "
                           "set %s%s",
                           s->base.label, why, s->refresh_var, note);
        goto cleanup;
    }
    if (!rc) {
        rc = am_http_json(&root, s->http, &resp, err);
    }
    if (rc) {
        goto cleanup;
    }
    access = json_string_value(json_object_get(root, "access_token"));
    rotated = json_string_value(json_object_get(root, "refresh_token"));
    if (!access || !access[0]) {
        rc = am_error_set(err, AM_EAUTH,
                          "%s: the token endpoint answered without an access_token; authorise "
                          "acctmap again and set %s",
                          s->base.label, s->refresh_var);
        goto cleanup;
    }
    if (am_http_add_secret(s->http, access) || (rotated && am_http_add_secret(s->http, rotated))) {
        rc = am_error_set(err, AM_ENOMEM, "%s: out of memory", s->base.label);
        goto cleanup;
    }
    if (rotated && rotated[0] && strcmp(rotated, s->refresh_token) != 0) {
        if (secret_name(name, sizeof(name), s)) {
            am_error kerr;

            am_error_clear(&kerr);
            rc = s->env->secrets->save(s->env->secrets->ctx, name, rotated, &kerr);
            if (rc) {
                am_http_scrub(s->http, kerr.msg, sizeof(kerr.msg));
                rc = am_error_set(err, rc,
                                  "%s: the new refresh token could not be saved (%s); fix the "
                                  "store, then authorise acctmap again and set %s",
                                  s->base.label, kerr.msg, s->refresh_var);
                goto cleanup;
            }
        }
        rc = set_secret(&s->refresh_token, s, rotated, err);
        if (rc) {
            goto cleanup;
        }
        s->refresh_from_store = secret_name(name, sizeof(name), s);
    }
    rc = set_secret(&s->token, s, access, err);
cleanup:
    json_decref(root);
    am_http_response_dispose(&resp);
    memset(text, 0, strlen(text)); /* it held the client secret and the refresh token */
    free(text);
    return rc;
}

/*
 * One page. With OAuth, a 401 (access tokens live a day) gets one refresh
 * and the same request again with the new token. A 204 (no rows) gives
 * *root_out = NULL; otherwise it is a new reference.
 */
static am_status get_page(json_t **root_out, amo_source *s, const char *url, am_error *err)
{
    am_http_response resp = {0};
    bool refreshed = false;
    am_status rc;

    *root_out = NULL;
    for (;;) {
        am_http_request rq = {0};

        rq.method = "GET";
        rq.url = url;
        rq.bearer = s->token;
        rq.classify = classify;
        if (!rq.bearer) {
            /* OAuth without a starting access token: get one first. */
            rc = refresh(s, err);
            if (rc) {
                return rc;
            }
            refreshed = true;
            continue;
        }
        rc = am_http_send(&resp, s->http, &rq, err);
        if (rc == AM_EAUTH && resp.status == 401 && s->oauth && !refreshed) {
            am_http_response_dispose(&resp);
            rc = refresh(s, err);
            if (rc) {
                return rc;
            }
            refreshed = true;
            continue;
        }
        break;
    }
    if (rc == AM_EAUTH && resp.status) {
        rc = auth_refused(s, &resp, err);
    } else if (!rc && resp.status != 204) {
        rc = am_http_json(root_out, s->http, &resp, err);
        if (!rc && !*root_out) {
            /* Only 204 means "no rows"; an empty 200 is a broken answer. */
            rc = am_error_set(err, AM_EINPUT,
                              "%s: GET %s: HTTP %ld with an empty body; check that base_url is "
                              "the account's address, or run again later",
                              s->base.label, resp.url_path ? resp.url_path : "", resp.status);
        }
    }
    am_http_response_dispose(&resp);
    return rc;
}

typedef am_status (*page_fn)(amo_source *s, json_t *list, am_error *err);

static am_status take_companies(amo_source *s, json_t *list, am_error *err)
{
    return add_companies(s, list, err);
}

static am_status take_leads(amo_source *s, json_t *list, am_error *err)
{
    (void)err;
    apply_leads(s, list);
    return AM_OK;
}

/*
 * Every page of /api/v4/<key>. `_links.next` is followed only on our own
 * origin (scheme, host and port): a link to another host, even another
 * account on amocrm.ru, would get our token. Such a link is not followed;
 * the next page is asked from our own base by number instead. The list ends
 * without a next link or with a 204.
 */
static am_status pull_list(amo_source *s, const char *key, page_fn take, am_error *err)
{
    char own[128];
    char *url = NULL;
    long page = 1;
    am_status rc = AM_OK;

    snprintf(own, sizeof(own), "/api/v4/%s?limit=%d&page=%ld", key, AMO_PAGE_ROWS, page);
    url = strdup(own);
    if (!url) {
        return am_error_set(err, AM_ENOMEM, "%s: out of memory", s->base.label);
    }
    while (url) {
        json_t *root = NULL, *list = NULL, *at;
        const char *next = NULL;
        am_error refused;

        rc = get_page(&root, s, url, err);
        free(url);
        url = NULL;
        if (rc || !root) {
            break;
        }
        rc = parse_page(&list, &next, s, key, page, root, err);
        at = json_object_get(root, "_page");
        if (!rc && json_is_integer(at) && json_integer_value(at) != page) {
            /* A page that is not the one asked for would loop or skip rows. */
            rc = am_error_set(err, AM_EINPUT,
                              "%s: /api/v4/%s: asked for page %ld, got page %" JSON_INTEGER_FORMAT
                              "; run again later",
                              s->base.label, key, page, json_integer_value(at));
        }
        if (!rc) {
            rc = take(s, list, err);
        }
        if (!rc && strcmp(key, "companies") == 0) {
            am_http_progress(s->http, json_array_size(list));
        }
        if (!rc && next) {
            page++;
            if (am_http_check_url(s->http, next, &refused) == AM_OK) {
                url = strdup(next);
            } else {
                snprintf(own, sizeof(own), "/api/v4/%s?limit=%d&page=%ld", key, AMO_PAGE_ROWS,
                         page);
                url = strdup(own);
            }
            if (!url) {
                rc = am_error_set(err, AM_ENOMEM, "%s: out of memory", s->base.label);
            }
        }
        json_decref(root);
        if (rc) {
            break;
        }
    }
    free(url);
    return rc;
}

static am_status pull(am_source *src, am_error *err)
{
    amo_source *s = (amo_source *)src;
    am_status rc = pull_list(s, "companies", take_companies, err);

    if (!rc) {
        rc = index_companies(s, err);
    }
    if (!rc && s->list.unique) {
        rc = pull_list(s, "leads", take_leads, err);
    }
    return rc;
}

/* ---- the connector ------------------------------------------------------------ */

static void amo_close(am_source *src)
{
    amo_source *s = (amo_source *)src;

    if (!s) {
        return;
    }
    am_http_free(s->http);
    free(s->token);
    free(s->client_secret);
    free(s->refresh_token);
    am_crm_list_dispose(&s->list);
    am_arena_dispose(&s->arena);
    free(s);
}

/* `inn_field`: a field id (digits) or the field's name as the account shows it. */
static am_status read_inn_field(amo_source *s, am_error *err)
{
    const char *v = NULL;
    am_status rc = am_source_config_string(&v, s->base.cfg, "inn_field", false, err);
    size_t i;

    if (rc) {
        return rc;
    }
    s->inn_field = v ? v : AMO_INN_FIELD_DEFAULT;
    if (!s->inn_field[0]) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.inn_field: empty; give the INN field's name (\"ИНН\") or id",
                            s->base.cfg->where);
    }
    i = strspn(s->inn_field, "0123456789");
    if (!s->inn_field[i]) {
        int64_t id = 0;
        if (am_parse_i64(&id, s->inn_field, i, err) || id <= 0) {
            return am_error_set(err, AM_ECONFIG,
                                "%s.inn_field: \"%s\" is not a field id; give the field's id as "
                                "shown in the account's settings, or its name",
                                s->base.cfg->where, s->inn_field);
        }
        s->inn_field_id = id;
    }
    return AM_OK;
}

/*
 * Long-lived token (token_env), or OAuth (client_id, client_secret_env,
 * refresh_token_env; token_env then optionally holds a current access token).
 */
static am_status read_auth(amo_source *s, const am_source_env *env, am_error *err)
{
    const am_source_config *cfg = s->base.cfg;
    const char *client_id = NULL;
    char name[256];
    am_status rc;

    rc = am_source_config_string(&client_id, cfg, "client_id", false, err);
    if (!rc) {
        rc = am_source_config_string(&s->token_var, cfg, "token_env", !client_id, err);
    }
    if (!rc) {
        rc = am_http_config_secret(&s->token, cfg, "token_env", false, err);
    }
    if (!rc && s->token && am_http_add_secret(s->http, s->token)) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory");
    }
    if (rc || !client_id) {
        if (!rc) {
            const char *v = NULL;
            const char *oauth_only[] = {"client_secret_env", "refresh_token_env", "redirect_uri"};
            size_t i;
            for (i = 0; !rc && i < sizeof(oauth_only) / sizeof(oauth_only[0]); i++) {
                rc = am_source_config_string(&v, cfg, oauth_only[i], false, err);
                if (!rc && v) {
                    rc = am_error_set(err, AM_ECONFIG,
                                      "%s.%s: OAuth needs client_id too; add it, or remove %s "
                                      "to use the long-lived token",
                                      cfg->where, oauth_only[i], oauth_only[i]);
                }
            }
        }
        return rc;
    }
    s->client_id = client_id;
    rc = am_source_config_string(&s->refresh_var, cfg, "refresh_token_env", true, err);
    if (!rc) {
        rc = am_source_config_string(&s->redirect_uri, cfg, "redirect_uri", false, err);
    }
    if (!rc) {
        rc = am_http_config_secret(&s->client_secret, cfg, "client_secret_env", true, err);
    }
    if (!rc) {
        rc = am_http_config_secret(&s->refresh_token, cfg, "refresh_token_env", true, err);
    }
    if (!rc && (am_http_add_secret(s->http, s->client_secret) ||
                am_http_add_secret(s->http, s->refresh_token))) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory");
    }
    if (rc) {
        return rc;
    }
    s->oauth = true;
    /*
     * A refresh token saved by an earlier run wins: the one in the environment
     * was rotated away when that run refreshed.
     */
    if (secret_name(name, sizeof(name), s)) {
        char *saved = NULL;
        am_error kerr;

        am_error_clear(&kerr);
        rc = env->secrets->load(env->secrets->ctx, name, &saved, &kerr);
        if (rc == AM_ENOTFOUND) {
            return AM_OK;
        }
        if (rc) {
            am_http_scrub(s->http, kerr.msg, sizeof(kerr.msg));
            return am_error_set(err, AM_ESTORE,
                                "%s: the saved refresh token could not be read (%s); fix the "
                                "store",
                                cfg->where, kerr.msg);
        }
        if (saved && saved[0]) {
            rc = set_secret(&s->refresh_token, s, saved, err);
            s->refresh_from_store = true;
        }
        if (saved) {
            memset(saved, 0, strlen(saved));
        }
        free(saved);
    }
    return rc;
}

static am_status amo_open(am_source **out, const am_source_config *cfg, const am_source_env *env,
                          am_error *err)
{
    amo_source *s;
    am_http_options opt;
    char origin[200];
    am_status rc;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (!s) {
        return am_error_set(err, AM_ENOMEM, "%s: out of memory opening an amoCRM source",
                            cfg->where);
    }
    s->base.ops = &am_connector_amocrm;
    s->base.cfg = cfg;
    s->env = env;
    am_arena_init(&s->arena);
    am_http_options_init(&opt, 7.0);
    rc = am_http_config_read(&opt, cfg, err);
    if (!rc && !opt.base_url) {
        rc = am_error_set(err, AM_ECONFIG,
                          "%s.base_url: missing; give the account's address, like "
                          "https://example.amocrm.ru",
                          cfg->where);
    }
    if (!rc) {
        rc = read_inn_field(s, err);
    }
    if (!rc) {
        am_crm_url_origin(origin, sizeof(origin), opt.base_url);
        snprintf(s->base.label, sizeof(s->base.label), "amocrm %s", origin);
        rc = am_http_new(&s->http, opt.base_url, &opt, s->base.label, env, err);
    }
    if (!rc) {
        rc = read_auth(s, env, err);
    }
    if (rc) {
        amo_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return AM_OK;
}

static am_status emit(am_source *src, am_record_batch *batch, am_error *err)
{
    return emit_companies((amo_source *)src, batch, err);
}

static am_status amo_next_batch(am_source *src, am_record_batch *batch, am_error *err)
{
    amo_source *s = (amo_source *)src;

    return am_crm_next_batch(src, &s->pulled, &s->failed, pull, emit, batch, err);
}

static const am_error *amo_last_error(const am_source *src)
{
    return &src->last;
}

static const char *const amo_fields[] = {
    "token_env",    "client_id", "client_secret_env",   "refresh_token_env",
    "redirect_uri", "inn_field", AM_HTTP_CONFIG_FIELDS, NULL};

const am_connector_ops am_connector_amocrm = {
    .type = "amocrm",
    .fields = amo_fields,
    .open = amo_open,
    .next_batch = amo_next_batch,
    .close = amo_close,
    .last_error = amo_last_error,
};
