/* graph.c - row-distributed CSR graphs: the ghost-row exchange and W*Y (see graph.h).
 *
 * The exchange is planned once (bo_graph_setup_exchange) from the column ids of the local rows:
 * the distinct off-rank columns, ascending, are this rank's ghosts.  Their owners follow from the
 * tile partition (bo_rows_owner is monotone in the row id), so the ghosts are already grouped by
 * owner in rank order and one MPI_Alltoallv delivers them in ghost_ids order.  Each gather moves
 * only those rows, never the whole matrix: at N = 2e6, K = 1000 a full Allgather of Y would be
 * 16 GB per rank, the ghosts of a kNN graph are a few times N/P rows.
 */
#include "boundopt/graph.h"
#include "boundopt/error.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PREFETCH 16 /* nonzeros of look-ahead in bo_graph_spmm */
#define SMALL_K  16 /* widest Y summed in registers */

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Index of id in the ascending array v[0..n) (it is there). */
static int64_t find_sorted(const int64_t *v, int64_t n, int64_t id)
{
  int64_t lo = 0, hi = n - 1;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (v[mid] < id) lo = mid + 1; else hi = mid;
  }
  return lo;
}

PetscErrorCode bo_graph_setup_exchange(bo_graph *g)
{
  PetscMPIInt size;
  int64_t     local = bo_rows_local(&g->rows), nnz = g->indptr[local], nout = 0, *cols = NULL, *ids_in = NULL;

  PetscFunctionBeginUser;
  if (g->exchange_ready) PetscFunctionReturn(0);
  PetscCallMPI(MPI_Comm_size(g->comm, &size));
  /* distinct off-rank columns, ascending */
  PetscCall(PetscMalloc1(nnz + 1, &cols));
  for (int64_t e = 0; e < nnz; e++)
    if (g->indices[e] < g->rows.lo || g->indices[e] >= g->rows.hi) cols[nout++] = g->indices[e];
  qsort(cols, (size_t)nout, sizeof *cols, cmp_i64);
  g->nghost = 0;
  for (int64_t i = 0; i < nout; i++)
    if (!g->nghost || cols[i] != cols[g->nghost - 1]) cols[g->nghost++] = cols[i];
  PetscCall(PetscMalloc1(g->nghost + 1, &g->ghost_ids));
  PetscCall(PetscArraycpy(g->ghost_ids, cols, g->nghost));
  PetscCall(PetscFree(cols));

  PetscCall(PetscCalloc4(size, &g->send_counts, size, &g->send_displs, size, &g->recv_counts, size, &g->recv_displs));
  for (int64_t i = 0; i < g->nghost; i++) g->recv_counts[bo_rows_owner(g->rows.n, size, g->ghost_ids[i])]++;
  PetscCallMPI(MPI_Alltoall(g->recv_counts, 1, MPI_INT, g->send_counts, 1, MPI_INT, g->comm));
  g->nsend = 0;
  for (int r = 0; r < size; r++) {
    g->send_displs[r] = (int)g->nsend;
    g->nsend += g->send_counts[r];
    g->recv_displs[r] = r ? g->recv_displs[r - 1] + g->recv_counts[r - 1] : 0;
  }
  PetscCheck(g->nsend < INT32_MAX && g->nghost < INT32_MAX, PETSC_COMM_SELF, BO_ERR_RUNTIME, "graph: %lld ghost rows to move on one rank; expected fewer than 2^31 (use more ranks)", (long long)PetscMax(g->nsend, g->nghost));
  /* the owners learn which of their rows each rank needs */
  PetscCall(PetscMalloc1(g->nsend + 1, &ids_in));
  PetscCall(PetscMalloc1(g->nsend + 1, &g->send_rows));
  PetscCallMPI(MPI_Alltoallv(g->ghost_ids, g->recv_counts, g->recv_displs, MPI_INT64_T, ids_in, g->send_counts, g->send_displs, MPI_INT64_T, g->comm));
  for (int64_t i = 0; i < g->nsend; i++) {
    PetscCheck(ids_in[i] >= g->rows.lo && ids_in[i] < g->rows.hi, PETSC_COMM_SELF, BO_ERR_RUNTIME, "graph: asked for row %lld, not in this rank's rows [%lld, %lld); expected the tile partition on every rank", (long long)ids_in[i], (long long)g->rows.lo, (long long)g->rows.hi);
    g->send_rows[i] = ids_in[i] - g->rows.lo;
  }
  PetscCall(PetscFree(ids_in));

  PetscCheck(local < INT32_MAX, PETSC_COMM_SELF, BO_ERR_RUNTIME, "graph: %lld rows on one rank; expected fewer than 2^31 (use more ranks)", (long long)local);
  PetscCall(PetscMalloc1(nnz + 1, &g->col_slot));
  PetscCall(PetscCalloc1(nnz + PREFETCH, &g->slot_code)); /* the padding is local row 0: see bo_graph_spmm */
  for (int64_t e = 0; e < nnz; e++) {
    int64_t j = g->indices[e];
    g->col_slot[e]  = j >= g->rows.lo && j < g->rows.hi ? j - g->rows.lo : -(1 + find_sorted(g->ghost_ids, g->nghost, j));
    g->slot_code[e] = g->col_slot[e] >= 0 ? (uint32_t)g->col_slot[e] << 1 : (uint32_t)(-1 - g->col_slot[e]) << 1 | 1u;
  }
  g->exchange_ready = PETSC_TRUE;
  PetscFunctionReturn(0);
}

