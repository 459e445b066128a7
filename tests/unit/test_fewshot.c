/* test_fewshot.c - properties of one few-shot task (fewshot.h): the sampler's determinism, layout,
 * draw order and statistics, the Dirichlet split, preprocessing, SimpleShot and LaplacianShot
 * (rectification by hand, the row-wise query graph, lambda = 0, the bound iterations against a
 * dense re-implementation, and accuracy on a clustered task family). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <petscsys.h>

#include "boundopt/error.h"
#include "boundopt/fewshot.h"
#include "boundopt/rng.h"

#include "fewshot_fixtures.h"

/* ---------------------------------------------------------------- fixtures */

/* A pool of nclasses classes; class c has count[c] rows, global row r belongs to class r % nclasses
 * (so rows of a class are scattered), and original class ids are 100 + c. */
typedef struct {
  bo_fewshot_pool pool;
  int32_t        *ids;
  int64_t        *count;
  int64_t       **rows;
} test_pool;

static test_pool make_pool(int64_t nclasses, const int64_t *count)
{
  test_pool t;
  t.ids   = malloc(sizeof *t.ids * (size_t)nclasses);
  t.count = malloc(sizeof *t.count * (size_t)nclasses);
  t.rows  = malloc(sizeof *t.rows * (size_t)nclasses);
  for (int64_t c = 0; c < nclasses; c++) {
    t.ids[c]   = (int32_t)(100 + c);
    t.count[c] = count[c];
    t.rows[c]  = malloc(sizeof **t.rows * (size_t)(count[c] ? count[c] : 1));
    for (int64_t i = 0; i < count[c]; i++) t.rows[c][i] = i * nclasses + c;
  }
  t.pool = (bo_fewshot_pool){.nclasses = nclasses, .class_ids = t.ids, .count = t.count, .rows = (const int64_t *const *)t.rows};
  return t;
}

static test_pool uniform_pool(int64_t nclasses, int64_t rows_per_class)
{
  int64_t  *count = malloc(sizeof *count * (size_t)nclasses);
  for (int64_t c = 0; c < nclasses; c++) count[c] = rows_per_class;
  test_pool t = make_pool(nclasses, count);
  free(count);
  return t;
}

static void free_pool(test_pool *t)
{
  for (int64_t c = 0; c < t->pool.nclasses; c++) free(t->rows[c]);
  free(t->rows); free(t->count); free(t->ids);
}

static bo_fewshot_task new_task(int ways, int shots, int queries)
{
  bo_fewshot_task task;
  assert_int_equal(bo_fewshot_task_create(ways, shots, queries, &task), 0);
  return task;
}

static int tasks_equal(const bo_fewshot_task *a, const bo_fewshot_task *b)
{
  int ns = a->ways * a->shots;
  return a->nq == b->nq && !memcmp(a->class_ids, b->class_ids, sizeof(int32_t) * (size_t)a->ways) &&
         !memcmp(a->support_rows, b->support_rows, sizeof(int64_t) * (size_t)ns) &&
         !memcmp(a->support_labels, b->support_labels, sizeof(int32_t) * (size_t)ns) &&
         !memcmp(a->query_rows, b->query_rows, sizeof(int64_t) * (size_t)a->nq) &&
         !memcmp(a->query_labels, b->query_labels, sizeof(int32_t) * (size_t)a->nq) &&
         !memcmp(a->queries_per_class, b->queries_per_class, sizeof(int) * (size_t)a->ways);
}

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}


static double *normal_rows(bo_rng *r, int64_t n, int64_t d, double sigma)
{
  double *x = malloc(sizeof *x * (size_t)(n * d));
  for (int64_t i = 0; i < n * d; i++) x[i] = sigma * bo_rng_normal(r);
  return x;
}

static double sqd(int64_t d, const double *x, const double *y)
{
  double s = 0;
  for (int64_t j = 0; j < d; j++) s += (x[j] - y[j]) * (x[j] - y[j]);
  return s;
}

/* ---------------------------------------------------------------- the sampler */

static void same_seed_and_task_give_the_same_task_and_other_tasks_differ(void **state)
{
  (void)state;
  test_pool       p = uniform_pool(20, 200);
  bo_fewshot_task a = new_task(5, 1, 15), b = new_task(5, 1, 15);

  for (int mode = 0; mode < 2; mode++) {
    double dir = mode ? 0.5 : 0;
    assert_int_equal(bo_fewshot_sample(42, 7, &p.pool, 5, 1, 15, dir, &a), 0);
    assert_int_equal(bo_fewshot_sample(42, 8, &p.pool, 5, 1, 15, dir, &b), 0);
    assert_false(tasks_equal(&a, &b));
    assert_int_equal(bo_fewshot_sample(43, 7, &p.pool, 5, 1, 15, dir, &b), 0);
    assert_false(tasks_equal(&a, &b));
    assert_int_equal(bo_fewshot_sample(42, 7, &p.pool, 5, 1, 15, dir, &b), 0);
    assert_true(tasks_equal(&a, &b)); /* after other tasks in between: no hidden state */
  }
  assert_int_equal(bo_fewshot_task_destroy(&a), 0);
  assert_int_equal(bo_fewshot_task_destroy(&b), 0);
  free_pool(&p);
}

