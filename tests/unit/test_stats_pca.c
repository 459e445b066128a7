/* test_stats_pca.c - properties of the column/row statistics (stats.h) and PCA (pca.h) on one rank. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <petscsys.h>

#include "boundopt/pca.h"
#include "boundopt/rng.h"
#include "boundopt/stats.h"
#include "unit_support.h"

/* ---------------------------------------------------------------- fixtures */

/* n x d floats, row i from the stream (seed 1, id i): the same rows whatever the partition. */
static float *random_matrix(int64_t n, int64_t d, double scale, double offset)
{
  float *x = malloc(sizeof *x * (size_t)(n > 0 ? n * d : 1));
  for (int64_t i = 0; i < n; i++) {
    bo_rng r;
    bo_rng_init(&r, 1, (uint64_t)i, 0);
    for (int64_t j = 0; j < d; j++) x[i * d + j] = (float)(offset + j + scale * (2 * bo_rng_uniform(&r) - 1));
  }
  return x;
}

static double naive_norm(const float *row, int64_t d)
{
  double s = 0;
  for (int64_t j = 0; j < d; j++) s += (double)row[j] * row[j];
  return sqrt(s);
}

/* The Hadamard axes of R^4 scaled to unit length: entries +-1/2, exact in float. */
static const double H[4][4] = {
  {0.5, 0.5, 0.5, 0.5},
  {0.5, -0.5, 0.5, -0.5},
  {0.5, 0.5, -0.5, -0.5},
  {0.5, -0.5, -0.5, 0.5},
};
static const double MU[4] = {1.0, -2.0, 3.0, 0.5};

/* Data with a known covariance, over three tiles: n = 513 points, 64 pairs mu +- a_k h_k on each of
 * three axes (384 points) and 129 points at mu, in a scrambled order.  With a = 2, 6, 4 on axes
 * 0, 1, 2 (not in variance order; axis 3 unused) the sample covariance is exactly
 *   sum_k 2 * 64 a_k^2 / (n - 1) h_k h_k^T = sum_k (a_k^2 / 4) h_k h_k^T,
 * i.e. variances 1, 9, 4 along h0, h1, h2.  Every coordinate is exact in float. */
enum { NPCA = 513, DPCA = 4, PAIRS = 64 };
static const double AMP[3] = {2.0, 6.0, 4.0};

static float *known_covariance_data(void)
{
  float *x = malloc(sizeof *x * NPCA * DPCA);
  for (int p = 0; p < NPCA; p++) {
    int    row  = (p * 7) % NPCA; /* 7 is prime to 513: a permutation of the rows */
    double c[3] = {0, 0, 0};
    if (p < 3 * 2 * PAIRS) c[p / (2 * PAIRS)] = (p % 2 ? -1 : 1) * AMP[p / (2 * PAIRS)];
    for (int j = 0; j < DPCA; j++) {
      double v = MU[j];
      for (int k = 0; k < 3; k++) v += c[k] * H[k][j];
      x[row * DPCA + j] = (float)v;
    }
  }
  return x;
}

static double known_variance(int k) { return AMP[k] * AMP[k] / 4; }

/* ---------------------------------------------------------------- properties */

static void column_mean_equals_the_naive_mean(void **state)
{
  (void)state;
  const int64_t sizes[] = {1, 3, 255, 256, 257, 700};
  const int64_t d       = 5;
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    int64_t n    = sizes[k];
    float  *x    = random_matrix(n, d, 10.0, -2.0);
    bo_rows rows = all_rows(n);
    double  mean[5], naive[5] = {0};
    assert_int_equal(bo_stats_column_mean(PETSC_COMM_SELF, &rows, d, x, mean), 0);
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < d; j++) naive[j] += x[i * d + j];
    for (int64_t j = 0; j < d; j++) {
      char what[64];
      snprintf(what, sizeof what, "n=%lld column %lld mean", (long long)n, (long long)j);
      assert_close(mean[j], naive[j] / (double)n, 1e-12, what);
    }
    free(x);
  }
}

static void column_mean_of_a_constant_column_is_that_constant_exactly(void **state)
{
  (void)state;
  const int64_t n = 1000, d = 2;
  float        *x = malloc(sizeof *x * n * d);
  for (int64_t i = 0; i < n; i++) {
    x[i * d]     = 0.1f;
    x[i * d + 1] = (float)(i % 2 ? -3.75 : 3.75);
  }
  bo_rows rows = all_rows(n);
  double  mean[2];
  assert_int_equal(bo_stats_column_mean(PETSC_COMM_SELF, &rows, d, x, mean), 0);
  assert_true(mean[0] == (double)0.1f);
  assert_true(mean[1] == 0.0);
  free(x);
}

