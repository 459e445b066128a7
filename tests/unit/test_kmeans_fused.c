/* test_kmeans_fused.c - the small-K assignment kernel and the fused Lloyd pass (kmeans.h), on one
 * rank: the kernel's bits against the documented 8-lane definition (every block shape of the AVX2
 * kernel, d % 8 tails, short tiles, any tile partition), the x cache, and bo_kmeans_assign_sums
 * against bo_kmeans_assign + bo_kmeans_means, with and without bounds. */
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

#include "boundopt/kmeans.h"
#include "boundopt/rng.h"

#define PROPERTY(name, fn) {name, fn, NULL, NULL, NULL}

void openblas_set_num_threads(int); /* OpenBLAS's own API */

static bo_rows all_rows(int64_t n)
{
  bo_rows rows;
  bo_rows_partition(n, 0, 1, &rows);
  return rows;
}

static float *normal_matrix(int64_t n, int64_t d, uint64_t seed, double scale, double shift)
{
  float *x = malloc(sizeof *x * (size_t)(n * d > 0 ? n * d : 1));
  for (int64_t i = 0; i < n; i++) {
    bo_rng r;
    bo_rng_init(&r, seed, (uint64_t)i, 1);
    for (int64_t c = 0; c < d; c++) x[i * d + c] = (float)(shift + scale * bo_rng_normal(&r));
  }
  return x;
}

/* The documented arithmetic (kmeans.h), written out plainly. */
static float ref_dot(const float *u, const float *v, int64_t d)
{
  float   lane[8] = {0};
  int64_t j       = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; l++) {
      float p = u[j + l] * v[j + l];
      lane[l] = lane[l] + p;
    }
  for (; j < d; j++) {
    float p = u[j] * v[j];
    lane[0] = lane[0] + p;
  }
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

static double ref_sqnorm(const float *v, int64_t d)
{
  double  lane[8] = {0};
  int64_t j       = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; l++) lane[l] += (double)v[j + l] * v[j + l];
  for (; j < d; j++) lane[0] += (double)v[j] * v[j];
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

static void ref_assign(int64_t n, int64_t d, const float *x, int64_t k, const float *m, int32_t *labels, double *mind, double *a)
{
  for (int64_t i = 0; i < n; i++) {
    double  xx = ref_sqnorm(x + i * d, d), bestv = INFINITY;
    int32_t best = -1;
    for (int64_t c = 0; c < k; c++) {
      double g = ref_dot(x + i * d, m + c * d, d), v = ref_sqnorm(m + c * d, d) - 2.0 * g;
      a[i * k + c] = fmax(0.0, xx + ref_sqnorm(m + c * d, d) - 2.0 * g);
      if (best < 0 || v < bestv) { bestv = v; best = (int32_t)c; }
    }
    labels[i] = best;
    mind[i]   = fmax(0.0, xx + bestv);
  }
}

/* Every prototype count of the direct path (blocks of 5 and the remainders 1-4), rows odd and
 * even per tile, d with and without a d % 8 tail: the same bits as the definition, for
 * bo_kmeans_assign, bo_kmeans_assign_cached and bo_kmeans_sqdist, and for any tile partition. */
