/* test_descriptors.c - shape descriptors as the only supervision (shapebounds.h, spec losses.md
 * section 5): the gradient of the whole bounded-descriptor objective of a batch equals central
 * differences, the barrier is inactive (quadratic: exactly 0; log-barrier: gradient ~ 1/t) when the
 * bounds hold, the bounds made from a ground-truth mask contain its descriptors (checked against
 * an independent count of size, centre, spread and boundary pairs), the set names, and one-line
 * input errors. */
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
#include "boundopt/rng.h"
#include "boundopt/shapebounds.h"
#include "unit_support.h"

#define ND                 (2 * BO_SHAPE_NDESC)

/* ---------------------------------------------------------------- fixtures */

/* A random binary mask: 1-2 filled ellipses (a random centre, semi-axes 1.5..h/3) on an h x w grid. */
static void random_mask(bo_rng *r, int64_t h, int64_t w, uint8_t *y)
{
  const int nobj = 1 + (int)bo_rng_below(r, 2);
  memset(y, 0, (size_t)(h * w));
  for (int o = 0; o < nobj; o++) {
    const double cy = (double)h * bo_rng_uniform(r), cx = (double)w * bo_rng_uniform(r);
    const double ay = 1.5 + (double)h / 3 * bo_rng_uniform(r), ax = 1.5 + (double)w / 3 * bo_rng_uniform(r);
    for (int64_t i = 0; i < h * w; i++) {
      const double dy = ((double)(i / w) - cy) / ay, dx = ((double)(i % w) - cx) / ax;
      if (dx * dx + dy * dy <= 1) y[i] = 1;
    }
  }
}

/* Logits (0, a) on the foreground, (0, -a) on the background: softmax within e^-a of the mask. */
static void logits_of_mask(int64_t n, const uint8_t *y, double a, double *z)
{
  for (int64_t i = 0; i < n; i++) z[2 * i] = 0, z[2 * i + 1] = y[i] ? a : -a;
}

/* Independent geometry of a 0/1 map (class c of labels): size, centre, per-axis std, number of
 * unordered 8-neighbour pairs with one end in the class and one outside. */
static void hard_descriptors(int64_t h, int64_t w, const uint8_t *y, int c, double *d)
{
  double S = 0, sx = 0, sy = 0, vx = 0, vy = 0, len = 0;
  for (int64_t i = 0; i < h * w; i++)
    if (y[i] == c) S += 1, sx += (double)(i % w), sy += (double)(i / w);
  d[BO_SHAPE_SIZE] = S;
  d[BO_SHAPE_CX] = S > 0 ? sx / S : 0, d[BO_SHAPE_CY] = S > 0 ? sy / S : 0;
  for (int64_t i = 0; i < h * w; i++)
    if (y[i] == c) vx += pow((double)(i % w) - d[BO_SHAPE_CX], 2), vy += pow((double)(i / w) - d[BO_SHAPE_CY], 2);
  d[BO_SHAPE_DX] = S > 0 ? sqrt(vx / S) : 0, d[BO_SHAPE_DY] = S > 0 ? sqrt(vy / S) : 0;
  for (int64_t a = 0; a < h * w; a++)
    for (int64_t b = a + 1; b < h * w; b++) {
      const int64_t ddy = b / w - a / w, ddx = b % w - a % w;
      if (ddy <= 1 && ddx >= -1 && ddx <= 1 && (y[a] == c) != (y[b] == c)) len += 1;
    }
  d[BO_SHAPE_LENGTH] = len;
}

/* ---------------------------------------------------------------- gradient */

typedef struct {
  int64_t         nimg, h, w;
  const double   *lo, *hi;
  bo_penalty_kind kind;
  double          t;
} objective;

static double value_of(const objective *o, const double *z)
{
  double *v = malloc(sizeof(double) * (size_t)o->nimg), s = 0;
  OK(bo_shape_bound_loss(o->nimg, o->h, o->w, 2, z, o->lo, o->hi, o->kind, o->t, 1.0, v, NULL));
  for (int64_t b = 0; b < o->nimg; b++) s += v[b];
  free(v);
  return s;
}

