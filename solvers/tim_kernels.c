/* tim_kernels.c - portable and AVX2+FMA implementations of the TIM kernels (tim_kernels.h).  Each
 * AVX2 kernel performs, lane by lane, the same operations in the same order as the portable one
 * (fma() there, _mm256_fmadd_pd here; -std=c17 keeps the compiler from contracting anything
 * else), so both give the same bits and a task's result does not depend on the CPU's vectors. */
#include "tim_kernels.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- definitions (portable) */

double bo_tim_dot(const double *u, const double *v, int64_t d)
{
  double  lane[4] = {0, 0, 0, 0};
  int64_t j       = 0;
  for (; j + 4 <= d; j += 4)
    for (int l = 0; l < 4; l++) lane[l] = fma(u[j + l], v[j + l], lane[l]);
  for (; j < d; j++) lane[0] = fma(u[j], v[j], lane[0]);
  return (lane[0] + lane[1]) + (lane[2] + lane[3]);
}

#define EXP_LO    -746.0
#define EXP_HI    710.0
#define LOG2E     1.4426950408889634074
#define SHIFT     6755399441055744.0 /* 1.5 * 2^52: x + SHIFT - SHIFT rounds x to an integer */
#define LN2_HI    6.93147180369123816490e-01 /* ln 2 with 21 trailing zero bits: n LN2_HI is exact */
#define LN2_LO    1.90821492927058770002e-10
#define EXP_BIAS  1023.0

/* 1/k!, k = 13 down to 2 (then 1 and 1). */
static const double exp_coef[12] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
                                    1.0 / 5040.0,       1.0 / 720.0,       1.0 / 120.0,      1.0 / 24.0,      1.0 / 6.0,      0.5};

/* 2^m for an integer-valued double m in [-1022, 1023]: the biased exponent m + 1023 placed in the
 * exponent field (the SHIFT trick leaves it in the low mantissa bits of m + 1023 + SHIFT). */
static double pow2i(double m)
{
  const double t = m + (EXP_BIAS + SHIFT);
  uint64_t     b;
  memcpy(&b, &t, sizeof b);
  b <<= 52;
  double r;
  memcpy(&r, &b, sizeof r);
  return r;
}

/* The body of bo_tim_exp1, inlined both into it and into the AVX2 kernel's scalar tail (where
 * fma() compiles to the instruction). */
static inline __attribute__((always_inline)) double exp1_body(double x)
{
  x = EXP_LO > x ? EXP_LO : x; /* as _mm256_max_pd(lo, x): NaN passes */
  x = EXP_HI < x ? EXP_HI : x;
  const double n = (x * LOG2E + SHIFT) - SHIFT;
  const double r = (x - n * LN2_HI) - n * LN2_LO;
  double       p = exp_coef[0];
  for (int c = 1; c < 12; c++) p = fma(p, r, exp_coef[c]);
  p = fma(p, r, 1.0);
  p = fma(p, r, 1.0);
  /* 2^n in two steps so that both factors are normal: n in [-1077, 1025] after the clamps */
  const double n1 = (n * 0.5 + SHIFT) - SHIFT, n2 = n - n1;
  return (p * pow2i(n1)) * pow2i(n2);
}

double bo_tim_exp1(double x) { return exp1_body(x); }

#define SQRT2     1.41421356237309504880
#define TWO52     4503599627370496.0
#define TWO54     18014398509481984.0
#define MANT_MASK 0x000fffffffffffffULL
#define ONE_BITS  0x3ff0000000000000ULL
#define TWO52_BITS 0x4330000000000000ULL

/* 2/(2k+1), k = 11 down to 1: log(1+f) = f - s (f - T), s = f/(2+f), T = sum_k 2/(2k+1) s^2k. */
static const double log_coef[11] = {2.0 / 23, 2.0 / 21, 2.0 / 19, 2.0 / 17, 2.0 / 15, 2.0 / 13, 2.0 / 11, 2.0 / 9, 2.0 / 7, 2.0 / 5, 2.0 / 3};

static inline __attribute__((always_inline)) double bits_to_double(uint64_t b)
{
  double r;
  memcpy(&r, &b, sizeof r);
  return r;
}

