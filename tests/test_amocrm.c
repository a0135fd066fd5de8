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
#include <sys/stat.h>
#include <unistd.h>

#include "acctmap/config.h"
#include "acctmap/connector.h"
#include "acctmap/record.h"

#define CUSTOMERS (1u << AM_POP_CUSTOMERS)
#define PROSPECTS (1u << AM_POP_PROSPECTS)
#define OPPORTUNITIES (1u << AM_POP_OPPORTUNITIES)

#define NEW_ACCESS                                                                                 \
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImp0aSI6IjRjOWYxZTJhN2IzZDVlNmY4YTBiMWMyZDNlNGY1YTZi"     \
    "N2M4ZDllMGYxYTJiM2M0ZDVlNmY3YThiOWMwZDFlMmYifQ.eyJhdWQiOiI3ZDNlMWI5YS0yYzRmLTRlNmEtOGIwZC"    \
    "0xZjNhNWM3ZTliMmQiLCJqdGkiOiI0YzlmMWUyYTdiM2Q1ZTZmOGEwYjFjMmQzZTRmNWE2YjdjOGQ5ZTBmMWEyYjNj"   \
    "NGQ1ZTZmN2E4YjljMGQxZTJmIiwiaWF0IjoxNzMyMjg0MDAwLCJuYmYiOjE3MzIyODQwMDAsImV4cCI6MTczMjM3MD"   \
    "QwMCwic3ViIjoiODEyMzQ1NyIsImdyYW50X3R5cGUiOiIiLCJhY2NvdW50X2lkIjoyOTg3NjU0MywiYmFzZV9kb21h"   \
    "aW4iOiJhbW9jcm0ucnUiLCJ2ZXJzaW9uIjoyLCJzY29wZXMiOlsiY3JtIl19.jYDhGrg7vw9v6_Isp-uFCx4xQZC5dB"  \
    "t2M6KDusZlcNQIGOOOfSpecqp6ixiPxRGH8V9r_GvzB1g2vredtjbwD42A4Rq4O78Pb-vyLKfrhQseMUGQuXQbdjOig"  \
    "7rGZXDUCBjjjn0qXnKqeosYj8URh_Ffa_xr8wdYNr63nbY28A-NgOEauDu_D2_r8iyn64ULHjFBkLl0G3YzooO6xmVw"  \
    "1AgY4459Kl5yqnqLGI_FEYfxX2v8a_MHWDa-t522NvAPjYDhGrg7vw9v6_Isp-uFCx4xQZC5dBt2M6KDusZlcNQIGOO"  \
    "OfSpecqp6ixiPxRGH8V9r_GvzB1g2vredtjbwDw"
/* The rotated refresh token of oauth_token_refresh.json: "def50200" and one block six times. */
#define REFRESH_BLOCK "bd473e5dcdce2510c2df4f0c5a54a605fa3647fe74afae20a8cdb8b91b1a1f63"
#define NEW_REFRESH                                                                                \
    "def50200" REFRESH_BLOCK REFRESH_BLOCK REFRESH_BLOCK REFRESH_BLOCK REFRESH_BLOCK REFRESH_BLOCK
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

