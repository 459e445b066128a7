/* test_bound.c - properties of the bound optimizer (bound.h) on one rank: one step against a dense
 * brute-force row softmax of (-A + lambda W Y), the softmax itself (normalised, shift invariant, no
 * overflow), the stopping rule and the cap, the reported energy (lambda/2 convention, energy of the
 * returned iterate), lambda = 0, and label ties. */
#include <float.h>
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
#include "boundopt/error.h"
#include "boundopt/graph.h"
#include "boundopt/rng.h"
#include "unit_support.h"

/* ---------------------------------------------------------------- fixtures */

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* A hand-made, asymmetric, non-uniformly weighted graph: each row gets `deg` distinct other
 * columns (ascending) with weights in [0.1, 1.5), filled the way bo_knn_build would leave it. */
static void hand_graph(int64_t n, int deg, uint64_t seed, bo_graph *g)
{
  memset(g, 0, sizeof *g);
  g->comm = PETSC_COMM_SELF;
  g->rows = all_rows(n);
  assert_int_equal(PetscMalloc1(n + 1, &g->indptr), 0);
  assert_int_equal(PetscMalloc1(n * deg, &g->indices), 0);
  assert_int_equal(PetscMalloc1(n * deg, &g->data), 0);
  g->indptr[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    bo_rng   r;
    int64_t *cols = g->indices + i * deg;
    int      m    = 0;
    bo_rng_init(&r, seed, (uint64_t)i, 7);
    while (m < deg) {
      int64_t c   = (int64_t)bo_rng_below(&r, (uint64_t)n);
      int     dup = c == i;
      for (int q = 0; q < m && !dup; q++) dup = cols[q] == c;
      if (!dup) cols[m++] = c;
    }
    qsort(cols, (size_t)deg, sizeof *cols, cmp_i64);
    for (int q = 0; q < deg; q++) g->data[i * deg + q] = (float)(0.1 + 1.4 * bo_rng_uniform(&r));
    g->indptr[i + 1] = (i + 1) * deg;
  }
  assert_int_equal(bo_graph_setup_exchange(g), 0);
}

static double *dense_of(const bo_graph *g)
{
  int64_t n = g->rows.n;
  double *w = calloc((size_t)(n * n), sizeof *w);
  for (int64_t i = 0; i < n; i++)
    for (int64_t e = g->indptr[i]; e < g->indptr[i + 1]; e++) w[i * n + g->indices[e]] = g->data[e];
  return w;
}

/* Unary costs of mixed magnitude: some rows nearly flat, some with a clear winner. */
static double *costs(int64_t n, int64_t k, uint64_t seed, double scale)
{
  double *a = malloc(sizeof *a * (size_t)(n * k));
  for (int64_t i = 0; i < n; i++) {
    bo_rng r;
    bo_rng_init(&r, seed, (uint64_t)i, 3);
    double s = scale * (i % 3 == 0 ? 0.05 : 1.0);
    for (int64_t c = 0; c < k; c++) a[i * k + c] = s * bo_rng_normal(&r);
  }
  return a;
}

/* Brute force: softmax over each row of z, with the row maximum subtracted (double). */
static void dense_softmax_of(int64_t n, int64_t k, const double *z, double *y)
{
  for (int64_t i = 0; i < n; i++) {
    double hi = -INFINITY, s = 0;
    for (int64_t c = 0; c < k; c++) hi = fmax(hi, z[i * k + c]);
    for (int64_t c = 0; c < k; c++) s += y[i * k + c] = exp(z[i * k + c] - hi);
    for (int64_t c = 0; c < k; c++) y[i * k + c] /= s;
  }
}

/* b = W y densely, every column. */
static void dense_wy(int64_t n, int64_t k, const double *w, const double *y, double *b)
{
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++) {
      double s = 0;
      for (int64_t j = 0; j < n; j++) s += w[i * n + j] * y[j * k + c];
      b[i * k + c] = s;
    }
}