static void small_k_kernel_gives_the_bits_of_the_8_lane_definition(void **state)
{
  (void)state;
  const int64_t n = 301; /* a full tile and a short one of 45 rows (odd) */
  const int64_t ks[] = {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 14, 16}, ds[] = {1, 5, 8, 13, 24, 37};
  bo_rows       rows = all_rows(n);

  for (size_t a = 0; a < sizeof ks / sizeof ks[0]; a++)
    for (size_t b = 0; b < sizeof ds / sizeof ds[0]; b++) {
      int64_t  k = ks[a], d = ds[b];
      float   *x = normal_matrix(n, d, 100 + (uint64_t)d, 1.0, 0.2), *m = normal_matrix(k, d, 200 + (uint64_t)k, 0.8, 0.1);
      int32_t *lab = malloc(sizeof *lab * n), *want_lab = malloc(sizeof *lab * n);
      double  *mind = malloc(sizeof *mind * n), *want_mind = malloc(sizeof *mind * n), *want_a = malloc(sizeof *want_a * (size_t)(n * k)), *dist = malloc(sizeof *dist * (size_t)(n * k));
      bo_kmeans_xcache xc;

      for (int64_t j = 0; j < d; j++) x[3 * d + j] = j % 2 ? -0.0f : 0.0f; /* a zero row with -0 entries */
      ref_assign(n, d, x, k, m, want_lab, want_mind, want_a);
      assert_int_equal(bo_kmeans_assign(&rows, d, x, k, m, lab, mind), 0);
      if (memcmp(lab, want_lab, sizeof *lab * n) || memcmp(mind, want_mind, sizeof *mind * n)) fail_msg("k = %lld, d = %lld: assign differs from the definition", (long long)k, (long long)d);
      assert_int_equal(bo_kmeans_sqdist(&rows, d, x, k, m, dist), 0);
      if (memcmp(dist, want_a, sizeof *dist * (size_t)(n * k))) fail_msg("k = %lld, d = %lld: sqdist differs from the definition", (long long)k, (long long)d);
      assert_int_equal(bo_kmeans_xcache_create(PETSC_COMM_SELF, &rows, d, x, &xc), 0);
      memset(lab, 0xff, sizeof *lab * n);
      assert_int_equal(bo_kmeans_assign_cached(&rows, d, x, &xc, k, m, lab, mind), 0);
      assert_memory_equal(lab, want_lab, sizeof *lab * n);
      assert_memory_equal(mind, want_mind, sizeof *mind * n);
      for (int nr = 2; nr <= 3; nr++) /* per-row work: any partition of the tiles gives the same bits */
        for (int r = 0; r < nr; r++) {
          bo_rows sub;
          bo_rows_partition(n, r, nr, &sub);
          assert_int_equal(bo_kmeans_assign(&sub, d, x + sub.lo * d, k, m, lab + sub.lo, mind + sub.lo), 0);
        }
      assert_memory_equal(lab, want_lab, sizeof *lab * n);
      assert_memory_equal(mind, want_mind, sizeof *mind * n);
      assert_int_equal(bo_kmeans_xcache_destroy(&xc), 0);
      free(x); free(m); free(lab); free(want_lab); free(mind); free(want_mind); free(want_a); free(dist);
    }
}

static void ties_go_to_the_lowest_prototype(void **state)
{
  (void)state;
  const int64_t n = 20, d = 9, k = 7;
  float        *x = normal_matrix(n, d, 5, 1.0, 0.0), *m = normal_matrix(k, d, 6, 1.0, 0.0);
  int32_t       lab[20];
  double        mind[20];
  bo_rows       rows = all_rows(n);

  for (int64_t c = 1; c < k; c++) memcpy(m + c * d, m, sizeof *m * (size_t)d); /* all prototypes equal */
  memcpy(m + 6 * d, x + 4 * d, sizeof *m * (size_t)d);                        /* except the last: row 4 */
  memcpy(m + 5 * d, x + 4 * d, sizeof *m * (size_t)d);                        /* and its copy before it */
  assert_int_equal(bo_kmeans_assign(&rows, d, x, k, m, lab, mind), 0);
  for (int64_t i = 0; i < n; i++) assert_true(lab[i] == 0 || lab[i] == 5);
  assert_int_equal(lab[4], 5);
  assert_true(mind[4] <= 1e-5);
  free(x); free(m);
}

/* Many prototypes (sgemm, vectorised argmin): small integers make every product and sum exact in
 * any order, so exact ties exist; the label must be the first minimum of |m|^2 - 2 x.m, NaN
 * costs never win, and a NaN at prototype 0 keeps label 0 (the plain scan's rule). */
