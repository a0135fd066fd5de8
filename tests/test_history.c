/*
 * History and co-selling, end to end: two runs of fixtures/history/ whose
 * inputs differ (companies added, removed, re-keyed, rows reordered, so the
 * entity ids shift while the record ids stay), then diff, the run summary's
 * new overlaps, targets, who and the open pipeline of each cell.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "acctmap.h"
#include "acctmap/index.h"
#include "acctmap/overlap.h"
#include "acctmap/store.h"
#include "helpers.h"
#include "store_backend.h"

#define RUN(out, cwd, ...)                                                     \
    do {                                                                       \
        const char *args_[] = {__VA_ARGS__, NULL};                             \
        am_test_run((out), (cwd), args_);                                      \
    } while (0)

static const char *const next_files[] = {"acme.csv", "acme-deals.csv", "globex.csv",
                                         "initech.csv", "umbrella.csv"};

/* The sandbox's history/ (am_test_path's buffers are reused: keep a copy). */
static const char *history_dir(void)
{
    static char dir[4096];

    snprintf(dir, sizeof(dir), "%s", am_test_path("history"));
    return dir;
}

/* stderr holds exactly one line, starting "acctmap: " and containing `part`. */
static void assert_one_error_line(const am_test_output *o, const char *part)
{
    if (am_test_count_lines(o->err) != 1 || strncmp(o->err, "acctmap: ", 9) != 0 ||
        !strstr(o->err, part)) {
        fail_msg("want one error line with \"%s\", got:\n%s", part, o->err);
    }
}

static void assert_output(const am_test_output *o, const char *want)
{
    if (o->exit_code != 0 || strcmp(o->out, want) != 0) {
        fail_msg("exit %d, want:\n%s\nhave:\n%s\nstderr:\n%s", o->exit_code, want, o->out,
                 o->err);
    }
}

/* Replace the inputs with fixtures/history/next/ for the second run. */
static void use_next_inputs(void)
{
    size_t i;

    for (i = 0; i < sizeof(next_files) / sizeof(next_files[0]); i++) {
        char from[256], to[256];
        size_t len = 0;
        char *text;
        snprintf(from, sizeof(from), "history/next/%s", next_files[i]);
        snprintf(to, sizeof(to), "history/data/%s", next_files[i]);
        text = am_test_read_file(am_test_path(from), &len);
        assert_non_null(text);
        am_test_write_file(am_test_path(to), text, len);
        free(text);
    }
}

/* Run once on data/, once on next/; return both run ids (static storage). */
static void two_runs(char *first, char *second, size_t cap)
{
    const char *dir = history_dir();
    am_test_output o;
    const char *p;

    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 0);
    /* The summary ends with the new overlaps: none before a first run. */
    assert_non_null(strstr(o.out, "\nnew overlaps: first run\n"));
    p = strstr(o.out, "run ");
    assert_non_null(p);
    snprintf(first, cap, "%.*s", (int)strcspn(p + 4, " "), p + 4);
    am_test_output_dispose(&o);

    use_next_inputs();
    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 0);
    p = strstr(o.out, "run ");
    snprintf(second, cap, "%.*s", (int)strcspn(p + 4, " "), p + 4);
    {
        char want[200];
        /* globex gains Aardvark; initech Abacus and Hotel (the pair of Golf Partners that
         * only moved to another of umbrella's cells is not new). */
        snprintf(want, sizeof(want),
                 "\nnew overlaps since run %s: globex 1, initech 2, umbrella 0\n", first);
        if (!strstr(o.out, want)) {
            fail_msg("want \"%s\" in:\n%s", want, o.out);
        }
    }
    am_test_output_dispose(&o);
}

