/*
 * Arena: per-batch and per-run strings, freed in one call. Built with
 * ARENA_DEBUG each allocation is its own malloc so ASan sees overruns.
 */
#ifndef AM_ARENA_H
#define AM_ARENA_H

#include <stddef.h>

typedef struct am_arena_chunk am_arena_chunk;

/* Caller's storage; a zeroed am_arena is a valid empty arena. */
typedef struct am_arena {
    am_arena_chunk *head;
    size_t used;  /* bytes used in head */
    size_t total; /* bytes handed out since init or reset */
} am_arena;

void am_arena_init(am_arena *arena);

/* Free every allocation. A zeroed or disposed arena is a no-op. */
void am_arena_dispose(am_arena *arena);

/* Free every allocation but keep the first chunk for reuse. */
void am_arena_reset(am_arena *arena);

/* `size` bytes aligned for any type, valid until reset/dispose; NULL when out of memory. */
void *am_arena_alloc(am_arena *arena, size_t size);

/* A NUL-terminated copy of `len` bytes of `s`; NULL when out of memory. */
char *am_arena_strndup(am_arena *arena, const char *s, size_t len);

#endif