static void many_prototypes_argmin_is_the_first_minimum_and_skips_nan(void **state)
{
  (void)state;
  const int64_t n = 300, d = 6, k = 37; /* 9 vectors of 4 and a tail of 1 */
  float        *x = malloc(sizeof *x * (size_t)(n * d)), *m = malloc(sizeof *m * (size_t)(k * d));
  int32_t      *lab = malloc(sizeof *lab * n);
  double       *mind = malloc(sizeof *mind * n);
  bo_rows       rows = all_rows(n);

  for (int64_t i = 0; i < n * d; i++) x[i] = (float)((i * 7 + i / 5) % 7 - 3);
  for (int64_t i = 0; i < k * d; i++) m[i] = (float)((i * 5 + i / 3) % 7 - 3);
  memcpy(m + 20 * d, m + 7 * d, sizeof *m * (size_t)d); /* ties across lanes */
  memcpy(m + 36 * d, m + 3 * d, sizeof *m * (size_t)d); /* ... and in the tail */
  memcpy(m + 9 * d, m + 5 * d, sizeof *m * (size_t)d);  /* ... and within lane 1 */
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) m[2 * d + 1] = NAN; /* lane 2 starts on a NaN cost */
    assert_int_equal(bo_kmeans_assign(&rows, d, x, k, m, lab, mind), 0);
    int64_t tied = 0;
    for (int64_t i = 0; i < n; i++) {
      int64_t best = -1;
      double  bv = 0;
      for (int64_t c = 0; c < k; c++) {
        double mm = 0, g = 0;
        for (int64_t j = 0; j < d; j++) { mm += (double)m[c * d + j] * m[c * d + j]; g += (double)x[i * d + j] * m[c * d + j]; }
        double v = mm - 2 * g;
        if (isnan(v)) continue;
        if (best < 0 || v < bv) { bv = v; best = c; }
        else if (v == bv) tied++;
      }
      if (lab[i] != best) fail_msg("pass %d, row %lld: label %d, expected %lld", pass, (long long)i, lab[i], (long long)best);
    }
    assert_true(tied > 0);
  }
  m[1] = NAN; /* prototype 0's cost is NaN: the scan keeps 0 */
  assert_int_equal(bo_kmeans_assign(&rows, d, x, k, m, lab, mind), 0);
  for (int64_t i = 0; i < n; i++) assert_int_equal(lab[i], 0);
  free(x); free(m); free(lab); free(mind);
}

static void xcache_holds_the_row_norms_and_max_abs(void **state)
{
  (void)state;
  const int64_t    n = 270, d = 11;
  float           *x = normal_matrix(n, d, 7, 2.0, -0.5);
  bo_rows          rows = all_rows(n);
  bo_kmeans_xcache xc;
  double           top = 0;

  x[100 * d + 3] = -9.75f;
  for (int64_t i = 0; i < n * d; i++) top = fmax(top, fabs((double)x[i]));
  assert_int_equal(bo_kmeans_xcache_create(PETSC_COMM_SELF, &rows, d, x, &xc), 0);
  assert_int_equal(xc.local, n);
  assert_true(xc.xmax == 9.75 && top == 9.75);
  for (int64_t i = 0; i < n; i++) assert_true(xc.sqnorm[i] == ref_sqnorm(x + i * d, d));
  assert_int_equal(bo_kmeans_xcache_destroy(&xc), 0);
  assert_null(xc.sqnorm);
  free(x);
}

/* The fused pass = assign, then hard means of its labels: same labels and mind, and sums whose
 * means are bo_kmeans_means's bits; with and without the cache; direct kernel and sgemm. */
