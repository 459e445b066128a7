/* repri.c - RePRI on one few-shot segmentation task and its ablations (repri.h). */
#include "boundopt/repri.h"
#include "boundopt/error.h"
#include "boundopt/heads.h"
#include "boundopt/losses.h"
#include "boundopt/optim.h"
#include <math.h>
#include <string.h>

const char *const bo_repri_mode_names[BO_REPRI_NMODES] = {"init", "ce", "ce+h", "repri", "oracle"};

void bo_repri_defaults(bo_repri_opts *o) { *o = (bo_repri_opts){.tau = 20, .lr = 0.025, .iters = 49, .t_pi = 10, .kl_bump = PETSC_TRUE}; }

void bo_repri_standardize(int64_t n, int64_t d, double *x)
{
  for (int64_t j = 0; j < d; j++) {
    double mu = 0, var = 0;
    for (int64_t i = 0; i < n; i++) mu += x[i * d + j];
    mu /= (double)PetscMax(n, 1);
    for (int64_t i = 0; i < n; i++) var += (x[i * d + j] - mu) * (x[i * d + j] - mu);
    const double sd = sqrt(var / (double)PetscMax(n, 1));
    for (int64_t i = 0; i < n; i++) x[i * d + j] = sd > 0 ? (x[i * d + j] - mu) / sd : 0.0;
  }
}

/* Foreground proportion of the query posteriors (spec 1: pihat_Q, T = 1, plain mean). */
static PetscErrorCode query_proportion(const bo_loss_batch *q, double *pi)
{
  bo_prop_opts prop;
  double       ph[2];

  PetscFunctionBeginUser;
  bo_prop_defaults(&prop);
  PetscCall(bo_loss_proportions(q, &prop, ph, NULL));
  *pi = ph[1];
  PetscFunctionReturn(0);
}

