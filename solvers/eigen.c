/* eigen.c - bo_eigen_sym: largest eigenpairs of a replicated symmetric matrix (see eigen.h).
 *
 * Layout note: A is row-major and symmetric, so the same buffer read column-major is A again.
 * Both paths call the Fortran routines with UPLO = 'L' on that column-major view, i.e. they read
 * the row-major UPPER triangle.  Eigenvectors come back as columns, ascending; the output wants
 * rows, descending, so column n-1-k becomes row k.
 */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "boundopt/eigen.h"

/* Debian ships no C header for the Fortran LAPACK/ScaLAPACK symbols nor for the C BLACS interface
 * (and LAPACKE has no ScaLAPACK), so the prototypes are declared here.  The libraries use 32-bit
 * INTEGERs (LP64).  Fortran CHARACTER arguments get hidden trailing length arguments (size_t
 * since gfortran 8); passing them keeps the calls ABI-correct under optimising compilers. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info, size_t jobz_len, size_t uplo_len);
extern void pdsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *ia, const int *ja, const int *desca, double *w, double *z,
                     const int *iz, const int *jz, const int *descz, double *work, const int *lwork, int *iwork, const int *liwork, int *info,
                     size_t jobz_len, size_t uplo_len);
extern void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb, const int *irsrc, const int *icsrc, const int *ictxt,
                      const int *lld, int *info);
extern int  numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
/* BLACS C interface, built into libscalapack-openmpi.  Csys2blacs_handle (ScaLAPACK >= 2.0) turns
 * an MPI communicator into a BLACS system context, so the grid can live on any comm, not just
 * MPI_COMM_WORLD as Cblacs_get(-1, 0, ...) would give. */
extern int  Csys2blacs_handle(MPI_Comm comm);
extern void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
extern void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
extern void Cblacs_gridexit(int ctxt);
/* OpenBLAS thread control (libopenblas; no header in the include path we use). */
extern void openblas_set_num_threads(int nthreads);
extern int  openblas_get_num_threads(void);

#define BO_EIGEN_DEFAULT_BLOCK 64
#define BO_EIGEN_MPI_CHUNK     (1 << 30) /* MPI counts are int: move large arrays in pieces */

/* The validated arguments, in the integer types the libraries take. */
typedef struct {
  bo_eigen_method method;
  int             n, nwant;
  int             nprow, npcol, block; /* ScaLAPACK only; resolved (no zeros) */
} eigen_plan;

/* This rank's place in the BLACS grid; ctxt < 0 off the grid. */
typedef struct {
  int       ctxt, myrow, mycol;
  PetscBool in_grid;
} blacs_grid;

/* ---------------------------------------------------------------- collective helpers */

/* Every rank passes its own info values; returns, identically everywhere, for each slot the
 * largest positive value if any rank has one, else the most negative (0 when all are 0). */
static PetscErrorCode agree_on_infos(MPI_Comm comm, int count, const int *local, int *agreed)
{
  int buf[4], max[4];

  PetscFunctionBegin;
  PetscCheck(count <= 2, PETSC_COMM_SELF, PETSC_ERR_PLIB, "eigensolver: agree_on_infos got %d values; expected at most 2", count);
  for (int i = 0; i < count; i++) {
    buf[i]         = local[i];
    buf[count + i] = -local[i];
  }
  PetscCallMPI(MPI_Allreduce(buf, max, 2 * count, MPI_INT, MPI_MAX, comm));
  for (int i = 0; i < count; i++) agreed[i] = max[i] > 0 ? max[i] : -max[count + i];
  PetscFunctionReturn(0);
}

