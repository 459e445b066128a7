/* test_slk.c - properties of the clustering driver (cluster.h) on MPI_COMM_SELF: Lloyd's monotone
 * K-means energy, perfect recovery of separated blobs by every method, exact continuation from a
 * saved state, the hook, the caps, empty clusters (reseed and stop), and the sigma rule's edge sum. */
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

#include "boundopt/cluster.h"
#include "boundopt/error.h"
#include "boundopt/kmeans.h"
#include "boundopt/knn.h"
#include "boundopt/rng.h"
#include "boundopt/stats.h"
#include "unit_support.h"

/* ---------------------------------------------------------------- fixtures */

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

/* nb blobs (row i in blob i % nb), centre of blob b at sep * e_b, noise sd. */
static float *blobs(int64_t n, int64_t d, int nb, double sep, double sd, uint64_t seed, int32_t *blob)
{
  float *x = normal_matrix(n, d, seed);
  for (int64_t i = 0; i < n; i++) {
    int b = (int)(i % nb);
    for (int64_t c = 0; c < d; c++) x[i * d + c] = (float)(sd * x[i * d + c] + (c == b ? sep : 0.0));
    if (blob) blob[i] = b;
  }
  return x;
}

static void knn_graph(int64_t n, int64_t d, const float *x, int knn, bo_graph *g)
{
  bo_rows     rows = all_rows(n);
  bo_knn_opts o    = {.knn = knn, .count_self = PETSC_TRUE, .weights = BO_KNN_BINARY, .scale = 0, .symmetrize = BO_SYM_AVG};
  assert_int_equal(bo_knn_build(PETSC_COMM_SELF, &rows, d, x, &o, g), 0);
}

static bo_cluster_opts opts_of(bo_cluster_method m, int64_t k)
{
  bo_cluster_opts o = {0};
  o.method          = m;
  o.k               = k;
  o.lambda          = 1.0;
  o.sigma           = 1.5;
  o.max_it          = 50;
  o.tol             = 1e-8;
  o.bound           = (bo_bound_opts){.lambda = 0, .max_it = 100, .tol = 1e-6};
  o.ms_max_it       = 200;
  o.ms_tol          = 1e-6;
  o.hard_means      = PETSC_FALSE;
  o.on_empty        = BO_ON_EMPTY_RESEED;
  return o;
}

static double sqdist_double(const float *u, const float *v, int64_t d)
{
  double s = 0;
  for (int64_t j = 0; j < d; j++) {
    double t = (double)u[j] - (double)v[j];
    s += t * t;
  }
  return s;
}

/* Every class's rows share one label, and different classes have different labels. */
static void assert_one_to_one(int64_t n, int nclasses, const int32_t *cls, const int32_t *labels, const char *what)
{
  int32_t map[16];
  for (int b = 0; b < nclasses; b++) map[b] = -1;
  for (int64_t i = 0; i < n; i++) {
    if (map[cls[i]] < 0) map[cls[i]] = labels[i];
    if (labels[i] != map[cls[i]]) fail_msg("%s: row %lld of class %d has label %d, its class has %d", what, (long long)i, cls[i], labels[i], map[cls[i]]);
  }
  for (int b = 0; b < nclasses; b++)
    for (int q = 0; q < b; q++)
      if (map[b] == map[q]) fail_msg("%s: classes %d and %d share cluster %d", what, q, b, map[b]);
}

/* A copy of everything bo_cluster_run keeps between outer iterations (what a checkpoint holds). */
static void state_copy(const bo_cluster_state *src, int max_it, bo_cluster_state *dst)
{
  int64_t local = bo_rows_local(&src->rows);
  assert_int_equal(bo_cluster_state_create(&src->rows, src->d, src->k, max_it, dst), 0);
  memcpy(dst->prototypes, src->prototypes, sizeof(float) * (size_t)(src->k * src->d));
  memcpy(dst->labels, src->labels, sizeof(int32_t) * (size_t)local);
  if (src->y) {
    assert_int_equal(PetscMalloc1(local * src->k, &dst->y), 0);
    memcpy(dst->y, src->y, sizeof(double) * (size_t)(local * src->k));
  }
  memcpy(dst->energy, src->energy, sizeof(double) * (size_t)max_it);
  memcpy(dst->bound_iterations, src->bound_iterations, sizeof(int) * (size_t)max_it);
  dst->iteration     = src->iteration;
  dst->reseeded      = src->reseeded;
  dst->converged     = src->converged;
  dst->stopped_empty = src->stopped_empty;
  dst->interrupted   = src->interrupted;
}

