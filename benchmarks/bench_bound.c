/* bench_bound.c - the bound step of SLK (Y <- rowsoftmax(-A + lambda W Y)) on a real kNN graph:
 * time per bound iteration, its parts, the bytes it moves, and whether its result is the same at
 * every rank count.
 *
 *   mpirun -n P build/benchmarks/bench_bound FEATURES.h5 GRAPH.h5 [--k 10] [--init INIT.h5] [--its 20] [--reps 15] [--lambda 1.3]
 *
 * Set-up as `bench_kmeans bound` (so the numbers compare): A = squared distances of the rows of
 * FEATURES.h5 to K prototypes (/prototypes of INIT.h5, else K rows drawn with bo_kmeans_random,
 * seed 42), Y0 = softmax(-A), W = /graph of GRAPH.h5 (task knn), tol < 0 so that exactly --its
 * bound iterations run.  Timed, interleaved (each repetition runs each op once, between barriers,
 * max over ranks; median over --reps after one untimed round):
 *   bound_iteration          bo_bound_run_work, workspace made once with node sharing (the rows of
 *                            ranks on this node are read in place, and the node's ranks share the
 *                            work, tile by tile: tiles_helped is the share of tiles a rank computed
 *                            for another, over all its calls): seconds / its
 *   bound_iteration_messages the same without node sharing: every ghost row travels in the
 *                            Alltoallv and each rank computes its own rows (the in-run peer)
 *   bound_iteration_alloc    bo_bound_run (makes its workspace at every call): seconds / its
 *   shared_exchange          bo_graph_shared_exchange (node barrier; off-node rows by message)
 *   shared_spmm              bo_graph_shared_spmm (W*Y reading the node's window)
 *   gather                   one bo_graph_gather_ghosts of Y0 (K doubles per ghost row)
 *   spmm                     one bo_graph_spmm (W*Y0)
 *   spmm_reference           the same product with the loop boundopt had before (int64 col_slot with
 *                            a branch between local and ghost rows, b accumulated in memory): the
 *                            in-run peer of the kernel; its result must be bit-identical.
 * Bytes per iteration, from the exchange plan: every rank needs nghost rows of K doubles
 * (bytes_per_iteration, all moved by messages without node sharing); message_bytes_per_iteration
 * are those still sent with node sharing (rows owned off the node), shared_bytes_per_iteration
 * those read in place from the node's window instead.
 * y_hash: 64-bit FNV-1a of the bits of the last iterate gathered in row order, and energy_bits
 * the final energy's bits: both must be the same at every rank count.
 * Output: one JSON line per case on rank 0's stdout, with the load average at the end;
 * "seconds_min" is the fastest repetition (the least disturbed by other jobs on a shared machine).
 */
#include "boundopt/bound.h"
#include "boundopt/dataset.h"
#include "boundopt/error.h"
#include "boundopt/graph.h"
#include "boundopt/h5.h"
#include "boundopt/kmeans.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_support.h"

#define MAX_REPS 101

void openblas_set_num_threads(int); /* OpenBLAS's own API */

typedef struct {
  const char *features, *graph, *init;
  int64_t     k;
  int         reps, its;
  double      lambda;
} args_t;

typedef enum { OP_RUN_WORK, OP_RUN_MSG, OP_RUN_ALLOC, OP_EXCHANGE, OP_SPMM_SHARED, OP_GATHER, OP_SPMM, OP_SPMM_REF, NOPS } op_t;
static const char *op_names[NOPS] = {"bound_iteration", "bound_iteration_messages", "bound_iteration_alloc", "shared_exchange", "shared_spmm", "gather", "spmm", "spmm_reference"};

typedef struct {
  const args_t *a;
  bo_rows       rows;
  bo_graph     *w;
  bo_bound_work ws, ws_msg;
  double       *A, *y0, *y, *ghosts, *b, *b_ref, *b_sh, energy;
  int           its_done;
} ctx_t;

