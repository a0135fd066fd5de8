/*
 * Tests of the HubSpot connector (connectors/hubspot.c): its parsing of the
 * fixture bodies of ../shared/fixtures-crm/hubspot directly, then every
 * scenario of routes.json pulled over real HTTP from the fake CRM server.
 * The connector's file is included so that its static parsers can be fed
 * the bodies; the test's copy of am_connector_hubspot is the one linked.
 */
#include "helpers.h"

#include "tests/fake_crm.h"

#include "../connectors/hubspot.c"

#define TOKEN_VAR "AM_TEST_HS_TOKEN"
#define TOKEN "pat-eu1-11111111-2222-3333-4444-555555555555"

#define NORTHWIND "9012345601"
#define GLOBEX "9012345617"
#define INITECH "9012345622"
#define UMBRELLA "9012345638"
#define ROMASHKA "9012345644"
#define VANDELAY "9012345659"
#define STARK "9012345663"
#define HOOLI "9012345670"

/* What a source gave, kept out of its batches (tests/helpers.h). */
typedef am_test_record test_record;
typedef am_test_pull pull_result;

/*
 * A config whose self org "acme" reads the HubSpot source `source` (the
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
                 "\"sources\":[{\"type\":\"hubspot\"%s%s}]},{\"id\":\"globex\",\"sources\":"
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

    snprintf(path, sizeof(path), "%s/hubspot/%s", am_fake_crm_fixtures_dir(), name);
    root = json_load_file(path, 0, &jerr);
    if (!root) {
        fail_msg("%s: %s", path, jerr.text);
    }
    return root;
}

/* A source with no client: only the parsers and the population rules are used. */
static hs_source *offline_source(const am_config *cfg)
{
    hs_source *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    s->base.ops = &am_connector_hubspot;
    s->base.cfg = source_config(cfg);
    am_arena_init(&s->arena);
    snprintf(s->where, sizeof(s->where), "hubspot https://api.hubapi.com");
    return s;
}

/* Feed body files of companies or deals; `after` is the cursor the last page must give. */
static void feed(hs_source *s, bool companies, const char *const *names, const char *after)
{
    uint32_t rows = 0;
    am_error err;
    char *next = NULL;

    am_error_clear(&err);
    if (!companies) {
        assert_int_equal(index_companies(s, &err), AM_OK);
    }
    for (; *names; names++) {
        json_t *root = fixture_json(*names);
        am_status rc;

        free(next);
        next = NULL;
        rc = parse_page(s, root, companies, &rows, &next, "test page", &err);
        if (rc) {
            fail_msg("%s: %s", *names, err.msg);
        }
        json_decref(root);
    }
    if (after) {
        assert_string_equal(next, after);
    } else {
        assert_null(next);
    }
    free(next);
}

