/* slk.c - the clustering driver: outer block-coordinate iterations of the K-means / K-modes /
 * Laplacian K-modes family (see cluster.h). */
#include "boundopt/cluster.h"
#include "boundopt/error.h"
#include "boundopt/kmeans.h"
#include "boundopt/stats.h"
#include <math.h>
#include <string.h>

const char *const bo_cluster_method_names[BO_NMETHODS] = {"kmeans", "soft-kmeans", "kmodes", "slk-means", "slk-ms", "slk-bo"};

PetscBool bo_cluster_uses_graph(bo_cluster_method m) { return m == BO_SLK_MEANS || m == BO_SLK_MS || m == BO_SLK_BO ? PETSC_TRUE : PETSC_FALSE; }
PetscBool bo_cluster_uses_kernel(bo_cluster_method m) { return m == BO_KMODES || m == BO_SLK_MS || m == BO_SLK_BO ? PETSC_TRUE : PETSC_FALSE; }
static PetscBool is_hard(bo_cluster_method m) { return m == BO_KMEANS || m == BO_KMODES ? PETSC_TRUE : PETSC_FALSE; }

PetscErrorCode bo_cluster_state_create(const bo_rows *rows, int64_t d, int64_t k, int max_it, bo_cluster_state *st)
{
  int64_t local = bo_rows_local(rows);

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(st, sizeof *st));
  st->n = rows->n; st->d = d; st->k = k; st->rows = *rows;
  PetscCall(PetscCalloc1(k * d, &st->prototypes));
  PetscCall(PetscCalloc1(PetscMax(1, local), &st->labels));
  PetscCall(PetscCalloc2(PetscMax(1, max_it), &st->energy, PetscMax(1, max_it), &st->bound_iterations));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_cluster_state_destroy(bo_cluster_state *st)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree(st->prototypes));
  PetscCall(PetscFree(st->labels));
  PetscCall(PetscFree(st->y));
  PetscCall(PetscFree2(st->energy, st->bound_iterations));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_cluster_sizes(MPI_Comm comm, const bo_cluster_state *st, int64_t *sizes)
{
  PetscFunctionBeginUser;
  PetscCall(bo_stats_class_counts(comm, bo_rows_local(&st->rows), st->labels, st->k, sizes));
  PetscFunctionReturn(0);
}

double bo_cluster_sigma_rule(double sum, int64_t n, int64_t nnz, PetscBool ref5)
{
  double denom = ref5 ? 5.0 * (double)n : (double)nnz;
  return denom > 0 && sum > 0 ? sqrt(sum / denom) : 0.0;
}

/* Step 1: the prototypes of this outer iteration. */
static PetscErrorCode update_prototypes(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const bo_kmeans_xcache *xc, const bo_cluster_opts *o, bo_cluster_state *st, double *weight, int *sweeps)
{
  int64_t   k = o->k, local = bo_rows_local(rows);
  int       it = st->iteration;
  PetscBool update = it > 0 || o->from_labels; /* else the seeds are the first prototypes */

  PetscFunctionBeginUser;
  *sweeps = 0;
  switch (o->method) {
  case BO_KMEANS:
    if (update) PetscCall(bo_kmeans_means_cached(comm, rows, d, x, xc, k, st->labels, NULL, st->prototypes, weight));
    break;
  case BO_SOFT_KMEANS:
  case BO_SLK_MEANS:
    if (update) PetscCall(bo_kmeans_means_cached(comm, rows, d, x, xc, k, st->labels, o->hard_means || it == 0 ? NULL : st->y, st->prototypes, weight));
    break;
  case BO_KMODES:
  case BO_SLK_MS:
    if (!update) { /* the seeds' clusters, then their modes */
      double *mind;
      PetscCall(PetscMalloc1(PetscMax(1, local), &mind));
      PetscCall(bo_kmeans_assign(rows, d, x, k, st->prototypes, st->labels, mind));
      PetscCall(PetscFree(mind));
    }
    PetscCall(bo_kmodes_meanshift(comm, rows, d, x, k, st->labels, o->sigma, o->ms_max_it, o->ms_tol, st->prototypes, sweeps));
    break;
  case BO_SLK_BO:
    if (it > 0) { /* the row of largest y per cluster, ties: lowest row */
      double  *col, value;
      int64_t *rowid;
      PetscCall(PetscMalloc2(PetscMax(1, local), &col, k, &rowid));
      for (int64_t c = 0; c < k; c++) {
        for (int64_t i = 0; i < local; i++) col[i] = st->y[i * k + c];
        PetscCall(bo_rows_argmax(comm, rows, col, &rowid[c], &value));
      }
      PetscCall(bo_rows_gather(comm, rows, d, x, k, rowid, st->prototypes));
      PetscCall(PetscFree2(col, rowid));
    }
    break;
  default:
    break;
  }
  PetscFunctionReturn(0);
}

