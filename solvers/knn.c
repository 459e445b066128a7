/* knn.c - exact distributed kNN affinity graph (see knn.h).
 *
 * Distances.  Squared distances are |x|^2 + |y|^2 - 2 x.y in float, with the dot products from
 * one cblas_sgemm per pair of global tiles {a, b}: always C = X_min(a,b) X_max(a,b)^T, whoever
 * computes it, and the distance of rows (p, q) is the entry [p][q] of that call with p in the lower
 * tile (inside a diagonal tile: the upper triangle, p < q).  So d(p, q) == d(q, p) bit for bit, and
 * every distance comes from a BLAS call whose shape and operands are fixed by the global tile grid:
 * the same values whatever the number of ranks.  Each row keeps its best knn' = knn - count_self
 * *other* rows in a bounded max-heap under the total order (distance, global index): the top-k set
 * under a total order does not depend on the order of the candidates, so the result is the same
 * for any partition, and ties go to the lower index.  Self is never a candidate (a duplicate point
 * is a neighbour like any other), which is what "count self, then drop it" means without ties.
 *
 * Ring.  Rank r keeps its block.  It first does its own tile pairs (a <= b), each sgemm serving
 * both rows a and rows b.  The other blocks then move one rank forward per step (MPI_Isend/Irecv
 * of the next block posted before the distances to the current one; own + current + next = three
 * blocks resident).  Each unordered pair of blocks is computed once: at step t < P/2 rank r does
 * all tile pairs with the block of r - t; at t = P/2 (P even) the two ranks facing each other split
 * the tile pairs by parity.  The candidates found for the visiting rows (one top-k list per row)
 * travel back to their owner at the end of the step and are merged into its heaps; meanwhile rank
 * r merges the lists that rank r + t found for r's rows.  Blocks travel floor(P/2) steps only, so
 * each rank does about N^2/(2P) distance pairs: the sgemm work is halved as in a serial
 * symmetric computation.
 *
 * Selection.  A candidate is first compared with the row's current worst (the heap top) and
 * rejected there almost always; the heap is touched only by an improvement.
 */
#include "boundopt/knn.h"
#include "boundopt/error.h"
#include "boundopt/reduce.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* OpenBLAS thread control: one thread per sgemm, whatever the caller set (rank-count independence). */
extern void openblas_set_num_threads(int nthreads);
extern int  openblas_get_num_threads(void);

#define NO_INDEX INT64_MAX
/* Messages between two ranks are matched in order (MPI non-overtaking), so fixed tags suffice. */
enum { TAG_BLOCK = 1, TAG_CAND_D = 2, TAG_CAND_J = 3 };

/* ---------------------------------------------------------------- bounded heaps */

/* Heaps of k (distance, index) pairs, one per row, row r at [r k, (r+1) k); a max-heap under
 * (distance, index), so the root is the worst kept candidate. */
typedef struct {
  int      k;
  int64_t  rows;
  float   *d;
  int64_t *j;
} heaps;

static inline int worse(float d1, int64_t j1, float d2, int64_t j2) { return d1 > d2 || (d1 == d2 && j1 > j2); }

static void heaps_reset(heaps *h)
{
  for (int64_t i = 0; i < h->rows * h->k; i++) {
    h->d[i] = INFINITY;
    h->j[i] = NO_INDEX;
  }
}

/* Replaces the root of one heap by (d, j), which is better than the root, and sifts it down. */
static void heap_replace_root(float *hd, int64_t *hj, int k, float d, int64_t j)
{
  int i = 0;
  for (;;) {
    int c = 2 * i + 1;
    if (c >= k) break;
    if (c + 1 < k && worse(hd[c + 1], hj[c + 1], hd[c], hj[c])) c++;
    if (!worse(hd[c], hj[c], d, j)) break;
    hd[i] = hd[c];
    hj[i] = hj[c];
    i     = c;
  }
  hd[i] = d;
  hj[i] = j;
}