static void assert_same_state(const bo_cluster_state *a, const bo_cluster_state *b)
{
  int64_t local = bo_rows_local(&a->rows);
  assert_int_equal(a->iteration, b->iteration);
  assert_int_equal(a->converged, b->converged);
  assert_int_equal(a->stopped_empty, b->stopped_empty);
  assert_int_equal(a->reseeded, b->reseeded);
  assert_memory_equal(a->prototypes, b->prototypes, sizeof(float) * (size_t)(a->k * a->d));
  assert_memory_equal(a->labels, b->labels, sizeof(int32_t) * (size_t)local);
  assert_memory_equal(a->energy, b->energy, sizeof(double) * (size_t)a->iteration);
  assert_memory_equal(a->bound_iterations, b->bound_iterations, sizeof(int) * (size_t)a->iteration);
  assert_true(!a->y == !b->y);
  if (a->y) assert_memory_equal(a->y, b->y, sizeof(double) * (size_t)(local * a->k));
}

/* Hook: counts calls, checks one call per outer iteration, snapshots the state after iteration
 * `save_at` and stops the run after iteration `stop_at` (0: never). */
typedef struct {
  int              calls, save_at, stop_at, max_it;
  PetscBool        saved;
  bo_cluster_state snap;
} hook_ctx;

static PetscErrorCode hook(void *vctx, const bo_cluster_state *st, PetscBool *stop)
{
  hook_ctx *h = vctx;

  PetscFunctionBeginUser;
  h->calls++;
  if (st->iteration != h->calls) fail_msg("hook call %d after outer iteration %d", h->calls, st->iteration);
  if (!isfinite(st->energy[st->iteration - 1])) fail_msg("hook: energy of iteration %d not set", st->iteration - 1);
  if (h->save_at && st->iteration == h->save_at) {
    state_copy(st, h->max_it, &h->snap);
    h->saved = PETSC_TRUE;
  }
  if (h->stop_at && st->iteration == h->stop_at) *stop = PETSC_TRUE;
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- K-means energy */

static void kmeans_energy_never_increases_across_outer_iterations(void **state)
{
  (void)state;
  const int64_t   n = 900, d = 6, k = 7;
  float          *x = normal_matrix(n, d, 101);
  bo_rows         rows = all_rows(n);
  bo_cluster_opts o    = opts_of(BO_KMEANS, k);
  bo_cluster_state st;

  o.max_it = 200;
  assert_int_equal(bo_cluster_state_create(&rows, d, k, o.max_it, &st), 0);
  assert_int_equal(bo_kmeans_plusplus(PETSC_COMM_SELF, &rows, d, x, k, 5, st.prototypes), 0);
  assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows, d, x, NULL, &o, &st), 0);
  assert_true(st.iteration >= 4); /* enough steps for the property to mean something */
  assert_true(st.converged);
  for (int i = 1; i < st.iteration; i++)
    if (!(st.energy[i] <= st.energy[i - 1] * (1 + 1e-7))) fail_msg("energy rose at iteration %d: %.17g -> %.17g", i, st.energy[i - 1], st.energy[i]);
  assert_true(st.energy[st.iteration - 1] < st.energy[0] * 0.99);
  /* the energy is the sum of the minimal squared distances to the final prototypes */
  double e = 0;
  for (int64_t i = 0; i < n; i++) {
    double lo = INFINITY;
    for (int64_t c = 0; c < k; c++) lo = fmin(lo, sqdist_double(x + i * d, st.prototypes + c * d, d));
    ASSERT_CLOSE(sqdist_double(x + i * d, st.prototypes + (int64_t)st.labels[i] * d, d), lo, 1e-4 * (lo + 1e-3));
    e += lo;
  }
  ASSERT_CLOSE(st.energy[st.iteration - 1], e, 1e-5 * e);
  assert_int_equal(bo_cluster_state_destroy(&st), 0);
  free(x);
}

