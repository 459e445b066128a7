/* test_tim.c - properties of the TIM few-shot solvers (tim.h) on one task: the loss and its
 * gradient, the initial weights, TIM-GD and TIM-ADM, input checks, and the time of one task. */
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
#include <petsctime.h>

#include "boundopt/error.h"
#include "boundopt/rng.h"
#include "boundopt/tim.h"
#include "unit_support.h"

/* ---------------------------------------------------------------- fixtures */

/* A task with ns support rows (labels i mod k, so every class has one), nq queries and weights
 * near the support means; entries are N(0, scale^2) + a class offset, all from streams of `seed`. */
typedef struct {
  int64_t  ns, nq, d, k;
  double  *zs, *zq, *w;
  int32_t *ys, *yq;
} fixture;

static void fixture_alloc(fixture *f, int64_t ns, int64_t nq, int64_t d, int64_t k)
{
  f->ns = ns, f->nq = nq, f->d = d, f->k = k;
  f->zs = calloc((size_t)(ns * d), sizeof *f->zs);
  f->zq = calloc((size_t)(nq * d), sizeof *f->zq);
  f->w  = calloc((size_t)(k * d), sizeof *f->w);
  f->ys = calloc((size_t)ns, sizeof *f->ys);
  f->yq = calloc((size_t)nq, sizeof *f->yq);
}

static void fixture_free(fixture *f)
{
  free(f->zs), free(f->zq), free(f->w), free(f->ys), free(f->yq);
}

static void random_task(fixture *f, uint64_t seed, int64_t ns, int64_t nq, int64_t d, int64_t k, double scale)
{
  bo_rng r;
  fixture_alloc(f, ns, nq, d, k);
  bo_rng_init(&r, seed, 0, 7);
  for (int64_t i = 0; i < ns; i++) f->ys[i] = (int32_t)(i % k);
  for (int64_t i = 0; i < nq; i++) f->yq[i] = (int32_t)bo_rng_below(&r, (uint64_t)k);
  /* class c is offset by 0.3 along axis c mod d */
  for (int64_t i = 0; i < ns * d; i++) f->zs[i] = scale * bo_rng_normal(&r) + ((i % d) == f->ys[i / d] % d ? 0.3 : 0.0);
  for (int64_t i = 0; i < nq * d; i++) f->zq[i] = scale * bo_rng_normal(&r) + ((i % d) == f->yq[i / d] % d ? 0.3 : 0.0);
  for (int64_t i = 0; i < k * d; i++) f->w[i] = 0.5 * scale * bo_rng_normal(&r) + ((i % d) == (i / d) % d ? 0.3 : 0.0);
}

/* A 5-way 1-shot-per-class task with Gaussian classes around unit centres (noise sigma per
 * coordinate), L2-normalised rows as TIM uses, and the query counts given per class. */
static void gaussian_task(fixture *f, uint64_t seed, int64_t shots, const int64_t *counts, int64_t d, double sigma)
{
  const int64_t k = 5;
  int64_t       nq = 0;
  double       *mu = malloc(sizeof *mu * (size_t)(k * d));
  bo_rng        r;

  for (int64_t c = 0; c < k; c++) nq += counts[c];
  fixture_alloc(f, k * shots, nq, d, k);
  bo_rng_init(&r, seed, 1, 8);
  for (int64_t c = 0; c < k; c++) {
    double n = 0;
    for (int64_t j = 0; j < d; j++) {
      mu[c * d + j] = bo_rng_normal(&r);
      n += mu[c * d + j] * mu[c * d + j];
    }
    for (int64_t j = 0; j < d; j++) mu[c * d + j] /= sqrt(n);
  }
  for (int64_t i = 0; i < f->ns; i++) f->ys[i] = (int32_t)(i % k);
  for (int64_t c = 0, i = 0; c < k; c++)
    for (int64_t m = 0; m < counts[c]; m++) f->yq[i++] = (int32_t)c;
  for (int pass = 0; pass < 2; pass++) {
    const int64_t  n = pass ? f->nq : f->ns;
    double        *z = pass ? f->zq : f->zs;
    const int32_t *y = pass ? f->yq : f->ys;
    for (int64_t i = 0; i < n; i++) {
      double s = 0;
      for (int64_t j = 0; j < d; j++) {
        z[i * d + j] = mu[y[i] * d + j] + sigma * bo_rng_normal(&r);
        s += z[i * d + j] * z[i * d + j];
      }
      for (int64_t j = 0; j < d; j++) z[i * d + j] /= sqrt(s);
    }
  }
  free(mu);
}

