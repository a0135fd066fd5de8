/* Keys: a record's keys, strongest first, with warnings for unusable values. */
#include <stdlib.h>
#include <string.h>

#include "acctmap.h"
#include "helpers.h"

static am_record record(const char *id, const char *name, const char *domain, const char *tax,
                        const char *country)
{
    am_record r;

    memset(&r, 0, sizeof(r));
    r.id = id;
    r.name = name;
    r.domain = domain;
    r.tax_id = tax;
    r.country = country;
    r.city = r.owner = "";
    r.line = 7;
    return r;
}

static void test_keys__strongest_first_with_text(void **state)
{
    (void)state;
    am_normalizer *n = NULL;
    am_key_set *set = malloc(sizeof(*set));
    am_error err = {0};
    am_record r = record("a1", "ООО «Ромашка»", "https://www.romashka.ru/", "7712345671", "Россия");
    am_key again;

    assert_int_equal(am_normalizer_new(&n, &err), AM_OK);
    assert_int_equal(am_keys_from_record(set, n, "acme", &r, &err), AM_OK);
    assert_int_equal(set->count, 4);
    assert_int_equal(set->warning_count, 0);
    assert_string_equal(set->text[0], "tax:RU7712345671");
    assert_string_equal(set->text[1], "domain:romashka.ru");
    assert_string_equal(set->text[2], "name:ромашка|RU");
    assert_string_equal(set->text[3], "name:romashka|RU"); /* its Latin spelling */
    assert_int_equal(set->keys[3].kind, AM_KEY_NAME);
    assert_int_equal(set->keys[0].kind, AM_KEY_TAX);
    assert_int_equal(set->keys[2].kind, AM_KEY_NAME);
    assert_false(set->page); /* the site's home */
    am_key_from_text(&again, AM_KEY_DOMAIN, "domain:romashka.ru", 18);
    assert_int_equal(am_key_compare(&again, &set->keys[1]), 0);
    am_normalizer_free(n);
    free(set);
}

/*
 * A website that is a page on a site ("romashka.ru/moscow/") may be another
 * company's: the record is marked, its domain key is the site's, and the
 * explanation of two records kept apart on it names the two names.
 */
static void test_keys__page_on_a_site_is_marked_and_explained(void **state)
{
    (void)state;
    am_normalizer *n = NULL;
    am_key_set *m = malloc(sizeof(*m)), *home = malloc(sizeof(*home));
    am_key_set *shop = malloc(sizeof(*shop)), *ini = malloc(sizeof(*ini));
    am_key_set *lang = malloc(sizeof(*lang)), *nameless = malloc(sizeof(*nameless));
    am_error err = {0};
    am_record rm = record("75", "ООО «Ромашка-М»", "https://www.romashka.ru/moscow/", "", "RU");
    am_record rh = record("4", "ООО «Ромашка»", "https://www.romashka.ru/", "7712345671", "RU");
    am_record rs = record("s1", "Initech Solutions Ltd",
                          "http://shop.initech-solutions.co.uk/catalog", "", "GB");
    am_record ri = record("h1", "Initech Solutions Ltd", "initech-solutions.co.uk", "", "GB");
    am_record rl = record("st", "Stark Manufacturing Pty Ltd", "https://stark-mfg.com.au/en/", "",
                          "AU");
    am_record rn = record("x", "", "https://www.romashka.ru/moscow/", "", "RU");
    char why[400];
    int shared = 0;

    assert_non_null(m);
    assert_non_null(home);
    assert_non_null(shop);
    assert_non_null(ini);
    assert_non_null(lang);
    assert_non_null(nameless);
    assert_int_equal(am_normalizer_new(&n, &err), AM_OK);
    assert_int_equal(am_keys_from_record(m, n, "b24", &rm, &err), AM_OK);
    assert_int_equal(am_keys_from_record(home, n, "b24", &rh, &err), AM_OK);
    assert_int_equal(am_keys_from_record(shop, n, "sf", &rs, &err), AM_OK);
    assert_int_equal(am_keys_from_record(ini, n, "hs", &ri, &err), AM_OK);
    assert_int_equal(am_keys_from_record(lang, n, "sf", &rl, &err), AM_OK);
    assert_int_equal(am_keys_from_record(nameless, n, "b24", &rn, &err), AM_OK);

    /* Ромашка-М: a page on romashka.ru; the key is the site's, the rule the resolver's. */
    assert_true(m->page);
    assert_false(home->page);
    assert_int_equal(m->count, 3);
    assert_string_equal(m->text[0], "domain:romashka.ru");
    assert_string_equal(m->text[1], "name:ромашка м|RU");
    assert_int_equal(m->warning_count, 0);
    assert_string_equal(am_keys_matched_by(&shared, m, home), "domain");
    /* Kept apart on it: the explanation says why, either way round. */
    am_keys_conflict(why, sizeof(why), m, home, shared);
    assert_string_equal(why, "one website is a page on romashka.ru, a site that may be another "
                             "company's, which links only records of the same name, and the "
                             "names differ (ромашка м, ромашка)");
    assert_string_equal(am_keys_matched_by(&shared, home, m), "domain");
    am_keys_conflict(why, sizeof(why), home, m, shared);
    assert_string_equal(why, "one website is a page on romashka.ru, a site that may be another "
                             "company's, which links only records of the same name, and the "
                             "names differ (ромашка, ромашка м)");

    /* Initech's /catalog page under Initech's own name: nothing against the domain. */
    assert_true(shop->page);
    assert_false(ini->page);
    assert_string_equal(am_keys_matched_by(&shared, shop, ini), "domain");
    assert_string_equal(shop->text[shared], "domain:initech-solutions.co.uk");
    am_keys_conflict(why, sizeof(why), shop, ini, shared);
    assert_string_equal(why, "");

    /* A language path is the site itself. */
    assert_false(lang->page);
    assert_string_equal(lang->text[0], "domain:stark-mfg.com.au");

    /* A page and no name to tell whose: a warning that it links by the site to no one. */
    assert_true(nameless->page);
    assert_int_equal(nameless->warning_count, 1);
    assert_string_equal(nameless->warnings[0],
                        "column 'domain': a page on romashka.ru, maybe another company's site, "
                        "and no name to tell whose; it links no record by the site");
    am_normalizer_free(n);
    free(m);
    free(home);
    free(shop);
    free(ini);
    free(lang);
    free(nameless);
}

