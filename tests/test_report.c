/*
 * Report end to end: `acctmap run` stores each partner's report and `acctmap
 * report` renders it. fixtures/report/ has a partner (globex) with a mixed
 * policy: our customers as accounts with three fields and one cell narrowed
 * to counts, prospects as counts, opportunities none, strategic hidden; a
 * second partner (initech) it must never hear of; names with <script>,
 * quotes, ampersands and Cyrillic. A third partner (umbrella) is shown our
 * opportunities with their amounts, so its report carries open pipeline
 * values, checked against sums computed here from the fixture's CSVs. Every
 * format is checked for what must be there and for what must not; the HTML
 * is loaded in headless Chromium.
 */
#define _XOPEN_SOURCE 600
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "acctmap.h"
#include "helpers.h"

extern char **environ;

#define RUN(out, cwd, ...)                                                     \
    do {                                                                       \
        const char *args_[] = {__VA_ARGS__, NULL};                             \
        am_test_run((out), (cwd), args_);                                      \
    } while (0)

static const char *const formats[] = {"json", "csv", "html", "xlsx"};

/* What the policy keeps from globex, in any format. */
static const char *const forbidden[] = {
    "OURID-",       /* our ids: `id` is not a listed field */
    "7707083893",   /* tax_id not listed */
    "Boston",       "Москва",      "Seattle",     /* city not listed */
    "98765",        "55555",       /* amount not listed */
    "Prospect Only Widgets", "Pat Prospect", "GLX-3", /* prospects: counts */
    "Secret Opportunity",    "Opal Owner",   "GLX-4", /* opportunities: none */
    "Hidden Strategic",      "Stella Strat", "GLX-5", "strategic", /* hidden */
    "Narrowed Cell",         "Nora Narrow",  "GLX-6", /* the cell narrowed to counts */
    "Untouched",    "Uma Untouched", "initech", "Initech", "INI-", /* the other partner */
    "GLX-9",        "Globex Own",  "Script Corp", /* their records we do not share */
};

/* What it shares, in every format (escaped or not, these strings are whole). */
static const char *const required[] = {
    "GLX-1", "GLX-2", "GLX-8", "script-corp.com", "romashka-partners.ru", "upsell-deal.com",
    "Upsell Deal Inc", "Ursula Upsell", "Иван Петров", "Партнёры",
};

static const char expected_csv[] =
    "record,our_population,their_population,level,count,pipeline,their_id,id,name,domain,tax_id,"
    "country,city,owner,amount\r\n"
    "cell,customers,customers,accounts,2,,,,,,,,,,\r\n"
    "cell,customers,prospects,counts,1,,,,,,,,,,\r\n"
    "cell,customers,opportunities,accounts,1,,,,,,,,,,\r\n"
    "cell,prospects,customers,counts,1,,,,,,,,,,\r\n"
    "cell,prospects,prospects,counts,0,,,,,,,,,,\r\n"
    "cell,prospects,opportunities,counts,0,,,,,,,,,,\r\n"
    "cell,opportunities,customers,none,,,,,,,,,,,\r\n"
    "cell,opportunities,prospects,none,,,,,,,,,,,\r\n"
    "cell,opportunities,opportunities,none,,,,,,,,,,,\r\n"
    "account,customers,customers,accounts,,,GLX-2,,\"ООО «Ромашка» & \"\"Партнёры\"\"\","
    "romashka-partners.ru,,,,Иван Петров,\r\n"
    "account,customers,customers,accounts,,,GLX-1,,<script>document.title='pwned'</script> Corp,"
    "script-corp.com,,,,\"Tom & \"\"Jerry\"\"\",\r\n"
    "account,customers,opportunities,accounts,,,GLX-8,,Upsell Deal Inc,upsell-deal.com,,,,"
    "Ursula Upsell,\r\n";

/*
 * Run argv (PATH lookup) in its own process group, stdout to `out_path`,
 * stderr to /dev/null; the whole group is killed after `timeout_s`.
 * Returns the exit code, -1 when killed.
 */
static int spawn_to_file(const char *const *argv, const char *out_path, int timeout_s)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    pid_t pid;
    int status = 0, rc;
    time_t deadline = time(NULL) + timeout_s;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    rc = posix_spawnp(&pid, argv[0], &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        fail_msg("cannot start %s: %s (make test installs it)", argv[0], strerror(rc));
    }
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            break;
        }
        if (time(NULL) > deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(20000);
    }
    /* Helpers the browser left behind go with their group. */
    kill(-pid, SIGKILL);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *read_or_fail(const char *path, size_t *len)
{
    char *data = am_test_read_file(path, len);

    if (!data) {
        fail_msg("cannot read %s", path);
    }
    return data;
}

/* `report PARTNER --format F --out FILE` in the sandboxed fixture; returns the bytes. */
static char *render_for(const char *dir, const char *partner, const char *format,
                        const char *run_id, size_t *len)
{
    am_test_output o;
    char out[64];

    snprintf(out, sizeof(out), "out.%s", format);
    if (run_id) {
        RUN(&o, dir, "report", partner, "--format", format, "--out", out, "--run", run_id);
    } else {
        RUN(&o, dir, "report", partner, "--format", format, "--out", out);
    }
    if (o.exit_code != 0 || o.out[0] || o.err[0]) {
        fail_msg("report --format %s: exit %d, stdout \"%s\", stderr \"%s\"", format,
                 o.exit_code, o.out, o.err);
    }
    am_test_output_dispose(&o);
    {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, out);
        return read_or_fail(path, len);
    }
}

static char *render(const char *dir, const char *format, const char *run_id, size_t *len)
{
    return render_for(dir, "globex", format, run_id, len);
}

static void run_ok(const char *dir, char *run_id, size_t cap)
{
    am_test_output o;
    const char *p;

    RUN(&o, dir, "run");
    if (o.exit_code != 0) {
        fail_msg("run: %s", o.err);
    }
    p = strstr(o.out, "run ");
    assert_non_null(p);
    snprintf(run_id, cap, "%.*s", (int)strcspn(p + 4, " "), p + 4);
    am_test_output_dispose(&o);
}

/* The text of an XLSX: every member of the zip, inflated by unzip. */
static char *xlsx_text(const char *dir, size_t *len)
{
    char xlsx[4096], txt[4096];
    const char *argv[] = {"unzip", "-p", xlsx, NULL};

    snprintf(xlsx, sizeof(xlsx), "%s/out.xlsx", dir);
    snprintf(txt, sizeof(txt), "%s/out.xlsx.txt", dir);
    assert_int_equal(spawn_to_file(argv, txt, 30), 0);
    return read_or_fail(txt, len);
}

