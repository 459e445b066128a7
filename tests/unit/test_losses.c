/* test_losses.c - properties of the loss terms (losses.h): every gradient equals central
 * differences, the documented special cases, order independence, and one-line input errors. */
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
#include "boundopt/losses.h"
#include "boundopt/rng.h"
#include "unit_support.h"

/* ---------------------------------------------------------------- error capture */

/* ---------------------------------------------------------------- fixtures */

/* A random batch: logits N(0, 1.5^2), a mask with zeros and fractional weights, labels with some
 * ignored pixels (every class present in every group when n allows), groups i mod ngroups. */
typedef struct {
  int64_t       n, k, G;
  double       *z, *z2, *mask, *target, *cw;
  uint8_t      *y;
  int32_t      *group;
  bo_loss_batch b;
} batch;

static void batch_make(batch *t, uint64_t seed, int64_t n, int64_t k, int64_t G, PetscBool masked)
{
  bo_rng r;
  bo_rng_init(&r, seed, 0, 11);
  t->n = n, t->k = k, t->G = G;
  t->z      = malloc(sizeof(double) * (size_t)(n * k));
  t->z2     = malloc(sizeof(double) * (size_t)(n * k));
  t->mask   = malloc(sizeof(double) * (size_t)n);
  t->target = malloc(sizeof(double) * (size_t)(G * k));
  t->cw     = malloc(sizeof(double) * (size_t)k);
  t->y      = malloc((size_t)n);
  t->group  = malloc(sizeof(int32_t) * (size_t)n);
  for (int64_t i = 0; i < n * k; i++) t->z[i] = 1.5 * bo_rng_normal(&r), t->z2[i] = 1.5 * bo_rng_normal(&r);
  for (int64_t i = 0; i < n; i++) {
    const double u = bo_rng_uniform(&r);
    t->mask[i]     = !masked || i < G * k ? 1.0 : u < 0.15 ? 0.0 : u < 0.3 ? 0.5 + u : 1.0; /* the first G k rows stay valid */
    t->y[i]        = (i / G) < k ? (uint8_t)((i / G) % k) : bo_rng_uniform(&r) < 0.1 ? BO_LABEL_IGNORE : (uint8_t)bo_rng_below(&r, (uint64_t)k);
    t->group[i]    = (int32_t)(i % G);
  }
  for (int64_t g = 0; g < G; g++) { /* a random point of the simplex */
    double s = 0;
    for (int64_t c = 0; c < k; c++) s += t->target[g * k + c] = -log(1 - bo_rng_uniform(&r));
    for (int64_t c = 0; c < k; c++) t->target[g * k + c] /= s;
  }
  for (int64_t c = 0; c < k; c++) t->cw[c] = 0.2 + bo_rng_uniform(&r);
  t->b = (bo_loss_batch){.comm = PETSC_COMM_SELF, .n = n, .k = k, .logits = t->z, .mask = t->mask, .ngroups = G, .group = t->group};
}

static void batch_free(batch *t) { free(t->z), free(t->z2), free(t->mask), free(t->target), free(t->cw), free(t->y), free(t->group); }

/* ---------------------------------------------------------------- the gradient harness */

/* A term under test: value and grad (+=) at the batch's logits; grad2 for two-sided terms. */
typedef PetscErrorCode (*term_fn)(batch *t, const void *ctx, double weight, double *value, double *grad, double *grad2);

/* The gradient the term adds (with weight 0.7 onto a prefilled buffer, so the weight and the
 * accumulation are tested too) equals central differences of its value: max |FD - G| / max |G|
 * below 1e-6.  Two-sided terms are also checked in their second logits. */
static void check_gradient(const char *what, term_fn f, const void *ctx, batch *t, PetscBool two_sided, double gmin)
{
  const int64_t nk = t->n * t->k;
  const double  w  = 0.7, h = 1e-6;
  double       *g = malloc(sizeof *g * (size_t)nk), *g2 = malloc(sizeof *g2 * (size_t)nk), *pre = malloc(sizeof *pre * (size_t)nk);
  double        v0, vp, vm;

  for (int64_t i = 0; i < nk; i++) pre[i] = g[i] = g2[i] = 0.01 * (double)(i % 7);
  OK(f(t, ctx, w, &v0, g, two_sided ? g2 : NULL));
  if (!isfinite(v0)) fail_msg("%s: value %g is not finite", what, v0);
  for (int side = 0; side < (two_sided ? 2 : 1); side++) {
    double *z = side ? t->z2 : t->z, *gs = side ? g2 : g, gmax = 0, emax = 0;
    for (int64_t i = 0; i < nk; i++) {
      const double z0 = z[i], an = (gs[i] - pre[i]) / w;
      z[i] = z0 + h;
      OK(f(t, ctx, 0.0, &vp, NULL, NULL));
      z[i] = z0 - h;
      OK(f(t, ctx, 0.0, &vm, NULL, NULL));
      z[i] = z0;
      gmax = fmax(gmax, fabs(an));
      emax = fmax(emax, fabs((vp - vm) / (2 * h) - an));
    }
    if (!(gmax > gmin)) fail_msg("%s (side %d, n %lld k %lld G %lld): gradient max %g is too small to test", what, side, (long long)t->n, (long long)t->k, (long long)t->G, gmax);
    if (!(emax / gmax < 1e-6)) fail_msg("%s (side %d, n %lld k %lld G %lld): max |FD - G| / max |G| = %.3g", what, side, (long long)t->n, (long long)t->k, (long long)t->G, emax / gmax);
  }
  free(g), free(g2), free(pre);
}

/* Runs check_gradient on several random sizes, masked and unmasked; logits scaled by zscale (1/T
 * keeps softmax(T z) away from saturation, where gradients are too small to test). */
static void check_gradient_sizes(const char *what, term_fn f, const void *ctx, PetscBool two_sided, int64_t kmin, double zscale)
{
  static const int64_t sizes[][3] = {{1, 2, 1}, {9, 3, 1}, {25, 2, 2}, {40, 5, 3}, {17, 4, 2}};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    if (sizes[s][1] < kmin) continue;
    for (int masked = 0; masked < 2; masked++) {
      batch t;
      batch_make(&t, 100 + s, sizes[s][0], sizes[s][1], sizes[s][2], masked ? PETSC_TRUE : PETSC_FALSE);
      for (int64_t i = 0; i < t.n * t.k; i++) t.z[i] *= zscale, t.z2[i] *= zscale;
      check_gradient(what, f, ctx, &t, two_sided, 1e-4);
      batch_free(&t);
    }
  }
}

/* ---------------------------------------------------------------- terms as term_fn */

static PetscErrorCode ce_w(batch *t, const void *c, double w, double *v, double *g, double *g2) { return bo_loss_ce(&t->b, t->y, c ? t->cw : NULL, w, v, g); }
static PetscErrorCode ent_w(batch *t, const void *c, double w, double *v, double *g, double *g2) { return bo_loss_entropy(&t->b, c ? t->cw : NULL, w, v, g); }

typedef struct {
  bo_prop_opts prop;
  double       eps;
  bo_kl_dir    dir;
} prop_case;

