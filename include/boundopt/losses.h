/* losses.h - segmentation / transductive loss terms on logits, with their exact logit gradients
 * (spec losses.md: section 0 for the primitives, sections 1-7 for where each is used).
 *
 * Shape of every term
 *   Logits z are n x k row-major doubles (n pixels or rows, k classes); probabilities are computed
 *   inside, p_i = softmax(z_i) with a max shift (spec 0 "Numerics").  Binary (sigmoid) models pass
 *   the two logits (0, u_i): softmax(0, u) = (1 - sigma(u), sigma(u)), and the gradient of u is
 *   grad[i][1] (= -grad[i][0]: softmax logit gradients sum to 0 over a row; heads.h does this for RePRI).
 *   Each term returns its value L (unweighted) in *value (may be NULL) and ADDS weight * dL/dz
 *   into grad (n x k, may be NULL), so a compound loss is a sum of calls on one buffer.  The
 *   gradient is the exact derivative of the value as computed (eps terms included), checked by
 *   central differences in tests/unit/test_losses.c.
 *
 * The batch (bo_loss_batch)
 *   mask:  n pixel weights m_i >= 0 (NULL = all 1); a 0/1 mask is the uint8 "valid" of the spec.
 *          Weights multiply each pixel's contribution everywhere: N = sum_i m_i.
 *   group: n ids in 0..ngroups-1 (NULL = all 0): the images (or slices, volumes) over which the
 *          proportion terms are taken (spec 2 and 3: per image; a single group: per batch).
 *   comm:  the ranks that share the batch (data-parallel training: each rank holds some pixels,
 *          an image may even be split between ranks).  Every function here is COLLECTIVE on comm
 *          (PETSC_COMM_SELF for one rank's data): aggregates (N, N_g, class sums, loss sums) are
 *          exact sums of per-pixel addends (reduce.h, bo_exactsum_add_at), so the value and every
 *          rank's gradient rows are bit-identical for any number of ranks and any split of the rows.
 *          Each rank passes its own local rows; k, ngroups and every option must match on all ranks.
 *   labels: uint8, 0..k-1, or BO_LABEL_IGNORE (255) for a pixel that counts as masked out
 *          (the dataset convention of spec 0); other values are input errors.
 *
 * Normalisation (each term states it): "pixel mean" = sum over pixels / N (global, mask-weighted);
 * "group mean" = the term of each group's proportions, averaged over the groups with N_g > 0.
 *
 * Proportions (bo_prop_opts, spec 0 and 3): with q_i = softmax(T z_i),
 *   mean    (default)  pihat_gk = (sum_{i in g} m_i q_ik + s) / (N_g + s)     (s = smooth >= 0)
 *   maxnorm (SFDA ref) r_ik = q_ik / max_j q_ij,  pihat_gk = R_gk / sum_l R_gl,  R_gk = sum_{i in g} m_i r_ik
 *   Gradient: for a group term with d_k = dTerm/dpihat_k (spec 2, 3),
 *     mean:    dL/dq_ik = m_i d_k / (N_g + s)
 *     maxnorm: h_k = (d_k - sum_l pihat_l d_l) / R_g,  dL/dq_il = m_i (h_l / M_i - [l = j*_i] sum_k h_k q_ik / M_i^2),
 *              M_i = q_{i,j*_i} = max_j q_ij (ties: the lowest j; the max is not differentiable there)
 *   then dL/dz_i = T q_i o (g_i - <q_i, g_i>) (softmax backward at temperature T).
 *   SegLossBias uses T = 10, s = 1e-10; SFDA and RePRI T = 1, s = 0.
 *
 * Errors: one line "losses: <what>: <problem>; expected <what>" (BO_ERR_INPUT, PETSC_COMM_SELF),
 * raised before anything is computed: sizes < 0 or k < 1 (k < 2 where a term needs two classes),
 * NULL arrays, non-finite logits, negative or non-finite weights, group ids or labels out of range,
 * bad options.  A rank with n = 0 rows takes part in the collectives and raises nothing.
 * Workspace: each call allocates O(n k) doubles and frees them; no state is kept.
 */
#ifndef BOUNDOPT_LOSSES_H
#define BOUNDOPT_LOSSES_H
#include <petscsys.h>
#include <stdint.h>

