/* test_bound_descent.c - why the bound iterations are a descent method (spec section 2, bound.h):
 * each step minimises its linearised bound B_i(Y) = sum y log y + sum y.(a - lambda W Y^i) over
 * the simplex rows (so the bound decreases), and for a symmetric positive semi-definite W the
 * energy E(Y) = sum y log y + sum y.a - (lambda/2) sum w y.y itself never increases.  (For a kNN
 * W, which is not PSD, the energy need not decrease: no test asserts it there.) */
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

#include "boundopt/bound.h"
#include "boundopt/graph.h"
#include "boundopt/rng.h"

#define PROPERTY(name, fn) {name, fn, NULL, NULL, NULL}

/* A dense n x n graph on one rank from the matrix w (row-major), zeros dropped. */
static void graph_of_dense(int64_t n, const double *w, bo_graph *g)
{
  int64_t nnz = 0;
  memset(g, 0, sizeof *g);
  g->comm = PETSC_COMM_SELF;
  bo_rows_partition(n, 0, 1, &g->rows);
  for (int64_t i = 0; i < n * n; i++) nnz += w[i] != 0;
  assert_int_equal(PetscMalloc1(n + 1, &g->indptr), 0);
  assert_int_equal(PetscMalloc1(nnz + 1, &g->indices), 0);
  assert_int_equal(PetscMalloc1(nnz + 1, &g->data), 0);
  g->indptr[0] = 0;
  for (int64_t i = 0, e = 0; i < n; i++) {
    for (int64_t j = 0; j < n; j++)
      if (w[i * n + j] != 0) { g->indices[e] = j; g->data[e] = (float)w[i * n + j]; e++; }
    g->indptr[i + 1] = e;
  }
  assert_int_equal(bo_graph_setup_exchange(g), 0);
}

/* The linearised bound at b = W Y^i (the weights as stored: float). */
static double linear_bound(int64_t n, int64_t k, const double *a, const double *b, double lambda, const double *y)
{
  double s = 0;
  for (int64_t i = 0; i < n * k; i++) s += (y[i] > 0 ? y[i] * log(y[i]) : 0) + y[i] * (a[i] - lambda * b[i]);
  return s;
}

static void wy(const bo_graph *g, int64_t k, const double *y, double *b)
{
  for (int64_t i = 0; i < g->rows.n; i++)
    for (int64_t c = 0; c < k; c++) {
      double s = 0;
      for (int64_t e = g->indptr[i]; e < g->indptr[i + 1]; e++) s += (double)g->data[e] * y[g->indices[e] * k + c];
      b[i * k + c] = s;
    }
}

static void each_step_minimises_its_linearised_bound(void **state)
{
  (void)state;
  const int64_t n = 24, k = 4;
  const double  lambda = 1.3;
  double       *w = calloc((size_t)(n * n), sizeof *w), a[24 * 4], y[24 * 4], y0[24 * 4], b[24 * 4], z[24 * 4], energy;
  bo_graph      g;
  bo_rng        r;
  int           its;
  bo_bound_opts o = {.lambda = lambda, .max_it = 1, .tol = 0};

  bo_rng_init(&r, 5, 0, 0);
  for (int64_t i = 0; i < n; i++) /* asymmetric, 5 random neighbours per row */
    for (int q = 0; q < 5; q++) {
      int64_t j = (int64_t)bo_rng_below(&r, (uint64_t)n);
      if (j != i) w[i * n + j] = 0.25 + bo_rng_uniform(&r);
    }
  graph_of_dense(n, w, &g);
  for (int64_t i = 0; i < n * k; i++) a[i] = 2.0 * bo_rng_normal(&r);
  bo_bound_softmax(n, k, a, y);
  for (int step = 0; step < 10; step++) {
    memcpy(y0, y, sizeof y);
    wy(&g, k, y0, b);
    assert_int_equal(bo_bound_run(&g.rows, k, a, &g, &o, y, &energy, &its), 0);
    double at_new = linear_bound(n, k, a, b, lambda, y), at_old = linear_bound(n, k, a, b, lambda, y0);
    assert_true(at_new <= at_old + 1e-12 * fabs(at_old));
    for (int trial = 0; trial < 200; trial++) { /* any other point of the simplex rows is no better */
      for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t c = 0; c < k; c++) s += z[i * k + c] = trial % 2 ? -log(bo_rng_uniform(&r) + 1e-300) : y[i * k + c] * (1 + 0.01 * bo_rng_normal(&r)) + 1e-12;
        for (int64_t c = 0; c < k; c++) z[i * k + c] /= s;
      }
      assert_true(at_new <= linear_bound(n, k, a, b, lambda, z) + 1e-12 * fabs(at_new));
    }
  }
  assert_int_equal(bo_graph_destroy(&g), 0);
  free(w);
}

static void energy_never_increases_for_a_symmetric_psd_w(void **state)
{
  (void)state;
  const int64_t n = 30, k = 5, rank = 6;
  double       *w = calloc((size_t)(n * n), sizeof *w), *gm = malloc(sizeof *gm * (size_t)(n * rank)), a[30 * 5], y[30 * 5], energy, prev = INFINITY;
  bo_graph      g;
  bo_rng        r;
  int           its, rises = 0;

  bo_rng_init(&r, 6, 0, 0);
  for (int64_t i = 0; i < n * rank; i++) gm[i] = bo_rng_uniform(&r) < 0.4 ? bo_rng_uniform(&r) : 0;
  for (int64_t i = 0; i < n; i++) /* W = G G^T: symmetric, PSD, non-negative */
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t q = 0; q < rank; q++) s += gm[i * rank + q] * gm[j * rank + q];
      w[i * n + j] = (double)(float)s; /* what the graph stores */
    }
  graph_of_dense(n, w, &g);
  for (int64_t i = 0; i < n * k; i++) a[i] = bo_rng_normal(&r);
  for (double lambda = 0.5; lambda <= 4.0; lambda *= 2) {
    bo_bound_opts o = {.lambda = lambda, .max_it = 1, .tol = 0};
    bo_bound_softmax(n, k, a, y);
    prev = INFINITY;
    for (int step = 0; step < 40; step++) {
      assert_int_equal(bo_bound_run(&g.rows, k, a, &g, &o, y, &energy, &its), 0);
      if (energy > prev + 1e-12 * fabs(prev)) rises++;
      prev = energy;
    }
  }
  assert_int_equal(rises, 0);
  assert_int_equal(bo_graph_destroy(&g), 0);
  free(w); free(gm);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("each bound step minimises its linearised bound over the simplex rows (the bound decreases)", each_step_minimises_its_linearised_bound),
    PROPERTY("for a symmetric PSD W the energy (lambda/2 convention) never increases, lambda 0.5-4", energy_never_increases_for_a_symmetric_psd_w),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
