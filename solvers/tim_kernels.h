/* tim_kernels.h - the small-k kernels of TIM-GD / TIM-ADM (solvers/tim.c): the cross products
 * Z W^T, the weighted row sums G^T Z, and vector exp and log, each defined by one loop below
 * and given bit for bit by a portable and an AVX2+FMA implementation (chosen at run time).
 *
 * Why hand-written, not BLAS / libm: a TIM task multiplies 100 x d rows by k = 5 classes, twice
 * per iteration, 150-1000 iterations.  At that size each dgemm call spends more time packing its
 * operands and dispatching than multiplying (37 % of TIM-ADM's time in OpenBLAS, mostly
 * packing); these kernels read each row once and keep the partial sums in registers.  libm's
 * scalar exp / log and libmvec's vector ones do not give the same bits, so the exp and log
 * below are one definition each, with a scalar and a vector implementation.
 *
 * Definitions (what both implementations compute, bit for bit; fma() is the fused multiply-add,
 * rounded once):
 *   dot(u, v, d):  4 lanes; lane l = fma(u[j], v[j], lane l) over j = l, l + 4, ... (j + 4 <= d
 *                  blocks), then the d % 4 tail into lane 0 in order, result (l0 + l1) + (l2 + l3).
 *   cross:         x[i k + c] = dot(z_i, w_c),  i < n, c < k.
 *   gather:        out[c d + j] = fma(g[(n-1) k + c], z[n-1][j], ... fma(g[c], z[0][j], start)),
 *                  start = out[c d + j] when accumulating, else 0: rows summed in row order.
 *   exp:           e^x for x = n ln2 + r (n = rint(x / ln2), Cody-Waite r, |r| <= ln2 / 2), the
 *                  Taylor polynomial of degree 13 in r (Horner with fma), times 2^n in
 *                  two exact power-of-two steps.  Within 2 ulp of e^x over its range; exp(0) = 1
 *                  exactly; x < -746 gives 0, x > 710 gives inf (the clamps), NaN stays NaN.
 *   log:           log y for y = 2^e m, m in [sqrt(1/2), sqrt(2)) (subnormals scaled by 2^54
 *                  first), f = m - 1, s = f / (2 + f): e ln2_hi + (f + (e ln2_lo - s (f - T))),
 *                  T = sum_{k=1..11} 2/(2k+1) s^2k (Horner with fma).  Within 2 ulp of log y;
 *                  log 0 = -inf, log inf = inf, negative or NaN y gives NaN.
 * Cost of that choice: on a CPU without FMA (pre-2013 x86-64) the portable kernels call libm's
 * software fma(), several times slower than a multiply and an add; it keeps the bits identical.
 * Sizes: n, d, k >= 1 (n may be 0 for cross, exp and log: nothing is done).  No aliasing
 * between outputs and inputs except exp and log, which may work in place (y == x).
 */
#ifndef BOUNDOPT_TIM_KERNELS_H
#define BOUNDOPT_TIM_KERNELS_H
#include <stdint.h>

typedef struct {
  const char *name; /* "portable" or "avx2" */
  void (*cross)(int64_t n, int64_t d, const double *z, int64_t k, const double *w, double *x);
  void (*gather)(int64_t n, int64_t d, const double *z, int64_t k, const double *g, int accumulate, double *out);
  void (*exp)(int64_t n, const double *x, double *y);
  void (*log)(int64_t n, const double *x, double *y);
} bo_tim_kernels;

/* The kernels for this CPU (AVX2 and FMA if it has both, else portable); the same bits either way. */
const bo_tim_kernels *bo_tim_kernels_best(void);
const bo_tim_kernels *bo_tim_kernels_portable(void);
/* NULL when the CPU lacks AVX2 or FMA. */
const bo_tim_kernels *bo_tim_kernels_avx2(void);

/* The scalar definitions above, one value each (the portable kernels call these). */
double bo_tim_dot(const double *u, const double *v, int64_t d);
double bo_tim_exp1(double x);
double bo_tim_log1(double y);

/* Single precision (the TIM-ADM float32 path, tim.h: bo_tim_opts.precision).  The same role as
 * above with 8-lane vectors and fmaf; outputs and coefficients are class-major (entry (i, c) at
 * c ld + i) so that the per-row loops of tim.c run along contiguous rows of one class.
 *   crosst:        the cross products z_i . w_c from the transposed rows zt (d x ldz, feature j of
 *                  row i at zt[j ldz + i], ldz >= n), summed in feature order (i < n, c < k, ldx >= n):
 *                  x[c ldx + i] = fmaf(zt[(d-1) ldz + i], w[c d + d-1], ... fmaf(zt[i], w[c d], 0)).
 *                  Each lane is one row's chain: no horizontal sums (which cost as much as the
 *                  multiplies of a row-major 8-lane dot at d = 64).
 *   gather:        out[c d + j] = fmaf(g[c ldg + n-1], z[n-1][j], ... fmaf(g[c ldg], z[0][j], 0)).
 *   exp:           e^x for x = n ln2 + r (n = rint(x / ln2), Cody-Waite r with ln2 = 0.693359375
 *                  - 2.12194440e-4), the Taylor polynomial of degree 7 in r (Horner with fmaf),
 *                  times 2^n in two exact power-of-two steps; x clamped to [-104, 88.7] (so at most
 *                  the smallest subnormal below, finite above), NaN stays NaN; exp(0) = 1 exactly.
 *                  Within 2 float ulp of e^x on [-87, 88] (tested: 0.9).
 *   log:           log's definition above in float: m in [sqrt(1/2), sqrt(2)) (subnormals scaled by
 *                  2^24 first), the series to s^8 (4 terms, Horner with fmaf), ln2 split as exp's.
 *                  Within 2 float ulp; log 0 = -inf, log inf = inf, negative or NaN y gives NaN.
 * On a CPU without FMA the portable kernels call libm's software fmaf(); the bits stay identical. */
typedef struct {
  const char *name; /* "portable" or "avx2" */
  void (*crosst)(int64_t n, int64_t d, const float *zt, int64_t ldz, int64_t k, const float *w, int64_t ldx, float *x);
  void (*gather)(int64_t n, int64_t d, const float *z, int64_t k, const float *g, int64_t ldg, float *out);
  void (*exp)(int64_t n, const float *x, float *y);
  void (*log)(int64_t n, const float *x, float *y);
} bo_tim_kernels_f32;

const bo_tim_kernels_f32 *bo_tim_kernels_f32_best(void);
const bo_tim_kernels_f32 *bo_tim_kernels_f32_portable(void);
/* NULL when the CPU lacks AVX2 or FMA. */
const bo_tim_kernels_f32 *bo_tim_kernels_f32_avx2(void);
float bo_tim_expf1(float x);
float bo_tim_logf1(float y);
#endif
