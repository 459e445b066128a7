/* memory.h - the per-rank memory pre-flight.
 *
 * Contract
 *   A task adds up what each rank will hold (its shard and work arrays), names the pieces, and calls
 *   bo_memory_preflight before it allocates.  The available memory per rank is the -memory_limit
 *   option when given, else the node's MemAvailable (or its cgroup limit, whichever is smaller)
 *   divided by the ranks on that node; the smallest over the job's nodes counts.  A run that cannot
 *   fit stops with the numbers:
 *     "memory: preprocess needs 1.4 GiB per rank (shard 210 MiB, ...), 0.5 GiB available
 *      per rank (...); expected a job that fits: more ranks or nodes, or a smaller input"
 *   Collective on comm.
 */
#ifndef BOUNDOPT_MEMORY_H
#define BOUNDOPT_MEMORY_H
#include <petscsys.h>

#define BO_MEMORY_MAX_PARTS 8
typedef struct {
  const char *task;
  int         nparts;
  const char *part_name[BO_MEMORY_MAX_PARTS];
  double      part_bytes[BO_MEMORY_MAX_PARTS]; /* this rank's need; ranks may differ */
} bo_memory_plan;

void           bo_memory_plan_add(bo_memory_plan *plan, const char *name, double bytes);
/* limit: bytes per rank from -memory_limit, or 0 to measure the node. */
PetscErrorCode bo_memory_preflight(MPI_Comm comm, const bo_memory_plan *plan, double limit);
/* Available bytes per rank on this node (the same on every rank of the node). */
PetscErrorCode bo_memory_available_per_rank(MPI_Comm comm, double *bytes, PetscMPIInt *ranks_on_node);
/* "1.5 GiB" style text. */
void           bo_memory_format(double bytes, char *buf, size_t len);
/* Parses "512M", "2G", "1.5GiB", "1000000" into bytes; -1 on bad text. */
double         bo_memory_parse(const char *text);
#endif