static void row_statistics_match_the_naive_norms(void **state)
{
  (void)state;
  const int64_t n = 600, d = 7;
  float        *x = random_matrix(n, d, 3.0, 0.5);
  for (int64_t j = 0; j < d; j++) x[100 * d + j] = 0; /* a zero row: norm 0 is the minimum */
  bo_rows      rows = all_rows(n);
  bo_row_stats s;
  double       lo = INFINITY, hi = 0, sum = 0;
  assert_int_equal(bo_stats_rows(PETSC_COMM_SELF, &rows, d, x, &s), 0);
  for (int64_t i = 0; i < n; i++) {
    double nrm = naive_norm(x + i * d, d);
    lo = fmin(lo, nrm);
    hi = fmax(hi, nrm);
    sum += nrm;
  }
  assert_true(s.min_norm == 0.0);
  assert_close(s.min_norm, lo, 0, "min norm");
  assert_close(s.max_norm, hi, 1e-12 * hi, "max norm");
  assert_close(s.mean_norm, sum / n, 1e-12 * hi, "mean norm");
  assert_int_equal(s.nonfinite_values, 0);
  assert_int_equal(s.nonfinite_rows, 0);
  assert_int_equal(s.first_nonfinite_row, -1);
  free(x);
}

static void nonfinite_rows_are_counted_and_left_out_of_the_norms(void **state)
{
  (void)state;
  const int64_t n = 600, d = 4;
  float        *x = random_matrix(n, d, 1.0, 0.0);
  x[3 * d + 1]    = NAN;
  bo_rows      rows = all_rows(n);
  bo_row_stats s;
  double       lo = INFINITY, hi = 0, sum = 0;
  assert_int_equal(bo_stats_rows(PETSC_COMM_SELF, &rows, d, x, &s), 0);
  assert_int_equal(s.nonfinite_values, 1);
  assert_int_equal(s.nonfinite_rows, 1);
  assert_int_equal(s.first_nonfinite_row, 3);
  for (int64_t i = 0; i < n; i++) {
    if (i == 3) continue;
    double nrm = naive_norm(x + i * d, d);
    lo = fmin(lo, nrm);
    hi = fmax(hi, nrm);
    sum += nrm;
  }
  assert_true(isfinite(s.mean_norm));
  assert_close(s.min_norm, lo, 1e-12 * hi, "min norm without row 3");
  assert_close(s.max_norm, hi, 1e-12 * hi, "max norm without row 3");
  assert_close(s.mean_norm, sum / (n - 1), 1e-12 * hi, "mean norm over the 599 finite rows");

  /* more bad values: two in row 300 (NaN and -Inf), one +Inf in row 599; row 3 stays the first */
  x[300 * d]     = NAN;
  x[300 * d + 3] = -INFINITY;
  x[599 * d + 2] = INFINITY;
  assert_int_equal(bo_stats_rows(PETSC_COMM_SELF, &rows, d, x, &s), 0);
  assert_int_equal(s.nonfinite_values, 4);
  assert_int_equal(s.nonfinite_rows, 3);
  assert_int_equal(s.first_nonfinite_row, 3);
  assert_true(isfinite(s.max_norm) && isfinite(s.mean_norm));
  free(x);
}

