/* rbgs.c - the "rbgs" PC: symmetric red-black Gauss-Seidel on a 5-point DMDA operator (rbgs.h).
 *
 * A registered PC type needs PETSc's private PC header (the ops table); a PCSHELL could not be
 * selected by -pc_type.  The coefficients are copied out of the assembled matrix once per setup
 * into five arrays per owned point, so a sweep is a plain loop over the local ghosted array. */
#include "boundopt/rbgs.h"
#include "boundopt/error.h"
#include <petsc/private/pcimpl.h>
#include <petscdmda.h>

typedef struct {
  DM       da;
  Vec      xl;  /* ghosted iterate */
  PetscInt M, N, xs, ys, xm, ym, gxs, gys, gxm, gym;
  double  *d, *cw, *ce, *cn, *cs; /* diagonal and the west, east, north (j-1), south (j+1) couplings */
} pc_rbgs;

static PetscErrorCode rbgs_find_dm(PC pc, DM *da)
{
  PetscObject obj = NULL;
  PetscInt    dim, dof, sw;

  PetscFunctionBeginUser;
  *da = pc->dm;
  if (!*da) {
    PetscCall(PetscObjectQuery((PetscObject)pc, "boundopt_dmda", &obj));
    *da = (DM)obj;
  }
  PetscCheck(*da, PetscObjectComm((PetscObject)pc), PETSC_ERR_ARG_WRONGSTATE, "PC rbgs: no grid; expected a 2-D DMDA given with PCSetDM or KSPSetDM");
  PetscCall(DMDAGetInfo(*da, &dim, NULL, NULL, NULL, NULL, NULL, NULL, &dof, &sw, NULL, NULL, NULL, NULL));
  PetscCheck(dim == 2 && dof == 1 && sw >= 1, PetscObjectComm((PetscObject)pc), PETSC_ERR_ARG_WRONG, "PC rbgs: a %dD DMDA with %d dof and stencil width %d; expected a 2-D DMDA with 1 dof and width >= 1", (int)dim, (int)dof, (int)sw);
  PetscFunctionReturn(0);
}

/* Rows of the operator with global column numbers.  (MPI)AIJ matrices are read straight from
 * their CSR arrays (MatGetRow merges and copies, which costs more than the sweeps); other types
 * go through MatGetRow. */
typedef struct {
  Mat                A, Ad, Ao;    /* Ad, Ao: diagonal / off-diagonal blocks of an AIJ matrix */
  const PetscInt    *colmap;       /* Ao's local column -> global */
  const PetscInt    *ia, *ja, *ib, *jb;
  const PetscScalar *va, *vb;
  PetscInt           n;
  PetscInt           ncols, buf_cols[16], row_open;
  const PetscInt    *cols;
  const PetscScalar *vals;
  PetscScalar        buf_vals[16];
  PetscBool          aij;
} row_reader;

static PetscErrorCode rbgs_rows_begin(Mat A, row_reader *r)
{
  PetscBool mpi, seq, done;

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(r, sizeof *r));
  r->A        = A;
  r->row_open = -1;
  PetscCall(PetscObjectTypeCompare((PetscObject)A, MATMPIAIJ, &mpi));
  PetscCall(PetscObjectTypeCompare((PetscObject)A, MATSEQAIJ, &seq));
  if (!mpi && !seq) PetscFunctionReturn(0);
  r->aij = PETSC_TRUE;
  if (mpi) PetscCall(MatMPIAIJGetSeqAIJ(A, &r->Ad, &r->Ao, &r->colmap));
  else r->Ad = A;
  PetscCall(MatGetRowIJ(r->Ad, 0, PETSC_FALSE, PETSC_FALSE, &r->n, &r->ia, &r->ja, &done));
  PetscCheck(done, PETSC_COMM_SELF, PETSC_ERR_SUP, "PC rbgs: cannot read the matrix rows; expected an AIJ matrix");
  PetscCall(MatSeqAIJGetArrayRead(r->Ad, &r->va));
  if (r->Ao) {
    PetscCall(MatGetRowIJ(r->Ao, 0, PETSC_FALSE, PETSC_FALSE, &r->n, &r->ib, &r->jb, &done));
    PetscCheck(done, PETSC_COMM_SELF, PETSC_ERR_SUP, "PC rbgs: cannot read the matrix rows; expected an AIJ matrix");
    PetscCall(MatSeqAIJGetArrayRead(r->Ao, &r->vb));
  }
  PetscFunctionReturn(0);
}

