/* tim.c - TIM-GD and TIM-ADM for one transductive few-shot task (see tim.h for the model and the
 * contract).
 *
 * Shape of an iteration.  Both solvers spend their time in two GEMMs with k = 5 columns: the cross
 * products Z W^T (for the probabilities) and G^T Z (for the gradient, or the ADM numerators).
 * Support and query rows stay in the caller's two arrays, so each product is two dgemm calls (the
 * second accumulating with beta = 1); everything else is O((ns + nq) k) per iteration.  The
 * scratch lives in one block allocated per call.
 */
#include "boundopt/tim.h"
#include "boundopt/error.h"
#include <cblas.h>
#include <math.h>
#include <string.h>

/* OpenBLAS thread control: one thread per dgemm, whatever the caller set (determinism, and no
 * thread start-up cost on products this small). */
extern void openblas_set_num_threads(int nthreads);
extern int  openblas_get_num_threads(void);

typedef struct {
  int64_t        ns, nq, d, k;
  const double  *zs, *zq;
  const int32_t *ys;
} task;

typedef struct {
  double *ps, *pq;     /* probabilities at the current W: ns x k, nq x k */
  double *gs, *gq;     /* dL/dlogit (GD), or the ADM coefficients c_S (Y - P_S), c_Q (Q - P_Q) */
  double *q;           /* ADM: the q-update, nq x k */
  double *wn;          /* |w_c|^2, k */
  double *a;           /* k: the marginal part of g (GD); den_c (ADM) */
  double *phat;        /* k: phat (GD); the p column sums coefficient (ADM) */
  double *count;       /* k: support rows per class (ADM) */
  double *grad, *m, *v;/* k x d: the gradient (or the ADM numerators), Adam's moments */
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

static PetscErrorCode work_create(const task *t, PetscBool adam, work *ws)
{
  const size_t nk = (size_t)((t->ns + t->nq) * t->k), kd = (size_t)(t->k * t->d), k = (size_t)t->k;
  double      *b;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(2 * nk + (size_t)(t->nq * t->k) + 4 * k + (adam ? 3 : 1) * kd, &ws->block));
  b        = ws->block;
  ws->ps   = b, b += t->ns * t->k;
  ws->pq   = b, b += t->nq * t->k;
  ws->gs   = b, b += t->ns * t->k;
  ws->gq   = b, b += t->nq * t->k;
  ws->q    = b, b += t->nq * t->k;
  ws->wn   = b, b += k;
  ws->a    = b, b += k;
  ws->phat = b, b += k;
  ws->count = b, b += k;
  ws->grad = b, b += kd;
  ws->m = ws->v = NULL;
  if (adam) {
    ws->m = b, b += kd;
    ws->v = b;
    memset(ws->m, 0, 2 * kd * sizeof *ws->m);
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode work_destroy(work *ws)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree(ws->block));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- kernels */

static void row_sqnorms(int64_t k, int64_t d, const double *w, double *wn)
{
  for (int64_t c = 0; c < k; c++) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += w[c * d + j] * w[c * d + j];
    wn[c] = s;
  }
}

/* p (n x k) = softmax_c tau (z_i.w_c - wn_c / 2): the logits up to the per-row constant
 * -tau |z_i|^2 / 2, which the softmax removes. */
static void softmax_rows(int64_t n, int64_t d, const double *z, int64_t k, const double *w, const double *wn, double tau, double *p)
{
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)k, (int)d, 1.0, z, (int)d, w, (int)d, 0.0, p, (int)k);
  for (int64_t i = 0; i < n; i++) {
    double *pi = p + i * k, hi = -INFINITY, s = 0;
    for (int64_t c = 0; c < k; c++) {
      pi[c] = tau * (pi[c] - 0.5 * wn[c]);
      hi    = PetscMax(hi, pi[c]);
    }
    for (int64_t c = 0; c < k; c++) s += (pi[c] = exp(pi[c] - hi));
    for (int64_t c = 0; c < k; c++) pi[c] /= s;
  }
}

static void probabilities(const task *t, const double *w, double tau, work *ws)
{
  row_sqnorms(t->k, t->d, w, ws->wn);
  softmax_rows(t->ns, t->d, t->zs, t->k, w, ws->wn, tau, ws->ps);
  softmax_rows(t->nq, t->d, t->zq, t->k, w, ws->wn, tau, ws->pq);
}

/* L from ws->ps and ws->pq; with grad, also G = dL/dlogit into ws->gs and ws->gq (tim.h gives the
 * formulas).  A term whose weight is 0 is left out, so that 0 * inf (eps = 0 and an underflowed
 * p) cannot turn the loss into NaN. */
