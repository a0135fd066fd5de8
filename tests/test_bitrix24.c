/*
 * Tests of the Bitrix24 connector (connectors/bitrix24.c): the mapping of
 * the fixture pages (../shared/fixtures-crm/bitrix24) to records and
 * populations, fed straight from the files; then every scenario of
 * bitrix24/routes.json pulled over real HTTP from the fake CRM server.
 *
 * The connector's file is included so that its static page parsers can be
 * fed fixture bodies directly; the library's copy is then not linked in.
 */
#include "connectors/bitrix24.c"

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

#define WEBHOOK_PATH "/rest/1/k2x9q7w4e1r6t3y8/"
#define WEBHOOK_CODE "k2x9q7w4e1r6t3y8"
#define NEW_ACCESS "a41c7e68006f2b1c0071d3a4000000010000074fa3c1e9b25d84f60c7e1b9a3d52c0f8"
#define NEW_REFRESH "b9e3d268006f2b1c0071d3a400000001000007e2c5a8d1f3b6047e9c2a5d8f1b3e6c04"
#define OLD_ACCESS "old-access-7f3e1c"
#define OLD_REFRESH "old-refresh-9d2b4a"
#define CLIENT_SECRET "client-secret-5a8c2e"

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

/* A config whose partner "globex" has one bitrix24 source {<fields>}. */
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
                 "\"sources\":[{\"type\":\"bitrix24\"%s%s}]}]}",
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

    snprintf(path, sizeof(path), "%s/bitrix24/%s", am_fake_crm_fixtures_dir(), name);
    body = am_test_read_file(path, len);
    if (!body) {
        fail_msg("cannot read %s", path);
    }
    return body;
}

/* ---- the mapping, fed from the fixture files ------------------------------ */

/* Feed one page file through the page reader into `take`; returns its `next`. */
static long feed(b24_source *s, const char *file, const char *method, long start, page_fn take)
{
    size_t len;
    char *body = fixture(file, &len);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    json_t *result = NULL;
    long next = -1;
    am_error err;

    am_error_clear(&err);
    if (!root) {
        fail_msg("%s: %s", file, jerr.text);
    }
    if (read_page(&result, &next, s, method, start, root, &err)) {
        fail_msg("%s: %s", file, err.msg);
    }
    if (take(s, result, &err)) {
        fail_msg("%s: %s", file, err.msg);
    }
    json_decref(root);
    free(body);
    return next;
}

