/*
 * Tests of the Salesforce connector (connectors/salesforce.c): its parsing of
 * the fixture bodies of ../shared/fixtures-crm/salesforce directly, then every
 * scenario of routes.json pulled over real HTTP from the fake CRM server.
 * The connector's file is included so that its static parsers can be fed
 * the bodies; the test's copy of am_connector_salesforce is the one linked.
 */
#include "helpers.h"

#include "tests/fake_crm.h"

#include "../connectors/salesforce.c"

#define TOKEN_VAR "AM_TEST_SF_TOKEN"
#define REFRESH_VAR "AM_TEST_SF_REFRESH"
#define SECRET_VAR "AM_TEST_SF_SECRET"
#define STALE_TOKEN "00Dstale!AQ8AQtest-token-that-expired"
#define REFRESH_TOKEN "5Aep861test.refresh.token.value"
#define CLIENT_SECRET "C0nsumerSecretForTests"
#define NEW_TOKEN                                                                                  \
    "00DRO000000AbCd2AK!AQ8AQFake.TokenForTests.Only_qW3rT5yU7iO9pA1sD3fG5hJ7kL9zX1cV3bN5mQ"

#define NORTHWIND "001RO000004xQmZYAU"
#define GLOBEX "001RO000004xQn3YAE"
#define INITECH "001RO000004xQnDYAU"
#define ACME "001RO000005Ab1cYAC"
#define ROMASHKA "001RO000005Ab2HYAS"
#define VANDELAY "001RO000005Ab2qYAC"
#define STARK "001RO000006KwPeYAK"

/* What a source gave, kept out of its batches (tests/helpers.h). */
typedef am_test_record test_record;
typedef am_test_pull pull_result;

/*
 * A config whose self org "acme" reads the Salesforce source `source` (the
 * JSON object's members after "type"), and a partner with a CSV source.
 */
static am_config *load_config(const char *source)
{
    am_config *cfg = NULL;
    am_error err;
    char *json = NULL;
    size_t len = strlen(source) + 512;
    int n;

    am_error_clear(&err);
    json = malloc(len);
    assert_non_null(json);
    n = snprintf(json, len,
                 "{\"self\":\"acme\",\"store\":\"dir:./data\",\"orgs\":[{\"id\":\"acme\","
                 "\"sources\":[{\"type\":\"salesforce\"%s%s}]},{\"id\":\"globex\",\"sources\":"
                 "[{\"type\":\"csv\",\"path\":\"globex.csv\"}]}]}",
                 source[0] ? "," : "", source);
    assert_true(n > 0 && (size_t)n < len);
    if (am_config_parse(&cfg, json, (size_t)n, "acctmap.json", ".", &err)) {
        fail_msg("config: %s", err.msg);
    }
    free(json);
    return cfg;
}

static const am_source_config *source_config(const am_config *cfg)
{
    return &am_config_org_at(cfg, 0)->sources[0];
}

/* ---- parsing the fixture bodies directly ------------------------------------ */

static json_t *fixture_json(const char *name)
{
    char path[1024];
    json_error_t jerr;
    json_t *root;

    snprintf(path, sizeof(path), "%s/salesforce/%s", am_fake_crm_fixtures_dir(), name);
    root = json_load_file(path, 0, &jerr);
    if (!root) {
        fail_msg("%s: %s", path, jerr.text);
    }
    return root;
}

/* A source with no client: only the parsers and the population rules are used. */
static sf_source *offline_source(const am_config *cfg)
{
    sf_source *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    s->base.ops = &am_connector_salesforce;
    s->base.cfg = source_config(cfg);
    am_arena_init(&s->arena);
    snprintf(s->where, sizeof(s->where), "salesforce https://acme.my.salesforce.com");
    return s;
}

/* Feed body files of one query; returns the next-page URL of the last one (or NULL). */
static void feed(sf_source *s, bool accounts, const char *const *names)
{
    uint32_t rows = 0;
    am_error err;

    am_error_clear(&err);
    if (!accounts) {
        assert_int_equal(index_accounts(s, &err), AM_OK);
    }
    for (; *names; names++) {
        json_t *root = fixture_json(*names);
        char *next = NULL;
        am_status rc = parse_page(s, root, accounts, &rows, &next, "test page", &err);

        if (rc) {
            fail_msg("%s: %s", *names, err.msg);
        }
        /* Only a page that says it is not done names the next one. */
        if (json_is_true(json_object_get(root, "done"))) {
            assert_null(next);
        } else {
            assert_string_equal(next, "/services/data/v62.0/query/01gRO0000016QxYYA2-4");
        }
        free(next);
        json_decref(root);
    }
}

/* Emit what an offline source holds through next_batch, as a run reads it. */
static void drain(pull_result *r, sf_source *s)
{
    am_record_batch batch;
    am_error err;

    am_record_batch_init(&batch);
    am_error_clear(&err);
    s->pulled = true;
    for (;;) {
        r->rc = sf_next_batch(&s->base, &batch, &err);
        if (r->rc) {
            snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
            break;
        }
        if (batch.count == 0 && batch.reject_count == 0) {
            break;
        }
        am_test_pull_keep_batch(r, &batch, AM_TEST_NO_TAX_ID);
    }
    am_record_batch_dispose(&batch);
}

static void test_salesforce__bodies_to_records(void **state)
{
    static const char *const account_pages[] = {"accounts_page1.json", "accounts_page2.json", NULL};
    static const char *const opportunity_pages[] = {"opportunities.json", NULL};
    am_config *cfg = load_config("\"instance_url\":\"https://acme.my.salesforce.com\","
                                 "\"token_env\":\"X\"");
    sf_source *s = offline_source(cfg);
    pull_result r = {0};
    const test_record *t;

    (void)state;
    feed(s, true, account_pages);
    feed(s, false, opportunity_pages);
    /* The opportunity without an Account is counted, not attached to anyone. */
    assert_int_equal(s->deals_unmatched, 1);
    drain(&r, s);
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 7);
    assert_int_equal(r.reject_count, 0);

    t = am_test_pull_find(&r, NORTHWIND);
    assert_string_equal(t->name, "Northwind Traders Ltd");
    assert_string_equal(t->domain, "https://www.northwindtraders.com/");
    assert_string_equal(t->country, "United States");
    assert_string_equal(t->owner, "005RO000001bKqAYAU");
    /* 4.8E7 exactly, in cents. */
    assert_true(t->has_amount);
    assert_int_equal(t->amount_cents, INT64_C(4800000000));
    /* Customer - Direct, one won and one open opportunity. */
    assert_int_equal(t->populations, CUSTOMERS | OPPORTUNITIES);

    /* Type says Prospect, but it has a won opportunity. */
    t = am_test_pull_find(&r, GLOBEX);
    assert_string_equal(t->domain, "globex-logistics.de");
    assert_int_equal(t->amount_cents, INT64_C(1250000000));
    assert_int_equal(t->populations, CUSTOMERS);

    /* A Customer - Channel whose only opportunity was lost: still a customer by Type. */
    t = am_test_pull_find(&r, INITECH);
    assert_false(t->has_amount);
    assert_int_equal(t->populations, CUSTOMERS);

    t = am_test_pull_find(&r, ROMASHKA);
    assert_string_equal(t->name, "ООО «Ромашка»");
    assert_string_equal(t->country, "Russia");
    assert_int_equal(t->amount_cents, INT64_C(95000000000));
    assert_int_equal(t->populations, OPPORTUNITIES);

    /* Partner Types and no Type at all, without opportunities: prospects. */
    t = am_test_pull_find(&r, ACME);
    assert_string_equal(t->domain, "WWW.ACMEROBOTICS.IO");
    assert_int_equal(t->amount_cents, INT64_C(320000000));
    assert_int_equal(t->populations, PROSPECTS);
    t = am_test_pull_find(&r, VANDELAY);
    assert_string_equal(t->domain, "");
    assert_string_equal(t->country, "");
    assert_false(t->has_amount);
    assert_int_equal(t->populations, PROSPECTS);
    t = am_test_pull_find(&r, STARK);
    assert_int_equal(t->amount_cents, INT64_C(12000000000));
    assert_int_equal(t->populations, PROSPECTS);

    am_test_pull_dispose(&r);
    sf_close(&s->base);
    am_config_free(cfg);
}

