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
/* MPI-3 shared windows on a node's communicator (here and in bound.c), locked for their whole life
 * (MPI_Win_lock_all, MPI_MODE_NOCHECK).  bo_node_window_allocate (collective on node): bytes of this
 * rank's part, its base in *base.  bo_node_window_fence (collective on node): what any node rank
 * wrote in win before it is visible to all after it (MPI_Win_sync, MPI_Barrier, MPI_Win_sync; with
 * MPI_WIN_NULL, the barrier alone).  bo_node_window_free: unlocks and frees (MPI_WIN_NULL: nothing). */
PetscErrorCode bo_node_window_allocate(MPI_Comm node, size_t bytes, int disp_unit, void *base, MPI_Win *win);
PetscErrorCode bo_node_window_fence(MPI_Win win, MPI_Comm node);
PetscErrorCode bo_node_window_free(MPI_Win *win);

/* Rows shared within a node (MPI-3 shared memory), for repeated products W*Y with one width.
 * bo_graph_shared_create (collective on g->comm; sets up g's exchange if needed) puts this rank's
 * rows of Y, sh->rows (local x ncols doubles, owned by sh), in a window shared with the ranks of
 * g->comm on the same node (MPI_Comm_split_type SHARED), so that W*Y reads those ranks' rows where
 * they are instead of receiving copies; only rows owned off the node still travel, with the same
 * Alltoallv as bo_graph_gather_ghosts.  On one rank, or one rank per node, it is the ordinary
 * exchange with a private buffer, and so is share = BO_SHARE_NONE (every row of another rank
 * travels by message: for tests and benchmarks of that path on one machine).  The ghosts are in a
 * window of their own too, so that node_ghosts[q] gives any node rank q's ghosts.
 *   Use: write this rank's rows into sh->rows; bo_graph_shared_exchange (collective: a node
 *   barrier, plus the off-node Alltoallv when there is one, then another node barrier so that every
 *   node rank's ghosts are in place); bo_graph_shared_spmm (local: b =
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
  MPI_Win    ghost_win;       /* the node ranks' off-node ghosts (MPI_WIN_NULL likewise) */
  double    *rows;            /* this rank's rows, local x ncols: the caller writes Y here */
  double    *node_rows;       /* first row of the node's window (all its ranks' rows, contiguous) */
  double    *ghosts;          /* rows owned off the node, in the slots of graph->ghost_ids */
  uint32_t  *slot_code;       /* per nonzero: window row << 1, or off-node ghost slot << 1 | 1 */
  int       *send_counts, *recv_counts; /* graph's plan without the node's ranks */
  int64_t    offnode_ghosts, offnode_sends; /* rows received and sent by messages, per exchange */
  int        any_offnode, any_shared; /* on some rank of graph->comm */
  int        node_size, node_rank;    /* 1, 0 without a node window */
  int       *node_granks;             /* per node rank: its rank in graph->comm */
  int64_t   *node_row0;               /* per node rank: its first row in the node's window */
  double   **node_ghosts;             /* per node rank: its ghosts (readable after an exchange) */
} bo_graph_shared;
#define BO_SHARE_NONE 0    /* every other rank's rows travel by message */
#define BO_SHARE_NODE (-1) /* the ranks of each node share their rows */
/* share: BO_SHARE_NONE, BO_SHARE_NODE, or m > 0: groups of m consecutive ranks of a node share, as
 * if each group were a node (to test the paths between nodes on one machine). */
PetscErrorCode bo_graph_shared_create(bo_graph *g, int64_t ncols, int share, bo_graph_shared *sh);
PetscErrorCode bo_graph_shared_exchange(bo_graph_shared *sh);
void           bo_graph_shared_spmm(const bo_graph_shared *sh, double *b);
PetscErrorCode bo_graph_shared_destroy(bo_graph_shared *sh);
/* Work sharing within a node: any rank of a node computes W*Y for any node rank's rows, so that a
 * rank that is done helps a slower one (bound.c).  bo_graph_node_create (collective on the node's
 * ranks) copies each node rank's CSR rows (indptr, data and sh's codes) once into a window shared
 * on sh->node; without a node window, size is 1 and peer 0 is this rank's own arrays (no copy).
 * bo_graph_node_spmm(nd, sh2, q, r0, r1, b): rows r0 <= i < r1 of node rank q (local to q) into b
 * ((r1 - r0) x ncols), reading Y and q's ghosts from sh2, any bo_graph_shared of the same graph and
 * width (the codes depend only on those and the node's layout); the same bits as
 * bo_graph_shared_spmm on rank q.  After an exchange of sh2 every node rank's ghosts are in place
 * (bo_graph_shared_exchange ends with a node barrier when rows travel off the node). */
typedef struct {
  const int64_t  *indptr;  /* local + 1 offsets */
  const float    *data;
  const uint32_t *code;    /* as bo_graph_shared.slot_code, padded */
  int64_t         local, lo, row0; /* rows, first global row, first row in the node's window */
} bo_graph_peer;
typedef struct {
  int            size, rank;
  MPI_Win        win;      /* the copies (MPI_WIN_NULL with size 1) */
  bo_graph_peer *peer;     /* size entries */
} bo_graph_node;
PetscErrorCode bo_graph_node_create(const bo_graph_shared *sh, bo_graph_node *nd);
void           bo_graph_node_spmm(const bo_graph_node *nd, const bo_graph_shared *sh, int q, int64_t r0, int64_t r1, double *b);
PetscErrorCode bo_graph_node_destroy(bo_graph_node *nd);
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
