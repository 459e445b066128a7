/* features2d.c - multi-scale per-pixel feature fields (see features2d.h for the channels). */
#include "boundopt/features2d.h"
#include "boundopt/blur.h"
#include "boundopt/error.h"
#include "boundopt/rng.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#define CHECK(cond, ...) PetscCheck(cond, PETSC_COMM_SELF, BO_ERR_INPUT, __VA_ARGS__)

void bo_feat2d_defaults(bo_feat2d_opts *o)
{
  *o = (bo_feat2d_opts){.nscales = 3, .sigma = {1, 2, 4}, .smooth = PETSC_TRUE, .gradient = PETSC_TRUE, .laplacian = PETSC_TRUE, .variance = PETSC_TRUE, .position = PETSC_TRUE, .nfilters = 0, .seed = 1};
}

static int per_channel(const bo_feat2d_opts *o) { return (o->smooth ? 1 : 0) + (o->gradient ? 1 : 0) + (o->laplacian ? 1 : 0) + (o->variance ? 1 : 0); }

static PetscErrorCode check_opts(const bo_feat2d_opts *o, int64_t c)
{
  PetscFunctionBeginUser;
  CHECK(o, "features2d: options are NULL; expected bo_feat2d_defaults()");
  CHECK(o->nscales >= 1 && o->nscales <= BO_FEAT2D_MAX_SCALES, "features2d: %d scales; expected 1..%d", o->nscales, BO_FEAT2D_MAX_SCALES);
  for (int s = 0; s < o->nscales; s++) CHECK(isfinite(o->sigma[s]) && o->sigma[s] >= 0 && o->sigma[s] <= 1000, "features2d: sigma[%d] = %g; expected 0 <= sigma <= 1000 pixels", s, o->sigma[s]);
  CHECK(o->nfilters >= 0 && o->nfilters <= 4096, "features2d: nfilters = %d; expected 0..4096", o->nfilters);
  CHECK(c >= 1 && c <= 64, "features2d: %lld image channels; expected 1..64", (long long)c);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_feat2d_channels(const bo_feat2d_opts *o, int64_t c, int64_t *nf)
{
  PetscFunctionBeginUser;
  PetscCall(check_opts(o, c));
  *nf = (int64_t)o->nscales * (c * per_channel(o) + o->nfilters) + (o->position ? 2 : 0);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_feat2d_channel_name(const bo_feat2d_opts *o, int64_t c, int64_t j, char *name, size_t len)
{
  static const char *fam[4] = {"smooth", "gradient", "laplacian", "variance"};
  int64_t            nf = 0, per = per_channel(o), blockA;

  PetscFunctionBeginUser;
  PetscCall(bo_feat2d_channels(o, c, &nf));
  CHECK(j >= 0 && j < nf, "features2d: channel %lld; expected 0..%lld", (long long)j, (long long)(nf - 1));
  blockA = o->nscales * c * per;
  if (j < blockA) {
    const PetscBool on[4] = {o->smooth, o->gradient, o->laplacian, o->variance};
    int64_t         s = j / (c * per), ch = (j / per) % c, r = j % per, q = -1;
    for (int t = 0; t < 4 && r >= 0; t++)
      if (on[t] && r-- == 0) q = t;
    snprintf(name, len, "%s s=%g c=%lld", fam[q], o->sigma[s], (long long)ch);
  } else if (o->position && j < blockA + 2) {
    snprintf(name, len, "%s", j == blockA ? "x" : "y");
  } else {
    const int64_t r = j - blockA - (o->position ? 2 : 0);
    snprintf(name, len, "filter s=%g f=%lld", o->sigma[r / o->nfilters], (long long)(r % o->nfilters));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_feat2d_filter(const bo_feat2d_opts *o, int64_t c, int s, int f, double *weights)
{
  bo_rng r;

  PetscFunctionBeginUser;
  PetscCall(check_opts(o, c));
  CHECK(s >= 0 && s < o->nscales && f >= 0 && f < o->nfilters, "features2d: filter (%d, %d); expected scale < %d and filter < %d", s, f, o->nscales, o->nfilters);
  bo_rng_init(&r, o->seed, (uint64_t)s * (uint64_t)o->nfilters + (uint64_t)f, BO_FEAT2D_RNG_PURPOSE);
  for (int64_t i = 0; i < 9 * c; i++) weights[i] = bo_rng_normal(&r) / sqrt(9.0 * (double)c);
  PetscFunctionReturn(0);
}

/* Half-sample reflection of index i into [0, n) (any i). */
static inline int64_t reflect(int64_t i, int64_t n)
{
  const int64_t p = 2 * n;
  i %= p;
  if (i < 0) i += p;
  return i < n ? i : p - 1 - i;
}

/* out = G_sigma * in (one plane); sigma = 0 copies. */
static PetscErrorCode gaussian(int64_t h, int64_t w, double sigma, const double *in, double *tmp, double *out)
{
  bo_blur b;

  PetscFunctionBeginUser;
  if (sigma == 0) {
    memcpy(out, in, sizeof(double) * (size_t)(h * w));
    PetscFunctionReturn(0);
  }
  PetscCall(bo_blur_create(h, w, sigma, BO_BOUNDARY_REFLECT, &b));
  bo_blur_apply_image(&b, PETSC_FALSE, in, tmp, out);
  PetscCall(bo_blur_destroy(&b));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_feat2d_build(const bo_feat2d_opts *o, int64_t h, int64_t w, int64_t c, const double *image, double *field)
{
  const int64_t n = h * w, per = per_channel(o);
  int64_t       F = 0;
  double       *plane, *sq, *S, *tmp, *gsq, *gI, *K = NULL;

  PetscFunctionBeginUser;
  PetscCall(bo_feat2d_channels(o, c, &F));
  CHECK(h >= 1 && w >= 1 && h < (INT64_C(1) << 31) / w, "features2d: image %lld x %lld; expected h, w >= 1", (long long)h, (long long)w);
  CHECK(image && field, "features2d: image or field is NULL; expected h w c and h w F doubles");
  for (int64_t i = 0; i < n * c; i++) CHECK(isfinite(image[i]), "features2d: pixel %lld channel %lld = %g; expected finite values", (long long)(i / c), (long long)(i % c), image[i]);
  for (int s = 0; s < o->nscales; s++) {
    const double sg = o->variance ? PetscMax(o->sigma[s], 1.0) : o->sigma[s]; /* the widest Gaussian used */
    const int    r  = bo_blur_radius(sg);
    CHECK(r < h && r < w, "features2d: sigma %g needs a %d-pixel margin on a %lld x %lld image; expected images larger than %d pixels a side", sg, r, (long long)h, (long long)w, r);
  }
  PetscCall(PetscMalloc6((size_t)n, &plane, (size_t)n, &sq, (size_t)(n * c), &S, (size_t)n, &tmp, (size_t)n, &gsq, (size_t)n, &gI));
  if (o->nfilters) PetscCall(PetscMalloc1((size_t)(9 * c), &K));
  for (int s = 0; s < o->nscales; s++) {
    const double sigma = o->sigma[s], s1 = PetscMax(sigma, 1.0);
    for (int64_t ch = 0; ch < c; ch++) {
      double *Sc = S + ch * n;
      for (int64_t i = 0; i < n; i++) plane[i] = image[i * c + ch];
      PetscCall(gaussian(h, w, sigma, plane, tmp, Sc));
      if (o->variance) {
        for (int64_t i = 0; i < n; i++) sq[i] = plane[i] * plane[i];
        PetscCall(gaussian(h, w, s1, sq, tmp, gsq));
        PetscCall(gaussian(h, w, s1, plane, tmp, gI));
      }
      const int64_t base = s * c * per + ch * per;
      for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
          const int64_t i = y * w + x;
          const double  xp = Sc[y * w + reflect(x + 1, w)], xm = Sc[y * w + reflect(x - 1, w)];
          const double  yp = Sc[reflect(y + 1, h) * w + x], ym = Sc[reflect(y - 1, h) * w + x];
          double       *out = field + i * F + base;
          int           q = 0;
          if (o->smooth) out[q++] = Sc[i];
          if (o->gradient) out[q++] = 0.5 * sqrt((xp - xm) * (xp - xm) + (yp - ym) * (yp - ym));
          if (o->laplacian) out[q++] = s1 * s1 * (xp + xm + yp + ym - 4 * Sc[i]);
          if (o->variance) out[q++] = PetscMax(0.0, gsq[i] - gI[i] * gI[i]);
        }
    }
    for (int f = 0; f < o->nfilters; f++) {
      const int64_t d = PetscMax(1, (int64_t)floor(sigma + 0.5)), col = o->nscales * c * per + (o->position ? 2 : 0) + (int64_t)s * o->nfilters + f;
      PetscCall(bo_feat2d_filter(o, c, s, f, K));
      for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
          double v = 0;
          for (int64_t ch = 0; ch < c; ch++)
            for (int a = -1; a <= 1; a++)
              for (int bb = -1; bb <= 1; bb++) v += K[ch * 9 + (a + 1) * 3 + (bb + 1)] * S[ch * n + reflect(y + a * d, h) * w + reflect(x + bb * d, w)];
          field[(y * w + x) * F + col] = v > 0 ? v : 0;
        }
    }
  }
  if (o->position) {
    const int64_t col = o->nscales * c * per;
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++) {
        field[(y * w + x) * F + col]     = w > 1 ? (double)x / (double)(w - 1) : 0.0;
        field[(y * w + x) * F + col + 1] = h > 1 ? (double)y / (double)(h - 1) : 0.0;
      }
  }
  PetscCall(PetscFree6(plane, sq, S, tmp, gsq, gI));
  PetscCall(PetscFree(K));
  PetscFunctionReturn(0);
}
