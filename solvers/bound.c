/* bound.c - bound iterations Y <- rowsoftmax(-A + lambda W Y) and their energy (see bound.h). */
#include "boundopt/bound.h"
#include "boundopt/error.h"
#include "boundopt/reduce.h"
#include <math.h>
#include <stdatomic.h>

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

/* Lock-free atomics are address-free (C17 7.17.5): the counters work across the node's processes. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "bound: tile counters need lock-free 64-bit atomics");

#define COUNTER_LINE  64                /* each counter on its own cache line */
#define COUNTER_BYTES (4 * COUNTER_LINE) /* W*Y and step counters, two iteration parities each */

/* What one node rank wrote in the workspace's window is visible to the others (no window: nothing
 * shared, nothing to wait for). */
static PetscErrorCode node_barrier(bo_bound_work *ws)
{
  PetscFunctionBeginUser;
  if (ws->win != MPI_WIN_NULL) PetscCall(bo_node_window_fence(ws->win, ws->shared[0].node));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_bound_work_create(bo_graph *w, int64_t k, int share, bo_bound_work *ws)
{
  int64_t local;
  size_t  bytes;
  char   *mine;

  PetscFunctionBeginUser;
  PetscCheck(w, PETSC_COMM_SELF, BO_ERR_RUNTIME, "bound: no affinity graph; expected one (internal error)");
  PetscCall(PetscMemzero(ws, sizeof *ws));
  ws->win   = MPI_WIN_NULL;
  local     = bo_rows_local(&w->rows);
  ws->graph = w;
  ws->k     = k;
  ws->local = local;
  for (int v = 0; v < 2; v++) PetscCall(bo_graph_shared_create(w, k, share, &ws->shared[v]));
  PetscCall(bo_graph_node_create(&ws->shared[0], &ws->node));
  PetscCall(bo_graph_max_row_sum(w, &ws->wmax));
  /* this rank's part: counters, entropies of both iterates, A, B; whole cache lines */
  bytes = (COUNTER_BYTES + sizeof(double) * (size_t)(2 * local + 2 * local * k) + 63) & ~(size_t)63;
  if (ws->node.size > 1) {
    PetscCall(bo_node_window_allocate(ws->shared[0].node, bytes, 1, &mine, &ws->win));
  } else {
    PetscCall(PetscMalloc(bytes, &ws->own));
    mine = ws->own;
  }
  PetscCall(PetscMemzero(mine, bytes));
  PetscCall(PetscCalloc1(ws->node.size, &ws->peer));
  for (int q = 0; q < ws->node.size; q++) {
    char    *base = mine;
    int64_t  ql   = ws->node.peer[q].local;
    MPI_Aint qbytes;
    int      disp;
    if (ws->win != MPI_WIN_NULL) PetscCallMPI(MPI_Win_shared_query(ws->win, q, &qbytes, &disp, &base));
    for (int v = 0; v < 4; v++) ws->peer[q].next[v / 2][v % 2] = (_Atomic int64_t *)(base + v * COUNTER_LINE);
    ws->peer[q].ent[0] = (double *)(base + COUNTER_BYTES);
    ws->peer[q].ent[1] = ws->peer[q].ent[0] + ql;
    ws->peer[q].a      = ws->peer[q].ent[1] + ql;
    ws->peer[q].b      = ws->peer[q].a + ql * k;
  }
  PetscCall(node_barrier(ws)); /* the zeroed counters, before anyone claims */
  PetscFunctionReturn(0);
}

PetscErrorCode bo_bound_work_destroy(bo_bound_work *ws)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree(ws->peer));
  if (ws->graph) PetscCall(bo_node_window_free(&ws->win)); /* a zeroed, never created workspace has win 0, not MPI_WIN_NULL */
  PetscCall(PetscFree(ws->own));
  if (ws->graph) {
    PetscCall(bo_graph_node_destroy(&ws->node));
    for (int v = 0; v < 2; v++) PetscCall(bo_graph_shared_destroy(&ws->shared[v]));
  }
  PetscCall(PetscMemzero(ws, sizeof *ws));
  ws->win = MPI_WIN_NULL;
  PetscFunctionReturn(0);
}