static PetscErrorCode bcast_doubles_from_root(double *buf, PetscInt64 count, MPI_Comm comm)
{
  PetscFunctionBegin;
  for (PetscInt64 off = 0; off < count; off += BO_EIGEN_MPI_CHUNK) {
    const int len = (int)PetscMin((PetscInt64)BO_EIGEN_MPI_CHUNK, count - off);
    PetscCallMPI(MPI_Bcast(buf + off, len, MPI_DOUBLE, 0, comm));
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode allreduce_sum_doubles(double *buf, PetscInt64 count, MPI_Comm comm)
{
  PetscFunctionBegin;
  for (PetscInt64 off = 0; off < count; off += BO_EIGEN_MPI_CHUNK) {
    const int len = (int)PetscMin((PetscInt64)BO_EIGEN_MPI_CHUNK, count - off);
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, buf + off, len, MPI_DOUBLE, MPI_SUM, comm));
  }
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- argument checks */

/* Largest divisor of size not above sqrt(size) rows, the rest columns. */
static void choose_near_square_grid(int size, int *nprow, int *npcol)
{
  int rows = 1;
  for (int d = 1; (PetscInt64)d * d <= size; d++)
    if (size % d == 0) rows = d;
  *nprow = rows;
  *npcol = size / rows;
}

/* numroc for process 0 (the one holding the most rows), in 64 bits so it cannot overflow. */
static PetscInt64 rows_on_first_process(PetscInt64 n, PetscInt64 nb, PetscInt64 nprocs)
{
  const PetscInt64 nblocks = n / nb;
  PetscInt64       rows    = (nblocks / nprocs) * nb;
  return rows + (nblocks % nprocs > 0 ? nb : n % nb);
}

/* Doubles of WORK that pdsyevd (ScaLAPACK 2.2.1) really needs when the largest local block is
 * np x nq.  Its own LWMIN is not enough: it passes WORK(2n+1:) on to
 *   pdormtr, which needs max(nb(nb-1)/2, (np+nq) nb) + nb^2 and, when short, refuses while pdsyevd
 *     ignores its info and returns eigenvectors that were never back-transformed (silently wrong);
 *   pdlasrt (inside pdstedc, n > nb on several ranks), which needs max(n, np (nb+nq))
 *     (Reference-ScaLAPACK issue #74).
 * Sizing every rank for the largest block keeps one number for the whole grid. */
static double pdsyevd_lwork(double n, double nb, double np, double nq)
{
  const double documented = PetscMax(1 + 6 * n + 2 * np * nq, 3 * n + PetscMax(nb * (np + 1), 3 * nb)) + 2 * n;
  const double pdormtr    = 2 * n + PetscMax(nb * (nb - 1) / 2, (np + nq) * nb) + nb * nb;
  const double pdlasrt    = 2 * n + PetscMax(n, np * (nb + nq));
  return PetscMax(documented, PetscMax(pdormtr, pdlasrt));
}

/* Integers of IWORK: pdsyevd's documented 7n + 8 npcol + 2, and pdlasrt's n + 2 nb + 2 npcol. */
static double pdsyevd_liwork(double n, double nb, double npcol)
{
  return PetscMax(7 * n + 8 * npcol + 2, n + 2 * nb + 2 * npcol);
}

/* pdsyevd_lwork for the plan's grid, sized for process 0, which holds the largest block. */
static double scalapack_lwork(const eigen_plan *p)
{
  return pdsyevd_lwork(p->n, p->block, (double)rows_on_first_process(p->n, p->block, p->nprow), (double)rows_on_first_process(p->n, p->block, p->npcol));
}

/* Largest per-rank workspace (doubles or ints) of the chosen routine.  Sizes are computed in
 * double (exact below 2^53) so huge n cannot overflow before they are compared with INT_MAX. */
static double largest_workspace(const eigen_plan *p)
{
  const double n = p->n;

  if (p->method == BO_EIGEN_LAPACK) return 1 + 6 * n + 2 * n * n;
  return PetscMax(scalapack_lwork(p), pdsyevd_liwork(p->n, p->block, p->npcol));
}

/* n, nwant and opts must be the same everywhere and no array may be NULL on any rank. */
static PetscErrorCode check_arguments_agree(MPI_Comm comm, PetscInt64 n, PetscInt64 nwant, const bo_eigen_opts *o, PetscBool any_null_here)
{
  enum { NVAL = 7 };
  const PetscInt64 mine[NVAL] = {any_null_here, n, nwant, o->method, o->nprow, o->npcol, o->block};
  PetscInt64       lo[NVAL], hi[NVAL];
  PetscBool        same = PETSC_TRUE;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Allreduce(mine, lo, NVAL, MPIU_INT64, MPI_MIN, comm));
  PetscCallMPI(MPI_Allreduce(mine, hi, NVAL, MPIU_INT64, MPI_MAX, comm));
  PetscCheck(!hi[0], comm, PETSC_ERR_USER_INPUT, "eigensolver: A, w or Z is NULL on some rank; expected arrays of n*n, nwant and nwant*n doubles on every rank");
  for (int i = 1; i < NVAL; i++) same = (PetscBool)(same && lo[i] == hi[i]);
  PetscCheck(same, comm, PETSC_ERR_USER_INPUT, "eigensolver: n, nwant or opts differ between ranks; expected the same values on every rank of comm");
  PetscFunctionReturn(0);
}