#define BO_LABEL_IGNORE 255

typedef struct {
  MPI_Comm       comm;    /* collective on it; PETSC_COMM_SELF for local data */
  int64_t        n, k;    /* local rows, classes */
  const double  *logits;  /* n x k */
  const double  *mask;    /* n weights >= 0, or NULL (all 1) */
  int64_t        ngroups; /* >= 1 */
  const int32_t *group;   /* n ids in 0..ngroups-1, or NULL (all 0) */
} bo_loss_batch;

typedef enum { BO_PROP_MEAN, BO_PROP_MAXNORM } bo_prop_kind;

typedef struct {
  bo_prop_kind kind;        /* BO_PROP_MEAN */
  double       temperature; /* T > 0: proportions of softmax(T z) (1; SegLossBias 10) */
  double       smooth;      /* s >= 0 in the mean estimator (0; SegLossBias 1e-10); must be 0 for maxnorm */
} bo_prop_opts;

/* kind mean, T 1, s 0. */
void bo_prop_defaults(bo_prop_opts *o);

/* p (n x k) = softmax(T z_i) per row, max-shifted (local). */
void bo_softmax_rows(int64_t n, int64_t k, const double *z, double T, double *p);
/* grad_i += scale * T * p_i o (g_i - <p_i, g_i>): chain dL/dp (g) to the logits of p = softmax(T z). */
void bo_softmax_backward(int64_t n, int64_t k, const double *p, const double *g, double T, double scale, double *grad);

/* pihat (ngroups x k, may be NULL) and the group weights N_g (ngroups, may be NULL), exactly as the
 * proportion terms compute them (a group with N_g = 0 gets pihat row 0).  Collective. */
PetscErrorCode bo_loss_proportions(const bo_loss_batch *b, const bo_prop_opts *prop, double *pihat, double *ngroup);

/* Masked weighted cross-entropy, pixel mean over labelled pixels (spec 0 "masked CE", 3, 7):
 *   L = -(1/N_l) sum_{i: y_i != ignore} m_i c_{y_i} log p_{i,y_i},   N_l = sum_{i: y_i != ignore} m_i
 *   dL/dz_i = m_i c_{y_i} (p_i - e_{y_i}) / N_l
 * class_w: k weights c >= 0 or NULL (all 1).  (PyTorch's weighted 'mean' divides by sum m c_y
 * instead; equal when class_w is NULL.)  No labelled pixel (N_l = 0): L = 0, no gradient. */
PetscErrorCode bo_loss_ce(const bo_loss_batch *b, const uint8_t *labels, const double *class_w, double weight, double *value, double *grad);

/* Weighted Shannon entropy, pixel mean (spec 0 "weighted entropy", 1 H_Q, 2, 6):
 *   L = -(1/N) sum_i m_i sum_k w_k p_ik log p_ik,   dL/dp_ik = -m_i w_k (log p_ik + 1) / N
 * log p from the log-softmax (no eps; p log p = 0 where p underflows).  class_w NULL = all 1.
 * Binary logits (0, u): dL/du = -u p (1 - p) / N (spec 1).  Mixed supervision's mean over
 * (pixel, class) is weight / k.  N = 0: L = 0, no gradient. */
PetscErrorCode bo_loss_entropy(const bo_loss_batch *b, const double *class_w, double weight, double *value, double *grad);

/* Marginal (proportion) entropy, group mean (TIM-like, spec 0):
 *   L_g = -sum_k pihat_k log(pihat_k + eps),   d_k = -(log(pihat_k + eps) + pihat_k/(pihat_k + eps))
 * eps = log_eps >= 0; a class with pihat_k = 0 contributes 0 (value and d_k).  Maximise it with a
 * negative weight. */
PetscErrorCode bo_loss_marginal_entropy(const bo_loss_batch *b, const bo_prop_opts *prop, double log_eps, double weight, double *value, double *grad);

typedef enum {
  BO_KL_PRED_PRIOR, /* KL(pihat || prior): SFDA (predicted-first), RePRI (marginal-first) */
  BO_KL_PRIOR_PRED  /* KL(prior || pihat): SegLossBias CE+KL (gt-first) */
} bo_kl_dir;

