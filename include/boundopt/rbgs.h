/* rbgs.h - symmetric red-black Gauss-Seidel as a PETSc preconditioner type, "rbgs".
 *
 * Contract
 *   bo_rbgs_register() adds the type once (PCRegister), so `-PREFIX_pc_type rbgs` works.  The PC
 *   works on an assembled 5-point operator of a 2-D DMDA (dof 1): the DMDA comes from PCSetDM
 *   (or KSPSetDM), else from a DMDA composed on the PC as "boundopt_dmda" (PetscObjectCompose);
 *   a matrix coupling beyond the 5-point star is an error.  Colour = (i + j) mod 2 in global grid
 *   indices; one symmetric sweep updates red, black, red (the backward half-sweep starts with
 *   black, which repeats the forward black update exactly, so it is skipped).
 *     - PCApplyRichardson (KSPRICHARDSON): `its` sweeps in place from x (or from 0 with a zero
 *       guess), no convergence test: x <- x + M^{-1}(b - T x) per sweep, M = (D-L) D^{-1} (D-L^T)
 *       in red-black order, which is feasible (M - T = L D^{-1} L^T >= 0, spec hq-at section 5).
 *     - PCApply: one sweep from 0, y = M^{-1} b (symmetric; usable with CG or as a smoother).
 *   A colour's updates read only the other colour, and every update sums its four neighbours in
 *   the fixed order west, east, north, south, so the iterates are identical, bit for bit, for any
 *   number of ranks and any partition.  Ghost values are refreshed (DMLocalToLocal) before every
 *   half-sweep.  Collective on the PC's communicator.
 *   Fast path: a matrix that carries its stencil (a PetscContainer holding a bo_rbgs_stencil,
 *   composed on it as "boundopt_rbgs_stencil") is not read row by row; the coefficients must be
 *   the matrix's own (imgop.c fills both from the same numbers).
 */
#ifndef BOUNDOPT_RBGS_H
#define BOUNDOPT_RBGS_H
#include <petscksp.h>

#define PCRBGS "rbgs"

typedef struct {
  PetscInt      n;    /* owned points, in the DMDA's local order */
  const double *coef; /* 5 per point: diagonal, west, east, north (j-1), south (j+1); 0 off the grid */
} bo_rbgs_stencil;
PetscErrorCode bo_rbgs_register(void);
#endif
