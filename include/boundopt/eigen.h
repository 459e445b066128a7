/* eigen.h - the largest eigenpairs of a dense symmetric matrix, by LAPACK or ScaLAPACK.
 *
 * Contract
 *   bo_eigen_sym(comm, n, A, nwant, opts, w, Z) is COLLECTIVE on comm: every rank calls it with
 *   the same n, nwant and *opts, and the same A.
 *
 *   Inputs
 *     A      n x n symmetric matrix, row-major doubles, identical on every rank of comm.  Only the
 *            upper triangle (A[i*n + j] with j >= i) is read; the caller keeps ownership and A is
 *            not modified.
 *     n      order of A, 1 <= n.  LAPACK needs its 2n^2 + 6n + 1 workspace to fit a 32-bit int
 *            (n <= 32766); ScaLAPACK needs the same of each rank's local block.
 *     nwant  how many eigenpairs, 1 <= nwant <= n.
 *     opts   NULL means { BO_EIGEN_LAPACK }.  method picks the path; nprow, npcol and block matter
 *            only for ScaLAPACK: nprow = npcol = 0 asks for a near-square grid over all ranks of
 *            comm (nprow the largest divisor of the size not above its square root), block = 0
 *            means 64 (the square block of the 2-D block-cyclic distribution).
 *
 *   Outputs (caller-allocated, identical on every rank of comm, bit for bit)
 *     w[nwant]     the nwant LARGEST eigenvalues in descending order.
 *     Z[nwant*n]   row-major: row i is the unit eigenvector of w[i].
 *     Sign rule: in each eigenvector the entry of largest absolute value is positive (ties: the
 *     lowest index), so results are reproducible across libraries and runs.
 *
 *   Methods
 *     BO_EIGEN_LAPACK    rank 0 of comm runs dsyevd (OpenBLAS forced to one thread for the call,
 *                        then restored) and broadcasts: the result does not depend on the number
 *                        of ranks.
 *     BO_EIGEN_SCALAPACK pdsyevd on an nprow x npcol BLACS grid ("Row" order) built from the first
 *                        nprow*npcol ranks of comm; the other ranks take part only in assembling
 *                        and broadcasting the result.  The result depends (to rounding) on the grid
 *                        and block.  The BLACS grid is freed before returning; BLACS itself and
 *                        MPI stay up (blacs_exit is never called).
 *
 *   Errors (raised identically on every rank of comm, so no rank hangs)
 *     PETSC_ERR_USER_INPUT  bad arguments: n < 1, nwant outside 1..n, NULL arrays, a non-finite
 *                           entry in the upper triangle of A, an unknown method, a negative block,
 *                           a half-given or too large grid, a workspace beyond 32-bit integers,
 *                           or n, nwant or opts differing between ranks.
 *     PETSC_ERR_LIB         the library did not converge (LAPACK/ScaLAPACK info != 0) or BLACS
 *                           could not build the grid.
 *   On error w and Z are unspecified.  (A failed allocation is raised only on the rank it hits.)
 */
#ifndef BOUNDOPT_EIGEN_H
#define BOUNDOPT_EIGEN_H
#include <petscsys.h>

typedef enum { BO_EIGEN_LAPACK = 0, BO_EIGEN_SCALAPACK = 1 } bo_eigen_method;

typedef struct {
  bo_eigen_method method;
  int             nprow, npcol; /* ScaLAPACK grid; both 0: near-square over all ranks of comm */
  int             block;        /* ScaLAPACK square block size; 0: 64 */
} bo_eigen_opts;

PetscErrorCode bo_eigen_sym(MPI_Comm comm, PetscInt64 n, const double *A, PetscInt64 nwant, const bo_eigen_opts *opts, double *w, double *Z);
#endif
