/*
 * CLI: parses the command line, calls the library, prints tables (terminal),
 * CSV or JSON (scripts), and maps statuses to exit codes. The top of the
 * dependency graph: nothing calls it but main.c.
 */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

#include "acctmap.h"
#include "acctmap/diff.h"
#include "acctmap/index.h"
#include "acctmap/overlap.h"
#include "acctmap/run.h"
#include "acctmap/store.h"

#ifndef AM_VERSION
#define AM_VERSION "0.0.0"
#endif

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define MESSAGES_SHOWN_PER_ORG 20
#define CELL_WIDTH_MAX 36

typedef enum out_format { FORMAT_TABLE, FORMAT_CSV, FORMAT_JSON } out_format;

typedef struct cli {
    const char *config_path;
    am_config *cfg;
    am_store *store;
} cli;

static int exit_code(am_status rc)
{
    if (rc == AM_OK) {
        return 0;
    }
    return rc == AM_EUSAGE || rc == AM_ECONFIG ? EXIT_USAGE : EXIT_RUNTIME;
}

static int fail(const am_error *err)
{
    fprintf(stderr, "acctmap: %s\n", err->msg);
    return exit_code(err->status);
}

static int usage_error(const char *fmt, ...) AM_PRINTF(1, 2);

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("acctmap: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_USAGE;
}

/* ---- help ------------------------------------------------------------------ */

static const char main_help[] =
    "usage: acctmap [-c FILE] VERB [ARGS]\n"
    "\n"
    "Account mapping: which companies you share with each partner.\n"
    "\n"
    "verbs:\n"
    "  run                      pull every source, resolve, intersect, store the run\n"
    "  runs                     the stored runs\n"
    "  matrix [PARTNER]         overlap matrices of the latest run\n"
    "  accounts PARTNER         the matched record pairs behind a partner's matrix\n"
    "  explain PARTNER OUR_ID THEIR_ID\n"
    "                           why two records are, or are not, one company\n"
    "  store init               create or migrate the store\n"
    "  diff [RUN_A RUN_B]       overlaps gained and lost between two runs\n"
    "  targets                  our records ranked by how many partners hold them\n"
    "  who OUR_ID               every partner that has one of our records\n"
    "  report PARTNER           what PARTNER may see, as html, csv, json or xlsx\n"
    "\n"
    "options:\n"
    "  -c FILE                  config file (default: acctmap.json)\n"
    "  -h, --help               this help; `acctmap VERB --help` for a verb\n"
    "  --version                print the version\n"
    "\n"
    "exit codes: 0 success, 1 runtime failure, 2 bad usage or config\n";

static const char run_help[] =
    "usage: acctmap [-c FILE] run\n"
    "\n"
    "Pull every source of every org in the config, normalize, resolve, index and\n"
    "intersect, and commit one immutable run to the store. Rows that cannot be used\n"
    "are reported on stderr with their line and stored with the run. If a source\n"
    "cannot be read at all, nothing is committed and the exit code is 1.\n";

static const char runs_help[] =
    "usage: acctmap [-c FILE] runs [--format table|csv|json]\n"
    "\n"
    "The stored runs, oldest first: id, when it finished, records, rejected rows,\n"
    "entities, and each source's input fingerprint (XXH3-128 of the records read).\n";

static const char matrix_help[] =
    "usage: acctmap [-c FILE] matrix [PARTNER] [--json | --format table|json] [--run ID]\n"
    "\n"
    "The overlap matrices of the latest run (or --run ID): for each partner, the\n"
    "number of entities in each of our populations (rows) and theirs (columns).\n";

static const char accounts_help[] =
    "usage: acctmap [-c FILE] accounts PARTNER [--ours POP] [--theirs POP]\n"
    "                        [--format table|csv|json] [--run ID]\n"
    "\n"
    "The matched pairs behind a partner's matrix: one row per (our record, their\n"
    "record) of the same entity, restricted to our population --ours and theirs\n"
    "--theirs (default: any). Columns: our_id, their_id, entity, our_name,\n"
    "their_name, matched_by (tax, domain, name, or chain when the two records are\n"
    "linked through other records), key, our_populations, their_populations.\n";

static const char explain_help[] =
    "usage: acctmap [-c FILE] explain PARTNER OUR_ID THEIR_ID [--run ID]\n"
    "\n"
    "Why one of our records and one of the partner's are, or are not, the same\n"
    "company in the latest run (or --run ID): the keys of both records, then the\n"
    "evidence that linked them (the key they share, or the chain of records and\n"
    "keys between them), or the reason they were kept apart.\n";

static const char diff_help[] =
    "usage: acctmap [-c FILE] diff [RUN_A RUN_B] [--format table|csv|json | --json]\n"
    "\n"
    "Overlaps gained and lost between two stored runs (default: the last two), per\n"
    "partner and cell. A pair is named by its records' source and id on both sides\n"
    "(entity ids are per run). Columns: partner, ours, theirs, change (gained or\n"
    "lost), our_source, our_id, our_name, their_source, their_id, their_name,\n"
    "open_amount.\n";

static const char targets_help[] =
    "usage: acctmap [-c FILE] targets [--ours POPS] [--theirs POPS]\n"
    "                        [--format table|csv|json | --json] [--run ID]\n"
    "\n"
    "The co-sell list: our records in populations --ours (default:\n"
    "prospects,opportunities) ranked by how many partners hold them in their\n"
    "populations --theirs (default: customers), with the partners named. POPS is\n"
    "one population or several joined with ','. Columns: rank, our_source, our_id,\n"
    "our_name, our_populations, open_amount, partner_count, partners, their_ids.\n";

static const char who_help[] =
    "usage: acctmap [-c FILE] who OUR_ID [--format table|csv|json | --json] [--run ID]\n"
    "\n"
    "Every partner that has one of our records (every record with that id, in any\n"
    "of our sources), with their records and the populations they hold them in.\n"
    "Columns: our_source, our_id, our_name, our_populations, partner, partner_name,\n"
    "their_source, their_id, their_name, their_owner, their_populations.\n";

static const char store_help[] =
    "usage: acctmap [-c FILE] store init\n"
    "\n"
    "Create the store named in the config (or migrate it to this version's layout).\n"
    "`acctmap run` does this by itself on first use.\n";

static bool is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* ---- option parsing -------------------------------------------------------- */

typedef struct verb_args {
    const char *positional[4];
    size_t positional_count;
    const char *ours;
    const char *theirs;
    const char *run_id;
    out_format format;
    bool help;
} verb_args;

/*
 * Parse a verb's arguments. `allowed` lists the options the verb takes
 * ("ours", "theirs", "format", "json", "run"); `max_positional` its operands.
 */
static int parse_verb_args(verb_args *a, const char *verb, const char *help, int argc,
                           char **argv, const char *allowed, size_t max_positional)
{
    int i;

    memset(a, 0, sizeof(*a));
    if (max_positional > sizeof(a->positional) / sizeof(a->positional[0])) {
        max_positional = sizeof(a->positional) / sizeof(a->positional[0]);
    }
    for (i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = NULL;
        char name[32];
        const char *eq;

        if (is_help(arg)) {
            fputs(help, stdout);
            a->help = true;
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (arg[0] == '-' && arg[1] != '\0') {
                return usage_error("%s: unknown option '%s'; see `acctmap %s --help`", verb, arg,
                                   verb);
            }
            if (a->positional_count == max_positional) {
                return usage_error("%s: unexpected argument '%s'; see `acctmap %s --help`", verb,
                                   arg, verb);
            }
            a->positional[a->positional_count++] = arg;
            continue;
        }
        eq = strchr(arg, '=');
        snprintf(name, sizeof(name), "%.*s", (int)(eq ? (size_t)(eq - arg - 2) : strlen(arg + 2)),
                 arg + 2);
        if (!strstr(allowed, name) || name[0] == '\0') {
            return usage_error("%s: unknown option '%s'; see `acctmap %s --help`", verb, arg,
                               verb);
        }
        if (strcmp(name, "json") == 0) {
            a->format = FORMAT_JSON;
            continue;
        }
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return usage_error("%s: option '--%s' needs a value", verb, name);
        }
        if (strcmp(name, "ours") == 0) {
            a->ours = value;
        } else if (strcmp(name, "theirs") == 0) {
            a->theirs = value;
        } else if (strcmp(name, "run") == 0) {
            a->run_id = value;
        } else if (strcmp(name, "format") == 0) {
            if (strcmp(value, "table") == 0) {
                a->format = FORMAT_TABLE;
            } else if (strcmp(value, "csv") == 0 && strstr(allowed, "csv")) {
                a->format = FORMAT_CSV;
            } else if (strcmp(value, "json") == 0) {
                a->format = FORMAT_JSON;
            } else {
                return usage_error("%s: --format '%s' is not one of %s", verb, value,
                                   strstr(allowed, "csv") ? "table, csv, json" : "table, json");
            }
        }
    }
    return 0;
}

/* ---- output: tables, CSV, JSON --------------------------------------------- */

/* Display width of UTF-8 text in terminal columns (Cyrillic is one column a letter). */
static size_t display_width(const char *s, size_t *bytes_for_width, size_t max_width)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    size_t width = 0, pos = 0, len = strlen(s);

    *bytes_for_width = len;
    while (pos < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p + pos, (utf8proc_ssize_t)(len - pos), &cp);
        int w;
        if (n <= 0) {
            n = 1;
            cp = '?';
        }
        w = utf8proc_charwidth(cp);
        if (w < 0) {
            w = 0;
        }
        if (width + (size_t)w > max_width) {
            *bytes_for_width = pos;
            return width;
        }
        width += (size_t)w;
        pos += (size_t)n;
    }
    return width;
}

typedef struct table {
    size_t cols;
    size_t rows;
    size_t cap;
    char **cells; /* rows * cols, row 0 is the header */
    bool *right;  /* per column: right-aligned (numbers) */
} table;

static int table_init(table *t, size_t cols)
{
    memset(t, 0, sizeof(*t));
    t->cols = cols;
    t->right = calloc(cols, sizeof(*t->right));
    return t->right ? 0 : -1;
}