/* Kernel costs from squared distances: a = -exp(-a / (2 sigma^2)). */
static void kernel_costs(int64_t count, double sigma, double *a)
{
  double inv = 1.0 / (2.0 * sigma * sigma);
  for (int64_t i = 0; i < count; i++) a[i] = -exp(-a[i] * inv);
}

/* Step 4b: every empty cluster gets the row farthest from its own prototype (distinct rows).  A
 * row taken from a cluster of one empties that cluster in turn, so the sizes are kept up to date
 * and the scan repeats until no cluster is empty (each pass uses a new row: at most n passes). */
static PetscErrorCode reseed_empty(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const bo_cluster_opts *o, bo_cluster_state *st, const double *far, PetscBool *any_empty)
{
  int64_t     k = o->k, local = bo_rows_local(rows), *sizes, row;
  double     *score, value;
  PetscMPIInt size;
  PetscBool   again = PETSC_TRUE;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCall(PetscMalloc2(k, &sizes, PetscMax(1, local), &score));
  PetscCall(bo_cluster_sizes(comm, st, sizes));
  PetscCall(PetscArraycpy(score, far, local));
  *any_empty = PETSC_FALSE;
  for (int64_t pass = 0; again && pass <= rows->n; pass++) {
    again = PETSC_FALSE;
    for (int64_t c = 0; c < k; c++) {
      if (sizes[c] > 0) continue;
      *any_empty = PETSC_TRUE;
      if (o->on_empty == BO_ON_EMPTY_STOP) break;
      PetscCall(bo_rows_argmax(comm, rows, score, &row, &value));
      PetscCheck(value >= 0, comm, BO_ERR_RUNTIME, "cluster: no row left to re-seed cluster %lld; expected K <= N (internal error)", (long long)c);
      PetscCall(bo_rows_gather(comm, rows, d, x, 1, &row, st->prototypes + c * d));
      int32_t old = -1;
      if (row >= rows->lo && row < rows->hi) {
        int64_t i     = row - rows->lo;
        old           = st->labels[i];
        score[i]      = -1; /* never picked twice */
        st->labels[i] = (int32_t)c;
        if (st->y)
          for (int64_t q = 0; q < k; q++) st->y[i * k + q] = q == c ? 1.0 : 0.0;
      }
      PetscCallMPI(MPI_Bcast(&old, 1, MPI_INT32_T, bo_rows_owner(rows->n, size, row), comm));
      sizes[old]--;
      sizes[c]++;
      if (!sizes[old]) again = PETSC_TRUE;
      st->reseeded++;
    }
    if (*any_empty && o->on_empty == BO_ON_EMPTY_STOP) break;
  }
  PetscCall(PetscFree2(sizes, score));
  PetscFunctionReturn(0);
}

/* |x_i - m_c|^2 of one float row against one prototype, summed in double. */
static double row_sqdist(int64_t d, const float *xi, const float *m)
{
  double s = 0;
  for (int64_t j = 0; j < d; j++) s += ((double)xi[j] - m[j]) * ((double)xi[j] - m[j]);
  return s;
}

/* Support rows (o->fixed): the hard label of a clamped row, and its distance to that prototype. */
static void clamp_hard(int64_t local, int64_t d, const float *x, const bo_cluster_opts *o, bo_cluster_state *st, double *far)
{
  for (int64_t i = 0; i < local; i++) {
    if (o->fixed[i] < 0 || st->labels[i] == o->fixed[i]) continue;
    st->labels[i] = o->fixed[i];
    far[i]        = row_sqdist(d, x + i * d, st->prototypes + (int64_t)o->fixed[i] * d);
  }
}

/* Support rows start one-hot; clamped ones get a cost on every other class that keeps them so. */
static void fix_soft(int64_t local, int64_t k, const bo_cluster_opts *o, double clamp_cost, double *a, double *y)
{
  for (int64_t i = 0; i < local; i++) {
    if (o->fixed[i] < 0) continue;
    for (int64_t c = 0; c < k; c++) {
      y[i * k + c] = c == o->fixed[i] ? 1.0 : 0.0;
      if (o->clamp && c != o->fixed[i]) a[i * k + c] = clamp_cost;
    }
  }
}

