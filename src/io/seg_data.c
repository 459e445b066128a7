/* seg_data.c - scenes files (task scenes) as the segmentation drivers read them, and the evaluation
 * of a pixel head on them (seg_data.h). */
#include "boundopt/seg_data.h"
#include "boundopt/checkpoint.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/reduce.h"
#include "boundopt/segloss.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const bo_seg_metric_names[BO_SEG_NMETRICS] = {"dice_fg", "dice_bg", "iou_fg", "prop_true", "prop_soft", "prop_hard", "prop_err_soft", "prop_err_hard", "ce", "kl", "ce_minus_kl"};

PetscErrorCode bo_scene_file_probe(MPI_Comm comm, hid_t f, const char *path, PetscBool need_features, bo_scene_file *sf)
{
  bo_h5_info mi, ii, fi;
  PetscBool  has_masks, has_images, has_feat, fh = PETSC_FALSE, fw = PETSC_FALSE, fc = PETSC_FALSE;
  int64_t    h = 0, w = 0, F = 0;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_exists(f, "/masks", &has_masks));
  PetscCall(bo_h5_exists(f, "/images", &has_images));
  PetscCall(bo_h5_exists(f, "/features", &has_feat));
  PetscCheck(has_masks, comm, BO_ERR_INPUT, "%s: no /masks; expected a scenes file (task scenes)", path);
  PetscCheck(has_feat || !need_features, comm, BO_ERR_INPUT, "%s: no /features; expected a scenes file written with features: true (task scenes)", path);
  PetscCall(bo_h5_dataset_info(f, path, "/masks", &mi));
  PetscCheck(mi.cls == H5T_INTEGER && mi.size == 1, comm, BO_ERR_INPUT, "%s: /masks is not uint8; expected uint8 masks (task scenes)", path);
  sf->legacy = mi.rank == 2 ? PETSC_TRUE : PETSC_FALSE;
  if (sf->legacy) { /* S x (H W): the shape is in the attributes of /images (or /features) */
    const char *holder = has_images ? "/images" : "/features";
    if (has_images || has_feat) {
      PetscCall(bo_h5_attr_read_int64(f, holder, "height", &h, &fh));
      PetscCall(bo_h5_attr_read_int64(f, holder, "width", &w, &fw));
    }
    PetscCheck(fh && fw && h >= 1 && w >= 1 && (int64_t)mi.dims[1] == h * w, comm, BO_ERR_INPUT, "%s: /masks is S x %lld without a matching height x width; expected S x H x W masks (task scenes)", path, (long long)mi.dims[1]);
  } else {
    PetscCheck(mi.rank == 3 && mi.dims[1] >= 1 && mi.dims[2] >= 1, comm, BO_ERR_INPUT, "%s: /masks has rank %d; expected S x H x W masks (task scenes)", path, mi.rank);
    h = (int64_t)mi.dims[1];
    w = (int64_t)mi.dims[2];
  }
  sf->S = (int64_t)mi.dims[0];
  sf->h = h;
  sf->w = w;
  sf->F = 0;
  if (has_images) {
    PetscCall(bo_h5_dataset_info(f, path, "/images", &ii));
    const PetscBool ok = sf->legacy ? ii.rank == 2 && (int64_t)ii.dims[1] == h * w : ii.rank == 3 && (int64_t)ii.dims[1] == h && (int64_t)ii.dims[2] == w;
    PetscCheck(ok && ii.dims[0] == mi.dims[0], comm, BO_ERR_INPUT, "%s: /images does not match /masks (%lld x %lld x %lld); expected S x H x W images (task scenes)", path, (long long)sf->S, (long long)h, (long long)w);
  }
  if (has_feat) {
    PetscCall(bo_h5_dataset_info(f, path, "/features", &fi));
    if (sf->legacy) {
      PetscCall(bo_h5_attr_read_int64(f, "/features", "channels", &F, &fc));
      PetscCheck(fc && F >= 1 && fi.rank == 2 && (int64_t)fi.dims[1] == h * w * F, comm, BO_ERR_INPUT, "%s: /features is not S x (H W F) with attribute channels; expected a scenes file (task scenes)", path);
    } else {
      F = fi.rank == 4 ? (int64_t)fi.dims[3] : 0;
      PetscCheck(fi.rank == 4 && (int64_t)fi.dims[1] == h && (int64_t)fi.dims[2] == w && F >= 1, comm, BO_ERR_INPUT, "%s: /features does not match /masks (%lld x %lld x %lld); expected S x H x W x F feature fields (task scenes)", path, (long long)sf->S, (long long)h, (long long)w);
    }
    PetscCheck(fi.cls == H5T_FLOAT && fi.dims[0] == mi.dims[0], comm, BO_ERR_INPUT, "%s: /features holds %lld scenes of %s; expected float feature fields of the %lld scenes of /masks", path, (long long)fi.dims[0], fi.cls == H5T_FLOAT ? "floats" : "non-floats", (long long)sf->S);
    sf->F = F;
  }
  sf->identity = bo_file_identity(path, (const int64_t[]){sf->S, sf->h, sf->w, sf->F}, 4);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_scene_shard_read(bo_job *job, const char *path, int64_t want, int64_t F_expected, bo_scene_shard *sh)
{
  PetscFunctionBeginUser;
  PetscCall(bo_scene_shard_read_from(job, path, 0, want, F_expected, sh));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_scene_shard_read_from(bo_job *job, const char *path, int64_t first, int64_t want, int64_t F_expected, bo_scene_shard *sh)
{
  hid_t         f;
  bo_scene_file sf;
  int64_t       F, nl, bad = -1;
  PetscMPIInt   bad_rank;
  float        *buf;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_open_read(job->comm, path, &f));
  PetscCall(bo_scene_file_probe(job->comm, f, path, PETSC_TRUE, &sf));
  F = sf.F;
  PetscCheck(F_expected <= 0 || F == F_expected, job->comm, BO_ERR_INPUT, "%s: %lld feature channels; expected %lld like the training scenes", path, (long long)F, (long long)F_expected);
  PetscCheck(first >= 0 && first < sf.S && want <= sf.S - first, job->comm, BO_ERR_INPUT, "%s: %lld scenes; expected at least the %lld asked for", path, (long long)sf.S, (long long)(first + PetscMax(want, 1)));
  sh->count = want ? want : sf.S - first;
  sh->lo    = sh->count * job->rank / job->size;
  sh->hi    = sh->count * (job->rank + 1) / job->size;
  sh->h     = sf.h;
  sh->w     = sf.w;
  sh->npix  = sf.h * sf.w;
  sh->F     = F;
  nl        = sh->hi - sh->lo;
  PetscCall(PetscMalloc2(PetscMax(1, nl * sh->npix * F), &sh->x, PetscMax(1, nl * sh->npix), &sh->y));
  PetscCall(PetscMalloc1(PetscMax(1, nl * sh->npix * F), &buf));
  /* a row of /features is a scene's H x W x F (legacy: H W F) values, of /masks its H x W */
  PetscCall(bo_h5_read_rows(f, "/features", H5T_NATIVE_FLOAT, sh->npix * F, first + sh->lo, first + sh->hi, buf));
  PetscCall(bo_h5_read_rows(f, "/masks", H5T_NATIVE_UINT8, sh->npix, first + sh->lo, first + sh->hi, sh->y));
  PetscCall(bo_h5_close(&f));
  for (int64_t i = 0; i < nl * sh->npix * F; i++) {
    if (bad < 0 && !isfinite(buf[i])) bad = i;
    sh->x[i] = buf[i];
  }
  PetscCall(PetscFree(buf));
  PetscCall(bo_error_any(job->comm, bad >= 0, &bad_rank));
  PetscCheck(bad_rank < 0, job->comm, BO_ERR_INPUT, "%s: /features has a non-finite value; expected finite feature fields", path);
  for (int64_t i = 0; i < nl * sh->npix; i++) sh->y[i] = sh->y[i] > 0; /* foreground = any object */
  PetscFunctionReturn(0);
}

