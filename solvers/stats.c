/* stats.c - rank-count independent column means and row statistics (see stats.h). */
#include "boundopt/stats.h"
#include "boundopt/reduce.h"
#include "boundopt/error.h"
#include <math.h>

PetscErrorCode bo_stats_column_mean(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, double *mean)
{
  PetscFunctionBeginUser;
  PetscCall(bo_stats_column_mean_masked(comm, rows, d, x, NULL, mean));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_stats_column_mean_masked(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const unsigned char *mask, double *mean)
{
  double     *partial, maxabs = 0, bound;
  int64_t     count = 0, total;
  bo_exactsum sum;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(d, &partial));
  for (int64_t i = 0; i < (rows->hi - rows->lo) * d; i++) maxabs = PetscMax(maxabs, fabs((double)x[i]));
  PetscCallMPI(MPI_Allreduce(&maxabs, &bound, 1, MPI_DOUBLE, MPI_MAX, comm));
  PetscCall(bo_exactsum_create(d, bound * (double)rows->n, &sum));
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    for (int64_t j = 0; j < d; j++) partial[j] = 0;
    for (int64_t i = lo; i < hi; i++) {
      const float *row = x + (i - rows->lo) * d;
      if (mask && !mask[i - rows->lo]) continue;
      for (int64_t j = 0; j < d; j++) partial[j] += row[j];
      count++;
    }
    PetscCall(bo_exactsum_add(sum, partial));
  }
  PetscCall(bo_exactsum_allreduce(comm, sum, mean));
  PetscCallMPI(MPI_Allreduce(&count, &total, 1, MPI_INT64_T, MPI_SUM, comm));
  PetscCheck(total > 0 || !mask || !rows->n, comm, BO_ERR_INPUT, "mean: no row selected by the class list; expected at least one row of those classes");
  for (int64_t j = 0; j < d; j++) mean[j] /= (double)total;
  PetscCall(bo_exactsum_destroy(&sum));
  PetscCall(PetscFree(partial));
  PetscFunctionReturn(0);
}

static double row_norm(const float *row, int64_t d, int64_t *nonfinite)
{
  double s = 0;
  for (int64_t j = 0; j < d; j++) {
    if (!isfinite(row[j])) (*nonfinite)++;
    s += (double)row[j] * row[j];
  }
  return sqrt(s);
}

PetscErrorCode bo_stats_rows(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, bo_row_stats *s)
{
  double      mm[2] = {INFINITY, INFINITY}, tile_sum, bound, total; /* {min, -max} */
  int64_t     counts[3] = {0, 0, INT64_MAX}, sums[2];                /* bad values, bad rows, first bad row */
  bo_exactsum sum;

  PetscFunctionBeginUser;
  /* Pass 1: min/max norms and the bad entries; the max bounds the exact sum of norms. */
  for (int64_t i = rows->lo; i < rows->hi; i++) {
    int64_t bad = 0;
    double  nrm = row_norm(x + (i - rows->lo) * d, d, &bad);
    counts[0] += bad;
    if (bad) {
      counts[1]++;
      counts[2] = PetscMin(counts[2], i);
      continue;
    }
    mm[0] = PetscMin(mm[0], nrm);
    mm[1] = PetscMin(mm[1], -nrm);
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, mm, 2, MPI_DOUBLE, MPI_MIN, comm));
  PetscCallMPI(MPI_Allreduce(counts, sums, 2, MPI_INT64_T, MPI_SUM, comm));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &counts[2], 1, MPI_INT64_T, MPI_MIN, comm));
  s->nonfinite_values    = sums[0];
  s->nonfinite_rows      = sums[1];
  s->first_nonfinite_row = counts[2] == INT64_MAX ? -1 : counts[2];
  int64_t finite_rows    = rows->n - s->nonfinite_rows;
  s->min_norm            = finite_rows ? mm[0] : NAN;
  s->max_norm            = finite_rows ? -mm[1] : NAN;
  /* Pass 2: the mean norm, summed per tile then exactly. */
  bound = finite_rows ? s->max_norm * (double)rows->n : 0;
  PetscCall(bo_exactsum_create(1, bound, &sum));
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    tile_sum = 0;
    for (int64_t i = lo; i < hi; i++) {
      int64_t bad = 0;
      double  nrm = row_norm(x + (i - rows->lo) * d, d, &bad);
      if (!bad) tile_sum += nrm;
    }
    PetscCall(bo_exactsum_add(sum, &tile_sum));
  }
  PetscCall(bo_exactsum_allreduce(comm, sum, &total));
  PetscCall(bo_exactsum_destroy(&sum));
  s->mean_norm = finite_rows ? total / (double)finite_rows : NAN;
  PetscFunctionReturn(0);
}

PetscErrorCode bo_stats_class_counts(MPI_Comm comm, int64_t local, const int32_t *labels, int64_t nclasses, int64_t *counts)
{
  PetscFunctionBeginUser;
  for (int64_t c = 0; c < nclasses; c++) counts[c] = 0;
  for (int64_t i = 0; i < local; i++)
    if (labels[i] >= 0 && labels[i] < nclasses) counts[labels[i]]++;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, counts, (int)nclasses, MPI_INT64_T, MPI_SUM, comm));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_stats_sum(MPI_Comm comm, const bo_rows *rows, const double *v, double *total)
{
  double      vmax = 0;
  bo_exactsum sum;

  PetscFunctionBeginUser;
  for (int64_t i = 0; i < rows->hi - rows->lo; i++) vmax = PetscMax(vmax, fabs(v[i]));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &vmax, 1, MPI_DOUBLE, MPI_MAX, comm));
  PetscCall(bo_exactsum_create(1, vmax * (double)rows->n, &sum));
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    double  part = 0;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) part += v[i - rows->lo];
    PetscCall(bo_exactsum_add(sum, &part));
  }
  PetscCall(bo_exactsum_allreduce(comm, sum, total));
  PetscCall(bo_exactsum_destroy(&sum));
  PetscFunctionReturn(0);
}
