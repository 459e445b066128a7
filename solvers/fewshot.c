/* fewshot.c - one few-shot task: sampling, preprocessing, SimpleShot, LaplacianShot (see fewshot.h).
 *
 * Tasks are small (a few hundred rows), so every kernel here is a plain double loop: distances are
 * summed as (x - y)^2 rather than |x|^2 + |y|^2 - 2 x.y, which makes exact ties real ties and the
 * results independent of any BLAS.  The bound iterations are the shared ones (bound.h) on a graph
 * that lives on PETSC_COMM_SELF.
 */
#include "boundopt/fewshot.h"
#include "boundopt/reduce.h"
#include "boundopt/bound.h"
#include "boundopt/error.h"
#include "boundopt/rng.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the task sampler */

PetscErrorCode bo_fewshot_task_create(int ways, int shots, int queries, bo_fewshot_task *task)
{
  PetscFunctionBeginUser;
  PetscCheck(ways >= 1 && shots >= 1 && queries >= 1, PETSC_COMM_SELF, BO_ERR_INPUT, "fewshot: %d ways, %d shots, %d queries; expected each >= 1", ways, shots, queries);
  PetscCheck((int64_t)ways * PetscMax(shots, queries) < INT32_MAX, PETSC_COMM_SELF, BO_ERR_INPUT, "fewshot: %d ways x %d shots / %d queries per task; expected fewer than 2^31 rows", ways, shots, queries);
  memset(task, 0, sizeof *task);
  task->ways = ways; task->shots = shots; task->queries = queries; task->nq = ways * queries;
  PetscCall(PetscCalloc1(ways, &task->class_ids));
  PetscCall(PetscCalloc1((size_t)ways * shots, &task->support_rows));
  PetscCall(PetscCalloc1((size_t)ways * shots, &task->support_labels));
  PetscCall(PetscCalloc1(task->nq, &task->query_rows));
  PetscCall(PetscCalloc1(task->nq, &task->query_labels));
  PetscCall(PetscCalloc1(ways, &task->queries_per_class));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_fewshot_task_destroy(bo_fewshot_task *task)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree(task->class_ids));
  PetscCall(PetscFree(task->support_rows));
  PetscCall(PetscFree(task->support_labels));
  PetscCall(PetscFree(task->query_rows));
  PetscCall(PetscFree(task->query_labels));
  PetscCall(PetscFree(task->queries_per_class));
  PetscFunctionReturn(0);
}

void bo_fewshot_split_queries(int ways, int total, const double *p, int *q)
{
  int rest = total - ways, given = 0;

  for (int j = 0; j < ways; j++) {
    q[j] = 1 + (int)floor(p[j] * rest);
    given += q[j] - 1;
  }
  /* sum floor(p_j R) <= sum p_j R = R (to rounding, and floor keeps it below R + 1) */
  for (int left = rest - given; left > 0; left--) {
    int    best = -1;
    double brem = -1;
    for (int j = 0; j < ways; j++) {
      double x = p[j] * rest, rem = x - floor(x);
      if (q[j] - 1 == (int)floor(x) && rem > brem) { best = j; brem = rem; } /* not yet topped up */
    }
    if (best < 0) break; /* p did not sum to 1 */
    q[best]++;
  }
}

/* Partial Fisher-Yates: the first m entries of v (length n) become a uniform draw without
 * replacement, in draw order. */
static void partial_shuffle(bo_rng *r, int64_t n, int64_t m, int64_t *v)
{
  for (int64_t j = 0; j < m; j++) {
    int64_t k = j + (int64_t)bo_rng_below(r, (uint64_t)(n - j)), t = v[j];
    v[j] = v[k]; v[k] = t;
  }
}

/* The first m entries of partial_shuffle(r, n, m, identity) (the same draws, the same result) without
 * the n-entry identity: positions that hold something else are kept as (key, value) pairs (at most
 * m, searched linearly: O(m^2), against O(n) to fill the identity; a class of 7,000 rows and a
 * 20-row draw was 3 % of a TIM-ADM task).  key/val: m entries of scratch each. */
