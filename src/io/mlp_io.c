/* mlp_io.c - the trained network in a results file and the train task's checkpoint (see mlp_io.h). */
#include "boundopt/mlp_io.h"
#include "boundopt/checkpoint.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"

PetscErrorCode bo_mlp_write(hid_t file, const bo_mlp *net, const int32_t *classes)
{
  hsize_t dims[1] = {(hsize_t)(net->nlayers + 1)};

  PetscFunctionBeginUser;
  PetscCall(bo_h5_write_array(file, "/network/widths", H5T_NATIVE_INT64, H5T_STD_I64LE, 1, dims, net->width));
  dims[0] = (hsize_t)net->nparam;
  PetscCall(bo_h5_write_array(file, "/network/param", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, net->param));
  dims[0] = (hsize_t)net->width[net->nlayers];
  PetscCall(bo_h5_write_array(file, "/network/classes", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, dims, classes));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_mlp_read(MPI_Comm comm, const char *path, bo_mlp *net, int32_t *classes)
{
  hid_t      file;
  PetscBool  exists;
  bo_h5_info wi, pi, ci;
  int64_t    widths[BO_MLP_MAX_LAYERS + 1];

  PetscFunctionBeginUser;
  PetscCall(bo_h5_open_read(comm, path, &file));
  PetscCall(bo_h5_exists(file, "/network/widths", &exists));
  if (exists) PetscCall(bo_h5_exists(file, "/network/param", &exists));
  if (exists) PetscCall(bo_h5_exists(file, "/network/classes", &exists));
  if (!exists) PetscCall(bo_h5_close(&file));
  PetscCheck(exists, comm, BO_ERR_INPUT, "%s: no /network/{widths,param,classes}; expected the output of task train", path);
  PetscCall(bo_h5_dataset_info(file, path, "/network/widths", &wi));
  PetscCall(bo_h5_dataset_info(file, path, "/network/param", &pi));
  PetscCall(bo_h5_dataset_info(file, path, "/network/classes", &ci));
  const int nl = wi.rank == 1 ? (int)wi.dims[0] - 1 : -1;
  if (!(nl >= 1 && nl <= BO_MLP_MAX_LAYERS && wi.cls == H5T_INTEGER)) PetscCall(bo_h5_close(&file));
  PetscCheck(nl >= 1 && nl <= BO_MLP_MAX_LAYERS && wi.cls == H5T_INTEGER, comm, BO_ERR_INPUT, "%s: /network/widths is not a list of 2 to %d integers; expected the output of task train", path, BO_MLP_MAX_LAYERS + 1);
  PetscCall(bo_h5_read_array(file, "/network/widths", H5T_NATIVE_INT64, widths));
  PetscErrorCode err = bo_mlp_create(widths[0], nl - 1, widths + 1, widths[nl], net);
  if (err) PetscCall(bo_h5_close(&file));
  PetscCall(err);
  PetscBool ok = pi.rank == 1 && (int64_t)pi.dims[0] == net->nparam && ci.rank == 1 && (int64_t)ci.dims[0] == widths[nl] ? PETSC_TRUE : PETSC_FALSE;
  if (!ok) {
    PetscCall(bo_h5_close(&file));
    PetscCall(bo_mlp_destroy(net));
  }
  PetscCheck(ok, comm, BO_ERR_INPUT, "%s: /network/param or /network/classes has the wrong length for widths; expected %lld parameters and %lld classes", path, (long long)net->nparam, (long long)widths[nl]);
  PetscCall(bo_h5_read_array(file, "/network/param", H5T_NATIVE_DOUBLE, net->param));
  PetscCall(bo_h5_read_array(file, "/network/classes", H5T_NATIVE_INT32, classes));
  PetscCall(bo_h5_close(&file));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_mlp_checkpoint_write(MPI_Comm comm, const char *path, uint64_t job_hash, const bo_mlp *net, const bo_optim *opt, int64_t epoch, int64_t ncols, const double *history)
{
  bo_checkpoint ck;

  PetscFunctionBeginUser;
  PetscCall(bo_checkpoint_begin_write(comm, path, job_hash, &ck));
  PetscCall(bo_checkpoint_put_int64(&ck, "epoch", epoch));
  PetscCall(bo_checkpoint_put_doubles(&ck, "param", net->nparam, net->param));
  PetscCall(bo_checkpoint_put_doubles(&ck, "optim_m", opt->n, opt->m));
  if (opt->v) PetscCall(bo_checkpoint_put_doubles(&ck, "optim_v", opt->n, opt->v));
  PetscCall(bo_checkpoint_put_int64(&ck, "optim_step", opt->step));
  PetscCall(bo_checkpoint_put_doubles(&ck, "history", PetscMax(1, epoch * ncols), history));
  PetscCall(bo_checkpoint_end_write(&ck));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_mlp_checkpoint_read(MPI_Comm comm, const char *path, uint64_t job_hash, bo_mlp *net, bo_optim *opt, int64_t *epoch, int64_t ncols, double *history, PetscBool *found)
{
  bo_checkpoint ck;

  PetscFunctionBeginUser;
  PetscCall(bo_checkpoint_open(comm, path, job_hash, &ck, found));
  if (!*found) PetscFunctionReturn(0);
  PetscCall(bo_checkpoint_get_int64(&ck, "epoch", epoch));
  PetscCall(bo_checkpoint_get_doubles(&ck, "param", net->nparam, net->param));
  PetscCall(bo_checkpoint_get_doubles(&ck, "optim_m", opt->n, opt->m));
  if (opt->v) PetscCall(bo_checkpoint_get_doubles(&ck, "optim_v", opt->n, opt->v));
  PetscCall(bo_checkpoint_get_int64(&ck, "optim_step", &opt->step));
  PetscCall(bo_checkpoint_get_doubles(&ck, "history", PetscMax(1, *epoch * ncols), history));
  PetscCall(bo_checkpoint_close(&ck));
  PetscFunctionReturn(0);
}
