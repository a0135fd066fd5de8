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

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* What a source gave, kept out of its batches (tests/helpers.h). */
typedef am_test_record test_record;
typedef am_test_pull pull_result;

static const am_source_config *source_of(const am_config *cfg)
{
    return &am_config_org_find(cfg, "globex")->sources[0];
}

/* ---- the mapping, fed from the fixture files ------------------------------ */

/* Feed one page file through the page reader into `take`; returns its `next`. */
static long feed(b24_source *s, const char *file, const char *method, long start, page_fn take)
{
    size_t len;
    char *body = am_test_crm_fixture("bitrix24", file, &len);
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
    assert_int_equal(
        feed(&s, "crm.company.list_start0.json", "crm.company.list", 0, take_companies), 50);
    assert_int_equal(
        feed(&s, "crm.company.list_start50.json", "crm.company.list", 50, take_companies), 0);
    assert_int_equal(index_companies(&s, &err), AM_OK);
    assert_int_equal(feed(&s, "crm.requisite.list.json", "crm.requisite.list", 0, take_requisites),
                     0);
    assert_int_equal(feed(&s, "crm.deal.list.json", "crm.deal.list", 0, take_deals), 0);
    assert_int_equal(s.deals_without_company, 1);
    assert_int_equal(s.deals_unknown_company, 0);
    for (;;) {
        assert_int_equal(emit_companies(&s, &batch, &err), AM_OK);
        if (!batch.count && !batch.reject_count) {
            break;
        }
        am_test_pull_keep_batch(r, &batch, AM_TEST_NO_PLACE);
        am_record_batch_reset(&batch);
    }
    am_record_batch_dispose(&batch);
    am_crm_list_dispose(&s.list);
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
    assert_int_equal(r->reject_count, 0);

    /* The right ООО «Ромашка»: WORK site, not the VK page; INN from its first requisite. */
    t = am_test_pull_find(r, "4");
    assert_string_equal(t->name, "ООО «Ромашка»");
    assert_string_equal(t->domain, "https://www.romashka.ru/");
    assert_string_equal(t->tax_id, "7712345671");
    assert_string_equal(t->owner, "1");
    assert_int_equal(t->populations, CUSTOMERS | OPPORTUNITIES); /* CUSTOMER + open deal */
    /* The wrong one: another company with the same name, no requisite, type "1". */
    t = am_test_pull_find(r, "16");
    assert_string_equal(t->name, "ООО «Ромашка»");
    assert_string_equal(t->domain, "romashka-kazan.ru");
    assert_string_equal(t->tax_id, "");
    assert_int_equal(t->populations, PROSPECTS);
    t = am_test_pull_find(r, "75");
    assert_string_equal(t->name, "ООО «Ромашка-М»");
    assert_string_equal(t->domain, "https://www.romashka.ru/moscow/");
    assert_string_equal(t->tax_id, "");

    /* Straight quotes kept as written; won deal. */
    t = am_test_pull_find(r, "9");
    assert_string_equal(t->name, "ООО \"Вектор\"");
    assert_string_equal(t->domain, "vector-spb.ru");
    assert_string_equal(t->tax_id, "7810123451");
    assert_int_equal(t->populations, CUSTOMERS);
    /* 12-digit INN of a sole trader (ИП). */
    t = am_test_pull_find(r, "11");
    assert_string_equal(t->tax_id, "500312345614");
    assert_string_equal(t->domain, "");
    /* CUSTOMER whose only deal was lost: still a customer by its type. */
    t = am_test_pull_find(r, "12");
    assert_string_equal(t->tax_id, "6670123457");
    assert_string_equal(t->domain, "https://technoprom.ru"); /* WORK before OTHER */
    assert_int_equal(t->populations, CUSTOMERS);
    t = am_test_pull_find(r, "13");
    assert_string_equal(t->tax_id, "7723456782");
    assert_int_equal(t->populations, PROSPECTS); /* SUPPLIER, no deal */
    t = am_test_pull_find(r, "15");
    assert_int_equal(t->populations, CUSTOMERS | OPPORTUNITIES);
    /* PARTNER with an open deal in pipeline 1 (C1:NEW). */
    t = am_test_pull_find(r, "18");
    assert_string_equal(t->name, "Acme Trading LLC");
    assert_int_equal(t->populations, OPPORTUNITIES);
    t = am_test_pull_find(r, "10");
    assert_string_equal(t->name, "АО «Северсталь-Сервис»");
    assert_int_equal(t->populations, PROSPECTS);
    t = am_test_pull_find(r, "32");
    assert_int_equal(t->populations, CUSTOMERS);
    t = am_test_pull_find(r, "33");
    assert_int_equal(t->populations, CUSTOMERS);
    /* A requisite with an empty INN. */
    t = am_test_pull_find(r, "36");
    assert_string_equal(t->tax_id, "");
    assert_int_equal(t->populations, PROSPECTS); /* OTHER */
    /* WORK site beside a FACEBOOK page; HOME when there is no WORK. */
    assert_string_equal(am_test_pull_find(r, "27")->domain, "https://www.delta-consult.ru/");
    assert_string_equal(am_test_pull_find(r, "39")->domain, "zeleny-sad.ru");
    assert_string_equal(am_test_pull_find(r, "22")->domain, "https://ромашка-плюс.рф/");
    assert_string_equal(am_test_pull_find(r, "19")->domain, " stroymontazh.ru ");
    assert_string_equal(am_test_pull_find(r, "94")->domain,
                        "mega-opt.ru");                          /* two WORK sites: the first */
    assert_string_equal(am_test_pull_find(r, "71")->domain, ""); /* no site at all */
    assert_string_equal(am_test_pull_find(r, "41")->name, "Northwind Traders Ltd");
    assert_string_equal(am_test_pull_find(r, "58")->domain, "globex-logistics.de");
    assert_string_equal(am_test_pull_find(r, "82")->domain,
                        "http://shop.initech-solutions.co.uk/catalog");

    /* The PHP-escaped last page: \uXXXX and \/ decoded. */
    t = am_test_pull_find(r, "108");
    assert_string_equal(t->name, "ООО «Яблоко»");
    assert_string_equal(t->domain, "https://yabloko-market.ru/");
    assert_string_equal(am_test_pull_find(r, "113")->name, "ООО «ТК «Магистраль»");
    assert_string_equal(r->records[52].id, "113"); /* the pull's order */
}

