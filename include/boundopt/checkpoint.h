/* checkpoint.h - restartable state of an iterative task, written atomically.
 *
 * File schema (HDF5):
 *   attributes on "/": version (int64, BO_CHECKPOINT_VERSION), job_hash (int64: see below)
 *   /rows/<name>    global n x ncols arrays, row-distributed (any partition can read them back)
 *   /scalars/<name> float64 or int64 scalars and small replicated arrays
 *
 * Contract
 *   The job hash identifies the computation: every option except those that only say how to run
 *   (restart, checkpoint_*, log_*, *_monitor, help, options_*, debug_*, memory_limit, output,
 *   PETSc's own), sorted by name, plus the input's identity (dataset.h).  Opening a checkpoint
 *   whose hash differs is refused: "ck.h5: checkpoint of another job (options or input differ);
 *   expected ...".  Rows are stored by global index, so a restart at another rank count works.
 *   Writes go to "<path>.tmp" and are renamed into place after every rank has closed the file:
 *   a crash during a write leaves the previous checkpoint intact.  All calls are collective.
 */
#ifndef BOUNDOPT_CHECKPOINT_H
#define BOUNDOPT_CHECKPOINT_H
#include <petscsys.h>
#include <hdf5.h>
#include <stdint.h>

#define BO_CHECKPOINT_VERSION 1

typedef struct {
  MPI_Comm comm;
  char     path[PETSC_MAX_PATH_LEN];
  char     tmp[PETSC_MAX_PATH_LEN];
  hid_t    file;
  PetscBool writing;
} bo_checkpoint;

/* FNV-1a over bytes, continuing from h (start from BO_HASH_SEED): the job hash and the input
 * identity of dataset.h. */
#define BO_HASH_SEED 1469598103934665603ULL
uint64_t bo_hash_bytes(uint64_t h, const void *data, size_t len);
/* An input file's identity for the job hash: its resolved path, size and mtime (when stat works)
 * and the nshape extents the job read from it, hashed.  Local (no communication). */
uint64_t bo_file_identity(const char *path, const int64_t *shape, int nshape);

/* Hash of the options database (minus run-only options) and the input identity. */
PetscErrorCode bo_checkpoint_job_hash(uint64_t input_identity, uint64_t *hash);
/* Whether an option name is run-only (left out of the hash). */
PetscBool bo_checkpoint_option_is_volatile(const char *name);

PetscErrorCode bo_checkpoint_begin_write(MPI_Comm comm, const char *path, uint64_t job_hash, bo_checkpoint *ck);
PetscErrorCode bo_checkpoint_put_rows(bo_checkpoint *ck, const char *name, hid_t memtype, int64_t n, int64_t ncols, int64_t lo, int64_t hi, const void *data);
PetscErrorCode bo_checkpoint_put_double(bo_checkpoint *ck, const char *name, double value);
PetscErrorCode bo_checkpoint_put_int64(bo_checkpoint *ck, const char *name, int64_t value);
PetscErrorCode bo_checkpoint_put_doubles(bo_checkpoint *ck, const char *name, int64_t count, const double *values);
PetscErrorCode bo_checkpoint_end_write(bo_checkpoint *ck);

/* exists = PETSC_FALSE (and nothing opened) when there is no file at path.  A refused file
 * (another job, another version) is closed before the error is raised. */
PetscErrorCode bo_checkpoint_open(MPI_Comm comm, const char *path, uint64_t job_hash, bo_checkpoint *ck, PetscBool *exists);
PetscErrorCode bo_checkpoint_get_rows(bo_checkpoint *ck, const char *name, hid_t memtype, int64_t ncols, int64_t lo, int64_t hi, void *data);
PetscErrorCode bo_checkpoint_get_double(bo_checkpoint *ck, const char *name, double *value);
PetscErrorCode bo_checkpoint_get_int64(bo_checkpoint *ck, const char *name, int64_t *value);
PetscErrorCode bo_checkpoint_get_doubles(bo_checkpoint *ck, const char *name, int64_t count, double *values);
PetscErrorCode bo_checkpoint_close(bo_checkpoint *ck);
#endif
