/*
 * Config: reads acctmap.json with jansson, validates every field with a
 * message naming it, and exposes orgs and sources as plain structs. The
 * parsed JSON stays here; connectors read their fields through accessors.
 */
#include "acctmap/config.h"
#include "acctmap/store.h"

#include "acctmap/policy.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define CONFIG_MAX_BYTES (16 * 1024 * 1024)
#define ORG_ID_MAX 64
#define POP_NAME_MAX 32

struct am_config {
    json_t *root;
    am_arena arena; /* every string and array below */
    const char *name;
    const char *base_dir;
    const char *store;
    const char *store_schema;
    am_config_org *orgs;
    size_t org_count;
};

static const char *const standard_populations[AM_POP_STANDARD_COUNT] = {
    "customers", "prospects", "opportunities"};

static char *arena_printf(am_arena *arena, const char *fmt, ...) AM_PRINTF(2, 3);

static char *arena_printf(am_arena *arena, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return NULL;
    }
    return am_arena_strndup(arena, buf, strlen(buf));
}

static bool is_valid_id(const char *s, size_t max, bool allow_dash)
{
    size_t n = strlen(s);
    size_t i;

    if (n == 0 || n > max) {
        return false;
    }
    for (i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                  (allow_dash && c == '-');
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(s, *list) == 0) {
            return true;
        }
    }
    return false;
}

/* Refuse keys of `obj` not in `known`: a typo would otherwise be ignored silently. */
static am_status check_keys(const json_t *obj, const char *const *known, const char *where,
                            const char *hint, am_error *err)
{
    const char *key;
    json_t *value;

    json_object_foreach((json_t *)obj, key, value) {
        (void)value;
        if (!in_list(key, known)) {
            return am_error_set(err, AM_ECONFIG, "%s: unknown field \"%s\"; known fields: %s",
                                where, key, hint);
        }
    }
    return AM_OK;
}

static am_status get_string(const char **out, const json_t *obj, const char *field,
                            const char *where, bool required, am_error *err)
{
    json_t *v = json_object_get(obj, field);

    *out = NULL;
    if (!v) {
        if (required) {
            return am_error_set(err, AM_ECONFIG, "%s.%s: missing; it is required", where, field);
        }
        return AM_OK;
    }
    if (!json_is_string(v)) {
        return am_error_set(err, AM_ECONFIG, "%s.%s: expected a string", where, field);
    }
    *out = json_string_value(v);
    return AM_OK;
}

/* The bit of population `name` in `org`, adding it as a custom population if new. */
static am_status org_population_bit(uint32_t *bit_out, am_config_org *org, am_arena *arena,
                                    const char *name, const char *where, am_error *err)
{
    size_t i;

    for (i = 0; i < org->population_count; i++) {
        if (strcmp(org->populations[i], name) == 0) {
            *bit_out = (uint32_t)1 << i;
            return AM_OK;
        }
    }
    if (!is_valid_id(name, POP_NAME_MAX, true)) {
        return am_error_set(err, AM_ECONFIG,
                            "%s: population \"%.64s\" is not a valid name; use lower-case "
                            "letters, digits, '_' or '-' (at most %d)",
                            where, name, POP_NAME_MAX);
    }
    if (org->population_count == AM_POPULATION_MAX) {
        return am_error_set(err, AM_ECONFIG, "%s: more than %d populations in org \"%s\"",
                            where, AM_POPULATION_MAX, org->id);
    }
    org->populations[org->population_count] = am_arena_strndup(arena, name, strlen(name));
    if (!org->populations[org->population_count]) {
        return am_error_set(err, AM_ENOMEM, "out of memory reading the config");
    }
    *bit_out = (uint32_t)1 << org->population_count;
    org->population_count++;
    return AM_OK;
}