/* KL between the predicted proportions and a prior, group mean (spec 0 KL rows, 1, 2, 3).  prior:
 * ngroups x k, entries >= 0 (not required to sum to 1: SFDA's tag priors need not).  eps = log_eps:
 *   PRED_PRIOR: L_g = sum_k pihat_k [log(pihat_k + eps) - log(prior_k + eps)]
 *               d_k = log(pihat_k + eps) - log(prior_k + eps) + pihat_k/(pihat_k + eps)
 *               (eps = 0: the spec's log(pihat/prior) + 1).  A zero prior class needs eps > 0
 *               (SFDA: 1e-10, log(1e-10) = -23 strongly suppresses absent classes); prior 0 with
 *               eps 0 is an input error.  pihat_k = 0 contributes 0.
 *   PRIOR_PRED: L_g = sum_k prior_k [log(prior_k + eps) - log(pihat_k + eps)],  d_k = -prior_k/(pihat_k + eps)
 *               A zero prior class contributes 0 (0 log 0); with eps = 0 and s = 0 a predicted
 *               proportion that underflows to 0 against a positive prior gives +inf. */
PetscErrorCode bo_loss_kl_prop(const bo_loss_batch *b, const bo_prop_opts *prop, const double *prior, bo_kl_dir dir, double log_eps, double weight, double *value, double *grad);

/* L1 between predicted and target proportions, group mean (spec 3 'CE+L1'; use T = 10, s = 1e-10):
 *   L_g = (1/k) sum_k |pihat_k - target_k|,   d_k = sign(pihat_k - target_k)/k,   sign(0) = 0
 * so weight alpha gives the spec's alpha mean_{b,k} |.|.  target: ngroups x k. */
PetscErrorCode bo_loss_l1_prop(const bo_loss_batch *b, const bo_prop_opts *prop, const double *target, double weight, double *value, double *grad);

/* Knowledge distillation, teacher -> student, pixel mean (spec 6, the paper form of mixed
 * supervision; project default: teacher detached):
 *   L = (1/N) sum_i m_i KL(q_T,i || q_S,i),  q = softmax(z / T),  N = sum_i m_i
 *   dL/dz_S,i = m_i (q_S,i - q_T,i) / (T N)      (no gradient to the teacher)
 * b->logits are the student's, teacher: n x k (finite).  log q from the max-shifted logits (exact
 * where q underflows); a class with q_T = 0 contributes 0.  The caller's weight carries alpha T^2
 * (reference: w_KL alpha T^2 = 40 over (pixel, class) elements, i.e. 40 / k per pixel).  k >= 2,
 * T > 0.  N = 0: L = 0, no gradient. */
PetscErrorCode bo_loss_kd(const bo_loss_batch *b, const double *teacher, double T, double weight, double *value, double *grad);

typedef enum {
  BO_KD_PAPER, /* KL(q_T || q_S) on softmax(z / T), pixel mean: bo_loss_kd (project default) */
  BO_KD_CODE   /* the reference code's: KL(q(P_S) || q(P_T)) on probabilities P, (pixel, class) mean */
} bo_kd_form;

/* Knowledge distillation with a gradient to each branch (spec 6 "KD variants"): the student's
 * logits are b->logits, the teacher's teacher (n x k, finite); grad (student) and grad_teacher
 * (teacher) are each added to, and each may be NULL (a detached side: the project detaches the
 * teacher); they must be separate buffers.
 *   PAPER: value and student gradient bit for bit those of bo_loss_kd; with KL_i = KL(q_T,i || q_S,i),
 *          dL/dz_T,i = m_i q_T,i o (log(q_T,i / q_S,i) - KL_i) / (T N)
 *   CODE:  the reference's KLDivLoss(log q(P_T), q(P_S)) with P = softmax(z) already probabilities
 *          (a "double softmax"), student || teacher, 'mean' over all (pixel, class) elements:
 *          a_i = softmax(P_S,i / T), b_i = softmax(P_T,i / T),  KL_i = sum_c a_ic log(a_ic / b_ic),
 *          L = (1/(N k)) sum_i m_i KL_i,
 *          dL/dP_S,i = m_i a_i o (log(a_i / b_i) - KL_i) / (T N k),   dL/dP_T,i = m_i (b_i - a_i) / (T N k),
 *          then softmax backward (temperature 1) to each branch's logits.  (The spec's "- L_kd"
 *          is the row's KL_i: the derivative of a mean of rows.)  P / T lies in [0, 1/T], so q is
 *          never far from uniform and the term is small: the reference's flaw, kept on purpose.
 * The caller's weight carries alpha T^2: the reference's w_KL alpha T^2 = 40 is weight 40 for
 * CODE (a mean over elements) and 40 / k for PAPER (a mean over pixels).  k >= 2, T > 0; N = 0:
 * L = 0, no gradient.  Collective on b->comm. */