static PetscErrorCode ment_w(batch *t, const void *c, double w, double *v, double *g, double *g2)
{
  const prop_case *pc = c;
  return bo_loss_marginal_entropy(&t->b, &pc->prop, pc->eps, w, v, g);
}
static PetscErrorCode kl_w(batch *t, const void *c, double w, double *v, double *g, double *g2)
{
  const prop_case *pc = c;
  return bo_loss_kl_prop(&t->b, &pc->prop, t->target, pc->dir, pc->eps, w, v, g);
}
static PetscErrorCode l1_w(batch *t, const void *c, double w, double *v, double *g, double *g2)
{
  const prop_case *pc = c;
  return bo_loss_l1_prop(&t->b, &pc->prop, t->target, w, v, g);
}
static PetscErrorCode dice_w(batch *t, const void *c, double w, double *v, double *g, double *g2)
{
  const bo_dice_form *form = c;
  return bo_loss_dice(&t->b, t->y, t->cw, *form, w, v, g);
}
static PetscErrorCode fr_w(batch *t, const void *c, double w, double *v, double *g, double *g2) { return bo_loss_fisher_rao(&t->b, t->z2, *(const double *)c, w, v, g, g2); }
/* KD: the student is the batch's logits, the teacher its second logits (detached: one side). */
static PetscErrorCode kd_w(batch *t, const void *c, double w, double *v, double *g, double *g2) { return bo_loss_kd(&t->b, t->z2, *(const double *)c, w, v, g); }
/* KD with both branches: grad the student's (z), grad2 the teacher's (z2). */
typedef struct {
  bo_kd_form form;
  double     T;
} kd_case;
static PetscErrorCode kd_pair_w(batch *t, const void *c, double w, double *v, double *g, double *g2)
{
  const kd_case *kc = c;
  return bo_loss_kd_pair(&t->b, t->z2, kc->form, kc->T, w, v, g, g2);
}

/* ---------------------------------------------------------------- gradients */

static void ce_and_entropy_gradients_equal_central_differences(void **state)
{
  (void)state;
  check_gradient_sizes("ce", ce_w, NULL, PETSC_FALSE, 1, 1.0);
  check_gradient_sizes("ce class-weighted", ce_w, "w", PETSC_FALSE, 1, 1.0);
  check_gradient_sizes("entropy", ent_w, NULL, PETSC_FALSE, 1, 1.0);
  check_gradient_sizes("entropy class-weighted", ent_w, "w", PETSC_FALSE, 1, 1.0);
}

static void proportion_term_gradients_equal_central_differences(void **state)
{
  (void)state;
  const bo_prop_opts mean = {BO_PROP_MEAN, 1.0, 0.0}, slb = {BO_PROP_MEAN, 10.0, 1e-10}, hot = {BO_PROP_MEAN, 3.0, 0.5}, maxn = {BO_PROP_MAXNORM, 1.0, 0.0};
  const prop_case    cases[] = {
    {mean, 0, BO_KL_PRED_PRIOR}, {mean, 1e-10, BO_KL_PRED_PRIOR}, {hot, 1e-3, BO_KL_PRED_PRIOR}, {maxn, 1e-10, BO_KL_PRED_PRIOR},
    {mean, 0, BO_KL_PRIOR_PRED}, {slb, 1e-10, BO_KL_PRIOR_PRED}, {hot, 1e-3, BO_KL_PRIOR_PRED}, {maxn, 0, BO_KL_PRIOR_PRED},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char what[64];
    snprintf(what, sizeof what, "kl case %zu", i);
    check_gradient_sizes(what, kl_w, &cases[i], PETSC_FALSE, 1, 1 / cases[i].prop.temperature);
    snprintf(what, sizeof what, "marginal entropy case %zu", i);
    check_gradient_sizes(what, ment_w, &cases[i], PETSC_FALSE, 2, 1 / cases[i].prop.temperature);
  }
  const prop_case l1[] = {{slb, 0, 0}, {mean, 0, 0}, {maxn, 0, 0}};
  for (size_t i = 0; i < sizeof l1 / sizeof l1[0]; i++) check_gradient_sizes("l1", l1_w, &l1[i], PETSC_FALSE, 1, 1 / l1[i].prop.temperature);
}

static void dice_and_fisher_rao_gradients_equal_central_differences(void **state)
{
  (void)state;
  const bo_dice_form lin = BO_DICE_LINEAR, lg = BO_DICE_LOG;
  const double       guard0 = 0, guard6 = 1e-6;
  check_gradient_sizes("dice linear", dice_w, &lin, PETSC_FALSE, 1, 1.0);
  check_gradient_sizes("dice log", dice_w, &lg, PETSC_FALSE, 1, 1.0);
  check_gradient_sizes("fisher-rao", fr_w, &guard0, PETSC_TRUE, 2, 1.0);
  check_gradient_sizes("fisher-rao guard 1e-6", fr_w, &guard6, PETSC_TRUE, 2, 1.0);
  /* near coincidence: BC within 1e-7 of 1, the series branch of g */
  batch t;
  batch_make(&t, 7, 12, 3, 1, PETSC_TRUE);
  for (int64_t i = 0; i < t.n * t.k; i++) t.z2[i] = t.z[i] + 3e-4 * sin((double)i);
  check_gradient("fisher-rao near coincidence", fr_w, &guard0, &t, PETSC_TRUE, 1e-7);
  batch_free(&t);
}

static void kd_gradient_equals_central_differences(void **state)
{
  (void)state;
  const double T2 = 2.0, T1 = 1.0, T05 = 0.5;
  check_gradient_sizes("kd T 2", kd_w, &T2, PETSC_FALSE, 2, 1.0);
  check_gradient_sizes("kd T 1", kd_w, &T1, PETSC_FALSE, 2, 1.0);
  check_gradient_sizes("kd T 0.5", kd_w, &T05, PETSC_FALSE, 2, 0.5);
}

/* Both branches of both KD forms, T 0.5 to 4, masked and unmasked, 5 sizes.  The code form's
 * gradients are small by construction (a mean over N k elements of a divergence between two
 * near-uniform distributions), so its "too small to test" floor is lower; the criterion is the same. */
static void kd_pair_gradients_of_both_branches_equal_central_differences(void **state)
{
  (void)state;
  static const int64_t sizes[][2] = {{1, 2}, {9, 3}, {25, 2}, {40, 5}, {17, 4}};
  const double         Ts[]       = {0.5, 1.0, 2.0, 4.0};
  for (int form = 0; form < 2; form++)
    for (size_t j = 0; j < sizeof Ts / sizeof Ts[0]; j++)
      for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int masked = 0; masked < 2; masked++) {
          const kd_case kc = {form ? BO_KD_CODE : BO_KD_PAPER, Ts[j]};
          char          what[64];
          batch         t;
          batch_make(&t, 300 + s, sizes[s][0], sizes[s][1], 1, masked ? PETSC_TRUE : PETSC_FALSE);
          if (!form) /* keep softmax(z / T) away from saturation, as for bo_loss_kd */
            for (int64_t i = 0; i < t.n * t.k; i++) t.z[i] *= fmin(1.0, Ts[j]), t.z2[i] *= fmin(1.0, Ts[j]);
          snprintf(what, sizeof what, "kd %s T %g%s", form ? "code" : "paper", Ts[j], masked ? " masked" : "");
          check_gradient(what, kd_pair_w, &kc, &t, PETSC_TRUE, form ? 1e-8 : 1e-4);
          batch_free(&t);
        }
}

/* Shape and CRF on an h x w image: terms of the logits through a fixture struct. */
typedef struct {
  int64_t         h, w;
  const double   *ddesc, *lo, *hi, *image;
  bo_penalty_kind kind;
  double          t;
  int             which; /* 0 descriptors (through ddesc), 1 penalty, 2 crf */
} image_case;