static inline void heap_offer(float *hd, int64_t *hj, int k, float d, int64_t j)
{
  if (worse(hd[0], hj[0], d, j)) heap_replace_root(hd, hj, k, d, j);
}

/* Sorts one row's k pairs by (distance, index), ascending (insertion sort: k is small). */
static void sort_pairs(float *d, int64_t *j, int k)
{
  for (int a = 1; a < k; a++) {
    float   dv = d[a];
    int64_t jv = j[a];
    int     b  = a - 1;
    while (b >= 0 && worse(d[b], j[b], dv, jv)) {
      d[b + 1] = d[b];
      j[b + 1] = j[b];
      b--;
    }
    d[b + 1] = dv;
    j[b + 1] = jv;
  }
}

/* ---------------------------------------------------------------- one tile pair */

typedef struct {
  int64_t      n, d;
  int          k;
  float       *gram;  /* BO_TILE_ROWS^2 */
  float       *dist;  /* BO_TILE_ROWS */
  MPI_Request *pending;
  int          npending;
} workspace;

/* Tile operand: rows [lo, hi) of the global matrix at x (row lo), their squared norms, and the
 * heaps of those rows (row lo first). */
typedef struct {
  int64_t      lo, hi;
  const float *x;
  const float *nrm;
  float       *hd;
  int64_t     *hj;
} tile_ref;

/* Distances between tiles A (lower global index) and B, offered to the heaps of both sides.
 * A == B (the same tile): the upper triangle only. */
static void tile_pair(workspace *w, const tile_ref *A, const tile_ref *B, int same)
{
  int   ma = (int)(A->hi - A->lo), mb = (int)(B->hi - B->lo), k = w->k;
  float *G = w->gram, *dd = w->dist;

  if (!ma || !mb) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ma, mb, (int)w->d, 1.0f, A->x, (int)w->d, B->x, (int)w->d, 0.0f, G, mb);
  for (int i = 0; i < ma; i++) {
    const float *gi  = G + (size_t)i * mb;
    float        ni  = A->nrm[i];
    float       *hdi = A->hd + (size_t)i * k;
    int64_t     *hji = A->hj + (size_t)i * k, gi_index = A->lo + i;
    int          j0  = same ? i + 1 : 0;
    for (int j = j0; j < mb; j++) {
      float v = ni + B->nrm[j] - 2.0f * gi[j];
      dd[j]   = v > 0 ? v : 0;
    }
    for (int j = j0; j < mb; j++) {
      float v = dd[j];
      if (v <= hdi[0]) heap_offer(hdi, hji, k, v, B->lo + j);
      float *hdj = B->hd + (size_t)j * k;
      if (v <= hdj[0]) heap_offer(hdj, B->hj + (size_t)j * k, k, v, gi_index);
    }
  }
}

/* Lets pending transfers progress between BLAS calls (Open MPI moves large messages only inside
 * MPI calls). */
static PetscErrorCode poke(workspace *w)
{
  int flag;

  PetscFunctionBeginUser;
  if (w->npending) PetscCallMPI(MPI_Testall(w->npending, w->pending, &flag, MPI_STATUSES_IGNORE));
  PetscFunctionReturn(0);
}

/* A block: the rows of one rank, with norms and heaps. */
typedef struct {
  bo_rows      rows;
  const float *x;
  float       *nrm;
  heaps       *h;
} block;

static tile_ref tile_of(const block *b, int64_t t, int64_t n, int64_t d)
{
  tile_ref r;
  bo_tile_bounds(n, t, &r.lo, &r.hi);
  int64_t off = r.lo - b->rows.lo;
  r.x   = b->x + off * d;
  r.nrm = b->nrm + off;
  r.hd  = b->h->d + off * b->h->k;
  r.hj  = b->h->j + off * b->h->k;
  return r;
}