/* "amount": "won" sums the won Opportunities' Amounts; no won one, no amount. */
static void test_salesforce__amount_from_won_opportunities(void **state)
{
    static const char *const account_pages[] = {"accounts_page1.json", "accounts_page2.json", NULL};
    static const char *const opportunity_pages[] = {"opportunities.json", NULL};
    am_config *cfg = load_config("\"instance_url\":\"https://acme.my.salesforce.com\","
                                 "\"token_env\":\"X\",\"amount\":\"won\"");
    sf_source *s = offline_source(cfg);
    pull_result r = {0};

    (void)state;
    s->amount_from = AM_CRM_AMOUNT_WON;
    feed(s, true, account_pages);
    feed(s, false, opportunity_pages);
    drain(&r, s);
    assert_int_equal(r.count, 7);
    /* Northwind: the won 9900.0, not the open 120000.0 nor its AnnualRevenue. */
    assert_true(am_test_pull_find(&r, NORTHWIND)->has_amount);
    assert_int_equal(am_test_pull_find(&r, NORTHWIND)->amount_cents, 990000);
    assert_int_equal(am_test_pull_find(&r, GLOBEX)->amount_cents, 4500000);
    assert_false(am_test_pull_find(&r, INITECH)->has_amount);  /* lost only */
    assert_false(am_test_pull_find(&r, ROMASHKA)->has_amount); /* open only */
    /* No Opportunity: AnnualRevenue is not used. */
    assert_false(am_test_pull_find(&r, STARK)->has_amount);
    am_test_pull_dispose(&r);
    sf_close(&s->base);
    am_config_free(cfg);
}

/* queryAll returns the recycle bin: the deleted and the merged-away rows are not Accounts. */
static void test_salesforce__query_all_drops_deleted_and_merged(void **state)
{
    static const char *const pages[] = {"accounts_queryall_with_deleted.json", NULL};
    am_config *cfg = load_config("\"instance_url\":\"https://acme.my.salesforce.com\","
                                 "\"token_env\":\"X\",\"endpoint\":\"queryAll\"");
    sf_source *s = offline_source(cfg);
    pull_result r = {0};

    (void)state;
    feed(s, true, pages);
    assert_int_equal(s->dropped, 2);
    drain(&r, s);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.records[0].id, NORTHWIND);
    assert_string_equal(r.records[0].domain, "https://www.northwindtraders.com/");
    am_test_pull_dispose(&r);
    sf_close(&s->base);
    am_config_free(cfg);
}

/* The source's `populations` map comes first; the defaults apply to values it does not map. */
static void test_salesforce__populations_map_overrides_defaults(void **state)
{
    static const char *const account_pages[] = {"accounts_page1.json", "accounts_page2.json", NULL};
    static const char *const opportunity_pages[] = {"opportunities.json", NULL};
    am_config *cfg =
        load_config("\"instance_url\":\"https://acme.my.salesforce.com\",\"token_env\":\"X\","
                    "\"populations\":{\"customer - channel\":\"partners\",\"LOST\":\"churned\","
                    "\"Technology Partner\":[\"partners\",\"prospects\"],\"open\":\"pipeline\"}");
    const am_config_org *org = am_config_org_at(cfg, 0);
    sf_source *s = offline_source(cfg);
    pull_result r = {0};
    uint32_t partners = 0, churned = 0, pipeline = 0;
    size_t i;

    (void)state;
    for (i = 0; i < org->population_count; i++) {
        uint32_t bit = 1u << i;
        partners |= strcmp(org->populations[i], "partners") == 0 ? bit : 0;
        churned |= strcmp(org->populations[i], "churned") == 0 ? bit : 0;
        pipeline |= strcmp(org->populations[i], "pipeline") == 0 ? bit : 0;
    }
    assert_true(partners && churned && pipeline);
    feed(s, true, account_pages);
    feed(s, false, opportunity_pages);
    drain(&r, s);
    /* Customer - Channel is mapped (ASCII case ignored): no default customers for it. */
    assert_int_equal(am_test_pull_find(&r, INITECH)->populations, partners | churned);
    assert_int_equal(am_test_pull_find(&r, STARK)->populations, partners | PROSPECTS);
    /* Unmapped values keep their defaults. */
    assert_int_equal(am_test_pull_find(&r, NORTHWIND)->populations, CUSTOMERS | pipeline);
    assert_int_equal(am_test_pull_find(&r, GLOBEX)->populations, CUSTOMERS);
    assert_int_equal(am_test_pull_find(&r, ROMASHKA)->populations, pipeline);
    assert_int_equal(am_test_pull_find(&r, ACME)->populations, PROSPECTS);
    am_test_pull_dispose(&r);
    sf_close(&s->base);
    am_config_free(cfg);
}

/* Rows that cannot become records are rejects with a line, never silently lost. */
static void test_salesforce__bad_rows_are_rejected(void **state)
{
    static const char body[] =
        "{\"totalSize\":5,\"done\":true,\"records\":["
        "{\"Id\":\"001A\",\"Name\":\"Good\",\"Website\":\"good.example\",\"AnnualRevenue\":1.5},"
        "{\"Name\":\"No id\"},"
        "{\"Id\":\"001C\",\"Name\":42},"
        "{\"Id\":\"001D\",\"Name\":\"Huge\",\"AnnualRevenue\":1e300},"
        "{\"Id\":\"001E\",\"Name\":null,\"Website\":null}]}";
    am_config *cfg = load_config("\"instance_url\":\"https://acme.my.salesforce.com\","
                                 "\"token_env\":\"X\"");
    sf_source *s = offline_source(cfg);
    json_t *root = json_loads(body, 0, NULL);
    pull_result r = {0};
    uint32_t rows = 0;
    char *next = NULL;
    am_error err;

    (void)state;
    assert_non_null(root);
    assert_int_equal(parse_page(s, root, true, &rows, &next, "test", &err), AM_OK);
    assert_null(next);
    assert_int_equal(rows, 5);
    drain(&r, s);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.records[0].amount_cents, 150);
    assert_int_equal(r.reject_count, 4);
    assert_string_equal(r.rejects[0], "salesforce https://acme.my.salesforce.com: Account row 2 "
                                      "has no Id; it was skipped, report this answer to your "
                                      "Salesforce admin");
    assert_string_equal(r.rejects[1],
                        "salesforce https://acme.my.salesforce.com: Account 001C: a text field "
                        "holds something else; it was skipped, check the field types of Account");
    assert_string_equal(r.rejects[2],
                        "salesforce https://acme.my.salesforce.com: Account 001D: AnnualRevenue "
                        "is not an amount acctmap can hold; fix it in Salesforce");
    assert_string_equal(r.rejects[3], "salesforce https://acme.my.salesforce.com: Account 001E: "
                                      "no Name and no Website; fill one in in Salesforce");
    json_decref(root);
    am_test_pull_dispose(&r);
    sf_close(&s->base);
    am_config_free(cfg);
}

/* A page that is JSON but not a query result fails the source with one line. */
static void test_salesforce__page_shape_checked(void **state)
{
    static const char *const bodies[] = {
        "[]",
        "{\"records\":[]}",
        "{\"records\":{},\"done\":true}",
        "{\"records\":[],\"done\":false}",
        "{\"records\":[],\"done\":\"yes\"}",
    };
    am_config *cfg = load_config("\"instance_url\":\"https://acme.my.salesforce.com\","
                                 "\"token_env\":\"X\"");
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        sf_source *s = offline_source(cfg);
        json_t *root = json_loads(bodies[i], 0, NULL);
        uint32_t rows = 0;
        char *next = NULL;
        am_error err;

        assert_non_null(root);
        assert_int_equal(parse_page(s, root, true, &rows, &next, "Account query, page 1", &err),
                         AM_EINPUT);
        assert_string_equal(err.msg, "salesforce https://acme.my.salesforce.com: Account query, "
                                     "page 1: the answer is not a query result (records, done, "
                                     "nextRecordsUrl); check instance_url and api_version");
        assert_null(next);
        json_decref(root);
        sf_close(&s->base);
    }
    am_config_free(cfg);
}

