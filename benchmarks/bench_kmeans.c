/* bench_kmeans.c - the kernels of the clustering family, timed on real and synthetic data against
 * in-run references (memory streaming, sgemm) and across rank counts.
 *
 *   mpirun -n P build/benchmarks/bench_kmeans assign FEATURES.h5 [--k 10] [--init INIT.h5] [--reps 15] [--start 0]
 *       On the file's rows (bo_dataset_read): the assignment as K-means runs it
 *       (bo_kmeans_assign_cached, with the row norms of a bo_kmeans_xcache made once, untimed, as
 *       scikit-learn computes its x_squared_norms once per fit), the same without the cache
 *       (bo_kmeans_assign, which computes each row's norm), bo_kmeans_means (hard, the standalone
 *       means of the soft and SLK methods), one K-means iteration as bo_cluster_run does it (the
 *       means from the previous pass's sums, then bo_kmeans_assign_sums: assignment and the next
 *       sums in one pass over X), and, in the same run, the time to stream the shard from memory:
 *       a plain sum of its floats (8 vector lanes, AVX2 clone like the library's kernels), the
 *       floor of any pass over X; and "assign (X in cache)": the cached assignment run over the
 *       shard's first HOT_ROWS rows (in cache) again and again until as many rows as the shard's are
 *       done: the kernel's arithmetic without its memory traffic, plus each call's set-up (the
 *       other floor: with perfect overlap a pass costs max(stream, in cache)).  Prototypes:
 *       /prototypes of INIT.h5 (K x D floats, the peers' initial centroids) or K rows drawn with
 *       bo_kmeans_random (seed 42).  Bounded passes (bo_kmeans_bounds, as bo_cluster_run runs
 *       K-means): "iteration (bounds)", the same Lloyd trajectory with bounds, and "assign
 *       (bounds)", bo_kmeans_assign_bounded on the plain trajectory's prototypes ("assign (bounds,
 *       labels only)": the same without mind, as K-means assigns: rows proven by their bounds are
 *       not read), each checked
 *       bit for bit against the plain pass of the same repetition (else the benchmark stops), with
 *       the share of rows skipped and of tile partials replaced.  Each repetition is one more
 *       Lloyd pass; --start S runs S passes untimed first, to time a later part of the run.  The
 *       iterations' lines also list every pass's time ("pass_seconds", in pass order) and their
 *       mean ("mean_ratio": mean / the stream's median): with --reps covering a whole run, the
 *       cost per iteration that a job sees (kmeans_passes.py combines rounds pass by pass).
 *   mpirun -n P build/benchmarks/bench_kmeans synthetic [--n 2000000] [--d 128] [--k 1000] [--reps 3] [--block 8192]
 *       The same assignment on an N x D matrix generated in memory (never stored) with the
 *       project's Philox streams: row i is centre c_i plus uniform noise, c_i and the noise drawn
 *       from the stream (seed 42, i), so each rank generates exactly its own rows (tile
 *       partition).  Prototypes: the K centres, each perturbed.  Reference: cblas_sgemm of the
 *       same shapes in the same run, (a) tile by tile (BO_TILE_ROWS x D times D x K, what the
 *       assignment calls per tile) and (b) in blocks of --block rows (a larger M, closer to
 *       the BLAS peak).  GFlop/s = 2 N D K / seconds (the distance products; the argmin is free).
 *   mpirun -n P build/benchmarks/bench_kmeans bound FEATURES.h5 GRAPH.h5 [--k 10] [--init INIT.h5] [--its 20] [--reps 5] [--lambda 1.3]
 *       bo_bound_run on the kNN graph of GRAPH.h5 (task knn) with A = |x - m|^2 for the K
 *       prototypes, Y0 = softmax(-A), tol < 0 so that exactly --its bound iterations run (each one
 *       ghost exchange + W*Y + energy + step); plus one bo_graph_gather_ghosts and one
 *       bo_graph_spmm alone.  Bytes per iteration from the exchange plan: each rank receives
 *       nghost x K doubles and sends nsend x K doubles.
 *
 * Every time is the median over --reps of the max over ranks of one call between barriers
 * (MPI_Wtime); the calls of one mode are interleaved (each repetition runs each once), so that
 * a change of load on the shared machine hits a kernel and its reference alike.  The assign mode
 * also reports the same medians of the process CPU time ("cpu_ratio"), which leave out the time
 * other jobs held the core.  OpenBLAS runs one thread per rank (openblas_set_num_threads(1)), as
 * in boundopt.  Output: one JSON line per case on rank 0's stdout, with "ratio" = time / reference
 * time ("peer" names the reference), and the load average when the case ended.
 */
#include "boundopt/bound.h"
#include "boundopt/dataset.h"
#include "boundopt/error.h"
#include "boundopt/graph.h"
#include "boundopt/h5.h"
#include "boundopt/kmeans.h"
#include "boundopt/memory.h"
#include "boundopt/rng.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_support.h"

