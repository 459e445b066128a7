/* train_seg.c - task `train-seg`: SegLossBias (arXiv 2104.08717, spec losses.md section 3) on fixed
 * per-pixel features: a linear foreground/background head trained with each loss, full batch, Adam.
 *
 *   task: train-seg
 *   input: jobs/data/scenes-train.h5       # scenes written with `features: true` (task scenes)
 *   output: seg.h5
 *   seg: {loss: "ce,dice,logdice,ce+l1,ce+kl", test: jobs/data/scenes-test.h5, iterations: 200}
 *
 * Data-parallel over images: rank r holds the contiguous scenes [S r/P, S (r+1)/P) of the training
 * file; every loss term is collective with exact sums (losses.h), the head gradient is summed per
 * image block (heads.h), and every rank takes the same Adam step (optim.h), so the head, the
 * losses and the metrics are bit-identical at any number of ranks.  The labels are binary:
 * foreground = any object (mask > 0).  Full batch: the head has 2F + 2 parameters, and a full
 * pass over a few hundred 96 x 96 scenes is what one minibatch step of the reference (a CNN) costs.
 *
 * Results, per loss L (a group /L):
 *   /L/loss (iterations), /L/loss_terms (iterations x 2: CE or Dice part, proportion part):
 *       the training loss before each step;
 *   /L/weights     the trained head, [W (F x 2) row-major, b (2)];
 *   /L/eval/metrics  S_eval x 11 per evaluation image, columns in the attribute `columns`:
 *       dice_fg, dice_bg, iou_fg, prop_true, prop_soft, prop_hard, prop_err_soft, prop_err_hard,
 *       ce, kl, ce_minus_kl (segloss.h);
 *   attributes of /L: mean_<column> and ci95_<column> (1.96 sd / sqrt(S_eval)) for every column,
 *       bound_violations = images with ce < kl (the bound CE >= KL(pi || pihat) says 0),
 *       min_bound_gap = min over images of ce - kl.
 * The evaluation images are -seg_test's scenes (its first -seg_test_scenes), else the training ones.
 */
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/heads.h"
#include "boundopt/memory.h"
#include "boundopt/optim.h"
#include "boundopt/results.h"
#include "boundopt/seg_data.h"
#include "boundopt/segloss.h"
#include "boundopt/tasks.h"
#include <math.h>
#include <string.h>

typedef struct {
  char             losses[256], test[PETSC_MAX_PATH_LEN];
  PetscInt         scenes, test_scenes, iterations;
  PetscReal        lr, alpha, T;
  PetscBool        monitor;
  int              nloss;
  bo_seg_loss_kind loss[BO_SEG_NLOSSES];
} seg_params;

