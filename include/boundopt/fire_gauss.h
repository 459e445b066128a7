/* fire_gauss.h - FIRE's linear Gaussian toy (spec losses.md section 4, honest experiment (a)):
 * two Gaussian classes, a linear logistic model, the L-infinity inner maximisation in closed form,
 * exact analytic gradients of the CE, PGD-AT, TRADES and FIRE objectives, closed-form clean and
 * robust accuracies, and the optimal accuracy-robustness front of linear classifiers.
 *
 * Model
 *   y uniform on {-1, +1}, x | y ~ N(y mu, sigma^2 I_d); z = w^T x + b, p = P(y = +1 | x) = sigma(z).
 *   The parameters are one vector wb = (w_1 .. w_d, b) of d + 1 doubles.
 *   Inner maximisation: for ||delta||_inf <= eps the adversarial logit z' = z + w^T delta covers
 *   exactly [z - r, z + r], r = eps ||w||_1 (the extreme is delta = +-eps sign(w)).  Every
 *   regulariser here is unimodal in z' with its minimum at z' = z, so the max is an endpoint
 *   z' = z + s r, s in {-1, +1}: the one maximising the regulariser (FIRE, TRADES; ties: s = -y),
 *   the label-adverse one s = -y for PGD-AT.
 *
 * Objectives (per-sample mean over the data set; CE(z, y) = log(1 + exp(-y z)))
 *   CE      CE(z, y)
 *   AT      CE(z - y r, y)                               (r from the AT training radius)
 *   TRADES  CE(z, y) + beta KL(p || p'),  p' = sigma(z')
 *   FIRE    CE(z, y) + beta arccos(BC(p, p'))^2 = CE + beta (d_FR/2)^2 (FIRE's code form, no guard)
 *   Binary Fisher-Rao: arccos BC = |psi(z) - psi(z')|, psi(z) = arctan(e^{z/2}) - pi/4
 *   = (1/2) arctan(sinh(z/2)), psi'(z) = 1/(4 cosh(z/2)) = sqrt(p(1 - p))/2.
 *   Gradient (Danskin; equivalently: x' = x + s eps sign(w) held fixed, as the reference detaches
 *   its PGD output): with the sample's partials dz, dz' of its loss at the chosen endpoint,
 *     dJ/dw = mean_i [(dz_i + dz'_i) x_i] + eps sign(w) mean_i [s_i dz'_i],  dJ/db = mean_i (dz_i + dz'_i)
 *   exact wherever the endpoint choice is unique and no w_j = 0 (there: the subgradient sign(0) = 0).
 *
 * Data and reproducibility
 *   Sample i is drawn from the stream (seed, i, purpose) of rng.h: the data set, hence every
 *   objective value, gradient and trained classifier, does not depend on the number of ranks.
 *   Rows are split in whole tiles (tiles.h); sums are one double partial per tile in row order,
 *   combined exactly (reduce.h): results are bit-identical at any number of ranks.
 *
 * Collectives: bo_fg_data_create, bo_fg_objective, bo_fg_train, bo_fg_accuracy_empirical (every
 * rank of data->comm).  Everything else is local and allocation-free unless stated.
 * Errors: one line "fire-gauss: <what>: <problem>; expected <what>" (BO_ERR_INPUT) for bad
 * arguments, raised identically on every rank (all arguments are replicated).
 */
#ifndef BOUNDOPT_FIRE_GAUSS_H
#define BOUNDOPT_FIRE_GAUSS_H
#include <petscsys.h>
#include <stdint.h>
#include "boundopt/tiles.h"

typedef enum { BO_FG_CE, BO_FG_AT, BO_FG_TRADES, BO_FG_FIRE, BO_FG_NMETHODS } bo_fg_method;
extern const char *const bo_fg_method_names[BO_FG_NMETHODS]; /* "ce", "at", "trades", "fire" */

/* Random-stream purposes: the training and test sets are independent draws under one seed. */
enum { BO_FG_PURPOSE_TRAIN = 0x46470001u, BO_FG_PURPOSE_TEST = 0x46470002u };

typedef struct {
  int64_t       d;     /* >= 1 */
  double        sigma; /* > 0 */
  const double *mu;    /* d class-mean values (class +1 at mu, class -1 at -mu); borrowed */
} bo_fg_model;

/* This rank's rows of a sampled data set (owns x and y). */
typedef struct {
  MPI_Comm comm;
  int64_t  d;
  bo_rows  rows; /* global n and this rank's [lo, hi) */
  double  *x;    /* (hi - lo) x d, row-major */
  double  *y;    /* hi - lo labels, -1 or +1 */
} bo_fg_data;

/* Samples rows [lo, hi) of a data set of n rows (n >= 1): row i from stream (seed, i, purpose),
 * y = +1 if the first uniform < 1/2 else -1, then x_j = y mu_j + sigma N(0, 1), j = 0 .. d-1. */
PetscErrorCode bo_fg_data_create(MPI_Comm comm, const bo_fg_model *m, uint64_t seed, uint32_t purpose, int64_t n, bo_fg_data *data);
PetscErrorCode bo_fg_data_destroy(bo_fg_data *data);

/* ---------------------------------------------------------------- per-sample terms (local) */

