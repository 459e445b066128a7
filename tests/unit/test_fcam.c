/* test_fcam.c - F-CAM numerics (fcam.h): the full loss's parameter gradient equals central
 * differences, the block kernel at stride 1 is the dense CRF of losses.h, Otsu splits a bimodal
 * histogram, seeds lie where the spec puts them, the metrics' fixed points, the evaluated map is the
 * head's foreground softmax, and one-line errors. */
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
#include "boundopt/fcam.h"
#include "boundopt/losses.h"
#include "boundopt/rng.h"
#include "unit_support.h"

/* A small scene: a bright square object on a noisy background, and a CAM peaked on it. */
static void small_scene(int64_t H, int64_t W, uint64_t seed, double *img, double *cam, uint8_t *gt)
{
  bo_rng r;
  bo_rng_init(&r, seed, 0, 1);
  for (int64_t y = 0; y < H; y++)
    for (int64_t x = 0; x < W; x++) {
      const int in = y >= H / 4 && y < 3 * H / 4 && x >= W / 3 && x < 5 * W / 6;
      if (gt) gt[y * W + x] = (uint8_t)in;
      img[y * W + x] = (in ? 180 : 90) + 20 * bo_rng_normal(&r);
      const double dy = (y - H / 2.0) / H, dx = (x - 7 * W / 12.0) / W;
      cam[y * W + x] = exp(-8 * (dx * dx + dy * dy)) + 0.1 * bo_rng_uniform(&r);
    }
}

/* L(param) of the full F-CAM loss with fixed seeds. */
static double full_loss(const bo_fcam_head *h, int64_t H, int64_t W, const double *x, double *work, double *z, const uint8_t *seeds, const bo_fcam_kernel *k, const bo_fcam_loss_opts *o)
{
  double t[3];
  OK(bo_fcam_head_forward(h, H * W, x, work, z));
  OK(bo_fcam_loss(H, W, z, seeds, k, o, t, NULL));
  return o->l_sl * t[0] + o->l_crf * t[1] + o->l_sz * t[2];
}

static void full_loss_gradient_equals_central_differences(void **state)
{
  (void)state;
  const int64_t H = 12, W = 12, n = H * W, d = 5;
  double        img[144], cam[144], x[144 * 5], z[288], gz[288], work[144 * 8];
  uint8_t       pos[144], neg[144], seeds[144];
  bo_fcam_seed_opts so;
  bo_rng        r;

  small_scene(H, W, 7, img, cam, NULL);
  bo_fcam_normalise(n, cam);
  bo_rng_init(&r, 3, 0, 2);
  for (int64_t i = 0; i < n; i++) {
    x[i * d] = (double)(i % W) / W, x[i * d + 1] = (double)(i / W) / H, x[i * d + 2] = cam[i], x[i * d + 3] = img[i] / 255;
    x[i * d + 4] = bo_rng_normal(&r);
  }
  bo_fcam_seed_defaults(&so);
  so.erode = 3; so.sl_max = 3; so.sl_min = 3;
  OK(bo_fcam_seed_regions(H, W, cam, &so, pos, neg));
  OK(bo_fcam_sample_seeds(H, W, pos, neg, &so, &r, seeds));
  for (int stride = 1; stride <= 2; stride++)
    for (int hidden = 0; hidden <= 8; hidden += 8)
      for (int tk = 0; tk < 2; tk++) { /* t 1: log branch of the barrier; t 0.05: its linear branch */
        bo_fcam_kernel    k;
        bo_fcam_head      head;
        bo_fcam_loss_opts o = {.l_sl = 1, .l_crf = 2e-3, .l_sz = 0.1, .t = tk ? 0.05 : 1};
        double           *gp, maxerr = 0, maxg = 0;
        OK(bo_fcam_kernel_create(H, W, 1, img, stride, 3.0, 15.0, &k));
        bo_rng_init(&r, 11, (uint64_t)hidden, 3);
        OK(bo_fcam_head_create(d, hidden, &r, &head));
        for (int64_t j = 0; j < head.nparam; j++) head.param[j] = 0.3 * bo_rng_normal(&r);
        gp = malloc(sizeof(double) * (size_t)head.nparam);
        OK(bo_fcam_head_forward(&head, n, x, work, z));
        memset(gz, 0, sizeof gz);
        OK(bo_fcam_loss(H, W, z, seeds, &k, &o, NULL, gz));
        OK(bo_fcam_head_backward(&head, n, x, work, gz, gp));
        for (int64_t j = 0; j < head.nparam; j++) {
          const double p0 = head.param[j], e = 1e-6;
          head.param[j] = p0 + e;
          const double lp = full_loss(&head, H, W, x, work, z, seeds, &k, &o);
          head.param[j] = p0 - e;
          const double lm = full_loss(&head, H, W, x, work, z, seeds, &k, &o);
          head.param[j] = p0;
          maxerr = fmax(maxerr, fabs((lp - lm) / (2 * e) - gp[j]));
          maxg   = fmax(maxg, fabs(gp[j]));
        }
        if (!(maxerr <= 1e-6 * fmax(1, maxg))) fail_msg("stride %d hidden %d t %g: max |FD - grad| %g (max |grad| %g)", stride, hidden, o.t, maxerr, maxg);
        assert_true(maxg > 1e-3);
        free(gp);
        OK(bo_fcam_head_destroy(&head));
        OK(bo_fcam_kernel_destroy(&k));
      }
}