/* The gradient added with weight 0.3 onto a prefilled buffer equals central differences of the
 * summed values: max |FD - G| / max |G| < 1e-6. */
static void check_gradient(const char *what, const objective *o, double *z)
{
  const int64_t nk = o->nimg * o->h * o->w * 2;
  const double  wgt = 0.3, eps = 1e-6;
  double       *g = malloc(sizeof *g * (size_t)nk), gmax = 0, emax = 0;
  for (int64_t i = 0; i < nk; i++) g[i] = 0.01 * (double)(i % 5);
  OK(bo_shape_bound_loss(o->nimg, o->h, o->w, 2, z, o->lo, o->hi, o->kind, o->t, wgt, NULL, g));
  for (int64_t i = 0; i < nk; i++) {
    const double z0 = z[i], an = (g[i] - 0.01 * (double)(i % 5)) / wgt;
    z[i] = z0 + eps;
    const double vp = value_of(o, z);
    z[i] = z0 - eps;
    const double vm = value_of(o, z);
    z[i] = z0;
    gmax = fmax(gmax, fabs(an));
    emax = fmax(emax, fabs((vp - vm) / (2 * eps) - an));
  }
  if (!(gmax > 1e-6)) fail_msg("%s: gradient max %g is too small to test", what, gmax);
  if (!(emax / gmax < 1e-6)) fail_msg("%s: max |FD - G| / max |G| = %.3g", what, emax / gmax);
  free(g);
}

static void objective_gradient_equals_central_differences(void **state)
{
  (void)state;
  const int64_t nimg = 3, h = 9, w = 11, n = h * w;
  const unsigned sets[] = {BO_SHAPESET_SIZE, BO_SHAPESET_SIZE | BO_SHAPESET_CENTROID, BO_SHAPESET_SIZE | BO_SHAPESET_CENTROID | BO_SHAPESET_DIST, BO_SHAPESET_ALL, BO_SHAPESET_LENGTH | BO_SHAPESET_DIST};
  uint8_t      *y  = malloc((size_t)(nimg * n));
  double       *z  = malloc(sizeof(double) * (size_t)(nimg * n * 2)), lo[3 * ND], hi[3 * ND];
  bo_rng        r;
  bo_rng_init(&r, 7, 0, 3);
  for (int64_t b = 0; b < nimg; b++) random_mask(&r, h, w, y + b * n);
  for (int64_t b = 0; b < nimg; b++) /* logits that half follow the mask: some bounds hold, some not */
    for (int64_t i = 0; i < n; i++) z[(b * n + i) * 2] = 0.3 * bo_rng_normal(&r), z[(b * n + i) * 2 + 1] = (y[b * n + i] ? 1.0 : -0.5) + bo_rng_normal(&r);
  for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
    bo_shape_bound_opts bo;
    bo_shape_bound_defaults(&bo);
    bo.set = sets[s], bo.centroid_margin = bo.dist_margin = 0.8;
    for (int64_t b = 0; b < nimg; b++) OK(bo_shape_bounds(&bo, h, w, 2, y + b * n, lo + b * ND, hi + b * ND));
    int64_t active, violated;
    OK(bo_shape_bound_violations(nimg, h, w, 2, z, lo, hi, &active, &violated));
    if (!(violated > 0 && violated < active / 2 + 1)) fail_msg("set %u: %lld of %lld constraints violated; the fixture should violate some and satisfy most", sets[s], (long long)violated, (long long)active);
    const double ts[] = {0.5, 3.0};
    for (int q = 0; q < 2; q++) {
      char      what[96];
      objective o = {.nimg = nimg, .h = h, .w = w, .lo = lo, .hi = hi, .kind = BO_PENALTY_ELB, .t = ts[q]};
      snprintf(what, sizeof what, "set %u elb t %g", sets[s], ts[q]);
      check_gradient(what, &o, z);
    }
    objective o = {.nimg = nimg, .h = h, .w = w, .lo = lo, .hi = hi, .kind = BO_PENALTY_QUAD, .t = 1};
    check_gradient("quad", &o, z);
  }
  free(y), free(z);
}

