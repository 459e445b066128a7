/* train.c - task `train`: a multilayer perceptron trained with CE, PGD adversarial training (AT),
 * TRADES or FIRE (arXiv 2106.06685, spec losses.md section 4) on a features file of inputs in [0, 1].
 *
 *   task: train
 *   input: jobs/data/fmnist.h5            # 70000 x 784 Fashion-MNIST pixels, /labels
 *   output: fire.h5
 *   train: {loss: fire, hidden: "256", epochs: 10, eps: 0.1, steps: 10, classes: "0-9"}
 *   checkpoint: {file: fire.ck.h5}
 *
 * Rows: the first -train_train_rows rows of the input are the training set, the last
 * -train_test_rows the test set (Fashion-MNIST: 60000 and 10000); only rows whose label is in
 * -train_classes are kept, and output class c is the c-th id of that list.  Both sets are
 * replicated on every rank (each epoch shuffles all training rows).
 *
 * Data-parallel and rank-count independent: epoch e shuffles with the Philox stream (seed, e); a
 * batch's tiles are spread over the ranks and their gradients summed exactly (mlp.h), so every rank
 * takes the same optimiser step (optim.h) and the weights, losses and accuracies are bit-identical
 * at any number of ranks.  PGD starts are keyed by (seed, epoch, row).
 *
 * Checkpoints: with checkpoint: {file: F} the network, the optimiser state and the history are
 * written after every epoch (every -checkpoint_every epochs when that is > 1), and a signal
 * (SIGUSR1/SIGTERM) stops the job after the current epoch with a checkpoint (exit 3).  Rerunning
 * with -restart resumes at the next epoch, at any rank count, with the same final result.
 *
 * Results: /network/{widths, param, classes} (mlp_io.h, read by task extract);
 *   /epochs/{loss, ce, reg, lr, clean_accuracy, robust_accuracy} per epoch (loss = ce + beta reg;
 *   lr at the epoch's last step; robust_accuracy NaN where not evaluated); root attributes with
 *   the options, clean_accuracy and robust_accuracy of the final network; /meta/epoch_seconds
 *   (training time of each epoch, without evaluation: volatile).
 */
#include "boundopt/checkpoint.h"
#include "boundopt/dataset.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/memory.h"
#include "boundopt/mlp.h"
#include "boundopt/mlp_io.h"
#include "boundopt/optim.h"
#include "boundopt/results.h"
#include "boundopt/rng.h"
#include "boundopt/signals.h"
#include "boundopt/tasks.h"
#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

enum { H_LOSS, H_CE, H_REG, H_LR, H_CLEAN, H_ROBUST, H_SECONDS, H_COLS };
enum { RNG_SHUFFLE = 0x5348, RNG_TRAIN_ATTACK = 0x5452, RNG_EVAL_ATTACK = 0x4556 };
#define MAX_MILESTONES 16

typedef struct {
  char      loss[16], hidden[256], optimizer[8], schedule[16], milestones[256], classes[1024];
  PetscInt  epochs, batch, steps, eval_steps, eval_every, eval_rows, train_rows, test_rows;
  PetscReal lr, momentum, weight_decay, gamma, eps, step, beta, guard, sigma, eval_eps, eval_step;
  PetscBool nesterov, monitor;
  bo_mlp_loss kind;
  int       nhidden, nmilestones, nclasses;
  int64_t   hidden_units[BO_MLP_MAX_LAYERS];
  double    milestone[MAX_MILESTONES];
  int32_t   class_id[255];
} train_params;

typedef struct { /* rows replicated on every rank, in input order */
  int64_t  n;
  float   *x;
  uint8_t *y; /* output class */
} row_set;

