/* kmeans.c - distances, means, mean-shift modes and seeding for the clustering family (kmeans.h).
 *
 * Small K (<= DIRECT_MAX_K): hand-written dot products instead of BLAS.  Per tile, an sgemm would
 * first pack the tile (a second pass over X) and reaches ~20 GFlop/s at N x 784 x 10 here; the
 * register-blocked AVX2 kernel below reads each row once from memory, keeps 2 rows x 5 prototypes
 * of partial sums in registers and runs at the FP-pipe rate.  Large K: one sgemm per tile.
 * Repeated hard passes (small K) carry bounds (bo_kmeans_bounds): rows that provably keep their
 * prototype compute one product instead of K, and K-means re-sums only the tiles' clusters whose
 * rows changed; both give the bits of the full pass. */
#include "boundopt/kmeans.h"
#include "boundopt/error.h"
#include "boundopt/reduce.h"
#include "boundopt/rng.h"
#include "boundopt/stats.h"
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

enum { RNG_PURPOSE_SEEDING = 1 };

/* Sums of products in 8 independent lanes, combined in a fixed order: the compiler keeps them in
 * vector registers (no serial dependency chain) and the result is the same on every rank. */
__attribute__((target_clones("arch=x86-64-v3", "default")))
static double row_sqnorm(const float *v, int64_t d)
{
  double  lane[8] = {0};
  int64_t j       = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; l++) lane[l] += (double)v[j + l] * v[j + l];
  for (; j < d; j++) lane[0] += (double)v[j] * v[j];
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

static double row_sqdist(const float *u, const float *v, int64_t d)
{
  double  lane[4] = {0};
  int64_t j       = 0;
  for (; j + 4 <= d; j += 4)
    for (int l = 0; l < 4; l++) {
      double t = (double)u[j + l] - v[j + l];
      lane[l] += t * t;
    }
  for (; j < d; j++) {
    double t = (double)u[j] - v[j];
    lane[0] += t * t;
  }
  return (lane[0] + lane[1]) + (lane[2] + lane[3]);
}

/* ---------------------------------------------------------------- small-K dot products */

/* The float dot product of the small-K path, *defined* by this loop: 8 lanes, lane l sums
 * u[j+l] * v[j+l] over j = 0, 8, 16, ... (each product rounded, then added: -std=c17 keeps
 * contraction off, so no fused multiply-add), the d % 8 tail goes into lane 0, and the lanes are
 * combined as ((0+1)+(2+3))+((4+5)+(6+7)).  Both kernels below give exactly these bits, so the
 * results do not depend on the CPU's vector width either. */
static float dot8(const float *u, const float *v, int64_t d)
{
  float   lane[8] = {0};
  int64_t j       = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; l++) lane[l] += u[j + l] * v[j + l];
  for (; j < d; j++) lane[0] += u[j] * v[j];
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

/* g[i * k + c] = dot8(x_i, m_c) for rows i < nrows (row stride d); avail >= nrows rows are
 * readable from x (the kernel prefetches ahead within them). */
typedef void dots_fn(int64_t nrows, int64_t avail, int64_t d, const float *x, int64_t k, const float *m, float *g);

static void dots_portable(int64_t nrows, int64_t avail, int64_t d, const float *x, int64_t k, const float *m, float *g)
{
  (void)avail;
  for (int64_t i = 0; i < nrows; i++)
    for (int64_t c = 0; c < k; c++) g[i * k + c] = dot8(x + i * d, m + c * d, d);
}

#define DIRECT_MAX_K BO_KMEANS_BOUNDS_MAX_K /* the bounds (kmeans.h) need the direct kernel's per-row bits */
#define BLOCK_ROWS 2     /* rows x prototypes of 8-lane accumulators in registers: 10 of the 16 */
#define BLOCK_PROTOS 5
#ifndef PREFETCH_ROWS
#define PREFETCH_ROWS 4  /* rows ahead: the hardware prefetchers stop at each 4 KiB page */
#endif
#ifndef PREFETCH_HINT
#define PREFETCH_HINT _MM_HINT_T0
#endif
#define AVX2 __attribute__((target("avx2")))
/* static TYPE *NAME(void): the AVX2 kernel where the CPU has it, else the portable one (same bits). */
#define CPU_DISPATCH(type, name, avx2, portable) \
  static type *name(void) \
  { \
    static type *fn; \
    if (!fn) { \
      __builtin_cpu_init(); \
      fn = __builtin_cpu_supports("avx2") ? avx2 : portable; \
    } \
    return fn; \
  }
#define INLINE static inline __attribute__((always_inline))

/* Four 8-lane accumulators to their four sums, each ((0+1)+(2+3))+((4+5)+(6+7)) as dot8:
 * hadd pairs (0+1), (2+3) within each 128-bit half, the second hadd adds those pairs, and the
 * last add joins the halves. */
AVX2 INLINE __m128 lanes_sum4(__m256 a, __m256 b, __m256 c, __m256 d)
{
  __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* R rows x P prototypes (R <= BLOCK_ROWS, P <= BLOCK_PROTOS, constants after inlining), while
 * prefetching rows pf0 and pf1 (rows to be read soon, or with none left, the block's own first
 * row: an unconditional prefetch keeps two tests out of the inner loop). */
AVX2 INLINE void dots_block(const int R, const int P, int64_t d, const float *x, const float *m, float *g, int64_t k, const float *pf0, const float *pf1)
{
  __m256 acc[BLOCK_ROWS][BLOCK_PROTOS];
  float  out[4];
  int64_t j = 0;

#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) acc[r][p] = _mm256_setzero_ps();
  for (; j + 8 <= d; j += 8) {
    __m256 xv[BLOCK_ROWS];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) xv[r] = _mm256_loadu_ps(x + r * d + j);
    _mm_prefetch((const char *)(pf0 + j), PREFETCH_HINT);
    _mm_prefetch((const char *)(pf1 + j), PREFETCH_HINT);
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
      __m256 mv = _mm256_loadu_ps(m + p * d + j);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) acc[r][p] = _mm256_add_ps(acc[r][p], _mm256_mul_ps(xv[r], mv));
    }
  }
  for (; j < d; j++) /* the tail into lane 0; the other lanes add +0, which leaves them unchanged (never -0) */
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
      for (int p = 0; p < P; p++) acc[r][p] = _mm256_add_ps(acc[r][p], _mm256_setr_ps(x[r * d + j] * m[p * d + j], 0, 0, 0, 0, 0, 0, 0));
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int p = 0; p < P; p += 4) {
      _mm_storeu_ps(out, lanes_sum4(acc[r][p], acc[r][p + 1 < P ? p + 1 : p], acc[r][p + 2 < P ? p + 2 : p], acc[r][p + 3 < P ? p + 3 : p]));
      for (int q = 0; q < 4 && p + q < P; q++) g[r * k + p + q] = out[q];
    }
}

