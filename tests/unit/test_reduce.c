/* test_reduce.c - properties of the exact sum (reduce.h): order independence, exactness, bounds. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <petscsys.h>

#include "boundopt/reduce.h"

#define PROPERTY(name, fn) {name, fn, NULL, NULL, NULL}

enum { NTILES = 300, LEN = 5 };

/* ---------------------------------------------------------------- fixtures */

static uint64_t lcg(uint64_t *s)
{
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 11;
}

/* Tile partials of mixed signs spanning 16 decades, so a plain double sum depends on the order. */
static void make_partials(double *v, int ntiles, int len, uint64_t seed)
{
  for (int t = 0; t < ntiles; t++)
    for (int j = 0; j < len; j++) {
      double u    = (double)lcg(&seed) / 9007199254740992.0; /* [0, 1) */
      double e    = (double)(lcg(&seed) % 17) - 8;           /* 1e-8 .. 1e8 */
      v[t * len + j] = (lcg(&seed) & 1 ? -1 : 1) * (0.5 + u) * pow(10.0, e);
    }
}

static double bound_of(const double *v, int ntiles, int len)
{
  double b = 0;
  for (int j = 0; j < len; j++) {
    double s = 0;
    for (int t = 0; t < ntiles; t++) s += fabs(v[t * len + j]);
    b = fmax(b, s);
  }
  return b * (1 + 1e-12);
}

static void shuffle(int *order, int n, uint64_t seed)
{
  for (int i = 0; i < n; i++) order[i] = i;
  for (int i = n - 1; i > 0; i--) {
    int k = (int)(lcg(&seed) % (uint64_t)(i + 1)), tmp = order[i];
    order[i] = order[k];
    order[k] = tmp;
  }
}

/* Sum the tiles listed in order[0..count) into a fresh accumulator; out[len]. */
static void exact_sum_in_order(const double *v, int len, double bound, const int *order, int count, double *out)
{
  bo_exactsum s;
  assert_int_equal(bo_exactsum_create(len, bound, &s), 0);
  for (int i = 0; i < count; i++) assert_int_equal(bo_exactsum_add(s, v + order[i] * len), 0);
  assert_int_equal(bo_exactsum_allreduce(PETSC_COMM_SELF, s, out), 0);
  assert_int_equal(bo_exactsum_destroy(&s), 0);
  assert_null(s);
}

/* Like exact_sum_of, but an error is returned (quietly) instead of failing the test. */
static PetscErrorCode try_exact_sum(const double *v, int count, double bound, double *out)
{
  bo_exactsum    s;
  PetscErrorCode ierr;

  assert_int_equal(bo_exactsum_create(1, bound, &s), 0);
  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  ierr = 0;
  for (int i = 0; i < count && !ierr; i++) ierr = bo_exactsum_add(s, v + i);
  if (!ierr) ierr = bo_exactsum_allreduce(PETSC_COMM_SELF, s, out);
  PetscPopErrorHandler();
  assert_int_equal(bo_exactsum_destroy(&s), 0);
  return ierr;
}

static double exact_sum_of(const double *v, int count, double bound)
{
  int    order[16];
  double out;
  for (int i = 0; i < count; i++) order[i] = i;
  exact_sum_in_order(v, 1, bound, order, count, &out);
  return out;
}

static PetscErrorCode add_expecting_error(double bound, double addend, char *msg, size_t len)
{
  bo_exactsum    s;
  PetscErrorCode ierr;
  char          *specific = NULL;

  assert_int_equal(bo_exactsum_create(1, bound, &s), 0);
  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  ierr = bo_exactsum_add(s, &addend);
  PetscPopErrorHandler();
  PetscErrorMessage(ierr, NULL, &specific);
  snprintf(msg, len, "%s", specific ? specific : "");
  assert_int_equal(bo_exactsum_destroy(&s), 0);
  return ierr;
}

/* ---------------------------------------------------------------- properties */

static void sum_is_bit_identical_for_every_order_of_the_tiles(void **state)
{
  (void)state;
  double *v = malloc(sizeof *v * NTILES * LEN), ref[LEN], out[LEN], naive0[LEN];
  int     order[NTILES], naive_differs = 0;
  double  bound;

  make_partials(v, NTILES, LEN, 42);
  bound = bound_of(v, NTILES, LEN);
  shuffle(order, NTILES, 0);
  exact_sum_in_order(v, LEN, bound, order, NTILES, ref);
  for (int j = 0; j < LEN; j++) {
    naive0[j] = 0;
    for (int t = 0; t < NTILES; t++) naive0[j] += v[order[t] * LEN + j];
  }
  for (uint64_t trial = 1; trial <= 50; trial++) {
    shuffle(order, NTILES, trial);
    exact_sum_in_order(v, LEN, bound, order, NTILES, out);
    assert_memory_equal(out, ref, sizeof ref);
    for (int j = 0; j < LEN; j++) {
      double naive = 0;
      for (int t = 0; t < NTILES; t++) naive += v[order[t] * LEN + j];
      if (memcmp(&naive, &naive0[j], sizeof naive)) naive_differs = 1;
    }
  }
  /* the data is hard enough that a plain double sum does change with the order */
  assert_true(naive_differs);
  free(v);
}