/* One bound step, densely: y <- rowsoftmax(-A + lambda W y). */
static void dense_step(int64_t n, int64_t k, const double *a, const double *w, double lambda, double *y)
{
  double *b = malloc(sizeof *b * (size_t)(n * k)), *z = malloc(sizeof *z * (size_t)(n * k));
  dense_wy(n, k, w, y, b);
  for (int64_t i = 0; i < n * k; i++) z[i] = -a[i] + lambda * b[i];
  dense_softmax_of(n, k, z, y);
  free(b);
  free(z);
}

/* E = sum y log max(y,1e-20) + sum y.a - (lambda/2) sum_pq w_pq y_p.y_q, straight from the
 * definition (the pair sum over every dense entry of W). */
static double dense_energy(int64_t n, int64_t k, const double *a, const double *w, double lambda, const double *y)
{
  double e = 0, pair = 0;
  for (int64_t i = 0; i < n * k; i++) e += y[i] * log(fmax(y[i], 1e-20)) + y[i] * a[i];
  if (w)
    for (int64_t p = 0; p < n; p++)
      for (int64_t q = 0; q < n; q++) {
        if (w[p * n + q] == 0) continue;
        double dot = 0;
        for (int64_t c = 0; c < k; c++) dot += y[p * k + c] * y[q * k + c];
        pair += w[p * n + q] * dot;
      }
  return e - 0.5 * lambda * pair;
}

static void assert_rows_stochastic(int64_t n, int64_t k, const double *y)
{
  for (int64_t i = 0; i < n; i++) {
    double s = 0;
    for (int64_t c = 0; c < k; c++) {
      assert_true(isfinite(y[i * k + c]) && y[i * k + c] >= 0);
      s += y[i * k + c];
    }
    ASSERT_CLOSE(s, 1.0, 4 * DBL_EPSILON * (double)k);
  }
}

/* The energy bo_bound_energy gives for y with b = W y (the library's own W*Y). */
static double library_energy(bo_graph *g, int64_t k, const double *a, const double *y, double lambda)
{
  int64_t n = g->rows.n;
  double *b = malloc(sizeof *b * (size_t)(n * k)), amax = 0, wmax, e;
  for (int64_t i = 0; i < n * k; i++) amax = fmax(amax, fabs(a[i]));
  assert_int_equal(bo_graph_max_row_sum(g, &wmax), 0);
  assert_int_equal(bo_graph_gather_ghosts(g, k, y, NULL), 0);
  bo_graph_spmm(g, k, y, NULL, b);
  assert_int_equal(bo_bound_energy(PETSC_COMM_SELF, &g->rows, k, a, y, b, lambda, amax, wmax, &e), 0);
  free(b);
  return e;
}

/* ---------------------------------------------------------------- one step */

static void check_one_step(int64_t n, int deg, int64_t k, double lambda, uint64_t seed)
{
  bo_graph      g;
  double       *a = costs(n, k, seed, 2.0), *y = malloc(sizeof *y * (size_t)(n * k)), *want = malloc(sizeof *want * (size_t)(n * k));
  double       *w, *z = malloc(sizeof *z * (size_t)(n * k)), *y0 = malloc(sizeof *y0 * (size_t)(n * k)), energy;
  int           its = -1;
  bo_rows       rows = all_rows(n);
  bo_bound_opts o    = {.lambda = lambda, .max_it = 1, .tol = 0};

  hand_graph(n, deg, seed, &g);
  w = dense_of(&g);
  for (int64_t i = 0; i < n * k; i++) z[i] = -a[i];
  dense_softmax_of(n, k, z, want); /* Y0 = softmax(-A), brute force */
  bo_bound_softmax(n, k, a, y);
  for (int64_t i = 0; i < n * k; i++) ASSERT_CLOSE(y[i], want[i], 1e-15);
  memcpy(y0, y, sizeof *y * (size_t)(n * k));
  dense_step(n, k, a, w, lambda, want); /* Y1 */
  assert_int_equal(bo_bound_run(&rows, k, a, &g, &o, y, &energy, &its), 0);
  assert_int_equal(its, 1);
  double moved = 0;
  for (int64_t i = 0; i < n * k; i++) {
    ASSERT_CLOSE(y[i], want[i], 1e-14);
    moved = fmax(moved, fabs(y[i] - y0[i]));
  }
  if (k > 1) assert_true(moved > 1e-3); /* the pair term matters in this fixture */
  assert_rows_stochastic(n, k, y);
  double e = dense_energy(n, k, a, w, lambda, want);
  ASSERT_CLOSE(energy, e, 1e-12 * fmax(1.0, fabs(e)));
  free(a); free(y); free(want); free(w); free(z); free(y0);
  assert_int_equal(bo_graph_destroy(&g), 0);
}

