/*
 * Pull benchmark: records per second through the shared HTTP client and the
 * JSON parser, paging through a generated HubSpot-shaped company list served
 * by the tests' fake CRM server on loopback. The overhead of the client
 * itself (no request rate, no waits) is what this measures.
 *
 *   build/bench/bench_pull [PAGES [RECORDS_PER_PAGE]]   (default 200 x 100)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acctmap/parse.h"
#include "connectors/http.h"
#include "tests/fake_crm.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    if (!f) {
        fprintf(stderr, "bench_pull: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "bench_pull: %s: write failed\n", path);
        return -1;
    }
    return 0;
}

/* One page of `per_page` companies as HubSpot lists them; `last`: no paging. */
static char *make_page(size_t page, size_t per_page, int last, size_t *len_out)
{
    size_t cap = per_page * 700 + 256, len = 0, i;
    char *buf = malloc(cap);
    int n;

    if (!buf) {
        return NULL;
    }
    n = snprintf(buf, cap, "{\"results\":[");
    len = (size_t)n;
    for (i = 0; i < per_page; i++) {
        size_t id = 9000000000u + page * per_page + i;
        n = snprintf(buf + len, cap - len,
                     "%s{\"id\":\"%zu\",\"properties\":{\"name\":\"Company %zu GmbH\","
                     "\"domain\":\"company-%zu.example.com\",\"website\":"
                     "\"https://www.company-%zu.example.com/\",\"lifecyclestage\":\"%s\","
                     "\"country\":\"Germany\",\"city\":\"Berlin\",\"hs_object_id\":\"%zu\","
                     "\"createdate\":\"2024-03-01T10:00:00Z\",\"hs_lastmodifieddate\":"
                     "\"2025-10-01T08:41:07.123Z\"},\"createdAt\":\"2024-03-01T10:00:00Z\","
                     "\"updatedAt\":\"2025-10-01T08:41:07.123Z\",\"archived\":false}",
                     i ? "," : "", id, id, id, id, (i % 3) ? "lead" : "customer", id);
        len += (size_t)n;
    }
    if (last) {
        n = snprintf(buf + len, cap - len, "]}");
    } else {
        n = snprintf(buf + len, cap - len, "],\"paging\":{\"next\":{\"after\":\"%zu\"}}}",
                     (page + 1) * per_page);
    }
    len += (size_t)n;
    *len_out = len;
    return buf;
}

/* routes.json and one body file per page in `dir`. Returns the bytes of all pages. */
static int generate(const char *dir, size_t pages, size_t per_page, size_t *bytes_out)
{
    size_t cap = pages * 400 + 16, len = 0, p;
    char *routes = malloc(cap);
    char path[512];
    int rc = 0;

    *bytes_out = 0;
    if (!routes) {
        return -1;
    }
    len = (size_t)snprintf(routes, cap, "[");
    for (p = 0; p < pages && rc == 0; p++) {
        size_t body_len = 0;
        char *body = make_page(p, per_page, p + 1 == pages, &body_len);
        char after[64];
        if (!body) {
            rc = -1;
            break;
        }
        snprintf(path, sizeof(path), "%s/page%zu.json", dir, p);
        rc = write_file(path, body, body_len);
        *bytes_out += body_len;
        free(body);
        if (p == 0) {
            snprintf(after, sizeof(after), "null");
        } else {
            snprintf(after, sizeof(after), "\"%zu\"", p * per_page);
        }
        len += (size_t)snprintf(routes + len, cap - len,
                                "%s{\"scenario\":\"bench\",\"method\":\"GET\",\"path\":"
                                "\"/crm/v3/objects/companies\",\"query\":{\"after\":%s},"
                                "\"headers_required\":{\"Authorization\":\"Bearer *\"},"
                                "\"status\":200,\"headers\":{\"Content-Type\":"
                                "\"application/json;charset=utf-8\"},\"body\":\"page%zu.json\"}",
                                p ? "," : "", after, p);
    }
    len += (size_t)snprintf(routes + len, cap - len, "]");
    snprintf(path, sizeof(path), "%s/routes.json", dir);
    if (rc == 0) {
        rc = write_file(path, routes, len);
    }
    free(routes);
    return rc;
}

