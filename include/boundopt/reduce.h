/* reduce.h - sums across ranks whose result does not depend on the number of ranks.
 *
 * Contract
 *   A floating-point sum depends on the order of its terms, and MPI_Allreduce picks an order
 *   from the number of ranks.  bo_exactsum avoids that: every addend (one partial per global
 *   tile, see tiles.h) is rounded once onto a fixed-point grid and the grid values are added as
 *   128-bit integers, exactly, in a user MPI_Op.  Integer addition is associative, so the result
 *   is the same for any partition of the tiles over any number of ranks, and any MPI algorithm.
 *
 *   The grid is fixed by `bound`, which every rank must pass identically (compute it with an
 *   MPI_MAX reduction, which is order independent): bound >= the sum of the absolute values of all
 *   addends, element by element.  An addend is kept to an absolute resolution of bound * 2^-124,
 *   i.e. about 37 decimal digits below the largest possible total: more accurate than a plain
 *   double sum, and deterministic.  An addend beyond the grid's range (the next power of two
 *   above bound, so bounds need no slack for rounding) is reported as an error.
 *
 *   Collectives: bo_exactsum_allreduce (every rank of comm).  The rest is local.
 */
#ifndef BOUNDOPT_REDUCE_H
#define BOUNDOPT_REDUCE_H
#include <petscsys.h>
#include <stdint.h>

typedef struct bo_exactsum_s *bo_exactsum;

PetscErrorCode bo_exactsum_create(int64_t len, double bound, bo_exactsum *sum);
/* Adds one tile's partial v[0..len). */
PetscErrorCode bo_exactsum_add(bo_exactsum sum, const double *v);
/* Adds v[0..count) into elements [offset, offset + count) (e.g. one row into its cluster's sum).
 * Per-row addends are as rank-count independent as per-tile ones: each is rounded on its own. */
PetscErrorCode bo_exactsum_add_at(bo_exactsum sum, int64_t offset, int64_t count, const double *v);
PetscErrorCode bo_exactsum_add_float_at(bo_exactsum sum, int64_t offset, int64_t count, const float *v);
/* Replaces an addend that changed: sum[offset + i] += grid(v[i]) - held[held_offset + i], then
 * held[held_offset + i] = grid(v[i]), for i < count.  held (same bound, so the same grid) keeps
 * each addend's grid value in place of a running total, so that the sum is exactly as if the old
 * addends had never been added and the new ones had (e.g. a tile's partial that a later pass
 * changed), with one rounding per new addend and none for the old. */
PetscErrorCode bo_exactsum_replace_at(bo_exactsum sum, int64_t offset, int64_t count, const double *v, bo_exactsum held, int64_t held_offset);
/* out[0..len) = total over all ranks of comm, rounded once to double; identical on every rank. */
PetscErrorCode bo_exactsum_allreduce(MPI_Comm comm, bo_exactsum sum, double *out);
PetscErrorCode bo_exactsum_destroy(bo_exactsum *sum);

/* Convenience: the largest |v[i]| over all ranks (order independent), e.g. to build a bound. */
PetscErrorCode bo_reduce_max_abs(MPI_Comm comm, int64_t len, const double *v, double *maxabs);
#endif