static void sparse_partial_shuffle(bo_rng *r, int64_t n, int64_t m, int64_t *out, int64_t *key, int64_t *val)
{
  int64_t moved = 0;
  for (int64_t j = 0; j < m; j++) {
    const int64_t k = j + (int64_t)bo_rng_below(r, (uint64_t)(n - j));
    int64_t       at_j = j, at_k = k, slot_k = -1;
    for (int64_t e = 0; e < moved; e++) {
      if (key[e] == j) at_j = val[e];
      if (key[e] == k) at_k = val[e], slot_k = e;
    }
    out[j] = at_k; /* position j is final: later draws only touch positions > j */
    if (slot_k < 0) slot_k = moved++, key[slot_k] = k;
    val[slot_k] = at_j;
  }
}

PetscErrorCode bo_fewshot_sample(uint64_t seed, int64_t task_id, const bo_fewshot_pool *pool, int ways, int shots, int queries, double dirichlet, bo_fewshot_task *task)
{
  bo_rng   r;
  int64_t *perm, *pos, maxcount = 0;
  double  *p;
  int      off = 0;

  PetscFunctionBeginUser;
  PetscCheck(task->ways == ways && task->shots == shots && task->queries == queries, PETSC_COMM_SELF, BO_ERR_INPUT, "fewshot sample: task created for %d ways %d shots %d queries, asked for %d, %d, %d; expected the same", task->ways, task->shots, task->queries, ways, shots, queries);
  PetscCheck(ways <= pool->nclasses, PETSC_COMM_SELF, BO_ERR_INPUT, "fewshot: %d ways from a pool of %lld classes; expected ways <= classes", ways, (long long)pool->nclasses);
  PetscCheck(dirichlet >= 0 && isfinite(dirichlet), PETSC_COMM_SELF, BO_ERR_INPUT, "fewshot: Dirichlet concentration %g; expected 0 (balanced) or a finite value > 0", dirichlet);

  bo_rng_init(&r, seed, (uint64_t)task_id, BO_FEWSHOT_RNG_PURPOSE);
  /* 1. the ways */
  PetscCall(PetscMalloc1(pool->nclasses, &perm));
  for (int64_t c = 0; c < pool->nclasses; c++) perm[c] = c;
  partial_shuffle(&r, pool->nclasses, ways, perm);
  /* 2. the query split */
  PetscCall(PetscMalloc1(ways, &p));
  if (dirichlet > 0) {
    double sum = 0;
    for (int j = 0; j < ways; j++) sum += (p[j] = bo_rng_gamma(&r, dirichlet));
    for (int j = 0; j < ways; j++) p[j] = sum > 0 ? p[j] / sum : 1.0 / ways;
    bo_fewshot_split_queries(ways, ways * queries, p, task->queries_per_class);
  } else
    for (int j = 0; j < ways; j++) task->queries_per_class[j] = queries;
  PetscCall(PetscFree(p));
  /* 3. the rows of each way, support first */
  for (int j = 0; j < ways; j++) {
    int64_t c = perm[j], need = (int64_t)shots + task->queries_per_class[j];
    int32_t id = pool->class_ids ? pool->class_ids[c] : (int32_t)c;
    if (pool->count[c] < need) {
      PetscCall(PetscFree(perm));
      SETERRQ(PETSC_COMM_SELF, BO_ERR_INPUT, "fewshot: class %d has %lld rows, task %lld needs shots + queries = %d + %d; expected at least %lld rows in every sampled class", (int)id, (long long)pool->count[c], (long long)task_id, shots, task->queries_per_class[j], (long long)need);
    }
    maxcount = PetscMax(maxcount, pool->count[c]);
  }
  PetscCall(PetscMalloc1(maxcount + 2 * (int64_t)ways * (shots + queries), &pos)); /* + the sparse scratch */
  for (int j = 0; j < ways; j++) {
    int64_t c = perm[j], n = pool->count[c], m = shots + task->queries_per_class[j];
    int     qj = task->queries_per_class[j];
    if (m * m <= 4 * n) sparse_partial_shuffle(&r, n, m, pos, pos + m, pos + 2 * m);
    else {
      for (int64_t i = 0; i < n; i++) pos[i] = i;
      partial_shuffle(&r, n, m, pos);
    }
    task->class_ids[j] = pool->class_ids ? pool->class_ids[c] : (int32_t)c;
    for (int s = 0; s < shots; s++) {
      task->support_rows[j * shots + s]   = pool->rows[c][pos[s]];
      task->support_labels[j * shots + s] = j;
    }
    for (int s = 0; s < qj; s++) {
      task->query_rows[off + s]   = pool->rows[c][pos[shots + s]];
      task->query_labels[off + s] = j;
    }
    off += qj;
  }
  PetscCall(PetscFree(pos));
  PetscCall(PetscFree(perm));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- preprocessing */

static double norm2(int64_t d, const double *x)
{
  double s = 0;
  for (int64_t j = 0; j < d; j++) s += x[j] * x[j];
  return sqrt(s);
}

static double sqdist(int64_t d, const double *x, const double *y)
{
  double s = 0;
  for (int64_t j = 0; j < d; j++) {
    double t = x[j] - y[j];
    s += t * t;
  }
  return s;
}

void bo_fewshot_l2(int64_t n, int64_t d, double *x)
{
  for (int64_t i = 0; i < n; i++) {
    double nrm = norm2(d, x + i * d);
    if (nrm > 0)
      for (int64_t j = 0; j < d; j++) x[i * d + j] /= nrm;
  }
}

void bo_fewshot_cl2n(int64_t n, int64_t d, const double *mean, double *x)
{
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < d; j++) x[i * d + j] -= mean[j];
  bo_fewshot_l2(n, d, x);
}

