/* fewshot.h - the per-task pieces of transductive few-shot inference: the task sampler, feature
 * preprocessing, SimpleShot and LaplacianShot (spec clustering-fewshot.md sections 6, 9, 10).
 *
 * Contract
 *   Everything here works on ONE task held whole by the calling rank: no collectives, no files,
 *   no options.  The task driver deals tasks to ranks and calls these; since a task depends only on
 *   (seed, task id) and the pool, results are identical for any number of ranks.
 *   Matrices are row-major double arrays (n x d).  Labels are task-local, 0 .. ways-1.
 *   Ownership: inputs are borrowed and never modified (except the in-place preprocessing
 *   functions); outputs (pred: nq, protos: ways x d) are caller-allocated; a bo_fewshot_task owns
 *   its arrays (create/destroy) and is refilled by every bo_fewshot_sample; a graph from
 *   bo_fewshot_knn_graph owns its arrays (bo_graph_destroy).  Work arrays are PetscMalloc'ed per
 *   call (a task is a few hundred rows).
 *   Errors: bad arguments are one-line input errors (PETSC_ERR_USER_INPUT, raised on
 *   PETSC_COMM_SELF: only the calling rank knows), "<what>: <problem>; expected <what>".
 *
 * Task sampler (bo_fewshot_sample)
 *   The pool lists, per novel class c (0 .. nclasses-1), its count[c] global row ids rows[c][0..)
 *   and its original class id class_ids[c] (class_ids may be NULL: the id is c).  The pool is
 *   borrowed, never modified.  Task t draws from one Philox stream bo_rng (seed, t,
 *   BO_FEWSHOT_RNG_PURPOSE), in this order, which is part of the reproducibility contract:
 *     1. classes: a partial Fisher-Yates shuffle of 0 .. nclasses-1: for j = 0 .. ways-1,
 *        r = j + bo_rng_below(nclasses - j), swap(perm[j], perm[r]); way j is class perm[j];
 *     2. only when dirichlet = a > 0: g_j = bo_rng_gamma(a) for j = 0 .. ways-1, p_j = g_j / sum g
 *        (if every g_j underflows to 0, which needs a << 1, p_j = 1 / ways), and the ways*queries
 *        query slots are split by bo_fewshot_split_queries(p); a = 0 gives `queries` per way;
 *     3. rows: for j = 0 .. ways-1, a partial Fisher-Yates shuffle of the positions 0 .. count-1 of
 *        class perm[j] draws shots + q_j positions without replacement (same rule as in 1); the
 *        first `shots` are the support, the rest the queries.
 *   Output layout (way-major): support_rows[j*shots + s] has label j; the queries of way j are
 *   query_rows[o_j .. o_j + q_j) with o_j = q_0 + .. + q_{j-1}, labels j.  A sampled class with
 *   fewer rows than shots + q_j is an input error naming the class and the task (in the Dirichlet
 *   mode this can happen for some tasks only).
 *
 * Preprocessing (spec section 9, section 6 step 1): in place, on n x d rows.
 *   L2: x <- x / |x| (a zero row stays zero).  CL2N: x <- (x - mean) / |x - mean|.
 *   Query shift: x_q <- x_q + mean(S) - mean(Q), after which mean(Q) = mean(S) (to rounding).
 *
 * SimpleShot: nearest support class mean, squared Euclidean distance summed in double; ties go to
 *   the lower class.  Every class 0 .. ways-1 needs at least one support row.
 *
 * LaplacianShot (spec section 6, reference imtiazziko/LaplacianShot): with o->rectify,
 *   1. x_q <- x_q + mean(S) - mean(Q) (on a copy: zq is not modified);
 *   2. X' = [S; shifted Q]; m_c = support class means; pred_i = argmax_c cos(x_i, m_c) (ties: the
 *      lower class; norms floored at 1e-8 as torch's cosine_similarity);
 *   3. W_ic = softmax_c(temperature * cos(x_i, m_c));
 *   4. m'_c = (1/n_c) sum_{i: pred_i = c} W_ic x_i (reference weighting), or with
 *      o->normalized_rect sum W_ic x_i / sum W_ic over the same set; a class that no row predicts
 *      keeps its support mean m_c (the reference misaligns such classes; we index by class);
 *   Without o->rectify (the reference's --proto-rect False, e.g. iNat) steps 1-4 are skipped: no
 *   shift, m'_c = m_c.
 *   5. a_qc = |x_q - m'_c|^2;
 *   6. W = the binary kNN graph over the (shifted) queries only, knn counting the point itself
 *      (knn = 3: 2 neighbours), row-wise, NOT symmetrised (bo_fewshot_knn_graph; self is
 *      excluded by index, where the reference drops the first neighbour found, which differs
 *      only for duplicate points);
 *      Y = bo_bound_softmax(A), then bo_bound_run with (lambda, max_it, tol);
 *   7. pred_q = argmax_c y_qc (bo_bound_labels: ties to the lower class).
 *   Requires 1 <= knn <= nq.  lambda = 0 gives argmin_c a_qc.
 */