static PetscErrorCode image_w(batch *t, const void *c, double w, double *v, double *g, double *g2)
{
  const image_case *ic = c;
  if (ic->which == 1) return bo_loss_shape(ic->h, ic->w, t->k, t->z, t->mask, ic->lo, ic->hi, ic->kind, ic->t, w, v, g);
  if (ic->which == 2) return bo_loss_crf(ic->h, ic->w, t->k, t->z, t->mask, 3, ic->image, 2.0, 40.0, w, v, g);
  /* descriptors: the scalar sum_j ddesc_j desc_j */
  double desc[5 * BO_SHAPE_NDESC], s = 0;
  PetscCall(bo_shape_descriptors(ic->h, ic->w, t->k, t->z, t->mask, desc));
  for (int64_t j = 0; j < t->k * BO_SHAPE_NDESC; j++) s += ic->ddesc[j] * desc[j];
  *v = s;
  if (g) {
    double dd[5 * BO_SHAPE_NDESC];
    for (int64_t j = 0; j < t->k * BO_SHAPE_NDESC; j++) dd[j] = w * ic->ddesc[j];
    PetscCall(bo_shape_backward(ic->h, ic->w, t->k, t->z, t->mask, dd, g));
  }
  return 0;
}

static void shape_and_crf_gradients_equal_central_differences(void **state)
{
  (void)state;
  const int64_t dims[][3] = {{5, 6, 2}, {7, 4, 3}, {6, 6, 4}};
  for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++) {
    const int64_t h = dims[s][0], w = dims[s][1], k = dims[s][2];
    double        ddesc[4 * BO_SHAPE_NDESC], lo[4 * BO_SHAPE_NDESC], hi[4 * BO_SHAPE_NDESC], desc[4 * BO_SHAPE_NDESC], *image = malloc(sizeof(double) * (size_t)(h * w * 3));
    bo_rng        r;
    batch         t;
    bo_rng_init(&r, 55 + s, 0, 1);
    for (int masked = 0; masked < 2; masked++) {
      batch_make(&t, 200 + s, h * w, k, 1, masked ? PETSC_TRUE : PETSC_FALSE);
      for (int64_t j = 0; j < h * w * 3; j++) image[j] = 255 * bo_rng_uniform(&r);
      for (int64_t j = 0; j < k * BO_SHAPE_NDESC; j++) ddesc[j] = bo_rng_normal(&r);
      for (int d = 0; d < BO_SHAPE_NDESC; d++) { /* each descriptor alone, then all together */
        double one[4 * BO_SHAPE_NDESC] = {0};
        for (int64_t c = 0; c < k; c++) one[c * BO_SHAPE_NDESC + d] = 1.0 + (double)c; /* the sum of the sizes is constant */
        image_case ic = {.h = h, .w = w, .ddesc = one, .which = 0};
        char       what[64];
        snprintf(what, sizeof what, "shape descriptor %s", bo_shape_names[d]);
        check_gradient(what, image_w, &ic, &t, PETSC_FALSE, 1e-4);
      }
      image_case all = {.h = h, .w = w, .ddesc = ddesc, .which = 0};
      check_gradient("shape descriptors combined", image_w, &all, &t, PETSC_FALSE, 1e-4);
      /* bounds around the current descriptors, violated on both sides for some */
      OK(bo_shape_descriptors(h, w, k, t.z, t.mask, desc));
      for (int64_t j = 0; j < k * BO_SHAPE_NDESC; j++) {
        const double f = desc[j], m = 0.1 * fabs(f) + 0.05;
        lo[j] = (j % 3 == 0) ? f + m : f - m; /* j % 3 == 0: lower bound violated */
        hi[j] = (j % 3 == 1) ? f - 0.5 * m : f + 2 * m;
        if (j % 3 == 0) hi[j] = f + 3 * m;
      }
      image_case elb = {.h = h, .w = w, .lo = lo, .hi = hi, .kind = BO_PENALTY_ELB, .t = 2.0, .which = 1};
      image_case quad = {.h = h, .w = w, .lo = lo, .hi = hi, .kind = BO_PENALTY_QUAD, .t = 1.0, .which = 1};
      image_case crf = {.h = h, .w = w, .image = image, .which = 2};
      check_gradient("shape penalty elb", image_w, &elb, &t, PETSC_FALSE, 1e-4);
      check_gradient("shape penalty quad", image_w, &quad, &t, PETSC_FALSE, 1e-4);
      check_gradient("crf", image_w, &crf, &t, PETSC_FALSE, 1e-4);
      batch_free(&t);
    }
    free(image);
  }
}

/* ---------------------------------------------------------------- special cases */

static void ce_is_log_k_on_uniform_logits_and_zero_without_labelled_pixels(void **state)
{
  (void)state;
  batch  t;
  double v, g[20], g0[20];
  batch_make(&t, 1, 5, 4, 1, PETSC_FALSE);
  memset(t.z, 0, sizeof(double) * 20);
  OK(bo_loss_ce(&t.b, t.y, NULL, 1, &v, NULL));
  assert_close(v, log(4.0), 1e-15, "CE on uniform logits");
  /* one pixel by hand: -log softmax */
  t.z[0] = 1, t.z[1] = -2, t.z[2] = 0.5, t.z[3] = 3;
  const uint8_t y0 = 2;
  bo_loss_batch one = {.comm = PETSC_COMM_SELF, .n = 1, .k = 4, .logits = t.z, .ngroups = 1};
  OK(bo_loss_ce(&one, &y0, NULL, 1, &v, NULL));
  assert_close(v, -(0.5 - log(exp(1) + exp(-2) + exp(0.5) + exp(3))), 1e-14, "CE of one pixel");
  /* every pixel ignored, then every pixel masked out: value 0, gradient untouched */
  for (int i = 0; i < 20; i++) g[i] = g0[i] = 0.5 * i;
  memset(t.y, BO_LABEL_IGNORE, 5);
  OK(bo_loss_ce(&t.b, t.y, NULL, 1, &v, g));
  assert_true(v == 0 && memcmp(g, g0, sizeof g) == 0);
  memset(t.y, 1, 5), memset(t.mask, 0, sizeof(double) * 5);
  OK(bo_loss_ce(&t.b, t.y, NULL, 1, &v, g));
  assert_true(v == 0 && memcmp(g, g0, sizeof g) == 0);
  batch_free(&t);
}

static void entropy_is_log_k_on_uniform_logits_and_follows_the_binary_logit_formula(void **state)
{
  (void)state;
  batch  t;
  double v, g[40] = {0};
  batch_make(&t, 2, 8, 5, 1, PETSC_FALSE);
  memset(t.z, 0, sizeof(double) * 40);
  OK(bo_loss_entropy(&t.b, NULL, 1, &v, g));
  assert_close(v, log(5.0), 1e-15, "entropy of uniform rows");
  for (int i = 0; i < 40; i++) assert_close(g[i], 0, 1e-15, "entropy gradient at its maximum");
  batch_free(&t);
  /* binary logits (0, u): dL/du = -u p (1 - p) / N (spec 1), masked */
  batch_make(&t, 3, 10, 2, 1, PETSC_TRUE);
  double N = 0, gb[20] = {0};
  for (int i = 0; i < 10; i++) t.z[2 * i] = 0, N += t.mask[i];
  OK(bo_loss_entropy(&t.b, NULL, 1, &v, gb));
  for (int i = 0; i < 10; i++) {
    const double u = t.z[2 * i + 1], p = 1 / (1 + exp(-u));
    assert_close(gb[2 * i + 1], -t.mask[i] * u * p * (1 - p) / N, 1e-15, "binary entropy gradient");
    assert_close(gb[2 * i], -gb[2 * i + 1], 1e-15, "softmax gradients sum to 0 over the classes");
  }
  batch_free(&t);
}

