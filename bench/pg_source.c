/*
 * bench: the postgresql connector on a large table (issue 6). Fills a table of
 * N rows on the server named by $ACCTMAP_TEST_PG (tests/pg.sh run starts one),
 * reads it to the end through the connector as a run does, and prints rows per
 * second and the process's peak RSS beside its RSS before reading: the cursor
 * keeps memory constant whatever N is.
 *
 *   tests/pg.sh run build/bench/pg_source [ROWS]     (default 1000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <libpq-fe.h>

#include "acctmap.h"
#include "acctmap/config.h"
#include "acctmap/connector.h"
#include "acctmap/parse.h"

#define TARGET_RSS_MIB 64

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_rss_kib(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int exec_sql(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

    if (!ok) {
        fprintf(stderr, "bench: %s", PQresultErrorMessage(r));
    }
    PQclear(r);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *uri = getenv("ACCTMAP_TEST_PG");
    uint64_t rows = 1000000, count = 0, rejects = 0;
    am_error err = {AM_OK, ""};
    am_config *cfg = NULL;
    am_source *src = NULL;
    am_record_batch batch;
    PGconn *c;
    char sql[512];
    double t0, t1, t2;
    long rss_before, rss_peak;
    int status = 1;
    static const char config[] =
        "{\"self\": \"acme\", \"orgs\": ["
        "{\"id\": \"acme\", \"sources\": [{\"type\": \"postgresql\", \"dsn_env\": "
        "\"ACCTMAP_TEST_PG\", \"table\": \"bench_companies\"}]},"
        "{\"id\": \"globex\", \"sources\": [{\"type\": \"csv\", \"path\": \"x.csv\"}]}]}";

    if (argc > 1 && am_parse_u64(&rows, argv[1], strlen(argv[1]), &err) != AM_OK) {
        fprintf(stderr, "usage: pg_source [ROWS]\n");
        return 2;
    }
    if (!uri) {
        fprintf(stderr, "bench: ACCTMAP_TEST_PG is not set; run under tests/pg.sh run\n");
        return 2;
    }
    c = PQconnectdb(uri);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench: cannot connect to the test server\n");
        PQfinish(c);
        return 1;
    }
    exec_sql(c, "SET client_min_messages = warning");
    t0 = now_s();
    snprintf(sql, sizeof(sql),
             "DROP TABLE IF EXISTS bench_companies; CREATE TABLE bench_companies AS SELECT "
             "'ID-' || g AS id, 'Company ' || g || ' GmbH' AS name, 'c' || g || '.example.com' "
             "AS domain, '' AS tax_id, 'DE' AS country, CASE g %% 3 WHEN 0 THEN 'customer' "
             "WHEN 1 THEN 'prospect' ELSE 'opportunity' END AS status, 'Berlin' AS city, "
             "'Owner ' || (g %% 50) AS owner, (g %% 100000)::text || '.50' AS amount "
             "FROM generate_series(1, %llu) g",
             (unsigned long long)rows);
    if (exec_sql(c, sql) != 0) {
        PQfinish(c);
        return 1;
    }
    printf("bench: postgresql source: table of %llu rows made in %.2f s\n",
           (unsigned long long)rows, now_s() - t0);

    am_record_batch_init(&batch);
    if (am_config_parse(&cfg, config, sizeof(config) - 1, "bench.json", ".", &err) != AM_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        goto cleanup;
    }
    rss_before = peak_rss_kib();
    t1 = now_s();
    if (am_source_open(&src, &am_config_org_at(cfg, 0)->sources[0], NULL, &err) != AM_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        goto cleanup;
    }
    for (;;) {
        if (am_source_next_batch(src, &batch, &err) != AM_OK) {
            fprintf(stderr, "bench: %s\n", err.msg);
            goto cleanup;
        }
        if (batch.count == 0 && batch.reject_count == 0) {
            break;
        }
        count += batch.count;
        rejects += batch.reject_count;
    }
    t2 = now_s();
    rss_peak = peak_rss_kib();
    printf("bench: postgresql source: %llu records, %llu rejected, in %.2f s (%.0f records/s)\n",
           (unsigned long long)count, (unsigned long long)rejects, t2 - t1,
           (double)count / (t2 - t1 > 0 ? t2 - t1 : 1));
    printf("bench: postgresql source: peak RSS %.1f MiB (%.1f MiB before reading)  target < %d "
           "MiB  %s\n",
           (double)rss_peak / 1024, (double)rss_before / 1024, TARGET_RSS_MIB,
           rss_peak < TARGET_RSS_MIB * 1024 ? "ok" : "MISSED");
    status = count == rows && rss_peak < TARGET_RSS_MIB * 1024 ? 0 : 1;
cleanup:
    am_source_close(src);
    am_record_batch_dispose(&batch);
    am_config_free(cfg);
    exec_sql(c, "DROP TABLE IF EXISTS bench_companies");
    PQfinish(c);
    return status;
}