PetscErrorCode bo_loss_kd_pair(const bo_loss_batch *b, const double *teacher, bo_kd_form form, double T, double weight, double *value, double *grad, double *grad_teacher);

typedef enum { BO_DICE_LINEAR, BO_DICE_LOG } bo_dice_form;

/* Soft Dice per group (spec 0 "soft Dice", 3 Dice baseline; ngroups 1 = batch Dice):
 *   I_gk = sum_{i in g} m_i p_ik y_ik,  P_gk = sum m_i p_ik,  G_gk = sum m_i y_ik  (labelled pixels only)
 *   D_gk = 2 I / (P + G),  dD/dp_ik = m_i (2 y_ik/(P + G) - 2 I/(P + G)^2)
 *   LINEAR: L_g = sum_k w_k (1 - D_gk) / W_g;  LOG: L_g = -sum_k w_k log D_gk / W_g,
 *   W_g = sum of w_k over the classes present in the group (G_gk > 0): empty classes are masked
 *   out (spec 3).  L = mean of L_g over groups with W_g > 0; none: L = 0, no gradient.
 *   class_w: k weights >= 0 or NULL (all 1); w_0 = 0 leaves the background out.  LOG with
 *   D_gk = 0 (no overlap at all) gives +inf. */
PetscErrorCode bo_loss_dice(const bo_loss_batch *b, const uint8_t *labels, const double *class_w, bo_dice_form form, double weight, double *value, double *grad);

/* Fisher-Rao term between p = softmax(b->logits) and q = softmax(logits2) row by row, pixel mean
 * (spec 4, FIRE's code form):
 *   L = (1/N) sum_i m_i arccos(x_i)^2,   x_i = min(BC_i, 1) - guard,   BC_i = sum_k sqrt(p_ik q_ik)
 *   dL/dz'_ij = -(m_i/N) 2 g(x_i) (1/2)(sqrt(p_ij q_ij) - q_ij BC_i),  g(x) = arccos(x)/sqrt(1 - x^2)
 *   dL/dz_ij  = the same with p and q exchanged.
 * d_FR = 2 arccos(BC), so L is the mean of (d_FR/2)^2 (FIRE: beta L; lambda d_FR^2 is weight 4 lambda).
 * guard: FIRE's eps_FR (1e-12 CIFAR, 1e-6 MNIST) or 0 (project: clamp plus series).  Near
 * coincidence (e = 1 - x < 1e-6) g = 1 + e/3 + 2e^2/15.  Numerics: 1 - BC is computed as
 * (1/2) sum_k (sqrt p_k - sqrt q_k)^2 (>= 0, so BC <= 1 holds by construction) and
 * arccos(1 - e) as 2 asin(sqrt(e/2)): both keep full relative precision as p -> q, where
 * 1 - sum sqrt(p q) and acos lose half the digits.  grad (of b->logits) and grad2 (of logits2)
 * may each be NULL (a detached side). */
PetscErrorCode bo_loss_fisher_rao(const bo_loss_batch *b, const double *logits2, double guard, double weight, double *value, double *grad, double *grad2);
/* g(x) = arccos(x)/sqrt(1 - x^2) on [-1, 1) with the series near 1; g(1) = 1.  For tests and FIRE's attack. */
double bo_fr_g(double x);

/* ---------------------------------------------------------------- constraints and shape */

typedef enum { BO_PENALTY_ELB, BO_PENALTY_QUAD } bo_penalty_kind;

