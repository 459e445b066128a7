/* segment.c - task `segment`: Ambrosio-Tortorelli piecewise-smooth image and edge map (solvers/at.c).
 *
 *   task: segment
 *   input: jobs/data/BrainT1Slice.png
 *   output: brain-at.h5
 *   segment: {alpha: 1, lambda: 0.01, epsilon: 2, epsilon_final: 0.25, inner: rbgs}
 *
 * u starts at the image and v at 1; eps runs from epsilon down to epsilon_final, halving; at each
 * eps at most max_it outer iterations (a u-step and a v-step each), fewer when max |dv| < tol over
 * all channels.  Channels are segmented independently, in lockstep.
 * Results: /u and /v (H x W [x 3] float64; v in [0,1], 0 on edges), per outer iteration /energy
 * (E_eps after it, summed over channels), /energy_before (E_eps before it, so a stage's first
 * descent is visible too), /epsilon and /inner_iterations (u + v, summed over channels); the
 * parameters as attributes; PNG copies <output>-u.png and <output>-v.png.  -segment_monitor
 * prints one line per iteration.  Inner KSPs: prefixes segment_u_ and segment_v_.
 */
#include "boundopt/at.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/image.h"
#include "boundopt/rbgs.h"
#include "boundopt/results.h"
#include "boundopt/tasks.h"
#include <math.h>
#include <string.h>

typedef struct {
  char       inner[16];
  PetscReal  alpha, lambda, epsilon, epsilon_final, mu, omega, tol;
  PetscInt   sweeps, max_it;
  PetscBool  monitor;
  bo_at_opts at;
} segment_params;

