/*
 * Normalize: turn the free text of a record (website, name, tax id, country,
 * city) into canonical strings that keys are made of.
 */
#ifndef AM_NORMALIZE_H
#define AM_NORMALIZE_H

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
 * Core company name: NFKC, case folded, quotes and punctuation dropped, legal
 * forms removed, spaces collapsed: "ООО «Ромашка»" -> "ромашка", "Acme, Inc." -> "acme".
 */
am_status am_normalize_name(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                            const char *in, size_t len, am_error *err);

/*
 * Tax id with its country prefix, check digits verified: "7707083893" with
 * country "RU" (or none) -> "RU7707083893". `country` is an ISO 3166 alpha-2
 * code as am_normalize_country returns it, or "".
 */
am_status am_normalize_tax_id(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                              const char *in, size_t len, const char *country, am_error *err);

/* ISO 3166 alpha-2 in upper case from a code or a common name: "ru", "Russia", "Россия" -> "RU". */
am_status am_normalize_country(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                               const char *in, size_t len, am_error *err);

/* City: NFKC, case folded, spaces collapsed, "г." and "city of" style prefixes dropped. */
am_status am_normalize_city(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                            const char *in, size_t len, am_error *err);

#endif