/* The whole happy pull of the fixtures, without HTTP, into `r`. */
static void map_fixtures(pull_result *r, const am_config *cfg)
{
    b24_source s;
    am_record_batch batch;
    am_error err;

    memset(&s, 0, sizeof(s));
    memset(r, 0, sizeof(*r));
    s.base.cfg = source_of(cfg);
    snprintf(s.base.label, sizeof(s.base.label), "bitrix24 https://acme.bitrix24.ru");
    am_record_batch_init(&batch);
    am_error_clear(&err);
    assert_int_equal(feed(&s, "crm.company.list_start0.json", "crm.company.list", 0,
                          take_companies),
                     50);
    assert_int_equal(feed(&s, "crm.company.list_start50.json", "crm.company.list", 50,
                          take_companies),
                     0);
    assert_int_equal(index_companies(&s, &err), AM_OK);
    assert_int_equal(feed(&s, "crm.requisite.list.json", "crm.requisite.list", 0,
                          take_requisites),
                     0);
    assert_int_equal(feed(&s, "crm.deal.list.json", "crm.deal.list", 0, take_deals), 0);
    assert_int_equal(s.deals_without_company, 1);
    assert_int_equal(s.deals_unknown_company, 0);
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
 * and traps") for a pull with the default population rules. Shared by the
 * file-fed test and every HTTP scenario that completes.
 */
static void assert_happy_records(const pull_result *r)
{
    const test_record *t;

    assert_int_equal(r->count, 53);
    assert_int_equal(r->rejects, 0);

    /* The right ООО «Ромашка»: WORK site, not the VK page; INN from its first requisite. */
    t = find(r, "4");
    assert_string_equal(t->name, "ООО «Ромашка»");
    assert_string_equal(t->domain, "https://www.romashka.ru/");
    assert_string_equal(t->tax_id, "7712345671");
    assert_string_equal(t->owner, "1");
    assert_int_equal(t->populations, CUSTOMERS | OPPORTUNITIES); /* CUSTOMER + open deal */
    /* The wrong one: another company with the same name, no requisite, type "1". */
    t = find(r, "16");
    assert_string_equal(t->name, "ООО «Ромашка»");
    assert_string_equal(t->domain, "romashka-kazan.ru");
    assert_string_equal(t->tax_id, "");
    assert_int_equal(t->populations, PROSPECTS);
    t = find(r, "75");
    assert_string_equal(t->name, "ООО «Ромашка-М»");
    assert_string_equal(t->domain, "https://www.romashka.ru/moscow/");
    assert_string_equal(t->tax_id, "");

    /* Straight quotes kept as written; won deal. */
    t = find(r, "9");
    assert_string_equal(t->name, "ООО \"Вектор\"");
    assert_string_equal(t->domain, "vector-spb.ru");
    assert_string_equal(t->tax_id, "7810123451");
    assert_int_equal(t->populations, CUSTOMERS);
    /* 12-digit INN of a sole trader (ИП). */
    t = find(r, "11");
    assert_string_equal(t->tax_id, "500312345614");
    assert_string_equal(t->domain, "");
    /* CUSTOMER whose only deal was lost: still a customer by its type. */
    t = find(r, "12");
    assert_string_equal(t->tax_id, "6670123457");
    assert_string_equal(t->domain, "https://technoprom.ru"); /* WORK before OTHER */
    assert_int_equal(t->populations, CUSTOMERS);
    t = find(r, "13");
    assert_string_equal(t->tax_id, "7723456782");
    assert_int_equal(t->populations, PROSPECTS); /* SUPPLIER, no deal */
    t = find(r, "15");
    assert_int_equal(t->populations, CUSTOMERS | OPPORTUNITIES);
    /* PARTNER with an open deal in pipeline 1 (C1:NEW). */
    t = find(r, "18");
    assert_string_equal(t->name, "Acme Trading LLC");
    assert_int_equal(t->populations, OPPORTUNITIES);
    t = find(r, "10");
    assert_string_equal(t->name, "АО «Северсталь-Сервис»");
    assert_int_equal(t->populations, PROSPECTS);
    t = find(r, "32");
    assert_int_equal(t->populations, CUSTOMERS);
    t = find(r, "33");
    assert_int_equal(t->populations, CUSTOMERS);
    /* A requisite with an empty INN. */
    t = find(r, "36");
    assert_string_equal(t->tax_id, "");
    assert_int_equal(t->populations, PROSPECTS); /* OTHER */
    /* WORK site beside a FACEBOOK page; HOME when there is no WORK. */
    assert_string_equal(find(r, "27")->domain, "https://www.delta-consult.ru/");
    assert_string_equal(find(r, "39")->domain, "zeleny-sad.ru");
    assert_string_equal(find(r, "22")->domain, "https://ромашка-плюс.рф/");
    assert_string_equal(find(r, "19")->domain, " stroymontazh.ru ");
    assert_string_equal(find(r, "94")->domain, "mega-opt.ru"); /* two WORK sites: the first */
    assert_string_equal(find(r, "71")->domain, "");            /* no site at all */
    assert_string_equal(find(r, "41")->name, "Northwind Traders Ltd");
    assert_string_equal(find(r, "58")->domain, "globex-logistics.de");
    assert_string_equal(find(r, "82")->domain, "http://shop.initech-solutions.co.uk/catalog");

    /* The PHP-escaped last page: \uXXXX and \/ decoded. */
    t = find(r, "108");
    assert_string_equal(t->name, "ООО «Яблоко»");
    assert_string_equal(t->domain, "https://yabloko-market.ru/");
    assert_string_equal(find(r, "113")->name, "ООО «ТК «Магистраль»");
    assert_string_equal(r->records[52].id, "113"); /* the pull's order */
}

static void test_bitrix24__fixture_pages_map_to_records(void **state)
{
    am_config *cfg = config_with("\"webhook_env\":\"B24_WEBHOOK\"");
    pull_result r;

    (void)state;
    map_fixtures(&r, cfg);
    assert_happy_records(&r);
    result_dispose(&r);
    am_config_free(cfg);
}

/* The `populations` map comes first for every value; defaults for the others. */
static void test_bitrix24__population_rules_override_defaults(void **state)
{
    am_config *cfg = config_with("\"webhook_env\":\"B24_WEBHOOK\",\"populations\":{"
                                 "\"partner\":\"partners\",\"lost\":\"churned\","
                                 "\"1\":\"customers\",\"open\":[\"opportunities\",\"pipeline\"]}");
    uint32_t partners = pop_bit(cfg, "partners"), churned = pop_bit(cfg, "churned");
    uint32_t pipeline = pop_bit(cfg, "pipeline");
    pull_result r;

    (void)state;
    map_fixtures(&r, cfg);
    assert_int_equal(r.count, 53);
    /* PARTNER (ASCII case ignored) with an open deal. */
    assert_int_equal(find(&r, "18")->populations, partners | OPPORTUNITIES | pipeline);
    assert_int_equal(find(&r, "10")->populations, partners);
    /* CUSTOMER, lost deal: lost now maps to churned. */
    assert_int_equal(find(&r, "12")->populations, CUSTOMERS | churned);
    /* The portal-defined type "1" mapped to customers. */
    assert_int_equal(find(&r, "16")->populations, CUSTOMERS);
    assert_int_equal(find(&r, "4")->populations, CUSTOMERS | OPPORTUNITIES | pipeline);
    assert_int_equal(find(&r, "13")->populations, PROSPECTS);
    result_dispose(&r);
    am_config_free(cfg);
}

/* The truncated page is invalid JSON and invalid UTF-8: jansson refuses it. */
static void test_bitrix24__truncated_page_is_refused(void **state)
{
    size_t len;
    char *body = fixture("crm.company.list_start0_truncated.json", &len);
    json_error_t jerr;

    (void)state;
    assert_null(json_loadb(body, len, 0, &jerr));
    free(body);
}

static void test_bitrix24__site_choice(void **state)
{
    json_error_t jerr;
    json_t *web = json_loads("[{\"VALUE_TYPE\":\"VK\",\"VALUE\":\"https://vk.com/x\"},"
                             "{\"VALUE_TYPE\":\"OTHER\",\"VALUE\":\"other.ru\"},"
                             "{\"VALUE_TYPE\":\"HOME\",\"VALUE\":\"\"},"
                             "{\"VALUE_TYPE\":\"HOME\",\"VALUE\":\"home.ru\"}]",
                             0, &jerr);
    json_t *social = json_loads("[{\"VALUE_TYPE\":\"FACEBOOK\",\"VALUE\":\"fb.com/x\"},"
                                "{\"VALUE_TYPE\":\"TELEGRAM\",\"VALUE\":\"t.me/x\"}]",
                                0, &jerr);

    (void)state;
    assert_string_equal(pick_site(web), "home.ru");
    assert_string_equal(pick_site(social), "");
    assert_string_equal(pick_site(NULL), "");
    json_decref(web);
    json_decref(social);
}

/* A `next` that does not move forward would page forever. */
static void test_bitrix24__next_must_move_forward(void **state)
{
    b24_source s;
    json_error_t jerr;
    json_t *root = json_loads("{\"result\":[],\"next\":50}", 0, &jerr);
    json_t *result;
    long next;
    am_error err;

    (void)state;
    memset(&s, 0, sizeof(s));
    snprintf(s.base.label, sizeof(s.base.label), "bitrix24 https://acme.bitrix24.ru");
    assert_int_equal(read_page(&result, &next, &s, "crm.company.list", 50, root, &err),
                     AM_EINPUT);
    assert_string_equal(err.msg, "bitrix24 https://acme.bitrix24.ru: crm.company.list (start "
                                 "50): \"next\" is not an offset after this page; the portal's "
                                 "answer is damaged, run again later");
    assert_int_equal(read_page(&result, &next, &s, "crm.company.list", 0, root, &err), AM_OK);
    assert_int_equal(next, 50);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitrix24__fixture_pages_map_to_records),
        cmocka_unit_test(test_bitrix24__population_rules_override_defaults),
        cmocka_unit_test(test_bitrix24__truncated_page_is_refused),
        cmocka_unit_test(test_bitrix24__site_choice),
        cmocka_unit_test(test_bitrix24__next_must_move_forward),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
