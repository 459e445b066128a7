/* test_tim_kernels.c - the TIM kernels (solvers/tim_kernels.h) and the optimised TIM-ADM / TIM-GD
 * iterations (solvers/tim.c) against straightforward references: plain loops, libm exp and pow,
 * dgemm-free sums in long double.  The AVX2 and portable kernels must agree bit for bit. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <petscsys.h>

#include "boundopt/rng.h"
#include "boundopt/tim.h"
#include "tim_kernels.h"
#include "unit_support.h"

typedef struct {
  int64_t n, d, k;
} shape;

/* Row tails (n odd), column tails (d % 4, d % 8), class counts beyond one block of 5, and the
 * few-shot shapes (25 or 75 rows x 64 or 640 x 5). */
static const shape shapes[] = {{1, 1, 1}, {3, 5, 7}, {2, 3, 11}, {7, 67, 6}, {25, 64, 5}, {75, 64, 5}, {75, 640, 5}, {9, 12, 4}, {4, 8, 2}, {5, 9, 3}};

static double *random_array(bo_rng *r, int64_t n)
{
  double *a = malloc(sizeof *a * (size_t)n);
  for (int64_t i = 0; i < n; i++) a[i] = bo_rng_normal(r);
  return a;
}

static void expect_same_bits(const double *a, const double *b, int64_t n, const char *what, const shape *s)
{
  if (memcmp(a, b, sizeof *a * (size_t)n))
    for (int64_t i = 0; i < n; i++)
      if (memcmp(a + i, b + i, sizeof *a)) fail_msg("%s (n %lld, d %lld, k %lld): avx2 and portable differ at %lld: %.17g vs %.17g", what, (long long)s->n, (long long)s->d, (long long)s->k, (long long)i, a[i], b[i]);
}

/* |got - want| <= tol * scale with scale the sum of |terms| (the dot's condition). */
static void expect_close(double got, long double want, long double scale, const char *what, int64_t i)
{
  if (!(fabsl((long double)got - want) <= 8 * DBL_EPSILON * (scale + 1e-300L))) fail_msg("%s[%lld] = %.17g, reference %.17Lg (scale %.3Lg)", what, (long long)i, got, want, scale);
}

static void cross_products_equal_the_reference_and_both_implementations_agree(void **state)
{
  (void)state;
  const bo_tim_kernels *port = bo_tim_kernels_portable(), *vec = bo_tim_kernels_avx2();
  if (!vec) print_message("  (no AVX2+FMA on this CPU: portable kernels only)\n");
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    const shape *s = &shapes[si];
    bo_rng       r;
    bo_rng_init(&r, 31, si, 0);
    double *z = random_array(&r, s->n * s->d), *w = random_array(&r, s->k * s->d);
    double *x0 = malloc(sizeof *x0 * (size_t)(s->n * s->k)), *x1 = malloc(sizeof *x1 * (size_t)(s->n * s->k));
    port->cross(s->n, s->d, z, s->k, w, x0);
    for (int64_t i = 0; i < s->n; i++)
      for (int64_t c = 0; c < s->k; c++) {
        long double ref = 0, scale = 0;
        for (int64_t j = 0; j < s->d; j++) {
          ref += (long double)z[i * s->d + j] * w[c * s->d + j];
          scale += fabsl((long double)z[i * s->d + j] * w[c * s->d + j]);
        }
        expect_close(x0[i * s->k + c], ref, scale, "cross", i * s->k + c);
        if (x0[i * s->k + c] != bo_tim_dot(z + i * s->d, w + c * s->d, s->d)) fail_msg("cross is not bo_tim_dot at (%lld, %lld)", (long long)i, (long long)c);
      }
    if (vec) {
      memset(x1, 0xff, sizeof *x1 * (size_t)(s->n * s->k));
      vec->cross(s->n, s->d, z, s->k, w, x1);
      expect_same_bits(x1, x0, s->n * s->k, "cross", s);
    }
    free(z), free(w), free(x0), free(x1);
  }
}

static void weighted_row_sums_equal_the_reference_and_both_implementations_agree(void **state)
{
  (void)state;
  const bo_tim_kernels *port = bo_tim_kernels_portable(), *vec = bo_tim_kernels_avx2();
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    const shape *s = &shapes[si];
    bo_rng       r;
    bo_rng_init(&r, 32, si, 0);
    double *z = random_array(&r, s->n * s->d), *g = random_array(&r, s->n * s->k), *start = random_array(&r, s->k * s->d);
    double *o0 = malloc(sizeof *o0 * (size_t)(s->k * s->d)), *o1 = malloc(sizeof *o1 * (size_t)(s->k * s->d));
    for (int acc = 0; acc < 2; acc++) {
      memcpy(o0, start, sizeof *o0 * (size_t)(s->k * s->d));
      port->gather(s->n, s->d, z, s->k, g, acc, o0);
      for (int64_t c = 0; c < s->k; c++)
        for (int64_t j = 0; j < s->d; j++) {
          long double ref = acc ? start[c * s->d + j] : 0, scale = fabsl(ref);
          for (int64_t i = 0; i < s->n; i++) {
            ref += (long double)g[i * s->k + c] * z[i * s->d + j];
            scale += fabsl((long double)g[i * s->k + c] * z[i * s->d + j]);
          }
          expect_close(o0[c * s->d + j], ref, scale, acc ? "gather (accumulating)" : "gather", c * s->d + j);
        }
      if (vec) {
        memcpy(o1, start, sizeof *o1 * (size_t)(s->k * s->d));
        vec->gather(s->n, s->d, z, s->k, g, acc, o1);
        expect_same_bits(o1, o0, s->k * s->d, acc ? "gather (accumulating)" : "gather", s);
      }
    }
    free(z), free(g), free(start), free(o0), free(o1);
  }
}