static void check_fused(int64_t k, PetscBool cached)
{
  const int64_t    n = 700, d = 13;
  float           *x = normal_matrix(n, d, 8, 1.0, 0.5), *m = normal_matrix(k, d, 9, 1.0, 0.5);
  float           *m_sep = malloc(sizeof *m * (size_t)(k * d)), *m_fused = malloc(sizeof *m * (size_t)(k * d));
  int32_t         *lab = malloc(sizeof *lab * n), *lab2 = malloc(sizeof *lab * n);
  double          *mind = malloc(sizeof *mind * n), *mind2 = malloc(sizeof *mind * n), *sums = malloc(sizeof *sums * (size_t)(k * d));
  double          *w = malloc(sizeof *w * (size_t)k), *w2 = malloc(sizeof *w * (size_t)k), *naive = calloc((size_t)(k * d), sizeof *naive), *cnt = calloc((size_t)k, sizeof *cnt);
  bo_rows          rows = all_rows(n);
  bo_kmeans_xcache xc;

  for (int64_t j = 0; j < d; j++) m[(k - 1) * d + j] = 1000.0f; /* far from every row: an empty cluster */
  assert_int_equal(bo_kmeans_xcache_create(PETSC_COMM_SELF, &rows, d, x, &xc), 0);
  assert_int_equal(bo_kmeans_assign(&rows, d, x, k, m, lab, mind), 0);
  memcpy(m_sep, m, sizeof *m * (size_t)(k * d));
  assert_int_equal(bo_kmeans_means(PETSC_COMM_SELF, &rows, d, x, k, lab, NULL, m_sep, w), 0);
  assert_int_equal(bo_kmeans_assign_sums(PETSC_COMM_SELF, &rows, d, x, cached ? &xc : NULL, k, m, lab2, mind2, sums, w2, NULL), 0);
  assert_memory_equal(lab2, lab, sizeof *lab * n);
  assert_memory_equal(mind2, mind, sizeof *mind * n);
  assert_memory_equal(w2, w, sizeof *w * (size_t)k);
  if (w[k - 1] != 0) fail_msg("k = %lld: the far prototype got %g rows", (long long)k, w[k - 1]);
  memcpy(m_fused, m, sizeof *m * (size_t)(k * d));
  bo_kmeans_means_from_sums(k, d, sums, w2, m_fused);
  assert_memory_equal(m_fused, m_sep, sizeof *m * (size_t)(k * d));
  { /* the cached means: the same bits, hard and soft */
    float  *m_c = malloc(sizeof *m * (size_t)(k * d)), *m_s = malloc(sizeof *m * (size_t)(k * d)), *m_sc = malloc(sizeof *m * (size_t)(k * d));
    double *y = malloc(sizeof *y * (size_t)(n * k)), *wc = malloc(sizeof *wc * (size_t)k), *ws = malloc(sizeof *ws * (size_t)k);
    for (int64_t i = 0; i < n * k; i++) y[i] = (double)((i * 7919) % 101) / 101.0;
    memcpy(m_c, m, sizeof *m * (size_t)(k * d)); memcpy(m_s, m, sizeof *m * (size_t)(k * d)); memcpy(m_sc, m, sizeof *m * (size_t)(k * d));
    assert_int_equal(bo_kmeans_means_cached(PETSC_COMM_SELF, &rows, d, x, &xc, k, lab, NULL, m_c, wc), 0);
    assert_memory_equal(m_c, m_sep, sizeof *m * (size_t)(k * d));
    assert_int_equal(bo_kmeans_means(PETSC_COMM_SELF, &rows, d, x, k, lab, y, m_s, ws), 0);
    assert_int_equal(bo_kmeans_means_cached(PETSC_COMM_SELF, &rows, d, x, &xc, k, lab, y, m_sc, wc), 0);
    assert_memory_equal(m_sc, m_s, sizeof *m * (size_t)(k * d));
    assert_memory_equal(wc, ws, sizeof *wc * (size_t)k);
    free(m_c); free(m_s); free(m_sc); free(y); free(wc); free(ws);
  }
  assert_memory_equal(m_fused + (k - 1) * d, m + (k - 1) * d, sizeof *m * (size_t)d); /* empty: kept */
  for (int64_t i = 0; i < n; i++) {
    cnt[lab[i]] += 1;
    for (int64_t j = 0; j < d; j++) naive[lab[i] * d + j] += x[i * d + j];
  }
  for (int64_t c = 0; c < k; c++) {
    assert_true(w2[c] == cnt[c]);
    for (int64_t j = 0; j < d; j++) assert_true(fabs(sums[c * d + j] - naive[c * d + j]) <= 1e-12 * (1 + fabs(naive[c * d + j])));
  }
  assert_int_equal(bo_kmeans_xcache_destroy(&xc), 0);
  free(x); free(m); free(m_sep); free(m_fused); free(lab); free(lab2); free(mind); free(mind2); free(sums); free(w); free(w2); free(naive); free(cnt);
}

