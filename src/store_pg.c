/*
 * PostgreSQL store (`postgresql://...`): the team store. The same parts as
 * the dir store, kept as bytea chunks in one schema (default "acctmap"):
 *   meta(key, value)                 the layout version, migrated by acctmap
 *   runs(key, id, committed_at)      committed runs, never updated
 *   parts(run_key, part, seq, data)  each part of a run in chunks of CHUNK bytes
 *   secrets(name, value, saved_at)   kept between runs, granted to nobody else
 * A run is written in one transaction on its own connection, under a
 * transaction-level advisory lock: until COMMIT nothing of it is visible, and
 * a killed process or a lost connection rolls all of it back.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "acctmap/parse.h"
#include "store_backend.h"

#define SCHEMA_VERSION 1
#define CHUNK ((size_t)1 << 20)         /* bytes of a part per row */
#define BUFFERED_MAX ((size_t)16 << 20) /* all parts' pending bytes before a flush */
#define PART_READ_MAX ((size_t)64 << 30)
#define MAX_PARTS 1024

typedef struct pg_store {
    char *conninfo; /* the URI as given: holds the password, never shown */
    char *password; /* from the URI, to blank out of server messages */
    char display[256];
    char schema[64];
    char schema_ident[72]; /* "schema": checked to [a-z0-9_], so quoting is enough */
    PGconn *conn;          /* readers and secrets, under `mu` */
    pthread_mutex_t mu;
    bool ready; /* the layout is at SCHEMA_VERSION */
} pg_store;

typedef struct pending_part {
    char name[64];
    unsigned char *buf;
    size_t len;
    int seq; /* next chunk number */
} pending_part;

typedef struct pg_txn {
    pg_store *st;
    PGconn *conn;
    char run_key[24];
    pending_part *parts;
    size_t part_count;
    size_t buffered;
} pg_txn;

/* ---- messages ------------------------------------------------------------- */

/* Replace every occurrence of `secret` in `s` (in place) with stars. */
static void blank_out(char *s, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    char *p;

    if (n < 3) {
        return; /* too short to tell from ordinary words; never a real password */
    }
    while ((p = strstr(s, secret)) != NULL) {
        memset(p, '*', n);
    }
}

/*
 * The first line of a libpq or server message, with the connection string
 * and the password blanked out: libpq echoes parts of what it was given.
 */
static void clean_message(char *out, size_t cap, const pg_store *st, const char *msg)
{
    size_t n;

    if (!msg || !*msg) {
        msg = "no reason given";
    }
    snprintf(out, cap, "%s", msg);
    n = strcspn(out, "\r\n");
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '.')) {
        out[--n] = '\0';
    }
    if (st) {
        blank_out(out, st->conninfo);
        blank_out(out, st->password);
    }
}

static am_status pg_fail(am_error *err, const pg_store *st, PGconn *conn, const PGresult *res,
                         const char *what)
{
    char why[320];
    const char *msg = res ? PQresultErrorMessage(res) : NULL;

    if (!msg || !*msg) {
        msg = conn ? PQerrorMessage(conn) : NULL;
    }
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    /* Class 08 (connection) and 57P (the server shutting down) mean the server went away. */
    bool gone = (conn && PQstatus(conn) == CONNECTION_BAD) ||
                (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0));

    clean_message(why, sizeof(why), st, msg);
    if (gone) {
        return am_error_set(err, AM_ESTORE,
                            "%s: cannot %s: the connection to the server was "
                            "lost (%s); check that the server is up and run acctmap again",
                            st->display, what, why);
    }
    return am_error_set(err, AM_ESTORE,
                        "%s: cannot %s: %s; check the server and the store "
                        "user's rights on schema \"%s\"",
                        st->display, what, why, st->schema);
}

