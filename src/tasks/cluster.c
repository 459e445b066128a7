/* cluster.c - task `cluster`: K-means, soft K-means, K-modes and Laplacian K-modes (SLK).
 *
 *   task: cluster
 *   input: fmnist-l2.h5
 *   output: fmnist-slk-ms.h5
 *   cluster: {method: slk-ms, k: 10, lambda: 1.3, knn: 5}
 *   checkpoint: {file: fmnist-slk.ck.h5, every: 5}
 *
 * Reads the features, builds (or loads) the kNN affinity graph when the method needs it, seeds the
 * prototypes, runs the outer iterations (solvers/slk.c) with a hook that prints -cluster_monitor
 * lines, writes checkpoints, and stops with exit status 3 after a checkpoint when SIGUSR1/SIGTERM
 * arrives.  Rerunning the same job resumes from the checkpoint (also at another rank count).
 */
#include "boundopt/cluster_io.h"
#include "boundopt/checkpoint.h"
#include "boundopt/dataset.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/kmeans.h"
#include "boundopt/knn.h"
#include "boundopt/memory.h"
#include "boundopt/metrics.h"
#include "boundopt/results.h"
#include "boundopt/signals.h"
#include "boundopt/stats.h"
#include "boundopt/tasks.h"
#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  char            method[16], means[8], init[PETSC_MAX_PATH_LEN], graph[PETSC_MAX_PATH_LEN], on_empty[16], symmetrize[8], weights[16], sigma_denom[8];
  PetscInt        k, knn, max_it, bound_max_it, ms_max_it;
  PetscReal       lambda, sigma, tol, bound_tol, ms_tol, scale;
  PetscBool       monitor;
  bo_cluster_opts opts;
} cluster_params;

typedef struct { /* what the iteration hook needs */
  bo_job        *job;
  cluster_params *p;
  uint64_t       hash;
  PetscBool      interrupted;
} hook_ctx;