static void pca_recovers_known_variances_and_axes_in_descending_order(void **state)
{
  (void)state;
  float  *x    = known_covariance_data();
  bo_rows rows = all_rows(NPCA);
  double  mean[DPCA];
  bo_pca  pca;
  /* axes by decreasing variance: amplitudes 6 (h1), 4 (h2), 2 (h0) */
  const int order[3] = {1, 2, 0};

  assert_int_equal(bo_stats_column_mean(PETSC_COMM_SELF, &rows, DPCA, x, mean), 0);
  for (int j = 0; j < DPCA; j++) assert_close(mean[j], MU[j], 1e-15, "mean");
  assert_int_equal(bo_pca_fit(PETSC_COMM_SELF, &rows, DPCA, x, mean, 3, NULL, &pca), 0);
  assert_int_equal(pca.d, DPCA);
  assert_int_equal(pca.ncomp, 3);
  assert_true(pca.rank_invariant);
  for (int k = 0; k < 3; k++) {
    double want = known_variance(order[k]), dot = 0, norm = 0;
    char   what[64];
    snprintf(what, sizeof what, "variance %d", k);
    assert_close(pca.variance[k], want, 1e-12 * want, what);
    for (int j = 0; j < DPCA; j++) {
      dot += pca.components[k * DPCA + j] * H[order[k]][j];
      norm += pca.components[k * DPCA + j] * pca.components[k * DPCA + j];
    }
    if (!(fabs(dot) > 1 - 1e-10)) fail_msg("component %d: |dot| with the true axis = %.17g", k, fabs(dot));
    assert_close(norm, 1.0, 1e-12, "unit component");
    if (k) assert_true(pca.variance[k] < pca.variance[k - 1]);
  }
  double trace = known_variance(0) + known_variance(1) + known_variance(2);
  assert_close(pca.total_variance, trace, 1e-12 * trace, "total variance");
  for (int j = 0; j < DPCA; j++) assert_true(pca.mean[j] == mean[j]);
  assert_int_equal(bo_pca_destroy(&pca), 0);
  free(x);
}

static void pca_components_are_orthonormal_on_random_data(void **state)
{
  (void)state;
  const int64_t n = 777, d = 9, ncomp = 5;
  float        *x    = random_matrix(n, d, 2.0, 1.0);
  bo_rows       rows = all_rows(n);
  double        mean[9];
  bo_pca        pca;
  bo_eigen_opts lapack = {BO_EIGEN_LAPACK, 0, 0, 0};
  assert_int_equal(bo_stats_column_mean(PETSC_COMM_SELF, &rows, d, x, mean), 0);
  assert_int_equal(bo_pca_fit(PETSC_COMM_SELF, &rows, d, x, mean, ncomp, &lapack, &pca), 0);
  for (int64_t a = 0; a < ncomp; a++)
    for (int64_t b = 0; b < ncomp; b++) {
      double dot = 0;
      for (int64_t j = 0; j < d; j++) dot += pca.components[a * d + j] * pca.components[b * d + j];
      assert_close(dot, a == b, 1e-12, "component dot product");
    }
  /* the covariance along component k (computed naively) is its variance */
  for (int64_t k = 0; k < ncomp; k++) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
      double p = 0;
      for (int64_t j = 0; j < d; j++) p += ((double)x[i * d + j] - mean[j]) * pca.components[k * d + j];
      s += p * p;
    }
    assert_close(pca.variance[k], s / (n - 1), 1e-10 * pca.variance[0], "variance along a component");
  }
  assert_int_equal(bo_pca_destroy(&pca), 0);
  free(x);
}

static void projections_of_centred_data_have_the_eigenvalues_as_variances(void **state)
{
  (void)state;
  float  *x    = known_covariance_data();
  bo_rows rows = all_rows(NPCA);
  double  mean[DPCA];
  bo_pca  pca;
  float  *y = malloc(sizeof *y * NPCA * 3);

  assert_int_equal(bo_stats_column_mean(PETSC_COMM_SELF, &rows, DPCA, x, mean), 0);
  assert_int_equal(bo_pca_fit(PETSC_COMM_SELF, &rows, DPCA, x, mean, 3, NULL, &pca), 0);
  assert_int_equal(bo_pca_project(&rows, DPCA, x, mean, &pca, y), 0);
  for (int a = 0; a < 3; a++) {
    double m = 0;
    for (int i = 0; i < NPCA; i++) m += y[i * 3 + a];
    assert_close(m / NPCA, 0.0, 1e-6, "projected column mean");
    for (int b = 0; b < 3; b++) {
      double c = 0;
      for (int i = 0; i < NPCA; i++) c += (double)y[i * 3 + a] * y[i * 3 + b];
      c /= NPCA - 1;
      if (a == b) assert_close(c, pca.variance[a], 1e-6 * pca.variance[a], "projected variance");
      else assert_close(c, 0.0, 1e-6 * pca.variance[0], "projected covariance");
    }
  }
  /* projecting data already centred (centre NULL) gives the same coordinates */
  float *xc = malloc(sizeof *xc * NPCA * DPCA), *y2 = malloc(sizeof *y2 * NPCA * 3);
  memcpy(xc, x, sizeof *xc * NPCA * DPCA);
  bo_rows_subtract(NPCA, DPCA, mean, xc);
  assert_int_equal(bo_pca_project(&rows, DPCA, xc, NULL, &pca, y2), 0);
  assert_memory_equal(y, y2, sizeof *y * NPCA * 3); /* mean and data are exact here */
  assert_int_equal(bo_pca_destroy(&pca), 0);
  free(x);
  free(xc);
  free(y);
  free(y2);
}