/* Penalty of a constraint value z <= 0 (spec 0 "extended log-barrier", 5):
 *   ELB:  psi_t(z) = -(1/t) log(-z)                    if z <= -1/t^2
 *                    t z - (1/t) log(1/t^2) + 1/t      otherwise;   psi' = -1/(t z), or t
 *   QUAD: relu(z)^2 (shape_descriptors' NaivePenalty), derivative 2 relu(z).
 * ELB is C^1 at z = -1/t^2.  t > 0.  *deriv may be NULL.  Local, never fails. */
double bo_penalty(bo_penalty_kind kind, double z, double t, double *deriv);

/* Soft shape descriptors of each class map s_ik = m_i p_ik on an h x w grid (row-major pixels,
 * x = column, y = row, in pixels), spec 5:
 *   size  |s| = sum_i s_i;   centroid c = sum_i s_i (x_i, y_i)/|s|;
 *   spread d_x = sqrt(sum_i s_i (x_i - c_x)^2 / |s|), d_y likewise (per-axis spatial std);
 *   length l = s^T L s = sum over unordered 8-neighbour pairs (s_i - s_j)^2 (L: the graph Laplacian).
 * Gradients: d|s|/ds_i = 1; dc_x/ds_i = (x_i - c_x)/|s|; dd_x/ds_i = ((x_i - c_x)^2 - d_x^2)/(2 d_x |s|);
 * dl/ds = 2 L s (a 3x3 stencil).  Special cases: |s| = 0 gives c = d = 0 with no gradient;
 * d = 0 (mass on one line) gives no spread gradient.  One image, local (images are not split
 * across ranks: the shape tasks are MPI over images). */
enum { BO_SHAPE_SIZE, BO_SHAPE_CX, BO_SHAPE_CY, BO_SHAPE_DX, BO_SHAPE_DY, BO_SHAPE_LENGTH, BO_SHAPE_NDESC };
extern const char *const bo_shape_names[]; /* "size", "cx", "cy", "dx", "dy", "length" */

/* desc: k x BO_SHAPE_NDESC. */
PetscErrorCode bo_shape_descriptors(int64_t h, int64_t w, int64_t k, const double *logits, const double *mask, double *desc);
/* grad (h w x k) += chain of ddesc (k x BO_SHAPE_NDESC: dL/d descriptor) to the logits. */
PetscErrorCode bo_shape_backward(int64_t h, int64_t w, int64_t k, const double *logits, const double *mask, const double *ddesc, double *grad);

/* Bounded-descriptor penalty of one image (spec 5 "penalty"):
 *   L = (1/(h w)) sum_{k, j: active} [psi_t(f_kj - hi_kj) + psi_t(lo_kj - f_kj)]
 * f = bo_shape_descriptors; lo, hi: k x BO_SHAPE_NDESC; a descriptor is active where lo <= hi
 * (pass lo > hi, e.g. lo = 1, hi = 0, to leave it out).  The batch sum and the 1e-2 weight are the
 * caller's.  Local. */
PetscErrorCode bo_loss_shape(int64_t h, int64_t w, int64_t k, const double *logits, const double *mask, const double *lo, const double *hi, bo_penalty_kind kind, double t, double weight, double *value, double *grad);

/* Dense-CRF relaxed Potts (bilateral smoothness) of one h x w image, spec 0 and 7:
 *   L = -sum_k S_k^T W S_k,  S_ik = m_i p_ik,
 *   W_ij = exp(-|pos_i - pos_j|^2/(2 sigma_xy^2) - |I_i - I_j|^2/(2 sigma_rgb^2)) for i != j, W_ii = 0
 *   dL/dS_k = -2 W S_k, then softmax backward.
 * image: h w x c (pixel-major, raw values, e.g. 0-255 RGB), pos = (x, y) in pixels.  A sum, not a
 * mean (F-CAM divides by the batch size through the weight).  Naive O((h w)^2 k): meant for images
 * up to about 64^2; sigma_xy, sigma_rgb > 0.  Local. */
PetscErrorCode bo_loss_crf(int64_t h, int64_t w, int64_t k, const double *logits, const double *mask, int64_t c, const double *image, double sigma_xy, double sigma_rgb, double weight, double *value, double *grad);
#endif
