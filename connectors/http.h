/*
 * The one HTTP client of the CRM connectors (connectors/http.c is the only
 * file that calls libcurl). A client is bound to one origin (scheme, host,
 * port) and does for every connector: the shared config fields, secrets
 * from the environment, a client-side request rate, retries with
 * exponential back-off and jitter on network errors, 5xx and 429 (Retry-After
 * honoured) within a bounded total wait, a pagination/redirect guard, a body
 * ceiling, gzip, the User-Agent, JSON parsing with one-line errors, scrubbing
 * of secrets from every message, OAuth refresh with rotated refresh tokens
 * saved before use, and progress lines for the CLI to show.
 *
 * Typical connector code:
 *
 *     am_http_options opt;
 *     am_http_options_init(&opt, 7.0);                 // amoCRM: ~7 requests/s
 *     rc = am_http_config_read(&opt, cfg, err);        // base_url, timeouts, ...
 *     rc = am_http_config_secret(&token, cfg, "token_env", true, err);
 *     rc = am_http_new(&http, opt.base_url ? opt.base_url : default_url, &opt,
 *                      label, env, err);
 *     am_http_add_secret(http, token);
 *     am_http_request rq = {.method = "GET", .url = "/api/v4/companies?limit=250",
 *                           .bearer = token};
 *     rc = am_http_send(&resp, http, &rq, err);        // retries inside
 *     rc = am_http_json(&root, http, &resp, err);      // 2xx body -> json_t
 *     am_http_progress(http, records_in_page);
 *     am_http_response_dispose(&resp);
 *
 * All functions take the client of one source; a client is used by one
 * thread at a time (each source runs in one worker).
 */
#ifndef AM_HTTP_H
#define AM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "acctmap/config.h"
#include "acctmap/connector.h"
#include "acctmap/error.h"

typedef struct am_http am_http;

/* ---- shared config fields of every HTTP source --------------------------- */

/*
 * The config fields every HTTP source accepts besides its own. Append them
 * to the connector's `fields` list:
 *
 *     static const char *const fields[] = {"token_env", AM_HTTP_CONFIG_FIELDS, NULL};
 *
 * Their values are strings (the config accessors read strings), numbers
 * written in decimal: "max_wait_s": "0.5", "max_attempts": "3".
 */
#define AM_HTTP_CONFIG_FIELDS                                                              \
    "base_url", "timeout_s", "connect_timeout_s", "max_wait_s", "max_wait_one_s",          \
        "max_attempts", "requests_per_s", "max_body_mb"

/* Tuning of one source's client. am_http_options_init gives the defaults. */
typedef struct am_http_options {
    /* `base_url` of the config, borrowed from it; NULL when absent (then the
     * connector uses its production URL or instance_url). */
    const char *base_url;
    double timeout_s;         /* whole request, connect included; default 60 */
    double connect_timeout_s; /* default 10 */
    /* Total of all back-off waits of this source (not the rate spacing);
     * past it the source fails with AM_ELIMIT. Default 300. */
    double max_wait_s;
    /* Cap on one wait, a Retry-After included. Default 60. */
    double max_wait_one_s;
    /* Tries of one request, the first included (>= 1). Default 5. */
    unsigned max_attempts;
    /* Client-side request rate; 0 means unlimited. Default: the connector's. */
    double requests_per_s;
    /* Response body ceiling in bytes; AM_ELIMIT past it. Default 64 MiB. */
    size_t max_body_bytes;
} am_http_options;

/*
 * Fill `opt` with the defaults above and the connector's request rate
 * (Bitrix24 about 2/s, amoCRM about 7/s, HubSpot 10/s, Salesforce 0).
 */
void am_http_options_init(am_http_options *opt, double requests_per_s);

/*
 * Override `opt` with the shared fields present in the source's config:
 * base_url (an http or https URL), timeout_s, connect_timeout_s, max_wait_s,
 * max_wait_one_s (non-negative decimals), max_attempts (1..100),
 * requests_per_s (>= 0, 0 = unlimited), max_body_mb (1..4096). AM_ECONFIG
 * naming the field on a bad value.
 */
am_status am_http_config_read(am_http_options *opt, const am_source_config *cfg, am_error *err);