static am_status parse_rules(am_source_config *src, am_config_org *org, am_arena *arena,
                             const json_t *pops, am_error *err)
{
    const char *key;
    json_t *value;
    size_t n = 0;
    am_status_rule *rules;

    if (!json_is_object(pops)) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.populations: expected an object mapping status values to "
                            "populations, like {\"client\": \"customers\"}",
                            src->where);
    }
    rules = am_arena_alloc(arena, (json_object_size(pops) + 1) * sizeof(*rules));
    if (!rules) {
        return am_error_set(err, AM_ENOMEM, "out of memory reading the config");
    }
    json_object_foreach((json_t *)pops, key, value) {
        uint32_t mask = 0, bit;
        char *where = arena_printf(arena, "%s.populations.%s", src->where, key);
        am_status rc;

        if (!where) {
            return am_error_set(err, AM_ENOMEM, "out of memory reading the config");
        }
        if (key[0] == '\0') {
            return am_error_set(err, AM_ECONFIG, "%s: empty status value", where);
        }
        if (json_is_string(value)) {
            rc = org_population_bit(&bit, org, arena, json_string_value(value), where, err);
            if (rc) {
                return rc;
            }
            mask |= bit;
        } else if (json_is_array(value) && json_array_size(value) > 0) {
            size_t i;
            json_t *item;
            json_array_foreach(value, i, item) {
                if (!json_is_string(item)) {
                    return am_error_set(err, AM_ECONFIG,
                                        "%s[%zu]: expected a population name", where, i);
                }
                rc = org_population_bit(&bit, org, arena, json_string_value(item), where, err);
                if (rc) {
                    return rc;
                }
                mask |= bit;
            }
        } else {
            return am_error_set(err, AM_ECONFIG,
                                "%s: expected a population name or a list of them", where);
        }
        rules[n].value = key;
        rules[n].populations = mask;
        n++;
    }
    src->rules = rules;
    src->rule_count = n;
    return AM_OK;
}

static am_status parse_source(am_source_config *src, am_config_org *org, am_config *cfg,
                              const json_t *obj, size_t org_pos, size_t index, am_error *err)
{
    json_t *pops;
    am_status rc;

    src->org = org;
    src->index = index;
    src->base_dir = cfg->base_dir;
    src->where = arena_printf(&cfg->arena, "%s: orgs[%zu].sources[%zu]", cfg->name, org_pos,
                              index);
    if (!src->where) {
        return am_error_set(err, AM_ENOMEM, "out of memory reading the config");
    }
    if (!json_is_object(obj)) {
        return am_error_set(err, AM_ECONFIG, "%s: expected an object with a \"type\"",
                            src->where);
    }
    src->fields = obj;
    rc = get_string(&src->type, obj, "type", src->where, true, err);
    if (rc) {
        return rc;
    }
    pops = json_object_get(obj, "populations");
    if (pops) {
        return parse_rules(src, org, &cfg->arena, pops, err);
    }
    return AM_OK;
}

static am_status parse_org(am_config_org *org, am_config *cfg, const json_t *obj, size_t pos,
                           am_error *err)
{
    static const char *const known[] = {"id", "name", "sources", "share", NULL};
    char *where = arena_printf(&cfg->arena, "%s: orgs[%zu]", cfg->name, pos);
    json_t *sources;
    size_t i;
    am_status rc;

    if (!where) {
        return am_error_set(err, AM_ENOMEM, "out of memory reading the config");
    }
    if (!json_is_object(obj)) {
        return am_error_set(err, AM_ECONFIG, "%s: expected an object with \"id\" and \"sources\"",
                            where);
    }
    rc = check_keys(obj, known, where, "id, name, sources, share", err);
    if (rc) {
        return rc;
    }
    rc = get_string(&org->id, obj, "id", where, true, err);
    if (rc) {
        return rc;
    }
    if (!is_valid_id(org->id, ORG_ID_MAX, true)) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.id: \"%.64s\" is not a valid org id; use lower-case letters, "
                            "digits, '_' or '-' (at most %d)",
                            where, org->id, ORG_ID_MAX);
    }
    rc = get_string(&org->name, obj, "name", where, false, err);
    if (rc) {
        return rc;
    }
    if (!org->name || !org->name[0]) {
        org->name = org->id;
    }
    for (i = 0; i < AM_POP_STANDARD_COUNT; i++) {
        org->populations[i] = standard_populations[i];
    }
    org->population_count = AM_POP_STANDARD_COUNT;

    sources = json_object_get(obj, "sources");
    if (!json_is_array(sources) || json_array_size(sources) == 0) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.sources: expected a non-empty list of sources, like "
                            "[{\"type\": \"csv\", \"path\": \"data/%s.csv\"}]",
                            where, org->id);
    }
    org->source_count = json_array_size(sources);
    org->sources = am_arena_alloc(&cfg->arena, org->source_count * sizeof(*org->sources));
    if (!org->sources) {
        return am_error_set(err, AM_ENOMEM, "out of memory reading the config");
    }
    memset(org->sources, 0, org->source_count * sizeof(*org->sources));
    for (i = 0; i < org->source_count; i++) {
        rc = parse_source(&org->sources[i], org, cfg, json_array_get(sources, i), pos, i, err);
        if (rc) {
            return rc;
        }
    }
    return AM_OK;
}

/*
 * Each org's `share`, once every org's populations are known (self may come
 * after its partners in the file). The policy module parses it.
 */
