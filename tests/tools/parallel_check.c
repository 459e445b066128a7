/* parallel_check.c - the parallel services give the same bits at any rank count.
 *
 *   mpirun -n P parallel_check stats OUT.txt
 *       For n in {0, 1, 255, 256, 257, 1000, 5000}: a deterministic n x 6 matrix (row i drawn from
 *       the stream (seed, id = i), so any rank can make any row), each rank holding its rows of
 *       bo_rows_partition.  Rank 0 writes, as hex doubles (%a): bo_stats_column_mean,
 *       bo_stats_rows (also on a copy with NaN/Inf rows), bo_pca_fit (3 components, LAPACK) and
 *       the projected rows (gathered).  The outputs at 1, 2, 3 ranks must be byte-identical.
 *   mpirun -n P parallel_check ckwrite CK.h5 DUMP.txt
 *       Writes a checkpoint of row-distributed arrays (N_CK x 5 doubles, N_CK int64 ids) and two
 *       scalars; rank 0 dumps what was written.
 *   mpirun -n P parallel_check ckread CK.h5 DUMP.txt
 *       Reads it back with this rank count's partition, checks every row against the generator
 *       (exit 1 on a difference) and dumps what was read: the dump equals ckwrite's.
 *   mpirun -n P parallel_check ckforeign CK.h5
 *       Opens it as another job (other input identity): must be refused, on every rank, with
 *       "another job" (exit 0 when refused so, 1 otherwise).
 *
 * Exit status 0 on success; any library error ends the run with PETSc's status.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boundopt/checkpoint.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/pca.h"
#include "boundopt/rng.h"
#include "boundopt/stats.h"
#include "boundopt/tiles.h"

enum { D = 6, NCOMP = 3, N_CK = 1234, CK_COLS = 5 };
static const int64_t sizes[] = {0, 1, 255, 256, 257, 1000, 5000};
#define SEED 20240611ULL
#define CK_IDENTITY 0xC0FFEEULL

/* ---------------------------------------------------------------- the global matrix */

/* Row i: column j is an offset (so the mean and the centring matter) plus a normal draw scaled by
 * (1 + j) 2^e, e in -16..16 per entry: distinct column variances, and magnitudes over ten decades,
 * so that a plain double sum of the column (77 bits wide) would depend on the summation order. */
static void make_row(int64_t i, float *row)
{
  bo_rng r;
  bo_rng_init(&r, SEED, (uint64_t)i, 1);
  for (int j = 0; j < D; j++) {
    int e = (int)bo_rng_below(&r, 33) - 16;
    row[j] = (float)(0.25 * j - 1.0 + ldexp(1.0 + j, e) * bo_rng_normal(&r));
  }
}

static void make_ck_row(int64_t i, double *row, int64_t *id)
{
  bo_rng r;
  bo_rng_init(&r, SEED, (uint64_t)i, 2);
  for (int j = 0; j < CK_COLS; j++) row[j] = bo_rng_normal(&r) * pow(10.0, j - 2);
  *id = (int64_t)bo_rng_u64(&r);
}

/* ---------------------------------------------------------------- output (rank 0) */

static void put_doubles(FILE *f, const char *label, const double *v, int64_t count)
{
  if (!f) return;
  fprintf(f, "%s", label);
  for (int64_t i = 0; i < count; i++) fprintf(f, " %a", v[i]);
  fprintf(f, "\n");
}

/* Gathers count values per rank (in rank order = row order) onto rank 0. */
static PetscErrorCode gather_rows(MPI_Comm comm, MPI_Datatype type, size_t size, const void *mine, int count, void **all, int *total)
{
  PetscMPIInt rank, nranks;
  int        *counts = NULL, *displs = NULL;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &nranks));
  *all   = NULL;
  *total = 0;
  if (!rank) {
    counts = calloc((size_t)nranks, sizeof *counts);
    displs = calloc((size_t)nranks, sizeof *displs);
  }
  PetscCallMPI(MPI_Gather(&count, 1, MPI_INT, counts, 1, MPI_INT, 0, comm));
  if (!rank) {
    for (int r = 0; r < nranks; r++) {
      displs[r] = *total;
      *total += counts[r];
    }
    *all = malloc(size * (size_t)(*total > 0 ? *total : 1));
  }
  PetscCallMPI(MPI_Gatherv(mine, count, type, *all, counts, displs, type, 0, comm));
  free(counts);
  free(displs);
  PetscFunctionReturn(0);
}