#ifndef BOUNDOPT_FEWSHOT_H
#define BOUNDOPT_FEWSHOT_H
#include <petscsys.h>
#include <stdint.h>
#include "boundopt/graph.h"

/* Purpose tag of the task-sampling stream (ASCII "FSHT"); other streams keyed by task ids use
 * other tags. */
#define BO_FEWSHOT_RNG_PURPOSE 0x46534854u

typedef struct {
  int64_t               nclasses;
  const int32_t        *class_ids; /* original class id per class, or NULL (ids 0 .. nclasses-1) */
  const int64_t        *count;     /* rows per class */
  const int64_t *const *rows;      /* rows[c][0 .. count[c]): global row ids of class c */
} bo_fewshot_pool;

typedef struct {
  int      ways, shots, queries; /* as created; queries = mean queries per way */
  int      nq;                   /* ways * queries, whatever the split */
  int32_t *class_ids;            /* ways: original class id of way j */
  int64_t *support_rows;         /* ways * shots, way-major */
  int32_t *support_labels;       /* ways * shots: j */
  int64_t *query_rows;           /* nq, way-major */
  int32_t *query_labels;         /* nq */
  int     *queries_per_class;    /* ways: q_j, sum = nq */
} bo_fewshot_task;

/* Allocates a task's arrays for (ways, shots, queries), all >= 1; reuse it for every task of a run. */
PetscErrorCode bo_fewshot_task_create(int ways, int shots, int queries, bo_fewshot_task *task);
PetscErrorCode bo_fewshot_task_destroy(bo_fewshot_task *task);

/* Fills task (created with the same ways, shots, queries) with task task_id; dirichlet = 0 is
 * balanced, a > 0 splits the queries by Dirichlet(a 1).  Requires ways <= nclasses. */
PetscErrorCode bo_fewshot_sample(uint64_t seed, int64_t task_id, const bo_fewshot_pool *pool, int ways, int shots, int queries, double dirichlet, bo_fewshot_task *task);

/* Largest-remainder split of total >= ways slots by proportions p (ways, >= 0, summing to 1):
 * q_j = 1 + floor(p_j R) with R = total - ways, then the R - sum floor(p_j R) slots left go one
 * each to the largest remainders p_j R - floor(p_j R), ties to the lower index.  Sum q = total. */
void bo_fewshot_split_queries(int ways, int total, const double *p, int *q);

void bo_fewshot_l2(int64_t n, int64_t d, double *x);
void bo_fewshot_cl2n(int64_t n, int64_t d, const double *mean, double *x);
void bo_fewshot_shift_queries(int64_t ns, int64_t nq, int64_t d, const double *zs, double *zq);

/* means (ways x d) of the support rows per label; an error names `who` when a label is out of
 * range or a class has no support row. */
PetscErrorCode bo_fewshot_class_means(const char *who, int64_t ns, int64_t d, const double *zs, const int32_t *ys, int ways, double *means);

/* pred (nq) = nearest support class mean of each query row. */
PetscErrorCode bo_fewshot_simpleshot(int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, int ways, int32_t *pred);

typedef struct {
  double    lambda;          /* weight of the Laplacian term; reference fallback 1.0 */
  int       knn;             /* graph neighbours counting self; 3 */
  int       max_it;          /* bound iterations; 20 */
  double    tol;             /* bound relative tolerance; 1e-6 */
  double    temperature;     /* of the rectification softmax; 10 */
  PetscBool rectify;         /* shift + rectified prototypes (steps 1-4); PETSC_TRUE */
  PetscBool normalized_rect; /* sum W x / sum W instead of the reference mean of W x; PETSC_FALSE */
} bo_lshot_opts;