/* Moves the ghost rows of elem-sized values, ncols per row, with one Alltoallv whose counts are in
 * rows (a contiguous row type), so that no count overflows an int however wide the rows are.
 * send_counts / recv_counts: the plan's, or the plan's with some peers left out (node sharing). */
static PetscErrorCode gather_rows_counts(bo_graph *g, const int *send_counts, const int *recv_counts, int64_t ncols, MPI_Datatype elem, size_t elem_bytes, const void *y, void *ghosts)
{
  MPI_Datatype row;
  size_t       row_bytes = (size_t)ncols * elem_bytes, need = row_bytes * (size_t)g->nsend;
  PetscMPIInt  size;

  PetscFunctionBeginUser;
  PetscCheck(g->exchange_ready, PETSC_COMM_SELF, PETSC_ERR_ORDER, "graph: ghost gather before bo_graph_setup_exchange; expected the exchange set up first");
  if (ncols <= 0) PetscFunctionReturn(0);
  PetscCheck(ncols < INT32_MAX, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: %lld columns; expected fewer than 2^31", (long long)ncols);
  PetscCallMPI(MPI_Comm_size(g->comm, &size));
  if (need > g->sendbuf_bytes) {
    PetscCall(PetscFree(g->sendbuf));
    PetscCall(PetscMalloc(need, &g->sendbuf));
    g->sendbuf_bytes = need;
  }
  for (int r = 0; r < size; r++) /* only the rows actually sent */
    for (int64_t i = g->send_displs[r]; i < g->send_displs[r] + send_counts[r]; i++)
      memcpy((char *)g->sendbuf + (size_t)i * row_bytes, (const char *)y + (size_t)g->send_rows[i] * row_bytes, row_bytes);
  PetscCallMPI(MPI_Type_contiguous((int)ncols, elem, &row));
  PetscCallMPI(MPI_Type_commit(&row));
  PetscCallMPI(MPI_Alltoallv(g->sendbuf, send_counts, g->send_displs, row, ghosts, recv_counts, g->recv_displs, row, g->comm));
  PetscCallMPI(MPI_Type_free(&row));
  PetscFunctionReturn(0);
}

static PetscErrorCode gather_rows(bo_graph *g, int64_t ncols, MPI_Datatype elem, size_t elem_bytes, const void *y, void *ghosts)
{
  PetscFunctionBeginUser;
  PetscCall(gather_rows_counts(g, g->send_counts, g->recv_counts, ncols, elem, elem_bytes, y, ghosts));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_graph_gather_ghosts(bo_graph *g, int64_t ncols, const double *y, double *ghosts)
{
  PetscFunctionBeginUser;
  PetscCall(gather_rows(g, ncols, MPI_DOUBLE, sizeof(double), y, ghosts));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_graph_gather_ghosts_float(bo_graph *g, int64_t ncols, const float *y, float *ghosts)
{
  PetscFunctionBeginUser;
  PetscCall(gather_rows(g, ncols, MPI_FLOAT, sizeof(float), y, ghosts));
  PetscFunctionReturn(0);
}

/* Row i of b is accumulated from zero over the row's entries in their stored order, which is
 * ascending global column order: the same additions in the same order on any number of ranks.
 *
 * Why it is written this way (measured on Fashion-MNIST's 5-NN graph, K = 10, benchmarks/README.md):
 * the rows of Y a row needs are scattered over the whole of Y (the graph has no row locality), so
 * the loop waits on memory, not on arithmetic.  Three things keep it busy:
 *  - slot_code (uint32 per nonzero: row << 1 | from-ghosts) picks the row from {y, ghosts} by
 *    indexing, without a branch: at 2 ranks half the columns are ghosts, in no pattern, so a
 *    branch on the int64 col_slot's sign is a coin toss for the predictor; and it is half the size;
 *  - the row of the nonzero PREFETCH entries ahead is prefetched (both cache lines of an 80-byte
 *    row), so many rows are in flight instead of the few an out-of-order window holds; slot_code is
 *    padded with PREFETCH zeros so that the look-ahead needs no bounds test;
 *  - for K <= SMALL_K the row of b is summed in registers (a constant-size accumulator the compiler
 *    unrolls), each entry still in global column order.
 * No FMA: the baseline target (x86-64-v2) has none, and -std=c17 implies -ffp-contract=off, so
 * w * y_j is rounded before the add, as in the dense reference of the tests. */

static inline __attribute__((always_inline)) void spmm_fixed(const int64_t *indptr, const float *data, const uint32_t *code, int64_t k, const double *y, const double *ghosts, int64_t r0, int64_t r1, double *restrict b)
{
  const double *base[2] = {y, ghosts};

  for (int64_t i = r0; i < r1; i++) { /* b holds rows r0..r1-1 */
    double acc[SMALL_K];
    for (int64_t c = 0; c < k; c++) acc[c] = 0;
    for (int64_t e = indptr[i]; e < indptr[i + 1]; e++) {
      uint32_t    ahead = code[e + PREFETCH], s = code[e];
      const char *next  = (const char *)(base[ahead & 1] + (size_t)(ahead >> 1) * (size_t)k);
      __builtin_prefetch(next);
      __builtin_prefetch(next + k * (int64_t)sizeof(double) - 1);
      const double *yj = base[s & 1] + (size_t)(s >> 1) * (size_t)k;
      double        w  = (double)data[e];
      for (int64_t c = 0; c < k; c++) acc[c] += w * yj[c];
    }
    for (int64_t c = 0; c < k; c++) b[(i - r0) * k + c] = acc[c];
  }
}

/* Any K: the same order, b's row accumulated in place. */
static void spmm_any(const int64_t *indptr, const float *data, const uint32_t *code, int64_t k, const double *y, const double *ghosts, int64_t r0, int64_t r1, double *restrict b)
{
  const double *base[2] = {y, ghosts};

  for (int64_t i = r0; i < r1; i++) {
    double *restrict bi = b + (i - r0) * k;
    for (int64_t c = 0; c < k; c++) bi[c] = 0;
    for (int64_t e = indptr[i]; e < indptr[i + 1]; e++) {
      uint32_t      ahead = code[e + PREFETCH], s = code[e];
      __builtin_prefetch(base[ahead & 1] + (size_t)(ahead >> 1) * (size_t)k);
      const double *yj = base[s & 1] + (size_t)(s >> 1) * (size_t)k;
      double        w  = (double)data[e];
      for (int64_t c = 0; c < k; c++) bi[c] += w * yj[c];
    }
  }
}

/* Rows r0..r1-1 of the CSR (indptr, data, code) into b; code selects rows of base y (flag 0) and
 * ghosts (flag 1). */
static void spmm_codes(const int64_t *indptr, const float *data, const uint32_t *code, int64_t ncols, const double *y, const double *ghosts, int64_t r0, int64_t r1, double *b)
{
  switch (ncols) {
#define CASE(K) case K: spmm_fixed(indptr, data, code, K, y, ghosts, r0, r1, b); break;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
    CASE(9) CASE(10) CASE(11) CASE(12) CASE(13) CASE(14) CASE(15) CASE(16)
#undef CASE
  default:
    if (ncols > 0) spmm_any(indptr, data, code, ncols, y, ghosts, r0, r1, b);
  }
}

void bo_graph_spmm(const bo_graph *g, int64_t ncols, const double *y, const double *ghosts, double *b)
{
  spmm_codes(g->indptr, g->data, g->slot_code, ncols, y, ghosts, 0, bo_rows_local(&g->rows), b);
}

/* ---------------------------------------------------------------- node windows */

PetscErrorCode bo_node_window_allocate(MPI_Comm node, size_t bytes, int disp_unit, void *base, MPI_Win *win)
{
  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Win_allocate_shared((MPI_Aint)bytes, disp_unit, MPI_INFO_NULL, node, base, win));
  PetscCallMPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, *win));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_node_window_fence(MPI_Win win, MPI_Comm node)
{
  PetscFunctionBeginUser;
  if (win != MPI_WIN_NULL) PetscCallMPI(MPI_Win_sync(win));
  PetscCallMPI(MPI_Barrier(node));
  if (win != MPI_WIN_NULL) PetscCallMPI(MPI_Win_sync(win));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_node_window_free(MPI_Win *win)
{
  PetscFunctionBeginUser;
  if (*win != MPI_WIN_NULL) {
    PetscCallMPI(MPI_Win_unlock_all(*win));
    PetscCallMPI(MPI_Win_free(win));
  }
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- rows shared within a node */

PetscErrorCode bo_graph_shared_create(bo_graph *g, int64_t ncols, int share, bo_graph_shared *sh)
{
  PetscMPIInt size, rank, nsize = 1, nrank = 0;
  int64_t     local, nnz, *row0 = NULL; /* per rank of g->comm: window row of its first row, -1 off-node */
  size_t      row_bytes = (size_t)ncols * sizeof(double);
  int         off[2], any_off[2];

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(sh, sizeof *sh));
  PetscCheck(ncols >= 1 && ncols < INT32_MAX, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: %lld columns; expected 1 to 2^31 - 1", (long long)ncols);
  PetscCall(bo_graph_setup_exchange(g));
  PetscCallMPI(MPI_Comm_size(g->comm, &size));
  PetscCallMPI(MPI_Comm_rank(g->comm, &rank));
  local     = bo_rows_local(&g->rows);
  nnz       = g->indptr[local];
  sh->graph = g;
  sh->ncols = ncols;
  sh->node      = MPI_COMM_NULL;
  sh->win       = MPI_WIN_NULL;
  sh->ghost_win = MPI_WIN_NULL;
  PetscCall(PetscMalloc1(size, &row0));
  for (int r = 0; r < size; r++) row0[r] = -1;
  PetscCheck(share >= BO_SHARE_NODE, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: share = %d; expected BO_SHARE_NONE, BO_SHARE_NODE or a group size > 0", share);
  if (size > 1 && share != BO_SHARE_NONE) {
    PetscCallMPI(MPI_Comm_split_type(g->comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &sh->node));
    if (share > 0) { /* groups of `share` consecutive node ranks, each as if it were a node */
      MPI_Comm group;
      PetscCallMPI(MPI_Comm_rank(sh->node, &nrank));
      PetscCallMPI(MPI_Comm_split(sh->node, nrank / share, nrank, &group));
      PetscCallMPI(MPI_Comm_free(&sh->node));
      sh->node = group;
    }
    PetscCallMPI(MPI_Comm_size(sh->node, &nsize));
    PetscCallMPI(MPI_Comm_rank(sh->node, &nrank));
  }
  if (nsize > 1) {
    MPI_Group gnode, gall;
    int      *nranks, *granks;
    MPI_Aint  bytes;
    int       disp;
    double   *first;
    /* contiguous by default (MPI-3: no alloc_shared_noncontig): the node's rows, node rank after node rank */
    PetscCall(bo_node_window_allocate(sh->node, row_bytes * (size_t)PetscMax(1, local), (int)sizeof(double), &sh->rows, &sh->win));
    PetscCallMPI(MPI_Win_shared_query(sh->win, 0, &bytes, &disp, &first));
    sh->node_rows = first;
    PetscCallMPI(MPI_Comm_group(sh->node, &gnode));
    PetscCallMPI(MPI_Comm_group(g->comm, &gall));
    PetscCall(PetscMalloc1(nsize, &nranks));
    PetscCall(PetscMalloc3(nsize, &sh->node_granks, nsize, &sh->node_row0, nsize, &sh->node_ghosts));
    granks = sh->node_granks;
    for (int q = 0; q < nsize; q++) nranks[q] = q;
    PetscCallMPI(MPI_Group_translate_ranks(gnode, nsize, nranks, gall, granks));
    for (int q = 0; q < nsize; q++) {
      double   *base;
      ptrdiff_t at;
      PetscCallMPI(MPI_Win_shared_query(sh->win, q, &bytes, &disp, &base));
      at = (char *)base - (char *)first;
      PetscCheck(at >= 0 && (size_t)at % row_bytes == 0, PETSC_COMM_SELF, BO_ERR_RUNTIME, "graph: shared window of node rank %d at byte %lld; expected whole rows after node rank 0 (contiguous allocation)", q, (long long)at);
      row0[granks[q]] = sh->node_row0[q] = (int64_t)((size_t)at / row_bytes);
    }
    PetscCall(PetscFree(nranks));
    PetscCallMPI(MPI_Group_free(&gnode));
    PetscCallMPI(MPI_Group_free(&gall));
    PetscCheck(row0[rank] >= 0, PETSC_COMM_SELF, BO_ERR_RUNTIME, "graph: this rank is missing from its node's window (internal error)");
  } else {
    PetscCall(PetscMalloc(row_bytes * (size_t)PetscMax(1, local), &sh->rows));
    PetscCall(PetscMalloc3(1, &sh->node_granks, 1, &sh->node_row0, 1, &sh->node_ghosts));
    sh->node_rows      = sh->rows;
    sh->node_granks[0] = rank;
    sh->node_row0[0]   = 0;
    row0[rank]         = 0;
  }
  sh->node_size = nsize;
  sh->node_rank = nrank;
  PetscCheck(row0[rank] + local < INT32_MAX, PETSC_COMM_SELF, BO_ERR_RUNTIME, "graph: %lld rows in one node's window; expected fewer than 2^31 (use more nodes)", (long long)(row0[rank] + local));

  /* the plan without the node's ranks: only off-node rows still travel in messages */
  PetscCall(PetscMalloc2(size, &sh->send_counts, size, &sh->recv_counts));
  sh->offnode_ghosts = sh->offnode_sends = 0;
  for (int r = 0; r < size; r++) {
    sh->send_counts[r] = row0[r] >= 0 ? 0 : g->send_counts[r];
    sh->recv_counts[r] = row0[r] >= 0 ? 0 : g->recv_counts[r];
    sh->offnode_ghosts += sh->recv_counts[r];
    sh->offnode_sends += sh->send_counts[r];
  }
  off[0] = sh->offnode_ghosts > 0 || sh->offnode_sends > 0;
  off[1] = nsize > 1;
  PetscCallMPI(MPI_Allreduce(off, any_off, 2, MPI_INT, MPI_MAX, g->comm));
  sh->any_offnode = any_off[0];
  sh->any_shared  = any_off[1];
  /* slots keep the plan's layout (holes for the node's rows); none at all on a single node.  In a
   * window of their own when the node has other ranks, which may compute this rank's rows */
  if (nsize > 1) {
    MPI_Aint bytes;
    int      disp;
    PetscCall(bo_node_window_allocate(sh->node, sizeof(double) * (size_t)(sh->offnode_ghosts ? g->nghost * ncols : 1), (int)sizeof(double), &sh->ghosts, &sh->ghost_win));
    for (int q = 0; q < nsize; q++) PetscCallMPI(MPI_Win_shared_query(sh->ghost_win, q, &bytes, &disp, &sh->node_ghosts[q]));
  } else {
    PetscCall(PetscMalloc1(sh->offnode_ghosts ? g->nghost * ncols : 1, &sh->ghosts));
    sh->node_ghosts[0] = sh->ghosts;
  }

  /* per nonzero: the row in the node's window (flag 0) or the off-node ghost slot (flag 1) */
  PetscCall(PetscCalloc1(nnz + PREFETCH, &sh->slot_code)); /* padding: window row 0, see bo_graph_spmm */
  for (int64_t e = 0; e < nnz; e++) {
    int64_t s = g->col_slot[e];
    if (s >= 0) sh->slot_code[e] = (uint32_t)(row0[rank] + s) << 1;
    else {
      int64_t slot = -1 - s, j = g->ghost_ids[slot];
      int     r    = bo_rows_owner(g->rows.n, size, j);
      if (row0[r] >= 0) {
        bo_rows theirs;
        bo_rows_partition(g->rows.n, r, size, &theirs);
        sh->slot_code[e] = (uint32_t)(row0[r] + (j - theirs.lo)) << 1;
      } else sh->slot_code[e] = (uint32_t)slot << 1 | 1u;
    }
  }
  PetscCall(PetscFree(row0));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_graph_shared_exchange(bo_graph_shared *sh)
{
  PetscFunctionBeginUser;
  if (sh->any_shared) PetscCall(bo_node_window_fence(sh->win, sh->node)); /* the node's rows, as written before this call, become visible to every node rank */
  if (sh->any_offnode) PetscCall(gather_rows_counts(sh->graph, sh->send_counts, sh->recv_counts, sh->ncols, MPI_DOUBLE, sizeof(double), sh->rows, sh->ghosts));
  if (sh->any_offnode && sh->any_shared) PetscCall(bo_node_window_fence(sh->ghost_win, sh->node)); /* every node rank's ghosts in place before any reads them */
  PetscFunctionReturn(0);
}

void bo_graph_shared_spmm(const bo_graph_shared *sh, double *b)
{
  const bo_graph *g = sh->graph;
  spmm_codes(g->indptr, g->data, sh->slot_code, sh->ncols, sh->node_rows, sh->ghosts, 0, bo_rows_local(&g->rows), b);
}

PetscErrorCode bo_graph_shared_destroy(bo_graph_shared *sh)
{
  PetscFunctionBeginUser;
  if (sh->win != MPI_WIN_NULL) PetscCall(bo_node_window_free(&sh->win));
  else PetscCall(PetscFree(sh->rows));
  if (sh->ghost_win != MPI_WIN_NULL) PetscCall(bo_node_window_free(&sh->ghost_win));
  else PetscCall(PetscFree(sh->ghosts));
  if (sh->node != MPI_COMM_NULL) PetscCallMPI(MPI_Comm_free(&sh->node));
  if (sh->node_granks) PetscCall(PetscFree3(sh->node_granks, sh->node_row0, sh->node_ghosts));
  PetscCall(PetscFree(sh->slot_code));
  if (sh->send_counts) PetscCall(PetscFree2(sh->send_counts, sh->recv_counts));
  PetscCall(PetscMemzero(sh, sizeof *sh));
  sh->node      = MPI_COMM_NULL;
  sh->win       = MPI_WIN_NULL;
  sh->ghost_win = MPI_WIN_NULL;
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- work sharing within a node */

PetscErrorCode bo_graph_node_create(const bo_graph_shared *sh, bo_graph_node *nd)
{
  const bo_graph *g     = sh->graph;
  int64_t         local = bo_rows_local(&g->rows), nnz = g->indptr[local], mine[2] = {local, nnz}, *all = NULL;
  PetscMPIInt     size;

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(nd, sizeof *nd));
  nd->win  = MPI_WIN_NULL;
  nd->size = sh->node_size;
  nd->rank = sh->node_rank;
  PetscCall(PetscCalloc1(nd->size, &nd->peer));
  if (nd->size == 1) {
    nd->peer[0] = (bo_graph_peer){g->indptr, g->data, sh->slot_code, local, g->rows.lo, 0};
    PetscFunctionReturn(0);
  }
  PetscCallMPI(MPI_Comm_size(g->comm, &size));
  PetscCall(PetscMalloc1(2 * nd->size, &all));
  PetscCallMPI(MPI_Allgather(mine, 2, MPI_INT64_T, all, 2, MPI_INT64_T, sh->node));
  {
    /* this rank's part: indptr (local + 1 int64), codes (nnz + PREFETCH uint32, to 8 bytes), data (nnz float) */
    size_t   ncode = (size_t)(nnz + PREFETCH + 1) & ~(size_t)1, bytes = (8 * (size_t)(local + 1) + 4 * ncode + 4 * (size_t)nnz + 63) & ~(size_t)63; /* whole cache lines: the next rank's part stays aligned */
    char    *base;
    MPI_Aint qbytes;
    int      disp;
    PetscCall(bo_node_window_allocate(sh->node, bytes, 1, &base, &nd->win));
    PetscCall(PetscArraycpy((int64_t *)base, g->indptr, local + 1));
    PetscCall(PetscArraycpy((uint32_t *)(base + 8 * (local + 1)), sh->slot_code, nnz + PREFETCH));
    PetscCall(PetscArraycpy((float *)(base + 8 * (local + 1) + 4 * ncode), g->data, nnz));
    PetscCall(bo_node_window_fence(nd->win, sh->node));
    for (int q = 0; q < nd->size; q++) {
      int64_t  ql = all[2 * q], qnnz = all[2 * q + 1];
      size_t   qcode = (size_t)(qnnz + PREFETCH + 1) & ~(size_t)1;
      bo_rows  theirs;
      char    *qb;
      PetscCallMPI(MPI_Win_shared_query(nd->win, q, &qbytes, &disp, &qb));
      bo_rows_partition(g->rows.n, sh->node_granks[q], size, &theirs);
      PetscCheck(bo_rows_local(&theirs) == ql, PETSC_COMM_SELF, BO_ERR_RUNTIME, "graph: node rank %d holds %lld rows, the partition gives %lld; expected the tile partition (internal error)", q, (long long)ql, (long long)bo_rows_local(&theirs));
      nd->peer[q] = (bo_graph_peer){(const int64_t *)qb, (const float *)(qb + 8 * (ql + 1) + 4 * qcode), (const uint32_t *)(qb + 8 * (ql + 1)), ql, theirs.lo, sh->node_row0[q]};
    }
  }
  PetscCall(PetscFree(all));
  PetscFunctionReturn(0);
}

void bo_graph_node_spmm(const bo_graph_node *nd, const bo_graph_shared *sh, int q, int64_t r0, int64_t r1, double *b)
{
  const bo_graph_peer *p = &nd->peer[q];
  spmm_codes(p->indptr, p->data, p->code, sh->ncols, sh->node_rows, sh->node_ghosts[q], r0, r1, b);
}

PetscErrorCode bo_graph_node_destroy(bo_graph_node *nd)
{
  PetscFunctionBeginUser;
  PetscCall(bo_node_window_free(&nd->win));
  PetscCall(PetscFree(nd->peer));
  PetscCall(PetscMemzero(nd, sizeof *nd));
  nd->win = MPI_WIN_NULL;
  PetscFunctionReturn(0);
}

PetscErrorCode bo_graph_max_row_sum(const bo_graph *g, double *max_sum)
{
  double m = 0;

  PetscFunctionBeginUser;
  for (int64_t i = 0; i < bo_rows_local(&g->rows); i++) {
    double s = 0;
    for (int64_t e = g->indptr[i]; e < g->indptr[i + 1]; e++) s += fabs((double)g->data[e]);
    m = PetscMax(m, s);
  }
  PetscCallMPI(MPI_Allreduce(&m, max_sum, 1, MPI_DOUBLE, MPI_MAX, g->comm));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_graph_destroy(bo_graph *g)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree(g->indptr));
  PetscCall(PetscFree(g->indices));
  PetscCall(PetscFree(g->data));
  PetscCall(PetscFree(g->ghost_ids));
  if (g->send_counts) PetscCall(PetscFree4(g->send_counts, g->send_displs, g->recv_counts, g->recv_displs));
  PetscCall(PetscFree(g->send_rows));
  PetscCall(PetscFree(g->col_slot));
  PetscCall(PetscFree(g->slot_code));
  PetscCall(PetscFree(g->sendbuf));
  g->send_counts = g->send_displs = g->recv_counts = g->recv_displs = NULL;
  g->nghost = g->nsend = 0;
  g->sendbuf_bytes  = 0;
  g->exchange_ready = PETSC_FALSE;
  PetscFunctionReturn(0);
}