static void one_step_equals_dense_softmax_of_minus_a_plus_lambda_w_y(void **state)
{
  (void)state;
  check_one_step(7, 3, 4, 1.7, 11);     /* tiny, every row touches most of the others */
  check_one_step(600, 5, 6, 0.8, 12);   /* three tiles, the last one short */
  check_one_step(300, 9, 1, 2.0, 13);   /* K = 1: y = 1 whatever the graph */
}

/* ---------------------------------------------------------------- softmax */

static void softmax_rows_sum_to_one_and_are_shift_invariant(void **state)
{
  (void)state;
  const int64_t n = 300, k = 7;
  double       *a = costs(n, k, 21, 30.0), *y = malloc(sizeof *y * (size_t)(n * k)), *ys = malloc(sizeof *ys * (size_t)(n * k));
  double       *as = malloc(sizeof *as * (size_t)(n * k));

  bo_bound_softmax(n, k, a, y);
  assert_rows_stochastic(n, k, y);
  /* the largest probability sits on the smallest cost */
  for (int64_t i = 0; i < n; i++) {
    int64_t lo = 0, hi = 0;
    for (int64_t c = 1; c < k; c++) {
      if (a[i * k + c] < a[i * k + lo]) lo = c;
      if (y[i * k + c] > y[i * k + hi]) hi = c;
    }
    assert_int_equal(lo, hi);
  }
  /* a different constant per row: equal up to rounding of a + c */
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++) as[i * k + c] = a[i * k + c] + 123.456 * (double)(i % 5) - 250.0;
  bo_bound_softmax(n, k, as, ys);
  for (int64_t i = 0; i < n * k; i++) ASSERT_CLOSE(ys[i], y[i], 1e-12);
  /* exact shifts (multiples of 1/8 plus 1024 or -2^40): the differences are unchanged, so the bits are */
  for (int64_t i = 0; i < n * k; i++) a[i] = floor(a[i] * 8.0) / 8.0;
  bo_bound_softmax(n, k, a, y);
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++) as[i * k + c] = a[i * k + c] + (i % 2 ? 1024.0 : -1099511627776.0);
  bo_bound_softmax(n, k, as, ys);
  assert_memory_equal(ys, y, sizeof *y * (size_t)(n * k));
  free(a); free(y); free(ys); free(as);
}

static void softmax_does_not_overflow_for_huge_costs(void **state)
{
  (void)state;
  enum { K = 4, ROWS = 6 };
  const double a[ROWS * K] = {
    0, 1e300, -1e300, 5e299,       /* the -1e300 entry wins outright */
    1e300, 1e300, 1e300, 1e300,    /* all equal and huge: uniform */
    -1e300, -1e300, 1e300, 1e300,  /* two winners at -1e300 */
    1e300, 1e300 * (1 + 1e-15), 0, 1e-300, /* 0 and 1e-300 tie to double precision */
    -1e300, 0, 1, 2,
    8e307, -8e307, 0, 8e307,       /* 1.6e308 differences, still finite */
  };
  const double want[ROWS * K] = {
    0, 0, 1, 0,
    0.25, 0.25, 0.25, 0.25,
    0.5, 0.5, 0, 0,
    0, 0, 0.5, 0.5,
    1, 0, 0, 0,
    0, 1, 0, 0,
  };
  double y[ROWS * K];

  bo_bound_softmax(ROWS, K, a, y);
  assert_rows_stochastic(ROWS, K, y);
  for (int i = 0; i < ROWS * K; i++) ASSERT_CLOSE(y[i], want[i], 1e-15);
}

