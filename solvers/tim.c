/* tim.c - TIM-GD and TIM-ADM for one transductive few-shot task (see tim.h for the model and the
 * contract).
 *
 * Shape of an iteration.  Both solvers spend their time in two products with k = 5 columns: the
 * cross products Z W^T (for the probabilities) and G^T Z (for the gradient, or the ADM
 * numerators), plus the exponentials of the softmax (and of the ADM q-update).  These run in the
 * hand-written kernels of tim_kernels.h (why not BLAS: see there), on support and query rows in
 * the caller's two arrays.  The ADM q-update takes p^(1+alpha) = exp((1+alpha) log p) with
 * log p = x - logsumexp from the softmax itself: one exp per entry and one log per row instead of
 * a pow per entry.  Everything else is O((ns + nq) k) per iteration.  The scratch lives in one
 * block allocated per call; TIM-GD's Adam is bo_optim (optim.h).
 *
 * TIM-ADM in single precision (bo_tim_opts.precision, tim.h) is a second implementation of the
 * same iteration: features converted to float once per task, support and query rows in one array
 * (one Z W^T and one G^T Z call per iteration; Z W^T from the transposed rows, crosst), the 8-lane
 * float kernels, class-major n x k arrays so that the softmax, the q-update and the ADM
 * coefficients are elementwise loops along rows (vectorised, see ROWLOOP), column sums in a fixed
 * lane order (sum_rows), and, when a task has no more rows than dimensions (D = 640), the iterate
 * kept as coefficients over the task's rows (adm_run_f32).  The double path is untouched.
 */
#include "boundopt/tim.h"
#include "boundopt/error.h"
#include "boundopt/optim.h"
#include "tim_kernels.h"
#include <float.h>
#include <math.h>
#include <string.h>

typedef struct {
  int64_t        ns, nq, d, k;
  const double  *zs, *zq;
  const int32_t *ys;
} task;

typedef struct {
  const bo_tim_kernels *kern;
  double *x;           /* n x k (support rows, then queries): logits, then shifted logits */
  double *ps, *pq;     /* probabilities at the current W: ns x k, nq x k (one n x k block) */
  double *gs, *gq;     /* dL/dlogit (GD), or the ADM coefficients c_S (Y - P_S), c_Q (Q - P_Q) */
  double *q;           /* ADM: the q-update, nq x k */
  double *lse;         /* query rows' log-sum-exp (ADM) */
  double *wn;          /* |w_c|^2, k */
  double *a;           /* k: the marginal part of g (GD); q's column factors (ADM) */
  double *phat;        /* k: phat (GD); the support p column sums (ADM) */
  double *count;       /* k: support rows per class (ADM) */
  double *colp, *colq; /* k: the query p and q column sums (ADM) */
  double *grad;        /* k x d: the gradient, or the ADM numerators */
  double *lg;          /* ns + nq k + k: the logs of the loss */
  double *block;
} work;

/* ---------------------------------------------------------------- checks */