static am_status parse_policies(am_config *cfg, const json_t *orgs, am_error *err)
{
    const am_config_org *self = &cfg->orgs[0];
    size_t i;

    for (i = 0; i < json_array_size(orgs); i++) {
        const json_t *obj = json_array_get(orgs, i);
        const json_t *share = json_object_get(obj, "share");
        am_config_org *org = (am_config_org *)am_config_org_find(
            cfg, json_string_value(json_object_get(obj, "id")));
        char where[600];
        char *text = NULL;
        am_policy *policy = NULL;
        am_status rc;

        snprintf(where, sizeof(where), "%s: orgs[%zu].share", cfg->name, i);
        if (org->is_self) {
            if (share) {
                return am_error_set(err, AM_ECONFIG, "%s: self shares nothing with itself; put "
                                    "\"share\" on a partner", where);
            }
            continue;
        }
        if (share) {
            text = json_dumps(share, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
            if (!text) {
                return am_error_set(err, AM_ENOMEM, "out of memory reading the config");
            }
        }
        rc = am_policy_parse(&policy, text, text ? strlen(text) : 0, where, self->populations,
                             self->population_count, org->populations, org->population_count,
                             err);
        free(text);
        if (rc) {
            return rc;
        }
        org->policy = policy;
    }
    return AM_OK;
}

bool am_config__is_env_name(const char *s)
{
    size_t i;

    if (!s[0] || (s[0] >= '0' && s[0] <= '9')) {
        return false;
    }
    for (i = 0; s[i]; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_')) {
            return false;
        }
    }
    return i <= 128;
}

/* A PostgreSQL schema acctmap creates: lower case, so that it needs no quoting by people. */
static bool is_schema_name(const char *s)
{
    size_t i;

    if (!s[0] || (s[0] >= '0' && s[0] <= '9') || strncmp(s, "pg_", 3) == 0) {
        return false;
    }
    for (i = 0; s[i]; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) {
            return false;
        }
    }
    return i <= 63;
}

static am_status parse_root(am_config *cfg, am_error *err)
{
    static const char *const known[] = {"self", "store", "store_schema", "orgs", NULL};
    const json_t *root = cfg->root;
    const char *self = NULL;
    json_t *orgs;
    size_t i, j;
    bool self_found = false;
    am_status rc;

    if (!json_is_object(root)) {
        return am_error_set(err, AM_ECONFIG,
                            "%s: expected a JSON object with \"self\", \"store\" and \"orgs\"",
                            cfg->name);
    }
    rc = check_keys(root, known, cfg->name, "self, store, store_schema, orgs", err);
    if (rc) {
        return rc;
    }
    rc = get_string(&self, root, "self", cfg->name, true, err);
    if (rc) {
        return rc;
    }
    rc = get_string(&cfg->store, root, "store", cfg->name, false, err);
    if (rc) {
        return rc;
    }
    if (!cfg->store) {
        cfg->store = "dir:./acctmap-data";
    }
    if (strncmp(cfg->store, "dir:", 4) != 0 && strncmp(cfg->store, "postgresql://", 13) != 0 &&
        strncmp(cfg->store, "postgres://", 11) != 0 && strncmp(cfg->store, "env:", 4) != 0) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.store: \"%.64s\" is not a store; use \"dir:PATH\", a "
                            "postgresql:// URI or \"env:VARIABLE\"",
                            cfg->name, cfg->store);
    }
    if (strncmp(cfg->store, "env:", 4) == 0 && !am_config__is_env_name(cfg->store + 4)) {
        return am_error_set(err, AM_ECONFIG, "%s.store: \"%.64s\": after env: comes the name of "
                            "an environment variable, like \"env:ACCTMAP_STORE\"", cfg->name,
                            cfg->store);
    }
    rc = get_string(&cfg->store_schema, root, "store_schema", cfg->name, false, err);
    if (rc) {
        return rc;
    }
    if (!cfg->store_schema) {
        cfg->store_schema = AM_STORE_SCHEMA_DEFAULT;
    }
    if (!is_schema_name(cfg->store_schema)) {
        return am_error_set(err, AM_ECONFIG, "%s.store_schema: \"%.64s\" is not a schema name; "
                            "use 1 to 63 of a-z, 0-9 and _, not starting with a digit or pg_",
                            cfg->name, cfg->store_schema);
    }
    if (strcmp(cfg->store, "dir:") == 0) {
        return am_error_set(err, AM_ECONFIG, "%s.store: \"dir:\" needs a path, like "
                            "\"dir:./acctmap-data\"", cfg->name);
    }
    orgs = json_object_get(root, "orgs");
    if (!json_is_array(orgs) || json_array_size(orgs) < 2) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.orgs: expected a list of at least two orgs (self and a partner)",
                            cfg->name);
    }
    cfg->org_count = json_array_size(orgs);
    cfg->orgs = am_arena_alloc(&cfg->arena, cfg->org_count * sizeof(*cfg->orgs));
    if (!cfg->orgs) {
        return am_error_set(err, AM_ENOMEM, "out of memory reading the config");
    }
    memset(cfg->orgs, 0, cfg->org_count * sizeof(*cfg->orgs));
    for (i = 0; i < cfg->org_count; i++) {
        const json_t *obj = json_array_get(orgs, i);
        const json_t *id = json_is_object(obj) ? json_object_get(obj, "id") : NULL;
        /* Self goes first, partners keep their order: slot of file position i. */
        bool is_self = json_is_string(id) && strcmp(json_string_value(id), self) == 0;
        size_t slot = is_self ? 0 : (self_found ? i : i + 1);

        if (is_self && self_found) {
            return am_error_set(err, AM_ECONFIG, "%s: orgs[%zu].id: \"%s\" appears twice",
                                cfg->name, i, self);
        }
        if (slot >= cfg->org_count) {
            return am_error_set(err, AM_ECONFIG,
                                "%s.self: \"%.64s\" is not the id of any org in \"orgs\"",
                                cfg->name, self);
        }
        if (is_self) {
            self_found = true;
            /* Partners read before self were placed one slot right; that stays right. */
        }
        rc = parse_org(&cfg->orgs[slot], cfg, obj, i, err);
        if (rc) {
            return rc;
        }
        cfg->orgs[slot].is_self = is_self;
    }
    if (!self_found) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.self: \"%.64s\" is not the id of any org in \"orgs\"", cfg->name,
                            self);
    }
    for (i = 0; i < cfg->org_count; i++) {
        for (j = i + 1; j < cfg->org_count; j++) {
            if (strcmp(cfg->orgs[i].id, cfg->orgs[j].id) == 0) {
                return am_error_set(err, AM_ECONFIG,
                                    "%s.orgs: org id \"%s\" appears twice; ids must be unique",
                                    cfg->name, cfg->orgs[i].id);
            }
        }
    }
    return parse_policies(cfg, orgs, err);
}

