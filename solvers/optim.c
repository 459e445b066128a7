/* optim.c - SGD and Adam steps on a flat parameter vector (see optim.h). */
#include "boundopt/optim.h"
#include "boundopt/error.h"
#include <math.h>
#include <string.h>

#define CHECK(cond, ...) PetscCheck(cond, PETSC_COMM_SELF, BO_ERR_INPUT, __VA_ARGS__)

void bo_optim_defaults_sgd(bo_optim_opts *o) { *o = (bo_optim_opts){.kind = BO_OPTIM_SGD, .lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8}; }

void bo_optim_defaults_adam(bo_optim_opts *o) { *o = (bo_optim_opts){.kind = BO_OPTIM_ADAM, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8}; }

static PetscErrorCode check_opts(const bo_optim_opts *o)
{
  PetscFunctionBeginUser;
  CHECK(o, "optim: options are NULL; expected bo_optim_defaults_sgd / _adam");
  CHECK(o->kind == BO_OPTIM_SGD || o->kind == BO_OPTIM_ADAM, "optim: kind %d; expected sgd or adam", (int)o->kind);
  CHECK(isfinite(o->lr) && o->lr > 0, "optim: lr = %g; expected a finite lr > 0", o->lr);
  CHECK(isfinite(o->weight_decay) && o->weight_decay >= 0, "optim: weight_decay = %g; expected a finite weight_decay >= 0", o->weight_decay);
  if (o->kind == BO_OPTIM_SGD) {
    CHECK(o->momentum >= 0 && o->momentum < 1, "optim: momentum = %g; expected 0 <= momentum < 1", o->momentum);
    CHECK(o->dampening >= 0 && o->dampening <= 1, "optim: dampening = %g; expected 0 <= dampening <= 1", o->dampening);
    CHECK(!o->nesterov || (o->momentum > 0 && o->dampening == 0), "optim: nesterov with momentum %g and dampening %g; expected momentum > 0 and dampening 0", o->momentum, o->dampening);
  } else {
    CHECK(o->beta1 >= 0 && o->beta1 < 1, "optim: beta1 = %g; expected 0 <= beta1 < 1", o->beta1);
    CHECK(o->beta2 >= 0 && o->beta2 < 1, "optim: beta2 = %g; expected 0 <= beta2 < 1", o->beta2);
    CHECK(isfinite(o->eps) && o->eps > 0, "optim: eps = %g; expected a finite eps > 0", o->eps);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_optim_create(const bo_optim_opts *o, int64_t n, bo_optim *opt)
{
  PetscFunctionBeginUser;
  PetscCall(check_opts(o));
  CHECK(n >= 1, "optim: n = %lld parameters; expected n >= 1", (long long)n);
  CHECK(opt, "optim: optimiser is NULL; expected a bo_optim to fill");
  *opt = (bo_optim){.o = *o, .n = n};
  PetscCall(PetscCalloc1((size_t)n, &opt->m));
  if (o->kind == BO_OPTIM_ADAM) PetscCall(PetscCalloc1((size_t)n, &opt->v));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_optim_destroy(bo_optim *opt)
{
  PetscFunctionBeginUser;
  if (!opt) PetscFunctionReturn(0);
  PetscCall(PetscFree(opt->m));
  PetscCall(PetscFree(opt->v));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_optim_step(bo_optim *opt, const double *grad, double *w)
{
  PetscFunctionBeginUser;
  CHECK(opt && opt->m, "optim: optimiser is NULL or not created; expected bo_optim_create");
  PetscCall(check_opts(&opt->o));
  CHECK(grad && w, "optim: grad or w is NULL; expected %lld values each", (long long)opt->n);
  for (int64_t i = 0; i < opt->n; i++) CHECK(isfinite(grad[i]), "optim: grad[%lld] = %g is not finite; expected a finite gradient", (long long)i, grad[i]);
  const bo_optim_opts *o = &opt->o;
  const double         wd = o->weight_decay;
  opt->step++;
  if (o->kind == BO_OPTIM_SGD) {
    const double mu = o->momentum, damp = 1 - o->dampening;
    for (int64_t i = 0; i < opt->n; i++) {
      double g = grad[i] + wd * w[i];
      if (mu > 0) {
        opt->m[i] = opt->step == 1 ? g : mu * opt->m[i] + damp * g;
        g         = o->nesterov ? g + mu * opt->m[i] : opt->m[i];
      }
      w[i] -= o->lr * g;
    }
  } else {
    /* Options and moments in locals: the stores to m, v and w could otherwise alias them, which
     * keeps the compiler from hoisting lr / bc1 and vectorising the loop (same values either way). */
    const double b1 = o->beta1, b2 = o->beta2, bc1 = 1 - pow(b1, (double)opt->step), bc2 = sqrt(1 - pow(b2, (double)opt->step));
    const double step_size = o->lr / bc1, eps = o->eps;
    double *restrict m = opt->m, *restrict v = opt->v;
    const int64_t    n = opt->n;
    for (int64_t i = 0; i < n; i++) {
      const double g = grad[i] + wd * w[i];
      m[i]           = b1 * m[i] + (1 - b1) * g;
      v[i]           = b2 * v[i] + (1 - b2) * g * g;
      w[i] -= step_size * m[i] / (sqrt(v[i]) / bc2 + eps);
    }
  }
  PetscFunctionReturn(0);
}
