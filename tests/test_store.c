/*
 * Store (dir backend): a committed run reads back identical; damage is
 * detected by checksums; an aborted or interrupted run is never visible.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "acctmap.h"
#include "acctmap/index.h"
#include "acctmap/store.h"
#include "helpers.h"

static am_store *open_store(void)
{
    am_store *st = NULL;
    am_error err = {0};

    assert_int_equal(am_store_open(&st, "dir:store", am_test_path(""), &err), AM_OK);
    return st;
}

static const char *const names[] = {"ООО «Ромашка»", "Acme, Inc.", "Globex \"GmbH\"\nline"};

/* A run of two orgs (self: 3 records, partner: 2) with its index. */
static void make_run(am_run **run_out, am_index **ix_out, am_run_writer *w, int64_t ms)
{
    am_run *run = NULL;
    am_index *ix = NULL;
    am_error err = {0};
    am_record recs[3];
    size_t org, i;

    assert_int_equal(am_run_new(&run, 2, &err), AM_OK);
    run->started_ms = ms - 500;
    run->finished_ms = ms;
    run->entity_count = 3;
    run->key_count = 6;
    for (org = 0; org < 2; org++) {
        am_run_org *o = &run->orgs[org];
        size_t n = org == 0 ? 3 : 2;
        uint32_t *e = malloc(n * sizeof(*e)), *p = malloc(n * sizeof(*p));

        o->id = org == 0 ? "acme" : "globex";
        o->name = org == 0 ? "Acme" : "Глобекс";
        o->is_self = org == 0;
        o->population_count = 3;
        o->populations[0] = "customers";
        o->populations[1] = "prospects";
        o->populations[2] = "opportunities";
        o->sources = am_arena_alloc(&run->arena, sizeof(*o->sources));
        memset(o->sources, 0, sizeof(*o->sources));
        o->source_count = 1;
        o->sources[0].type = "csv";
        o->sources[0].label = "data/x.csv";
        snprintf(o->sources[0].fingerprint, sizeof(o->sources[0].fingerprint), "%032x", 7);
        o->sources[0].records = n;
        o->records = n;
        for (i = 0; i < n; i++) {
            memset(&recs[i], 0, sizeof(recs[i]));
            recs[i].id = org == 0 ? (i == 0 ? "a1" : i == 1 ? "a2" : "a3") : (i == 0 ? "g1" : "g2");
            recs[i].name = names[i];
            recs[i].domain = "acme.com";
            recs[i].tax_id = "";
            recs[i].country = "RU";
            recs[i].city = "Москва";
            recs[i].owner = "";
            recs[i].line = (uint32_t)(i + 2);
            recs[i].populations = (uint32_t)(i + 1);
            recs[i].has_amount = i == 1;
            recs[i].amount_cents = i == 1 ? 123456 : 0;
            e[i] = (uint32_t)i;
            p[i] = (uint32_t)(i + 1);
        }
        assert_int_equal(am_run_writer_add_records(w, org, recs, n, &err), AM_OK);
        if (org == 0) {
            assert_int_equal(am_index_new(&ix, 2, &err), AM_OK);
        }
        assert_int_equal(am_index_add_org(ix, org, 3, e, p, n, &err), AM_OK);
    }
    assert_int_equal(am_overlap_matrix_compute(&run->orgs[1].matrix, ix, 0, 1, &err), AM_OK);
    run->orgs[1].overlap = 2;
    *run_out = run;
    *ix_out = ix;
}

static char *commit_one(am_store *st, int64_t ms)
{
    am_run_writer *w = NULL;
    am_run *run = NULL;
    am_index *ix = NULL;
    am_error err = {0};
    char *id;

    assert_int_equal(am_store_run_begin(&w, st, &err), AM_OK);
    make_run(&run, &ix, w, ms);
    assert_int_equal(am_run_writer_add_message(w, "x.csv:3: rejected", &err), AM_OK);
    assert_int_equal(am_store_run_commit(w, run, ix, &err), AM_OK);
    id = strdup(run->id);
    am_index_free(ix);
    am_run_free(run);
    return id;
}