void bo_fewshot_shift_queries(int64_t ns, int64_t nq, int64_t d, const double *zs, double *zq)
{
  if (ns <= 0 || nq <= 0) return;
  for (int64_t j = 0; j < d; j++) { /* column by column: no workspace, tasks are small */
    double ms = 0, mq = 0;
    for (int64_t i = 0; i < ns; i++) ms += zs[i * d + j];
    for (int64_t i = 0; i < nq; i++) mq += zq[i * d + j];
    double eta = ms / (double)ns - mq / (double)nq;
    for (int64_t i = 0; i < nq; i++) zq[i * d + j] += eta;
  }
}

/* ---------------------------------------------------------------- prototypes */

/* means (ways x d) of the support rows per label; every label in range, every class present. */
PetscErrorCode bo_fewshot_class_means(const char *who, int64_t ns, int64_t d, const double *zs, const int32_t *ys, int ways, double *means)
{
  int64_t *cnt;

  PetscFunctionBeginUser;
  PetscCheck(ways >= 1, PETSC_COMM_SELF, BO_ERR_INPUT, "%s: %d ways; expected at least 1", who, ways);
  PetscCall(PetscCalloc1(ways, &cnt));
  PetscCall(PetscArrayzero(means, (size_t)ways * d));
  for (int64_t i = 0; i < ns; i++) {
    int32_t c = ys[i];
    if (c < 0 || c >= ways) {
      PetscCall(PetscFree(cnt));
      SETERRQ(PETSC_COMM_SELF, BO_ERR_INPUT, "%s: support row %lld has label %d; expected 0 .. %d", who, (long long)i, (int)c, ways - 1);
    }
    cnt[c]++;
    for (int64_t j = 0; j < d; j++) means[c * d + j] += zs[i * d + j];
  }
  for (int c = 0; c < ways; c++) {
    if (!cnt[c]) {
      PetscCall(PetscFree(cnt));
      SETERRQ(PETSC_COMM_SELF, BO_ERR_INPUT, "%s: class %d has no support row; expected at least one per way", who, c);
    }
    for (int64_t j = 0; j < d; j++) means[c * d + j] /= (double)cnt[c];
  }
  PetscCall(PetscFree(cnt));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_fewshot_simpleshot(int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, int ways, int32_t *pred)
{
  double *m;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1((size_t)PetscMax(1, ways) * d + 1, &m));
  PetscCall(bo_fewshot_class_means("simpleshot", ns, d, zs, ys, ways, m));
  for (int64_t q = 0; q < nq; q++) {
    double  best = INFINITY;
    int32_t arg  = 0;
    for (int c = 0; c < ways; c++) {
      double e = sqdist(d, zq + q * d, m + c * d);
      if (e < best) { best = e; arg = c; }
    }
    pred[q] = arg;
  }
  PetscCall(PetscFree(m));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_fewshot_rectified_prototypes(int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, int ways, double temperature, PetscBool normalized, double *protos)
{
  double  *m, *mnorm, *cosv, *wsum;
  int64_t *cnt;

  PetscFunctionBeginUser;
  PetscCheck(isfinite(temperature), PETSC_COMM_SELF, BO_ERR_INPUT, "laplacianshot: temperature %g; expected a finite value", temperature);
  PetscCall(PetscMalloc1((size_t)PetscMax(1, ways) * d + 1, &m));
  PetscCall(bo_fewshot_class_means("laplacianshot", ns, d, zs, ys, ways, m));
  PetscCall(PetscMalloc3(ways, &mnorm, ways, &cosv, ways, &wsum));
  PetscCall(PetscCalloc1(ways, &cnt));
  for (int c = 0; c < ways; c++) mnorm[c] = PetscMax(norm2(d, m + c * d), 1e-8);
  PetscCall(PetscArrayzero(protos, (size_t)ways * d));
  PetscCall(PetscArrayzero(wsum, ways));
  /* X' = [S; Q]: the support rows, then the (shifted) queries */
  for (int64_t i = 0; i < ns + nq; i++) {
    const double *x  = i < ns ? zs + i * d : zq + (i - ns) * d;
    double        xn = PetscMax(norm2(d, x), 1e-8), hi, s = 0, w;
    int           pc = 0;
    for (int c = 0; c < ways; c++) {
      double dot = 0;
      for (int64_t j = 0; j < d; j++) dot += x[j] * m[c * d + j];
      cosv[c] = dot / (xn * mnorm[c]);
      if (cosv[c] > cosv[pc]) pc = c; /* ties: the lower class */
    }
    hi = temperature * cosv[0];
    for (int c = 1; c < ways; c++) hi = PetscMax(hi, temperature * cosv[c]);
    for (int c = 0; c < ways; c++) s += exp(temperature * cosv[c] - hi);
    w = exp(temperature * cosv[pc] - hi) / s; /* W_{i, pred_i}: only it enters m'_{pred_i} */
    cnt[pc]++;
    wsum[pc] += w;
    for (int64_t j = 0; j < d; j++) protos[pc * d + j] += w * x[j];
  }
  for (int c = 0; c < ways; c++) {
    double den = normalized ? wsum[c] : (double)cnt[c];
    if (!cnt[c] || !(den > 0)) PetscCall(PetscArraycpy(protos + c * d, m + c * d, d)); /* no row predicts c */
    else
      for (int64_t j = 0; j < d; j++) protos[c * d + j] /= den;
  }
  PetscCall(PetscFree(cnt));
  PetscCall(PetscFree3(mnorm, cosv, wsum));
  PetscCall(PetscFree(m));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- LaplacianShot */

PetscErrorCode bo_fewshot_knn_graph(int64_t n, int64_t d, const double *x, int knn, bo_graph *g)
{
  int64_t k = knn - 1, *nb;
  double *nd;

  PetscFunctionBeginUser;
  PetscCheck(knn >= 1 && knn <= n, PETSC_COMM_SELF, BO_ERR_INPUT, "fewshot graph: knn = %d (counting self) over %lld points; expected 1 <= knn <= points", knn, (long long)n);
  memset(g, 0, sizeof *g);
  g->comm = PETSC_COMM_SELF;
  bo_rows_partition(n, 0, 1, &g->rows);
  PetscCall(PetscMalloc1(n + 1, &g->indptr));
  PetscCall(PetscMalloc1(n * k + 1, &g->indices));
  PetscCall(PetscMalloc1(n * k + 1, &g->data));
  PetscCall(PetscMalloc2(k + 1, &nb, k + 1, &nd));
  g->indptr[0] = 0;
  for (int64_t p = 0; p < n; p++) {
    int64_t m = 0; /* nb[0..m): the best so far by (distance, index), ascending */
    for (int64_t q = 0; q < n && k > 0; q++) {
      if (q == p) continue;
      double e = sqdist(d, x + p * d, x + q * d);
      if (m == k && !(e < nd[k - 1])) continue; /* q comes later, so an equal distance loses */
      int64_t at = m < k ? m++ : k - 1;
      while (at > 0 && nd[at - 1] > e) { nd[at] = nd[at - 1]; nb[at] = nb[at - 1]; at--; }
      nd[at] = e; nb[at] = q;
    }
    for (int64_t a = 1; a < k; a++) /* columns ascending */
      for (int64_t b = a; b > 0 && nb[b - 1] > nb[b]; b--) { int64_t t = nb[b]; nb[b] = nb[b - 1]; nb[b - 1] = t; }
    for (int64_t a = 0; a < k; a++) {
      g->indices[p * k + a] = nb[a];
      g->data[p * k + a]    = 1.0f;
    }
    g->indptr[p + 1] = (p + 1) * k;
  }
  PetscCall(PetscFree2(nb, nd));
  PetscCall(bo_graph_setup_exchange(g));
  PetscFunctionReturn(0);
}

void bo_lshot_opts_default(bo_lshot_opts *o)
{
  o->lambda = 1.0; o->knn = 3; o->max_it = 20; o->tol = 1e-6; o->temperature = 10;
  o->rectify = PETSC_TRUE; o->normalized_rect = PETSC_FALSE;
}

PetscErrorCode bo_fewshot_laplacianshot(int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, int ways, const bo_lshot_opts *o, int32_t *pred, bo_lshot_stats *stats)
{
  double       *xq, *protos, *a, *y, energy;
  bo_graph      w;
  bo_rows       rows;
  bo_bound_opts bo = {.lambda = o->lambda, .max_it = o->max_it, .tol = o->tol};
  int           its;

  PetscFunctionBeginUser;
  PetscCheck(ways >= 1 && nq >= 1, PETSC_COMM_SELF, BO_ERR_INPUT, "laplacianshot: %d ways, %lld queries; expected at least one of each", ways, (long long)nq);
  PetscCheck(isfinite(o->lambda) && o->max_it >= 0 && o->tol >= 0, PETSC_COMM_SELF, BO_ERR_INPUT, "laplacianshot: lambda %g, max_it %d, tol %g; expected a finite lambda, max_it >= 0, tol >= 0", o->lambda, o->max_it, o->tol);
  PetscCheck(o->knn >= 1 && o->knn <= nq, PETSC_COMM_SELF, BO_ERR_INPUT, "laplacianshot: knn = %d (counting self) with %lld queries; expected 1 <= knn <= queries", o->knn, (long long)nq);
  PetscCall(PetscMalloc4(nq * d, &xq, (size_t)ways * d, &protos, nq * ways, &a, nq * ways, &y));
  PetscCall(PetscArraycpy(xq, zq, nq * d));
  if (o->rectify) {
    bo_fewshot_shift_queries(ns, nq, d, zs, xq);
    PetscCall(bo_fewshot_rectified_prototypes(ns, nq, d, zs, ys, xq, ways, o->temperature, o->normalized_rect, protos));
  } else PetscCall(bo_fewshot_class_means("laplacianshot", ns, d, zs, ys, ways, protos));
  for (int64_t q = 0; q < nq; q++)
    for (int c = 0; c < ways; c++) a[q * ways + c] = sqdist(d, xq + q * d, protos + c * d);
  bo_bound_softmax(nq, ways, a, y);
  PetscCall(bo_fewshot_knn_graph(nq, d, xq, o->knn, &w));
  rows = w.rows;
  PetscCall(bo_bound_run(&rows, ways, a, &w, &bo, y, &energy, &its));
  bo_bound_labels(nq, ways, y, pred);
  if (stats) { stats->iterations = its; stats->energy = energy; }
  PetscCall(bo_graph_destroy(&w));
  PetscCall(PetscFree4(xq, protos, a, y));
  PetscFunctionReturn(0);
}

double bo_fewshot_accuracy(int64_t nq, const int32_t *pred, const int32_t *truth)
{
  int64_t hit = 0;
  if (nq <= 0) return 0;
  for (int64_t i = 0; i < nq; i++) hit += pred[i] == truth[i];
  return (double)hit / (double)nq;
}

/* Exact sums of a and a^2 (bo_exactsum), so any split of the tasks over ranks or files gives the same bits. */
PetscErrorCode bo_fewshot_mean_ci(MPI_Comm comm, int64_t ntasks, int64_t local, const double *acc, double *mean, double *ci)
{
  bo_exactsum s;
  double      v[2], tot[2];

  PetscFunctionBeginUser;
  PetscCall(bo_exactsum_create(2, (double)ntasks, &s));
  for (int64_t t = 0; t < local; t++) {
    v[0] = acc[t]; v[1] = acc[t] * acc[t];
    PetscCall(bo_exactsum_add(s, v));
  }
  PetscCall(bo_exactsum_allreduce(comm, s, tot));
  PetscCall(bo_exactsum_destroy(&s));
  *mean = tot[0] / (double)ntasks;
  double var = PetscMax(0.0, tot[1] / (double)ntasks - *mean * *mean);
  *ci   = 1.96 * sqrt(var) / sqrt((double)ntasks);
  PetscFunctionReturn(0);
}
