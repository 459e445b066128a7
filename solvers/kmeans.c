/* kmeans.c - distances, means, mean-shift modes and seeding for the clustering family (kmeans.h). */
#include "boundopt/kmeans.h"
#include "boundopt/error.h"
#include "boundopt/reduce.h"
#include "boundopt/rng.h"
#include "boundopt/stats.h"
#include <cblas.h>
#include <math.h>
#include <string.h>

enum { RNG_PURPOSE_SEEDING = 1 };

/* Sums of products in 8 independent lanes, combined in a fixed order: the compiler keeps them in
 * vector registers (no serial dependency chain) and the result is the same on every rank. */
static double row_sqnorm(const float *v, int64_t d)
{
  double  lane[8] = {0};
  int64_t j       = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; l++) lane[l] += (double)v[j + l] * v[j + l];
  for (; j < d; j++) lane[0] += (double)v[j] * v[j];
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

static inline __attribute__((always_inline)) float dot8(const float *u, const float *v, int64_t d)
{
  float   lane[8] = {0};
  int64_t j       = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; l++) lane[l] += u[j + l] * v[j + l];
  for (; j < d; j++) lane[0] += u[j] * v[j];
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

/* Cross products of a tile with the prototypes, g = x_t m^T (rows x k floats).  Few prototypes:
 * direct dot products, reading each row once while the prototypes stay in cache (an sgemm would
 * first pack the tile, a second pass over it).  Many: one sgemm on the tile. */
#define DIRECT_MAX_K 16
/* Built twice (AVX2 and baseline), chosen at load time; -std=c17 keeps floating-point contraction
 * off, so both give the same bits: only the vector width differs. */
__attribute__((target_clones("arch=x86-64-v3", "default")))
static void tile_cross(int64_t rows, int64_t d, const float *xt, int64_t k, const float *m, float *g)
{
  if (k <= DIRECT_MAX_K) {
    for (int64_t i = 0; i < rows; i++)
      for (int64_t c = 0; c < k; c++) g[i * k + c] = dot8(xt + i * d, m + c * d, d);
  } else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)k, (int)d, 1.0f, xt, (int)d, m, (int)d, 0.0f, g, (int)k);
}

PetscErrorCode bo_kmeans_sqdist(const bo_rows *rows, int64_t d, const float *x, int64_t k, const float *m, double *a)
{
  float  *g;
  double *mm;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc2(BO_TILE_ROWS * k, &g, k, &mm));
  for (int64_t c = 0; c < k; c++) mm[c] = row_sqnorm(m + c * d, d);
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    const float *xt = x + (lo - rows->lo) * d;
    /* One call per global tile: the same call, hence the same bits, at any number of ranks. */
    tile_cross(hi - lo, d, xt, k, m, g);
    for (int64_t i = 0; i < hi - lo; i++) {
      double  xx = row_sqnorm(xt + i * d, d);
      double *ai = a + (lo - rows->lo + i) * k;
      for (int64_t c = 0; c < k; c++) ai[c] = PetscMax(0.0, xx + mm[c] - 2.0 * (double)g[i * k + c]);
    }
  }
  PetscCall(PetscFree2(g, mm));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_kmeans_assign(const bo_rows *rows, int64_t d, const float *x, int64_t k, const float *m, int32_t *labels, double *mind)
{
  float  *g;
  double *mm;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc2(BO_TILE_ROWS * k, &g, k, &mm));
  for (int64_t c = 0; c < k; c++) mm[c] = row_sqnorm(m + c * d, d);
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    const float *xt = x + (lo - rows->lo) * d;
    tile_cross(hi - lo, d, xt, k, m, g);
    for (int64_t i = 0; i < hi - lo; i++) {
      const float *gi = g + i * k;
      int32_t      best = 0;
      double       bestv = mm[0] - 2.0 * (double)gi[0];
      for (int64_t c = 1; c < k; c++) {
        double v = mm[c] - 2.0 * (double)gi[c];
        if (v < bestv) { bestv = v; best = (int32_t)c; }
      }
      labels[lo - rows->lo + i] = best;
      mind[lo - rows->lo + i]   = PetscMax(0.0, row_sqnorm(xt + i * d, d) + bestv);
    }
  }
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

/* Hard means: per tile, the rows of each cluster summed in double in row order (deterministic:
 * the tile is the same rows at any rank count), then only the clusters the tile touched go into
 * the exact sum: at most min(k, tile rows) x d conversions per tile. */
static PetscErrorCode hard_sums(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int64_t k, const int32_t *labels, double *sums, double *weight)
{
  bo_exactsum s;
  int64_t    *count, *touched_list;
  double      xmax, *part;
  PetscBool  *touched;

  PetscFunctionBeginUser;
  PetscCall(max_abs(comm, bo_rows_local(rows) * d, x, &xmax));
  PetscCall(bo_exactsum_create(k * d, xmax * (double)rows->n, &s));
  PetscCall(PetscCalloc4(k, &count, k * d, &part, k, &touched, k, &touched_list));
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi, ntouched = 0;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    for (int64_t i = lo - rows->lo; i < hi - rows->lo; i++) {
      int32_t c = labels[i];
      double *pc = part + (int64_t)c * d;
      if (!touched[c]) {
        touched[c] = PETSC_TRUE;
        touched_list[ntouched++] = c;
        for (int64_t j = 0; j < d; j++) pc[j] = 0;
      }
      for (int64_t j = 0; j < d; j++) pc[j] += x[i * d + j];
      count[c]++;
    }
    for (int64_t q = 0; q < ntouched; q++) {
      int64_t c = touched_list[q];
      PetscCall(bo_exactsum_add_at(s, c * d, d, part + c * d));
      touched[c] = PETSC_FALSE;
    }
  }
  PetscCall(bo_exactsum_allreduce(comm, s, sums));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, count, (int)k, MPI_INT64_T, MPI_SUM, comm));
  for (int64_t c = 0; c < k; c++) weight[c] = (double)count[c];
  PetscCall(PetscFree4(count, part, touched, touched_list));
  PetscCall(bo_exactsum_destroy(&s));
  PetscFunctionReturn(0);
}

/* Soft means: per tile, Y_t^T X_t (k x d) by one dgemm, then exactly across tiles. */
static PetscErrorCode soft_sums(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int64_t k, const double *y, double *sums, double *weight)
{
  bo_exactsum s, w;
  double     *xt, *part, *wpart, xmax;

  PetscFunctionBeginUser;
  PetscCall(max_abs(comm, bo_rows_local(rows) * d, x, &xmax));
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

PetscErrorCode bo_kmeans_means(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int64_t k, const int32_t *labels, const double *y, float *m, double *weight)
{
  double *sums;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(k * d, &sums));
  if (y) PetscCall(soft_sums(comm, rows, d, x, k, y, sums, weight));
  else PetscCall(hard_sums(comm, rows, d, x, k, labels, sums, weight));
  for (int64_t c = 0; c < k; c++)
    if (weight[c] > 0)
      for (int64_t j = 0; j < d; j++) m[c * d + j] = (float)(sums[c * d + j] / weight[c]);
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