/*
 * Read the secret held by the environment variable that the config field
 * `field` (a `*_env` field: "token_env", "client_secret_env", ...) names.
 * *value_out is a malloc'd copy (the caller frees it), or NULL when the
 * field is absent and not `required`. AM_ECONFIG when the field is absent
 * but required, or the variable is unset or empty:
 * `acctmap.json: orgs[1].sources[0].token_env: environment variable
 * GLOBEX_HUBSPOT_TOKEN is not set or empty; export it` (never the value).
 */
am_status am_http_config_secret(char **value_out, const am_source_config *cfg,
                                const char *field, bool required, am_error *err);

/* ---- the client ---------------------------------------------------------- */

/*
 * A client bound to the origin of `url` (scheme http/https, host, port —
 * compared exactly, never by domain or prefix; any path of `url` is the
 * base that relative request URLs are resolved against). `label` names the
 * source in every message and progress line ("hubspot https://api.hubapi.com");
 * it is copied and scrubbed of secrets. `opt` and `env` are copied (env's
 * secret keeper and source_key are borrowed for the client's life; NULL env:
 * no keeper, no progress). AM_ECONFIG when `url` is not an http(s) URL.
 *
 * Test builds (-DAM_DEBUG) only: when the environment variable
 * AM_HTTP_CONNECT_TO is set, its comma-separated entries
 * "HOST:PORT:CONNECT-HOST:CONNECT-PORT" are given to CURLOPT_CONNECT_TO, so
 * that a test can map a public host name to a loopback listener and watch
 * for leaks (tests/fake_crm.h). Release builds ignore the variable.
 */
am_status am_http_new(am_http **out, const char *url, const am_http_options *opt,
                      const char *label, const am_source_env *env, am_error *err);
void am_http_free(am_http *http);

/*
 * Move the client to another origin (Salesforce's token answer names the
 * instance_url to use). Rate, wait budget, secrets and counters are kept.
 * AM_ECONFIG when `url` is not an http(s) URL.
 */
am_status am_http_rebind(am_http *http, const char *url, am_error *err);

/* The client's origin, "https://api.hubapi.com" or "http://127.0.0.1:4711". */
const char *am_http_origin(const am_http *http);

/* The label given to am_http_new (scrubbed). */
const char *am_http_label(const am_http *http);

/*
 * Register a secret: from now on every message the client writes has each
 * occurrence of `secret` replaced by "***". Register tokens, client secrets,
 * refresh tokens, the whole Bitrix24 webhook URL and its secret path
 * segment. NULL or "" is ignored. The string is copied. AM_ENOMEM only.
 */
am_status am_http_add_secret(am_http *http, const char *secret);

/* Replace every registered secret in `text` (NUL-terminated) by "***", in place. */
void am_http_scrub(const am_http *http, char *text, size_t cap);

/* ---- requests ------------------------------------------------------------ */

/* What a connector's classifier says of an answer (see am_http_classify_fn). */
typedef enum am_http_verdict {
    AM_HTTP_DEFAULT = 0,   /* the client's rules: 2xx ok; 429, 5xx retried; others fail */
    AM_HTTP_ACCEPT,        /* hand this answer to the caller as a success (AM_OK) */
    AM_HTTP_RETRY,         /* transient: back off and repeat the request */
    AM_HTTP_RATE_LIMITED,  /* a rate-limit answer: wait (*wait_s if set) and repeat */
    AM_HTTP_FAIL_LIMIT     /* a limit that waiting in this run cannot cure: AM_ELIMIT now */
} am_http_verdict;

typedef struct am_http_response am_http_response;

/*
 * Optional per-request hook, called for every answer that is not 2xx or
 * 3xx, before the client decides. It may read the status, headers and body
 * (am_http_response_header, am_http_error_json). Examples:
 * Bitrix24 503 {"error":"QUERY_LIMIT_EXCEEDED"} -> AM_HTTP_RATE_LIMITED;
 * amoCRM 429 {"retry_after": 300} -> AM_HTTP_RATE_LIMITED with *wait_s = 300
 * (capped by max_wait_one_s); Salesforce 403 REQUEST_LIMIT_EXCEEDED ->
 * AM_HTTP_FAIL_LIMIT. `wait_s` starts negative (no hint); a Retry-After
 * header is honoured without a classifier. `why` (may stay empty) is a short
 * reason put in the message when the client gives up ("REQUEST_LIMIT_EXCEEDED").
 */
