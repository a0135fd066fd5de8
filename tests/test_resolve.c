/* Resolve: shared keys link records transitively; ids ignore the input order. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acctmap.h"
#include "acctmap/resolve.h"
#include "helpers.h"

typedef struct rec_keys {
    const char *keys[3];
    uint8_t group;
} rec_keys;

/* Resolve `recs` in the order given by `order`; entity of each record in original numbering. */
static uint32_t resolve(uint32_t *entity_out, const rec_keys *recs, const size_t *order, size_t n)
{
    am_resolver *r = NULL;
    am_error err = {0};
    uint32_t *entity_of = NULL, count = 0;
    size_t i, k;

    assert_int_equal(am_resolver_new(&r, &err), AM_OK);
    for (i = 0; i < n; i++) {
        const rec_keys *rk = &recs[order[i]];
        am_key keys[3];
        size_t nk = 0;
        for (k = 0; k < 3 && rk->keys[k]; k++) {
            am_key_from_text(&keys[nk++], AM_KEY_DOMAIN, rk->keys[k], strlen(rk->keys[k]));
        }
        am_resolve_facts facts = {rk->group, false, false, 0, 0};
        assert_int_equal(am_resolver_add(r, keys, nk, &facts, &err), AM_OK);
    }
    assert_int_equal(am_resolver_record_count(r), n);
    assert_int_equal(am_resolver_finish(&entity_of, &count, r, &err), AM_OK);
    for (i = 0; i < n; i++) {
        entity_out[order[i]] = entity_of[i];
    }
    free(entity_of);
    am_resolver_free(r);
    return count;
}

static const rec_keys sample[] = {
    {{"domain:acme.com", NULL}, 1},                      /* 0 */
    {{"name:acme|US", "domain:acme.com"}, AM_RESOLVE_GROUP_NONE}, /* 1: same as 0 */
    {{"tax:RU7707083893", NULL}, 0},                     /* 2 */
    {{"name:acme|US", "tax:RU7712345671"}, AM_RESOLVE_GROUP_NONE}, /* 3: chain to 0 via 1 */
    {{"domain:globex.de", NULL}, AM_RESOLVE_GROUP_NONE}, /* 4 */
    {{"tax:RU7707083893", "domain:sber.ru"}, AM_RESOLVE_GROUP_NONE}, /* 5: same as 2 */
    {{"record:b\x1fx1", NULL}, AM_RESOLVE_GROUP_NONE},   /* 6: alone */
};
#define SAMPLE_N (sizeof(sample) / sizeof(sample[0]))

static void test_resolve__links_transitively(void **state)
{
    (void)state;
    size_t order[SAMPLE_N];
    uint32_t e[SAMPLE_N];
    size_t i;

    for (i = 0; i < SAMPLE_N; i++) {
        order[i] = i;
    }
    assert_int_equal(resolve(e, sample, order, SAMPLE_N), 4);
    assert_int_equal(e[0], e[1]);
    assert_int_equal(e[0], e[3]);
    assert_int_equal(e[2], e[5]);
    assert_int_not_equal(e[0], e[2]);
    assert_int_not_equal(e[4], e[6]);
    /* Group 0 (record 2's entity) comes first, then group 1 (record 0's). */
    assert_int_equal(e[2], 0);
    assert_int_equal(e[0], 1);
}