/* Error in units of the last place of the correctly rounded e^x (libm's, within 1 ulp itself). */
static double ulps(double got, double x)
{
  const double want = exp(x);
  if (want == 0) return got == 0 ? 0 : INFINITY;
  const double ulp = nextafter(want, INFINITY) - want;
  return fabs(got - want) / ulp;
}

static void exp_is_within_two_ulp_of_libm_and_both_implementations_agree(void **state)
{
  (void)state;
  const bo_tim_kernels *port = bo_tim_kernels_portable(), *vec = bo_tim_kernels_avx2();
  enum { N = 200003 };
  double *x = malloc(sizeof *x * N), *y0 = malloc(sizeof *y0 * N), *y1 = malloc(sizeof *y1 * N), worst = 0, at = 0;
  bo_rng  r;
  bo_rng_init(&r, 33, 0, 0);
  for (int i = 0; i < N; i++) /* the softmax range, the q-update range, and the whole double range */
    x[i] = i % 3 == 0 ? -40 * bo_rng_uniform(&r) : i % 3 == 1 ? -2 * bo_rng_uniform(&r) : -745 + 1454.7 * bo_rng_uniform(&r);
  port->exp(N, x, y0);
  for (int i = 0; i < N; i++) {
    const double e = ulps(y0[i], x[i]);
    if (e > worst) worst = e, at = x[i];
  }
  print_message("  exp: worst error %.2f ulp (at x = %.17g) over %d arguments\n", worst, at, N);
  if (!(worst <= 2)) fail_msg("exp(%.17g): %.2f ulp from libm; expected <= 2", at, worst);
  if (vec) {
    vec->exp(N, x, y1);
    expect_same_bits(y1, y0, N, "exp", &(shape){N, 1, 1});
  }
  /* special values, through both implementations (a 9-element call covers the vector lanes and the tail) */
  const double sx[9] = {0.0, -0.0, -746.5, -1000, 710.5, -INFINITY, INFINITY, NAN, 709.7};
  double       sy[2][9];
  port->exp(9, sx, sy[0]);
  if (vec) vec->exp(9, sx, sy[1]);
  for (int v = 0; v < (vec ? 2 : 1); v++) {
    const double *y = sy[v];
    if (!(y[0] == 1 && y[1] == 1)) fail_msg("exp(+-0) = %.17g, %.17g; expected exactly 1", y[0], y[1]);
    if (!(y[2] == 0 && y[3] == 0 && y[5] == 0)) fail_msg("exp below -746 = %g, %g, %g; expected 0", y[2], y[3], y[5]);
    if (!(isinf(y[4]) && isinf(y[6]))) fail_msg("exp above 710 = %g, %g; expected inf", y[4], y[6]);
    if (!isnan(y[7])) fail_msg("exp(NaN) = %g; expected NaN", y[7]);
    if (!(ulps(y[8], 709.7) <= 2)) fail_msg("exp(709.7) = %.17g; expected %.17g", y[8], exp(709.7));
  }
  /* in place */
  memcpy(y1, x, sizeof *x * 1000);
  bo_tim_kernels_best()->exp(1000, y1, y1);
  port->exp(1000, x, y0);
  expect_same_bits(y1, y0, 1000, "exp in place", &(shape){1000, 1, 1});
  free(x), free(y0), free(y1);
}

static double log_ulps(double got, double y)
{
  const double want = log(y);
  if (want == 0) return got == 0 ? 0 : INFINITY;
  const double ulp = nextafter(fabs(want), INFINITY) - fabs(want);
  return fabs(got - want) / ulp;
}

static void log_is_within_two_ulp_of_libm_and_both_implementations_agree(void **state)
{
  (void)state;
  const bo_tim_kernels *port = bo_tim_kernels_portable(), *vec = bo_tim_kernels_avx2();
  enum { N = 200003 };
  double *y = malloc(sizeof *y * N), *l0 = malloc(sizeof *l0 * N), *l1 = malloc(sizeof *l1 * N), worst = 0, at = 0;
  bo_rng  r;
  bo_rng_init(&r, 34, 0, 0);
  for (int i = 0; i < N; i++) /* probabilities (+1e-12), values near 1, and 2^-1074 .. 2^1023 */
    y[i] = i % 3 == 0 ? bo_rng_uniform(&r) + 1e-12 : i % 3 == 1 ? 1 + 1e-3 * (bo_rng_uniform(&r) - 0.5) : ldexp(1 + bo_rng_uniform(&r), (int)(-1074 + 2097 * bo_rng_uniform(&r)));
  port->log(N, y, l0);
  for (int i = 0; i < N; i++) {
    const double e = log_ulps(l0[i], y[i]);
    if (e > worst) worst = e, at = y[i];
  }
  print_message("  log: worst error %.2f ulp (at y = %.17g) over %d arguments\n", worst, at, N);
  if (!(worst <= 2)) fail_msg("log(%.17g): %.2f ulp from libm; expected <= 2", at, worst);
  if (vec) {
    vec->log(N, y, l1);
    expect_same_bits(l1, l0, N, "log", &(shape){N, 1, 1});
  }
  const double sy[9] = {1.0, 0.0, -0.0, INFINITY, -1.0, NAN, 0x1p-1074, 2.0, 0.5};
  double       sl[2][9];
  port->log(9, sy, sl[0]);
  if (vec) vec->log(9, sy, sl[1]);
  for (int v = 0; v < (vec ? 2 : 1); v++) {
    const double *l = sl[v];
    if (!(l[0] == 0)) fail_msg("log 1 = %g; expected exactly 0", l[0]);
    if (!(l[1] == -INFINITY && l[2] == -INFINITY)) fail_msg("log(+-0) = %g, %g; expected -inf", l[1], l[2]);
    if (!(l[3] == INFINITY)) fail_msg("log inf = %g; expected inf", l[3]);
    if (!(isnan(l[4]) && isnan(l[5]))) fail_msg("log(-1), log(NaN) = %g, %g; expected NaN", l[4], l[5]);
    if (!(log_ulps(l[6], 0x1p-1074) <= 2 && log_ulps(l[7], 2.0) <= 2 && log_ulps(l[8], 0.5) <= 2)) fail_msg("log of 2^-1074, 2, 1/2: %.17g %.17g %.17g", l[6], l[7], l[8]);
  }
  free(y), free(l0), free(l1);
}

