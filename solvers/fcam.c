/* fcam.c - F-CAM numerics: CAM pooling and upsampling, Otsu seeds, the block-grid bilateral kernel,
 * the F-CAM loss and per-image fit, mean-field CRF post-processing, localisation metrics (fcam.h). */
#include "boundopt/fcam.h"
#include "boundopt/error.h"
#include "boundopt/losses.h"
#include <math.h>
#include <string.h>

#define CHECK(cond, ...) PetscCheck(cond, PETSC_COMM_SELF, BO_ERR_INPUT, __VA_ARGS__)

/* ------------------------------------------------------------------ CAM helpers */

PetscErrorCode bo_fcam_pool(int64_t H, int64_t W, int64_t F, const double *field, int64_t f, double *out)
{
  PetscFunctionBeginUser;
  CHECK(f >= 1 && H >= f && W >= f && H % f == 0 && W % f == 0 && F >= 1, "fcam: pool %lld x %lld x %lld by %lld; expected sides that are multiples of the pooling factor", (long long)H, (long long)W, (long long)F, (long long)f);
  const int64_t h = H / f, w = W / f;
  memset(out, 0, sizeof(double) * (size_t)(h * w * F));
  for (int64_t y = 0; y < H; y++)
    for (int64_t x = 0; x < W; x++) {
      double       *o = out + ((y / f) * w + x / f) * F;
      const double *a = field + (y * W + x) * F;
      for (int64_t c = 0; c < F; c++) o[c] += a[c];
    }
  for (int64_t i = 0; i < h * w * F; i++) out[i] /= (double)(f * f);
  PetscFunctionReturn(0);
}

void bo_fcam_normalise(int64_t n, double *v)
{
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < n; i++) lo = PetscMin(lo, v[i]), hi = PetscMax(hi, v[i]);
  for (int64_t i = 0; i < n; i++) v[i] = hi > lo ? (v[i] - lo) / (hi - lo) : 0;
}

/* source coordinate of output index u, align_corners = False, clamped */
static void src_coord(int64_t u, int64_t nin, int64_t nout, int64_t *i0, int64_t *i1, double *a)
{
  double s = ((double)u + 0.5) * (double)nin / (double)nout - 0.5;
  if (s < 0) s = 0;
  int64_t j = (int64_t)floor(s);
  if (j > nin - 1) j = nin - 1;
  *i0 = j;
  *i1 = j + 1 < nin ? j + 1 : nin - 1;
  *a  = s - (double)j;
}

PetscErrorCode bo_fcam_upsample(int64_t h, int64_t w, const double *in, int64_t H, int64_t W, double *out)
{
  PetscFunctionBeginUser;
  CHECK(h >= 1 && w >= 1 && H >= 1 && W >= 1, "fcam: upsample %lld x %lld to %lld x %lld; expected positive sizes", (long long)h, (long long)w, (long long)H, (long long)W);
  for (int64_t y = 0; y < H; y++) {
    int64_t y0, y1, x0, x1;
    double  ay, ax;
    src_coord(y, h, H, &y0, &y1, &ay);
    for (int64_t x = 0; x < W; x++) {
      src_coord(x, w, W, &x0, &x1, &ax);
      out[y * W + x] = (1 - ay) * ((1 - ax) * in[y0 * w + x0] + ax * in[y0 * w + x1]) + ay * ((1 - ax) * in[y1 * w + x0] + ax * in[y1 * w + x1]);
    }
  }
  PetscFunctionReturn(0);
}

double bo_fcam_otsu(int64_t n, const double *v, int nbins)
{
  double  *hist, tot = 0, sum = 0, w0 = 0, s0 = 0, best = -1, t = 0.5;
  if (nbins < 2 || n < 1 || PetscCalloc1(nbins, &hist)) return 0.5;
  for (int64_t i = 0; i < n; i++) {
    int b = (int)(v[i] * nbins);
    b     = b < 0 ? 0 : b >= nbins ? nbins - 1 : b;
    hist[b] += 1;
  }
  for (int b = 0; b < nbins; b++) tot += hist[b], sum += hist[b] * (b + 0.5) / nbins;
  for (int j = 1; j < nbins; j++) { /* class 0 = bins < j */
    w0 += hist[j - 1];
    s0 += hist[j - 1] * (j - 0.5) / nbins;
    const double w1 = tot - w0;
    if (w0 <= 0 || w1 <= 0) continue;
    const double m0 = s0 / w0, m1 = (sum - s0) / w1, between = w0 * w1 * (m0 - m1) * (m0 - m1);
    if (between > best) best = between, t = (double)j / nbins;
  }
  PetscFree(hist);
  return t;
}