static void test_resolve__same_ids_in_any_order(void **state)
{
    (void)state;
    size_t order[SAMPLE_N];
    uint32_t first[SAMPLE_N], again[SAMPLE_N];
    size_t i, round;
    unsigned seed = 12345;

    for (i = 0; i < SAMPLE_N; i++) {
        order[i] = i;
    }
    resolve(first, sample, order, SAMPLE_N);
    for (round = 0; round < 50; round++) {
        for (i = SAMPLE_N - 1; i > 0; i--) {
            size_t j, t;
            seed = seed * 1103515245u + 12345u;
            j = (seed >> 8) % (i + 1);
            t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        resolve(again, sample, order, SAMPLE_N);
        assert_memory_equal(first, again, sizeof(first));
    }
}

static void test_resolve__many_records_grow_the_table(void **state)
{
    (void)state;
    am_resolver *r = NULL;
    am_error err = {0};
    uint32_t *entity_of = NULL, count = 0;
    size_t i, n = 300000;

    assert_int_equal(am_resolver_new(&r, &err), AM_OK);
    for (i = 0; i < n; i++) {
        char text[32];
        am_key k;
        /* Pairs of records share a key: n/2 entities. */
        snprintf(text, sizeof(text), "domain:d%zu.com", i / 2);
        am_key_from_text(&k, AM_KEY_DOMAIN, text, strlen(text));
        /* The first 30000 entities are in groups 0-2, the rest in none. */
        am_resolve_facts facts = {0, false, false, 0, 0};
        facts.group = i / 2 < 30000 ? (uint8_t)((i / 2) % 3) : AM_RESOLVE_GROUP_NONE;
        assert_int_equal(am_resolver_add(r, &k, 1, &facts, &err), AM_OK);
    }
    assert_int_equal(am_resolver_key_count(r), n / 2);
    assert_int_equal(am_resolver_finish(&entity_of, &count, r, &err), AM_OK);
    assert_int_equal(count, n / 2);
    for (i = 0; i < n; i += 2) {
        assert_int_equal(entity_of[i], entity_of[i + 1]);
        assert_true(entity_of[i] < count);
        /* Ids come group by group: 10000 entities in each of groups 0, 1, 2, then the rest. */
        if (i / 2 < 30000) {
            assert_int_equal(entity_of[i] / 10000, (i / 2) % 3);
        } else {
            assert_true(entity_of[i] >= 30000);
        }
    }
    free(entity_of);
    am_resolver_free(r);
}

/* A record for the rule tests: keys as "kind:text", a city and whether it is a person. */
typedef struct rule_rec {
    const char *keys[4];
    const char *city;
    bool person;
} rule_rec;

static am_key_kind kind_of(const char *text)
{
    if (strncmp(text, "tax:", 4) == 0) {
        return AM_KEY_TAX;
    }
    return strncmp(text, "domain:", 7) == 0 ? AM_KEY_DOMAIN : AM_KEY_NAME;
}

/* Entity of each record; the same whatever the order, which each call also checks. */
static void resolve_rules(uint32_t *entity, const rule_rec *recs, size_t n)
{
    size_t order[16], round, i, k;
    uint32_t first[16];

    assert_true(n <= 16);
    for (round = 0; round < 3; round++) {
        am_resolver *r = NULL;
        am_error err = {0};
        uint32_t *entity_of = NULL, count = 0;

        for (i = 0; i < n; i++) {
            order[i] = round == 1 ? n - 1 - i : (round == 2 ? (i * 7 + 3) % n : i);
        }
        if (round == 2) {
            /* (i * 7 + 3) % n is a permutation only when n and 7 are coprime */
            bool used[16] = {false};
            for (i = 0; i < n; i++) {
                used[order[i]] = true;
            }
            for (i = 0; i < n; i++) {
                if (!used[i]) {
                    for (i = 0; i < n; i++) {
                        order[i] = (i + 1) % n;
                    }
                    break;
                }
            }
        }
        assert_int_equal(am_resolver_new(&r, &err), AM_OK);
        for (i = 0; i < n; i++) {
            const rule_rec *rr = &recs[order[i]];
            am_key keys[4];
            size_t nk = 0;
            am_resolve_facts facts = {AM_RESOLVE_GROUP_NONE, rr->person, false, 0, 0};
            for (k = 0; k < 4 && rr->keys[k]; k++) {
                am_key_from_text(&keys[nk], kind_of(rr->keys[k]), rr->keys[k],
                                 strlen(rr->keys[k]));
                keys[nk].scheme = keys[nk].kind == AM_KEY_TAX ? AM_TAX_RU_INN : 0;
                nk++;
            }
            if (rr->city) {
                facts.city = (uint32_t)strlen(rr->city) * 2654435761u | 1u;
            }
            assert_int_equal(am_resolver_add(r, keys, nk, &facts, &err), AM_OK);
        }
        assert_int_equal(am_resolver_finish(&entity_of, &count, r, &err), AM_OK);
        for (i = 0; i < n; i++) {
            entity[order[i]] = entity_of[i];
        }
        free(entity_of);
        am_resolver_free(r);
        if (round == 0) {
            memcpy(first, entity, n * sizeof(*entity));
        } else {
            assert_memory_equal(first, entity, n * sizeof(*entity));
        }
    }
}

static void test_resolve__different_tax_ids_never_chain(void **state)
{
    (void)state;
    /* A and B share a website but not their INN; C has only the website; D shares B's INN. */
    const rule_rec recs[] = {
        {{"tax:RU1", "domain:group.ru", NULL}, NULL, false},
        {{"tax:RU2", "domain:group.ru", NULL}, NULL, false},
        {{"domain:group.ru", NULL}, NULL, false},
        {{"tax:RU2", "name:beta|RU", NULL}, NULL, false},
        {{"name:beta|RU", NULL}, NULL, false},
    };
    uint32_t e[5];

    resolve_rules(e, recs, 5);
    assert_int_not_equal(e[0], e[1]); /* a group's website joins no one */
    assert_int_not_equal(e[2], e[0]);
    assert_int_not_equal(e[2], e[1]);
    assert_int_equal(e[1], e[3]);     /* the same INN does */
    assert_int_equal(e[3], e[4]);     /* and a name with nothing against it */
}

static void test_resolve__names_need_one_city_and_no_two_websites(void **state)
{
    (void)state;
    const rule_rec recs[] = {
        {{"name:romashka|RU", NULL}, "moskva", false},  /* 0 */
        {{"name:romashka|RU", NULL}, "moskva", false},  /* 1: same city: joined */
        {{"name:romashka|RU", NULL}, "kazan", false},   /* 2: another city: apart */
        {{"name:romashka|RU", NULL}, NULL, false},      /* 3: no city, two cities: ambiguous */
        {{"name:vector|RU", "domain:vector.ru", NULL}, NULL, false},     /* 4 */
        {{"name:vector|RU", "domain:vector-spb.ru", NULL}, NULL, false}, /* 5: two websites */
        {{"name:vector|RU", NULL}, NULL, false},        /* 6: joins neither: ambiguous */
        {{"name:petrova|RU", NULL}, NULL, true},        /* 7: a person */
        {{"name:petrova|RU", NULL}, NULL, false},       /* 8 */
        {{"name:solo|RU", NULL}, "omsk", false},        /* 9 */
        {{"name:solo|RU", NULL}, NULL, false},          /* 10: one city only: joined */
        {{"tax:RU5", "name:gamma|RU", NULL}, NULL, false}, /* 11 */
        {{"tax:RU6", "name:gamma|RU", NULL}, NULL, false}, /* 12: INNs differ: apart */
    };
    uint32_t e[13];

    resolve_rules(e, recs, 13);
    assert_int_equal(e[0], e[1]);
    assert_int_not_equal(e[0], e[2]);
    assert_int_not_equal(e[3], e[0]);
    assert_int_not_equal(e[3], e[2]);
    assert_int_not_equal(e[4], e[5]);
    assert_int_not_equal(e[6], e[4]);
    assert_int_not_equal(e[6], e[5]);
    assert_int_not_equal(e[7], e[8]);
    assert_int_equal(e[9], e[10]);
    assert_int_not_equal(e[11], e[12]);
}

/* A record with no country meets a name known in exactly one country, in the same city. */
static void test_resolve__no_country_meets_the_one_country(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t core;
        bool no_country;
    } specs[] = {
        {"name:vandelay|US", 1, false}, /* 0: in New York */
        {"name:vandelay|", 1, true},    /* 1: New York too: joins 0 */
        {"name:atlas|DE", 2, false},    /* 2 */
        {"name:atlas|US", 2, false},    /* 3: another company */
        {"name:atlas|", 2, true},       /* 4: could be either: alone */
        {"name:kestrel|GB", 3, false},  /* 5 */
        {"name:kestrel|", 3, true},     /* 6: no city to agree on: alone */
    };
    uint32_t e[7];
    am_resolver *r = NULL;
    am_error err = {0};
    uint32_t *entity_of = NULL, count = 0;
    size_t i;

    assert_int_equal(am_resolver_new(&r, &err), AM_OK);
    for (i = 0; i < 7; i++) {
        am_key k;
        am_resolve_facts facts = {AM_RESOLVE_GROUP_NONE, false, false, i < 2 ? 77u : 0,
                                  (uint32_t)i};
        am_key_from_text(&k, AM_KEY_NAME, specs[i].text, strlen(specs[i].text));
        k.core = specs[i].core;
        k.no_country = specs[i].no_country;
        assert_int_equal(am_resolver_add(r, &k, 1, &facts, &err), AM_OK);
    }
    assert_int_equal(am_resolver_finish(&entity_of, &count, r, &err), AM_OK);
    memcpy(e, entity_of, sizeof(e));
    assert_int_equal(count, 6);
    assert_int_equal(e[0], e[1]);
    assert_int_not_equal(e[5], e[6]);
    assert_int_not_equal(e[2], e[3]);
    assert_int_not_equal(e[4], e[2]);
    assert_int_not_equal(e[4], e[3]);
    free(entity_of);
    am_resolver_free(r);
}

