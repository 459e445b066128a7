/* test_features2d.c - properties of the per-pixel feature fields (features2d.h): constant and
 * polynomial images, the mean under smoothing, position channels, the seeded filter bank, channel
 * names and one-line input errors. */
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
#include "boundopt/features2d.h"
#include "boundopt/rng.h"
#include "unit_support.h"

/* Column of the named family (0 smooth, 1 gradient, 2 laplacian, 3 variance) at scale s, channel
 * ch, with every family on. */
static int64_t column(int64_t c, int s, int64_t ch, int fam) { return (s * c + ch) * 4 + fam; }

static double *build(const bo_feat2d_opts *o, int64_t h, int64_t w, int64_t c, const double *img, int64_t *F)
{
  OK(bo_feat2d_channels(o, c, F));
  double *f = malloc(sizeof *f * (size_t)(h * w * *F));
  OK(bo_feat2d_build(o, h, w, c, img, f));
  return f;
}

static void a_constant_image_has_zero_gradient_laplacian_and_variance(void **state)
{
  (void)state;
  enum { H = 15, W = 17, C = 2 };
  bo_feat2d_opts o;
  double         img[H * W * C];
  int64_t        F;
  bo_feat2d_defaults(&o);
  o.nscales = 4, o.sigma[3] = 0;
  for (int i = 0; i < H * W; i++) img[i * C] = 3.5, img[i * C + 1] = -20;
  double *f = build(&o, H, W, C, img, &F);
  assert_int_equal(F, 4 * C * 4 + 2);
  for (int i = 0; i < H * W; i++)
    for (int s = 0; s < 4; s++)
      for (int ch = 0; ch < C; ch++) {
        assert_close(f[i * F + column(C, s, ch, 0)], ch ? -20 : 3.5, 1e-12, "smooth of a constant");
        for (int fam = 1; fam < 4; fam++) assert_close(f[i * F + column(C, s, ch, fam)], 0, 1e-11, "gradient / LoG / variance of a constant");
      }
  free(f);
}

static void smoothing_preserves_the_mean_and_position_channels_are_normalised_coordinates(void **state)
{
  (void)state;
  enum { H = 20, W = 13 };
  bo_feat2d_opts o;
  double         img[H * W], m0 = 0, m[3] = {0};
  int64_t        F;
  bo_rng         r;
  bo_rng_init(&r, 5, 0, 0);
  bo_feat2d_defaults(&o);
  for (int i = 0; i < H * W; i++) m0 += img[i] = 255 * bo_rng_uniform(&r);
  double *f = build(&o, H, W, 1, img, &F);
  for (int i = 0; i < H * W; i++)
    for (int s = 0; s < 3; s++) m[s] += f[i * F + column(1, s, 0, 0)];
  for (int s = 0; s < 3; s++) assert_close(m[s] / (H * W), m0 / (H * W), 1e-10, "mean of the smoothed image");
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      assert_true(f[(y * W + x) * F + 12] == (double)x / (W - 1));
      assert_true(f[(y * W + x) * F + 13] == (double)y / (H - 1));
    }
  /* variance is never negative */
  for (int i = 0; i < H * W; i++)
    for (int s = 0; s < 3; s++) assert_true(f[i * F + column(1, s, 0, 3)] >= 0);
  free(f);
}

static void ramps_and_parabolas_give_their_slope_and_curvature_away_from_the_border(void **state)
{
  (void)state;
  enum { H = 30, W = 30 };
  bo_feat2d_opts o;
  double         ramp[H * W], par[H * W];
  int64_t        F;
  bo_feat2d_defaults(&o);
  o.nscales = 2, o.sigma[0] = 0, o.sigma[1] = 2;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) ramp[y * W + x] = 3 * x - 4 * y, par[y * W + x] = 0.5 * x * x;
  double *fr = build(&o, H, W, 1, ramp, &F), *fp = build(&o, H, W, 1, par, &F);
  for (int y = 7; y < H - 7; y++)
    for (int x = 7; x < W - 7; x++) {
      const int i = y * W + x;
      for (int s = 0; s < 2; s++) {
        const double s1 = s ? 2.0 : 1.0;
        assert_close(fr[i * F + column(1, s, 0, 1)], 5, 1e-9, "|grad| of 3x - 4y");
        assert_close(fr[i * F + column(1, s, 0, 2)], 0, 1e-9, "LoG of a ramp");
        assert_close(fp[i * F + column(1, s, 0, 2)], s1 * s1 * 1.0, 1e-9, "scale-normalised LoG of x^2/2");
      }
    }
  free(fr), free(fp);
}

