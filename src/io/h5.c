/* h5.c - parallel HDF5 helpers (see h5.h). */
#include "boundopt/h5.h"
#include "boundopt/error.h"
#include "boundopt/tiles.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes one rank moves in one collective call: MPI-IO counts are int, and HDF5 1.10 splits
 * nothing itself. */
#define SLAB_BYTES ((int64_t)1 << 30)

static const char *file_name(hid_t obj, char *buf, size_t len)
{
  if (H5Fget_name(obj, buf, len) < 0) snprintf(buf, len, "(hdf5 file)");
  return buf;
}

static MPI_Comm file_comm(hid_t file)
{
  hid_t    fapl = H5Fget_access_plist(file);
  MPI_Comm comm = MPI_COMM_SELF;
  MPI_Info info = MPI_INFO_NULL;
  if (fapl >= 0 && H5Pget_driver(fapl) == H5FD_MPIO && H5Pget_fapl_mpio(fapl, &comm, &info) >= 0) {
    if (info != MPI_INFO_NULL) MPI_Info_free(&info);
  } else comm = MPI_COMM_NULL;
  if (fapl >= 0) H5Pclose(fapl);
  return comm; /* a duplicate: the caller frees it (unless COMM_NULL) */
}

PetscErrorCode bo_h5_init(void)
{
  PetscFunctionBeginUser;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  PetscFunctionReturn(0);
}

static hid_t mpio_fapl(MPI_Comm comm)
{
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
  H5Pset_all_coll_metadata_ops(fapl, 1);
  H5Pset_coll_metadata_write(fapl, 1);
  return fapl;
}

/* Rank 0 looks at the file first, so every rank raises the same, precise error. */
static PetscErrorCode check_readable(MPI_Comm comm, const char *path)
{
  int state[2] = {0, 0}; /* 0 ok, 1 cannot open (errno in [1]), 2 not HDF5 */

  PetscFunctionBeginUser;
  if (!path || !path[0]) SETERRQ(comm, BO_ERR_INPUT, "input: no file given; expected a path to an HDF5 file");
  int rank;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (!rank) {
    struct stat st;
    FILE       *f = fopen(path, "rb");
    if (!f) { state[0] = 1; state[1] = errno; }
    else {
      unsigned char sig[8] = {0};
      size_t got = fread(sig, 1, 8, f);
      fclose(f);
      /* HDF5 may keep a user block before the signature; H5Fis_accessible decides those. */
      if (got < 8 || memcmp(sig, "\211HDF\r\n\032\n", 8)) state[0] = H5Fis_hdf5(path) > 0 ? 0 : 2;
      if (!stat(path, &st) && S_ISDIR(st.st_mode)) { state[0] = 1; state[1] = EISDIR; }
    }
  }
  PetscCallMPI(MPI_Bcast(state, 2, MPI_INT, 0, comm));
  PetscCheck(state[0] != 1, comm, PETSC_ERR_FILE_OPEN, "%s: cannot open (%s); expected a readable HDF5 file", path, strerror(state[1]));
  PetscCheck(state[0] != 2, comm, PETSC_ERR_FILE_UNEXPECTED, "%s: not an HDF5 file; expected an HDF5 file (e.g. written by 'boundopt' task import)", path);
  PetscFunctionReturn(0);
}

