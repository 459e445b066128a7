/* fcam.h - F-CAM (arXiv 2109.07069, spec losses.md section 7): full-resolution class activation
 * maps by a per-pixel decoder head trained, per image, from seeds sampled from the low-resolution
 * CAM, with the dense-CRF term and the size log-barrier (ASC); the CAM + mean-field CRF baseline;
 * and the localisation metrics (PxAP, best-threshold IoU, MaxBoxAcc v1/v2).
 *
 * Maps and images are H x W row-major doubles (pixel i = y W + x).  Everything here is local and
 * pure (no MPI, no files, no options): the task (src/tasks/fcam.c) spreads images over ranks.  The
 * only randomness is Philox (rng.h) keyed by (seed, image id, step), so an image's result does not
 * depend on the rank that computes it.  Errors: one line "fcam: ...; expected ..." (BO_ERR_INPUT).
 *
 * CAM helpers
 *   bo_fcam_pool: f x f average pooling of an H x W x F field (H, W multiples of f).
 *   bo_fcam_normalise: min-max to [0, 1] in place (a constant map becomes 0).
 *   bo_fcam_upsample: bilinear h x w -> H x W, sample points ((u + 0.5) h/H - 0.5), clamped at the
 *     border (PyTorch interpolate, align_corners = False).
 *   bo_fcam_otsu: Otsu's threshold of values in [0, 1] on nbins equal bins: the bin edge t_j = j/nbins
 *     (class 0 = bins < j) maximising the between-class variance w0 w1 (mu0 - mu1)^2; the first
 *     maximum wins.  Written here (not OpenCV) because it is twenty lines and the seeds need it on doubles.
 *
 * Seeds (spec 7 "Seeds", re-sampled at every step)
 *   bo_fcam_seed_regions: C+ = {cam > Otsu}, eroded by an erode x erode square (pixels outside the
 *     image do not erode, as cv2.erode's default border); if erosion empties it, C+ un-eroded.
 *     C- = the ceil(min_p N) pixels of lowest cam (ties: lower index first).  pos, neg: 0/1 flags.
 *   bo_fcam_sample_seeds: sl_max pixels drawn uniformly without replacement from C+ (all of C+ if
 *     smaller), sl_min from C-, each dilated by a ksz x ksz square: labels 1 (fg), 0 (bg), and
 *     BO_LABEL_IGNORE elsewhere and where the two dilations overlap.  Draws from r in a fixed order.
 *
 * Bilateral kernel on a stride grid (the CRF of spec 0/7, made affordable at 96 x 96)
 *   The image is cut into s x s blocks (H, W multiples of s); block b has the mean intensity
 *   I_b (c channels) and the position (bx, by) in block units.  K_bc = exp(-|p_b - p_c|^2/(2 sxy^2)
 *   - |I_b - I_c|^2/(2 srgb^2)) for b != c, K_bb = 0, stored as floats (n_b^2 of them, n_b = HW/s^2)
 *   with the row sums.  s = 1 is exactly the dense CRF of bo_loss_crf (up to K's float rounding).
 *   bo_fcam_kernel_apply: out_k = K v_k for nv vectors at once (double accumulation, fixed order).
 *
 * F-CAM loss of one image (B = 1), logits z (N x 2: background, foreground), p = softmax(z)
 *   L = l_sl CE(p, seeds) + l_crf CRF + l_sz ASC
 *   CE   bo_loss_ce over the seeded pixels (mean over seeds).
 *   CRF  -sum_k Sbar_k^T K Sbar_k, Sbar_bk = mean of p_ik over block b;  dL/dp_ik = -2 (K Sbar_k)_b / s^2.
 *   ASC  (1/2) sum_{r in bg, fg} psi_t(-sum_i p_ir)  (extended log-barrier, bo_penalty ELB).
 *   bo_fcam_loss returns the three unweighted terms and ADDS dL/dz to grad (may be NULL).
 *
 * Head (bo_fcam_head): hidden = 0: linear z = x W + b (W d x 2); hidden > 0: one ReLU layer,
 *   z = relu(x W1 + b1) W2 + b2.  param = [W1 (d x h), b1 (h), W2 (h x 2), b2 (2)] (linear: [W, b]).
 *   Init: linear zero; MLP W1 ~ N(0, 2/d), W2 ~ N(0, 1/h), biases 0, from the stream r.
 *   backward: dparam = dL/dparam from dlogits (local, fixed loop order).
 *
 * bo_fcam_fit: the per-image fit.  x: N x d features (the caller's phi, standardised), cam: the
 *   upsampled, normalised CAM (N) for the seeds, kernel: NULL when l_crf = 0.  steps optimiser steps
 *   (bo_optim), seeds re-drawn each step from the stream (seed, id = image << 32 | step), ELB t
 *   multiplied by t_growth after every step up to t_max.  Outputs the foreground probability (N)
 *   after the last step (softmax of the head's two logits at temperature 1, not min-max normalised:
 *   the map that is evaluated, as the reference scores softmax(cams)[:, 1]) and, if trace is not NULL, the loss before each step (steps x 4: total,
 *   CE, CRF, ASC, unweighted terms).
 *
 * bo_fcam_meanfield: CAM + CRF post-processing.  Unaries from the CAM c (fg prob, clamped to
 *   [1e-4, 1 - 1e-4]); Q = c; iters times: Q_i(l) ∝ c_i(l) exp(weight m_b(i)(l)), m = (K Qbar(l))/rowsum(K)
 *   (Potts mean-field update with the kernel normalised per row, messages on the block grid).
 *
 * Metrics of one map (values in [0, 1]) against a 0/1 ground truth
 *   bo_fcam_image_metrics: for thresholds tau_j = j/nthr, j < nthr: pixel IoU of {map >= tau_j}
 *   (1 when both are empty); box IoU of the largest 8-connected component's box with the GT box
 *   (v1), and the best box IoU over all components (v2, multi-contour); the pixel histograms
 *   (nbins bins of the map value, separately for GT fg and bg: add into hist_fg/hist_bg) and the
 *   image's own pixel AP (*ap).
 *   bo_fcam_pxap: area under the precision-recall curve over the thresholds j/nbins from the
 *   histograms: sum_j (R_j - R_{j+1}) P_j (R_nbins = 0; an empty prediction has precision 1).
 *   A perfect map gives 1, a constant map the foreground rate.
 */