/* Feed one page file through the page reader into `take`; returns its next link. */
static bool feed(amo_source *s, const char *file, const char *key, long page, page_fn take)
{
    size_t len;
    char *body = am_test_crm_fixture("amocrm", file, &len);
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
        am_test_pull_keep_batch(r, &batch, AM_TEST_NO_PLACE);
        am_record_batch_reset(&batch);
    }
    am_record_batch_dispose(&batch);
    am_crm_list_dispose(&s.list);
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
    assert_int_equal(r->reject_count, 0);
    t = am_test_pull_find(r, "31840215");
    assert_string_equal(t->name, "ООО «Ромашка»");
    assert_string_equal(t->domain, "https://www.romashka.ru/");
    assert_string_equal(t->tax_id, "7712345671");
    assert_string_equal(t->owner, "8123457");
    assert_int_equal(t->populations, OPPORTUNITIES);
    t = am_test_pull_find(r, "31840227");
    assert_string_equal(t->name, "ООО \"Вектор\"");
    assert_string_equal(t->domain, "vector-spb.ru");
    assert_string_equal(t->tax_id, "7810123451");
    assert_int_equal(t->populations, CUSTOMERS);
    /* Only a free-mail address links it to Bitrix24's Петрова: no site here. */
    t = am_test_pull_find(r, "31840233");
    assert_string_equal(t->name, "ИП Петрова А.С.");
    assert_string_equal(t->domain, "");
    assert_string_equal(t->tax_id, "770198765434");
    assert_int_equal(t->populations, OPPORTUNITIES);
    t = am_test_pull_find(r, "31840249");
    assert_string_equal(t->name, "Initech Solutions Ltd");
    assert_string_equal(t->domain, "http://shop.initech-solutions.co.uk/catalog");
    assert_string_equal(t->tax_id, "");
    assert_int_equal(t->populations, PROSPECTS); /* its only lead was lost */
    t = am_test_pull_find(r, "31840252");
    assert_string_equal(t->name, "Без контактов");
    assert_string_equal(t->domain, "");
    assert_int_equal(t->populations, PROSPECTS);
    /* Two sites: the first; won in the second pipeline. */
    t = am_test_pull_find(r, "31840268");
    assert_string_equal(t->name, "АО «Северсталь-Сервис»");
    assert_string_equal(t->domain, "http://www.severstal-service.ru");
    assert_string_equal(t->tax_id, "3528012345");
    assert_int_equal(t->populations, CUSTOMERS);
    assert_string_equal(am_test_pull_find(r, "31840271")->domain, "ALTYNDALA.KZ");
    t = am_test_pull_find(r, "31840285");
    assert_string_equal(t->name, "ООО «Ромашка Плюс»");
    assert_string_equal(t->domain, "https://ромашка-плюс.рф/");
    assert_int_equal(t->populations, PROSPECTS);
    assert_string_equal(r->records[7].id, "31840285"); /* the pull's order */
}

static void test_amocrm__fixture_pages_map_to_records(void **state)
{
    am_config *cfg = am_test_partner_config("amocrm", "\"token_env\":\"AMO_TOKEN\"");
    pull_result r;

    (void)state;
    map_fixtures(&r, cfg);
    assert_happy_records(&r);
    am_test_pull_dispose(&r);
    am_config_free(cfg);
}

/* `inn_field` by id finds the same field; by another name, none. */
static void test_amocrm__inn_field_by_id_or_name(void **state)
{
    am_config *by_id =
        am_test_partner_config("amocrm", "\"token_env\":\"T\",\"inn_field\":\"1052301\"");
    am_config *by_name =
        am_test_partner_config("amocrm", "\"token_env\":\"T\",\"inn_field\":\"Адрес\"");
    am_config *wrong_id =
        am_test_partner_config("amocrm", "\"token_env\":\"T\",\"inn_field\":\"1045711\"");
    pull_result r;

    (void)state;
    map_fixtures(&r, by_id);
    assert_string_equal(am_test_pull_find(&r, "31840215")->tax_id, "7712345671");
    assert_string_equal(am_test_pull_find(&r, "31840268")->tax_id, "3528012345");
    am_test_pull_dispose(&r);
    /* A field chosen by name: the address lands in tax_id, as configured. */
    map_fixtures(&r, by_name);
    assert_string_equal(am_test_pull_find(&r, "31840215")->tax_id, "г. Москва, ул. Лесная, д. 5");
    assert_string_equal(am_test_pull_find(&r, "31840227")->tax_id, "");
    am_test_pull_dispose(&r);
    /* The phone field's id: a phone is what the config asked for. */
    map_fixtures(&r, wrong_id);
    assert_string_equal(am_test_pull_find(&r, "31840215")->tax_id, "+7 495 123-45-67");
    am_test_pull_dispose(&r);
    am_config_free(by_id);
    am_config_free(by_name);
    am_config_free(wrong_id);
}

