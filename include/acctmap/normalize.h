/*
 * Normalize: turn the free text of a record (website, name, tax id, country,
 * city) into canonical strings that keys are made of.
 */
#ifndef AM_NORMALIZE_H
#define AM_NORMALIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "acctmap/error.h"

/* Longest normalized value; longer input is cut to a valid UTF-8 prefix. */
#define AM_NORM_MAX 256

/*
 * Per-thread state: the public suffix list and scratch buffers. Not
 * thread-safe; make one per thread.
 */
typedef struct am_normalizer am_normalizer;

am_status am_normalizer_new(am_normalizer **out, am_error *err);
void am_normalizer_free(am_normalizer *n);

/*
 * Each function below writes a NUL-terminated value into `out` (`cap` bytes,
 * at least AM_NORM_MAX) and its length into `*len_out`.
 *   - AM_OK with *len_out > 0: a usable value;
 *   - AM_OK with *len_out == 0: nothing to use (empty input, a free-mail
 *     domain, a name that is only a legal form);
 *   - AM_EINPUT: the input is present but unusable; err->msg says why, without
 *     a location (the caller prefixes "file:line: column 'domain': ").
 * The input is `len` bytes at `in`, not necessarily NUL-terminated, and may
 * be any bytes (invalid UTF-8 is AM_EINPUT).
 */

/*
 * Registrable domain, lower case, A-label (punycode) form:
 * "https://www.Acme.com:443/path?x" -> "acme.com"; "user@acme.com" -> "acme.com";
 * "ромашка-плюс.рф" -> "xn----7sba3bhbnncs5exd.xn--p1ai".
 */
am_status am_normalize_domain(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                              const char *in, size_t len, am_error *err);

/*
 * am_normalize_domain, and `*page_out`: whether the website is a page on the
 * site rather than its home, that is its path has a segment other than a
 * language or locale ("en", "ru", "en-us") or a home page ("index.php",
 * "index.html", "default.aspx", "home"): "https://www.romashka.ru/moscow/" is
 * a page on romashka.ru, "https://stark-mfg.com.au/en/" and
 * "https://romashka.ru/index.php?x" are not. The query and fragment never
 * count. Such a site may be another company's (a branch, a dealer or a
 * tenant listed on it): see am_keys_from_record. `page_out` may be NULL.
 */
am_status am_normalize_site(char *out, size_t cap, size_t *len_out, bool *page_out,
                            am_normalizer *n, const char *in, size_t len, am_error *err);

/*
 * Core company name: NFKC, case folded, quotes and punctuation dropped, legal
 * forms removed, spaces collapsed: "ООО «Ромашка»" -> "ромашка", "Acme, Inc." -> "acme".
 */
am_status am_normalize_name(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                            const char *in, size_t len, am_error *err);

/*
 * Tax id schemes. Two valid ids of one scheme that differ are two companies;
 * ids of different schemes never conflict (an INN and an OGRN of one company).
 */
typedef enum am_tax_scheme {
    AM_TAX_NONE = 0,
    AM_TAX_RU_INN,    /* "RU" + 10 digits (company) or 12 (individual entrepreneur) */
    AM_TAX_RU_OGRN,   /* "RU-OGRN" + 13 digits */
    AM_TAX_RU_OGRNIP, /* "RU-OGRNIP" + 15 digits: an individual entrepreneur */
    AM_TAX_KZ_BIN,    /* "KZ-BIN" + 12 digits */
    AM_TAX_BY_UNP,    /* "BY-UNP" + 9 digits */
    AM_TAX_EU_VAT,    /* "VAT-" + country code + number, e.g. "VAT-DE811569869" */
    AM_TAX_DUNS,      /* "DUNS" + 9 digits */
    AM_TAX_FR_SIREN,  /* "FR-SIREN" + 9 digits (a SIRET gives its SIREN: one company) */
    AM_TAX_SCHEME_COUNT
} am_tax_scheme;

/* A normalized tax id. Caller's storage. */
typedef struct am_tax_id {
    char value[AM_NORM_MAX]; /* NUL-terminated, "" when none */
    size_t len;
    am_tax_scheme scheme;
    bool person;        /* the id of an individual (12-digit INN, OGRNIP): never link by name */
    bool zero_restored; /* an INN that lost its leading zero in a spreadsheet, put back */
} am_tax_id;

/*
 * Tax id with its scheme, check digits verified: "7707083893" with country
 * "RU" (or none) -> "RU7707083893", AM_TAX_RU_INN. `country` is an ISO 3166
 * alpha-2 code as am_normalize_country returns it, or "". AM_OK with
 * out->len == 0 when there is nothing to use; AM_EINPUT when the value is
 * present but not a valid id ("fails its INN check digit").
 */
am_status am_normalize_tax_id(am_tax_id *out, am_normalizer *n, const char *in, size_t len,
                              const char *country, am_error *err);

/*
 * The Latin spelling of a core name with Cyrillic letters, as am_normalize_name
 * gives it: "ромашка плюс" -> "romashka plyus" (BGN/PCGN style, as Russian
 * companies commonly spell their names in Latin). AM_OK with *len_out == 0
 * when the core has no Cyrillic letter (it is Latin already) or a letter the
 * table does not know.
 */
am_status am_normalize_name_latin(char *out, size_t cap, size_t *len_out, const char *core,
                                  size_t len, am_error *err);

/*
 * True when the name carries the legal form of an individual entrepreneur,
 * at its start or its end ("ИП Иванов И.И.", "Иванов И.И., ИП",
 * "Индивидуальный предприниматель ..."): a person, whom a name alone never
 * links.
 */
bool am_normalize_name_is_person(am_normalizer *n, const char *in, size_t len);

/* ISO 3166 alpha-2 in upper case from a code or a common name: "ru", "Russia", "Россия" -> "RU". */
am_status am_normalize_country(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                               const char *in, size_t len, am_error *err);

/* City: NFKC, case folded, spaces collapsed, "г." and "city of" style prefixes dropped. */
am_status am_normalize_city(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                            const char *in, size_t len, am_error *err);

#endif
