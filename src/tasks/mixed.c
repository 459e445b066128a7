/* mixed.c - task `mixed`: mixed supervision with a teacher and a student branch ("the student
 * becomes the master", arXiv 2012.08051; spec losses.md section 6) on the feature fields of scenes.
 *
 *   task: mixed
 *   input: jobs/data/scenes-train.h5       # scenes with feature fields (task scenes)
 *   output: mixed.h5
 *   mixed: {test: jobs/data/scenes-test.h5, scenes: 200, strong: 10, method: "teacher,pce,pce+kd,pce+kd+h,pce+h"}
 *
 * The first -mixed_strong scenes are fully labelled (F); the other training scenes (W) carry weak
 * labels only: a radius-3 disk of foreground pixels around the foreground pixel nearest the
 * foreground centroid (segloss.h bo_seg_weak_disk; about 1-5% of an object).  Two linear heads on
 * the fixed features (the realisation of the spec with no shared layer):
 *   teacher  CE on the F scenes' full masks;
 *   student  w_weak [pCE(F) + pCE(W)] + w_kd KD(teacher -> student) + (w_h / k) H(student),
 *            pCE = CE over the weakly labelled pixels only, KD = the paper form KL(q_T || q_S) of
 *            softmax(z / T) with the teacher detached, KD and H over every training scene once
 *            (project defaults of the spec's open choices); w_kd = 20 is the reference's
 *            w_KL alpha T^2 = 40 per (pixel, class) element, per pixel for k = 2.
 * With a detached teacher the branches do not interact backwards, so the teacher is trained first
 * and frozen; each student variant then starts from zero:
 *   pce  (weak labels only)   pce+kd   pce+kd+h (the method)   pce+h (entropy without KD, expected
 *   to collapse).   Full-batch Adam (betas 0.9, 0.99 as the reference), data-parallel over images
 *   with exact sums: results are identical at any number of ranks.
 *
 * Results: /teacher and /<variant>: loss (iterations), weights, eval/metrics with mean_/ci95_
 * attributes on the test scenes (seg_data.h); students also loss_terms (iterations x 4: pCE(F),
 * pCE(W), KD, H).  Root attributes: strong, weak_pixels (weakly labelled pixels in total).
 */
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/heads.h"
#include "boundopt/losses.h"
#include "boundopt/optim.h"
#include "boundopt/results.h"
#include "boundopt/seg_data.h"
#include "boundopt/segloss.h"
#include "boundopt/tasks.h"
#include <math.h>
#include <string.h>

enum { V_TEACHER, V_PCE, V_PCE_KD, V_PCE_KD_H, V_PCE_H, V_COUNT };
static const char *const variant_names[V_COUNT] = {"teacher", "pce", "pce+kd", "pce+kd+h", "pce+h"};

typedef struct {
  char      methods[256], test[PETSC_MAX_PATH_LEN];
  PetscInt  scenes, test_scenes, strong, iterations;
  PetscReal lr, T, w_kd, w_weak, w_h, radius;
  int       nmethods, method[V_COUNT];
} mixed_params;

typedef struct { /* the training pixels of this rank and what supervises each */
  int64_t  n;
  double  *is_strong, *is_weak;  /* pixel masks: scene in F, scene in W */
  uint8_t *weak;                 /* weak labels (1 or BO_LABEL_IGNORE) */
  int64_t *blocks;               /* one block per scene */
  int64_t  nweak;                /* weakly labelled pixels, all ranks */
} supervision;