static PetscErrorCode read_options(bo_job *job, train_params *p)
{
  PetscFunctionBeginUser;
  snprintf(p->loss, sizeof p->loss, "fire");
  snprintf(p->hidden, sizeof p->hidden, "256");
  snprintf(p->optimizer, sizeof p->optimizer, "sgd");
  snprintf(p->schedule, sizeof p->schedule, "step");
  snprintf(p->milestones, sizeof p->milestones, "0.75,0.9");
  p->epochs = 10; p->batch = 128; p->steps = 10; p->eval_steps = 40; p->eval_every = 1; p->eval_rows = 0;
  p->train_rows = 60000; p->test_rows = 10000;
  p->lr = 0.01; p->momentum = 0.9; p->weight_decay = 0; p->gamma = 0.1;
  p->eps = 0.1; p->step = 0.01; p->beta = 0; p->guard = 0; p->sigma = 0.001; p->eval_eps = 0.1; p->eval_step = 0.01;
  PetscOptionsBegin(job->comm, "train_", "Task train: an MLP with CE, AT, TRADES or FIRE (adversarial robustness)", "boundopt");
  PetscCall(PetscOptionsString("-loss", "ce, at (CE on PGD examples), trades (CE + beta KL) or fire (CE + beta arccos(BC)^2)", "", p->loss, p->loss, sizeof p->loss, NULL));
  PetscCall(PetscOptionsString("-hidden", "Hidden layer widths, comma separated (e.g. 256,256)", "", p->hidden, p->hidden, sizeof p->hidden, NULL));
  PetscCall(PetscOptionsString("-classes", "Labels to train on, e.g. 0-4 (empty: every label of the input)", "", p->classes, p->classes, sizeof p->classes, NULL));
  PetscCall(PetscOptionsInt("-train_rows", "Training rows: the first n rows of the input", "", p->train_rows, &p->train_rows, NULL));
  PetscCall(PetscOptionsInt("-test_rows", "Test rows: the last n rows of the input", "", p->test_rows, &p->test_rows, NULL));
  PetscCall(PetscOptionsInt("-epochs", "Epochs", "", p->epochs, &p->epochs, NULL));
  PetscCall(PetscOptionsInt("-batch", "Mini-batch rows", "", p->batch, &p->batch, NULL));
  PetscCall(PetscOptionsString("-optimizer", "sgd or adam", "", p->optimizer, p->optimizer, sizeof p->optimizer, NULL));
  PetscCall(PetscOptionsReal("-lr", "Initial learning rate", "", p->lr, &p->lr, NULL));
  PetscCall(PetscOptionsReal("-momentum", "SGD momentum", "", p->momentum, &p->momentum, NULL));
  PetscCall(PetscOptionsBool("-nesterov", "SGD with Nesterov momentum", "", p->nesterov, &p->nesterov, NULL));
  PetscCall(PetscOptionsReal("-weight_decay", "L2 weight decay", "", p->weight_decay, &p->weight_decay, NULL));
  PetscCall(PetscOptionsString("-schedule", "Learning rate schedule: constant, step (x gamma at each milestone) or cosine (per step, to 0)", "", p->schedule, p->schedule, sizeof p->schedule, NULL));
  PetscCall(PetscOptionsString("-milestones", "step schedule: fractions of the epochs where lr is multiplied by gamma", "", p->milestones, p->milestones, sizeof p->milestones, NULL));
  PetscCall(PetscOptionsReal("-gamma", "step schedule: factor at each milestone", "", p->gamma, &p->gamma, NULL));
  PetscCall(PetscOptionsReal("-eps", "Training attack: l-infinity radius", "", p->eps, &p->eps, NULL));
  PetscCall(PetscOptionsReal("-step", "Training attack: PGD step", "", p->step, &p->step, NULL));
  PetscCall(PetscOptionsInt("-steps", "Training attack: PGD steps", "", p->steps, &p->steps, NULL));
  PetscCall(PetscOptionsReal("-sigma", "PGD random start: x + sigma N(0, I)", "", p->sigma, &p->sigma, NULL));
  PetscCall(PetscOptionsReal("-beta", "Weight of the TRADES / FIRE term (0: the paper's, 6 for trades, 20 for fire)", "", p->beta, &p->beta, NULL));
  PetscCall(PetscOptionsReal("-fr_guard", "FIRE: eps_FR in arccos(BC - eps_FR) (0: clamp plus series; reference 1e-6 MNIST, 1e-12 CIFAR)", "", p->guard, &p->guard, NULL));
  PetscCall(PetscOptionsReal("-eval_eps", "Evaluation attack (PGD-CE): l-infinity radius", "", p->eval_eps, &p->eval_eps, NULL));
  PetscCall(PetscOptionsReal("-eval_step", "Evaluation attack: PGD step", "", p->eval_step, &p->eval_step, NULL));
  PetscCall(PetscOptionsInt("-eval_steps", "Evaluation attack: PGD steps", "", p->eval_steps, &p->eval_steps, NULL));
  PetscCall(PetscOptionsInt("-eval_every", "Robust accuracy every n epochs (0: after the last epoch only)", "", p->eval_every, &p->eval_every, NULL));
  PetscCall(PetscOptionsInt("-eval_rows", "Robust accuracy on the first n test rows (0: all)", "", p->eval_rows, &p->eval_rows, NULL));
  PetscCall(PetscOptionsBool("-monitor", "Print a line per epoch", "", p->monitor, &p->monitor, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscErrorCode check_options(bo_job *job, train_params *p)
{
  char *save, *tok, *end, buf[256];

  PetscFunctionBeginUser;
  p->kind = BO_MLP_NLOSSES;
  for (int k = 0; k < BO_MLP_NLOSSES; k++)
    if (!strcmp(p->loss, bo_mlp_loss_names[k])) p->kind = (bo_mlp_loss)k;
  PetscCheck(p->kind != BO_MLP_NLOSSES, job->comm, BO_ERR_INPUT, "option -train_loss: '%s'; expected ce, at, trades or fire", p->loss);
  snprintf(buf, sizeof buf, "%s", p->hidden);
  for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    long v = strtol(tok, &end, 10);
    PetscCheck(end != tok && !*end && v >= 1 && v <= 1 << 20 && p->nhidden < BO_MLP_MAX_LAYERS - 1, job->comm, BO_ERR_INPUT, "option -train_hidden: '%s'; expected up to %d widths >= 1, comma separated", tok, BO_MLP_MAX_LAYERS - 1);
    p->hidden_units[p->nhidden++] = v;
  }
  snprintf(buf, sizeof buf, "%s", p->milestones);
  for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    double v = strtod(tok, &end);
    PetscCheck(end != tok && !*end && v > 0 && v < 1 && p->nmilestones < MAX_MILESTONES, job->comm, BO_ERR_INPUT, "option -train_milestones: '%s'; expected up to %d fractions in (0, 1)", tok, MAX_MILESTONES);
    p->milestone[p->nmilestones++] = v;
  }
  PetscCheck(!strcmp(p->optimizer, "sgd") || !strcmp(p->optimizer, "adam"), job->comm, BO_ERR_INPUT, "option -train_optimizer: '%s'; expected sgd or adam", p->optimizer);
  PetscCheck(!strcmp(p->schedule, "constant") || !strcmp(p->schedule, "step") || !strcmp(p->schedule, "cosine"), job->comm, BO_ERR_INPUT, "option -train_schedule: '%s'; expected constant, step or cosine", p->schedule);
  PetscCheck(p->epochs >= 1, job->comm, BO_ERR_INPUT, "option -train_epochs: %d; expected at least 1", (int)p->epochs);
  PetscCheck(p->batch >= 1, job->comm, BO_ERR_INPUT, "option -train_batch: %d; expected at least 1", (int)p->batch);
  PetscCheck(p->train_rows >= 1 && p->test_rows >= 1, job->comm, BO_ERR_INPUT, "option -train_train_rows/test_rows: %d/%d; expected at least 1 of each", (int)p->train_rows, (int)p->test_rows);
  PetscCheck(isfinite(p->lr) && p->lr > 0, job->comm, BO_ERR_INPUT, "option -train_lr: %g; expected lr > 0", (double)p->lr);
  PetscCheck(p->momentum >= 0 && p->momentum < 1, job->comm, BO_ERR_INPUT, "option -train_momentum: %g; expected 0 <= momentum < 1", (double)p->momentum);
  PetscCheck(isfinite(p->weight_decay) && p->weight_decay >= 0, job->comm, BO_ERR_INPUT, "option -train_weight_decay: %g; expected >= 0", (double)p->weight_decay);
  PetscCheck(isfinite(p->gamma) && p->gamma > 0, job->comm, BO_ERR_INPUT, "option -train_gamma: %g; expected gamma > 0", (double)p->gamma);
  PetscCheck(isfinite(p->eps) && p->eps >= 0 && p->eps <= 1, job->comm, BO_ERR_INPUT, "option -train_eps: %g; expected 0 <= eps <= 1 (inputs in [0, 1])", (double)p->eps);
  PetscCheck(isfinite(p->eval_eps) && p->eval_eps >= 0 && p->eval_eps <= 1, job->comm, BO_ERR_INPUT, "option -train_eval_eps: %g; expected 0 <= eps <= 1 (inputs in [0, 1])", (double)p->eval_eps);
  PetscCheck(isfinite(p->step) && p->step >= 0 && isfinite(p->eval_step) && p->eval_step >= 0, job->comm, BO_ERR_INPUT, "option -train_step/eval_step: %g/%g; expected steps >= 0", (double)p->step, (double)p->eval_step);
  PetscCheck(p->steps >= 0 && p->eval_steps >= 0, job->comm, BO_ERR_INPUT, "option -train_steps/eval_steps: %d/%d; expected >= 0", (int)p->steps, (int)p->eval_steps);
  PetscCheck(isfinite(p->sigma) && p->sigma >= 0, job->comm, BO_ERR_INPUT, "option -train_sigma: %g; expected sigma >= 0", (double)p->sigma);
  PetscCheck(isfinite(p->beta) && p->beta >= 0, job->comm, BO_ERR_INPUT, "option -train_beta: %g; expected beta >= 0", (double)p->beta);
  PetscCheck(isfinite(p->guard) && p->guard >= 0 && p->guard < 1, job->comm, BO_ERR_INPUT, "option -train_fr_guard: %g; expected 0 <= guard < 1", (double)p->guard);
  PetscCheck(p->eval_every >= 0 && p->eval_rows >= 0, job->comm, BO_ERR_INPUT, "option -train_eval_every/eval_rows: %d/%d; expected >= 0", (int)p->eval_every, (int)p->eval_rows);
  if (p->beta == 0) p->beta = p->kind == BO_MLP_LOSS_TRADES ? 6.0 : p->kind == BO_MLP_LOSS_FIRE ? 20.0 : 0.0;
  if (p->classes[0]) PetscCall(bo_job_parse_ids(job, "train_classes", p->classes, 255, p->class_id, &p->nclasses));
  PetscFunctionReturn(0);
}

/* Rows [lo, hi) of the input whose label is a class, replicated on every rank in input order. */
static PetscErrorCode gather_rows(bo_job *job, const train_params *p, const bo_dataset *ds, int64_t lo, int64_t hi, row_set *s)
{
  const int64_t d = ds->d, a = PetscMax(lo, ds->rows.lo), b = PetscMin(hi, ds->rows.hi);
  int64_t       mine = 0, *counts64, bad = 0, anybad;
  PetscMPIInt  *cnt, *dsp, *fcnt, *fdsp;
  float        *xs;
  uint8_t      *ys;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc3(PetscMax(1, (b - a) * d), &xs, PetscMax(1, b - a), &ys, job->size, &counts64));
  for (int64_t i = a; i < b; i++) {
    const int64_t r = i - ds->rows.lo;
    int           c = -1;
    for (int q = 0; q < p->nclasses && c < 0; q++)
      if (ds->labels[r] == p->class_id[q]) c = q;
    if (c < 0) continue;
    for (int64_t j = 0; j < d; j++) bad += !(ds->x[r * d + j] >= 0 && ds->x[r * d + j] <= 1);
    memcpy(xs + mine * d, ds->x + r * d, sizeof(float) * (size_t)d);
    ys[mine++] = (uint8_t)c;
  }
  PetscCallMPI(MPI_Allreduce(&bad, &anybad, 1, MPI_INT64_T, MPI_SUM, job->comm));
  PetscCheck(!anybad, job->comm, BO_ERR_INPUT, "%s: %lld feature values outside [0, 1]; expected pixel intensities in [0, 1] (the attack clips to that box)", ds->path, (long long)anybad);
  PetscCallMPI(MPI_Allgather(&mine, 1, MPI_INT64_T, counts64, 1, MPI_INT64_T, job->comm));
  PetscCall(PetscMalloc4(job->size, &cnt, job->size, &dsp, job->size, &fcnt, job->size, &fdsp));
  s->n = 0;
  for (int r = 0; r < job->size; r++) {
    PetscCheck(counts64[r] * d < INT32_MAX, job->comm, BO_ERR_INPUT, "%s: %lld rows on one rank; expected fewer than 2^31 values per rank", ds->path, (long long)counts64[r]);
    cnt[r] = (PetscMPIInt)counts64[r], dsp[r] = (PetscMPIInt)s->n;
    fcnt[r] = (PetscMPIInt)(counts64[r] * d), fdsp[r] = (PetscMPIInt)(s->n * d);
    s->n += counts64[r];
  }
  PetscCheck(s->n > 0, job->comm, BO_ERR_INPUT, "%s: no row of rows %lld..%lld has a label in -train_classes '%s'; expected some", ds->path, (long long)lo, (long long)(hi - 1), p->classes);
  PetscCall(PetscMalloc2(s->n * d, &s->x, s->n, &s->y));
  PetscCallMPI(MPI_Allgatherv(xs, fcnt[job->rank], MPI_FLOAT, s->x, fcnt, fdsp, MPI_FLOAT, job->comm));
  PetscCallMPI(MPI_Allgatherv(ys, cnt[job->rank], MPI_UINT8_T, s->y, cnt, dsp, MPI_UINT8_T, job->comm));
  PetscCall(PetscFree4(cnt, dsp, fcnt, fdsp));
  PetscCall(PetscFree3(xs, ys, counts64));
  PetscFunctionReturn(0);
}

