/* fire_gauss.c - task `fire-gauss`: FIRE's linear Gaussian toy (spec losses.md section 4 (a);
 * numerics in solvers/fire_gauss.c, contract in include/boundopt/fire_gauss.h).
 *
 *   task: fire-gauss
 *   output: fire-gauss.h5
 *   fire_gauss: {eps: 0.3, dim: 20, strong: 2, mu_strong: 1, mu_weak: 0.25, beta: "0.1,1,10"}
 *
 * Data: y = +-1, x ~ N(y mu, sigma^2 I).  Profile steps: mu = (mu_strong x strong, mu_weak x
 * (dim - strong)), a few strong, robust features and many weak ones that an L-infinity attacker of
 * radius eps can erase (mu_weak < eps), so clean and robust accuracy conflict; every front
 * classifier then weighs the features of a group equally.  Profile linear: mu_j evenly from
 * mu_strong down to mu_weak, where the front's classifiers (soft thresholds of mu) drop the
 * features one by one: a direction that is not a soft threshold of mu shows a gap.  A linear logistic model is trained on n
 * samples (full-batch Adam, exact gradients, the exact inner maximisation) by each method:
 *   ce      plain cross-entropy (one point)
 *   at      PGD-AT (CE at the label-adverse end), one point per training radius in -fire_gauss_at_eps
 *   trades  CE + beta KL(p || p'), one point per beta
 *   fire    CE + beta arccos(BC)^2, one point per beta
 * Each classifier is scored at radius eps by the closed-form population accuracies and by Monte
 * Carlo on test_n fresh samples, and compared with the optimal front of linear classifiers
 * (the gap: how much both accuracies would have to gain to escape domination; 0 = Pareto-optimal).
 *
 * Results (rank-invariant: samples keyed by (seed, sample id), sums exact):
 *   /mu [dim]; /front/{kappa, clean, robust} [front_points]
 *   /<method>/{param, clean, robust, clean_mc, robust_mc, gap, objective, stationarity} [points]
 *   (stationarity: least subgradient norm with weights below 1e-3 max|w| taken as 0, fire_gauss.h),
 *   /<method>/weights [points x (dim + 1)] (w, then b), /<method>/history [points x iterations]
 *   attributes: /<method> param_name (beta, eps_train or none), min_gap;  root: the options,
 *   front_exact, bayes_clean/robust (front start), robust_opt_clean/robust (front end).
 */
#include "boundopt/error.h"
#include "boundopt/fire_gauss.h"
#include "boundopt/h5.h"
#include "boundopt/results.h"
#include "boundopt/tasks.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_POINTS 64

typedef struct {
  char      methods[128], betas[1024], at_eps[1024], seed[32], profile[16];
  PetscInt  dim, strong, n, test_n, iterations, front_points;
  PetscReal eps, sigma, mu_strong, mu_weak, lr;
  PetscBool monitor;
  int       nmethods, method[BO_FG_NMETHODS], nbeta, nat;
  double    beta[MAX_POINTS], at[MAX_POINTS];
  int64_t   seedv;
} fg_params;