AVX2 static void dots_avx2(int64_t nrows, int64_t avail, int64_t d, const float *x, int64_t k, const float *m, float *g)
{
  const int64_t passes = (k + BLOCK_PROTOS - 1) / BLOCK_PROTOS; /* over each row block */
  for (int64_t i = 0; i < nrows; i += BLOCK_ROWS) {
    const int    R     = nrows - i >= BLOCK_ROWS ? BLOCK_ROWS : 1;
    const float *xi    = x + i * d;
    const float *ahead = i + PREFETCH_ROWS + BLOCK_ROWS <= avail ? xi + PREFETCH_ROWS * d : NULL;
    for (int64_t c = 0, b = 0; c < k; c += BLOCK_PROTOS, b++) {
      const int    P  = k - c >= BLOCK_PROTOS ? BLOCK_PROTOS : (int)(k - c);
      const float *mc = m + c * d;
      float       *gc = g + i * k + c;
      /* The rows ahead, spread over the passes (pass b fetches row b; one pass: both) so that the
       * requests keep pace with memory instead of coming in one burst. */
      const float *pf0 = ahead && b < BLOCK_ROWS ? ahead + b * d : xi, *pf1 = ahead && passes == 1 ? ahead + d : xi;
      switch (R * 8 + P) { /* constant R and P: the accumulators stay in registers */
      case 2 * 8 + 5: dots_block(2, 5, d, xi, mc, gc, k, pf0, pf1); break;
      case 2 * 8 + 4: dots_block(2, 4, d, xi, mc, gc, k, pf0, pf1); break;
      case 2 * 8 + 3: dots_block(2, 3, d, xi, mc, gc, k, pf0, pf1); break;
      case 2 * 8 + 2: dots_block(2, 2, d, xi, mc, gc, k, pf0, pf1); break;
      case 2 * 8 + 1: dots_block(2, 1, d, xi, mc, gc, k, pf0, pf1); break;
      case 1 * 8 + 5: dots_block(1, 5, d, xi, mc, gc, k, pf0, pf1); break;
      case 1 * 8 + 4: dots_block(1, 4, d, xi, mc, gc, k, pf0, pf1); break;
      case 1 * 8 + 3: dots_block(1, 3, d, xi, mc, gc, k, pf0, pf1); break;
      case 1 * 8 + 2: dots_block(1, 2, d, xi, mc, gc, k, pf0, pf1); break;
      default: dots_block(1, 1, d, xi, mc, gc, k, pf0, pf1); break;
      }
    }
  }
}

CPU_DISPATCH(dots_fn, direct_dots, dots_avx2, dots_portable)

/* g[q] = dot8(x_{r[q]}, m_{a[q]}) for q < n (rows r of xt, increasing, avail rows readable):
 * each listed row's product with its own prototype, the bounded pass's rows that may need no
 * other.  Four rows at a time: one row alone waits on its own chain of additions. */
typedef void dots_own_fn(int64_t n, const int64_t *r, const int32_t *a, int64_t avail, int64_t d, const float *xt, const float *m, float *g);

static void dots_own_portable(int64_t n, const int64_t *r, const int32_t *a, int64_t avail, int64_t d, const float *xt, const float *m, float *g)
{
  (void)avail;
  for (int64_t q = 0; q < n; q++) g[q] = dot8(xt + r[q] * d, m + (int64_t)a[q] * d, d);
}

/* R rows (R <= 4) with their prototypes, while prefetching the 4 rows from pf on. */
AVX2 INLINE void own_block(const int R, int64_t d, const float *const *xs, const float *const *ms, float *g, const float *pf)
{
  __m256  acc[4];
  float   out[4];
  int64_t j = 0;

#pragma GCC unroll 4
  for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
  for (; j + 8 <= d; j += 8) {
    _mm_prefetch((const char *)(pf + 4 * j), PREFETCH_HINT);
    _mm_prefetch((const char *)(pf + 4 * j + 16), PREFETCH_HINT);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(_mm256_loadu_ps(xs[r] + j), _mm256_loadu_ps(ms[r] + j)));
  }
  for (; j < d; j++) /* the tail into lane 0, as dots_block */
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) acc[r] = _mm256_add_ps(acc[r], _mm256_setr_ps(xs[r][j] * ms[r][j], 0, 0, 0, 0, 0, 0, 0));
  _mm_storeu_ps(out, lanes_sum4(acc[0], acc[R > 1 ? 1 : 0], acc[R > 2 ? 2 : 0], acc[R > 3 ? 3 : 0]));
  for (int r = 0; r < R; r++) g[r] = out[r];
}

AVX2 static void dots_own_avx2(int64_t n, const int64_t *r, const int32_t *a, int64_t avail, int64_t d, const float *xt, const float *m, float *g)
{
  for (int64_t q = 0; q < n; q += 4) {
    const int    R = n - q >= 4 ? 4 : (int)(n - q);
    const float *xs[4], *ms[4];
    for (int t = 0; t < R; t++) { xs[t] = xt + r[q + t] * d; ms[t] = m + (int64_t)a[q + t] * d; }
    int64_t      next = r[q + R - 1] + 1; /* the rows after this group, if there are four */
    const float *pf   = next + PREFETCH_ROWS <= avail ? xt + next * d : xs[0];
    switch (R) {
    case 4: own_block(4, d, xs, ms, g + q, pf); break;
    case 3: own_block(3, d, xs, ms, g + q, pf); break;
    case 2: own_block(2, d, xs, ms, g + q, pf); break;
    default: own_block(1, d, xs, ms, g + q, pf); break;
    }
  }
}

CPU_DISPATCH(dots_own_fn, dots_own, dots_own_avx2, dots_own_portable)

/* Cross products of rows of a tile with the prototypes, g = x m^T (rows x k floats): the direct
 * kernel for few prototypes, one sgemm otherwise.  Called on whole global tiles or on fixed
 * chunks of them, never on a rank's arbitrary row range: per-row bits are the same anyway, and
 * the sgemm's are then too. */
static void tile_cross(int64_t rows, int64_t avail, int64_t d, const float *xt, int64_t k, const float *m, float *g)
{
  if (k <= DIRECT_MAX_K) direct_dots()(rows, avail, d, xt, k, m, g);
  else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)k, (int)d, 1.0f, xt, (int)d, m, (int)d, 0.0f, g, (int)k);
}

/* The prototypes copied to a 64-byte boundary for the direct kernel: PetscMalloc aligns to 16
 * bytes only, a 32-byte load that straddles two cache lines costs two, and the kernel loads a
 * prototype vector for every two multiplies.  With X in L2 it ran 1.3-1.5x slower on prototypes
 * at 16 mod 32 bytes (measured).  Free *raw with PetscFree; *aligned is inside *raw (or is m
 * itself when the sgemm path takes the prototypes as they are). */
static PetscErrorCode prototypes_aligned(int64_t k, int64_t d, const float *m, float **raw, const float **aligned)
{
  PetscFunctionBeginUser;
  *raw = NULL; *aligned = m;
  if (k > DIRECT_MAX_K) PetscFunctionReturn(0);
  PetscCall(PetscMalloc1(k * d + 16, raw));
  float *a = (float *)(((uintptr_t)*raw + 63) & ~(uintptr_t)63);
  PetscCall(PetscArraycpy(a, m, k * d));
  *aligned = a;
  PetscFunctionReturn(0);
}

PetscErrorCode bo_kmeans_sqdist(const bo_rows *rows, int64_t d, const float *x, int64_t k, const float *m_in, double *a)
{
  float       *g, *m_raw;
  const float *m;
  double      *mm;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc2(BO_TILE_ROWS * k, &g, k, &mm));
  PetscCall(prototypes_aligned(k, d, m_in, &m_raw, &m));
  for (int64_t c = 0; c < k; c++) mm[c] = row_sqnorm(m + c * d, d);
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    const float *xt = x + (lo - rows->lo) * d;
    /* One call per global tile: the same call, hence the same bits, at any number of ranks. */
    tile_cross(hi - lo, rows->hi - lo, d, xt, k, m, g);
    for (int64_t i = 0; i < hi - lo; i++) {
      double  xx = row_sqnorm(xt + i * d, d);
      double *ai = a + (lo - rows->lo + i) * k;
      for (int64_t c = 0; c < k; c++) ai[c] = PetscMax(0.0, xx + mm[c] - 2.0 * (double)g[i * k + c]);
    }
  }
  PetscCall(PetscFree(m_raw));
  PetscCall(PetscFree2(g, mm));
  PetscFunctionReturn(0);
}

void bo_kmeans_argmin(int64_t local, int64_t k, const double *a, int32_t *labels)
{
  for (int64_t i = 0; i < local; i++) {
    int32_t best = 0;
    for (int64_t c = 1; c < k; c++)
      if (a[i * k + c] < a[i * k + best]) best = (int32_t)c;
    labels[i] = best;
  }
}

/* max |x| by the bit patterns: for finite floats, |x| orders like its bits with the sign
 * cleared, and an integer max vectorises where a float max (NaN rules) does not. */
