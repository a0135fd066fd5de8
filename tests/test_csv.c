/*
 * Tests of the CSV connector (connectors/csv.c): files from fixtures/csv and
 * files generated into the sandbox, read through the connector's ops the way
 * a run reads them, every batch to the end.
 */
#include "helpers.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acctmap/config.h"
#include "acctmap/connector.h"
#include "acctmap/record.h"

/* Tests always run under ASan (STYLE.md 8); its allocator says how much is live. */
#if defined(__SANITIZE_ADDRESS__)
/* From <sanitizer/allocator_interface.h>, which Debian ships only with clang. */
size_t __sanitizer_get_current_allocated_bytes(void);
#define HEAP_BYTES() __sanitizer_get_current_allocated_bytes()
#else
#define HEAP_BYTES() ((size_t)0)
#endif

#define CUSTOMERS (1u << AM_POP_CUSTOMERS)
#define PROSPECTS (1u << AM_POP_PROSPECTS)
#define OPPORTUNITIES (1u << AM_POP_OPPORTUNITIES)

/* A record copied out of its batch, so it outlives the batch. */
typedef struct test_record {
    char *id, *name, *domain, *tax_id, *country, *city, *owner;
    int64_t amount_cents;
    bool has_amount;
    uint32_t populations;
    uint32_t line;
} test_record;

typedef struct test_reject {
    uint32_t line;
    char *msg;
} test_reject;

/* Everything one source gave, read to the end or to its first failure. */
typedef struct csv_result {
    am_status open_rc;
    am_status rc;  /* open_rc, or the first failure of next_batch */
    char msg[512]; /* its message */
    char label[256];
    test_record *records;
    size_t count;
    test_reject *rejects;
    size_t reject_count;
    size_t batches;
    size_t max_batch;   /* most records + rejects in one batch */
    size_t heap_growth; /* most live heap bytes after a batch, over those before open */
} csv_result;

static char *dup_or_fail(const char *s)
{
    char *copy = strdup(s);

    assert_non_null(copy);
    return copy;
}

static void keep_batch(csv_result *r, const am_record_batch *batch)
{
    size_t i;

    r->records = realloc(r->records, (r->count + batch->count + 1) * sizeof(*r->records));
    r->rejects =
        realloc(r->rejects, (r->reject_count + batch->reject_count + 1) * sizeof(*r->rejects));
    assert_non_null(r->records);
    assert_non_null(r->rejects);
    for (i = 0; i < batch->count; i++) {
        const am_record *in = &batch->records[i];
        test_record *out = &r->records[r->count++];

        out->id = dup_or_fail(in->id);
        out->name = dup_or_fail(in->name);
        out->domain = dup_or_fail(in->domain);
        out->tax_id = dup_or_fail(in->tax_id);
        out->country = dup_or_fail(in->country);
        out->city = dup_or_fail(in->city);
        out->owner = dup_or_fail(in->owner);
        out->amount_cents = in->amount_cents;
        out->has_amount = in->has_amount;
        out->populations = in->populations;
        out->line = in->line;
    }
    for (i = 0; i < batch->reject_count; i++) {
        test_reject *out = &r->rejects[r->reject_count++];

        out->line = batch->rejects[i].line;
        out->msg = dup_or_fail(batch->rejects[i].msg);
    }
    if (batch->count + batch->reject_count > r->max_batch) {
        r->max_batch = batch->count + batch->reject_count;
    }
}

static void result_dispose(csv_result *r)
{
    size_t i;

    for (i = 0; i < r->count; i++) {
        test_record *t = &r->records[i];
        free(t->id);
        free(t->name);
        free(t->domain);
        free(t->tax_id);
        free(t->country);
        free(t->city);
        free(t->owner);
    }
    for (i = 0; i < r->reject_count; i++) {
        free(r->rejects[i].msg);
    }
    free(r->records);
    free(r->rejects);
    memset(r, 0, sizeof(*r));
}

/*
 * Read a CSV source whose config entry is {"type":"csv", <fields>} (the
 * org's `populations` and the like go in `fields`), with the sandbox as the
 * config's directory. Stops at the end of data or at the first failure.
 */
