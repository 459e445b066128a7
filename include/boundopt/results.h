/* results.h - one HDF5 results file per job, written atomically.
 *
 * Schema
 *   results at the root (each task documents its datasets);
 *   /meta/options         the job's options as one string ("-task x -input y ...")
 *   /meta/version, /meta/git_revision, /meta/created (strings), /meta/schema_version (int64)
 *   /meta/nranks          int64
 *   /meta/timings/<phase> float64 seconds (max over ranks) for read, compute, write
 *   /meta/rank_invariant  int64, 1 when the results cannot depend on the number of ranks
 *   Everything volatile lives under /meta, so `h5diff --exclude-path /meta a.h5 b.h5` compares runs.
 *
 * Contract
 *   bo_results_create (collective) creates "<dir>/.<name>.tmp.<id>" next to the final path at
 *   set-up, so an unwritable folder fails before any computing; the file is registered with the
 *   error handler and removed if the job fails.  bo_results_commit writes /meta, closes, and
 *   renames the file into place (rank 0) after every rank has closed it: readers never see a
 *   partial file and a failed job leaves no new file.
 */
#ifndef BOUNDOPT_RESULTS_H
#define BOUNDOPT_RESULTS_H
#include <hdf5.h>
#include "boundopt/job.h"

#define BO_SCHEMA_VERSION 1

typedef struct {
  MPI_Comm  comm;
  char      path[PETSC_MAX_PATH_LEN];
  char      tmp[PETSC_MAX_PATH_LEN];
  hid_t     file;
  PetscBool rank_invariant;
} bo_results;

PetscErrorCode bo_results_create(bo_job *job, const char *path, bo_results *r);
PetscErrorCode bo_results_commit(bo_results *r, const bo_job *job);
/* Closes and removes the temporary file (a task that decides not to write). */
PetscErrorCode bo_results_discard(bo_results *r);
/* The options text and git revision, also used by checkpoints. */
PetscErrorCode bo_results_options_text(char **text);
#endif
