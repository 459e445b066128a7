/* graph_io.c - a row-distributed CSR graph in HDF5 (see graph.h).
 *
 *   /graph/indptr   int64 (n + 1)  global offsets into indices/data
 *   /graph/indices  int64 (nnz)    column ids, ascending within a row
 *   /graph/data     float32 (nnz)
 *   attributes of /graph: n, knn, weights, symmetrize, and scale (Gaussian weights)
 *
 * Each rank writes and reads only its slice: the indptr entries of its rows (the last owner of
 * rows also writes entry n) and its nonzeros, placed by the exclusive prefix sum of the nnz over
 * the ranks.  So no rank ever holds the whole graph, and a graph written at P ranks reads back at
 * any other rank count.
 */
#include "boundopt/error.h"
#include "boundopt/graph.h"
#include "boundopt/h5.h"
#include <string.h>

PetscErrorCode bo_graph_write(hid_t file, const bo_graph *g, int64_t knn, const char *weights, const char *symmetrize)
{
  int64_t  local = bo_rows_local(&g->rows), nnz = g->indptr[local], off = 0, total = 0, *gptr;
  int      rank;
  PetscBool last;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(g->comm, &rank));
  PetscCallMPI(MPI_Exscan(&nnz, &off, 1, MPI_INT64_T, MPI_SUM, g->comm));
  if (!rank) off = 0; /* MPI_Exscan leaves rank 0's result undefined */
  PetscCallMPI(MPI_Allreduce(&nnz, &total, 1, MPI_INT64_T, MPI_SUM, g->comm));
  /* the rank holding row n-1 also writes indptr[n] (ranks past the last tile hold no rows) */
  last = local > 0 && g->rows.hi == g->rows.n ? PETSC_TRUE : PETSC_FALSE;
  PetscCall(PetscMalloc1(local + 1, &gptr));
  for (int64_t i = 0; i <= local; i++) gptr[i] = g->indptr[i] + off;
  PetscCall(bo_h5_write_rows(file, "/graph/indptr", H5T_NATIVE_INT64, H5T_STD_I64LE, g->rows.n + 1, 1, g->rows.lo, g->rows.hi + (last ? 1 : 0), gptr));
  PetscCall(PetscFree(gptr));
  PetscCall(bo_h5_write_rows(file, "/graph/indices", H5T_NATIVE_INT64, H5T_STD_I64LE, total, 1, off, off + nnz, g->indices));
  PetscCall(bo_h5_write_rows(file, "/graph/data", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, total, 1, off, off + nnz, g->data));
  PetscCall(bo_h5_attr_write_int64(file, "/graph", "n", g->rows.n));
  PetscCall(bo_h5_attr_write_int64(file, "/graph", "knn", knn));
  PetscCall(bo_h5_attr_write_string(file, "/graph", "weights", weights));
  PetscCall(bo_h5_attr_write_string(file, "/graph", "symmetrize", symmetrize));
  if (weights && !strcmp(weights, "gaussian")) PetscCall(bo_h5_attr_write_double(file, "/graph", "scale", g->scale));
  PetscFunctionReturn(0);
}

/* Checks of one rank's slice; the first problem found, as text (empty: fine). */
static void check_slice(const bo_graph *g, char *why, size_t len)
{
  int64_t local = bo_rows_local(&g->rows);

  why[0] = 0;
  for (int64_t i = 0; i < local; i++) {
    if (g->indptr[i + 1] < g->indptr[i]) {
      snprintf(why, len, "/graph/indptr decreases at row %lld; expected non-decreasing offsets", (long long)(g->rows.lo + i));
      return;
    }
    for (int64_t e = g->indptr[i]; e < g->indptr[i + 1]; e++) {
      int64_t j = g->indices[e];
      if (j < 0 || j >= g->rows.n) {
        snprintf(why, len, "/graph/indices: column %lld in row %lld; expected 0 <= column < n = %lld", (long long)j, (long long)(g->rows.lo + i), (long long)g->rows.n);
        return;
      }
      if (e > g->indptr[i] && j <= g->indices[e - 1]) {
        snprintf(why, len, "/graph/indices: row %lld is not strictly ascending; expected sorted columns without duplicates", (long long)(g->rows.lo + i));
        return;
      }
    }
  }
}