static double loss_and_logit_grad(const task *t, const bo_tim_opts *o, work *ws, PetscBool grad)
{
  const int64_t k = t->k, ns = t->ns, nq = t->nq;
  const double  eps = o->log_eps, lam = o->lambda_ce, al = o->alpha, wm = o->w_marginal;
  double        ce = 0, marg = 0, cond = 0, loss = 0;

  /* support: cross-entropy */
  for (int64_t i = 0; i < ns; i++) {
    const double *pi = ws->ps + i * k;
    const int64_t y  = t->ys[i];
    ce -= log(pi[y] + eps);
    if (grad) {
      const double r = eps > 0 ? pi[y] / (pi[y] + eps) : 1.0, f = lam / (double)ns * r;
      for (int64_t c = 0; c < k; c++) ws->gs[i * k + c] = f * (pi[c] - (c == y ? 1.0 : 0.0));
    }
  }
  ce /= (double)ns;

  /* query: marginal phat, then the conditional entropy row by row */
  for (int64_t c = 0; c < k; c++) {
    double s = 0;
    for (int64_t i = 0; i < nq; i++) s += ws->pq[i * k + c];
    ws->phat[c] = s / (double)nq;
  }
  for (int64_t c = 0; c < k; c++) {
    const double ph = ws->phat[c];
    ws->a[c]        = 0; /* used only against p_ic > 0, which implies phat_c > 0 */
    if (ph > 0) {
      const double l = log(ph + eps);
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
        const double l = log(pi[c] + eps);
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

/* out (k x d) = scale (S^T Z_S + Q^T Z_Q) for row weights S (ns x k), Q (nq x k). */
static void weighted_sums(const task *t, double scale, const double *s, const double *q, double *out)
{
  const int k = (int)t->k, d = (int)t->d;
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, d, (int)t->ns, scale, s, k, t->zs, d, 0.0, out, d);
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, d, (int)t->nq, scale, q, k, t->zq, d, 1.0, out, d);
}

/* grad = tau (G^T Z - diag(sum_i G_ic) W) from ws->gs, ws->gq. */
static void weight_grad(const task *t, double tau, const double *w, work *ws, double *grad)
{
  const int64_t k = t->k, d = t->d;
  weighted_sums(t, tau, ws->gs, ws->gq, grad);
  for (int64_t c = 0; c < k; c++) {
    double s = 0;
    for (int64_t i = 0; i < t->ns; i++) s += ws->gs[i * k + c];
    for (int64_t i = 0; i < t->nq; i++) s += ws->gq[i * k + c];
    for (int64_t j = 0; j < d; j++) grad[c * d + j] -= tau * s * w[c * d + j];
  }
}

/* PyTorch's Adam step number `step` (1-based), no weight decay. */
static void adam_step(int64_t n, const bo_tim_opts *o, int step, const double *g, double *m, double *v, double *w)
{
  const double b1 = o->beta1, b2 = o->beta2;
  const double bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step), step_size = o->lr / bc1, bc2_sqrt = sqrt(bc2);
  for (int64_t i = 0; i < n; i++) {
    m[i] = m[i] * b1 + g[i] * (1 - b1);
    v[i] = v[i] * b2 + (1 - b2) * g[i] * g[i];
    w[i] -= step_size * m[i] / (sqrt(v[i]) / bc2_sqrt + o->eps);
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

/* q (nq x k) from p: q_ic = p_ic^(1+alpha) / (sum_j p_jc^(1+alpha))^beta, then rows normalised. */
static void q_update(int64_t nq, int64_t k, const double *p, double alpha, double beta, double *q)
{
  const double e = 1 + alpha;
  for (int64_t i = 0; i < nq * k; i++) q[i] = alpha == 0 ? p[i] : pow(p[i], e);
  for (int64_t c = 0; c < k; c++) {
    double s = 0;
    for (int64_t i = 0; i < nq; i++) s += q[i * k + c];
    if (s > 0) { /* s = 0: the whole column is 0 already, its limit */
      const double f = pow(s, beta);
      for (int64_t i = 0; i < nq; i++) q[i * k + c] /= f;
    }
  }
  for (int64_t i = 0; i < nq; i++) {
    double *qi = q + i * k, s = 0;
    for (int64_t c = 0; c < k; c++) s += qi[c];
    if (s > 0 && isfinite(s))
      for (int64_t c = 0; c < k; c++) qi[c] /= s;
    else /* only for an absurd alpha, whose powers underflow a whole row: keep p's row */
      for (int64_t c = 0; c < k; c++) qi[c] = p[i * k + c];
  }
}

/* ---------------------------------------------------------------- solvers */

static PetscErrorCode gd_run(const task *t, const bo_tim_opts *o, double *w, int32_t *pred, double *pq, double *losses)
{
  work ws;

  PetscFunctionBeginUser;
  PetscCall(work_create(t, PETSC_TRUE, &ws));
  for (int it = 0; it < o->iterations; it++) {
    probabilities(t, w, o->tau, &ws);
    const double loss = loss_and_logit_grad(t, o, &ws, PETSC_TRUE);
    if (losses) losses[it] = loss;
    weight_grad(t, o->tau, w, &ws, ws.grad);
    adam_step(t->k * t->d, o, it + 1, ws.grad, ws.m, ws.v, w);
  }
  probabilities(t, w, o->tau, &ws);
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
  PetscCall(work_create(t, PETSC_FALSE, &ws));
  for (int64_t c = 0; c < k; c++) ws.count[c] = 0;
  for (int64_t i = 0; i < ns; i++) ws.count[t->ys[i]] += 1;
  for (int it = 0; it < o->iterations; it++) {
    probabilities(t, w, o->tau, &ws);
    if (losses) losses[it] = loss_and_logit_grad(t, o, &ws, PETSC_FALSE);
    q_update(nq, k, ws.pq, o->alpha, beta, ws.q);
    /* num = c_S (Y - P_S)^T Z_S + c_Q (Q - P_Q)^T Z_Q + diag(c_S sum_S p + c_Q sum_Q p) W */
    for (int64_t i = 0; i < ns; i++)
      for (int64_t c = 0; c < k; c++) ws.gs[i * k + c] = cs * ((c == t->ys[i] ? 1.0 : 0.0) - ws.ps[i * k + c]);
    for (int64_t i = 0; i < nq * k; i++) ws.gq[i] = cq * (ws.q[i] - ws.pq[i]);
    weighted_sums(t, 1.0, ws.gs, ws.gq, ws.grad);
    for (int64_t c = 0; c < k; c++) {
      double sps = 0, spq = 0, sq = 0;
      for (int64_t i = 0; i < ns; i++) sps += ws.ps[i * k + c];
      for (int64_t i = 0; i < nq; i++) {
        spq += ws.pq[i * k + c];
        sq += ws.q[i * k + c];
      }
      const double coef = cs * sps + cq * spq, den = cs * ws.count[c] + cq * sq;
      if (!(den > 0)) continue; /* no support weight and no query mass: w_c stays */
      for (int64_t j = 0; j < d; j++) {
        const double target = (ws.grad[c * d + j] + coef * w[c * d + j]) / den;
        w[c * d + j] += o->damping * (target - w[c * d + j]);
      }
    }
  }
  probabilities(t, w, o->tau, &ws);
  if (losses) losses[o->iterations] = loss_and_logit_grad(t, o, &ws, PETSC_FALSE);
  argmax_rows(nq, k, ws.pq, pred);
  if (pq) memcpy(pq, ws.pq, sizeof *pq * (size_t)(nq * k));
  PetscCall(work_destroy(&ws));
  PetscFunctionReturn(0);
}

static PetscErrorCode loss_grad_run(const task *t, const double *w, const bo_tim_opts *o, double *loss, double *grad)
{
  work ws;

  PetscFunctionBeginUser;
  PetscCall(work_create(t, PETSC_FALSE, &ws));
  probabilities(t, w, o->tau, &ws);
  const double l = loss_and_logit_grad(t, o, &ws, grad ? PETSC_TRUE : PETSC_FALSE);
  if (loss) *loss = l;
  if (grad) weight_grad(t, o->tau, w, &ws, grad);
  PetscCall(work_destroy(&ws));
  PetscFunctionReturn(0);
}

/* Runs one solver with BLAS on one thread, restoring the caller's setting even on failure. */
#define SINGLE_THREADED(call) \
  do { \
    const int      threads_ = openblas_get_num_threads(); \
    PetscErrorCode ierr_; \
    openblas_set_num_threads(1); \
    ierr_ = (call); \
    openblas_set_num_threads(threads_); \
    PetscCall(ierr_); \
  } while (0)

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
  SINGLE_THREADED(loss_grad_run(&t, w, o, loss, grad));
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
  PetscCall(PetscMalloc1((size_t)(k + (pq ? 0 : nq * k)), &block));
  {
    double *p = pq ? pq : block + k;
    row_sqnorms(k, d, w, block);
    const int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    softmax_rows(nq, d, zq, k, w, block, tau, p);
    openblas_set_num_threads(threads);
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
  q_update(nq, k, p, o->alpha, o->w_marginal / (o->w_marginal + 1), q);
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
  SINGLE_THREADED(gd_run(&t, o, w, pred, pq, losses));
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
  SINGLE_THREADED(adm_run(&t, o, w, pred, pq, losses));
  PetscFunctionReturn(0);
}
