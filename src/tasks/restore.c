/* restore.c - task `restore`: half-quadratic denoising and deblurring (solvers/hq.c).
 *
 *   task: restore
 *   input: jobs/data/camera.png
 *   output: camera-gm.h5
 *   seed: 42
 *   restore: {potential: gm, lambda: 0.02, delta: 0.1, degrade: true, noise_sigma: 0.1, inner: rbgs}
 *
 * Reads the image (PNG 8/16-bit grey or RGB, or HDF5 /image), optionally degrades it (blur by
 * blur_sigma with the boundary rule, then Gaussian noise of noise_sigma from the counter-based
 * stream (seed, pixel id), so the observed image does not depend on the number of ranks) and keeps
 * the input as the clean reference; otherwise the input is the observed image, blur_sigma its
 * known blur, and `clean` an optional reference.  Each channel is restored on its own, all
 * channels in lockstep: one outer iteration of each per step; the job stops when the summed
 * energy changes by at most tol (relative) or after max_it steps.
 * Results: /u (H x W [x 3] float64 in the input's [0,1] scale), /energy (the summed energy of
 * x^0 first, then after every outer iteration), /inner_iterations (per outer iteration, summed
 * over channels), attributes psnr and ssim (and psnr_observed) with a clean reference, the
 * parameters, and the PNG copy <output>-u.png.  -restore_monitor prints one line per iteration.
 * The inner solver is the KSP with prefix restore_u_ (-restore_u_ksp_view, -restore_u_pc_type ...).
 */
#include "boundopt/blur.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/hq.h"
#include "boundopt/image.h"
#include "boundopt/metrics.h"
#include "boundopt/results.h"
#include "boundopt/rbgs.h"
#include "boundopt/rng.h"
#include "boundopt/tasks.h"
#include <math.h>
#include <string.h>

#define RNG_PURPOSE_DEGRADE 0x696d6731u /* "img1": the noise of `degrade` */
#define KSP_PREFIX          "restore_u_"

typedef struct {
  char      potential[16], boundary[16], inner[16], clean[PETSC_MAX_PATH_LEN];
  PetscReal lambda, delta, mu, blur_sigma, noise_sigma, omega, tol;
  PetscInt  sweeps, max_it;
  PetscBool degrade, monitor;
  bo_hq_opts  hq;
  bo_boundary bnd;
} restore_params;