static void test_store__commit_then_load_round_trips(void **state)
{
    (void)state;
    am_store *st = open_store();
    am_error err = {0};
    am_run *run = NULL;
    am_index *ix = NULL;
    am_record_batch recs;
    char *id = commit_one(st, 1795000000000);
    char *msgs = NULL;
    size_t len = 0;

    assert_string_equal(id, "20261118T110640Z");
    assert_int_equal(am_store_run_load(&run, st, NULL, &err), AM_OK);
    assert_string_equal(run->id, id);
    assert_int_equal(run->org_count, 2);
    assert_string_equal(run->orgs[1].name, "Глобекс");
    assert_int_equal(run->entity_count, 3);
    assert_int_equal(run->orgs[1].overlap, 2);
    assert_string_equal(run->orgs[0].sources[0].label, "data/x.csv");
    /* self: entity i has population bits i+1; partner the same for i < 2 */
    assert_int_equal(run->orgs[1].matrix.cells[0 * 3 + 0], 1); /* e0 (cust) & e0 */
    assert_int_equal(run->orgs[1].matrix.cells[1 * 3 + 1], 1); /* e1 (pros) & e1 */

    assert_int_equal(am_store_run_load_index(&ix, st, run, &err), AM_OK);
    assert_int_equal(am_index_record_count(ix, 0), 3);
    assert_int_equal(am_index_population_cardinality(ix, 0, 0), 2); /* e0 and e2 (pops 1, 3) */

    am_record_batch_init(&recs);
    assert_int_equal(am_store_run_load_records(&recs, st, run, 0, &err), AM_OK);
    assert_int_equal(recs.count, 3);
    assert_string_equal(recs.records[0].name, "ООО «Ромашка»");
    assert_string_equal(recs.records[2].name, "Globex \"GmbH\"\nline");
    assert_string_equal(recs.records[1].city, "Москва");
    assert_int_equal(recs.records[1].amount_cents, 123456);
    assert_true(recs.records[1].has_amount);
    assert_int_equal(recs.records[2].line, 4);
    am_record_batch_dispose(&recs);

    assert_int_equal(am_store_run_messages(&msgs, &len, st, run, &err), AM_OK);
    assert_string_equal(msgs, "x.csv:3: rejected\n");
    free(msgs);
    am_index_free(ix);
    am_run_free(run);
    free(id);
    am_store_close(st);
}

static void test_store__same_second_gets_a_new_id(void **state)
{
    (void)state;
    am_store *st = open_store();
    am_error err = {0};
    char **ids = NULL;
    size_t n = 0;
    char *a = commit_one(st, 1795000000000);
    char *b = commit_one(st, 1795000000400);

    assert_string_equal(b, "20261118T110640Z.2");
    assert_int_equal(am_store_run_ids(&ids, &n, st, &err), AM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], a);
    assert_string_equal(ids[1], b);
    am_store_run_ids_free(ids, n);
    free(a);
    free(b);
    am_store_close(st);
}

static void flip_byte(const char *path, long offset_from_end)
{
    size_t len = 0;
    char *data = am_test_read_file(path, &len);

    assert_non_null(data);
    data[len - (size_t)offset_from_end] ^= 0x5a;
    am_test_write_file(path, data, len);
    free(data);
}