static void read_source(csv_result *r, const char *fields)
{
    const am_connector_ops *ops = am_connector_find("csv");
    am_config *cfg = NULL;
    am_source *src = NULL;
    am_record_batch batch;
    am_error err;
    char json[2048];
    size_t heap_before;
    int n;

    memset(r, 0, sizeof(*r));
    am_record_batch_init(&batch);
    am_error_clear(&err);
    n = snprintf(json, sizeof(json),
                 "{\"self\":\"acme\",\"store\":\"dir:./data\",\"orgs\":[{\"id\":\"acme\","
                 "\"sources\":[{\"type\":\"csv\",%s}]},{\"id\":\"globex\",\"sources\":[{"
                 "\"type\":\"csv\",\"path\":\"globex.csv\"}]}]}",
                 fields);
    assert_true(n > 0 && (size_t)n < sizeof(json));
    assert_non_null(ops);
    if (am_config_parse(&cfg, json, (size_t)n, "acctmap.json", am_test_path(""), &err)) {
        fail_msg("config: %s", err.msg);
    }
    const am_source_config *sc = &am_config_org_at(cfg, 0)->sources[0];
    if (am_source_config_check_fields(sc, ops->fields, &err)) {
        fail_msg("fields: %s", err.msg);
    }
    heap_before = HEAP_BYTES();
    r->open_rc = r->rc = ops->open(&src, sc, &(am_source_env){0}, &err);
    if (r->rc) {
        assert_null(src);
        snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
        goto cleanup;
    }
    snprintf(r->label, sizeof(r->label), "%s", src->label);
    for (;;) {
        r->rc = ops->next_batch(src, &batch, &err);
        if (HEAP_BYTES() > heap_before && HEAP_BYTES() - heap_before > r->heap_growth) {
            r->heap_growth = HEAP_BYTES() - heap_before;
        }
        if (r->rc) {
            snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
            /* The failure sticks: the next call says the same and last_error agrees. */
            assert_int_equal(ops->next_batch(src, &batch, &err), r->rc);
            assert_string_equal(err.msg, r->msg);
            assert_string_equal(ops->last_error(src)->msg, r->msg);
            break;
        }
        if (batch.count == 0 && batch.reject_count == 0) {
            break;
        }
        r->batches++;
        keep_batch(r, &batch);
    }
cleanup:
    ops->close(src);
    am_record_batch_dispose(&batch);
    am_config_free(cfg);
}

/* The config error of a source that must not open. */
static am_status open_fails(char *msg, size_t msg_size, const char *fields)
{
    const am_connector_ops *ops = am_connector_find("csv");
    am_config *cfg = NULL;
    am_source *src = NULL;
    am_error err;
    char json[2048];
    am_status rc;
    int n;

    am_error_clear(&err);
    n = snprintf(json, sizeof(json),
                 "{\"self\":\"acme\",\"store\":\"dir:./data\",\"orgs\":[{\"id\":\"acme\","
                 "\"sources\":[{\"type\":\"csv\",%s}]},{\"id\":\"globex\",\"sources\":[{"
                 "\"type\":\"csv\",\"path\":\"globex.csv\"}]}]}",
                 fields);
    assert_true(n > 0 && (size_t)n < sizeof(json));
    if (am_config_parse(&cfg, json, (size_t)n, "acctmap.json", am_test_path(""), &err)) {
        fail_msg("config: %s", err.msg);
    }
    rc = am_source_open(&src, &am_config_org_at(cfg, 0)->sources[0], NULL, &err);
    assert_null(src);
    snprintf(msg, msg_size, "%s", err.msg);
    ops->close(src);
    am_config_free(cfg);
    return rc;
}

static const test_record *record_with_id(const csv_result *r, const char *id)
{
    size_t i;

    for (i = 0; i < r->count; i++) {
        if (strcmp(r->records[i].id, id) == 0) {
            return &r->records[i];
        }
    }
    fail_msg("no record with id \"%s\"", id);
    return NULL;
}

static void assert_ids(const csv_result *r, const char *const *ids)
{
    size_t i;

    for (i = 0; ids[i]; i++) {
        assert_true(i < r->count);
        assert_string_equal(r->records[i].id, ids[i]);
    }
    assert_int_equal(r->count, i);
}

/* ---- reading good files ------------------------------------------------------ */

