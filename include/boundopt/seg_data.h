/* seg_data.h - the scenes files of task scenes as the segmentation drivers read them (train-seg,
 * adapt, mixed, fewshot-seg, ...): the file's geometry, this rank's scenes with feature fields, the
 * per-image evaluation of a pixel head, and its summary.
 *
 * Scenes file layout (task scenes, src/tasks/scenes.c), rows = scenes:
 *   /images    S x H x W float32        /masks  S x H x W uint8 (0 background, 1 + class)
 *   /features  S x H x W x F float32 (features: true): channel last, so scene s, pixel (y, x) has
 *              its F channels contiguous, pixel index i = y W + x (row-major) everywhere.
 *   Files of boundopt before the N-D rows (legacy: /images and /masks S x (H W), /features
 *   S x (H W F), the shape in the attributes height, width, channels) hold the same values in the
 *   same order and are read alike.
 *
 * Contract
 *   bo_scene_file_probe (collective; file open on comm): S, H, W and F (0 without /features) of an
 *   open scenes file, from the dataset shapes (legacy: the attributes).  Refuses, with one line
 *   naming the file, a file without /masks (or, with need_features, without /features), masks that
 *   are not uint8, and /images or /features whose shape does not match /masks.
 *   bo_scene_shard_read (collective): the first `want` scenes (0: all) of a file written by task
 *   scenes with features: true; rank r holds the contiguous scenes [S r/P, S (r+1)/P) as doubles
 *   (x: npix F per scene, npix = h w) and binary labels (y = mask > 0: foreground = any object).
 *   Refuses, with one line naming the file, what bo_scene_file_probe refuses, non-finite values,
 *   a channel count other than F_expected (> 0), and fewer scenes than asked.
 *   bo_scene_shard_read_from: the same for the scenes first .. first + want - 1 (want 0: to the
 *   end); shard scene s is the file's scene first + s.
 *   bo_scene_shard_proportions (collective): target (count x 2, replicated) = each scene's
 *   (background, foreground) fraction; each entry has one non-zero addend, so the sum is exact.
 *   bo_seg_eval (local): BO_SEG_NMETRICS values per scene of the shard (columns bo_seg_metric_names).
 *   bo_seg_eval_write (collective): /G/eval/metrics rows, attributes mean_<col> and ci95_<col>
 *   (1.96 sd / sqrt(S)) on /G from exact (rank-count independent) sums; returns mean and ci.
 */
#ifndef BOUNDOPT_SEG_DATA_H
#define BOUNDOPT_SEG_DATA_H
#include "boundopt/heads.h"
#include "boundopt/job.h"
#include <hdf5.h>

#define BO_SEG_NMETRICS 11
extern const char *const bo_seg_metric_names[BO_SEG_NMETRICS]; /* dice_fg, dice_bg, iou_fg, prop_true, prop_soft, prop_hard, prop_err_soft, prop_err_hard, ce, kl, ce_minus_kl */

typedef struct {
  int64_t   S, h, w; /* scenes, pixel rows, pixel columns */
  int64_t   F;       /* feature channels; 0 without /features */
  PetscBool legacy;  /* S x (H W) rows of boundopt before N-D rows (read alike) */
  uint64_t  identity;/* path, size, mtime and shape hashed: names the file in checkpoints (checkpoint.h) */
} bo_scene_file;

PetscErrorCode bo_scene_file_probe(MPI_Comm comm, hid_t file, const char *path, PetscBool need_features, bo_scene_file *sf);

typedef struct {
  int64_t  count;    /* scenes used (global) */
  int64_t  lo, hi;   /* this rank's scenes */
  int64_t  npix, F;  /* pixels per scene, feature channels */
  double  *x;        /* (hi - lo) npix x F */
  uint8_t *y;        /* (hi - lo) npix, 0/1 */
  int64_t  h, w;     /* scene size: npix = h w, pixel i at row i / w, column i % w */
} bo_scene_shard;

PetscErrorCode bo_scene_shard_read(bo_job *job, const char *path, int64_t want, int64_t F_expected, bo_scene_shard *sh);
PetscErrorCode bo_scene_shard_read_from(bo_job *job, const char *path, int64_t first, int64_t want, int64_t F_expected, bo_scene_shard *sh);
PetscErrorCode bo_scene_shard_destroy(bo_scene_shard *sh);
PetscErrorCode bo_scene_shard_proportions(MPI_Comm comm, const bo_scene_shard *sh, double *target);
PetscErrorCode bo_seg_eval(const bo_head *head, const bo_scene_shard *sh, double *rows);
PetscErrorCode bo_seg_eval_write(bo_job *job, hid_t file, const char *group, const bo_scene_shard *sh, const double *rows, double *mean, double *ci);
#endif