/* One member of the XLSX (`xl/worksheets/sheet2.xml`), inflated by unzip. */
static char *xlsx_member(const char *dir, const char *member)
{
    char xlsx[4096], txt[4096];
    const char *argv[] = {"unzip", "-p", xlsx, member, NULL};
    size_t len;

    snprintf(xlsx, sizeof(xlsx), "%s/out.xlsx", dir);
    snprintf(txt, sizeof(txt), "%s/out.xlsx.member", dir);
    assert_int_equal(spawn_to_file(argv, txt, 30), 0);
    return read_or_fail(txt, &len);
}

static void assert_filtered(const char *text, const char *format)
{
    size_t i;

    for (i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
        if (strstr(text, forbidden[i])) {
            fail_msg("%s report shows \"%s\", which the policy keeps from globex", format,
                     forbidden[i]);
        }
    }
    for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!strstr(text, required[i])) {
            fail_msg("%s report lacks \"%s\"", format, required[i]);
        }
    }
}

static void assert_json_model(const char *text)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    json_t *acc, *rows;
    char *matrix, *levels, *ours;

    if (!doc) {
        fail_msg("report json: %s", jerr.text);
    }
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "partner"),
                                                          "name")),
                        "Глобэкс <b>Partners</b>");
    matrix = json_dumps(json_object_get(doc, "matrix"), JSON_COMPACT);
    levels = json_dumps(json_object_get(doc, "levels"), JSON_COMPACT);
    ours = json_dumps(json_object_get(doc, "ours"), JSON_COMPACT);
    assert_string_equal(ours, "[\"customers\",\"prospects\",\"opportunities\"]");
    free(ours);
    assert_string_equal(matrix, "[[2,1,1],[1,0,0],[null,null,null]]");
    assert_string_equal(levels, "[[\"accounts\",\"counts\",\"accounts\"],[\"counts\",\"counts\","
                                "\"counts\"],[\"none\",\"none\",\"none\"]]");
    free(matrix);
    free(levels);
    acc = json_object_get(doc, "accounts");
    assert_int_equal(json_array_size(acc), 2);
    rows = json_object_get(json_array_get(acc, 0), "rows");
    assert_int_equal(json_array_size(rows), 2);
    /* Exactly their id and the three listed fields, the values untouched. */
    assert_int_equal(json_object_size(json_array_get(rows, 1)), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "name")),
                        "<script>document.title='pwned'</script> Corp");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "owner")),
                        "Tom & \"Jerry\"");
    json_decref(doc);
}

static void test_report__mixed_policy_in_every_format(void **state)
{
    (void)state;
    const char *dir = am_test_path("report");
    char run_id[64];
    size_t len, i;
    char *text;
    am_test_output o;

    run_ok(dir, run_id, sizeof(run_id));

    text = render(dir, "json", NULL, &len);
    assert_filtered(text, "json");
    assert_json_model(text);
    assert_non_null(strstr(text, run_id));
    free(text);

    text = render(dir, "csv", NULL, &len);
    assert_filtered(text, "csv");
    assert_string_equal(text, expected_csv);
    free(text);

    text = render(dir, "html", NULL, &len);
    assert_filtered(text, "html");
    /* Every CRM and config value escaped, in text and in attributes. */
    assert_null(strstr(text, "<script"));
    assert_null(strstr(text, "<b>"));
    assert_null(strstr(text, "src="));
    assert_null(strstr(text, "href="));
    assert_non_null(strstr(text, "<td>&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"
                                 " Corp</td>"));
    assert_non_null(strstr(text, "<td>ООО «Ромашка» &amp; &quot;Партнёры&quot;</td>"));
    assert_non_null(strstr(text, "<td>Tom &amp; &quot;Jerry&quot;</td>"));
    assert_non_null(strstr(text, "<title>Acme &amp; &quot;Sons&quot; &lt;Cloud&gt; and Глобэкс "
                                 "&lt;b&gt;Partners&lt;/b&gt;: account mapping</title>"));
    free(text);

    free(render(dir, "xlsx", NULL, &len));
    text = xlsx_text(dir, &len);
    assert_filtered(text, "xlsx");
    assert_non_null(strstr(text, "&lt;script&gt;document.title='pwned'&lt;/script&gt; Corp"));
    assert_null(strstr(text, "<script"));
    /* A sheet for the matrix and one per cell shared as accounts. */
    assert_non_null(strstr(text, "name=\"Matrix\""));
    assert_non_null(strstr(text, "name=\"1 customers x customers\""));
    assert_non_null(strstr(text, "name=\"2 customers x opportunities\""));
    assert_null(strstr(text, "name=\"3 "));
    /* The matrix sheet is a heat map too (a colour scale over the numbers). */
    assert_non_null(strstr(text, "<colorScale>"));
    {
        /* Created when the run finished (the run id is that time), not when rendered. */
        char created[96];
        snprintf(created, sizeof(created), "<dcterms:created xsi:type=\"dcterms:W3CDTF\">"
                 "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ<", run_id, run_id + 4, run_id + 6, run_id + 9,
                 run_id + 11, run_id + 13);
        assert_non_null(strstr(text, created));
    }
    free(text);

    /* stdout gets the same bytes as --out (the text formats; html is the default). */
    for (i = 0; i < 3; i++) {
        char path[4096];
        char *file;
        size_t file_len;
        if (i == 2) {
            RUN(&o, dir, "report", "globex");
        } else {
            RUN(&o, dir, "report", "globex", "--format", formats[i]);
        }
        assert_int_equal(o.exit_code, 0);
        snprintf(path, sizeof(path), "%s/out.%s", dir, formats[i]);
        file = read_or_fail(path, &file_len);
        assert_int_equal(strlen(o.out), file_len);
        assert_memory_equal(file, o.out, file_len);
        free(file);
        am_test_output_dispose(&o);
    }
    /* xlsx to a pipe: a zip, the same size as the file. */
    RUN(&o, dir, "report", "globex", "--format", "xlsx");
    assert_int_equal(o.exit_code, 0);
    assert_memory_equal(o.out, "PK\x03\x04", 4);
    am_test_output_dispose(&o);
}

/* ---- open pipeline values (issue #7) ------------------------------------------ */

/* The rows and columns the pipeline checks read: our and umbrella's standard populations. */
#define POPS 3
static const char *const pop_names[POPS] = {"customers", "prospects", "opportunities"};

typedef struct fixture_row {
    char domain[128];
    uint32_t pops; /* bit i: pop_names[i] */
    bool has_amount;
    int64_t cents;
} fixture_row;

