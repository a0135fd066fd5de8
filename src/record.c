/*
 * Records and batches: the unit connectors hand to the run. A batch owns an
 * arena for its strings and grows its arrays geometrically.
 */
#include "acctmap/record.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void am_record_batch_init(am_record_batch *batch)
{
    memset(batch, 0, sizeof(*batch));
    am_arena_init(&batch->arena);
}

void am_record_batch_dispose(am_record_batch *batch)
{
    free(batch->records);
    free(batch->rejects);
    am_arena_dispose(&batch->arena);
    memset(batch, 0, sizeof(*batch));
}

void am_record_batch_reset(am_record_batch *batch)
{
    batch->count = 0;
    batch->reject_count = 0;
    am_arena_reset(&batch->arena);
}

am_status am_record_batch_push(am_record **out, am_record_batch *batch, am_error *err)
{
    am_record *rec;

    *out = NULL;
    if (batch->count == batch->capacity) {
        size_t cap = batch->capacity ? batch->capacity * 2 : 1024;
        am_record *grown = realloc(batch->records, cap * sizeof(*grown));
        if (!grown) {
            return am_error_set(err, AM_ENOMEM, "out of memory growing a batch to %zu records",
                                cap);
        }
        batch->records = grown;
        batch->capacity = cap;
    }
    rec = &batch->records[batch->count++];
    memset(rec, 0, sizeof(*rec));
    rec->id = rec->name = rec->domain = rec->tax_id = "";
    rec->country = rec->city = rec->owner = "";
    *out = rec;
    return AM_OK;
}

am_status am_record_batch_reject(am_record_batch *batch, uint32_t line, am_error *err,
                                 const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    char *copy;

    if (batch->reject_count == batch->reject_capacity) {
        size_t cap = batch->reject_capacity ? batch->reject_capacity * 2 : 16;
        am_reject *grown = realloc(batch->rejects, cap * sizeof(*grown));
        if (!grown) {
            return am_error_set(err, AM_ENOMEM, "out of memory recording a rejected row");
        }
        batch->rejects = grown;
        batch->reject_capacity = cap;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    copy = am_arena_strndup(&batch->arena, msg, strlen(msg));
    if (!copy) {
        return am_error_set(err, AM_ENOMEM, "out of memory recording a rejected row");
    }
    batch->rejects[batch->reject_count].line = line;
    batch->rejects[batch->reject_count].msg = copy;
    batch->reject_count++;
    return AM_OK;
}