static void projected_rows_do_not_depend_on_the_partition(void **state)
{
  (void)state;
  /* Rows projected as part of a rank's block equal the same rows projected as the whole. */
  const int64_t n = 1000, d = 6, ncomp = 3;
  float        *x    = random_matrix(n, d, 1.0, 0.0);
  bo_rows       rows = all_rows(n);
  double        mean[6];
  bo_pca        pca;
  float        *whole = malloc(sizeof *whole * n * ncomp), *part = malloc(sizeof *part * n * ncomp);
  assert_int_equal(bo_stats_column_mean(PETSC_COMM_SELF, &rows, d, x, mean), 0);
  assert_int_equal(bo_pca_fit(PETSC_COMM_SELF, &rows, d, x, mean, ncomp, NULL, &pca), 0);
  assert_int_equal(bo_pca_project(&rows, d, x, mean, &pca, whole), 0);
  for (int P = 2; P <= 5; P++)
    for (int r = 0; r < P; r++) {
      bo_rows mine;
      bo_rows_partition(n, r, P, &mine);
      assert_int_equal(bo_pca_project(&mine, d, x + mine.lo * d, mean, &pca, part + mine.lo * ncomp), 0);
    }
  assert_memory_equal(whole, part, sizeof *whole * n * ncomp);
  assert_int_equal(bo_pca_destroy(&pca), 0);
  free(x);
  free(whole);
  free(part);
}

static void l2_normalize_gives_unit_rows_and_keeps_zero_rows_zero(void **state)
{
  (void)state;
  const int64_t n = 50, d = 6;
  float        *x    = random_matrix(n, d, 5.0, -1.0);
  float        *orig = malloc(sizeof *orig * n * d);
  for (int64_t j = 0; j < d; j++) x[7 * d + j] = 0;
  x[8 * d + 2] = -0.0f;
  for (int64_t j = 0; j < d; j++) x[9 * d + j] = j == 4 ? 1e-30f : 0; /* tiny but not zero */
  memcpy(orig, x, sizeof *orig * n * d);
  bo_rows_l2_normalize(n, d, x);
  for (int64_t i = 0; i < n; i++) {
    double nrm = naive_norm(x + i * d, d);
    if (i == 7) {
      for (int64_t j = 0; j < d; j++) assert_true(x[i * d + j] == 0);
      continue;
    }
    assert_close(nrm, 1.0, 1e-6, "normalized row norm");
    /* the direction is kept: x_new = x_old / |x_old| */
    double on = naive_norm(orig + i * d, d);
    for (int64_t j = 0; j < d; j++) assert_close(x[i * d + j], orig[i * d + j] / on, 1e-6, "normalized entry");
  }
  free(x);
  free(orig);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("the column mean equals the naive double mean to 1e-12 (n across tile edges)", column_mean_equals_the_naive_mean),
    PROPERTY("the column mean of a constant column is that constant exactly", column_mean_of_a_constant_column_is_that_constant_exactly),
    PROPERTY("row norm min/max/mean match the naive norms to 1e-12", row_statistics_match_the_naive_norms),
    PROPERTY("non-finite rows are counted (first one 3) and left out of the norm statistics", nonfinite_rows_are_counted_and_left_out_of_the_norms),
    PROPERTY("PCA of data with variances 9, 4, 1 along known axes recovers them (|dot| > 1-1e-10), in descending order", pca_recovers_known_variances_and_axes_in_descending_order),
    PROPERTY("PCA components are orthonormal and each variance is the data's variance along it", pca_components_are_orthonormal_on_random_data),
    PROPERTY("projections of the centred data have the eigenvalues as variances and no covariance", projections_of_centred_data_have_the_eigenvalues_as_variances),
    PROPERTY("a projected row is bit-identical whichever rank's block it is projected in", projected_rows_do_not_depend_on_the_partition),
    PROPERTY("L2 normalisation gives unit rows, keeps directions and leaves zero rows zero", l2_normalize_gives_unit_rows_and_keeps_zero_rows_zero),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
