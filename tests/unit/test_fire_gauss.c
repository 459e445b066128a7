/* test_fire_gauss.c - properties of FIRE's linear Gaussian toy (fire_gauss.h): the regularisers'
 * and objectives' gradients equal central differences, the closed-form inner maximisation is the
 * maximum over the L-infinity ball, the closed-form accuracies match Monte Carlo, the front is
 * not dominated by any linear classifier, and bad arguments give one-line errors. */
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
#include "boundopt/fire_gauss.h"
#include "boundopt/losses.h"
#include "boundopt/rng.h"
#include "unit_support.h"

static const bo_fg_method regularised[2] = {BO_FG_TRADES, BO_FG_FIRE};

static double regulariser(bo_fg_method m, double z, double zp, double *dz, double *dzp)
{
  return m == BO_FG_FIRE ? bo_fg_fr2(z, zp, dz, dzp) : bo_fg_kl(z, zp, dz, dzp);
}

/* ---------------------------------------------------------------- per-sample terms */

static void regulariser_partials_equal_central_differences_and_match_the_general_forms(void **state)
{
  (void)state;
  const double zs[] = {-30, -7.5, -2, -0.3, 0, 0.01, 0.8, 3, 12, 40};
  for (size_t a = 0; a < sizeof zs / sizeof zs[0]; a++)
    for (size_t c = 0; c < sizeof zs / sizeof zs[0]; c++) {
      const double z = zs[a], zp = zs[c] + 0.37, h = 1e-6;
      for (int q = 0; q < 2; q++) {
        double dz, dzp, t1, t2;
        regulariser(regularised[q], z, zp, &dz, &dzp);
        const double fz = (regulariser(regularised[q], z + h, zp, &t1, &t2) - regulariser(regularised[q], z - h, zp, &t1, &t2)) / (2 * h);
        const double fzp = (regulariser(regularised[q], z, zp + h, &t1, &t2) - regulariser(regularised[q], z, zp - h, &t1, &t2)) / (2 * h);
        assert_close(dz, fz, 1e-7 * PetscMax(1, fabs(fz)), bo_fg_method_names[regularised[q]]);
        assert_close(dzp, fzp, 1e-7 * PetscMax(1, fabs(fzp)), bo_fg_method_names[regularised[q]]);
      }
      /* KL against p log(p/p') + (1-p) log((1-p)/(1-p')) where that is accurate */
      if (fabs(z) < 20 && fabs(zp) < 20) {
        const double p = 1 / (1 + exp(-z)), pp = 1 / (1 + exp(-zp));
        assert_close(bo_fg_kl(z, zp, NULL, NULL), p * log(p / pp) + (1 - p) * log((1 - p) / (1 - pp)), 1e-12 * PetscMax(1, fabs(z - zp)) * 10, "KL formula");
        /* arccos(BC)^2 of the two Bernoulli laws */
        const double bc = sqrt(p * pp) + sqrt((1 - p) * (1 - pp)), ac = acos(PetscMin(bc, 1.0));
        assert_close(bo_fg_fr2(z, zp, NULL, NULL), ac * ac, 1e-7 * PetscMax(ac * ac, 1e-9) + 1e-14, "arccos(BC)^2");
      }
    }
  /* psi is arctan(e^{z/2}) - pi/4 */
  for (double z = -20; z <= 20; z += 0.7) assert_close(bo_fg_psi(z), atan(exp(z / 2)) - PETSC_PI / 4, 1e-14, "psi");
}

static void fisher_rao_term_equals_the_loss_engine_on_binary_logits(void **state)
{
  (void)state;
  enum { N = 40 };
  double  z[2 * N], z2[2 * N], g[2 * N] = {0}, g2[2 * N] = {0}, v, mine = 0, dz, dzp;
  bo_rng  r;
  bo_rng_init(&r, 7, 0, 0);
  for (int i = 0; i < N; i++) {
    z[2 * i] = z2[2 * i] = 0;
    z[2 * i + 1]  = 6 * (bo_rng_uniform(&r) - 0.5);
    z2[2 * i + 1] = z[2 * i + 1] + 3 * (bo_rng_uniform(&r) - 0.5);
  }
  bo_loss_batch b = {.comm = PETSC_COMM_SELF, .n = N, .k = 2, .logits = z, .ngroups = 1};
  OK(bo_loss_fisher_rao(&b, z2, 0, 1, &v, g, g2));
  for (int i = 0; i < N; i++) {
    mine += bo_fg_fr2(z[2 * i + 1], z2[2 * i + 1], &dz, &dzp) / N;
    assert_close(dz / N, g[2 * i + 1], 1e-12, "d/dz vs bo_loss_fisher_rao");
    assert_close(dzp / N, g2[2 * i + 1], 1e-12, "d/dz' vs bo_loss_fisher_rao");
  }
  assert_close(mine, v, 1e-13, "mean arccos(BC)^2 vs bo_loss_fisher_rao");
}