static void cancellation_is_exact(void **state)
{
  (void)state;
  const double a[] = {1e16, 1, -1e16};
  const double b[] = {1e16, 1, -1e16, 1, 1e-3, -1e-3};
  /* the plain double sums lose the ones */
  volatile double naive = a[0] + a[1] + a[2];
  assert_true(naive == 0.0);
  assert_true(exact_sum_of(a, 3, 2e16 + 1) == 1.0);
  assert_true(exact_sum_of(b, 6, 2e16 + 3) == 2.0);
}

static void total_is_rounded_once(void **state)
{
  (void)state;
  /* 1 + 2^-53 + 2^-53 = 1 + 2^-52 exactly, a double; adding left to right rounds to 1 twice. */
  const double v[] = {1.0, 0x1p-53, 0x1p-53};
  volatile double naive = (v[0] + v[1]) + v[2];
  assert_true(naive == 1.0);
  assert_true(exact_sum_of(v, 3, 2.0) == 1.0 + 0x1p-52);
  /* fifteen terms of 1/16 ulp that a double sum drops one by one: exactly 15/16 ulp, rounded up */
  double many[16];
  many[0] = 1.0;
  for (int i = 1; i < 16; i++) many[i] = 0x1p-56;
  volatile double naive_many = 0;
  for (int i = 0; i < 16; i++) naive_many += many[i];
  assert_true(naive_many == 1.0);
  assert_true(exact_sum_of(many, 16, 2.0) == nextafter(1.0, 2.0));
}

static void negative_values_sum_exactly(void **state)
{
  (void)state;
  const double v[] = {-3.25, -0.125, 1.5, -1e-10, 1e-10, -7.0};
  assert_true(exact_sum_of(v, 6, 12.0) == -8.875);
  const double w[] = {-1e300, -1e300, 1e300};
  assert_true(exact_sum_of(w, 3, 3e300) == -1e300);
}

static void bounds_across_the_double_range_keep_addends_exact(void **state)
{
  (void)state;
  /* The grid follows the bound: a quarter of the bound, added twice and subtracted once, gives a
   * quarter of the bound exactly, for bounds from 2^-1020 to 2^1020 (and a non-power of two). */
  for (int e = -1020; e <= 1020; e += 4) {
    const double bound = ldexp(1.0, e) * 1.75, q = bound / 4;
    const double v[]   = {q, -q, q, 0.0};
    double       got   = NAN;
    if (try_exact_sum(v, 4, bound, &got)) fail_msg("bound %a: adding %a was refused", bound, q);
    if (got != q) fail_msg("bound %a: %a - %a + %a summed to %a", bound, q, q, q, got);
  }
}

static void zero_bound_sums_zeros_to_zero(void **state)
{
  (void)state;
  const double z[] = {0.0, -0.0, 0.0};
  double       out = -1;
  assert_true(exact_sum_of(z, 3, 0.0) == 0.0);
  /* and an empty sum (no tile on this rank) of any length is zero */
  bo_exactsum s;
  assert_int_equal(bo_exactsum_create(1, 0.0, &s), 0);
  assert_int_equal(bo_exactsum_allreduce(PETSC_COMM_SELF, s, &out), 0);
  assert_true(out == 0.0);
  assert_int_equal(bo_exactsum_destroy(&s), 0);
  assert_int_equal(bo_exactsum_create(0, 5.0, &s), 0);
  assert_int_equal(bo_exactsum_allreduce(PETSC_COMM_SELF, s, &out), 0);
  assert_int_equal(bo_exactsum_destroy(&s), 0);
}

/* A total kept by replacing tiles' partials (held per tile) equals the fresh sum of the final
 * partials, bit for bit: the replaced partials leave no trace. */