static void classes_are_distinct_rows_distinct_and_of_their_class_balanced_queries(void **state)
{
  (void)state;
  const int64_t   nclasses = 12;
  test_pool       p = uniform_pool(nclasses, 25);
  const int       ways = 5, shots = 3, queries = 7;
  bo_fewshot_task t = new_task(ways, shots, queries);
  int64_t        *all = malloc(sizeof *all * (size_t)(ways * (shots + queries)));

  for (int64_t id = 0; id < 300; id++) {
    assert_int_equal(bo_fewshot_sample(5, id, &p.pool, ways, shots, queries, 0, &t), 0);
    assert_int_equal(t.nq, ways * queries);
    for (int j = 0; j < ways; j++) {
      assert_in_range(t.class_ids[j], 100, 100 + nclasses - 1);
      for (int k = 0; k < j; k++) assert_int_not_equal(t.class_ids[j], t.class_ids[k]);
      assert_int_equal(t.queries_per_class[j], queries);
    }
    int64_t m = 0;
    for (int j = 0; j < ways; j++)
      for (int s = 0; s < shots; s++) {
        assert_int_equal(t.support_labels[j * shots + s], j);
        assert_int_equal(t.support_rows[j * shots + s] % nclasses, t.class_ids[j] - 100);
        all[m++] = t.support_rows[j * shots + s];
      }
    for (int i = 0; i < t.nq; i++) {
      int j = i / queries; /* balanced: way-major blocks of `queries` */
      assert_int_equal(t.query_labels[i], j);
      assert_int_equal(t.query_rows[i] % nclasses, t.class_ids[j] - 100);
      all[m++] = t.query_rows[i];
    }
    qsort(all, (size_t)m, sizeof *all, cmp_i64);
    for (int64_t i = 1; i < m; i++) assert_true(all[i] != all[i - 1]);
  }
  free(all);
  assert_int_equal(bo_fewshot_task_destroy(&t), 0);
  free_pool(&p);
}

/* An independent replay of the draw order documented in fewshot.h. */
static void replay(uint64_t seed, int64_t id, const test_pool *p, int ways, int shots, int queries, double dir, bo_fewshot_task *want)
{
  int64_t n = p->pool.nclasses, *perm = malloc(sizeof *perm * (size_t)n);
  double *g = malloc(sizeof *g * (size_t)ways), sum = 0;
  bo_rng  r;
  int     off = 0;

  bo_rng_init(&r, seed, (uint64_t)id, BO_FEWSHOT_RNG_PURPOSE);
  for (int64_t c = 0; c < n; c++) perm[c] = c;
  for (int j = 0; j < ways; j++) {
    int64_t k = j + (int64_t)bo_rng_below(&r, (uint64_t)(n - j)), tmp = perm[j];
    perm[j] = perm[k]; perm[k] = tmp;
  }
  for (int j = 0; j < ways; j++) want->queries_per_class[j] = queries;
  if (dir > 0) {
    for (int j = 0; j < ways; j++) sum += (g[j] = bo_rng_gamma(&r, dir));
    for (int j = 0; j < ways; j++) g[j] /= sum;
    bo_fewshot_split_queries(ways, ways * queries, g, want->queries_per_class);
  }
  for (int j = 0; j < ways; j++) {
    int64_t c = perm[j], cnt = p->count[c], *pos = malloc(sizeof *pos * (size_t)cnt);
    int     need = shots + want->queries_per_class[j];
    for (int64_t i = 0; i < cnt; i++) pos[i] = i;
    for (int a = 0; a < need; a++) {
      int64_t k = a + (int64_t)bo_rng_below(&r, (uint64_t)(cnt - a)), tmp = pos[a];
      pos[a] = pos[k]; pos[k] = tmp;
    }
    want->class_ids[j] = p->ids[c];
    for (int s = 0; s < shots; s++) { want->support_rows[j * shots + s] = p->rows[c][pos[s]]; want->support_labels[j * shots + s] = j; }
    for (int s = shots; s < need; s++) { want->query_rows[off] = p->rows[c][pos[s]]; want->query_labels[off++] = j; }
    free(pos);
  }
  free(perm); free(g);
}

static void tasks_follow_the_documented_draw_order_support_first(void **state)
{
  (void)state;
  int64_t         count[9] = {30, 31, 40, 35, 50, 33, 60, 45, 38};
  test_pool       p = make_pool(9, count);
  bo_fewshot_task got = new_task(4, 2, 6), want = new_task(4, 2, 6);

  for (int mode = 0; mode < 2; mode++)
    for (int64_t id = 0; id < 100; id++) {
      double dir = mode ? 0.7 : 0;
      assert_int_equal(bo_fewshot_sample(99, id, &p.pool, 4, 2, 6, dir, &got), 0);
      replay(99, id, &p, 4, 2, 6, dir, &want);
      assert_true(tasks_equal(&got, &want));
    }
  assert_int_equal(bo_fewshot_task_destroy(&got), 0);
  assert_int_equal(bo_fewshot_task_destroy(&want), 0);
  free_pool(&p);
}