/* The W*Y loop as it was before the branch-free, prefetching kernel (the in-run peer). */
static void spmm_reference(const bo_graph *g, int64_t ncols, const double *y, const double *ghosts, double *b)
{
  int64_t local = bo_rows_local(&g->rows);

  for (int64_t i = 0; i < local; i++) {
    double *bi = b + i * ncols;
    for (int64_t c = 0; c < ncols; c++) bi[c] = 0;
    for (int64_t e = g->indptr[i]; e < g->indptr[i + 1]; e++) {
      int64_t       s  = g->col_slot[e];
      const double *yj = s >= 0 ? y + s * ncols : ghosts + (-1 - s) * ncols;
      double        w  = (double)g->data[e];
      for (int64_t c = 0; c < ncols; c++) bi[c] += w * yj[c];
    }
  }
}

static PetscErrorCode run_op(ctx_t *c, op_t op)
{
  int64_t       local = bo_rows_local(&c->rows), k = c->a->k;
  bo_bound_opts o     = {.lambda = c->a->lambda, .max_it = c->a->its, .tol = -1.0}; /* tol < 0: never stops early */

  PetscFunctionBeginUser;
  switch (op) {
  case OP_RUN_WORK:
    PetscCall(PetscArraycpy(c->y, c->y0, local * k));
    PetscCall(bo_bound_run_work(&c->rows, k, c->A, &c->ws, &o, c->y, &c->energy, &c->its_done));
    break;
  case OP_RUN_MSG:
    PetscCall(PetscArraycpy(c->y, c->y0, local * k));
    PetscCall(bo_bound_run_work(&c->rows, k, c->A, &c->ws_msg, &o, c->y, &c->energy, &c->its_done));
    break;
  case OP_RUN_ALLOC:
    PetscCall(PetscArraycpy(c->y, c->y0, local * k));
    PetscCall(bo_bound_run(&c->rows, k, c->A, c->w, &o, c->y, &c->energy, &c->its_done));
    break;
  case OP_EXCHANGE:
    PetscCall(bo_graph_shared_exchange(&c->ws.shared[0]));
    break;
  case OP_SPMM_SHARED:
    bo_graph_shared_spmm(&c->ws.shared[0], c->b_sh);
    break;
  case OP_GATHER:
    PetscCall(bo_graph_gather_ghosts(c->w, k, c->y0, c->ghosts));
    break;
  case OP_SPMM:
    bo_graph_spmm(c->w, k, c->y0, c->ghosts, c->b);
    break;
  case OP_SPMM_REF:
    spmm_reference(c->w, k, c->y0, c->ghosts, c->b_ref);
    break;
  default:
    break;
  }
  PetscFunctionReturn(0);
}