/* ---------------------------------------------------------------- the solvers against references */

typedef struct {
  int64_t  ns, nq, d, k;
  double  *zs, *zq, *w;
  int32_t *ys;
} task;

/* A 5-way-like task of L2-normalised rows around random unit class centres (as the few-shot
 * driver gives TIM), noise norm about 1.5, weights = the support means. */
static void make_task(task *t, uint64_t seed, int64_t shots, int64_t queries, int64_t d, int64_t k)
{
  bo_rng  r;
  double *mu = malloc(sizeof *mu * (size_t)(k * d));
  t->ns = shots * k, t->nq = queries * k, t->d = d, t->k = k;
  t->zs = malloc(sizeof *t->zs * (size_t)(t->ns * d));
  t->zq = malloc(sizeof *t->zq * (size_t)(t->nq * d));
  t->w  = malloc(sizeof *t->w * (size_t)(k * d));
  t->ys = malloc(sizeof *t->ys * (size_t)t->ns);
  bo_rng_init(&r, seed, 2, 0);
  for (int64_t i = 0; i < k * d; i++) mu[i] = bo_rng_normal(&r) / sqrt((double)d);
  for (int pass = 0; pass < 2; pass++) {
    const int64_t n = pass ? t->nq : t->ns;
    double       *z = pass ? t->zq : t->zs;
    for (int64_t i = 0; i < n; i++) {
      const int64_t c = pass ? i % k : i / shots;
      double        s = 0;
      if (!pass) t->ys[i] = (int32_t)c;
      for (int64_t j = 0; j < d; j++) {
        z[i * d + j] = mu[c * d + j] + 1.5 / sqrt((double)d) * bo_rng_normal(&r);
        s += z[i * d + j] * z[i * d + j];
      }
      for (int64_t j = 0; j < d; j++) z[i * d + j] /= sqrt(s);
    }
  }
  OK(bo_tim_init_weights(t->ns, d, t->zs, t->ys, k, t->w));
  free(mu);
}

static void task_free(task *t) { free(t->zs), free(t->zq), free(t->w), free(t->ys); }

static const double *row(const task *t, int64_t i) { return i < t->ns ? t->zs + i * t->d : t->zq + (i - t->ns) * t->d; }

/* p (n x k, support rows first) = softmax of -tau/2 |z - w|^2, the plain way (libm exp). */
static void reference_probabilities(const task *t, const double *w, double tau, double *p)
{
  for (int64_t i = 0; i < t->ns + t->nq; i++) {
    double lg[16], hi = -INFINITY, s = 0;
    for (int64_t c = 0; c < t->k; c++) {
      double dist = 0;
      for (int64_t j = 0; j < t->d; j++) dist += (row(t, i)[j] - w[c * t->d + j]) * (row(t, i)[j] - w[c * t->d + j]);
      hi = fmax(hi, lg[c] = -tau / 2 * dist);
    }
    for (int64_t c = 0; c < t->k; c++) s += (p[i * t->k + c] = exp(lg[c] - hi));
    for (int64_t c = 0; c < t->k; c++) p[i * t->k + c] /= s;
  }
}

/* ADM as the spec writes it: pow for p^(1+alpha), divisions, no kernels. */
static void reference_adm(const task *t, const bo_tim_opts *o, double *w)
{
  const int64_t ns = t->ns, nq = t->nq, k = t->k, d = t->d, n = ns + nq;
  const double  cs = o->lambda_ce / (1 + o->alpha), cq = (double)ns / (double)nq, beta = o->w_marginal / (o->w_marginal + 1);
  double       *p = malloc(sizeof *p * (size_t)(n * k)), *q = malloc(sizeof *q * (size_t)(nq * k)), *nw = malloc(sizeof *nw * (size_t)(k * d));
  for (int it = 0; it < o->iterations; it++) {
    reference_probabilities(t, w, o->tau, p);
    for (int64_t c = 0; c < k; c++) {
      double col = 0;
      for (int64_t i = 0; i < nq; i++) col += pow(p[(ns + i) * k + c], 1 + o->alpha);
      for (int64_t i = 0; i < nq; i++) q[i * k + c] = pow(p[(ns + i) * k + c], 1 + o->alpha) / pow(col, beta);
    }
    for (int64_t i = 0; i < nq; i++) {
      double s = 0;
      for (int64_t c = 0; c < k; c++) s += q[i * k + c];
      for (int64_t c = 0; c < k; c++) q[i * k + c] /= s;
    }
    for (int64_t c = 0; c < k; c++) {
      double den = 0;
      for (int64_t i = 0; i < ns; i++) den += cs * (t->ys[i] == c);
      for (int64_t i = 0; i < nq; i++) den += cq * q[i * k + c];
      for (int64_t j = 0; j < d; j++) {
        double num = 0;
        for (int64_t i = 0; i < n; i++) {
          const double target = i < ns ? (t->ys[i] == c) : q[(i - ns) * k + c], wt = i < ns ? cs : cq;
          num += wt * (target * row(t, i)[j] + p[i * k + c] * (w[c * d + j] - row(t, i)[j]));
        }
        nw[c * d + j] = w[c * d + j] + o->damping * (num / den - w[c * d + j]);
      }
    }
    memcpy(w, nw, sizeof *w * (size_t)(k * d));
  }
  free(p), free(q), free(nw);
}

