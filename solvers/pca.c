/* pca.c - covariance by tiles, exact reduction, symmetric eigensolver (see pca.h). */
#include "boundopt/pca.h"
#include "boundopt/reduce.h"
#include <cblas.h>
#include <math.h>

/* Centred copy of tile rows [lo, hi) as doubles (b x d). */
static void centred_tile(const float *x, int64_t rows_lo, int64_t lo, int64_t hi, int64_t d, const double *centre, double *out)
{
  for (int64_t i = lo; i < hi; i++) {
    const float *row = x + (i - rows_lo) * d;
    double      *o   = out + (i - lo) * d;
    for (int64_t j = 0; j < d; j++) o[j] = (double)row[j] - (centre ? centre[j] : 0.0);
  }
}

/* Rows left out by the mask become zero rows: they add nothing to the Gram matrix. */
static void mask_tile(const unsigned char *mask, int64_t rows_lo, int64_t lo, int64_t hi, int64_t d, double *out)
{
  if (!mask) return;
  for (int64_t i = lo; i < hi; i++)
    if (!mask[i - rows_lo])
      for (int64_t j = 0; j < d; j++) out[(i - lo) * d + j] = 0;
}

static double max_abs_centred(int64_t local, int64_t d, const float *x, const double *centre)
{
  double m = 0;
  for (int64_t i = 0; i < local; i++)
    for (int64_t j = 0; j < d; j++) m = PetscMax(m, fabs((double)x[i * d + j] - centre[j]));
  return m;
}

/* Upper triangle of the d x d covariance sum, packed row by row (d(d+1)/2 values). */
static PetscErrorCode covariance(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const unsigned char *mask, const double *centre, double *cov)
{
  int64_t     npacked = d * (d + 1) / 2;
  double     *tile, *gram, *packed, maxabs, bound;
  bo_exactsum sum;

  PetscFunctionBeginUser;
  maxabs = max_abs_centred(rows->hi - rows->lo, d, x, centre);
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &maxabs, 1, MPI_DOUBLE, MPI_MAX, comm));
  bound = maxabs * maxabs * (double)rows->n; /* >= sum over all rows of |xc_ij xc_ik| */
  PetscCall(PetscMalloc3(BO_TILE_ROWS * d, &tile, d * d, &gram, npacked, &packed));
  PetscCall(bo_exactsum_create(npacked, bound, &sum));
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    centred_tile(x, rows->lo, lo, hi, d, centre, tile);
    mask_tile(mask, rows->lo, lo, hi, d, tile);
    /* gram (row-major upper) = tile^T tile: one BLAS call on one whole tile. */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)(hi - lo), 1.0, tile, (int)d, 0.0, gram, (int)d);
    for (int64_t i = 0, k = 0; i < d; i++)
      for (int64_t j = i; j < d; j++) packed[k++] = gram[i * d + j];
    PetscCall(bo_exactsum_add(sum, packed));
  }
  PetscCall(bo_exactsum_allreduce(comm, sum, packed));
  PetscCall(bo_exactsum_destroy(&sum));
  int64_t count = 0, total;
  for (int64_t i = 0; i < rows->hi - rows->lo; i++) count += !mask || mask[i];
  PetscCallMPI(MPI_Allreduce(&count, &total, 1, MPI_INT64_T, MPI_SUM, comm));
  double scale = total > 1 ? 1.0 / (double)(total - 1) : 1.0;
  for (int64_t i = 0, k = 0; i < d; i++)
    for (int64_t j = i; j < d; j++, k++) cov[i * d + j] = cov[j * d + i] = packed[k] * scale;
  PetscCall(PetscFree3(tile, gram, packed));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_pca_fit(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const double *mean, int64_t ncomp, const bo_eigen_opts *eig, bo_pca *pca)
{
  PetscFunctionBeginUser;
  PetscCall(bo_pca_fit_masked(comm, rows, d, x, NULL, mean, ncomp, eig, pca));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_pca_fit_masked(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const unsigned char *mask, const double *mean, int64_t ncomp, const bo_eigen_opts *eig, bo_pca *pca)
{
  double *cov;

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(pca, sizeof *pca));
  pca->d     = d;
  pca->ncomp = ncomp;
  PetscCall(PetscMalloc3(d, &pca->mean, ncomp * d, &pca->components, ncomp, &pca->variance));
  PetscCall(PetscArraycpy(pca->mean, mean, d));
  PetscCall(PetscMalloc1(d * d, &cov));
  PetscCall(covariance(comm, rows, d, x, mask, mean, cov));
  pca->total_variance = 0;
  for (int64_t j = 0; j < d; j++) pca->total_variance += cov[j * d + j];
  PetscCall(bo_eigen_sym(comm, d, cov, ncomp, eig, pca->variance, pca->components));
  pca->rank_invariant = !eig || eig->method == BO_EIGEN_LAPACK ? PETSC_TRUE : PETSC_FALSE;
  PetscCall(PetscFree(cov));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_pca_project(const bo_rows *rows, int64_t d, const float *x, const double *centre, const bo_pca *pca, float *y)
{
  double *tile, *out;
  int64_t k = pca->ncomp;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc2(BO_TILE_ROWS * d, &tile, BO_TILE_ROWS * k, &out));
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    centred_tile(x, rows->lo, lo, hi, d, centre, tile);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(hi - lo), (int)k, (int)d, 1.0, tile, (int)d, pca->components, (int)d, 0.0, out, (int)k);
    for (int64_t i = 0; i < (hi - lo) * k; i++) y[(lo - rows->lo) * k + i] = (float)out[i];
  }
  PetscCall(PetscFree2(tile, out));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_pca_destroy(bo_pca *pca)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree3(pca->mean, pca->components, pca->variance));
  PetscFunctionReturn(0);
}

void bo_rows_subtract(int64_t local, int64_t d, const double *centre, float *x)
{
  for (int64_t i = 0; i < local; i++)
    for (int64_t j = 0; j < d; j++) x[i * d + j] = (float)((double)x[i * d + j] - centre[j]);
}

void bo_rows_l2_normalize(int64_t local, int64_t d, float *x)
{
  for (int64_t i = 0; i < local; i++) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
    if (s == 0) continue;
    double inv = 1.0 / sqrt(s);
    for (int64_t j = 0; j < d; j++) x[i * d + j] = (float)(x[i * d + j] * inv);
  }
}