#define CHECK_SIZE(name, v) \
  PetscCheck((v) >= 1 && (v) < INT32_MAX, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: %s = %lld; expected 1 <= %s < 2^31", name, (long long)(v), name)
#define CHECK_PTR(p, what) PetscCheck((p) != NULL, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: %s is NULL; expected %s", #p, what)
#define CHECK_NONNEG(o, f) \
  PetscCheck(isfinite((o)->f) && (o)->f >= 0, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: %s = %g; expected a finite %s >= 0", #f, (o)->f, #f)

static PetscErrorCode check_features(const char *name, int64_t n, int64_t d, const double *z)
{
  PetscFunctionBeginUser;
  for (int64_t i = 0; i < n * d; i++)
    PetscCheck(isfinite(z[i]), PETSC_COMM_SELF, BO_ERR_INPUT, "tim: %s[%lld][%lld] = %g is not finite; expected finite features", name, (long long)(i / d), (long long)(i % d), z[i]);
  PetscFunctionReturn(0);
}

static PetscErrorCode check_labels(int64_t ns, const int32_t *ys, int64_t k)
{
  PetscFunctionBeginUser;
  for (int64_t i = 0; i < ns; i++)
    PetscCheck(ys[i] >= 0 && ys[i] < k, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: support label ys[%lld] = %d is outside 0..%lld; expected labels in 0..k-1", (long long)i, (int)ys[i], (long long)(k - 1));
  PetscFunctionReturn(0);
}

/* The model's options: what the loss and the probabilities read. */
static PetscErrorCode check_model(const bo_tim_opts *o)
{
  PetscFunctionBeginUser;
  CHECK_PTR(o, "options (bo_tim_defaults_gd / _adm)");
  PetscCheck(isfinite(o->tau) && o->tau > 0, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: tau = %g; expected a finite tau > 0", o->tau);
  CHECK_NONNEG(o, lambda_ce);
  CHECK_NONNEG(o, alpha);
  CHECK_NONNEG(o, w_marginal);
  CHECK_NONNEG(o, log_eps);
  PetscFunctionReturn(0);
}

static PetscErrorCode check_task(const task *t, const double *w, const bo_tim_opts *o)
{
  PetscFunctionBeginUser;
  CHECK_SIZE("k", t->k);
  CHECK_SIZE("ns", t->ns);
  CHECK_SIZE("nq", t->nq);
  CHECK_SIZE("d", t->d);
  PetscCall(check_model(o));
  CHECK_PTR(t->zs, "ns x d support features");
  CHECK_PTR(t->ys, "ns support labels");
  CHECK_PTR(t->zq, "nq x d query features");
  PetscCheck(w != NULL, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: w is NULL; expected k x d weights");
  PetscCall(check_labels(t->ns, t->ys, t->k));
  PetscCall(check_features("zs", t->ns, t->d, t->zs));
  PetscCall(check_features("zq", t->nq, t->d, t->zq));
  PetscCall(check_features("w", t->k, t->d, w));
  PetscFunctionReturn(0);
}

static PetscErrorCode check_iterations(const bo_tim_opts *o)
{
  PetscFunctionBeginUser;
  PetscCheck(o->iterations >= 1, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: iterations = %d; expected iterations >= 1", o->iterations);
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- workspace */

static PetscErrorCode work_create(const task *t, work *ws)
{
  const int64_t n = t->ns + t->nq, k = t->k;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1((size_t)(3 * n * k + t->nq * k + n + 6 * k + k * t->d + t->ns + t->nq * k + k), &ws->block));
  double *b = ws->block;
  ws->x     = b, b += n * k;
  ws->ps    = b, b += n * k;
  ws->pq    = ws->ps + t->ns * k;
  ws->gs    = b, b += n * k;
  ws->gq    = ws->gs + t->ns * k;
  ws->q     = b, b += t->nq * k;
  ws->lse   = b, b += n;
  ws->wn    = b, b += k;
  ws->a     = b, b += k;
  ws->phat  = b, b += k;
  ws->count = b, b += k;
  ws->colp  = b, b += k;
  ws->colq  = b, b += k;
  ws->grad  = b, b += k * t->d;
  ws->lg    = b;
  ws->kern  = bo_tim_kernels_best();
  PetscFunctionReturn(0);
}

static PetscErrorCode work_destroy(work *ws)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree(ws->block));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- kernels */

/* p (n x k) = softmax_c tau (z_i.w_c - wn_c / 2): the logits up to the per-row constant
 * -tau |z_i|^2 / 2, which the softmax removes.  x (n x k, scratch) is left holding the shifted
 * logits x_ic - max_c x_ic, and with lse (n) the log of each row's sum of exponentials, so that
 * log p_ic = x_ic - lse_i without a log per entry. */
static void softmax_rows(const bo_tim_kernels *kern, int64_t n, int64_t d, const double *z, int64_t k, const double *w, const double *wn, double tau, double *x, double *p, double *lse)
{
  kern->cross(n, d, z, k, w, x);
  for (int64_t i = 0; i < n; i++) {
    double *xi = x + i * k, hi = -INFINITY;
    for (int64_t c = 0; c < k; c++) {
      xi[c] = tau * (xi[c] - 0.5 * wn[c]);
      hi    = PetscMax(hi, xi[c]);
    }
    for (int64_t c = 0; c < k; c++) xi[c] -= hi;
  }
  kern->exp(n * k, x, p);
  for (int64_t i = 0; i < n; i++) {
    double *pi = p + i * k, s = 0;
    for (int64_t c = 0; c < k; c++) s += pi[c];
    const double inv = 1 / s; /* s >= 1: the row's maximum contributes exp(0) = 1 */
    for (int64_t c = 0; c < k; c++) pi[c] *= inv;
    if (lse) lse[i] = s;
  }
  if (lse) kern->log(n, lse, lse);
}

/* wn_c = dot(w_c, w_c) through the cross kernel (one row, one class). */
static void row_sqnorms(const bo_tim_kernels *kern, int64_t k, int64_t d, const double *w, double *wn)
{
  for (int64_t c = 0; c < k; c++) kern->cross(1, d, w + c * d, 1, w + c * d, wn + c);
}

/* P_S and P_Q at W (with the log-sum-exps of the query rows when lse_q). */
static void probabilities(const task *t, const double *w, double tau, work *ws, PetscBool lse_q)
{
  row_sqnorms(ws->kern, t->k, t->d, w, ws->wn);
  softmax_rows(ws->kern, t->ns, t->d, t->zs, t->k, w, ws->wn, tau, ws->x, ws->ps, NULL);
  softmax_rows(ws->kern, t->nq, t->d, t->zq, t->k, w, ws->wn, tau, ws->x + t->ns * t->k, ws->pq, lse_q ? ws->lse : NULL);
}

/* L from ws->ps and ws->pq; with grad, also G = dL/dlogit into ws->gs and ws->gq (tim.h gives the
 * formulas).  A term whose weight is 0 is left out, so that 0 * inf (eps = 0 and an underflowed
 * p) cannot turn the loss into NaN. */
static double loss_and_logit_grad(const task *t, const bo_tim_opts *o, work *ws, PetscBool grad)
{
  const int64_t k = t->k, ns = t->ns, nq = t->nq;
  const double  eps = o->log_eps, lam = o->lambda_ce, al = o->alpha, wm = o->w_marginal;
  double        ce = 0, marg = 0, cond = 0, loss = 0;

  /* every log of the loss at once (vector log): support rows' log(p_iy + eps), the queries'
   * log(p_ic + eps), then log(phat_c + eps) */
  double *lgs = ws->lg, *lgq = ws->lg + ns, *lgh = lgq + nq * k;
  for (int64_t i = 0; i < ns; i++) lgs[i] = ws->ps[i * k + t->ys[i]] + eps;
  for (int64_t i = 0; i < nq * k; i++) lgq[i] = ws->pq[i] + eps;
  for (int64_t c = 0; c < k; c++) ws->phat[c] = 0;
  for (int64_t i = 0; i < nq; i++)
    for (int64_t c = 0; c < k; c++) ws->phat[c] += ws->pq[i * k + c];
  for (int64_t c = 0; c < k; c++) lgh[c] = (ws->phat[c] /= (double)nq) + eps;
  ws->kern->log(ns + nq * k + k, ws->lg, ws->lg);

  /* support: cross-entropy */
  for (int64_t i = 0; i < ns; i++) {
    const double *pi = ws->ps + i * k;
    const int64_t y  = t->ys[i];
    ce -= lgs[i];
    if (grad) {
      const double r = eps > 0 ? pi[y] / (pi[y] + eps) : 1.0, f = lam / (double)ns * r;
      for (int64_t c = 0; c < k; c++) ws->gs[i * k + c] = f * (pi[c] - (c == y ? 1.0 : 0.0));
    }
  }
  ce /= (double)ns;

  /* query: marginal phat, then the conditional entropy row by row */
  for (int64_t c = 0; c < k; c++) {
    const double ph = ws->phat[c];
    ws->a[c]        = 0; /* used only against p_ic > 0, which implies phat_c > 0 */
    if (ph > 0) {
      const double l = lgh[c];
      marg += ph * l;
      ws->a[c] = wm * (l + ph / (ph + eps));
    }
  }
  for (int64_t i = 0; i < nq; i++) {
    const double *pi = ws->pq + i * k;
    double       *gi = ws->gq + i * k, s = 0;
    for (int64_t c = 0; c < k; c++) {
      gi[c] = 0;
      if (pi[c] > 0) {
        const double l = lgq[i * k + c];
        cond += pi[c] * l;
        if (grad) {
          gi[c] = (ws->a[c] - al * (l + pi[c] / (pi[c] + eps))) / (double)nq;
          s += pi[c] * gi[c];
        }
      }
    }
    if (grad)
      for (int64_t c = 0; c < k; c++) gi[c] = pi[c] > 0 ? pi[c] * (gi[c] - s) : 0.0;
  }

  if (lam != 0) loss += lam * ce;
  if (wm != 0) loss += wm * marg;              /* -w H(Y_Q) = w sum phat log(phat + eps) */
  if (al != 0) loss += al * (-cond / (double)nq); /* alpha H(Y_Q|X_Q) */
  return loss;
}

/* grad = tau (G^T Z - diag(sum_i G_ic) W) from ws->gs, ws->gq. */
static void weight_grad(const task *t, double tau, const double *w, work *ws, double *grad)
{
  const int64_t k = t->k, d = t->d;
  ws->kern->gather(t->ns, d, t->zs, k, ws->gs, 0, grad);
  ws->kern->gather(t->nq, d, t->zq, k, ws->gq, 1, grad);
  for (int64_t c = 0; c < k; c++) {
    double s = 0;
    for (int64_t i = 0; i < t->ns; i++) s += ws->gs[i * k + c];
    for (int64_t i = 0; i < t->nq; i++) s += ws->gq[i * k + c];
    for (int64_t j = 0; j < d; j++) grad[c * d + j] = tau * (grad[c * d + j] - s * w[c * d + j]);
  }
}

static void argmax_rows(int64_t n, int64_t k, const double *p, int32_t *pred)
{
  for (int64_t i = 0; i < n; i++) {
    int64_t best = 0;
    for (int64_t c = 1; c < k; c++)
      if (p[i * k + c] > p[i * k + best]) best = c;
    pred[i] = (int32_t)best;
  }
}

/* The q-update's normalisations, in place on u (nq x k) = p^(1+alpha): columns divided by
 * (sum_j u_jc)^beta, then rows normalised (a row that cannot be normalised, only possible for an
 * absurd alpha whose powers underflow a whole row, gets p's row). */
static void q_normalise(int64_t nq, int64_t k, const double *p, double beta, double *u, double *colsum)
{
  for (int64_t c = 0; c < k; c++) colsum[c] = 0;
  for (int64_t i = 0; i < nq; i++)
    for (int64_t c = 0; c < k; c++) colsum[c] += u[i * k + c];
  for (int64_t c = 0; c < k; c++) /* a zero column is all 0 already, its limit */
    colsum[c] = colsum[c] > 0 ? 1 / pow(colsum[c], beta) : 1.0;
  for (int64_t i = 0; i < nq; i++) {
    double *ui = u + i * k, s = 0;
    for (int64_t c = 0; c < k; c++) s += (ui[c] *= colsum[c]);
    if (s > 0 && isfinite(s)) {
      const double inv = 1 / s;
      for (int64_t c = 0; c < k; c++) ui[c] *= inv;
    } else
      for (int64_t c = 0; c < k; c++) ui[c] = p[i * k + c];
  }
}

/* q (nq x k) from p given as log p (nq x k, into u as scratch): u = exp((1 + alpha) log p). */
static void q_update_from_log(const bo_tim_kernels *kern, int64_t nq, int64_t k, const double *p, const double *logp_x, const double *lse, double alpha, double beta, double *q, double *colsum)
{
  if (alpha == 0) memcpy(q, p, sizeof *q * (size_t)(nq * k));
  else {
    const double e = 1 + alpha;
    for (int64_t i = 0; i < nq; i++)
      for (int64_t c = 0; c < k; c++) q[i * k + c] = e * (logp_x[i * k + c] - (lse ? lse[i] : 0.0));
    kern->exp(nq * k, q, q);
  }
  q_normalise(nq, k, p, beta, q, colsum);
}

/* ---------------------------------------------------------------- solvers */

static PetscErrorCode gd_run(const task *t, const bo_tim_opts *o, double *w, int32_t *pred, double *pq, double *losses)
{
  work          ws;
  bo_optim      adam;
  bo_optim_opts ao;

  PetscFunctionBeginUser;
  bo_optim_defaults_adam(&ao);
  ao.lr = o->lr, ao.beta1 = o->beta1, ao.beta2 = o->beta2, ao.eps = o->eps;
  PetscCall(work_create(t, &ws));
  PetscCall(bo_optim_create(&ao, t->k * t->d, &adam));
  for (int it = 0; it < o->iterations; it++) {
    probabilities(t, w, o->tau, &ws, PETSC_FALSE);
    const double loss = loss_and_logit_grad(t, o, &ws, PETSC_TRUE);
    if (losses) losses[it] = loss;
    weight_grad(t, o->tau, w, &ws, ws.grad);
    PetscCall(bo_optim_step(&adam, ws.grad, w));
  }
  PetscCall(bo_optim_destroy(&adam));
  probabilities(t, w, o->tau, &ws, PETSC_FALSE);
  if (losses) losses[o->iterations] = loss_and_logit_grad(t, o, &ws, PETSC_FALSE);
  argmax_rows(t->nq, t->k, ws.pq, pred);
  if (pq) memcpy(pq, ws.pq, sizeof *pq * (size_t)(t->nq * t->k));
  PetscCall(work_destroy(&ws));
  PetscFunctionReturn(0);
}

static PetscErrorCode adm_run(const task *t, const bo_tim_opts *o, double *w, int32_t *pred, double *pq, double *losses)
{
  const int64_t k = t->k, d = t->d, ns = t->ns, nq = t->nq;
  const double  cs = o->lambda_ce / (1 + o->alpha), cq = (double)ns / (double)nq;
  const double  beta = o->w_marginal / (o->w_marginal + 1);
  work          ws;

  PetscFunctionBeginUser;
  PetscCall(work_create(t, &ws));
  for (int64_t c = 0; c < k; c++) ws.count[c] = 0;
  for (int64_t i = 0; i < ns; i++) ws.count[t->ys[i]] += 1;
  for (int it = 0; it < o->iterations; it++) {
    probabilities(t, w, o->tau, &ws, PETSC_TRUE);
    if (losses) losses[it] = loss_and_logit_grad(t, o, &ws, PETSC_FALSE);
    q_update_from_log(ws.kern, nq, k, ws.pq, ws.x + ns * k, ws.lse, o->alpha, beta, ws.q, ws.a);
    /* num = c_S (Y - P_S)^T Z_S + c_Q (Q - P_Q)^T Z_Q + diag(c_S sum_S p + c_Q sum_Q p) W */
    for (int64_t c = 0; c < k; c++) ws.colp[c] = ws.colq[c] = ws.phat[c] = 0;
    for (int64_t i = 0; i < ns; i++)
      for (int64_t c = 0; c < k; c++) {
        ws.gs[i * k + c] = cs * ((c == t->ys[i] ? 1.0 : 0.0) - ws.ps[i * k + c]);
        ws.phat[c] += ws.ps[i * k + c];
      }
    for (int64_t i = 0; i < nq; i++)
      for (int64_t c = 0; c < k; c++) {
        ws.gq[i * k + c] = cq * (ws.q[i * k + c] - ws.pq[i * k + c]);
        ws.colp[c] += ws.pq[i * k + c];
        ws.colq[c] += ws.q[i * k + c];
      }
    ws.kern->gather(ns, d, t->zs, k, ws.gs, 0, ws.grad);
    ws.kern->gather(nq, d, t->zq, k, ws.gq, 1, ws.grad);
    for (int64_t c = 0; c < k; c++) {
      const double coef = cs * ws.phat[c] + cq * ws.colp[c], den = cs * ws.count[c] + cq * ws.colq[c];
      if (!(den > 0)) continue; /* no support weight and no query mass: w_c stays */
      const double inv = 1 / den;
      double      *wc = w + c * d;
      for (int64_t j = 0; j < d; j++) wc[j] += o->damping * ((ws.grad[c * d + j] + coef * wc[j]) * inv - wc[j]);
    }
  }
  probabilities(t, w, o->tau, &ws, PETSC_FALSE);
  if (losses) losses[o->iterations] = loss_and_logit_grad(t, o, &ws, PETSC_FALSE);
  argmax_rows(nq, k, ws.pq, pred);
  if (pq) memcpy(pq, ws.pq, sizeof *pq * (size_t)(nq * k));
  PetscCall(work_destroy(&ws));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- TIM-ADM in single precision */

/* The per-row loops of the float path run along the rows of one class (class-major arrays, entry
 * (i, c) at c n + i): each is an elementwise loop the compiler vectorises (8 lanes in the AVX2
 * clone, 4 in the default one) with no reassociation (-std=c17 contracts nothing), so the clones
 * give the same bits; sums over rows use sum_rows (a fixed lane order). */
#define ROWLOOP __attribute__((target_clones("avx2", "default")))

/* A sum over rows in a fixed order that vectorises: 8 running lanes (row i into lane i % 8, the
 * n % 8 tail into lane 0), then ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).  Both clones
 * give the same bits (lane-wise adds); a plain sequential sum is one dependent add per row, which
 * made these sums a fifth of TIM-ADM's time. */
static inline __attribute__((always_inline)) float sum_rows(const float *x, int64_t n)
{
  float   l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i    = 0;
  for (; i + 8 <= n; i += 8)
    for (int t = 0; t < 8; t++) l[t] += x[i + t];
  for (; i < n; i++) l[0] += x[i];
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* sum_i a_i b_i in sum_rows' lane order (products rounded, then added: no fmaf, as sum_rows). */
static inline __attribute__((always_inline)) float dot_rows(const float *a, const float *b, int64_t n)
{
  float   l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i    = 0;
  for (; i + 8 <= n; i += 8)
    for (int t = 0; t < 8; t++) l[t] += a[i + t] * b[i + t];
  for (; i < n; i++) l[0] += a[i] * b[i];
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* x (k x n, ld n) = Z W^T on entry: leaves x = the shifted logits tau (x - wn/2) - max_c, p =
 * exp(x) / s, s (n) = the rows' sums of exp(x). */
ROWLOOP static void softmax_f32(const bo_tim_kernels_f32 *kern, int64_t n, int64_t k, float tau, const float *hw, float *x, float *p, float *s, float *hi)
{
  for (int64_t c = 0; c < k; c++) {
    float *xc = x + c * n;
    const float h = hw[c];
    for (int64_t i = 0; i < n; i++) xc[i] = tau * (xc[i] - h);
  }
  memcpy(hi, x, sizeof *hi * (size_t)n);
  for (int64_t c = 1; c < k; c++)
    for (int64_t i = 0; i < n; i++) hi[i] = x[c * n + i] > hi[i] ? x[c * n + i] : hi[i];
  for (int64_t c = 0; c < k; c++)
    for (int64_t i = 0; i < n; i++) x[c * n + i] -= hi[i];
  kern->exp(n * k, x, p);
  memcpy(s, p, sizeof *s * (size_t)n);
  for (int64_t c = 1; c < k; c++)
    for (int64_t i = 0; i < n; i++) s[i] += p[c * n + i];
  for (int64_t i = 0; i < n; i++) hi[i] = 1.0f / s[i];
  for (int64_t c = 0; c < k; c++)
    for (int64_t i = 0; i < n; i++) p[c * n + i] *= hi[i];
}

/* hw_c = |w_c|^2 / 2 (dot_rows: the same bits in both clones). */
ROWLOOP static void half_sqnorms_f32(int64_t k, int64_t d, const float *w, float *hw)
{
  for (int64_t c = 0; c < k; c++) hw[c] = 0.5f * dot_rows(w + c * d, w + c * d, d);
}

/* The q-update (tim.h) on the queries: q (k x nq, ld nq) from the shifted logits xq and probabilities
 * pq (ld n) and the rows' log-sum-exps lse (nq). */
ROWLOOP static void q_update_f32(const bo_tim_kernels_f32 *kern, int64_t n, int64_t nq, int64_t k, float alpha, float beta, const float *xq, const float *pq, const float *lse, float *q, float *rs, float *colf)
{
  const float e = 1 + alpha;
  for (int64_t c = 0; c < k; c++) {
    float       *qc = q + c * nq;
    const float *xc = xq + c * n;
    if (alpha == 0) memcpy(qc, pq + c * n, sizeof *qc * (size_t)nq);
    else
      for (int64_t i = 0; i < nq; i++) qc[i] = e * (xc[i] - lse[i]);
  }
  if (alpha != 0) kern->exp(nq * k, q, q); /* p^(1 + alpha), all classes in one call */
  for (int64_t c = 0; c < k; c++) { /* the column factors (sum_i q_ic)^-beta; a zero column is all 0: factor 1, its limit */
    const float cs = sum_rows(q + c * nq, nq);
    colf[c]        = cs > 0 ? expf(-beta * logf(cs)) : 1.0f;
  }
  for (int64_t i = 0; i < nq; i++) rs[i] = colf[0] * q[i];
  for (int64_t c = 1; c < k; c++)
    for (int64_t i = 0; i < nq; i++) rs[i] += colf[c] * q[c * nq + i];
  int unnormalisable = 0;
  for (int64_t i = 0; i < nq; i++) {
    const int ok = (rs[i] > 0) & (rs[i] <= FLT_MAX);
    rs[i]        = ok ? 1 / rs[i] : 0;
    unnormalisable |= !ok;
  }
  for (int64_t c = 0; c < k; c++) {
    const float f = colf[c];
    float      *qc = q + c * nq;
    for (int64_t i = 0; i < nq; i++) qc[i] = (f * qc[i]) * rs[i];
  }
  for (int64_t i = 0; unnormalisable && i < nq; i++) /* a row that cannot be normalised (rs = 0) gets p's */
    if (rs[i] == 0) /* row (as in double); apart, so that the loop above stays a plain vector loop */
      for (int64_t c = 0; c < k; c++) q[c * nq + i] = pq[c * n + i];
}

/* The ADM coefficients g (k x n, ld n): c_S (Y - P_S) on the support rows, c_Q (Q - P_Q) on the
 * queries; and the column sums of P_S, P_Q and Q (sum_rows). */
ROWLOOP static void adm_coefficients_f32(int64_t ns, int64_t nq, int64_t k, const int32_t *ys, float cs, float cq, const float *p, const float *q, float *g, float *sums)
{
  const int64_t n = ns + nq;
  for (int64_t c = 0; c < k; c++) {
    const float *pc = p + c * n, *qc = q + c * nq;
    float       *gc = g + c * n;
    for (int64_t i = 0; i < ns; i++) gc[i] = cs * ((ys[i] == c ? 1.0f : 0.0f) - pc[i]);
    for (int64_t i = 0; i < nq; i++) gc[ns + i] = cq * (qc[i] - pc[ns + i]);
    sums[3 * c] = sum_rows(pc, ns), sums[3 * c + 1] = sum_rows(pc + ns, nq), sums[3 * c + 2] = sum_rows(qc, nq);
  }
}

/* The rows form (see adm_run_f32): on entry x_c = K C_c; leaves x_c = K C_c + s_c u_c, the logits
 * z_i . w_c, and hw_c = |w_c|^2 / 2 = (C_c . x_c + s_c (C_c . u_c + s_c |w0_c|^2)) / 2. */
ROWLOOP static void rows_logits_f32(int64_t n, int64_t k, const float *cf, const float *sc, const float *u, const float *n0, float *x, float *hw)
{
  for (int64_t c = 0; c < k; c++) {
    const float *cc = cf + c * n, *uc = u + c * n, s = sc[c];
    float       *xc = x + c * n;
    for (int64_t i = 0; i < n; i++) xc[i] += s * uc[i];
    hw[c] = 0.5f * (dot_rows(cc, xc, n) + s * (dot_rows(cc, uc, n) + s * n0[c]));
  }
}

typedef struct {
  const bo_tim_kernels_f32 *kern;
  PetscBool rows;  /* the iterate as coefficients over the task's rows (see adm_run_f32) */
  int64_t   len;   /* a class's coefficients: d (weights) or n (rows) */
  float    *z, *zt; /* the features, n x d, and transposed, d x n */
  float    *basis; /* what the logits read, transposed, len x n: zt, or K = Z Z^T (n x n, symmetric) */
  float    *w;     /* k x len: W, or the coefficients C */
  float    *w0, *u, *sc, *n0; /* rows form: W_0 (k x d), U = Z W_0^T (k x n), s (k), |w0_c|^2 (k) */
  float    *x, *p, *q, *g, *grad, *s, *hi, *hw, *sums, *count, *colf;
  void     *block;
} work_f32;

/* P (k x n) at the current iterate, with the query rows' log-sum-exps into ws->hi when lse. */
static void probabilities_f32(const task *t, float tau, work_f32 *ws, PetscBool lse)
{
  const int64_t n = t->ns + t->nq, k = t->k;
  ws->kern->crosst(n, ws->len, ws->basis, n, k, ws->w, n, ws->x);
  if (ws->rows) rows_logits_f32(n, k, ws->w, ws->sc, ws->u, ws->n0, ws->x, ws->hw);
  else half_sqnorms_f32(k, t->d, ws->w, ws->hw);
  softmax_f32(ws->kern, n, k, tau, ws->hw, ws->x, ws->p, ws->s, ws->hi);
  if (lse) ws->kern->log(t->nq, ws->s + t->ns, ws->hi); /* the query rows' log-sum-exps */
}

/* W (k x d, float, into ws->grad) from the iterate: W itself, or C Z + s W_0. */
static void weights_f32(const task *t, work_f32 *ws)
{
  const int64_t k = t->k, d = t->d, n = t->ns + t->nq;
  if (!ws->rows) {
    memcpy(ws->grad, ws->w, sizeof *ws->grad * (size_t)(k * d));
    return;
  }
  ws->kern->gather(n, d, ws->z, k, ws->w, n, ws->grad);
  for (int64_t c = 0; c < k; c++)
    for (int64_t j = 0; j < d; j++) ws->grad[c * d + j] += ws->sc[c] * ws->w0[c * d + j];
}

static PetscErrorCode work_f32_create(const task *t, const double *w, work_f32 *ws)
{
  const int64_t k = t->k, d = t->d, ns = t->ns, nq = t->nq, n = ns + nq;

  PetscFunctionBeginUser;
  ws->rows = n <= d ? PETSC_TRUE : PETSC_FALSE; /* n^2 k multiply-adds per iteration instead of 2 n d k; at
                                                   * d = 64, n = 100 the rows form was not faster (measured) */
  ws->len  = ws->rows ? n : d;
  {
    const size_t nf = (size_t)(2 * n * d + (ws->rows ? n * n + k * d + k * n + 2 * k : 0) + k * ws->len + k * d + 3 * k * n + k * nq + 2 * n + 6 * k);
    PetscCall(PetscMalloc(nf * sizeof(float), &ws->block));
    float *b = (float *)ws->block;
    ws->z = b, b += n * d;
    ws->zt = b, b += n * d;
    if (ws->rows) {
      ws->basis = b, b += n * n;
      ws->w0 = b, b += k * d;
      ws->u = b, b += k * n;
      ws->sc = b, b += k;
      ws->n0 = b, b += k;
    } else ws->basis = ws->zt, ws->w0 = ws->u = ws->sc = ws->n0 = NULL;
    ws->w = b, b += k * ws->len;
    ws->grad = b, b += k * d;
    ws->x = b, b += k * n;
    ws->p = b, b += k * n;
    ws->g = b, b += k * n;
    ws->q = b, b += k * nq;
    ws->s = b, b += n;
    ws->hi = b, b += n;
    ws->hw = b, b += k;
    ws->count = b, b += k;
    ws->colf = b, b += k;
    ws->sums = b;
  }
  ws->kern = bo_tim_kernels_f32_best();
  for (int64_t i = 0; i < ns * d; i++) ws->z[i] = (float)t->zs[i];
  for (int64_t i = 0; i < nq * d; i++) ws->z[ns * d + i] = (float)t->zq[i];
  for (int64_t i = 0; i < n; i++) /* the logits read features down the rows (crosst), G^T Z along them */
    for (int64_t j = 0; j < d; j++) ws->zt[j * n + i] = ws->z[i * d + j];
  for (int64_t c = 0; c < k; c++) ws->count[c] = 0;
  for (int64_t i = 0; i < ns; i++) ws->count[t->ys[i]] += 1;
  if (!ws->rows) {
    for (int64_t i = 0; i < k * d; i++) ws->w[i] = (float)w[i];
    PetscFunctionReturn(0);
  }
  /* rows form: W = C Z + s W_0 with C = 0, s = 1 at the start; K = Z Z^T, U = Z W_0^T once */
  for (int64_t i = 0; i < k * d; i++) ws->w0[i] = (float)w[i];
  ws->kern->crosst(n, d, ws->zt, n, n, ws->z, n, ws->basis); /* K[c n + i] = z_i . z_c = K[i n + c] */
  ws->kern->crosst(n, d, ws->zt, n, k, ws->w0, n, ws->u);
  for (int64_t c = 0; c < k; c++) ws->n0[c] = dot_rows(ws->w0 + c * d, ws->w0 + c * d, d), ws->sc[c] = 1;
  memset(ws->w, 0, sizeof *ws->w * (size_t)(k * n));
  PetscFunctionReturn(0);
}

/* TIM-ADM in float (bo_tim_opts.precision).  Two forms of the same iteration: W itself (k x d), or,
 * when the task has no more rows than dimensions (n <= d), W = C Z + s W_0 with C (k x n)
 * coefficients over the task's rows and s (k) the weight left on the initial W_0.  The update
 * w_c <- w_c + damp ((g_c^T Z + coef w_c) / den - w_c) keeps that form (C_c gets the g_c part, s_c
 * only scales), the logits are Z W^T = K C^T + U diag(s) with K = Z Z^T and U = Z W_0^T made once,
 * and |w_c|^2 follows from the logits (rows_logits_f32): per iteration n^2 k multiply-adds instead
 * of 2 n d k (Z W^T and G^T Z), 6x fewer at d = 640, n = 100.  The same W in exact arithmetic; in
 * float a different rounding (tests/unit/test_tim_kernels.c compares both forms with double). */
static PetscErrorCode adm_run_f32(const task *t, const bo_tim_opts *o, double *w, int32_t *pred, double *pq, double *losses)
{
  const int64_t k = t->k, d = t->d, ns = t->ns, nq = t->nq, n = ns + nq;
  const float   cs = (float)(o->lambda_ce / (1 + o->alpha)), cq = (float)((double)ns / (double)nq), tau = (float)o->tau, damp = (float)o->damping;
  const double  beta = o->w_marginal / (o->w_marginal + 1);
  work_f32      ws;
  work          wd = {0};
  double       *wdbl = NULL;

  PetscFunctionBeginUser;
  PetscCall(work_f32_create(t, w, &ws));
  if (losses) {
    PetscCall(work_create(t, &wd));
    PetscCall(PetscMalloc1((size_t)(k * d), &wdbl));
  }
  for (int it = 0; it <= o->iterations; it++) {
    if (losses) { /* L in double at the float iterate */
      weights_f32(t, &ws);
      for (int64_t i = 0; i < k * d; i++) wdbl[i] = (double)ws.grad[i];
      probabilities(t, wdbl, o->tau, &wd, PETSC_FALSE);
      losses[it] = loss_and_logit_grad(t, o, &wd, PETSC_FALSE);
    }
    if (it == o->iterations) break;
    probabilities_f32(t, tau, &ws, PETSC_TRUE);
    q_update_f32(ws.kern, n, nq, k, (float)o->alpha, (float)beta, ws.x + ns, ws.p + ns, ws.hi, ws.q, ws.s, ws.colf);
    adm_coefficients_f32(ns, nq, k, t->ys, cs, cq, ws.p, ws.q, ws.g, ws.sums);
    if (!ws.rows) ws.kern->gather(n, d, ws.z, k, ws.g, n, ws.grad); /* rows form: g itself is the update */
    for (int64_t c = 0; c < k; c++) {
      const float coef = cs * ws.sums[3 * c] + cq * ws.sums[3 * c + 1], den = cs * ws.count[c] + cq * ws.sums[3 * c + 2];
      if (!(den > 0)) continue; /* no support weight and no query mass: w_c stays */
      const float inv = 1 / den, *gc = ws.rows ? ws.g + c * n : ws.grad + c * d;
      float      *wc  = ws.w + c * ws.len;
      for (int64_t j = 0; j < ws.len; j++) wc[j] += damp * ((gc[j] + coef * wc[j]) * inv - wc[j]);
      if (ws.rows) ws.sc[c] += damp * ((coef * ws.sc[c]) * inv - ws.sc[c]);
    }
  }
  probabilities_f32(t, tau, &ws, PETSC_FALSE);
  for (int64_t i = 0; i < nq; i++) { /* argmax, ties: the lowest k */
    int64_t best = 0;
    for (int64_t c = 1; c < k; c++)
      if (ws.p[c * n + ns + i] > ws.p[best * n + ns + i]) best = c;
    pred[i] = (int32_t)best;
  }
  if (pq)
    for (int64_t i = 0; i < nq; i++)
      for (int64_t c = 0; c < k; c++) pq[i * k + c] = (double)ws.p[c * n + ns + i];
  weights_f32(t, &ws);
  for (int64_t i = 0; i < k * d; i++) w[i] = (double)ws.grad[i];
  if (losses) {
    PetscCall(work_destroy(&wd));
    PetscCall(PetscFree(wdbl));
  }
  PetscCall(PetscFree(ws.block));
  PetscFunctionReturn(0);
}

static PetscErrorCode loss_grad_run(const task *t, const double *w, const bo_tim_opts *o, double *loss, double *grad)
{
  work ws;

  PetscFunctionBeginUser;
  PetscCall(work_create(t, &ws));
  probabilities(t, w, o->tau, &ws, PETSC_FALSE);
  const double l = loss_and_logit_grad(t, o, &ws, grad ? PETSC_TRUE : PETSC_FALSE);
  if (loss) *loss = l;
  if (grad) weight_grad(t, o->tau, w, &ws, grad);
  PetscCall(work_destroy(&ws));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- public */

void bo_tim_defaults_gd(bo_tim_opts *o)
{
  *o = (bo_tim_opts){.tau = 15, .lambda_ce = 0.1, .alpha = 0.1, .w_marginal = 1.0, .iterations = 1000, .lr = 1e-4, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .log_eps = 1e-12, .damping = 1.0};
}

void bo_tim_defaults_adm(bo_tim_opts *o)
{
  bo_tim_defaults_gd(o);
  o->iterations = 150;
  o->damping    = 1.0;
}

PetscErrorCode bo_tim_init_weights(int64_t ns, int64_t d, const double *zs, const int32_t *ys, int64_t k, double *w)
{
  int64_t *count;

  PetscFunctionBeginUser;
  CHECK_SIZE("k", k);
  CHECK_SIZE("ns", ns);
  CHECK_SIZE("d", d);
  CHECK_PTR(zs, "ns x d support features");
  CHECK_PTR(ys, "ns support labels");
  CHECK_PTR(w, "k x d weights");
  PetscCall(check_labels(ns, ys, k));
  PetscCall(check_features("zs", ns, d, zs));
  PetscCall(PetscCalloc1((size_t)k, &count));
  for (int64_t i = 0; i < ns; i++) count[ys[i]]++;
  for (int64_t c = 0; c < k; c++) {
    if (count[c] > 0) continue;
    PetscCall(PetscFree(count));
    SETERRQ(PETSC_COMM_SELF, BO_ERR_INPUT, "tim: class %lld has no support row; expected at least one support row per class 0..k-1", (long long)c);
  }
  memset(w, 0, sizeof *w * (size_t)(k * d));
  for (int64_t i = 0; i < ns; i++)
    for (int64_t j = 0; j < d; j++) w[ys[i] * d + j] += zs[i * d + j];
  for (int64_t c = 0; c < k; c++)
    for (int64_t j = 0; j < d; j++) w[c * d + j] /= (double)count[c];
  PetscCall(PetscFree(count));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_tim_loss_grad(int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, int64_t k, const double *w, const bo_tim_opts *o, double *loss, double *grad)
{
  const task t = {.ns = ns, .nq = nq, .d = d, .k = k, .zs = zs, .zq = zq, .ys = ys};

  PetscFunctionBeginUser;
  PetscCall(check_task(&t, w, o));
  PetscCall(loss_grad_run(&t, w, o, loss, grad));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_tim_predict(int64_t nq, int64_t d, const double *zq, int64_t k, const double *w, double tau, int32_t *pred, double *pq)
{
  double *block;

  PetscFunctionBeginUser;
  CHECK_SIZE("k", k);
  CHECK_SIZE("nq", nq);
  CHECK_SIZE("d", d);
  PetscCheck(isfinite(tau) && tau > 0, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: tau = %g; expected a finite tau > 0", tau);
  CHECK_PTR(zq, "nq x d query features");
  CHECK_PTR(w, "k x d weights");
  CHECK_PTR(pred, "nq predictions");
  PetscCall(check_features("zq", nq, d, zq));
  PetscCall(check_features("w", k, d, w));
  PetscCall(PetscMalloc1((size_t)(k + (pq ? 0 : nq * k) + nq * k), &block));
  {
    double *x = block + k, *p = pq ? pq : x + nq * k;
    row_sqnorms(bo_tim_kernels_best(), k, d, w, block);
    softmax_rows(bo_tim_kernels_best(), nq, d, zq, k, w, block, tau, x, p, NULL);
    argmax_rows(nq, k, p, pred);
  }
  PetscCall(PetscFree(block));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_tim_adm_q_update(int64_t nq, int64_t k, const double *p, const bo_tim_opts *o, double *q)
{
  PetscFunctionBeginUser;
  CHECK_SIZE("k", k);
  CHECK_SIZE("nq", nq);
  CHECK_PTR(o, "options (bo_tim_defaults_adm)");
  CHECK_NONNEG(o, alpha);
  CHECK_NONNEG(o, w_marginal);
  CHECK_PTR(p, "nq x k probabilities");
  CHECK_PTR(q, "an nq x k output");
  for (int64_t i = 0; i < nq * k; i++)
    PetscCheck(p[i] >= 0 && p[i] <= 1, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: p[%lld][%lld] = %g; expected probabilities in [0, 1]", (long long)(i / k), (long long)(i % k), p[i]);
  {
    double *logp; /* nq x k, then k column factors */
    PetscCall(PetscMalloc1((size_t)(nq * k + k), &logp));
    bo_tim_kernels_best()->log(nq * k, p, logp); /* log 0 = -inf: exp gives 0 */
    q_update_from_log(bo_tim_kernels_best(), nq, k, p, logp, NULL, o->alpha, o->w_marginal / (o->w_marginal + 1), q, logp + nq * k);
    PetscCall(PetscFree(logp));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_tim_gd(int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, int64_t k, const bo_tim_opts *o, double *w, int32_t *pred, double *pq, double *losses)
{
  const task t = {.ns = ns, .nq = nq, .d = d, .k = k, .zs = zs, .zq = zq, .ys = ys};

  PetscFunctionBeginUser;
  PetscCall(check_task(&t, w, o));
  PetscCall(check_iterations(o));
  PetscCheck(isfinite(o->lr) && o->lr > 0, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: lr = %g; expected a finite lr > 0", o->lr);
  PetscCheck(o->beta1 >= 0 && o->beta1 < 1, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: beta1 = %g; expected 0 <= beta1 < 1", o->beta1);
  PetscCheck(o->beta2 >= 0 && o->beta2 < 1, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: beta2 = %g; expected 0 <= beta2 < 1", o->beta2);
  PetscCheck(isfinite(o->eps) && o->eps > 0, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: eps = %g; expected a finite Adam eps > 0", o->eps);
  CHECK_PTR(pred, "nq predictions");
  PetscCheck(o->precision == BO_TIM_DOUBLE, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: precision = %d for TIM-GD; expected BO_TIM_DOUBLE (single precision is TIM-ADM only)", (int)o->precision);
  PetscCall(gd_run(&t, o, w, pred, pq, losses));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_tim_adm(int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, int64_t k, const bo_tim_opts *o, double *w, int32_t *pred, double *pq, double *losses)
{
  const task t = {.ns = ns, .nq = nq, .d = d, .k = k, .zs = zs, .zq = zq, .ys = ys};

  PetscFunctionBeginUser;
  PetscCall(check_task(&t, w, o));
  PetscCall(check_iterations(o));
  CHECK_NONNEG(o, damping);
  CHECK_PTR(pred, "nq predictions");
  PetscCheck(o->precision == BO_TIM_DOUBLE || o->precision == BO_TIM_SINGLE, PETSC_COMM_SELF, BO_ERR_INPUT, "tim: precision = %d; expected BO_TIM_DOUBLE or BO_TIM_SINGLE", (int)o->precision);
  if (o->precision == BO_TIM_SINGLE) PetscCall(adm_run_f32(&t, o, w, pred, pq, losses));
  else PetscCall(adm_run(&t, o, w, pred, pq, losses));
  PetscFunctionReturn(0);
}