static void put_row_stats(FILE *f, const char *label, const bo_row_stats *s)
{
  if (!f) return;
  fprintf(f, "%s min %a max %a mean %a nonfinite_values %lld nonfinite_rows %lld first %lld\n", label, s->min_norm, s->max_norm, s->mean_norm, (long long)s->nonfinite_values, (long long)s->nonfinite_rows, (long long)s->first_nonfinite_row);
}

/* ---------------------------------------------------------------- stats mode */

static PetscErrorCode stats_for(MPI_Comm comm, int64_t n, FILE *f)
{
  PetscMPIInt   rank, nranks;
  bo_rows       rows;
  float        *x, *bad, *y;
  double        mean[D];
  bo_row_stats  s;
  bo_pca        pca;
  bo_eigen_opts lapack = {BO_EIGEN_LAPACK, 0, 0, 0};

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &nranks));
  bo_rows_partition(n, rank, nranks, &rows);
  int64_t local = bo_rows_local(&rows);
  PetscCall(PetscMalloc3(local * D + 1, &x, local * D + 1, &bad, local * NCOMP + 1, &y));
  for (int64_t i = rows.lo; i < rows.hi; i++) make_row(i, x + (i - rows.lo) * D);
  if (f) fprintf(f, "n %lld\n", (long long)n);

  PetscCall(bo_stats_column_mean(comm, &rows, D, x, mean));
  put_doubles(f, "mean", mean, D);

  PetscCall(bo_stats_rows(comm, &rows, D, x, &s));
  put_row_stats(f, "rows", &s);

  /* non-finite rows at n/3 (NaN) and n-1 (+Inf and NaN), wherever they land */
  PetscCall(PetscArraycpy(bad, x, local * D));
  for (int64_t i = rows.lo; i < rows.hi; i++) {
    if (i == n / 3) bad[(i - rows.lo) * D + 2] = NAN;
    if (i == n - 1) {
      bad[(i - rows.lo) * D + 0] = INFINITY;
      bad[(i - rows.lo) * D + 5] = NAN;
    }
  }
  PetscCall(bo_stats_rows(comm, &rows, D, bad, &s));
  put_row_stats(f, "rows_nonfinite", &s);

  PetscCall(bo_pca_fit(comm, &rows, D, x, mean, NCOMP, &lapack, &pca));
  put_doubles(f, "pca_mean", pca.mean, D);
  put_doubles(f, "pca_variance", pca.variance, NCOMP);
  put_doubles(f, "pca_total_variance", &pca.total_variance, 1);
  put_doubles(f, "pca_components", pca.components, NCOMP * D);
  if (f) fprintf(f, "pca_rank_invariant %d\n", (int)pca.rank_invariant);

  /* projected rows: local, each bit-identical whatever the partition */
  PetscCall(bo_pca_project(&rows, D, x, mean, &pca, y));
  void *all;
  int   total;
  PetscCall(gather_rows(comm, MPI_FLOAT, sizeof(float), y, (int)(local * NCOMP), &all, &total));
  if (f) {
    const float *yy = all;
    fprintf(f, "projected %d values\n", total);
    for (int i = 0; i < total; i += NCOMP) fprintf(f, "%a %a %a\n", (double)yy[i], (double)yy[i + 1], (double)yy[i + 2]);
  }
  free(all);
  PetscCall(bo_pca_destroy(&pca));
  PetscCall(PetscFree3(x, bad, y));
  PetscFunctionReturn(0);
}