/* ---------------------------------------------------------------- stopping rule, cap, energy */

/* Runs with tol and max_it from softmax(-A) and checks the energy of the returned iterate against
 * bo_bound_energy (B = W Y of that iterate) and the dense definition. */
static int run_and_check_energy(bo_graph *g, int64_t k, const double *a, const double *w, double lambda, int max_it, double tol, double *y)
{
  int64_t       n = g->rows.n;
  bo_bound_opts o = {.lambda = lambda, .max_it = max_it, .tol = tol};
  double        energy;
  int           its = -1;

  bo_bound_softmax(n, k, a, y);
  assert_int_equal(bo_bound_run(&g->rows, k, a, g, &o, y, &energy, &its), 0);
  assert_rows_stochastic(n, k, y);
  double lib = library_energy(g, k, a, y, lambda), e = dense_energy(n, k, a, w, lambda, y);
  ASSERT_CLOSE(energy, lib, 1e-12 * fmax(1.0, fabs(lib)));
  ASSERT_CLOSE(energy, e, 1e-12 * fmax(1.0, fabs(e)));
  return its;
}

static void huge_tol_stops_after_exactly_two_iterations(void **state)
{
  (void)state;
  const int64_t n = 400, k = 5;
  const double  lambda = 1.1;
  bo_graph      g;
  double       *a = costs(n, k, 31, 1.5), *y = malloc(sizeof *y * (size_t)(n * k)), *want = malloc(sizeof *want * (size_t)(n * k)), *w;

  hand_graph(n, 6, 31, &g);
  w = dense_of(&g);
  /* the first comparison is E_3 against E_2 (the reference's i > 1), and with a huge tol it stops there */
  assert_int_equal(run_and_check_energy(&g, k, a, w, lambda, 50, 1e10, y), 3);
  bo_bound_softmax(n, k, a, want);
  dense_step(n, k, a, w, lambda, want);
  dense_step(n, k, a, w, lambda, want);
  dense_step(n, k, a, w, lambda, want);
  for (int64_t i = 0; i < n * k; i++) ASSERT_CLOSE(y[i], want[i], 1e-13);
  /* the cap still wins below 3 */
  assert_int_equal(run_and_check_energy(&g, k, a, w, lambda, 2, 1e10, y), 2);
  assert_int_equal(run_and_check_energy(&g, k, a, w, lambda, 1, 1e10, y), 1);
  assert_int_equal(run_and_check_energy(&g, k, a, w, lambda, 0, 1e10, y), 0);
  bo_bound_softmax(n, k, a, want); /* no step: Y0 itself comes back */
  for (int64_t i = 0; i < n * k; i++) ASSERT_CLOSE(y[i], want[i], 1e-15);
  free(a); free(y); free(want); free(w);
  assert_int_equal(bo_graph_destroy(&g), 0);
}

static void zero_tol_runs_exactly_max_it_steps(void **state)
{
  (void)state;
  const int64_t n = 400, k = 5;
  const double  lambda = 0.6;
  bo_graph      g;
  double       *a = costs(n, k, 41, 1.5), *y = malloc(sizeof *y * (size_t)(n * k)), *want = malloc(sizeof *want * (size_t)(n * k)), *w;

  hand_graph(n, 6, 41, &g);
  w = dense_of(&g);
  for (int cap = 3; cap <= 9; cap += 3) {
    assert_int_equal(run_and_check_energy(&g, k, a, w, lambda, cap, 0.0, y), cap);
    bo_bound_softmax(n, k, a, want);
    for (int s = 0; s < cap; s++) dense_step(n, k, a, w, lambda, want);
    for (int64_t i = 0; i < n * k; i++) ASSERT_CLOSE(y[i], want[i], 1e-12);
  }
  free(a); free(y); free(want); free(w);
  assert_int_equal(bo_graph_destroy(&g), 0);
}