/* Local row p (global rstart + p) into r->ncols, r->cols, r->vals. */
static PetscErrorCode rbgs_row_get(row_reader *r, PetscInt rstart, PetscInt p)
{
  PetscFunctionBeginUser;
  if (r->row_open >= 0) PetscCall(MatRestoreRow(r->A, r->row_open, NULL, &r->cols, &r->vals));
  r->row_open = -1;
  if (!r->aij) {
    PetscCall(MatGetRow(r->A, rstart + p, &r->ncols, &r->cols, &r->vals));
    r->row_open = rstart + p;
    PetscFunctionReturn(0);
  }
  r->ncols = 0;
  for (PetscInt k = r->ia[p]; k < r->ia[p + 1] && r->ncols < 16; k++) {
    r->buf_cols[r->ncols]   = rstart + r->ja[k];
    r->buf_vals[r->ncols++] = r->va[k];
  }
  if (r->Ao)
    for (PetscInt k = r->ib[p]; k < r->ib[p + 1] && r->ncols < 16; k++) {
      r->buf_cols[r->ncols]   = r->colmap[r->jb[k]];
      r->buf_vals[r->ncols++] = r->vb[k];
    }
  r->cols = r->buf_cols;
  r->vals = r->buf_vals;
  PetscFunctionReturn(0);
}