/* ---------------------------------------------------------------- separated blobs */

static void every_method_recovers_separated_blobs_exactly(void **state)
{
  (void)state;
  const int64_t n = 600, d = 8, k = 4;
  int32_t      *cls = malloc(sizeof *cls * (size_t)n);
  float        *x = blobs(n, d, 4, 10.0, 0.5, 201, cls);
  bo_rows       rows = all_rows(n);
  bo_graph      g;

  knn_graph(n, d, x, 5, &g);
  for (int m = 0; m < BO_NMETHODS; m++) {
    bo_cluster_opts  o = opts_of((bo_cluster_method)m, k);
    bo_cluster_state st;
    int64_t          sizes[4];
    assert_int_equal(bo_cluster_state_create(&rows, d, k, o.max_it, &st), 0);
    assert_int_equal(bo_kmeans_plusplus(PETSC_COMM_SELF, &rows, d, x, k, 9, st.prototypes), 0);
    assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows, d, x, bo_cluster_uses_graph(o.method) ? &g : NULL, &o, &st), 0);
    assert_one_to_one(n, 4, cls, st.labels, bo_cluster_method_names[m]);
    assert_int_equal(bo_cluster_sizes(PETSC_COMM_SELF, &st, sizes), 0);
    for (int c = 0; c < 4; c++) assert_int_equal(sizes[c], n / 4);
    assert_false(st.stopped_empty);
    assert_int_equal(st.reseeded, 0);
    assert_true(st.iteration >= 1 && st.iteration <= o.max_it);
    for (int i = 0; i < st.iteration; i++) assert_true(isfinite(st.energy[i]));
    assert_int_equal(bo_cluster_state_destroy(&st), 0);
  }
  assert_int_equal(bo_graph_destroy(&g), 0);
  free(cls); free(x);
}

/* ---------------------------------------------------------------- save and continue */

static void check_continuation(bo_cluster_method method, int max_it, int save_at)
{
  const int64_t    n = 600, d = 5, k = 6;
  float           *x = normal_matrix(n, d, 301);
  bo_rows          rows = all_rows(n);
  bo_graph         g;
  bo_cluster_opts  o = opts_of(method, k);
  bo_cluster_state straight, stopped, resumed;
  hook_ctx         h = {.save_at = save_at, .max_it = max_it};
  PetscBool        graph = bo_cluster_uses_graph(method);

  if (graph) knn_graph(n, d, x, 5, &g);
  o.max_it   = max_it;
  o.tol      = 0;
  o.sigma    = 1.0;
  o.hook     = hook;
  o.hook_ctx = &h;
  /* uninterrupted, snapshotting after iteration save_at */
  assert_int_equal(bo_cluster_state_create(&rows, d, k, max_it, &straight), 0);
  assert_int_equal(bo_kmeans_plusplus(PETSC_COMM_SELF, &rows, d, x, k, 3, straight.prototypes), 0);
  assert_int_equal(bo_cluster_state_create(&rows, d, k, max_it, &stopped), 0);
  memcpy(stopped.prototypes, straight.prototypes, sizeof(float) * (size_t)(k * d));
  assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows, d, x, graph ? &g : NULL, &o, &straight), 0);
  assert_true(h.saved);
  assert_int_equal(h.calls, straight.iteration);
  assert_true(straight.iteration > save_at + 1); /* the continuation has real work left */

  /* the copy continued (hook no longer saving) gives the same bits */
  h = (hook_ctx){.calls = save_at, .max_it = max_it, .snap = h.snap};
  resumed = h.snap;
  assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows, d, x, graph ? &g : NULL, &o, &resumed), 0);
  assert_same_state(&straight, &resumed);

  /* stopped by the hook after save_at, then continued in place */
  h = (hook_ctx){.stop_at = save_at, .max_it = max_it};
  assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows, d, x, graph ? &g : NULL, &o, &stopped), 0);
  assert_int_equal(stopped.iteration, save_at);
  assert_int_equal(h.calls, save_at);
  h.stop_at = 0;
  assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows, d, x, graph ? &g : NULL, &o, &stopped), 0);
  assert_same_state(&straight, &stopped);

  assert_int_equal(bo_cluster_state_destroy(&straight), 0);
  assert_int_equal(bo_cluster_state_destroy(&resumed), 0);
  assert_int_equal(bo_cluster_state_destroy(&stopped), 0);
  if (graph) assert_int_equal(bo_graph_destroy(&g), 0);
  free(x);
}