static void largest_remainder_split_matches_hand_checked_cases(void **state)
{
  (void)state;
  int q[5];
  /* R = 10 - 3 = 7: p R = 3.5, 2.1, 1.4 -> floors 3, 2, 1 (6); one slot left to remainder .5 */
  bo_fewshot_split_queries(3, 10, (double[]){0.5, 0.3, 0.2}, q);
  assert_int_equal(q[0], 5); assert_int_equal(q[1], 3); assert_int_equal(q[2], 2);
  /* R = 2: p R = .5, .5, 1 -> floors 0, 0, 1; one slot, remainders tie at .5: the lower index */
  bo_fewshot_split_queries(3, 5, (double[]){0.25, 0.25, 0.5}, q);
  assert_int_equal(q[0], 2); assert_int_equal(q[1], 1); assert_int_equal(q[2], 2);
  /* all mass on one class: every other class keeps its one query */
  bo_fewshot_split_queries(5, 75, (double[]){0, 0, 1, 0, 0}, q);
  assert_int_equal(q[0], 1); assert_int_equal(q[1], 1); assert_int_equal(q[2], 71); assert_int_equal(q[3], 1); assert_int_equal(q[4], 1);
  /* R = 70: p R = 7, 17.5, 24.5, 10.5, 10.5 -> floors sum 68; two slots to the .5 remainders 1, 2 */
  bo_fewshot_split_queries(5, 75, (double[]){0.1, 0.25, 0.35, 0.15, 0.15}, q);
  assert_int_equal(q[0], 8); assert_int_equal(q[1], 19); assert_int_equal(q[2], 26); assert_int_equal(q[3], 11); assert_int_equal(q[4], 11);
}

static void dirichlet_splits_sum_to_ways_times_queries_with_one_each_and_vary(void **state)
{
  (void)state;
  test_pool       p = uniform_pool(10, 200);
  bo_fewshot_task t = new_task(5, 1, 15);
  int             unbalanced = 0, minq = 1 << 30, maxq = 0;

  for (int64_t id = 0; id < 500; id++) {
    int sum = 0, off = 0;
    assert_int_equal(bo_fewshot_sample(1, id, &p.pool, 5, 1, 15, 0.5, &t), 0);
    for (int j = 0; j < 5; j++) {
      assert_true(t.queries_per_class[j] >= 1);
      for (int i = 0; i < t.queries_per_class[j]; i++) assert_int_equal(t.query_labels[off + i], j);
      off += t.queries_per_class[j];
      sum += t.queries_per_class[j];
      minq = t.queries_per_class[j] < minq ? t.queries_per_class[j] : minq;
      maxq = t.queries_per_class[j] > maxq ? t.queries_per_class[j] : maxq;
      if (t.queries_per_class[j] != 15) unbalanced = 1;
    }
    assert_int_equal(sum, 75);
    assert_int_equal(t.nq, 75);
  }
  assert_true(unbalanced);
  printf("    Dirichlet(0.5): queries per class ranged over [%d, %d]\n", minq, maxq);
  assert_int_equal(minq, 1);  /* a = 0.5 is skewed enough to hit the floor of one query */
  assert_true(maxq > 40);
  assert_int_equal(bo_fewshot_task_destroy(&t), 0);
  free_pool(&p);
}

static void a_class_too_small_for_its_task_or_too_few_classes_is_refused(void **state)
{
  (void)state;
  int64_t         count[6] = {30, 30, 30, 19, 30, 30};
  test_pool       p = make_pool(6, count);
  bo_fewshot_task t = new_task(6, 5, 15), t7 = new_task(7, 5, 15);

  /* 6 ways of 6 classes: class 3 (id 103, 19 rows) is always drawn and needs 5 + 15 */
  EXPECT_ERROR(bo_fewshot_sample(1, 0, &p.pool, 6, 5, 15, 0, &t), BO_ERR_INPUT, "class 103 has 19 rows");
  EXPECT_ERROR(bo_fewshot_sample(1, 0, &p.pool, 6, 5, 15, 0, &t), BO_ERR_INPUT, "expected at least 20 rows");
  EXPECT_ERROR(bo_fewshot_sample(1, 0, &p.pool, 7, 5, 15, 0, &t7), BO_ERR_INPUT, "expected ways <= classes");
  EXPECT_ERROR(bo_fewshot_sample(1, 0, &p.pool, 6, 5, 15, -1, &t), BO_ERR_INPUT, "Dirichlet");
  EXPECT_ERROR(bo_fewshot_sample(1, 0, &p.pool, 6, 5, 10, 0, &t), BO_ERR_INPUT, "task created for");
  count[3] = 20; /* exactly enough */
  free_pool(&p);
  p = make_pool(6, count);
  assert_int_equal(bo_fewshot_sample(1, 0, &p.pool, 6, 5, 15, 0, &t), 0);
  assert_int_equal(bo_fewshot_task_destroy(&t), 0);
  assert_int_equal(bo_fewshot_task_destroy(&t7), 0);
  free_pool(&p);
}

static void over_2000_tasks_every_class_appears_with_frequency_ways_over_classes(void **state)
{
  (void)state;
  const int64_t   nclasses = 20, ntasks = 2000;
  const int       ways = 5;
  test_pool       p = uniform_pool(nclasses, 30);
  bo_fewshot_task t = new_task(ways, 1, 15);
  int64_t         seen[20] = {0}, first_pos[30] = {0};
  /* expected ntasks * ways / nclasses = 500, binomial sd = sqrt(2000 .25 .75) = 19.4 */
  const double    expect = (double)ntasks * ways / (double)nclasses, sd = sqrt(ntasks * 0.25 * 0.75);

  for (int64_t id = 0; id < ntasks; id++) {
    assert_int_equal(bo_fewshot_sample(2024, id, &p.pool, ways, 1, 15, 0, &t), 0);
    for (int j = 0; j < ways; j++) seen[t.class_ids[j] - 100]++;
    first_pos[t.support_rows[0] / nclasses]++; /* position within its class of the first shot */
  }
  for (int64_t c = 0; c < nclasses; c++) {
    if (fabs((double)seen[c] - expect) > 5 * sd) fail_msg("class %lld drawn %lld times; expected %.0f +- %.0f", (long long)c, (long long)seen[c], expect, 5 * sd);
  }
  /* the first support row is uniform over the 30 rows of its class: 2000/30 = 66.7 each, sd 8.0 */
  for (int i = 0; i < 30; i++)
    if (fabs((double)first_pos[i] - ntasks / 30.0) > 5 * 8.0) fail_msg("row position %d drawn %lld times", i, (long long)first_pos[i]);
  assert_int_equal(bo_fewshot_task_destroy(&t), 0);
  free_pool(&p);
}

