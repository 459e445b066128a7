/* mlp_io.h - files of the train task: the trained network and its epoch checkpoint.
 *
 * Network (in a results file, read back by task extract):
 *   /network/widths   L + 1 int64: n_0 = d .. n_L = k (mlp.h)
 *   /network/param    nparam float64, mlp.h's layout
 *   /network/classes  k int32: the input label of each output class
 * Checkpoint (checkpoint.h schema): /scalars/{epoch, param, optim_m, optim_v (Adam), optim_step,
 * history (epochs x BO_MLP_HISTORY_COLS, the rows of the epochs done)}.
 * All calls are collective on comm (every rank passes the same, replicated values).
 */
#ifndef BOUNDOPT_MLP_IO_H
#define BOUNDOPT_MLP_IO_H
#include <hdf5.h>
#include "boundopt/mlp.h"
#include "boundopt/optim.h"

PetscErrorCode bo_mlp_write(hid_t file, const bo_mlp *net, const int32_t *classes);
/* Creates net from path's /network; classes: room for 255 ids.  Missing or inconsistent groups are
 * one-line input errors naming path. */
PetscErrorCode bo_mlp_read(MPI_Comm comm, const char *path, bo_mlp *net, int32_t *classes);

PetscErrorCode bo_mlp_checkpoint_write(MPI_Comm comm, const char *path, uint64_t job_hash, const bo_mlp *net, const bo_optim *opt, int64_t epoch, int64_t ncols, const double *history);
/* *found = PETSC_FALSE without a checkpoint file; refuses another job's.  net and opt must be created. */
PetscErrorCode bo_mlp_checkpoint_read(MPI_Comm comm, const char *path, uint64_t job_hash, bo_mlp *net, bo_optim *opt, int64_t *epoch, int64_t ncols, double *history, PetscBool *found);
#endif