/* psi(z) = arctan(e^{z/2}) - pi/4 (odd; d_FR(z, z') = 2 |psi(z) - psi(z')|). */
double bo_fg_psi(double z);
/* arccos(BC)^2 = (psi(z) - psi(zp))^2 and its partials (may be NULL). */
double bo_fg_fr2(double z, double zp, double *dz, double *dzp);
/* KL(sigma(z) || sigma(zp)) of two Bernoulli laws; dKL/dz = p(1-p)(z - zp), dKL/dzp = p' - p. */
double bo_fg_kl(double z, double zp, double *dz, double *dzp);
/* log(1 + exp(-y z)) and its derivative in z (may be NULL). */
double bo_fg_ce(double z, double y, double *dz);

/* The endpoint s in {-1, +1} of [z - r, z + r] that the method's inner maximisation takes. */
int bo_fg_inner_max(bo_fg_method method, double z, double y, double r);

/* One sample's loss at logit z, label y, radius r = eps ||w||_1, and its partials in the natural
 * logit (*dz) and in the adversarial logit z' = z + s r (*dzp; 0 for CE); *s the endpoint
 * (0 for CE).  beta is ignored by CE and AT. */
double bo_fg_sample_loss(bo_fg_method method, double beta, double z, double y, double r, double *dz, double *dzp, int *s);

/* ---------------------------------------------------------------- objective and training */

typedef struct {
  bo_fg_method method;
  double       beta;       /* TRADES, FIRE: >= 0 */
  double       eps;        /* the training radius r / ||w||_1 (AT, TRADES, FIRE): >= 0 */
  int64_t      iterations; /* Adam steps (full batch), >= 1 */
  double       lr;         /* peak learning rate > 0; cosine decay to 0 over the steps */
} bo_fg_train_opts;

/* J(wb) and dJ/dwb (d + 1, may be NULL) over the whole data set: identical on every rank. */
PetscErrorCode bo_fg_objective(const bo_fg_data *data, const bo_fg_train_opts *o, const double *wb, double *value, double *grad);

/* Least norm of a subgradient of J at wb when every w_j with |w_j| <= zero_tol max_k |w_k| is taken
 * as 0 (there the subdifferential in w_j is the interval a_j + eps |C| [-1, 1]): the stationarity
 * measure of a classifier whose optimum zeroes weights (the soft thresholds of the front), where
 * Adam leaves them oscillating near 0 and the plain gradient keeps a +-eps C term.  Collective. */
PetscErrorCode bo_fg_stationarity(const bo_fg_data *data, const bo_fg_train_opts *o, const double *wb, double zero_tol, double *norm);

/* Called after each step (may be NULL): step (1-based), objective before the step, gradient norm. */
typedef PetscErrorCode (*bo_fg_monitor_fn)(int64_t step, double value, double gnorm, void *ctx);

/* Full-batch Adam (betas 0.9, 0.999, eps 1e-8; optim.h) from wb = 0 with the learning rate
 * lr (1 + cos(pi t / T))/2 at step t = 0 .. T-1.  wb (d + 1) is the result; history (iterations
 * values, may be NULL) the objective at each step; *gnorm_final (may be NULL) the stationarity
 * measure bo_fg_stationarity(zero_tol 1e-3) at the result. */
PetscErrorCode bo_fg_train(const bo_fg_data *data, const bo_fg_train_opts *o, bo_fg_monitor_fn monitor, void *ctx, double *wb, double *history, double *value_final, double *gnorm_final);

/* ---------------------------------------------------------------- accuracies and the front */

/* Closed-form population accuracies of z = w^T x + b (derivation in fire_gauss.c):
 *   clean  = (1/2)[Phi((m + b)/s) + Phi((m - b)/s)],  m = w^T mu, s = sigma ||w||_2
 *   robust = (1/2)[Phi((m + b - r)/s) + Phi((m - b - r)/s)],  r = eps ||w||_1
 * A sample counts as correct when y z > 0 (robust: y z - r > 0); w = 0 classifies by sign(b). */
void bo_fg_accuracy(const bo_fg_model *m, const double *wb, double eps, double *clean, double *robust);

/* Fractions of the data set that are correct and robustly correct (exact integer counts). */
PetscErrorCode bo_fg_accuracy_empirical(const bo_fg_data *data, const double *wb, double eps, double *clean, double *robust);

/* The Pareto front of (clean, robust) over linear classifiers at radius eps: the classifiers
 * w = soft(mu, kappa) = sign(mu) max(|mu| - kappa, 0), b = 0, for npoints kappa evenly from 0 to
 * kappa_max = min(eps, max_j |mu_j|) (the last point just below max |mu_j| when that is smaller).
 * kappa, clean, robust: npoints each (npoints >= 2).  *exact (may be NULL) = 1 when the Bayes
 * classifier's robust margin mu^T mu - eps ||mu||_1 >= 0, the condition under which b = 0 loses
 * nothing and the curve is the whole front (see the derivation). */
PetscErrorCode bo_fg_front(const bo_fg_model *m, double eps, int64_t npoints, double *kappa, double *clean, double *robust, int *exact);

/* Additive epsilon-indicator of a point against a front: max(0, max_j min(C_j - clean, R_j - robust))
 * over the front's points and the segments between them: 0 for a Pareto-optimal point, else how
 * many accuracy units (fraction) must be added to both coordinates to escape domination. */
double bo_fg_front_gap(int64_t npoints, const double *front_clean, const double *front_robust, double clean, double robust);
#endif