/* ---------------------------------------------------------------- preprocessing */

static void cl2n_and_l2_give_unit_norms_and_the_shift_equalises_the_means(void **state)
{
  (void)state;
  const int64_t n = 40, d = 17;
  bo_rng        r;
  bo_rng_init(&r, 3, 0, 0);
  double *x = normal_rows(&r, n, d, 2.0), *y = malloc(sizeof *y * (size_t)(n * d)), mean[17];
  for (int64_t j = 0; j < d; j++) mean[j] = 1.0 + 0.1 * (double)j;
  for (int64_t j = 0; j < d; j++) x[5 * d + j] = 0; /* a zero row */
  memcpy(y, x, sizeof *y * (size_t)(n * d));

  bo_fewshot_l2(n, d, y);
  for (int64_t i = 0; i < n; i++) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += y[i * d + j] * y[i * d + j];
    if (i == 5) assert_true(s == 0); /* stays zero, no NaN */
    else assert_true(fabs(s - 1) < 1e-14);
  }
  memcpy(y, x, sizeof *y * (size_t)(n * d));
  bo_fewshot_cl2n(n, d, mean, y);
  for (int64_t i = 0; i < n; i++) {
    double s = 0, t = 0;
    for (int64_t j = 0; j < d; j++) { s += y[i * d + j] * y[i * d + j]; t += (x[i * d + j] - mean[j]) * (x[i * d + j] - mean[j]); }
    assert_true(fabs(s - 1) < 1e-14);
    for (int64_t j = 0; j < d; j++) assert_true(fabs(y[i * d + j] - (x[i * d + j] - mean[j]) / sqrt(t)) < 1e-14); /* the direction of x - mean */
  }

  /* shift: 15 support rows, 25 query rows of another mean */
  for (int64_t i = 15 * d; i < n * d; i++) x[i] += 3.0;
  bo_fewshot_shift_queries(15, 25, d, x, x + 15 * d);
  for (int64_t j = 0; j < d; j++) {
    double ms = 0, mq = 0;
    for (int64_t i = 0; i < 15; i++) ms += x[i * d + j] / 15;
    for (int64_t i = 15; i < n; i++) mq += x[i * d + j] / 25;
    assert_true(fabs(ms - mq) < 1e-12);
  }
  free(x); free(y);
}

/* ---------------------------------------------------------------- SimpleShot */


static void simpleshot_is_perfect_on_well_separated_gaussian_classes(void **state)
{
  (void)state;
  const int64_t d = 16;
  double        centres[5 * 16] = {0};
  bo_rng        r;
  for (int k = 0; k < 5; k++) centres[k * d + k] = 10.0;
  bo_rng_init(&r, 11, 0, 0);
  for (int rep = 0; rep < 10; rep++) {
    toy_task t    = gaussian_task(&r, 5, 5, 15, d, centres, 0.5);
    int32_t *pred = malloc(sizeof *pred * (size_t)t.nq);
    assert_int_equal(bo_fewshot_simpleshot(t.ns, t.nq, d, t.zs, t.ys, t.zq, 5, pred), 0);
    assert_true(bo_fewshot_accuracy(t.nq, pred, t.yq) == 1.0);
    pred[0] = (pred[0] + 1) % 5; /* and the accuracy notices one miss */
    assert_true(fabs(bo_fewshot_accuracy(t.nq, pred, t.yq) - 74.0 / 75.0) < 1e-15);
    free(pred);
    free_toy(&t);
  }
}

static void simpleshot_hand_computed_two_class_case_with_a_tie_to_the_lower_class(void **state)
{
  (void)state;
  /* class 0: (0,0), (2,0) -> mean (1,0); class 1: (0,4), (0,6) -> mean (0,5) */
  const double  zs[] = {0, 0, 0, 4, 2, 0, 0, 6};
  const int32_t ys[] = {0, 1, 0, 1};
  /* (1,1): 1 vs 17 -> 0;  (0,3): 10 vs 4 -> 1;  (0.5,2.5): 6.5 vs 6.5 exactly -> 0;  (3,6): 40 vs 10 -> 1 */
  const double  zq[] = {1, 1, 0, 3, 0.5, 2.5, 3, 6};
  int32_t       pred[4];
  assert_int_equal(bo_fewshot_simpleshot(4, 4, 2, zs, ys, zq, 2, pred), 0);
  assert_int_equal(pred[0], 0); assert_int_equal(pred[1], 1); assert_int_equal(pred[2], 0); assert_int_equal(pred[3], 1);
  EXPECT_ERROR(bo_fewshot_simpleshot(4, 4, 2, zs, ys, zq, 3, pred), BO_ERR_INPUT, "class 2 has no support row");
  EXPECT_ERROR(bo_fewshot_simpleshot(4, 4, 2, zs, (const int32_t[]){0, 1, 2, 1}, zq, 2, pred), BO_ERR_INPUT, "has label 2");
}

/* ---------------------------------------------------------------- LaplacianShot */

