/* train_seg.c - task `train-seg`: a foreground/background pixel head on fixed per-pixel features,
 * Adam, under one of two supervisions (-seg_supervision):
 *
 *   pixels       SegLossBias (arXiv 2104.08717, spec losses.md section 3): every pixel labelled,
 *                trained with each loss of -seg_loss (ce, dice, logdice, ce+l1, ce+kl);
 *   descriptors  shape descriptors as the only supervision (arXiv 2105.00859, spec section 5): no
 *                pixel label, only per-image bounds on the size of both classes and the centroid,
 *                per-axis spread and 8-neighbour length of the foreground, made from the ground
 *                truth +- margins (shapebounds.h), enforced with the extended log-barrier psi_t
 *                (t = -seg_t, times -seg_t_factor after each epoch, the spec's schedule) or relu^2
 *                (-seg_penalty quad), weight -seg_shape_weight per descriptor, mean over the
 *                minibatch's images; one head per descriptor set of -seg_descriptors.
 *
 * Head (-seg_head): linear (heads.h LINEAR, 2F + 2 parameters, the default) or mlp (heads.h MLP:
 * -seg_hidden ReLU units, He init from -seg_seed, on features standardised with the training
 * scenes' per-channel mean and std), the same for both supervisions so that CE is the fair peer.
 * Optimisation: -seg_iterations epochs; an epoch is one full-batch step (-seg_batch 0, the default:
 * exactly the first version's arithmetic) or one step per minibatch of -seg_batch scenes, the scenes
 * shuffled every epoch by the stream (seed, epoch) (rng.h): the same minibatches at every rank count,
 * each rank computing its own scenes of each minibatch (possibly none).
 *
 *   task: train-seg
 *   input: jobs/data/scenes-train.h5       # scenes written with `features: true` (task scenes)
 *   output: seg.h5
 *   seg: {loss: "ce,dice,logdice,ce+l1,ce+kl", test: jobs/data/scenes-test.h5, iterations: 200}
 *   seg: {supervision: descriptors, descriptors: "size,size+centroid+dist+length", test: ...}
 *
 * Validation (-seg_val, the reference code's protocol, HKervadec/shape_descriptors main.py): after
 * every epoch the head is scored on labelled validation scenes (mean Dice fg at argmax);
 * -seg_keep best keeps the head of the best epoch (the earliest on ties: its best.pkl, from which
 * its test scores come) and -seg_lr_schedule reference halves the lr after epoch e when
 * e % (best epoch + 20) == 0 (its --schedule, which every run of its makefiles passes; epoch 0
 * included).  The validation labels choose an epoch and the lr; they are never trained on.
 *
 * Spatial context (spec 5 "shape.coords = on", -seg_coords): the head sees the normalised x/(w-1),
 * y/(h-1) channels; they are the file's channels named x and y (task scenes writes them by default)
 * or appended here when the file has none; -seg_coords false drops them.
 *
 * Data-parallel over images: rank r holds the contiguous scenes [S r/P, S (r+1)/P) of the training
 * file; every loss term is collective with exact sums (losses.h), the descriptor objective is per
 * image and its per-image values are summed in scene order, the head gradient is summed per
 * image block (heads.h), and every rank takes the same Adam step (optim.h), so the head, the
 * losses and the metrics are bit-identical at any number of ranks.  The labels are binary:
 * foreground = any object (mask > 0).
 *
 * Results, per loss L or descriptor set D (a group /L or /D, e.g. /ce+l1, /size+centroid):
 *   /L/loss (iterations), /L/loss_terms (iterations x 2: CE or Dice part, proportion part):
 *       per epoch, the mean over its steps of the training loss before each step;
 *   /D/loss (iterations): per epoch, the mean over its steps of weight x mean over the minibatch's
 *       images of the descriptor penalty before each step;
 *   /D/t (iterations): the barrier parameter of each epoch;
 *   /D/bounds  S_train x 24: per training image [lo (2 classes x 6), hi (2 x 6)], descriptors in
 *       losses.h order (size, cx, cy, dx, dy, length), lo > hi where a descriptor is not bounded;
 *       attributes of /D: descriptors, penalty, constraints (active on the training images),
 *       violated (of them by the trained head's soft descriptors) and seed (the kept restart's);
 *   /D/restart_violated (restarts): the violated constraints of each restart's head (-seg_restarts:
 *       heads from seeds seed, seed + 1, ...; the fewest violations is kept, ties the lowest seed);
 *   /X/val_dice, /X/lr (iterations; with -seg_val): the validation scenes' mean Dice fg after each
 *       epoch and the lr the epoch used; attributes of /X: best_epoch (earliest best), val_dice_best
 *       and kept_epoch (the epoch whose head /X/weights holds: -seg_keep best or last);
 *   /X/weights     the trained head's parameters (heads.h layout: linear [W (F x 2), b (2)]);
 *   attributes of /: head, hidden (0 for linear), batch, seed, restarts, val_set, val_first, val_scenes, keep,
 *       lr_schedule, and the options used;
 *   /X/eval/metrics  S_eval x 11 per evaluation image, columns in the attribute `columns`:
 *       dice_fg, dice_bg, iou_fg, prop_true, prop_soft, prop_hard, prop_err_soft, prop_err_hard,
 *       ce, kl, ce_minus_kl (segloss.h);
 *   attributes of /X: mean_<column> and ci95_<column> (1.96 sd / sqrt(S_eval)) for every column,
 *       bound_violations = images with ce < kl (the bound CE >= KL(pi || pihat) says 0),
 *       min_bound_gap = min over images of ce - kl.
 * The evaluation images are -seg_test's scenes (its first -seg_test_scenes), else the training ones.
 */
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/heads.h"
#include "boundopt/memory.h"
#include "boundopt/optim.h"
#include "boundopt/reduce.h"
#include "boundopt/results.h"
#include "boundopt/rng.h"
#include "boundopt/seg_data.h"
#include "boundopt/segloss.h"
#include "boundopt/shapebounds.h"
#include "boundopt/tasks.h"
#include <math.h>
#include <string.h>

#define MAX_SETS 16

typedef struct {
  char                losses[256], test[PETSC_MAX_PATH_LEN], val[PETSC_MAX_PATH_LEN], supervision[32], descriptors[512], penalty[16], head[16], keep[16], lr_schedule[16];
  PetscInt            scenes, test_scenes, val_first, val_scenes, iterations, batch, hidden, seed, restarts;
  PetscReal           lr, beta2, alpha, T, shape_weight, t0, t_factor;
  PetscBool           monitor, coords, descr, mlp, keep_best, lr_reference;
  int                 nloss, nsets;
  bo_seg_loss_kind    loss[BO_SEG_NLOSSES];
  unsigned            set[MAX_SETS];
  bo_penalty_kind     pkind;
  bo_shape_bound_opts bo;
} seg_params;