static PetscErrorCode check_sizes(MPI_Comm comm, PetscInt64 n, PetscInt64 nwant)
{
  PetscFunctionBegin;
  PetscCheck(n >= 1, comm, PETSC_ERR_USER_INPUT, "eigensolver: n = %" PetscInt64_FMT "; expected n >= 1", n);
  PetscCheck(n <= INT_MAX, comm, PETSC_ERR_USER_INPUT, "eigensolver: n = %" PetscInt64_FMT "; expected n <= %d (32-bit LAPACK integers)", n, INT_MAX);
  PetscCheck(nwant >= 1 && nwant <= n, comm, PETSC_ERR_USER_INPUT, "eigensolver: nwant = %" PetscInt64_FMT " with n = %" PetscInt64_FMT "; expected 1 <= nwant <= n", nwant,
             n);
  PetscFunctionReturn(0);
}

/* The read part of A (row-major upper triangle) must be finite; the verdict is reduced over comm. */
static PetscErrorCode check_finite(MPI_Comm comm, PetscInt64 n, const double *A)
{
  PetscInt64 local = n * n, first;

  PetscFunctionBegin;
  for (PetscInt64 i = 0; i < n && local == n * n; i++)
    for (PetscInt64 j = i; j < n; j++)
      if (!isfinite(A[i * n + j])) {
        local = i * n + j;
        break;
      }
  PetscCallMPI(MPI_Allreduce(&local, &first, 1, MPIU_INT64, MPI_MIN, comm));
  PetscCheck(first == n * n, comm, PETSC_ERR_USER_INPUT, "eigensolver: A[%" PetscInt64_FMT "][%" PetscInt64_FMT "] is not finite; expected a finite matrix", first / n,
             first % n);
  PetscFunctionReturn(0);
}

/* Fills the ScaLAPACK fields of the plan from opts (zeros mean defaults). */
static PetscErrorCode resolve_grid(MPI_Comm comm, const bo_eigen_opts *o, eigen_plan *p)
{
  PetscMPIInt size;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCheck(o->block >= 0, comm, PETSC_ERR_USER_INPUT, "eigensolver: block = %d; expected block >= 1, or 0 for %d", o->block, BO_EIGEN_DEFAULT_BLOCK);
  p->block = o->block ? o->block : BO_EIGEN_DEFAULT_BLOCK;
  if (o->nprow == 0 && o->npcol == 0) {
    choose_near_square_grid(size, &p->nprow, &p->npcol);
    PetscFunctionReturn(0);
  }
  PetscCheck(o->nprow >= 1 && o->npcol >= 1, comm, PETSC_ERR_USER_INPUT, "eigensolver: grid %d x %d; expected both >= 1, or both 0 for a near-square grid", o->nprow,
             o->npcol);
  PetscCheck((PetscInt64)o->nprow * o->npcol <= size, comm, PETSC_ERR_USER_INPUT, "eigensolver: grid %d x %d needs %" PetscInt64_FMT " ranks but comm has %d; expected nprow*npcol <= comm size",
             o->nprow, o->npcol, (PetscInt64)o->nprow * o->npcol, size);
  p->nprow = o->nprow;
  p->npcol = o->npcol;
  PetscFunctionReturn(0);
}

