/*
 * End to end: the built acctmap on the bundled demo and on broken inputs,
 * checking stdout, the exit code and the one stderr line.
 */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#include "helpers.h"

#define RUN(out, cwd, ...)                                                     \
    do {                                                                       \
        const char *args_[] = {__VA_ARGS__, NULL};                             \
        am_test_run((out), (cwd), args_);                                      \
    } while (0)

static json_t *load_json(const char *path)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);

    if (!doc) {
        fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
    }
    return doc;
}

/* stderr holds exactly one line, starting "acctmap: " and containing `part`. */
static void assert_one_error_line(const am_test_output *o, const char *part)
{
    if (am_test_count_lines(o->err) != 1 || strncmp(o->err, "acctmap: ", 9) != 0 ||
        !strstr(o->err, part)) {
        fail_msg("want one error line with \"%s\", got:\n%s", part, o->err);
    }
}

static void test_cli__demo_matrices_are_the_expected_ones(void **state)
{
    (void)state;
    const char *demo = am_test_path("demo");
    am_test_output o;
    json_t *expected = load_json(am_test_path("demo/expected.json"));
    json_t *got, *rejected;
    size_t i;
    const char *org;
    json_t *n;

    RUN(&o, demo, "run");
    if (o.exit_code != 0) {
        fail_msg("run failed: %s", o.err);
    }
    assert_non_null(strstr(o.out, "committed to dir:./acctmap-data"));
    /* Every rejected row the demo holds on purpose is reported with its line. */
    rejected = json_object_get(expected, "rejected");
    json_object_foreach(rejected, org, n) {
        char want[128];
        size_t lines = 0;
        const char *p = o.err;
        snprintf(want, sizeof(want), "acctmap: rejected: data/%s.csv:", org);
        while ((p = strstr(p, want)) != NULL) {
            lines++;
            p++;
        }
        assert_int_equal(lines, (size_t)json_integer_value(n));
    }
    am_test_output_dispose(&o);

    RUN(&o, demo, "matrix", "--json");
    assert_int_equal(o.exit_code, 0);
    got = json_loads(o.out, 0, NULL);
    assert_non_null(got);
    assert_string_equal(json_string_value(json_object_get(got, "self")), "acme");
    assert_non_null(json_string_value(json_object_get(got, "run")));
    for (i = 0; i < json_array_size(json_object_get(expected, "partners")); i++) {
        json_t *want = json_array_get(json_object_get(expected, "partners"), i);
        json_t *have = json_array_get(json_object_get(got, "partners"), i);
        if (!json_equal(json_object_get(want, "matrix"), json_object_get(have, "matrix")) ||
            !json_equal(json_object_get(want, "partner"), json_object_get(have, "partner")) ||
            !json_equal(json_object_get(want, "theirs"), json_object_get(have, "theirs"))) {
            char *w = json_dumps(want, JSON_COMPACT), *h = json_dumps(have, JSON_COMPACT);
            fail_msg("partner %zu:\nwant %s\nhave %s", i, w, h);
        }
    }
    assert_int_equal(json_array_size(json_object_get(got, "partners")),
                     json_array_size(json_object_get(expected, "partners")));
    json_decref(got);
    am_test_output_dispose(&o);

    /* One partner only, as a table. */
    RUN(&o, demo, "matrix", "globex");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "their customers"));
    assert_non_null(strstr(o.out, "our opportunities"));
    assert_null(strstr(o.out, "romashka ("));
    am_test_output_dispose(&o);
    json_decref(expected);
}

/* Sorted "partner,our_id,their_id,matched_by" lines from expected_pairs.csv (header dropped). */
static int compare_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t split_lines(char **lines, size_t cap, char *text)
{
    size_t n = 0;
    char *save = text, *nl;

    while (*save && n < cap) {
        nl = strchr(save, '\n');
        if (nl) {
            *nl = '\0';
        }
        if (*save) {
            lines[n++] = save;
        }
        if (!nl) {
            break;
        }
        save = nl + 1;
    }
    qsort(lines, n, sizeof(*lines), compare_lines);
    return n;
}

