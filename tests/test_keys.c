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
    am_key_from_text(&again, AM_KEY_DOMAIN, "domain:romashka.ru", 18);
    assert_int_equal(am_key_compare(&again, &set->keys[1]), 0);
    am_normalizer_free(n);
    free(set);
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
        cmocka_unit_test(test_keys__bad_values_warn_and_record_key_when_none),
        cmocka_unit_test(test_keys__free_mail_is_no_key),
        cmocka_unit_test(test_keys__lost_zero_restored_with_a_warning),
        cmocka_unit_test(test_keys__conflict_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
