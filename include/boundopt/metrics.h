/* metrics.h - clustering and classification metrics.
 *
 * Contract (all pure functions on replicated inputs, no MPI):
 *   bo_contingency: counts[c * ntrue + t] of points with cluster c and true label t.
 *   NMI = I(C;T) / norm with the arithmetic norm (H(C)+H(T))/2, as scikit-learn >= 0.22, or the
 *   geometric norm sqrt(H(C)H(T)); natural logs; 1 when both partitions are a single class.
 *   ACC = max over one-to-one maps of clusters to labels (Hungarian algorithm, O(K^3), rectangular
 *   allowed) of the matched count / n.  bo_hungarian_max solves max-weight assignment on an r x c
 *   matrix and gives, per row, its column or -1.
 */
#ifndef BOUNDOPT_METRICS_H
#define BOUNDOPT_METRICS_H
#include <petscsys.h>
#include <stdint.h>

PetscErrorCode bo_metrics_nmi(int64_t nclust, int64_t ntrue, const int64_t *counts, double *nmi_arithmetic, double *nmi_geometric);
PetscErrorCode bo_metrics_acc(int64_t nclust, int64_t ntrue, const int64_t *counts, double *acc);
PetscErrorCode bo_hungarian_max(int64_t r, int64_t c, const double *weight, int64_t *assign);
/* counts from distributed labels: collective on comm (exact int64 sums). */
PetscErrorCode bo_contingency(MPI_Comm comm, int64_t local, const int32_t *clusters, const int32_t *truth, int64_t nclust, int64_t ntrue, int64_t *counts);

/* ---- image quality (pure functions on whole images, no MPI) ----------------------------------
 * Images are h x w x c, row-major, channel fastest (a[(y*w + x)*c + k]), values on a scale whose
 * dynamic range is `range` (1 for [0,1] images).
 *   PSNR = 10 log10(range^2 / MSE) over every sample (+inf when the images are equal).
 *   SSIM (Wang et al. 2004): Gaussian window sigma 1.5 truncated to 11 x 11 and normalised,
 *   K1 = 0.01, K2 = 0.03, population (co)variances, averaged over the pixels whose window lies
 *   inside the image and then over channels: scikit-image's structural_similarity with
 *   gaussian_weights=True, use_sample_covariance=False, data_range=range.  Needs h, w >= 11. */
PetscErrorCode bo_metrics_psnr(int64_t h, int64_t w, int c, const double *a, const double *b, double range, double *psnr);
PetscErrorCode bo_metrics_ssim(int64_t h, int64_t w, int c, const double *a, const double *b, double range, double *ssim);
#endif