/* The tiny case: S = {(1,0) class 0, (0,1) class 1}, Q = {(0.6,0.8), (0.4,0.2)}, mean(Q) = mean(S)
 * so the shift is zero.  Support means m_0 = (1,0), m_1 = (0,1).  Cosines: s0 (1,0), s1 (0,1),
 * q0 (0.6, 0.8) -> 1, q1 (2/sqrt5, 1/sqrt5) -> 0.  Softmax weights of the predicted class:
 * s0, s1: 1/(1+e^-10); q0: 1/(1+e^-2); q1: 1/(1+e^(-10/sqrt5)). */
static const double tiny_zs[] = {1, 0, 0, 1}, tiny_zq[] = {0.6, 0.8, 0.4, 0.2};
static const int32_t tiny_ys[] = {0, 1};

static void tiny_expected_prototypes(PetscBool normalized, double m[4])
{
  double ws = 1 / (1 + exp(-10.0)), w0 = 1 / (1 + exp(-2.0)), w1 = 1 / (1 + exp(-10 / sqrt(5.0)));
  double den0 = normalized ? ws + w1 : 2, den1 = normalized ? ws + w0 : 2;
  m[0] = (ws * 1 + w1 * 0.4) / den0; m[1] = (w1 * 0.2) / den0;    /* class 0: s0 and q1 */
  m[2] = (w0 * 0.6) / den1;          m[3] = (ws * 1 + w0 * 0.8) / den1; /* class 1: s1 and q0 */
}

static void rectified_prototypes_match_the_hand_computation_reference_and_normalized(void **state)
{
  (void)state;
  double got[6], want[4];

  for (int normalized = 0; normalized < 2; normalized++) {
    tiny_expected_prototypes((PetscBool)normalized, want);
    assert_int_equal(bo_fewshot_rectified_prototypes(2, 2, 2, tiny_zs, tiny_ys, tiny_zq, 2, 10.0, (PetscBool)normalized, got), 0);
    for (int i = 0; i < 4; i++)
      if (fabs(got[i] - want[i]) > 1e-14) fail_msg("normalized=%d: m'[%d] = %.17g, expected %.17g", normalized, i, got[i], want[i]);
  }
  /* the reference weighting shrinks the prototype (mean of W x with W < 1); normalized does not */
  tiny_expected_prototypes(PETSC_FALSE, want);
  assert_true(want[0] < 1 && hypot(want[0], want[1]) < hypot(got[0], got[1]));

  /* a third class whose support row (2,0) ties with class 0's direction: cosine ties go to class 0,
   * so nothing predicts class 2 and its prototype stays the support mean (2,0) */
  const double  zs3[] = {1, 0, 0, 1, 2, 0};
  const int32_t ys3[] = {0, 1, 2};
  assert_int_equal(bo_fewshot_rectified_prototypes(3, 2, 2, zs3, ys3, tiny_zq, 3, 10.0, PETSC_FALSE, got), 0);
  assert_true(got[4] == 2.0 && got[5] == 0.0);
}

static void the_shift_happens_on_a_copy_and_lambda_zero_gives_argmin_of_rectified_unaries(void **state)
{
  (void)state;
  bo_lshot_opts o;
  int32_t       pred[75];
  double        m[4];

  bo_lshot_opts_default(&o);
  o.lambda = 0;
  o.knn    = 2;
  /* tiny case: a_qc = |q - m'_c|^2 by hand */
  for (int normalized = 0; normalized < 2; normalized++) {
    o.normalized_rect = (PetscBool)normalized;
    tiny_expected_prototypes(o.normalized_rect, m);
    assert_int_equal(bo_fewshot_laplacianshot(2, 2, 2, tiny_zs, tiny_ys, tiny_zq, 2, &o, pred, NULL), 0);
    for (int q = 0; q < 2; q++) {
      double a0 = sqd(2, tiny_zq + 2 * q, m), a1 = sqd(2, tiny_zq + 2 * q, m + 2);
      assert_int_equal(pred[q], a1 < a0 ? 1 : 0);
    }
  }
  /* random 5-way 1-shot tasks: shift by hand, prototypes, argmin */
  bo_rng r;
  bo_rng_init(&r, 12, 0, 0);
  o.knn = 3;
  for (int rep = 0; rep < 30; rep++) {
    const int64_t d = 8;
    double       *centres = normal_rows(&r, 5, d, 1.0);
    toy_task      t       = gaussian_task(&r, 5, 1, 15, d, centres, 0.8);
    double       *xq = malloc(sizeof *xq * (size_t)(t.nq * d)), *zq0 = malloc(sizeof *zq0 * (size_t)(t.nq * d)), protos[5 * 8];
    for (int64_t i = 0; i < t.nq * d; i++) t.zq[i] += 0.5; /* a query offset for the shift to undo */
    memcpy(zq0, t.zq, sizeof *zq0 * (size_t)(t.nq * d));
    o.normalized_rect = (PetscBool)(rep % 2);
    assert_int_equal(bo_fewshot_laplacianshot(t.ns, t.nq, d, t.zs, t.ys, t.zq, 5, &o, pred, NULL), 0);
    assert_memory_equal(t.zq, zq0, sizeof *zq0 * (size_t)(t.nq * d)); /* zq untouched */
    for (int64_t j = 0; j < d; j++) {
      double ms = 0, mq = 0;
      for (int64_t i = 0; i < t.ns; i++) ms += t.zs[i * d + j] / (double)t.ns;
      for (int64_t i = 0; i < t.nq; i++) mq += t.zq[i * d + j] / (double)t.nq;
      for (int64_t i = 0; i < t.nq; i++) xq[i * d + j] = t.zq[i * d + j] + ms - mq;
    }
    assert_int_equal(bo_fewshot_rectified_prototypes(t.ns, t.nq, d, t.zs, t.ys, xq, 5, 10.0, o.normalized_rect, protos), 0);
    for (int64_t q = 0; q < t.nq; q++) {
      int    best = 0;
      double a[5];
      for (int c = 0; c < 5; c++) a[c] = sqd(d, xq + q * d, protos + c * d);
      for (int c = 1; c < 5; c++) if (a[c] < a[best]) best = c;
      /* a 1e-12 near-tie could flip the argmax of exp(-a): skip it rather than be flaky */
      int near = 0;
      for (int c = 0; c < 5; c++) if (c != best && fabs(a[c] - a[best]) < 1e-12) near = 1;
      if (!near) assert_int_equal(pred[q], best);
    }
    free(xq); free(zq0); free(centres);
    free_toy(&t);
  }
}

