/* bench_read.c - sharded read throughput of bo_dataset_read against sequential peers.
 *
 *   mpirun -n P build/benchmarks/bench_read FEATURES.h5 [--reps R] [--cold] [--reuse]
 *
 * Cases, each the median over R repetitions (default 5) of the max over ranks of the time of one
 * bo_dataset_read between barriers:
 *   io_only       check_finite false: open, shape checks, /features and /labels of the shard
 *   check_finite  check_finite true: the same plus one isfinite pass over the shard
 * Peers, measured in the same run after the parallel part by rank 0 alone (the other ranks wait
 * in a barrier):
 *   serial H5Dread   H5Fopen with the default (sec2) driver, one H5Dread of all of /features into
 *                    a buffer malloc'ed inside the timing (as bo_dataset_read allocates its shard)
 *   fread            the whole file in 4 MiB blocks into one reused buffer: the page-cache copy
 *                    ceiling (no page faults, no HDF5)
 * GB/s = bytes of /features (N * D * 4) / seconds with 1 GB = 1e9 bytes; fread counts the file.
 *
 * Memory ("alloc" in the JSON): by default every buffer of 32 MiB or more is a fresh mmap
 * (mallopt), so each repetition pays the page faults of a new shard as the single read of a real
 * job does.  --reuse keeps the allocator's default here (Open MPI's UCX hooks keep freed memory
 * in the heap), so after an untimed warm-up the shard lands in already-mapped pages.
 * Page cache ("cache"): warm by default (rank 0 reads the file once and every case has an untimed
 * warm-up).  --cold: before every timed repetition rank 0 evicts this file (only) from the page
 * cache with posix_fadvise(POSIX_FADV_DONTNEED) and measures with mincore how much stayed
 * ("resident": the largest fraction seen; no root needed).
 *
 * Output: one JSON line per case and peer on rank 0's stdout, ratio = gb_per_s / peer_gb_per_s.
 * "page_faults": minor faults of one repetition (median, max over ranks).
 */
#define _DEFAULT_SOURCE /* mincore */
#include "boundopt/dataset.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_support.h"

#define MAX_REPS    64
#define FREAD_BLOCK ((size_t)4 << 20)

typedef struct {
  const char *path;
  int         reps;
  PetscBool   cold, reuse;
  PetscMPIInt rank, size;
  int64_t     n, d, file_bytes;
  double      gbytes;      /* /features */
  double      file_gbytes; /* the whole file */
  double      resident;    /* largest resident fraction seen before a cold repetition */
} bench;

typedef struct {
  double seconds, faults;
} timing;

static double minor_faults(void)
{
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) ? 0 : (double)ru.ru_minflt;
}

/* Fraction of the file's pages in the page cache (-1 if it cannot be told). */
static double resident_fraction(const char *path)
{
  int         fd = open(path, O_RDONLY);
  struct stat st;
  double      frac = -1;

  if (fd < 0) return -1;
  if (!fstat(fd, &st) && st.st_size > 0) {
    long           page  = sysconf(_SC_PAGESIZE);
    size_t         pages = ((size_t)st.st_size + (size_t)page - 1) / (size_t)page, in = 0;
    unsigned char *vec   = malloc(pages);
    void          *map   = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (vec && map != MAP_FAILED && !mincore(map, (size_t)st.st_size, vec)) {
      for (size_t i = 0; i < pages; i++) in += vec[i] & 1;
      frac = (double)in / (double)pages;
    }
    if (map != MAP_FAILED) munmap(map, (size_t)st.st_size);
    free(vec);
  }
  close(fd);
  return frac;
}

