/* test_graph.c - properties of the kNN graph (knn.h) and the CSR graph services (graph.h) on one
 * rank: exact search with index tie-breaking, symmetrisation, weights, W*Y, the ghost exchange and
 * the file round trip. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <petscsys.h>

#include "boundopt/error.h"
#include "boundopt/graph.h"
#include "boundopt/h5.h"
#include "boundopt/knn.h"
#include "boundopt/rng.h"

#define PROPERTY(name, fn) {name, fn, NULL, NULL, NULL}

void openblas_set_num_threads(int); /* OpenBLAS's own API */

/* ---------------------------------------------------------------- fixtures */

static bo_rows all_rows(int64_t n)
{
  bo_rows rows;
  bo_rows_partition(n, 0, 1, &rows);
  return rows;
}

/* Small integers: every product and sum is exact in float, so the sgemm distances are exact and
 * equal distances really tie. */
static float *grid_matrix(int64_t n, int64_t d, uint64_t seed, int levels)
{
  float *x = malloc(sizeof *x * (size_t)(n * d));
  for (int64_t i = 0; i < n; i++) {
    bo_rng r;
    bo_rng_init(&r, seed, (uint64_t)i, 0);
    for (int64_t c = 0; c < d; c++) x[i * d + c] = (float)bo_rng_below(&r, (uint64_t)levels);
  }
  return x;
}

static float *normal_matrix(int64_t n, int64_t d, uint64_t seed)
{
  float *x = malloc(sizeof *x * (size_t)(n * d));
  for (int64_t i = 0; i < n; i++) {
    bo_rng r;
    bo_rng_init(&r, seed, (uint64_t)i, 1);
    for (int64_t c = 0; c < d; c++) x[i * d + c] = (float)bo_rng_normal(&r);
  }
  return x;
}

static double sqdist(const float *x, int64_t d, int64_t p, int64_t q)
{
  double s = 0;
  for (int64_t c = 0; c < d; c++) {
    double t = (double)x[p * d + c] - (double)x[q * d + c];
    s += t * t;
  }
  return s;
}

typedef struct {
  double  d;
  int64_t j;
} cand;

static int cmp_cand(const void *a, const void *b)
{
  const cand *x = a, *y = b;
  if (x->d != y->d) return x->d < y->d ? -1 : 1;
  return (x->j > y->j) - (x->j < y->j);
}

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Brute force: the k nearest other rows of p by (distance, index), then sorted by index; and
 * their distances in the order found (dist may be NULL). */
static void brute_row(const float *x, int64_t n, int64_t d, int64_t p, int k, int64_t *nb, double *kth)
{
  cand   *c = malloc(sizeof *c * (size_t)n);
  int64_t m = 0;
  for (int64_t q = 0; q < n; q++)
    if (q != p) c[m++] = (cand){sqdist(x, d, p, q), q};
  qsort(c, (size_t)m, sizeof *c, cmp_cand);
  for (int a = 0; a < k; a++) nb[a] = c[a].j;
  if (kth) *kth = c[k - 1].d;
  qsort(nb, (size_t)k, sizeof *nb, cmp_i64);
  free(c);
}

static bo_knn_opts opts_of(int knn, PetscBool count_self, bo_knn_weights w, bo_knn_symmetrize s)
{
  return (bo_knn_opts){.knn = knn, .count_self = count_self, .weights = w, .scale = 0, .symmetrize = s};
}

static void build(int64_t n, int64_t d, const float *x, bo_knn_opts o, bo_graph *g)
{
  bo_rows rows = all_rows(n);
  assert_int_equal(bo_knn_build(PETSC_COMM_SELF, &rows, d, x, &o, g), 0);
}

/* Dense n x n copy of the graph (n small). */
static float *dense_of(const bo_graph *g)
{
  int64_t n = g->rows.n;
  float  *w = calloc((size_t)(n * n), sizeof *w);
  for (int64_t i = 0; i < n; i++)
    for (int64_t e = g->indptr[i]; e < g->indptr[i + 1]; e++) w[i * n + g->indices[e]] = g->data[e];
  return w;
}