/* One line of a fixture CSV, split in place on commas with RFC 4180 quotes undone. */
static size_t split_csv(char *line, char **fields, size_t max)
{
    char *r = line, *w = line;
    size_t n = 0;

    while (n < max) {
        bool quoted = *r == '"';
        fields[n++] = w;
        r += quoted;
        for (;;) {
            if (*r == '\0') {
                *w = '\0';
                return n;
            }
            if (quoted && *r == '"') {
                if (r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                } else {
                    quoted = false;
                    r++;
                }
                continue;
            }
            if (!quoted && *r == ',') {
                *w++ = '\0';
                r++;
                break;
            }
            *w++ = *r++;
        }
    }
    return n;
}

/* The rows of a fixture CSV (columns id,name,domain,tax_id,country,status[,city,owner,amount]). */
static size_t read_fixture(fixture_row *rows, size_t max, const char *dir, const char *file)
{
    char path[4096];
    size_t len, n = 0;
    char *data, *line, *next;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    data = read_or_fail(path, &len);
    next = strchr(data, '\n');
    assert_non_null(next); /* the header */
    for (line = next + 1; *line; line = next) {
        char *fields[9], *st;
        size_t k, count;
        next = strchr(line, '\n');
        next = next ? next + 1 : line + strlen(line);
        next[-1] = next[-1] == '\n' ? '\0' : next[-1];
        line[strcspn(line, "\r")] = '\0';
        count = split_csv(line, fields, 9);
        assert_true(count >= 6 && n < max);
        memset(&rows[n], 0, sizeof(rows[n]));
        snprintf(rows[n].domain, sizeof(rows[n].domain), "%s", fields[2]);
        for (st = fields[5]; *st; st += strcspn(st, ";"), st += *st == ';') {
            static const char *const status[POPS] = {"customer", "prospect", "opportunity"};
            size_t tl = strcspn(st, ";");
            for (k = 0; k < POPS; k++) {
                if (strlen(status[k]) == tl && strncmp(st, status[k], tl) == 0) {
                    rows[n].pops |= 1u << k;
                }
            }
        }
        if (count >= 9 && fields[8][0]) {
            long long whole = 0, frac = 0;
            assert_int_equal(sscanf(fields[8], "%lld.%2lld", &whole, &frac), 2);
            rows[n].has_amount = true;
            rows[n].cents = (int64_t)(whole * 100 + frac);
        }
        n++;
    }
    free(data);
    return n;
}

/*
 * The open pipeline of each cell, from the fixture's CSVs alone: for each of
 * our opportunities with an amount, once per (our population, their
 * population) where a partner record with the same domain is in it.
 */
static void pipeline_oracle(int64_t out[POPS][POPS], const char *dir, const char *partner_csv)
{
    fixture_row ours[32], theirs[32];
    size_t no = read_fixture(ours, 32, dir, "data/acme.csv");
    size_t nt = read_fixture(theirs, 32, dir, partner_csv);
    size_t a, b, i, j;

    memset(out, 0, sizeof(int64_t) * POPS * POPS);
    for (a = 0; a < no; a++) {
        if (!(ours[a].pops & (1u << 2)) || !ours[a].has_amount) {
            continue;
        }
        for (j = 0; j < POPS; j++) {
            bool match = false;
            for (b = 0; b < nt; b++) {
                match = match || (strcmp(theirs[b].domain, ours[a].domain) == 0 &&
                                  (theirs[b].pops & (1u << j)));
            }
            for (i = 0; match && i < POPS; i++) {
                if (ours[a].pops & (1u << i)) {
                    out[i][j] += ours[a].cents;
                }
            }
        }
    }
}

static void cents_text(char *out, size_t cap, int64_t cents)
{
    snprintf(out, cap, "%lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
}

static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;

    for (text = strstr(text, needle); text; text = strstr(text + strlen(needle), needle)) {
        n++;
    }
    return n;
}

/* The `pipeline` column of CSV cell row (our, their): a copy, empty when the cell has none. */
static void csv_cell_pipeline(char *out, size_t cap, const char *csv, const char *our,
                              const char *their)
{
    char head[128];
    const char *p;
    int k;

    snprintf(head, sizeof(head), "\r\ncell,%s,%s,", our, their);
    p = strstr(csv, head);
    if (!p) {
        fail_msg("csv has no cell row for %s x %s", our, their);
    }
    p += strlen(head);
    for (k = 0; k < 2; k++) { /* level, count */
        p = strchr(p, ',') + 1;
    }
    snprintf(out, cap, "%.*s", (int)strcspn(p, ",\r"), p);
}

/* The XML of cell `ref` ("B2") in a worksheet, from `<c r=` to `</c>`; a copy. */
static char *sheet_cell(const char *sheet, const char *ref)
{
    char head[32];
    const char *p, *end;

    snprintf(head, sizeof(head), "<c r=\"%s\"", ref);
    p = strstr(sheet, head);
    if (!p) {
        fail_msg("the Pipeline sheet has no cell %s", ref);
    }
    end = strstr(p, "</c>");
    assert_non_null(end);
    return strndup(p, (size_t)(end - p));
}

/*
 * Every format of `partner`'s report shows the pipeline of exactly the cells
 * in `shown`, each with the oracle's value, and nothing in the others.
 */