static void row_norms(int64_t rows, int64_t d, const float *x, float *nrm)
{
  for (int64_t i = 0; i < rows; i++) {
    double s = 0;
    for (int64_t c = 0; c < d; c++) s += (double)x[i * d + c] * x[i * d + c];
    nrm[i] = (float)s;
  }
}

/* Pairs within the own block: a <= b. */
static PetscErrorCode own_pairs(workspace *w, const block *own)
{
  PetscFunctionBeginUser;
  for (int64_t a = own->rows.tile_lo; a < own->rows.tile_hi; a++)
    for (int64_t b = a; b < own->rows.tile_hi; b++) {
      tile_ref A = tile_of(own, a, w->n, w->d), B = tile_of(own, b, w->n, w->d);
      tile_pair(w, &A, &B, a == b);
      PetscCall(poke(w));
    }
  PetscFunctionReturn(0);
}

/* Pairs of own tile a and visiting tile b: all of them, or (split step) those whose parity says so;
 * the rule gives each pair {a, b} to exactly one of the two facing ranks. */
static PetscErrorCode cross_pairs(workspace *w, const block *own, const block *vis, PetscBool split)
{
  PetscFunctionBeginUser;
  for (int64_t a = own->rows.tile_lo; a < own->rows.tile_hi; a++)
    for (int64_t b = vis->rows.tile_lo; b < vis->rows.tile_hi; b++) {
      if (split && !(((a + b) & 1) ^ (a < b))) continue;
      tile_ref A = tile_of(own, a, w->n, w->d), B = tile_of(vis, b, w->n, w->d);
      if (a < b) tile_pair(w, &A, &B, 0);
      else tile_pair(w, &B, &A, 0);
      PetscCall(poke(w));
    }
  PetscFunctionReturn(0);
}

/* Merges candidate lists (rows x k, any order) into the heaps. */
static void merge_candidates(heaps *h, const float *cd, const int64_t *cj)
{
  int k = h->k;
  for (int64_t i = 0; i < h->rows; i++)
    for (int c = 0; c < k; c++) {
      int64_t j = cj[i * k + c];
      if (j != NO_INDEX) heap_offer(h->d + i * k, h->j + i * k, k, cd[i * k + c], j);
    }
}

/* ---------------------------------------------------------------- the ring */