static void assert_rows_sorted_without_self(const bo_graph *g)
{
  for (int64_t i = 0; i < g->rows.n; i++)
    for (int64_t e = g->indptr[i]; e < g->indptr[i + 1]; e++) {
      assert_true(g->indices[e] != i);
      if (e > g->indptr[i]) assert_true(g->indices[e] > g->indices[e - 1]);
    }
}

/* ---------------------------------------------------------------- kNN search */

static void knn_equals_brute_force_on_exact_data(void **state)
{
  (void)state;
  const int64_t n = 700, d = 6; /* three tiles, the last one short */
  float        *x = grid_matrix(n, d, 3, 4);
  int64_t       nb[8];
  bo_graph      g;

  build(n, d, x, opts_of(6, PETSC_TRUE, BO_KNN_BINARY, BO_SYM_NONE), &g);
  assert_rows_sorted_without_self(&g);
  for (int64_t p = 0; p < n; p++) {
    assert_int_equal(g.indptr[p + 1] - g.indptr[p], 5); /* knn 6 counts self: 5 neighbours */
    brute_row(x, n, d, p, 5, nb, NULL);
    assert_memory_equal(g.indices + g.indptr[p], nb, sizeof(int64_t) * 5);
    for (int64_t e = g.indptr[p]; e < g.indptr[p + 1]; e++) assert_true(g.data[e] == 1.0f);
  }
  assert_int_equal(bo_graph_destroy(&g), 0);
  free(x);
}

static void knn_equals_brute_force_up_to_float_near_ties(void **state)
{
  (void)state;
  const int64_t n = 600, d = 17;
  float        *x = normal_matrix(n, d, 11);
  int64_t       nb[4], differ = 0;
  double        kth;
  bo_graph      g;

  build(n, d, x, opts_of(5, PETSC_TRUE, BO_KNN_BINARY, BO_SYM_NONE), &g);
  for (int64_t p = 0; p < n; p++) {
    brute_row(x, n, d, p, 4, nb, &kth);
    if (memcmp(g.indices + g.indptr[p], nb, sizeof nb)) {
      differ++;
      for (int64_t e = g.indptr[p]; e < g.indptr[p + 1]; e++) assert_true(sqdist(x, d, p, g.indices[e]) <= kth * (1 + 1e-5));
    }
  }
  assert_true(differ <= 2); /* random data: float rounding may swap at most a rare near-tie */
  assert_int_equal(bo_graph_destroy(&g), 0);
  free(x);
}

static void ties_go_to_the_lower_index_with_duplicate_points(void **state)
{
  (void)state;
  /* 520 rows, 13 distinct points: row i is point i % 13, so each point has 39 exact duplicates
   * spread over three tiles; the 4 neighbours of p are the 4 lowest duplicates other than p. */
  const int64_t n = 520, d = 5, m = 13;
  float        *base = grid_matrix(m, d, 5, 7), *x = malloc(sizeof *x * (size_t)(n * d));
  bo_graph      g;

  for (int64_t i = 0; i < n; i++) memcpy(x + i * d, base + (i % m) * d, sizeof *x * (size_t)d);
  build(n, d, x, opts_of(5, PETSC_TRUE, BO_KNN_BINARY, BO_SYM_NONE), &g);
  for (int64_t p = 0; p < n; p++) {
    int64_t want[4], c = 0;
    for (int64_t q = p % m; c < 4; q += m)
      if (q != p) want[c++] = q;
    assert_memory_equal(g.indices + g.indptr[p], want, sizeof want);
  }
  assert_int_equal(bo_graph_destroy(&g), 0);
  free(base);
  free(x);
}

static void count_self_false_gives_knn_real_neighbours(void **state)
{
  (void)state;
  const int64_t n = 300, d = 4;
  float        *x = grid_matrix(n, d, 8, 5);
  int64_t       nb[3];
  bo_graph      g;

  build(n, d, x, opts_of(3, PETSC_FALSE, BO_KNN_BINARY, BO_SYM_NONE), &g);
  assert_int_equal(g.indptr[n], 3 * n);
  for (int64_t p = 0; p < n; p++) {
    brute_row(x, n, d, p, 3, nb, NULL);
    assert_memory_equal(g.indices + g.indptr[p], nb, sizeof nb);
  }
  assert_int_equal(bo_graph_destroy(&g), 0);
  free(x);
}

