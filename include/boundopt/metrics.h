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
#endif