static int table_add(table *t, const char *const *row)
{
    size_t c;

    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        char **grown = realloc(t->cells, cap * t->cols * sizeof(*grown));
        if (!grown) {
            return -1;
        }
        t->cells = grown;
        t->cap = cap;
    }
    for (c = 0; c < t->cols; c++) {
        t->cells[t->rows * t->cols + c] = strdup(row[c] ? row[c] : "");
        if (!t->cells[t->rows * t->cols + c]) {
            return -1;
        }
    }
    t->rows++;
    return 0;
}

static void table_print(const table *t, FILE *f)
{
    size_t *widths = calloc(t->cols, sizeof(*widths));
    size_t r, c, bytes;

    if (!widths) {
        return;
    }
    for (r = 0; r < t->rows; r++) {
        for (c = 0; c < t->cols; c++) {
            size_t w = display_width(t->cells[r * t->cols + c], &bytes, CELL_WIDTH_MAX);
            if (w > widths[c]) {
                widths[c] = w;
            }
        }
    }
    for (r = 0; r < t->rows; r++) {
        for (c = 0; c < t->cols; c++) {
            const char *cell = t->cells[r * t->cols + c];
            size_t w = display_width(cell, &bytes, CELL_WIDTH_MAX);
            bool cut = bytes < strlen(cell);
            size_t pad = widths[c] - w, i;

            if (t->right[c] && r > 0) {
                for (i = 0; i < pad; i++) {
                    fputc(' ', f);
                }
            }
            fwrite(cell, 1, bytes, f);
            if (cut && w < widths[c]) {
                pad--;
            }
            if (cut) {
                fputs("\xe2\x80\xa6", f); /* an ellipsis marks a cut cell */
            }
            if (c + 1 < t->cols) {
                if (!(t->right[c] && r > 0)) {
                    for (i = 0; i < pad; i++) {
                        fputc(' ', f);
                    }
                }
                fputs("  ", f);
            }
        }
        fputc('\n', f);
    }
    free(widths);
}

static void table_dispose(table *t)
{
    size_t i;

    for (i = 0; i < t->rows * t->cols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t->right);
}

/* RFC 4180: quote a field that holds a delimiter, a quote or a line break. */
static void csv_field(FILE *f, const char *s, bool last)
{
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') {
                fputc('"', f);
            }
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputc(last ? '\n' : ',', f);
}

static void csv_row(FILE *f, const char *const *row, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        csv_field(f, row[i] ? row[i] : "", i + 1 == n);
    }
}

static int print_json(json_t *doc)
{
    int rc = doc ? json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : -1;

    json_decref(doc);
    if (rc != 0) {
        fprintf(stderr, "acctmap: out of memory writing JSON\n");
        return EXIT_RUNTIME;
    }
    fputc('\n', stdout);
    return 0;
}

static void format_count(char *out, size_t cap, uint64_t n)
{
    snprintf(out, cap, "%llu", (unsigned long long)n);
}

/* An amount in cents as the CSVs write it: "15000.50", "-3.05". */
static void format_cents(char *out, size_t cap, int64_t cents)
{
    uint64_t v = cents < 0 ? 0 - (uint64_t)cents : (uint64_t)cents;

    snprintf(out, cap, "%s%llu.%02llu", cents < 0 ? "-" : "", (unsigned long long)(v / 100),
             (unsigned long long)(v % 100));
}

static void format_time(char *out, size_t cap, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%SZ", &tm);
}

/* ---- opening config and store ---------------------------------------------- */

static am_status open_config(cli *c, am_error *err)
{
    return am_config_load(&c->cfg, c->config_path, err);
}

static am_status open_store(cli *c, am_error *err)
{
    am_status rc = open_config(c, err);

    if (rc) {
        return rc;
    }
    return am_store_open_schema(&c->store, am_config_store(c->cfg), am_config_base_dir(c->cfg),
                                am_config_store_schema(c->cfg), err);
}

static am_status load_run(am_run **out, cli *c, const char *run_id, am_error *err)
{
    am_status rc = open_store(c, err);

    return rc ? rc : am_store_run_load(out, c->store, run_id, err);
}

/*
 * The run (latest or --run) and the index of PARTNER in it. Returns 0, or the
 * exit code after printing why.
 */
static int load_partner(am_run **run_out, int *partner_out, cli *c, const char *verb,
                        const verb_args *a)
{
    am_error err = {AM_OK, ""};
    int partner;

    *partner_out = -1;
    if (load_run(run_out, c, a->run_id, &err)) {
        return fail(&err);
    }
    partner = am_run_org_find(*run_out, a->positional[0]);
    if (partner <= 0) {
        return usage_error("%s: \"%s\" is not a partner in run %s; `acctmap matrix` lists them",
                           verb, a->positional[0], (*run_out)->id);
    }
    *partner_out = partner;
    return 0;
}

/* ---- run ------------------------------------------------------------------- */

/* Messages shown per org; sources are read in parallel, so orgs interleave. */
typedef struct run_progress {
    const char *orgs[64];
    size_t shown[64];
    size_t hidden[64];
    size_t org_count;
    size_t overflow; /* lines of orgs past the 64th, not shown */
} run_progress;

static void on_message(void *ctx, const char *org, bool rejected, const char *line)
{
    run_progress *p = ctx;
    size_t i;

    for (i = 0; i < p->org_count && strcmp(p->orgs[i], org) != 0; i++) {
    }
    if (i == p->org_count) {
        if (i == 64) {
            p->overflow++;
            return;
        }
        p->orgs[p->org_count++] = org;
    }
    if (p->shown[i] < MESSAGES_SHOWN_PER_ORG) {
        fprintf(stderr, "acctmap: %s: %s\n", rejected ? "rejected" : "warning", line);
        p->shown[i]++;
    } else {
        p->hidden[i]++;
    }
}

/*
 * A source's progress, on a terminal only: one line kept up to date
 * (carriage return, clear to the end), ended when the source is done.
 * Workers call this; flockfile keeps their lines whole.
 */
static void on_source_progress(void *ctx, const char *line, bool done)
{
    (void)ctx;
    flockfile(stderr);
    fprintf(stderr, "\r%s\033[K%s", line, done ? "\n" : "");
    fflush(stderr);
    funlockfile(stderr);
}

static void print_hidden(const run_progress *p)
{
    size_t i;

    for (i = 0; i < p->org_count; i++) {
        if (p->hidden[i]) {
            fprintf(stderr, "acctmap: %s: %zu more rejected rows and warnings, all kept with "
                    "the run (messages.txt)\n", p->orgs[i], p->hidden[i]);
        }
    }
    if (p->overflow) {
        fprintf(stderr, "acctmap: %zu more rejected rows and warnings, all kept with the run "
                "(messages.txt)\n", p->overflow);
    }
}

/*
 * The summary's last line: per partner, the pairs of records matched now and
 * not in the previous run. The run is committed already: a failure here is a
 * warning, not the run's failure.
 */
static void print_new_overlaps(cli *c, const am_run *run)
{
    am_error err = {AM_OK, ""};
    char **ids = NULL;
    size_t count = 0, k, i;
    am_run *prev = NULL;
    am_diff *d = NULL;
    am_status rc = am_store_run_ids(&ids, &count, c->store, &err);

    for (k = 0; !rc && k < count && strcmp(ids[k], run->id) != 0; k++) {
    }
    if (!rc && (k == 0 || k == count)) {
        printf("\nnew overlaps: first run\n");
        goto cleanup;
    }
    if (!rc) {
        rc = am_store_run_load(&prev, c->store, ids[k - 1], &err);
    }
    if (!rc) {
        rc = am_diff_runs(&d, c->store, prev, run, true, &err);
    }
    if (rc) {
        fprintf(stderr, "acctmap: warning: new overlaps not counted: %s\n", err.msg);
        goto cleanup;
    }
    printf("\nnew overlaps since run %s:", prev->id);
    for (i = 0; i < d->partner_count; i++) {
        if (d->partners[i].in_b) {
            printf("%s %s %llu", i ? "," : "", d->partners[i].partner,
                   (unsigned long long)d->partners[i].gained);
        }
    }
    fputc('\n', stdout);
cleanup:
    am_diff_free(d);
    am_run_free(prev);
    am_store_run_ids_free(ids, count);
}

static int verb_run(cli *c, int argc, char **argv)
{
    am_error err = {AM_OK, ""};
    am_run *run = NULL;
    am_run_timings timings;
    run_progress progress;
    am_run_observer obs = {.ctx = &progress, .on_message = on_message};
    verb_args a;
    uint64_t records = 0, rejected = 0, warnings = 0;
    table t;
    size_t i;
    am_status rc;
    int code;

    memset(&progress, 0, sizeof(progress));
    code = parse_verb_args(&a, "run", run_help, argc, argv, "", 0);
    if (code || a.help) {
        return code;
    }
    if (isatty(STDERR_FILENO)) {
        obs.on_source_progress = on_source_progress;
    }
    rc = open_store(c, &err);
    if (!rc) {
        rc = am_run_batch(&run, &timings, c->cfg, c->store, &obs, &err);
    }
    print_hidden(&progress);
    if (rc) {
        return fail(&err);
    }
    for (i = 0; i < run->org_count; i++) {
        records += run->orgs[i].records;
        rejected += run->orgs[i].rejected;
        warnings += run->orgs[i].warnings;
    }
    printf("run %s committed to %s in %.2f s\n", run->id, am_store_describe(c->store),
           (double)(run->finished_ms - run->started_ms) / 1000.0);
    printf("orgs %zu, records read %llu, rejected %llu, warnings %llu, entities %u\n",
           run->org_count, (unsigned long long)records, (unsigned long long)rejected,
           (unsigned long long)warnings, run->entity_count);
    printf("seconds: read %.2f, keys %.2f, resolve %.2f, index %.2f, matrices %.4f, "
           "reports %.2f, store %.2f\n\n", timings.read, timings.keys, timings.resolve,
           timings.index, timings.matrix, timings.reports, timings.store);
    if (table_init(&t, 5) == 0) {
        const char *head[] = {"ORG", "RECORDS", "REJECTED", "WARNINGS", "SHARED ENTITIES"};
        t.right[1] = t.right[2] = t.right[3] = t.right[4] = true;
        table_add(&t, head);
        for (i = 0; i < run->org_count; i++) {
            const am_run_org *o = &run->orgs[i];
            char n1[24], n2[24], n3[24], n4[24], label[80];
            snprintf(label, sizeof(label), "%s%s", o->id, o->is_self ? " (self)" : "");
            format_count(n1, sizeof(n1), o->records);
            format_count(n2, sizeof(n2), o->rejected);
            format_count(n3, sizeof(n3), o->warnings);
            if (o->is_self) {
                snprintf(n4, sizeof(n4), "-");
            } else {
                format_count(n4, sizeof(n4), o->overlap);
            }
            const char *row[] = {label, n1, n2, n3, n4};
            table_add(&t, row);
        }
        table_print(&t, stdout);
        table_dispose(&t);
    }
    print_new_overlaps(c, run);
    printf("\nSee the matrices with `acctmap matrix`.\n");
    am_run_free(run);
    return 0;
}

