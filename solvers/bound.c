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

/* -A + lambda B into z, then the row softmax.  ent[i] = sum_c y log y of the new row, from the
 * log-sum-exp (log y_c = z_c - hi - log s): one log per row instead of one per entry. */
static void bound_step(int64_t local, int64_t k, const double *a, const double *b, double lambda, double *y, double *ent)
{
  for (int64_t i = 0; i < local; i++) {
    double *yi = y + i * k, hi = -INFINITY, s = 0, yz = 0;
    for (int64_t c = 0; c < k; c++) {
      yi[c] = -a[i * k + c] + lambda * b[i * k + c];
      hi    = PetscMax(hi, yi[c]);
    }
    for (int64_t c = 0; c < k; c++) {
      double z = yi[c] - hi;
      s += (yi[c] = z < -700 ? 0.0 : exp(z)); /* below e^-700 the weight is nothing, and the
                                                  underflowing exp takes a slow path */
      yz += yi[c] * z;
    }
    double inv = 1.0 / s, logs = log(s);
    for (int64_t c = 0; c < k; c++) yi[c] *= inv;
    ent[i] = yz * inv - logs;
  }
}

/* sum_c y log max(y, 1e-20) of each row (the iterate handed in, before any step). */
static void row_entropies(int64_t local, int64_t k, const double *y, double *ent)
{
  for (int64_t i = 0; i < local; i++) {
    double e = 0;
    for (int64_t c = 0; c < k; c++) e += y[i * k + c] * log(PetscMax(y[i * k + c], 1e-20));
    ent[i] = e;
  }
}

/* This rank's part of the energy from per-row entropies, sum ent + y.a - (lambda/2) y.b, per tile
 * into the exact sum (reduced by the caller). */
static PetscErrorCode energy_part(const bo_rows *rows, int64_t k, const double *a, const double *y, const double *b, const double *ent, double lambda, bo_exactsum sum)
{
  PetscFunctionBeginUser;
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    double  part = 0;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    for (int64_t i = lo - rows->lo; i < hi - rows->lo; i++) {
      double ya = 0, yb = 0;
      for (int64_t c = 0; c < k; c++) {
        ya += y[i * k + c] * a[i * k + c];
        yb += y[i * k + c] * b[i * k + c];
      }
      part += ent[i] + ya - 0.5 * lambda * yb;
    }
    PetscCall(bo_exactsum_add(sum, &part));
  }
  PetscFunctionReturn(0);
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

PetscErrorCode bo_bound_work_create(bo_graph *w, int64_t k, PetscBool share_node, bo_bound_work *ws)
{
  int64_t local;

  PetscFunctionBeginUser;
  PetscCheck(w, PETSC_COMM_SELF, BO_ERR_RUNTIME, "bound: no affinity graph; expected one (internal error)");
  PetscCall(PetscMemzero(ws, sizeof *ws));
  local     = bo_rows_local(&w->rows);
  ws->graph = w;
  ws->k     = k;
  ws->local = local;
  for (int v = 0; v < 2; v++) PetscCall(bo_graph_shared_create(w, k, share_node, &ws->shared[v]));
  PetscCall(bo_graph_max_row_sum(w, &ws->wmax));
  PetscCall(PetscMalloc3(PetscMax(1, local * k), &ws->b, PetscMax(1, local), &ws->ent[0], PetscMax(1, local), &ws->ent[1]));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_bound_work_destroy(bo_bound_work *ws)
{
  PetscFunctionBeginUser;
  if (ws->b) PetscCall(PetscFree3(ws->b, ws->ent[0], ws->ent[1]));
  if (ws->graph)
    for (int v = 0; v < 2; v++) PetscCall(bo_graph_shared_destroy(&ws->shared[v]));
  PetscCall(PetscMemzero(ws, sizeof *ws));
  PetscFunctionReturn(0);
}

/* Two iterates, each in a window shared with the node's other ranks (ws->shared[0], [1]), so that
 * one collective per iteration is enough: the step writes the next iterate into the other buffer
 * while a slower rank may still read the current one in its W*Y, and the energy's exact reduction
 * comes after the step (it waits for the slowest rank's product and step together, where it used to
 * separate them).  The next iteration's exchange (a node barrier) makes the new rows visible, and a
 * buffer is written again only after the reduction that follows every rank's read of it.  When the
 * reduction says stop, that last step is dropped: the result is the current iterate, as before
 * (the same operations on the same values: bit-identical results). */
PetscErrorCode bo_bound_run_work(const bo_rows *rows, int64_t k, const double *a, bo_bound_work *ws, const bo_bound_opts *opts, double *y, double *energy, int *iterations)
{
  int64_t   local = bo_rows_local(rows);
  bo_graph *w     = ws->graph;
  double   *b = ws->b, amax = 0, prev = 0, bound;
  int       cur = 0;
  MPI_Comm  comm;

  PetscFunctionBeginUser;
  PetscCheck(w && ws->k == k && ws->local == local && w->rows.lo == rows->lo && w->rows.hi == rows->hi, PETSC_COMM_SELF, BO_ERR_RUNTIME,
             "bound: workspace for %lld x %lld, called with %lld x %lld; expected the graph and K it was created for (internal error)", (long long)ws->local, (long long)ws->k, (long long)local, (long long)k);
  comm = w->comm;
  for (int64_t i = 0; i < local * k; i++) amax = PetscMax(amax, fabs(a[i]));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &amax, 1, MPI_DOUBLE, MPI_MAX, comm));
  /* |y log y| <= 1/e per entry, |y.a| <= amax, |y.b| <= wmax per row */
  bound = (double)rows->n * ((double)k / 2.718281828459045 + amax + 0.5 * fabs(opts->lambda) * ws->wmax) + 1.0;
  PetscCall(PetscArraycpy(ws->shared[cur].rows, y, local * k));
  row_entropies(local, k, ws->shared[cur].rows, ws->ent[cur]);
  *iterations = 0;
  for (int it = 0;; it++) {
    const int   nxt = 1 - cur;
    bo_exactsum sum;
    PetscCall(bo_graph_shared_exchange(&ws->shared[cur]));
    bo_graph_shared_spmm(&ws->shared[cur], b);
    PetscCall(bo_exactsum_create(1, bound, &sum));
    PetscCall(energy_part(rows, k, a, ws->shared[cur].rows, b, ws->ent[cur], opts->lambda, sum));
    if (it < opts->max_it) bound_step(local, k, a, b, opts->lambda, ws->shared[nxt].rows, ws->ent[nxt]); /* dropped if we stop */
    PetscCall(bo_exactsum_allreduce(comm, sum, energy));
    PetscCall(bo_exactsum_destroy(&sum));
    /* it counts steps taken; the reference computes its E_i after step i + 1 and tests i > 1, so the
     * first comparison is E(Y_3) against E(Y_2): at least three steps, as there. */
    if (it > 2 && fabs(*energy - prev) <= opts->tol * fabs(prev)) break;
    if (it >= opts->max_it) break;
    prev = *energy;
    cur  = nxt;
    (*iterations)++;
  }
  PetscCall(PetscArraycpy(y, ws->shared[cur].rows, local * k));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_bound_run(const bo_rows *rows, int64_t k, const double *a, bo_graph *w, const bo_bound_opts *opts, double *y, double *energy, int *iterations)
{
  bo_bound_work ws;

  PetscFunctionBeginUser;
  PetscCall(bo_bound_work_create(w, k, PETSC_TRUE, &ws));
  PetscCall(bo_bound_run_work(rows, k, a, &ws, opts, y, energy, iterations));
  PetscCall(bo_bound_work_destroy(&ws));
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
