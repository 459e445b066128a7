/* test_hq.c - properties of half-quadratic restoration (hq.h) and its parts: the potentials'
 * half-quadratic majorants, the blur and its adjoint, the feasibility of every fixed-sweep inner
 * solver (dense M - T on a 12 x 12 grid), energy descent for every (potential, inner) pair, and
 * agreement of many sweeps with exact alternating minimization.  Also PSNR and SSIM. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boundopt/blur.h"
#include "boundopt/hq.h"
#include "boundopt/metrics.h"
#include "boundopt/rng.h"
#include <petscblaslapack.h>

#define PROPERTY(name, fn) {name, fn, NULL, NULL, NULL}
#define OK(call)           assert_int_equal((call), 0)

/* ---------------------------------------------------------------- fixtures */

/* A disk and a bar (0.2 / 0.8 on 0.5) plus N(0, noise^2), h x w, blurred first when K is given. */
static double *noisy_image(int64_t h, int64_t w, double noise, const bo_blur *K, double **clean_out)
{
  double *clean = malloc(sizeof(double) * (size_t)(h * w)), *f = malloc(sizeof(double) * (size_t)(h * w)), *tmp = malloc(sizeof(double) * (size_t)(h * w));
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      double dx = x - 0.4 * w, dy = y - 0.45 * h;
      clean[y * w + x] = dx * dx + dy * dy < 0.09 * h * w ? 0.8 : (x > 0.7 * w && y > 0.2 * h && y < 0.8 * h ? 0.2 : 0.5);
    }
  if (K) bo_blur_apply_image(K, PETSC_FALSE, clean, tmp, f);
  else memcpy(f, clean, sizeof(double) * (size_t)(h * w));
  for (int64_t k = 0; k < h * w; k++) {
    bo_rng r;
    bo_rng_init(&r, 7, (uint64_t)k, 3);
    f[k] += noise * bo_rng_normal(&r);
  }
  free(tmp);
  if (clean_out) *clean_out = clean;
  else free(clean);
  return f;
}

typedef struct {
  bo_grid  g;
  bo_blur  K;
  PetscBool blurred;
  bo_hq    hq;
  Vec      f, x;
  double  *img;
} hq_run;

static void hq_run_start(hq_run *r, int64_t h, int64_t w, double blur_sigma, const bo_hq_opts *o, double *e0)
{
  memset(r, 0, sizeof *r);
  if (blur_sigma > 0) {
    OK(bo_blur_create(h, w, blur_sigma, BO_BOUNDARY_REFLECT, &r->K));
    r->blurred = PETSC_TRUE;
  }
  r->img = noisy_image(h, w, 0.05, r->blurred ? &r->K : NULL, NULL);
  OK(bo_grid_create(PETSC_COMM_WORLD, h, w, r->blurred ? r->K.r : 0, &r->g));
  OK(bo_hq_create(&r->g, r->blurred ? &r->K : NULL, o, "test_", &r->hq));
  OK(DMCreateGlobalVector(r->g.da, &r->f));
  OK(VecDuplicate(r->f, &r->x));
  OK(bo_grid_set_image(&r->g, r->img, 1, 0, r->f));
  OK(bo_hq_start(r->hq, r->f, r->x, e0));
}

static void hq_run_end(hq_run *r)
{
  OK(bo_hq_destroy(&r->hq));
  OK(VecDestroy(&r->f));
  OK(VecDestroy(&r->x));
  OK(bo_grid_destroy(&r->g));
  if (r->blurred) OK(bo_blur_destroy(&r->K));
  free(r->img);
}

static bo_hq_opts opts(bo_hq_potential p, bo_inner_type t, PetscInt sweeps)
{
  bo_hq_opts o = {.potential = p, .lambda = 0.01, .delta = 0.1, .mu = 0, .inner = {.type = t, .sweeps = sweeps, .omega = 1.0}};
  return o;
}

/* ---------------------------------------------------------------- potentials */

