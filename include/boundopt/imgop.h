/* imgop.h - images on a distributed DMDA, the operators of the HQ and AT linear subproblems, and
 * the inner solvers (KSP/PC configurations) shared by hq.c and at.c.
 *
 * Grid (bo_grid)
 *   An H x W image lives on a 2-D DMDA (x = column 0..W-1, y = row 0..H-1; star stencil of width 1,
 *   DM_BOUNDARY_NONE, PETSC_DECIDE process grid).  With a blur, a second DMDA with the same
 *   partition and a box stencil of the blur radius serves the blur's ghosts.  Images handed in and
 *   out are full, row-major H x W x C arrays: bo_grid_set_image copies this rank's block of channel
 *   c out of a replicated image; bo_grid_get_image gathers a channel onto rank 0 in natural order.
 *   bo_grid_sum adds one term per pixel exactly (reduce.h), so energies are identical for any
 *   number of ranks.  Discrete gradient: forward differences, zero on the last column / row
 *   (Neumann), |grad x|_i^2 = (D_x x)_i^2 + (D_y x)_i^2.
 *
 * Operator (bo_imgop)
 *   T = [K^T K] + diag(a) + L(c),  L(c) = grad^T diag([c; c]) grad (5-point, spec hq-at section 1),
 *   with pixel fields a (diagonal) and c >= 0 (edge weights) that the caller fills (bo_imgop_a/c)
 *   before bo_imgop_update.  Without a blur and unless a matrix-free operator is asked for, T is
 *   assembled on the DMDA (DMCreateMatrix, same pattern every update); otherwise it is a MATSHELL
 *   whose product sums each pixel's terms in a fixed order (rank-count independent).
 *
 * Inner solver (bo_inner): a KSP with the given options prefix, configured for one of
 *   exact   CG + hypre BoomerAMG (GAMG if PETSc lacks hypre; assembled) or CG + the majorant
 *           (matrix-free), rtol 1e-12 (-<prefix>pc_type gamg, or cholesky / mumps for small images);
 *   cg      CG + Jacobi (assembled) or plain CG, residual / initial residual <= 0.1, at most 10 iterations;
 *   rbgs    Richardson + PC "rbgs" (rbgs.h), `sweeps` sweeps;
 *   jacobi  Richardson with scale 1/2 + PCJACOBI: M = 2D, feasible for diagonally dominant T;
 *   mg      Richardson + PCMG: a symmetric V-cycle per sweep (2x2 aggregation, Galerkin coarse
 *           operators, one local symmetric SOR sweep down and up, LU coarse solve); with a blur,
 *           one V-cycle on the 5-point majorant (c_K + max a) I + (max c) grad^T grad;
 *   ssor    Richardson + PCSOR (local symmetric sweeps, omega): true SSOR, feasible, at 1 rank
 *           only; at more ranks it is block-Jacobi SSOR (not guaranteed feasible, rank dependent);
 *   fft     Richardson + the constant-coefficient majorant M = [K^T K] + (max a) I +
 *           (max c) grad^T grad, solved exactly by a 2-D DCT (FFTW r2r) on rank 0; needs a
 *           reflect-boundary blur (or none).
 *   The Richardson variants start from the current x (nonzero initial guess), run exactly
 *   `sweeps` iterations and test nothing (KSPConvergedSkip, KSP_NORM_NONE).  The caller may
 *   override any of it with -<prefix>ksp_* / -<prefix>pc_* (KSPSetFromOptions on bo_inner_ksp);
 *   the mg majorant's V-cycle (with a blur) is a KSP of its own, prefix <prefix>majorant_.
 *   bo_inner_rank_invariant: true for rbgs and fft as configured (checked on the actual types).
 *   Every function is collective on the grid's communicator.
 */
#ifndef BOUNDOPT_IMGOP_H
#define BOUNDOPT_IMGOP_H
#include <petscdmda.h>
#include <petscksp.h>
#include "boundopt/blur.h"
#include "boundopt/rbgs.h"

typedef struct {
  MPI_Comm   comm;
  DM         da, dablur;                  /* dablur: NULL without a blur */
  PetscInt   h, w;                        /* rows, columns */
  PetscInt   xs, ys, xm, ym, gxs, gys, gxm, gym;
  Vec        natural, zero;               /* gather to rank 0 */
  VecScatter tozero;
} bo_grid;

