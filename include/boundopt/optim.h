/* optim.h - first-order optimisers on a flat parameter vector: SGD (momentum, dampening,
 * Nesterov) and Adam, both in PyTorch's form with L2 weight decay added to the gradient
 * (spec losses.md section 0: "identical Adam steps on all ranks (bias-corrected; eps 1e-8)").
 *
 *   g = grad + weight_decay * w
 *   SGD:  momentum = 0: w -= lr g.
 *         else buf = g at the first step, buf = momentum buf + (1 - dampening) g after;
 *              w -= lr (g + momentum buf) (Nesterov) or lr buf.
 *   Adam: m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2,  t = step (1-based)
 *         w -= lr/(1 - beta1^t) m / (sqrt(v)/sqrt(1 - beta2^t) + eps).
 *
 * Contract
 *   The state (moments, step count) lives in bo_optim; opt->o.lr may be changed between steps
 *   (schedules are the caller's).  Steps are elementwise in index order: given the same gradient
 *   (heads.h sums it identically on every rank) every rank takes bit-identical steps.  Local, no MPI.
 *   Errors: one line "optim: ...; expected ..." (BO_ERR_INPUT).
 */
#ifndef BOUNDOPT_OPTIM_H
#define BOUNDOPT_OPTIM_H
#include <petscsys.h>
#include <stdint.h>

typedef enum { BO_OPTIM_SGD, BO_OPTIM_ADAM } bo_optim_kind;

typedef struct {
  bo_optim_kind kind;
  double        lr;           /* > 0 */
  double        weight_decay; /* >= 0 */
  double        momentum;     /* SGD, in [0, 1) */
  double        dampening;    /* SGD, in [0, 1] */
  PetscBool     nesterov;     /* SGD: needs momentum > 0 and dampening 0 (as PyTorch) */
  double        beta1, beta2; /* Adam, in [0, 1) */
  double        eps;          /* Adam, > 0 */
} bo_optim_opts;

typedef struct {
  bo_optim_opts o;
  int64_t       n;    /* parameters */
  int64_t       step; /* steps taken */
  double       *m;    /* SGD momentum buffer or Adam first moment */
  double       *v;    /* Adam second moment (NULL for SGD) */
} bo_optim;

/* SGD lr 0.01, no momentum, no decay (RePRI: lr 0.025). */
void bo_optim_defaults_sgd(bo_optim_opts *o);
/* Adam lr 1e-3, betas 0.9 / 0.999, eps 1e-8, no decay. */
void bo_optim_defaults_adam(bo_optim_opts *o);

PetscErrorCode bo_optim_create(const bo_optim_opts *o, int64_t n, bo_optim *opt);
/* One step: w (n) updated in place from grad (n). */
PetscErrorCode bo_optim_step(bo_optim *opt, const double *grad, double *w);
PetscErrorCode bo_optim_destroy(bo_optim *opt);
#endif
