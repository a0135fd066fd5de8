/*
 * libFuzzer target: stored runs are untrusted. The first byte picks the
 * decoder: run.json, or a records part (past its checksum).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acctmap.h"
#include "acctmap/store.h"
#include "store_backend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    am_error err = {AM_OK, ""};

    if (size < 1) {
        return 0;
    }
    if (data[0] & 1) {
        am_run *run = NULL;
        if (am_store__run_from_json(&run, (const char *)data + 1, size - 1, "fuzz", &err) ==
            AM_OK) {
            size_t i;
            /* A loaded run is consistent: partners' matrices fit the populations. */
            for (i = 1; i < run->org_count; i++) {
                if (run->orgs[i].matrix.rows != run->orgs[0].population_count) {
                    abort();
                }
                if (run->orgs[i].pipeline.cents &&
                    (run->orgs[i].pipeline.rows != run->orgs[i].matrix.rows ||
                     run->orgs[i].pipeline.cols != run->orgs[i].matrix.cols)) {
                    abort();
                }
            }
            am_run_free(run);
        }
    } else {
        am_record_batch batch;
        uint64_t expected = size > 9 ? data[1] : 0;
        am_record_batch_init(&batch);
        if (am_store__records_decode(&batch, (const char *)data + 2 - (size < 2),
                                     size - 2 + (size < 2), expected, "fuzz", &err) == AM_OK &&
            batch.count != expected) {
            abort();
        }
        am_record_batch_dispose(&batch);
    }
    return 0;
}