static void test_csv__reads_all_columns(void **state)
{
    csv_result r;
    const test_record *t;

    (void)state;
    read_source(&r, "\"path\":\"csv/happy.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_string_equal(r.label, "csv/happy.csv");
    assert_int_equal(r.reject_count, 0);
    assert_int_equal(r.count, 5);

    t = record_with_id(&r, "1");
    assert_string_equal(t->name, "Acme Corp");
    assert_string_equal(t->domain, "acme.com");
    assert_string_equal(t->tax_id, "7707083893");
    assert_string_equal(t->country, "US");
    assert_string_equal(t->city, "Springfield");
    assert_string_equal(t->owner, "alice");
    assert_true(t->has_amount);
    assert_int_equal(t->amount_cents, 150050);
    assert_int_equal(t->populations, CUSTOMERS);
    assert_int_equal(t->line, 2);

    t = record_with_id(&r, "2");
    assert_false(t->has_amount);
    assert_string_equal(t->tax_id, "");
    assert_string_equal(t->city, "");
    assert_int_equal(t->populations, PROSPECTS);

    t = record_with_id(&r, "3");
    assert_string_equal(t->name, "Initech"); /* trimmed */
    assert_int_equal(t->populations, OPPORTUNITIES);
    assert_int_equal(t->amount_cents, -2000);

    t = record_with_id(&r, "4");
    assert_string_equal(t->name, ""); /* a domain is enough */
    assert_int_equal(t->populations, CUSTOMERS);
    assert_int_equal(t->amount_cents, 10000);

    t = record_with_id(&r, "5");
    assert_int_equal(t->populations, PROSPECTS); /* "PROSPECTS": plural, any case */
    assert_int_equal(t->line, 6);
    result_dispose(&r);
}

static void test_csv__optional_columns_may_be_absent(void **state)
{
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/required_only.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.records[0].id, "10");
    assert_string_equal(r.records[0].city, "");
    assert_string_equal(r.records[0].owner, "");
    assert_false(r.records[0].has_amount);
    result_dispose(&r);
}

static void test_csv__strips_bom(void **state)
{
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/bom.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.records[0].id, "1");
    assert_int_equal(r.records[0].line, 2);
    result_dispose(&r);
}

static void test_csv__detects_semicolon(void **state)
{
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/semicolon.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.records[0].name, "Acme; Inc");
    assert_int_equal(r.records[0].populations, CUSTOMERS | OPPORTUNITIES);
    assert_string_equal(r.records[1].name, "Globex, GmbH");
    result_dispose(&r);
}

static void test_csv__detects_tab(void **state)
{
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/tab.tsv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.records[0].name, "Acme, Inc");
    assert_string_equal(r.records[0].country, "US");
    result_dispose(&r);
}

/* The header has more commas than tabs, so detection picks ','; the config says tab. */
static void test_csv__explicit_delimiter_wins(void **state)
{
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/commas_in_header.tsv\"");
    assert_int_equal(r.rc, AM_EINPUT);
    assert_non_null(strstr(r.msg, "missing column 'id'"));
    result_dispose(&r);

    read_source(&r, "\"path\":\"csv/commas_in_header.tsv\",\"delimiter\":\"tab\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.records[0].name, "Acme");
    result_dispose(&r);

    read_source(&r, "\"path\":\"csv/commas_in_header.tsv\",\"delimiter\":\"\\t\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 1);
    result_dispose(&r);

    /* ';' explicitly on a ';' file whose header would also detect as ';'. */
    read_source(&r, "\"path\":\"csv/semicolon.csv\",\"delimiter\":\";\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 2);
    result_dispose(&r);
}

static void test_csv__quoted_fields(void **state)
{
    static const char *const ids[] = {"1", "2", "3", "4", "5", "6", NULL};
    csv_result r;
    const test_record *t;

    (void)state;
    read_source(&r, "\"path\":\"csv/quoted.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 0);
    assert_ids(&r, ids);
    assert_string_equal(record_with_id(&r, "1")->name, "Acme, Inc");
    assert_string_equal(record_with_id(&r, "2")->name, "The \"Best\" Co");
    t = record_with_id(&r, "3");
    assert_string_equal(t->name, "Multi\nLine\nName");
    assert_int_equal(t->line, 4);
    /* Lines after a field with newlines are still physical lines. */
    assert_int_equal(record_with_id(&r, "4")->line, 7);
    t = record_with_id(&r, "5");
    assert_string_equal(t->name, "Spaced"); /* blanks around quotes, then inside, trimmed */
    assert_int_equal(t->line, 8);
    /* A quote inside an unquoted field is data. */
    assert_string_equal(record_with_id(&r, "6")->name, "Acme 12\" Pipes");
    result_dispose(&r);
}

static void test_csv__crlf_line_ends(void **state)
{
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/crlf.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 0);
    assert_int_equal(r.count, 3);
    assert_string_equal(r.records[0].name, "Acme");
    assert_int_equal(r.records[0].populations, CUSTOMERS); /* "customer\r" would be unknown */
    assert_string_equal(r.records[1].name, "Two\r\nLines");
    assert_int_equal(r.records[1].populations, PROSPECTS);
    /* The last line has no line end. */
    assert_string_equal(r.records[2].id, "3");
    assert_int_equal(r.records[2].populations, CUSTOMERS);
    assert_int_equal(r.records[2].line, 5);
    result_dispose(&r);
}

static void test_csv__blank_lines_skipped(void **state)
{
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/blank_lines.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.records[0].line, 3);
    assert_int_equal(r.records[1].line, 6);
    /* A row of empty fields is not a blank line. */
    assert_int_equal(r.reject_count, 1);
    assert_string_equal(r.rejects[0].msg,
                        "csv/blank_lines.csv:7: column 'id': empty; give every row an id");
    assert_int_equal(r.rejects[0].line, 7);
    result_dispose(&r);
}

/* ---- columns and populations ------------------------------------------------- */

#define RENAMED_SOURCE                                                                             \
    "\"path\":\"csv/renamed.csv\",\"columns\":{\"id\":\"Record ID\",\"name\":\"company "           \
    "name\",\"domain\":\"website\",\"tax_id\":\"INN\",\"status\":\"stage\",\"city\":\"Town\"}"

static void test_csv__renamed_columns(void **state)
{
    csv_result r;
    const test_record *t;

    (void)state;
    read_source(&r, RENAMED_SOURCE ",\"populations\":{\"client\":\"customers\",\"lead\":["
                                   "\"prospects\"],\"partner\":\"partners\"}");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 0);
    assert_int_equal(r.count, 5);
    t = record_with_id(&r, "A-1");
    assert_string_equal(t->name, "Acme");
    assert_string_equal(t->domain, "acme.com");
    assert_string_equal(t->tax_id, "7707083893");
    assert_string_equal(t->country, "RU");
    assert_string_equal(t->city, "Moscow");
    result_dispose(&r);
}

