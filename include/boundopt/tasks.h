/* tasks.h - the registry of tasks: `task: NAME` in a job file runs bo_task_NAME.
 *
 * Contract
 *   A task is a PetscErrorCode (*)(bo_job *) registered by name in a PetscFunctionList (as PETSc
 *   registers KSP types).  It reads its options, calls bo_job_setup_done (job.h), then reads,
 *   computes and writes in phases.  Each task lives in its own file src/tasks/<name>.c and contains
 *   no numerical kernel (those live in solvers/).
 */
#ifndef BOUNDOPT_TASKS_H
#define BOUNDOPT_TASKS_H
#include "boundopt/job.h"

typedef PetscErrorCode (*bo_task_fn)(bo_job *job);

PetscErrorCode bo_tasks_register(PetscFunctionList *list);
/* "import, info, preprocess": the names, for messages and -help. */
PetscErrorCode bo_tasks_names(PetscFunctionList list, char *buf, size_t len);

PetscErrorCode bo_task_adapt(bo_job *job);
PetscErrorCode bo_task_cluster(bo_job *job);
PetscErrorCode bo_task_extract(bo_job *job);
PetscErrorCode bo_task_fcam(bo_job *job);
PetscErrorCode bo_task_fewshot(bo_job *job);
PetscErrorCode bo_task_fewshot_seg(bo_job *job);
PetscErrorCode bo_task_fire_gauss(bo_job *job);
PetscErrorCode bo_task_import(bo_job *job);
PetscErrorCode bo_task_info(bo_job *job);
PetscErrorCode bo_task_knn(bo_job *job);
PetscErrorCode bo_task_merge(bo_job *job);
PetscErrorCode bo_task_mixed(bo_job *job);
PetscErrorCode bo_task_preprocess(bo_job *job);
PetscErrorCode bo_task_restore(bo_job *job);
PetscErrorCode bo_task_scenes(bo_job *job);
PetscErrorCode bo_task_segment(bo_job *job);
PetscErrorCode bo_task_train(bo_job *job);
PetscErrorCode bo_task_train_seg(bo_job *job);
#endif