static inline __attribute__((always_inline)) double log1_body(double y)
{
  /* subnormals scaled into the normal range first (exactly) */
  const int    sub = y < 0x1p-1022;
  const double ys  = sub ? y * TWO54 : y;
  uint64_t     b;
  memcpy(&b, &ys, sizeof b);
  /* y = 2^e m with m in [1, 2) from the bits (exponent as a double via the 2^52 trick) */
  double e = bits_to_double(TWO52_BITS | ((b >> 52) & 0x7ff)) - TWO52 - EXP_BIAS - (sub ? 54.0 : 0.0);
  double m = bits_to_double((b & MANT_MASK) | ONE_BITS);
  const int big = m > SQRT2; /* m in [sqrt(1/2), sqrt(2)) */
  m             = big ? m * 0.5 : m;
  e             = big ? e + 1.0 : e;
  const double f = m - 1.0, s = f / (2.0 + f), z = s * s;
  double       t = log_coef[0];
  for (int c = 1; c < 11; c++) t = fma(t, z, log_coef[c]);
  t                = t * z;
  const double lo  = fma(-s, f - t, e * LN2_LO);
  double       res = e * LN2_HI + (f + lo);
  res              = y == 0 ? -INFINITY : res;
  res              = y == INFINITY ? INFINITY : res;
  res              = !(y >= 0) ? NAN : res;
  return res;
}

double bo_tim_log1(double y) { return log1_body(y); }

static void log_portable(int64_t n, const double *x, double *y)
{
  for (int64_t i = 0; i < n; i++) y[i] = log1_body(x[i]);
}

static void cross_portable(int64_t n, int64_t d, const double *z, int64_t k, const double *w, double *x)
{
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++) x[i * k + c] = bo_tim_dot(z + i * d, w + c * d, d);
}

static void gather_portable(int64_t n, int64_t d, const double *z, int64_t k, const double *g, int accumulate, double *out)
{
  if (!accumulate) memset(out, 0, sizeof *out * (size_t)(k * d));
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++) {
      const double gi = g[i * k + c];
      double      *o  = out + c * d;
      for (int64_t j = 0; j < d; j++) o[j] = fma(gi, z[i * d + j], o[j]);
    }
}

static void exp_portable(int64_t n, const double *x, double *y)
{
  for (int64_t i = 0; i < n; i++) y[i] = bo_tim_exp1(x[i]);
}

/* ---------------------------------------------------------------- AVX2 + FMA */

#define AVX2   __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))
#define ROWS   2 /* rows x classes of 4-lane accumulators in registers: 10 of the 16 */
#define CLASSES 5

/* R rows x P classes of cross products (R <= ROWS, P <= CLASSES: constants after inlining). */
AVX2 INLINE void cross_block(const int R, const int P, int64_t d, const double *z, const double *w, int64_t k, double *x)
{
  __m256d acc[ROWS][CLASSES];
  double  lane[4];
  int64_t j = 0;

#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) acc[r][p] = _mm256_setzero_pd();
#pragma GCC unroll 4
  for (; j + 4 <= d; j += 4) {
    __m256d zv[ROWS];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) zv[r] = _mm256_loadu_pd(z + r * d + j);
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
      const __m256d wv = _mm256_loadu_pd(w + p * d + j);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) acc[r][p] = _mm256_fmadd_pd(zv[r], wv, acc[r][p]);
    }
  }
  if (j == d) { /* no tail: hadd gives (a0 + a1, b0 + b1, a2 + a3, b2 + b3), the halves' sum the two dots */
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 8
      for (int p = 0; p + 1 < P; p += 2) {
        const __m256d h = _mm256_hadd_pd(acc[r][p], acc[r][p + 1]);
        _mm_storeu_pd(x + r * k + p, _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1)));
      }
      if (P % 2) {
        const __m256d h = _mm256_hadd_pd(acc[r][P - 1], acc[r][P - 1]);
        _mm_store_sd(x + r * k + P - 1, _mm_add_sd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1)));
      }
    }
    return;
  }
  for (int r = 0; r < R; r++)
    for (int p = 0; p < P; p++) {
      _mm256_storeu_pd(lane, acc[r][p]);
      for (int64_t t = j; t < d; t++) lane[0] = fma(z[r * d + t], w[p * d + t], lane[0]);
      x[r * k + p] = (lane[0] + lane[1]) + (lane[2] + lane[3]);
    }
}

