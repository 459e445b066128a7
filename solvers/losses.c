/* losses.c - loss terms on logits with exact logit gradients (see losses.h for every formula).
 *
 * Shape of a term: softmax per row, then the aggregates the term needs (loss sums, N, class sums
 * per group) as exact sums over every rank's rows (group_sums), then the value from the
 * aggregates (identical on every rank), then the local gradient rows.  Proportion terms share
 * prop_term: each supplies only its group function L_g(pihat) and dL_g/dpihat.
 */
#include "boundopt/losses.h"
#include "boundopt/error.h"
#include "boundopt/reduce.h"
#include <math.h>
#include <string.h>

#define CHECK(cond, ...) PetscCheck(cond, PETSC_COMM_SELF, BO_ERR_INPUT, __VA_ARGS__)

const char *const bo_shape_names[] = {"size", "cx", "cy", "dx", "dy", "length"};

/* ---------------------------------------------------------------- checks */

static PetscErrorCode check_finite(const char *term, const char *name, int64_t n, int64_t k, const double *v)
{
  PetscFunctionBeginUser;
  CHECK(n == 0 || v, "losses: %s: %s is NULL; expected %lld x %lld values", term, name, (long long)n, (long long)k);
  for (int64_t i = 0; i < n * k; i++)
    CHECK(isfinite(v[i]), "losses: %s: %s[%lld][%lld] = %g is not finite; expected finite values", term, name, (long long)(i / k), (long long)(i % k), v[i]);
  PetscFunctionReturn(0);
}

static PetscErrorCode check_weights(const char *term, const char *name, int64_t n, const double *w)
{
  PetscFunctionBeginUser;
  if (!w) PetscFunctionReturn(0);
  for (int64_t i = 0; i < n; i++)
    CHECK(isfinite(w[i]) && w[i] >= 0, "losses: %s: %s[%lld] = %g; expected finite weights >= 0", term, name, (long long)i, w[i]);
  PetscFunctionReturn(0);
}

static PetscErrorCode check_batch(const char *term, const bo_loss_batch *b, int64_t kmin)
{
  PetscFunctionBeginUser;
  CHECK(b, "losses: %s: batch is NULL; expected a bo_loss_batch", term);
  CHECK(b->n >= 0 && b->n < INT64_MAX / 4, "losses: %s: n = %lld; expected n >= 0 local rows", term, (long long)b->n);
  CHECK(b->k >= kmin && b->k < INT32_MAX, "losses: %s: k = %lld; expected %lld <= k < 2^31 classes", term, (long long)b->k, (long long)kmin);
  CHECK(b->ngroups >= 1 && b->ngroups < INT32_MAX, "losses: %s: ngroups = %lld; expected 1 <= ngroups < 2^31", term, (long long)b->ngroups);
  PetscCall(check_finite(term, "logits", b->n, b->k, b->logits));
  PetscCall(check_weights(term, "mask", b->n, b->mask));
  if (b->group)
    for (int64_t i = 0; i < b->n; i++)
      CHECK(b->group[i] >= 0 && b->group[i] < b->ngroups, "losses: %s: group[%lld] = %d; expected ids in 0..%lld", term, (long long)i, (int)b->group[i], (long long)(b->ngroups - 1));
  PetscFunctionReturn(0);
}

static PetscErrorCode check_labels(const char *term, int64_t n, int64_t k, const uint8_t *y)
{
  PetscFunctionBeginUser;
  CHECK(n == 0 || y, "losses: %s: labels is NULL; expected n labels", term);
  for (int64_t i = 0; i < n; i++)
    CHECK(y[i] < k || y[i] == BO_LABEL_IGNORE, "losses: %s: label[%lld] = %d; expected 0..%lld or %d (ignore)", term, (long long)i, (int)y[i], (long long)(k - 1), BO_LABEL_IGNORE);
  PetscFunctionReturn(0);
}

static PetscErrorCode check_prop(const char *term, const bo_prop_opts *o)
{
  PetscFunctionBeginUser;
  CHECK(o, "losses: %s: proportion options are NULL; expected bo_prop_defaults()", term);
  CHECK(o->kind == BO_PROP_MEAN || o->kind == BO_PROP_MAXNORM, "losses: %s: proportion kind %d; expected mean or maxnorm", term, (int)o->kind);
  CHECK(isfinite(o->temperature) && o->temperature > 0, "losses: %s: temperature = %g; expected a finite T > 0", term, o->temperature);
  CHECK(isfinite(o->smooth) && o->smooth >= 0, "losses: %s: smooth = %g; expected a finite s >= 0", term, o->smooth);
  CHECK(o->kind == BO_PROP_MEAN || o->smooth == 0, "losses: %s: smooth = %g with maxnorm proportions; expected smooth 0", term, o->smooth);
  PetscFunctionReturn(0);
}

static PetscErrorCode check_eps(const char *term, const char *name, double eps)
{
  PetscFunctionBeginUser;
  CHECK(isfinite(eps) && eps >= 0, "losses: %s: %s = %g; expected a finite %s >= 0", term, name, eps, name);
  PetscFunctionReturn(0);
}

static inline double mask_of(const bo_loss_batch *b, int64_t i) { return b->mask ? b->mask[i] : 1.0; }
static inline int64_t group_of(const bo_loss_batch *b, int64_t i) { return b->group ? b->group[i] : 0; }

/* ---------------------------------------------------------------- softmax */

void bo_softmax_rows(int64_t n, int64_t k, const double *z, double T, double *p)
{
  for (int64_t i = 0; i < n; i++) {
    const double *zi = z + i * k;
    double       *pi = p + i * k, hi = -INFINITY, s = 0;
    for (int64_t c = 0; c < k; c++) hi = PetscMax(hi, T * zi[c]);
    for (int64_t c = 0; c < k; c++) s += (pi[c] = exp(T * zi[c] - hi));
    for (int64_t c = 0; c < k; c++) pi[c] /= s;
  }
}

