/* fewshot.c - task `fewshot`: transductive few-shot inference over thousands of tasks.
 *
 *   task: fewshot
 *   input: fmnist-novel-pca64.h5        # features with /labels
 *   output: fewshot.h5
 *   fewshot: {method: "simpleshot,laplacianshot,slk-ms,tim-adm", ways: 5, shots: 5, queries: 15,
 *             tasks: 10000, classes: "5-9", norm: l2}
 *
 * Every rank loads the rows of the novel classes once (all of them: tasks draw random rows), then
 * takes a contiguous range of task ids.  Task t is drawn from the Philox stream keyed by (seed, t),
 * so tasks, predictions and accuracies are identical for any number of ranks.  Every method runs on
 * the same tasks; its results go under /<method>/.
 *
 * lambda tuning: `lambda: "0.1,0.3,0.7,1"` runs every method that has a lambda (laplacianshot,
 * slk-means, slk-ms) once per value, on the same tasks: its results go under
 * /<method>/lambda_<j>/ (attribute lambda), and /<method>/ gets /lambda (the grid),
 * /lambda_accuracy (mean accuracy per value) and the attributes best_lambda / best_accuracy (the
 * highest mean accuracy, ties to the smaller lambda).  Run it on validation classes, then the test
 * job with the best value, as the papers tune.
 *
 * Checkpoints: with checkpoint: {file: F}, a signal (SIGUSR1/SIGTERM) makes the ranks agree at a
 * task boundary, write which tasks are done and their results (fewshot_io.h), and exit 3; the
 * rerun (at any rank count) skips the done tasks.  `checkpoint: {every: n}` also writes every n
 * tasks per rank.
 */
#include "boundopt/checkpoint.h"
#include "boundopt/cluster.h"
#include "boundopt/dataset.h"
#include "boundopt/error.h"
#include "boundopt/fewshot.h"
#include "boundopt/fewshot_io.h"
#include "boundopt/h5.h"
#include "boundopt/memory.h"
#include "boundopt/reduce.h"
#include "boundopt/results.h"
#include "boundopt/signals.h"
#include "boundopt/stats.h"
#include "boundopt/tasks.h"
#include "boundopt/tim.h"
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { M_SIMPLESHOT, M_LAPLACIANSHOT, M_KMEANS, M_KMODES, M_SLK_MEANS, M_SLK_MS, M_TIM_GD, M_TIM_ADM, M_COUNT };
static const char *const method_names[M_COUNT] = {"simpleshot", "laplacianshot", "kmeans", "kmodes", "slk-means", "slk-ms", "tim-gd", "tim-adm"};
static const int         cluster_method[M_COUNT] = {-1, -1, BO_KMEANS, BO_KMODES, BO_SLK_MEANS, BO_SLK_MS, -1, -1};
#define MAX_LAMBDAS 32
#define SIGNAL_CHECK_STRIDE 8 /* tasks per rank between two agreements on signals */

static PetscBool uses_lambda(int m) { return m == M_LAPLACIANSHOT || m == M_SLK_MEANS || m == M_SLK_MS ? PETSC_TRUE : PETSC_FALSE; }
/* The reference defaults: LaplacianShot's fallback 1.0, SLK few-shot's 0.7 (spec sections 6, 7). */
static double default_lambda(int m) { return m == M_LAPLACIANSHOT ? 1.0 : 0.7; }

typedef struct {
  int    method;
  double lambda;
  int    lambda_index;  /* -1: the method's only run */
  char   group[64];
} run_spec;

typedef struct {
  char      methods[256], classes[256], base[PETSC_MAX_PATH_LEN], norm[8], lambdas[512], precision[16];
  PetscInt  ways, shots, queries, tasks, first, knn, iterations;
  PetscReal dirichlet, tau;
  PetscBool save_tasks, clamp, monitor;
  int       nmethods, method[M_COUNT];
  int       nlambda;
  double    lambda[MAX_LAMBDAS];
  int       nruns;
  run_spec  run[M_COUNT * MAX_LAMBDAS];
  int       nnovel;
  int32_t   novel[1024];
} fewshot_params;

typedef struct { /* the novel rows, replicated on every rank, ascending global row */
  int64_t  n, d;
  int64_t *global;  /* global row id of each */
  int32_t *label;
  float   *x;
} novel_rows;

