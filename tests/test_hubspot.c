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

/* A record copied out of its batch, so it outlives the batch. */
typedef struct test_record {
    char *id, *name, *domain, *country, *city, *owner;
    int64_t amount_cents;
    bool has_amount;
    uint32_t populations;
} test_record;

/* Everything one source gave, read to the end or to its first failure. */
typedef struct pull_result {
    am_status rc;
    char msg[512];
    char label[256];
    test_record *records;
    size_t count;
    char **rejects;
    size_t reject_count;
} pull_result;

static char *dup_or_fail(const char *s)
{
    char *copy = strdup(s);

    assert_non_null(copy);
    return copy;
}

static void keep_record(pull_result *r, const am_record *in)
{
    test_record *out;

    r->records = realloc(r->records, (r->count + 1) * sizeof(*r->records));
    assert_non_null(r->records);
    out = &r->records[r->count++];
    out->id = dup_or_fail(in->id);
    out->name = dup_or_fail(in->name);
    out->domain = dup_or_fail(in->domain);
    out->country = dup_or_fail(in->country);
    out->city = dup_or_fail(in->city);
    out->owner = dup_or_fail(in->owner);
    out->amount_cents = in->amount_cents;
    out->has_amount = in->has_amount;
    out->populations = in->populations;
    assert_string_equal(in->tax_id, "");
}

static void result_dispose(pull_result *r)
{
    size_t i;

    for (i = 0; i < r->count; i++) {
        test_record *t = &r->records[i];
        free(t->id);
        free(t->name);
        free(t->domain);
        free(t->country);
        free(t->city);
        free(t->owner);
    }
    for (i = 0; i < r->reject_count; i++) {
        free(r->rejects[i]);
    }
    free(r->records);
    free(r->rejects);
    memset(r, 0, sizeof(*r));
}

static const test_record *find(const pull_result *r, const char *id)
{
    size_t i;

    for (i = 0; i < r->count; i++) {
        if (strcmp(r->records[i].id, id) == 0) {
            return &r->records[i];
        }
    }
    fail_msg("no record %s among %zu", id, r->count);
    return NULL;
}

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
    size_t i;

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
        for (i = 0; i < batch.count; i++) {
            keep_record(r, &batch.records[i]);
        }
        r->rejects = realloc(r->rejects, (r->reject_count + batch.reject_count + 1) *
                                             sizeof(*r->rejects));
        assert_non_null(r->rejects);
        for (i = 0; i < batch.reject_count; i++) {
            r->rejects[r->reject_count++] = dup_or_fail(batch.rejects[i].msg);
        }
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
    t = find(&r, NORTHWIND);
    assert_string_equal(t->name, "Northwind Traders Ltd");
    assert_string_equal(t->domain, "northwindtraders.com");
    assert_string_equal(t->country, "United States");
    assert_true(t->has_amount);
    assert_int_equal(t->amount_cents, INT64_C(4800000000));
    assert_int_equal(t->populations, CUSTOMERS | OPPORTUNITIES);

    /* lifecyclestage says opportunity, but its deal was won. */
    t = find(&r, GLOBEX);
    assert_false(t->has_amount);
    assert_int_equal(t->populations, CUSTOMERS);

    /* A lost deal makes nobody a customer. */
    t = find(&r, INITECH);
    assert_string_equal(t->domain, "initech-solutions.co.uk");
    assert_int_equal(t->amount_cents, INT64_C(740000000));
    assert_int_equal(t->populations, PROSPECTS);

    t = find(&r, ROMASHKA);
    assert_string_equal(t->name, "ООО «Ромашка»");
    assert_string_equal(t->domain, "romashka.ru");
    assert_int_equal(t->amount_cents, INT64_C(95000000000));
    assert_int_equal(t->populations, OPPORTUNITIES);

    /* No domain and no website: the record stays, by name. */
    t = find(&r, UMBRELLA);
    assert_string_equal(t->domain, "");
    assert_int_equal(t->populations, PROSPECTS);
    t = find(&r, VANDELAY);
    assert_string_equal(t->country, "");
    assert_int_equal(t->populations, PROSPECTS);
    assert_int_equal(find(&r, STARK)->populations, PROSPECTS);
    t = find(&r, HOOLI);
    assert_true(t->has_amount);
    assert_int_equal(t->amount_cents, 0);
    assert_int_equal(t->populations, PROSPECTS);

    result_dispose(&r);
    hs_close(&s->base);
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
    assert_int_equal(find(&r, "1")->populations, CUSTOMERS | OPPORTUNITIES);
    /* "CUSTOMER" in any ASCII case is the customer stage; a lost deal adds nothing. */
    assert_int_equal(find(&r, "2")->populations, CUSTOMERS);
    assert_int_equal(find(&r, "3")->populations, OPPORTUNITIES);
    result_dispose(&r);
    hs_close(&s->base);
    am_config_free(cfg);
}

/* The source's `populations` map comes first; the defaults apply to values it does not map. */
static void test_hubspot__populations_map_overrides_defaults(void **state)
{
    static const char *const pages[] = {"companies_page1.json", "companies_page2.json", NULL};
    static const char *const deals[] = {"deals_with_company_associations.json", NULL};
    am_config *cfg = load_config(
        "\"token_env\":\"X\",\"populations\":{\"Opportunity\":\"opportunities\","
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
    assert_int_equal(find(&r, NORTHWIND)->populations, PROSPECTS | OPPORTUNITIES);
    assert_int_equal(find(&r, GLOBEX)->populations, OPPORTUNITIES | CUSTOMERS);
    assert_int_equal(find(&r, INITECH)->populations, PROSPECTS | churned);
    assert_int_equal(find(&r, STARK)->populations, CUSTOMERS | advocates);
    assert_int_equal(find(&r, HOOLI)->populations, PROSPECTS);
    result_dispose(&r);
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
    result_dispose(&r);
    hs_close(&s->base);
    am_config_free(cfg);
}

/* A page that is JSON but not a list fails the source with one line. */
static void test_hubspot__page_shape_checked(void **state)
{
    static const char *const bodies[] = {
        "[]", "{}", "{\"results\":{}}", "{\"results\":[],\"paging\":{\"next\":{\"after\":true}}}",
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hubspot__bodies_to_records),
        cmocka_unit_test(test_hubspot__deal_states_combine),
        cmocka_unit_test(test_hubspot__populations_map_overrides_defaults),
        cmocka_unit_test(test_hubspot__bad_rows_are_rejected),
        cmocka_unit_test(test_hubspot__page_shape_checked),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
