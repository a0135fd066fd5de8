/*
 * Resolve: records that share a key are one entity (union-find over keys).
 * Entity ids are dense, from 0, and do not depend on the order records come in.
 */
#ifndef AM_RESOLVE_H
#define AM_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "acctmap/error.h"
#include "acctmap/keys.h"

/* Group of records that order no entity ahead of others (partners' records). */
#define AM_RESOLVE_GROUP_NONE 255

typedef struct am_resolver am_resolver;

am_status am_resolver_new(am_resolver **out, am_error *err);
void am_resolver_free(am_resolver *r);

/*
 * Add the next record, numbered from 0 in the order of calls, with its keys.
 * `group` orders entity ids: an entity gets the lowest group of its records,
 * and entities of a lower group get lower ids (the run passes the vendor's
 * population, so the vendor's entities come first, grouped by population,
 * which makes the intersections fast). AM_ELIMIT past 2^32-2 records.
 */
am_status am_resolver_add(am_resolver *r, const am_key *keys, size_t count, uint8_t group,
                          am_error *err);

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
 * sorted by (group, smallest key hash of the entity), so the same records in
 * any order give the same ids. The resolver can only be freed afterwards.
 */
am_status am_resolver_finish(uint32_t **entity_of_out, uint32_t *entity_count_out,
                             am_resolver *r, am_error *err);

#endif