/* ---------------------------------------------------------------- inner maximisation */

static void the_chosen_endpoint_is_the_maximum_over_the_ball(void **state)
{
  (void)state;
  enum { D = 4, TRIALS = 300, SCAN = 2001, RANDOM = 500 };
  bo_rng r;
  bo_rng_init(&r, 11, 0, 0);
  for (int t = 0; t < TRIALS; t++) {
    double w[D], x[D], b = 2 * bo_rng_normal(&r), eps = 0.5 * bo_rng_uniform(&r) + 0.01, z = b, l1 = 0;
    const double y = bo_rng_uniform(&r) < 0.5 ? 1 : -1;
    for (int j = 0; j < D; j++) {
      w[j] = 2 * bo_rng_normal(&r), x[j] = bo_rng_normal(&r) + y;
      z += w[j] * x[j], l1 += fabs(w[j]);
    }
    const double rad = eps * l1;
    for (int m = BO_FG_AT; m <= BO_FG_FIRE; m++) {
      const int s = bo_fg_inner_max((bo_fg_method)m, z, y, rad);
      /* attained by the corner delta = s eps sign(w) */
      double za = b;
      for (int j = 0; j < D; j++) za += w[j] * (x[j] + s * eps * (w[j] > 0 ? 1 : -1));
      assert_close(za, z + s * rad, 1e-12 * PetscMax(1, fabs(z) + rad), "z' of the corner delta = s eps sign(w)");
      /* the value there: the regulariser, or CE for AT (its adversary maximises the loss) */
#define VALUE(zp) (m == BO_FG_AT ? bo_fg_ce((zp), y, NULL) : regulariser((bo_fg_method)m, z, (zp), NULL, NULL))
      const double best = VALUE(z + s * rad), tol = 1e-12 * PetscMax(1, best);
      if ((bo_fg_method)m != BO_FG_AT) assert_int_equal(s, z > 0 ? -1 : 1); /* towards the boundary (fire_gauss.h) */
      for (int k = 0; k < SCAN; k++) { /* dense scan of the interval the ball maps onto */
        const double zp = z - rad + 2 * rad * k / (SCAN - 1);
        if (VALUE(zp) > best + tol) fail_msg("%s: z' = %g beats the endpoint (%g > %g)", bo_fg_method_names[m], zp, VALUE(zp), best);
      }
      for (int c = 0; c < (1 << D); c++) { /* every vertex of the ball */
        double zp = b;
        for (int j = 0; j < D; j++) zp += w[j] * (x[j] + ((c >> j) & 1 ? eps : -eps));
        if (VALUE(zp) > best + tol) fail_msg("%s: vertex %d beats the endpoint", bo_fg_method_names[m], c);
      }
      for (int k = 0; k < RANDOM; k++) { /* random points of the ball */
        double zp = b;
        for (int j = 0; j < D; j++) zp += w[j] * (x[j] + eps * (2 * bo_rng_uniform(&r) - 1));
        if (VALUE(zp) > best + tol) fail_msg("%s: a random delta beats the endpoint", bo_fg_method_names[m]);
      }
#undef VALUE
    }
  }
}

/* ---------------------------------------------------------------- objectives */

static void make_model(int64_t d, double *mu, bo_fg_model *m)
{
  for (int64_t j = 0; j < d; j++) mu[j] = j < 2 ? 1.0 : 0.25 + 0.05 * (double)j;
  *m = (bo_fg_model){.d = d, .sigma = 0.9, .mu = mu};
}