static void kmeans_continued_from_a_saved_state_equals_the_uninterrupted_run(void **state)
{
  (void)state;
  check_continuation(BO_KMEANS, 60, 2);
}

static void slk_ms_continued_from_a_saved_state_equals_the_uninterrupted_run(void **state)
{
  (void)state;
  check_continuation(BO_SLK_MS, 7, 3);
}

/* ---------------------------------------------------------------- hook and caps */

static void hook_is_called_once_per_outer_iteration_and_can_stop_the_run(void **state)
{
  (void)state;
  const int64_t n = 500, d = 4, k = 5;
  float        *x = normal_matrix(n, d, 401);
  bo_rows       rows = all_rows(n);

  for (int m = BO_KMEANS; m <= BO_SOFT_KMEANS; m++) {
    bo_cluster_opts  o = opts_of((bo_cluster_method)m, k);
    bo_cluster_state st;
    hook_ctx         h = {.max_it = 40};
    o.max_it   = 40;
    o.tol      = 0;
    o.hook     = hook;
    o.hook_ctx = &h;
    assert_int_equal(bo_cluster_state_create(&rows, d, k, o.max_it, &st), 0);
    assert_int_equal(bo_kmeans_plusplus(PETSC_COMM_SELF, &rows, d, x, k, 4, st.prototypes), 0);
    assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows, d, x, NULL, &o, &st), 0);
    assert_int_equal(h.calls, st.iteration); /* once per outer iteration, without stopping */
    assert_int_equal(bo_cluster_state_destroy(&st), 0);

    h = (hook_ctx){.stop_at = 3, .max_it = 40};
    assert_int_equal(bo_cluster_state_create(&rows, d, k, o.max_it, &st), 0);
    assert_int_equal(bo_kmeans_plusplus(PETSC_COMM_SELF, &rows, d, x, k, 4, st.prototypes), 0);
    assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows, d, x, NULL, &o, &st), 0);
    assert_int_equal(st.iteration, 3);
    assert_int_equal(h.calls, 3);
    assert_false(st.converged);
    assert_int_equal(bo_cluster_state_destroy(&st), 0);
  }
  free(x);
}

static void max_it_caps_the_outer_and_bound_iterations(void **state)
{
  (void)state;
  const int64_t n = 500, d = 4, k = 5;
  float        *x = normal_matrix(n, d, 501);
  bo_rows       rows = all_rows(n);
  bo_graph      g;

  knn_graph(n, d, x, 5, &g);
  for (int m = 0; m < BO_NMETHODS; m++) {
    bo_cluster_opts  o = opts_of((bo_cluster_method)m, k);
    bo_cluster_state st;
    o.max_it       = 2;
    o.tol          = 0;
    o.sigma        = 1.0;
    o.bound.max_it = 4;
    o.bound.tol    = 0;
    assert_int_equal(bo_cluster_state_create(&rows, d, k, o.max_it, &st), 0);
    assert_int_equal(bo_kmeans_plusplus(PETSC_COMM_SELF, &rows, d, x, k, 6, st.prototypes), 0);
    assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows, d, x, bo_cluster_uses_graph(o.method) ? &g : NULL, &o, &st), 0);
    if (st.iteration != 2) fail_msg("%s: %d outer iterations, expected the cap 2", bo_cluster_method_names[m], st.iteration);
    assert_false(st.converged);
    if (bo_cluster_uses_graph(o.method))
      for (int i = 0; i < st.iteration; i++) assert_int_equal(st.bound_iterations[i], 4); /* tol 0: the inner cap */
    assert_int_equal(bo_cluster_state_destroy(&st), 0);
  }
  assert_int_equal(bo_graph_destroy(&g), 0);
  free(x);
}