/* Brute force: the knn - 1 nearest other rows by (distance, index), as a dense 0/1 matrix. */
static void brute_graph(int64_t n, int64_t d, const double *x, int knn, float *w)
{
  memset(w, 0, sizeof *w * (size_t)(n * n));
  for (int64_t p = 0; p < n; p++) {
    char *used = calloc((size_t)n, 1);
    used[p] = 1;
    for (int a = 0; a < knn - 1; a++) {
      int64_t best = -1;
      for (int64_t q = 0; q < n; q++)
        if (!used[q] && (best < 0 || sqd(d, x + p * d, x + q * d) < sqd(d, x + p * d, x + best * d))) best = q;
      used[best] = 1;
      w[p * n + best] = 1;
    }
    free(used);
  }
}

static void the_query_graph_is_the_row_wise_binary_2nn_graph_not_symmetrised(void **state)
{
  (void)state;
  /* points on a line: 0, 1, 3, 7, 15, 15 (a duplicate), 1 (a duplicate of row 1) */
  const double x[] = {0, 1, 3, 7, 15, 15, 1};
  const int64_t n = 7;
  /* 2 nearest others by (distance, index): 0 -> {1 (1), 6 (1)}; 1 -> {6 (0), 0 (1)};
   * 2 -> {1 (2), 6 (2)}; 3 -> {2 (4), 1 (6)}; 4 -> {5 (0), 3 (8)}; 5 -> {4 (0), 3 (8)};
   * 6 -> {1 (0), 0 (1)} */
  const int64_t want[7][2] = {{1, 6}, {0, 6}, {1, 6}, {1, 2}, {3, 5}, {3, 4}, {0, 1}};
  bo_graph      g;
  float        *dense = calloc(n * n, sizeof *dense), *bf = malloc(sizeof *bf * n * n);
  int           asym = 0;

  assert_int_equal(bo_fewshot_knn_graph(n, 1, x, 3, &g), 0);
  assert_true(g.exchange_ready);
  assert_int_equal(g.nghost, 0);
  for (int64_t p = 0; p < n; p++) {
    assert_int_equal(g.indptr[p + 1] - g.indptr[p], 2);
    for (int a = 0; a < 2; a++) {
      assert_int_equal(g.indices[g.indptr[p] + a], want[p][a]);
      assert_true(g.data[g.indptr[p] + a] == 1.0f);
      dense[p * n + want[p][a]] = 1;
    }
  }
  for (int64_t p = 0; p < n; p++)
    for (int64_t q = 0; q < n; q++) asym |= dense[p * n + q] != dense[q * n + p];
  assert_true(asym); /* e.g. 3 -> 2 but not 2 -> 3: row-wise, as the reference */
  assert_int_equal(bo_graph_destroy(&g), 0);

  /* random points, knn 3 and 5: equal to brute force */
  bo_rng r;
  bo_rng_init(&r, 13, 0, 0);
  for (int knn = 3; knn <= 5; knn += 2) {
    double *y = normal_rows(&r, 40, 6, 1.0);
    float  *w = malloc(sizeof *w * 1600);
    brute_graph(40, 6, y, knn, w);
    assert_int_equal(bo_fewshot_knn_graph(40, 6, y, knn, &g), 0);
    float *gd = calloc(1600, sizeof *gd);
    for (int64_t p = 0; p < 40; p++) {
      assert_int_equal(g.indptr[p + 1] - g.indptr[p], knn - 1);
      for (int64_t e = g.indptr[p]; e < g.indptr[p + 1]; e++) {
        if (e > g.indptr[p]) assert_true(g.indices[e] > g.indices[e - 1]);
        gd[p * 40 + g.indices[e]] = g.data[e];
      }
    }
    assert_memory_equal(gd, w, sizeof *w * 1600);
    assert_int_equal(bo_graph_destroy(&g), 0);
    free(gd); free(w); free(y);
  }
  /* knn = 1: no neighbours; knn > n: refused */
  assert_int_equal(bo_fewshot_knn_graph(n, 1, x, 1, &g), 0);
  assert_int_equal(g.indptr[n], 0);
  assert_int_equal(bo_graph_destroy(&g), 0);
  EXPECT_ERROR(bo_fewshot_knn_graph(n, 1, x, 8, &g), BO_ERR_INPUT, "expected 1 <= knn <= points");
  free(dense); free(bf);
}

/* A dense, independent LaplacianShot: shift, prototypes (the hand-checked function), unaries,
 * brute-force row-wise kNN, exactly `its` steps Y <- softmax(-A + lambda W Y). */
