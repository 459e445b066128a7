/* adapt.c - task `adapt`: source-free domain adaptation of a pixel head (SFDA, arXiv 2108.03152;
 * spec losses.md section 2) from source scenes (brick, grass) to target scenes (gravel, gamma 0.7,
 * contrast 0.8), with its baselines.
 *
 *   task: adapt
 *   input: jobs/data/scenes-target.h5      # target scenes with feature fields (task scenes)
 *   output: adapt.h5
 *   adapt: {source: jobs/data/seg-source.h5, head: ce, method: "none,entropy,sfda,sfda-true,oracle"}
 *
 * The source head is a train-seg result (/<head>/weights, trained on source scenes only); no
 * source scene is read here.  Every method starts from it and runs full-batch Adam (weight decay
 * 1e-4 as the reference) on the target scenes, data-parallel over images with exact sums:
 *   none       the source head as it is;
 *   entropy    weighted entropy only (w = [0.1, 0.9]), expected to collapse;
 *   sfda       entropy + KL(pihat_b || tau_b) per image, tau_b = the "tag" prior: (1 - c, c) when
 *              the image contains an object, (1, 0) otherwise, c = -adapt_prior_fg (default: the
 *              source training scenes' mean foreground fraction, recorded by train-seg: knowledge
 *              of the source domain, no target label);
 *   sfda-true  the same with tau_b = the true proportions of each target image (upper bound);
 *   oracle     target-supervised CE with the target labels (upper bound).
 * Narrower than the paper, which adapts a whole UNet: here the adapted parameters are the linear
 * head's (2F + 2).  The target scenes are also the evaluation scenes (the transductive setting).
 *
 * Results per method M: /M/loss, /M/loss_terms (iterations, iterations x 2: entropy or CE, KL),
 * /M/weights, /M/eval/metrics with mean_/ci95_ attributes (seg_data.h; Dice per class, proportion
 * error).  Root attributes: prior_fg, source, head.
 */
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/heads.h"
#include "boundopt/optim.h"
#include "boundopt/results.h"
#include "boundopt/seg_data.h"
#include "boundopt/segloss.h"
#include "boundopt/tasks.h"
#include <math.h>
#include <string.h>

enum { A_NONE, A_ENTROPY, A_SFDA, A_SFDA_TRUE, A_ORACLE, A_COUNT };
static const char *const method_names[A_COUNT] = {"none", "entropy", "sfda", "sfda-true", "oracle"};

typedef struct {
  char      methods[256], source[PETSC_MAX_PATH_LEN], head[64], weights[64], kl[16], prop[16];
  PetscInt  scenes, iterations;
  PetscReal lr, weight_decay, lambda, prior_fg;
  PetscBool monitor;
  int       nmethods, method[A_COUNT];
  double    class_w[2];
} adapt_params;

