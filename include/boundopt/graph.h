/* graph.h - row-distributed sparse affinity graphs (CSR) and W*Y with a ghost-row exchange.
 *
 * Contract
 *   A bo_graph is an n x n sparse matrix W distributed by rows with the tile partition (tiles.h):
 *   this rank holds rows [rows.lo, rows.hi).  indptr has (hi - lo + 1) int64 offsets into indices
 *   (global column ids, int64, sorted ascending within a row, no duplicates) and data (float32).
 *   The struct owns its arrays; bo_graph_destroy frees them.
 *
 *   bo_graph_setup_exchange (collective) precomputes which rows of a row-distributed matrix this
 *   rank needs from the others (the distinct off-rank columns of its rows) and which of its rows
 *   the others need; bo_graph_gather_ghosts (collective) then moves exactly those rows, ncols
 *   values each, with one MPI_Alltoallv.  bo_graph_spmm computes B = W * Y for the local rows: row
 *   i of B is sum over the row's entries, in ascending global column order, of w_ij * Y_j (double
 *   accumulation), so B is bit-identical for any number of ranks (PETSc's MatMult sums in an order
 *   that depends on the partition).
 *   File schema (bo_graph_write/read): /graph/indptr int64 (n+1, global offsets),
 *   /graph/indices int64, /graph/data float32; attributes n, knn, weights, symmetrize.
 */
#ifndef BOUNDOPT_GRAPH_H
#define BOUNDOPT_GRAPH_H
#include <petscsys.h>
#include <hdf5.h>
#include <stdint.h>
#include "boundopt/tiles.h"

typedef struct {
  MPI_Comm comm;
  bo_rows  rows;
  int64_t *indptr;   /* local rows + 1, starting at 0 */
  int64_t *indices;  /* global column ids */
  float   *data;
  /* ghost exchange, filled by bo_graph_setup_exchange */
  int64_t  nghost;        /* distinct off-rank columns, ascending */
  int64_t *ghost_ids;
  int     *send_counts, *send_displs, *recv_counts, *recv_displs; /* in rows, per rank */
  int64_t *send_rows;     /* local row offsets (0-based within this rank) to send, grouped by rank */
  int64_t  nsend;
  int64_t *col_slot;      /* per nonzero: >= 0 local row offset, < 0: -(1 + ghost slot) */
  PetscBool exchange_ready; /* bo_graph_setup_exchange has run (it is idempotent) */
  void    *sendbuf;       /* gather workspace, reused across calls */
  size_t   sendbuf_bytes;
  double   scale;         /* Gaussian width bo_knn_build used (0 for binary weights) */
} bo_graph;

PetscErrorCode bo_graph_setup_exchange(bo_graph *g);
/* ghosts: nghost x ncols, filled from the owners' rows of y (local rows x ncols). */
PetscErrorCode bo_graph_gather_ghosts(bo_graph *g, int64_t ncols, const double *y, double *ghosts);
/* The same for float rows (e.g. the features, for per-edge distances): no conversion, half the traffic. */
PetscErrorCode bo_graph_gather_ghosts_float(bo_graph *g, int64_t ncols, const float *y, float *ghosts);
/* b (local rows x ncols) = W y; ghosts from bo_graph_gather_ghosts with the same y. */
void           bo_graph_spmm(const bo_graph *g, int64_t ncols, const double *y, const double *ghosts, double *b);
/* Largest weighted row sum over all ranks (bounds for exact energies). */
PetscErrorCode bo_graph_max_row_sum(const bo_graph *g, double *max_sum);
PetscErrorCode bo_graph_destroy(bo_graph *g);

/* File I/O (src/io/graph_io.c), collective on the file's / comm's ranks.  Each rank writes and reads
 * only its rows' slice: indptr entries [lo, hi] and the nonzeros [indptr[lo], indptr[hi]).
 * bo_graph_write: /graph/{indptr,indices,data} plus attributes n, knn, weights, symmetrize (and
 * scale for Gaussian weights) on /graph.  bo_graph_read: the rows of `rows` (any partition of the
 * same n), checked (shape, offsets, column range and order) with one-line input errors; the
 * exchange is not set up. */
PetscErrorCode bo_graph_write(hid_t file, const bo_graph *g, int64_t knn, const char *weights, const char *symmetrize);
PetscErrorCode bo_graph_read(MPI_Comm comm, const char *path, const bo_rows *rows, bo_graph *g);
#endif
