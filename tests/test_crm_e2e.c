/*
 * End to end over real HTTP: a vendor on Salesforce and partners on HubSpot,
 * Bitrix24 and amoCRM, each a fake CRM on loopback replaying the fixtures of
 * ../shared/fixtures-crm. `acctmap run` must find the overlaps the fixtures'
 * README promises, keep the traps apart, and fail whole when one source fails.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "acctmap.h"
#include "helpers.h"
#include "tests/fake_crm.h"

/* Salesforce Account ids of the fixtures. */
#define SF_NORTHWIND "001RO000004xQmZYAU"
#define SF_GLOBEX "001RO000004xQn3YAE"
#define SF_INITECH "001RO000004xQnDYAU"
#define SF_ROMASHKA "001RO000005Ab2HYAS"
#define SF_VANDELAY "001RO000005Ab2qYAC"
#define SF_STARK "001RO000006KwPeYAK"

#define WEBHOOK_PATH "/rest/1/k2x9q7w4e1r6t3y8/"

/* Short back-off so that a failing source fails fast; no client-side rate. */
#define FAST                                                                                       \
    "\"max_wait_one_s\":\"0.02\",\"max_wait_s\":\"1\",\"max_attempts\":\"2\","                     \
    "\"requests_per_s\":\"0\""

static am_fake_crm *g_sf, *g_hs, *g_b24, *g_amo;

static const char *const secret_values[] = {"00Dtest!vendor-token", "pat-eu1-partner-token",
                                            "k2x9q7w4e1r6t3y8", "amo-long-lived-token"};

static char g_dir[1024];

/* The sandbox the test runs acctmap in (am_test_path returns a rotating buffer). */
static const char *dir(void)
{
    return g_dir;
}

static int setup(void **state)
{
    int rc = am_test_sandbox_setup(state);

    snprintf(g_dir, sizeof(g_dir), "%s", am_test_path(""));
    return rc;
}

static void teardown_servers(void)
{
    am_fake_crm_stop(g_sf);
    am_fake_crm_stop(g_hs);
    am_fake_crm_stop(g_b24);
    am_fake_crm_stop(g_amo);
    g_sf = g_hs = g_b24 = g_amo = NULL;
}

static int teardown(void **state)
{
    teardown_servers();
    unsetenv("E2E_SF_TOKEN");
    unsetenv("E2E_HS_TOKEN");
    unsetenv("E2E_B24_WEBHOOK");
    unsetenv("E2E_AMO_TOKEN");
    return am_test_sandbox_teardown(state);
}

static void start_servers(const char *amo_scenario)
{
    am_error err;

    am_error_clear(&err);
    if (am_fake_crm_start(&g_sf, "salesforce", "happy", &err) ||
        am_fake_crm_start(&g_hs, "hubspot", "happy", &err) ||
        am_fake_crm_start(&g_b24, "bitrix24", "happy", &err) ||
        am_fake_crm_start(&g_amo, "amocrm", amo_scenario, &err)) {
        fail_msg("fake CRM: %s", err.msg);
    }
}

/* acctmap.json for the four servers; secrets only in the environment. */
static void write_config(const char *amo_origin)
{
    char config[4096], webhook[256];
    int n;

    n = snprintf(config, sizeof(config),
                 "{\"self\":\"acme\",\"store\":\"dir:./data\",\"orgs\":["
                 "{\"id\":\"acme\",\"name\":\"Acme\",\"sources\":[{\"type\":\"salesforce\","
                 "\"instance_url\":\"%s\",\"token_env\":\"E2E_SF_TOKEN\"," FAST "}]},"
                 "{\"id\":\"globex\",\"sources\":[{\"type\":\"hubspot\",\"base_url\":\"%s\","
                 "\"token_env\":\"E2E_HS_TOKEN\"," FAST "}]},"
                 "{\"id\":\"b24\",\"sources\":[{\"type\":\"bitrix24\","
                 "\"webhook_env\":\"E2E_B24_WEBHOOK\"," FAST "}]},"
                 "{\"id\":\"amo\",\"sources\":[{\"type\":\"amocrm\",\"base_url\":\"%s\","
                 "\"token_env\":\"E2E_AMO_TOKEN\"," FAST "}]}]}",
                 am_fake_crm_origin(g_sf), am_fake_crm_origin(g_hs), amo_origin);
    assert_true(n > 0 && (size_t)n < sizeof(config));
    am_test_write_file(am_test_path("acctmap.json"), config, (size_t)n);
    snprintf(webhook, sizeof(webhook), "%s" WEBHOOK_PATH, am_fake_crm_origin(g_b24));
    setenv("E2E_SF_TOKEN", secret_values[0], 1);
    setenv("E2E_HS_TOKEN", secret_values[1], 1);
    setenv("E2E_B24_WEBHOOK", webhook, 1);
    setenv("E2E_AMO_TOKEN", secret_values[3], 1);
}