/* ---------------------------------------------------------------- empty clusters */

/* Two blobs 50 apart (rows 0..149 blob A, 150..299 blob B), one far point in blob B; seeds x0, x150,
 * x150: cluster 2 ties with cluster 1 everywhere and empties at the first assignment. */
enum { EN = 300, ED = 6, FAR_ROW = 222, FAR_ROW2 = 37 };

/* second: a second far point, in blob A, a little nearer to its seed than FAR_ROW is to its own */
static float *two_blobs(PetscBool second)
{
  float *x = normal_matrix(EN, ED, 601);
  for (int64_t i = 0; i < EN; i++)
    if (i >= EN / 2) x[i * ED] += 50.0f;
  x[FAR_ROW * ED + 1] += 20.0f;
  if (second) x[FAR_ROW2 * ED + 2] += 16.0f;
  return x;
}

static void empty_cluster_is_reseeded_with_the_farthest_row(void **state)
{
  (void)state;
  float           *x = two_blobs(PETSC_FALSE);
  bo_rows          rows = all_rows(EN);
  bo_cluster_opts  o    = opts_of(BO_KMEANS, 3);
  bo_cluster_state st;
  hook_ctx         h = {.save_at = 1, .max_it = o.max_it};
  int64_t          sizes[3];

  /* the farthest row from its seed (by double distances) is FAR_ROW, by a wide margin */
  double best = -1, second = -1;
  int64_t at = -1;
  for (int64_t i = 0; i < EN; i++) {
    double dd = sqdist_double(x + i * ED, x + (i < EN / 2 ? 0 : EN / 2) * ED, ED);
    if (dd > best) { second = best; best = dd; at = i; } else if (dd > second) second = dd;
  }
  assert_int_equal(at, FAR_ROW);
  assert_true(best > 2 * second);

  o.hook     = hook;
  o.hook_ctx = &h;
  assert_int_equal(bo_cluster_state_create(&rows, ED, 3, o.max_it, &st), 0);
  memcpy(st.prototypes, x, sizeof(float) * ED);
  memcpy(st.prototypes + ED, x + (EN / 2) * ED, sizeof(float) * ED);
  memcpy(st.prototypes + 2 * ED, x + (EN / 2) * ED, sizeof(float) * ED);
  assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows, ED, x, NULL, &o, &st), 0);
  /* after the first iteration: prototype 2 is the far row, which is labelled 2 */
  assert_true(h.saved);
  assert_int_equal(h.snap.reseeded, 1);
  assert_memory_equal(h.snap.prototypes + 2 * ED, x + FAR_ROW * ED, sizeof(float) * ED);
  assert_int_equal(h.snap.labels[FAR_ROW], 2);
  for (int64_t i = 0; i < EN; i++)
    if (i != FAR_ROW) assert_int_equal(h.snap.labels[i], i < EN / 2 ? 0 : 1);
  /* the run goes on with three non-empty clusters */
  assert_false(st.stopped_empty);
  assert_true(st.converged);
  assert_int_equal(st.reseeded, 1);
  assert_int_equal(bo_cluster_sizes(PETSC_COMM_SELF, &st, sizes), 0);
  for (int c = 0; c < 3; c++) assert_true(sizes[c] > 0);
  assert_int_equal(bo_cluster_state_destroy(&h.snap), 0);
  assert_int_equal(bo_cluster_state_destroy(&st), 0);
  free(x);

  /* two empty clusters at once (seeds x0, x150, x150, x150): two distinct rows, farthest first */
  x = two_blobs(PETSC_TRUE);
  o = opts_of(BO_KMEANS, 4);
  h = (hook_ctx){.save_at = 1, .max_it = o.max_it};
  o.hook     = hook;
  o.hook_ctx = &h;
  assert_int_equal(bo_cluster_state_create(&rows, ED, 4, o.max_it, &st), 0);
  memcpy(st.prototypes, x, sizeof(float) * ED);
  for (int c = 1; c < 4; c++) memcpy(st.prototypes + c * ED, x + (EN / 2) * ED, sizeof(float) * ED);
  assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows, ED, x, NULL, &o, &st), 0);
  assert_true(h.saved);
  assert_int_equal(h.snap.reseeded, 2);
  assert_memory_equal(h.snap.prototypes + 2 * ED, x + FAR_ROW * ED, sizeof(float) * ED);
  assert_memory_equal(h.snap.prototypes + 3 * ED, x + FAR_ROW2 * ED, sizeof(float) * ED);
  assert_int_equal(h.snap.labels[FAR_ROW], 2);
  assert_int_equal(h.snap.labels[FAR_ROW2], 3);
  assert_int_equal(st.reseeded, 2);
  int64_t sizes4[4];
  assert_int_equal(bo_cluster_sizes(PETSC_COMM_SELF, &st, sizes4), 0);
  for (int c = 0; c < 4; c++) assert_true(sizes4[c] > 0);
  assert_int_equal(bo_cluster_state_destroy(&h.snap), 0);
  assert_int_equal(bo_cluster_state_destroy(&st), 0);
  free(x);
}

