/*
 * The shared HTTP client against the fake CRM server on loopback, replaying
 * the real fixtures of ../shared/fixtures-crm: retries and back-off within
 * bounds, the origin guard, redirects, JSON errors, the body ceiling, the
 * request rate, OAuth refresh with rotation saved before use, and secrets
 * scrubbed from every message.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acctmap.h"
#include "acctmap/store.h"
#include "connectors/http.h"
#include "helpers.h"
#include "tests/fake_crm.h"

/* What a test starts, stopped in teardown even when an assertion fails. */
static am_fake_crm *crm;
static am_fake_crm *other;
static am_http *http;
static am_store *store;
static am_http_response resp;

static char start_dir[1024];

static int setup(void **state)
{
    if (!getcwd(start_dir, sizeof(start_dir))) {
        return -1;
    }
    return am_test_sandbox_setup(state);
}

static int teardown(void **state)
{
    am_http_response_dispose(&resp);
    am_http_free(http);
    http = NULL;
    am_fake_crm_stop(crm);
    crm = NULL;
    am_fake_crm_stop(other);
    other = NULL;
    am_fake_crm_unmap_all();
    am_store_close(store);
    store = NULL;
    /* A test that changed directory and failed still leaves the root as it found it. */
    if (chdir(start_dir) != 0) {
        return -1;
    }
    return am_test_sandbox_teardown(state);
}

/* Like assert_int_equal on a status, but shows the error message (`err` in scope). */
#define assert_status(expr, want)                                                                  \
    do {                                                                                           \
        am_status rc_ = (expr);                                                                    \
        if (rc_ != (want)) {                                                                       \
            fail_msg("%s: %s instead of %s: %s", #expr, am_status_name(rc_), am_status_name(want), \
                     err.msg);                                                                     \
        }                                                                                          \
    } while (0)

#define HTTP_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void start_crm(const char *name, const char *scenario)
{
    am_error err = {0};

    if (am_fake_crm_start(&crm, name, scenario, &err) != AM_OK) {
        fail_msg("fake CRM %s/%s: %s", name, scenario, err.msg);
    }
}

/* Back-off caps that keep retry scenarios well under a second. */
static am_http_options fast_options(void)
{
    am_http_options opt;

    am_http_options_init(&opt, 0);
    opt.max_wait_one_s = 0.02;
    opt.max_wait_s = 1;
    opt.timeout_s = 10;
    return opt;
}

static void new_client(const char *url, const am_http_options *opt, const am_source_env *env)
{
    am_error err = {0};

    if (am_http_new(&http, url, opt, "test crm", env, &err) != AM_OK) {
        fail_msg("am_http_new: %s", err.msg);
    }
}

static void assert_check_clean(void)
{
    char *problems = am_fake_crm_check(crm);

    if (problems) {
        fprintf(stderr, "%s", problems);
        free(problems);
        fail_msg("the fake CRM saw unmatched requests or unused routes");
    }
}

static am_status get(const char *url, const char *bearer, am_error *err)
{
    am_http_request rq = {.method = "GET", .url = url, .bearer = bearer};

    am_http_response_dispose(&resp);
    return am_http_send(&resp, http, &rq, err);
}

/* Parse the last answer; the test fails on a parse error. */
static json_t *parsed(void)
{
    json_t *root = NULL;
    am_error err = {0};

    if (am_http_json(&root, http, &resp, &err) != AM_OK) {
        fail_msg("%s", err.msg);
    }
    return root;
}

/* ---- config -------------------------------------------------------------- */

static am_config *load_config(const char *source_fields, am_error *err)
{
    am_config *cfg = NULL;
    char text[2048];

    snprintf(text, sizeof(text),
             "{\"self\": \"acme\", \"store\": \"dir:./data\", \"orgs\": [{\"id\": \"acme\", "
             "\"sources\": [{\"type\": \"hubspot\"%s}]}, {\"id\": \"globex\", \"sources\": "
             "[{\"type\": \"csv\", \"path\": \"g.csv\"}]}]}",
             source_fields);
    if (am_config_parse(&cfg, text, strlen(text), "acctmap.json", "/base", err) != AM_OK) {
        return NULL;
    }
    return cfg;
}

static const am_source_config *first_source(const am_config *cfg)
{
    return &am_config_org_at(cfg, 0)->sources[0];
}