__attribute__((target_clones("arch=x86-64-v3", "default")))
static uint32_t max_abs_bits(int64_t count, const float *x)
{
  uint32_t top = 0;
  for (int64_t i = 0; i < count; i++) {
    uint32_t bits;
    memcpy(&bits, x + i, sizeof bits);
    bits &= 0x7fffffffu;
    top = bits > top ? bits : top;
  }
  return top;
}

static PetscErrorCode max_abs(MPI_Comm comm, int64_t count, const float *x, double *m)
{
  uint32_t top = max_abs_bits(count, x);
  float    v;

  PetscFunctionBeginUser;
  memcpy(&v, &top, sizeof v);
  double local = v;
  PetscCallMPI(MPI_Allreduce(&local, m, 1, MPI_DOUBLE, MPI_MAX, comm));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_kmeans_xcache_create(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, bo_kmeans_xcache *xc)
{
  int64_t local = bo_rows_local(rows);

  PetscFunctionBeginUser;
  xc->local = local;
  PetscCall(PetscMalloc1(PetscMax(1, local), &xc->sqnorm));
  for (int64_t i = 0; i < local; i++) xc->sqnorm[i] = row_sqnorm(x + i * d, d);
  PetscCall(max_abs(comm, local * d, x, &xc->xmax));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_kmeans_xcache_destroy(bo_kmeans_xcache *xc)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree(xc->sqnorm));
  xc->local = 0;
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- assignment (+ hard sums) */

/* Per-tile partial sums of the rows of each cluster, in double and in row order (deterministic:
 * a tile is the same rows at any rank count); the clusters a tile touched then go into the exact
 * sum: at most min(k, tile rows) x d conversions per tile. */
typedef struct {
  bo_exactsum s;
  int64_t     k, d, *count, *touched_list, ntouched, *rs;
  double     *part;
  PetscBool  *touched;
  int32_t    *left;
} hard_acc;

/* Rows per chunk of the small-K assignment: the dot products, argmin and sums of a chunk run
 * while its rows are still in L2 (32 rows of 784 floats: 100 KB). */
#define CHUNK_ROWS 32

static PetscErrorCode hard_acc_create(const bo_rows *rows, int64_t d, int64_t k, double xmax, hard_acc *h)
{
  PetscFunctionBeginUser;
  h->k = k; h->d = d; h->ntouched = 0;
  PetscCall(bo_exactsum_create(k * d, xmax * (double)rows->n, &h->s));
  PetscCall(PetscCalloc4(k, &h->count, k * d, &h->part, k, &h->touched, k, &h->touched_list));
  PetscCall(PetscMalloc2(CHUNK_ROWS, &h->left, CHUNK_ROWS, &h->rs));
  PetscFunctionReturn(0);
}

/* pc[j] += x_r[j] for the rows r of rs[0..nr), in that order: per element the same additions, in
 * the same order, as adding the rows one by one, but pc is loaded and stored once per group. */
typedef void add_rows_fn(int64_t d, const float *x, const int64_t *rs, int64_t nr, double *pc);

static void add_rows_portable(int64_t d, const float *x, const int64_t *rs, int64_t nr, double *pc)
{
  for (int64_t q = 0; q < nr; q++)
    for (int64_t j = 0; j < d; j++) pc[j] += x[rs[q] * d + j];
}

AVX2 static void add_rows_avx2(int64_t d, const float *x, const int64_t *rs, int64_t nr, double *pc)
{
  int64_t j = 0;
  for (; j + 32 <= d; j += 32) { /* 32 columns: 8 registers of partial sums, two cache lines per row */
    __m256d acc[8];
#pragma GCC unroll 8
    for (int b = 0; b < 8; b++) acc[b] = _mm256_loadu_pd(pc + j + 4 * b);
    for (int64_t q = 0; q < nr; q++) {
      const float *xr = x + rs[q] * d + j;
#pragma GCC unroll 4
      for (int b = 0; b < 4; b++) {
        __m256 v = _mm256_loadu_ps(xr + 8 * b);
        acc[2 * b]     = _mm256_add_pd(acc[2 * b], _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        acc[2 * b + 1] = _mm256_add_pd(acc[2 * b + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
      }
    }
#pragma GCC unroll 8
    for (int b = 0; b < 8; b++) _mm256_storeu_pd(pc + j + 4 * b, acc[b]);
  }
  for (; j + 4 <= d; j += 4) {
    __m256d acc = _mm256_loadu_pd(pc + j);
    for (int64_t q = 0; q < nr; q++) acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm_loadu_ps(x + rs[q] * d + j)));
    _mm256_storeu_pd(pc + j, acc);
  }
  for (; j < d; j++)
    for (int64_t q = 0; q < nr; q++) pc[j] += x[rs[q] * d + j];
}

CPU_DISPATCH(add_rows_fn, add_rows, add_rows_avx2, add_rows_portable)

/* nr consecutive rows x (nr <= CHUNK_ROWS, labels lab) into their clusters' partials, each
 * cluster's rows in row order: one add_rows call per cluster present. */
static void hard_acc_rows(hard_acc *h, int64_t nr, const int32_t *lab, const float *x)
{
  add_rows_fn *add = add_rows();
  int32_t     *left = h->left;
  int64_t     *rs = h->rs;

  memcpy(left, lab, sizeof *left * (size_t)nr);
  for (int64_t q = 0; q < nr; q++) {
    int32_t c = left[q];
    if (c < 0) continue; /* added with an earlier row of its cluster */
    int64_t n = 0;
    for (int64_t r = q; r < nr; r++)
      if (left[r] == c) { rs[n++] = r; left[r] = -1; }
    double *pc = h->part + (int64_t)c * h->d;
    if (!h->touched[c]) {
      h->touched[c] = PETSC_TRUE;
      h->touched_list[h->ntouched++] = c;
      memset(pc, 0, sizeof *pc * (size_t)h->d);
    }
    add(h->d, x, rs, n, pc);
    h->count[c] += n;
  }
}

static PetscErrorCode hard_acc_end_tile(hard_acc *h)
{
  PetscFunctionBeginUser;
  for (int64_t q = 0; q < h->ntouched; q++) {
    int64_t c = h->touched_list[q];
    PetscCall(bo_exactsum_add_at(h->s, c * h->d, h->d, h->part + c * h->d));
    h->touched[c] = PETSC_FALSE;
  }
  h->ntouched = 0;
  PetscFunctionReturn(0);
}

static PetscErrorCode hard_acc_free(hard_acc *h)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree4(h->count, h->part, h->touched, h->touched_list));
  PetscCall(PetscFree2(h->left, h->rs));
  PetscCall(bo_exactsum_destroy(&h->s));
  PetscFunctionReturn(0);
}

/* (collective) The totals, and frees h. */
static PetscErrorCode hard_acc_finish(MPI_Comm comm, hard_acc *h, double *sums, double *weight)
{
  PetscFunctionBeginUser;
  PetscCall(bo_exactsum_allreduce(comm, h->s, sums));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, h->count, (int)h->k, MPI_INT64_T, MPI_SUM, comm));
  for (int64_t c = 0; c < h->k; c++) weight[c] = (double)h->count[c];
  PetscCall(hard_acc_free(h));
  PetscFunctionReturn(0);
}

/* The nearest prototype of one row from its cross products g: argmin_c of mm[c] - 2 g[c] in
 * double, ties to the lowest c, NaN never wins (a NaN at c = 0 keeps 0), as this plain scan. */
typedef int32_t argmin_fn(int64_t k, const double *mm, const float *g, double *bestv);

static int32_t argmin_portable(int64_t k, const double *mm, const float *g, double *bestv)
{
  int32_t best = 0;
  double  b    = mm[0] - 2.0 * (double)g[0];
  for (int64_t c = 1; c < k; c++) {
    double v = mm[c] - 2.0 * (double)g[c];
    if (v < b) { b = v; best = (int32_t)c; }
  }
  *bestv = b;
  return best;
}

/* Four lanes, each keeping its first minimum (strict <, so NaN and a lane's +inf start never
 * win), then the lowest index among the lanes' equal minima: the scan's answer whenever g[0]'s
 * value is not NaN (that case, and "nothing below +inf", fall back to index 0 like the scan). */