static void marginal_entropy_is_log_k_on_balanced_predictions_and_skips_empty_groups(void **state)
{
  (void)state;
  bo_prop_opts  o;
  const double  z[] = {2, -1, -1, 2}; /* two rows, mirror images: pihat = (1/2, 1/2) */
  const int32_t grp[] = {0, 0, 2, 2};
  double        v, v2;
  bo_prop_defaults(&o);
  bo_loss_batch b = {.comm = PETSC_COMM_SELF, .n = 2, .k = 2, .logits = z, .ngroups = 1};
  OK(bo_loss_marginal_entropy(&b, &o, 0, 1, &v, NULL));
  assert_close(v, log(2.0), 1e-15, "marginal entropy of balanced predictions");
  /* the same rows in group 2 of three (groups 0, 1 empty) and duplicated: the mean skips empties */
  const double z4[] = {2, -1, -1, 2, 2, -1, -1, 2};
  b = (bo_loss_batch){.comm = PETSC_COMM_SELF, .n = 4, .k = 2, .logits = z4, .ngroups = 3, .group = grp};
  OK(bo_loss_marginal_entropy(&b, &o, 0, 1, &v2, NULL));
  assert_close(v2, log(2.0), 1e-15, "marginal entropy over non-empty groups only");
}

static void kl_is_zero_at_the_prior_and_a_zero_prior_class_is_pushed_down(void **state)
{
  (void)state;
  batch        t;
  bo_prop_opts o;
  double       pihat[6], v, g[60] = {0}, gmax = 0;
  bo_prop_defaults(&o);
  batch_make(&t, 4, 20, 3, 2, PETSC_TRUE);
  OK(bo_loss_proportions(&t.b, &o, pihat, NULL));
  for (int dir = 0; dir < 2; dir++) {
    memset(g, 0, sizeof g);
    OK(bo_loss_kl_prop(&t.b, &o, pihat, (bo_kl_dir)dir, 0, 1, &v, g));
    assert_close(v, 0, 1e-15, "KL at the prior");
    for (int i = 0; i < 60; i++) gmax = fmax(gmax, fabs(g[i]));
    assert_close(gmax, 0, 1e-15, "KL gradient at the prior");
  }
  /* SFDA: class 2 absent from the prior, eps 1e-10: L = sum_k pihat (log(pihat + eps) - log(prior + eps)) */
  double prior[6] = {0.7, 0.3, 0, 0.5, 0.5, 0}, want = 0;
  memset(g, 0, sizeof g);
  OK(bo_loss_kl_prop(&t.b, &o, prior, BO_KL_PRED_PRIOR, 1e-10, 1, &v, g));
  for (int gi = 0; gi < 2; gi++)
    for (int c = 0; c < 3; c++) want += 0.5 * pihat[gi * 3 + c] * (log(pihat[gi * 3 + c] + 1e-10) - log(prior[gi * 3 + c] + 1e-10));
  assert_close(v, want, 1e-12 * want, "KL with a zero-prior class");
  for (int i = 0; i < 20; i++)
    if (t.mask[i] > 0 && !(g[i * 3 + 2] > 0)) fail_msg("row %d: the zero-prior class's logit gradient %g is not positive", i, g[i * 3 + 2]);
  EXPECT_INPUT_ERROR(bo_loss_kl_prop(&t.b, &o, prior, BO_KL_PRED_PRIOR, 0, 1, &v, g), "losses: ", "log_eps 0");
  /* the reverse direction ignores the zero prior class (0 log 0) */
  OK(bo_loss_kl_prop(&t.b, &o, prior, BO_KL_PRIOR_PRED, 0, 1, &v, NULL));
  assert_true(isfinite(v) && v > 0);
  batch_free(&t);
}

/* RePRI (spec 1): with logits (0, u) and k = 2, dKL/du_j = [log(pbar/pi1) - log((1-pbar)/(1-pi1))] p_j (1 - p_j)/|Q|. */
static void kl_on_binary_logits_matches_the_repri_gradient(void **state)
{
  (void)state;
  batch        t;
  bo_prop_opts o;
  double       g[30] = {0}, pihat[2], v;
  const double prior[2] = {0.8, 0.2};
  bo_prop_defaults(&o);
  batch_make(&t, 5, 15, 2, 1, PETSC_FALSE);
  for (int i = 0; i < 15; i++) t.z[2 * i] = 0;
  OK(bo_loss_proportions(&t.b, &o, pihat, NULL));
  OK(bo_loss_kl_prop(&t.b, &o, prior, BO_KL_PRED_PRIOR, 0, 1, &v, g));
  const double pb = pihat[1], a = log(pb / prior[1]) - log((1 - pb) / prior[0]);
  for (int i = 0; i < 15; i++) {
    const double p = 1 / (1 + exp(-t.z[2 * i + 1]));
    assert_close(g[2 * i + 1], a * p * (1 - p) / 15, 1e-15, "RePRI KL gradient");
  }
  batch_free(&t);
}

static void l1_has_no_gradient_where_proportions_equal_the_target(void **state)
{
  (void)state;
  batch        t;
  bo_prop_opts o = {BO_PROP_MEAN, 10.0, 1e-10};
  double       pihat[6], g[60] = {0}, v;
  batch_make(&t, 6, 20, 3, 2, PETSC_TRUE);
  OK(bo_loss_proportions(&t.b, &o, pihat, NULL));
  OK(bo_loss_l1_prop(&t.b, &o, pihat, 1, &v, g));
  assert_true(v == 0);
  for (int i = 0; i < 60; i++) assert_true(g[i] == 0);
  /* one class off: value |e| / k / G and the gradient moves only through that class's sign */
  pihat[1] += 0.3;
  OK(bo_loss_l1_prop(&t.b, &o, pihat, 1, &v, NULL));
  assert_close(v, 0.3 / 3 / 2, 1e-15, "L1 with one class off by 0.3");
  batch_free(&t);
}