/* The rule on the energies of the iterates: the run stops at the first i > 2 with
 * |E_i - E_{i-1}| <= tol |E_{i-1}| (E_i the energy of Y_i, Y_0 = softmax(-A)), or at max_it. */
static void stops_at_the_first_small_relative_change_after_the_second_step(void **state)
{
  (void)state;
  enum { CAP = 40 };
  const int64_t n = 300, k = 4;
  const double  lambda = 0.9;
  bo_graph      g;
  double       *a = costs(n, k, 51, 1.0), *y = malloc(sizeof *y * (size_t)(n * k)), *w, e[CAP + 1];
  const double  tols[] = {1e-2, 1e-4, 1e-6, 1e-9};

  hand_graph(n, 4, 51, &g);
  w = dense_of(&g);
  bo_bound_softmax(n, k, a, y);
  e[0] = dense_energy(n, k, a, w, lambda, y);
  for (int i = 1; i <= CAP; i++) {
    dense_step(n, k, a, w, lambda, y);
    e[i] = dense_energy(n, k, a, w, lambda, y);
  }
  for (size_t t = 0; t < sizeof tols / sizeof *tols; t++) {
    int expect = CAP;
    for (int i = 3; i <= CAP; i++) {
      double r = fabs(e[i] - e[i - 1]) / fabs(e[i - 1]);
      if (fabs(r - tols[t]) <= fmax(1e-3 * tols[t], 1e-12)) fail_msg("fixture: relative change %g at step %d is too close to tol %g", r, i, tols[t]);
      if (r <= tols[t]) { expect = i; break; }
    }
    int its = run_and_check_energy(&g, k, a, w, lambda, CAP, tols[t], y);
    if (its != expect) fail_msg("tol %g: %d iterations, expected %d", tols[t], its, expect);
  }
  free(a); free(y); free(w);
  assert_int_equal(bo_graph_destroy(&g), 0);
}

static void bound_energy_uses_half_lambda_on_the_pair_term(void **state)
{
  (void)state;
  const int64_t n = 50, k = 3;
  const double  lambda = 2.5;
  bo_graph      g;
  double       *a = costs(n, k, 61, 1.0), *y = malloc(sizeof *y * (size_t)(n * k)), *w;

  hand_graph(n, 5, 61, &g);
  w = dense_of(&g);
  for (int64_t i = 0; i < n; i++) /* a peaked, not-softmax Y: the energy is a function of Y alone */
    for (int64_t c = 0; c < k; c++) y[i * k + c] = c == i % k ? 0.8 : 0.1;
  double e = dense_energy(n, k, a, w, lambda, y), e0 = dense_energy(n, k, a, NULL, 0, y);
  ASSERT_CLOSE(library_energy(&g, k, a, y, lambda), e, 1e-12 * fmax(1.0, fabs(e)));
  /* and b = NULL drops the pair term */
  double amax = 0, got;
  for (int64_t i = 0; i < n * k; i++) amax = fmax(amax, fabs(a[i]));
  assert_int_equal(bo_bound_energy(PETSC_COMM_SELF, &g.rows, k, a, y, NULL, lambda, amax, 0, &got), 0);
  ASSERT_CLOSE(got, e0, 1e-12 * fmax(1.0, fabs(e0)));
  /* the pair term is not the lambda (reference) one: the two differ by (lambda/2) sum w y.y */
  assert_true(fabs(e - e0) > 1.0);
  free(a); free(y); free(w);
  assert_int_equal(bo_graph_destroy(&g), 0);
}

