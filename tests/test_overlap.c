/* Index and overlap: matrices and cell pairs agree with a brute-force count. */
#include <stdlib.h>
#include <string.h>

#include "acctmap.h"
#include "acctmap/index.h"
#include "acctmap/overlap.h"
#include "helpers.h"

#define ORGS 3
#define POPS 3
#define ENTITIES 5000

static uint32_t next_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

typedef struct org_data {
    uint32_t *entity_of;
    uint32_t *pops;
    size_t n;
} org_data;

static am_index *build(org_data *data, uint64_t seed)
{
    am_index *ix = NULL;
    am_error err = {0};
    size_t o, i;

    assert_int_equal(am_index_new(&ix, ORGS, &err), AM_OK);
    for (o = 0; o < ORGS; o++) {
        size_t n = 2000 + o * 500;
        uint32_t *e = malloc(n * sizeof(*e)), *p = malloc(n * sizeof(*p));
        for (i = 0; i < n; i++) {
            e[i] = next_rand(&seed) % ENTITIES;
            p[i] = 1 + next_rand(&seed) % 7; /* at least one population */
        }
        data[o].entity_of = malloc(n * sizeof(*e));
        data[o].pops = malloc(n * sizeof(*p));
        memcpy(data[o].entity_of, e, n * sizeof(*e));
        memcpy(data[o].pops, p, n * sizeof(*p));
        data[o].n = n;
        assert_int_equal(am_index_add_org(ix, o, POPS, e, p, n, &err), AM_OK);
    }
    return ix;
}

static void free_data(org_data *data)
{
    size_t o;

    for (o = 0; o < ORGS; o++) {
        free(data[o].entity_of);
        free(data[o].pops);
    }
}

/* Does org `o` have entity `e` in population `pop` (-1: any)? */
static bool has(const org_data *d, uint32_t e, int pop)
{
    size_t i;

    for (i = 0; i < d->n; i++) {
        if (d->entity_of[i] == e && (pop < 0 || (d->pops[i] & (1u << pop)))) {
            return true;
        }
    }
    return false;
}

static void test_overlap__matrix_matches_brute_force(void **state)
{
    (void)state;
    org_data data[ORGS];
    am_index *ix = build(data, 42);
    am_error err = {0};
    am_matrix m;
    size_t partner, i, j;
    uint32_t e;

    for (partner = 1; partner < ORGS; partner++) {
        assert_int_equal(am_overlap_matrix_compute(&m, ix, 0, partner, &err), AM_OK);
        assert_int_equal(m.rows, POPS);
        assert_int_equal(m.cols, POPS);
        for (i = 0; i < POPS; i++) {
            for (j = 0; j < POPS; j++) {
                uint64_t want = 0;
                for (e = 0; e < ENTITIES; e++) {
                    want += has(&data[0], e, (int)i) && has(&data[partner], e, (int)j);
                }
                assert_int_equal(m.cells[i * POPS + j], want);
                assert_int_equal(am_overlap_cell_count(ix, 0, i, partner, j), want);
            }
        }
        am_matrix_dispose(&m);
    }
    am_index_free(ix);
    free_data(data);
}

static void test_overlap__cell_pairs_match_brute_force(void **state)
{
    (void)state;
    org_data data[ORGS];
    am_index *ix = build(data, 7);
    am_error err = {0};
    am_pair *pairs = NULL;
    size_t count = 0, i, a, b, want = 0;

    assert_int_equal(am_index_prepare_lookup(ix, 0, &err), AM_OK);
    assert_int_equal(am_index_prepare_lookup(ix, 2, &err), AM_OK);
    assert_int_equal(am_overlap_cell_pairs(&pairs, &count, ix, 0, 1, 2, AM_POP_ANY, &err), AM_OK);
    for (a = 0; a < data[0].n; a++) {
        if (!(data[0].pops[a] & 2u)) {
            continue;
        }
        for (b = 0; b < data[2].n; b++) {
            want += data[0].entity_of[a] == data[2].entity_of[b];
        }
    }
    assert_int_equal(count, want);
    for (i = 0; i < count; i++) {
        assert_int_equal(data[0].entity_of[pairs[i].our_record], pairs[i].entity);
        assert_int_equal(data[2].entity_of[pairs[i].their_record], pairs[i].entity);
        assert_true(data[0].pops[pairs[i].our_record] & 2u);
        if (i) {
            assert_true(pairs[i - 1].entity <= pairs[i].entity);
        }
    }
    free(pairs);
    am_index_free(ix);
    free_data(data);
}

static void test_overlap__org_count_is_any_population(void **state)
{
    (void)state;
    org_data data[ORGS];
    am_index *ix = build(data, 99);
    uint64_t want = 0;
    uint32_t e;

    for (e = 0; e < ENTITIES; e++) {
        want += has(&data[0], e, -1) && has(&data[1], e, -1);
    }
    assert_int_equal(am_overlap_org_count(ix, 0, 1), want);
    am_index_free(ix);
    free_data(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overlap__matrix_matches_brute_force),
        cmocka_unit_test(test_overlap__cell_pairs_match_brute_force),
        cmocka_unit_test(test_overlap__org_count_is_any_population),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
