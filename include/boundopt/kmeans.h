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
#include "boundopt/reduce.h"
#include "boundopt/tiles.h"

/* a[i*k + c] = |x_i - m_c|^2 (local), from |x|^2 + |m|^2 - 2 x.m with one sgemm per tile,
 * clamped at 0.  Work: 2 n d k flops. */
PetscErrorCode bo_kmeans_sqdist(const bo_rows *rows, int64_t d, const float *x, int64_t k, const float *m, double *a);
/* Hard assignment: labels = argmin_c a (ties: lowest c). */
void           bo_kmeans_argmin(int64_t local, int64_t k, const double *a, int32_t *labels);
/* Hard assignment fused with the distances, tile by tile with no n x k buffer: labels and the
 * squared distance to the chosen prototype (mind) per local row.
 * Rounding (bo_kmeans_sqdist too): for k <= 16 each x.m is a float dot product in 8 lanes with
 * separate multiply and add (no FMA), lanes combined pairwise, so the bits do not depend on the
 * CPU's vector width (AVX2 or not); for k > 16 it is one sgemm per global tile.  The argmin is over
 * |m|^2 - 2 x.m in double; mind = max(0, |x|^2 + that), |x|^2 in double. */
PetscErrorCode bo_kmeans_assign(const bo_rows *rows, int64_t d, const float *x, int64_t k, const float *m, int32_t *labels, double *mind);

/* What repeated passes over the same x reuse (x must not change while the cache is in use): |x_i|^2
 * of every local row, computed as bo_kmeans_assign does (so results are the same bits with or
 * without the cache), and max |x| over all ranks (the bound of the exact sums, reduce.h). */
typedef struct {
  int64_t local;  /* rows of the shard it was made for */
  double *sqnorm; /* local */
  double  xmax;   /* replicated */
} bo_kmeans_xcache;
/* (collective) One pass over x.  Free with bo_kmeans_xcache_destroy. */
PetscErrorCode bo_kmeans_xcache_create(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, bo_kmeans_xcache *xc);
PetscErrorCode bo_kmeans_xcache_destroy(bo_kmeans_xcache *xc);
/* bo_kmeans_assign with the row norms of xc (a cache of this x): the same bits, less work. */
PetscErrorCode bo_kmeans_assign_cached(const bo_rows *rows, int64_t d, const float *x, const bo_kmeans_xcache *xc, int64_t k, const float *m, int32_t *labels, double *mind);
/* What repeated hard passes over the same x (bo_kmeans_assign_sums, bo_kmeans_assign_bounded)
 * carry from one pass to the next, for k <= BO_KMEANS_BOUNDS_MAX_K (the direct kernel; larger k
 * ignores it), with results the same bits as without:
 *  - lower bounds that skip a row's products with all but its own prototype when the row
 *    provably keeps it (Hamerly 2010, with the rounding of the computed distances in the test).
 *    When mind is wanted the own product is still computed (one product, not k); without mind
 *    (bo_kmeans_assign_sums with mind NULL) an upper bound on the own distance stands in for it
 *    and such a row is not read at all;
 *  - (bo_kmeans_assign_sums) each tile's per-cluster partial sums as held in the exact total:
 *    a cluster whose rows in a tile did not change keeps its partial, with no rounding to the
 *    total's grid; only the partials that changed are replaced.
 * Memory per rank: 20 bytes per row, and (fused passes) 16 k d bytes per tile of 256 rows
 * (k d / 16 bytes per row: a quarter of x at k = 16). */
