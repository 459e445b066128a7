/* test_heads.c - properties of the heads (heads.h) and optimisers (optim.h): forward formulas,
 * backward equals central differences through real losses, block sums, SGD/Adam steps by hand,
 * RePRI's init and descent, the one-hidden-layer ReLU head, and one-line input errors. */
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
#include "boundopt/heads.h"
#include "boundopt/losses.h"
#include "boundopt/optim.h"
#include "boundopt/rng.h"
#include "unit_support.h"

static double *random_array(uint64_t seed, int64_t n, double scale)
{
  double *v = malloc(sizeof *v * (size_t)n);
  bo_rng  r;
  bo_rng_init(&r, seed, 0, 21);
  for (int64_t i = 0; i < n; i++) v[i] = scale * bo_rng_normal(&r);
  return v;
}

/* ---------------------------------------------------------------- a loss through a head */

typedef struct {
  int64_t  n;
  double  *x, *mask, prior[2 * 2];
  uint8_t *y;
} data;

/* L(param) = CE + 0.5 entropy + 0.3 KL(pihat || prior) of the head's logits; grad = dL/dparam. */
static PetscErrorCode head_loss(const bo_head *h, const data *t, double *L, double *grad, int64_t nblocks, const int64_t *blocks)
{
  const int64_t k = h->k;
  double       *z = malloc(sizeof *z * (size_t)(t->n * k)), *gz = calloc((size_t)(t->n * k), sizeof *gz), v[3];
  bo_prop_opts  o;
  double        prior[8];
  bo_prop_defaults(&o);
  for (int64_t c = 0; c < k; c++) prior[c] = (1.0 + (double)c) / (double)(k * (k + 1) / 2);
  PetscCall(bo_head_forward(h, t->n, t->x, z));
  bo_loss_batch b = {.comm = PETSC_COMM_SELF, .n = t->n, .k = k, .logits = z, .mask = t->mask, .ngroups = 1};
  PetscCall(bo_loss_ce(&b, t->y, NULL, 1.0, &v[0], gz));
  PetscCall(bo_loss_entropy(&b, NULL, 0.5, &v[1], gz));
  PetscCall(bo_loss_kl_prop(&b, &o, prior, BO_KL_PRED_PRIOR, 0, 0.3, &v[2], gz));
  *L = v[0] + 0.5 * v[1] + 0.3 * v[2];
  if (grad) PetscCall(bo_head_backward(h, PETSC_COMM_SELF, t->n, t->x, gz, nblocks, blocks, grad));
  free(z), free(gz);
  return 0;
}

static void data_make(data *t, uint64_t seed, int64_t n, int64_t d, int64_t k)
{
  bo_rng r;
  bo_rng_init(&r, seed, 1, 22);
  t->n    = n;
  t->x    = random_array(seed, n * d, 1.0);
  t->mask = malloc(sizeof(double) * (size_t)n);
  t->y    = malloc((size_t)n);
  for (int64_t i = 0; i < n; i++) t->mask[i] = bo_rng_uniform(&r) < 0.2 ? 0.0 : 1.0, t->y[i] = (uint8_t)bo_rng_below(&r, (uint64_t)k);
}

static void data_free(data *t) { free(t->x), free(t->mask), free(t->y); }

static void check_head_gradient(bo_head *h, const data *t, const char *what)
{
  double *g = malloc(sizeof *g * (size_t)h->nparam), L, Lp, Lm, gmax = 0, emax = 0;
  OK(head_loss(h, t, &L, g, 0, NULL));
  for (int64_t j = 0; j < h->nparam; j++) {
    const double p0 = h->param[j], e = 1e-6;
    h->param[j] = p0 + e;
    OK(head_loss(h, t, &Lp, NULL, 0, NULL));
    h->param[j] = p0 - e;
    OK(head_loss(h, t, &Lm, NULL, 0, NULL));
    h->param[j] = p0;
    gmax = fmax(gmax, fabs(g[j]));
    emax = fmax(emax, fabs((Lp - Lm) / (2 * e) - g[j]));
  }
  if (!(gmax > 1e-4)) fail_msg("%s: gradient max %g is too small to test", what, gmax);
  if (!(emax / gmax < 1e-6)) fail_msg("%s: max |FD - G| / max |G| = %.3g", what, emax / gmax);
  free(g);
}