static void test_csv__populations_map_custom_values(void **state)
{
    csv_result r;

    (void)state;
    read_source(&r, RENAMED_SOURCE ",\"populations\":{\"client\":\"customers\",\"lead\":["
                                   "\"prospects\"],\"partner\":\"partners\"}");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(record_with_id(&r, "A-1")->populations, CUSTOMERS); /* "Client" */
    assert_int_equal(record_with_id(&r, "A-2")->populations, PROSPECTS);
    assert_int_equal(record_with_id(&r, "A-3")->populations, 1u << 3); /* partners: custom */
    assert_int_equal(record_with_id(&r, "A-4")->populations, (1u << 3) | CUSTOMERS);
    assert_int_equal(record_with_id(&r, "A-5")->populations, OPPORTUNITIES); /* default kept */
    result_dispose(&r);

    /* Without the mapping the custom values are rejected, the standard ones still pass. */
    read_source(&r, RENAMED_SOURCE);
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.records[0].id, "A-5");
    assert_int_equal(r.reject_count, 4);
    assert_string_equal(r.rejects[0].msg,
                        "csv/renamed.csv:2: column 'status': unknown value \"Client\"; map it "
                        "under \"populations\" in the source's config");
    result_dispose(&r);
}

static void test_csv__populations_override_standard_status(void **state)
{
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/happy.csv\",\"populations\":{\"Customer\":\"prospects\"}");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(record_with_id(&r, "1")->populations, PROSPECTS);
    /* The rule names "customer"; the plural is still the default. */
    assert_int_equal(record_with_id(&r, "4")->populations, CUSTOMERS);
    assert_int_equal(record_with_id(&r, "3")->populations, OPPORTUNITIES);
    result_dispose(&r);
}