static void dice_is_zero_on_confident_correct_predictions_and_masks_empty_classes(void **state)
{
  (void)state;
  batch  t;
  double v, vl, g[40], g0[40];
  batch_make(&t, 8, 10, 4, 1, PETSC_FALSE);
  for (int i = 0; i < 10; i++) {
    t.y[i] = (uint8_t)(i % 3); /* class 3 never present */
    for (int c = 0; c < 4; c++) t.z[i * 4 + c] = c == t.y[i] ? 40 : -40;
  }
  OK(bo_loss_dice(&t.b, t.y, NULL, BO_DICE_LINEAR, 1, &v, NULL));
  OK(bo_loss_dice(&t.b, t.y, NULL, BO_DICE_LOG, 1, &vl, NULL));
  assert_close(v, 0, 1e-14, "linear Dice of a perfect prediction (empty class 3 masked)");
  assert_close(vl, 0, 1e-14, "log Dice of a perfect prediction");
  /* by hand, two pixels, k = 2, labels (0, 1): D_c = 2 p_{c,y=c} / (P_c + 1) */
  const double  z2[] = {0, 1, 0.5, -0.5};
  const uint8_t y2[] = {0, 1};
  bo_loss_batch b2 = {.comm = PETSC_COMM_SELF, .n = 2, .k = 2, .logits = z2, .ngroups = 1};
  double        p0 = 1 / (1 + exp(1.0)), p1 = 1 / (1 + exp(1.0)); /* p(pixel 0, class 0), p(pixel 1, class 1) */
  const double  q1 = 1 / (1 + exp(-1.0));                          /* p(pixel 1, class 0) */
  const double  D0 = 2 * p0 / (p0 + q1 + 1), D1 = 2 * p1 / ((1 - p0) + (1 - q1) + 1);
  OK(bo_loss_dice(&b2, y2, NULL, BO_DICE_LINEAR, 1, &v, NULL));
  assert_close(v, 1 - (D0 + D1) / 2, 1e-15, "Dice by hand");
  /* all pixels ignored: no group counts, value 0, gradient untouched */
  for (int i = 0; i < 40; i++) g[i] = g0[i] = i;
  memset(t.y, BO_LABEL_IGNORE, 10);
  OK(bo_loss_dice(&t.b, t.y, NULL, BO_DICE_LOG, 1, &v, g));
  assert_true(v == 0 && memcmp(g, g0, sizeof g) == 0);
  batch_free(&t);
}

static void fisher_rao_is_zero_on_equal_logits_and_matches_the_binary_closed_form(void **state)
{
  (void)state;
  batch  t;
  double v, g[30] = {0}, g2[30] = {0};
  batch_make(&t, 9, 10, 3, 1, PETSC_TRUE);
  memcpy(t.z2, t.z, sizeof(double) * 30);
  OK(bo_loss_fisher_rao(&t.b, t.z2, 0, 1, &v, g, g2));
  assert_close(v, 0, 1e-15, "FR of equal distributions");
  for (int i = 0; i < 30; i++) assert_close(fabs(g[i]) + fabs(g2[i]), 0, 1e-15, "FR gradient at coincidence");
  batch_free(&t);
  /* binary: d_FR = 2 |arctan e^{u/2} - arctan e^{u'/2}|, so L = mean (d_FR/2)^2 */
  const double  z[] = {0, 1.3, 0, -0.4}, zz[] = {0, -2.0, 0, 0.9};
  bo_loss_batch b = {.comm = PETSC_COMM_SELF, .n = 2, .k = 2, .logits = z, .ngroups = 1};
  double        want = 0;
  for (int i = 0; i < 2; i++) {
    const double d = atan(exp(z[2 * i + 1] / 2)) - atan(exp(zz[2 * i + 1] / 2));
    want += d * d / 2;
  }
  OK(bo_loss_fisher_rao(&b, zz, 0, 1, &v, NULL, NULL));
  assert_close(v, want, 1e-14, "binary FR closed form");
  /* the series of g joins arccos(x)/sqrt(1 - x^2) at e = 1e-6 and g(1) = 1 */
  assert_close(bo_fr_g(1 - 1e-6 + 1e-12), bo_fr_g(1 - 1e-6 - 1e-12), 1e-9, "g across the series switch");
  assert_close(bo_fr_g(1 - 0.999999e-6), acos(1 - 0.999999e-6) / sqrt(1 - (1 - 0.999999e-6) * (1 - 0.999999e-6)), 1e-9, "series vs closed form");
  assert_true(bo_fr_g(1.0) == 1.0);
  assert_close(bo_fr_g(0.0), PETSC_PI / 2, 1e-15, "g(0)");
}

static void kd_is_zero_at_the_teacher_and_without_valid_pixels_and_matches_the_kl_formula(void **state)
{
  (void)state;
  batch  t;
  double v, g[30] = {0}, want = 0;
  batch_make(&t, 13, 10, 3, 1, PETSC_TRUE);
  OK(bo_loss_kd(&t.b, t.z, 2.0, 1, &v, g)); /* student = teacher */
  assert_true(v == 0);
  for (int i = 0; i < 30; i++) assert_true(g[i] == 0);
  /* the mean of m_i KL(q_T,i || q_S,i) over N = sum m, q = softmax(z / T), by hand */
  double N = 0;
  for (int64_t i = 0; i < t.n; i++) {
    double qs[3], qt[3], ss = 0, st = 0, kl = 0;
    for (int c = 0; c < 3; c++) ss += qs[c] = exp(t.z[i * 3 + c] / 3.0), st += qt[c] = exp(t.z2[i * 3 + c] / 3.0);
    for (int c = 0; c < 3; c++) kl += qt[c] / st * log((qt[c] / st) / (qs[c] / ss));
    want += t.mask[i] * kl, N += t.mask[i];
  }
  OK(bo_loss_kd(&t.b, t.z2, 3.0, 1, &v, NULL));
  assert_close(v, want / N, 1e-14, "KD against the hand-computed mean KL(q_T || q_S)");
  /* an empty mask: 0, no gradient; a teacher far more confident than its underflow: finite */
  for (int64_t i = 0; i < t.n; i++) t.mask[i] = 0;
  OK(bo_loss_kd(&t.b, t.z2, 2.0, 1, &v, g));
  assert_true(v == 0);
  for (int i = 0; i < 30; i++) assert_true(g[i] == 0);
  for (int64_t i = 0; i < t.n; i++) t.mask[i] = 1;
  t.z2[0] = 1e4, t.z[1] = -1e4;
  OK(bo_loss_kd(&t.b, t.z2, 1.0, 1, &v, g));
  assert_true(isfinite(v) && v > 0);
  batch_free(&t);
}

/* The code form by hand: P = softmax(z), a = softmax(P_S / T), b = softmax(P_T / T), mean of
 * m_i KL(a_i || b_i) over N k; zero at coincidence and with an empty mask; finite when saturated.
 * The paper form's pair call is bo_loss_kd bit for bit, with the teacher's gradient added. */