static void fused_pass_equals_assign_then_hard_means(void **state)
{
  (void)state;
  check_fused(10, PETSC_TRUE);  /* direct kernel, cached norms and bound */
  check_fused(10, PETSC_FALSE); /* direct kernel, computed on the fly */
  check_fused(24, PETSC_TRUE);  /* sgemm */
}

/* Rows around kc centres (spread 3, noise 1), offset by shift in every coordinate. */
static float *clustered_matrix(int64_t n, int64_t d, int64_t kc, uint64_t seed, double shift)
{
  float *x = normal_matrix(n, d, seed, 1.0, shift), *ctr = normal_matrix(kc, d, seed + 1, 3.0, 0.0);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < d; j++) x[i * d + j] += ctr[(i % kc) * d + j];
  free(ctr);
  return x;
}

/* Two Lloyd chains from the same prototypes, one with bounds: the same labels, mind and sums,
 * bit for bit, at every pass; returns the rows the bounded chain skipped over all passes.  At
 * pass 8 prototype 0 jumps onto row 7 (as a re-seeded empty cluster does; nan_jump: with a NaN) in both chains; dup:
 * prototype 1 starts as a copy of prototype 0 (exact ties). */
static int64_t check_bounded_chain(int64_t n, int64_t d, int64_t k, double shift, PetscBool dup, PetscBool cached, PetscBool nan_jump)
{
  float           *x = clustered_matrix(n, d, 6, 21, shift), *m = malloc(sizeof *m * (size_t)(k * d)), *mb = malloc(sizeof *m * (size_t)(k * d));
  int32_t         *lab = malloc(sizeof *lab * n), *labb = malloc(sizeof *lab * n);
  double          *mind = malloc(sizeof *mind * n), *mindb = malloc(sizeof *mind * n);
  double          *sums = malloc(sizeof *sums * (size_t)(k * d)), *sumsb = malloc(sizeof *sums * (size_t)(k * d)), *w = malloc(sizeof *w * (size_t)k), *wb = malloc(sizeof *w * (size_t)k);
  bo_rows          rows = all_rows(n);
  bo_kmeans_xcache xc;
  bo_kmeans_bounds b, ba; /* the fused chain's; bo_kmeans_assign_bounded's on the plain chain's prototypes */
  int64_t          skipped = 0;
  int32_t         *laba = malloc(sizeof *lab * n);
  double          *minda = malloc(sizeof *mind * n);
  /* the fused chain without mind (as bo_cluster_run's K-means): rows proven by their bounds are not read */
  float           *mn = malloc(sizeof *m * (size_t)(k * d));
  int32_t         *labn = malloc(sizeof *lab * n);
  double          *sumsn = malloc(sizeof *sums * (size_t)(k * d)), *wn = malloc(sizeof *w * (size_t)k);
  bo_kmeans_bounds bn;
  int64_t          skipped_n = 0;

  for (int64_t c = 0; c < k; c++) memcpy(m + c * d, x + (c * 37 % n) * d, sizeof *m * (size_t)d); /* rows as seeds */
  if (dup && k > 1) memcpy(m + d, m, sizeof *m * (size_t)d);
  memcpy(mb, m, sizeof *m * (size_t)(k * d));
  memcpy(mn, m, sizeof *m * (size_t)(k * d));
  assert_int_equal(bo_kmeans_xcache_create(PETSC_COMM_SELF, &rows, d, x, &xc), 0);
  assert_int_equal(bo_kmeans_bounds_create(&rows, d, k, &b), 0);
  assert_int_equal(bo_kmeans_bounds_create(&rows, d, k, &bn), 0);
  assert_int_equal(bo_kmeans_bounds_create(&rows, d, k, &ba), 0);
  for (int pass = 0; pass < 20; pass++) {
    if (pass > 0) {
      bo_kmeans_means_from_sums(k, d, sums, w, m);
      bo_kmeans_means_from_sums(k, d, sumsb, wb, mb);
      bo_kmeans_means_from_sums(k, d, sumsn, wn, mn);
    }
    if (pass == 8) {
      memcpy(m, x + 7 * d, sizeof *m * (size_t)d);
      if (nan_jump) m[d / 2] = NAN; /* the scan keeps a NaN value at prototype 0 */
      memcpy(mb, m, sizeof *m * (size_t)d);
      memcpy(mn, m, sizeof *m * (size_t)d);
    }
    assert_int_equal(bo_kmeans_assign_sums(PETSC_COMM_SELF, &rows, d, x, cached ? &xc : NULL, k, m, lab, mind, sums, w, NULL), 0);
    assert_int_equal(bo_kmeans_assign_sums(PETSC_COMM_SELF, &rows, d, x, cached ? &xc : NULL, k, mb, labb, mindb, sumsb, wb, &b), 0);
    assert_memory_equal(labb, lab, sizeof *lab * n);
    assert_memory_equal(mindb, mind, sizeof *mind * n);
    assert_memory_equal(sumsb, sums, sizeof *sums * (size_t)(k * d));
    assert_memory_equal(wb, w, sizeof *w * (size_t)k);
    for (int64_t i = 0; k > 1 && i < n; i += 97) labn[i] = (int32_t)((labn[i] + 1) % k); /* the caller moved rows (re-seeding): the pass owes the argmin anyway */
    assert_int_equal(bo_kmeans_assign_sums(PETSC_COMM_SELF, &rows, d, x, cached ? &xc : NULL, k, mn, labn, NULL, sumsn, wn, &bn), 0);
    assert_memory_equal(labn, lab, sizeof *lab * n);
    assert_memory_equal(sumsn, sums, sizeof *sums * (size_t)(k * d));
    assert_memory_equal(wn, w, sizeof *w * (size_t)k);
    assert_true(bn.skipped >= 0 && bn.skipped <= n);
    skipped_n += bn.skipped;
    if (!nan_jump || pass < 8) { /* the energy from the sums: the sum of mind, up to rounding */
      double xx = 0, e = 0;
      for (int64_t i = 0; i < n; i++) { xx += xc.sqnorm[i]; e += mind[i]; }
      double es = bo_kmeans_energy_from_sums(k, d, m, sums, w, xx);
      if (!(fabs(es - e) <= 1e-5 * (xx + e) + 1e-9)) fail_msg("pass %d: energy from the sums %.17g, sum of mind %.17g", pass, es, e);
    }
    assert_int_equal(bo_kmeans_assign_bounded(&rows, d, x, cached ? &xc : NULL, k, m, laba, minda, &ba), 0);
    assert_memory_equal(laba, lab, sizeof *lab * n);
    assert_memory_equal(minda, mind, sizeof *mind * n);
    assert_true(ba.skipped == b.skipped); /* the same prototypes, the same bounds */
    assert_true(b.skipped >= 0 && b.skipped <= n);
    if (pass == 0) assert_int_equal(b.skipped, 0); /* no bounds before the first pass */
    skipped += b.skipped;
  }
  { /* one b serves one kind of pass */
    PetscErrorCode ierr[2];
    PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
    ierr[0] = bo_kmeans_assign_sums(PETSC_COMM_SELF, &rows, d, x, NULL, k, m, lab, mind, sums, w, &ba);
    ierr[1] = bo_kmeans_assign_bounded(&rows, d, x, NULL, k, m, lab, mind, &b);
    PetscPopErrorHandler();
    assert_true(ierr[0] != 0 && ierr[1] != 0);
  }
  assert_int_equal(bo_kmeans_bounds_destroy(&b), 0);
  assert_int_equal(bo_kmeans_bounds_destroy(&ba), 0);
  assert_int_equal(bo_kmeans_bounds_destroy(&bn), 0);
  assert_int_equal(bo_kmeans_xcache_destroy(&xc), 0);
  free(x); free(m); free(mb); free(lab); free(labb); free(mind); free(mindb); free(sums); free(sumsb); free(w); free(wb); free(laba); free(minda);
  free(mn); free(labn); free(sumsn); free(wn);
  if (k <= BO_KMEANS_BOUNDS_MAX_K && skipped > 0 && skipped_n < skipped) fail_msg("k = %lld: %lld rows skipped without reading, %lld with their own product; expected at least as many (no chunk rule)", (long long)k, (long long)skipped_n, (long long)skipped);
  return skipped;
}

