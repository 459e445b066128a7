/* fire_gauss.c - FIRE's linear Gaussian toy (see fire_gauss.h; spec losses.md section 4 (a)).
 *
 * Closed-form accuracies.  Given y, x = y mu + sigma n with n ~ N(0, I), so
 *   y z = y w^T x + y b = m + y b + sigma y w^T n,   m = w^T mu,
 * and y w^T n ~ N(0, ||w||_2^2) (symmetric, whatever y).  Hence P(y z > 0 | y) = Phi((m + y b)/s),
 * s = sigma ||w||_2, and with P(y = +-1) = 1/2, clean = (1/2)[Phi((m + b)/s) + Phi((m - b)/s)].
 * Robustly correct means y (z + w^T delta) > 0 for every ||delta||_inf <= eps; the minimum over the
 * ball is y z - eps ||w||_1 (Hoelder, attained at delta = -y eps sign(w)), so robust is the same
 * formula with m replaced by m - r, r = eps ||w||_1.
 *
 * The optimal front (linear classifiers).
 * (1) b = 0.  For a >= 0, d/db [Phi((a + b)/s) + Phi((a - b)/s)] = [phi((a + b)/s) - phi((a - b)/s)]/s
 *     has the sign of -b (|a + b| >= |a - b| iff a b >= 0): b = 0 maximises the clean (a = m) and the
 *     robust (a = m - r) accuracy at once whenever m - r >= 0.  If m - r < 0, robust =
 *     1/2 - (1/2)[Phi((b - a)/s) - Phi((b + a)/s)] < 1/2 for every b.
 * (2) With b = 0 both accuracies are scale-free: on ||u||_2 = 1, C = Phi(a/sigma), R = Phi((a - eps l)/sigma),
 *     a = mu^T u, l = ||u||_1; Phi is increasing, so the front is that of (a, a - eps l).  Let
 *     f(L) = max{mu^T u : ||u||_2 <= 1, ||u||_1 <= L}.  f is concave (a mix of feasible points for
 *     L1 and L2 is feasible for the mixed L), so L -> (f(L), f(L) - eps L) is a concave map and the
 *     set of attainable (a, r) below it is convex: every Pareto point maximises a non-negative
 *     combination (1 - t) a + t (a - eps l) = mu^T u - kappa ||u||_1, kappa = t eps in [0, eps].
 *     Over the unit ball, stationarity of mu^T u - kappa ||u||_1 - (lambda/2)(||u||^2 - 1) gives
 *     u = soft(mu, kappa)/||soft(mu, kappa)||_2 (soft thresholding), unique for kappa < max |mu_j|.
 *     kappa = 0 is the Bayes classifier u ~ mu; kappa = eps the most robust linear classifier.
 * (3) If the Bayes classifier has m - r >= 0, so does every front classifier (r grows along it), and
 *     any classifier with m - r < 0 (R < 1/2, C <= C_Bayes) is dominated by the Bayes point; one with
 *     b != 0 by the same w with b = 0: the curve is the whole front over linear classifiers
 *     (*exact = 1).  Otherwise constant classifiers (R = C = 1/2) may add points: *exact = 0.
 * The front is over linear classifiers, the toy's model class; its clean end is Bayes-optimal among
 * all classifiers.  (Whether some non-linear classifier beats its interior is not claimed here.)
 *
 * Why hand-written: the per-sample losses are scalar closed forms of the binary logit (the
 * Fisher-Rao term is the same value as losses.h bo_loss_fisher_rao on logits (0, z), checked in
 * tests/unit/test_fire_gauss.c), and each sample needs both endpoints evaluated to pick the max.
 */
#include "boundopt/fire_gauss.h"
#include "boundopt/error.h"
#include "boundopt/optim.h"
#include "boundopt/reduce.h"
#include "boundopt/rng.h"
#include <math.h>
#include <string.h>

const char *const bo_fg_method_names[BO_FG_NMETHODS] = {"ce", "at", "trades", "fire"};