static PetscErrorCode read_options(bo_job *job, segment_params *p)
{
  PetscFunctionBeginUser;
  snprintf(p->inner, sizeof p->inner, "rbgs");
  p->alpha = 1, p->lambda = 0.01, p->epsilon = 2, p->epsilon_final = 0.25, p->omega = 1, p->tol = 1e-4, p->sweeps = 1, p->max_it = 10;
  PetscOptionsBegin(job->comm, "segment_", "Task segment: Ambrosio-Tortorelli u (piecewise smooth) and v (edges)", "boundopt");
  PetscCall(PetscOptionsReal("-alpha", "Data weight: alpha ||u - g||^2", "", p->alpha, &p->alpha, NULL));
  PetscCall(PetscOptionsReal("-lambda", "Edge weight: lambda eps ||grad v||^2 + lambda/(4 eps) ||1 - v||^2", "", p->lambda, &p->lambda, NULL));
  PetscCall(PetscOptionsReal("-epsilon", "First eps of the continuation (in pixels)", "", p->epsilon, &p->epsilon, NULL));
  PetscCall(PetscOptionsReal("-epsilon_final", "Last eps: eps halves from -segment_epsilon down to this", "", p->epsilon_final, &p->epsilon_final, NULL));
  PetscCall(PetscOptionsReal("-mu", "Proximal weight of both steps", "", p->mu, &p->mu, NULL));
  PetscCall(PetscOptionsString("-inner", "Inner solver of both steps: exact, cg, rbgs (rank-count independent), jacobi, mg, ssor (feasible at 1 rank only), fft (majorant); KSPs segment_u_ and segment_v_ (-segment_u_pc_type ...)", "", p->inner, p->inner, sizeof p->inner, NULL));
  PetscCall(PetscOptionsInt("-sweeps", "Preconditioned iterations per step for rbgs, jacobi, mg, ssor, fft", "", p->sweeps, &p->sweeps, NULL));
  PetscCall(PetscOptionsReal("-omega", "SSOR relaxation factor in (0, 2)", "", p->omega, &p->omega, NULL));
  PetscCall(PetscOptionsInt("-max_it", "Outer iterations at most per eps", "", p->max_it, &p->max_it, NULL));
  PetscCall(PetscOptionsReal("-tol", "Next eps when max |v - v_old| < tol", "", p->tol, &p->tol, NULL));
  PetscCall(PetscOptionsName("-monitor", "Print the energy every outer iteration", "", &p->monitor));
  PetscOptionsEnd();
  if (job->help) {
    const char *prefixes[2] = {"segment_u_", "segment_v_"};
    PetscCall(bo_rbgs_register());
    for (int k = 0; k < 2; k++) {
      KSP ksp;
      PetscCall(KSPCreate(job->comm, &ksp));
      PetscCall(KSPSetOptionsPrefix(ksp, prefixes[k]));
      PetscCall(KSPSetFromOptions(ksp));
      PetscCall(KSPDestroy(&ksp));
    }
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode check_options(bo_job *job, segment_params *p)
{
  int k;

  PetscFunctionBeginUser;
  for (k = 0; k < BO_NINNER; k++)
    if (!strcmp(p->inner, bo_inner_names[k])) break;
  PetscCheck(k < BO_NINNER, job->comm, BO_ERR_INPUT, "option -segment_inner: '%s'; expected exact, cg, rbgs, jacobi, mg, ssor or fft", p->inner);
  PetscCheck(p->alpha > 0, job->comm, BO_ERR_INPUT, "option -segment_alpha: %g; expected alpha > 0", (double)p->alpha);
  PetscCheck(p->lambda > 0, job->comm, BO_ERR_INPUT, "option -segment_lambda: %g; expected lambda > 0", (double)p->lambda);
  PetscCheck(p->epsilon > 0, job->comm, BO_ERR_INPUT, "option -segment_epsilon: %g; expected epsilon > 0", (double)p->epsilon);
  PetscCheck(p->epsilon_final > 0 && p->epsilon_final <= p->epsilon, job->comm, BO_ERR_INPUT, "option -segment_epsilon_final: %g with epsilon %g; expected 0 < epsilon_final <= epsilon", (double)p->epsilon_final, (double)p->epsilon);
  PetscCheck(p->mu >= 0, job->comm, BO_ERR_INPUT, "option -segment_mu: %g; expected mu >= 0", (double)p->mu);
  PetscCheck(p->sweeps >= 1, job->comm, BO_ERR_INPUT, "option -segment_sweeps: %d; expected sweeps >= 1", (int)p->sweeps);
  PetscCheck(p->omega > 0 && p->omega < 2, job->comm, BO_ERR_INPUT, "option -segment_omega: %g; expected 0 < omega < 2", (double)p->omega);
  PetscCheck(p->max_it >= 1, job->comm, BO_ERR_INPUT, "option -segment_max_it: %d; expected at least 1 outer iteration per eps", (int)p->max_it);
  PetscCheck(p->tol >= 0, job->comm, BO_ERR_INPUT, "option -segment_tol: %g; expected tol >= 0", (double)p->tol);
  p->at.alpha        = p->alpha;
  p->at.lambda       = p->lambda;
  p->at.mu           = p->mu;
  p->at.inner.type   = (bo_inner_type)k;
  p->at.inner.sweeps = p->sweeps;
  p->at.inner.omega  = p->omega;
  PetscFunctionReturn(0);
}

/* eps_0 = epsilon, eps_{k+1} = eps_k / 2, while eps_k >= epsilon_final (up to rounding). */
static int stage_count(const segment_params *p)
{
  int    n = 0;
  double e = p->epsilon;
  for (; e >= p->epsilon_final * (1 - 1e-12) && n < 60; e /= 2) n++;
  return n;
}

typedef struct {
  int      n;
  double  *energy, *before, *eps;
  int64_t *inner_its;
} segment_trace;

static PetscErrorCode write_results(bo_job *job, const segment_params *p, const bo_image *in, const double *u, const double *v, const segment_trace *tr, bo_results *res)
{
  hsize_t dims[3] = {(hsize_t)in->h, (hsize_t)in->w, (hsize_t)in->c}, n = (hsize_t)tr->n;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_write_array(res->file, "/u", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, in->c == 1 ? 2 : 3, dims, u));
  PetscCall(bo_h5_write_array(res->file, "/v", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, in->c == 1 ? 2 : 3, dims, v));
  PetscCall(bo_h5_write_array(res->file, "/energy", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &n, tr->energy));
  PetscCall(bo_h5_write_array(res->file, "/energy_before", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &n, tr->before));
  PetscCall(bo_h5_write_array(res->file, "/epsilon", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &n, tr->eps));
  PetscCall(bo_h5_write_array(res->file, "/inner_iterations", H5T_NATIVE_INT64, H5T_STD_I64LE, 1, &n, tr->inner_its));
  PetscCall(bo_h5_attr_write_string(res->file, "/", "source", job->input));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "alpha", p->alpha));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "lambda", p->lambda));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "epsilon", p->epsilon));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "epsilon_final", p->epsilon_final));
  PetscCall(bo_h5_attr_write_double(res->file, "/", "mu", p->mu));
  PetscCall(bo_h5_attr_write_string(res->file, "/", "inner", p->inner));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "sweeps", p->sweeps));
  PetscCall(bo_h5_attr_write_int64(res->file, "/", "iterations", tr->n));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_segment(bo_job *job)
{
  segment_params p = {0};
  bo_results     res;
  bo_image       input, out = {0}, edges = {0};
  bo_grid        grid;
  bo_at         *at;
  Vec           *g, *u, *v;
  segment_trace  tr = {0};
  bo_png_staged  pu, pv;
  char           path[PETSC_MAX_PATH_LEN];
  PetscBool      stop, invariant = PETSC_TRUE, checked = PETSC_FALSE;
  int            nc, nstages, cap;
  double         eps;

  PetscFunctionBeginUser;
  PetscCall(read_options(job, &p));
  if (job->help) {
    PetscCall(bo_job_setup_done(job, &stop));
    PetscFunctionReturn(0);
  }
  PetscCall(bo_job_require(job, "input", job->input, "an image (PNG, or HDF5 with /image)"));
  PetscCall(bo_job_require(job, "output", job->output, "the results file to write"));
  PetscCall(check_options(job, &p));
  PetscCall(bo_results_create(job, job->output, &res));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(bo_image_read(job->comm, job->input, &input));
  PetscCheck(input.h >= 3 && input.w >= 3, job->comm, BO_ERR_INPUT, "%s: image of %lld x %lld pixels; expected at least 3 x 3", job->input, (long long)input.h, (long long)input.w);
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  nc      = input.c;
  nstages = stage_count(&p);
  cap     = nstages * (int)p.max_it;
  PetscCall(bo_grid_create(job->comm, input.h, input.w, 0, &grid));
  PetscCall(PetscMalloc4(nc, &at, nc, &g, nc, &u, nc, &v));
  PetscCall(PetscMalloc4(cap, &tr.energy, cap, &tr.before, cap, &tr.eps, cap, &tr.inner_its));
  for (int c = 0; c < nc; c++) {
    KSP    ku, kv;
    double e0;
    PetscCall(bo_at_create(&grid, &p.at, "segment_u_", "segment_v_", &at[c]));
    PetscCall(bo_at_ksps(at[c], &ku, &kv));
    PetscCall(KSPSetFromOptions(ku));
    PetscCall(KSPSetFromOptions(kv));
    PetscCall(DMCreateGlobalVector(grid.da, &g[c]));
    PetscCall(VecDuplicate(g[c], &u[c]));
    PetscCall(VecDuplicate(g[c], &v[c]));
    PetscCall(bo_grid_set_image(&grid, input.data, nc, c, g[c]));
    PetscCall(bo_at_start(at[c], g[c], u[c], v[c], p.epsilon, &e0));
  }
  eps = p.epsilon;
  for (int s = 0; s < nstages; s++, eps /= 2) {
    double before = 0;
    for (int c = 0; c < nc; c++) {
      double e;
      PetscCall(bo_at_set_epsilon(at[c], eps, &e));
      before += e;
    }
    for (int k = 0; k < p.max_it; k++) {
      double e = 0, dv = 0;
      tr.inner_its[tr.n] = 0;
      for (int c = 0; c < nc; c++) {
        double   ec, dvc;
        PetscInt its;
        PetscCall(bo_at_step(at[c], &ec, &its, &dvc));
        e += ec;
        dv = PetscMax(dv, dvc);
        tr.inner_its[tr.n] += its;
      }
      if (!checked) PetscCall(bo_job_setup_done(job, &stop)); /* after the KSPs' first setup */
      checked          = PETSC_TRUE;
      tr.energy[tr.n]  = e;
      tr.before[tr.n]  = before;
      tr.eps[tr.n]     = eps;
      if (p.monitor) PetscCall(PetscPrintf(job->comm, "  segment %4d  eps %.4g  energy %.12e  max|dv| %.3e  inner_its %lld\n", tr.n + 1, eps, e, dv, (long long)tr.inner_its[tr.n]));
      tr.n++;
      before = e;
      if (dv < p.tol) break;
    }
  }
  out   = input;
  edges = input;
  PetscCall(PetscMalloc2((size_t)(input.h * input.w * nc), &out.data, (size_t)(input.h * input.w * nc), &edges.data));
  for (int c = 0; c < nc; c++) {
    PetscBool inv;
    PetscCall(bo_grid_get_image(&grid, u[c], out.data, nc, c));
    PetscCall(bo_grid_get_image(&grid, v[c], edges.data, nc, c));
    PetscCall(bo_at_rank_invariant(at[c], &inv));
    invariant = invariant && inv;
  }
  res.rank_invariant = invariant;
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
  PetscCall(write_results(job, &p, &input, out.data, edges.data, &tr, &res));
  bo_image_sibling_path(job->output, "u", path, sizeof path);
  PetscCall(bo_image_png_stage(job->comm, path, &out, input.bit_depth, &pu));
  bo_image_sibling_path(job->output, "v", path, sizeof path);
  PetscCall(bo_image_png_stage(job->comm, path, &edges, input.bit_depth, &pv));
  PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
  PetscCall(bo_results_commit(&res, job));
  PetscCall(bo_image_png_publish(job->comm, &pu));
  PetscCall(bo_image_png_publish(job->comm, &pv));
  PetscCall(PetscPrintf(job->comm, "segment: %s %s: %d iterations over %d eps stages, energy %.10g, %.4g s per outer iteration\n", job->output, p.inner, tr.n, nstages, tr.n ? tr.energy[tr.n - 1] : 0.0, tr.n ? job->timings[BO_PHASE_COMPUTE] / tr.n : 0.0));

  for (int c = 0; c < nc; c++) {
    PetscCall(bo_at_destroy(&at[c]));
    PetscCall(VecDestroy(&g[c]));
    PetscCall(VecDestroy(&u[c]));
    PetscCall(VecDestroy(&v[c]));
  }
  PetscCall(PetscFree4(at, g, u, v));
  PetscCall(PetscFree4(tr.energy, tr.before, tr.eps, tr.inner_its));
  PetscCall(PetscFree2(out.data, edges.data));
  PetscCall(bo_grid_destroy(&grid));
  PetscCall(bo_image_destroy(&input));
  PetscFunctionReturn(0);
}