static void objective_gradients_equal_central_differences(void **state)
{
  (void)state;
  enum { D = 5 };
  double      mu[D], wb[D + 1], g[D + 1], vp, vm, v;
  bo_fg_model m;
  bo_fg_data  data;
  bo_rng      r;
  make_model(D, mu, &m);
  OK(bo_fg_data_create(PETSC_COMM_SELF, &m, 3, BO_FG_PURPOSE_TRAIN, 700, &data));
  bo_rng_init(&r, 5, 0, 0);
  const struct { bo_fg_method m; double beta, eps; } cases[] = {
    {BO_FG_CE, 0, 0}, {BO_FG_AT, 0, 0.1}, {BO_FG_AT, 0, 0.4}, {BO_FG_TRADES, 1, 0.2}, {BO_FG_TRADES, 6, 0.3},
    {BO_FG_FIRE, 1, 0.2}, {BO_FG_FIRE, 20, 0.3}, {BO_FG_FIRE, 5, 0},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int rep = 0; rep < 3; rep++) {
      bo_fg_train_opts o = {.method = cases[c].m, .beta = cases[c].beta, .eps = cases[c].eps, .iterations = 1, .lr = 1};
      for (int j = 0; j < D; j++) wb[j] = (0.2 + bo_rng_uniform(&r)) * (bo_rng_uniform(&r) < 0.5 ? -1 : 1) * (1 + rep);
      wb[D] = 0.3 * bo_rng_normal(&r);
      OK(bo_fg_objective(&data, &o, wb, &v, g));
      assert_true(v > 0 && isfinite(v));
      for (int j = 0; j <= D; j++) {
        const double h = 1e-6, keep = wb[j];
        wb[j] = keep + h;
        OK(bo_fg_objective(&data, &o, wb, &vp, NULL));
        wb[j] = keep - h;
        OK(bo_fg_objective(&data, &o, wb, &vm, NULL));
        wb[j] = keep;
        const double fd = (vp - vm) / (2 * h);
        if (!(fabs(fd - g[j]) <= 2e-7 * PetscMax(1, fabs(fd))))
          fail_msg("%s beta %g eps %g: dJ/dwb[%d] = %.12g, central difference %.12g", bo_fg_method_names[cases[c].m], cases[c].beta, cases[c].eps, j, g[j], fd);
      }
    }
  OK(bo_fg_data_destroy(&data));
}

static void training_lowers_the_objective_and_beta_zero_is_plain_ce(void **state)
{
  (void)state;
  enum { D = 6, T = 150 };
  double      mu[D], w0[D + 1], w1[D + 1], w2[D + 1], hist[T], vf, gn;
  bo_fg_model m;
  bo_fg_data  data;
  make_model(D, mu, &m);
  OK(bo_fg_data_create(PETSC_COMM_SELF, &m, 9, BO_FG_PURPOSE_TRAIN, 600, &data));
  bo_fg_train_opts ce = {.method = BO_FG_CE, .iterations = T, .lr = 0.05}, tr = ce, fi = ce;
  tr.method = BO_FG_TRADES, tr.eps = 0.3;
  fi.method = BO_FG_FIRE, fi.eps = 0.3;
  OK(bo_fg_train(&data, &ce, NULL, NULL, w0, hist, &vf, &gn));
  assert_close(hist[0], log(2.0), 1e-14, "objective at w = 0");
  assert_true(vf < hist[0] - 0.2);
  OK(bo_fg_train(&data, &tr, NULL, NULL, w1, NULL, NULL, NULL));
  OK(bo_fg_train(&data, &fi, NULL, NULL, w2, NULL, NULL, NULL));
  assert_memory_equal(w0, w1, sizeof w0); /* beta 0: the regulariser adds exactly nothing */
  assert_memory_equal(w0, w2, sizeof w0);
  fi.beta = 10;
  OK(bo_fg_train(&data, &fi, NULL, NULL, w2, hist, &vf, NULL));
  assert_true(vf < hist[0]);
  /* stationarity: the gradient norm when no weight is near 0; never above it when one is */
  double g[D + 1], gn2 = 0, st;
  OK(bo_fg_objective(&data, &fi, w2, NULL, g));
  for (int j = 0; j <= D; j++) gn2 += g[j] * g[j];
  OK(bo_fg_stationarity(&data, &fi, w2, 0, &st));
  assert_close(st, sqrt(gn2), 1e-12, "stationarity without zeroed weights");
  w2[3] = 0;
  OK(bo_fg_objective(&data, &fi, w2, NULL, g));
  gn2 = 0;
  for (int j = 0; j <= D; j++) gn2 += g[j] * g[j];
  OK(bo_fg_stationarity(&data, &fi, w2, 1e-3, &st));
  assert_true(st <= sqrt(gn2) + 1e-15);
  OK(bo_fg_train(&data, &fi, NULL, NULL, w2, NULL, NULL, NULL));
  double c0, r0, c2, r2;
  bo_fg_accuracy(&m, w0, 0.3, &c0, &r0);
  bo_fg_accuracy(&m, w2, 0.3, &c2, &r2);
  assert_true(r2 > r0); /* the regulariser buys robustness */
  OK(bo_fg_data_destroy(&data));
}