static PetscErrorCode read_options(bo_job *job, seg_params *p)
{
  PetscFunctionBeginUser;
  snprintf(p->losses, sizeof p->losses, "ce,dice,logdice,ce+l1,ce+kl");
  snprintf(p->supervision, sizeof p->supervision, "pixels");
  snprintf(p->descriptors, sizeof p->descriptors, "size+centroid+dist+length");
  snprintf(p->penalty, sizeof p->penalty, "elb");
  snprintf(p->head, sizeof p->head, "linear");
  snprintf(p->keep, sizeof p->keep, "last");
  snprintf(p->lr_schedule, sizeof p->lr_schedule, "constant");
  p->hidden = 32; p->seed = 1; p->restarts = 1;
  bo_shape_bound_defaults(&p->bo);
  p->bo.centroid_margin = p->bo.dist_margin = 7.5; /* the spec's 20 px of ~256 px slices, scaled to 96 px scenes */
  p->iterations = 200; p->alpha = 1; p->T = 10; p->coords = PETSC_TRUE;
  p->shape_weight = 1e-2; p->t0 = 1; p->t_factor = 1.1;
  PetscOptionsBegin(job->comm, "seg_", "Task train-seg: a pixel head supervised by pixel labels (CE, Dice, CE + proportion) or by shape-descriptor bounds", "boundopt");
  PetscCall(PetscOptionsString("-supervision", "pixels (every pixel labelled) or descriptors (per-image bounds on shape descriptors only)", "", p->supervision, p->supervision, sizeof p->supervision, NULL));
  p->descr = strcmp(p->supervision, "descriptors") ? PETSC_FALSE : PETSC_TRUE;
  p->lr    = p->descr ? 5e-4 : 0.05;  /* spec 5: Adam 5e-4, betas (0.9, 0.99) */
  p->beta2 = p->descr ? 0.99 : 0.999;
  PetscCall(PetscOptionsString("-loss", "pixels: losses, comma separated: ce, dice, logdice, ce+l1, ce+kl", "", p->losses, p->losses, sizeof p->losses, NULL));
  PetscCall(PetscOptionsString("-descriptors", "descriptors: descriptor sets, comma separated, each of size, centroid, dist, length joined by +", "", p->descriptors, p->descriptors, sizeof p->descriptors, NULL));
  PetscCall(PetscOptionsString("-penalty", "descriptors: elb (extended log-barrier) or quad (relu^2)", "", p->penalty, p->penalty, sizeof p->penalty, NULL));
  PetscCall(PetscOptionsReal("-size_margin", "descriptors: size bounds (1 -+ m) x true size", "", p->bo.size_margin, &p->bo.size_margin, NULL));
  PetscCall(PetscOptionsReal("-centroid_margin", "descriptors: centroid bounds true centroid -+ m pixels", "", p->bo.centroid_margin, &p->bo.centroid_margin, NULL));
  PetscCall(PetscOptionsReal("-dist_margin", "descriptors: spread bounds true per-axis std -+ m pixels", "", p->bo.dist_margin, &p->bo.dist_margin, NULL));
  PetscCall(PetscOptionsReal("-length_margin", "descriptors: length bounds (1 -+ m) x true length", "", p->bo.length_margin, &p->bo.length_margin, NULL));
  PetscCall(PetscOptionsReal("-shape_weight", "descriptors: weight of each descriptor's penalty", "", p->shape_weight, &p->shape_weight, NULL));
  PetscCall(PetscOptionsReal("-t", "descriptors: initial barrier parameter t", "", p->t0, &p->t0, NULL));
  PetscCall(PetscOptionsReal("-t_factor", "descriptors: t is multiplied by this after every epoch", "", p->t_factor, &p->t_factor, NULL));
  PetscCall(PetscOptionsString("-head", "Pixel head: linear, or mlp (one hidden layer of -seg_hidden ReLU units on standardised features)", "", p->head, p->head, sizeof p->head, NULL));
  PetscCall(PetscOptionsInt("-hidden", "mlp head: hidden units", "", p->hidden, &p->hidden, NULL));
  PetscCall(PetscOptionsInt("-seed", "Seed of the mlp head's initialisation and of the minibatch order", "", p->seed, &p->seed, NULL));
  PetscCall(PetscOptionsInt("-restarts", "descriptors: heads trained from seeds seed, seed + 1, ...; the one violating the fewest training constraints is kept (ties: the lowest seed)", "", p->restarts, &p->restarts, NULL));
  PetscCall(PetscOptionsInt("-batch", "Scenes per minibatch, one Adam step each, shuffled every epoch (0: one full-batch step per epoch)", "", p->batch, &p->batch, NULL));
  PetscCall(PetscOptionsBool("-coords", "The head sees the normalised x, y channels (appended if the file has none; false: dropped)", "", p->coords, &p->coords, NULL));
  PetscCall(PetscOptionsString("-test", "Scenes file to evaluate on (default: the training scenes)", "", p->test, p->test, sizeof p->test, NULL));
  PetscCall(PetscOptionsInt("-scenes", "Training scenes: the first n of the input (0: all)", "", p->scenes, &p->scenes, NULL));
  PetscCall(PetscOptionsInt("-test_scenes", "Evaluation scenes: the first n (0: all)", "", p->test_scenes, &p->test_scenes, NULL));
  PetscCall(PetscOptionsString("-val", "Labelled validation scenes file, scored (mean Dice fg at argmax) after every epoch; its labels only pick the kept epoch (-seg_keep best) and drive -seg_lr_schedule reference", "", p->val, p->val, sizeof p->val, NULL));
  PetscCall(PetscOptionsInt("-val_first", "Validation scenes start at this scene of -seg_val (e.g. after the training scenes of the same file)", "", p->val_first, &p->val_first, NULL));
  PetscCall(PetscOptionsInt("-val_scenes", "Validation scenes: n from -seg_val_first (0: to the end)", "", p->val_scenes, &p->val_scenes, NULL));
  PetscCall(PetscOptionsString("-keep", "Head kept: last (the last epoch's) or best (the epoch of the best validation Dice, the earliest on ties: the reference's best.pkl; needs -seg_val)", "", p->keep, p->keep, sizeof p->keep, NULL));
  PetscCall(PetscOptionsString("-lr_schedule", "constant, or reference (the reference code's --schedule: lr halved after epoch e when e % (best epoch + 20) == 0; needs -seg_val)", "", p->lr_schedule, p->lr_schedule, sizeof p->lr_schedule, NULL));
  PetscCall(PetscOptionsInt("-iterations", "Epochs (full batch: Adam steps)", "", p->iterations, &p->iterations, NULL));
  PetscCall(PetscOptionsReal("-lr", "Adam learning rate (default 0.05 with pixels, 5e-4 with descriptors)", "", p->lr, &p->lr, NULL));
  PetscCall(PetscOptionsReal("-beta2", "Adam beta2 (default 0.999 with pixels, 0.99 with descriptors)", "", p->beta2, &p->beta2, NULL));
  PetscCall(PetscOptionsReal("-alpha", "pixels: weight of the proportion term of ce+l1 and ce+kl", "", p->alpha, &p->alpha, NULL));
  /* not "-T": PETSc option names ignore case, so -seg_T would be -seg_t, the barrier parameter */
  PetscCall(PetscOptionsReal("-temperature", "pixels: softmax temperature T inside the proportion term", "", p->T, &p->T, NULL));
  PetscCall(PetscOptionsBool("-monitor", "Print the loss at every iteration", "", p->monitor, &p->monitor, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscErrorCode check_options(bo_job *job, seg_params *p)
{
  char *save, *tok, buf[512], bad[64];

  PetscFunctionBeginUser;
  PetscCheck(!strcmp(p->supervision, "pixels") || p->descr, job->comm, BO_ERR_INPUT, "option -seg_supervision: '%s'; expected pixels or descriptors", p->supervision);
  snprintf(buf, sizeof buf, "%s", p->losses);
  for (tok = strtok_r(buf, ", ", &save); tok && !p->descr; tok = strtok_r(NULL, ", ", &save)) {
    bo_seg_loss_kind k;
    PetscCheck(bo_seg_loss_from_name(tok, &k), job->comm, BO_ERR_INPUT, "option -seg_loss: '%s'; expected ce, dice, logdice, ce+l1 or ce+kl", tok);
    for (int q = 0; q < p->nloss; q++) PetscCheck(p->loss[q] != k, job->comm, BO_ERR_INPUT, "option -seg_loss: '%s' twice; expected each loss once", tok);
    p->loss[p->nloss++] = k;
  }
  PetscCheck(p->descr || p->nloss > 0, job->comm, BO_ERR_INPUT, "option -seg_loss: empty; expected at least one loss");
  snprintf(buf, sizeof buf, "%s", p->descriptors);
  for (tok = strtok_r(buf, ", ", &save); tok && p->descr; tok = strtok_r(NULL, ", ", &save)) {
    unsigned s;
    PetscCheck(bo_shape_set_parse(tok, &s, bad, sizeof bad), job->comm, BO_ERR_INPUT, "option -seg_descriptors: '%s' in '%s'; expected size, centroid, dist, length, each at most once per set, joined by +", bad, tok);
    for (int q = 0; q < p->nsets; q++) PetscCheck(p->set[q] != s, job->comm, BO_ERR_INPUT, "option -seg_descriptors: '%s' twice; expected each set once", tok);
    PetscCheck(p->nsets < MAX_SETS, job->comm, BO_ERR_INPUT, "option -seg_descriptors: more than %d sets; expected at most %d", MAX_SETS, MAX_SETS);
    p->set[p->nsets++] = s;
  }
  PetscCheck(!p->descr || p->nsets > 0, job->comm, BO_ERR_INPUT, "option -seg_descriptors: empty; expected at least one set such as size+centroid+dist+length");
  PetscCheck(!strcmp(p->penalty, "elb") || !strcmp(p->penalty, "quad"), job->comm, BO_ERR_INPUT, "option -seg_penalty: '%s'; expected elb or quad", p->penalty);
  p->pkind = strcmp(p->penalty, "quad") ? BO_PENALTY_ELB : BO_PENALTY_QUAD;
  PetscCheck(p->bo.size_margin >= 0 && isfinite(p->bo.size_margin), job->comm, BO_ERR_INPUT, "option -seg_size_margin: %g; expected a margin >= 0", (double)p->bo.size_margin);
  PetscCheck(p->bo.centroid_margin >= 0 && isfinite(p->bo.centroid_margin), job->comm, BO_ERR_INPUT, "option -seg_centroid_margin: %g; expected a margin >= 0 (pixels)", (double)p->bo.centroid_margin);
  PetscCheck(p->bo.dist_margin >= 0 && isfinite(p->bo.dist_margin), job->comm, BO_ERR_INPUT, "option -seg_dist_margin: %g; expected a margin >= 0 (pixels)", (double)p->bo.dist_margin);
  PetscCheck(p->bo.length_margin >= 0 && isfinite(p->bo.length_margin), job->comm, BO_ERR_INPUT, "option -seg_length_margin: %g; expected a margin >= 0", (double)p->bo.length_margin);
  PetscCheck(p->shape_weight > 0 && isfinite(p->shape_weight), job->comm, BO_ERR_INPUT, "option -seg_shape_weight: %g; expected weight > 0", (double)p->shape_weight);
  PetscCheck(p->t0 > 0 && isfinite(p->t0), job->comm, BO_ERR_INPUT, "option -seg_t: %g; expected t > 0", (double)p->t0);
  PetscCheck(p->t_factor >= 1 && isfinite(p->t_factor), job->comm, BO_ERR_INPUT, "option -seg_t_factor: %g; expected a factor >= 1", (double)p->t_factor);
  PetscCheck(!strcmp(p->head, "linear") || !strcmp(p->head, "mlp"), job->comm, BO_ERR_INPUT, "option -seg_head: '%s'; expected linear or mlp", p->head);
  p->mlp = strcmp(p->head, "mlp") ? PETSC_FALSE : PETSC_TRUE;
  PetscCheck(p->hidden >= 1 && p->hidden <= 4096, job->comm, BO_ERR_INPUT, "option -seg_hidden: %d; expected 1 to 4096 hidden units", (int)p->hidden);
  PetscCheck(p->seed >= 0, job->comm, BO_ERR_INPUT, "option -seg_seed: %d; expected a seed >= 0", (int)p->seed);
  PetscCheck(p->restarts >= 1 && p->restarts <= 1000, job->comm, BO_ERR_INPUT, "option -seg_restarts: %d; expected 1 to 1000 heads", (int)p->restarts);
  PetscCheck(p->restarts == 1 || p->descr, job->comm, BO_ERR_INPUT, "option -seg_restarts: %d with -seg_supervision pixels; expected 1 (restarts are picked by the descriptor constraints they violate)", (int)p->restarts);
  PetscCheck(p->restarts == 1 || p->mlp, job->comm, BO_ERR_INPUT, "option -seg_restarts: %d with the linear head; expected 1 (its start does not depend on the seed; -seg_head mlp)", (int)p->restarts);
  PetscCheck(p->batch >= 0, job->comm, BO_ERR_INPUT, "option -seg_batch: %d; expected scenes per minibatch >= 1, or 0 for full batch", (int)p->batch);
  PetscCheck(p->iterations >= 1, job->comm, BO_ERR_INPUT, "option -seg_iterations: %d; expected at least 1", (int)p->iterations);
  PetscCheck(p->lr > 0 && isfinite(p->lr), job->comm, BO_ERR_INPUT, "option -seg_lr: %g; expected lr > 0", (double)p->lr);
  PetscCheck(p->beta2 >= 0 && p->beta2 < 1, job->comm, BO_ERR_INPUT, "option -seg_beta2: %g; expected 0 <= beta2 < 1", (double)p->beta2);
  PetscCheck(p->alpha >= 0 && isfinite(p->alpha), job->comm, BO_ERR_INPUT, "option -seg_alpha: %g; expected alpha >= 0", (double)p->alpha);
  PetscCheck(p->T > 0 && isfinite(p->T), job->comm, BO_ERR_INPUT, "option -seg_temperature: %g; expected T > 0", (double)p->T);
  PetscCheck(p->scenes >= 0 && p->test_scenes >= 0, job->comm, BO_ERR_INPUT, "option -seg_scenes/test_scenes: %d/%d; expected counts >= 0 (0: all)", (int)p->scenes, (int)p->test_scenes);
  PetscCheck(p->val_scenes >= 0 && p->val_first >= 0, job->comm, BO_ERR_INPUT, "option -seg_val_first/val_scenes: %d/%d; expected a first scene >= 0 and a count >= 0 (0: to the end)", (int)p->val_first, (int)p->val_scenes);
  PetscCheck(!strcmp(p->keep, "last") || !strcmp(p->keep, "best"), job->comm, BO_ERR_INPUT, "option -seg_keep: '%s'; expected last or best", p->keep);
  PetscCheck(!strcmp(p->lr_schedule, "constant") || !strcmp(p->lr_schedule, "reference"), job->comm, BO_ERR_INPUT, "option -seg_lr_schedule: '%s'; expected constant or reference", p->lr_schedule);
  p->keep_best    = strcmp(p->keep, "best") ? PETSC_FALSE : PETSC_TRUE;
  p->lr_reference = strcmp(p->lr_schedule, "reference") ? PETSC_FALSE : PETSC_TRUE;
  PetscCheck(p->val[0] || (!p->keep_best && !p->lr_reference), job->comm, BO_ERR_INPUT, "option -seg_%s: %s without -seg_val; expected a labelled validation scenes file to score the epochs on", p->keep_best ? "keep" : "lr_schedule", p->keep_best ? "best" : "reference");
  PetscFunctionReturn(0);
}

/* What one training run optimises: a pixel loss (labels, target proportions) or descriptor bounds
 * (lo, hi: this rank's images x 2 x 6). */
typedef struct {
  PetscBool        descr;
  bo_seg_loss_kind kind;
  const double    *target;
  const double    *lo, *hi;
  const char      *name;
} seg_objective;

#define BATCH_RNG_PURPOSE 0xBA7Cu

/* A new head of -seg_head's kind on F channels (MLP: initialised from -seg_seed). */
static PetscErrorCode head_create(const seg_params *p, int64_t F, bo_head *head)
{
  PetscFunctionBeginUser;
  if (p->mlp) {
    PetscCall(bo_head_create_mlp(F, p->hidden, 2, head));
    PetscCall(bo_head_mlp_init(head, (uint64_t)p->seed));
  } else PetscCall(bo_head_create_linear(F, 2, head));
  PetscFunctionReturn(0);
}

/* order (count) = the scenes of epoch e: 0..count-1 for full batch, else a Fisher-Yates shuffle of
 * the stream (seed, e, BATCH_RNG_PURPOSE): the same on every rank and at every rank count. */
static void epoch_order(const seg_params *p, int64_t count, PetscInt e, int64_t *order)
{
  bo_rng r;
  for (int64_t s = 0; s < count; s++) order[s] = s;
  if (p->batch == 0) return;
  bo_rng_init(&r, (uint64_t)p->seed, (uint64_t)e, BATCH_RNG_PURPOSE);
  for (int64_t s = count - 1; s > 0; s--) {
    const int64_t j = (int64_t)bo_rng_below(&r, (uint64_t)(s + 1)), t = order[s];
    order[s] = order[j], order[j] = t;
  }
}

/* What fit records, per epoch (arrays of -seg_iterations; terms 2 per epoch): the mean of the
 * epoch's minibatch losses, the two terms (pixels; zero for descriptors), t, and with validation
 * scenes their mean Dice fg after the epoch and the lr the epoch used. */
typedef struct {
  double  *loss, *terms, *t, *val, *lr;
  PetscInt best_epoch; /* the earliest epoch of the best validation Dice; -1 without validation */
  double   seconds;    /* training time, validation excluded */
} fit_trace;

static PetscErrorCode fit_trace_create(const seg_params *p, fit_trace *tr)
{
  const PetscInt n = p->iterations;

  PetscFunctionBeginUser;
  *tr = (fit_trace){.best_epoch = -1};
  PetscCall(PetscCalloc5(n, &tr->loss, 2 * n, &tr->terms, n, &tr->t, n, &tr->val, n, &tr->lr));
  PetscFunctionReturn(0);
}

static PetscErrorCode fit_trace_destroy(fit_trace *tr)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree5(tr->loss, tr->terms, tr->t, tr->val, tr->lr));
  PetscFunctionReturn(0);
}

/* Mean Dice fg (argmax) of head over the validation scenes: per-scene values placed by scene index
 * and summed exactly (one non-zero addend each), then added in scene order: rank-count
 * independent.  rows: (va->hi - va->lo) x BO_SEG_NMETRICS, per: va->count.  Collective. */
static PetscErrorCode validation_dice(bo_job *job, const bo_head *head, const bo_scene_shard *va, double *rows, double *per, double *mean)
{
  PetscFunctionBeginUser;
  PetscCall(bo_seg_eval(head, va, rows));
  PetscCall(PetscArrayzero(per, va->count));
  for (int64_t s = 0; s < va->hi - va->lo; s++) per[va->lo + s] = rows[s * BO_SEG_NMETRICS]; /* dice_fg */
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, per, (int)va->count, MPI_DOUBLE, MPI_SUM, job->comm));
  *mean = 0;
  for (int64_t s = 0; s < va->count; s++) *mean += per[s];
  *mean /= (double)va->count;
  PetscFunctionReturn(0);
}

