/* mlp.h - a multilayer perceptron (ReLU hidden layers, softmax output) trained with CE, PGD
 * adversarial training (AT), TRADES or FIRE (spec losses.md section 4), data-parallel.
 *
 * Network
 *   widths n_0 = d (inputs), n_1 .. n_{L-1} (hidden), n_L = k (classes); L = nlayers weight layers.
 *   a_0 = x, a_l = relu(a_{l-1} W_l + b_l) (l < L), logits z = a_{L-1} W_L + b_L; p = softmax(z).
 *   param = [W_1 (n_0 x n_1, row-major), b_1, W_2, b_2, ...]: nparam = sum_l (n_{l-1} + 1) n_l.
 *   bo_mlp_init: PyTorch's nn.Linear default, W_l, b_l ~ U(-1/sqrt(n_{l-1}), 1/sqrt(n_{l-1})),
 *   drawn from the Philox stream (seed, layer l): the same network at any number of ranks.
 *   relu'(0) = 0 (PyTorch).  The penultimate layer a_{L-1} is the network's feature of a row.
 *
 * Tiles (the reproducibility contract)
 *   A batch of B rows is cut into tiles of BO_MLP_TILE_ROWS rows (the last one shorter); every
 *   forward and backward is one GEMM chain on one tile (OpenBLAS dgemm, one thread), and each tile's
 *   parameter-gradient partial is one exact-sum addend (reduce.h).  Tile t holds the same rows at
 *   any rank count and rank r computes the contiguous tiles [T r/P, T (r+1)/P), so the gradient,
 *   the loss and hence every optimiser step are bit-identical at 1, 2 or 3 ranks.
 *
 * Losses, per row i with natural logits z = f(x_i), adversarial z' = f(x'_i), p = softmax(z),
 * q = softmax(z'); a batch loss is the mean over its B rows:
 *   CE      CE(z, y)
 *   AT      CE(z', y),                x' = PGD maximising CE(f(x'), y)       (Madry et al.)
 *   TRADES  CE(z, y) + beta KL(p || q), x' = PGD maximising KL(p || q), p detached (beta 6)
 *   FIRE    CE(z, y) + beta arccos(min(BC, 1) - guard)^2, BC = sum_k sqrt(p_k q_k),
 *           x' = PGD maximising the FR term, p detached (beta 20; bo_loss_fisher_rao, losses.h)
 *   The model gradient of TRADES and FIRE flows through both z and z' (spec 4).  KL gradients:
 *   dKL/dz'_j = q_j - p_j, dKL/dz_j = p_j (log p_j - log q_j - KL).
 *
 * PGD (spec 4 "inner maximisation"), per row: x' = clip_[0,1](x + sigma N(0, I)) with the normal
 * draws from the Philox stream (seed, stream_id(row), purpose) (sigma 0.001), then `steps` times
 *   x' <- clip_[0,1]( clip_[x - eps, x + eps]( x' + step sign(grad_x' objective) ) ),  sign(0) = 0.
 * Rows are independent: a row's attack depends on its own stream only, not on the batch.
 *
 * Collectives: bo_mlp_batch_gradient and bo_mlp_evaluate (every rank of comm, same arguments,
 * replicated data).  The rest is local.  Errors: one line "mlp: ...; expected ..." (BO_ERR_INPUT).
 */
#ifndef BOUNDOPT_MLP_H
#define BOUNDOPT_MLP_H
#include <petscsys.h>
#include <stdint.h>

#define BO_MLP_MAX_LAYERS 8
/* Changing this changes results in the last bits: it is part of the reproducibility contract. */
#define BO_MLP_TILE_ROWS 32

typedef struct {
  int      nlayers;                      /* weight layers L = hidden layers + 1 */
  int64_t  width[BO_MLP_MAX_LAYERS + 1]; /* n_0 = d .. n_L = k */
  int64_t  woff[BO_MLP_MAX_LAYERS];      /* offset of W_l in param (l = 0 .. L-1 for layers 1 .. L) */
  int64_t  boff[BO_MLP_MAX_LAYERS];      /* offset of b_l */
  int64_t  nparam;
  double  *param;                        /* owned, zero after create */
} bo_mlp;

/* Activations of up to `rows` rows (one tile), kept by a forward for the backward. */
typedef struct {
  int64_t rows;
  double *act[BO_MLP_MAX_LAYERS + 1]; /* act[l], l = 1 .. L: rows x n_l (act[L] = logits) */
  double *delta[2];                   /* backward scratch, rows x max width */
} bo_mlp_work;

PetscErrorCode bo_mlp_create(int64_t d, int nhidden, const int64_t *hidden, int64_t k, bo_mlp *net);
PetscErrorCode bo_mlp_init(bo_mlp *net, uint64_t seed);
PetscErrorCode bo_mlp_destroy(bo_mlp *net);
PetscErrorCode bo_mlp_work_create(const bo_mlp *net, int64_t rows, bo_mlp_work *w);
PetscErrorCode bo_mlp_work_destroy(bo_mlp_work *w);