AVX2 static void cross_avx2(int64_t n, int64_t d, const double *z, int64_t k, const double *w, double *x)
{
  for (int64_t i = 0; i < n; i += ROWS) {
    const int R = n - i >= ROWS ? ROWS : 1;
    for (int64_t c = 0; c < k; c += CLASSES) {
      const int     P  = k - c >= CLASSES ? CLASSES : (int)(k - c);
      const double *zi = z + i * d, *wc = w + c * d;
      double       *xi = x + i * k + c;
      switch (R * 8 + P) { /* constant R and P: the accumulators stay in registers */
      case 2 * 8 + 5: cross_block(2, 5, d, zi, wc, k, xi); break;
      case 2 * 8 + 4: cross_block(2, 4, d, zi, wc, k, xi); break;
      case 2 * 8 + 3: cross_block(2, 3, d, zi, wc, k, xi); break;
      case 2 * 8 + 2: cross_block(2, 2, d, zi, wc, k, xi); break;
      case 2 * 8 + 1: cross_block(2, 1, d, zi, wc, k, xi); break;
      case 1 * 8 + 5: cross_block(1, 5, d, zi, wc, k, xi); break;
      case 1 * 8 + 4: cross_block(1, 4, d, zi, wc, k, xi); break;
      case 1 * 8 + 3: cross_block(1, 3, d, zi, wc, k, xi); break;
      case 1 * 8 + 2: cross_block(1, 2, d, zi, wc, k, xi); break;
      default: cross_block(1, 1, d, zi, wc, k, xi); break;
      }
    }
  }
}

/* P classes (<= CLASSES) x V vectors of 4 columns (V <= 2) from column j, all n rows in order. */
AVX2 INLINE void gather_block(const int P, const int V, int64_t n, int64_t d, const double *z, int64_t k, const double *g, int64_t j, double *out)
{
  __m256d acc[CLASSES][2];
#pragma GCC unroll 8
  for (int p = 0; p < P; p++)
#pragma GCC unroll 2
    for (int v = 0; v < V; v++) acc[p][v] = _mm256_loadu_pd(out + p * d + j + 4 * v);
#pragma GCC unroll 4
  for (int64_t i = 0; i < n; i++) {
    __m256d zv[2];
#pragma GCC unroll 2
    for (int v = 0; v < V; v++) zv[v] = _mm256_loadu_pd(z + i * d + j + 4 * v);
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
      const __m256d gv = _mm256_broadcast_sd(g + i * k + p);
#pragma GCC unroll 2
      for (int v = 0; v < V; v++) acc[p][v] = _mm256_fmadd_pd(gv, zv[v], acc[p][v]);
    }
  }
#pragma GCC unroll 8
  for (int p = 0; p < P; p++)
#pragma GCC unroll 2
    for (int v = 0; v < V; v++) _mm256_storeu_pd(out + p * d + j + 4 * v, acc[p][v]);
}

#define GATHER_CASES(V) \
  switch (P) { \
  case 5: gather_block(5, V, n, d, z, k, gc, j, oc); break; \
  case 4: gather_block(4, V, n, d, z, k, gc, j, oc); break; \
  case 3: gather_block(3, V, n, d, z, k, gc, j, oc); break; \
  case 2: gather_block(2, V, n, d, z, k, gc, j, oc); break; \
  default: gather_block(1, V, n, d, z, k, gc, j, oc); break; \
  }

AVX2 static void gather_avx2(int64_t n, int64_t d, const double *z, int64_t k, const double *g, int accumulate, double *out)
{
  if (!accumulate) memset(out, 0, sizeof *out * (size_t)(k * d));
  for (int64_t c = 0; c < k; c += CLASSES) {
    const int     P  = k - c >= CLASSES ? CLASSES : (int)(k - c);
    const double *gc = g + c;
    double       *oc = out + c * d;
    int64_t       j  = 0;
    for (; j + 8 <= d; j += 8) GATHER_CASES(2)
    for (; j + 4 <= d; j += 4) GATHER_CASES(1)
    for (; j < d; j++) /* the d % 4 tail: the same fma in the same row order */
      for (int p = 0; p < P; p++) {
        double s = oc[p * d + j];
        for (int64_t i = 0; i < n; i++) s = fma(gc[i * k + p], z[i * d + j], s);
        oc[p * d + j] = s;
      }
  }
}

/* bo_tim_exp1 on 4 lanes: the same operations in the same order. */
AVX2 INLINE __m256d pow2i_avx2(__m256d m)
{
  const __m256d t = _mm256_add_pd(m, _mm256_set1_pd(EXP_BIAS + SHIFT));
  return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(t), 52));
}

AVX2 INLINE __m256d exp4(__m256d x)
{
  const __m256d shift = _mm256_set1_pd(SHIFT), one = _mm256_set1_pd(1.0);
  x                   = _mm256_max_pd(_mm256_set1_pd(EXP_LO), x);
  x                   = _mm256_min_pd(_mm256_set1_pd(EXP_HI), x);
  const __m256d n     = _mm256_sub_pd(_mm256_add_pd(_mm256_mul_pd(x, _mm256_set1_pd(LOG2E)), shift), shift);
  const __m256d r     = _mm256_sub_pd(_mm256_sub_pd(x, _mm256_mul_pd(n, _mm256_set1_pd(LN2_HI))), _mm256_mul_pd(n, _mm256_set1_pd(LN2_LO)));
  __m256d       p     = _mm256_set1_pd(exp_coef[0]);
#pragma GCC unroll 12
  for (int c = 1; c < 12; c++) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(exp_coef[c]));
  p                = _mm256_fmadd_pd(p, r, one);
  p                = _mm256_fmadd_pd(p, r, one);
  const __m256d n1 = _mm256_sub_pd(_mm256_add_pd(_mm256_mul_pd(n, _mm256_set1_pd(0.5)), shift), shift);
  const __m256d n2 = _mm256_sub_pd(n, n1);
  return _mm256_mul_pd(_mm256_mul_pd(p, pow2i_avx2(n1)), pow2i_avx2(n2));
}