static void dense_lshot(const toy_task *t, int ways, double lambda, int knn, int its, int32_t *pred)
{
  int64_t d = t->d, nq = t->nq;
  double *xq = malloc(sizeof *xq * (size_t)(nq * d)), *m = malloc(sizeof *m * (size_t)(ways * d));
  double *a = malloc(sizeof *a * (size_t)(nq * ways)), *y = malloc(sizeof *y * (size_t)(nq * ways)), *z = malloc(sizeof *z * (size_t)(nq * ways));
  float  *w = malloc(sizeof *w * (size_t)(nq * nq));

  for (int64_t j = 0; j < d; j++) {
    double ms = 0, mq = 0;
    for (int64_t i = 0; i < t->ns; i++) ms += t->zs[i * d + j] / (double)t->ns;
    for (int64_t i = 0; i < nq; i++) mq += t->zq[i * d + j] / (double)nq;
    for (int64_t i = 0; i < nq; i++) xq[i * d + j] = t->zq[i * d + j] + ms - mq;
  }
  assert_int_equal(bo_fewshot_rectified_prototypes(t->ns, nq, d, t->zs, t->ys, xq, ways, 10.0, PETSC_FALSE, m), 0);
  for (int64_t q = 0; q < nq; q++)
    for (int c = 0; c < ways; c++) a[q * ways + c] = sqd(d, xq + q * d, m + c * d);
  brute_graph(nq, d, xq, knn, w);
  for (int64_t i = 0; i < nq * ways; i++) z[i] = -a[i];
  for (int it = 0;; it++) {
    for (int64_t q = 0; q < nq; q++) {
      double hi = -INFINITY, s = 0;
      for (int c = 0; c < ways; c++) hi = fmax(hi, z[q * ways + c]);
      for (int c = 0; c < ways; c++) s += (y[q * ways + c] = exp(z[q * ways + c] - hi));
      for (int c = 0; c < ways; c++) y[q * ways + c] /= s;
    }
    if (it == its) break;
    for (int64_t q = 0; q < nq; q++)
      for (int c = 0; c < ways; c++) {
        double b = 0;
        for (int64_t p = 0; p < nq; p++) b += w[q * nq + p] * y[p * ways + c];
        z[q * ways + c] = -a[q * ways + c] + lambda * b;
      }
  }
  for (int64_t q = 0; q < nq; q++) {
    int best = 0;
    for (int c = 1; c < ways; c++) if (y[q * ways + c] > y[q * ways + best]) best = c;
    pred[q] = best;
  }
  free(xq); free(m); free(a); free(y); free(z); free(w);
}

static void laplacianshot_equals_a_dense_reimplementation_of_its_bound_iterations(void **state)
{
  (void)state;
  bo_lshot_opts  o;
  bo_lshot_stats st;
  bo_rng         r;
  int32_t        got[75], want[75];
  int64_t        differ = 0, changed = 0;

  bo_lshot_opts_default(&o);
  o.lambda = 1.5; o.tol = 0; o.max_it = 20; /* tol 0: exactly 20 steps (or a fixed point) */
  bo_rng_init(&r, 14, 0, 0);
  for (int rep = 0; rep < 40; rep++) {
    const int64_t d = 10;
    double       *centres = normal_rows(&r, 5, d, 1.0);
    toy_task      t       = gaussian_task(&r, 5, 1, 15, d, centres, 0.9);
    assert_int_equal(bo_fewshot_laplacianshot(t.ns, t.nq, d, t.zs, t.ys, t.zq, 5, &o, got, &st), 0);
    assert_true(st.iterations <= 20);
    dense_lshot(&t, 5, o.lambda, 3, st.iterations, want);
    for (int q = 0; q < 75; q++) differ += got[q] != want[q];
    dense_lshot(&t, 5, 0, 3, 0, want); /* and the graph term did something */
    for (int q = 0; q < 75; q++) changed += got[q] != want[q];
    free(centres);
    free_toy(&t);
  }
  assert_int_equal(differ, 0);
  assert_true(changed > 0);
  printf("    lambda 1.5 changed %lld of %d predictions against lambda 0\n", (long long)changed, 40 * 75);
}

static void laplacianshot_beats_simpleshot_on_clustered_5way_1shot_tasks(void **state)
{
  (void)state;
  const int64_t  d = 32, ntasks = 200;
  const int      ways = 5, queries = 15;
  bo_lshot_opts  o;
  double         acc_s = 0, acc_l = 0, acc_s2 = 0, acc_l2 = 0, acc_r = 0;
  int32_t        pred[75];
  int64_t        wins = 0, losses = 0;

  bo_lshot_opts_default(&o);
  o.lambda = 0.7;
  for (int64_t id = 0; id < ntasks; id++) {
    bo_rng r;
    bo_rng_init(&r, 77, (uint64_t)id, 0);
    /* class centres: random unit directions; the shot and the queries scattered around them (noise
     * norm ~1.7 against unit centres: SimpleShot ~65%); all rows L2-normalised */
    double *centres = normal_rows(&r, ways, d, 1.0);
    bo_fewshot_l2(ways, d, centres);
    toy_task t = gaussian_task(&r, ways, 1, queries, d, centres, 0.3);
    bo_fewshot_l2(t.ns, d, t.zs);
    bo_fewshot_l2(t.nq, d, t.zq);
    assert_int_equal(bo_fewshot_simpleshot(t.ns, t.nq, d, t.zs, t.ys, t.zq, ways, pred), 0);
    double as = bo_fewshot_accuracy(t.nq, pred, t.yq);
    assert_int_equal(bo_fewshot_laplacianshot(t.ns, t.nq, d, t.zs, t.ys, t.zq, ways, &o, pred, NULL), 0);
    double al = bo_fewshot_accuracy(t.nq, pred, t.yq);
    o.lambda = 0; /* for the record: the rectification alone */
    assert_int_equal(bo_fewshot_laplacianshot(t.ns, t.nq, d, t.zs, t.ys, t.zq, ways, &o, pred, NULL), 0);
    acc_r += bo_fewshot_accuracy(t.nq, pred, t.yq);
    o.lambda = 0.7;
    acc_s += as; acc_s2 += as * as; acc_l += al; acc_l2 += al * al;
    wins += al > as; losses += al < as;
    free(centres);
    free_toy(&t);
  }
  acc_s /= ntasks; acc_l /= ntasks; acc_r /= ntasks;
  double ci_s = 1.96 * sqrt(fmax(acc_s2 / ntasks - acc_s * acc_s, 0) / ntasks), ci_l = 1.96 * sqrt(fmax(acc_l2 / ntasks - acc_l * acc_l, 0) / ntasks);
  printf("    %lld tasks, 5-way 1-shot: SimpleShot %.2f%% +- %.2f, LaplacianShot (lambda 0.7) %.2f%% +- %.2f (better on %lld tasks, worse on %lld); rectification alone (lambda 0) %.2f%%\n",
         (long long)ntasks, 100 * acc_s, 100 * ci_s, 100 * acc_l, 100 * ci_l, (long long)wins, (long long)losses, 100 * acc_r);
  assert_true(acc_l > acc_s + ci_s + ci_l); /* separated by more than the two CIs */
  assert_true(wins > losses);
}

