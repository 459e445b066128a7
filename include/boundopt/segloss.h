/* segloss.h - the compound segmentation losses of SegLossBias (spec losses.md section 3) built from
 * losses.h terms, and the per-image metrics of the train-seg task.
 *
 * Losses (binary or k-class logits, labels 0..k-1; groups = images):
 *   ce       CE(z, y), pixel mean
 *   dice     1 - soft Dice, batch Dice per class over all pixels of all images (one group), empty
 *            classes masked (spec 3 "Dice baseline")
 *   logdice  -log soft Dice, same scope
 *   ce+l1    CE + alpha mean_{image, k} |pihat - pi|, pihat of softmax(T z) with smooth s (T 10, s 1e-10)
 *   ce+kl    CE + alpha mean_image KL(pi || pihat) (gt-first), same pihat
 * pi = target: ngroups x k, the ground-truth proportions of each image.  terms[0] = the CE or Dice
 * part, terms[1] = the proportion part (0 for ce, dice, logdice); value = terms[0] + alpha terms[1].
 * COLLECTIVE on b->comm (losses.h: rank-count independent values and gradients).
 *
 * Metrics of one image (local), from logits n x 2 (class 1 = foreground) and labels 0/1:
 *   hard prediction = argmax (foreground when z_1 > z_0);
 *   dice_fg = 2 |P n G| / (|P| + |G|) (1 when both are empty), dice_bg likewise, iou_fg = |P n G| / |P u G|;
 *   prop_true = |G|/n, prop_soft = mean_i p_i1, prop_hard = |P|/n;
 *   ce = mean CE, kl = KL(pi || pihat) with pihat = (1 - prop_soft, prop_soft): the bound of spec 3,
 *   CE >= KL(pi || pihat), holds for every image and every prediction (Jensen on each class region).
 */
#ifndef BOUNDOPT_SEGLOSS_H
#define BOUNDOPT_SEGLOSS_H
#include "boundopt/losses.h"

typedef enum { BO_SEG_CE, BO_SEG_DICE, BO_SEG_LOGDICE, BO_SEG_CE_L1, BO_SEG_CE_KL, BO_SEG_NLOSSES } bo_seg_loss_kind;
extern const char *const bo_seg_loss_names[BO_SEG_NLOSSES]; /* "ce", "dice", "logdice", "ce+l1", "ce+kl" */

typedef struct {
  double alpha;  /* 1 */
  double T;      /* 10: temperature of the proportion term only */
  double smooth; /* 1e-10 */
} bo_seg_loss_opts;

void bo_seg_loss_defaults(bo_seg_loss_opts *o);
/* Name -> kind; PETSC_FALSE when unknown. */
PetscBool bo_seg_loss_from_name(const char *name, bo_seg_loss_kind *kind);
/* value, terms[2] (may be NULL); grad (n x k) += dL/dz (may be NULL).  Collective. */
PetscErrorCode bo_seg_loss(bo_seg_loss_kind kind, const bo_seg_loss_opts *o, const bo_loss_batch *b, const uint8_t *labels, const double *target, double *value, double *terms, double *grad);

/* SFDA objective (spec losses.md section 2), on target images only:
 *   L = l_se [-(1/N) sum_i sum_k w_k p_ik log p_ik] + l_prior (1/B) sum_b KL_b
 *   KL_b = KL(pihat_b || prior_b) (pred_prior, the reference) or KL(prior_b || pihat_b) (prior_pred),
 *   pihat of softmax(z) (T = 1) by the plain mean or the reference's max-normalised estimator,
 *   log(. + 1e-10) as the reference (a zero prior strongly suppresses an absent class).
 * class_w: k entropy weights (reference [0.1, 0.9] binary); prior: ngroups x k.  l_prior = 0 gives
 * the entropy-only ablation.  terms[0] = entropy, terms[1] = KL; value = l_se t0 + l_prior t1.
 * Collective on b->comm. */
typedef struct {
  double       l_se, l_prior; /* 1, 1 */
  bo_kl_dir    dir;           /* BO_KL_PRED_PRIOR */
  bo_prop_kind prop;          /* BO_PROP_MEAN (project default; the reference: maxnorm) */
} bo_sfda_opts;

void bo_sfda_defaults(bo_sfda_opts *o);
PetscErrorCode bo_sfda_loss(const bo_sfda_opts *o, const bo_loss_batch *b, const double *class_w, const double *prior, double *value, double *terms, double *grad);

/* Knowledge distillation (mixed supervision, spec section 6): bo_loss_kd in losses.h. */

/* Weak labels of one h x w binary image (mixed supervision's "a few foreground pixels"): the
 * foreground pixels within `radius` of the foreground pixel nearest the foreground centroid
 * (ties: the first in row-major order) get 1, every other pixel BO_LABEL_IGNORE (unlabelled).  An
 * image without foreground gets no label.  Local. */
PetscErrorCode bo_seg_weak_disk(int64_t h, int64_t w, const uint8_t *labels, double radius, uint8_t *weak);

typedef struct {
  double dice_fg, dice_bg, iou_fg, prop_true, prop_soft, prop_hard, ce, kl;
} bo_seg_metrics;

PetscErrorCode bo_seg_image_metrics(int64_t n, const double *logits, const uint8_t *labels, bo_seg_metrics *m);
#endif