AVX2 static void exp_avx2(int64_t n, const double *x, double *y)
{
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) { /* four independent vectors: the Horner chain is latency-bound */
    const __m256d a = exp4(_mm256_loadu_pd(x + i)), b = exp4(_mm256_loadu_pd(x + i + 4));
    const __m256d c = exp4(_mm256_loadu_pd(x + i + 8)), e = exp4(_mm256_loadu_pd(x + i + 12));
    _mm256_storeu_pd(y + i, a);
    _mm256_storeu_pd(y + i + 4, b);
    _mm256_storeu_pd(y + i + 8, c);
    _mm256_storeu_pd(y + i + 12, e);
  }
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(y + i, exp4(_mm256_loadu_pd(x + i)));
  for (; i < n; i++) y[i] = exp1_body(x[i]);
}

/* bo_tim_log1 on 4 lanes: the same operations in the same order (the selections as blends). */
AVX2 INLINE __m256d log4(__m256d y)
{
  const __m256d sub = _mm256_cmp_pd(y, _mm256_set1_pd(0x1p-1022), _CMP_LT_OQ);
  const __m256d ys  = _mm256_blendv_pd(y, _mm256_mul_pd(y, _mm256_set1_pd(TWO54)), sub);
  const __m256i b   = _mm256_castpd_si256(ys);
  const __m256i eb  = _mm256_or_si256(_mm256_set1_epi64x((long long)TWO52_BITS), _mm256_and_si256(_mm256_srli_epi64(b, 52), _mm256_set1_epi64x(0x7ff)));
  __m256d       e   = _mm256_sub_pd(_mm256_sub_pd(_mm256_sub_pd(_mm256_castsi256_pd(eb), _mm256_set1_pd(TWO52)), _mm256_set1_pd(EXP_BIAS)), _mm256_blendv_pd(_mm256_setzero_pd(), _mm256_set1_pd(54.0), sub));
  __m256d       m   = _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(b, _mm256_set1_epi64x((long long)MANT_MASK)), _mm256_set1_epi64x((long long)ONE_BITS)));
  const __m256d big = _mm256_cmp_pd(m, _mm256_set1_pd(SQRT2), _CMP_GT_OQ);
  m                 = _mm256_blendv_pd(m, _mm256_mul_pd(m, _mm256_set1_pd(0.5)), big);
  e                 = _mm256_blendv_pd(e, _mm256_add_pd(e, _mm256_set1_pd(1.0)), big);
  const __m256d one = _mm256_set1_pd(1.0);
  const __m256d f = _mm256_sub_pd(m, one), s = _mm256_div_pd(f, _mm256_add_pd(_mm256_set1_pd(2.0), f)), z = _mm256_mul_pd(s, s);
  __m256d       t = _mm256_set1_pd(log_coef[0]);
#pragma GCC unroll 11
  for (int c = 1; c < 11; c++) t = _mm256_fmadd_pd(t, z, _mm256_set1_pd(log_coef[c]));
  t                = _mm256_mul_pd(t, z);
  const __m256d lo = _mm256_fmadd_pd(_mm256_xor_pd(s, _mm256_set1_pd(-0.0)), _mm256_sub_pd(f, t), _mm256_mul_pd(e, _mm256_set1_pd(LN2_LO)));
  __m256d       res = _mm256_add_pd(_mm256_mul_pd(e, _mm256_set1_pd(LN2_HI)), _mm256_add_pd(f, lo));
  res               = _mm256_blendv_pd(res, _mm256_set1_pd(-INFINITY), _mm256_cmp_pd(y, _mm256_setzero_pd(), _CMP_EQ_OQ));
  res               = _mm256_blendv_pd(res, _mm256_set1_pd(INFINITY), _mm256_cmp_pd(y, _mm256_set1_pd(INFINITY), _CMP_EQ_OQ));
  res               = _mm256_blendv_pd(res, _mm256_set1_pd(NAN), _mm256_cmp_pd(y, _mm256_setzero_pd(), _CMP_NGE_UQ));
  return res;
}

