/*
 * Arena: bump allocation in chunks for the strings of a batch or a run, freed
 * in one call. ARENA_DEBUG makes every allocation its own malloc for ASan.
 */
#include "acctmap/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN (64 * 1024)
#define ALIGN 16

struct am_arena_chunk {
    am_arena_chunk *next;
    size_t size;
    _Alignas(ALIGN) unsigned char data[];
};

void am_arena_init(am_arena *arena)
{
    memset(arena, 0, sizeof(*arena));
}

void am_arena_dispose(am_arena *arena)
{
    am_arena_chunk *c = arena->head;

    while (c) {
        am_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    memset(arena, 0, sizeof(*arena));
}

void am_arena_reset(am_arena *arena)
{
#ifdef ARENA_DEBUG
    am_arena_dispose(arena);
#else
    am_arena_chunk *keep = arena->head;

    if (!keep) {
        return;
    }
    /* Keep the newest (largest) chunk, free the rest. */
    am_arena_chunk *c = keep->next;
    while (c) {
        am_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    keep->next = NULL;
    arena->used = 0;
    arena->total = 0;
#endif
}

void *am_arena_alloc(am_arena *arena, size_t size)
{
    size_t aligned = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    am_arena_chunk *c = arena->head;

    if (aligned < size) {
        return NULL; /* overflow */
    }
#ifdef ARENA_DEBUG
    c = malloc(sizeof(*c) + size);
    if (!c) {
        return NULL;
    }
    c->size = size;
    c->next = arena->head;
    arena->head = c;
    arena->total += size;
    return c->data;
#else
    /* Strings are packed unaligned: round up before handing out aligned memory. */
    if (c) {
        arena->used = (arena->used + ALIGN - 1) & ~(size_t)(ALIGN - 1);
        if (arena->used > c->size) {
            arena->used = c->size;
        }
    }
    if (!c || c->size - arena->used < aligned) {
        size_t want = aligned > CHUNK_MIN ? aligned : CHUNK_MIN;
        if (c && c->size * 2 > want && c->size < 16 * 1024 * 1024) {
            want = c->size * 2;
        }
        if (want > SIZE_MAX - sizeof(*c)) {
            return NULL;
        }
        c = malloc(sizeof(*c) + want);
        if (!c) {
            return NULL;
        }
        c->size = want;
        c->next = arena->head;
        arena->head = c;
        arena->used = 0;
    }
    void *p = c->data + arena->used;
    arena->used += aligned;
    arena->total += size;
    return p;
#endif
}

char *am_arena_strndup(am_arena *arena, const char *s, size_t len)
{
    char *p;

    if (len == SIZE_MAX) {
        return NULL;
    }
#ifdef ARENA_DEBUG
    p = am_arena_alloc(arena, len + 1);
#else
    /* Strings need no alignment: pack them. */
    am_arena_chunk *c = arena->head;
    if (c && c->size - arena->used >= len + 1) {
        p = (char *)c->data + arena->used;
        arena->used += len + 1;
        arena->total += len + 1;
    } else {
        p = am_arena_alloc(arena, len + 1);
    }
#endif
    if (!p) {
        return NULL;
    }
    if (len) {
        memcpy(p, s, len);
    }
    p[len] = '\0';
    return p;
}