static void kd_pair_code_form_matches_the_double_softmax_by_hand_and_paper_form_matches_bo_loss_kd(void **state)
{
  (void)state;
  batch  t;
  double v, v2, g[30], g2[30], h[30], want = 0, N = 0;
  batch_make(&t, 17, 10, 3, 1, PETSC_TRUE);
  for (int i = 0; i < 30; i++) g[i] = g2[i] = 0;
  OK(bo_loss_kd_pair(&t.b, t.z, BO_KD_CODE, 2.0, 1, &v, g, g2)); /* student = teacher */
  assert_true(v == 0);
  for (int i = 0; i < 30; i++) assert_true(g[i] == 0 && g2[i] == 0);
  OK(bo_loss_kd_pair(&t.b, t.z, BO_KD_PAPER, 2.0, 1, &v, g, g2));
  assert_true(v == 0);
  for (int i = 0; i < 30; i++) assert_true(g[i] == 0 && g2[i] == 0);
  for (int64_t i = 0; i < t.n; i++) {
    double ps[3], pt[3], a[3], b[3], ss = 0, st = 0, sa = 0, sb = 0, kl = 0;
    for (int c = 0; c < 3; c++) ss += ps[c] = exp(t.z[i * 3 + c]), st += pt[c] = exp(t.z2[i * 3 + c]);
    for (int c = 0; c < 3; c++) sa += a[c] = exp(ps[c] / ss / 3.0), sb += b[c] = exp(pt[c] / st / 3.0);
    for (int c = 0; c < 3; c++) kl += a[c] / sa * log((a[c] / sa) / (b[c] / sb));
    want += t.mask[i] * kl, N += t.mask[i];
  }
  OK(bo_loss_kd_pair(&t.b, t.z2, BO_KD_CODE, 3.0, 1, &v, NULL, NULL));
  assert_close(v, want / (N * 3), 1e-15, "code KD against the hand-computed mean over (pixel, class) of KL(q(P_S) || q(P_T))");
  assert_true(v > 0);
  /* paper form: the pair call equals bo_loss_kd bit for bit on the student side */
  for (int i = 0; i < 30; i++) g[i] = h[i] = 0.01 * i, g2[i] = 0;
  OK(bo_loss_kd(&t.b, t.z2, 2.0, 0.7, &v, h));
  OK(bo_loss_kd_pair(&t.b, t.z2, BO_KD_PAPER, 2.0, 0.7, &v2, g, g2));
  assert_true(!memcmp(&v, &v2, sizeof v) && !memcmp(g, h, sizeof g));
  /* the teacher's logit gradients sum to 0 over each row (softmax shift invariance), both forms */
  for (int form = 0; form < 2; form++) {
    for (int i = 0; i < 30; i++) g2[i] = 0;
    OK(bo_loss_kd_pair(&t.b, t.z2, form ? BO_KD_CODE : BO_KD_PAPER, 2.0, 1, NULL, NULL, g2));
    double gmax = 0;
    for (int i = 0; i < 30; i++) gmax = fmax(gmax, fabs(g2[i]));
    assert_true(gmax > 0);
    for (int64_t i = 0; i < t.n; i++) assert_close(g2[i * 3] + g2[i * 3 + 1] + g2[i * 3 + 2], 0, 1e-15, "row sum of the teacher's gradient");
  }
  /* an empty mask: 0 and no gradient on either side */
  for (int64_t i = 0; i < t.n; i++) t.mask[i] = 0;
  for (int form = 0; form < 2; form++) {
    for (int i = 0; i < 30; i++) g[i] = g2[i] = 0;
    OK(bo_loss_kd_pair(&t.b, t.z2, form ? BO_KD_CODE : BO_KD_PAPER, 2.0, 1, &v, g, g2));
    assert_true(v == 0);
    for (int i = 0; i < 30; i++) assert_true(g[i] == 0 && g2[i] == 0);
  }
  /* saturated branches (P exactly one-hot): finite values and gradients, the teacher's q_T = 0 classes included */
  for (int64_t i = 0; i < t.n; i++) t.mask[i] = 1;
  t.z2[0] = 1e4, t.z[1] = -1e4, t.z[5] = 800;
  for (int form = 0; form < 2; form++) {
    for (int i = 0; i < 30; i++) g[i] = g2[i] = 0;
    OK(bo_loss_kd_pair(&t.b, t.z2, form ? BO_KD_CODE : BO_KD_PAPER, 1.0, 1, &v, g, g2));
    assert_true(isfinite(v) && v > 0);
    for (int i = 0; i < 30; i++) assert_true(isfinite(g[i]) && isfinite(g2[i]));
  }
  /* the code form is bounded: log(a/b) <= 2/T per class, so KL_i <= 2/T and L <= 2/(T k) */
  for (int64_t i = 0; i < t.n * t.k; i++) t.z[i] = (i % 3 == 0) ? 50 : -50, t.z2[i] = (i % 3 == 1) ? 50 : -50;
  OK(bo_loss_kd_pair(&t.b, t.z2, BO_KD_CODE, 0.5, 1, &v, NULL, NULL));
  assert_true(v > 0 && v <= 2 / (0.5 * 3));
  batch_free(&t);
}

static void extended_log_barrier_is_c1_at_the_switch_and_quad_is_relu_squared(void **state)
{
  (void)state;
  const double ts[] = {0.5, 1, 5, 10};
  for (size_t i = 0; i < 4; i++) {
    const double t = ts[i], z0 = -1 / (t * t), e = 1e-9;
    double       dl, dr;
    const double vl = bo_penalty(BO_PENALTY_ELB, z0 - e, t, &dl), vr = bo_penalty(BO_PENALTY_ELB, z0 + e, t, &dr);
    assert_close(vl, vr, 1e-7, "ELB continuous at -1/t^2");
    assert_close(dl, dr, 1e-6 * t, "ELB derivative continuous at -1/t^2");
    const double zin = z0 - 1;
    assert_close(bo_penalty(BO_PENALTY_ELB, zin, t, &dl), -log(-zin) / t, 1e-15, "ELB is the log barrier inside");
    assert_close(dl, -1 / (t * zin), 1e-15, "log barrier derivative");
    assert_close(bo_penalty(BO_PENALTY_ELB, 3.0, t, &dr), 3 * t + 2 * log(t) / t + 1 / t, 1e-12, "ELB linear part");
    assert_true(dr == t);
  }
  double d;
  assert_true(bo_penalty(BO_PENALTY_QUAD, -1.0, 1, &d) == 0 && d == 0);
  assert_true(bo_penalty(BO_PENALTY_QUAD, 1.5, 1, &d) == 2.25 && d == 3.0);
}

static void shape_descriptors_of_a_hard_square_are_its_geometry(void **state)
{
  (void)state;
  enum { H = 12, W = 10, K = 2 };
  double z[H * W * K], desc[K * BO_SHAPE_NDESC], mask[H * W], s[H * W], len = 0;
  for (int i = 0; i < H * W; i++) { /* class 1 on rows 3..6, columns 5..8: a 4 x 4 square */
    const int y = i / W, x = i % W, in = y >= 3 && y <= 6 && x >= 5 && x <= 8;
    z[2 * i] = in ? -60 : 60, z[2 * i + 1] = -z[2 * i];
    s[i] = in;
  }
  OK(bo_shape_descriptors(H, W, K, z, NULL, desc));
  const double *d = desc + BO_SHAPE_NDESC;
  assert_close(d[BO_SHAPE_SIZE], 16, 1e-10, "size");
  assert_close(d[BO_SHAPE_CX], 6.5, 1e-10, "cx");
  assert_close(d[BO_SHAPE_CY], 4.5, 1e-10, "cy");
  assert_close(d[BO_SHAPE_DX], sqrt(1.25), 1e-10, "dx (std of 4 consecutive columns)");
  assert_close(d[BO_SHAPE_DY], sqrt(1.25), 1e-10, "dy");
  /* length: s^T L s with L built from the 8-neighbour adjacency (ordered pairs / 2) */
  for (int i = 0; i < H * W; i++)
    for (int j = 0; j < H * W; j++) {
      const int dy = abs(i / W - j / W), dx = abs(i % W - j % W);
      if (i != j && dy <= 1 && dx <= 1) len += 0.5 * (s[i] - s[j]) * (s[i] - s[j]);
    }
  assert_close(d[BO_SHAPE_LENGTH], len, 1e-9, "length = s^T L s");
  assert_close(len, 44, 0, "pairs across the boundary of a 4 x 4 square: 16 straight, 28 diagonal");
  /* an empty map (mask all 0): size 0, centroid and spread 0, no gradient */
  double g[H * W * K] = {0}, dd[K * BO_SHAPE_NDESC];
  for (int i = 0; i < H * W; i++) mask[i] = 0;
  for (int j = 0; j < K * BO_SHAPE_NDESC; j++) dd[j] = 1;
  OK(bo_shape_descriptors(H, W, K, z, mask, desc));
  for (int j = 0; j < K * BO_SHAPE_NDESC; j++) assert_true(desc[j] == 0);
  OK(bo_shape_backward(H, W, K, z, mask, dd, g));
  for (int i = 0; i < H * W * K; i++) assert_true(g[i] == 0);
}