AVX2 static void log_avx2(int64_t n, const double *x, double *y)
{
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256d a = log4(_mm256_loadu_pd(x + i)), b = log4(_mm256_loadu_pd(x + i + 4));
    _mm256_storeu_pd(y + i, a);
    _mm256_storeu_pd(y + i + 4, b);
  }
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(y + i, log4(_mm256_loadu_pd(x + i)));
  for (; i < n; i++) y[i] = log1_body(x[i]);
}

/* ---------------------------------------------------------------- dispatch */

static const bo_tim_kernels portable = {"portable", cross_portable, gather_portable, exp_portable, log_portable};
static const bo_tim_kernels avx2     = {"avx2", cross_avx2, gather_avx2, exp_avx2, log_avx2};

const bo_tim_kernels *bo_tim_kernels_portable(void) { return &portable; }

const bo_tim_kernels *bo_tim_kernels_avx2(void)
{
  static int have = -1;
  if (have < 0) {
    __builtin_cpu_init();
    have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
  return have ? &avx2 : NULL;
}

const bo_tim_kernels *bo_tim_kernels_best(void)
{
  const bo_tim_kernels *k = bo_tim_kernels_avx2();
  return k ? k : &portable;
}

/* ================================================================ single precision (8 lanes) */
/* Written out again rather than generated from the double kernels by a type macro: the float
 * versions differ in more than the type (polynomial degree and range-reduction constants, 8 lanes,
 * strided gather/cross for the tiled TIM-ADM layout), and each kernel is checked bit for bit
 * against its own portable twin (tests/unit/test_tim_kernels.c). */

#define EXPF_LO    -104.0f
#define EXPF_HI    88.7f
#define LOG2EF     1.44269504088896341f
#define SHIFTF     12582912.0f /* 1.5 * 2^23 */
#define LN2F_HI    0.693359375f /* 9 significant bits: n LN2F_HI is exact for |n| <= 2^15 */
#define LN2F_LO    -2.12194440e-4f
#define EXPF_BIAS  127.0f

/* 1/k!, k = 7 down to 2 (then 1 and 1). */
static const float expf_coef[6] = {1.0f / 5040.0f, 1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f};

static inline __attribute__((always_inline)) float pow2if(float m)
{
  const float t = m + (EXPF_BIAS + SHIFTF);
  uint32_t    b;
  memcpy(&b, &t, sizeof b);
  b <<= 23;
  float r;
  memcpy(&r, &b, sizeof r);
  return r;
}

static inline __attribute__((always_inline)) float expf1_body(float x)
{
  x = EXPF_LO > x ? EXPF_LO : x; /* as _mm256_max_ps(lo, x): NaN passes */
  x = EXPF_HI < x ? EXPF_HI : x;
  const float n = (x * LOG2EF + SHIFTF) - SHIFTF;
  const float r = (x - n * LN2F_HI) - n * LN2F_LO;
  float       p = expf_coef[0];
  for (int c = 1; c < 6; c++) p = fmaf(p, r, expf_coef[c]);
  p = fmaf(p, r, 1.0f);
  p = fmaf(p, r, 1.0f);
  /* n in [-150, 128]: two factors, each a normal power of two */
  const float n1 = (n * 0.5f + SHIFTF) - SHIFTF, n2 = n - n1;
  return (p * pow2if(n1)) * pow2if(n2);
}

float bo_tim_expf1(float x) { return expf1_body(x); }

/* 2/(2k+1), k = 4 down to 1: logf's series (as log_coef, truncated for float: the next term is below
 * 0.1 float ulp for |s| <= 3 - 2 sqrt 2). */
static const float logf_coef[4] = {2.0f / 9, 2.0f / 7, 2.0f / 5, 2.0f / 3};

static inline __attribute__((always_inline)) float bits_to_float(uint32_t b)
{
  float r;
  memcpy(&r, &b, sizeof r);
  return r;
}

static inline __attribute__((always_inline)) float logf1_body(float y)
{
  const int   sub = y < 0x1p-126f; /* subnormals scaled into the normal range first (exactly) */
  const float ys  = sub ? y * 0x1p24f : y;
  uint32_t    b;
  memcpy(&b, &ys, sizeof b);
  float e = bits_to_float(0x4b000000u | ((b >> 23) & 0xffu)) - 0x1p23f - 127.0f - (sub ? 24.0f : 0.0f);
  float m = bits_to_float((b & 0x007fffffu) | 0x3f800000u);
  const int big = m > 1.41421356f; /* m in [sqrt(1/2), sqrt(2)) */
  m             = big ? m * 0.5f : m;
  e             = big ? e + 1.0f : e;
  const float f = m - 1.0f, s = f / (2.0f + f), z = s * s;
  float       t = logf_coef[0];
  for (int c = 1; c < 4; c++) t = fmaf(t, z, logf_coef[c]);
  t              = t * z;
  const float lo = fmaf(-s, f - t, e * LN2F_LO);
  float       res = e * LN2F_HI + (f + lo);
  res             = y == 0 ? -INFINITY : res;
  res             = y == INFINITY ? INFINITY : res;
  res             = !(y >= 0) ? NAN : res;
  return res;
}

float bo_tim_logf1(float y) { return logf1_body(y); }

static void gatherf_portable(int64_t n, int64_t d, const float *z, int64_t k, const float *g, int64_t ldg, float *out)
{
  memset(out, 0, sizeof *out * (size_t)(k * d));
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++) {
      const float gi = g[c * ldg + i];
      float      *o  = out + c * d;
      for (int64_t j = 0; j < d; j++) o[j] = fmaf(gi, z[i * d + j], o[j]);
    }
}

