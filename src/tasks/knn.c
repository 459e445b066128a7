/* knn.c - task `knn`: the exact kNN affinity graph of a features file.
 *
 *   task: knn
 *   input: fmnist-pca64.h5
 *   output: fmnist-knn5.h5
 *   knn: {k: 5, weights: binary, symmetrize: avg}
 *
 * k counts the point itself, as the reference codes do: k = 5 gives 4 neighbours per row (self is
 * dropped).  Weights are 1 (binary) or exp(-d^2 / (2 scale^2)) (gaussian; scale <= 0: the mean
 * kNN distance).  symmetrize: none keeps the row-wise kNN matrix, avg gives (W + W^T)/2 (an edge
 * found one way only weighs half), max gives max(W, W^T).  The search is exact and the graph is
 * identical for any number of ranks (solvers/knn.c).  Output: /graph/indptr, /graph/indices,
 * /graph/data (CSR, see graph.h) with the options as attributes of /graph.
 */
#include "boundopt/dataset.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/knn.h"
#include "boundopt/memory.h"
#include "boundopt/results.h"
#include "boundopt/tasks.h"
#include <string.h>

typedef struct {
  PetscInt    k;
  PetscBool   count_self;
  char        weights[16];
  PetscReal   scale;
  char        symmetrize[16];
  bo_knn_opts opts;
} knn_params;