#ifndef BOUNDOPT_FCAM_H
#define BOUNDOPT_FCAM_H
#include "boundopt/optim.h"
#include "boundopt/rng.h"
#include <petscsys.h>
#include <stdint.h>

#define BO_FCAM_RNG_SEEDS 0xFCA1u
#define BO_FCAM_RNG_INIT  0xFCA2u

PetscErrorCode bo_fcam_pool(int64_t H, int64_t W, int64_t F, const double *field, int64_t f, double *out);
void           bo_fcam_normalise(int64_t n, double *v);
PetscErrorCode bo_fcam_upsample(int64_t h, int64_t w, const double *in, int64_t H, int64_t W, double *out);
double         bo_fcam_otsu(int64_t n, const double *v, int nbins);

typedef struct {
  int    sl_max, sl_min; /* seeds drawn per step: foreground, background (1, 1) */
  int    ksz;            /* seed dilation (3) */
  int    erode;          /* C+ erosion (11) */
  double min_p;          /* background fraction (0.1) */
} bo_fcam_seed_opts;

void           bo_fcam_seed_defaults(bo_fcam_seed_opts *o);
PetscErrorCode bo_fcam_seed_regions(int64_t H, int64_t W, const double *cam, const bo_fcam_seed_opts *o, uint8_t *pos, uint8_t *neg);
PetscErrorCode bo_fcam_sample_seeds(int64_t H, int64_t W, const uint8_t *pos, const uint8_t *neg, const bo_fcam_seed_opts *o, bo_rng *r, uint8_t *labels);

typedef struct {
  int64_t H, W, s, hb, wb, nb; /* image, stride, block grid, blocks */
  float  *K;                   /* nb x nb */
  double *rowsum;              /* nb */
} bo_fcam_kernel;

PetscErrorCode bo_fcam_kernel_create(int64_t H, int64_t W, int64_t c, const double *image, int64_t stride, double sigma_xy, double sigma_rgb, bo_fcam_kernel *k);
PetscErrorCode bo_fcam_kernel_destroy(bo_fcam_kernel *k);
/* v, out: nv x nb (vector-major). */
void bo_fcam_kernel_apply(const bo_fcam_kernel *k, int nv, const double *v, double *out);

typedef struct {
  double l_sl, l_crf, l_sz; /* 1, 2e-9 (before the resolution rescale), 0.1 */
  double t;                 /* ELB t */
} bo_fcam_loss_opts;

/* terms[3] = CE, CRF, ASC (unweighted); grad (N x 2) += weighted dL/dz. */
PetscErrorCode bo_fcam_loss(int64_t H, int64_t W, const double *logits, const uint8_t *seeds, const bo_fcam_kernel *k, const bo_fcam_loss_opts *o, double *terms, double *grad);

typedef struct {
  int64_t d, hidden, nparam;
  double *param;
} bo_fcam_head;

PetscErrorCode bo_fcam_head_create(int64_t d, int64_t hidden, bo_rng *r, bo_fcam_head *h);
PetscErrorCode bo_fcam_head_destroy(bo_fcam_head *h);
/* work: n hidden doubles (MPL activations, kept for backward), or NULL for a linear head. */
PetscErrorCode bo_fcam_head_forward(const bo_fcam_head *h, int64_t n, const double *x, double *work, double *logits);
PetscErrorCode bo_fcam_head_backward(const bo_fcam_head *h, int64_t n, const double *x, const double *work, const double *dlogits, double *dparam);

typedef struct {
  bo_fcam_seed_opts seeds;
  bo_fcam_loss_opts loss;
  int64_t           hidden;      /* head: 0 linear, else MLP hidden units (32) */
  int               steps;       /* optimiser steps per image (100) */
  double            t_growth;    /* ELB t *= t_growth per step (1.01) */
  double            t_max;       /* 10 */
  bo_optim_opts     optim;
  uint64_t          seed;
} bo_fcam_fit_opts;

void           bo_fcam_fit_defaults(bo_fcam_fit_opts *o);
PetscErrorCode bo_fcam_fit(const bo_fcam_fit_opts *o, int64_t image_id, int64_t H, int64_t W, int64_t d, const double *x, const double *cam, const bo_fcam_kernel *k, double *fg, double *trace);

PetscErrorCode bo_fcam_meanfield(const bo_fcam_kernel *k, const double *cam, double weight, int iters, double *out);

PetscErrorCode bo_fcam_image_metrics(int64_t H, int64_t W, const double *map, const uint8_t *gt, int nthr, double *iou, double *box_v1, double *box_v2, int nbins, int64_t *hist_fg, int64_t *hist_bg, double *ap);
double         bo_fcam_pxap(int nbins, const int64_t *hist_fg, const int64_t *hist_bg);
#endif
