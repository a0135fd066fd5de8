/* Config: valid files load with self first; every mistake names its field. */
#include <stdio.h>
#include <string.h>

#include "acctmap.h"
#include "helpers.h"

static am_status parse(am_config **cfg, const char *text, am_error *err)
{
    return am_config_parse(cfg, text, strlen(text), "acctmap.json", "/base", err);
}

static void test_config__self_first_and_populations(void **state)
{
    (void)state;
    am_config *cfg = NULL;
    am_error err = {0};
    const char *text =
        "{\"self\": \"acme\", \"store\": \"dir:./data\", \"orgs\": ["
        " {\"id\": \"globex\", \"sources\": [{\"type\": \"csv\", \"path\": \"g.csv\","
        "   \"populations\": {\"client\": \"customers\", \"ally\": [\"partners\", \"prospects\"]}}]},"
        " {\"id\": \"acme\", \"name\": \"Acme Corp\", \"sources\": [{\"type\": \"csv\", \"path\": \"a.csv\"}]},"
        " {\"id\": \"initech\", \"sources\": [{\"type\": \"csv\", \"path\": \"i.csv\"}],"
        "   \"share\": {\"customers\": \"accounts\", \"prospects\": {\"level\": \"counts\"}}}]}";

    assert_int_equal(parse(&cfg, text, &err), AM_OK);
    assert_int_equal(am_config_org_count(cfg), 3);
    assert_string_equal(am_config_org_at(cfg, 0)->id, "acme");
    assert_true(am_config_org_at(cfg, 0)->is_self);
    assert_string_equal(am_config_org_at(cfg, 0)->name, "Acme Corp");
    assert_string_equal(am_config_org_at(cfg, 1)->id, "globex");
    assert_string_equal(am_config_org_at(cfg, 1)->name, "globex");
    assert_string_equal(am_config_org_at(cfg, 2)->id, "initech");
    assert_string_equal(am_config_store(cfg), "dir:./data");

    const am_config_org *g = am_config_org_find(cfg, "globex");
    assert_int_equal(g->population_count, 4);
    assert_string_equal(g->populations[3], "partners");
    const am_source_config *src = &g->sources[0];
    assert_int_equal(am_source_config_rule_match(src, "CLIENT", 6), 1u << AM_POP_CUSTOMERS);
    assert_int_equal(am_source_config_rule_match(src, "ally", 4),
                     (1u << 3) | (1u << AM_POP_PROSPECTS));
    assert_int_equal(am_source_config_rule_match(src, "customer", 8), 0);
    assert_string_equal(src->base_dir, "/base");
    assert_string_equal(src->where, "acctmap.json: orgs[0].sources[0]");

    const char *path = NULL;
    assert_int_equal(am_source_config_string(&path, src, "path", true, &err), AM_OK);
    assert_string_equal(path, "g.csv");
    assert_int_equal(am_source_config_string(&path, src, "delimiter", false, &err), AM_OK);
    assert_null(path);
    am_config_free(cfg);
}