/* The entity of the pair (our_id, their_id) in `partner`'s accounts of run `run`. */
static long entity_of_pair(const char *run, const char *partner, const char *ours,
                           const char *theirs)
{
    am_test_output o;
    json_t *doc, *pairs;
    size_t i;
    long entity = -1;

    RUN(&o, history_dir(), "accounts", partner, "--format", "json", "--run", run);
    assert_int_equal(o.exit_code, 0);
    doc = json_loads(o.out, 0, NULL);
    assert_non_null(doc);
    pairs = json_object_get(doc, "pairs");
    for (i = 0; i < json_array_size(pairs); i++) {
        json_t *p = json_array_get(pairs, i);
        if (strcmp(json_string_value(json_object_get(p, "our_id")), ours) == 0 &&
            strcmp(json_string_value(json_object_get(p, "their_id")), theirs) == 0) {
            entity = (long)json_integer_value(json_object_get(p, "entity"));
        }
    }
    json_decref(doc);
    am_test_output_dispose(&o);
    return entity;
}

static void test_history__diff_names_pairs_by_record_ids(void **state)
{
    (void)state;
    const char *dir = history_dir();
    char a[64], b[64];
    am_test_output o;
    json_t *doc, *cells;
    size_t i;
    bool seen = false;

    two_runs(a, b, sizeof(a));
    /* The inputs shift entity ids: a diff by entity would be wrong. */
    assert_true(entity_of_pair(a, "globex", "1", "g1") >= 0);
    assert_true(entity_of_pair(a, "globex", "1", "g1") != entity_of_pair(b, "globex", "1", "g1"));

    RUN(&o, dir, "diff", "--format", "csv");
    assert_output(&o, "partner,ours,theirs,change,our_source,our_id,our_name,their_source,"
                      "their_id,their_name,open_amount\n"
                      "globex,prospects,customers,gained,0,0,Aardvark Co,0,g0,Aardvark,\n"
                      "globex,prospects,customers,lost,0,4,Delta Air,0,g5,Delta Air,\n"
                      "initech,customers,customers,gained,0,00,Abacus Works,0,i0,Abacus "
                      "Works,\n"
                      "initech,opportunities,customers,gained,1,3,Hotel Group,0,i5,Hotel "
                      "Group,300.00\n"
                      "initech,opportunities,customers,lost,0,5,Echo Labs,0,i4,Echo Labs,"
                      "250.00\n"
                      "umbrella,prospects,customers,gained,1,2,Golf Partners,0,u3,Golf "
                      "Partners,\n"
                      "umbrella,prospects,opportunities,lost,1,2,Golf Partners,0,u3,Golf "
                      "Partners,\n");
    am_test_output_dispose(&o);

    /* The same runs named explicitly, the other way round: gains and losses swap. */
    RUN(&o, dir, "diff", b, a, "--json");
    assert_int_equal(o.exit_code, 0);
    doc = json_loads(o.out, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "run_a")), b);
    assert_string_equal(json_string_value(json_object_get(doc, "run_b")), a);
    {
        json_t *p = json_array_get(json_object_get(doc, "partners"), 1);
        assert_string_equal(json_string_value(json_object_get(p, "partner")), "initech");
        assert_int_equal(json_integer_value(json_object_get(p, "gained")), 1);
        assert_int_equal(json_integer_value(json_object_get(p, "lost")), 2);
    }
    assert_int_equal(json_array_size(json_object_get(doc, "changes")), 7);
    cells = json_object_get(doc, "cells");
    assert_int_equal(json_array_size(cells), 27); /* 3 partners x 3 x 3 */
    for (i = 0; i < json_array_size(cells); i++) {
        json_t *c = json_array_get(cells, i);
        if (strcmp(json_string_value(json_object_get(c, "partner")), "initech") == 0 &&
            strcmp(json_string_value(json_object_get(c, "ours")), "opportunities") == 0 &&
            strcmp(json_string_value(json_object_get(c, "theirs")), "customers") == 0) {
            /* Foxtrot 5000 + Echo 250 before; Foxtrot + Hotel 300 after. */
            assert_int_equal(json_integer_value(json_object_get(c, "pipeline_a_cents")),
                             530000);
            assert_int_equal(json_integer_value(json_object_get(c, "pipeline_b_cents")),
                             525000);
            assert_int_equal(json_integer_value(json_object_get(c, "gained")), 1);
            assert_int_equal(json_integer_value(json_object_get(c, "lost")), 1);
            seen = true;
        }
    }
    assert_true(seen);
    json_decref(doc);
    am_test_output_dispose(&o);

    /* The table says the same for people. */
    RUN(&o, dir, "diff");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "globex (Globex): 1 gained, 1 lost\n"));
    assert_non_null(strstr(o.out, "umbrella (Umbrella): 0 gained, 0 lost\n"));
    assert_non_null(strstr(o.out, "3 (source 1)"));
    assert_non_null(strstr(o.out, "open pipeline of our opportunities x their customers: "
                                  "5250.00 -> 5300.00\n"));
    am_test_output_dispose(&o);

    /* Delta Air changed its website: no partner has it any more. */
    RUN(&o, dir, "who", "4");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "acme/4  Delta Air  (our prospects; open amount -; owner Bob "
                                  "Stone)\nno partner has it in run "));
    am_test_output_dispose(&o);
    RUN(&o, dir, "who", "4", "--run", a, "--format", "csv");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "\n0,4,Delta Air,prospects,globex,Globex,0,g5,Delta Air,Gus "
                                  "Hale,customers\n"));
    am_test_output_dispose(&o);

    /* A run against itself: nothing changed. */
    RUN(&o, dir, "diff", a, a, "--format", "csv");
    assert_int_equal(o.exit_code, 0);
    assert_int_equal(am_test_count_lines(o.out), 1);
    am_test_output_dispose(&o);
}