/* Rows about equally far from two prototypes, far from the origin (so that rounding of the
 * computed values is larger than their differences), prototypes nudged between passes: a bound
 * test without its rounding slack keeps labels that the full argmin changes. */
static void bounded_passes_keep_the_bits_at_near_ties(void **state)
{
  const int64_t n = 4000, d = 37, k = 2, passes = 12;
  float        *x = normal_matrix(n, d, 31, 1e-3, 1000.0), *m = normal_matrix(k, d, 32, 1e-3, 1000.0), *mb = malloc(sizeof *m * (size_t)(k * d));
  int32_t      *lab = malloc(sizeof *lab * n), *labb = malloc(sizeof *lab * n), *labn = malloc(sizeof *lab * n);
  double       *mind = malloc(sizeof *mind * n), *mindb = malloc(sizeof *mind * n), sums[2 * 37], w[2];
  bo_rows       rows = all_rows(n);
  bo_kmeans_bounds b, bn;
  int64_t       skipped_n = 0;

  (void)state;
  assert_int_equal(bo_kmeans_bounds_create(&rows, d, k, &b), 0);
  assert_int_equal(bo_kmeans_bounds_create(&rows, d, k, &bn), 0);
  for (int64_t pass = 0; pass < passes; pass++) {
    for (int64_t q = 0; q < k * d; q++) { /* a nudge of one float step in a few coordinates */
      bo_rng r;
      bo_rng_init(&r, 33, (uint64_t)(pass * k * d + q), 1);
      if (pass > 0 && bo_rng_uniform(&r) < 0.2) m[q] = nextafterf(m[q], bo_rng_uniform(&r) < 0.5 ? 0.0f : 2000.0f);
    }
    memcpy(mb, m, sizeof *m * (size_t)(k * d));
    assert_int_equal(bo_kmeans_assign(&rows, d, x, k, m, lab, mind), 0);
    assert_int_equal(bo_kmeans_assign_sums(PETSC_COMM_SELF, &rows, d, x, NULL, k, mb, labb, mindb, sums, w, &b), 0);
    assert_memory_equal(labb, lab, sizeof *lab * n);
    assert_memory_equal(mindb, mind, sizeof *mind * n);
    memcpy(mb, m, sizeof *m * (size_t)(k * d));
    assert_int_equal(bo_kmeans_assign_sums(PETSC_COMM_SELF, &rows, d, x, NULL, k, mb, labn, NULL, sums, w, &bn), 0); /* no mind: bounds alone */
    assert_memory_equal(labn, lab, sizeof *lab * n);
    skipped_n += bn.skipped;
  }
  (void)skipped_n; /* (none here: these rows sit within the rounding slack; without it the labels differ) */
  assert_int_equal(bo_kmeans_bounds_destroy(&b), 0);
  assert_int_equal(bo_kmeans_bounds_destroy(&bn), 0);
  free(x); free(m); free(mb); free(lab); free(labb); free(labn); free(mind); free(mindb);
}