static PetscErrorCode read_options(bo_job *job, seg_params *p)
{
  PetscFunctionBeginUser;
  snprintf(p->losses, sizeof p->losses, "ce,dice,logdice,ce+l1,ce+kl");
  p->iterations = 200; p->lr = 0.05; p->alpha = 1; p->T = 10;
  PetscOptionsBegin(job->comm, "seg_", "Task train-seg: CE, Dice and CE + proportion losses on per-pixel features", "boundopt");
  PetscCall(PetscOptionsString("-loss", "Losses, comma separated: ce, dice, logdice, ce+l1, ce+kl", "", p->losses, p->losses, sizeof p->losses, NULL));
  PetscCall(PetscOptionsString("-test", "Scenes file to evaluate on (default: the training scenes)", "", p->test, p->test, sizeof p->test, NULL));
  PetscCall(PetscOptionsInt("-scenes", "Training scenes: the first n of the input (0: all)", "", p->scenes, &p->scenes, NULL));
  PetscCall(PetscOptionsInt("-test_scenes", "Evaluation scenes: the first n (0: all)", "", p->test_scenes, &p->test_scenes, NULL));
  PetscCall(PetscOptionsInt("-iterations", "Adam steps (full batch)", "", p->iterations, &p->iterations, NULL));
  PetscCall(PetscOptionsReal("-lr", "Adam learning rate", "", p->lr, &p->lr, NULL));
  PetscCall(PetscOptionsReal("-alpha", "Weight of the proportion term of ce+l1 and ce+kl", "", p->alpha, &p->alpha, NULL));
  PetscCall(PetscOptionsReal("-T", "Softmax temperature inside the proportion term", "", p->T, &p->T, NULL));
  PetscCall(PetscOptionsBool("-monitor", "Print the loss at every iteration", "", p->monitor, &p->monitor, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscErrorCode check_options(bo_job *job, seg_params *p)
{
  char *save, *tok, buf[256];

  PetscFunctionBeginUser;
  snprintf(buf, sizeof buf, "%s", p->losses);
  for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    bo_seg_loss_kind k;
    PetscCheck(bo_seg_loss_from_name(tok, &k), job->comm, BO_ERR_INPUT, "option -seg_loss: '%s'; expected ce, dice, logdice, ce+l1 or ce+kl", tok);
    for (int q = 0; q < p->nloss; q++) PetscCheck(p->loss[q] != k, job->comm, BO_ERR_INPUT, "option -seg_loss: '%s' twice; expected each loss once", tok);
    p->loss[p->nloss++] = k;
  }
  PetscCheck(p->nloss > 0, job->comm, BO_ERR_INPUT, "option -seg_loss: empty; expected at least one loss");
  PetscCheck(p->iterations >= 1, job->comm, BO_ERR_INPUT, "option -seg_iterations: %d; expected at least 1", (int)p->iterations);
  PetscCheck(p->lr > 0 && isfinite(p->lr), job->comm, BO_ERR_INPUT, "option -seg_lr: %g; expected lr > 0", (double)p->lr);
  PetscCheck(p->alpha >= 0 && isfinite(p->alpha), job->comm, BO_ERR_INPUT, "option -seg_alpha: %g; expected alpha >= 0", (double)p->alpha);
  PetscCheck(p->T > 0 && isfinite(p->T), job->comm, BO_ERR_INPUT, "option -seg_T: %g; expected T > 0", (double)p->T);
  PetscCheck(p->scenes >= 0 && p->test_scenes >= 0, job->comm, BO_ERR_INPUT, "option -seg_scenes/test_scenes: %d/%d; expected counts >= 0 (0: all)", (int)p->scenes, (int)p->test_scenes);
  PetscFunctionReturn(0);
}

/* Train one head with one loss; record the loss before each step. */
static PetscErrorCode train(bo_job *job, const seg_params *p, bo_seg_loss_kind kind, const bo_scene_shard *tr, const double *target, bo_head *head, double *loss, double *terms, double *seconds)
{
  const int64_t    nl = tr->hi - tr->lo, n = nl * tr->npix;
  bo_loss_batch    b = {.comm = job->comm, .n = n, .k = 2, .ngroups = tr->count};
  bo_seg_loss_opts so;
  bo_optim_opts    oo;
  bo_optim         opt;
  double          *z, *g, *pg;
  int32_t         *group;
  int64_t         *blocks;
  double           t0;

  PetscFunctionBeginUser;
  bo_seg_loss_defaults(&so);
  so.alpha = p->alpha;
  so.T     = p->T;
  bo_optim_defaults_adam(&oo);
  oo.lr = p->lr;
  PetscCall(bo_head_create_linear(tr->F, 2, head));
  PetscCall(bo_optim_create(&oo, head->nparam, &opt));
  PetscCall(PetscMalloc5(PetscMax(1, 2 * n), &z, PetscMax(1, 2 * n), &g, head->nparam, &pg, PetscMax(1, n), &group, nl + 1, &blocks));
  for (int64_t s = 0; s < nl; s++)
    for (int64_t i = 0; i < tr->npix; i++) group[s * tr->npix + i] = (int32_t)(tr->lo + s);
  for (int64_t s = 0; s <= nl; s++) blocks[s] = s * tr->npix; /* one block per image: rank-count independent sums */
  b.logits = z;
  b.group  = group;
  PetscCallMPI(MPI_Barrier(job->comm));
  t0 = MPI_Wtime();
  for (PetscInt it = 0; it < p->iterations; it++) {
    PetscCall(bo_head_forward(head, n, tr->x, z));
    PetscCall(PetscArrayzero(g, 2 * n));
    PetscCall(bo_seg_loss(kind, &so, &b, tr->y, target, &loss[it], terms + 2 * it, g));
    PetscCall(bo_head_backward(head, job->comm, n, tr->x, g, nl, blocks, pg));
    PetscCall(bo_optim_step(&opt, pg, head->param));
    if (p->monitor) PetscCall(PetscPrintf(job->comm, "  train-seg %s iteration %d: loss %.6g (%.6g + %g x %.6g)\n", bo_seg_loss_names[kind], (int)it, loss[it], terms[2 * it], p->alpha, terms[2 * it + 1]));
  }
  *seconds = MPI_Wtime() - t0;
  PetscCall(bo_optim_destroy(&opt));
  PetscCall(PetscFree5(z, g, pg, group, blocks));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_train_seg(bo_job *job)
{
  seg_params     p = {0};
  bo_scene_shard tr = {0}, te = {0}, *ev;
  bo_results     res;
  bo_memory_plan mem = {.task = "train-seg"};
  PetscBool      stop;
  double        *target, *loss, *terms, *rows, fg_mean = 0;
  char           name[128];

  PetscFunctionBeginUser;
  PetscCall(read_options(job, &p));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) PetscFunctionReturn(0);
  PetscCall(bo_job_require(job, "input", job->input, "a training scenes file with feature fields (task scenes, features: true)"));
  PetscCall(bo_job_require(job, "output", job->output, "the results file to write"));
  PetscCall(check_options(job, &p));
  PetscCall(bo_results_create(job, job->output, &res));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(bo_scene_shard_read(job, job->input, p.scenes, 0, &tr));
  if (p.test[0]) PetscCall(bo_scene_shard_read(job, p.test, p.test_scenes, tr.F, &te));
  ev = p.test[0] ? &te : &tr;
  PetscCheck(ev->npix == tr.npix, job->comm, BO_ERR_INPUT, "%s: scenes of %lld pixels; expected %lld like the training scenes", p.test, (long long)ev->npix, (long long)tr.npix);
  bo_memory_plan_add(&mem, "logits and gradients", (double)(tr.hi - tr.lo + 1) * (double)tr.npix * 40);
  PetscCall(bo_memory_preflight(job->comm, &mem, job->memory_limit));
  PetscCall(PetscMalloc1(2 * tr.count, &target));
  PetscCall(bo_scene_shard_proportions(job->comm, &tr, target));
  for (int64_t s = 0; s < tr.count; s++) fg_mean += target[2 * s + 1] / (double)tr.count; /* replicated, same order everywhere */
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(PetscMalloc3(p.iterations, &loss, 2 * p.iterations, &terms, PetscMax(1, (ev->hi - ev->lo) * BO_SEG_NMETRICS), &rows));
  for (int q = 0; q < p.nloss; q++) {
    const bo_seg_loss_kind kind = p.loss[q];
    const char            *ln   = bo_seg_loss_names[kind];
    bo_head                head;
    double                 seconds = 0, mean[BO_SEG_NMETRICS], ci[BO_SEG_NMETRICS], min_gap = INFINITY, gap;
    int64_t                violations = 0, bad = 0;
    hsize_t                dims[2];

    PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
    PetscCall(train(job, &p, kind, &tr, target, &head, loss, terms, &seconds));
    PetscCall(bo_seg_eval(&head, ev, rows));
    for (int64_t s = 0; s < ev->hi - ev->lo; s++) {
      bad += rows[s * BO_SEG_NMETRICS + 10] < 0;
      min_gap = PetscMin(min_gap, rows[s * BO_SEG_NMETRICS + 10]);
    }
    PetscCallMPI(MPI_Allreduce(&bad, &violations, 1, MPI_INT64_T, MPI_SUM, job->comm));
    gap = min_gap;
    PetscCallMPI(MPI_Allreduce(&gap, &min_gap, 1, MPI_DOUBLE, MPI_MIN, job->comm));
    PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));

    PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
    dims[0] = (hsize_t)p.iterations; dims[1] = 2;
    snprintf(name, sizeof name, "/%s/loss", ln);
    PetscCall(bo_h5_write_array(res.file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, loss));
    snprintf(name, sizeof name, "/%s/loss_terms", ln);
    PetscCall(bo_h5_write_array(res.file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, dims, terms));
    dims[0] = (hsize_t)head.nparam;
    snprintf(name, sizeof name, "/%s/weights", ln);
    PetscCall(bo_h5_write_array(res.file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, head.param));
    snprintf(name, sizeof name, "/%s", ln);
    PetscCall(bo_seg_eval_write(job, res.file, name, ev, rows, mean, ci));
    PetscCall(bo_h5_attr_write_int64(res.file, name, "bound_violations", violations));
    PetscCall(bo_h5_attr_write_double(res.file, name, "min_bound_gap", min_gap));
    PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
    PetscCall(PetscPrintf(job->comm, "train-seg: %-8s %d its: loss %.4g -> %.4g; %s Dice fg %.4f +- %.4f, proportion error %.4f +- %.4f (hard %.4f); CE >= KL on %lld/%lld images (min gap %.3g); %.3g pixels/s per iteration\n", ln, (int)p.iterations, loss[0], loss[p.iterations - 1], p.test[0] ? "test" : "train", mean[0], ci[0], mean[6], ci[6], mean[7], (long long)(ev->count - violations), (long long)ev->count, min_gap, (double)tr.count * (double)tr.npix * (double)p.iterations / seconds));
    PetscCall(bo_head_destroy(&head));
  }
  PetscCall(bo_h5_attr_write_string(res.file, "/", "losses", p.losses));
  PetscCall(bo_h5_attr_write_string(res.file, "/", "eval_set", p.test[0] ? p.test : job->input));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "train_scenes", tr.count));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "train_fg_fraction", fg_mean));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "eval_scenes", ev->count));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "features", tr.F));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "iterations", p.iterations));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "lr", p.lr));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "alpha", p.alpha));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "T", p.T));
  PetscCall(bo_results_commit(&res, job));

  PetscCall(PetscFree3(loss, terms, rows));
  PetscCall(PetscFree(target));
  PetscCall(bo_scene_shard_destroy(&tr));
  if (p.test[0]) PetscCall(bo_scene_shard_destroy(&te));
  PetscFunctionReturn(0);
}
