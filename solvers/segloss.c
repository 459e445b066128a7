/* segloss.c - SegLossBias compound losses and per-image segmentation metrics (segloss.h). */
#include "boundopt/segloss.h"
#include "boundopt/error.h"
#include <math.h>
#include <string.h>

const char *const bo_seg_loss_names[BO_SEG_NLOSSES] = {"ce", "dice", "logdice", "ce+l1", "ce+kl"};

void bo_seg_loss_defaults(bo_seg_loss_opts *o) { *o = (bo_seg_loss_opts){.alpha = 1, .T = 10, .smooth = 1e-10}; }

PetscBool bo_seg_loss_from_name(const char *name, bo_seg_loss_kind *kind)
{
  for (int k = 0; k < BO_SEG_NLOSSES; k++)
    if (!strcmp(name, bo_seg_loss_names[k])) {
      *kind = (bo_seg_loss_kind)k;
      return PETSC_TRUE;
    }
  return PETSC_FALSE;
}

PetscErrorCode bo_seg_loss(bo_seg_loss_kind kind, const bo_seg_loss_opts *o, const bo_loss_batch *b, const uint8_t *labels, const double *target, double *value, double *terms, double *grad)
{
  double       t0 = 0, t1 = 0;
  bo_prop_opts prop;

  PetscFunctionBeginUser;
  PetscCheck(kind >= 0 && kind < BO_SEG_NLOSSES, PETSC_COMM_SELF, BO_ERR_INPUT, "segloss: loss %d; expected one of ce, dice, logdice, ce+l1, ce+kl", (int)kind);
  PetscCheck(o && isfinite(o->alpha) && o->alpha >= 0, PETSC_COMM_SELF, BO_ERR_INPUT, "segloss: alpha %g; expected alpha >= 0", o ? o->alpha : NAN);
  bo_prop_defaults(&prop);
  prop.temperature = o->T;
  prop.smooth      = o->smooth;
  if (kind == BO_SEG_DICE || kind == BO_SEG_LOGDICE) {
    bo_loss_batch batch = *b; /* batch Dice: one group over every image */
    batch.ngroups = 1;
    batch.group   = NULL;
    PetscCall(bo_loss_dice(&batch, labels, NULL, kind == BO_SEG_DICE ? BO_DICE_LINEAR : BO_DICE_LOG, 1.0, &t0, grad));
  } else {
    PetscCall(bo_loss_ce(b, labels, NULL, 1.0, &t0, grad));
    if (kind == BO_SEG_CE_L1) PetscCall(bo_loss_l1_prop(b, &prop, target, o->alpha, &t1, grad));
    if (kind == BO_SEG_CE_KL) PetscCall(bo_loss_kl_prop(b, &prop, target, BO_KL_PRIOR_PRED, 0.0, o->alpha, &t1, grad));
  }
  if (terms) { terms[0] = t0; terms[1] = t1; }
  if (value) *value = t0 + o->alpha * t1;
  PetscFunctionReturn(0);
}

void bo_sfda_defaults(bo_sfda_opts *o) { *o = (bo_sfda_opts){.l_se = 1, .l_prior = 1, .dir = BO_KL_PRED_PRIOR, .prop = BO_PROP_MEAN}; }

PetscErrorCode bo_sfda_loss(const bo_sfda_opts *o, const bo_loss_batch *b, const double *class_w, const double *prior, double *value, double *terms, double *grad)
{
  double       t0 = 0, t1 = 0;
  bo_prop_opts prop;

  PetscFunctionBeginUser;
  PetscCheck(o && o->l_se >= 0 && o->l_prior >= 0, PETSC_COMM_SELF, BO_ERR_INPUT, "segloss: SFDA weights %g, %g; expected weights >= 0", o ? o->l_se : NAN, o ? o->l_prior : NAN);
  bo_prop_defaults(&prop);
  prop.kind = o->prop;
  if (o->l_se > 0) PetscCall(bo_loss_entropy(b, class_w, o->l_se, &t0, grad));
  if (o->l_prior > 0) PetscCall(bo_loss_kl_prop(b, &prop, prior, o->dir, 1e-10, o->l_prior, &t1, grad));
  if (terms) { terms[0] = t0; terms[1] = t1; }
  if (value) *value = o->l_se * t0 + o->l_prior * t1;
  PetscFunctionReturn(0);
}

