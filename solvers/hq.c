/* hq.c - half-quadratic restoration: weights, energy, one alternating-minimization step (hq.h). */
#include "boundopt/hq.h"
#include "boundopt/error.h"
#include <math.h>

const char *const bo_hq_potential_names[] = {"tq-mult", "tq-add", "gm", "hl"};

static PetscLogEvent ev_step, ev_inner, ev_energy;

struct bo_hq_s {
  bo_grid       *g;
  const bo_blur *blur;
  bo_hq_opts     o;
  bo_imgop       op;
  bo_inner       inner;
  Vec            f, x;           /* the caller's */
  Vec            ktf, rhs, t2, gx, gy, work;
  PetscBool      constant_set;   /* tq-add: the operator is set once */
};

double bo_hq_phi(bo_hq_potential p, double lambda, double delta, double t2)
{
  const double d2 = delta * delta;
  switch (p) {
  case BO_HQ_TQ_MULT:
  case BO_HQ_TQ_ADD: return lambda * PetscMin(t2 / d2, 1.0);
  case BO_HQ_GM: return lambda * t2 / (d2 + t2);
  case BO_HQ_HL: return lambda * log1p(t2 / d2);
  default: return NAN;
  }
}

double bo_hq_weight(bo_hq_potential p, double lambda, double delta, double t2)
{
  const double d2 = delta * delta;
  switch (p) {
  case BO_HQ_TQ_MULT:
  case BO_HQ_TQ_ADD: return t2 < d2 ? 2 * lambda / d2 : 0; /* tie: the edge is cut (spec section 7) */
  case BO_HQ_GM: return 2 * lambda * d2 / ((d2 + t2) * (d2 + t2));
  case BO_HQ_HL: return 2 * lambda / (d2 + t2);
  default: return NAN;
  }
}

PetscErrorCode bo_hq_create(bo_grid *g, const bo_blur *blur, const bo_hq_opts *o, const char *prefix, bo_hq *out)
{
  bo_hq hq;

  PetscFunctionBeginUser;
  PetscCheck(o->potential >= 0 && o->potential < BO_HQ_NPOTENTIALS, g->comm, BO_ERR_INPUT, "hq: potential %d; expected tq-mult, tq-add, gm or hl", (int)o->potential);
  PetscCheck(o->lambda > 0 && o->delta > 0 && o->mu >= 0, g->comm, BO_ERR_INPUT, "hq: lambda %g, delta %g, mu %g; expected lambda > 0, delta > 0, mu >= 0", o->lambda, o->delta, o->mu);
  PetscCheck(o->inner.sweeps >= 1, g->comm, BO_ERR_INPUT, "hq: %d sweeps; expected sweeps >= 1", (int)o->inner.sweeps);
  if (!ev_step) {
    PetscClassId id;
    PetscCall(PetscClassIdRegister("boundopt HQ", &id));
    PetscCall(PetscLogEventRegister("HQOuterStep", id, &ev_step));
    PetscCall(PetscLogEventRegister("HQInnerSolve", id, &ev_inner));
    PetscCall(PetscLogEventRegister("HQEnergy", id, &ev_energy));
  }
  PetscCall(PetscNew(&hq));
  hq->g    = g;
  hq->blur = blur;
  hq->o    = *o;
  PetscCall(bo_imgop_create(g, blur, bo_inner_wants_shell(o->inner.type, blur), &hq->op));
  PetscCall(bo_inner_create(&hq->op, &o->inner, prefix, &hq->inner));
  PetscCall(DMCreateGlobalVector(g->da, &hq->ktf));
  PetscCall(VecDuplicate(hq->ktf, &hq->rhs));
  PetscCall(VecDuplicate(hq->ktf, &hq->t2));
  PetscCall(VecDuplicate(hq->ktf, &hq->gx));
  PetscCall(VecDuplicate(hq->ktf, &hq->gy));
  PetscCall(VecDuplicate(hq->ktf, &hq->work));
  *out = hq;
  PetscFunctionReturn(0);
}

KSP bo_hq_ksp(bo_hq hq) { return bo_inner_ksp(hq->inner); }