/* Emit what an offline source holds through next_batch, as a run reads it. */
static void drain(pull_result *r, hs_source *s)
{
    am_record_batch batch;
    am_error err;

    am_record_batch_init(&batch);
    am_error_clear(&err);
    s->pulled = true;
    for (;;) {
        r->rc = hs_next_batch(&s->base, &batch, &err);
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

static void test_hubspot__bodies_to_records(void **state)
{
    static const char *const page1[] = {"companies_page1.json", NULL};
    static const char *const page2[] = {"companies_page2.json", NULL};
    static const char *const deals[] = {"deals_with_company_associations.json", NULL};
    am_config *cfg = load_config("\"token_env\":\"X\"");
    hs_source *s = offline_source(cfg);
    pull_result r = {0};
    const test_record *t;

    (void)state;
    /* The cursor, never the link (which may name another host). */
    feed(s, true, page1, "9012345645");
    feed(s, true, page2, NULL);
    feed(s, false, deals, NULL);
    /* The deal without a company is counted, not attached to anyone. */
    assert_int_equal(s->deals_unmatched, 1);
    drain(&r, s);
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 8);
    assert_int_equal(r.reject_count, 0);

    /* lifecyclestage customer and an open deal linked twice. */
    t = am_test_pull_find(&r, NORTHWIND);
    assert_string_equal(t->name, "Northwind Traders Ltd");
    assert_string_equal(t->domain, "northwindtraders.com");
    assert_string_equal(t->country, "United States");
    assert_true(t->has_amount);
    assert_int_equal(t->amount_cents, INT64_C(4800000000));
    assert_int_equal(t->populations, CUSTOMERS | OPPORTUNITIES);

    /* lifecyclestage says opportunity, but its deal was won. */
    t = am_test_pull_find(&r, GLOBEX);
    assert_false(t->has_amount);
    assert_int_equal(t->populations, CUSTOMERS);

    /* A lost deal makes nobody a customer. */
    t = am_test_pull_find(&r, INITECH);
    assert_string_equal(t->domain, "initech-solutions.co.uk");
    assert_int_equal(t->amount_cents, INT64_C(740000000));
    assert_int_equal(t->populations, PROSPECTS);

    t = am_test_pull_find(&r, ROMASHKA);
    assert_string_equal(t->name, "ООО «Ромашка»");
    assert_string_equal(t->domain, "romashka.ru");
    assert_int_equal(t->amount_cents, INT64_C(95000000000));
    assert_int_equal(t->populations, OPPORTUNITIES);

    /* No domain and no website: the record stays, by name. */
    t = am_test_pull_find(&r, UMBRELLA);
    assert_string_equal(t->domain, "");
    assert_int_equal(t->populations, PROSPECTS);
    t = am_test_pull_find(&r, VANDELAY);
    assert_string_equal(t->country, "");
    assert_int_equal(t->populations, PROSPECTS);
    assert_int_equal(am_test_pull_find(&r, STARK)->populations, PROSPECTS);
    t = am_test_pull_find(&r, HOOLI);
    assert_true(t->has_amount);
    assert_int_equal(t->amount_cents, 0);
    assert_int_equal(t->populations, PROSPECTS);

    am_test_pull_dispose(&r);
    hs_close(&s->base);
    am_config_free(cfg);
}

/*
 * "amount": "won" / "pipeline" sum the deals' amounts; a deal linked to a
 * company twice (labelled and unlabelled) is counted once.
 */
static void test_hubspot__amount_from_deals_counts_each_deal_once(void **state)
{
    static const char *const pages[] = {"companies_page1.json", "companies_page2.json", NULL};
    static const char *const deals[] = {"deals_with_company_associations.json", NULL};
    am_config *cfg = load_config("\"token_env\":\"X\"");
    pull_result r = {0};
    int mode;

    (void)state;
    for (mode = 0; mode < 2; mode++) {
        hs_source *s = offline_source(cfg);

        s->amount_from = mode == 0 ? AM_CRM_AMOUNT_PIPELINE : AM_CRM_AMOUNT_WON;
        feed(s, true, pages, NULL);
        feed(s, false, deals, NULL);
        drain(&r, s);
        assert_int_equal(r.count, 8);
        if (mode == 0) {
            /* 120000 once, not twice. */
            assert_true(am_test_pull_find(&r, NORTHWIND)->has_amount);
            assert_int_equal(am_test_pull_find(&r, NORTHWIND)->amount_cents, 12000000);
            assert_false(am_test_pull_find(&r, ROMASHKA)->has_amount); /* open, amount null */
            assert_false(am_test_pull_find(&r, GLOBEX)->has_amount);   /* won only */
        } else {
            assert_int_equal(am_test_pull_find(&r, GLOBEX)->amount_cents, 4500000);
            assert_false(am_test_pull_find(&r, NORTHWIND)->has_amount);
            assert_false(am_test_pull_find(&r, INITECH)->has_amount); /* lost */
        }
        /* annualrevenue is not the amount then. */
        assert_false(am_test_pull_find(&r, STARK)->has_amount);
        am_test_pull_dispose(&r);
        hs_close(&s->base);
    }
    am_config_free(cfg);
}

/* Each company linked twice to one deal counts once; several deals of one company combine. */
static void test_hubspot__deal_states_combine(void **state)
{
    static const char companies[] =
        "{\"results\":[{\"id\":\"1\",\"properties\":{\"name\":\"One\"}},"
        "{\"id\":\"2\",\"properties\":{\"name\":\"Two\",\"lifecyclestage\":\"CUSTOMER\"}},"
        "{\"id\":\"3\",\"properties\":{\"name\":\"Three\"}},"
        "{\"id\":\"4\",\"archived\":true,\"properties\":{\"name\":\"Gone\"}}]}";
    static const char deals[] =
        "{\"results\":["
        /* won by its flags in a custom pipeline, linked twice to 1 */
        "{\"id\":\"d1\",\"properties\":{\"dealstage\":\"12345\",\"hs_is_closed\":\"true\","
        "\"hs_is_closed_won\":\"true\"},\"associations\":{\"companies\":{\"results\":["
        "{\"id\":\"1\",\"type\":\"deal_to_company\"},{\"id\":\"1\",\"type\":"
        "\"deal_to_company_unlabeled\"}]}}},"
        /* open for 1 and 3 */
        "{\"id\":\"d2\",\"properties\":{\"hs_is_closed\":\"false\",\"hs_is_closed_won\":"
        "\"false\"},\"associations\":{\"companies\":{\"results\":[{\"id\":\"1\"},"
        "{\"id\":\"3\"}]}}},"
        /* lost by the default pipeline's stage, without the flags; v4 numeric id */
        "{\"id\":\"d3\",\"properties\":{\"dealstage\":\"closedlost\"},\"associations\":"
        "{\"companies\":{\"results\":[{\"toObjectId\":2}]}}},"
        /* an archived company's deal, and a company we do not have */
        "{\"id\":\"d4\",\"properties\":{\"dealstage\":\"closedwon\"},\"associations\":"
        "{\"companies\":{\"results\":[{\"id\":\"4\"},{\"id\":\"99\"}]}}}]}";
    am_config *cfg = load_config("\"token_env\":\"X\"");
    hs_source *s = offline_source(cfg);
    json_t *root;
    pull_result r = {0};
    uint32_t rows = 0;
    char *next = NULL;
    am_error err;

    (void)state;
    root = json_loads(companies, 0, NULL);
    assert_non_null(root);
    assert_int_equal(parse_page(s, root, true, &rows, &next, "test", &err), AM_OK);
    json_decref(root);
    assert_int_equal(s->archived, 1);
    assert_int_equal(index_companies(s, &err), AM_OK);
    root = json_loads(deals, 0, NULL);
    assert_non_null(root);
    rows = 0;
    assert_int_equal(parse_page(s, root, false, &rows, &next, "test", &err), AM_OK);
    json_decref(root);
    assert_null(next);
    assert_int_equal(s->deals_unmatched, 1);
    drain(&r, s);
    assert_int_equal(r.count, 3);
    assert_int_equal(am_test_pull_find(&r, "1")->populations, CUSTOMERS | OPPORTUNITIES);
    /* "CUSTOMER" in any ASCII case is the customer stage; a lost deal adds nothing. */
    assert_int_equal(am_test_pull_find(&r, "2")->populations, CUSTOMERS);
    assert_int_equal(am_test_pull_find(&r, "3")->populations, OPPORTUNITIES);
    am_test_pull_dispose(&r);
    hs_close(&s->base);
    am_config_free(cfg);
}

/* The source's `populations` map comes first; the defaults apply to values it does not map. */
static void test_hubspot__populations_map_overrides_defaults(void **state)
{
    static const char *const pages[] = {"companies_page1.json", "companies_page2.json", NULL};
    static const char *const deals[] = {"deals_with_company_associations.json", NULL};
    am_config *cfg =
        load_config("\"token_env\":\"X\",\"populations\":{\"Opportunity\":\"opportunities\","
                    "\"evangelist\":[\"customers\",\"advocates\"],\"lost\":\"churned\","
                    "\"salesqualifiedlead\":\"prospects\",\"customer\":\"prospects\"}");
    const am_config_org *org = am_config_org_at(cfg, 0);
    hs_source *s = offline_source(cfg);
    pull_result r = {0};
    uint32_t advocates = 0, churned = 0;
    size_t i;

    (void)state;
    for (i = 0; i < org->population_count; i++) {
        advocates |= strcmp(org->populations[i], "advocates") == 0 ? 1u << i : 0;
        churned |= strcmp(org->populations[i], "churned") == 0 ? 1u << i : 0;
    }
    assert_true(advocates && churned);
    feed(s, true, pages, NULL);
    feed(s, false, deals, NULL);
    drain(&r, s);
    /* "customer" mapped to prospects: the default (customers) is skipped. */
    assert_int_equal(am_test_pull_find(&r, NORTHWIND)->populations, PROSPECTS | OPPORTUNITIES);
    assert_int_equal(am_test_pull_find(&r, GLOBEX)->populations, OPPORTUNITIES | CUSTOMERS);
    assert_int_equal(am_test_pull_find(&r, INITECH)->populations, PROSPECTS | churned);
    assert_int_equal(am_test_pull_find(&r, STARK)->populations, CUSTOMERS | advocates);
    assert_int_equal(am_test_pull_find(&r, HOOLI)->populations, PROSPECTS);
    am_test_pull_dispose(&r);
    hs_close(&s->base);
    am_config_free(cfg);
}

/* Rows that cannot become records are rejects with a line, never silently lost. */
static void test_hubspot__bad_rows_are_rejected(void **state)
{
    static const char body[] =
        "{\"results\":[{\"id\":\"1\",\"properties\":{\"name\":\"Good\",\"annualrevenue\":"
        "\"1850000.00\"}},"
        "{\"properties\":{\"name\":\"No id\"}},"
        "{\"id\":\"3\",\"properties\":{\"name\":[\"x\"]}},"
        "{\"id\":\"4\",\"properties\":{\"name\":\"Bad money\",\"annualrevenue\":\"1,5 Mio\"}},"
        "{\"id\":\"5\",\"properties\":{\"name\":\"\",\"domain\":null}}]}";
    am_config *cfg = load_config("\"token_env\":\"X\"");
    hs_source *s = offline_source(cfg);
    json_t *root = json_loads(body, 0, NULL);
    pull_result r = {0};
    uint32_t rows = 0;
    char *next = NULL;
    am_error err;

    (void)state;
    assert_non_null(root);
    assert_int_equal(parse_page(s, root, true, &rows, &next, "test", &err), AM_OK);
    assert_null(next);
    drain(&r, s);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.records[0].amount_cents, INT64_C(185000000));
    assert_int_equal(r.reject_count, 4);
    assert_string_equal(r.rejects[0], "hubspot https://api.hubapi.com: company row 2 has no id; "
                                      "it was skipped, report this answer to HubSpot");
    assert_string_equal(r.rejects[1], "hubspot https://api.hubapi.com: company 3: a property is "
                                      "not text; it was skipped, report this answer to HubSpot");
    assert_string_equal(r.rejects[2], "hubspot https://api.hubapi.com: company 4: annualrevenue "
                                      "\"1,5 Mio\" is not an amount; fix it in HubSpot");
    assert_string_equal(r.rejects[3], "hubspot https://api.hubapi.com: company 5: no name, "
                                      "domain or website; fill one in in HubSpot");
    json_decref(root);
    am_test_pull_dispose(&r);
    hs_close(&s->base);
    am_config_free(cfg);
}