static void empty_cluster_with_on_empty_stop_keeps_the_previous_state_and_stops(void **state)
{
  (void)state;
  float           *x = two_blobs(PETSC_FALSE);
  bo_rows          rows = all_rows(EN);
  bo_cluster_opts  o    = opts_of(BO_KMEANS, 3);
  bo_cluster_state st;
  float            seeds[3 * ED];

  /* at the first iteration there is nothing before: the seeds and their assignment stay */
  o.on_empty = BO_ON_EMPTY_STOP;
  memcpy(seeds, x, sizeof(float) * ED);
  memcpy(seeds + ED, x + (EN / 2) * ED, sizeof(float) * ED);
  memcpy(seeds + 2 * ED, x + (EN / 2) * ED, sizeof(float) * ED);
  assert_int_equal(bo_cluster_state_create(&rows, ED, 3, o.max_it, &st), 0);
  memcpy(st.prototypes, seeds, sizeof seeds);
  assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows, ED, x, NULL, &o, &st), 0);
  assert_true(st.stopped_empty);
  assert_false(st.converged);
  assert_int_equal(st.iteration, 1);
  assert_int_equal(st.reseeded, 0);
  assert_memory_equal(st.prototypes, seeds, sizeof seeds);
  for (int64_t i = 0; i < EN; i++) assert_int_equal(st.labels[i], i < EN / 2 ? 0 : 1);
  assert_int_equal(bo_cluster_state_destroy(&st), 0);
  free(x);

  /* emptied at the second iteration (1-D, exact values): seeds 7, 0.5, 4.5 give labels
   * 1 2 2 0 0 0 0; the means 6.375, 2, 4.25 then leave cluster 2 empty.  The previous prototypes
   * and labels come back and the run stops; the discarded iteration is not counted, so the last
   * reported energy is that of the restored state. */
  const float   x1[7]    = {2.0f, 3.0f, 5.5f, 6.0f, 6.0f, 6.5f, 7.0f};
  const float   s1[3]    = {7.0f, 0.5f, 4.5f};
  const int32_t l1[7]    = {1, 2, 2, 0, 0, 0, 0};
  bo_rows       rows7    = all_rows(7);
  assert_int_equal(bo_cluster_state_create(&rows7, 1, 3, o.max_it, &st), 0);
  memcpy(st.prototypes, s1, sizeof s1);
  assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows7, 1, x1, NULL, &o, &st), 0);
  assert_true(st.stopped_empty);
  assert_int_equal(st.iteration, 1);
  assert_memory_equal(st.prototypes, s1, sizeof s1);
  assert_memory_equal(st.labels, l1, sizeof l1);
  assert_int_equal(bo_cluster_state_destroy(&st), 0);

  /* the same with reseed: no stop, cluster 2 gets a row back */
  int64_t sizes[3];
  o.on_empty = BO_ON_EMPTY_RESEED;
  assert_int_equal(bo_cluster_state_create(&rows7, 1, 3, o.max_it, &st), 0);
  memcpy(st.prototypes, s1, sizeof s1);
  assert_int_equal(bo_cluster_run(PETSC_COMM_SELF, &rows7, 1, x1, NULL, &o, &st), 0);
  assert_false(st.stopped_empty);
  assert_true(st.reseeded >= 1);
  assert_int_equal(bo_cluster_sizes(PETSC_COMM_SELF, &st, sizes), 0);
  for (int c = 0; c < 3; c++) assert_true(sizes[c] > 0);
  assert_int_equal(bo_cluster_state_destroy(&st), 0);
}