static int correct(int64_t n, const int32_t *pred, const int32_t *truth)
{
  int c = 0;
  for (int64_t i = 0; i < n; i++) c += pred[i] == truth[i];
  return c;
}

/* ---------------------------------------------------------------- error capture */

/* Runs call with errors captured; it must fail with USER_INPUT and one line "tim: ...; expected
 * ..." containing part. */

/* ---------------------------------------------------------------- the loss and its gradient */

typedef struct {
  uint64_t seed;
  int64_t  k, d, ns, nq;
  double   tau, lambda, alpha, wm, log_eps;
} fd_case;

static void gradient_equals_central_differences(void **state)
{
  (void)state;
  const fd_case cases[] = {
    {1, 3, 4, 6, 9, 15, 0.1, 0.1, 1.0, 1e-12},  /* the defaults */
    {2, 5, 16, 10, 15, 15, 0.1, 0.1, 1.0, 1e-12},
    {3, 4, 8, 8, 12, 15, 0.1, 0.0, 1.0, 1e-12}, /* alpha = 0 */
    {4, 5, 12, 5, 20, 15, 0.0, 0.1, 1.0, 1e-12}, /* lambda = 0 */
    {5, 3, 10, 6, 7, 15, 0.0, 0.0, 1.0, 1e-12},  /* marginal entropy only */
    {6, 3, 10, 6, 7, 15, 0.1, 0.1, 1.0, 0.0},    /* the spec's G exactly (eps = 0) */
    {7, 4, 6, 4, 11, 5, 1.0, 0.7, 0.5, 1e-3},    /* a large eps: its terms in G are needed */
    {8, 5, 5, 10, 10, 30, 0.3, 0.2, 2.0, 1e-12},
  };
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    const fd_case *c = &cases[ci];
    fixture        f;
    bo_tim_opts    o;
    double         loss, lp, lm, gmax = 0, emax = 0;
    random_task(&f, c->seed, c->ns, c->nq, c->d, c->k, 0.3);
    bo_tim_defaults_gd(&o);
    o.tau = c->tau, o.lambda_ce = c->lambda, o.alpha = c->alpha, o.w_marginal = c->wm, o.log_eps = c->log_eps;
    double *g = malloc(sizeof *g * (size_t)(c->k * c->d));
    OK(bo_tim_loss_grad(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, f.w, &o, &loss, g));
    for (int64_t j = 0; j < c->k * c->d; j++) {
      const double w0 = f.w[j], h = 1e-6;
      f.w[j] = w0 + h;
      OK(bo_tim_loss_grad(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, f.w, &o, &lp, NULL));
      f.w[j] = w0 - h;
      OK(bo_tim_loss_grad(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, f.w, &o, &lm, NULL));
      f.w[j] = w0;
      gmax   = fmax(gmax, fabs(g[j]));
      emax   = fmax(emax, fabs((lp - lm) / (2 * h) - g[j]));
    }
    if (!(gmax > 1e-3)) fail_msg("case %zu: gradient max %g is too small to test", ci, gmax);
    if (!(emax / gmax < 1e-6)) fail_msg("case %zu (k %lld, d %lld): max |FD - G| / max |G| = %.3g", ci, (long long)c->k, (long long)c->d, emax / gmax);
    free(g);
    fixture_free(&f);
  }
}

/* Two classes on a line: zs = {0, 1} (labels 0, 1), zq = {0.25, 1}, w = {0, 1}, tau = 2, so the
 * logits are -(z - w)^2 and every probability is a logistic sigmoid s(x) = 1/(1 + e^-x):
 *   support rows (s(1), 1 - s(1)) and (1 - s(1), s(1));  queries (s(0.5), 1 - s(0.5)), (1 - s(1), s(1)).
 * L = 0.5 CE - H(phat) + 0.3 H(Y|X) with CE = -log s(1).  Literal: mpmath at 40 digits. */
