/* mixed.c - task `mixed`: mixed supervision with a teacher and a student branch ("the student
 * becomes the master", arXiv 2012.08051; spec losses.md section 6) on the feature fields of scenes.
 *
 *   task: mixed
 *   input: jobs/data/scenes-train.h5       # scenes with feature fields (task scenes)
 *   output: mixed.h5
 *   mixed: {test: jobs/data/scenes-test.h5, scenes: 200, strong: 10, method: "teacher,pce,pce+kd,pce+kd+h,pce+h",
 *           kd: paper, kd_detach: 1}
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
 * The spec's open KD choices (section 6), bo_loss_kd_pair in losses.h:
 *   -mixed_kd paper (default)  KL(q_T || q_S) of softmax(z / T), a mean over pixels (weight w_kd);
 *   -mixed_kd code             the reference code's KL(q(P_S) || q(P_T)) of softmax(P / T), P =
 *                              softmax(z) (double softmax, student || teacher), a mean over (pixel,
 *                              class) elements, so weighted w_kd k (= the reference's 40 for k = 2);
 *   -mixed_kd_detach 1 (default) the teacher gets no KD gradient; 0: it does (the reference).
 * With a detached teacher the branches do not interact backwards, so the teacher is trained first
 * and frozen; each student variant then starts from zero:
 *   pce  (weak labels only)   pce+kd   pce+kd+h (the method)   pce+h (entropy without KD, expected
 *   to collapse).   Not detached, each KD variant trains its own teacher together with its student
 *   from zero (teacher: CE(F) + the KD term's teacher gradient; one Adam step over both heads per
 *   iteration, which is two Adam states: Adam is elementwise).  Full-batch Adam (betas 0.9, 0.99
 *   as the reference), data-parallel over images with exact sums: results are identical at any
 *   number of ranks.
 *
 * Results: /teacher and /<variant>: loss (iterations), weights, eval/metrics with mean_/ci95_
 * attributes on the test scenes (seg_data.h); students also loss_terms (iterations x 4: pCE(F),
 * pCE(W), KD (the value of the selected form, unweighted), H).  Not detached, a KD variant's own
 * teacher is /<variant>/teacher (loss: its CE on F; weights; eval).  Root attributes: strong,
 * weak_pixels (weakly labelled pixels in total), kd, kd_detach.
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
  char       methods[256], test[PETSC_MAX_PATH_LEN], kd[16], kd_detach_s[16];
  PetscInt   scenes, test_scenes, strong, iterations, kd_detach;
  PetscReal  lr, T, w_kd, w_weak, w_h, radius;
  int        nmethods, method[V_COUNT];
  bo_kd_form kd_form;
} mixed_params;

static PetscBool uses_kd(int variant) { return variant == V_PCE_KD || variant == V_PCE_KD_H; }

/* The weight of the KD value: w_kd per pixel; the code form is a mean over the k = 2 classes too. */
static double kd_weight(const mixed_params *p) { return p->kd_form == BO_KD_CODE ? 2 * p->w_kd : p->w_kd; }

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
  snprintf(p->kd, sizeof p->kd, "paper");
  snprintf(p->kd_detach_s, sizeof p->kd_detach_s, "1");
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
  PetscCall(PetscOptionsString("-kd", "KD form: paper (KL(q_T||q_S) on logits / T) or code (reference: KL(q(P_S)||q(P_T)) on probabilities, double softmax)", "", p->kd, p->kd, sizeof p->kd, NULL));
  /* a string, so that a bad value gets the task's one-line error rather than PETSc's parse error */
  PetscCall(PetscOptionsString("-kd_detach", "1 (or true): the teacher gets no KD gradient (trained first, frozen); 0 (false): teacher and student trained together", "", p->kd_detach_s, p->kd_detach_s, sizeof p->kd_detach_s, NULL));
  PetscCall(PetscOptionsReal("-weak_weight", "Weight of the partial CE terms", "", p->w_weak, &p->w_weak, NULL));
  PetscCall(PetscOptionsReal("-entropy_weight", "Weight of the student entropy (applied / k: a mean over pixels and classes)", "", p->w_h, &p->w_h, NULL));
  PetscCall(PetscOptionsReal("-radius", "Weak labels: disk radius in pixels", "", p->radius, &p->radius, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscErrorCode check_options(bo_job *job, mixed_params *p)
{
  PetscFunctionBeginUser;
  PetscCall(bo_job_parse_names(job, "mixed_method", p->methods, V_COUNT, variant_names, V_COUNT, p->method, &p->nmethods));
  PetscCheck(!strcmp(p->kd, "paper") || !strcmp(p->kd, "code"), job->comm, BO_ERR_INPUT, "option -mixed_kd: '%s'; expected paper or code", p->kd);
  p->kd_form = strcmp(p->kd, "code") ? BO_KD_PAPER : BO_KD_CODE;
  if (!strcmp(p->kd_detach_s, "1") || !strcmp(p->kd_detach_s, "true")) p->kd_detach = 1;
  else if (!strcmp(p->kd_detach_s, "0") || !strcmp(p->kd_detach_s, "false")) p->kd_detach = 0;
  else SETERRQ(job->comm, BO_ERR_INPUT, "option -mixed_kd_detach: '%s'; expected 1 (teacher detached) or 0", p->kd_detach_s);
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

/* One Adam-trained linear head and its buffers. */
typedef struct {
  bo_head  *head;
  bo_optim  opt;
  double   *z, *g, *pg; /* logits, logit gradients (n x 2), parameter gradients */
} branch;

static PetscErrorCode branch_create(const mixed_params *p, const bo_scene_shard *tr, int64_t n, bo_head *head, branch *br)
{
  bo_optim_opts oo;

  PetscFunctionBeginUser;
  br->head = head;
  PetscCall(bo_head_create_linear(tr->F, 2, head));
  bo_optim_defaults_adam(&oo);
  oo.lr = p->lr; oo.beta2 = 0.99;
  PetscCall(bo_optim_create(&oo, head->nparam, &br->opt));
  PetscCall(PetscMalloc3(PetscMax(1, 2 * n), &br->z, PetscMax(1, 2 * n), &br->g, head->nparam, &br->pg));
  PetscFunctionReturn(0);
}

static PetscErrorCode branch_destroy(branch *br)
{
  PetscFunctionBeginUser;
  PetscCall(bo_optim_destroy(&br->opt));
  PetscCall(PetscFree3(br->z, br->g, br->pg));
  PetscFunctionReturn(0);
}

/* One branch: the teacher (variant V_TEACHER) or a student variant.  A student learns against the
 * frozen teacher's logits teacher_z, or, with joint (a head to create; teacher_z unused), against a
 * teacher trained with it from zero that receives the KD gradient (-mixed_kd_detach 0): joint_loss
 * gets that teacher's CE on F per iteration. */
static PetscErrorCode train_branch(bo_job *job, const mixed_params *p, int variant, const bo_scene_shard *tr, const supervision *sv, const double *teacher_z, bo_head *head, double *loss, double *terms, bo_head *joint, double *joint_loss)
{
  const int64_t nl = tr->hi - tr->lo, n = sv->n;
  bo_loss_batch b = {.comm = job->comm, .n = n, .k = 2, .ngroups = 1};
  branch        st, te = {0};
  double        t[4];

  PetscFunctionBeginUser;
  PetscCall(branch_create(p, tr, n, head, &st));
  if (joint) PetscCall(branch_create(p, tr, n, joint, &te));
  for (PetscInt it = 0; it < p->iterations; it++) {
    b.logits = st.z;
    PetscCall(bo_head_forward(head, n, tr->x, st.z));
    PetscCall(PetscArrayzero(st.g, 2 * n));
    t[0] = t[1] = t[2] = t[3] = 0;
    if (joint) { /* the teacher's own step: CE on F; KD adds to te.g below */
      bo_loss_batch bt = b;
      bt.logits = te.z, bt.mask = sv->is_strong;
      PetscCall(bo_head_forward(joint, n, tr->x, te.z));
      PetscCall(PetscArrayzero(te.g, 2 * n));
      PetscCall(bo_loss_ce(&bt, tr->y, NULL, 1.0, &joint_loss[it], te.g));
      teacher_z = te.z;
    }
    if (variant == V_TEACHER) {
      b.mask = sv->is_strong;
      PetscCall(bo_loss_ce(&b, tr->y, NULL, 1.0, &t[0], st.g));
      loss[it] = t[0];
    } else {
      b.mask = sv->is_strong;
      PetscCall(bo_loss_ce(&b, sv->weak, NULL, p->w_weak, &t[0], st.g));
      b.mask = sv->is_weak;
      PetscCall(bo_loss_ce(&b, sv->weak, NULL, p->w_weak, &t[1], st.g));
      b.mask = NULL;
      if (uses_kd(variant)) PetscCall(bo_loss_kd_pair(&b, teacher_z, p->kd_form, p->T, kd_weight(p), &t[2], st.g, joint ? te.g : NULL));
      if (variant == V_PCE_KD_H || variant == V_PCE_H) PetscCall(bo_loss_entropy(&b, NULL, p->w_h / 2.0, &t[3], st.g));
      loss[it] = p->w_weak * (t[0] + t[1]) + kd_weight(p) * t[2] + p->w_h / 2.0 * t[3];
      memcpy(terms + 4 * it, t, sizeof t);
    }
    PetscCall(bo_head_backward(head, job->comm, n, tr->x, st.g, nl, sv->blocks, st.pg));
    PetscCall(bo_optim_step(&st.opt, st.pg, head->param));
    if (joint) {
      PetscCall(bo_head_backward(joint, job->comm, n, tr->x, te.g, nl, sv->blocks, te.pg));
      PetscCall(bo_optim_step(&te.opt, te.pg, joint->param));
    }
  }
  PetscCall(branch_destroy(&st));
  if (joint) PetscCall(branch_destroy(&te));
  PetscFunctionReturn(0);
}

/* Writes a head's loss, weights and evaluation under group and prints its line. */
static PetscErrorCode write_head(bo_job *job, const mixed_params *p, hid_t file, const char *group, const char *label, const bo_head *h, const bo_scene_shard *ev, double *rows, const double *loss)
{
  double  mean[BO_SEG_NMETRICS], ci[BO_SEG_NMETRICS];
  hsize_t dims[1] = {(hsize_t)p->iterations};
  char    name[160];

  PetscFunctionBeginUser;
  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  PetscCall(bo_seg_eval(h, ev, rows));
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));
  PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
  snprintf(name, sizeof name, "%s/loss", group);
  PetscCall(bo_h5_write_array(file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, loss));
  dims[0] = (hsize_t)h->nparam;
  snprintf(name, sizeof name, "%s/weights", group);
  PetscCall(bo_h5_write_array(file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, h->param));
  PetscCall(bo_seg_eval_write(job, file, group, ev, rows, mean, ci));
  PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
  PetscCall(PetscPrintf(job->comm, "mixed: %-9s Dice fg %.4f +- %.4f, Dice bg %.4f, proportion error %.4f on %lld %s scenes\n", label, mean[0], ci[0], mean[1], mean[6], (long long)ev->count, p->test[0] ? "test" : "training"));
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
  double        *loss, *terms, *rows, *tz, *tloss, *jloss;
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

  PetscCall(PetscMalloc6(p.iterations, &loss, 4 * p.iterations, &terms, PetscMax(1, (ev->hi - ev->lo) * BO_SEG_NMETRICS), &rows, PetscMax(1, 2 * sv.n), &tz, p.iterations, &tloss, p.iterations, &jloss));
  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  PetscCall(train_branch(job, &p, V_TEACHER, &tr, &sv, NULL, &teacher, tloss, terms, NULL, NULL));
  PetscCall(bo_head_forward(&teacher, sv.n, tr.x, tz)); /* frozen: the KD target when detached */
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));
  for (int q = 0; q < p.nmethods; q++) {
    const int       v     = p.method[q];
    const PetscBool joint = uses_kd(v) && !p.kd_detach;
    bo_head         student, own_teacher, *h = &teacher;

    PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
    if (v == V_TEACHER) PetscCall(PetscArraycpy(loss, tloss, p.iterations));
    else {
      PetscCall(train_branch(job, &p, v, &tr, &sv, tz, &student, loss, terms, joint ? &own_teacher : NULL, jloss));
      h = &student;
    }
    PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));
    snprintf(name, sizeof name, "/%s", variant_names[v]);
    PetscCall(write_head(job, &p, res.file, name, variant_names[v], h, ev, rows, loss));
    if (v != V_TEACHER) {
      hsize_t dims[2] = {(hsize_t)p.iterations, 4};
      snprintf(name, sizeof name, "/%s/loss_terms", variant_names[v]);
      PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
      PetscCall(bo_h5_write_array(res.file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, dims, terms));
      PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
      PetscCall(bo_head_destroy(&student));
    }
    if (joint) { /* this variant's own teacher, trained with its student */
      char label[64];
      snprintf(name, sizeof name, "/%s/teacher", variant_names[v]);
      snprintf(label, sizeof label, "%s/teacher", variant_names[v]);
      PetscCall(write_head(job, &p, res.file, name, label, &own_teacher, ev, rows, jloss));
      PetscCall(bo_head_destroy(&own_teacher));
    }
  }
  PetscCall(bo_h5_attr_write_string(res.file, "/", "methods", p.methods));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "strong", p.strong));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "train_scenes", tr.count));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "weak_pixels", sv.nweak));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "iterations", p.iterations));
  PetscCall(bo_h5_attr_write_string(res.file, "/", "kd", p.kd));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "kd_detach", p.kd_detach));
  PetscCall(bo_results_commit(&res, job));

  PetscCall(bo_head_destroy(&teacher));
  PetscCall(PetscFree6(loss, terms, rows, tz, tloss, jloss));
  PetscCall(PetscFree4(sv.is_strong, sv.is_weak, sv.weak, sv.blocks));
  PetscCall(bo_scene_shard_destroy(&tr));
  if (p.test[0]) PetscCall(bo_scene_shard_destroy(&te));
  PetscFunctionReturn(0);
}