static void head_gradients_equal_central_differences_through_ce_entropy_and_kl(void **state)
{
  (void)state;
  const int64_t sizes[][3] = {{13, 4, 3}, {40, 7, 2}, {25, 3, 5}};
  for (size_t s = 0; s < 3; s++) {
    const int64_t n = sizes[s][0], d = sizes[s][1], k = sizes[s][2];
    data          t;
    bo_head       h;
    data_make(&t, 30 + s, n, d, k);
    OK(bo_head_create_linear(d, k, &h));
    double *p = random_array(40 + s, h.nparam, 0.5);
    memcpy(h.param, p, sizeof(double) * (size_t)h.nparam);
    check_head_gradient(&h, &t, "linear head");
    OK(bo_head_destroy(&h));
    data_free(&t);
    free(p);
    /* PROTO: k = 2, tau 20 squashed to keep sigma(u) unsaturated */
    data_make(&t, 50 + s, n, d, 2);
    OK(bo_head_create_proto(d, 3.0, &h));
    p = random_array(60 + s, h.nparam, 0.5);
    memcpy(h.param, p, sizeof(double) * (size_t)h.nparam);
    check_head_gradient(&h, &t, "prototype head");
    OK(bo_head_destroy(&h));
    data_free(&t);
    free(p);
  }
}

static void heads_compute_their_documented_logits(void **state)
{
  (void)state;
  const double x[] = {1, 2, -1, 0.5, 0, 0}; /* 3 rows, d = 2; the last row is zero */
  double       z[9];
  bo_head      h;
  OK(bo_head_create_linear(2, 3, &h));
  const double W[] = {1, 0, -1, 2, 0.5, 3}, b[] = {0.1, 0.2, 0.3};
  memcpy(h.param, W, sizeof W), memcpy(h.param + 6, b, sizeof b);
  OK(bo_head_forward(&h, 3, x, z));
  for (int i = 0; i < 3; i++)
    for (int c = 0; c < 3; c++) assert_close(z[i * 3 + c], x[2 * i] * W[c] + x[2 * i + 1] * W[3 + c] + b[c], 1e-15, "linear logit");
  OK(bo_head_destroy(&h));
  OK(bo_head_create_proto(2, 20, &h));
  h.param[0] = 3, h.param[1] = 4, h.param[2] = 0.7;
  OK(bo_head_forward(&h, 3, x, z));
  for (int i = 0; i < 3; i++) {
    const double nx = hypot(x[2 * i], x[2 * i + 1]), cs = nx > 0 ? (3 * x[2 * i] + 4 * x[2 * i + 1]) / (5 * nx) : 0;
    assert_true(z[2 * i] == 0);
    assert_close(z[2 * i + 1], 20 * cs - 0.7, 1e-13, "prototype logit u = tau cos - b");
  }
  OK(bo_head_destroy(&h));
}

static void block_sums_agree_with_row_sums_and_one_block_per_call_is_deterministic(void **state)
{
  (void)state;
  const int64_t n = 50, d = 6, k = 4, blocks[] = {0, 7, 7, 30, 50};
  data          t;
  bo_head       h;
  double        L, g1[28], g2[28], g3[28];
  data_make(&t, 70, n, d, k);
  OK(bo_head_create_linear(d, k, &h));
  double *p = random_array(71, h.nparam, 0.5);
  memcpy(h.param, p, sizeof(double) * (size_t)h.nparam);
  OK(head_loss(&h, &t, &L, g1, 0, NULL));
  OK(head_loss(&h, &t, &L, g2, 4, blocks));
  OK(head_loss(&h, &t, &L, g3, 4, blocks));
  for (int j = 0; j < 28; j++) assert_close(g2[j], g1[j], 1e-14 * (1 + fabs(g1[j])), "block sum vs row sum");
  assert_true(memcmp(g2, g3, sizeof g2) == 0);
  OK(bo_head_destroy(&h));
  data_free(&t);
  free(p);
}