static PetscErrorCode find_neighbours(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, int k, heaps *mine)
{
  PetscMPIInt  rank, P;
  int64_t      n = rows->n, maxrows = 0, local = bo_rows_local(rows);
  float       *buf[2] = {NULL, NULL}, *vnrm = NULL, *rd = NULL;
  int64_t     *rj     = NULL;
  heaps        cand   = {.k = k};
  block        own, vis;
  workspace    w = {.n = n, .d = d, .k = k};
  MPI_Datatype rowtype, kf, kj;
  MPI_Request  req[6];

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &P));
  int T = P / 2; /* steps of the ring */
  for (int r = 0; r < P; r++) {
    bo_rows rr;
    bo_rows_partition(n, r, P, &rr);
    maxrows = PetscMax(maxrows, bo_rows_local(&rr));
  }
  PetscCall(PetscMalloc2(BO_TILE_ROWS * BO_TILE_ROWS, &w.gram, BO_TILE_ROWS, &w.dist));
  own = (block){.rows = *rows, .x = x, .h = mine};
  PetscCall(PetscMalloc1(local + 1, &own.nrm));
  row_norms(local, d, x, own.nrm);
  heaps_reset(mine);
  if (T > 0) {
    PetscCall(PetscMalloc1(maxrows * d + 1, &buf[0]));
    if (T > 1) PetscCall(PetscMalloc1(maxrows * d + 1, &buf[1])); /* P = 2, 3: one visitor only */
    PetscCall(PetscMalloc1(maxrows + 1, &vnrm));
    PetscCall(PetscMalloc2(maxrows * k + 1, &cand.d, maxrows * k + 1, &cand.j));
    PetscCall(PetscMalloc2(local * k + 1, &rd, local * k + 1, &rj));
    PetscCallMPI(MPI_Type_contiguous((int)d, MPI_FLOAT, &rowtype));
    PetscCallMPI(MPI_Type_commit(&rowtype));
    PetscCallMPI(MPI_Type_contiguous(k, MPI_FLOAT, &kf));
    PetscCallMPI(MPI_Type_commit(&kf));
    PetscCallMPI(MPI_Type_contiguous(k, MPI_INT64_T, &kj));
    PetscCallMPI(MPI_Type_commit(&kj));
  }

  /* Step 0: own pairs, while the first visiting block (of r - 1) arrives. */
  int prev = (rank - 1 + P) % P, next = (rank + 1) % P;
  if (T > 0) {
    bo_rows from;
    bo_rows_partition(n, prev, P, &from);
    PetscCallMPI(MPI_Isend(x, (int)local, rowtype, next, TAG_BLOCK, comm, &req[0]));
    PetscCallMPI(MPI_Irecv(buf[0], (int)bo_rows_local(&from), rowtype, prev, TAG_BLOCK, comm, &req[1]));
    w.pending  = req;
    w.npending = 2;
  }
  PetscCall(own_pairs(&w, &own));
  if (T > 0) PetscCallMPI(MPI_Waitall(2, req, MPI_STATUSES_IGNORE));
  w.npending = 0;

  for (int t = 1; t <= T; t++) {
    int     s = (rank - t + P) % P, back = (rank + t) % P, cur = (t - 1) & 1;
    bo_rows srows;
    bo_rows_partition(n, s, P, &srows);
    vis = (block){.rows = srows, .x = buf[cur], .nrm = vnrm, .h = &cand};
    cand.rows = bo_rows_local(&srows);
    heaps_reset(&cand);
    row_norms(cand.rows, d, vis.x, vnrm);
    /* the candidates for my rows found by rank r + t at this step */
    PetscCallMPI(MPI_Irecv(rd, (int)local, kf, back, TAG_CAND_D, comm, &req[0]));
    PetscCallMPI(MPI_Irecv(rj, (int)local, kj, back, TAG_CAND_J, comm, &req[1]));
    w.pending  = req;
    w.npending = 2;
    if (t < T) { /* forward the current block, receive the next one */
      bo_rows nrows;
      bo_rows_partition(n, (rank - t - 1 + 2 * P) % P, P, &nrows);
      PetscCallMPI(MPI_Isend(buf[cur], (int)cand.rows, rowtype, next, TAG_BLOCK, comm, &req[2]));
      PetscCallMPI(MPI_Irecv(buf[1 - cur], (int)bo_rows_local(&nrows), rowtype, prev, TAG_BLOCK, comm, &req[3]));
      w.npending = 4;
    }
    PetscCall(cross_pairs(&w, &own, &vis, 2 * t == P ? PETSC_TRUE : PETSC_FALSE));
    if (t < T) PetscCallMPI(MPI_Waitall(2, req + 2, MPI_STATUSES_IGNORE));
    /* the visiting rows' candidates go home */
    PetscCallMPI(MPI_Isend(cand.d, (int)cand.rows, kf, s, TAG_CAND_D, comm, &req[4]));
    PetscCallMPI(MPI_Isend(cand.j, (int)cand.rows, kj, s, TAG_CAND_J, comm, &req[5]));
    PetscCallMPI(MPI_Waitall(2, req, MPI_STATUSES_IGNORE));
    merge_candidates(mine, rd, rj);
    PetscCallMPI(MPI_Waitall(2, req + 4, MPI_STATUSES_IGNORE));
    w.npending = 0;
  }

  if (T > 0) {
    PetscCallMPI(MPI_Type_free(&rowtype));
    PetscCallMPI(MPI_Type_free(&kf));
    PetscCallMPI(MPI_Type_free(&kj));
    PetscCall(PetscFree2(rd, rj));
    PetscCall(PetscFree2(cand.d, cand.j));
    PetscCall(PetscFree(vnrm));
    PetscCall(PetscFree(buf[0]));
    PetscCall(PetscFree(buf[1]));
  }
  PetscCall(PetscFree(own.nrm));
  PetscCall(PetscFree2(w.gram, w.dist));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- weights and symmetrisation */