static PetscErrorCode read_options(bo_job *job, fg_params *p)
{
  PetscFunctionBeginUser;
  snprintf(p->methods, sizeof p->methods, "ce,at,trades,fire");
  snprintf(p->betas, sizeof p->betas, "0.1,0.2,0.5,1,2,4,6,8,16,32,64");
  snprintf(p->at_eps, sizeof p->at_eps, "0.05,0.1,0.15,0.2,0.25,0.3,0.35");
  snprintf(p->seed, sizeof p->seed, "%lld", (long long)job->seed);
  snprintf(p->profile, sizeof p->profile, "steps");
  p->dim = 20; p->strong = 2; p->n = 10000; p->test_n = 100000; p->iterations = 1000; p->front_points = 2001;
  p->eps = 0.3; p->sigma = 1; p->mu_strong = 1; p->mu_weak = 0.25; p->lr = 0.05; p->monitor = PETSC_FALSE;
  PetscOptionsBegin(job->comm, "fire_gauss_", "Task fire-gauss: FIRE, TRADES and AT on the linear Gaussian toy", "boundopt");
  PetscCall(PetscOptionsString("-method", "Methods, comma separated: ce, at, trades, fire", "", p->methods, p->methods, sizeof p->methods, NULL));
  PetscCall(PetscOptionsString("-beta", "Regularisation weights beta of trades and fire, comma separated (>= 0)", "", p->betas, p->betas, sizeof p->betas, NULL));
  PetscCall(PetscOptionsString("-at_eps", "Training radii of at, comma separated (>= 0)", "", p->at_eps, p->at_eps, sizeof p->at_eps, NULL));
  PetscCall(PetscOptionsReal("-eps", "L-infinity radius: trades/fire training and every robust accuracy", "", p->eps, &p->eps, NULL));
  PetscCall(PetscOptionsInt("-dim", "Input dimension d", "", p->dim, &p->dim, NULL));
  PetscCall(PetscOptionsString("-profile", "Class means: steps (strong x mu_strong, then mu_weak) or linear (mu_strong down to mu_weak)", "", p->profile, p->profile, sizeof p->profile, NULL));
  PetscCall(PetscOptionsInt("-strong", "Strong features (profile steps): the first n coordinates of mu", "", p->strong, &p->strong, NULL));
  PetscCall(PetscOptionsReal("-mu_strong", "Class-mean value of the strong features", "", p->mu_strong, &p->mu_strong, NULL));
  PetscCall(PetscOptionsReal("-mu_weak", "Class-mean value of the other features", "", p->mu_weak, &p->mu_weak, NULL));
  PetscCall(PetscOptionsReal("-sigma", "Noise standard deviation per coordinate", "", p->sigma, &p->sigma, NULL));
  PetscCall(PetscOptionsInt("-n", "Training samples", "", p->n, &p->n, NULL));
  PetscCall(PetscOptionsInt("-test_n", "Monte Carlo test samples", "", p->test_n, &p->test_n, NULL));
  PetscCall(PetscOptionsString("-seed", "Seed of the sample streams (default: the job's -seed)", "", p->seed, p->seed, sizeof p->seed, NULL));
  PetscCall(PetscOptionsInt("-iterations", "Full-batch Adam steps per classifier", "", p->iterations, &p->iterations, NULL));
  PetscCall(PetscOptionsReal("-lr", "Adam peak learning rate (cosine decay to 0)", "", p->lr, &p->lr, NULL));
  PetscCall(PetscOptionsInt("-front_points", "Points on the optimal front", "", p->front_points, &p->front_points, NULL));
  PetscCall(PetscOptionsBool("-monitor", "Print the objective every 100 steps", "", p->monitor, &p->monitor, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscErrorCode check_options(bo_job *job, fg_params *p)
{
  char *end;

  PetscFunctionBeginUser;
  PetscCheck(!job->input[0], job->comm, BO_ERR_INPUT, "option -input: '%s' is not used by task fire-gauss; expected no input (the task samples its own data)", job->input);
  PetscCall(bo_job_parse_names(job, "fire_gauss_method", p->methods, BO_FG_NMETHODS, bo_fg_method_names, BO_FG_NMETHODS, p->method, &p->nmethods));
  PetscCall(bo_job_parse_reals(job, "fire_gauss_beta", p->betas, 0, MAX_POINTS, p->beta, &p->nbeta));
  PetscCall(bo_job_parse_reals(job, "fire_gauss_at_eps", p->at_eps, 0, MAX_POINTS, p->at, &p->nat));
  PetscCheck(isfinite(p->eps) && p->eps >= 0, job->comm, BO_ERR_INPUT, "option -fire_gauss_eps: %g; expected a radius >= 0", (double)p->eps);
  PetscCheck(p->dim >= 1 && p->dim <= 100000, job->comm, BO_ERR_INPUT, "option -fire_gauss_dim: %d; expected 1 <= dim <= 100000", (int)p->dim);
  PetscCheck(!strcmp(p->profile, "steps") || !strcmp(p->profile, "linear"), job->comm, BO_ERR_INPUT, "option -fire_gauss_profile: '%s'; expected steps or linear", p->profile);
  PetscCheck(p->strong >= 0 && p->strong <= p->dim, job->comm, BO_ERR_INPUT, "option -fire_gauss_strong: %d; expected 0 <= strong <= dim = %d", (int)p->strong, (int)p->dim);
  PetscCheck(isfinite(p->mu_strong) && isfinite(p->mu_weak) && (p->mu_weak != 0 || (p->strong > 0 && p->mu_strong != 0)), job->comm, BO_ERR_INPUT, "option -fire_gauss_mu_strong/mu_weak: %g/%g; expected finite class means, not all 0", (double)p->mu_strong, (double)p->mu_weak);
  PetscCheck(isfinite(p->sigma) && p->sigma > 0, job->comm, BO_ERR_INPUT, "option -fire_gauss_sigma: %g; expected sigma > 0", (double)p->sigma);
  PetscCheck(p->n >= 1 && p->test_n >= 1, job->comm, BO_ERR_INPUT, "option -fire_gauss_n/test_n: %d/%d; expected at least 1 sample each", (int)p->n, (int)p->test_n);
  PetscCheck(p->iterations >= 1 && p->iterations <= 1000000, job->comm, BO_ERR_INPUT, "option -fire_gauss_iterations: %d; expected 1 to 1000000 steps", (int)p->iterations);
  PetscCheck(isfinite(p->lr) && p->lr > 0, job->comm, BO_ERR_INPUT, "option -fire_gauss_lr: %g; expected lr > 0", (double)p->lr);
  PetscCheck(p->front_points >= 2 && p->front_points <= 1000000, job->comm, BO_ERR_INPUT, "option -fire_gauss_front_points: %d; expected 2 to 1000000 points", (int)p->front_points);
  errno = 0;
  p->seedv = strtoll(p->seed, &end, 0);
  PetscCheck(!errno && end != p->seed && !*end && p->seedv >= 0, job->comm, BO_ERR_INPUT, "option -fire_gauss_seed: '%s'; expected an integer from 0 to 2^63-1", p->seed);
  PetscFunctionReturn(0);
}

typedef struct {
  MPI_Comm    comm;
  const char *method;
  double      param;
} monitor_ctx;

static PetscErrorCode monitor(int64_t step, double value, double gnorm, void *ctx)
{
  const monitor_ctx *m = ctx;
  PetscFunctionBeginUser;
  if (step == 1 || step % 100 == 0) PetscCall(PetscPrintf(m->comm, "  fire-gauss %s %g step %lld objective %.10f |grad| %.3e\n", m->method, m->param, (long long)step, value, gnorm));
  PetscFunctionReturn(0);
}

static PetscErrorCode write_vec(hid_t f, const char *group, const char *name, int64_t n, const double *v)
{
  char    path[256];
  hsize_t dims[1] = {(hsize_t)n};
  PetscFunctionBeginUser;
  snprintf(path, sizeof path, "/%s/%s", group, name);
  PetscCall(bo_h5_write_array(f, path, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, v));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_fire_gauss(bo_job *job)
{
  fg_params   p = {0};
  bo_results  res;
  bo_fg_data  train, test;
  bo_fg_model model;
  PetscBool   stop;
  double     *mu, *kappa, *fc, *fr;
  int         exact;

  PetscFunctionBeginUser;
  PetscCall(read_options(job, &p));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) PetscFunctionReturn(0);
  PetscCall(bo_job_require(job, "output", job->output, "the results file to write"));
  PetscCall(check_options(job, &p));
  PetscCall(bo_results_create(job, job->output, &res));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ)); /* "read": sample the data sets */
  PetscCall(PetscMalloc4(p.dim, &mu, p.front_points, &kappa, p.front_points, &fc, p.front_points, &fr));
  for (PetscInt j = 0; j < p.dim; j++)
    mu[j] = strcmp(p.profile, "linear") ? (j < p.strong ? p.mu_strong : p.mu_weak) : p.mu_strong + (p.mu_weak - p.mu_strong) * (p.dim > 1 ? (double)j / (double)(p.dim - 1) : 0.0);
  model = (bo_fg_model){.d = p.dim, .sigma = p.sigma, .mu = mu};
  PetscCall(bo_fg_data_create(job->comm, &model, (uint64_t)p.seedv, BO_FG_PURPOSE_TRAIN, p.n, &train));
  PetscCall(bo_fg_data_create(job->comm, &model, (uint64_t)p.seedv, BO_FG_PURPOSE_TEST, p.test_n, &test));
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  PetscCall(bo_fg_front(&model, p.eps, p.front_points, kappa, fc, fr, &exact));
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));
  PetscCall(PetscPrintf(job->comm, "fire-gauss: optimal linear front at eps %g: Bayes clean %.4f robust %.4f -> most robust clean %.4f robust %.4f%s\n", (double)p.eps, fc[0], fr[0], fc[p.front_points - 1], fr[p.front_points - 1], exact ? "" : " (Bayes robust margin < 0: constant classifiers may extend the front)"));
  PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
  {
    hsize_t dims[1] = {(hsize_t)p.dim};
    PetscCall(bo_h5_write_array(res.file, "/mu", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, mu));
    PetscCall(write_vec(res.file, "front", "kappa", p.front_points, kappa));
    PetscCall(write_vec(res.file, "front", "clean", p.front_points, fc));
    PetscCall(write_vec(res.file, "front", "robust", p.front_points, fr));
  }
  PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));

  for (int q = 0; q < p.nmethods; q++) {
    const bo_fg_method m = (bo_fg_method)p.method[q];
    const char        *name = bo_fg_method_names[m];
    const int          np = m == BO_FG_CE ? 1 : m == BO_FG_AT ? p.nat : p.nbeta;
    const double      *param = m == BO_FG_CE ? (double[]){0} : m == BO_FG_AT ? p.at : p.beta;
    double            *cl, *rb, *clm, *rbm, *gap, *obj, *gn, *w, *hist, min_gap = INFINITY;
    char               path[64];

    PetscCall(PetscMalloc7(np, &cl, np, &rb, np, &clm, np, &rbm, np, &gap, np, &obj, np, &gn));
    PetscCall(PetscMalloc2(np * (p.dim + 1), &w, np * p.iterations, &hist));
    PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
    for (int k = 0; k < np; k++) {
      bo_fg_train_opts o = {.method = m, .beta = m == BO_FG_AT || m == BO_FG_CE ? 0 : param[k], .eps = m == BO_FG_AT ? param[k] : m == BO_FG_CE ? 0 : p.eps, .iterations = p.iterations, .lr = p.lr};
      monitor_ctx      mc = {job->comm, name, param[k]};
      double          *wb = w + k * (p.dim + 1);
      PetscCall(bo_fg_train(&train, &o, p.monitor ? monitor : NULL, &mc, wb, hist + k * p.iterations, &obj[k], &gn[k]));
      bo_fg_accuracy(&model, wb, p.eps, &cl[k], &rb[k]);
      PetscCall(bo_fg_accuracy_empirical(&test, wb, p.eps, &clm[k], &rbm[k]));
      gap[k]  = bo_fg_front_gap(p.front_points, fc, fr, cl[k], rb[k]);
      min_gap = PetscMin(min_gap, gap[k]);
      PetscCall(PetscPrintf(job->comm, "fire-gauss: %-6s %s %-6g clean %.4f robust %.4f gap %.4f (Monte Carlo clean %.4f robust %.4f) objective %.6f stationarity %.1e\n", name, m == BO_FG_AT ? "eps_train" : "beta", param[k], cl[k], rb[k], gap[k], clm[k], rbm[k], obj[k], gn[k]));
    }
    PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));
    PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
    PetscCall(write_vec(res.file, name, "param", np, param));
    PetscCall(write_vec(res.file, name, "clean", np, cl));
    PetscCall(write_vec(res.file, name, "robust", np, rb));
    PetscCall(write_vec(res.file, name, "clean_mc", np, clm));
    PetscCall(write_vec(res.file, name, "robust_mc", np, rbm));
    PetscCall(write_vec(res.file, name, "gap", np, gap));
    PetscCall(write_vec(res.file, name, "objective", np, obj));
    PetscCall(write_vec(res.file, name, "stationarity", np, gn));
    {
      hsize_t dims[2] = {(hsize_t)np, (hsize_t)(p.dim + 1)};
      snprintf(path, sizeof path, "/%s/weights", name);
      PetscCall(bo_h5_write_array(res.file, path, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, dims, w));
      dims[1] = (hsize_t)p.iterations;
      snprintf(path, sizeof path, "/%s/history", name);
      PetscCall(bo_h5_write_array(res.file, path, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, dims, hist));
    }
    snprintf(path, sizeof path, "/%s", name);
    PetscCall(bo_h5_attr_write_string(res.file, path, "param_name", m == BO_FG_AT ? "eps_train" : m == BO_FG_CE ? "none" : "beta"));
    PetscCall(bo_h5_attr_write_double(res.file, path, "min_gap", min_gap));
    PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
    PetscCall(PetscFree7(cl, rb, clm, rbm, gap, obj, gn));
    PetscCall(PetscFree2(w, hist));
  }

  PetscCall(bo_h5_attr_write_string(res.file, "/", "methods", p.methods));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "eps", p.eps));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "sigma", p.sigma));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "dim", p.dim));
  PetscCall(bo_h5_attr_write_string(res.file, "/", "profile", p.profile));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "strong", p.strong));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "mu_strong", p.mu_strong));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "mu_weak", p.mu_weak));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "n", p.n));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "test_n", p.test_n));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "seed", p.seedv));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "iterations", p.iterations));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "lr", p.lr));
  PetscCall(bo_h5_attr_write_int64(res.file, "/", "front_exact", exact));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "bayes_clean", fc[0]));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "bayes_robust", fr[0]));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "robust_opt_clean", fc[p.front_points - 1]));
  PetscCall(bo_h5_attr_write_double(res.file, "/", "robust_opt_robust", fr[p.front_points - 1]));
  PetscCall(bo_results_commit(&res, job));

  PetscCall(bo_fg_data_destroy(&train));
  PetscCall(bo_fg_data_destroy(&test));
  PetscCall(PetscFree4(mu, kappa, fc, fr));
  PetscFunctionReturn(0);
}