/* ------------------------------------------------------------------ seeds */

void bo_fcam_seed_defaults(bo_fcam_seed_opts *o)
{
  o->sl_max = 1; o->sl_min = 1; o->ksz = 3; o->erode = 11; o->min_p = 0.1;
}

static PetscErrorCode check_seed_opts(const bo_fcam_seed_opts *o)
{
  PetscFunctionBeginUser;
  CHECK(o->sl_max >= 1 && o->sl_min >= 1, "fcam: seeds sl_max %d, sl_min %d; expected at least one seed of each kind", o->sl_max, o->sl_min);
  CHECK(o->ksz >= 1 && o->ksz % 2 == 1 && o->erode >= 1 && o->erode % 2 == 1, "fcam: seeds ksz %d, erode %d; expected odd window sizes >= 1", o->ksz, o->erode);
  CHECK(o->min_p > 0 && o->min_p < 1, "fcam: seeds min_p %g; expected 0 < min_p < 1", o->min_p);
  PetscFunctionReturn(0);
}

/* out = in eroded (op 0) or dilated (op 1) by a k x k square; outside pixels are neutral. */
static void morph(int64_t H, int64_t W, const uint8_t *in, int k, int op, uint8_t *tmp, uint8_t *out)
{
  const int r = k / 2;
  for (int64_t y = 0; y < H; y++) /* rows */
    for (int64_t x = 0; x < W; x++) {
      uint8_t v = op ? 0 : 1;
      for (int64_t u = PetscMax(0, x - r); u <= PetscMin(W - 1, x + r); u++) v = op ? (v | in[y * W + u]) : (v & in[y * W + u]);
      tmp[y * W + x] = v;
    }
  for (int64_t y = 0; y < H; y++) /* columns */
    for (int64_t x = 0; x < W; x++) {
      uint8_t v = op ? 0 : 1;
      for (int64_t u = PetscMax(0, y - r); u <= PetscMin(H - 1, y + r); u++) v = op ? (v | tmp[u * W + x]) : (v & tmp[u * W + x]);
      out[y * W + x] = v;
    }
}

typedef struct {
  double  v;
  int64_t i;
} vi_pair;

static int cmp_vi(const void *a, const void *b)
{
  const vi_pair *p = a, *q = b;
  if (p->v != q->v) return p->v < q->v ? -1 : 1;
  return p->i < q->i ? -1 : p->i > q->i;
}

PetscErrorCode bo_fcam_seed_regions(int64_t H, int64_t W, const double *cam, const bo_fcam_seed_opts *o, uint8_t *pos, uint8_t *neg)
{
  const int64_t n = H * W;
  uint8_t      *raw, *tmp;
  vi_pair      *order;
  int64_t       npos = 0;

  PetscFunctionBeginUser;
  PetscCall(check_seed_opts(o));
  CHECK(H >= 1 && W >= 1, "fcam: seeds on a %lld x %lld map; expected a non-empty map", (long long)H, (long long)W);
  for (int64_t i = 0; i < n; i++) CHECK(isfinite(cam[i]), "fcam: seeds: CAM value %g at pixel %lld; expected a finite CAM", cam[i], (long long)i);
  PetscCall(PetscMalloc3(n, &raw, n, &tmp, n, &order));
  const double t = bo_fcam_otsu(n, cam, 256);
  for (int64_t i = 0; i < n; i++) raw[i] = cam[i] > t;
  morph(H, W, raw, o->erode, 0, tmp, pos);
  for (int64_t i = 0; i < n; i++) npos += pos[i];
  if (!npos) memcpy(pos, raw, (size_t)n);
  for (int64_t i = 0; i < n; i++) order[i].v = cam[i], order[i].i = i;
  qsort(order, (size_t)n, sizeof *order, cmp_vi);
  memset(neg, 0, (size_t)n);
  const int64_t m = PetscMax(1, (int64_t)ceil(o->min_p * (double)n));
  for (int64_t j = 0; j < m && j < n; j++) neg[order[j].i] = 1;
  PetscCall(PetscFree3(raw, tmp, order));
  PetscFunctionReturn(0);
}