static void loss_matches_a_hand_computation_on_two_classes_in_one_dimension(void **state)
{
  (void)state;
  const double  zs[] = {0, 1}, zq[] = {0.25, 1}, w[] = {0, 1};
  const int32_t ys[] = {0, 1};
  bo_tim_opts   o;
  double        loss, loss_eps;

  bo_tim_defaults_gd(&o);
  o.tau = 2, o.lambda_ce = 0.5, o.alpha = 0.3, o.w_marginal = 1, o.log_eps = 0;
  OK(bo_tim_loss_grad(2, 2, 1, zs, ys, zq, 2, w, &o, &loss, NULL));

  const double s1 = 1 / (1 + exp(-1.0)), s5 = 1 / (1 + exp(-0.5));
  const double ce = -log(s1), p0 = (s5 + 1 - s1) / 2, p1 = 1 - p0;
  const double h  = -(p0 * log(p0) + p1 * log(p1));
  const double hc = -(s5 * log(s5) + (1 - s5) * log(1 - s5) + s1 * log(s1) + (1 - s1) * log(1 - s1)) / 2;
  assert_close(loss, 0.5 * ce - h + 0.3 * hc, 1e-15, "loss against the formula");
  assert_close(loss, -0.3438502282438974057868940824912790132323, 1e-15, "loss against the 40-digit value");

  o.log_eps = 1e-12; /* the guard moves the loss by O(1e-12) only */
  OK(bo_tim_loss_grad(2, 2, 1, zs, ys, zq, 2, w, &o, &loss_eps, NULL));
  assert_close(loss_eps, loss, 1e-11, "loss with log_eps 1e-12");
  if (loss_eps == loss) fail_msg("log_eps 1e-12 left the loss bit-identical; expected it inside the logs");
}

/* ---------------------------------------------------------------- initial weights */

static void initial_weights_are_the_support_class_means(void **state)
{
  (void)state;
  /* 3 classes in 2-D, labels out of order, 1, 3 and 2 rows: means exact in binary */
  const double  zs[] = {1, 2, 0.5, -1, 3, 4, 1.5, 1, -2, 0, 4, 6};
  const int32_t ys[] = {1, 0, 1, 2, 1, 2};
  const double  want[] = {0.5, -1, (1 + 3 - 2) / 3.0, (2 + 4 + 0) / 3.0, (1.5 + 4) / 2, (1 + 6) / 2.0};
  double        w[6];
  memset(w, 0xff, sizeof w);
  OK(bo_tim_init_weights(6, 2, zs, ys, 3, w));
  for (int j = 0; j < 6; j++) assert_close(w[j], want[j], 0, "class mean");
}

static void a_class_without_support_rows_is_an_error_and_leaves_w_untouched(void **state)
{
  (void)state;
  const double  zs[] = {1, 2, 3, 4, 5, 6};
  const int32_t ys[] = {0, 2, 0};
  double        w[6] = {7, 7, 7, 7, 7, 7};
  EXPECT_INPUT_ERROR(bo_tim_init_weights(3, 2, zs, ys, 3, w), "tim: ", "class 1 has no support row");
  for (int j = 0; j < 6; j++) assert_true(w[j] == 7);
  const int32_t bad[] = {0, 3, 1};
  EXPECT_INPUT_ERROR(bo_tim_init_weights(3, 2, zs, bad, 3, w), "tim: ", "ys[1] = 3 is outside 0..2");
}

/* ---------------------------------------------------------------- TIM-GD */

static void gd_decreases_the_loss_and_is_deterministic(void **state)
{
  (void)state;
  const int   its = 200;
  fixture     f;
  bo_tim_opts o;
  random_task(&f, 11, 10, 30, 16, 5, 0.3);
  bo_tim_defaults_gd(&o);
  o.iterations = its, o.lr = 1e-2;
  OK(bo_tim_init_weights(f.ns, f.d, f.zs, f.ys, f.k, f.w));

  const size_t kd = (size_t)(f.k * f.d), qk = (size_t)(f.nq * f.k);
  double      *w1 = malloc(sizeof(double) * kd), *w2 = malloc(sizeof(double) * kd), l0;
  double      *pq1 = malloc(sizeof(double) * qk), *pq2 = malloc(sizeof(double) * qk);
  double      *loss1 = malloc(sizeof(double) * (its + 1)), *loss2 = malloc(sizeof(double) * (its + 1));
  int32_t     *pr1 = malloc(sizeof(int32_t) * (size_t)f.nq), *pr2 = malloc(sizeof(int32_t) * (size_t)f.nq);
  OK(bo_tim_loss_grad(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, f.w, &o, &l0, NULL));
  memcpy(w1, f.w, sizeof(double) * kd);
  memcpy(w2, f.w, sizeof(double) * kd);
  OK(bo_tim_gd(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &o, w1, pr1, pq1, loss1));
  OK(bo_tim_gd(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &o, w2, pr2, pq2, loss2));

  if (loss1[0] != l0) fail_msg("losses[0] %.17g is not the loss of the initial W %.17g", loss1[0], l0);
  if (!(loss1[its] < loss1[0] - 1e-3)) fail_msg("loss %.17g after %d steps, %.17g before: expected a decrease", loss1[its], its, loss1[0]);
  double lend;
  OK(bo_tim_loss_grad(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, w1, &o, &lend, NULL));
  if (loss1[its] != lend) fail_msg("losses[T] %.17g is not the loss of the final W %.17g", loss1[its], lend);
  if (memcmp(w1, w2, sizeof(double) * kd) || memcmp(pq1, pq2, sizeof(double) * qk) || memcmp(pr1, pr2, sizeof(int32_t) * (size_t)f.nq) ||
      memcmp(loss1, loss2, sizeof(double) * (its + 1)))
    fail_msg("two GD runs differ");
  for (int64_t i = 0; i < f.nq; i++) {
    int64_t best = 0;
    for (int64_t c = 1; c < f.k; c++)
      if (pq1[i * f.k + c] > pq1[i * f.k + best]) best = c;
    assert_int_equal(pr1[i], best);
  }
  free(w1), free(w2), free(pq1), free(pq2), free(loss1), free(loss2), free(pr1), free(pr2);
  fixture_free(&f);
}