static void stride_one_kernel_is_the_dense_crf_of_losses(void **state)
{
  (void)state;
  const int64_t H = 10, W = 9, n = H * W;
  double        img[90], cam[90], z[180], g1[180] = {0}, g2[180] = {0}, t[3], v;
  uint8_t       none[90];
  bo_fcam_kernel    k;
  bo_fcam_loss_opts o = {.l_sl = 0, .l_crf = 1, .l_sz = 0, .t = 1};
  bo_rng        r;

  small_scene(H, W, 5, img, cam, NULL);
  bo_rng_init(&r, 9, 0, 0);
  for (int64_t i = 0; i < 2 * n; i++) z[i] = bo_rng_normal(&r);
  memset(none, BO_LABEL_IGNORE, sizeof none);
  OK(bo_fcam_kernel_create(H, W, 1, img, 1, 4.0, 15.0, &k));
  OK(bo_fcam_loss(H, W, z, none, &k, &o, t, g1));
  OK(bo_loss_crf(H, W, 2, z, NULL, 1, img, 4.0, 15.0, 1.0, &v, g2));
  if (!(fabs(t[1] - v) <= 1e-6 * fabs(v))) fail_msg("CRF %.15g, losses.h %.15g", t[1], v);
  double gmax = 0;
  for (int64_t i = 0; i < 2 * n; i++) gmax = fmax(gmax, fabs(g2[i]));
  for (int64_t i = 0; i < 2 * n; i++) /* K is stored in float: agreement to its rounding */
    if (!(fabs(g1[i] - g2[i]) <= 1e-6 * gmax)) fail_msg("gradient %lld: %g vs %g", (long long)i, g1[i], g2[i]);
  OK(bo_fcam_kernel_destroy(&k));
}

static void otsu_splits_a_bimodal_histogram(void **state)
{
  (void)state;
  double v[2000];
  bo_rng r;
  bo_rng_init(&r, 1, 0, 0);
  for (int i = 0; i < 2000; i++) v[i] = i < 1400 ? 0.2 + 0.04 * bo_rng_normal(&r) : 0.75 + 0.04 * bo_rng_normal(&r);
  const double t = bo_fcam_otsu(2000, v, 256);
  int          wrong = 0;
  for (int i = 0; i < 2000; i++) wrong += (i < 1400) != (v[i] <= t);
  if (!(t > 0.28 && t < 0.67 && wrong <= 20)) fail_msg("Otsu threshold %g on modes 0.2 and 0.75 (sd 0.04) misplaces %d of 2000", t, wrong);
  for (int i = 0; i < 2000; i++) v[i] = i < 300 ? 0.1 : 0.9; /* two point masses: any cut between them */
  const double t2 = bo_fcam_otsu(2000, v, 256);
  assert_true(t2 > 0.1 && t2 <= 0.9);
}