static void test_http__config_fields_and_defaults(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt;
    am_config *cfg =
        load_config(", \"base_url\": \"http://127.0.0.1:9/rest/\", \"timeout_s\": \"2.5\","
                    " \"max_wait_s\": \"0\", \"max_wait_one_s\": \"0.25\", \"max_attempts\": \"3\","
                    " \"requests_per_s\": \"0\", \"max_body_mb\": \"2\"",
                    &err);
    static const char *const fields[] = {"token_env", AM_HTTP_CONFIG_FIELDS, NULL};

    if (!cfg) {
        fail_msg("%s", err.msg);
    }
    assert_status(am_source_config_check_fields(first_source(cfg), fields, &err), AM_OK);
    am_http_options_init(&opt, 7);
    assert_true(opt.requests_per_s == 7);
    assert_int_equal(opt.max_attempts, 5);
    assert_status(am_http_config_read(&opt, first_source(cfg), &err), AM_OK);
    assert_string_equal(opt.base_url, "http://127.0.0.1:9/rest/");
    assert_true(opt.timeout_s == 2.5);
    assert_true(opt.max_wait_s == 0);
    assert_true(opt.max_wait_one_s == 0.25);
    assert_int_equal(opt.max_attempts, 3);
    assert_true(opt.requests_per_s == 0);
    assert_int_equal(opt.max_body_bytes, 2u << 20);
    assert_true(opt.connect_timeout_s == 10);
    am_config_free(cfg);

    /* JSON numbers are taken as well as strings holding them. */
    cfg = load_config(", \"timeout_s\": 2.5, \"max_attempts\": 4, \"requests_per_s\": 0.5", &err);
    assert_non_null(cfg);
    am_http_options_init(&opt, 7);
    assert_status(am_http_config_read(&opt, first_source(cfg), &err), AM_OK);
    assert_true(opt.timeout_s == 2.5);
    assert_int_equal(opt.max_attempts, 4);
    assert_true(opt.requests_per_s == 0.5);
    am_config_free(cfg);

    /* Each bad value names its field. */
    static const struct {
        const char *fields;
        const char *msg;
    } bad[] = {
        {", \"base_url\": \"ftp://x/\"",
         "acctmap.json: orgs[0].sources[0].base_url: \"ftp://x/\" is not an http or https URL"},
        {", \"timeout_s\": \"0\"", "acctmap.json: orgs[0].sources[0].timeout_s: \"0\" is not"},
        {", \"max_wait_s\": \"-1\"", "acctmap.json: orgs[0].sources[0].max_wait_s: \"-1\""},
        {", \"max_wait_one_s\": \"1s\"", "acctmap.json: orgs[0].sources[0].max_wait_one_s:"},
        {", \"max_attempts\": \"0\"",
         "acctmap.json: orgs[0].sources[0].max_attempts: \"0\" is not a whole number from 1 "
         "to 100"},
        {", \"max_body_mb\": \"lots\"", "acctmap.json: orgs[0].sources[0].max_body_mb:"},
        {", \"requests_per_s\": \"nan\"", "acctmap.json: orgs[0].sources[0].requests_per_s:"},
        {", \"max_attempts\": 2.5",
         "acctmap.json: orgs[0].sources[0].max_attempts: \"2.5\" is not a whole number"},
        {", \"timeout_s\": true", "acctmap.json: orgs[0].sources[0].timeout_s: expected a number"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg = load_config(bad[i].fields, &err);
        assert_non_null(cfg);
        am_http_options_init(&opt, 0);
        assert_status(am_http_config_read(&opt, first_source(cfg), &err), AM_ECONFIG);
        if (strncmp(err.msg, bad[i].msg, strlen(bad[i].msg)) != 0) {
            fail_msg("case %zu: %s", i, err.msg);
        }
        am_config_free(cfg);
    }
}

static void test_http__secret_from_the_named_variable(void **state)
{
    (void)state;
    am_error err = {0};
    char *value = NULL;
    am_config *cfg = load_config(", \"token_env\": \"AM_TEST_HTTP_TOKEN\"", &err);

    assert_non_null(cfg);
    unsetenv("AM_TEST_HTTP_TOKEN");
    assert_status(am_http_config_secret(&value, first_source(cfg), "token_env", true, &err),
                  AM_ECONFIG);
    assert_string_equal(err.msg, "acctmap.json: orgs[0].sources[0].token_env: environment "
                                 "variable AM_TEST_HTTP_TOKEN is not set or empty; export it "
                                 "before the run");
    setenv("AM_TEST_HTTP_TOKEN", "", 1);
    assert_status(am_http_config_secret(&value, first_source(cfg), "token_env", true, &err),
                  AM_ECONFIG);
    setenv("AM_TEST_HTTP_TOKEN", "pat-na1-secret-value", 1);
    assert_status(am_http_config_secret(&value, first_source(cfg), "token_env", true, &err), AM_OK);
    assert_string_equal(value, "pat-na1-secret-value");
    free(value);
    value = NULL;
    /* Absent and optional: no value, no error; absent and required: the field is named. */
    assert_status(
        am_http_config_secret(&value, first_source(cfg), "client_secret_env", false, &err), AM_OK);
    assert_null(value);
    assert_status(am_http_config_secret(&value, first_source(cfg), "client_secret_env", true, &err),
                  AM_ECONFIG);
    assert_non_null(strstr(err.msg, "client_secret_env"));
    unsetenv("AM_TEST_HTTP_TOKEN");
    am_config_free(cfg);
}

/* ---- paging, headers ----------------------------------------------------- */

static void test_http__pages_with_user_agent_gzip_and_bearer(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    json_t *root;
    const char *after;
    char url[256];
    am_http_stats st;

    start_crm("hubspot", "happy");
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    assert_status(get("/crm/v3/objects/companies?limit=5", "pat-test-token", &err), AM_OK);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.url_path, "/crm/v3/objects/companies");
    assert_true(am_http_response_is_json(&resp));
    assert_string_equal(am_http_response_header(&resp, "x-hubspot-ratelimit-max"), "100");
    root = parsed();
    assert_int_equal(json_array_size(json_object_get(root, "results")), 5);
    after = json_string_value(
        json_object_get(json_object_get(json_object_get(root, "paging"), "next"), "after"));
    assert_non_null(after);
    snprintf(url, sizeof(url), "/crm/v3/objects/companies?limit=5&after=%s", after);
    json_decref(root);
    assert_status(get(url, "pat-test-token", &err), AM_OK);
    root = parsed();
    assert_int_equal(json_array_size(json_object_get(root, "results")), 3);
    assert_null(json_object_get(root, "paging"));
    json_decref(root);
    assert_status(get("/crm/v3/objects/deals?associations=companies", "pat-test-token", &err),
                  AM_OK);
    am_http_progress(http, 13);
    am_http_stats_get(&st, http);
    assert_int_equal(st.pages, 3);
    assert_int_equal(st.requests, 3);
    assert_int_equal(st.records, 13);
    assert_int_equal(st.retries, 0);

    const am_fake_request *rq = am_fake_crm_request(crm, 0);
    assert_string_equal(am_fake_request_header(rq, "User-Agent"), "acctmap/" AM_VERSION);
    assert_string_equal(am_fake_request_header(rq, "Authorization"), "Bearer pat-test-token");
    assert_non_null(strstr(am_fake_request_header(rq, "Accept-Encoding"), "gzip"));
    assert_int_equal(am_fake_crm_request_count(crm), 3);
    assert_check_clean();
}

/* ---- retries ------------------------------------------------------------- */

static void test_http__429_retry_after_is_honoured(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    double t0;

    /* Retry-After: 1 under a 2 s cap: the client waits the full second. */
    start_crm("hubspot", "rate_limited_retry_after_then_ok");
    opt.max_wait_one_s = 2;
    opt.max_wait_s = 5;
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    t0 = now_s();
    assert_status(get("/crm/v3/objects/companies?limit=5", "t", &err), AM_OK);
    assert_true(now_s() - t0 >= 0.95);
    assert_true(now_s() - t0 < 3);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.attempts, 2);
    assert_true(resp.waited_s >= 0.99 && resp.waited_s <= 1.01);
    assert_int_equal(am_fake_crm_request(crm, 0)->status, 429);
    assert_int_equal(am_fake_crm_request(crm, 1)->status, 200);
    /* The rest of the flow, so that every route is used. */
    assert_status(get("/crm/v3/objects/companies?limit=5&after=9012345645", "t", &err), AM_OK);
    assert_status(get("/crm/v3/objects/deals?associations=companies", "t", &err), AM_OK);
    assert_check_clean();
}

static void test_http__429_wait_is_capped(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    double t0;

    /* The same answer with a 20 ms cap: one quick retry. */
    start_crm("hubspot", "rate_limited_retry_after_then_ok");
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    t0 = now_s();
    assert_status(get("/crm/v3/objects/companies?limit=5", "t", &err), AM_OK);
    assert_true(now_s() - t0 < 0.9);
    assert_int_equal(resp.attempts, 2);
    assert_true(fabs(resp.waited_s - 0.02) < 1e-9);
    assert_status(get("/crm/v3/objects/companies?after=9012345645", "t", &err), AM_OK);
    assert_status(get("/crm/v3/objects/deals?associations=companies", "t", &err), AM_OK);
    assert_check_clean();
}

static void test_http__502_html_then_ok_is_retried_not_parsed(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    json_t *root;

    start_crm("salesforce", "proxy_502_then_ok");
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    assert_status(get("/services/data/v62.0/query?q=SELECT+Id+FROM+Account", "t", &err), AM_OK);
    assert_int_equal(resp.attempts, 2);
    assert_int_equal(am_fake_crm_request(crm, 0)->status, 502);
    root = parsed();
    assert_false(json_is_true(json_object_get(root, "done")));
    assert_status(get(json_string_value(json_object_get(root, "nextRecordsUrl")), "t", &err),
                  AM_OK);
    json_decref(root);
    assert_status(get("/services/data/v62.0/query?q=SELECT+Id+FROM+Opportunity", "t", &err), AM_OK);
    assert_check_clean();
}

static void test_http__persistent_502_stops_after_max_attempts(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    json_t *root = NULL;

    start_crm("hubspot", "proxy_502_persistent");
    opt.max_attempts = 3;
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    assert_status(get("/crm/v3/objects/companies?limit=5", "t", &err), AM_EHTTP);
    assert_string_equal(err.msg,
                        "test crm: GET /crm/v3/objects/companies: HTTP 502 (text/html; "
                        "charset=UTF-8, not JSON) after 3 attempts (max_attempts reached); the "
                        "server or a proxy in front of it is failing, run later");
    assert_int_equal(am_fake_crm_request_count(crm), 3);
    /* The page is kept for the caller, and refused as JSON. */
    assert_int_equal(resp.status, 502);
    assert_non_null(strstr(resp.body, "<html"));
    assert_status(am_http_json(&root, http, &resp, &err), AM_EINPUT);
    assert_null(root);
    assert_string_equal(err.msg, "test crm: /crm/v3/objects/companies: answered text/html; "
                                 "charset=UTF-8, not JSON (HTTP 502); a proxy or an error page "
                                 "sits in front of the API, check base_url");
    assert_null(am_http_error_json(&resp));
    assert_check_clean();
}