static PetscErrorCode rbgs_rows_end(row_reader *r)
{
  PetscBool done;

  PetscFunctionBeginUser;
  if (r->row_open >= 0) PetscCall(MatRestoreRow(r->A, r->row_open, NULL, &r->cols, &r->vals));
  if (!r->aij) PetscFunctionReturn(0);
  PetscCall(MatSeqAIJRestoreArrayRead(r->Ad, &r->va));
  PetscCall(MatRestoreRowIJ(r->Ad, 0, PETSC_FALSE, PETSC_FALSE, &r->n, &r->ia, &r->ja, &done));
  if (r->Ao) {
    PetscCall(MatSeqAIJRestoreArrayRead(r->Ao, &r->vb));
    PetscCall(MatRestoreRowIJ(r->Ao, 0, PETSC_FALSE, PETSC_FALSE, &r->n, &r->ib, &r->jb, &done));
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode PCSetUp_RBGS(PC pc)
{
  pc_rbgs               *s = (pc_rbgs *)pc->data;
  ISLocalToGlobalMapping ltog;
  const PetscInt        *g;
  PetscInt               rstart, n;
  DM                     da;
  row_reader             rows;
  PetscContainer         given = NULL;

  PetscFunctionBeginUser;
  PetscCall(rbgs_find_dm(pc, &da));
  if (s->da != da) {
    PetscCall(PetscFree5(s->d, s->cw, s->ce, s->cn, s->cs));
    PetscCall(VecDestroy(&s->xl));
    PetscCall(DMDestroy(&s->da));
    PetscCall(PetscObjectReference((PetscObject)da));
    s->da = da;
    PetscCall(DMDAGetInfo(da, NULL, &s->M, &s->N, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL));
    PetscCall(DMDAGetCorners(da, &s->xs, &s->ys, NULL, &s->xm, &s->ym, NULL));
    PetscCall(DMDAGetGhostCorners(da, &s->gxs, &s->gys, NULL, &s->gxm, &s->gym, NULL));
    n = s->xm * s->ym;
    PetscCall(PetscMalloc5(n, &s->d, n, &s->cw, n, &s->ce, n, &s->cn, n, &s->cs));
    PetscCall(DMCreateLocalVector(da, &s->xl));
  }
  PetscCall(PetscObjectQuery((PetscObject)pc->pmat, "boundopt_rbgs_stencil", (PetscObject *)&given));
  if (given) {
    bo_rbgs_stencil *st;
    PetscCall(PetscContainerGetPointer(given, (void **)&st));
    PetscCheck(st->n == s->xm * s->ym, PETSC_COMM_SELF, PETSC_ERR_ARG_SIZ, "PC rbgs: stencil of %d points for %d owned grid points; expected one per point", (int)st->n, (int)(s->xm * s->ym));
    for (PetscInt p = 0; p < st->n; p++) {
      s->d[p] = st->coef[5 * p], s->cw[p] = st->coef[5 * p + 1], s->ce[p] = st->coef[5 * p + 2];
      s->cn[p] = st->coef[5 * p + 3], s->cs[p] = st->coef[5 * p + 4];
      PetscCheck(s->d[p] != 0, PETSC_COMM_SELF, PETSC_ERR_MAT_LU_ZRPVT, "PC rbgs: zero diagonal at point %d; expected a nonzero diagonal", (int)p);
    }
    PetscFunctionReturn(0);
  }
  PetscCall(MatGetOwnershipRange(pc->pmat, &rstart, NULL));
  PetscCall(DMGetLocalToGlobalMapping(da, &ltog));
  PetscCall(ISLocalToGlobalMappingGetIndices(ltog, &g));
  PetscCall(rbgs_rows_begin(pc->pmat, &rows));
  for (PetscInt j = s->ys; j < s->ys + s->ym; j++)
    for (PetscInt i = s->xs; i < s->xs + s->xm; i++) {
      PetscInt           p = (j - s->ys) * s->xm + (i - s->xs), l = (j - s->gys) * s->gxm + (i - s->gxs);
      PetscInt           west = i > 0 ? g[l - 1] : -1, east = i < s->M - 1 ? g[l + 1] : -1;
      PetscInt           north = j > 0 ? g[l - s->gxm] : -1, south = j < s->N - 1 ? g[l + s->gxm] : -1;
      s->d[p] = s->cw[p] = s->ce[p] = s->cn[p] = s->cs[p] = 0;
      PetscCheck(g[l] == rstart + p, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "PC rbgs: the matrix rows do not follow the DMDA's numbering; expected a matrix from DMCreateMatrix");
      PetscCall(rbgs_row_get(&rows, rstart, p));
      for (PetscInt k = 0; k < rows.ncols; k++) {
        PetscInt col = rows.cols[k];
        double   val = rows.vals[k];
        if (col == g[l]) s->d[p] = val;
        else if (col == west) s->cw[p] = val;
        else if (col == east) s->ce[p] = val;
        else if (col == north) s->cn[p] = val;
        else if (col == south) s->cs[p] = val;
        else PetscCheck(val == 0, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "PC rbgs: row %d couples to column %d outside the 5-point star; expected a 5-point operator", (int)(rstart + p), (int)col);
      }
      PetscCheck(s->d[p] != 0, PETSC_COMM_SELF, PETSC_ERR_MAT_LU_ZRPVT, "PC rbgs: zero diagonal in row %d; expected a nonzero diagonal", (int)(rstart + p));
    }
  PetscCall(rbgs_rows_end(&rows));
  PetscCall(ISLocalToGlobalMappingRestoreIndices(ltog, &g));
  PetscFunctionReturn(0);
}

/* Updates the owned points of one colour from the other colour's (ghosted) values. */
static void rbgs_half_sweep(const pc_rbgs *s, int colour, const double *b, double *x)
{
  for (PetscInt j = s->ys; j < s->ys + s->ym; j++) {
    PetscInt i0 = s->xs + (((colour - j - s->xs) % 2) + 2) % 2;
    for (PetscInt i = i0; i < s->xs + s->xm; i += 2) {
      PetscInt p = (j - s->ys) * s->xm + (i - s->xs), l = (j - s->gys) * s->gxm + (i - s->gxs);
      double   t = 0;
      if (i > 0) t += s->cw[p] * x[l - 1];
      if (i < s->M - 1) t += s->ce[p] * x[l + 1];
      if (j > 0) t += s->cn[p] * x[l - s->gxm];
      if (j < s->N - 1) t += s->cs[p] * x[l + s->gxm];
      x[l] = (b[p] - t) / s->d[p];
    }
  }
}

static PetscErrorCode rbgs_colour(pc_rbgs *s, int colour, const double *b)
{
  double *x;

  PetscFunctionBeginUser;
  PetscCall(DMLocalToLocalBegin(s->da, s->xl, INSERT_VALUES, s->xl));
  PetscCall(DMLocalToLocalEnd(s->da, s->xl, INSERT_VALUES, s->xl));
  PetscCall(VecGetArray(s->xl, &x));
  rbgs_half_sweep(s, colour, b, x);
  PetscCall(VecRestoreArray(s->xl, &x));
  PetscFunctionReturn(0);
}

/* x <- `sweeps` symmetric sweeps on T x = b from x: red, then (black, red) per sweep. */
static PetscErrorCode rbgs_sweeps(pc_rbgs *s, Vec b, Vec x, PetscInt sweeps, PetscBool zero_guess)
{
  const double *bb;

  PetscFunctionBeginUser;
  if (zero_guess) PetscCall(VecSet(x, 0));
  PetscCall(DMGlobalToLocalBegin(s->da, x, INSERT_VALUES, s->xl));
  PetscCall(DMGlobalToLocalEnd(s->da, x, INSERT_VALUES, s->xl));
  PetscCall(VecGetArrayRead(b, &bb));
  {
    double *x0;
    PetscCall(VecGetArray(s->xl, &x0));
    rbgs_half_sweep(s, 0, bb, x0); /* ghosts are fresh after the global-to-local */
    PetscCall(VecRestoreArray(s->xl, &x0));
  }
  for (PetscInt k = 0; k < sweeps; k++) {
    PetscCall(rbgs_colour(s, 1, bb));
    PetscCall(rbgs_colour(s, 0, bb));
  }
  PetscCall(VecRestoreArrayRead(b, &bb));
  PetscCall(DMLocalToGlobalBegin(s->da, s->xl, INSERT_VALUES, x));
  PetscCall(DMLocalToGlobalEnd(s->da, s->xl, INSERT_VALUES, x));
  PetscFunctionReturn(0);
}

static PetscErrorCode PCApply_RBGS(PC pc, Vec b, Vec y)
{
  PetscFunctionBeginUser;
  PetscCall(rbgs_sweeps((pc_rbgs *)pc->data, b, y, 1, PETSC_TRUE));
  PetscFunctionReturn(0);
}

static PetscErrorCode PCApplyRichardson_RBGS(PC pc, Vec b, Vec x, Vec w, PetscReal rtol, PetscReal abstol, PetscReal dtol, PetscInt its, PetscBool guesszero, PetscInt *outits, PCRichardsonConvergedReason *reason)
{
  PetscFunctionBeginUser;
  (void)w, (void)rtol, (void)abstol, (void)dtol;
  PetscCall(rbgs_sweeps((pc_rbgs *)pc->data, b, x, its, guesszero));
  *outits = its;
  *reason = PCRICHARDSON_CONVERGED_ITS;
  PetscFunctionReturn(0);
}

static PetscErrorCode PCView_RBGS(PC pc, PetscViewer viewer)
{
  PetscBool ascii;

  PetscFunctionBeginUser;
  PetscCall(PetscObjectTypeCompare((PetscObject)viewer, PETSCVIEWERASCII, &ascii));
  if (ascii) PetscCall(PetscViewerASCIIPrintf(viewer, "  symmetric red-black Gauss-Seidel (red, black, red per sweep), rank-count independent\n"));
  PetscFunctionReturn(0);
}

static PetscErrorCode PCDestroy_RBGS(PC pc)
{
  pc_rbgs *s = (pc_rbgs *)pc->data;

  PetscFunctionBeginUser;
  PetscCall(PetscFree5(s->d, s->cw, s->ce, s->cn, s->cs));
  PetscCall(VecDestroy(&s->xl));
  PetscCall(DMDestroy(&s->da));
  PetscCall(PetscFree(pc->data));
  PetscFunctionReturn(0);
}

static PetscErrorCode PCCreate_RBGS(PC pc)
{
  pc_rbgs *s;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&s));
  pc->data                 = s;
  pc->ops->setup           = PCSetUp_RBGS;
  pc->ops->apply           = PCApply_RBGS;
  pc->ops->applyrichardson = PCApplyRichardson_RBGS;
  pc->ops->view            = PCView_RBGS;
  pc->ops->destroy         = PCDestroy_RBGS;
  PetscFunctionReturn(0);
}

PetscErrorCode bo_rbgs_register(void)
{
  static PetscBool done = PETSC_FALSE;

  PetscFunctionBeginUser;
  if (!done) PetscCall(PCRegister(PCRBGS, PCCreate_RBGS));
  done = PETSC_TRUE;
  PetscFunctionReturn(0);
}