static void test_history__diff_errors(void **state)
{
    (void)state;
    const char *dir = history_dir();
    am_test_output o;

    RUN(&o, dir, "diff");
    assert_int_equal(o.exit_code, 1);
    assert_one_error_line(&o, "holds 0 runs; a diff needs two");
    am_test_output_dispose(&o);

    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 0);
    am_test_output_dispose(&o);
    RUN(&o, dir, "diff");
    assert_int_equal(o.exit_code, 1);
    assert_one_error_line(&o, "holds 1 run; a diff needs two");
    am_test_output_dispose(&o);

    RUN(&o, dir, "diff", "20200101T000000Z", "20200101T000001Z");
    assert_int_equal(o.exit_code, 1);
    assert_one_error_line(&o, "no run 20200101T000000Z");
    am_test_output_dispose(&o);

    RUN(&o, dir, "diff", "../../etc", "20200101T000001Z");
    assert_int_equal(o.exit_code, 1);
    assert_one_error_line(&o, "is not a run id");
    am_test_output_dispose(&o);

    RUN(&o, dir, "diff", "20200101T000000Z");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "name two runs or none");
    am_test_output_dispose(&o);

    RUN(&o, dir, "diff", "--format", "xml");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "--format 'xml'");
    am_test_output_dispose(&o);
}