static void all_other_points_when_knn_is_n_minus_one(void **state)
{
  (void)state;
  const int64_t n = 9, d = 3;
  float        *x = normal_matrix(n, d, 2);
  bo_graph      g;

  build(n, d, x, opts_of((int)n - 1, PETSC_FALSE, BO_KNN_BINARY, BO_SYM_NONE), &g);
  for (int64_t p = 0; p < n; p++) {
    assert_int_equal(g.indptr[p + 1] - g.indptr[p], n - 1);
    for (int64_t e = g.indptr[p], q = 0; e < g.indptr[p + 1]; e++, q++) assert_int_equal(g.indices[e], q + (q >= p));
  }
  assert_int_equal(bo_graph_destroy(&g), 0);
  free(x);
}

static PetscErrorCode build_expecting_error(int64_t n, int knn, PetscBool self, char *msg, size_t len)
{
  float         *x = normal_matrix(n, 2, 1);
  bo_rows        rows = all_rows(n);
  bo_knn_opts    o = opts_of(knn, self, BO_KNN_BINARY, BO_SYM_AVG);
  bo_graph       g;
  PetscErrorCode ierr;
  char          *specific = NULL;

  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  ierr = bo_knn_build(PETSC_COMM_SELF, &rows, 2, x, &o, &g);
  PetscPopErrorHandler();
  PetscErrorMessage(ierr, NULL, &specific);
  snprintf(msg, len, "%s", specific ? specific : "");
  free(x);
  return ierr;
}

static void knn_of_n_or_no_neighbour_is_an_input_error(void **state)
{
  (void)state;
  char msg[256];
  assert_int_equal(build_expecting_error(50, 50, PETSC_TRUE, msg, sizeof msg), BO_ERR_INPUT);
  assert_non_null(strstr(msg, "with N = 50; expected"));
  assert_int_equal(build_expecting_error(50, 50, PETSC_FALSE, msg, sizeof msg), BO_ERR_INPUT);
  assert_int_equal(build_expecting_error(50, 1, PETSC_TRUE, msg, sizeof msg), BO_ERR_INPUT);
  assert_int_equal(build_expecting_error(50, 0, PETSC_FALSE, msg, sizeof msg), BO_ERR_INPUT);
}

/* ---------------------------------------------------------------- symmetrisation and weights */

static void symmetrise_avg_halves_one_way_edges_and_max_keeps_the_union(void **state)
{
  (void)state;
  const int64_t n = 400, d = 5;
  float        *x = normal_matrix(n, d, 21);
  bo_graph      gn, ga, gm;

  build(n, d, x, opts_of(4, PETSC_TRUE, BO_KNN_BINARY, BO_SYM_NONE), &gn);
  build(n, d, x, opts_of(4, PETSC_TRUE, BO_KNN_BINARY, BO_SYM_AVG), &ga);
  build(n, d, x, opts_of(4, PETSC_TRUE, BO_KNN_BINARY, BO_SYM_MAX), &gm);
  assert_rows_sorted_without_self(&ga);
  assert_rows_sorted_without_self(&gm);
  float  *wn = dense_of(&gn), *wa = dense_of(&ga), *wm = dense_of(&gm);
  int64_t half = 0, one = 0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      float f = wn[i * n + j], b = wn[j * n + i];
      assert_true(wa[i * n + j] == 0.5f * (f + b));
      assert_true(wm[i * n + j] == (f > b ? f : b));
      assert_true(wa[i * n + j] == wa[j * n + i] && wm[i * n + j] == wm[j * n + i]);
      half += wa[i * n + j] == 0.5f;
      one += wa[i * n + j] == 1.0f;
    }
  assert_true(half > 0 && one > 0); /* both kinds occur: values 0.5/1.0 as in the SLK reference */
  assert_int_equal(ga.indptr[n], gm.indptr[n]); /* same pattern (the union) */
  assert_int_equal(gn.indptr[n], 3 * n);
  free(wn);
  free(wa);
  free(wm);
  assert_int_equal(bo_graph_destroy(&gn), 0);
  assert_int_equal(bo_graph_destroy(&ga), 0);
  assert_int_equal(bo_graph_destroy(&gm), 0);
  free(x);
}