static PetscErrorCode open_with(MPI_Comm comm, const char *path, unsigned flags, hid_t *file)
{
  PetscFunctionBeginUser;
  PetscCall(check_readable(comm, path));
  hid_t fapl = mpio_fapl(comm);
  *file      = H5Fopen(path, flags, fapl);
  H5Pclose(fapl);
  PetscCheck(*file >= 0, comm, PETSC_ERR_FILE_UNEXPECTED, "%s: cannot read the HDF5 file (truncated or corrupt); expected a complete HDF5 file", path);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_open_read(MPI_Comm comm, const char *path, hid_t *file) { return open_with(comm, path, H5F_ACC_RDONLY, file); }
PetscErrorCode bo_h5_open_rw(MPI_Comm comm, const char *path, hid_t *file) { return open_with(comm, path, H5F_ACC_RDWR, file); }

PetscErrorCode bo_h5_create(MPI_Comm comm, const char *path, hid_t *file)
{
  PetscFunctionBeginUser;
  hid_t fapl = mpio_fapl(comm);
  *file      = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  PetscCheck(*file >= 0, comm, PETSC_ERR_FILE_OPEN, "%s: cannot create the file; expected a writable folder", path);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_close(hid_t *file)
{
  PetscFunctionBeginUser;
  if (*file >= 0) {
    char name[PETSC_MAX_PATH_LEN];
    file_name(*file, name, sizeof name);
    herr_t e = H5Fclose(*file);
    *file    = -1;
    PetscCheck(e >= 0, PETSC_COMM_SELF, BO_ERR_RUNTIME, "%s: closing the file failed (disk full or I/O error); expected it to be written", name);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_close_and_rename(MPI_Comm comm, hid_t *file, const char *tmp, const char *path, const char *what)
{
  int err = 0, rank;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_close(file));
  PetscCallMPI(MPI_Barrier(comm)); /* every rank's data is on disk before the name appears */
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (!rank && rename(tmp, path)) err = errno;
  PetscCallMPI(MPI_Bcast(&err, 1, MPI_INT, 0, comm));
  PetscCheck(!err, comm, BO_ERR_RUNTIME, "%s: cannot rename the finished %s into place (%s); expected a writable folder", path, what, strerror(err));
  bo_error_unregister_tempfile(tmp);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_exists(hid_t file, const char *name, PetscBool *exists)
{
  char   part[PETSC_MAX_PATH_LEN];
  size_t len = strlen(name);

  PetscFunctionBeginUser;
  *exists = PETSC_TRUE;
  for (size_t i = 1; i <= len; i++) {
    if (name[i] != '/' && name[i] != 0) continue;
    snprintf(part, sizeof part, "%.*s", (int)i, name);
    if (H5Lexists(file, part, H5P_DEFAULT) <= 0) { *exists = PETSC_FALSE; break; }
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_make_parents(hid_t file, const char *name)
{
  char part[PETSC_MAX_PATH_LEN];

  PetscFunctionBeginUser;
  for (size_t i = 1; name[i]; i++) {
    if (name[i] != '/') continue;
    snprintf(part, sizeof part, "%.*s", (int)i, name);
    if (H5Lexists(file, part, H5P_DEFAULT) > 0) continue;
    hid_t g = H5Gcreate2(file, part, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    PetscCheck(g >= 0, PETSC_COMM_SELF, BO_ERR_RUNTIME, "%s: cannot create group; expected a writable file", part);
    H5Gclose(g);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_dataset_info(hid_t file, const char *path, const char *name, bo_h5_info *info)
{
  char fname[PETSC_MAX_PATH_LEN];

  PetscFunctionBeginUser;
  hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
  PetscCheck(d >= 0, PETSC_COMM_SELF, BO_ERR_INPUT, "%s: cannot open dataset %s; expected it in the file", path ? path : file_name(file, fname, sizeof fname), name);
  hid_t s = H5Dget_space(d), t = H5Dget_type(d);
  hsize_t dims[H5S_MAX_RANK] = {0};
  info->rank = H5Sget_simple_extent_ndims(s);
  if (info->rank > 0) H5Sget_simple_extent_dims(s, dims, NULL);
  if (info->rank > BO_H5_MAX_RANK) info->rank = BO_H5_MAX_RANK;
  for (int i = 0; i < BO_H5_MAX_RANK; i++) info->dims[i] = i < info->rank ? dims[i] : 0;
  info->cls  = H5Tget_class(t);
  info->size = H5Tget_size(t);
  H5Tclose(t);
  H5Sclose(s);
  H5Dclose(d);
  PetscFunctionReturn(0);
}

/* Collective slabs: every rank makes the same number of H5D calls. */
static PetscErrorCode slab_count(MPI_Comm comm, int64_t rows, int64_t row_bytes, int64_t *nslabs, int64_t *rows_per_slab)
{
  int64_t per = row_bytes > 0 ? PetscMax(1, SLAB_BYTES / row_bytes) : rows;
  int64_t mine = per > 0 ? (rows + per - 1) / per : 0;

  PetscFunctionBeginUser;
  if (comm == MPI_COMM_NULL) *nslabs = mine;
  else PetscCallMPI(MPI_Allreduce(&mine, nslabs, 1, MPI_INT64_T, MPI_MAX, comm));
  *rows_per_slab = per > 0 ? per : 1;
  PetscFunctionReturn(0);
}

typedef herr_t (*io_fn)(hid_t, hid_t, hid_t, hid_t, hid_t, void *);

static herr_t write_adapter(hid_t d, hid_t mt, hid_t ms, hid_t fs, hid_t x, void *buf) { return H5Dwrite(d, mt, ms, fs, x, buf); }

/* A row of a dataset: the product of its dimensions after the first (1 for a vector); *rank = 0
 * for a scalar or a rank beyond BO_H5_MAX_RANK. */
static int64_t row_elements(hid_t space, int *rank, hsize_t *dims)
{
  int64_t row = 1;
  *rank = H5Sget_simple_extent_ndims(space);
  if (*rank < 1 || *rank > BO_H5_MAX_RANK) {
    *rank = 0;
    return 0;
  }
  H5Sget_simple_extent_dims(space, dims, NULL);
  for (int i = 1; i < *rank; i++) row *= (int64_t)dims[i];
  return row;
}

/* Rows [lo, hi) of an N-D dataset (rows = the first dimension); ncols = the elements of a row. */
static PetscErrorCode rows_io(hid_t dset, hid_t memtype, int64_t ncols, int64_t lo, int64_t hi, void *buf, io_fn io, const char *what, const char *name)
{
  MPI_Comm comm = file_comm(dset);
  int64_t  nslabs = 0, per = 1, rows = hi - lo;
  size_t   row_bytes = H5Tget_size(memtype) * (size_t)ncols;
  hid_t    fspace = H5Dget_space(dset), xfer = H5Pcreate(H5P_DATASET_XFER);
  herr_t   status = 0;
  hsize_t  dims[BO_H5_MAX_RANK];
  int      frank;
  int64_t  row = row_elements(fspace, &frank, dims);
  char     fname[PETSC_MAX_PATH_LEN];

  PetscFunctionBeginUser;
  file_name(dset, fname, sizeof fname);
  if (frank == 0 || row != ncols) { /* every rank sees the same file and raises it: no collective is left waiting */
    H5Pclose(xfer);
    H5Sclose(fspace);
    if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
    SETERRQ(PETSC_COMM_SELF, BO_ERR_INPUT, "%s: %s has rows of %lld values; expected rows of %lld values (rows = the first dimension)", fname, name, (long long)row, (long long)ncols);
  }
  if (comm != MPI_COMM_NULL) H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE);
  PetscCall(slab_count(comm, rows, (int64_t)row_bytes, &nslabs, &per));
  for (int64_t s = 0; s < nslabs; s++) {
    int64_t a = lo + s * per, b = PetscMin(hi, a + per);
    hsize_t start[BO_H5_MAX_RANK] = {(hsize_t)PetscMin(a, hi)}, count[BO_H5_MAX_RANK];
    count[0] = (hsize_t)(b > a ? b - a : 0);
    for (int i = 1; i < frank; i++) count[i] = dims[i];
    hid_t mspace = H5Screate_simple(frank, count, NULL); /* the file's shape: HDF5 then copies whole rows */
    if (count[0] > 0) H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
    else {
      H5Sselect_none(fspace);
      H5Sselect_none(mspace);
    }
    if (status >= 0) status = io(dset, memtype, mspace, fspace, xfer, count[0] ? (char *)buf + (size_t)(a - lo) * row_bytes : buf);
    H5Sclose(mspace);
  }
  H5Pclose(xfer);
  H5Sclose(fspace);
  if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
  PetscCheck(status >= 0, PETSC_COMM_SELF, what[0] == 'r' ? PETSC_ERR_FILE_UNEXPECTED : BO_ERR_RUNTIME, "%s: %s of %s failed (rows %lld..%lld); expected a %s", fname, what, name, (long long)lo, (long long)hi, what[0] == 'r' ? "complete, readable file" : "writable file with free space");
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_read_rows(hid_t file, const char *name, hid_t memtype, int64_t ncols, int64_t lo, int64_t hi, void *buf)
{
  PetscFunctionBeginUser;
  hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
  PetscCheck(d >= 0, PETSC_COMM_SELF, BO_ERR_INPUT, "%s: missing; expected the dataset in the file", name);
  PetscErrorCode e = rows_io(d, memtype, ncols, lo, hi, buf, H5Dread, "read", name);
  H5Dclose(d);
  PetscCall(e);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_write_rows(hid_t file, const char *name, hid_t memtype, hid_t filetype, int64_t n, int64_t ncols, int64_t lo, int64_t hi, const void *buf)
{
  const hsize_t dims[2] = {(hsize_t)n, (hsize_t)ncols};

  PetscFunctionBeginUser;
  PetscCall(bo_h5_write_rows_nd(file, name, memtype, filetype, ncols == 1 ? 1 : 2, dims, lo, hi, buf));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_write_rows_nd(hid_t file, const char *name, hid_t memtype, hid_t filetype, int rank, const hsize_t *dims, int64_t lo, int64_t hi, const void *buf)
{
  hsize_t chunk[BO_H5_MAX_RANK];
  int64_t ncols = 1;

  PetscFunctionBeginUser;
  PetscCheck(rank >= 1 && rank <= BO_H5_MAX_RANK, PETSC_COMM_SELF, BO_ERR_RUNTIME, "%s: a row dataset of rank %d; expected rank 1..%d", name, rank, BO_H5_MAX_RANK);
  for (int i = 1; i < rank; i++) ncols *= (int64_t)dims[i];
  PetscCall(bo_h5_make_parents(file, name));
  /* Chunks of whole tiles of rows (BO_TILE_ROWS times m, about 1 MiB), so a chunk boundary is a
   * tile boundary, where rank boundaries fall too; a chunk spans whole rows in every dimension. */
  const int64_t n         = (int64_t)dims[0];
  size_t        row_bytes = H5Tget_size(filetype) * (size_t)ncols;
  int64_t       tiles     = PetscMax(1, (int64_t)(((size_t)1 << 20) / PetscMax((size_t)1, row_bytes * BO_TILE_ROWS)));
  chunk[0] = (hsize_t)PetscMax(1, PetscMin(PetscMax(n, 1), tiles * BO_TILE_ROWS));
  for (int i = 1; i < rank; i++) chunk[i] = dims[i];
  hid_t space = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (n > 0 && ncols > 0) H5Pset_chunk(dcpl, rank, chunk);
  hid_t d = H5Dcreate2(file, name, filetype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Pclose(dcpl);
  H5Sclose(space);
  PetscCheck(d >= 0, PETSC_COMM_SELF, BO_ERR_RUNTIME, "%s: cannot create dataset; expected a writable file", name);
  PetscErrorCode e = rows_io(d, memtype, ncols, lo, hi, (void *)buf, write_adapter, "write", name);
  H5Dclose(d);
  PetscCall(e);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_write_array(hid_t file, const char *name, hid_t memtype, hid_t filetype, int rank, const hsize_t *dims, const void *buf)
{
  hsize_t total = 1;
  int     mpirank = 0;
  MPI_Comm comm;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_make_parents(file, name));
  for (int i = 0; i < rank; i++) total *= dims[i];
  hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
  hid_t d     = H5Dcreate2(file, name, filetype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  PetscCheck(d >= 0, PETSC_COMM_SELF, BO_ERR_RUNTIME, "%s: cannot create dataset; expected a writable file", name);
  comm = file_comm(file);
  if (comm != MPI_COMM_NULL) {
    MPI_Comm_rank(comm, &mpirank);
    MPI_Comm_free(&comm);
  }
  hid_t fspace = H5Dget_space(d), mspace = H5Screate_simple(1, &total, NULL);
  if (mpirank || total == 0) { /* rank 0 writes; the others take part in the collective call */
    H5Sselect_none(fspace);
    H5Sselect_none(mspace);
  }
  hid_t  xfer   = H5Pcreate(H5P_DATASET_XFER);
  herr_t status = H5Dwrite(d, memtype, mspace, fspace, xfer, buf);
  H5Pclose(xfer);
  H5Sclose(mspace);
  H5Sclose(fspace);
  H5Sclose(space);
  H5Dclose(d);
  PetscCheck(status >= 0, PETSC_COMM_SELF, BO_ERR_RUNTIME, "%s: write failed; expected a writable file with free space", name);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_read_array(hid_t file, const char *name, hid_t memtype, void *buf)
{
  PetscFunctionBeginUser;
  hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
  PetscCheck(d >= 0, PETSC_COMM_SELF, BO_ERR_INPUT, "%s: missing; expected the dataset in the file", name);
  herr_t status = H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  H5Dclose(d);
  PetscCheck(status >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: read failed; expected a readable dataset of the right type", name);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_write_string(hid_t file, const char *name, const char *value)
{
  PetscFunctionBeginUser;
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, strlen(value) + 1);
  PetscErrorCode e = bo_h5_write_array(file, name, type, type, 0, NULL, value);
  H5Tclose(type);
  PetscCall(e);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_write_strings(hid_t file, const char *name, int64_t count, char *const *strings)
{
  size_t width = 1;
  char  *packed;

  PetscFunctionBeginUser;
  for (int64_t i = 0; i < count; i++) width = PetscMax(width, strlen(strings[i]) + 1);
  PetscCall(PetscCalloc1((size_t)PetscMax(count, 1) * width, &packed));
  for (int64_t i = 0; i < count; i++) memcpy(packed + i * width, strings[i], strlen(strings[i]));
  hid_t   type    = H5Tcopy(H5T_C_S1);
  hsize_t dims[1] = {(hsize_t)count};
  H5Tset_size(type, width);
  H5Tset_strpad(type, H5T_STR_NULLTERM);
  PetscErrorCode e = bo_h5_write_array(file, name, type, type, 1, dims, packed);
  H5Tclose(type);
  PetscCall(PetscFree(packed));
  PetscCall(e);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_read_strings(hid_t file, const char *name, int64_t *count, char ***strings)
{
  bo_h5_info info;
  char      *packed;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_dataset_info(file, NULL, name, &info));
  PetscCheck(info.cls == H5T_STRING && info.rank == 1, PETSC_COMM_SELF, BO_ERR_INPUT, "%s: not a 1-D string dataset; expected fixed-length strings", name);
  hid_t d = H5Dopen2(file, name, H5P_DEFAULT), ftype = H5Dget_type(d);
  PetscCheck(!H5Tis_variable_str(ftype), PETSC_COMM_SELF, BO_ERR_INPUT, "%s: variable-length strings; expected fixed-length strings (parallel HDF5 cannot write variable-length ones)", name);
  size_t width = info.size + 1;
  hid_t  mtype = H5Tcopy(H5T_C_S1);
  H5Tset_size(mtype, width);
  H5Tset_strpad(mtype, H5T_STR_NULLTERM);
  *count = (int64_t)info.dims[0];
  PetscCall(PetscCalloc1((size_t)PetscMax(*count, 1) * width, &packed));
  herr_t status = H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, packed);
  H5Tclose(mtype);
  H5Tclose(ftype);
  H5Dclose(d);
  PetscCheck(status >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: read failed; expected readable strings", name);
  PetscCall(PetscMalloc1(PetscMax(*count, 1), strings));
  for (int64_t i = 0; i < *count; i++) PetscCall(PetscStrallocpy(packed + i * width, &(*strings)[i]));
  PetscCall(PetscFree(packed));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_free_strings(int64_t count, char ***strings)
{
  PetscFunctionBeginUser;
  if (!*strings) PetscFunctionReturn(0);
  for (int64_t i = 0; i < count; i++) PetscCall(PetscFree((*strings)[i]));
  PetscCall(PetscFree(*strings));
  PetscFunctionReturn(0);
}

static PetscErrorCode attr_write(hid_t file, const char *obj, const char *attr, hid_t type, hid_t space, const void *value)
{
  PetscFunctionBeginUser;
  if (H5Aexists_by_name(file, obj, attr, H5P_DEFAULT) > 0) H5Adelete_by_name(file, obj, attr, H5P_DEFAULT);
  hid_t a = H5Acreate_by_name(file, obj, attr, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  PetscCheck(a >= 0, PETSC_COMM_SELF, BO_ERR_RUNTIME, "%s: cannot write attribute %s; expected a writable file", obj, attr);
  herr_t status = H5Awrite(a, type, value);
  H5Aclose(a);
  PetscCheck(status >= 0, PETSC_COMM_SELF, BO_ERR_RUNTIME, "%s: cannot write attribute %s; expected a writable file", obj, attr);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_attr_write_string(hid_t file, const char *obj, const char *attr, const char *value)
{
  PetscFunctionBeginUser;
  hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR);
  H5Tset_size(type, strlen(value) + 1);
  PetscErrorCode e = attr_write(file, obj, attr, type, space, value);
  H5Tclose(type);
  H5Sclose(space);
  PetscCall(e);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_attr_write_double(hid_t file, const char *obj, const char *attr, double value)
{
  PetscFunctionBeginUser;
  hid_t          space = H5Screate(H5S_SCALAR);
  PetscErrorCode e     = attr_write(file, obj, attr, H5T_NATIVE_DOUBLE, space, &value);
  H5Sclose(space);
  PetscCall(e);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_attr_write_int64(hid_t file, const char *obj, const char *attr, int64_t value)
{
  PetscFunctionBeginUser;
  PetscCall(bo_h5_attr_write_int64s(file, obj, attr, 1, &value));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_attr_write_int64s(hid_t file, const char *obj, const char *attr, int64_t count, const int64_t *values)
{
  hsize_t dims[1] = {(hsize_t)count};

  PetscFunctionBeginUser;
  hid_t          space = count == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL);
  PetscErrorCode e     = attr_write(file, obj, attr, H5T_NATIVE_INT64, space, values);
  H5Sclose(space);
  PetscCall(e);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_attr_read_string(hid_t file, const char *obj, const char *attr, char *buf, size_t len)
{
  PetscFunctionBeginUser;
  buf[0] = 0;
  if (H5Aexists_by_name(file, obj, attr, H5P_DEFAULT) <= 0) PetscFunctionReturn(0);
  hid_t a = H5Aopen_by_name(file, obj, attr, H5P_DEFAULT, H5P_DEFAULT), ftype = H5Aget_type(a);
  if (H5Tget_class(ftype) == H5T_STRING && !H5Tis_variable_str(ftype)) {
    size_t size = H5Tget_size(ftype);
    char  *tmp;
    PetscCall(PetscCalloc1(size + 1, &tmp));
    hid_t mtype = H5Tcopy(H5T_C_S1);
    H5Tset_size(mtype, size + 1);
    if (H5Aread(a, mtype, tmp) >= 0) snprintf(buf, len, "%s", tmp);
    H5Tclose(mtype);
    PetscCall(PetscFree(tmp));
  }
  H5Tclose(ftype);
  H5Aclose(a);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_h5_attr_read_int64(hid_t file, const char *obj, const char *attr, int64_t *value, PetscBool *found)
{
  PetscFunctionBeginUser;
  *found = PETSC_FALSE;
  if (H5Aexists_by_name(file, obj, attr, H5P_DEFAULT) <= 0) PetscFunctionReturn(0);
  hid_t a = H5Aopen_by_name(file, obj, attr, H5P_DEFAULT, H5P_DEFAULT);
  if (H5Aread(a, H5T_NATIVE_INT64, value) >= 0) *found = PETSC_TRUE;
  H5Aclose(a);
  PetscFunctionReturn(0);
}