static void assert_pipeline_shown(const char *dir, const char *partner,
                                  int64_t oracle[POPS][POPS], const bool shown[POPS][POPS])
{
    json_error_t jerr;
    json_t *doc, *pipeline, *levels;
    char *text, *sheet, *names;
    size_t len, i, j, n_shown = 0, n_accounts = 0;

    text = render_for(dir, partner, "json", NULL, &len);
    doc = json_loads(text, 0, &jerr);
    free(text);
    assert_non_null(doc);
    names = json_dumps(json_object_get(doc, "ours"), JSON_COMPACT);
    assert_string_equal(names, "[\"customers\",\"prospects\",\"opportunities\"]");
    free(names);
    names = json_dumps(json_object_get(doc, "theirs"), JSON_COMPACT);
    assert_string_equal(names, "[\"customers\",\"prospects\",\"opportunities\"]");
    free(names);
    pipeline = json_object_get(doc, "pipeline");
    levels = json_object_get(doc, "levels");
    assert_true(json_is_array(pipeline));
    for (i = 0; i < POPS; i++) {
        for (j = 0; j < POPS; j++) {
            const json_t *v = json_array_get(json_array_get(pipeline, i), j);
            const char *level = json_string_value(json_array_get(json_array_get(levels, i), j));
            char want[32];
            cents_text(want, sizeof(want), oracle[i][j]);
            if (!shown[i][j]) {
                if (!json_is_null(v)) {
                    fail_msg("%s json: pipeline of %s x %s shown", partner, pop_names[i],
                             pop_names[j]);
                }
                continue;
            }
            assert_non_null(json_string_value(v));
            assert_string_equal(json_string_value(v), want);
            n_shown++;
            n_accounts += strcmp(level, "accounts") == 0;
        }
    }
    json_decref(doc);

    text = render_for(dir, partner, "csv", NULL, &len);
    for (i = 0; i < POPS; i++) {
        for (j = 0; j < POPS; j++) {
            char want[32] = "", got[64];
            if (shown[i][j]) {
                cents_text(want, sizeof(want), oracle[i][j]);
            }
            csv_cell_pipeline(got, sizeof(got), text, pop_names[i], pop_names[j]);
            assert_string_equal(got, want);
        }
    }
    free(text);

    text = render_for(dir, partner, "html", NULL, &len);
    /* In the heat map under the count, and in the heading of a shared cell's table. */
    assert_int_equal(count_of(text, "<small>pipeline "), n_shown);
    assert_int_equal(count_of(text, ", open pipeline "), n_accounts);
    assert_non_null(strstr(text, "\"pipeline\": the open pipeline of the cell"));
    for (i = 0; i < POPS; i++) {
        for (j = 0; j < POPS; j++) {
            char want[64];
            if (shown[i][j]) {
                snprintf(want, sizeof(want), "<small>pipeline %lld.%02lld</small></td>",
                         (long long)(oracle[i][j] / 100), (long long)(oracle[i][j] % 100));
                assert_non_null(strstr(text, want));
            }
        }
    }
    free(text);

    free(render_for(dir, partner, "xlsx", NULL, &len));
    text = xlsx_member(dir, "xl/workbook.xml");
    /* Right after the matrix, before the sheets of shared cells. */
    assert_non_null(strstr(text, "<sheet name=\"Matrix\" sheetId=\"1\""));
    assert_non_null(strstr(text, "<sheet name=\"Pipeline\" sheetId=\"2\""));
    free(text);
    sheet = xlsx_member(dir, "xl/worksheets/sheet2.xml");
    for (i = 0; i < POPS; i++) {
        for (j = 0; j < POPS; j++) {
            char ref[8], *c, *v;
            snprintf(ref, sizeof(ref), "%c%zu", (char)('B' + j), i + 2);
            c = sheet_cell(sheet, ref);
            if (shown[i][j]) {
                /* A number (the shown cents, as the double Excel keeps), not a string. */
                assert_null(strstr(c, " t=\""));
                v = strstr(c, "<v>");
                assert_non_null(v);
                assert_int_equal((long long)llround(strtod(v + 3, NULL) * 100.0),
                                 (long long)oracle[i][j]);
            } else {
                assert_non_null(strstr(c, " t=\"s\"")); /* "not shared" */
            }
            free(c);
        }
    }
    /* The biggest pipeline stands out: the sheet is a heat map too. */
    assert_non_null(strstr(sheet, "<colorScale>"));
    free(sheet);
}

/* No format of `partner`'s report says a word about pipelines. */
static void assert_no_pipeline(const char *dir, const char *partner)
{
    char *text, *line;
    size_t len, rows = 0;

    text = render_for(dir, partner, "json", NULL, &len);
    assert_null(strstr(text, "pipeline"));
    free(text);
    text = render_for(dir, partner, "csv", NULL, &len);
    for (line = strstr(text, "\r\ncell,"); line; line = strstr(line + 2, "\r\ncell,")) {
        const char *p = line + 2;
        int k;
        for (k = 0; k < 5; k++) { /* record, our_population, their_population, level, count */
            p = strchr(p, ',') + 1;
        }
        if (*p != ',') {
            fail_msg("%s csv shows a pipeline: %.60s", partner, line + 2);
        }
        rows++;
    }
    assert_true(rows > 0);
    free(text);
    text = render_for(dir, partner, "html", NULL, &len);
    assert_null(strstr(text, "pipeline"));
    free(text);
    free(render_for(dir, partner, "xlsx", NULL, &len));
    text = xlsx_text(dir, &len);
    assert_null(strstr(text, "Pipeline"));
    assert_null(strstr(text, "pipeline"));
    free(text);
}

/* Reports come from the stored run: a changed policy or a newer run leaves old bytes alone. */
static void test_report__old_run_renders_the_same_bytes(void **state)
{
    (void)state;
    const char *dir = am_test_path("report");
    char first[64], second[64], cfg_path[4096];
    char *before[4], *again, *pipeline_before[4];
    size_t before_len[4], pipeline_len[4], len, i;
    size_t cfg_len;
    char *cfg, *at;

    run_ok(dir, first, sizeof(first));
    for (i = 0; i < 4; i++) {
        before[i] = render(dir, formats[i], NULL, &before_len[i]);
        pipeline_before[i] = render_for(dir, "umbrella", formats[i], NULL, &pipeline_len[i]);
    }
    /* Same run, rendered again: same bytes (the XLSX takes its time from the run). */
    for (i = 0; i < 4; i++) {
        again = render(dir, formats[i], first, &len);
        assert_int_equal(len, before_len[i]);
        assert_memory_equal(again, before[i], len);
        free(again);
    }
    /* Share nothing but counts from now on, and run again a second later. */
    snprintf(cfg_path, sizeof(cfg_path), "%s/acctmap.json", dir);
    cfg = read_or_fail(cfg_path, &cfg_len);
    at = strstr(cfg, "{ \"level\": \"accounts\"");
    assert_non_null(at);
    memcpy(at, "{ \"level\": \"counts\"  ", strlen("{ \"level\": \"counts\"  "));
    at = strstr(cfg, "\"fields\": [\"name\", \"domain\", \"owner\"],");
    assert_non_null(at);
    memset(at, ' ', strlen("\"fields\": [\"name\", \"domain\", \"owner\"],"));
    /* And no amounts to umbrella: no pipeline in its new report, the old one keeps it. */
    for (at = strstr(cfg, "\"name\", \"amount\""); at; at = strstr(at, "\"name\", \"amount\"")) {
        memcpy(at, "\"name\", \"domain\"", strlen("\"name\", \"domain\""));
    }
    am_test_write_file(cfg_path, cfg, cfg_len);
    free(cfg);
    sleep(1);
    run_ok(dir, second, sizeof(second));
    assert_string_not_equal(first, second);
    for (i = 0; i < 4; i++) {
        again = render(dir, formats[i], first, &len);
        assert_int_equal(len, before_len[i]);
        assert_memory_equal(again, before[i], len);
        free(again);
        /* With its open pipeline values (umbrella's report has them). */
        again = render_for(dir, "umbrella", formats[i], first, &len);
        assert_int_equal(len, pipeline_len[i]);
        assert_memory_equal(again, pipeline_before[i], len);
        free(again);
        free(pipeline_before[i]);
        again = render(dir, formats[i], NULL, &len);
        if (i != 3) {
            assert_null(strstr(again, "GLX-1"));
            assert_null(strstr(again, "Иван Петров"));
        }
        assert_true(len != before_len[i] || memcmp(again, before[i], len) != 0);
        free(again);
        free(before[i]);
    }
    assert_no_pipeline(dir, "umbrella");
}