static void seeds_lie_in_the_regions_the_spec_names(void **state)
{
  (void)state;
  const int64_t     H = 40, W = 40, n = H * W;
  double            img[1600], cam[1600];
  uint8_t           pos[1600], neg[1600], lab[1600], lab2[1600];
  bo_fcam_seed_opts so;
  bo_rng            r;
  int64_t           nneg = 0, npos = 0;

  small_scene(H, W, 2, img, cam, NULL);
  bo_fcam_normalise(n, cam);
  bo_fcam_seed_defaults(&so);
  so.erode = 5; so.sl_max = 2; so.sl_min = 3; so.ksz = 3;
  OK(bo_fcam_seed_regions(H, W, cam, &so, pos, neg));
  const double t = bo_fcam_otsu(n, cam, 256);
  double       maxneg = -1, minrest = 2;
  for (int64_t i = 0; i < n; i++) {
    const int64_t y = i / W, x = i % W;
    nneg += neg[i], npos += pos[i];
    if (neg[i]) maxneg = fmax(maxneg, cam[i]);
    else minrest = fmin(minrest, cam[i]);
    if (pos[i]) /* eroded: the whole 5 x 5 window (inside the image) is above the threshold */
      for (int64_t dy = -2; dy <= 2; dy++)
        for (int64_t dx = -2; dx <= 2; dx++)
          if (y + dy >= 0 && y + dy < H && x + dx >= 0 && x + dx < W) assert_true(cam[(y + dy) * W + x + dx] > t);
  }
  assert_int_equal(nneg, 160); /* ceil(0.1 N) */
  assert_true(maxneg <= minrest);
  assert_true(npos > 0);
  for (int step = 0; step < 20; step++) {
    int64_t n1 = 0, n0 = 0;
    bo_rng_init(&r, 4, (uint64_t)step, BO_FCAM_RNG_SEEDS);
    OK(bo_fcam_sample_seeds(H, W, pos, neg, &so, &r, lab));
    bo_rng_init(&r, 4, (uint64_t)step, BO_FCAM_RNG_SEEDS);
    OK(bo_fcam_sample_seeds(H, W, pos, neg, &so, &r, lab2));
    assert_memory_equal(lab, lab2, (size_t)n); /* a pure function of the stream */
    for (int64_t i = 0; i < n; i++) {
      const int64_t y = i / W, x = i % W;
      const uint8_t *src = lab[i] == 1 ? pos : lab[i] == 0 ? neg : NULL;
      int near = 0;
      if (!src) continue;
      n1 += lab[i] == 1, n0 += lab[i] == 0;
      for (int64_t dy = -1; dy <= 1; dy++)
        for (int64_t dx = -1; dx <= 1; dx++)
          if (y + dy >= 0 && y + dy < H && x + dx >= 0 && x + dx < W) near |= src[(y + dy) * W + x + dx];
      assert_true(near); /* a seeded pixel is within the 3 x 3 dilation of its region */
    }
    assert_true(n1 >= 1 && n1 <= 2 * 9 && n0 >= 1 && n0 <= 3 * 9);
  }
  { /* erosion that empties C+ falls back to C+ itself */
    so.erode = 41;
    OK(bo_fcam_seed_regions(H, W, cam, &so, pos, neg));
    for (int64_t i = 0; i < n; i++) assert_int_equal(pos[i], cam[i] > t);
  }
}