static void crf_equals_the_pairwise_sum_and_is_zero_when_masked_out(void **state)
{
  (void)state;
  enum { H = 4, W = 5, K = 3, C = 3 };
  batch  t;
  double image[H * W * C], v, want = 0, p[H * W * K], mask0[H * W] = {0};
  bo_rng r;
  bo_rng_init(&r, 3, 0, 0);
  batch_make(&t, 10, H * W, K, 1, PETSC_TRUE);
  for (int i = 0; i < H * W * C; i++) image[i] = 255 * bo_rng_uniform(&r);
  OK(bo_loss_crf(H, W, K, t.z, t.mask, C, image, 3.0, 30.0, 1, &v, NULL));
  bo_softmax_rows(H * W, K, t.z, 1.0, p);
  for (int i = 0; i < H * W; i++)
    for (int j = 0; j < H * W; j++) {
      if (i == j) continue;
      double d2 = 0, c2 = 0, sk = 0;
      d2 = pow(i % W - j % W, 2) + pow(i / W - j / W, 2);
      for (int c = 0; c < C; c++) c2 += pow(image[i * C + c] - image[j * C + c], 2);
      for (int c = 0; c < K; c++) sk += t.mask[i] * p[i * K + c] * t.mask[j] * p[j * K + c];
      want -= exp(-d2 / 18 - c2 / 1800) * sk;
    }
  assert_close(v, want, 1e-12 * fabs(want), "CRF = -sum_{i != j} W_ij <S_i, S_j>");
  OK(bo_loss_crf(H, W, K, t.z, mask0, C, image, 3.0, 30.0, 1, &v, NULL));
  assert_true(v == 0);
  batch_free(&t);
}

/* Exact sums: permuting the rows (as a different split over ranks would) gives the same bits. */
static void values_and_gradients_do_not_depend_on_the_row_order(void **state)
{
  (void)state;
  batch        t, u;
  bo_prop_opts o = {BO_PROP_MEAN, 10.0, 1e-10};
  const int    n = 300, k = 4;
  double      *g = calloc((size_t)(n * k), sizeof *g), *gu = calloc((size_t)(n * k), sizeof *gu), v[9], vu[9];
  double      *gt = calloc((size_t)(n * k), sizeof *gt), *gtu = calloc((size_t)(n * k), sizeof *gtu);
  batch_make(&t, 11, n, k, 3, PETSC_TRUE);
  batch_make(&u, 11, n, k, 3, PETSC_TRUE);
  for (int i = 0; i < n; i++) { /* u = t with rows reversed */
    const int j = n - 1 - i;
    memcpy(u.z + j * k, t.z + i * k, sizeof(double) * k);
    memcpy(u.z2 + j * k, t.z2 + i * k, sizeof(double) * k);
    u.mask[j] = t.mask[i], u.y[j] = t.y[i], u.group[j] = t.group[i];
  }
  for (int pass = 0; pass < 2; pass++) {
    batch  *x  = pass ? &u : &t;
    double *gx = pass ? gu : g, *vx = pass ? vu : v;
    OK(bo_loss_ce(&x->b, x->y, NULL, 1, &vx[0], gx));
    OK(bo_loss_entropy(&x->b, NULL, 0.3, &vx[1], gx));
    OK(bo_loss_kl_prop(&x->b, &o, x->target, BO_KL_PRED_PRIOR, 1e-10, 0.5, &vx[2], gx));
    OK(bo_loss_l1_prop(&x->b, &o, x->target, 2, &vx[3], gx));
    OK(bo_loss_dice(&x->b, x->y, NULL, BO_DICE_LINEAR, 1, &vx[4], gx));
    OK(bo_loss_fisher_rao(&x->b, x->z2, 0, 1, &vx[5], gx, NULL));
    OK(bo_loss_kd(&x->b, x->z2, 2.0, 0.7, &vx[6], gx));
    OK(bo_loss_kd_pair(&x->b, x->z2, BO_KD_CODE, 2.0, 40, &vx[7], gx, pass ? gtu : gt));
    OK(bo_loss_kd_pair(&x->b, x->z2, BO_KD_PAPER, 2.0, 0.7, &vx[8], gx, pass ? gtu : gt));
  }
  for (int j = 0; j < 9; j++)
    if (memcmp(&v[j], &vu[j], sizeof(double))) fail_msg("term %d: %.17g vs %.17g after reversing the rows", j, v[j], vu[j]);
  for (int i = 0; i < n; i++)
    if (memcmp(g + i * k, gu + (n - 1 - i) * k, sizeof(double) * k) || memcmp(gt + i * k, gtu + (n - 1 - i) * k, sizeof(double) * k)) fail_msg("row %d: gradient differs after reversing the rows", i);
  free(g), free(gu), free(gt), free(gtu);
  batch_free(&t), batch_free(&u);
}