/* Train one head for -seg_iterations epochs of Adam steps, one step per minibatch of -seg_batch
 * scenes (0: one full-batch step per epoch); record per epoch (fit_trace) the mean of its minibatch
 * losses (the loss before each step), the two terms (pixels) and t (descriptors: t x t_factor per
 * epoch, the spec's schedule).  Each step's loss is the minibatch's own (pixel mean, or descriptor
 * penalty weight x mean over its images), every rank passes its own scenes of the minibatch (maybe
 * none).  With validation scenes va (else NULL), as the reference code's main.py: after every epoch
 * the head is scored on them, the best epoch's parameters are copied (-seg_keep best: they are the
 * head returned), and -seg_lr_schedule reference halves the lr after epoch e when
 * e % (best epoch + 20) == 0 (its --schedule rule, epoch 0 included). */
static PetscErrorCode fit(bo_job *job, const seg_params *p, const seg_objective *ob, const bo_scene_shard *tr, const bo_scene_shard *va, bo_head *head, fit_trace *trace)
{
  const int64_t nl = tr->hi - tr->lo, npix = tr->npix, F = tr->F, nd = 2 * BO_SHAPE_NDESC;
  const int64_t B = p->batch > 0 ? PetscMin((int64_t)p->batch, tr->count) : tr->count, nbatch = (tr->count + B - 1) / B;
  const int64_t ml = PetscMin(nl, B), n = ml * npix; /* largest local minibatch */
  bo_loss_batch    b = {.comm = job->comm, .k = 2, .ngroups = tr->count};
  bo_seg_loss_opts so;
  bo_optim_opts    oo;
  bo_optim         opt;
  double          *z, *g, *pg, *vals, *xb = NULL, *lob = NULL, *hib = NULL, t = p->t0, t0, val_seconds = 0;
  double          *vrows = NULL, *vper = NULL, *best = NULL, best_dice = -1;
  uint8_t         *yb = NULL;
  int32_t         *group;
  int64_t         *blocks, *order, *local;

  PetscFunctionBeginUser;
  bo_seg_loss_defaults(&so);
  so.alpha = p->alpha;
  so.T     = p->T;
  bo_optim_defaults_adam(&oo);
  oo.lr    = p->lr;
  oo.beta2 = p->beta2;
  PetscCall(head_create(p, F, head));
  PetscCall(bo_optim_create(&oo, head->nparam, &opt));
  PetscCall(PetscMalloc5(PetscMax(1, 2 * n), &z, PetscMax(1, 2 * n), &g, head->nparam, &pg, PetscMax(1, n), &group, ml + 1, &blocks));
  PetscCall(PetscMalloc3(tr->count, &vals, tr->count, &order, PetscMax(1, ml), &local));
  if (p->batch > 0) PetscCall(PetscMalloc4(PetscMax(1, n * F), &xb, PetscMax(1, n), &yb, PetscMax(1, ml * nd), &lob, PetscMax(1, ml * nd), &hib));
  if (va) PetscCall(PetscMalloc3(PetscMax(1, (va->hi - va->lo) * BO_SEG_NMETRICS), &vrows, va->count, &vper, head->nparam, &best));
  trace->best_epoch = -1;
  PetscCallMPI(MPI_Barrier(job->comm));
  t0 = MPI_Wtime();
  for (PetscInt e = 0; e < p->iterations; e++) {
    double el = 0, et[2] = {0, 0};
    epoch_order(p, tr->count, e, order);
    for (int64_t j = 0; j < nbatch; j++) {
      const int64_t first = j * B, last = PetscMin(tr->count, first + B), bcount = last - first;
      int64_t       m = 0;
      const double *x = tr->x, *lo = ob->lo, *hi = ob->hi;
      const uint8_t *y = tr->y;
      double        v = 0, tv[2] = {0, 0};
      for (int64_t q = first; q < last; q++)
        if (order[q] >= tr->lo && order[q] < tr->hi) local[m++] = order[q];
      if (p->batch > 0) { /* this rank's scenes of the minibatch, contiguous */
        for (int64_t q = 0; q < m; q++) {
          const int64_t s = local[q] - tr->lo;
          PetscCall(PetscArraycpy(xb + q * npix * F, tr->x + s * npix * F, npix * F));
          PetscCall(PetscArraycpy(yb + q * npix, tr->y + s * npix, npix));
          if (ob->descr) {
            PetscCall(PetscArraycpy(lob + q * nd, ob->lo + s * nd, nd));
            PetscCall(PetscArraycpy(hib + q * nd, ob->hi + s * nd, nd));
          }
        }
        x = xb, y = yb, lo = lob, hi = hib;
      }
      for (int64_t q = 0; q < m; q++)
        for (int64_t i = 0; i < npix; i++) group[q * npix + i] = (int32_t)local[q];
      for (int64_t q = 0; q <= m; q++) blocks[q] = q * npix; /* one block per image: rank-count independent sums */
      PetscCall(bo_head_forward(head, m * npix, x, z));
      PetscCall(PetscArrayzero(g, 2 * m * npix));
      if (ob->descr) {
        const double weight = p->shape_weight / (double)bcount; /* the minibatch mean */
        PetscCall(PetscArrayzero(vals, tr->count));
        for (int64_t q = 0; q < m; q++) PetscCall(bo_shape_bound_loss(1, tr->h, tr->w, 2, z + 2 * q * npix, lo + q * nd, hi + q * nd, p->pkind, t, weight, vals + local[q], g + 2 * q * npix));
        /* each entry has one non-zero addend: exact; then the same order on every rank */
        PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, vals, (int)tr->count, MPI_DOUBLE, MPI_SUM, job->comm));
        for (int64_t s = 0; s < tr->count; s++) v += vals[s];
        v *= weight;
      } else {
        b.n = m * npix, b.logits = z, b.group = group;
        PetscCall(bo_seg_loss(ob->kind, &so, &b, y, ob->target, &v, tv, g));
      }
      el += v, et[0] += tv[0], et[1] += tv[1];
      PetscCall(bo_head_backward(head, job->comm, m * npix, x, g, m, blocks, pg));
      PetscCall(bo_optim_step(&opt, pg, head->param));
    }
    trace->loss[e] = el / (double)nbatch;
    trace->terms[2 * e] = et[0] / (double)nbatch, trace->terms[2 * e + 1] = et[1] / (double)nbatch;
    trace->t[e] = t;
    trace->lr[e] = opt.o.lr;
    if (va) {
      const double v0 = MPI_Wtime();
      PetscCall(validation_dice(job, head, va, vrows, vper, &trace->val[e]));
      if (trace->val[e] > best_dice) { /* strictly better: ties keep the earliest epoch */
        best_dice = trace->val[e], trace->best_epoch = e;
        PetscCall(PetscArraycpy(best, head->param, head->nparam));
      }
      if (p->lr_reference && e % (trace->best_epoch + 20) == 0) opt.o.lr *= 0.5;
      val_seconds += MPI_Wtime() - v0;
    }
    if (p->monitor && ob->descr) PetscCall(PetscPrintf(job->comm, "  train-seg %s epoch %d: t %.4g, loss %.6g", ob->name, (int)e, t, trace->loss[e]));
    if (p->monitor && !ob->descr) PetscCall(PetscPrintf(job->comm, "  train-seg %s iteration %d: loss %.6g (%.6g + %g x %.6g)", ob->name, (int)e, trace->loss[e], trace->terms[2 * e], p->alpha, trace->terms[2 * e + 1]));
    if (p->monitor && va) PetscCall(PetscPrintf(job->comm, ", lr %.4g, validation Dice fg %.4f (best %.4f, epoch %d)", trace->lr[e], trace->val[e], best_dice, (int)trace->best_epoch));
    if (p->monitor) PetscCall(PetscPrintf(job->comm, "\n"));
    t *= p->t_factor;
  }
  trace->seconds = MPI_Wtime() - t0 - val_seconds;
  if (va && p->keep_best) PetscCall(PetscArraycpy(head->param, best, head->nparam));
  if (va) PetscCall(PetscFree3(vrows, vper, best));
  PetscCall(bo_optim_destroy(&opt));
  if (p->batch > 0) PetscCall(PetscFree4(xb, yb, lob, hib));
  PetscCall(PetscFree3(vals, order, local));
  PetscCall(PetscFree5(z, g, pg, group, blocks));
  PetscFunctionReturn(0);
}

