/* shapebounds.h - shape descriptors as the only supervision (spec losses.md section 5, arXiv
 * 2105.00859): per-image bounds on the descriptors of losses.h (size, centroid, per-axis spread,
 * 8-neighbour length) made from a ground-truth mask and margins, and the bounded-descriptor
 * objective of a batch of images with its exact logit gradient.
 *
 * Descriptor sets (bo_shape_set, a bit mask; names joined by '+', e.g. "size+centroid+length"):
 *   size      |s_k| of every class k (background included, as the reference's PROMISE12 classes {0, 1})
 *   centroid  (c_x, c_y) of the foreground classes k >= 1
 *   dist      per-axis spread (d_x, d_y) of the foreground classes
 *   length    8-neighbour length s^T L s of the foreground classes (the reference: foreground only)
 *
 * Bounds (bo_shape_bounds) from the hard class maps of labels (0..k-1, one image, h x w row-major):
 *   size:     [(1 - m_size) |g|, (1 + m_size) |g|]          m_size relative (spec: 0.10)
 *   centroid: [c - m_c, c + m_c] per axis                   m_c in pixels (spec: 20 px)
 *   dist:     [max(0, d - m_d), d + m_d] per axis           m_d in pixels (spec: 20 px)
 *   length:   [(1 - m_len) l, (1 + m_len) l]                m_len relative (spec: 0.10)
 * with g, c, d, l = bo_shape_descriptors of the class indicator (exactly the soft descriptors of a
 * one-hot map).  A descriptor not in the set, and the centroid and spread of a class absent from
 * the image (undefined), get lo = 1 > hi = 0: losses.h's "inactive".  lo, hi: k x BO_SHAPE_NDESC.
 *
 * Objective (bo_shape_bound_loss), nimg images of h x w pixels, logits nimg h w x k:
 *   L_b = (1/(h w)) sum_{k, j active} [psi(f_bkj - hi_bkj) + psi(lo_bkj - f_bkj)]   (bo_loss_shape)
 *   values[b] = L_b (unweighted), grad += weight dL_b/dz for every image b.
 * psi is the extended log-barrier psi_t or relu^2 (losses.h bo_penalty).  The caller's weight
 * carries the spec's 1e-2 per descriptor and the batch normalisation.  Local: images are never
 * split across ranks; the caller sums values[] in a fixed order (rank-count independent).
 *
 * Errors: one line "shapebounds: ...; expected ..." (BO_ERR_INPUT, PETSC_COMM_SELF): negative or
 * non-finite margins, labels >= k, an empty set, and the errors of losses.h.
 */
#ifndef BOUNDOPT_SHAPEBOUNDS_H
#define BOUNDOPT_SHAPEBOUNDS_H
#include "boundopt/losses.h"

typedef enum { BO_SHAPESET_SIZE = 1, BO_SHAPESET_CENTROID = 2, BO_SHAPESET_DIST = 4, BO_SHAPESET_LENGTH = 8 } bo_shape_set_bit;
#define BO_SHAPESET_ALL 15u

typedef struct {
  unsigned set;             /* BO_SHAPESET_* bits, not 0 */
  double   size_margin;     /* relative, >= 0 (0.1) */
  double   centroid_margin; /* pixels, >= 0 (20) */
  double   dist_margin;     /* pixels, >= 0 (20) */
  double   length_margin;   /* relative, >= 0 (0.1) */
} bo_shape_bound_opts;

/* All four descriptors, the spec's margins: 10%, 20 px, 20 px, 10%. */
void bo_shape_bound_defaults(bo_shape_bound_opts *o);

/* "size+centroid+dist+length" (any order, each once) -> bits.  PETSC_FALSE on an unknown or
 * repeated name or an empty set; bad (len bytes) then holds the offending part. */
PetscBool bo_shape_set_parse(const char *text, unsigned *set, char *bad, size_t len);
/* The canonical name of a set ("size+centroid"), in the order size, centroid, dist, length. */
void bo_shape_set_name(unsigned set, char *name, size_t len);

/* lo, hi (k x BO_SHAPE_NDESC) of one image.  Local. */
PetscErrorCode bo_shape_bounds(const bo_shape_bound_opts *o, int64_t h, int64_t w, int64_t k, const uint8_t *labels, double *lo, double *hi);

/* values (nimg, may be NULL) and grad (nimg h w x k, +=, may be NULL) of the bounded-descriptor
 * objective; lo, hi: nimg x k x BO_SHAPE_NDESC.  Local. */
PetscErrorCode bo_shape_bound_loss(int64_t nimg, int64_t h, int64_t w, int64_t k, const double *logits, const double *lo, const double *hi, bo_penalty_kind kind, double t, double weight, double *values, double *grad);

/* Active constraints (2 per active descriptor: below hi and above lo) and those the soft
 * descriptors of logits violate, summed over the nimg images.  Local. */
PetscErrorCode bo_shape_bound_violations(int64_t nimg, int64_t h, int64_t w, int64_t k, const double *logits, const double *lo, const double *hi, int64_t *active, int64_t *violated);
#endif
