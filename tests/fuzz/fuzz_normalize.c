/*
 * libFuzzer target for normalize: the input goes, whole, to every normalizer (the tax id
 * with each kind of country, and the person test). Besides the sanitizers, the checks below abort
 * on any result that breaks normalize.h's promises: AM_OK or AM_EINPUT only, a NUL-terminated value
 * under AM_NORM_MAX in valid UTF-8 and in the shape of its kind, a one-line message, and values
 * that normalize to themselves where that is promised (domain, country, tax id).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "acctmap/normalize.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef am_status (*normalize_fn)(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                                  const char *in, size_t len, am_error *err);

static am_normalizer *norm;

static void check(bool ok, const char *fn, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_normalize: %s: broken promise: %s\n", fn, what);
        abort();
    }
}

static bool valid_utf8(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0) {
            return false;
        }
        i += (size_t)n;
    }
    return true;
}

/* Words separated by single spaces, none at either end. */
static bool collapsed(const char *s, size_t len)
{
    return len == 0 || (s[0] != ' ' && s[len - 1] != ' ' && !strstr(s, "  "));
}

static bool domain_shaped(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '.')) {
            return false;
        }
    }
    return len == 0 || (memchr(s, '.', len) && s[0] != '.' && s[len - 1] != '.');
}