static void lambda_zero_gives_softmax_of_minus_a_whatever_w(void **state)
{
  (void)state;
  const int64_t n = 500, k = 6;
  bo_graph      g1, g2;
  double       *a = costs(n, k, 71, 3.0), *y1 = malloc(sizeof *y1 * (size_t)(n * k)), *y2 = malloc(sizeof *y2 * (size_t)(n * k));
  double       *want = malloc(sizeof *want * (size_t)(n * k)), e1, e2;
  int           its;
  bo_rows       rows = all_rows(n);
  bo_bound_opts o    = {.lambda = 0, .max_it = 6, .tol = 0};

  hand_graph(n, 3, 71, &g1);
  hand_graph(n, 12, 72, &g2);
  bo_bound_softmax(n, k, a, want);
  bo_bound_softmax(n, k, a, y1);
  assert_int_equal(bo_bound_run(&rows, k, a, &g1, &o, y1, &e1, &its), 0);
  assert_true(its >= 1 && its <= o.max_it);
  bo_bound_softmax(n, k, a, y2);
  assert_int_equal(bo_bound_run(&rows, k, a, &g2, &o, y2, &e2, &its), 0);
  assert_true(its >= 1 && its <= o.max_it);
  for (int64_t i = 0; i < n * k; i++) ASSERT_CLOSE(y1[i], want[i], 1e-15);
  assert_memory_equal(y1, y2, sizeof *y1 * (size_t)(n * k));
  double e = dense_energy(n, k, a, NULL, 0, want);
  ASSERT_CLOSE(e1, e, 1e-12 * fmax(1.0, fabs(e)));
  assert_true(e1 == e2);
  free(a); free(y1); free(y2); free(want);
  assert_int_equal(bo_graph_destroy(&g1), 0);
  assert_int_equal(bo_graph_destroy(&g2), 0);
}

static void run_with_huge_costs_stays_finite(void **state)
{
  (void)state;
  const int64_t n = 20, k = 3;
  bo_graph      g;
  double       *a = malloc(sizeof *a * (size_t)(n * k)), *y = malloc(sizeof *y * (size_t)(n * k)), energy;
  int           its;
  bo_bound_opts o = {.lambda = 1.0, .max_it = 5, .tol = 0};

  hand_graph(n, 4, 81, &g);
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++) a[i * k + c] = c == i % k ? -1e300 : (c == (i + 1) % k ? 1e300 : 0.5);
  bo_bound_softmax(n, k, a, y);
  assert_int_equal(bo_bound_run(&g.rows, k, a, &g, &o, y, &energy, &its), 0);
  assert_rows_stochastic(n, k, y);
  for (int64_t i = 0; i < n; i++) ASSERT_CLOSE(y[i * k + i % k], 1.0, 1e-15);
  assert_true(isfinite(energy));
  free(a); free(y);
  assert_int_equal(bo_graph_destroy(&g), 0);
}

/* ---------------------------------------------------------------- labels */

/* A workspace made once and reused across calls with different costs (as bo_cluster_run does)
 * gives, call after call, the iterate, energy and step count of bo_bound_run, bit for bit; with
 * or without node sharing; a workspace for another K is refused. */