static void test_http__persistent_502_bounded_by_the_wait_budget(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    am_http_stats st;
    double t0;

    start_crm("bitrix24", "proxy_502_persistent");
    opt.max_attempts = 100;
    opt.max_wait_one_s = 0.05;
    opt.max_wait_s = 0.2;
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    t0 = now_s();
    am_http_request rq = {.method = "POST",
                          .url = "/rest/1/k2x9q7w4e1r6t3y8/crm.company.list",
                          .body = "start=0",
                          .body_len = 7,
                          .content_type = "application/x-www-form-urlencoded"};
    assert_status(am_http_send(&resp, http, &rq, &err), AM_EHTTP);
    assert_true(now_s() - t0 < 3.0);
    assert_non_null(strstr(err.msg, "(the source's back-off budget max_wait_s reached)"));
    am_http_stats_get(&st, http);
    assert_true(st.waited_s <= 0.2 + 1e-9);
    /* Each wait is at least half of its step (25 ms here), so 4..9 tries fit in 0.2 s. */
    assert_true(am_fake_crm_request_count(crm) >= 4);
    assert_true(am_fake_crm_request_count(crm) <= 9);
    assert_int_equal(st.retries + 1, am_fake_crm_request_count(crm));
    assert_check_clean();
}

static void test_http__network_failure_is_retried_then_fails(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    char url[64];

    /* A port that was just listening and is closed now. */
    assert_status(am_fake_crm_start_other(&other, &err), AM_OK);
    snprintf(url, sizeof(url), "%s", am_fake_crm_origin(other));
    am_fake_crm_stop(other);
    other = NULL;
    opt.max_attempts = 2;
    new_client(url, &opt, NULL);
    assert_status(get("/api/v4/companies", "t", &err), AM_ENET);
    assert_non_null(strstr(err.msg, "test crm: GET /api/v4/companies: "));
    assert_non_null(strstr(err.msg, ", 2 attempts (max_attempts reached); check the address "
                                    "and the network, or run later"));
    assert_int_equal(resp.attempts, 2);
}

/* ---- classifiers --------------------------------------------------------- */

/* Bitrix24 and Salesforce answers, read the way their connectors read them. */
static am_http_verdict classify_crm(void *ctx, const am_http_response *r, double *wait_s, char *why,
                                    size_t why_len)
{
    json_t *body = am_http_error_json(r);
    am_http_verdict v = AM_HTTP_DEFAULT;
    unsigned *calls = ctx;

    (*calls)++;
    if (json_is_object(body)) {
        const char *code = json_string_value(json_object_get(body, "error"));
        json_t *after = json_object_get(body, "retry_after");
        if (code && strcmp(code, "QUERY_LIMIT_EXCEEDED") == 0) {
            snprintf(why, why_len, "%s", code);
            v = AM_HTTP_RATE_LIMITED;
        } else if (json_is_integer(after)) {
            *wait_s = (double)json_integer_value(after);
            v = AM_HTTP_RATE_LIMITED;
        }
    } else if (json_is_array(body)) {
        const char *code = json_string_value(json_object_get(json_array_get(body, 0), "errorCode"));
        if (code && strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0) {
            snprintf(why, why_len, "%s", code);
            v = AM_HTTP_FAIL_LIMIT;
        }
    }
    json_decref(body);
    return v;
}

static void test_http__classifier_limits(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    unsigned calls = 0;
    am_http_request rq = {.method = "GET",
                          .url = "/services/data/v62.0/query?q=SELECT+Id+FROM+Account",
                          .bearer = "t",
                          .classify = classify_crm,
                          .classify_ctx = &calls};

    /* Salesforce's daily allowance: fails at once with AM_ELIMIT, no retry. */
    start_crm("salesforce", "request_limit_exceeded");
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    assert_status(am_http_send(&resp, http, &rq, &err), AM_ELIMIT);
    assert_string_equal(err.msg, "test crm: GET /services/data/v62.0/query: HTTP 403 "
                                 "REQUEST_LIMIT_EXCEEDED: a limit that waiting in this run "
                                 "cannot lift; run again when the CRM's allowance resets");
    assert_int_equal(am_fake_crm_request_count(crm), 1);
    assert_int_equal(calls, 1);
    assert_check_clean();
}

static void test_http__classifier_rate_limits_bitrix24_and_amocrm(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    unsigned calls = 0;
    double t0;
    am_http_request rq = {.method = "POST",
                          .url = "/rest/1/k2x9q7w4e1r6t3y8/crm.company.list",
                          .body = "start=0",
                          .body_len = 7,
                          .content_type = "application/x-www-form-urlencoded",
                          .classify = classify_crm,
                          .classify_ctx = &calls};

    /* Bitrix24's 503 QUERY_LIMIT_EXCEEDED is a rate limit, retried. */
    start_crm("bitrix24", "rate_limited_then_ok");
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    assert_status(am_http_send(&resp, http, &rq, &err), AM_OK);
    assert_int_equal(resp.attempts, 2);
    assert_int_equal(calls, 1);
    rq.body = "start=50";
    rq.body_len = 8;
    assert_status(am_http_send(&resp, http, &rq, &err), AM_OK);
    am_http_response_dispose(&resp);
    rq.url = "/rest/1/k2x9q7w4e1r6t3y8/crm.deal.list";
    assert_status(am_http_send(&resp, http, &rq, &err), AM_OK);
    am_http_response_dispose(&resp);
    rq.url = "/rest/1/k2x9q7w4e1r6t3y8/crm.requisite.list";
    assert_status(am_http_send(&resp, http, &rq, &err), AM_OK);
    assert_check_clean();
    am_http_response_dispose(&resp);
    am_http_free(http);
    http = NULL;
    am_fake_crm_stop(crm);
    crm = NULL;

    /* amoCRM's 429 asks for 300 s in its body; the cap keeps the wait at 20 ms. */
    start_crm("amocrm", "rate_limited_then_ok");
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    am_http_request amo = {.url = "/api/v4/companies?limit=5",
                           .bearer = "t",
                           .classify = classify_crm,
                           .classify_ctx = &calls};
    t0 = now_s();
    assert_status(am_http_send(&resp, http, &amo, &err), AM_OK);
    assert_true(now_s() - t0 < 5.0);
    assert_true(fabs(resp.waited_s - 0.02) < 1e-9);
    assert_status(get("/api/v4/companies?limit=5&page=2", "t", &err), AM_OK);
    assert_status(get("/api/v4/companies?limit=5&page=3", "t", &err), AM_OK);
    assert_int_equal(resp.status, 204);
    assert_int_equal(resp.body_len, 0);
    assert_null(resp.content_type);
    assert_null(parsed());
    assert_status(get("/api/v4/leads", "t", &err), AM_OK);
    assert_check_clean();
}

/* ---- the origin guard ---------------------------------------------------- */