static void test_cli__demo_accounts_are_the_expected_pairs(void **state)
{
    (void)state;
    const char *demo = am_test_path("demo");
    const char *partners[] = {"globex", "romashka", "initech"};
    size_t want_len = 0, p;
    char *want_text = am_test_read_file(am_test_path("demo/expected_pairs.csv"), &want_len);
    char *got_text = calloc(1, 1 << 20);
    size_t got_len = 0;
    am_test_output o;
    static char *want_lines[8192], *got_lines[8192];
    size_t nw, ng, i;

    assert_non_null(want_text);
    RUN(&o, demo, "run");
    assert_int_equal(o.exit_code, 0);
    am_test_output_dispose(&o);
    for (p = 0; p < 3; p++) {
        char *line, *next;
        RUN(&o, demo, "accounts", partners[p], "--format", "csv");
        assert_int_equal(o.exit_code, 0);
        assert_true(strncmp(o.out, "our_id,their_id,entity,", 23) == 0);
        /* Rows: our_id,their_id,entity,our_name,their_name,matched_by,... -> keep ids and
         * matched_by. Names in the demo are quoted when they hold commas; parse simply. */
        line = strchr(o.out, '\n') + 1;
        for (; *line; line = next) {
            char *fields[9];
            size_t f = 0;
            char *c = line;
            next = strchr(line, '\n');
            next = next ? next + 1 : line + strlen(line);
            while (f < 9 && c < next) {
                fields[f++] = c;
                if (*c == '"') {
                    c++;
                    while (c < next && !(*c == '"' && c[1] != '"')) {
                        c += *c == '"' ? 2 : 1;
                    }
                    c++;
                } else {
                    while (c < next && *c != ',' && *c != '\n') {
                        c++;
                    }
                }
                c++;
            }
            assert_int_equal(f, 9);
            got_len += (size_t)snprintf(got_text + got_len, (1 << 20) - got_len,
                                        "%s,%.*s,%.*s,%.*s\n", partners[p],
                                        (int)(fields[1] - fields[0] - 1), fields[0],
                                        (int)(fields[2] - fields[1] - 1), fields[1],
                                        (int)(fields[6] - fields[5] - 1), fields[5]);
        }
        am_test_output_dispose(&o);
    }
    nw = split_lines(want_lines, 8192, strchr(want_text, '\n') + 1);
    ng = split_lines(got_lines, 8192, got_text);
    for (i = 0; i < nw && i < ng; i++) {
        if (strcmp(want_lines[i], got_lines[i]) != 0) {
            fail_msg("pair %zu: want %s, have %s", i, want_lines[i], got_lines[i]);
        }
    }
    assert_int_equal(ng, nw);
    free(want_text);
    free(got_text);
}

/* The entities in accounts --ours X --theirs Y are the matrix cell. */
static void test_cli__accounts_filters_agree_with_the_matrix(void **state)
{
    (void)state;
    const char *demo = am_test_path("demo");
    am_test_output o;
    json_t *m, *partner, *pairs;
    size_t i, j, k;

    RUN(&o, demo, "run");
    assert_int_equal(o.exit_code, 0);
    am_test_output_dispose(&o);
    RUN(&o, demo, "matrix", "romashka", "--json");
    m = json_loads(o.out, 0, NULL);
    assert_non_null(m);
    am_test_output_dispose(&o);
    partner = json_array_get(json_object_get(m, "partners"), 0);
    for (i = 0; i < 3; i++) {
        for (j = 0; j < 3; j++) {
            const char *ours = json_string_value(json_array_get(json_object_get(partner, "ours"), i));
            const char *theirs =
                json_string_value(json_array_get(json_object_get(partner, "theirs"), j));
            json_int_t cell = json_integer_value(
                json_array_get(json_array_get(json_object_get(partner, "matrix"), i), j));
            json_t *doc, *seen = json_object();
            RUN(&o, demo, "accounts", "romashka", "--ours", ours, "--theirs", theirs, "--format",
                "json");
            assert_int_equal(o.exit_code, 0);
            doc = json_loads(o.out, 0, NULL);
            assert_non_null(doc);
            pairs = json_object_get(doc, "pairs");
            for (k = 0; k < json_array_size(pairs); k++) {
                json_t *row = json_array_get(pairs, k);
                char key[32];
                assert_non_null(strstr(json_string_value(json_object_get(row, "our_populations")),
                                       ours));
                assert_non_null(strstr(
                    json_string_value(json_object_get(row, "their_populations")), theirs));
                snprintf(key, sizeof(key), "%lld",
                         (long long)json_integer_value(json_object_get(row, "entity")));
                json_object_set_new(seen, key, json_true());
            }
            assert_int_equal(json_object_size(seen), (size_t)cell);
            json_decref(seen);
            json_decref(doc);
            am_test_output_dispose(&o);
        }
    }
    json_decref(m);
}