typedef am_http_verdict (*am_http_classify_fn)(void *ctx, const am_http_response *resp,
                                               double *wait_s, char *why, size_t why_len);

typedef struct am_http_request {
    const char *method; /* "GET" (also when NULL), "POST", ... */
    /*
     * Absolute URL, or a reference resolved against the client's base URL
     * ("/api/v4/companies?page=2", "crm.company.list"). Either way the
     * result must be on one of the client's origins, or am_http_send fails
     * with AM_EHTTP before anything is sent (a next-page link on another
     * host is refused this way). Connectors build query strings themselves
     * (am_http_escape).
     */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    const char *body;           /* NULL: no body */
    size_t body_len;
    const char *content_type;   /* of `body`, e.g. "application/json" */
    const char *bearer;         /* "Authorization: Bearer <bearer>"; NULL: none */
    am_http_classify_fn classify; /* NULL: the client's rules only */
    void *classify_ctx;
} am_http_request;

struct am_http_response {
    long status;          /* HTTP status; 0 before an answer */
    char *content_type;   /* NULL when the answer had none */
    char *body;           /* always NUL-terminated after am_http_send returns an answer */
    size_t body_len;
    char *url_path;       /* path of the request, no query: for messages */
    unsigned attempts;    /* tries made for this request */
    double waited_s;      /* back-off waited for this request */
    void *priv_;          /* response headers; read with am_http_response_header */
};

/*
 * Send `rq`, following the rules of the client and of `rq->classify`:
 * network errors, 5xx, 429 and classifier RETRY/RATE_LIMITED answers are
 * repeated after an exponential back-off with jitter (or the Retry-After /
 * classifier hint), each wait capped by max_wait_one_s, until max_attempts
 * tries or the source's max_wait_s budget is spent. Every try first waits
 * for the source's request rate. Redirects are never followed.
 *
 * Returns AM_OK for a 2xx answer (or one the classifier ACCEPTs), *resp
 * filled. Otherwise an error whose one-line message names the label, the
 * method, the URL path (never the query, never a secret) and what to do:
 *   AM_EHTTP   the URL is on another origin (nothing sent); a 3xx (names
 *              only the Location's host); a 4xx other than 401/403; 5xx
 *              after the last try
 *   AM_EAUTH   401 or 403 (the caller may refresh its token and repeat)
 *   AM_ELIMIT  a rate limit past the tries or wait budget; FAIL_LIMIT;
 *              a body over max_body_bytes
 *   AM_ENET    connection or timeout failures after the last try
 * On AM_EAUTH, AM_EHTTP and AM_ELIMIT from an answer, *resp still holds
 * that answer (status, body) so the caller can read the CRM's error and
 * write a better message. `resp` must be zeroed ({0}) or hold the answer of
 * an earlier call, which is disposed first (so a loop may reuse one
 * response); call am_http_response_dispose on it when done.
 */
am_status am_http_send(am_http_response *resp, am_http *http, const am_http_request *rq,
                       am_error *err);

/* Value of a response header (case-insensitive name), borrowed until dispose; or NULL. */
const char *am_http_response_header(const am_http_response *resp, const char *name);

/* Free what `resp` holds and zero it. A zeroed response is a no-op. */
void am_http_response_dispose(am_http_response *resp);

/* True when the content type is JSON: application/json or any "+json" type. */
bool am_http_response_is_json(const am_http_response *resp);

/*
 * Parse the body of a successful answer as JSON (UTF-8 checked). *out is a
 * new reference (json_decref it). A body that is not JSON by content type
 * (an HTML page) is never parsed: AM_EINPUT "... answered text/html, not
 * JSON". A truncated or invalid body (invalid UTF-8 too): AM_EINPUT
 * `hubspot https://api.hubapi.com: GET /crm/v3/objects/companies: invalid
 * JSON at byte 1834 (premature end of input); the answer was cut off or is
 * damaged, run again`. An empty body (204) gives *out = NULL and AM_OK.
 */
am_status am_http_json(json_t **out, am_http *http, const am_http_response *resp,
                       am_error *err);

/*
 * The JSON error body of an answer, or NULL when it is not JSON or does
 * not parse (never fails; for classifiers and error messages). A new reference.
 */
json_t *am_http_error_json(const am_http_response *resp);

/* URL-encode `s` for a query value or form field; malloc'd, NULL on ENOMEM. */
char *am_http_escape(const char *s);

