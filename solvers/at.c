/* at.c - Ambrosio-Tortorelli alternating minimization with preconditioned inner steps (at.h). */
#include "boundopt/at.h"
#include "boundopt/error.h"
#include <math.h>

static PetscLogEvent ev_step, ev_u, ev_v, ev_energy;

struct bo_at_s {
  bo_grid   *g;
  bo_at_opts o;
  double     eps;
  bo_imgop   opu, opv;
  bo_inner   inu, inv;
  Vec        gimg, u, v;            /* the caller's */
  Vec        rhs, t2u, t2v, vold;
};

PetscErrorCode bo_at_create(bo_grid *grid, const bo_at_opts *o, const char *prefix_u, const char *prefix_v, bo_at *out)
{
  bo_at     at;
  PetscBool shell = bo_inner_wants_shell(o->inner.type, NULL);

  PetscFunctionBeginUser;
  PetscCheck(o->alpha > 0 && o->lambda > 0 && o->mu >= 0, grid->comm, BO_ERR_INPUT, "at: alpha %g, lambda %g, mu %g; expected alpha > 0, lambda > 0, mu >= 0", o->alpha, o->lambda, o->mu);
  PetscCheck(o->inner.sweeps >= 1, grid->comm, BO_ERR_INPUT, "at: %d sweeps; expected sweeps >= 1", (int)o->inner.sweeps);
  if (!ev_step) {
    PetscClassId id;
    PetscCall(PetscClassIdRegister("boundopt AT", &id));
    PetscCall(PetscLogEventRegister("ATOuterStep", id, &ev_step));
    PetscCall(PetscLogEventRegister("ATSolveU", id, &ev_u));
    PetscCall(PetscLogEventRegister("ATSolveV", id, &ev_v));
    PetscCall(PetscLogEventRegister("ATEnergy", id, &ev_energy));
  }
  PetscCall(PetscNew(&at));
  at->g = grid;
  at->o = *o;
  PetscCall(bo_imgop_create(grid, NULL, shell, &at->opu));
  PetscCall(bo_imgop_create(grid, NULL, shell, &at->opv));
  PetscCall(bo_inner_create(&at->opu, &o->inner, prefix_u, &at->inu));
  PetscCall(bo_inner_create(&at->opv, &o->inner, prefix_v, &at->inv));
  PetscCall(DMCreateGlobalVector(grid->da, &at->rhs));
  PetscCall(VecDuplicate(at->rhs, &at->t2u));
  PetscCall(VecDuplicate(at->rhs, &at->t2v));
  PetscCall(VecDuplicate(at->rhs, &at->vold));
  *out = at;
  PetscFunctionReturn(0);
}

PetscErrorCode bo_at_ksps(bo_at at, KSP *ku, KSP *kv)
{
  PetscFunctionBeginUser;
  if (ku) *ku = bo_inner_ksp(at->inu);
  if (kv) *kv = bo_inner_ksp(at->inv);
  PetscFunctionReturn(0);
}