static PetscErrorCode read_options(bo_job *job, knn_params *p)
{
  PetscFunctionBeginUser;
  p->k          = 5;
  p->count_self = PETSC_TRUE;
  snprintf(p->weights, sizeof p->weights, "binary");
  snprintf(p->symmetrize, sizeof p->symmetrize, "avg");
  PetscOptionsBegin(job->comm, "knn_", "Task knn: exact kNN affinity graph", "boundopt");
  PetscCall(PetscOptionsInt("-k", "Nearest neighbours per row, the point itself included (see -knn_count_self)", "", p->k, &p->k, NULL));
  PetscCall(PetscOptionsBool("-count_self", "k counts the point itself (reference semantics: k = 5 gives 4 neighbours)", "", p->count_self, &p->count_self, NULL));
  PetscCall(PetscOptionsString("-weights", "Edge weights: binary (1) or gaussian (exp(-d^2/(2 scale^2)))", "", p->weights, p->weights, sizeof p->weights, NULL));
  PetscCall(PetscOptionsReal("-scale", "Gaussian width (<= 0: the mean kNN distance)", "", p->scale, &p->scale, NULL));
  PetscCall(PetscOptionsString("-symmetrize", "none (row-wise kNN), avg ((W + W^T)/2) or max", "", p->symmetrize, p->symmetrize, sizeof p->symmetrize, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscErrorCode check_options(bo_job *job, knn_params *p, int64_t n)
{
  int self = p->count_self ? 1 : 0;

  PetscFunctionBeginUser;
  PetscCheck(p->k - self >= 1 && (int64_t)p->k < n, job->comm, BO_ERR_INPUT, "option -knn_k: %d with N = %lld; expected %d <= k < N (%s)", (int)p->k, (long long)n, 1 + self,
             self ? "k counts the point itself, so k - 1 neighbours" : "k neighbours, the point itself not counted");
  PetscCheck(!strcmp(p->weights, "binary") || !strcmp(p->weights, "gaussian"), job->comm, BO_ERR_INPUT, "option -knn_weights: '%s'; expected binary or gaussian", p->weights);
  PetscCheck(!strcmp(p->symmetrize, "none") || !strcmp(p->symmetrize, "avg") || !strcmp(p->symmetrize, "max"), job->comm, BO_ERR_INPUT, "option -knn_symmetrize: '%s'; expected none, avg or max", p->symmetrize);
  p->opts.knn        = (int)p->k;
  p->opts.count_self = p->count_self;
  p->opts.weights    = !strcmp(p->weights, "gaussian") ? BO_KNN_GAUSSIAN : BO_KNN_BINARY;
  p->opts.scale      = p->scale;
  p->opts.symmetrize = !strcmp(p->symmetrize, "none") ? BO_SYM_NONE : !strcmp(p->symmetrize, "max") ? BO_SYM_MAX : BO_SYM_AVG;
  PetscFunctionReturn(0);
}

/* Per rank: the shard, two travelling blocks (ring), the heaps and candidate lists, and the graph
 * with its symmetrisation buffers (triples out and in, merged entries, CSR, exchange slots). */
static PetscErrorCode plan_memory(bo_job *job, const knn_params *p, int64_t n, int64_t d)
{
  bo_memory_plan plan = {.task = "knn"};
  int64_t        rows = n / job->size + BO_TILE_ROWS;
  double         k    = (double)(p->k - (p->count_self ? 1 : 0));

  PetscFunctionBeginUser;
  bo_memory_plan_add(&plan, "input shard", bo_dataset_shard_bytes(rows, d));
  if (job->size > 1) bo_memory_plan_add(&plan, "ring blocks", (job->size > 3 ? 2.0 : 1.0) * (double)rows * ((double)d * sizeof(float) + sizeof(float)));
  bo_memory_plan_add(&plan, "heaps", (job->size > 1 ? 3.0 : 1.0) * (double)rows * k * 12 + (double)BO_TILE_ROWS * (BO_TILE_ROWS + 1) * 4);
  bo_memory_plan_add(&plan, "graph", (double)rows * k * (p->opts.symmetrize == BO_SYM_NONE ? 48.0 : 136.0));
  PetscCall(bo_memory_preflight(job->comm, &plan, job->memory_limit));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_knn(bo_job *job)
{
  knn_params           p = {0};
  bo_dataset           in;
  bo_dataset_read_opts ropts = {.check_finite = PETSC_TRUE};
  bo_results           res;
  bo_graph             g;
  int64_t              n = 0, d = 0, nnz, total;
  PetscBool            stop;

  PetscFunctionBeginUser;
  PetscCall(read_options(job, &p));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) PetscFunctionReturn(0);
  PetscCall(bo_job_require(job, "input", job->input, "a features file (HDF5 with /features)"));
  PetscCall(bo_job_require(job, "output", job->output, "the graph file to write"));
  PetscCall(bo_dataset_probe(job->comm, job->input, &n, &d));
  PetscCall(check_options(job, &p, n));
  PetscCall(plan_memory(job, &p, n, d));
  PetscCall(bo_results_create(job, job->output, &res));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(bo_dataset_read(job->comm, job->input, &ropts, &in));
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  PetscCall(bo_knn_build(job->comm, &in.rows, in.d, in.x, &p.opts, &g));
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
  PetscCall(bo_graph_write(res.file, &g, p.k, p.weights, p.symmetrize));
  PetscCall(bo_h5_attr_write_int64(res.file, "/graph", "count_self", p.count_self ? 1 : 0));
  PetscCall(bo_h5_attr_write_string(res.file, "/graph", "input", job->input));
  PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
  res.rank_invariant = PETSC_TRUE;
  PetscCall(bo_results_commit(&res, job));

  nnz = g.indptr[bo_rows_local(&g.rows)];
  PetscCallMPI(MPI_Allreduce(&nnz, &total, 1, MPI_INT64_T, MPI_SUM, job->comm));
  PetscCall(PetscPrintf(job->comm, "knn: %s: %lld rows, %lld edges (k = %d%s, %s", job->output, (long long)n, (long long)total, (int)p.k, p.count_self ? " with self" : "", p.weights));
  if (p.opts.weights == BO_KNN_GAUSSIAN) PetscCall(PetscPrintf(job->comm, " scale %.6g", g.scale));
  PetscCall(PetscPrintf(job->comm, ", symmetrize %s)\n", p.symmetrize));
  PetscCall(bo_graph_destroy(&g));
  PetscCall(bo_dataset_destroy(&in));
  PetscFunctionReturn(0);
}