static PetscErrorCode count_changes(MPI_Comm comm, int64_t local, const int32_t *a, const int32_t *b, int64_t *changes)
{
  int64_t mine = 0;

  PetscFunctionBeginUser;
  for (int64_t i = 0; i < local; i++) mine += a[i] != b[i];
  PetscCallMPI(MPI_Allreduce(&mine, changes, 1, MPI_INT64_T, MPI_SUM, comm));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_cluster_run(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, bo_graph *w, const bo_cluster_opts *o, bo_cluster_state *st)
{
  int64_t       k = o->k, local = bo_rows_local(rows), changes;
  PetscBool     hard = is_hard(o->method), kernel = bo_cluster_uses_kernel(o->method), any_empty = PETSC_FALSE, stop = PETSC_FALSE;
  double       *a = NULL, *far, *weight, energy, *prev_y = NULL;
  float        *prev_protos;
  int32_t      *prev_labels;
  bo_bound_opts bound = o->bound;
  bo_bound_work bwork = {0}; /* the bound iterations' buffers, made once for all outer iterations */
  /* K-means: one pass over X per iteration assigns and sums the next means (bo_kmeans_assign_sums) */
  PetscBool        fused = o->method == BO_KMEANS && !(o->fixed && o->clamp) ? PETSC_TRUE : PETSC_FALSE, have_sums = PETSC_FALSE;
  /* methods whose prototypes are means: max |x| (the exact sums' bound) computed once, not per call */
  PetscBool        means = o->method == BO_KMEANS || o->method == BO_SOFT_KMEANS || o->method == BO_SLK_MEANS ? PETSC_TRUE : PETSC_FALSE;
  bo_kmeans_xcache xc   = {0};
  bo_kmeans_bounds kb   = {0}; /* hard passes skip the products a row provably does not need */
  double          *sums = NULL, xx = 0; /* xx: sum of |x_i|^2, the fused passes' energy from their sums */

  PetscFunctionBeginUser;
  PetscCheck(!bo_cluster_uses_graph(o->method) || w, comm, BO_ERR_RUNTIME, "cluster: method %s without a graph; expected one (internal error)", bo_cluster_method_names[o->method]);
  bound.lambda = o->lambda;
  if (!hard && bo_cluster_uses_graph(o->method)) PetscCall(bo_bound_work_create(w, k, BO_SHARE_NODE, &bwork));
  double clamp_cost = BO_CLUSTER_CLAMP_COST;
  if (o->fixed && o->clamp && !hard && w) {
    double wmax;
    PetscCall(bo_graph_max_row_sum(w, &wmax));
    clamp_cost += fabs(o->lambda) * wmax;
  }
  if (!hard && !st->y) PetscCall(PetscCalloc1(PetscMax(1, local * k), &st->y));
  if (!hard) PetscCall(PetscMalloc1(PetscMax(1, local * k), &a));
  PetscCall(PetscMalloc4(PetscMax(1, local), &far, k, &weight, k * d, &prev_protos, PetscMax(1, local), &prev_labels));
  PetscCall(PetscArrayzero(far, local)); /* fused K-means fills it only when re-seeding needs it */
  if (!hard && o->on_empty == BO_ON_EMPTY_STOP) PetscCall(PetscMalloc1(PetscMax(1, local * k), &prev_y));
  if (hard) PetscCall(bo_kmeans_bounds_create(rows, d, k, &kb));
  if (means) PetscCall(bo_kmeans_xcache_create(comm, rows, d, x, &xc));
  if (fused) {
    PetscCall(PetscMalloc1(k * d, &sums));
    PetscCall(bo_stats_sum(comm, rows, xc.sqnorm, &xx));
  }
  while (st->iteration < o->max_it && !stop) {
    int it = st->iteration, sweeps;
    PetscCall(PetscArraycpy(prev_protos, st->prototypes, k * d));
    PetscCall(PetscArraycpy(prev_labels, st->labels, local));
    if (prev_y) PetscCall(PetscArraycpy(prev_y, st->y, local * k));
    if (have_sums) { /* the means of the last pass's labels, summed during that pass: the same bits */
      bo_kmeans_means_from_sums(k, d, sums, weight, st->prototypes);
      sweeps = 0;
    } else PetscCall(update_prototypes(comm, rows, d, x, means ? &xc : NULL, o, st, weight, &sweeps));
    st->bound_iterations[it] = sweeps;
    if (hard) { /* steps 2-3 fused: labels and the distance to the chosen prototype */
      /* K-means wants no per-row distance: rows whose bounds prove their label are not read, the
       * energy comes from the sums, and the distances only when a cluster is empty (re-seeding) */
      if (fused) PetscCall(bo_kmeans_assign_sums(comm, rows, d, x, &xc, k, st->prototypes, st->labels, NULL, sums, weight, &kb));
      else PetscCall(bo_kmeans_assign_bounded(rows, d, x, NULL, k, st->prototypes, st->labels, far, &kb));
      st->skipped_rows = kb.skipped; /* this rank's; a monitor sums them (no reduction when nobody looks) */
      have_sums = fused;
      if (o->fixed && o->clamp) clamp_hard(local, d, x, o, st, far);
      double *cost = far;
      if (kernel) { /* energy -kappa, but re-seeding still wants the distance */
        double *kc;
        PetscCall(PetscMalloc1(PetscMax(1, local), &kc));
        for (int64_t i = 0; i < local; i++) kc[i] = far[i];
        kernel_costs(local, o->sigma, kc);
        PetscCall(bo_stats_sum(comm, rows, kc, &energy));
        PetscCall(PetscFree(kc));
      } else if (fused) {
        energy = bo_kmeans_energy_from_sums(k, d, st->prototypes, sums, weight, xx);
        PetscBool empty = PETSC_FALSE;
        for (int64_t c = 0; c < k; c++) empty = empty || !(weight[c] > 0) ? PETSC_TRUE : PETSC_FALSE;
        if (empty) { /* re-seeding picks the row farthest from its prototype: one full pass for the distances */
          int32_t *same;
          PetscCall(PetscMalloc1(PetscMax(1, local), &same));
          PetscCall(bo_kmeans_assign_cached(rows, d, x, &xc, k, st->prototypes, same, far)); /* labels: st->labels again */
          PetscCall(PetscFree(same));
        }
      } else PetscCall(bo_stats_sum(comm, rows, cost, &energy));
    } else {
      PetscCall(bo_kmeans_sqdist(rows, d, x, k, st->prototypes, a));
      if (kernel) kernel_costs(local * k, o->sigma, a);
      bo_bound_softmax(local, k, a, st->y);
      if (o->fixed) fix_soft(local, k, o, clamp_cost, a, st->y);
      if (bo_cluster_uses_graph(o->method)) {
        int bits;
        PetscCall(bo_bound_run_work(rows, k, a, &bwork, &bound, st->y, &energy, &bits));
        st->bound_iterations[it] = bits;
      } else {
        double amax = 0;
        for (int64_t i = 0; i < local * k; i++) amax = PetscMax(amax, fabs(a[i]));
        PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &amax, 1, MPI_DOUBLE, MPI_MAX, comm));
        PetscCall(bo_bound_energy(comm, rows, k, a, st->y, NULL, 0.0, amax, 0.0, &energy));
      }
      bo_bound_labels(local, k, st->y, st->labels);
      for (int64_t i = 0; i < local; i++) /* distance of each row to its prototype, for re-seeding */
        far[i] = row_sqdist(d, x + i * d, st->prototypes + (int64_t)st->labels[i] * d);
    }
    st->energy[it] = energy;
    int64_t reseeded = st->reseeded;
    PetscCall(reseed_empty(comm, rows, d, x, o, st, far, &any_empty));
    if (st->reseeded != reseeded) have_sums = PETSC_FALSE; /* labels moved: the sums are stale */
    if (any_empty && o->on_empty == BO_ON_EMPTY_STOP) { /* the reference: restore and stop */
      st->stopped_empty = PETSC_TRUE;
      if (it > 0) { /* the state of the previous iteration, which stays the last one reported */
        PetscCall(PetscArraycpy(st->prototypes, prev_protos, k * d));
        PetscCall(PetscArraycpy(st->labels, prev_labels, local));
        if (prev_y) PetscCall(PetscArraycpy(st->y, prev_y, local * k));
        break;
      } /* at the first iteration there is nothing before: keep the seeds' assignment */
    }
    PetscCall(count_changes(comm, local, st->labels, prev_labels, &changes));
    st->iteration++;
    if (hard) st->converged = it > 0 && changes == 0 && !any_empty ? PETSC_TRUE : PETSC_FALSE;
    else st->converged = it > 0 && fabs(energy - st->energy[it - 1]) <= o->tol * fabs(st->energy[it - 1]) ? PETSC_TRUE : PETSC_FALSE;
    if (o->hook) PetscCall(o->hook(o->hook_ctx, st, &stop));
    if (st->converged || st->stopped_empty) stop = PETSC_TRUE;
  }
  PetscCall(bo_bound_work_destroy(&bwork));
  PetscCall(PetscFree(a));
  PetscCall(PetscFree(prev_y));
  PetscCall(PetscFree(sums));
  if (means) PetscCall(bo_kmeans_xcache_destroy(&xc));
  if (hard) PetscCall(bo_kmeans_bounds_destroy(&kb));
  PetscCall(PetscFree4(far, weight, prev_protos, prev_labels));
  PetscFunctionReturn(0);
}
