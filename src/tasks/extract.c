/* extract.c - task `extract`: a trained network's penultimate layer as a features file.
 *
 *   task: extract
 *   input: jobs/data/fmnist.h5            # the rows to describe (d = the network's inputs)
 *   output: fmnist-mlp-novel.h5
 *   extract: {network: mlp-base.h5, classes: "5-9"}
 *
 * The network is task train's output (/network, mlp_io.h).  Every row of the input whose label is
 * in -extract_classes (empty: every row) becomes the row a_{L-1}(x) of the output: /features
 * (float32, N x n_{L-1}), /labels (the input's labels, int32), /label_names when the input has
 * them: the dataset.h schema that tasks fewshot, cluster and preprocess read.  With the network
 * trained on base classes (0-4) and the novel classes (5-9) extracted, task fewshot then runs on
 * features learned without the novel classes.
 *
 * Rank-count independent: each rank runs the network on its shard's 32-row tiles (mlp.h), which
 * are the same rows at any number of ranks (shards are whole 256-row tiles), then keeps the
 * selected rows; the output rows keep the input order.
 */
#include "boundopt/dataset.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/memory.h"
#include "boundopt/mlp.h"
#include "boundopt/mlp_io.h"
#include "boundopt/results.h"
#include "boundopt/tasks.h"
#include <string.h>

typedef struct {
  char    network[PETSC_MAX_PATH_LEN], classes[1024];
  int     nclasses;
  int32_t class_id[1024];
} extract_params;

