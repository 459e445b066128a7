/* test_mlp.c - properties of the multilayer perceptron and its adversarial losses (mlp.h): the
 * gradients of CE, AT, TRADES and FIRE through the whole network (weights, natural inputs and
 * adversarial inputs) equal central differences, and the harness catches a wrong gradient; PGD
 * stays in the eps-ball and in [0, 1] and raises its objective; a batch gradient does not depend on
 * the order of its tiles' rows over ranks (a tile is its own addend); one-line input errors. */
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
#include "boundopt/mlp.h"
#include "boundopt/rng.h"
#include "unit_support.h"

/* ---------------------------------------------------------------- fixture */

/* A 6-5-4-3 network, 5 rows: x in [0.1, 0.9], x' = x + U(-0.3, 0.3) (so p and q differ), labels. */
typedef struct {
  bo_mlp      net;
  bo_mlp_work w[2];
  int64_t     m, d, k;
  double      x[5 * 6], xa[5 * 6];
  uint8_t     y[5];
} fixture;

static void fixture_make(fixture *f, uint64_t seed)
{
  const int64_t hidden[2] = {5, 4};
  bo_rng        r;
  f->m = 5, f->d = 6, f->k = 3;
  OK(bo_mlp_create(f->d, 2, hidden, f->k, &f->net));
  OK(bo_mlp_init(&f->net, seed));
  for (int64_t j = 0; j < f->net.nparam; j++) f->net.param[j] *= 2; /* larger weights: logits far from uniform */
  OK(bo_mlp_work_create(&f->net, f->m, &f->w[0]));
  OK(bo_mlp_work_create(&f->net, f->m, &f->w[1]));
  bo_rng_init(&r, seed, 1, 7);
  for (int64_t j = 0; j < f->m * f->d; j++) {
    f->x[j]  = 0.1 + 0.8 * bo_rng_uniform(&r);
    f->xa[j] = f->x[j] + 0.6 * (bo_rng_uniform(&r) - 0.5);
  }
  for (int i = 0; i < 5; i++) f->y[i] = (uint8_t)(i % 3);
}

static void fixture_free(fixture *f)
{
  OK(bo_mlp_work_destroy(&f->w[0]));
  OK(bo_mlp_work_destroy(&f->w[1]));
  OK(bo_mlp_destroy(&f->net));
}

static double loss_value(fixture *f, const bo_mlp_loss_opts *o)
{
  double t[2] = {0, 0};
  OK(bo_mlp_pair_loss(&f->net, o, f->m, f->x, f->xa, f->y, 1.0, f->w, NULL, NULL, NULL, t));
  return t[0] + o->beta * t[1];
}

/* max |FD - G| / max |G| over the weights, the natural and the adversarial inputs of the loss
 * `value_of`, against the analytic gradient of the loss `grad_of` (the same loss, except in the
 * negative control).  weight 0.5 checks the scaling; dparam is prefilled to check accumulation. */
static double gradient_error(fixture *f, const bo_mlp_loss_opts *value_of, const bo_mlp_loss_opts *grad_of, double *gmax_out)
{
  const double h = 1e-6, wgt = 0.5;
  double      *gp = malloc(sizeof(double) * (size_t)f->net.nparam), gx[30], ga[30], t[2] = {0, 0}, emax = 0, gmax = 0;
  for (int64_t j = 0; j < f->net.nparam; j++) gp[j] = 0.25;
  OK(bo_mlp_pair_loss(&f->net, grad_of, f->m, f->x, f->xa, f->y, wgt, f->w, gp, gx, ga, t));
  for (int side = 0; side < 3; side++) {
    double *v = side == 0 ? f->net.param : side == 1 ? f->x : f->xa, *g = side == 0 ? gp : side == 1 ? gx : ga;
    int64_t n = side == 0 ? f->net.nparam : f->m * f->d;
    for (int64_t j = 0; j < n; j++) {
      const double v0 = v[j], an = (g[j] - (side == 0 ? 0.25 : 0.0)) / wgt;
      v[j]            = v0 + h;
      const double lp = loss_value(f, value_of);
      v[j]            = v0 - h;
      const double lm = loss_value(f, value_of);
      v[j]            = v0;
      gmax = fmax(gmax, fabs(an));
      emax = fmax(emax, fabs((lp - lm) / (2 * h) - an));
    }
  }
  free(gp);
  *gmax_out = gmax;
  return emax / gmax;
}