static PetscErrorCode read_options(bo_job *job, cluster_params *p)
{
  PetscFunctionBeginUser;
  snprintf(p->method, sizeof p->method, "kmeans");
  snprintf(p->means, sizeof p->means, "soft");
  snprintf(p->init, sizeof p->init, "kmeans++");
  snprintf(p->on_empty, sizeof p->on_empty, "reseed");
  snprintf(p->symmetrize, sizeof p->symmetrize, "avg");
  snprintf(p->weights, sizeof p->weights, "binary");
  snprintf(p->sigma_denom, sizeof p->sigma_denom, "ref5");
  p->k = 10; p->knn = 5; p->max_it = 100; p->bound_max_it = 1000; p->ms_max_it = 1000;
  p->lambda = 1.3; p->sigma = 0; p->tol = 1e-5; p->bound_tol = 1e-6; p->ms_tol = 1e-5; p->scale = 0;
  PetscOptionsBegin(job->comm, "cluster_", "Task cluster: K-means, K-modes and Laplacian K-modes (SLK)", "boundopt");
  PetscCall(PetscOptionsString("-method", "kmeans, soft-kmeans, kmodes, slk-means, slk-ms or slk-bo", "", p->method, p->method, sizeof p->method, NULL));
  PetscCall(PetscOptionsString("-means", "Prototype update of soft-kmeans and slk-means: soft (sum y x / sum y, the SLK reference) or hard (members' mean)", "", p->means, p->means, sizeof p->means, NULL));
  PetscCall(PetscOptionsInt("-k", "Number of clusters K", "", p->k, &p->k, NULL));
  PetscCall(PetscOptionsReal("-lambda", "Weight of the Laplacian term (update softmax(-A + lambda W Y); energy uses lambda/2)", "", p->lambda, &p->lambda, NULL));
  PetscCall(PetscOptionsInt("-knn", "Neighbours of the affinity graph, counting the point itself (5: 4 real neighbours)", "", p->knn, &p->knn, NULL));
  PetscCall(PetscOptionsString("-weights", "Graph weights: binary or gaussian", "", p->weights, p->weights, sizeof p->weights, NULL));
  PetscCall(PetscOptionsReal("-scale", "Width of Gaussian graph weights (0: mean kNN distance)", "", p->scale, &p->scale, NULL));
  PetscCall(PetscOptionsString("-symmetrize", "Graph symmetrisation: avg ((W+W^T)/2), max or none", "", p->symmetrize, p->symmetrize, sizeof p->symmetrize, NULL));
  PetscCall(PetscOptionsString("-graph", "HDF5 file with /graph (from task knn): load instead of building", "", p->graph, p->graph, sizeof p->graph, NULL));
  PetscCall(PetscOptionsReal("-sigma", "Kernel width of K-modes (0: estimated from the graph, sigma^2 = sum w |xp-xq|^2 / (5 N))", "", p->sigma, &p->sigma, NULL));
  PetscCall(PetscOptionsString("-sigma_denom", "Denominator of the sigma rule: ref5 (5 N, the reference) or nnz (the number of edges)", "", p->sigma_denom, p->sigma_denom, sizeof p->sigma_denom, NULL));
  PetscCall(PetscOptionsInt("-max_it", "Outer iterations at most", "", p->max_it, &p->max_it, NULL));
  PetscCall(PetscOptionsReal("-tol", "Outer stop: |E - E_old| <= tol |E_old| (soft and SLK methods)", "", p->tol, &p->tol, NULL));
  PetscCall(PetscOptionsInt("-bound_max_it", "Bound iterations at most per outer iteration", "", p->bound_max_it, &p->bound_max_it, NULL));
  PetscCall(PetscOptionsReal("-bound_tol", "Bound stop: |E_i - E_i-1| <= tol |E_i-1|", "", p->bound_tol, &p->bound_tol, NULL));
  PetscCall(PetscOptionsInt("-ms_max_it", "Mean-shift sweeps at most (K-modes)", "", p->ms_max_it, &p->ms_max_it, NULL));
  PetscCall(PetscOptionsReal("-ms_tol", "Mean-shift stop: max|dm| < tol max|m|", "", p->ms_tol, &p->ms_tol, NULL));
  PetscCall(PetscOptionsString("-init", "Seeds: kmeans++, random, or an HDF5 file with /prototypes (else /features) K x D", "", p->init, p->init, sizeof p->init, NULL));
  PetscCall(PetscOptionsString("-on_empty", "Empty cluster: reseed (farthest point) or stop (restore and stop, as the reference)", "", p->on_empty, p->on_empty, sizeof p->on_empty, NULL));
  PetscCall(PetscOptionsName("-monitor", "Print one line per outer iteration", "", &p->monitor));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscErrorCode parse_method(bo_job *job, cluster_params *p)
{
  bo_cluster_opts *o = &p->opts;
  int              m;

  PetscFunctionBeginUser;
  for (m = 0; m < BO_NMETHODS; m++)
    if (!strcmp(p->method, bo_cluster_method_names[m])) break;
  PetscCheck(m < BO_NMETHODS, job->comm, BO_ERR_INPUT, "option -cluster_method: '%s'; expected kmeans, soft-kmeans, kmodes, slk-means, slk-ms or slk-bo", p->method);
  PetscCheck(!strcmp(p->on_empty, "reseed") || !strcmp(p->on_empty, "stop"), job->comm, BO_ERR_INPUT, "option -cluster_on_empty: '%s'; expected reseed or stop", p->on_empty);
  PetscCheck(!strcmp(p->symmetrize, "avg") || !strcmp(p->symmetrize, "max") || !strcmp(p->symmetrize, "none"), job->comm, BO_ERR_INPUT, "option -cluster_symmetrize: '%s'; expected avg, max or none", p->symmetrize);
  PetscCheck(!strcmp(p->weights, "binary") || !strcmp(p->weights, "gaussian"), job->comm, BO_ERR_INPUT, "option -cluster_weights: '%s'; expected binary or gaussian", p->weights);
  PetscCheck(!strcmp(p->sigma_denom, "ref5") || !strcmp(p->sigma_denom, "nnz"), job->comm, BO_ERR_INPUT, "option -cluster_sigma_denom: '%s'; expected ref5 or nnz", p->sigma_denom);
  PetscCheck(p->lambda >= 0, job->comm, BO_ERR_INPUT, "option -cluster_lambda: %g; expected lambda >= 0", (double)p->lambda);
  PetscCheck(p->sigma >= 0, job->comm, BO_ERR_INPUT, "option -cluster_sigma: %g; expected sigma > 0, or 0 to estimate it", (double)p->sigma);
  PetscCheck(p->max_it >= 1, job->comm, BO_ERR_INPUT, "option -cluster_max_it: %d; expected at least 1 outer iteration", (int)p->max_it);
  PetscCheck(p->bound_max_it >= 0, job->comm, BO_ERR_INPUT, "option -cluster_bound_max_it: %d; expected a cap >= 0 on the bound iterations", (int)p->bound_max_it);
  PetscCheck(p->ms_max_it >= 0, job->comm, BO_ERR_INPUT, "option -cluster_ms_max_it: %d; expected a cap >= 0 on the mean-shift sweeps", (int)p->ms_max_it);
  o->method        = (bo_cluster_method)m;
  o->k             = p->k;
  o->lambda        = p->lambda;
  o->sigma         = p->sigma;
  o->max_it        = (int)p->max_it;
  o->tol           = p->tol;
  o->bound.max_it  = (int)p->bound_max_it;
  o->bound.tol     = p->bound_tol;
  o->ms_max_it     = (int)p->ms_max_it;
  o->ms_tol        = p->ms_tol;
  PetscCheck(!strcmp(p->means, "soft") || !strcmp(p->means, "hard"), job->comm, BO_ERR_INPUT, "option -cluster_means: '%s'; expected soft or hard", p->means);
  o->hard_means    = strcmp(p->means, "hard") ? PETSC_FALSE : PETSC_TRUE;
  o->on_empty      = strcmp(p->on_empty, "stop") ? BO_ON_EMPTY_RESEED : BO_ON_EMPTY_STOP;
  PetscFunctionReturn(0);
}

static PetscErrorCode check_sizes(bo_job *job, cluster_params *p, int64_t n, int64_t d)
{
  PetscBool graph = bo_cluster_uses_graph(p->opts.method) || (bo_cluster_uses_kernel(p->opts.method) && p->sigma == 0);

  PetscFunctionBeginUser;
  PetscCheck(p->k >= 1 && p->k <= n, job->comm, BO_ERR_INPUT, "option -cluster_k: %d with N = %lld; expected 1 <= K <= N", (int)p->k, (long long)n);
  if (graph && !p->graph[0]) PetscCheck(p->knn >= 2 && p->knn < n, job->comm, BO_ERR_INPUT, "option -cluster_knn: %d with N = %lld; expected 2 <= knn < N (knn counts the point itself)", (int)p->knn, (long long)n);
  (void)d;
  PetscFunctionReturn(0);
}

static PetscErrorCode plan_memory(bo_job *job, const cluster_params *p, int64_t n, int64_t d)
{
  bo_memory_plan plan = {.task = "cluster"};
  double         rows = (double)(n / job->size + BO_TILE_ROWS), k = (double)p->k;
  PetscBool      soft = p->opts.method != BO_KMEANS && p->opts.method != BO_KMODES;

  PetscFunctionBeginUser;
  bo_memory_plan_add(&plan, "features shard", bo_dataset_shard_bytes((int64_t)rows, d));
  if (soft) bo_memory_plan_add(&plan, "Y and A", rows * k * 8 * 2);
  if (soft && bo_cluster_uses_graph(p->opts.method)) /* bound.h's workspace: two iterates, A's copy, W Y */
    bo_memory_plan_add(&plan, "bound iterates, A and W Y", rows * k * 8 * 4);
  if (bo_cluster_uses_graph(p->opts.method) || bo_cluster_uses_kernel(p->opts.method)) /* per nonzero: CSR, codes, the node's copy */
    bo_memory_plan_add(&plan, "graph and ghosts", rows * (double)p->knn * 2 * (40 + k * 8));
  bo_memory_plan_add(&plan, "prototypes", k * (double)d * 4 * 3 + k * (double)d * 16);
  if (!soft && k <= BO_KMEANS_BOUNDS_MAX_K) /* the hard passes' bounds (kmeans.h): per row, and K-means's held tile partials */
    bo_memory_plan_add(&plan, "pass bounds", rows * 20 + (p->opts.method == BO_KMEANS ? (rows / BO_TILE_ROWS + 1) * k * (double)d * 16 : 0));
  PetscCall(bo_memory_preflight(job->comm, &plan, job->memory_limit));
  PetscFunctionReturn(0);
}

/* Seeds: kmeans++, random, or a file's K x D /prototypes (else /features). */
static PetscErrorCode seed(bo_job *job, const cluster_params *p, const bo_dataset *ds, float *m)
{
  PetscFunctionBeginUser;
  if (!strcmp(p->init, "kmeans++")) PetscCall(bo_kmeans_plusplus(job->comm, &ds->rows, ds->d, ds->x, p->k, (uint64_t)job->seed, m));
  else if (!strcmp(p->init, "random")) PetscCall(bo_kmeans_random(job->comm, &ds->rows, ds->d, ds->x, p->k, (uint64_t)job->seed, m));
  else {
    hid_t      f;
    bo_h5_info info;
    PetscBool  has;
    const char *name = "/prototypes";
    PetscCall(bo_h5_open_read(job->comm, p->init, &f));
    PetscCall(bo_h5_exists(f, name, &has));
    if (!has) name = "/features";
    PetscCall(bo_h5_exists(f, name, &has));
    PetscCheck(has, job->comm, BO_ERR_INPUT, "option -cluster_init: %s has neither /prototypes nor /features; expected a K x D dataset", p->init);
    PetscCall(bo_h5_dataset_info(f, p->init, name, &info));
    PetscCheck(info.rank == 2 && (int64_t)info.dims[0] == p->k && (int64_t)info.dims[1] == ds->d && info.cls == H5T_FLOAT, job->comm, BO_ERR_INPUT, "option -cluster_init: %s%s is %lld x %lld; expected K x D = %d x %lld floats", p->init, name, (long long)info.dims[0], (long long)(info.rank > 1 ? info.dims[1] : 0), (int)p->k, (long long)ds->d);
    PetscCall(bo_h5_read_array(f, name, H5T_NATIVE_FLOAT, m));
    PetscCall(bo_h5_close(&f));
  }
  PetscFunctionReturn(0);
}

/* Refuse data whose rows are all the same point: nothing to cluster. */
static PetscErrorCode check_distinct(bo_job *job, const bo_dataset *ds)
{
  int64_t first = 0;
  float  *row0;
  double  far = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(ds->d, &row0));
  PetscCall(bo_rows_gather(job->comm, &ds->rows, ds->d, ds->x, 1, &first, row0));
  for (int64_t i = 0; i < bo_rows_local(&ds->rows) && far == 0; i++)
    for (int64_t j = 0; j < ds->d; j++) far = PetscMax(far, fabs((double)ds->x[i * ds->d + j] - row0[j]));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &far, 1, MPI_DOUBLE, MPI_MAX, job->comm));
  PetscCall(PetscFree(row0));
  PetscCheck(far > 0 || ds->n == 1, job->comm, BO_ERR_INPUT, "%s: all %lld rows are the same point; expected at least two distinct points to cluster", ds->path, (long long)ds->n);
  PetscFunctionReturn(0);
}