/* ---------------------------------------------------------------- sigma rule */

static void sigma_edge_sum_equals_the_dense_double_loop(void **state)
{
  (void)state;
  const int64_t n = 350, d = 7;
  float        *x = normal_matrix(n, d, 701);
  bo_rows       rows = all_rows(n);
  bo_graph      g;
  bo_knn_opts   ko = {.knn = 5, .count_self = PETSC_TRUE, .weights = BO_KNN_GAUSSIAN, .scale = 0, .symmetrize = BO_SYM_AVG};

  assert_int_equal(bo_knn_build(PETSC_COMM_SELF, &rows, d, x, &ko, &g), 0);
  int64_t nnz = g.indptr[n];
  double *sq = malloc(sizeof *sq * (size_t)nnz), *rowsum = malloc(sizeof *rowsum * (size_t)n), total;
  assert_int_equal(bo_knn_edge_sqdist(&g, d, x, sq), 0);
  for (int64_t i = 0; i < n; i++) {
    rowsum[i] = 0;
    for (int64_t e = g.indptr[i]; e < g.indptr[i + 1]; e++) rowsum[i] += (double)g.data[e] * sq[e];
  }
  assert_int_equal(bo_stats_sum(PETSC_COMM_SELF, &rows, rowsum, &total), 0);
  /* dense: W as an n x n matrix, sum over every (p, q) of w_pq |x_p - x_q|^2 */
  double *w = calloc((size_t)(n * n), sizeof *w), dense = 0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t e = g.indptr[i]; e < g.indptr[i + 1]; e++) w[i * n + g.indices[e]] = g.data[e];
  for (int64_t p = 0; p < n; p++)
    for (int64_t q = 0; q < n; q++)
      if (w[p * n + q] != 0) dense += w[p * n + q] * sqdist_double(x + p * d, x + q * d, d);
  assert_true(dense > 0);
  ASSERT_CLOSE(total, dense, 1e-12 * dense);
  /* sigma^2 = sum / (5 N) (reference denominator) is then a typical squared kNN distance */
  double sigma = sqrt(total / (5.0 * (double)n));
  assert_true(isfinite(sigma) && sigma > 0);
  free(sq); free(rowsum); free(w); free(x);
  assert_int_equal(bo_graph_destroy(&g), 0);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("K-means energy (sum of min distances) never increases across outer iterations (Lloyd)", kmeans_energy_never_increases_across_outer_iterations),
    PROPERTY("every method recovers 4 separated blobs exactly (clusters one-to-one with classes)", every_method_recovers_separated_blobs_exactly),
    PROPERTY("kmeans: a state saved after iteration j and continued equals the uninterrupted run, bit for bit", kmeans_continued_from_a_saved_state_equals_the_uninterrupted_run),
    PROPERTY("slk-ms: a state saved after iteration j and continued equals the uninterrupted run, bit for bit", slk_ms_continued_from_a_saved_state_equals_the_uninterrupted_run),
    PROPERTY("the hook is called once per outer iteration and can stop the run", hook_is_called_once_per_outer_iteration_and_can_stop_the_run),
    PROPERTY("max_it caps the outer iterations, bound max_it the inner ones, for every method", max_it_caps_the_outer_and_bound_iterations),
    PROPERTY("an empty cluster (seeds x0, x1, x1) is re-seeded with the row farthest from its prototype; two empty ones with two distinct rows", empty_cluster_is_reseeded_with_the_farthest_row),
    PROPERTY("on_empty stop restores the previous prototypes and labels and stops", empty_cluster_with_on_empty_stop_keeps_the_previous_state_and_stops),
    PROPERTY("the sigma rule's sum over edges of w |x_p - x_q|^2 equals the dense double loop", sigma_edge_sum_equals_the_dense_double_loop),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  openblas_set_num_threads(1);
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
