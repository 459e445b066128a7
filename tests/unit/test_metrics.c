/* test_metrics.c - properties of the clustering metrics (metrics.h; spec §11): the Hungarian
 * solver against brute force over all one-to-one maps, ACC against brute force, NMI against hand
 * formulas and scikit-learn values, NMI invariances, and the distributed contingency table.
 *
 * Runs at any number of ranks (the contingency tests split a global labeling into blocks). */
#include <inttypes.h>
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

#include "boundopt/error.h"
#include "boundopt/metrics.h"
#include "unit_support.h"

/* ---------------------------------------------------------------- fixtures */

/* splitmix64: a small deterministic generator for the random instances */
static uint64_t rng_next(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z          = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z          = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static int64_t rng_int(uint64_t *s, int64_t lo, int64_t hi) { return lo + (int64_t)(rng_next(s) % (uint64_t)(hi - lo + 1)); }
static double  rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

static void random_permutation(uint64_t *s, int64_t n, int64_t *perm)
{
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = rng_int(s, 0, i), tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
}

/* Brute force: the best total over every one-to-one map of the smaller side into the larger
 * (for a square matrix: over all K! permutations).  r, c <= 8. */
static double brute_rec(int64_t r, int64_t c, const double *w, int transposed, int64_t i, unsigned used)
{
  const int64_t n = transposed ? c : r, m = transposed ? r : c;
  double        best = -INFINITY;
  if (i == n) return 0;
  for (int64_t j = 0; j < m; j++) {
    if (used >> j & 1u) continue;
    const double wij = transposed ? w[j * c + i] : w[i * c + j];
    const double v   = wij + brute_rec(r, c, w, transposed, i + 1, used | 1u << j);
    if (v > best) best = v;
  }
  return best;
}
static double brute_max(int64_t r, int64_t c, const double *w)
{
  if (r == 0 || c == 0) return 0;
  return brute_rec(r, c, w, r > c, 0, 0);
}

/* Checks that assign is one-to-one, in range, and matches exactly min(r, c) rows; returns its total. */
static double assignment_total(int64_t r, int64_t c, const double *w, const int64_t *assign)
{
  int    *taken = calloc((size_t)(c ? c : 1), sizeof *taken);
  int64_t matched = 0;
  double  total   = 0;
  for (int64_t i = 0; i < r; i++) {
    if (assign[i] == -1) continue;
    if (assign[i] < 0 || assign[i] >= c) fail_msg("row %" PRId64 " got column %" PRId64 " of %" PRId64, i, assign[i], c);
    if (taken[assign[i]]++) fail_msg("column %" PRId64 " given to two rows", assign[i]);
    matched++;
    total += w[i * c + assign[i]];
  }
  free(taken);
  if (matched != (r < c ? r : c)) fail_msg("%" PRId64 " rows matched in a %" PRId64 " x %" PRId64 " problem; expected min(r, c)", matched, r, c);
  return total;
}

static void check_against_brute_force(int64_t r, int64_t c, const double *w, const char *what, uint64_t seed)
{
  int64_t assign[8];
  OK(bo_hungarian_max(r, c, w, assign));
  const double got = assignment_total(r, c, w, assign), best = brute_max(r, c, w);
  if (got != best) fail_msg("%s %" PRId64 "x%" PRId64 " seed %" PRIu64 ": Hungarian total %.17g, brute force %.17g", what, r, c, seed, got, best);
}

/* Runs call with errors returned (not printed); msg gets the error text, "" when it passes. */
#define CAPTURE(ierr, msg, call) \
  do { \
    char *specific_ = NULL; \
    PetscPushErrorHandler(PetscReturnErrorHandler, NULL); \
    (ierr) = (call); \
    PetscPopErrorHandler(); \
    (msg)[0] = 0; \
    if (ierr) { \
      PetscErrorMessage((ierr), NULL, &specific_); \
      snprintf((msg), sizeof(msg), "%s", specific_ ? specific_ : ""); \
    } \
  } while (0)

static void assert_contains(const char *text, const char *part)
{
  if (!strstr(text, part)) fail_msg("message \"%s\" lacks \"%s\"", text, part);
}

/* One line "<what>: <problem>; expected <what>" */
static void assert_one_line_error(const char *msg)
{
  assert_contains(msg, ": ");
  assert_contains(msg, "; expected ");
  if (strchr(msg, '\n')) fail_msg("message \"%s\" spans lines", msg);
}

static void nmi_of(int64_t k, int64_t l, const int64_t *counts, double *a, double *g) { OK(bo_metrics_nmi(k, l, counts, a, g)); }

/* Serial table of two labelings (on PETSC_COMM_SELF through bo_contingency). */
static void table_of(int64_t n, const int32_t *clusters, const int32_t *truth, int64_t k, int64_t l, int64_t *counts)
{
  OK(bo_contingency(PETSC_COMM_SELF, n, clusters, truth, k, l, counts));
}

/* ---------------------------------------------------------------- Hungarian */

static void hungarian_equals_brute_force_over_all_permutations_for_random_integer_matrices_K1_to_6(void **state)
{
  (void)state;
  double w[36];
  for (int64_t K = 1; K <= 6; K++)
    for (uint64_t seed = 0; seed < 400; seed++) {
      uint64_t s = seed * 1000003u + (uint64_t)K;
      /* small range: many ties; wide range with negatives: a general assignment problem */
      const int64_t lo = seed % 2 ? -1000 : 0, hi = seed % 2 ? 1000 : 9;
      for (int64_t k = 0; k < K * K; k++) w[k] = (double)rng_int(&s, lo, hi);
      check_against_brute_force(K, K, w, "square", seed);
    }
}

static void hungarian_on_rectangular_matrices_matches_min_r_c_rows_and_brute_force(void **state)
{
  (void)state;
  double  w[36];
  int64_t assign[8];
  for (int64_t r = 0; r <= 6; r++)
    for (int64_t c = 0; c <= 6; c++)
      for (uint64_t seed = 0; seed < 60; seed++) {
        uint64_t s = seed * 7919u + (uint64_t)(r * 10 + c);
        for (int64_t k = 0; k < r * c; k++) w[k] = (double)rng_int(&s, seed % 3 ? -50 : 0, seed % 3 ? 50 : 4);
        if (r == 0 || c == 0) {
          for (int64_t i = 0; i < r; i++) assign[i] = 42;
          OK(bo_hungarian_max(r, c, w, assign));
          for (int64_t i = 0; i < r; i++) assert_int_equal(assign[i], -1);
          continue;
        }
        check_against_brute_force(r, c, w, "rectangular", seed);
      }
}

static void hungarian_with_ties_returns_an_optimal_one_to_one_map(void **state)
{
  (void)state;
  double  w[64];
  int64_t assign[8];

  /* all equal: every permutation is optimal */
  for (int k = 0; k < 25; k++) w[k] = 3;
  OK(bo_hungarian_max(5, 5, w, assign));
  assert_true(assignment_total(5, 5, w, assign) == 15);
  /* all zero, rectangular both ways */
  for (int k = 0; k < 64; k++) w[k] = 0;
  OK(bo_hungarian_max(3, 7, w, assign));
  assert_true(assignment_total(3, 7, w, assign) == 0);
  OK(bo_hungarian_max(7, 3, w, assign));
  assert_true(assignment_total(7, 3, w, assign) == 0);
  /* identical rows: any columns, but distinct */
  {
    const double same[12] = {1, 5, 2, 7, 1, 5, 2, 7, 1, 5, 2, 7};
    OK(bo_hungarian_max(3, 4, same, assign));
    assert_true(assignment_total(3, 4, same, assign) == 14);
  }
  /* two optimal permutations (diagonal and anti-diagonal both total 4) */
  {
    const double two[4] = {2, 2, 2, 2};
    OK(bo_hungarian_max(2, 2, two, assign));
    assert_true(assign[0] != assign[1]);
  }
  /* greedy trap: the largest entry 3 is not in the optimum 2 + 2 */
  {
    const double trap[4] = {3, 2, 2, 0};
    OK(bo_hungarian_max(2, 2, trap, assign));
    assert_int_equal(assign[0], 1);
    assert_int_equal(assign[1], 0);
  }
  /* negative weights: the map is still complete (-5 + -5 beats -1 + -100) */
  {
    const double neg[4] = {-1, -5, -5, -100};
    OK(bo_hungarian_max(2, 2, neg, assign));
    assert_int_equal(assign[0], 1);
    assert_int_equal(assign[1], 0);
  }
}

static void hungarian_equals_brute_force_for_real_weights(void **state)
{
  (void)state;
  double  w[49];
  int64_t assign[8];
  for (uint64_t seed = 0; seed < 300; seed++) {
    uint64_t      s = seed + 17;
    const int64_t r = rng_int(&s, 1, 7), c = rng_int(&s, 1, 7);
    for (int64_t k = 0; k < r * c; k++) w[k] = 100 * rng_unit(&s) - 30;
    OK(bo_hungarian_max(r, c, w, assign));
    assert_close(assignment_total(r, c, w, assign), brute_max(r, c, w), 1e-9, "real-weight total");
  }
}

static void a_1000x1000_hungarian_finishes_and_finds_a_planted_optimum(void **state)
{
  (void)state;
  const int64_t K = 1000;
  uint64_t      s = 2024;
  double       *w = malloc(sizeof *w * (size_t)(K * K));
  int64_t      *assign = malloc(sizeof *assign * (size_t)K), *perm = malloc(sizeof *perm * (size_t)K);
  double        t0, t1, total;

  /* planted: w[i][perm[i]] = 2e6, everything else < 1e6, so perm is the unique optimum */
  random_permutation(&s, K, perm);
  for (int64_t k = 0; k < K * K; k++) w[k] = (double)rng_int(&s, 0, 999999);
  for (int64_t i = 0; i < K; i++) w[i * K + perm[i]] = 2e6;
  t0 = MPI_Wtime();
  OK(bo_hungarian_max(K, K, w, assign));
  t1 = MPI_Wtime();
  for (int64_t i = 0; i < K; i++) assert_int_equal(assign[i], perm[i]);
  print_message("K = 1000 planted permutation: %.3f s\n", t1 - t0);

  /* uniform random integers: no pair exchange improves the result (a necessary condition) */
  for (int64_t k = 0; k < K * K; k++) w[k] = (double)rng_int(&s, 0, 999999);
  t0 = MPI_Wtime();
  OK(bo_hungarian_max(K, K, w, assign));
  t1 = MPI_Wtime();
  total = assignment_total(K, K, w, assign);
  for (int64_t i = 0; i < K; i++)
    for (int64_t j = i + 1; j < K; j++) {
      const double now = w[i * K + assign[i]] + w[j * K + assign[j]], swapped = w[i * K + assign[j]] + w[j * K + assign[i]];
      if (swapped > now) fail_msg("swapping rows %" PRId64 " and %" PRId64 " gains %g", i, j, swapped - now);
    }
  print_message("K = 1000 uniform random: %.3f s, total %.0f (mean %.1f per row)\n", t1 - t0, total, total / (double)K);
  free(w);
  free(assign);
  free(perm);
}

static void hungarian_rejects_non_finite_weights_and_negative_sizes(void **state)
{
  (void)state;
  double         w[4] = {1, 2, NAN, 4};
  int64_t        assign[2];
  char           msg[512];
  PetscErrorCode ierr;

  CAPTURE(ierr, msg, bo_hungarian_max(2, 2, w, assign));
  assert_int_equal(ierr, PETSC_ERR_ARG_OUTOFRANGE);
  assert_one_line_error(msg);
  assert_contains(msg, "weight[1][0]");
  w[2] = INFINITY;
  CAPTURE(ierr, msg, bo_hungarian_max(2, 2, w, assign));
  assert_int_equal(ierr, PETSC_ERR_ARG_OUTOFRANGE);
  CAPTURE(ierr, msg, bo_hungarian_max(-1, 2, w, assign));
  assert_int_equal(ierr, PETSC_ERR_ARG_OUTOFRANGE);
  assert_one_line_error(msg);
}

/* ---------------------------------------------------------------- ACC */

static void acc_equals_brute_force_over_all_maps_for_random_tables(void **state)
{
  (void)state;
  int64_t counts[36];
  double  w[36];
  for (uint64_t seed = 0; seed < 2000; seed++) {
    uint64_t      s = seed * 31 + 5;
    const int64_t k = rng_int(&s, 1, 6), l = rng_int(&s, 1, 6);
    int64_t       n = 0;
    double        acc;
    for (int64_t i = 0; i < k * l; i++) {
      counts[i] = seed % 4 == 0 && rng_int(&s, 0, 2) == 0 ? 0 : rng_int(&s, 0, 30); /* some sparse tables */
      n += counts[i];
      w[i] = (double)counts[i];
    }
    if (!n) continue;
    OK(bo_metrics_acc(k, l, counts, &acc));
    const double want = brute_max(k, l, w) / (double)n;
    if (acc != want) fail_msg("seed %" PRIu64 " (%" PRId64 "x%" PRId64 "): ACC %.17g, brute force %.17g", seed, k, l, acc, want);
  }
}

static void acc_of_small_tables_equals_hand_counts(void **state)
{
  (void)state;
  double acc;
  /* clusters x labels; the best map is written next to each table */
  const int64_t sq[4] = {5, 1, 2, 7};                 /* 0->0, 1->1: (5 + 7) / 15 */
  const int64_t swapped[4] = {1, 5, 7, 2};            /* 0->1, 1->0: (5 + 7) / 15 */
  const int64_t tall[6] = {5, 0, 0, 5, 3, 2};         /* 3 clusters, 2 labels: 5 + 5, cluster 2 unmatched */
  const int64_t wide[6] = {4, 4, 0, 0, 1, 6};         /* 2 clusters, 3 labels: 4 + 6 of 15 */
  const int64_t trap[4] = {30, 20, 20, 0};            /* greedy would take 30 + 0; best 20 + 20 */
  OK(bo_metrics_acc(2, 2, sq, &acc));
  assert_true(acc == 12.0 / 15.0);
  OK(bo_metrics_acc(2, 2, swapped, &acc));
  assert_true(acc == 12.0 / 15.0);
  OK(bo_metrics_acc(3, 2, tall, &acc));
  assert_true(acc == 10.0 / 15.0);
  OK(bo_metrics_acc(2, 3, wide, &acc));
  assert_true(acc == 10.0 / 15.0);
  OK(bo_metrics_acc(2, 2, trap, &acc));
  assert_true(acc == 40.0 / 70.0);
}

static void acc_of_a_relabelled_perfect_clustering_is_1(void **state)
{
  (void)state;
  enum { N = 500, K = 9 };
  int32_t  truth[N], clusters[N];
  int64_t  perm[K], counts[K * K];
  uint64_t s = 99;
  double   acc, a, g;
  random_permutation(&s, K, perm);
  for (int i = 0; i < N; i++) {
    truth[i]    = (int32_t)rng_int(&s, 0, K - 1);
    clusters[i] = (int32_t)perm[truth[i]];
  }
  table_of(N, clusters, truth, K, K, counts);
  OK(bo_metrics_acc(K, K, counts, &acc));
  assert_true(acc == 1.0);
  nmi_of(K, K, counts, &a, &g);
  assert_true(a == 1.0 && g == 1.0);
}

/* ---------------------------------------------------------------- NMI */

static void nmi_of_2x2_tables_equals_hand_computed_entropies(void **state)
{
  (void)state;
  double a, g;

  /* [[2,1],[1,2]], N = 6: H(C) = H(T) = ln 2;
   * I = 2 (2/6) ln((2/6)/(1/2 * 1/2)) + 2 (1/6) ln((1/6)/(1/4)) = (2/3) ln(4/3) + (1/3) ln(2/3) */
  const int64_t sym[4] = {2, 1, 1, 2};
  const double  i_sym  = (2.0 / 3) * log(4.0 / 3) + (1.0 / 3) * log(2.0 / 3);
  nmi_of(2, 2, sym, &a, &g);
  assert_close(a, i_sym / log(2.0), 1e-15, "NMI_arith [[2,1],[1,2]]");
  assert_close(g, i_sym / log(2.0), 1e-15, "NMI_geom [[2,1],[1,2]]");
  assert_close(a, 0.081704165945510485, 1e-15, "NMI [[2,1],[1,2]] (50-digit value)");

  /* [[3,1],[0,4]], N = 8: clusters (4,4): H(C) = ln 2; labels (3,5): H(T) = (3/8) ln(8/3) + (5/8) ln(8/5);
   * I = (3/8) ln((3/8)/(1/2 * 3/8)) + (1/8) ln((1/8)/(1/2 * 5/8)) + (4/8) ln((4/8)/(1/2 * 5/8))
   *   = (3/8) ln 2 + (1/8) ln(2/5) + (1/2) ln(8/5) */
  const int64_t tri[4] = {3, 1, 0, 4};
  const double  hc = log(2.0), ht = (3.0 / 8) * log(8.0 / 3) + (5.0 / 8) * log(8.0 / 5);
  const double  i_tri = (3.0 / 8) * log(2.0) + (1.0 / 8) * log(2.0 / 5) + 0.5 * log(8.0 / 5);
  nmi_of(2, 2, tri, &a, &g);
  assert_close(a, i_tri / ((hc + ht) / 2), 1e-15, "NMI_arith [[3,1],[0,4]]");
  assert_close(g, i_tri / sqrt(hc * ht), 1e-15, "NMI_geom [[3,1],[0,4]]");
  assert_close(a, 0.56158963656391930, 1e-15, "NMI_arith [[3,1],[0,4]] (50-digit value)");
  assert_close(g, 0.56174232491856798, 1e-15, "NMI_geom [[3,1],[0,4]] (50-digit value)");
}

/* Reference values: scikit-learn 1.x normalized_mutual_info_score(labels_true, labels_pred,
 * average_method=...) re-implemented line for line in numpy (sklearn is not installed here) and
 * checked against the formula in 30-digit arithmetic (mpmath); the two agree to < 2e-16. */
static void nmi_matches_scikit_learn_on_small_labelings(void **state)
{
  (void)state;
  struct {
    int         n;
    int32_t     truth[16], pred[16];
    double      arith, geom;
    const char *why;
  } cases[] = {
    /* table [[2,0],[1,1],[0,2]]: I = (2/3) ln 2, H(T) = ln 2, H(C) = ln 3;
     * arithmetic (2/3) ln 2 / ((ln 2 + ln 3)/2), geometric (2/3) ln 2 / sqrt(ln 2 ln 3) */
    {6, {0, 0, 0, 1, 1, 1}, {0, 0, 1, 1, 2, 2}, 0.5158037429793889, 0.5295405780575618, "sklearn user-guide labeling"},
    {4, {0, 0, 1, 1}, {1, 1, 0, 0}, 1.0, 1.0, "sklearn docstring: swapped labels"},
    {4, {0, 0, 0, 0}, {0, 1, 2, 3}, 0.0, 0.0, "sklearn docstring: one class split into singletons"},
    {10, {0, 1, 2, 0, 1, 2, 0, 1, 2, 2}, {1, 1, 0, 0, 2, 2, 3, 3, 3, 0}, 0.23714557330793182, 0.2386724742405054, "3 classes x 4 clusters"},
    {16, {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2}, {0, 0, 0, 1, 1, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3}, 0.4901410688758637, 0.49123363514094864,
     "3 classes x 4 clusters, a singleton cluster"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int64_t counts[4 * 3];
    double  a, g;
    table_of(cases[k].n, cases[k].pred, cases[k].truth, 4, 3, counts); /* up to 4 clusters, 3 classes; unused ones are empty */
    nmi_of(4, 3, counts, &a, &g);
    if (fabs(a - cases[k].arith) > 1e-15 || fabs(g - cases[k].geom) > 1e-15)
      fail_msg("%s: NMI %.17g / %.17g, scikit-learn %.17g / %.17g", cases[k].why, a, g, cases[k].arith, cases[k].geom);
  }
}

static void nmi_degenerate_cases_follow_scikit_learn(void **state)
{
  (void)state;
  double a, g;
  /* both a single class (empty rows/columns do not count as classes) -> 1 */
  const int64_t one[1] = {7}, one_padded[6] = {0, 0, 0, 7, 0, 0};
  nmi_of(1, 1, one, &a, &g);
  assert_true(a == 1.0 && g == 1.0);
  nmi_of(3, 2, one_padded, &a, &g);
  assert_true(a == 1.0 && g == 1.0);
  /* one side a single class, the other not -> 0 (either side) */
  const int64_t one_cluster[3] = {2, 5, 1}, one_label[3] = {2, 5, 1}, padded[6] = {0, 0, 4, 6, 0, 0};
  nmi_of(1, 3, one_cluster, &a, &g);
  assert_true(a == 0.0 && g == 0.0);
  nmi_of(3, 1, one_label, &a, &g);
  assert_true(a == 0.0 && g == 0.0);
  nmi_of(3, 2, padded, &a, &g);
  assert_true(a == 0.0 && g == 0.0);
  /* either result pointer may be NULL */
  OK(bo_metrics_nmi(3, 2, padded, NULL, &g));
  OK(bo_metrics_nmi(3, 2, padded, &a, NULL));
}

static void nmi_of_a_permutation_of_the_labels_is_1(void **state)
{
  (void)state;
  int32_t truth[400], clusters[400];
  int64_t perm[12], counts[12 * 12];
  for (uint64_t seed = 0; seed < 50; seed++) {
    uint64_t      s = seed + 1;
    const int64_t K = rng_int(&s, 2, 12), n = rng_int(&s, 20, 400);
    double        a, g;
    random_permutation(&s, K, perm);
    for (int64_t i = 0; i < n; i++) {
      truth[i]    = (int32_t)(i < K ? i : rng_int(&s, 0, K - 1)); /* every class occurs */
      clusters[i] = (int32_t)perm[truth[i]];
    }
    table_of(n, clusters, truth, K, K, counts);
    nmi_of(K, K, counts, &a, &g);
    if (a != 1.0 || g != 1.0) fail_msg("seed %" PRIu64 ": NMI of a relabelling %.17g / %.17g", seed, a, g);
  }
}

static void random_table(uint64_t *s, int64_t k, int64_t l, int64_t *counts)
{
  int64_t n = 0;
  for (int64_t i = 0; i < k * l; i++) n += counts[i] = rng_int(s, 0, 3) == 0 ? 0 : rng_int(s, 0, 40);
  if (!n) counts[0] = 1;
}

static void nmi_is_symmetric_in_its_arguments_and_invariant_to_renaming(void **state)
{
  (void)state;
  int64_t counts[64], transposed[64], renamed[64], pr[8], pc[8];
  for (uint64_t seed = 0; seed < 500; seed++) {
    uint64_t      s = seed * 13 + 3;
    const int64_t k = rng_int(&s, 1, 8), l = rng_int(&s, 1, 8);
    double        a, g, at, gt, ar, gr;
    random_table(&s, k, l, counts);
    random_permutation(&s, k, pr);
    random_permutation(&s, l, pc);
    for (int64_t i = 0; i < k; i++)
      for (int64_t j = 0; j < l; j++) {
        transposed[j * k + i]       = counts[i * l + j];
        renamed[pr[i] * l + pc[j]] = counts[i * l + j];
      }
    nmi_of(k, l, counts, &a, &g);
    nmi_of(l, k, transposed, &at, &gt);
    nmi_of(k, l, renamed, &ar, &gr);
    assert_close(at, a, 1e-14, "NMI_arith(T, C) vs NMI_arith(C, T)");
    assert_close(gt, g, 1e-14, "NMI_geom(T, C) vs NMI_geom(C, T)");
    assert_close(ar, a, 1e-14, "NMI_arith with renamed labels");
    assert_close(gr, g, 1e-14, "NMI_geom with renamed labels");
  }
}

static void nmi_lies_in_0_1_and_arithmetic_never_exceeds_geometric(void **state)
{
  (void)state;
  int64_t counts[100];
  for (uint64_t seed = 0; seed < 1000; seed++) {
    uint64_t      s = seed * 101 + 7;
    const int64_t k = rng_int(&s, 1, 10), l = rng_int(&s, 1, 10);
    double        a, g;
    random_table(&s, k, l, counts);
    nmi_of(k, l, counts, &a, &g);
    if (!(a >= 0 && a <= 1 && g >= 0 && g <= 1)) fail_msg("seed %" PRIu64 ": NMI %.17g / %.17g outside [0, 1]", seed, a, g);
    /* AM >= GM of the entropies, so I/AM <= I/GM */
    if (a > g * (1 + 1e-15)) fail_msg("seed %" PRIu64 ": arithmetic %.17g > geometric %.17g", seed, a, g);
  }
}

static void nmi_of_independent_labelings_is_about_0(void **state)
{
  (void)state;
  double a, g;
  /* exactly independent table: counts = outer(a, b) -> I = 0 up to round-off */
  const int64_t ra[4] = {1, 2, 3, 7}, cb[3] = {2, 5, 1};
  int64_t       outer[12];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++) outer[i * 3 + j] = 1000 * ra[i] * cb[j];
  nmi_of(4, 3, outer, &a, &g);
  assert_true(a >= 0 && a < 1e-12 && g >= 0 && g < 1e-12);

  /* independent random labelings, N = 10^6, 5 x 5: E[I] ~ (5-1)(5-1)/(2N) = 8e-6 nats, NMI ~ 5e-6 */
  enum { N = 1000000 };
  int32_t *t = malloc(sizeof *t * N), *c = malloc(sizeof *c * N);
  int64_t  counts[25];
  uint64_t s = 5;
  for (int i = 0; i < N; i++) {
    t[i] = (int32_t)rng_int(&s, 0, 4);
    c[i] = (int32_t)rng_int(&s, 0, 4);
  }
  table_of(N, c, t, 5, 5, counts);
  nmi_of(5, 5, counts, &a, &g);
  if (!(a < 1e-4 && g < 1e-4)) fail_msg("independent labelings: NMI %.3g / %.3g", a, g);
  free(t);
  free(c);
}

static void nmi_and_acc_reject_negative_counts_and_empty_tables(void **state)
{
  (void)state;
  const int64_t  negative[4] = {3, -1, 0, 2}, empty[4] = {0, 0, 0, 0};
  double         a, g, acc;
  char           msg[512];
  PetscErrorCode ierr;
  CAPTURE(ierr, msg, bo_metrics_nmi(2, 2, negative, &a, &g));
  assert_int_equal(ierr, PETSC_ERR_ARG_OUTOFRANGE);
  assert_one_line_error(msg);
  assert_contains(msg, "count[0][1] = -1");
  CAPTURE(ierr, msg, bo_metrics_acc(2, 2, negative, &acc));
  assert_int_equal(ierr, PETSC_ERR_ARG_OUTOFRANGE);
  CAPTURE(ierr, msg, bo_metrics_nmi(2, 2, empty, &a, &g));
  assert_int_equal(ierr, BO_ERR_INPUT);
  assert_one_line_error(msg);
  assert_contains(msg, "empty");
  CAPTURE(ierr, msg, bo_metrics_acc(2, 2, empty, &acc));
  assert_int_equal(ierr, BO_ERR_INPUT);
  CAPTURE(ierr, msg, bo_metrics_acc(0, 2, empty, &acc));
  assert_int_equal(ierr, PETSC_ERR_ARG_OUTOFRANGE);
}

/* ---------------------------------------------------------------- contingency */

/* The global labeling of point g (deterministic, so every rank can build its block). */
static void global_labels(int64_t g, int64_t k, int64_t l, int32_t *c, int32_t *t)
{
  uint64_t s = (uint64_t)g * 2654435761u + 11;
  *t = (int32_t)rng_int(&s, 0, l - 1);
  *c = (int32_t)(rng_int(&s, 0, 3) ? *t % k : rng_int(&s, 0, k - 1));
}

static void my_block(int64_t n, int64_t *first, int64_t *count)
{
  PetscMPIInt rank, size;
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  MPI_Comm_size(PETSC_COMM_WORLD, &size);
  *first = n * rank / size;
  *count = n * (rank + 1) / size - *first;
}

static void contingency_over_ranks_equals_the_serial_count(void **state)
{
  (void)state;
  const int64_t n = 10007, k = 6, l = 4;
  int64_t       first, local, counts[24], want[24] = {0}, total = 0;
  int32_t      *c, *t;
  my_block(n, &first, &local);
  c = malloc(sizeof *c * (size_t)(local + 1));
  t = malloc(sizeof *t * (size_t)(local + 1));
  for (int64_t i = 0; i < local; i++) global_labels(first + i, k, l, &c[i], &t[i]);
  for (int64_t g = 0; g < n; g++) {
    int32_t cg, tg;
    global_labels(g, k, l, &cg, &tg);
    want[cg * l + tg]++;
  }
  OK(bo_contingency(PETSC_COMM_WORLD, local, c, t, k, l, counts));
  for (int i = 0; i < 24; i++) {
    assert_int_equal(counts[i], want[i]);
    total += counts[i];
  }
  assert_int_equal(total, n);
  /* a rank with no points takes part too */
  OK(bo_contingency(PETSC_COMM_WORLD, 0, NULL, NULL, k, l, counts));
  for (int i = 0; i < 24; i++) assert_int_equal(counts[i], 0);
  free(c);
  free(t);
}

static void contingency_rejects_out_of_range_labels_on_every_rank_with_one_message(void **state)
{
  (void)state;
  const int64_t  n = 1000, k = 3, l = 2;
  int64_t        first, local, counts[6];
  int32_t       *c, *t;
  char           msg[512], want[128];
  PetscErrorCode ierr;
  my_block(n, &first, &local);
  c = malloc(sizeof *c * (size_t)(local + 1));
  t = malloc(sizeof *t * (size_t)(local + 1));
  for (int64_t i = 0; i < local; i++) global_labels(first + i, k, l, &c[i], &t[i]);

  /* cluster label k at global point 997 (on the last rank) and 999: every rank names point 997 */
  for (int64_t i = 0; i < local; i++)
    if (first + i == 997 || first + i == 999) c[i] = (int32_t)k;
  CAPTURE(ierr, msg, bo_contingency(PETSC_COMM_WORLD, local, c, t, k, l, counts));
  assert_int_equal(ierr, BO_ERR_INPUT);
  assert_one_line_error(msg);
  assert_contains(msg, "contingency: point 997 has cluster label 3 (2 of the points are out of range)");
  assert_contains(msg, "expected a cluster label in 0..2");

  /* a negative true label at point 0 (on rank 0) comes first */
  for (int64_t i = 0; i < local; i++)
    if (first + i == 0) t[i] = -4;
  CAPTURE(ierr, msg, bo_contingency(PETSC_COMM_WORLD, local, c, t, k, l, counts));
  assert_int_equal(ierr, BO_ERR_INPUT);
  snprintf(want, sizeof want, "point 0 has true label -4 (3 of the points");
  assert_contains(msg, want);
  assert_contains(msg, "expected a true label in 0..1");
  free(c);
  free(t);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("Hungarian equals brute force over all K! permutations, random integer matrices, K = 1..6, 400 seeds each", hungarian_equals_brute_force_over_all_permutations_for_random_integer_matrices_K1_to_6),
    PROPERTY("Hungarian on r x c (0..6 each) matches min(r,c) rows one-to-one and equals brute force", hungarian_on_rectangular_matrices_matches_min_r_c_rows_and_brute_force),
    PROPERTY("Hungarian with ties (equal, zero, repeated rows, two optima) gives an optimal one-to-one map; greedy traps and negative weights", hungarian_with_ties_returns_an_optimal_one_to_one_map),
    PROPERTY("Hungarian equals brute force for real (non-integer) weights", hungarian_equals_brute_force_for_real_weights),
    PROPERTY("a 1000 x 1000 Hungarian finishes, finds a planted optimum, and no pair exchange improves a random one", a_1000x1000_hungarian_finishes_and_finds_a_planted_optimum),
    PROPERTY("Hungarian refuses NaN/inf weights and negative sizes with one line", hungarian_rejects_non_finite_weights_and_negative_sizes),
    PROPERTY("ACC equals brute force over all maps for 2000 random tables up to 6 x 6", acc_equals_brute_force_over_all_maps_for_random_tables),
    PROPERTY("ACC of small square and rectangular tables equals the hand count", acc_of_small_tables_equals_hand_counts),
    PROPERTY("ACC and NMI of a relabelled perfect clustering are exactly 1", acc_of_a_relabelled_perfect_clustering_is_1),
    PROPERTY("NMI of 2x2 tables equals the hand-computed entropies (both normalisations)", nmi_of_2x2_tables_equals_hand_computed_entropies),
    PROPERTY("NMI equals scikit-learn's arithmetic and geometric values on small labelings", nmi_matches_scikit_learn_on_small_labelings),
    PROPERTY("NMI degenerate cases: both single-class -> 1, one side single-class -> 0", nmi_degenerate_cases_follow_scikit_learn),
    PROPERTY("NMI of a permutation of the labels is 1", nmi_of_a_permutation_of_the_labels_is_1),
    PROPERTY("NMI is symmetric in its arguments and invariant to renaming labels", nmi_is_symmetric_in_its_arguments_and_invariant_to_renaming),
    PROPERTY("NMI lies in [0, 1] and arithmetic <= geometric", nmi_lies_in_0_1_and_arithmetic_never_exceeds_geometric),
    PROPERTY("NMI of independent labelings is about 0", nmi_of_independent_labelings_is_about_0),
    PROPERTY("NMI and ACC refuse negative counts and empty tables with one line", nmi_and_acc_reject_negative_counts_and_empty_tables),
    PROPERTY("contingency over the ranks equals the serial count (exact int64 sums)", contingency_over_ranks_equals_the_serial_count),
    PROPERTY("contingency refuses an out-of-range label on every rank with the same one-line message", contingency_rejects_out_of_range_labels_on_every_rank_with_one_message),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