/* logits (m x k, may be NULL: then read w->act[L]) of the m <= w->rows rows of x (m x d).  Local. */
PetscErrorCode bo_mlp_forward(const bo_mlp *net, int64_t m, const double *x, bo_mlp_work *w, double *logits);
/* After bo_mlp_forward(net, m, x, w): dparam (nparam, may be NULL) += dL/dparam and dx (m x d,
 * may be NULL) = dL/dx, from dlogits = dL/dz (m x k).  Local. */
PetscErrorCode bo_mlp_backward(const bo_mlp *net, int64_t m, const double *x, bo_mlp_work *w, const double *dlogits, double *dparam, double *dx);

typedef enum { BO_MLP_LOSS_CE, BO_MLP_LOSS_AT, BO_MLP_LOSS_TRADES, BO_MLP_LOSS_FIRE, BO_MLP_NLOSSES } bo_mlp_loss;
extern const char *const bo_mlp_loss_names[]; /* "ce", "at", "trades", "fire" */
typedef enum { BO_PGD_CE, BO_PGD_KL, BO_PGD_FR } bo_pgd_objective;

typedef struct {
  double   eps, step;   /* l-infinity radius and step, >= 0 */
  int      steps;       /* >= 0 */
  double   sigma;       /* random start N(0, sigma^2) (0.001) */
  double   guard;       /* FR objective: eps_FR (as the loss) */
  uint64_t seed;
  uint32_t purpose;     /* rng purpose tag: keeps training and evaluation attacks apart */
} bo_pgd_opts;

typedef struct {
  bo_mlp_loss loss;
  double      beta;     /* TRADES 6, FIRE 20 */
  double      guard;    /* FIRE eps_FR inside arccos (0: clamp plus series, the project default) */
  bo_pgd_opts pgd;      /* the training attack (AT, TRADES, FIRE) */
} bo_mlp_loss_opts;

/* The rows' stream id for the random start: (round << 32) | row, e.g. round = epoch. */
static inline uint64_t bo_mlp_stream_id(uint64_t round, int64_t row) { return (round << 32) | (uint64_t)row; }

/* PGD on m <= w->rows rows (spec 4): xadv (m x d).  y: labels (CE objective), stream: m ids.  Local. */
PetscErrorCode bo_mlp_pgd(const bo_mlp *net, bo_pgd_objective obj, const bo_pgd_opts *o, int64_t m, const double *x, const uint8_t *y, const uint64_t *stream, bo_mlp_work *w, double *xadv);

/* The loss of m rows at given natural x and adversarial xadv (m x d; CE reads only x, AT only
 * xadv): terms[0] += sum_i CE part, terms[1] += sum_i regulariser (KL or FR, unweighted), and
 * dparam (may be NULL) += weight * d(sum_i loss_i)/dparam, dx and dxadv (m x d, may be NULL) =
 * weight * d(sum_i loss_i)/dx, /dxadv.  w: 2 works of >= m rows.  Local. */
PetscErrorCode bo_mlp_pair_loss(const bo_mlp *net, const bo_mlp_loss_opts *o, int64_t m, const double *x, const double *xadv, const uint8_t *y, double weight, bo_mlp_work w[2], double *dparam, double *dx, double *dxadv, double terms[2]);
/* The training loss of one tile of m rows (PGD, then bo_mlp_pair_loss): dparam (nparam) += weight * d(sum_i loss_i)/dparam, terms[0] +=
 * sum_i CE part, terms[1] += sum_i regulariser (KL or FR, unweighted).  w: 2 works of >= m rows.  Local. */
PetscErrorCode bo_mlp_tile_loss(const bo_mlp *net, const bo_mlp_loss_opts *o, int64_t m, const double *x, const uint8_t *y, const uint64_t *stream, double weight, bo_mlp_work w[2], double *dparam, double terms[2]);

/* The gradient of the mean loss over a batch of B rows, data[idx[b]] (data: N x d float rows,
 * labels: N), streams bo_mlp_stream_id(round, idx[b]): grad (nparam) and terms[2] (mean CE part,
 * mean regulariser) identical on every rank.  Collective. */
PetscErrorCode bo_mlp_batch_gradient(const bo_mlp *net, MPI_Comm comm, const bo_mlp_loss_opts *o, const float *data, const uint8_t *labels, int64_t B, const int64_t *idx, uint64_t round, double *grad, double terms[2]);

/* Correct predictions over the n rows of data: clean (argmax, ties to the lowest class) and, when
 * attack is not NULL, under PGD-CE with streams bo_mlp_stream_id(0, row) (else robust = -1).
 * Integer counts, identical on every rank.  Collective. */
PetscErrorCode bo_mlp_evaluate(const bo_mlp *net, MPI_Comm comm, const float *data, const uint8_t *labels, int64_t n, const bo_pgd_opts *attack, int64_t *clean, int64_t *robust);

/* The penultimate activations a_{L-1} (m x n_{L-1}) of m rows (any m; tiled).  Local. */
PetscErrorCode bo_mlp_features(const bo_mlp *net, int64_t m, const float *data, double *features);
#endif
