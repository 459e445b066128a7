/* dataset.h - sharded feature files.
 *
 * Schema (HDF5, written by task import / preprocess, read by every task):
 *   /features     N x D float32, chunked by rows (float64 input is converted on read)
 *   /labels       N int32, optional, values >= 0
 *   /label_names  C fixed-length strings, optional (name of label c)
 *   attributes on "/": source (where the rows came from), preprocessing (what was applied)
 *
 * Contract
 *   bo_dataset_read is collective on comm: rank r reads only rows [lo, hi) of the tile partition
 *   (tiles.h) with collective MPI-IO; no rank holds the whole matrix.  More ranks than rows gives
 *   empty shards.  Every check raises the same one-line error on all ranks: missing or non-HDF5
 *   file, missing /features, wrong rank or dtype, N = 0 or D = 0, labels of the wrong length or
 *   type, negative labels, and (with check_finite) NaN/Inf with the first bad row (0-based).
 *   The struct owns x, labels and label_names; bo_dataset_destroy frees them.
 */
#ifndef BOUNDOPT_DATASET_H
#define BOUNDOPT_DATASET_H
#include <petscsys.h>
#include <hdf5.h>
#include "boundopt/tiles.h"

typedef struct {
  MPI_Comm comm;
  char     path[PETSC_MAX_PATH_LEN];
  int64_t  n, d;           /* global shape */
  bo_rows  rows;           /* this rank's rows [rows.lo, rows.hi) */
  float   *x;              /* (hi - lo) x d, row-major */
  int32_t *labels;         /* hi - lo, or NULL */
  int64_t  nclasses;       /* max label + 1, or 0 without labels */
  int64_t  nnames;         /* label_names count (replicated), 0 if none */
  char   **label_names;
  char     source[512];
  char     preprocessing[1024];
  uint64_t identity;       /* path, size, mtime and shape hashed: names the input in checkpoints */
} bo_dataset;

typedef struct {
  PetscBool check_finite;  /* refuse NaN/Inf (default for computing tasks) */
  PetscBool need_labels;   /* refuse a file without /labels */
} bo_dataset_read_opts;

/* Shape only (for the memory pre-flight), with the same checks as a read except NaN/Inf. */
PetscErrorCode bo_dataset_probe(MPI_Comm comm, const char *path, int64_t *n, int64_t *d);
PetscErrorCode bo_dataset_read(MPI_Comm comm, const char *path, const bo_dataset_read_opts *opts, bo_dataset *ds);
/* An empty shard of an n x d dataset on comm, to be filled by the caller (labels when asked).
 * x is 64-byte aligned; a shard of 2 MiB or more is 2 MiB aligned and advised to transparent huge
 * pages (fewer TLB misses per pass over X).  bo_dataset_destroy frees it. */
PetscErrorCode bo_dataset_create(MPI_Comm comm, int64_t n, int64_t d, PetscBool with_labels, bo_dataset *ds);
/* Writes /features, /labels, /label_names and the attributes into an open file (collective). */
PetscErrorCode bo_dataset_write(hid_t file, const bo_dataset *ds);
/* Copies the label names (replicated) from src to dst. */
PetscErrorCode bo_dataset_copy_label_names(const bo_dataset *src, bo_dataset *dst);
PetscErrorCode bo_dataset_destroy(bo_dataset *ds);
/* Bytes a shard of rows x d takes with labels: for memory plans. */
double bo_dataset_shard_bytes(int64_t rows, int64_t d);
#endif
