/*
 * Tests of the PostgreSQL connector (connectors/postgresql.c) against the
 * test server of tests/pg.sh: tables and queries made here, read through the
 * connector's ops the way a run reads them; rows that CSV would reject are
 * rejected with the same words; a SQL_ASCII database brings invalid UTF-8.
 */
#include "helpers.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "acctmap/config.h"
#include "acctmap/connector.h"
#include "acctmap/record.h"

#if defined(__SANITIZE_ADDRESS__)
size_t __sanitizer_get_current_allocated_bytes(void);
#define HEAP_BYTES() __sanitizer_get_current_allocated_bytes()
#else
#define HEAP_BYTES() ((size_t)0)
#endif

#define CUSTOMERS (1u << AM_POP_CUSTOMERS)
#define PROSPECTS (1u << AM_POP_PROSPECTS)
#define OPPORTUNITIES (1u << AM_POP_OPPORTUNITIES)

static char schema[64]; /* this process's tables */

static const char *env_uri(const char *var)
{
    const char *uri = getenv(var);

    if (!uri || !uri[0]) {
        fail_msg("%s is not set: run the tests with `make test` or `tests/pg.sh run "
                 "build/san/tests/test_postgresql`",
                 var);
    }
    return uri;
}

static const char *password(void)
{
    static char pass[64];
    const char *uri = env_uri("ACCTMAP_TEST_PG");
    const char *at = strchr(uri + 13, '@'), *colon = strchr(uri + 13, ':');

    assert_true(at && colon && colon < at);
    snprintf(pass, sizeof(pass), "%.*s", (int)(at - colon - 1), colon + 1);
    return pass;
}