static PetscErrorCode build_graph(bo_job *job, const cluster_params *p, const bo_dataset *ds, bo_graph *g)
{
  bo_knn_opts ko = {.knn = (int)p->knn, .count_self = PETSC_TRUE, .scale = p->scale};

  PetscFunctionBeginUser;
  ko.weights    = strcmp(p->weights, "gaussian") ? BO_KNN_BINARY : BO_KNN_GAUSSIAN;
  ko.symmetrize = !strcmp(p->symmetrize, "avg") ? BO_SYM_AVG : !strcmp(p->symmetrize, "max") ? BO_SYM_MAX : BO_SYM_NONE;
  if (p->graph[0]) PetscCall(bo_graph_read(job->comm, p->graph, &ds->rows, g));
  else PetscCall(bo_knn_build(job->comm, &ds->rows, ds->d, ds->x, &ko, g));
  PetscCall(bo_graph_setup_exchange(g));
  PetscFunctionReturn(0);
}

/* sigma^2 = sum_{edges} w |x_p - x_q|^2 / (5 N) (reference) or / (number of edges). */
static PetscErrorCode estimate_sigma(bo_job *job, const cluster_params *p, const bo_dataset *ds, bo_graph *g, double *sigma)
{
  int64_t  nnz = g->indptr[bo_rows_local(&ds->rows)], total_nnz;
  double  *sq, *rowsum, total;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc2(PetscMax(1, nnz), &sq, PetscMax(1, bo_rows_local(&ds->rows)), &rowsum));
  PetscCall(bo_knn_edge_sqdist(g, ds->d, ds->x, sq));
  for (int64_t i = 0; i < bo_rows_local(&ds->rows); i++) {
    rowsum[i] = 0;
    for (int64_t e = g->indptr[i]; e < g->indptr[i + 1]; e++) rowsum[i] += (double)g->data[e] * sq[e];
  }
  PetscCall(bo_stats_sum(job->comm, &ds->rows, rowsum, &total));
  PetscCallMPI(MPI_Allreduce(&nnz, &total_nnz, 1, MPI_INT64_T, MPI_SUM, job->comm));
  *sigma = bo_cluster_sigma_rule(total, ds->n, total_nnz, strcmp(p->sigma_denom, "nnz") ? PETSC_TRUE : PETSC_FALSE);
  PetscCheck(*sigma > 0, job->comm, BO_ERR_INPUT, "%s: every kNN distance is 0; expected distinct neighbours (or give -cluster_sigma)", ds->path);
  PetscCall(PetscFree2(sq, rowsum));
  PetscFunctionReturn(0);
}