static bool country_shaped(const char *s, size_t len)
{
    return len == 0 || (len == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z');
}

/* The prefix of each scheme's values, as normalize.h documents them. */
static const char *const tax_prefixes[AM_TAX_SCHEME_COUNT] = {
    [AM_TAX_RU_INN] = "RU",     [AM_TAX_RU_OGRN] = "RU-OGRN",   [AM_TAX_RU_OGRNIP] = "RU-OGRNIP",
    [AM_TAX_KZ_BIN] = "KZ-BIN", [AM_TAX_BY_UNP] = "BY-UNP",     [AM_TAX_EU_VAT] = "VAT-",
    [AM_TAX_DUNS] = "DUNS",     [AM_TAX_FR_SIREN] = "FR-SIREN",
};

/* A value in the shape of its scheme: its prefix, then digits (VAT: capitals and digits). */
static bool tax_id_shaped(const am_tax_id *t)
{
    static const size_t digits[AM_TAX_SCHEME_COUNT] = {
        [AM_TAX_RU_OGRN] = 13, [AM_TAX_RU_OGRNIP] = 15, [AM_TAX_KZ_BIN] = 12,
        [AM_TAX_BY_UNP] = 9,   [AM_TAX_DUNS] = 9,       [AM_TAX_FR_SIREN] = 9,
    };
    const char *prefix;
    size_t plen, i;

    if (t->len == 0) {
        return t->scheme == AM_TAX_NONE && !t->person && !t->zero_restored;
    }
    if (t->scheme <= AM_TAX_NONE || t->scheme >= AM_TAX_SCHEME_COUNT) {
        return false;
    }
    prefix = tax_prefixes[t->scheme];
    plen = strlen(prefix);
    if (t->len <= plen || memcmp(t->value, prefix, plen) != 0) {
        return false;
    }
    if (t->zero_restored && (t->scheme != AM_TAX_RU_INN || t->value[2] != '0')) {
        return false;
    }
    if (t->scheme == AM_TAX_RU_INN) {
        if ((t->len != 12 && t->len != 14) || t->person != (t->len == 14)) {
            return false;
        }
    } else if (digits[t->scheme] && t->len != plen + digits[t->scheme]) {
        return false;
    }
    /* An OGRNIP is a person's; an OGRN, UNP, DUNS or SIREN a company's. */
    if (t->person != (t->scheme == AM_TAX_RU_OGRNIP) && t->scheme != AM_TAX_RU_INN &&
        t->scheme != AM_TAX_KZ_BIN && t->scheme != AM_TAX_EU_VAT) {
        return false;
    }
    for (i = plen; i < t->len; i++) {
        char c = t->value[i];
        bool ok = (c >= '0' && c <= '9') || (t->scheme == AM_TAX_EU_VAT && c >= 'A' && c <= 'Z');
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* Checks every result must pass; returns whether it was AM_OK. */
static bool check_result(const char *fn, am_status rc, const char *out, size_t len,
                         const am_error *err)
{
    check(rc == AM_OK || rc == AM_EINPUT, fn, "status is AM_OK or AM_EINPUT");
    if (rc != AM_OK) {
        check(err->status == rc, fn, "err->status is the status returned");
        check(err->msg[0] != '\0', fn, "a message");
        check(!strchr(err->msg, '\n') && !strchr(err->msg, '\r'), fn, "a one-line message");
        check(valid_utf8(err->msg, strlen(err->msg)), fn, "a message in valid UTF-8");
        return false;
    }
    check(len < AM_NORM_MAX, fn, "length under AM_NORM_MAX");
    check(out[len] == '\0' && strlen(out) == len, fn, "NUL-terminated at its length");
    check(valid_utf8(out, len), fn, "value in valid UTF-8");
    return true;
}

static void run_text(normalize_fn fn, const char *name, const char *in, size_t size)
{
    char out[AM_NORM_MAX];
    size_t len = 0;
    am_error err = {AM_OK, ""};
    am_status rc = fn(out, sizeof(out), &len, norm, in, size, &err);

    if (check_result(name, rc, out, len, &err)) {
        check(collapsed(out, len), name, "words separated by single spaces");
    }
}

/* A name's Latin spelling, from any core and from the normalized name: ASCII only. */
static void run_latin(const char *in, size_t size)
{
    char name[AM_NORM_MAX], latin[AM_NORM_MAX];
    size_t name_len = 0, latin_len = 0, i;
    am_error err = {AM_OK, ""};

    check(am_normalize_name_latin(latin, sizeof(latin), &latin_len, in, size, &err) == AM_OK,
          "name_latin", "AM_OK on any bytes");
    if (am_normalize_name(name, sizeof(name), &name_len, norm, in, size, &err) != AM_OK) {
        return;
    }
    check(am_normalize_name_latin(latin, sizeof(latin), &latin_len, name, name_len, &err) ==
              AM_OK,
          "name_latin", "AM_OK on a normalized name");
    for (i = 0; i < latin_len; i++) {
        check((unsigned char)latin[i] < 0x80, "name_latin", "ASCII only");
    }
    check(latin_len < sizeof(latin) && (latin_len == 0 || latin[latin_len] == '\0'),
          "name_latin", "NUL-terminated within the buffer");
}

/* A value normalizes to itself: `fn(out)` is AM_OK and gives `out` again. */
static void check_fixed_point(normalize_fn fn, const char *name, const char *out, size_t len)
{
    char again[AM_NORM_MAX];
    size_t again_len = 0;
    am_error err = {AM_OK, ""};

    check(fn(again, sizeof(again), &again_len, norm, out, len, &err) == AM_OK, name,
          "a value normalizes again");
    check(again_len == len && memcmp(again, out, len) == 0, name, "a value normalizes to itself");
}

static void run_domain(const char *in, size_t size)
{
    char out[AM_NORM_MAX];
    size_t len = 0;
    am_error err = {AM_OK, ""};
    am_status rc = am_normalize_domain(out, sizeof(out), &len, norm, in, size, &err);

    if (check_result("domain", rc, out, len, &err)) {
        check(domain_shaped(out, len), "domain", "lower-case LDH labels");
        if (len) {
            check_fixed_point(am_normalize_domain, "domain", out, len);
        }
    }
    {
        /* The same domain with the page flag; a normalized domain has no path, so no page. */
        char site[AM_NORM_MAX];
        size_t site_len = 0;
        bool page = false;
        am_error site_err = {AM_OK, ""};
        check(am_normalize_site(site, sizeof(site), &site_len, &page, norm, in, size,
                                &site_err) == rc &&
                  site_len == len && memcmp(site, out, len) == 0,
              "domain", "am_normalize_site gives the domain of am_normalize_domain");
        check(!page || len > 0, "domain", "a page only with a domain");
        if (rc == AM_OK && len) {
            page = true;
            check(am_normalize_site(site, sizeof(site), &site_len, &page, norm, out, len,
                                    &site_err) == AM_OK && !page,
                  "domain", "a normalized domain is no page");
        }
    }
}

static void run_country(const char *in, size_t size)
{
    char out[AM_NORM_MAX];
    size_t len = 0;
    am_error err = {AM_OK, ""};
    am_status rc = am_normalize_country(out, sizeof(out), &len, norm, in, size, &err);

    if (check_result("country", rc, out, len, &err)) {
        check(country_shaped(out, len), "country", "two upper-case letters");
        if (len) {
            check_fixed_point(am_normalize_country, "country", out, len);
        }
    }
}

static void run_tax_id(const char *in, size_t size, const char *country)
{
    am_tax_id tax, again;
    am_error err = {AM_OK, ""};
    am_status rc = am_normalize_tax_id(&tax, norm, in, size, country, &err);

    if (!check_result("tax_id", rc, tax.value, tax.len, &err)) {
        check(tax.len == 0 && tax.value[0] == '\0' && tax.scheme == AM_TAX_NONE, "tax_id",
              "no value beside an error");
        return;
    }
    check(tax.len == strlen(tax.value), "tax_id", "len is the value's length");
    check(tax_id_shaped(&tax), "tax_id", "a value in the shape of its scheme");
    if (tax.len) {
        rc = am_normalize_tax_id(&again, norm, tax.value, tax.len, "", &err);
        check(rc == AM_OK && again.len == tax.len && memcmp(again.value, tax.value, tax.len) == 0,
              "tax_id", "a value normalizes to itself");
        check(again.scheme == tax.scheme && again.person == tax.person && !again.zero_restored,
              "tax_id", "a value keeps its scheme and person flag");
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    am_error err = {AM_OK, ""};

    (void)argc;
    (void)argv;
    if (am_normalizer_new(&norm, &err) != AM_OK) {
        fprintf(stderr, "fuzz_normalize: %s\n", err.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Every route of am_normalize_tax_id: no country, the CIS, France, a checked and an
     * unchecked EU VAT country, a DUNS country, and one with no scheme. */
    static const char *const countries[] = {"",   "RU", "KZ", "BY", "FR", "DE",
                                            "ES", "NL", "SE", "US", "CN"};
    const char *in = (const char *)data;

    run_domain(in, size);
    run_text(am_normalize_name, "name", in, size);
    run_latin(in, size);
    run_text(am_normalize_city, "city", in, size);
    run_country(in, size);
    for (size_t i = 0; i < sizeof(countries) / sizeof(countries[0]); i++) {
        run_tax_id(in, size, countries[i]);
    }
    (void)am_normalize_name_is_person(norm, in, size);
    return 0;
}