PetscErrorCode bo_scene_shard_destroy(bo_scene_shard *sh)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree2(sh->x, sh->y));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_scene_shard_proportions(MPI_Comm comm, const bo_scene_shard *sh, double *target)
{
  PetscFunctionBeginUser;
  PetscCall(PetscArrayzero(target, 2 * sh->count));
  for (int64_t s = sh->lo; s < sh->hi; s++) {
    int64_t fg = 0;
    for (int64_t i = 0; i < sh->npix; i++) fg += sh->y[(s - sh->lo) * sh->npix + i];
    target[2 * s + 1] = (double)fg / (double)sh->npix;
    target[2 * s]     = 1 - target[2 * s + 1];
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, target, (int)(2 * sh->count), MPI_DOUBLE, MPI_SUM, comm));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_seg_eval(const bo_head *head, const bo_scene_shard *sh, double *rows)
{
  const int64_t  nl = sh->hi - sh->lo;
  double        *z;
  bo_seg_metrics m;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(2 * sh->npix, &z));
  for (int64_t s = 0; s < nl; s++) {
    double *r = rows + s * BO_SEG_NMETRICS;
    PetscCall(bo_head_forward(head, sh->npix, sh->x + s * sh->npix * sh->F, z));
    PetscCall(bo_seg_image_metrics(sh->npix, z, sh->y + s * sh->npix, &m));
    r[0] = m.dice_fg; r[1] = m.dice_bg; r[2] = m.iou_fg; r[3] = m.prop_true; r[4] = m.prop_soft; r[5] = m.prop_hard;
    r[6] = fabs(m.prop_soft - m.prop_true); r[7] = fabs(m.prop_hard - m.prop_true); r[8] = m.ce; r[9] = m.kl; r[10] = m.ce - m.kl;
  }
  PetscCall(PetscFree(z));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_seg_eval_write(bo_job *job, hid_t file, const char *group, const bo_scene_shard *sh, const double *rows, double *mean, double *ci)
{
  const int     M = BO_SEG_NMETRICS;
  const int64_t nl = sh->hi - sh->lo, n = sh->count;
  double        maxabs[BO_SEG_NMETRICS] = {0}, bound = 1, add[2 * BO_SEG_NMETRICS], tot[2 * BO_SEG_NMETRICS];
  char          name[256], cols[256] = "";
  bo_exactsum   sum;

  PetscFunctionBeginUser;
  for (int64_t s = 0; s < nl; s++)
    for (int j = 0; j < M; j++) maxabs[j] = PetscMax(maxabs[j], fabs(rows[s * M + j]));
  PetscCall(bo_reduce_max_abs(job->comm, M, maxabs, maxabs));
  for (int j = 0; j < M; j++) bound = PetscMax(bound, maxabs[j] * maxabs[j]);
  PetscCall(bo_exactsum_create(2 * M, bound * (double)n, &sum));
  for (int64_t s = 0; s < nl; s++) {
    for (int j = 0; j < M; j++) {
      add[j]     = rows[s * M + j];
      add[M + j] = add[j] * add[j];
    }
    PetscCall(bo_exactsum_add(sum, add));
  }
  PetscCall(bo_exactsum_allreduce(job->comm, sum, tot));
  PetscCall(bo_exactsum_destroy(&sum));
  for (int j = 0; j < M; j++) {
    const double mu = tot[j] / (double)n, var = n > 1 ? PetscMax(0.0, (tot[M + j] - n * mu * mu) / (double)(n - 1)) : 0;
    mean[j] = mu;
    ci[j]   = 1.96 * sqrt(var / (double)n);
    if (j) strncat(cols, ",", sizeof cols - strlen(cols) - 1);
    strncat(cols, bo_seg_metric_names[j], sizeof cols - strlen(cols) - 1);
  }
  snprintf(name, sizeof name, "%s/eval/metrics", group);
  PetscCall(bo_h5_write_rows(file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, n, M, sh->lo, sh->hi, rows));
  PetscCall(bo_h5_attr_write_string(file, name, "columns", cols));
  for (int j = 0; j < M; j++) {
    char an[64];
    snprintf(an, sizeof an, "mean_%s", bo_seg_metric_names[j]);
    PetscCall(bo_h5_attr_write_double(file, group, an, mean[j]));
    snprintf(an, sizeof an, "ci95_%s", bo_seg_metric_names[j]);
    PetscCall(bo_h5_attr_write_double(file, group, an, ci[j]));
  }
  PetscFunctionReturn(0);
}