/* Adam's first step has m_hat = g and sqrt(v_hat) = |g|, so each weight moves by -lr g/(|g| + eps):
 * GD follows the same gradient that bo_tim_loss_grad reports. */
static void the_first_adam_step_moves_each_weight_by_lr_against_its_gradient(void **state)
{
  (void)state;
  fixture     f;
  bo_tim_opts o;
  random_task(&f, 12, 8, 12, 6, 4, 0.3);
  bo_tim_defaults_gd(&o);
  o.iterations = 1, o.lr = 1e-3;
  const size_t kd = (size_t)(f.k * f.d);
  double      *g = malloc(sizeof *g * kd), *w = malloc(sizeof *w * kd);
  int32_t     *pred = malloc(sizeof *pred * (size_t)f.nq);
  memcpy(w, f.w, sizeof *w * kd);
  OK(bo_tim_loss_grad(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, f.w, &o, NULL, g));
  OK(bo_tim_gd(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &o, w, pred, NULL, NULL));
  for (size_t j = 0; j < kd; j++) assert_close(w[j] - f.w[j], -o.lr * g[j] / (fabs(g[j]) + o.eps), 1e-15, "first Adam step");
  free(g), free(w), free(pred);
  fixture_free(&f);
}

/* ---------------------------------------------------------------- TIM-ADM */

/* Accuracy of the prototype classifier (the initial W) and of TIM-ADM with options o, summed over
 * seeds 1..seeds of gaussian_task(shots, counts, d, sigma); hist[c] counts ADM's predictions of c.
 * Each ADM run is done twice and must give the same bits. */
static void adm_against_prototypes(int seeds, int64_t shots, const int64_t *counts, int64_t d, double sigma, const bo_tim_opts *o, int *proto, int *adm, int *total, int *hist)
{
  *proto = *adm = *total = 0;
  for (int c = 0; c < 5; c++) hist[c] = 0;
  for (uint64_t seed = 1; seed <= (uint64_t)seeds; seed++) {
    fixture f;
    gaussian_task(&f, seed, shots, counts, d, sigma);
    const size_t kd = (size_t)(f.k * f.d), qk = (size_t)(f.nq * f.k), nq = (size_t)f.nq;
    double      *w1 = malloc(sizeof(double) * kd), *w2 = malloc(sizeof(double) * kd);
    double      *pq1 = malloc(sizeof(double) * qk), *pq2 = malloc(sizeof(double) * qk);
    int32_t     *p0 = malloc(sizeof(int32_t) * nq), *p1 = malloc(sizeof(int32_t) * nq), *p2 = malloc(sizeof(int32_t) * nq);
    OK(bo_tim_init_weights(f.ns, f.d, f.zs, f.ys, f.k, f.w));
    OK(bo_tim_predict(f.nq, f.d, f.zq, f.k, f.w, o->tau, p0, NULL));
    memcpy(w1, f.w, sizeof(double) * kd);
    memcpy(w2, f.w, sizeof(double) * kd);
    OK(bo_tim_adm(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, o, w1, p1, pq1, NULL));
    OK(bo_tim_adm(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, o, w2, p2, pq2, NULL));
    if (memcmp(w1, w2, sizeof(double) * kd) || memcmp(pq1, pq2, sizeof(double) * qk) || memcmp(p1, p2, sizeof(int32_t) * nq))
      fail_msg("seed %llu: two ADM runs differ", (unsigned long long)seed);
    *proto += correct(f.nq, p0, f.yq), *adm += correct(f.nq, p1, f.yq), *total += (int)f.nq;
    for (size_t i = 0; i < nq; i++) hist[p1[i]]++;
    free(w1), free(w2), free(pq1), free(pq2), free(p0), free(p1), free(p2);
    fixture_free(&f);
  }
}

