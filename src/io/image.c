/* image.c - PNG or HDF5 /image in, atomic PNG copies out (image.h). */
#include "boundopt/image.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef enum { FORMAT_NONE, FORMAT_PNG, FORMAT_HDF5 } image_format;

/* Rank 0 looks at the first bytes; a missing file is an error there. */
static PetscErrorCode sniff(const char *path, int *format)
{
  static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, hdf[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  unsigned char sig[8] = {0};
  FILE         *f;
  size_t        got;

  PetscFunctionBeginUser;
  errno = 0;
  f     = fopen(path, "rb");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open (%s); expected a PNG image or an HDF5 file with /image", path, strerror(errno));
  got = fread(sig, 1, 8, f);
  fclose(f);
  *format = FORMAT_NONE;
  if (got == 8 && !memcmp(sig, png, 8)) *format = FORMAT_PNG;
  else if (got == 8 && !memcmp(sig, hdf, 8)) *format = FORMAT_HDF5;
  PetscCheck(*format != FORMAT_NONE, PETSC_COMM_SELF, BO_ERR_INPUT, "%s: not an image (neither PNG nor HDF5); expected a PNG image (8/16-bit grey or RGB) or an HDF5 file with /image", path);
  PetscFunctionReturn(0);
}

static PetscErrorCode bcast_doubles(MPI_Comm comm, double *a, int64_t n)
{
  PetscFunctionBeginUser;
  for (int64_t done = 0; done < n;) {
    int count = (int)PetscMin(n - done, (int64_t)1 << 27);
    PetscCallMPI(MPI_Bcast(a + done, count, MPI_DOUBLE, 0, comm));
    done += count;
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode read_png(MPI_Comm comm, const char *path, bo_image *img)
{
  PetscMPIInt    rank;
  PetscErrorCode ierr = 0;
  int64_t        shape[4];

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(bo_error_try_begin());
  if (!rank) ierr = bo_png_read(path, img);
  PetscCall(bo_error_try_end(comm, ierr));
  shape[0] = img->h, shape[1] = img->w, shape[2] = img->c, shape[3] = img->bit_depth;
  PetscCallMPI(MPI_Bcast(shape, 4, MPI_INT64_T, 0, comm));
  if (rank) {
    img->h = shape[0], img->w = shape[1], img->c = (int)shape[2], img->bit_depth = (int)shape[3];
    PetscCall(PetscMalloc1((size_t)(img->h * img->w * img->c), &img->data));
  }
  PetscCall(bcast_doubles(comm, img->data, img->h * img->w * img->c));
  PetscFunctionReturn(0);
}

static PetscErrorCode read_hdf5(MPI_Comm comm, const char *path, bo_image *img)
{
  hid_t      f;
  PetscBool  has, found;
  bo_h5_info info;
  int64_t    depth = 8;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_open_read(comm, path, &f));
  PetscCall(bo_h5_exists(f, "/image", &has));
  PetscCheck(has, comm, BO_ERR_INPUT, "%s: no /image dataset; expected an HDF5 image file (e.g. from task import with format png)", path);
  PetscCall(bo_h5_dataset_info(f, path, "/image", &info));
  PetscCheck(info.cls == H5T_FLOAT && (info.rank == 2 || (info.rank == 3 && (info.dims[2] == 1 || info.dims[2] == 3))), comm, BO_ERR_INPUT, "%s: /image is not an H x W or H x W x C (C = 1 or 3) float array; expected a grey or RGB image of floats in [0,1]", path);
  img->h = (int64_t)info.dims[0];
  img->w = (int64_t)info.dims[1];
  img->c = info.rank == 3 ? (int)info.dims[2] : 1;
  PetscCall(PetscMalloc1((size_t)(img->h * img->w * img->c) + 1, &img->data));
  PetscCall(bo_h5_read_array(f, "/image", H5T_NATIVE_DOUBLE, img->data));
  PetscCall(bo_h5_attr_read_int64(f, "/image", "bit_depth", &depth, &found));
  img->bit_depth = found && depth == 16 ? 16 : 8;
  PetscCall(bo_h5_close(&f));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_image_read(MPI_Comm comm, const char *path, bo_image *img)
{
  PetscMPIInt    rank;
  PetscErrorCode ierr = 0;
  int            format = FORMAT_NONE;
  int64_t        n, bad = -1;

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(img, sizeof *img));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(bo_error_try_begin());
  if (!rank) ierr = sniff(path, &format);
  PetscCall(bo_error_try_end(comm, ierr));
  PetscCallMPI(MPI_Bcast(&format, 1, MPI_INT, 0, comm));
  if (format == FORMAT_PNG) PetscCall(read_png(comm, path, img));
  else PetscCall(read_hdf5(comm, path, img));
  n = img->h * img->w * img->c;
  for (int64_t k = 0; k < n && bad < 0; k++)
    if (!isfinite(img->data[k])) bad = k;
  PetscCheck(bad < 0, comm, BO_ERR_INPUT, "%s: sample %lld (row %lld, column %lld) is not finite; expected finite intensities in [0,1]", path, (long long)bad, (long long)(bad / img->c / img->w), (long long)(bad / img->c % img->w));
  PetscFunctionReturn(0);
}

void bo_image_sibling_path(const char *results, const char *name, char *out, size_t len)
{
  size_t n = strlen(results);

  if (n > 3 && !strcmp(results + n - 3, ".h5")) n -= 3;
  else if (n > 5 && !strcmp(results + n - 5, ".hdf5")) n -= 5;
  snprintf(out, len, "%.*s-%s.png", (int)n, results, name);
}

PetscErrorCode bo_image_png_stage(MPI_Comm comm, const char *path, const bo_image *img, int bit_depth, bo_png_staged *s)
{
  PetscMPIInt    rank;
  PetscErrorCode ierr = 0;
  char           a[PETSC_MAX_PATH_LEN], b[PETSC_MAX_PATH_LEN];

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  snprintf(s->path, sizeof s->path, "%s", path);
  snprintf(a, sizeof a, "%s", path);
  snprintf(b, sizeof b, "%s", path);
  snprintf(s->tmp, sizeof s->tmp, "%s/.%s.tmp.%ld", dirname(a), basename(b), (long)getpid());
  PetscCall(bo_error_try_begin());
  if (!rank) {
    bo_error_register_tempfile(s->tmp);
    ierr = bo_png_write(s->tmp, img, bit_depth);
  }
  PetscCall(bo_error_try_end(comm, ierr));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_image_png_publish(MPI_Comm comm, bo_png_staged *s)
{
  PetscMPIInt rank;
  int         err = 0;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (!rank) {
    if (rename(s->tmp, s->path)) err = errno;
    else bo_error_unregister_tempfile(s->tmp);
  }
  PetscCallMPI(MPI_Bcast(&err, 1, MPI_INT, 0, comm));
  PetscCheck(!err, comm, BO_ERR_RUNTIME, "%s: cannot rename the finished PNG into place (%s); expected a writable folder", s->path, strerror(err));
  PetscFunctionReturn(0);
}
