/* fewshot.c - task `fewshot`: transductive few-shot inference over thousands of tasks.
 *
 *   task: fewshot
 *   input: fmnist-novel-pca64.h5        # features with /labels
 *   output: fewshot.h5
 *   fewshot: {method: "simpleshot,laplacianshot,tim-adm", ways: 5, shots: 5, queries: 15,
 *             tasks: 10000, classes: "5-9", norm: l2}
 *
 * Every rank loads the rows of the novel classes once (all of them: tasks draw random rows), then
 * takes a contiguous range of task ids.  Task t is drawn from the Philox stream keyed by (seed, t),
 * so tasks, predictions and accuracies are identical for any number of ranks.  Every method runs on
 * the same tasks; its results go under /<method>/.
 */
#include "boundopt/dataset.h"
#include "boundopt/error.h"
#include "boundopt/fewshot.h"
#include "boundopt/h5.h"
#include "boundopt/memory.h"
#include "boundopt/reduce.h"
#include "boundopt/results.h"
#include "boundopt/stats.h"
#include "boundopt/tasks.h"
#include "boundopt/tim.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { M_SIMPLESHOT, M_LAPLACIANSHOT, M_TIM_GD, M_TIM_ADM, M_COUNT };
static const char *const method_names[M_COUNT] = {"simpleshot", "laplacianshot", "tim-gd", "tim-adm"};

