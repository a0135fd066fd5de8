/*
 * Store: one suite run against both backends (dir, and PostgreSQL on the test
 * server of tests/pg.sh): a committed run reads back identical; damage is
 * detected by checksums; an aborted or interrupted run is never visible; a
 * second writer is refused; secrets are kept. Then what only one backend has:
 * file modes, migrations, kills in the middle of a commit, a server that goes
 * away mid-run, and the CLI giving the same output on both stores.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "acctmap.h"
#include "acctmap/config.h"
#include "acctmap/index.h"
#include "acctmap/store.h"
#include "helpers.h"

/* ---- the backend under test ------------------------------------------------ */

static bool on_pg;      /* this group runs against PostgreSQL */
static char schema[64]; /* PostgreSQL: a fresh schema per test */
static unsigned schema_serial;

static const char *pg_uri(void)
{
    const char *uri = getenv("ACCTMAP_TEST_PG");

    if (!uri || !uri[0]) {
        fail_msg("ACCTMAP_TEST_PG is not set: run the tests with `make test` or "
                 "`tests/pg.sh run build/san/tests/test_store`");
    }
    return uri;
}

/* The password of the test server, which no message may show. */
static const char *pg_password(void)
{
    static char pass[64];
    const char *at = strchr(pg_uri() + 13, '@');
    const char *colon = strchr(pg_uri() + 13, ':');

    assert_true(at && colon && colon < at);
    snprintf(pass, sizeof(pass), "%.*s", (int)(at - colon - 1), colon + 1);
    return pass;
}