/* The head's view of a shard (spec 5 "shape.coords"): the same scenes with the normalised x, y
 * channels present (appended when the file names none) or dropped (-seg_coords false).  *own is
 * the new feature array (NULL when the shard's own is used as it is).  Collective (reads the
 * file's /feature_names). */
static PetscErrorCode coord_view(bo_job *job, const char *path, PetscBool coords, const bo_scene_shard *sh, bo_scene_shard *view, double **own)
{
  hid_t     f;
  PetscBool has_names;
  int64_t   nnames = 0, jx = -1, jy = -1, F = sh->F, Fn;
  char    **names = NULL;

  PetscFunctionBeginUser;
  *view = *sh;
  *own  = NULL;
  PetscCall(bo_h5_open_read(job->comm, path, &f));
  PetscCall(bo_h5_exists(f, "/feature_names", &has_names));
  if (has_names) PetscCall(bo_h5_read_strings(f, "/feature_names", &nnames, &names));
  PetscCall(bo_h5_close(&f));
  for (int64_t j = 0; j < nnames && nnames == F; j++) {
    if (!strcmp(names[j], "x")) jx = j;
    if (!strcmp(names[j], "y")) jy = j;
  }
  if (has_names) PetscCall(bo_h5_free_strings(nnames, &names));
  PetscCheck(!has_names || nnames == F, job->comm, BO_ERR_INPUT, "%s: %lld feature names for %lld channels; expected one name per channel", path, (long long)nnames, (long long)F);
  PetscCheck((jx < 0) == (jy < 0), job->comm, BO_ERR_INPUT, "%s: a feature channel named %s without one named %s; expected both or neither", path, jx < 0 ? "y" : "x", jx < 0 ? "x" : "y");
  if ((coords && jx >= 0) || (!coords && jx < 0)) PetscFunctionReturn(0); /* as it is */
  Fn = coords ? F + 2 : F - 2;
  PetscCheck(Fn >= 1, job->comm, BO_ERR_INPUT, "%s: only the x, y feature channels; expected other channels when -seg_coords is false", path);
  const int64_t nl = sh->hi - sh->lo, W = sh->w, H = sh->h;
  PetscCall(PetscMalloc1(PetscMax(1, nl * sh->npix * Fn), own));
  for (int64_t r = 0; r < nl * sh->npix; r++) {
    const double *src = sh->x + r * F;
    double       *dst = *own + r * Fn;
    int64_t       q   = 0;
    for (int64_t j = 0; j < F; j++)
      if (coords || (j != jx && j != jy)) dst[q++] = src[j];
    if (coords) { /* features2d.h's position channels */
      const int64_t i = r % sh->npix;
      dst[q++] = W > 1 ? (double)(i % W) / (double)(W - 1) : 0;
      dst[q++] = H > 1 ? (double)(i / W) / (double)(H - 1) : 0;
    }
  }
  view->x = *own;
  view->F = Fn;
  PetscFunctionReturn(0);
}