/* ---- runs ------------------------------------------------------------------ */

static json_t *run_summary_json(const am_run *run)
{
    json_t *o = json_object();
    json_t *inputs = json_array();
    uint64_t records = 0, rejected = 0;
    char when[32];
    size_t i, s;

    format_time(when, sizeof(when), run->finished_ms);
    for (i = 0; i < run->org_count; i++) {
        records += run->orgs[i].records;
        rejected += run->orgs[i].rejected;
        for (s = 0; s < run->orgs[i].source_count; s++) {
            const am_run_source *src = &run->orgs[i].sources[s];
            json_t *in = json_object();
            json_object_set_new(in, "org", json_string(run->orgs[i].id));
            json_object_set_new(in, "type", json_string(src->type));
            json_object_set_new(in, "label", json_string(src->label));
            json_object_set_new(in, "fingerprint", json_string(src->fingerprint));
            json_object_set_new(in, "records", json_integer((json_int_t)src->records));
            json_object_set_new(in, "rejected", json_integer((json_int_t)src->rejected));
            json_array_append_new(inputs, in);
        }
    }
    json_object_set_new(o, "run", json_string(run->id));
    json_object_set_new(o, "finished", json_string(when));
    json_object_set_new(o, "seconds",
                        json_real((double)(run->finished_ms - run->started_ms) / 1000.0));
    json_object_set_new(o, "records", json_integer((json_int_t)records));
    json_object_set_new(o, "rejected", json_integer((json_int_t)rejected));
    json_object_set_new(o, "entities", json_integer(run->entity_count));
    json_object_set_new(o, "inputs", inputs);
    return o;
}

static int verb_runs(cli *c, int argc, char **argv)
{
    am_error err = {AM_OK, ""};
    char **ids = NULL;
    size_t count = 0, i;
    json_t *all = NULL;
    table t;
    verb_args a;
    am_status rc;
    int code = parse_verb_args(&a, "runs", runs_help, argc, argv, "format csv", 0);

    if (code || a.help) {
        return code;
    }
    rc = open_store(c, &err);
    if (!rc) {
        rc = am_store_run_ids(&ids, &count, c->store, &err);
    }
    if (rc) {
        return fail(&err);
    }
    all = json_array();
    for (i = 0; !rc && i < count; i++) {
        am_run *run = NULL;
        rc = am_store_run_load(&run, c->store, ids[i], &err);
        if (!rc) {
            json_array_append_new(all, run_summary_json(run));
        }
        am_run_free(run);
    }
    am_store_run_ids_free(ids, count);
    if (rc) {
        json_decref(all);
        return fail(&err);
    }
    if (a.format == FORMAT_JSON) {
        json_t *doc = json_object();
        json_object_set_new(doc, "runs", all);
        return print_json(doc);
    }
    if (a.format == FORMAT_CSV) {
        const char *head[] = {"run", "finished", "seconds", "records", "rejected", "entities",
                              "org", "source", "label", "fingerprint"};
        csv_row(stdout, head, 10);
    } else if (json_array_size(all) == 0) {
        printf("No runs yet in %s; start one with `acctmap run`.\n",
               am_store_describe(c->store));
        json_decref(all);
        return 0;
    } else if (table_init(&t, 7) == 0) {
        const char *head[] = {"RUN", "FINISHED", "SECONDS", "RECORDS", "REJECTED", "ENTITIES",
                              "INPUTS (org/source fingerprint)"};
        t.right[2] = t.right[3] = t.right[4] = t.right[5] = true;
        table_add(&t, head);
    }
    for (i = 0; i < json_array_size(all); i++) {
        json_t *r = json_array_get(all, i);
        json_t *inputs = json_object_get(r, "inputs");
        char secs[32], rec[24], rej[24], ent[24];
        size_t k;

        snprintf(secs, sizeof(secs), "%.2f", json_real_value(json_object_get(r, "seconds")));
        format_count(rec, sizeof(rec), (uint64_t)json_integer_value(json_object_get(r, "records")));
        format_count(rej, sizeof(rej), (uint64_t)json_integer_value(json_object_get(r, "rejected")));
        format_count(ent, sizeof(ent), (uint64_t)json_integer_value(json_object_get(r, "entities")));
        for (k = 0; k < json_array_size(inputs); k++) {
            json_t *in = json_array_get(inputs, k);
            const char *org = json_string_value(json_object_get(in, "org"));
            const char *type = json_string_value(json_object_get(in, "type"));
            const char *fp = json_string_value(json_object_get(in, "fingerprint"));
            if (a.format == FORMAT_CSV) {
                const char *row[] = {json_string_value(json_object_get(r, "run")),
                                     json_string_value(json_object_get(r, "finished")),
                                     secs, rec, rej, ent, org, type,
                                     json_string_value(json_object_get(in, "label")), fp};
                csv_row(stdout, row, 10);
            } else {
                char input[128];
                snprintf(input, sizeof(input), "%s/%s %.16s", org, type, fp);
                const char *first[] = {json_string_value(json_object_get(r, "run")),
                                       json_string_value(json_object_get(r, "finished")),
                                       secs, rec, rej, ent, input};
                const char *more[] = {"", "", "", "", "", "", input};
                table_add(&t, k == 0 ? first : more);
            }
        }
    }
    if (a.format == FORMAT_TABLE) {
        table_print(&t, stdout);
        table_dispose(&t);
    }
    json_decref(all);
    return 0;
}

/* ---- matrix ---------------------------------------------------------------- */

static json_t *string_array(const char *const *items, size_t n)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < n; i++) {
        json_array_append_new(a, json_string(items[i]));
    }
    return a;
}

/* The matrix, or with `pipeline` each cell's open pipeline value. */
static void print_matrix_cells(const am_run *run, const am_run_org *o, bool pipeline)
{
    const am_run_org *self = &run->orgs[0];
    table t;
    size_t i, j;

    if (table_init(&t, o->population_count + 1) != 0) {
        return;
    }
    {
        const char *head[AM_POPULATION_MAX + 1];
        char names[AM_POPULATION_MAX][48];
        head[0] = "";
        for (j = 0; j < o->population_count; j++) {
            snprintf(names[j], sizeof(names[j]), "their %s", o->populations[j]);
            head[j + 1] = names[j];
            t.right[j + 1] = true;
        }
        table_add(&t, head);
    }
    for (i = 0; i < self->population_count; i++) {
        const char *row[AM_POPULATION_MAX + 1];
        char label[48], counts[AM_POPULATION_MAX][24];
        snprintf(label, sizeof(label), "our %s", self->populations[i]);
        row[0] = label;
        for (j = 0; j < o->population_count; j++) {
            if (pipeline) {
                format_cents(counts[j], sizeof(counts[j]),
                             o->pipeline.cents[i * o->pipeline.cols + j]);
            } else {
                format_count(counts[j], sizeof(counts[j]),
                             o->matrix.cells[i * o->matrix.cols + j]);
            }
            row[j + 1] = counts[j];
        }
        table_add(&t, row);
    }
    table_print(&t, stdout);
    table_dispose(&t);
}

static void print_matrix_table(const am_run *run, const am_run_org *o)
{
    printf("%s (%s): %llu shared entities\n", o->id, o->name, (unsigned long long)o->overlap);
    print_matrix_cells(run, o, false);
    if (o->pipeline.cents) {
        printf("open pipeline (amounts of our opportunities in each cell):\n");
        print_matrix_cells(run, o, true);
    }
}

static int verb_matrix(cli *c, int argc, char **argv)
{
    am_error err = {AM_OK, ""};
    am_run *run = NULL;
    verb_args a;
    size_t i, j, k;
    int partner = -1;
    int code = parse_verb_args(&a, "matrix", matrix_help, argc, argv, "json format run", 1);

    if (code || a.help) {
        return code;
    }
    if (load_run(&run, c, a.run_id, &err)) {
        return fail(&err);
    }
    if (a.positional_count) {
        partner = am_run_org_find(run, a.positional[0]);
        if (partner <= 0) {
            usage_error("matrix: \"%s\" is not a partner in run %s; partners: %s%s", a.positional[0],
                        run->id, run->org_count > 1 ? run->orgs[1].id : "none",
                        run->org_count > 2 ? ", ..." : "");
            am_run_free(run);
            return EXIT_USAGE;
        }
    }
    if (a.format == FORMAT_JSON) {
        json_t *doc = json_object();
        json_t *partners = json_array();
        const am_run_org *self = &run->orgs[0];
        json_object_set_new(doc, "run", json_string(run->id));
        json_object_set_new(doc, "self", json_string(self->id));
        for (i = 1; i < run->org_count; i++) {
            const am_run_org *o = &run->orgs[i];
            json_t *p, *rows;
            if (partner > 0 && (size_t)partner != i) {
                continue;
            }
            p = json_object();
            rows = json_array();
            json_object_set_new(p, "partner", json_string(o->id));
            json_object_set_new(p, "ours", string_array(self->populations,
                                                        self->population_count));
            json_object_set_new(p, "theirs", string_array(o->populations, o->population_count));
            for (j = 0; j < o->matrix.rows; j++) {
                json_t *row = json_array();
                for (k = 0; k < o->matrix.cols; k++) {
                    json_array_append_new(
                        row, json_integer((json_int_t)o->matrix.cells[j * o->matrix.cols + k]));
                }
                json_array_append_new(rows, row);
            }
            json_object_set_new(p, "matrix", rows);
            if (o->pipeline.cents) {
                rows = json_array();
                for (j = 0; j < o->pipeline.rows; j++) {
                    json_t *row = json_array();
                    for (k = 0; k < o->pipeline.cols; k++) {
                        json_array_append_new(row, json_integer((json_int_t)o->pipeline
                                                                    .cents[j * o->pipeline.cols + k]));
                    }
                    json_array_append_new(rows, row);
                }
                json_object_set_new(p, "pipeline_cents", rows);
            }
            json_array_append_new(partners, p);
        }
        json_object_set_new(doc, "partners", partners);
        am_run_free(run);
        return print_json(doc);
    }
    printf("run %s, self: %s (%s)\n", run->id, run->orgs[0].id, run->orgs[0].name);
    for (i = 1; i < run->org_count; i++) {
        if (partner > 0 && (size_t)partner != i) {
            continue;
        }
        fputc('\n', stdout);
        print_matrix_table(run, &run->orgs[i]);
    }
    am_run_free(run);
    return 0;
}

