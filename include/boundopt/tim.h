/* tim.h - TIM transductive few-shot inference for one task: TIM-GD and TIM-ADM (arXiv 2008.11297,
 * extension 2106.12252; reference mboudiaf/TIM c324ca8; spec clustering-fewshot.md section 8).
 *
 * Model.  A task has ns support rows zs (labels ys in 0..k-1) and nq query rows zq, all in R^d.
 * W = [w_1; ...; w_k] (k x d) are the classifier weights.  With eps = log_eps,
 *
 *     logit_ik = -(tau/2) |z_i - w_k|^2,   p_ik = softmax_k(logit_ik),   phat_k = (1/nq) sum_{i in Q} p_ik
 *     L(W) = lambda_ce CE_S - w_marginal H(Y_Q) + alpha H(Y_Q|X_Q)
 *     CE_S       = -(1/ns) sum_{i in S} log(p_{i,y_i} + eps)
 *     H(Y_Q)     = -sum_k phat_k log(phat_k + eps)
 *     H(Y_Q|X_Q) = -(1/nq) sum_{i in Q} sum_k p_ik log(p_ik + eps)
 *
 * The softmax is computed from tau (z_i.w_k - |w_k|^2 / 2) (the cross products Z W^T): the -tau |z_i|^2 / 2
 * part of the logit is the same for every k of row i, so it cancels in p and is not computed.
 * Terms p log(p + eps) with p = 0 count as 0 (their limit), so eps = 0 is allowed.  The reference
 * has no eps in the GD marginal-entropy log; the project puts log_eps in every log (spec section 8).
 *
 * Gradient.  bo_tim_loss_grad returns the exact gradient of L as written above, eps included.
 * With G_ik = dL/dlogit_ik, dL/dw_k = tau sum_i G_ik (z_i - w_k) = tau (G^T Z - diag(sum_i G_ik) W)
 * (two products), and
 *     support: G_ik = (lambda_ce/ns) r_i (p_ik - [k = y_i]),  r_i = p_{i,y_i} / (p_{i,y_i} + eps)
 *     query:   G_ik = p_ik (g_ik - sum_j p_ij g_ij),
 *              g_ij = (1/nq) [w_marginal (log(phat_j + eps) + phat_j/(phat_j + eps))
 *                             - alpha (log(p_ij + eps) + p_ij/(p_ij + eps))]
 * With eps = 0 (r_i = 1, the ratios 1 and cancelling) this is the spec's G exactly; with eps > 0
 * it differs from the spec's G by O(eps / p), and it is the one that finite differences of the
 * reported loss confirm.  The loss that TIM-GD minimises and the loss it reports are one function.
 *
 * TIM-GD.  Adam on W (bo_optim_step of optim.h, PyTorch's form: m, v, bias corrections 1 - beta^t,
 * w -= lr/(1 - beta1^t) m / (sqrt(v)/sqrt(1 - beta2^t) + eps)), `iterations` steps from the
 * caller's W; then predict.
 *
 * TIM-ADM (reference code).  Each iteration computes P_S, P_Q from the current W once, then
 *     q-update: q_ik = p_ik^(1+alpha) / (sum_{j in Q} p_jk^(1+alpha))^beta, normalised over k
 *               (p^(1+alpha) computed as exp((1+alpha) log p), log p = logit - logsumexp),
 *               beta = w_marginal / (w_marginal + 1)   (1/2 at the default: w_KL = 1);
 *               a class whose column sum underflows to 0 gets q_ik = 0 (the limit);
 *     w-update: c_S = lambda_ce/(1+alpha), c_Q = ns/nq,
 *               num_k = c_S [sum_S y_ik z_i + sum_S p_ik (w_k - z_i)] + c_Q [sum_Q q_ik z_i + sum_Q p_ik (w_k - z_i)]
 *               den_k = c_S sum_S y_ik + c_Q sum_Q q_ik
 *               w_k <- w_k + damping (num_k/den_k - w_k)   (a class with den_k = 0 keeps w_k).
 *     After the last iteration, predict.  The loss reported per iteration is L above (ADM does not
 *     minimise L itself: there is no monotonicity to expect of it).
 *
 * Prediction: pred_i = argmax_k p_ik over the queries with the final W (ties: the lowest k).
 *
 * Behaviour to know (tested): H(Y_Q) rewards balanced query predictions.  On imbalanced queries
 * (e.g. 30/20/12/8/5) TIM at the default weights flattens the predicted histogram and can lose
 * accuracy against the plain prototype classifier even on well-separated classes; w_marginal = 0
 * does not (the known imbalance weakness of TIM, Veilleux et al. NeurIPS 2021).  On balanced or
 * mildly imbalanced queries with noisy 1-shot prototypes it gains several points.
 *
 * Contract
 *   - Arrays are row-major doubles (the caller converts float32 features once per task; the single
 *     precision ADM converts them back to float once per task): zs ns x d,
 *     zq nq x d, w k x d (in/out), pq nq x k.  ys holds ns labels in 0..k-1.  No array may alias
 *     another.
 *   - Sizes: ns >= 1, nq >= 1, d >= 1, k >= 1, each below 2^31.
 *   - Options: tau > 0; lambda_ce, alpha, w_marginal, log_eps >= 0; iterations >= 1 (gd, adm);
 *     GD: lr > 0, 0 <= beta1, beta2 < 1, eps > 0; ADM: damping >= 0.  All finite, as are zs, zq and w.
 *   - Bad input raises a one-line error on PETSC_COMM_SELF with PETSC_ERR_USER_INPUT
 *     ("tim: <what>: <problem>; expected <what>", error.h) before anything is computed.
 *   - Workspace: bo_tim_gd and bo_tim_adm allocate one block at entry (3 (ns+nq) k + 2 nq k + 2 ns
 *     + nq + 7 k + k d doubles; GD also Adam's two k x d moments in bo_optim; ADM in single
 *     precision instead (n + 2k) d + 3 k n + k nq + 2 n + 5 k floats and nq doubles, n = ns + nq,
 *     plus the double block when losses are asked for) and free it on return;
 *     nothing is allocated inside the iteration loop (one malloc per task is noise next to
 *     150-1000 iterations).
 *   - Arithmetic: the products Z W^T and G^T Z, exp and log are the kernels of
 *     solvers/tim_kernels.h (no BLAS), defined loop by loop, with AVX2+FMA and portable
 *     implementations that give the same bits; every other sum is sequential in a fixed order.  So
 *     a task's result is the same bits at any number of ranks and in any run, with or without
 *     AVX2 (libm is left with k pow calls per ADM iteration and Adam's sqrt).  No MPI, no files, no
 *     options: the few-shot driver calls these once per task on its own rank.
 *   - losses (may be NULL) has iterations + 1 entries: L at W_0 (the caller's W), ..., W_T (final).
 *   - pq (may be NULL) gets the query probabilities at the final W; pred (nq) the predictions.
 */