/* A page that is JSON but not a list fails the source with one line. */
static void test_hubspot__page_shape_checked(void **state)
{
    static const char *const bodies[] = {
        "[]",
        "{}",
        "{\"results\":{}}",
        "{\"results\":[],\"paging\":{\"next\":{\"after\":true}}}",
    };
    am_config *cfg = load_config("\"token_env\":\"X\"");
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        hs_source *s = offline_source(cfg);
        json_t *root = json_loads(bodies[i], 0, NULL);
        uint32_t rows = 0;
        char *next = NULL;
        am_error err;

        assert_non_null(root);
        assert_int_equal(parse_page(s, root, true, &rows, &next, "companies, page 1", &err),
                         AM_EINPUT);
        assert_string_equal(err.msg, "hubspot https://api.hubapi.com: companies, page 1: the "
                                     "answer is not a list of results with paging; check "
                                     "base_url");
        assert_null(next);
        json_decref(root);
        hs_close(&s->base);
    }
    am_config_free(cfg);
}

/* ---- scenarios over real HTTP against the fake CRM ---------------------------- */

#define TRAP_HOST "api.hubapi.com.mirror-cdn.example.net"

/* The servers of the running test; the teardown stops them even when the test failed. */
static am_fake_crm *g_crm;
static am_fake_crm *g_other;

