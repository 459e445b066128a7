/* test_eigen.c - properties of bo_eigen_sym on one rank (both the LAPACK and ScaLAPACK paths). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boundopt/eigen.h"

#define PROPERTY(name, fn) {name, fn, NULL, NULL, NULL}

static const bo_eigen_opts methods[] = {
  {BO_EIGEN_LAPACK, 0, 0, 0},
  {BO_EIGEN_SCALAPACK, 0, 0, 8}, /* 1x1 grid, several blocks per dimension */
  {BO_EIGEN_SCALAPACK, 0, 0, 0}, /* default block 64: larger than every n here */
};
#define NMETHODS (sizeof methods / sizeof methods[0])

/* ---------------------------------------------------------------- fixtures */

static double uniform_pm1(uint64_t *state) /* deterministic, in [-1, 1) */
{
  *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(*state >> 11) / 4503599627370496.0 - 1.0;
}

static double *random_symmetric(int n, uint64_t seed)
{
  double *A = malloc(sizeof *A * n * n);
  for (int i = 0; i < n; i++)
    for (int j = i; j < n; j++) A[i * n + j] = A[j * n + i] = uniform_pm1(&seed);
  return A;
}

/* B B^T / n + I with B uniform in [-1,1): SPD with eigenvalues in about [1, 5]. */
static double *random_spd(int n, uint64_t seed)
{
  double *B = malloc(sizeof *B * n * n), *A = malloc(sizeof *A * n * n);
  for (int i = 0; i < n * n; i++) B[i] = uniform_pm1(&seed);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int k = 0; k < n; k++) s += B[i * n + k] * B[j * n + k];
      A[i * n + j] = s / n + (i == j);
    }
  free(B);
  return A;
}

static void solve_or_fail(int n, const double *A, int nwant, const bo_eigen_opts *opts, double *w, double *Z)
{
  assert_int_equal(bo_eigen_sym(PETSC_COMM_WORLD, n, A, nwant, opts, w, Z), 0);
}

static PetscErrorCode solve_expecting_error(int n, const double *A, int nwant, const bo_eigen_opts *opts)
{
  double        *w = malloc(sizeof *w * (n > 0 ? n : 1) + 64), *Z = malloc(sizeof *Z * (n > 0 ? n * n : 1) + 64);
  PetscErrorCode ierr;

  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  ierr = bo_eigen_sym(PETSC_COMM_WORLD, n, A, nwant, opts, w, Z);
  PetscPopErrorHandler();
  free(w);
  free(Z);
  return ierr;
}

static double max_residual(int n, const double *A, int nwant, const double *w, const double *Z)
{
  double worst = 0;
  for (int k = 0; k < nwant; k++)
    for (int i = 0; i < n; i++) {
      double az = 0;
      for (int j = 0; j < n; j++) az += A[i * n + j] * Z[k * n + j];
      worst = fmax(worst, fabs(az - w[k] * Z[k * n + i]));
    }
  return worst;
}

static double max_orthonormality_error(int n, int nwant, const double *Z)
{
  double worst = 0;
  for (int a = 0; a < nwant; a++)
    for (int b = 0; b < nwant; b++) {
      double dot = 0;
      for (int i = 0; i < n; i++) dot += Z[a * n + i] * Z[b * n + i];
      worst = fmax(worst, fabs(dot - (a == b)));
    }
  return worst;
}

/* ---------------------------------------------------------------- properties */

static void eigenpairs_satisfy_Az_eq_wz(void **state)
{
  enum { N = 50 };
  double *A = random_spd(N, 11), w[N], Z[N * N];
  (void)state;
  for (size_t m = 0; m < NMETHODS; m++) {
    solve_or_fail(N, A, N, &methods[m], w, Z);
    assert_true(max_residual(N, A, N, w, Z) < 1e-12);
  }
  free(A);
}

static void eigenvectors_are_orthonormal(void **state)
{
  enum { N = 50 };
  double *A = random_symmetric(N, 12), w[N], Z[N * N];
  (void)state;
  for (size_t m = 0; m < NMETHODS; m++) {
    solve_or_fail(N, A, N, &methods[m], w, Z);
    assert_true(max_orthonormality_error(N, N, Z) < 1e-12);
  }
  free(A);
}

static void eigenvalues_descend_and_are_the_largest(void **state)
{
  enum { N = 50, K = 10 };
  double *A = random_symmetric(N, 13), wall[N], Zall[N * N], w[K], Z[K * N];
  (void)state;
  for (size_t m = 0; m < NMETHODS; m++) {
    solve_or_fail(N, A, N, &methods[m], wall, Zall);
    solve_or_fail(N, A, K, &methods[m], w, Z);
    for (int k = 0; k + 1 < N; k++) assert_true(wall[k] >= wall[k + 1]);
    for (int k = 0; k < K; k++) assert_true(fabs(w[k] - wall[k]) < 1e-13);
    assert_true(max_residual(N, A, K, w, Z) < 1e-12);
  }
  free(A);
}