/* Next tile of node rank q in this phase and iteration, or -1 when they are all taken. */
static inline int64_t claim(bo_bound_work *ws, int q, int phase, int it)
{
  const bo_graph_peer *gp = &ws->node.peer[q];
  int64_t              c  = atomic_fetch_add_explicit(ws->peer[q].next[phase][it & 1], 1, memory_order_relaxed);
  if (c >= (gp->local + BO_TILE_ROWS - 1) / BO_TILE_ROWS) return -1;
  ws->tiles[phase][q != ws->node.rank]++;
  if (ws->tile_hook) ws->tile_hook(ws->tile_ctx);
  return gp->lo / BO_TILE_ROWS + c;
}

/* Tile t's rows of node rank q, local to q. */
static void tile_rows(const bo_bound_work *ws, int q, int64_t t, int64_t *lo, int64_t *hi)
{
  bo_tile_bounds(ws->graph->rows.n, t, lo, hi);
  *lo -= ws->node.peer[q].lo;
  *hi -= ws->node.peer[q].lo;
}

/* One iteration's work in two phases, each over every tile of the node, claimed one tile at a time
 * from the node ranks' counters, this rank's own first: while the node's ranks keep pace each
 * computes its own rows; when one falls behind (descheduled, more nonzeros), the others take its
 * last tiles.  Phase 0: B = W*Y of iterate cur, into the owner's rows of B.  Node barrier.  Phase 1:
 * the energy's tile partials (rows in order, into sum) and, with step, the next iterate and its
 * entropies.  The two stay separate passes, as in the code without sharing: interleaving W*Y with
 * the step tile by tile measured 12-20 % slower (benchmarks/README.md section 5b).  Every row gets
 * the same operations whoever takes it and partials are added exactly, so the bits do not depend
 * on who did what. */
static PetscErrorCode bound_iteration(bo_bound_work *ws, int it, int cur, double lambda, PetscBool step, bo_exactsum sum)
{
  const int64_t          k  = ws->k;
  const bo_graph_shared *sc = &ws->shared[cur], *sn = &ws->shared[1 - cur];
  int64_t                t, lo, hi;

  PetscFunctionBeginUser;
  for (int d = 0; d < ws->node.size; d++) {
    const int q = (ws->node.rank + d) % ws->node.size;
    while ((t = claim(ws, q, 0, it)) >= 0) {
      tile_rows(ws, q, t, &lo, &hi);
      bo_graph_node_spmm(&ws->node, sc, q, lo, hi, ws->peer[q].b + lo * k);
    }
  }
  PetscCall(node_barrier(ws));
  for (int d = 0; d < ws->node.size; d++) {
    const int            q  = (ws->node.rank + d) % ws->node.size;
    const bo_bound_peer *pp = &ws->peer[q];
    const double        *y = sc->node_rows + ws->node.peer[q].row0 * k, *a = pp->a, *b = pp->b, *ent = pp->ent[cur];
    while ((t = claim(ws, q, 1, it)) >= 0) {
      double part = 0;
      tile_rows(ws, q, t, &lo, &hi);
      for (int64_t i = lo; i < hi; i++) {
        double ya = 0, yb = 0;
        for (int64_t c = 0; c < k; c++) {
          ya += y[i * k + c] * a[i * k + c];
          yb += y[i * k + c] * b[i * k + c];
        }
        part += ent[i] + ya - 0.5 * lambda * yb;
      }
      PetscCall(bo_exactsum_add(sum, &part));
      if (step) bound_step(hi - lo, k, a + lo * k, b + lo * k, lambda, sn->node_rows + (ws->node.peer[q].row0 + lo) * k, pp->ent[1 - cur] + lo);
    }
  }
  PetscFunctionReturn(0);
}

