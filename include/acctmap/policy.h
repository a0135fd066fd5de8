/*
 * Policy: the sharing policy of one partner, what it may see of each of our
 * populations (`share` in the config). Parsed once from the config; the
 * report applies it to a run.
 */
#ifndef AM_POLICY_H
#define AM_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "acctmap/error.h"

/* Ordered from the narrowest to the widest: an override may only go down. */
typedef enum am_share_level {
    AM_SHARE_HIDDEN = 0, /* not even the population's name */
    AM_SHARE_NONE,       /* the population's name, no numbers */
    AM_SHARE_COUNTS,     /* the matrix numbers */
    AM_SHARE_ACCOUNTS    /* the numbers and our records, with the listed fields */
} am_share_level;

/* The record fields a partner may be shown, in their canonical (column) order. */
typedef enum am_share_field {
    AM_FIELD_ID = 0,
    AM_FIELD_NAME,
    AM_FIELD_DOMAIN,
    AM_FIELD_TAX_ID,
    AM_FIELD_COUNTRY,
    AM_FIELD_CITY,
    AM_FIELD_OWNER,
    AM_FIELD_AMOUNT,
    AM_FIELD_COUNT
} am_share_field;

/* Fields listed when `accounts` names none: id, name, domain. */
#define AM_FIELDS_DEFAULT \
    ((1u << AM_FIELD_ID) | (1u << AM_FIELD_NAME) | (1u << AM_FIELD_DOMAIN))

/* What is shared of one population or one cell. `fields` is 0 unless level is accounts. */
typedef struct am_share {
    am_share_level level;
    uint32_t fields; /* bit (1u << am_share_field) per listed field */
} am_share;

typedef struct am_policy am_policy;

/*
 * Parse a partner's `share` object (JSON text, `len` bytes; NULL or len 0: no
 * `share`, every population `counts`). `ours` names our populations (keys of
 * the object), `theirs` the partner's (keys of an override). Syntax:
 *   {"customers": "accounts",
 *    "prospects": {"level": "accounts", "fields": ["name", "owner"],
 *                  "theirs": {"customers": "counts"}},
 *    "opportunities": "hidden"}
 * `theirs` overrides single cells (our population x their population) and may
 * only narrow the population's level or fields. On error (AM_ECONFIG) the
 * one-line message starts with `where` ("acctmap.json: orgs[1].share") and
 * names the field.
 */
am_status am_policy_parse(am_policy **out, const char *text, size_t len, const char *where,
                          const char *const *ours, size_t our_count, const char *const *theirs,
                          size_t their_count, am_error *err);
void am_policy_free(am_policy *p);

/* What the partner may see of our population `our_pop`. */
am_share am_policy_population(const am_policy *p, size_t our_pop);
/* What the partner may see of one cell: the population's share, or its override. */
am_share am_policy_cell(const am_policy *p, size_t our_pop, size_t their_pop);

/*
 * What a report for this partner needs of a run's records: our populations
 * shown as accounts (`our_pops`, bits), the union of their fields, and the
 * partner's populations whose record ids are shown (any cell at accounts).
 */
void am_policy_needs(uint32_t *our_pops, uint32_t *fields, uint32_t *their_pops,
                     const am_policy *p);

/* "hidden", "none", "counts", "accounts". */
const char *am_share_level_name(am_share_level level);
/* "id", "name", ..., "amount"; NULL past the last. */
const char *am_share_field_name(am_share_field field);

#endif