static void assert_no_secret(const char *text)
{
    size_t i;

    for (i = 0; i < sizeof(secret_values) / sizeof(secret_values[0]); i++) {
        if (strstr(text, secret_values[i])) {
            fail_msg("a secret (%zu) appears in: %s", i, text);
        }
    }
}

/* True when `accounts --format csv` has a row of our `ours` and their `theirs`. */
static bool has_pair(const char *csv, const char *ours, const char *theirs)
{
    char head[128];
    const char *line = csv;

    snprintf(head, sizeof(head), "%s,%s,", ours, theirs);
    while (line && *line) {
        if (strncmp(line, head, strlen(head)) == 0) {
            return true;
        }
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return false;
}

static char *accounts_of(const char *partner)
{
    const char *args[] = {"accounts", partner, "--format", "csv", NULL};
    am_test_output out;
    char *csv;

    am_test_run(&out, dir(), args);
    if (out.exit_code != 0) {
        char copy[1024];
        int code = out.exit_code;
        snprintf(copy, sizeof(copy), "%s", out.err);
        am_test_output_dispose(&out);
        fail_msg("accounts %s: exit %d: %s", partner, code, copy);
    }
    csv = strdup(out.out);
    am_test_output_dispose(&out);
    assert_non_null(csv);
    return csv;
}

static void expect_pairs(const char *partner, const char *const *pairs, size_t count,
                         bool present)
{
    char *csv = accounts_of(partner);
    size_t i;

    for (i = 0; i + 1 < count; i += 2) {
        if (has_pair(csv, pairs[i], pairs[i + 1]) != present) {
            char copy[4096];
            snprintf(copy, sizeof(copy), "%s", csv);
            free(csv);
            fail_msg("%s: %s -> %s should %sbe a pair:\n%s", partner, pairs[i], pairs[i + 1],
                     present ? "" : "not ", copy);
        }
    }
    free(csv);
}

static void assert_servers_clean(void)
{
    am_fake_crm *all[] = {g_sf, g_hs, g_b24, g_amo};
    size_t i;

    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        char *problems = am_fake_crm_check(all[i]);
        if (problems) {
            fail_msg("fake CRM %zu: %s", i, problems);
        }
    }
}

static size_t run_count(void)
{
    const char *args[] = {"runs", "--format", "json", NULL};
    am_test_output out;
    json_t *doc;
    size_t n;

    am_test_run(&out, dir(), args);
    assert_int_equal(out.exit_code, 0);
    doc = json_loads(out.out, 0, NULL);
    assert_non_null(doc);
    n = json_array_size(json_object_get(doc, "runs"));
    json_decref(doc);
    am_test_output_dispose(&out);
    return n;
}