AVX2 static int32_t argmin_avx2(int64_t k, const double *mm, const float *g, double *bestv)
{
  const __m256d two = _mm256_set1_pd(2.0), four = _mm256_set1_pd(4.0);
  __m256d       best = _mm256_set1_pd(INFINITY), at = _mm256_set1_pd(-1), idx = _mm256_setr_pd(0, 1, 2, 3);
  double        v0 = mm[0] - 2.0 * (double)g[0], lb[4], li[4], b = INFINITY;
  int64_t       c = 0, i = -1;

  if (isnan(v0) || k < 8) return argmin_portable(k, mm, g, bestv);
  for (; c + 4 <= k; c += 4) {
    __m256d v    = _mm256_sub_pd(_mm256_loadu_pd(mm + c), _mm256_mul_pd(two, _mm256_cvtps_pd(_mm_loadu_ps(g + c))));
    __m256d less = _mm256_cmp_pd(v, best, _CMP_LT_OQ);
    best         = _mm256_blendv_pd(best, v, less);
    at           = _mm256_blendv_pd(at, idx, less);
    idx          = _mm256_add_pd(idx, four);
  }
  _mm256_storeu_pd(lb, best);
  _mm256_storeu_pd(li, at);
  for (int l = 0; l < 4; l++)
    if (li[l] >= 0 && (lb[l] < b || (lb[l] == b && (int64_t)li[l] < i))) { b = lb[l]; i = (int64_t)li[l]; }
  for (; c < k; c++) { /* the tail: later indices, strict < as the scan */
    double v = mm[c] - 2.0 * (double)g[c];
    if (v < b) { b = v; i = c; }
  }
  if (i < 0) { b = v0; i = 0; }
  *bestv = b;
  return (int32_t)i;
}

CPU_DISPATCH(argmin_fn, row_argmin, argmin_avx2, argmin_portable)

/* ---------------------------------------------------------------- bounds (Hamerly 2010) */

/* What a bounded pass knows about the prototypes' movement since the last one, and the rounding
 * slack of its tests.  Why the skipped products are never needed (same labels, same bits):
 *   - lower[i] is a lower bound on the exact distance |x_i - m_c| for every c != label[i]
 *     (set from the computed distances minus their worst rounding, then lowered by the largest
 *     movement of the other prototypes: the triangle inequality);
 *   - the computed value of c, |m_c|^2 - 2 x.m_c, is within e_i of the exact |x_i - m_c|^2 - |x_i|^2,
 *     e_i = gamma (|x_i| + max_c |m_c|)^2 (gamma: float dot products of n = d/8 + 12 roundings
 *     at most, |error| <= gamma_n |x| |m|, plus a margin for the double arithmetic);
 *   - so lower[i]^2 > |x_i|^2 + v_a + 3 e_i (v_a: the computed value of label[i]) puts every other
 *     computed value strictly above v_a: the full argmin would return label[i], with v_a;
 *   - upper[i] >= |x_i - m_label[i]| (exact; set from the computed value plus e_i, then raised by
 *     that prototype's movement), so v_a <= upper^2 - |x_i|^2 + e_i, and lower[i]^2 > upper[i]^2
 *     + 5 e_i proves the same without computing v_a: the row is not read (passes without mind). */
typedef struct {
  bo_kmeans_bounds *b;
  int64_t           off;        /* the tile's first local row */
  double            shift;      /* the largest movement of a prototype since the last pass */
  double            shift_top;  /* the largest movement of the others than top */
  int32_t           top;
  double            mnorm;      /* max_c |m_c|, rounded up */
  double            gamma;
  double            move[DIRECT_MAX_K]; /* each prototype's movement */
  PetscBool         no_read;    /* no mind wanted: rows proven by their bounds alone are not read */
} pass_bounds;

PetscErrorCode bo_kmeans_bounds_create(const bo_rows *rows, int64_t d, int64_t k, bo_kmeans_bounds *b)
{
  int64_t local = bo_rows_local(rows);

  PetscFunctionBeginUser;
  b->local = local; b->k = k; b->d = d; b->have_prev = PETSC_FALSE; b->skipped = b->replaced = 0;
  b->held = NULL; b->total = NULL; b->count = NULL; b->xmax = 0; b->kind = 0; b->have_sums = PETSC_FALSE;
  PetscCall(PetscMalloc4(PetscMax(1, local), &b->label, PetscMax(1, local), &b->lower, k * d, &b->prev, PetscMax(1, local), &b->upper));
  for (int64_t i = 0; i < local; i++) { b->label[i] = -1; b->lower[i] = -1.0; }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_kmeans_bounds_destroy(bo_kmeans_bounds *b)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree4(b->label, b->lower, b->prev, b->upper));
  PetscCall(PetscFree(b->count));
  if (b->total) PetscCall(bo_exactsum_destroy(&b->total));
  if (b->held) PetscCall(bo_exactsum_destroy(&b->held));
  b->local = 0;
  PetscFunctionReturn(0);
}

/* The pass's movement of every prototype since b->prev (none yet: infinite, no row is skipped). */
static void pass_bounds_begin(bo_kmeans_bounds *b, int64_t d, int64_t k, const float *m, const double *mm, pass_bounds *pb)
{
  const double u = ldexp(1.0, -24), n = (double)(d / 8 + 12);
  double       top = 0, second = 0, mmax = 0;

  pb->b = b; pb->top = 0;
  for (int64_t c = 0; c < k; c++) mmax = PetscMax(mmax, mm[c]);
  pb->mnorm = sqrt(mmax) * (1 + 1e-12);
  pb->gamma = 2 * n * u / (1 - n * u) + 1e-10;
  if (!b->have_prev) {
    pb->shift = pb->shift_top = INFINITY;
    for (int64_t c = 0; c < k; c++) pb->move[c] = INFINITY;
    return;
  }
  for (int64_t c = 0; c < k; c++) {
    double s = sqrt(row_sqdist(m + c * d, b->prev + c * d, d)) * (1 + 1e-10);
    if (s != s) s = INFINITY; /* a NaN prototype: no bound survives it (the scan keeps a NaN at 0) */
    pb->move[c] = s;
    if (s > top) { second = top; top = s; pb->top = (int32_t)c; }
    else if (s > second) second = s;
  }
  pb->shift = top; pb->shift_top = second;
}

/* e_i of row i (|x_i|^2 = xx): how far a computed value may be from the exact one. */
static inline double rounding_slack(const pass_bounds *pb, double xx)
{
  const double nx = sqrt(xx);
  return pb->gamma * (nx + pb->mnorm) * (nx + pb->mnorm);
}

/* An upper bound on the exact |x_i - m_a| from the computed value v of a (slack e = e_i). */
static inline double upper_from(double xx, double v, double e)
{
  return sqrt(PetscMax(0.0, xx + v + e)) * (1 + 1e-12);
}

/* Rows of a chunk whose label a bounded pass can keep: their label, mind and new lower bound set,
 * the others listed in full[] in row order (returns how many). */
