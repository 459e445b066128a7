/* seg_data.c - scenes with feature fields for the segmentation drivers, and their evaluation (seg_data.h). */
#include "boundopt/seg_data.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/reduce.h"
#include "boundopt/segloss.h"
#include <math.h>
#include <string.h>

const char *const bo_seg_metric_names[BO_SEG_NMETRICS] = {"dice_fg", "dice_bg", "iou_fg", "prop_true", "prop_soft", "prop_hard", "prop_err_soft", "prop_err_hard", "ce", "kl", "ce_minus_kl"};

PetscErrorCode bo_scene_shard_read(bo_job *job, const char *path, int64_t want, int64_t F_expected, bo_scene_shard *sh)
{
  hid_t       f;
  bo_h5_info  fi, mi;
  int64_t     h = 0, w = 0, F = 0, nl, bad = -1;
  PetscBool   fh, fw, fc, has_feat;
  PetscMPIInt first;
  float      *buf;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_open_read(job->comm, path, &f));
  PetscCall(bo_h5_exists(f, "/features", &has_feat));
  if (!has_feat) PetscCall(bo_h5_close(&f));
  PetscCheck(has_feat, job->comm, BO_ERR_INPUT, "%s: no /features; expected a scenes file written with features: true (task scenes)", path);
  PetscCall(bo_h5_attr_read_int64(f, "/features", "height", &h, &fh));
  PetscCall(bo_h5_attr_read_int64(f, "/features", "width", &w, &fw));
  PetscCall(bo_h5_attr_read_int64(f, "/features", "channels", &F, &fc));
  PetscCall(bo_h5_dataset_info(f, path, "/features", &fi));
  PetscCall(bo_h5_dataset_info(f, path, "/masks", &mi));
  PetscCheck(fh && fw && fc && h >= 1 && w >= 1 && F >= 1 && fi.rank == 2 && fi.cls == H5T_FLOAT && (int64_t)fi.dims[1] == h * w * F, job->comm, BO_ERR_INPUT, "%s: /features is not S x (H W F) with attributes height, width, channels; expected a scenes file (task scenes)", path);
  PetscCheck(mi.rank == 2 && mi.dims[0] == fi.dims[0] && (int64_t)mi.dims[1] == h * w && mi.cls == H5T_INTEGER && mi.size == 1, job->comm, BO_ERR_INPUT, "%s: /masks does not match /features; expected S x (H W) uint8 masks", path);
  PetscCheck(F_expected <= 0 || F == F_expected, job->comm, BO_ERR_INPUT, "%s: %lld feature channels; expected %lld like the training scenes", path, (long long)F, (long long)F_expected);
  PetscCheck(want <= (int64_t)fi.dims[0], job->comm, BO_ERR_INPUT, "%s: %lld scenes; expected at least the %lld asked for", path, (long long)fi.dims[0], (long long)want);
  sh->count = want ? want : (int64_t)fi.dims[0];
  sh->lo    = sh->count * job->rank / job->size;
  sh->hi    = sh->count * (job->rank + 1) / job->size;
  sh->npix  = h * w;
  sh->F     = F;
  nl        = sh->hi - sh->lo;
  PetscCall(PetscMalloc2(PetscMax(1, nl * sh->npix * F), &sh->x, PetscMax(1, nl * sh->npix), &sh->y));
  PetscCall(PetscMalloc1(PetscMax(1, nl * sh->npix * F), &buf));
  PetscCall(bo_h5_read_rows(f, "/features", H5T_NATIVE_FLOAT, sh->npix * F, sh->lo, sh->hi, buf));
  PetscCall(bo_h5_read_rows(f, "/masks", H5T_NATIVE_UINT8, sh->npix, sh->lo, sh->hi, sh->y));
  PetscCall(bo_h5_close(&f));
  for (int64_t i = 0; i < nl * sh->npix * F; i++) {
    if (bad < 0 && !isfinite(buf[i])) bad = i;
    sh->x[i] = buf[i];
  }
  PetscCall(PetscFree(buf));
  PetscCall(bo_error_any(job->comm, bad >= 0, &first));
  PetscCheck(first < 0, job->comm, BO_ERR_INPUT, "%s: /features has a non-finite value; expected finite feature fields", path);
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
