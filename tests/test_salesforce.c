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
#define NEW_TOKEN                                                                          \
    "00DRO000000AbCd2AK!AQ8AQFake.TokenForTests.Only_qW3rT5yU7iO9pA1sD3fG5hJ7kL9zX1cV3bN5mQ"

#define NORTHWIND "001RO000004xQmZYAU"
#define GLOBEX "001RO000004xQn3YAE"
#define INITECH "001RO000004xQnDYAU"
#define ACME "001RO000005Ab1cYAC"
#define ROMASHKA "001RO000005Ab2HYAS"
#define VANDELAY "001RO000005Ab2qYAC"
#define STARK "001RO000006KwPeYAK"

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
    size_t i;

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

static void test_salesforce__bodies_to_records(void **state)
{
    static const char *const account_pages[] = {"accounts_page1.json", "accounts_page2.json",
                                                NULL};
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

    t = find(&r, NORTHWIND);
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
    t = find(&r, GLOBEX);
    assert_string_equal(t->domain, "globex-logistics.de");
    assert_int_equal(t->amount_cents, INT64_C(1250000000));
    assert_int_equal(t->populations, CUSTOMERS);

    /* A Customer - Channel whose only opportunity was lost: still a customer by Type. */
    t = find(&r, INITECH);
    assert_false(t->has_amount);
    assert_int_equal(t->populations, CUSTOMERS);

    t = find(&r, ROMASHKA);
    assert_string_equal(t->name, "ООО «Ромашка»");
    assert_string_equal(t->country, "Russia");
    assert_int_equal(t->amount_cents, INT64_C(95000000000));
    assert_int_equal(t->populations, OPPORTUNITIES);

    /* Partner Types and no Type at all, without opportunities: prospects. */
    t = find(&r, ACME);
    assert_string_equal(t->domain, "WWW.ACMEROBOTICS.IO");
    assert_int_equal(t->amount_cents, INT64_C(320000000));
    assert_int_equal(t->populations, PROSPECTS);
    t = find(&r, VANDELAY);
    assert_string_equal(t->domain, "");
    assert_string_equal(t->country, "");
    assert_false(t->has_amount);
    assert_int_equal(t->populations, PROSPECTS);
    t = find(&r, STARK);
    assert_int_equal(t->amount_cents, INT64_C(12000000000));
    assert_int_equal(t->populations, PROSPECTS);

    result_dispose(&r);
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
    result_dispose(&r);
    sf_close(&s->base);
    am_config_free(cfg);
}

/* The source's `populations` map comes first; the defaults apply to values it does not map. */
static void test_salesforce__populations_map_overrides_defaults(void **state)
{
    static const char *const account_pages[] = {"accounts_page1.json", "accounts_page2.json",
                                                NULL};
    static const char *const opportunity_pages[] = {"opportunities.json", NULL};
    am_config *cfg = load_config(
        "\"instance_url\":\"https://acme.my.salesforce.com\",\"token_env\":\"X\","
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
    assert_int_equal(find(&r, INITECH)->populations, partners | churned);
    assert_int_equal(find(&r, STARK)->populations, partners | PROSPECTS);
    /* Unmapped values keep their defaults. */
    assert_int_equal(find(&r, NORTHWIND)->populations, CUSTOMERS | pipeline);
    assert_int_equal(find(&r, GLOBEX)->populations, CUSTOMERS);
    assert_int_equal(find(&r, ROMASHKA)->populations, pipeline);
    assert_int_equal(find(&r, ACME)->populations, PROSPECTS);
    result_dispose(&r);
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
    result_dispose(&r);
    sf_close(&s->base);
    am_config_free(cfg);
}

/* A page that is JSON but not a query result fails the source with one line. */
static void test_salesforce__page_shape_checked(void **state)
{
    static const char *const bodies[] = {
        "[]", "{\"records\":[]}", "{\"records\":{},\"done\":true}",
        "{\"records\":[],\"done\":false}", "{\"records\":[],\"done\":\"yes\"}",
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
        assert_true(decimal_to_cents(&cents, "1850000.00", 10));
        assert_int_equal(cents, INT64_C(185000000));
        assert_true(decimal_to_cents(&cents, "4.8e+07", 7));
        assert_int_equal(cents, INT64_C(4800000000));
        assert_false(decimal_to_cents(&cents, "", 0));
        assert_false(decimal_to_cents(&cents, "1e", 2));
        assert_false(decimal_to_cents(&cents, "1 000", 5));
        assert_false(decimal_to_cents(&cents, ".", 1));
        assert_false(decimal_to_cents(&cents, "99999999999999999999", 20));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_salesforce__bodies_to_records),
        cmocka_unit_test(test_salesforce__query_all_drops_deleted_and_merged),
        cmocka_unit_test(test_salesforce__populations_map_overrides_defaults),
        cmocka_unit_test(test_salesforce__bad_rows_are_rejected),
        cmocka_unit_test(test_salesforce__page_shape_checked),
        cmocka_unit_test(test_salesforce__amounts_exact),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