/* ---- connections ----------------------------------------------------------- */

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static am_status connect_server(PGconn **out, pg_store *st, am_error *err)
{
    static const char *const keys[] = {"dbname", "application_name", "client_encoding",
                                       "connect_timeout", NULL};
    const char *values[] = {st->conninfo, "acctmap", "UTF8", "10", NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    PGresult *res;
    const char *param[1] = {st->schema_ident};

    *out = NULL;
    if (!conn) {
        return am_error_set(err, AM_ENOMEM, "%s: out of memory connecting", st->display);
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char why[320];
        clean_message(why, sizeof(why), st, PQerrorMessage(conn));
        PQfinish(conn);
        return am_error_set(err, AM_ESTORE,
                            "%s: cannot connect: %s; check that the server is "
                            "up and the store URI (user, password, database)",
                            st->display, why);
    }
    /* The library never prints: the server's notices are not for the person at the terminal. */
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    /* Unqualified names below are the schema's; pg_catalog still comes first. */
    res = PQexecParams(conn, "SELECT pg_catalog.set_config('search_path', $1, false)", 1, NULL,
                       param, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        am_status rc = pg_fail(err, st, conn, res, "set the search path");
        PQclear(res);
        PQfinish(conn);
        return rc;
    }
    PQclear(res);
    *out = conn;
    return AM_OK;
}

/* A result that must have status `want`; on anything else an error naming `what`. */
static am_status exec_check(PGresult **out, pg_store *st, PGconn *conn, PGresult *res,
                            ExecStatusType want, const char *what, am_error *err)
{
    if (PQresultStatus(res) != want) {
        am_status rc = pg_fail(err, st, conn, res, what);
        PQclear(res);
        if (out) {
            *out = NULL;
        }
        return rc;
    }
    if (out) {
        *out = res;
    } else {
        PQclear(res);
    }
    return AM_OK;
}

static am_status exec_params(PGresult **out, pg_store *st, PGconn *conn, const char *sql, int n,
                             const char *const *values, ExecStatusType want, const char *what,
                             am_error *err)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, values, NULL, NULL, 0);

    return exec_check(out, st, conn, res, want, what, err);
}

static am_status exec_cmd(pg_store *st, PGconn *conn, const char *sql, const char *what,
                          am_error *err)
{
    return exec_params(NULL, st, conn, sql, 0, NULL, PGRES_COMMAND_OK, what, err);
}

/* ---- the layout ------------------------------------------------------------ */

/*
 * Migrations: steps[v] takes the layout from version v to v + 1. Append a
 * step for a new version; never edit one that was released.
 */
static const char *const step_to_1[] = {
    "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE runs (key bigserial PRIMARY KEY, id text NOT NULL UNIQUE, "
    "committed_at timestamptz NOT NULL DEFAULT now())",
    /* The run row comes last in the run's transaction: the reference is checked at COMMIT. */
    "CREATE TABLE parts (run_key bigint NOT NULL REFERENCES runs (key) ON DELETE CASCADE "
    "DEFERRABLE INITIALLY DEFERRED, part text NOT NULL, seq integer NOT NULL, "
    "data bytea NOT NULL, PRIMARY KEY (run_key, part, seq))",
    /* pglz took two thirds of a commit's time; lz4 is cheap, or no compression at all. */
    "DO $$ BEGIN ALTER TABLE parts ALTER COLUMN data SET COMPRESSION lz4; "
    "EXCEPTION WHEN feature_not_supported THEN "
    "ALTER TABLE parts ALTER COLUMN data SET STORAGE EXTERNAL; END $$",
    "CREATE TABLE secrets (name text PRIMARY KEY, value text NOT NULL, "
    "saved_at timestamptz NOT NULL DEFAULT now())",
    "REVOKE ALL ON secrets FROM PUBLIC",
    "INSERT INTO meta (key, value) VALUES ('version', '0')",
    NULL,
};

static const char *const *const steps[SCHEMA_VERSION] = {step_to_1};

/* The layout's version: 0 when the schema or its meta table does not exist yet. */
static am_status schema_version(int *out, pg_store *st, PGconn *conn, am_error *err)
{
    char meta[160];
    const char *param[1] = {meta};
    PGresult *res = NULL;
    am_error perr = {0};
    int64_t v = 0;
    am_status rc;

    *out = 0;
    snprintf(meta, sizeof(meta), "%s.meta", st->schema_ident);
    rc = exec_params(&res, st, conn, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", 1, param,
                     PGRES_TUPLES_OK, "read the store's version", err);
    if (rc) {
        return rc;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        PQclear(res);
        return AM_OK;
    }
    PQclear(res);
    rc = exec_params(&res, st, conn, "SELECT value FROM meta WHERE key = 'version'", 0, NULL,
                     PGRES_TUPLES_OK, "read the store's version", err);
    if (rc) {
        return rc;
    }
    if (PQntuples(res) != 1 ||
        am_parse_i64(&v, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), &perr) || v < 0) {
        PQclear(res);
        return am_error_set(err, AM_ESTORE,
                            "%s: schema \"%s\" has a meta table without a "
                            "version; it was not made by acctmap: choose another schema",
                            st->display, st->schema);
    }
    *out = v > 1000000 ? 1000000 : (int)v;
    PQclear(res);
    return AM_OK;
}

