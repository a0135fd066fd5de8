/*
 * PostgreSQL connector: reads companies from a table or a query of a
 * database into records, the first stage of the data flow for sources kept in
 * PostgreSQL. Rows come through a server-side cursor (DECLARE / FETCH) in a
 * read-only transaction, one batch at a time, so memory stays constant for
 * millions of rows. Cells become text on the server and go through the same
 * checks as CSV cells: a bad row is a reject with its row number.
 */
#include "acctmap/connector.h"
#include "acctmap/parse.h"
#include "connectors/rows.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <utf8proc.h>

#define PG_BATCH_ROWS 4096         /* rows per FETCH */
#define PG_FIELD_MAX (1024 * 1024) /* as CSV_FIELD_MAX: longer cells are rejected */

extern const am_connector_ops am_connector_postgresql;

typedef struct pg_source {
    am_source base;    /* first: an am_source * points here */
    const char *where; /* "table companies" or "query": reject prefix */
    char where_buf[160];
    const char *table; /* from the config, or NULL */
    const char *query; /* from the config, or NULL */
    const char *dsn_env;
    const char *column_name[AM_COL_COUNT]; /* from "columns", or our own name */
    int field_of[AM_COL_COUNT];            /* position in the cursor's rows, -1 when absent */
    char *password;                     /* from the DSN, blanked out of messages */
    char *dsn;
    PGconn *conn;
    uint64_t row; /* rows fetched so far */
    bool done;
    bool failed; /* unreadable from here: base.last says why, every call again */
} pg_source;

/* ---- small helpers ----------------------------------------------------------- */

static void blank_out(char *s, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    char *p;

    if (n < 3) {
        return;
    }
    while ((p = strstr(s, secret)) != NULL) {
        memset(p, '*', n);
    }
}

/* The first line of a libpq message, without the connection string or its password. */
static void clean_message(char *out, size_t cap, const pg_source *s, const char *msg)
{
    size_t n;

    snprintf(out, cap, "%s", msg && *msg ? msg : "no reason given");
    n = strcspn(out, "\r\n");
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '.')) {
        out[--n] = '\0';
    }
    blank_out(out, s->dsn);
    blank_out(out, s->password);
}

static am_status server_error(pg_source *s, const PGresult *res, const char *what, am_error *err)
{
    char why[320];
    const char *msg = res ? PQresultErrorMessage(res) : NULL;

    clean_message(why, sizeof(why), s, msg && *msg ? msg : PQerrorMessage(s->conn));
    if (PQstatus(s->conn) == CONNECTION_BAD) {
        return am_error_set(err, AM_ENET,
                            "%s: %s: the connection to the server was lost (%s); "
                            "check that the server is up and run acctmap again",
                            s->base.label, what, why);
    }
    return am_error_set(err, AM_EIO,
                        "%s: %s: %s; check the source's table, query and columns, "
                        "and the user's rights",
                        s->base.label, what, why);
}

static am_status exec_ok(pg_source *s, const char *sql, ExecStatusType want, PGresult **out,
                         const char *what, am_error *err)
{
    PGresult *res = PQexec(s->conn, sql);

    if (PQresultStatus(res) != want) {
        am_status rc = server_error(s, res, what, err);
        PQclear(res);
        return rc;
    }
    if (out) {
        *out = res;
    } else {
        PQclear(res);
    }
    return AM_OK;
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* ---- config -------------------------------------------------------------------- */

typedef struct columns_ctx {
    pg_source *s;
    const am_source_config *cfg;
} columns_ctx;

static am_status take_column(void *ctx_, const char *key, const char *value, am_error *err)
{
    columns_ctx *ctx = ctx_;
    size_t k;
    am_status rc = am_row_column_of(&k, key, ctx->cfg->where, err);

    if (rc) {
        return rc;
    }
    if (!value[0]) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.columns.%s: empty; give the name of the "
                            "column in the table or query",
                            ctx->cfg->where, key);
    }
    ctx->s->column_name[k] = value;
    return AM_OK;
}

static am_status read_config(pg_source *s, const am_source_config *cfg, am_error *err)
{
    columns_ctx ctx = {s, cfg};
    size_t k;
    am_status rc;

    rc = am_source_config_string(&s->dsn_env, cfg, "dsn_env", true, err);
    if (!rc) {
        rc = am_source_config_string(&s->table, cfg, "table", false, err);
    }
    if (!rc) {
        rc = am_source_config_string(&s->query, cfg, "query", false, err);
    }
    if (rc) {
        return rc;
    }
    if ((s->table && s->query) || (!s->table && !s->query) || (s->table && !s->table[0]) ||
        (s->query && !s->query[0])) {
        return am_error_set(err, AM_ECONFIG,
                            "%s: give either \"table\" (a table or view, "
                            "schema.name allowed) or \"query\" (one SELECT), not both",
                            cfg->where);
    }
    for (k = 0; k < AM_COL_COUNT; k++) {
        s->column_name[k] = am_row_column_names[k];
        s->field_of[k] = -1;
    }
    rc = am_source_config_each_pair(cfg, "columns", take_column, &ctx, err);
    if (rc) {
        return rc;
    }
    if (s->table) {
        snprintf(s->where_buf, sizeof(s->where_buf), "table %.120s", s->table);
    } else {
        snprintf(s->where_buf, sizeof(s->where_buf), "query");
    }
    s->where = s->where_buf;
    return AM_OK;
}