static void remove_dir(const char *dir, size_t pages)
{
    char path[512];
    size_t p;

    for (p = 0; p < pages; p++) {
        snprintf(path, sizeof(path), "%s/page%zu.json", dir, p);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/routes.json", dir);
    unlink(path);
    rmdir(dir);
}

/* One complete pull; returns the records read, or -1. */
static long pull(const char *origin, size_t *pages_out, am_error *err)
{
    am_http *http = NULL;
    am_http_options opt;
    am_http_response resp = {0};
    char url[256];
    long records = 0;
    size_t pages = 0;
    am_status rc;

    am_http_options_init(&opt, 0);
    rc = am_http_new(&http, origin, &opt, "bench hubspot", NULL, err);
    snprintf(url, sizeof(url), "/crm/v3/objects/companies?limit=100");
    while (!rc) {
        am_http_request rq = {.url = url, .bearer = "bench-token"};
        json_t *root = NULL, *results, *row;
        const char *after;
        size_t i;

        rc = am_http_send(&resp, http, &rq, err);
        if (!rc) {
            rc = am_http_json(&root, http, &resp, err);
        }
        if (rc) {
            break;
        }
        pages++;
        results = json_object_get(root, "results");
        json_array_foreach(results, i, row) {
            json_t *props = json_object_get(row, "properties");
            /* Touch what a connector reads. */
            if (json_string_value(json_object_get(row, "id")) &&
                json_string_value(json_object_get(props, "name")) &&
                json_string_value(json_object_get(props, "domain"))) {
                records++;
            }
        }
        am_http_progress(http, json_array_size(results));
        after = json_string_value(
            json_object_get(json_object_get(json_object_get(root, "paging"), "next"), "after"));
        if (!after) {
            json_decref(root);
            break;
        }
        snprintf(url, sizeof(url), "/crm/v3/objects/companies?limit=100&after=%s", after);
        json_decref(root);
    }
    am_http_response_dispose(&resp);
    am_http_free(http);
    *pages_out = pages;
    return rc ? -1 : records;
}

int main(int argc, char **argv)
{
    size_t pages = 200, per_page = 100, bytes = 0, got_pages = 0;
    char dir[] = "/tmp/acctmap-bench-pull-XXXXXX";
    am_fake_crm *crm = NULL;
    am_error err = {0};
    double best = 0;
    long records = 0;
    int status = 0, round;
    uint64_t v;

    if (argc > 1 && am_parse_u64(&v, argv[1], strlen(argv[1]), &err) == AM_OK && v > 0) {
        pages = (size_t)v;
    }
    if (argc > 2 && am_parse_u64(&v, argv[2], strlen(argv[2]), &err) == AM_OK && v > 0) {
        per_page = (size_t)v;
    }
    if (!mkdtemp(dir)) {
        fprintf(stderr, "bench_pull: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    if (generate(dir, pages, per_page, &bytes) != 0 ||
        am_fake_crm_start_dir(&crm, dir, "bench", &err) != AM_OK) {
        fprintf(stderr, "bench_pull: %s\n", err.msg[0] ? err.msg : "cannot generate pages");
        remove_dir(dir, pages);
        return 1;
    }
    /* Three pulls on fresh servers; the best one is the client's cost. */
    for (round = 0; round < 3 && status == 0; round++) {
        double t0, took;
        if (round > 0) {
            am_fake_crm_stop(crm);
            crm = NULL;
            if (am_fake_crm_start_dir(&crm, dir, "bench", &err) != AM_OK) {
                fprintf(stderr, "bench_pull: %s\n", err.msg);
                status = 1;
                break;
            }
        }
        t0 = now_s();
        records = pull(am_fake_crm_origin(crm), &got_pages, &err);
        took = now_s() - t0;
        if (records < 0 || (size_t)records != pages * per_page) {
            fprintf(stderr, "bench_pull: pull failed after %zu pages: %s\n", got_pages,
                    err.msg);
            status = 1;
            break;
        }
        if (best == 0 || took < best) {
            best = took;
        }
        {
            char *problems = am_fake_crm_check(crm);
            if (problems) {
                fprintf(stderr, "bench_pull: the fake CRM saw: %s", problems);
                free(problems);
                status = 1;
            }
        }
    }
    if (status == 0) {
        printf("bench: pull: %ld records in %zu pages (%.1f MB of JSON) over loopback in "
               "%.3f s (best of 3): %.0f records/s, %.0f pages/s, %.1f MB/s through the HTTP "
               "client and the JSON parser\n",
               records, pages, (double)bytes / 1e6, best, (double)records / best,
               (double)pages / best, (double)bytes / 1e6 / best);
    }
    am_fake_crm_stop(crm);
    remove_dir(dir, pages);
    return status;
}