/* 1-shot prototypes are noisy (noise norm 2 against unit class centres); the queries, mildly
 * imbalanced, show where the classes are.  20 tasks. */
static void adm_beats_the_prototype_classifier_on_mildly_imbalanced_1_shot_tasks_and_is_deterministic(void **state)
{
  (void)state;
  const int64_t counts[5] = {20, 17, 15, 13, 10};
  int           proto, adm, total, hist[5];
  bo_tim_opts   o;
  bo_tim_defaults_adm(&o);
  adm_against_prototypes(20, 1, counts, 64, 0.25, &o, &proto, &adm, &total, hist);
  print_message("  queries 20/17/15/13/10, 20 tasks: prototypes %d/%d, TIM-ADM %d/%d correct\n", proto, total, adm, total);
  if (!(adm >= proto + 3 * total / 100)) fail_msg("TIM-ADM %d/%d correct, prototypes %d/%d: expected ADM at least 3 points better", adm, total, proto, total);
}

/* TIM's marginal entropy H(Y_Q) rewards balanced predictions.  On well-separated classes (1-shot,
 * noise norm 0.85) with queries 30/20/12/8/5, the prototypes are nearly perfect; w_marginal = 0
 * keeps that, the default w_marginal = 1 flattens the predicted histogram and loses accuracy (the
 * known imbalance weakness of TIM; Veilleux et al., NeurIPS 2021). */
static void the_marginal_entropy_pulls_adm_towards_balanced_predictions_on_imbalanced_queries(void **state)
{
  (void)state;
  const int64_t counts[5] = {30, 20, 12, 8, 5};
  int           proto, adm0, adm1, total, h0[5], h1[5];
  bo_tim_opts   o;
  bo_tim_defaults_adm(&o);
  o.w_marginal = 0;
  adm_against_prototypes(20, 1, counts, 32, 0.15, &o, &proto, &adm0, &total, h0);
  o.w_marginal = 1;
  adm_against_prototypes(20, 1, counts, 32, 0.15, &o, &proto, &adm1, &total, h1);
  print_message("  queries 30/20/12/8/5, 20 tasks: prototypes %d/%d; TIM-ADM w_marginal 0: %d/%d, predicted %d/%d/%d/%d/%d; w_marginal 1: %d/%d, predicted %d/%d/%d/%d/%d\n",
                proto, total, adm0, total, h0[0], h0[1], h0[2], h0[3], h0[4], adm1, total, h1[0], h1[1], h1[2], h1[3], h1[4]);
  if (!(adm0 >= proto - total / 100)) fail_msg("w_marginal 0: %d/%d correct, prototypes %d: expected no loss", adm0, total, proto);
  if (!(adm1 <= adm0 - 10 * total / 100)) fail_msg("w_marginal 1: %d/%d correct, w_marginal 0 %d: expected at least 10 points lost to balancing", adm1, total, adm0);
  if (!(h1[0] < h0[0] && h1[4] > h0[4])) fail_msg("w_marginal 1 predicted %d of the largest and %d of the smallest class, w_marginal 0 %d and %d: expected a flatter histogram", h1[0], h1[4], h0[0], h0[4]);
}

static void adm_q_update_rows_are_distributions_and_follow_the_formula(void **state)
{
  (void)state;
  const int64_t nq = 7, k = 4;
  double        p[7 * 4], q[7 * 4];
  bo_rng        r;
  bo_tim_opts   o;
  bo_tim_defaults_adm(&o);
  o.alpha = 0.3, o.w_marginal = 1.0;
  bo_rng_init(&r, 5, 0, 9);
  for (int64_t i = 0; i < nq; i++) {
    double s = 0;
    for (int64_t c = 0; c < k; c++) s += (p[i * k + c] = (c == 3 ? 0.0 : bo_rng_uniform(&r) + 1e-3)); /* class 3: no mass */
    for (int64_t c = 0; c < k; c++) p[i * k + c] /= s;
  }
  OK(bo_tim_adm_q_update(nq, k, p, &o, q));
  for (int64_t i = 0; i < nq; i++) {
    double s = 0, z = 0, want[4];
    for (int64_t c = 0; c < k; c++) {
      double col = 0;
      for (int64_t j = 0; j < nq; j++) col += pow(p[j * k + c], 1.3);
      want[c] = col > 0 ? pow(p[i * k + c], 1.3) / sqrt(col) : 0;
      z += want[c];
    }
    for (int64_t c = 0; c < k; c++) {
      if (!(q[i * k + c] >= 0) || !isfinite(q[i * k + c])) fail_msg("q[%lld][%lld] = %g", (long long)i, (long long)c, q[i * k + c]);
      s += q[i * k + c];
      assert_close(q[i * k + c], want[c] / z, 1e-15, "q against the formula");
    }
    assert_close(s, 1.0, 1e-15, "row sum of q");
  }
}