static void test_crm_e2e__four_crms_give_the_promised_overlaps(void **state)
{
    static const char *const hubspot[] = {
        SF_NORTHWIND, "9012345601", SF_GLOBEX, "9012345617", SF_INITECH,  "9012345622",
        SF_ROMASHKA,  "9012345644", SF_STARK,  "9012345663", SF_VANDELAY, "9012345659",
    };
    static const char *const bitrix24[] = {
        SF_NORTHWIND, "41", SF_GLOBEX, "58", SF_INITECH, "82", SF_ROMASHKA, "4",
    };
    /*
     * Traps: the other ООО «Ромашка» (Kazan, another site), and ООО «Ромашка-М»
     * whose website is a page on our Ромашка's site.
     */
    static const char *const bitrix24_apart[] = {SF_ROMASHKA, "16", SF_ROMASHKA, "75"};
    static const char *const amocrm[] = {SF_INITECH, "31840249", SF_ROMASHKA, "31840215"};
    const char *run_args[] = {"run", NULL};
    am_test_output out;

    (void)state;
    start_servers("happy");
    write_config(am_fake_crm_origin(g_amo));
    am_test_run(&out, dir(), run_args);
    if (out.exit_code != 0) {
        char copy[1024];
        int code = out.exit_code;
        snprintf(copy, sizeof(copy), "%s", out.err);
        am_test_output_dispose(&out);
        fail_msg("acctmap run: exit %d: %s", code, copy);
    }
    assert_no_secret(out.out);
    assert_no_secret(out.err);
    /* Every partner is summarised, with the four connectors' records counted. */
    assert_non_null(strstr(out.out, "globex"));
    assert_non_null(strstr(out.out, "b24"));
    assert_non_null(strstr(out.out, "amo"));
    am_test_output_dispose(&out);
    assert_servers_clean();

    expect_pairs("globex", hubspot, sizeof(hubspot) / sizeof(hubspot[0]), true);
    expect_pairs("b24", bitrix24, sizeof(bitrix24) / sizeof(bitrix24[0]), true);
    expect_pairs("b24", bitrix24_apart, sizeof(bitrix24_apart) / sizeof(bitrix24_apart[0]),
                 false);
    expect_pairs("amo", amocrm, sizeof(amocrm) / sizeof(amocrm[0]), true);

    /* The stored run names each source by its host, never by a token or the webhook path. */
    {
        const char *args[] = {"runs", "--format", "json", NULL};
        am_test_run(&out, dir(), args);
        assert_int_equal(out.exit_code, 0);
        assert_no_secret(out.out);
        assert_null(strstr(out.out, "/rest/1/"));
        am_test_output_dispose(&out);
    }
}

/*
 * A partner's CRM that is down fails the next run: exit 1, one line naming the
 * org and the source, nothing committed, the previous run still the latest.
 */
static void test_crm_e2e__a_source_down_fails_the_run_and_keeps_the_last(void **state)
{
    const char *run_args[] = {"run", NULL};
    const char *matrix_args[] = {"matrix", "--json", NULL};
    am_test_output out;
    char *before, amo_origin[128];

    (void)state;
    start_servers("happy");
    write_config(am_fake_crm_origin(g_amo));
    am_test_run(&out, dir(), run_args);
    assert_int_equal(out.exit_code, 0);
    am_test_output_dispose(&out);
    am_test_run(&out, dir(), matrix_args);
    assert_int_equal(out.exit_code, 0);
    before = strdup(out.out);
    am_test_output_dispose(&out);
    assert_int_equal(run_count(), 1);

    /* Fresh servers (the happy routes answer once), but amoCRM's is gone. */
    snprintf(amo_origin, sizeof(amo_origin), "%s", am_fake_crm_origin(g_amo));
    teardown_servers();
    start_servers("happy");
    am_fake_crm_stop(g_amo);
    g_amo = NULL;
    write_config(amo_origin);
    am_test_run(&out, dir(), run_args);
    assert_int_equal(out.exit_code, 1);
    if (am_test_count_lines(out.err) != 1) {
        fail_msg("stderr: %s", out.err);
    }
    if (!strstr(out.err, "acctmap: source amo/amocrm: ")) {
        fail_msg("stderr: %s", out.err);
    }
    assert_no_secret(out.err);
    am_test_output_dispose(&out);
    assert_int_equal(run_count(), 1);
    am_test_run(&out, dir(), matrix_args);
    assert_int_equal(out.exit_code, 0);
    assert_string_equal(out.out, before);
    am_test_output_dispose(&out);
    free(before);
}

/* A secret missing from the environment is a config mistake: exit 2, one line naming the field. */
static void test_crm_e2e__missing_secret_is_a_config_error(void **state)
{
    const char *run_args[] = {"run", NULL};
    am_test_output out;

    (void)state;
    start_servers("happy");
    write_config(am_fake_crm_origin(g_amo));
    unsetenv("E2E_HS_TOKEN");
    am_test_run(&out, dir(), run_args);
    assert_int_equal(out.exit_code, 2);
    assert_string_equal(out.err, "acctmap: acctmap.json: orgs[1].sources[0].token_env: environment "
                                 "variable E2E_HS_TOKEN is not set or empty; export it before "
                                 "the run\n");
    am_test_output_dispose(&out);
    assert_int_equal(run_count(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crm_e2e__four_crms_give_the_promised_overlaps, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_crm_e2e__a_source_down_fails_the_run_and_keeps_the_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crm_e2e__missing_secret_is_a_config_error, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
