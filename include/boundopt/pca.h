/* pca.h - principal components of a row-distributed matrix, and the row transforms of preprocess.
 *
 * Contract
 *   bo_pca_fit is collective on comm.  The covariance C = sum_i (x_i - mu)(x_i - mu)^T / (n - 1)
 *   (n - 1 as scikit-learn; n when n == 1) is summed per tile with dsyrk, then exactly across
 *   ranks (reduce.h), so with the LAPACK eigensolver the basis is identical for any number of
 *   ranks.  The ScaLAPACK path (eigen.h) depends on the process grid: pca->rank_invariant says so.
 *   components: ncomp x d, row k the k-th principal axis, signs fixed by eigen.h's rule.
 *   variance[k] = eigenvalue k (explained variance); total_variance = trace(C).
 *   bo_pca_project and the row transforms are local: tile by tile with single-threaded BLAS, so
 *   each output row is bit-identical whatever the partition.
 */
#ifndef BOUNDOPT_PCA_H
#define BOUNDOPT_PCA_H
#include <petscsys.h>
#include "boundopt/eigen.h"
#include "boundopt/tiles.h"

typedef struct {
  int64_t   d, ncomp;
  double   *mean;        /* d: the centre of the covariance */
  double   *components;  /* ncomp x d */
  double   *variance;    /* ncomp */
  double    total_variance;
  PetscBool rank_invariant;
} bo_pca;

PetscErrorCode bo_pca_fit(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const double *mean, int64_t ncomp, const bo_eigen_opts *eig, bo_pca *pca);
/* The same over the rows whose mask byte is non-zero (n - 1 becomes the selected count - 1). */
PetscErrorCode bo_pca_fit_masked(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const unsigned char *mask, const double *mean, int64_t ncomp, const bo_eigen_opts *eig, bo_pca *pca);
/* y (local rows x ncomp) = (x - centre) * components^T; centre NULL means no centring. */
PetscErrorCode bo_pca_project(const bo_rows *rows, int64_t d, const float *x, const double *centre, const bo_pca *pca, float *y);
PetscErrorCode bo_pca_destroy(bo_pca *pca);

/* x -= centre, row by row (local). */
void bo_rows_subtract(int64_t local, int64_t d, const double *centre, float *x);
/* Each row scaled to unit Euclidean norm (local); zero rows stay zero. */
void bo_rows_l2_normalize(int64_t local, int64_t d, float *x);
#endif
