/* cluster_io.h - files of the cluster task: its checkpoint and its results.
 *
 * Checkpoint (checkpoint.h schema): /rows/labels (n int32), /rows/y (n x k float64, soft methods),
 * /rows/prototypes (k x d float32), /scalars/{iteration, reseeded, energy, bound_iterations}.
 * Results: /assignments (n int32), /prototypes (k x d float32), /energy (float64 per outer
 * iteration), /bound_iterations (int32 per outer iteration), /cluster_sizes (k int64); root
 * attributes method, k, lambda, sigma, knn, iterations, converged, empty_reseeds, and with labels
 * nmi (arithmetic), nmi_geometric, acc.  Collective.
 */
#ifndef BOUNDOPT_CLUSTER_IO_H
#define BOUNDOPT_CLUSTER_IO_H
#include <hdf5.h>
#include "boundopt/cluster.h"

PetscErrorCode bo_cluster_checkpoint_write(MPI_Comm comm, const char *path, uint64_t job_hash, const bo_cluster_state *st);
/* *found = PETSC_FALSE when there is no checkpoint; refuses another job's. */
PetscErrorCode bo_cluster_checkpoint_read(MPI_Comm comm, const char *path, uint64_t job_hash, bo_cluster_state *st, PetscBool soft, PetscBool *found);
PetscErrorCode bo_cluster_results_write(hid_t file, const bo_cluster_state *st, const int64_t *sizes);
#endif