static PetscErrorCode read_options(bo_job *job, restore_params *p)
{
  PetscFunctionBeginUser;
  snprintf(p->potential, sizeof p->potential, "gm");
  snprintf(p->boundary, sizeof p->boundary, "reflect");
  snprintf(p->inner, sizeof p->inner, "rbgs");
  p->lambda = 0.02, p->delta = 0.1, p->mu = 0, p->omega = 1, p->tol = 1e-6, p->sweeps = 1, p->max_it = 100;
  PetscOptionsBegin(job->comm, "restore_", "Task restore: half-quadratic denoising / deblurring", "boundopt");
  PetscCall(PetscOptionsString("-potential", "tq-mult (truncated quadratic, Geman-Reynolds), tq-add (Geman-Yang), gm (Geman-McClure) or hl (Hebert-Leahy)", "", p->potential, p->potential, sizeof p->potential, NULL));
  PetscCall(PetscOptionsReal("-lambda", "Height of the potential: tq lambda min(t^2/delta^2,1), gm lambda t^2/(delta^2+t^2), hl lambda log(1+t^2/delta^2)", "", p->lambda, &p->lambda, NULL));
  PetscCall(PetscOptionsReal("-delta", "Scale of the potential (gradient magnitude of an edge)", "", p->delta, &p->delta, NULL));
  PetscCall(PetscOptionsReal("-mu", "Proximal weight: (mu/2)||x - x^k||^2 in every x-step", "", p->mu, &p->mu, NULL));
  PetscCall(PetscOptionsReal("-blur_sigma", "Gaussian blur width of K (0: denoising); the known blur of the input, or the one applied with -restore_degrade", "", p->blur_sigma, &p->blur_sigma, NULL));
  PetscCall(PetscOptionsReal("-noise_sigma", "With -restore_degrade: standard deviation of the added Gaussian noise", "", p->noise_sigma, &p->noise_sigma, NULL));
  PetscCall(PetscOptionsBool("-degrade", "Degrade the input (blur, then noise from -seed) and use it as the clean reference", "", p->degrade, &p->degrade, NULL));
  PetscCall(PetscOptionsString("-boundary", "Blur boundary rule: replicate or reflect (half-sample symmetric)", "", p->boundary, p->boundary, sizeof p->boundary, NULL));
  PetscCall(PetscOptionsString("-clean", "Clean reference image (PNG or HDF5) for psnr/ssim when not degrading", "", p->clean, p->clean, sizeof p->clean, NULL));
  PetscCall(PetscOptionsString("-inner", "Inner solver of the x-step: exact (CG+BoomerAMG, rtol 1e-12; -restore_u_pc_type gamg, or -restore_u_ksp_type preonly -restore_u_pc_type cholesky -restore_u_pc_factor_mat_solver_type mumps for small images), cg (CG, rtol 0.1, <= 10 its), rbgs (red-black SGS shell PC, rank-count independent), jacobi (M = 2D), mg (symmetric V-cycle), "
                                         "ssor (PCSOR; true SSOR, so feasible, at 1 rank only: block-Jacobi SSOR at more ranks), fft (DCT majorant; needs boundary reflect with a blur). The KSP is restore_u_: -restore_u_ksp_type, -restore_u_pc_type ... override it",
                               "", p->inner, p->inner, sizeof p->inner, NULL));
  PetscCall(PetscOptionsInt("-sweeps", "Preconditioned iterations per x-step for rbgs, jacobi, mg, ssor, fft (from the previous iterate, no convergence test)", "", p->sweeps, &p->sweeps, NULL));
  PetscCall(PetscOptionsReal("-omega", "SSOR relaxation factor in (0, 2)", "", p->omega, &p->omega, NULL));
  PetscCall(PetscOptionsInt("-max_it", "Outer iterations at most", "", p->max_it, &p->max_it, NULL));
  PetscCall(PetscOptionsReal("-tol", "Outer stop: |E - E_old| <= tol |E_old| (0: run max_it)", "", p->tol, &p->tol, NULL));
  PetscCall(PetscOptionsName("-monitor", "Print the energy (and PSNR with a reference) every outer iteration", "", &p->monitor));
  PetscOptionsEnd();
  if (job->help) { /* list the inner KSP's options too */
    KSP ksp;
    PetscCall(bo_rbgs_register());
    PetscCall(KSPCreate(job->comm, &ksp));
    PetscCall(KSPSetOptionsPrefix(ksp, KSP_PREFIX));
    PetscCall(KSPSetFromOptions(ksp));
    PetscCall(KSPDestroy(&ksp));
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode check_options(bo_job *job, restore_params *p)
{
  int k;

  PetscFunctionBeginUser;
  for (k = 0; k < BO_HQ_NPOTENTIALS; k++)
    if (!strcmp(p->potential, bo_hq_potential_names[k])) break;
  PetscCheck(k < BO_HQ_NPOTENTIALS, job->comm, BO_ERR_INPUT, "option -restore_potential: '%s'; expected tq-mult, tq-add, gm or hl", p->potential);
  p->hq.potential = (bo_hq_potential)k;
  for (k = 0; k < BO_NINNER; k++)
    if (!strcmp(p->inner, bo_inner_names[k])) break;
  PetscCheck(k < BO_NINNER, job->comm, BO_ERR_INPUT, "option -restore_inner: '%s'; expected exact, cg, rbgs, jacobi, mg, ssor or fft", p->inner);
  p->hq.inner.type = (bo_inner_type)k;
  PetscCheck(!strcmp(p->boundary, "replicate") || !strcmp(p->boundary, "reflect"), job->comm, BO_ERR_INPUT, "option -restore_boundary: '%s'; expected replicate or reflect", p->boundary);
  p->bnd = strcmp(p->boundary, "reflect") ? BO_BOUNDARY_REPLICATE : BO_BOUNDARY_REFLECT;
  PetscCheck(p->lambda > 0, job->comm, BO_ERR_INPUT, "option -restore_lambda: %g; expected lambda > 0", (double)p->lambda);
  PetscCheck(p->delta > 0, job->comm, BO_ERR_INPUT, "option -restore_delta: %g; expected delta > 0", (double)p->delta);
  PetscCheck(p->mu >= 0, job->comm, BO_ERR_INPUT, "option -restore_mu: %g; expected mu >= 0", (double)p->mu);
  PetscCheck(p->blur_sigma >= 0, job->comm, BO_ERR_INPUT, "option -restore_blur_sigma: %g; expected sigma >= 0 (0: no blur)", (double)p->blur_sigma);
  PetscCheck(p->noise_sigma >= 0, job->comm, BO_ERR_INPUT, "option -restore_noise_sigma: %g; expected sigma >= 0", (double)p->noise_sigma);
  PetscCheck(p->sweeps >= 1, job->comm, BO_ERR_INPUT, "option -restore_sweeps: %d; expected sweeps >= 1", (int)p->sweeps);
  PetscCheck(p->omega > 0 && p->omega < 2, job->comm, BO_ERR_INPUT, "option -restore_omega: %g; expected 0 < omega < 2", (double)p->omega);
  PetscCheck(p->max_it >= 1, job->comm, BO_ERR_INPUT, "option -restore_max_it: %d; expected at least 1 outer iteration", (int)p->max_it);
  PetscCheck(p->tol >= 0, job->comm, BO_ERR_INPUT, "option -restore_tol: %g; expected tol >= 0", (double)p->tol);
  PetscCheck(!(p->hq.inner.type == BO_INNER_FFT && p->blur_sigma > 0 && p->bnd == BO_BOUNDARY_REPLICATE), job->comm, BO_ERR_INPUT, "option -restore_inner: fft with boundary replicate; expected boundary reflect (the DCT diagonalises only the reflect-boundary blur), or inner mg");
  PetscCheck(!(p->blur_sigma > 0 && (p->hq.inner.type == BO_INNER_RBGS || p->hq.inner.type == BO_INNER_JACOBI || p->hq.inner.type == BO_INNER_SSOR)), job->comm, BO_ERR_INPUT, "option -restore_inner: %s with a blur; expected fft, mg, cg or exact (K^T K is matrix-free, not a 5-point stencil)", p->inner);
  p->hq.lambda       = p->lambda;
  p->hq.delta        = p->delta;
  p->hq.mu           = p->mu;
  p->hq.inner.sweeps = p->sweeps;
  p->hq.inner.omega  = p->omega;
  PetscFunctionReturn(0);
}

static PetscErrorCode check_image(bo_job *job, const char *path, const bo_image *img, const bo_image *like)
{
  PetscFunctionBeginUser;
  PetscCheck(img->h >= 3 && img->w >= 3, job->comm, BO_ERR_INPUT, "%s: image of %lld x %lld pixels; expected at least 3 x 3", path, (long long)img->h, (long long)img->w);
  if (like) PetscCheck(img->h == like->h && img->w == like->w && img->c == like->c, job->comm, BO_ERR_INPUT, "%s: %lld x %lld x %d; expected the input's size %lld x %lld x %d", path, (long long)img->h, (long long)img->w, img->c, (long long)like->h, (long long)like->w, like->c);
  PetscFunctionReturn(0);
}

/* observed = K clean + noise_sigma N(0,1), the normal of sample k from stream (seed, k). */
static PetscErrorCode degrade(bo_job *job, const restore_params *p, const bo_blur *blur, const bo_image *clean, bo_image *obs)
{
  const int64_t n = clean->h * clean->w;
  double       *plane, *tmp, *out;

  PetscFunctionBeginUser;
  *obs = *clean;
  PetscCall(PetscMalloc1((size_t)(n * clean->c), &obs->data));
  PetscCall(PetscMalloc3(n, &plane, n, &tmp, n, &out));
  for (int c = 0; c < clean->c; c++) {
    for (int64_t k = 0; k < n; k++) plane[k] = clean->data[k * clean->c + c];
    if (blur) bo_blur_apply_image(blur, PETSC_FALSE, plane, tmp, out);
    else memcpy(out, plane, sizeof(double) * (size_t)n);
    for (int64_t k = 0; k < n; k++) {
      bo_rng r;
      bo_rng_init(&r, (uint64_t)job->seed, (uint64_t)(k * clean->c + c), RNG_PURPOSE_DEGRADE);
      obs->data[k * clean->c + c] = out[k] + (p->noise_sigma > 0 ? p->noise_sigma * bo_rng_normal(&r) : 0.0);
    }
  }
  PetscCall(PetscFree3(plane, tmp, out));
  PetscFunctionReturn(0);
}

/* psnr and ssim of a full image (valid on rank 0) against the reference, broadcast. */
static PetscErrorCode quality(bo_job *job, const bo_image *ref, const double *img, double *psnr, double *ssim)
{
  double q[2] = {0, NAN};

  PetscFunctionBeginUser;
  if (!job->rank) {
    PetscCall(bo_metrics_psnr(ref->h, ref->w, ref->c, img, ref->data, 1.0, &q[0]));
    if (ref->h >= 11 && ref->w >= 11) PetscCall(bo_metrics_ssim(ref->h, ref->w, ref->c, img, ref->data, 1.0, &q[1]));
  }
  PetscCallMPI(MPI_Bcast(q, 2, MPI_DOUBLE, 0, job->comm));
  *psnr = q[0];
  if (ssim) *ssim = q[1];
  PetscFunctionReturn(0);
}

typedef struct {
  int       n;          /* outer iterations done */
  double   *energy;     /* max_it + 1 */
  int64_t  *inner_its;  /* max_it */
  PetscBool converged;
} restore_trace;

PetscErrorCode bo_task_restore(bo_job *job)
{
  restore_params p = {0};
  bo_results     res;
  bo_image       input, cleanimg = {0}, obs, result = {0};
  const bo_image *ref = NULL;
  bo_blur        blur, *K = NULL;
  bo_grid        grid;
  bo_hq         *hq;
  Vec           *f, *x;
  restore_trace  tr = {0};
  double         psnr = NAN, ssim = NAN, psnr_obs = NAN;
  bo_png_staged  png;
  char           pngpath[PETSC_MAX_PATH_LEN];
  PetscBool      stop, invariant = PETSC_TRUE;
  int            nc;

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
  PetscCall(check_image(job, job->input, &input, NULL));
  if (!p.degrade && p.clean[0]) {
    PetscCall(bo_image_read(job->comm, p.clean, &cleanimg));
    PetscCall(check_image(job, p.clean, &cleanimg, &input));
    ref = &cleanimg;
  }
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  nc = input.c;
  if (p.blur_sigma > 0) {
    int r = bo_blur_radius(p.blur_sigma);
    PetscCheck(r < input.h && r < input.w, job->comm, BO_ERR_INPUT, "option -restore_blur_sigma: %g needs a %d-pixel margin on a %lld x %lld image; expected a smaller sigma (radius ceil(3 sigma) < the image's sides)", (double)p.blur_sigma, r, (long long)input.h, (long long)input.w);
    PetscCall(bo_blur_create(input.h, input.w, p.blur_sigma, p.bnd, &blur));
    K = &blur;
  }
  if (p.degrade) {
    PetscCall(degrade(job, &p, K, &input, &obs));
    ref = &input;
  } else obs = input;
  if (ref) PetscCall(quality(job, ref, obs.data, &psnr_obs, NULL));
  PetscCall(bo_grid_create(job->comm, input.h, input.w, K ? K->r : 0, &grid));
  PetscCall(PetscMalloc3(nc, &hq, nc, &f, nc, &x));
  PetscCall(PetscMalloc2(p.max_it + 1, &tr.energy, p.max_it, &tr.inner_its));
  tr.energy[0] = 0;
  for (int c = 0; c < nc; c++) {
    double e0;
    PetscCall(bo_hq_create(&grid, K, &p.hq, KSP_PREFIX, &hq[c]));
    PetscCall(KSPSetFromOptions(bo_hq_ksp(hq[c])));
    PetscCall(DMCreateGlobalVector(grid.da, &f[c]));
    PetscCall(VecDuplicate(f[c], &x[c]));
    PetscCall(bo_grid_set_image(&grid, obs.data, nc, c, f[c]));
    PetscCall(bo_hq_start(hq[c], f[c], x[c], &e0));
    tr.energy[0] += e0;
  }
  result = input;
  PetscCall(PetscMalloc1((size_t)(input.h * input.w * nc), &result.data));
  for (tr.n = 0; tr.n < p.max_it && !tr.converged;) {
    double e = 0, rel;
    tr.inner_its[tr.n] = 0;
    for (int c = 0; c < nc; c++) {
      double   ec;
      PetscInt its;
      PetscCall(bo_hq_step(hq[c], &ec, &its));
      e += ec;
      tr.inner_its[tr.n] += its;
    }
    /* PETSc reads some inner options (multigrid levels, ...) only at the first setup */
    if (!tr.n) PetscCall(bo_job_setup_done(job, &stop));
    tr.energy[++tr.n] = e;
    rel          = fabs(e - tr.energy[tr.n - 1]) / PetscMax(fabs(tr.energy[tr.n - 1]), 1e-300);
    tr.converged = rel <= p.tol ? PETSC_TRUE : PETSC_FALSE;
    if (p.monitor) {
      char q[64] = "";
      if (ref) {
        for (int c = 0; c < nc; c++) PetscCall(bo_grid_get_image(&grid, x[c], result.data, nc, c));
        PetscCall(quality(job, ref, result.data, &psnr, NULL));
        snprintf(q, sizeof q, "  psnr %.3f", psnr);
      }
      PetscCall(PetscPrintf(job->comm, "  restore %4d  energy %.12e  rel_change %.3e  inner_its %4lld%s\n", tr.n, e, rel, (long long)tr.inner_its[tr.n - 1], q));
    }
  }
  for (int c = 0; c < nc; c++) {
    PetscBool inv;
    PetscCall(bo_grid_get_image(&grid, x[c], result.data, nc, c));
    PetscCall(bo_hq_rank_invariant(hq[c], &inv));
    invariant = invariant && inv;
  }
  res.rank_invariant = invariant;
  if (ref) PetscCall(quality(job, ref, result.data, &psnr, &ssim));
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
  {
    hsize_t dims[3] = {(hsize_t)input.h, (hsize_t)input.w, (hsize_t)nc};
    hsize_t ne      = (hsize_t)tr.n + 1, ni = (hsize_t)tr.n;
    PetscCall(bo_h5_write_array(res.file, "/u", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, nc == 1 ? 2 : 3, dims, result.data));
    PetscCall(bo_h5_write_array(res.file, "/energy", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &ne, tr.energy));
    PetscCall(bo_h5_write_array(res.file, "/inner_iterations", H5T_NATIVE_INT64, H5T_STD_I64LE, 1, &ni, tr.inner_its));
  }
  PetscCall(bo_h5_attr_write_string(res.file, "/", "source", job->input));
  PetscCall(bo_h5_attr_write_string(res.file, "/", "potential", p.potential));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "lambda", p.lambda));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "delta", p.delta));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "mu", p.mu));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "blur_sigma", p.blur_sigma));
  PetscCall(bo_h5_attr_write_string(res.file, "/", "boundary", p.boundary));
  PetscCall(bo_h5_attr_write_string(res.file, "/", "inner", p.inner));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "sweeps", p.sweeps));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "iterations", tr.n));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "converged", tr.converged));
  if (p.degrade) {
    PetscCall(bo_h5_attr_write_double(res.file, "/", "noise_sigma", p.noise_sigma));
    PetscCall(bo_h5_attr_write_int64(res.file, "/", "seed", job->seed));
  }
  if (ref) {
    PetscCall(bo_h5_attr_write_double(res.file, "/", "psnr", psnr));
    PetscCall(bo_h5_attr_write_double(res.file, "/", "psnr_observed", psnr_obs));
    if (!isnan(ssim)) PetscCall(bo_h5_attr_write_double(res.file, "/", "ssim", ssim));
  }
  bo_image_sibling_path(job->output, "u", pngpath, sizeof pngpath);
  PetscCall(bo_image_png_stage(job->comm, pngpath, &result, input.bit_depth, &png));
  PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
  PetscCall(bo_results_commit(&res, job));
  PetscCall(bo_image_png_publish(job->comm, &png));
  {
    double per = tr.n ? job->timings[BO_PHASE_COMPUTE] / tr.n : 0;
    char   q[96] = "";
    if (ref) snprintf(q, sizeof q, ", PSNR %.3f dB (observed %.3f), SSIM %.4f", psnr, psnr_obs, ssim);
    PetscCall(PetscPrintf(job->comm, "restore: %s %s/%s: %d iterations%s, energy %.10g%s, %.4g s per outer iteration\n", job->output, p.potential, p.inner, tr.n, tr.converged ? " (converged)" : "", tr.energy[tr.n], q, per));
  }

  for (int c = 0; c < nc; c++) {
    PetscCall(bo_hq_destroy(&hq[c]));
    PetscCall(VecDestroy(&f[c]));
    PetscCall(VecDestroy(&x[c]));
  }
  PetscCall(PetscFree3(hq, f, x));
  PetscCall(PetscFree2(tr.energy, tr.inner_its));
  PetscCall(bo_grid_destroy(&grid));
  if (K) PetscCall(bo_blur_destroy(K));
  if (p.degrade) PetscCall(PetscFree(obs.data));
  PetscCall(PetscFree(result.data));
  PetscCall(bo_image_destroy(&cleanimg));
  PetscCall(bo_image_destroy(&input));
  PetscFunctionReturn(0);
}
