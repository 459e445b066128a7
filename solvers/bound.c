/* bound.c - bound iterations Y <- rowsoftmax(-A + lambda W Y) and their energy (see bound.h). */
#include "boundopt/bound.h"
#include "boundopt/error.h"
#include "boundopt/reduce.h"
#include <math.h>

void bo_bound_softmax(int64_t local, int64_t k, const double *a, double *y)
{
  for (int64_t i = 0; i < local; i++) {
    const double *ai = a + i * k;
    double       *yi = y + i * k, lo = ai[0], s = 0;
    for (int64_t c = 1; c < k; c++) lo = PetscMin(lo, ai[c]);
    for (int64_t c = 0; c < k; c++) s += (yi[c] = exp(lo - ai[c]));
    for (int64_t c = 0; c < k; c++) yi[c] /= s;
  }
}

/* -A + lambda B into z, then the row softmax. */
static void bound_step(int64_t local, int64_t k, const double *a, const double *b, double lambda, double *y)
{
  for (int64_t i = 0; i < local; i++) {
    double *yi = y + i * k, hi = -INFINITY, s = 0;
    for (int64_t c = 0; c < k; c++) {
      yi[c] = -a[i * k + c] + lambda * b[i * k + c];
      hi    = PetscMax(hi, yi[c]);
    }
    for (int64_t c = 0; c < k; c++) s += (yi[c] = exp(yi[c] - hi));
    for (int64_t c = 0; c < k; c++) yi[c] /= s;
  }
}

PetscErrorCode bo_bound_energy(MPI_Comm comm, const bo_rows *rows, int64_t k, const double *a, const double *y, const double *b, double lambda, double amax, double wmax, double *energy)
{
  bo_exactsum sum;
  /* |y log y| <= 1/e per entry, |y.a| <= amax, |y.b| <= wmax per row */
  double bound = (double)rows->n * ((double)k / 2.718281828459045 + amax + 0.5 * fabs(lambda) * wmax) + 1.0;

  PetscFunctionBeginUser;
  PetscCall(bo_exactsum_create(1, bound, &sum));
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    double  part = 0;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    for (int64_t i = lo - rows->lo; i < hi - rows->lo; i++)
      for (int64_t c = 0; c < k; c++) {
        double v = y[i * k + c];
        part += v * log(PetscMax(v, 1e-20)) + v * a[i * k + c];
        if (b) part -= 0.5 * lambda * v * b[i * k + c];
      }
    PetscCall(bo_exactsum_add(sum, &part));
  }
  PetscCall(bo_exactsum_allreduce(comm, sum, energy));
  PetscCall(bo_exactsum_destroy(&sum));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_bound_run(const bo_rows *rows, int64_t k, const double *a, bo_graph *w, const bo_bound_opts *opts, double *y, double *energy, int *iterations)
{
  int64_t local = bo_rows_local(rows);
  double *b, *ghosts, amax = 0, wmax = 0, prev = 0;
  MPI_Comm comm = w ? w->comm : MPI_COMM_SELF;

  PetscFunctionBeginUser;
  PetscCheck(w, PETSC_COMM_SELF, BO_ERR_RUNTIME, "bound: no affinity graph; expected one (internal error)");
  for (int64_t i = 0; i < local * k; i++) amax = PetscMax(amax, fabs(a[i]));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &amax, 1, MPI_DOUBLE, MPI_MAX, comm));
  PetscCall(bo_graph_max_row_sum(w, &wmax));
  PetscCall(PetscMalloc2(PetscMax(1, local * k), &b, PetscMax(1, w->nghost * k), &ghosts));
  *iterations = 0;
  for (int it = 0;; it++) {
    PetscCall(bo_graph_gather_ghosts(w, k, y, ghosts));
    bo_graph_spmm(w, k, y, ghosts, b);
    PetscCall(bo_bound_energy(comm, rows, k, a, y, b, opts->lambda, amax, wmax, energy));
    if (it > 1 && fabs(*energy - prev) <= opts->tol * fabs(prev)) break;
    if (it >= opts->max_it) break;
    prev = *energy;
    bound_step(local, k, a, b, opts->lambda, y);
    (*iterations)++;
  }
  PetscCall(PetscFree2(b, ghosts));
  PetscFunctionReturn(0);
}

void bo_bound_labels(int64_t local, int64_t k, const double *y, int32_t *labels)
{
  for (int64_t i = 0; i < local; i++) {
    int32_t best = 0;
    for (int64_t c = 1; c < k; c++)
      if (y[i * k + c] > y[i * k + best]) best = (int32_t)c;
    labels[i] = best;
  }
}