static void test_cli__runs_lists_each_run_with_fingerprints(void **state)
{
    (void)state;
    const char *demo = am_test_path("demo");
    am_test_output o;
    json_t *doc, *runs, *a, *b;

    RUN(&o, demo, "runs");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "No runs yet"));
    am_test_output_dispose(&o);
    RUN(&o, demo, "run");
    am_test_output_dispose(&o);
    RUN(&o, demo, "run");
    am_test_output_dispose(&o);
    RUN(&o, demo, "runs", "--format", "json");
    assert_int_equal(o.exit_code, 0);
    doc = json_loads(o.out, 0, NULL);
    assert_non_null(doc);
    runs = json_object_get(doc, "runs");
    assert_int_equal(json_array_size(runs), 2);
    a = json_array_get(runs, 0);
    b = json_array_get(runs, 1);
    assert_true(strcmp(json_string_value(json_object_get(a, "run")),
                       json_string_value(json_object_get(b, "run"))) < 0);
    /* Same inputs, same fingerprints. */
    assert_true(json_equal(json_object_get(a, "inputs"), json_object_get(b, "inputs")));
    assert_int_equal(strlen(json_string_value(json_object_get(
                         json_array_get(json_object_get(a, "inputs"), 0), "fingerprint"))),
                     32);
    json_decref(doc);
    am_test_output_dispose(&o);
    RUN(&o, demo, "runs");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "acme/csv "));
    am_test_output_dispose(&o);
}

static void write_text(const char *path, const char *text)
{
    am_test_write_file(path, text, strlen(text));
}

static void write_config(const char *dir, const char *store, const char *acme, const char *partner)
{
    char path[512], text[2048];

    snprintf(path, sizeof(path), "%s/acctmap.json", dir);
    snprintf(text, sizeof(text),
             "{\"self\": \"acme\", \"store\": \"%s\", \"orgs\": ["
             "{\"id\": \"acme\", \"sources\": [{\"type\": \"csv\", \"path\": \"%s\"}]},"
             "{\"id\": \"beta\", \"sources\": [{\"type\": \"csv\", \"path\": \"%s\"}]}]}",
             store, acme, partner);
    am_test_write_file(path, text, strlen(text));
}

static void test_cli__bad_config_exits_2_with_one_line(void **state)
{
    (void)state;
    const char *dir = am_test_path("");
    am_test_output o;
    char path[512];

    snprintf(path, sizeof(path), "%s/acctmap.json", dir);
    write_text(path, "{ not json");
    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "acctmap.json:1:");
    am_test_output_dispose(&o);

    write_text(path, "{\"self\": \"zeta\", \"orgs\": [{\"id\": \"acme\", \"sources\": [{"
                             "\"type\": \"csv\", \"path\": \"a.csv\"}]}, {\"id\": \"b\", "
                             "\"sources\": [{\"type\": \"csv\", \"path\": \"b.csv\"}]}]}");
    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "acctmap.json.self: \"zeta\" is not the id of any org");
    am_test_output_dispose(&o);

    write_text(path, "{\"self\": \"acme\", \"orgs\": [{\"id\": \"acme\", \"sources\": [{"
                             "\"type\": \"excel\", \"path\": \"a.csv\"}]}, {\"id\": \"b\", "
                             "\"sources\": [{\"type\": \"csv\", \"path\": \"b.csv\"}]}]}");
    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "orgs[0].sources[0].type: unknown source type \"excel\"; use one "
                              "of: csv");
    am_test_output_dispose(&o);

    RUN(&o, dir, "-c", "missing.json", "matrix");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "missing.json: cannot open the config");
    am_test_output_dispose(&o);
}

