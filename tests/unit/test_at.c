/* test_at.c - properties of Ambrosio-Tortorelli alternating minimization (at.h): v stays in [0,1]
 * without projection, the energy never increases within an eps stage for every feasible inner
 * solver, and many sweeps agree with exact alternating minimization. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boundopt/at.h"
#include "boundopt/rng.h"

#define PROPERTY(name, fn) {name, fn, NULL, NULL, NULL}
#define OK(call)           assert_int_equal((call), 0)

typedef struct {
  bo_grid g;
  bo_at   at;
  Vec     img, u, v;
} at_run;

/* Two rectangles and a disk on a 0.3 background, plus N(0, 0.05^2). */
static void at_run_start(at_run *r, int64_t h, int64_t w, const bo_at_opts *o, double eps, double *e0)
{
  double *a;

  OK(bo_grid_create(PETSC_COMM_WORLD, h, w, 0, &r->g));
  OK(bo_at_create(&r->g, o, "test_u_", "test_v_", &r->at));
  OK(DMCreateGlobalVector(r->g.da, &r->img));
  OK(VecDuplicate(r->img, &r->u));
  OK(VecDuplicate(r->img, &r->v));
  OK(VecGetArray(r->img, &a));
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      double dx = x - 0.6 * w, dy = y - 0.5 * h, val = 0.3;
      bo_rng rr;
      if (x < 0.4 * w && y < 0.5 * h) val = 0.9;
      if (dx * dx + dy * dy < 0.05 * h * w) val = 0.6;
      bo_rng_init(&rr, 3, (uint64_t)(y * w + x), 9);
      a[y * w + x] = val + 0.05 * bo_rng_normal(&rr);
    }
  OK(VecRestoreArray(r->img, &a));
  OK(bo_at_start(r->at, r->img, r->u, r->v, eps, e0));
}

static void at_run_end(at_run *r)
{
  OK(bo_at_destroy(&r->at));
  OK(VecDestroy(&r->img));
  OK(VecDestroy(&r->u));
  OK(VecDestroy(&r->v));
  OK(bo_grid_destroy(&r->g));
}

static bo_at_opts opts(bo_inner_type t, PetscInt n)
{
  bo_at_opts o = {.alpha = 1.0, .lambda = 0.01, .mu = 0, .inner = {.type = t, .sweeps = n, .omega = 1.0}};
  return o;
}

static void v_stays_in_unit_interval_without_projection(void **state)
{
  const bo_inner_type inners[] = {BO_INNER_RBGS, BO_INNER_JACOBI};
  (void)state;
  for (size_t t = 0; t < 2; t++)
    for (PetscInt n = 1; n <= 2; n++) {
      bo_at_opts o = opts(inners[t], n);
      at_run     r;
      double     e, dv;
      PetscInt   its;
      at_run_start(&r, 22, 26, &o, 2.0, &e);
      for (double eps = 2.0; eps >= 0.25; eps /= 2) {
        OK(bo_at_set_epsilon(r.at, eps, &e));
        for (int k = 0; k < 5; k++) {
          double lo, hi;
          OK(bo_at_step(r.at, &e, &its, &dv));
          OK(VecMin(r.v, NULL, &lo));
          OK(VecMax(r.v, NULL, &hi));
          assert_true(lo >= 0 && hi <= 1);
        }
      }
      {
        double lo;
        OK(VecMin(r.v, NULL, &lo));
        assert_true(lo < 0.5); /* edges were found: the bound is not trivially met by v = 1 */
      }
      at_run_end(&r);
    }
}