static void crosstf_portable(int64_t n, int64_t d, const float *zt, int64_t ldz, int64_t k, const float *w, int64_t ldx, float *x)
{
  for (int64_t c = 0; c < k; c++)
    for (int64_t i = 0; i < n; i++) {
      float s = 0;
      for (int64_t j = 0; j < d; j++) s = fmaf(zt[j * ldz + i], w[c * d + j], s);
      x[c * ldx + i] = s;
    }
}

static void expf_portable(int64_t n, const float *x, float *y)
{
  for (int64_t i = 0; i < n; i++) y[i] = expf1_body(x[i]);
}

static void logf_portable(int64_t n, const float *x, float *y)
{
  for (int64_t i = 0; i < n; i++) y[i] = logf1_body(x[i]);
}

/* crosst on V vectors of 8 rows (V = 1 or 2; with a mask, V = 1 and the rows the mask selects) x P
 * classes: the features run down the rows of zt, so each lane is one row's sequential fma chain
 * and no horizontal reduction is needed (a row-major 8-lane dot's hadds cost as much as its fmas
 * at d = 64). */
AVX2 INLINE void crosstf_block(const int V, const int P, int masked, __m256i mask, int64_t d, const float *zt, int64_t ldz, const float *w, int64_t ldx, float *x)
{
  __m256 acc[2][CLASSES];
#pragma GCC unroll 2
  for (int v = 0; v < V; v++)
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) acc[v][p] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int64_t j = 0; j < d; j++) {
    __m256 zv[2];
#pragma GCC unroll 2
    for (int v = 0; v < V; v++) zv[v] = masked ? _mm256_maskload_ps(zt + j * ldz, mask) : _mm256_loadu_ps(zt + j * ldz + 8 * v);
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
      const __m256 wv = _mm256_broadcast_ss(w + p * d + j);
#pragma GCC unroll 2
      for (int v = 0; v < V; v++) acc[v][p] = _mm256_fmadd_ps(zv[v], wv, acc[v][p]);
    }
  }
#pragma GCC unroll 8
  for (int p = 0; p < P; p++)
#pragma GCC unroll 2
    for (int v = 0; v < V; v++) {
      if (masked) _mm256_maskstore_ps(x + p * ldx, mask, acc[v][p]);
      else _mm256_storeu_ps(x + p * ldx + 8 * v, acc[v][p]);
    }
}

#define CROSSTF_CASES(V, M) \
  switch (P) { \
  case 5: crosstf_block(V, 5, M, mask, d, zi, ldz, wc, ldx, xi); break; \
  case 4: crosstf_block(V, 4, M, mask, d, zi, ldz, wc, ldx, xi); break; \
  case 3: crosstf_block(V, 3, M, mask, d, zi, ldz, wc, ldx, xi); break; \
  case 2: crosstf_block(V, 2, M, mask, d, zi, ldz, wc, ldx, xi); break; \
  default: crosstf_block(V, 1, M, mask, d, zi, ldz, wc, ldx, xi); break; \
  }

AVX2 static void crosstf_avx2(int64_t n, int64_t d, const float *zt, int64_t ldz, int64_t k, const float *w, int64_t ldx, float *x)
{
  for (int64_t c = 0; c < k; c += CLASSES) {
    const int    P  = k - c >= CLASSES ? CLASSES : (int)(k - c);
    const float *wc = w + c * d;
    int64_t      i  = 0;
    __m256i      mask = _mm256_setzero_si256();
    for (; i + 16 <= n; i += 16) {
      const float *zi = zt + i;
      float       *xi = x + c * ldx + i;
      CROSSTF_CASES(2, 0)
    }
    for (; i + 8 <= n; i += 8) {
      const float *zi = zt + i;
      float       *xi = x + c * ldx + i;
      CROSSTF_CASES(1, 0)
    }
    if (i < n) { /* the n % 8 rows: masked loads read nothing beyond row n - 1 */
      const float *zi = zt + i;
      float       *xi = x + c * ldx + i;
      mask            = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      CROSSTF_CASES(1, 1)
    }
  }
}