static void pxap_of_a_perfect_map_is_one_and_of_a_constant_map_the_foreground_rate(void **state)
{
  (void)state;
  const int64_t H = 24, W = 20, n = H * W;
  double        img[480], cam[480], map[480], iou[10], v1[10], v2[10], ap;
  uint8_t       gt[480];
  int64_t       hf[1000] = {0}, hb[1000] = {0}, fg = 0;

  small_scene(H, W, 3, img, cam, gt);
  for (int64_t i = 0; i < n; i++) map[i] = gt[i], fg += gt[i];
  OK(bo_fcam_image_metrics(H, W, map, gt, 10, iou, v1, v2, 1000, hf, hb, &ap));
  assert_true(fabs(bo_fcam_pxap(1000, hf, hb) - 1) < 1e-15 && fabs(ap - 1) < 1e-15);
  for (int j = 1; j < 10; j++) assert_true(iou[j] == 1 && v1[j] == 1 && v2[j] == 1);
  assert_true(fabs(iou[0] - (double)fg / n) < 1e-15); /* threshold 0: everything is foreground */
  memset(hf, 0, sizeof hf), memset(hb, 0, sizeof hb);
  for (int64_t i = 0; i < n; i++) map[i] = 0.37;
  OK(bo_fcam_image_metrics(H, W, map, gt, 10, iou, v1, v2, 1000, hf, hb, &ap));
  assert_true(fabs(bo_fcam_pxap(1000, hf, hb) - (double)fg / n) < 1e-15);
  assert_true(fabs(ap - (double)fg / n) < 1e-15);
  /* two blobs: v1 takes the larger, v2 the best of the two */
  for (int64_t i = 0; i < n; i++) {
    const int64_t y = i / W, x = i % W;
    map[i] = (y < 3 && x < 3) ? 1 : 0;                                                /* a 9-pixel blob off the object */
    if (y >= H / 4 && y < 3 * H / 4 && x >= W / 3 && x < 5 * W / 6 && (x % 4 || y % 4)) map[i] = 0.9; /* the object, with holes */
  }
  OK(bo_fcam_image_metrics(H, W, map, gt, 10, iou, v1, v2, 1000, NULL, NULL, NULL));
  for (int j = 1; j < 10; j++) assert_true(v1[j] == 1 && v2[j] == 1); /* the largest component is the object */
  for (int64_t i = 0; i < n; i++) map[i] = (i / W < 3 && i % W < 3) ? 1 : (map[i] > 0 ? 0.5 : 0); /* now the off-object blob is alone above 0.6 */
  OK(bo_fcam_image_metrics(H, W, map, gt, 10, iou, v1, v2, 1000, NULL, NULL, NULL));
  assert_true(v1[7] == 0 && v2[7] == 0 && v1[3] == 1 && v2[3] == 1);
}

static void bilinear_upsampling_matches_align_corners_false(void **state)
{
  (void)state;
  const double in[4] = {1, 2, 3, 4}, row0[4] = {1, 1.25, 1.75, 2};
  double       out[16], pooled[2 * 2 * 2], field[16 * 2];
  OK(bo_fcam_upsample(2, 2, in, 4, 4, out));
  for (int x = 0; x < 4; x++) assert_true(fabs(out[x] - row0[x]) < 1e-15);
  assert_true(fabs(out[15] - 4) < 1e-15 && fabs(out[5] - (1 + 0.25 + 0.5)) < 1e-15);
  for (int i = 0; i < 32; i++) field[i] = i;
  OK(bo_fcam_pool(4, 4, 2, field, 2, pooled));
  assert_true(fabs(pooled[0] - (0 + 2 + 8 + 10) / 4.0) < 1e-15 && fabs(pooled[1] - (1 + 3 + 9 + 11) / 4.0) < 1e-15);
}

/* The map that is evaluated is the fitted head's foreground softmax probability at temperature 1,
 * with no min-max normalisation or argmax (spec 7: S is the 2-channel softmax; the reference scores
 * softmax(cams)[:, 1] as is).  A vanishing learning rate leaves the initial head, so the expected map
 * is that head's forward pass: 0.5 everywhere for the zero-initialised linear head. */
static void fitted_map_is_the_heads_foreground_softmax(void **state)
{
  (void)state;
  const int64_t    H = 8, W = 8, n = H * W, d = 3, id = 5;
  double           img[64], cam[64], x[64 * 3], z[128], p[128], fg[64], work[64 * 4];
  bo_fcam_fit_opts o;
  bo_fcam_head     head;
  bo_rng           r;

  small_scene(H, W, 11, img, cam, NULL);
  bo_fcam_normalise(n, cam);
  for (int64_t i = 0; i < n; i++) x[i * d] = img[i] / 255 - 0.5, x[i * d + 1] = cam[i] - 0.5, x[i * d + 2] = (double)(i % W) / W - 0.5;
  bo_fcam_fit_defaults(&o);
  o.steps = 1; o.optim.lr = 1e-300; o.loss.l_crf = 0; o.seed = 9;
  for (int hidden = 0; hidden <= 4; hidden += 4) {
    o.hidden = hidden;
    OK(bo_fcam_fit(&o, id, H, W, d, x, cam, NULL, fg, NULL));
    bo_rng_init(&r, o.seed, (uint64_t)id, BO_FCAM_RNG_INIT);
    OK(bo_fcam_head_create(d, hidden, &r, &head));
    OK(bo_fcam_head_forward(&head, n, x, hidden ? work : NULL, z));
    bo_softmax_rows(n, 2, z, 1.0, p);
    for (int64_t i = 0; i < n; i++) {
      assert_true(fabs(fg[i] - p[2 * i + 1]) < 1e-12);
      if (!hidden) assert_true(fabs(fg[i] - 0.5) < 1e-12);
    }
    if (hidden) { /* not stretched to [0, 1] */
      double lo = 1, hi = 0;
      for (int64_t i = 0; i < n; i++) lo = fmin(lo, fg[i]), hi = fmax(hi, fg[i]);
      assert_true(lo > 0 && hi < 1 && hi > lo);
    }
    OK(bo_fcam_head_destroy(&head));
  }
}