static PetscErrorCode read_options(bo_job *job, mixed_params *p)
{
  PetscFunctionBeginUser;
  snprintf(p->methods, sizeof p->methods, "teacher,pce,pce+kd,pce+kd+h,pce+h");
  p->strong = 10; p->iterations = 150; p->lr = 0.05; p->T = 2; p->w_kd = 20; p->w_weak = 0.1; p->w_h = 1; p->radius = 3;
  PetscOptionsBegin(job->comm, "mixed_", "Task mixed: mixed supervision, teacher and student heads", "boundopt");
  PetscCall(PetscOptionsString("-method", "Variants, comma separated: teacher, pce, pce+kd, pce+kd+h, pce+h", "", p->methods, p->methods, sizeof p->methods, NULL));
  PetscCall(PetscOptionsString("-test", "Scenes file to evaluate on (default: the training scenes)", "", p->test, p->test, sizeof p->test, NULL));
  PetscCall(PetscOptionsInt("-scenes", "Training scenes: the first n (0: all)", "", p->scenes, &p->scenes, NULL));
  PetscCall(PetscOptionsInt("-test_scenes", "Evaluation scenes: the first n (0: all)", "", p->test_scenes, &p->test_scenes, NULL));
  PetscCall(PetscOptionsInt("-strong", "Fully labelled scenes: the first n of the training scenes", "", p->strong, &p->strong, NULL));
  PetscCall(PetscOptionsInt("-iterations", "Adam steps (full batch) per branch", "", p->iterations, &p->iterations, NULL));
  PetscCall(PetscOptionsReal("-lr", "Adam learning rate", "", p->lr, &p->lr, NULL));
  PetscCall(PetscOptionsReal("-T", "Distillation temperature", "", p->T, &p->T, NULL));
  PetscCall(PetscOptionsReal("-kd_weight", "Weight of KD per pixel (reference w_KL alpha T^2 / k)", "", p->w_kd, &p->w_kd, NULL));
  PetscCall(PetscOptionsReal("-weak_weight", "Weight of the partial CE terms", "", p->w_weak, &p->w_weak, NULL));
  PetscCall(PetscOptionsReal("-entropy_weight", "Weight of the student entropy (applied / k: a mean over pixels and classes)", "", p->w_h, &p->w_h, NULL));
  PetscCall(PetscOptionsReal("-radius", "Weak labels: disk radius in pixels", "", p->radius, &p->radius, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscErrorCode check_options(bo_job *job, mixed_params *p)
{
  char *save, *tok, buf[256];

  PetscFunctionBeginUser;
  snprintf(buf, sizeof buf, "%s", p->methods);
  for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    int m;
    for (m = 0; m < V_COUNT; m++)
      if (!strcmp(tok, variant_names[m])) break;
    PetscCheck(m < V_COUNT, job->comm, BO_ERR_INPUT, "option -mixed_method: '%s'; expected teacher, pce, pce+kd, pce+kd+h or pce+h", tok);
    for (int q = 0; q < p->nmethods; q++) PetscCheck(p->method[q] != m, job->comm, BO_ERR_INPUT, "option -mixed_method: '%s' twice; expected each variant once", tok);
    p->method[p->nmethods++] = m;
  }
  PetscCheck(p->nmethods > 0, job->comm, BO_ERR_INPUT, "option -mixed_method: empty; expected at least one variant");
  PetscCheck(p->strong >= 1, job->comm, BO_ERR_INPUT, "option -mixed_strong: %d; expected at least one fully labelled scene", (int)p->strong);
  PetscCheck(p->iterations >= 1 && p->lr > 0 && p->T > 0, job->comm, BO_ERR_INPUT, "option -mixed_iterations/lr/T: %d/%g/%g; expected iterations >= 1, lr > 0, T > 0", (int)p->iterations, (double)p->lr, (double)p->T);
  PetscCheck(p->w_kd >= 0 && p->w_weak >= 0 && p->w_h >= 0 && p->radius >= 0, job->comm, BO_ERR_INPUT, "option -mixed_kd_weight/weak_weight/entropy_weight/radius: %g/%g/%g/%g; expected values >= 0", (double)p->w_kd, (double)p->w_weak, (double)p->w_h, (double)p->radius);
  PetscCheck(p->scenes >= 0 && p->test_scenes >= 0, job->comm, BO_ERR_INPUT, "option -mixed_scenes/test_scenes: %d/%d; expected counts >= 0 (0: all)", (int)p->scenes, (int)p->test_scenes);
  PetscFunctionReturn(0);
}

static PetscErrorCode make_supervision(bo_job *job, const mixed_params *p, const bo_scene_shard *tr, supervision *sv)
{
  const int64_t nl = tr->hi - tr->lo, side = (int64_t)floor(sqrt((double)tr->npix) + 0.5);
  int64_t       mine = 0;

  PetscFunctionBeginUser;
  PetscCheck(p->strong < tr->count, job->comm, BO_ERR_INPUT, "option -mixed_strong: %d of %lld training scenes; expected fewer, so that some scenes are weakly labelled", (int)p->strong, (long long)tr->count);
  PetscCheck(side * side == tr->npix, job->comm, BO_ERR_INPUT, "%s: scenes of %lld pixels; expected square scenes", job->input, (long long)tr->npix);
  sv->n = nl * tr->npix;
  PetscCall(PetscMalloc4(PetscMax(1, sv->n), &sv->is_strong, PetscMax(1, sv->n), &sv->is_weak, PetscMax(1, sv->n), &sv->weak, nl + 1, &sv->blocks));
  for (int64_t s = 0; s < nl; s++) {
    const PetscBool strong = tr->lo + s < p->strong;
    PetscCall(bo_seg_weak_disk(side, side, tr->y + s * tr->npix, p->radius, sv->weak + s * tr->npix));
    for (int64_t i = 0; i < tr->npix; i++) {
      sv->is_strong[s * tr->npix + i] = strong ? 1 : 0;
      sv->is_weak[s * tr->npix + i]   = strong ? 0 : 1;
      mine += sv->weak[s * tr->npix + i] == 1;
    }
  }
  for (int64_t s = 0; s <= nl; s++) sv->blocks[s] = s * tr->npix;
  PetscCallMPI(MPI_Allreduce(&mine, &sv->nweak, 1, MPI_INT64_T, MPI_SUM, job->comm));
  PetscFunctionReturn(0);
}

/* One branch: the teacher (teacher_z NULL) or a student variant against the frozen teacher's logits. */
static PetscErrorCode train_branch(bo_job *job, const mixed_params *p, int variant, const bo_scene_shard *tr, const supervision *sv, const double *teacher_z, bo_head *head, double *loss, double *terms)
{
  const int64_t nl = tr->hi - tr->lo, n = sv->n;
  bo_loss_batch b = {.comm = job->comm, .n = n, .k = 2, .ngroups = 1};
  bo_optim_opts oo;
  bo_optim      opt;
  double       *z, *g, *pg, t[4];

  PetscFunctionBeginUser;
  PetscCall(bo_head_create_linear(tr->F, 2, head));
  bo_optim_defaults_adam(&oo);
  oo.lr = p->lr; oo.beta2 = 0.99;
  PetscCall(bo_optim_create(&oo, head->nparam, &opt));
  PetscCall(PetscMalloc3(PetscMax(1, 2 * n), &z, PetscMax(1, 2 * n), &g, head->nparam, &pg));
  b.logits = z;
  for (PetscInt it = 0; it < p->iterations; it++) {
    PetscCall(bo_head_forward(head, n, tr->x, z));
    PetscCall(PetscArrayzero(g, 2 * n));
    t[0] = t[1] = t[2] = t[3] = 0;
    if (variant == V_TEACHER) {
      b.mask = sv->is_strong;
      PetscCall(bo_loss_ce(&b, tr->y, NULL, 1.0, &t[0], g));
      loss[it] = t[0];
    } else {
      b.mask = sv->is_strong;
      PetscCall(bo_loss_ce(&b, sv->weak, NULL, p->w_weak, &t[0], g));
      b.mask = sv->is_weak;
      PetscCall(bo_loss_ce(&b, sv->weak, NULL, p->w_weak, &t[1], g));
      b.mask = NULL;
      if (variant == V_PCE_KD || variant == V_PCE_KD_H) PetscCall(bo_loss_kd(&b, teacher_z, p->T, p->w_kd, &t[2], g));
      if (variant == V_PCE_KD_H || variant == V_PCE_H) PetscCall(bo_loss_entropy(&b, NULL, p->w_h / 2.0, &t[3], g));
      loss[it] = p->w_weak * (t[0] + t[1]) + p->w_kd * t[2] + p->w_h / 2.0 * t[3];
      memcpy(terms + 4 * it, t, sizeof t);
    }
    PetscCall(bo_head_backward(head, job->comm, n, tr->x, g, nl, sv->blocks, pg));
    PetscCall(bo_optim_step(&opt, pg, head->param));
  }
  PetscCall(bo_optim_destroy(&opt));
  PetscCall(PetscFree3(z, g, pg));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_mixed(bo_job *job)
{
  mixed_params   p = {0};
  bo_scene_shard tr = {0}, te = {0}, *ev;
  supervision    sv = {0};
  bo_results     res;
  bo_head        teacher;
  PetscBool      stop;
  double        *loss, *terms, *rows, *tz, *tloss;
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
  PetscCall(make_supervision(job, &p, &tr, &sv));
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(PetscMalloc5(p.iterations, &loss, 4 * p.iterations, &terms, PetscMax(1, (ev->hi - ev->lo) * BO_SEG_NMETRICS), &rows, PetscMax(1, 2 * sv.n), &tz, p.iterations, &tloss));
  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  PetscCall(train_branch(job, &p, V_TEACHER, &tr, &sv, NULL, &teacher, tloss, terms));
  PetscCall(bo_head_forward(&teacher, sv.n, tr.x, tz)); /* frozen: the KD target */
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));
  for (int q = 0; q < p.nmethods; q++) {
    const int v = p.method[q];
    bo_head   student, *h = &teacher;
    double    mean[BO_SEG_NMETRICS], ci[BO_SEG_NMETRICS];
    hsize_t   dims[2] = {(hsize_t)p.iterations, 4};

    PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
    if (v == V_TEACHER) PetscCall(PetscArraycpy(loss, tloss, p.iterations));
    else {
      PetscCall(train_branch(job, &p, v, &tr, &sv, tz, &student, loss, terms));
      h = &student;
    }
    PetscCall(bo_seg_eval(h, ev, rows));
    PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));
    PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
    snprintf(name, sizeof name, "/%s/loss", variant_names[v]);
    PetscCall(bo_h5_write_array(res.file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, loss));
    if (v != V_TEACHER) {
      snprintf(name, sizeof name, "/%s/loss_terms", variant_names[v]);
      PetscCall(bo_h5_write_array(res.file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, dims, terms));
    }
    dims[0] = (hsize_t)h->nparam;
    snprintf(name, sizeof name, "/%s/weights", variant_names[v]);
    PetscCall(bo_h5_write_array(res.file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, h->param));
    snprintf(name, sizeof name, "/%s", variant_names[v]);
    PetscCall(bo_seg_eval_write(job, res.file, name, ev, rows, mean, ci));
    PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
    PetscCall(PetscPrintf(job->comm, "mixed: %-9s Dice fg %.4f +- %.4f, Dice bg %.4f, proportion error %.4f on %lld %s scenes\n", variant_names[v], mean[0], ci[0], mean[1], mean[6], (long long)ev->count, p.test[0] ? "test" : "training"));
    if (v != V_TEACHER) PetscCall(bo_head_destroy(&student));
  }
  PetscCall(bo_h5_attr_write_string(res.file, "/", "methods", p.methods));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "strong", p.strong));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "train_scenes", tr.count));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "weak_pixels", sv.nweak));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "iterations", p.iterations));
  PetscCall(bo_results_commit(&res, job));

  PetscCall(bo_head_destroy(&teacher));
  PetscCall(PetscFree5(loss, terms, rows, tz, tloss));
  PetscCall(PetscFree4(sv.is_strong, sv.is_weak, sv.weak, sv.blocks));
  PetscCall(bo_scene_shard_destroy(&tr));
  if (p.test[0]) PetscCall(bo_scene_shard_destroy(&te));
  PetscFunctionReturn(0);
}