static void test_csv__several_statuses(void **state)
{
    static const char data[] = "id,name,domain,tax_id,country,status\n"
                               "1,A,a.com,,US,customer;opportunity\n"
                               "2,B,b.com,,US, Customers ; Prospects ;\n"
                               "3,C,c.com,,US,\"prospect;opportunity;customer\"\n";
    csv_result r;

    (void)state;
    am_test_write_file(am_test_path("multi.csv"), data, sizeof(data) - 1);
    read_source(&r, "\"path\":\"multi.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 0);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.records[0].populations, CUSTOMERS | OPPORTUNITIES);
    assert_int_equal(r.records[1].populations, CUSTOMERS | PROSPECTS);
    assert_int_equal(r.records[2].populations, CUSTOMERS | PROSPECTS | OPPORTUNITIES);
    result_dispose(&r);
}

/* ---- bad rows: rejected with their line, the rows after them still come ------------ */

static void test_csv__bad_rows_rejected(void **state)
{
    static const char *const expected[] = {
        "csv/bad_rows.csv:2: column 'id': empty; give every row an id",
        "csv/bad_rows.csv:3: no name, domain or tax_id; fill at least one of them",
        "csv/bad_rows.csv:4: column 'status': empty; use customer, prospect or opportunity, or "
        "map other values under \"populations\"",
        "csv/bad_rows.csv:5: column 'amount': \"1,5\" is not an amount; write digits with at "
        "most two decimals after '.', or empty the cell",
        "csv/bad_rows.csv:6: column 'status': unknown value \"partner\"; map it under "
        "\"populations\" in the source's config",
        "csv/bad_rows.csv:8: column 'status': empty; use customer, prospect or opportunity, or "
        "map other values under \"populations\"",
        "csv/bad_rows.csv:9: column 'status': unknown value \"reseller\"; map it under "
        "\"populations\" in the source's config",
    };
    static const uint32_t lines[] = {2, 3, 4, 5, 6, 8, 9};
    csv_result r;
    size_t i;

    (void)state;
    read_source(&r, "\"path\":\"csv/bad_rows.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 7);
    for (i = 0; i < 7; i++) {
        assert_string_equal(r.rejects[i].msg, expected[i]);
        assert_int_equal(r.rejects[i].line, lines[i]);
    }
    assert_int_equal(r.count, 1);
    assert_string_equal(r.records[0].id, "6");
    assert_int_equal(r.records[0].line, 7);
    assert_int_equal(r.records[0].amount_cents, 1000);
    result_dispose(&r);
}

static void test_csv__wrong_field_count(void **state)
{
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/wrong_count.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 2);
    assert_string_equal(r.rejects[0].msg,
                        "csv/wrong_count.csv:14: 7 fields, the header has 6; check quoting");
    assert_string_equal(r.rejects[1].msg,
                        "csv/wrong_count.csv:15: 5 fields, the header has 6; check quoting");
    assert_int_equal(r.count, 13);
    assert_string_equal(r.records[12].id, "16");
    assert_int_equal(r.records[12].line, 16);
    result_dispose(&r);
}

static void test_csv__text_after_closing_quote(void **state)
{
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/after_quote.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 1);
    assert_string_equal(r.rejects[0].msg,
                        "csv/after_quote.csv:2: field 2: text after the closing quote; quote the "
                        "whole field and double the quotes inside it");
    assert_int_equal(r.count, 1);
    assert_string_equal(r.records[0].id, "2");
    result_dispose(&r);
}

static void test_csv__invalid_utf8_rejected(void **state)
{
    static const char *const expected[] = {
        "csv/invalid_utf8.csv:2: column 'name': invalid UTF-8 (byte 0xE9 at offset 3); save "
        "the file as UTF-8",
        /* an overlong '/' */
        "csv/invalid_utf8.csv:4: column 'city': invalid UTF-8 (byte 0xC0 at offset 0); save "
        "the file as UTF-8",
        /* a UTF-16 surrogate */
        "csv/invalid_utf8.csv:5: column 'owner': invalid UTF-8 (byte 0xED at offset 0); save "
        "the file as UTF-8",
        /* a sequence cut short by the end of the field */
        "csv/invalid_utf8.csv:6: column 'city': invalid UTF-8 (byte 0xE2 at offset 0); save "
        "the file as UTF-8",
    };
    csv_result r;
    size_t i;

    (void)state;
    read_source(&r, "\"path\":\"csv/invalid_utf8.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 4);
    for (i = 0; i < 4; i++) {
        assert_string_equal(r.rejects[i].msg, expected[i]);
    }
    assert_int_equal(r.count, 2);
    assert_string_equal(r.records[0].name, "Caf\xC3\xA9");
    assert_string_equal(r.records[1].id, "6");
    result_dispose(&r);
}

static void test_csv__nul_byte_rejected(void **state)
{
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/nul_byte.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 1);
    assert_string_equal(r.rejects[0].msg,
                        "csv/nul_byte.csv:2: column 'name': contains a NUL byte; remove it");
    assert_int_equal(r.count, 1);
    result_dispose(&r);
}