/*
 * Bring the layout to SCHEMA_VERSION, each step in its own transaction,
 * serialized by an advisory lock so that two first uses do not race.
 */
static am_status migrate(pg_store *st, PGconn *conn, am_error *err)
{
    char lock[96], create[192], vtext[16];
    const char *param[1] = {lock};
    const char *name[1] = {st->schema};
    PGresult *res = NULL;
    int version = 0;
    am_status rc;

    rc = schema_version(&version, st, conn, err);
    if (rc || version == SCHEMA_VERSION) {
        return rc;
    }
    if (version > SCHEMA_VERSION) {
        return am_error_set(err, AM_ESTORE,
                            "%s: schema \"%s\" is at layout version %d, newer "
                            "than this acctmap's %d; use a newer acctmap",
                            st->display, st->schema, version, SCHEMA_VERSION);
    }
    snprintf(lock, sizeof(lock), "acctmap migrate %s", st->schema);
    snprintf(create, sizeof(create), "CREATE SCHEMA IF NOT EXISTS %s", st->schema_ident);
    for (;;) {
        const char *const *sql;
        rc = exec_cmd(st, conn, "BEGIN", "start a migration", err);
        if (!rc) {
            rc = exec_params(NULL, st, conn, "SELECT pg_advisory_xact_lock(hashtext($1))", 1, param,
                             PGRES_TUPLES_OK, "lock the store for a migration", err);
        }
        if (!rc) {
            rc = exec_params(&res, st, conn,
                             "SELECT 1 FROM pg_catalog.pg_namespace WHERE "
                             "nspname = $1",
                             1, name, PGRES_TUPLES_OK, "look for the schema", err);
        }
        if (!rc && PQntuples(res) == 0) {
            /* The one statement that cannot take a parameter: the name is [a-z0-9_], quoted. */
            rc = exec_cmd(st, conn, create, "create the schema", err);
        }
        PQclear(res);
        res = NULL;
        if (!rc) {
            rc = schema_version(&version, st, conn, err);
        }
        if (rc || version >= SCHEMA_VERSION) {
            break;
        }
        for (sql = steps[version]; !rc && *sql; sql++) {
            rc = exec_cmd(st, conn, *sql, "migrate the store's layout", err);
        }
        snprintf(vtext, sizeof(vtext), "%d", version + 1);
        param[0] = vtext;
        if (!rc) {
            rc = exec_params(NULL, st, conn, "UPDATE meta SET value = $1 WHERE key = 'version'", 1,
                             param, PGRES_COMMAND_OK, "migrate the store's layout", err);
        }
        param[0] = lock;
        if (!rc) {
            rc = exec_cmd(st, conn, "COMMIT", "commit a migration", err);
        }
        if (rc) {
            break;
        }
    }
    if (!rc && version > SCHEMA_VERSION) {
        /* A newer acctmap migrated it while we waited for the lock. */
        rc = am_error_set(err, AM_ESTORE,
                          "%s: schema \"%s\" is at layout version %d, newer "
                          "than this acctmap's %d; use a newer acctmap",
                          st->display, st->schema, version, SCHEMA_VERSION);
    }
    if (rc) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return rc;
    }
    return exec_cmd(st, conn, "COMMIT", "commit a migration", err);
}

/* The shared connection, connected and migrated; call with `mu` held. */
static am_status shared_conn(PGconn **out, pg_store *st, am_error *err)
{
    am_status rc;

    *out = NULL;
    if (st->conn && PQstatus(st->conn) != CONNECTION_OK) {
        PQfinish(st->conn);
        st->conn = NULL;
    }
    if (!st->conn) {
        rc = connect_server(&st->conn, st, err);
        if (rc) {
            return rc;
        }
    }
    if (!st->ready) {
        rc = migrate(st, st->conn, err);
        if (rc) {
            return rc;
        }
        st->ready = true;
    }
    *out = st->conn;
    return AM_OK;
}