static void sign_rule_makes_largest_magnitude_entry_positive(void **state)
{
  enum { N = 40 };
  double *A = random_symmetric(N, 14), w[N], Z[N * N];
  (void)state;
  for (size_t m = 0; m < NMETHODS; m++) {
    solve_or_fail(N, A, N, &methods[m], w, Z);
    for (int k = 0; k < N; k++) {
      int imax = 0;
      for (int i = 1; i < N; i++)
        if (fabs(Z[k * N + i]) > fabs(Z[k * N + imax])) imax = i;
      assert_true(Z[k * N + imax] > 0);
    }
  }
  free(A);
}

static void diagonal_matrix_gives_sorted_diagonal_and_unit_vectors(void **state)
{
  enum { N = 5 };
  const double diag[N] = {3, -1, 5, 2, 0}, want_w[N] = {5, 3, 2, 0, -1};
  const int    want_index[N] = {2, 0, 3, 4, 1};
  double       A[N * N] = {0}, w[N], Z[N * N];
  (void)state;
  for (int i = 0; i < N; i++) A[i * N + i] = diag[i];
  for (size_t m = 0; m < NMETHODS; m++) {
    solve_or_fail(N, A, N, &methods[m], w, Z);
    for (int k = 0; k < N; k++) {
      assert_true(fabs(w[k] - want_w[k]) < 1e-15);
      for (int i = 0; i < N; i++) assert_true(fabs(Z[k * N + i] - (i == want_index[k])) < 1e-15);
    }
  }
}

static void one_by_one_gives_its_entry_and_plus_one(void **state)
{
  const double A[1] = {-2.5};
  double       w[1], Z[1];
  (void)state;
  for (size_t m = 0; m < NMETHODS; m++) {
    solve_or_fail(1, A, 1, &methods[m], w, Z);
    assert_true(w[0] == -2.5);
    assert_true(Z[0] == 1.0);
  }
}

static void scalapack_on_one_rank_agrees_with_lapack(void **state)
{
  enum { N = 60 };
  double *A = random_spd(N, 15), w1[N], Z1[N * N], w2[N], Z2[N * N];
  (void)state;
  solve_or_fail(N, A, N, &methods[0], w1, Z1);
  solve_or_fail(N, A, N, &methods[1], w2, Z2);
  for (int i = 0; i < N; i++) assert_true(fabs(w1[i] - w2[i]) < 1e-12);
  for (int i = 0; i < N * N; i++) assert_true(fabs(Z1[i] - Z2[i]) < 1e-10);
  free(A);
}

static void only_the_upper_triangle_is_read_and_A_is_untouched(void **state)
{
  enum { N = 30 };
  double *A = random_symmetric(N, 16), *junk = malloc(sizeof *junk * N * N), w1[N], Z1[N * N], w2[N], Z2[N * N];
  (void)state;
  memcpy(junk, A, sizeof *A * N * N);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < i; j++) junk[i * N + j] = NAN;
  for (size_t m = 0; m < NMETHODS; m++) {
    double *copy = malloc(sizeof *copy * N * N);
    memcpy(copy, junk, sizeof *copy * N * N);
    solve_or_fail(N, A, N, &methods[m], w1, Z1);
    solve_or_fail(N, junk, N, &methods[m], w2, Z2);
    assert_memory_equal(w1, w2, sizeof w1);
    assert_memory_equal(Z1, Z2, sizeof Z1);
    assert_memory_equal(copy, junk, sizeof *copy * N * N); /* NaN patterns compare bytewise */
    free(copy);
  }
  free(A);
  free(junk);
}

static void null_opts_means_lapack(void **state)
{
  enum { N = 20 };
  double *A = random_symmetric(N, 17), w1[N], Z1[N * N], w2[N], Z2[N * N];
  (void)state;
  solve_or_fail(N, A, N, NULL, w1, Z1);
  solve_or_fail(N, A, N, &methods[0], w2, Z2);
  assert_memory_equal(w1, w2, sizeof w1);
  assert_memory_equal(Z1, Z2, sizeof Z1);
  free(A);
}

static void nwant_greater_than_n_is_refused(void **state)
{
  const double A[4] = {1, 0, 0, 1};
  (void)state;
  for (size_t m = 0; m < NMETHODS; m++) assert_int_equal(solve_expecting_error(2, A, 3, &methods[m]), PETSC_ERR_USER_INPUT);
}