/* draw up to m members of flags (count c) uniformly without replacement (partial Fisher-Yates on the
 * list of members, in index order) into sel. */
static void draw(int64_t n, const uint8_t *flags, int m, bo_rng *r, int64_t *list, uint8_t *sel)
{
  int64_t c = 0;
  if (n <= 0) return;
  for (int64_t i = 0; i < n; i++)
    if (flags[i]) list[c++] = i;
  for (int64_t i = 0; i < n; i++) sel[i] = 0;
  for (int64_t j = 0; j < m && j < c; j++) {
    const int64_t k = j + (int64_t)bo_rng_below(r, (uint64_t)(c - j)), a = list[k];
    list[k] = list[j], list[j] = a;
    sel[a]  = 1;
  }
}

PetscErrorCode bo_fcam_sample_seeds(int64_t H, int64_t W, const uint8_t *pos, const uint8_t *neg, const bo_fcam_seed_opts *o, bo_rng *r, uint8_t *labels)
{
  const int64_t n = H * W;
  int64_t      *list;
  uint8_t      *sel, *tmp, *fg, *bg;

  PetscFunctionBeginUser;
  PetscCall(check_seed_opts(o));
  CHECK(H >= 1 && W >= 1, "fcam: seeds on a %lld x %lld map; expected a non-empty map", (long long)H, (long long)W);
  PetscCall(PetscMalloc5(n, &list, n, &sel, n, &tmp, n, &fg, n, &bg));
  draw(n, pos, o->sl_max, r, list, sel);
  morph(H, W, sel, o->ksz, 1, tmp, fg);
  draw(n, neg, o->sl_min, r, list, sel);
  morph(H, W, sel, o->ksz, 1, tmp, bg);
  for (int64_t i = 0; i < n; i++) labels[i] = fg[i] && !bg[i] ? 1 : bg[i] && !fg[i] ? 0 : BO_LABEL_IGNORE;
  PetscCall(PetscFree5(list, sel, tmp, fg, bg));
  PetscFunctionReturn(0);
}

/* ------------------------------------------------------------------ bilateral kernel */

PetscErrorCode bo_fcam_kernel_create(int64_t H, int64_t W, int64_t c, const double *image, int64_t s, double sigma_xy, double sigma_rgb, bo_fcam_kernel *k)
{
  double *mean;

  PetscFunctionBeginUser;
  CHECK(s >= 1 && H % s == 0 && W % s == 0 && H >= s && W >= s, "fcam: CRF stride %lld on a %lld x %lld image; expected a stride dividing both sides", (long long)s, (long long)H, (long long)W);
  CHECK(c >= 1 && c <= 16, "fcam: CRF image with %lld channels; expected 1..16", (long long)c);
  CHECK(isfinite(sigma_xy) && sigma_xy > 0 && isfinite(sigma_rgb) && sigma_rgb > 0, "fcam: CRF sigma_xy %g, sigma_rgb %g; expected finite positive widths", sigma_xy, sigma_rgb);
  k->H = H; k->W = W; k->s = s; k->hb = H / s; k->wb = W / s; k->nb = k->hb * k->wb;
  CHECK(k->nb <= 20000, "fcam: CRF grid of %lld blocks; expected at most 20000 (raise the stride)", (long long)k->nb);
  const int64_t nb = k->nb;
  PetscCall(PetscMalloc1((size_t)(nb * nb), &k->K));
  PetscCall(PetscMalloc1(nb, &k->rowsum));
  PetscCall(PetscCalloc1(nb * c, &mean));
  for (int64_t y = 0; y < H; y++)
    for (int64_t x = 0; x < W; x++)
      for (int64_t q = 0; q < c; q++) {
        CHECK(isfinite(image[(y * W + x) * c + q]), "fcam: CRF image value at pixel %lld is not finite; expected a finite image", (long long)(y * W + x));
        mean[((y / s) * k->wb + x / s) * c + q] += image[(y * W + x) * c + q] / (double)(s * s);
      }
  const double axy = 0.5 / (sigma_xy * sigma_xy), argb = 0.5 / (sigma_rgb * sigma_rgb);
  for (int64_t b = 0; b < nb; b++) {
    double rs = 0;
    for (int64_t e = 0; e < nb; e++) {
      const double dx = (double)(b % k->wb - e % k->wb), dy = (double)(b / k->wb - e / k->wb);
      double       dc = 0;
      for (int64_t q = 0; q < c; q++) dc += (mean[b * c + q] - mean[e * c + q]) * (mean[b * c + q] - mean[e * c + q]);
      const float v = b == e ? 0.0f : (float)exp(-axy * (dx * dx + dy * dy) - argb * dc);
      k->K[b * nb + e] = v;
      rs += v;
    }
    k->rowsum[b] = rs;
  }
  PetscCall(PetscFree(mean));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_fcam_kernel_destroy(bo_fcam_kernel *k)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree(k->K));
  PetscCall(PetscFree(k->rowsum));
  PetscFunctionReturn(0);
}

