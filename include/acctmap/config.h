/*
 * Config: the JSON file that names the orgs, their sources and the store.
 * Parsed and validated once; everything after it reads these structs.
 */
#ifndef AM_CONFIG_H
#define AM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acctmap/error.h"
#include "acctmap/record.h"

typedef struct am_config am_config;
typedef struct am_config_org am_config_org;
struct am_policy;

/* A status value of a source mapped to populations (`populations` in the config). */
typedef struct am_status_rule {
    const char *value;   /* the status value as written in the config */
    uint32_t populations; /* bits of the org's populations */
} am_status_rule;

/*
 * One source of one org. Connectors read their own fields through the
 * am_source_config_* accessors below; the config keeps the parsed JSON.
 */
typedef struct am_source_config {
    const am_config_org *org;
    const char *type;     /* "csv", "hubspot", ... */
    const char *where;    /* "acctmap.json: orgs[1].sources[0]", for messages */
    const char *base_dir; /* directory of the config file: relative paths start here */
    size_t index;         /* position among the org's sources */
    const am_status_rule *rules; /* from `populations`, may be empty */
    size_t rule_count;
    const void *fields;   /* private to config.c */
} am_source_config;

struct am_config_org {
    const char *id;   /* [a-z0-9_-], 1..64 chars: also used in file names */
    const char *name; /* display name, defaults to id */
    bool is_self;
    const char *populations[AM_POPULATION_MAX]; /* customers, prospects, opportunities, then custom */
    size_t population_count;
    am_source_config *sources;
    size_t source_count;
    /* Partners: what this partner may see (`share`; default counts everywhere). NULL for self. */
    const struct am_policy *policy;
};

/*
 * Read and validate the config file at `path`. On error the message names the
 * file and the field: `acctmap.json: orgs[1].id: missing; give every org an id`.
 * AM_EIO when the file cannot be read, AM_ECONFIG when it is not valid.
 */
am_status am_config_load(am_config **out, const char *path, am_error *err);

/* The same from memory; `name` is used in messages, `base_dir` for relative paths. */
am_status am_config_parse(am_config **out, const char *text, size_t len, const char *name,
                          const char *base_dir, am_error *err);

void am_config_free(am_config *cfg);

/*
 * The store URI as written ("dir:./acctmap-data", "postgresql://..." or
 * "env:VARIABLE", which am_store_open_schema reads).
 */
const char *am_config_store(const am_config *cfg);
/* `store_schema`: the PostgreSQL schema of the store (default "acctmap"). */
const char *am_config_store_schema(const am_config *cfg);
/* Directory of the config file, against which relative paths are resolved. */
const char *am_config_base_dir(const am_config *cfg);
/* The config file name as given, for messages. */
const char *am_config_name(const am_config *cfg);

/* The orgs; the `self` org is always at index 0, partners follow in file order. */
size_t am_config_org_count(const am_config *cfg);
const am_config_org *am_config_org_at(const am_config *cfg, size_t i);
/* The org with this id, or NULL. */
const am_config_org *am_config_org_find(const am_config *cfg, const char *id);

/*
 * A string field of a source. Absent: *out = NULL and AM_OK, or AM_ECONFIG
 * when `required`. Not a string: AM_ECONFIG naming the field.
 */
am_status am_source_config_string(const char **out, const am_source_config *src,
                                  const char *field, bool required, am_error *err);

/*
 * A numeric field written as a JSON number (30, 0.5) or as a string holding
 * one ("30"): its text, in `buf` for a number. Absent: *out = NULL and AM_OK.
 * Anything else: AM_ECONFIG naming the field. The caller parses the text.
 */
am_status am_source_config_number_text(const char **out, char buf[64],
                                       const am_source_config *src, const char *field,
                                       am_error *err);

/*
 * Call `fn` for each entry of an object-of-strings field (`columns`). Absent:
 * AM_OK without calls. A value that is not a string: AM_ECONFIG. A non-zero
 * status from `fn` stops the walk and is returned.
 */
typedef am_status (*am_config_pair_fn)(void *ctx, const char *key, const char *value,
                                       am_error *err);
am_status am_source_config_each_pair(const am_source_config *src, const char *field,
                                     am_config_pair_fn fn, void *ctx, am_error *err);

/*
 * Refuse fields a connector does not know (a typo would otherwise be ignored).
 * `known` is NULL-terminated; `type` and `populations` are always allowed.
 */
am_status am_source_config_check_fields(const am_source_config *src,
                                        const char *const *known, am_error *err);

/* The mask of the status rule matching `value` (ASCII case-insensitive), or 0. */
uint32_t am_source_config_rule_match(const am_source_config *src, const char *value,
                                     size_t len);

#endif