static bo_mlp_loss_opts loss_opts(bo_mlp_loss kind, double beta, double guard)
{
  return (bo_mlp_loss_opts){.loss = kind, .beta = beta, .guard = guard, .pgd = {.eps = 0.1, .step = 0.01, .steps = 3, .sigma = 0.001, .seed = 5, .purpose = 1}};
}

/* ---------------------------------------------------------------- properties */

static void gradients_through_the_network_equal_central_differences(void **state)
{
  (void)state;
  const bo_mlp_loss_opts cases[] = {
    loss_opts(BO_MLP_LOSS_CE, 0, 0),      loss_opts(BO_MLP_LOSS_AT, 0, 0),       loss_opts(BO_MLP_LOSS_TRADES, 6, 0),
    loss_opts(BO_MLP_LOSS_FIRE, 20, 0),   loss_opts(BO_MLP_LOSS_FIRE, 20, 1e-6), loss_opts(BO_MLP_LOSS_TRADES, 1, 0),
  };
  for (uint64_t seed = 1; seed <= 3; seed++)
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
      fixture f;
      double  gmax, err;
      fixture_make(&f, seed);
      err = gradient_error(&f, &cases[c], &cases[c], &gmax);
      if (!(gmax > 1e-3)) fail_msg("%s (seed %d): gradient max %g is too small to test", bo_mlp_loss_names[cases[c].loss], (int)seed, gmax);
      if (!(err < 1e-6)) fail_msg("%s beta %g guard %g (seed %d): max |FD - G| / max |G| = %.3g", bo_mlp_loss_names[cases[c].loss], cases[c].beta, cases[c].guard, (int)seed, err);
      fixture_free(&f);
    }
}

static void the_gradient_check_catches_a_missing_term(void **state)
{
  (void)state;
  /* Negative control: TRADES' and FIRE's values against CE's gradient (the regulariser's gradient
   * left out), and FIRE's value against a detached natural side (beta only through x'). */
  fixture          f;
  double           gmax;
  bo_mlp_loss_opts ce = loss_opts(BO_MLP_LOSS_CE, 0, 0), trades = loss_opts(BO_MLP_LOSS_TRADES, 6, 0), fire = loss_opts(BO_MLP_LOSS_FIRE, 20, 0), fire_half = loss_opts(BO_MLP_LOSS_FIRE, 10, 0);
  fixture_make(&f, 2);
  if (!(gradient_error(&f, &trades, &ce, &gmax) > 1e-2)) fail_msg("TRADES checked against CE's gradient passed: the harness cannot fail");
  if (!(gradient_error(&f, &fire, &ce, &gmax) > 1e-2)) fail_msg("FIRE checked against CE's gradient passed: the harness cannot fail");
  if (!(gradient_error(&f, &fire, &fire_half, &gmax) > 1e-2)) fail_msg("FIRE (beta 20) checked against beta 10's gradient passed: the harness cannot fail");
  fixture_free(&f);
}