/* Cold mode, rank 0: drop the file from the page cache before a timed repetition (local). */
static PetscErrorCode evict(bench *b)
{
  PetscFunctionBeginUser;
  if (!b->cold || b->rank) PetscFunctionReturn(0);
  int fd = open(b->path, O_RDONLY);
  PetscCheck(fd >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open; expected a readable file", b->path);
  int e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
  PetscCheck(!e, PETSC_COMM_SELF, BO_ERR_RUNTIME, "%s: posix_fadvise(DONTNEED) failed (%s); expected to evict the file from the page cache", b->path, strerror(e));
  double r = resident_fraction(b->path);
  if (r > b->resident) b->resident = r;
  PetscFunctionReturn(0);
}

/* Median over reps of the max over ranks of one bo_dataset_read. */
static PetscErrorCode time_sharded(bench *b, PetscBool check_finite, timing *out)
{
  bo_dataset_read_opts opts = {.check_finite = check_finite};
  bo_dataset           ds;
  double               t[MAX_REPS], f[MAX_REPS];
  PetscErrorCode       ierr;

  PetscFunctionBeginUser;
  if (!b->cold) { /* warm-up: the same read, untimed */
    PetscCall(bo_dataset_read(PETSC_COMM_WORLD, b->path, &opts, &ds));
    PetscCall(bo_dataset_destroy(&ds));
  }
  for (int r = 0; r < b->reps; r++) {
    PetscCall(bo_error_try_begin());
    ierr = evict(b);
    PetscCall(bo_error_try_end(PETSC_COMM_WORLD, ierr));
    PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
    double f0 = minor_faults(), t0 = MPI_Wtime();
    PetscCall(bo_dataset_read(PETSC_COMM_WORLD, b->path, &opts, &ds));
    double local[2] = {MPI_Wtime() - t0, minor_faults() - f0}, all[2];
    PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
    PetscCallMPI(MPI_Allreduce(local, all, 2, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));
    t[r] = all[0];
    f[r] = all[1];
    PetscCheck(ds.n == b->n && ds.d == b->d, PETSC_COMM_WORLD, BO_ERR_RUNTIME, "%s: read %lld x %lld; expected %lld x %lld", b->path, (long long)ds.n, (long long)ds.d, (long long)b->n, (long long)b->d);
    PetscCall(bo_dataset_destroy(&ds));
  }
  out->seconds = median(t, b->reps);
  out->faults  = median(f, b->reps);
  PetscFunctionReturn(0);
}

/* Rank 0 only: all of /features with serial HDF5 (default sec2 driver) into a new buffer. */
static PetscErrorCode serial_h5_once(const bench *b)
{
  PetscFunctionBeginUser;
  float *buf = malloc((size_t)(b->n * b->d) * sizeof(float));
  PetscCheck(buf, PETSC_COMM_SELF, PETSC_ERR_MEM, "out of memory; expected room for /features");
  hid_t  file = H5Fopen(b->path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t  d    = file >= 0 ? H5Dopen2(file, "/features", H5P_DEFAULT) : -1;
  herr_t e    = d >= 0 ? H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : -1;
  if (d >= 0) H5Dclose(d);
  if (file >= 0) H5Fclose(file);
  free(buf);
  PetscCheck(e >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "%s: serial H5Dread of /features failed; expected a readable HDF5 file", b->path);
  PetscFunctionReturn(0);
}

/* Rank 0 only: the whole file with fread, block by block into one buffer. */
static PetscErrorCode fread_once(const bench *b, char *block)
{
  size_t        got, total = 0;
  volatile char sink = 0;

  PetscFunctionBeginUser;
  FILE *f = fopen(b->path, "rb");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open; expected a readable file", b->path);
  while ((got = fread(block, 1, FREAD_BLOCK, f)) > 0) {
    total += got;
    sink = block[got - 1];
  }
  (void)sink;
  int bad = ferror(f);
  fclose(f);
  PetscCheck(!bad && (int64_t)total == b->file_bytes, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "%s: fread got %zu bytes; expected the whole file (%lld)", b->path, total, (long long)b->file_bytes);
  PetscFunctionReturn(0);
}

/* Rank 0 only: peer k (0 serial HDF5, 1 fread), median over reps. */
static PetscErrorCode time_peer(bench *b, int k, char *block, timing *out)
{
  double t[MAX_REPS], f[MAX_REPS];

  PetscFunctionBeginUser;
  if (!b->cold) PetscCall(k ? fread_once(b, block) : serial_h5_once(b)); /* warm-up */
  for (int r = 0; r < b->reps; r++) {
    PetscCall(evict(b));
    double f0 = minor_faults(), t0 = MPI_Wtime();
    PetscCall(k ? fread_once(b, block) : serial_h5_once(b));
    t[r] = MPI_Wtime() - t0;
    f[r] = minor_faults() - f0;
  }
  out->seconds = median(t, b->reps);
  out->faults  = median(f, b->reps);
  PetscFunctionReturn(0);
}

/* Both peers on rank 0 while the other ranks wait; results broadcast to every rank. */
static PetscErrorCode time_peers(bench *b, timing peer[2])
{
  PetscErrorCode ierr = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(peer, 2 * sizeof *peer));
  PetscCall(bo_error_try_begin());
  if (!b->rank) {
    char *block = malloc(FREAD_BLOCK);
    if (!block) ierr = PETSC_ERR_MEM;
    for (int k = 0; k < 2 && !ierr; k++) ierr = time_peer(b, k, block, &peer[k]);
    free(block);
  }
  PetscCall(bo_error_try_end(PETSC_COMM_WORLD, ierr));
  PetscCallMPI(MPI_Bcast(peer, 4, MPI_DOUBLE, 0, PETSC_COMM_WORLD));
  PetscFunctionReturn(0);
}

static void print_case(const bench *b, const char *name, const timing *t, const char *peer, const timing *p, double peer_gbytes)
{
  char   extra[64] = "";
  double rate = b->gbytes / t->seconds, peer_rate = peer_gbytes / p->seconds;

  if (b->rank) return;
  if (b->cold) snprintf(extra, sizeof extra, ",\"resident\":%.3f", b->resident);
  printf("{\"bench\":\"read\",\"case\":\"%s\",\"cache\":\"%s\"%s,\"alloc\":\"%s\",\"ranks\":%d,\"n\":%lld,\"d\":%lld,\"gbytes\":%.4f,\"reps\":%d,"
         "\"seconds\":%.5f,\"gb_per_s\":%.3f,\"page_faults\":%.0f,\"peer\":\"%s\",\"peer_seconds\":%.5f,\"peer_gb_per_s\":%.3f,\"peer_page_faults\":%.0f,\"ratio\":%.3f}\n",
         name, b->cold ? "cold" : "warm", extra, b->reuse ? "reused" : "fresh", b->size, (long long)b->n, (long long)b->d, b->gbytes, b->reps, t->seconds, rate, t->faults, peer, p->seconds, peer_rate, p->faults, rate / peer_rate);
  fflush(stdout);
}

static PetscErrorCode run(bench *b)
{
  struct stat st;
  timing      io_only, finite, peer[2];

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &b->rank));
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &b->size));
  PetscCall(bo_dataset_probe(PETSC_COMM_WORLD, b->path, &b->n, &b->d));
  PetscCheck(!stat(b->path, &st), PETSC_COMM_WORLD, PETSC_ERR_FILE_OPEN, "%s: cannot stat; expected a readable file", b->path);
  b->file_bytes  = (int64_t)st.st_size;
  b->gbytes      = (double)b->n * (double)b->d * sizeof(float) / 1e9;
  b->file_gbytes = (double)st.st_size / 1e9;

  if (!b->cold) { /* the whole file into the page cache first */
    PetscErrorCode ierr = 0;
    PetscCall(bo_error_try_begin());
    if (!b->rank) {
      char *block = malloc(FREAD_BLOCK);
      ierr        = block ? fread_once(b, block) : PETSC_ERR_MEM;
      free(block);
    }
    PetscCall(bo_error_try_end(PETSC_COMM_WORLD, ierr));
  }
  PetscCall(time_sharded(b, PETSC_FALSE, &io_only));
  PetscCall(time_sharded(b, PETSC_TRUE, &finite));
  PetscCall(time_peers(b, peer));

  print_case(b, "io_only", &io_only, "serial H5Dread (sec2, rank 0)", &peer[0], b->gbytes);
  print_case(b, "io_only", &io_only, "sequential fread (rank 0)", &peer[1], b->file_gbytes);
  print_case(b, "check_finite", &finite, "serial H5Dread (sec2, rank 0)", &peer[0], b->gbytes);
  print_case(b, "check_finite", &finite, "sequential fread (rank 0)", &peer[1], b->file_gbytes);
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  bench          b = {.reps = 5};
  PetscErrorCode ierr;
  int            rank, bad = 0;

  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  for (int i = 1; i < argc && !bad; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc) b.reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--cold")) b.cold = PETSC_TRUE;
    else if (!strcmp(argv[i], "--reuse")) b.reuse = PETSC_TRUE;
    else if (argv[i][0] != '-' && !b.path) b.path = argv[i];
    else bad = 1;
  }
  if (bad || !b.path || b.reps < 1 || b.reps > MAX_REPS) {
    if (!rank) fprintf(stderr, "bench_read: usage: mpirun -n P bench_read FEATURES.h5 [--reps 1..%d] [--cold] [--reuse]; expected a features file\n", MAX_REPS);
    MPI_Finalize();
    return 1;
  }
  if (!b.reuse) { /* big buffers: a fresh mmap each time (Open MPI's hooks turn mmap off) */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_MMAP_MAX, 1 << 16);
  }
  ierr = PetscInitializeNoArguments();
  if (ierr) MPI_Abort(MPI_COMM_WORLD, 2);
  ierr = bo_error_push_handler();
  if (!ierr) ierr = bo_h5_init();
  if (!ierr) ierr = run(&b);
  if (ierr) bo_error_exit(ierr);
  PetscFinalize();
  MPI_Finalize();
  return 0;
}