static void bounded_passes_give_the_same_bits_and_skip_rows(void **state)
{
  const int64_t n = 2000;
  (void)state;
  /* direct kernel, d % 8 tails, K from 1 to 16: the same bits, and rows skipped (measured: 0.6-19
   * passes' worth of the 19 after the first; a chunk skips only when 7 in 8 of its rows can) */
  struct { int64_t d, k; double shift; PetscBool dup, cached, nan_jump; } cs[] = {
    {37, 1, 0, PETSC_FALSE, PETSC_TRUE, PETSC_FALSE}, {37, 3, 0, PETSC_FALSE, PETSC_TRUE, PETSC_FALSE}, {64, 10, 0, PETSC_FALSE, PETSC_FALSE, PETSC_FALSE},
    {19, 16, 0, PETSC_FALSE, PETSC_TRUE, PETSC_FALSE}, {37, 10, 0, PETSC_TRUE, PETSC_TRUE, PETSC_FALSE},
    {37, 10, 300, PETSC_FALSE, PETSC_TRUE, PETSC_FALSE}, /* far from the origin: rounding of |x|^2 - 2 x.m is large against the gaps */
    {37, 10, 0, PETSC_FALSE, PETSC_TRUE, PETSC_TRUE},    /* a NaN prototype 0 at pass 8: every row goes to 0, bounded too */
  };
  for (size_t q = 0; q < sizeof cs / sizeof cs[0]; q++) {
    int64_t skipped = check_bounded_chain(n, cs[q].d, cs[q].k, cs[q].shift, cs[q].dup, cs[q].cached, cs[q].nan_jump);
    if (cs[q].shift == 0 && !cs[q].nan_jump && 2 * skipped < n) fail_msg("d = %lld, k = %lld: %lld rows skipped in 20 passes of %lld; expected at least half a pass's worth", (long long)cs[q].d, (long long)cs[q].k, (long long)skipped, (long long)n);
  }
  /* many prototypes: the sgemm path ignores the bounds (its bits depend on its rows) */
  assert_int_equal(check_bounded_chain(n, 13, 24, 0, PETSC_FALSE, PETSC_TRUE, PETSC_FALSE), 0);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("small-K assignment and sqdist give the bits of the 8-lane definition (K 1-16, d % 8 tails, -0 rows, any partition), with or without the x cache", small_k_kernel_gives_the_bits_of_the_8_lane_definition),
    PROPERTY("assignment ties go to the lowest prototype", ties_go_to_the_lowest_prototype),
    PROPERTY("many prototypes: the label is the first minimum (exact ties), NaN costs never win, NaN at 0 keeps 0", many_prototypes_argmin_is_the_first_minimum_and_skips_nan),
    PROPERTY("the x cache holds each row's |x|^2 (the assignment's bits) and max |x|", xcache_holds_the_row_norms_and_max_abs),
    PROPERTY("the fused pass gives assign's labels and distances, and sums whose means are bo_kmeans_means's bits", fused_pass_equals_assign_then_hard_means),
    PROPERTY("bounded passes keep the unbounded bits at near ties far from the origin", bounded_passes_keep_the_bits_at_near_ties),
    PROPERTY("bounded Lloyd passes give the unbounded chain's bits (K 1-16, tails, ties, a jumping prototype, far offsets) and skip rows", bounded_passes_give_the_same_bits_and_skip_rows),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  openblas_set_num_threads(1);
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