static void gaussian_weights_follow_the_distances_and_the_mean_distance_scale(void **state)
{
  (void)state;
  const int64_t n = 300, d = 6;
  float        *x = grid_matrix(n, d, 4, 6);
  bo_graph      g, gs;
  double        mean = 0;
  int64_t       nb[4];

  build(n, d, x, opts_of(5, PETSC_TRUE, BO_KNN_GAUSSIAN, BO_SYM_NONE), &g);
  for (int64_t p = 0; p < n; p++) {
    brute_row(x, n, d, p, 4, nb, NULL);
    for (int a = 0; a < 4; a++) mean += sqrt(sqdist(x, d, p, nb[a]));
  }
  mean /= (double)(n * 4);
  assert_true(fabs(g.scale - mean) <= 1e-12 * mean); /* exact data: the exact mean */
  for (int64_t p = 0; p < n; p++)
    for (int64_t e = g.indptr[p]; e < g.indptr[p + 1]; e++) {
      double want = exp(-sqdist(x, d, p, g.indices[e]) / (2 * mean * mean));
      assert_true(fabs(g.data[e] - want) <= 1e-6);
    }
  bo_knn_opts o = opts_of(5, PETSC_TRUE, BO_KNN_GAUSSIAN, BO_SYM_AVG);
  o.scale       = 0.75;
  build(n, d, x, o, &gs);
  assert_true(gs.scale == 0.75);
  float *w = dense_of(&gs);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      assert_true(w[i * n + j] == w[j * n + i]); /* d(p, q) == d(q, p) bit for bit */
      if (w[i * n + j] > 0) {
        double full = exp(-sqdist(x, d, i, j) / (2 * 0.75 * 0.75));
        assert_true(fabs(w[i * n + j] - full) <= 1e-6 || fabs(w[i * n + j] - 0.5 * full) <= 1e-6);
      }
    }
  free(w);
  assert_int_equal(bo_graph_destroy(&g), 0);
  assert_int_equal(bo_graph_destroy(&gs), 0);
  free(x);
}

static void edge_sqdist_equals_the_double_distance_of_each_edge(void **state)
{
  (void)state;
  const int64_t n = 280, d = 9;
  float        *x = normal_matrix(n, d, 6);
  bo_graph      g;

  build(n, d, x, opts_of(5, PETSC_TRUE, BO_KNN_BINARY, BO_SYM_AVG), &g);
  double *sq = malloc(sizeof *sq * (size_t)g.indptr[n]);
  assert_int_equal(bo_knn_edge_sqdist(&g, d, x, sq), 0);
  for (int64_t p = 0; p < n; p++)
    for (int64_t e = g.indptr[p]; e < g.indptr[p + 1]; e++) assert_true(sq[e] == sqdist(x, d, p, g.indices[e]));
  free(sq);
  assert_int_equal(bo_graph_destroy(&g), 0);
  free(x);
}

/* ---------------------------------------------------------------- W*Y, exchange, I/O */

static void spmm_equals_dense_w_times_y_bit_for_bit(void **state)
{
  (void)state;
  const int64_t n = 530, d = 4, K = 7;
  float        *x = normal_matrix(n, d, 9);
  double       *y = malloc(sizeof *y * (size_t)(n * K)), *b = malloc(sizeof *b * (size_t)(n * K)), dense, maxsum, want_max = 0;
  bo_knn_opts   o = opts_of(6, PETSC_TRUE, BO_KNN_GAUSSIAN, BO_SYM_AVG);
  bo_graph      g;

  build(n, d, x, o, &g);
  for (int64_t i = 0; i < n * K; i++) y[i] = sin(0.37 * (double)i) * pow(10.0, (double)(i % 5) - 2);
  assert_int_equal(bo_graph_setup_exchange(&g), 0);
  assert_int_equal(bo_graph_gather_ghosts(&g, K, y, NULL), 0); /* one rank: no ghosts */
  bo_graph_spmm(&g, K, y, NULL, b);
  float *w = dense_of(&g);
  for (int64_t i = 0; i < n; i++) {
    double rs = 0;
    for (int64_t c = 0; c < K; c++) {
      dense = 0;
      for (int64_t j = 0; j < n; j++) dense += (double)w[i * n + j] * y[j * K + c]; /* ascending columns */
      assert_memory_equal(&dense, &b[i * K + c], sizeof dense);
    }
    for (int64_t j = 0; j < n; j++) rs += w[i * n + j];
    want_max = rs > want_max ? rs : want_max;
  }
  assert_int_equal(bo_graph_max_row_sum(&g, &maxsum), 0);
  assert_true(fabs(maxsum - want_max) <= 1e-12 * want_max);
  free(w);
  free(y);
  free(b);
  assert_int_equal(bo_graph_destroy(&g), 0);
  free(x);
}