/* An unknown value is quoted in the message on one line, however it was written. */
static void test_csv__unknown_status_message_is_one_line(void **state)
{
    static const char data[] = "id,name,domain,tax_id,country,status\n"
                               "1,A,a.com,,US,\"part\"\"ner\nnext\"\n";
    csv_result r;

    (void)state;
    am_test_write_file(am_test_path("status.csv"), data, sizeof(data) - 1);
    read_source(&r, "\"path\":\"status.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 1);
    assert_string_equal(r.rejects[0].msg,
                        "status.csv:2: column 'status': unknown value \"part'ner next\"; map it "
                        "under \"populations\" in the source's config");
    result_dispose(&r);
}

/* ---- failures that stop the source ---------------------------------------------- */

static void test_csv__unterminated_quote_fails(void **state)
{
    static const char data[] = "id,name,domain,tax_id,country,status\n"
                               "1,\"Two\nLines\",a.com,,US,\"customer\n"
                               "2,B,b.com,,US,customer\n";
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/unterminated.csv\"");
    assert_int_equal(r.open_rc, AM_OK);
    assert_int_equal(r.rc, AM_EINPUT);
    assert_string_equal(r.msg, "csv/unterminated.csv:4: unterminated quoted field starting "
                               "here; close the quote");
    /* The rows before it were delivered. */
    assert_int_equal(r.count, 2);
    assert_string_equal(r.records[1].id, "2");
    result_dispose(&r);

    /* The line is the opening quote's, not the row's. */
    am_test_write_file(am_test_path("unterminated2.csv"), data, sizeof(data) - 1);
    read_source(&r, "\"path\":\"unterminated2.csv\"");
    assert_int_equal(r.rc, AM_EINPUT);
    assert_string_equal(r.msg, "unterminated2.csv:3: unterminated quoted field starting here; "
                               "close the quote");
    assert_int_equal(r.count, 0);
    result_dispose(&r);
}

static void test_csv__missing_column(void **state)
{
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/missing_column.csv\"");
    assert_int_equal(r.rc, AM_EINPUT);
    assert_string_equal(r.msg, "csv/missing_column.csv:1: missing column 'tax_id'; add it or "
                               "map it with \"columns\"");
    result_dispose(&r);

    read_source(&r, "\"path\":\"csv/missing_column.csv\",\"columns\":{\"tax_id\":\"INN\"}");
    assert_int_equal(r.rc, AM_EINPUT);
    assert_string_equal(r.msg, "csv/missing_column.csv:1: missing column 'INN' (mapped to "
                               "'tax_id' in \"columns\"); add it or fix the mapping");
    result_dispose(&r);

    /* The header's line is named even after blank lines. */
    am_test_write_file(am_test_path("late.csv"), "\n\nid,name\n", 10);
    read_source(&r, "\"path\":\"late.csv\"");
    assert_int_equal(r.rc, AM_EINPUT);
    assert_string_equal(r.msg,
                        "late.csv:3: missing column 'domain'; add it or map it with \"columns\"");
    result_dispose(&r);
}

static void test_csv__duplicate_header_column(void **state)
{
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/duplicate_column.csv\"");
    assert_int_equal(r.rc, AM_EINPUT);
    assert_string_equal(r.msg, "csv/duplicate_column.csv:1: column 'name' appears twice in the "
                               "header (fields 2 and 7); rename one or map another with "
                               "\"columns\"");
    result_dispose(&r);
}

static void test_csv__empty_file(void **state)
{
    static const char *const files[] = {"csv/empty.csv", "csv/bom_only.csv", "csv/blank_only.csv"};
    char fields[128], expected[256];
    csv_result r;
    size_t i;

    (void)state;
    for (i = 0; i < 3; i++) {
        snprintf(fields, sizeof(fields), "\"path\":\"%s\"", files[i]);
        snprintf(expected, sizeof(expected),
                 "%s: empty file; expected a header row with columns "
                 "id,name,domain,tax_id,country,status",
                 files[i]);
        read_source(&r, fields);
        assert_int_equal(r.rc, AM_EINPUT);
        assert_string_equal(r.msg, expected);
        result_dispose(&r);
    }
}

static void test_csv__file_not_found(void **state)
{
    char expected[1024];
    csv_result r;

    (void)state;
    read_source(&r, "\"path\":\"csv/nope.csv\"");
    assert_int_equal(r.rc, AM_EIO);
    snprintf(expected, sizeof(expected),
             "csv/nope.csv: cannot open %s: No such file or directory; check \"path\" in the "
             "source's config",
             am_test_path("csv/nope.csv"));
    assert_string_equal(r.msg, expected);
    result_dispose(&r);

    /* A directory opens but cannot be read. */
    read_source(&r, "\"path\":\"csv\"");
    assert_int_equal(r.rc, AM_EIO);
    assert_string_equal(r.msg, "csv: cannot read: Is a directory; check the file");
    result_dispose(&r);
}