/* ---------------------------------------------------------------- accuracies and the front */

static void closed_form_accuracies_match_monte_carlo(void **state)
{
  (void)state;
  enum { D = 5, N = 200000 };
  double      mu[D], wb[D + 1], c, rb, cm, rm;
  bo_fg_model m;
  bo_fg_data  data;
  bo_rng      r;
  make_model(D, mu, &m);
  OK(bo_fg_data_create(PETSC_COMM_SELF, &m, 21, BO_FG_PURPOSE_TEST, N, &data));
  bo_rng_init(&r, 13, 0, 0);
  for (int t = 0; t < 12; t++) {
    for (int j = 0; j < D; j++) wb[j] = mu[j] + 0.6 * bo_rng_normal(&r);
    wb[D] = t % 3 == 0 ? 0 : 0.8 * bo_rng_normal(&r);
    const double eps = 0.05 * t;
    bo_fg_accuracy(&m, wb, eps, &c, &rb);
    OK(bo_fg_accuracy_empirical(&data, wb, eps, &cm, &rm));
    assert_close(cm, c, 4.5 * sqrt(c * (1 - c) / N) + 1e-9, "clean accuracy vs Monte Carlo");
    assert_close(rm, rb, 4.5 * sqrt(rb * (1 - rb) / N) + 1e-9, "robust accuracy vs Monte Carlo");
    assert_true(rb <= c);
  }
  /* w = 0: sign(b); 1/2 for b != 0, 0 for b = 0 (z = 0 is not y z > 0) */
  for (int j = 0; j <= D; j++) wb[j] = 0;
  bo_fg_accuracy(&m, wb, 0.1, &c, &rb);
  assert_true(c == 0 && rb == 0);
  wb[D] = 1;
  bo_fg_accuracy(&m, wb, 0.1, &c, &rb);
  assert_true(c == 0.5 && rb == 0.5);
  OK(bo_fg_data_destroy(&data));
}

static void no_linear_classifier_dominates_the_front(void **state)
{
  (void)state;
  enum { D = 6, P = 801 };
  double      mu[D], kappa[P], fc[P], fr[P], wb[D + 1], c, rb, nrm = 0;
  int         exact;
  bo_fg_model m;
  bo_rng      r;
  const double eps = 0.3;
  make_model(D, mu, &m);
  OK(bo_fg_front(&m, eps, P, kappa, fc, fr, &exact));
  assert_int_equal(exact, 1);
  for (int j = 0; j < D; j++) nrm += mu[j] * mu[j];
  assert_close(fc[0], 0.5 * erfc(-sqrt(nrm) / m.sigma / sqrt(2.0)), 1e-14, "front start = Bayes accuracy Phi(|mu|/sigma)");
  for (int k = 1; k < P; k++) assert_true(fc[k] <= fc[k - 1] + 1e-15 && fr[k] >= fr[k - 1] - 1e-15);
  for (int k = 0; k < P; k++) assert_true(bo_fg_front_gap(P, fc, fr, fc[k], fr[k]) < 1e-12);
  assert_close(bo_fg_front_gap(P, fc, fr, fc[P / 2] - 0.01, fr[P / 2] - 0.01), 0.01, 2e-4, "gap of a point 0.01 below the front");
  bo_rng_init(&r, 17, 0, 0);
  for (int t = 0; t < 20000; t++) {
    /* a front classifier perturbed (or a random one), with a random bias half the time */
    const int k = (int)bo_rng_below(&r, P);
    for (int j = 0; j < D; j++) {
      const double u = mu[j] > 0 ? PetscMax(mu[j] - kappa[k], 0.0) : PetscMin(mu[j] + kappa[k], 0.0);
      wb[j] = t % 4 == 3 ? bo_rng_normal(&r) : u + (t % 2 ? 0.02 : 0.2) * bo_rng_normal(&r);
    }
    wb[D] = t % 3 == 0 ? 0.3 * bo_rng_normal(&r) : 0;
    bo_fg_accuracy(&m, wb, eps, &c, &rb);
    for (int q = 0; q < P; q++)
      if (c > fc[q] + 1e-6 && rb > fr[q] + 1e-6) fail_msg("trial %d: (%.6f, %.6f) dominates front point %d (%.6f, %.6f)", t, c, rb, q, fc[q], fr[q]);
  }
}