static PetscErrorCode at_energy(bo_at at, double *energy)
{
  const double *u, *g, *v, *tu, *tv;
  double       *terms;
  const double  a = at->o.alpha, le = at->o.lambda * at->eps, l4e = at->o.lambda / (4 * at->eps);
  PetscInt      n;

  PetscFunctionBeginUser;
  PetscCall(PetscLogEventBegin(ev_energy, 0, 0, 0, 0));
  PetscCall(bo_grid_gradient(at->g, at->u, at->t2u, NULL, NULL));
  PetscCall(bo_grid_gradient(at->g, at->v, at->t2v, NULL, NULL));
  PetscCall(VecGetLocalSize(at->u, &n));
  PetscCall(PetscMalloc1(n, &terms));
  PetscCall(VecGetArrayRead(at->u, &u));
  PetscCall(VecGetArrayRead(at->gimg, &g));
  PetscCall(VecGetArrayRead(at->v, &v));
  PetscCall(VecGetArrayRead(at->t2u, &tu));
  PetscCall(VecGetArrayRead(at->t2v, &tv));
  for (PetscInt p = 0; p < n; p++) terms[p] = a * (u[p] - g[p]) * (u[p] - g[p]) + v[p] * v[p] * tu[p] + le * tv[p] + l4e * (1 - v[p]) * (1 - v[p]);
  PetscCall(VecRestoreArrayRead(at->t2v, &tv));
  PetscCall(VecRestoreArrayRead(at->t2u, &tu));
  PetscCall(VecRestoreArrayRead(at->v, &v));
  PetscCall(VecRestoreArrayRead(at->gimg, &g));
  PetscCall(VecRestoreArrayRead(at->u, &u));
  PetscCall(bo_grid_sum(at->g, terms, energy));
  PetscCall(PetscFree(terms));
  PetscCall(PetscLogEventEnd(ev_energy, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_at_start(bo_at at, Vec g, Vec u, Vec v, double eps, double *energy)
{
  PetscFunctionBeginUser;
  at->gimg = g;
  at->u    = u;
  at->v    = v;
  PetscCall(VecCopy(g, u));
  PetscCall(VecSet(v, 1.0));
  PetscCall(bo_at_set_epsilon(at, eps, energy));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_at_set_epsilon(bo_at at, double eps, double *energy)
{
  PetscFunctionBeginUser;
  PetscCheck(eps > 0, at->g->comm, BO_ERR_INPUT, "at: epsilon %g; expected epsilon > 0", eps);
  at->eps = eps;
  PetscCall(at_energy(at, energy));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_at_step(bo_at at, double *energy, PetscInt *inner_its, double *dv_max)
{
  const bo_at_opts *o = &at->o;
  const double      l4e = o->lambda / (4 * at->eps);
  PetscInt          itu, itv;

  PetscFunctionBeginUser;
  PetscCheck(at->u, at->g->comm, PETSC_ERR_ARG_WRONGSTATE, "at: step before start; expected bo_at_start first");
  PetscCall(PetscLogEventBegin(ev_step, 0, 0, 0, 0));
  /* u-step: ((alpha + mu) I + L(v^2)) u = alpha g + mu u^k */
  PetscCall(VecSet(at->opu.a, o->alpha + o->mu));
  PetscCall(VecPointwiseMult(at->opu.c, at->v, at->v));
  PetscCall(bo_imgop_update(&at->opu));
  PetscCall(VecCopy(at->gimg, at->rhs));
  PetscCall(VecScale(at->rhs, o->alpha));
  PetscCall(VecAXPY(at->rhs, o->mu, at->u));
  PetscCall(PetscLogEventBegin(ev_u, 0, 0, 0, 0));
  PetscCall(bo_inner_solve(at->inu, at->rhs, at->u, &itu));
  PetscCall(PetscLogEventEnd(ev_u, 0, 0, 0, 0));
  /* v-step: ((l4e + mu) I + diag(|grad u|^2) + lambda eps grad^T grad) v = l4e + mu v^k */
  PetscCall(bo_grid_gradient(at->g, at->u, at->t2u, NULL, NULL));
  PetscCall(VecCopy(at->t2u, at->opv.a));
  PetscCall(VecShift(at->opv.a, l4e + o->mu));
  PetscCall(VecSet(at->opv.c, o->lambda * at->eps));
  PetscCall(bo_imgop_update(&at->opv));
  PetscCall(VecCopy(at->v, at->vold));
  PetscCall(VecSet(at->rhs, l4e));
  PetscCall(VecAXPY(at->rhs, o->mu, at->v));
  PetscCall(PetscLogEventBegin(ev_v, 0, 0, 0, 0));
  PetscCall(bo_inner_solve(at->inv, at->rhs, at->v, &itv));
  PetscCall(PetscLogEventEnd(ev_v, 0, 0, 0, 0));
  PetscCall(VecAXPY(at->vold, -1.0, at->v));
  PetscCall(VecNorm(at->vold, NORM_INFINITY, dv_max)); /* a max: order independent */
  *inner_its = itu + itv;
  PetscCall(at_energy(at, energy));
  PetscCall(PetscLogEventEnd(ev_step, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_at_rank_invariant(bo_at at, PetscBool *invariant)
{
  PetscBool a, b;

  PetscFunctionBeginUser;
  PetscCall(bo_inner_rank_invariant(at->inu, &a));
  PetscCall(bo_inner_rank_invariant(at->inv, &b));
  *invariant = a && b ? PETSC_TRUE : PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode bo_at_destroy(bo_at *at)
{
  PetscFunctionBeginUser;
  if (!*at) PetscFunctionReturn(0);
  PetscCall(bo_inner_destroy(&(*at)->inu));
  PetscCall(bo_inner_destroy(&(*at)->inv));
  PetscCall(bo_imgop_destroy(&(*at)->opu));
  PetscCall(bo_imgop_destroy(&(*at)->opv));
  PetscCall(VecDestroy(&(*at)->rhs));
  PetscCall(VecDestroy(&(*at)->t2u));
  PetscCall(VecDestroy(&(*at)->t2v));
  PetscCall(VecDestroy(&(*at)->vold));
  PetscCall(PetscFree(*at));
  PetscFunctionReturn(0);
}
