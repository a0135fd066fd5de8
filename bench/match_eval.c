/*
 * match_eval: score matching on a labelled set (fixtures/match by default). Runs the
 * batch on DIR/acctmap.json into a temporary store, maps every record to its entity and
 * compares "same entity" with DIR/truth.csv. Usage: match_eval [-v] [DIR]; -v lists every
 * wrong pair.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acctmap.h"
#include "acctmap/config.h"
#include "acctmap/index.h"
#include "acctmap/run.h"
#include "acctmap/store.h"

#define TARGET_PRECISION 0.999
#define TARGET_RECALL 0.98
#define CATEGORY_MAX 64
#define PATH_MAX_LEN 4096

/* Different companies that must never end up as one entity (see tools/make_match.py). */
static const char *const hard_negatives[] = {
    "same_name_diff_inn", "same_name_diff_city", "group_same_website_diff_inn",
    "free_mail_shared",   "lookalike_domain",    "same_name_diff_country",
    "person_same_name",   "first_word_only",     "platform_shared",
};

typedef struct id_entity {
    const char *id;
    uint32_t entity;
} id_entity;

typedef struct category {
    char name[64];
    size_t pairs, false_matches, missed;
    bool hard;
} category;

static int compare_ids(const void *a, const void *b)
{
    return strcmp(((const id_entity *)a)->id, ((const id_entity *)b)->id);
}

/* Record id -> entity for one org, sorted by id; NULL when out of memory. */
static id_entity *entity_map(const am_record_batch *recs, const am_index *ix, size_t org)
{
    id_entity *map = calloc(recs->count ? recs->count : 1, sizeof(*map));
    size_t i;

    if (!map) {
        return NULL;
    }
    for (i = 0; i < recs->count; i++) {
        map[i].id = recs->records[i].id;
        map[i].entity = am_index_record_entity(ix, org, i);
    }
    qsort(map, recs->count, sizeof(*map), compare_ids);
    return map;
}

static const id_entity *find_id(const id_entity *map, size_t count, const char *id)
{
    id_entity key = {id, 0};

    return bsearch(&key, map, count, sizeof(*map), compare_ids);
}

static category *find_category(category *cats, size_t *count, const char *name)
{
    size_t i;

    for (i = 0; i < *count; i++) {
        if (strcmp(cats[i].name, name) == 0) {
            return &cats[i];
        }
    }
    if (*count == CATEGORY_MAX) {
        return NULL;
    }
    snprintf(cats[*count].name, sizeof(cats[*count].name), "%s", name);
    for (i = 0; i < sizeof(hard_negatives) / sizeof(hard_negatives[0]); i++) {
        cats[*count].hard |= strcmp(hard_negatives[i], name) == 0;
    }
    return &cats[(*count)++];
}

/* Remove the temporary store; best effort, it lives under /tmp. */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char child[PATH_MAX_LEN];
    struct stat sb;

    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
        if (lstat(child, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            remove_tree(child);
        } else {
            unlink(child);
        }
    }
    if (d) {
        closedir(d);
    }
    rmdir(path);
}

static int compare_categories(const void *a, const void *b)
{
    return strcmp(((const category *)a)->name, ((const category *)b)->name);
}

static const char *verdict(bool ok)
{
    return ok ? "ok" : "MISSED";
}