static int stop_servers(void **state)
{
    (void)state;
    am_fake_crm_unmap_all();
    am_fake_crm_stop(g_crm);
    am_fake_crm_stop(g_other);
    g_crm = g_other = NULL;
    unsetenv(TOKEN_VAR);
    return 0;
}

#define SCENARIO_TEST(f) cmocka_unit_test_teardown(f, stop_servers)

/* Back-off caps that keep every retry scenario well under a second; no client-side rate. */
#define FAST                                                                                       \
    "\"max_wait_one_s\":\"0.02\",\"max_wait_s\":\"1\",\"max_attempts\":\"3\","                     \
    "\"requests_per_s\":\"0\""
#define BASE "\"base_url\":\"http://127.0.0.1:@PORT@\",\"token_env\":\"" TOKEN_VAR "\","

typedef struct pull_stats {
    size_t archived, deals_unmatched;
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
 * Start the fake HubSpot on `scenario`, and an "other host" listener that
 * the trap host (port 443 and 80) is mapped to, then pull one source to the
 * end or its first failure. In `fields`, "@PORT@" is the server's port.
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
    if (am_fake_crm_start(&g_crm, "hubspot", scenario, &err)) {
        fail_msg("fake hubspot %s: %s", scenario, err.msg);
    }
    if (am_fake_crm_start_other(&g_other, &err) ||
        am_fake_crm_map_host(g_other, TRAP_HOST, 443, &err) ||
        am_fake_crm_map_host(g_other, TRAP_HOST, 80, &err)) {
        fail_msg("other host: %s", err.msg);
    }
    expand(fields, sizeof(fields), fields_text);
    setenv(TOKEN_VAR, TOKEN, 1);
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
        st->archived = ((hs_source *)src)->archived;
        st->deals_unmatched = ((hs_source *)src)->deals_unmatched;
        am_http_stats_get(&st->http, ((hs_source *)src)->http);
    }
    if (r->rc) {
        snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
        assert_null(strstr(err.msg, TOKEN));
    }
    am_source_close(src);
    am_record_batch_dispose(&batch);
    am_config_free(cfg);
    /* Whatever happened, nothing reached the other host. */
    assert_int_equal(am_fake_crm_connection_count(g_other), 0);
    assert_int_equal(am_fake_crm_request_count(g_other), 0);
}