#define BO_KMEANS_BOUNDS_MAX_K 16
typedef struct {
  int64_t     local, k, d;
  int32_t    *label;     /* local: the prototype a row's lower bound leaves out (-1: none yet) */
  double     *lower;     /* local: <= |x_i - m_c| for every c != label[i] (<= 0: no bound) */
  double     *upper;     /* local: >= |x_i - m_label[i]| (exact distance; set with lower) */
  float      *prev;      /* k x d: the prototypes of the last pass */
  PetscBool   have_prev, have_sums;
  bo_exactsum held;      /* local tiles x k x d: each tile's partial per cluster on the total's grid */
  bo_exactsum total;     /* k x d: the exact local total of held (both NULL until a fused pass) */
  int64_t    *count;     /* k: local rows per cluster */
  double      xmax;      /* the grid's bound: max |x| */
  int         kind;      /* the passes it serves: 0 none yet, 1 bo_kmeans_assign_bounded, 2 bo_kmeans_assign_sums */
  int64_t     skipped;   /* local rows of the last pass whose other products were skipped */
  int64_t     replaced;  /* (tile, cluster) partials of the last fused pass that changed */
} bo_kmeans_bounds;
/* Bounds for passes over this rank's rows of x with k prototypes; none known yet.  One b serves
 * one kind of pass (bo_kmeans_assign_bounded or bo_kmeans_assign_sums), over the same x. */
PetscErrorCode bo_kmeans_bounds_create(const bo_rows *rows, int64_t d, int64_t k, bo_kmeans_bounds *b);
PetscErrorCode bo_kmeans_bounds_destroy(bo_kmeans_bounds *b);
/* bo_kmeans_assign_cached (xc may be NULL) with bounds b kept across the passes: the same bits. */
PetscErrorCode bo_kmeans_assign_bounded(const bo_rows *rows, int64_t d, const float *x, const bo_kmeans_xcache *xc, int64_t k, const float *m, int32_t *labels, double *mind, bo_kmeans_bounds *b);
/* (collective) One Lloyd pass reading x once: labels and mind exactly as bo_kmeans_assign, and the
 * hard sums of the new clusters (sums: k x d, replicated; weight: the counts), exactly the values
 * bo_kmeans_means (hard) would compute from these labels.  xc: a cache of this x, or NULL (then
 * max |x| costs one more pass).  The next prototypes are bo_kmeans_means_from_sums of the result.
 * b: bounds kept across the passes over this x (updated), or NULL; the same results either way.
 * mind may be NULL when b is given: then a row whose label its bounds alone prove (upper bound
 * on its own distance below the lower bound on the others, rounding included) is not read at
 * all, and the energy is bo_kmeans_energy_from_sums'. */
PetscErrorCode bo_kmeans_assign_sums(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const bo_kmeans_xcache *xc, int64_t k, const float *m, int32_t *labels, double *mind, double *sums, double *weight, bo_kmeans_bounds *b);
/* sum_i |x_i - m_label(i)|^2 from a pass's hard sums and counts (replicated) and xx = sum_i |x_i|^2:
 * xx - 2 sum_c m_c . sums_c + sum_c weight_c |m_c|^2, in double in a fixed order (the same on every
 * rank and at any rank count; within rounding of the sum of mind). */
double         bo_kmeans_energy_from_sums(int64_t k, int64_t d, const float *m, const double *sums, const double *weight, double xx);
/* m_c = sums_c / weight_c (rounded to float) for every c with weight_c > 0; other m_c are kept. */
void           bo_kmeans_means_from_sums(int64_t k, int64_t d, const double *sums, const double *weight, float *m);
/* (collective) m_c = mean of the rows labelled c (hard, y == NULL) or sum_p y_pc x_p / sum_p y_pc
 * (soft, y local x k).  weight[c] = count or sum of y.  Clusters of weight 0 keep their m_c. */
PetscErrorCode bo_kmeans_means(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int64_t k, const int32_t *labels, const double *y, float *m, double *weight);
/* (collective) bo_kmeans_means with max |x| from xc (a cache of this x, or NULL): the same bits,
 * one pass over x less. */
PetscErrorCode bo_kmeans_means_cached(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const bo_kmeans_xcache *xc, int64_t k, const int32_t *labels, const double *y, float *m, double *weight);
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