/* P classes x V vectors of 8 columns from column j, all n rows in order, from zero. */
AVX2 INLINE void gatherf_block(const int P, const int V, int64_t n, int64_t d, const float *z, const float *g, int64_t ldg, int64_t j, float *out)
{
  __m256 acc[CLASSES][2];
#pragma GCC unroll 8
  for (int p = 0; p < P; p++)
#pragma GCC unroll 2
    for (int v = 0; v < V; v++) acc[p][v] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t i = 0; i < n; i++) {
    __m256 zv[2];
#pragma GCC unroll 2
    for (int v = 0; v < V; v++) zv[v] = _mm256_loadu_ps(z + i * d + j + 8 * v);
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
      const __m256 gv = _mm256_broadcast_ss(g + p * ldg + i);
#pragma GCC unroll 2
      for (int v = 0; v < V; v++) acc[p][v] = _mm256_fmadd_ps(gv, zv[v], acc[p][v]);
    }
  }
#pragma GCC unroll 8
  for (int p = 0; p < P; p++)
#pragma GCC unroll 2
    for (int v = 0; v < V; v++) _mm256_storeu_ps(out + p * d + j + 8 * v, acc[p][v]);
}

#define GATHERF_CASES(V) \
  switch (P) { \
  case 5: gatherf_block(5, V, n, d, z, gc, ldg, j, oc); break; \
  case 4: gatherf_block(4, V, n, d, z, gc, ldg, j, oc); break; \
  case 3: gatherf_block(3, V, n, d, z, gc, ldg, j, oc); break; \
  case 2: gatherf_block(2, V, n, d, z, gc, ldg, j, oc); break; \
  default: gatherf_block(1, V, n, d, z, gc, ldg, j, oc); break; \
  }

AVX2 static void gatherf_avx2(int64_t n, int64_t d, const float *z, int64_t k, const float *g, int64_t ldg, float *out)
{
  for (int64_t c = 0; c < k; c += CLASSES) {
    const int    P  = k - c >= CLASSES ? CLASSES : (int)(k - c);
    const float *gc = g + c * ldg;
    float       *oc = out + c * d;
    int64_t      j  = 0;
    for (; j + 16 <= d; j += 16) GATHERF_CASES(2)
    for (; j + 8 <= d; j += 8) GATHERF_CASES(1)
    for (; j < d; j++) /* the d % 8 tail: the same fmaf in the same row order */
      for (int p = 0; p < P; p++) {
        float s = 0;
        for (int64_t i = 0; i < n; i++) s = fmaf(gc[p * ldg + i], z[i * d + j], s);
        oc[p * d + j] = s;
      }
  }
}

AVX2 INLINE __m256 pow2if_avx2(__m256 m)
{
  const __m256 t = _mm256_add_ps(m, _mm256_set1_ps(EXPF_BIAS + SHIFTF));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23));
}

AVX2 INLINE __m256 exp8(__m256 x)
{
  const __m256 shift = _mm256_set1_ps(SHIFTF), one = _mm256_set1_ps(1.0f);
  x                  = _mm256_max_ps(_mm256_set1_ps(EXPF_LO), x);
  x                  = _mm256_min_ps(_mm256_set1_ps(EXPF_HI), x);
  const __m256 n     = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2EF)), shift), shift);
  const __m256 r     = _mm256_sub_ps(_mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(LN2F_HI))), _mm256_mul_ps(n, _mm256_set1_ps(LN2F_LO)));
  __m256       p     = _mm256_set1_ps(expf_coef[0]);
#pragma GCC unroll 6
  for (int c = 1; c < 6; c++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(expf_coef[c]));
  p               = _mm256_fmadd_ps(p, r, one);
  p               = _mm256_fmadd_ps(p, r, one);
  const __m256 n1 = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(n, _mm256_set1_ps(0.5f)), shift), shift);
  const __m256 n2 = _mm256_sub_ps(n, n1);
  return _mm256_mul_ps(_mm256_mul_ps(p, pow2if_avx2(n1)), pow2if_avx2(n2));
}