void bo_fcam_kernel_apply(const bo_fcam_kernel *k, int nv, const double *v, double *out)
{
  const int64_t nb = k->nb;
  for (int64_t b = 0; b < nb; b++) {
    const float *row = k->K + b * nb;
    if (nv == 2) { /* the common case: both classes in one pass over K */
      double a0 = 0, a1 = 0;
      const double *v0 = v, *v1 = v + nb;
      for (int64_t e = 0; e < nb; e++) a0 += (double)row[e] * v0[e], a1 += (double)row[e] * v1[e];
      out[b] = a0, out[nb + b] = a1;
    } else
      for (int q = 0; q < nv; q++) {
        double a = 0;
        for (int64_t e = 0; e < nb; e++) a += (double)row[e] * v[q * nb + e];
        out[q * nb + b] = a;
      }
  }
}

/* Sbar (2 x nb) block means of p (N x 2). */
static void block_means(const bo_fcam_kernel *k, const double *p, double *sbar)
{
  const int64_t nb = k->nb, s = k->s;
  memset(sbar, 0, sizeof(double) * (size_t)(2 * nb));
  for (int64_t y = 0; y < k->H; y++)
    for (int64_t x = 0; x < k->W; x++) {
      const int64_t b = (y / s) * k->wb + x / s, i = y * k->W + x;
      sbar[b] += p[2 * i], sbar[nb + b] += p[2 * i + 1];
    }
  for (int64_t b = 0; b < 2 * nb; b++) sbar[b] /= (double)(s * s);
}

/* ------------------------------------------------------------------ loss */

PetscErrorCode bo_fcam_loss(int64_t H, int64_t W, const double *logits, const uint8_t *seeds, const bo_fcam_kernel *k, const bo_fcam_loss_opts *o, double *terms, double *grad)
{
  const int64_t n = H * W;
  double       *p, *g, ce = 0, crf = 0, asc = 0;

  PetscFunctionBeginUser;
  CHECK(o->l_sl >= 0 && o->l_crf >= 0 && o->l_sz >= 0 && o->t > 0, "fcam: loss weights %g, %g, %g, t %g; expected weights >= 0 and t > 0", o->l_sl, o->l_crf, o->l_sz, o->t);
  CHECK(o->l_crf == 0 || (k && k->H == H && k->W == W), "fcam: CRF weight %g without a kernel of the image's size; expected a kernel", o->l_crf);
  PetscCall(PetscMalloc2(2 * n, &p, 2 * n, &g));
  bo_softmax_rows(n, 2, logits, 1.0, p);
  PetscArrayzero(g, 2 * n);
  { /* CE on the seeds */
    bo_loss_batch b = {.comm = PETSC_COMM_SELF, .n = n, .k = 2, .logits = logits, .ngroups = 1};
    PetscCall(bo_loss_ce(&b, seeds, NULL, o->l_sl, &ce, grad));
  }
  if (k) { /* CRF on the block grid */
    const int64_t nb = k->nb, s = k->s;
    double       *sbar, *ks;
    PetscCall(PetscMalloc2(2 * nb, &sbar, 2 * nb, &ks));
    block_means(k, p, sbar);
    bo_fcam_kernel_apply(k, 2, sbar, ks);
    for (int64_t b = 0; b < 2 * nb; b++) crf -= sbar[b] * ks[b];
    if (o->l_crf != 0)
      for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) {
          const int64_t b = (y / s) * k->wb + x / s, i = y * W + x;
          g[2 * i] += -2 * o->l_crf * ks[b] / (double)(s * s);
          g[2 * i + 1] += -2 * o->l_crf * ks[nb + b] / (double)(s * s);
        }
    PetscCall(PetscFree2(sbar, ks));
  }
  { /* ASC: both region sizes pushed up by the extended log-barrier */
    double size[2] = {0, 0}, d[2];
    for (int64_t i = 0; i < n; i++) size[0] += p[2 * i], size[1] += p[2 * i + 1];
    for (int r = 0; r < 2; r++) asc += 0.5 * bo_penalty(BO_PENALTY_ELB, -size[r], o->t, &d[r]);
    if (o->l_sz != 0)
      for (int64_t i = 0; i < n; i++) g[2 * i] += -0.5 * o->l_sz * d[0], g[2 * i + 1] += -0.5 * o->l_sz * d[1];
  }
  if (grad) bo_softmax_backward(n, 2, p, g, 1.0, 1.0, grad);
  if (terms) terms[0] = ce, terms[1] = crf, terms[2] = asc;
  PetscCall(PetscFree2(p, g));
  PetscFunctionReturn(0);
}