static void pgd_stays_in_the_ball_and_the_box_and_raises_its_objective(void **state)
{
  (void)state;
  const bo_pgd_objective objs[] = {BO_PGD_CE, BO_PGD_KL, BO_PGD_FR};
  for (size_t q = 0; q < 3; q++) {
    fixture     f;
    bo_pgd_opts o = {.eps = 0.05, .step = 0.02, .steps = 6, .sigma = 0.001, .seed = 3, .purpose = 9};
    uint64_t    stream[5];
    double      xa[30], x[30];
    fixture_make(&f, 4 + q);
    for (int64_t j = 0; j < 30; j++) x[j] = j % 4 == 0 ? 0.0 : j % 4 == 1 ? 1.0 : f.x[j]; /* inputs on the box's faces */
    for (int i = 0; i < 5; i++) stream[i] = bo_mlp_stream_id(1, i);
    OK(bo_mlp_pgd(&f.net, objs[q], &o, f.m, x, f.y, stream, &f.w[0], xa));
    double moved = 0;
    for (int64_t j = 0; j < 30; j++) {
      if (!(xa[j] >= 0 && xa[j] <= 1)) fail_msg("objective %d: x'[%lld] = %g outside [0, 1]", (int)objs[q], (long long)j, xa[j]);
      if (!(fabs(xa[j] - x[j]) <= o.eps + 1e-15)) fail_msg("objective %d: |x' - x|[%lld] = %g > eps %g", (int)objs[q], (long long)j, fabs(xa[j] - x[j]), o.eps);
      moved = fmax(moved, fabs(xa[j] - x[j]));
    }
    if (!(moved > 0.5 * o.eps)) fail_msg("objective %d: the attack moved at most %g", (int)objs[q], moved);
    /* the objective at x' beats the objective at the random start (0 steps) */
    bo_mlp_loss_opts lo = loss_opts(objs[q] == BO_PGD_CE ? BO_MLP_LOSS_AT : objs[q] == BO_PGD_KL ? BO_MLP_LOSS_TRADES : BO_MLP_LOSS_FIRE, 1, 0);
    double           start[30], t1[2] = {0, 0}, t0[2] = {0, 0};
    bo_pgd_opts      o0 = o;
    o0.steps            = 0;
    OK(bo_mlp_pgd(&f.net, objs[q], &o0, f.m, x, f.y, stream, &f.w[0], start));
    OK(bo_mlp_pair_loss(&f.net, &lo, f.m, x, xa, f.y, 1.0, f.w, NULL, NULL, NULL, t1));
    OK(bo_mlp_pair_loss(&f.net, &lo, f.m, x, start, f.y, 1.0, f.w, NULL, NULL, NULL, t0));
    const int at = objs[q] == BO_PGD_CE ? 0 : 1;
    if (!(t1[at] > t0[at])) fail_msg("objective %d: %g after the attack, %g at its start", (int)objs[q], t1[at], t0[at]);
    /* a row's attack does not depend on the other rows of the tile */
    double one[6];
    OK(bo_mlp_pgd(&f.net, objs[q], &o, 1, x + 2 * 6, f.y + 2, stream + 2, &f.w[1], one));
    for (int j = 0; j < 6; j++)
      if (fabs(one[j] - xa[2 * 6 + j]) > 1e-12) fail_msg("objective %d: row 2 attacked alone differs (%g vs %g)", (int)objs[q], one[j], xa[2 * 6 + j]);
    fixture_free(&f);
  }
}

static void the_batch_gradient_is_the_mean_of_the_tile_losses(void **state)
{
  (void)state;
  /* 70 rows = 3 tiles: bo_mlp_batch_gradient (one rank) against the tiles' bo_mlp_tile_loss summed. */
  fixture          f;
  const int64_t    B = 70;
  float           *data = malloc(sizeof(float) * (size_t)(B * 6));
  uint8_t          lab[70];
  int64_t          idx[70];
  bo_mlp_work      w[2];
  bo_rng           r;
  bo_mlp_loss_opts o = loss_opts(BO_MLP_LOSS_FIRE, 20, 0);
  fixture_make(&f, 9);
  bo_rng_init(&r, 9, 2, 7);
  for (int64_t j = 0; j < B * 6; j++) data[j] = (float)bo_rng_uniform(&r);
  for (int64_t i = 0; i < B; i++) lab[i] = (uint8_t)(i % 3), idx[i] = B - 1 - i;
  double *g = malloc(sizeof(double) * (size_t)f.net.nparam), *ref = calloc((size_t)f.net.nparam, sizeof(double)), terms[2], rt[2] = {0, 0};
  OK(bo_mlp_batch_gradient(&f.net, PETSC_COMM_SELF, &o, data, lab, B, idx, 4, g, terms));
  OK(bo_mlp_work_create(&f.net, BO_MLP_TILE_ROWS, &w[0]));
  OK(bo_mlp_work_create(&f.net, BO_MLP_TILE_ROWS, &w[1]));
  for (int64_t lo = 0; lo < B; lo += BO_MLP_TILE_ROWS) {
    const int64_t hi = lo + BO_MLP_TILE_ROWS < B ? lo + BO_MLP_TILE_ROWS : B;
    double        x[BO_MLP_TILE_ROWS * 6];
    uint8_t       y[BO_MLP_TILE_ROWS];
    uint64_t      s[BO_MLP_TILE_ROWS];
    for (int64_t b = lo; b < hi; b++) {
      for (int j = 0; j < 6; j++) x[(b - lo) * 6 + j] = data[idx[b] * 6 + j];
      y[b - lo] = lab[idx[b]], s[b - lo] = bo_mlp_stream_id(4, idx[b]);
    }
    OK(bo_mlp_tile_loss(&f.net, &o, hi - lo, x, y, s, 1.0 / (double)B, w, ref, rt));
  }
  double gmax = 0, emax = 0;
  for (int64_t j = 0; j < f.net.nparam; j++) gmax = fmax(gmax, fabs(ref[j])), emax = fmax(emax, fabs(ref[j] - g[j]));
  if (!(gmax > 0 && emax <= 1e-12 * gmax)) fail_msg("batch gradient differs from the summed tiles: %g of %g", emax, gmax);
  if (!(fabs(terms[0] - rt[0] / (double)B) < 1e-12 && fabs(terms[1] - rt[1] / (double)B) < 1e-12)) fail_msg("batch terms %g %g, tiles %g %g", terms[0], terms[1], rt[0] / B, rt[1] / B);
  OK(bo_mlp_work_destroy(&w[0]));
  OK(bo_mlp_work_destroy(&w[1]));
  free(g), free(ref), free(data);
  fixture_free(&f);
}