PetscErrorCode bo_graph_read(MPI_Comm comm, const char *path, const bo_rows *rows, bo_graph *g)
{
  hid_t       file;
  bo_h5_info  iptr, iind, idat;
  int64_t     local = bo_rows_local(rows), first, nnz, *raw;
  PetscBool   ok;
  PetscMPIInt bad;
  char        why[256];

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(g, sizeof *g));
  g->comm = comm;
  g->rows = *rows;
  PetscCall(bo_h5_open_read(comm, path, &file));
  PetscCall(bo_h5_exists(file, "/graph/indptr", &ok));
  if (ok) PetscCall(bo_h5_exists(file, "/graph/indices", &ok));
  if (ok) PetscCall(bo_h5_exists(file, "/graph/data", &ok));
  if (!ok) PetscCall(bo_h5_close(&file));
  PetscCheck(ok, comm, BO_ERR_INPUT, "%s: no /graph/indptr, /graph/indices and /graph/data; expected a graph file (written by task knn)", path);
  PetscCall(bo_h5_dataset_info(file, path, "/graph/indptr", &iptr));
  PetscCall(bo_h5_dataset_info(file, path, "/graph/indices", &iind));
  PetscCall(bo_h5_dataset_info(file, path, "/graph/data", &idat));
  ok = iptr.rank == 1 && iind.rank == 1 && idat.rank == 1 && iptr.cls == H5T_INTEGER && iind.cls == H5T_INTEGER && idat.cls == H5T_FLOAT && iind.dims[0] == idat.dims[0] ? PETSC_TRUE : PETSC_FALSE;
  if (!ok) PetscCall(bo_h5_close(&file));
  PetscCheck(ok, comm, BO_ERR_INPUT, "%s: /graph datasets of the wrong shape or type; expected 1-d integer indptr and indices and 1-d float data of the same length", path);
  ok = iptr.dims[0] == (hsize_t)(rows->n + 1) ? PETSC_TRUE : PETSC_FALSE;
  if (!ok) PetscCall(bo_h5_close(&file));
  PetscCheck(ok, comm, BO_ERR_INPUT, "%s: /graph/indptr has %lld entries; expected n + 1 = %lld (a graph of the input's %lld rows)", path, (long long)iptr.dims[0], (long long)(rows->n + 1), (long long)rows->n);

  /* indptr [lo, hi] (one entry more than the rows), then the slice of nonzeros it names */
  PetscCall(PetscMalloc1(local + 1, &raw));
  PetscCall(bo_h5_read_rows(file, "/graph/indptr", H5T_NATIVE_INT64, 1, rows->lo, rows->hi + 1, raw));
  first = raw[0];
  nnz   = raw[local] - first;
  ok    = first >= 0 && nnz >= 0 && raw[local] <= (int64_t)iind.dims[0] ? PETSC_TRUE : PETSC_FALSE;
  PetscCall(bo_error_any(comm, !ok, &bad));
  if (bad >= 0) {
    PetscCall(PetscFree(raw));
    PetscCall(bo_h5_close(&file));
  }
  PetscCheck(bad < 0, comm, BO_ERR_INPUT, "%s: /graph/indptr offsets outside [0, %lld] (rank %d's rows); expected offsets into /graph/indices", path, (long long)iind.dims[0], (int)bad);
  PetscCall(PetscMalloc1(local + 1, &g->indptr));
  for (int64_t i = 0; i <= local; i++) g->indptr[i] = raw[i] - first;
  PetscCall(PetscFree(raw));
  PetscCall(PetscMalloc1(nnz + 1, &g->indices));
  PetscCall(PetscMalloc1(nnz + 1, &g->data));
  PetscCall(bo_h5_read_rows(file, "/graph/indices", H5T_NATIVE_INT64, 1, first, first + nnz, g->indices));
  PetscCall(bo_h5_read_rows(file, "/graph/data", H5T_NATIVE_FLOAT, 1, first, first + nnz, g->data));
  if (H5Aexists_by_name(file, "/graph", "scale", H5P_DEFAULT) > 0) { /* Gaussian width (h5.h has no double reader) */
    hid_t attr = H5Aopen_by_name(file, "/graph", "scale", H5P_DEFAULT, H5P_DEFAULT);
    if (attr >= 0) {
      if (H5Aread(attr, H5T_NATIVE_DOUBLE, &g->scale) < 0) g->scale = 0;
      H5Aclose(attr);
    }
  }
  PetscCall(bo_h5_close(&file));

  check_slice(g, why, sizeof why);
  PetscCall(bo_error_any(comm, why[0] ? PETSC_TRUE : PETSC_FALSE, &bad));
  if (bad >= 0) {
    PetscCallMPI(MPI_Bcast(why, sizeof why, MPI_CHAR, bad, comm));
    PetscCall(bo_graph_destroy(g));
  }
  PetscCheck(bad < 0, comm, BO_ERR_INPUT, "%s: %s", path, why);
  PetscFunctionReturn(0);
}