static void test_bitrix24__fixture_pages_map_to_records(void **state)
{
    am_config *cfg = am_test_partner_config("bitrix24", "\"webhook_env\":\"B24_WEBHOOK\"");
    pull_result r;

    (void)state;
    map_fixtures(&r, cfg);
    assert_happy_records(&r);
    am_test_pull_dispose(&r);
    am_config_free(cfg);
}

/* The `populations` map comes first for every value; defaults for the others. */
static void test_bitrix24__population_rules_override_defaults(void **state)
{
    am_config *cfg = am_test_partner_config(
        "bitrix24", "\"webhook_env\":\"B24_WEBHOOK\",\"populations\":{"
                    "\"partner\":\"partners\",\"lost\":\"churned\","
                    "\"1\":\"customers\",\"open\":[\"opportunities\",\"pipeline\"]}");
    uint32_t partners = am_test_pop_bit(cfg, "globex", "partners"),
             churned = am_test_pop_bit(cfg, "globex", "churned");
    uint32_t pipeline = am_test_pop_bit(cfg, "globex", "pipeline");
    pull_result r;

    (void)state;
    map_fixtures(&r, cfg);
    assert_int_equal(r.count, 53);
    /* PARTNER (ASCII case ignored) with an open deal. */
    assert_int_equal(am_test_pull_find(&r, "18")->populations, partners | OPPORTUNITIES | pipeline);
    assert_int_equal(am_test_pull_find(&r, "10")->populations, partners);
    /* CUSTOMER, lost deal: lost now maps to churned. */
    assert_int_equal(am_test_pull_find(&r, "12")->populations, CUSTOMERS | churned);
    /* The portal-defined type "1" mapped to customers. */
    assert_int_equal(am_test_pull_find(&r, "16")->populations, CUSTOMERS);
    assert_int_equal(am_test_pull_find(&r, "4")->populations, CUSTOMERS | OPPORTUNITIES | pipeline);
    assert_int_equal(am_test_pull_find(&r, "13")->populations, PROSPECTS);
    am_test_pull_dispose(&r);
    am_config_free(cfg);
}

/* The truncated page is invalid JSON and invalid UTF-8: jansson refuses it. */
static void test_bitrix24__truncated_page_is_refused(void **state)
{
    size_t len;
    char *body = am_test_crm_fixture("bitrix24", "crm.company.list_start0_truncated.json", &len);
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
    assert_int_equal(read_page(&result, &next, &s, "crm.company.list", 50, root, &err), AM_EINPUT);
    assert_string_equal(err.msg, "bitrix24 https://acme.bitrix24.ru: crm.company.list (start "
                                 "50): \"next\" is not an offset after this page; the portal's "
                                 "answer is damaged, run again later");
    assert_int_equal(read_page(&result, &next, &s, "crm.company.list", 0, root, &err), AM_OK);
    assert_int_equal(next, 50);
    json_decref(root);
}

/* A row without an ID is rejected with its position; a repeated ID is one company. */
static void test_bitrix24__rows_without_id_and_repeats(void **state)
{
    am_config *cfg = am_test_partner_config("bitrix24", "\"webhook_env\":\"B24_WEBHOOK\"");
    json_error_t jerr;
    json_t *page = json_loads("[{\"ID\":\"7\",\"TITLE\":\"ООО «Первая»\"},"
                              "{\"TITLE\":\"Без ID\"},"
                              "{\"ID\":7,\"TITLE\":\"ООО «Первая» (again)\"},"
                              "{\"ID\":\"8\",\"TITLE\":\"ООО «Вторая»\","
                              "\"COMPANY_TYPE\":\"CUSTOMER\"}]",
                              0, &jerr);
    b24_source s;
    am_record_batch batch;
    am_error err;

    (void)state;
    assert_non_null(page);
    memset(&s, 0, sizeof(s));
    s.base.cfg = source_of(cfg);
    snprintf(s.base.label, sizeof(s.base.label), "bitrix24 https://acme.bitrix24.ru");
    am_record_batch_init(&batch);
    assert_int_equal(add_companies(&s, page, &err), AM_OK);
    assert_int_equal(index_companies(&s, &err), AM_OK);
    assert_int_equal(s.list.unique, 2);
    assert_int_equal(emit_companies(&s, &batch, &err), AM_OK);
    assert_int_equal(batch.count, 2);
    assert_string_equal(batch.records[0].id, "7");
    assert_string_equal(batch.records[0].name, "ООО «Первая»");
    assert_int_equal(batch.records[0].populations, PROSPECTS);
    assert_string_equal(batch.records[1].id, "8");
    assert_int_equal(batch.records[1].populations, CUSTOMERS);
    assert_int_equal(batch.reject_count, 1);
    assert_int_equal(batch.rejects[0].line, 2);
    assert_string_equal(batch.rejects[0].msg, "bitrix24 https://acme.bitrix24.ru: company #2 of "
                                              "crm.company.list has no ID; check the portal's "
                                              "data");
    am_record_batch_dispose(&batch);
    json_decref(page);
    am_crm_list_dispose(&s.list);
    am_arena_dispose(&s.arena);
    am_config_free(cfg);
}

/* ---- over HTTP, against the fake CRM server ---------------------------------- */

/* Back-off waits of a few milliseconds so that retry scenarios stay fast. */
#define FAST "\"max_wait_one_s\":\"0.01\",\"max_wait_s\":\"2\",\"requests_per_s\":\"0\""

/*
 * A secret keeper that remembers what was saved and when: how many requests
 * the fake server had received at the moment of the save.
 */