/* Every width bo_graph_spmm specialises (K <= 16, summed in registers) and wider ones (the generic
 * loop), through bo_graph_spmm and through the node-shared rows (with and without sharing), against
 * the dense product in ascending column order, bit for bit. */
static void spmm_of_every_width_and_the_shared_rows_equal_the_dense_product(void **state)
{
  (void)state;
  const int64_t n = 300, d = 3, widths[] = {1, 2, 5, 10, 16, 17, 40};
  float        *x = normal_matrix(n, d, 21);
  bo_graph      g;

  build(n, d, x, opts_of(7, PETSC_TRUE, BO_KNN_GAUSSIAN, BO_SYM_AVG), &g);
  float *w = dense_of(&g);
  for (size_t t = 0; t < sizeof widths / sizeof *widths; t++) {
    int64_t K = widths[t];
    double *y = malloc(sizeof *y * (size_t)(n * K)), *b = malloc(sizeof *b * (size_t)(n * K)), *bs = malloc(sizeof *bs * (size_t)(n * K));
    for (int64_t i = 0; i < n * K; i++) y[i] = cos(0.91 * (double)i) * pow(10.0, (double)(i % 7) - 3);
    bo_graph_spmm(&g, K, y, NULL, b);
    for (int64_t i = 0; i < n; i++)
      for (int64_t c = 0; c < K; c++) {
        double dense = 0;
        for (int64_t j = 0; j < n; j++) dense += (double)w[i * n + j] * y[j * K + c];
        assert_memory_equal(&dense, &b[i * K + c], sizeof dense);
      }
    for (int share = 0; share < 2; share++) {
      bo_graph_shared sh;
      assert_int_equal(bo_graph_shared_create(&g, K, share ? BO_SHARE_NODE : BO_SHARE_NONE, &sh), 0);
      assert_int_equal(sh.offnode_ghosts, 0); /* one rank: nothing to move */
      memcpy(sh.rows, y, sizeof *y * (size_t)(n * K));
      assert_int_equal(bo_graph_shared_exchange(&sh), 0);
      bo_graph_shared_spmm(&sh, bs);
      assert_memory_equal(bs, b, sizeof *b * (size_t)(n * K));
      assert_int_equal(bo_graph_shared_destroy(&sh), 0);
      assert_null(sh.rows);
    }
    free(y);
    free(b);
    free(bs);
  }
  free(w);
  assert_int_equal(bo_graph_destroy(&g), 0);
  free(x);
}

static void exchange_on_one_rank_has_no_ghosts_and_local_slots(void **state)
{
  (void)state;
  const int64_t n = 260, d = 3;
  float        *x = normal_matrix(n, d, 12);
  bo_graph      g;

  build(n, d, x, opts_of(4, PETSC_TRUE, BO_KNN_BINARY, BO_SYM_MAX), &g);
  assert_true(g.exchange_ready); /* bo_knn_build sets it up */
  assert_int_equal(bo_graph_setup_exchange(&g), 0); /* idempotent */
  assert_int_equal(g.nghost, 0);
  assert_int_equal(g.nsend, 0);
  for (int64_t e = 0; e < g.indptr[n]; e++) {
    assert_int_equal(g.col_slot[e], g.indices[e]);
    assert_int_equal(g.slot_code[e], (uint32_t)g.indices[e] << 1); /* local rows, no ghost flag */
  }
  float ghost_f;
  assert_int_equal(bo_graph_gather_ghosts_float(&g, d, x, &ghost_f), 0);
  assert_int_equal(bo_graph_destroy(&g), 0);
  assert_null(g.indptr);
  assert_null(g.col_slot);
  assert_null(g.slot_code);
  free(x);
}