static void bad_inputs_give_one_line_errors(void **state)
{
  (void)state;
  double            img[100] = {0}, out[100], map[100] = {0}, iou[4], v1[4], v2[4];
  uint8_t           gt[100] = {0}, pos[100], neg[100];
  bo_fcam_kernel    k;
  bo_fcam_seed_opts so;
  bo_fcam_loss_opts o = {.l_sl = 1, .l_crf = 1, .l_sz = 0.1, .t = 1};
  bo_fcam_head      head;
  bo_rng            r;

  bo_rng_init(&r, 1, 0, 0);
  bo_fcam_seed_defaults(&so);
  EXPECT_INPUT_ERROR(bo_fcam_kernel_create(10, 10, 1, img, 3, 1, 1, &k), "fcam: ", "stride");
  EXPECT_INPUT_ERROR(bo_fcam_kernel_create(10, 10, 1, img, 2, 0, 1, &k), "fcam: ", "sigma");
  EXPECT_INPUT_ERROR(bo_fcam_pool(10, 10, 1, img, 3, out), "fcam: ", "multiples");
  so.ksz = 2;
  EXPECT_INPUT_ERROR(bo_fcam_seed_regions(10, 10, map, &so, pos, neg), "fcam: ", "odd");
  so.ksz = 3; so.min_p = 1;
  EXPECT_INPUT_ERROR(bo_fcam_seed_regions(10, 10, map, &so, pos, neg), "fcam: ", "min_p");
  so.min_p = 0.1;
  map[3] = NAN;
  EXPECT_INPUT_ERROR(bo_fcam_seed_regions(10, 10, map, &so, pos, neg), "fcam: ", "finite");
  EXPECT_INPUT_ERROR(bo_fcam_image_metrics(10, 10, map, gt, 4, iou, v1, v2, 10, NULL, NULL, NULL), "fcam: ", "finite");
  map[3] = 0;
  EXPECT_INPUT_ERROR(bo_fcam_loss(10, 10, out, gt, NULL, &o, NULL, NULL), "fcam: ", "kernel");
  EXPECT_INPUT_ERROR(bo_fcam_head_create(0, 4, &r, &head), "fcam: ", "inputs");
  EXPECT_INPUT_ERROR(bo_fcam_meanfield(&(bo_fcam_kernel){.H = 10, .W = 10, .s = 1, .hb = 10, .wb = 10, .nb = 100}, map, -1, 3, out), "fcam: ", "weight");
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("the full F-CAM loss (seed CE + CRF + ASC) has a head-parameter gradient equal to central differences: linear and MLP heads, CRF stride 1 and 2, both barrier branches", full_loss_gradient_equals_central_differences),
    PROPERTY("the block kernel at stride 1 gives the dense CRF term and gradient of losses.h", stride_one_kernel_is_the_dense_crf_of_losses),
    PROPERTY("Otsu's threshold falls between the two modes of a bimodal histogram", otsu_splits_a_bimodal_histogram),
    PROPERTY("seeds: C+ eroded above Otsu, C- the lowest 10%, sampled seeds within their dilated regions, reproducible from the stream", seeds_lie_in_the_regions_the_spec_names),
    PROPERTY("PxAP of a perfect map is 1 and of a constant map the foreground rate; IoU and boxes of a perfect map are 1", pxap_of_a_perfect_map_is_one_and_of_a_constant_map_the_foreground_rate),
    PROPERTY("bilinear upsampling matches align_corners = False; pooling averages blocks", bilinear_upsampling_matches_align_corners_false),
    PROPERTY("the evaluated F-CAM map is the fitted head's foreground softmax probability (temperature 1, not min-max normalised)", fitted_map_is_the_heads_foreground_softmax),
    PROPERTY("bad sizes, options and values give one-line USER_INPUT errors", bad_inputs_give_one_line_errors),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