#define MAX_REPS 101
#define HOT_ROWS BO_TILE_ROWS /* one tile (0.8 MB at D = 784, in L2/L3): fewer rows per call and the calls' set-up (prototype copy and norms, ~6 us) shows */

typedef struct {
  const char *mode, *features, *graph, *init;
  int64_t     n, d, k, block;
  int         reps, its, start;
  double      lambda;
  PetscMPIInt rank, size;
} args_t;

/* ---------------------------------------------------------------- timed operations */

typedef enum { OP_ASSIGN, OP_ASSIGN_IN_CACHE, OP_ASSIGN_NO_CACHE, OP_MEANS, OP_ITERATION, OP_ITERATION_BOUNDS, OP_ASSIGN_BOUNDS, OP_ASSIGN_LABELS, OP_STREAM, OP_SGEMM_TILE, OP_SGEMM_BLOCK, OP_BOUND, OP_GATHER, OP_SPMM } op_t;

typedef struct {
  const args_t *a;
  bo_rows       rows;
  int64_t       d, k;
  const float  *x;
  float        *m, *m_work, *g, *m_iter;
  int32_t      *labels, *labels_iter;
  double       *mind, *weight, *sums_iter, *weight_iter;
  /* the same Lloyd chain with bounds (OP_ITERATION_BOUNDS), one pass behind or level with it */
  float        *m_bnd;
  int32_t      *labels_bnd;
  double       *mind_iter, *sums_bnd, *weight_bnd;
  bo_kmeans_bounds kb, kb_assign, kb_labels; /* the fused chain's; OP_ASSIGN_BOUNDS's and OP_ASSIGN_LABELS's (on the plain chain's prototypes) */
  int32_t      *labels_ab, *labels_al;
  double       *mind_ab;
  int64_t       skipped, resummed, bounded_passes, skipped_ab, skipped_al; /* local rows skipped, (tile, cluster) partials replaced over the timed passes */
  bo_kmeans_xcache xc;
  bo_rows       hot_rows; /* the shard's first rows, few enough to stay in cache (OP_ASSIGN_IN_CACHE) */
  bo_kmeans_xcache hot_xc;
  volatile float sink;
  /* bound */
  bo_graph     *w;
  double       *A, *y0, *y, *ghosts, *b;
  int           bound_its;
} ctx_t;