static void test_http__cross_host_next_link_is_refused(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    json_t *root;
    char link[512];

    start_crm("hubspot", "cross_host_next_link");
    assert_status(am_fake_crm_start_other(&other, &err), AM_OK);
    assert_status(am_fake_crm_map_host(other, "api.hubapi.com.mirror-cdn.example.net", 443, &err),
                  AM_OK);
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    assert_status(get("/crm/v3/objects/companies?limit=5", "pat-secret", &err), AM_OK);
    root = parsed();
    snprintf(link, sizeof(link), "%s",
             json_string_value(json_object_get(
                 json_object_get(json_object_get(root, "paging"), "next"), "link")));
    json_decref(root);
    assert_non_null(strstr(link, "https://api.hubapi.com.mirror-cdn.example.net/"));

    assert_status(am_http_check_url(http, link, &err), AM_EHTTP);
    assert_status(get(link, "pat-secret", &err), AM_EHTTP);
    char expected[512];
    snprintf(expected, sizeof(expected),
             "test crm: GET /crm/v3/objects/companies: refused a link to "
             "https://api.hubapi.com.mirror-cdn.example.net, which is not the source's own "
             "origin %s; nothing was sent there (check base_url, or report the CRM's answer)",
             am_fake_crm_origin(crm));
    assert_string_equal(err.msg, expected);
    /* The same host on another port or scheme is another origin too. */
    snprintf(link, sizeof(link), "http://127.0.0.1:%u/x", am_fake_crm_port(crm) + 1);
    assert_status(am_http_check_url(http, link, &err), AM_EHTTP);
    snprintf(link, sizeof(link), "https://127.0.0.1:%u/x", am_fake_crm_port(crm));
    assert_status(am_http_check_url(http, link, &err), AM_EHTTP);
    snprintf(link, sizeof(link), "HTTP://127.0.0.1:%u/crm/v3/x", am_fake_crm_port(crm));
    assert_status(am_http_check_url(http, link, &err), AM_OK);

    /* Continue on the own base with `after`, as the manifest expects. */
    assert_status(get("/crm/v3/objects/companies?limit=5&after=9012345645", "pat-secret", &err),
                  AM_OK);
    assert_status(get("/crm/v3/objects/deals?associations=companies", "pat-secret", &err), AM_OK);
    assert_check_clean();
    assert_int_equal(am_fake_crm_connection_count(other), 0);
    assert_int_equal(am_fake_crm_request_count(other), 0);
    am_http_free(http);
    http = NULL;

    /* The control: the mapping does reach the listener, so the zero above means something. */
    assert_status(am_fake_crm_map_host(other, "leak.example.net", 80, &err), AM_OK);
    new_client("http://leak.example.net/", &opt, NULL);
    assert_status(get("/probe", NULL, &err), AM_EHTTP);
    assert_int_equal(resp.status, 418);
    assert_int_equal(am_fake_crm_request_count(other), 1);
    assert_string_equal(am_fake_crm_request(other, 0)->path, "/probe");
}

/* The traps are https: the other-host listener counts a TLS attempt as a connection. */
static void test_http__other_host_listener_sees_a_tls_attempt(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();

    assert_status(am_fake_crm_start_other(&other, &err), AM_OK);
    assert_status(am_fake_crm_map_host(other, "tls-probe.example.net", 443, &err), AM_OK);
    opt.max_attempts = 1;
    opt.timeout_s = 5;
    new_client("https://tls-probe.example.net", &opt, NULL);
    assert_status(get("/x", "secret-bearer", &err), AM_ENET);
    assert_null(strstr(err.msg, "secret-bearer"));
    assert_true(am_fake_crm_connection_count(other) >= 1);
    assert_int_equal(am_fake_crm_request_count(other), 0);
}

static void test_http__amocrm_link_on_a_sibling_host_is_refused(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    json_t *root;
    const char *next;

    start_crm("amocrm", "cross_host_next_link");
    assert_status(am_fake_crm_start_other(&other, &err), AM_OK);
    assert_status(am_fake_crm_map_host(other, "other-account.amocrm.ru", 443, &err), AM_OK);
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    assert_status(get("/api/v4/companies?limit=5", "amo-token", &err), AM_OK);
    root = parsed();
    next = json_string_value(
        json_object_get(json_object_get(json_object_get(root, "_links"), "next"), "href"));
    assert_non_null(strstr(next, "https://other-account.amocrm.ru/"));
    assert_status(get(next, "amo-token", &err), AM_EHTTP);
    assert_non_null(strstr(err.msg, "refused a link to https://other-account.amocrm.ru, "));
    json_decref(root);
    assert_check_clean();
    assert_int_equal(am_fake_crm_connection_count(other), 0);
}

static void test_http__redirect_to_another_host_is_not_followed(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();

    start_crm("hubspot", "redirect_to_other_host");
    assert_status(am_fake_crm_start_other(&other, &err), AM_OK);
    assert_status(am_fake_crm_map_host(other, "api.hubapi.com.mirror-cdn.example.net", 443, &err),
                  AM_OK);
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    assert_status(get("/crm/v3/objects/companies?limit=5", "pat-secret", &err), AM_EHTTP);
    assert_string_equal(err.msg, "test crm: GET /crm/v3/objects/companies: HTTP 301 redirect "
                                 "to api.hubapi.com.mirror-cdn.example.net not followed; set "
                                 "base_url to the API's own address");
    assert_int_equal(am_fake_crm_request_count(crm), 1);
    assert_int_equal(am_fake_crm_connection_count(other), 0);
    assert_check_clean();
}

/* ---- bodies -------------------------------------------------------------- */

static size_t fixture_size(const char *crm_name, const char *file)
{
    char path[1024];
    size_t len = 0;
    char *body;

    snprintf(path, sizeof(path), "%s/%s/%s", am_fake_crm_fixtures_dir(), crm_name, file);
    body = am_test_read_file(path, &len);
    assert_non_null(body);
    free(body);
    return len;
}

static void test_http__truncated_json_names_path_and_byte(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    json_t *root = NULL;
    char expected[512];
    size_t len = fixture_size("salesforce", "accounts_page1_truncated.json");

    start_crm("salesforce", "malformed_body");
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    assert_status(get("/services/data/v62.0/query?q=SELECT+Id+FROM+Account", "t", &err), AM_OK);
    assert_status(am_http_json(&root, http, &resp, &err), AM_EINPUT);
    assert_null(root);
    /* The file stops inside a string: the error is at its very end; no query in the message. */
    snprintf(expected, sizeof(expected),
             "test crm: /services/data/v62.0/query: invalid JSON at byte %zu of %zu "
             "(premature end of input); the answer was cut off or is damaged, run again",
             len, len);
    assert_string_equal(err.msg, expected);
    assert_check_clean();
}

static void test_http__invalid_utf8_and_webhook_secret_scrubbed(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    json_t *root = NULL;
    char webhook[256];
    size_t len = fixture_size("bitrix24", "crm.company.list_start0_truncated.json");

    start_crm("bitrix24", "malformed_body");
    snprintf(webhook, sizeof(webhook), "%s/rest/1/k2x9q7w4e1r6t3y8/", am_fake_crm_origin(crm));
    assert_status(am_http_new(&http, webhook, &opt, "bitrix24 k2x9q7w4e1r6t3y8", NULL, &err),
                  AM_OK);
    assert_int_equal(am_http_add_secret(http, webhook), AM_OK);
    assert_int_equal(am_http_add_secret(http, "k2x9q7w4e1r6t3y8"), AM_OK);
    assert_string_equal(am_http_label(http), "bitrix24 ***");
    am_http_request rq = {.method = "POST",
                          .url = "crm.company.list",
                          .body = "start=0",
                          .body_len = 7,
                          .content_type = "application/x-www-form-urlencoded"};
    assert_status(am_http_send(&resp, http, &rq, &err), AM_OK);
    assert_string_equal(am_fake_crm_request(crm, 0)->path,
                        "/rest/1/k2x9q7w4e1r6t3y8/crm.company.list");
    assert_status(am_http_json(&root, http, &resp, &err), AM_EINPUT);
    assert_null(strstr(err.msg, "k2x9q7w4e1r6t3y8"));
    assert_non_null(strstr(err.msg, "bitrix24 ***: /rest/1/***/crm.company.list: invalid JSON "
                                    "at byte "));
    /* The last byte is half of a Cyrillic letter: the offset is before the end. */
    assert_non_null(strstr(err.msg, " of "));
    {
        unsigned at = 0;
        size_t total = 0;
        const char *p = strstr(err.msg, "at byte ");
        assert_int_equal(sscanf(p, "at byte %u of %zu", &at, &total), 2);
        assert_int_equal(total, len);
        assert_true(at <= len);
    }
    assert_check_clean();
}

