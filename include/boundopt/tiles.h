/* tiles.h - the global row grid that makes results independent of the number of ranks.
 *
 * Contract
 *   Rows 0..n-1 of every distributed matrix are cut into tiles of BO_TILE_ROWS rows (the last one
 *   shorter).  A rank owns a contiguous range of whole tiles, so its rows are [lo, hi).  Kernels
 *   that must be rank-count independent call BLAS on one tile at a time and produce one partial
 *   result per tile; partials are combined with reduce.h.  Since tile t is the same rows whatever
 *   the number of ranks, every tile partial is bit-identical at 1, 2 or 1000 ranks.
 *   More ranks than tiles: the extra ranks own no rows (lo == hi) and still take part in collectives.
 *   Global row indices and counts are int64_t (PETSc's PetscInt is 32-bit on Debian).
 */
#ifndef BOUNDOPT_TILES_H
#define BOUNDOPT_TILES_H
#include <stdint.h>
#include <mpi.h>

/* Changing this changes results in the last bits: it is part of the reproducibility contract. */
#define BO_TILE_ROWS 256

typedef struct {
  int64_t n;                 /* global rows */
  int64_t ntiles;            /* global tiles, ceil(n / BO_TILE_ROWS) */
  int64_t tile_lo, tile_hi;  /* this rank's tiles [tile_lo, tile_hi) */
  int64_t lo, hi;            /* this rank's rows [lo, hi) */
} bo_rows;

/* Balanced partition of whole tiles over the ranks of comm (not collective: pure arithmetic). */
void bo_rows_partition(int64_t n, int rank, int nranks, bo_rows *rows);
/* Rows [lo, hi) of global tile t. */
void bo_tile_bounds(int64_t n, int64_t t, int64_t *lo, int64_t *hi);
/* Rank that owns global row i under bo_rows_partition(n, ., nranks). */
int bo_rows_owner(int64_t n, int nranks, int64_t i);
static inline int64_t bo_rows_local(const bo_rows *r) { return r->hi - r->lo; }
#endif