static void nwant_below_one_is_refused(void **state)
{
  const double A[4] = {1, 0, 0, 1};
  (void)state;
  assert_int_equal(solve_expecting_error(2, A, 0, NULL), PETSC_ERR_USER_INPUT);
}

static void n_below_one_is_refused(void **state)
{
  const double A[1] = {1};
  (void)state;
  assert_int_equal(solve_expecting_error(0, A, 0, NULL), PETSC_ERR_USER_INPUT);
  assert_int_equal(solve_expecting_error(-3, A, 1, NULL), PETSC_ERR_USER_INPUT);
}

static void grid_larger_than_comm_is_refused(void **state)
{
  const double        A[4] = {1, 0, 0, 1};
  PetscMPIInt         size;
  const bo_eigen_opts half = {BO_EIGEN_SCALAPACK, 1, 0, 0};
  (void)state;
  MPI_Comm_size(PETSC_COMM_WORLD, &size);
  const bo_eigen_opts too_big = {BO_EIGEN_SCALAPACK, size + 1, 1, 0};
  assert_int_equal(solve_expecting_error(2, A, 1, &too_big), PETSC_ERR_USER_INPUT);
  assert_int_equal(solve_expecting_error(2, A, 1, &half), PETSC_ERR_USER_INPUT);
}

static void bad_method_or_block_is_refused(void **state)
{
  const double        A[4]      = {1, 0, 0, 1};
  const bo_eigen_opts bad_block = {BO_EIGEN_SCALAPACK, 0, 0, -1};
  bo_eigen_opts       bad_method;
  (void)state;
  memset(&bad_method, 0, sizeof bad_method);
  bad_method.method = (bo_eigen_method)7;
  assert_int_equal(solve_expecting_error(2, A, 1, &bad_block), PETSC_ERR_USER_INPUT);
  assert_int_equal(solve_expecting_error(2, A, 1, &bad_method), PETSC_ERR_USER_INPUT);
}

static void non_finite_entry_in_upper_triangle_is_refused(void **state)
{
  const double A[4] = {1, INFINITY, INFINITY, 1}, B[4] = {1, NAN, 0, 1};
  (void)state;
  for (size_t m = 0; m < NMETHODS; m++) {
    assert_int_equal(solve_expecting_error(2, A, 1, &methods[m]), PETSC_ERR_USER_INPUT);
    assert_int_equal(solve_expecting_error(2, B, 1, &methods[m]), PETSC_ERR_USER_INPUT);
  }
}

static void null_arrays_are_refused(void **state)
{
  (void)state;
  assert_int_equal(solve_expecting_error(2, NULL, 1, NULL), PETSC_ERR_USER_INPUT);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("eigenpairs satisfy A z = w z to 1e-12 on a random SPD 50x50", eigenpairs_satisfy_Az_eq_wz),
    PROPERTY("eigenvectors are orthonormal to 1e-12", eigenvectors_are_orthonormal),
    PROPERTY("eigenvalues come out in descending order and are the largest of the spectrum", eigenvalues_descend_and_are_the_largest),
    PROPERTY("sign rule makes the largest-magnitude entry positive", sign_rule_makes_largest_magnitude_entry_positive),
    PROPERTY("a diagonal matrix gives its sorted diagonal and unit vectors", diagonal_matrix_gives_sorted_diagonal_and_unit_vectors),
    PROPERTY("a 1x1 matrix gives its entry and the eigenvector +1", one_by_one_gives_its_entry_and_plus_one),
    PROPERTY("ScaLAPACK on one rank agrees with LAPACK", scalapack_on_one_rank_agrees_with_lapack),
    PROPERTY("only the upper triangle of A is read and A is left untouched", only_the_upper_triangle_is_read_and_A_is_untouched),
    PROPERTY("NULL opts means LAPACK", null_opts_means_lapack),
    PROPERTY("nwant > n is refused", nwant_greater_than_n_is_refused),
    PROPERTY("nwant < 1 is refused", nwant_below_one_is_refused),
    PROPERTY("n < 1 is refused", n_below_one_is_refused),
    PROPERTY("a grid larger than comm or half-given is refused", grid_larger_than_comm_is_refused),
    PROPERTY("an unknown method or a negative block is refused", bad_method_or_block_is_refused),
    PROPERTY("a non-finite entry in the upper triangle is refused", non_finite_entry_in_upper_triangle_is_refused),
    PROPERTY("NULL arrays are refused", null_arrays_are_refused),
  };
  int failed;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  failed = cmocka_run_group_tests_name("eigen", tests, NULL, NULL);
  PetscCall(PetscFinalize());
  return failed ? 1 : 0;
}
