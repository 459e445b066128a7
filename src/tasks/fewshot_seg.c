/* fewshot_seg.c - task `fewshot-seg`: RePRI transductive few-shot segmentation (arXiv 2012.06166,
 * spec losses.md section 1) on the feature fields of composited scenes, with its ablations.
 *
 *   task: fewshot-seg
 *   input: jobs/data/scenes-test.h5        # scenes with feature fields (task scenes, features: true)
 *   output: fewshot-seg.h5
 *   fsseg: {method: "init,ce,ce+h,repri,oracle", shots: 1, tasks: 1000}
 *
 * Task t is drawn from the Philox stream (seed, t): a class c among -fsseg_classes (default: every
 * class present), then shots + 1 distinct scenes with pixels of class c in /masks (an object can be
 * covered entirely by the next one, so /objects/label is not enough): the support
 * scenes and the query.  Foreground = the pixels of class c (another object in the scene is
 * background, a distractor).  Ranks take contiguous task ranges, read only their tasks' scenes, and
 * every method runs on the same tasks; results are identical at any number of ranks.
 * Features per task: the scene channels without x, y (position is not a property of a class; keep
 * them with -fsseg_position) z-scored over the task's pixels (-fsseg_standardize, repri.h).
 *
 * Results
 *   /tasks/class (T), /tasks/support (T x shots scene ids), /tasks/query (T), /tasks/query_fg (T:
 *       the true foreground proportion of the query)
 *   per method M: /M/iou_counts T x 4 int64 (I_fg, U_fg, I_bg, U_bg of the query), /M/task_iou_fg (T),
 *       /M/pi (T: the proportion used by the KL, 0 without), /M/loss T x iters (before each step;
 *       not for init); attributes miou (per class, I and U summed over its tasks, then IoU; the
 *       mean over the classes drawn: the spec's protocol), fb_iou (mean of the summed foreground
 *       and background IoU), mean_task_iou_fg and ci95 (over tasks).
 *
 * Checkpoints (as task fewshot): with checkpoint: {file: F}, a signal (SIGUSR1/SIGTERM) makes the
 * ranks agree at a task boundary, write which tasks are done and their results, and exit 3; the
 * rerun, at any rank count, skips the done tasks and writes the same results as an uninterrupted
 * run.  `checkpoint: {every: n}` also writes every n tasks per rank.  The file is the fewshot
 * task's (fewshot_io.h): /rows/done, and a task's results packed into its /rows/accuracy row of
 * doubles (nruns = the row width; class, scene ids and pixel counts are integers < 2^53, exact):
 *   [class, query, query_fg, support (shots), then per method: I_fg, U_fg, I_bg, U_bg, task IoU,
 *    pi, loss (iters)].
 */
#include "boundopt/checkpoint.h"
#include "boundopt/error.h"
#include "boundopt/fewshot_io.h"
#include "boundopt/h5.h"
#include "boundopt/repri.h"
#include "boundopt/results.h"
#include "boundopt/rng.h"
#include "boundopt/seg_data.h"
#include "boundopt/signals.h"
#include "boundopt/tasks.h"
#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define FSSEG_RNG_PURPOSE 0xF55Eu
#define MAX_CLASSES       255

typedef struct {
  char      methods[256], classes[256];
  PetscInt  shots, tasks, iters, t_pi;
  PetscReal lr, tau;
  PetscBool kl_bump, position, standardize;
  int       nmethods, method[BO_REPRI_NMODES];
  int       nclasses;
  int32_t   cls[MAX_CLASSES];
} fsseg_params;

typedef struct {
  int64_t  S, npix, F;
  uint64_t identity;      /* the scenes file in checkpoints */
  uint8_t *present;       /* S x MAX_CLASSES: class c has pixels in scene s (1 + c in /masks), replicated */
  int      keep[1024];    /* feature channels used */
  int      d;
} scene_index;