static void bad_arguments_give_one_line_errors(void **state)
{
  (void)state;
  double      mu[3] = {1, 0.5, 0.2}, zero[3] = {0, 0, 0}, k[4], c[4], rb[4], wb[4] = {1, 1, 1, 0}, v;
  bo_fg_model m = {.d = 3, .sigma = 1, .mu = mu}, bad = m;
  bo_fg_data  data;
  bad.sigma = 0;
  EXPECT_INPUT_ERROR(bo_fg_data_create(PETSC_COMM_SELF, &bad, 1, BO_FG_PURPOSE_TRAIN, 10, &data), "fire-gauss: ", "sigma = 0");
  EXPECT_INPUT_ERROR(bo_fg_data_create(PETSC_COMM_SELF, &m, 1, BO_FG_PURPOSE_TRAIN, 0, &data), "fire-gauss: ", "0 samples");
  bad = m, bad.mu = zero;
  EXPECT_INPUT_ERROR(bo_fg_front(&bad, 0.1, 4, k, c, rb, NULL), "fire-gauss: ", "mu = 0");
  EXPECT_INPUT_ERROR(bo_fg_front(&m, -0.1, 4, k, c, rb, NULL), "fire-gauss: ", "eps = -0.1");
  EXPECT_INPUT_ERROR(bo_fg_front(&m, 0.1, 1, k, c, rb, NULL), "fire-gauss: ", "front of 1 points");
  OK(bo_fg_data_create(PETSC_COMM_SELF, &m, 1, BO_FG_PURPOSE_TRAIN, 10, &data));
  bo_fg_train_opts o = {.method = BO_FG_FIRE, .beta = -1, .eps = 0.1, .iterations = 5, .lr = 0.1};
  EXPECT_INPUT_ERROR(bo_fg_objective(&data, &o, wb, &v, NULL), "fire-gauss: ", "beta = -1");
  o.beta = 1, o.lr = 0;
  EXPECT_INPUT_ERROR(bo_fg_train(&data, &o, NULL, NULL, wb, NULL, NULL, NULL), "fire-gauss: ", "lr = 0");
  o.lr = 0.1, wb[1] = NAN;
  EXPECT_INPUT_ERROR(bo_fg_objective(&data, &o, wb, &v, NULL), "fire-gauss: ", "wb[1] = nan");
  OK(bo_fg_data_destroy(&data));
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("FIRE's arccos(BC)^2 and TRADES' KL: partials equal central differences (|z| up to 40), values match arccos of the Bhattacharyya coefficient and the KL formula", regulariser_partials_equal_central_differences_and_match_the_general_forms),
    PROPERTY("the binary Fisher-Rao term and its partials equal bo_loss_fisher_rao on logits (0, z)", fisher_rao_term_equals_the_loss_engine_on_binary_logits),
    PROPERTY("the closed-form endpoint beats a dense scan of z', every vertex and random points of the L-inf ball (AT, TRADES, FIRE), and is z + s eps ||w||_1", the_chosen_endpoint_is_the_maximum_over_the_ball),
    PROPERTY("CE, AT, TRADES and FIRE objective gradients equal central differences (Danskin through the exact inner max)", objective_gradients_equal_central_differences),
    PROPERTY("training lowers the objective from log 2; beta 0 trains exactly as CE; FIRE beta 10 is more robust than CE; the stationarity measure is the gradient norm without zeroed weights", training_lowers_the_objective_and_beta_zero_is_plain_ce),
    PROPERTY("closed-form clean and robust accuracies match Monte Carlo on 200000 samples (4.5 sigma); w = 0 classifies by sign(b)", closed_form_accuracies_match_monte_carlo),
    PROPERTY("the front starts at the Bayes accuracy, is monotone, has gap 0, and 20000 perturbed or random linear classifiers dominate none of its points", no_linear_classifier_dominates_the_front),
    PROPERTY("bad models, sizes, options and parameters give one-line USER_INPUT errors", bad_arguments_give_one_line_errors),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