/* "  skipped 97.1%": the share of rows whose last pass needed one distance (hard methods, K <= 16);
 * collective: the solver keeps each rank's count, summed here only when the monitor is on */
static PetscErrorCode skipped_text(MPI_Comm comm, const cluster_params *p, const bo_cluster_state *st, char buf[32])
{
  PetscFunctionBeginUser;
  buf[0] = 0;
  if ((p->opts.method == BO_KMEANS || p->opts.method == BO_KMODES) && st->k <= BO_KMEANS_BOUNDS_MAX_K && st->n > 0) {
    int64_t skipped = st->skipped_rows;
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &skipped, 1, MPI_INT64_T, MPI_SUM, comm));
    snprintf(buf, 32, "  skipped %.1f%%", 100.0 * (double)skipped / (double)st->n);
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode iteration_hook(void *vctx, const bo_cluster_state *st, PetscBool *stop)
{
  hook_ctx *ctx = (hook_ctx *)vctx;
  bo_job   *job = ctx->job;
  PetscBool signalled;
  int       it = st->iteration - 1;

  PetscFunctionBeginUser;
  if (ctx->p->monitor) {
    char skipped[32];
    PetscCall(skipped_text(job->comm, ctx->p, st, skipped));
    PetscCall(PetscPrintf(job->comm, "  cluster %3d  energy %.12e  bound_its %4d  reseeded %lld%s%s\n", it, st->energy[it], st->bound_iterations[it], (long long)st->reseeded, skipped, st->converged ? "  converged" : ""));
  }
  if (it == job->debug_signal_at && job->rank == job->size - 1) raise(SIGUSR1);
  PetscCall(bo_signals_pending(job->comm, &signalled));
  PetscBool last     = st->converged || st->stopped_empty || st->iteration >= ctx->p->max_it ? PETSC_TRUE : PETSC_FALSE;
  PetscBool periodic = job->checkpoint_every > 0 && st->iteration % job->checkpoint_every == 0;
  if (last) PetscFunctionReturn(0); /* a signal now changes nothing: the results come next */
  if (job->checkpoint_file[0] && (signalled || periodic)) {
    PetscCall(bo_cluster_checkpoint_write(job->comm, job->checkpoint_file, ctx->hash, st));
    if (ctx->p->monitor) PetscCall(PetscPrintf(job->comm, "  cluster checkpoint written: %s (iteration %d)\n", job->checkpoint_file, st->iteration));
  }
  if (signalled) {
    PetscCheck(job->checkpoint_file[0], job->comm, BO_ERR_RUNTIME, "signal %d: stopped without a checkpoint; expected checkpoint: {file: ...} to resume", bo_signals_last());
    ctx->interrupted = PETSC_TRUE;
    *stop            = PETSC_TRUE;
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode write_results(bo_job *job, const cluster_params *p, const bo_dataset *ds, const bo_cluster_state *st, bo_results *res)
{
  int64_t *sizes;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(p->k, &sizes));
  PetscCall(bo_cluster_sizes(job->comm, st, sizes));
  PetscCall(bo_cluster_results_write(res->file, st, sizes));
  PetscCall(bo_h5_attr_write_string(res->file, "/", "method", p->method));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "k", p->k));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "lambda", bo_cluster_uses_graph(p->opts.method) ? p->lambda : 0.0));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "sigma", p->opts.sigma));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "knn", p->knn));
  if (ds->labels) {
    int64_t *counts;
    double   nmi, nmig, acc;
    PetscCall(PetscMalloc1(p->k * ds->nclasses, &counts));
    PetscCall(bo_contingency(job->comm, bo_rows_local(&ds->rows), st->labels, ds->labels, p->k, ds->nclasses, counts));
    PetscCall(bo_metrics_nmi(p->k, ds->nclasses, counts, &nmi, &nmig));
    PetscCall(bo_metrics_acc(p->k, ds->nclasses, counts, &acc));
    PetscCall(bo_h5_attr_write_double(res->file, "/", "nmi", nmi));
    PetscCall(bo_h5_attr_write_double(res->file, "/", "nmi_geometric", nmig));
    PetscCall(bo_h5_attr_write_double(res->file, "/", "acc", acc));
    PetscCall(PetscPrintf(job->comm, "cluster: %s K=%d: %d iterations%s, NMI %.4f (geometric %.4f), ACC %.4f, energy %.10g\n", p->method, (int)p->k, st->iteration, st->converged ? " (converged)" : "", nmi, nmig, acc, st->energy[st->iteration - 1]));
    PetscCall(PetscFree(counts));
  } else PetscCall(PetscPrintf(job->comm, "cluster: %s K=%d: %d iterations%s, energy %.10g\n", p->method, (int)p->k, st->iteration, st->converged ? " (converged)" : "", st->energy[st->iteration - 1]));
  PetscCall(PetscFree(sizes));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_cluster(bo_job *job)
{
  cluster_params       p = {0};
  bo_dataset           ds;
  bo_dataset_read_opts ro = {.check_finite = PETSC_TRUE};
  bo_graph             g  = {0};
  bo_results           res;
  bo_cluster_state     st;
  hook_ctx             hc = {.job = job, .p = &p};
  int64_t              n, d;
  PetscBool            stop, resumed = PETSC_FALSE, graph;

  PetscFunctionBeginUser;
  PetscCall(read_options(job, &p));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) PetscFunctionReturn(0);
  PetscCall(bo_job_require(job, "input", job->input, "a features file (HDF5 with /features)"));
  PetscCall(bo_job_require(job, "output", job->output, "the results file to write"));
  PetscCall(parse_method(job, &p));
  PetscCall(bo_dataset_probe(job->comm, job->input, &n, &d));
  PetscCall(check_sizes(job, &p, n, d));
  PetscCall(plan_memory(job, &p, n, d));
  PetscCall(bo_results_create(job, job->output, &res));
  graph = bo_cluster_uses_graph(p.opts.method) || (bo_cluster_uses_kernel(p.opts.method) && p.sigma == 0) ? PETSC_TRUE : PETSC_FALSE;

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(bo_dataset_read(job->comm, job->input, &ro, &ds));
  PetscCall(check_distinct(job, &ds));
  PetscCall(bo_checkpoint_job_hash(ds.identity, &hc.hash));
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  if (graph) PetscCall(build_graph(job, &p, &ds, &g));
  if (bo_cluster_uses_kernel(p.opts.method) && p.sigma == 0) PetscCall(estimate_sigma(job, &p, &ds, &g, &p.opts.sigma));
  PetscCall(bo_cluster_state_create(&ds.rows, d, p.k, p.opts.max_it, &st));
  if (job->checkpoint_file[0] && job->restart) {
    PetscBool soft = p.opts.method != BO_KMEANS && p.opts.method != BO_KMODES;
    PetscCall(bo_cluster_checkpoint_read(job->comm, job->checkpoint_file, hc.hash, &st, soft, &resumed));
    if (resumed) PetscCall(PetscPrintf(job->comm, "cluster: resuming from %s at iteration %d\n", job->checkpoint_file, st.iteration));
  }
  if (!resumed) PetscCall(seed(job, &p, &ds, st.prototypes));
  p.opts.hook     = iteration_hook;
  p.opts.hook_ctx = &hc;
  PetscCall(bo_cluster_run(job->comm, &ds.rows, d, ds.x, bo_cluster_uses_graph(p.opts.method) ? &g : NULL, &p.opts, &st));
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));

  if (hc.interrupted) {
    PetscCall(PetscPrintf(job->comm, "cluster: signal received; checkpoint %s written at iteration %d; rerun the job to resume (exit 3)\n", job->checkpoint_file, st.iteration));
    PetscCall(bo_results_discard(&res));
    job->exit_status = BO_EXIT_CHECKPOINTED;
  } else {
    PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
    PetscCall(write_results(job, &p, &ds, &st, &res));
    PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
    PetscCall(bo_results_commit(&res, job));
    if (job->checkpoint_file[0] && !job->rank) unlink(job->checkpoint_file); /* the job is done */
  }
  PetscCall(bo_cluster_state_destroy(&st));
  if (graph) PetscCall(bo_graph_destroy(&g));
  PetscCall(bo_dataset_destroy(&ds));
  PetscFunctionReturn(0);
}
