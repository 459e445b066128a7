/* eigen_mpi_check.c - bo_eigen_sym: ScaLAPACK on several grids agrees with LAPACK.
 *
 *   mpirun --oversubscribe -n 2 build/tests/tools/eigen_mpi_check
 *   mpirun --oversubscribe -n 3 build/tests/tools/eigen_mpi_check     (grids leave ranks idle)
 *
 * The matrix is Q diag(n, n-1, ..., 1) Q^T with Q a product of seeded Householder reflectors, so
 * the spectrum is known and its gaps (1) make every eigenvector well defined.  Every check is
 * decided identically on all ranks; rank 0 prints one line per check and the summary
 *   eigen_mpi_check: N passed, M failed
 * and the exit status is 1 if anything failed.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "boundopt/eigen.h"

enum { N = 200, N_SMALL = 100, NREFLECTORS = 3, NWANT_PART = 7 };
#define TOL 1e-10

typedef struct {
  int passed, failed;
} tally;

/* ---------------------------------------------------------------- reporting */

/* ok is this rank's verdict; the check passes only if it passed on every rank. */
static PetscErrorCode record(tally *t, int ok, const char *fmt, ...)
{
  int         all_ok;
  PetscMPIInt rank;
  va_list     ap;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, PETSC_COMM_WORLD));
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  if (all_ok) t->passed++;
  else t->failed++;
  if (rank == 0) {
    printf("  %s  ", all_ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
  }
  PetscFunctionReturn(0);
}

/* Largest |a - b| over count entries, maximised over the ranks of comm. */
static PetscErrorCode max_difference(MPI_Comm comm, const double *a, const double *b, int count, double *diff)
{
  double local = 0;

  PetscFunctionBeginUser;
  for (int i = 0; i < count; i++) local = fmax(local, fabs(a[i] - b[i]));
  PetscCallMPI(MPI_Allreduce(&local, diff, 1, MPI_DOUBLE, MPI_MAX, comm));
  PetscFunctionReturn(0);
}

/* 1 if buf is bit-for-bit the same on every rank of comm. */
static PetscErrorCode identical_on_every_rank(MPI_Comm comm, const double *buf, int count, int *same)
{
  double *root;
  int     local;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(count, &root));
  PetscCall(PetscArraycpy(root, buf, count));
  PetscCallMPI(MPI_Bcast(root, count, MPI_DOUBLE, 0, comm));
  local = memcmp(root, buf, sizeof *buf * count) == 0;
  PetscCallMPI(MPI_Allreduce(&local, same, 1, MPI_INT, MPI_LAND, comm));
  PetscCall(PetscFree(root));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- the test matrix */

static double uniform_pm1(uint64_t *state)
{
  *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(*state >> 11) / 4503599627370496.0 - 1.0;
}

/* M <- H M H with H = I - beta v v^T, beta = 2 / v^T v; exact symmetry is kept. */
static void reflect_both_sides(int n, double *M, const double *v)
{
  double u[N], vv = 0, gamma = 0, beta;

  for (int i = 0; i < n; i++) vv += v[i] * v[i];
  beta = 2.0 / vv;
  for (int i = 0; i < n; i++) {
    u[i] = 0;
    for (int j = 0; j < n; j++) u[i] += M[i * n + j] * v[j];
    gamma += v[i] * u[i];
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) M[i * n + j] += -beta * (v[i] * u[j] + u[i] * v[j]) + beta * beta * gamma * v[i] * v[j];
}

/* A = H1 H2 H3 diag(n, ..., 1) H3 H2 H1: eigenvalue n - i for i = 0..n-1. */
static void build_known_spectrum_matrix(int n, double *A)
{
  double   v[NREFLECTORS][N];
  uint64_t seed = 20240611;

  for (int r = 0; r < NREFLECTORS; r++)
    for (int i = 0; i < n; i++) v[r][i] = uniform_pm1(&seed);
  memset(A, 0, sizeof *A * n * n);
  for (int i = 0; i < n; i++) A[i * n + i] = n - i;
  for (int r = NREFLECTORS - 1; r >= 0; r--) reflect_both_sides(n, A, v[r]);
}