static void weight_quadratic_majorizes_every_potential(void **state)
{
  (void)state;
  for (int p = 0; p < BO_HQ_NPOTENTIALS; p++)
    for (int a = 0; a <= 60; a++)
      for (int b = 0; b <= 60; b++) {
        double s0 = 0.0004 * a * a, s = 0.0004 * b * b; /* t^2 on [0, 1.44] */
        double w = bo_hq_weight((bo_hq_potential)p, 0.03, 0.1, s0);
        double bound = bo_hq_phi((bo_hq_potential)p, 0.03, 0.1, s0) + 0.5 * w * (s - s0);
        assert_true(bo_hq_phi((bo_hq_potential)p, 0.03, 0.1, s) <= bound + 1e-15);
      }
}

static void weight_is_twice_the_derivative_in_t_squared(void **state)
{
  (void)state;
  for (int p = BO_HQ_GM; p <= BO_HQ_HL; p++)
    for (int a = 1; a < 50; a++) {
      double s = 0.001 * a, h = 1e-7;
      double d = (bo_hq_phi((bo_hq_potential)p, 0.02, 0.1, s + h) - bo_hq_phi((bo_hq_potential)p, 0.02, 0.1, s - h)) / (2 * h);
      assert_true(fabs(bo_hq_weight((bo_hq_potential)p, 0.02, 0.1, s) - 2 * d) < 1e-5 * fabs(2 * d) + 1e-9);
    }
}

static void additive_truncated_quadratic_is_exact(void **state)
{
  const double lambda = 0.03, delta = 0.1, beta = 2 * lambda / (delta * delta);
  (void)state;
  for (int a = 0; a <= 100; a++) {
    double t2 = 0.0003 * a, kept = lambda, cut = 0.5 * beta * t2; /* w = g or w = 0 */
    double w_rule = t2 > delta * delta ? kept : cut;               /* the solver's threshold */
    assert_true(fabs(PetscMin(kept, cut) - bo_hq_phi(BO_HQ_TQ_ADD, lambda, delta, t2)) < 1e-15);
    assert_true(fabs(w_rule - bo_hq_phi(BO_HQ_TQ_ADD, lambda, delta, t2)) < 1e-15);
  }
}

/* ---------------------------------------------------------------- blur */

static void blur_transpose_is_the_adjoint(void **state)
{
  const int64_t h = 13, w = 17;
  double        x[13 * 17], y[13 * 17], kx[13 * 17], kty[13 * 17], tmp[13 * 17];
  (void)state;
  for (int rule = 0; rule < 2; rule++) {
    bo_blur K;
    double  a = 0, b = 0;
    bo_rng  r;
    OK(bo_blur_create(h, w, 1.5, (bo_boundary)rule, &K));
    bo_rng_init(&r, 1, 2, 3);
    for (int k = 0; k < h * w; k++) x[k] = bo_rng_normal(&r), y[k] = bo_rng_normal(&r);
    bo_blur_apply_image(&K, PETSC_FALSE, x, tmp, kx);
    bo_blur_apply_image(&K, PETSC_TRUE, y, tmp, kty);
    for (int k = 0; k < h * w; k++) a += kx[k] * y[k], b += x[k] * kty[k];
    assert_true(fabs(a - b) < 1e-12 * (fabs(a) + 1));
    /* rows sum to 1: constants are kept */
    for (int k = 0; k < h * w; k++) x[k] = 0.7;
    bo_blur_apply_image(&K, PETSC_FALSE, x, tmp, kx);
    for (int k = 0; k < h * w; k++) assert_true(fabs(kx[k] - 0.7) < 1e-14);
    OK(bo_blur_destroy(&K));
  }
}

