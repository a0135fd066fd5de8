/*
 * bench_matrix: time every partner's matrix of the latest stored run, once
 * the index is loaded. Usage: bench_matrix CONFIG [REPEATS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acctmap.h"
#include "acctmap/overlap.h"
#include "acctmap/store.h"

#define TARGET_MS 5.0

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    am_error err = {AM_OK, ""};
    am_config *cfg = NULL;
    am_store *st = NULL;
    am_run *run = NULL;
    am_index *ix = NULL;
    uint64_t parse_len = 0;
    size_t repeats = 50, r, p, cells = 0;
    double *times;
    uint64_t checksum = 0;
    am_status rc;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_matrix CONFIG [REPEATS]\n");
        return 2;
    }
    if (argc > 2 && am_parse_u64(&parse_len, argv[2], strlen(argv[2]), &err) == AM_OK &&
        parse_len > 0) {
        repeats = (size_t)parse_len;
    }
    rc = am_config_load(&cfg, argv[1], &err);
    if (!rc) {
        rc = am_store_open_schema(&st, am_config_store(cfg), am_config_base_dir(cfg),
                                  am_config_store_schema(cfg), &err);
    }
    if (!rc) {
        rc = am_store_run_load(&run, st, NULL, &err);
    }
    if (!rc) {
        rc = am_store_run_load_index(&ix, st, run, &err);
    }
    if (rc) {
        fprintf(stderr, "bench_matrix: %s\n", err.msg);
        return 1;
    }
    times = calloc(repeats, sizeof(*times));
    for (r = 0; r < repeats; r++) {
        double t0 = now_ms();
        cells = 0;
        for (p = 1; p < run->org_count; p++) {
            am_matrix m;
            size_t i;
            if (am_overlap_matrix_compute(&m, ix, 0, p, &err) != AM_OK) {
                fprintf(stderr, "bench_matrix: %s\n", err.msg);
                return 1;
            }
            for (i = 0; i < m.rows * m.cols; i++) {
                checksum += m.cells[i];
            }
            cells += m.rows * m.cols;
            am_matrix_dispose(&m);
        }
        times[r] = now_ms() - t0;
    }
    qsort(times, repeats, sizeof(*times), compare_doubles);
    printf("matrices: %zu partners, %zu cells, %u entities: median %.3f ms, min %.3f ms "
           "(target < %.0f ms) [checksum %llu]\n",
           run->org_count - 1, cells, run->entity_count, times[repeats / 2], times[0], TARGET_MS,
           (unsigned long long)checksum);
    free(times);
    am_index_free(ix);
    am_run_free(run);
    am_store_close(st);
    am_config_free(cfg);
    return 0;
}