static void laplacianshot_refuses_bad_arguments_in_one_line(void **state)
{
  (void)state;
  bo_lshot_opts o;
  int32_t       pred[2];
  bo_lshot_opts_default(&o);
  EXPECT_ERROR(bo_fewshot_laplacianshot(2, 2, 2, tiny_zs, tiny_ys, tiny_zq, 2, &o, pred, NULL), BO_ERR_INPUT, "expected 1 <= knn <= queries");
  o.knn = 2;
  EXPECT_ERROR(bo_fewshot_laplacianshot(2, 2, 2, tiny_zs, tiny_ys, tiny_zq, 3, &o, pred, NULL), BO_ERR_INPUT, "class 2 has no support row");
  o.rectify = PETSC_FALSE;
  EXPECT_ERROR(bo_fewshot_laplacianshot(2, 2, 2, tiny_zs, tiny_ys, tiny_zq, 3, &o, pred, NULL), BO_ERR_INPUT, "class 2 has no support row");
  o.max_it = -1;
  EXPECT_ERROR(bo_fewshot_laplacianshot(2, 2, 2, tiny_zs, tiny_ys, tiny_zq, 2, &o, pred, NULL), BO_ERR_INPUT, "max_it >= 0");
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("the same (seed, task) gives the same task; another task or seed gives another", same_seed_and_task_give_the_same_task_and_other_tasks_differ),
    PROPERTY("ways are distinct classes, rows distinct and of their way's class, labels way-major, balanced = queries per way", classes_are_distinct_rows_distinct_and_of_their_class_balanced_queries),
    PROPERTY("a task is the documented draw sequence: classes, Dirichlet gammas, rows with the support first", tasks_follow_the_documented_draw_order_support_first),
    PROPERTY("the query split is largest remainder after one each, ties to the lower class (hand-checked)", largest_remainder_split_matches_hand_checked_cases),
    PROPERTY("Dirichlet splits sum to ways*queries, give every way at least one query and are unbalanced", dirichlet_splits_sum_to_ways_times_queries_with_one_each_and_vary),
    PROPERTY("a class smaller than shots + its queries, or too few classes, is a one-line input error", a_class_too_small_for_its_task_or_too_few_classes_is_refused),
    PROPERTY("over 2000 tasks each class appears with frequency ways/classes and rows uniformly", over_2000_tasks_every_class_appears_with_frequency_ways_over_classes),
    PROPERTY("CL2N and L2 give unit norms (zero rows stay zero); the shift makes mean(Q) = mean(S)", cl2n_and_l2_give_unit_norms_and_the_shift_equalises_the_means),
    PROPERTY("SimpleShot is perfect on well-separated Gaussian classes", simpleshot_is_perfect_on_well_separated_gaussian_classes),
    PROPERTY("SimpleShot on a hand-computed 2-class case, ties to the lower class", simpleshot_hand_computed_two_class_case_with_a_tie_to_the_lower_class),
    PROPERTY("rectified prototypes equal the hand computation (reference mean and normalized; empty class keeps its support mean)", rectified_prototypes_match_the_hand_computation_reference_and_normalized),
    PROPERTY("with lambda = 0 LaplacianShot predicts argmin of the rectified unaries of the shifted queries", the_shift_happens_on_a_copy_and_lambda_zero_gives_argmin_of_rectified_unaries),
    PROPERTY("the query graph is the binary row-wise 2-NN graph (self counted), not symmetrised", the_query_graph_is_the_row_wise_binary_2nn_graph_not_symmetrised),
    PROPERTY("LaplacianShot equals a dense re-implementation of its bound iterations", laplacianshot_equals_a_dense_reimplementation_of_its_bound_iterations),
    PROPERTY("LaplacianShot beats SimpleShot on clustered 5-way 1-shot tasks (mean over 200 tasks)", laplacianshot_beats_simpleshot_on_clustered_5way_1shot_tasks),
    PROPERTY("LaplacianShot refuses bad knn, labels and caps with one-line input errors", laplacianshot_refuses_bad_arguments_in_one_line),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
