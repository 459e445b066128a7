/* cluster_io.c - checkpoint and results of the cluster task (see cluster_io.h). */
#include "boundopt/cluster_io.h"
#include "boundopt/checkpoint.h"
#include "boundopt/h5.h"

PetscErrorCode bo_cluster_checkpoint_write(MPI_Comm comm, const char *path, uint64_t job_hash, const bo_cluster_state *st)
{
  bo_checkpoint ck;
  PetscMPIInt   rank;
  double       *bits;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(bo_checkpoint_begin_write(comm, path, job_hash, &ck));
  PetscCall(bo_checkpoint_put_rows(&ck, "labels", H5T_NATIVE_INT32, st->n, 1, st->rows.lo, st->rows.hi, st->labels));
  if (st->y) PetscCall(bo_checkpoint_put_rows(&ck, "y", H5T_NATIVE_DOUBLE, st->n, st->k, st->rows.lo, st->rows.hi, st->y));
  /* replicated prototypes: rank 0 writes all k rows */
  PetscCall(bo_checkpoint_put_rows(&ck, "prototypes", H5T_NATIVE_FLOAT, st->k, st->d, 0, rank ? 0 : st->k, st->prototypes));
  PetscCall(bo_checkpoint_put_int64(&ck, "iteration", st->iteration));
  PetscCall(bo_checkpoint_put_int64(&ck, "reseeded", st->reseeded));
  PetscCall(bo_checkpoint_put_doubles(&ck, "energy", PetscMax(1, st->iteration), st->energy));
  PetscCall(PetscMalloc1(PetscMax(1, st->iteration), &bits));
  for (int i = 0; i < st->iteration; i++) bits[i] = st->bound_iterations[i];
  PetscCall(bo_checkpoint_put_doubles(&ck, "bound_iterations", PetscMax(1, st->iteration), bits));
  PetscCall(PetscFree(bits));
  PetscCall(bo_checkpoint_end_write(&ck));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_cluster_checkpoint_read(MPI_Comm comm, const char *path, uint64_t job_hash, bo_cluster_state *st, PetscBool soft, PetscBool *found)
{
  bo_checkpoint ck;
  int64_t       iteration, reseeded;
  double       *bits;

  PetscFunctionBeginUser;
  PetscCall(bo_checkpoint_open(comm, path, job_hash, &ck, found));
  if (!*found) PetscFunctionReturn(0);
  PetscCall(bo_checkpoint_get_int64(&ck, "iteration", &iteration));
  PetscCall(bo_checkpoint_get_int64(&ck, "reseeded", &reseeded));
  st->iteration = (int)iteration;
  st->reseeded  = reseeded;
  PetscCall(bo_checkpoint_get_rows(&ck, "labels", H5T_NATIVE_INT32, 1, st->rows.lo, st->rows.hi, st->labels));
  if (soft) {
    if (!st->y) PetscCall(PetscMalloc1(PetscMax(1, bo_rows_local(&st->rows) * st->k), &st->y));
    PetscCall(bo_checkpoint_get_rows(&ck, "y", H5T_NATIVE_DOUBLE, st->k, st->rows.lo, st->rows.hi, st->y));
  }
  PetscCall(bo_checkpoint_get_rows(&ck, "prototypes", H5T_NATIVE_FLOAT, st->d, 0, st->k, st->prototypes));
  PetscCall(bo_checkpoint_get_doubles(&ck, "energy", PetscMax(1, st->iteration), st->energy));
  PetscCall(PetscMalloc1(PetscMax(1, st->iteration), &bits));
  PetscCall(bo_checkpoint_get_doubles(&ck, "bound_iterations", PetscMax(1, st->iteration), bits));
  for (int i = 0; i < st->iteration; i++) st->bound_iterations[i] = (int)bits[i];
  PetscCall(PetscFree(bits));
  PetscCall(bo_checkpoint_close(&ck));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_cluster_results_write(hid_t file, const bo_cluster_state *st, const int64_t *sizes)
{
  hsize_t dims[2] = {(hsize_t)st->k, (hsize_t)st->d}, its[1] = {(hsize_t)st->iteration};

  PetscFunctionBeginUser;
  PetscCall(bo_h5_write_rows(file, "/assignments", H5T_NATIVE_INT32, H5T_STD_I32LE, st->n, 1, st->rows.lo, st->rows.hi, st->labels));
  PetscCall(bo_h5_write_array(file, "/prototypes", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, dims, st->prototypes));
  PetscCall(bo_h5_write_array(file, "/energy", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, its, st->energy));
  PetscCall(bo_h5_write_array(file, "/bound_iterations", H5T_NATIVE_INT, H5T_STD_I32LE, 1, its, st->bound_iterations));
  PetscCall(bo_h5_write_array(file, "/cluster_sizes", H5T_NATIVE_INT64, H5T_STD_I64LE, 1, dims, sizes));
  PetscCall(bo_h5_attr_write_int64(file, "/", "iterations", st->iteration));
  PetscCall(bo_h5_attr_write_int64(file, "/", "converged", st->converged));
  PetscCall(bo_h5_attr_write_int64(file, "/", "empty_reseeds", st->reseeded));
  PetscFunctionReturn(0);
}
