/*
 * Index: for every org and each of its populations, the set of entities as a
 * roaring bitmap; and for listings, which of an org's records are an entity.
 */
#ifndef AM_INDEX_H
#define AM_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "acctmap/error.h"

typedef struct am_index am_index;

am_status am_index_new(am_index **out, size_t org_count, am_error *err);
void am_index_free(am_index *ix);

/*
 * Index org `org`: record i of the org is entity `entity_of[i]` and belongs to
 * the populations whose bits are set in `populations[i]`. Takes ownership of
 * both malloc'd arrays (also on failure). Builds one bitmap per population.
 */
am_status am_index_add_org(am_index *ix, size_t org, size_t population_count,
                           uint32_t *entity_of, uint32_t *populations, size_t record_count,
                           am_error *err);

size_t am_index_org_count(const am_index *ix);
size_t am_index_population_count(const am_index *ix, size_t org);
size_t am_index_record_count(const am_index *ix, size_t org);

/* Entities in population `pop` of `org`. */
uint64_t am_index_population_cardinality(const am_index *ix, size_t org, size_t pop);

/* Entity and population mask of one record of `org`. */
uint32_t am_index_record_entity(const am_index *ix, size_t org, size_t record);
uint32_t am_index_record_populations(const am_index *ix, size_t org, size_t record);

/*
 * Prepare am_index_entity_records for `org` (sorts its records by entity).
 * Only listings need it; matrices do not.
 */
am_status am_index_prepare_lookup(am_index *ix, size_t org, am_error *err);

/*
 * The records of `org` that are entity `entity`, as indexes into the org's
 * records, ascending. Borrowed until the index is freed. Needs
 * am_index_prepare_lookup; returns 0 records otherwise.
 */
size_t am_index_entity_records(const uint32_t **records_out, const am_index *ix, size_t org,
                               uint32_t entity);

#endif
