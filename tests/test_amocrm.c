/*
 * Tests of the amoCRM connector (connectors/amocrm.c): the mapping of the
 * fixture pages (../shared/fixtures-crm/amocrm) to records and populations,
 * fed straight from the files; then every scenario of amocrm/routes.json
 * pulled over real HTTP from the fake CRM server.
 *
 * The connector's file is included so that its static page parsers can be
 * fed fixture bodies directly; the library's copy is then not linked in.
 */
#include "connectors/amocrm.c"

#include "helpers.h"
#include "tests/fake_crm.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acctmap/config.h"
#include "acctmap/connector.h"
#include "acctmap/record.h"

#define CUSTOMERS (1u << AM_POP_CUSTOMERS)
#define PROSPECTS (1u << AM_POP_PROSPECTS)
#define OPPORTUNITIES (1u << AM_POP_OPPORTUNITIES)

/* A record copied out of its batch, so it outlives the batch. */
typedef struct test_record {
    char *id, *name, *domain, *tax_id, *owner;
    uint32_t populations;
} test_record;

/* Everything one source gave, read to the end or to its first failure. */
typedef struct pull_result {
    am_status rc;
    char msg[512];
    char label[256];
    test_record *records;
    size_t count;
    size_t rejects;
} pull_result;

static char *dup_or_fail(const char *s)
{
    char *copy = strdup(s);

    assert_non_null(copy);
    return copy;
}

static void keep_batch(pull_result *r, const am_record_batch *batch)
{
    size_t i;

    r->records = realloc(r->records, (r->count + batch->count + 1) * sizeof(*r->records));
    assert_non_null(r->records);
    for (i = 0; i < batch->count; i++) {
        const am_record *in = &batch->records[i];
        test_record *out = &r->records[r->count++];

        out->id = dup_or_fail(in->id);
        out->name = dup_or_fail(in->name);
        out->domain = dup_or_fail(in->domain);
        out->tax_id = dup_or_fail(in->tax_id);
        out->owner = dup_or_fail(in->owner);
        out->populations = in->populations;
        /* Records of a CRM have no country or city of their own here. */
        assert_string_equal(in->country, "");
        assert_string_equal(in->city, "");
    }
    r->rejects += batch->reject_count;
}

static void result_dispose(pull_result *r)
{
    size_t i;

    for (i = 0; i < r->count; i++) {
        free(r->records[i].id);
        free(r->records[i].name);
        free(r->records[i].domain);
        free(r->records[i].tax_id);
        free(r->records[i].owner);
    }
    free(r->records);
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
    fail_msg("no record with id %s", id);
    return NULL;
}

/* A config whose partner "globex" has one amocrm source {<fields>}. */
static am_config *config_with(const char *fields)
{
    am_config *cfg = NULL;
    am_error err;
    char json[4096];
    int n;

    am_error_clear(&err);
    n = snprintf(json, sizeof(json),
                 "{\"self\":\"acme\",\"store\":\"dir:./data\",\"orgs\":[{\"id\":\"acme\","
                 "\"sources\":[{\"type\":\"csv\",\"path\":\"acme.csv\"}]},{\"id\":\"globex\","
                 "\"sources\":[{\"type\":\"amocrm\"%s%s}]}]}",
                 fields[0] ? "," : "", fields);
    assert_true(n > 0 && (size_t)n < sizeof(json));
    if (am_config_parse(&cfg, json, (size_t)n, "acctmap.json", ".", &err)) {
        fail_msg("config: %s", err.msg);
    }
    return cfg;
}

static const am_source_config *source_of(const am_config *cfg)
{
    return &am_config_org_find(cfg, "globex")->sources[0];
}

/* The bit of population `name` in org "globex". */
static uint32_t pop_bit(const am_config *cfg, const char *name)
{
    const am_config_org *org = am_config_org_find(cfg, "globex");
    size_t i;

    for (i = 0; i < org->population_count; i++) {
        if (strcmp(org->populations[i], name) == 0) {
            return 1u << i;
        }
    }
    fail_msg("no population %s", name);
    return 0;
}