/* Standardise every channel of the training view and of the other views (evaluation, validation:
 * nv of them, each may be tr) with the training scenes' per-channel mean and standard deviation
 * (the mlp head's input; a constant channel is only centred).  Sums per scene, exact (reduce.h): the
 * same at any rank count.  The views get their own copies (*own) if they had none.  Collective. */
static PetscErrorCode standardise(bo_job *job, bo_scene_shard *tr, double **tr_own, int nv, bo_scene_shard *const *views, double **const *owns)
{
  const int64_t F = tr->F;
  double       *part, *mom, mx = 0, gmx;
  bo_exactsum   sum;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc2(2 * F, &part, 2 * F, &mom));
  for (int64_t r = 0; r < (tr->hi - tr->lo) * tr->npix * F; r++) mx = PetscMax(mx, fabs(tr->x[r]));
  PetscCallMPI(MPI_Allreduce(&mx, &gmx, 1, MPI_DOUBLE, MPI_MAX, job->comm));
  PetscCall(bo_exactsum_create(2 * F, PetscMax(1.0, gmx * PetscMax(1.0, gmx)) * (double)(tr->count * tr->npix), &sum));
  for (int64_t s = 0; s < tr->hi - tr->lo; s++) {
    PetscCall(PetscArrayzero(part, 2 * F));
    for (int64_t i = 0; i < tr->npix; i++)
      for (int64_t j = 0; j < F; j++) {
        const double v = tr->x[(s * tr->npix + i) * F + j];
        part[j] += v, part[F + j] += v * v;
      }
    PetscCall(bo_exactsum_add(sum, part));
  }
  PetscCall(bo_exactsum_allreduce(job->comm, sum, mom));
  PetscCall(bo_exactsum_destroy(&sum));
  for (int64_t j = 0; j < F; j++) {
    const double N = (double)(tr->count * tr->npix), mean = mom[j] / N, var = mom[F + j] / N - mean * mean;
    part[j] = mean, part[F + j] = var > 1e-24 ? 1 / sqrt(var) : 1;
  }
  for (int v = -1; v < nv; v++) { /* v = -1: the training view; a view that is tr is not done twice */
    bo_scene_shard *sh  = v < 0 ? tr : views[v];
    double        **own = v < 0 ? tr_own : owns[v];
    const int64_t   n   = (sh->hi - sh->lo) * sh->npix;
    if (v >= 0 && sh == tr) continue;
    if (!*own) {
      PetscCall(PetscMalloc1(PetscMax(1, n * F), own));
      PetscCall(PetscArraycpy(*own, sh->x, n * F));
      sh->x = *own;
    }
    for (int64_t r = 0; r < n; r++)
      for (int64_t j = 0; j < F; j++) (*own)[r * F + j] = ((*own)[r * F + j] - part[j]) * part[F + j];
  }
  PetscCall(PetscFree2(part, mom));
  PetscFunctionReturn(0);
}