/* The floor of a pass over X: every float of the shard summed in 8 lanes. */
__attribute__((target_clones("arch=x86-64-v3", "default")))
static float stream_sum(int64_t count, const float *x)
{
  float   lane[8] = {0};
  int64_t i       = 0;
  for (; i + 8 <= count; i += 8)
    for (int l = 0; l < 8; l++) lane[l] += x[i + l];
  for (; i < count; i++) lane[0] += x[i];
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

static PetscErrorCode run_op(ctx_t *c, op_t op)
{
  int64_t local = bo_rows_local(&c->rows), d = c->d, k = c->k;

  PetscFunctionBeginUser;
  switch (op) {
  case OP_ASSIGN:
    PetscCall(bo_kmeans_assign_cached(&c->rows, d, c->x, &c->xc, k, c->m, c->labels, c->mind));
    break;
  case OP_ASSIGN_IN_CACHE: /* as many rows as the shard, but the same few again and again: the arithmetic without the memory */
    for (int64_t done = 0; done < local; done += bo_rows_local(&c->hot_rows))
      PetscCall(bo_kmeans_assign_cached(&c->hot_rows, d, c->x, &c->hot_xc, k, c->m, c->labels, c->mind));
    break;
  case OP_ASSIGN_NO_CACHE:
    PetscCall(bo_kmeans_assign(&c->rows, d, c->x, k, c->m, c->labels, c->mind));
    break;
  case OP_MEANS: /* on a copy, so that every repetition starts from the same prototypes */
    PetscCall(PetscArraycpy(c->m_work, c->m, k * d));
    PetscCall(bo_kmeans_means(PETSC_COMM_WORLD, &c->rows, d, c->x, k, c->labels, NULL, c->m_work, c->weight));
    break;
  case OP_ITERATION: /* one outer K-means iteration of bo_cluster_run: the means from the last pass's sums, then the fused pass */
    bo_kmeans_means_from_sums(k, d, c->sums_iter, c->weight_iter, c->m_iter);
    PetscCall(bo_kmeans_assign_sums(PETSC_COMM_WORLD, &c->rows, d, c->x, &c->xc, k, c->m_iter, c->labels_iter, c->mind_iter, c->sums_iter, c->weight_iter, NULL));
    break;
  case OP_ITERATION_BOUNDS: /* the same pass with bounds, checked against OP_ITERATION's (run just before: the same pass) */
    bo_kmeans_means_from_sums(k, d, c->sums_bnd, c->weight_bnd, c->m_bnd);
    /* no mind, as bo_cluster_run's K-means: rows whose bounds prove their label are not read */
    PetscCall(bo_kmeans_assign_sums(PETSC_COMM_WORLD, &c->rows, d, c->x, &c->xc, k, c->m_bnd, c->labels_bnd, NULL, c->sums_bnd, c->weight_bnd, &c->kb));
    PetscCheck(!memcmp(c->labels_bnd, c->labels_iter, sizeof *c->labels_bnd * (size_t)local) && !memcmp(c->sums_bnd, c->sums_iter, sizeof *c->sums_bnd * (size_t)(k * d)) &&
                 !memcmp(c->weight_bnd, c->weight_iter, sizeof *c->weight_bnd * (size_t)k), PETSC_COMM_SELF, BO_ERR_RUNTIME, "bench_kmeans: the bounded pass differs from the plain one; expected the same bits");
    c->skipped += c->kb.skipped; c->resummed += c->kb.replaced; c->bounded_passes++;
    break;
  case OP_ASSIGN_BOUNDS: /* the assignment alone with bounds, on the prototypes of OP_ITERATION's pass (run just before) */
    PetscCall(bo_kmeans_assign_bounded(&c->rows, d, c->x, &c->xc, k, c->m_iter, c->labels_ab, c->mind_ab, &c->kb_assign));
    PetscCheck(!memcmp(c->labels_ab, c->labels_iter, sizeof *c->labels_ab * (size_t)local) && !memcmp(c->mind_ab, c->mind_iter, sizeof *c->mind_ab * (size_t)local), PETSC_COMM_SELF, BO_ERR_RUNTIME,
               "bench_kmeans: the bounded assignment differs from the plain pass; expected the same bits");
    c->skipped_ab += c->kb_assign.skipped;
    break;
  case OP_ASSIGN_LABELS: /* the same with labels only (no mind), as K-means assigns: rows proven by their bounds are not read */
    PetscCall(bo_kmeans_assign_bounded(&c->rows, d, c->x, &c->xc, k, c->m_iter, c->labels_al, NULL, &c->kb_labels));
    PetscCheck(!memcmp(c->labels_al, c->labels_iter, sizeof *c->labels_al * (size_t)local), PETSC_COMM_SELF, BO_ERR_RUNTIME, "bench_kmeans: the labels-only bounded assignment differs from the plain pass; expected the same labels");
    c->skipped_al += c->kb_labels.skipped;
    break;
  case OP_STREAM:
    c->sink = stream_sum(local * d, c->x);
    break;
  case OP_SGEMM_TILE:
  case OP_SGEMM_BLOCK: {
    int64_t step = op == OP_SGEMM_TILE ? BO_TILE_ROWS : c->a->block;
    for (int64_t lo = 0; lo < local; lo += step) {
      int64_t rows = PetscMin(step, local - lo);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)k, (int)d, 1.0f, c->x + lo * d, (int)d, c->m, (int)d, 0.0f, c->g, (int)k);
    }
    c->sink = c->g[0];
  } break;
  case OP_BOUND: {
    bo_bound_opts o = {.lambda = c->a->lambda, .max_it = c->a->its, .tol = -1.0}; /* tol < 0: never stops early */
    double        energy;
    PetscCall(PetscArraycpy(c->y, c->y0, local * k));
    PetscCall(bo_bound_run(&c->rows, k, c->A, c->w, &o, c->y, &energy, &c->bound_its));
  } break;
  case OP_GATHER:
    PetscCall(bo_graph_gather_ghosts(c->w, k, c->y0, c->ghosts));
    break;
  case OP_SPMM:
    bo_graph_spmm(c->w, k, c->y0, c->ghosts, c->b);
    break;
  }
  PetscFunctionReturn(0);
}

/* Several ops, interleaved: each repetition runs every op once, in order, so that a change of
 * machine load (the machine is shared) hits an op and its reference alike.  seconds[j] = median
 * over reps of the max over ranks of one run of ops[j] between barriers, after one untimed
 * warm-up round; cpu[j] (if not NULL) the same for the process CPU time, which leaves out the
 * time other jobs held the core (a steadier figure on a loaded machine, not a replacement). */
#define MAX_OPS 10
static double cpu_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static PetscErrorCode time_ops(ctx_t *c, const op_t *ops, int nops, int reps, double *seconds, double *cpu, double (*each)[MAX_REPS])
{
  double t[MAX_OPS][MAX_REPS], tc[MAX_OPS][MAX_REPS];

  PetscFunctionBeginUser;
  for (int j = 0; j < nops; j++) PetscCall(run_op(c, ops[j]));
  for (int r = 0; r < reps; r++)
    for (int j = 0; j < nops; j++) {
      PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
      double t0 = MPI_Wtime(), c0 = cpu_now();
      PetscCall(run_op(c, ops[j]));
      double local[2] = {MPI_Wtime() - t0, cpu_now() - c0}, all[2];
      PetscCallMPI(MPI_Allreduce(local, all, 2, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));
      t[j][r] = all[0]; tc[j][r] = all[1];
    }
  for (int j = 0; j < nops; j++) {
    if (each) PetscCall(PetscArraycpy(each[j], t[j], reps)); /* before median() sorts them */
    seconds[j] = median(t[j], reps);
    if (cpu) cpu[j] = median(tc[j], reps);
  }
  PetscFunctionReturn(0);
}