/* ---------------------------------------------------------------- checks */

typedef struct {
  int     n;
  double *A, *w, *Z; /* the matrix and its LAPACK reference: all n eigenpairs */
} reference;

static PetscErrorCode check_lapack_reference(tally *t, const reference *ref)
{
  const int n = ref->n;
  double    exact[N], diff;
  int       same_w, same_z;

  PetscFunctionBeginUser;
  for (int i = 0; i < n; i++) exact[i] = n - i;
  PetscCall(max_difference(PETSC_COMM_WORLD, ref->w, exact, n, &diff));
  PetscCall(record(t, diff < TOL, "LAPACK n=%d eigenvalues match the constructed spectrum n..1 (max diff %.2e)", n, diff));
  PetscCall(identical_on_every_rank(PETSC_COMM_WORLD, ref->w, n, &same_w));
  PetscCall(identical_on_every_rank(PETSC_COMM_WORLD, ref->Z, n * n, &same_z));
  PetscCall(record(t, same_w && same_z, "LAPACK n=%d result is bit-identical on every rank", n));
  PetscFunctionReturn(0);
}

/* ScaLAPACK on comm with the given options; compares its nwant pairs with the reference. */
static PetscErrorCode check_scalapack_case(tally *t, MPI_Comm comm, const char *where, const reference *ref, const bo_eigen_opts *opts, int nwant)
{
  const int n = ref->n;
  double   *w, *Z, dw, dz;
  int       same_w, same_z;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc2(nwant, &w, nwant * n, &Z));
  PetscCall(bo_eigen_sym(comm, n, ref->A, nwant, opts, w, Z));
  PetscCall(max_difference(PETSC_COMM_WORLD, w, ref->w, nwant, &dw));
  PetscCall(max_difference(PETSC_COMM_WORLD, Z, ref->Z, nwant * n, &dz));
  PetscCall(identical_on_every_rank(comm, w, nwant, &same_w));
  PetscCall(identical_on_every_rank(comm, Z, nwant * n, &same_z));
  PetscCall(record(t, dw < TOL && dz < TOL && same_w && same_z,
                   "ScaLAPACK %s n=%d grid %dx%d block %d nwant %d agrees with LAPACK (eigenvalues %.2e, eigenvectors %.2e%s)", where, n, opts->nprow,
                   opts->npcol, opts->block, nwant, dw, dz, same_w && same_z ? "" : ", NOT identical on every rank"));
  PetscCall(PetscFree2(w, Z));
  PetscFunctionReturn(0);
}

static PetscErrorCode check_grids_on_world(tally *t, const reference *ref)
{
  static const int grids[][2] = {{0, 0}, {1, 1}, {1, 2}, {2, 1}, {1, 3}, {3, 1}};
  static const int blocks[]   = {16, 64};
  PetscMPIInt      size;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  for (size_t g = 0; g < sizeof grids / sizeof grids[0]; g++) {
    if (grids[g][0] * grids[g][1] > size) continue;
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
      const bo_eigen_opts opts = {BO_EIGEN_SCALAPACK, grids[g][0], grids[g][1], blocks[b]};
      PetscCall(check_scalapack_case(t, PETSC_COMM_WORLD, "world", ref, &opts, ref->n));
    }
  }
  if (size >= 2) {
    const bo_eigen_opts opts = {BO_EIGEN_SCALAPACK, 1, 2, 16};
    PetscCall(check_scalapack_case(t, PETSC_COMM_WORLD, "world", ref, &opts, NWANT_PART));
  }
  PetscFunctionReturn(0);
}

/* n = 100, block 64 on 1x2: rank (0,1) holds 36 columns, and the workspace pdsyevd asks for is
 * then too small for its internal pdlasrt; bo_eigen_sym must top it up. */
static PetscErrorCode check_workspace_edge(tally *t, const reference *small)
{
  PetscMPIInt         size;
  const bo_eigen_opts opts = {BO_EIGEN_SCALAPACK, 1, 2, 64};

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  if (size >= 2) PetscCall(check_scalapack_case(t, PETSC_COMM_WORLD, "world (workspace edge)", small, &opts, small->n));
  PetscFunctionReturn(0);
}