/* Each of our opportunities counts once per cell, whatever it matches. */
static void test_history__pipeline_sums_each_record_once(void **state)
{
    (void)state;
    const char *dir = history_dir();
    am_test_output o;
    json_t *doc, *globex, *want;
    char *text;
    size_t i;
    char path[512];
    char id[64];
    const char *p;

    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 0);
    p = strstr(o.out, "run ");
    snprintf(id, sizeof(id), "%.*s", (int)strcspn(p + 4, " "), p + 4);
    am_test_output_dispose(&o);

    RUN(&o, dir, "matrix", "globex", "--json");
    assert_int_equal(o.exit_code, 0);
    doc = json_loads(o.out, 0, NULL);
    assert_non_null(doc);
    globex = json_array_get(json_object_get(doc, "partners"), 0);
    /* Bravo Foods (1000.50) matches two of globex's customers: counted once. Charlie
     * Mining (700) is our customer and opportunity: in both rows. Foxtrot 5000. */
    want = json_loads("[[0,70000,0],[0,0,0],[100050,570000,0]]", 0, NULL);
    if (!json_equal(want, json_object_get(globex, "pipeline_cents"))) {
        char *have = json_dumps(json_object_get(globex, "pipeline_cents"), JSON_COMPACT);
        fail_msg("pipeline_cents: %s", have);
    }
    /* The matrix itself is unchanged by amounts. */
    json_decref(want);
    want = json_loads("[[0,1,0],[2,0,0],[1,2,0]]", 0, NULL);
    assert_true(json_equal(want, json_object_get(globex, "matrix")));
    json_decref(want);
    json_decref(doc);
    am_test_output_dispose(&o);

    RUN(&o, dir, "matrix", "globex");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "open pipeline (amounts of our opportunities in each cell):\n"));
    assert_non_null(strstr(o.out, "1000.50"));
    assert_non_null(strstr(o.out, "5700.00"));
    am_test_output_dispose(&o);

    /* A run stored before amounts (no pipeline_cents) renders as it did: no pipeline. */
    snprintf(path, sizeof(path), "history/acctmap-data/runs/%s/run.json", id);
    doc = json_load_file(am_test_path(path), 0, NULL);
    assert_non_null(doc);
    for (i = 0; i < json_array_size(json_object_get(doc, "orgs")); i++) {
        json_object_del(json_array_get(json_object_get(doc, "orgs"), i), "pipeline_cents");
    }
    text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    assert_non_null(text);
    assert_null(strstr(text, "pipeline"));
    am_test_write_file(am_test_path(path), text, strlen(text));
    free(text);
    json_decref(doc);
    RUN(&o, dir, "matrix", "globex", "--json");
    assert_int_equal(o.exit_code, 0);
    assert_null(strstr(o.out, "pipeline"));
    assert_non_null(strstr(o.out, "\"matrix\""));
    am_test_output_dispose(&o);
    RUN(&o, dir, "matrix", "globex");
    assert_int_equal(o.exit_code, 0);
    assert_null(strstr(o.out, "open pipeline"));
    am_test_output_dispose(&o);
}

/* A record part of version 1 (runs stored before records kept their source) still loads. */
static void append_u32(unsigned char *b, size_t *n, uint32_t v)
{
    b[(*n)++] = (unsigned char)v;
    b[(*n)++] = (unsigned char)(v >> 8);
    b[(*n)++] = (unsigned char)(v >> 16);
    b[(*n)++] = (unsigned char)(v >> 24);
}

static size_t record_part(unsigned char *b, bool v2, uint32_t source)
{
    const char *strings[7] = {"r1", "Acme", "acme.com", "", "US", "", "Ann"};
    size_t n = 0, i;

    memcpy(b, v2 ? "AMREC02\n" : "AMREC01\n", 8);
    n = 8;
    append_u32(b, &n, 7);          /* line */
    append_u32(b, &n, 4);          /* populations */
    if (v2) {
        append_u32(b, &n, source);
    }
    append_u32(b, &n, 12345);      /* amount, low half */
    append_u32(b, &n, 0);
    b[n++] = 1;                    /* has an amount */
    for (i = 0; i < 7; i++) {
        append_u32(b, &n, (uint32_t)strlen(strings[i]));
        memcpy(b + n, strings[i], strlen(strings[i]));
        n += strlen(strings[i]);
    }
    memcpy(b + n, "AMRECEND", 8);
    n += 8;
    append_u32(b, &n, 1);
    append_u32(b, &n, 0);
    return n;
}