/*
 * A website that is a page on another company's site (Bitrix24 75, ООО «Ромашка-М», at
 * romashka.ru/moscow/) is kept apart from that company, whose records still link; a page
 * on a company's own site under its own name (Initech's /catalog) links; a language or
 * index.php path is the site itself. Real keys, in three orders: the same entities.
 */
static void test_resolve__page_on_a_site_links_only_the_same_name(void **state)
{
    static const struct {
        const char *name, *site, *tax, *country;
    } recs[] = {
        {"ООО «Ромашка»", "https://romashka.ru", "", "RU"},                   /* 0 Salesforce */
        {"ООО «Ромашка»", "romashka.ru", "", "RU"},                           /* 1 HubSpot */
        {"ООО «Ромашка»", "https://www.romashka.ru/", "7712345671", "RU"},    /* 2 Bitrix24 4 */
        {"ООО «Ромашка»", "", "ИНН 7712345671", "RU"},                        /* 3 amoCRM */
        {"ООО «Ромашка-М»", "https://www.romashka.ru/moscow/", "", "RU"},     /* 4 Bitrix24 75 */
        {"ООО \"Ромашка-М\"", "www.romashka.ru/moscow", "", "RU"},          /* 5 75 elsewhere */
        {"Initech Solutions Ltd", "http://shop.initech-solutions.co.uk/catalog", "", "GB"}, /* 6 */
        {"Initech Solutions Ltd", "initech-solutions.co.uk", "", "GB"},       /* 7 */
        {"Stark Manufacturing Pty Ltd", "https://stark-mfg.com.au/en/", "", "AU"}, /* 8 */
        {"Stark Manufacturing Pty Ltd", "stark-mfg.com.au", "", "AU"},        /* 9 */
        {"ООО \"Вектор\"", "http://www.vector-spb.ru/index.php?route=x", "", "RU"}, /* 10 */
        {"ООО «Вектор»", "vector-spb.ru", "7810123451", "RU"},                /* 11 */
        {"", "https://www.romashka.ru/moscow/", "", "RU"},        /* 12 no name: whose? */
        {"Romashka-M LLC", "https://romashka.ru/moscow", "", "RU"}, /* 13 75 in Latin */
    };
    enum { N = sizeof(recs) / sizeof(recs[0]) };
    am_normalizer *norm = NULL;
    am_key_set *sets = calloc(N, sizeof(*sets));
    am_error err = {0};
    uint32_t e[N], first[N];
    size_t i, round;

    (void)state;
    assert_non_null(sets);
    assert_int_equal(am_normalizer_new(&norm, &err), AM_OK);
    for (i = 0; i < N; i++) {
        char id[8];
        am_record r;
        memset(&r, 0, sizeof(r));
        snprintf(id, sizeof(id), "r%zu", i);
        r.id = id;
        r.name = recs[i].name;
        r.domain = recs[i].site;
        r.tax_id = recs[i].tax;
        r.country = recs[i].country;
        r.city = r.owner = "";
        assert_int_equal(am_keys_from_record(&sets[i], norm, "org", &r, &err), AM_OK);
    }
    for (round = 0; round < 3; round++) {
        am_resolver *r = NULL;
        uint32_t *entity_of = NULL, count = 0;
        size_t order[N];
        for (i = 0; i < N; i++) {
            /* as given, reversed, and 5 apart (5 and 14 are coprime) */
            order[i] = round == 0 ? i : round == 1 ? N - 1 - i : (i * 5 + 3) % N;
        }
        assert_int_equal(am_resolver_new(&r, &err), AM_OK);
        for (i = 0; i < N; i++) {
            const am_key_set *k = &sets[order[i]];
            am_resolve_facts facts = {AM_RESOLVE_GROUP_NONE, k->person, k->page, k->city,
                                      (uint32_t)order[i]};
            assert_int_equal(am_resolver_add(r, k->keys, k->count, &facts, &err), AM_OK);
        }
        assert_int_equal(am_resolver_finish(&entity_of, &count, r, &err), AM_OK);
        for (i = 0; i < N; i++) {
            e[order[i]] = entity_of[i];
        }
        free(entity_of);
        am_resolver_free(r);
        if (round == 0) {
            memcpy(first, e, sizeof(e));
        } else {
            assert_memory_equal(first, e, sizeof(e));
        }
    }
    /* Our Ромашка: site and INN agree in every CRM. */
    assert_int_equal(e[0], e[1]);
    assert_int_equal(e[1], e[2]);
    assert_int_equal(e[2], e[3]);
    /* Ромашка-М: a page on romashka.ru under another name: never our Ромашка. */
    assert_int_not_equal(e[4], e[0]);
    assert_int_equal(e[4], e[5]); /* the same page under the same name is one company */
    assert_int_equal(e[6], e[7]);  /* Initech's /catalog page, its own name */
    assert_int_not_equal(e[6], e[0]);
    assert_int_equal(e[8], e[9]);  /* /en/ is the site */
    assert_int_equal(e[10], e[11]); /* index.php is the site */
    for (i = 0; i < N; i++) {
        if (i != 12) {
            assert_int_not_equal(e[12], e[i]); /* a page with no name links no one */
        }
    }
    assert_int_equal(e[13], e[4]); /* "romashka m" is one of 75's names */
    am_normalizer_free(norm);
    free(sets);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve__links_transitively),
        cmocka_unit_test(test_resolve__same_ids_in_any_order),
        cmocka_unit_test(test_resolve__many_records_grow_the_table),
        cmocka_unit_test(test_resolve__different_tax_ids_never_chain),
        cmocka_unit_test(test_resolve__names_need_one_city_and_no_two_websites),
        cmocka_unit_test(test_resolve__no_country_meets_the_one_country),
        cmocka_unit_test(test_resolve__page_on_a_site_links_only_the_same_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