PetscErrorCode bo_seg_weak_disk(int64_t h, int64_t w, const uint8_t *labels, double radius, uint8_t *weak)
{
  double  cy = 0, cx = 0, best = INFINITY;
  int64_t nfg = 0, at = -1;

  PetscFunctionBeginUser;
  PetscCheck(h >= 1 && w >= 1 && labels && weak && radius >= 0, PETSC_COMM_SELF, BO_ERR_INPUT, "segloss: weak labels of a %lld x %lld image, radius %g; expected an image and radius >= 0", (long long)h, (long long)w, radius);
  for (int64_t i = 0; i < h * w; i++) {
    weak[i] = BO_LABEL_IGNORE;
    if (labels[i]) { cy += (double)(i / w); cx += (double)(i % w); nfg++; }
  }
  if (!nfg) PetscFunctionReturn(0);
  cy /= (double)nfg; cx /= (double)nfg;
  for (int64_t i = 0; i < h * w; i++) {
    const double d = (i / w - cy) * (i / w - cy) + (i % w - cx) * (i % w - cx);
    if (labels[i] && d < best) { best = d; at = i; }
  }
  for (int64_t i = 0; i < h * w; i++) {
    const double dy = (double)(i / w - at / w), dx = (double)(i % w - at % w);
    if (labels[i] && dy * dy + dx * dx <= radius * radius) weak[i] = 1;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_seg_image_metrics(int64_t n, const double *logits, const uint8_t *labels, bo_seg_metrics *m)
{
  int64_t       tp = 0, fp = 0, fn = 0, tn = 0;
  double        pihat[2], prior[2];
  bo_prop_opts  prop;
  bo_loss_batch b = {.comm = PETSC_COMM_SELF, .n = n, .k = 2, .logits = logits, .ngroups = 1};

  PetscFunctionBeginUser;
  PetscCheck(n >= 1 && logits && labels, PETSC_COMM_SELF, BO_ERR_INPUT, "segloss: %lld pixels; expected an image of at least one pixel", (long long)n);
  for (int64_t i = 0; i < n; i++) {
    PetscCheck(labels[i] <= 1, PETSC_COMM_SELF, BO_ERR_INPUT, "segloss: pixel %lld has label %d; expected labels 0/1", (long long)i, (int)labels[i]);
    const int pred = logits[2 * i + 1] > logits[2 * i], y = labels[i];
    tp += pred && y; fp += pred && !y; fn += !pred && y; tn += !pred && !y;
  }
  bo_prop_defaults(&prop); /* T 1, s 0: the plain mean of the posteriors */
  PetscCall(bo_loss_proportions(&b, &prop, pihat, NULL));
  m->dice_fg   = tp + fp + fn ? 2.0 * tp / (double)(2 * tp + fp + fn) : 1.0;
  m->dice_bg   = tn + fp + fn ? 2.0 * tn / (double)(2 * tn + fp + fn) : 1.0;
  m->iou_fg    = tp + fp + fn ? (double)tp / (double)(tp + fp + fn) : 1.0;
  m->prop_true = (double)(tp + fn) / (double)n;
  m->prop_soft = pihat[1];
  m->prop_hard = (double)(tp + fp) / (double)n;
  prior[0] = 1 - m->prop_true; prior[1] = m->prop_true;
  /* the same CE and KL functions the training uses: one source of truth for the bound check */
  PetscCall(bo_loss_ce(&b, labels, NULL, 1.0, &m->ce, NULL));
  PetscCall(bo_loss_kl_prop(&b, &prop, prior, BO_KL_PRIOR_PRED, 0.0, 1.0, &m->kl, NULL));
  PetscFunctionReturn(0);
}
