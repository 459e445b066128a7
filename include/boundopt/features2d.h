/* features2d.h - per-pixel feature fields of an image, for heads trained on fixed features
 * (spec losses.md section 0 "Per-pixel features X", 2 "features", 5 "with spatial context",
 * 7 "phi(p)").
 *
 * Input: an h x w image with c channels, row-major, channel fastest: image[(y w + x) c + ch]
 * (intensity, or colour already converted by the caller).  Output: the field, h x w x F in the same
 * layout, F = bo_feat2d_channels().  Channel order (each family only if enabled):
 *   for each scale s (in the order given), for each input channel ch:
 *     smooth     S = G_sigma * I  (sigma = 0: I itself)
 *     gradient   |grad S| = sqrt(gx^2 + gy^2),  gx = (S[x+1] - S[x-1])/2, gy likewise
 *     laplacian  sigma'^2 (S[x+1] + S[x-1] + S[y+1] + S[y-1] - 4 S)   (scale-normalised LoG)
 *     variance   G_sigma' * (I^2) - (G_sigma' * I)^2, clamped at 0     (local variance)
 *     with sigma' = max(sigma, 1), so the raw scale has a 1-pixel window for the last two;
 *   then, if position: x/(w-1), y/(h-1) (0 on a 1-pixel side);
 *   then for each scale s, for each filter f < nfilters:
 *     filter     ReLU(sum_{ch, a, b in -1..1} K_sf[ch][a+1][b+1] S_ch[y + a d_s][x + b d_s]),
 *                d_s = max(1, round(sigma_s)) (a dilated 3 x 3 filter on the smoothed image).
 *   K_sf (c x 3 x 3) is drawn N(0, 1/(9c)) in (ch, a, b) order from the Philox stream
 *   (seed, id = s nfilters + f, purpose BO_FEAT2D_RNG_PURPOSE): the same bank for every image, rank
 *   and run with that seed (bo_feat2d_filter returns it).
 * Boundaries: half-sample reflection everywhere (... b a | a b c ...), as blur.h's reflect rule, so
 * the Gaussian keeps the image mean and a constant image has zero gradient, Laplacian and variance.
 * The Gaussian is blur.h's separable G_sigma (radius ceil(3 sigma), taps summing to 1), which needs
 * ceil(3 sigma') < min(h, w).
 *
 * Contract: pure functions on arrays, local (MPI over images is the caller's).  Workspace: a few
 * h w doubles per call.  Errors: one line "features2d: ...; expected ..." (BO_ERR_INPUT).
 */
#ifndef BOUNDOPT_FEATURES2D_H
#define BOUNDOPT_FEATURES2D_H
#include <petscsys.h>
#include <stddef.h>
#include <stdint.h>

#define BO_FEAT2D_MAX_SCALES   8
#define BO_FEAT2D_RNG_PURPOSE  0xF2Du

typedef struct {
  int       nscales;                       /* 1..BO_FEAT2D_MAX_SCALES */
  double    sigma[BO_FEAT2D_MAX_SCALES];   /* >= 0, in pixels */
  PetscBool smooth, gradient, laplacian, variance, position;
  int       nfilters;                      /* random filters per scale, >= 0 */
  uint64_t  seed;                          /* filter bank seed */
} bo_feat2d_opts;

/* Scales 1, 2, 4; every family on; position on; no random filters; seed 1. */
void bo_feat2d_defaults(bo_feat2d_opts *o);

/* F for c input channels. */
PetscErrorCode bo_feat2d_channels(const bo_feat2d_opts *o, int64_t c, int64_t *nf);
/* Name of channel j (e.g. "smooth s=2 c=0", "x", "filter s=1 f=3"), for the HDF5 attributes. */
PetscErrorCode bo_feat2d_channel_name(const bo_feat2d_opts *o, int64_t c, int64_t j, char *name, size_t len);
/* The c x 3 x 3 weights of filter f at scale index s. */
PetscErrorCode bo_feat2d_filter(const bo_feat2d_opts *o, int64_t c, int s, int f, double *weights);
/* field (h x w x F) from image (h x w x c). */
PetscErrorCode bo_feat2d_build(const bo_feat2d_opts *o, int64_t h, int64_t w, int64_t c, const double *image, double *field);
#endif