int main(int argc, char **argv)
{
    bool verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    const char *dir = argc > 1 + verbose ? argv[1 + verbose] : "fixtures/match";
    am_error err = {AM_OK, ""};
    am_status rc = AM_OK;
    am_config *cfg = NULL;
    am_store *st = NULL;
    am_run *run = NULL;
    am_index *ix = NULL;
    am_record_batch recs[2];
    id_entity *maps[2] = {NULL, NULL};
    FILE *truth = NULL;
    char *line = NULL;
    size_t cap = 0, lineno = 0, ncat = 0, i, hard_matched = 0;
    size_t tp = 0, fp = 0, fn = 0, tn = 0;
    category *cats = calloc(CATEGORY_MAX, sizeof(*cats));
    char path[PATH_MAX_LEN], tmp[] = "/tmp/acctmap-match-XXXXXX", uri[sizeof(tmp) + 4];
    bool made_tmp = false;
    int org[2];

    am_record_batch_init(&recs[0]);
    am_record_batch_init(&recs[1]);
    if (!cats) {
        rc = am_error_set(&err, AM_ENOMEM, "out of memory");
        goto cleanup;
    }
    snprintf(path, sizeof(path), "%s/acctmap.json", dir);
    rc = am_config_load(&cfg, path, &err);
    if (rc)
        goto cleanup;
    if (!mkdtemp(tmp)) {
        rc = am_error_set(&err, AM_EIO, "%s: cannot create a temporary store", tmp);
        goto cleanup;
    }
    made_tmp = true;
    snprintf(uri, sizeof(uri), "dir:%s", tmp);
    rc = am_store_open(&st, uri, am_config_base_dir(cfg), &err);
    if (rc)
        goto cleanup;
    rc = am_run_batch(&run, NULL, cfg, st, NULL, &err);
    if (rc)
        goto cleanup;
    rc = am_store_run_load_index(&ix, st, run, &err);
    if (rc)
        goto cleanup;
    org[0] = am_run_org_find(run, "left");
    org[1] = am_run_org_find(run, "right");
    if (org[0] < 0 || org[1] < 0) {
        rc = am_error_set(&err, AM_ECONFIG, "%s: needs the orgs \"left\" and \"right\"", path);
        goto cleanup;
    }
    for (i = 0; i < 2; i++) {
        rc = am_store_run_load_records(&recs[i], st, run, (size_t)org[i], &err);
        if (rc)
            goto cleanup;
        maps[i] = entity_map(&recs[i], ix, (size_t)org[i]);
        if (!maps[i]) {
            rc = am_error_set(&err, AM_ENOMEM, "out of memory");
            goto cleanup;
        }
    }

    snprintf(path, sizeof(path), "%s/truth.csv", dir);
    truth = fopen(path, "r");
    if (!truth) {
        rc = am_error_set(&err, AM_EIO, "%s: cannot be read", path);
        goto cleanup;
    }
    while (getline(&line, &cap, truth) > 0) {
        char *f[4], *p = line;
        const id_entity *a, *b;
        category *cat;
        bool same, predicted;
        size_t k;

        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (lineno == 1 || !line[0]) {
            continue; /* header */
        }
        for (k = 0; k < 4 && p; k++) {
            f[k] = p;
            p = strchr(p, ',');
            if (p) {
                *p++ = '\0';
            }
        }
        if (k < 4 || (strcmp(f[2], "0") != 0 && strcmp(f[2], "1") != 0)) {
            rc = am_error_set(&err, AM_EINPUT, "%s:%zu: expected left_id,right_id,0|1,category",
                              path, lineno);
            goto cleanup;
        }
        a = find_id(maps[0], recs[0].count, f[0]);
        b = find_id(maps[1], recs[1].count, f[1]);
        if (!a || !b) {
            rc = am_error_set(&err, AM_EINPUT, "%s:%zu: id \"%s\" is not among the %s records",
                              path, lineno, a ? f[1] : f[0], a ? "right" : "left");
            goto cleanup;
        }
        cat = find_category(cats, &ncat, f[3]);
        if (!cat) {
            rc = am_error_set(&err, AM_ELIMIT, "%s:%zu: more than %d categories", path, lineno,
                              CATEGORY_MAX);
            goto cleanup;
        }
        same = f[2][0] == '1';
        predicted = a->entity == b->entity;
        cat->pairs++;
        tp += same && predicted;
        fn += same && !predicted;
        fp += !same && predicted;
        tn += !same && !predicted;
        cat->missed += same && !predicted;
        cat->false_matches += !same && predicted;
        hard_matched += cat->hard && predicted && !same;
        if (verbose && same != predicted) {
            printf("%s %s %s %s\n", same ? "missed" : "false match", f[3], f[0], f[1]);
        }
    }
    if (ferror(truth)) {
        rc = am_error_set(&err, AM_EIO, "%s: read error", path);
        goto cleanup;
    }

    {
        double precision = tp + fp ? (double)tp / (double)(tp + fp) : 1.0;
        double recall = tp + fn ? (double)tp / (double)(tp + fn) : 1.0;
        double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
        uint64_t rejected = 0, warnings = 0;

        for (i = 0; i < run->org_count; i++) {
            rejected += run->orgs[i].rejected;
            warnings += run->orgs[i].warnings;
        }
        printf("match_eval: %s: %zu pairs evaluated (%zu same, %zu different); %u entities, "
               "%llu rows rejected, %llu values not keys\n",
               dir, tp + fp + fn + tn, tp + fn, fp + tn, run->entity_count,
               (unsigned long long)rejected, (unsigned long long)warnings);
        printf("TP %zu  FP %zu  FN %zu  TN %zu\n", tp, fp, fn, tn);
        printf("precision %.4f  target >= %.3f  %s\n", precision, TARGET_PRECISION,
               verdict(precision >= TARGET_PRECISION));
        printf("recall    %.4f  target >= %.3f  %s\n", recall, TARGET_RECALL,
               verdict(recall >= TARGET_RECALL));
        printf("F1        %.4f\n", f1);
        printf("hard negatives matched: %zu  target 0  %s\n", hard_matched,
               verdict(hard_matched == 0));
        qsort(cats, ncat, sizeof(*cats), compare_categories);
        printf("%-30s %6s %14s %14s\n", "category", "pairs", "false matches", "missed matches");
        for (i = 0; i < ncat; i++) {
            printf("%-30s %6zu %14zu %14zu%s\n", cats[i].name, cats[i].pairs, cats[i].false_matches,
                   cats[i].missed, cats[i].hard ? "  (hard negative)" : "");
        }
    }

cleanup:
    if (rc) {
        fprintf(stderr, "match_eval: %s\n", err.msg);
    }
    if (truth) {
        fclose(truth);
    }
    free(line);
    free(maps[0]);
    free(maps[1]);
    am_record_batch_dispose(&recs[0]);
    am_record_batch_dispose(&recs[1]);
    am_index_free(ix);
    am_run_free(run);
    am_store_close(st);
    am_config_free(cfg);
    free(cats);
    if (made_tmp) {
        remove_tree(tmp);
    }
    return rc ? 1 : 0;
}
