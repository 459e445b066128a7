/* dataset.c - sharded reads and writes of feature files (see dataset.h). */
#define _DEFAULT_SOURCE /* madvise's MADV_HUGEPAGE (Linux) next to -D_POSIX_C_SOURCE */
#include "boundopt/dataset.h"
#include "boundopt/checkpoint.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* X of 2 MiB or more sits on 2 MiB boundaries and asks for transparent huge pages: a pass over X
 * then takes one TLB entry per 2 MiB instead of one per 4 KiB page (a 784-float row spans a page
 * boundary at nearly every row). */
#define HUGE_PAGE ((size_t)2 << 20)

static const char *class_name(H5T_class_t c)
{
  switch (c) {
  case H5T_INTEGER: return "integer";
  case H5T_FLOAT:   return "float";
  case H5T_STRING:  return "string";
  case H5T_COMPOUND: return "compound";
  default:          return "non-numeric";
  }
}

/* The shape checks shared by probe and read.  Every rank sees the same metadata, so every rank
 * raises the same error. */
static PetscErrorCode check_features(MPI_Comm comm, hid_t file, const char *path, int64_t *n, int64_t *d)
{
  PetscBool  exists;
  bo_h5_info info;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_exists(file, "/features", &exists));
  PetscCheck(exists, comm, BO_ERR_INPUT, "%s: no /features dataset; expected an N x D float32 dataset /features", path);
  PetscCall(bo_h5_dataset_info(file, path, "/features", &info));
  PetscCheck(info.rank == 2, comm, BO_ERR_INPUT, "%s: /features has rank %d; expected a 2-D N x D dataset", path, info.rank);
  PetscCheck(info.cls == H5T_FLOAT && (info.size == 4 || info.size == 8), comm, BO_ERR_INPUT, "%s: /features is %s of %zu bytes; expected float32 (or float64, converted)", path, class_name(info.cls), info.size);
  *n = (int64_t)info.dims[0];
  *d = (int64_t)info.dims[1];
  PetscCheck(*n > 0 && *d > 0, comm, BO_ERR_INPUT, "%s: /features is %lld x %lld; expected at least one row and one column", path, (long long)*n, (long long)*d);
  PetscCall(bo_h5_exists(file, "/labels", &exists));
  if (exists) {
    PetscCall(bo_h5_dataset_info(file, path, "/labels", &info));
    PetscCheck(info.cls == H5T_INTEGER, comm, BO_ERR_INPUT, "%s: /labels is %s; expected int32 labels", path, class_name(info.cls));
    PetscCheck(info.rank == 1 && (int64_t)info.dims[0] == *n, comm, BO_ERR_INPUT, "%s: /labels has %lld entries (rank %d); expected %lld, one per row of /features", path, (long long)(info.rank ? info.dims[0] : 0), info.rank, (long long)*n);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_dataset_probe(MPI_Comm comm, const char *path, int64_t *n, int64_t *d)
{
  hid_t file;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_open_read(comm, path, &file));
  PetscCall(check_features(comm, file, path, n, d));
  PetscCall(bo_h5_close(&file));
  PetscFunctionReturn(0);
}

double bo_dataset_shard_bytes(int64_t rows, int64_t d) { return (double)rows * ((double)d * sizeof(float) + sizeof(int32_t)); }

PetscErrorCode bo_dataset_create(MPI_Comm comm, int64_t n, int64_t d, PetscBool with_labels, bo_dataset *ds)
{
  PetscMPIInt rank, size;

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(ds, sizeof *ds));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  ds->comm = comm;
  ds->n    = n;
  ds->d    = d;
  bo_rows_partition(n, rank, size, &ds->rows);
  /* 64-byte aligned (a cache line), unlike PetscMalloc's 16 bytes: the vector kernels' 32-byte
   * loads of a row then never straddle two lines when 8 floats divide D (bo_dataset_destroy frees
   * it with free()). */
  size_t bytes = (size_t)PetscMax(1, bo_rows_local(&ds->rows) * d) * sizeof(float);
  size_t align = bytes >= HUGE_PAGE ? HUGE_PAGE : 64, alloc = (bytes + align - 1) / align * align;
  void  *x     = NULL;
  PetscCheck(posix_memalign(&x, align, alloc) == 0, PETSC_COMM_SELF, BO_ERR_RUNTIME, "features: cannot allocate %.3g GB for this rank's rows; expected more memory per rank (or more ranks)", (double)bytes / 1e9);
#ifdef MADV_HUGEPAGE
  if (align == HUGE_PAGE) (void)madvise(x, alloc, MADV_HUGEPAGE); /* advice only: no effect where THP is off */
#endif
  ds->x = x;
  if (with_labels) PetscCall(PetscMalloc1((size_t)PetscMax(1, bo_rows_local(&ds->rows)), &ds->labels));
  PetscFunctionReturn(0);
}

/* First row (global, 0-based) whose value is not finite, -1 if none: min over ranks. */
static PetscErrorCode first_nonfinite_row(const bo_dataset *ds, int64_t *row, int64_t *col)
{
  int64_t mine[2] = {INT64_MAX, 0}, local = bo_rows_local(&ds->rows);
  struct { int64_t row; int64_t col; } pair;

  PetscFunctionBeginUser;
  for (int64_t i = 0; i < local && mine[0] == INT64_MAX; i++) {
    const float *row = ds->x + i * ds->d;
    uint32_t     bad = 0; /* exponent bits all ones = NaN or Inf: a branch-free, vectorisable scan */
    for (int64_t j = 0; j < ds->d; j++) {
      uint32_t bits;
      memcpy(&bits, row + j, sizeof bits);
      bad |= (bits & 0x7f800000u) == 0x7f800000u;
    }
    if (!bad) continue;
    for (int64_t j = 0; j < ds->d; j++)
      if (!isfinite(row[j])) { mine[0] = ds->rows.lo + i; mine[1] = j; break; }
  }
  int64_t first;
  PetscCallMPI(MPI_Allreduce(&mine[0], &first, 1, MPI_INT64_T, MPI_MIN, ds->comm));
  pair.col = mine[0] == first ? mine[1] : INT64_MAX;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &pair.col, 1, MPI_INT64_T, MPI_MIN, ds->comm));
  *row = first == INT64_MAX ? -1 : first;
  *col = pair.col;
  PetscFunctionReturn(0);
}