static void reflect_blur_is_diagonalised_by_the_dct(void **state)
{
  const int64_t h = 12, w = 15;
  double        v[12 * 15], kv[12 * 15], tmp[12 * 15], ex[15], ey[12];
  bo_blur       K;
  (void)state;
  OK(bo_blur_create(h, w, 2.0, BO_BOUNDARY_REFLECT, &K));
  bo_blur_dct_eigs(&K, ex, ey);
  for (int l = 0; l < h; l += 5)
    for (int k = 0; k < w; k += 3) {
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) v[y * w + x] = cos(PETSC_PI * k * (x + 0.5) / w) * cos(PETSC_PI * l * (y + 0.5) / h);
      bo_blur_apply_image(&K, PETSC_FALSE, v, tmp, kv);
      for (int p = 0; p < h * w; p++) assert_true(fabs(kv[p] - ex[k] * ey[l] * v[p]) < 1e-12);
    }
  OK(bo_blur_destroy(&K));
}

static void blur_norm_bound_holds_for_both_rules(void **state)
{
  const int64_t h = 11, w = 9;
  double        x[99], kx[99], tmp[99];
  (void)state;
  for (int rule = 0; rule < 2; rule++) {
    bo_blur K;
    OK(bo_blur_create(h, w, 2.0, (bo_boundary)rule, &K));
    for (int t = 0; t < 20; t++) {
      bo_rng r;
      double nx = 0, nk = 0;
      bo_rng_init(&r, 5, (uint64_t)t, 1);
      for (int k = 0; k < h * w; k++) x[k] = bo_rng_normal(&r) + (t % 2 ? 3.0 * (k % w == 0) : 0);
      bo_blur_apply_image(&K, PETSC_FALSE, x, tmp, kx);
      for (int k = 0; k < h * w; k++) nx += x[k] * x[k], nk += kx[k] * kx[k];
      assert_true(nk <= bo_blur_norm2_bound(&K) * nx * (1 + 1e-12));
    }
    OK(bo_blur_destroy(&K));
  }
}

/* ---------------------------------------------------------------- feasibility */

/* lambda_min of sym(M_n - T) / max|T| for the n-sweep step of an inner solver on a 12 x 12 grid
 * with random a in [1, 2] and c in [0, 3] (a fifth of the edges cut): M_n - T = T (I - G)^{-1} G
 * with G the step's iteration matrix, read column by column from solves with b = 0. */
static double feasibility(bo_inner_type type, PetscInt sweeps, double omega, double richardson_scale, double *asym)
{
  const PetscBLASInt n = 144;
  bo_grid            g;
  bo_imgop           op;
  bo_inner           in;
  bo_inner_opts      o = {.type = type, .sweeps = sweeps, .omega = omega};
  Vec                x, b, y;
  double            *T = calloc(n * n, sizeof *T), *G = calloc(n * n, sizeof *G), *A = calloc(n * n, sizeof *A), *S = calloc(n * n, sizeof *S);
  double            *a, *c, tmax = 0, smax = 0, dmax = 0, eig[144], work[144 * 10], minev;
  PetscBLASInt       ipiv[144], info, lwork = 144 * 10;
  bo_rng             r;

  OK(bo_grid_create(PETSC_COMM_WORLD, 12, 12, 0, &g));
  OK(bo_imgop_create(&g, NULL, bo_inner_wants_shell(type, NULL), &op));
  bo_rng_init(&r, 11, 0, 0);
  OK(VecGetArray(op.a, &a));
  OK(VecGetArray(op.c, &c));
  for (int k = 0; k < n; k++) {
    a[k] = 1 + bo_rng_uniform(&r);
    c[k] = bo_rng_uniform(&r) < 0.2 ? 0 : 3 * bo_rng_uniform(&r);
  }
  OK(VecRestoreArray(op.c, &c));
  OK(VecRestoreArray(op.a, &a));
  OK(bo_imgop_update(&op));
  OK(bo_inner_create(&op, &o, NULL, &in));
  if (richardson_scale > 0) OK(KSPRichardsonSetScale(bo_inner_ksp(in), richardson_scale));
  OK(DMCreateGlobalVector(g.da, &x));
  OK(VecDuplicate(x, &b));
  OK(VecDuplicate(x, &y));
  OK(VecSet(b, 0));
  for (int j = 0; j < n; j++) {
    const double *v;
    PetscInt      its;
    OK(VecSet(x, 0));
    OK(VecSetValue(x, j, 1.0, INSERT_VALUES));
    OK(VecAssemblyBegin(x));
    OK(VecAssemblyEnd(x));
    OK(MatMult(op.T, x, y));
    OK(VecGetArrayRead(y, &v));
    for (int i = 0; i < n; i++) T[i + j * n] = v[i];
    OK(VecRestoreArrayRead(y, &v));
    OK(bo_inner_solve(in, b, x, &its));
    OK(VecGetArrayRead(x, &v));
    for (int i = 0; i < n; i++) G[i + j * n] = v[i];
    OK(VecRestoreArrayRead(x, &v));
  }
  for (int k = 0; k < n * n; k++) A[k] = (k % (n + 1) == 0) - G[k], tmax = PetscMax(tmax, fabs(T[k]));
  LAPACKgesv_(&n, &n, A, &n, ipiv, G, &n, &info); /* G <- (I - G)^{-1} G */
  assert_int_equal(info, 0);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int k = 0; k < n; k++) s += T[i + k * n] * G[k + j * n];
      S[i + j * n] = s;
    }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) smax = PetscMax(smax, fabs(S[i + j * n])), dmax = PetscMax(dmax, fabs(S[i + j * n] - S[j + i * n]));
  for (int i = 0; i < n; i++)
    for (int j = 0; j < i; j++) S[i + j * n] = S[j + i * n] = 0.5 * (S[i + j * n] + S[j + i * n]);
  LAPACKsyev_("N", "U", &n, S, &n, eig, work, &lwork, &info);
  assert_int_equal(info, 0);
  minev = eig[0] / tmax;
  *asym = dmax / PetscMax(smax, 1e-300);
  OK(bo_inner_destroy(&in));
  OK(bo_imgop_destroy(&op));
  OK(VecDestroy(&x));
  OK(VecDestroy(&b));
  OK(VecDestroy(&y));
  OK(bo_grid_destroy(&g));
  free(T), free(G), free(A), free(S);
  return minev;
}

