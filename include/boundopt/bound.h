/* bound.h - the bound optimizer shared by SLK clustering, LaplacianShot and the few-shot family.
 *
 * Model (arXiv 2106.09516, SLK NeurIPS 2018; spec section 2).  Y is N x K row-stochastic, A the
 * unary costs, W a sparse affinity.  boundopt minimises
 *
 *     E(Y) = sum_p y_p.log y_p + sum_p y_p.a_p - (lambda / 2) sum_{p,q} w_pq y_p.y_q
 *
 * by the bound iterations  Y <- rowsoftmax(-A + lambda W Y).  For symmetric W the step exactly
 * minimises the linear upper bound of the concave quadratic at the current Y, so the energy that
 * the step decreases and the energy reported are one function.  Mapping to the reference codes:
 * their update is the same (lambda there = lambda here, so published lambda grids carry over), but
 * they monitor sum [y log y + a y - lambda b y] (lambda, not lambda/2, on the quadratic, and b = W Y
 * of the previous iterate); our reported energy is theirs plus (lambda/2) sum w y.y, computed from
 * B = W Y of the current iterate.  log y is clamped at 1e-20 as in the reference for the first
 * iterate; after a step, sum y log y comes exactly from the step's log-sum-exp (one log per row).  Monotone decrease
 * is not guaranteed (W is not PSD in general): tests assert the caps and the stopping rule.
 *
 * Contract
 *   Row-distributed: a, y, b hold this rank's rows (local x K).  W is a bo_graph with its ghost
 *   exchange set up (graph.h), required by bo_bound_run; in bo_bound_energy b = NULL drops the
 *   pairwise term.  Collective.
 *   The energy is summed per tile and exactly (reduce.h): iterates and energies are identical for
 *   any number of ranks.
 */
#ifndef BOUNDOPT_BOUND_H
#define BOUNDOPT_BOUND_H
#include "boundopt/graph.h"
#include <stdatomic.h>

typedef struct {
  double lambda;
  int    max_it;  /* cap on bound iterations */
  double tol;     /* stop when |E_i - E_{i-1}| <= tol |E_{i-1}|, E_i the energy after i steps, i > 2
                   * (the reference's i > 1 on its energies, which are one step later) */
} bo_bound_opts;

/* y[i*k + c] = softmax_c(-a[i*k + c]) for every local row (row maximum subtracted first). */
void bo_bound_softmax(int64_t local, int64_t k, const double *a, double *y);
/* Energy of Y given b = W Y (b may be NULL when there is no graph). */
PetscErrorCode bo_bound_energy(MPI_Comm comm, const bo_rows *rows, int64_t k, const double *a, const double *y, const double *b, double lambda, double amax, double wmax, double *energy);
/* From y = softmax(-A): bound iterations until the stopping rule or the cap.  On return y is the
 * last iterate, *energy its energy, *iterations the number of steps taken (W*Y products are one
 * more: the last one gives the energy). */
PetscErrorCode bo_bound_run(const bo_rows *rows, int64_t k, const double *a, bo_graph *w, const bo_bound_opts *opts, double *y, double *energy, int *iterations);
/* The same iterations with their buffers made once and reused across calls (an SLK job runs
 * bo_bound_run once per outer iteration; fresh buffers at every call fault in new pages).
 * bo_bound_work_create (collective on w->comm; sets up w's exchange if needed) makes two
 * bo_graph_shared (graph.h) in which the iterates live during a call, so that ranks on one node
 * read each other's rows of Y instead of exchanging copies, and caches W's largest row sum.  The
 * ranks that share (share, as in bo_graph_shared_create: BO_SHARE_NODE for a node's ranks) also
 * share the work of each iteration, in two phases: W*Y, a node barrier, then the energy and the
 * step, each over the node's tiles claimed one at a time from per-rank counters, each rank
 * starting with its own; so a rank that is done computes what is left of a slower rank's rows.
 * Every row gets the same operations whoever takes it and the energy's tile partials are added
 * exactly (reduce.h): the results are the same bits with or without sharing, at any rank count.
 * For that the node's CSR rows (bo_graph_node), A, B = W*Y, the entropies and the counters live in
 * windows shared by those ranks.  The workspace borrows w, which must outlive it and not change.
 * bo_bound_run_work (collective) takes the arguments of bo_bound_run for that graph and k and gives
 * bit-identical results; bo_bound_run is create (BO_SHARE_NODE) + run_work + destroy.
 * BO_SHARE_NONE moves every other rank's rows by message and shares no work. */
typedef struct {
  _Atomic int64_t *next[2][2]; /* tile counters: [W*Y, step][iteration parity], own cache lines */
  double          *ent[2];     /* the rows' entropies of each iterate */
  double          *a, *b;      /* A of the current call; W Y */
} bo_bound_peer;
typedef struct {
  bo_graph       *graph;
  int64_t         k, local;
  double          wmax;       /* bo_graph_max_row_sum of graph */
  bo_graph_shared shared[2];  /* two iterates: the current one and the next (bo_bound_run_work) */
  bo_graph_node   node;       /* the node ranks' CSR rows, so that any of them computes any row */
  MPI_Win         win;        /* per node rank: counters, entropies, A, B (MPI_WIN_NULL: private) */
  void           *own;        /* the same, private, without a node window */
  bo_bound_peer  *peer;       /* node.size entries, pointers into win */
  int64_t         tiles[2][2]; /* tiles this rank computed, [W*Y, step][own, other ranks'], all calls */
  void          (*tile_hook)(void *ctx); /* if set, called after each tile this rank takes (tests slow a rank) */
  void           *tile_ctx;
} bo_bound_work;
PetscErrorCode bo_bound_work_create(bo_graph *w, int64_t k, int share, bo_bound_work *ws);
PetscErrorCode bo_bound_run_work(const bo_rows *rows, int64_t k, const double *a, bo_bound_work *ws, const bo_bound_opts *opts, double *y, double *energy, int *iterations);
PetscErrorCode bo_bound_work_destroy(bo_bound_work *ws);
/* Labels: argmax over each row (ties: lowest index). */
void bo_bound_labels(int64_t local, int64_t k, const double *y, int32_t *labels);
#endif