static int64_t skip_rows(const pass_bounds *pb, int64_t i0, int64_t nr, int64_t avail, int64_t d, const float *xt, const double *sqnorm, const float *m, const double *mm, int32_t *labels, double *mind, int64_t *full)
{
  int64_t   nfull = 0, nc = 0, off = pb->off, cand[CHUNK_ROWS] = {0}; /* {0}: gcc cannot see that only [0, nc) is read */
  int32_t  *blabel = pb->b->label + off, ca[CHUNK_ROWS] = {0};
  double   *lower  = pb->b->lower + off, clb[CHUNK_ROWS], cub[CHUNK_ROWS];
  double   *upper  = pb->b->upper + off;
  float     cg[CHUNK_ROWS];
  PetscBool keep[CHUNK_ROWS];

  for (int64_t i = i0; i < i0 + nr; i++) { /* rows whose bound survives the prototypes' movement */
    double lb = lower[i];
    keep[i - i0] = PETSC_FALSE;
    if (!(lb > 0)) continue;
    lb -= blabel[i] == pb->top ? pb->shift_top : pb->shift;
    double ub = (upper[i] + pb->move[blabel[i]]) * (1 + 1e-12);
    if (!(lb > 0) || !(ub < lb)) continue; /* the row's distance now may reach the others' */
    if (pb->no_read) { /* the bounds alone prove the label: the row need not be read */
      double xx = sqnorm ? sqnorm[i] : row_sqnorm(xt + i * d, d);
      if (lb * lb > ub * ub + 5 * rounding_slack(pb, xx)) { cand[nc] = i; clb[nc] = lb; cub[nc] = ub; nc++; }
      continue;
    }
    cand[nc] = i; ca[nc] = blabel[i]; clb[nc] = lb; nc++;
  }
  if (pb->no_read) {
    /* Rows left out break the chunk into short runs, which the kernel streams less well (no
     * prefetch past a run): a chunk skips only when at least half its rows can, and then its
     * other rows are fetched into L2 first (the same bits either way). */
    if (2 * nc < nr) nc = 0;
    for (int64_t q = 0; q < nc; q++) {
      int64_t i = cand[q];
      labels[i] = blabel[i]; lower[i] = clb[q]; upper[i] = cub[q]; keep[i - i0] = PETSC_TRUE;
    }
    pb->b->skipped += nc;
    for (int64_t i = i0; i < i0 + nr; i++)
      if (!keep[i - i0]) {
        full[nfull++] = i;
        if (nc)
          for (int64_t j = 0; j < d; j += 16) __builtin_prefetch(xt + i * d + j, 0, 2);
      }
    return nfull;
  }
  /* Reading a row costs about what the kernel's products on it cost (measured: the full pass
   * runs at 1.4-1.6x the memory stream), so a chunk pays off only when nearly all its rows skip:
   * below 7 in 8 candidates the whole chunk goes to the kernel (the same bits either way). */
  if (8 * nc < 7 * nr) nc = 0;
  dots_own()(nc, cand, ca, avail, d, xt, m, cg);
  for (int64_t q = 0; q < nc; q++) {
    int64_t i  = cand[q];
    int32_t a  = ca[q];
    double  xx = sqnorm ? sqnorm[i] : row_sqnorm(xt + i * d, d);
    double  v  = mm[a] - 2.0 * (double)cg[q];
    double  e  = rounding_slack(pb, xx);
    if (clb[q] * clb[q] > xx + v + 3 * e) {
      labels[i]    = a;
      mind[i]      = PetscMax(0.0, xx + v);
      upper[i]     = upper_from(xx, v, e);
      lower[i]     = clb[q];
      keep[i - i0] = PETSC_TRUE;
      pb->b->skipped++;
    }
  }
  for (int64_t i = i0; i < i0 + nr; i++)
    if (!keep[i - i0]) full[nfull++] = i;
  return nfull;
}

/* argmin_portable's answer (the same scan) and, in *second, the smallest value of the other
 * prototypes, in one pass over the row's values: a NaN among them sticks (such a row is never
 * skipped; the scan keeps a NaN at 0).  A value that loses its place as the minimum joins the
 * others; min is order-free, so this equals the minimum taken after the scan. */
static int32_t argmin_second(int64_t k, const double *mm, const float *g, double *bestv, double *second)
{
  int32_t best = 0;
  double  b = mm[0] - 2.0 * (double)g[0], v2 = INFINITY;
  for (int64_t c = 1; c < k; c++) {
    double v = mm[c] - 2.0 * (double)g[c], out = v;
    if (v < b) { out = b; b = v; best = (int32_t)c; }
    if (out < v2 || out != out || v2 != v2) v2 = v2 != v2 ? v2 : out;
  }
  *bestv  = b;
  *second = v2;
  return best;
}

/* A fully computed row's bounds: upper from its own computed value bestv, lower from the second
 * smallest v2, each with the rounding. */
static void bound_from_full(const pass_bounds *pb, int64_t i, int64_t k, double bestv, double v2, double xx, int32_t best)
{
  const double e = rounding_slack(pb, xx);
  pb->b->label[pb->off + i] = best;
  pb->b->upper[pb->off + i] = upper_from(xx, bestv, e);
  pb->b->lower[pb->off + i] = k == 1 ? INFINITY : sqrt(PetscMax(0.0, xx + v2 - e)); /* NaN: never skipped */
}

/* The end of tile lt (local index) of a bounded fused pass, rows [0, rows) of xt labelled old
 * before it (-1: none): the partial of each cluster whose rows changed (all, fresh) replaces the
 * old one in b's total.  Dense passes (h: many changes) summed every cluster chunk by chunk while
 * the rows were in L2; sparse ones sum only these clusters now, in row order (the same bits),
 * and leave the other clusters' rows unread. */
static PetscErrorCode tile_sums_replace(bo_kmeans_bounds *b, hard_acc *h, int64_t lt, int64_t rows, const float *xt, const int32_t *labels, const int32_t *old, PetscBool fresh, PetscBool *affected, int64_t *rs, double *pc)
{
  const int64_t k = b->k, d = b->d;
  add_rows_fn  *add = add_rows();

  PetscFunctionBeginUser;
  for (int64_t c = 0; c < k; c++) affected[c] = fresh;
  for (int64_t i = 0; i < rows; i++)
    if (old[i] != labels[i]) {
      if (old[i] >= 0) { affected[old[i]] = PETSC_TRUE; b->count[old[i]]--; }
      affected[labels[i]] = PETSC_TRUE; b->count[labels[i]]++;
    }
  for (int64_t c = 0; c < k; c++) {
    if (!affected[c]) continue;
    const double *part = pc;
    if (h && h->touched[c]) part = h->part + c * d;
    else {
      int64_t n = 0;
      if (!h)
        for (int64_t i = 0; i < rows; i++)
          if (labels[i] == c) rs[n++] = i;
      memset(pc, 0, sizeof *pc * (size_t)d);
      if (n) add(d, xt, rs, n, pc);
    }
    PetscCall(bo_exactsum_replace_at(b->total, c * d, d, part, b->held, (lt * k + c) * d));
    b->replaced++;
  }
  if (h) {
    for (int64_t q = 0; q < h->ntouched; q++) h->touched[h->touched_list[q]] = PETSC_FALSE;
    h->ntouched = 0;
  }
  PetscFunctionReturn(0);
}

/* Labels, mind and (h != NULL) the hard sums of rows [0, rows) of one tile; pb (small K only):
 * skip the products a row provably does not need. */
static PetscErrorCode assign_tile(int64_t rows, int64_t avail, int64_t d, const float *xt, const double *sqnorm, int64_t k, const float *m, const double *mm, float *g, int32_t *labels, double *mind, hard_acc *h, const pass_bounds *pb)
{
  int64_t    chunk  = k <= DIRECT_MAX_K ? CHUNK_ROWS : rows;
  argmin_fn *argmin = k <= DIRECT_MAX_K ? argmin_portable : row_argmin(); /* few prototypes: the plain scan is as fast */
  int64_t    full[CHUNK_ROWS];

  PetscFunctionBeginUser;
  for (int64_t i0 = 0; i0 < rows; i0 += chunk) {
    int64_t nr = PetscMin(chunk, rows - i0), nfull = nr;
    if (pb) nfull = skip_rows(pb, i0, nr, avail, d, xt, sqnorm, m, mm, labels, mind, full);
    else if (k <= DIRECT_MAX_K) for (int64_t q = 0; q < nr; q++) full[q] = i0 + q;
    if (k > DIRECT_MAX_K) tile_cross(nr, avail - i0, d, xt + i0 * d, k, m, g);
    else
      for (int64_t q = 0; q < nfull;) { /* runs of consecutive rows through the kernel */
        int64_t s = q;
        while (q + 1 < nfull && full[q + 1] == full[q] + 1) q++;
        q++;
        int64_t run = full[q - 1] - full[s] + 1; /* rows skipped without mind are not read: no prefetch past a run then */
        tile_cross(run, pb && pb->no_read && nfull < nr ? run : avail - full[s], d, xt + full[s] * d, k, m, g + (full[s] - i0) * k);
      }
    for (int64_t q = 0; q < nfull; q++) {
      int64_t      i  = k <= DIRECT_MAX_K ? full[q] : i0 + q;
      const float *gi = g + (i - i0) * k, *xr = xt + i * d;
      double       bestv, v2, xx = sqnorm ? sqnorm[i] : row_sqnorm(xr, d);
      int32_t      best = pb ? argmin_second(k, mm, gi, &bestv, &v2) : argmin(k, mm, gi, &bestv);
      labels[i] = best;
      if (mind) mind[i] = PetscMax(0.0, xx + bestv);
      if (pb) bound_from_full(pb, i, k, bestv, v2, xx, best);
    }
    if (h) /* small K: the chunk's rows are in L2; large K: one row at a time */
      for (int64_t q = i0; q < i0 + nr; q += CHUNK_ROWS) hard_acc_rows(h, PetscMin(CHUNK_ROWS, i0 + nr - q), labels + q, xt + q * d);
  }
  PetscFunctionReturn(0);
}