static void a_zero_network_predicts_uniformly_and_ce_is_log_k(void **state)
{
  (void)state;
  fixture          f;
  double           t[2] = {0, 0};
  bo_mlp_loss_opts o    = loss_opts(BO_MLP_LOSS_FIRE, 20, 0);
  fixture_make(&f, 1);
  memset(f.net.param, 0, sizeof(double) * (size_t)f.net.nparam);
  OK(bo_mlp_pair_loss(&f.net, &o, f.m, f.x, f.xa, f.y, 1.0, f.w, NULL, NULL, NULL, t));
  if (!(fabs(t[0] - 5 * log(3.0)) < 1e-12 && fabs(t[1]) < 1e-12)) fail_msg("zero network: CE sum %g (expected 5 log 3), FR %g (expected 0)", t[0], t[1]);
  fixture_free(&f);
}

static void bad_inputs_give_one_line_errors(void **state)
{
  (void)state;
  bo_mlp           net;
  fixture          f;
  double           t[2];
  int64_t          h[1] = {0};
  bo_mlp_loss_opts o    = loss_opts(BO_MLP_LOSS_TRADES, -1, 0);
  EXPECT_INPUT_ERROR(bo_mlp_create(4, 1, h, 3, &net), "mlp: ", "hidden layer 1 has 0 units");
  EXPECT_INPUT_ERROR(bo_mlp_create(4, 0, NULL, 1, &net), "mlp: ", "2 <= k <= 255");
  EXPECT_INPUT_ERROR(bo_mlp_create(4, BO_MLP_MAX_LAYERS, NULL, 3, &net), "mlp: ", "hidden layers");
  fixture_make(&f, 1);
  EXPECT_INPUT_ERROR(bo_mlp_pair_loss(&f.net, &o, f.m, f.x, f.xa, f.y, 1.0, f.w, NULL, NULL, NULL, t), "mlp: ", "beta = -1");
  o.beta  = 1;
  f.y[2]  = 3;
  EXPECT_INPUT_ERROR(bo_mlp_pair_loss(&f.net, &o, f.m, f.x, f.xa, f.y, 1.0, f.w, NULL, NULL, NULL, t), "mlp: ", "label[2] = 3");
  f.y[2]  = 0;
  EXPECT_INPUT_ERROR(bo_mlp_pair_loss(&f.net, &o, 9, f.x, f.xa, f.y, 1.0, f.w, NULL, NULL, NULL, t), "mlp: ", "9 rows for a work of 5");
  bo_pgd_opts p = {.eps = -0.1, .step = 0.01, .steps = 1};
  uint64_t    s[5];
  double      xa[30];
  EXPECT_INPUT_ERROR(bo_mlp_pgd(&f.net, BO_PGD_CE, &p, f.m, f.x, f.y, s, &f.w[0], xa), "mlp: ", "attack eps -0.1");
  fixture_free(&f);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("CE, AT, TRADES and FIRE (guard 0 and 1e-6): gradients through the whole network (weights, x, x') equal central differences (relative 1e-6)", gradients_through_the_network_equal_central_differences),
    PROPERTY("negative control: the gradient check fails when the TRADES/FIRE term's gradient is missing or mis-weighted", the_gradient_check_catches_a_missing_term),
    PROPERTY("PGD (CE, KL, FR) stays in the eps-ball and in [0, 1], moves, raises its objective, and attacks a row independently of its tile", pgd_stays_in_the_ball_and_the_box_and_raises_its_objective),
    PROPERTY("the batch gradient and terms are the mean of the tile losses (3 tiles, shuffled rows)", the_batch_gradient_is_the_mean_of_the_tile_losses),
    PROPERTY("a zero network predicts uniformly: CE is log k per row and the FR term is 0", a_zero_network_predicts_uniformly_and_ce_is_log_k),
    PROPERTY("bad sizes, options and labels give one-line USER_INPUT errors", bad_inputs_give_one_line_errors),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
