/*
 * Policy: parses a partner's `share` object into a level and fields for each
 * of our populations and each cell (our population x theirs). Config calls it
 * once per partner; the report reads the result. Overrides only narrow.
 */
#include "acctmap/policy.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acctmap/record.h"

struct am_policy {
    size_t our_count;
    size_t their_count;
    am_share rows[AM_POPULATION_MAX];
    am_share cells[AM_POPULATION_MAX][AM_POPULATION_MAX];
};

static const char *const level_names[] = {"hidden", "none", "counts", "accounts"};
static const char *const field_names[AM_FIELD_COUNT] = {
    "id", "name", "domain", "tax_id", "country", "city", "owner", "amount"};

const char *am_share_level_name(am_share_level level)
{
    return (size_t)level < sizeof(level_names) / sizeof(level_names[0]) ? level_names[level]
                                                                        : "?";
}

const char *am_share_field_name(am_share_field field)
{
    return (size_t)field < AM_FIELD_COUNT ? field_names[field] : NULL;
}

/* "customers, prospects, opportunities" for hints, cut short if long. */
static void join_names(char *out, size_t cap, const char *const *names, size_t count)
{
    size_t used = 0, i;

    out[0] = '\0';
    for (i = 0; i < count && used < cap; i++) {
        int n = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", names[i]);
        if (n < 0) {
            break;
        }
        used += (size_t)n;
    }
}

static int find_name(const char *const *names, size_t count, const char *name)
{
    size_t i;

    for (i = 0; i < count; i++) {
        if (strcmp(names[i], name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static am_status parse_level(am_share_level *out, const json_t *v, const char *where,
                             const char *path, am_error *err)
{
    size_t i;

    if (json_is_string(v)) {
        for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
            if (strcmp(json_string_value(v), level_names[i]) == 0) {
                *out = (am_share_level)i;
                return AM_OK;
            }
        }
        return am_error_set(err, AM_ECONFIG,
                            "%s.%s: expected hidden, none, counts or accounts, not \"%.40s\"",
                            where, path, json_string_value(v));
    }
    return am_error_set(err, AM_ECONFIG, "%s.%s: expected hidden, none, counts or accounts",
                        where, path);
}

static am_status parse_fields(uint32_t *out, const json_t *v, const char *where,
                              const char *path, am_error *err)
{
    size_t i, f;
    json_t *item;

    if (!json_is_array(v) || json_array_size(v) == 0) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.%s.fields: expected a non-empty list like [\"name\", "
                            "\"domain\"]",
                            where, path);
    }
    *out = 0;
    json_array_foreach(v, i, item) {
        const char *name = json_is_string(item) ? json_string_value(item) : "";
        for (f = 0; f < AM_FIELD_COUNT; f++) {
            if (strcmp(name, field_names[f]) == 0) {
                break;
            }
        }
        if (f == AM_FIELD_COUNT) {
            return am_error_set(err, AM_ECONFIG,
                                "%s.%s.fields[%zu]: unknown field \"%.40s\"; use id, name, "
                                "domain, tax_id, country, city, owner or amount",
                                where, path, i, name);
        }
        *out |= 1u << f;
    }
    return AM_OK;
}

/*
 * A level string, or {"level": ..., "fields": [...]} (plus "theirs" when
 * `allow_theirs`). `inherit` gives the fields of `accounts` written without a list.
 */
static am_status parse_share(am_share *out, const json_t *v, bool allow_theirs,
                             uint32_t inherit, const char *where, const char *path,
                             am_error *err)
{
    const char *key;
    json_t *item;
    am_status rc;

    out->fields = 0;
    if (!json_is_object(v)) {
        rc = parse_level(&out->level, v, where, path, err);
        if (!rc && out->level == AM_SHARE_ACCOUNTS) {
            out->fields = inherit;
        }
        return rc;
    }
    json_object_foreach((json_t *)v, key, item) {
        bool known = strcmp(key, "level") == 0 || strcmp(key, "fields") == 0 ||
                     (allow_theirs && strcmp(key, "theirs") == 0);
        if (!known) {
            return am_error_set(err, AM_ECONFIG, "%s.%s: unknown field \"%.40s\"; known fields: "
                                "level, fields%s",
                                where, path, key, allow_theirs ? ", theirs" : "");
        }
    }
    item = json_object_get(v, "level");
    if (!item) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.%s.level: missing; give hidden, none, counts or accounts", where,
                            path);
    }
    rc = parse_level(&out->level, item, where, path, err);
    if (rc) {
        return rc;
    }
    item = json_object_get(v, "fields");
    if (item && out->level != AM_SHARE_ACCOUNTS) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.%s.fields: only a population shared as \"accounts\" lists "
                            "fields; drop them or share accounts",
                            where, path);
    }
    if (out->level == AM_SHARE_ACCOUNTS) {
        out->fields = inherit;
        if (item) {
            return parse_fields(&out->fields, item, where, path, err);
        }
    }
    return AM_OK;
}