/* The spec's ADM iteration term by term: P from the distances, q, num_k, den_k, damping. */
static void one_adm_iteration_equals_the_spec_update_term_by_term(void **state)
{
  (void)state;
  fixture     f;
  bo_tim_opts o;
  random_task(&f, 13, 8, 15, 7, 4, 0.3);
  bo_tim_defaults_adm(&o);
  o.iterations = 1, o.damping = 0.7, o.alpha = 0.2, o.lambda_ce = 0.4;
  const int64_t ns = f.ns, nq = f.nq, d = f.d, k = f.k, n = ns + nq;
  double       *p = malloc(sizeof *p * (size_t)(n * k)), *q = malloc(sizeof *q * (size_t)(nq * k));
  double       *w = malloc(sizeof *w * (size_t)(k * d));
  int32_t      *pred = malloc(sizeof *pred * (size_t)nq);
  for (int64_t i = 0; i < n; i++) {
    const double *z = i < ns ? f.zs + i * d : f.zq + (i - ns) * d;
    double        s = 0, lg[8], hi = -INFINITY;
    for (int64_t c = 0; c < k; c++) {
      double dist = 0;
      for (int64_t j = 0; j < d; j++) dist += (z[j] - f.w[c * d + j]) * (z[j] - f.w[c * d + j]);
      hi = fmax(hi, lg[c] = -o.tau / 2 * dist);
    }
    for (int64_t c = 0; c < k; c++) s += (p[i * k + c] = exp(lg[c] - hi));
    for (int64_t c = 0; c < k; c++) p[i * k + c] /= s;
  }
  for (int64_t i = 0; i < nq; i++) {
    double s = 0;
    for (int64_t c = 0; c < k; c++) {
      double col = 0;
      for (int64_t j = 0; j < nq; j++) col += pow(p[(ns + j) * k + c], 1 + o.alpha);
      s += (q[i * k + c] = pow(p[(ns + i) * k + c], 1 + o.alpha) / sqrt(col));
    }
    for (int64_t c = 0; c < k; c++) q[i * k + c] /= s;
  }
  const double cs = o.lambda_ce / (1 + o.alpha), cq = (double)ns / (double)nq;
  memcpy(w, f.w, sizeof *w * (size_t)(k * d));
  OK(bo_tim_adm(ns, nq, d, f.zs, f.ys, f.zq, k, &o, w, pred, NULL, NULL));
  for (int64_t c = 0; c < k; c++) {
    double den = 0;
    for (int64_t i = 0; i < ns; i++) den += cs * (f.ys[i] == c);
    for (int64_t i = 0; i < nq; i++) den += cq * q[i * k + c];
    for (int64_t j = 0; j < d; j++) {
      const double wc = f.w[c * d + j];
      double       num = 0;
      for (int64_t i = 0; i < ns; i++) num += cs * ((f.ys[i] == c) * f.zs[i * d + j] + p[i * k + c] * (wc - f.zs[i * d + j]));
      for (int64_t i = 0; i < nq; i++) num += cq * (q[i * k + c] * f.zq[i * d + j] + p[(ns + i) * k + c] * (wc - f.zq[i * d + j]));
      assert_close(w[c * d + j], wc + o.damping * (num / den - wc), 1e-13, "w after one ADM iteration");
    }
  }
  free(p), free(q), free(w), free(pred);
  fixture_free(&f);
}

static void adm_with_damping_zero_leaves_w_unchanged(void **state)
{
  (void)state;
  fixture     f;
  bo_tim_opts o;
  random_task(&f, 14, 10, 20, 9, 5, 0.3);
  bo_tim_defaults_adm(&o);
  o.iterations = 10, o.damping = 0;
  const size_t kd = (size_t)(f.k * f.d);
  double      *w = malloc(sizeof *w * kd), *losses = malloc(sizeof *losses * 11);
  int32_t     *pred = malloc(sizeof *pred * (size_t)f.nq);
  memcpy(w, f.w, sizeof *w * kd);
  OK(bo_tim_adm(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &o, w, pred, NULL, losses));
  if (memcmp(w, f.w, sizeof *w * kd)) fail_msg("damping 0 changed w");
  for (int t = 1; t <= 10; t++) assert_true(losses[t] == losses[0]);
  o.damping = 1;
  OK(bo_tim_adm(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &o, w, pred, NULL, NULL));
  if (!memcmp(w, f.w, sizeof *w * kd)) fail_msg("damping 1 left w unchanged too: the check above proves nothing");
  free(w), free(losses), free(pred);
  fixture_free(&f);
}

