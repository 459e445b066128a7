/* hq.h - half-quadratic restoration by preconditioned alternating minimization (spec hq-at section 2).
 *
 * Model (one channel, intensities in [0,1], grid and gradient as in imgop.h)
 *   E(x) = 1/2 ||K x - f||^2 + sum_i phi(|grad x|_i),   K = I (denoising) or a blur (blur.h),
 *   with a potential of height lambda and scale delta (t = |grad x|_i):
 *     tq-mult, tq-add  phi = lambda min(t^2/delta^2, 1)   weight omega = 2 lambda/delta^2 [t < delta]
 *     gm               phi = lambda t^2/(delta^2 + t^2)   omega = 2 lambda delta^2/(delta^2 + t^2)^2
 *     hl               phi = lambda log(1 + t^2/delta^2)  omega = 2 lambda/(delta^2 + t^2)
 *   The spec's TQ (mu_s/2) min(t^2, lambda_s/mu_s) is this one with delta^2 = lambda_s/mu_s and
 *   lambda = lambda_s/2.  Every potential's weight is at most omega_max = 2 lambda/delta^2.
 * Outer iteration k (from x^0 = f, or K^T f with a blur):
 *   multiplicative (Geman-Reynolds; tq-mult, gm, hl): omega^k = omega(|grad x^k|), then
 *     (K^T K + L(omega^k) + mu I) x = K^T f + mu x^k;
 *   additive (Geman-Yang; tq-add): w = grad x^k where |grad x^k| > delta else 0, then
 *     (K^T K + beta grad^T grad + mu I) x = K^T f + beta grad^T w + mu x^k,  beta = 2 lambda/delta^2
 *     (exact: phi(t) = min_w beta/2 |g - w|^2 + lambda [w != 0]);
 *   the linear step is the inner solver (imgop.h) started from x^k; mu >= 0 is the proximal weight.
 *   With an exact auxiliary step and a feasible inner step E never increases (spec section 2.3).
 *
 * Contract: bo_hq_start sets x to x^0 and evaluates E; bo_hq_step does one outer iteration in
 *   place on x and returns E(x^{k+1}) and the inner iterations.  f and x are the caller's global
 *   vectors on the grid's DMDA and must outlive the solver's use.  All calls are collective on the
 *   grid's communicator; energies are exact sums (identical for any number of ranks).
 */
#ifndef BOUNDOPT_HQ_H
#define BOUNDOPT_HQ_H
#include "boundopt/imgop.h"

typedef enum { BO_HQ_TQ_MULT, BO_HQ_TQ_ADD, BO_HQ_GM, BO_HQ_HL, BO_HQ_NPOTENTIALS } bo_hq_potential;
extern const char *const bo_hq_potential_names[]; /* "tq-mult", "tq-add", "gm", "hl" */

typedef struct {
  bo_hq_potential potential;
  double          lambda, delta, mu;
  bo_inner_opts   inner;
} bo_hq_opts;

/* phi and omega = phi'(t)/t as functions of t^2 = |grad x|_i^2. */
double bo_hq_phi(bo_hq_potential p, double lambda, double delta, double t2);
double bo_hq_weight(bo_hq_potential p, double lambda, double delta, double t2);

typedef struct bo_hq_s *bo_hq;
/* blur may be NULL (denoising); the grid must carry the blur's radius.  prefix: the inner KSP's. */
PetscErrorCode bo_hq_create(bo_grid *g, const bo_blur *blur, const bo_hq_opts *o, const char *prefix, bo_hq *hq);
KSP            bo_hq_ksp(bo_hq hq);
PetscErrorCode bo_hq_start(bo_hq hq, Vec f, Vec x, double *energy);
PetscErrorCode bo_hq_step(bo_hq hq, double *energy, PetscInt *inner_its);
PetscErrorCode bo_hq_rank_invariant(bo_hq hq, PetscBool *invariant);
PetscErrorCode bo_hq_destroy(bo_hq *hq);
#endif