/* Policy mistakes in the config: exit 2 and one exact line, nothing committed. */
static void test_report__config_errors_exit_2(void **state)
{
    (void)state;
    const char *dir = am_test_path("report");
    static const struct {
        const char *share;
        const char *line;
    } cases[] = {
        {"{\"prospects\": \"some\"}",
         "acctmap: acctmap.json: orgs[1].share.prospects: expected hidden, none, counts or "
         "accounts, not \"some\"\n"},
        {"{\"customers\": {\"level\": \"accounts\", \"fields\": [\"name\", \"phone\"]}}",
         "acctmap: acctmap.json: orgs[1].share.customers.fields[1]: unknown field \"phone\"; use "
         "id, name, domain, tax_id, country, city, owner or amount\n"},
        {"{\"prospects\": {\"level\": \"counts\", \"theirs\": {\"customers\": \"accounts\"}}}",
         "acctmap: acctmap.json: orgs[1].share.prospects.theirs.customers: \"accounts\" would "
         "widen the population's \"counts\"; an override may only narrow\n"},
        {"{\"customers\": {\"level\": \"accounts\", \"fields\": [\"name\"], \"theirs\": "
         "{\"prospects\": {\"level\": \"accounts\", \"fields\": [\"owner\"]}}}}",
         "acctmap: acctmap.json: orgs[1].share.customers.theirs.prospects.fields: \"owner\" is "
         "not shared for the population; an override may only narrow\n"},
        {"{\"vip\": \"accounts\"}",
         "acctmap: acctmap.json: orgs[1].share.vip: \"vip\" is not one of our populations; use "
         "one of customers, prospects, opportunities, strategic\n"},
    };
    char path[4096], store[4096];
    size_t i;
    struct stat sb;

    snprintf(path, sizeof(path), "%s/acctmap.json", dir);
    snprintf(store, sizeof(store), "%s/acctmap-data/runs", dir);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char cfg[2048];
        am_test_output o;
        int n = snprintf(cfg, sizeof(cfg),
                         "{\"self\": \"acme\", \"orgs\": [{\"id\": \"acme\", \"sources\": "
                         "[{\"type\": \"csv\", \"path\": \"data/acme.csv\", \"populations\": "
                         "{\"strategic\": \"strategic\"}}]}, {\"id\": \"globex\", \"sources\": "
                         "[{\"type\": \"csv\", \"path\": \"data/globex.csv\"}], \"share\": %s}]}",
                         cases[i].share);
        am_test_write_file(path, cfg, (size_t)n);
        RUN(&o, dir, "run");
        assert_int_equal(o.exit_code, 2);
        assert_string_equal(o.err, cases[i].line);
        am_test_output_dispose(&o);
        RUN(&o, dir, "report", "globex");
        assert_int_equal(o.exit_code, 2);
        assert_string_equal(o.err, cases[i].line);
        am_test_output_dispose(&o);
    }
    /* Refused before anything was read: no run at all. */
    assert_int_not_equal(stat(store, &sb), 0);
}

static void test_report__usage_errors(void **state)
{
    (void)state;
    const char *dir = am_test_path("report");
    char run_id[64], part[4096];
    am_test_output o;

    RUN(&o, dir, "report", "globex");
    assert_int_equal(o.exit_code, 1);
    assert_string_equal(o.err, "acctmap: dir:./acctmap-data: no run yet; start one with "
                               "`acctmap run`\n");
    am_test_output_dispose(&o);
    run_ok(dir, run_id, sizeof(run_id));
    RUN(&o, dir, "report");
    assert_int_equal(o.exit_code, 2);
    assert_string_equal(o.err, "acctmap: report: name a partner: `acctmap report PARTNER`\n");
    am_test_output_dispose(&o);
    RUN(&o, dir, "report", "acme");
    assert_int_equal(o.exit_code, 2);
    assert_non_null(strstr(o.err, "acctmap: report: \"acme\" is not a partner in run "));
    am_test_output_dispose(&o);
    RUN(&o, dir, "report", "globex", "--format", "pdf");
    assert_int_equal(o.exit_code, 2);
    assert_string_equal(o.err, "acctmap: report: --format \"pdf\" is not one of html, csv, json, "
                               "xlsx\n");
    am_test_output_dispose(&o);
    RUN(&o, dir, "report", "globex", "--out");
    assert_int_equal(o.exit_code, 2);
    assert_string_equal(o.err, "acctmap: report: option '--out' needs a value\n");
    am_test_output_dispose(&o);
    RUN(&o, dir, "report", "globex", "--colour");
    assert_int_equal(o.exit_code, 2);
    assert_string_equal(o.err, "acctmap: report: unknown option '--colour'; see `acctmap report "
                               "--help`\n");
    am_test_output_dispose(&o);
    /* --opt=value works as in the other verbs. */
    RUN(&o, dir, "report", "globex", "--format=csv", "--out=");
    assert_int_equal(o.exit_code, 2);
    assert_string_equal(o.err, "acctmap: report: --out needs a file name\n");
    am_test_output_dispose(&o);
    RUN(&o, dir, "report", "--format=csv", "globex");
    assert_int_equal(o.exit_code, 0);
    assert_int_equal(strncmp(o.out, "record,our_population,", 22), 0);
    am_test_output_dispose(&o);
    RUN(&o, dir, "report", "--help");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "usage: acctmap [-c FILE] report PARTNER"));
    am_test_output_dispose(&o);
    /* initech has no share: every number, no account, and nothing of globex. */
    RUN(&o, dir, "report", "initech", "--format", "csv");
    assert_int_equal(o.exit_code, 0);
    assert_non_null(strstr(o.out, "cell,strategic,customers,counts,0,"));
    assert_null(strstr(o.out, "account,"));
    assert_null(strstr(o.out, "GLX"));
    am_test_output_dispose(&o);
    /* A run stored without the report (an older version) says so. */
    snprintf(part, sizeof(part), "%s/acctmap-data/runs/%s/report-globex.json", dir, run_id);
    assert_int_equal(unlink(part), 0);
    RUN(&o, dir, "report", "globex");
    assert_int_equal(o.exit_code, 1);
    assert_int_equal(am_test_count_lines(o.err), 1);
    assert_non_null(strstr(o.err, "has no report for globex"));
    am_test_output_dispose(&o);
}

