/* h5.h - the parallel HDF5 layer every file of boundopt goes through.
 *
 * Contract
 *   Files are opened on a communicator with the MPI-IO driver; all calls here are collective on
 *   that communicator unless marked (local).  Failures raise one-line boundopt errors naming the
 *   file.  HDF5's own error stack printing is switched off (bo_h5_init), so a user sees one line.
 *   Row-distributed datasets ("rows"): the first dimension is the row index, n rows; a row is
 *   everything after it (ncols = the product of the other dimensions: 1 for a vector, m for an
 *   n x m matrix, H W for an S x H x W stack of images, H W F for S x H x W x F fields).  Rank r
 *   reads/writes rows [lo, hi), possibly none, with collective MPI-IO in slabs < 1 GiB, in
 *   row-major (C) order; bo_h5_read_rows reads a dataset of any rank 1..BO_H5_MAX_RANK and refuses
 *   (one line naming the file) a dataset whose rows do not hold ncols values.
 *   Small datasets and attributes are replicated: every rank passes the same values; rank 0 writes.
 */
#ifndef BOUNDOPT_H5_H
#define BOUNDOPT_H5_H
#include <petscsys.h>
#include <hdf5.h>
#include <stdint.h>

PetscErrorCode bo_h5_init(void);
/* Opens an existing file read-only; missing, unreadable, non-HDF5 and truncated files are input errors. */
PetscErrorCode bo_h5_open_read(MPI_Comm comm, const char *path, hid_t *file);
/* Opens an existing file read-write (checkpoints, info attributes). */
PetscErrorCode bo_h5_open_rw(MPI_Comm comm, const char *path, hid_t *file);
/* Creates (truncates) path. */
PetscErrorCode bo_h5_create(MPI_Comm comm, const char *path, hid_t *file);
PetscErrorCode bo_h5_close(hid_t *file);
/* Atomic publication (collective): close the file written under tmp, wait for every rank, rename
 * tmp to path on rank 0, and unregister tmp from the error handler.  what names the file in the
 * error ("results", "checkpoint"). */
PetscErrorCode bo_h5_close_and_rename(MPI_Comm comm, hid_t *file, const char *tmp, const char *path, const char *what);
/* Whether the link exists (a path like "/a/b"; intermediate groups checked). */
PetscErrorCode bo_h5_exists(hid_t file, const char *name, PetscBool *exists);
/* Creates the groups of "/a/b/c" up to "b" when missing. */
PetscErrorCode bo_h5_make_parents(hid_t file, const char *name);

#define BO_H5_MAX_RANK 8
/* Shape and class of a dataset: rank, dims, and H5T class (H5T_FLOAT, H5T_INTEGER, ...) and size.
 * A rank beyond BO_H5_MAX_RANK is reported as BO_H5_MAX_RANK (with its first dims). */
typedef struct { int rank; hsize_t dims[BO_H5_MAX_RANK]; H5T_class_t cls; size_t size; } bo_h5_info;
PetscErrorCode bo_h5_dataset_info(hid_t file, const char *path_in_file, const char *name, bo_h5_info *info);

PetscErrorCode bo_h5_read_rows(hid_t file, const char *name, hid_t memtype, int64_t ncols, int64_t lo, int64_t hi, void *buf);
PetscErrorCode bo_h5_write_rows(hid_t file, const char *name, hid_t memtype, hid_t filetype, int64_t n, int64_t ncols, int64_t lo, int64_t hi, const void *buf);
/* The N-D form: creates a dataset of shape dims[0..rank) (rank 1..BO_H5_MAX_RANK, dims[0] = n rows)
 * and writes rows [lo, hi) from buf (hi - lo rows of dims[1] x ... x dims[rank-1] values, row-major).
 * bo_h5_write_rows is the rank 1 (ncols = 1) or rank 2 case. */
PetscErrorCode bo_h5_write_rows_nd(hid_t file, const char *name, hid_t memtype, hid_t filetype, int rank, const hsize_t *dims, int64_t lo, int64_t hi, const void *buf);
/* Replicated arrays: write from rank 0 (every rank passes buf, rank >= 1 may pass NULL); read on every rank. */
PetscErrorCode bo_h5_write_array(hid_t file, const char *name, hid_t memtype, hid_t filetype, int rank, const hsize_t *dims, const void *buf);
PetscErrorCode bo_h5_read_array(hid_t file, const char *name, hid_t memtype, void *buf);
/* rank 0: a scalar dataset (dims unused). */
/* One fixed-length string as a scalar dataset. */
PetscErrorCode bo_h5_write_string(hid_t file, const char *name, const char *value);
/* Fixed-length string array (parallel HDF5 cannot write variable-length strings). */
PetscErrorCode bo_h5_write_strings(hid_t file, const char *name, int64_t count, char *const *strings);
/* Reads count strings into a newly allocated array (free with bo_h5_free_strings). */
PetscErrorCode bo_h5_read_strings(hid_t file, const char *name, int64_t *count, char ***strings);
PetscErrorCode bo_h5_free_strings(int64_t count, char ***strings);

/* Attributes on the object at `obj` ("/" for the root). */
PetscErrorCode bo_h5_attr_write_string(hid_t file, const char *obj, const char *attr, const char *value);
PetscErrorCode bo_h5_attr_write_double(hid_t file, const char *obj, const char *attr, double value);
PetscErrorCode bo_h5_attr_write_int64(hid_t file, const char *obj, const char *attr, int64_t value);
PetscErrorCode bo_h5_attr_write_int64s(hid_t file, const char *obj, const char *attr, int64_t count, const int64_t *values);
/* Reads a string attribute into buf (empty when absent). */
PetscErrorCode bo_h5_attr_read_string(hid_t file, const char *obj, const char *attr, char *buf, size_t len);
PetscErrorCode bo_h5_attr_read_int64(hid_t file, const char *obj, const char *attr, int64_t *value, PetscBool *found);
#endif