/* lp = log softmax(z) of one row, p = exp(lp). */
static void log_softmax_row(int64_t k, const double *z, double *lp, double *p)
{
  double hi = -INFINITY, s = 0;
  for (int64_t c = 0; c < k; c++) hi = PetscMax(hi, z[c]);
  for (int64_t c = 0; c < k; c++) s += exp(z[c] - hi);
  const double lse = hi + log(s);
  for (int64_t c = 0; c < k; c++) {
    lp[c] = z[c] - lse;
    p[c]  = exp(lp[c]);
  }
}

void bo_softmax_backward(int64_t n, int64_t k, const double *p, const double *g, double T, double scale, double *grad)
{
  for (int64_t i = 0; i < n; i++) {
    const double *pi = p + i * k, *gi = g + i * k;
    double       *di = grad + i * k, s = 0;
    for (int64_t c = 0; c < k; c++) s += pi[c] * gi[c];
    for (int64_t c = 0; c < k; c++) di[c] += scale * T * pi[c] * (gi[c] - s);
  }
}

/* ---------------------------------------------------------------- exact aggregates */

/* out (ngroups x len) = sum over the rows of every rank of comm of a[i*len .. +len) into row
 * group[i] (group NULL: all 0).  Each row is one exact-sum addend, so the result does not depend on
 * how the rows are split.  The grid bound (rows of all ranks x the largest |addend|) comes from an
 * integer sum and a max, both order independent. */
static PetscErrorCode group_sums(MPI_Comm comm, int64_t n, int64_t len, const double *a, const int32_t *group, int64_t ngroups, double *out)
{
  double      mx = 0, gmx;
  int64_t     nl = n, nt;
  bo_exactsum s;

  PetscFunctionBeginUser;
  for (int64_t i = 0; i < n * len; i++) mx = PetscMax(mx, fabs(a[i]));
  PetscCallMPI(MPI_Allreduce(&mx, &gmx, 1, MPI_DOUBLE, MPI_MAX, comm));
  PetscCallMPI(MPI_Allreduce(&nl, &nt, 1, MPI_INT64_T, MPI_SUM, comm));
  PetscCheck(isfinite(gmx), PETSC_COMM_SELF, BO_ERR_RUNTIME, "losses: a per-pixel addend is not finite; expected finite logits and options");
  PetscCall(bo_exactsum_create(ngroups * len, gmx * (double)nt, &s));
  for (int64_t i = 0; i < n; i++) PetscCall(bo_exactsum_add_at(s, (group ? group[i] : 0) * len, len, a + i * len));
  PetscCall(bo_exactsum_allreduce(comm, s, out));
  PetscCall(bo_exactsum_destroy(&s));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- proportions */

void bo_prop_defaults(bo_prop_opts *o) { *o = (bo_prop_opts){.kind = BO_PROP_MEAN, .temperature = 1.0, .smooth = 0.0}; }

/* Index and value of the row maximum (ties: the lowest index). */
static inline int64_t row_argmax(int64_t k, const double *q)
{
  int64_t j = 0;
  for (int64_t c = 1; c < k; c++)
    if (q[c] > q[j]) j = c;
  return j;
}

/* q = softmax(T z); agg (ngroups x (k+1)) = per group [sum m q (mean) or sum m r (maxnorm), N_g]. */
static PetscErrorCode prop_aggregate(const bo_loss_batch *b, const bo_prop_opts *o, double *q, double *agg)
{
  const int64_t n = b->n, k = b->k;
  double       *a;

  PetscFunctionBeginUser;
  bo_softmax_rows(n, k, b->logits, o->temperature, q);
  PetscCall(PetscMalloc1((size_t)(n * (k + 1)) + 1, &a));
  for (int64_t i = 0; i < n; i++) {
    const double  m = mask_of(b, i), *qi = q + i * k;
    double       *ai = a + i * (k + 1);
    const double  f = o->kind == BO_PROP_MAXNORM ? m / qi[row_argmax(k, qi)] : m;
    for (int64_t c = 0; c < k; c++) ai[c] = f * qi[c];
    ai[k] = m;
  }
  PetscCall(group_sums(b->comm, n, k + 1, a, b->group, b->ngroups, agg));
  PetscCall(PetscFree(a));
  PetscFunctionReturn(0);
}

/* pihat of one group from its aggregate row; 0 for an empty group. */
static void prop_of_group(int64_t k, const bo_prop_opts *o, const double *agg, double *pihat)
{
  double tot = 0;
  if (!(agg[k] > 0)) {
    for (int64_t c = 0; c < k; c++) pihat[c] = 0;
    return;
  }
  if (o->kind == BO_PROP_MEAN) {
    for (int64_t c = 0; c < k; c++) pihat[c] = (agg[c] + o->smooth) / (agg[k] + o->smooth);
    return;
  }
  for (int64_t c = 0; c < k; c++) tot += agg[c];
  for (int64_t c = 0; c < k; c++) pihat[c] = agg[c] / tot;
}

PetscErrorCode bo_loss_proportions(const bo_loss_batch *b, const bo_prop_opts *prop, double *pihat, double *ngroup)
{
  double *q, *agg;

  PetscFunctionBeginUser;
  PetscCall(check_batch("proportions", b, 1));
  PetscCall(check_prop("proportions", prop));
  PetscCall(PetscMalloc2((size_t)(b->n * b->k) + 1, &q, (size_t)(b->ngroups * (b->k + 1)), &agg));
  PetscCall(prop_aggregate(b, prop, q, agg));
  for (int64_t g = 0; g < b->ngroups; g++) {
    if (pihat) prop_of_group(b->k, prop, agg + g * (b->k + 1), pihat + g * b->k);
    if (ngroup) ngroup[g] = agg[g * (b->k + 1) + b->k];
  }
  PetscCall(PetscFree2(q, agg));
  PetscFunctionReturn(0);
}

/* A group term: returns L_g(pihat) and d = dL_g/dpihat; target is its row (or NULL). */
typedef double (*group_term)(int64_t k, const double *pihat, const double *target, const void *ctx, double *d);

static PetscErrorCode prop_term(const bo_loss_batch *b, const bo_prop_opts *o, const double *target, group_term term, const void *ctx, double weight, double *value, double *grad)
{
  const int64_t n = b->n, k = b->k, G = b->ngroups, K1 = k + 1;
  double       *q, *agg, *pihat, *d, *gq, total = 0;
  int64_t       counted = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc5((size_t)(n * k) + 1, &q, (size_t)(G * K1), &agg, (size_t)(G * k), &pihat, (size_t)(G * k), &d, (size_t)(n * k) + 1, &gq));
  PetscCall(prop_aggregate(b, o, q, agg));
  for (int64_t g = 0; g < G; g++) { /* every rank evaluates every group, in this order */
    prop_of_group(k, o, agg + g * K1, pihat + g * k);
    memset(d + g * k, 0, sizeof *d * (size_t)k);
    if (!(agg[g * K1 + k] > 0)) continue;
    total += term(k, pihat + g * k, target ? target + g * k : NULL, ctx, d + g * k);
    counted++;
  }
  if (value) *value = counted ? total / (double)counted : 0.0;
  if (grad && counted && weight != 0) {
    if (o->kind == BO_PROP_MAXNORM) /* d <- h = (d - <pihat, d>) / R_g, per group */
      for (int64_t g = 0; g < G; g++) {
        double s = 0, R = 0;
        if (!(agg[g * K1 + k] > 0)) continue;
        for (int64_t c = 0; c < k; c++) s += pihat[g * k + c] * d[g * k + c], R += agg[g * K1 + c];
        for (int64_t c = 0; c < k; c++) d[g * k + c] = (d[g * k + c] - s) / R;
      }
    for (int64_t i = 0; i < n; i++) {
      const int64_t g = group_of(b, i);
      const double  m = mask_of(b, i), *qi = q + i * k, *dg = d + g * k;
      double       *gi = gq + i * k;
      if (o->kind == BO_PROP_MEAN) {
        const double f = m / (agg[g * K1 + k] + o->smooth);
        for (int64_t c = 0; c < k; c++) gi[c] = f * dg[c];
      } else {
        const int64_t j = row_argmax(k, qi);
        const double  M = qi[j];
        double        s = 0;
        for (int64_t c = 0; c < k; c++) gi[c] = m * dg[c] / M, s += dg[c] * qi[c];
        gi[j] -= m * s / (M * M);
      }
    }
    bo_softmax_backward(n, k, q, gq, o->temperature, weight / (double)counted, grad);
  }
  PetscCall(PetscFree5(q, agg, pihat, d, gq));
  PetscFunctionReturn(0);
}

