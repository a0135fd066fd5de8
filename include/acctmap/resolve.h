/*
 * Resolve: records linked by their keys are one entity. Tax ids and domains
 * are strong evidence, names weak; two different tax ids of one scheme are
 * never one entity, and no link chains through such a conflict. Entity ids
 * are dense, from 0, and do not depend on the order records come in.
 */
#ifndef AM_RESOLVE_H
#define AM_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acctmap/error.h"
#include "acctmap/keys.h"

/* Group of records that order no entity ahead of others (partners' records). */
#define AM_RESOLVE_GROUP_NONE 255

typedef struct am_resolver am_resolver;

/* What the resolver needs to know of a record besides its keys. */
typedef struct am_resolve_facts {
    uint8_t group;  /* orders entity ids; AM_RESOLVE_GROUP_NONE for partners' records */
    bool person;    /* an individual entrepreneur: never linked by name alone */
    bool page;      /* its website is a page on its site (am_key_set.page): its domain key
                       links it only to records of that site that share one of its name keys'
                       names (am_key.core): "romashka.ru/moscow/" of ООО «Ромашка-М» is not
                       ООО «Ромашка» of romashka.ru */
    uint32_t city;  /* hash of the normalized city, 0 when none */
    uint32_t identity; /* hash of the org and record id: tells apart records alike in all else */
} am_resolve_facts;

am_status am_resolver_new(am_resolver **out, am_error *err);
void am_resolver_free(am_resolver *r);

/*
 * Add the next record, numbered from 0 in the order of calls, with its keys
 * (at most AM_KEYS_MAX). `facts->group` orders entity ids: an entity gets the
 * lowest group of its records, and entities of a lower group get lower ids
 * (the run passes the vendor's population, so the vendor's entities come
 * first, grouped by population, which makes the intersections fast).
 * AM_ELIMIT past 2^32-2 records.
 */
am_status am_resolver_add(am_resolver *r, const am_key *keys, size_t count,
                          const am_resolve_facts *facts, am_error *err);

/*
 * A hint that these keys will be added soon: starts loading their table
 * slots into the cache. Adding a batch goes much faster when each record's
 * keys are prefetched a few records ahead.
 */
void am_resolver_prefetch(const am_resolver *r, const am_key *keys, size_t count);

/* Records and distinct keys added so far. */
size_t am_resolver_record_count(const am_resolver *r);
size_t am_resolver_key_count(const am_resolver *r);

/*
 * Finish: `*entity_of_out[i]` is the entity id of record i (malloc'd, the
 * caller frees it), `*entity_count_out` the number of entities. Ids are
 * sorted by (group, a hash of everything the entity's records hold), so the
 * same records in any order give the same ids. The resolver can only be
 * freed afterwards.
 */
am_status am_resolver_finish(uint32_t **entity_of_out, uint32_t *entity_count_out,
                             am_resolver *r, am_error *err);

#endif