static void test_history__old_record_parts_load_as_source_0(void **state)
{
    (void)state;
    unsigned char buf[256];
    am_record_batch batch;
    am_error err = {AM_OK, ""};
    size_t n;

    am_record_batch_init(&batch);
    n = record_part(buf, false, 0);
    assert_int_equal(am_store__records_decode(&batch, (const char *)buf, n, 1, "v1", &err),
                     AM_OK);
    assert_int_equal(batch.count, 1);
    assert_string_equal(batch.records[0].id, "r1");
    assert_string_equal(batch.records[0].owner, "Ann");
    assert_int_equal(batch.records[0].source, 0);
    assert_int_equal(batch.records[0].amount_cents, 12345);

    n = record_part(buf, true, 3);
    assert_int_equal(am_store__records_decode(&batch, (const char *)buf, n, 1, "v2", &err),
                     AM_OK);
    assert_int_equal(batch.records[0].source, 3);
    assert_string_equal(batch.records[0].name, "Acme");

    /* A version 1 part read as if it had sources is malformed, not misread. */
    n = record_part(buf, false, 0);
    memcpy(buf, "AMREC02\n", 8);
    assert_int_equal(am_store__records_decode(&batch, (const char *)buf, n, 1, "bad", &err),
                     AM_ESTORE);
    assert_non_null(strstr(err.msg, "bad is malformed"));
    am_record_batch_dispose(&batch);
}

static void test_history__targets_rank_by_partners(void **state)
{
    (void)state;
    const char *dir = history_dir();
    am_test_output o;
    json_t *doc, *first, *partners;

    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 0);
    am_test_output_dispose(&o);

    /* Default: our prospects and opportunities that partners have as customers; count
     * first, then id, then source (two records are "1": one per source of ours). */
    RUN(&o, dir, "targets", "--format", "csv");
    assert_output(&o, "rank,our_source,our_id,our_name,our_populations,open_amount,"
                      "partner_count,partners,their_ids\n"
                      "1,0,1,Alpha Robotics,prospects,,3,globex;initech;umbrella,"
                      "globex/g1;initech/i1;umbrella/u1\n"
                      "2,1,1,Foxtrot Steel,opportunities,5000.00,2,initech;umbrella,"
                      "initech/i3;umbrella/u2\n"
                      "3,0,2,Bravo Foods,opportunities,1000.50,1,globex,globex/g2;globex/g3\n"
                      "4,0,4,Delta Air,prospects,,1,globex,globex/g5\n"
                      "5,0,5,Echo Labs,opportunities,250.00,1,initech,initech/i4\n");
    am_test_output_dispose(&o);

    /* Other populations: our opportunities the partners have as prospects. */
    RUN(&o, dir, "targets", "--ours", "opportunities", "--theirs", "prospects", "--format",
        "csv");
    assert_output(&o, "rank,our_source,our_id,our_name,our_populations,open_amount,"
                      "partner_count,partners,their_ids\n"
                      "1,1,1,Foxtrot Steel,opportunities,5000.00,1,globex,globex/g4\n"
                      "2,0,2,Bravo Foods,opportunities,1000.50,1,initech,initech/i2\n"
                      "3,0,3,Charlie Mining,customers;opportunities,700.00,1,globex,"
                      "globex/g6\n");
    am_test_output_dispose(&o);

    RUN(&o, dir, "targets", "--json");
    assert_int_equal(o.exit_code, 0);
    doc = json_loads(o.out, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "targets")), 5);
    first = json_array_get(json_object_get(doc, "targets"), 1);
    assert_string_equal(json_string_value(json_object_get(first, "our_name")), "Foxtrot Steel");
    assert_int_equal(json_integer_value(json_object_get(first, "our_source")), 1);
    assert_int_equal(json_integer_value(json_object_get(first, "open_amount_cents")), 500000);
    partners = json_object_get(first, "partners");
    assert_int_equal(json_array_size(partners), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(partners, 1), "name")),
                        "Umbrella");
    json_decref(doc);
    am_test_output_dispose(&o);

    RUN(&o, dir, "targets");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "globex, initech, umbrella"));
    assert_non_null(strstr(o.out, "5 targets, open pipeline 6250.50\n"));
    am_test_output_dispose(&o);

    RUN(&o, dir, "targets", "--ours", "prospects,vips");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "--ours \"vips\" is not one of our populations");
    am_test_output_dispose(&o);
    RUN(&o, dir, "targets", "--theirs", "vips");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "--theirs \"vips\" is not a population of any partner");
    am_test_output_dispose(&o);
}