static double marginal_entropy_term(int64_t k, const double *pi, const double *target, const void *ctx, double *d)
{
  const double eps = *(const double *)ctx;
  double       v   = 0;
  for (int64_t c = 0; c < k; c++) {
    if (!(pi[c] > 0)) continue; /* d stays 0 */
    const double l = log(pi[c] + eps);
    v -= pi[c] * l;
    d[c] = -(l + pi[c] / (pi[c] + eps));
  }
  return v;
}

typedef struct {
  bo_kl_dir dir;
  double    eps;
} kl_ctx;

static double kl_term(int64_t k, const double *pi, const double *prior, const void *ctx, double *d)
{
  const kl_ctx *kc = ctx;
  const double  eps = kc->eps;
  double        v   = 0;
  for (int64_t c = 0; c < k; c++) {
    if (kc->dir == BO_KL_PRED_PRIOR) {
      if (!(pi[c] > 0)) continue;
      const double l = log(pi[c] + eps) - log(prior[c] + eps);
      v += pi[c] * l;
      d[c] = l + pi[c] / (pi[c] + eps);
    } else {
      if (!(prior[c] > 0)) continue;
      v += prior[c] * (log(prior[c] + eps) - log(pi[c] + eps));
      d[c] = -prior[c] / (pi[c] + eps);
    }
  }
  return v;
}

static double l1_term(int64_t k, const double *pi, const double *target, const void *ctx, double *d)
{
  double v = 0;
  for (int64_t c = 0; c < k; c++) {
    const double e = pi[c] - target[c];
    v += fabs(e);
    d[c] = (e > 0 ? 1.0 : e < 0 ? -1.0 : 0.0) / (double)k; /* sign(0) = 0 (spec 3) */
  }
  return v / (double)k;
}