/* Ranks {0,1} and {2,...} in two communicators with reversed rank order, solving concurrently:
 * the BLACS grid must come from the communicator given, not from MPI_COMM_WORLD. */
static PetscErrorCode check_subcommunicators(tally *t, const reference *ref)
{
  PetscMPIInt         rank, size;
  MPI_Comm            sub;
  const bo_eigen_opts opts = {BO_EIGEN_SCALAPACK, 0, 0, 16};

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  PetscCallMPI(MPI_Comm_split(PETSC_COMM_WORLD, rank < 2 ? 0 : 1, size - rank, &sub));
  PetscCall(check_scalapack_case(t, sub, "reversed sub-communicator", ref, &opts, ref->n));
  PetscCallMPI(MPI_Comm_free(&sub));
  PetscFunctionReturn(0);
}

/* The call must fail with PETSC_ERR_USER_INPUT on every rank (and not hang). */
static PetscErrorCode check_refused(tally *t, const char *what, PetscInt64 nwant, const bo_eigen_opts *opts, const reference *ref)
{
  double        *w, *Z;
  PetscErrorCode ierr;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc2(ref->n + 1, &w, (ref->n + 1) * ref->n, &Z));
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  ierr = bo_eigen_sym(PETSC_COMM_WORLD, ref->n, ref->A, nwant, opts, w, Z);
  PetscCall(PetscPopErrorHandler());
  PetscCall(record(t, ierr == PETSC_ERR_USER_INPUT, "%s is refused on every rank (this rank got %d)", what, (int)ierr));
  PetscCall(PetscFree2(w, Z));
  PetscFunctionReturn(0);
}

static PetscErrorCode check_refusals(tally *t, const reference *ref)
{
  PetscMPIInt         rank, size;
  const bo_eigen_opts scalapack = {BO_EIGEN_SCALAPACK, 0, 0, 0};

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  const bo_eigen_opts too_big = {BO_EIGEN_SCALAPACK, size, 2, 0};
  PetscCall(check_refused(t, "nwant > n (LAPACK)", ref->n + 1, NULL, ref));
  PetscCall(check_refused(t, "nwant > n (ScaLAPACK)", ref->n + 1, &scalapack, ref));
  PetscCall(check_refused(t, "a grid larger than comm", ref->n, &too_big, ref));
  if (size >= 2) PetscCall(check_refused(t, "nwant differing between ranks", rank == 0 ? ref->n : ref->n - 1, NULL, ref));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- main */

static PetscErrorCode create_reference(int n, reference *ref)
{
  PetscFunctionBeginUser;
  ref->n = n;
  PetscCall(PetscMalloc3(n * n, &ref->A, n, &ref->w, n * n, &ref->Z));
  build_known_spectrum_matrix(n, ref->A);
  PetscCall(bo_eigen_sym(PETSC_COMM_WORLD, n, ref->A, n, NULL, ref->w, ref->Z));
  PetscFunctionReturn(0);
}

static PetscErrorCode destroy_reference(reference *ref)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree3(ref->A, ref->w, ref->Z));
  PetscFunctionReturn(0);
}

static PetscErrorCode run_checks(tally *t)
{
  reference ref, small;

  PetscFunctionBeginUser;
  PetscCall(create_reference(N, &ref));
  PetscCall(create_reference(N_SMALL, &small));
  PetscCall(check_lapack_reference(t, &ref));
  PetscCall(check_lapack_reference(t, &small));
  PetscCall(check_grids_on_world(t, &ref));
  PetscCall(check_workspace_edge(t, &small));
  PetscCall(check_subcommunicators(t, &ref));
  PetscCall(check_refusals(t, &ref));
  PetscCall(destroy_reference(&ref));
  PetscCall(destroy_reference(&small));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  tally       t = {0, 0};
  PetscMPIInt rank;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCall(run_checks(&t));
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  if (rank == 0) printf("eigen_mpi_check: %d passed, %d failed\n", t.passed, t.failed);
  PetscCall(PetscFinalize());
  return t.failed ? 1 : 0;
}
