/* repri.h - RePRI transductive few-shot segmentation of one task (arXiv 2012.06166; spec
 * losses.md section 1) on fixed per-pixel features, with its ablations.
 *
 * Model: heads.h PROTO head, s_j = tau cos(x_j, theta), u_j = s_j - b, p_j = sigma(u_j); init theta =
 * masked-average support foreground feature over shots, b = mean of s over the query pixels.
 * Objective, minimised by SGD (no momentum) on (theta, b) for `iters` steps:
 *   L = l_ce CE_S + l_h H_Q + l_kl KL(pihat_Q || pi)     (KL marginal-first over {bg, fg})
 * with l_ce = 1, l_h = l_kl = 1/K (K = shots), losses.h terms (CE over the support pixels of all
 * shots, mean binary entropy over the query pixels, proportions of the query posteriors, T = 1).
 * Modes:
 *   INIT    no step: the initial prototype classifier;
 *   CE      l_h = l_kl = 0;
 *   CE_H    l_kl = 0;
 *   FULL    pi = pihat_Q of the initial classifier, re-estimated once as pihat_Q before step t_pi
 *           (the reference's FB_param_update); then l_kl += 1 when kl_bump (reference code);
 *   ORACLE  pi = the true query foreground proportion, fixed (the reference's 'oracle').
 * The reference runs 49 steps (adapt_iter 50, loop from 1), lr 0.025, tau 20, t_pi 10.
 *
 * Contract: local (one task on one rank; the tasks are dealt to ranks by the caller).  Inputs:
 * xs (K n_s x d), ys (K n_s foreground 0/1 of the support pixels), xq (n_q x d).  Outputs:
 * pred (n_q: 1 = foreground, u_j > 0), loss (iters values of L before each step, may be NULL;
 * INIT: none), pi_used (the final pi, may be NULL).  Errors: "repri: ...; expected ..." (BO_ERR_INPUT).
 */
#ifndef BOUNDOPT_REPRI_H
#define BOUNDOPT_REPRI_H
#include <petscsys.h>
#include <stdint.h>

typedef enum { BO_REPRI_INIT, BO_REPRI_CE, BO_REPRI_CE_H, BO_REPRI_FULL, BO_REPRI_ORACLE, BO_REPRI_NMODES } bo_repri_mode;
extern const char *const bo_repri_mode_names[BO_REPRI_NMODES]; /* "init", "ce", "ce+h", "repri", "oracle" */

typedef struct {
  double    tau;     /* 20 */
  double    lr;      /* 0.025 */
  int       iters;   /* 49 */
  int       t_pi;    /* 10 */
  PetscBool kl_bump; /* true */
} bo_repri_opts;

void bo_repri_defaults(bo_repri_opts *o);
/* z-score each of the d columns of x (n x d) over its n rows (a column with zero spread becomes 0):
 * the hand-made feature channels of the scenes differ in scale by orders of magnitude, and the
 * cosine of the PROTO head would see only the largest (PSPNet features, the reference's, need no
 * such step).  Applied to the pixels of one task, support and query together (transductive).  Local. */
void bo_repri_standardize(int64_t n, int64_t d, double *x);
PetscErrorCode bo_repri_run(const bo_repri_opts *o, bo_repri_mode mode, int64_t shots, int64_t ns, int64_t nq, int64_t d, const double *xs, const uint8_t *ys, const double *xq, double oracle_pi, uint8_t *pred, double *loss, double *pi_used);
#endif
