/*
 * libFuzzer target for the CSV connector. The connector is compiled into
 * this file with tiny limits, so that buffer refills and growth, the field
 * and row limits and the skipping of overlong rows all happen within the
 * small inputs libFuzzer makes. (Its am_connector_csv then satisfies the
 * registry, and the library's copy is not linked.)
 *
 * The first input byte picks a config, the rest is the file. Besides the
 * sanitizers, the checks below abort on any record or message that breaks
 * the connector's promises.
 */
#define CSV_CHUNK 64
#define CSV_FIELD_MAX 100
#define CSV_ROW_MAX 300
#define CSV_COLUMNS_MAX 16
#define CSV_BATCH_ROWS 7
#include "../../connectors/csv.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CONFIGS 3

static char file_path[] = "/tmp/fuzz_csv-XXXXXX";
static int file_fd = -1;
static am_config *configs[CONFIGS];

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_csv: broken promise: %s\n", what);
        abort();
    }
}

static void remove_file(void)
{
    unlink(file_path);
}

static bool one_line(const char *msg)
{
    return msg[0] && !strchr(msg, '\n') && !strchr(msg, '\r');
}

static bool trimmed(const char *s)
{
    size_t n = strlen(s);

    return n == 0 || (!am_row_is_blank(s[0]) && !am_row_is_blank(s[n - 1]));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* Fields after "path": detection; ';' with renames and mappings; tab. */
    static const char *const extra[CONFIGS] = {
        "",
        ",\"delimiter\":\";\",\"columns\":{\"name\":\"Company\",\"tax_id\":\"INN\"},"
        "\"populations\":{\"client\":\"customers\",\"lead\":[\"prospects\"],\"partner\":"
        "\"partners\"}",
        ",\"delimiter\":\"tab\"",
    };
    char source[512], json[1024];
    am_error err;
    size_t i;
    int n;

    (void)argc;
    (void)argv;
    file_fd = mkstemp(file_path);
    check(file_fd >= 0, "mkstemp");
    atexit(remove_file);
    for (i = 0; i < CONFIGS; i++) {
        snprintf(source, sizeof(source), "{\"type\":\"csv\",\"path\":\"%s\"%s}", file_path,
                 extra[i]);
        n = snprintf(json, sizeof(json),
                     "{\"self\":\"acme\",\"orgs\":[{\"id\":\"acme\",\"sources\":[%s]},{\"id\":"
                     "\"globex\",\"sources\":[%s]}]}",
                     source, source);
        check(n > 0 && (size_t)n < sizeof(json), "config fits");
        if (am_config_parse(&configs[i], json, (size_t)n, "fuzz.json", "/", &err)) {
            fprintf(stderr, "fuzz_csv: config: %s\n", err.msg);
            abort();
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const am_source_config *cfg;
    am_source *src = NULL;
    am_record_batch batch;
    am_error err;
    uint32_t last_line = 0;
    size_t i, rows = 0;
    am_status rc;

    if (size < 1) {
        return 0;
    }
    cfg = &am_config_org_at(configs[data[0] % CONFIGS], 0)->sources[0];
    check(ftruncate(file_fd, 0) == 0, "truncate");
    check(pwrite(file_fd, data + 1, size - 1, 0) == (ssize_t)(size - 1), "write");

    am_record_batch_init(&batch);
    check(am_source_config_check_fields(cfg, am_connector_csv.fields, &err) == AM_OK, "fields");
    rc = am_connector_csv.open(&src, cfg, NULL, &err);
    if (rc) {
        check(!src && one_line(err.msg), "open fails cleanly with one line");
        check(rc == AM_EINPUT, "a file that opens fails only as input");
        goto cleanup;
    }
    for (;;) {
        rc = am_connector_csv.next_batch(src, &batch, &err);
        if (rc) {
            check(rc == AM_EINPUT && one_line(err.msg), "batch fails with one line");
            check(am_connector_csv.next_batch(src, &batch, &err) == rc, "failure sticks");
            break;
        }
        if (batch.count == 0 && batch.reject_count == 0) {
            break;
        }
        check(batch.count + batch.reject_count <= CSV_BATCH_ROWS, "batch size");
        rows += batch.count + batch.reject_count;
        check(rows <= size, "no more rows than bytes");
        for (i = 0; i < batch.reject_count; i++) {
            check(one_line(batch.rejects[i].msg), "reject on one line");
            check(strncmp(batch.rejects[i].msg, file_path, strlen(file_path)) == 0,
                  "reject names the file");
            check(batch.rejects[i].line > last_line, "reject lines increase");
            last_line = batch.rejects[i].line;
        }
        for (i = 0; i < batch.count; i++) {
            const am_record *r = &batch.records[i];
            const char *fields[] = {r->id,      r->name, r->domain, r->tax_id,
                                    r->country, r->city, r->owner};
            size_t f;

            check(r->id[0] != '\0', "id present");
            check(r->name[0] || r->domain[0] || r->tax_id[0], "name, domain or tax_id");
            check(r->populations != 0, "populations set");
            check(r->line >= 2, "records come after the header");
            for (f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
                check(trimmed(fields[f]), "values trimmed");
                check(strlen(fields[f]) <= CSV_FIELD_MAX, "field limit");
                check(am_row_utf8_bad_offset(fields[f], strlen(fields[f])) == strlen(fields[f]),
                      "valid UTF-8");
            }
        }
        /* Records and rejects of one batch interleave; compare lines across batches only. */
        for (i = 0; i < batch.count; i++) {
            if (batch.records[i].line > last_line) {
                last_line = batch.records[i].line;
            }
        }
    }
cleanup:
    am_connector_csv.close(src);
    am_record_batch_dispose(&batch);
    return 0;
}