static void test_cli__unreadable_source_commits_nothing(void **state)
{
    (void)state;
    const char *dir = am_test_path("demo");
    am_test_output o;
    json_t *doc;

    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 0);
    am_test_output_dispose(&o);

    /* A partner file that ends inside a quoted field cannot be read to its end. */
    write_config(dir, "dir:./acctmap-data", "data/acme.csv", "../csv/unterminated.csv");
    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 1);
    assert_non_null(strstr(o.err, "acctmap: source beta/csv: ../csv/unterminated.csv:"));
    assert_non_null(strstr(o.err, "unterminated"));
    am_test_output_dispose(&o);

    write_config(dir, "dir:./acctmap-data", "data/acme.csv", "data/nonexistent.csv");
    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 1);
    assert_one_error_line(&o, "source beta/csv: data/nonexistent.csv");
    am_test_output_dispose(&o);

    RUN(&o, dir, "runs", "--format", "json");
    doc = json_loads(o.out, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "runs")), 1);
    json_decref(doc);
    am_test_output_dispose(&o);
}

/* Big enough that a run takes a while under the sanitizers. */
static void write_big_csv(const char *path, size_t rows)
{
    FILE *f = fopen(path, "w");
    size_t i;

    assert_non_null(f);
    fputs("id,name,domain,tax_id,country,status\n", f);
    for (i = 0; i < rows; i++) {
        fprintf(f, "r%zu,Company %zu,https://www.c%zu.example.com/,,US,%s\n", i, i, i % 50000,
                i % 3 == 0 ? "customer" : "prospect");
    }
    fclose(f);
}

static size_t run_count(const char *dir)
{
    am_test_output o;
    json_t *doc;
    size_t n;

    RUN(&o, dir, "runs", "--format", "json");
    assert_int_equal(o.exit_code, 0);
    doc = json_loads(o.out, 0, NULL);
    assert_non_null(doc);
    n = json_array_size(json_object_get(doc, "runs"));
    json_decref(doc);
    am_test_output_dispose(&o);
    return n;
}

/* True once a run has created its hidden directory and started writing records. */
static bool run_in_progress(const char *dir)
{
    char path[1024];
    DIR *d;
    struct dirent *e;
    bool found = false;

    snprintf(path, sizeof(path), "%s/acctmap-data/.tmp", dir);
    d = opendir(path);
    if (!d) {
        return false;
    }
    while (!found && (e = readdir(d)) != NULL) {
        char records[1400];
        struct stat sb;
        snprintf(records, sizeof(records), "%s/%s/records-0.bin", path, e->d_name);
        found = e->d_name[0] != '.' && stat(records, &sb) == 0;
    }
    closedir(d);
    return found;
}

/*
 * kill -9 at several points of a run (timed from when it starts writing):
 * the earlier run stays the latest and nothing half-written shows.
 */