/* GD as the spec writes it: the gradient of tim.h from plain loops, Adam written out. */
static void reference_gd(const task *t, const bo_tim_opts *o, double *w)
{
  const int64_t ns = t->ns, nq = t->nq, k = t->k, d = t->d, n = ns + nq;
  const double  eps = o->log_eps;
  double       *p = malloc(sizeof *p * (size_t)(n * k)), *g = malloc(sizeof *g * (size_t)(n * k)), *gw = malloc(sizeof *gw * (size_t)(k * d));
  double       *m = calloc((size_t)(k * d), sizeof *m), *v = calloc((size_t)(k * d), sizeof *v), phat[16];
  for (int it = 1; it <= o->iterations; it++) {
    reference_probabilities(t, w, o->tau, p);
    for (int64_t i = 0; i < ns; i++) {
      const double py = p[i * k + t->ys[i]], f = o->lambda_ce / (double)ns * py / (py + eps);
      for (int64_t c = 0; c < k; c++) g[i * k + c] = f * (p[i * k + c] - (c == t->ys[i]));
    }
    for (int64_t c = 0; c < k; c++) {
      phat[c] = 0;
      for (int64_t i = 0; i < nq; i++) phat[c] += p[(ns + i) * k + c] / (double)nq;
    }
    for (int64_t i = 0; i < nq; i++) {
      const double *pi = p + (ns + i) * k;
      double        gg[16], s = 0;
      for (int64_t c = 0; c < k; c++) {
        gg[c] = (o->w_marginal * (log(phat[c] + eps) + phat[c] / (phat[c] + eps)) - o->alpha * (log(pi[c] + eps) + pi[c] / (pi[c] + eps))) / (double)nq;
        s += pi[c] * gg[c];
      }
      for (int64_t c = 0; c < k; c++) g[(ns + i) * k + c] = pi[c] * (gg[c] - s);
    }
    for (int64_t c = 0; c < k; c++)
      for (int64_t j = 0; j < d; j++) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += g[i * k + c] * (row(t, i)[j] - w[c * d + j]);
        gw[c * d + j] = o->tau * s;
      }
    for (int64_t j = 0; j < k * d; j++) {
      m[j] = o->beta1 * m[j] + (1 - o->beta1) * gw[j];
      v[j] = o->beta2 * v[j] + (1 - o->beta2) * gw[j] * gw[j];
      w[j] -= o->lr / (1 - pow(o->beta1, it)) * m[j] / (sqrt(v[j]) / sqrt(1 - pow(o->beta2, it)) + o->eps);
    }
  }
  free(p), free(g), free(gw), free(m), free(v);
}

static void compare_weights(const task *t, const double *got, const double *want, double tol, const char *what)
{
  double err = 0, scale = 0;
  for (int64_t i = 0; i < t->k * t->d; i++) err = fmax(err, fabs(got[i] - want[i])), scale = fmax(scale, fabs(want[i]));
  print_message("  %s (d %lld): max |w - w_ref| = %.3g (max |w| %.3g)\n", what, (long long)t->d, err, scale);
  if (!(err <= tol * scale)) fail_msg("%s: max |w - w_ref| = %.3g, expected <= %.3g", what, err, tol * scale);
}

static void predictions(const task *t, const double *w, double tau, int32_t *pred)
{
  double *p = malloc(sizeof *p * (size_t)((t->ns + t->nq) * t->k));
  reference_probabilities(t, w, tau, p);
  for (int64_t i = 0; i < t->nq; i++) {
    int32_t best = 0;
    for (int32_t c = 1; c < t->k; c++)
      if (p[(t->ns + i) * t->k + c] > p[(t->ns + i) * t->k + best]) best = c;
    pred[i] = best;
  }
  free(p);
}

static void adm_equals_the_plain_spec_iteration_over_many_iterations(void **state)
{
  (void)state;
  const int64_t dims[3] = {64, 13, 640};
  for (int di = 0; di < 3; di++) {
    task        t;
    bo_tim_opts o;
    make_task(&t, 40 + di, 5, 15, dims[di], 5);
    bo_tim_defaults_adm(&o);
    o.iterations = di == 2 ? 20 : 150;
    const size_t kd = (size_t)(t.k * t.d);
    double      *w = malloc(sizeof *w * kd), *wr = malloc(sizeof *wr * kd);
    int32_t     *pred = malloc(sizeof *pred * (size_t)t.nq), *pref = malloc(sizeof *pref * (size_t)t.nq);
    double       moved = 0;
    memcpy(w, t.w, sizeof *w * kd), memcpy(wr, t.w, sizeof *w * kd);
    OK(bo_tim_adm(t.ns, t.nq, t.d, t.zs, t.ys, t.zq, t.k, &o, w, pred, NULL, NULL));
    reference_adm(&t, &o, wr);
    for (size_t j = 0; j < kd; j++) moved = fmax(moved, fabs(wr[j] - t.w[j]));
    if (!(moved > 1e-2)) fail_msg("ADM moved W by %g only: the comparison below proves little", moved);
    compare_weights(&t, w, wr, 1e-12, "TIM-ADM against the plain iteration");
    predictions(&t, wr, o.tau, pref);
    if (memcmp(pred, pref, sizeof *pred * (size_t)t.nq)) fail_msg("TIM-ADM predictions differ from the plain iteration's");
    free(w), free(wr), free(pred), free(pref);
    task_free(&t);
  }
}