#ifndef BOUNDOPT_TIM_H
#define BOUNDOPT_TIM_H
#include <petscsys.h>
#include <stdint.h>

/* TIM-ADM arithmetic: double (float64 everywhere, the default) or single (float32 features,
 * weights and probabilities on the 8-lane kernels of tim_kernels.h, the arithmetic of the float32
 * PyTorch reference; a few scalars per iteration, the row log-sum-exps and the column powers, stay
 * in double).  Single gives different bits from double, the same bits at any rank count and with
 * or without AVX2.  With losses != NULL the single path evaluates L in double at each float iterate
 * (diagnostics only: slow).  TIM-GD is double only (single is an input error there). */
typedef enum { BO_TIM_DOUBLE = 0, BO_TIM_SINGLE = 1 } bo_tim_precision;

typedef struct {
  double tau;        /* temperature (15) */
  double lambda_ce;  /* weight of the support cross-entropy (0.1) */
  double alpha;      /* weight of the conditional entropy H(Y_Q|X_Q) (0.1) */
  double w_marginal; /* weight of the marginal entropy H(Y_Q) (1.0) */
  int    iterations; /* GD 1000, ADM 150 */
  double lr;         /* Adam (GD only): 1e-4 */
  double beta1, beta2, eps; /* Adam: 0.9, 0.999, 1e-8 */
  double log_eps;    /* inside every log of L (1e-12) */
  double damping;    /* ADM only: 1.0 */
  bo_tim_precision precision; /* ADM only: BO_TIM_DOUBLE */
} bo_tim_opts;

/* tau 15, lambda_ce 0.1, alpha 0.1, w_marginal 1, 1000 iterations, lr 1e-4, Adam 0.9/0.999/1e-8,
 * log_eps 1e-12, damping 1 (unused by GD). */
void bo_tim_defaults_gd(bo_tim_opts *o);
/* As GD, but 150 iterations and damping 1.0 (the Adam fields are unused by ADM). */
void bo_tim_defaults_adm(bo_tim_opts *o);

/* w (k x d) = the support class means, summed in row order.  A class with no support row is an
 * error ("tim: class c has no support row; expected ..."), as is a label outside 0..k-1. */
PetscErrorCode bo_tim_init_weights(int64_t ns, int64_t d, const double *zs, const int32_t *ys, int64_t k, double *w);

/* L(W) into *loss (may be NULL) and dL/dW into grad (k x d, may be NULL).  Uses tau, lambda_ce,
 * alpha, w_marginal, log_eps of o.  Allocates its own scratch (one call, not a loop). */
PetscErrorCode bo_tim_loss_grad(int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, int64_t k, const double *w, const bo_tim_opts *o, double *loss, double *grad);

/* The classifier of W with no adaptation: pq (nq x k, may be NULL) = softmax of the logits, pred =
 * argmax (ties: lowest k).  With tau > 0 this is the nearest prototype. */
PetscErrorCode bo_tim_predict(int64_t nq, int64_t d, const double *zq, int64_t k, const double *w, double tau, int32_t *pred, double *pq);

/* The ADM q-update alone: q (nq x k) from p (nq x k, rows on the simplex), using alpha and
 * w_marginal of o.  Rows of q sum to 1. */
PetscErrorCode bo_tim_adm_q_update(int64_t nq, int64_t k, const double *p, const bo_tim_opts *o, double *q);

/* TIM-GD from the caller's w (e.g. bo_tim_init_weights).  losses: NULL or iterations + 1 entries. */
PetscErrorCode bo_tim_gd(int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, int64_t k, const bo_tim_opts *o, double *w, int32_t *pred, double *pq, double *losses);
/* TIM-ADM from the caller's w.  losses: NULL or iterations + 1 entries. */
PetscErrorCode bo_tim_adm(int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, int64_t k, const bo_tim_opts *o, double *w, int32_t *pred, double *pq, double *losses);
#endif