static void repri_init_is_the_shot_mean_of_masked_means_and_the_mean_query_score(void **state)
{
  (void)state;
  const double xs[] = {1, 0, 3, 0, 0, 5, /* shot 0: rows (1,0), (3,0), (0,5) */ 0, 2, 0, 4, 9, 9}, fg[] = {1, 1, 0, 1, 1, 0};
  const double xq[] = {1, 0, 0, 1, 1, 1};
  bo_head      h;
  OK(bo_head_create_proto(2, 20, &h));
  OK(bo_head_proto_init(&h, 2, 3, xs, fg, 3, xq));
  /* shot means (2, 0) and (0, 3); theta = (1, 1.5) */
  assert_close(h.param[0], 1.0, 1e-9, "theta x"), assert_close(h.param[1], 1.5, 1e-9, "theta y");
  const double tn = hypot(1, 1.5), b = 20 * (1 / tn + 1.5 / tn + 2.5 / (sqrt(2) * tn)) / 3;
  assert_close(h.param[2], b, 1e-9, "b = mean query score");
  /* every shot empty: an error */
  const double none[] = {0, 0, 0, 0, 0, 0};
  EXPECT_INPUT_ERROR(bo_head_proto_init(&h, 2, 3, xs, none, 3, xq), "heads: ", "empty foreground");
  OK(bo_head_destroy(&h));
}

/* ---------------------------------------------------------------- optimisers */

static void sgd_steps_follow_pytorch_with_momentum_nesterov_and_decay(void **state)
{
  (void)state;
  bo_optim_opts o;
  bo_optim      opt;
  const double  g1[] = {1, -2}, g2[] = {0.5, 4};
  double        w[2] = {1, 1}, want[2];
  bo_optim_defaults_sgd(&o);
  o.lr = 0.1, o.weight_decay = 0.01;
  OK(bo_optim_create(&o, 2, &opt));
  OK(bo_optim_step(&opt, g1, w));
  for (int i = 0; i < 2; i++) assert_close(w[i], 1 - 0.1 * (g1[i] + 0.01), 1e-16, "plain SGD step with decay");
  OK(bo_optim_destroy(&opt));
  for (int nest = 0; nest < 2; nest++) {
    o.weight_decay = 0, o.momentum = 0.9, o.nesterov = nest ? PETSC_TRUE : PETSC_FALSE;
    w[0] = w[1] = 1;
    OK(bo_optim_create(&o, 2, &opt));
    OK(bo_optim_step(&opt, g1, w));
    OK(bo_optim_step(&opt, g2, w));
    for (int i = 0; i < 2; i++) { /* buf1 = g1, buf2 = 0.9 g1 + g2 */
      const double b1 = g1[i], b2 = 0.9 * g1[i] + g2[i];
      want[i] = nest ? 1 - 0.1 * (g1[i] + 0.9 * b1) - 0.1 * (g2[i] + 0.9 * b2) : 1 - 0.1 * b1 - 0.1 * b2;
      assert_close(w[i], want[i], 1e-15, nest ? "Nesterov SGD, two steps" : "momentum SGD, two steps");
    }
    OK(bo_optim_destroy(&opt));
  }
}

static void adam_first_step_is_lr_times_sign_and_two_steps_follow_the_formula(void **state)
{
  (void)state;
  bo_optim_opts o;
  bo_optim      opt;
  const double  g1[] = {3, -1e-3, 0.2}, g2[] = {-1, 2, 0.2};
  double        w[3] = {0, 0, 0};
  bo_optim_defaults_adam(&o);
  o.lr = 0.01;
  OK(bo_optim_create(&o, 3, &opt));
  OK(bo_optim_step(&opt, g1, w));
  for (int i = 0; i < 3; i++) assert_close(w[i], -0.01 * g1[i] / (fabs(g1[i]) + 1e-8), 1e-16, "first Adam step = lr g/(|g| + eps)");
  OK(bo_optim_step(&opt, g2, w));
  for (int i = 0; i < 3; i++) {
    const double m = 0.9 * 0.1 * g1[i] + 0.1 * g2[i], v = 0.999 * 0.001 * g1[i] * g1[i] + 0.001 * g2[i] * g2[i];
    const double want = -0.01 * g1[i] / (fabs(g1[i]) + 1e-8) - 0.01 / (1 - 0.81) * m / (sqrt(v) / sqrt(1 - 0.999 * 0.999) + 1e-8);
    assert_close(w[i], want, 1e-15, "second Adam step");
  }
  OK(bo_optim_destroy(&opt));
}