/* A routes.json of our own in the sandbox: one repeating route with a body of `size` bytes. */
static void write_routes(const char *dir, size_t size, const char *extra_headers)
{
    char path[1024], routes[1024];
    char *body = malloc(size + 1);

    assert_non_null(body);
    body[0] = '[';
    memset(body + 1, ' ', size - 2);
    body[size - 1] = ']';
    body[size] = '\0';
    snprintf(path, sizeof(path), "%s/big.json", dir);
    am_test_write_file(path, body, size);
    free(body);
    snprintf(routes, sizeof(routes),
             "[{\"scenario\": \"s\", \"method\": \"GET\", \"path\": \"/big\", \"status\": 200,"
             " \"headers\": {\"Content-Type\": \"application/json\"%s}, \"body\": \"big.json\","
             " \"repeat\": true}]",
             extra_headers);
    snprintf(path, sizeof(path), "%s/routes.json", dir);
    am_test_write_file(path, routes, strlen(routes));
}

static void test_http__body_ceiling(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    json_t *root;

    write_routes(am_test_path(""), (3u << 20) / 2, "");
    assert_status(am_fake_crm_start_dir(&crm, am_test_path(""), "s", &err), AM_OK);
    opt.max_body_bytes = 2u << 20;
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    assert_status(get("/big", NULL, &err), AM_OK);
    assert_int_equal(resp.body_len, (3u << 20) / 2);
    root = parsed();
    assert_true(json_is_array(root));
    json_decref(root);
    am_http_free(http);
    http = NULL;

    opt.max_body_bytes = 1u << 20;
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    assert_status(get("/big", NULL, &err), AM_ELIMIT);
    assert_string_equal(err.msg, "test crm: GET /big: the answer is larger than the 1 MiB "
                                 "ceiling; raise max_body_mb or ask for smaller pages");
    /* Not retried: a bigger answer will not come smaller. */
    assert_int_equal(am_fake_crm_request_count(crm), 2);
    assert_check_clean();
}

static void test_http__gzip_answer_is_inflated(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    char cmd[1200];
    FILE *p;
    json_t *root;
    size_t len = 0;
    char *gz;

    write_routes(am_test_path(""), 100000, ", \"Content-Encoding\": \"gzip\"");
    snprintf(cmd, sizeof(cmd), "gzip -n -f '%s'", am_test_path("big.json"));
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(pclose(p), 0);
    gz = am_test_read_file(am_test_path("big.json.gz"), &len);
    assert_non_null(gz);
    assert_true(len < 5000);
    am_test_write_file(am_test_path("big.json"), gz, len);
    free(gz);
    assert_status(am_fake_crm_start_dir(&crm, am_test_path(""), NULL, &err), AM_OK);
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    assert_status(get("/big", NULL, &err), AM_OK);
    assert_int_equal(resp.body_len, 100000);
    root = parsed();
    assert_true(json_is_array(root));
    json_decref(root);
    assert_check_clean();
}

/* ---- the request rate ---------------------------------------------------- */

static void test_http__request_rate_spaces_requests(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    am_http_stats st;
    double t0, took;

    write_routes(am_test_path(""), 16, "");
    assert_status(am_fake_crm_start_dir(&crm, am_test_path(""), "s", &err), AM_OK);
    opt.requests_per_s = 20;
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    t0 = now_s();
    for (int i = 0; i < 6; i++) {
        assert_status(get("/big", NULL, &err), AM_OK);
    }
    took = now_s() - t0;
    /* Five gaps of 50 ms; loose bounds for a busy machine. */
    assert_true(took >= 0.24);
    assert_true(took < 2.0);
    am_http_stats_get(&st, http);
    assert_true(st.spaced_s > 0.15);
    assert_true(st.waited_s == 0);
    assert_check_clean();
}

/* ---- OAuth --------------------------------------------------------------- */

/* The real dir store as the secret keeper; each save notes how many requests the CRM had seen. */
static size_t requests_at_save;
static char saved_name[128];

static am_status keeper_load(void *ctx, const char *name, char **value_out, am_error *err)
{
    return am_store_secret_load(value_out, ctx, name, err);
}

static am_status keeper_save(void *ctx, const char *name, const char *value, am_error *err)
{
    requests_at_save = am_fake_crm_request_count(crm);
    snprintf(saved_name, sizeof(saved_name), "%s", name);
    return am_store_secret_save(ctx, name, value, err);
}

static am_status keeper_save_fails(void *ctx, const char *name, const char *value, am_error *err)
{
    (void)ctx;
    (void)name;
    (void)value;
    return am_error_set(err, AM_ESTORE, "dir:store: secrets/ is not writable");
}

static am_secret_keeper open_keeper(void)
{
    am_error err = {0};
    am_secret_keeper k = {0};

    if (am_store_open(&store, "dir:store", am_test_path(""), &err) != AM_OK ||
        am_store_init(store, &err) != AM_OK) {
        fail_msg("store: %s", err.msg);
    }
    k.ctx = store;
    k.load = keeper_load;
    k.save = keeper_save;
    return k;
}

static char *fixture_field(const char *crm_name, const char *file, const char *field)
{
    char path[1024];
    json_t *root;
    char *value;

    snprintf(path, sizeof(path), "%s/%s/%s", am_fake_crm_fixtures_dir(), crm_name, file);
    root = json_load_file(path, 0, NULL);
    assert_non_null(root);
    value = strdup(json_string_value(json_object_get(root, field)));
    json_decref(root);
    return value;
}

static void test_http__rotated_refresh_token_is_saved_before_use(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    am_secret_keeper keeper = open_keeper();
    am_source_env env = {.secrets = &keeper, .source_key = "globex.0"};
    char token_url[256];
    char *new_access = fixture_field("amocrm", "oauth_token_refresh.json", "access_token");
    char *new_refresh = fixture_field("amocrm", "oauth_token_refresh.json", "refresh_token");
    char *stored = NULL;

    start_crm("amocrm", "expired_token_then_refresh");
    new_client(am_fake_crm_origin(crm), &opt, &env);
    snprintf(token_url, sizeof(token_url), "%s/oauth2/access_token", am_fake_crm_origin(crm));
    am_http_oauth_config oc = {.token_url = token_url,
                               .style = AM_HTTP_OAUTH_JSON,
                               .client_id = "7d3e1b9a-client",
                               .client_secret = "amo-client-secret",
                               .refresh_token = "def50200-env-refresh",
                               .access_token = "expired-access",
                               .refresh_field = "refresh_token_env",
                               .refresh_var = "AMO_REFRESH_TOKEN"};
    assert_status(am_http_oauth_setup(http, &oc, &err), AM_OK);
    assert_string_equal(am_http_oauth_access_token(http), "expired-access");

    assert_status(get("/api/v4/companies?limit=5", am_http_oauth_access_token(http), &err),
                  AM_EAUTH);
    assert_int_equal(resp.status, 401);
    assert_null(strstr(err.msg, "expired-access"));
    assert_status(am_http_oauth_refresh(http, &err), AM_OK);
    assert_int_equal(am_http_oauth_refresh_count(http), 1);
    assert_string_equal(am_http_oauth_access_token(http), new_access);

    /* Saved when the CRM had seen the 401 and the refresh only: before any use. */
    assert_int_equal(requests_at_save, 2);
    assert_string_equal(saved_name, "globex.0.refresh_token");
    assert_status(am_store_secret_load(&stored, store, "globex.0.refresh_token", &err), AM_OK);
    assert_string_equal(stored, new_refresh);
    free(stored);

    /* The refresh request as amoCRM takes it: JSON with the four fields. */
    const am_fake_request *rq = am_fake_crm_request(crm, 1);
    char *v = am_fake_request_param(rq, "refresh_token", true);
    assert_string_equal(v, "def50200-env-refresh");
    free(v);
    v = am_fake_request_param(rq, "client_secret", true);
    assert_string_equal(v, "amo-client-secret");
    free(v);
    assert_null(am_fake_request_header(rq, "Authorization"));

    /* The new token opens every page; the manifest refuses the old one. */
    assert_status(get("/api/v4/companies?limit=5", am_http_oauth_access_token(http), &err), AM_OK);
    assert_status(get("/api/v4/companies?limit=5&page=2", am_http_oauth_access_token(http), &err),
                  AM_OK);
    assert_status(get("/api/v4/leads?limit=5", am_http_oauth_access_token(http), &err), AM_OK);
    assert_check_clean();

    /* Secrets are scrubbed from anything the client writes. */
    char msg[4096];
    snprintf(msg, sizeof(msg), "x %s y %s z amo-client-secret", new_access, new_refresh);
    am_http_scrub(http, msg, sizeof(msg));
    assert_string_equal(msg, "x *** y *** z ***");
    free(new_access);
    free(new_refresh);
}

