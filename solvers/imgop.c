/* imgop.c - DMDA images, the HQ/AT operators and the inner KSP/PC configurations (imgop.h). */
#include "boundopt/imgop.h"
#include "boundopt/error.h"
#include "boundopt/rbgs.h"
#include "boundopt/reduce.h"
#include <fftw3.h>
#include <math.h>
#include <string.h>

const char *const bo_inner_names[] = {"exact", "cg", "rbgs", "jacobi", "mg", "ssor", "fft"};

/* ------------------------------------------------------------------------------------ grid */

PetscErrorCode bo_grid_create(MPI_Comm comm, PetscInt h, PetscInt w, int blur_radius, bo_grid *g)
{
  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(g, sizeof *g));
  g->comm = comm;
  g->h    = h;
  g->w    = w;
  PetscCall(DMDACreate2d(comm, DM_BOUNDARY_NONE, DM_BOUNDARY_NONE, DMDA_STENCIL_STAR, w, h, PETSC_DECIDE, PETSC_DECIDE, 1, 1, NULL, NULL, &g->da));
  PetscCall(DMSetUp(g->da));
  PetscCall(DMDAGetCorners(g->da, &g->xs, &g->ys, NULL, &g->xm, &g->ym, NULL));
  PetscCall(DMDAGetGhostCorners(g->da, &g->gxs, &g->gys, NULL, &g->gxm, &g->gym, NULL));
  if (blur_radius > 0) {
    const PetscInt *lx, *ly;
    PetscInt        m, n, narrow = PETSC_MAX_INT;
    PetscCall(DMDAGetInfo(g->da, NULL, NULL, NULL, NULL, &m, &n, NULL, NULL, NULL, NULL, NULL, NULL, NULL));
    PetscCall(DMDAGetOwnershipRanges(g->da, &lx, &ly, NULL));
    for (PetscInt k = 0; k < m; k++) narrow = PetscMin(narrow, lx[k]);
    for (PetscInt k = 0; k < n; k++) narrow = PetscMin(narrow, ly[k]);
    PetscCheck(narrow >= blur_radius, comm, BO_ERR_INPUT, "image: %d x %d pixels over a %d x %d process grid gives blocks %d pixels wide; expected at least the blur radius %d (fewer ranks or a larger image)", (int)h, (int)w, (int)n, (int)m, (int)narrow, blur_radius);
    PetscCall(DMDACreate2d(comm, DM_BOUNDARY_NONE, DM_BOUNDARY_NONE, DMDA_STENCIL_BOX, w, h, m, n, 1, blur_radius, lx, ly, &g->dablur));
    PetscCall(DMSetUp(g->dablur));
  }
  PetscCall(DMDACreateNaturalVector(g->da, &g->natural));
  PetscCall(VecScatterCreateToZero(g->natural, &g->tozero, &g->zero));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_grid_destroy(bo_grid *g)
{
  PetscFunctionBeginUser;
  PetscCall(VecScatterDestroy(&g->tozero));
  PetscCall(VecDestroy(&g->zero));
  PetscCall(VecDestroy(&g->natural));
  PetscCall(DMDestroy(&g->dablur));
  PetscCall(DMDestroy(&g->da));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_grid_set_image(const bo_grid *g, const double *full, int nc, int c, Vec x)
{
  double *a;

  PetscFunctionBeginUser;
  PetscCall(VecGetArray(x, &a));
  for (PetscInt j = g->ys; j < g->ys + g->ym; j++)
    for (PetscInt i = g->xs; i < g->xs + g->xm; i++) a[(j - g->ys) * g->xm + (i - g->xs)] = full[((size_t)j * g->w + i) * nc + c];
  PetscCall(VecRestoreArray(x, &a));
  PetscFunctionReturn(0);
}

/* natural-ordered copy of x on rank 0 in g->zero */
static PetscErrorCode grid_gather(bo_grid *g, Vec x)
{
  PetscFunctionBeginUser;
  PetscCall(DMDAGlobalToNaturalBegin(g->da, x, INSERT_VALUES, g->natural));
  PetscCall(DMDAGlobalToNaturalEnd(g->da, x, INSERT_VALUES, g->natural));
  PetscCall(VecScatterBegin(g->tozero, g->natural, g->zero, INSERT_VALUES, SCATTER_FORWARD));
  PetscCall(VecScatterEnd(g->tozero, g->natural, g->zero, INSERT_VALUES, SCATTER_FORWARD));
  PetscFunctionReturn(0);
}

static PetscErrorCode grid_scatter(bo_grid *g, Vec x)
{
  PetscFunctionBeginUser;
  PetscCall(VecScatterBegin(g->tozero, g->zero, g->natural, INSERT_VALUES, SCATTER_REVERSE));
  PetscCall(VecScatterEnd(g->tozero, g->zero, g->natural, INSERT_VALUES, SCATTER_REVERSE));
  PetscCall(DMDANaturalToGlobalBegin(g->da, g->natural, INSERT_VALUES, x));
  PetscCall(DMDANaturalToGlobalEnd(g->da, g->natural, INSERT_VALUES, x));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_grid_get_image(bo_grid *g, Vec x, double *full, int nc, int c)
{
  const double *z;
  PetscInt      n;

  PetscFunctionBeginUser;
  PetscCall(grid_gather(g, x));
  PetscCall(VecGetLocalSize(g->zero, &n));
  PetscCall(VecGetArrayRead(g->zero, &z));
  for (PetscInt k = 0; k < n; k++) full[(size_t)k * nc + c] = z[k];
  PetscCall(VecRestoreArrayRead(g->zero, &z));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_grid_sum(const bo_grid *g, const double *terms, double *total)
{
  PetscInt    n = g->xm * g->ym;
  double      big = 0;
  bo_exactsum s;

  PetscFunctionBeginUser;
  for (PetscInt k = 0; k < n; k++) big = PetscMax(big, fabs(terms[k]));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &big, 1, MPI_DOUBLE, MPI_MAX, g->comm));
  PetscCheck(isfinite(big), g->comm, BO_ERR_RUNTIME, "energy: a term is not finite; expected finite iterates (the inner solver diverged?)");
  PetscCall(bo_exactsum_create(1, big * (double)g->h * (double)g->w, &s));
  for (PetscInt k = 0; k < n; k++) PetscCall(bo_exactsum_add_at(s, 0, 1, terms + k));
  PetscCall(bo_exactsum_allreduce(g->comm, s, total));
  PetscCall(bo_exactsum_destroy(&s));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_grid_gradient(const bo_grid *g, Vec x, Vec t2, Vec gx, Vec gy)
{
  Vec           xl;
  const double *a;
  double       *t, *px = NULL, *py = NULL;

  PetscFunctionBeginUser;
  PetscCall(DMGetLocalVector(g->da, &xl));
  PetscCall(DMGlobalToLocalBegin(g->da, x, INSERT_VALUES, xl));
  PetscCall(DMGlobalToLocalEnd(g->da, x, INSERT_VALUES, xl));
  PetscCall(VecGetArrayRead(xl, &a));
  PetscCall(VecGetArray(t2, &t));
  if (gx) PetscCall(VecGetArray(gx, &px));
  if (gy) PetscCall(VecGetArray(gy, &py));
  for (PetscInt j = g->ys; j < g->ys + g->ym; j++)
    for (PetscInt i = g->xs; i < g->xs + g->xm; i++) {
      PetscInt p = (j - g->ys) * g->xm + (i - g->xs), l = (j - g->gys) * g->gxm + (i - g->gxs);
      double   dx = i < g->w - 1 ? a[l + 1] - a[l] : 0, dy = j < g->h - 1 ? a[l + g->gxm] - a[l] : 0;
      t[p] = dx * dx + dy * dy;
      if (px) px[p] = dx;
      if (py) py[p] = dy;
    }
  if (gx) PetscCall(VecRestoreArray(gx, &px));
  if (gy) PetscCall(VecRestoreArray(gy, &py));
  PetscCall(VecRestoreArray(t2, &t));
  PetscCall(VecRestoreArrayRead(xl, &a));
  PetscCall(DMRestoreLocalVector(g->da, &xl));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_grid_divergence(const bo_grid *g, Vec wx, Vec wy, Vec y)
{
  Vec           lx, ly;
  const double *a, *b;
  double       *o;

  PetscFunctionBeginUser;
  PetscCall(DMGetLocalVector(g->da, &lx));
  PetscCall(DMGetLocalVector(g->da, &ly));
  PetscCall(DMGlobalToLocalBegin(g->da, wx, INSERT_VALUES, lx));
  PetscCall(DMGlobalToLocalEnd(g->da, wx, INSERT_VALUES, lx));
  PetscCall(DMGlobalToLocalBegin(g->da, wy, INSERT_VALUES, ly));
  PetscCall(DMGlobalToLocalEnd(g->da, wy, INSERT_VALUES, ly));
  PetscCall(VecGetArrayRead(lx, &a));
  PetscCall(VecGetArrayRead(ly, &b));
  PetscCall(VecGetArray(y, &o));
  for (PetscInt j = g->ys; j < g->ys + g->ym; j++)
    for (PetscInt i = g->xs; i < g->xs + g->xm; i++) {
      PetscInt p = (j - g->ys) * g->xm + (i - g->xs), l = (j - g->gys) * g->gxm + (i - g->gxs);
      double   s = 0;
      if (i > 0) s += a[l - 1];
      if (i < g->w - 1) s -= a[l];
      if (j > 0) s += b[l - g->gxm];
      if (j < g->h - 1) s -= b[l];
      o[p] = s;
    }
  PetscCall(VecRestoreArray(y, &o));
  PetscCall(VecRestoreArrayRead(ly, &b));
  PetscCall(VecRestoreArrayRead(lx, &a));
  PetscCall(DMRestoreLocalVector(g->da, &ly));
  PetscCall(DMRestoreLocalVector(g->da, &lx));
  PetscFunctionReturn(0);
}

/* ------------------------------------------------------------------------------------ operator */

static PetscErrorCode imgop_blur_local(bo_imgop *op, PetscBool transpose, Vec x, double *out)
{
  const bo_grid *g = op->g;
  const double  *in;
  PetscInt       gxs, gys, gxm, gym;

  PetscFunctionBeginUser;
  PetscCall(DMGlobalToLocalBegin(g->dablur, x, INSERT_VALUES, op->bl));
  PetscCall(DMGlobalToLocalEnd(g->dablur, x, INSERT_VALUES, op->bl));
  PetscCall(DMDAGetGhostCorners(g->dablur, &gxs, &gys, NULL, &gxm, &gym, NULL));
  PetscCall(VecGetArrayRead(op->bl, &in));
  bo_blur_apply_patch(op->blur, transpose, in, gxs, gys, gxm, gym, g->xs, g->ys, g->xm, g->ym, op->tmp, out);
  PetscCall(VecRestoreArrayRead(op->bl, &in));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_imgop_blur(bo_imgop *op, PetscBool transpose, Vec x, Vec y)
{
  double *o;

  PetscFunctionBeginUser;
  PetscCheck(op->blur, op->g->comm, PETSC_ERR_ARG_WRONGSTATE, "imgop: no blur; expected an operator created with a blur");
  PetscCall(VecGetArray(y, &o));
  PetscCall(imgop_blur_local(op, transpose, x, o));
  PetscCall(VecRestoreArray(y, &o));
  PetscFunctionReturn(0);
}

/* y = a x + L(c) x + [K^T K x], each pixel's terms in this order. */
static PetscErrorCode imgop_mult(Mat T, Vec x, Vec y)
{
  bo_imgop      *op;
  const bo_grid *g;
  const double  *xa, *ca, *aa, *ka = NULL;
  double        *o, *ktk = NULL;

  PetscFunctionBeginUser;
  PetscCall(MatShellGetContext(T, &op));
  g = op->g;
  if (op->blur) {
    double *t;
    PetscCall(VecGetArray(op->t, &t));
    PetscCall(imgop_blur_local(op, PETSC_FALSE, x, t));
    PetscCall(VecRestoreArray(op->t, &t));
    PetscCall(PetscMalloc1(g->xm * g->ym, &ktk));
    PetscCall(imgop_blur_local(op, PETSC_TRUE, op->t, ktk));
    ka = ktk;
  }
  PetscCall(DMGlobalToLocalBegin(g->da, x, INSERT_VALUES, op->xl));
  PetscCall(DMGlobalToLocalEnd(g->da, x, INSERT_VALUES, op->xl));
  PetscCall(VecGetArrayRead(op->xl, &xa));
  PetscCall(VecGetArrayRead(op->cl, &ca));
  PetscCall(VecGetArrayRead(op->a, &aa));
  PetscCall(VecGetArray(y, &o));
  for (PetscInt j = g->ys; j < g->ys + g->ym; j++)
    for (PetscInt i = g->xs; i < g->xs + g->xm; i++) {
      PetscInt p = (j - g->ys) * g->xm + (i - g->xs), l = (j - g->gys) * g->gxm + (i - g->gxs);
      double   s = aa[p] * xa[l];
      if (i < g->w - 1) s += ca[l] * (xa[l] - xa[l + 1]);
      if (i > 0) s += ca[l - 1] * (xa[l] - xa[l - 1]);
      if (j < g->h - 1) s += ca[l] * (xa[l] - xa[l + g->gxm]);
      if (j > 0) s += ca[l - g->gxm] * (xa[l] - xa[l - g->gxm]);
      if (ka) s += ka[p];
      o[p] = s;
    }
  PetscCall(VecRestoreArray(y, &o));
  PetscCall(VecRestoreArrayRead(op->a, &aa));
  PetscCall(VecRestoreArrayRead(op->cl, &ca));
  PetscCall(VecRestoreArrayRead(op->xl, &xa));
  PetscCall(PetscFree(ktk));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_imgop_create(bo_grid *g, const bo_blur *blur, PetscBool shell, bo_imgop *op)
{
  PetscInt n;

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(op, sizeof *op));
  op->g     = g;
  op->blur  = blur;
  op->shell = shell || blur ? PETSC_TRUE : PETSC_FALSE;
  PetscCall(DMCreateGlobalVector(g->da, &op->a));
  PetscCall(VecDuplicate(op->a, &op->c));
  PetscCall(DMCreateLocalVector(g->da, &op->xl));
  PetscCall(VecDuplicate(op->xl, &op->cl));
  PetscCall(VecGetLocalSize(op->a, &n));
  if (blur) {
    PetscCheck(g->dablur, g->comm, PETSC_ERR_ARG_WRONGSTATE, "imgop: a blur on a grid made without its radius; expected bo_grid_create with the blur radius");
    PetscCall(DMCreateLocalVector(g->dablur, &op->bl));
    PetscCall(VecDuplicate(op->a, &op->t));
    PetscCall(PetscMalloc1((size_t)(g->ym + 2 * blur->r) * g->xm + 1, &op->tmp));
    op->k_norm2 = bo_blur_norm2_bound(blur);
  }
  if (op->shell) {
    PetscCall(MatCreateShell(g->comm, n, n, PETSC_DETERMINE, PETSC_DETERMINE, op, &op->T));
    PetscCall(MatShellSetOperation(op->T, MATOP_MULT, (void (*)(void))imgop_mult));
    PetscCall(MatSetOption(op->T, MAT_SYMMETRIC, PETSC_TRUE));
  } else {
    PetscCall(DMSetMatType(g->da, MATAIJ));
    PetscCall(DMCreateMatrix(g->da, &op->T));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_imgop_destroy(bo_imgop *op)
{
  PetscFunctionBeginUser;
  PetscCall(MatDestroy(&op->T));
  PetscCall(VecDestroy(&op->a));
  PetscCall(VecDestroy(&op->c));
  PetscCall(VecDestroy(&op->xl));
  PetscCall(VecDestroy(&op->cl));
  PetscCall(VecDestroy(&op->bl));
  PetscCall(VecDestroy(&op->t));
  PetscCall(PetscFree(op->tmp));
  PetscCall(PetscFree(op->cols));
  PetscCall(PetscFree(op->stencil));
  PetscCall(PetscFree(op->pos));
  PetscFunctionReturn(0);
}

/* Global column numbers of each owned row's stencil (west, east, north, south, self; -1 when
 * off the image), from the DMDA's local-to-global map, computed once: MatSetValuesStencil would
 * redo this mapping for every entry of every assembly. */
static PetscErrorCode imgop_stencil_indices(bo_imgop *op)
{
  const bo_grid         *g = op->g;
  ISLocalToGlobalMapping ltog;
  const PetscInt        *gi;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(5 * g->xm * g->ym + 1, &op->cols));
  PetscCall(DMGetLocalToGlobalMapping(g->da, &ltog));
  PetscCall(ISLocalToGlobalMappingGetIndices(ltog, &gi));
  for (PetscInt j = g->ys; j < g->ys + g->ym; j++)
    for (PetscInt i = g->xs; i < g->xs + g->xm; i++) {
      PetscInt p = (j - g->ys) * g->xm + (i - g->xs), l = (j - g->gys) * g->gxm + (i - g->gxs), *c = op->cols + 5 * p;
      c[0] = i > 0 ? gi[l - 1] : -1;
      c[1] = i < g->w - 1 ? gi[l + 1] : -1;
      c[2] = j > 0 ? gi[l - g->gxm] : -1;
      c[3] = j < g->h - 1 ? gi[l + g->gxm] : -1;
      c[4] = gi[l];
    }
  PetscCall(ISLocalToGlobalMappingRestoreIndices(ltog, &gi));
  PetscFunctionReturn(0);
}

/* Where each stencil entry of each owned row sits in the AIJ value arrays: pos >= 0 in the
 * diagonal block, -2 - pos in the off-diagonal block, -1 for no entry.  Computed once, after the
 * first assembly fixed the pattern; later assemblies write the values in place (MatSetValues
 * costs more than a sweep per row). */
static PetscErrorCode imgop_locate(bo_imgop *op)
{
  const bo_grid  *g = op->g;
  Mat             Ad = op->T, Ao = NULL;
  const PetscInt *colmap = NULL, *ia, *ja, *ib = NULL, *jb = NULL;
  PetscInt        rstart, rend, n;
  PetscBool       mpi, seq, done;

  PetscFunctionBeginUser;
  PetscCall(PetscObjectTypeCompare((PetscObject)op->T, MATMPIAIJ, &mpi));
  PetscCall(PetscObjectTypeCompare((PetscObject)op->T, MATSEQAIJ, &seq));
  if (!mpi && !seq) PetscFunctionReturn(0); /* another matrix type: keep MatSetValues */
  if (mpi) PetscCall(MatMPIAIJGetSeqAIJ(op->T, &Ad, &Ao, &colmap));
  PetscCall(MatGetOwnershipRange(op->T, &rstart, &rend));
  PetscCall(MatGetRowIJ(Ad, 0, PETSC_FALSE, PETSC_FALSE, &n, &ia, &ja, &done));
  if (Ao) PetscCall(MatGetRowIJ(Ao, 0, PETSC_FALSE, PETSC_FALSE, &n, &ib, &jb, &done));
  PetscCall(PetscMalloc1(5 * g->xm * g->ym + 1, &op->pos));
  for (PetscInt p = 0; p < g->xm * g->ym; p++)
    for (int s = 0; s < 5; s++) {
      PetscInt c = op->cols[5 * p + s], where = -1;
      if (c >= rstart && c < rend) {
        for (PetscInt k = ia[p]; k < ia[p + 1]; k++)
          if (ja[k] == c - rstart) where = k;
      } else if (c >= 0 && Ao) {
        for (PetscInt k = ib[p]; k < ib[p + 1]; k++)
          if (colmap[jb[k]] == c) where = -2 - k;
      }
      PetscCheck(c < 0 || where != -1, PETSC_COMM_SELF, PETSC_ERR_PLIB, "imgop: stencil entry (%d, %d) missing from the matrix; expected the DMDA's 5-point pattern", (int)(rstart + p), (int)c);
      op->pos[5 * p + s] = where;
    }
  PetscCall(MatRestoreRowIJ(Ad, 0, PETSC_FALSE, PETSC_FALSE, &n, &ia, &ja, &done));
  if (Ao) PetscCall(MatRestoreRowIJ(Ao, 0, PETSC_FALSE, PETSC_FALSE, &n, &ib, &jb, &done));
  op->Ad = Ad;
  op->Ao = Ao;
  PetscFunctionReturn(0);
}

static PetscErrorCode imgop_assemble(bo_imgop *op)
{
  const bo_grid *g = op->g;
  const double  *ca, *aa;
  PetscScalar   *va = NULL, *vb = NULL;

  PetscFunctionBeginUser;
  if (!op->cols) {
    PetscContainer box;
    PetscCall(imgop_stencil_indices(op));
    PetscCall(PetscMalloc1(5 * g->xm * g->ym + 1, &op->stencil));
    op->st.n    = g->xm * g->ym;
    op->st.coef = op->stencil;
    PetscCall(PetscContainerCreate(g->comm, &box));
    PetscCall(PetscContainerSetPointer(box, &op->st));
    PetscCall(PetscObjectCompose((PetscObject)op->T, "boundopt_rbgs_stencil", (PetscObject)box));
    PetscCall(PetscContainerDestroy(&box));
  }
  if (op->pos) {
    PetscCall(MatSeqAIJGetArray(op->Ad, &va));
    if (op->Ao) PetscCall(MatSeqAIJGetArray(op->Ao, &vb));
  }
  PetscCall(VecGetArrayRead(op->cl, &ca));
  PetscCall(VecGetArrayRead(op->a, &aa));
  for (PetscInt j = g->ys; j < g->ys + g->ym; j++)
    for (PetscInt i = g->xs; i < g->xs + g->xm; i++) {
      PetscInt    p = (j - g->ys) * g->xm + (i - g->xs), l = (j - g->gys) * g->gxm + (i - g->gxs), k = 0, col[5];
      const PetscInt *c = op->cols + 5 * p;
      PetscScalar v[5], d = aa[p];
      if (i > 0) { col[k] = c[0]; v[k++] = -ca[l - 1]; d += ca[l - 1]; }
      if (i < g->w - 1) { col[k] = c[1]; v[k++] = -ca[l]; d += ca[l]; }
      if (j > 0) { col[k] = c[2]; v[k++] = -ca[l - g->gxm]; d += ca[l - g->gxm]; }
      if (j < g->h - 1) { col[k] = c[3]; v[k++] = -ca[l]; d += ca[l]; }
      col[k] = c[4];
      v[k++] = d;
      { /* the same numbers for the rbgs fast path: diagonal, west, east, north, south */
        double *st = op->stencil + 5 * p;
        st[0] = d;
        st[1] = i > 0 ? -ca[l - 1] : 0;
        st[2] = i < g->w - 1 ? -ca[l] : 0;
        st[3] = j > 0 ? -ca[l - g->gxm] : 0;
        st[4] = j < g->h - 1 ? -ca[l] : 0;
        if (op->pos) { /* slots of cols[]: west, east, north, south, self */
          const PetscInt *at = op->pos + 5 * p;
          const double    val[5] = {st[1], st[2], st[3], st[4], st[0]};
          for (int q = 0; q < 5; q++) {
            if (at[q] >= 0) va[at[q]] = val[q];
            else if (at[q] < -1) vb[-2 - at[q]] = val[q];
          }
        } else PetscCall(MatSetValues(op->T, 1, &c[4], k, col, v, INSERT_VALUES));
      }
    }
  PetscCall(VecRestoreArrayRead(op->a, &aa));
  PetscCall(VecRestoreArrayRead(op->cl, &ca));
  if (op->pos) {
    PetscCall(MatSeqAIJRestoreArray(op->Ad, &va));
    if (op->Ao) PetscCall(MatSeqAIJRestoreArray(op->Ao, &vb));
  }
  PetscCall(MatAssemblyBegin(op->T, MAT_FINAL_ASSEMBLY)); /* also marks the matrix changed */
  PetscCall(MatAssemblyEnd(op->T, MAT_FINAL_ASSEMBLY));
  if (!op->pos) PetscCall(imgop_locate(op));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_imgop_update(bo_imgop *op)
{
  PetscFunctionBeginUser;
  PetscCall(DMGlobalToLocalBegin(op->g->da, op->c, INSERT_VALUES, op->cl));
  PetscCall(DMGlobalToLocalEnd(op->g->da, op->c, INSERT_VALUES, op->cl));
  PetscCall(VecMax(op->a, NULL, &op->a_max));
  PetscCall(VecMax(op->c, NULL, &op->c_max));
  if (!op->shell) PetscCall(imgop_assemble(op));
  op->state++;
  PetscFunctionReturn(0);
}

/* ------------------------------------------------------------------------------------ MG hierarchy
 * Why not PETSc's own: DMDA coarsening interpolates bilinearly and needs (n - 1) divisible by 2 on
 * every level (only sizes like 2^k + 1 coarsen far), and GAMG builds partition-dependent
 * aggregates with a Chebyshev smoother, which is not guaranteed feasible.  So PCMG gets its
 * interpolations from here:
 * 2x2 aggregation: coarse point (I, J) = fine points (2I..2I+1, 2J..2J+1).  A process owns the
 * coarse points whose first fine point it owns, so coarse blocks follow the fine ones and every
 * rank can number any point: index = offset[rank] + local natural index.  Aggregation keeps the
 * Galerkin operator P^T T P a 5-point stencil and a diagonally dominant M-matrix. */

typedef struct {
  PetscInt  nx, ny, m, n;   /* points, process grid */
  PetscInt *xb, *yb;        /* m+1, n+1 block boundaries */
  PetscInt *ox, *oy;        /* owner column / row of each x / y */
  PetscInt *offset;         /* m*n+1 */
} mg_level;

static PetscErrorCode level_finish(mg_level *L)
{
  PetscFunctionBeginUser;
  PetscCall(PetscMalloc3(L->nx, &L->ox, L->ny, &L->oy, L->m * L->n + 1, &L->offset));
  for (PetscInt p = 0; p < L->m; p++)
    for (PetscInt i = L->xb[p]; i < L->xb[p + 1]; i++) L->ox[i] = p;
  for (PetscInt q = 0; q < L->n; q++)
    for (PetscInt j = L->yb[q]; j < L->yb[q + 1]; j++) L->oy[j] = q;
  L->offset[0] = 0;
  for (PetscInt r = 0; r < L->m * L->n; r++) {
    PetscInt p = r % L->m, q = r / L->m;
    L->offset[r + 1] = L->offset[r] + (L->xb[p + 1] - L->xb[p]) * (L->yb[q + 1] - L->yb[q]);
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode level_from_da(DM da, mg_level *L)
{
  const PetscInt *lx, *ly;

  PetscFunctionBeginUser;
  PetscCall(DMDAGetInfo(da, NULL, &L->nx, &L->ny, NULL, &L->m, &L->n, NULL, NULL, NULL, NULL, NULL, NULL, NULL));
  PetscCall(DMDAGetOwnershipRanges(da, &lx, &ly, NULL));
  PetscCall(PetscMalloc2(L->m + 1, &L->xb, L->n + 1, &L->yb));
  L->xb[0] = L->yb[0] = 0;
  for (PetscInt p = 0; p < L->m; p++) L->xb[p + 1] = L->xb[p] + lx[p];
  for (PetscInt q = 0; q < L->n; q++) L->yb[q + 1] = L->yb[q] + ly[q];
  PetscCall(level_finish(L));
  PetscFunctionReturn(0);
}

static PetscErrorCode level_coarsen(const mg_level *F, mg_level *C)
{
  PetscFunctionBeginUser;
  C->nx = (F->nx + 1) / 2, C->ny = (F->ny + 1) / 2, C->m = F->m, C->n = F->n;
  PetscCall(PetscMalloc2(C->m + 1, &C->xb, C->n + 1, &C->yb));
  for (PetscInt p = 0; p <= C->m; p++) C->xb[p] = (F->xb[p] + 1) / 2;
  for (PetscInt q = 0; q <= C->n; q++) C->yb[q] = (F->yb[q] + 1) / 2;
  PetscCall(level_finish(C));
  PetscFunctionReturn(0);
}

static PetscErrorCode level_destroy(mg_level *L)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree2(L->xb, L->yb));
  PetscCall(PetscFree3(L->ox, L->oy, L->offset));
  PetscFunctionReturn(0);
}

static PetscInt level_index(const mg_level *L, PetscInt i, PetscInt j)
{
  PetscInt p = L->ox[i], q = L->oy[j];
  return L->offset[p + q * L->m] + (j - L->yb[q]) * (L->xb[p + 1] - L->xb[p]) + (i - L->xb[p]);
}

/* P: fine x coarse, P[f, c] = 1 when fine point f lies in aggregate c. */
static PetscErrorCode level_interpolation(MPI_Comm comm, const mg_level *F, const mg_level *C, Mat *P)
{
  PetscMPIInt rank;
  PetscInt    p, q, nf, nc;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  p  = rank % F->m, q = rank / F->m;
  nf = (F->xb[p + 1] - F->xb[p]) * (F->yb[q + 1] - F->yb[q]);
  nc = (C->xb[p + 1] - C->xb[p]) * (C->yb[q + 1] - C->yb[q]);
  PetscCall(MatCreateAIJ(comm, nf, nc, PETSC_DETERMINE, PETSC_DETERMINE, 1, NULL, 1, NULL, P));
  for (PetscInt j = F->yb[q]; j < F->yb[q + 1]; j++)
    for (PetscInt i = F->xb[p]; i < F->xb[p + 1]; i++) {
      PetscInt    row = level_index(F, i, j), col = level_index(C, i / 2, j / 2);
      PetscScalar one = 1;
      PetscCall(MatSetValues(*P, 1, &row, 1, &col, &one, INSERT_VALUES));
    }
  PetscCall(MatAssemblyBegin(*P, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(*P, MAT_FINAL_ASSEMBLY));
  PetscFunctionReturn(0);
}

/* Makes pc a PCMG on da's grid: levels down to at most 8 points a side, Galerkin coarse
 * operators, one local symmetric SOR sweep as pre- and post-smoother (mutually adjoint). */
static PetscErrorCode configure_mg(PC pc, DM da)
{
  MPI_Comm  comm = PetscObjectComm((PetscObject)pc);
  mg_level  lv[16];
  PetscInt  nlev = 1;

  PetscFunctionBeginUser;
  PetscCall(level_from_da(da, &lv[0]));
  while (nlev < 16 && PetscMax(lv[nlev - 1].nx, lv[nlev - 1].ny) > 8 && PetscMin(lv[nlev - 1].nx, lv[nlev - 1].ny) > 2) {
    PetscCall(level_coarsen(&lv[nlev - 1], &lv[nlev]));
    nlev++;
  }
  PetscCall(PCSetType(pc, PCMG));
  PetscCall(PCMGSetLevels(pc, nlev, NULL));
  PetscCall(PCMGSetType(pc, PC_MG_MULTIPLICATIVE));
  PetscCall(PCMGSetCycleType(pc, PC_MG_CYCLE_V));
  PetscCall(PCMGSetGalerkin(pc, PC_MG_GALERKIN_BOTH));
  for (PetscInt l = 1; l < nlev; l++) { /* PCMG level l is fine level nlev-1-l of lv[] reversed */
    Mat P;
    KSP smoother;
    PC  spc;
    PetscCall(level_interpolation(comm, &lv[nlev - 1 - l], &lv[nlev - l], &P));
    PetscCall(PCMGSetInterpolation(pc, l, P));
    PetscCall(MatDestroy(&P));
    PetscCall(PCMGGetSmoother(pc, l, &smoother));
    PetscCall(KSPSetType(smoother, KSPRICHARDSON));
    PetscCall(KSPSetTolerances(smoother, 0, 0, PETSC_DEFAULT, 1));
    PetscCall(KSPSetNormType(smoother, KSP_NORM_NONE));
    PetscCall(KSPGetPC(smoother, &spc));
    PetscCall(PCSetType(spc, PCSOR));
    PetscCall(PCSORSetSymmetric(spc, SOR_LOCAL_SYMMETRIC_SWEEP));
  }
  for (PetscInt l = 0; l < nlev; l++) PetscCall(level_destroy(&lv[l]));
  PetscFunctionReturn(0);
}

/* ------------------------------------------------------------------------------------ majorant PC */

typedef struct {
  bo_imgop     *op;
  bo_inner_type type;    /* fft or mg */
  /* fft (rank 0) */
  double       *buf, *lx, *ly, *kx, *ky;
  fftw_plan     forward, backward;
  /* mg on the 5-point majorant (c_K + max a) I + (max c) grad^T grad */
  Mat           M5;
  KSP           ksp5;
  PetscObjectState built;
} majorant;

static PetscErrorCode majorant_setup_fft(majorant *mj)
{
  bo_grid    *g = mj->op->g;
  PetscMPIInt rank;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(g->comm, &rank));
  if (rank || mj->buf) PetscFunctionReturn(0);
  PetscCall(PetscMalloc5(g->h * g->w, &mj->buf, g->w, &mj->lx, g->h, &mj->ly, g->w, &mj->kx, g->h, &mj->ky));
  for (PetscInt k = 0; k < g->w; k++) mj->lx[k] = 2 - 2 * cos(PETSC_PI * (double)k / (double)g->w);
  for (PetscInt k = 0; k < g->h; k++) mj->ly[k] = 2 - 2 * cos(PETSC_PI * (double)k / (double)g->h);
  if (mj->op->blur) bo_blur_dct_eigs(mj->op->blur, mj->kx, mj->ky);
  /* FFTW_ESTIMATE: the plan (and so the rounding) does not depend on timings */
  mj->forward  = fftw_plan_r2r_2d((int)g->h, (int)g->w, mj->buf, mj->buf, FFTW_REDFT10, FFTW_REDFT10, FFTW_ESTIMATE);
  mj->backward = fftw_plan_r2r_2d((int)g->h, (int)g->w, mj->buf, mj->buf, FFTW_REDFT01, FFTW_REDFT01, FFTW_ESTIMATE);
  PetscCheck(mj->forward && mj->backward, PETSC_COMM_SELF, BO_ERR_RUNTIME, "fft: FFTW could not plan a %d x %d DCT; expected a plan", (int)g->h, (int)g->w);
  PetscFunctionReturn(0);
}

static PetscErrorCode majorant_apply_fft(majorant *mj, Vec r, Vec z)
{
  bo_grid    *g = mj->op->g;
  PetscMPIInt rank;

  PetscFunctionBeginUser;
  PetscCall(majorant_setup_fft(mj));
  PetscCall(grid_gather(g, r));
  PetscCallMPI(MPI_Comm_rank(g->comm, &rank));
  if (!rank) {
    double      *zz, scale = 1.0 / (4.0 * (double)g->h * (double)g->w);
    const double a = mj->op->a_max, c = mj->op->c_max;
    PetscCall(VecGetArray(g->zero, &zz));
    memcpy(mj->buf, zz, sizeof(double) * (size_t)(g->h * g->w));
    fftw_execute(mj->forward);
    for (PetscInt j = 0; j < g->h; j++)
      for (PetscInt i = 0; i < g->w; i++) {
        double m = a + c * (mj->lx[i] + mj->ly[j]);
        if (mj->op->blur) m += mj->kx[i] * mj->kx[i] * mj->ky[j] * mj->ky[j];
        mj->buf[j * g->w + i] *= scale / m;
      }
    fftw_execute(mj->backward);
    memcpy(zz, mj->buf, sizeof(double) * (size_t)(g->h * g->w));
    PetscCall(VecRestoreArray(g->zero, &zz));
  }
  PetscCall(grid_scatter(g, z));
  PetscFunctionReturn(0);
}

/* M5 = (c_K + max a) I + (max c) grad^T grad, assembled; one V-cycle per apply. */
static PetscErrorCode majorant_setup_mg(majorant *mj, const char *prefix)
{
  bo_imgop *op = mj->op;
  bo_grid  *g  = op->g;
  PC        pc;

  PetscFunctionBeginUser;
  if (!mj->M5) {
    char p5[256];
    PetscCall(DMCreateMatrix(g->da, &mj->M5));
    PetscCall(KSPCreate(g->comm, &mj->ksp5));
    snprintf(p5, sizeof p5, "%smajorant_", prefix ? prefix : "");
    PetscCall(KSPSetOptionsPrefix(mj->ksp5, p5));
    PetscCall(KSPSetType(mj->ksp5, KSPPREONLY));
    PetscCall(KSPGetPC(mj->ksp5, &pc));
    PetscCall(configure_mg(pc, g->da));
    PetscCall(KSPSetFromOptions(mj->ksp5));
  }
  if (mj->built == op->state) PetscFunctionReturn(0);
  {
    const double a = op->a_max + (op->blur ? op->k_norm2 : 0), c = op->c_max;
    for (PetscInt j = g->ys; j < g->ys + g->ym; j++)
      for (PetscInt i = g->xs; i < g->xs + g->xm; i++) {
        MatStencil  row = {.i = i, .j = j}, col[5];
        PetscScalar v[5], d = a;
        PetscInt    k = 0;
        if (i > 0) { col[k] = (MatStencil){.i = i - 1, .j = j}; v[k++] = -c; d += c; }
        if (i < g->w - 1) { col[k] = (MatStencil){.i = i + 1, .j = j}; v[k++] = -c; d += c; }
        if (j > 0) { col[k] = (MatStencil){.i = i, .j = j - 1}; v[k++] = -c; d += c; }
        if (j < g->h - 1) { col[k] = (MatStencil){.i = i, .j = j + 1}; v[k++] = -c; d += c; }
        col[k] = row;
        v[k++] = d;
        PetscCall(MatSetValuesStencil(mj->M5, 1, &row, k, col, v, INSERT_VALUES));
      }
    PetscCall(MatAssemblyBegin(mj->M5, MAT_FINAL_ASSEMBLY));
    PetscCall(MatAssemblyEnd(mj->M5, MAT_FINAL_ASSEMBLY));
  }
  PetscCall(KSPSetOperators(mj->ksp5, mj->M5, mj->M5));
  mj->built = op->state;
  PetscFunctionReturn(0);
}

static PetscErrorCode majorant_apply(PC pc, Vec r, Vec z)
{
  majorant *mj;

  PetscFunctionBeginUser;
  PetscCall(PCShellGetContext(pc, &mj));
  if (mj->type == BO_INNER_FFT) PetscCall(majorant_apply_fft(mj, r, z));
  else {
    const char *prefix;
    PetscCall(PCGetOptionsPrefix(pc, &prefix));
    PetscCall(majorant_setup_mg(mj, prefix));
    PetscCall(KSPSolve(mj->ksp5, r, z));
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode majorant_destroy(PC pc)
{
  majorant *mj;

  PetscFunctionBeginUser;
  PetscCall(PCShellGetContext(pc, &mj));
  if (mj->forward) fftw_destroy_plan(mj->forward);
  if (mj->backward) fftw_destroy_plan(mj->backward);
  if (mj->buf) PetscCall(PetscFree5(mj->buf, mj->lx, mj->ly, mj->kx, mj->ky));
  PetscCall(MatDestroy(&mj->M5));
  PetscCall(KSPDestroy(&mj->ksp5));
  PetscCall(PetscFree(mj));
  PetscFunctionReturn(0);
}

static PetscErrorCode configure_majorant(PC pc, bo_imgop *op, bo_inner_type type)
{
  majorant *mj;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&mj));
  mj->op    = op;
  mj->type  = type;
  mj->built = -1;
  PetscCall(PCSetType(pc, PCSHELL));
  PetscCall(PCShellSetContext(pc, mj));
  PetscCall(PCShellSetApply(pc, majorant_apply));
  PetscCall(PCShellSetDestroy(pc, majorant_destroy));
  PetscCall(PCShellSetName(pc, type == BO_INNER_FFT ? "majorant [K^T K] + max(a) I + max(c) grad^T grad, DCT (FFTW r2r) on rank 0" : "one V-cycle on the 5-point majorant (c_K + max a) I + max(c) grad^T grad"));
  PetscFunctionReturn(0);
}

/* ------------------------------------------------------------------------------------ inner */

struct bo_inner_s {
  bo_imgop        *op;
  bo_inner_opts    o;
  KSP              ksp;
  PetscObjectState set_state;
};

PetscBool bo_inner_wants_shell(bo_inner_type type, const bo_blur *blur) { return type == BO_INNER_FFT || blur ? PETSC_TRUE : PETSC_FALSE; }

static PetscErrorCode fixed_sweeps(KSP ksp, PetscInt sweeps)
{
  PetscFunctionBeginUser;
  PetscCall(KSPSetType(ksp, KSPRICHARDSON));
  PetscCall(KSPSetTolerances(ksp, 0, 0, PETSC_DEFAULT, sweeps));
  PetscCall(KSPSetNormType(ksp, KSP_NORM_NONE));
  PetscCall(KSPSetConvergenceTest(ksp, KSPConvergedSkip, NULL, NULL));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_inner_create(bo_imgop *op, const bo_inner_opts *o, const char *prefix, bo_inner *inner)
{
  bo_inner  in;
  PC        pc;
  MPI_Comm  comm = op->g->comm;
  PetscBool assembled = op->shell ? PETSC_FALSE : PETSC_TRUE;

  PetscFunctionBeginUser;
  PetscCheck(o->sweeps >= 1, comm, BO_ERR_INPUT, "inner solver: %d sweeps; expected sweeps >= 1", (int)o->sweeps);
  PetscCheck(assembled || (o->type != BO_INNER_RBGS && o->type != BO_INNER_JACOBI && o->type != BO_INNER_SSOR), comm, BO_ERR_INPUT, "inner solver %s: needs an assembled 5-point operator, and the deblurring operator K^T K is matrix-free; expected fft, mg, cg or exact with a blur", bo_inner_names[o->type]);
  PetscCheck(!(o->type == BO_INNER_FFT && op->blur && op->blur->boundary != BO_BOUNDARY_REFLECT), comm, BO_ERR_INPUT, "inner solver fft: the DCT diagonalises the blur only with boundary reflect; expected boundary reflect, or inner mg with replicate");
  PetscCall(bo_rbgs_register());
  PetscCall(PetscNew(&in));
  in->op        = op;
  in->o         = *o;
  in->set_state = -1;
  PetscCall(KSPCreate(comm, &in->ksp));
  if (prefix) PetscCall(KSPSetOptionsPrefix(in->ksp, prefix));
  PetscCall(KSPSetInitialGuessNonzero(in->ksp, PETSC_TRUE)); /* the warm start is part of the method */
  PetscCall(KSPGetPC(in->ksp, &pc));
  PetscCall(PetscObjectCompose((PetscObject)pc, "boundopt_dmda", (PetscObject)op->g->da));
  switch (o->type) {
  case BO_INNER_EXACT:
    PetscCall(KSPSetType(in->ksp, KSPCG));
    PetscCall(KSPSetTolerances(in->ksp, 1e-12, 1e-300, PETSC_DEFAULT, 10000));
    if (assembled) {
#if defined(PETSC_HAVE_HYPRE)
      PetscCall(PCSetType(pc, PCHYPRE)); /* BoomerAMG; GAMG's Chebyshev smoother made CG see an indefinite PC on the AT v-system */
#else
      PetscCall(PCSetType(pc, PCGAMG));
#endif
    }
    else PetscCall(configure_majorant(pc, op, op->blur && op->blur->boundary != BO_BOUNDARY_REFLECT ? BO_INNER_MG : BO_INNER_FFT));
    break;
  case BO_INNER_CG:
    PetscCall(KSPSetType(in->ksp, KSPCG));
    PetscCall(KSPSetTolerances(in->ksp, 1e-1, 1e-300, PETSC_DEFAULT, 10));
    PetscCall(KSPConvergedDefaultSetUIRNorm(in->ksp)); /* relative to the warm start's residual */
    PetscCall(PCSetType(pc, assembled ? PCJACOBI : PCNONE));
    break;
  case BO_INNER_RBGS:
    PetscCall(fixed_sweeps(in->ksp, o->sweeps));
    PetscCall(PCSetType(pc, PCRBGS));
    break;
  case BO_INNER_JACOBI:
    PetscCall(fixed_sweeps(in->ksp, o->sweeps));
    PetscCall(KSPRichardsonSetScale(in->ksp, 0.5)); /* M = 2D */
    PetscCall(PCSetType(pc, PCJACOBI));
    break;
  case BO_INNER_SSOR:
    PetscCall(fixed_sweeps(in->ksp, o->sweeps));
    PetscCall(PCSetType(pc, PCSOR));
    PetscCall(PCSORSetSymmetric(pc, SOR_LOCAL_SYMMETRIC_SWEEP));
    PetscCall(PCSORSetOmega(pc, o->omega));
    break;
  case BO_INNER_MG:
    PetscCall(fixed_sweeps(in->ksp, o->sweeps));
    if (assembled) PetscCall(configure_mg(pc, op->g->da));
    else PetscCall(configure_majorant(pc, op, BO_INNER_MG));
    break;
  case BO_INNER_FFT:
    PetscCall(fixed_sweeps(in->ksp, o->sweeps));
    PetscCall(configure_majorant(pc, op, BO_INNER_FFT));
    break;
  default: SETERRQ(comm, BO_ERR_INPUT, "inner solver: type %d; expected one of exact, cg, rbgs, jacobi, mg, ssor, fft", (int)o->type);
  }
  *inner = in;
  PetscFunctionReturn(0);
}

KSP bo_inner_ksp(bo_inner in) { return in->ksp; }

PetscErrorCode bo_inner_solve(bo_inner in, Vec b, Vec x, PetscInt *its)
{
  KSPConvergedReason reason;

  PetscFunctionBeginUser;
  if (in->set_state != in->op->state) { /* new coefficients: the preconditioner is set up again */
    PetscCall(KSPSetOperators(in->ksp, in->op->T, in->op->T));
    in->set_state = in->op->state;
  }
  PetscCall(KSPSolve(in->ksp, b, x));
  PetscCall(KSPGetIterationNumber(in->ksp, its));
  PetscCall(KSPGetConvergedReason(in->ksp, &reason));
  PetscCheck(reason >= 0 || reason == KSP_DIVERGED_ITS, in->op->g->comm, BO_ERR_RUNTIME, "inner solver %s: KSP stopped with %s; expected a converging solve (see -ksp_converged_reason)", bo_inner_names[in->o.type], KSPConvergedReasons[reason]);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_inner_rank_invariant(bo_inner in, PetscBool *invariant)
{
  PC        pc;
  PetscBool rich, rbgs, shell;

  PetscFunctionBeginUser;
  PetscCall(KSPGetPC(in->ksp, &pc));
  PetscCall(PetscObjectTypeCompare((PetscObject)in->ksp, KSPRICHARDSON, &rich));
  PetscCall(PetscObjectTypeCompare((PetscObject)pc, PCRBGS, &rbgs));
  PetscCall(PetscObjectTypeCompare((PetscObject)pc, PCSHELL, &shell));
  /* rbgs: partition-free sweeps; fft: matrix-free products and the DCT on rank 0 */
  *invariant = rich && (rbgs || (shell && in->o.type == BO_INNER_FFT && in->op->shell)) ? PETSC_TRUE : PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode bo_inner_destroy(bo_inner *in)
{
  PetscFunctionBeginUser;
  if (!*in) PetscFunctionReturn(0);
  PetscCall(KSPDestroy(&(*in)->ksp));
  PetscCall(PetscFree(*in));
  PetscFunctionReturn(0);
}