/* RePRI's loop (SGD, no momentum, lr 0.025, 49 steps) on a separable synthetic task: the loss
 * decreases and the adapted prototype beats the initial one on the query. */
static void sgd_on_the_prototype_head_decreases_the_repri_objective(void **state)
{
  (void)state;
  enum { D = 8, NS = 60, NQ = 120 };
  double       xs[NS * D], fg[NS], xq[NQ * D], zs[2 * NS], zq[2 * NQ], gz[2 * (NS + NQ)], g[D + 1], L[50];
  uint8_t      ys[NS];
  bo_rng       r;
  bo_head      h;
  bo_optim     opt;
  bo_optim_opts o;
  bo_prop_opts po;
  bo_rng_init(&r, 9, 0, 0);
  for (int i = 0; i < NS + NQ; i++) { /* foreground rows lean on axis 0, background on axis 1; query 30% fg */
    const int fgr = i < NS ? i % 3 == 0 : (i - NS) % 10 < 3;
    double   *x   = i < NS ? xs + i * D : xq + (i - NS) * D;
    for (int j = 0; j < D; j++) x[j] = 0.6 * bo_rng_normal(&r) + (j == (fgr ? 0 : 1) ? 1.0 : 0.0);
    if (i < NS) fg[i] = fgr, ys[i] = (uint8_t)fgr;
  }
  bo_prop_defaults(&po);
  OK(bo_head_create_proto(D, 20, &h));
  OK(bo_head_proto_init(&h, 1, NS, xs, fg, NQ, xq));
  bo_optim_defaults_sgd(&o);
  o.lr = 0.025;
  OK(bo_optim_create(&o, h.nparam, &opt));
  for (int it = 0; it <= 49; it++) {
    double v[3], pihat[2];
    memset(gz, 0, sizeof gz);
    OK(bo_head_forward(&h, NS, xs, zs));
    OK(bo_head_forward(&h, NQ, xq, zq));
    bo_loss_batch bs = {.comm = PETSC_COMM_SELF, .n = NS, .k = 2, .logits = zs, .ngroups = 1};
    bo_loss_batch bq = {.comm = PETSC_COMM_SELF, .n = NQ, .k = 2, .logits = zq, .ngroups = 1};
    if (it == 0) OK(bo_loss_proportions(&bq, &po, pihat, NULL)); /* pi^0: the initial classifier's */
    static double pi0[2];
    if (it == 0) pi0[0] = pihat[0], pi0[1] = pihat[1];
    OK(bo_loss_ce(&bs, ys, NULL, 1.0, &v[0], gz));
    OK(bo_loss_entropy(&bq, NULL, 1.0, &v[1], gz + 2 * NS));
    OK(bo_loss_kl_prop(&bq, &po, pi0, BO_KL_PRED_PRIOR, 0, 1.0, &v[2], gz + 2 * NS));
    L[it] = v[0] + v[1] + v[2];
    if (it == 49) break;
    double gs[D + 1];
    OK(bo_head_backward(&h, PETSC_COMM_SELF, NS, xs, gz, 0, NULL, gs));
    OK(bo_head_backward(&h, PETSC_COMM_SELF, NQ, xq, gz + 2 * NS, 0, NULL, g));
    for (int j = 0; j <= D; j++) g[j] += gs[j];
    OK(bo_optim_step(&opt, g, h.param));
  }
  if (!(L[49] < L[0] - 0.05)) fail_msg("RePRI objective %g -> %g after 49 SGD steps: expected a decrease", L[0], L[49]);
  OK(bo_optim_destroy(&opt));
  OK(bo_head_destroy(&h));
}

/* An MLP head with He init from seed and random biases (so both ReLU sides occur). */
static void mlp_make(bo_head *h, int64_t d, int64_t m, int64_t k, uint64_t seed)
{
  OK(bo_head_create_mlp(d, m, k, h));
  OK(bo_head_mlp_init(h, seed));
  double *b = random_array(seed + 100, m + k, 0.3);
  memcpy(h->param + d * m, b, sizeof(double) * (size_t)m);
  memcpy(h->param + d * m + m + m * k, b + m, sizeof(double) * (size_t)k);
  free(b);
}