static PetscErrorCode check_table(const char *term, const char *name, const bo_loss_batch *b, const double *t)
{
  PetscFunctionBeginUser;
  CHECK(t, "losses: %s: %s is NULL; expected ngroups x k proportions", term, name);
  for (int64_t i = 0; i < b->ngroups * b->k; i++)
    CHECK(isfinite(t[i]) && t[i] >= 0, "losses: %s: %s[%lld][%lld] = %g; expected finite proportions >= 0", term, name, (long long)(i / b->k), (long long)(i % b->k), t[i]);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_loss_marginal_entropy(const bo_loss_batch *b, const bo_prop_opts *prop, double log_eps, double weight, double *value, double *grad)
{
  PetscFunctionBeginUser;
  PetscCall(check_batch("marginal entropy", b, 1));
  PetscCall(check_prop("marginal entropy", prop));
  PetscCall(check_eps("marginal entropy", "log_eps", log_eps));
  PetscCall(prop_term(b, prop, NULL, marginal_entropy_term, &log_eps, weight, value, grad));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_loss_kl_prop(const bo_loss_batch *b, const bo_prop_opts *prop, const double *prior, bo_kl_dir dir, double log_eps, double weight, double *value, double *grad)
{
  const kl_ctx ctx = {.dir = dir, .eps = log_eps};

  PetscFunctionBeginUser;
  PetscCall(check_batch("kl", b, 1));
  PetscCall(check_prop("kl", prop));
  PetscCall(check_eps("kl", "log_eps", log_eps));
  CHECK(dir == BO_KL_PRED_PRIOR || dir == BO_KL_PRIOR_PRED, "losses: kl: direction %d; expected pred_prior or prior_pred", (int)dir);
  PetscCall(check_table("kl", "prior", b, prior));
  if (dir == BO_KL_PRED_PRIOR && log_eps == 0)
    for (int64_t i = 0; i < b->ngroups * b->k; i++)
      CHECK(prior[i] > 0, "losses: kl: prior[%lld][%lld] = 0 with log_eps 0; expected log_eps > 0 (SFDA 1e-10) or a positive prior", (long long)(i / b->k), (long long)(i % b->k));
  PetscCall(prop_term(b, prop, prior, kl_term, &ctx, weight, value, grad));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_loss_l1_prop(const bo_loss_batch *b, const bo_prop_opts *prop, const double *target, double weight, double *value, double *grad)
{
  PetscFunctionBeginUser;
  PetscCall(check_batch("l1", b, 1));
  PetscCall(check_prop("l1", prop));
  PetscCall(check_table("l1", "target", b, target));
  PetscCall(prop_term(b, prop, target, l1_term, NULL, weight, value, grad));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- per-pixel terms */

PetscErrorCode bo_loss_ce(const bo_loss_batch *b, const uint8_t *labels, const double *class_w, double weight, double *value, double *grad)
{
  const int64_t n = b ? b->n : 0, k = b ? b->k : 0;
  double       *lp, *p, *a, tot[2];

  PetscFunctionBeginUser;
  PetscCall(check_batch("ce", b, 1));
  PetscCall(check_labels("ce", n, k, labels));
  PetscCall(check_weights("ce", "class_w", k, class_w));
  PetscCall(PetscMalloc3((size_t)(n * k) + 1, &lp, (size_t)(n * k) + 1, &p, (size_t)(2 * n) + 1, &a));
  for (int64_t i = 0; i < n; i++) {
    const int y = labels[i];
    a[2 * i] = a[2 * i + 1] = 0;
    log_softmax_row(k, b->logits + i * k, lp + i * k, p + i * k);
    if (y == BO_LABEL_IGNORE) continue;
    const double m = mask_of(b, i);
    a[2 * i]       = -m * (class_w ? class_w[y] : 1.0) * lp[i * k + y];
    a[2 * i + 1]   = m;
  }
  PetscCall(group_sums(b->comm, n, 2, a, NULL, 1, tot));
  if (value) *value = tot[1] > 0 ? tot[0] / tot[1] : 0.0;
  if (grad && tot[1] > 0 && weight != 0)
    for (int64_t i = 0; i < n; i++) {
      const int y = labels[i];
      if (y == BO_LABEL_IGNORE) continue;
      const double f = weight * mask_of(b, i) * (class_w ? class_w[y] : 1.0) / tot[1];
      for (int64_t c = 0; c < k; c++) grad[i * k + c] += f * (p[i * k + c] - (c == y ? 1.0 : 0.0));
    }
  PetscCall(PetscFree3(lp, p, a));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_loss_entropy(const bo_loss_batch *b, const double *class_w, double weight, double *value, double *grad)
{
  const int64_t n = b ? b->n : 0, k = b ? b->k : 0;
  double       *lp, *p, *a, tot[2];

  PetscFunctionBeginUser;
  PetscCall(check_batch("entropy", b, 1));
  PetscCall(check_weights("entropy", "class_w", k, class_w));
  PetscCall(PetscMalloc3((size_t)(n * k) + 1, &lp, (size_t)(n * k) + 1, &p, (size_t)(2 * n) + 1, &a));
  for (int64_t i = 0; i < n; i++) {
    double h = 0;
    log_softmax_row(k, b->logits + i * k, lp + i * k, p + i * k);
    for (int64_t c = 0; c < k; c++) h -= (class_w ? class_w[c] : 1.0) * p[i * k + c] * lp[i * k + c];
    a[2 * i]     = mask_of(b, i) * h;
    a[2 * i + 1] = mask_of(b, i);
  }
  PetscCall(group_sums(b->comm, n, 2, a, NULL, 1, tot));
  if (value) *value = tot[1] > 0 ? tot[0] / tot[1] : 0.0;
  if (grad && tot[1] > 0 && weight != 0) {
    for (int64_t i = 0; i < n; i++) /* lp <- dL/dp = -m w (log p + 1) / N */
      for (int64_t c = 0; c < k; c++) lp[i * k + c] = -mask_of(b, i) * (class_w ? class_w[c] : 1.0) * (lp[i * k + c] + 1) / tot[1];
    bo_softmax_backward(n, k, p, lp, 1.0, weight, grad);
  }
  PetscCall(PetscFree3(lp, p, a));
  PetscFunctionReturn(0);
}

/* The paper form; grad_teacher (may be NULL: detached) gets m_i q_T o (log(q_T/q_S) - KL_i) / (T N).
 * The value and the student gradient are computed exactly as before the teacher side existed. */
static PetscErrorCode kd_paper(const bo_loss_batch *b, const double *teacher, double T, double weight, double *value, double *grad, double *grad_teacher)
{
  const int64_t n = b ? b->n : 0, k = b ? b->k : 0;
  double       *qs, *qt, *a, *lr, *kls, tot[2];

  PetscFunctionBeginUser;
  PetscCall(check_batch("kd", b, 2));
  PetscCall(check_finite("kd", "teacher", n, k, teacher));
  CHECK(isfinite(T) && T > 0, "losses: kd: T = %g; expected a finite temperature T > 0", T);
  CHECK(isfinite(weight), "losses: kd: weight = %g; expected a finite weight", weight);
  PetscCall(PetscMalloc5((size_t)(n * k) + 1, &qs, (size_t)(n * k) + 1, &qt, (size_t)(2 * n) + 1, &a, (size_t)(n * k) + 1, &lr, (size_t)n + 1, &kls));
  bo_softmax_rows(n, k, b->logits, 1.0 / T, qs);
  bo_softmax_rows(n, k, teacher, 1.0 / T, qt);
  for (int64_t i = 0; i < n; i++) {
    const double *zs = b->logits + i * k, *zt = teacher + i * k;
    double        kl = 0, ms = zs[0], mt = zt[0], ls = 0, lt = 0;
    /* log q from the max-shifted logits: exact where q underflows */
    for (int64_t c = 1; c < k; c++) ms = PetscMax(ms, zs[c]), mt = PetscMax(mt, zt[c]);
    for (int64_t c = 0; c < k; c++) ls += exp((zs[c] - ms) / T), lt += exp((zt[c] - mt) / T);
    for (int64_t c = 0; c < k; c++) {
      lr[i * k + c] = ((zt[c] - mt) / T - log(lt)) - ((zs[c] - ms) / T - log(ls)); /* log(q_T / q_S) */
      if (qt[i * k + c] > 0) kl += qt[i * k + c] * lr[i * k + c];
    }
    kls[i]       = kl;
    a[2 * i]     = mask_of(b, i) * kl;
    a[2 * i + 1] = mask_of(b, i);
  }
  PetscCall(group_sums(b->comm, n, 2, a, NULL, 1, tot));
  if (value) *value = tot[1] > 0 ? tot[0] / tot[1] : 0.0;
  if (grad && tot[1] > 0 && weight != 0)
    for (int64_t i = 0; i < n; i++)
      for (int64_t c = 0; c < k; c++) grad[i * k + c] += weight * mask_of(b, i) * (qs[i * k + c] - qt[i * k + c]) / (T * tot[1]);
  if (grad_teacher && tot[1] > 0 && weight != 0)
    for (int64_t i = 0; i < n; i++) /* q_T = 0 (underflow) contributes 0: lr is finite there */
      for (int64_t c = 0; c < k; c++) grad_teacher[i * k + c] += weight * mask_of(b, i) * qt[i * k + c] * (lr[i * k + c] - kls[i]) / (T * tot[1]);
  PetscCall(PetscFree5(qs, qt, a, lr, kls));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_loss_kd(const bo_loss_batch *b, const double *teacher, double T, double weight, double *value, double *grad)
{
  PetscFunctionBeginUser;
  PetscCall(kd_paper(b, teacher, T, weight, value, grad, NULL));
  PetscFunctionReturn(0);
}

/* The reference code's form: P = softmax(z), a = softmax(P_S / T), b = softmax(P_T / T),
 * L = sum_i m_i KL(a_i || b_i) / (N k).  Per row, with KL_i the row's divergence,
 *   dKL_i/dP_S = a o (log(a/b) - KL_i) / T,   dKL_i/dP_T = (b - a) / T,
 * each chained through the softmax of its branch (temperature 1). */
static PetscErrorCode kd_code(const bo_loss_batch *b, const double *teacher, double T, double weight, double *value, double *grad, double *grad_teacher)
{
  const int64_t n = b ? b->n : 0, k = b ? b->k : 0;
  double       *ps, *pt, *la, *lb, *qa, *qb, *a, *u, tot[2];

  PetscFunctionBeginUser;
  PetscCall(check_batch("kd", b, 2));
  PetscCall(check_finite("kd", "teacher", n, k, teacher));
  CHECK(isfinite(T) && T > 0, "losses: kd: T = %g; expected a finite temperature T > 0", T);
  CHECK(isfinite(weight), "losses: kd: weight = %g; expected a finite weight", weight);
  PetscCall(PetscMalloc7((size_t)(n * k) + 1, &ps, (size_t)(n * k) + 1, &pt, (size_t)(n * k) + 1, &la, (size_t)(n * k) + 1, &lb, (size_t)(n * k) + 1, &qa, (size_t)(n * k) + 1, &qb, (size_t)(2 * n) + 1, &a));
  PetscCall(PetscMalloc1((size_t)k, &u));
  bo_softmax_rows(n, k, b->logits, 1.0, ps);
  bo_softmax_rows(n, k, teacher, 1.0, pt);
  for (int64_t i = 0; i < n; i++) {
    double kl = 0;
    for (int64_t c = 0; c < k; c++) u[c] = ps[i * k + c] / T;
    log_softmax_row(k, u, la + i * k, qa + i * k);
    for (int64_t c = 0; c < k; c++) u[c] = pt[i * k + c] / T;
    log_softmax_row(k, u, lb + i * k, qb + i * k);
    for (int64_t c = 0; c < k; c++) kl += qa[i * k + c] * (la[i * k + c] - lb[i * k + c]); /* q >= e^(-1/T) / k: no underflow */
    a[2 * i]     = mask_of(b, i) * kl;
    a[2 * i + 1] = mask_of(b, i);
  }
  PetscCall(group_sums(b->comm, n, 2, a, NULL, 1, tot));
  if (value) *value = tot[1] > 0 ? tot[0] / (tot[1] * (double)k) : 0.0;
  if (tot[1] > 0 && weight != 0) {
    const double s = 1.0 / (T * tot[1] * (double)k);
    for (int64_t i = 0; i < n; i++) { /* la <- dL/dP_S, lb <- dL/dP_T (KL_i = a[2i] / m_i is recomputed: m_i may be 0) */
      double kl = 0;
      for (int64_t c = 0; c < k; c++) kl += qa[i * k + c] * (la[i * k + c] - lb[i * k + c]);
      for (int64_t c = 0; c < k; c++) {
        const double d = la[i * k + c] - lb[i * k + c];
        la[i * k + c] = mask_of(b, i) * s * qa[i * k + c] * (d - kl);
        lb[i * k + c] = mask_of(b, i) * s * (qb[i * k + c] - qa[i * k + c]);
      }
    }
    if (grad) bo_softmax_backward(n, k, ps, la, 1.0, weight, grad);
    if (grad_teacher) bo_softmax_backward(n, k, pt, lb, 1.0, weight, grad_teacher);
  }
  PetscCall(PetscFree7(ps, pt, la, lb, qa, qb, a));
  PetscCall(PetscFree(u));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_loss_kd_pair(const bo_loss_batch *b, const double *teacher, bo_kd_form form, double T, double weight, double *value, double *grad, double *grad_teacher)
{
  PetscFunctionBeginUser;
  CHECK(form == BO_KD_PAPER || form == BO_KD_CODE, "losses: kd: form %d; expected paper or code", (int)form);
  CHECK(!grad || !grad_teacher || grad != grad_teacher, "losses: kd: grad and grad_teacher are one buffer; expected separate buffers");
  if (form == BO_KD_PAPER) PetscCall(kd_paper(b, teacher, T, weight, value, grad, grad_teacher));
  else PetscCall(kd_code(b, teacher, T, weight, value, grad, grad_teacher));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_loss_dice(const bo_loss_batch *b, const uint8_t *labels, const double *class_w, bo_dice_form form, double weight, double *value, double *grad)
{
  const int64_t n = b ? b->n : 0, k = b ? b->k : 0, G = b ? b->ngroups : 0, K3 = 3 * k;
  double       *p, *a, *agg, *coef, *gp, total = 0;
  int64_t       counted = 0;

  PetscFunctionBeginUser;
  PetscCall(check_batch("dice", b, 1));
  PetscCall(check_labels("dice", n, k, labels));
  PetscCall(check_weights("dice", "class_w", k, class_w));
  CHECK(form == BO_DICE_LINEAR || form == BO_DICE_LOG, "losses: dice: form %d; expected linear or log", (int)form);
  PetscCall(PetscMalloc5((size_t)(n * k) + 1, &p, (size_t)(n * K3) + 1, &a, (size_t)(G * K3), &agg, (size_t)(G * k), &coef, (size_t)(n * k) + 1, &gp));
  bo_softmax_rows(n, k, b->logits, 1.0, p);
  for (int64_t i = 0; i < n; i++) { /* [m p y, m p, m y] of labelled pixels */
    const int    y = labels[i];
    const double m = y == BO_LABEL_IGNORE ? 0.0 : mask_of(b, i);
    double      *ai = a + i * K3;
    for (int64_t c = 0; c < k; c++) {
      ai[c]         = c == y ? m * p[i * k + c] : 0.0;
      ai[k + c]     = m * p[i * k + c];
      ai[2 * k + c] = c == y ? m : 0.0;
    }
  }
  PetscCall(group_sums(b->comm, n, K3, a, b->group, G, agg));
  for (int64_t g = 0; g < G; g++) { /* coef = dL_g/dD_gk for the classes present */
    const double *In = agg + g * K3, *P = In + k, *Gt = In + 2 * k;
    double        W = 0, v = 0;
    for (int64_t c = 0; c < k; c++) {
      coef[g * k + c] = 0;
      if (Gt[c] > 0) W += class_w ? class_w[c] : 1.0;
    }
    if (!(W > 0)) continue;
    for (int64_t c = 0; c < k; c++) {
      const double w = class_w ? class_w[c] : 1.0;
      if (!(Gt[c] > 0) || w == 0) continue;
      const double D = 2 * In[c] / (P[c] + Gt[c]);
      if (form == BO_DICE_LINEAR) v += w * (1 - D), coef[g * k + c] = -w / W;
      else v -= w * log(D), coef[g * k + c] = -w / (W * D);
    }
    total += v / W;
    counted++;
  }
  if (value) *value = counted ? total / (double)counted : 0.0;
  if (grad && counted && weight != 0) {
    for (int64_t i = 0; i < n; i++) {
      const int     y = labels[i];
      const int64_t g = group_of(b, i);
      const double  m = y == BO_LABEL_IGNORE ? 0.0 : mask_of(b, i), *In = agg + g * K3, *P = In + k, *Gt = In + 2 * k;
      for (int64_t c = 0; c < k; c++) {
        const double s = P[c] + Gt[c], cf = coef[g * k + c];
        gp[i * k + c]  = cf == 0 ? 0.0 : cf * m * (2 * (c == y ? 1.0 : 0.0) / s - 2 * In[c] / (s * s));
      }
    }
    bo_softmax_backward(n, k, p, gp, 1.0, weight / (double)counted, grad);
  }
  PetscCall(PetscFree5(p, a, agg, coef, gp));
  PetscFunctionReturn(0);
}

/* g at x = 1 - e: arccos(1 - e) = 2 asin(sqrt(e/2)) and 1 - x^2 = e (2 - e) keep full relative
 * precision for small e (acos(x) of a rounded x does not); the spec's series below 1e-6. */
static double fr_g_of_e(double e)
{
  if (e < 1e-6) return 1 + e / 3 + 2 * e * e / 15;
  return 2 * asin(sqrt(0.5 * e)) / sqrt(e * (2 - e));
}

double bo_fr_g(double x) { return fr_g_of_e(1 - x); }

PetscErrorCode bo_loss_fisher_rao(const bo_loss_batch *b, const double *logits2, double guard, double weight, double *value, double *grad, double *grad2)
{
  const int64_t n = b ? b->n : 0, k = b ? b->k : 0;
  double       *p, *q, *a, *coef, tot[2];

  PetscFunctionBeginUser;
  PetscCall(check_batch("fisher-rao", b, 1));
  PetscCall(check_finite("fisher-rao", "logits2", n, k, logits2));
  CHECK(isfinite(guard) && guard >= 0 && guard < 1, "losses: fisher-rao: guard = %g; expected 0 <= guard < 1", guard);
  PetscCall(PetscMalloc4((size_t)(n * k) + 1, &p, (size_t)(n * k) + 1, &q, (size_t)(2 * n) + 1, &a, (size_t)(2 * n) + 1, &coef));
  bo_softmax_rows(n, k, b->logits, 1.0, p);
  bo_softmax_rows(n, k, logits2, 1.0, q);
  for (int64_t i = 0; i < n; i++) {
    double h = 0; /* 1 - BC = (1/2) sum (sqrt p - sqrt q)^2 >= 0: the clamp BC <= 1, without cancellation */
    for (int64_t c = 0; c < k; c++) {
      const double d = sqrt(p[i * k + c]) - sqrt(q[i * k + c]);
      h += d * d;
    }
    const double e = 0.5 * h + guard, t = 2 * asin(sqrt(PetscMin(0.5 * e, 1.0))); /* arccos(1 - e) */
    coef[2 * i]     = 1 - 0.5 * h;
    coef[2 * i + 1] = fr_g_of_e(e);
    a[2 * i]        = mask_of(b, i) * t * t;
    a[2 * i + 1]    = mask_of(b, i);
  }
  PetscCall(group_sums(b->comm, n, 2, a, NULL, 1, tot));
  if (value) *value = tot[1] > 0 ? tot[0] / tot[1] : 0.0;
  if (tot[1] > 0 && weight != 0)
    for (int64_t i = 0; i < n; i++) {
      const double bc = coef[2 * i], f = -weight * mask_of(b, i) / tot[1] * coef[2 * i + 1]; /* -2 g / 2 */
      for (int64_t c = 0; c < k; c++) {
        const double pq = sqrt(p[i * k + c] * q[i * k + c]);
        if (grad2) grad2[i * k + c] += f * (pq - q[i * k + c] * bc);
        if (grad) grad[i * k + c] += f * (pq - p[i * k + c] * bc);
      }
    }
  PetscCall(PetscFree4(p, q, a, coef));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- penalties */

double bo_penalty(bo_penalty_kind kind, double z, double t, double *deriv)
{
  double v, d;
  if (kind == BO_PENALTY_QUAD) {
    const double r = z > 0 ? z : 0;
    v = r * r, d = 2 * r;
  } else if (z <= -1 / (t * t)) {
    v = -log(-z) / t, d = -1 / (t * z);
  } else {
    v = t * z - log(1 / (t * t)) / t + 1 / t, d = t;
  }
  if (deriv) *deriv = d;
  return v;
}

/* ---------------------------------------------------------------- shape descriptors */

static PetscErrorCode check_image(const char *term, int64_t h, int64_t w, int64_t k, const double *logits, const double *mask)
{
  PetscFunctionBeginUser;
  CHECK(h >= 1 && w >= 1 && h < INT32_MAX / w, "losses: %s: image %lld x %lld; expected h, w >= 1", term, (long long)h, (long long)w);
  CHECK(k >= 1 && k < INT32_MAX, "losses: %s: k = %lld; expected k >= 1 classes", term, (long long)k);
  PetscCall(check_finite(term, "logits", h * w, k, logits));
  PetscCall(check_weights(term, "mask", h * w, mask));
  PetscFunctionReturn(0);
}

/* s = mask o p for class c (one column of s_all). */
static void class_map(int64_t n, int64_t k, const double *p, const double *mask, int64_t c, double *s)
{
  for (int64_t i = 0; i < n; i++) s[i] = (mask ? mask[i] : 1.0) * p[i * k + c];
}

/* Ls (8-neighbour graph Laplacian) and l = s^T L s = sum over unordered pairs (s_i - s_j)^2. */
static double laplacian(int64_t h, int64_t w, const double *s, double *Ls)
{
  double len = 0;
  if (Ls) memset(Ls, 0, sizeof *Ls * (size_t)(h * w));
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      static const int off[4][2] = {{0, 1}, {1, -1}, {1, 0}, {1, 1}}; /* each unordered pair once */
      const int64_t    i         = y * w + x;
      for (int o = 0; o < 4; o++) {
        const int64_t yy = y + off[o][0], xx = x + off[o][1];
        if (yy >= h || xx < 0 || xx >= w) continue;
        const int64_t j = yy * w + xx;
        const double  e = s[i] - s[j];
        len += e * e;
        if (Ls) Ls[i] += e, Ls[j] -= e;
      }
    }
  return len;
}

static void descriptors_of_map(int64_t h, int64_t w, const double *s, double *d)
{
  double S = 0, sx = 0, sy = 0, vx = 0, vy = 0;
  for (int64_t i = 0; i < h * w; i++) S += s[i], sx += s[i] * (double)(i % w), sy += s[i] * (double)(i / w);
  d[BO_SHAPE_SIZE] = S;
  d[BO_SHAPE_CX] = d[BO_SHAPE_CY] = d[BO_SHAPE_DX] = d[BO_SHAPE_DY] = 0;
  if (S > 0) {
    const double cx = sx / S, cy = sy / S;
    for (int64_t i = 0; i < h * w; i++) {
      const double ex = (double)(i % w) - cx, ey = (double)(i / w) - cy;
      vx += s[i] * ex * ex, vy += s[i] * ey * ey;
    }
    d[BO_SHAPE_CX] = cx, d[BO_SHAPE_CY] = cy;
    d[BO_SHAPE_DX] = sqrt(vx / S), d[BO_SHAPE_DY] = sqrt(vy / S);
  }
  d[BO_SHAPE_LENGTH] = laplacian(h, w, s, NULL);
}

PetscErrorCode bo_shape_descriptors(int64_t h, int64_t w, int64_t k, const double *logits, const double *mask, double *desc)
{
  double *p, *s;

  PetscFunctionBeginUser;
  PetscCall(check_image("shape", h, w, k, logits, mask));
  CHECK(desc, "losses: shape: desc is NULL; expected k x %d descriptors", BO_SHAPE_NDESC);
  PetscCall(PetscMalloc2((size_t)(h * w * k), &p, (size_t)(h * w), &s));
  bo_softmax_rows(h * w, k, logits, 1.0, p);
  for (int64_t c = 0; c < k; c++) {
    class_map(h * w, k, p, mask, c, s);
    descriptors_of_map(h, w, s, desc + c * BO_SHAPE_NDESC);
  }
  PetscCall(PetscFree2(p, s));
  PetscFunctionReturn(0);
}

/* gp[:, c] = dL/dp for class c from dd = dL/d descriptors (s = m p). */
static void shape_chain(int64_t h, int64_t w, int64_t k, const double *p, const double *mask, const double *dd_all, double *s, double *Ls, double *gp)
{
  const int64_t n = h * w;
  for (int64_t c = 0; c < k; c++) {
    const double *dd = dd_all + c * BO_SHAPE_NDESC;
    double        d[BO_SHAPE_NDESC];
    class_map(n, k, p, mask, c, s);
    descriptors_of_map(h, w, s, d);
    laplacian(h, w, s, Ls);
    const double S = d[BO_SHAPE_SIZE], cx = d[BO_SHAPE_CX], cy = d[BO_SHAPE_CY], dx = d[BO_SHAPE_DX], dy = d[BO_SHAPE_DY];
    for (int64_t i = 0; i < n; i++) {
      const double ex = (double)(i % w) - cx, ey = (double)(i / w) - cy;
      double       ds = dd[BO_SHAPE_SIZE] + 2 * dd[BO_SHAPE_LENGTH] * Ls[i];
      if (S > 0) {
        ds += (dd[BO_SHAPE_CX] * ex + dd[BO_SHAPE_CY] * ey) / S;
        if (dx > 0) ds += dd[BO_SHAPE_DX] * (ex * ex - dx * dx) / (2 * dx * S);
        if (dy > 0) ds += dd[BO_SHAPE_DY] * (ey * ey - dy * dy) / (2 * dy * S);
      }
      gp[i * k + c] = (mask ? mask[i] : 1.0) * ds;
    }
  }
}

PetscErrorCode bo_shape_backward(int64_t h, int64_t w, int64_t k, const double *logits, const double *mask, const double *ddesc, double *grad)
{
  const int64_t n = h * w;
  double       *p, *s, *Ls, *gp;

  PetscFunctionBeginUser;
  PetscCall(check_image("shape", h, w, k, logits, mask));
  PetscCall(check_finite("shape", "ddesc", k, BO_SHAPE_NDESC, ddesc));
  CHECK(grad, "losses: shape: grad is NULL; expected an h w x k gradient");
  PetscCall(PetscMalloc4((size_t)(n * k), &p, (size_t)n, &s, (size_t)n, &Ls, (size_t)(n * k), &gp));
  bo_softmax_rows(n, k, logits, 1.0, p);
  shape_chain(h, w, k, p, mask, ddesc, s, Ls, gp);
  bo_softmax_backward(n, k, p, gp, 1.0, 1.0, grad);
  PetscCall(PetscFree4(p, s, Ls, gp));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_loss_shape(int64_t h, int64_t w, int64_t k, const double *logits, const double *mask, const double *lo, const double *hi, bo_penalty_kind kind, double t, double weight, double *value, double *grad)
{
  const int64_t nd = k * BO_SHAPE_NDESC;
  double       *f, *dd, v = 0;

  PetscFunctionBeginUser;
  PetscCall(check_image("shape", h, w, k, logits, mask));
  CHECK(kind == BO_PENALTY_ELB || kind == BO_PENALTY_QUAD, "losses: shape: penalty %d; expected elb or quad", (int)kind);
  CHECK(isfinite(t) && t > 0, "losses: shape: t = %g; expected a finite t > 0", t);
  PetscCall(check_finite("shape", "lo", k, BO_SHAPE_NDESC, lo));
  PetscCall(check_finite("shape", "hi", k, BO_SHAPE_NDESC, hi));
  PetscCall(PetscMalloc2((size_t)nd, &f, (size_t)nd, &dd));
  PetscCall(bo_shape_descriptors(h, w, k, logits, mask, f));
  for (int64_t j = 0; j < nd; j++) {
    double d1, d2;
    dd[j] = 0;
    if (!(lo[j] <= hi[j])) continue;
    v += bo_penalty(kind, f[j] - hi[j], t, &d1) + bo_penalty(kind, lo[j] - f[j], t, &d2);
    dd[j] = weight * (d1 - d2) / (double)(h * w);
  }
  if (value) *value = v / (double)(h * w);
  if (grad && weight != 0) PetscCall(bo_shape_backward(h, w, k, logits, mask, dd, grad));
  PetscCall(PetscFree2(f, dd));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- dense CRF */

PetscErrorCode bo_loss_crf(int64_t h, int64_t w, int64_t k, const double *logits, const double *mask, int64_t c, const double *image, double sigma_xy, double sigma_rgb, double weight, double *value, double *grad)
{
  const int64_t n = h * w;
  double       *p, *S, *WS, v = 0;

  PetscFunctionBeginUser;
  PetscCall(check_image("crf", h, w, k, logits, mask));
  CHECK(c >= 1 && c < 64, "losses: crf: %lld image channels; expected 1 <= c < 64", (long long)c);
  PetscCall(check_finite("crf", "image", n, c, image));
  CHECK(isfinite(sigma_xy) && sigma_xy > 0, "losses: crf: sigma_xy = %g; expected a finite sigma_xy > 0", sigma_xy);
  CHECK(isfinite(sigma_rgb) && sigma_rgb > 0, "losses: crf: sigma_rgb = %g; expected a finite sigma_rgb > 0", sigma_rgb);
  PetscCall(PetscMalloc3((size_t)(n * k), &p, (size_t)(n * k), &S, (size_t)(n * k), &WS));
  bo_softmax_rows(n, k, logits, 1.0, p);
  for (int64_t i = 0; i < n * k; i++) S[i] = (mask ? mask[i / k] : 1.0) * p[i], WS[i] = 0;
  const double axy = 0.5 / (sigma_xy * sigma_xy), argb = 0.5 / (sigma_rgb * sigma_rgb);
  for (int64_t i = 0; i < n; i++) /* W S, each pair once (W symmetric, zero diagonal) */
    for (int64_t j = i + 1; j < n; j++) {
      const double dx = (double)(i % w - j % w), dy = (double)(i / w - j / w);
      double       dc = 0;
      for (int64_t q = 0; q < c; q++) {
        const double e = image[i * c + q] - image[j * c + q];
        dc += e * e;
      }
      const double wij = exp(-axy * (dx * dx + dy * dy) - argb * dc);
      for (int64_t q = 0; q < k; q++) WS[i * k + q] += wij * S[j * k + q], WS[j * k + q] += wij * S[i * k + q];
    }
  for (int64_t i = 0; i < n * k; i++) v -= S[i] * WS[i];
  if (value) *value = v;
  if (grad && weight != 0) {
    for (int64_t i = 0; i < n * k; i++) WS[i] = -2 * (mask ? mask[i / k] : 1.0) * WS[i]; /* dL/dp */
    bo_softmax_backward(n, k, p, WS, 1.0, weight, grad);
  }
  PetscCall(PetscFree3(p, S, WS));
  PetscFunctionReturn(0);
}