/* 64-bit FNV-1a of the bits of v (local x k on each rank), gathered to rank 0 in row order. */
static PetscErrorCode hash_rows(MPI_Comm comm, int64_t n, int64_t local, int64_t k, const double *v, uint64_t *hash)
{
  PetscMPIInt rank, size;
  int         cnt = (int)(local * k), *counts = NULL, *displs = NULL;
  double     *all = NULL;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  if (!rank) PetscCall(PetscMalloc3(size, &counts, size, &displs, n * k, &all));
  PetscCallMPI(MPI_Gather(&cnt, 1, MPI_INT, counts, 1, MPI_INT, 0, comm));
  if (!rank)
    for (int r = 0, d = 0; r < size; r++) { displs[r] = d; d += counts[r]; }
  PetscCallMPI(MPI_Gatherv(v, cnt, MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, 0, comm));
  *hash = 0;
  if (!rank) {
    uint64_t             h = 1469598103934665603ULL;
    const unsigned char *p = (const unsigned char *)all;
    for (size_t i = 0; i < (size_t)(n * k) * sizeof(double); i++) { h ^= p[i]; h *= 1099511628211ULL; }
    *hash = h;
    PetscCall(PetscFree3(counts, displs, all));
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode bench(const args_t *a)
{
  MPI_Comm             comm = PETSC_COMM_WORLD;
  PetscMPIInt          rank, size;
  bo_dataset           ds;
  bo_dataset_read_opts ro = {.check_finite = PETSC_TRUE};
  bo_graph             g  = {0};
  ctx_t                c  = {.a = a};
  float               *m;
  double               t[NOPS][MAX_REPS], sec[NOPS], best[NOPS];
  uint64_t             yhash, bhash, bref_hash, bsh_hash;
  int                  ref_same, sh_same, all_same;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCall(bo_dataset_read(comm, a->features, &ro, &ds));
  int64_t local = bo_rows_local(&ds.rows), k = a->k;
  PetscCheck(k >= 1 && k <= ds.n, comm, BO_ERR_INPUT, "--k %lld with N = %lld; expected 1 <= K <= N", (long long)k, (long long)ds.n);
  PetscCall(bo_graph_read(comm, a->graph, &ds.rows, &g));
  PetscCall(bo_graph_setup_exchange(&g));
  c.rows = ds.rows; c.w = &g;
  PetscCall(PetscMalloc1(k * ds.d, &m));
  PetscCall(PetscMalloc7(PetscMax(1, local * k), &c.A, PetscMax(1, local * k), &c.y0, PetscMax(1, local * k), &c.y, PetscMax(1, g.nghost * k), &c.ghosts, PetscMax(1, local * k), &c.b, PetscMax(1, local * k), &c.b_ref, PetscMax(1, local * k), &c.b_sh));
  if (a->init) {
    hid_t      f;
    bo_h5_info info;
    PetscCall(bo_h5_open_read(comm, a->init, &f));
    PetscCall(bo_h5_dataset_info(f, a->init, "/prototypes", &info));
    PetscCheck(info.rank == 2 && (int64_t)info.dims[0] == k && (int64_t)info.dims[1] == ds.d, comm, BO_ERR_INPUT, "%s/prototypes: not K x D = %lld x %lld; expected the initial prototypes", a->init, (long long)k, (long long)ds.d);
    PetscCall(bo_h5_read_array(f, "/prototypes", H5T_NATIVE_FLOAT, m));
    PetscCall(bo_h5_close(&f));
  } else PetscCall(bo_kmeans_random(comm, &ds.rows, ds.d, ds.x, k, 42, m));
  PetscCall(bo_kmeans_sqdist(&ds.rows, ds.d, ds.x, k, m, c.A));
  bo_bound_softmax(local, k, c.A, c.y0);
  PetscCall(bo_bound_work_create(&g, k, BO_SHARE_NODE, &c.ws));
  PetscCall(bo_bound_work_create(&g, k, BO_SHARE_NONE, &c.ws_msg));

  for (int r = -1; r < a->reps; r++) /* r = -1: untimed warm-up round */
    for (int j = 0; j < NOPS; j++) {
      PetscCallMPI(MPI_Barrier(comm));
      double t0 = MPI_Wtime();
      PetscCall(run_op(&c, (op_t)j));
      double mine = MPI_Wtime() - t0, mx;
      PetscCallMPI(MPI_Allreduce(&mine, &mx, 1, MPI_DOUBLE, MPI_MAX, comm));
      if (r >= 0) t[j][r] = mx;
    }
  for (int j = 0; j < NOPS; j++) {
    best[j] = t[j][0];
    for (int r = 1; r < a->reps; r++) best[j] = PetscMin(best[j], t[j][r]);
    sec[j] = median(t[j], a->reps);
  }

  /* the last iterate and energy of the three ways to run (they must agree bit for bit), and B */
  {
    double *y_first, e_first;
    int     mismatch = 0;
    PetscCall(PetscMalloc1(PetscMax(1, local * k), &y_first));
    PetscCall(run_op(&c, OP_RUN_ALLOC));
    PetscCall(PetscArraycpy(y_first, c.y, local * k));
    e_first = c.energy;
    PetscCall(run_op(&c, OP_RUN_MSG));
    mismatch |= memcmp(y_first, c.y, sizeof(double) * (size_t)(local * k)) != 0 || memcmp(&e_first, &c.energy, sizeof e_first) != 0;
    PetscCall(run_op(&c, OP_RUN_WORK));
    mismatch |= memcmp(y_first, c.y, sizeof(double) * (size_t)(local * k)) != 0 || memcmp(&e_first, &c.energy, sizeof e_first) != 0;
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &mismatch, 1, MPI_INT, MPI_MAX, comm));
    PetscCall(hash_rows(comm, ds.n, local, k, c.y, &yhash));
    PetscCall(hash_rows(comm, ds.n, local, k, c.b, &bhash));
    PetscCall(hash_rows(comm, ds.n, local, k, c.b_ref, &bref_hash));
    PetscCall(PetscArraycpy(c.ws.shared[0].rows, c.y0, local * k)); /* W*Y0 through the node's window */
    PetscCall(bo_graph_shared_exchange(&c.ws.shared[0]));
    bo_graph_shared_spmm(&c.ws.shared[0], c.b_sh);
    PetscCall(hash_rows(comm, ds.n, local, k, c.b_sh, &bsh_hash));
    ref_same = !rank ? bhash == bref_hash : 1;
    sh_same  = !rank ? bhash == bsh_hash : 1;
    all_same = !mismatch;
    PetscCall(PetscFree(y_first));
  }

  /* ghost rows: all of them (bytes a pure message exchange moves), and those still sent as messages */
  int64_t mine[4] = {g.nghost, g.nsend, g.indptr[local], c.ws.shared[0].offnode_ghosts}, tot[4], mx[4], tiles[2] = {c.ws.tiles[0][0] + c.ws.tiles[1][0], c.ws.tiles[0][1] + c.ws.tiles[1][1]}, tiles_tot[2];
  PetscCallMPI(MPI_Allreduce(tiles, tiles_tot, 2, MPI_INT64_T, MPI_SUM, comm));
  int     node_size = 1, node_max;
  PetscCallMPI(MPI_Allreduce(mine, tot, 4, MPI_INT64_T, MPI_SUM, comm));
  PetscCallMPI(MPI_Allreduce(mine, mx, 4, MPI_INT64_T, MPI_MAX, comm));
  if (c.ws.shared[0].node != MPI_COMM_NULL) PetscCallMPI(MPI_Comm_size(c.ws.shared[0].node, &node_size));
  PetscCallMPI(MPI_Allreduce(&node_size, &node_max, 1, MPI_INT, MPI_MAX, comm));
  if (!rank) {
    double la = loadavg(), energy = c.energy;
    uint64_t ebits;
    memcpy(&ebits, &energy, sizeof ebits);
    for (int j = 0; j < NOPS; j++) {
      int    per_it = j == OP_RUN_WORK || j == OP_RUN_MSG || j == OP_RUN_ALLOC;
      double s      = per_it ? sec[j] / a->its : sec[j];
      printf("{\"bench\":\"bound\",\"case\":\"%s\",\"ranks\":%d,\"n\":%lld,\"k\":%lld,\"edges\":%lld,\"reps\":%d,\"its\":%d,\"lambda\":%g,"
             "\"seconds\":%.6f,\"seconds_min\":%.6f,", op_names[j], (int)size, (long long)ds.n, (long long)k, (long long)tot[2], a->reps, c.its_done, a->lambda, s, per_it ? best[j] / a->its : best[j]);
      if (per_it) printf("\"seconds_total\":%.6f,", sec[j]);
      if (j == OP_SPMM_SHARED) printf("\"peer\":\"gather + spmm\",\"peer_seconds\":%.6f,\"ratio\":%.3f,\"shared_exchange_seconds\":%.6f,\"b_identical_to_spmm\":%s,", sec[OP_GATHER] + sec[OP_SPMM],
                                   (sec[OP_EXCHANGE] + sec[OP_SPMM_SHARED]) / (sec[OP_GATHER] + sec[OP_SPMM]), sec[OP_EXCHANGE], sh_same ? "true" : "false");
      if (j == OP_SPMM) printf("\"peer\":\"spmm_reference\",\"peer_seconds\":%.6f,\"ratio\":%.3f,\"b_hash\":\"%016llx\",\"peer_b_identical\":%s,", sec[OP_SPMM_REF], sec[OP_SPMM] / sec[OP_SPMM_REF],
                            (unsigned long long)bhash, ref_same ? "true" : "false");
      if (j == OP_RUN_WORK)
        printf("\"exchange_seconds\":%.6f,\"spmm_seconds\":%.6f,\"rest_seconds\":%.6f,\"y_hash\":\"%016llx\",\"energy\":%.17g,\"energy_bits\":\"%016llx\",\"runs_identical\":%s,\"tiles_helped\":%.4f,\"peer\":\"bound_iteration_messages\",\"peer_seconds\":%.6f,\"ratio\":%.3f,", sec[OP_EXCHANGE], sec[OP_SPMM_SHARED],
               sec[j] / a->its - sec[OP_EXCHANGE] - sec[OP_SPMM_SHARED], (unsigned long long)yhash, energy, (unsigned long long)ebits, all_same ? "true" : "false", (double)tiles_tot[1] / (double)PetscMax(1, tiles_tot[0] + tiles_tot[1]), sec[OP_RUN_MSG] / a->its, sec[OP_RUN_WORK] / sec[OP_RUN_MSG]);
      printf("\"ghost_rows_total\":%lld,\"ghost_rows_max\":%lld,\"send_rows_total\":%lld,\"bytes_per_iteration\":%lld,\"bytes_per_iteration_max_rank\":%lld,"
             "\"message_bytes_per_iteration\":%lld,\"shared_bytes_per_iteration\":%lld,\"node_ranks_max\":%d,\"load\":%.2f}\n", (long long)tot[0], (long long)mx[0],
             (long long)tot[1], (long long)(tot[0] * k * 8), (long long)(mx[0] * k * 8), (long long)(tot[3] * k * 8), (long long)((tot[0] - tot[3]) * k * 8), node_max, la);
    }
    fflush(stdout);
  }
  PetscCall(bo_bound_work_destroy(&c.ws));
  PetscCall(bo_bound_work_destroy(&c.ws_msg));
  PetscCall(PetscFree(m));
  PetscCall(PetscFree7(c.A, c.y0, c.y, c.ghosts, c.b, c.b_ref, c.b_sh));
  PetscCall(bo_graph_destroy(&g));
  PetscCall(bo_dataset_destroy(&ds));
  PetscFunctionReturn(0);
}