static PetscErrorCode run_stats(MPI_Comm comm, const char *out)
{
  PetscMPIInt rank;
  FILE       *f = NULL;
  int         ok;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (!rank) f = fopen(out, "w");
  ok = rank || f;
  PetscCallMPI(MPI_Bcast(&ok, 1, MPI_INT, 0, comm));
  PetscCheck(ok, comm, PETSC_ERR_FILE_OPEN, "%s: cannot write; expected a writable path", out);
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) PetscCall(stats_for(comm, sizes[k], f));
  if (f) fclose(f);
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- checkpoint modes */

static PetscErrorCode ck_hash(uint64_t identity, uint64_t *hash)
{
  PetscFunctionBeginUser;
  PetscCall(bo_checkpoint_job_hash(identity, hash));
  PetscFunctionReturn(0);
}

/* Rank 0 writes the gathered rows and ids as hex, and the scalars. */
static PetscErrorCode dump(MPI_Comm comm, const char *path, int64_t local, const double *x, const int64_t *ids, double t, int64_t k)
{
  PetscMPIInt rank;
  void       *allx, *allid;
  int         nx, nid;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(gather_rows(comm, MPI_DOUBLE, sizeof(double), x, (int)(local * CK_COLS), &allx, &nx));
  PetscCall(gather_rows(comm, MPI_INT64_T, sizeof(int64_t), ids, (int)local, &allid, &nid));
  if (!rank) {
    FILE *f = fopen(path, "w");
    PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot write; expected a writable path", path);
    fprintf(f, "rows %d\nt %a\nk %lld\n", nid, t, (long long)k);
    for (int i = 0; i < nid; i++) {
      fprintf(f, "%lld", (long long)((int64_t *)allid)[i]);
      for (int j = 0; j < CK_COLS; j++) fprintf(f, " %a", ((double *)allx)[i * CK_COLS + j]);
      fprintf(f, "\n");
    }
    fclose(f);
  }
  free(allx);
  free(allid);
  PetscFunctionReturn(0);
}

static PetscErrorCode run_ckwrite(MPI_Comm comm, const char *path, const char *dump_path)
{
  PetscMPIInt   rank, nranks;
  bo_rows       rows;
  bo_checkpoint ck;
  uint64_t      hash;
  double       *x;
  int64_t      *ids;
  const double  t = 1.0 / 3;
  const int64_t k = -1234567890123LL;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &nranks));
  bo_rows_partition(N_CK, rank, nranks, &rows);
  int64_t local = bo_rows_local(&rows);
  PetscCall(PetscMalloc2(local * CK_COLS + 1, &x, local + 1, &ids));
  for (int64_t i = rows.lo; i < rows.hi; i++) make_ck_row(i, x + (i - rows.lo) * CK_COLS, ids + (i - rows.lo));
  PetscCall(ck_hash(CK_IDENTITY, &hash));
  PetscCall(bo_checkpoint_begin_write(comm, path, hash, &ck));
  PetscCall(bo_checkpoint_put_rows(&ck, "x", H5T_NATIVE_DOUBLE, N_CK, CK_COLS, rows.lo, rows.hi, x));
  PetscCall(bo_checkpoint_put_rows(&ck, "ids", H5T_NATIVE_INT64, N_CK, 1, rows.lo, rows.hi, ids));
  PetscCall(bo_checkpoint_put_double(&ck, "t", t));
  PetscCall(bo_checkpoint_put_int64(&ck, "k", k));
  PetscCall(bo_checkpoint_end_write(&ck));
  PetscCall(dump(comm, dump_path, local, x, ids, t, k));
  PetscCall(PetscFree2(x, ids));
  PetscFunctionReturn(0);
}