/* ---------------------------------------------------------------- bad input */

static void bad_inputs_give_one_line_errors(void **state)
{
  (void)state;
  fixture     f;
  bo_tim_opts gd, adm, o;
  int32_t     pred[6];
  random_task(&f, 15, 5, 6, 3, 5, 0.3);
  bo_tim_defaults_gd(&gd);
  bo_tim_defaults_adm(&adm);
  double loss;

  EXPECT_INPUT_ERROR(bo_tim_gd(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, 0, &gd, f.w, pred, NULL, NULL), "tim: ", "k = 0");
  EXPECT_INPUT_ERROR(bo_tim_adm(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, -1, &adm, f.w, pred, NULL, NULL), "tim: ", "k = -1");
  EXPECT_INPUT_ERROR(bo_tim_init_weights(f.ns, f.d, f.zs, f.ys, 0, f.w), "tim: ", "k = 0");
  EXPECT_INPUT_ERROR(bo_tim_loss_grad(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, 0, f.w, &gd, &loss, NULL), "tim: ", "k = 0");

  f.ys[2] = 5;
  EXPECT_INPUT_ERROR(bo_tim_gd(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &gd, f.w, pred, NULL, NULL), "tim: ", "ys[2] = 5 is outside 0..4");
  f.ys[2] = -1;
  EXPECT_INPUT_ERROR(bo_tim_adm(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &adm, f.w, pred, NULL, NULL), "tim: ", "ys[2] = -1 is outside 0..4");
  EXPECT_INPUT_ERROR(bo_tim_loss_grad(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, f.w, &gd, &loss, NULL), "tim: ", "ys[2] = -1");
  f.ys[2] = 2;

  o     = gd;
  o.tau = 0;
  EXPECT_INPUT_ERROR(bo_tim_gd(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &o, f.w, pred, NULL, NULL), "tim: ", "tau = 0");
  o.tau = -2;
  EXPECT_INPUT_ERROR(bo_tim_loss_grad(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, f.w, &o, &loss, NULL), "tim: ", "tau = -2");
  EXPECT_INPUT_ERROR(bo_tim_predict(f.nq, f.d, f.zq, f.k, f.w, -2, pred, NULL), "tim: ", "tau = -2");
  o     = adm;
  o.tau = NAN;
  EXPECT_INPUT_ERROR(bo_tim_adm(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &o, f.w, pred, NULL, NULL), "tim: ", "tau = nan");

  o            = gd;
  o.iterations = 0;
  EXPECT_INPUT_ERROR(bo_tim_gd(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &o, f.w, pred, NULL, NULL), "tim: ", "iterations = 0");
  o            = adm;
  o.iterations = -3;
  EXPECT_INPUT_ERROR(bo_tim_adm(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &o, f.w, pred, NULL, NULL), "tim: ", "iterations = -3");

  o    = gd;
  o.lr = 0;
  EXPECT_INPUT_ERROR(bo_tim_gd(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &o, f.w, pred, NULL, NULL), "tim: ", "lr = 0");
  o         = adm;
  o.damping = -1;
  EXPECT_INPUT_ERROR(bo_tim_adm(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &o, f.w, pred, NULL, NULL), "tim: ", "damping = -1");
  o       = gd;
  o.alpha = -0.1;
  EXPECT_INPUT_ERROR(bo_tim_loss_grad(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, f.w, &o, &loss, NULL), "tim: ", "alpha = -0.1");
  EXPECT_INPUT_ERROR(bo_tim_gd(f.ns, 0, f.d, f.zs, f.ys, f.zq, f.k, &gd, f.w, pred, NULL, NULL), "tim: ", "nq = 0");
  o           = gd;
  o.precision = BO_TIM_SINGLE;
  EXPECT_INPUT_ERROR(bo_tim_gd(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &o, f.w, pred, NULL, NULL), "tim: ", "precision = 1 for TIM-GD");
  o           = adm;
  o.precision = (bo_tim_precision)7;
  EXPECT_INPUT_ERROR(bo_tim_adm(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &o, f.w, pred, NULL, NULL), "tim: ", "precision = 7");
  f.zq[4] = INFINITY;
  EXPECT_INPUT_ERROR(bo_tim_adm(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &adm, f.w, pred, NULL, NULL), "tim: ", "zq[1][1] = inf");
  fixture_free(&f);
}

/* ---------------------------------------------------------------- timing */

