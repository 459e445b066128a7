/* fewshot_io.h - the checkpoint of the fewshot task.
 *
 * A few-shot run is a set of independent tasks, so its restartable state is which tasks are done
 * and what they gave, by global task index t (0 .. ntasks-1 of this job):
 *   /rows/done        (ntasks int32: 1 when task t is finished)
 *   /rows/accuracy    (ntasks x nruns float64)
 *   /rows/predictions (ntasks x nruns*nq int32), /rows/support (ntasks x ns int64),
 *   /rows/query       (ntasks x nq int64): only with save_tasks (nq = 0 otherwise).
 * Each rank writes and reads the rows of its own task range, so a restart at another rank count
 * works: every rank then skips the tasks of its new range that are done.  Collective; the job hash
 * (checkpoint.h) refuses another job's file.
 */
#ifndef BOUNDOPT_FEWSHOT_IO_H
#define BOUNDOPT_FEWSHOT_IO_H
#include <petscsys.h>
#include <stdint.h>

typedef struct {
  int64_t  ntasks, t0, t1;  /* all tasks; this rank's range [t0, t1) */
  int64_t  nruns, ns, nq;   /* nq = ns = 0 without save_tasks */
  int32_t *done;            /* t1 - t0 */
  double  *accuracy;        /* (t1 - t0) x nruns */
  int32_t *predictions;     /* (t1 - t0) x nruns * nq */
  int64_t *support, *query; /* (t1 - t0) x ns, x nq */
} bo_fewshot_progress;

PetscErrorCode bo_fewshot_checkpoint_write(MPI_Comm comm, const char *path, uint64_t job_hash, const bo_fewshot_progress *pr);
/* *found = PETSC_FALSE when there is no checkpoint; otherwise fills pr's arrays for its range. */
PetscErrorCode bo_fewshot_checkpoint_read(MPI_Comm comm, const char *path, uint64_t job_hash, bo_fewshot_progress *pr, PetscBool *found);
#endif
