/* shapebounds.c - descriptor bounds from a ground-truth mask and the bounded-descriptor objective
 * of a batch of images (see shapebounds.h).  The descriptors, their gradients and the penalty are
 * losses.h's (bo_shape_descriptors, bo_loss_shape); this file only chooses what is bounded and how. */
#include "boundopt/shapebounds.h"
#include "boundopt/error.h"
#include <math.h>
#include <string.h>

#define CHECK(cond, ...) PetscCheck(cond, PETSC_COMM_SELF, BO_ERR_INPUT, __VA_ARGS__)

static const char *const set_names[] = {"size", "centroid", "dist", "length"};

void bo_shape_bound_defaults(bo_shape_bound_opts *o) { *o = (bo_shape_bound_opts){.set = BO_SHAPESET_ALL, .size_margin = 0.1, .centroid_margin = 20, .dist_margin = 20, .length_margin = 0.1}; }

PetscBool bo_shape_set_parse(const char *text, unsigned *set, char *bad, size_t len)
{
  char  buf[256], *save = NULL, *tok;
  *set = 0;
  if (bad && len) bad[0] = '\0';
  if (strlen(text) >= sizeof buf) {
    if (bad && len) snprintf(bad, len, "%.40s...", text);
    return PETSC_FALSE;
  }
  snprintf(buf, sizeof buf, "%s", text);
  for (tok = strtok_r(buf, "+ ", &save); tok; tok = strtok_r(NULL, "+ ", &save)) {
    int j = 0;
    while (j < 4 && strcmp(tok, set_names[j])) j++;
    if (j == 4 || (*set & (1u << j))) {
      if (bad && len) snprintf(bad, len, "%s", tok);
      return PETSC_FALSE;
    }
    *set |= 1u << j;
  }
  if (!*set && bad && len) snprintf(bad, len, "%s", text);
  return *set ? PETSC_TRUE : PETSC_FALSE;
}

void bo_shape_set_name(unsigned set, char *name, size_t len)
{
  if (!len) return;
  name[0] = '\0';
  for (int j = 0; j < 4; j++)
    if (set & (1u << j)) {
      if (name[0]) strncat(name, "+", len - strlen(name) - 1);
      strncat(name, set_names[j], len - strlen(name) - 1);
    }
}

static void inactive(double *lo, double *hi) { *lo = 1, *hi = 0; }