/* Two iterates, each in a window shared with the node's other ranks (ws->shared[0], [1]): the step
 * writes the next iterate into the other buffer while another rank may still read the current one,
 * and the energy's exact reduction follows the step; the next iteration's exchange (a node
 * barrier) makes the new rows visible, and a buffer is written again only after the reduction that
 * follows every rank's read of it.  The same holds for B, the entropies and the tile counters: the
 * counters of parity p are reset by their owner during the iteration after the one that used them
 * (every claim of that one ended before its reduction) and used again only after the next
 * reduction.  When the reduction says stop, that last step is dropped: the result is the current
 * iterate (the same operations on the same values: bit-identical results). */
PetscErrorCode bo_bound_run_work(const bo_rows *rows, int64_t k, const double *a, bo_bound_work *ws, const bo_bound_opts *opts, double *y, double *energy, int *iterations)
{
  int64_t        local = bo_rows_local(rows);
  bo_graph      *w     = ws->graph;
  bo_bound_peer *own   = &ws->peer[ws->node.rank];
  double         amax = 0, prev = 0, bound;
  int            cur = 0;
  MPI_Comm       comm;

  PetscFunctionBeginUser;
  PetscCheck(w && ws->k == k && ws->local == local && w->rows.lo == rows->lo && w->rows.hi == rows->hi, PETSC_COMM_SELF, BO_ERR_RUNTIME,
             "bound: workspace for %lld x %lld, called with %lld x %lld; expected the graph and K it was created for (internal error)", (long long)ws->local, (long long)ws->k, (long long)local, (long long)k);
  comm = w->comm;
  for (int64_t i = 0; i < local * k; i++) amax = PetscMax(amax, fabs(a[i]));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &amax, 1, MPI_DOUBLE, MPI_MAX, comm));
  /* |y log y| <= 1/e per entry, |y.a| <= amax, |y.b| <= wmax per row */
  bound = (double)rows->n * ((double)k / 2.718281828459045 + amax + 0.5 * fabs(opts->lambda) * ws->wmax) + 1.0;
  /* every read of the previous call's buffers came before its last reduction */
  PetscCall(PetscArraycpy(ws->shared[cur].rows, y, local * k));
  PetscCall(PetscArraycpy(own->a, a, local * k));
  row_entropies(local, k, ws->shared[cur].rows, own->ent[cur]);
  for (int v = 0; v < 4; v++) atomic_store_explicit(own->next[v / 2][v % 2], 0, memory_order_relaxed);
  *iterations = 0;
  for (int it = 0;; it++) {
    bo_exactsum sum;
    if (ws->win != MPI_WIN_NULL) PetscCallMPI(MPI_Win_sync(ws->win));
    PetscCall(bo_graph_shared_exchange(&ws->shared[cur]));
    if (ws->win != MPI_WIN_NULL) PetscCallMPI(MPI_Win_sync(ws->win));
    for (int phase = 0; phase < 2; phase++) atomic_store_explicit(own->next[phase][(it + 1) & 1], 0, memory_order_relaxed);
    PetscCall(bo_exactsum_create(1, bound, &sum));
    /* W*Y, the energy and (unless at the cap) the step, which is dropped if we stop */
    PetscCall(bound_iteration(ws, it, cur, opts->lambda, it < opts->max_it ? PETSC_TRUE : PETSC_FALSE, sum));
    if (ws->win != MPI_WIN_NULL) PetscCallMPI(MPI_Win_sync(ws->win));
    PetscCall(bo_exactsum_allreduce(comm, sum, energy));
    PetscCall(bo_exactsum_destroy(&sum));
    /* it counts steps taken; the reference computes its E_i after step i + 1 and tests i > 1, so the
     * first comparison is E(Y_3) against E(Y_2): at least three steps, as there. */
    if (it > 2 && fabs(*energy - prev) <= opts->tol * fabs(prev)) break;
    if (it >= opts->max_it) break;
    prev = *energy;
    cur  = 1 - cur;
    (*iterations)++;
  }
  PetscCall(PetscArraycpy(y, ws->shared[cur].rows, local * k));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_bound_run(const bo_rows *rows, int64_t k, const double *a, bo_graph *w, const bo_bound_opts *opts, double *y, double *energy, int *iterations)
{
  bo_bound_work ws;

  PetscFunctionBeginUser;
  PetscCall(bo_bound_work_create(w, k, BO_SHARE_NODE, &ws));
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
