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

  PetscCall(PetscMalloc1(nnz + 1, &g->col_slot));
  for (int64_t e = 0; e < nnz; e++) {
    int64_t j = g->indices[e];
    g->col_slot[e] = j >= g->rows.lo && j < g->rows.hi ? j - g->rows.lo : -(1 + find_sorted(g->ghost_ids, g->nghost, j));
  }
  g->exchange_ready = PETSC_TRUE;
  PetscFunctionReturn(0);
}

/* Moves the ghost rows of elem-sized values, ncols per row, with one Alltoallv whose counts are in
 * rows (a contiguous row type), so that no count overflows an int however wide the rows are. */
static PetscErrorCode gather_rows(bo_graph *g, int64_t ncols, MPI_Datatype elem, size_t elem_bytes, const void *y, void *ghosts)
{
  MPI_Datatype row;
  size_t       row_bytes = (size_t)ncols * elem_bytes, need = row_bytes * (size_t)g->nsend;

  PetscFunctionBeginUser;
  PetscCheck(g->exchange_ready, PETSC_COMM_SELF, PETSC_ERR_ORDER, "graph: ghost gather before bo_graph_setup_exchange; expected the exchange set up first");
  if (ncols <= 0) PetscFunctionReturn(0);
  PetscCheck(ncols < INT32_MAX, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: %lld columns; expected fewer than 2^31", (long long)ncols);
  if (need > g->sendbuf_bytes) {
    PetscCall(PetscFree(g->sendbuf));
    PetscCall(PetscMalloc(need, &g->sendbuf));
    g->sendbuf_bytes = need;
  }
  for (int64_t i = 0; i < g->nsend; i++) memcpy((char *)g->sendbuf + (size_t)i * row_bytes, (const char *)y + (size_t)g->send_rows[i] * row_bytes, row_bytes);
  PetscCallMPI(MPI_Type_contiguous((int)ncols, elem, &row));
  PetscCallMPI(MPI_Type_commit(&row));
  PetscCallMPI(MPI_Alltoallv(g->sendbuf, g->send_counts, g->send_displs, row, ghosts, g->recv_counts, g->recv_displs, row, g->comm));
  PetscCallMPI(MPI_Type_free(&row));
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
 * ascending global column order: the same additions in the same order on any number of ranks. */
void bo_graph_spmm(const bo_graph *g, int64_t ncols, const double *y, const double *ghosts, double *b)
{
  int64_t local = bo_rows_local(&g->rows);

  for (int64_t i = 0; i < local; i++) {
    double *bi = b + i * ncols;
    for (int64_t c = 0; c < ncols; c++) bi[c] = 0;
    for (int64_t e = g->indptr[i]; e < g->indptr[i + 1]; e++) {
      int64_t       s  = g->col_slot[e];
      const double *yj = s >= 0 ? y + s * ncols : ghosts + (-1 - s) * ncols;
      double        w  = (double)g->data[e];
      for (int64_t c = 0; c < ncols; c++) bi[c] += w * yj[c];
    }
  }
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
  PetscCall(PetscFree(g->sendbuf));
  g->send_counts = g->send_displs = g->recv_counts = g->recv_displs = NULL;
  g->nghost = g->nsend = 0;
  g->sendbuf_bytes  = 0;
  g->exchange_ready = PETSC_FALSE;
  PetscFunctionReturn(0);
}