PetscErrorCode bo_shape_bounds(const bo_shape_bound_opts *o, int64_t h, int64_t w, int64_t k, const uint8_t *labels, double *lo, double *hi)
{
  const int64_t n = h * w;
  double       *zero, *ind, *desc;

  PetscFunctionBeginUser;
  CHECK(o && labels && lo && hi, "shapebounds: NULL options, labels or bounds; expected arrays");
  CHECK(o->set && o->set <= BO_SHAPESET_ALL, "shapebounds: descriptor set %u; expected a non-empty subset of size, centroid, dist, length", o->set);
  CHECK(isfinite(o->size_margin) && o->size_margin >= 0, "shapebounds: size margin %g; expected a finite margin >= 0", o->size_margin);
  CHECK(isfinite(o->centroid_margin) && o->centroid_margin >= 0, "shapebounds: centroid margin %g; expected a finite margin >= 0", o->centroid_margin);
  CHECK(isfinite(o->dist_margin) && o->dist_margin >= 0, "shapebounds: dist margin %g; expected a finite margin >= 0", o->dist_margin);
  CHECK(isfinite(o->length_margin) && o->length_margin >= 0, "shapebounds: length margin %g; expected a finite margin >= 0", o->length_margin);
  CHECK(h >= 1 && w >= 1 && h < INT32_MAX / w, "shapebounds: image %lld x %lld; expected h, w >= 1", (long long)h, (long long)w);
  CHECK(k >= 1 && k < 255, "shapebounds: k = %lld; expected 1 <= k < 255 classes", (long long)k);
  for (int64_t i = 0; i < n; i++) CHECK(labels[i] < k, "shapebounds: label[%lld] = %d; expected 0..%lld", (long long)i, (int)labels[i], (long long)(k - 1));
  PetscCall(PetscMalloc3((size_t)n, &zero, (size_t)n, &ind, BO_SHAPE_NDESC, &desc));
  PetscCall(PetscArrayzero(zero, n));
  for (int64_t c = 0; c < k; c++) {
    double *l = lo + c * BO_SHAPE_NDESC, *u = hi + c * BO_SHAPE_NDESC;
    for (int64_t i = 0; i < n; i++) ind[i] = labels[i] == c;
    /* one class with constant logits: p = 1, so s = mask = the indicator, exactly */
    PetscCall(bo_shape_descriptors(h, w, 1, zero, ind, desc));
    for (int j = 0; j < BO_SHAPE_NDESC; j++) inactive(&l[j], &u[j]);
    if (o->set & BO_SHAPESET_SIZE) {
      l[BO_SHAPE_SIZE] = (1 - o->size_margin) * desc[BO_SHAPE_SIZE];
      u[BO_SHAPE_SIZE] = (1 + o->size_margin) * desc[BO_SHAPE_SIZE];
      if (l[BO_SHAPE_SIZE] < 0) l[BO_SHAPE_SIZE] = 0; /* a margin above 100% */
    }
    if (c == 0 && k > 1) continue; /* background: size only */
    if ((o->set & BO_SHAPESET_CENTROID) && desc[BO_SHAPE_SIZE] > 0)
      for (int j = BO_SHAPE_CX; j <= BO_SHAPE_CY; j++) l[j] = desc[j] - o->centroid_margin, u[j] = desc[j] + o->centroid_margin;
    if ((o->set & BO_SHAPESET_DIST) && desc[BO_SHAPE_SIZE] > 0)
      for (int j = BO_SHAPE_DX; j <= BO_SHAPE_DY; j++) l[j] = PetscMax(0.0, desc[j] - o->dist_margin), u[j] = desc[j] + o->dist_margin;
    if (o->set & BO_SHAPESET_LENGTH) {
      l[BO_SHAPE_LENGTH] = PetscMax(0.0, 1 - o->length_margin) * desc[BO_SHAPE_LENGTH];
      u[BO_SHAPE_LENGTH] = (1 + o->length_margin) * desc[BO_SHAPE_LENGTH];
    }
  }
  PetscCall(PetscFree3(zero, ind, desc));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_shape_bound_loss(int64_t nimg, int64_t h, int64_t w, int64_t k, const double *logits, const double *lo, const double *hi, bo_penalty_kind kind, double t, double weight, double *values, double *grad)
{
  const int64_t n = h * w, nd = k * BO_SHAPE_NDESC;

  PetscFunctionBeginUser;
  CHECK(nimg >= 0, "shapebounds: %lld images; expected nimg >= 0", (long long)nimg);
  CHECK(nimg == 0 || (logits && lo && hi), "shapebounds: NULL logits or bounds; expected arrays");
  for (int64_t b = 0; b < nimg; b++) {
    double v;
    PetscCall(bo_loss_shape(h, w, k, logits + b * n * k, NULL, lo + b * nd, hi + b * nd, kind, t, weight, &v, grad ? grad + b * n * k : NULL));
    if (values) values[b] = v;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_shape_bound_violations(int64_t nimg, int64_t h, int64_t w, int64_t k, const double *logits, const double *lo, const double *hi, int64_t *active, int64_t *violated)
{
  const int64_t n = h * w, nd = k * BO_SHAPE_NDESC;
  double       *f;

  PetscFunctionBeginUser;
  CHECK(nimg >= 0 && active && violated, "shapebounds: %lld images or NULL counts; expected nimg >= 0 and two counters", (long long)nimg);
  *active = *violated = 0;
  PetscCall(PetscMalloc1((size_t)nd, &f));
  for (int64_t b = 0; b < nimg; b++) {
    PetscCall(bo_shape_descriptors(h, w, k, logits + b * n * k, NULL, f));
    for (int64_t j = 0; j < nd; j++) {
      const double l = lo[b * nd + j], u = hi[b * nd + j];
      if (!(l <= u)) continue;
      *active += 2;
      *violated += (f[j] > u) + (f[j] < l);
    }
  }
  PetscCall(PetscFree(f));
  PetscFunctionReturn(0);
}
