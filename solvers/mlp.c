/* mlp.c - multilayer perceptron, PGD attacks and the CE / AT / TRADES / FIRE losses (see mlp.h).
 *
 * Every forward and backward is a chain of dgemm calls on one tile of at most BO_MLP_TILE_ROWS rows
 * (OpenBLAS on one thread, so a tile's bits do not depend on the thread setting).  The loss terms
 * come from losses.c (bo_loss_ce, bo_loss_fisher_rao, bo_softmax_rows) on PETSC_COMM_SELF per tile;
 * only TRADES' per-row KL(p || q) between two logit rows is written here, as losses.c has none.
 */
#include "boundopt/mlp.h"
#include "boundopt/error.h"
#include "boundopt/losses.h"
#include "boundopt/reduce.h"
#include "boundopt/rng.h"
#include <cblas.h>
#include <math.h>
#include <string.h>

extern void openblas_set_num_threads(int nthreads);
extern int  openblas_get_num_threads(void);

#define CHECK(cond, ...) PetscCheck(cond, PETSC_COMM_SELF, BO_ERR_INPUT, __VA_ARGS__)

enum { RNG_INIT = 0x4d4c5049, RNG_START = 0x4d4c5053 }; /* purposes: weights, and (xor'ed) attack starts */

const char *const bo_mlp_loss_names[] = {"ce", "at", "trades", "fire"};

static PetscLogEvent ev_grad, ev_eval, ev_feat; /* -log_view: batch gradients (attacks included), evaluation, features */