/* A stored report is untrusted: a field the policy did not list never reaches a rendering. */
static void test_report__damaged_store_is_refused(void **state)
{
    (void)state;
    const char *dir = am_test_path("report");
    char run_id[64], part[4096];
    size_t len;
    char *json, *at, *edited;
    const char *extra = "\"tax_id\": \"7707083893\", ";
    am_test_output o;

    run_ok(dir, run_id, sizeof(run_id));
    snprintf(part, sizeof(part), "%s/acctmap-data/runs/%s/report-globex.json", dir, run_id);
    json = read_or_fail(part, &len);
    at = strstr(json, "\"their_id\": \"GLX-2\",");
    assert_non_null(at);
    edited = malloc(len + strlen(extra) + 1);
    assert_non_null(edited);
    memcpy(edited, json, (size_t)(at - json));
    memcpy(edited + (at - json), extra, strlen(extra));
    memcpy(edited + (at - json) + strlen(extra), at, len - (size_t)(at - json) + 1);
    am_test_write_file(part, edited, len + strlen(extra));
    free(edited);
    free(json);
    RUN(&o, dir, "report", "globex", "--format", "csv");
    assert_int_equal(o.exit_code, 1);
    assert_string_equal(o.out, "");
    assert_int_equal(am_test_count_lines(o.err), 1);
    assert_non_null(strstr(o.err, "report-globex.json: an account holds a field that is not "
                                  "listed; the stored report is damaged"));
    am_test_output_dispose(&o);
}

/* The pipeline hook: a stored model with per-cell values renders them in every text format. */
static void test_report__pipeline_values_render_when_stored(void **state)
{
    (void)state;
    const char *model =
        "{\"format\": 1, \"finished\": \"2026-11-23T12:10:15Z\","
        " \"from\": {\"id\": \"acme\", \"name\": \"Acme\"},"
        " \"partner\": {\"id\": \"globex\", \"name\": \"Globex\"},"
        " \"ours\": [\"opportunities\"], \"theirs\": [\"customers\", \"prospects\"],"
        " \"levels\": [[\"counts\", \"none\"]], \"matrix\": [[3, null]],"
        " \"pipeline\": [[\"120000.50\", null]], \"accounts\": []}";
    am_report *r = NULL;
    am_error err = {0};
    char *out = NULL;
    size_t len = 0;

    assert_int_equal(am_report_load(&r, model, strlen(model), "test", &err), AM_OK);
    assert_int_equal(am_report_render(&out, &len, r, "RUN", AM_REPORT_CSV, &err), AM_OK);
    assert_non_null(strstr(out, "cell,opportunities,customers,counts,3,120000.50,"));
    assert_non_null(strstr(out, "cell,opportunities,prospects,none,,,"));
    free(out);
    assert_int_equal(am_report_render(&out, &len, r, "RUN", AM_REPORT_HTML, &err), AM_OK);
    assert_non_null(strstr(out, ">3<small>pipeline 120000.50</small></td>"));
    free(out);
    assert_int_equal(am_report_render(&out, &len, r, "RUN", AM_REPORT_JSON, &err), AM_OK);
    assert_non_null(strstr(out, "\"120000.50\""));
    free(out);
    am_report_free(r);
}

/*
 * umbrella sees our customers and opportunities as accounts with `amount`,
 * with two cells narrowed, and our prospects as counts. A cell's pipeline is
 * shown only where every amount it sums is shown to umbrella anyway: cell
 * (opportunities, theirs) as accounts with `amount`, and for another row that
 * row's cell as accounts with `amount` too.
 */
static const bool umbrella_shown[POPS][POPS] = {
    /* customers x customers: both cells list amount. customers x prospects:
     * opportunities x prospects is narrowed to counts. customers x
     * opportunities: narrowed to fields without amount. */
    {true, false, false},
    /* prospects: counts; a sum there would tell which opportunities are prospects. */
    {false, false, false},
    {true, false, true},
};

static void test_report__pipeline_shown_only_where_amounts_are(void **state)
{
    (void)state;
    const char *dir = am_test_path("report");
    char run_id[64];
    int64_t oracle[POPS][POPS];
    json_t *doc, *partners, *cents = NULL;
    json_error_t jerr;
    am_test_output o;
    size_t i, j;

    run_ok(dir, run_id, sizeof(run_id));
    pipeline_oracle(oracle, dir, "data/umbrella.csv");
    /* What we see ourselves (every cell) agrees with the sums from the CSVs. */
    RUN(&o, dir, "matrix", "umbrella", "--json");
    assert_int_equal(o.exit_code, 0);
    doc = json_loads(o.out, 0, &jerr);
    assert_non_null(doc);
    partners = json_object_get(doc, "partners");
    for (i = 0; i < json_array_size(partners); i++) {
        json_t *p = json_array_get(partners, i);
        if (strcmp(json_string_value(json_object_get(p, "partner")), "umbrella") == 0) {
            cents = json_object_get(p, "pipeline_cents");
        }
    }
    assert_non_null(cents);
    for (i = 0; i < POPS; i++) {
        for (j = 0; j < POPS; j++) {
            assert_int_equal(json_integer_value(json_array_get(json_array_get(cents, i), j)),
                             oracle[i][j]);
        }
    }
    json_decref(doc);
    am_test_output_dispose(&o);
    /* The cells kept from umbrella do have a pipeline to keep (the test could fail). */
    assert_true(oracle[0][2] > 0); /* customers x opportunities: amount not listed */
    assert_true(oracle[1][0] > 0); /* prospects x customers: counts */
    assert_true(oracle[2][1] > 0); /* opportunities x prospects: narrowed to counts */
    assert_pipeline_shown(dir, "umbrella", oracle, umbrella_shown);
    /* globex (amounts not listed, opportunities none) and initech (counts only): nothing. */
    assert_no_pipeline(dir, "globex");
    assert_no_pipeline(dir, "initech");
}