static void fixed_sweep_inner_solvers_are_feasible(void **state)
{
  const struct { bo_inner_type t; double omega; } cases[] = {{BO_INNER_RBGS, 1}, {BO_INNER_JACOBI, 1}, {BO_INNER_SSOR, 1.0}, {BO_INNER_SSOR, 1.5}, {BO_INNER_MG, 1}, {BO_INNER_FFT, 1}};
  (void)state;
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
    for (PetscInt n = 1; n <= 2; n++) {
      double asym, ev = feasibility(cases[k].t, n, cases[k].omega, 0, &asym);
      if (ev < -1e-10 || asym > 1e-8) fprintf(stderr, "  %s omega %g n %d: lambda_min %.3e asym %.3e\n", bo_inner_names[cases[k].t], cases[k].omega, (int)n, ev, asym);
      assert_true(asym < 1e-8);  /* M_n is symmetric */
      assert_true(ev >= -1e-10); /* M_n - T >= 0 */
    }
}

static void plain_jacobi_is_not_feasible(void **state)
{
  double asym;
  (void)state;
  assert_true(feasibility(BO_INNER_JACOBI, 1, 1, 1.0, &asym) < -1e-3); /* M = D: D - T = L + L^T is indefinite */
}

/* ---------------------------------------------------------------- descent and exactness */

static void energy_never_increases_for_any_potential_and_inner_solver(void **state)
{
  const bo_inner_type inners[] = {BO_INNER_RBGS, BO_INNER_JACOBI, BO_INNER_MG, BO_INNER_SSOR, BO_INNER_FFT, BO_INNER_EXACT, BO_INNER_CG};
  (void)state;
  for (int p = 0; p < BO_HQ_NPOTENTIALS; p++)
    for (size_t t = 0; t < sizeof inners / sizeof inners[0]; t++)
      for (PetscInt n = 1; n <= 3; n += 2) {
        bo_hq_opts o = opts((bo_hq_potential)p, inners[t], n);
        hq_run     r;
        double     e, prev;
        PetscInt   its;
        hq_run_start(&r, 24, 20, 0, &o, &prev);
        for (int k = 0; k < 8; k++) {
          OK(bo_hq_step(r.hq, &e, &its));
          if (e > prev + 1e-12 * fabs(prev)) fprintf(stderr, "  %s/%s n=%d step %d: %.15g > %.15g\n", bo_hq_potential_names[p], bo_inner_names[inners[t]], (int)n, k, e, prev);
          assert_true(e <= prev + 1e-12 * fabs(prev));
          prev = e;
        }
        hq_run_end(&r);
      }
}

