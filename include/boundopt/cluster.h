/* cluster.h - the clustering driver: K-means, soft K-means, K-modes and Laplacian K-modes (SLK).
 *
 * All methods are special cases of the model of arXiv 2106.09516 (bound.h) with block-coordinate
 * updates, one outer iteration being:
 *   1. prototypes: hard means (kmeans), soft means sum y x / sum y (soft-kmeans, slk-means; from
 *      the second iteration), mean-shift modes of the current clusters (kmodes, slk-ms), or the
 *      row of largest y per cluster (slk-bo, from the second iteration);
 *   2. unary costs A: |x - m|^2 (kmeans, soft-kmeans, slk-means) or -exp(-|x - m|^2 / 2 sigma^2)
 *      (kmodes, slk-ms, slk-bo);
 *   3. Y: hard argmin (kmeans, kmodes), rowsoftmax(-A) (soft-kmeans), or bound iterations with
 *      the graph W and lambda (slk-*);
 *   4. labels = argmax Y; empty clusters re-seeded with the row farthest from its prototype
 *      (on_empty = reseed) or the previous prototypes and labels restored and the run stopped
 *      (on_empty = stop, as the reference);
 *   5. energy: sum of the minima of A (hard methods) or E(Y) of bound.h (soft and slk methods);
 *   6. stop: hard methods when no label changes; the others when i > 0 and
 *      |E - E_old| <= tol |E_old|; always after max_it outer iterations.
 * Supervision constraints (transductive few-shot, spec section 7): with opts->fixed, a row p with
 * fixed[p] >= 0 is a support row of class fixed[p].  The caller then gives the starting partition
 * in st->labels (support rows on their class) with opts->from_labels, and the first iteration's
 * prototypes come from it (hard means / mean-shift of those clusters) instead of being seeds.
 * Soft methods start Y at rowsoftmax(-A) with the support rows one-hot.  With opts->clamp the
 * support rows keep their class throughout (hard methods: their label; soft ones: their one-hot
 * row, by giving every other class the cost a_pc = BO_CLUSTER_CLAMP_COST + lambda * max row sum of
 * W, so exp underflows to exactly 0 and the row stays one-hot through the bound iterations, whose
 * energy then counts the support rows' own-class cost only); without it they move like the
 * queries, as the reference code does.
 * A hook runs after every outer iteration (monitor lines, checkpoints, signals) and may stop the
 * run.  The state can be saved and given back to continue exactly where it was.
 *
 * Contract: x holds this rank's rows; state arrays are this rank's rows except the prototypes
 * (replicated).  Collective.  Results are identical for any number of ranks.
 */
#ifndef BOUNDOPT_CLUSTER_H
#define BOUNDOPT_CLUSTER_H
#include "boundopt/bound.h"

typedef enum { BO_KMEANS, BO_SOFT_KMEANS, BO_KMODES, BO_SLK_MEANS, BO_SLK_MS, BO_SLK_BO, BO_NMETHODS } bo_cluster_method;
extern const char *const bo_cluster_method_names[BO_NMETHODS];
typedef enum { BO_ON_EMPTY_RESEED = 0, BO_ON_EMPTY_STOP = 1 } bo_on_empty;

typedef struct bo_cluster_state_s bo_cluster_state;
typedef PetscErrorCode (*bo_cluster_hook)(void *ctx, const bo_cluster_state *state, PetscBool *stop);

typedef struct {
  bo_cluster_method method;
  int64_t           k;
  double            lambda;
  double            sigma;         /* kernel width (kmodes and slk-ms/bo) */
  int               max_it;        /* outer iterations */
  double            tol;           /* outer relative energy tolerance */
  bo_bound_opts     bound;         /* inner bound iterations (lambda is copied from above) */
  int               ms_max_it;     /* mean-shift sweeps */
  double            ms_tol;
  PetscBool         hard_means;    /* soft-kmeans, slk-means: members' mean instead of the soft mean */
  bo_on_empty       on_empty;
  const int32_t    *fixed;         /* per local row: its class (support rows) or -1; NULL: none */
  PetscBool         clamp;         /* support rows keep their class (else they move) */
  PetscBool         from_labels;   /* first prototypes from st->labels, not seeds */
  bo_cluster_hook   hook;
  void             *hook_ctx;
} bo_cluster_opts;

/* Cost that makes exp(-a + lambda b) underflow to exactly 0 in double once lambda * max row sum
 * of W is added (exp(-745.2) is the last nonzero). */
#define BO_CLUSTER_CLAMP_COST 800.0

struct bo_cluster_state_s {
  int64_t  n, d, k;
  bo_rows  rows;
  float   *prototypes;      /* k x d, replicated */
  double  *y;               /* local x k (soft methods; one-hot for hard ones) */
  int32_t *labels;          /* local */
  int      iteration;       /* outer iterations done */
  double  *energy;          /* per outer iteration (max_it) */
  int     *bound_iterations;/* per outer iteration */
  int64_t  reseeded;        /* empty clusters re-seeded so far */
  int64_t  skipped_rows;    /* this rank's rows of the last hard pass that needed one distance, not k (bounds, kmeans.h) */
  PetscBool converged, stopped_empty, interrupted;
};

PetscBool      bo_cluster_uses_graph(bo_cluster_method m);
PetscBool      bo_cluster_uses_kernel(bo_cluster_method m);
/* Allocates the state for this rank's rows; prototypes must then be seeded by the caller. */
PetscErrorCode bo_cluster_state_create(const bo_rows *rows, int64_t d, int64_t k, int max_it, bo_cluster_state *st);
PetscErrorCode bo_cluster_state_destroy(bo_cluster_state *st);
/* Runs (or continues, when st->iteration > 0) the outer iterations.  w: graph with its exchange
 * set up, needed by slk-* (NULL otherwise). */
PetscErrorCode bo_cluster_run(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, bo_graph *w, const bo_cluster_opts *opts, bo_cluster_state *st);
/* sigma of the K-modes kernel from the weighted squared edge lengths of a kNN graph (spec section
 * 4): sigma^2 = sum w |x_p - x_q|^2 / (5 n) (ref5, the reference) or / nnz.  0 if the sum is 0. */
double         bo_cluster_sigma_rule(double weighted_sqdist_sum, int64_t n, int64_t nnz, PetscBool ref5);
/* Cluster sizes (collective): counts of labels. */
PetscErrorCode bo_cluster_sizes(MPI_Comm comm, const bo_cluster_state *st, int64_t *sizes);
#endif