static void gd_equals_the_plain_gradient_and_adam_over_many_iterations(void **state)
{
  (void)state;
  const int64_t dims[2] = {64, 13};
  for (int di = 0; di < 2; di++) {
    task        t;
    bo_tim_opts o;
    make_task(&t, 50 + di, 5, 15, dims[di], 5);
    bo_tim_defaults_gd(&o);
    o.iterations = 100, o.lr = 1e-3; /* larger steps than the default: W moves visibly */
    const size_t kd = (size_t)(t.k * t.d);
    double      *w = malloc(sizeof *w * kd), *wr = malloc(sizeof *wr * kd), moved = 0;
    int32_t     *pred = malloc(sizeof *pred * (size_t)t.nq), *pref = malloc(sizeof *pref * (size_t)t.nq);
    memcpy(w, t.w, sizeof *w * kd), memcpy(wr, t.w, sizeof *w * kd);
    OK(bo_tim_gd(t.ns, t.nq, t.d, t.zs, t.ys, t.zq, t.k, &o, w, pred, NULL, NULL));
    reference_gd(&t, &o, wr);
    for (size_t j = 0; j < kd; j++) moved = fmax(moved, fabs(wr[j] - t.w[j]));
    if (!(moved > 1e-2)) fail_msg("GD moved W by %g only: the comparison below proves little", moved);
    compare_weights(&t, w, wr, 1e-12, "TIM-GD against the plain gradient and Adam");
    predictions(&t, wr, o.tau, pref);
    if (memcmp(pred, pref, sizeof *pred * (size_t)t.nq)) fail_msg("TIM-GD predictions differ from the plain iteration's");
    free(w), free(wr), free(pred), free(pref);
    task_free(&t);
  }
}

/* ---------------------------------------------------------------- single precision */

static float *float_array(bo_rng *r, int64_t n)
{
  float *a = malloc(sizeof *a * (size_t)n);
  for (int64_t i = 0; i < n; i++) a[i] = (float)bo_rng_normal(r);
  return a;
}

static void expect_same_float_bits(const float *a, const float *b, int64_t n, const char *what, const shape *s)
{
  if (memcmp(a, b, sizeof *a * (size_t)n))
    for (int64_t i = 0; i < n; i++)
      if (memcmp(a + i, b + i, sizeof *a)) fail_msg("%s (n %lld, d %lld, k %lld): avx2 and portable differ at %lld: %.9g vs %.9g", what, (long long)s->n, (long long)s->d, (long long)s->k, (long long)i, (double)a[i], (double)b[i]);
}

/* |got - want| <= 8 FLT_EPSILON x the sum of |terms|: the float kernels against the double ones on
 * the same (float) inputs. */
static void expect_float_close(float got, double want, double scale, const char *what, int64_t i)
{
  if (!(fabs((double)got - want) <= 8 * FLT_EPSILON * (scale + 1e-30))) fail_msg("%s[%lld] = %.9g, double kernel %.17g (scale %.3g)", what, (long long)i, (double)got, want, scale);
}

static void single_precision_gather_matches_the_double_kernel_and_both_implementations_agree(void **state)
{
  (void)state;
  const bo_tim_kernels_f32 *port = bo_tim_kernels_f32_portable(), *vec = bo_tim_kernels_f32_avx2();
  const bo_tim_kernels     *k64  = bo_tim_kernels_portable();
  if (!vec) print_message("  (no AVX2+FMA on this CPU: portable kernels only)\n");
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    const shape  *s = &shapes[si];
    const int64_t n = s->n, d = s->d, k = s->k, ld = n + 3; /* a leading dimension beyond n */
    bo_rng        r;
    bo_rng_init(&r, 61, si, 0);
    float  *z = float_array(&r, n * d), *g = float_array(&r, k * ld);
    float  *o0 = malloc(sizeof *o0 * (size_t)(k * d)), *o1 = malloc(sizeof *o1 * (size_t)(k * d));
    double *zd = malloc(sizeof *zd * (size_t)(n * d)), *gd = malloc(sizeof *gd * (size_t)(n * k)), *od = malloc(sizeof *od * (size_t)(k * d));
    for (int64_t i = 0; i < n * d; i++) zd[i] = z[i];
    for (int64_t i = 0; i < n; i++)
      for (int64_t c = 0; c < k; c++) gd[i * k + c] = g[c * ld + i];
    port->gather(n, d, z, k, g, ld, o0);
    k64->gather(n, d, zd, k, gd, 0, od);
    for (int64_t c = 0; c < k; c++)
      for (int64_t j = 0; j < d; j++) {
        double scale = 0;
        for (int64_t i = 0; i < n; i++) scale += fabs(gd[i * k + c] * zd[i * d + j]);
        expect_float_close(o0[c * d + j], od[c * d + j], scale, "single gather", c * d + j);
      }
    if (vec) {
      vec->gather(n, d, z, k, g, ld, o1);
      expect_same_float_bits(o1, o0, k * d, "single gather", s);
    }
    free(z), free(g), free(o0), free(o1), free(zd), free(gd), free(od);
  }
}

/* crosst: transposed rows, each (row, class) one fmaf chain in feature order (the definition), close
 * to the double products, the same bits from both implementations, nothing written beyond row n
 * (the masked tail) and nothing read beyond it (zt is exactly d x n here: ASan would see it). */