/* Every request matched a route and every required route was used. */
static void assert_routes_used(void)
{
    char *problems = am_fake_crm_check(g_crm);

    if (problems) {
        char copy[2048];
        snprintf(copy, sizeof(copy), "%s", problems);
        free(problems);
        fail_msg("fake hubspot: %s", copy);
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

/* Request i was `method path` with the token, and its `after` (query or body) is `after`. */
static void assert_request(size_t i, const char *method, const char *path, const char *after)
{
    const am_fake_request *rq = request_at(i);
    const char *auth = am_fake_request_header(rq, "Authorization");
    char *v = am_fake_request_param(rq, "after", strcmp(method, "POST") == 0);

    assert_string_equal(rq->method, method);
    assert_string_equal(rq->path, path);
    assert_non_null(auth);
    assert_string_equal(auth, "Bearer " TOKEN);
    if (after) {
        assert_non_null(v);
        assert_string_equal(v, after);
    } else {
        assert_null(v);
    }
    free(v);
}

#define COMPANIES "/crm/v3/objects/companies"
#define DEALS "/crm/v3/objects/deals"

/* The populations of the fixtures' named companies after a complete pull. */
static void assert_complete_pull(const pull_result *r)
{
    assert_int_equal(r->rc, AM_OK);
    assert_int_equal(r->count, 8);
    assert_int_equal(r->reject_count, 0);
    assert_int_equal(am_test_pull_find(r, NORTHWIND)->populations, CUSTOMERS | OPPORTUNITIES);
    assert_int_equal(am_test_pull_find(r, GLOBEX)->populations, CUSTOMERS);
    assert_int_equal(am_test_pull_find(r, INITECH)->populations, PROSPECTS);
    assert_int_equal(am_test_pull_find(r, ROMASHKA)->populations, OPPORTUNITIES);
    assert_string_equal(am_test_pull_find(r, ROMASHKA)->name, "ООО «Ромашка»");
    assert_int_equal(am_test_pull_find(r, UMBRELLA)->populations, PROSPECTS);
    assert_int_equal(am_test_pull_find(r, VANDELAY)->populations, PROSPECTS);
    assert_int_equal(am_test_pull_find(r, STARK)->populations, PROSPECTS);
    assert_int_equal(am_test_pull_find(r, HOOLI)->populations, PROSPECTS);
}

/* Two pages of companies by `after`, then the deals with their companies. */
static void assert_complete_requests(size_t first)
{
    char *v;

    assert_int_equal(am_fake_crm_request_count(g_crm), first + 3);
    assert_request(first, "GET", COMPANIES, NULL);
    v = am_fake_request_param(request_at(first), "properties", false);
    assert_non_null(v);
    assert_non_null(strstr(v, "lifecyclestage"));
    assert_non_null(strstr(v, "domain"));
    free(v);
    v = am_fake_request_param(request_at(first), "archived", false);
    assert_string_equal(v, "false");
    free(v);
    assert_request(first + 1, "GET", COMPANIES, "9012345645");
    assert_request(first + 2, "GET", DEALS, NULL);
    v = am_fake_request_param(request_at(first + 2), "associations", false);
    assert_string_equal(v, "companies");
    free(v);
}

static void test_hubspot__happy(void **state)
{
    pull_result r;
    pull_stats st;
    char want[128];

    (void)state;
    pull_scenario(&r, &st, "happy", BASE FAST);
    assert_complete_pull(&r);
    expand(want, sizeof(want), "http://127.0.0.1:@PORT@");
    assert_string_equal(r.label, want);
    assert_int_equal(st.deals_unmatched, 1);
    assert_complete_requests(0);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* The pipeline amount over real HTTP: the deals' amounts reach the records. */
static void test_hubspot__amount_from_open_pipeline(void **state)
{
    pull_result r;
    pull_stats st;

    (void)state;
    pull_scenario(&r, &st, "happy", BASE "\"amount\":\"pipeline\"," FAST);
    assert_complete_pull(&r);
    assert_int_equal(am_test_pull_find(&r, NORTHWIND)->amount_cents, 12000000);
    assert_false(am_test_pull_find(&r, GLOBEX)->has_amount);
    assert_complete_requests(0);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

static void test_hubspot__empty(void **state)
{
    pull_result r;
    pull_stats st;

    (void)state;
    pull_scenario(&r, &st, "empty", BASE FAST);
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 0);
    /* No company: the deals could not count, so they are not asked for. */
    assert_int_equal(am_fake_crm_request_count(g_crm), 1);
    assert_request(0, "GET", COMPANIES, NULL);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* paging.next.link names a look-alike host: page 2 comes from our base by `after`. */
static void test_hubspot__cross_host_next_link(void **state)
{
    pull_result r;
    pull_stats st;

    (void)state;
    pull_scenario(&r, &st, "cross_host_next_link", BASE FAST);
    assert_complete_pull(&r);
    assert_complete_requests(0);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* A 301 to the look-alike host is not followed: one line naming it, nothing sent there. */
static void test_hubspot__redirect_to_other_host(void **state)
{
    pull_result r;
    pull_stats st;
    char want[512];

    (void)state;
    pull_scenario(&r, &st, "redirect_to_other_host", BASE FAST);
    assert_int_equal(r.rc, AM_EHTTP);
    assert_int_equal(r.count, 0);
    expand(want, sizeof(want),
           "hubspot http://127.0.0.1:@PORT@: GET " COMPANIES ": HTTP 301 redirect to " TRAP_HOST
           " not followed; set base_url to the API's own address");
    assert_string_equal(r.msg, want);
    assert_int_equal(am_fake_crm_request_count(g_crm), 1);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* The documented 429 (no Retry-After): back off, repeat the same request, complete. */
static void test_hubspot__rate_limited_then_ok(void **state)
{
    pull_result r;
    pull_stats st;

    (void)state;
    pull_scenario(&r, &st, "rate_limited_then_ok", BASE FAST);
    assert_complete_pull(&r);
    assert_int_equal(request_at(0)->status, 429);
    assert_request(0, "GET", COMPANIES, NULL);
    assert_complete_requests(1);
    assert_int_equal(st.http.retries, 1);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* The RATE_LIMITS variant with Retry-After: 1, waited up to the test's cap of one wait. */
static void test_hubspot__rate_limited_retry_after_then_ok(void **state)
{
    pull_result r;
    pull_stats st;

    (void)state;
    pull_scenario(&r, &st, "rate_limited_retry_after_then_ok",
                  BASE "\"max_wait_one_s\":\"0.2\",\"max_wait_s\":\"1\",\"max_attempts\":\"3\","
                       "\"requests_per_s\":\"0\"");
    assert_complete_pull(&r);
    assert_int_equal(request_at(0)->status, 429);
    assert_complete_requests(1);
    assert_int_equal(st.http.retries, 1);
    /* Retry-After asked 1 s; the cap of one wait (0.2 s) bounds it. */
    assert_true(st.http.waited_s >= 0.19);
    assert_true(st.http.waited_s < 0.9);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* A refused private-app token fails at once: no retry, no refresh, the variable named. */
static void test_hubspot__invalid_token(void **state)
{
    pull_result r;
    pull_stats st;
    char want[512];

    (void)state;
    pull_scenario(&r, &st, "invalid_token", BASE FAST);
    assert_int_equal(r.rc, AM_EAUTH);
    assert_int_equal(r.count, 0);
    expand(want, sizeof(want),
           "hubspot http://127.0.0.1:@PORT@: GET " COMPANIES ": 401 INVALID_AUTHENTICATION; the "
           "private-app token in " TOKEN_VAR " was refused (revoked, rotated or mistyped); copy "
           "the app's current token from HubSpot into " TOKEN_VAR);
    assert_string_equal(r.msg, want);
    assert_int_equal(am_fake_crm_request_count(g_crm), 1);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

static void test_hubspot__malformed_body(void **state)
{
    pull_result r;
    pull_stats st;
    char want[512];

    (void)state;
    pull_scenario(&r, &st, "malformed_body", BASE FAST);
    assert_int_equal(r.rc, AM_EINPUT);
    assert_int_equal(r.count, 0);
    /* Cut off at the end of the 2668 bytes of companies_page1_truncated.json. */
    expand(want, sizeof(want),
           "hubspot http://127.0.0.1:@PORT@: " COMPANIES ": invalid JSON at byte 2668 of 2668 "
           "(premature end of input); the answer was cut off or is damaged, run again");
    assert_string_equal(r.msg, want);
    assert_int_equal(am_fake_crm_request_count(g_crm), 1);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

static void test_hubspot__proxy_502_then_ok(void **state)
{
    pull_result r;
    pull_stats st;

    (void)state;
    pull_scenario(&r, &st, "proxy_502_then_ok", BASE FAST);
    assert_complete_pull(&r);
    assert_int_equal(request_at(0)->status, 502);
    assert_complete_requests(1);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

static void test_hubspot__proxy_502_persistent(void **state)
{
    pull_result r;
    pull_stats st;
    char want[512];

    (void)state;
    pull_scenario(&r, &st, "proxy_502_persistent", BASE FAST);
    assert_int_equal(r.rc, AM_EHTTP);
    assert_int_equal(r.count, 0);
    expand(want, sizeof(want),
           "hubspot http://127.0.0.1:@PORT@: GET " COMPANIES ": HTTP 502 (text/html; "
           "charset=UTF-8, not JSON) after 3 attempts (max_attempts reached); the server or a "
           "proxy in front of it is failing, run later");
    assert_string_equal(r.msg, want);
    assert_int_equal(am_fake_crm_request_count(g_crm), 3);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/*
 * "search" reads companies through POST .../companies/search, the cursor in
 * the body; "deals": "skip" takes populations from the lifecycle stage alone.
 */
static void test_hubspot__search(void **state)
{
    pull_result r;
    pull_stats st;
    const am_fake_request *rq;
    json_t *body, *filter;

    (void)state;
    pull_scenario(&r, &st, "search",
                  BASE "\"search\":{\"lifecyclestage\":\"customer; evangelist ;other\"},"
                       "\"deals\":\"skip\"," FAST);
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 3);
    assert_int_equal(am_test_pull_find(&r, NORTHWIND)->populations, CUSTOMERS);
    assert_string_equal(am_test_pull_find(&r, NORTHWIND)->domain, "northwindtraders.com");
    assert_int_equal(am_test_pull_find(&r, STARK)->populations, PROSPECTS);
    assert_int_equal(am_test_pull_find(&r, HOOLI)->populations, PROSPECTS);
    assert_int_equal(am_fake_crm_request_count(g_crm), 2);
    assert_request(0, "POST", COMPANIES "/search", NULL);
    assert_request(1, "POST", COMPANIES "/search", "2");
    /* The filter as the config wrote it: one IN over the three stages. */
    rq = request_at(0);
    assert_non_null(strstr(am_fake_request_header(rq, "Content-Type"), "application/json"));
    body = json_loadb(rq->body, rq->body_len, 0, NULL);
    assert_non_null(body);
    filter = json_array_get(
        json_object_get(json_array_get(json_object_get(body, "filterGroups"), 0), "filters"), 0);
    assert_string_equal(json_string_value(json_object_get(filter, "propertyName")),
                        "lifecyclestage");
    assert_string_equal(json_string_value(json_object_get(filter, "operator")), "IN");
    assert_int_equal(json_array_size(json_object_get(filter, "values")), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(filter, "values"), 1)),
                        "evangelist");
    json_decref(body);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* ---- config mistakes: one line naming the field, before any request -------------- */

static am_status open_error(char *msg, size_t cap, const char *fields)
{
    am_config *cfg = load_config(fields);
    am_source *src = NULL;
    am_error err;
    am_status rc;

    am_error_clear(&err);
    setenv(TOKEN_VAR, TOKEN, 1);
    rc = am_source_open(&src, source_config(cfg), &(am_source_env){0}, &err);
    assert_null(src);
    snprintf(msg, cap, "%s", err.msg);
    assert_int_equal(am_test_count_lines(msg), 1);
    assert_null(strstr(msg, TOKEN));
    am_config_free(cfg);
    return rc;
}

static void test_hubspot__config_errors(void **state)
{
    static const struct {
        const char *fields;
        const char *msg;
    } cases[] = {
        {"", "acctmap.json: orgs[0].sources[0].token_env: missing; it is required"},
        {"\"token_env\":\"AM_TEST_UNSET_VAR\"",
         "acctmap.json: orgs[0].sources[0].token_env: environment variable AM_TEST_UNSET_VAR is "
         "not set or empty; export it before the run"},
        {"\"token_env\":\"" TOKEN_VAR "\",\"deals\":\"no\"",
         "acctmap.json: orgs[0].sources[0].deals: \"no\" is neither \"read\" nor \"skip\""},
        {"\"token_env\":\"" TOKEN_VAR "\",\"amount\":\"deals\"",
         "acctmap.json: orgs[0].sources[0].amount: \"deals\" is not one of \"revenue\", "
         "\"pipeline\", \"won\""},
        {"\"token_env\":\"" TOKEN_VAR "\",\"amount\":\"won\",\"deals\":\"skip\"",
         "acctmap.json: orgs[0].sources[0].amount: \"won\" sums deals, which \"deals\": "
         "\"skip\" does not read; read the deals or use \"revenue\""},
        {"\"token_env\":\"" TOKEN_VAR "\",\"search\":{\"country\":\"\"}",
         "acctmap.json: orgs[0].sources[0].search: an empty property or value; write "
         "{\"lifecyclestage\": \"customer;opportunity\"}"},
        {"\"token_env\":\"" TOKEN_VAR "\",\"search\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\",\"d\":"
         "\"4\",\"e\":\"5\",\"f\":\"6\",\"g\":\"7\"}",
         "acctmap.json: orgs[0].sources[0].search: more than 6 properties; HubSpot's search "
         "takes at most 6 filters"},
    };
    char msg[512];
    size_t i;

    (void)state;
    unsetenv("AM_TEST_UNSET_VAR");
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(open_error(msg, sizeof(msg), cases[i].fields), AM_ECONFIG);
        assert_string_equal(msg, cases[i].msg);
    }
    assert_int_equal(
        open_error(msg, sizeof(msg), "\"token_env\":\"" TOKEN_VAR "\",\"after\":\"1\""),
        AM_ECONFIG);
    assert_non_null(strstr(msg, "unknown field \"after\" for a hubspot source; known fields: "
                                "type, populations, token_env, search, deals, amount, base_url"));
    /* "search" must map properties to text. */
    assert_int_equal(
        open_error(msg, sizeof(msg), "\"token_env\":\"" TOKEN_VAR "\",\"search\":{\"country\":1}"),
        AM_ECONFIG);
}

/* ---- generated manifests: what the shared fixtures do not cover ------------------ */

static int sandbox_setup(void **state)
{
    return am_test_sandbox_setup(state);
}

static int sandbox_teardown(void **state)
{
    stop_servers(state);
    return am_test_sandbox_teardown(state);
}

#define GENERATED_TEST(f) cmocka_unit_test_setup_teardown(f, sandbox_setup, sandbox_teardown)

/* Copy fixture bodies into the sandbox, beside a generated routes.json. */
static void copy_bodies(const char *const *names)
{
    for (; *names; names++) {
        char from[1024];
        size_t len;
        char *data;

        snprintf(from, sizeof(from), "%s/hubspot/%s", am_fake_crm_fixtures_dir(), *names);
        data = am_test_read_file(from, &len);
        assert_non_null(data);
        am_test_write_file(am_test_path(*names), data, len);
        free(data);
    }
}

/*
 * A manifest of the routes of `scenarios` (NULL-terminated, in this order;
 * "happy /crm/v3/objects/deals" takes one path of a scenario) from the
 * shared routes.json, written into the sandbox as scenario "generated".
 */
static void write_routes(const char *const *scenarios)
{
    char path[1024];
    json_t *all, *out = json_array(), *route;
    size_t i;
    char *text;

    snprintf(path, sizeof(path), "%s/hubspot/routes.json", am_fake_crm_fixtures_dir());
    all = json_load_file(path, 0, NULL);
    assert_non_null(all);
    for (; *scenarios; scenarios++) {
        json_array_foreach(all, i, route)
        {
            const char *sc = json_string_value(json_object_get(route, "scenario"));
            const char *want = *scenarios;
            const char *path_only = strchr(want, ' ');
            size_t n = path_only ? (size_t)(path_only - want) : strlen(want);

            /* "happy /crm/v3/objects/deals": one route of a scenario, by path. */
            if (strlen(sc) != n || strncmp(sc, want, n) != 0 ||
                (path_only &&
                 strcmp(json_string_value(json_object_get(route, "path")), path_only + 1) != 0)) {
                continue;
            }
            json_object_set_new(route, "scenario", json_string("generated"));
            json_array_append(out, route);
        }
    }
    text = json_dumps(out, JSON_INDENT(1));
    assert_non_null(text);
    am_test_write_file(am_test_path("routes.json"), text, strlen(text));
    free(text);
    json_decref(out);
    json_decref(all);
}

/* Pull a source from the generated manifest in the sandbox. */
static void pull_generated(pull_result *r, const char *fields_text)
{
    am_config *cfg = NULL;
    am_source *src = NULL;
    am_record_batch batch;
    am_error err;
    char fields[1024];
    size_t i;

    memset(r, 0, sizeof(*r));
    am_error_clear(&err);
    if (am_fake_crm_start_dir(&g_crm, am_test_path(""), "generated", &err)) {
        fail_msg("fake hubspot: %s", err.msg);
    }
    expand(fields, sizeof(fields), fields_text);
    setenv(TOKEN_VAR, TOKEN, 1);
    cfg = load_config(fields);
    am_record_batch_init(&batch);
    r->rc = am_source_open(&src, source_config(cfg), &(am_source_env){0}, &err);
    while (!r->rc) {
        r->rc = am_source_next_batch(src, &batch, &err);
        if (r->rc || (batch.count == 0 && batch.reject_count == 0)) {
            break;
        }
        for (i = 0; i < batch.count; i++) {
            am_test_pull_keep_record(r, &batch.records[i], AM_TEST_NO_TAX_ID);
        }
    }
    snprintf(r->msg, sizeof(r->msg), "%s", r->rc ? err.msg : "");
    am_source_close(src);
    am_record_batch_dispose(&batch);
    am_config_free(cfg);
}

/* Search with the deals read too: the matched companies get their deal states. */
static void test_hubspot__search_with_deals(void **state)
{
    static const char *const scenarios[] = {"search", "happy " DEALS, NULL};
    static const char *const bodies[] = {"companies_search_page1.json",
                                         "companies_search_page2.json",
                                         "deals_with_company_associations.json", NULL};
    pull_result r;

    (void)state;
    write_routes(scenarios);
    copy_bodies(bodies);
    pull_generated(&r, BASE "\"search\":{\"lifecyclestage\":\"customer;evangelist;other\"},"
                            "\"deals\":\"read\"," FAST);
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 3);
    /* Northwind's open deal is read; the deals of companies outside the search count for none. */
    assert_int_equal(am_test_pull_find(&r, NORTHWIND)->populations, CUSTOMERS | OPPORTUNITIES);
    assert_int_equal(am_test_pull_find(&r, STARK)->populations, PROSPECTS);
    assert_int_equal(am_fake_crm_request_count(g_crm), 3);
    assert_request(2, "GET", DEALS, NULL);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* A search past HubSpot's 10,000 results fails on its first page, saying what to do. */
static void test_hubspot__search_past_its_cap_fails(void **state)
{
    static const char routes[] =
        "[{\"scenario\":\"generated\",\"method\":\"POST\",\"path\":"
        "\"/crm/v3/objects/companies/search\",\"status\":200,\"headers\":{\"Content-Type\":"
        "\"application/json\"},\"body\":\"big.json\"}]";
    static const char big[] = "{\"total\":12345,\"results\":[{\"id\":\"1\",\"properties\":{"
                              "\"name\":\"One\"}}],\"paging\":{\"next\":{\"after\":\"1\"}}}";
    pull_result r;
    char want[512];

    (void)state;
    am_test_write_file(am_test_path("routes.json"), routes, strlen(routes));
    am_test_write_file(am_test_path("big.json"), big, strlen(big));
    pull_generated(&r, BASE "\"search\":{\"country\":\"Germany\"}," FAST);
    assert_int_equal(r.rc, AM_ELIMIT);
    assert_int_equal(r.count, 0);
    expand(want, sizeof(want),
           "hubspot http://127.0.0.1:@PORT@: the search matches 12345 companies, more than the "
           "10000 HubSpot's search can page through; narrow \"search\" or drop it to list every "
           "company");
    assert_string_equal(r.msg, want);
    assert_int_equal(am_fake_crm_request_count(g_crm), 1);
    assert_routes_used();
    am_test_pull_dispose(&r);
}

/* The daily limit cannot be waited out: one request, one line, no retry. */
static void test_hubspot__daily_limit_fails_at_once(void **state)
{
    static const char routes[] =
        "[{\"scenario\":\"generated\",\"method\":\"GET\",\"path\":\"/crm/v3/objects/companies\","
        "\"status\":429,\"headers\":{\"Content-Type\":\"application/json;charset=utf-8\"},"
        "\"body\":\"daily.json\",\"repeat\":true}]";
    static const char daily[] =
        "{\"status\":\"error\",\"message\":\"You have reached your daily limit.\","
        "\"errorType\":\"RATE_LIMIT\",\"correlationId\":\"x\",\"policyName\":\"DAILY\"}";
    pull_result r;
    char want[512];

    (void)state;
    am_test_write_file(am_test_path("routes.json"), routes, strlen(routes));
    am_test_write_file(am_test_path("daily.json"), daily, strlen(daily));
    pull_generated(&r, BASE FAST);
    assert_int_equal(r.rc, AM_ELIMIT);
    expand(want, sizeof(want),
           "hubspot http://127.0.0.1:@PORT@: GET " COMPANIES ": 429 RATE_LIMIT (You have "
           "reached your daily limit.); the portal's daily API limit is used up, run again "
           "after midnight in the portal's time zone");
    assert_string_equal(r.msg, want);
    assert_int_equal(am_fake_crm_request_count(g_crm), 1);
    am_test_pull_dispose(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hubspot__bodies_to_records),
        cmocka_unit_test(test_hubspot__amount_from_deals_counts_each_deal_once),
        cmocka_unit_test(test_hubspot__deal_states_combine),
        cmocka_unit_test(test_hubspot__populations_map_overrides_defaults),
        cmocka_unit_test(test_hubspot__bad_rows_are_rejected),
        cmocka_unit_test(test_hubspot__page_shape_checked),
        SCENARIO_TEST(test_hubspot__happy),
        SCENARIO_TEST(test_hubspot__amount_from_open_pipeline),
        SCENARIO_TEST(test_hubspot__empty),
        SCENARIO_TEST(test_hubspot__cross_host_next_link),
        SCENARIO_TEST(test_hubspot__redirect_to_other_host),
        SCENARIO_TEST(test_hubspot__rate_limited_then_ok),
        SCENARIO_TEST(test_hubspot__rate_limited_retry_after_then_ok),
        SCENARIO_TEST(test_hubspot__invalid_token),
        SCENARIO_TEST(test_hubspot__malformed_body),
        SCENARIO_TEST(test_hubspot__proxy_502_then_ok),
        SCENARIO_TEST(test_hubspot__proxy_502_persistent),
        SCENARIO_TEST(test_hubspot__search),
        SCENARIO_TEST(test_hubspot__config_errors),
        GENERATED_TEST(test_hubspot__search_with_deals),
        GENERATED_TEST(test_hubspot__search_past_its_cap_fails),
        GENERATED_TEST(test_hubspot__daily_limit_fails_at_once),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