static void deblurring_energy_never_increases(void **state)
{
  const bo_inner_type inners[] = {BO_INNER_FFT, BO_INNER_MG, BO_INNER_EXACT};
  (void)state;
  for (int p = 0; p < BO_HQ_NPOTENTIALS; p++)
    for (size_t t = 0; t < sizeof inners / sizeof inners[0]; t++) {
      bo_hq_opts o = opts((bo_hq_potential)p, inners[t], 1);
      hq_run     r;
      double     e, prev;
      PetscInt   its;
      o.mu = 0.01;
      hq_run_start(&r, 22, 18, 1.0, &o, &prev);
      for (int k = 0; k < 6; k++) {
        OK(bo_hq_step(r.hq, &e, &its));
        assert_true(e <= prev + 1e-12 * fabs(prev));
        prev = e;
      }
      hq_run_end(&r);
    }
}

static double relative_difference(Vec a, Vec b)
{
  Vec    d;
  double nd, nb;
  OK(VecDuplicate(a, &d));
  OK(VecWAXPY(d, -1.0, a, b));
  OK(VecNorm(d, NORM_2, &nd));
  OK(VecNorm(b, NORM_2, &nb));
  OK(VecDestroy(&d));
  return nd / nb;
}

static void many_sweeps_agree_with_exact_alternating_minimization(void **state)
{
  const struct { bo_hq_potential p; bo_inner_type t; PetscInt n; double blur, mu; } cases[] = {
    {BO_HQ_GM, BO_INNER_RBGS, 1500, 0, 0},  {BO_HQ_HL, BO_INNER_RBGS, 1500, 0, 0}, {BO_HQ_GM, BO_INNER_MG, 300, 0, 0},
    {BO_HQ_HL, BO_INNER_SSOR, 1500, 0, 0},  {BO_HQ_GM, BO_INNER_FFT, 3000, 1.0, 0.05}, {BO_HQ_HL, BO_INNER_FFT, 3000, 1.0, 0.05},
  };
  (void)state;
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    bo_hq_opts a = opts(cases[k].p, cases[k].t, cases[k].n), b = opts(cases[k].p, BO_INNER_EXACT, 1);
    hq_run     ra, rb;
    double     e;
    PetscInt   its;
    a.mu = b.mu = cases[k].mu;
    hq_run_start(&ra, 16, 14, cases[k].blur, &a, &e);
    hq_run_start(&rb, 16, 14, cases[k].blur, &b, &e);
    OK(KSPSetTolerances(bo_hq_ksp(rb.hq), 1e-15, 1e-300, PETSC_DEFAULT, 100000));
    for (int s = 0; s < 5; s++) {
      OK(bo_hq_step(ra.hq, &e, &its));
      OK(bo_hq_step(rb.hq, &e, &its));
    }
    double d = relative_difference(ra.x, rb.x);
    if (d >= 1e-8) fprintf(stderr, "  %s/%s: relative difference %.3e\n", bo_hq_potential_names[cases[k].p], bo_inner_names[cases[k].t], d);
    assert_true(d < 1e-8);
    hq_run_end(&ra);
    hq_run_end(&rb);
  }
}