/* "postgresql://user@host:port/db table X" from the DSN's parts: never the password. */
static am_status describe(pg_source *s, const am_source_config *cfg, am_error *err)
{
    const char *user = "", *host = "", *port = "", *db = "";
    PQconninfoOption *opts, *o;
    char *perr = NULL;

    opts = PQconninfoParse(s->dsn, &perr);
    if (!opts) {
        /* libpq's reason quotes the string, password and all. */
        PQfreemem(perr);
        return am_error_set(err, AM_ECONFIG,
                            "%s.dsn_env: the connection string in %s cannot "
                            "be read (not shown: it may hold a password); use a postgresql:// "
                            "URI or key=value pairs",
                            cfg->where, s->dsn_env);
    }
    for (o = opts; o->keyword; o++) {
        if (!o->val) {
            continue;
        }
        if (strcmp(o->keyword, "user") == 0) {
            user = o->val;
        } else if (strcmp(o->keyword, "host") == 0) {
            host = o->val;
        } else if (strcmp(o->keyword, "port") == 0) {
            port = o->val;
        } else if (strcmp(o->keyword, "dbname") == 0) {
            db = o->val;
        } else if (strcmp(o->keyword, "password") == 0) {
            free(s->password);
            s->password = strdup(o->val);
        }
    }
    snprintf(s->base.label, sizeof(s->base.label), "postgresql://%.40s%s%.64s%s%.8s/%.40s %.80s",
             user, *user ? "@" : "", host, *port ? ":" : "", port, db, s->where);
    PQconninfoFree(opts);
    return AM_OK;
}

/* ---- opening -------------------------------------------------------------------- */

/* `schema.name` or `name`, each part quoted: any name the config gives is safe. */
static char *quoted_table(pg_source *s)
{
    const char *dot = strchr(s->table, '.');
    char *a = NULL, *b = NULL, *out = NULL;

    if (dot) {
        a = PQescapeIdentifier(s->conn, s->table, (size_t)(dot - s->table));
        b = PQescapeIdentifier(s->conn, dot + 1, strlen(dot + 1));
    } else {
        a = PQescapeIdentifier(s->conn, s->table, strlen(s->table));
    }
    if (a && (!dot || b)) {
        size_t n = strlen(a) + (b ? strlen(b) + 1 : 0) + 1;
        out = malloc(n);
        if (out) {
            snprintf(out, n, "%s%s%s", a, b ? "." : "", b ? b : "");
        }
    }
    PQfreemem(a);
    PQfreemem(b);
    return out;
}

/* What the cursor reads from: the table, or the query as a subquery. */
static char *from_clause(pg_source *s)
{
    char *out;
    size_t n;

    if (s->table) {
        return quoted_table(s);
    }
    /*
     * The query is the config's own SQL, run read-only: wrapped, it must be one
     * SELECT. A final ';' (as people end SQL) would break the wrapping: cut off.
     */
    n = strlen(s->query);
    while (n > 0 && (am_row_is_blank(s->query[n - 1]) || s->query[n - 1] == ';')) {
        n--;
    }
    out = malloc(n + 32);
    if (out) {
        snprintf(out, n + 32, "(%.*s\n) AS am_source", (int)n, s->query);
    }
    return out;
}

/* Find our columns among the relation's; required ones must be there. */
static am_status map_columns(pg_source *s, const PGresult *probe, const am_source_config *cfg,
                             am_error *err)
{
    int nf = PQnfields(probe), f;
    size_t k;

    for (k = 0; k < AM_COL_COUNT; k++) {
        const char *want = s->column_name[k];
        for (f = 0; f < nf && s->field_of[k] < 0; f++) {
            if (strcmp(PQfname(probe, f), want) == 0) {
                s->field_of[k] = f;
            }
        }
        /* Unquoted names fold to lower case in SQL: "Name" in the config finds name. */
        for (f = 0; f < nf && s->field_of[k] < 0; f++) {
            if (am_row_equals_nocase(PQfname(probe, f), strlen(PQfname(probe, f)), want)) {
                s->field_of[k] = f;
            }
        }
        if (s->field_of[k] < 0 && k < AM_COL_REQUIRED) {
            return am_error_set(err, AM_EINPUT,
                                "%s: %s has no column \"%.64s\" (our '%s'); "
                                "map it under \"columns\" in the source's config",
                                cfg->where, s->where, want, am_row_column_names[k]);
        }
    }
    return AM_OK;
}