#define CHECK(cond, ...) PetscCheck(cond, PETSC_COMM_SELF, BO_ERR_INPUT, __VA_ARGS__)

static PetscLogEvent ev_objective, ev_train;

static PetscErrorCode register_events(void)
{
  static PetscBool done = PETSC_FALSE;
  PetscClassId     id;

  PetscFunctionBeginUser;
  if (done) PetscFunctionReturn(0);
  PetscCall(PetscClassIdRegister("FIRE Gauss", &id));
  PetscCall(PetscLogEventRegister("FGObjective", id, &ev_objective));
  PetscCall(PetscLogEventRegister("FGTrain", id, &ev_train));
  done = PETSC_TRUE;
  PetscFunctionReturn(0);
}

static PetscErrorCode check_model(const bo_fg_model *m)
{
  PetscFunctionBeginUser;
  CHECK(m && m->d >= 1 && m->mu, "fire-gauss: model: no model or d < 1; expected d >= 1 and d class-mean values");
  CHECK(isfinite(m->sigma) && m->sigma > 0, "fire-gauss: sigma = %g; expected sigma > 0", m->sigma);
  for (int64_t j = 0; j < m->d; j++) CHECK(isfinite(m->mu[j]), "fire-gauss: mu[%lld] = %g; expected finite class means", (long long)j, m->mu[j]);
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- data */

PetscErrorCode bo_fg_data_create(MPI_Comm comm, const bo_fg_model *m, uint64_t seed, uint32_t purpose, int64_t n, bo_fg_data *data)
{
  PetscMPIInt rank, size;

  PetscFunctionBeginUser;
  PetscCall(check_model(m));
  CHECK(n >= 1, "fire-gauss: data set of %lld samples; expected n >= 1", (long long)n);
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  memset(data, 0, sizeof *data);
  data->comm = comm;
  data->d    = m->d;
  bo_rows_partition(n, rank, size, &data->rows);
  const int64_t nl = bo_rows_local(&data->rows);
  PetscCall(PetscMalloc2(nl * m->d + 1, &data->x, nl + 1, &data->y));
  for (int64_t i = 0; i < nl; i++) {
    bo_rng r;
    bo_rng_init(&r, seed, (uint64_t)(data->rows.lo + i), purpose);
    const double y = bo_rng_uniform(&r) < 0.5 ? 1.0 : -1.0;
    data->y[i] = y;
    for (int64_t j = 0; j < m->d; j++) data->x[i * m->d + j] = y * m->mu[j] + m->sigma * bo_rng_normal(&r);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_fg_data_destroy(bo_fg_data *data)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree2(data->x, data->y));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- per-sample terms */

/* log(1 + e^t) without overflow or loss for large |t|. */
static double softplus(double t) { return t > 0 ? t + log1p(exp(-t)) : log1p(exp(t)); }
static double sigmoid(double t)
{
  if (t >= 0) return 1 / (1 + exp(-t));
  const double e = exp(t);
  return e / (1 + e);
}

/* arctan(e^{z/2}) - pi/4 = (1/2) gd(z/2) = (1/2) arctan(sinh(z/2)): odd, no cancellation near 0. */
double bo_fg_psi(double z) { return 0.5 * atan(sinh(0.5 * z)); }
static double dpsi(double z) { return 0.25 / cosh(0.5 * z); }
/* psi and psi' from one sinh: cosh = sqrt(1 + sinh^2) (sinh -> inf gives psi' = 0, correctly). */
static double psi_d(double z, double *d)
{
  const double sh = sinh(0.5 * z);
  *d = isfinite(sh) ? 0.25 / sqrt(1 + sh * sh) : 0.0;
  return 0.5 * atan(sh);
}

double bo_fg_fr2(double z, double zp, double *dz, double *dzp)
{
  const double t = bo_fg_psi(z) - bo_fg_psi(zp);
  if (dz) *dz = 2 * t * dpsi(z);
  if (dzp) *dzp = -2 * t * dpsi(zp);
  return t * t;
}

/* KL = p log(p/p') + (1-p) log((1-p)/(1-p')) = softplus(-z') - softplus(-z) + (1 - p)(z' - z),
 * from log sigma(t) = -softplus(-t) and softplus(t) - softplus(-t) = t. */
double bo_fg_kl(double z, double zp, double *dz, double *dzp)
{
  const double p = sigmoid(z), q = 1 - p; /* q = sigmoid(-z) */
  const double v = softplus(-zp) - softplus(-z) + sigmoid(-z) * (zp - z);
  if (dz) *dz = p * q * (z - zp);
  if (dzp) *dzp = sigmoid(zp) - p;
  return v > 0 ? v : 0.0 * v; /* rounding can leave -1e-17 where z' = z; keep the sign of KL >= 0 */
}

double bo_fg_ce(double z, double y, double *dz)
{
  if (dz) *dz = -y * sigmoid(-y * z);
  return softplus(-y * z);
}

static double regulariser(bo_fg_method method, double z, double zp, double *dz, double *dzp)
{
  return method == BO_FG_FIRE ? bo_fg_fr2(z, zp, dz, dzp) : bo_fg_kl(z, zp, dz, dzp);
}

int bo_fg_inner_max(bo_fg_method method, double z, double y, double r)
{
  const int adverse = y > 0 ? -1 : 1;
  if (method == BO_FG_CE || method == BO_FG_AT || r == 0) return adverse;
  const double up = regulariser(method, z, z + r, NULL, NULL), down = regulariser(method, z, z - r, NULL, NULL);
  return up > down ? 1 : down > up ? -1 : adverse;
}

double bo_fg_sample_loss(bo_fg_method method, double beta, double z, double y, double r, double *dz, double *dzp, int *s)
{
  const int adverse = y > 0 ? -1 : 1;
  double    ce, gce, reg;

  if (method == BO_FG_CE) {
    ce = bo_fg_ce(z, y, &gce);
    *dz = gce, *dzp = 0, *s = 0;
    return ce;
  }
  if (method == BO_FG_AT) {
    ce = bo_fg_ce(z + adverse * r, y, &gce);
    *dz = 0, *dzp = gce, *s = adverse;
    return ce;
  }
  /* both endpoints with their partials (the same comparison as bo_fg_inner_max, one pass) */
  double up_z, up_zp, dn_z, dn_zp, up, dn;
  if (method == BO_FG_FIRE) { /* psi(z) and its derivative once for both endpoints */
    double       d0, du, dd;
    const double p0 = psi_d(z, &d0), pu = psi_d(z + r, &du), pd = psi_d(z - r, &dd), tu = p0 - pu, td = p0 - pd;
    up = tu * tu, up_z = 2 * tu * d0, up_zp = -2 * tu * du;
    dn = td * td, dn_z = 2 * td * d0, dn_zp = -2 * td * dd;
  } else {
    up = regulariser(method, z, z + r, &up_z, &up_zp);
    dn = regulariser(method, z, z - r, &dn_z, &dn_zp);
  }
  const int    e  = r == 0 ? adverse : up > dn ? 1 : dn > up ? -1 : adverse;
  ce  = bo_fg_ce(z, y, &gce);
  reg = e > 0 ? up : dn;
  *dz = gce + beta * (e > 0 ? up_z : dn_z), *dzp = beta * (e > 0 ? up_zp : dn_zp), *s = e;
  return ce + beta * reg;
}

/* ---------------------------------------------------------------- objective */

static PetscErrorCode check_opts(const bo_fg_train_opts *o, PetscBool training)
{
  PetscFunctionBeginUser;
  CHECK(o && o->method >= 0 && o->method < BO_FG_NMETHODS, "fire-gauss: method; expected ce, at, trades or fire");
  CHECK(isfinite(o->beta) && o->beta >= 0, "fire-gauss: beta = %g; expected beta >= 0", o->beta);
  CHECK(isfinite(o->eps) && o->eps >= 0, "fire-gauss: eps = %g; expected eps >= 0", o->eps);
  if (training) {
    CHECK(o->iterations >= 1, "fire-gauss: %lld iterations; expected at least 1", (long long)o->iterations);
    CHECK(isfinite(o->lr) && o->lr > 0, "fire-gauss: lr = %g; expected lr > 0", o->lr);
  }
  PetscFunctionReturn(0);
}

static double sign_of(double v) { return v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0; }

/* tot (d + 3) = the exact sums [loss, sum_i a_i x_i (d), sum_i a_i, sum_i s_i dz'_i], a = dz + dz'. */
static PetscErrorCode objective_sums(const bo_fg_data *data, const bo_fg_train_opts *o, const double *wb, double *tot)
{
  const int64_t d = data->d, len = d + 3, ntl = data->rows.tile_hi - data->rows.tile_lo;
  double       *part, l1 = 0, mx;
  bo_exactsum   sum;

  PetscFunctionBeginUser;
  PetscCall(register_events());
  PetscCall(check_opts(o, PETSC_FALSE));
  for (int64_t j = 0; j <= d; j++) CHECK(isfinite(wb[j]), "fire-gauss: wb[%lld] = %g; expected finite parameters", (long long)j, wb[j]);
  PetscCall(PetscLogEventBegin(ev_objective, 0, 0, 0, 0));
  for (int64_t j = 0; j < d; j++) l1 += fabs(wb[j]);
  const double r = o->eps * l1;
  /* One partial per tile, rows in order: [loss, sum a x (d), sum a, sum s dz'], a = dz + dz'. */
  PetscCall(PetscCalloc1(ntl * len + 1, &part));
  for (int64_t t = 0; t < ntl; t++) {
    int64_t lo, hi;
    double *pt = part + t * len;
    bo_tile_bounds(data->rows.n, data->rows.tile_lo + t, &lo, &hi);
    for (int64_t i = lo - data->rows.lo; i < hi - data->rows.lo; i++) {
      const double *x = data->x + i * d;
      double        z = wb[d], dz, dzp;
      int           s;
      for (int64_t j = 0; j < d; j++) z += wb[j] * x[j];
      pt[0] += bo_fg_sample_loss(o->method, o->beta, z, data->y[i], r, &dz, &dzp, &s);
      const double a = dz + dzp;
      for (int64_t j = 0; j < d; j++) pt[1 + j] += a * x[j];
      pt[1 + d] += a;
      pt[2 + d] += s * dzp;
    }
  }
  PetscCall(bo_reduce_max_abs(data->comm, ntl * len, part, &mx));
  PetscCheck(isfinite(mx), PETSC_COMM_SELF, BO_ERR_RUNTIME, "fire-gauss: the objective is not finite; expected finite parameters and data");
  PetscCall(bo_exactsum_create(len, mx * (double)data->rows.ntiles, &sum));
  for (int64_t t = 0; t < ntl; t++) PetscCall(bo_exactsum_add(sum, part + t * len));
  PetscCall(bo_exactsum_allreduce(data->comm, sum, tot));
  PetscCall(bo_exactsum_destroy(&sum));
  PetscCall(PetscFree(part));
  PetscCall(PetscLogEventEnd(ev_objective, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_fg_objective(const bo_fg_data *data, const bo_fg_train_opts *o, const double *wb, double *value, double *grad)
{
  const int64_t d = data->d;
  double       *tot;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(d + 3, &tot));
  PetscCall(objective_sums(data, o, wb, tot));
  const double inv = 1.0 / (double)data->rows.n;
  if (value) *value = tot[0] * inv;
  if (grad) {
    for (int64_t j = 0; j < d; j++) grad[j] = (tot[1 + j] + o->eps * sign_of(wb[j]) * tot[2 + d]) * inv;
    grad[d] = tot[1 + d] * inv;
  }
  PetscCall(PetscFree(tot));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_fg_stationarity(const bo_fg_data *data, const bo_fg_train_opts *o, const double *wb, double zero_tol, double *norm)
{
  const int64_t d = data->d;
  double       *tot, wmax = 0, s2;

  PetscFunctionBeginUser;
  CHECK(isfinite(zero_tol) && zero_tol >= 0, "fire-gauss: zero_tol = %g; expected zero_tol >= 0", zero_tol);
  PetscCall(PetscMalloc1(d + 3, &tot));
  PetscCall(objective_sums(data, o, wb, tot));
  const double inv = 1.0 / (double)data->rows.n, c = fabs(o->eps * tot[2 + d] * inv);
  for (int64_t j = 0; j < d; j++) wmax = PetscMax(wmax, fabs(wb[j]));
  s2 = tot[1 + d] * inv * tot[1 + d] * inv;
  for (int64_t j = 0; j < d; j++) {
    const double a = tot[1 + j] * inv;
    /* at w_j = 0 the subdifferential in w_j is a + [-c, c]: its least |.| is max(|a| - c, 0) */
    const double g = fabs(wb[j]) <= zero_tol * wmax ? PetscMax(fabs(a) - c, 0.0) : a + o->eps * sign_of(wb[j]) * tot[2 + d] * inv;
    s2 += g * g;
  }
  *norm = sqrt(s2);
  PetscCall(PetscFree(tot));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_fg_train(const bo_fg_data *data, const bo_fg_train_opts *o, bo_fg_monitor_fn monitor, void *ctx, double *wb, double *history, double *value_final, double *gnorm_final)
{
  const int64_t np = data->d + 1;
  bo_optim_opts oo;
  bo_optim      opt;
  double       *g, v;

  PetscFunctionBeginUser;
  PetscCall(register_events());
  PetscCall(check_opts(o, PETSC_TRUE));
  PetscCall(PetscLogEventBegin(ev_train, 0, 0, 0, 0));
  bo_optim_defaults_adam(&oo);
  oo.lr = o->lr;
  PetscCall(bo_optim_create(&oo, np, &opt));
  PetscCall(PetscMalloc1(np, &g));
  PetscCall(PetscArrayzero(wb, np));
  for (int64_t t = 0; t < o->iterations; t++) {
    double gn = 0;
    PetscCall(bo_fg_objective(data, o, wb, &v, g));
    for (int64_t j = 0; j < np; j++) gn += g[j] * g[j];
    if (history) history[t] = v;
    if (monitor) PetscCall(monitor(t + 1, v, sqrt(gn), ctx));
    opt.o.lr = o->lr * 0.5 * (1 + cos(PETSC_PI * (double)t / (double)o->iterations));
    PetscCall(bo_optim_step(&opt, g, wb));
  }
  PetscCall(bo_fg_objective(data, o, wb, &v, NULL));
  if (value_final) *value_final = v;
  if (gnorm_final) PetscCall(bo_fg_stationarity(data, o, wb, 1e-3, gnorm_final));
  PetscCall(PetscFree(g));
  PetscCall(bo_optim_destroy(&opt));
  PetscCall(PetscLogEventEnd(ev_train, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- accuracies */

static double Phi(double t) { return 0.5 * erfc(-t * 0.70710678118654752440); }

/* (1/2)[P(correct | y = +1) + P(correct | y = -1)] for margin a (m or m - r), bias b, spread s. */
static double accuracy_of(double a, double b, double s)
{
  if (s == 0) return 0.5 * ((a + b > 0) + (a - b > 0));
  return 0.5 * (Phi((a + b) / s) + Phi((a - b) / s));
}

void bo_fg_accuracy(const bo_fg_model *m, const double *wb, double eps, double *clean, double *robust)
{
  double a = 0, l1 = 0, l2 = 0;
  for (int64_t j = 0; j < m->d; j++) {
    a += wb[j] * m->mu[j];
    l1 += fabs(wb[j]);
    l2 += wb[j] * wb[j];
  }
  const double s = m->sigma * sqrt(l2), b = wb[m->d];
  if (clean) *clean = accuracy_of(a, b, s);
  if (robust) *robust = accuracy_of(a - eps * l1, b, s);
}

PetscErrorCode bo_fg_accuracy_empirical(const bo_fg_data *data, const double *wb, double eps, double *clean, double *robust)
{
  const int64_t d = data->d, nl = bo_rows_local(&data->rows);
  int64_t       cnt[2] = {0, 0}, tot[2];
  double        l1 = 0;

  PetscFunctionBeginUser;
  for (int64_t j = 0; j < d; j++) l1 += fabs(wb[j]);
  for (int64_t i = 0; i < nl; i++) {
    double z = wb[d];
    for (int64_t j = 0; j < d; j++) z += wb[j] * data->x[i * d + j];
    cnt[0] += data->y[i] * z > 0;
    cnt[1] += data->y[i] * z - eps * l1 > 0;
  }
  PetscCallMPI(MPI_Allreduce(cnt, tot, 2, MPI_INT64_T, MPI_SUM, data->comm));
  if (clean) *clean = (double)tot[0] / (double)data->rows.n;
  if (robust) *robust = (double)tot[1] / (double)data->rows.n;
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- the front */

PetscErrorCode bo_fg_front(const bo_fg_model *m, double eps, int64_t npoints, double *kappa, double *clean, double *robust, int *exact)
{
  double mumax = 0, *u, cb, rb;

  PetscFunctionBeginUser;
  PetscCall(check_model(m));
  CHECK(isfinite(eps) && eps >= 0, "fire-gauss: eps = %g; expected eps >= 0", eps);
  CHECK(npoints >= 2, "fire-gauss: front of %lld points; expected at least 2", (long long)npoints);
  for (int64_t j = 0; j < m->d; j++) mumax = PetscMax(mumax, fabs(m->mu[j]));
  CHECK(mumax > 0, "fire-gauss: mu = 0; expected class means that differ");
  const double kmax = PetscMin(eps, mumax * (1 - 1e-9));
  PetscCall(PetscMalloc1(m->d + 1, &u));
  for (int64_t k = 0; k < npoints; k++) {
    kappa[k] = kmax * (double)k / (double)(npoints - 1);
    for (int64_t j = 0; j < m->d; j++) u[j] = sign_of(m->mu[j]) * PetscMax(fabs(m->mu[j]) - kappa[k], 0.0);
    u[m->d] = 0;
    bo_fg_accuracy(m, u, eps, &clean[k], &robust[k]);
  }
  if (exact) {
    for (int64_t j = 0; j < m->d; j++) u[j] = m->mu[j];
    u[m->d] = 0;
    bo_fg_accuracy(m, u, eps, &cb, &rb);
    *exact = rb >= 0.5;
  }
  PetscCall(PetscFree(u));
  PetscFunctionReturn(0);
}

/* max over t in [0, 1] of min(f0 + t (f1 - f0), g0 + t (g1 - g0)): at an end or where they cross. */
static double segment_maxmin(double f0, double f1, double g0, double g1)
{
  double best = PetscMax(PetscMin(f0, g0), PetscMin(f1, g1));
  const double den = (f1 - f0) - (g1 - g0);
  if (den != 0) {
    const double t = (g0 - f0) / den;
    if (t > 0 && t < 1) best = PetscMax(best, PetscMin(f0 + t * (f1 - f0), g0 + t * (g1 - g0)));
  }
  return best;
}

double bo_fg_front_gap(int64_t npoints, const double *front_clean, const double *front_robust, double clean, double robust)
{
  double gap = 0;
  for (int64_t k = 0; k + 1 < npoints; k++)
    gap = PetscMax(gap, segment_maxmin(front_clean[k] - clean, front_clean[k + 1] - clean, front_robust[k] - robust, front_robust[k + 1] - robust));
  if (npoints == 1) gap = PetscMax(gap, PetscMin(front_clean[0] - clean, front_robust[0] - robust));
  return gap;
}