static void mlp_head_gradients_equal_central_differences(void **state)
{
  (void)state;
  const int64_t sizes[][4] = {{13, 4, 5, 3}, {40, 7, 8, 2}, {25, 3, 16, 5}};
  for (size_t s = 0; s < 3; s++) {
    const int64_t n = sizes[s][0], d = sizes[s][1], m = sizes[s][2], k = sizes[s][3];
    data          t;
    bo_head       h;
    data_make(&t, 80 + s, n, d, k);
    mlp_make(&h, d, m, k, 90 + s);
    assert_int_equal(h.nparam, d * m + m + m * k + k);
    check_head_gradient(&h, &t, "mlp head");
    OK(bo_head_destroy(&h));
    data_free(&t);
  }
}

static void mlp_head_computes_relu_layers_row_by_row_and_its_init_is_seeded(void **state)
{
  (void)state;
  const int64_t n = 9, d = 3, m = 4, k = 2;
  double       *x = random_array(5, n * d, 1.0), z[18], zr[2];
  bo_head       h, h2;
  mlp_make(&h, d, m, k, 7);
  const double *W1 = h.param, *b1 = W1 + d * m, *W2 = b1 + m, *b2 = W2 + m * k;
  OK(bo_head_forward(&h, n, x, z));
  int active = 0, inactive = 0;
  for (int64_t i = 0; i < n; i++) {
    for (int64_t c = 0; c < k; c++) {
      double v = b2[c];
      for (int64_t j = 0; j < m; j++) {
        double a = b1[j];
        for (int64_t q = 0; q < d; q++) a += x[i * d + q] * W1[q * m + j];
        if (c == 0) active += a > 0, inactive += a <= 0;
        v += (a > 0 ? a : 0) * W2[j * k + c];
      }
      assert_close(z[i * k + c], v, 1e-13, "mlp logit relu(x W1 + b1) W2 + b2");
    }
    OK(bo_head_forward(&h, 1, x + i * d, zr)); /* one row per call: the same bits (rank-count independent) */
    assert_true(memcmp(zr, z + i * k, sizeof zr) == 0);
  }
  assert_true(active > 0 && inactive > 0);
  OK(bo_head_create_mlp(d, m, k, &h2));
  OK(bo_head_mlp_init(&h2, 7));
  assert_true(memcmp(h2.param, W1, sizeof(double) * (size_t)(d * m)) == 0);
  for (int64_t j = 0; j < m; j++) assert_true(h2.param[d * m + j] == 0);
  OK(bo_head_mlp_init(&h2, 8));
  assert_true(memcmp(h2.param, W1, sizeof(double) * (size_t)(d * m)) != 0);
  OK(bo_head_destroy(&h2));
  /* He init: W1 entries have variance 2/d (400 x 50 draws, 4 sigma) */
  OK(bo_head_create_mlp(400, 50, 2, &h2));
  OK(bo_head_mlp_init(&h2, 3));
  double v = 0;
  for (int64_t j = 0; j < 400 * 50; j++) v += h2.param[j] * h2.param[j] / (400.0 * 50.0);
  assert_close(v, 2.0 / 400.0, 4 * sqrt(2.0 / 20000.0) * 2.0 / 400.0, "He variance of W1");
  OK(bo_head_destroy(&h2));
  OK(bo_head_destroy(&h));
  free(x);
}

static void mlp_block_sums_agree_with_row_sums_and_repeat(void **state)
{
  (void)state;
  const int64_t n = 50, d = 6, m = 8, k = 3, blocks[] = {0, 7, 7, 30, 50};
  data          t;
  bo_head       h;
  double        L, g1[83], g2[83], g3[83];
  data_make(&t, 75, n, d, k);
  mlp_make(&h, d, m, k, 76);
  assert_int_equal(h.nparam, 83);
  OK(head_loss(&h, &t, &L, g1, 0, NULL));
  OK(head_loss(&h, &t, &L, g2, 4, blocks));
  OK(head_loss(&h, &t, &L, g3, 4, blocks));
  for (int j = 0; j < 83; j++) assert_close(g2[j], g1[j], 1e-14 * (1 + fabs(g1[j])), "mlp block sum vs row sum");
  assert_true(memcmp(g2, g3, sizeof g2) == 0);
  OK(bo_head_destroy(&h));
  data_free(&t);
}

