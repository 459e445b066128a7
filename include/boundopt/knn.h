/* knn.h - exact distributed k-nearest-neighbour affinity graph.
 *
 * Contract
 *   x: this rank's rows [rows->lo, rows->hi) of an n x d float matrix (tile partition).
 *   bo_knn_build (collective) finds, for every row p, its knn nearest rows under the Euclidean
 *   distance, *counting p itself* as the reference codes do (knn = 5 means 4 real neighbours;
 *   opts->count_self = PETSC_FALSE makes knn real neighbours).  Ties: the lower global index first.
 *   Self is then dropped.  Weights: binary 1, or Gaussian exp(-d^2 / (2 scale^2)).
 *   Symmetrisation: none (row-wise kNN), avg ((W + W^T)/2) or max.
 *   Algorithm: each rank keeps its own block; the other ranks' blocks travel around a ring
 *   (MPI_Isend/Irecv of the next block overlapped with the distances to the current one; at most
 *   three blocks resident).  Squared distances |x|^2 + |y|^2 - 2 x.y come from one sgemm per (own
 *   tile, visiting tile) pair, so every distance is computed from the same fixed-shape BLAS call
 *   whatever the number of ranks, and a bounded heap keeps the top knn per row: the graph is
 *   identical for any number of ranks.
 *   Requires 1 <= knn - (count_self ? 1 : 0) and knn < n.  The graph comes back with its ghost
 *   exchange set up (bo_graph_setup_exchange) and g->scale = the Gaussian width used (0: binary).
 *   bo_knn_edge_sqdist (collective) gathers the ghost rows of x as floats
 *   (bo_graph_gather_ghosts_float) and sums (x_p - x_q)^2 over the columns in double, in column
 *   order: exact to double rounding and rank-count independent (not the float sgemm distances).
 */
#ifndef BOUNDOPT_KNN_H
#define BOUNDOPT_KNN_H
#include "boundopt/graph.h"

typedef enum { BO_KNN_BINARY = 0, BO_KNN_GAUSSIAN = 1 } bo_knn_weights;
typedef enum { BO_SYM_NONE = 0, BO_SYM_AVG = 1, BO_SYM_MAX = 2 } bo_knn_symmetrize;

typedef struct {
  int               knn;
  PetscBool         count_self;  /* default PETSC_TRUE (reference semantics) */
  bo_knn_weights    weights;
  double            scale;       /* Gaussian width; <= 0: the mean kNN distance */
  bo_knn_symmetrize symmetrize;
} bo_knn_opts;

PetscErrorCode bo_knn_build(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const bo_knn_opts *opts, bo_graph *g);
/* Squared distances of each stored edge (same order as g->indices), from x and its ghost rows. */
PetscErrorCode bo_knn_edge_sqdist(bo_graph *g, int64_t d, const float *x, double *sqdist);
#endif