/* /prototypes (else /features) of an init file: K x D floats, replicated. */
static PetscErrorCode read_init(const char *path, int64_t k, int64_t d, float *m)
{
  hid_t      f;
  bo_h5_info info;
  PetscBool  has;
  const char *name = "/prototypes";

  PetscFunctionBeginUser;
  PetscCall(bo_h5_open_read(PETSC_COMM_WORLD, path, &f));
  PetscCall(bo_h5_exists(f, name, &has));
  if (!has) name = "/features";
  PetscCall(bo_h5_dataset_info(f, path, name, &info));
  PetscCheck(info.rank == 2 && (int64_t)info.dims[0] == k && (int64_t)info.dims[1] == d, PETSC_COMM_WORLD, BO_ERR_INPUT, "%s%s: %lld x %lld; expected K x D = %lld x %lld", path, name,
             (long long)info.dims[0], (long long)(info.rank > 1 ? info.dims[1] : 0), (long long)k, (long long)d);
  PetscCall(bo_h5_read_array(f, name, H5T_NATIVE_FLOAT, m));
  PetscCall(bo_h5_close(&f));
  PetscFunctionReturn(0);
}

static PetscErrorCode seed_prototypes(const args_t *a, const bo_dataset *ds, float *m)
{
  PetscFunctionBeginUser;
  if (a->init) PetscCall(read_init(a->init, a->k, ds->d, m));
  else PetscCall(bo_kmeans_random(PETSC_COMM_WORLD, &ds->rows, ds->d, ds->x, a->k, 42, m));
  PetscFunctionReturn(0);
}

static void json_head(const args_t *a, const char *bench, const char *name, int64_t n, int64_t d, int64_t k)
{
  printf("{\"bench\":\"%s\",\"case\":\"%s\",\"ranks\":%d,\"n\":%lld,\"d\":%lld,\"k\":%lld,\"reps\":%d,", bench, name, a->size, (long long)n, (long long)d, (long long)k, a->reps);
}

/* ---------------------------------------------------------------- assign: real data */