typedef struct {
  char      methods[256], classes[256], base[PETSC_MAX_PATH_LEN], norm[8];
  PetscInt  ways, shots, queries, tasks, first, knn, iterations;
  PetscReal lambda, dirichlet, tau;
  PetscBool save_tasks;
  int       nmethods, method[M_COUNT];
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
  p->ways = 5; p->shots = 5; p->queries = 15; p->tasks = 10000; p->knn = 3; p->iterations = 0;
  p->lambda = 1.0; p->dirichlet = 0; p->tau = 15;
  PetscOptionsBegin(job->comm, "fewshot_", "Task fewshot: transductive few-shot inference", "boundopt");
  PetscCall(PetscOptionsString("-method", "Methods, comma separated: simpleshot, laplacianshot, tim-gd, tim-adm", "", p->methods, p->methods, sizeof p->methods, NULL));
  PetscCall(PetscOptionsInt("-ways", "Classes per task", "", p->ways, &p->ways, NULL));
  PetscCall(PetscOptionsInt("-shots", "Support rows per class", "", p->shots, &p->shots, NULL));
  PetscCall(PetscOptionsInt("-queries", "Query rows per class (mean, with -fewshot_dirichlet)", "", p->queries, &p->queries, NULL));
  PetscCall(PetscOptionsInt("-tasks", "Number of tasks", "", p->tasks, &p->tasks, NULL));
  PetscCall(PetscOptionsInt("-first", "Id of the first task: this job runs ids first .. first+tasks-1 (a slice of a job array)", "", p->first, &p->first, NULL));
  PetscCall(PetscOptionsString("-classes", "Novel classes to draw tasks from: \"5-9\" or a comma list of label ids", "", p->classes, p->classes, sizeof p->classes, NULL));
  PetscCall(PetscOptionsString("-base", "Base-class features file: its mean centres CL2N", "", p->base, p->base, sizeof p->base, NULL));
  PetscCall(PetscOptionsString("-norm", "Feature normalisation per task: none, l2 or cl2n (needs -fewshot_base)", "", p->norm, p->norm, sizeof p->norm, NULL));
  PetscCall(PetscOptionsBool("-save_tasks", "Write /tasks/support, /tasks/query and per-method predictions", "", p->save_tasks, &p->save_tasks, NULL));
  PetscCall(PetscOptionsReal("-lambda", "LaplacianShot: weight of the Laplacian term", "", p->lambda, &p->lambda, NULL));
  PetscCall(PetscOptionsInt("-knn", "LaplacianShot: query graph neighbours, counting the point itself", "", p->knn, &p->knn, NULL));
  PetscCall(PetscOptionsReal("-dirichlet", "Imbalanced queries: split ways*queries by Dirichlet(a 1), at least one each (0: balanced)", "", p->dirichlet, &p->dirichlet, NULL));
  PetscCall(PetscOptionsInt("-iterations", "TIM iterations (0: 1000 for tim-gd, 150 for tim-adm)", "", p->iterations, &p->iterations, NULL));
  PetscCall(PetscOptionsReal("-tau", "TIM temperature", "", p->tau, &p->tau, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscErrorCode parse_lists(bo_job *job, fewshot_params *p)
{
  char *save, *tok, buf[256];

  PetscFunctionBeginUser;
  snprintf(buf, sizeof buf, "%s", p->methods);
  for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    int m;
    for (m = 0; m < M_COUNT; m++)
      if (!strcmp(tok, method_names[m])) break;
    PetscCheck(m < M_COUNT, job->comm, BO_ERR_INPUT, "option -fewshot_method: '%s'; expected simpleshot, laplacianshot, tim-gd or tim-adm", tok);
    PetscCheck(p->nmethods < M_COUNT, job->comm, BO_ERR_INPUT, "option -fewshot_method: '%s' twice; expected each method once", tok);
    for (int q = 0; q < p->nmethods; q++) PetscCheck(p->method[q] != m, job->comm, BO_ERR_INPUT, "option -fewshot_method: '%s' twice; expected each method once", tok);
    p->method[p->nmethods++] = m;
  }
  PetscCheck(p->nmethods > 0, job->comm, BO_ERR_INPUT, "option -fewshot_method: empty; expected at least one method");
  PetscCheck(p->classes[0], job->comm, BO_ERR_INPUT, "option -fewshot_classes: missing; expected the novel classes, e.g. \"5-9\" or \"5,6,7,8,9\"");
  PetscCall(bo_job_parse_ids(job, "fewshot_classes", p->classes, 1024, p->novel, &p->nnovel));
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
  PetscCheck(p->iterations >= 0, job->comm, BO_ERR_INPUT, "option -fewshot_iterations: %d; expected a positive count (0: the method's default)", (int)p->iterations);
  PetscCheck(p->lambda >= 0 && p->dirichlet >= 0, job->comm, BO_ERR_INPUT, "option -fewshot_lambda/dirichlet: %g/%g; expected values >= 0", (double)p->lambda, (double)p->dirichlet);
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
  PetscCheck(ds->labels, job->comm, BO_ERR_INPUT, "%s: no /labels; expected class labels to draw tasks", ds->path);
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

static void task_features(const novel_rows *nv, int64_t count, const int64_t *rows, double *z)
{
  for (int64_t i = 0; i < count; i++) {
    const float *src = nv->x + novel_index(nv, rows[i]) * nv->d;
    for (int64_t j = 0; j < nv->d; j++) z[i * nv->d + j] = src[j];
  }
}

static PetscErrorCode run_method(int m, const fewshot_params *p, int64_t ns, int64_t nq, int64_t d, const double *zs, const int32_t *ys, const double *zq, double *w, int32_t *pred)
{
  PetscFunctionBeginUser;
  switch (m) {
  case M_SIMPLESHOT: PetscCall(bo_fewshot_simpleshot(ns, nq, d, zs, ys, zq, (int)p->ways, pred)); break;
  case M_LAPLACIANSHOT: {
    bo_lshot_opts o;
    bo_lshot_opts_default(&o);
    o.lambda = p->lambda;
    o.knn    = (int)p->knn;
    PetscCall(bo_fewshot_laplacianshot(ns, nq, d, zs, ys, zq, (int)p->ways, &o, pred, NULL));
  } break;
  default: {
    bo_tim_opts o;
    if (m == M_TIM_GD) bo_tim_defaults_gd(&o); else bo_tim_defaults_adm(&o);
    o.tau = p->tau;
    if (p->iterations) o.iterations = (int)p->iterations;
    PetscCall(bo_tim_init_weights(ns, d, zs, ys, p->ways, w));
    if (m == M_TIM_GD) PetscCall(bo_tim_gd(ns, nq, d, zs, ys, zq, p->ways, &o, w, pred, NULL, NULL));
    else PetscCall(bo_tim_adm(ns, nq, d, zs, ys, zq, p->ways, &o, w, pred, NULL, NULL));
  } break;
  }
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
  int64_t              n, d, *count, **rows, t0, t1, nlocal;
  double              *mean = NULL, *acc, *zs, *zq, *w;
  int32_t             *pred, *preds = NULL;
  int64_t             *srows = NULL, *qrows = NULL;
  PetscBool            stop;

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
  /* The novel rows are replicated: at most all N of them on every rank. */
  bo_memory_plan_add(&plan, "features shard", bo_dataset_shard_bytes(n / job->size + BO_TILE_ROWS, d));
  bo_memory_plan_add(&plan, "novel rows (replicated)", (double)n * ((double)d * 4 + 12));
  PetscCall(bo_memory_preflight(job->comm, &plan, job->memory_limit));
  PetscCall(bo_results_create(job, job->output, &res));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(bo_dataset_read(job->comm, job->input, &ro, &ds));
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
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  t0 = p.tasks * job->rank / job->size;
  t1 = p.tasks * (job->rank + 1) / job->size;
  nlocal = t1 - t0;
  int64_t ns = p.ways * p.shots, nq = p.ways * p.queries;
  PetscCall(bo_fewshot_task_create((int)p.ways, (int)p.shots, (int)p.queries, &task));
  PetscCall(PetscMalloc5(PetscMax(1, nlocal * p.nmethods), &acc, ns * d, &zs, nq * d, &zq, p.ways * d, &w, nq, &pred));
  if (p.save_tasks) PetscCall(PetscMalloc3(PetscMax(1, nlocal * nq * p.nmethods), &preds, PetscMax(1, nlocal * ns), &srows, PetscMax(1, nlocal * nq), &qrows));
  for (int64_t t = t0; t < t1; t++) {
    PetscCall(bo_fewshot_sample((uint64_t)job->seed, p.first + t, &pool, (int)p.ways, (int)p.shots, (int)p.queries, p.dirichlet, &task));
    task_features(&nv, ns, task.support_rows, zs);
    task_features(&nv, nq, task.query_rows, zq);
    if (!strcmp(p.norm, "l2")) { bo_fewshot_l2(ns, d, zs); bo_fewshot_l2(nq, d, zq); }
    if (!strcmp(p.norm, "cl2n")) { bo_fewshot_cl2n(ns, d, mean, zs); bo_fewshot_cl2n(nq, d, mean, zq); }
    for (int q = 0; q < p.nmethods; q++) {
      PetscCall(run_method(p.method[q], &p, ns, nq, d, zs, task.support_labels, zq, w, pred));
      acc[q * nlocal + (t - t0)] = bo_fewshot_accuracy(nq, pred, task.query_labels);
      if (p.save_tasks) /* labels in the input's label space */
        for (int64_t i = 0; i < nq; i++) preds[(q * nlocal + (t - t0)) * nq + i] = task.class_ids[pred[i]];
    }
    if (p.save_tasks) {
      memcpy(srows + (t - t0) * ns, task.support_rows, sizeof(int64_t) * (size_t)ns);
      memcpy(qrows + (t - t0) * nq, task.query_rows, sizeof(int64_t) * (size_t)nq);
    }
  }
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
  for (int q = 0; q < p.nmethods; q++) {
    char   name[64], group[32];
    double mu = 0, ci = 0;
    snprintf(group, sizeof group, "/%s", method_names[p.method[q]]);
    snprintf(name, sizeof name, "%s/task_accuracy", group);
    PetscCall(bo_h5_write_rows(res.file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, p.tasks, 1, t0, t1, acc + q * nlocal));
    PetscCall(bo_fewshot_mean_ci(job->comm, p.tasks, nlocal, acc + q * nlocal, &mu, &ci));
    PetscCall(bo_h5_attr_write_double(res.file, group, "mean_accuracy", mu));
    PetscCall(bo_h5_attr_write_double(res.file, group, "ci95", ci));
    if (p.save_tasks) {
      snprintf(name, sizeof name, "%s/predictions", group);
      PetscCall(bo_h5_write_rows(res.file, name, H5T_NATIVE_INT32, H5T_STD_I32LE, p.tasks, nq, t0, t1, preds + q * nlocal * nq));
    }
    PetscCall(PetscPrintf(job->comm, "fewshot: %-13s %lld tasks %d-way %d-shot: accuracy %.2f%% +- %.2f\n", method_names[p.method[q]], (long long)p.tasks, (int)p.ways, (int)p.shots, 100 * mu, 100 * ci));
  }
  if (p.save_tasks) {
    PetscCall(bo_h5_write_rows(res.file, "/tasks/support", H5T_NATIVE_INT64, H5T_STD_I64LE, p.tasks, ns, t0, t1, srows));
    PetscCall(bo_h5_write_rows(res.file, "/tasks/query", H5T_NATIVE_INT64, H5T_STD_I64LE, p.tasks, nq, t0, t1, qrows));
  }
  PetscCall(bo_h5_attr_write_string(res.file, "/", "methods", p.methods));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "ways", p.ways));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "shots", p.shots));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "queries", p.queries));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "tasks", p.tasks));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "first_task", p.first));
  PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
  PetscCall(bo_results_commit(&res, job));

  if (p.save_tasks) PetscCall(PetscFree3(preds, srows, qrows));
  PetscCall(PetscFree5(acc, zs, zq, w, pred));
  PetscCall(bo_fewshot_task_destroy(&task));
  for (int c = 0; c < p.nnovel; c++) PetscCall(PetscFree(rows[c]));
  PetscCall(PetscFree(rows));
  PetscCall(PetscFree(count));
  PetscCall(PetscFree3(nv.global, nv.label, nv.x));
  PetscCall(PetscFree(mean));
  PetscFunctionReturn(0);
}