/* Salesforce's numbers, exponent form included, into exact cents. */
static void test_salesforce__amounts_exact(void **state)
{
    static const struct {
        const char *json;
        bool ok;
        int64_t cents;
    } cases[] = {
        {"4.8E7", true, INT64_C(4800000000)},
        {"9.5E8", true, INT64_C(95000000000)},
        {"1.25E7", true, INT64_C(1250000000)},
        {"3200000.0", true, INT64_C(320000000)},
        {"120000", true, INT64_C(12000000)},
        {"1234567.89", true, INT64_C(123456789)},
        {"0.1", true, 10},
        {"0.005", true, 1},
        {"-0.005", true, -1},
        {"-3.2E6", true, INT64_C(-320000000)},
        {"9.87654321012E10", true, INT64_C(9876543210120)},
        {"9.2E16", true, INT64_C(9200000000000000000)},
        {"9.3E16", false, 0},
        {"1E300", false, 0},
        {"\"1000\"", false, 0},
        {"true", false, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        int64_t cents = -42;
        bool ok;

        assert_non_null(v);
        ok = json_to_cents(&cents, v);
        if (ok != cases[i].ok || (ok && cents != cases[i].cents)) {
            fail_msg("%s: got %s %" PRId64, cases[i].json, ok ? "ok" : "refused", cents);
        }
        json_decref(v);
    }
    /* The text form as HubSpot and others send it goes through the same reader. */
    {
        int64_t cents = 0;
        assert_int_equal(am_parse_decimal_cents(&cents, "1850000.00", 10, NULL), AM_OK);
        assert_int_equal(cents, INT64_C(185000000));
        assert_int_equal(am_parse_decimal_cents(&cents, "4.8e+07", 7, NULL), AM_OK);
        assert_int_equal(cents, INT64_C(4800000000));
        assert_int_equal(am_parse_decimal_cents(&cents, "", 0, NULL), AM_EINPUT);
        assert_int_equal(am_parse_decimal_cents(&cents, "1e", 2, NULL), AM_EINPUT);
        assert_int_equal(am_parse_decimal_cents(&cents, "1 000", 5, NULL), AM_EINPUT);
        assert_int_equal(am_parse_decimal_cents(&cents, ".", 1, NULL), AM_EINPUT);
        assert_int_equal(am_parse_decimal_cents(&cents, "99999999999999999999", 20, NULL),
                         AM_EINPUT);
    }
}

/* ---- scenarios over real HTTP against the fake CRM ---------------------------- */

/* The servers of the running test; the teardown stops them even when the test failed. */
static am_fake_crm *g_crm;

static int stop_servers(void **state)
{
    (void)state;
    am_fake_crm_stop(g_crm);
    g_crm = NULL;
    unsetenv(TOKEN_VAR);
    unsetenv(REFRESH_VAR);
    unsetenv(SECRET_VAR);
    return 0;
}

#define SCENARIO_TEST(f) cmocka_unit_test_teardown(f, stop_servers)

/*
 * Back-off caps that keep every retry scenario well under a second, three
 * tries a request, no client-side rate.
 */
#define FAST                                                                                       \
    "\"max_wait_one_s\":\"0.02\",\"max_wait_s\":\"1\",\"max_attempts\":\"3\","                     \
    "\"requests_per_s\":\"0\""

/* Extra counts the connector kept, read from its state (the test includes its file). */
typedef struct pull_stats {
    size_t dropped, deals_unmatched;
    unsigned refreshes;
    am_http_stats http;
} pull_stats;

/* `text` with every "@PORT@" replaced by the fake server's port. */
static void expand(char *out, size_t cap, const char *text)
{
    char port[16];

    snprintf(port, sizeof(port), "%u", am_fake_crm_port(g_crm));
    am_test_replace(out, cap, text, "@PORT@", port);
}

/*
 * Start the fake Salesforce on `scenario` and pull one source from it to the
 * end or its first failure. In `fields`, "@PORT@" is the server's port; the
 * token variables hold the test's secrets.
 */
static void pull_scenario(pull_result *r, pull_stats *st, const char *scenario,
                          const char *fields_text)
{
    am_config *cfg = NULL;
    am_source *src = NULL;
    am_record_batch batch;
    am_error err;
    char fields[1024];
    size_t i;

    memset(r, 0, sizeof(*r));
    memset(st, 0, sizeof(*st));
    am_error_clear(&err);
    if (am_fake_crm_start(&g_crm, "salesforce", scenario, &err)) {
        fail_msg("fake salesforce %s: %s", scenario, err.msg);
    }
    expand(fields, sizeof(fields), fields_text);
    setenv(TOKEN_VAR, STALE_TOKEN, 1);
    setenv(REFRESH_VAR, REFRESH_TOKEN, 1);
    setenv(SECRET_VAR, CLIENT_SECRET, 1);
    cfg = load_config(fields);
    am_record_batch_init(&batch);
    r->rc = am_source_open(&src, source_config(cfg), &(am_source_env){0}, &err);
    if (!r->rc) {
        snprintf(r->label, sizeof(r->label), "%s", src->label);
        for (;;) {
            r->rc = am_source_next_batch(src, &batch, &err);
            if (r->rc) {
                /* The failure sticks, and last_error says the same. */
                assert_string_equal(src->ops->last_error(src)->msg, err.msg);
                break;
            }
            if (batch.count == 0 && batch.reject_count == 0) {
                break;
            }
            for (i = 0; i < batch.count; i++) {
                am_test_pull_keep_record(r, &batch.records[i], AM_TEST_NO_TAX_ID);
            }
            r->reject_count += batch.reject_count;
        }
        st->dropped = ((sf_source *)src)->dropped;
        st->deals_unmatched = ((sf_source *)src)->deals_unmatched;
        st->refreshes = am_http_oauth_refresh_count(((sf_source *)src)->http);
        am_http_stats_get(&st->http, ((sf_source *)src)->http);
    }
    if (r->rc) {
        snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
        /* Nothing secret in a message, whatever failed. */
        assert_null(strstr(err.msg, STALE_TOKEN));
        assert_null(strstr(err.msg, REFRESH_TOKEN));
        assert_null(strstr(err.msg, CLIENT_SECRET));
        assert_null(strstr(err.msg, NEW_TOKEN));
    }
    am_source_close(src);
    am_record_batch_dispose(&batch);
    am_config_free(cfg);
}

/* Every request matched a route and every required route was used. */
static void assert_routes_used(void)
{
    char *problems = am_fake_crm_check(g_crm);

    if (problems) {
        char copy[2048];
        snprintf(copy, sizeof(copy), "%s", problems);
        free(problems);
        fail_msg("fake salesforce: %s", copy);
    }
}

static const am_fake_request *request_at(size_t i)
{
    const am_fake_request *rq;

    assert_true(i < am_fake_crm_request_count(g_crm));
    rq = am_fake_crm_request(g_crm, i);
    assert_non_null(rq);
    return rq;
}

/* Request i was `method path` with this bearer token (NULL: none). */
static void assert_request(size_t i, const char *method, const char *path, const char *bearer)
{
    const am_fake_request *rq = request_at(i);
    const char *auth = am_fake_request_header(rq, "Authorization");

    assert_string_equal(rq->method, method);
    assert_string_equal(rq->path, path);
    if (bearer) {
        char want[512];
        snprintf(want, sizeof(want), "Bearer %s", bearer);
        assert_non_null(auth);
        assert_string_equal(auth, want);
    } else {
        assert_null(auth);
    }
}

/* The decoded SOQL of request i starts with `prefix`. */
static void assert_soql(size_t i, const char *prefix)
{
    char *q = am_fake_request_param(request_at(i), "q", false);

    assert_non_null(q);
    if (strncmp(q, prefix, strlen(prefix)) != 0) {
        char copy[512];
        snprintf(copy, sizeof(copy), "%s", q);
        free(q);
        fail_msg("SOQL \"%s\" does not start with \"%s\"", copy, prefix);
    }
    free(q);
}

#define QUERY_PATH "/services/data/v62.0/query"
#define PAGE2_PATH "/services/data/v62.0/query/01gRO0000016QxYYA2-4"
#define TOKEN_URL_PATH "/services/oauth2/token"
#define ACCOUNT_SOQL "SELECT Id, Name, Website, Type, BillingCountry, BillingCity"
#define OPPORTUNITY_SOQL_START "SELECT Id, AccountId, IsClosed, IsWon, Amount FROM Opportunity"

/* The populations of the fixtures' named companies after a complete pull. */
static void assert_complete_pull(const pull_result *r)
{
    assert_int_equal(r->rc, AM_OK);
    assert_int_equal(r->count, 7);
    assert_int_equal(r->reject_count, 0);
    assert_int_equal(am_test_pull_find(r, NORTHWIND)->populations, CUSTOMERS | OPPORTUNITIES);
    assert_int_equal(am_test_pull_find(r, GLOBEX)->populations, CUSTOMERS);
    assert_int_equal(am_test_pull_find(r, INITECH)->populations, CUSTOMERS);
    assert_int_equal(am_test_pull_find(r, ROMASHKA)->populations, OPPORTUNITIES);
    assert_string_equal(am_test_pull_find(r, ROMASHKA)->name, "ООО «Ромашка»");
    assert_int_equal(am_test_pull_find(r, ACME)->populations, PROSPECTS);
    assert_int_equal(am_test_pull_find(r, VANDELAY)->populations, PROSPECTS);
    assert_int_equal(am_test_pull_find(r, STARK)->populations, PROSPECTS);
}

static void test_salesforce__happy(void **state)
{
    pull_result r;
    pull_stats st;
    char label[128];

    (void)state;
    pull_scenario(&r, &st, "happy",
                  "\"instance_url\":\"http://127.0.0.1:@PORT@/\",\"token_env\":\"" TOKEN_VAR
                  "\"," FAST);
    assert_complete_pull(&r);
    /* AnnualRevenue 4.8E7, exactly. */
    assert_int_equal(am_test_pull_find(&r, NORTHWIND)->amount_cents, INT64_C(4800000000));
    /* The label is the instance, as a person recognises it. */
    snprintf(label, sizeof(label), "%s", am_fake_crm_origin(g_crm));
    assert_string_equal(r.label, label);
    assert_int_equal(st.deals_unmatched, 1);
    /* Accounts over two pages, then the Opportunities: three requests with the token. */
    assert_int_equal(am_fake_crm_request_count(g_crm), 3);
    assert_request(0, "GET", QUERY_PATH, STALE_TOKEN);
    assert_soql(0, ACCOUNT_SOQL);
    assert_request(1, "GET", PAGE2_PATH, STALE_TOKEN);
    assert_request(2, "GET", QUERY_PATH, STALE_TOKEN);
    assert_soql(2, OPPORTUNITY_SOQL_START);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* "amount": "pipeline": the open Opportunities' Amounts, summed per Account. */
static void test_salesforce__amount_from_open_pipeline(void **state)
{
    pull_result r;
    pull_stats st;

    (void)state;
    pull_scenario(&r, &st, "happy",
                  "\"instance_url\":\"http://127.0.0.1:@PORT@\",\"token_env\":\"" TOKEN_VAR "\","
                  "\"amount\":\"pipeline\"," FAST);
    assert_complete_pull(&r);
    assert_true(am_test_pull_find(&r, NORTHWIND)->has_amount);
    assert_int_equal(am_test_pull_find(&r, NORTHWIND)->amount_cents, 12000000);
    /* Ромашка's open Opportunity has a null Amount; Globex's only one is won. */
    assert_false(am_test_pull_find(&r, ROMASHKA)->has_amount);
    assert_false(am_test_pull_find(&r, GLOBEX)->has_amount);
    assert_false(am_test_pull_find(&r, ACME)->has_amount);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/*
 * OAuth without an access token: the token comes first, from login_url's
 * host, and the API calls go to the instance_url of its answer (another
 * origin: "localhost" there, 127.0.0.1 in the answer).
 */
static void test_salesforce__happy_oauth_uses_answered_instance(void **state)
{
    pull_result r;
    pull_stats st;
    const am_fake_request *rq;
    char *v;
    char want[128];
    size_t i;

    (void)state;
    pull_scenario(&r, &st, "happy",
                  "\"login_url\":\"http://localhost:@PORT@\",\"client_id\":\"3MVG9test\","
                  "\"refresh_token_env\":\"" REFRESH_VAR "\",\"client_secret_env\":\"" SECRET_VAR
                  "\"," FAST);
    assert_complete_pull(&r);
    assert_int_equal(st.refreshes, 1);
    expand(want, sizeof(want), "http://127.0.0.1:@PORT@");
    assert_string_equal(r.label, want);
    assert_int_equal(am_fake_crm_request_count(g_crm), 4);
    /* The refresh: form fields, no bearer, sent to login_url's host. */
    assert_request(0, "POST", TOKEN_URL_PATH, NULL);
    rq = request_at(0);
    expand(want, sizeof(want), "localhost:@PORT@");
    assert_string_equal(am_fake_request_header(rq, "Host"), want);
    v = am_fake_request_param(rq, "grant_type", true);
    assert_string_equal(v, "refresh_token");
    free(v);
    v = am_fake_request_param(rq, "refresh_token", true);
    assert_string_equal(v, REFRESH_TOKEN);
    free(v);
    v = am_fake_request_param(rq, "client_id", true);
    assert_string_equal(v, "3MVG9test");
    free(v);
    /* Then the queries, with the new token, on the instance the answer named. */
    expand(want, sizeof(want), "127.0.0.1:@PORT@");
    for (i = 1; i < 4; i++) {
        assert_string_equal(am_fake_request_header(request_at(i), "Host"), want);
    }
    assert_request(1, "GET", QUERY_PATH, NEW_TOKEN);
    assert_request(2, "GET", PAGE2_PATH, NEW_TOKEN);
    assert_request(3, "GET", QUERY_PATH, NEW_TOKEN);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

#define TOKEN_ONLY "\"instance_url\":\"http://127.0.0.1:@PORT@\",\"token_env\":\"" TOKEN_VAR "\","
#define WITH_OAUTH                                                                                 \
    TOKEN_ONLY "\"client_id\":\"3MVG9test\",\"refresh_token_env\":\"" REFRESH_VAR "\","            \
               "\"client_secret_env\":\"" SECRET_VAR "\","

/* No Account: success with no record, and no Opportunity query (it could not count). */
static void test_salesforce__empty(void **state)
{
    pull_result r;
    pull_stats st;

    (void)state;
    pull_scenario(&r, &st, "empty", TOKEN_ONLY FAST);
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 0);
    assert_int_equal(am_fake_crm_request_count(g_crm), 1);
    assert_request(0, "GET", QUERY_PATH, STALE_TOKEN);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* One 401, one refresh, the same query repeated with the new token, then all of it. */
static void test_salesforce__expired_token_then_refresh(void **state)
{
    pull_result r;
    pull_stats st;
    char *v;

    (void)state;
    pull_scenario(&r, &st, "expired_token_then_refresh", WITH_OAUTH FAST);
    assert_complete_pull(&r);
    assert_int_equal(st.refreshes, 1);
    assert_int_equal(am_fake_crm_request_count(g_crm), 5);
    assert_request(0, "GET", QUERY_PATH, STALE_TOKEN);
    assert_int_equal(request_at(0)->status, 401);
    assert_request(1, "POST", TOKEN_URL_PATH, NULL);
    v = am_fake_request_param(request_at(1), "client_secret", true);
    assert_string_equal(v, CLIENT_SECRET);
    free(v);
    assert_request(2, "GET", QUERY_PATH, NEW_TOKEN);
    assert_soql(2, ACCOUNT_SOQL);
    assert_request(3, "GET", PAGE2_PATH, NEW_TOKEN);
    assert_request(4, "GET", QUERY_PATH, NEW_TOKEN);
    assert_soql(4, OPPORTUNITY_SOQL_START);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* With base_url every request stays there: the token answer's instance_url is not followed. */
static void test_salesforce__base_url_wins_over_answered_instance(void **state)
{
    pull_result r;
    pull_stats st;
    char want[128];
    size_t i;

    (void)state;
    pull_scenario(&r, &st, "expired_token_then_refresh",
                  "\"base_url\":\"http://localhost:@PORT@\",\"token_env\":\"" TOKEN_VAR "\","
                  "\"client_id\":\"3MVG9test\",\"refresh_token_env\":\"" REFRESH_VAR "\"," FAST);
    assert_complete_pull(&r);
    expand(want, sizeof(want), "http://localhost:@PORT@");
    assert_string_equal(r.label, want);
    expand(want, sizeof(want), "localhost:@PORT@");
    assert_int_equal(am_fake_crm_request_count(g_crm), 5);
    for (i = 0; i < 5; i++) {
        assert_string_equal(am_fake_request_header(request_at(i), "Host"), want);
    }
    assert_request(4, "GET", QUERY_PATH, NEW_TOKEN);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* The refresh token was revoked: one refresh, no further call, one line asking to authorise. */
static void test_salesforce__expired_token_refresh_rejected(void **state)
{
    pull_result r;
    pull_stats st;
    char want[512];

    (void)state;
    pull_scenario(&r, &st, "expired_token_refresh_rejected", WITH_OAUTH FAST);
    assert_int_equal(r.rc, AM_EAUTH);
    assert_int_equal(r.count, 0);
    expand(want, sizeof(want),
           "salesforce http://127.0.0.1:@PORT@: 401 INVALID_SESSION_ID and the refresh token "
           "was refused (invalid_grant); authorise acctmap again and set " REFRESH_VAR);
    assert_string_equal(r.msg, want);
    assert_int_equal(am_fake_crm_request_count(g_crm), 2);
    assert_request(0, "GET", QUERY_PATH, STALE_TOKEN);
    assert_request(1, "POST", TOKEN_URL_PATH, NULL);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* A 401 without OAuth configured cannot be cured: it says which variable to renew. */
static void test_salesforce__expired_token_without_oauth(void **state)
{
    pull_result r;
    pull_stats st;
    char want[512];

    (void)state;
    pull_scenario(&r, &st, "expired_token_refresh_rejected", TOKEN_ONLY FAST);
    assert_int_equal(r.rc, AM_EAUTH);
    expand(want, sizeof(want),
           "salesforce http://127.0.0.1:@PORT@: GET " QUERY_PATH ": 401 INVALID_SESSION_ID "
           "(Session expired or invalid); the access token in " TOKEN_VAR " expired or was "
           "revoked; set a fresh one, or give client_id and refresh_token_env so that acctmap "
           "can refresh it");
    assert_string_equal(r.msg, want);
    assert_int_equal(am_fake_crm_request_count(g_crm), 1);
    am_test_pull_dispose(&r);
}

/* The org's daily allocation is spent: fail this run, at most one retry. */
static void test_salesforce__request_limit_exceeded(void **state)
{
    pull_result r;
    pull_stats st;
    char want[512];

    (void)state;
    pull_scenario(&r, &st, "request_limit_exceeded", WITH_OAUTH FAST);
    assert_int_equal(r.rc, AM_ELIMIT);
    assert_int_equal(r.count, 0);
    expand(want, sizeof(want),
           "salesforce http://127.0.0.1:@PORT@: GET " QUERY_PATH ": 403 REQUEST_LIMIT_EXCEEDED "
           "(TotalRequests Limit exceeded.); the org's API request allocation is used up; run "
           "again when it has recovered (it is counted over 24 hours) or ask Salesforce for a "
           "higher limit");
    assert_string_equal(r.msg, want);
    assert_true(am_fake_crm_request_count(g_crm) >= 1);
    assert_true(am_fake_crm_request_count(g_crm) <= 2);
    /* Not a token problem: no refresh. */
    assert_int_equal(st.refreshes, 0);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* Truncated JSON with status 200: one line, no records. */
static void test_salesforce__malformed_body(void **state)
{
    pull_result r;
    pull_stats st;
    char want[512];

    (void)state;
    pull_scenario(&r, &st, "malformed_body", TOKEN_ONLY FAST);
    assert_int_equal(r.rc, AM_EINPUT);
    assert_int_equal(r.count, 0);
    /* Cut off at the end of the 1125 bytes of accounts_page1_truncated.json. */
    expand(want, sizeof(want),
           "salesforce http://127.0.0.1:@PORT@: " QUERY_PATH ": invalid JSON at byte 1125 of "
           "1125 (premature end of input); the answer was cut off or is damaged, run again");
    assert_string_equal(r.msg, want);
    assert_int_equal(am_fake_crm_request_count(g_crm), 1);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* The proxy's HTML page is not parsed; the query is repeated and the pull completes. */
static void test_salesforce__proxy_502_then_ok(void **state)
{
    pull_result r;
    pull_stats st;

    (void)state;
    pull_scenario(&r, &st, "proxy_502_then_ok", TOKEN_ONLY FAST);
    assert_complete_pull(&r);
    assert_int_equal(am_fake_crm_request_count(g_crm), 4);
    assert_int_equal(request_at(0)->status, 502);
    assert_request(1, "GET", QUERY_PATH, STALE_TOKEN);
    assert_soql(1, ACCOUNT_SOQL);
    assert_int_equal(st.http.retries, 1);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* A proxy that keeps failing: a bounded number of tries, then one line. */
static void test_salesforce__proxy_502_persistent(void **state)
{
    pull_result r;
    pull_stats st;
    char want[512];

    (void)state;
    pull_scenario(&r, &st, "proxy_502_persistent", TOKEN_ONLY FAST);
    assert_int_equal(r.rc, AM_EHTTP);
    assert_int_equal(r.count, 0);
    expand(want, sizeof(want),
           "salesforce http://127.0.0.1:@PORT@: GET " QUERY_PATH ": HTTP 502 (text/html, not "
           "JSON) after 3 attempts (max_attempts reached); the server or a proxy in front of it is "
           "failing, "
           "run later");
    assert_string_equal(r.msg, want);
    /* max_attempts is 3. */
    assert_int_equal(am_fake_crm_request_count(g_crm), 3);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* Through queryAll: the deleted and merged-away rows are dropped, one Account remains. */
static void test_salesforce__query_all_deleted(void **state)
{
    pull_result r;
    pull_stats st;

    (void)state;
    pull_scenario(&r, &st, "query_all_deleted", TOKEN_ONLY "\"endpoint\":\"queryAll\"," FAST);
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.records[0].id, NORTHWIND);
    assert_int_equal(r.records[0].populations, CUSTOMERS | OPPORTUNITIES);
    assert_int_equal(st.dropped, 2);
    assert_request(0, "GET", "/services/data/v62.0/queryAll", STALE_TOKEN);
    assert_soql(0, ACCOUNT_SOQL);
    assert_request(1, "GET", QUERY_PATH, STALE_TOKEN);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* Nobody listens: a bounded number of tries, then one line naming the source. */
static void test_salesforce__server_down(void **state)
{
    am_config *cfg;
    am_source *src = NULL;
    am_record_batch batch;
    am_error err;
    char fields[512];
    unsigned port;

    (void)state;
    am_error_clear(&err);
    /* A port that was just free: start a server, note its port, stop it. */
    if (am_fake_crm_start(&g_crm, "salesforce", "empty", &err)) {
        fail_msg("fake: %s", err.msg);
    }
    port = am_fake_crm_port(g_crm);
    am_fake_crm_stop(g_crm);
    g_crm = NULL;
    snprintf(fields, sizeof(fields),
             "\"instance_url\":\"http://127.0.0.1:%u\",\"token_env\":\"" TOKEN_VAR "\"," FAST,
             port);
    setenv(TOKEN_VAR, STALE_TOKEN, 1);
    cfg = load_config(fields);
    am_record_batch_init(&batch);
    assert_int_equal(am_source_open(&src, source_config(cfg), &(am_source_env){0}, &err), AM_OK);
    assert_int_equal(am_source_next_batch(src, &batch, &err), AM_ENET);
    assert_int_equal(am_test_count_lines(err.msg), 1);
    snprintf(fields, sizeof(fields), "salesforce http://127.0.0.1:%u: GET " QUERY_PATH ": ", port);
    assert_int_equal(strncmp(err.msg, fields, strlen(fields)), 0);
    assert_non_null(strstr(err.msg, "3 attempts"));
    assert_null(strstr(err.msg, STALE_TOKEN));
    am_source_close(src);
    am_record_batch_dispose(&batch);
    am_config_free(cfg);
}

/* ---- config mistakes: one line naming the field, before any request -------------- */

/* Open a source from `fields` with the token variables set; its status and message. */
static am_status open_error(char *msg, size_t cap, const char *fields)
{
    am_config *cfg = load_config(fields);
    am_source *src = NULL;
    am_error err;
    am_status rc;

    am_error_clear(&err);
    setenv(TOKEN_VAR, STALE_TOKEN, 1);
    setenv(REFRESH_VAR, REFRESH_TOKEN, 1);
    rc = am_source_open(&src, source_config(cfg), &(am_source_env){0}, &err);
    assert_null(src);
    snprintf(msg, cap, "%s", err.msg);
    assert_int_equal(am_test_count_lines(msg), 1);
    assert_null(strstr(msg, STALE_TOKEN));
    assert_null(strstr(msg, REFRESH_TOKEN));
    am_config_free(cfg);
    return rc;
}

static void test_salesforce__config_errors(void **state)
{
    static const struct {
        const char *fields;
        const char *msg;
    } cases[] = {
        {"\"instance_url\":\"https://acme.my.salesforce.com\"",
         "acctmap.json: orgs[0].sources[0]: no credentials; give token_env (an access token), "
         "or client_id and refresh_token_env (OAuth refresh)"},
        {"\"token_env\":\"" TOKEN_VAR "\"",
         "acctmap.json: orgs[0].sources[0].instance_url: missing; give your org's URL "
         "(https://yourdomain.my.salesforce.com), or login_url with OAuth"},
        {"\"instance_url\":\"https://acme.my.salesforce.com\",\"client_id\":\"3MVG9\"",
         "acctmap.json: orgs[0].sources[0].refresh_token_env: missing; OAuth with client_id "
         "needs the environment variable that holds the refresh token"},
        {"\"instance_url\":\"https://acme.my.salesforce.com\",\"refresh_token_env\":\"" REFRESH_VAR
         "\"",
         "acctmap.json: orgs[0].sources[0].client_id: missing; the refresh token flow needs the "
         "connected app's consumer key"},
        {"\"instance_url\":\"https://acme.my.salesforce.com\",\"token_env\":\"" TOKEN_VAR
         "\",\"api_version\":\"62\"",
         "acctmap.json: orgs[0].sources[0].api_version: \"62\" is not an API version; write it "
         "like \"v62.0\""},
        {"\"instance_url\":\"https://acme.my.salesforce.com\",\"token_env\":\"" TOKEN_VAR
         "\",\"endpoint\":\"queryall\"",
         "acctmap.json: orgs[0].sources[0].endpoint: \"queryall\" is neither \"query\" nor "
         "\"queryAll\""},
        {"\"instance_url\":\"https://acme.my.salesforce.com\",\"token_env\":\"" TOKEN_VAR
         "\",\"amount\":\"Amount\"",
         "acctmap.json: orgs[0].sources[0].amount: \"Amount\" is not one of \"revenue\", "
         "\"pipeline\", \"won\""},
        {"\"instance_url\":\"https://acme.my.salesforce.com\",\"token_env\":\"" TOKEN_VAR
         "\",\"login_url\":\"https://login.salesforce.com\"",
         "acctmap.json: orgs[0].sources[0].login_url: only used to refresh a token; give "
         "client_id and refresh_token_env too, or drop it"},
        {"\"instance_url\":\"https://acme.my.salesforce.com\",\"token_env\":\"AM_TEST_UNSET_VAR\"",
         "acctmap.json: orgs[0].sources[0].token_env: environment variable AM_TEST_UNSET_VAR is "
         "not set or empty; export it before the run"},
    };
    char msg[512];
    size_t i;

    (void)state;
    unsetenv("AM_TEST_UNSET_VAR");
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(open_error(msg, sizeof(msg), cases[i].fields), AM_ECONFIG);
        assert_string_equal(msg, cases[i].msg);
    }
    /* A typo is refused with the list of fields a Salesforce source knows. */
    assert_int_equal(open_error(msg, sizeof(msg),
                                "\"instance\":\"https://acme.my.salesforce.com\","
                                "\"token_env\":\"" TOKEN_VAR "\""),
                     AM_ECONFIG);
    assert_non_null(strstr(msg, "unknown field \"instance\" for a salesforce source; known "
                                "fields: type, populations, instance_url, token_env"));
    /* Not an http(s) URL. */
    assert_int_equal(open_error(msg, sizeof(msg),
                                "\"instance_url\":\"ftp://acme.my.salesforce.com\","
                                "\"token_env\":\"" TOKEN_VAR "\""),
                     AM_ECONFIG);
}

/* ---- generated manifests: what the shared fixtures do not cover ------------------ */

static am_fake_crm *g_other;

static int sandbox_setup(void **state)
{
    return am_test_sandbox_setup(state);
}

static int sandbox_teardown(void **state)
{
    am_fake_crm_stop(g_other);
    g_other = NULL;
    stop_servers(state);
    return am_test_sandbox_teardown(state);
}

#define GENERATED_TEST(f) cmocka_unit_test_setup_teardown(f, sandbox_setup, sandbox_teardown)

/*
 * nextRecordsUrl on another origin (the same address, another port: the
 * "other host" listener) is refused before anything is sent there.
 */
static void test_salesforce__next_page_on_other_origin_refused(void **state)
{
    static const char routes[] =
        "[{\"scenario\":\"x\",\"method\":\"GET\",\"path\":\"/services/data/v62.0/query\","
        "\"query\":{\"q\":\"SELECT * FROM Account*\"},\"headers_required\":{\"Authorization\":"
        "\"Bearer *\"},\"status\":200,\"headers\":{\"Content-Type\":\"application/json\"},"
        "\"body\":\"page1.json\"}]";
    char body[512], fields[512], want[512];
    am_config *cfg = NULL;
    am_source *src = NULL;
    am_record_batch batch;
    am_error err;
    am_status rc;

    (void)state;
    am_error_clear(&err);
    if (am_fake_crm_start_other(&g_other, &err)) {
        fail_msg("other: %s", err.msg);
    }
    snprintf(body, sizeof(body),
             "{\"totalSize\":5,\"done\":false,\"nextRecordsUrl\":\"%s/services/data/v62.0/query/"
             "01gX-2\",\"records\":[{\"Id\":\"001A\",\"Name\":\"First\"}]}",
             am_fake_crm_origin(g_other));
    am_test_write_file(am_test_path("page1.json"), body, strlen(body));
    am_test_write_file(am_test_path("routes.json"), routes, strlen(routes));
    if (am_fake_crm_start_dir(&g_crm, am_test_path(""), NULL, &err)) {
        fail_msg("fake: %s", err.msg);
    }
    snprintf(fields, sizeof(fields),
             "\"instance_url\":\"%s\",\"token_env\":\"" TOKEN_VAR "\"," FAST,
             am_fake_crm_origin(g_crm));
    setenv(TOKEN_VAR, STALE_TOKEN, 1);
    cfg = load_config(fields);
    am_record_batch_init(&batch);
    assert_int_equal(am_source_open(&src, source_config(cfg), &(am_source_env){0}, &err), AM_OK);
    rc = am_source_next_batch(src, &batch, &err);
    assert_int_equal(rc, AM_EHTTP);
    assert_int_equal(batch.count, 0);
    snprintf(want, sizeof(want),
             "salesforce %s: GET /services/data/v62.0/query/01gX-2: refused a link to %s, which "
             "is not the source's own origin %s; nothing was sent there (check base_url, or "
             "report the CRM's answer)",
             am_fake_crm_origin(g_crm), am_fake_crm_origin(g_other), am_fake_crm_origin(g_crm));
    assert_string_equal(err.msg, want);
    /* Nothing, not even a connection, reached the other origin. */
    assert_int_equal(am_fake_crm_connection_count(g_other), 0);
    assert_int_equal(am_fake_crm_request_count(g_crm), 1);
    assert_routes_used();
    am_source_close(src);
    am_record_batch_dispose(&batch);
    am_config_free(cfg);
}

/* Copy fixture bodies into the sandbox, beside a generated routes.json. */
static void copy_bodies(const char *const *names)
{
    for (; *names; names++) {
        char from[1024];
        size_t len;
        char *data;

        snprintf(from, sizeof(from), "%s/salesforce/%s", am_fake_crm_fixtures_dir(), *names);
        data = am_test_read_file(from, &len);
        assert_non_null(data);
        am_test_write_file(am_test_path(*names), data, len);
        free(data);
    }
}

/* A fresh token refused too: one refresh only, then one line; no loop of refreshes. */
static void test_salesforce__refreshed_token_refused_too(void **state)
{
    static const char routes[] =
        "[{\"scenario\":\"x\",\"method\":\"GET\",\"path\":\"/services/data/v62.0/query\","
        "\"status\":401,\"headers\":{\"Content-Type\":\"application/json\"},\"body\":"
        "\"error_401_invalid_session.json\",\"repeat\":true},"
        "{\"scenario\":\"x\",\"method\":\"POST\",\"path\":\"/services/oauth2/token\",\"status\":"
        "200,\"headers\":{\"Content-Type\":\"application/json\"},\"body\":"
        "\"oauth_token_refresh.json\",\"replace_origin\":\"https://"
        "acme-dev-ed.my.salesforce.com\"}]";
    static const char *const bodies[] = {"error_401_invalid_session.json",
                                         "oauth_token_refresh.json", NULL};
    char fields[1024], want[512];
    am_config *cfg = NULL;
    am_source *src = NULL;
    am_record_batch batch;
    am_error err;

    (void)state;
    am_error_clear(&err);
    copy_bodies(bodies);
    am_test_write_file(am_test_path("routes.json"), routes, strlen(routes));
    if (am_fake_crm_start_dir(&g_crm, am_test_path(""), NULL, &err)) {
        fail_msg("fake: %s", err.msg);
    }
    expand(fields, sizeof(fields), WITH_OAUTH FAST);
    setenv(TOKEN_VAR, STALE_TOKEN, 1);
    setenv(REFRESH_VAR, REFRESH_TOKEN, 1);
    setenv(SECRET_VAR, CLIENT_SECRET, 1);
    cfg = load_config(fields);
    am_record_batch_init(&batch);
    assert_int_equal(am_source_open(&src, source_config(cfg), &(am_source_env){0}, &err), AM_OK);
    assert_int_equal(am_source_next_batch(src, &batch, &err), AM_EAUTH);
    expand(want, sizeof(want),
           "salesforce http://127.0.0.1:@PORT@: GET " QUERY_PATH ": 401 INVALID_SESSION_ID "
           "(Session expired or invalid); the token of a fresh refresh was refused too; check "
           "the connected app's policies (permitted users, IP relaxation) and the user's API "
           "access");
    assert_string_equal(err.msg, want);
    assert_int_equal(am_http_oauth_refresh_count(((sf_source *)src)->http), 1);
    assert_int_equal(am_fake_crm_request_count(g_crm), 3);
    assert_request(0, "GET", QUERY_PATH, STALE_TOKEN);
    assert_request(1, "POST", TOKEN_URL_PATH, NULL);
    assert_request(2, "GET", QUERY_PATH, NEW_TOKEN);
    am_source_close(src);
    am_record_batch_dispose(&batch);
    am_config_free(cfg);
}

/* A keeper in memory that records what the source saved and loaded. */
typedef struct memory_keeper {
    char name[128];
    char value[256];
    unsigned saves, loads;
    size_t requests_at_save; /* requests the server had seen when the save happened */
} memory_keeper;

static am_status keeper_load(void *ctx, const char *name, char **value_out, am_error *err)
{
    memory_keeper *k = ctx;

    k->loads++;
    *value_out = NULL;
    if (k->saves && strcmp(name, k->name) == 0) {
        *value_out = strdup(k->value);
        return *value_out ? AM_OK : am_error_set(err, AM_ENOMEM, "out of memory");
    }
    return am_error_set(err, AM_ENOTFOUND, "%s: not saved", name);
}

static am_status keeper_save(void *ctx, const char *name, const char *value, am_error *err)
{
    memory_keeper *k = ctx;

    (void)err;
    snprintf(k->name, sizeof(k->name), "%s", name);
    snprintf(k->value, sizeof(k->value), "%s", value);
    k->saves++;
    k->requests_at_save = am_fake_crm_request_count(g_crm);
    return AM_OK;
}

/*
 * A connected app with refresh token rotation: the new refresh token is
 * saved under the source's key before the new access token is used, and a
 * later run starts from the saved one, not from the environment's.
 */
static void test_salesforce__rotated_refresh_token_saved_before_use(void **state)
{
    static const char routes[] =
        "[{\"scenario\":\"x\",\"method\":\"GET\",\"path\":\"/services/data/v62.0/query\","
        "\"headers_required\":{\"Authorization\":\"Bearer " STALE_TOKEN "\"},\"status\":401,"
        "\"headers\":{\"Content-Type\":\"application/json\"},\"body\":"
        "\"error_401_invalid_session.json\"},"
        "{\"scenario\":\"x\",\"method\":\"POST\",\"path\":\"/services/oauth2/token\","
        "\"body_required\":{\"refresh_token\":\"" REFRESH_TOKEN "\"},\"status\":200,"
        "\"headers\":{\"Content-Type\":\"application/json\"},\"body\":\"rotated.json\"},"
        "{\"scenario\":\"x\",\"method\":\"GET\",\"path\":\"/services/data/v62.0/query\","
        "\"headers_required\":{\"Authorization\":\"Bearer 00Dnew!rotated-access\"},\"status\":"
        "200,\"headers\":{\"Content-Type\":\"application/json\"},\"body\":\"empty.json\"},"
        "{\"scenario\":\"x\",\"method\":\"POST\",\"path\":\"/services/oauth2/token\","
        "\"body_required\":{\"refresh_token\":\"5Aep-rotated-refresh\"},\"status\":200,"
        "\"headers\":{\"Content-Type\":\"application/json\"},\"body\":\"rotated2.json\"},"
        "{\"scenario\":\"x\",\"method\":\"GET\",\"path\":\"/services/data/v62.0/query\","
        "\"headers_required\":{\"Authorization\":\"Bearer 00Dnew!second-access\"},\"status\":"
        "200,\"headers\":{\"Content-Type\":\"application/json\"},\"body\":\"empty.json\"}]";
    static const char rotated[] = "{\"access_token\":\"00Dnew!rotated-access\",\"refresh_token\":"
                                  "\"5Aep-rotated-refresh\",\"token_type\":\"Bearer\","
                                  "\"issued_at\":\"1732284000123\"}";
    static const char rotated2[] = "{\"access_token\":\"00Dnew!second-access\","
                                   "\"token_type\":\"Bearer\",\"issued_at\":\"1732284000999\"}";
    static const char empty[] = "{\"totalSize\":0,\"done\":true,\"records\":[]}";
    static const char *const bodies[] = {"error_401_invalid_session.json", NULL};
    memory_keeper keeper_state;
    am_secret_keeper keeper = {&keeper_state, keeper_load, keeper_save};
    am_source_env env = {.secrets = &keeper, .source_key = "acme.0"};
    char fields[1024];
    am_config *cfg = NULL;
    am_source *src = NULL;
    am_record_batch batch;
    am_error err;

    (void)state;
    memset(&keeper_state, 0, sizeof(keeper_state));
    am_error_clear(&err);
    copy_bodies(bodies);
    am_test_write_file(am_test_path("routes.json"), routes, strlen(routes));
    am_test_write_file(am_test_path("rotated.json"), rotated, strlen(rotated));
    am_test_write_file(am_test_path("rotated2.json"), rotated2, strlen(rotated2));
    am_test_write_file(am_test_path("empty.json"), empty, strlen(empty));
    if (am_fake_crm_start_dir(&g_crm, am_test_path(""), NULL, &err)) {
        fail_msg("fake: %s", err.msg);
    }
    expand(fields, sizeof(fields), WITH_OAUTH FAST);
    setenv(TOKEN_VAR, STALE_TOKEN, 1);
    setenv(REFRESH_VAR, REFRESH_TOKEN, 1);
    setenv(SECRET_VAR, CLIENT_SECRET, 1);
    cfg = load_config(fields);
    am_record_batch_init(&batch);
    /* Run 1: the stale token, one refresh, and the answer rotates the refresh token. */
    assert_int_equal(am_source_open(&src, source_config(cfg), &env, &err), AM_OK);
    assert_int_equal(am_source_next_batch(src, &batch, &err), AM_OK);
    assert_int_equal(batch.count, 0);
    am_source_close(src);
    src = NULL;
    /* Saved once, under the source's key, after the token request and before the retry. */
    assert_int_equal(keeper_state.saves, 1);
    assert_string_equal(keeper_state.name, "acme.0.refresh_token");
    assert_string_equal(keeper_state.value, "5Aep-rotated-refresh");
    assert_int_equal(keeper_state.requests_at_save, 2);
    am_config_free(cfg);
    /* A later run without an access token refreshes with the saved token, not the env's. */
    expand(fields, sizeof(fields),
           "\"instance_url\":\"http://127.0.0.1:@PORT@\",\"client_id\":\"3MVG9test\","
           "\"refresh_token_env\":\"" REFRESH_VAR "\"," FAST);
    cfg = load_config(fields);
    assert_int_equal(am_source_open(&src, source_config(cfg), &env, &err), AM_OK);
    assert_int_equal(am_source_next_batch(src, &batch, &err), AM_OK);
    assert_int_equal(batch.count, 0);
    am_source_close(src);
    assert_int_equal(am_fake_crm_request_count(g_crm), 5);
    assert_routes_used();
    am_record_batch_dispose(&batch);
    am_config_free(cfg);
}

/* ---- end to end: acctmap run with a Salesforce vendor and a HubSpot partner ------ */

static am_fake_crm *g_partner;

static int e2e_teardown(void **state)
{
    am_fake_crm_stop(g_partner);
    g_partner = NULL;
    unsetenv("AM_TEST_HS_TOKEN");
    return sandbox_teardown(state);
}

#define E2E_TEST(f) cmocka_unit_test_setup_teardown(f, sandbox_setup, e2e_teardown)

/* Write acctmap.json for the two fake servers into the sandbox. */
static void write_e2e_config(void)
{
    char json[2048];
    int n = snprintf(json, sizeof(json),
                     "{\"self\":\"acme\",\"store\":\"dir:./e2e-data\",\"orgs\":["
                     "{\"id\":\"acme\",\"sources\":[{\"type\":\"salesforce\","
                     "\"instance_url\":\"%s\",\"token_env\":\"" TOKEN_VAR "\"," FAST "}]},"
                     "{\"id\":\"globex\",\"sources\":[{\"type\":\"hubspot\",\"base_url\":\"%s\","
                     "\"token_env\":\"AM_TEST_HS_TOKEN\"," FAST "}]}]}",
                     am_fake_crm_origin(g_crm), am_fake_crm_origin(g_partner));

    assert_true(n > 0 && (size_t)n < sizeof(json));
    am_test_write_file(am_test_path("e2e.json"), json, (size_t)n);
    setenv(TOKEN_VAR, STALE_TOKEN, 1);
    setenv("AM_TEST_HS_TOKEN", "pat-eu1-test-token", 1);
}

/*
 * Northwind, Globex, Initech, Ромашка and Stark share a domain with the
 * partner; Vandelay (no site, no country in Salesforce) only its name. Acme
 * Robotics, Umbrella and Hooli are not shared.
 */
static void test_salesforce__run_with_hubspot_partner(void **state)
{
    static const char *const run_args[] = {"-c", "e2e.json", "run", NULL};
    static const char *const matrix_args[] = {"-c", "e2e.json", "matrix", "--json", NULL};
    static const char *const accounts_args[] = {"-c",       "e2e.json", "accounts", "globex",
                                                "--format", "csv",      NULL};
    static const char *const pairs[] = {
        NORTHWIND ",9012345601,", GLOBEX ",9012345617,", INITECH ",9012345622,",
        ROMASHKA ",9012345644,",  STARK ",9012345663,",  VANDELAY ",9012345659,",
    };
    size_t i;
    am_test_output out;
    am_error err;
    json_t *have, *want;
    char *problems;

    (void)state;
    am_error_clear(&err);
    if (am_fake_crm_start(&g_crm, "salesforce", "happy", &err) ||
        am_fake_crm_start(&g_partner, "hubspot", "happy", &err)) {
        fail_msg("fake CRMs: %s", err.msg);
    }
    write_e2e_config();
    am_test_run(&out, am_test_path(""), run_args);
    if (out.exit_code != 0) {
        char copy[1024];
        int code = out.exit_code;
        snprintf(copy, sizeof(copy), "%s", out.err);
        am_test_output_dispose(&out);
        fail_msg("run exited %d: %s", code, copy);
    }
    am_test_output_dispose(&out);
    am_test_run(&out, am_test_path(""), matrix_args);
    assert_int_equal(out.exit_code, 0);
    have = json_loads(out.out, 0, NULL);
    assert_non_null(have);
    /* ours (rows) x theirs: customers, prospects, opportunities. */
    want = json_loads("[[2,1,1],[0,2,0],[1,0,2]]", 0, NULL);
    if (!json_equal(json_object_get(json_array_get(json_object_get(have, "partners"), 0), "matrix"),
                    want)) {
        char copy[1024];
        snprintf(copy, sizeof(copy), "%s", out.out);
        json_decref(have);
        json_decref(want);
        am_test_output_dispose(&out);
        fail_msg("matrix: %s", copy);
    }
    json_decref(have);
    json_decref(want);
    am_test_output_dispose(&out);
    /* The pairs behind it: a header and one line per shared company. */
    am_test_run(&out, am_test_path(""), accounts_args);
    assert_int_equal(out.exit_code, 0);
    assert_int_equal(am_test_count_lines(out.out), 1 + sizeof(pairs) / sizeof(pairs[0]));
    for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        assert_non_null(strstr(out.out, pairs[i]));
    }
    assert_non_null(strstr(out.out, "name:vandelay industries|"));
    am_test_output_dispose(&out);
    assert_routes_used();
    problems = am_fake_crm_check(g_partner);
    assert_null(problems);
}

/* A partner whose token is refused fails the run: exit 1, one line, nothing committed. */
static void test_salesforce__run_fails_on_a_refused_partner(void **state)
{
    static const char *const run_args[] = {"-c", "e2e.json", "run", NULL};
    static const char *const runs_args[] = {"-c", "e2e.json", "runs", "--format", "json", NULL};
    am_test_output out;
    am_error err;
    char want[512];

    (void)state;
    am_error_clear(&err);
    if (am_fake_crm_start(&g_crm, "salesforce", "happy", &err) ||
        am_fake_crm_start(&g_partner, "hubspot", "invalid_token", &err)) {
        fail_msg("fake CRMs: %s", err.msg);
    }
    write_e2e_config();
    am_test_run(&out, am_test_path(""), run_args);
    assert_int_equal(out.exit_code, 1);
    snprintf(want, sizeof(want),
             "acctmap: source globex/hubspot: hubspot %s: GET /crm/v3/objects/companies: 401 "
             "INVALID_AUTHENTICATION; the private-app token in AM_TEST_HS_TOKEN was refused "
             "(revoked, rotated or mistyped); copy the app's current token from HubSpot into "
             "AM_TEST_HS_TOKEN\n",
             am_fake_crm_origin(g_partner));
    assert_string_equal(out.err, want);
    am_test_output_dispose(&out);
    /* No run was committed. */
    am_test_run(&out, am_test_path(""), runs_args);
    assert_null(strstr(out.out, "\"run\":"));
    am_test_output_dispose(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_salesforce__bodies_to_records),
        cmocka_unit_test(test_salesforce__amount_from_won_opportunities),
        cmocka_unit_test(test_salesforce__query_all_drops_deleted_and_merged),
        cmocka_unit_test(test_salesforce__populations_map_overrides_defaults),
        cmocka_unit_test(test_salesforce__bad_rows_are_rejected),
        cmocka_unit_test(test_salesforce__page_shape_checked),
        cmocka_unit_test(test_salesforce__amounts_exact),
        SCENARIO_TEST(test_salesforce__happy),
        SCENARIO_TEST(test_salesforce__amount_from_open_pipeline),
        SCENARIO_TEST(test_salesforce__happy_oauth_uses_answered_instance),
        SCENARIO_TEST(test_salesforce__empty),
        SCENARIO_TEST(test_salesforce__expired_token_then_refresh),
        SCENARIO_TEST(test_salesforce__base_url_wins_over_answered_instance),
        SCENARIO_TEST(test_salesforce__expired_token_refresh_rejected),
        SCENARIO_TEST(test_salesforce__expired_token_without_oauth),
        SCENARIO_TEST(test_salesforce__request_limit_exceeded),
        SCENARIO_TEST(test_salesforce__malformed_body),
        SCENARIO_TEST(test_salesforce__proxy_502_then_ok),
        SCENARIO_TEST(test_salesforce__proxy_502_persistent),
        SCENARIO_TEST(test_salesforce__query_all_deleted),
        SCENARIO_TEST(test_salesforce__server_down),
        SCENARIO_TEST(test_salesforce__config_errors),
        GENERATED_TEST(test_salesforce__next_page_on_other_origin_refused),
        GENERATED_TEST(test_salesforce__refreshed_token_refused_too),
        GENERATED_TEST(test_salesforce__rotated_refresh_token_saved_before_use),
        E2E_TEST(test_salesforce__run_with_hubspot_partner),
        E2E_TEST(test_salesforce__run_fails_on_a_refused_partner),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
