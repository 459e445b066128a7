/* heads.h - per-pixel classifier heads on fixed features: logits forward, parameter gradients
 * backward (spec losses.md section 0 "Architecture", section 1 "Model").
 *
 * Heads
 *   LINEAR  z_i = x_i W + b, W d x k, b k.  param = [W row-major (d x k), b (k)], nparam = d k + k.
 *           Backward: dW = X^T G, db = 1^T G (G = dL/dZ, n x k).
 *   PROTO   RePRI's prototype-plus-bias head (spec 1): s_i = tau cos(x_i, theta), u_i = s_i - b,
 *           logits z_i = (0, u_i) (k = 2: softmax(0, u) = (1 - sigma(u), sigma(u)), background
 *           first).  param = [theta (d), b], nparam = d + 1.  Backward, with du_i = G_i1 (the
 *           first logit is the constant 0):
 *             db = -sum_i du_i,   dtheta = sum_i du_i tau (x_i/(|x_i||theta|) - cos_i theta/|theta|^2).
 *           A zero feature row has cos = 0 (and no theta gradient); theta = 0 is an input error.
 *           bo_head_proto_init: theta = mean over shots of each shot's masked mean support feature
 *           (sum m x / (sum m + 1e-10), the reference's form: an empty shot adds a zero vector);
 *           b = mean over the query rows of s_i (spec 1 "Init").
 *   MLP     one hidden layer of m ReLU units (spec 5 "a pixel head on features"; the reference
 *           trains a CNN, this is the smallest head that is not linear in the features):
 *             a_i = x_i W1 + b1 (m),  h_i = max(a_i, 0),  z_i = h_i W2 + b2 (k).
 *           param = [W1 (d x m) row-major, b1 (m), W2 (m x k) row-major, b2 (k)],
 *           nparam = d m + m + m k + k.  Backward, with G_i = dL/dz_i and
 *           dh_i = (G_i W2^T) o [a_i > 0]:  dW2 = H^T G, db2 = 1^T G, dW1 = X^T dH, db1 = 1^T dH.
 *           bo_head_mlp_init: W1 ~ N(0, 2/d) (He), W2 ~ N(0, 1/m), biases 0, drawn in parameter
 *           order from the Philox stream (seed, id 0, purpose BO_HEAD_RNG_PURPOSE): the same head
 *           at any rank count.  Plain loops, not BLAS: each row's arithmetic is then the same
 *           whatever the number of rows per call (rank-count independent forward), and the
 *           gradient's bound is built from the block partials themselves (nblocks x nparam
 *           doubles of workspace).
 *
 * Contract
 *   Features x are n x d row-major doubles (the caller converts float32 fields once); logits n x k.
 *   bo_head_backward is COLLECTIVE on comm (data-parallel training): each rank passes its rows
 *   and receives the gradient summed over all ranks, identical on every rank and independent of
 *   the number of ranks: the rows are cut into blocks (block_start: nblocks + 1 local offsets,
 *   0 = block_start[0] <= ... <= block_start[nblocks] = n; NULL = every row its own block), each
 *   block's partial is computed in a fixed order (one dgemm per block, BLAS on one thread) and is
 *   one exact-sum addend (reduce.h).  The caller chooses blocks that are the same at every rank
 *   count (images, or global tiles, tiles.h); rows split differently give sums that agree to
 *   rounding only.  The grid bound is n_total x the largest per-row contribution (MPI_MAX).
 *   Forward and init are local.  Errors: one line "heads: ...; expected ..." (BO_ERR_INPUT).
 */
#ifndef BOUNDOPT_HEADS_H
#define BOUNDOPT_HEADS_H
#include <petscsys.h>
#include <stdint.h>

typedef enum { BO_HEAD_LINEAR, BO_HEAD_PROTO, BO_HEAD_MLP } bo_head_kind;

#define BO_HEAD_RNG_PURPOSE 0x4EADu

typedef struct {
  bo_head_kind kind;
  int64_t      d, k;   /* feature dimension, classes (PROTO: 2) */
  double       tau;    /* PROTO: temperature (RePRI 20); unused by LINEAR */
  int64_t      m;      /* MLP: hidden units; 0 otherwise */
  int64_t      nparam; /* d k + k (LINEAR), d + 1 (PROTO), d m + m + m k + k (MLP) */
  double      *param;  /* owned; zero after create */
} bo_head;

PetscErrorCode bo_head_create_linear(int64_t d, int64_t k, bo_head *h);
PetscErrorCode bo_head_create_proto(int64_t d, double tau, bo_head *h);
/* MLP with m hidden ReLU units; parameters zero until bo_head_mlp_init. */
PetscErrorCode bo_head_create_mlp(int64_t d, int64_t m, int64_t k, bo_head *h);
PetscErrorCode bo_head_destroy(bo_head *h);
/* MLP init (He for W1, 1/m for W2, zero biases) from the stream (seed, 0, BO_HEAD_RNG_PURPOSE).  Local. */
PetscErrorCode bo_head_mlp_init(bo_head *h, uint64_t seed);

/* logits (n x k) from features x (n x d).  Local. */
PetscErrorCode bo_head_forward(const bo_head *h, int64_t n, const double *x, double *logits);
/* grad (nparam) = dL/dparam summed over every rank of comm, from dlogits = dL/dz (n x k).  Collective. */
PetscErrorCode bo_head_backward(const bo_head *h, MPI_Comm comm, int64_t n, const double *x, const double *dlogits, int64_t nblocks, const int64_t *block_start, double *grad);

/* PROTO init from nshots support images of ns rows each (xs: nshots ns x d, fg: nshots ns weights
 * in [0, 1], the foreground mask on the feature grid) and nq query rows xq.  Local. */
PetscErrorCode bo_head_proto_init(bo_head *h, int64_t nshots, int64_t ns, const double *xs, const double *fg, int64_t nq, const double *xq);
#endif