static PetscErrorCode read_options(bo_job *job, fsseg_params *p)
{
  PetscFunctionBeginUser;
  snprintf(p->methods, sizeof p->methods, "init,ce,ce+h,repri,oracle");
  p->shots = 1; p->tasks = 1000; p->iters = 49; p->t_pi = 10; p->lr = 0.025; p->tau = 20;
  p->kl_bump = PETSC_TRUE; p->standardize = PETSC_TRUE;
  PetscOptionsBegin(job->comm, "fsseg_", "Task fewshot-seg: RePRI few-shot segmentation on scene feature fields", "boundopt");
  PetscCall(PetscOptionsString("-method", "Methods, comma separated: init, ce, ce+h, repri, oracle", "", p->methods, p->methods, sizeof p->methods, NULL));
  PetscCall(PetscOptionsString("-classes", "Classes to draw tasks from: \"0-9\" or a comma list (default: every class present)", "", p->classes, p->classes, sizeof p->classes, NULL));
  PetscCall(PetscOptionsInt("-shots", "Support scenes per task", "", p->shots, &p->shots, NULL));
  PetscCall(PetscOptionsInt("-tasks", "Number of tasks", "", p->tasks, &p->tasks, NULL));
  PetscCall(PetscOptionsInt("-iters", "SGD steps (reference: 49)", "", p->iters, &p->iters, NULL));
  PetscCall(PetscOptionsInt("-t_pi", "Step at which repri re-estimates pi", "", p->t_pi, &p->t_pi, NULL));
  PetscCall(PetscOptionsReal("-lr", "SGD learning rate", "", p->lr, &p->lr, NULL));
  PetscCall(PetscOptionsReal("-tau", "Cosine temperature", "", p->tau, &p->tau, NULL));
  PetscCall(PetscOptionsBool("-kl_bump", "Add 1 to the KL weight after the pi update (reference code)", "", p->kl_bump, &p->kl_bump, NULL));
  PetscCall(PetscOptionsBool("-position", "Keep the x, y feature channels", "", p->position, &p->position, NULL));
  PetscCall(PetscOptionsBool("-standardize", "z-score every channel over the task's pixels", "", p->standardize, &p->standardize, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscErrorCode check_options(bo_job *job, fsseg_params *p)
{
  PetscFunctionBeginUser;
  PetscCall(bo_job_parse_names(job, "fsseg_method", p->methods, BO_REPRI_NMODES, bo_repri_mode_names, BO_REPRI_NMODES, p->method, &p->nmethods));
  PetscCheck(p->shots >= 1 && p->shots <= 64, job->comm, BO_ERR_INPUT, "option -fsseg_shots: %d; expected 1..64", (int)p->shots);
  PetscCheck(p->tasks >= 1, job->comm, BO_ERR_INPUT, "option -fsseg_tasks: %d; expected at least one task", (int)p->tasks);
  PetscCheck(p->iters >= 0 && p->t_pi >= 0, job->comm, BO_ERR_INPUT, "option -fsseg_iters/t_pi: %d/%d; expected counts >= 0", (int)p->iters, (int)p->t_pi);
  PetscCheck(p->lr > 0 && p->tau > 0, job->comm, BO_ERR_INPUT, "option -fsseg_lr/tau: %g/%g; expected lr > 0 and tau > 0", (double)p->lr, (double)p->tau);
  if (p->classes[0]) PetscCall(bo_job_parse_ids(job, "fsseg_classes", p->classes, MAX_CLASSES, p->cls, &p->nclasses));
  PetscFunctionReturn(0);
}

/* Shapes, the object labels of every scene and the channels to use. */
static PetscErrorCode read_index(bo_job *job, const fsseg_params *p, scene_index *ix)
{
  hid_t         f;
  bo_scene_file sf;
  int64_t       F, nn = 0;
  char        **names = NULL;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_open_read(job->comm, job->input, &f));
  PetscCall(bo_scene_file_probe(job->comm, f, job->input, PETSC_TRUE, &sf));
  PetscCheck(sf.F <= 1024, job->comm, BO_ERR_INPUT, "%s: %lld feature channels; expected at most 1024", job->input, (long long)sf.F);
  ix->S = sf.S; ix->npix = sf.h * sf.w; ix->F = F = sf.F; ix->identity = sf.identity;
  { /* a pasted object can be covered entirely by the next one: presence comes from the masks */
    uint8_t *m;
    PetscCall(PetscMalloc1(ix->S * ix->npix, &m));
    PetscCall(bo_h5_read_array(f, "/masks", H5T_NATIVE_UINT8, m));
    PetscCall(PetscCalloc1(ix->S * MAX_CLASSES, &ix->present));
    for (int64_t s = 0; s < ix->S; s++)
      for (int64_t i = 0; i < ix->npix; i++)
        if (m[s * ix->npix + i]) ix->present[s * MAX_CLASSES + m[s * ix->npix + i] - 1] = 1; /* 1 + class, class 0..254 */
    PetscCall(PetscFree(m));
  }
  PetscCall(bo_h5_read_strings(f, "/feature_names", &nn, &names));
  PetscCall(bo_h5_close(&f));
  PetscCheck(nn == F, job->comm, BO_ERR_INPUT, "%s: %lld feature names for %lld channels; expected one name per channel", job->input, (long long)nn, (long long)F);
  ix->d = 0;
  for (int64_t j = 0; j < F; j++)
    if (p->position || (strcmp(names[j], "x") && strcmp(names[j], "y"))) ix->keep[ix->d++] = (int)j;
  PetscCall(bo_h5_free_strings(nn, &names));
  PetscFunctionReturn(0);
}

static PetscBool has_class(const scene_index *ix, int64_t s, int32_t c) { return c >= 0 && c < MAX_CLASSES && ix->present[s * MAX_CLASSES + c] ? PETSC_TRUE : PETSC_FALSE; }

/* The classes to draw from: given, or every class present; each needs shots + 1 scenes. */
static PetscErrorCode class_pools(bo_job *job, fsseg_params *p, const scene_index *ix, int64_t **count, int64_t ***pool)
{
  PetscFunctionBeginUser;
  if (!p->nclasses) {
    for (int32_t c = 0; c < MAX_CLASSES; c++)
      for (int64_t s = 0; s < ix->S; s++)
        if (has_class(ix, s, c)) { p->cls[p->nclasses++] = c; break; }
  }
  PetscCheck(p->nclasses > 0, job->comm, BO_ERR_INPUT, "%s: no object classes; expected scenes with objects", job->input);
  PetscCall(PetscCalloc1(p->nclasses, count));
  PetscCall(PetscCalloc1(p->nclasses, pool));
  for (int c = 0; c < p->nclasses; c++) {
    for (int64_t s = 0; s < ix->S; s++) (*count)[c] += has_class(ix, s, p->cls[c]);
    PetscCheck((*count)[c] >= p->shots + 1, job->comm, BO_ERR_INPUT, "%s: class %d is in %lld scenes; expected at least shots + 1 = %d", job->input, (int)p->cls[c], (long long)(*count)[c], (int)(p->shots + 1));
    PetscCall(PetscMalloc1((*count)[c], &(*pool)[c]));
    for (int64_t s = 0, q = 0; s < ix->S; s++)
      if (has_class(ix, s, p->cls[c])) (*pool)[c][q++] = s;
  }
  PetscFunctionReturn(0);
}

/* Task t: class index, shots + 1 distinct scenes (supports first, the query last). */
static void draw_task(uint64_t seed, int64_t t, int nclasses, const int64_t *count, int64_t *const *pool, int64_t shots, int *ci, int64_t *scenes)
{
  bo_rng r;
  bo_rng_init(&r, seed, (uint64_t)t, FSSEG_RNG_PURPOSE);
  *ci = (int)bo_rng_below(&r, (uint64_t)nclasses);
  for (int64_t k = 0; k <= shots; k++) {
    int64_t s;
    PetscBool dup;
    do { /* rejection: count >= shots + 1 is checked */
      s   = pool[*ci][bo_rng_below(&r, (uint64_t)count[*ci])];
      dup = PETSC_FALSE;
      for (int64_t j = 0; j < k; j++) dup |= scenes[j] == s;
    } while (dup);
    scenes[k] = s;
  }
}

/* Features (kept channels, as doubles) and class-c foreground of one scene. */
static PetscErrorCode load_scene(hid_t f, const scene_index *ix, int64_t s, int32_t c, float *fbuf, uint8_t *mbuf, double *x, uint8_t *y)
{
  PetscFunctionBeginUser;
  PetscCall(bo_h5_read_rows(f, "/features", H5T_NATIVE_FLOAT, ix->npix * ix->F, s, s + 1, fbuf));
  PetscCall(bo_h5_read_rows(f, "/masks", H5T_NATIVE_UINT8, ix->npix, s, s + 1, mbuf));
  for (int64_t i = 0; i < ix->npix; i++) {
    for (int j = 0; j < ix->d; j++) x[i * ix->d + j] = fbuf[i * ix->F + ix->keep[j]];
    y[i] = mbuf[i] == 1 + c;
  }
  PetscFunctionReturn(0);
}

typedef struct {
  int64_t  t0, t1;
  int32_t *cls;
  int64_t *support, *query;
  double  *query_fg;
  int64_t *counts;  /* per method: nlocal x 4 */
  double  *iou, *pi, *loss;
} fsseg_out;

/* One task's working arrays. */
typedef struct {
  double  *x;
  uint8_t *y, *pred, *mbuf;
  float   *fbuf;
} fsseg_work;

/* Width of a task's checkpoint row (the layout is in the header comment). */
static int64_t row_width(const fsseg_params *p) { return 3 + p->shots + p->nmethods * (6 + PetscMax(1, p->iters)); }

/* Local task t's results <-> its checkpoint row (integers as doubles: exact below 2^53). */
static void pack_row(const fsseg_params *p, const fsseg_out *o, int64_t t, double *row)
{
  const int64_t nl = o->t1 - o->t0, K = p->shots, iters = PetscMax(1, p->iters);
  double       *r  = row;
  *r++ = o->cls[t];
  *r++ = (double)o->query[t];
  *r++ = o->query_fg[t];
  for (int64_t k = 0; k < K; k++) *r++ = (double)o->support[t * K + k];
  for (int q = 0; q < p->nmethods; q++) {
    for (int j = 0; j < 4; j++) *r++ = (double)o->counts[(q * nl + t) * 4 + j];
    *r++ = o->iou[q * nl + t];
    *r++ = o->pi[q * nl + t];
    for (int64_t i = 0; i < iters; i++) *r++ = o->loss[(q * nl + t) * iters + i];
  }
}

static void unpack_row(const fsseg_params *p, const double *row, int64_t t, fsseg_out *o)
{
  const int64_t nl = o->t1 - o->t0, K = p->shots, iters = PetscMax(1, p->iters);
  const double *r  = row;
  o->cls[t]      = (int32_t)*r++;
  o->query[t]    = (int64_t)*r++;
  o->query_fg[t] = *r++;
  for (int64_t k = 0; k < K; k++) o->support[t * K + k] = (int64_t)*r++;
  for (int q = 0; q < p->nmethods; q++) {
    for (int j = 0; j < 4; j++) o->counts[(q * nl + t) * 4 + j] = (int64_t)*r++;
    o->iou[q * nl + t] = *r++;
    o->pi[q * nl + t]  = *r++;
    for (int64_t i = 0; i < iters; i++) o->loss[(q * nl + t) * iters + i] = *r++;
  }
}

/* Local task t (global o->t0 + t): its scenes, every method, the query's IoU counts. */
static PetscErrorCode run_task(bo_job *job, const fsseg_params *p, const scene_index *ix, const int64_t *count, int64_t *const *pool, hid_t f, int64_t t, fsseg_work *w, fsseg_out *o)
{
  const int64_t nl = o->t1 - o->t0, K = p->shots, n = ix->npix, d = ix->d, iters = PetscMax(1, p->iters);
  int64_t       scenes[65], fgq = 0;
  bo_repri_opts ro;
  int           ci;

  PetscFunctionBeginUser;
  bo_repri_defaults(&ro);
  ro.tau = p->tau; ro.lr = p->lr; ro.iters = (int)p->iters; ro.t_pi = (int)p->t_pi; ro.kl_bump = p->kl_bump;
  draw_task((uint64_t)job->seed, o->t0 + t, p->nclasses, count, pool, K, &ci, scenes);
  const int32_t c = p->cls[ci];
  o->cls[t] = c;
  for (int64_t k = 0; k <= K; k++) PetscCall(load_scene(f, ix, scenes[k], c, w->fbuf, w->mbuf, w->x + k * n * d, w->y + k * n));
  for (int64_t k = 0; k < K; k++) o->support[t * K + k] = scenes[k];
  o->query[t] = scenes[K];
  for (int64_t i = 0; i < n; i++) fgq += w->y[K * n + i];
  o->query_fg[t] = (double)fgq / (double)n;
  if (p->standardize) bo_repri_standardize((K + 1) * n, d, w->x);
  for (int q = 0; q < p->nmethods; q++) {
    const int m = p->method[q];
    PetscCall(bo_repri_run(&ro, (bo_repri_mode)m, K, n, n, d, w->x, w->y, w->x + K * n * d, o->query_fg[t], w->pred, o->loss + (q * nl + t) * iters, o->pi + q * nl + t));
    int64_t tp = 0, fp = 0, fn = 0, tn = 0, *cnt = o->counts + (q * nl + t) * 4;
    for (int64_t i = 0; i < n; i++) {
      const int a = w->pred[i], b = w->y[K * n + i];
      tp += a && b; fp += a && !b; fn += !a && b; tn += !a && !b;
    }
    cnt[0] = tp; cnt[1] = tp + fp + fn; cnt[2] = tn; cnt[3] = tn + fp + fn;
    o->iou[q * nl + t] = cnt[1] ? (double)cnt[0] / (double)cnt[1] : 1.0;
  }
  PetscFunctionReturn(0);
}

/* After each task round (but the last): agree on signals; checkpoint when signalled or every
 * checkpoint_every tasks per rank (the pattern of task fewshot). */
static PetscErrorCode task_boundary(bo_job *job, uint64_t hash, const bo_fewshot_progress *pr, int64_t round, int64_t rounds, PetscBool *interrupted)
{
  PetscBool signalled = PETSC_FALSE, periodic;

  PetscFunctionBeginUser;
  *interrupted = PETSC_FALSE;
  if (round == job->debug_signal_at && job->rank == job->size - 1) raise(SIGUSR1);
  if (round + 1 == rounds) PetscFunctionReturn(0); /* the results come next */
  periodic = job->checkpoint_every > 0 && (round + 1) % job->checkpoint_every == 0;
  PetscCall(bo_signals_pending(job->comm, &signalled));
  if (job->checkpoint_file[0] && (signalled || periodic)) PetscCall(bo_fewshot_checkpoint_write(job->comm, job->checkpoint_file, hash, pr));
  if (signalled) {
    PetscCheck(job->checkpoint_file[0], job->comm, BO_ERR_RUNTIME, "signal %d: stopped without a checkpoint; expected checkpoint: {file: ...} to resume", bo_signals_last());
    *interrupted = PETSC_TRUE;
  }
  PetscFunctionReturn(0);
}

/* Every rank loops over as many rounds as the largest task range, so the boundaries (collective)
 * line up; a task of this rank's range that the checkpoint has done is skipped. */
static PetscErrorCode run_tasks(bo_job *job, const fsseg_params *p, const scene_index *ix, const int64_t *count, int64_t *const *pool, uint64_t hash, bo_fewshot_progress *pr, fsseg_out *o, PetscBool *interrupted)
{
  const int64_t  nl = o->t1 - o->t0, K = p->shots, n = ix->npix, d = ix->d, W = pr->nruns;
  const int64_t  rounds = (p->tasks + job->size - 1) / job->size;
  fsseg_work     w;
  hid_t          f = -1;
  PetscErrorCode ierr;

  PetscFunctionBeginUser;
  *interrupted = PETSC_FALSE;
  PetscCall(PetscMalloc5((K + 1) * n * d, &w.x, (K + 1) * n, &w.y, n, &w.pred, n, &w.mbuf, n * ix->F, &w.fbuf));
  PetscCall(bo_error_try_begin());
  ierr = bo_h5_open_read(PETSC_COMM_SELF, job->input, &f);
  PetscCall(bo_error_try_end(job->comm, ierr));
  for (int64_t t = 0; t < rounds && !*interrupted; t++) {
    /* Every rank takes part in every round (the error check and the signal agreement are
     * collective); only ranks with an unfinished local task t run it. */
    const PetscBool runs_here = t < nl && !pr->done[t];
    PetscCall(bo_error_try_begin()); /* on every rank: another rank's task may fail */
    ierr = runs_here ? run_task(job, p, ix, count, pool, f, t, &w, o) : 0;
    if (ierr) H5Fclose(f);
    PetscCall(bo_error_try_end(job->comm, ierr));
    if (runs_here) {
      pack_row(p, o, t, pr->accuracy + t * W);
      pr->done[t] = 1;
    }
    PetscCall(task_boundary(job, hash, pr, t, rounds, interrupted));
  }
  H5Fclose(f);
  PetscCall(PetscFree5(w.x, w.y, w.pred, w.mbuf, w.fbuf));
  PetscFunctionReturn(0);
}

static PetscErrorCode write_results(bo_job *job, const fsseg_params *p, const fsseg_out *o, hid_t file)
{
  const int64_t nl = o->t1 - o->t0, iters = PetscMax(1, p->iters);
  char          name[128];
  int64_t      *sums, *cnt;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_write_rows(file, "/tasks/class", H5T_NATIVE_INT32, H5T_STD_I32LE, p->tasks, 1, o->t0, o->t1, o->cls));
  PetscCall(bo_h5_write_rows(file, "/tasks/support", H5T_NATIVE_INT64, H5T_STD_I64LE, p->tasks, p->shots, o->t0, o->t1, o->support));
  PetscCall(bo_h5_write_rows(file, "/tasks/query", H5T_NATIVE_INT64, H5T_STD_I64LE, p->tasks, 1, o->t0, o->t1, o->query));
  PetscCall(bo_h5_write_rows(file, "/tasks/query_fg", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, p->tasks, 1, o->t0, o->t1, o->query_fg));
  PetscCall(PetscMalloc1(4 * (MAX_CLASSES + 1), &sums));
  for (int q = 0; q < p->nmethods; q++) {
    const char *mn = bo_repri_mode_names[p->method[q]];
    double      s1 = 0, s2 = 0, miou = 0, fb;
    int         present = 0;
    cnt = o->counts + q * nl * 4;
    snprintf(name, sizeof name, "/%s/iou_counts", mn);
    PetscCall(bo_h5_write_rows(file, name, H5T_NATIVE_INT64, H5T_STD_I64LE, p->tasks, 4, o->t0, o->t1, cnt));
    snprintf(name, sizeof name, "/%s/task_iou_fg", mn);
    PetscCall(bo_h5_write_rows(file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, p->tasks, 1, o->t0, o->t1, o->iou + q * nl));
    snprintf(name, sizeof name, "/%s/pi", mn);
    PetscCall(bo_h5_write_rows(file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, p->tasks, 1, o->t0, o->t1, o->pi + q * nl));
    if (p->method[q] != BO_REPRI_INIT && p->iters > 0) {
      snprintf(name, sizeof name, "/%s/loss", mn);
      PetscCall(bo_h5_write_rows(file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, p->tasks, iters, o->t0, o->t1, o->loss + q * nl * iters));
    }
    /* integer counts per class (fg) and overall (fg, bg): exact sums */
    PetscCall(PetscArrayzero(sums, 4 * (MAX_CLASSES + 1)));
    for (int64_t t = 0; t < nl; t++) {
      int ci = 0;
      while (p->cls[ci] != o->cls[t]) ci++;
      sums[2 * ci] += cnt[4 * t]; sums[2 * ci + 1] += cnt[4 * t + 1]; sums[2 * ci + 2 * MAX_CLASSES] += 1;
      sums[4 * MAX_CLASSES] += cnt[4 * t]; sums[4 * MAX_CLASSES + 1] += cnt[4 * t + 1];
      sums[4 * MAX_CLASSES + 2] += cnt[4 * t + 2]; sums[4 * MAX_CLASSES + 3] += cnt[4 * t + 3];
    }
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, sums, 4 * (MAX_CLASSES + 1), MPI_INT64_T, MPI_SUM, job->comm));
    for (int c = 0; c < p->nclasses; c++)
      if (sums[2 * c + 2 * MAX_CLASSES] > 0) {
        miou += sums[2 * c + 1] ? (double)sums[2 * c] / (double)sums[2 * c + 1] : 1.0;
        present++;
      }
    miou /= PetscMax(present, 1);
    fb = 0.5 * ((double)sums[4 * MAX_CLASSES] / (double)PetscMax(1, sums[4 * MAX_CLASSES + 1]) + (double)sums[4 * MAX_CLASSES + 2] / (double)PetscMax(1, sums[4 * MAX_CLASSES + 3]));
    /* per-task mean and CI: the task IoUs gathered in task order, summed on every rank alike */
    double *all;
    int    *rc, *rd;
    PetscCall(PetscMalloc3(p->tasks, &all, job->size, &rc, job->size, &rd));
    for (int r = 0; r < job->size; r++) {
      rd[r] = (int)(p->tasks * r / job->size);
      rc[r] = (int)(p->tasks * (r + 1) / job->size) - rd[r];
    }
    PetscCallMPI(MPI_Allgatherv(o->iou + q * nl, (int)nl, MPI_DOUBLE, all, rc, rd, MPI_DOUBLE, job->comm));
    for (int64_t t = 0; t < p->tasks; t++) s1 += all[t];
    const double mean = s1 / (double)p->tasks;
    for (int64_t t = 0; t < p->tasks; t++) s2 += (all[t] - mean) * (all[t] - mean);
    const double ci = p->tasks > 1 ? 1.96 * sqrt(s2 / (double)(p->tasks - 1) / (double)p->tasks) : 0;
    PetscCall(PetscFree3(all, rc, rd));
    snprintf(name, sizeof name, "/%s", mn);
    PetscCall(bo_h5_attr_write_double(file, name, "miou", miou));
    PetscCall(bo_h5_attr_write_double(file, name, "fb_iou", fb));
    PetscCall(bo_h5_attr_write_double(file, name, "mean_task_iou_fg", mean));
    PetscCall(bo_h5_attr_write_double(file, name, "ci95", ci));
    PetscCall(PetscPrintf(job->comm, "fewshot-seg: %-7s %lld tasks %d-shot: mIoU %.2f%%, FB-IoU %.2f%%, task IoU %.2f%% +- %.2f\n", mn, (long long)p->tasks, (int)p->shots, 100 * miou, 100 * fb, 100 * mean, 100 * ci));
  }
  PetscCall(PetscFree(sums));
  PetscCall(bo_h5_attr_write_string(file, "/", "methods", p->methods));
  PetscCall(bo_h5_attr_write_int64(file, "/", "shots", p->shots));
  PetscCall(bo_h5_attr_write_int64(file, "/", "tasks", p->tasks));
  PetscCall(bo_h5_attr_write_int64(file, "/", "iters", p->iters));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_fewshot_seg(bo_job *job)
{
  fsseg_params        p = {0};
  scene_index         ix = {0};
  fsseg_out           o = {0};
  bo_fewshot_progress pr = {0};
  bo_results          res;
  PetscBool           stop, resumed = PETSC_FALSE, interrupted = PETSC_FALSE;
  int64_t            *count, **pool, nl, iters, done_before = 0;
  uint64_t            hash;

  PetscFunctionBeginUser;
  PetscCall(read_options(job, &p));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) PetscFunctionReturn(0);
  PetscCall(bo_job_require(job, "input", job->input, "a scenes file with feature fields (task scenes, features: true)"));
  PetscCall(bo_job_require(job, "output", job->output, "the results file to write"));
  PetscCall(check_options(job, &p));
  PetscCall(bo_results_create(job, job->output, &res));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(read_index(job, &p, &ix));
  PetscCall(class_pools(job, &p, &ix, &count, &pool));
  PetscCall(bo_checkpoint_job_hash(ix.identity, &hash));
  o.t0 = p.tasks * job->rank / job->size;
  o.t1 = p.tasks * (job->rank + 1) / job->size;
  nl = o.t1 - o.t0;
  iters = PetscMax(1, p.iters);
  PetscCall(PetscMalloc5(PetscMax(1, nl), &o.cls, PetscMax(1, nl * p.shots), &o.support, PetscMax(1, nl), &o.query, PetscMax(1, nl), &o.query_fg, PetscMax(1, 4 * nl * p.nmethods), &o.counts));
  PetscCall(PetscCalloc3(PetscMax(1, nl * p.nmethods), &o.iou, PetscMax(1, nl * p.nmethods), &o.pi, PetscMax(1, nl * p.nmethods * iters), &o.loss));
  pr.ntasks = p.tasks; pr.t0 = o.t0; pr.t1 = o.t1; pr.nruns = row_width(&p);
  PetscCall(PetscCalloc2(PetscMax(1, nl), &pr.done, PetscMax(1, nl * pr.nruns), &pr.accuracy));
  if (job->checkpoint_file[0] && job->restart) {
    PetscCall(bo_fewshot_checkpoint_read(job->comm, job->checkpoint_file, hash, &pr, &resumed));
    for (int64_t t = 0; t < nl; t++) {
      if (!pr.done[t]) continue;
      unpack_row(&p, pr.accuracy + t * pr.nruns, t, &o);
      done_before++;
    }
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &done_before, 1, MPI_INT64_T, MPI_SUM, job->comm));
    if (resumed) PetscCall(PetscPrintf(job->comm, "fewshot-seg: resuming from %s: %lld of %lld tasks done\n", job->checkpoint_file, (long long)done_before, (long long)p.tasks));
  }
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  PetscCall(run_tasks(job, &p, &ix, count, pool, hash, &pr, &o, &interrupted));
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));

  if (interrupted) {
    PetscCall(PetscPrintf(job->comm, "fewshot-seg: signal received; checkpoint %s written; rerun the job to resume (exit 3)\n", job->checkpoint_file));
    PetscCall(bo_results_discard(&res));
    job->exit_status = BO_EXIT_CHECKPOINTED;
  } else {
    PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
    PetscCall(write_results(job, &p, &o, res.file));
    PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
    PetscCall(bo_results_commit(&res, job));
    if (job->checkpoint_file[0] && !job->rank) unlink(job->checkpoint_file); /* the job is done */
  }

  PetscCall(PetscFree2(pr.done, pr.accuracy));
  PetscCall(PetscFree5(o.cls, o.support, o.query, o.query_fg, o.counts));
  PetscCall(PetscFree3(o.iou, o.pi, o.loss));
  for (int c = 0; c < p.nclasses; c++) PetscCall(PetscFree(pool[c]));
  PetscCall(PetscFree(pool));
  PetscCall(PetscFree(count));
  PetscCall(PetscFree(ix.present));
  PetscFunctionReturn(0);
}