static am_status declare_cursor(pg_source *s, const am_source_config *cfg, am_error *err)
{
    char *from = NULL, *sql = NULL;
    PGresult *probe = NULL;
    size_t n, k;
    am_status rc;

    from = from_clause(s);
    if (!from) {
        return am_error_set(err, AM_ENOMEM, "%s: out of memory", s->base.label);
    }
    n = strlen(from) + 64;
    sql = malloc(n);
    if (!sql) {
        free(from);
        return am_error_set(err, AM_ENOMEM, "%s: out of memory", s->base.label);
    }
    /* The relation's columns, without reading a row. */
    snprintf(sql, n, "SELECT * FROM %s LIMIT 0", from);
    rc = exec_ok(s, sql, PGRES_TUPLES_OK, &probe,
                 s->table ? "cannot read the table" : "cannot run the query", err);
    free(sql);
    sql = NULL;
    if (!rc) {
        rc = map_columns(s, probe, cfg, err);
    }
    if (!rc) {
        /* Each present column as text, quoted by name; absent ones are not selected. */
        size_t cap = strlen(from) + 128, len;
        int field = 0;
        for (k = 0; k < AM_COL_COUNT; k++) {
            if (s->field_of[k] >= 0) {
                cap += strlen(PQfname(probe, s->field_of[k])) * 2 + 16;
            }
        }
        sql = malloc(cap);
        if (!sql) {
            rc = am_error_set(err, AM_ENOMEM, "%s: out of memory", s->base.label);
        }
        len = sql ? (size_t)snprintf(sql, cap, "DECLARE am_rows NO SCROLL CURSOR FOR SELECT ") : 0;
        for (k = 0; !rc && k < AM_COL_COUNT; k++) {
            char *ident;
            if (s->field_of[k] < 0) {
                continue;
            }
            ident = PQescapeIdentifier(s->conn, PQfname(probe, s->field_of[k]),
                                       strlen(PQfname(probe, s->field_of[k])));
            if (!ident) {
                rc = am_error_set(err, AM_ENOMEM, "%s: out of memory", s->base.label);
                break;
            }
            len += (size_t)snprintf(sql + len, cap - len, "%s%s::text", field ? ", " : "", ident);
            PQfreemem(ident);
            s->field_of[k] = field++;
        }
        if (!rc) {
            snprintf(sql + len, cap - len, " FROM %s", from);
            rc = exec_ok(s, sql, PGRES_COMMAND_OK, NULL, "cannot open a cursor", err);
        }
    }
    PQclear(probe);
    free(sql);
    free(from);
    return rc;
}

static void pg_close(am_source *src)
{
    pg_source *s = (pg_source *)src;

    if (!s) {
        return;
    }
    /* Closing the connection ends the read-only transaction and its cursor. */
    PQfinish(s->conn);
    free(s->password);
    free(s->dsn);
    free(s);
}

static am_status pg_open(am_source **out, const am_source_config *cfg, const am_source_env *env,
                         am_error *err)
{
    static const char *const keys[] = {"dbname", "application_name", "client_encoding",
                                       "connect_timeout", NULL};
    const char *values[5] = {NULL, "acctmap", "UTF8", "10", NULL};
    pg_source *s;
    const char *dsn;
    am_status rc;

    (void)env; /* the connection string is all it needs; it keeps no secret */
    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (!s) {
        return am_error_set(err, AM_ENOMEM, "%s: out of memory opening a PostgreSQL source",
                            cfg->where);
    }
    s->base.ops = &am_connector_postgresql;
    s->base.cfg = cfg;
    rc = read_config(s, cfg, err);
    if (rc) {
        goto cleanup;
    }
    dsn = getenv(s->dsn_env);
    if (!dsn || !dsn[0]) {
        rc = am_error_set(err, AM_ECONFIG,
                          "%s.dsn_env: the environment variable %.64s is not "
                          "set; export it with the database's connection string",
                          cfg->where, s->dsn_env);
        goto cleanup;
    }
    s->dsn = strdup(dsn);
    if (!s->dsn) {
        rc = am_error_set(err, AM_ENOMEM, "%s: out of memory", cfg->where);
        goto cleanup;
    }
    rc = describe(s, cfg, err);
    if (rc) {
        goto cleanup;
    }
    values[0] = s->dsn;
    s->conn = PQconnectdbParams(keys, values, 1);
    if (!s->conn) {
        rc = am_error_set(err, AM_ENOMEM, "%s: out of memory connecting", s->base.label);
        goto cleanup;
    }
    PQsetNoticeProcessor(s->conn, ignore_notice, NULL);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char why[320];
        clean_message(why, sizeof(why), s, PQerrorMessage(s->conn));
        rc = am_error_set(err, AM_ENET,
                          "%s: cannot connect: %s; check that the server is up "
                          "and the connection string in %s",
                          s->base.label, why, s->dsn_env);
        goto cleanup;
    }
    /*
     * A SQL_ASCII database keeps bytes as they came, and the server refuses to
     * send them as UTF-8 when they are not: take them raw, each row is checked.
     */
    if (strcmp(PQparameterStatus(s->conn, "server_encoding")
                   ? PQparameterStatus(s->conn, "server_encoding")
                   : "",
               "SQL_ASCII") == 0 &&
        PQsetClientEncoding(s->conn, "SQL_ASCII") != 0) {
        rc = server_error(s, NULL, "cannot set the client encoding", err);
        goto cleanup;
    }
    /* One snapshot for the whole read, and no way to write through this source. */
    rc = exec_ok(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", PGRES_COMMAND_OK, NULL,
                 "cannot start reading", err);
    if (!rc) {
        rc = declare_cursor(s, cfg, err);
    }
    if (rc) {
        goto cleanup;
    }
    *out = &s->base;
    s = NULL;