/* Mean Euclidean distance over every row's kept neighbours, summed per tile and exactly. */
static PetscErrorCode mean_distance(MPI_Comm comm, const bo_rows *rows, const heaps *h, double *mean)
{
  double      mx = 0, total, partial;
  bo_exactsum sum;
  int         k = h->k;

  PetscFunctionBeginUser;
  for (int64_t i = 0; i < h->rows * k; i++) mx = PetscMax(mx, sqrt((double)h->d[i]));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &mx, 1, MPI_DOUBLE, MPI_MAX, comm));
  PetscCall(bo_exactsum_create(1, mx * (double)rows->n * k, &sum));
  for (int64_t t = rows->tile_lo; t < rows->tile_hi; t++) {
    int64_t lo, hi;
    bo_tile_bounds(rows->n, t, &lo, &hi);
    partial = 0;
    for (int64_t i = lo; i < hi; i++)
      for (int c = 0; c < k; c++) partial += sqrt((double)h->d[(i - rows->lo) * k + c]);
    PetscCall(bo_exactsum_add(sum, &partial));
  }
  PetscCall(bo_exactsum_allreduce(comm, sum, &total));
  PetscCall(bo_exactsum_destroy(&sum));
  *mean = total / ((double)rows->n * k);
  PetscFunctionReturn(0);
}

typedef struct {
  int64_t row, col;
  float   w;
} triple;

typedef struct {
  int64_t col;
  float   w;
  int     transposed;
} entry;

static int cmp_entry(const void *a, const void *b)
{
  const entry *x = a, *y = b;
  if (x->col != y->col) return (x->col > y->col) - (x->col < y->col);
  return x->transposed - y->transposed;
}