static void test_history__who_lists_every_partner(void **state)
{
    (void)state;
    const char *dir = history_dir();
    am_test_output o;
    json_t *doc;

    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 0);
    am_test_output_dispose(&o);

    /* Two of our records are "1" (one per source): both, each with every partner. */
    RUN(&o, dir, "who", "1", "--format", "csv");
    assert_output(&o, "our_source,our_id,our_name,our_populations,partner,partner_name,"
                      "their_source,their_id,their_name,their_owner,their_populations\n"
                      "0,1,Alpha Robotics,prospects,globex,Globex,0,g1,Alpha Robotics Inc,"
                      "Gia Park,customers\n"
                      "0,1,Alpha Robotics,prospects,initech,Initech,0,i1,Alpha Robotics,"
                      "Ida Wu,customers\n"
                      "0,1,Alpha Robotics,prospects,umbrella,Umbrella,0,u1,Alpha Robotics,,"
                      "customers\n"
                      "1,1,Foxtrot Steel,opportunities,globex,Globex,0,g4,Foxtrot Steel,"
                      "Gus Hale,prospects\n"
                      "1,1,Foxtrot Steel,opportunities,initech,Initech,0,i3,Foxtrot Steel "
                      "Corp,Ida Wu,customers\n"
                      "1,1,Foxtrot Steel,opportunities,umbrella,Umbrella,0,u2,Foxtrot Steel,"
                      "Uma Roy,customers\n");
    am_test_output_dispose(&o);

    /* "2": Bravo Foods (two records at globex, one at initech), Golf Partners (umbrella). */
    RUN(&o, dir, "who", "2", "--json");
    assert_int_equal(o.exit_code, 0);
    doc = json_loads(o.out, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "matches")), 4);
    json_decref(doc);
    am_test_output_dispose(&o);

    RUN(&o, dir, "who", "3");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "acme/3  Charlie Mining  (our customers;opportunities; open "
                                  "amount 700.00; owner Ann Lee)\n"));
    assert_non_null(strstr(o.out, "globex   g6        Charlie Mining"));
    am_test_output_dispose(&o);
    RUN(&o, dir, "who", "2");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "\nacme/2 (source 1)  Golf Partners"));
    am_test_output_dispose(&o);

    RUN(&o, dir, "who", "nope");
    assert_int_equal(o.exit_code, 2);
    assert_string_equal(o.out, "");
    assert_one_error_line(&o, "who: no record \"nope\" in acme's records of run");
    am_test_output_dispose(&o);

    RUN(&o, dir, "who");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "name one of our record ids");
    am_test_output_dispose(&o);
}

/* A partner that left the config: every pair it had is lost, and it says so. */
static void test_history__diff_partner_in_one_run_only(void **state)
{
    (void)state;
    const char *dir = history_dir();
    char path[4096];
    am_test_output o;
    json_t *doc, *cfg, *umbrella;
    size_t i;

    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 0);
    am_test_output_dispose(&o);
    snprintf(path, sizeof(path), "%s/acctmap.json", dir);
    cfg = json_load_file(path, 0, NULL);
    assert_non_null(cfg);
    json_array_remove(json_object_get(cfg, "orgs"), 3);
    assert_int_equal(json_dump_file(cfg, path, JSON_INDENT(2)), 0);
    json_decref(cfg);

    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, ": globex 0, initech 0\n"));
    am_test_output_dispose(&o);

    RUN(&o, dir, "diff", "--json");
    assert_int_equal(o.exit_code, 0);
    doc = json_loads(o.out, 0, NULL);
    assert_non_null(doc);
    umbrella = json_array_get(json_object_get(doc, "partners"), 2);
    assert_string_equal(json_string_value(json_object_get(umbrella, "partner")), "umbrella");
    assert_true(json_is_true(json_object_get(umbrella, "in_a")));
    assert_true(json_is_false(json_object_get(umbrella, "in_b")));
    assert_int_equal(json_integer_value(json_object_get(umbrella, "lost")), 3);
    assert_int_equal(json_integer_value(json_object_get(umbrella, "gained")), 0);
    for (i = 0; i < json_array_size(json_object_get(doc, "changes")); i++) {
        json_t *c = json_array_get(json_object_get(doc, "changes"), i);
        assert_string_equal(json_string_value(json_object_get(c, "partner")), "umbrella");
        assert_string_equal(json_string_value(json_object_get(c, "change")), "lost");
    }
    assert_int_equal(json_array_size(json_object_get(doc, "changes")), 3);
    json_decref(doc);
    am_test_output_dispose(&o);

    RUN(&o, dir, "diff");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "umbrella (Umbrella): 0 gained, 3 lost (not in the second "
                                  "run)\n"));
    am_test_output_dispose(&o);
}