static void a_reused_workspace_gives_the_results_of_bo_bound_run_bit_for_bit(void **state)
{
  (void)state;
  const int64_t n = 700, k = 6;
  bo_graph      g;
  bo_bound_work ws[2];
  bo_bound_opts o = {.lambda = 0.8, .max_it = 9, .tol = 0};

  hand_graph(n, 5, 41, &g);
  assert_int_equal(bo_bound_work_create(&g, k, BO_SHARE_NODE, &ws[0]), 0);
  assert_int_equal(bo_bound_work_create(&g, k, BO_SHARE_NONE, &ws[1]), 0);
  for (int call = 0; call < 3; call++) {
    double *a = costs(n, k, 50 + (uint64_t)call, 2.0), *y = malloc(sizeof *y * (size_t)(n * k)), *yw = malloc(sizeof *yw * (size_t)(n * k)), e, ew;
    int     its, itsw;
    bo_bound_softmax(n, k, a, y);
    assert_int_equal(bo_bound_run(&g.rows, k, a, &g, &o, y, &e, &its), 0);
    for (int v = 0; v < 2; v++) {
      bo_bound_softmax(n, k, a, yw);
      assert_int_equal(bo_bound_run_work(&g.rows, k, a, &ws[v], &o, yw, &ew, &itsw), 0);
      assert_int_equal(itsw, its);
      assert_memory_equal(&ew, &e, sizeof e);
      assert_memory_equal(yw, y, sizeof *y * (size_t)(n * k));
    }
    free(a);
    free(y);
    free(yw);
  }
  {
    double *a = costs(n, k + 1, 60, 1.0), *y = calloc((size_t)(n * (k + 1)), sizeof *y), e;
    int     its;
    PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
    assert_int_not_equal(bo_bound_run_work(&g.rows, k + 1, a, &ws[0], &o, y, &e, &its), 0);
    PetscPopErrorHandler();
    free(a);
    free(y);
  }
  for (int v = 0; v < 2; v++) assert_int_equal(bo_bound_work_destroy(&ws[v]), 0);
  assert_null(ws[0].peer);
  assert_int_equal(bo_graph_destroy(&g), 0);
}

static void labels_are_the_row_argmax_with_ties_to_the_lowest_index(void **state)
{
  (void)state;
  enum { K = 4, ROWS = 7 };
  const double  y[ROWS * K] = {
    0.25, 0.25, 0.25, 0.25, /* all tied: 0 */
    0.1, 0.4, 0.4, 0.1,     /* 1 and 2 tied: 1 */
    0.1, 0.2, 0.3, 0.4,     /* 3 */
    0.0, 0.0, 0.5, 0.5,     /* 2 */
    0.7, 0.1, 0.1, 0.1,     /* 0 */
    0.2, 0.3, 0.2, 0.3,     /* 1 */
    0.0, 0.0, 0.0, 1.0,     /* 3 */
  };
  const int32_t want[ROWS] = {0, 1, 3, 2, 0, 1, 3};
  int32_t       got[ROWS];

  bo_bound_labels(ROWS, K, y, got);
  assert_memory_equal(got, want, sizeof want);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("one bound step equals the dense row softmax of (-A + lambda W Y0), Y0 = softmax(-A)", one_step_equals_dense_softmax_of_minus_a_plus_lambda_w_y),
    PROPERTY("softmax rows sum to 1, peak at the smallest cost, and are invariant to a constant added to a row", softmax_rows_sum_to_one_and_are_shift_invariant),
    PROPERTY("softmax does not overflow for costs 1e300 apart", softmax_does_not_overflow_for_huge_costs),
    PROPERTY("a huge tol stops after exactly 3 steps (the reference's i > 1 rule); caps 2, 1 and 0 still apply", huge_tol_stops_after_exactly_two_iterations),
    PROPERTY("tol = 0 runs exactly max_it steps; the energy is that of the returned iterate", zero_tol_runs_exactly_max_it_steps),
    PROPERTY("the run stops at the first i > 2 with |E_i - E_i-1| <= tol |E_i-1| (dense energies)", stops_at_the_first_small_relative_change_after_the_second_step),
    PROPERTY("bo_bound_energy is sum y log y + y.a - (lambda/2) sum w y.y; b = NULL drops the pair term", bound_energy_uses_half_lambda_on_the_pair_term),
    PROPERTY("lambda = 0 gives Y = softmax(-A) whatever W", lambda_zero_gives_softmax_of_minus_a_whatever_w),
    PROPERTY("bound iterations with costs 1e300 apart stay finite and stochastic", run_with_huge_costs_stays_finite),
    PROPERTY("a workspace reused across calls (node sharing or not) gives bo_bound_run's results bit for bit; another K is refused", a_reused_workspace_gives_the_results_of_bo_bound_run_bit_for_bit),
    PROPERTY("labels are the row argmax, ties to the lowest index", labels_are_the_row_argmax_with_ties_to_the_lowest_index),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  openblas_set_num_threads(1);
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