static PGconn *admin(void)
{
    PGconn *c = PQconnectdb(pg_uri());

    if (PQstatus(c) != CONNECTION_OK) {
        fail_msg("test server: %s", PQerrorMessage(c));
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

/* Run SQL on the test server; returns the first value of the first row (static) or "". */
static const char *sql(const char *text, const char *param)
{
    static char value[256];
    PGconn *c = admin();
    const char *params[1] = {param};
    PGresult *r = PQexecParams(c, text, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);

    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        fail_msg("%s: %s", text, PQresultErrorMessage(r));
    }
    value[0] = '\0';
    if (s == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        snprintf(value, sizeof(value), "%s", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    PQfinish(c);
    return value;
}

static void drop_schema(const char *name)
{
    char text[160];

    snprintf(text, sizeof(text), "DROP SCHEMA IF EXISTS \"%s\" CASCADE", name);
    sql(text, NULL);
}

static int setup(void **state)
{
    am_test_sandbox_setup(state);
    if (on_pg) {
        snprintf(schema, sizeof(schema), "t%ld_%u", (long)getpid(), ++schema_serial);
        drop_schema(schema);
    }
    return 0;
}

static int teardown(void **state)
{
    if (on_pg) {
        drop_schema(schema);
    }
    return am_test_sandbox_teardown(state);
}

static am_store *open_store(void)
{
    am_store *st = NULL;
    am_error err = {0};

    if (on_pg) {
        assert_int_equal(am_store_open_schema(&st, pg_uri(), ".", schema, &err), AM_OK);
    } else {
        assert_int_equal(am_store_open(&st, "dir:store", am_test_path(""), &err), AM_OK);
    }
    return st;
}

/* Rows of parts that belong to no committed run, as any reader sees them. */
static long pg_stray_parts(void)
{
    char text[256];

    snprintf(text, sizeof(text),
             "SELECT count(*) FROM \"%s\".parts WHERE run_key NOT IN "
             "(SELECT key FROM \"%s\".runs)",
             schema, schema);
    return strtol(sql(text, NULL), NULL, 10);
}

/* Runs being written or left behind by a writer that died, as far as a reader can see. */
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

static size_t run_count(am_store *st)
{
    char **ids = NULL;
    size_t n = 0;
    am_error err = {0};

    assert_int_equal(am_store_run_ids(&ids, &n, st, &err), AM_OK);
    am_store_run_ids_free(ids, n);
    return n;
}

/* XOR a byte of a stored part, `from_end` bytes before its end. */
static void damage_part(const char *id, const char *part, long from_end)
{
    if (on_pg) {
        char text[512], arg[128];
        /* Parts of the test runs fit in one chunk (seq 0). */
        snprintf(text, sizeof(text),
                 "UPDATE \"%s\".parts p SET data = set_byte(p.data, "
                 "length(p.data) - %ld, get_byte(p.data, length(p.data) - %ld) # 90) FROM "
                 "\"%s\".runs r WHERE r.key = p.run_key AND r.id || '/' || p.part = $1",
                 schema, from_end, from_end, schema);
        snprintf(arg, sizeof(arg), "%s/%s", id, part);
        sql(text, arg);
    } else {
        char path[512];
        size_t len = 0;
        char *data;
        snprintf(path, sizeof(path), "%s/runs/%s/%s", am_test_path("store"), id, part);
        data = am_test_read_file(path, &len);
        assert_non_null(data);
        data[len - (size_t)from_end] ^= 0x5a;
        am_test_write_file(path, data, len);
        free(data);
    }
}

static void replace_part(const char *id, const char *part, const char *text)
{
    if (on_pg) {
        char q[512], arg[128];
        snprintf(q, sizeof(q),
                 "UPDATE \"%s\".parts p SET data = convert_to('%s', 'UTF8') FROM "
                 "\"%s\".runs r WHERE r.key = p.run_key AND r.id || '/' || p.part = $1",
                 schema, text, schema);
        snprintf(arg, sizeof(arg), "%s/%s", id, part);
        sql(q, arg);
    } else {
        char path[512];
        snprintf(path, sizeof(path), "%s/runs/%s/%s", am_test_path("store"), id, part);
        am_test_write_file(path, text, strlen(text));
    }
}

/* ---- runs to store ---------------------------------------------------------- */

static const char *const names[] = {"ООО «Ромашка»", "Acme, Inc.", "Globex \"GmbH\"\nline"};

/*
 * A run of two orgs (self: `n_self` records, 3 when small; partner: 2) with its
 * index. Records are written in batches of 1000 as the batch writes them.
 */
static void make_run_n(am_run **run_out, am_index **ix_out, am_run_writer *w, int64_t ms,
                       size_t n_self)
{
    am_run *run = NULL;
    am_index *ix = NULL;
    am_error err = {0};
    static am_record recs[1000];
    static char ids[1000][16];
    size_t org, i;

    assert_int_equal(am_run_new(&run, 2, &err), AM_OK);
    run->started_ms = ms - 500;
    run->finished_ms = ms;
    run->entity_count = 3;
    run->key_count = 6;
    for (org = 0; org < 2; org++) {
        am_run_org *o = &run->orgs[org];
        size_t n = org == 0 ? n_self : 2, done;
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
        for (done = 0; done < n; done += 1000) {
            size_t k = n - done < 1000 ? n - done : 1000;
            for (i = 0; i < k; i++) {
                size_t r = done + i;
                memset(&recs[i], 0, sizeof(recs[i]));
                if (n <= 3) {
                    recs[i].id = org == 0 ? (r == 0   ? "a1"
                                             : r == 1 ? "a2"
                                                      : "a3")
                                          : (r == 0 ? "g1" : "g2");
                } else {
                    snprintf(ids[i], sizeof(ids[i]), "a%zu", r);
                    recs[i].id = ids[i];
                }
                recs[i].name = names[r % 3];
                recs[i].domain = "acme.com";
                recs[i].tax_id = "";
                recs[i].country = "RU";
                recs[i].city = "Москва";
                recs[i].owner = "";
                recs[i].line = (uint32_t)(r + 2);
                recs[i].populations = (uint32_t)(r % 3 + 1);
                recs[i].has_amount = r % 3 == 1;
                recs[i].amount_cents = r % 3 == 1 ? 123456 : 0;
                e[r] = (uint32_t)(r % 3);
                p[r] = (uint32_t)(r % 3 + 1);
            }
            assert_int_equal(am_run_writer_add_records(w, org, recs, k, &err), AM_OK);
        }
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

static void make_run(am_run **run_out, am_index **ix_out, am_run_writer *w, int64_t ms)
{
    make_run_n(run_out, ix_out, w, ms, 3);
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

/* ---- the suite both backends pass ------------------------------------------- */

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

/* Parts larger than one stored chunk (1 MiB in PostgreSQL) come back whole. */
static void test_store__large_run_round_trips(void **state)
{
    (void)state;
    am_store *st = open_store();
    am_error err = {0};
    am_run_writer *w = NULL;
    am_run *run = NULL, *loaded = NULL;
    am_index *ix = NULL, *lix = NULL;
    am_record_batch recs;

    assert_int_equal(am_store_run_begin(&w, st, &err), AM_OK);
    make_run_n(&run, &ix, w, 1795000000000, 60000); /* about 4 MiB of records */
    /* Before publishing, the writer reads its records back (ids only): several chunks + a tail. */
    am_record_batch_init(&recs);
    assert_int_equal(am_run_writer_load_record_ids(&recs, w, 0, &err), AM_OK);
    assert_int_equal(recs.count, 60000);
    assert_string_equal(recs.records[0].id, "a0");
    assert_string_equal(recs.records[59999].id, "a59999");
    assert_string_equal(recs.records[59999].name, "");
    assert_int_equal(recs.records[40000].line, 40002);
    am_record_batch_dispose(&recs);
    assert_int_equal(am_store_run_commit(w, run, ix, &err), AM_OK);
    assert_int_equal(am_store_run_load(&loaded, st, NULL, &err), AM_OK);
    assert_int_equal(loaded->orgs[0].records, 60000);
    assert_int_equal(am_store_run_load_index(&lix, st, loaded, &err), AM_OK);
    assert_int_equal(am_index_record_count(lix, 0), 60000);
    am_record_batch_init(&recs);
    assert_int_equal(am_store_run_load_records(&recs, st, loaded, 0, &err), AM_OK);
    assert_int_equal(recs.count, 60000);
    assert_string_equal(recs.records[59999].id, "a59999");
    assert_string_equal(recs.records[59999].name, names[59999 % 3]);
    assert_int_equal(recs.records[40000].line, 40002);
    if (on_pg) {
        char text[160];
        snprintf(text, sizeof(text),
                 "SELECT max(seq) FROM \"%s\".parts WHERE part = "
                 "'records-0.bin'",
                 schema);
        assert_true(strtol(sql(text, NULL), NULL, 10) >= 3); /* really in several chunks */
    }
    am_record_batch_dispose(&recs);
    am_index_free(lix);
    am_index_free(ix);
    am_run_free(loaded);
    am_run_free(run);
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

static void test_store__damaged_parts_are_refused(void **state)
{
    (void)state;
    am_store *st = open_store();
    am_error err = {0};
    am_run *run = NULL;
    am_index *ix = NULL;
    am_record_batch recs;
    char *id = commit_one(st, 1795000000000);

    assert_int_equal(am_store_run_load(&run, st, id, &err), AM_OK);

    damage_part(id, "bitmaps-1.bin", 30);
    assert_int_equal(am_store_run_load_index(&ix, st, run, &err), AM_ESTORE);
    assert_non_null(strstr(err.msg, "bitmaps-1.bin fails its checksum; the run is damaged"));
    assert_null(ix);

    damage_part(id, "records-0.bin", 40);
    am_record_batch_init(&recs);
    assert_int_equal(am_store_run_load_records(&recs, st, run, 0, &err), AM_ESTORE);
    assert_non_null(strstr(err.msg, "records-0.bin fails its checksum"));
    assert_int_equal(recs.count, 0);
    am_record_batch_dispose(&recs);
    am_run_free(run);

    replace_part(id, "run.json", "{\"orgs\": 3}");
    assert_int_equal(am_store_run_load(&run, st, id, &err), AM_ESTORE);
    assert_null(run);
    free(id);
    am_store_close(st);
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
    /* A second writer (another handle: another connection) is refused while the first writes. */
    {
        am_store *other = open_store();
        am_run_writer *w2 = NULL;
        assert_int_equal(am_store_run_begin(&w2, other, &err), AM_ESTORE);
        assert_non_null(strstr(err.msg, "another acctmap run is writing to this store"));
        assert_null(w2);
        am_store_close(other);
    }
    am_run_writer_abort(w);
    assert_int_equal(run_count(st), 1);
    if (on_pg) {
        assert_int_equal(pg_stray_parts(), 0);
    } else {
        assert_int_equal(count_entries(am_test_path("store/.tmp")), 0);
    }
    am_run_free(run);
    am_index_free(ix);
    assert_int_equal(am_store_run_load(&run, st, NULL, &err), AM_OK);
    assert_string_equal(run->id, first);
    am_run_free(run);
    free(first);
    /* The lock went with the aborted run. */
    first = commit_one(st, 1795000200000);
    assert_int_equal(run_count(st), 2);
    free(first);
    am_store_close(st);
}

/* A writer that died without commit or abort leaves nothing a reader sees. */
static void test_store__killed_run_is_invisible(void **state)
{
    (void)state;
    am_store *st = open_store();
    am_error err = {0};
    char *first = commit_one(st, 1795000000000);
    pid_t pid = fork();
    int tries;

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
    if (!on_pg) {
        assert_int_equal(count_entries(am_test_path("store/.tmp")), 1);
    } else {
        assert_int_equal(pg_stray_parts(), 0);
    }
    assert_int_equal(run_count(st), 1);
    free(first);
    /* The next run takes the store (the server may take a moment to see the death). */
    for (tries = 0; tries < 100; tries++) {
        am_run_writer *w = NULL;
        if (am_store_run_begin(&w, st, &err) == AM_OK) {
            am_run_writer_abort(w);
            break;
        }
        usleep(20000);
    }
    first = commit_one(st, 1795000300000);
    if (!on_pg) {
        assert_int_equal(count_entries(am_test_path("store/.tmp")), 0); /* swept */
    }
    assert_int_equal(run_count(st), 2);
    free(first);
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
    assert_non_null(strstr(err.msg, "no run 20990101T000000Z"));
    assert_null(run);
    am_store_close(st);
}

/* A rotated token survives the process and replaces the old one whole. */
static void test_store__secrets_are_kept_and_replaced(void **state)
{
    (void)state;
    am_store *st = open_store();
    am_error err = {0};
    char *value = NULL;

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
    assert_int_equal(am_store_secret_load(&value, st, "initech.1", &err), AM_OK);
    assert_string_equal(value, "other");
    free(value);

    /* Names that could leave the secrets' place are refused. */
    assert_int_equal(am_store_secret_save(st, "../runs", "x", &err), AM_EINTERNAL);
    assert_int_equal(am_store_secret_load(&value, st, ".hidden", &err), AM_EINTERNAL);
    assert_int_equal(am_store_secret_save(st, "", "x", &err), AM_EINTERNAL);
    am_store_close(st);
}

/* ---- dir only ---------------------------------------------------------------- */

static void test_store__dir_unwritable_path_fails_clearly(void **state)
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

static void test_store__dir_secrets_are_private(void **state)
{
    (void)state;
    am_store *st = open_store();
    am_error err = {0};
    struct stat sb;

    assert_int_equal(am_store_secret_save(st, "globex.0", "refresh-1", &err), AM_OK);
    assert_int_equal(stat(am_test_path("store/secrets/globex.0"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(am_test_path("store/secrets"), &sb), 0);
    assert_int_equal(sb.st_mode & 0077, 0);
    am_store_close(st);
}

static void test_store__uri_kinds_and_env(void **state)
{
    (void)state;
    am_store *st = NULL;
    am_error err = {0};

    assert_int_equal(am_store_open(&st, "ftp://x", ".", &err), AM_ECONFIG);
    assert_non_null(strstr(err.msg, "unknown kind"));
    unsetenv("ACCTMAP_TEST_UNSET_STORE");
    assert_int_equal(am_store_open(&st, "env:ACCTMAP_TEST_UNSET_STORE", ".", &err), AM_ECONFIG);
    assert_non_null(strstr(err.msg, "the environment variable ACCTMAP_TEST_UNSET_STORE is not "
                                    "set"));
    assert_int_equal(am_store_open(&st, "env:no-such name", ".", &err), AM_ECONFIG);
    setenv("ACCTMAP_TEST_STORE", "dir:from-env", 1);
    assert_int_equal(am_store_open(&st, "env:ACCTMAP_TEST_STORE", am_test_path(""), &err), AM_OK);
    assert_string_equal(am_store_describe(st), "dir:from-env");
    free(commit_one(st, 1795000000000));
    assert_int_equal(count_entries(am_test_path("from-env/runs")), 1);
    am_store_close(st);
    /* A value that is no store is not echoed: it could be a URI with a password. */
    setenv("ACCTMAP_TEST_STORE", "mysql://user:hunter22@db/x", 1);
    assert_int_equal(am_store_open(&st, "env:ACCTMAP_TEST_STORE", ".", &err), AM_ECONFIG);
    assert_null(strstr(err.msg, "hunter22"));
    assert_non_null(strstr(err.msg, "store env:ACCTMAP_TEST_STORE"));
    unsetenv("ACCTMAP_TEST_STORE");
}

/* The config's store fields: env:VARIABLE and store_schema, checked when the file is read. */
static void test_store__config_store_fields(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"\"store\": \"env:\"", "after env: comes the name of an environment variable"},
        {"\"store\": \"env:A-B\"", "after env: comes the name of an environment variable"},
        {"\"store\": \"mysql://x\"", "is not a store; use \"dir:PATH\", a postgresql:// URI "
                                     "or \"env:VARIABLE\""},
        {"\"store_schema\": \"Acctmap\"", "store_schema: \"Acctmap\" is not a schema name"},
        {"\"store_schema\": \"pg_x\"", "is not a schema name"},
        {"\"store_schema\": \"a\\\"; DROP\"", "is not a schema name"},
        {"\"store_schema\": 7", "store_schema"},
    };
    am_config *cfg = NULL;
    am_error err = {0};
    char json[512];
    size_t i;
    int n;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = snprintf(json, sizeof(json),
                     "{\"self\": \"a\", %s, \"orgs\": [{\"id\": \"a\", "
                     "\"sources\": [{\"type\": \"csv\", \"path\": \"a.csv\"}]}, {\"id\": "
                     "\"b\", \"sources\": [{\"type\": \"csv\", \"path\": \"b.csv\"}]}]}",
                     bad[i][0]);
        assert_int_equal(am_config_parse(&cfg, json, (size_t)n, "acctmap.json", ".", &err),
                         AM_ECONFIG);
        if (!strstr(err.msg, bad[i][1])) {
            fail_msg("%s: %s", bad[i][0], err.msg);
        }
        assert_null(cfg);
    }
    n = snprintf(json, sizeof(json),
                 "{\"self\": \"a\", \"store\": \"env:ACCTMAP_STORE\", "
                 "\"store_schema\": \"team_2\", \"orgs\": [{\"id\": \"a\", \"sources\": "
                 "[{\"type\": \"csv\", \"path\": \"a.csv\"}]}, {\"id\": \"b\", \"sources\": "
                 "[{\"type\": \"csv\", \"path\": \"b.csv\"}]}]}");
    assert_int_equal(am_config_parse(&cfg, json, (size_t)n, "acctmap.json", ".", &err), AM_OK);
    assert_string_equal(am_config_store(cfg), "env:ACCTMAP_STORE");
    assert_string_equal(am_config_store_schema(cfg), "team_2");
    am_config_free(cfg);
}

/* ---- PostgreSQL only ----------------------------------------------------------- */

static void test_store__pg_migrations_from_empty_and_again(void **state)
{
    (void)state;
    am_store *st = open_store();
    am_error err = {0};
    char text[256];
    char *id;

    /* Opening creates nothing; the first use creates the schema and its tables. */
    assert_string_equal(sql("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema), "0");
    assert_int_equal(run_count(st), 0);
    assert_string_equal(sql("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema), "1");
    snprintf(text, sizeof(text), "SELECT value FROM \"%s\".meta WHERE key = 'version'", schema);
    assert_string_equal(sql(text, NULL), "1");
    assert_string_equal(sql("SELECT string_agg(table_name, ',' ORDER BY table_name) FROM "
                            "information_schema.tables WHERE table_schema = $1",
                            schema),
                        "meta,parts,runs,secrets");
    id = commit_one(st, 1795000000000);

    /* Again, from this handle and from a new one: nothing changes, nothing is lost. */
    assert_int_equal(am_store_init(st, &err), AM_OK);
    am_store_close(st);
    st = open_store();
    assert_int_equal(am_store_init(st, &err), AM_OK);
    assert_int_equal(run_count(st), 1);
    assert_string_equal(sql(text, NULL), "1");
    free(id);

    /* A layout from a newer acctmap is left alone. */
    snprintf(text, sizeof(text), "UPDATE \"%s\".meta SET value = '7' WHERE key = 'version'",
             schema);
    sql(text, NULL);
    am_store_close(st);
    st = open_store();
    assert_int_equal(am_store_init(st, &err), AM_ESTORE);
    assert_non_null(strstr(err.msg, "newer than this acctmap's 1; use a newer acctmap"));
    am_store_close(st);

    /* Two first uses at once: one migrates, the other waits and finds it done. */
    drop_schema(schema);
    {
        pid_t pid = fork();
        int status = 0;
        assert_true(pid >= 0);
        if (pid == 0) {
            am_store *cst = NULL;
            am_error cerr = {0};
            int ok = am_store_open_schema(&cst, pg_uri(), ".", schema, &cerr) == AM_OK &&
                     am_store_init(cst, &cerr) == AM_OK;
            _exit(ok ? 0 : 1);
        }
        st = open_store();
        assert_int_equal(am_store_init(st, &err), AM_OK);
        assert_true(waitpid(pid, &status, 0) == pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_int_equal(run_count(st), 0);
        am_store_close(st);
    }
}

/* Connection failures say where and why, never with the password or the whole URI. */
static void test_store__pg_errors_hide_the_password(void **state)
{
    (void)state;
    am_store *st = NULL;
    am_error err = {0};
    char uri[512];
    const char *port = strrchr(pg_uri(), ':');

    /* A wrong password. */
    snprintf(uri, sizeof(uri), "postgresql://acctmap:wrong-pass-123@127.0.0.1%s", port);
    assert_int_equal(am_store_open_schema(&st, uri, ".", schema, &err), AM_ESTORE);
    assert_null(strstr(err.msg, "wrong-pass-123"));
    assert_non_null(strstr(err.msg, "postgresql://acctmap@127.0.0.1:"));
    assert_non_null(strstr(err.msg, "cannot connect"));
    assert_null(strchr(err.msg, '\n'));

    /* Nothing listening. */
    snprintf(uri, sizeof(uri), "postgresql://acctmap:%s@127.0.0.1:1/acctmap_test", pg_password());
    assert_int_equal(am_store_open_schema(&st, uri, ".", schema, &err), AM_ESTORE);
    assert_null(strstr(err.msg, pg_password()));
    assert_non_null(strstr(err.msg, "postgresql://acctmap@127.0.0.1:1/acctmap_test: cannot "
                                    "connect"));
    assert_null(strchr(err.msg, '\n'));

    /* A URI libpq cannot read: its reason would quote it. */
    snprintf(uri, sizeof(uri), "postgresql://acctmap:%s@127.0.0.1:x/db?foo", pg_password());
    assert_int_equal(am_store_open_schema(&st, uri, ".", schema, &err), AM_ECONFIG);
    assert_null(strstr(err.msg, pg_password()));

    /* A schema name that would need quoting is refused before anything is sent. */
    assert_int_equal(am_store_open_schema(&st, pg_uri(), ".", "Bad\"; DROP", &err), AM_ECONFIG);
    assert_non_null(strstr(err.msg, "store_schema"));

    /* Described without the password. */
    st = open_store();
    assert_null(strstr(am_store_describe(st), pg_password()));
    assert_non_null(strstr(am_store_describe(st), "/acctmap_test"));
    am_store_close(st);
}

static void test_store__pg_secrets_are_private(void **state)
{
    (void)state;
    am_store *st = open_store();
    am_error err = {0};
    char text[256];

    assert_int_equal(am_store_secret_save(st, "globex.0", "refresh-xyz", &err), AM_OK);
    sql("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'acctmap_other') "
        "THEN CREATE ROLE acctmap_other LOGIN; END IF; END $$",
        NULL);
    snprintf(text, sizeof(text), "\"%s\".secrets", schema);
    assert_string_equal(sql("SELECT has_table_privilege('acctmap_other', $1, 'SELECT')", text),
                        "f");
    /* Even a user let into the schema and its runs does not read secrets. */
    snprintf(text, sizeof(text), "GRANT USAGE ON SCHEMA \"%s\" TO acctmap_other", schema);
    sql(text, NULL);
    snprintf(text, sizeof(text), "GRANT SELECT ON ALL TABLES IN SCHEMA \"%s\" TO PUBLIC", schema);
    sql(text, NULL);
    snprintf(text, sizeof(text), "\"%s\".runs", schema);
    assert_string_equal(sql("SELECT has_table_privilege('acctmap_other', $1, 'SELECT')", text),
                        "t");
    snprintf(text, sizeof(text), "REVOKE ALL ON \"%s\".secrets FROM PUBLIC", schema);
    sql(text, NULL);
    snprintf(text, sizeof(text),
             "SELECT count(*) FROM \"%s\".parts WHERE position("
             "'refresh-xyz'::bytea IN data) > 0",
             schema);
    assert_string_equal(sql(text, NULL), "0");
    snprintf(text, sizeof(text), "SELECT count(*) FROM \"%s\".secrets", schema);
    assert_string_equal(sql(text, NULL), "1");
    am_store_close(st);
}

/*
 * Killed at points of writing a run (fork, then SIGKILL after 0 to 150 ms of
 * writing about 6 MiB): each time the run is absent, or there whole; the
 * earlier run is intact.
 */
static void test_store__pg_killed_mid_commit_leaves_no_partial_run(void **state)
{
    (void)state;
    static const int delays_ms[] = {0, 3, 10, 25, 50, 80, 150};
    am_store *st = open_store();
    am_error err = {0};
    char *first = commit_one(st, 1795000000000);
    size_t k, absent = 0, before = 1;

    for (k = 0; k < sizeof(delays_ms) / sizeof(delays_ms[0]); k++) {
        int pipefd[2];
        char byte;
        pid_t pid;
        char **ids = NULL;
        size_t n = 0, i;

        assert_int_equal(pipe(pipefd), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            am_store *cst = NULL;
            am_run_writer *w = NULL;
            am_run *run = NULL;
            am_index *ix = NULL;
            close(pipefd[0]);
            if (am_store_open_schema(&cst, pg_uri(), ".", schema, &err) != AM_OK) {
                _exit(1);
            }
            while (am_store_run_begin(&w, cst, &err) != AM_OK) {
                usleep(10000); /* the previous victim's lock, until the server sees it die */
            }
            if (write(pipefd[1], "w", 1) != 1) {
                _exit(1);
            }
            make_run_n(&run, &ix, w, 1795000100000 + (int64_t)k * 1000, 90000);
            am_store_run_commit(w, run, ix, &err);
            _exit(0);
        }
        close(pipefd[1]);
        assert_int_equal(read(pipefd[0], &byte, 1), 1);
        close(pipefd[0]);
        usleep((useconds_t)delays_ms[k] * 1000);
        kill(pid, SIGKILL);
        assert_true(waitpid(pid, NULL, 0) == pid);

        assert_int_equal(am_store_run_ids(&ids, &n, st, &err), AM_OK);
        assert_true(n >= 1);
        assert_string_equal(ids[0], first);
        for (i = 0; i < n; i++) {
            /* Every visible run, the earlier one and any the victim finished, loads whole. */
            am_run *run = NULL;
            am_index *ix = NULL;
            am_record_batch recs;
            assert_int_equal(am_store_run_load(&run, st, ids[i], &err), AM_OK);
            assert_int_equal(am_store_run_load_index(&ix, st, run, &err), AM_OK);
            am_record_batch_init(&recs);
            assert_int_equal(am_store_run_load_records(&recs, st, run, 0, &err), AM_OK);
            assert_int_equal(recs.count, i == 0 ? 3 : 90000);
            am_record_batch_dispose(&recs);
            am_index_free(ix);
            am_run_free(run);
        }
        absent += n == before;
        before = n;
        am_store_run_ids_free(ids, n);
        assert_int_equal(pg_stray_parts(), 0);
        if (k == 0) {
            /* Killed before its first chunk could be committed: surely absent. */
            assert_int_equal(n, 1);
        }
    }
    assert_true(absent >= 1);
    print_message("killed %zu times: %zu runs absent, %zu complete\n", k, absent, k - absent);
    free(first);
    am_store_close(st);
}

/* ---- the CLI on the test server ------------------------------------------------ */

static const char *acctmap_bin(void)
{
    static char bin[PATH_MAX];
    const char *env_bin = getenv("AM_TEST_BIN");

    if (env_bin && env_bin[0] == '/') {
        snprintf(bin, sizeof(bin), "%s", env_bin);
    } else {
        snprintf(bin, sizeof(bin), "%s/%s", am_test_root(),
                 env_bin ? env_bin : "build/san/acctmap");
    }
    return bin;
}

/* acctmap ARGS in `cwd`, in the background, its output into files; returns its pid. */
static pid_t spawn_acctmap(const char *cwd, const char *const *args, const char *out_path,
                           const char *err_path)
{
    const char *argv[16];
    size_t argc = 0;
    pid_t pid;

    argv[argc++] = acctmap_bin();
    while (*args && argc < 15) {
        argv[argc++] = *args++;
    }
    argv[argc] = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int errfd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || errfd < 0 || chdir(cwd) != 0 || dup2(in, 0) < 0 ||
            dup2(out, 1) < 0 || dup2(errfd, 2) < 0) {
            _exit(126);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* The demo with its store on the test server (schema of this test) as pg.json. */
static void write_pg_config(void)
{
    size_t len = 0;
    char *text = am_test_read_file(am_test_path("demo/acctmap.json"), &len);
    const char *from = "\"store\": \"dir:./acctmap-data\",";
    char *at, *out;
    char repl[160];

    assert_non_null(text);
    at = strstr(text, from);
    assert_non_null(at);
    snprintf(repl, sizeof(repl), "\"store\": \"env:ACCTMAP_STORE\", \"store_schema\": \"%s\",",
             schema);
    out = malloc(len + strlen(repl) + 1);
    memcpy(out, text, (size_t)(at - text));
    memcpy(out + (at - text), repl, strlen(repl));
    memcpy(out + (at - text) + strlen(repl), at + strlen(from),
           len - (size_t)(at - text) - strlen(from) + 1);
    am_test_write_file(am_test_path("demo/pg.json"), out, strlen(out));
    free(out);
    free(text);
    setenv("ACCTMAP_STORE", pg_uri(), 1);
}

/* Open a FIFO for writing once its reader (the run) has opened it; fails if the run dies. */
static int open_fifo_writer(const char *path, pid_t reader)
{
    int i, fd = -1;

    for (i = 0; i < 3000 && fd < 0; i++) {
        fd = open(path, O_WRONLY | O_NONBLOCK);
        if (fd < 0) {
            int status;
            assert_int_equal(errno, ENXIO);
            if (waitpid(reader, &status, WNOHANG) == reader) {
                fail_msg("acctmap run ended before it read its source (exit %d)",
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            }
            usleep(10000);
        }
    }
    assert_true(fd >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, 0), 0);
    return fd;
}

/*
 * Replace the demo's data/acme.csv with a FIFO: `acctmap run` takes the
 * store's lock, then waits on it until the test writes the file's bytes.
 */
static char *fifo_for_acme(size_t *len)
{
    char *csv = am_test_read_file(am_test_path("demo/data/acme.csv"), len);

    assert_non_null(csv);
    assert_int_equal(unlink(am_test_path("demo/data/acme.csv")), 0);
    assert_int_equal(mkfifo(am_test_path("demo/data/acme.csv"), 0600), 0);
    return csv;
}

static int wait_exit(pid_t pid)
{
    int status = 0;

    assert_true(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_store__pg_two_runs_at_once(void **state)
{
    (void)state;
    am_test_output out = {0};
    const char *args[] = {"-c", "pg.json", "run", NULL};
    const char *runs_args[] = {"-c", "pg.json", "runs", "--format", "csv", NULL};
    size_t len = 0;
    char *csv;
    pid_t pid;
    int fd;
    char out_path[PATH_MAX], err_path[PATH_MAX];

    write_pg_config();
    csv = fifo_for_acme(&len);
    snprintf(out_path, sizeof(out_path), "%s", am_test_path("run1.out"));
    snprintf(err_path, sizeof(err_path), "%s", am_test_path("run1.err"));
    pid = spawn_acctmap(am_test_path("demo"), args, out_path, err_path);
    fd = open_fifo_writer(am_test_path("demo/data/acme.csv"), pid);

    /* The first holds the store: the second fails at once, clearly, and leaves no trace. */
    assert_int_equal(am_test_run(&out, am_test_path("demo"), args), 1);
    assert_non_null(strstr(out.err, "another acctmap run is writing to this store; wait for it "
                                    "to finish"));
    assert_int_equal(am_test_count_lines(out.err), 1);
    am_test_output_dispose(&out);

    assert_int_equal(write(fd, csv, len), (ssize_t)len);
    close(fd);
    assert_int_equal(wait_exit(pid), 0);
    assert_int_equal(am_test_run(&out, am_test_path("demo"), runs_args), 0);
    assert_int_equal(am_test_count_lines(out.out), 1 + 4); /* header + one run of 4 sources */
    am_test_output_dispose(&out);
    free(csv);
}

static void test_store__pg_server_stopped_mid_run(void **state)
{
    (void)state;
    am_test_output out = {0};
    const char *args[] = {"-c", "pg.json", "run", NULL};
    const char *runs_args[] = {"-c", "pg.json", "runs", "--format", "csv", NULL};
    const char *halt[] = {"tests/pg.sh", "halt", NULL};
    const char *resume[] = {"tests/pg.sh", "resume", NULL};
    size_t len = 0;
    char *csv, *err_text;
    pid_t pid;
    int fd, code;
    char out_path[PATH_MAX], err_path[PATH_MAX];

    write_pg_config();
    /* An earlier run, which must survive. */
    assert_int_equal(am_test_run(&out, am_test_path("demo"), args), 0);
    am_test_output_dispose(&out);
    csv = fifo_for_acme(&len);
    snprintf(out_path, sizeof(out_path), "%s", am_test_path("run2.out"));
    snprintf(err_path, sizeof(err_path), "%s", am_test_path("run2.err"));
    pid = spawn_acctmap(am_test_path("demo"), args, out_path, err_path);
    fd = open_fifo_writer(am_test_path("demo/data/acme.csv"), pid);

    /* The run has begun writing; the server stops under it. */
    code = -1;
    {
        pid_t p = fork();
        assert_true(p >= 0);
        if (p == 0) {
            int nul = open("/dev/null", O_WRONLY);
            dup2(nul, 1);
            execv(halt[0], (char *const *)halt);
            _exit(127);
        }
        code = wait_exit(p);
    }
    assert_int_equal(code, 0);
    assert_int_equal(write(fd, csv, len), (ssize_t)len);
    close(fd);
    code = wait_exit(pid);
    {
        pid_t p = fork();
        assert_true(p >= 0);
        if (p == 0) {
            execv(resume[0], (char *const *)resume);
            _exit(127);
        }
        assert_int_equal(wait_exit(p), 0);
    }
    err_text = am_test_read_file(err_path, NULL);
    assert_non_null(err_text);
    assert_int_equal(code, 1);
    /* Rejected rows come first on stderr; the failure is the one last line. */
    {
        char *last = err_text + strlen(err_text);
        while (last > err_text && last[-1] == '\n') {
            *--last = '\0';
        }
        last = strrchr(err_text, '\n') ? strrchr(err_text, '\n') + 1 : err_text;
        if (strncmp(last, "acctmap: postgresql://acctmap@127.0.0.1:", 40) != 0 ||
            !strstr(last, "check that the server is up")) {
            fail_msg("last line: %s", last);
        }
        print_message("%s\n", last);
    }
    assert_null(strstr(err_text, pg_password()));
    free(err_text);

    /* Back up: the earlier run is there, the interrupted one is not. */
    assert_int_equal(am_test_run(&out, am_test_path("demo"), runs_args), 0);
    assert_int_equal(am_test_count_lines(out.out), 1 + 4);
    am_test_output_dispose(&out);
    free(csv);
}

/* Blank the first `fields` comma-separated fields of every line but the header. */
static void mask_csv(char *text, int fields)
{
    char *line = strchr(text, '\n');

    while (line && line[1]) {
        char *p = line + 1;
        int f;
        for (f = 0; f < fields && *p && *p != '\n'; f++) {
            while (*p && *p != ',' && *p != '\n') {
                *p++ = '_';
            }
            if (*p == ',') {
                p++;
            }
        }
        line = strchr(p, '\n');
    }
}

/* Replace every occurrence of `what` in `text` with '_'s. */
static void mask(char *text, const char *what)
{
    char *p;
    size_t n = strlen(what);

    while (n && (p = strstr(text, what)) != NULL) {
        memset(p, '_', n);
    }
}

static void test_store__pg_cli_output_equals_dir(void **state)
{
    (void)state;
    static const char *const verbs[][8] = {
        {"runs", "--format", "csv", NULL},
        {"matrix", NULL},
        {"matrix", "--json", NULL},
        {"accounts", "globex", "--format", "csv", NULL},
        {"accounts", "romashka", "--ours", "customers", "--theirs", "prospects", NULL},
        {"explain", "globex", "ACME-00002", "GX104025", NULL},
        {"explain", "initech", "ACME-00002", "NO-SUCH", NULL},
    };
    am_test_output dir_out = {0}, pg_out = {0};
    char dir_id[AM_RUN_ID_MAX], pg_id[AM_RUN_ID_MAX];
    size_t v;

    write_pg_config();
    {
        const char *run_dir[] = {"run", NULL};
        const char *run_pg[] = {"-c", "pg.json", "run", NULL};
        char *p;
        assert_int_equal(am_test_run(&dir_out, am_test_path("demo"), run_dir), 0);
        assert_int_equal(am_test_run(&pg_out, am_test_path("demo"), run_pg), 0);
        /* "run ID committed to STORE in S s" */
        p = strstr(dir_out.out, "run ");
        assert_non_null(p);
        assert_int_equal(sscanf(p, "run %39s committed", dir_id), 1);
        p = strstr(pg_out.out, "run ");
        assert_non_null(p);
        assert_int_equal(sscanf(p, "run %39s committed", pg_id), 1);
        assert_non_null(strstr(pg_out.out, "committed to postgresql://acctmap@127.0.0.1:"));
        assert_null(strstr(pg_out.out, pg_password()));
        assert_string_equal(dir_out.err, pg_out.err); /* the same rejected rows */
        am_test_output_dispose(&dir_out);
        am_test_output_dispose(&pg_out);
    }
    for (v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
        const char *args_dir[12], *args_pg[12];
        size_t i, n = 0;
        args_pg[n] = "-c";
        args_pg[n + 1] = "pg.json";
        for (i = 0; verbs[v][i]; i++) {
            args_dir[i] = verbs[v][i];
            args_pg[i + 2] = verbs[v][i];
        }
        args_dir[i] = NULL;
        args_pg[i + 2] = NULL;
        am_test_run(&dir_out, am_test_path("demo"), args_dir);
        am_test_run(&pg_out, am_test_path("demo"), args_pg);
        assert_int_equal(dir_out.exit_code, pg_out.exit_code);
        if (v == 0) {
            mask_csv(dir_out.out, 3); /* run id, finished, seconds */
            mask_csv(pg_out.out, 3);
        }
        mask(dir_out.out, dir_id);
        mask(pg_out.out, pg_id);
        mask(dir_out.err, dir_id);
        mask(pg_out.err, pg_id);
        if (strcmp(dir_out.out, pg_out.out) != 0 || strcmp(dir_out.err, pg_out.err) != 0) {
            fail_msg("acctmap %s differs between the stores:\n--- dir:\n%s%s\n--- pg:\n%s%s",
                     verbs[v][0], dir_out.out, dir_out.err, pg_out.out, pg_out.err);
        }
        assert_true(strlen(dir_out.out) + strlen(dir_out.err) > 20);
        am_test_output_dispose(&dir_out);
        am_test_output_dispose(&pg_out);
    }
}

#define BOTH(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest both[] = {
        BOTH(test_store__commit_then_load_round_trips),
        BOTH(test_store__large_run_round_trips),
        BOTH(test_store__same_second_gets_a_new_id),
        BOTH(test_store__damaged_parts_are_refused),
        BOTH(test_store__aborted_run_leaves_nothing),
        BOTH(test_store__killed_run_is_invisible),
        BOTH(test_store__bad_run_ids_and_empty_store),
        BOTH(test_store__secrets_are_kept_and_replaced),
    };
    const struct CMUnitTest dir_only[] = {
        BOTH(test_store__dir_unwritable_path_fails_clearly),
        BOTH(test_store__dir_secrets_are_private),
        BOTH(test_store__uri_kinds_and_env),
        BOTH(test_store__config_store_fields),
    };
    const struct CMUnitTest pg_only[] = {
        BOTH(test_store__pg_migrations_from_empty_and_again),
        BOTH(test_store__pg_errors_hide_the_password),
        BOTH(test_store__pg_secrets_are_private),
        BOTH(test_store__pg_killed_mid_commit_leaves_no_partial_run),
        BOTH(test_store__pg_two_runs_at_once),
        BOTH(test_store__pg_server_stopped_mid_run),
        BOTH(test_store__pg_cli_output_equals_dir),
    };
    int failed = 0;

    on_pg = false;
    failed += cmocka_run_group_tests_name("store (dir)", both, NULL, NULL);
    failed += cmocka_run_group_tests_name("store (dir only)", dir_only, NULL, NULL);
    on_pg = true;
    failed += cmocka_run_group_tests_name("store (postgresql)", both, NULL, NULL);
    failed += cmocka_run_group_tests_name("store (postgresql only)", pg_only, NULL, NULL);
    return failed;
}