static void energy_never_increases_within_a_stage(void **state)
{
  const bo_inner_type inners[] = {BO_INNER_RBGS, BO_INNER_JACOBI, BO_INNER_MG, BO_INNER_SSOR, BO_INNER_FFT, BO_INNER_EXACT};
  (void)state;
  for (size_t t = 0; t < sizeof inners / sizeof inners[0]; t++)
    for (PetscInt n = 1; n <= 3; n += 2) {
      bo_at_opts o = opts(inners[t], n);
      at_run     r;
      double     prev, e, dv;
      PetscInt   its;
      at_run_start(&r, 20, 18, &o, 2.0, &prev);
      for (double eps = 2.0; eps >= 0.25; eps /= 2) {
        OK(bo_at_set_epsilon(r.at, eps, &prev));
        for (int k = 0; k < 4; k++) {
          OK(bo_at_step(r.at, &e, &its, &dv));
          if (e > prev + 1e-12 * fabs(prev)) fprintf(stderr, "  %s n=%d eps %g step %d: %.15g > %.15g\n", bo_inner_names[inners[t]], (int)n, eps, k, e, prev);
          assert_true(e <= prev + 1e-12 * fabs(prev));
          prev = e;
        }
      }
      at_run_end(&r);
    }
}

static double relative_difference(Vec a, Vec b)
{
  Vec    d;
  double nd, nb;
  OK(VecDuplicate(a, &d));
  OK(VecWAXPY(d, -1.0, a, b));
  OK(VecNorm(d, NORM_2, &nd));
  OK(VecNorm(b, NORM_2, &nb));
  OK(VecDestroy(&d));
  return nd / nb;
}

static void many_sweeps_agree_with_exact_alternating_minimization(void **state)
{
  const bo_inner_type inners[] = {BO_INNER_RBGS, BO_INNER_MG};
  (void)state;
  for (size_t t = 0; t < 2; t++) {
    bo_at_opts oa = opts(inners[t], inners[t] == BO_INNER_MG ? 200 : 1500), ob = opts(BO_INNER_EXACT, 1);
    at_run     ra, rb;
    double     e, dv;
    PetscInt   its;
    KSP        ku, kv;
    at_run_start(&ra, 16, 14, &oa, 1.0, &e);
    at_run_start(&rb, 16, 14, &ob, 1.0, &e);
    OK(bo_at_ksps(rb.at, &ku, &kv));
    OK(KSPSetTolerances(ku, 1e-15, 1e-300, PETSC_DEFAULT, 100000));
    OK(KSPSetTolerances(kv, 1e-15, 1e-300, PETSC_DEFAULT, 100000));
    for (int k = 0; k < 4; k++) {
      OK(bo_at_step(ra.at, &e, &its, &dv));
      OK(bo_at_step(rb.at, &e, &its, &dv));
    }
    assert_true(relative_difference(ra.u, rb.u) < 1e-8);
    assert_true(relative_difference(ra.v, rb.v) < 1e-8);
    at_run_end(&ra);
    at_run_end(&rb);
  }
}

static void bad_parameters_are_refused(void **state)
{
  bo_grid    g;
  bo_at      at;
  bo_at_opts o = opts(BO_INNER_RBGS, 1);
  (void)state;
  OK(bo_grid_create(PETSC_COMM_WORLD, 5, 5, 0, &g));
  OK(PetscPushErrorHandler(PetscReturnErrorHandler, NULL)); /* expected errors: no traceback */
  o.lambda = 0;
  assert_int_equal(bo_at_create(&g, &o, NULL, NULL, &at), PETSC_ERR_USER_INPUT);
  o = opts(BO_INNER_RBGS, 0);
  assert_int_equal(bo_at_create(&g, &o, NULL, NULL, &at), PETSC_ERR_USER_INPUT);
  OK(PetscPopErrorHandler());
  OK(bo_grid_destroy(&g));
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("v stays in [0,1] after every rbgs / jacobi v-step, with no projection", v_stays_in_unit_interval_without_projection),
    PROPERTY("AT energy never increases within an eps stage (rbgs, jacobi, mg, ssor, fft, exact; n = 1, 3)", energy_never_increases_within_a_stage),
    PROPERTY("many sweeps agree with exact AT alternating minimization to 1e-8", many_sweeps_agree_with_exact_alternating_minimization),
    PROPERTY("lambda <= 0 and sweeps < 1 are refused", bad_parameters_are_refused),
  };
  int failed;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  failed = cmocka_run_group_tests_name("at", tests, NULL, NULL);
  PetscCall(PetscFinalize());
  return failed ? 1 : 0;
}
