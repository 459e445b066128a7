/* at.h - Ambrosio-Tortorelli segmentation by preconditioned alternating minimization (spec hq-at section 3).
 *
 * Model (one channel g in [0,1]; u the piecewise-smooth image, v the edge indicator, 0 on edges)
 *   E_eps(u, v) = alpha ||u - g||^2 + sum_i v_i^2 |grad u|_i^2 + lambda eps ||grad v||^2
 *                 + lambda/(4 eps) ||1 - v||^2
 * Outer iteration (both systems SPD M-matrices, derived from E so that each exact step descends):
 *   u-step: ((alpha + mu) I + L(v^2)) u = alpha g + mu u^k
 *   v-step: ((lambda/(4 eps) + mu) I + diag(|grad u|^2) + lambda eps grad^T grad) v
 *           = lambda/(4 eps) + mu v^k
 *   each by the inner solver (imgop.h) from the previous iterate; mu >= 0 is the proximal weight.
 *   With Gauss-Seidel-type sweeps (rbgs, jacobi) from v in [0,1], v stays in [0,1] with no
 *   projection (the v-matrix is an M-matrix with 0 <= rhs <= T 1).
 * The caller runs the eps schedule: bo_at_start (u = g, v = 1), then for each eps
 *   bo_at_set_epsilon and bo_at_step until max |dv| < tol or a cap.  Energies are exact sums.
 *   Two inner KSPs, with options prefixes prefix_u and prefix_v.  Collective on the grid's comm.
 */
#ifndef BOUNDOPT_AT_H
#define BOUNDOPT_AT_H
#include "boundopt/imgop.h"

typedef struct {
  double        alpha, lambda, mu;
  bo_inner_opts inner;
} bo_at_opts;

typedef struct bo_at_s *bo_at;
PetscErrorCode bo_at_create(bo_grid *grid, const bo_at_opts *o, const char *prefix_u, const char *prefix_v, bo_at *at);
PetscErrorCode bo_at_ksps(bo_at at, KSP *ku, KSP *kv);
/* u <- g, v <- 1 (the caller's vectors, kept by reference), eps the first stage. */
PetscErrorCode bo_at_start(bo_at at, Vec g, Vec u, Vec v, double eps, double *energy);
/* Changes eps and returns E at the new eps. */
PetscErrorCode bo_at_set_epsilon(bo_at at, double eps, double *energy);
/* One u-step and one v-step: E after it, inner iterations (u + v), max |v^{k+1} - v^k|. */
PetscErrorCode bo_at_step(bo_at at, double *energy, PetscInt *inner_its, double *dv_max);
PetscErrorCode bo_at_rank_invariant(bo_at at, PetscBool *invariant);
PetscErrorCode bo_at_destroy(bo_at *at);
#endif