/* ---- open and close ---------------------------------------------------------- */

static bool valid_schema(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 63 || (s[0] >= '0' && s[0] <= '9')) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) {
            return false;
        }
    }
    return strncmp(s, "pg_", 3) != 0;
}

/* "postgresql://user@host:port/db" from the URI's parts: never the password. */
static void describe(pg_store *st, PQconninfoOption *opts)
{
    const char *user = "", *host = "", *port = "", *db = "";
    PQconninfoOption *o;

    for (o = opts; o && o->keyword; o++) {
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
            free(st->password);
            st->password = strdup(o->val);
        }
    }
    snprintf(st->display, sizeof(st->display), "postgresql://%.64s%s%.96s%s%.16s/%.64s", user,
             *user ? "@" : "", host, *port ? ":" : "", port, db);
}

static void pg_close(void *state)
{
    pg_store *st = state;

    if (!st) {
        return;
    }
    PQfinish(st->conn);
    pthread_mutex_destroy(&st->mu);
    free(st->conninfo);
    free(st->password);
    free(st);
}

static am_status pg_open(void **state_out, const char *location, const char *base_dir,
                         const char *schema, am_error *err)
{
    pg_store *st = NULL;
    PQconninfoOption *opts = NULL;
    char *perr = NULL;
    am_status rc = AM_OK;

    (void)base_dir;
    *state_out = NULL;
    if (!schema) {
        schema = AM_STORE_SCHEMA_DEFAULT;
    }
    if (!valid_schema(schema)) {
        return am_error_set(err, AM_ECONFIG,
                            "store_schema \"%.64s\": use 1 to 63 of a-z, 0-9 "
                            "and _, not starting with a digit or pg_",
                            schema);
    }
    st = calloc(1, sizeof(*st));
    if (!st || pthread_mutex_init(&st->mu, NULL) != 0) {
        free(st);
        return am_error_set(err, AM_ENOMEM, "out of memory opening the store");
    }
    /* libpq reads both postgresql:// and postgres://; the scheme was cut off. */
    st->conninfo = malloc(strlen(location) + sizeof("postgresql://"));
    if (!st->conninfo) {
        free(st);
        return am_error_set(err, AM_ENOMEM, "out of memory opening the store");
    }
    memcpy(st->conninfo, "postgresql://", 13);
    memcpy(st->conninfo + 13, location, strlen(location) + 1);
    opts = PQconninfoParse(st->conninfo, &perr);
    if (!opts) {
        /* libpq's reason quotes the URI, password and all: say it without it. */
        PQfreemem(perr);
        pg_close(st);
        return am_error_set(err, AM_ECONFIG,
                            "store: the postgresql:// URI cannot be read (not "
                            "shown: it may hold a password); check it against libpq's "
                            "connection URI format");
    }
    describe(st, opts);
    PQconninfoFree(opts);
    snprintf(st->schema, sizeof(st->schema), "%s", schema);
    snprintf(st->schema_ident, sizeof(st->schema_ident), "\"%s\"", schema);
    rc = connect_server(&st->conn, st, err);
    if (rc) {
        pg_close(st);
        return rc;
    }
    *state_out = st;
    return AM_OK;
}

static const char *pg_describe(const void *state)
{
    return ((const pg_store *)state)->display;
}

