/* blur.h - a separable Gaussian blur K and its transpose, applied matrix-free (deblurring).
 *
 * Contract
 *   K = K_y (x) K_x acts on an H x W image (row-major, x fastest).  Each 1-D factor is the sampled
 *   Gaussian h_m ~ exp(-m^2 / (2 sigma^2)), |m| <= r = ceil(3 sigma), normalised to sum 1, with a
 *   boundary rule for the samples outside the image:
 *     replicate  ... a a | a b c ... (the edge sample repeats);
 *     reflect    ... b a | a b c ... (half-sample symmetric, OpenCV BORDER_REFLECT / scipy 'reflect').
 *   With reflect and a symmetric kernel, K is symmetric and diagonalised by the 2-D DCT-II:
 *   eigenvalue khat_x(k) khat_y(l), khat(k) = sum_m h_m cos(pi k m / N) (bo_blur_dct_eigs).
 *   Each 1-D factor is stored as a band of half-width r (every weight of K and K^T lies within r
 *   of the diagonal for both rules), so an apply needs r ghost pixels on each side and no index
 *   mapping; sums run in a fixed order, so a pixel's value does not depend on the partition.
 *   Requires sigma > 0 and r < min(H, W) (one reflection).  All functions are local (no MPI).
 *
 * Why hand-written: the blur is 2r+1 taps per pass on a distributed patch with ghosts; an FFT
 * convolution would need a global transform per apply and a different boundary treatment.
 */
#ifndef BOUNDOPT_BLUR_H
#define BOUNDOPT_BLUR_H
#include <petscsys.h>
#include <stdint.h>

typedef enum { BO_BOUNDARY_REPLICATE, BO_BOUNDARY_REFLECT } bo_boundary;
extern const char *const bo_boundary_names[]; /* "replicate", "reflect" */

typedef struct {
  int64_t n;     /* samples */
  int     r;     /* half-width */
  double *band;  /* n x (2r+1): K1[j][j + k - r] = band[j*(2r+1) + k] */
  double *bandT; /* the same for K1^T */
} bo_blur1d;

typedef struct {
  double      sigma;
  int         r;
  bo_boundary boundary;
  int64_t     h, w;
  double     *taps; /* 2r+1 normalised taps h_{-r..r} */
  bo_blur1d   bx, by;
} bo_blur;

/* The half-width used for sigma: ceil(3 sigma). */
int            bo_blur_radius(double sigma);
PetscErrorCode bo_blur_create(int64_t h, int64_t w, double sigma, bo_boundary boundary, bo_blur *b);
PetscErrorCode bo_blur_destroy(bo_blur *b);

/* out = K in (or K^T in) on a patch.  in holds rows [gys, gys+gym) x columns [gxs, gxs+gxm) of the
 * image (row-major, gxm per row), which must contain every pixel within r of the owned block
 * [ys, ys+ym) x [xs, xs+xm) that lies in the image; out holds the owned block (xm per row).
 * tmp has room for gym * xm doubles. */
void bo_blur_apply_patch(const bo_blur *b, PetscBool transpose, const double *in, int64_t gxs, int64_t gys, int64_t gxm, int64_t gym, int64_t xs, int64_t ys, int64_t xm, int64_t ym, double *tmp, double *out);
/* The whole image on one rank (tmp: h*w doubles). */
void bo_blur_apply_image(const bo_blur *b, PetscBool transpose, const double *in, double *tmp, double *out);
/* A bound c >= ||K||_2^2 = lambda_max(K^T K): ||K||_1 ||K||_inf (1 for reflect). */
double bo_blur_norm2_bound(const bo_blur *b);
/* DCT-II eigenvalues of the 1-D factors (reflect only): ex[0..w), ey[0..h). */
void bo_blur_dct_eigs(const bo_blur *b, double *ex, double *ey);
#endif
