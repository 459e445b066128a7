/* bench_spmm.c - is bo_graph_spmm (W*Y, own CSR loop in global column order) bit-identical across
 * rank counts, and how does it compare with PETSc MatMult on the same rows?
 *
 *   mpirun -n P build/benchmarks/bench_spmm GRAPH.h5 K
 *
 * Y (n x K) is a deterministic function of the global row index.  boundopt: one gather of the
 * ghost rows + one bo_graph_spmm of all K columns; and, with the ranks of one node sharing their
 * rows of Y (bo_graph_shared: a node barrier instead of the exchange), bo_graph_shared_exchange +
 * bo_graph_shared_spmm.  PETSc: MATMPIAIJ with the same row ownership, K MatMults (one per
 * column).  Times: median of REPS of the max over ranks, after one untimed call.  Hashes: 64-bit
 * FNV-1a of the bits of B (n x K, row-major) gathered to rank 0 in row order.  One JSON line on
 * rank 0.
 */
#include "boundopt/graph.h"
#include "boundopt/h5.h"
#include "boundopt/tiles.h"
#include <petscmat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_support.h"

#define REPS 9

static double yval(int64_t i, int64_t c)
{
  return sin(1.7 * (double)i + 0.3 * (double)c) + 1e-9 * (double)((i * 7919 + c * 104729) % 1000003) / 3.0;
}