static am_status pg_init(void *state, am_error *err)
{
    pg_store *st = state;
    PGconn *conn;
    am_status rc;

    pthread_mutex_lock(&st->mu);
    st->ready = false;
    rc = shared_conn(&conn, st, err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- reading --------------------------------------------------------------- */

static am_status pg_run_ids(char ***ids_out, size_t *count_out, void *state, am_error *err)
{
    pg_store *st = state;
    PGconn *conn;
    PGresult *res = NULL;
    char **ids = NULL;
    size_t i, n = 0;
    am_status rc;

    *ids_out = NULL;
    *count_out = 0;
    pthread_mutex_lock(&st->mu);
    rc = shared_conn(&conn, st, err);
    if (!rc) {
        /* Byte order, as the dir store sorts its names. */
        rc = exec_params(&res, st, conn, "SELECT id FROM runs ORDER BY id COLLATE \"C\"", 0, NULL,
                         PGRES_TUPLES_OK, "list the runs", err);
    }
    pthread_mutex_unlock(&st->mu);
    if (rc) {
        return rc;
    }
    n = (size_t)PQntuples(res);
    ids = calloc(n ? n : 1, sizeof(*ids));
    for (i = 0; ids && i < n; i++) {
        ids[i] = strdup(PQgetvalue(res, (int)i, 0));
        if (!ids[i]) {
            am_store_run_ids_free(ids, i);
            ids = NULL;
        }
    }
    PQclear(res);
    if (!ids) {
        return am_error_set(err, AM_ENOMEM, "out of memory listing runs");
    }
    *ids_out = ids;
    *count_out = n;
    return AM_OK;
}

/*
 * A whole part: its size first, then its chunks one row at a time (single-row
 * mode), so that only the part itself is ever in memory, not a result too.
 */
/*
 * Append the bytea column of every row of `sql` ($1, $2) to the growable
 * buffer (*buf, *len, *cap), a row at a time (single-row mode), so that a
 * part is never held twice. *buf keeps room for a final NUL.
 */
static am_status append_rows(char **buf, size_t *len, size_t *cap, pg_store *st, PGconn *conn,
                             const char *sql, const char *const params[2], const char *what,
                             am_error *err)
{
    const int formats[2] = {0, 0};
    PGresult *res;
    am_status rc = AM_OK;

    if (!PQsendQueryParams(conn, sql, 2, NULL, params, NULL, formats, 1) ||
        !PQsetSingleRowMode(conn)) {
        return pg_fail(err, st, conn, NULL, what);
    }
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType s = PQresultStatus(res);
        if (s == PGRES_SINGLE_TUPLE && !rc) {
            size_t n = (size_t)PQgetlength(res, 0, 0);
            if (*cap - *len < n + 1) {
                size_t grow = *cap ? *cap : CHUNK;
                char *grown;
                while (grow - *len < n + 1) {
                    grow *= 2;
                }
                grown = realloc(*buf, grow);
                if (!grown) {
                    rc = am_error_set(err, AM_ENOMEM, "out of memory: cannot %s", what);
                } else {
                    *buf = grown;
                    *cap = grow;
                }
            }
            if (!rc) {
                memcpy(*buf + *len, PQgetvalue(res, 0, 0), n);
                *len += n;
            }
        } else if (s != PGRES_SINGLE_TUPLE && s != PGRES_TUPLES_OK && !rc) {
            rc = pg_fail(err, st, conn, res, what);
        }
        PQclear(res);
    }
    return rc;
}

static am_status pg_part_read(char **data_out, size_t *len_out, void *state, const char *run_id,
                              const char *part, am_error *err)
{
    pg_store *st = state;
    const char *params[2] = {run_id, part};
    PGconn *conn;
    PGresult *res = NULL;
    char *data = NULL;
    size_t total = 0, got = 0, cap = 0;
    int64_t size = 0, chunks = 0;
    am_status rc;

    *data_out = NULL;
    *len_out = 0;
    pthread_mutex_lock(&st->mu);
    rc = shared_conn(&conn, st, err);
    if (!rc) {
        rc = exec_params(&res, st, conn,
                         "SELECT count(*), coalesce(sum(octet_length(p.data)), 0) FROM parts p "
                         "JOIN runs r ON r.key = p.run_key WHERE r.id = $1 AND p.part = $2",
                         2, params, PGRES_TUPLES_OK, "read a run", err);
    }
    if (rc) {
        goto cleanup;
    }
    if (am_parse_i64(&chunks, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), err) ||
        am_parse_i64(&size, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1), err)) {
        rc = am_error_set(err, AM_ESTORE, "%s: run %s: the size of %s cannot be read", st->display,
                          run_id, part);
        goto cleanup;
    }
    PQclear(res);
    res = NULL;
    if (chunks == 0) {
        rc = am_error_set(err, AM_ENOTFOUND, "%s: run %s has no %s", st->display, run_id, part);
        goto cleanup;
    }
    if (size < 0 || (uint64_t)size > PART_READ_MAX) {
        rc = am_error_set(err, AM_ELIMIT, "%s: run %s: %s is larger than 64 GiB", st->display,
                          run_id, part);
        goto cleanup;
    }
    total = (size_t)size;
    data = malloc(total + 1);
    cap = total + 1;
    if (!data) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory reading %s of run %s", part, run_id);
        goto cleanup;
    }
    rc = append_rows(&data, &got, &cap, st, conn,
                     "SELECT p.data FROM parts p JOIN runs r ON r.key = p.run_key "
                     "WHERE r.id = $1 AND p.part = $2 ORDER BY p.seq",
                     params, "read a run", err);
    if (!rc && got != total) {
        rc = am_error_set(err, AM_ESTORE, "%s: run %s: %s changed while read; run acctmap again",
                          st->display, run_id, part);
    }
    if (!rc) {
        data[got] = '\0';
        *data_out = data;
        *len_out = got;
        data = NULL;
    }