/* tile_sums: (b only) the tiles' changed partials replace theirs in b's total; h (dense passes)
 * or NULL (sparse) as tile_sums_replace. */
static PetscErrorCode assign_all(const bo_rows *rows, int64_t d, const float *x, const bo_kmeans_xcache *xc, int64_t k, const float *m_in, int32_t *labels, double *mind, hard_acc *h, bo_kmeans_bounds *b, PetscBool tile_sums)
{
  float       *g, *m_raw;
  const float *m;
  double      *mm;
  pass_bounds  pb;
  int32_t     *old = NULL;
  int64_t     *rs = NULL;
  double      *pc = NULL;
  PetscBool   *affected = NULL, fresh = PETSC_FALSE;

  PetscFunctionBeginUser;
  PetscCheck(!xc || xc->local == bo_rows_local(rows), PETSC_COMM_SELF, BO_ERR_RUNTIME, "kmeans: x cache of %lld rows for %lld; expected the cache of this x (internal error)", (long long)xc->local, (long long)bo_rows_local(rows));
  PetscCheck(!b || (b->local == bo_rows_local(rows) && b->k == k && b->d == d), PETSC_COMM_SELF, BO_ERR_RUNTIME, "kmeans: bounds of %lld rows, k = %lld, d = %lld for %lld, %lld, %lld; expected the bounds of this x and k (internal error)", (long long)b->local, (long long)b->k, (long long)b->d, (long long)bo_rows_local(rows), (long long)k, (long long)d);
  PetscCall(PetscMalloc2(BO_TILE_ROWS * k, &g, k, &mm));
  PetscCall(prototypes_aligned(k, d, m_in, &m_raw, &m));
  for (int64_t c = 0; c < k; c++) mm[c] = row_sqnorm(m + c * d, d);
  if (b && k > DIRECT_MAX_K) b = NULL; /* many prototypes: one sgemm per tile, whose bits depend on its rows */
  if (b) {
    pass_bounds_begin(b, d, k, m, mm, &pb);
    pb.no_read  = mind ? PETSC_FALSE : PETSC_TRUE;
    b->skipped = b->replaced = 0;
  }
  if (b && tile_sums) {
    PetscCall(PetscMalloc4(BO_TILE_ROWS, &old, k, &affected, BO_TILE_ROWS, &rs, d, &pc));
    fresh = b->have_sums ? PETSC_FALSE : PETSC_TRUE;
  }
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    int64_t off = lo - rows->lo;
    pb.off = off;
    if (old) /* the labels the tile's sums were made with */
      for (int64_t i = 0; i < hi - lo; i++) old[i] = fresh ? -1 : b->label[off + i];
    PetscCall(assign_tile(hi - lo, rows->hi - lo, d, x + off * d, xc ? xc->sqnorm + off : NULL, k, m, mm, g, labels + off, mind ? mind + off : NULL, h, b ? &pb : NULL));
    if (old) PetscCall(tile_sums_replace(b, h, t - rows->tile_lo, hi - lo, x + off * d, labels + off, old, fresh, affected, rs, pc));
    else if (h) PetscCall(hard_acc_end_tile(h));
  }
  if (old) b->have_sums = PETSC_TRUE;
  PetscCall(PetscFree4(old, affected, rs, pc));
  if (b) {
    PetscCall(PetscArraycpy(b->prev, m, k * d));
    b->have_prev = PETSC_TRUE;
  }
  PetscCall(PetscFree(m_raw));
  PetscCall(PetscFree2(g, mm));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_kmeans_assign(const bo_rows *rows, int64_t d, const float *x, int64_t k, const float *m, int32_t *labels, double *mind)
{
  PetscFunctionBeginUser;
  PetscCall(assign_all(rows, d, x, NULL, k, m, labels, mind, NULL, NULL, PETSC_FALSE));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_kmeans_assign_cached(const bo_rows *rows, int64_t d, const float *x, const bo_kmeans_xcache *xc, int64_t k, const float *m, int32_t *labels, double *mind)
{
  PetscFunctionBeginUser;
  PetscCall(assign_all(rows, d, x, xc, k, m, labels, mind, NULL, NULL, PETSC_FALSE));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_kmeans_assign_bounded(const bo_rows *rows, int64_t d, const float *x, const bo_kmeans_xcache *xc, int64_t k, const float *m, int32_t *labels, double *mind, bo_kmeans_bounds *b)
{
  PetscFunctionBeginUser;
  PetscCheck(b->kind != 2, PETSC_COMM_SELF, BO_ERR_RUNTIME, "kmeans: bounds of fused passes given to bo_kmeans_assign_bounded; expected bounds of its own (internal error)");
  b->kind = 1;
  PetscCall(assign_all(rows, d, x, xc, k, m, labels, mind, NULL, b, PETSC_FALSE));
  PetscFunctionReturn(0);
}

/* max |x| over all ranks: the cache's, else one pass over x (collective either way: the same on every rank). */
static PetscErrorCode x_bound(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const bo_kmeans_xcache *xc, double *xmax)
{
  PetscFunctionBeginUser;
  PetscCheck(!xc || xc->local == bo_rows_local(rows), PETSC_COMM_SELF, BO_ERR_RUNTIME, "kmeans: x cache of %lld rows for %lld; expected the cache of this x (internal error)", (long long)xc->local, (long long)bo_rows_local(rows));
  if (xc) *xmax = xc->xmax;
  else PetscCall(max_abs(comm, bo_rows_local(rows) * d, x, xmax));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_kmeans_assign_sums(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const bo_kmeans_xcache *xc, int64_t k, const float *m, int32_t *labels, double *mind, double *sums, double *weight, bo_kmeans_bounds *b)
{
  hard_acc h;
  double   xmax;

  PetscFunctionBeginUser;
  PetscCall(x_bound(comm, rows, d, x, xc, &xmax));
  PetscCheck(!b || b->kind != 1, PETSC_COMM_SELF, BO_ERR_RUNTIME, "kmeans: bounds of bo_kmeans_assign_bounded given to a fused pass; expected bounds of its own (internal error)");
  if (b) b->kind = 2;
  if (b && k <= DIRECT_MAX_K) { /* the running total of b's tile partials: the same grid, so the same bits as h's */
    if (b->total && b->xmax != xmax) { /* another x: start over */
      PetscCall(bo_exactsum_destroy(&b->total));
      PetscCall(bo_exactsum_destroy(&b->held));
      PetscCall(PetscFree(b->count));
      b->have_sums = PETSC_FALSE;
    }
    if (!b->total) {
      PetscCall(bo_exactsum_create(k * d, xmax * (double)rows->n, &b->total));
      PetscCall(bo_exactsum_create(PetscMax(1, (rows->tile_hi - rows->tile_lo) * k * d), xmax * (double)rows->n, &b->held));
      PetscCall(PetscCalloc1(k, &b->count));
      b->xmax = xmax;
    }
    /* dense when the last pass replaced over a third of the partials (or none exist yet): summing
     * every chunk in L2 then costs less than reading the changed clusters' rows again */
    PetscBool dense = !b->have_sums || 3 * b->replaced > (rows->tile_hi - rows->tile_lo) * k ? PETSC_TRUE : PETSC_FALSE;
    if (dense) PetscCall(hard_acc_create(rows, d, k, xmax, &h)); /* its chunk partials; its own total stays unused */
    PetscCall(assign_all(rows, d, x, xc, k, m, labels, mind, dense ? &h : NULL, b, PETSC_TRUE));
    if (dense) PetscCall(hard_acc_free(&h));
    PetscCall(bo_exactsum_allreduce(comm, b->total, sums));
    for (int64_t c = 0; c < k; c++) weight[c] = (double)b->count[c];
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, weight, (int)k, MPI_DOUBLE, MPI_SUM, comm)); /* integers below 2^53: exact in any order */
    PetscFunctionReturn(0);
  }
  PetscCall(hard_acc_create(rows, d, k, xmax, &h));
  PetscCall(assign_all(rows, d, x, xc, k, m, labels, mind, &h, b, PETSC_FALSE));
  PetscCall(hard_acc_finish(comm, &h, sums, weight));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- means */

static PetscErrorCode hard_sums(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const bo_kmeans_xcache *xc, int64_t k, const int32_t *labels, double *sums, double *weight)
{
  hard_acc h;
  double   xmax;

  PetscFunctionBeginUser;
  PetscCall(x_bound(comm, rows, d, x, xc, &xmax));
  PetscCall(hard_acc_create(rows, d, k, xmax, &h));
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    for (int64_t i = lo - rows->lo; i < hi - rows->lo; i++) hard_acc_rows(&h, 1, labels + i, x + i * d); /* rows from memory: one at a time */
    PetscCall(hard_acc_end_tile(&h));
  }
  PetscCall(hard_acc_finish(comm, &h, sums, weight));
  PetscFunctionReturn(0);
}

/* Soft means: per tile, Y_t^T X_t (k x d) by one dgemm, then exactly across tiles. */
static PetscErrorCode soft_sums(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const bo_kmeans_xcache *xc, int64_t k, const double *y, double *sums, double *weight)
{
  bo_exactsum s, w;
  double     *xt, *part, *wpart, xmax;

  PetscFunctionBeginUser;
  PetscCall(x_bound(comm, rows, d, x, xc, &xmax));
  PetscCall(bo_exactsum_create(k * d, xmax * (double)rows->n, &s));
  PetscCall(bo_exactsum_create(k, (double)rows->n, &w));
  PetscCall(PetscMalloc3(BO_TILE_ROWS * d, &xt, k * d, &part, k, &wpart));
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    const double *yt = y + (lo - rows->lo) * k;
    for (int64_t i = 0; i < (hi - lo) * d; i++) xt[i] = x[(lo - rows->lo) * d + i];
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)d, (int)(hi - lo), 1.0, yt, (int)k, xt, (int)d, 0.0, part, (int)d);
    for (int64_t c = 0; c < k; c++) wpart[c] = 0;
    for (int64_t i = 0; i < hi - lo; i++)
      for (int64_t c = 0; c < k; c++) wpart[c] += yt[i * k + c];
    PetscCall(bo_exactsum_add(s, part));
    PetscCall(bo_exactsum_add(w, wpart));
  }
  PetscCall(bo_exactsum_allreduce(comm, s, sums));
  PetscCall(bo_exactsum_allreduce(comm, w, weight));
  PetscCall(PetscFree3(xt, part, wpart));
  PetscCall(bo_exactsum_destroy(&s));
  PetscCall(bo_exactsum_destroy(&w));
  PetscFunctionReturn(0);
}

