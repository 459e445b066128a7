/* fewshot_io.c - checkpoint of the fewshot task (see fewshot_io.h). */
#include "boundopt/fewshot_io.h"
#include "boundopt/checkpoint.h"
#include "boundopt/error.h"

PetscErrorCode bo_fewshot_checkpoint_write(MPI_Comm comm, const char *path, uint64_t job_hash, const bo_fewshot_progress *pr)
{
  bo_checkpoint ck;

  PetscFunctionBeginUser;
  PetscCall(bo_checkpoint_begin_write(comm, path, job_hash, &ck));
  PetscCall(bo_checkpoint_put_int64(&ck, "ntasks", pr->ntasks));
  PetscCall(bo_checkpoint_put_int64(&ck, "nruns", pr->nruns));
  PetscCall(bo_checkpoint_put_rows(&ck, "done", H5T_NATIVE_INT32, pr->ntasks, 1, pr->t0, pr->t1, pr->done));
  PetscCall(bo_checkpoint_put_rows(&ck, "accuracy", H5T_NATIVE_DOUBLE, pr->ntasks, pr->nruns, pr->t0, pr->t1, pr->accuracy));
  if (pr->nq) {
    PetscCall(bo_checkpoint_put_rows(&ck, "predictions", H5T_NATIVE_INT32, pr->ntasks, pr->nruns * pr->nq, pr->t0, pr->t1, pr->predictions));
    PetscCall(bo_checkpoint_put_rows(&ck, "support", H5T_NATIVE_INT64, pr->ntasks, pr->ns, pr->t0, pr->t1, pr->support));
    PetscCall(bo_checkpoint_put_rows(&ck, "query", H5T_NATIVE_INT64, pr->ntasks, pr->nq, pr->t0, pr->t1, pr->query));
  }
  PetscCall(bo_checkpoint_end_write(&ck));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_fewshot_checkpoint_read(MPI_Comm comm, const char *path, uint64_t job_hash, bo_fewshot_progress *pr, PetscBool *found)
{
  bo_checkpoint ck;
  int64_t       ntasks, nruns;

  PetscFunctionBeginUser;
  PetscCall(bo_checkpoint_open(comm, path, job_hash, &ck, found));
  if (!*found) PetscFunctionReturn(0);
  PetscCall(bo_checkpoint_get_int64(&ck, "ntasks", &ntasks));
  PetscCall(bo_checkpoint_get_int64(&ck, "nruns", &nruns));
  if (ntasks != pr->ntasks || nruns != pr->nruns) { /* the hash covers the options: only a damaged file gets here */
    PetscCall(bo_checkpoint_close(&ck));
    SETERRQ(comm, BO_ERR_INPUT, "%s: checkpoint of %lld tasks x %lld runs; expected %lld x %lld for this job", path, (long long)ntasks, (long long)nruns, (long long)pr->ntasks, (long long)pr->nruns);
  }
  PetscCall(bo_checkpoint_get_rows(&ck, "done", H5T_NATIVE_INT32, 1, pr->t0, pr->t1, pr->done));
  PetscCall(bo_checkpoint_get_rows(&ck, "accuracy", H5T_NATIVE_DOUBLE, pr->nruns, pr->t0, pr->t1, pr->accuracy));
  if (pr->nq) {
    PetscCall(bo_checkpoint_get_rows(&ck, "predictions", H5T_NATIVE_INT32, pr->nruns * pr->nq, pr->t0, pr->t1, pr->predictions));
    PetscCall(bo_checkpoint_get_rows(&ck, "support", H5T_NATIVE_INT64, pr->ns, pr->t0, pr->t1, pr->support));
    PetscCall(bo_checkpoint_get_rows(&ck, "query", H5T_NATIVE_INT64, pr->nq, pr->t0, pr->t1, pr->query));
  }
  PetscCall(bo_checkpoint_close(&ck));
  PetscFunctionReturn(0);
}