static void bad_inputs_give_one_line_errors(void **state)
{
  (void)state;
  batch        t;
  bo_prop_opts o;
  double       v, img[12] = {0}, lo[2 * BO_SHAPE_NDESC] = {0};
  bo_prop_defaults(&o);
  batch_make(&t, 12, 6, 2, 2, PETSC_TRUE);
  EXPECT_INPUT_ERROR(bo_loss_ce(NULL, t.y, NULL, 1, &v, NULL), "losses: ", "batch is NULL");
  t.b.k = 0;
  EXPECT_INPUT_ERROR(bo_loss_entropy(&t.b, NULL, 1, &v, NULL), "losses: ", "k = 0");
  t.b.k = 2;
  t.y[3] = 7;
  EXPECT_INPUT_ERROR(bo_loss_ce(&t.b, t.y, NULL, 1, &v, NULL), "losses: ", "label[3] = 7");
  EXPECT_INPUT_ERROR(bo_loss_dice(&t.b, t.y, NULL, BO_DICE_LOG, 1, &v, NULL), "losses: ", "label[3] = 7");
  t.y[3] = 1;
  t.mask[2] = -1;
  EXPECT_INPUT_ERROR(bo_loss_entropy(&t.b, NULL, 1, &v, NULL), "losses: ", "mask[2] = -1");
  t.mask[2] = 1;
  t.group[4] = 2;
  EXPECT_INPUT_ERROR(bo_loss_l1_prop(&t.b, &o, t.target, 1, &v, NULL), "losses: ", "group[4] = 2");
  t.group[4] = 0;
  t.z[5] = NAN;
  EXPECT_INPUT_ERROR(bo_loss_ce(&t.b, t.y, NULL, 1, &v, NULL), "losses: ", "logits[2][1] = nan");
  t.z[5] = 0;
  o.temperature = 0;
  EXPECT_INPUT_ERROR(bo_loss_marginal_entropy(&t.b, &o, 0, 1, &v, NULL), "losses: ", "temperature = 0");
  o.temperature = 1, o.kind = BO_PROP_MAXNORM, o.smooth = 1e-10;
  EXPECT_INPUT_ERROR(bo_loss_kl_prop(&t.b, &o, t.target, BO_KL_PRED_PRIOR, 1e-10, 1, &v, NULL), "losses: ", "maxnorm");
  bo_prop_defaults(&o);
  t.target[1] = -0.1;
  EXPECT_INPUT_ERROR(bo_loss_l1_prop(&t.b, &o, t.target, 1, &v, NULL), "losses: ", "target[0][1] = -0.1");
  EXPECT_INPUT_ERROR(bo_loss_kl_prop(&t.b, &o, t.target, BO_KL_PRIOR_PRED, -1, 1, &v, NULL), "losses: ", "log_eps = -1");
  EXPECT_INPUT_ERROR(bo_loss_fisher_rao(&t.b, t.z2, 1.0, 1, &v, NULL, NULL), "losses: ", "guard = 1");
  EXPECT_INPUT_ERROR(bo_loss_fisher_rao(&t.b, NULL, 0, 1, &v, NULL, NULL), "losses: ", "logits2 is NULL");
  EXPECT_INPUT_ERROR(bo_loss_shape(2, 3, 2, t.z, NULL, lo, lo, BO_PENALTY_ELB, 0, 1, &v, NULL), "losses: ", "t = 0");
  EXPECT_INPUT_ERROR(bo_loss_shape(0, 3, 2, t.z, NULL, lo, lo, BO_PENALTY_ELB, 1, 1, &v, NULL), "losses: ", "image 0 x 3");
  EXPECT_INPUT_ERROR(bo_loss_crf(2, 3, 2, t.z, NULL, 2, img, 0, 10, 1, &v, NULL), "losses: ", "sigma_xy = 0");
  EXPECT_INPUT_ERROR(bo_loss_kd(&t.b, t.z2, 0, 1, &v, NULL), "losses: ", "kd: T = 0");
  EXPECT_INPUT_ERROR(bo_loss_kd_pair(&t.b, t.z2, BO_KD_CODE, -1, 1, &v, NULL, NULL), "losses: ", "kd: T = -1");
  EXPECT_INPUT_ERROR(bo_loss_kd_pair(&t.b, t.z2, (bo_kd_form)5, 1, 1, &v, NULL, NULL), "losses: ", "kd: form 5");
  EXPECT_INPUT_ERROR(bo_loss_kd_pair(&t.b, t.z2, BO_KD_CODE, 1, 1, &v, t.target, t.target), "losses: ", "kd: grad and grad_teacher are one buffer");
  EXPECT_INPUT_ERROR(bo_loss_kd_pair(&t.b, NULL, BO_KD_CODE, 1, 1, &v, NULL, NULL), "losses: ", "kd: teacher is NULL");
  EXPECT_INPUT_ERROR(bo_loss_kd(&t.b, NULL, 1, 1, &v, NULL), "losses: ", "kd: teacher is NULL");
  t.z2[3] = INFINITY;
  EXPECT_INPUT_ERROR(bo_loss_kd(&t.b, t.z2, 1, 1, &v, NULL), "losses: ", "kd: teacher[1][1] = inf");
  t.b.k = 1;
  EXPECT_INPUT_ERROR(bo_loss_kd(&t.b, t.z2, 1, 1, &v, NULL), "losses: ", "kd: k = 1");
  EXPECT_INPUT_ERROR(bo_loss_kd_pair(&t.b, t.z2, BO_KD_CODE, 1, 1, &v, NULL, NULL), "losses: ", "kd: k = 1");
  batch_free(&t);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("CE and entropy gradients (plain and class-weighted) equal central differences (relative 1e-6), masked, 5 sizes", ce_and_entropy_gradients_equal_central_differences),
    PROPERTY("KL both directions, marginal entropy and L1 on proportions (mean, T 10 + smoothing, maxnorm): gradients equal central differences", proportion_term_gradients_equal_central_differences),
    PROPERTY("soft Dice (linear, log) and Fisher-Rao (both sides, guard 0 and 1e-6, near coincidence) gradients equal central differences", dice_and_fisher_rao_gradients_equal_central_differences),
    PROPERTY("shape descriptors (each and combined), the bounded ELB/quadratic penalty and the dense CRF: gradients equal central differences", shape_and_crf_gradients_equal_central_differences),
    PROPERTY("KD (teacher detached, T 0.5, 1, 2) gradients equal central differences (relative 1e-6), masked, 5 sizes", kd_gradient_equals_central_differences),
    PROPERTY("KD with both branches (paper and code forms, T 0.5, 1, 2, 4): student and teacher gradients equal central differences, masked and unmasked, 5 sizes", kd_pair_gradients_of_both_branches_equal_central_differences),
    PROPERTY("CE is log k on uniform logits, equals -log softmax on one pixel, and is 0 with no gradient when nothing is labelled", ce_is_log_k_on_uniform_logits_and_zero_without_labelled_pixels),
    PROPERTY("entropy is log k with zero gradient on uniform rows; on logits (0, u) dL/du = -u p (1-p)/N", entropy_is_log_k_on_uniform_logits_and_follows_the_binary_logit_formula),
    PROPERTY("marginal entropy is log k on balanced predictions; empty groups are left out of the mean", marginal_entropy_is_log_k_on_balanced_predictions_and_skips_empty_groups),
    PROPERTY("KL is 0 with zero gradient at the prior (both directions); a zero-prior class (eps 1e-10) is pushed down; eps 0 with it is an error", kl_is_zero_at_the_prior_and_a_zero_prior_class_is_pushed_down),
    PROPERTY("KL on binary logits gives RePRI's du gradient", kl_on_binary_logits_matches_the_repri_gradient),
    PROPERTY("L1 on proportions: sign(0) = 0 gives no gradient at the target; one class off by e costs e/(k G)", l1_has_no_gradient_where_proportions_equal_the_target),
    PROPERTY("Dice is 0 on confident correct predictions (empty class masked), matches a hand computation, and is 0 with nothing labelled", dice_is_zero_on_confident_correct_predictions_and_masks_empty_classes),
    PROPERTY("Fisher-Rao is 0 with zero gradient at coincidence, matches the binary arctan closed form, and g's series joins its closed form", fisher_rao_is_zero_on_equal_logits_and_matches_the_binary_closed_form),
    PROPERTY("KD is 0 with no gradient at the teacher and with an empty mask, equals the hand-computed mean KL(q_T || q_S), and stays finite where q underflows", kd_is_zero_at_the_teacher_and_without_valid_pixels_and_matches_the_kl_formula),
    PROPERTY("code KD equals the double softmax by hand; both forms are 0 with no gradient at coincidence and on an empty mask, finite when saturated; paper pair = bo_loss_kd bit for bit", kd_pair_code_form_matches_the_double_softmax_by_hand_and_paper_form_matches_bo_loss_kd),
    PROPERTY("the extended log-barrier is C1 at -1/t^2 and the log barrier inside; quad is relu^2", extended_log_barrier_is_c1_at_the_switch_and_quad_is_relu_squared),
    PROPERTY("shape descriptors of a hard 4 x 4 square are its size, centre, std and boundary length; an empty map gives 0 and no gradient", shape_descriptors_of_a_hard_square_are_its_geometry),
    PROPERTY("the dense CRF term equals the explicit pairwise sum, and is 0 when the mask is empty", crf_equals_the_pairwise_sum_and_is_zero_when_masked_out),
    PROPERTY("values and gradient rows are bit-identical when the rows are reversed (exact sums)", values_and_gradients_do_not_depend_on_the_row_order),
    PROPERTY("bad batch, labels, mask, groups, logits, options, tables and image sizes give one-line USER_INPUT errors", bad_inputs_give_one_line_errors),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