static void test_store__damaged_parts_are_refused(void **state)
{
    (void)state;
    am_store *st = open_store();
    am_error err = {0};
    am_run *run = NULL;
    am_index *ix = NULL;
    am_record_batch recs;
    char *id = commit_one(st, 1795000000000);
    char path[512];

    assert_int_equal(am_store_run_load(&run, st, id, &err), AM_OK);

    snprintf(path, sizeof(path), "%s/runs/%s/bitmaps-1.bin", am_test_path("store"), id);
    flip_byte(path, 30);
    assert_int_equal(am_store_run_load_index(&ix, st, run, &err), AM_ESTORE);
    assert_non_null(strstr(err.msg, "bitmaps-1.bin fails its checksum; the run is damaged"));
    assert_null(ix);

    snprintf(path, sizeof(path), "%s/runs/%s/records-0.bin", am_test_path("store"), id);
    flip_byte(path, 40);
    am_record_batch_init(&recs);
    assert_int_equal(am_store_run_load_records(&recs, st, run, 0, &err), AM_ESTORE);
    assert_non_null(strstr(err.msg, "records-0.bin fails its checksum"));
    assert_int_equal(recs.count, 0);
    am_record_batch_dispose(&recs);
    am_run_free(run);

    snprintf(path, sizeof(path), "%s/runs/%s/run.json", am_test_path("store"), id);
    am_test_write_file(path, "{\"orgs\": 3}", 11);
    assert_int_equal(am_store_run_load(&run, st, id, &err), AM_ESTORE);
    assert_null(run);
    free(id);
    am_store_close(st);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    if (!d) {
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

static void test_store__aborted_run_leaves_nothing(void **state)
{
    (void)state;
    am_store *st = open_store();
    am_error err = {0};
    am_run_writer *w = NULL;
    am_run *run = NULL;
    am_index *ix = NULL;
    char *first = commit_one(st, 1795000000000);

    assert_int_equal(am_store_run_begin(&w, st, &err), AM_OK);
    make_run(&run, &ix, w, 1795000100000);
    /* A second writer is refused while the first holds the lock. */
    {
        am_store *other = open_store();
        am_run_writer *w2 = NULL;
        assert_int_equal(am_store_run_begin(&w2, other, &err), AM_ESTORE);
        assert_non_null(strstr(err.msg, "another acctmap run is writing to this store"));
        am_store_close(other);
    }
    am_run_writer_abort(w);
    assert_int_equal(count_entries(am_test_path("store/runs")), 1);
    assert_int_equal(count_entries(am_test_path("store/.tmp")), 0);
    am_run_free(run);
    am_index_free(ix);
    assert_int_equal(am_store_run_load(&run, st, NULL, &err), AM_OK);
    assert_string_equal(run->id, first);
    am_run_free(run);
    free(first);
    am_store_close(st);
}

/* A writer that died (killed process) leaves a .tmp directory: invisible, then swept. */
static void test_store__killed_run_is_invisible_and_swept(void **state)
{
    (void)state;
    am_store *st = open_store();
    am_error err = {0};
    char **ids = NULL;
    size_t n = 0;
    char *first = commit_one(st, 1795000000000);
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        am_run_writer *w = NULL;
        am_run *run = NULL;
        am_index *ix = NULL;
        if (am_store_run_begin(&w, st, &err) == AM_OK) {
            make_run(&run, &ix, w, 1795000200000);
        }
        _exit(0); /* dies with the run half written, without commit or abort */
    }
    assert_true(waitpid(pid, NULL, 0) == pid);
    assert_int_equal(count_entries(am_test_path("store/.tmp")), 1);
    assert_int_equal(am_store_run_ids(&ids, &n, st, &err), AM_OK);
    assert_int_equal(n, 1);
    am_store_run_ids_free(ids, n);
    free(first);
    first = commit_one(st, 1795000300000);
    assert_int_equal(count_entries(am_test_path("store/.tmp")), 0);
    assert_int_equal(count_entries(am_test_path("store/runs")), 2);
    free(first);
    am_store_close(st);
}

static void test_store__unwritable_path_fails_clearly(void **state)
{
    (void)state;
    am_store *st = NULL;
    am_error err = {0};
    am_run_writer *w = NULL;

    if (geteuid() == 0) {
        /* root ignores permissions: use a path under a regular file instead. */
        am_test_write_file(am_test_path("file"), "x", 1);
        assert_int_equal(am_store_open(&st, "dir:file/store", am_test_path(""), &err), AM_OK);
    } else {
        assert_int_equal(mkdir(am_test_path("ro"), 0555), 0);
        assert_int_equal(am_store_open(&st, "dir:ro/store", am_test_path(""), &err), AM_OK);
    }
    assert_int_equal(am_store_run_begin(&w, st, &err), AM_EIO);
    assert_non_null(strstr(err.msg, "cannot create directory"));
    assert_non_null(strstr(err.msg, "check the store path and its permissions"));
    assert_null(w);
    am_store_close(st);
}

static void test_store__bad_run_ids_and_empty_store(void **state)
{
    (void)state;
    am_store *st = open_store();
    am_error err = {0};
    am_run *run = NULL;

    assert_int_equal(am_store_run_load(&run, st, NULL, &err), AM_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no run yet; start one with `acctmap run`"));
    assert_int_equal(am_store_run_load(&run, st, "../../etc", &err), AM_ENOTFOUND);
    assert_int_equal(am_store_run_load(&run, st, "20990101T000000Z", &err), AM_ENOTFOUND);
    assert_null(run);
    am_store_close(st);
    assert_int_equal(am_store_open(&st, "postgresql://x", ".", &err), AM_ECONFIG);
}

/* A rotated token survives the process, replaces the old one whole, and is the owner's only. */
static void test_store__secrets_are_kept_replaced_and_private(void **state)
{
    (void)state;
    am_store *st = open_store();
    am_error err = {0};
    char *value = NULL;
    struct stat sb;

    assert_int_equal(am_store_secret_load(&value, st, "globex.0", &err), AM_ENOTFOUND);
    assert_null(value);
    assert_int_equal(am_store_secret_save(st, "globex.0", "refresh-1", &err), AM_OK);
    assert_int_equal(am_store_secret_save(st, "globex.0", "refresh-2", &err), AM_OK);
    assert_int_equal(am_store_secret_save(st, "initech.1", "other", &err), AM_OK);
    am_store_close(st);

    st = open_store();
    assert_int_equal(am_store_secret_load(&value, st, "globex.0", &err), AM_OK);
    assert_string_equal(value, "refresh-2");
    free(value);
    assert_int_equal(stat(am_test_path("store/secrets/globex.0"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(am_test_path("store/secrets"), &sb), 0);
    assert_int_equal(sb.st_mode & 0077, 0);

    /* Names that could leave the secrets directory are refused. */
    assert_int_equal(am_store_secret_save(st, "../runs", "x", &err), AM_EINTERNAL);
    assert_int_equal(am_store_secret_load(&value, st, ".hidden", &err), AM_EINTERNAL);
    assert_int_equal(am_store_secret_save(st, "", "x", &err), AM_EINTERNAL);
    am_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AM_TEST_SANDBOXED(test_store__commit_then_load_round_trips),
        AM_TEST_SANDBOXED(test_store__same_second_gets_a_new_id),
        AM_TEST_SANDBOXED(test_store__damaged_parts_are_refused),
        AM_TEST_SANDBOXED(test_store__aborted_run_leaves_nothing),
        AM_TEST_SANDBOXED(test_store__killed_run_is_invisible_and_swept),
        AM_TEST_SANDBOXED(test_store__unwritable_path_fails_clearly),
        AM_TEST_SANDBOXED(test_store__bad_run_ids_and_empty_store),
        AM_TEST_SANDBOXED(test_store__secrets_are_kept_replaced_and_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