static PetscErrorCode read_options(bo_job *job, adapt_params *p)
{
  PetscFunctionBeginUser;
  snprintf(p->methods, sizeof p->methods, "none,entropy,sfda,sfda-true,oracle");
  snprintf(p->head, sizeof p->head, "ce");
  snprintf(p->weights, sizeof p->weights, "0.1,0.9");
  snprintf(p->kl, sizeof p->kl, "pred_prior");
  snprintf(p->prop, sizeof p->prop, "mean");
  p->iterations = 100; p->lr = 1e-3; p->weight_decay = 1e-4; p->lambda = 1; p->prior_fg = -1;
  PetscOptionsBegin(job->comm, "adapt_", "Task adapt: source-free domain adaptation (SFDA) of a pixel head", "boundopt");
  PetscCall(PetscOptionsString("-method", "Methods, comma separated: none, entropy, sfda, sfda-true, oracle", "", p->methods, p->methods, sizeof p->methods, NULL));
  PetscCall(PetscOptionsString("-source", "train-seg results holding the source head", "", p->source, p->source, sizeof p->source, NULL));
  PetscCall(PetscOptionsString("-head", "Which head of -adapt_source: the loss it was trained with", "", p->head, p->head, sizeof p->head, NULL));
  PetscCall(PetscOptionsInt("-scenes", "Target scenes: the first n (0: all)", "", p->scenes, &p->scenes, NULL));
  PetscCall(PetscOptionsInt("-iterations", "Adam steps (full batch)", "", p->iterations, &p->iterations, NULL));
  PetscCall(PetscOptionsReal("-lr", "Adam learning rate", "", p->lr, &p->lr, NULL));
  PetscCall(PetscOptionsReal("-weight_decay", "Adam L2 weight decay (reference 1e-4)", "", p->weight_decay, &p->weight_decay, NULL));
  PetscCall(PetscOptionsReal("-lambda", "Weight of the KL prior term", "", p->lambda, &p->lambda, NULL));
  PetscCall(PetscOptionsReal("-prior_fg", "Tag prior: foreground fraction of an image with an object (< 0: the source head's training fraction)", "", p->prior_fg, &p->prior_fg, NULL));
  PetscCall(PetscOptionsString("-weights", "Entropy class weights w_bg,w_fg", "", p->weights, p->weights, sizeof p->weights, NULL));
  PetscCall(PetscOptionsString("-kl", "KL direction: pred_prior (reference) or prior_pred", "", p->kl, p->kl, sizeof p->kl, NULL));
  PetscCall(PetscOptionsString("-prop", "Proportion estimator: mean (project) or maxnorm (reference)", "", p->prop, p->prop, sizeof p->prop, NULL));
  PetscCall(PetscOptionsBool("-monitor", "Print the loss at every iteration", "", p->monitor, &p->monitor, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscErrorCode check_options(bo_job *job, adapt_params *p)
{
  int nw;

  PetscFunctionBeginUser;
  PetscCall(bo_job_parse_names(job, "adapt_method", p->methods, A_COUNT, method_names, A_COUNT, p->method, &p->nmethods));
  PetscCall(bo_job_require(job, "adapt_source", p->source, "the train-seg results holding the source head"));
  PetscCheck(p->iterations >= 1, job->comm, BO_ERR_INPUT, "option -adapt_iterations: %d; expected at least 1", (int)p->iterations);
  PetscCheck(p->scenes >= 0, job->comm, BO_ERR_INPUT, "option -adapt_scenes: %d; expected a count >= 0 (0: all)", (int)p->scenes);
  PetscCheck(p->lr > 0 && p->weight_decay >= 0 && p->lambda >= 0, job->comm, BO_ERR_INPUT, "option -adapt_lr/weight_decay/lambda: %g/%g/%g; expected lr > 0, the others >= 0", (double)p->lr, (double)p->weight_decay, (double)p->lambda);
  PetscCheck(p->prior_fg < 0 || p->prior_fg < 1, job->comm, BO_ERR_INPUT, "option -adapt_prior_fg: %g; expected a fraction below 1 (or < 0 for the source's)", (double)p->prior_fg);
  PetscCheck(!strcmp(p->kl, "pred_prior") || !strcmp(p->kl, "prior_pred"), job->comm, BO_ERR_INPUT, "option -adapt_kl: '%s'; expected pred_prior or prior_pred", p->kl);
  PetscCheck(!strcmp(p->prop, "mean") || !strcmp(p->prop, "maxnorm"), job->comm, BO_ERR_INPUT, "option -adapt_prop: '%s'; expected mean or maxnorm", p->prop);
  PetscCall(bo_job_parse_reals(job, "adapt_weights", p->weights, 0, 2, p->class_w, &nw));
  PetscCheck(nw == 2, job->comm, BO_ERR_INPUT, "option -adapt_weights: '%s'; expected two weights w_bg,w_fg", p->weights);
  PetscFunctionReturn(0);
}

/* The source head (2F + 2 weights) and its training foreground fraction. */
static PetscErrorCode read_source(bo_job *job, adapt_params *p, int64_t F, double *w)
{
  hid_t      f;
  bo_h5_info wi;
  char       name[128];
  PetscBool  exists;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_open_read(job->comm, p->source, &f));
  snprintf(name, sizeof name, "/%s/weights", p->head);
  PetscCall(bo_h5_exists(f, name, &exists));
  if (!exists) PetscCall(bo_h5_close(&f));
  PetscCheck(exists, job->comm, BO_ERR_INPUT, "%s: no %s; expected train-seg results with the head -adapt_head %s", p->source, name, p->head);
  PetscCall(bo_h5_dataset_info(f, p->source, name, &wi));
  if (!(wi.rank == 1 && (int64_t)wi.dims[0] == 2 * F + 2)) PetscCall(bo_h5_close(&f));
  PetscCheck(wi.rank == 1 && (int64_t)wi.dims[0] == 2 * F + 2, job->comm, BO_ERR_INPUT, "%s: %s has %lld weights; expected %lld for a 2-class linear head on the %lld target channels", p->source, name, (long long)wi.dims[0], (long long)(2 * F + 2), (long long)F);
  PetscCall(bo_h5_read_array(f, name, H5T_NATIVE_DOUBLE, w));
  if (p->prior_fg < 0) {
    hid_t a = H5Aexists(f, "train_fg_fraction") > 0 ? H5Aopen(f, "train_fg_fraction", H5P_DEFAULT) : -1;
    double v = -1;
    if (a >= 0) {
      H5Aread(a, H5T_NATIVE_DOUBLE, &v);
      H5Aclose(a);
    }
    p->prior_fg = v;
  }
  PetscCall(bo_h5_close(&f));
  PetscCheck(p->prior_fg >= 0 && p->prior_fg < 1, job->comm, BO_ERR_INPUT, "%s: no train_fg_fraction attribute; expected train-seg results, or -adapt_prior_fg", p->source);
  PetscFunctionReturn(0);
}

static PetscErrorCode adapt(bo_job *job, const adapt_params *p, int method, const bo_scene_shard *sh, const double *w0, const double *tag_prior, const double *true_prior, bo_head *head, double *loss, double *terms)
{
  const int64_t nl = sh->hi - sh->lo, n = nl * sh->npix;
  bo_loss_batch b = {.comm = job->comm, .n = n, .k = 2, .ngroups = sh->count};
  bo_optim_opts oo;
  bo_optim      opt;
  bo_sfda_opts  so;
  double       *z, *g, *pg;
  int32_t      *group;
  int64_t      *blocks;

  PetscFunctionBeginUser;
  PetscCall(bo_head_create_linear(sh->F, 2, head));
  memcpy(head->param, w0, sizeof(double) * (size_t)head->nparam);
  PetscCall(PetscArrayzero(loss, p->iterations));
  PetscCall(PetscArrayzero(terms, 2 * p->iterations));
  if (method == A_NONE) PetscFunctionReturn(0);
  bo_optim_defaults_adam(&oo);
  oo.lr = p->lr; oo.weight_decay = p->weight_decay;
  bo_sfda_defaults(&so);
  so.l_prior = method == A_ENTROPY ? 0 : p->lambda;
  so.dir     = strcmp(p->kl, "pred_prior") ? BO_KL_PRIOR_PRED : BO_KL_PRED_PRIOR;
  so.prop    = strcmp(p->prop, "mean") ? BO_PROP_MAXNORM : BO_PROP_MEAN;
  PetscCall(bo_optim_create(&oo, head->nparam, &opt));
  PetscCall(PetscMalloc5(PetscMax(1, 2 * n), &z, PetscMax(1, 2 * n), &g, head->nparam, &pg, PetscMax(1, n), &group, nl + 1, &blocks));
  for (int64_t s = 0; s < nl; s++)
    for (int64_t i = 0; i < sh->npix; i++) group[s * sh->npix + i] = (int32_t)(sh->lo + s);
  for (int64_t s = 0; s <= nl; s++) blocks[s] = s * sh->npix;
  b.logits = z;
  b.group  = group;
  for (PetscInt it = 0; it < p->iterations; it++) {
    PetscCall(bo_head_forward(head, n, sh->x, z));
    PetscCall(PetscArrayzero(g, 2 * n));
    if (method == A_ORACLE) PetscCall(bo_loss_ce(&b, sh->y, NULL, 1.0, &terms[2 * it], g));
    else PetscCall(bo_sfda_loss(&so, &b, p->class_w, method == A_SFDA_TRUE ? true_prior : tag_prior, NULL, terms + 2 * it, g));
    loss[it] = method == A_ORACLE ? terms[2 * it] : so.l_se * terms[2 * it] + so.l_prior * terms[2 * it + 1];
    PetscCall(bo_head_backward(head, job->comm, n, sh->x, g, nl, blocks, pg));
    PetscCall(bo_optim_step(&opt, pg, head->param));
    if (p->monitor) PetscCall(PetscPrintf(job->comm, "  adapt %s iteration %d: loss %.6g (%.6g, %.6g)\n", method_names[method], (int)it, loss[it], terms[2 * it], terms[2 * it + 1]));
  }
  PetscCall(bo_optim_destroy(&opt));
  PetscCall(PetscFree5(z, g, pg, group, blocks));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_adapt(bo_job *job)
{
  adapt_params   p = {0};
  bo_scene_shard sh = {0};
  bo_results     res;
  PetscBool      stop;
  double        *w0, *true_prior, *tag_prior, *loss, *terms, *rows;
  char           name[128];

  PetscFunctionBeginUser;
  PetscCall(read_options(job, &p));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) PetscFunctionReturn(0);
  PetscCall(bo_job_require(job, "input", job->input, "a target scenes file with feature fields (task scenes, features: true)"));
  PetscCall(bo_job_require(job, "output", job->output, "the results file to write"));
  PetscCall(check_options(job, &p));
  PetscCall(bo_results_create(job, job->output, &res));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(bo_scene_shard_read(job, job->input, p.scenes, 0, &sh));
  PetscCall(PetscMalloc1(2 * sh.F + 2, &w0));
  PetscCall(read_source(job, &p, sh.F, w0));
  PetscCall(PetscMalloc2(2 * sh.count, &true_prior, 2 * sh.count, &tag_prior));
  PetscCall(bo_scene_shard_proportions(job->comm, &sh, true_prior));
  for (int64_t s = 0; s < sh.count; s++) { /* image-level tag only: object present or not */
    const PetscBool tag = true_prior[2 * s + 1] > 0;
    tag_prior[2 * s + 1] = tag ? p.prior_fg : 0;
    tag_prior[2 * s]     = 1 - tag_prior[2 * s + 1];
  }
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(PetscMalloc3(p.iterations, &loss, 2 * p.iterations, &terms, PetscMax(1, (sh.hi - sh.lo) * BO_SEG_NMETRICS), &rows));
  for (int q = 0; q < p.nmethods; q++) {
    const int m = p.method[q];
    bo_head   head;
    double    mean[BO_SEG_NMETRICS], ci[BO_SEG_NMETRICS];
    hsize_t   dims[2];

    PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
    PetscCall(adapt(job, &p, m, &sh, w0, tag_prior, true_prior, &head, loss, terms));
    PetscCall(bo_seg_eval(&head, &sh, rows));
    PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));
    PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
    if (m != A_NONE) {
      dims[0] = (hsize_t)p.iterations; dims[1] = 2;
      snprintf(name, sizeof name, "/%s/loss", method_names[m]);
      PetscCall(bo_h5_write_array(res.file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, loss));
      snprintf(name, sizeof name, "/%s/loss_terms", method_names[m]);
      PetscCall(bo_h5_write_array(res.file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, dims, terms));
    }
    dims[0] = (hsize_t)head.nparam;
    snprintf(name, sizeof name, "/%s/weights", method_names[m]);
    PetscCall(bo_h5_write_array(res.file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, head.param));
    snprintf(name, sizeof name, "/%s", method_names[m]);
    PetscCall(bo_seg_eval_write(job, res.file, name, &sh, rows, mean, ci));
    PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
    PetscCall(PetscPrintf(job->comm, "adapt: %-9s Dice fg %.4f +- %.4f, Dice bg %.4f, proportion error %.4f +- %.4f on %lld target scenes\n", method_names[m], mean[0], ci[0], mean[1], mean[6], ci[6], (long long)sh.count));
    PetscCall(bo_head_destroy(&head));
  }
  PetscCall(bo_h5_attr_write_string(res.file, "/", "methods", p.methods));
  PetscCall(bo_h5_attr_write_string(res.file, "/", "source", p.source));
  PetscCall(bo_h5_attr_write_string(res.file, "/", "head", p.head));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "prior_fg", p.prior_fg));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "iterations", p.iterations));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "lr", p.lr));
  PetscCall(bo_results_commit(&res, job));

  PetscCall(PetscFree3(loss, terms, rows));
  PetscCall(PetscFree2(true_prior, tag_prior));
  PetscCall(PetscFree(w0));
  PetscCall(bo_scene_shard_destroy(&sh));
  PetscFunctionReturn(0);
}
