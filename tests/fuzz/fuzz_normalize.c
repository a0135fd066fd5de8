/*
 * libFuzzer target for normalize: the input goes, whole, to every normalizer (the tax id
 * with each kind of country). Besides the sanitizers, the checks below abort on any result
 * that breaks normalize.h's promises: AM_OK or AM_EINPUT only, a NUL-terminated value under
 * AM_NORM_MAX in valid UTF-8 and in the shape of its kind, a one-line message, and values that
 * normalize to themselves where that is promised (domain, country, tax id).
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

static bool tax_id_shaped(const char *s, size_t len)
{
    size_t i;

    if (len == 0) {
        return true;
    }
    if ((len != 12 && len != 14) || memcmp(s, "RU", 2) != 0) {
        return false;
    }
    for (i = 2; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
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
    const char *out = tax.value;
    size_t len = tax.len;

    if (check_result("tax_id", rc, out, len, &err)) {
        check(tax_id_shaped(out, len), "tax_id", "RU and 10 or 12 digits");
        if (len) {
            rc = am_normalize_tax_id(&again, norm, out, len, "", &err);
            check(rc == AM_OK && again.len == len && memcmp(again.value, out, len) == 0,
                  "tax_id", "a value normalizes to itself");
            check(again.scheme == tax.scheme && tax.scheme != AM_TAX_NONE, "tax_id",
                  "a value keeps its scheme");
        }
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
    const char *in = (const char *)data;

    run_domain(in, size);
    run_text(am_normalize_name, "name", in, size);
    run_text(am_normalize_city, "city", in, size);
    run_country(in, size);
    run_tax_id(in, size, "");
    run_tax_id(in, size, "RU");
    run_tax_id(in, size, "KZ");
    return 0;
}