/* Active and violated descriptor constraints of the trained head on this rank's training images, summed over ranks. */
static PetscErrorCode count_violations(bo_job *job, const bo_head *head, const bo_scene_shard *tr, int64_t h, int64_t w, const double *lo, const double *hi, int64_t *active, int64_t *violated)
{
  const int64_t nd = 2 * BO_SHAPE_NDESC;
  int64_t       c[2] = {0, 0};
  double       *z;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(2 * tr->npix, &z));
  for (int64_t s = 0; s < tr->hi - tr->lo; s++) {
    int64_t a, v;
    PetscCall(bo_head_forward(head, tr->npix, tr->x + s * tr->npix * tr->F, z));
    PetscCall(bo_shape_bound_violations(1, h, w, 2, z, lo + s * nd, hi + s * nd, &a, &v));
    c[0] += a, c[1] += v;
  }
  PetscCall(PetscFree(z));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, c, 2, MPI_INT64_T, MPI_SUM, job->comm));
  *active = c[0], *violated = c[1];
  PetscFunctionReturn(0);
}

/* Evaluate a trained head on ev and write /name/{weights, eval/...} with the CE >= KL check; mean, ci returned. */
static PetscErrorCode evaluate_and_write(bo_job *job, hid_t file, const char *name, const bo_head *head, const bo_scene_shard *ev, double *rows, double *mean, double *ci, int64_t *violations, double *min_gap)
{
  int64_t bad = 0;
  double  gap = INFINITY;
  hsize_t dims[1] = {(hsize_t)head->nparam};
  char    path[160];

  PetscFunctionBeginUser;
  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  PetscCall(bo_seg_eval(head, ev, rows));
  for (int64_t s = 0; s < ev->hi - ev->lo; s++) {
    bad += rows[s * BO_SEG_NMETRICS + 10] < 0;
    gap = PetscMin(gap, rows[s * BO_SEG_NMETRICS + 10]);
  }
  PetscCallMPI(MPI_Allreduce(&bad, violations, 1, MPI_INT64_T, MPI_SUM, job->comm));
  PetscCallMPI(MPI_Allreduce(&gap, min_gap, 1, MPI_DOUBLE, MPI_MIN, job->comm));
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));
  PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
  snprintf(path, sizeof path, "/%s/weights", name);
  PetscCall(bo_h5_write_array(file, path, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, head->param));
  snprintf(path, sizeof path, "/%s", name);
  PetscCall(bo_seg_eval_write(job, file, path, ev, rows, mean, ci));
  PetscCall(bo_h5_attr_write_int64(file, path, "bound_violations", *violations));
  PetscCall(bo_h5_attr_write_double(file, path, "min_bound_gap", *min_gap));
  PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
  PetscFunctionReturn(0);
}

/* With validation scenes: /name/val_dice and /name/lr per epoch, and the attributes best_epoch,
 * val_dice_best and kept_epoch (the epoch whose head /name/weights holds). */
static PetscErrorCode write_validation(bo_job *job, hid_t file, const char *name, const seg_params *p, const fit_trace *trace)
{
  hsize_t dims[1] = {(hsize_t)p->iterations};
  char    path[160];

  PetscFunctionBeginUser;
  snprintf(path, sizeof path, "/%s/val_dice", name);
  PetscCall(bo_h5_write_array(file, path, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, trace->val));
  snprintf(path, sizeof path, "/%s/lr", name);
  PetscCall(bo_h5_write_array(file, path, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, trace->lr));
  snprintf(path, sizeof path, "/%s", name);
  PetscCall(bo_h5_attr_write_int64(file, path, "best_epoch", trace->best_epoch));
  PetscCall(bo_h5_attr_write_double(file, path, "val_dice_best", trace->val[trace->best_epoch]));
  PetscCall(bo_h5_attr_write_int64(file, path, "kept_epoch", p->keep_best ? trace->best_epoch : p->iterations - 1));
  PetscFunctionReturn(0);
}