/*
 * Check that `url` (absolute or relative to the base) is on one of the
 * client's origins without sending anything: for a connector that wants
 * to refuse a next link early. AM_EHTTP with the same message am_http_send
 * would give.
 */
am_status am_http_check_url(am_http *http, const char *url, am_error *err);

/* ---- OAuth 2 refresh ----------------------------------------------------- */

/* How the token endpoint takes a refresh request. */
typedef enum am_http_oauth_style {
    AM_HTTP_OAUTH_FORM = 0, /* POST application/x-www-form-urlencoded (Salesforce) */
    AM_HTTP_OAUTH_JSON,     /* POST application/json (amoCRM) */
    AM_HTTP_OAUTH_QUERY     /* GET with the fields in the query (Bitrix24) */
} am_http_oauth_style;

typedef struct am_http_oauth_config {
    const char *token_url;     /* absolute; may be on another origin than the API */
    am_http_oauth_style style;
    const char *client_id;
    const char *client_secret; /* may be NULL (Salesforce without a secret) */
    const char *refresh_token; /* from refresh_token_env; NULL if none set */
    const char *access_token;  /* a starting access token, or NULL */
    /* Config field that named the refresh token, for messages ("refresh_token_env"). */
    const char *refresh_field;
    const char *refresh_var;   /* the variable's name, for messages ("SF_REFRESH_TOKEN") */
} am_http_oauth_config;

/*
 * Set up OAuth on the client. The token URL's origin is allowed for
 * requests without a bearer (the bearer is never sent there). A refresh
 * token saved by an earlier run (env->secrets->load of
 * "<source_key>.refresh_token") takes precedence over cfg->refresh_token,
 * because the one in the environment was rotated away. Every token is
 * registered as a secret. AM_ECONFIG when there is no refresh token at all;
 * AM_ESTORE from the keeper.
 */
am_status am_http_oauth_setup(am_http *http, const am_http_oauth_config *cfg, am_error *err);

/*
 * Ask the token endpoint for a new access token (grant_type=refresh_token,
 * refresh_token, client_id, client_secret). When the answer carries a new
 * refresh_token it is saved through env->secrets BEFORE it is used or
 * returned (a crash never loses the only valid token); a failed save fails
 * the refresh. Errors: AM_EAUTH on invalid_grant (or any 400/401):
 * `<label>: the refresh token was refused (invalid_grant); authorise
 * acctmap again and set <refresh_var>`; others as am_http_send.
 */
am_status am_http_oauth_refresh(am_http *http, am_error *err);

/*
 * am_http_send for an OAuth source whose token goes in the Authorization
 * header (Salesforce, amoCRM): sends `rq` with the current access token as
 * bearer (rq->bearer is ignored; when there is no access token yet, one
 * refresh comes first), and on a 401 refreshes once and repeats the request
 * with the new token. A 401 with a fresh token fails with AM_EAUTH; a
 * refused refresh as am_http_oauth_refresh. Otherwise as am_http_send.
 */
am_status am_http_send_oauth(am_http_response *resp, am_http *http, const am_http_request *rq,
                             am_error *err);

/* The current access token (NULL before the first refresh when none was given). */
const char *am_http_oauth_access_token(const am_http *http);
/* The instance_url of the last token answer (Salesforce), or NULL. */
const char *am_http_oauth_instance_url(const am_http *http);
/* How many refreshes this client made (tests: "exactly one refresh"). */
unsigned am_http_oauth_refresh_count(const am_http *http);

/* ---- progress ------------------------------------------------------------ */

/*
 * Count `records` more records read by the connector. When env->progress
 * is set, the client hands it one line to keep up to date:
 * "hubspot https://api.hubapi.com: 3 pages, 250 records, waited 2.0 s".
 * Quiet otherwise. Pages and waits are counted by the client itself.
 */
void am_http_progress(am_http *http, size_t records);

/* Totals of the client, for tests and the bench. */
typedef struct am_http_stats {
    size_t requests;   /* requests sent, retries included */
    size_t pages;      /* 2xx answers */
    size_t records;    /* sum of am_http_progress */
    size_t retries;    /* repeated tries */
    double waited_s;   /* back-off waited, all requests */
    double spaced_s;   /* waited for the request rate */
} am_http_stats;

void am_http_stats_get(am_http_stats *out, const am_http *http);

#endif
