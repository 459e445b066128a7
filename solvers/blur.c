/* blur.c - separable Gaussian blur with replicate/reflect boundaries as banded 1-D factors (blur.h). */
#include "boundopt/blur.h"
#include "boundopt/error.h"
#include <math.h>

const char *const bo_boundary_names[] = {"replicate", "reflect"};

int bo_blur_radius(double sigma) { return sigma > 0 ? (int)ceil(3.0 * sigma) : 0; }

/* Where sample i (possibly outside [0, n)) comes from. */
static int64_t boundary_index(bo_boundary rule, int64_t n, int64_t i)
{
  if (i < 0) return rule == BO_BOUNDARY_REFLECT ? -1 - i : 0;
  if (i >= n) return rule == BO_BOUNDARY_REFLECT ? 2 * n - 1 - i : n - 1;
  return i;
}

static PetscErrorCode blur1d_create(int64_t n, int r, const double *taps, bo_boundary rule, bo_blur1d *f)
{
  const int w = 2 * r + 1;

  PetscFunctionBeginUser;
  f->n = n;
  f->r = r;
  PetscCall(PetscCalloc2((size_t)(n * w), &f->band, (size_t)(n * w), &f->bandT));
  for (int64_t j = 0; j < n; j++)
    for (int m = -r; m <= r; m++) {
      int64_t c = boundary_index(rule, n, j + m); /* |c - j| <= r for both rules when r < n */
      f->band[j * w + (c - j + r)] += taps[m + r];
    }
  for (int64_t j = 0; j < n; j++) /* K^T[j][c] = K[c][j], c = j + k - r */
    for (int k = 0; k < w; k++) {
      int64_t c = j + k - r;
      if (c >= 0 && c < n) f->bandT[j * w + k] = f->band[c * w + (2 * r - k)];
    }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_blur_create(int64_t h, int64_t w, double sigma, bo_boundary boundary, bo_blur *b)
{
  double sum = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(b, sizeof *b));
  PetscCheck(sigma > 0 && isfinite(sigma), PETSC_COMM_SELF, BO_ERR_INPUT, "blur: sigma %g; expected sigma > 0", sigma);
  b->sigma    = sigma;
  b->r        = bo_blur_radius(sigma);
  b->boundary = boundary;
  b->h        = h;
  b->w        = w;
  PetscCheck(b->r < h && b->r < w, PETSC_COMM_SELF, BO_ERR_INPUT, "blur: sigma %g needs a %d-pixel margin on a %lld x %lld image; expected an image larger than %d pixels a side", sigma, b->r, (long long)h, (long long)w, b->r);
  PetscCall(PetscMalloc1(2 * b->r + 1, &b->taps));
  for (int m = -b->r; m <= b->r; m++) sum += b->taps[m + b->r] = exp(-0.5 * m * m / (sigma * sigma));
  for (int m = 0; m < 2 * b->r + 1; m++) b->taps[m] /= sum;
  PetscCall(blur1d_create(w, b->r, b->taps, boundary, &b->bx));
  PetscCall(blur1d_create(h, b->r, b->taps, boundary, &b->by));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_blur_destroy(bo_blur *b)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree(b->taps));
  PetscCall(PetscFree2(b->bx.band, b->bx.bandT));
  PetscCall(PetscFree2(b->by.band, b->by.bandT));
  PetscCall(PetscMemzero(b, sizeof *b));
  PetscFunctionReturn(0);
}

void bo_blur_apply_patch(const bo_blur *b, PetscBool transpose, const double *in, int64_t gxs, int64_t gys, int64_t gxm, int64_t gym, int64_t xs, int64_t ys, int64_t xm, int64_t ym, double *tmp, double *out)
{
  const int     r = b->r, w = 2 * r + 1;
  const double *bx = transpose ? b->bx.bandT : b->bx.band, *by = transpose ? b->by.bandT : b->by.band;

  /* x pass on every row present (owned and ghost rows), owned columns only */
  for (int64_t yy = 0; yy < gym; yy++) {
    const double *row = in + yy * gxm - gxs;
    for (int64_t x = xs; x < xs + xm; x++) {
      const double *band = bx + x * w;
      int           k0 = (int)PetscMax(0, r - x), k1 = (int)PetscMin(2 * r, b->w - 1 - x + r);
      double        s = 0;
      for (int k = k0; k <= k1; k++) s += band[k] * row[x + k - r];
      tmp[yy * xm + (x - xs)] = s;
    }
  }
  /* y pass on the owned block */
  for (int64_t y = ys; y < ys + ym; y++) {
    const double *band = by + y * w;
    int           k0 = (int)PetscMax(0, r - y), k1 = (int)PetscMin(2 * r, b->h - 1 - y + r);
    for (int64_t x = 0; x < xm; x++) {
      double s = 0;
      for (int k = k0; k <= k1; k++) s += band[k] * tmp[(y + k - r - gys) * xm + x];
      out[(y - ys) * xm + x] = s;
    }
  }
}

void bo_blur_apply_image(const bo_blur *b, PetscBool transpose, const double *in, double *tmp, double *out)
{
  bo_blur_apply_patch(b, transpose, in, 0, 0, b->w, b->h, 0, 0, b->w, b->h, tmp, out);
}

static double max_column_sum(const bo_blur1d *f)
{
  const int w = 2 * f->r + 1;
  double    best = 0;
  for (int64_t j = 0; j < f->n; j++) { /* column j of K1 is row j of K1^T */
    double s = 0;
    for (int k = 0; k < w; k++) s += fabs(f->bandT[j * w + k]);
    best = PetscMax(best, s);
  }
  return best;
}

double bo_blur_norm2_bound(const bo_blur *b)
{
  /* rows of K sum to 1 (nonnegative taps), so ||K||_inf = 1 and ||K||_1 = product of the 1-D column sums */
  return max_column_sum(&b->bx) * max_column_sum(&b->by);
}

static void dct_eigs(const double *taps, int r, int64_t n, double *e)
{
  for (int64_t k = 0; k < n; k++) {
    double s = taps[r];
    for (int m = 1; m <= r; m++) s += 2 * taps[r + m] * cos(PETSC_PI * (double)k * m / (double)n);
    e[k] = s;
  }
}

void bo_blur_dct_eigs(const bo_blur *b, double *ex, double *ey)
{
  dct_eigs(b->taps, b->r, b->w, ex);
  dct_eigs(b->taps, b->r, b->h, ey);
}