typedef struct test_keeper {
    am_fake_crm *crm;
    const char *stored; /* what load gives; NULL: nothing saved */
    size_t saves;
    size_t requests_at_save;
    char name[128];
    char value[512];
} test_keeper;

static am_status keeper_load(void *ctx, const char *name, char **value_out, am_error *err)
{
    test_keeper *k = ctx;

    *value_out = NULL;
    if (!k->stored) {
        return am_error_set(err, AM_ENOTFOUND, "no saved secret %s", name);
    }
    assert_string_equal(name, "globex.0.refresh_token");
    *value_out = strdup(k->stored);
    return *value_out ? AM_OK : AM_ENOMEM;
}

/* What the keeper of the next run_scenario holds as saved (then reset to NULL). */
static const char *next_stored;

static am_status keeper_save(void *ctx, const char *name, const char *value, am_error *err)
{
    test_keeper *k = ctx;

    (void)err;
    k->saves++;
    k->requests_at_save = am_fake_crm_request_count(k->crm);
    snprintf(k->name, sizeof(k->name), "%s", name);
    snprintf(k->value, sizeof(k->value), "%s", value);
    return AM_OK;
}

/* One scenario: the server, the keeper, and what the source gave. */
typedef struct scenario {
    am_fake_crm *crm;
    test_keeper keeper;
    am_secret_keeper iface;
    pull_result r;
    unsigned refreshes;
    char *progress; /* the source's progress lines */
} scenario;

/* No secret of the test config in `text`. */
static void assert_no_secret(const char *text)
{
    assert_null(strstr(text, WEBHOOK_CODE));
    assert_null(strstr(text, OLD_ACCESS));
    assert_null(strstr(text, OLD_REFRESH));
    assert_null(strstr(text, NEW_ACCESS));
    assert_null(strstr(text, NEW_REFRESH));
    assert_null(strstr(text, CLIENT_SECRET));
}

/*
 * Start the fake server on `name` of bitrix24/routes.json and pull a source
 * whose config fields are `fields_fmt` ("@ORIGIN@" stands for the server's origin)
 * through the registry, as a run does.
 */
static void run_scenario(scenario *sc, const char *name, const char *fields_fmt)
{
    am_config *cfg;
    am_source *src = NULL;
    am_record_batch batch;
    am_source_env env = {0};
    am_error err;
    char fields[2048];
    char webhook[256];

    memset(sc, 0, sizeof(*sc));
    am_error_clear(&err);
    if (am_fake_crm_start(&sc->crm, "bitrix24", name, &err)) {
        fail_msg("fake server: %s", err.msg);
    }
    snprintf(webhook, sizeof(webhook), "%s" WEBHOOK_PATH, am_fake_crm_origin(sc->crm));
    setenv("B24_TEST_WEBHOOK", webhook, 1);
    setenv("B24_TEST_TOKEN", OLD_ACCESS, 1);
    setenv("B24_TEST_REFRESH", OLD_REFRESH, 1);
    setenv("B24_TEST_SECRET", CLIENT_SECRET, 1);
    am_test_replace(fields, sizeof(fields), fields_fmt, "@ORIGIN@", am_fake_crm_origin(sc->crm));
    cfg = am_test_partner_config("bitrix24", fields);
    sc->keeper.crm = sc->crm;
    sc->keeper.stored = next_stored;
    next_stored = NULL;
    sc->iface.ctx = &sc->keeper;
    sc->iface.load = keeper_load;
    sc->iface.save = keeper_save;
    env.secrets = &sc->iface;
    env.source_key = "globex.0";
    env.progress = am_test_progress_collect;
    env.progress_ctx = &sc->progress;
    am_record_batch_init(&batch);
    sc->r.rc = am_source_open(&src, source_of(cfg), &env, &err);
    if (sc->r.rc) {
        assert_null(src);
        snprintf(sc->r.msg, sizeof(sc->r.msg), "%s", err.msg);
        goto cleanup;
    }
    snprintf(sc->r.label, sizeof(sc->r.label), "%s", src->label);
    for (;;) {
        sc->r.rc = am_source_next_batch(src, &batch, &err);
        if (sc->r.rc) {
            snprintf(sc->r.msg, sizeof(sc->r.msg), "%s", err.msg);
            /* The failure sticks, and last_error says the same. */
            assert_int_equal(am_source_next_batch(src, &batch, &err), sc->r.rc);
            assert_string_equal(err.msg, sc->r.msg);
            assert_string_equal(src->ops->last_error(src)->msg, sc->r.msg);
            break;
        }
        if (!batch.count && !batch.reject_count) {
            break;
        }
        am_test_pull_keep_batch(&sc->r, &batch, AM_TEST_NO_PLACE);
    }
    sc->refreshes = am_http_oauth_refresh_count(((b24_source *)src)->http);
cleanup:
    am_source_close(src);
    if (!sc->progress) {
        sc->progress = am_test_strdup("");
    }
    /* Progress lines name the source, never a secret. */
    assert_no_secret(sc->progress);
    am_record_batch_dispose(&batch);
    am_config_free(cfg);
}

/* Every request matched a route and every required route was used. */
static void assert_routes_used(scenario *sc)
{
    char *problems = am_fake_crm_check(sc->crm);

    if (problems) {
        fail_msg("fake server: %s", problems);
    }
}

static void scenario_dispose(scenario *sc)
{
    am_fake_crm_stop(sc->crm);
    am_test_pull_dispose(&sc->r);
    free(sc->progress);
    unsetenv("B24_TEST_WEBHOOK");
    unsetenv("B24_TEST_TOKEN");
    unsetenv("B24_TEST_REFRESH");
    unsetenv("B24_TEST_SECRET");
}

/* Request `i`: its path and a body field ("" when absent). */
static void assert_request(scenario *sc, size_t i, const char *method, const char *path,
                           const char *field, const char *value)
{
    const am_fake_request *rq;
    char *got;

    assert_true(i < am_fake_crm_request_count(sc->crm));
    rq = am_fake_crm_request(sc->crm, i);
    assert_string_equal(rq->method, method);
    assert_string_equal(rq->path, path);
    if (field) {
        got = am_fake_request_param(rq, field, strcmp(method, "POST") == 0);
        assert_string_equal(got ? got : "", value);
        free(got);
    }
}

