/* heads.c - linear, RePRI prototype and one-hidden-layer ReLU heads: forward, backward with a
 * rank-count independent gradient sum (see heads.h). */
#include "boundopt/heads.h"
#include "boundopt/error.h"
#include "boundopt/reduce.h"
#include "boundopt/rng.h"
#include <cblas.h>
#include <math.h>
#include <string.h>

/* OpenBLAS thread control: one thread per dgemm, so a block's partial has the same bits whatever
 * the caller's thread setting (as tim.c). */
extern void openblas_set_num_threads(int nthreads);
extern int  openblas_get_num_threads(void);

#define CHECK(cond, ...) PetscCheck(cond, PETSC_COMM_SELF, BO_ERR_INPUT, __VA_ARGS__)

static PetscErrorCode check_finite(const char *name, int64_t n, int64_t d, const double *v)
{
  PetscFunctionBeginUser;
  CHECK(n == 0 || v, "heads: %s is NULL; expected %lld x %lld values", name, (long long)n, (long long)d);
  for (int64_t i = 0; i < n * d; i++)
    CHECK(isfinite(v[i]), "heads: %s[%lld][%lld] = %g is not finite; expected finite values", name, (long long)(i / d), (long long)(i % d), v[i]);
  PetscFunctionReturn(0);
}