static void single_precision_transposed_cross_is_its_definition_and_both_implementations_agree(void **state)
{
  (void)state;
  const bo_tim_kernels_f32 *port = bo_tim_kernels_f32_portable(), *vec = bo_tim_kernels_f32_avx2();
  const shape               ts[] = {{1, 1, 1}, {7, 3, 6}, {8, 64, 5}, {16, 5, 5}, {17, 9, 2}, {25, 64, 5}, {100, 64, 5}, {100, 640, 5}, {33, 13, 11}};
  for (size_t si = 0; si < sizeof ts / sizeof ts[0]; si++) {
    const int64_t n = ts[si].n, d = ts[si].d, k = ts[si].k, ldx = n + 5;
    bo_rng        r;
    bo_rng_init(&r, 63, si, 0);
    float *zt = float_array(&r, d * n), *w = float_array(&r, k * d);
    float *x0 = malloc(sizeof *x0 * (size_t)(k * ldx)), *x1 = malloc(sizeof *x1 * (size_t)(k * ldx));
    for (int64_t i = 0; i < k * ldx; i++) x0[i] = x1[i] = -7.0f; /* the padding must stay */
    port->crosst(n, d, zt, n, k, w, ldx, x0);
    for (int64_t c = 0; c < k; c++)
      for (int64_t i = 0; i < ldx; i++) {
        if (i >= n) {
          if (x0[c * ldx + i] != -7.0f) fail_msg("crosst wrote beyond row n = %lld (class %lld, row %lld)", (long long)n, (long long)c, (long long)i);
          continue;
        }
        float  chain = 0;
        double ref = 0, scale = 0;
        for (int64_t j = 0; j < d; j++) {
          chain = fmaf(zt[j * n + i], w[c * d + j], chain);
          ref += (double)zt[j * n + i] * w[c * d + j];
          scale += fabs((double)zt[j * n + i] * w[c * d + j]);
        }
        if (memcmp(&chain, x0 + c * ldx + i, sizeof chain)) fail_msg("crosst (n %lld, d %lld) at (%lld, %lld): %.9g, its definition %.9g", (long long)n, (long long)d, (long long)i, (long long)c, (double)x0[c * ldx + i], (double)chain);
        expect_float_close(x0[c * ldx + i], ref, (double)d * scale, "crosst", c * ldx + i);
      }
    if (vec) {
      vec->crosst(n, d, zt, n, k, w, ldx, x1);
      expect_same_float_bits(x1, x0, k * ldx, "crosst", &ts[si]);
    }
    free(zt), free(w), free(x0), free(x1);
  }
}

static void single_precision_log_is_within_two_float_ulp_and_both_implementations_agree(void **state)
{
  (void)state;
  const bo_tim_kernels_f32 *port = bo_tim_kernels_f32_portable(), *vec = bo_tim_kernels_f32_avx2();
  enum { N = 200003 };
  float *x = malloc(sizeof *x * N), *y0 = malloc(sizeof *y0 * N), *y1 = malloc(sizeof *y1 * N);
  double worst = 0, at = 0;
  bo_rng r;
  bo_rng_init(&r, 64, 0, 0);
  for (int i = 0; i < N; i++) /* the log-sum-exp range [1, k], then everything from subnormal to huge */
    x[i] = i % 2 ? (float)(1 + 10 * bo_rng_uniform(&r)) : (float)exp2(-149 + 276 * bo_rng_uniform(&r));
  port->log(N, x, y0);
  for (int i = 0; i < N; i++) {
    const double want = log((double)x[i]);
    const float  wf   = (float)want;
    const double ulp  = fabs((double)nextafterf(wf, wf > 0 ? INFINITY : -INFINITY) - (double)wf);
    const double e    = want == 0 ? (y0[i] == 0 ? 0 : INFINITY) : fabs((double)y0[i] - want) / ulp;
    if (e > worst) worst = e, at = x[i];
    if (y0[i] != bo_tim_logf1(x[i])) fail_msg("log kernel at %.9g is not bo_tim_logf1", (double)x[i]);
  }
  print_message("  single log: worst error %.2f float ulp (at y = %.9g) over %d arguments\n", worst, at, N);
  if (!(worst <= 2)) fail_msg("single log(%.9g): %.2f float ulp from log; expected <= 2", at, worst);
  if (vec) {
    vec->log(N, x, y1);
    expect_same_float_bits(y1, y0, N, "single log", &(shape){N, 1, 1});
  }
  const float sx[8] = {0.0f, -0.0f, INFINITY, -1.0f, NAN, 1.0f, 0x1p-149f, 2.0f};
  float       sy[2][8];
  port->log(8, sx, sy[0]);
  if (vec) vec->log(8, sx, sy[1]);
  for (int v = 0; v < (vec ? 2 : 1); v++) {
    const float *y = sy[v];
    if (!(y[0] == -INFINITY && y[1] == -INFINITY)) fail_msg("single log(+-0) = %g, %g; expected -inf", (double)y[0], (double)y[1]);
    if (!(y[2] == INFINITY)) fail_msg("single log(inf) = %g; expected inf", (double)y[2]);
    if (!(isnan(y[3]) && isnan(y[4]))) fail_msg("single log(-1), log(NaN) = %g, %g; expected NaN", (double)y[3], (double)y[4]);
    if (!(y[5] == 0)) fail_msg("single log(1) = %g; expected exactly 0", (double)y[5]);
    if (!(fabs((double)y[6] - log(0x1p-149)) <= 1e-5 && fabs((double)y[7] - log(2.0)) <= 1e-7)) fail_msg("single log(2^-149), log(2) = %.9g, %.9g", (double)y[6], (double)y[7]);
  }
  if (vec && memcmp(sy[0], sy[1], sizeof sy[0])) fail_msg("single log of special values: avx2 and portable differ");
  free(x), free(y0), free(y1);
}

/* The rows form of the float ADM (n <= d: W = C Z + s W_0, tim.c) with a W_0 outside the span of
 * the task's rows (the class means plus noise orthogonal to nothing in particular): the part of W_0
 * that no row sees must follow the same iteration, so the weights match double's. */