static void test_cli__killed_run_leaves_previous_runs_intact(void **state)
{
    (void)state;
    const char *dir = am_test_path("demo");
    const int delays_ms[] = {0, 30, 100, 250, 500};
    char bin[1024], old_cwd[1024];
    am_test_output o;
    size_t i, killed = 0;

    write_big_csv(am_test_path("demo/data/big.csv"), 300000);
    write_config(dir, "dir:./acctmap-data", "data/acme.csv", "data/big.csv");
    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 0);
    am_test_output_dispose(&o);
    assert_int_equal(run_count(dir), 1);

    snprintf(bin, sizeof(bin), "%s/build/san/acctmap", am_test_root());
    assert_non_null(getcwd(old_cwd, sizeof(old_cwd)));
    for (i = 0; i < sizeof(delays_ms) / sizeof(delays_ms[0]); i++) {
        const char *argv[] = {bin, "run", NULL};
        struct timespec ts = {0, delays_ms[i] * 1000000L}, poll = {0, 2000000L};
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int status, waited;

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        assert_int_equal(chdir(dir), 0);
        assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, environ), 0);
        assert_int_equal(chdir(old_cwd), 0);
        posix_spawn_file_actions_destroy(&fa);
        for (waited = 0; waited < 5000 && !run_in_progress(dir); waited++) {
            nanosleep(&poll, NULL);
        }
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        assert_true(waitpid(pid, &status, 0) == pid);
        if (WIFEXITED(status)) {
            continue; /* finished before the kill: then it committed, which is fine too */
        }
        killed++;
        assert_int_equal(run_count(dir), 1);
        RUN(&o, dir, "matrix", "--json");
        assert_int_equal(o.exit_code, 0);
        am_test_output_dispose(&o);
    }
    assert_true(killed >= 3); /* the kills did land in the middle of runs */
    /* The next run sweeps what the killed ones left and commits. */
    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 0);
    am_test_output_dispose(&o);
    assert_true(run_count(dir) >= 2);
    {
        char tmp[1024];
        struct stat sb;
        snprintf(tmp, sizeof(tmp), "%s/acctmap-data/.tmp", dir);
        assert_int_equal(stat(tmp, &sb), 0);
        assert_int_equal(rmdir(tmp), 0); /* empty: nothing half-written is left */
    }
}

static void test_cli__unwritable_store_exits_1(void **state)
{
    (void)state;
    const char *dir = am_test_path("demo");
    am_test_output o;

    am_test_write_file(am_test_path("demo/blocker"), "x", 1);
    write_config(dir, "dir:./blocker/store", "data/acme.csv", "data/globex.csv");
    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 1);
    assert_one_error_line(&o, "dir:./blocker/store: cannot create directory");
    am_test_output_dispose(&o);
}

/* explain: each verdict and its evidence, on fixtures/explain. */
static void test_cli__explain_says_why(void **state)
{
    (void)state;
    const char *dir = am_test_path("explain");
    static const struct {
        const char *ours, *theirs, *want;
    } cases[] = {
        {"a1", "b1", "they share name:ромашка|RU, but their tax ids differ (RU7712345671, "
                     "RU7810123451): two companies"},
        {"a2", "b2", "matched by name+city\n  acme/a2  --name:северный ветер|RU-->  beta/b2"},
        {"a3", "b3", "matched by name\n  acme/a3  --name:contoso|US-->  beta/b3"},
        {"a4", "b4", "matched by chain\n  acme/a4  --domain:globus-trade.com-->  gamma/c1\n"
                     "  gamma/c1  --tax:RU7707083893-->  beta/b4"},
        {"a5", "b5", "both are individual entrepreneurs, whom a name alone never links"},
        /* The Latin spelling meets under the name rules: one city ("Moscow" is another). */
        {"a6", "b7", "matched by name+city\n  acme/a6  --name:romashka servis|RU-->  beta/b7"},
        {"a6", "b6", "kept apart"},
    };
    am_test_output o;
    size_t i;

    RUN(&o, dir, "run");
    assert_int_equal(o.exit_code, 0);
    am_test_output_dispose(&o);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        RUN(&o, dir, "explain", "beta", cases[i].ours, cases[i].theirs);
        assert_int_equal(o.exit_code, 0);
        if (!strstr(o.out, cases[i].want)) {
            fail_msg("explain beta %s %s: want \"%s\" in:\n%s", cases[i].ours, cases[i].theirs,
                     cases[i].want, o.out);
        }
        am_test_output_dispose(&o);
    }
    RUN(&o, dir, "explain", "beta", "a1", "nope");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "explain: no record \"nope\" in beta's records of run");
    am_test_output_dispose(&o);
    RUN(&o, dir, "accounts", "beta", "--format", "csv");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "a2,b2,"));
    assert_non_null(strstr(o.out, ",name+city,name:северный ветер|RU,"));
    assert_null(strstr(o.out, "a1,b1,"));
    assert_null(strstr(o.out, "a5,b5,"));
    am_test_output_dispose(&o);
}