static PetscErrorCode check_head(const bo_head *h)
{
  PetscFunctionBeginUser;
  CHECK(h && h->param, "heads: head is NULL or not created; expected bo_head_create_*");
  PetscCall(check_finite("param", 1, h->nparam, h->param));
  if (h->kind == BO_HEAD_PROTO) {
    double t = 0;
    for (int64_t j = 0; j < h->d; j++) t += h->param[j] * h->param[j];
    CHECK(t > 0, "heads: the prototype theta is zero; expected a nonzero prototype (bo_head_proto_init)");
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode check_rows(const bo_head *h, int64_t n, const double *x)
{
  PetscFunctionBeginUser;
  CHECK(n >= 0 && n < INT32_MAX, "heads: n = %lld; expected 0 <= n < 2^31 local rows", (long long)n);
  PetscCall(check_finite("x", n, h->d, x));
  PetscFunctionReturn(0);
}

static PetscErrorCode create(bo_head_kind kind, int64_t d, int64_t k, double tau, int64_t m, bo_head *h)
{
  PetscFunctionBeginUser;
  CHECK(h, "heads: head is NULL; expected a bo_head to fill");
  CHECK(d >= 1 && d < INT32_MAX, "heads: d = %lld; expected 1 <= d < 2^31", (long long)d);
  CHECK(k >= 1 && k < INT32_MAX / d, "heads: k = %lld; expected k >= 1 classes", (long long)k);
  CHECK(kind != BO_HEAD_MLP || (m >= 1 && m < INT32_MAX / (d + k + 2)), "heads: %lld hidden units; expected 1 <= m < 2^31 / (d + k + 2)", (long long)m);
  *h = (bo_head){.kind = kind, .d = d, .k = k, .tau = tau, .m = kind == BO_HEAD_MLP ? m : 0};
  h->nparam = kind == BO_HEAD_LINEAR ? d * k + k : kind == BO_HEAD_PROTO ? d + 1 : d * m + m + m * k + k;
  PetscCall(PetscCalloc1((size_t)h->nparam, &h->param));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_head_create_linear(int64_t d, int64_t k, bo_head *h)
{
  PetscFunctionBeginUser;
  PetscCall(create(BO_HEAD_LINEAR, d, k, 0, 0, h));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_head_create_proto(int64_t d, double tau, bo_head *h)
{
  PetscFunctionBeginUser;
  CHECK(isfinite(tau) && tau > 0, "heads: tau = %g; expected a finite temperature > 0 (RePRI 20)", tau);
  PetscCall(create(BO_HEAD_PROTO, d, 2, tau, 0, h));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_head_create_mlp(int64_t d, int64_t m, int64_t k, bo_head *h)
{
  PetscFunctionBeginUser;
  PetscCall(create(BO_HEAD_MLP, d, k, 0, m, h));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_head_mlp_init(bo_head *h, uint64_t seed)
{
  bo_rng r;

  PetscFunctionBeginUser;
  CHECK(h && h->param && h->kind == BO_HEAD_MLP, "heads: mlp init on a head that is not MLP; expected bo_head_create_mlp");
  const int64_t d = h->d, m = h->m, k = h->k;
  double       *W1 = h->param, *b1 = W1 + d * m, *W2 = b1 + m, *b2 = W2 + m * k;
  bo_rng_init(&r, seed, 0, BO_HEAD_RNG_PURPOSE);
  for (int64_t i = 0; i < d * m; i++) W1[i] = sqrt(2.0 / (double)d) * bo_rng_normal(&r);
  for (int64_t i = 0; i < m * k; i++) W2[i] = sqrt(1.0 / (double)m) * bo_rng_normal(&r);
  memset(b1, 0, sizeof(double) * (size_t)m);
  memset(b2, 0, sizeof(double) * (size_t)k);
  PetscFunctionReturn(0);
}

/* MLP hidden layer of one row: a = x W1 + b1, h = max(a, 0) (m values).  The sum over features
 * runs in feature order for every unit: the same bits for a row whatever the call's row count. */
static void mlp_hidden(const bo_head *h, const double *x, double *hid)
{
  const int64_t d = h->d, m = h->m;
  const double *W1 = h->param, *b1 = W1 + d * m;
  memcpy(hid, b1, sizeof(double) * (size_t)m);
  for (int64_t p = 0; p < d; p++) {
    const double xp = x[p], *w = W1 + p * m;
    for (int64_t j = 0; j < m; j++) hid[j] += xp * w[j];
  }
  for (int64_t j = 0; j < m; j++) hid[j] = hid[j] > 0 ? hid[j] : 0;
}

static void mlp_output(const bo_head *h, const double *hid, double *z)
{
  const int64_t d = h->d, m = h->m, k = h->k;
  const double *W2 = h->param + d * m + m, *b2 = W2 + m * k;
  memcpy(z, b2, sizeof(double) * (size_t)k);
  for (int64_t j = 0; j < m; j++)
    for (int64_t c = 0; c < k; c++) z[c] += hid[j] * W2[j * k + c];
}

/* out (nparam) += the gradient contribution of row x with dL/dz = g; hid, dh: m workspace. */
static void mlp_row_grad(const bo_head *h, const double *x, const double *g, double *hid, double *dh, double *out)
{
  const int64_t d = h->d, m = h->m, k = h->k;
  const double *W2 = h->param + d * m + m;
  double       *dW1 = out, *db1 = dW1 + d * m, *dW2 = db1 + m, *db2 = dW2 + m * k;
  mlp_hidden(h, x, hid);
  for (int64_t j = 0; j < m; j++) {
    double s = 0;
    for (int64_t c = 0; c < k; c++) {
      dW2[j * k + c] += hid[j] * g[c];
      s += g[c] * W2[j * k + c];
    }
    dh[j] = hid[j] > 0 ? s : 0;
    db1[j] += dh[j];
  }
  for (int64_t c = 0; c < k; c++) db2[c] += g[c];
  for (int64_t p = 0; p < d; p++) {
    const double xp = x[p];
    double      *w  = dW1 + p * m;
    for (int64_t j = 0; j < m; j++) w[j] += xp * dh[j];
  }
}

PetscErrorCode bo_head_destroy(bo_head *h)
{
  PetscFunctionBeginUser;
  if (h) PetscCall(PetscFree(h->param));
  PetscFunctionReturn(0);
}

static double norm(int64_t d, const double *v)
{
  double s = 0;
  for (int64_t j = 0; j < d; j++) s += v[j] * v[j];
  return sqrt(s);
}

static double dot(int64_t d, const double *a, const double *b)
{
  double s = 0;
  for (int64_t j = 0; j < d; j++) s += a[j] * b[j];
  return s;
}

/* cos(x, theta) with |theta| given; 0 for a zero row. */
static double cosine(int64_t d, const double *x, const double *theta, double tn, double *xn)
{
  const double n = norm(d, x);
  if (xn) *xn = n;
  return n > 0 ? dot(d, x, theta) / (n * tn) : 0.0;
}

PetscErrorCode bo_head_forward(const bo_head *h, int64_t n, const double *x, double *logits)
{
  PetscFunctionBeginUser;
  PetscCall(check_head(h));
  PetscCall(check_rows(h, n, x));
  CHECK(n == 0 || logits, "heads: logits is NULL; expected an n x k output");
  if (n == 0) PetscFunctionReturn(0);
  const int64_t d = h->d, k = h->k;
  if (h->kind == BO_HEAD_LINEAR) {
    const int threads = openblas_get_num_threads();
    for (int64_t i = 0; i < n; i++) memcpy(logits + i * k, h->param + d * k, sizeof(double) * (size_t)k);
    openblas_set_num_threads(1);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)k, (int)d, 1.0, x, (int)d, h->param, (int)k, 1.0, logits, (int)k);
    openblas_set_num_threads(threads);
  } else if (h->kind == BO_HEAD_MLP) {
    double *hid;
    PetscCall(PetscMalloc1((size_t)h->m, &hid));
    for (int64_t i = 0; i < n; i++) {
      mlp_hidden(h, x + i * d, hid);
      mlp_output(h, hid, logits + i * k);
    }
    PetscCall(PetscFree(hid));
  } else {
    const double tn = norm(d, h->param), b = h->param[d];
    for (int64_t i = 0; i < n; i++) {
      logits[2 * i]     = 0;
      logits[2 * i + 1] = h->tau * cosine(d, x + i * d, h->param, tn, NULL) - b;
    }
  }
  PetscFunctionReturn(0);
}

/* out (nparam) = the gradient contribution of rows [lo, hi), in row order. */
static void block_partial(const bo_head *h, int64_t lo, int64_t hi, const double *x, const double *G, double *out)
{
  const int64_t d = h->d, k = h->k, m = hi - lo;
  memset(out, 0, sizeof(double) * (size_t)h->nparam);
  if (m == 0) return;
  if (h->kind == BO_HEAD_LINEAR) {
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)k, (int)m, 1.0, x + lo * d, (int)d, G + lo * k, (int)k, 0.0, out, (int)k);
    for (int64_t i = lo; i < hi; i++)
      for (int64_t c = 0; c < k; c++) out[d * k + c] += G[i * k + c];
    return;
  }
  const double *th = h->param, tn = norm(d, th);
  for (int64_t i = lo; i < hi; i++) {
    double       xn;
    const double du = G[2 * i + 1], cs = cosine(d, x + i * d, th, tn, &xn);
    out[d] -= du;
    if (!(xn > 0)) continue;
    for (int64_t j = 0; j < d; j++) out[j] += du * h->tau * (x[i * d + j] / (xn * tn) - cs * th[j] / (tn * tn));
  }
}

/* The largest |contribution| of one row to one parameter, over this rank's rows (a bound). */
static double row_bound(const bo_head *h, int64_t n, const double *x, const double *G)
{
  const int64_t d = h->d, k = h->k;
  double        best = 0;
  for (int64_t i = 0; i < n; i++) {
    double gm = 0, xm = 0;
    for (int64_t c = 0; c < k; c++) gm = PetscMax(gm, fabs(G[i * k + c]));
    if (h->kind == BO_HEAD_LINEAR) {
      for (int64_t j = 0; j < d; j++) xm = PetscMax(xm, fabs(x[i * d + j]));
      best = PetscMax(best, gm * PetscMax(xm, 1.0));
    } else { /* |x_j|/(|x||t|) + |cos t_j|/|t|^2 <= 2/|t| */
      best = PetscMax(best, fabs(G[2 * i + 1]) * PetscMax(1.0, 2 * h->tau / norm(d, h->param)));
    }
  }
  return best;
}

/* MLP backward: every block's partial first (nb x nparam), then the bound from them (sum of
 * |addends| <= blocks x largest |entry|, over all ranks) and the exact sum. */
static PetscErrorCode mlp_backward(const bo_head *h, MPI_Comm comm, int64_t n, const double *x, const double *G, int64_t nb, const int64_t *block_start, double *grad)
{
  const int64_t np = h->nparam, d = h->d, k = h->k;
  double       *part, *hid, *dh, mx = 0, gmx;
  int64_t       nbl = 0, nbt;
  bo_exactsum   s;

  PetscFunctionBeginUser;
  PetscCall(PetscCalloc1((size_t)(PetscMax(1, nb) * np), &part));
  PetscCall(PetscMalloc2((size_t)h->m, &hid, (size_t)h->m, &dh));
  for (int64_t t = 0; t < nb; t++) {
    const int64_t lo = block_start ? block_start[t] : t, hi = block_start ? block_start[t + 1] : t + 1;
    if (hi == lo) continue;
    nbl++;
    for (int64_t i = lo; i < hi; i++) mlp_row_grad(h, x + i * d, G + i * k, hid, dh, part + t * np);
    for (int64_t j = 0; j < np; j++) mx = PetscMax(mx, fabs(part[t * np + j]));
  }
  PetscCallMPI(MPI_Allreduce(&mx, &gmx, 1, MPI_DOUBLE, MPI_MAX, comm));
  PetscCallMPI(MPI_Allreduce(&nbl, &nbt, 1, MPI_INT64_T, MPI_SUM, comm));
  PetscCall(bo_exactsum_create(np, gmx > 0 ? gmx * (double)nbt : 1.0, &s));
  for (int64_t t = 0; t < nb; t++) {
    const int64_t lo = block_start ? block_start[t] : t, hi = block_start ? block_start[t + 1] : t + 1;
    if (hi > lo) PetscCall(bo_exactsum_add(s, part + t * np));
  }
  PetscCall(bo_exactsum_allreduce(comm, s, grad));
  PetscCall(bo_exactsum_destroy(&s));
  PetscCall(PetscFree2(hid, dh));
  PetscCall(PetscFree(part));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_head_backward(const bo_head *h, MPI_Comm comm, int64_t n, const double *x, const double *dlogits, int64_t nblocks, const int64_t *block_start, double *grad)
{
  double     *part, mx, gmx;
  int64_t     nl = n, nt, nb = block_start ? nblocks : n;
  bo_exactsum s;

  PetscFunctionBeginUser;
  PetscCall(check_head(h));
  PetscCall(check_rows(h, n, x));
  PetscCall(check_finite("dlogits", n, h->k, dlogits));
  CHECK(grad, "heads: grad is NULL; expected nparam = %lld values", (long long)h->nparam);
  if (block_start) {
    CHECK(nblocks >= 0 && block_start[0] == 0 && block_start[nblocks] == n, "heads: blocks start at %lld and end at %lld for %lld rows; expected 0 and n", (long long)(nblocks >= 0 ? block_start[0] : -1), (long long)(nblocks >= 0 ? block_start[nblocks] : -1), (long long)n);
    for (int64_t t = 0; t < nblocks; t++)
      CHECK(block_start[t] <= block_start[t + 1], "heads: block %lld starts at %lld after its end %lld; expected nondecreasing offsets", (long long)t, (long long)block_start[t], (long long)block_start[t + 1]);
  }
  if (h->kind == BO_HEAD_MLP) {
    PetscCall(mlp_backward(h, comm, n, x, dlogits, nb, block_start, grad));
    PetscFunctionReturn(0);
  }
  mx = row_bound(h, n, x, dlogits);
  PetscCallMPI(MPI_Allreduce(&mx, &gmx, 1, MPI_DOUBLE, MPI_MAX, comm));
  PetscCallMPI(MPI_Allreduce(&nl, &nt, 1, MPI_INT64_T, MPI_SUM, comm));
  PetscCall(bo_exactsum_create(h->nparam, gmx * (double)nt, &s));
  PetscCall(PetscMalloc1((size_t)h->nparam, &part));
  const int threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  for (int64_t t = 0; t < nb; t++) {
    const int64_t lo = block_start ? block_start[t] : t, hi = block_start ? block_start[t + 1] : t + 1;
    if (hi == lo) continue;
    block_partial(h, lo, hi, x, dlogits, part);
    PetscCall(bo_exactsum_add(s, part));
  }
  openblas_set_num_threads(threads);
  PetscCall(bo_exactsum_allreduce(comm, s, grad));
  PetscCall(bo_exactsum_destroy(&s));
  PetscCall(PetscFree(part));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_head_proto_init(bo_head *h, int64_t nshots, int64_t ns, const double *xs, const double *fg, int64_t nq, const double *xq)
{
  PetscFunctionBeginUser;
  CHECK(h && h->param && h->kind == BO_HEAD_PROTO, "heads: proto init on a head that is not PROTO; expected bo_head_create_proto");
  CHECK(nshots >= 1 && ns >= 1 && nq >= 1, "heads: proto init with %lld shots of %lld rows and %lld queries; expected at least 1 of each", (long long)nshots, (long long)ns, (long long)nq);
  PetscCall(check_finite("xs", nshots * ns, h->d, xs));
  PetscCall(check_finite("xq", nq, h->d, xq));
  CHECK(fg, "heads: fg is NULL; expected nshots x ns foreground weights");
  for (int64_t i = 0; i < nshots * ns; i++) CHECK(fg[i] >= 0 && fg[i] <= 1, "heads: fg[%lld] = %g; expected weights in [0, 1]", (long long)i, fg[i]);
  const int64_t d = h->d;
  double       *th = h->param, s = 0;
  memset(th, 0, sizeof(double) * (size_t)(d + 1));
  for (int64_t t = 0; t < nshots; t++) {
    double m = 0;
    for (int64_t i = t * ns; i < (t + 1) * ns; i++) m += fg[i];
    for (int64_t j = 0; j < d; j++) {
      double v = 0;
      for (int64_t i = t * ns; i < (t + 1) * ns; i++) v += fg[i] * xs[i * d + j];
      th[j] += v / (m + 1e-10) / (double)nshots;
    }
  }
  const double tn = norm(d, th);
  CHECK(tn > 0, "heads: proto init: every shot has an empty foreground (or zero features); expected foreground support pixels");
  for (int64_t i = 0; i < nq; i++) s += h->tau * cosine(d, xq + i * d, th, tn, NULL);
  th[d] = s / (double)nq;
  PetscFunctionReturn(0);
}
