/*
 * Keys: the match keys of a record (`tax:RU7707083893`, `domain:acme.com`,
 * `name:acme|us`), hashed with XXH3-128 for the resolver.
 */
#ifndef AM_KEYS_H
#define AM_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acctmap/error.h"
#include "acctmap/normalize.h"
#include "acctmap/record.h"

/* Strongest first: when two records share several keys, the lowest kind explains the match. */
typedef enum am_key_kind {
    AM_KEY_TAX = 0,
    AM_KEY_DOMAIN,
    AM_KEY_NAME,
    AM_KEY_RECORD /* identity of a record with no other key: matches nothing else */
} am_key_kind;

typedef struct am_key {
    uint64_t lo;
    uint64_t hi;
    am_key_kind kind;
    uint8_t scheme;     /* tax keys: their conflict class (the am_tax_scheme, or for EU VAT
                           numbers one per country); two ids of one class conflict */
    bool no_country;    /* name keys: the record gave no country */
    uint64_t core;      /* name keys: hash of the name without the country */
} am_key;

#define AM_KEYS_MAX 6
#define AM_KEY_TEXT_MAX (AM_NORM_MAX + 16)
#define AM_KEY_WARNINGS_MAX 4

/* The keys of one record, with their text and what could not be used. Caller's storage. */
typedef struct am_key_set {
    am_key keys[AM_KEYS_MAX];
    char text[AM_KEYS_MAX][AM_KEY_TEXT_MAX]; /* "domain:acme.com" */
    size_t count;
    /* "column 'tax_id': ... fails its check digit; the record matches on its other keys" */
    char warnings[AM_KEY_WARNINGS_MAX][224];
    size_t warning_count;
    uint32_t city;               /* hash of the normalized city, 0 when none */
    char city_text[AM_NORM_MAX]; /* the normalized city, "" when none */
    bool person;                 /* an individual entrepreneur: never linked by name alone */
    bool page;                   /* the website is a page on its site ("romashka.ru/moscow/"),
                                    maybe another company's: see am_resolve_facts.page */
} am_key_set;

/* "tax", "domain", "name", "record". */
const char *am_key_kind_name(am_key_kind kind);

/* Hash the key text ("domain:acme.com") of the given kind. */
void am_key_from_text(am_key *out, am_key_kind kind, const char *text, size_t len);

/*
 * All keys of `rec`, strongest first. A value that cannot become a key is a
 * warning in `out`, not an error: the record still matches on its other keys.
 * A record with no key at all gets one AM_KEY_RECORD key made of `org_id`
 * and its id, so it stays its own entity. Fails only on AM_ENOMEM/AM_EINTERNAL.
 * When the website is a page on its site ("https://www.romashka.ru/moscow/",
 * see am_normalize_site) `out->page` says so: the domain key is the site's,
 * and the resolver links it only to records of the same name.
 */
am_status am_keys_from_record(am_key_set *out, am_normalizer *n, const char *org_id,
                              const am_record *rec, am_error *err);

/*
 * How two records of one entity are linked directly: "tax", "domain",
 * "name+city" (a name, and both records name the same city), "name", or
 * "chain" when they share no key and are linked through other records.
 * `*key_out` is the index in `a` of the key they share, or -1.
 */
const char *am_keys_matched_by(int *key_out, const am_key_set *a, const am_key_set *b);

/*
 * Why the resolver keeps `a` and `b` apart although they share `shared` (an
 * index in `a`), from what the two records hold themselves: "their tax ids
 * differ (RU7712345671, RU7810123451)", "the records name different cities
 * (moskva, kazan)", "one website is a page on romashka.ru, ... and the names
 * differ (ромашка м, ромашка)", ... Writes "" when nothing in the two records
 * explains it (then other records sharing the key conflict).
 */
void am_keys_conflict(char *out, size_t cap, const am_key_set *a, const am_key_set *b,
                      int shared);

/* 0 when equal; orders keys by (hi, lo, kind). */
int am_key_compare(const am_key *a, const am_key *b);

#endif