static PetscErrorCode bench_assign(args_t *a)
{
  bo_dataset           ds;
  bo_dataset_read_opts ro = {.check_finite = PETSC_TRUE};
  ctx_t                c  = {.a = a};
  double               t_assign, t_hot, t_nocache, t_means, t_iter, t_bnd, t_abnd, t_alab, t_stream, t_tile, t_cache, cpu[10];
  static double        each[MAX_OPS][MAX_REPS]; /* every repetition's time: the passes of a run */

  PetscFunctionBeginUser;
  PetscCall(bo_dataset_read(PETSC_COMM_WORLD, a->features, &ro, &ds));
  int64_t local = bo_rows_local(&ds.rows);
  c.rows = ds.rows; c.d = ds.d; c.k = a->k; c.x = ds.x;
  PetscCheck(a->k >= 1 && a->k <= ds.n, PETSC_COMM_WORLD, BO_ERR_INPUT, "--k %lld with N = %lld; expected 1 <= K <= N", (long long)a->k, (long long)ds.n);
  PetscCall(PetscMalloc6(a->k * ds.d, &c.m, a->k * ds.d, &c.m_work, PetscMax(1, local), &c.labels, PetscMax(1, local), &c.mind, a->k, &c.weight, BO_TILE_ROWS * a->k, &c.g));
  PetscCall(PetscMalloc4(a->k * ds.d, &c.m_iter, PetscMax(1, local), &c.labels_iter, a->k * ds.d, &c.sums_iter, a->k, &c.weight_iter));
  PetscCall(PetscMalloc5(a->k * ds.d, &c.m_bnd, PetscMax(1, local), &c.labels_bnd, PetscMax(1, local), &c.mind_iter, a->k * ds.d, &c.sums_bnd, a->k, &c.weight_bnd));
  PetscCall(bo_kmeans_bounds_create(&ds.rows, ds.d, a->k, &c.kb));
  PetscCall(bo_kmeans_bounds_create(&ds.rows, ds.d, a->k, &c.kb_assign));
  PetscCall(bo_kmeans_bounds_create(&ds.rows, ds.d, a->k, &c.kb_labels));
  PetscCall(PetscMalloc3(PetscMax(1, local), &c.labels_ab, PetscMax(1, local), &c.mind_ab, PetscMax(1, local), &c.labels_al));
  PetscCall(seed_prototypes(a, &ds, c.m));
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  double t0 = MPI_Wtime();
  PetscCall(bo_kmeans_xcache_create(PETSC_COMM_WORLD, &ds.rows, ds.d, ds.x, &c.xc));
  double tl = MPI_Wtime() - t0;
  PetscCallMPI(MPI_Allreduce(&tl, &t_cache, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));
  bo_rows_partition(PetscMin(HOT_ROWS, local), 0, 1, &c.hot_rows);
  PetscCall(bo_kmeans_xcache_create(PETSC_COMM_SELF, &c.hot_rows, ds.d, ds.x, &c.hot_xc));
  /* the iteration's trajectory starts at the first pass from c.m (the job's first iteration) */
  PetscCall(PetscArraycpy(c.m_iter, c.m, a->k * ds.d));
  PetscCall(PetscArraycpy(c.m_bnd, c.m, a->k * ds.d));
  PetscCall(bo_kmeans_assign_sums(PETSC_COMM_WORLD, &ds.rows, ds.d, ds.x, &c.xc, a->k, c.m_iter, c.labels_iter, c.mind_iter, c.sums_iter, c.weight_iter, NULL));
  PetscCall(bo_kmeans_assign_sums(PETSC_COMM_WORLD, &ds.rows, ds.d, ds.x, &c.xc, a->k, c.m_bnd, c.labels_bnd, NULL, c.sums_bnd, c.weight_bnd, &c.kb)); /* no mind, as the timed passes */
  PetscCall(bo_kmeans_assign_bounded(&ds.rows, ds.d, ds.x, &c.xc, a->k, c.m_iter, c.labels_ab, c.mind_ab, &c.kb_assign));
  PetscCall(bo_kmeans_assign_bounded(&ds.rows, ds.d, ds.x, &c.xc, a->k, c.m_iter, c.labels_al, NULL, &c.kb_labels));
  for (int s = 0; s < a->start; s++) { /* --start: the chains advanced untimed, level */
    PetscCall(run_op(&c, OP_ITERATION));
    PetscCall(run_op(&c, OP_ITERATION_BOUNDS));
    PetscCall(run_op(&c, OP_ASSIGN_BOUNDS));
    PetscCall(run_op(&c, OP_ASSIGN_LABELS));
  }
  c.skipped = c.resummed = c.bounded_passes = c.skipped_ab = c.skipped_al = 0;
  { /* assign leaves the labels of c.m for means; the iterations have their own labels and sums */
    const op_t ops[] = {OP_STREAM, OP_SGEMM_TILE, OP_ASSIGN, OP_ASSIGN_IN_CACHE, OP_ASSIGN_NO_CACHE, OP_MEANS, OP_ITERATION, OP_ITERATION_BOUNDS, OP_ASSIGN_BOUNDS, OP_ASSIGN_LABELS};
    double     t[10];
    PetscCall(time_ops(&c, ops, 10, a->reps, t, cpu, each));
    t_stream = t[0]; t_tile = t[1]; t_assign = t[2]; t_hot = t[3]; t_nocache = t[4]; t_means = t[5]; t_iter = t[6]; t_bnd = t[7]; t_abnd = t[8]; t_alab = t[9];
  }
  int64_t counts[4] = {c.skipped, c.resummed, c.skipped_ab, c.skipped_al};
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, counts, 4, MPI_INT64_T, MPI_SUM, PETSC_COMM_WORLD));
  if (!a->rank) {
    double gb = (double)ds.n * (double)ds.d * 4 / 1e9, fl = 2.0 * (double)ds.n * (double)ds.d * (double)a->k, la = loadavg();
    const char *peer = "stream X: sum of the shard's floats";
    struct { const char *name; double t, cpu; int flops; } cs[] = {{"assign", t_assign, cpu[2], 1}, {"assign (X in cache)", t_hot, cpu[3], 1}, {"assign (no cache)", t_nocache, cpu[4], 1}, {"means", t_means, cpu[5], 0}, {"iteration", t_iter, cpu[6], 1}, {"iteration (bounds)", t_bnd, cpu[7], 1}, {"assign (bounds)", t_abnd, cpu[8], 1}, {"assign (bounds, labels only)", t_alab, cpu[9], 1}};
    for (int i = 0; i < 8; i++) {
      json_head(a, "kmeans_kernels", cs[i].name, ds.n, ds.d, a->k);
      printf("\"data\":\"%s\",\"seconds\":%.6f,\"gflops\":%.2f,\"x_gb_per_s\":%.2f,\"peer\":\"%s\",\"peer_seconds\":%.6f,\"peer_gb_per_s\":%.2f,\"ratio\":%.3f,"
             "\"cpu_seconds\":%.6f,\"peer_cpu_seconds\":%.6f,\"cpu_ratio\":%.3f,\"sgemm_tile_seconds\":%.6f,\"sgemm_tile_gflops\":%.2f,\"xcache_seconds\":%.6f,",
             a->features, cs[i].t, cs[i].flops ? fl / cs[i].t / 1e9 : 0.0, gb / cs[i].t, peer, t_stream, gb / t_stream, cs[i].t / t_stream, cs[i].cpu, cpu[0], cs[i].cpu / cpu[0],
             t_tile, fl / t_tile / 1e9, t_cache);
      if (i >= 4) printf("\"passes\":\"%d-%d\",", a->start + 3, a->start + a->reps + 2); /* pass 1 from the seeds, one warm-up */
      if (i == 5) printf("\"skipped_rows\":%.4f,\"replaced_partials\":%.4f,", (double)counts[0] / ((double)ds.n * (double)PetscMax(1, c.bounded_passes)), (double)counts[1] / ((double)ds.rows.ntiles * (double)a->k * (double)PetscMax(1, c.bounded_passes)));
      if (i >= 6) printf("\"skipped_rows\":%.4f,", (double)counts[i - 4] / ((double)ds.n * (double)PetscMax(1, c.bounded_passes)));
      if (i >= 4) { /* each pass's time, in pass order, and their mean: what a run costs per iteration */
        double sum = 0;
        printf("\"pass_seconds\":[");
        for (int r = 0; r < a->reps; r++) { printf("%s%.6f", r ? "," : "", each[i + 2][r]); sum += each[i + 2][r]; }
        printf("],\"mean_seconds\":%.6f,\"mean_ratio\":%.3f,", sum / a->reps, sum / a->reps / t_stream);
      }
      printf("\"load\":%.2f}\n", la);
    }
    fflush(stdout);
  }
  PetscCall(PetscFree6(c.m, c.m_work, c.labels, c.mind, c.weight, c.g));
  PetscCall(PetscFree4(c.m_iter, c.labels_iter, c.sums_iter, c.weight_iter));
  PetscCall(PetscFree5(c.m_bnd, c.labels_bnd, c.mind_iter, c.sums_bnd, c.weight_bnd));
  PetscCall(bo_kmeans_bounds_destroy(&c.kb));
  PetscCall(bo_kmeans_bounds_destroy(&c.kb_assign));
  PetscCall(bo_kmeans_bounds_destroy(&c.kb_labels));
  PetscCall(PetscFree3(c.labels_ab, c.mind_ab, c.labels_al));
  PetscCall(bo_kmeans_xcache_destroy(&c.xc));
  PetscCall(bo_kmeans_xcache_destroy(&c.hot_xc));
  PetscCall(bo_dataset_destroy(&ds));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- synthetic: large K */

