/* kmeans.h - the prototype side of the clustering family: distances, means, modes, seeding.
 *
 * Contract
 *   x: this rank's rows [rows->lo, rows->hi) of an n x d float matrix; prototypes m are k x d
 *   floats, replicated (identical on every rank).  Functions marked (collective) are collective
 *   on comm and return identical results on every rank for any number of ranks: per-row work is
 *   independent of the partition, BLAS runs on whole global tiles, sums are exact (reduce.h) and
 *   random draws come from Philox streams keyed by the seed (rng.h).
 */
#ifndef BOUNDOPT_KMEANS_H
#define BOUNDOPT_KMEANS_H
#include <petscsys.h>
#include <stdint.h>
#include "boundopt/tiles.h"

/* a[i*k + c] = |x_i - m_c|^2 (local), from |x|^2 + |m|^2 - 2 x.m with one sgemm per tile,
 * clamped at 0.  Work: 2 n d k flops. */
PetscErrorCode bo_kmeans_sqdist(const bo_rows *rows, int64_t d, const float *x, int64_t k, const float *m, double *a);
/* Hard assignment: labels = argmin_c a (ties: lowest c). */
void           bo_kmeans_argmin(int64_t local, int64_t k, const double *a, int32_t *labels);
/* Hard assignment fused with the distances, tile by tile with no n x k buffer: labels and the
 * squared distance to the chosen prototype (mind) per local row. */
PetscErrorCode bo_kmeans_assign(const bo_rows *rows, int64_t d, const float *x, int64_t k, const float *m, int32_t *labels, double *mind);
/* (collective) m_c = mean of the rows labelled c (hard, y == NULL) or sum_p y_pc x_p / sum_p y_pc
 * (soft, y local x k).  weight[c] = count or sum of y.  Clusters of weight 0 keep their m_c. */
PetscErrorCode bo_kmeans_means(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int64_t k, const int32_t *labels, const double *y, float *m, double *weight);
/* (collective) Gaussian-kernel modes by mean-shift, cluster by cluster in parallel:
 * m_c <- sum_{p in c} kappa(m_c, x_p) x_p / sum kappa, kappa = exp(-|x - m|^2 / (2 sigma^2)),
 * until max|dm| < tol max|m| or max_it sweeps.  Returns the number of sweeps. */
PetscErrorCode bo_kmodes_meanshift(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int64_t k, const int32_t *labels, double sigma, int max_it, double tol, float *m, int *sweeps);
/* (collective) greedy k-means++ seeding (2 + ln k candidates per seed, the best kept, as
 * scikit-learn): each draw is a weighted choice over all ranks' rows (D^2 weights), reproducible
 * from the seed whatever the number of ranks. */
PetscErrorCode bo_kmeans_plusplus(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int64_t k, uint64_t seed, float *m);
/* (collective) k distinct rows drawn uniformly from the seed. */
PetscErrorCode bo_kmeans_random(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int64_t k, uint64_t seed, float *m);
/* (collective) Copies global rows idx[0..count) into out (count x d), replicated. */
PetscErrorCode bo_rows_gather(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int64_t count, const int64_t *idx, float *out);
/* (collective) The row with the largest value of score (local), ties: lowest global index. */
PetscErrorCode bo_rows_argmax(MPI_Comm comm, const bo_rows *rows, const double *score, int64_t *row, double *value);
#endif