/* g from the row lists (local x k, each row's neighbours nb and weights wt), symmetrised. */
static PetscErrorCode assemble(MPI_Comm comm, const bo_rows *rows, int k, const int64_t *nb, const float *wt, bo_knn_symmetrize mode, bo_graph *g)
{
  PetscMPIInt  P;
  int64_t      local = bo_rows_local(rows), nin = 0, nent, *start = NULL;
  int         *scount = NULL, *sdispl = NULL, *rcount = NULL, *rdispl = NULL;
  triple      *out = NULL, *in = NULL;
  entry       *ent = NULL;
  MPI_Datatype ttype;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_size(comm, &P));
  g->comm = comm;
  g->rows = *rows;
  if (mode != BO_SYM_NONE) { /* W^T: every (i, j, w) goes to the owner of j as an entry of row j */
    PetscCall(PetscCalloc4(P, &scount, P, &sdispl, P, &rcount, P, &rdispl));
    PetscCall(PetscMalloc1(local * k + 1, &out));
    for (int64_t e = 0; e < local * k; e++) scount[bo_rows_owner(rows->n, P, nb[e])]++;
    for (int r = 1; r < P; r++) sdispl[r] = sdispl[r - 1] + scount[r - 1];
    for (int64_t e = 0; e < local * k; e++) {
      int r = bo_rows_owner(rows->n, P, nb[e]);
      out[sdispl[r]++] = (triple){.row = nb[e], .col = rows->lo + e / k, .w = wt[e]};
    }
    for (int r = 0; r < P; r++) sdispl[r] -= scount[r];
    PetscCallMPI(MPI_Alltoall(scount, 1, MPI_INT, rcount, 1, MPI_INT, comm));
    for (int r = 0; r < P; r++) {
      rdispl[r] = (int)nin;
      nin += rcount[r];
    }
    PetscCheck(nin < INT32_MAX, PETSC_COMM_SELF, BO_ERR_RUNTIME, "knn: %lld transposed entries on one rank; expected fewer than 2^31 (use more ranks)", (long long)nin);
    PetscCall(PetscMalloc1(nin + 1, &in));
    PetscCallMPI(MPI_Type_contiguous((int)sizeof(triple), MPI_BYTE, &ttype));
    PetscCallMPI(MPI_Type_commit(&ttype));
    PetscCallMPI(MPI_Alltoallv(out, scount, sdispl, ttype, in, rcount, rdispl, ttype, comm));
    PetscCallMPI(MPI_Type_free(&ttype));
    PetscCall(PetscFree(out));
    PetscCall(PetscFree4(scount, sdispl, rcount, rdispl));
  }
  /* every row: its own k entries and the transposed ones, by column */
  nent = local * k + nin;
  PetscCall(PetscMalloc1(nent + 1, &ent));
  PetscCall(PetscCalloc1(local + 1, &start));
  for (int64_t i = 0; i < local; i++) start[i + 1] = k;
  for (int64_t e = 0; e < nin; e++) start[in[e].row - rows->lo + 1]++;
  for (int64_t i = 0; i < local; i++) start[i + 1] += start[i];
  for (int64_t i = 0; i < local; i++)
    for (int c = 0; c < k; c++) ent[start[i] + c] = (entry){.col = nb[i * k + c], .w = wt[i * k + c], .transposed = 0};
  {
    int64_t *fill;
    PetscCall(PetscMalloc1(local + 1, &fill));
    for (int64_t i = 0; i < local; i++) fill[i] = start[i] + k;
    for (int64_t e = 0; e < nin; e++) {
      int64_t i = in[e].row - rows->lo;
      ent[fill[i]++] = (entry){.col = in[e].col, .w = in[e].w, .transposed = 1};
    }
    PetscCall(PetscFree(fill));
  }
  PetscCall(PetscFree(in));

  /* merge: a column present both ways combines the two weights, one way only gets half (avg) */
  PetscCall(PetscMalloc1(local + 1, &g->indptr));
  PetscCall(PetscMalloc1(nent + 1, &g->indices));
  PetscCall(PetscMalloc1(nent + 1, &g->data));
  int64_t nnz = 0;
  g->indptr[0] = 0;
  for (int64_t i = 0; i < local; i++) {
    entry *r = ent + start[i];
    int64_t m = start[i + 1] - start[i];
    if (mode != BO_SYM_NONE) qsort(r, (size_t)m, sizeof *r, cmp_entry); /* none: already by column */
    for (int64_t a = 0; a < m; a++) {
      float w = r[a].w;
      if (a + 1 < m && r[a + 1].col == r[a].col) { /* both ways */
        float u = r[a + 1].w;
        w       = mode == BO_SYM_AVG ? 0.5f * (w + u) : PetscMax(w, u);
        a++;
      } else if (mode == BO_SYM_AVG) w = 0.5f * w;
      g->indices[nnz] = r[a].col;
      g->data[nnz++]  = w;
    }
    g->indptr[i + 1] = nnz;
  }
  PetscCall(PetscFree(start));
  PetscCall(PetscFree(ent));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- public */