/* A store that exists but holds no run yet: every listing says so, none crashes. */
static void test_cli__empty_store_lists_no_runs(void **state)
{
    (void)state;
    const char *demo = am_test_path("demo");
    am_test_output o;

    RUN(&o, demo, "store", "init");
    assert_int_equal(o.exit_code, 0);
    am_test_output_dispose(&o);
    assert_int_equal(run_count(demo), 0);
    RUN(&o, demo, "runs");
    assert_int_equal(o.exit_code, 0);
    am_test_output_dispose(&o);
    RUN(&o, demo, "matrix");
    assert_int_equal(o.exit_code, 1);
    assert_non_null(strstr(o.err, "no run yet; start one with `acctmap run`"));
    am_test_output_dispose(&o);
}

static void test_cli__usage_and_help(void **state)
{
    (void)state;
    const char *dir = am_test_path("demo");
    const char *verbs[] = {"run", "runs", "matrix", "accounts", "explain", "store"};
    am_test_output o;
    size_t i;

    RUN(&o, dir, "--version");
    assert_int_equal(o.exit_code, 0);
    assert_true(strncmp(o.out, "acctmap ", 8) == 0);
    am_test_output_dispose(&o);
    RUN(&o, dir, "--help");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "usage: acctmap [-c FILE] VERB"));
    am_test_output_dispose(&o);
    for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        RUN(&o, dir, verbs[i], "--help");
        assert_int_equal(o.exit_code, 0);
        assert_non_null(strstr(o.out, "usage: acctmap [-c FILE] "));
        assert_non_null(strstr(o.out, verbs[i]));
        am_test_output_dispose(&o);
    }
    RUN(&o, dir, "frobnicate");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "unknown verb 'frobnicate'");
    am_test_output_dispose(&o);
    RUN(&o, dir, "accounts");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "accounts: name a partner");
    am_test_output_dispose(&o);
    RUN(&o, dir, "matrix", "--format", "xml");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "matrix: --format 'xml' is not one of table, json");
    am_test_output_dispose(&o);
    RUN(&o, dir, "matrix");
    assert_int_equal(o.exit_code, 1);
    assert_one_error_line(&o, "no run yet; start one with `acctmap run`");
    am_test_output_dispose(&o);
    RUN(&o, dir, "run");
    am_test_output_dispose(&o);
    RUN(&o, dir, "accounts", "nobody");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "accounts: \"nobody\" is not a partner");
    am_test_output_dispose(&o);
    RUN(&o, dir, "accounts", "globex", "--ours", "friends");
    assert_int_equal(o.exit_code, 2);
    assert_one_error_line(&o, "--ours \"friends\" is not one of our populations");
    am_test_output_dispose(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AM_TEST_SANDBOXED(test_cli__demo_matrices_are_the_expected_ones),
        AM_TEST_SANDBOXED(test_cli__demo_accounts_are_the_expected_pairs),
        AM_TEST_SANDBOXED(test_cli__accounts_filters_agree_with_the_matrix),
        AM_TEST_SANDBOXED(test_cli__runs_lists_each_run_with_fingerprints),
        AM_TEST_SANDBOXED(test_cli__bad_config_exits_2_with_one_line),
        AM_TEST_SANDBOXED(test_cli__unreadable_source_commits_nothing),
        AM_TEST_SANDBOXED(test_cli__unwritable_store_exits_1),
        AM_TEST_SANDBOXED(test_cli__killed_run_leaves_previous_runs_intact),
        AM_TEST_SANDBOXED(test_cli__explain_says_why),
        AM_TEST_SANDBOXED(test_cli__empty_store_lists_no_runs),
        AM_TEST_SANDBOXED(test_cli__usage_and_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