double bo_kmeans_energy_from_sums(int64_t k, int64_t d, const float *m, const double *sums, const double *weight, double xx)
{
  double e = xx;
  for (int64_t c = 0; c < k; c++) {
    if (!(weight[c] > 0)) continue;
    double dot = 0, mm = 0;
    for (int64_t j = 0; j < d; j++) {
      dot += (double)m[c * d + j] * sums[c * d + j];
      mm += (double)m[c * d + j] * m[c * d + j];
    }
    e += weight[c] * mm - 2 * dot;
  }
  return e;
}

void bo_kmeans_means_from_sums(int64_t k, int64_t d, const double *sums, const double *weight, float *m)
{
  for (int64_t c = 0; c < k; c++)
    if (weight[c] > 0)
      for (int64_t j = 0; j < d; j++) m[c * d + j] = (float)(sums[c * d + j] / weight[c]);
}

PetscErrorCode bo_kmeans_means(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int64_t k, const int32_t *labels, const double *y, float *m, double *weight)
{
  PetscFunctionBeginUser;
  PetscCall(bo_kmeans_means_cached(comm, rows, d, x, NULL, k, labels, y, m, weight));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_kmeans_means_cached(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const bo_kmeans_xcache *xc, int64_t k, const int32_t *labels, const double *y, float *m, double *weight)
{
  double *sums;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(k * d, &sums));
  if (y) PetscCall(soft_sums(comm, rows, d, x, xc, k, y, sums, weight));
  else PetscCall(hard_sums(comm, rows, d, x, xc, k, labels, sums, weight));
  bo_kmeans_means_from_sums(k, d, sums, weight, m);
  PetscCall(PetscFree(sums));
  PetscFunctionReturn(0);
}

/* One mean-shift sweep's sums: per tile, kappa x and kappa summed per (active) cluster in double,
 * in row order, then only the clusters the tile touched go into the exact sums. */
