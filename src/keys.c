/*
 * Keys: a record's normalized values become match keys, strongest first, each
 * hashed with XXH3-128 (64 bits collide at CRM-network scale). Sits between
 * normalize and resolve.
 */
#include "acctmap/keys.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

static const char *const kind_names[] = {"tax", "domain", "name", "record"};

const char *am_key_kind_name(am_key_kind kind)
{
    return (unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[kind] : "?";
}

void am_key_from_text(am_key *out, am_key_kind kind, const char *text, size_t len)
{
    XXH128_hash_t h = XXH3_128bits(text, len);

    out->lo = h.low64;
    out->hi = h.high64;
    out->kind = kind;
    out->scheme = 0;
    out->no_country = false;
    out->core = 0;
}

int am_key_compare(const am_key *a, const am_key *b)
{
    if (a->hi != b->hi) {
        return a->hi < b->hi ? -1 : 1;
    }
    if (a->lo != b->lo) {
        return a->lo < b->lo ? -1 : 1;
    }
    return (int)a->kind - (int)b->kind;
}

static void add_warning(am_key_set *set, const char *column, const am_error *why)
{
    if (set->warning_count < AM_KEY_WARNINGS_MAX) {
        snprintf(set->warnings[set->warning_count++], sizeof(set->warnings[0]),
                 "column '%s': %.120s; the record matches on its other keys", column, why->msg);
    }
}

/* Append "prefix" + value (+ "|" + suffix) as key text and hash it; no printf on this hot path. */
static void add_key(am_key_set *set, am_key_kind kind, const char *prefix, const char *value,
                    size_t len, const char *suffix, size_t suffix_len)
{
    char *text = set->text[set->count];
    size_t plen = strlen(prefix);
    size_t total = plen + len + (suffix ? 1 + suffix_len : 0);

    if (total >= AM_KEY_TEXT_MAX) {
        return; /* cannot happen: values are capped at AM_NORM_MAX */
    }
    memcpy(text, prefix, plen);
    memcpy(text + plen, value, len);
    if (suffix) {
        text[plen + len] = '|';
        memcpy(text + plen + len + 1, suffix, suffix_len);
    }
    text[total] = '\0';
    am_key_from_text(&set->keys[set->count], kind, text, total);
    set->count++;
}

/*
 * Which tax ids conflict: two different ids of one class are two companies.
 * A class is the scheme, except that a company may hold a VAT number in each
 * EU country: VAT numbers conflict only within their country.
 */
static uint8_t conflict_class(const am_tax_id *tax)
{
    static const char eu[] = "ATBEBGCYCZDEDKEEELESFIFRHRHUIEITLTLULVMTNLPLPTROSESISKXI";
    size_t i;

    if (tax->scheme != AM_TAX_EU_VAT || tax->len < 6) {
        return (uint8_t)tax->scheme;
    }
    for (i = 0; i + 1 < sizeof(eu); i += 2) {
        if (tax->value[4] == eu[i] && tax->value[5] == eu[i + 1]) {
            return (uint8_t)(AM_TAX_SCHEME_COUNT + i / 2);
        }
    }
    return (uint8_t)tax->scheme;
}

am_status am_keys_from_record(am_key_set *out, am_normalizer *n, const char *org_id,
                              const am_record *rec, am_error *err)
{
    char country[AM_NORM_MAX], value[AM_NORM_MAX], joined[AM_NORM_MAX], latin[AM_NORM_MAX * 2];
    char site[AM_NORM_MAX];
    size_t latin_len = 0, site_len = 0;
    am_tax_id tax;
    size_t country_len = 0, len = 0;
    am_error why = {AM_OK, ""};
    am_status rc;

    out->count = 0;
    out->warning_count = 0;
    out->city = 0;
    out->city_text[0] = '\0';
    out->page = false;
    out->person = am_normalize_name_is_person(n, rec->name, strlen(rec->name));

    rc = am_normalize_country(country, sizeof(country), &country_len, n, rec->country,
                              strlen(rec->country), &why);
    if (rc == AM_EINPUT) {
        add_warning(out, "country", &why);
        country_len = 0;
        country[0] = '\0';
    } else if (rc) {
        return am_error_set(err, rc, "%s", why.msg);
    }

    rc = am_normalize_tax_id(&tax, n, rec->tax_id, strlen(rec->tax_id), country, &why);
    if (rc == AM_EINPUT) {
        add_warning(out, "tax_id", &why);
    } else if (rc) {
        return am_error_set(err, rc, "%s", why.msg);
    } else if (tax.len) {
        if (tax.zero_restored && out->warning_count < AM_KEY_WARNINGS_MAX) {
            /* Still a key: the warning only says the value was read with its zero put back. */
            snprintf(out->warnings[out->warning_count++], sizeof(out->warnings[0]),
                     "column 'tax_id': \"%.40s\" lost its leading zero in a spreadsheet; read as "
                     "%.24s", rec->tax_id, tax.value);
        }
        add_key(out, AM_KEY_TAX, "tax:", tax.value, tax.len, NULL, 0);
        out->keys[out->count - 1].scheme = conflict_class(&tax);
        out->person = out->person || tax.person;
    }

    rc = am_normalize_site(site, sizeof(site), &site_len, &out->page, n, rec->domain,
                           strlen(rec->domain), &why);
    if (rc == AM_EINPUT) {
        add_warning(out, "domain", &why);
    } else if (rc) {
        return am_error_set(err, rc, "%s", why.msg);
    } else if (site_len) {
        /* A page ("romashka.ru/moscow/") links only the same name on its site: see resolve.c. */
        add_key(out, AM_KEY_DOMAIN, "domain:", site, site_len, NULL, 0);
    }

    rc = am_normalize_name(value, sizeof(value), &len, n, rec->name, strlen(rec->name), &why);
    if (rc == AM_EINPUT) {
        add_warning(out, "name", &why);
    } else if (rc) {
        return am_error_set(err, rc, "%s", why.msg);
    } else if (len) {
        /* The country keeps "Romashka" in Russia apart from "Romashka" in Bulgaria. */
        add_key(out, AM_KEY_NAME, "name:", value, len, country, country_len);
        /* The core lets a record without a country meet the one country a name is known in. */
        out->keys[out->count - 1].no_country = country_len == 0;
        out->keys[out->count - 1].core = XXH3_64bits(value, len);
        /* Spelled in Latin too, a Cyrillic name meets its Latin form under the same rules. */
        rc = am_normalize_name_latin(latin, sizeof(latin), &latin_len, value, len, err);
        if (rc) {
            return rc;
        }
        if (latin_len) {
            add_key(out, AM_KEY_NAME, "name:", latin, latin_len, country, country_len);
            out->keys[out->count - 1].no_country = country_len == 0;
            out->keys[out->count - 1].core = XXH3_64bits(latin, latin_len);
        }
    }
    if (out->page && site_len && !len && out->warning_count < AM_KEY_WARNINGS_MAX) {
        snprintf(out->warnings[out->warning_count++], sizeof(out->warnings[0]),
                 "column 'domain': a page on %.80s, maybe another company's site, and no name to "
                 "tell whose; it links no record by the site", site);
    }

    if (rec->city[0]) {
        size_t city_len = 0;
        rc = am_normalize_city(out->city_text, sizeof(out->city_text), &city_len, n, rec->city,
                               strlen(rec->city), &why);
        if (rc == AM_EINPUT) {
            add_warning(out, "city", &why);
            out->city_text[0] = '\0';
        } else if (rc) {
            return am_error_set(err, rc, "%s", why.msg);
        } else if (city_len) {
            /* 0 means "no city": a real city never hashes to it. */
            out->city = (uint32_t)XXH3_64bits(out->city_text, city_len) | 1u;
        }
    }

    if (out->count == 0) {
        /* No key: the record is an entity of its own. Org ids have no 0x1f, so this is unambiguous. */
        int jn = snprintf(joined, sizeof(joined), "%s\x1f%.*s", org_id, AM_NORM_MAX - 80,
                          rec->id);
        if (jn > 0) {
            add_key(out, AM_KEY_RECORD, "record:", joined, strlen(joined), NULL, 0);
        }
    }
    return AM_OK;
}

const char *am_keys_matched_by(int *key_out, const am_key_set *a, const am_key_set *b)
{
    size_t i, j;
    int best = -1;

    for (i = 0; i < a->count; i++) {
        for (j = 0; j < b->count; j++) {
            if (am_key_compare(&a->keys[i], &b->keys[j]) == 0 &&
                (best < 0 || a->keys[i].kind < a->keys[best].kind)) {
                best = (int)i;
            }
        }
    }
    *key_out = best;
    if (best < 0) {
        return "chain";
    }
    if (a->keys[best].kind == AM_KEY_NAME && a->city && a->city == b->city) {
        return "name+city";
    }
    return am_key_kind_name(a->keys[best].kind);
}

/* The first key of `kind` (and tax `scheme`) in `set`, or -1. */
static int find_kind(const am_key_set *set, am_key_kind kind, int scheme)
{
    size_t i;

    for (i = 0; i < set->count; i++) {
        if (set->keys[i].kind == kind && (scheme < 0 || set->keys[i].scheme == scheme)) {
            return (int)i;
        }
    }
    return -1;
}

/* Whether two records share a name core (in either spelling). */
static bool same_name(const am_key_set *a, const am_key_set *b)
{
    size_t i, j;

    for (i = 0; i < a->count; i++) {
        for (j = 0; a->keys[i].kind == AM_KEY_NAME && j < b->count; j++) {
            if (b->keys[j].kind == AM_KEY_NAME && a->keys[i].core == b->keys[j].core) {
                return true;
            }
        }
    }
    return false;
}

/* The name of `set` as its first name key holds it ("name:ромашка м|RU" -> "ромашка м"). */
static const char *name_of(const am_key_set *set, int *len)
{
    int i = find_kind(set, AM_KEY_NAME, -1);

    if (i < 0) {
        *len = 9;
        return "(no name)";
    }
    *len = (int)strcspn(set->text[i] + 5, "|");
    return set->text[i] + 5;
}

void am_keys_conflict(char *out, size_t cap, const am_key_set *a, const am_key_set *b,
                      int shared)
{
    size_t i;
    int da, db;

    out[0] = '\0';
    for (i = 0; i < a->count; i++) {
        int j;
        if (a->keys[i].kind != AM_KEY_TAX) {
            continue;
        }
        j = find_kind(b, AM_KEY_TAX, a->keys[i].scheme);
        if (j >= 0 && am_key_compare(&a->keys[i], &b->keys[j]) != 0) {
            snprintf(out, cap, "their tax ids differ (%s, %s): two companies", a->text[i] + 4,
                     b->text[j] + 4);
            return;
        }
    }
    if (shared >= 0 && a->keys[shared].kind == AM_KEY_DOMAIN && (a->page || b->page) &&
        !same_name(a, b)) {
        int la, lb;
        const char *na = name_of(a, &la), *nb = name_of(b, &lb);
        snprintf(out, cap, "%s a page on %s, a site that may be another company's, which links "
                 "only records of the same name, and the names differ (%.*s, %.*s)",
                 a->page && b->page ? "both websites are" : "one website is",
                 a->text[shared] + 7, la, na, lb, nb);
        return;
    }
    if (shared < 0 || a->keys[shared].kind != AM_KEY_NAME) {
        return;
    }
    if (a->person || b->person) {
        snprintf(out, cap, "%s, whom a name alone never links",
                 a->person && b->person ? "both are individual entrepreneurs"
                                        : "one is an individual entrepreneur");
        return;
    }
    if (a->city && b->city && a->city != b->city) {
        snprintf(out, cap, "the records name different cities (%s, %s)", a->city_text,
                 b->city_text);
        return;
    }
    da = find_kind(a, AM_KEY_DOMAIN, -1);
    db = find_kind(b, AM_KEY_DOMAIN, -1);
    if (da >= 0 && db >= 0) {
        snprintf(out, cap, "both have websites of their own (%s, %s), so a name does not link "
                 "them", a->text[da] + 7, b->text[db] + 7);
    }
}