/* Each bad config and the exact start of the one-line error it gives. */
static void test_config__errors_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"{\"self\": ", "acctmap.json:1:"},
        {"[1, 2]", "acctmap.json: expected a JSON object"},
        {"{\"orgs\": []}", "acctmap.json.self: missing"},
        {"{\"self\": \"acme\", \"orgs\": [{\"id\": \"acme\", \"sources\": [{\"type\": \"csv\"}]},"
         " {\"id\": \"b\", \"sources\": [{\"type\": \"csv\"}]}], \"stor\": \"x\"}",
         "acctmap.json: unknown field \"stor\""},
        {"{\"self\": \"nobody\", \"orgs\": [{\"id\": \"acme\", \"sources\": [{\"type\": \"csv\"}]},"
         " {\"id\": \"b\", \"sources\": [{\"type\": \"csv\"}]}]}",
         "acctmap.json.self: \"nobody\" is not the id of any org"},
        {"{\"self\": \"acme\", \"orgs\": [{\"id\": \"acme\", \"sources\": [{\"type\": \"csv\"}]},"
         " {\"id\": \"Bad Id\", \"sources\": [{\"type\": \"csv\"}]}]}",
         "acctmap.json: orgs[1].id: \"Bad Id\" is not a valid org id"},
        {"{\"self\": \"acme\", \"orgs\": [{\"id\": \"acme\", \"sources\": [{\"type\": \"csv\"}]},"
         " {\"id\": \"acme\", \"sources\": [{\"type\": \"csv\"}]}]}",
         "acctmap.json: orgs[1].id: \"acme\" appears twice"},
        {"{\"self\": \"acme\", \"orgs\": [{\"id\": \"acme\", \"sources\": []},"
         " {\"id\": \"b\", \"sources\": [{\"type\": \"csv\"}]}]}",
         "acctmap.json: orgs[0].sources: expected a non-empty list"},
        {"{\"self\": \"acme\", \"orgs\": [{\"id\": \"acme\", \"sources\": [{\"path\": \"x\"}]},"
         " {\"id\": \"b\", \"sources\": [{\"type\": \"csv\"}]}]}",
         "acctmap.json: orgs[0].sources[0].type: missing"},
        {"{\"self\": \"acme\", \"store\": \"s3://x\", \"orgs\": [{\"id\": \"acme\", \"sources\": "
         "[{\"type\": \"csv\"}]}, {\"id\": \"b\", \"sources\": [{\"type\": \"csv\"}]}]}",
         "acctmap.json.store: \"s3://x\" is not a store"},
        {"{\"self\": \"acme\", \"orgs\": [{\"id\": \"acme\", \"sources\": [{\"type\": \"csv\","
         " \"populations\": {\"x\": 3}}]}, {\"id\": \"b\", \"sources\": [{\"type\": \"csv\"}]}]}",
         "acctmap.json: orgs[0].sources[0].populations.x: expected a population name"},
        {"{\"self\": \"acme\", \"orgs\": [{\"id\": \"acme\", \"sources\": [{\"type\": \"csv\"}]},"
         " {\"id\": \"b\", \"sources\": [{\"type\": \"csv\"}], \"share\": {\"customers\": \"all\"}}]}",
         "acctmap.json: orgs[1].share.customers: expected hidden, none, counts or accounts"},
        {"{\"self\": \"acme\", \"orgs\": [{\"id\": \"acme\", \"sources\": [{\"type\": \"csv\"}]}]}",
         "acctmap.json.orgs: expected a list of at least two orgs"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        am_config *cfg = NULL;
        am_error err = {0};
        am_status rc = parse(&cfg, cases[i].text, &err);
        if (rc != AM_ECONFIG || strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) != 0) {
            fail_msg("case %zu: got %d \"%s\", want \"%s...\"", i, rc, err.msg, cases[i].msg);
        }
        assert_null(cfg);
        assert_null(strchr(err.msg, '\n'));
    }
}

static void test_config__unknown_source_fields_refused(void **state)
{
    (void)state;
    am_config *cfg = NULL;
    am_error err = {0};
    static const char *const known[] = {"path", "delimiter", NULL};
    const char *text = "{\"self\": \"a\", \"orgs\": [{\"id\": \"a\", \"sources\": [{\"type\": \"csv\","
                       " \"pth\": \"x.csv\"}]}, {\"id\": \"b\", \"sources\": [{\"type\": \"csv\"}]}]}";

    assert_int_equal(parse(&cfg, text, &err), AM_OK);
    assert_int_equal(am_source_config_check_fields(&am_config_org_at(cfg, 0)->sources[0], known,
                                                   &err),
                     AM_ECONFIG);
    assert_string_equal(err.msg, "acctmap.json: orgs[0].sources[0]: unknown field \"pth\" for a "
                                 "csv source; known fields: type, populations, path, delimiter");
    am_config_free(cfg);
}

static void test_config__load_missing_file(void **state)
{
    (void)state;
    am_config *cfg = NULL;
    am_error err = {0};

    assert_int_equal(am_config_load(&cfg, "/nonexistent/acctmap.json", &err), AM_ECONFIG);
    assert_string_equal(err.msg, "/nonexistent/acctmap.json: cannot open the config: No such "
                                 "file or directory; pass another one with -c FILE");
}

/* Found by fuzz_config: jansson quotes the input, newline included, in its error text. */
static void test_config__issue3_json_error_stays_one_line(void **state)
{
    (void)state;
    am_config *cfg = NULL;
    am_error err = {0};
    const char text[] = "{\n  \"self\": \"acacme\\\n  \"store\": \"x\"}";

    assert_int_equal(am_config_parse(&cfg, text, sizeof(text) - 1, "x.json", ".", &err),
                     AM_ECONFIG);
    assert_non_null(strstr(err.msg, "x.json:3:0: not valid JSON: invalid escape"));
    assert_null(strchr(err.msg, '\n'));
    assert_null(strchr(err.msg, '\r'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config__self_first_and_populations),
        cmocka_unit_test(test_config__errors_name_the_field),
        cmocka_unit_test(test_config__unknown_source_fields_refused),
        cmocka_unit_test(test_config__load_missing_file),
        cmocka_unit_test(test_config__issue3_json_error_stays_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