static void a_written_graph_reads_back_identically(void **state)
{
  (void)state;
  const int64_t n = 333, d = 5;
  float        *x = normal_matrix(n, d, 13);
  bo_rows       rows = all_rows(n);
  bo_graph      g, back;
  hid_t         file;
  char          path[PETSC_MAX_PATH_LEN], bad[PETSC_MAX_PATH_LEN + 8], *specific = NULL;
  int           fd;

  snprintf(path, sizeof path, "%s/boundopt-graph-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  build(n, d, x, opts_of(5, PETSC_TRUE, BO_KNN_GAUSSIAN, BO_SYM_AVG), &g);
  assert_int_equal(bo_h5_create(PETSC_COMM_SELF, path, &file), 0);
  assert_int_equal(bo_graph_write(file, &g, 5, "gaussian", "avg"), 0);
  assert_int_equal(bo_h5_close(&file), 0);
  assert_int_equal(bo_graph_read(PETSC_COMM_SELF, path, &rows, &back), 0);
  assert_memory_equal(back.indptr, g.indptr, sizeof(int64_t) * (size_t)(n + 1));
  assert_memory_equal(back.indices, g.indices, sizeof(int64_t) * (size_t)g.indptr[n]);
  assert_memory_equal(back.data, g.data, sizeof(float) * (size_t)g.indptr[n]);
  assert_true(back.scale == g.scale);
  assert_int_equal(bo_graph_destroy(&back), 0);

  /* a graph of another n, and a file without a graph, are refused with one-line input errors */
  bo_rows other = all_rows(n + 1);
  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  PetscErrorCode ierr = bo_graph_read(PETSC_COMM_SELF, path, &other, &back);
  PetscPopErrorHandler();
  PetscErrorMessage(ierr, NULL, &specific);
  assert_int_equal(ierr, BO_ERR_INPUT);
  assert_non_null(strstr(specific, "expected n + 1 = 335"));
  snprintf(bad, sizeof bad, "%s.empty", path);
  assert_int_equal(bo_h5_create(PETSC_COMM_SELF, bad, &file), 0);
  assert_int_equal(bo_h5_close(&file), 0);
  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  ierr = bo_graph_read(PETSC_COMM_SELF, bad, &rows, &back);
  PetscPopErrorHandler();
  assert_int_equal(ierr, BO_ERR_INPUT);
  unlink(bad);
  unlink(path);
  assert_int_equal(bo_graph_destroy(&g), 0);
  free(x);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("kNN on exact data equals brute force (knn counts self: knn - 1 neighbours, self dropped)", knn_equals_brute_force_on_exact_data),
    PROPERTY("kNN on random data equals brute force up to rare float near-ties", knn_equals_brute_force_up_to_float_near_ties),
    PROPERTY("ties go to the lower global index (exact duplicate points across tiles)", ties_go_to_the_lower_index_with_duplicate_points),
    PROPERTY("count_self = false gives knn real neighbours", count_self_false_gives_knn_real_neighbours),
    PROPERTY("knn = n - 1 real neighbours gives every other point", all_other_points_when_knn_is_n_minus_one),
    PROPERTY("knn >= N or no neighbour left is an input error naming N", knn_of_n_or_no_neighbour_is_an_input_error),
    PROPERTY("symmetrize avg is (W + W^T)/2 (0.5 one way, 1 both ways), max is the union, none is row-wise", symmetrise_avg_halves_one_way_edges_and_max_keeps_the_union),
    PROPERTY("Gaussian weights are exp(-d^2/(2 s^2)), s = the mean kNN distance by default, and symmetric", gaussian_weights_follow_the_distances_and_the_mean_distance_scale),
    PROPERTY("per-edge squared distances equal the double distances exactly", edge_sqdist_equals_the_double_distance_of_each_edge),
    PROPERTY("W*Y equals the dense product summed in ascending column order, bit for bit; max row sum too", spmm_equals_dense_w_times_y_bit_for_bit),
    PROPERTY("W*Y of widths 1 to 40, and through the node-shared rows, equals the dense product bit for bit", spmm_of_every_width_and_the_shared_rows_equal_the_dense_product),
    PROPERTY("the exchange on one rank has no ghosts and local column slots; setup is idempotent", exchange_on_one_rank_has_no_ghosts_and_local_slots),
    PROPERTY("a written graph reads back identically; a wrong n or a file without /graph is an input error", a_written_graph_reads_back_identically),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  bo_h5_init();
  openblas_set_num_threads(1);
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