/* Run SQL (several statements allowed) on a test database, or fail the test. */
static void exec_on(const char *var, const char *text)
{
    PGconn *c = PQconnectdb(env_uri(var));
    PGresult *r;

    if (PQstatus(c) != CONNECTION_OK) {
        fail_msg("test server: %s", PQerrorMessage(c));
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    r = PQexec(c, text);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fail_msg("%s: %s", text, PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(c);
}

/* SQL on the test database with every "@S" replaced by this process's schema. */
static void exec_sql(const char *text)
{
    char out[4096];
    size_t n = 0, k = strlen(schema);

    while (*text) {
        if (text[0] == '@' && text[1] == 'S') {
            assert_true(n + k < sizeof(out));
            memcpy(out + n, schema, k);
            n += k;
            text += 2;
        } else {
            assert_true(n + 1 < sizeof(out));
            out[n++] = *text++;
        }
    }
    out[n] = '\0';
    exec_on("ACCTMAP_TEST_PG", out);
}

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

typedef struct pg_result {
    am_status rc;
    char msg[512];
    char label[256];
    test_record *records;
    size_t count;
    test_reject *rejects;
    size_t reject_count;
    size_t max_batch;
    size_t heap_growth;
} pg_result;

static char *dup_or_fail(const char *s)
{
    char *copy = strdup(s);

    assert_non_null(copy);
    return copy;
}

static void keep_batch(pg_result *r, const am_record_batch *batch, bool keep)
{
    size_t i;

    if (batch->count + batch->reject_count > r->max_batch) {
        r->max_batch = batch->count + batch->reject_count;
    }
    if (!keep) {
        r->count += batch->count;
        return;
    }
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
}

static void result_dispose(pg_result *r)
{
    size_t i;

    for (i = 0; r->records && i < r->count; i++) {
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
 * Read a source whose config entry is {"type": TYPE, <fields>}, to the end or
 * to its first failure. `keep` false: only count (for large tables).
 */
static void read_source(pg_result *r, const char *type, const char *fields, bool keep)
{
    const am_connector_ops *ops = am_connector_find(type);
    am_config *cfg = NULL;
    am_source *src = NULL;
    am_record_batch batch;
    am_error err;
    char json[4096];
    size_t heap_before;
    int n;

    memset(r, 0, sizeof(*r));
    am_record_batch_init(&batch);
    am_error_clear(&err);
    n = snprintf(json, sizeof(json),
                 "{\"self\":\"acme\",\"store\":\"dir:./data\",\"orgs\":[{\"id\":\"acme\","
                 "\"sources\":[{\"type\":\"%s\",%s}]},{\"id\":\"globex\",\"sources\":[{"
                 "\"type\":\"csv\",\"path\":\"globex.csv\"}]}]}",
                 type, fields);
    assert_true(n > 0 && (size_t)n < sizeof(json));
    assert_non_null(ops);
    if (am_config_parse(&cfg, json, (size_t)n, "acctmap.json", am_test_path(""), &err)) {
        fail_msg("config: %s", err.msg);
    }
    const am_source_config *sc = &am_config_org_at(cfg, 0)->sources[0];
    r->rc = am_source_config_check_fields(sc, ops->fields, &err);
    if (r->rc) {
        snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
        goto cleanup;
    }
    heap_before = HEAP_BYTES();
    r->rc = ops->open(&src, sc, &(am_source_env){0}, &err);
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
        keep_batch(r, &batch, keep);
    }
cleanup:
    ops->close(src);
    am_record_batch_dispose(&batch);
    am_config_free(cfg);
}

static int setup(void **state)
{
    am_test_sandbox_setup(state);
    setenv("AM_TEST_DSN", env_uri("ACCTMAP_TEST_PG"), 1);
    exec_sql("DROP SCHEMA IF EXISTS @S CASCADE; CREATE SCHEMA @S");
    /* globex.csv for the config's second org, never read here. */
    am_test_write_file(am_test_path("globex.csv"), "id,name,domain,tax_id,country,status\n", 37);
    return 0;
}

static int teardown(void **state)
{
    exec_sql("DROP SCHEMA IF EXISTS @S CASCADE");
    return am_test_sandbox_teardown(state);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_postgresql__reads_a_table_with_mapped_columns(void **state)
{
    (void)state;
    pg_result r;
    char fields[512];

    exec_sql("CREATE TABLE @S.crm_accounts (account_no integer, company text, website text, "
             "inn text, cc char(2), stage text, town text, manager text, deal numeric(12,2), "
             "extra jsonb);"
             "INSERT INTO @S.crm_accounts VALUES "
             "(1, 'ООО «Ромашка»', 'romashka.ru', '7707083893', 'RU', 'customer', 'Москва', "
             "'Ivan', 1234.50, '{}'),"
             "(2, '  Acme, Inc.  ', 'https://acme.com/', NULL, 'US', 'prospect;opportunity', "
             "NULL, NULL, NULL, NULL),"
             "(3, 'Globex', NULL, NULL, 'DE', 'Customers', 'Berlin', NULL, 0, NULL)");
    snprintf(fields, sizeof(fields),
             "\"dsn_env\":\"AM_TEST_DSN\",\"table\":\"%s.crm_accounts\",\"columns\":{\"id\":"
             "\"account_no\",\"name\":\"company\",\"domain\":\"website\",\"tax_id\":\"inn\","
             "\"country\":\"cc\",\"status\":\"stage\",\"city\":\"town\",\"owner\":\"manager\","
             "\"amount\":\"deal\"}",
             schema);
    read_source(&r, "postgresql", fields, true);
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.reject_count, 0);
    assert_string_equal(r.records[0].id, "1");
    assert_string_equal(r.records[0].name, "ООО «Ромашка»");
    assert_string_equal(r.records[0].tax_id, "7707083893");
    assert_string_equal(r.records[0].city, "Москва");
    assert_string_equal(r.records[0].owner, "Ivan");
    assert_true(r.records[0].has_amount);
    assert_int_equal(r.records[0].amount_cents, 123450);
    assert_int_equal(r.records[0].populations, CUSTOMERS);
    assert_string_equal(r.records[1].name, "Acme, Inc."); /* trimmed, as CSV cells are */
    assert_string_equal(r.records[1].tax_id, "");         /* NULL reads as empty */
    assert_false(r.records[1].has_amount);
    assert_int_equal(r.records[1].populations, PROSPECTS | OPPORTUNITIES);
    assert_int_equal(r.records[1].line, 2);
    assert_int_equal(r.records[2].populations, CUSTOMERS);
    assert_true(r.records[2].has_amount);
    assert_int_equal(r.records[2].amount_cents, 0);
    /* The label says where, never the password. */
    assert_non_null(strstr(r.label, "postgresql://acctmap@127.0.0.1:"));
    assert_non_null(strstr(r.label, "crm_accounts"));
    assert_null(strstr(r.label, password()));
    result_dispose(&r);
}

static void test_postgresql__reads_a_query_with_population_rules(void **state)
{
    (void)state;
    pg_result r;
    char fields[1024];

    exec_sql("CREATE TABLE @S.companies (id text, name text, domain text, tax_id text, "
             "country text);"
             "CREATE TABLE @S.deals (company_id text, stage text);"
             "INSERT INTO @S.companies VALUES ('c1', 'Initech', 'initech.com', '', 'US'),"
             "('c2', 'Hooli', 'hooli.com', '', 'US'), ('c3', 'Umbrella', NULL, NULL, 'GB');"
             "INSERT INTO @S.deals VALUES ('c1', 'Closed Won'), ('c2', 'Discovery'), "
             "('c3', 'Closed Won')");
    snprintf(
        fields, sizeof(fields),
        "\"dsn_env\":\"AM_TEST_DSN\",\"query\":\"SELECT c.id, c.name, c.domain, c.tax_id, "
        "c.country, d.stage AS status FROM %s.companies c JOIN %s.deals d ON "
        "d.company_id = c.id ORDER BY c.id; \\n\",\"populations\":{\"Closed Won\":\"customers\","
        "\"Discovery\":\"opportunities\"}",
        schema, schema);
    read_source(&r, "postgresql", fields, true);
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 3);
    assert_string_equal(r.records[0].id, "c1");
    assert_int_equal(r.records[0].populations, CUSTOMERS);
    assert_int_equal(r.records[1].populations, OPPORTUNITIES);
    assert_string_equal(r.records[2].name, "Umbrella");
    assert_non_null(strstr(r.label, " query"));
    result_dispose(&r);
}

/*
 * The same rows as a table and as a CSV file: the connector gives the same
 * records and the same rejects, with the row number where CSV has the line.
 */
static void test_postgresql__type_surprises_reject_rows_like_csv(void **state)
{
    (void)state;
    static const char csv[] = "id,name,domain,tax_id,country,status,amount\n"
                              "1,Acme,acme.com,,US,customer,10.50\n"
                              ",Nameless Id,x.com,,US,customer,\n"
                              "3,,,,US,customer,\n"
                              "4,Numbers,n.com,,US,1,\n"
                              "5,Empty Status,e.com,,US,,\n"
                              "6,Bad Amount,b.com,,US,prospect,TBD\n"
                              "7,Too Precise,p.com,,US,prospect,12.345\n"
                              "8,Fine,fine.com,,FR,opportunity,7\n";
    pg_result from_csv, from_pg;
    char fields[512];
    size_t i;

    /* As the database would hold them: NULLs, a number for the status, text amounts. */
    exec_sql("CREATE TABLE @S.t (id integer, name text, domain text, tax_id text, "
             "country text, status integer, status_text text, amount text);"
             "INSERT INTO @S.t VALUES (1, 'Acme', 'acme.com', NULL, 'US', NULL, 'customer', "
             "'10.50'), (NULL, 'Nameless Id', 'x.com', NULL, 'US', NULL, 'customer', NULL), "
             "(3, NULL, NULL, NULL, 'US', NULL, 'customer', NULL), "
             "(4, 'Numbers', 'n.com', NULL, 'US', 1, NULL, NULL), "
             "(5, 'Empty Status', 'e.com', NULL, 'US', NULL, NULL, NULL), "
             "(6, 'Bad Amount', 'b.com', NULL, 'US', NULL, 'prospect', 'TBD'), "
             "(7, 'Too Precise', 'p.com', NULL, 'US', NULL, 'prospect', '12.345'), "
             "(8, 'Fine', 'fine.com', NULL, 'FR', NULL, 'opportunity', '7')");
    am_test_write_file(am_test_path("rows.csv"), csv, sizeof(csv) - 1);
    read_source(&from_csv, "csv", "\"path\":\"rows.csv\"", true);
    snprintf(fields, sizeof(fields),
             "\"dsn_env\":\"AM_TEST_DSN\",\"query\":\"SELECT id, name, domain, tax_id, "
             "country, coalesce(status::text, status_text) AS status, amount FROM %s.t "
             "ORDER BY id NULLS FIRST\"",
             schema);
    /* NULLS FIRST puts the NULL id first: the rows CSV has on lines 2 and 3 swap. */
    read_source(&from_pg, "postgresql", fields, true);
    assert_int_equal(from_csv.rc, AM_OK);
    assert_int_equal(from_pg.rc, AM_OK);
    assert_int_equal(from_pg.count, from_csv.count);
    assert_int_equal(from_pg.count, 2);
    assert_int_equal(from_pg.reject_count, from_csv.reject_count);
    assert_int_equal(from_pg.reject_count, 6);
    for (i = 0; i < from_pg.count; i++) {
        assert_string_equal(from_pg.records[i].id, from_csv.records[i].id);
        assert_string_equal(from_pg.records[i].tax_id, from_csv.records[i].tax_id);
        assert_int_equal(from_pg.records[i].amount_cents, from_csv.records[i].amount_cents);
        assert_int_equal(from_pg.records[i].populations, from_csv.records[i].populations);
    }
    for (i = 0; i < from_pg.reject_count; i++) {
        /* "rows.csv:LINE: what" and "query:ROW: what": the same what. */
        const char *what_csv = strchr(strchr(from_csv.rejects[i].msg, ':') + 1, ':');
        const char *what_pg = strchr(strchr(from_pg.rejects[i].msg, ':') + 1, ':');
        uint32_t csv_line = from_csv.rejects[i].line;
        assert_string_equal(what_pg, what_csv);
        /* CSV line 2 is the header's next: row 1. The first two swapped (see above). */
        assert_int_equal(from_pg.rejects[i].line, i == 0 ? 1 : csv_line - 1);
        assert_true(strncmp(from_pg.rejects[i].msg, "query:", 6) == 0);
    }
    assert_non_null(strstr(from_pg.rejects[0].msg, "column 'id': empty; give every row an id"));
    assert_non_null(strstr(from_pg.rejects[2].msg, "column 'status': unknown value \"1\""));
    result_dispose(&from_csv);
    result_dispose(&from_pg);
}

static void test_postgresql__invalid_utf8_from_sql_ascii(void **state)
{
    (void)state;
    pg_result r;
    char fields[256];

    exec_on("ACCTMAP_TEST_PG_ASCII",
            "DROP TABLE IF EXISTS latin1;"
            "CREATE TABLE latin1 (id text, name text, domain text, tax_id text, "
            "country text, status text);"
            "INSERT INTO latin1 VALUES ('1', 'Caf' || chr(233), 'cafe.fr', '', 'FR', "
            "'customer'), ('2', 'Plain', 'plain.fr', '', 'FR', 'customer'), "
            "('3', 'Ok', 'ok.fr', '', 'FR', 'prospect' || chr(255))");
    setenv("AM_TEST_DSN_ASCII", env_uri("ACCTMAP_TEST_PG_ASCII"), 1);
    snprintf(fields, sizeof(fields), "\"dsn_env\":\"AM_TEST_DSN_ASCII\",\"table\":\"latin1\"");
    read_source(&r, "postgresql", fields, true);
    if (r.rc) {
        fail_msg("%s", r.msg);
    }
    assert_int_equal(r.count, 1);
    assert_string_equal(r.records[0].name, "Plain");
    assert_int_equal(r.reject_count, 2);
    assert_int_equal(r.rejects[0].line, 1);
    assert_string_equal(r.rejects[0].msg, "table latin1:1: column 'name': invalid UTF-8 (byte "
                                          "0xE9 at offset 3); store the text as UTF-8 in the "
                                          "database");
    assert_int_equal(r.rejects[1].line, 3);
    assert_non_null(strstr(r.rejects[1].msg, "column 'status': invalid UTF-8 (byte 0xFF"));
    result_dispose(&r);
    exec_on("ACCTMAP_TEST_PG_ASCII", "DROP TABLE latin1");
}

static void test_postgresql__config_and_server_errors_are_clear(void **state)
{
    (void)state;
    pg_result r;
    char fields[512], uri[512];
    const char *port = strrchr(env_uri("ACCTMAP_TEST_PG"), ':');

    exec_sql("CREATE TABLE @S.t (id text, name text, domain text, tax_id text, country text)");
    snprintf(fields, sizeof(fields), "\"dsn_env\":\"AM_TEST_DSN\",\"table\":\"%s.t\"", schema);
    read_source(&r, "postgresql", fields, true);
    assert_int_equal(r.rc, AM_EINPUT);
    assert_non_null(strstr(r.msg, "has no column \"status\" (our 'status'); map it under "
                                  "\"columns\""));
    result_dispose(&r);

    read_source(&r, "postgresql",
                "\"dsn_env\":\"AM_TEST_DSN\",\"table\":\"t\",\"query\":"
                "\"SELECT 1\"",
                true);
    assert_int_equal(r.rc, AM_ECONFIG);
    assert_non_null(strstr(r.msg, "give either \"table\""));
    result_dispose(&r);

    unsetenv("AM_TEST_DSN_UNSET");
    read_source(&r, "postgresql", "\"dsn_env\":\"AM_TEST_DSN_UNSET\",\"table\":\"t\"", true);
    assert_int_equal(r.rc, AM_ECONFIG);
    assert_non_null(strstr(r.msg, "dsn_env: the environment variable AM_TEST_DSN_UNSET is not "
                                  "set"));
    result_dispose(&r);

    read_source(&r, "postgresql", "\"dsn_env\":\"AM_TEST_DSN\",\"table\":\"no_such_table\"", true);
    assert_int_equal(r.rc, AM_EIO);
    assert_non_null(strstr(r.msg, "cannot read the table: ERROR:  relation \"no_such_table\" "
                                  "does not exist"));
    assert_null(strstr(r.msg, password()));
    result_dispose(&r);

    /* Read-only: a query that would write is refused by the server. */
    exec_sql("CREATE SEQUENCE @S.s; INSERT INTO @S.t VALUES ('1', 'A', 'a.com', '', 'US')");
    snprintf(fields, sizeof(fields),
             "\"dsn_env\":\"AM_TEST_DSN\",\"query\":\"SELECT *, "
             "'customer' AS status, nextval('%s.s') FROM %s.t\"",
             schema, schema);
    read_source(&r, "postgresql", fields, true);
    assert_int_equal(r.rc, AM_EIO);
    if (!strstr(r.msg, "read-only transaction")) {
        fail_msg("%s", r.msg);
    }
    result_dispose(&r);

    snprintf(uri, sizeof(uri), "postgresql://acctmap:not-the-pass-77@127.0.0.1%s", port);
    setenv("AM_TEST_DSN_BAD", uri, 1);
    read_source(&r, "postgresql", "\"dsn_env\":\"AM_TEST_DSN_BAD\",\"table\":\"t\"", true);
    assert_int_equal(r.rc, AM_ENET);
    assert_non_null(strstr(r.msg, "cannot connect"));
    assert_non_null(strstr(r.msg, "check that the server is up and the connection string in "
                                  "AM_TEST_DSN_BAD"));
    assert_null(strstr(r.msg, "not-the-pass-77"));
    assert_null(strchr(r.msg, '\n'));
    result_dispose(&r);

    read_source(&r, "postgresql", "\"dsn_env\":\"AM_TEST_DSN\",\"table\":\"t\",\"path\":\"x\"",
                true);
    assert_int_equal(r.rc, AM_ECONFIG); /* a field it does not know */
    result_dispose(&r);
}

/* 200,000 rows in batches of at most 4096: the heap never holds more than a batch or two. */
static void test_postgresql__large_table_in_bounded_memory(void **state)
{
    (void)state;
    pg_result r;
    char fields[256];

    exec_sql("CREATE TABLE @S.big AS SELECT 'id' || g AS id, 'Company number ' || g || "
             "' of a long list' AS name, 'c' || g || '.example.com' AS domain, '' AS tax_id, "
             "'US' AS country, CASE WHEN g % 2 = 0 THEN 'customer' ELSE 'prospect' END AS "
             "status, 'Springfield' AS city FROM generate_series(1, 200000) g");
    snprintf(fields, sizeof(fields), "\"dsn_env\":\"AM_TEST_DSN\",\"table\":\"%s.big\"", schema);
    read_source(&r, "postgresql", fields, false);
    assert_int_equal(r.rc, AM_OK);
    assert_int_equal(r.count, 200000);
    assert_int_equal(r.max_batch, 4096);
#if defined(__SANITIZE_ADDRESS__)
    /* All rows at once would be over 30 MB of records and strings. */
    assert_true(r.heap_growth < (size_t)8 << 20);
#endif
    result_dispose(&r);
}

/* Load a CSV file into table @S.NAME with COPY (every column text). */
static void copy_csv_into(const char *table, const char *columns, const char *path)
{
    PGconn *c = PQconnectdb(env_uri("ACCTMAP_TEST_PG"));
    PGresult *r;
    char text[512];
    size_t len = 0;
    char *data = am_test_read_file(path, &len);

    assert_non_null(data);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    snprintf(text, sizeof(text), "CREATE TABLE %s.%s (%s)", schema, table, columns);
    r = PQexec(c, text);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    snprintf(text, sizeof(text), "COPY %s.%s FROM STDIN WITH (FORMAT csv, HEADER true)", schema,
             table);
    r = PQexec(c, text);
    assert_int_equal(PQresultStatus(r), PGRES_COPY_IN);
    PQclear(r);
    assert_int_equal(PQputCopyData(c, data, (int)len), 1);
    assert_int_equal(PQputCopyEnd(c, NULL), 1);
    r = PQgetResult(c);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
    free(data);
}

/* The demo with acme's companies in a table: acctmap gives what it gives from the CSV file. */
static void test_postgresql__demo_from_a_table_matches_csv(void **state)
{
    (void)state;
    static const char *const verbs[][6] = {
        {"matrix", NULL},
        {"accounts", "globex", "--format", "csv", NULL},
        {"accounts", "romashka", "--format", "csv", NULL},
    };
    am_test_output csv_out = {0}, pg_out = {0};
    size_t len = 0, v;
    char *cfg = NULL, *out = NULL, *at;
    char repl[160];
    const char *from = "\"type\": \"csv\",\n          \"path\": \"data/acme.csv\"";

    copy_csv_into("acme",
                  "id text, name text, domain text, tax_id text, country text, "
                  "status text, city text, owner text, amount text",
                  am_test_path("demo/data/acme.csv"));
    cfg = am_test_read_file(am_test_path("demo/acctmap.json"), &len);
    assert_non_null(cfg);
    at = strstr(cfg, from);
    assert_non_null(at);
    snprintf(repl, sizeof(repl),
             "\"type\": \"postgresql\", \"dsn_env\": \"AM_TEST_DSN\", "
             "\"table\": \"%s.acme\"",
             schema);
    out = malloc(len + strlen(repl) + 1);
    assert_non_null(out);
    memcpy(out, cfg, (size_t)(at - cfg));
    memcpy(out + (at - cfg), repl, strlen(repl));
    memcpy(out + (at - cfg) + strlen(repl), at + strlen(from),
           len - (size_t)(at - cfg) - strlen(from) + 1);
    am_test_write_file(am_test_path("demo/pg.json"), out, strlen(out));
    /* Its own store, so that both have one run. */
    {
        char *p = strstr(out, "dir:./acctmap-data");
        assert_non_null(p);
        memcpy(p, "dir:./acctmap-pgdb", 18);
        am_test_write_file(am_test_path("demo/pg.json"), out, strlen(out));
    }
    {
        const char *run_csv[] = {"run", NULL};
        const char *run_pg[] = {"-c", "pg.json", "run", NULL};
        assert_int_equal(am_test_run(&csv_out, am_test_path("demo"), run_csv), 0);
        assert_int_equal(am_test_run(&pg_out, am_test_path("demo"), run_pg), 0);
        /* The same records read from acme (the rejects come from the other orgs' CSVs). */
        assert_string_equal(csv_out.err, pg_out.err);
        am_test_output_dispose(&csv_out);
        am_test_output_dispose(&pg_out);
    }
    {
        /* The run keeps the source's label: where the table is, without the password. */
        const char *runs[] = {"-c", "pg.json", "runs", "--format", "csv", NULL};
        assert_int_equal(am_test_run(&pg_out, am_test_path("demo"), runs), 0);
        assert_non_null(strstr(pg_out.out, ",postgresql://acctmap@127.0.0.1:"));
        assert_non_null(strstr(pg_out.out, "/acctmap_test table conn_"));
        assert_null(strstr(pg_out.out, password()));
        am_test_output_dispose(&pg_out);
    }
    for (v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
        const char *args_csv[8], *args_pg[10];
        size_t i;
        args_pg[0] = "-c";
        args_pg[1] = "pg.json";
        for (i = 0; verbs[v][i]; i++) {
            args_csv[i] = verbs[v][i];
            args_pg[i + 2] = verbs[v][i];
        }
        args_csv[i] = NULL;
        args_pg[i + 2] = NULL;
        assert_int_equal(am_test_run(&csv_out, am_test_path("demo"), args_csv), 0);
        assert_int_equal(am_test_run(&pg_out, am_test_path("demo"), args_pg), 0);
        if (v == 0) {
            /* The first line names the run, whose id is its second. */
            char *a = strchr(csv_out.out, '\n'), *b = strchr(pg_out.out, '\n');
            assert_non_null(a);
            assert_non_null(b);
            assert_string_equal(a, b);
        } else {
            assert_string_equal(csv_out.out, pg_out.out);
            assert_true(am_test_count_lines(pg_out.out) > 5);
        }
        am_test_output_dispose(&csv_out);
        am_test_output_dispose(&pg_out);
    }
    free(out);
    free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_postgresql__reads_a_table_with_mapped_columns, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_postgresql__reads_a_query_with_population_rules, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_postgresql__type_surprises_reject_rows_like_csv, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_postgresql__invalid_utf8_from_sql_ascii, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_postgresql__config_and_server_errors_are_clear, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_postgresql__large_table_in_bounded_memory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_postgresql__demo_from_a_table_matches_csv, setup,
                                        teardown),
    };

    snprintf(schema, sizeof(schema), "conn_%ld", (long)getpid());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