static void single_precision_adm_rows_form_keeps_a_w0_outside_the_rows_span(void **state)
{
  (void)state;
  for (uint64_t seed = 0; seed < 3; seed++) {
    task        t;
    bo_tim_opts o, os;
    bo_rng      r;
    make_task(&t, 90 + seed, 5, 15, 160 + 40 * (int64_t)seed, 5); /* n = 100 <= d: the rows form */
    bo_rng_init(&r, 91, seed, 0);
    for (int64_t i = 0; i < t.k * t.d; i++) t.w[i] += 0.05 * bo_rng_normal(&r) / sqrt((double)t.d);
    bo_tim_defaults_adm(&o);
    o.iterations = 60;
    os           = o;
    os.precision = BO_TIM_SINGLE;
    const size_t kd = (size_t)(t.k * t.d);
    double      *w = malloc(sizeof *w * kd), *ws = malloc(sizeof *ws * kd);
    double      *l = malloc(sizeof *l * (size_t)(o.iterations + 1)), *ls = malloc(sizeof *ls * (size_t)(o.iterations + 1));
    int32_t     *pred = malloc(sizeof *pred * (size_t)t.nq), *preds = malloc(sizeof *preds * (size_t)t.nq);
    memcpy(w, t.w, sizeof *w * kd), memcpy(ws, t.w, sizeof *w * kd);
    OK(bo_tim_adm(t.ns, t.nq, t.d, t.zs, t.ys, t.zq, t.k, &o, w, pred, NULL, l));
    OK(bo_tim_adm(t.ns, t.nq, t.d, t.zs, t.ys, t.zq, t.k, &os, ws, preds, NULL, ls));
    compare_weights(&t, ws, w, 1e-4, "single-precision TIM-ADM, rows form, W_0 off the rows' span, against double");
    if (!(fabs(ls[0] - l[0]) <= 1e-6 * fabs(l[0]))) fail_msg("rows form: loss at W_0 %.17g, double %.17g; expected the same W_0 in float", ls[0], l[0]);
    if (!(fabs(ls[o.iterations] - l[o.iterations]) <= 1e-3 * fabs(l[o.iterations]))) fail_msg("rows form: final loss %.9g, double %.9g", ls[o.iterations], l[o.iterations]);
    int differ = 0;
    for (int64_t i = 0; i < t.nq; i++) differ += pred[i] != preds[i];
    if (differ > 1) fail_msg("rows form: %d of %lld predictions differ from double; expected at most 1 (a near-tie)", differ, (long long)t.nq);
    free(w), free(ws), free(l), free(ls), free(pred), free(preds);
    task_free(&t);
  }
}

static void single_precision_exp_is_within_two_float_ulp_and_both_implementations_agree(void **state)
{
  (void)state;
  const bo_tim_kernels_f32 *port = bo_tim_kernels_f32_portable(), *vec = bo_tim_kernels_f32_avx2();
  enum { N = 200003 };
  float *x = malloc(sizeof *x * N), *y0 = malloc(sizeof *y0 * N), *y1 = malloc(sizeof *y1 * N);
  double worst = 0, at = 0;
  bo_rng r;
  bo_rng_init(&r, 62, 0, 0);
  for (int i = 0; i < N; i++) /* the softmax range, the q-update range, and the normal float results */
    x[i] = (float)(i % 3 == 0 ? -40 * bo_rng_uniform(&r) : i % 3 == 1 ? -2 * bo_rng_uniform(&r) : -87 + 175 * bo_rng_uniform(&r));
  port->exp(N, x, y0);
  for (int i = 0; i < N; i++) {
    const double want = exp((double)x[i]), ulp = (double)nextafterf((float)want, INFINITY) - (double)(float)want;
    const double e    = fabs((double)y0[i] - want) / ulp;
    if (e > worst) worst = e, at = x[i];
  }
  print_message("  single exp: worst error %.2f float ulp (at x = %.9g) over %d arguments\n", worst, at, N);
  if (!(worst <= 2)) fail_msg("single exp(%.9g): %.2f float ulp from exp; expected <= 2", at, worst);
  if (vec) {
    vec->exp(N, x, y1);
    expect_same_float_bits(y1, y0, N, "single exp", &(shape){N, 1, 1});
  }
  const float sx[9] = {0.0f, -0.0f, -200.0f, -INFINITY, 88.0f, INFINITY, NAN, -1.0f, 1.0f};
  float       sy[2][9];
  port->exp(9, sx, sy[0]);
  if (vec) vec->exp(9, sx, sy[1]);
  for (int v = 0; v < (vec ? 2 : 1); v++) {
    const float *y = sy[v];
    if (!(y[0] == 1 && y[1] == 1)) fail_msg("single exp(+-0) = %.9g, %.9g; expected exactly 1", (double)y[0], (double)y[1]);
    if (!(y[2] <= 0x1p-149f && y[3] <= 0x1p-149f)) fail_msg("single exp(-200), exp(-inf) = %g, %g; expected at most the smallest subnormal", (double)y[2], (double)y[3]);
    if (!(isfinite(y[4]) && isfinite(y[5]) && y[5] > 1e38f)) fail_msg("single exp(88), exp(inf) = %g, %g; expected finite (the clamp)", (double)y[4], (double)y[5]);
    if (!isnan(y[6])) fail_msg("single exp(NaN) = %g; expected NaN", (double)y[6]);
  }
  if (vec && memcmp(sy[0], sy[1], sizeof sy[0])) fail_msg("single exp of special values: avx2 and portable differ");
  free(x), free(y0), free(y1);
}

/* TIM-ADM in single precision against double on the same tasks: weights within float accuracy of
 * the double ones after 150 iterations, (nearly) the same predictions, and the losses of the single
 * path, evaluated in double, start at the double path's. */