enum { RNG_CENTRES = 11, RNG_ROWS = 12, RNG_PROTOS = 13 };

static PetscErrorCode bench_synthetic(args_t *a)
{
  ctx_t          c = {.a = a};
  bo_rows        rows;
  float         *x, *centres;
  double         t_assign, t_tile, t_block, t_gen;
  int64_t        n = a->n, d = a->d, k = a->k;
  bo_memory_plan plan = {.task = "bench_kmeans synthetic"};

  PetscFunctionBeginUser;
  PetscCheck(n >= 1 && d >= 1 && k >= 1 && k <= n && a->block >= 1, PETSC_COMM_WORLD, BO_ERR_INPUT, "--n %lld --d %lld --k %lld --block %lld; expected 1 <= K <= N, D >= 1, block >= 1", (long long)n, (long long)d, (long long)k, (long long)a->block);
  bo_rows_partition(n, a->rank, a->size, &rows);
  int64_t local = bo_rows_local(&rows), gblock = PetscMax(a->block, BO_TILE_ROWS);
  bo_memory_plan_add(&plan, "X shard", (double)local * (double)d * 4);
  bo_memory_plan_add(&plan, "labels and distances", (double)local * 12);
  bo_memory_plan_add(&plan, "sgemm block output", (double)gblock * (double)k * 4);
  bo_memory_plan_add(&plan, "centres and prototypes", 3.0 * (double)k * (double)d * 4);
  PetscCall(bo_memory_preflight(PETSC_COMM_WORLD, &plan, 0));
  PetscCall(PetscMalloc6(PetscMax(1, local * d), &x, k * d, &centres, k * d, &c.m, PetscMax(1, local), &c.labels, PetscMax(1, local), &c.mind, gblock * k, &c.g));

  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  double t0 = MPI_Wtime();
  for (int64_t cc = 0; cc < k; cc++) { /* centres in [-1, 1]^D, the same on every rank */
    bo_rng r;
    bo_rng_init(&r, 42, (uint64_t)cc, RNG_CENTRES);
    for (int64_t j = 0; j < d; j++) centres[cc * d + j] = (float)(2 * bo_rng_uniform(&r) - 1);
  }
  for (int64_t i = 0; i < local; i++) { /* row = its centre + uniform noise of width 0.5 */
    bo_rng r;
    bo_rng_init(&r, 42, (uint64_t)(rows.lo + i), RNG_ROWS);
    const float *ctr = centres + bo_rng_below(&r, (uint64_t)k) * d;
    for (int64_t j = 0; j < d; j += 2) { /* two noise values per 64-bit draw */
      uint64_t u = bo_rng_u64(&r);
      x[i * d + j] = ctr[j] + (float)((double)(u & 0xffffffffu) * 0x1p-32 - 0.5) * 0.5f;
      if (j + 1 < d) x[i * d + j + 1] = ctr[j + 1] + (float)((double)(u >> 32) * 0x1p-32 - 0.5) * 0.5f;
    }
  }
  for (int64_t cc = 0; cc < k; cc++) { /* prototypes: the centres, perturbed */
    bo_rng r;
    bo_rng_init(&r, 42, (uint64_t)cc, RNG_PROTOS);
    for (int64_t j = 0; j < d; j++) c.m[cc * d + j] = centres[cc * d + j] + (float)(bo_rng_uniform(&r) - 0.5) * 0.1f;
  }
  double tl = MPI_Wtime() - t0;
  PetscCallMPI(MPI_Allreduce(&tl, &t_gen, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));

  c.rows = rows; c.d = d; c.k = k; c.x = x;
  {
    const op_t ops[] = {OP_SGEMM_TILE, OP_ASSIGN_NO_CACHE, OP_SGEMM_BLOCK}; /* bo_kmeans_assign: one pass, nothing cached */
    double     t[3];
    PetscCall(time_ops(&c, ops, 3, a->reps, t, NULL, NULL));
    t_tile = t[0]; t_assign = t[1]; t_block = t[2];
  }
  if (!a->rank) {
    double fl = 2.0 * (double)n * (double)d * (double)k / 1e9, la = loadavg();
    struct { const char *peer; double t; } ps[] = {{"cblas_sgemm per tile of 256 rows", t_tile}, {"cblas_sgemm per block of rows", t_block}};
    for (int i = 0; i < 2; i++) {
      json_head(a, "kmeans_large", "assign", n, d, k);
      printf("\"data\":\"synthetic (Philox, generated per rank in %.2f s)\",\"x_gbytes\":%.3f,\"seconds\":%.4f,\"gflops\":%.2f,\"peer\":\"%s\",\"peer_rows\":%lld,\"peer_seconds\":%.4f,\"peer_gflops\":%.2f,\"ratio\":%.3f,\"load\":%.2f}\n",
             t_gen, (double)n * (double)d * 4 / 1e9, t_assign, fl / t_assign, ps[i].peer, (long long)(i ? a->block : BO_TILE_ROWS), ps[i].t, fl / ps[i].t, (fl / t_assign) / (fl / ps[i].t), la);
    }
    fflush(stdout);
  }
  PetscCall(PetscFree6(x, centres, c.m, c.labels, c.mind, c.g));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- bound: kNN graph */

static PetscErrorCode bench_bound(args_t *a)
{
  bo_dataset           ds;
  bo_dataset_read_opts ro = {.check_finite = PETSC_TRUE};
  bo_graph             g  = {0};
  ctx_t                c  = {.a = a};
  double               t_bound, t_gather, t_spmm;

  PetscFunctionBeginUser;
  PetscCheck(a->its >= 1, PETSC_COMM_WORLD, BO_ERR_INPUT, "--its %d; expected at least 1 bound iteration", a->its);
  PetscCall(bo_dataset_read(PETSC_COMM_WORLD, a->features, &ro, &ds));
  int64_t local = bo_rows_local(&ds.rows), k = a->k;
  PetscCall(bo_graph_read(PETSC_COMM_WORLD, a->graph, &ds.rows, &g));
  PetscCall(bo_graph_setup_exchange(&g));
  c.rows = ds.rows; c.d = ds.d; c.k = k; c.x = ds.x; c.w = &g;
  PetscCall(PetscMalloc1(k * ds.d, &c.m));
  PetscCall(PetscMalloc5(PetscMax(1, local * k), &c.A, PetscMax(1, local * k), &c.y0, PetscMax(1, local * k), &c.y, PetscMax(1, g.nghost * k), &c.ghosts, PetscMax(1, local * k), &c.b));
  PetscCall(seed_prototypes(a, &ds, c.m));
  PetscCall(bo_kmeans_sqdist(&ds.rows, ds.d, ds.x, k, c.m, c.A));
  bo_bound_softmax(local, k, c.A, c.y0);
  {
    const op_t ops[] = {OP_BOUND, OP_GATHER, OP_SPMM};
    double     t[3];
    PetscCall(time_ops(&c, ops, 3, a->reps, t, NULL, NULL));
    t_bound = t[0]; t_gather = t[1]; t_spmm = t[2];
  }

  /* exchange plan: rows received (nghost) and sent (nsend) per rank, and edges */
  int64_t mine[3] = {g.nghost, g.nsend, g.indptr[local]}, tot[3], mx[3];
  PetscCallMPI(MPI_Allreduce(mine, tot, 3, MPI_INT64_T, MPI_SUM, PETSC_COMM_WORLD));
  PetscCallMPI(MPI_Allreduce(mine, mx, 3, MPI_INT64_T, MPI_MAX, PETSC_COMM_WORLD));
  if (!a->rank) {
    double per_it = t_bound / a->its, la = loadavg();
    json_head(a, "bound", "bound_iteration", ds.n, ds.d, k);
    printf("\"graph\":\"%s\",\"edges\":%lld,\"lambda\":%g,\"its\":%d,\"seconds_total\":%.5f,\"seconds\":%.6f,\"gather_seconds\":%.6f,\"spmm_seconds\":%.6f,"
           "\"ghost_rows_total\":%lld,\"ghost_rows_max\":%lld,\"send_rows_total\":%lld,\"bytes_per_iteration\":%lld,\"bytes_per_iteration_max_rank\":%lld,"
           "\"peer\":\"one ghost exchange + W*Y alone\",\"peer_seconds\":%.6f,\"ratio\":%.3f,\"load\":%.2f}\n",
           a->graph, (long long)tot[2], a->lambda, c.bound_its, t_bound, per_it, t_gather, t_spmm, (long long)tot[0], (long long)mx[0], (long long)tot[1], (long long)(tot[0] * k * 8), (long long)(mx[0] * k * 8),
           t_gather + t_spmm, per_it / (t_gather + t_spmm), la);
    fflush(stdout);
  }
  PetscCall(PetscFree(c.m));
  PetscCall(PetscFree5(c.A, c.y0, c.y, c.ghosts, c.b));
  PetscCall(bo_graph_destroy(&g));
  PetscCall(bo_dataset_destroy(&ds));
  PetscFunctionReturn(0);
}

/* ---------------------------------------------------------------- main */

static int parse(int argc, char **argv, args_t *a)
{
  int i = 2, npos = 0;
  if (argc < 2) return 0;
  a->mode = argv[1];
  if (!strcmp(a->mode, "synthetic")) { a->n = 2000000; a->d = 128; a->k = 1000; a->reps = 3; }
  else if (!strcmp(a->mode, "assign")) { a->k = 10; a->reps = 15; }
  else if (!strcmp(a->mode, "bound")) { a->k = 10; a->reps = 5; }
  else return 0;
  for (; i < argc; i++) {
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
    else if (!strcmp(key, "--n")) a->n = atoll(v);
    else if (!strcmp(key, "--d")) a->d = atoll(v);
    else if (!strcmp(key, "--reps")) a->reps = atoi(v);
    else if (!strcmp(key, "--its")) a->its = atoi(v);
    else if (!strcmp(key, "--start")) a->start = atoi(v);
    else if (!strcmp(key, "--block")) a->block = atoll(v);
    else if (!strcmp(key, "--lambda")) a->lambda = atof(v);
    else if (!strcmp(key, "--init")) a->init = v;
    else return 0;
  }
  if (a->reps < 1 || a->reps > MAX_REPS || a->start < 0) return 0;
  if (!strcmp(a->mode, "assign")) return npos == 1;
  if (!strcmp(a->mode, "bound")) return npos == 2;
  return npos == 0;
}

int main(int argc, char **argv)
{
  args_t         a = {.its = 20, .lambda = 1.3, .block = 8192};
  PetscErrorCode ierr;
  int            rank;

  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (!parse(argc, argv, &a)) {
    if (!rank)
      fprintf(stderr, "bench_kmeans: usage: mpirun -n P bench_kmeans assign FEATURES.h5 [--k K] [--init INIT.h5] [--reps R] [--start S] | synthetic [--n N] [--d D] [--k K] [--reps R] [--block B] | "
                      "bound FEATURES.h5 GRAPH.h5 [--k K] [--init INIT.h5] [--its I] [--reps R] [--lambda L]; expected one of the three modes\n");
    MPI_Finalize();
    return 1;
  }
  openblas_set_num_threads(1);
  ierr = PetscInitializeNoArguments();
  if (ierr) MPI_Abort(MPI_COMM_WORLD, 2);
  MPI_Comm_rank(PETSC_COMM_WORLD, &a.rank);
  MPI_Comm_size(PETSC_COMM_WORLD, &a.size);
  ierr = bo_error_push_handler();
  if (!ierr) ierr = bo_h5_init();
  if (!ierr) {
    if (!strcmp(a.mode, "assign")) ierr = bench_assign(&a);
    else if (!strcmp(a.mode, "synthetic")) ierr = bench_synthetic(&a);
    else ierr = bench_bound(&a);
  }
  if (ierr) bo_error_exit(ierr);
  PetscFinalize();
  MPI_Finalize();
  return 0;
}