am_status am_config_parse(am_config **out, const char *text, size_t len, const char *name,
                          const char *base_dir, am_error *err)
{
    am_config *cfg = NULL;
    json_error_t jerr;
    am_status rc = AM_OK;

    *out = NULL;
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        return am_error_set(err, AM_ENOMEM, "out of memory reading the config");
    }
    am_arena_init(&cfg->arena);
    cfg->name = am_arena_strndup(&cfg->arena, name, strlen(name));
    cfg->base_dir = am_arena_strndup(&cfg->arena, base_dir, strlen(base_dir));
    if (!cfg->name || !cfg->base_dir) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory reading the config");
        goto cleanup;
    }
    cfg->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!cfg->root) {
        rc = am_error_set(err, AM_ECONFIG, "%s:%d:%d: not valid JSON: %s; fix the syntax", name,
                          jerr.line, jerr.column, jerr.text);
        goto cleanup;
    }
    rc = parse_root(cfg, err);
    if (rc) {
        goto cleanup;
    }
    *out = cfg;
    cfg = NULL;
cleanup:
    am_config_free(cfg);
    return rc;
}

am_status am_config_load(am_config **out, const char *path, am_error *err)
{
    FILE *f = NULL;
    char *text = NULL;
    char *dir = NULL;
    size_t len = 0;
    am_status rc = AM_OK;
    const char *slash;

    *out = NULL;
    f = fopen(path, "rb");
    if (!f) {
        return am_error_set(err, errno == ENOENT ? AM_ECONFIG : AM_EIO,
                            "%s: cannot open the config: %s; pass another one with -c FILE", path,
                            strerror(errno));
    }
    text = malloc(CONFIG_MAX_BYTES + 1);
    if (!text) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory reading the config");
        goto cleanup;
    }
    len = fread(text, 1, CONFIG_MAX_BYTES + 1, f);
    if (ferror(f)) {
        rc = am_error_set(err, AM_EIO, "%s: cannot read the config: %s", path, strerror(errno));
        goto cleanup;
    }
    if (len > CONFIG_MAX_BYTES) {
        rc = am_error_set(err, AM_ECONFIG, "%s: larger than %d MiB; is this the config file?",
                          path, CONFIG_MAX_BYTES / (1024 * 1024));
        goto cleanup;
    }
    slash = strrchr(path, '/');
    dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    if (!dir) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory reading the config");
        goto cleanup;
    }
    rc = am_config_parse(out, text, len, path, dir, err);