static int parse(int argc, char **argv, args_t *a)
{
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    const char *key = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (key[0] != '-') {
      if (npos == 0) a->features = key;
      else if (npos == 1) a->graph = key;
      else return 0;
      npos++;
      continue;
    }
    if (!v) return 0;
    i++;
    if (!strcmp(key, "--k")) a->k = atoll(v);
    else if (!strcmp(key, "--reps")) a->reps = atoi(v);
    else if (!strcmp(key, "--its")) a->its = atoi(v);
    else if (!strcmp(key, "--lambda")) a->lambda = atof(v);
    else if (!strcmp(key, "--init")) a->init = v;
    else return 0;
  }
  return npos == 2 && a->reps >= 1 && a->reps <= MAX_REPS && a->its >= 1 && a->k >= 1;
}

int main(int argc, char **argv)
{
  args_t         a = {.k = 10, .reps = 15, .its = 20, .lambda = 1.3};
  PetscErrorCode ierr;
  int            rank;

  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (!parse(argc, argv, &a)) {
    if (!rank)
      fprintf(stderr, "bench_bound: usage: mpirun -n P bench_bound FEATURES.h5 GRAPH.h5 [--k K] [--init INIT.h5] [--its I >= 1] [--reps 1..%d] [--lambda L]; expected two files and valid options\n", MAX_REPS);
    MPI_Finalize();
    return 1;
  }
  openblas_set_num_threads(1);
  ierr = PetscInitializeNoArguments();
  if (ierr) MPI_Abort(MPI_COMM_WORLD, 2);
  ierr = bo_error_push_handler();
  if (!ierr) ierr = bo_h5_init();
  if (!ierr) ierr = bench(&a);
  if (ierr) bo_error_exit(ierr);
  PetscFinalize();
  MPI_Finalize();
  return 0;
}