static void single_precision_adm_follows_the_double_iteration(void **state)
{
  (void)state;
  const int64_t dims[3] = {64, 13, 640};
  int           differ = 0, total = 0;
  for (int di = 0; di < 3; di++)
    for (uint64_t seed = 0; seed < 4; seed++) {
      task        t;
      bo_tim_opts o, os;
      make_task(&t, 70 + 10 * di + seed, 5, 15, dims[di], 5);
      bo_tim_defaults_adm(&o);
      o.iterations = di == 2 ? 20 : 150;
      os           = o;
      os.precision = BO_TIM_SINGLE;
      const size_t kd = (size_t)(t.k * t.d);
      double      *w = malloc(sizeof *w * kd), *ws = malloc(sizeof *ws * kd), *pq = malloc(sizeof *pq * (size_t)(t.nq * t.k));
      double      *l = malloc(sizeof *l * (size_t)(o.iterations + 1)), *ls = malloc(sizeof *ls * (size_t)(o.iterations + 1));
      int32_t     *pred = malloc(sizeof *pred * (size_t)t.nq), *preds = malloc(sizeof *preds * (size_t)t.nq), *pred2 = malloc(sizeof *pred2 * (size_t)t.nq);
      memcpy(w, t.w, sizeof *w * kd), memcpy(ws, t.w, sizeof *w * kd);
      OK(bo_tim_adm(t.ns, t.nq, t.d, t.zs, t.ys, t.zq, t.k, &o, w, pred, NULL, l));
      OK(bo_tim_adm(t.ns, t.nq, t.d, t.zs, t.ys, t.zq, t.k, &os, ws, preds, pq, ls));
      if (seed == 0) compare_weights(&t, ws, w, 1e-4, "single-precision TIM-ADM against double");
      for (int64_t i = 0; i < t.nq; i++) differ += pred[i] != preds[i];
      total += (int)t.nq;
      if (!(fabs(ls[0] - l[0]) <= 1e-6 * fabs(l[0]))) fail_msg("single ADM: loss at W_0 %.17g, double %.17g; expected the same W_0 in float", ls[0], l[0]);
      if (!(fabs(ls[o.iterations] - l[o.iterations]) <= 1e-3 * fabs(l[o.iterations]))) fail_msg("single ADM: final loss %.9g, double %.9g", ls[o.iterations], l[o.iterations]);
      for (int64_t i = 0; i < t.nq; i++) {
        double s = 0;
        int    best = 0;
        for (int c = 0; c < t.k; c++) {
          s += pq[i * t.k + c];
          if (pq[i * t.k + c] > pq[i * t.k + best]) best = c;
        }
        if (!(fabs(s - 1) <= 1e-5) || best != preds[i]) fail_msg("single ADM: query %lld: pq sums to %.9g, argmax %d vs prediction %d", (long long)i, s, best, preds[i]);
      }
      /* deterministic: a second run gives the same bits */
      memcpy(w, t.w, sizeof *w * kd);
      OK(bo_tim_adm(t.ns, t.nq, t.d, t.zs, t.ys, t.zq, t.k, &os, w, pred2, NULL, NULL));
      if (memcmp(w, ws, sizeof *w * kd) || memcmp(pred2, preds, sizeof *pred2 * (size_t)t.nq)) fail_msg("single ADM: two runs differ");
      free(w), free(ws), free(pq), free(l), free(ls), free(pred), free(preds), free(pred2);
      task_free(&t);
    }
  print_message("  single vs double TIM-ADM: %d of %d query predictions differ\n", differ, total);
  if (!(differ * 200 <= total)) fail_msg("single vs double TIM-ADM: %d of %d predictions differ; expected at most 0.5 %%", differ, total);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("cross products Z W^T equal long-double sums (8 eps x condition) and the AVX2 kernel gives the portable bits", cross_products_equal_the_reference_and_both_implementations_agree),
    PROPERTY("weighted row sums G^T Z (fresh and accumulating) equal long-double sums and the AVX2 kernel gives the portable bits", weighted_row_sums_equal_the_reference_and_both_implementations_agree),
    PROPERTY("exp is within 2 ulp of libm on [-745, 710], exact at 0, 0 / inf / NaN at the ends, identical in both implementations", exp_is_within_two_ulp_of_libm_and_both_implementations_agree),
    PROPERTY("log is within 2 ulp of libm from 2^-1074 to 2^1024, exact at 1, -inf / inf / NaN at 0, inf and below 0, identical in both implementations", log_is_within_two_ulp_of_libm_and_both_implementations_agree),
    PROPERTY("TIM-ADM (150 iterations at d 64 and 13, 20 at 640) equals the spec's plain iteration with pow (relative 1e-12), same predictions", adm_equals_the_plain_spec_iteration_over_many_iterations),
    PROPERTY("single-precision G^T Z (leading dimension > n) is within 8 FLT_EPSILON x condition of the double kernel; AVX2 gives the portable bits", single_precision_gather_matches_the_double_kernel_and_both_implementations_agree),
    PROPERTY("single-precision exp is within 2 float ulp of exp on [-87, 88], exact at 0, clamped at the ends, NaN stays NaN, identical in both implementations", single_precision_exp_is_within_two_float_ulp_and_both_implementations_agree),
    PROPERTY("single-precision transposed cross products (crosst) are each row's fmaf chain in feature order, close to double, nothing written past row n; AVX2 gives the portable bits", single_precision_transposed_cross_is_its_definition_and_both_implementations_agree),
    PROPERTY("single-precision log is within 2 float ulp of log from 2^-149 to 2^127, exact at 1, -inf / inf / NaN at 0, inf and below 0, identical in both implementations", single_precision_log_is_within_two_float_ulp_and_both_implementations_agree),
    PROPERTY("single-precision TIM-ADM follows the double one (weights 1e-4 relative, <= 0.5 % predictions differ, same loss at W_0), deterministic", single_precision_adm_follows_the_double_iteration),
    PROPERTY("single-precision TIM-ADM in the rows form (n <= d) with W_0 off the span of the task's rows follows double (weights 1e-4 relative)", single_precision_adm_rows_form_keeps_a_w0_outside_the_rows_span),
    PROPERTY("TIM-GD (100 Adam steps) equals the plain gradient and a written-out Adam (relative 1e-12), same predictions", gd_equals_the_plain_gradient_and_adam_over_many_iterations),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
