/* test_slkshot.c - the clustering family as few-shot inference with support constraints
 * (bo_fewshot_slk, fewshot.h; the supervision options of the driver, cluster.h): clamped support
 * rows keep their class and free ones move, the first prototypes are the means of the given
 * labels, every method is perfect on separated classes, the transductive methods beat SimpleShot
 * on clustered tasks, and bad arguments are one-line errors. */
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

#include "boundopt/cluster.h"
#include "boundopt/error.h"
#include "boundopt/fewshot.h"
#include "boundopt/rng.h"

#include "fewshot_fixtures.h"

static const int methods[4] = {BO_KMEANS, BO_KMODES, BO_SLK_MEANS, BO_SLK_MS};


/* Two 1-D blobs at 0 and 10 (20 rows each, rows 0..19 and 20..39); row 0 is a support row of
 * class 1 that sits in blob 0, row 20 a support row of class 1 in blob 1, row 21 one of class 0 in
 * blob 1... so only clamping keeps rows 0 and 21 on their classes. */
static void run_constrained(int method, PetscBool clamp, int32_t *labels)
{
  const int64_t    n = 40, d = 1;
  float            x[40];
  int32_t          fixed[40];
  bo_graph         w;
  double           xd[40];
  bo_cluster_state st;
  bo_cluster_opts  o = {0};

  for (int64_t i = 0; i < n; i++) {
    xd[i]    = (i < 20 ? 0.0 : 10.0) + 0.05 * (double)(i % 20);
    x[i]     = (float)xd[i];
    fixed[i] = -1;
  }
  fixed[0] = 1; fixed[20] = 1; fixed[21] = 0; fixed[1] = 0;
  assert_int_equal(bo_fewshot_knn_graph(n, d, xd, 3, &w), 0);
  o.method = (bo_cluster_method)method; o.k = 2; o.lambda = 0.5; o.sigma = 2.0;
  o.max_it = 20; o.tol = 1e-8; o.bound.max_it = 100; o.bound.tol = 1e-9; o.ms_max_it = 100; o.ms_tol = 1e-6;
  o.hard_means = PETSC_TRUE; o.on_empty = BO_ON_EMPTY_STOP;
  o.fixed = fixed; o.clamp = clamp; o.from_labels = PETSC_TRUE;
  assert_int_equal(bo_cluster_state_create(&w.rows, d, 2, o.max_it, &st), 0);
  for (int64_t i = 0; i < n; i++) st.labels[i] = fixed[i] >= 0 ? fixed[i] : (i < 20 ? 0 : 1);
  st.prototypes[0] = 0.5f; st.prototypes[1] = 10.5f;
  assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &w.rows, d, x, bo_cluster_uses_graph((bo_cluster_method)method) ? &w : NULL, &o, &st), 0);
  memcpy(labels, st.labels, sizeof(int32_t) * (size_t)n);
  assert_int_equal(bo_cluster_state_destroy(&st), 0);
  assert_int_equal(bo_graph_destroy(&w), 0);
}

static void clamped_support_rows_keep_their_class_and_free_ones_move(void **state)
{
  (void)state;
  int32_t labels[40];
  for (int q = 0; q < 4; q++) {
    run_constrained(methods[q], PETSC_TRUE, labels);
    assert_int_equal(labels[0], 1);  /* clamped, though in blob 0 */
    assert_int_equal(labels[21], 0); /* clamped, though in blob 1 */
    assert_int_equal(labels[1], 0);
    assert_int_equal(labels[20], 1);
    for (int64_t i = 2; i < 40; i++) if (i != 20 && i != 21) assert_int_equal(labels[i], i < 20 ? 0 : 1);
    run_constrained(methods[q], PETSC_FALSE, labels);
    assert_int_equal(labels[0], 0);  /* free: they join their blob, as in the reference */
    assert_int_equal(labels[21], 1);
  }
}

static void the_first_prototypes_are_the_means_of_the_given_labels(void **state)
{
  (void)state;
  const int64_t    n = 6, d = 2;
  float            x[12] = {0, 0, 2, 0, 0, 2, 10, 10, 12, 10, 10, 13};
  bo_rows          rows;
  bo_cluster_state st;
  bo_cluster_opts  o = {0};

  bo_rows_partition(n, 0, 1, &rows);
  o.method = BO_KMEANS; o.k = 2; o.max_it = 1; o.on_empty = BO_ON_EMPTY_STOP; o.from_labels = PETSC_TRUE;
  assert_int_equal(bo_cluster_state_create(&rows, d, 2, 1, &st), 0);
  int32_t start[6] = {0, 0, 1, 1, 1, 1}; /* row 2 deliberately in cluster 1 */
  memcpy(st.labels, start, sizeof start);
  st.prototypes[0] = st.prototypes[1] = st.prototypes[2] = st.prototypes[3] = -100.0f; /* not used */
  assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows, d, x, NULL, &o, &st), 0);
  assert_true(fabsf(st.prototypes[0] - 1.0f) < 1e-6f && fabsf(st.prototypes[1] - 0.0f) < 1e-6f);
  assert_true(fabsf(st.prototypes[2] - 8.0f) < 1e-6f && fabsf(st.prototypes[3] - 8.75f) < 1e-6f);
  assert_int_equal(bo_cluster_state_destroy(&st), 0);
}

