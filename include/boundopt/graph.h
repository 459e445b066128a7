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
 *   that depends on the partition).  bo_graph_spmm reads its rows through slot_code (filled by
 *   bo_graph_setup_exchange); why its loop is written as it is: solvers/graph.c.
 *   bo_graph_shared (below): the same product with the rows of the ranks on one node read in place
 *   from an MPI-3 shared window instead of exchanged; same bits.
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
  uint32_t *slot_code;    /* per nonzero: (local row or ghost slot) << 1 | is-ghost, for bo_graph_spmm */
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
/* Rows shared within a node (MPI-3 shared memory), for repeated products W*Y with one width.
 * bo_graph_shared_create (collective on g->comm; sets up g's exchange if needed) puts this rank's
 * rows of Y, sh->rows (local x ncols doubles, owned by sh), in a window shared with the ranks of
 * g->comm on the same node (MPI_Comm_split_type SHARED), so that W*Y reads those ranks' rows where
 * they are instead of receiving copies; only rows owned off the node still travel, with the same
 * Alltoallv as bo_graph_gather_ghosts.  On one rank, or one rank per node, it is the ordinary
 * exchange with a private buffer, and so is share_node = PETSC_FALSE (every row of another rank
 * travels by message: for tests and benchmarks of that path on one machine).
 *   Use: write this rank's rows into sh->rows; bo_graph_shared_exchange (collective: a node
 *   barrier, plus the off-node Alltoallv when there is one); bo_graph_shared_spmm (local: b =
 *   W Y, bit-identical to bo_graph_spmm, hence to any rank count).  Rows of sh->rows must not
 *   be written again until every rank of the node has finished its bo_graph_shared_spmm: callers
 *   put a collective on g->comm in between (bo_bound_run_work keeps two iterates, each in its own
 *   bo_graph_shared, and writes one only after the energy reduction that follows every rank's
 *   product of it).
 * The graph must outlive sh and not change. */
typedef struct {
  bo_graph  *graph;
  int64_t    ncols;
  MPI_Comm   node;            /* ranks of graph->comm on this node (MPI_COMM_NULL on one rank) */
  MPI_Win    win;             /* the node's rows (MPI_WIN_NULL: no other rank on this node) */
  double    *rows;            /* this rank's rows, local x ncols: the caller writes Y here */
  double    *node_rows;       /* first row of the node's window (all its ranks' rows, contiguous) */
  double    *ghosts;          /* rows owned off the node, in the slots of graph->ghost_ids */
  uint32_t  *slot_code;       /* per nonzero: window row << 1, or off-node ghost slot << 1 | 1 */
  int       *send_counts, *recv_counts; /* graph's plan without the node's ranks */
  int64_t    offnode_ghosts, offnode_sends; /* rows received and sent by messages, per exchange */
  int        any_offnode, any_shared; /* on some rank of graph->comm */
} bo_graph_shared;
PetscErrorCode bo_graph_shared_create(bo_graph *g, int64_t ncols, PetscBool share_node, bo_graph_shared *sh);
PetscErrorCode bo_graph_shared_exchange(bo_graph_shared *sh);
void           bo_graph_shared_spmm(const bo_graph_shared *sh, double *b);
PetscErrorCode bo_graph_shared_destroy(bo_graph_shared *sh);
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
