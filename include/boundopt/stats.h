/* stats.h - column means and row statistics of a row-distributed matrix.
 *
 * Contract
 *   x holds this rank's rows [rows->lo, rows->hi) of an n x d float matrix (tiles.h).  Every
 *   function is collective on comm and returns the same values on every rank, independent of the
 *   number of ranks: sums are per tile, then exact (reduce.h).  Non-finite rows are left out of the
 *   norm statistics and counted.  bo_stats_column_mean needs finite x (tasks read with check_finite).
 */
#ifndef BOUNDOPT_STATS_H
#define BOUNDOPT_STATS_H
#include <petscsys.h>
#include "boundopt/tiles.h"

typedef struct {
  double  min_norm, max_norm, mean_norm; /* Euclidean row norms over the finite rows */
  int64_t nonfinite_values;              /* NaN or Inf entries */
  int64_t nonfinite_rows;
  int64_t first_nonfinite_row;           /* -1 if none */
} bo_row_stats;

PetscErrorCode bo_stats_column_mean(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, double *mean);
/* The mean of the rows whose mask is non-zero (mask: one byte per local row; NULL: all rows). */
PetscErrorCode bo_stats_column_mean_masked(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const unsigned char *mask, double *mean);
PetscErrorCode bo_stats_rows(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, bo_row_stats *s);
/* Sum over all rows of v (one value per local row), per tile then exactly. */
PetscErrorCode bo_stats_sum(MPI_Comm comm, const bo_rows *rows, const double *v, double *total);
/* counts[c] = rows with label c, c < nclasses (labels are this rank's rows). */
PetscErrorCode bo_stats_class_counts(MPI_Comm comm, int64_t local, const int32_t *labels, int64_t nclasses, int64_t *counts);
#endif