static char *fixture(const char *name, size_t *len)
{
    char path[1024];
    char *body;

    snprintf(path, sizeof(path), "%s/amocrm/%s", am_fake_crm_fixtures_dir(), name);
    body = am_test_read_file(path, len);
    if (!body) {
        fail_msg("cannot read %s", path);
    }
    return body;
}

/* ---- the mapping, fed from the fixture files ------------------------------ */

/* Feed one page file through the page reader into `take`; returns its next link. */
static bool feed(amo_source *s, const char *file, const char *key, long page, page_fn take)
{
    size_t len;
    char *body = fixture(file, &len);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    json_t *list = NULL;
    const char *next = NULL;
    bool more;
    am_error err;

    am_error_clear(&err);
    if (!root) {
        fail_msg("%s: %s", file, jerr.text);
    }
    if (parse_page(&list, &next, s, key, page, root, &err)) {
        fail_msg("%s: %s", file, err.msg);
    }
    if (take(s, list, &err)) {
        fail_msg("%s: %s", file, err.msg);
    }
    more = next != NULL;
    json_decref(root);
    free(body);
    return more;
}

/* The whole happy pull of the fixtures, without HTTP, into `r`. */
static void map_fixtures(pull_result *r, const am_config *cfg)
{
    amo_source s;
    am_record_batch batch;
    am_error err;

    memset(&s, 0, sizeof(s));
    memset(r, 0, sizeof(*r));
    s.base.cfg = source_of(cfg);
    snprintf(s.base.label, sizeof(s.base.label), "amocrm https://example.amocrm.ru");
    am_record_batch_init(&batch);
    am_error_clear(&err);
    assert_int_equal(read_inn_field(&s, &err), AM_OK);
    assert_true(feed(&s, "companies_page1.json", "companies", 1, take_companies));
    assert_false(feed(&s, "companies_page2.json", "companies", 2, take_companies));
    assert_int_equal(index_companies(&s, &err), AM_OK);
    assert_false(feed(&s, "leads_page1.json", "leads", 1, take_leads));
    assert_int_equal(s.leads_without_company, 1);
    assert_int_equal(s.leads_unknown_company, 0);
    for (;;) {
        assert_int_equal(emit_companies(&s, &batch, &err), AM_OK);
        if (!batch.count && !batch.reject_count) {
            break;
        }
        keep_batch(r, &batch);
        am_record_batch_reset(&batch);
    }
    am_record_batch_dispose(&batch);
    free(s.companies);
    free(s.by_id);
    am_arena_dispose(&s.arena);
}

/*
 * The fixtures' facts (fixtures README, "Deal facts", "Deliberate overlaps
 * and traps") for a pull with the default rules. Shared by the file-fed test
 * and every HTTP scenario that completes.
 */
