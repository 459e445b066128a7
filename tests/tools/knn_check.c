/* knn_check.c - the distributed kNN graph and W*Y give the same bits at any rank count, and equal
 * a brute-force search.
 *
 *   mpirun -n P knn_check graph OUT.txt [data options] [-k K] [-self 0|1] [-weights binary|gaussian]
 *                         [-scale S] [-sym none|avg|max] [-save G.h5 | -load G.h5]
 *       Builds the graph of a deterministic n x d matrix (row i drawn from the stream (seed, i), so
 *       any rank can make any row) with bo_knn_build (or reads it with -load), then rank 0 writes,
 *       as hex: every row's columns and weights, W*Y for a deterministic n x 3 Y (bo_graph_spmm
 *       after bo_graph_gather_ghosts), the per-edge squared distances (bo_knn_edge_sqdist) and the
 *       largest row sum.  The outputs at 1, 2, 3 ranks must be byte-identical.  -save also writes
 *       the graph with bo_graph_write, reads it back at once and exits 1 if it differs.
 *   mpirun -n P knn_check verify [data options] [-k K]
 *       Builds the row-wise graph (and, with -data grid, the avg and max graphs) at P ranks and
 *       compares rank 0's brute-force double-precision search: for -data grid (small integers, so
 *       every distance is exact in float) the neighbour lists, the tie-breaking (lower index first)
 *       and the symmetrised weights must be equal; for -data gauss a neighbour may differ only by a
 *       near-tie (distance within 1e-5 relative of the k-th).  Exit 1 on a difference.
 *
 *   mpirun -n P knn_check bound OUT.txt [data options] [-k K] [-slow R]
 *       SLK bound iterations (bound.h) on the graph of the same data: A = 4 deterministic costs per
 *       row, Y0 = softmax(-A), lambda 1.5, 12 steps (tol 0), twice through one workspace shared
 *       within the node; rank 0 writes the energy and every row of the last iterate as hex, which
 *       must be byte-identical at any rank count.  -slow R: rank R sleeps 2 ms after each tile it
 *       takes, so that the node's other ranks must compute some of its tiles; exit 1 if, at more
 *       than one rank, none did.  -group M: ranks share in groups of M as if each group were a
 *       node (graph.h), so that rows also travel between "nodes" by message.
 *
 *   data options: -n N (1000) -d D (20) -data gauss|grid (gauss) -seed S (7).  gauss rows are
 *   normal draws around 7 offsets, and every 50th row duplicates row i - 17 (ties across tiles).
 *
 * Exit status 0 on success; any library error ends the run with PETSc's status.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "boundopt/bound.h"
#include "boundopt/error.h"
#include "boundopt/graph.h"
#include "boundopt/h5.h"
#include "boundopt/knn.h"
#include "boundopt/rng.h"
#include "boundopt/tiles.h"

void openblas_set_num_threads(int); /* OpenBLAS's own API */

enum { YCOLS = 3 };

typedef struct {
  const char *mode, *out, *data, *save, *load;
  long        n, d, seed, slow, group;
  bo_knn_opts opts;
} args_t;

static int parse(int argc, char **argv, args_t *a)
{
  *a = (args_t){.data = "gauss", .n = 1000, .d = 20, .seed = 7, .slow = -1, .opts = {.knn = 5, .count_self = PETSC_TRUE, .weights = BO_KNN_BINARY, .scale = 0, .symmetrize = BO_SYM_AVG}};
  if (argc < 2) return 0;
  a->mode = argv[1];
  int i   = 2;
  if (!strcmp(a->mode, "graph") || !strcmp(a->mode, "bound")) {
    if (argc < 3) return 0;
    a->out = argv[2];
    i      = 3;
  } else if (strcmp(a->mode, "verify")) return 0;
  for (; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return 0;
    i++;
    if (!strcmp(k, "-n")) a->n = atol(v);
    else if (!strcmp(k, "-d")) a->d = atol(v);
    else if (!strcmp(k, "-seed")) a->seed = atol(v);
    else if (!strcmp(k, "-data")) a->data = v;
    else if (!strcmp(k, "-k")) a->opts.knn = atoi(v);
    else if (!strcmp(k, "-self")) a->opts.count_self = atoi(v) ? PETSC_TRUE : PETSC_FALSE;
    else if (!strcmp(k, "-weights")) a->opts.weights = !strcmp(v, "gaussian") ? BO_KNN_GAUSSIAN : BO_KNN_BINARY;
    else if (!strcmp(k, "-scale")) a->opts.scale = atof(v);
    else if (!strcmp(k, "-sym")) a->opts.symmetrize = !strcmp(v, "none") ? BO_SYM_NONE : !strcmp(v, "max") ? BO_SYM_MAX : BO_SYM_AVG;
    else if (!strcmp(k, "-save")) a->save = v;
    else if (!strcmp(k, "-load")) a->load = v;
    else if (!strcmp(k, "-slow")) a->slow = atol(v);
    else if (!strcmp(k, "-group")) a->group = atol(v);
    else return 0;
  }
  return a->n > 0 && a->d > 0;
}