static void test_csv__config_mistakes(void **state)
{
    char msg[512];

    (void)state;
    assert_int_equal(open_fails(msg, sizeof(msg), "\"path\":\"csv/happy.csv\",\"delimiter\":\"|\""),
                     AM_ECONFIG);
    assert_string_equal(msg, "acctmap.json: orgs[0].sources[0].delimiter: \"|\" is not "
                             "supported; use \",\", \";\" or \"tab\", or leave it out to detect "
                             "it from the header");
    assert_int_equal(
        open_fails(msg, sizeof(msg), "\"path\":\"csv/happy.csv\",\"columns\":{\"nmae\":\"X\"}"),
        AM_ECONFIG);
    assert_string_equal(msg, "acctmap.json: orgs[0].sources[0].columns.nmae: unknown column; "
                             "use one of id,name,domain,tax_id,country,status,city,owner,amount");
    assert_int_equal(open_fails(msg, sizeof(msg), "\"path\":\"\""), AM_ECONFIG);
    assert_string_equal(msg, "acctmap.json: orgs[0].sources[0].path: empty; give the CSV file's "
                             "path");
    /* Fields the connector does not know are refused, not ignored. */
    assert_int_equal(open_fails(msg, sizeof(msg), "\"path\":\"csv/happy.csv\",\"encoding\":\"x\""),
                     AM_ECONFIG);
    assert_non_null(strstr(msg, "unknown field \"encoding\""));
    assert_int_equal(open_fails(msg, sizeof(msg), "\"delimiter\":\",\""), AM_ECONFIG);
}

/* ---- limits and large files ------------------------------------------------------ */

/* Write `header`, then a row whose name is `len` bytes of `fill` (quoted when asked), then a good
 * row. */
static void write_long_row(const char *file, size_t len, char fill, bool quoted)
{
    static const char header[] = "id,name,domain,tax_id,country,status,notes\n";
    static const char tail[] = ",a.com,,US,customer,\n9,After,after.com,,US,customer,\n";
    size_t total = sizeof(header) - 1 + 2 + len + 2 + sizeof(tail) - 1;
    char *data = malloc(total);
    size_t at = 0;

    assert_non_null(data);
    memcpy(data + at, header, sizeof(header) - 1);
    at += sizeof(header) - 1;
    memcpy(data + at, "1,", 2);
    at += 2;
    if (quoted) {
        data[at++] = '"';
    }
    memset(data + at, fill, len);
    at += len;
    if (quoted) {
        data[at++] = '"';
    }
    memcpy(data + at, tail, sizeof(tail) - 1);
    at += sizeof(tail) - 1;
    am_test_write_file(am_test_path(file), data, at);
    free(data);
}