static void test_http__saved_refresh_token_wins_and_rejection_asks_to_reauthorise(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    am_secret_keeper keeper = open_keeper();
    am_source_env env = {.secrets = &keeper, .source_key = "initech.1"};
    char token_url[256];
    char *v;

    assert_status(am_store_secret_save(store, "initech.1.refresh_token", "saved-refresh", &err),
                  AM_OK);
    start_crm("amocrm", "expired_token_refresh_rejected");
    new_client(am_fake_crm_origin(crm), &opt, &env);
    snprintf(token_url, sizeof(token_url), "%s/oauth2/access_token", am_fake_crm_origin(crm));
    am_http_oauth_config oc = {.token_url = token_url,
                               .style = AM_HTTP_OAUTH_JSON,
                               .client_id = "cid",
                               .client_secret = "amo-client-secret",
                               .refresh_token = "env-refresh",
                               .access_token = "old-access",
                               .refresh_var = "AMO_REFRESH_TOKEN"};
    assert_status(am_http_oauth_setup(http, &oc, &err), AM_OK);
    assert_status(get("/api/v4/companies", "old-access", &err), AM_EAUTH);
    assert_status(am_http_oauth_refresh(http, &err), AM_EAUTH);
    assert_string_equal(err.msg, "test crm: the refresh token was refused (Token has been "
                                 "revoked); authorise acctmap again and set AMO_REFRESH_TOKEN, "
                                 "then delete the token the store saved as "
                                 "initech.1.refresh_token (dir: store: "
                                 "secrets/initech.1.refresh_token)");
    assert_null(strstr(err.msg, "saved-refresh"));
    assert_null(strstr(err.msg, "amo-client-secret"));
    v = am_fake_request_param(am_fake_crm_request(crm, 1), "refresh_token", true);
    assert_string_equal(v, "saved-refresh");
    free(v);
    assert_int_equal(am_fake_crm_request_count(crm), 2);
    assert_int_equal(am_http_oauth_refresh_count(http), 1);
    assert_check_clean();
}

static void test_http__salesforce_form_refresh_gives_instance_url(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    char token_url[256];
    char *new_access = fixture_field("salesforce", "oauth_token_refresh.json", "access_token");
    const char *q = "/services/data/v62.0/query?q=SELECT+Id+FROM+";

    start_crm("salesforce", "expired_token_then_refresh");
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    snprintf(token_url, sizeof(token_url), "%s/services/oauth2/token", am_fake_crm_origin(crm));
    am_http_oauth_config oc = {.token_url = token_url,
                               .style = AM_HTTP_OAUTH_FORM,
                               .client_id = "3MVG9-client",
                               .client_secret = "sf-secret",
                               .refresh_token = "5Aep-refresh",
                               .access_token = "stale",
                               .refresh_var = "SF_REFRESH_TOKEN"};
    assert_status(am_http_oauth_setup(http, &oc, &err), AM_OK);
    char url[256];
    snprintf(url, sizeof(url), "%sAccount", q);
    assert_status(get(url, am_http_oauth_access_token(http), &err), AM_EAUTH);
    assert_status(am_http_oauth_refresh(http, &err), AM_OK);
    assert_string_equal(am_http_oauth_access_token(http), new_access);
    /* Salesforce names the instance; the fake server put its own origin there. */
    assert_string_equal(am_http_oauth_instance_url(http), am_fake_crm_origin(crm));
    assert_status(am_http_rebind(http, am_http_oauth_instance_url(http), &err), AM_OK);
    const am_fake_request *rq = am_fake_crm_request(crm, 1);
    assert_non_null(
        strstr(am_fake_request_header(rq, "Content-Type"), "application/x-www-form-urlencoded"));
    char *v = am_fake_request_param(rq, "grant_type", true);
    assert_string_equal(v, "refresh_token");
    free(v);
    assert_status(get(url, am_http_oauth_access_token(http), &err), AM_OK);
    json_t *root = parsed();
    assert_status(get(json_string_value(json_object_get(root, "nextRecordsUrl")),
                      am_http_oauth_access_token(http), &err),
                  AM_OK);
    json_decref(root);
    snprintf(url, sizeof(url), "%sOpportunity", q);
    assert_status(get(url, am_http_oauth_access_token(http), &err), AM_OK);
    assert_check_clean();
    free(new_access);
}