static PetscErrorCode meanshift_sums(const bo_rows *rows, int64_t d, const float *x, int64_t k, const int32_t *labels, const PetscBool *active, const float *m, double inv2s2, bo_exactsum s, bo_exactsum w, double *part, double *wpart, PetscBool *touched, int64_t *touched_list)
{
  PetscFunctionBeginUser;
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi, ntouched = 0;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    for (int64_t i = lo - rows->lo; i < hi - rows->lo; i++) {
      int32_t c = labels[i];
      if (!active[c]) continue;
      double *pc = part + (int64_t)c * d, kappa = exp(-row_sqdist(x + i * d, m + (int64_t)c * d, d) * inv2s2);
      if (!touched[c]) {
        touched[c] = PETSC_TRUE;
        touched_list[ntouched++] = c;
        for (int64_t j = 0; j < d; j++) pc[j] = 0;
        wpart[c] = 0;
      }
      for (int64_t j = 0; j < d; j++) pc[j] += kappa * x[i * d + j];
      wpart[c] += kappa;
    }
    for (int64_t q = 0; q < ntouched; q++) {
      int64_t c = touched_list[q];
      PetscCall(bo_exactsum_add_at(s, c * d, d, part + c * d));
      PetscCall(bo_exactsum_add_at(w, c, 1, wpart + c));
      touched[c] = PETSC_FALSE;
    }
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_kmodes_meanshift(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int64_t k, const int32_t *labels, double sigma, int max_it, double tol, float *m, int *sweeps)
{
  int64_t    local = bo_rows_local(rows), *touched_list;
  double    *sums, *wsum, *part, *wpart, xmax, inv2s2 = 1.0 / (2.0 * sigma * sigma);
  PetscBool *active, *touched;
  int        nactive = (int)k;

  PetscFunctionBeginUser;
  PetscCall(max_abs(comm, local * d, x, &xmax));
  PetscCall(PetscMalloc4(k * d, &sums, k, &wsum, k, &active, k * d, &part));
  PetscCall(PetscCalloc3(k, &wpart, k, &touched, k, &touched_list));
  for (int64_t c = 0; c < k; c++) active[c] = PETSC_TRUE;
  for (*sweeps = 0; *sweeps < max_it && nactive > 0; (*sweeps)++) {
    bo_exactsum s, w;
    PetscCall(bo_exactsum_create(k * d, xmax * (double)rows->n, &s));
    PetscCall(bo_exactsum_create(k, (double)rows->n, &w));
    PetscCall(meanshift_sums(rows, d, x, k, labels, active, m, inv2s2, s, w, part, wpart, touched, touched_list));
    PetscCall(bo_exactsum_allreduce(comm, s, sums));
    PetscCall(bo_exactsum_allreduce(comm, w, wsum));
    PetscCall(bo_exactsum_destroy(&s));
    PetscCall(bo_exactsum_destroy(&w));
    nactive = 0;
    for (int64_t c = 0; c < k; c++) {
      if (!active[c]) continue;
      double shift = 0, size = 0;
      if (wsum[c] > 0)
        for (int64_t j = 0; j < d; j++) {
          float v = (float)(sums[c * d + j] / wsum[c]);
          shift   = PetscMax(shift, fabs((double)v - m[c * d + j]));
          size    = PetscMax(size, fabs((double)v));
          m[c * d + j] = v;
        }
      active[c] = shift >= tol * size && wsum[c] > 0 ? PETSC_TRUE : PETSC_FALSE;
      nactive += active[c];
    }
  }
  PetscCall(PetscFree4(sums, wsum, active, part));
  PetscCall(PetscFree3(wpart, touched, touched_list));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_rows_gather(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int64_t count, const int64_t *idx, float *out)
{
  uint32_t *bits;

  PetscFunctionBeginUser;
  PetscCall(PetscCalloc1(count * d, &bits));
  for (int64_t r = 0; r < count; r++)
    if (idx[r] >= rows->lo && idx[r] < rows->hi) memcpy(bits + r * d, x + (idx[r] - rows->lo) * d, (size_t)d * sizeof(float));
  /* Bitwise OR with zeros moves each row's bits exactly (a float sum would turn -0 into +0). */
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, bits, (int)(count * d), MPI_UINT32_T, MPI_BOR, comm));
  memcpy(out, bits, (size_t)(count * d) * sizeof(float));
  PetscCall(PetscFree(bits));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_rows_argmax(MPI_Comm comm, const bo_rows *rows, const double *score, int64_t *row, double *value)
{
  double  best = -INFINITY;
  int64_t at   = INT64_MAX;

  PetscFunctionBeginUser;
  for (int64_t i = 0; i < bo_rows_local(rows); i++)
    if (score[i] > best) { best = score[i]; at = rows->lo + i; }
  PetscCallMPI(MPI_Allreduce(&best, value, 1, MPI_DOUBLE, MPI_MAX, comm));
  if (best != *value) at = INT64_MAX;
  PetscCallMPI(MPI_Allreduce(&at, row, 1, MPI_INT64_T, MPI_MIN, comm));
  PetscFunctionReturn(0);
}

/* Per-tile sums of w on every rank, in global tile order (each tile sum is sequential within the
 * tile, so rank-count independent). */
static PetscErrorCode all_tile_sums(MPI_Comm comm, const bo_rows *rows, const double *w, double *tiles)
{
  PetscMPIInt size, *counts, *displs;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCall(PetscMalloc2(size, &counts, size, &displs));
  for (int r = 0; r < size; r++) {
    bo_rows rr;
    bo_rows_partition(rows->n, r, size, &rr);
    counts[r] = (PetscMPIInt)(rr.tile_hi - rr.tile_lo);
    displs[r] = (PetscMPIInt)rr.tile_lo;
  }
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    double  s = 0;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) s += w[i - rows->lo];
    tiles[t] = s;
  }
  PetscCallMPI(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, tiles, counts, displs, MPI_DOUBLE, comm));
  PetscCall(PetscFree2(counts, displs));
  PetscFunctionReturn(0);
}

/* The row where the running sum of w (global row order) first exceeds u * total. */
static PetscErrorCode weighted_draw(MPI_Comm comm, const bo_rows *rows, const double *w, double *tiles, double u, int64_t *row)
{
  double  total = 0, acc = 0;
  int64_t t, last = -1;
  PetscMPIInt size;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCall(all_tile_sums(comm, rows, w, tiles));
  for (t = 0; t < rows->ntiles; t++) total += tiles[t];
  if (!(total > 0)) { /* every row sits on a seed: a uniform draw */
    *row = PetscMin(rows->n - 1, (int64_t)(u * (double)rows->n));
    PetscFunctionReturn(0);
  }
  double target = u * total;
  for (t = 0; t < rows->ntiles; t++) {
    if (tiles[t] > 0) last = t;
    if (acc + tiles[t] > target && tiles[t] > 0) break;
    acc += tiles[t];
  }
  if (t == rows->ntiles) t = last; /* rounding at the very end */
  int     owner = bo_rows_owner(rows->n, size, t * BO_TILE_ROWS);
  int64_t pick  = -1;
  if (t >= rows->tile_lo && t < rows->tile_hi) {
    int64_t lo, hi;
    double  rem = target - acc, run = 0;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
      double v = w[i - rows->lo];
      if (v > 0) pick = i;
      run += v;
      if (v > 0 && run > rem) break;
    }
  }
  PetscCallMPI(MPI_Bcast(&pick, 1, MPI_INT64_T, owner, comm));
  *row = pick;
  PetscFunctionReturn(0);
}

/* Greedy k-means++ (as scikit-learn): each new seed is the best of 2 + ln k weighted draws, the
 * one that leaves the smallest total squared distance; the plain rule misplaces seeds often
 * enough on separated data to matter. */
PetscErrorCode bo_kmeans_plusplus(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int64_t k, uint64_t seed, float *m)
{
  int64_t local = bo_rows_local(rows), row;
  int     trials = 2 + (int)log((double)k);
  double *mind, *trial, *best, *tiles, potential, best_potential;
  float  *cand;
  bo_rng  r;

  PetscFunctionBeginUser;
  bo_rng_init(&r, seed, 0, RNG_PURPOSE_SEEDING); /* one replicated stream: every rank draws the same */
  PetscCall(PetscMalloc5(PetscMax(1, local), &mind, PetscMax(1, local), &trial, PetscMax(1, local), &best, rows->ntiles, &tiles, d, &cand));
  row = (int64_t)bo_rng_below(&r, (uint64_t)rows->n);
  PetscCall(bo_rows_gather(comm, rows, d, x, 1, &row, m));
  for (int64_t i = 0; i < local; i++) mind[i] = row_sqdist(x + i * d, m, d);
  for (int64_t c = 1; c < k; c++) {
    best_potential = INFINITY;
    for (int t = 0; t < trials; t++) {
      PetscCall(weighted_draw(comm, rows, mind, tiles, bo_rng_uniform(&r), &row));
      PetscCall(bo_rows_gather(comm, rows, d, x, 1, &row, cand));
      for (int64_t i = 0; i < local; i++) trial[i] = PetscMin(mind[i], row_sqdist(x + i * d, cand, d));
      PetscCall(bo_stats_sum(comm, rows, trial, &potential));
      if (potential < best_potential) { /* ties: the earlier draw */
        best_potential = potential;
        PetscCall(PetscArraycpy(m + c * d, cand, d));
        PetscCall(PetscArraycpy(best, trial, local));
      }
    }
    PetscCall(PetscArraycpy(mind, best, local));
  }
  PetscCall(PetscFree5(mind, trial, best, tiles, cand));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_kmeans_random(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int64_t k, uint64_t seed, float *m)
{
  int64_t *idx, n = rows->n, count = 0;
  bo_rng   r;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(k, &idx));
  bo_rng_init(&r, seed, 0, RNG_PURPOSE_SEEDING);
  /* Floyd's sampling of k distinct rows (k is small: the linear membership test is enough). */
  for (int64_t j = n - k; j < n; j++) {
    int64_t t = (int64_t)bo_rng_below(&r, (uint64_t)(j + 1)), pick = t;
    for (int64_t q = 0; q < count; q++)
      if (idx[q] == t) { pick = j; break; }
    idx[count++] = pick;
  }
  PetscCall(bo_rows_gather(comm, rows, d, x, k, idx, m));
  PetscCall(PetscFree(idx));
  PetscFunctionReturn(0);
}