static double lr_at(const train_params *p, int64_t epoch, int64_t it, int64_t total_its)
{
  double lr = p->lr;
  if (!strcmp(p->schedule, "step"))
    for (int q = 0; q < p->nmilestones; q++)
      if ((double)epoch >= p->milestone[q] * (double)p->epochs) lr *= p->gamma;
  if (!strcmp(p->schedule, "cosine")) lr *= 0.5 * (1 + cos(PETSC_PI * (double)it / (double)total_its));
  return lr;
}

/* Epoch e's order of the n training rows: Fisher-Yates from the stream (seed, e). */
static void shuffle(uint64_t seed, int64_t epoch, int64_t n, int64_t *order)
{
  bo_rng r;
  bo_rng_init(&r, seed, (uint64_t)epoch, RNG_SHUFFLE);
  for (int64_t i = 0; i < n; i++) order[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    const int64_t j = (int64_t)bo_rng_below(&r, (uint64_t)(i + 1)), t = order[i];
    order[i] = order[j], order[j] = t;
  }
}

static PetscErrorCode write_results(bo_job *job, const train_params *p, const bo_mlp *net, const row_set *te, const double *hist, bo_results *res)
{
  static const char *const cols[H_COLS] = {"loss", "ce", "reg", "lr", "clean_accuracy", "robust_accuracy", "seconds"};
  hsize_t                  dims[1]      = {(hsize_t)p->epochs};
  double                  *col;
  char                     name[64];

  PetscFunctionBeginUser;
  PetscCall(bo_mlp_write(res->file, net, p->class_id));
  PetscCall(PetscMalloc1(p->epochs, &col));
  for (int c = 0; c < H_COLS; c++) {
    for (PetscInt e = 0; e < p->epochs; e++) col[e] = hist[e * H_COLS + c];
    snprintf(name, sizeof name, c == H_SECONDS ? "/meta/epoch_seconds" : "/epochs/%s", cols[c]);
    PetscCall(bo_h5_write_array(res->file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, col));
  }
  PetscCall(PetscFree(col));
  const double *last = hist + (p->epochs - 1) * H_COLS;
  PetscCall(bo_h5_attr_write_string(res->file, "/", "loss", p->loss));
  PetscCall(bo_h5_attr_write_string(res->file, "/", "hidden", p->hidden));
  PetscCall(bo_h5_attr_write_string(res->file, "/", "optimizer", p->optimizer));
  PetscCall(bo_h5_attr_write_string(res->file, "/", "schedule", p->schedule));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "epochs", p->epochs));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "batch", p->batch));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "lr", p->lr));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "beta", p->beta));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "eps", p->eps));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "step", p->step));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "steps", p->steps));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "eval_eps", p->eval_eps));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "eval_step", p->eval_step));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "eval_steps", p->eval_steps));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "seed", job->seed));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "test_rows", te->n));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "clean_accuracy", last[H_CLEAN]));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "robust_accuracy", last[H_ROBUST]));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_train(bo_job *job)
{
  train_params         p = {0};
  bo_dataset           ds;
  bo_dataset_read_opts ro = {.check_finite = PETSC_TRUE, .need_labels = PETSC_TRUE};
  bo_results           res;
  bo_memory_plan       plan = {.task = "train"};
  bo_mlp               net;
  bo_mlp_loss_opts     lo;
  bo_optim_opts        oo;
  bo_optim             opt;
  bo_pgd_opts          eval;
  row_set              tr, te;
  int64_t              n, d, epoch0 = 0, *order, its, total_its;
  double              *hist, *grad;
  uint64_t             hash;
  PetscBool            stop, resumed = PETSC_FALSE, interrupted = PETSC_FALSE;

  PetscFunctionBeginUser;
  PetscCall(read_options(job, &p));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) PetscFunctionReturn(0);
  PetscCall(bo_job_require(job, "input", job->input, "a features file with /labels, values in [0, 1]"));
  PetscCall(bo_job_require(job, "output", job->output, "the results file to write"));
  PetscCall(check_options(job, &p));
  PetscCall(bo_dataset_probe(job->comm, job->input, &n, &d));
  PetscCheck(p.train_rows + p.test_rows <= n, job->comm, BO_ERR_INPUT, "option -train_train_rows/test_rows: %d + %d rows; expected at most the %lld rows of %s", (int)p.train_rows, (int)p.test_rows, (long long)n, job->input);
  bo_memory_plan_add(&plan, "features shard", bo_dataset_shard_bytes(n / job->size + BO_TILE_ROWS, d));
  bo_memory_plan_add(&plan, "training and test rows (replicated)", (double)(p.train_rows + p.test_rows) * ((double)d * 4 + 9));
  PetscCall(bo_memory_preflight(job->comm, &plan, job->memory_limit));
  PetscCall(bo_results_create(job, job->output, &res));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(bo_dataset_read(job->comm, job->input, &ro, &ds));
  if (!p.nclasses) {
    PetscCheck(ds.nclasses <= 255, job->comm, BO_ERR_INPUT, "%s: labels up to %lld; expected at most 255 classes (or -train_classes)", job->input, (long long)ds.nclasses - 1);
    for (int c = 0; c < ds.nclasses; c++) p.class_id[p.nclasses++] = c;
  }
  PetscCheck(p.nclasses >= 2, job->comm, BO_ERR_INPUT, "option -train_classes: %d class; expected at least 2", p.nclasses);
  PetscCall(gather_rows(job, &p, &ds, 0, p.train_rows, &tr));
  PetscCall(gather_rows(job, &p, &ds, n - p.test_rows, n, &te));
  PetscCall(bo_checkpoint_job_hash(ds.identity, &hash));
  PetscCall(bo_dataset_destroy(&ds));
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  PetscCall(bo_mlp_create(d, p.nhidden, p.hidden_units, p.nclasses, &net));
  PetscCall(bo_mlp_init(&net, (uint64_t)job->seed));
  if (!strcmp(p.optimizer, "adam")) bo_optim_defaults_adam(&oo);
  else {
    bo_optim_defaults_sgd(&oo);
    oo.momentum = p.momentum;
    oo.nesterov = p.nesterov;
  }
  oo.lr = p.lr, oo.weight_decay = p.weight_decay;
  PetscCall(bo_optim_create(&oo, net.nparam, &opt));
  lo   = (bo_mlp_loss_opts){.loss = p.kind, .beta = p.beta, .guard = p.guard,
                            .pgd = {.eps = p.eps, .step = p.step, .steps = (int)p.steps, .sigma = p.sigma, .seed = (uint64_t)job->seed, .purpose = RNG_TRAIN_ATTACK}};
  eval = (bo_pgd_opts){.eps = p.eval_eps, .step = p.eval_step, .steps = (int)p.eval_steps, .sigma = p.sigma, .seed = (uint64_t)job->seed, .purpose = RNG_EVAL_ATTACK};
  its       = (tr.n + p.batch - 1) / p.batch;
  total_its = its * p.epochs;
  PetscCall(PetscMalloc3(p.epochs * H_COLS, &hist, tr.n, &order, net.nparam, &grad));
  for (int64_t j = 0; j < p.epochs * H_COLS; j++) hist[j] = NAN;
  if (job->checkpoint_file[0] && job->restart) {
    PetscCall(bo_mlp_checkpoint_read(job->comm, job->checkpoint_file, hash, &net, &opt, &epoch0, H_COLS, hist, &resumed));
    if (resumed) PetscCall(PetscPrintf(job->comm, "train: resuming from %s after epoch %lld of %d\n", job->checkpoint_file, (long long)epoch0, (int)p.epochs));
  }
  for (int64_t e = epoch0; e < p.epochs && !interrupted; e++) {
    double *h = hist + e * H_COLS, sum[3] = {0, 0, 0}, t0;
    int64_t clean, robust, evaln = p.eval_rows ? PetscMin(p.eval_rows, te.n) : te.n;
    shuffle((uint64_t)job->seed, e, tr.n, order);
    PetscCallMPI(MPI_Barrier(job->comm));
    t0 = MPI_Wtime();
    for (int64_t it = 0; it < its; it++) {
      const int64_t lo_b = it * p.batch, B = PetscMin(tr.n, lo_b + p.batch) - lo_b;
      double        terms[2];
      opt.o.lr = lr_at(&p, e, e * its + it, total_its);
      PetscCall(bo_mlp_batch_gradient(&net, job->comm, &lo, tr.x, tr.y, B, order + lo_b, (uint64_t)e + 1, grad, terms));
      PetscCall(bo_optim_step(&opt, grad, net.param));
      sum[0] += (double)B * terms[0], sum[1] += (double)B * terms[1];
    }
    PetscCallMPI(MPI_Barrier(job->comm));
    h[H_SECONDS] = MPI_Wtime() - t0;
    h[H_CE] = sum[0] / (double)tr.n, h[H_REG] = sum[1] / (double)tr.n;
    h[H_LOSS] = h[H_CE] + p.beta * h[H_REG];
    h[H_LR]   = opt.o.lr;
    PetscBool robust_now = (p.eval_every > 0 && (e + 1) % p.eval_every == 0) || e + 1 == p.epochs ? PETSC_TRUE : PETSC_FALSE;
    PetscCall(bo_mlp_evaluate(&net, job->comm, te.x, te.y, te.n, NULL, &clean, &robust));
    h[H_CLEAN] = (double)clean / (double)te.n;
    if (robust_now) {
      PetscCall(bo_mlp_evaluate(&net, job->comm, te.x, te.y, evaln, &eval, &clean, &robust));
      h[H_ROBUST] = (double)robust / (double)evaln;
    }
    if (p.monitor) PetscCall(PetscPrintf(job->comm, "  train %s epoch %lld/%d: loss %.6g (ce %.6g + %g x %.6g), lr %.4g, clean %.4f, robust %.4f, %.1f s\n", p.loss, (long long)e + 1, (int)p.epochs, h[H_LOSS], h[H_CE], p.beta, h[H_REG], h[H_LR], h[H_CLEAN], h[H_ROBUST], h[H_SECONDS]));
    if (e + 1 == p.epochs) break;
    PetscBool signalled, periodic = job->checkpoint_every <= 1 || (e + 1) % job->checkpoint_every == 0 ? PETSC_TRUE : PETSC_FALSE;
    if (e == job->debug_signal_at && job->rank == job->size - 1) raise(SIGUSR1);
    PetscCall(bo_signals_pending(job->comm, &signalled));
    if (job->checkpoint_file[0] && (signalled || periodic)) {
      PetscCall(bo_mlp_checkpoint_write(job->comm, job->checkpoint_file, hash, &net, &opt, e + 1, H_COLS, hist));
      if (p.monitor) PetscCall(PetscPrintf(job->comm, "  train checkpoint written: %s (epoch %lld)\n", job->checkpoint_file, (long long)e + 1));
    }
    if (signalled) {
      PetscCheck(job->checkpoint_file[0], job->comm, BO_ERR_RUNTIME, "signal %d: stopped without a checkpoint; expected checkpoint: {file: ...} to resume", bo_signals_last());
      interrupted = PETSC_TRUE;
    }
  }
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));

  if (interrupted) {
    PetscCall(PetscPrintf(job->comm, "train: signal received; checkpoint %s written; rerun the job with -restart to resume (exit 3)\n", job->checkpoint_file));
    PetscCall(bo_results_discard(&res));
    job->exit_status = BO_EXIT_CHECKPOINTED;
  } else {
    const double *last = hist + (p.epochs - 1) * H_COLS;
    double        secs = 0;
    for (PetscInt e = 0; e < p.epochs; e++) secs += hist[e * H_COLS + H_SECONDS] / (double)p.epochs;
    PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
    PetscCall(write_results(job, &p, &net, &te, hist, &res));
    PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
    PetscCall(bo_results_commit(&res, job));
    if (job->checkpoint_file[0] && !job->rank) unlink(job->checkpoint_file); /* the job is done */
    PetscCall(PetscPrintf(job->comm, "train: %s, %lld training rows, %d classes, %d epochs: loss %.4g; test clean accuracy %.4f, PGD-%d (eps %g) robust accuracy %.4f; %.3g s per epoch\n", p.loss, (long long)tr.n, p.nclasses, (int)p.epochs, last[H_LOSS], last[H_CLEAN], (int)p.eval_steps, (double)p.eval_eps, last[H_ROBUST], secs));
  }
  PetscCall(PetscFree3(hist, order, grad));
  PetscCall(bo_optim_destroy(&opt));
  PetscCall(bo_mlp_destroy(&net));
  PetscCall(PetscFree2(tr.x, tr.y));
  PetscCall(PetscFree2(te.x, te.y));
  PetscFunctionReturn(0);
}