static PetscErrorCode read_options(bo_job *job, extract_params *p)
{
  PetscFunctionBeginUser;
  PetscOptionsBegin(job->comm, "extract_", "Task extract: a trained network's penultimate layer as features", "boundopt");
  PetscCall(PetscOptionsString("-network", "The network: a results file of task train", "", p->network, p->network, sizeof p->network, NULL));
  PetscCall(PetscOptionsString("-classes", "Labels of the rows to extract, e.g. 5-9 (empty: every row)", "", p->classes, p->classes, sizeof p->classes, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscBool selected(const extract_params *p, int32_t label)
{
  if (!p->nclasses) return PETSC_TRUE;
  for (int q = 0; q < p->nclasses; q++)
    if (p->class_id[q] == label) return PETSC_TRUE;
  return PETSC_FALSE;
}

PetscErrorCode bo_task_extract(bo_job *job)
{
  extract_params       p = {0};
  bo_dataset           ds;
  bo_dataset_read_opts ro = {.check_finite = PETSC_TRUE};
  bo_results           res;
  bo_memory_plan       plan = {.task = "extract"};
  bo_mlp               net;
  int32_t              net_classes[255], *lab;
  int64_t              n, d, local, mine = 0, total, offset = 0;
  double              *act;
  float               *feat;
  PetscBool            stop;

  PetscFunctionBeginUser;
  PetscCall(read_options(job, &p));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) PetscFunctionReturn(0);
  PetscCall(bo_job_require(job, "input", job->input, "a features file (the rows to describe)"));
  PetscCall(bo_job_require(job, "output", job->output, "the features file to write"));
  PetscCall(bo_job_require(job, "extract_network", p.network, "a results file of task train"));
  if (p.classes[0]) PetscCall(bo_job_parse_ids(job, "extract_classes", p.classes, 1024, p.class_id, &p.nclasses));
  PetscCall(bo_mlp_read(job->comm, p.network, &net, net_classes));
  PetscCall(bo_dataset_probe(job->comm, job->input, &n, &d));
  PetscCheck(d == net.width[0], job->comm, BO_ERR_INPUT, "%s: rows of %lld values; expected %lld, the inputs of the network %s", job->input, (long long)d, (long long)net.width[0], p.network);
  PetscCheck(net.nlayers >= 2, job->comm, BO_ERR_INPUT, "%s: a network without a hidden layer; expected at least one hidden layer (its penultimate layer is the input)", p.network);
  const int64_t f = net.width[net.nlayers - 1];
  bo_memory_plan_add(&plan, "features shard", bo_dataset_shard_bytes(n / job->size + BO_TILE_ROWS, d));
  bo_memory_plan_add(&plan, "activations", (double)(n / job->size + BO_TILE_ROWS) * (double)f * 12);
  PetscCall(bo_memory_preflight(job->comm, &plan, job->memory_limit));
  PetscCall(bo_results_create(job, job->output, &res));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(bo_dataset_read(job->comm, job->input, &ro, &ds));
  PetscCheck(!p.nclasses || ds.labels, job->comm, BO_ERR_INPUT, "%s: no /labels; expected labels to select -extract_classes", job->input);
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  local = bo_rows_local(&ds.rows);
  PetscCall(PetscMalloc3(PetscMax(1, BO_MLP_TILE_ROWS * f), &act, PetscMax(1, local * f), &feat, PetscMax(1, local), &lab));
  for (int64_t lo = 0; lo < local; lo += BO_MLP_TILE_ROWS) { /* tiles aligned to the shard: global */
    const int64_t hi = PetscMin(local, lo + BO_MLP_TILE_ROWS);
    PetscBool     any = PETSC_FALSE;
    for (int64_t i = lo; i < hi; i++) any = any || selected(&p, ds.labels ? ds.labels[i] : 0);
    if (!any) continue;
    PetscCall(bo_mlp_features(&net, hi - lo, ds.x + lo * d, act));
    for (int64_t i = lo; i < hi; i++) {
      if (!selected(&p, ds.labels ? ds.labels[i] : 0)) continue;
      for (int64_t j = 0; j < f; j++) feat[mine * f + j] = (float)act[(i - lo) * f + j];
      lab[mine++] = ds.labels ? ds.labels[i] : 0;
    }
  }
  PetscCallMPI(MPI_Exscan(&mine, &offset, 1, MPI_INT64_T, MPI_SUM, job->comm));
  if (!job->rank) offset = 0;
  PetscCallMPI(MPI_Allreduce(&mine, &total, 1, MPI_INT64_T, MPI_SUM, job->comm));
  PetscCheck(total > 0, job->comm, BO_ERR_INPUT, "%s: no row has a label in -extract_classes '%s'; expected some", job->input, p.classes);
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
  PetscCall(bo_h5_write_rows(res.file, "/features", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, total, f, offset, offset + mine, feat));
  if (ds.labels) PetscCall(bo_h5_write_rows(res.file, "/labels", H5T_NATIVE_INT32, H5T_STD_I32LE, total, 1, offset, offset + mine, lab));
  if (ds.nnames) PetscCall(bo_h5_write_strings(res.file, "/label_names", ds.nnames, ds.label_names));
  char source[1024];
  snprintf(source, sizeof source, "extract: penultimate layer (%lld units) of %.400s on %.400s", (long long)f, p.network, job->input);
  PetscCall(bo_h5_attr_write_string(res.file, "/", "source", source));
  PetscCall(bo_h5_attr_write_string(res.file, "/", "classes", p.classes));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "network_layers", net.nlayers));
  int64_t trained[255];
  for (int64_t c = 0; c < net.width[net.nlayers]; c++) trained[c] = net_classes[c];
  PetscCall(bo_h5_attr_write_int64s(res.file, "/", "network_classes", net.width[net.nlayers], trained));
  PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
  PetscCall(bo_results_commit(&res, job));
  PetscCall(PetscPrintf(job->comm, "extract: %lld rows of %s -> %lld features each (penultimate layer of %s)\n", (long long)total, job->input, (long long)f, p.network));

  PetscCall(PetscFree3(act, feat, lab));
  PetscCall(bo_mlp_destroy(&net));
  PetscCall(bo_dataset_destroy(&ds));
  PetscFunctionReturn(0);
}