/* The library's sums, on a hand-made index: negative amounts, and a sum that overflows. */
static void test_history__pipeline_sums_and_limits(void **state)
{
    (void)state;
    am_error err = {AM_OK, ""};
    am_index *ix = NULL;
    am_pipeline p;
    uint32_t *ent0 = malloc(3 * sizeof(uint32_t)), *pop0 = malloc(3 * sizeof(uint32_t));
    uint32_t *ent1 = malloc(2 * sizeof(uint32_t)), *pop1 = malloc(2 * sizeof(uint32_t));
    int64_t amounts[3] = {500, -200, 7};

    assert_non_null(ent0);
    assert_non_null(pop0);
    assert_non_null(ent1);
    assert_non_null(pop1);
    /* Ours: records 0 and 1 are entity 4 (opportunities; 1 also a customer), record 2
     * entity 5 (a prospect: not open pipeline). Theirs: two customers of entity 4, one
     * prospect of entity 5. */
    ent0[0] = 4, pop0[0] = 1u << 2;
    ent0[1] = 4, pop0[1] = (1u << 2) | 1u;
    ent0[2] = 5, pop0[2] = 1u << 1;
    ent1[0] = 4, pop1[0] = 1u;
    ent1[1] = 5, pop1[1] = 1u << 1;
    assert_int_equal(am_index_new(&ix, 2, &err), AM_OK);
    assert_int_equal(am_index_add_org(ix, 0, 3, ent0, pop0, 3, &err), AM_OK);
    assert_int_equal(am_index_add_org(ix, 1, 3, ent1, pop1, 2, &err), AM_OK);
    assert_int_equal(am_index_prepare_lookup(ix, 0, &err), AM_OK);
    assert_int_equal(am_overlap_pipeline_compute(&p, ix, 0, 1, 2, amounts, &err), AM_OK);
    assert_int_equal(p.rows, 3);
    assert_int_equal(p.cols, 3);
    assert_int_equal(p.cents[0 * 3 + 0], -200);   /* customers x customers: record 1 */
    assert_int_equal(p.cents[2 * 3 + 0], 300);    /* opportunities x customers: 0 and 1 */
    assert_int_equal(p.cents[1 * 3 + 1], 0);      /* a prospect is no open pipeline */
    assert_int_equal(p.cents[2 * 3 + 1], 0);
    am_pipeline_dispose(&p);

    amounts[0] = INT64_MAX;
    amounts[1] = 1;
    assert_int_equal(am_overlap_pipeline_compute(&p, ix, 0, 1, 2, amounts, &err), AM_ELIMIT);
    assert_non_null(strstr(err.msg, "does not fit in 64 bits"));
    assert_null(p.cents);
    am_index_free(ix);
}