static PetscErrorCode run_pixels(bo_job *job, const seg_params *p, hid_t file, const bo_scene_shard *tr, const bo_scene_shard *va, const bo_scene_shard *ev, const double *target, double *rows)
{
  fit_trace trace;
  char      name[128];

  PetscFunctionBeginUser;
  PetscCall(fit_trace_create(p, &trace));
  for (int q = 0; q < p->nloss; q++) {
    const bo_seg_loss_kind kind = p->loss[q];
    const char            *ln   = bo_seg_loss_names[kind];
    bo_head                head;
    double                 mean[BO_SEG_NMETRICS], ci[BO_SEG_NMETRICS], min_gap;
    int64_t                violations;
    hsize_t                dims[2];

    PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
    const seg_objective ob = {.descr = PETSC_FALSE, .kind = kind, .target = target, .name = ln};
    PetscCall(fit(job, p, &ob, tr, va, &head, &trace));
    PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));
    PetscCall(evaluate_and_write(job, file, ln, &head, ev, rows, mean, ci, &violations, &min_gap));
    PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
    dims[0] = (hsize_t)p->iterations; dims[1] = 2;
    snprintf(name, sizeof name, "/%s/loss", ln);
    PetscCall(bo_h5_write_array(file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, trace.loss));
    snprintf(name, sizeof name, "/%s/loss_terms", ln);
    PetscCall(bo_h5_write_array(file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, dims, trace.terms));
    if (va) PetscCall(write_validation(job, file, ln, p, &trace));
    PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
    if (va) PetscCall(PetscPrintf(job->comm, "train-seg: %-8s validation Dice fg %.4f at epoch %d (last %.4f); kept the %s epoch's head\n", ln, trace.val[trace.best_epoch], (int)trace.best_epoch, trace.val[p->iterations - 1], p->keep));
    PetscCall(PetscPrintf(job->comm, "train-seg: %-8s %d its: loss %.4g -> %.4g; %s Dice fg %.4f +- %.4f, proportion error %.4f +- %.4f (hard %.4f); CE >= KL on %lld/%lld images (min gap %.3g); %.3g pixels/s per iteration\n", ln, (int)p->iterations, trace.loss[0], trace.loss[p->iterations - 1], p->test[0] ? "test" : "train", mean[0], ci[0], mean[6], ci[6], mean[7], (long long)(ev->count - violations), (long long)ev->count, min_gap, (double)tr->count * (double)tr->npix * (double)p->iterations / trace.seconds));
    PetscCall(bo_head_destroy(&head));
  }
  PetscCall(fit_trace_destroy(&trace));
  PetscFunctionReturn(0);
}

static int64_t max_of(int64_t n, const int64_t *v)
{
  int64_t m = v[0];
  for (int64_t i = 1; i < n; i++) m = PetscMax(m, v[i]);
  return m;
}