AVX2 static void expf_avx2(int64_t n, const float *x, float *y)
{
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) { /* four independent vectors: the Horner chain is latency-bound */
    const __m256 a = exp8(_mm256_loadu_ps(x + i)), b = exp8(_mm256_loadu_ps(x + i + 8));
    const __m256 c = exp8(_mm256_loadu_ps(x + i + 16)), e = exp8(_mm256_loadu_ps(x + i + 24));
    _mm256_storeu_ps(y + i, a);
    _mm256_storeu_ps(y + i + 8, b);
    _mm256_storeu_ps(y + i + 16, c);
    _mm256_storeu_ps(y + i + 24, e);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
  for (; i < n; i++) y[i] = expf1_body(x[i]);
}

/* bo_tim_logf1 on 8 lanes: the same operations in the same order (the selections as blends). */
AVX2 INLINE __m256 log8(__m256 y)
{
  const __m256  sub = _mm256_cmp_ps(y, _mm256_set1_ps(0x1p-126f), _CMP_LT_OQ);
  const __m256  ys  = _mm256_blendv_ps(y, _mm256_mul_ps(y, _mm256_set1_ps(0x1p24f)), sub);
  const __m256i b   = _mm256_castps_si256(ys);
  const __m256i eb  = _mm256_or_si256(_mm256_set1_epi32(0x4b000000), _mm256_and_si256(_mm256_srli_epi32(b, 23), _mm256_set1_epi32(0xff)));
  __m256        e   = _mm256_sub_ps(_mm256_sub_ps(_mm256_sub_ps(_mm256_castsi256_ps(eb), _mm256_set1_ps(0x1p23f)), _mm256_set1_ps(127.0f)), _mm256_blendv_ps(_mm256_setzero_ps(), _mm256_set1_ps(24.0f), sub));
  __m256        m   = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(b, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f800000)));
  const __m256  big = _mm256_cmp_ps(m, _mm256_set1_ps(1.41421356f), _CMP_GT_OQ);
  m                 = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), big);
  e                 = _mm256_blendv_ps(e, _mm256_add_ps(e, _mm256_set1_ps(1.0f)), big);
  const __m256 f = _mm256_sub_ps(m, _mm256_set1_ps(1.0f)), s = _mm256_div_ps(f, _mm256_add_ps(_mm256_set1_ps(2.0f), f)), z = _mm256_mul_ps(s, s);
  __m256       t = _mm256_set1_ps(logf_coef[0]);
#pragma GCC unroll 4
  for (int c = 1; c < 4; c++) t = _mm256_fmadd_ps(t, z, _mm256_set1_ps(logf_coef[c]));
  t                = _mm256_mul_ps(t, z);
  const __m256 lo  = _mm256_fmadd_ps(_mm256_xor_ps(s, _mm256_set1_ps(-0.0f)), _mm256_sub_ps(f, t), _mm256_mul_ps(e, _mm256_set1_ps(LN2F_LO)));
  __m256       res = _mm256_add_ps(_mm256_mul_ps(e, _mm256_set1_ps(LN2F_HI)), _mm256_add_ps(f, lo));
  res              = _mm256_blendv_ps(res, _mm256_set1_ps(-INFINITY), _mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_EQ_OQ));
  res              = _mm256_blendv_ps(res, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(y, _mm256_set1_ps(INFINITY), _CMP_EQ_OQ));
  res              = _mm256_blendv_ps(res, _mm256_set1_ps(NAN), _mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_NGE_UQ));
  return res;
}

AVX2 static void logf_avx2(int64_t n, const float *x, float *y)
{
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a = log8(_mm256_loadu_ps(x + i)), b = log8(_mm256_loadu_ps(x + i + 8));
    _mm256_storeu_ps(y + i, a);
    _mm256_storeu_ps(y + i + 8, b);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, log8(_mm256_loadu_ps(x + i)));
  for (; i < n; i++) y[i] = logf1_body(x[i]);
}

static const bo_tim_kernels_f32 portable_f32 = {"portable", crosstf_portable, gatherf_portable, expf_portable, logf_portable};
static const bo_tim_kernels_f32 avx2_f32     = {"avx2", crosstf_avx2, gatherf_avx2, expf_avx2, logf_avx2};

const bo_tim_kernels_f32 *bo_tim_kernels_f32_portable(void) { return &portable_f32; }
const bo_tim_kernels_f32 *bo_tim_kernels_f32_avx2(void) { return bo_tim_kernels_avx2() ? &avx2_f32 : NULL; }

const bo_tim_kernels_f32 *bo_tim_kernels_f32_best(void)
{
  const bo_tim_kernels_f32 *k = bo_tim_kernels_f32_avx2();
  return k ? k : &portable_f32;
}
