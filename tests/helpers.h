/*
 * Test helpers shared by every tests/test_*.c: fixture sandboxes, guarded
 * parser input, running the built acctmap, reading and writing files.
 */
#ifndef AM_TEST_HELPERS_H
#define AM_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "acctmap/config.h"
#include "acctmap/record.h"

/*
 * Copy the repository's fixtures/ into a fresh mkdtemp directory and return
 * its path (static storage, valid until am_test_sandbox_cleanup, which
 * removes it). One sandbox at a time.
 */
const char *am_test_sandbox(void);
void am_test_sandbox_cleanup(void);

/* cmocka setup/teardown that make a sandbox for each test and remove it after. */
int am_test_sandbox_setup(void **state);
int am_test_sandbox_teardown(void **state);
#define AM_TEST_SANDBOXED(f)                                                                       \
    cmocka_unit_test_setup_teardown(f, am_test_sandbox_setup, am_test_sandbox_teardown)

/* "sandbox/rel", in a static ring of buffers (valid for the next 8 calls). */
const char *am_test_path(const char *rel);

/*
 * A copy of `len` bytes placed so that the byte after the last one is on a
 * PROT_NONE page: any over-read crashes. Free with am_test_guarded_free.
 */
const char *am_test_guarded(const void *data, size_t len);
void am_test_guarded_free(const char *p);

/* Whole file into a NUL-terminated malloc'd buffer (NULL if unreadable). */
char *am_test_read_file(const char *path, size_t *len_out);
/* Write (create or truncate) a file; fails the test on error. */
void am_test_write_file(const char *path, const char *data, size_t len);

/* What a run of the acctmap binary printed. */
typedef struct am_test_output {
    int exit_code; /* -1 when killed by a signal */
    char *out;     /* stdout, NUL-terminated */
    char *err;     /* stderr */
} am_test_output;

/*
 * Run the acctmap binary under test (AM_TEST_BIN, default build/san/acctmap,
 * made absolute) in `cwd` with `args` (NULL-terminated, without argv[0]).
 * stdin is /dev/null. Returns the exit code, also stored in `out`.
 */
int am_test_run(am_test_output *out, const char *cwd, const char *const *args);
void am_test_output_dispose(am_test_output *out);

/* Number of lines in `s` (a final line without '\n' counts). */
size_t am_test_count_lines(const char *s);

/* The repository root (where the tests were started: tests/run.sh runs them from there). */
const char *am_test_root(void);

/*
 * A source's progress callback (am_source_env.progress) that appends each
 * line, and a newline when the source is done, to the malloc'd text at
 * *(char **)ctx. The caller frees it.
 */
void am_test_progress_collect(void *ctx, const char *line, bool done);

/* `text` with every `token` replaced by `value`, into `out` (fails the test when too long). */
void am_test_replace(char *out, size_t cap, const char *text, const char *token, const char *value);

/* ---- what a source gave (the CRM connector tests) ------------------------- */

/* A record copied out of its batch, so it outlives the batch. */
typedef struct am_test_record {
    char *id, *name, *domain, *tax_id, *country, *city, *owner;
    int64_t amount_cents;
    bool has_amount;
    uint32_t populations;
} am_test_record;

/* Everything one source gave, read to the end or to its first failure. Zeroed is empty. */
typedef struct am_test_pull {
    am_status rc;
    char msg[512];
    char label[256];
    am_test_record *records;
    size_t count;
    char **rejects; /* the rejects' messages */
    size_t reject_count;
} am_test_pull;

/* What every kept record must hold (flags of `expect`). */
#define AM_TEST_NO_TAX_ID 1u /* tax_id is "": the CRM has none */
#define AM_TEST_NO_PLACE 2u  /* country and city are "": the connector reads none */

/* strdup that fails the test when out of memory. */
char *am_test_strdup(const char *s);

/* Keep a copy of `in`, asserting `expect`. */
void am_test_pull_keep_record(am_test_pull *r, const am_record *in, unsigned expect);

/* Keep copies of a batch's records (asserting `expect`) and of its reject messages. */
void am_test_pull_keep_batch(am_test_pull *r, const am_record_batch *batch, unsigned expect);

void am_test_pull_dispose(am_test_pull *r);

/* The kept record of `id`; fails the test when there is none. */
const am_test_record *am_test_pull_find(const am_test_pull *r, const char *id);

/*
 * A config whose self org "acme" reads acme.csv and whose partner "globex"
 * has one source {"type": `type`, <fields>}; fails the test when it does not parse.
 */
am_config *am_test_partner_config(const char *type, const char *fields);

/* The bit of population `name` in org `org`; fails the test when it has none. */
uint32_t am_test_pop_bit(const am_config *cfg, const char *org, const char *name);

/* A fake CRM fixture file, <fixtures>/<crm>/<name>, read whole; fails the test when unreadable. */
char *am_test_crm_fixture(const char *crm, const char *name, size_t *len);

#endif