static PetscErrorCode read_options(bo_job *job, fewshot_params *p)
{
  PetscFunctionBeginUser;
  snprintf(p->methods, sizeof p->methods, "simpleshot");
  snprintf(p->norm, sizeof p->norm, "l2");
  snprintf(p->precision, sizeof p->precision, "double");
  p->ways = 5; p->shots = 5; p->queries = 15; p->tasks = 10000; p->knn = 3; p->iterations = 0;
  p->dirichlet = 0; p->tau = 15;
  PetscOptionsBegin(job->comm, "fewshot_", "Task fewshot: transductive few-shot inference", "boundopt");
  PetscCall(PetscOptionsString("-method", "Methods, comma separated: simpleshot, laplacianshot, kmeans, kmodes, slk-means, slk-ms, tim-gd, tim-adm", "", p->methods, p->methods, sizeof p->methods, NULL));
  PetscCall(PetscOptionsInt("-ways", "Classes per task", "", p->ways, &p->ways, NULL));
  PetscCall(PetscOptionsInt("-shots", "Support rows per class", "", p->shots, &p->shots, NULL));
  PetscCall(PetscOptionsInt("-queries", "Query rows per class (mean, with -fewshot_dirichlet)", "", p->queries, &p->queries, NULL));
  PetscCall(PetscOptionsInt("-tasks", "Number of tasks", "", p->tasks, &p->tasks, NULL));
  PetscCall(PetscOptionsInt("-first", "Id of the first task: this job runs ids first .. first+tasks-1 (a slice of a job array)", "", p->first, &p->first, NULL));
  PetscCall(PetscOptionsString("-classes", "Novel classes to draw tasks from: \"5-9\" or a comma list of label ids", "", p->classes, p->classes, sizeof p->classes, NULL));
  PetscCall(PetscOptionsString("-base", "Base-class features file: its mean centres CL2N", "", p->base, p->base, sizeof p->base, NULL));
  PetscCall(PetscOptionsString("-norm", "Feature normalisation per task: none, l2 or cl2n (needs -fewshot_base)", "", p->norm, p->norm, sizeof p->norm, NULL));
  PetscCall(PetscOptionsBool("-save_tasks", "Write /tasks/support, /tasks/query and per-method predictions", "", p->save_tasks, &p->save_tasks, NULL));
  PetscCall(PetscOptionsString("-lambda", "Weight of the Laplacian term of laplacianshot, slk-means, slk-ms: one value, or a comma list to tune (empty: 1.0 for laplacianshot, 0.7 for slk-*)", "", p->lambdas, p->lambdas, sizeof p->lambdas, NULL));
  PetscCall(PetscOptionsInt("-knn", "laplacianshot, slk-*: task graph neighbours, counting the point itself", "", p->knn, &p->knn, NULL));
  PetscCall(PetscOptionsBool("-clamp", "kmeans, kmodes, slk-*: support rows keep their class (false: they move like queries, as the reference)", "", p->clamp, &p->clamp, NULL));
  PetscCall(PetscOptionsReal("-dirichlet", "Imbalanced queries: split ways*queries by Dirichlet(a 1), at least one each (0: balanced)", "", p->dirichlet, &p->dirichlet, NULL));
  PetscCall(PetscOptionsInt("-iterations", "TIM iterations (0: 1000 for tim-gd, 150 for tim-adm)", "", p->iterations, &p->iterations, NULL));
  PetscCall(PetscOptionsReal("-tau", "TIM temperature", "", p->tau, &p->tau, NULL));
  PetscCall(PetscOptionsString("-precision", "TIM-ADM arithmetic: double or single (float32, as a float32 PyTorch TIM-ADM)", "", p->precision, p->precision, sizeof p->precision, NULL));
  PetscCall(PetscOptionsBool("-monitor", "Print a progress line per checkpoint and on resume", "", p->monitor, &p->monitor, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscErrorCode parse_lambdas(bo_job *job, fewshot_params *p)
{
  PetscFunctionBeginUser;
  p->nlambda = 0;
  if (!p->lambdas[0]) PetscFunctionReturn(0); /* empty: each method's default */
  PetscCall(bo_job_parse_reals(job, "fewshot_lambda", p->lambdas, 0, MAX_LAMBDAS, p->lambda, &p->nlambda));
  for (int i = 0; i < p->nlambda; i++)
    for (int j = 0; j < i; j++) PetscCheck(p->lambda[j] != p->lambda[i], job->comm, BO_ERR_INPUT, "option -fewshot_lambda: %g twice; expected each value once", p->lambda[i]);
  PetscFunctionReturn(0);
}

/* One run per method, or per (method, lambda) when a lambda list tunes it. */
static void plan_runs(fewshot_params *p)
{
  p->nruns = 0;
  for (int q = 0; q < p->nmethods; q++) {
    int m = p->method[q];
    if (!uses_lambda(m) || p->nlambda <= 1) {
      run_spec *r = &p->run[p->nruns++];
      r->method = m; r->lambda_index = -1;
      r->lambda = uses_lambda(m) ? (p->nlambda ? p->lambda[0] : default_lambda(m)) : 0.0;
      snprintf(r->group, sizeof r->group, "/%s", method_names[m]);
      continue;
    }
    for (int j = 0; j < p->nlambda; j++) {
      run_spec *r = &p->run[p->nruns++];
      r->method = m; r->lambda = p->lambda[j]; r->lambda_index = j;
      snprintf(r->group, sizeof r->group, "/%s/lambda_%d", method_names[m], j);
    }
  }
}

static PetscErrorCode parse_lists(bo_job *job, fewshot_params *p)
{
  PetscFunctionBeginUser;
  PetscCall(bo_job_parse_names(job, "fewshot_method", p->methods, M_COUNT, method_names, M_COUNT, p->method, &p->nmethods));
  PetscCheck(p->classes[0], job->comm, BO_ERR_INPUT, "option -fewshot_classes: missing; expected the novel classes, e.g. \"5-9\" or \"5,6,7,8,9\"");
  PetscCall(bo_job_parse_ids(job, "fewshot_classes", p->classes, 1024, p->novel, &p->nnovel));
  PetscCall(parse_lambdas(job, p));
  plan_runs(p);
  PetscFunctionReturn(0);
}

static PetscErrorCode check_options(bo_job *job, const fewshot_params *p)
{
  PetscFunctionBeginUser;
  PetscCheck(p->ways >= 2 && p->shots >= 1 && p->queries >= 1, job->comm, BO_ERR_INPUT, "option -fewshot_ways/shots/queries: %d/%d/%d; expected ways >= 2, shots >= 1, queries >= 1", (int)p->ways, (int)p->shots, (int)p->queries);
  PetscCheck(p->ways <= p->nnovel, job->comm, BO_ERR_INPUT, "option -fewshot_ways: %d with %d novel classes; expected ways <= the number of novel classes", (int)p->ways, p->nnovel);
  PetscCheck(p->first >= 0, job->comm, BO_ERR_INPUT, "option -fewshot_first: %d; expected a task id >= 0", (int)p->first);
  PetscCheck(p->tasks >= 1, job->comm, BO_ERR_INPUT, "option -fewshot_tasks: %d; expected at least one task", (int)p->tasks);
  PetscCheck(p->tau > 0, job->comm, BO_ERR_INPUT, "option -fewshot_tau: %g; expected tau > 0", (double)p->tau);
  PetscCheck(!strcmp(p->precision, "double") || !strcmp(p->precision, "single"), job->comm, BO_ERR_INPUT, "option -fewshot_precision: '%s'; expected double or single", p->precision);
  PetscCheck(p->iterations >= 0, job->comm, BO_ERR_INPUT, "option -fewshot_iterations: %d; expected a positive count (0: the method's default)", (int)p->iterations);
  PetscCheck(p->dirichlet >= 0, job->comm, BO_ERR_INPUT, "option -fewshot_dirichlet: %g; expected a >= 0", (double)p->dirichlet);
  PetscCheck(p->knn >= 2, job->comm, BO_ERR_INPUT, "option -fewshot_knn: %d; expected knn >= 2 (it counts the point itself)", (int)p->knn);
  PetscCheck(!strcmp(p->norm, "none") || !strcmp(p->norm, "l2") || !strcmp(p->norm, "cl2n"), job->comm, BO_ERR_INPUT, "option -fewshot_norm: '%s'; expected none, l2 or cl2n", p->norm);
  PetscCheck(strcmp(p->norm, "cl2n") || p->base[0], job->comm, BO_ERR_INPUT, "option -fewshot_norm: cl2n without -fewshot_base; expected a base-class features file to centre on");
  PetscFunctionReturn(0);
}

static PetscBool is_novel(const fewshot_params *p, int32_t label)
{
  for (int c = 0; c < p->nnovel; c++)
    if (p->novel[c] == label) return PETSC_TRUE;
  return PETSC_FALSE;
}

/* Every rank contributes its novel rows; all ranks get all of them, in global row order. */
static PetscErrorCode gather_novel(bo_job *job, const fewshot_params *p, const bo_dataset *ds, novel_rows *nv)
{
  int64_t      local = bo_rows_local(&ds->rows), mine = 0, *counts64;
  PetscMPIInt *counts, *displs, *fcounts, *fdispls;
  int64_t     *gl;
  int32_t     *lab;
  float       *xs;

  PetscFunctionBeginUser;
  for (int64_t i = 0; i < local; i++) mine += is_novel(p, ds->labels[i]);
  PetscCall(PetscMalloc5(job->size, &counts, job->size, &displs, job->size, &fcounts, job->size, &fdispls, job->size, &counts64));
  PetscCallMPI(MPI_Allgather(&mine, 1, MPI_INT64_T, counts64, 1, MPI_INT64_T, job->comm));
  nv->n = 0;
  nv->d = ds->d;
  for (int r = 0; r < job->size; r++) {
    PetscCheck(counts64[r] * ds->d < INT32_MAX, job->comm, BO_ERR_INPUT, "%s: %lld novel rows on one rank; expected fewer than 2^31 values per rank (use more ranks)", ds->path, (long long)counts64[r]);
    counts[r] = (PetscMPIInt)counts64[r]; displs[r] = (PetscMPIInt)nv->n;
    fcounts[r] = (PetscMPIInt)(counts64[r] * ds->d); fdispls[r] = (PetscMPIInt)(nv->n * ds->d);
    nv->n += counts64[r];
  }
  PetscCall(PetscMalloc3(PetscMax(1, mine), &gl, PetscMax(1, mine), &lab, PetscMax(1, mine * ds->d), &xs));
  for (int64_t i = 0, q = 0; i < local; i++)
    if (is_novel(p, ds->labels[i])) {
      gl[q] = ds->rows.lo + i; lab[q] = ds->labels[i];
      memcpy(xs + q * ds->d, ds->x + i * ds->d, sizeof(float) * (size_t)ds->d);
      q++;
    }
  PetscCall(PetscMalloc3(PetscMax(1, nv->n), &nv->global, PetscMax(1, nv->n), &nv->label, PetscMax(1, nv->n * ds->d), &nv->x));
  PetscCallMPI(MPI_Allgatherv(gl, (PetscMPIInt)mine, MPI_INT64_T, nv->global, counts, displs, MPI_INT64_T, job->comm));
  PetscCallMPI(MPI_Allgatherv(lab, (PetscMPIInt)mine, MPI_INT32_T, nv->label, counts, displs, MPI_INT32_T, job->comm));
  PetscCallMPI(MPI_Allgatherv(xs, (PetscMPIInt)(mine * ds->d), MPI_FLOAT, nv->x, fcounts, fdispls, MPI_FLOAT, job->comm));
  PetscCall(PetscFree3(gl, lab, xs));
  PetscCall(PetscFree5(counts, displs, fcounts, fdispls, counts64));
  PetscFunctionReturn(0);
}

/* Per novel class, its global rows; a class with no row is an unknown class id. */
static PetscErrorCode build_pool(bo_job *job, const fewshot_params *p, const novel_rows *nv, int64_t **count, int64_t ***rows, bo_fewshot_pool *pool)
{
  PetscFunctionBeginUser;
  PetscCall(PetscCalloc1(p->nnovel, count));
  PetscCall(PetscCalloc1(p->nnovel, rows));
  for (int c = 0; c < p->nnovel; c++) {
    for (int64_t i = 0; i < nv->n; i++) (*count)[c] += nv->label[i] == p->novel[c];
    PetscCheck((*count)[c] > 0, job->comm, BO_ERR_INPUT, "option -fewshot_classes: class %d has no rows in %s; expected label ids present in /labels", (int)p->novel[c], job->input);
    PetscCheck((*count)[c] >= p->shots + p->queries || p->dirichlet > 0, job->comm, BO_ERR_INPUT, "%s: class %d has %lld rows; expected at least shots + queries = %d", job->input, (int)p->novel[c], (long long)(*count)[c], (int)(p->shots + p->queries));
    PetscCheck((*count)[c] >= p->shots + p->ways * p->queries - (p->ways - 1) || p->dirichlet == 0, job->comm, BO_ERR_INPUT, "%s: class %d has %lld rows; expected at least shots + ways*queries - (ways-1) = %d for imbalanced tasks", job->input, (int)p->novel[c], (long long)(*count)[c], (int)(p->shots + p->ways * p->queries - (p->ways - 1)));
    PetscCall(PetscMalloc1((*count)[c], &(*rows)[c]));
    for (int64_t i = 0, q = 0; i < nv->n; i++)
      if (nv->label[i] == p->novel[c]) (*rows)[c][q++] = nv->global[i];
  }
  pool->nclasses  = p->nnovel;
  pool->class_ids = p->novel;
  pool->count     = *count;
  pool->rows      = (const int64_t *const *)*rows;
  PetscFunctionReturn(0);
}

/* Position of a global row among the novel rows (ascending): binary search. */
static int64_t novel_index(const novel_rows *nv, int64_t global)
{
  int64_t lo = 0, hi = nv->n - 1;
  while (lo < hi) {
    int64_t mid = (lo + hi) / 2;
    if (nv->global[mid] < global) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/* The rows are random rows of the novel block (megabytes): find them all and prefetch them first,
 * so that their cache misses overlap instead of arriving one row at a time (idx: count scratch). */
static void task_features(const novel_rows *nv, int64_t count, const int64_t *rows, int64_t *idx, double *z)
{
  const int64_t d = nv->d, line = 64 / (int64_t)sizeof(float);
  for (int64_t i = 0; i < count; i++) {
    idx[i] = novel_index(nv, rows[i]);
    for (int64_t j = 0; j < d; j += line) __builtin_prefetch(nv->x + idx[i] * d + j);
  }
  for (int64_t i = 0; i < count; i++) {
    const float *src = nv->x + idx[i] * d;
    for (int64_t j = 0; j < d; j++) z[i * d + j] = src[j];
  }
}

static PetscErrorCode run_method(const run_spec *r, const fewshot_params *p, int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, double *w, int32_t *pred)
{
  PetscFunctionBeginUser;
  switch (r->method) {
  case M_SIMPLESHOT: PetscCall(bo_fewshot_simpleshot(ns, nq, d, zs, ys, zq, (int)p->ways, pred)); break;
  case M_LAPLACIANSHOT: {
    bo_lshot_opts o;
    bo_lshot_opts_default(&o);
    o.lambda = r->lambda;
    o.knn    = (int)p->knn;
    PetscCall(bo_fewshot_laplacianshot(ns, nq, d, zs, ys, zq, (int)p->ways, &o, pred, NULL));
  } break;
  case M_KMEANS: case M_KMODES: case M_SLK_MEANS: case M_SLK_MS: {
    bo_slkshot_opts o;
    bo_slkshot_opts_default(cluster_method[r->method], &o);
    if (uses_lambda(r->method)) o.lambda = r->lambda;
    o.knn   = (int)p->knn;
    o.clamp = p->clamp;
    PetscCall(bo_fewshot_slk(ns, nq, d, zs, ys, zq, (int)p->ways, &o, pred, NULL));
  } break;
  default: {
    bo_tim_opts o;
    if (r->method == M_TIM_GD) bo_tim_defaults_gd(&o); else bo_tim_defaults_adm(&o);
    o.tau = p->tau;
    if (r->method == M_TIM_ADM && !strcmp(p->precision, "single")) o.precision = BO_TIM_SINGLE;
    if (p->iterations) o.iterations = (int)p->iterations;
    PetscCall(bo_tim_init_weights(ns, d, zs, ys, p->ways, w));
    if (r->method == M_TIM_GD) PetscCall(bo_tim_gd(ns, nq, d, zs, ys, zq, p->ways, &o, w, pred, NULL, NULL));
    else PetscCall(bo_tim_adm(ns, nq, d, zs, ys, zq, p->ways, &o, w, pred, NULL, NULL));
  } break;
  }
  PetscFunctionReturn(0);
}

/* After every SIGNAL_CHECK_STRIDE tasks (and the last): agree on signals; checkpoint when
 * signalled or every checkpoint_every tasks. */
static PetscErrorCode task_boundary(bo_job *job, const fewshot_params *p, uint64_t hash, const bo_fewshot_progress *pr, int64_t round, int64_t rounds, PetscBool *interrupted)
{
  PetscBool signalled = PETSC_FALSE, periodic;

  PetscFunctionBeginUser;
  *interrupted = PETSC_FALSE;
  if (round == job->debug_signal_at && job->rank == job->size - 1) raise(SIGUSR1);
  if (round + 1 == rounds) PetscFunctionReturn(0); /* the results come next */
  periodic = job->checkpoint_every > 0 && (round + 1) % job->checkpoint_every == 0;
  if ((round + 1) % SIGNAL_CHECK_STRIDE && !periodic) PetscFunctionReturn(0);
  PetscCall(bo_signals_pending(job->comm, &signalled));
  if (job->checkpoint_file[0] && (signalled || periodic)) {
    PetscCall(bo_fewshot_checkpoint_write(job->comm, job->checkpoint_file, hash, pr));
    if (p->monitor) PetscCall(PetscPrintf(job->comm, "  fewshot checkpoint written: %s (%lld tasks per rank done)\n", job->checkpoint_file, (long long)(round + 1)));
  }
  if (signalled) {
    PetscCheck(job->checkpoint_file[0], job->comm, BO_ERR_RUNTIME, "signal %d: stopped without a checkpoint; expected checkpoint: {file: ...} to resume", bo_signals_last());
    *interrupted = PETSC_TRUE;
  }
  PetscFunctionReturn(0);
}

/* The runs' results: per run its group; per tuned method the lambda grid and the best value. */
static PetscErrorCode write_results(bo_job *job, const fewshot_params *p, const bo_fewshot_progress *pr, bo_results *res)
{
  int64_t nlocal = pr->t1 - pr->t0, nq = pr->nq;
  double *col, *grid_acc, mean[M_COUNT * MAX_LAMBDAS], ci[M_COUNT * MAX_LAMBDAS];
  int32_t *pcol = NULL;
  char     name[128];

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc2(PetscMax(1, nlocal), &col, MAX_LAMBDAS, &grid_acc));
  if (nq) PetscCall(PetscMalloc1(PetscMax(1, nlocal * nq), &pcol));
  for (int r = 0; r < p->nruns; r++) {
    const run_spec *rs = &p->run[r];
    for (int64_t t = 0; t < nlocal; t++) col[t] = pr->accuracy[t * p->nruns + r];
    snprintf(name, sizeof name, "%s/task_accuracy", rs->group);
    PetscCall(bo_h5_write_rows(res->file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, p->tasks, 1, pr->t0, pr->t1, col));
    PetscCall(bo_fewshot_mean_ci(job->comm, p->tasks, nlocal, col, &mean[r], &ci[r]));
    PetscCall(bo_h5_attr_write_double(res->file, rs->group, "mean_accuracy", mean[r]));
    PetscCall(bo_h5_attr_write_double(res->file, rs->group, "ci95", ci[r]));
    if (uses_lambda(rs->method)) PetscCall(bo_h5_attr_write_double(res->file, rs->group, "lambda", rs->lambda));
    if (nq) {
      for (int64_t t = 0; t < nlocal; t++) memcpy(pcol + t * nq, pr->predictions + (t * p->nruns + r) * nq, sizeof(int32_t) * (size_t)nq);
      snprintf(name, sizeof name, "%s/predictions", rs->group);
      PetscCall(bo_h5_write_rows(res->file, name, H5T_NATIVE_INT32, H5T_STD_I32LE, p->tasks, nq, pr->t0, pr->t1, pcol));
    }
    if (rs->lambda_index < 0) PetscCall(PetscPrintf(job->comm, "fewshot: %-13s %lld tasks %d-way %d-shot: accuracy %.2f%% +- %.2f\n", method_names[rs->method], (long long)p->tasks, (int)p->ways, (int)p->shots, 100 * mean[r], 100 * ci[r]));
    else PetscCall(PetscPrintf(job->comm, "fewshot: %-13s lambda %-8g %lld tasks %d-way %d-shot: accuracy %.2f%% +- %.2f\n", method_names[rs->method], rs->lambda, (long long)p->tasks, (int)p->ways, (int)p->shots, 100 * mean[r], 100 * ci[r]));
  }
  for (int r = 0; r < p->nruns; r++) { /* tuned methods: the grid, from the runs of lambda_0 on */
    const run_spec *rs = &p->run[r];
    if (rs->lambda_index != 0) continue;
    int    best = 0;
    hsize_t dims[1] = {(hsize_t)p->nlambda};
    for (int j = 0; j < p->nlambda; j++) {
      grid_acc[j] = mean[r + j];
      if (grid_acc[j] > grid_acc[best] || (grid_acc[j] == grid_acc[best] && p->lambda[j] < p->lambda[best])) best = j;
    }
    snprintf(name, sizeof name, "/%s/lambda", method_names[rs->method]);
    PetscCall(bo_h5_write_array(res->file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, p->lambda));
    snprintf(name, sizeof name, "/%s/lambda_accuracy", method_names[rs->method]);
    PetscCall(bo_h5_write_array(res->file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, grid_acc));
    snprintf(name, sizeof name, "/%s", method_names[rs->method]);
    PetscCall(bo_h5_attr_write_double(res->file, name, "best_lambda", p->lambda[best]));
    PetscCall(bo_h5_attr_write_double(res->file, name, "best_accuracy", grid_acc[best]));
    PetscCall(PetscPrintf(job->comm, "fewshot: %-13s best lambda %g: accuracy %.2f%%\n", method_names[rs->method], p->lambda[best], 100 * grid_acc[best]));
  }
  if (nq) {
    PetscCall(bo_h5_write_rows(res->file, "/tasks/support", H5T_NATIVE_INT64, H5T_STD_I64LE, p->tasks, pr->ns, pr->t0, pr->t1, pr->support));
    PetscCall(bo_h5_write_rows(res->file, "/tasks/query", H5T_NATIVE_INT64, H5T_STD_I64LE, p->tasks, nq, pr->t0, pr->t1, pr->query));
  }
  PetscCall(bo_h5_attr_write_string(res->file, "/", "methods", p->methods));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "ways", p->ways));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "shots", p->shots));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "queries", p->queries));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "tasks", p->tasks));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "first_task", p->first));
  /* what defines the tasks and the methods, so slices and reruns can be compared without /meta */
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "seed", job->seed));
  PetscCall(bo_h5_attr_write_string(res->file, "/", "classes", p->classes));
  PetscCall(bo_h5_attr_write_string(res->file, "/", "norm", p->norm));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "dirichlet", p->dirichlet));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "knn", p->knn));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "clamp", p->clamp));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "tim_iterations", p->iterations));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "tau", p->tau));
  PetscCall(bo_h5_attr_write_string(res->file, "/", "tim_adm_precision", p->precision));
  PetscCall(PetscFree2(col, grid_acc));
  PetscCall(PetscFree(pcol));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_fewshot(bo_job *job)
{
  fewshot_params       p = {0};
  bo_dataset           ds, base;
  bo_dataset_read_opts ro = {.check_finite = PETSC_TRUE, .need_labels = PETSC_TRUE};
  bo_results           res;
  bo_memory_plan       plan = {.task = "fewshot"};
  novel_rows           nv;
  bo_fewshot_pool      pool;
  bo_fewshot_task      task;
  bo_fewshot_progress  pr = {0};
  int64_t              n, d, *count, **rows, *idx, nlocal, rounds, done_before = 0;
  double              *mean = NULL, *zs, *zq, *w;
  int32_t             *pred;
  uint64_t             hash;
  PetscBool            stop, resumed = PETSC_FALSE, interrupted = PETSC_FALSE;

  PetscFunctionBeginUser;
  PetscCall(read_options(job, &p));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) PetscFunctionReturn(0);
  PetscCall(bo_job_require(job, "input", job->input, "a features file with /labels"));
  PetscCall(bo_job_require(job, "output", job->output, "the results file to write"));
  PetscCall(parse_lists(job, &p));
  PetscCall(check_options(job, &p));
  PetscCall(bo_dataset_probe(job->comm, job->input, &n, &d));
  if (p.base[0]) {
    int64_t nb, db;
    PetscCall(bo_dataset_probe(job->comm, p.base, &nb, &db));
    PetscCheck(db == d, job->comm, BO_ERR_INPUT, "option -fewshot_base: %s has D = %lld; expected D = %lld like %s", p.base, (long long)db, (long long)d, job->input);
  }
  int64_t ns = p.ways * p.shots, nq = p.ways * p.queries;
  pr.ntasks = p.tasks; pr.nruns = p.nruns;
  pr.t0 = p.tasks * job->rank / job->size;
  pr.t1 = p.tasks * (job->rank + 1) / job->size;
  nlocal = pr.t1 - pr.t0;
  rounds = (p.tasks + job->size - 1) / job->size; /* the largest range: every rank loops as often */
  if (p.save_tasks) { pr.ns = ns; pr.nq = nq; }
  /* The novel rows are replicated: at most all N of them on every rank. */
  bo_memory_plan_add(&plan, "features shard", bo_dataset_shard_bytes(n / job->size + BO_TILE_ROWS, d));
  bo_memory_plan_add(&plan, "novel rows (replicated)", (double)n * ((double)d * 4 + 12));
  bo_memory_plan_add(&plan, "per-task results", (double)(nlocal + 1) * (p.nruns * 8.0 + 4 + (p.save_tasks ? (double)(p.nruns * nq * 4 + (ns + nq) * 8) : 0)));
  PetscCall(bo_memory_preflight(job->comm, &plan, job->memory_limit));
  PetscCall(bo_results_create(job, job->output, &res));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(bo_dataset_read(job->comm, job->input, &ro, &ds));
  PetscCall(bo_checkpoint_job_hash(ds.identity, &hash));
  PetscCall(gather_novel(job, &p, &ds, &nv));
  if (!strcmp(p.norm, "cl2n")) {
    bo_dataset_read_opts bo = {.check_finite = PETSC_TRUE};
    PetscCall(bo_dataset_read(job->comm, p.base, &bo, &base));
    PetscCall(PetscMalloc1(d, &mean));
    PetscCall(bo_stats_column_mean(job->comm, &base.rows, d, base.x, mean));
    PetscCall(bo_dataset_destroy(&base));
  }
  PetscCall(bo_dataset_destroy(&ds));
  PetscCall(build_pool(job, &p, &nv, &count, &rows, &pool));
  PetscCall(PetscCalloc5(PetscMax(1, nlocal), &pr.done, PetscMax(1, nlocal * p.nruns), &pr.accuracy, PetscMax(1, nlocal * p.nruns * pr.nq), &pr.predictions, PetscMax(1, nlocal * pr.ns), &pr.support, PetscMax(1, nlocal * pr.nq), &pr.query));
  if (job->checkpoint_file[0] && job->restart) {
    PetscCall(bo_fewshot_checkpoint_read(job->comm, job->checkpoint_file, hash, &pr, &resumed));
    for (int64_t t = 0; t < nlocal; t++) done_before += pr.done[t];
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &done_before, 1, MPI_INT64_T, MPI_SUM, job->comm));
    if (resumed) PetscCall(PetscPrintf(job->comm, "fewshot: resuming from %s: %lld of %lld tasks done\n", job->checkpoint_file, (long long)done_before, (long long)p.tasks));
  }
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  PetscCall(bo_fewshot_task_create((int)p.ways, (int)p.shots, (int)p.queries, &task));
  PetscCall(PetscMalloc5(ns * d, &zs, nq * d, &zq, p.ways * d, &w, nq, &pred, PetscMax(ns, nq), &idx));
  for (int64_t round = 0; round < rounds && !interrupted; round++) {
    int64_t t = round; /* index within this rank's range */
    if (t < nlocal && !pr.done[t]) {
      PetscCall(bo_fewshot_sample((uint64_t)job->seed, p.first + pr.t0 + t, &pool, (int)p.ways, (int)p.shots, (int)p.queries, p.dirichlet, &task));
      task_features(&nv, ns, task.support_rows, idx, zs);
      task_features(&nv, nq, task.query_rows, idx, zq);
      if (!strcmp(p.norm, "l2")) { bo_fewshot_l2(ns, d, zs); bo_fewshot_l2(nq, d, zq); }
      if (!strcmp(p.norm, "cl2n")) { bo_fewshot_cl2n(ns, d, mean, zs); bo_fewshot_cl2n(nq, d, mean, zq); }
      for (int r = 0; r < p.nruns; r++) {
        PetscCall(run_method(&p.run[r], &p, ns, nq, d, zs, task.support_labels, zq, w, pred));
        pr.accuracy[t * p.nruns + r] = bo_fewshot_accuracy(nq, pred, task.query_labels);
        if (p.save_tasks) /* labels in the input's label space */
          for (int64_t i = 0; i < nq; i++) pr.predictions[(t * p.nruns + r) * nq + i] = task.class_ids[pred[i]];
      }
      if (p.save_tasks) {
        memcpy(pr.support + t * ns, task.support_rows, sizeof(int64_t) * (size_t)ns);
        memcpy(pr.query + t * nq, task.query_rows, sizeof(int64_t) * (size_t)nq);
      }
      pr.done[t] = 1;
    }
    PetscCall(task_boundary(job, &p, hash, &pr, round, rounds, &interrupted));
  }
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));

  if (interrupted) {
    PetscCall(PetscPrintf(job->comm, "fewshot: signal received; checkpoint %s written; rerun the job to resume (exit 3)\n", job->checkpoint_file));
    PetscCall(bo_results_discard(&res));
    job->exit_status = BO_EXIT_CHECKPOINTED;
  } else {
    PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
    PetscCall(write_results(job, &p, &pr, &res));
    PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
    PetscCall(bo_results_commit(&res, job));
    if (job->checkpoint_file[0] && !job->rank) unlink(job->checkpoint_file); /* the job is done */
  }

  PetscCall(PetscFree5(pr.done, pr.accuracy, pr.predictions, pr.support, pr.query));
  PetscCall(PetscFree5(zs, zq, w, pred, idx));
  PetscCall(bo_fewshot_task_destroy(&task));
  for (int c = 0; c < p.nnovel; c++) PetscCall(PetscFree(rows[c]));
  PetscCall(PetscFree(rows));
  PetscCall(PetscFree(count));
  PetscCall(PetscFree3(nv.global, nv.label, nv.x));
  PetscCall(PetscFree(mean));
  PetscFunctionReturn(0);
}