/* ---------------------------------------------------------------- inactive barrier */

static double max_abs(int64_t n, const double *v)
{
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
  return m;
}

static void barrier_is_inactive_when_the_bounds_hold(void **state)
{
  (void)state;
  const int64_t h = 16, w = 14, n = h * w;
  uint8_t      *y = malloc((size_t)n);
  double       *z = malloc(sizeof(double) * (size_t)(2 * n)), *g1 = calloc((size_t)(2 * n), sizeof(double)), *g2 = calloc((size_t)(2 * n), sizeof(double));
  double        lo[ND], hi[ND], v, v2;
  int64_t       active, violated;
  bo_shape_bound_opts bo;
  bo_rng        r;
  bo_rng_init(&r, 11, 0, 3);
  random_mask(&r, h, w, y);
  bo_shape_bound_defaults(&bo);
  bo.centroid_margin = bo.dist_margin = 2.0;
  bo.size_margin = bo.length_margin = 0.3;
  OK(bo_shape_bounds(&bo, h, w, 2, y, lo, hi));
  logits_of_mask(n, y, 9.0, z); /* the ground truth, softened by e^-9 */
  OK(bo_shape_bound_violations(1, h, w, 2, z, lo, hi, &active, &violated));
  assert_int_equal(active, 2 * (2 + 5)); /* size of both classes; centroid, dist (2 each) and length of the foreground */
  assert_int_equal(violated, 0);
  /* quadratic: exactly zero value and no gradient */
  OK(bo_shape_bound_loss(1, h, w, 2, z, lo, hi, BO_PENALTY_QUAD, 1.0, 1.0, &v, g1));
  assert_true(v == 0.0);
  assert_true(max_abs(2 * n, g1) == 0.0);
  /* log-barrier, every constraint in its log branch (slack > 1/t^2): the gradient is exactly 1/t-scaled */
  OK(bo_shape_bound_loss(1, h, w, 2, z, lo, hi, BO_PENALTY_ELB, 4.0, 1.0, &v, g1));
  OK(bo_shape_bound_loss(1, h, w, 2, z, lo, hi, BO_PENALTY_ELB, 400.0, 1.0, &v2, g2));
  assert_true(isfinite(v) && isfinite(v2));
  if (!(fabs(v2 * 100 - v) <= 1e-12 * fabs(v))) fail_msg("elb value at t 400 x 100 = %.17g, at t 4 %.17g", v2 * 100, v);
  for (int64_t i = 0; i < 2 * n; i++)
    if (!(fabs(100 * g2[i] - g1[i]) <= 1e-10 * max_abs(2 * n, g1) + 1e-300)) fail_msg("elb gradient[%lld]: 100 x %.17g at t 400 vs %.17g at t 4", (long long)i, g2[i], g1[i]);
  /* one violated constraint (foreground size above its upper bound): its slope t dominates as t grows */
  double hi2[ND];
  memcpy(hi2, hi, sizeof hi2);
  hi2[BO_SHAPE_NDESC + BO_SHAPE_SIZE] = 0.5 * lo[BO_SHAPE_NDESC + BO_SHAPE_SIZE]; /* half of 70% of the true size */
  lo[BO_SHAPE_NDESC + BO_SHAPE_SIZE] = 0;
  double *g3 = calloc((size_t)(2 * n), sizeof(double)), *g4 = calloc((size_t)(2 * n), sizeof(double)), *g5 = calloc((size_t)(2 * n), sizeof(double));
  OK(bo_shape_bound_violations(1, h, w, 2, z, lo, hi2, &active, &violated));
  assert_int_equal(violated, 1);
  OK(bo_shape_bound_loss(1, h, w, 2, z, lo, hi2, BO_PENALTY_ELB, 1e6, 1.0, &v, g3));
  /* the same with only the violated descriptor bounded */
  double lo1[ND], hi1[ND];
  for (int j = 0; j < ND; j++) lo1[j] = 1, hi1[j] = 0;
  lo1[BO_SHAPE_NDESC + BO_SHAPE_SIZE] = 0, hi1[BO_SHAPE_NDESC + BO_SHAPE_SIZE] = hi2[BO_SHAPE_NDESC + BO_SHAPE_SIZE];
  OK(bo_shape_bound_loss(1, h, w, 2, z, lo1, hi1, BO_PENALTY_ELB, 1e6, 1.0, &v2, g4));
  for (int64_t i = 0; i < 2 * n; i++) g5[i] = g3[i] - g4[i];
  if (!(max_abs(2 * n, g5) < 1e-9 * max_abs(2 * n, g4))) fail_msg("at t = 1e6 the satisfied constraints still move the logits: %g vs %g", max_abs(2 * n, g5), max_abs(2 * n, g4));
  assert_true(max_abs(2 * n, g4) > 0);
  free(y), free(z), free(g1), free(g2), free(g3), free(g4), free(g5);
}