static void assert_happy_records(const pull_result *r)
{
    const test_record *t;

    assert_int_equal(r->count, 8);
    assert_int_equal(r->rejects, 0);
    t = find(r, "31840215");
    assert_string_equal(t->name, "ООО «Ромашка»");
    assert_string_equal(t->domain, "https://www.romashka.ru/");
    assert_string_equal(t->tax_id, "7712345671");
    assert_string_equal(t->owner, "8123457");
    assert_int_equal(t->populations, OPPORTUNITIES);
    t = find(r, "31840227");
    assert_string_equal(t->name, "ООО \"Вектор\"");
    assert_string_equal(t->domain, "vector-spb.ru");
    assert_string_equal(t->tax_id, "7810123451");
    assert_int_equal(t->populations, CUSTOMERS);
    /* Only a free-mail address links it to Bitrix24's Петрова: no site here. */
    t = find(r, "31840233");
    assert_string_equal(t->name, "ИП Петрова А.С.");
    assert_string_equal(t->domain, "");
    assert_string_equal(t->tax_id, "770198765434");
    assert_int_equal(t->populations, OPPORTUNITIES);
    t = find(r, "31840249");
    assert_string_equal(t->name, "Initech Solutions Ltd");
    assert_string_equal(t->domain, "http://shop.initech-solutions.co.uk/catalog");
    assert_string_equal(t->tax_id, "");
    assert_int_equal(t->populations, PROSPECTS); /* its only lead was lost */
    t = find(r, "31840252");
    assert_string_equal(t->name, "Без контактов");
    assert_string_equal(t->domain, "");
    assert_int_equal(t->populations, PROSPECTS);
    /* Two sites: the first; won in the second pipeline. */
    t = find(r, "31840268");
    assert_string_equal(t->name, "АО «Северсталь-Сервис»");
    assert_string_equal(t->domain, "http://www.severstal-service.ru");
    assert_string_equal(t->tax_id, "3528012345");
    assert_int_equal(t->populations, CUSTOMERS);
    assert_string_equal(find(r, "31840271")->domain, "ALTYNDALA.KZ");
    t = find(r, "31840285");
    assert_string_equal(t->name, "ООО «Ромашка Плюс»");
    assert_string_equal(t->domain, "https://ромашка-плюс.рф/");
    assert_int_equal(t->populations, PROSPECTS);
    assert_string_equal(r->records[7].id, "31840285"); /* the pull's order */
}

static void test_amocrm__fixture_pages_map_to_records(void **state)
{
    am_config *cfg = config_with("\"token_env\":\"AMO_TOKEN\"");
    pull_result r;

    (void)state;
    map_fixtures(&r, cfg);
    assert_happy_records(&r);
    result_dispose(&r);
    am_config_free(cfg);
}

/* `inn_field` by id finds the same field; by another name, none. */
static void test_amocrm__inn_field_by_id_or_name(void **state)
{
    am_config *by_id = config_with("\"token_env\":\"T\",\"inn_field\":\"1052301\"");
    am_config *by_name = config_with("\"token_env\":\"T\",\"inn_field\":\"Адрес\"");
    am_config *wrong_id = config_with("\"token_env\":\"T\",\"inn_field\":\"1045711\"");
    pull_result r;

    (void)state;
    map_fixtures(&r, by_id);
    assert_string_equal(find(&r, "31840215")->tax_id, "7712345671");
    assert_string_equal(find(&r, "31840268")->tax_id, "3528012345");
    result_dispose(&r);
    /* A field chosen by name: the address lands in tax_id, as configured. */
    map_fixtures(&r, by_name);
    assert_string_equal(find(&r, "31840215")->tax_id, "г. Москва, ул. Лесная, д. 5");
    assert_string_equal(find(&r, "31840227")->tax_id, "");
    result_dispose(&r);
    /* The phone field's id: a phone is what the config asked for. */
    map_fixtures(&r, wrong_id);
    assert_string_equal(find(&r, "31840215")->tax_id, "+7 495 123-45-67");
    result_dispose(&r);
    am_config_free(by_id);
    am_config_free(by_name);
    am_config_free(wrong_id);
}

static void test_amocrm__population_rules_override_defaults(void **state)
{
    am_config *cfg = config_with("\"token_env\":\"T\",\"populations\":{\"WON\":\"won-deals\","
                                 "\"lost\":\"churned\"}");
    uint32_t won = pop_bit(cfg, "won-deals"), churned = pop_bit(cfg, "churned");
    pull_result r;

    (void)state;
    map_fixtures(&r, cfg);
    assert_int_equal(find(&r, "31840227")->populations, won); /* mapped: no default */
    assert_int_equal(find(&r, "31840249")->populations, churned);
    assert_int_equal(find(&r, "31840215")->populations, OPPORTUNITIES);
    assert_int_equal(find(&r, "31840252")->populations, PROSPECTS);
    result_dispose(&r);
    am_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amocrm__fixture_pages_map_to_records),
        cmocka_unit_test(test_amocrm__inn_field_by_id_or_name),
        cmocka_unit_test(test_amocrm__population_rules_override_defaults),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