/* ------------------------------------------------------------------ head */

PetscErrorCode bo_fcam_head_create(int64_t d, int64_t hidden, bo_rng *r, bo_fcam_head *h)
{
  PetscFunctionBeginUser;
  CHECK(d >= 1 && hidden >= 0 && hidden <= 4096, "fcam: head with %lld inputs and %lld hidden units; expected d >= 1 and 0..4096 hidden", (long long)d, (long long)hidden);
  h->d = d; h->hidden = hidden;
  h->nparam = hidden ? d * hidden + hidden + 2 * hidden + 2 : 2 * d + 2;
  PetscCall(PetscCalloc1(h->nparam, &h->param));
  if (hidden) {
    double *w1 = h->param, *w2 = h->param + d * hidden + hidden;
    for (int64_t i = 0; i < d * hidden; i++) w1[i] = bo_rng_normal(r) * sqrt(2.0 / (double)d);
    for (int64_t i = 0; i < 2 * hidden; i++) w2[i] = bo_rng_normal(r) * sqrt(1.0 / (double)hidden);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_fcam_head_destroy(bo_fcam_head *h)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree(h->param));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_fcam_head_forward(const bo_fcam_head *h, int64_t n, const double *x, double *work, double *logits)
{
  const int64_t d = h->d, m = h->hidden;

  PetscFunctionBeginUser;
  if (!m) {
    const double *W = h->param, *b = h->param + 2 * d;
    for (int64_t i = 0; i < n; i++) {
      double z0 = b[0], z1 = b[1];
      for (int64_t j = 0; j < d; j++) z0 += x[i * d + j] * W[2 * j], z1 += x[i * d + j] * W[2 * j + 1];
      logits[2 * i] = z0, logits[2 * i + 1] = z1;
    }
    PetscFunctionReturn(0);
  }
  CHECK(work, "fcam: MLP head forward without workspace; expected n x hidden doubles");
  const double *W1 = h->param, *b1 = W1 + d * m, *W2 = b1 + m, *b2 = W2 + 2 * m;
  for (int64_t i = 0; i < n; i++) {
    double *a = work + i * m;
    for (int64_t u = 0; u < m; u++) a[u] = b1[u];
    for (int64_t j = 0; j < d; j++) {
      const double xv = x[i * d + j], *wr = W1 + j * m;
      for (int64_t u = 0; u < m; u++) a[u] += xv * wr[u];
    }
    double z0 = b2[0], z1 = b2[1];
    for (int64_t u = 0; u < m; u++) {
      a[u] = a[u] > 0 ? a[u] : 0;
      z0 += a[u] * W2[2 * u], z1 += a[u] * W2[2 * u + 1];
    }
    logits[2 * i] = z0, logits[2 * i + 1] = z1;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_fcam_head_backward(const bo_fcam_head *h, int64_t n, const double *x, const double *work, const double *dz, double *dp)
{
  const int64_t d = h->d, m = h->hidden;

  PetscFunctionBeginUser;
  PetscArrayzero(dp, h->nparam);
  if (!m) {
    double *dW = dp, *db = dp + 2 * d;
    for (int64_t i = 0; i < n; i++) {
      const double g0 = dz[2 * i], g1 = dz[2 * i + 1];
      if (g0 == 0 && g1 == 0) continue;
      for (int64_t j = 0; j < d; j++) dW[2 * j] += x[i * d + j] * g0, dW[2 * j + 1] += x[i * d + j] * g1;
      db[0] += g0, db[1] += g1;
    }
    PetscFunctionReturn(0);
  }
  const double *W2 = h->param + d * m + m;
  double       *dW1 = dp, *db1 = dW1 + d * m, *dW2 = db1 + m, *db2 = dW2 + 2 * m, *da;
  PetscCall(PetscMalloc1(m, &da));
  for (int64_t i = 0; i < n; i++) {
    const double  g0 = dz[2 * i], g1 = dz[2 * i + 1], *a = work + i * m;
    if (g0 == 0 && g1 == 0) continue;
    db2[0] += g0, db2[1] += g1;
    for (int64_t u = 0; u < m; u++) {
      dW2[2 * u] += a[u] * g0, dW2[2 * u + 1] += a[u] * g1;
      da[u] = a[u] > 0 ? W2[2 * u] * g0 + W2[2 * u + 1] * g1 : 0;
      db1[u] += da[u];
    }
    for (int64_t j = 0; j < d; j++) {
      const double xv = x[i * d + j];
      double      *wr = dW1 + j * m;
      for (int64_t u = 0; u < m; u++) wr[u] += xv * da[u];
    }
  }
  PetscCall(PetscFree(da));
  PetscFunctionReturn(0);
}

/* ------------------------------------------------------------------ per-image fit */

void bo_fcam_fit_defaults(bo_fcam_fit_opts *o)
{
  bo_fcam_seed_defaults(&o->seeds);
  o->loss.l_sl = 1; o->loss.l_crf = 2e-9; o->loss.l_sz = 0.1; o->loss.t = 1;
  o->hidden = 32; o->steps = 100; o->t_growth = 1.01; o->t_max = 10;
  bo_optim_defaults_adam(&o->optim);
  o->optim.lr = 0.01;
  o->seed = 1;
}

PetscErrorCode bo_fcam_fit(const bo_fcam_fit_opts *o, int64_t id, int64_t H, int64_t W, int64_t d, const double *x, const double *cam, const bo_fcam_kernel *k, double *fg, double *trace)
{
  const int64_t     n = H * W;
  bo_fcam_head      head;
  bo_optim          opt;
  bo_rng            r;
  bo_fcam_loss_opts lo = o->loss;
  uint8_t          *pos, *neg, *seeds;
  double           *z, *gz, *gp, *work = NULL, terms[3];

  PetscFunctionBeginUser;
  CHECK(o->steps >= 1 && o->t_growth >= 1 && o->t_max >= o->loss.t, "fcam: fit with %d steps, t growth %g, t max %g; expected steps >= 1, growth >= 1 and t_max >= t", o->steps, o->t_growth, o->t_max);
  CHECK(id >= 0 && id < ((int64_t)1 << 31), "fcam: image id %lld; expected 0 <= id < 2^31", (long long)id);
  bo_rng_init(&r, o->seed, (uint64_t)id, BO_FCAM_RNG_INIT);
  PetscCall(bo_fcam_head_create(d, o->hidden, &r, &head));
  PetscCall(bo_optim_create(&o->optim, head.nparam, &opt));
  PetscCall(PetscMalloc3(n, &pos, n, &neg, n, &seeds));
  PetscCall(PetscMalloc3(2 * n, &z, 2 * n, &gz, head.nparam, &gp));
  if (o->hidden) PetscCall(PetscMalloc1(n * o->hidden, &work));
  PetscCall(bo_fcam_seed_regions(H, W, cam, &o->seeds, pos, neg));
  for (int step = 0; step < o->steps; step++) {
    bo_rng_init(&r, o->seed, ((uint64_t)id << 32) | (uint64_t)step, BO_FCAM_RNG_SEEDS);
    PetscCall(bo_fcam_sample_seeds(H, W, pos, neg, &o->seeds, &r, seeds));
    PetscCall(bo_fcam_head_forward(&head, n, x, work, z));
    PetscArrayzero(gz, 2 * n);
    PetscCall(bo_fcam_loss(H, W, z, seeds, lo.l_crf > 0 ? k : NULL, &lo, terms, gz));
    if (trace) {
      trace[4 * step + 1] = terms[0], trace[4 * step + 2] = terms[1], trace[4 * step + 3] = terms[2];
      trace[4 * step]     = lo.l_sl * terms[0] + lo.l_crf * terms[1] + lo.l_sz * terms[2];
    }
    PetscCall(bo_fcam_head_backward(&head, n, x, work, gz, gp));
    PetscCall(bo_optim_step(&opt, gp, head.param));
    lo.t = PetscMin(o->t_max, lo.t * o->t_growth);
  }
  PetscCall(bo_fcam_head_forward(&head, n, x, work, z));
  bo_softmax_rows(n, 2, z, 1.0, gz);
  for (int64_t i = 0; i < n; i++) fg[i] = gz[2 * i + 1];
  PetscCall(PetscFree(work));
  PetscCall(PetscFree3(z, gz, gp));
  PetscCall(PetscFree3(pos, neg, seeds));
  PetscCall(bo_optim_destroy(&opt));
  PetscCall(bo_fcam_head_destroy(&head));
  PetscFunctionReturn(0);
}

/* ------------------------------------------------------------------ mean-field CRF */

PetscErrorCode bo_fcam_meanfield(const bo_fcam_kernel *k, const double *cam, double weight, int iters, double *out)
{
  const int64_t n = k->H * k->W, nb = k->nb;
  double       *q, *sbar, *m;

  PetscFunctionBeginUser;
  CHECK(isfinite(weight) && weight >= 0 && iters >= 0, "fcam: mean-field weight %g, %d iterations; expected weight >= 0 and iterations >= 0", weight, iters);
  PetscCall(PetscMalloc3(2 * n, &q, 2 * nb, &sbar, 2 * nb, &m));
  for (int64_t i = 0; i < n; i++) {
    const double c = PetscMin(1 - 1e-4, PetscMax(1e-4, cam[i]));
    q[2 * i] = 1 - c, q[2 * i + 1] = c;
  }
  for (int it = 0; it < iters; it++) {
    block_means(k, q, sbar);
    bo_fcam_kernel_apply(k, 2, sbar, m);
    for (int64_t y = 0; y < k->H; y++)
      for (int64_t x = 0; x < k->W; x++) {
        const int64_t i = y * k->W + x, b = (y / k->s) * k->wb + x / k->s;
        const double  rs = k->rowsum[b] > 0 ? k->rowsum[b] : 1, c = PetscMin(1 - 1e-4, PetscMax(1e-4, cam[i]));
        const double  u0 = log(1 - c) + weight * m[b] / rs, u1 = log(c) + weight * m[nb + b] / rs, mx = PetscMax(u0, u1);
        const double  e0 = exp(u0 - mx), e1 = exp(u1 - mx);
        q[2 * i] = e0 / (e0 + e1), q[2 * i + 1] = e1 / (e0 + e1);
      }
  }
  for (int64_t i = 0; i < n; i++) out[i] = q[2 * i + 1];
  PetscCall(PetscFree3(q, sbar, m));
  PetscFunctionReturn(0);
}

/* ------------------------------------------------------------------ metrics */

static double box_iou(const int64_t *a, const int64_t *b) /* boxes y0, x0, y1, x1 inclusive */
{
  const int64_t iy = PetscMin(a[2], b[2]) - PetscMax(a[0], b[0]) + 1, ix = PetscMin(a[3], b[3]) - PetscMax(a[1], b[1]) + 1;
  const double  inter = iy > 0 && ix > 0 ? (double)(iy * ix) : 0;
  const double  ua = (double)((a[2] - a[0] + 1) * (a[3] - a[1] + 1)), ub = (double)((b[2] - b[0] + 1) * (b[3] - b[1] + 1));
  return inter / (ua + ub - inter);
}

PetscErrorCode bo_fcam_image_metrics(int64_t H, int64_t W, const double *map, const uint8_t *gt, int nthr, double *iou, double *box_v1, double *box_v2, int nbins, int64_t *hist_fg, int64_t *hist_bg, double *ap)
{
  const int64_t n = H * W;
  int64_t       gbox[4] = {H, W, -1, -1}, npos = 0, *stack, *hf, *hb;
  int32_t      *comp;

  PetscFunctionBeginUser;
  CHECK(nthr >= 1 && nbins >= 2, "fcam: metrics with %d thresholds and %d bins; expected >= 1 and >= 2", nthr, nbins);
  for (int64_t i = 0; i < n; i++) {
    CHECK(isfinite(map[i]) && gt[i] <= 1, "fcam: metrics: map value %g or mask %d at pixel %lld; expected a finite map and a 0/1 mask", map[i], (int)gt[i], (long long)i);
    if (gt[i]) {
      const int64_t y = i / W, x = i % W;
      gbox[0] = PetscMin(gbox[0], y), gbox[1] = PetscMin(gbox[1], x), gbox[2] = PetscMax(gbox[2], y), gbox[3] = PetscMax(gbox[3], x);
      npos++;
    }
  }
  PetscCall(PetscMalloc2(n, &comp, n, &stack));
  for (int j = 0; j < nthr; j++) {
    const double tau = (double)j / nthr;
    int64_t      inter = 0, uni = 0, best = -1, bestsize = 0;
    double       v2 = 0;
    for (int64_t i = 0; i < n; i++) {
      const int on = map[i] >= tau;
      inter += on && gt[i], uni += on || gt[i];
      comp[i] = on ? 0 : -1; /* 0: unvisited foreground */
    }
    iou[j] = uni ? (double)inter / (double)uni : 1;
    /* 8-connected components by depth-first flood fill */
    int32_t ncomp = 0;
    int64_t bb[4], lbox[4] = {0, 0, -1, -1};
    for (int64_t s = 0; s < n; s++) {
      if (comp[s] != 0) continue;
      int64_t top = 0, size = 0;
      ncomp++;
      comp[s] = ncomp, stack[top++] = s;
      bb[0] = bb[2] = s / W, bb[1] = bb[3] = s % W;
      while (top) {
        const int64_t i = stack[--top], y = i / W, x = i % W;
        size++;
        bb[0] = PetscMin(bb[0], y), bb[1] = PetscMin(bb[1], x), bb[2] = PetscMax(bb[2], y), bb[3] = PetscMax(bb[3], x);
        for (int64_t dy = -1; dy <= 1; dy++)
          for (int64_t dx = -1; dx <= 1; dx++) {
            const int64_t yy = y + dy, xx = x + dx;
            if (yy < 0 || yy >= H || xx < 0 || xx >= W || comp[yy * W + xx] != 0) continue;
            comp[yy * W + xx] = ncomp, stack[top++] = yy * W + xx;
          }
      }
      if (npos) v2 = PetscMax(v2, box_iou(bb, gbox));
      if (size > bestsize) bestsize = size, best = ncomp, memcpy(lbox, bb, sizeof bb);
    }
    box_v1[j] = best > 0 && npos ? box_iou(lbox, gbox) : 0;
    box_v2[j] = v2;
  }
  /* histograms and the image's own AP */
  PetscCall(PetscCalloc2(nbins, &hf, nbins, &hb));
  for (int64_t i = 0; i < n; i++) {
    int b = (int)(map[i] * nbins);
    b     = b < 0 ? 0 : b >= nbins ? nbins - 1 : b;
    if (gt[i]) hf[b]++;
    else hb[b]++;
  }
  for (int b = 0; b < nbins; b++) {
    if (hist_fg) hist_fg[b] += hf[b];
    if (hist_bg) hist_bg[b] += hb[b];
  }
  if (ap) *ap = bo_fcam_pxap(nbins, hf, hb);
  PetscCall(PetscFree2(hf, hb));
  PetscCall(PetscFree2(comp, stack));
  PetscFunctionReturn(0);
}

double bo_fcam_pxap(int nbins, const int64_t *hist_fg, const int64_t *hist_bg)
{
  double tp = 0, fp = 0, P = 0, area = 0, rnext = 0;
  for (int b = 0; b < nbins; b++) P += (double)hist_fg[b];
  if (P <= 0) return 0;
  /* thresholds j/nbins from the top: at j, predicted positive = bins >= j */
  for (int j = nbins - 1; j >= 0; j--) {
    tp += (double)hist_fg[j], fp += (double)hist_bg[j];
    const double r = tp / P, prec = tp + fp > 0 ? tp / (tp + fp) : 1;
    area += (r - rnext) * prec;
    rnext = r;
  }
  return area;
}