/* ---------------------------------------------------------------- deterministic data */

static void make_row(const args_t *a, int64_t i, float *row)
{
  bo_rng  r;
  int     grid = !strcmp(a->data, "grid");
  int64_t src  = !grid && i % 50 == 49 && i >= 17 ? i - 17 : i;
  bo_rng_init(&r, (uint64_t)a->seed, (uint64_t)src, 3);
  for (int64_t c = 0; c < a->d; c++) row[c] = grid ? (float)bo_rng_below(&r, 4) : (float)((c % 7 == src % 7 ? 2.0 : 0.0) + bo_rng_normal(&r));
}

static void make_y(int64_t i, double *y)
{
  bo_rng r;
  bo_rng_init(&r, 5, (uint64_t)i, 4);
  for (int c = 0; c < YCOLS; c++) y[c] = 2 * bo_rng_uniform(&r) - 1;
}

/* ---------------------------------------------------------------- gathering on rank 0 */

/* This rank's part of the row partition of the generated data and its rows (x: local x d, PetscFree). */
static PetscErrorCode my_rows(MPI_Comm comm, const args_t *a, PetscMPIInt *rank, PetscMPIInt *P, bo_rows *rows, float **x)
{
  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, rank));
  PetscCallMPI(MPI_Comm_size(comm, P));
  bo_rows_partition(a->n, *rank, *P, rows);
  PetscCall(PetscMalloc1(bo_rows_local(rows) * a->d + 1, x));
  for (int64_t i = rows->lo; i < rows->hi; i++) make_row(a, i, *x + (i - rows->lo) * a->d);
  PetscFunctionReturn(0);
}

static PetscErrorCode gather(MPI_Comm comm, MPI_Datatype type, size_t size, const void *mine, int64_t count, void **all, int64_t *total)
{
  PetscMPIInt rank, P;
  int        *counts = NULL, *displs = NULL, c = (int)count;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &P));
  *all   = NULL;
  *total = 0;
  if (!rank) {
    counts = calloc((size_t)P, sizeof *counts);
    displs = calloc((size_t)P, sizeof *displs);
  }
  PetscCallMPI(MPI_Gather(&c, 1, MPI_INT, counts, 1, MPI_INT, 0, comm));
  if (!rank) {
    for (int r = 0; r < P; r++) {
      displs[r] = (int)*total;
      *total += counts[r];
    }
    *all = malloc(size * (size_t)(*total > 0 ? *total : 1));
  }
  PetscCallMPI(MPI_Gatherv(mine, c, type, *all, counts, displs, type, 0, comm));
  free(counts);
  free(displs);
  PetscFunctionReturn(0);
}

/* The whole graph on rank 0 (global indptr). */
typedef struct {
  int64_t *indptr, *indices;
  float   *data;
  double  *extra; /* per-edge values, or per-row values */
} whole;

static PetscErrorCode gather_graph(const bo_graph *g, whole *w)
{
  int64_t local = bo_rows_local(&g->rows), nnz = g->indptr[local], total, nrows, *counts;
  void   *p;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(local + 1, &counts));
  for (int64_t i = 0; i < local; i++) counts[i] = g->indptr[i + 1] - g->indptr[i];
  PetscCall(gather(g->comm, MPI_INT64_T, sizeof(int64_t), counts, local, &p, &nrows));
  PetscCall(PetscFree(counts));
  w->indptr = NULL;
  if (p) {
    int64_t *c = p;
    w->indptr  = malloc(sizeof(int64_t) * (size_t)(nrows + 1));
    w->indptr[0] = 0;
    for (int64_t i = 0; i < nrows; i++) w->indptr[i + 1] = w->indptr[i] + c[i];
    free(p);
  }
  PetscCall(gather(g->comm, MPI_INT64_T, sizeof(int64_t), g->indices, nnz, &p, &total));
  w->indices = p;
  PetscCall(gather(g->comm, MPI_FLOAT, sizeof(float), g->data, nnz, &p, &total));
  w->data = p;
  PetscFunctionReturn(0);
}