static PetscErrorCode plan_from_arguments(MPI_Comm comm, PetscInt64 n, const double *A, PetscInt64 nwant, const bo_eigen_opts *opts, const double *w, const double *Z,
                                          eigen_plan *p)
{
  const bo_eigen_opts lapack_defaults = {BO_EIGEN_LAPACK, 0, 0, 0};
  const bo_eigen_opts *o              = opts ? opts : &lapack_defaults;
  double               workspace;

  PetscFunctionBegin;
  PetscCall(check_arguments_agree(comm, n, nwant, o, (PetscBool)(!A || !w || !Z)));
  PetscCall(check_sizes(comm, n, nwant));
  PetscCall(check_finite(comm, n, A));
  PetscCheck(o->method == BO_EIGEN_LAPACK || o->method == BO_EIGEN_SCALAPACK, comm, PETSC_ERR_USER_INPUT,
             "eigensolver: method = %d; expected BO_EIGEN_LAPACK (0) or BO_EIGEN_SCALAPACK (1)", (int)o->method);
  *p = (eigen_plan){.method = o->method, .n = (int)n, .nwant = (int)nwant, .nprow = 1, .npcol = 1, .block = 1};
  if (o->method == BO_EIGEN_SCALAPACK) PetscCall(resolve_grid(comm, o, p));
  workspace = largest_workspace(p);
  PetscCheck(workspace <= INT_MAX, comm, PETSC_ERR_USER_INPUT,
             "eigensolver: n = %" PetscInt64_FMT " needs a workspace of %.0f entries per rank; expected at most %d (32-bit LAPACK integers): use ScaLAPACK or a larger grid", n,
             workspace, INT_MAX);
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- sign rule */

static void make_largest_entry_positive(double *v, int n)
{
  int imax = 0;
  for (int i = 1; i < n; i++)
    if (fabs(v[i]) > fabs(v[imax])) imax = i; /* strict: ties keep the lowest index */
  if (v[imax] < 0)
    for (int i = 0; i < n; i++) v[i] = -v[i];
}

static void apply_sign_rule(const eigen_plan *p, double *Z)
{
  for (int k = 0; k < p->nwant; k++) make_largest_entry_positive(Z + (size_t)k * p->n, p->n);
}

/* ---------------------------------------------------------------- LAPACK path */

static void dsyevd_single_threaded(int n, double *a, double *wall, double *work, int lwork, int *iwork, int liwork, int *info)
{
  const int threads = openblas_get_num_threads();

  openblas_set_num_threads(1);
  dsyevd_("V", "L", &n, a, &n, wall, work, &lwork, iwork, &liwork, info, 1, 1);
  openblas_set_num_threads(threads);
}

/* Runs dsyevd on this rank; fills w and Z (largest first) when *info comes back 0. */
static PetscErrorCode dsyevd_largest(const eigen_plan *p, const double *A, double *w, double *Z, int *info)
{
  const int n = p->n;
  double   *a, *wall, *work, work_query, unused = 0;
  int      *iwork, iwork_query;

  PetscFunctionBegin;
  dsyevd_single_threaded(n, &unused, &unused, &work_query, -1, &iwork_query, -1, info);
  if (*info) PetscFunctionReturn(0);
  PetscCall(PetscMalloc4((size_t)n * n, &a, n, &wall, (size_t)work_query, &work, iwork_query, &iwork));
  PetscCall(PetscArraycpy(a, A, (size_t)n * n));
  dsyevd_single_threaded(n, a, wall, work, (int)work_query, iwork, iwork_query, info);
  if (*info == 0) {
    for (int k = 0; k < p->nwant; k++) {
      w[k] = wall[n - 1 - k];
      PetscCall(PetscArraycpy(Z + (size_t)k * n, a + (size_t)(n - 1 - k) * n, n));
    }
  }
  PetscCall(PetscFree4(a, wall, work, iwork));
  PetscFunctionReturn(0);
}

static PetscErrorCode solve_with_lapack(MPI_Comm comm, const eigen_plan *p, const double *A, double *w, double *Z)
{
  PetscMPIInt rank;
  int         info = 0;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (rank == 0) PetscCall(dsyevd_largest(p, A, w, Z, &info));
  PetscCallMPI(MPI_Bcast(&info, 1, MPI_INT, 0, comm));
  PetscCheck(info == 0, comm, PETSC_ERR_LIB, "eigensolver: LAPACK dsyevd failed (info=%d); expected convergence", info);
  PetscCall(bcast_doubles_from_root(w, p->nwant, comm));
  PetscCall(bcast_doubles_from_root(Z, (PetscInt64)p->nwant * p->n, comm));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- ScaLAPACK path */

/* Collective on comm: the first nprow*npcol ranks form the grid, the others get ctxt -1. */
static PetscErrorCode create_blacs_grid(MPI_Comm comm, const eigen_plan *p, blacs_grid *g)
{
  PetscMPIInt rank;
  int         nprow = -1, npcol = -1, built, all_built;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  g->in_grid = (PetscBool)(rank < p->nprow * p->npcol);
  g->ctxt    = Csys2blacs_handle(comm);
  Cblacs_gridinit(&g->ctxt, "Row", p->nprow, p->npcol);
  g->myrow = g->mycol = -1;
  if (g->ctxt >= 0) Cblacs_gridinfo(g->ctxt, &nprow, &npcol, &g->myrow, &g->mycol);
  built = !g->in_grid || (g->myrow >= 0 && nprow == p->nprow && npcol == p->npcol);
  PetscCallMPI(MPI_Allreduce(&built, &all_built, 1, MPI_INT, MPI_MIN, comm));
  if (!all_built && g->ctxt >= 0) Cblacs_gridexit(g->ctxt);
  PetscCheck(all_built, comm, PETSC_ERR_LIB, "eigensolver: BLACS could not build the %d x %d grid; expected a valid process grid", p->nprow, p->npcol);
  PetscFunctionReturn(0);
}

/* Global index of local index l in a block-cyclic dimension (source process 0). */
static int global_index(int l, int nb, int iproc, int nprocs)
{
  return (l / nb) * nb * nprocs + iproc * nb + l % nb;
}

/* Every rank holds all of A, so distribution is a local copy of the entries this rank owns. */
static void copy_owned_entries(const eigen_plan *p, const blacs_grid *g, const double *A, double *aloc, int mloc, int nloc, int lld)
{
  for (int jl = 0; jl < nloc; jl++) {
    const size_t j = (size_t)global_index(jl, p->block, g->mycol, p->npcol);
    for (int il = 0; il < mloc; il++) aloc[il + (size_t)jl * lld] = A[(size_t)global_index(il, p->block, g->myrow, p->nprow) + j * p->n];
  }
}

/* Writes the owned entries of the wanted (last nwant) eigenvector columns into rows of Z. */
static void scatter_wanted_columns(const eigen_plan *p, const blacs_grid *g, const double *zloc, int mloc, int nloc, int lld, double *Z)
{
  for (int jl = 0; jl < nloc; jl++) {
    const int j = global_index(jl, p->block, g->mycol, p->npcol);
    const int k = p->n - 1 - j;
    if (k >= p->nwant) continue;
    for (int il = 0; il < mloc; il++) Z[(size_t)k * p->n + global_index(il, p->block, g->myrow, p->nprow)] = zloc[il + (size_t)jl * lld];
  }
}

/* pdsyevd with a workspace query first, topped up to pdsyevd_lwork/liwork (see there). */
static PetscErrorCode pdsyevd_all(const eigen_plan *p, const int *desc, double *aloc, double *zloc, double *wall, int *info)
{
  const int one = 1, query = -1;
  double    work_query, *work;
  int       iwork_query, *iwork, lwork, liwork;

  PetscFunctionBegin;
  pdsyevd_("V", "L", &p->n, aloc, &one, &one, desc, wall, zloc, &one, &one, desc, &work_query, &query, &iwork_query, &query, info, 1, 1);
  if (*info) PetscFunctionReturn(0);
  /* both fit in int: checked in plan_from_arguments */
  lwork  = (int)PetscMax(work_query, scalapack_lwork(p));
  liwork = (int)PetscMax((double)iwork_query, pdsyevd_liwork(p->n, p->block, p->npcol));
  PetscCall(PetscMalloc2(lwork, &work, liwork, &iwork));
  pdsyevd_("V", "L", &p->n, aloc, &one, &one, desc, wall, zloc, &one, &one, desc, work, &lwork, iwork, &liwork, info, 1, 1);
  PetscCall(PetscFree2(work, iwork));
  PetscFunctionReturn(0);
}

/* On a grid rank: distribute, solve, and write this rank's share of w (all of it) and Z.
 * infos[0] is descinit's info, infos[1] pdsyevd's. */
static PetscErrorCode pdsyevd_largest(const eigen_plan *p, const blacs_grid *g, const double *A, double *w, double *Z, int infos[2])
{
  const int zero = 0;
  const int mloc = numroc_(&p->n, &p->block, &g->myrow, &zero, &p->nprow);
  const int nloc = numroc_(&p->n, &p->block, &g->mycol, &zero, &p->npcol);
  const int lld  = PetscMax(1, mloc);
  int       desc[9];
  double   *aloc, *zloc, *wall;

  PetscFunctionBegin;
  descinit_(desc, &p->n, &p->n, &p->block, &p->block, &zero, &zero, &g->ctxt, &lld, &infos[0]);
  if (infos[0]) PetscFunctionReturn(0);
  PetscCall(PetscMalloc3((size_t)lld * nloc, &aloc, (size_t)lld * nloc, &zloc, p->n, &wall));
  copy_owned_entries(p, g, A, aloc, mloc, nloc, lld);
  PetscCall(pdsyevd_all(p, desc, aloc, zloc, wall, &infos[1]));
  if (infos[1] == 0) {
    for (int k = 0; k < p->nwant; k++) w[k] = wall[p->n - 1 - k];
    scatter_wanted_columns(p, g, zloc, mloc, nloc, lld, Z);
  }
  PetscCall(PetscFree3(aloc, zloc, wall));
  PetscFunctionReturn(0);
}

static PetscErrorCode solve_with_scalapack(MPI_Comm comm, const eigen_plan *p, const double *A, double *w, double *Z)
{
  const PetscInt64 zcount   = (PetscInt64)p->nwant * p->n;
  int              infos[2] = {0, 0}, agreed[2];
  blacs_grid       g;

  PetscFunctionBegin;
  PetscCall(create_blacs_grid(comm, p, &g));
  PetscCall(PetscArrayzero(Z, (size_t)zcount));
  if (g.in_grid) PetscCall(pdsyevd_largest(p, &g, A, w, Z, infos));
  if (g.in_grid) Cblacs_gridexit(g.ctxt);
  PetscCall(agree_on_infos(comm, 2, infos, agreed));
  PetscCheck(agreed[0] == 0, comm, PETSC_ERR_LIB, "eigensolver: ScaLAPACK descinit failed (info=%d); expected a valid %d x %d descriptor", agreed[0], p->n, p->n);
  PetscCheck(agreed[1] == 0, comm, PETSC_ERR_LIB, "eigensolver: ScaLAPACK pdsyevd failed (info=%d); expected convergence", agreed[1]);
  /* Each entry of Z has exactly one owner and zeros elsewhere, so the sum is exact. */
  PetscCall(allreduce_sum_doubles(Z, zcount, comm));
  PetscCall(bcast_doubles_from_root(w, p->nwant, comm)); /* rank 0 of comm is grid process (0,0) */
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- entry point */

PetscErrorCode bo_eigen_sym(MPI_Comm comm, PetscInt64 n, const double *A, PetscInt64 nwant, const bo_eigen_opts *opts, double *w, double *Z)
{
  eigen_plan plan;

  PetscFunctionBeginUser;
  PetscCall(plan_from_arguments(comm, n, A, nwant, opts, w, Z, &plan));
  if (plan.method == BO_EIGEN_LAPACK) PetscCall(solve_with_lapack(comm, &plan, A, w, Z));
  else PetscCall(solve_with_scalapack(comm, &plan, A, w, Z));
  apply_sign_rule(&plan, Z);
  PetscFunctionReturn(0);
}