typedef struct {
  int    iterations; /* bound iterations (W*Y products) */
  double energy;     /* bound energy of the last iterate (bound.h convention) */
} bo_lshot_stats;

/* The reference defaults above. */
void bo_lshot_opts_default(bo_lshot_opts *o);

/* Steps 2-4 on support zs (ns, labels ys) and already-shifted queries zq (nq): protos (ways x d). */
PetscErrorCode bo_fewshot_rectified_prototypes(int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, int ways, double temperature, PetscBool normalized, double *protos);

/* The binary row-wise kNN graph of the n rows of x on PETSC_COMM_SELF (knn counts self: row p
 * gets its knn - 1 nearest other rows by (squared Euclidean distance in double, index), columns
 * ascending, weight 1), with its exchange set up.  1 <= knn <= n.  Free with bo_graph_destroy. */
PetscErrorCode bo_fewshot_knn_graph(int64_t n, int64_t d, const double *x, int knn, bo_graph *g);

/* pred (nq) by LaplacianShot; stats may be NULL. */
PetscErrorCode bo_fewshot_laplacianshot(int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, int ways, const bo_lshot_opts *o, int32_t *pred, bo_lshot_stats *stats);

/* The clustering family with support constraints (spec section 7, arXiv 2106.09516), one task:
 *   1. x_q <- x_q + mean(S) - mean(Q) (on a copy); X = [S; Q], converted to float for the
 *      clustering driver (cluster.h), which runs on PETSC_COMM_SELF;
 *   2. W = the binary row-wise kNN graph over X (bo_fewshot_knn_graph, knn counting self);
 *   3. sigma (kmodes, slk-ms) from the sigma rule over W's edges with the reference's 5 N
 *      denominator, unless o->sigma > 0;
 *   4. prototypes = support class means; labels = nearest prototype, support rows on their class;
 *   5. outer iterations of bo_cluster_run from those labels (from_labels): hard means including
 *      the support rows (kmeans, slk-means) or mean-shift modes (kmodes, slk-ms), then hard
 *      argmin (kmeans, kmodes: lambda = 0) or bound iterations (slk-*), support rows one-hot at
 *      the start of every bound run, and clamped or free (o->clamp); empty cluster: restore and
 *      stop (reference);
 *   6. pred_q = the query rows' labels (cluster k is class k through the initialisation).
 * Plain accuracy; no Hungarian matching. */
typedef struct {
  int       method;       /* BO_KMEANS, BO_KMODES, BO_SLK_MEANS or BO_SLK_MS (cluster.h) */
  double    lambda;       /* slk-*: weight of the Laplacian term; reference default 0.7 */
  int       knn;          /* graph neighbours counting self; 3 */
  PetscBool clamp;        /* support rows keep their class; PETSC_FALSE (reference) */
  double    sigma;        /* kernel width; 0: the sigma rule */
  int       max_it;       /* outer iterations; 100 */
  double    tol;          /* outer relative energy tolerance; 1e-4 */
  int       bound_max_it; /* 600 */
  double    bound_tol;    /* 1e-7 */
  int       ms_max_it;    /* mean-shift sweeps; 1000 */
  double    ms_tol;       /* 1e-5 */
} bo_slkshot_opts;

typedef struct {
  int    outer;      /* outer iterations */
  int    bound;      /* bound iterations (or mean-shift sweeps of the hard methods) summed */
  double energy;     /* energy of the last outer iteration */
  double sigma;      /* kernel width used (0 for the means methods) */
  PetscBool stopped_empty;
} bo_slkshot_stats;

void           bo_slkshot_opts_default(int method, bo_slkshot_opts *o);
PetscErrorCode bo_fewshot_slk(int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, int ways, const bo_slkshot_opts *o, int32_t *pred, bo_slkshot_stats *stats);

/* Fraction of pred == truth (0 when nq = 0). */
double bo_fewshot_accuracy(int64_t nq, const int32_t *pred, const int32_t *truth);

/* Collective on comm: mean and ci95 = 1.96 std / sqrt(T) (population std) of T task accuracies,
 * each rank holding `local` of them.  Sums are exact (bo_exactsum), so the result is the same bits
 * for any split of the tasks over ranks, or over job-array slices merged later. */
PetscErrorCode bo_fewshot_mean_ci(MPI_Comm comm, int64_t ntasks, int64_t local, const double *acc, double *mean, double *ci);
#endif