/* ---- accounts -------------------------------------------------------------- */

static int find_population(const am_run_org *o, const char *name)
{
    size_t i;

    for (i = 0; i < o->population_count; i++) {
        if (strcmp(o->populations[i], name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static void join_populations(char *out, size_t cap, const am_run_org *o, uint32_t mask)
{
    size_t i, used = 0;

    out[0] = '\0';
    for (i = 0; i < o->population_count && used < cap; i++) {
        if (mask & ((uint32_t)1 << i)) {
            int n = snprintf(out + used, cap - used, "%s%s", used ? ";" : "", o->populations[i]);
            if (n < 0) {
                break;
            }
            used += (size_t)n;
        }
    }
}

static int verb_accounts(cli *c, int argc, char **argv)
{
    am_error err = {AM_OK, ""};
    am_run *run = NULL;
    am_index *ix = NULL;
    am_normalizer *norm = NULL;
    am_record_batch ours, theirs;
    am_pair *pairs = NULL;
    size_t pair_count = 0, i;
    am_key_set *ka = NULL, *kb = NULL;
    json_t *doc = NULL, *list = NULL;
    table t;
    bool table_ready = false;
    verb_args a;
    int partner, our_pop = AM_POP_ANY, their_pop = AM_POP_ANY;
    int code = parse_verb_args(&a, "accounts", accounts_help, argc, argv,
                               "ours theirs format csv run", 1);
    am_status rc;

    if (code || a.help) {
        return code;
    }
    if (a.positional_count != 1) {
        return usage_error("accounts: name a partner: `acctmap accounts PARTNER`");
    }
    am_record_batch_init(&ours);
    am_record_batch_init(&theirs);
    code = load_partner(&run, &partner, c, "accounts", &a);
    if (code) {
        goto cleanup;
    }
    if (a.ours && (our_pop = find_population(&run->orgs[0], a.ours)) < 0) {
        code = usage_error("accounts: --ours \"%s\" is not one of our populations; see "
                           "`acctmap matrix`", a.ours);
        goto cleanup;
    }
    if (a.theirs && (their_pop = find_population(&run->orgs[partner], a.theirs)) < 0) {
        code = usage_error("accounts: --theirs \"%s\" is not a population of %s; see "
                           "`acctmap matrix %s`", a.theirs, run->orgs[partner].id,
                           run->orgs[partner].id);
        goto cleanup;
    }
    rc = am_store_run_load_index(&ix, c->store, run, &err);
    if (!rc) {
        rc = am_index_prepare_lookup(ix, 0, &err);
    }
    if (!rc) {
        rc = am_index_prepare_lookup(ix, (size_t)partner, &err);
    }
    if (!rc) {
        rc = am_overlap_cell_pairs(&pairs, &pair_count, ix, 0, our_pop, (size_t)partner,
                                   their_pop, &err);
    }
    if (!rc) {
        rc = am_store_run_load_records(&ours, c->store, run, 0, &err);
    }
    if (!rc) {
        rc = am_store_run_load_records(&theirs, c->store, run, (size_t)partner, &err);
    }
    if (!rc) {
        rc = am_normalizer_new(&norm, &err);
    }
    ka = malloc(sizeof(*ka));
    kb = malloc(sizeof(*kb));
    if (!rc && (!ka || !kb)) {
        rc = am_error_set(&err, AM_ENOMEM, "out of memory");
    }
    if (rc) {
        code = fail(&err);
        goto cleanup;
    }

    if (a.format == FORMAT_JSON) {
        doc = json_object();
        list = json_array();
        json_object_set_new(doc, "run", json_string(run->id));
        json_object_set_new(doc, "partner", json_string(run->orgs[partner].id));
        json_object_set_new(doc, "ours", a.ours ? json_string(a.ours) : json_null());
        json_object_set_new(doc, "theirs", a.theirs ? json_string(a.theirs) : json_null());
    } else if (a.format == FORMAT_CSV) {
        const char *head[] = {"our_id", "their_id", "entity", "our_name", "their_name",
                              "matched_by", "key", "our_populations", "their_populations"};
        csv_row(stdout, head, 9);
    } else if (table_init(&t, 7) == 0) {
        const char *head[] = {"OUR ID", "THEIR ID", "ENTITY", "OUR NAME", "THEIR NAME",
                              "MATCHED BY", "KEY"};
        table_ready = true;
        t.right[2] = true;
        table_add(&t, head);
    }
    for (i = 0; i < pair_count; i++) {
        const am_record *o = &ours.records[pairs[i].our_record];
        const am_record *p = &theirs.records[pairs[i].their_record];
        const char *matched_by;
        int shared;
        char key[AM_KEY_TEXT_MAX], entity[16], our_pops[256], their_pops[256];

        rc = am_keys_from_record(ka, norm, run->orgs[0].id, o, &err);
        if (!rc) {
            rc = am_keys_from_record(kb, norm, run->orgs[partner].id, p, &err);
        }
        if (rc) {
            code = fail(&err);
            goto cleanup;
        }
        matched_by = am_keys_matched_by(&shared, ka, kb);
        snprintf(key, sizeof(key), "%s", shared >= 0 ? ka->text[shared] : "");
        snprintf(entity, sizeof(entity), "%u", pairs[i].entity);
        join_populations(our_pops, sizeof(our_pops), &run->orgs[0], o->populations);
        join_populations(their_pops, sizeof(their_pops), &run->orgs[partner], p->populations);
        if (a.format == FORMAT_JSON) {
            json_t *row = json_object();
            json_object_set_new(row, "our_id", json_string(o->id));
            json_object_set_new(row, "their_id", json_string(p->id));
            json_object_set_new(row, "entity", json_integer(pairs[i].entity));
            json_object_set_new(row, "our_name", json_string(o->name));
            json_object_set_new(row, "their_name", json_string(p->name));
            json_object_set_new(row, "matched_by", json_string(matched_by));
            json_object_set_new(row, "key", json_string(key));
            json_object_set_new(row, "our_populations", json_string(our_pops));
            json_object_set_new(row, "their_populations", json_string(their_pops));
            json_array_append_new(list, row);
        } else {
            const char *row[] = {o->id,      p->id, entity,   o->name,
                                 p->name,    matched_by, key, our_pops, their_pops};
            if (a.format == FORMAT_CSV) {
                csv_row(stdout, row, 9);
            } else if (table_ready) {
                table_add(&t, row);
            }
        }
    }
    if (a.format == FORMAT_JSON) {
        json_object_set_new(doc, "pairs", list);
        list = NULL;
        code = print_json(doc);
        doc = NULL;
    } else if (table_ready) {
        table_print(&t, stdout);
        printf("%zu pairs\n", pair_count);
    }
cleanup:
    if (table_ready) {
        table_dispose(&t);
    }
    json_decref(list);
    json_decref(doc);
    free(ka);
    free(kb);
    free(pairs);
    am_normalizer_free(norm);
    am_record_batch_dispose(&ours);
    am_record_batch_dispose(&theirs);
    am_index_free(ix);
    am_run_free(run);
    return code;
}

/* ---- explain --------------------------------------------------------------- */

static int find_record(const am_record_batch *records, const char *id)
{
    size_t i, len = strlen(id);

    for (i = 0; i < records->count; i++) {
        const char *have = records->records[i].id;
        if (strlen(have) == len && memcmp(have, id, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static void print_record_keys(const char *side, const char *org, const am_record *r,
                              const am_key_set *k)
{
    size_t i;

    printf("%s  %s/%s  %s (line %u)\n", side, org, r->id, r->name[0] ? r->name : "(no name)",
           r->line);
    for (i = 0; i < k->count; i++) {
        printf("    key   %s\n", k->text[i]);
    }
    if (k->city) {
        printf("    city  %s\n", k->city_text);
    }
    if (k->person) {
        printf("    an individual entrepreneur: never linked by name alone\n");
    }
    for (i = 0; i < k->warning_count; i++) {
        printf("    not a key: %s\n", k->warnings[i]);
    }
}

/* A record of some org of the run, for the evidence chain. */
typedef struct chain_node {
    size_t org;
    uint32_t rec;
    int prev;        /* node it was reached from, -1 for the start */
    int prev_key;    /* index in the previous node's keys of the key shared */
    am_key_set keys;
} chain_node;

#define CHAIN_NODES_MAX 256

/*
 * The chain of records and shared keys from our record to theirs inside one
 * entity: breadth first over the entity's records in every org.
 */
static am_status print_chain(am_store *st, const am_run *run, am_index *ix,
                             am_normalizer *norm, uint32_t entity, size_t ours, uint32_t our_rec,
                             size_t theirs, uint32_t their_rec, am_error *err)
{
    chain_node *nodes = calloc(CHAIN_NODES_MAX, sizeof(*nodes));
    am_record_batch *recs = calloc(run->org_count, sizeof(*recs));
    size_t count = 0, head = 0, org, i, j, k;
    int found = -1;
    bool have_ours = false;
    am_status rc = AM_OK;

    if (!nodes || !recs) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (org = 0; org < run->org_count; org++) {
        am_record_batch_init(&recs[org]);
    }
    for (org = 0; !rc && org < run->org_count; org++) {
        const uint32_t *members;
        size_t n;
        rc = am_index_prepare_lookup(ix, org, err);
        if (rc) {
            break;
        }
        n = am_index_entity_records(&members, ix, org, entity);
        if (n == 0) {
            continue;
        }
        rc = am_store_run_load_records(&recs[org], st, run, org, err);
        for (i = 0; !rc && i < n && count < CHAIN_NODES_MAX; i++) {
            chain_node *node = &nodes[count];
            node->org = org;
            node->rec = members[i];
            node->prev = -1;
            rc = am_keys_from_record(&node->keys, norm, run->orgs[org].id,
                                     &recs[org].records[members[i]], err);
            /* Our record starts the search. */
            if (org == ours && members[i] == our_rec) {
                have_ours = true;
                if (count != 0) {
                    chain_node t = nodes[0];
                    nodes[0] = *node;
                    *node = t;
                }
            }
            count++;
        }
    }
    if (rc) {
        goto cleanup;
    }
    /* Breadth first from node 0 (ours); visited nodes have prev set or are node 0. */
    for (head = 0; have_ours && head < count && found < 0; head++) {
        for (j = 1; j < count; j++) {
            int key;
            if (nodes[j].prev >= 0 || j == head) {
                continue;
            }
            am_keys_matched_by(&key, &nodes[head].keys, &nodes[j].keys);
            if (key < 0) {
                continue;
            }
            nodes[j].prev = (int)head;
            nodes[j].prev_key = key;
            if (nodes[j].org == theirs && nodes[j].rec == their_rec) {
                found = (int)j;
                break;
            }
        }
    }
    if (found < 0) {
        printf("  (the chain runs through more than %d records; not shown)\n", CHAIN_NODES_MAX);
        goto cleanup;
    }
    {
        int path[CHAIN_NODES_MAX], len = 0, at;
        for (at = found; at >= 0; at = nodes[at].prev) {
            path[len++] = at;
            if (at == 0) {
                break;
            }
        }
        for (k = (size_t)len; k-- > 1;) {
            const chain_node *from = &nodes[path[k]], *to = &nodes[path[k - 1]];
            printf("  %s/%s  --%s-->  %s/%s\n", run->orgs[from->org].id,
                   recs[from->org].records[from->rec].id, from->keys.text[to->prev_key],
                   run->orgs[to->org].id, recs[to->org].records[to->rec].id);
        }
    }
cleanup:
    for (org = 0; recs && org < run->org_count; org++) {
        am_record_batch_dispose(&recs[org]);
    }
    free(recs);
    free(nodes);
    return rc;
}

static int verb_explain(cli *c, int argc, char **argv)
{
    am_error err = {AM_OK, ""};
    am_run *run = NULL;
    am_index *ix = NULL;
    am_normalizer *norm = NULL;
    am_record_batch ours, theirs;
    am_key_set *ka = malloc(sizeof(*ka)), *kb = malloc(sizeof(*kb));
    verb_args a;
    int partner, our_rec = -1, their_rec = -1, shared;
    int code = parse_verb_args(&a, "explain", explain_help, argc, argv, "run", 3);
    uint32_t e1, e2;
    am_status rc;

    am_record_batch_init(&ours);
    am_record_batch_init(&theirs);
    if (code || a.help) {
        goto cleanup;
    }
    if (a.positional_count != 3) {
        code = usage_error("explain: name a partner and two record ids: `acctmap explain "
                           "PARTNER OUR_ID THEIR_ID`");
        goto cleanup;
    }
    if (!ka || !kb) {
        code = usage_error("out of memory");
        goto cleanup;
    }
    code = load_partner(&run, &partner, c, "explain", &a);
    if (code) {
        goto cleanup;
    }
    rc = am_store_run_load_records(&ours, c->store, run, 0, &err);
    if (!rc) {
        rc = am_store_run_load_records(&theirs, c->store, run, (size_t)partner, &err);
    }
    if (!rc) {
        rc = am_store_run_load_index(&ix, c->store, run, &err);
    }
    if (!rc) {
        rc = am_normalizer_new(&norm, &err);
    }
    if (rc) {
        code = fail(&err);
        goto cleanup;
    }
    our_rec = find_record(&ours, a.positional[1]);
    their_rec = find_record(&theirs, a.positional[2]);
    if (our_rec < 0 || their_rec < 0) {
        code = usage_error("explain: no record \"%s\" in %s's records of run %s; `acctmap "
                           "accounts %s` lists ids", our_rec < 0 ? a.positional[1]
                                                                 : a.positional[2],
                           our_rec < 0 ? run->orgs[0].id : run->orgs[partner].id, run->id,
                           run->orgs[partner].id);
        goto cleanup;
    }
    rc = am_keys_from_record(ka, norm, run->orgs[0].id, &ours.records[our_rec], &err);
    if (!rc) {
        rc = am_keys_from_record(kb, norm, run->orgs[partner].id, &theirs.records[their_rec],
                                 &err);
    }
    if (rc) {
        code = fail(&err);
        goto cleanup;
    }
    print_record_keys("ours  ", run->orgs[0].id, &ours.records[our_rec], ka);
    print_record_keys("theirs", run->orgs[partner].id, &theirs.records[their_rec], kb);
    e1 = am_index_record_entity(ix, 0, (size_t)our_rec);
    e2 = am_index_record_entity(ix, (size_t)partner, (size_t)their_rec);
    const char *matched_by = am_keys_matched_by(&shared, ka, kb);
    if (e1 == e2) {
        printf("\nthe same company (entity %u in run %s), matched by %s\n", e1, run->id,
               matched_by);
        if (shared >= 0) {
            printf("  %s/%s  --%s-->  %s/%s\n", run->orgs[0].id, ours.records[our_rec].id,
                   ka->text[shared], run->orgs[partner].id, theirs.records[their_rec].id);
        } else {
            rc = print_chain(c->store, run, ix, norm, e1, 0, (uint32_t)our_rec, (size_t)partner,
                             (uint32_t)their_rec, &err);
            if (rc) {
                code = fail(&err);
            }
        }
    } else {
        char why[400];
        printf("\nkept apart (entities %u and %u in run %s)\n", e1, e2, run->id);
        if (shared < 0) {
            printf("  they share no key\n");
        } else {
            am_keys_conflict(why, sizeof(why), ka, kb, shared);
            if (!why[0]) {
                am_keys_conflict(why, sizeof(why), kb, ka, -1);
            }
            printf("  they share %s, but %s\n", ka->text[shared],
                   why[0] ? why
                          : "other records that share it belong to companies that conflict "
                            "(different tax ids, cities or websites), so it links none of them");
        }
    }
cleanup:
    free(ka);
    free(kb);
    am_normalizer_free(norm);
    am_record_batch_dispose(&ours);
    am_record_batch_dispose(&theirs);
    am_index_free(ix);
    am_run_free(run);
    return code;
}

/* ---- diff ------------------------------------------------------------------ */

/* A record's id for a table: "ID", or "ID (source N)" beyond an org's first source. */
static void format_record_id(char *out, size_t cap, uint32_t source, const char *id)
{
    if (source) {
        snprintf(out, cap, "%s (source %u)", id, source);
    } else {
        snprintf(out, cap, "%s", id);
    }
}

static json_t *cents_or_null(bool has, int64_t cents)
{
    return has ? json_integer((json_int_t)cents) : json_null();
}

static json_t *diff_json(const am_diff *d, const am_run *a, const am_run *b)
{
    json_t *doc = json_object(), *partners = json_array(), *cells = json_array();
    json_t *changes = json_array();
    size_t i;

    json_object_set_new(doc, "run_a", json_string(a->id));
    json_object_set_new(doc, "run_b", json_string(b->id));
    for (i = 0; i < d->partner_count; i++) {
        const am_diff_partner *p = &d->partners[i];
        json_t *o = json_object();
        json_object_set_new(o, "partner", json_string(p->partner));
        json_object_set_new(o, "name", json_string(p->name));
        json_object_set_new(o, "in_a", json_boolean(p->in_a));
        json_object_set_new(o, "in_b", json_boolean(p->in_b));
        json_object_set_new(o, "gained", json_integer((json_int_t)p->gained));
        json_object_set_new(o, "lost", json_integer((json_int_t)p->lost));
        json_array_append_new(partners, o);
    }
    for (i = 0; i < d->cell_count; i++) {
        const am_diff_cell *cl = &d->cells[i];
        json_t *o = json_object();
        json_object_set_new(o, "partner", json_string(d->partners[cl->partner].partner));
        json_object_set_new(o, "ours", json_string(cl->ours));
        json_object_set_new(o, "theirs", json_string(cl->theirs));
        json_object_set_new(o, "gained", json_integer((json_int_t)cl->gained));
        json_object_set_new(o, "lost", json_integer((json_int_t)cl->lost));
        json_object_set_new(o, "pipeline_a_cents",
                            cents_or_null(cl->has_pipeline_a, cl->pipeline_a_cents));
        json_object_set_new(o, "pipeline_b_cents",
                            cents_or_null(cl->has_pipeline_b, cl->pipeline_b_cents));
        json_array_append_new(cells, o);
    }
    for (i = 0; i < d->change_count; i++) {
        const am_diff_change *ch = &d->changes[i];
        const am_diff_cell *cl = &d->cells[ch->cell];
        json_t *o = json_object();
        json_object_set_new(o, "partner", json_string(d->partners[cl->partner].partner));
        json_object_set_new(o, "ours", json_string(cl->ours));
        json_object_set_new(o, "theirs", json_string(cl->theirs));
        json_object_set_new(o, "change", json_string(ch->gained ? "gained" : "lost"));
        json_object_set_new(o, "our_source", json_integer(ch->our_source));
        json_object_set_new(o, "our_id", json_string(ch->our_id));
        json_object_set_new(o, "our_name", json_string(ch->our_name));
        json_object_set_new(o, "their_source", json_integer(ch->their_source));
        json_object_set_new(o, "their_id", json_string(ch->their_id));
        json_object_set_new(o, "their_name", json_string(ch->their_name));
        json_object_set_new(o, "open_amount_cents",
                            cents_or_null(ch->has_open_amount, ch->open_amount_cents));
        json_array_append_new(changes, o);
    }
    json_object_set_new(doc, "partners", partners);
    json_object_set_new(doc, "cells", cells);
    json_object_set_new(doc, "changes", changes);
    return doc;
}

static void diff_csv(const am_diff *d)
{
    const char *head[] = {"partner",    "ours",     "theirs",       "change",
                          "our_source", "our_id",   "our_name",     "their_source",
                          "their_id",   "their_name", "open_amount"};
    size_t i;

    csv_row(stdout, head, 11);
    for (i = 0; i < d->change_count; i++) {
        const am_diff_change *ch = &d->changes[i];
        const am_diff_cell *cl = &d->cells[ch->cell];
        char os[16], ts[16], amount[32] = "";
        snprintf(os, sizeof(os), "%u", ch->our_source);
        snprintf(ts, sizeof(ts), "%u", ch->their_source);
        if (ch->has_open_amount) {
            format_cents(amount, sizeof(amount), ch->open_amount_cents);
        }
        const char *row[] = {d->partners[cl->partner].partner, cl->ours, cl->theirs,
                             ch->gained ? "gained" : "lost", os, ch->our_id, ch->our_name, ts,
                             ch->their_id, ch->their_name, amount};
        csv_row(stdout, row, 11);
    }
}

static void diff_table(const am_diff *d, const am_run *a, const am_run *b)
{
    size_t p, i;

    printf("diff %s -> %s: pairs of records matched in one run and not the other\n", a->id,
           b->id);
    for (p = 0; p < d->partner_count; p++) {
        const am_diff_partner *dp = &d->partners[p];
        table t;
        bool any = false;

        printf("\n%s (%s): %llu gained, %llu lost%s\n", dp->partner, dp->name,
               (unsigned long long)dp->gained, (unsigned long long)dp->lost,
               !dp->in_a ? " (not in the first run)" : !dp->in_b ? " (not in the second run)"
                                                                 : "");
        if (table_init(&t, 7) != 0) {
            return;
        }
        {
            const char *head[] = {"CHANGE", "CELL", "OUR ID", "OUR NAME", "THEIR ID",
                                  "THEIR NAME", "OPEN AMOUNT"};
            t.right[6] = true;
            table_add(&t, head);
        }
        for (i = 0; i < d->change_count; i++) {
            const am_diff_change *ch = &d->changes[i];
            const am_diff_cell *cl = &d->cells[ch->cell];
            char cell[160], ours[160], theirs[160], amount[32] = "";
            if (cl->partner != p) {
                continue;
            }
            snprintf(cell, sizeof(cell), "our %s x their %s", cl->ours, cl->theirs);
            format_record_id(ours, sizeof(ours), ch->our_source, ch->our_id);
            format_record_id(theirs, sizeof(theirs), ch->their_source, ch->their_id);
            if (ch->has_open_amount) {
                format_cents(amount, sizeof(amount), ch->open_amount_cents);
            }
            const char *row[] = {ch->gained ? "gained" : "lost", cell, ours, ch->our_name,
                                 theirs, ch->their_name, amount};
            table_add(&t, row);
            any = true;
        }
        if (any) {
            table_print(&t, stdout);
        }
        table_dispose(&t);
        for (i = 0; i < d->cell_count; i++) {
            const am_diff_cell *cl = &d->cells[i];
            char was[32] = "-", now[32] = "-";
            if (cl->partner != p || (!cl->has_pipeline_a && !cl->has_pipeline_b) ||
                (cl->has_pipeline_a && cl->has_pipeline_b &&
                 cl->pipeline_a_cents == cl->pipeline_b_cents)) {
                continue;
            }
            if (cl->has_pipeline_a) {
                format_cents(was, sizeof(was), cl->pipeline_a_cents);
            }
            if (cl->has_pipeline_b) {
                format_cents(now, sizeof(now), cl->pipeline_b_cents);
            }
            printf("open pipeline of our %s x their %s: %s -> %s\n", cl->ours, cl->theirs, was,
                   now);
        }
    }
}

static int verb_diff(cli *c, int argc, char **argv)
{
    am_error err = {AM_OK, ""};
    am_run *a = NULL, *b = NULL;
    am_diff *d = NULL;
    char **ids = NULL;
    size_t count = 0;
    verb_args args;
    am_status rc;
    int code = parse_verb_args(&args, "diff", diff_help, argc, argv, "format csv json", 2);

    if (code || args.help) {
        return code;
    }
    if (args.positional_count == 1) {
        return usage_error("diff: name two runs or none: `acctmap diff [RUN_A RUN_B]`; "
                           "`acctmap runs` lists them");
    }
    rc = open_store(c, &err);
    if (!rc && args.positional_count == 0) {
        rc = am_store_run_ids(&ids, &count, c->store, &err);
        if (!rc && count < 2) {
            rc = am_error_set(&err, AM_ENOTFOUND, "diff: %s holds %zu run%s; a diff needs two, "
                              "run `acctmap run` again", am_store_describe(c->store), count,
                              count == 1 ? "" : "s");
        }
    }
    if (!rc) {
        rc = am_store_run_load(&a, c->store, count ? ids[count - 2] : args.positional[0], &err);
    }
    if (!rc) {
        rc = am_store_run_load(&b, c->store, count ? ids[count - 1] : args.positional[1], &err);
    }
    if (!rc) {
        rc = am_diff_runs(&d, c->store, a, b, false, &err);
    }
    if (rc) {
        code = fail(&err);
    } else if (args.format == FORMAT_JSON) {
        code = print_json(diff_json(d, a, b));
    } else if (args.format == FORMAT_CSV) {
        diff_csv(d);
    } else {
        diff_table(d, a, b);
    }
    am_diff_free(d);
    am_run_free(a);
    am_run_free(b);
    am_store_run_ids_free(ids, count);
    return code;
}

/* ---- targets and who: every partner at once --------------------------------- */

/* The run's index, ready for listings, and every org's records. */
static am_status load_everything(am_index **ix_out, am_record_batch **recs_out, cli *c,
                                 const am_run *run, am_error *err)
{
    am_record_batch *recs = calloc(run->org_count, sizeof(*recs));
    am_index *ix = NULL;
    size_t org;
    am_status rc;

    *ix_out = NULL;
    *recs_out = NULL;
    if (!recs) {
        return am_error_set(err, AM_ENOMEM, "out of memory");
    }
    for (org = 0; org < run->org_count; org++) {
        am_record_batch_init(&recs[org]);
    }
    rc = am_store_run_load_index(&ix, c->store, run, err);
    for (org = 0; !rc && org < run->org_count; org++) {
        rc = am_index_prepare_lookup(ix, org, err);
        if (!rc) {
            rc = am_store_run_load_records(&recs[org], c->store, run, org, err);
        }
    }
    if (rc) {
        for (org = 0; org < run->org_count; org++) {
            am_record_batch_dispose(&recs[org]);
        }
        free(recs);
        am_index_free(ix);
        return rc;
    }
    *ix_out = ix;
    *recs_out = recs;
    return AM_OK;
}

static void free_everything(am_index *ix, am_record_batch *recs, const am_run *run)
{
    size_t org;

    for (org = 0; recs && run && org < run->org_count; org++) {
        am_record_batch_dispose(&recs[org]);
    }
    free(recs);
    am_index_free(ix);
}

/*
 * The mask of the populations of `o` named in `list` ("a,b"). Sets *missing
 * to the first name `o` does not have (NULL when none), in `missing_buf`.
 */
static uint32_t population_mask(const am_run_org *o, const char *list, char *missing_buf,
                                size_t cap, const char **missing)
{
    uint32_t mask = 0;
    const char *p = list;

    *missing = NULL;
    while (*p) {
        size_t n = strcspn(p, ",");
        char name[80];
        int pop;
        snprintf(name, sizeof(name), "%.*s", (int)n, p);
        pop = find_population(o, name);
        if (pop >= 0) {
            mask |= (uint32_t)1 << pop;
        } else if (!*missing) {
            snprintf(missing_buf, cap, "%s", name);
            *missing = missing_buf;
        }
        p += n;
        if (*p == ',') {
            p++;
        }
    }
    return mask;
}

/* A growing string for lists of any length (a record held by 100 partners). */
typedef struct text_buf {
    char *s;
    size_t len;
    size_t cap;
    bool failed;
} text_buf;

static void text_add(text_buf *b, const char *part)
{
    size_t n = strlen(part);

    if (b->failed) {
        return;
    }
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap : 256;
        char *grown;
        while (cap - b->len <= n) {
            cap *= 2;
        }
        grown = realloc(b->s, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->s = grown;
        b->cap = cap;
    }
    memcpy(b->s + b->len, part, n + 1);
    b->len += n;
}

static json_t *string_list_json(const char *list)
{
    json_t *a = json_array();
    const char *p = list;

    while (*p) {
        size_t n = strcspn(p, ",");
        json_array_append_new(a, json_stringn(p, n));
        p += n + (p[n] == ',');
    }
    return a;
}

static int verb_targets(cli *c, int argc, char **argv)
{
    am_error err = {AM_OK, ""};
    am_run *run = NULL;
    am_index *ix = NULL;
    am_record_batch *recs = NULL;
    am_targets *tg = NULL;
    uint32_t *their_masks = NULL, our_mask;
    json_t *doc = NULL, *list = NULL;
    table t;
    bool table_ready = false, any_theirs = false;
    const char *ours_list, *theirs_list, *missing;
    char missing_buf[80];
    int64_t open_total = 0;
    size_t i, k, org;
    verb_args a;
    am_status rc;
    int code = parse_verb_args(&a, "targets", targets_help, argc, argv,
                               "ours theirs format csv json run", 0);

    if (code || a.help) {
        return code;
    }
    ours_list = a.ours ? a.ours : "prospects,opportunities";
    theirs_list = a.theirs ? a.theirs : "customers";
    if (load_run(&run, c, a.run_id, &err)) {
        return fail(&err);
    }
    our_mask = population_mask(&run->orgs[0], ours_list, missing_buf, sizeof(missing_buf),
                               &missing);
    if (missing || !our_mask) {
        code = usage_error("targets: --ours \"%s\" is not one of our populations (%s); see "
                           "`acctmap matrix`", missing ? missing : ours_list,
                           run->orgs[0].id);
        goto cleanup;
    }
    their_masks = calloc(run->org_count, sizeof(*their_masks));
    if (!their_masks) {
        code = usage_error("out of memory");
        goto cleanup;
    }
    for (org = 1; org < run->org_count; org++) {
        their_masks[org] = population_mask(&run->orgs[org], theirs_list, missing_buf,
                                           sizeof(missing_buf), &missing);
        any_theirs = any_theirs || their_masks[org];
    }
    if (!any_theirs) {
        code = usage_error("targets: --theirs \"%s\" is not a population of any partner in run "
                           "%s; see `acctmap matrix`", theirs_list, run->id);
        goto cleanup;
    }
    rc = load_everything(&ix, &recs, c, run, &err);
    if (!rc) {
        rc = am_overlap_targets(&tg, ix, &recs[0], our_mask, their_masks, &err);
    }
    if (rc) {
        code = fail(&err);
        goto cleanup;
    }
    if (a.format == FORMAT_JSON) {
        doc = json_object();
        list = json_array();
        json_object_set_new(doc, "run", json_string(run->id));
        json_object_set_new(doc, "ours", string_list_json(ours_list));
        json_object_set_new(doc, "theirs", string_list_json(theirs_list));
    } else if (a.format == FORMAT_CSV) {
        const char *head[] = {"rank",           "our_source",  "our_id",        "our_name",
                              "our_populations", "open_amount", "partner_count", "partners",
                              "their_ids"};
        csv_row(stdout, head, 9);
    } else if (table_init(&t, 7) == 0) {
        const char *head[] = {"RANK",        "OUR ID",   "OUR NAME",     "OUR POPULATIONS",
                              "OPEN AMOUNT", "PARTNERS", "HELD BY"};
        table_ready = true;
        t.right[0] = t.right[4] = t.right[5] = true;
        table_add(&t, head);
    }
    for (i = 0; i < tg->count; i++) {
        const am_target *it = &tg->items[i];
        const am_record *o = &recs[0].records[it->our_record];
        bool open = o->has_amount && (o->populations & ((uint32_t)1 << AM_POP_OPPORTUNITIES));
        char rank[24], source[16], pops[256], amount[32] = "", count[24];
        text_buf partners = {NULL, 0, 0, false}, their_ids = {NULL, 0, 0, false};
        json_t *jp = a.format == FORMAT_JSON ? json_array() : NULL, *jcur = NULL;

        snprintf(rank, sizeof(rank), "%zu", i + 1);
        snprintf(source, sizeof(source), "%u", o->source);
        join_populations(pops, sizeof(pops), &run->orgs[0], o->populations);
        if (open) {
            format_cents(amount, sizeof(amount), o->amount_cents);
            open_total += o->amount_cents;
        }
        format_count(count, sizeof(count), it->partner_count);
        for (k = it->first; k < it->first + it->match_count; k++) {
            const am_target_match *m = &tg->matches[k];
            const am_run_org *po = &run->orgs[m->partner];
            const am_record *r = &recs[m->partner].records[m->their_record];
            bool new_partner = k == it->first || tg->matches[k - 1].partner != m->partner;
            if (new_partner) {
                if (partners.len) {
                    text_add(&partners, a.format == FORMAT_TABLE ? ", " : ";");
                }
                text_add(&partners, po->id);
            }
            if (their_ids.len) {
                text_add(&their_ids, ";");
            }
            text_add(&their_ids, po->id);
            text_add(&their_ids, "/");
            text_add(&their_ids, r->id);
            if (jp) {
                json_t *rec = json_object();
                if (new_partner) {
                    jcur = json_array();
                    json_t *p = json_object();
                    json_object_set_new(p, "partner", json_string(po->id));
                    json_object_set_new(p, "name", json_string(po->name));
                    json_object_set_new(p, "records", jcur);
                    json_array_append_new(jp, p);
                }
                json_object_set_new(rec, "their_source", json_integer(r->source));
                json_object_set_new(rec, "their_id", json_string(r->id));
                json_object_set_new(rec, "their_name", json_string(r->name));
                json_array_append_new(jcur, rec);
            }
        }
        if (a.format == FORMAT_JSON) {
            json_t *row = json_object();
            json_object_set_new(row, "rank", json_integer((json_int_t)(i + 1)));
            json_object_set_new(row, "our_source", json_integer(o->source));
            json_object_set_new(row, "our_id", json_string(o->id));
            json_object_set_new(row, "our_name", json_string(o->name));
            json_object_set_new(row, "our_populations", json_string(pops));
            json_object_set_new(row, "open_amount_cents", cents_or_null(open, o->amount_cents));
            json_object_set_new(row, "partner_count", json_integer((json_int_t)it->partner_count));
            json_object_set_new(row, "partners", jp);
            json_array_append_new(list, row);
        } else if (partners.failed || their_ids.failed) {
            rc = am_error_set(&err, AM_ENOMEM, "out of memory listing targets");
        } else if (a.format == FORMAT_CSV) {
            const char *row[] = {rank,  source, o->id,      o->name,    pops,
                                 amount, count, partners.s, their_ids.s};
            csv_row(stdout, row, 9);
        } else if (table_ready) {
            char id[160];
            format_record_id(id, sizeof(id), o->source, o->id);
            const char *row[] = {rank, id, o->name, pops, amount, count, partners.s};
            table_add(&t, row);
        }
        free(partners.s);
        free(their_ids.s);
        if (rc) {
            code = fail(&err);
            goto cleanup;
        }
    }
    if (a.format == FORMAT_JSON) {
        json_object_set_new(doc, "targets", list);
        list = NULL;
        code = print_json(doc);
        doc = NULL;
    } else if (table_ready) {
        char total[32];
        format_cents(total, sizeof(total), open_total);
        printf("run %s: our %s held by partners as %s\n\n", run->id, ours_list, theirs_list);
        table_print(&t, stdout);
        printf("%zu targets, open pipeline %s\n", tg->count, total);
    }
cleanup:
    if (table_ready) {
        table_dispose(&t);
    }
    json_decref(list);
    json_decref(doc);
    am_targets_free(tg);
    free(their_masks);
    free_everything(ix, recs, run);
    am_run_free(run);
    return code;
}

/* Our records with one id, by source: sources are read side by side, so store order varies. */
static size_t records_with_id(uint32_t *out, const am_record_batch *b, const char *id)
{
    size_t i, j, n = 0;

    for (i = 0; i < b->count; i++) {
        if (strcmp(b->records[i].id, id) != 0) {
            continue;
        }
        for (j = n; j > 0 && b->records[out[j - 1]].source > b->records[i].source; j--) {
            out[j] = out[j - 1];
        }
        out[j] = (uint32_t)i;
        n++;
    }
    return n;
}

static int verb_who(cli *c, int argc, char **argv)
{
    am_error err = {AM_OK, ""};
    am_run *run = NULL;
    am_index *ix = NULL;
    am_record_batch *recs = NULL;
    am_target_match *matches = NULL;
    json_t *doc = NULL, *list = NULL;
    uint32_t *ours = NULL;
    size_t i, k, found = 0, n_ours = 0;
    verb_args a;
    am_status rc = AM_OK;
    int code = parse_verb_args(&a, "who", who_help, argc, argv, "format csv json run", 1);

    if (code || a.help) {
        return code;
    }
    if (a.positional_count != 1) {
        return usage_error("who: name one of our record ids: `acctmap who OUR_ID`");
    }
    if (load_run(&run, c, a.run_id, &err) || load_everything(&ix, &recs, c, run, &err)) {
        code = fail(&err);
        goto cleanup;
    }
    ours = malloc((recs[0].count ? recs[0].count : 1) * sizeof(*ours));
    if (!ours) {
        code = usage_error("out of memory");
        goto cleanup;
    }
    n_ours = records_with_id(ours, &recs[0], a.positional[0]);
    if (!n_ours) {
        code = usage_error("who: no record \"%s\" in %s's records of run %s; `acctmap targets` "
                           "or `acctmap accounts PARTNER` list ids", a.positional[0],
                           run->orgs[0].id, run->id);
        goto cleanup;
    }
    if (a.format == FORMAT_JSON) {
        doc = json_object();
        list = json_array();
        json_object_set_new(doc, "run", json_string(run->id));
        json_object_set_new(doc, "our_id", json_string(a.positional[0]));
    } else if (a.format == FORMAT_CSV) {
        const char *head[] = {"our_source",   "our_id",       "our_name",  "our_populations",
                              "partner",      "partner_name", "their_source", "their_id",
                              "their_name",   "their_owner",  "their_populations"};
        csv_row(stdout, head, 11);
    }
    for (i = 0; !rc && i < n_ours; i++) {
        const am_record *o = &recs[0].records[ours[i]];
        char our_pops[256], our_source[16], amount[32] = "-", id[160];
        size_t count = 0;
        table t;

        found++;
        free(matches);
        matches = NULL;
        rc = am_overlap_record_matches(&matches, &count, ix, ours[i], &err);
        if (rc) {
            break;
        }
        join_populations(our_pops, sizeof(our_pops), &run->orgs[0], o->populations);
        snprintf(our_source, sizeof(our_source), "%u", o->source);
        if (o->has_amount && (o->populations & ((uint32_t)1 << AM_POP_OPPORTUNITIES))) {
            format_cents(amount, sizeof(amount), o->amount_cents);
        }
        format_record_id(id, sizeof(id), o->source, o->id);
        if (a.format == FORMAT_TABLE) {
            printf("%s%s/%s  %s  (our %s; open amount %s; owner %s)\n", found > 1 ? "\n" : "",
                   run->orgs[0].id, id, o->name, our_pops, amount,
                   o->owner[0] ? o->owner : "-");
            if (count == 0) {
                printf("no partner has it in run %s\n", run->id);
                continue;
            }
            if (table_init(&t, 5) != 0) {
                rc = am_error_set(&err, AM_ENOMEM, "out of memory");
                break;
            }
            const char *head[] = {"PARTNER", "THEIR ID", "THEIR NAME", "OWNER",
                                  "THEIR POPULATIONS"};
            table_add(&t, head);
        }
        for (k = 0; k < count; k++) {
            const am_run_org *po = &run->orgs[matches[k].partner];
            const am_record *r = &recs[matches[k].partner].records[matches[k].their_record];
            char their_pops[256], their_source[16], their_id[160];
            join_populations(their_pops, sizeof(their_pops), po, r->populations);
            snprintf(their_source, sizeof(their_source), "%u", r->source);
            if (a.format == FORMAT_JSON) {
                json_t *row = json_object();
                json_object_set_new(row, "our_source", json_integer(o->source));
                json_object_set_new(row, "our_id", json_string(o->id));
                json_object_set_new(row, "our_name", json_string(o->name));
                json_object_set_new(row, "our_populations", json_string(our_pops));
                json_object_set_new(row, "partner", json_string(po->id));
                json_object_set_new(row, "partner_name", json_string(po->name));
                json_object_set_new(row, "their_source", json_integer(r->source));
                json_object_set_new(row, "their_id", json_string(r->id));
                json_object_set_new(row, "their_name", json_string(r->name));
                json_object_set_new(row, "their_owner", json_string(r->owner));
                json_object_set_new(row, "their_populations", json_string(their_pops));
                json_array_append_new(list, row);
            } else if (a.format == FORMAT_CSV) {
                const char *row[] = {our_source, o->id,   o->name,  our_pops,
                                     po->id,     po->name, their_source, r->id,
                                     r->name,    r->owner, their_pops};
                csv_row(stdout, row, 11);
            } else {
                format_record_id(their_id, sizeof(their_id), r->source, r->id);
                const char *row[] = {po->id, their_id, r->name, r->owner, their_pops};
                table_add(&t, row);
            }
        }
        if (a.format == FORMAT_TABLE) {
            table_print(&t, stdout);
            table_dispose(&t);
        }
    }
    if (rc) {
        code = fail(&err);
    } else if (a.format == FORMAT_JSON) {
        json_object_set_new(doc, "matches", list);
        list = NULL;
        code = print_json(doc);
        doc = NULL;
    }
cleanup:
    free(ours);
    free(matches);
    json_decref(list);
    json_decref(doc);
    free_everything(ix, recs, run);
    am_run_free(run);
    return code;
}

/* ---- store ----------------------------------------------------------------- */

static int verb_store(cli *c, int argc, char **argv)
{
    am_error err = {AM_OK, ""};

    if (argc < 1 || is_help(argv[0])) {
        fputs(store_help, argc < 1 ? stderr : stdout);
        return argc < 1 ? EXIT_USAGE : 0;
    }
    if (strcmp(argv[0], "init") != 0) {
        return usage_error("store: unknown subcommand '%s'; see `acctmap store --help`", argv[0]);
    }
    if (argc > 1) {
        if (is_help(argv[1])) {
            fputs(store_help, stdout);
            return 0;
        }
        return usage_error("store init: unexpected argument '%s'", argv[1]);
    }
    if (open_store(c, &err) || am_store_init(c->store, &err)) {
        return fail(&err);
    }
    printf("store %s is ready\n", am_store_describe(c->store));
    return 0;
}

/* ---- report ----------------------------------------------------------------- */

static const char report_help[] =
    "usage: acctmap [-c FILE] report PARTNER [--format html|csv|json|xlsx] [--out FILE]\n"
    "                      [--run ID]\n"
    "\n"
    "What PARTNER may see of the latest run (or --run ID) under its sharing policy:\n"
    "the matrix (hidden populations left out, numbers only where shared) and the\n"
    "shared accounts with the listed fields. `run` stores every partner's report\n"
    "with the run, so an old run gives the same bytes again. Default format: html.\n"
    "Written to stdout, or to --out FILE (replaced atomically); xlsx needs --out\n"
    "or a pipe.\n";

/* Write `data` to `path` through a temporary file in the same directory, then rename. */
static am_status write_file_atomic(const char *path, const char *data, size_t len,
                                   am_error *err)
{
    char tmp[4096];
    size_t done = 0;
    int fd;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= (int)sizeof(tmp)) {
        return am_error_set(err, AM_EUSAGE, "report: --out path too long");
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        return am_error_set(err, AM_EIO, "report: cannot write %s: %s; check the directory",
                            path, strerror(errno));
    }
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        done += (size_t)n;
    }
    if (done < len || fsync(fd) != 0 || fchmod(fd, 0644) != 0) {
        am_error_set(err, AM_EIO, "report: cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        return AM_EIO;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        am_error_set(err, AM_EIO, "report: cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return AM_EIO;
    }
    return AM_OK;
}

static int verb_report(cli *c, int argc, char **argv)
{
    am_error err = {AM_OK, ""};
    am_run *run = NULL;
    am_report *report = NULL;
    am_report_format format = AM_REPORT_HTML;
    const char *partner = NULL, *out = NULL, *run_id = NULL;
    char *stored = NULL, *rendered = NULL;
    size_t stored_len = 0, rendered_len = 0;
    char part[96], where[512];
    int i, code = 0;
    am_status rc;

    for (i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const char *value;
        if (is_help(arg)) {
            fputs(report_help, stdout);
            return 0;
        }
        if ((name_len == 8 && strncmp(arg, "--format", 8) == 0) ||
            (name_len == 5 && strncmp(arg, "--out", 5) == 0) ||
            (name_len == 5 && strncmp(arg, "--run", 5) == 0)) {
            if (!eq && i + 1 >= argc) {
                return usage_error("report: option '%s' needs a value", arg);
            }
            value = eq ? eq + 1 : argv[++i];
            if (arg[2] == 'f' && am_report_format_parse(&format, value, &err)) {
                return fail(&err);
            }
            if (arg[2] == 'o') {
                out = value;
            } else if (arg[2] == 'r') {
                run_id = value;
            }
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return usage_error("report: unknown option '%s'; see `acctmap report --help`", arg);
        } else if (partner) {
            return usage_error("report: unexpected argument '%s'; see `acctmap report --help`",
                               arg);
        } else {
            partner = arg;
        }
    }
    if (!partner) {
        return usage_error("report: name a partner: `acctmap report PARTNER`");
    }
    if (out && !out[0]) {
        return usage_error("report: --out needs a file name");
    }
    if (format == AM_REPORT_XLSX && !out && isatty(STDOUT_FILENO)) {
        return usage_error("report: xlsx is binary; give --out FILE or pipe it");
    }
    rc = load_run(&run, c, run_id, &err);
    if (rc) {
        return fail(&err);
    }
    if (am_run_org_find(run, partner) <= 0) {
        code = usage_error("report: \"%s\" is not a partner in run %s; `acctmap matrix` lists "
                           "them", partner, run->id);
        goto cleanup;
    }
    am_report_part_name(part, sizeof(part), partner);
    rc = am_store_run_part(&stored, &stored_len, c->store, run, part, &err);
    if (rc == AM_ENOTFOUND) {
        am_error_set(&err, AM_ENOTFOUND, "report: run %s has no report for %s (it was made "
                     "before runs stored reports); run `acctmap run` again", run->id, partner);
    }
    if (!rc) {
        snprintf(where, sizeof(where), "%s: run %s: %s", am_store_describe(c->store), run->id,
                 part);
        rc = am_report_load(&report, stored, stored_len, where, &err);
    }
    if (!rc) {
        rc = am_report_render(&rendered, &rendered_len, report, run->id, format, &err);
    }
    if (!rc && out) {
        rc = write_file_atomic(out, rendered, rendered_len, &err);
    }
    if (rc) {
        code = fail(&err);
        goto cleanup;
    }
    if (!out && fwrite(rendered, 1, rendered_len, stdout) != rendered_len) {
        fprintf(stderr, "acctmap: report: cannot write the output\n");
        code = EXIT_RUNTIME;
    }
cleanup:
    free(stored);
    free(rendered);
    am_report_free(report);
    am_run_free(run);
    return code;
}

/* ---- main ------------------------------------------------------------------ */

typedef struct verb {
    const char *name;
    int (*fn)(cli *c, int argc, char **argv);
} verb;

static const verb verbs[] = {
    {"run", verb_run},
    {"runs", verb_runs},
    {"matrix", verb_matrix},
    {"accounts", verb_accounts},
    {"explain", verb_explain},
    {"store", verb_store},
    {"diff", verb_diff},
    {"targets", verb_targets},
    {"who", verb_who},
    {"report", verb_report},
};

int am_cli_main(int argc, char **argv)
{
    cli c = {"acctmap.json", NULL, NULL};
    int i = 1;
    size_t v;
    int code;

    while (i < argc && argv[i][0] == '-') {
        if (is_help(argv[i])) {
            fputs(main_help, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("acctmap %s\n", AM_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                return usage_error("-c needs a file: `acctmap -c acctmap.json run`");
            }
            c.config_path = argv[i + 1];
            i += 2;
            continue;
        }
        return usage_error("unknown option '%s'; see `acctmap --help`", argv[i]);
    }
    if (i >= argc) {
        fputs(main_help, stderr);
        return EXIT_USAGE;
    }
    for (v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
        if (strcmp(argv[i], verbs[v].name) == 0) {
            code = verbs[v].fn(&c, argc - i - 1, argv + i + 1);
            am_store_close(c.store);
            am_config_free(c.cfg);
            if (fflush(stdout) != 0 && code == 0) {
                fprintf(stderr, "acctmap: cannot write the output\n");
                code = EXIT_RUNTIME;
            }
            return code;
        }
    }
    return usage_error("unknown verb '%s'; see `acctmap --help`", argv[i]);
}