static void one_sweep_differs_from_exact(void **state)
{
  bo_hq_opts a = opts(BO_HQ_GM, BO_INNER_RBGS, 1), b = opts(BO_HQ_GM, BO_INNER_EXACT, 1);
  hq_run     ra, rb;
  double     e;
  PetscInt   its;
  (void)state;
  hq_run_start(&ra, 16, 14, 0, &a, &e);
  hq_run_start(&rb, 16, 14, 0, &b, &e);
  OK(bo_hq_step(ra.hq, &e, &its));
  OK(bo_hq_step(rb.hq, &e, &its));
  assert_int_equal(its > 1, 1);
  assert_true(relative_difference(ra.x, rb.x) > 1e-6); /* the comparison above can fail */
  hq_run_end(&ra);
  hq_run_end(&rb);
}

/* ---------------------------------------------------------------- PSNR, SSIM */

static void psnr_and_ssim_match_known_values(void **state)
{
  enum { H = 23, W = 29 };
  double a[H * W], b[H * W], psnr, ssim;
  (void)state;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      double v = 0.5 + 0.4 * sin(0.3 * x + 0.2 * y) * cos(0.17 * x * y / 10.0);
      a[y * W + x] = v;
      b[y * W + x] = PetscMin(1.0, PetscMax(0.0, v + 0.05 * sin(1.7 * x + 2.3 * y)));
    }
  /* scikit-image 0.19.3: structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
   * use_sample_covariance=False, data_range=1) and peak_signal_noise_ratio(a, b, data_range=1) */
  OK(bo_metrics_ssim(H, W, 1, a, b, 1.0, &ssim));
  OK(bo_metrics_psnr(H, W, 1, a, b, 1.0, &psnr));
  assert_true(fabs(ssim - 0.948077131509415) < 1e-10);
  assert_true(fabs(psnr - 29.033323329579158) < 1e-10);
  OK(bo_metrics_ssim(H, W, 1, a, a, 1.0, &ssim));
  assert_true(fabs(ssim - 1) < 1e-14);
  for (int k = 0; k < H * W; k++) b[k] = a[k] + 0.1;
  OK(bo_metrics_psnr(H, W, 1, a, b, 1.0, &psnr));
  assert_true(fabs(psnr - 20) < 1e-9);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("the weight's quadratic majorizes tq, gm and hl (half-quadratic descent)", weight_quadratic_majorizes_every_potential),
    PROPERTY("the weight is phi'(t)/t = 2 dphi/d(t^2) for gm and hl", weight_is_twice_the_derivative_in_t_squared),
    PROPERTY("the additive truncated quadratic's hard threshold attains phi", additive_truncated_quadratic_is_exact),
    PROPERTY("K^T is the adjoint of K and K keeps constants, replicate and reflect", blur_transpose_is_the_adjoint),
    PROPERTY("the reflect blur is diagonal in the DCT-II basis with the stated eigenvalues", reflect_blur_is_diagonalised_by_the_dct),
    PROPERTY("||K x||^2 <= bound ||x||^2 for both boundary rules", blur_norm_bound_holds_for_both_rules),
    PROPERTY("rbgs, jacobi (2D), ssor (1, 1.5), mg and fft with 1-2 sweeps are feasible: M_n symmetric, M_n - T >= 0", fixed_sweep_inner_solvers_are_feasible),
    PROPERTY("plain Jacobi (M = D) is not feasible", plain_jacobi_is_not_feasible),
    PROPERTY("denoising energy never increases for every potential x inner solver, n = 1 and 3", energy_never_increases_for_any_potential_and_inner_solver),
    PROPERTY("deblurring energy never increases with fft, mg and exact", deblurring_energy_never_increases),
    PROPERTY("many sweeps agree with exact alternating minimization to 1e-8 (gm, hl; rbgs, mg, ssor, fft)", many_sweeps_agree_with_exact_alternating_minimization),
    PROPERTY("one sweep is not the exact step", one_sweep_differs_from_exact),
    PROPERTY("PSNR and SSIM match scikit-image on a fixed pair", psnr_and_ssim_match_known_values),
  };
  int failed;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  failed = cmocka_run_group_tests_name("hq", tests, NULL, NULL);
  PetscCall(PetscFinalize());
  return failed ? 1 : 0;
}