static void one_five_way_five_shot_task_runs_at_d_64_and_640(void **state)
{
  (void)state;
  const int64_t counts[5] = {15, 15, 15, 15, 15};
  const int64_t dims[2]   = {64, 640};
  for (int di = 0; di < 2; di++) {
    fixture     f;
    bo_tim_opts gd, adm;
    gaussian_task(&f, 21, 5, counts, dims[di], 2.0 / sqrt((double)dims[di])); /* noise norm 2 */
    bo_tim_defaults_gd(&gd);
    bo_tim_defaults_adm(&adm);
    const size_t   kd = (size_t)(f.k * f.d);
    double        *w  = malloc(sizeof *w * kd), *pq = malloc(sizeof *pq * (size_t)(f.nq * f.k));
    int32_t       *pred = malloc(sizeof *pred * (size_t)f.nq);
    PetscLogDouble t0, t1, t2;
    int            acc[2];
    for (int m = 0; m < 2; m++) {
      OK(bo_tim_init_weights(f.ns, f.d, f.zs, f.ys, f.k, w));
      OK(PetscTime(&t0));
      if (m == 0) OK(bo_tim_gd(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &gd, w, pred, pq, NULL));
      else OK(bo_tim_adm(f.ns, f.nq, f.d, f.zs, f.ys, f.zq, f.k, &adm, w, pred, pq, NULL));
      OK(PetscTime(&t1));
      for (int64_t i = 0; i < f.nq * f.k; i++)
        if (!isfinite(pq[i])) fail_msg("non-finite probability at d %lld", (long long)f.d);
      for (int64_t i = 0; i < f.nq; i++) assert_true(pred[i] >= 0 && pred[i] < f.k);
      acc[m] = correct(f.nq, pred, f.yq);
      t2     = t1 - t0;
      print_message("  5-way 5-shot 75 queries, d = %4lld: TIM-%s %4d iterations %8.2f ms (%.1f us/iteration), %d/75 correct\n", (long long)f.d, m ? "ADM" : "GD ", m ? adm.iterations : gd.iterations, 1e3 * t2, 1e6 * t2 / (m ? adm.iterations : gd.iterations), acc[m]);
    }
    free(w), free(pq), free(pred);
    fixture_free(&f);
  }
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("the analytic gradient equals central differences (relative 1e-6): k 3-5, d 4-16, alpha 0, lambda 0, eps 0 and 1e-3", gradient_equals_central_differences),
    PROPERTY("the loss of a 2-class 1-D task equals the hand computation (1e-15); log_eps moves it by < 1e-11", loss_matches_a_hand_computation_on_two_classes_in_one_dimension),
    PROPERTY("initial weights are the support class means, whatever the label order", initial_weights_are_the_support_class_means),
    PROPERTY("a class without support rows is a one-line error and w is left untouched", a_class_without_support_rows_is_an_error_and_leaves_w_untouched),
    PROPERTY("TIM-GD (lr 1e-2) decreases the loss, reports the loss of its iterates, and two runs are bit-identical", gd_decreases_the_loss_and_is_deterministic),
    PROPERTY("the first Adam step moves each weight by lr against the reported gradient's sign", the_first_adam_step_moves_each_weight_by_lr_against_its_gradient),
    PROPERTY("TIM-ADM beats the prototype classifier (+3 points) on mildly imbalanced 5-way 1-shot Gaussian tasks; two runs are bit-identical", adm_beats_the_prototype_classifier_on_mildly_imbalanced_1_shot_tasks_and_is_deterministic),
    PROPERTY("H(Y_Q) pulls TIM-ADM towards balanced predictions: on well-separated 30/20/12/8/5 queries w_marginal 1 loses what w_marginal 0 keeps", the_marginal_entropy_pulls_adm_towards_balanced_predictions_on_imbalanced_queries),
    PROPERTY("the ADM q-update gives rows that sum to 1 and equal the formula (a class with no mass gets 0)", adm_q_update_rows_are_distributions_and_follow_the_formula),
    PROPERTY("one ADM iteration equals the spec's q-, num-, den- and damped w-update term by term", one_adm_iteration_equals_the_spec_update_term_by_term),
    PROPERTY("TIM-ADM with damping 0 leaves w bit-identical", adm_with_damping_zero_leaves_w_unchanged),
    PROPERTY("bad k, labels, tau, iterations, lr, damping, alpha, sizes and features give one-line USER_INPUT errors", bad_inputs_give_one_line_errors),
    PROPERTY("a 5-way 5-shot 75-query task runs GD and ADM at d = 64 and 640 to valid predictions (times printed)", one_five_way_five_shot_task_runs_at_d_64_and_640),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