PetscErrorCode bo_repri_run(const bo_repri_opts *o, bo_repri_mode mode, int64_t shots, int64_t ns, int64_t nq, int64_t d, const double *xs, const uint8_t *ys, const double *xq, double oracle_pi, uint8_t *pred, double *loss, double *pi_used)
{
  const int64_t  nsup = shots * ns, n = nsup + nq;
  bo_head        h;
  bo_optim_opts  oo;
  bo_optim       opt;
  bo_prop_opts   prop;
  double        *x, *z, *g, *fg, *pg, pi = 0, prior[2];
  double         l_ce = 1, l_h = 1.0 / (double)shots, l_kl = 1.0 / (double)shots;
  int64_t        blocks[3] = {0, nsup, n};

  PetscFunctionBeginUser;
  PetscCheck(o && o->tau > 0 && o->lr > 0 && o->iters >= 0 && o->t_pi >= 0, PETSC_COMM_SELF, BO_ERR_INPUT, "repri: tau %g, lr %g, %d iterations, t_pi %d; expected tau, lr > 0 and counts >= 0", o ? o->tau : NAN, o ? o->lr : NAN, o ? o->iters : -1, o ? o->t_pi : -1);
  PetscCheck(mode >= 0 && mode < BO_REPRI_NMODES, PETSC_COMM_SELF, BO_ERR_INPUT, "repri: mode %d; expected init, ce, ce+h, repri or oracle", (int)mode);
  PetscCheck(shots >= 1 && ns >= 1 && nq >= 1 && d >= 1 && xs && ys && xq && pred, PETSC_COMM_SELF, BO_ERR_INPUT, "repri: %lld shots of %lld pixels, %lld query pixels, d = %lld; expected at least one of each and non-NULL arrays", (long long)shots, (long long)ns, (long long)nq, (long long)d);
  PetscCheck(mode != BO_REPRI_ORACLE || (oracle_pi > 0 && oracle_pi < 1), PETSC_COMM_SELF, BO_ERR_INPUT, "repri: oracle proportion %g; expected 0 < pi < 1 (the KL needs both classes)", oracle_pi);
  for (int64_t i = 0; i < nsup; i++) PetscCheck(ys[i] <= 1, PETSC_COMM_SELF, BO_ERR_INPUT, "repri: support label %d at pixel %lld; expected 0/1", (int)ys[i], (long long)i);
  PetscCall(PetscMalloc4(n * d, &x, 2 * n, &z, 2 * n, &g, nsup, &fg));
  memcpy(x, xs, sizeof(double) * (size_t)(nsup * d));
  memcpy(x + nsup * d, xq, sizeof(double) * (size_t)(nq * d));
  for (int64_t i = 0; i < nsup; i++) fg[i] = ys[i];
  PetscCall(bo_head_create_proto(d, o->tau, &h));
  PetscCall(bo_head_proto_init(&h, shots, ns, xs, fg, nq, xq));
  PetscCall(PetscMalloc1(h.nparam, &pg));
  bo_optim_defaults_sgd(&oo);
  oo.lr = o->lr;
  PetscCall(bo_optim_create(&oo, h.nparam, &opt));
  bo_prop_defaults(&prop);
  bo_loss_batch sb = {.comm = PETSC_COMM_SELF, .n = nsup, .k = 2, .logits = z, .ngroups = 1};
  bo_loss_batch qb = {.comm = PETSC_COMM_SELF, .n = nq, .k = 2, .logits = z + 2 * nsup, .ngroups = 1};
  if (mode == BO_REPRI_CE) l_h = l_kl = 0;
  if (mode == BO_REPRI_CE_H) l_kl = 0;
  PetscCall(bo_head_forward(&h, n, x, z));
  if (mode == BO_REPRI_FULL) PetscCall(query_proportion(&qb, &pi));
  if (mode == BO_REPRI_ORACLE) pi = oracle_pi;
  const int iters = mode == BO_REPRI_INIT ? 0 : o->iters;
  for (int it = 0; it < iters; it++) {
    double vce = 0, vh = 0, vkl = 0;
    if (it > 0) PetscCall(bo_head_forward(&h, n, x, z));
    /* the reference's FB_param_update: pi <- pihat_Q once, at t_pi (its loop counts from 1) */
    if (mode == BO_REPRI_FULL && it + 1 == o->t_pi) {
      PetscCall(query_proportion(&qb, &pi));
      if (o->kl_bump) l_kl += 1;
    }
    PetscCall(PetscArrayzero(g, 2 * n));
    PetscCall(bo_loss_ce(&sb, ys, NULL, l_ce, &vce, g));
    if (l_h > 0) PetscCall(bo_loss_entropy(&qb, NULL, l_h, &vh, g + 2 * nsup));
    if (l_kl > 0) {
      prior[0] = 1 - pi; prior[1] = pi;
      /* an estimated pi of exactly 0 or 1 would make the KL infinite: keep it inside (0, 1) */
      prior[0] = PetscMax(prior[0], 1e-10); prior[1] = PetscMax(prior[1], 1e-10);
      PetscCall(bo_loss_kl_prop(&qb, &prop, prior, BO_KL_PRED_PRIOR, 0.0, l_kl, &vkl, g + 2 * nsup));
    }
    if (loss) loss[it] = l_ce * vce + l_h * vh + l_kl * vkl;
    PetscCall(bo_head_backward(&h, PETSC_COMM_SELF, n, x, g, 2, blocks, pg));
    PetscCall(bo_optim_step(&opt, pg, h.param));
  }
  PetscCall(bo_head_forward(&h, nq, xq, z));
  for (int64_t i = 0; i < nq; i++) pred[i] = z[2 * i + 1] > z[2 * i];
  if (pi_used) *pi_used = pi;
  PetscCall(bo_optim_destroy(&opt));
  PetscCall(bo_head_destroy(&h));
  PetscCall(PetscFree(pg));
  PetscCall(PetscFree4(x, z, g, fg));
  PetscFunctionReturn(0);
}