static void bad_inputs_give_one_line_errors(void **state)
{
  (void)state;
  bo_head       h;
  bo_optim      opt;
  bo_optim_opts o;
  double        x[4] = {1, 2, NAN, 0}, z[4], g[4] = {0};
  const int64_t blocks[] = {0, 3};
  EXPECT_INPUT_ERROR(bo_head_create_linear(0, 3, &h), "heads: ", "d = 0");
  EXPECT_INPUT_ERROR(bo_head_create_proto(2, 0, &h), "heads: ", "tau = 0");
  EXPECT_INPUT_ERROR(bo_head_create_mlp(2, 0, 2, &h), "heads: ", "0 hidden units");
  OK(bo_head_create_linear(2, 2, &h));
  EXPECT_INPUT_ERROR(bo_head_mlp_init(&h, 1), "heads: ", "not MLP");
  OK(bo_head_destroy(&h));
  OK(bo_head_create_proto(2, 20, &h));
  EXPECT_INPUT_ERROR(bo_head_forward(&h, 1, x, z), "heads: ", "theta is zero");
  h.param[0] = 1;
  EXPECT_INPUT_ERROR(bo_head_forward(&h, 2, x, z), "heads: ", "x[1][0] = nan");
  x[2] = 0;
  EXPECT_INPUT_ERROR(bo_head_backward(&h, PETSC_COMM_SELF, 2, x, g, 1, blocks, z), "heads: ", "expected 0 and n");
  OK(bo_head_destroy(&h));
  bo_optim_defaults_adam(&o);
  o.beta1 = 1;
  EXPECT_INPUT_ERROR(bo_optim_create(&o, 3, &opt), "optim: ", "beta1 = 1");
  bo_optim_defaults_sgd(&o);
  o.nesterov = PETSC_TRUE;
  EXPECT_INPUT_ERROR(bo_optim_create(&o, 3, &opt), "optim: ", "nesterov");
  o.nesterov = PETSC_FALSE, o.lr = -1;
  EXPECT_INPUT_ERROR(bo_optim_create(&o, 3, &opt), "optim: ", "lr = -1");
  o.lr = 0.1;
  OK(bo_optim_create(&o, 2, &opt));
  g[1] = INFINITY;
  EXPECT_INPUT_ERROR(bo_optim_step(&opt, g, z), "optim: ", "grad[1] = inf");
  OK(bo_optim_destroy(&opt));
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("linear and prototype head gradients through CE + entropy + KL equal central differences (relative 1e-6)", head_gradients_equal_central_differences_through_ce_entropy_and_kl),
    PROPERTY("the linear head computes x W + b and the prototype head (0, tau cos(x, theta) - b), 0 for a zero row", heads_compute_their_documented_logits),
    PROPERTY("block-wise gradient sums agree with row-wise ones (1e-14) and repeat bit-identically", block_sums_agree_with_row_sums_and_one_block_per_call_is_deterministic),
    PROPERTY("RePRI init: theta = mean over shots of masked means, b = mean query score; all-empty shots are an error", repri_init_is_the_shot_mean_of_masked_means_and_the_mean_query_score),
    PROPERTY("SGD steps (decay, momentum, Nesterov) equal PyTorch's formulas by hand", sgd_steps_follow_pytorch_with_momentum_nesterov_and_decay),
    PROPERTY("Adam's first step is lr g/(|g| + eps) and its second follows the bias-corrected formula", adam_first_step_is_lr_times_sign_and_two_steps_follow_the_formula),
    PROPERTY("49 SGD steps (lr 0.025) on the prototype head decrease the RePRI objective CE + H + KL", sgd_on_the_prototype_head_decreases_the_repri_objective),
    PROPERTY("mlp head gradients (ReLU, both sides active) through CE + entropy + KL equal central differences (relative 1e-6)", mlp_head_gradients_equal_central_differences),
    PROPERTY("the mlp head computes relu(x W1 + b1) W2 + b2, the same bits one row per call, and its He init is seeded", mlp_head_computes_relu_layers_row_by_row_and_its_init_is_seeded),
    PROPERTY("mlp block-wise gradient sums agree with row-wise ones (1e-14) and repeat bit-identically", mlp_block_sums_agree_with_row_sums_and_repeat),
    PROPERTY("bad sizes, tau, prototypes, features, blocks and optimiser options give one-line USER_INPUT errors", bad_inputs_give_one_line_errors),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