static void test_keys__bad_values_warn_and_record_key_when_none(void **state)
{
    (void)state;
    am_normalizer *n = NULL;
    am_key_set *set = malloc(sizeof(*set));
    am_error err = {0};
    am_record r = record("x9", "", "acme..com", "7707083894", "RU");
    am_record other = record("x9", "", "", "", "");

    assert_int_equal(am_normalizer_new(&n, &err), AM_OK);
    assert_int_equal(am_keys_from_record(set, n, "beta", &r, &err), AM_OK);
    assert_int_equal(set->warning_count, 2);
    assert_non_null(strstr(set->warnings[0], "column 'tax_id': "));
    assert_non_null(strstr(set->warnings[0], "7707083894"));
    assert_non_null(strstr(set->warnings[1], "column 'domain': "));
    /* No key left: the record is its own entity, keyed by org and id. */
    assert_int_equal(set->count, 1);
    assert_int_equal(set->keys[0].kind, AM_KEY_RECORD);
    assert_string_equal(set->text[0], "record:beta\x1fx9");

    /* The same id in another org is another entity. */
    am_key first = set->keys[0];
    assert_int_equal(am_keys_from_record(set, n, "gamma", &other, &err), AM_OK);
    assert_int_not_equal(am_key_compare(&first, &set->keys[0]), 0);
    am_normalizer_free(n);
    free(set);
}

static void test_keys__free_mail_is_no_key(void **state)
{
    (void)state;
    am_normalizer *n = NULL;
    am_key_set *set = malloc(sizeof(*set));
    am_error err = {0};
    am_record r = record("p1", "ИП Петрова А.С.", "petrova.atelier@gmail.com", "", "RU");

    assert_int_equal(am_normalizer_new(&n, &err), AM_OK);
    assert_int_equal(am_keys_from_record(set, n, "acme", &r, &err), AM_OK);
    assert_int_equal(set->warning_count, 0);
    assert_int_equal(set->count, 2); /* the name, and its Latin spelling */
    assert_int_equal(set->keys[0].kind, AM_KEY_NAME);
    assert_string_equal(set->text[1], "name:petrova a s|RU");
    am_normalizer_free(n);
    free(set);
}

static void test_keys__lost_zero_restored_with_a_warning(void **state)
{
    (void)state;
    am_normalizer *n = NULL;
    am_key_set *set = malloc(sizeof(*set));
    am_error err = {0};
    am_record r = record("z1", "ООО «Уфа-Сервис»", "", "274062111", "RU");

    assert_int_equal(am_normalizer_new(&n, &err), AM_OK);
    assert_int_equal(am_keys_from_record(set, n, "acme", &r, &err), AM_OK);
    assert_string_equal(set->text[0], "tax:RU0274062111");
    assert_int_equal(set->warning_count, 1);
    assert_non_null(strstr(set->warnings[0], "\"274062111\" lost its leading zero"));
    am_normalizer_free(n);
    free(set);
}

/* VAT numbers conflict within their country only; INN and OGRN never conflict. */
static void test_keys__conflict_classes(void **state)
{
    (void)state;
    am_normalizer *n = NULL;
    am_key_set *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    am_error err = {0};
    am_record de = record("d", "Acme", "", "DE136695976", "DE");
    am_record at = record("a", "Acme", "", "ATU13585627", "AT");
    am_record inn = record("i", "Сбер", "", "7707083893", "RU");
    am_record ogrn = record("o", "Сбер", "", "1027700132195", "RU");

    assert_int_equal(am_normalizer_new(&n, &err), AM_OK);
    assert_int_equal(am_keys_from_record(a, n, "x", &de, &err), AM_OK);
    assert_int_equal(am_keys_from_record(b, n, "x", &at, &err), AM_OK);
    assert_int_equal(a->keys[0].kind, AM_KEY_TAX);
    assert_int_equal(b->keys[0].kind, AM_KEY_TAX);
    assert_int_not_equal(a->keys[0].scheme, b->keys[0].scheme);
    assert_int_equal(am_keys_from_record(a, n, "x", &inn, &err), AM_OK);
    assert_int_equal(am_keys_from_record(b, n, "x", &ogrn, &err), AM_OK);
    assert_int_equal(a->keys[0].scheme, AM_TAX_RU_INN);
    assert_int_equal(b->keys[0].scheme, AM_TAX_RU_OGRN);
    am_normalizer_free(n);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys__strongest_first_with_text),
        cmocka_unit_test(test_keys__page_on_a_site_is_marked_and_explained),
        cmocka_unit_test(test_keys__bad_values_warn_and_record_key_when_none),
        cmocka_unit_test(test_keys__free_mail_is_no_key),
        cmocka_unit_test(test_keys__lost_zero_restored_with_a_warning),
        cmocka_unit_test(test_keys__conflict_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