static PetscErrorCode read_labels(bo_dataset *ds, hid_t file)
{
  int64_t local = bo_rows_local(&ds->rows), mine[2] = {INT64_MAX, -1}, firstneg, maxlabel = -1;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1((size_t)PetscMax(1, local), &ds->labels));
  PetscCall(bo_h5_read_rows(file, "/labels", H5T_NATIVE_INT32, 1, ds->rows.lo, ds->rows.hi, ds->labels));
  for (int64_t i = 0; i < local; i++) {
    if (ds->labels[i] < 0 && mine[0] == INT64_MAX) { mine[0] = ds->rows.lo + i; mine[1] = ds->labels[i]; }
    maxlabel = PetscMax(maxlabel, (int64_t)ds->labels[i]);
  }
  PetscCallMPI(MPI_Allreduce(&mine[0], &firstneg, 1, MPI_INT64_T, MPI_MIN, ds->comm));
  int64_t value = firstneg == mine[0] ? mine[1] : INT64_MAX;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT64_T, MPI_MIN, ds->comm));
  PetscCheck(firstneg == INT64_MAX, ds->comm, BO_ERR_INPUT, "%s: /labels[%lld] = %lld; expected labels >= 0", ds->path, (long long)firstneg, (long long)value);
  PetscCallMPI(MPI_Allreduce(&maxlabel, &ds->nclasses, 1, MPI_INT64_T, MPI_MAX, ds->comm));
  ds->nclasses += 1;
  PetscFunctionReturn(0);
}

PetscErrorCode bo_dataset_read(MPI_Comm comm, const char *path, const bo_dataset_read_opts *opts, bo_dataset *ds)
{
  hid_t     file;
  int64_t   n, d, bad_row, bad_col;
  PetscBool exists;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_open_read(comm, path, &file));
  PetscCall(check_features(comm, file, path, &n, &d));
  PetscCall(bo_dataset_create(comm, n, d, PETSC_FALSE, ds));
  snprintf(ds->path, sizeof ds->path, "%s", path);
  PetscCall(bo_h5_read_rows(file, "/features", H5T_NATIVE_FLOAT, d, ds->rows.lo, ds->rows.hi, ds->x));
  PetscCall(bo_h5_exists(file, "/labels", &exists));
  PetscCheck(exists || !opts || !opts->need_labels, comm, BO_ERR_INPUT, "%s: no /labels dataset; expected int32 labels for this task", path);
  if (exists) PetscCall(read_labels(ds, file));
  PetscCall(bo_h5_exists(file, "/label_names", &exists));
  if (exists) PetscCall(bo_h5_read_strings(file, "/label_names", &ds->nnames, &ds->label_names));
  PetscCall(bo_h5_attr_read_string(file, "/", "source", ds->source, sizeof ds->source));
  PetscCall(bo_h5_attr_read_string(file, "/", "preprocessing", ds->preprocessing, sizeof ds->preprocessing));
  PetscCall(bo_h5_close(&file));
  if (!opts || opts->check_finite) {
    PetscCall(first_nonfinite_row(ds, &bad_row, &bad_col));
    PetscCheck(bad_row < 0, comm, BO_ERR_INPUT, "%s: /features row %lld, column %lld is NaN or Inf; expected finite features", path, (long long)bad_row, (long long)bad_col);
  }
  ds->identity = bo_file_identity(path, (const int64_t[]){n, d}, 2);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_dataset_write(hid_t file, const bo_dataset *ds)
{
  PetscFunctionBeginUser;
  PetscCall(bo_h5_write_rows(file, "/features", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, ds->n, ds->d, ds->rows.lo, ds->rows.hi, ds->x));
  if (ds->labels) PetscCall(bo_h5_write_rows(file, "/labels", H5T_NATIVE_INT32, H5T_STD_I32LE, ds->n, 1, ds->rows.lo, ds->rows.hi, ds->labels));
  if (ds->nnames) PetscCall(bo_h5_write_strings(file, "/label_names", ds->nnames, ds->label_names));
  if (ds->source[0]) PetscCall(bo_h5_attr_write_string(file, "/", "source", ds->source));
  if (ds->preprocessing[0]) PetscCall(bo_h5_attr_write_string(file, "/", "preprocessing", ds->preprocessing));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_dataset_copy_label_names(const bo_dataset *src, bo_dataset *dst)
{
  PetscFunctionBeginUser;
  PetscCall(bo_h5_free_strings(dst->nnames, &dst->label_names));
  dst->nnames = src->nnames;
  if (!src->nnames) PetscFunctionReturn(0);
  PetscCall(PetscMalloc1(src->nnames, &dst->label_names));
  for (int64_t i = 0; i < src->nnames; i++) PetscCall(PetscStrallocpy(src->label_names[i], &dst->label_names[i]));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_dataset_destroy(bo_dataset *ds)
{
  PetscFunctionBeginUser;
  free(ds->x); /* posix_memalign'd by bo_dataset_create */
  ds->x = NULL;
  PetscCall(PetscFree(ds->labels));
  PetscCall(bo_h5_free_strings(ds->nnames, &ds->label_names));
  ds->nnames = 0;
  PetscFunctionReturn(0);
}