PetscErrorCode bo_grid_create(MPI_Comm comm, PetscInt h, PetscInt w, int blur_radius, bo_grid *g);
PetscErrorCode bo_grid_destroy(bo_grid *g);
/* x (global) <- channel c of the replicated image full[(y*w + x)*nc + c]. */
PetscErrorCode bo_grid_set_image(const bo_grid *g, const double *full, int nc, int c, Vec x);
/* full[(y*w + x)*nc + c] <- x on rank 0 (full may be NULL elsewhere). */
PetscErrorCode bo_grid_get_image(bo_grid *g, Vec x, double *full, int nc, int c);
/* Exact (rank-count independent) sum of one value per owned pixel, terms[(y-ys)*xm + (x-xs)]. */
PetscErrorCode bo_grid_sum(const bo_grid *g, const double *terms, double *total);
/* t2 = |grad x|^2 per pixel; gx, gy (optional) = D_x x, D_y x. */
PetscErrorCode bo_grid_gradient(const bo_grid *g, Vec x, Vec t2, Vec gx, Vec gy);
/* y = grad^T (wx; wy). */
PetscErrorCode bo_grid_divergence(const bo_grid *g, Vec wx, Vec wy, Vec y);

typedef struct {
  bo_grid       *g;
  const bo_blur *blur;      /* NULL: no K^T K term */
  PetscBool      shell;
  Vec            a, c;      /* fields, filled by the caller */
  Vec            xl, cl, bl, tl; /* ghosted work vectors (bl, tl on the blur grid) */
  Vec            t;         /* K x */
  double        *tmp;       /* blur pass buffer */
  PetscInt      *cols;      /* assembled: 5 global columns per owned row */
  double        *stencil;   /* assembled: the same rows as 5 coefficients per point (rbgs.h) */
  bo_rbgs_stencil st;
  PetscInt      *pos;       /* assembled: where the 5 entries sit in the AIJ arrays */
  Mat            Ad, Ao;    /* the AIJ blocks written in place */
  Mat            T;
  double         a_max, c_max, k_norm2; /* for the majorants */
  PetscObjectState state;   /* increases at every update */
} bo_imgop;

PetscErrorCode bo_imgop_create(bo_grid *g, const bo_blur *blur, PetscBool shell, bo_imgop *op);
PetscErrorCode bo_imgop_destroy(bo_imgop *op);
/* Call after changing op->a or op->c: re-assembles (or refreshes the matrix-free data). */
PetscErrorCode bo_imgop_update(bo_imgop *op);
/* y = K x or K^T x (op->blur required). */
PetscErrorCode bo_imgop_blur(bo_imgop *op, PetscBool transpose, Vec x, Vec y);

typedef enum { BO_INNER_EXACT, BO_INNER_CG, BO_INNER_RBGS, BO_INNER_JACOBI, BO_INNER_MG, BO_INNER_SSOR, BO_INNER_FFT, BO_NINNER } bo_inner_type;
extern const char *const bo_inner_names[]; /* "exact", "cg", "rbgs", "jacobi", "mg", "ssor", "fft" */

typedef struct {
  bo_inner_type type;
  PetscInt      sweeps; /* Richardson iterations of the feasible variants, >= 1 */
  PetscReal     omega;  /* ssor relaxation, in (0, 2) */
} bo_inner_opts;

/* Whether the operator of this inner solver should be matrix-free (fft, or any blur). */
PetscBool bo_inner_wants_shell(bo_inner_type type, const bo_blur *blur);

typedef struct bo_inner_s *bo_inner;
PetscErrorCode bo_inner_create(bo_imgop *op, const bo_inner_opts *o, const char *prefix, bo_inner *in);
KSP            bo_inner_ksp(bo_inner in);
/* x <- the inner solver's answer to T x = b from x (op updated beforehand); its: iterations. */
PetscErrorCode bo_inner_solve(bo_inner in, Vec b, Vec x, PetscInt *its);
PetscErrorCode bo_inner_rank_invariant(bo_inner in, PetscBool *invariant);
PetscErrorCode bo_inner_destroy(bo_inner *in);
#endif