static void test_amocrm__population_rules_override_defaults(void **state)
{
    am_config *cfg = am_test_partner_config(
        "amocrm", "\"token_env\":\"T\",\"populations\":{\"WON\":\"won-deals\","
                  "\"lost\":\"churned\"}");
    uint32_t won = am_test_pop_bit(cfg, "globex", "won-deals"),
             churned = am_test_pop_bit(cfg, "globex", "churned");
    pull_result r;

    (void)state;
    map_fixtures(&r, cfg);
    assert_int_equal(am_test_pull_find(&r, "31840227")->populations, won); /* mapped: no default */
    assert_int_equal(am_test_pull_find(&r, "31840249")->populations, churned);
    assert_int_equal(am_test_pull_find(&r, "31840215")->populations, OPPORTUNITIES);
    assert_int_equal(am_test_pull_find(&r, "31840252")->populations, PROSPECTS);
    am_test_pull_dispose(&r);
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
    bool fail_save;     /* save fails, as a full disk would */
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

static am_status keeper_save(void *ctx, const char *name, const char *value, am_error *err)
{
    test_keeper *k = ctx;

    if (k->fail_save) {
        return am_error_set(err, AM_ESTORE,
                            "secrets/globex.0.refresh_token: No space left on "
                            "device");
    }
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
    char *progress;     /* the source's progress lines */
    am_fake_crm *other; /* the "other host" of the cross-host trap */
} scenario;

/* No secret of the test config in `text`. */
static void assert_no_secret(const char *text)
{
    assert_null(strstr(text, OLD_ACCESS));
    assert_null(strstr(text, OLD_REFRESH));
    assert_null(strstr(text, NEW_ACCESS));
    assert_null(strstr(text, NEW_REFRESH));
    assert_null(strstr(text, CLIENT_SECRET));
}

/*
 * Start the fake server on `name` of amocrm/routes.json and pull a source
 * whose config fields are `fields_fmt` ("@ORIGIN@" stands for the server's origin)
 * through the registry, as a run does.
 */
/* What the keeper of the next run_scenario holds as saved (then reset to NULL). */
static const char *next_stored;
static bool next_fail_save;

static void run_scenario(scenario *sc, const char *name, const char *fields_fmt)
{
    am_config *cfg;
    am_source *src = NULL;
    am_record_batch batch;
    am_source_env env = {0};
    am_error err;
    char fields[2048];

    memset(sc, 0, sizeof(*sc));
    am_error_clear(&err);
    if (am_fake_crm_start(&sc->crm, "amocrm", name, &err)) {
        fail_msg("fake server: %s", err.msg);
    }
    /* Whatever is sent to the other account's host lands here. */
    if (am_fake_crm_start_other(&sc->other, &err) ||
        am_fake_crm_map_host(sc->other, "other-account.amocrm.ru", 443, &err) ||
        am_fake_crm_map_host(sc->other, "other-account.amocrm.ru", 80, &err)) {
        fail_msg("other host: %s", err.msg);
    }
    setenv("AMO_TEST_TOKEN", OLD_ACCESS, 1);
    setenv("AMO_TEST_REFRESH", OLD_REFRESH, 1);
    setenv("AMO_TEST_SECRET", CLIENT_SECRET, 1);
    am_test_replace(fields, sizeof(fields), fields_fmt, "@ORIGIN@", am_fake_crm_origin(sc->crm));
    cfg = am_test_partner_config("amocrm", fields);
    sc->keeper.crm = sc->crm;
    sc->keeper.stored = next_stored;
    sc->keeper.fail_save = next_fail_save;
    next_stored = NULL;
    next_fail_save = false;
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
    sc->refreshes = ((amo_source *)src)->refreshes;
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
    am_fake_crm_stop(sc->other);
    am_fake_crm_unmap_all();
    unsetenv("AMO_TEST_TOKEN");
    unsetenv("AMO_TEST_REFRESH");
    unsetenv("AMO_TEST_SECRET");
}

/* Request `i`: its path, its `page` parameter and its bearer token. */
static void assert_request(scenario *sc, size_t i, const char *path, const char *page,
                           const char *token)
{
    const am_fake_request *rq;
    const char *auth;
    char *got;
    char want[1024];

    assert_true(i < am_fake_crm_request_count(sc->crm));
    rq = am_fake_crm_request(sc->crm, i);
    assert_string_equal(rq->method, "GET");
    assert_string_equal(rq->path, path);
    got = am_fake_request_param(rq, "page", false);
    assert_string_equal(got ? got : "", page);
    free(got);
    snprintf(want, sizeof(want), "Bearer %s", token);
    auth = am_fake_request_header(rq, "Authorization");
    assert_non_null(auth);
    assert_string_equal(auth, want);
}

/* Nothing reached the other host: no connection, no request. */
static void assert_other_host_untouched(scenario *sc)
{
    assert_int_equal(am_fake_crm_connection_count(sc->other), 0);
    assert_int_equal(am_fake_crm_request_count(sc->other), 0);
}

#define TOKEN_FIELDS "\"base_url\":\"@ORIGIN@\",\"token_env\":\"AMO_TEST_TOKEN\"," FAST
#define OAUTH_FIELDS                                                                               \
    "\"base_url\":\"@ORIGIN@\",\"client_id\":\"7d3e1b9a-test\",\"client_secret_env\":"             \
    "\"AMO_TEST_SECRET\",\"refresh_token_env\":\"AMO_TEST_REFRESH\",\"token_env\":"                \
    "\"AMO_TEST_TOKEN\",\"redirect_uri\":\"https://acctmap.example/oauth\"," FAST

static void test_amocrm__happy_pull(void **state)
{
    scenario sc;
    char label[128];

    (void)state;
    run_scenario(&sc, "happy", TOKEN_FIELDS);
    if (sc.r.rc) {
        fail_msg("%s", sc.r.msg);
    }
    assert_happy_records(&sc.r);
    snprintf(label, sizeof(label), "amocrm %s", am_fake_crm_origin(sc.crm));
    assert_string_equal(sc.r.label, label);
    /* Progress on (as on a terminal): lines name the source. */
    assert_non_null(strstr(sc.progress, label));
    assert_int_equal(am_fake_crm_request_count(sc.crm), 3);
    assert_request(&sc, 0, "/api/v4/companies", "1", OLD_ACCESS);
    assert_request(&sc, 1, "/api/v4/companies", "2", OLD_ACCESS); /* _links.next */
    assert_request(&sc, 2, "/api/v4/leads", "1", OLD_ACCESS);
    assert_other_host_untouched(&sc);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

static void test_amocrm__empty_account_answers_204(void **state)
{
    scenario sc;

    (void)state;
    run_scenario(&sc, "empty", TOKEN_FIELDS);
    assert_int_equal(sc.r.rc, AM_OK);
    assert_int_equal(sc.r.count, 0);
    assert_int_equal(sc.r.reject_count, 0);
    assert_int_equal(am_fake_crm_request_count(sc.crm), 1);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

static void test_amocrm__invalid_token_fails(void **state)
{
    scenario sc;
    char want[512];

    (void)state;
    run_scenario(&sc, "invalid_token", TOKEN_FIELDS);
    assert_int_equal(sc.r.rc, AM_EAUTH);
    snprintf(want, sizeof(want),
             "amocrm %s: GET /api/v4/companies: the account refused the long-lived token: 401 "
             "Unauthorized (Invalid user name or password); create a new one in the "
             "integration's settings and set AMO_TEST_TOKEN",
             am_fake_crm_origin(sc.crm));
    assert_string_equal(sc.r.msg, want);
    assert_no_secret(sc.r.msg);
    /* A long-lived token cannot be refreshed: one request. */
    assert_int_equal(am_fake_crm_request_count(sc.crm), 1);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

static void test_amocrm__expired_token_refreshes_once(void **state)
{
    scenario sc;
    const am_fake_request *rq;
    char *field;

    (void)state;
    run_scenario(&sc, "expired_token_then_refresh", OAUTH_FIELDS);
    if (sc.r.rc) {
        fail_msg("%s", sc.r.msg);
    }
    assert_happy_records(&sc.r);
    assert_int_equal(sc.refreshes, 1);
    assert_int_equal(am_fake_crm_request_count(sc.crm), 5);
    assert_request(&sc, 0, "/api/v4/companies", "1", OLD_ACCESS);
    rq = am_fake_crm_request(sc.crm, 1);
    assert_string_equal(rq->method, "POST");
    assert_string_equal(rq->path, "/oauth2/access_token");
    field = am_fake_request_param(rq, "refresh_token", true);
    assert_string_equal(field, OLD_REFRESH);
    free(field);
    field = am_fake_request_param(rq, "client_secret", true);
    assert_string_equal(field, CLIENT_SECRET);
    free(field);
    field = am_fake_request_param(rq, "redirect_uri", true);
    assert_string_equal(field, "https://acctmap.example/oauth");
    free(field);
    /* No bearer goes to the token endpoint. */
    assert_null(am_fake_request_header(rq, "Authorization"));
    assert_request(&sc, 2, "/api/v4/companies", "1", NEW_ACCESS);
    assert_request(&sc, 3, "/api/v4/companies", "2", NEW_ACCESS);
    assert_request(&sc, 4, "/api/v4/leads", "1", NEW_ACCESS);
    /* Saved once, the new refresh token, after the token answer and before request 2. */
    assert_int_equal(sc.keeper.saves, 1);
    assert_string_equal(sc.keeper.name, "globex.0.refresh_token");
    assert_string_equal(sc.keeper.value, NEW_REFRESH);
    assert_int_equal(sc.keeper.requests_at_save, 2);
    assert_no_secret(sc.r.label);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

/*
 * A refresh token saved by an earlier run is the live one (the one in the
 * environment was rotated away): it is the one sent.
 */
static void test_amocrm__saved_refresh_token_wins(void **state)
{
    scenario sc;
    char *field;

    (void)state;
    next_stored = "saved-refresh-1e2d";
    run_scenario(&sc, "expired_token_then_refresh", OAUTH_FIELDS);
    if (sc.r.rc) {
        fail_msg("%s", sc.r.msg);
    }
    assert_int_equal(sc.r.count, 8);
    field = am_fake_request_param(am_fake_crm_request(sc.crm, 1), "refresh_token", true);
    assert_string_equal(field, "saved-refresh-1e2d");
    free(field);
    assert_int_equal(sc.keeper.saves, 1);
    assert_string_equal(sc.keeper.value, NEW_REFRESH);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

/* The rotated token cannot be saved: the source fails before using it. */
static void test_amocrm__unsaved_refresh_token_is_not_used(void **state)
{
    scenario sc;
    char want[512];

    (void)state;
    next_fail_save = true;
    run_scenario(&sc, "expired_token_then_refresh", OAUTH_FIELDS);
    assert_int_equal(sc.r.rc, AM_ESTORE);
    snprintf(want, sizeof(want),
             "amocrm %s: the new refresh token could not be saved "
             "(secrets/globex.0.refresh_token: No space left on device); fix the store, then "
             "authorise acctmap again and set AMO_TEST_REFRESH",
             am_fake_crm_origin(sc.crm));
    assert_string_equal(sc.r.msg, want);
    assert_no_secret(sc.r.msg);
    /* The 401 and the refresh, both answered by their routes; nothing with the new token. */
    assert_int_equal(am_fake_crm_request_count(sc.crm), 2);
    assert_true(am_fake_crm_request(sc.crm, 0)->route >= 0);
    assert_true(am_fake_crm_request(sc.crm, 1)->route >= 0);
    scenario_dispose(&sc);
}

static void test_amocrm__refused_refresh_token_fails(void **state)
{
    scenario sc;
    char want[512];

    (void)state;
    run_scenario(&sc, "expired_token_refresh_rejected", OAUTH_FIELDS);
    assert_int_equal(sc.r.rc, AM_EAUTH);
    snprintf(want, sizeof(want),
             "amocrm %s: the refresh token was refused (Token has been revoked); authorise "
             "acctmap again and set AMO_TEST_REFRESH",
             am_fake_crm_origin(sc.crm));
    assert_string_equal(sc.r.msg, want);
    assert_no_secret(sc.r.msg);
    assert_int_equal(am_fake_crm_request_count(sc.crm), 2);
    assert_int_equal(sc.keeper.saves, 0);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

/* 429 with retry_after 300 in the body: waited (capped by the test's 0.01 s), repeated. */
static void test_amocrm__too_many_requests_waits_and_repeats(void **state)
{
    scenario sc;

    (void)state;
    run_scenario(&sc, "rate_limited_then_ok", TOKEN_FIELDS);
    if (sc.r.rc) {
        fail_msg("%s", sc.r.msg);
    }
    assert_happy_records(&sc.r);
    assert_int_equal(am_fake_crm_request_count(sc.crm), 4);
    assert_int_equal(am_fake_crm_request(sc.crm, 0)->status, 429);
    assert_request(&sc, 0, "/api/v4/companies", "1", OLD_ACCESS);
    assert_request(&sc, 1, "/api/v4/companies", "1", OLD_ACCESS);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

/*
 * _links.next names another account's host: nothing is sent there; page 2
 * comes from our own base by number, and the pull completes.
 */
static void test_amocrm__cross_host_next_link_is_not_followed(void **state)
{
    scenario sc;

    (void)state;
    run_scenario(&sc, "cross_host_next_link", TOKEN_FIELDS);
    if (sc.r.rc) {
        fail_msg("%s", sc.r.msg);
    }
    assert_happy_records(&sc.r);
    assert_int_equal(am_fake_crm_request_count(sc.crm), 3);
    assert_request(&sc, 0, "/api/v4/companies", "1", OLD_ACCESS);
    assert_request(&sc, 1, "/api/v4/companies", "2", OLD_ACCESS);
    assert_request(&sc, 2, "/api/v4/leads", "1", OLD_ACCESS);
    assert_other_host_untouched(&sc);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

static void test_amocrm__truncated_page_fails(void **state)
{
    scenario sc;
    char want[512];

    (void)state;
    run_scenario(&sc, "malformed_body", TOKEN_FIELDS);
    assert_int_equal(sc.r.rc, AM_EINPUT);
    snprintf(want, sizeof(want),
             "amocrm %s: /api/v4/companies: invalid JSON at byte 675 of 675 (premature end of "
             "input); the answer was cut off or is damaged, run again",
             am_fake_crm_origin(sc.crm));
    assert_string_equal(sc.r.msg, want);
    assert_no_secret(sc.r.msg);
    assert_int_equal(am_test_count_lines(sc.r.msg), 1);
    assert_int_equal(am_fake_crm_request_count(sc.crm), 1);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

static void test_amocrm__proxy_502_is_retried(void **state)
{
    scenario sc;

    (void)state;
    run_scenario(&sc, "proxy_502_then_ok", TOKEN_FIELDS);
    if (sc.r.rc) {
        fail_msg("%s", sc.r.msg);
    }
    assert_happy_records(&sc.r);
    assert_int_equal(am_fake_crm_request_count(sc.crm), 4);
    assert_int_equal(am_fake_crm_request(sc.crm, 0)->status, 502);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

static void test_amocrm__proxy_502_persistent_fails(void **state)
{
    scenario sc;
    char want[512];

    (void)state;
    run_scenario(&sc, "proxy_502_persistent", TOKEN_FIELDS ",\"max_attempts\":\"3\"");
    assert_int_equal(sc.r.rc, AM_EHTTP);
    snprintf(want, sizeof(want),
             "amocrm %s: GET /api/v4/companies: HTTP 502 (text/html, not JSON) after 3 attempts "
             "(max_attempts reached); the server or a proxy in front of it is failing, run later",
             am_fake_crm_origin(sc.crm));
    assert_string_equal(sc.r.msg, want);
    assert_no_secret(sc.r.msg);
    assert_int_equal(am_test_count_lines(sc.r.msg), 1);
    assert_int_equal(am_fake_crm_request_count(sc.crm), 3);
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

/*
 * OAuth without token_env: the first request is the refresh, and the first
 * page already carries the new token (a generated manifest: the shared one
 * starts every OAuth scenario with an old token).
 */
static void test_amocrm__oauth_without_access_token_refreshes_first(void **state)
{
    static const char routes[] =
        "[{\"method\":\"POST\",\"path\":\"/oauth2/access_token\",\"body_required\":{"
        "\"refresh_token\":\"" OLD_REFRESH "\"},\"status\":200,\"headers\":"
        "{\"Content-Type\":\"application/json\"},\"body\":\"token.json\"},"
        "{\"method\":\"GET\",\"path\":\"/api/v4/companies\",\"headers_required\":{"
        "\"Authorization\":\"Bearer " NEW_ACCESS "\"},\"status\":204,\"headers\":{},"
        "\"body\":null}]";
    char *token, *problems;
    size_t token_len;
    am_fake_crm *crm = NULL;
    am_config *cfg;
    am_source *src = NULL;
    am_record_batch batch;
    am_source_env env = {0};
    am_error err;
    char fields[1024];

    (void)state;
    am_error_clear(&err);
    token = am_test_crm_fixture("amocrm", "oauth_token_refresh.json", &token_len);
    am_test_write_file(am_test_path("routes.json"), routes, sizeof(routes) - 1);
    am_test_write_file(am_test_path("token.json"), token, token_len);
    free(token);
    if (am_fake_crm_start_dir(&crm, am_test_path(""), NULL, &err)) {
        fail_msg("fake server: %s", err.msg);
    }
    setenv("AMO_TEST_REFRESH", OLD_REFRESH, 1);
    setenv("AMO_TEST_SECRET", CLIENT_SECRET, 1);
    am_test_replace(fields, sizeof(fields),
                    "\"base_url\":\"@ORIGIN@\",\"client_id\":\"7d3e1b9a-test\","
                    "\"client_secret_env\":\"AMO_TEST_SECRET\",\"refresh_token_env\":"
                    "\"AMO_TEST_REFRESH\"," FAST,
                    "@ORIGIN@", am_fake_crm_origin(crm));
    cfg = am_test_partner_config("amocrm", fields);
    am_record_batch_init(&batch);
    assert_int_equal(am_source_open(&src, source_of(cfg), &env, &err), AM_OK);
    assert_int_equal(am_source_next_batch(src, &batch, &err), AM_OK);
    assert_int_equal(batch.count, 0);
    assert_int_equal(((amo_source *)src)->refreshes, 1);
    am_source_close(src);
    am_record_batch_dispose(&batch);
    am_config_free(cfg);
    assert_int_equal(am_fake_crm_request_count(crm), 2);
    problems = am_fake_crm_check(crm);
    am_fake_crm_stop(crm);
    unsetenv("AMO_TEST_REFRESH");
    unsetenv("AMO_TEST_SECRET");
    if (problems) {
        fail_msg("fake server: %s", problems);
    }
}

static void test_amocrm__config_errors(void **state)
{
    scenario sc;

    (void)state;
    run_scenario(&sc, "happy", "\"token_env\":\"AMO_TEST_TOKEN\"");
    assert_int_equal(sc.r.rc, AM_ECONFIG);
    assert_string_equal(sc.r.msg, "acctmap.json: orgs[1].sources[0].base_url: missing; give the "
                                  "account's address, like https://example.amocrm.ru");
    scenario_dispose(&sc);

    unsetenv("AMO_UNSET");
    run_scenario(&sc, "happy", "\"base_url\":\"@ORIGIN@\",\"token_env\":\"AMO_UNSET\"");
    assert_int_equal(sc.r.rc, AM_ECONFIG);
    assert_non_null(strstr(sc.r.msg, "token_env"));
    assert_non_null(strstr(sc.r.msg, "AMO_UNSET"));
    assert_int_equal(am_fake_crm_request_count(sc.crm), 0);
    scenario_dispose(&sc);

    run_scenario(&sc, "happy",
                 "\"base_url\":\"@ORIGIN@\",\"token_env\":\"AMO_TEST_TOKEN\","
                 "\"inn_field\":\"0\"");
    assert_int_equal(sc.r.rc, AM_ECONFIG);
    assert_string_equal(sc.r.msg, "acctmap.json: orgs[1].sources[0].inn_field: \"0\" is not a "
                                  "field id; give the field's id as shown in the account's "
                                  "settings, or its name");
    scenario_dispose(&sc);

    run_scenario(&sc, "happy",
                 "\"base_url\":\"@ORIGIN@\",\"token_env\":\"AMO_TEST_TOKEN\","
                 "\"refresh_token_env\":\"AMO_TEST_REFRESH\"");
    assert_int_equal(sc.r.rc, AM_ECONFIG);
    assert_string_equal(sc.r.msg, "acctmap.json: orgs[1].sources[0].refresh_token_env: OAuth "
                                  "needs client_id too; add it, or remove refresh_token_env to "
                                  "use the long-lived token");
    scenario_dispose(&sc);

    run_scenario(&sc, "happy",
                 "\"base_url\":\"@ORIGIN@\",\"token_env\":\"AMO_TEST_TOKEN\","
                 "\"redirect_uri\":\"https://acctmap.example/oauth\"");
    assert_int_equal(sc.r.rc, AM_ECONFIG);
    assert_string_equal(sc.r.msg, "acctmap.json: orgs[1].sources[0].redirect_uri: OAuth needs "
                                  "client_id too; add it, or remove redirect_uri to use the "
                                  "long-lived token");
    scenario_dispose(&sc);
}

/* A saved refresh token that is refused: the message says to delete it too. */
static void test_amocrm__refused_saved_refresh_token_names_the_file(void **state)
{
    scenario sc;
    char want[640];

    (void)state;
    next_stored = "saved-refresh-1e2d";
    run_scenario(&sc, "expired_token_refresh_rejected", OAUTH_FIELDS);
    assert_int_equal(sc.r.rc, AM_EAUTH);
    snprintf(want, sizeof(want),
             "amocrm %s: the refresh token was refused (Token has been revoked); authorise "
             "acctmap again and set AMO_TEST_REFRESH, then delete the token the store saved as "
             "globex.0.refresh_token (dir: store: secrets/globex.0.refresh_token)",
             am_fake_crm_origin(sc.crm));
    assert_string_equal(sc.r.msg, want);
    assert_null(strstr(sc.r.msg, "saved-refresh-1e2d"));
    assert_routes_used(&sc);
    scenario_dispose(&sc);
}

/*
 * End to end through `acctmap run` and the dir store's secret keeper: the
 * first run refreshes and the store keeps the rotated token (mode 0600); the
 * next run refreshes with that saved token, not the one in the environment.
 */
static void test_amocrm__run_keeps_the_rotated_token_in_the_store(void **state)
{
    static const char ours[] = "id,name,domain,tax_id,country,status\n"
                               "a-rom,ООО «Ромашка»,romashka.ru,7712345671,RU,customer\n";
    static const char config_fmt[] =
        "{\"self\":\"acme\",\"store\":\"dir:./data\",\"orgs\":["
        "{\"id\":\"acme\",\"sources\":[{\"type\":\"csv\",\"path\":\"ours.csv\"}]},"
        "{\"id\":\"amo\",\"sources\":[{\"type\":\"amocrm\"," OAUTH_FIELDS "}]}]}";
    const char *dir = am_test_sandbox();
    am_test_output out = {0};
    am_fake_crm *crm = NULL;
    am_error err;
    char config[4096], *saved, *field, *problems;
    size_t len;
    struct stat st;
    int round;

    (void)state;
    am_error_clear(&err);
    setenv("AMO_TEST_TOKEN", OLD_ACCESS, 1);
    setenv("AMO_TEST_REFRESH", OLD_REFRESH, 1);
    setenv("AMO_TEST_SECRET", CLIENT_SECRET, 1);
    am_test_write_file(am_test_path("ours.csv"), ours, sizeof(ours) - 1);
    for (round = 0; round < 2; round++) {
        const char *args[] = {"run", NULL};

        if (am_fake_crm_start(&crm, "amocrm", "expired_token_then_refresh", &err)) {
            fail_msg("fake server: %s", err.msg);
        }
        am_test_replace(config, sizeof(config), config_fmt, "@ORIGIN@", am_fake_crm_origin(crm));
        am_test_write_file(am_test_path("acctmap.json"), config, strlen(config));
        if (am_test_run(&out, dir, args) != 0) {
            fail_msg("acctmap run: %s", out.err);
        }
        assert_no_secret(out.out);
        assert_no_secret(out.err);
        am_test_output_dispose(&out);
        /* The refresh sent the environment's token first, then the saved one. */
        field = am_fake_request_param(am_fake_crm_request(crm, 1), "refresh_token", true);
        assert_string_equal(field, round == 0 ? OLD_REFRESH : NEW_REFRESH);
        free(field);
        problems = am_fake_crm_check(crm);
        am_fake_crm_stop(crm);
        crm = NULL;
        if (problems) {
            fail_msg("fake server: %s", problems);
        }
        saved = am_test_read_file(am_test_path("data/secrets/amo.0.refresh_token"), &len);
        assert_non_null(saved);
        assert_non_null(strstr(saved, NEW_REFRESH));
        free(saved);
        assert_int_equal(stat(am_test_path("data/secrets/amo.0.refresh_token"), &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    unsetenv("AMO_TEST_TOKEN");
    unsetenv("AMO_TEST_REFRESH");
    unsetenv("AMO_TEST_SECRET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amocrm__fixture_pages_map_to_records),
        cmocka_unit_test(test_amocrm__inn_field_by_id_or_name),
        cmocka_unit_test(test_amocrm__population_rules_override_defaults),
        cmocka_unit_test(test_amocrm__happy_pull),
        cmocka_unit_test(test_amocrm__empty_account_answers_204),
        cmocka_unit_test(test_amocrm__invalid_token_fails),
        cmocka_unit_test(test_amocrm__expired_token_refreshes_once),
        cmocka_unit_test(test_amocrm__saved_refresh_token_wins),
        cmocka_unit_test(test_amocrm__unsaved_refresh_token_is_not_used),
        cmocka_unit_test(test_amocrm__refused_refresh_token_fails),
        cmocka_unit_test(test_amocrm__refused_saved_refresh_token_names_the_file),
        cmocka_unit_test(test_amocrm__too_many_requests_waits_and_repeats),
        cmocka_unit_test(test_amocrm__cross_host_next_link_is_not_followed),
        cmocka_unit_test(test_amocrm__truncated_page_fails),
        cmocka_unit_test(test_amocrm__proxy_502_is_retried),
        cmocka_unit_test(test_amocrm__proxy_502_persistent_fails),
        cmocka_unit_test(test_amocrm__config_errors),
        AM_TEST_SANDBOXED(test_amocrm__oauth_without_access_token_refreshes_first),
        AM_TEST_SANDBOXED(test_amocrm__run_keeps_the_rotated_token_in_the_store),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