cleanup:
    if (f) {
        fclose(f);
    }
    free(text);
    free(dir);
    return rc;
}

void am_config_free(am_config *cfg)
{
    size_t i;

    if (!cfg) {
        return;
    }
    for (i = 0; cfg->orgs && i < cfg->org_count; i++) {
        am_policy_free((am_policy *)cfg->orgs[i].policy);
    }
    json_decref(cfg->root);
    am_arena_dispose(&cfg->arena);
    free(cfg);
}

const char *am_config_store(const am_config *cfg)
{
    return cfg->store;
}

const char *am_config_store_schema(const am_config *cfg)
{
    return cfg->store_schema;
}

const char *am_config_base_dir(const am_config *cfg)
{
    return cfg->base_dir;
}

const char *am_config_name(const am_config *cfg)
{
    return cfg->name;
}

size_t am_config_org_count(const am_config *cfg)
{
    return cfg->org_count;
}

const am_config_org *am_config_org_at(const am_config *cfg, size_t i)
{
    return i < cfg->org_count ? &cfg->orgs[i] : NULL;
}

const am_config_org *am_config_org_find(const am_config *cfg, const char *id)
{
    size_t i;

    for (i = 0; i < cfg->org_count; i++) {
        if (strcmp(cfg->orgs[i].id, id) == 0) {
            return &cfg->orgs[i];
        }
    }
    return NULL;
}

am_status am_source_config_string(const char **out, const am_source_config *src,
                                  const char *field, bool required, am_error *err)
{
    return get_string(out, src->fields, field, src->where, required, err);
}

am_status am_source_config_number_text(const char **out, char buf[64],
                                       const am_source_config *src, const char *field,
                                       am_error *err)
{
    json_t *v = json_object_get(src->fields, field);

    *out = NULL;
    if (!v) {
        return AM_OK;
    }
    if (json_is_string(v)) {
        *out = json_string_value(v);
    } else if (json_is_integer(v)) {
        snprintf(buf, 64, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *out = buf;
    } else if (json_is_real(v)) {
        snprintf(buf, 64, "%.17g", json_real_value(v));
        *out = buf;
    } else {
        return am_error_set(err, AM_ECONFIG, "%s.%s: expected a number", src->where, field);
    }
    return AM_OK;
}

am_status am_source_config_each_pair(const am_source_config *src, const char *field,
                                     am_config_pair_fn fn, void *ctx, am_error *err)
{
    json_t *obj = json_object_get(src->fields, field);
    const char *key;
    json_t *value;

    if (!obj) {
        return AM_OK;
    }
    if (!json_is_object(obj)) {
        return am_error_set(err, AM_ECONFIG, "%s.%s: expected an object of strings",
                            src->where, field);
    }
    json_object_foreach(obj, key, value) {
        am_status rc;
        if (!json_is_string(value)) {
            return am_error_set(err, AM_ECONFIG, "%s.%s.%s: expected a string", src->where,
                                field, key);
        }
        rc = fn(ctx, key, json_string_value(value), err);
        if (rc) {
            return rc;
        }
    }
    return AM_OK;
}

am_status am_source_config_check_fields(const am_source_config *src,
                                        const char *const *known, am_error *err)
{
    const char *key;
    json_t *value;

    json_object_foreach((json_t *)src->fields, key, value) {
        (void)value;
        if (strcmp(key, "type") == 0 || strcmp(key, "populations") == 0) {
            continue;
        }
        if (!known || !in_list(key, known)) {
            char hint[256] = "type, populations";
            size_t used = strlen(hint);
            for (; known && *known && used < sizeof(hint); known++) {
                int n = snprintf(hint + used, sizeof(hint) - used, ", %s", *known);
                if (n < 0) {
                    break;
                }
                used += (size_t)n;
            }
            return am_error_set(err, AM_ECONFIG,
                                "%s: unknown field \"%s\" for a %s source; known fields: %s",
                                src->where, key, src->type, hint);
        }
    }
    return AM_OK;
}

uint32_t am_source_config_rule_match(const am_source_config *src, const char *value, size_t len)
{
    size_t i;

    for (i = 0; i < src->rule_count; i++) {
        const char *rule = src->rules[i].value;
        if (strlen(rule) == len && strncasecmp(rule, value, len) == 0) {
            return src->rules[i].populations;
        }
    }
    return 0;
}