/* ---------------------------------------------------------------- bounds */

static void bounds_contain_the_ground_truth_descriptors(void **state)
{
  (void)state;
  const int64_t dims[][2] = {{12, 12}, {20, 15}, {7, 25}};
  bo_rng        r;
  bo_rng_init(&r, 5, 0, 3);
  for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++)
    for (int rep = 0; rep < 6; rep++) {
      const int64_t h = dims[s][0], w = dims[s][1], n = h * w;
      uint8_t      *y = malloc((size_t)n);
      double       *z = malloc(sizeof(double) * (size_t)(2 * n)), lo[ND], hi[ND], soft[ND], hard[ND], lo0[ND], hi0[ND];
      bo_shape_bound_opts bo, exact;
      random_mask(&r, h, w, y);
      if (rep == 5) memset(y, 0, (size_t)n); /* no foreground */
      bo_shape_bound_defaults(&bo);
      bo.centroid_margin = bo.dist_margin = 7.5;
      exact = (bo_shape_bound_opts){.set = BO_SHAPESET_ALL};
      OK(bo_shape_bounds(&bo, h, w, 2, y, lo, hi));
      OK(bo_shape_bounds(&exact, h, w, 2, y, lo0, hi0));
      logits_of_mask(n, y, 40.0, z); /* soft = hard to ~1e-17 */
      OK(bo_shape_descriptors(h, w, 2, z, NULL, soft));
      for (int c = 0; c < 2; c++) hard_descriptors(h, w, y, c, hard + c * BO_SHAPE_NDESC);
      for (int j = 0; j < ND; j++) {
        const int  c = j / BO_SHAPE_NDESC, d = j % BO_SHAPE_NDESC;
        const int  defined = d == BO_SHAPE_SIZE || (c == 1 && (d == BO_SHAPE_LENGTH || hard[BO_SHAPE_NDESC] > 0));
        const char *nm = bo_shape_names[d];
        if (!defined) {
          if (!(lo[j] > hi[j] && lo0[j] > hi0[j])) fail_msg("class %d %s: bounded (%g, %g) where it is undefined or not used", c, nm, lo[j], hi[j]);
          continue;
        }
        if (!(lo[j] <= hard[j] && hard[j] <= hi[j])) fail_msg("%lldx%lld rep %d class %d %s: true %g outside [%g, %g]", (long long)h, (long long)w, rep, c, nm, hard[j], lo[j], hi[j]);
        if (!(lo[j] <= soft[j] + 1e-9 && soft[j] - 1e-9 <= hi[j])) fail_msg("class %d %s: soft %g outside [%g, %g]", c, nm, soft[j], lo[j], hi[j]);
        if (!(fabs(lo0[j] - hard[j]) <= 1e-12 * (1 + hard[j]) && fabs(hi0[j] - hard[j]) <= 1e-12 * (1 + hard[j]))) fail_msg("class %d %s: zero margins give [%.17g, %.17g], true %.17g", c, nm, lo0[j], hi0[j], hard[j]);
        const double m = d == BO_SHAPE_SIZE ? 0.1 * hard[j] : d == BO_SHAPE_LENGTH ? 0.1 * hard[j] : 7.5; /* the margins themselves */
        if (!(fabs(hi[j] - hard[j] - m) <= 1e-9 * (1 + m) && (fabs(hard[j] - lo[j] - m) <= 1e-9 * (1 + m) || (d >= BO_SHAPE_DX && lo[j] == 0)))) fail_msg("class %d %s: [%g, %g] is not %g -+ %g", c, nm, lo[j], hi[j], hard[j], m);
      }
      /* a subset bounds only its own descriptors */
      bo.set = BO_SHAPESET_SIZE | BO_SHAPESET_LENGTH;
      OK(bo_shape_bounds(&bo, h, w, 2, y, lo, hi));
      for (int j = 0; j < ND; j++) {
        const int d = j % BO_SHAPE_NDESC, used = d == BO_SHAPE_SIZE || (j >= BO_SHAPE_NDESC && d == BO_SHAPE_LENGTH);
        if (used != (lo[j] <= hi[j])) fail_msg("set size+length: descriptor %d bounded %d, expected %d", j, lo[j] <= hi[j], used);
      }
      free(y), free(z);
    }
}