static void test_http__send_oauth_refreshes_once_on_401(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    am_secret_keeper keeper = open_keeper();
    am_source_env env = {.secrets = &keeper, .source_key = "globex.0"};
    char token_url[256];
    char *new_access = fixture_field("amocrm", "oauth_token_refresh.json", "access_token");
    static const char *const pages[] = {
        "/api/v4/companies?limit=5", "/api/v4/companies?limit=5&page=2", "/api/v4/leads?limit=5"};

    start_crm("amocrm", "expired_token_then_refresh");
    new_client(am_fake_crm_origin(crm), &opt, &env);
    snprintf(token_url, sizeof(token_url), "%s/oauth2/access_token", am_fake_crm_origin(crm));
    am_http_oauth_config oc = {.token_url = token_url,
                               .style = AM_HTTP_OAUTH_JSON,
                               .client_id = "cid",
                               .client_secret = "cs",
                               .refresh_token = "env-refresh",
                               .access_token = "expired",
                               .refresh_var = "AMO_REFRESH_TOKEN"};
    assert_status(am_http_oauth_setup(http, &oc, &err), AM_OK);
    for (size_t i = 0; i < 3; i++) {
        am_http_request rq = {.url = pages[i], .bearer = "ignored"};
        assert_status(am_http_send_oauth(&resp, http, &rq, &err), AM_OK);
    }
    assert_int_equal(am_http_oauth_refresh_count(http), 1);
    assert_string_equal(am_http_oauth_access_token(http), new_access);
    assert_int_equal(am_fake_crm_request_count(crm), 5);
    assert_check_clean();
    free(new_access);
    am_http_free(http);
    http = NULL;
    am_fake_crm_stop(crm);
    crm = NULL;

    /* No access token at all: the refresh comes first (Salesforce's happy path). */
    start_crm("salesforce", "happy");
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    snprintf(token_url, sizeof(token_url), "%s/services/oauth2/token", am_fake_crm_origin(crm));
    am_http_oauth_config sf = {.token_url = token_url,
                               .style = AM_HTTP_OAUTH_FORM,
                               .client_id = "cid",
                               .refresh_token = "sf-refresh",
                               .refresh_var = "SF_REFRESH_TOKEN"};
    assert_status(am_http_oauth_setup(http, &sf, &err), AM_OK);
    am_http_request rq = {.url = "/services/data/v62.0/query?q=SELECT+Id+FROM+Account"};
    assert_status(am_http_send_oauth(&resp, http, &rq, &err), AM_OK);
    json_t *root = parsed();
    am_http_request next = {.url = json_string_value(json_object_get(root, "nextRecordsUrl"))};
    assert_status(am_http_send_oauth(&resp, http, &next, &err), AM_OK);
    json_decref(root);
    rq.url = "/services/data/v62.0/query?q=SELECT+Id+FROM+Opportunity";
    assert_status(am_http_send_oauth(&resp, http, &rq, &err), AM_OK);
    assert_int_equal(am_http_oauth_refresh_count(http), 1);
    assert_string_equal(am_fake_crm_request(crm, 0)->path, "/services/oauth2/token");
    assert_int_equal(am_fake_crm_request_count(crm), 4);
    assert_check_clean();
    am_http_free(http);
    http = NULL;
    am_fake_crm_stop(crm);
    crm = NULL;

    /* A 401, then a refused refresh: exactly one refresh, one clear line. */
    start_crm("salesforce", "expired_token_refresh_rejected");
    new_client(am_fake_crm_origin(crm), &opt, NULL);
    snprintf(token_url, sizeof(token_url), "%s/services/oauth2/token", am_fake_crm_origin(crm));
    sf.access_token = "stale";
    assert_status(am_http_oauth_setup(http, &sf, &err), AM_OK);
    rq.url = "/services/data/v62.0/query?q=SELECT+Id+FROM+Account";
    assert_status(am_http_send_oauth(&resp, http, &rq, &err), AM_EAUTH);
    assert_string_equal(err.msg, "test crm: the refresh token was refused (invalid_grant); "
                                 "authorise acctmap again and set SF_REFRESH_TOKEN");
    assert_int_equal(am_http_oauth_refresh_count(http), 1);
    assert_int_equal(am_fake_crm_request_count(crm), 2);
    assert_check_clean();
}

static void test_http__bitrix24_query_refresh_and_failed_save(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    am_secret_keeper keeper = open_keeper();
    am_source_env env = {.secrets = &keeper, .source_key = "romashka.0"};
    char base[256], token_url[256];
    char *new_access = fixture_field("bitrix24", "oauth_token_refresh.json", "access_token");
    char body[512];

    start_crm("bitrix24", "expired_token_then_refresh");
    snprintf(base, sizeof(base), "%s/rest/", am_fake_crm_origin(crm));
    snprintf(token_url, sizeof(token_url), "%s/oauth/token/", am_fake_crm_origin(crm));
    /* A keeper that cannot save: the refresh fails and the new token is not used. */
    keeper.save = keeper_save_fails;
    new_client(base, &opt, &env);
    am_http_oauth_config oc = {.token_url = token_url,
                               .style = AM_HTTP_OAUTH_QUERY,
                               .client_id = "local.b24",
                               .client_secret = "b24-secret",
                               .refresh_token = "b24-refresh",
                               .access_token = "b24-old",
                               .refresh_var = "B24_REFRESH_TOKEN"};
    assert_status(am_http_oauth_setup(http, &oc, &err), AM_OK);
    am_http_request rq = {.method = "POST",
                          .url = "crm.company.list",
                          .body = "auth=b24-old",
                          .body_len = 12,
                          .content_type = "application/x-www-form-urlencoded"};
    assert_status(am_http_send(&resp, http, &rq, &err), AM_EAUTH);
    assert_status(am_http_oauth_refresh(http, &err), AM_ESTORE);
    assert_string_equal(err.msg, "test crm: the new refresh token could not be saved (dir:store: "
                                 "secrets/ is not writable); fix the store, then authorise "
                                 "acctmap again and set B24_REFRESH_TOKEN");
    assert_string_equal(am_http_oauth_access_token(http), "b24-old");
    /* The token request went as a GET with its fields in the query. */
    const am_fake_request *tq = am_fake_crm_request(crm, 1);
    assert_string_equal(tq->method, "GET");
    char *v = am_fake_request_param(tq, "client_secret", false);
    assert_string_equal(v, "b24-secret");
    free(v);

    /* The flow still completes with the token in memory once saving works. */
    keeper.save = keeper_save;
    am_http_free(http);
    http = NULL;
    am_fake_crm_stop(crm);
    crm = NULL;
    start_crm("bitrix24", "expired_token_then_refresh");
    snprintf(base, sizeof(base), "%s/rest/", am_fake_crm_origin(crm));
    snprintf(token_url, sizeof(token_url), "%s/oauth/token/", am_fake_crm_origin(crm));
    new_client(base, &opt, &env);
    assert_status(am_http_oauth_setup(http, &oc, &err), AM_OK);
    am_http_response_dispose(&resp);
    assert_status(am_http_send(&resp, http, &rq, &err), AM_EAUTH);
    assert_status(am_http_oauth_refresh(http, &err), AM_OK);
    assert_string_equal(am_http_oauth_access_token(http), new_access);
    static const char *const methods[] = {"crm.company.list", "crm.company.list", "crm.deal.list",
                                          "crm.requisite.list"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(body, sizeof(body), "auth=%s%s", new_access, i == 1 ? "&start=50" : "");
        rq.url = methods[i];
        rq.body = body;
        rq.body_len = strlen(body);
        am_http_response_dispose(&resp);
        assert_status(am_http_send(&resp, http, &rq, &err), AM_OK);
    }
    assert_check_clean();
    free(new_access);
}

static void test_http__progress_lines_name_the_source_not_its_secret(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    char *text = NULL;
    am_source_env env = {.progress = am_test_progress_collect, .progress_ctx = &text};

    write_routes(am_test_path(""), 16, "");
    assert_status(am_fake_crm_start_dir(&crm, am_test_path(""), "s", &err), AM_OK);
    new_client(am_fake_crm_origin(crm), &opt, &env);
    am_http_add_secret(http, "hidden-token");
    assert_status(get("/big", "hidden-token", &err), AM_OK);
    am_http_progress(http, 7);
    am_http_free(http);
    http = NULL;
    assert_non_null(text);
    /* The last line, when the source is done, holds the totals; no secret anywhere. */
    assert_non_null(strstr(text, "test crm: 1 pages, 7 records, waited 0.0 s\n"));
    assert_null(strstr(text, "hidden-token"));
    free(text);
    assert_check_clean();
}

/* ---- the fake server's own rules (fixtures-crm/README.md) ---------------- */

/* The fixtures are found from the sandbox too (a test that changed directory). */
static void test_http__fake_crm_finds_the_fixtures_from_elsewhere(void **state)
{
    (void)state;
    am_error err = {0};
    char here[1024], from_root[1024];

    snprintf(from_root, sizeof(from_root), "%s", am_fake_crm_fixtures_dir());
    assert_non_null(getcwd(here, sizeof(here)));
    assert_int_equal(chdir(am_test_path("")), 0);
    /* Found through the binary's folders: the same place as from the root. */
    assert_string_equal(am_fake_crm_fixtures_dir(), from_root);
    assert_status(am_fake_crm_start(&crm, "hubspot", "empty", &err), AM_OK);
    assert_int_equal(chdir(here), 0);
    assert_string_equal(am_fake_crm_fixtures_dir(), from_root);
}