static am_status parse_overrides(am_policy *p, size_t our_pop, const json_t *theirs_obj,
                                 const char *where, const char *path,
                                 const char *const *theirs, am_error *err)
{
    const char *key;
    json_t *v;
    char sub[160], hint[256];

    if (!json_is_object(theirs_obj)) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.%s.theirs: expected an object like {\"prospects\": \"counts\"}",
                            where, path);
    }
    json_object_foreach((json_t *)theirs_obj, key, v) {
        const am_share *row = &p->rows[our_pop];
        am_share cell;
        int j = find_name(theirs, p->their_count, key);
        am_status rc;
        size_t f;

        snprintf(sub, sizeof(sub), "%s.theirs.%.40s", path, key);
        if (j < 0) {
            join_names(hint, sizeof(hint), theirs, p->their_count);
            return am_error_set(err, AM_ECONFIG,
                                "%s.%s: \"%.40s\" is not a population of this partner; use one "
                                "of %s",
                                where, sub, key, hint);
        }
        rc = parse_share(&cell, v, false, row->fields, where, sub, err);
        if (rc) {
            return rc;
        }
        if (cell.level == AM_SHARE_HIDDEN) {
            return am_error_set(err, AM_ECONFIG,
                                "%s.%s: a cell cannot be hidden, only a whole population; use "
                                "\"none\"",
                                where, sub);
        }
        if (cell.level > row->level) {
            return am_error_set(err, AM_ECONFIG,
                                "%s.%s: \"%s\" would widen the population's \"%s\"; an override "
                                "may only narrow",
                                where, sub, level_names[cell.level], level_names[row->level]);
        }
        for (f = 0; f < AM_FIELD_COUNT; f++) {
            if ((cell.fields & (1u << f)) && !(row->fields & (1u << f))) {
                return am_error_set(err, AM_ECONFIG,
                                    "%s.%s.fields: \"%s\" is not shared for the population; an "
                                    "override may only narrow",
                                    where, sub, field_names[f]);
            }
        }
        p->cells[our_pop][j] = cell;
    }
    return AM_OK;
}

am_status am_policy_parse(am_policy **out, const char *text, size_t len, const char *where,
                          const char *const *ours, size_t our_count, const char *const *theirs,
                          size_t their_count, am_error *err)
{
    am_policy *p = NULL;
    json_t *root = NULL;
    json_error_t jerr;
    const char *key;
    json_t *v;
    size_t i, j;
    am_status rc = AM_OK;
    char hint[256];

    *out = NULL;
    if (our_count > AM_POPULATION_MAX || their_count > AM_POPULATION_MAX) {
        return am_error_set(err, AM_EINVAL, "%s: more than %d populations", where,
                            AM_POPULATION_MAX);
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        return am_error_set(err, AM_ENOMEM, "out of memory reading the sharing policy");
    }
    p->our_count = our_count;
    p->their_count = their_count;
    for (i = 0; i < our_count; i++) {
        p->rows[i].level = AM_SHARE_COUNTS;
    }
    if (text && len) {
        root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(root)) {
            rc = am_error_set(err, AM_ECONFIG,
                              "%s: expected an object like {\"customers\": \"counts\"}", where);
            goto cleanup;
        }
        json_object_foreach(root, key, v) {
            char path[64];
            int row = find_name(ours, our_count, key);

            snprintf(path, sizeof(path), "%.40s", key);
            if (row < 0) {
                join_names(hint, sizeof(hint), ours, our_count);
                rc = am_error_set(err, AM_ECONFIG,
                                  "%s.%s: \"%.40s\" is not one of our populations; use one of %s",
                                  where, path, key, hint);
                goto cleanup;
            }
            rc = parse_share(&p->rows[row], v, true, AM_FIELDS_DEFAULT, where, path, err);
            if (rc) {
                goto cleanup;
            }
        }
    }
    for (i = 0; i < our_count; i++) {
        for (j = 0; j < their_count; j++) {
            p->cells[i][j] = p->rows[i];
        }
    }
    /* Overrides after every row is known: each is checked against its own row. */
    if (root) {
        json_object_foreach(root, key, v) {
            json_t *theirs_obj = json_is_object(v) ? json_object_get(v, "theirs") : NULL;
            char path[64];
            if (!theirs_obj) {
                continue;
            }
            snprintf(path, sizeof(path), "%.40s", key);
            rc = parse_overrides(p, (size_t)find_name(ours, our_count, key), theirs_obj, where,
                                 path, theirs, err);
            if (rc) {
                goto cleanup;
            }
        }
    }
    *out = p;
    p = NULL;
cleanup:
    json_decref(root);
    free(p);
    return rc;
}

void am_policy_free(am_policy *p)
{
    free(p);
}

am_share am_policy_population(const am_policy *p, size_t our_pop)
{
    am_share none = {AM_SHARE_HIDDEN, 0};

    return our_pop < p->our_count ? p->rows[our_pop] : none;
}

am_share am_policy_cell(const am_policy *p, size_t our_pop, size_t their_pop)
{
    am_share none = {AM_SHARE_HIDDEN, 0};

    return our_pop < p->our_count && their_pop < p->their_count ? p->cells[our_pop][their_pop]
                                                                 : none;
}

void am_policy_needs(uint32_t *our_pops, uint32_t *fields, uint32_t *their_pops,
                     const am_policy *p)
{
    size_t i, j;

    *our_pops = *fields = *their_pops = 0;
    for (i = 0; i < p->our_count; i++) {
        for (j = 0; j < p->their_count; j++) {
            if (p->cells[i][j].level == AM_SHARE_ACCOUNTS) {
                *our_pops |= 1u << i;
                *their_pops |= 1u << j;
                *fields |= p->cells[i][j].fields;
            }
        }
    }
}