static void set_names_parse_and_print(void **state)
{
  (void)state;
  unsigned s;
  char     bad[32], name[64];
  assert_true(bo_shape_set_parse("length+size", &s, bad, sizeof bad));
  assert_int_equal(s, BO_SHAPESET_SIZE | BO_SHAPESET_LENGTH);
  bo_shape_set_name(s, name, sizeof name);
  assert_string_equal(name, "size+length");
  assert_true(bo_shape_set_parse("size+centroid+dist+length", &s, bad, sizeof bad));
  assert_int_equal(s, BO_SHAPESET_ALL);
  assert_false(bo_shape_set_parse("size+area", &s, bad, sizeof bad));
  assert_string_equal(bad, "area");
  assert_false(bo_shape_set_parse("size+size", &s, bad, sizeof bad));
  assert_string_equal(bad, "size");
  assert_false(bo_shape_set_parse("", &s, bad, sizeof bad));
}

static void bad_inputs_give_one_line_errors(void **state)
{
  (void)state;
  uint8_t             y[12] = {0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0};
  double              lo[ND], hi[ND], z[24] = {0};
  bo_shape_bound_opts bo;
  bo_shape_bound_defaults(&bo);
  bo.size_margin = -0.1;
  EXPECT_INPUT_ERROR(bo_shape_bounds(&bo, 3, 4, 2, y, lo, hi), "shapebounds: ", "size margin -0.1");
  bo_shape_bound_defaults(&bo);
  bo.centroid_margin = NAN;
  EXPECT_INPUT_ERROR(bo_shape_bounds(&bo, 3, 4, 2, y, lo, hi), "shapebounds: ", "centroid margin nan");
  bo_shape_bound_defaults(&bo);
  bo.set = 0;
  EXPECT_INPUT_ERROR(bo_shape_bounds(&bo, 3, 4, 2, y, lo, hi), "shapebounds: ", "descriptor set 0");
  bo_shape_bound_defaults(&bo);
  y[4] = 2;
  EXPECT_INPUT_ERROR(bo_shape_bounds(&bo, 3, 4, 2, y, lo, hi), "shapebounds: ", "label[4] = 2");
  EXPECT_INPUT_ERROR(bo_shape_bound_loss(-1, 3, 4, 2, z, lo, hi, BO_PENALTY_ELB, 1, 1, NULL, NULL), "shapebounds: ", "-1 images");
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("the bounded-descriptor objective of a batch (every set, elb at t 0.5 and 3, quad): gradient equals central differences", objective_gradient_equals_central_differences),
    PROPERTY("bounds that hold: quad is 0 with no gradient, elb scales as 1/t, and at large t only the violated constraint moves the logits", barrier_is_inactive_when_the_bounds_hold),
    PROPERTY("bounds from a mask contain its size, centroid, spread and boundary length (counted independently); zero margins give them exactly", bounds_contain_the_ground_truth_descriptors),
    PROPERTY("descriptor set names parse in any order and print canonically; unknown, repeated and empty are refused", set_names_parse_and_print),
    PROPERTY("negative or non-finite margins, an empty set, labels >= k and negative image counts give one-line errors", bad_inputs_give_one_line_errors),
  };
  int failed;
  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
