/* Policy: levels and fields per population and per cell; overrides only narrow; exact errors. */
#include <stdio.h>
#include <string.h>

#include "acctmap.h"
#include "helpers.h"

static const char *const ours[] = {"customers", "prospects", "opportunities", "strategic"};
static const char *const theirs[] = {"customers", "prospects", "opportunities"};

static am_status parse(am_policy **p, const char *text, am_error *err)
{
    return am_policy_parse(p, text, text ? strlen(text) : 0, "acctmap.json: orgs[1].share", ours,
                           4, theirs, 3, err);
}

#define F(x) (1u << AM_FIELD_##x)

static void test_policy__mixed_levels_fields_and_override(void **state)
{
    (void)state;
    am_policy *p = NULL;
    am_error err = {0};
    uint32_t our_pops, fields, their_pops;
    size_t j;
    const char *text =
        "{\"customers\": {\"level\": \"accounts\", \"fields\": [\"owner\", \"name\", \"amount\"],"
        "                 \"theirs\": {\"prospects\": \"counts\","
        "                              \"opportunities\": {\"level\": \"accounts\","
        "                                                  \"fields\": [\"name\"]}}},"
        " \"prospects\": \"accounts\", \"opportunities\": \"none\", \"strategic\": \"hidden\"}";

    assert_int_equal(parse(&p, text, &err), AM_OK);
    assert_int_equal(am_policy_population(p, 0).level, AM_SHARE_ACCOUNTS);
    assert_int_equal(am_policy_population(p, 0).fields, F(NAME) | F(OWNER) | F(AMOUNT));
    /* Without a list, accounts shares the default fields. */
    assert_int_equal(am_policy_population(p, 1).fields, AM_FIELDS_DEFAULT);
    assert_int_equal(am_policy_population(p, 2).level, AM_SHARE_NONE);
    assert_int_equal(am_policy_population(p, 3).level, AM_SHARE_HIDDEN);
    /* The overrides narrow single cells; the others keep their population's share. */
    assert_int_equal(am_policy_cell(p, 0, 0).level, AM_SHARE_ACCOUNTS);
    assert_int_equal(am_policy_cell(p, 0, 0).fields, F(NAME) | F(OWNER) | F(AMOUNT));
    assert_int_equal(am_policy_cell(p, 0, 1).level, AM_SHARE_COUNTS);
    assert_int_equal(am_policy_cell(p, 0, 1).fields, 0);
    assert_int_equal(am_policy_cell(p, 0, 2).level, AM_SHARE_ACCOUNTS);
    assert_int_equal(am_policy_cell(p, 0, 2).fields, F(NAME));
    for (j = 0; j < 3; j++) {
        assert_int_equal(am_policy_cell(p, 1, j).level, AM_SHARE_ACCOUNTS);
        assert_int_equal(am_policy_cell(p, 2, j).level, AM_SHARE_NONE);
        assert_int_equal(am_policy_cell(p, 3, j).level, AM_SHARE_HIDDEN);
    }
    /* Out of range is the narrowest, never the widest. */
    assert_int_equal(am_policy_cell(p, 9, 0).level, AM_SHARE_HIDDEN);
    am_policy_needs(&our_pops, &fields, &their_pops, p);
    assert_int_equal(our_pops, 0x3);
    assert_int_equal(their_pops, 0x7);
    assert_int_equal(fields, F(NAME) | F(OWNER) | F(AMOUNT) | AM_FIELDS_DEFAULT);
    am_policy_free(p);
}

static void test_policy__default_is_counts(void **state)
{
    (void)state;
    am_policy *p = NULL;
    am_error err = {0};
    uint32_t our_pops, fields, their_pops;
    size_t i, j;

    assert_int_equal(parse(&p, NULL, &err), AM_OK);
    for (i = 0; i < 4; i++) {
        for (j = 0; j < 3; j++) {
            assert_int_equal(am_policy_cell(p, i, j).level, AM_SHARE_COUNTS);
        }
    }
    am_policy_needs(&our_pops, &fields, &their_pops, p);
    assert_int_equal(our_pops | fields | their_pops, 0);
    am_policy_free(p);
    /* Populations a partial policy leaves out are counts too. */
    assert_int_equal(parse(&p, "{\"prospects\": \"none\"}", &err), AM_OK);
    assert_int_equal(am_policy_population(p, 0).level, AM_SHARE_COUNTS);
    assert_int_equal(am_policy_population(p, 1).level, AM_SHARE_NONE);
    am_policy_free(p);
}

