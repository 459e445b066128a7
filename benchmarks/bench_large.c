/* bench_large - the large synthetic cases of the clustering issue, generated in memory (not stored):
 *
 *   mpirun -n P build/benchmarks/bench_large kmeans [N D K ITERS]   K-means, default 2,000,000 x 128, K = 1000
 *   mpirun -n P build/benchmarks/bench_large slk    [N D K ITERS]   SLK-Means, default 2,000,000 x 128, K = 100
 *
 * Rows come from the project's Philox streams keyed by the row id (K Gaussian blobs), so every rank
 * generates only its own shard and the data is the same at any rank count.  SLK needs a graph: an
 * exact kNN graph of 2,000,000 rows is ~5e14 flops (hours on 2 cores), so this benchmark uses a
 * synthetic symmetric graph with the same sparsity as a symmetrised 5-NN graph (each row linked to
 * rows i-2, i-1, i+1, i+2 mod N, weight 1): it measures what SLK itself costs in time and memory.
 * Prints one JSON line: seconds per outer iteration, per assignment/bound step, max RSS per rank.
 */
#include "boundopt/cluster.h"
#include "boundopt/kmeans.h"
#include "boundopt/rng.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

void openblas_set_num_threads(int);

static void make_rows(const bo_rows *rows, int64_t d, int64_t k, float *x)
{
  for (int64_t i = rows->lo; i < rows->hi; i++) {
    bo_rng r, c;
    bo_rng_init(&r, 7, (uint64_t)i, 1);
    bo_rng_init(&c, 7, (uint64_t)(i % k), 2); /* the blob centre of row i */
    for (int64_t j = 0; j < d; j++) x[(i - rows->lo) * d + j] = (float)(3.0 * bo_rng_normal(&c) + bo_rng_normal(&r));
  }
}

static PetscErrorCode ring_graph(MPI_Comm comm, const bo_rows *rows, bo_graph *g)
{
  int64_t local = bo_rows_local(rows), n = rows->n;

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(g, sizeof *g));
  g->comm = comm;
  g->rows = *rows;
  PetscCall(PetscMalloc1(local + 1, &g->indptr)); /* separate blocks: bo_graph_destroy frees each */
  PetscCall(PetscMalloc1(4 * local, &g->indices));
  PetscCall(PetscMalloc1(4 * local, &g->data));
  g->indptr[0] = 0;
  for (int64_t i = 0; i < local; i++) {
    int64_t p = rows->lo + i, nb[4] = {(p - 2 + n) % n, (p - 1 + n) % n, (p + 1) % n, (p + 2) % n};
    for (int a = 0; a < 4; a++) /* ascending column order (insertion sort of four) */
      for (int b = a + 1; b < 4; b++)
        if (nb[b] < nb[a]) { int64_t t = nb[a]; nb[a] = nb[b]; nb[b] = t; }
    for (int a = 0; a < 4; a++) { g->indices[4 * i + a] = nb[a]; g->data[4 * i + a] = 1.0f; }
    g->indptr[i + 1] = 4 * (i + 1);
  }
  PetscCall(bo_graph_setup_exchange(g));
  PetscFunctionReturn(0);
}

typedef struct { double t0, last; int calls; } timer_ctx;

static PetscErrorCode tick(void *ctx, const bo_cluster_state *st, PetscBool *stop)
{
  timer_ctx *t = ctx;
  t->last      = MPI_Wtime();
  t->calls++;
  (void)st; (void)stop;
  return 0;
}

int main(int argc, char **argv)
{
  PetscMPIInt      rank, size;
  const char      *mode = argc > 1 ? argv[1] : "kmeans";
  PetscBool        slk  = !strcmp(mode, "slk");
  int64_t          n = argc > 2 ? atoll(argv[2]) : 2000000, d = argc > 3 ? atoll(argv[3]) : 128;
  int64_t          k = argc > 4 ? atoll(argv[4]) : (slk ? 100 : 1000);
  int              iters = argc > 5 ? atoi(argv[5]) : 3;
  bo_rows          rows;
  float           *x;
  bo_graph         g;
  bo_cluster_state st;
  bo_cluster_opts  o = {0};
  timer_ctx        tc = {0};
  struct rusage    ru;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  openblas_set_num_threads(1);
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  bo_rows_partition(n, rank, size, &rows);
  PetscCall(PetscMalloc1(bo_rows_local(&rows) * d, &x));
  make_rows(&rows, d, k, x);
  if (slk) PetscCall(ring_graph(PETSC_COMM_WORLD, &rows, &g));
  PetscCall(bo_cluster_state_create(&rows, d, k, iters, &st));
  PetscCall(bo_kmeans_random(PETSC_COMM_WORLD, &rows, d, x, k, 42, st.prototypes));
  o.method = slk ? BO_SLK_MEANS : BO_KMEANS;
  o.k = k; o.lambda = 1.3; o.max_it = iters; o.tol = 0; o.hard_means = PETSC_TRUE;
  o.bound.max_it = 10; o.bound.tol = 0; /* a fixed amount of bound work per outer iteration */
  o.hook = tick; o.hook_ctx = &tc;
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  tc.t0 = MPI_Wtime();
  PetscCall(bo_cluster_run(PETSC_COMM_WORLD, &rows, d, x, slk ? &g : NULL, &o, &st));
  double elapsed = MPI_Wtime() - tc.t0, worst;
  PetscCallMPI(MPI_Allreduce(&elapsed, &worst, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));
  getrusage(RUSAGE_SELF, &ru);
  double rss = ru.ru_maxrss / 1048576.0, rss_max; /* GiB */
  PetscCallMPI(MPI_Allreduce(&rss, &rss_max, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));
  double ghost_bytes = slk ? (double)g.nghost * (double)k * 8 : 0, ghost_max = 0;
  PetscCallMPI(MPI_Allreduce(&ghost_bytes, &ghost_max, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));
  if (!rank)
    printf("{\"bench\":\"large_%s\",\"ranks\":%d,\"n\":%lld,\"d\":%lld,\"k\":%lld,\"outer_iterations\":%d,\"bound_iterations_per_outer\":%d,"
           "\"seconds\":%.3f,\"seconds_per_outer_iteration\":%.3f,\"max_rss_gib_per_rank\":%.2f,\"ghost_bytes_per_bound_iteration_per_rank\":%.0f,\"energy_last\":%.10g}\n",
           mode, size, (long long)n, (long long)d, (long long)k, st.iteration, slk ? o.bound.max_it : 0, worst, worst / st.iteration, rss_max, ghost_max, st.energy[st.iteration - 1]);
  PetscCall(bo_cluster_state_destroy(&st));
  if (slk) PetscCall(bo_graph_destroy(&g));
  PetscCall(PetscFree(x));
  PetscCall(PetscFinalize());
  return 0;
}
