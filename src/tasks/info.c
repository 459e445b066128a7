/* info.c - task `info`: what a features file holds.
 *
 *   task: info
 *   input: fmnist.h5
 *   output: fmnist-info.h5     # optional: the summary as attributes of this file's root
 *
 * Prints N, D, the classes with their counts, min/max/mean row norm and the NaN/Inf count, on
 * rank 0.  Unlike computing tasks it reads non-finite values without refusing them: it counts them.
 */
#include "boundopt/dataset.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/memory.h"
#include "boundopt/results.h"
#include "boundopt/stats.h"
#include "boundopt/tasks.h"

static PetscErrorCode print_summary(const bo_job *job, const bo_dataset *ds, const bo_row_stats *s, const int64_t *counts)
{
  PetscFunctionBeginUser;
  PetscCall(PetscPrintf(job->comm, "info: %s\n", ds->path));
  PetscCall(PetscPrintf(job->comm, "  rows (N)          %lld\n  columns (D)       %lld\n", (long long)ds->n, (long long)ds->d));
  if (ds->nclasses) {
    PetscCall(PetscPrintf(job->comm, "  classes           %lld:", (long long)ds->nclasses));
    for (int64_t c = 0; c < ds->nclasses; c++) {
      if (c < ds->nnames) PetscCall(PetscPrintf(job->comm, " %s=%lld", ds->label_names[c], (long long)counts[c]));
      else PetscCall(PetscPrintf(job->comm, " %lld:%lld", (long long)c, (long long)counts[c]));
    }
    PetscCall(PetscPrintf(job->comm, "\n"));
  } else PetscCall(PetscPrintf(job->comm, "  classes           none (no /labels)\n"));
  PetscCall(PetscPrintf(job->comm, "  row norm          min %.6g  max %.6g  mean %.6g\n", s->min_norm, s->max_norm, s->mean_norm));
  PetscCall(PetscPrintf(job->comm, "  NaN/Inf values    %lld (in %lld rows", (long long)s->nonfinite_values, (long long)s->nonfinite_rows));
  if (s->first_nonfinite_row >= 0) PetscCall(PetscPrintf(job->comm, ", first row %lld", (long long)s->first_nonfinite_row));
  PetscCall(PetscPrintf(job->comm, ")\n"));
  if (ds->source[0]) PetscCall(PetscPrintf(job->comm, "  source            %s\n", ds->source));
  if (ds->preprocessing[0]) PetscCall(PetscPrintf(job->comm, "  preprocessing     %s\n", ds->preprocessing));
  PetscFunctionReturn(0);
}

static PetscErrorCode store_summary(hid_t file, const bo_dataset *ds, const bo_row_stats *s, const int64_t *counts)
{
  PetscFunctionBeginUser;
  PetscCall(bo_h5_attr_write_string(file, "/", "input", ds->path));
  PetscCall(bo_h5_attr_write_int64(file, "/", "n", ds->n));
  PetscCall(bo_h5_attr_write_int64(file, "/", "d", ds->d));
  PetscCall(bo_h5_attr_write_int64(file, "/", "nclasses", ds->nclasses));
  if (ds->nclasses) PetscCall(bo_h5_attr_write_int64s(file, "/", "class_counts", ds->nclasses, counts));
  PetscCall(bo_h5_attr_write_double(file, "/", "min_norm", s->min_norm));
  PetscCall(bo_h5_attr_write_double(file, "/", "max_norm", s->max_norm));
  PetscCall(bo_h5_attr_write_double(file, "/", "mean_norm", s->mean_norm));
  PetscCall(bo_h5_attr_write_int64(file, "/", "nonfinite_values", s->nonfinite_values));
  PetscCall(bo_h5_attr_write_int64(file, "/", "nonfinite_rows", s->nonfinite_rows));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_info(bo_job *job)
{
  bo_dataset           ds;
  bo_dataset_read_opts opts = {.check_finite = PETSC_FALSE};
  bo_row_stats         s;
  bo_results           res = {.file = -1};
  bo_memory_plan       plan = {.task = "info"};
  int64_t             *counts, n, d;
  PetscBool            stop;

  PetscFunctionBeginUser;
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) PetscFunctionReturn(0);
  PetscCall(bo_job_require(job, "input", job->input, "a features file (HDF5 with /features)"));
  PetscCall(bo_dataset_probe(job->comm, job->input, &n, &d));
  bo_memory_plan_add(&plan, "shard", bo_dataset_shard_bytes(n / job->size + BO_TILE_ROWS, d));
  PetscCall(bo_memory_preflight(job->comm, &plan, job->memory_limit));
  if (job->output[0]) PetscCall(bo_results_create(job, job->output, &res));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(bo_dataset_read(job->comm, job->input, &opts, &ds));
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  PetscCall(bo_stats_rows(job->comm, &ds.rows, ds.d, ds.x, &s));
  PetscCall(PetscMalloc1(PetscMax(1, ds.nclasses), &counts));
  if (ds.nclasses) PetscCall(bo_stats_class_counts(job->comm, bo_rows_local(&ds.rows), ds.labels, ds.nclasses, counts));
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));

  PetscCall(print_summary(job, &ds, &s, counts));
  if (job->output[0]) {
    PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
    PetscCall(store_summary(res.file, &ds, &s, counts));
    PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
    PetscCall(bo_results_commit(&res, job));
  }
  PetscCall(PetscFree(counts));
  PetscCall(bo_dataset_destroy(&ds));
  PetscFunctionReturn(0);
}