/* Rewrite a stored records part as version 1 (no sources), with its checksum. */
static void downgrade_records_part(const char *path)
{
    size_t len = 0, in, out, f;
    unsigned char *d = (unsigned char *)am_test_read_file(path, &len);
    XXH128_canonical_t c;

    assert_non_null(d);
    assert_true(len > 40 && memcmp(d, "AMREC02\n", 8) == 0);
    memcpy(d, "AMREC01\n", 8);
    len -= 16; /* the checksum */
    in = out = 8;
    while (in < len - 16) {
        /* line, populations, [source], amount, flag, then 7 strings */
        memmove(d + out, d + in, 8);
        in += 12;
        out += 8;
        memmove(d + out, d + in, 9);
        in += 9;
        out += 9;
        for (f = 0; f < 7; f++) {
            uint32_t n = (uint32_t)d[in] | (uint32_t)d[in + 1] << 8 |
                         (uint32_t)d[in + 2] << 16 | (uint32_t)d[in + 3] << 24;
            memmove(d + out, d + in, 4 + n);
            in += 4 + n;
            out += 4 + n;
        }
    }
    assert_int_equal(in, len - 16);
    memmove(d + out, d + in, 16); /* AMRECEND and the count */
    out += 16;
    XXH128_canonicalFromHash(&c, XXH3_128bits(d, out));
    memcpy(d + out, c.digest, 16);
    am_test_write_file(path, (const char *)d, out + 16);
    free(d);
}

/*
 * A run stored by the previous version (records without sources, no pipeline)
 * still reads: listings work and a diff against a new run names its records
 * as source 0.
 */
static void test_history__runs_of_the_previous_version_still_read(void **state)
{
    (void)state;
    const char *dir = history_dir();
    char path[4096], a[64];
    am_test_output o;
    json_t *doc;
    size_t org;
    const char *p;

    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 0);
    p = strstr(o.out, "run ");
    snprintf(a, sizeof(a), "%.*s", (int)strcspn(p + 4, " "), p + 4);
    am_test_output_dispose(&o);
    for (org = 0; org < 4; org++) {
        snprintf(path, sizeof(path), "%s/acctmap-data/runs/%s/records-%zu.bin", dir, a, org);
        downgrade_records_part(path);
    }
    snprintf(path, sizeof(path), "%s/acctmap-data/runs/%s/run.json", dir, a);
    doc = json_load_file(path, 0, NULL);
    assert_non_null(doc);
    for (org = 0; org < 4; org++) {
        json_object_del(json_array_get(json_object_get(doc, "orgs"), org), "pipeline_cents");
    }
    assert_int_equal(json_dump_file(doc, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER), 0);
    json_decref(doc);

    RUN(&o, dir, "who", "2", "--format", "csv", "--run", a);
    assert_int_equal(o.exit_code, 0);
    /* Golf Partners came from our second source; the old run cannot say so. */
    assert_non_null(strstr(o.out, "\n0,2,Golf Partners,prospects,umbrella,"));
    am_test_output_dispose(&o);

    /* Against a new run, our second source's records are new records (source 1 now). */
    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, ": globex 1, initech 1, umbrella 2\n"));
    am_test_output_dispose(&o);
    RUN(&o, dir, "diff", "--format", "csv");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "\numbrella,prospects,opportunities,lost,0,2,Golf Partners,"));
    assert_non_null(strstr(o.out, "\numbrella,prospects,opportunities,gained,1,2,Golf "
                                  "Partners,"));
    am_test_output_dispose(&o);
    RUN(&o, dir, "diff");
    assert_int_equal(o.exit_code, 0);
    /* The old run has no pipeline: a cell's value appears, it did not change. */
    assert_non_null(strstr(o.out, "open pipeline of our opportunities x their customers: - -> "
                                  "1000.50\n"));
    am_test_output_dispose(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AM_TEST_SANDBOXED(test_history__diff_names_pairs_by_record_ids),
        AM_TEST_SANDBOXED(test_history__diff_errors),
        AM_TEST_SANDBOXED(test_history__pipeline_sums_each_record_once),
        AM_TEST_SANDBOXED(test_history__targets_rank_by_partners),
        AM_TEST_SANDBOXED(test_history__who_lists_every_partner),
        AM_TEST_SANDBOXED(test_history__diff_partner_in_one_run_only),
        AM_TEST_SANDBOXED(test_history__runs_of_the_previous_version_still_read),
        cmocka_unit_test(test_history__pipeline_sums_and_limits),
        cmocka_unit_test(test_history__old_record_parts_load_as_source_0),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