/* Every mistake, with its exact one-line message. */
static void test_policy__errors_are_exact(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"[1]", "acctmap.json: orgs[1].share: expected an object like {\"customers\": "
                "\"counts\"}"},
        {"{\"customers\": \"all\"}",
         "acctmap.json: orgs[1].share.customers: expected hidden, none, counts or accounts, not "
         "\"all\""},
        {"{\"customers\": 3}",
         "acctmap.json: orgs[1].share.customers: expected hidden, none, counts or accounts"},
        {"{\"partners\": \"counts\"}",
         "acctmap.json: orgs[1].share.partners: \"partners\" is not one of our populations; use "
         "one of customers, prospects, opportunities, strategic"},
        {"{\"customers\": {\"level\": \"accounts\", \"fields\": [\"name\", \"phone\"]}}",
         "acctmap.json: orgs[1].share.customers.fields[1]: unknown field \"phone\"; use id, "
         "name, domain, tax_id, country, city, owner or amount"},
        {"{\"customers\": {\"level\": \"accounts\", \"fields\": []}}",
         "acctmap.json: orgs[1].share.customers.fields: expected a non-empty list like "
         "[\"name\", \"domain\"]"},
        {"{\"customers\": {\"level\": \"counts\", \"fields\": [\"name\"]}}",
         "acctmap.json: orgs[1].share.customers.fields: only a population shared as "
         "\"accounts\" lists fields; drop them or share accounts"},
        {"{\"customers\": {\"fields\": [\"name\"]}}",
         "acctmap.json: orgs[1].share.customers.level: missing; give hidden, none, counts or "
         "accounts"},
        {"{\"customers\": {\"level\": \"counts\", \"field\": [\"name\"]}}",
         "acctmap.json: orgs[1].share.customers: unknown field \"field\"; known fields: level, "
         "fields, theirs"},
        {"{\"customers\": {\"level\": \"counts\", \"theirs\": {\"customers\": \"accounts\"}}}",
         "acctmap.json: orgs[1].share.customers.theirs.customers: \"accounts\" would widen the "
         "population's \"counts\"; an override may only narrow"},
        {"{\"customers\": {\"level\": \"none\", \"theirs\": {\"prospects\": \"counts\"}}}",
         "acctmap.json: orgs[1].share.customers.theirs.prospects: \"counts\" would widen the "
         "population's \"none\"; an override may only narrow"},
        {"{\"customers\": {\"level\": \"accounts\", \"fields\": [\"name\"], \"theirs\": "
         "{\"prospects\": {\"level\": \"accounts\", \"fields\": [\"name\", \"tax_id\"]}}}}",
         "acctmap.json: orgs[1].share.customers.theirs.prospects.fields: \"tax_id\" is not "
         "shared for the population; an override may only narrow"},
        {"{\"customers\": {\"level\": \"accounts\", \"theirs\": {\"partners\": \"none\"}}}",
         "acctmap.json: orgs[1].share.customers.theirs.partners: \"partners\" is not a "
         "population of this partner; use one of customers, prospects, opportunities"},
        {"{\"customers\": {\"level\": \"accounts\", \"theirs\": {\"prospects\": \"hidden\"}}}",
         "acctmap.json: orgs[1].share.customers.theirs.prospects: a cell cannot be hidden, only "
         "a whole population; use \"none\""},
        {"{\"customers\": {\"level\": \"accounts\", \"theirs\": {\"prospects\": {\"level\": "
         "\"counts\", \"theirs\": {}}}}}",
         "acctmap.json: orgs[1].share.customers.theirs.prospects: unknown field \"theirs\"; "
         "known fields: level, fields"},
        {"{\"customers\": {\"level\": \"accounts\", \"theirs\": [\"prospects\"]}}",
         "acctmap.json: orgs[1].share.customers.theirs: expected an object like {\"prospects\": "
         "\"counts\"}"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        am_policy *p = NULL;
        am_error err = {0};
        am_status rc = parse(&p, cases[i].text, &err);
        if (rc != AM_ECONFIG || strcmp(err.msg, cases[i].msg) != 0) {
            fail_msg("case %zu: got %d \"%s\", want \"%s\"", i, rc, err.msg, cases[i].msg);
        }
        assert_null(p);
    }
}

/* The config hands each partner's `share` to the policy, checked against both orgs' populations. */
static void test_policy__config_parses_share_per_partner(void **state)
{
    (void)state;
    am_config *cfg = NULL;
    am_error err = {0};
    const char *text =
        "{\"self\": \"acme\", \"orgs\": ["
        " {\"id\": \"globex\", \"sources\": [{\"type\": \"csv\", \"populations\": {\"ally\": "
        "\"allies\"}}],"
        "  \"share\": {\"vip\": {\"level\": \"accounts\", \"theirs\": {\"allies\": \"counts\"}}}},"
        " {\"id\": \"acme\", \"sources\": [{\"type\": \"csv\", \"populations\": {\"v\": \"vip\"}}]},"
        " {\"id\": \"initech\", \"sources\": [{\"type\": \"csv\"}]}]}";
    const char *self_share =
        "{\"self\": \"acme\", \"orgs\": [{\"id\": \"acme\", \"sources\": [{\"type\": \"csv\"}],"
        " \"share\": {}}, {\"id\": \"b\", \"sources\": [{\"type\": \"csv\"}]}]}";
    const am_config_org *g, *i;

    assert_int_equal(am_config_parse(&cfg, text, strlen(text), "acctmap.json", "/", &err), AM_OK);
    assert_null(am_config_org_at(cfg, 0)->policy);
    g = am_config_org_find(cfg, "globex");
    i = am_config_org_find(cfg, "initech");
    /* Self's custom population "vip" is row 3, globex's "allies" column 3. */
    assert_int_equal(am_policy_cell(g->policy, 3, 0).level, AM_SHARE_ACCOUNTS);
    assert_int_equal(am_policy_cell(g->policy, 3, 3).level, AM_SHARE_COUNTS);
    assert_int_equal(am_policy_cell(g->policy, 0, 0).level, AM_SHARE_COUNTS);
    assert_int_equal(am_policy_cell(i->policy, 3, 0).level, AM_SHARE_COUNTS);
    am_config_free(cfg);

    assert_int_equal(am_config_parse(&cfg, self_share, strlen(self_share), "acctmap.json", "/",
                                     &err),
                     AM_ECONFIG);
    assert_string_equal(err.msg, "acctmap.json: orgs[0].share: self shares nothing with itself; "
                                 "put \"share\" on a partner");
    assert_null(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy__mixed_levels_fields_and_override),
        cmocka_unit_test(test_policy__default_is_counts),
        cmocka_unit_test(test_policy__errors_are_exact),
        cmocka_unit_test(test_policy__config_parses_share_per_partner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