static void replaced_addends_leave_no_trace(void **state)
{
  double     *v = malloc(sizeof *v * NTILES * LEN), *w = malloc(sizeof *w * NTILES * LEN), fresh[LEN], kept[LEN], bound;
  int         order[NTILES];
  uint64_t    seed = 77;
  bo_exactsum total, held;

  (void)state;
  make_partials(v, NTILES, LEN, 5);
  make_partials(w, NTILES, LEN, 6);
  bound = fmax(bound_of(v, NTILES, LEN), bound_of(w, NTILES, LEN));
  assert_int_equal(bo_exactsum_create(LEN, bound, &total), 0);
  assert_int_equal(bo_exactsum_create(NTILES * LEN, bound, &held), 0);
  for (int t = 0; t < NTILES; t++) assert_int_equal(bo_exactsum_replace_at(total, 0, LEN, v + t * LEN, held, t * LEN), 0);
  for (int round = 0; round < 3; round++) /* a third of the tiles change, some twice */
    for (int t = 0; t < NTILES; t++)
      if (lcg(&seed) % 3 == 0) {
        memcpy(v + t * LEN, w + ((t + round) % NTILES) * LEN, sizeof *v * LEN);
        assert_int_equal(bo_exactsum_replace_at(total, 0, LEN, v + t * LEN, held, t * LEN), 0);
      }
  assert_int_equal(bo_exactsum_allreduce(PETSC_COMM_SELF, total, kept), 0);
  for (int t = 0; t < NTILES; t++) order[t] = t;
  exact_sum_in_order(v, LEN, bound, order, NTILES, fresh);
  assert_memory_equal(kept, fresh, sizeof fresh);
  { /* another grid, or a range outside either sum, is refused */
    bo_exactsum    other;
    PetscErrorCode ierr[3];
    assert_int_equal(bo_exactsum_create(NTILES * LEN, bound * 4, &other), 0);
    PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
    ierr[0] = bo_exactsum_replace_at(total, 0, LEN, v, other, 0);
    ierr[1] = bo_exactsum_replace_at(total, 1, LEN, v, held, 0);
    ierr[2] = bo_exactsum_replace_at(total, 0, LEN, v, held, NTILES * LEN - 1);
    PetscPopErrorHandler();
    for (int i = 0; i < 3; i++) assert_int_equal(ierr[i], PETSC_ERR_LIB);
    assert_int_equal(bo_exactsum_destroy(&other), 0);
  }
  assert_int_equal(bo_exactsum_destroy(&total), 0);
  assert_int_equal(bo_exactsum_destroy(&held), 0);
  free(v); free(w);
}

static void addend_above_the_bound_is_refused(void **state)
{
  (void)state;
  char msg[1024];
  assert_int_equal(add_expecting_error(10.0, 1000.0, msg, sizeof msg), PETSC_ERR_LIB);
  if (!strstr(msg, "bound")) fail_msg("message \"%s\" does not mention the bound", msg);
  if (!strstr(msg, "expected")) fail_msg("message \"%s\" has no 'expected' part", msg);
  assert_int_equal(add_expecting_error(10.0, -1000.0, msg, sizeof msg), PETSC_ERR_LIB);
  assert_int_equal(add_expecting_error(1.0, 2.0, msg, sizeof msg), PETSC_ERR_LIB);
  assert_int_equal(add_expecting_error(0.0, 1.0, msg, sizeof msg), PETSC_ERR_LIB);
  assert_int_equal(add_expecting_error(1.0, NAN, msg, sizeof msg), PETSC_ERR_LIB);
  assert_int_equal(add_expecting_error(1.0, INFINITY, msg, sizeof msg), PETSC_ERR_LIB);
  /* at the bound is fine */
  double at = 10.0;
  assert_true(exact_sum_of(&at, 1, 10.0) == 10.0);
}

static void bad_bounds_are_refused(void **state)
{
  (void)state;
  bo_exactsum    s = NULL;
  PetscErrorCode ierr;
  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  ierr = bo_exactsum_create(1, -1.0, &s);
  assert_int_not_equal(ierr, 0);
  ierr = bo_exactsum_create(1, INFINITY, &s);
  assert_int_not_equal(ierr, 0);
  ierr = bo_exactsum_create(1, NAN, &s);
  assert_int_not_equal(ierr, 0);
  PetscPopErrorHandler();
}

static void max_abs_is_the_largest_magnitude(void **state)
{
  (void)state;
  const double v[] = {1.0, -7.5, 3.0, 0.0};
  double       m   = 0;
  assert_int_equal(bo_reduce_max_abs(PETSC_COMM_SELF, 4, v, &m), 0);
  assert_true(m == 7.5);
  assert_int_equal(bo_reduce_max_abs(PETSC_COMM_SELF, 0, v, &m), 0);
  assert_true(m == 0.0);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("exact sum is bit-identical for every order of the same tile partials", sum_is_bit_identical_for_every_order_of_the_tiles),
    PROPERTY("1e16 + 1 - 1e16 sums to exactly 1 (cancellation is exact)", cancellation_is_exact),
    PROPERTY("the total is rounded once: 1 + 2^-53 + 2^-53 gives 1 + 2^-52", total_is_rounded_once),
    PROPERTY("negative values and huge magnitudes sum exactly", negative_values_sum_exactly),
    PROPERTY("bounds from 2^-1020 to 2^1020 keep addends of a quarter of the bound exact", bounds_across_the_double_range_keep_addends_exact),
    PROPERTY("a zero bound sums zeros (and an empty sum) to zero", zero_bound_sums_zeros_to_zero),
    PROPERTY("a total kept by replacing held tile partials equals the fresh sum of the final ones, bit for bit; another grid or range is refused", replaced_addends_leave_no_trace),
    PROPERTY("an addend above the bound (or NaN/Inf) is refused with an error naming the bound", addend_above_the_bound_is_refused),
    PROPERTY("a negative, infinite or NaN bound is refused", bad_bounds_are_refused),
    PROPERTY("bo_reduce_max_abs gives the largest magnitude (0 for no values)", max_abs_is_the_largest_magnitude),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