static void test_csv__ten_megabyte_field(void **state)
{
    csv_result r;

    (void)state;
    write_long_row("big.csv", 10 * 1000 * 1000, 'x', false);
    read_source(&r, "\"path\":\"big.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 1);
    assert_string_equal(r.rejects[0].msg,
                        "big.csv:2: row longer than the 4 MiB limit; split it or shorten it");
    assert_int_equal(r.count, 1);
    assert_string_equal(r.records[0].id, "9");
    assert_int_equal(r.records[0].line, 3);
    /* The row was skipped through the 4 MiB buffer, never held whole. */
    assert_true(r.heap_growth < 6 * 1024 * 1024);
    result_dispose(&r);

    /* Quoted and full of newlines: skipped bytes still count lines and quotes. */
    write_long_row("big2.csv", 10 * 1000 * 1000, '\n', true);
    read_source(&r, "\"path\":\"big2.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 1);
    assert_string_equal(r.rejects[0].msg,
                        "big2.csv:2: row longer than the 4 MiB limit; split it or shorten it");
    assert_int_equal(r.count, 1);
    assert_int_equal(r.records[0].line, 3 + 10 * 1000 * 1000);
    result_dispose(&r);
}

static void test_csv__field_limit_is_one_mebibyte(void **state)
{
    csv_result r;

    (void)state;
    write_long_row("limit.csv", 1024 * 1024, 'n', true);
    read_source(&r, "\"path\":\"limit.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 0);
    assert_int_equal(r.count, 2);
    assert_int_equal(strlen(r.records[0].name), 1024 * 1024);
    result_dispose(&r);

    write_long_row("over.csv", 1024 * 1024 + 1, 'n', false);
    read_source(&r, "\"path\":\"over.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 1);
    assert_string_equal(r.rejects[0].msg, "over.csv:2: column 'name': value longer than the 1 "
                                          "MiB limit; shorten it");
    assert_int_equal(r.count, 1);
    assert_string_equal(r.records[0].id, "9");
    result_dispose(&r);
}

/*
 * A file of several MiB: rows, quoted fields and CRLFs fall across every read
 * boundary. Every row must come back whole, with its line, in batches of at
 * most 4096.
 */
static void test_csv__rows_across_read_boundaries(void **state)
{
    const size_t rows = 100000;
    size_t cap = rows * 80 + 64, len = 0, i;
    char *data = malloc(cap);
    uint32_t line = 2;
    csv_result r;

    (void)state;
    assert_non_null(data);
    len += (size_t)snprintf(data, cap, "id,name,domain,tax_id,country,status\r\n");
    for (i = 0; i < rows; i++) {
        if (i % 7 == 3) {
            len += (size_t)snprintf(data + len, cap - len,
                                    "%zu,\"Name \"\"%zu\"\"\r\nsecond line\",d%zu.com,,US,"
                                    "\"customer;prospect\"\r\n",
                                    i, i, i);
        } else {
            len += (size_t)snprintf(data + len, cap - len, "%zu,Name %zu,d%zu.com,,US,customer\n",
                                    i, i, i);
        }
    }
    am_test_write_file(am_test_path("many.csv"), data, len);
    free(data);
    assert_true(len > 3 * 1024 * 1024);

    read_source(&r, "\"path\":\"many.csv\"");
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.reject_count, 0);
    assert_int_equal(r.count, rows);
    assert_true(r.max_batch <= 4096);
    assert_true(r.batches >= rows / 4096);
    for (i = 0; i < rows; i++) {
        char expected[64];
        const test_record *t = &r.records[i];

        snprintf(expected, sizeof(expected), "%zu", i);
        assert_string_equal(t->id, expected);
        assert_int_equal(t->line, line);
        if (i % 7 == 3) {
            snprintf(expected, sizeof(expected), "Name \"%zu\"\r\nsecond line", i);
            assert_int_equal(t->populations, CUSTOMERS | PROSPECTS);
            line += 2;
        } else {
            snprintf(expected, sizeof(expected), "Name %zu", i);
            assert_int_equal(t->populations, CUSTOMERS);
            line += 1;
        }
        assert_string_equal(t->name, expected);
    }
    result_dispose(&r);
}

/* The registry's generic path: field check, then open. */
static void test_csv__opens_through_registry(void **state)
{
    char msg[512];

    (void)state;
    assert_string_equal(am_connector_find("csv")->type, "csv");
    assert_int_equal(open_fails(msg, sizeof(msg), "\"path\":\"csv/empty.csv\""), AM_EINPUT);
    assert_string_equal(msg, "csv/empty.csv: empty file; expected a header row with columns "
                             "id,name,domain,tax_id,country,status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) AM_TEST_SANDBOXED(name)
        T(test_csv__reads_all_columns),
        T(test_csv__optional_columns_may_be_absent),
        T(test_csv__strips_bom),
        T(test_csv__detects_semicolon),
        T(test_csv__detects_tab),
        T(test_csv__explicit_delimiter_wins),
        T(test_csv__quoted_fields),
        T(test_csv__crlf_line_ends),
        T(test_csv__blank_lines_skipped),
        T(test_csv__renamed_columns),
        T(test_csv__populations_map_custom_values),
        T(test_csv__populations_override_standard_status),
        T(test_csv__several_statuses),
        T(test_csv__bad_rows_rejected),
        T(test_csv__wrong_field_count),
        T(test_csv__text_after_closing_quote),
        T(test_csv__invalid_utf8_rejected),
        T(test_csv__nul_byte_rejected),
        T(test_csv__unknown_status_message_is_one_line),
        T(test_csv__unterminated_quote_fails),
        T(test_csv__missing_column),
        T(test_csv__duplicate_header_column),
        T(test_csv__empty_file),
        T(test_csv__file_not_found),
        T(test_csv__config_mistakes),
        T(test_csv__ten_megabyte_field),
        T(test_csv__field_limit_is_one_mebibyte),
        T(test_csv__rows_across_read_boundaries),
        T(test_csv__opens_through_registry),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