static void free_whole(whole *w)
{
  free(w->indptr);
  free(w->indices);
  free(w->data);
}

/* ---------------------------------------------------------------- graph mode */

static PetscErrorCode same_graph(const bo_graph *a, const bo_graph *b, int *differs)
{
  int64_t local = bo_rows_local(&a->rows), nnz = a->indptr[local];
  int     bad   = 0;

  PetscFunctionBeginUser;
  bad = bo_rows_local(&b->rows) != local || memcmp(a->indptr, b->indptr, sizeof(int64_t) * (size_t)(local + 1)) || (nnz && (memcmp(a->indices, b->indices, sizeof(int64_t) * (size_t)nnz) || memcmp(a->data, b->data, sizeof(float) * (size_t)nnz)));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_LOR, a->comm));
  *differs = bad;
  PetscFunctionReturn(0);
}

static const char *weights_name(bo_knn_weights w) { return w == BO_KNN_GAUSSIAN ? "gaussian" : "binary"; }
static const char *sym_name(bo_knn_symmetrize s) { return s == BO_SYM_NONE ? "none" : s == BO_SYM_MAX ? "max" : "avg"; }

static PetscErrorCode run_graph(MPI_Comm comm, const args_t *a, int *failed)
{
  PetscMPIInt rank, P;
  bo_rows     rows;
  bo_graph    g;
  float      *x;
  double     *y, *ghosts, *b, *sq, maxsum;
  int64_t     local, nnz, total;
  whole       w;
  void       *pb, *psq;

  PetscFunctionBeginUser;
  PetscCall(my_rows(comm, a, &rank, &P, &rows, &x));
  local = bo_rows_local(&rows);
  PetscCall(PetscMalloc2(local * YCOLS + 1, &y, local * YCOLS + 1, &b));
  for (int64_t i = rows.lo; i < rows.hi; i++) make_y(i, y + (i - rows.lo) * YCOLS);
  if (a->load) PetscCall(bo_graph_read(comm, a->load, &rows, &g));
  else PetscCall(bo_knn_build(comm, &rows, a->d, x, &a->opts, &g));
  if (a->save) {
    hid_t    file;
    bo_graph back;
    int      differs = 0;
    PetscCall(bo_h5_create(comm, a->save, &file));
    PetscCall(bo_graph_write(file, &g, a->opts.knn, weights_name(a->opts.weights), sym_name(a->opts.symmetrize)));
    PetscCall(bo_h5_close(&file));
    PetscCall(bo_graph_read(comm, a->save, &rows, &back));
    PetscCall(same_graph(&g, &back, &differs));
    PetscCall(bo_graph_destroy(&back));
    if (differs) {
      PetscCall(PetscPrintf(comm, "knn_check: the graph read back from %s differs from the one written\n", a->save));
      *failed = 1;
    }
  }
  PetscCall(bo_graph_setup_exchange(&g));
  nnz = g.indptr[local];
  PetscCall(PetscMalloc2(g.nghost * YCOLS + 1, &ghosts, nnz + 1, &sq));
  PetscCall(bo_graph_gather_ghosts(&g, YCOLS, y, ghosts));
  bo_graph_spmm(&g, YCOLS, y, ghosts, b);
  PetscCall(bo_knn_edge_sqdist(&g, a->d, x, sq));
  PetscCall(bo_graph_max_row_sum(&g, &maxsum));

  PetscCall(gather_graph(&g, &w));
  PetscCall(gather(comm, MPI_DOUBLE, sizeof(double), b, local * YCOLS, &pb, &total));
  PetscCall(gather(comm, MPI_DOUBLE, sizeof(double), sq, nnz, &psq, &total));
  if (!rank) {
    FILE         *f = fopen(a->out, "w");
    const double *wb = pb, *wsq = psq;
    PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot write; expected a writable path", a->out);
    fprintf(f, "n %ld d %ld k %d self %d weights %s scale %a sym %s nnz %lld max_row_sum %a\n", a->n, a->d, a->opts.knn, (int)a->opts.count_self, weights_name(a->opts.weights), g.scale, sym_name(a->opts.symmetrize), (long long)w.indptr[a->n], maxsum);
    for (int64_t i = 0; i < a->n; i++) {
      fprintf(f, "%lld:", (long long)i);
      for (int64_t e = w.indptr[i]; e < w.indptr[i + 1]; e++) fprintf(f, " %lld=%a/%a", (long long)w.indices[e], (double)w.data[e], wsq[e]);
      fprintf(f, " | wy");
      for (int c = 0; c < YCOLS; c++) fprintf(f, " %a", wb[i * YCOLS + c]);
      fprintf(f, "\n");
    }
    fclose(f);
  }
  free(pb);
  free(psq);
  free_whole(&w);
  PetscCall(PetscFree2(ghosts, sq));
  PetscCall(bo_graph_destroy(&g));
  PetscCall(PetscFree2(y, b));
  PetscCall(PetscFree(x));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- bound mode */

static void sleep_after_tile(void *ctx)
{
  struct timespec t = {0, 2000000};
  (void)ctx;
  nanosleep(&t, NULL);
}

static PetscErrorCode run_bound(MPI_Comm comm, const args_t *a, int *failed)
{
  enum { K = 4 };
  PetscMPIInt   rank, P;
  bo_rows       rows;
  bo_graph      g;
  bo_bound_work ws;
  bo_bound_opts o = {.lambda = 1.5, .max_it = 12, .tol = 0};
  float        *x;
  double       *cost, *y, energy = 0;
  int64_t       local, total, helped[2], helped_all[2];
  int           its = 0;
  void         *py;

  PetscFunctionBeginUser;
  PetscCall(my_rows(comm, a, &rank, &P, &rows, &x));
  local = bo_rows_local(&rows);
  PetscCall(PetscMalloc2(local * K + 1, &cost, local * K + 1, &y));
  for (int64_t i = rows.lo; i < rows.hi; i++) {
    bo_rng r;
    bo_rng_init(&r, 11, (uint64_t)i, 5);
    for (int c = 0; c < K; c++) cost[(i - rows.lo) * K + c] = 3 * bo_rng_uniform(&r);
  }
  PetscCall(bo_knn_build(comm, &rows, a->d, x, &a->opts, &g));
  PetscCall(bo_bound_work_create(&g, K, a->group > 0 ? (int)a->group : BO_SHARE_NODE, &ws));
  if (rank == a->slow) ws.tile_hook = sleep_after_tile;
  for (int call = 0; call < 2; call++) {
    bo_bound_softmax(local, K, cost, y);
    PetscCall(bo_bound_run_work(&rows, K, cost, &ws, &o, y, &energy, &its));
  }
  helped[0] = ws.tiles[0][1];
  helped[1] = ws.tiles[1][1];
  PetscCallMPI(MPI_Allreduce(helped, helped_all, 2, MPI_INT64_T, MPI_SUM, comm));
  if (a->slow >= 0 && P > 1 && ws.node.size > 1 && (!helped_all[0] || !helped_all[1])) {
    PetscCall(PetscPrintf(comm, "knn_check: rank %ld slept after each tile, yet the others took %lld of its W*Y tiles and %lld of its step tiles; expected some of each\n", a->slow, (long long)helped_all[0], (long long)helped_all[1]));
    *failed = 1;
  }
  PetscCall(gather(comm, MPI_DOUBLE, sizeof(double), y, local * K, &py, &total));
  if (!rank) {
    FILE         *f  = fopen(a->out, "w");
    const double *wy = py;
    PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot write; expected a writable path", a->out);
    fprintf(f, "n %ld k %d steps %d energy %a\n", a->n, K, its, energy);
    for (int64_t i = 0; i < a->n; i++) {
      fprintf(f, "%lld:", (long long)i);
      for (int c = 0; c < K; c++) fprintf(f, " %a", wy[i * K + c]);
      fprintf(f, "\n");
    }
    fclose(f);
  }
  free(py);
  PetscCall(bo_bound_work_destroy(&ws));
  PetscCall(bo_graph_destroy(&g));
  PetscCall(PetscFree2(cost, y));
  PetscCall(PetscFree(x));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- verify mode */

typedef struct {
  double  d;
  int64_t j;
} cand;

static int cmp_cand(const void *a, const void *b)
{
  const cand *x = a, *y = b;
  if (x->d != y->d) return x->d < y->d ? -1 : 1;
  return (x->j > y->j) - (x->j < y->j);
}

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static double sqdist(const float *x, int64_t d, int64_t p, int64_t q)
{
  double s = 0;
  for (int64_t c = 0; c < d; c++) {
    double t = (double)x[p * d + c] - x[q * d + c];
    s += t * t;
  }
  return s;
}

/* Brute force on rank 0: nb[p*k ..] = the k nearest other rows of p, by column; dk[p] = k-th distance. */
static void brute_force(const float *x, int64_t n, int64_t d, int k, int64_t *nb, double *dk)
{
  cand *c = malloc(sizeof *c * (size_t)n);
  for (int64_t p = 0; p < n; p++) {
    int64_t m = 0;
    for (int64_t q = 0; q < n; q++)
      if (q != p) c[m++] = (cand){sqdist(x, d, p, q), q};
    qsort(c, (size_t)m, sizeof *c, cmp_cand);
    dk[p] = c[k - 1].d;
    for (int a = 0; a < k; a++) nb[p * k + a] = c[a].j;
    qsort(nb + p * k, (size_t)k, sizeof *nb, cmp_i64);
  }
  free(c);
}

/* Row-wise graph against brute force; returns the number of rows that differ beyond near-ties. */
static int64_t compare_rowwise(const whole *w, const float *x, int64_t n, int64_t d, int k, const int64_t *nb, const double *dk, int exact, int64_t *near_ties)
{
  int64_t bad = 0;
  *near_ties  = 0;
  for (int64_t p = 0; p < n; p++) {
    int64_t m = w->indptr[p + 1] - w->indptr[p];
    if (m != k) { bad++; continue; }
    if (!memcmp(w->indices + w->indptr[p], nb + p * k, sizeof(int64_t) * (size_t)k)) continue;
    int ok = !exact;
    for (int64_t e = w->indptr[p]; e < w->indptr[p + 1] && ok; e++) { /* every chosen row within a near-tie of the k-th */
      int64_t q = w->indices[e];
      if (q == p || sqdist(x, d, p, q) > dk[p] * (1 + 1e-5) + 1e-6) ok = 0;
    }
    if (ok) (*near_ties)++;
    else {
      if (bad < 3) {
        fprintf(stderr, "knn_check: row %lld: got", (long long)p);
        for (int64_t e = w->indptr[p]; e < w->indptr[p + 1]; e++) fprintf(stderr, " %lld(%.9g)", (long long)w->indices[e], sqdist(x, d, p, w->indices[e]));
        fprintf(stderr, "; brute force");
        for (int a = 0; a < k; a++) fprintf(stderr, " %lld(%.9g)", (long long)nb[p * k + a], sqdist(x, d, p, nb[p * k + a]));
        fprintf(stderr, "\n");
      }
      bad++;
    }
  }
  return bad;
}

/* Symmetrised graph against W (binary, row-wise nb) symmetrised densely row by row on rank 0. */
static int64_t compare_symmetrised(const whole *w, int64_t n, int k, const int64_t *nb, bo_knn_symmetrize mode)
{
  int64_t bad = 0;
  float  *row = calloc((size_t)n, sizeof *row);
  /* transpose lists: who has p as a neighbour */
  int64_t *tcount = calloc((size_t)n + 1, sizeof *tcount), *tlist = malloc(sizeof *tlist * (size_t)(n * k)), *fill = malloc(sizeof *fill * (size_t)n);
  for (int64_t e = 0; e < n * k; e++) tcount[nb[e] + 1]++;
  for (int64_t i = 0; i < n; i++) tcount[i + 1] += tcount[i];
  for (int64_t i = 0; i < n; i++) fill[i] = tcount[i];
  for (int64_t e = 0; e < n * k; e++) tlist[fill[nb[e]]++] = e / k;
  for (int64_t p = 0; p < n; p++) {
    int64_t e = w->indptr[p], end = w->indptr[p + 1];
    int     rowbad = 0;
    memset(row, 0, sizeof *row * (size_t)n);
    for (int a = 0; a < k; a++) row[nb[p * k + a]] += 1.0f;
    for (int64_t t = tcount[p]; t < tcount[p + 1]; t++) row[tlist[t]] += 2.0f; /* 1: forward, 2: back, 3: both */
    for (int64_t q = 0; q < n && !rowbad; q++) {
      if (row[q] == 0) continue;
      float want = row[q] == 3 ? 1.0f : mode == BO_SYM_AVG ? 0.5f : 1.0f;
      if (e >= end || w->indices[e] != q || w->data[e] != want) rowbad = 1;
      e++;
    }
    bad += rowbad || e != end;
  }
  free(row);
  free(tcount);
  free(tlist);
  free(fill);
  return bad;
}

static PetscErrorCode run_verify(MPI_Comm comm, const args_t *a, int *failed)
{
  PetscMPIInt rank, P;
  bo_rows     rows;
  float      *x;
  int64_t     local, total;
  int         exact = !strcmp(a->data, "grid"), k = a->opts.knn - (a->opts.count_self ? 1 : 0);
  void       *px;
  int64_t    *nb = NULL;
  double     *dk = NULL;

  PetscFunctionBeginUser;
  PetscCall(my_rows(comm, a, &rank, &P, &rows, &x));
  local = bo_rows_local(&rows);
  PetscCall(gather(comm, MPI_FLOAT, sizeof(float), x, local * a->d, &px, &total));
  if (!rank) {
    nb = malloc(sizeof *nb * (size_t)(a->n * k));
    dk = malloc(sizeof *dk * (size_t)a->n);
    brute_force(px, a->n, a->d, k, nb, dk);
  }
  for (int mode = BO_SYM_NONE; mode <= (exact ? BO_SYM_MAX : BO_SYM_NONE); mode++) {
    bo_knn_opts o = a->opts;
    bo_graph    g;
    whole       w;
    o.symmetrize  = (bo_knn_symmetrize)mode;
    o.weights     = BO_KNN_BINARY;
    PetscCall(bo_knn_build(comm, &rows, a->d, x, &o, &g));
    PetscCall(gather_graph(&g, &w));
    if (!rank) {
      int64_t bad, near = 0;
      if (mode == BO_SYM_NONE) bad = compare_rowwise(&w, px, a->n, a->d, k, nb, dk, exact, &near);
      else bad = compare_symmetrised(&w, a->n, k, nb, (bo_knn_symmetrize)mode);
      printf("verify n %ld d %ld k %d data %s sym %s at %d ranks: %lld rows differ, %lld near-ties\n", a->n, a->d, k, a->data, sym_name((bo_knn_symmetrize)mode), (int)P, (long long)bad, (long long)near);
      if (bad) *failed = 1;
    }
    free_whole(&w);
    PetscCall(bo_graph_destroy(&g));
  }
  PetscCallMPI(MPI_Bcast(failed, 1, MPI_INT, 0, comm));
  free(px);
  free(nb);
  free(dk);
  PetscCall(PetscFree(x));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  args_t a;
  int    failed = 0, ok = parse(argc, argv, &a);

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCall(bo_h5_init());
  openblas_set_num_threads(1);
  if (!ok) {
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "usage: knn_check graph OUT.txt [-n N -d D -data gauss|grid -seed S -k K -self 0|1 -weights binary|gaussian -scale S -sym none|avg|max -save G.h5 | -load G.h5]\n"
                                            "       knn_check bound OUT.txt [-n N -d D -data gauss|grid -seed S -k K -slow R -group M]\n"
                                            "       knn_check verify [-n N -d D -data gauss|grid -seed S -k K -self 0|1]\n"));
    failed = 2;
  } else if (!strcmp(a.mode, "graph")) PetscCall(run_graph(PETSC_COMM_WORLD, &a, &failed));
  else if (!strcmp(a.mode, "bound")) PetscCall(run_bound(PETSC_COMM_WORLD, &a, &failed));
  else PetscCall(run_verify(PETSC_COMM_WORLD, &a, &failed));
  PetscCall(PetscFinalize());
  return failed;
}
