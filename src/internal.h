/*
 * Cross-module internals: declared here, never in include/. Each says which
 * modules may call it.
 */
#ifndef AM_INTERNAL_H
#define AM_INTERNAL_H

#include <stdbool.h>

#include <roaring/roaring.h>

#include "acctmap/index.h"

/* roaring_bitmap_free(NULL) crashes in Debian's CRoaring 0.2.66: free through this. */
static inline void am_index__bitmap_free(roaring_bitmap_t *b)
{
    if (b) {
        roaring_bitmap_free(b);
    }
}

/* For overlap and store: the bitmap of (org, pop); NULL until the org is indexed. */
const roaring_bitmap_t *am_index__bitmap(const am_index *ix, size_t org, size_t pop);

/*
 * For the store, loading a run: set org `org` from stored parts. Takes
 * ownership of `entity_of`, `populations` and every bitmap (also on failure);
 * `bitmaps` itself stays the caller's.
 */
am_status am_index__load_org(am_index *ix, size_t org, size_t population_count,
                             uint32_t *entity_of, uint32_t *populations, size_t record_count,
                             roaring_bitmap_t **bitmaps, am_error *err);

/*
 * For config and store: whether `s` can name an environment variable,
 * [A-Za-z_][A-Za-z0-9_]* of at most 128 bytes (`env:` store names, `*_env` fields).
 */
bool am_config__is_env_name(const char *s);

#endif