static void test_http__fake_crm_follows_the_manifest_rules(void **state)
{
    (void)state;
    am_error err = {0};
    am_http_options opt = fast_options();
    char *problems;
    json_t *root;
    const char *routes =
        "[{\"scenario\": \"s\", \"method\": \"GET\", \"path\": \"/a/*/c\","
        "  \"query\": {\"x\": [null, \"1\"], \"y\": \"a*z\"},"
        "  \"headers_required\": {\"x-key\": \"k*\"}, \"status\": 200,"
        "  \"headers\": {\"Content-Type\": \"application/json\"}, \"body\": \"o.json\","
        "  \"replace_origin\": \"https://crm.example\"},"
        " {\"scenario\": \"s\", \"method\": \"POST\", \"path\": \"/p\","
        "  \"body_required\": {\"n\": \"50\", \"gone\": null}, \"status\": 204,"
        "  \"headers\": {}, \"body\": null, \"repeat\": true},"
        " {\"scenario\": \"s\", \"method\": \"GET\", \"path\": \"/never\", \"status\": 200,"
        "  \"headers\": {}, \"body\": null, \"optional\": true},"
        " {\"scenario\": \"s\", \"method\": \"GET\", \"path\": \"/required\", \"status\": 200,"
        "  \"headers\": {}, \"body\": null},"
        " {\"scenario\": \"other\", \"method\": \"GET\", \"path\": \"/a/b/c\", \"status\": 500,"
        "  \"headers\": {}, \"body\": null}]";
    const char *body = "{\"a\": \"https://crm.example/x\", \"b\": \"https://crm.example.evil/\","
                       " \"c\": \"https://crm.example:8443/\", \"d\": \"https://crm.example\"}";

    am_test_write_file(am_test_path("routes.json"), routes, strlen(routes));
    am_test_write_file(am_test_path("o.json"), body, strlen(body));
    assert_status(am_fake_crm_start_dir(&crm, am_test_path(""), "s", &err), AM_OK);
    new_client(am_fake_crm_origin(crm), &opt, NULL);

    /* Query decoded ('+' is a space, %7A a 'z'), a header name in any case, `*` one segment. */
    am_http_request rq = {.url = "/a/any/c?y=a+b%7A&other=1",
                          .headers = (const char *const[]){"X-KEY: k1", NULL}};
    assert_status(am_http_send(&resp, http, &rq, &err), AM_OK);
    root = parsed();
    char want[128];
    snprintf(want, sizeof(want), "%s/x", am_fake_crm_origin(crm));
    assert_string_equal(json_string_value(json_object_get(root, "a")), want);
    assert_string_equal(json_string_value(json_object_get(root, "b")), "https://crm.example.evil/");
    assert_string_equal(json_string_value(json_object_get(root, "c")), "https://crm.example:8443/");
    assert_string_equal(json_string_value(json_object_get(root, "d")), am_fake_crm_origin(crm));
    json_decref(root);
    /* Used once: the same request now goes unmatched, gets 404 and is recorded. */
    assert_status(am_http_send(&resp, http, &rq, &err), AM_EHTTP);
    assert_int_equal(resp.status, 404);
    /* x=2 is not among the alternatives; an empty segment does not match `*`. */
    rq.url = "/a/b/c?y=az&x=2";
    assert_status(am_http_send(&resp, http, &rq, &err), AM_EHTTP);
    rq.url = "/a//c?y=az";
    assert_status(am_http_send(&resp, http, &rq, &err), AM_EHTTP);

    /* JSON scalars compare as text (50 matches "50"); `null` wants the field absent. */
    am_http_request post = {.method = "POST",
                            .url = "/p",
                            .body = "{\"n\": 50}",
                            .body_len = 9,
                            .content_type = "application/json"};
    assert_status(am_http_send(&resp, http, &post, &err), AM_OK);
    assert_int_equal(resp.status, 204);
    assert_null(resp.content_type);
    assert_int_equal(resp.body_len, 0);
    post.body = "n=50";
    post.body_len = 4;
    post.content_type = "application/x-www-form-urlencoded";
    assert_status(am_http_send(&resp, http, &post, &err), AM_OK); /* repeat */
    post.body = "n=50&gone=1";
    post.body_len = 11;
    assert_status(am_http_send(&resp, http, &post, &err), AM_EHTTP);

    assert_int_equal(am_fake_crm_request_count(crm), 7);
    assert_int_equal(am_fake_crm_request(crm, 0)->route, 0);
    assert_int_equal(am_fake_crm_request(crm, 1)->route, -1);
    assert_int_equal(am_fake_crm_request(crm, 1)->status, 404);
    assert_int_equal(am_fake_crm_route_uses(crm, 1), 2);
    assert_string_equal(am_fake_crm_request(crm, 0)->query, "y=a+b%7A&other=1");
    char *v = am_fake_request_param(am_fake_crm_request(crm, 0), "y", false);
    assert_string_equal(v, "a bz");
    free(v);

    problems = am_fake_crm_check(crm);
    assert_non_null(problems);
    assert_string_equal(problems, "unmatched request: GET /a/any/c?y=a+b%7A&other=1\n"
                                  "unmatched request: GET /a/b/c?y=az&x=2\n"
                                  "unmatched request: GET /a//c?y=az\n"
                                  "unmatched request: POST /p\n"
                                  "unused route 3: GET /required (status 200)\n");
    free(problems);

    /* A scenario with no routes, and a missing folder, are refused clearly. */
    am_fake_crm *none = NULL;
    assert_status(am_fake_crm_start_dir(&none, am_test_path(""), "nope", &err), AM_ENOTFOUND);
    assert_null(none);
    assert_status(am_fake_crm_start_dir(&none, am_test_path("missing"), "s", &err), AM_EIO);
    assert_null(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        HTTP_TEST(test_http__config_fields_and_defaults),
        HTTP_TEST(test_http__secret_from_the_named_variable),
        HTTP_TEST(test_http__pages_with_user_agent_gzip_and_bearer),
        HTTP_TEST(test_http__429_retry_after_is_honoured),
        HTTP_TEST(test_http__429_wait_is_capped),
        HTTP_TEST(test_http__502_html_then_ok_is_retried_not_parsed),
        HTTP_TEST(test_http__persistent_502_stops_after_max_attempts),
        HTTP_TEST(test_http__persistent_502_bounded_by_the_wait_budget),
        HTTP_TEST(test_http__network_failure_is_retried_then_fails),
        HTTP_TEST(test_http__classifier_limits),
        HTTP_TEST(test_http__classifier_rate_limits_bitrix24_and_amocrm),
        HTTP_TEST(test_http__cross_host_next_link_is_refused),
        HTTP_TEST(test_http__other_host_listener_sees_a_tls_attempt),
        HTTP_TEST(test_http__amocrm_link_on_a_sibling_host_is_refused),
        HTTP_TEST(test_http__redirect_to_another_host_is_not_followed),
        HTTP_TEST(test_http__truncated_json_names_path_and_byte),
        HTTP_TEST(test_http__invalid_utf8_and_webhook_secret_scrubbed),
        HTTP_TEST(test_http__body_ceiling),
        HTTP_TEST(test_http__gzip_answer_is_inflated),
        HTTP_TEST(test_http__request_rate_spaces_requests),
        HTTP_TEST(test_http__rotated_refresh_token_is_saved_before_use),
        HTTP_TEST(test_http__saved_refresh_token_wins_and_rejection_asks_to_reauthorise),
        HTTP_TEST(test_http__salesforce_form_refresh_gives_instance_url),
        HTTP_TEST(test_http__send_oauth_refreshes_once_on_401),
        HTTP_TEST(test_http__bitrix24_query_refresh_and_failed_save),
        HTTP_TEST(test_http__progress_lines_name_the_source_not_its_secret),
        HTTP_TEST(test_http__fake_crm_follows_the_manifest_rules),
        HTTP_TEST(test_http__fake_crm_finds_the_fixtures_from_elsewhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