/* Gathers the local rows (local x k doubles) to rank 0 in row order; rank 0 returns the FNV-1a hash. */
static PetscErrorCode hash_rows(MPI_Comm comm, int64_t n, int64_t local, int64_t k, const double *b, uint64_t *hash)
{
  PetscMPIInt rank, size;
  int         cnt = (int)(local * k), *counts = NULL, *displs = NULL;
  double     *all = NULL;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  if (!rank) {
    PetscCall(PetscMalloc3(size, &counts, size, &displs, n * k, &all));
  }
  PetscCallMPI(MPI_Gather(&cnt, 1, MPI_INT, counts, 1, MPI_INT, 0, comm));
  if (!rank) for (int r = 0, d = 0; r < size; r++) { displs[r] = d; d += counts[r]; }
  PetscCallMPI(MPI_Gatherv(b, cnt, MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, 0, comm));
  *hash = 0;
  if (!rank) {
    uint64_t             h = 1469598103934665603ULL;
    const unsigned char *p = (const unsigned char *)all;
    for (size_t i = 0; i < (size_t)(n * k) * sizeof(double); i++) { h ^= p[i]; h *= 1099511628211ULL; }
    *hash = h;
    PetscCall(PetscFree3(counts, displs, all));
  }
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  MPI_Comm    comm;
  PetscMPIInt rank, size;
  hid_t       file;
  int64_t     n, k, local, nnz_local, nnz;
  PetscBool   found;
  bo_rows     rows;
  bo_graph    g;
  double     *y, *ghosts, *b, *bp, *bs, tb[REPS], tp[REPS], ts[REPS];
  uint64_t    hb, hp, hs;
  bo_graph_shared sh;
  Mat         A;
  Vec         x, out;

  PetscCall(PetscInitializeNoArguments());
  PetscCall(bo_h5_init());
  comm = PETSC_COMM_WORLD;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  if (argc < 3) {
    PetscCall(PetscPrintf(comm, "usage: bench_spmm GRAPH.h5 K\n"));
    PetscCall(PetscFinalize());
    return 2;
  }
  k = atoll(argv[2]);

  PetscCall(bo_h5_open_read(comm, argv[1], &file));
  PetscCall(bo_h5_attr_read_int64(file, "/graph", "n", &n, &found));
  PetscCall(bo_h5_close(&file));
  PetscCheck(found, comm, PETSC_ERR_FILE_UNEXPECTED, "%s: /graph has no attribute n", argv[1]);
  bo_rows_partition(n, rank, size, &rows);
  PetscCall(bo_graph_read(comm, argv[1], &rows, &g));
  PetscCall(bo_graph_setup_exchange(&g));
  local     = bo_rows_local(&rows);
  nnz_local = g.indptr[local];
  PetscCallMPI(MPI_Allreduce(&nnz_local, &nnz, 1, MPI_INT64_T, MPI_SUM, comm));

  PetscCall(PetscMalloc4(local * k + 1, &y, g.nghost * k + 1, &ghosts, local * k + 1, &b, local * k + 1, &bp));
  for (int64_t i = 0; i < local; i++)
    for (int64_t c = 0; c < k; c++) y[i * k + c] = yval(rows.lo + i, c);

  /* boundopt: gather + spmm of all K columns (r = -1: untimed) */
  for (int r = -1; r < REPS; r++) {
    double t0, t, tmax;
    PetscCallMPI(MPI_Barrier(comm));
    t0 = MPI_Wtime();
    PetscCall(bo_graph_gather_ghosts(&g, k, y, ghosts));
    bo_graph_spmm(&g, k, y, ghosts, b);
    t = MPI_Wtime() - t0;
    PetscCallMPI(MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, comm));
    if (r >= 0) tb[r] = tmax;
  }

  /* boundopt with the node's rows shared: Y written into the window once, then exchange + spmm */
  PetscCall(PetscMalloc1(local * k + 1, &bs));
  PetscCall(bo_graph_shared_create(&g, k, BO_SHARE_NODE, &sh));
  PetscCall(PetscArraycpy(sh.rows, y, local * k));
  for (int r = -1; r < REPS; r++) {
    double t0, t, tmax;
    PetscCallMPI(MPI_Barrier(comm));
    t0 = MPI_Wtime();
    PetscCall(bo_graph_shared_exchange(&sh));
    bo_graph_shared_spmm(&sh, bs);
    t = MPI_Wtime() - t0;
    PetscCallMPI(MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, comm));
    if (r >= 0) ts[r] = tmax;
  }

  /* PETSc: MATMPIAIJ, same rows */
  {
    PetscInt *d_nnz, *o_nnz, *cols = NULL, maxrow = 0;
    PetscScalar *vals = NULL;
    PetscCall(PetscMalloc2(local + 1, &d_nnz, local + 1, &o_nnz));
    for (int64_t i = 0; i < local; i++) {
      d_nnz[i] = o_nnz[i] = 0;
      for (int64_t e = g.indptr[i]; e < g.indptr[i + 1]; e++) {
        if (g.indices[e] >= rows.lo && g.indices[e] < rows.hi) d_nnz[i]++;
        else o_nnz[i]++;
      }
      maxrow = PetscMax(maxrow, d_nnz[i] + o_nnz[i]);
    }
    PetscCall(MatCreateAIJ(comm, (PetscInt)local, (PetscInt)local, (PetscInt)n, (PetscInt)n, 0, d_nnz, 0, o_nnz, &A));
    PetscCall(PetscMalloc2(maxrow + 1, &cols, maxrow + 1, &vals));
    for (int64_t i = 0; i < local; i++) {
      PetscInt row = (PetscInt)(rows.lo + i), m = 0;
      for (int64_t e = g.indptr[i]; e < g.indptr[i + 1]; e++, m++) {
        cols[m] = (PetscInt)g.indices[e];
        vals[m] = (PetscScalar)g.data[e];
      }
      PetscCall(MatSetValues(A, 1, &row, m, cols, vals, INSERT_VALUES));
    }
    PetscCall(MatAssemblyBegin(A, MAT_FINAL_ASSEMBLY));
    PetscCall(MatAssemblyEnd(A, MAT_FINAL_ASSEMBLY));
    PetscCall(PetscFree2(cols, vals));
    PetscCall(PetscFree2(d_nnz, o_nnz));
  }
  PetscCall(MatCreateVecs(A, &x, &out));
  for (int r = -1; r < REPS; r++) {
    double t0, t, tmax;
    PetscCallMPI(MPI_Barrier(comm));
    t0 = MPI_Wtime();
    for (int64_t c = 0; c < k; c++) {
      PetscScalar       *xa;
      const PetscScalar *oa;
      PetscCall(VecGetArray(x, &xa));
      for (int64_t i = 0; i < local; i++) xa[i] = y[i * k + c];
      PetscCall(VecRestoreArray(x, &xa));
      PetscCall(MatMult(A, x, out));
      PetscCall(VecGetArrayRead(out, &oa));
      for (int64_t i = 0; i < local; i++) bp[i * k + c] = oa[i];
      PetscCall(VecRestoreArrayRead(out, &oa));
    }
    t = MPI_Wtime() - t0;
    PetscCallMPI(MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, comm));
    if (r >= 0) tp[r] = tmax;
  }

  PetscCall(hash_rows(comm, n, local, k, b, &hb));
  PetscCall(hash_rows(comm, n, local, k, bp, &hp));
  PetscCall(hash_rows(comm, n, local, k, bs, &hs));
  if (!rank) {
    double sb = median(tb, REPS), sp = median(tp, REPS), ss = median(ts, REPS), la = loadavg();
    printf("{\"bench\":\"spmm\",\"ranks\":%d,\"n\":%lld,\"nnz\":%lld,\"k\":%lld,\"boundopt_seconds\":%.6g,\"boundopt_shared_seconds\":%.6g,"
           "\"petsc_seconds\":%.6g,\"ratio\":%.4g,\"shared_ratio\":%.4g,\"boundopt_hash\":\"%016llx\",\"boundopt_shared_hash\":\"%016llx\",\"petsc_hash\":\"%016llx\",\"load\":%.2f}\n",
           (int)size, (long long)n, (long long)nnz, (long long)k, sb, ss, sp, sp > 0 ? sb / sp : 0.0, sp > 0 ? ss / sp : 0.0,
           (unsigned long long)hb, (unsigned long long)hs, (unsigned long long)hp, la);
    fflush(stdout);
  }
  PetscCall(VecDestroy(&x));
  PetscCall(VecDestroy(&out));
  PetscCall(MatDestroy(&A));
  PetscCall(bo_graph_shared_destroy(&sh));
  PetscCall(PetscFree(bs));
  PetscCall(PetscFree4(y, ghosts, b, bp));
  PetscCall(bo_graph_destroy(&g));
  PetscCall(PetscFinalize());
  return 0;
}