cleanup:
    pthread_mutex_unlock(&st->mu);
    PQclear(res);
    free(data);
    return rc;
}

/* ---- writing ------------------------------------------------------------------ */

static void txn_free(pg_txn *txn)
{
    size_t i;

    if (!txn) {
        return;
    }
    for (i = 0; i < txn->part_count; i++) {
        free(txn->parts[i].buf);
    }
    free(txn->parts);
    /* Closing the connection without COMMIT rolls the run back and frees the lock. */
    PQfinish(txn->conn);
    free(txn);
}

static am_status pg_begin(void **txn_out, void *state, am_error *err)
{
    pg_store *st = state;
    pg_txn *txn = NULL;
    PGresult *res = NULL;
    char lock[96];
    const char *param[1] = {lock};
    am_status rc;

    *txn_out = NULL;
    txn = calloc(1, sizeof(*txn));
    if (!txn) {
        return am_error_set(err, AM_ENOMEM, "out of memory starting a run");
    }
    txn->st = st;
    rc = connect_server(&txn->conn, st, err);
    if (!rc) {
        rc = migrate(st, txn->conn, err);
    }
    if (!rc) {
        rc = exec_cmd(st, txn->conn, "BEGIN", "start a run", err);
    }
    if (!rc) {
        snprintf(lock, sizeof(lock), "acctmap run %s", st->schema);
        rc = exec_params(&res, st, txn->conn, "SELECT pg_try_advisory_xact_lock(hashtext($1))", 1,
                         param, PGRES_TUPLES_OK, "lock the store", err);
    }
    if (!rc && strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        rc = am_error_set(err, AM_ESTORE,
                          "%s: another acctmap run is writing to this store; "
                          "wait for it to finish",
                          st->display);
    }
    PQclear(res);
    res = NULL;
    if (!rc) {
        rc = exec_params(&res, st, txn->conn, "SELECT nextval('runs_key_seq')", 0, NULL,
                         PGRES_TUPLES_OK, "start a run", err);
    }
    if (!rc) {
        snprintf(txn->run_key, sizeof(txn->run_key), "%s", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    if (rc) {
        txn_free(txn);
        return rc;
    }
    *txn_out = txn;
    return AM_OK;
}

/* One row of a part: `len` bytes as chunk number p->seq. */
static am_status insert_chunk(pg_txn *txn, pending_part *p, const void *data, size_t len,
                              am_error *err)
{
    char seq[16];
    const char *values[4] = {txn->run_key, p->name, seq, data ? (const char *)data : ""};
    const int lengths[4] = {0, 0, 0, (int)len};
    const int formats[4] = {0, 0, 0, 1};
    PGresult *res;

    snprintf(seq, sizeof(seq), "%d", p->seq);
    res = PQexecParams(txn->conn,
                       "INSERT INTO parts (run_key, part, seq, data) "
                       "VALUES ($1, $2, $3, $4)",
                       4, NULL, values, lengths, formats, 0);
    p->seq++;
    return exec_check(NULL, txn->st, txn->conn, res, PGRES_COMMAND_OK, "write a run", err);
}

static am_status flush_part(pg_txn *txn, pending_part *p, am_error *err)
{
    am_status rc;

    if (p->len == 0 && p->seq > 0) {
        return AM_OK;
    }
    /* Even an empty part gets a row: it exists, as an empty file would. */
    rc = insert_chunk(txn, p, p->buf, p->len, err);
    txn->buffered -= p->len;
    p->len = 0;
    return rc;
}

static am_status pg_part_append(void *vtxn, const char *part, const void *data, size_t len,
                                am_error *err)
{
    pg_txn *txn = vtxn;
    pending_part *p = NULL;
    const unsigned char *bytes = data;
    size_t i;
    am_status rc = AM_OK;

    for (i = 0; i < txn->part_count; i++) {
        if (strcmp(txn->parts[i].name, part) == 0) {
            p = &txn->parts[i];
            break;
        }
    }
    if (!p) {
        pending_part *grown;
        if (txn->part_count == MAX_PARTS || strlen(part) >= sizeof(p->name)) {
            return am_error_set(err, AM_ELIMIT, "%s: a run has more than %d parts",
                                txn->st->display, MAX_PARTS);
        }
        grown = realloc(txn->parts, (txn->part_count + 1) * sizeof(*grown));
        if (!grown) {
            return am_error_set(err, AM_ENOMEM, "out of memory writing a run");
        }
        txn->parts = grown;
        p = &txn->parts[txn->part_count++];
        memset(p, 0, sizeof(*p));
        snprintf(p->name, sizeof(p->name), "%s", part);
    }
    while (!rc && len > 0) {
        size_t room, n;
        if (p->len == 0 && len >= CHUNK) {
            /* A whole chunk straight from the caller's bytes (bitmaps come in one piece). */
            rc = insert_chunk(txn, p, bytes, CHUNK, err);
            bytes += CHUNK;
            len -= CHUNK;
            continue;
        }
        if (!p->buf) {
            p->buf = malloc(CHUNK);
            if (!p->buf) {
                return am_error_set(err, AM_ENOMEM, "out of memory writing a run");
            }
        }
        room = CHUNK - p->len;
        n = len < room ? len : room;
        memcpy(p->buf + p->len, bytes, n);
        p->len += n;
        txn->buffered += n;
        bytes += n;
        len -= n;
        if (p->len == CHUNK) {
            rc = flush_part(txn, p, err);
        }
    }
    /* Many orgs' records come interleaved: keep the pending total bounded. */
    for (i = 0; !rc && txn->buffered > BUFFERED_MAX && i < txn->part_count; i++) {
        if (txn->parts[i].len > 0) {
            rc = flush_part(txn, &txn->parts[i], err);
        }
    }
    return rc;
}

/*
 * The chunks this transaction inserted (it sees its own rows), then what is
 * still buffered: the part as it would be committed now.
 */
static am_status pg_part_read_pending(char **data_out, size_t *len_out, void *vtxn,
                                      const char *part, am_error *err)
{
    pg_txn *txn = vtxn;
    const char *params[2] = {txn->run_key, part};
    const pending_part *p = NULL;
    char *data = NULL;
    size_t len = 0, cap = 0, i;
    am_status rc;

    *data_out = NULL;
    *len_out = 0;
    for (i = 0; i < txn->part_count; i++) {
        if (strcmp(txn->parts[i].name, part) == 0) {
            p = &txn->parts[i];
        }
    }
    if (!p) {
        return am_error_set(err, AM_ENOTFOUND, "%s: the run being written has no %s",
                            txn->st->display, part);
    }
    rc = append_rows(&data, &len, &cap, txn->st, txn->conn,
                     "SELECT data FROM parts WHERE run_key = $1 AND part = $2 ORDER BY seq",
                     params, "read back a run being written", err);
    if (!rc && cap - len < p->len + 1) {
        char *grown = realloc(data, len + p->len + 1);
        if (!grown) {
            rc = am_error_set(err, AM_ENOMEM, "out of memory reading back %s", part);
        } else {
            data = grown;
        }
    }
    if (rc) {
        free(data);
        return rc;
    }
    memcpy(data + len, p->buf, p->len);
    len += p->len;
    data[len] = '\0';
    *data_out = data;
    *len_out = len;
    return AM_OK;
}

static am_status pg_commit(char id_out[AM_RUN_ID_MAX], void *vtxn, const char *base_id,
                           am_error *err)
{
    pg_txn *txn = vtxn;
    pg_store *st = txn->st;
    PGresult *res = NULL;
    char id[AM_RUN_ID_MAX];
    const char *params[2] = {txn->run_key, id};
    size_t i;
    int attempt;
    am_status rc = AM_OK;

    for (i = 0; !rc && i < txn->part_count; i++) {
        rc = flush_part(txn, &txn->parts[i], err);
    }
    for (attempt = 1; !rc && attempt < 100; attempt++) {
        if (attempt == 1) {
            snprintf(id, sizeof(id), "%s", base_id);
        } else {
            snprintf(id, sizeof(id), "%.24s.%d", base_id, attempt);
        }
        /* A taken id is never overwritten: the next suffix is tried. */
        rc = exec_params(&res, st, txn->conn,
                         "INSERT INTO runs (key, id) VALUES ($1, $2) "
                         "ON CONFLICT (id) DO NOTHING RETURNING id",
                         2, params, PGRES_TUPLES_OK, "publish the run", err);
        if (!rc && PQntuples(res) == 1) {
            PQclear(res);
            break;
        }
        PQclear(res);
        res = NULL;
    }
    if (!rc && attempt == 100) {
        rc = am_error_set(err, AM_ESTORE, "%s: too many runs named %s", st->display, base_id);
    }
    if (!rc) {
        rc = exec_cmd(st, txn->conn, "COMMIT", "commit the run", err);
    }
    if (!rc) {
        memcpy(id_out, id, AM_RUN_ID_MAX);
    }
    txn_free(txn);
    return rc;
}

static void pg_abort(void *vtxn)
{
    pg_txn *txn = vtxn;

    if (txn && PQstatus(txn->conn) == CONNECTION_OK) {
        PQclear(PQexec(txn->conn, "ROLLBACK"));
    }
    txn_free(txn);
}

/* ---- secrets ------------------------------------------------------------------ */

static am_status pg_secret_load(char **value_out, void *state, const char *name, am_error *err)
{
    pg_store *st = state;
    const char *params[1] = {name};
    PGconn *conn;
    PGresult *res = NULL;
    am_status rc;

    *value_out = NULL;
    pthread_mutex_lock(&st->mu);
    rc = shared_conn(&conn, st, err);
    if (!rc) {
        rc = exec_params(&res, st, conn, "SELECT value FROM secrets WHERE name = $1", 1, params,
                         PGRES_TUPLES_OK, "read a kept secret", err);
    }
    pthread_mutex_unlock(&st->mu);
    if (rc) {
        return rc;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return am_error_set(err, AM_ENOTFOUND, "%s: no secret %s kept", st->display, name);
    }
    *value_out = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return *value_out ? AM_OK : am_error_set(err, AM_ENOMEM, "out of memory");
}

static am_status pg_secret_save(void *state, const char *name, const char *value, am_error *err)
{
    pg_store *st = state;
    const char *params[2] = {name, value};
    PGconn *conn;
    am_status rc;

    pthread_mutex_lock(&st->mu);
    rc = shared_conn(&conn, st, err);
    if (!rc) {
        /* One statement, autocommitted: the old value or the new one, never neither. */
        rc = exec_params(NULL, st, conn,
                         "INSERT INTO secrets (name, value) VALUES ($1, $2) "
                         "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, "
                         "saved_at = now()",
                         2, params, PGRES_COMMAND_OK, "keep a secret", err);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

#define PG_OPS(name, prefix)                                                                       \
    const am_store_ops name = {                                                                    \
        .scheme = prefix,                                                                          \
        .open = pg_open,                                                                           \
        .describe = pg_describe,                                                                   \
        .close = pg_close,                                                                         \
        .init = pg_init,                                                                           \
        .run_ids = pg_run_ids,                                                                     \
        .part_read = pg_part_read,                                                                 \
        .begin = pg_begin,                                                                         \
        .part_append = pg_part_append,                                                             \
        .commit = pg_commit,                                                                       \
        .abort = pg_abort,                                                                         \
        .part_read_pending = pg_part_read_pending,                                                 \
        .secret_load = pg_secret_load,                                                             \
        .secret_save = pg_secret_save,                                                             \
    }

PG_OPS(am_store_pg_ops, "postgresql://");
PG_OPS(am_store_pg_short_ops, "postgres://");