static void every_method_is_perfect_on_well_separated_gaussian_classes(void **state)
{
  (void)state;
  const int64_t d = 16;
  double        centres[5 * 16] = {0};
  bo_rng        r;
  for (int k = 0; k < 5; k++) centres[k * d + k] = 10.0;
  bo_rng_init(&r, 12, 0, 0);
  for (int rep = 0; rep < 5; rep++) {
    toy_task t = gaussian_task(&r, 5, 5, 15, d, centres, 0.5);
    int32_t  pred[75];
    for (int q = 0; q < 4; q++)
      for (int clamp = 0; clamp < 2; clamp++) {
        bo_slkshot_opts  o;
        bo_slkshot_stats s;
        bo_slkshot_opts_default(methods[q], &o);
        o.clamp = clamp ? PETSC_TRUE : PETSC_FALSE;
        assert_int_equal(bo_fewshot_slk(t.ns, t.nq, d, t.zs, t.ys, t.zq, 5, &o, pred, &s), 0);
        assert_true(bo_fewshot_accuracy(t.nq, pred, t.yq) == 1.0);
        assert_true(s.outer >= 1 && s.outer <= o.max_it);
        assert_true((methods[q] == BO_KMODES || methods[q] == BO_SLK_MS) == (s.sigma > 0));
      }
    free_toy(&t);
  }
}

/* Clustered tasks, as in test_fewshot's LaplacianShot check: unit class directions, noisy rows. */
static void transductive_methods_beat_simpleshot_on_clustered_5way_1shot_tasks(void **state)
{
  (void)state;
  const int64_t d = 32, ntasks = 150;
  const int     ways = 5, queries = 15;
  double        acc_s = 0, acc[4][2] = {{0}}, s2 = 0;

  for (int64_t id = 0; id < ntasks; id++) {
    bo_rng  r;
    double *centres = malloc(sizeof *centres * (size_t)(ways * d));
    int32_t pred[75];
    bo_rng_init(&r, 78, (uint64_t)id, 0);
    for (int64_t i = 0; i < ways * d; i++) centres[i] = bo_rng_normal(&r);
    bo_fewshot_l2(ways, d, centres);
    toy_task t = gaussian_task(&r, ways, 1, queries, d, centres, 0.3);
    bo_fewshot_l2(t.ns, d, t.zs);
    bo_fewshot_l2(t.nq, d, t.zq);
    assert_int_equal(bo_fewshot_simpleshot(t.ns, t.nq, d, t.zs, t.ys, t.zq, ways, pred), 0);
    double a = bo_fewshot_accuracy(t.nq, pred, t.yq);
    acc_s += a; s2 += a * a;
    for (int q = 0; q < 4; q++)
      for (int clamp = 0; clamp < 2; clamp++) {
        bo_slkshot_opts o;
        bo_slkshot_opts_default(methods[q], &o);
        o.clamp = clamp ? PETSC_TRUE : PETSC_FALSE;
        assert_int_equal(bo_fewshot_slk(t.ns, t.nq, d, t.zs, t.ys, t.zq, ways, &o, pred, NULL), 0);
        acc[q][clamp] += bo_fewshot_accuracy(t.nq, pred, t.yq);
      }
    free(centres);
    free_toy(&t);
  }
  acc_s /= ntasks;
  double ci = 1.96 * sqrt(fmax(s2 / ntasks - acc_s * acc_s, 0) / ntasks);
  printf("    %lld tasks, 5-way 1-shot: SimpleShot %.2f%% +- %.2f\n", (long long)ntasks, 100 * acc_s, 100 * ci);
  for (int q = 0; q < 4; q++) {
    printf("    %-10s free %.2f%%, clamped %.2f%%\n", bo_cluster_method_names[methods[q]], 100 * acc[q][0] / ntasks, 100 * acc[q][1] / ntasks);
    for (int clamp = 0; clamp < 2; clamp++) assert_true(acc[q][clamp] / ntasks > acc_s + ci); /* the papers' claim, on this family */
  }
}

static void bad_arguments_are_one_line_input_errors(void **state)
{
  (void)state;
  double          zs[4] = {0, 0, 1, 1}, zq[4] = {0, 0.1, 1, 0.9};
  int32_t         ys[2] = {0, 1}, pred[2];
  bo_slkshot_opts o;
  bo_slkshot_opts_default(BO_SLK_MS, &o);
  o.knn = 5;
  EXPECT_ERROR(bo_fewshot_slk(2, 2, 2, zs, ys, zq, 2, &o, pred, NULL), BO_ERR_INPUT, "expected 2 <= knn <= rows");
  o.knn = 3; o.method = BO_SOFT_KMEANS;
  EXPECT_ERROR(bo_fewshot_slk(2, 2, 2, zs, ys, zq, 2, &o, pred, NULL), BO_ERR_INPUT, "expected kmeans, kmodes, slk-means or slk-ms");
  bo_slkshot_opts_default(BO_SLK_MEANS, &o);
  o.lambda = -1;
  EXPECT_ERROR(bo_fewshot_slk(2, 2, 2, zs, ys, zq, 2, &o, pred, NULL), BO_ERR_INPUT, "non-negative weights");
  bo_slkshot_opts_default(BO_KMEANS, &o);
  EXPECT_ERROR(bo_fewshot_slk(2, 2, 2, zs, ys, zq, 3, &o, pred, NULL), BO_ERR_INPUT, "class 2 has no support row");
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("clamped support rows keep their class in every method; free ones move like queries", clamped_support_rows_keep_their_class_and_free_ones_move),
    PROPERTY("with from_labels the first prototypes are the means of the given labels, not the seeds", the_first_prototypes_are_the_means_of_the_given_labels),
    PROPERTY("kmeans, kmodes, slk-means, slk-ms (free and clamped) are perfect on separated classes", every_method_is_perfect_on_well_separated_gaussian_classes),
    PROPERTY("the transductive methods beat SimpleShot on clustered 5-way 1-shot tasks (150 tasks)", transductive_methods_beat_simpleshot_on_clustered_5way_1shot_tasks),
    PROPERTY("bad knn, method, lambda and labels are one-line input errors", bad_arguments_are_one_line_input_errors),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