/* The same run data under other policies for umbrella: the rule, cell by cell. */
static void test_report__pipeline_follows_the_policy(void **state)
{
    (void)state;
    const char *dir = am_test_path("report");
    static const struct {
        const char *share;
        bool shown[POPS][POPS];
    } cases[] = {
        /* Amounts of customers but not of opportunities: no sum can be shown. */
        {"\"customers\": {\"level\": \"accounts\", \"fields\": [\"name\", \"amount\"]}, "
         "\"opportunities\": {\"level\": \"accounts\", \"fields\": [\"name\"]}",
         {{false}}},
        /* Counts everywhere: never. */
        {"\"customers\": \"counts\", \"prospects\": \"counts\", \"opportunities\": \"counts\"",
         {{false}}},
        /* Our opportunities hidden: not even a sum of them. */
        {"\"customers\": {\"level\": \"accounts\", \"fields\": [\"amount\"]}, "
         "\"opportunities\": \"hidden\"",
         {{false}}},
        /* Every opportunities cell narrowed below amounts. */
        {"\"customers\": {\"level\": \"accounts\", \"fields\": [\"amount\"]}, "
         "\"opportunities\": {\"level\": \"accounts\", \"fields\": [\"name\", \"amount\"], "
         "\"theirs\": {\"customers\": \"counts\", \"prospects\": \"none\", "
         "\"opportunities\": {\"level\": \"accounts\", \"fields\": [\"name\"]}}}",
         {{false}}},
        /* Opportunities with amounts, the rest counts: the opportunities row only. */
        {"\"opportunities\": {\"level\": \"accounts\", \"fields\": [\"amount\"]}",
         {{false, false, false}, {false, false, false}, {true, true, true}}},
        /* Everything with amounts: every cell. */
        {"\"customers\": {\"level\": \"accounts\", \"fields\": [\"amount\"]}, "
         "\"prospects\": {\"level\": \"accounts\", \"fields\": [\"id\", \"amount\"]}, "
         "\"opportunities\": {\"level\": \"accounts\", \"fields\": [\"amount\"]}",
         {{true, true, true}, {true, true, true}, {true, true, true}}},
    };
    char path[4096];
    int64_t oracle[POPS][POPS];
    size_t c, i, j;

    snprintf(path, sizeof(path), "%s/acctmap.json", dir);
    pipeline_oracle(oracle, dir, "data/umbrella.csv");
    for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char cfg[2048], run_id[64];
        bool any = false;
        int n = snprintf(cfg, sizeof(cfg),
                         "{\"self\": \"acme\", \"orgs\": [{\"id\": \"acme\", \"sources\": "
                         "[{\"type\": \"csv\", \"path\": \"data/acme.csv\", \"populations\": "
                         "{\"strategic\": \"strategic\"}}]}, {\"id\": \"umbrella\", \"sources\": "
                         "[{\"type\": \"csv\", \"path\": \"data/umbrella.csv\"}], \"share\": "
                         "{%s, \"strategic\": \"hidden\"}}]}",
                         cases[c].share);
        assert_true(n > 0 && (size_t)n < sizeof(cfg));
        am_test_write_file(path, cfg, (size_t)n);
        run_ok(dir, run_id, sizeof(run_id));
        for (i = 0; i < POPS; i++) {
            for (j = 0; j < POPS; j++) {
                any = any || cases[c].shown[i][j];
            }
        }
        if (any) {
            assert_pipeline_shown(dir, "umbrella", oracle, cases[c].shown);
        } else {
            assert_no_pipeline(dir, "umbrella");
        }
    }
}

/* A report stored before runs had pipeline values renders without any, in every format. */
static void test_report__pipeline_absent_from_an_older_stored_report(void **state)
{
    (void)state;
    const char *dir = am_test_path("report");
    char run_id[64], part[4096], *csv_before, *csv_after, *json, *stored, *p;
    json_error_t jerr;
    json_t *doc;
    size_t len;

    run_ok(dir, run_id, sizeof(run_id));
    csv_before = render_for(dir, "umbrella", "csv", NULL, &len);
    snprintf(part, sizeof(part), "%s/acctmap-data/runs/%s/report-umbrella.json", dir, run_id);
    stored = read_or_fail(part, &len);
    doc = json_loadb(stored, len, 0, &jerr);
    assert_non_null(doc);
    free(stored);
    assert_int_equal(json_object_del(doc, "pipeline"), 0);
    json = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    assert_non_null(json);
    am_test_write_file(part, json, strlen(json));
    free(json);
    assert_no_pipeline(dir, "umbrella");
    /* The rest is untouched: the same CSV with the pipeline column empty. */
    csv_after = render_for(dir, "umbrella", "csv", NULL, &len);
    for (p = strstr(csv_before, "\r\ncell,"); p; p = strstr(p + 2, "\r\ncell,")) {
        char *field = p + 2;
        int k;
        for (k = 0; k < 5; k++) {
            field = strchr(field, ',') + 1;
        }
        memmove(field, field + strcspn(field, ","), strlen(field + strcspn(field, ",")) + 1);
    }
    assert_string_equal(csv_after, csv_before);
    free(csv_before);
    free(csv_after);
}

/* XLSX is binary: on a terminal (a pseudo-terminal here) without --out it is refused. */
static void test_report__xlsx_refused_on_a_terminal(void **state)
{
    (void)state;
    const char *dir = am_test_path("report");
    char run_id[64], bin[4096], err_path[4096], *err_text;
    const char *argv[] = {bin, "report", "globex", "--format", "xlsx", NULL};
    posix_spawn_file_actions_t fa;
    int master = posix_openpt(O_RDWR | O_NOCTTY), status = 0;
    char *slave;
    pid_t pid;
    size_t len;

    run_ok(dir, run_id, sizeof(run_id));
    assert_true(master >= 0);
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    slave = ptsname(master);
    assert_non_null(slave);
    /* The binary am_test_run would run (AM_TEST_BIN, default build/san/acctmap). */
    if (getenv("AM_TEST_BIN") && getenv("AM_TEST_BIN")[0] == '/') {
        snprintf(bin, sizeof(bin), "%s", getenv("AM_TEST_BIN"));
    } else {
        snprintf(bin, sizeof(bin), "%s/%s", am_test_root(),
                 getenv("AM_TEST_BIN") ? getenv("AM_TEST_BIN") : "build/san/acctmap");
    }
    snprintf(err_path, sizeof(err_path), "%s/err.txt", dir);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, slave, O_RDWR | O_NOCTTY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    /* The store is found from the config in the fixture's directory. */
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, environ), 0);
    assert_int_equal(chdir(am_test_root()), 0);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(master);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2);
    err_text = read_or_fail(err_path, &len);
    assert_string_equal(err_text, "acctmap: report: xlsx is binary; give --out FILE or pipe it\n");
    free(err_text);
}