static void the_filter_bank_is_reproducible_from_its_seed_and_convolves_as_documented(void **state)
{
  (void)state;
  enum { H = 11, W = 12, C = 2 };
  bo_feat2d_opts o;
  double         img[H * W * C] = {0}, K[9 * C];
  int64_t        F;
  char           name[64];
  bo_rng         r;
  bo_rng_init(&r, 8, 0, 0);
  bo_feat2d_defaults(&o);
  o.nscales = 2, o.sigma[0] = 0, o.sigma[1] = 1, o.nfilters = 3, o.seed = 42;
  for (int i = 0; i < H * W * C; i++) img[i] = bo_rng_normal(&r);
  double *a = build(&o, H, W, C, img, &F), *b = build(&o, H, W, C, img, &F);
  assert_int_equal(F, 2 * C * 4 + 2 + 2 * 3);
  assert_true(memcmp(a, b, sizeof(double) * (size_t)(H * W * F)) == 0);
  o.seed = 43;
  double *c = build(&o, H, W, C, img, &F);
  assert_true(memcmp(a + (F - 6), c + (F - 6), sizeof(double) * 6) != 0 || memcmp(a, c, sizeof(double) * (size_t)(H * W * F)) != 0);
  for (int i = 0; i < H * W; i++)
    for (int j = F - 6; j < F; j++) assert_true(a[i * F + j] >= 0); /* ReLU */
  /* a delta in channel 1 at (5, 6), raw scale: the response at (5 - a, 6 - b) is relu(K[1][a+1][b+1]) */
  o.seed = 42;
  memset(img, 0, sizeof img);
  img[(5 * W + 6) * C + 1] = 1;
  double *d = build(&o, H, W, C, img, &F);
  for (int f = 0; f < 3; f++) {
    OK(bo_feat2d_filter(&o, C, 0, f, K));
    OK(bo_feat2d_channel_name(&o, C, F - 6 + f, name, sizeof name));
    assert_string_equal(name, (f == 0 ? "filter s=0 f=0" : f == 1 ? "filter s=0 f=1" : "filter s=0 f=2"));
    for (int aa = -1; aa <= 1; aa++)
      for (int bb = -1; bb <= 1; bb++) {
        const double k = K[9 + (aa + 1) * 3 + (bb + 1)];
        assert_close(d[((5 - aa) * W + (6 - bb)) * F + (F - 6 + f)], k > 0 ? k : 0, 1e-15, "filter response to a delta");
      }
  }
  free(a), free(b), free(c), free(d);
}

static void channel_names_follow_the_documented_order(void **state)
{
  (void)state;
  bo_feat2d_opts o;
  char           name[64];
  int64_t        F;
  bo_feat2d_defaults(&o);
  o.variance = PETSC_FALSE, o.nfilters = 2;
  OK(bo_feat2d_channels(&o, 3, &F));
  assert_int_equal(F, 3 * (3 * 3 + 2) + 2);
  OK(bo_feat2d_channel_name(&o, 3, 0, name, sizeof name)), assert_string_equal(name, "smooth s=1 c=0");
  OK(bo_feat2d_channel_name(&o, 3, 5, name, sizeof name)), assert_string_equal(name, "laplacian s=1 c=1");
  OK(bo_feat2d_channel_name(&o, 3, 9, name, sizeof name)), assert_string_equal(name, "smooth s=2 c=0");
  OK(bo_feat2d_channel_name(&o, 3, 27, name, sizeof name)), assert_string_equal(name, "x");
  OK(bo_feat2d_channel_name(&o, 3, 28, name, sizeof name)), assert_string_equal(name, "y");
  OK(bo_feat2d_channel_name(&o, 3, 34, name, sizeof name)), assert_string_equal(name, "filter s=4 f=1");
}

static void bad_inputs_give_one_line_errors(void **state)
{
  (void)state;
  bo_feat2d_opts o;
  double         img[16] = {0}, f[16 * 64];
  char           name[8];
  bo_feat2d_defaults(&o);
  EXPECT_INPUT_ERROR(bo_feat2d_build(&o, 4, 4, 1, img, f), "features2d: ", "needs a 6-pixel margin on a 4 x 4 image");
  o.sigma[1] = -1;
  EXPECT_INPUT_ERROR(bo_feat2d_build(&o, 4, 4, 1, img, f), "features2d: ", "sigma[1] = -1");
  bo_feat2d_defaults(&o);
  o.nscales = 0;
  EXPECT_INPUT_ERROR(bo_feat2d_build(&o, 4, 4, 1, img, f), "features2d: ", "0 scales");
  bo_feat2d_defaults(&o);
  EXPECT_INPUT_ERROR(bo_feat2d_build(&o, 4, 4, 0, img, f), "features2d: ", "0 image channels");
  o.nscales = 1, o.sigma[0] = 0, o.variance = PETSC_FALSE;
  img[3] = NAN;
  EXPECT_INPUT_ERROR(bo_feat2d_build(&o, 4, 4, 1, img, f), "features2d: ", "pixel 3 channel 0 = nan");
  EXPECT_INPUT_ERROR(bo_feat2d_channel_name(&o, 1, 99, name, sizeof name), "features2d: ", "channel 99");
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("a constant image has its value smoothed and zero gradient, LoG and variance at every scale (sigma 0 included)", a_constant_image_has_zero_gradient_laplacian_and_variance),
    PROPERTY("smoothing preserves the image mean; position channels are x/(w-1), y/(h-1); variance >= 0", smoothing_preserves_the_mean_and_position_channels_are_normalised_coordinates),
    PROPERTY("a ramp gives |grad| = its slope and LoG 0, x^2/2 gives LoG sigma'^2, away from the border", ramps_and_parabolas_give_their_slope_and_curvature_away_from_the_border),
    PROPERTY("the random filter bank is bit-reproducible from its seed, changes with it, is ReLU'd, and convolves a delta to its weights", the_filter_bank_is_reproducible_from_its_seed_and_convolves_as_documented),
    PROPERTY("channel names follow the documented order (scales, channels, families; x, y; filters)", channel_names_follow_the_documented_order),
    PROPERTY("small images for a sigma, bad sigma, scales, channels, pixels and channel indices give one-line USER_INPUT errors", bad_inputs_give_one_line_errors),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