static PetscErrorCode run_descriptors(bo_job *job, seg_params *p, hid_t file, const bo_scene_shard *tr, const bo_scene_shard *va, const bo_scene_shard *ev, double *rows)
{
  const int64_t nl = tr->hi - tr->lo, nd = 2 * BO_SHAPE_NDESC, h = tr->h, w = tr->w;
  double       *lo, *hi, *packed;
  int64_t      *restart_violated;
  fit_trace     kept_trace, cand_trace;
  char          set[64], name[160];

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc4(PetscMax(1, nl * nd), &lo, PetscMax(1, nl * nd), &hi, PetscMax(1, nl * 2 * nd), &packed, p->restarts, &restart_violated));
  PetscCall(fit_trace_create(p, &kept_trace));
  PetscCall(fit_trace_create(p, &cand_trace));
  for (int q = 0; q < p->nsets; q++) {
    bo_head  head;
    double   seconds = 0, mean[BO_SEG_NMETRICS], ci[BO_SEG_NMETRICS], min_gap;
    int64_t  violations = 0, active = 0, violated = 0, kept = p->seed;
    hsize_t  dims[1] = {(hsize_t)p->iterations};

    bo_shape_set_name(p->set[q], set, sizeof set);
    p->bo.set = p->set[q];
    PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
    for (int64_t s = 0; s < nl; s++) PetscCall(bo_shape_bounds(&p->bo, h, w, 2, tr->y + s * tr->npix, lo + s * nd, hi + s * nd));
    const seg_objective ob = {.descr = PETSC_TRUE, .lo = lo, .hi = hi, .name = set};
    /* Restart r trains from seed + r (initialisation and minibatch order); the head that violates
     * the fewest training constraints is kept: no label is used, only the bounds every run has. */
    for (PetscInt r = 0; r < p->restarts; r++) {
      seg_params pr = *p;
      bo_head    cand;
      int64_t    cand_violated = 0;
      pr.seed = p->seed + r;
      PetscCall(fit(job, &pr, &ob, tr, va, &cand, &cand_trace));
      PetscCall(count_violations(job, &cand, tr, h, w, lo, hi, &active, &cand_violated));
      seconds += cand_trace.seconds;
      restart_violated[r] = cand_violated;
      if (r == 0 || cand_violated < violated) {
        const fit_trace swap = kept_trace;
        if (r > 0) PetscCall(bo_head_destroy(&head));
        kept_trace = cand_trace, cand_trace = swap;
        head = cand; violated = cand_violated; kept = pr.seed;
      } else PetscCall(bo_head_destroy(&cand));
    }
    PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));
    PetscCall(evaluate_and_write(job, file, set, &head, ev, rows, mean, ci, &violations, &min_gap));
    PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
    snprintf(name, sizeof name, "/%s/loss", set);
    PetscCall(bo_h5_write_array(file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, kept_trace.loss));
    snprintf(name, sizeof name, "/%s/t", set);
    PetscCall(bo_h5_write_array(file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, kept_trace.t));
    if (va) PetscCall(write_validation(job, file, set, p, &kept_trace));
    for (int64_t s = 0; s < nl; s++) {
      PetscCall(PetscArraycpy(packed + s * 2 * nd, lo + s * nd, nd));
      PetscCall(PetscArraycpy(packed + s * 2 * nd + nd, hi + s * nd, nd));
    }
    snprintf(name, sizeof name, "/%s/bounds", set);
    PetscCall(bo_h5_write_rows(file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, tr->count, 2 * nd, tr->lo, tr->hi, packed));
    snprintf(name, sizeof name, "/%s", set);
    PetscCall(bo_h5_attr_write_string(file, name, "descriptors", set));
    PetscCall(bo_h5_attr_write_string(file, name, "penalty", p->penalty));
    PetscCall(bo_h5_attr_write_int64(file, name, "constraints", active));
    PetscCall(bo_h5_attr_write_int64(file, name, "violated", violated));
    PetscCall(bo_h5_attr_write_int64(file, name, "seed", kept));
    dims[0] = (hsize_t)p->restarts;
    snprintf(name, sizeof name, "/%s/restart_violated", set);
    PetscCall(bo_h5_write_array(file, name, H5T_NATIVE_INT64, H5T_STD_I64LE, 1, dims, restart_violated));
    PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
    if (va) PetscCall(PetscPrintf(job->comm, "train-seg: %s validation Dice fg %.4f at epoch %d (last %.4f); kept the %s epoch's head\n", set, kept_trace.val[kept_trace.best_epoch], (int)kept_trace.best_epoch, kept_trace.val[p->iterations - 1], p->keep));
    if (p->restarts > 1) PetscCall(PetscPrintf(job->comm, "train-seg: %s: %d restarts from seed %d, kept seed %lld (%lld violated; the most %lld)\n", set, (int)p->restarts, (int)p->seed, (long long)kept, (long long)violated, (long long)max_of(p->restarts, restart_violated)));
    PetscCall(PetscPrintf(job->comm, "train-seg: %s (%s) %d its: loss %.4g -> %.4g, t %.3g; %lld/%lld training constraints violated; %s Dice fg %.4f +- %.4f, proportion error %.4f +- %.4f (hard %.4f); %.3g pixels/s per iteration\n", set, p->penalty, (int)p->iterations, kept_trace.loss[0], kept_trace.loss[p->iterations - 1], kept_trace.t[p->iterations - 1], (long long)violated, (long long)active, p->test[0] ? "test" : "train", mean[0], ci[0], mean[6], ci[6], mean[7], (double)tr->count * (double)tr->npix * (double)p->iterations * (double)p->restarts / seconds));
    PetscCall(bo_head_destroy(&head));
  }
  PetscCall(PetscFree4(lo, hi, packed, restart_violated));
  PetscCall(fit_trace_destroy(&kept_trace));
  PetscCall(fit_trace_destroy(&cand_trace));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_train_seg(bo_job *job)
{
  seg_params     p = {0};
  bo_scene_shard tr_file = {0}, te_file = {0}, va_file = {0}, tr, te, va, *ev;
  bo_results     res;
  bo_memory_plan mem = {.task = "train-seg"};
  PetscBool      stop;
  double        *target, *rows, *tr_own = NULL, *te_own = NULL, *va_own = NULL, fg_mean = 0;

  PetscFunctionBeginUser;
  PetscCall(read_options(job, &p));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) PetscFunctionReturn(0);
  PetscCall(bo_job_require(job, "input", job->input, "a training scenes file with feature fields (task scenes, features: true)"));
  PetscCall(bo_job_require(job, "output", job->output, "the results file to write"));
  PetscCall(check_options(job, &p));
  PetscCall(bo_results_create(job, job->output, &res));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(bo_scene_shard_read(job, job->input, p.scenes, 0, &tr_file));
  PetscCall(coord_view(job, job->input, p.coords, &tr_file, &tr, &tr_own));
  if (p.test[0]) {
    PetscCall(bo_scene_shard_read(job, p.test, p.test_scenes, tr_file.F, &te_file));
    PetscCall(coord_view(job, p.test, p.coords, &te_file, &te, &te_own));
    PetscCheck(te.h == tr.h && te.w == tr.w && te.F == tr.F, job->comm, BO_ERR_INPUT, "%s: %lld x %lld scenes with %lld head channels; expected %lld x %lld and %lld like the training scenes", p.test, (long long)te.h, (long long)te.w, (long long)te.F, (long long)tr.h, (long long)tr.w, (long long)tr.F);
  }
  if (p.val[0]) {
    PetscCheck(strcmp(p.val, job->input) || p.val_first >= tr_file.count, job->comm, BO_ERR_INPUT, "option -seg_val_first: %d in the training file, whose first %lld scenes are trained on; expected validation scenes the head is not trained on (-seg_val_first >= %lld)", (int)p.val_first, (long long)tr_file.count, (long long)tr_file.count);
    PetscCall(bo_scene_shard_read_from(job, p.val, p.val_first, p.val_scenes, tr_file.F, &va_file));
    PetscCall(coord_view(job, p.val, p.coords, &va_file, &va, &va_own));
    PetscCheck(va.h == tr.h && va.w == tr.w && va.F == tr.F, job->comm, BO_ERR_INPUT, "%s: %lld x %lld scenes with %lld head channels; expected %lld x %lld and %lld like the training scenes", p.val, (long long)va.h, (long long)va.w, (long long)va.F, (long long)tr.h, (long long)tr.w, (long long)tr.F);
  }
  ev = p.test[0] ? &te : &tr;
  if (p.mlp) {
    bo_scene_shard *views[2] = {ev, &va};
    double        **owns[2]  = {p.test[0] ? &te_own : &tr_own, &va_own};
    PetscCall(standardise(job, &tr, &tr_own, p.val[0] ? 2 : 1, views, owns));
  }
  bo_memory_plan_add(&mem, "logits and gradients", (double)(tr.hi - tr.lo + 1) * (double)tr.npix * 40);
  if (p.batch > 0) bo_memory_plan_add(&mem, "minibatch copies of features, labels and bounds", (double)PetscMin(p.batch, tr.hi - tr.lo) * ((double)tr.npix * (8.0 * (double)tr.F + 1) + 96 * 8));
  if (p.mlp) bo_memory_plan_add(&mem, "mlp head gradient partials (one per image)", (double)(tr.hi - tr.lo + 1) * (double)(p.hidden * (tr.F + 3) + 2) * 8);
  if (p.descr) bo_memory_plan_add(&mem, "descriptor bounds and per-image values", (double)(tr.hi - tr.lo + 1) * 48 * 8 + (double)tr.count * 8);
  PetscCall(bo_memory_preflight(job->comm, &mem, job->memory_limit));
  PetscCall(PetscMalloc1(2 * tr.count, &target));
  PetscCall(bo_scene_shard_proportions(job->comm, &tr, target));
  for (int64_t s = 0; s < tr.count; s++) fg_mean += target[2 * s + 1] / (double)tr.count; /* replicated, same order everywhere */
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(PetscMalloc1(PetscMax(1, (ev->hi - ev->lo) * BO_SEG_NMETRICS), &rows));
  if (p.descr) PetscCall(run_descriptors(job, &p, res.file, &tr, p.val[0] ? &va : NULL, ev, rows));
  else PetscCall(run_pixels(job, &p, res.file, &tr, p.val[0] ? &va : NULL, ev, target, rows));

  PetscCall(bo_h5_attr_write_string(res.file, "/", "supervision", p.descr ? "descriptors" : "pixels"));
  if (p.descr) {
    PetscCall(bo_h5_attr_write_string(res.file, "/", "descriptors", p.descriptors));
    PetscCall(bo_h5_attr_write_string(res.file, "/", "penalty", p.penalty));
    PetscCall(bo_h5_attr_write_double(res.file, "/", "size_margin", p.bo.size_margin));
    PetscCall(bo_h5_attr_write_double(res.file, "/", "centroid_margin", p.bo.centroid_margin));
    PetscCall(bo_h5_attr_write_double(res.file, "/", "dist_margin", p.bo.dist_margin));
    PetscCall(bo_h5_attr_write_double(res.file, "/", "length_margin", p.bo.length_margin));
    PetscCall(bo_h5_attr_write_double(res.file, "/", "shape_weight", p.shape_weight));
    PetscCall(bo_h5_attr_write_double(res.file, "/", "t0", p.t0));
    PetscCall(bo_h5_attr_write_double(res.file, "/", "t_factor", p.t_factor));
  } else {
    PetscCall(bo_h5_attr_write_string(res.file, "/", "losses", p.losses));
    PetscCall(bo_h5_attr_write_double(res.file, "/", "alpha", p.alpha));
    PetscCall(bo_h5_attr_write_double(res.file, "/", "T", p.T));
  }
  PetscCall(bo_h5_attr_write_string(res.file, "/", "eval_set", p.test[0] ? p.test : job->input));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "train_scenes", tr.count));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "train_fg_fraction", fg_mean));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "eval_scenes", ev->count));
  PetscCall(bo_h5_attr_write_string(res.file, "/", "val_set", p.val));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "val_first", p.val_first));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "val_scenes", p.val[0] ? va.count : 0));
  PetscCall(bo_h5_attr_write_string(res.file, "/", "keep", p.keep));
  PetscCall(bo_h5_attr_write_string(res.file, "/", "lr_schedule", p.lr_schedule));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "features", tr.F));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "coords", p.coords ? 1 : 0));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "iterations", p.iterations));
  PetscCall(bo_h5_attr_write_string(res.file, "/", "head", p.head));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "hidden", p.mlp ? p.hidden : 0));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "batch", p.batch));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "seed", p.seed));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "restarts", p.restarts));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "lr", p.lr));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "beta2", p.beta2));
  PetscCall(bo_results_commit(&res, job));

  PetscCall(PetscFree(rows));
  PetscCall(PetscFree(target));
  PetscCall(PetscFree(tr_own));
  PetscCall(PetscFree(te_own));
  PetscCall(PetscFree(va_own));
  PetscCall(bo_scene_shard_destroy(&tr_file));
  if (p.test[0]) PetscCall(bo_scene_shard_destroy(&te_file));
  if (p.val[0]) PetscCall(bo_scene_shard_destroy(&va_file));
  PetscFunctionReturn(0);
}