#define WEBHOOK_FIELDS "\"webhook_env\":\"B24_TEST_WEBHOOK\"," FAST
#define OAUTH_FIELDS                                                                               \
    "\"base_url\":\"@ORIGIN@/rest/\",\"token_url\":\"@ORIGIN@/oauth/token/\",\"client_id\":"       \
    "\"local.test\",\"client_secret_env\":\"B24_TEST_SECRET\",\"refresh_token_env\":"              \
    "\"B24_TEST_REFRESH\",\"token_env\":\"B24_TEST_TOKEN\"," FAST

static void test_bitrix24__happy_webhook_pull(void **state)
{
    scenario sc;
    char label[128];

    (void)state;
    run_scenario(&sc, "happy", WEBHOOK_FIELDS);
    assert_int_equal(sc.r.rc, AM_OK);
    assert_happy_records(&sc.r);
    /* The label shows the portal's host only, never the webhook's path. */
    snprintf(label, sizeof(label), "bitrix24 %s", am_fake_crm_origin(sc.crm));
    assert_string_equal(sc.r.label, label);
    /* Progress on (as on a terminal): lines name the source. */
    assert_non_null(strstr(sc.progress, label));
    assert_int_equal(am_fake_crm_request_count(sc.crm), 4);
    assert_request(&sc, 0, "POST", WEBHOOK_PATH "crm.company.list", "start", "0");
    assert_request(&sc, 1, "POST", WEBHOOK_PATH "crm.company.list", "start", "50");
    assert_request(&sc, 2, "POST", WEBHOOK_PATH "crm.requisite.list", "auth", "");
    assert_request(&sc, 3, "POST", WEBHOOK_PATH "crm.deal.list", "auth", "");
    assert_int_equal(sc.keeper.saves, 0);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

static void test_bitrix24__empty_portal(void **state)
{
    scenario sc;

    (void)state;
    run_scenario(&sc, "empty", WEBHOOK_FIELDS);
    assert_int_equal(sc.r.rc, AM_OK);
    assert_int_equal(sc.r.count, 0);
    assert_int_equal(sc.r.reject_count, 0);
    /* No companies: requisites and deals are not asked for. */
    assert_int_equal(am_fake_crm_request_count(sc.crm), 1);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

static void test_bitrix24__invalid_webhook_fails_without_the_url(void **state)
{
    scenario sc;
    char want[512];

    (void)state;
    run_scenario(&sc, "invalid_webhook", WEBHOOK_FIELDS);
    assert_int_equal(sc.r.rc, AM_EAUTH);
    snprintf(want, sizeof(want),
             "bitrix24 %s: crm.company.list: the portal refused the inbound webhook: 401 "
             "NO_AUTH_FOUND (Wrong authorization data); create a new inbound webhook with the "
             "crm scope and set its URL in B24_TEST_WEBHOOK",
             am_fake_crm_origin(sc.crm));
    assert_string_equal(sc.r.msg, want);
    assert_no_secret(sc.r.msg);
    /* A webhook cannot be refreshed: one request, no retry. */
    assert_int_equal(am_fake_crm_request_count(sc.crm), 1);
    assert_int_equal(sc.r.count, 0);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

static void test_bitrix24__query_limit_waits_and_repeats(void **state)
{
    scenario sc;

    (void)state;
    run_scenario(&sc, "rate_limited_then_ok", WEBHOOK_FIELDS);
    assert_int_equal(sc.r.rc, AM_OK);
    assert_happy_records(&sc.r);
    assert_int_equal(am_fake_crm_request_count(sc.crm), 5);
    assert_int_equal(am_fake_crm_request(sc.crm, 0)->status, 503);
    /* The same call again. */
    assert_request(&sc, 0, "POST", WEBHOOK_PATH "crm.company.list", "start", "0");
    assert_request(&sc, 1, "POST", WEBHOOK_PATH "crm.company.list", "start", "0");
    assert_request(&sc, 2, "POST", WEBHOOK_PATH "crm.company.list", "start", "50");
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

/*
 * OAuth: one 401 expired_token, one refresh, the same call with the new
 * token. The rotated refresh token is saved before the first request that
 * carries the new access token; no token appears in any message.
 */
static void test_bitrix24__expired_token_refreshes_once(void **state)
{
    scenario sc;
    size_t i;
    char *refresh;

    (void)state;
    run_scenario(&sc, "expired_token_then_refresh", OAUTH_FIELDS);
    if (sc.r.rc) {
        fail_msg("%s", sc.r.msg);
    }
    assert_happy_records(&sc.r);
    assert_int_equal(sc.refreshes, 1);
    assert_int_equal(am_fake_crm_request_count(sc.crm), 6);
    assert_request(&sc, 0, "POST", "/rest/crm.company.list", "auth", OLD_ACCESS);
    assert_request(&sc, 1, "GET", "/oauth/token/", "refresh_token", OLD_REFRESH);
    assert_request(&sc, 1, "GET", "/oauth/token/", "client_secret", CLIENT_SECRET);
    assert_request(&sc, 2, "POST", "/rest/crm.company.list", "auth", NEW_ACCESS);
    assert_request(&sc, 2, "POST", "/rest/crm.company.list", "start", "0");
    assert_request(&sc, 3, "POST", "/rest/crm.company.list", "start", "50");
    for (i = 2; i < 6; i++) {
        assert_request(&sc, i, "POST", am_fake_crm_request(sc.crm, i)->path, "auth", NEW_ACCESS);
        /* The token goes in the body, never in the URL. */
        assert_null(strstr(am_fake_crm_request(sc.crm, i)->query, NEW_ACCESS));
    }
    refresh = am_fake_request_param(am_fake_crm_request(sc.crm, 1), "auth", false);
    assert_null(refresh);
    /* Saved once, the new refresh token, after the token answer and before request 2. */
    assert_int_equal(sc.keeper.saves, 1);
    assert_string_equal(sc.keeper.name, "globex.0.refresh_token");
    assert_string_equal(sc.keeper.value, NEW_REFRESH);
    assert_int_equal(sc.keeper.requests_at_save, 2);
    assert_no_secret(sc.r.label);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

/* A refresh token saved by an earlier run is the live one: it is the one sent. */
static void test_bitrix24__saved_refresh_token_wins(void **state)
{
    scenario sc;

    (void)state;
    next_stored = "saved-refresh-3c4d";
    run_scenario(&sc, "expired_token_then_refresh", OAUTH_FIELDS);
    if (sc.r.rc) {
        fail_msg("%s", sc.r.msg);
    }
    assert_int_equal(sc.r.count, 53);
    assert_request(&sc, 1, "GET", "/oauth/token/", "refresh_token", "saved-refresh-3c4d");
    assert_int_equal(sc.keeper.saves, 1);
    assert_string_equal(sc.keeper.value, NEW_REFRESH);
    assert_null(strstr(sc.progress, "saved-refresh-3c4d"));
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

static void test_bitrix24__refused_refresh_token_fails(void **state)
{
    scenario sc;
    char want[512];

    (void)state;
    run_scenario(&sc, "expired_token_refresh_rejected", OAUTH_FIELDS);
    assert_int_equal(sc.r.rc, AM_EAUTH);
    snprintf(want, sizeof(want),
             "bitrix24 %s: the refresh token was refused (invalid_grant); authorise acctmap "
             "again and set B24_TEST_REFRESH",
             am_fake_crm_origin(sc.crm));
    assert_string_equal(sc.r.msg, want);
    assert_no_secret(sc.r.msg);
    /* Exactly one refresh attempt, nothing saved, no further calls. */
    assert_int_equal(am_fake_crm_request_count(sc.crm), 2);
    assert_int_equal(sc.keeper.saves, 0);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

static void test_bitrix24__truncated_page_fails(void **state)
{
    scenario sc;
    char want[512];

    (void)state;
    run_scenario(&sc, "malformed_body", WEBHOOK_FIELDS);
    assert_int_equal(sc.r.rc, AM_EINPUT);
    snprintf(want, sizeof(want),
             "bitrix24 %s: /rest/1/***/crm.company.list: invalid JSON at byte 1902 of 1903 "
             "(unable to decode byte 0xd0); the answer was cut off or is damaged, run again",
             am_fake_crm_origin(sc.crm));
    assert_string_equal(sc.r.msg, want);
    assert_no_secret(sc.r.msg);
    assert_int_equal(am_test_count_lines(sc.r.msg), 1);
    assert_int_equal(am_fake_crm_request_count(sc.crm), 1);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

static void test_bitrix24__proxy_502_is_retried(void **state)
{
    scenario sc;

    (void)state;
    run_scenario(&sc, "proxy_502_then_ok", WEBHOOK_FIELDS);
    assert_int_equal(sc.r.rc, AM_OK);
    assert_happy_records(&sc.r);
    assert_int_equal(am_fake_crm_request_count(sc.crm), 5);
    assert_int_equal(am_fake_crm_request(sc.crm, 0)->status, 502);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

static void test_bitrix24__proxy_502_persistent_fails(void **state)
{
    scenario sc;
    char want[512];

    (void)state;
    run_scenario(&sc, "proxy_502_persistent", WEBHOOK_FIELDS ",\"max_attempts\":\"3\"");
    assert_int_equal(sc.r.rc, AM_EHTTP);
    snprintf(want, sizeof(want),
             "bitrix24 %s: POST /rest/1/***/crm.company.list: HTTP 502 (text/html, not JSON) "
             "after 3 attempts (max_attempts reached); the server or a proxy in front of it is "
             "failing, run later",
             am_fake_crm_origin(sc.crm));
    assert_string_equal(sc.r.msg, want);
    assert_no_secret(sc.r.msg);
    assert_int_equal(am_test_count_lines(sc.r.msg), 1);
    /* Bounded: exactly max_attempts tries. */
    assert_int_equal(am_fake_crm_request_count(sc.crm), 3);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

/*
 * OAuth without token_env: the first request is the refresh, and the first
 * list call already carries the new token (a generated manifest: the shared
 * one starts every OAuth scenario with an old token). A base_url without its
 * final slash still means the REST directory.
 */
static void test_bitrix24__oauth_without_access_token_refreshes_first(void **state)
{
    static const char routes[] =
        "[{\"method\":\"GET\",\"path\":\"/oauth/token/\",\"query\":{\"grant_type\":"
        "\"refresh_token\",\"refresh_token\":\"" OLD_REFRESH "\"},\"status\":200,\"headers\":"
        "{\"Content-Type\":\"application/json\"},\"body\":\"token.json\"},"
        "{\"method\":\"POST\",\"path\":\"/rest/crm.company.list\",\"body_required\":{\"auth\":"
        "\"" NEW_ACCESS "\"},\"status\":200,\"headers\":{\"Content-Type\":\"application/json\"},"
        "\"body\":\"empty.json\"}]";
    char *token, *empty, *problems;
    size_t token_len, empty_len;
    am_fake_crm *crm = NULL;
    am_config *cfg;
    am_source *src = NULL;
    am_record_batch batch;
    am_source_env env = {0};
    am_error err;
    char fields[1024];

    (void)state;
    am_error_clear(&err);
    token = am_test_crm_fixture("bitrix24", "oauth_token_refresh.json", &token_len);
    empty = am_test_crm_fixture("bitrix24", "list_empty.json", &empty_len);
    am_test_write_file(am_test_path("routes.json"), routes, sizeof(routes) - 1);
    am_test_write_file(am_test_path("token.json"), token, token_len);
    am_test_write_file(am_test_path("empty.json"), empty, empty_len);
    free(token);
    free(empty);
    if (am_fake_crm_start_dir(&crm, am_test_path(""), NULL, &err)) {
        fail_msg("fake server: %s", err.msg);
    }
    setenv("B24_TEST_REFRESH", OLD_REFRESH, 1);
    setenv("B24_TEST_SECRET", CLIENT_SECRET, 1);
    am_test_replace(fields, sizeof(fields),
                    "\"base_url\":\"@ORIGIN@/rest\",\"token_url\":\"@ORIGIN@/oauth/token/\","
                    "\"client_id\":\"local.test\",\"client_secret_env\":\"B24_TEST_SECRET\","
                    "\"refresh_token_env\":\"B24_TEST_REFRESH\"," FAST,
                    "@ORIGIN@", am_fake_crm_origin(crm));
    cfg = am_test_partner_config("bitrix24", fields);
    am_record_batch_init(&batch);
    assert_int_equal(am_source_open(&src, source_of(cfg), &env, &err), AM_OK);
    assert_int_equal(am_source_next_batch(src, &batch, &err), AM_OK);
    assert_int_equal(batch.count, 0);
    assert_int_equal(am_http_oauth_refresh_count(((b24_source *)src)->http), 1);
    am_source_close(src);
    am_record_batch_dispose(&batch);
    am_config_free(cfg);
    assert_int_equal(am_fake_crm_request_count(crm), 2);
    problems = am_fake_crm_check(crm);
    am_fake_crm_stop(crm);
    unsetenv("B24_TEST_REFRESH");
    unsetenv("B24_TEST_SECRET");
    if (problems) {
        fail_msg("fake server: %s", problems);
    }
}

/*
 * The portal's own error text goes into the message: a line break in it
 * becomes a space, and the webhook's code echoed in it is scrubbed.
 */
static void test_bitrix24__server_text_in_messages_is_one_line_and_scrubbed(void **state)
{
    static const char routes[] =
        "[{\"method\":\"POST\",\"path\":\"" WEBHOOK_PATH "crm.company.list\",\"status\":401,"
        "\"headers\":{\"Content-Type\":\"application/json\"},\"body\":\"err.json\"}]";
    static const char body[] = "{\"error\":\"NO_AUTH_FOUND\",\"error_description\":\"Wrong\\n"
                               "code " WEBHOOK_CODE "\"}";
    am_fake_crm *crm = NULL;
    am_config *cfg;
    am_source *src = NULL;
    am_record_batch batch;
    am_source_env env = {0};
    am_error err;
    char webhook[256], want[512], *problems;

    (void)state;
    am_error_clear(&err);
    am_test_write_file(am_test_path("routes.json"), routes, sizeof(routes) - 1);
    am_test_write_file(am_test_path("err.json"), body, sizeof(body) - 1);
    if (am_fake_crm_start_dir(&crm, am_test_path(""), NULL, &err)) {
        fail_msg("fake server: %s", err.msg);
    }
    snprintf(webhook, sizeof(webhook), "%s" WEBHOOK_PATH, am_fake_crm_origin(crm));
    setenv("B24_TEST_WEBHOOK", webhook, 1);
    cfg = am_test_partner_config("bitrix24", WEBHOOK_FIELDS);
    am_record_batch_init(&batch);
    assert_int_equal(am_source_open(&src, source_of(cfg), &env, &err), AM_OK);
    assert_int_equal(am_source_next_batch(src, &batch, &err), AM_EAUTH);
    snprintf(want, sizeof(want),
             "bitrix24 %s: crm.company.list: the portal refused the inbound webhook: 401 "
             "NO_AUTH_FOUND (Wrong code ***); create a new inbound webhook with the crm scope "
             "and set its URL in B24_TEST_WEBHOOK",
             am_fake_crm_origin(crm));
    assert_string_equal(err.msg, want);
    am_source_close(src);
    am_record_batch_dispose(&batch);
    am_config_free(cfg);
    problems = am_fake_crm_check(crm);
    am_fake_crm_stop(crm);
    unsetenv("B24_TEST_WEBHOOK");
    if (problems) {
        fail_msg("fake server: %s", problems);
    }
}

/* ---- config errors ---------------------------------------------------------------- */

static void test_bitrix24__config_errors(void **state)
{
    scenario sc;

    (void)state;
    unsetenv("B24_UNSET");
    run_scenario(&sc, "happy", "\"webhook_env\":\"B24_UNSET\"");
    assert_int_equal(sc.r.rc, AM_ECONFIG);
    assert_non_null(strstr(sc.r.msg, "webhook_env"));
    assert_non_null(strstr(sc.r.msg, "B24_UNSET"));
    assert_int_equal(am_fake_crm_request_count(sc.crm), 0);
    scenario_dispose(&sc);

    run_scenario(&sc, "happy", WEBHOOK_FIELDS ",\"base_url\":\"@ORIGIN@/rest/\"");
    assert_int_equal(sc.r.rc, AM_ECONFIG);
    assert_string_equal(sc.r.msg, "acctmap.json: orgs[1].sources[0].base_url: not used with "
                                  "webhook_env (the webhook URL names the portal); remove one "
                                  "of them");
    scenario_dispose(&sc);

    run_scenario(&sc, "happy", FAST);
    assert_int_equal(sc.r.rc, AM_ECONFIG);
    assert_string_equal(sc.r.msg, "acctmap.json: orgs[1].sources[0]: give webhook_env (an "
                                  "inbound webhook) or base_url (the portal's REST address, "
                                  "like https://acme.bitrix24.ru/rest/) with client_id, "
                                  "client_secret_env and refresh_token_env");
    scenario_dispose(&sc);

    setenv("B24_BAD_WEBHOOK", WEBHOOK_CODE, 1);
    run_scenario(&sc, "happy", "\"webhook_env\":\"B24_BAD_WEBHOOK\"");
    unsetenv("B24_BAD_WEBHOOK");
    assert_int_equal(sc.r.rc, AM_ECONFIG);
    assert_string_equal(sc.r.msg, "acctmap.json: orgs[1].sources[0]: the variable named by "
                                  "webhook_env (B24_BAD_WEBHOOK) is not a webhook URL; copy the "
                                  "inbound webhook's URL (https://PORTAL/rest/USER/CODE/) into "
                                  "it");
    assert_no_secret(sc.r.msg);
    scenario_dispose(&sc);

    run_scenario(&sc, "happy", WEBHOOK_FIELDS ",\"client_id\":\"x\"");
    assert_int_equal(sc.r.rc, AM_ECONFIG);
    assert_string_equal(sc.r.msg, "acctmap.json: orgs[1].sources[0].client_id: not used with "
                                  "webhook_env; remove it, or remove webhook_env to use OAuth");
    scenario_dispose(&sc);
}

/* ---- end to end: `acctmap run` with a Bitrix24 and an amoCRM partner ---------- */

/* Our own companies: the ones the fixtures' README says a partner shares with us. */
static const char e2e_ours[] =
    "id,name,domain,tax_id,country,status\n"
    "a-rom,ООО «Ромашка»,romashka.ru,7712345671,RU,customer\n"
    "a-vec,ООО «Вектор»,,7810123451,RU,prospect\n"
    "a-sev,АО «Северсталь-Сервис»,severstal-service.ru,,RU,prospect\n"
    "a-nw,Northwind Traders Ltd,northwindtraders.com,,GB,customer\n"
    "a-ini,Initech Solutions Ltd,initech-solutions.co.uk,,GB,opportunity\n";

static const char e2e_config[] =
    "{\"self\":\"acme\",\"store\":\"dir:./data\",\"orgs\":["
    "{\"id\":\"acme\",\"sources\":[{\"type\":\"csv\",\"path\":\"ours.csv\"}]},"
    "{\"id\":\"b24\",\"sources\":[{\"type\":\"bitrix24\",\"webhook_env\":\"B24_TEST_WEBHOOK\","
    "\"requests_per_s\":\"0\"}]},"
    "{\"id\":\"amo\",\"sources\":[{\"type\":\"amocrm\",\"base_url\":\"@ORIGIN@\","
    "\"token_env\":\"AMO_TEST_TOKEN\",\"requests_per_s\":\"0\"}]}]}";

/*
 * The `accounts --format csv` row of (ours, theirs) ends with `tail`
 * (matched_by,key,our_populations,their_populations); NULL: no such row.
 */
static void assert_pair(const char *out, const char *ours, const char *theirs, const char *tail)
{
    char head[128];
    const char *line = out;
    bool found = false;

    snprintf(head, sizeof(head), "%s,%s,", ours, theirs);
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t l = end ? (size_t)(end - line) : strlen(line);
        if (l > strlen(head) && strncmp(line, head, strlen(head)) == 0) {
            found = true;
            if (tail &&
                (l < strlen(tail) || strncmp(line + l - strlen(tail), tail, strlen(tail)) != 0)) {
                fail_msg("row %.*s does not end with %s", (int)l, line, tail);
            }
        }
        line = end ? end + 1 : NULL;
    }
    if (found != (tail != NULL)) {
        fail_msg("%s -> %s: %s\n%s", ours, theirs, tail ? "no row" : "unexpected row", out);
    }
}

/* Runs in the sandbox's store (dir:./data keeps one folder per run under runs/). */
static size_t stored_runs(void)
{
    DIR *d = opendir(am_test_path("data/runs"));
    struct dirent *e;
    size_t runs = 0;

    while (d && (e = readdir(d)) != NULL) {
        runs += e->d_name[0] != '.';
    }
    if (d) {
        closedir(d);
    }
    return runs;
}

static void test_bitrix24__run_finds_the_partners_overlaps(void **state)
{
    am_fake_crm *b24 = NULL, *amo = NULL;
    am_test_output out = {0};
    am_error err;
    char webhook[256], config[2048], *problems;
    const char *dir = am_test_sandbox();

    (void)state;
    am_error_clear(&err);
    if (am_fake_crm_start(&b24, "bitrix24", "happy", &err) ||
        am_fake_crm_start(&amo, "amocrm", "happy", &err)) {
        fail_msg("fake server: %s", err.msg);
    }
    snprintf(webhook, sizeof(webhook), "%s" WEBHOOK_PATH, am_fake_crm_origin(b24));
    setenv("B24_TEST_WEBHOOK", webhook, 1);
    setenv("AMO_TEST_TOKEN", OLD_ACCESS, 1);
    am_test_replace(config, sizeof(config), e2e_config, "@ORIGIN@", am_fake_crm_origin(amo));
    am_test_write_file(am_test_path("acctmap.json"), config, strlen(config));
    am_test_write_file(am_test_path("ours.csv"), e2e_ours, sizeof(e2e_ours) - 1);
    {
        const char *args[] = {"run", NULL};
        if (am_test_run(&out, dir, args) != 0) {
            fail_msg("acctmap run: %s", out.err);
        }
    }
    assert_no_secret(out.out);
    assert_no_secret(out.err);
    assert_null(strstr(out.err, "/rest/1/"));
    assert_int_equal(stored_runs(), 1);
    am_test_output_dispose(&out);
    {
        const char *args[] = {"accounts", "b24", "--format", "csv", NULL};
        assert_int_equal(am_test_run(&out, dir, args), 0);
    }
    /* The right ООО «Ромашка» (id 4: INN and site agree), not the Kazan one (id 16). */
    assert_pair(out.out, "a-rom", "4", ",tax,tax:RU7712345671,customers,customers;opportunities");
    assert_pair(out.out, "a-rom", "16", NULL);
    /* Not ООО «Ромашка-М» (id 75), whose site is a page on ours: romashka.ru/moscow/. */
    assert_pair(out.out, "a-rom", "75", NULL);
    assert_pair(out.out, "a-vec", "9", ",tax,tax:RU7810123451,prospects,customers");
    assert_pair(out.out, "a-sev", "10", ",domain,domain:severstal-service.ru,prospects,prospects");
    assert_pair(out.out, "a-nw", "41", ",domain,domain:northwindtraders.com,customers,customers");
    /* Its site is a page too, /catalog, but under the same name as ours: it links. */
    assert_pair(out.out, "a-ini", "82",
                ",domain,domain:initech-solutions.co.uk,opportunities,customers");
    am_test_output_dispose(&out);
    {
        const char *args[] = {"explain", "b24", "a-rom", "75", NULL};
        assert_int_equal(am_test_run(&out, dir, args), 0);
    }
    if (!strstr(out.out, "\nkept apart (entities ") ||
        !strstr(out.out, "  they share domain:romashka.ru, but one website is a page on "
                         "romashka.ru, a site that may be another company's, which links only "
                         "records of the same name, and the names differ (ромашка, ромашка м)\n")) {
        fail_msg("explain b24 a-rom 75:\n%s", out.out);
    }
    am_test_output_dispose(&out);
    {
        const char *args[] = {"accounts", "amo", "--format", "csv", NULL};
        assert_int_equal(am_test_run(&out, dir, args), 0);
    }
    assert_pair(out.out, "a-rom", "31840215", ",tax,tax:RU7712345671,customers,opportunities");
    assert_pair(out.out, "a-vec", "31840227", ",tax,tax:RU7810123451,prospects,customers");
    assert_pair(out.out, "a-sev", "31840268",
                ",domain,domain:severstal-service.ru,prospects,customers");
    assert_pair(out.out, "a-ini", "31840249",
                ",domain,domain:initech-solutions.co.uk,opportunities,prospects");
    assert_pair(out.out, "a-nw", "31840252", NULL);
    am_test_output_dispose(&out);
    problems = am_fake_crm_check(b24);
    if (!problems) {
        problems = am_fake_crm_check(amo);
    }
    am_fake_crm_stop(b24);
    am_fake_crm_stop(amo);
    unsetenv("B24_TEST_WEBHOOK");
    unsetenv("AMO_TEST_TOKEN");
    if (problems) {
        fail_msg("fake server: %s", problems);
    }
}

/* A refused webhook fails the run: exit 1, one line naming org and source, no secret. */
static void test_bitrix24__run_fails_on_a_refused_webhook(void **state)
{
    am_fake_crm *b24 = NULL;
    am_test_output out = {0};
    am_error err;
    char webhook[256], want[512], *problems;
    const char *dir = am_test_sandbox();
    static const char config[] =
        "{\"self\":\"acme\",\"store\":\"dir:./data\",\"orgs\":["
        "{\"id\":\"acme\",\"sources\":[{\"type\":\"csv\",\"path\":\"ours.csv\"}]},"
        "{\"id\":\"b24\",\"sources\":[{\"type\":\"bitrix24\",\"webhook_env\":"
        "\"B24_TEST_WEBHOOK\"}]}]}";

    (void)state;
    am_error_clear(&err);
    if (am_fake_crm_start(&b24, "bitrix24", "invalid_webhook", &err)) {
        fail_msg("fake server: %s", err.msg);
    }
    snprintf(webhook, sizeof(webhook), "%s" WEBHOOK_PATH, am_fake_crm_origin(b24));
    setenv("B24_TEST_WEBHOOK", webhook, 1);
    am_test_write_file(am_test_path("acctmap.json"), config, sizeof(config) - 1);
    am_test_write_file(am_test_path("ours.csv"), e2e_ours, sizeof(e2e_ours) - 1);
    {
        const char *args[] = {"run", NULL};
        assert_int_equal(am_test_run(&out, dir, args), 1);
    }
    snprintf(want, sizeof(want),
             "acctmap: source b24/bitrix24: bitrix24 %s: crm.company.list: the portal refused "
             "the inbound webhook: 401 NO_AUTH_FOUND (Wrong authorization data); create a new "
             "inbound webhook with the crm scope and set its URL in B24_TEST_WEBHOOK\n",
             am_fake_crm_origin(b24));
    assert_string_equal(out.err, want);
    am_test_output_dispose(&out);
    /* No run was committed. */
    assert_int_equal(stored_runs(), 0);
    problems = am_fake_crm_check(b24);
    am_fake_crm_stop(b24);
    unsetenv("B24_TEST_WEBHOOK");
    if (problems) {
        fail_msg("fake server: %s", problems);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitrix24__fixture_pages_map_to_records),
        cmocka_unit_test(test_bitrix24__population_rules_override_defaults),
        cmocka_unit_test(test_bitrix24__truncated_page_is_refused),
        cmocka_unit_test(test_bitrix24__site_choice),
        cmocka_unit_test(test_bitrix24__next_must_move_forward),
        cmocka_unit_test(test_bitrix24__rows_without_id_and_repeats),
        cmocka_unit_test(test_bitrix24__happy_webhook_pull),
        cmocka_unit_test(test_bitrix24__empty_portal),
        cmocka_unit_test(test_bitrix24__invalid_webhook_fails_without_the_url),
        cmocka_unit_test(test_bitrix24__query_limit_waits_and_repeats),
        cmocka_unit_test(test_bitrix24__expired_token_refreshes_once),
        cmocka_unit_test(test_bitrix24__saved_refresh_token_wins),
        cmocka_unit_test(test_bitrix24__refused_refresh_token_fails),
        cmocka_unit_test(test_bitrix24__truncated_page_fails),
        cmocka_unit_test(test_bitrix24__proxy_502_is_retried),
        cmocka_unit_test(test_bitrix24__proxy_502_persistent_fails),
        cmocka_unit_test(test_bitrix24__config_errors),
        AM_TEST_SANDBOXED(test_bitrix24__server_text_in_messages_is_one_line_and_scrubbed),
        AM_TEST_SANDBOXED(test_bitrix24__oauth_without_access_token_refreshes_first),
        AM_TEST_SANDBOXED(test_bitrix24__run_finds_the_partners_overlaps),
        AM_TEST_SANDBOXED(test_bitrix24__run_fails_on_a_refused_webhook),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