/* E(x) = 1/2 ||K x - f||^2 + sum phi, one exact sum of per-pixel terms; leaves |grad x|^2 in t2. */
static PetscErrorCode hq_energy(bo_hq hq, double *energy)
{
  const double *r, *f, *t2;
  double       *terms;
  Vec           kx = hq->x;
  PetscInt      n;

  PetscFunctionBeginUser;
  PetscCall(PetscLogEventBegin(ev_energy, 0, 0, 0, 0));
  PetscCall(bo_grid_gradient(hq->g, hq->x, hq->t2, hq->gx, hq->gy));
  if (hq->blur) {
    PetscCall(bo_imgop_blur(&hq->op, PETSC_FALSE, hq->x, hq->work));
    kx = hq->work;
  }
  PetscCall(VecGetLocalSize(hq->x, &n));
  PetscCall(PetscMalloc1(n, &terms));
  PetscCall(VecGetArrayRead(kx, &r));
  PetscCall(VecGetArrayRead(hq->f, &f));
  PetscCall(VecGetArrayRead(hq->t2, &t2));
  for (PetscInt p = 0; p < n; p++) terms[p] = 0.5 * (r[p] - f[p]) * (r[p] - f[p]) + bo_hq_phi(hq->o.potential, hq->o.lambda, hq->o.delta, t2[p]);
  PetscCall(VecRestoreArrayRead(hq->t2, &t2));
  PetscCall(VecRestoreArrayRead(hq->f, &f));
  PetscCall(VecRestoreArrayRead(kx, &r));
  PetscCall(bo_grid_sum(hq->g, terms, energy));
  PetscCall(PetscFree(terms));
  PetscCall(PetscLogEventEnd(ev_energy, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_hq_start(bo_hq hq, Vec f, Vec x, double *energy)
{
  PetscFunctionBeginUser;
  hq->f = f;
  hq->x = x;
  if (hq->blur) PetscCall(bo_imgop_blur(&hq->op, PETSC_TRUE, f, hq->ktf));
  else PetscCall(VecCopy(f, hq->ktf));
  PetscCall(VecCopy(hq->ktf, x));
  hq->constant_set = PETSC_FALSE;
  PetscCall(hq_energy(hq, energy));
  PetscFunctionReturn(0);
}

/* The fields of the x-step operator from the current t2, gx, gy, and its right-hand side. */
static PetscErrorCode hq_prepare(bo_hq hq)
{
  const bo_hq_opts *o     = &hq->o;
  const double      beta  = 2 * o->lambda / (o->delta * o->delta);
  const double      shift = (hq->blur ? 0.0 : 1.0) + o->mu;

  PetscFunctionBeginUser;
  PetscCall(VecWAXPY(hq->rhs, o->mu, hq->x, hq->ktf)); /* K^T f + mu x^k */
  if (o->potential == BO_HQ_TQ_ADD) {
    double       *gx, *gy;
    const double *t2;
    PetscInt      n;
    PetscCall(VecGetLocalSize(hq->x, &n));
    PetscCall(VecGetArray(hq->gx, &gx));
    PetscCall(VecGetArray(hq->gy, &gy));
    PetscCall(VecGetArrayRead(hq->t2, &t2));
    for (PetscInt p = 0; p < n; p++)
      if (!(t2[p] > o->delta * o->delta)) gx[p] = gy[p] = 0; /* w = hard threshold of grad x */
    PetscCall(VecRestoreArrayRead(hq->t2, &t2));
    PetscCall(VecRestoreArray(hq->gy, &gy));
    PetscCall(VecRestoreArray(hq->gx, &gx));
    PetscCall(bo_grid_divergence(hq->g, hq->gx, hq->gy, hq->work));
    PetscCall(VecAXPY(hq->rhs, beta, hq->work));
    if (!hq->constant_set) {
      PetscCall(VecSet(hq->op.a, shift));
      PetscCall(VecSet(hq->op.c, beta));
      PetscCall(bo_imgop_update(&hq->op));
      hq->constant_set = PETSC_TRUE;
    }
  } else {
    double       *c;
    const double *t2;
    PetscInt      n;
    PetscCall(VecGetLocalSize(hq->x, &n));
    PetscCall(VecSet(hq->op.a, shift));
    PetscCall(VecGetArray(hq->op.c, &c));
    PetscCall(VecGetArrayRead(hq->t2, &t2));
    for (PetscInt p = 0; p < n; p++) c[p] = bo_hq_weight(o->potential, o->lambda, o->delta, t2[p]);
    PetscCall(VecRestoreArrayRead(hq->t2, &t2));
    PetscCall(VecRestoreArray(hq->op.c, &c));
    PetscCall(bo_imgop_update(&hq->op));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_hq_step(bo_hq hq, double *energy, PetscInt *inner_its)
{
  PetscFunctionBeginUser;
  PetscCheck(hq->x, hq->g->comm, PETSC_ERR_ARG_WRONGSTATE, "hq: step before start; expected bo_hq_start first");
  PetscCall(PetscLogEventBegin(ev_step, 0, 0, 0, 0));
  PetscCall(hq_prepare(hq));
  PetscCall(PetscLogEventBegin(ev_inner, 0, 0, 0, 0));
  PetscCall(bo_inner_solve(hq->inner, hq->rhs, hq->x, inner_its));
  PetscCall(PetscLogEventEnd(ev_inner, 0, 0, 0, 0));
  PetscCall(hq_energy(hq, energy));
  PetscCall(PetscLogEventEnd(ev_step, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_hq_rank_invariant(bo_hq hq, PetscBool *invariant)
{
  PetscFunctionBeginUser;
  PetscCall(bo_inner_rank_invariant(hq->inner, invariant));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_hq_destroy(bo_hq *hq)
{
  PetscFunctionBeginUser;
  if (!*hq) PetscFunctionReturn(0);
  PetscCall(bo_inner_destroy(&(*hq)->inner));
  PetscCall(bo_imgop_destroy(&(*hq)->op));
  PetscCall(VecDestroy(&(*hq)->ktf));
  PetscCall(VecDestroy(&(*hq)->rhs));
  PetscCall(VecDestroy(&(*hq)->t2));
  PetscCall(VecDestroy(&(*hq)->gx));
  PetscCall(VecDestroy(&(*hq)->gy));
  PetscCall(VecDestroy(&(*hq)->work));
  PetscCall(PetscFree(*hq));
  PetscFunctionReturn(0);
}