cleanup:
    pg_close(s ? &s->base : NULL);
    return rc;
}

/* ---- records ---------------------------------------------------------------------- */

/* One fetched row into a record, or a reject saying why not. NULL reads as an empty cell. */
static am_status emit_row(pg_source *s, const PGresult *res, int r, am_record_batch *batch,
                          am_error *err)
{
    const char *value[AM_COL_COUNT];
    size_t len[AM_COL_COUNT];
    char why[400];
    size_t k;
    uint64_t row = s->row;
    uint32_t mask = 0;
    int64_t cents = 0;

    for (k = 0; k < AM_COL_COUNT; k++) {
        int f = s->field_of[k];
        size_t at;
        value[k] = "";
        len[k] = 0;
        if (f < 0 || PQgetisnull(res, r, f)) {
            continue;
        }
        value[k] = PQgetvalue(res, r, f);
        len[k] = (size_t)PQgetlength(res, r, f);
        if (len[k] > PG_FIELD_MAX) {
            return am_row_reject(batch, s->where, row, err,
                          "column '%s': value longer than the 1 MiB limit; "
                          "shorten it",
                          am_row_column_names[k]);
        }
        am_row_trim(&value[k], &len[k]);
        at = am_row_utf8_bad_offset(value[k], len[k]);
        if (at < len[k]) {
            /* A SQL_ASCII database hands its bytes over as they are. */
            return am_row_reject(batch, s->where, row, err,
                          "column '%s': invalid UTF-8 (byte 0x%02X at "
                          "offset %zu); store the text as UTF-8 in the database",
                          am_row_column_names[k], (unsigned char)value[k][at], at);
        }
    }
    am_row_check(&mask, &cents, why, sizeof(why), s->base.cfg, value, len);
    if (why[0]) {
        return am_row_reject(batch, s->where, row, err, "%s", why);
    }
    return am_row_record(batch, value, len, NULL, s->where, "row", row, mask, cents, err);
}

static am_status pg_next_batch(am_source *src, am_record_batch *batch, am_error *err)
{
    pg_source *s = (pg_source *)src;
    PGresult *res = NULL;
    char fetch[64];
    int r, rows;
    am_status rc;

    am_record_batch_reset(batch);
    if (s->failed) {
        *err = s->base.last;
        return err->status;
    }
    if (s->done) {
        return AM_OK;
    }
    snprintf(fetch, sizeof(fetch), "FETCH FORWARD %d FROM am_rows", PG_BATCH_ROWS);
    rc = exec_ok(s, fetch, PGRES_TUPLES_OK, &res, "cannot read rows", err);
    if (rc) {
        s->base.last = *err;
        s->failed = true;
        return rc;
    }
    rows = PQntuples(res);
    for (r = 0; !rc && r < rows; r++) {
        s->row++;
        rc = emit_row(s, res, r, batch, err);
    }
    PQclear(res);
    if (rows < PG_BATCH_ROWS) {
        s->done = true;
    }
    if (rc) {
        s->base.last = *err;
        s->failed = true;
    }
    return rc;
}

static const am_error *pg_last_error(const am_source *src)
{
    return &src->last;
}

static const char *const pg_fields[] = {"dsn_env", "table", "query", "columns", NULL};

const am_connector_ops am_connector_postgresql = {
    .type = "postgresql",
    .fields = pg_fields,
    .open = pg_open,
    .next_batch = pg_next_batch,
    .close = pg_close,
    .last_error = pg_last_error,
};