static PetscErrorCode run_ckread(MPI_Comm comm, const char *path, const char *dump_path, int *failed)
{
  PetscMPIInt   rank, nranks;
  bo_rows       rows;
  bo_checkpoint ck;
  uint64_t      hash;
  PetscBool     exists;
  double       *x, want[CK_COLS], t = 0;
  int64_t      *ids, want_id, k = 0, bad = 0, total_bad;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &nranks));
  bo_rows_partition(N_CK, rank, nranks, &rows);
  int64_t local = bo_rows_local(&rows);
  PetscCall(PetscMalloc2(local * CK_COLS + 1, &x, local + 1, &ids));
  PetscCall(ck_hash(CK_IDENTITY, &hash));
  PetscCall(bo_checkpoint_open(comm, path, hash, &ck, &exists));
  PetscCheck(exists, comm, PETSC_ERR_FILE_OPEN, "%s: no checkpoint; expected one written by ckwrite", path);
  PetscCall(bo_checkpoint_get_rows(&ck, "x", H5T_NATIVE_DOUBLE, CK_COLS, rows.lo, rows.hi, x));
  PetscCall(bo_checkpoint_get_rows(&ck, "ids", H5T_NATIVE_INT64, 1, rows.lo, rows.hi, ids));
  PetscCall(bo_checkpoint_get_double(&ck, "t", &t));
  PetscCall(bo_checkpoint_get_int64(&ck, "k", &k));
  PetscCall(bo_checkpoint_close(&ck));
  for (int64_t i = rows.lo; i < rows.hi; i++) {
    make_ck_row(i, want, &want_id);
    if (memcmp(want, x + (i - rows.lo) * CK_COLS, sizeof want) || want_id != ids[i - rows.lo]) {
      if (!bad) fprintf(stderr, "parallel_check: rank %d: row %lld read back differs\n", (int)rank, (long long)i);
      bad++;
    }
  }
  if (t != 1.0 / 3 || k != -1234567890123LL) bad++;
  PetscCallMPI(MPI_Allreduce(&bad, &total_bad, 1, MPI_INT64_T, MPI_SUM, comm));
  *failed = total_bad != 0;
  PetscCall(dump(comm, dump_path, local, x, ids, t, k));
  PetscCall(PetscFree2(x, ids));
  PetscFunctionReturn(0);
}

static PetscErrorCode run_ckforeign(MPI_Comm comm, const char *path, int *failed)
{
  bo_checkpoint  ck;
  uint64_t       hash;
  PetscBool      exists = PETSC_FALSE;
  PetscErrorCode ierr;
  char          *specific = NULL;
  int            refused, all_refused;

  PetscFunctionBeginUser;
  PetscCall(ck_hash(CK_IDENTITY + 1, &hash));
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  ierr = bo_checkpoint_open(comm, path, hash, &ck, &exists);
  PetscCall(PetscPopErrorHandler());
  PetscErrorMessage(ierr, NULL, &specific);
  refused = ierr == BO_ERR_INPUT && specific && strstr(specific, "another job") != NULL;
  if (!refused) fprintf(stderr, "parallel_check: open as another job gave error %d: %s\n", (int)ierr, specific ? specific : "");
  if (ck.file >= 0) PetscCall(bo_checkpoint_close(&ck));
  PetscCallMPI(MPI_Allreduce(&refused, &all_refused, 1, MPI_INT, MPI_LAND, comm));
  *failed = !all_refused;
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "", *a = argc > 2 ? argv[2] : NULL, *b = argc > 3 ? argv[3] : NULL;
  int         failed = 0;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCall(bo_h5_init());
  if (!strcmp(mode, "stats") && a) PetscCall(run_stats(PETSC_COMM_WORLD, a));
  else if (!strcmp(mode, "ckwrite") && a && b) PetscCall(run_ckwrite(PETSC_COMM_WORLD, a, b));
  else if (!strcmp(mode, "ckread") && a && b) PetscCall(run_ckread(PETSC_COMM_WORLD, a, b, &failed));
  else if (!strcmp(mode, "ckforeign") && a) PetscCall(run_ckforeign(PETSC_COMM_WORLD, a, &failed));
  else {
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "usage: parallel_check stats OUT | ckwrite CK DUMP | ckread CK DUMP | ckforeign CK\n"));
    failed = 2;
  }
  PetscCall(PetscFinalize());
  return failed;
}