/* CRM text a spreadsheet would run is written as text; quotes and separators are quoted. */
static void test_report__csv_guards_formulas(void **state)
{
    (void)state;
    const char *model =
        "{\"format\": 1, \"finished\": \"2026-11-23T12:10:15Z\","
        " \"from\": {\"id\": \"acme\", \"name\": \"Acme\"},"
        " \"partner\": {\"id\": \"globex\", \"name\": \"Globex\"},"
        " \"ours\": [\"customers\"], \"theirs\": [\"customers\"],"
        " \"levels\": [[\"accounts\"]], \"matrix\": [[1]],"
        " \"accounts\": [{\"ours\": \"customers\", \"theirs\": \"customers\","
        "   \"fields\": [\"name\", \"owner\", \"amount\"],"
        "   \"rows\": [{\"their_id\": \"@g1\", \"name\": \"=HYPERLINK(\\\"http://x\\\")\","
        "             \"owner\": \"-2+3, Inc\", \"amount\": \"-15.50\"}]}]}";
    am_report *r = NULL;
    am_error err = {0};
    char *out = NULL;
    size_t len = 0;

    assert_int_equal(am_report_load(&r, model, strlen(model), "test", &err), AM_OK);
    assert_int_equal(am_report_render(&out, &len, r, "RUN", AM_REPORT_CSV, &err), AM_OK);
    assert_non_null(strstr(out, "\r\naccount,customers,customers,accounts,,,\"'@g1\",,"
                                "\"'=HYPERLINK(\"\"http://x\"\")\",,,,,\"'-2+3, Inc\","
                                "-15.50\r\n"));
    free(out);
    am_report_free(r);
}

/* The heat map's text as the browser built it: row by row, tags dropped; malloc'd. */
static char *matrix_text(const char *dom)
{
    const char *table = strstr(dom, "<table class=\"matrix\""), *end, *r;
    char *flat, *w;
    bool in_tag = false, space = false;

    assert_non_null(table);
    end = strstr(table, "</table>");
    assert_non_null(end);
    flat = calloc(1, (size_t)(end - table) + 1);
    assert_non_null(flat);
    for (w = flat, r = table; r < end; r++) {
        if (*r == '<') {
            in_tag = true;
            space = true;
        } else if (*r == '>') {
            in_tag = false;
        } else if (!in_tag) {
            if (*r == ' ' || *r == '\n') {
                space = true;
                continue;
            }
            if (space && w != flat) {
                *w++ = ' ';
            }
            space = false;
            *w++ = *r;
        }
    }
    return flat;
}

/* `partner`'s HTML report (latest run) as headless Chromium built it: its DOM, malloc'd. */
static char *browser_dom(const char *dir, const char *partner)
{
    char html[4096], url[4200], dom_path[4096], profile[4096];
    size_t len;

    free(render_for(dir, partner, "html", NULL, &len));
    snprintf(html, sizeof(html), "%s/out.html", dir);
    snprintf(url, sizeof(url), "file://%s", html);
    snprintf(dom_path, sizeof(dom_path), "%s/dom.html", dir);
    snprintf(profile, sizeof(profile), "--user-data-dir=%s/chromium-profile", dir);
    {
        /* As root Chromium needs --no-sandbox; the profile stays in the test's sandbox. */
        const char *argv[] = {"chromium",      "--headless",        "--no-sandbox",
                              "--disable-gpu", "--disable-dev-shm-usage", profile,
                              "--dump-dom",    url,                 NULL};
        assert_int_equal(spawn_to_file(argv, dom_path, 90), 0);
    }
    return read_or_fail(dom_path, &len);
}

/*
 * Rendering checked where a person sees it: headless Chromium loads the HTML
 * report from disk, and the DOM it built is what it shows.
 */
static void test_report__html_in_a_real_browser(void **state)
{
    (void)state;
    const char *dir = am_test_path("report");
    char run_id[64], want[512], v[3][32];
    char *dom, *table, *flat;
    int64_t oracle[POPS][POPS];

    run_ok(dir, run_id, sizeof(run_id));
    dom = browser_dom(dir, "globex");
    /* The page loaded (the DOM has our heading), and no injected script ran or exists. */
    assert_non_null(strstr(dom, "<h2>Shared accounts</h2>"));
    assert_non_null(strstr(dom, "<title>Acme &amp; \"Sons\" &lt;Cloud&gt; and Глобэкс "
                                "&lt;b&gt;Partners&lt;/b&gt;: account mapping</title>"));
    assert_null(strstr(dom, "<script"));
    assert_null(strstr(dom, "<b>"));
    assert_null(strstr(dom, "<title>pwned"));
    /* The names are text on the page, as the CRM wrote them. */
    assert_non_null(strstr(dom, "<td>&lt;script&gt;document.title='pwned'&lt;/script&gt; "
                                "Corp</td>"));
    assert_non_null(strstr(dom, "<td>ООО «Ромашка» &amp; \"Партнёры\"</td>"));
    flat = matrix_text(dom);
    assert_string_equal(flat, "ours \\ yours your customers your prospects your opportunities "
                              "our customers 2 1 1 our prospects 1 0 0 our opportunities not "
                              "shared not shared not shared");
    /* The largest cell is the darkest. */
    table = strstr(dom, "<table class=\"matrix\"");
    assert_non_null(strstr(table, "background:rgba(37,99,235,0.90);color:#fff\">2</td>"));
    free(flat);
    free(dom);

    /* umbrella's heat map: each shown pipeline under its count, as the CSVs sum it. */
    pipeline_oracle(oracle, dir, "data/umbrella.csv");
    cents_text(v[0], sizeof(v[0]), oracle[0][0]);
    cents_text(v[1], sizeof(v[1]), oracle[2][0]);
    cents_text(v[2], sizeof(v[2]), oracle[2][2]);
    snprintf(want, sizeof(want), "ours \\ yours your customers your prospects your "
             "opportunities our customers 2 pipeline %s 1 1 our prospects 1 0 0 our "
             "opportunities 4 pipeline %s 1 2 pipeline %s", v[0], v[1], v[2]);
    dom = browser_dom(dir, "umbrella");
    flat = matrix_text(dom);
    assert_string_equal(flat, want);
    assert_non_null(strstr(dom, "<h3>Our opportunities that are your customers: 4 companies "
                                "(5 of your records), open pipeline "));
    free(flat);
    free(dom);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AM_TEST_SANDBOXED(test_report__mixed_policy_in_every_format),
        AM_TEST_SANDBOXED(test_report__old_run_renders_the_same_bytes),
        AM_TEST_SANDBOXED(test_report__config_errors_exit_2),
        AM_TEST_SANDBOXED(test_report__usage_errors),
        AM_TEST_SANDBOXED(test_report__damaged_store_is_refused),
        AM_TEST_SANDBOXED(test_report__xlsx_refused_on_a_terminal),
        AM_TEST_SANDBOXED(test_report__pipeline_shown_only_where_amounts_are),
        AM_TEST_SANDBOXED(test_report__pipeline_follows_the_policy),
        AM_TEST_SANDBOXED(test_report__pipeline_absent_from_an_older_stored_report),
        cmocka_unit_test(test_report__pipeline_values_render_when_stored),
        cmocka_unit_test(test_report__csv_guards_formulas),
        AM_TEST_SANDBOXED(test_report__html_in_a_real_browser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