PetscErrorCode bo_knn_build(MPI_Comm comm, const bo_rows *rows, int64_t d, const float *x, const bo_knn_opts *opts, bo_graph *g)
{
  int      self = opts->count_self ? 1 : 0, k = opts->knn - self;
  int64_t  local = bo_rows_local(rows);
  heaps    h;
  int64_t *nb;
  float   *wt;
  double   scale = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(g, sizeof *g));
  PetscCheck(k >= 1 && (int64_t)opts->knn < rows->n, comm, BO_ERR_INPUT, "knn: %d%s with N = %lld; expected knn < N and at least one neighbour", opts->knn, self ? " (self counted)" : "", (long long)rows->n);
  PetscCheck(d >= 1 && d < INT32_MAX, comm, BO_ERR_INPUT, "knn: D = %lld; expected 1 <= D < 2^31", (long long)d);
  PetscCheck(opts->weights == BO_KNN_BINARY || opts->weights == BO_KNN_GAUSSIAN, comm, PETSC_ERR_ARG_OUTOFRANGE, "knn: weights %d; expected binary or gaussian", (int)opts->weights);
  PetscCheck(opts->symmetrize == BO_SYM_NONE || opts->symmetrize == BO_SYM_AVG || opts->symmetrize == BO_SYM_MAX, comm, PETSC_ERR_ARG_OUTOFRANGE, "knn: symmetrize %d; expected none, avg or max", (int)opts->symmetrize);

  h = (heaps){.k = k, .rows = local};
  PetscCall(PetscMalloc2(local * k + 1, &h.d, local * k + 1, &h.j));
  {
    const int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    PetscErrorCode ierr = find_neighbours(comm, rows, d, x, k, &h);
    openblas_set_num_threads(threads);
    PetscCall(ierr);
  }
  for (int64_t i = 0; i < local; i++) {
    sort_pairs(h.d + i * k, h.j + i * k, k);
    PetscCheck(h.j[i * k + k - 1] != NO_INDEX, PETSC_COMM_SELF, BO_ERR_RUNTIME, "knn: row %lld has fewer than %d neighbours; expected %d (non-finite distances?)", (long long)(rows->lo + i), k, k);
  }

  /* weights, row by row, from the distances */
  PetscCall(PetscMalloc2(local * k + 1, &nb, local * k + 1, &wt));
  if (opts->weights == BO_KNN_GAUSSIAN) {
    scale = opts->scale;
    if (scale <= 0) PetscCall(mean_distance(comm, rows, &h, &scale));
  }
  for (int64_t e = 0; e < local * k; e++) {
    nb[e] = h.j[e];
    if (opts->weights == BO_KNN_BINARY || scale == 0) wt[e] = 1.0f;
    else wt[e] = (float)exp(-(double)h.d[e] / (2.0 * scale * scale));
  }
  PetscCall(PetscFree2(h.d, h.j));
  /* CSR wants each row by column */
  for (int64_t i = 0; i < local; i++)
    for (int a = 1; a < k; a++) {
      int64_t jv = nb[i * k + a];
      float   wv = wt[i * k + a];
      int     b  = a - 1;
      while (b >= 0 && nb[i * k + b] > jv) {
        nb[i * k + b + 1] = nb[i * k + b];
        wt[i * k + b + 1] = wt[i * k + b];
        b--;
      }
      nb[i * k + b + 1] = jv;
      wt[i * k + b + 1] = wv;
    }
  PetscCall(assemble(comm, rows, k, nb, wt, opts->symmetrize, g));
  PetscCall(PetscFree2(nb, wt));
  g->scale = opts->weights == BO_KNN_GAUSSIAN ? scale : 0;
  PetscCall(bo_graph_setup_exchange(g));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_knn_edge_sqdist(bo_graph *g, int64_t d, const float *x, double *sqdist)
{
  float  *ghost;
  int64_t local = bo_rows_local(&g->rows);

  PetscFunctionBeginUser;
  PetscCall(bo_graph_setup_exchange(g));
  PetscCall(PetscMalloc1(g->nghost * d + 1, &ghost));
  PetscCall(bo_graph_gather_ghosts_float(g, d, x, ghost));
  for (int64_t i = 0; i < local; i++) {
    const float *xi = x + i * d;
    for (int64_t e = g->indptr[i]; e < g->indptr[i + 1]; e++) {
      int64_t      s  = g->col_slot[e];
      const float *xj = s >= 0 ? x + s * d : ghost + (-1 - s) * d;
      double       acc = 0;
      for (int64_t c = 0; c < d; c++) {
        double diff = (double)xi[c] - (double)xj[c];
        acc += diff * diff;
      }
      sqdist[e] = acc;
    }
  }
  PetscCall(PetscFree(ghost));
  PetscFunctionReturn(0);
}