static PetscErrorCode register_events(void)
{
  PetscFunctionBeginUser;
  if (!ev_grad) {
    PetscClassId id;
    PetscCall(PetscClassIdRegister("boundopt MLP", &id));
    PetscCall(PetscLogEventRegister("MLPBatchGrad", id, &ev_grad));
    PetscCall(PetscLogEventRegister("MLPEvaluate", id, &ev_eval));
    PetscCall(PetscLogEventRegister("MLPFeatures", id, &ev_feat));
  }
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- network */

PetscErrorCode bo_mlp_create(int64_t d, int nhidden, const int64_t *hidden, int64_t k, bo_mlp *net)
{
  PetscFunctionBeginUser;
  CHECK(net, "mlp: network is NULL; expected a bo_mlp to fill");
  CHECK(nhidden >= 0 && nhidden < BO_MLP_MAX_LAYERS, "mlp: %d hidden layers; expected 0 to %d", nhidden, BO_MLP_MAX_LAYERS - 1);
  CHECK(d >= 1 && d < INT32_MAX && k >= 2 && k <= 255, "mlp: %lld inputs and %lld classes; expected d >= 1 and 2 <= k <= 255", (long long)d, (long long)k);
  *net         = (bo_mlp){.nlayers = nhidden + 1};
  net->width[0] = d;
  for (int l = 0; l < nhidden; l++) {
    CHECK(hidden && hidden[l] >= 1 && hidden[l] < INT32_MAX, "mlp: hidden layer %d has %lld units; expected at least 1", l + 1, hidden ? (long long)hidden[l] : 0LL);
    net->width[l + 1] = hidden[l];
  }
  net->width[net->nlayers] = k;
  for (int l = 0; l < net->nlayers; l++) {
    net->woff[l] = net->nparam;
    net->boff[l] = net->nparam + net->width[l] * net->width[l + 1];
    net->nparam  = net->boff[l] + net->width[l + 1];
  }
  PetscCall(PetscCalloc1((size_t)net->nparam, &net->param));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_mlp_init(bo_mlp *net, uint64_t seed)
{
  PetscFunctionBeginUser;
  CHECK(net && net->param, "mlp: network not created; expected bo_mlp_create first");
  for (int l = 0; l < net->nlayers; l++) {
    bo_rng       r;
    const double a = 1 / sqrt((double)net->width[l]);
    bo_rng_init(&r, seed, (uint64_t)l, RNG_INIT);
    for (int64_t j = net->woff[l]; j < net->boff[l] + net->width[l + 1]; j++) net->param[j] = a * (2 * bo_rng_uniform(&r) - 1);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_mlp_destroy(bo_mlp *net)
{
  PetscFunctionBeginUser;
  if (net) PetscCall(PetscFree(net->param));
  PetscFunctionReturn(0);
}

static int64_t max_width(const bo_mlp *net)
{
  int64_t m = 0;
  for (int l = 0; l <= net->nlayers; l++) m = PetscMax(m, net->width[l]);
  return m;
}

PetscErrorCode bo_mlp_work_create(const bo_mlp *net, int64_t rows, bo_mlp_work *w)
{
  PetscFunctionBeginUser;
  CHECK(rows >= 1, "mlp: work for %lld rows; expected at least 1", (long long)rows);
  *w = (bo_mlp_work){.rows = rows};
  for (int l = 1; l <= net->nlayers; l++) PetscCall(PetscMalloc1((size_t)(rows * net->width[l]), &w->act[l]));
  for (int s = 0; s < 2; s++) PetscCall(PetscMalloc1((size_t)(rows * max_width(net)), &w->delta[s]));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_mlp_work_destroy(bo_mlp_work *w)
{
  PetscFunctionBeginUser;
  for (int l = 0; l <= BO_MLP_MAX_LAYERS; l++) PetscCall(PetscFree(w->act[l]));
  for (int s = 0; s < 2; s++) PetscCall(PetscFree(w->delta[s]));
  PetscFunctionReturn(0);
}

/* Forward without checks (the hot path of PGD). */
static void forward(const bo_mlp *net, int64_t m, const double *x, bo_mlp_work *w)
{
  const double *in = x;
  for (int l = 0; l < net->nlayers; l++) {
    const int64_t ni = net->width[l], no = net->width[l + 1];
    const double *W = net->param + net->woff[l], *b = net->param + net->boff[l];
    double       *out = w->act[l + 1];
    for (int64_t i = 0; i < m; i++) memcpy(out + i * no, b, sizeof(double) * (size_t)no);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)no, (int)ni, 1.0, in, (int)ni, W, (int)no, 1.0, out, (int)no);
    if (l + 1 < net->nlayers)
      for (int64_t j = 0; j < m * no; j++) out[j] = out[j] > 0 ? out[j] : 0.0;
    in = out;
  }
}

static void backward(const bo_mlp *net, int64_t m, const double *x, bo_mlp_work *w, const double *dlogits, double *dparam, double *dx)
{
  const double *G = dlogits;
  for (int l = net->nlayers - 1; l >= 0; l--) {
    const int64_t ni = net->width[l], no = net->width[l + 1];
    const double *in = l ? w->act[l] : x, *W = net->param + net->woff[l];
    if (dparam) {
      double *db = dparam + net->boff[l];
      cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ni, (int)no, (int)m, 1.0, in, (int)ni, G, (int)no, 1.0, dparam + net->woff[l], (int)no);
      for (int64_t i = 0; i < m; i++)
        for (int64_t c = 0; c < no; c++) db[c] += G[i * no + c];
    }
    if (l == 0 && !dx) break;
    double *Gp = l ? w->delta[l % 2] : dx; /* ping-pong: G lives in the other buffer (or dlogits) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)ni, (int)no, 1.0, G, (int)no, W, (int)no, 0.0, Gp, (int)ni);
    if (l)
      for (int64_t j = 0; j < m * ni; j++)
        if (!(in[j] > 0)) Gp[j] = 0;
    G = Gp;
  }
}

static PetscErrorCode check_tile(const bo_mlp *net, int64_t m, const double *x, const bo_mlp_work *w)
{
  PetscFunctionBeginUser;
  CHECK(net && net->param, "mlp: network not created; expected bo_mlp_create first");
  CHECK(w && m >= 0 && m <= w->rows, "mlp: %lld rows for a work of %lld; expected m <= the work's rows", (long long)m, w ? (long long)w->rows : 0LL);
  CHECK(m == 0 || x, "mlp: x is NULL; expected %lld x %lld inputs", (long long)m, (long long)net->width[0]);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_mlp_forward(const bo_mlp *net, int64_t m, const double *x, bo_mlp_work *w, double *logits)
{
  PetscFunctionBeginUser;
  PetscCall(check_tile(net, m, x, w));
  const int threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  forward(net, m, x, w);
  openblas_set_num_threads(threads);
  if (logits) memcpy(logits, w->act[net->nlayers], sizeof(double) * (size_t)(m * net->width[net->nlayers]));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_mlp_backward(const bo_mlp *net, int64_t m, const double *x, bo_mlp_work *w, const double *dlogits, double *dparam, double *dx)
{
  PetscFunctionBeginUser;
  PetscCall(check_tile(net, m, x, w));
  CHECK(m == 0 || dlogits, "mlp: dlogits is NULL; expected %lld x %lld values", (long long)m, (long long)net->width[net->nlayers]);
  const int threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  backward(net, m, x, w, dlogits, dparam, dx);
  openblas_set_num_threads(threads);
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- loss terms on logits */

/* TRADES' KL(p || q) per row, p = softmax(z), q = softmax(z2): value += sum_i KL_i, and with
 * weight w: gz += w dKL/dz, gz2 += w dKL/dz2 (either may be NULL). */
static PetscErrorCode kl_rows(int64_t m, int64_t k, const double *z, const double *z2, double w, double *value, double *gz, double *gz2)
{
  double *lp, *lq;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc2((size_t)k, &lp, (size_t)k, &lq));
  for (int64_t i = 0; i < m; i++) {
    const double *a = z + i * k, *b = z2 + i * k;
    double        ma = -INFINITY, mb = -INFINITY, sa = 0, sb = 0, kl = 0;
    for (int64_t c = 0; c < k; c++) ma = PetscMax(ma, a[c]), mb = PetscMax(mb, b[c]);
    for (int64_t c = 0; c < k; c++) sa += exp(a[c] - ma), sb += exp(b[c] - mb);
    for (int64_t c = 0; c < k; c++) {
      lp[c] = a[c] - ma - log(sa);
      lq[c] = b[c] - mb - log(sb);
      kl += exp(lp[c]) * (lp[c] - lq[c]);
    }
    if (value) *value += kl;
    for (int64_t c = 0; c < k; c++) {
      const double p = exp(lp[c]), q = exp(lq[c]);
      if (gz2) gz2[i * k + c] += w * (q - p);
      if (gz) gz[i * k + c] += w * p * (lp[c] - lq[c] - kl);
    }
  }
  PetscCall(PetscFree2(lp, lq));
  PetscFunctionReturn(0);
}

/* CE of m rows: value += sum_i CE_i, g += w dCE_sum/dz (bo_loss_ce is the mean: weight w m). */
static PetscErrorCode ce_rows(int64_t m, int64_t k, const double *z, const uint8_t *y, double w, double *value, double *g)
{
  bo_loss_batch b = {.comm = PETSC_COMM_SELF, .n = m, .k = k, .logits = z, .ngroups = 1};
  double        v;

  PetscFunctionBeginUser;
  PetscCall(bo_loss_ce(&b, y, NULL, w * (double)m, &v, g));
  if (value) *value += v * (double)m;
  PetscFunctionReturn(0);
}

/* FR term of m rows between z (natural) and z2: value += sum_i arccos(.)^2, gradients as ce_rows. */
static PetscErrorCode fr_rows(int64_t m, int64_t k, const double *z, const double *z2, double guard, double w, double *value, double *gz, double *gz2)
{
  bo_loss_batch b = {.comm = PETSC_COMM_SELF, .n = m, .k = k, .logits = z, .ngroups = 1};
  double        v;

  PetscFunctionBeginUser;
  PetscCall(bo_loss_fisher_rao(&b, z2, guard, w * (double)m, &v, gz, gz2));
  if (value) *value += v * (double)m;
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- PGD */

static PetscErrorCode check_pgd(const bo_pgd_opts *o)
{
  PetscFunctionBeginUser;
  CHECK(o, "mlp: attack options are NULL; expected bo_pgd_opts");
  CHECK(isfinite(o->eps) && o->eps >= 0 && isfinite(o->step) && o->step >= 0, "mlp: attack eps %g, step %g; expected finite values >= 0", o->eps, o->step);
  CHECK(o->steps >= 0, "mlp: %d attack steps; expected >= 0", o->steps);
  CHECK(isfinite(o->sigma) && o->sigma >= 0, "mlp: attack start sigma %g; expected a finite value >= 0", o->sigma);
  CHECK(isfinite(o->guard) && o->guard >= 0 && o->guard < 1, "mlp: attack guard %g; expected 0 <= guard < 1", o->guard);
  PetscFunctionReturn(0);
}

static inline double clip(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The attack without checks; w->act is clobbered.  znat: the natural logits (KL, FR), scratch g, gx. */
static PetscErrorCode pgd(const bo_mlp *net, bo_pgd_objective obj, const bo_pgd_opts *o, int64_t m, const double *x, const uint8_t *y, const uint64_t *stream, bo_mlp_work *w, double *xadv)
{
  const int64_t d = net->width[0], k = net->width[net->nlayers];
  double       *znat = NULL, *g, *gx;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc3((size_t)(m * k), &znat, (size_t)(m * k), &g, (size_t)(m * d), &gx));
  if (obj != BO_PGD_CE) { /* p(x) is detached: computed once */
    forward(net, m, x, w);
    memcpy(znat, w->act[net->nlayers], sizeof(double) * (size_t)(m * k));
  }
  for (int64_t i = 0; i < m; i++) {
    bo_rng r;
    bo_rng_init(&r, o->seed, stream[i], RNG_START ^ o->purpose);
    for (int64_t j = 0; j < d; j++) xadv[i * d + j] = clip(x[i * d + j] + o->sigma * bo_rng_normal(&r), 0, 1);
  }
  for (int s = 0; s < o->steps; s++) {
    forward(net, m, xadv, w);
    const double *z = w->act[net->nlayers];
    memset(g, 0, sizeof(double) * (size_t)(m * k));
    if (obj == BO_PGD_CE) PetscCall(ce_rows(m, k, z, y, 1.0, NULL, g));
    else if (obj == BO_PGD_KL) PetscCall(kl_rows(m, k, znat, z, 1.0, NULL, NULL, g));
    else PetscCall(fr_rows(m, k, znat, z, o->guard, 1.0, NULL, NULL, g));
    backward(net, m, xadv, w, g, NULL, gx);
    for (int64_t j = 0; j < m * d; j++) {
      const double sg = gx[j] > 0 ? 1.0 : gx[j] < 0 ? -1.0 : 0.0;
      xadv[j]         = clip(clip(xadv[j] + o->step * sg, x[j] - o->eps, x[j] + o->eps), 0, 1);
    }
  }
  PetscCall(PetscFree3(znat, g, gx));
  PetscFunctionReturn(0);
}

static PetscErrorCode check_labels(const bo_mlp *net, int64_t m, const uint8_t *y)
{
  PetscFunctionBeginUser;
  CHECK(m == 0 || y, "mlp: labels are NULL; expected %lld labels", (long long)m);
  for (int64_t i = 0; i < m; i++) CHECK(y[i] < net->width[net->nlayers], "mlp: label[%lld] = %d; expected 0..%lld", (long long)i, (int)y[i], (long long)(net->width[net->nlayers] - 1));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_mlp_pgd(const bo_mlp *net, bo_pgd_objective obj, const bo_pgd_opts *o, int64_t m, const double *x, const uint8_t *y, const uint64_t *stream, bo_mlp_work *w, double *xadv)
{
  PetscFunctionBeginUser;
  PetscCall(check_tile(net, m, x, w));
  PetscCall(check_pgd(o));
  CHECK(obj == BO_PGD_CE || obj == BO_PGD_KL || obj == BO_PGD_FR, "mlp: attack objective %d; expected ce, kl or fr", (int)obj);
  if (obj == BO_PGD_CE) PetscCall(check_labels(net, m, y));
  CHECK(m == 0 || (stream && xadv), "mlp: stream ids or xadv are NULL; expected m of each");
  const int threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  PetscCall(pgd(net, obj, o, m, x, y, stream, w, xadv));
  openblas_set_num_threads(threads);
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- losses of a tile */

static PetscErrorCode check_loss(const bo_mlp_loss_opts *o)
{
  PetscFunctionBeginUser;
  CHECK(o && o->loss >= 0 && o->loss < BO_MLP_NLOSSES, "mlp: loss %d; expected ce, at, trades or fire", o ? (int)o->loss : -1);
  CHECK(isfinite(o->beta) && o->beta >= 0, "mlp: beta = %g; expected a finite beta >= 0", o->beta);
  CHECK(isfinite(o->guard) && o->guard >= 0 && o->guard < 1, "mlp: guard = %g; expected 0 <= guard < 1", o->guard);
  if (o->loss != BO_MLP_LOSS_CE) PetscCall(check_pgd(&o->pgd));
  PetscFunctionReturn(0);
}

/* The loss of m rows at given x and x' (AT reads only x', CE only x): value terms, dparam +=,
 * dx and dxa = (either may be NULL).  w[0] holds the natural forward, w[1] the adversarial one. */
static PetscErrorCode pair_loss(const bo_mlp *net, const bo_mlp_loss_opts *o, int64_t m, const double *x, const double *xa, const uint8_t *y, double weight, bo_mlp_work w[2], double *dparam, double *dx, double *dxa, double terms[2])
{
  const int64_t k = net->width[net->nlayers];
  double       *gz, *ga;

  PetscFunctionBeginUser;
  PetscCall(PetscCalloc2((size_t)(m * k), &gz, (size_t)(m * k), &ga));
  if (o->loss != BO_MLP_LOSS_CE) forward(net, m, xa, &w[1]);
  if (o->loss == BO_MLP_LOSS_AT) {
    PetscCall(ce_rows(m, k, w[1].act[net->nlayers], y, weight, &terms[0], ga));
  } else {
    forward(net, m, x, &w[0]);
    const double *z = w[0].act[net->nlayers], *za = w[1].act[net->nlayers];
    PetscCall(ce_rows(m, k, z, y, weight, &terms[0], gz));
    if (o->loss == BO_MLP_LOSS_TRADES) PetscCall(kl_rows(m, k, z, za, weight * o->beta, &terms[1], gz, ga));
    if (o->loss == BO_MLP_LOSS_FIRE) PetscCall(fr_rows(m, k, z, za, o->guard, weight * o->beta, &terms[1], gz, ga));
    backward(net, m, x, &w[0], gz, dparam, dx);
  }
  if (o->loss != BO_MLP_LOSS_CE) backward(net, m, xa, &w[1], ga, dparam, dxa);
  if (o->loss == BO_MLP_LOSS_AT && dx) memset(dx, 0, sizeof(double) * (size_t)(m * net->width[0]));
  if (o->loss == BO_MLP_LOSS_CE && dxa) memset(dxa, 0, sizeof(double) * (size_t)(m * net->width[0]));
  PetscCall(PetscFree2(gz, ga));
  PetscFunctionReturn(0);
}

static PetscErrorCode tile_loss(const bo_mlp *net, const bo_mlp_loss_opts *o, int64_t m, const double *x, const uint8_t *y, const uint64_t *stream, double weight, bo_mlp_work w[2], double *dparam, double terms[2])
{
  double *xa = NULL;

  PetscFunctionBeginUser;
  if (o->loss != BO_MLP_LOSS_CE) {
    const bo_pgd_objective obj = o->loss == BO_MLP_LOSS_AT ? BO_PGD_CE : o->loss == BO_MLP_LOSS_TRADES ? BO_PGD_KL : BO_PGD_FR;
    bo_pgd_opts            po  = o->pgd;
    po.guard                   = o->guard;
    PetscCall(PetscMalloc1((size_t)(m * net->width[0]), &xa));
    PetscCall(pgd(net, obj, &po, m, x, y, stream, &w[1], xa));
  }
  PetscCall(pair_loss(net, o, m, x, xa, y, weight, w, dparam, NULL, NULL, terms));
  PetscCall(PetscFree(xa));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_mlp_pair_loss(const bo_mlp *net, const bo_mlp_loss_opts *o, int64_t m, const double *x, const double *xadv, const uint8_t *y, double weight, bo_mlp_work w[2], double *dparam, double *dx, double *dxadv, double terms[2])
{
  PetscFunctionBeginUser;
  CHECK(w, "mlp: works are NULL; expected two works");
  PetscCall(check_tile(net, m, x, &w[0]));
  PetscCall(check_loss(o));
  if (o->loss != BO_MLP_LOSS_CE) PetscCall(check_tile(net, m, xadv, &w[1]));
  PetscCall(check_labels(net, m, y));
  CHECK(isfinite(weight) && terms, "mlp: weight %g or terms NULL; expected a finite weight and outputs", weight);
  const int threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  PetscCall(pair_loss(net, o, m, x, xadv, y, weight, w, dparam, dx, dxadv, terms));
  openblas_set_num_threads(threads);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_mlp_tile_loss(const bo_mlp *net, const bo_mlp_loss_opts *o, int64_t m, const double *x, const uint8_t *y, const uint64_t *stream, double weight, bo_mlp_work w[2], double *dparam, double terms[2])
{
  PetscFunctionBeginUser;
  CHECK(w, "mlp: works are NULL; expected two works");
  PetscCall(check_tile(net, m, x, &w[0]));
  PetscCall(check_tile(net, m, x, &w[1]));
  PetscCall(check_loss(o));
  PetscCall(check_labels(net, m, y));
  CHECK(m == 0 || o->loss == BO_MLP_LOSS_CE || stream, "mlp: stream ids are NULL; expected m ids for the attack");
  CHECK(isfinite(weight) && dparam && terms, "mlp: weight %g, dparam or terms NULL; expected a finite weight and outputs", weight);
  const int threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  PetscCall(tile_loss(net, o, m, x, y, stream, weight, w, dparam, terms));
  openblas_set_num_threads(threads);
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- batches and evaluation */

/* Rows [lo, hi) of data[idx] (idx NULL: rows lo..hi-1) as doubles, their labels and stream ids. */
static void gather_tile(int64_t d, const float *data, const uint8_t *labels, const int64_t *idx, int64_t lo, int64_t hi, uint64_t round, double *x, uint8_t *y, uint64_t *stream)
{
  for (int64_t b = lo; b < hi; b++) {
    const int64_t r = idx ? idx[b] : b;
    const float  *src = data + r * d;
    for (int64_t j = 0; j < d; j++) x[(b - lo) * d + j] = src[j];
    y[b - lo]      = labels[r];
    stream[b - lo] = bo_mlp_stream_id(round, r);
  }
}

static void my_tiles(MPI_Comm comm, int64_t n, int64_t *t0, int64_t *t1)
{
  PetscMPIInt rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const int64_t nt = (n + BO_MLP_TILE_ROWS - 1) / BO_MLP_TILE_ROWS;
  *t0 = nt * rank / size;
  *t1 = nt * (rank + 1) / size;
}

PetscErrorCode bo_mlp_batch_gradient(const bo_mlp *net, MPI_Comm comm, const bo_mlp_loss_opts *o, const float *data, const uint8_t *labels, int64_t B, const int64_t *idx, uint64_t round, double *grad, double terms[2])
{
  const int64_t d = net ? net->width[0] : 0, np = net ? net->nparam : 0, len = np + 2;
  int64_t       t0, t1, ntiles = (B + BO_MLP_TILE_ROWS - 1) / BO_MLP_TILE_ROWS;
  double       *part, *x, *out, mx;
  uint8_t      *y;
  uint64_t     *stream;
  bo_mlp_work   w[2];
  bo_exactsum   s;

  PetscFunctionBeginUser;
  CHECK(net && net->param, "mlp: network not created; expected bo_mlp_create first");
  PetscCall(check_loss(o));
  CHECK(B >= 1 && data && labels && idx && grad && terms, "mlp: a batch of %lld rows or NULL arrays; expected B >= 1, data, labels, idx and outputs", (long long)B);
  PetscCall(register_events());
  PetscCall(PetscLogEventBegin(ev_grad, 0, 0, 0, 0));
  my_tiles(comm, B, &t0, &t1);
  PetscCall(PetscCalloc1((size_t)(PetscMax(1, t1 - t0) * len), &part));
  PetscCall(PetscMalloc4((size_t)(BO_MLP_TILE_ROWS * d), &x, BO_MLP_TILE_ROWS, &y, BO_MLP_TILE_ROWS, &stream, (size_t)len, &out));
  PetscCall(bo_mlp_work_create(net, BO_MLP_TILE_ROWS, &w[0]));
  PetscCall(bo_mlp_work_create(net, BO_MLP_TILE_ROWS, &w[1]));
  const int threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  for (int64_t t = t0; t < t1; t++) {
    const int64_t lo = t * BO_MLP_TILE_ROWS, hi = PetscMin(B, lo + BO_MLP_TILE_ROWS);
    double       *pt = part + (t - t0) * len;
    gather_tile(d, data, labels, idx, lo, hi, round, x, y, stream);
    PetscCall(check_labels(net, hi - lo, y));
    PetscCall(tile_loss(net, o, hi - lo, x, y, stream, 1.0 / (double)B, w, pt, pt + np));
    pt[np] /= (double)B, pt[np + 1] /= (double)B;
  }
  openblas_set_num_threads(threads);
  PetscCall(bo_reduce_max_abs(comm, PetscMax(0, t1 - t0) * len, part, &mx));
  PetscCheck(isfinite(mx), PETSC_COMM_SELF, BO_ERR_RUNTIME, "mlp: the batch gradient is not finite; expected a smaller learning rate");
  PetscCall(bo_exactsum_create(len, mx * (double)ntiles, &s));
  for (int64_t t = t0; t < t1; t++) PetscCall(bo_exactsum_add(s, part + (t - t0) * len));
  PetscCall(bo_exactsum_allreduce(comm, s, out));
  memcpy(grad, out, sizeof(double) * (size_t)np);
  terms[0] = out[np], terms[1] = out[np + 1];
  PetscCall(bo_exactsum_destroy(&s));
  PetscCall(bo_mlp_work_destroy(&w[0]));
  PetscCall(bo_mlp_work_destroy(&w[1]));
  PetscCall(PetscFree4(x, y, stream, out));
  PetscCall(PetscFree(part));
  PetscCall(PetscLogEventEnd(ev_grad, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

static int64_t correct(int64_t m, int64_t k, const double *z, const uint8_t *y)
{
  int64_t c = 0;
  for (int64_t i = 0; i < m; i++) {
    int64_t best = 0;
    for (int64_t j = 1; j < k; j++)
      if (z[i * k + j] > z[i * k + best]) best = j;
    c += best == y[i];
  }
  return c;
}

PetscErrorCode bo_mlp_evaluate(const bo_mlp *net, MPI_Comm comm, const float *data, const uint8_t *labels, int64_t n, const bo_pgd_opts *attack, int64_t *clean, int64_t *robust)
{
  const int64_t d = net ? net->width[0] : 0, k = net ? net->width[net->nlayers] : 0;
  int64_t       t0, t1, mine[2] = {0, 0}, all[2];
  double       *x, *xa;
  uint8_t      *y;
  uint64_t     *stream;
  bo_mlp_work   w;

  PetscFunctionBeginUser;
  CHECK(net && net->param, "mlp: network not created; expected bo_mlp_create first");
  CHECK(n >= 0 && (n == 0 || (data && labels)) && clean && robust, "mlp: evaluation of %lld rows with NULL arrays; expected data, labels and outputs", (long long)n);
  if (attack) PetscCall(check_pgd(attack));
  PetscCall(register_events());
  PetscCall(PetscLogEventBegin(ev_eval, 0, 0, 0, 0));
  my_tiles(comm, n, &t0, &t1);
  PetscCall(PetscMalloc4((size_t)(BO_MLP_TILE_ROWS * d), &x, (size_t)(BO_MLP_TILE_ROWS * d), &xa, BO_MLP_TILE_ROWS, &y, BO_MLP_TILE_ROWS, &stream));
  PetscCall(bo_mlp_work_create(net, BO_MLP_TILE_ROWS, &w));
  const int threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  for (int64_t t = t0; t < t1; t++) {
    const int64_t lo = t * BO_MLP_TILE_ROWS, hi = PetscMin(n, lo + BO_MLP_TILE_ROWS);
    gather_tile(d, data, labels, NULL, lo, hi, 0, x, y, stream);
    PetscCall(check_labels(net, hi - lo, y));
    forward(net, hi - lo, x, &w);
    mine[0] += correct(hi - lo, k, w.act[net->nlayers], y);
    if (!attack) continue;
    PetscCall(pgd(net, BO_PGD_CE, attack, hi - lo, x, y, stream, &w, xa));
    forward(net, hi - lo, xa, &w);
    mine[1] += correct(hi - lo, k, w.act[net->nlayers], y);
  }
  openblas_set_num_threads(threads);
  PetscCallMPI(MPI_Allreduce(mine, all, 2, MPI_INT64_T, MPI_SUM, comm));
  *clean  = all[0];
  *robust = attack ? all[1] : -1;
  PetscCall(bo_mlp_work_destroy(&w));
  PetscCall(PetscFree4(x, xa, y, stream));
  PetscCall(PetscLogEventEnd(ev_eval, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_mlp_features(const bo_mlp *net, int64_t m, const float *data, double *features)
{
  const int64_t d = net ? net->width[0] : 0;
  double       *x;
  bo_mlp_work   w;

  PetscFunctionBeginUser;
  CHECK(net && net->param && net->nlayers >= 2, "mlp: features of a network without a hidden layer; expected at least one hidden layer");
  CHECK(m >= 0 && (m == 0 || (data && features)), "mlp: features of %lld rows with NULL arrays; expected data and output", (long long)m);
  const int64_t f = net->width[net->nlayers - 1];
  PetscCall(register_events());
  PetscCall(PetscLogEventBegin(ev_feat, 0, 0, 0, 0));
  PetscCall(PetscMalloc1((size_t)(BO_MLP_TILE_ROWS * d), &x));
  PetscCall(bo_mlp_work_create(net, BO_MLP_TILE_ROWS, &w));
  const int threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  for (int64_t lo = 0; lo < m; lo += BO_MLP_TILE_ROWS) {
    const int64_t hi = PetscMin(m, lo + BO_MLP_TILE_ROWS);
    for (int64_t j = 0; j < (hi - lo) * d; j++) x[j] = data[lo * d + j];
    forward(net, hi - lo, x, &w);
    memcpy(features + lo * f, w.act[net->nlayers - 1], sizeof(double) * (size_t)((hi - lo) * f));
  }
  openblas_set_num_threads(threads);
  PetscCall(bo_mlp_work_destroy(&w));
  PetscCall(PetscFree(x));
  PetscCall(PetscLogEventEnd(ev_feat, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}
