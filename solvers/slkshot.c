/* slkshot.c - the clustering family (K-means, K-modes, SLK-Means, SLK-MS) as transductive few-shot
 * inference with support constraints (spec section 7; contract in fewshot.h).  One task, on the
 * calling rank: the outer iterations are those of the clustering driver (slk.c) on
 * PETSC_COMM_SELF, so clustering and few-shot share one implementation of prototypes, bound
 * iterations and stopping rules. */
#include "boundopt/cluster.h"
#include "boundopt/error.h"
#include "boundopt/fewshot.h"
#include <math.h>
#include <string.h>

void bo_slkshot_opts_default(int method, bo_slkshot_opts *o)
{
  memset(o, 0, sizeof *o);
  o->method = method;
  o->lambda = method == BO_SLK_MEANS || method == BO_SLK_MS ? 0.7 : 0.0;
  o->knn = 3; o->clamp = PETSC_FALSE; o->sigma = 0;
  o->max_it = 100; o->tol = 1e-4; o->bound_max_it = 600; o->bound_tol = 1e-7;
  o->ms_max_it = 1000; o->ms_tol = 1e-5;
}

/* sigma^2 = sum over the edges of w |x_p - x_q|^2 / (5 n), in double on the task's rows. */
static double task_sigma(const bo_graph *w, int64_t n, int64_t d, const double *x)
{
  double sum = 0;
  for (int64_t p = 0; p < n; p++)
    for (int64_t e = w->indptr[p]; e < w->indptr[p + 1]; e++) {
      const double *a = x + p * d, *b = x + w->indices[e] * d;
      double        s = 0;
      for (int64_t j = 0; j < d; j++) s += (a[j] - b[j]) * (a[j] - b[j]);
      sum += (double)w->data[e] * s;
    }
  return bo_cluster_sigma_rule(sum, n, w->indptr[n], PETSC_TRUE);
}

PetscErrorCode bo_fewshot_slk(int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, int ways, const bo_slkshot_opts *o, int32_t *pred, bo_slkshot_stats *stats)
{
  int64_t          n = ns + nq;
  double          *x, *means;
  float           *xf;
  int32_t         *fixed;
  bo_graph         w;
  bo_cluster_state st;
  bo_cluster_opts  co = {0};
  PetscBool        graph = bo_cluster_uses_graph((bo_cluster_method)o->method), kernel = bo_cluster_uses_kernel((bo_cluster_method)o->method);

  PetscFunctionBeginUser;
  PetscCheck(o->method == BO_KMEANS || o->method == BO_KMODES || o->method == BO_SLK_MEANS || o->method == BO_SLK_MS, PETSC_COMM_SELF, BO_ERR_INPUT, "fewshot slk: method %d; expected kmeans, kmodes, slk-means or slk-ms", o->method);
  PetscCheck(ns >= 1 && nq >= 1 && ways >= 1, PETSC_COMM_SELF, BO_ERR_INPUT, "fewshot slk: %lld support and %lld query rows, %d ways; expected at least one of each", (long long)ns, (long long)nq, ways);
  PetscCheck(o->knn >= 2 && o->knn <= n, PETSC_COMM_SELF, BO_ERR_INPUT, "fewshot slk: knn = %d (counting self) over %lld rows; expected 2 <= knn <= rows", o->knn, (long long)n);
  PetscCheck(o->max_it >= 1 && o->bound_max_it >= 1 && o->ms_max_it >= 1 && o->tol >= 0 && o->bound_tol >= 0 && o->ms_tol >= 0 && o->lambda >= 0 && o->sigma >= 0, PETSC_COMM_SELF, BO_ERR_INPUT, "fewshot slk: max_it %d, bound_max_it %d, ms_max_it %d, lambda %g, sigma %g; expected positive counts and non-negative weights", o->max_it, o->bound_max_it, o->ms_max_it, o->lambda, o->sigma);
  PetscCall(PetscMalloc4(n * d, &x, n * d, &xf, (size_t)ways * d, &means, n, &fixed));
  PetscCall(PetscArraycpy(x, zs, ns * d));
  PetscCall(PetscArraycpy(x + ns * d, zq, nq * d));
  bo_fewshot_shift_queries(ns, nq, d, zs, x + ns * d);
  for (int64_t i = 0; i < n * d; i++) xf[i] = (float)x[i];
  PetscCall(bo_fewshot_knn_graph(n, d, x, o->knn, &w));

  co.method = (bo_cluster_method)o->method;
  co.k = ways;
  co.lambda = graph ? o->lambda : 0.0;
  co.sigma = 0;
  if (kernel) {
    co.sigma = o->sigma > 0 ? o->sigma : task_sigma(&w, n, d, x);
    PetscCheck(co.sigma > 0, PETSC_COMM_SELF, BO_ERR_INPUT, "fewshot slk: every kNN distance of the task is 0; expected distinct rows (or a given sigma)");
  }
  co.max_it = o->max_it; co.tol = o->tol;
  co.bound.max_it = o->bound_max_it; co.bound.tol = o->bound_tol;
  co.ms_max_it = o->ms_max_it; co.ms_tol = o->ms_tol;
  co.hard_means = PETSC_TRUE;          /* few-shot code: hard means, support included */
  co.on_empty = BO_ON_EMPTY_STOP;      /* reference: restore and stop */
  co.fixed = fixed; co.clamp = o->clamp; co.from_labels = PETSC_TRUE;

  /* Step 4: support class means, nearest-mean labels, support rows on their class. */
  PetscCall(bo_fewshot_class_means("fewshot slk", ns, d, zs, ys, ways, means));
  PetscCall(bo_cluster_state_create(&w.rows, d, ways, o->max_it, &st));
  for (int64_t c = 0; c < (int64_t)ways * d; c++) st.prototypes[c] = (float)means[c];
  for (int64_t i = 0; i < n; i++) fixed[i] = i < ns ? ys[i] : -1;
  PetscCall(PetscArraycpy(st.labels, ys, ns));
  /* the shifted queries: nearest support mean, ties to the lower class (SimpleShot's rule) */
  PetscCall(bo_fewshot_simpleshot(ns, nq, d, zs, ys, x + ns * d, ways, st.labels + ns));
  PetscCall(bo_cluster_run(PETSC_COMM_SELF, &w.rows, d, xf, graph ? &w : NULL, &co, &st));
  for (int64_t q = 0; q < nq; q++) pred[q] = st.labels[ns + q];
  if (stats) {
    stats->outer = st.iteration;
    stats->bound = 0;
    for (int i = 0; i < st.iteration; i++) stats->bound += st.bound_iterations[i];
    stats->energy = st.iteration ? st.energy[st.iteration - 1] : 0;
    stats->sigma = co.sigma;
    stats->stopped_empty = st.stopped_empty;
  }
  PetscCall(bo_cluster_state_destroy(&st));
  PetscCall(bo_graph_destroy(&w));
  PetscCall(PetscFree4(x, xf, means, fixed));
  PetscFunctionReturn(0);
}
