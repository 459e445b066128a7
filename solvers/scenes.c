/* scenes.c - seeded composited scenes: texture crop + resampled object images (scenes.h). */
#include "boundopt/scenes.h"
#include "boundopt/error.h"
#include "boundopt/rng.h"
#include <math.h>
#include <string.h>

#define CHECK(cond, ...) PetscCheck(cond, PETSC_COMM_SELF, BO_ERR_INPUT, __VA_ARGS__)

void bo_scene_defaults(bo_scene_opts *o)
{
  *o = (bo_scene_opts){.h = 96, .w = 96, .bg_lo = 0.2, .bg_hi = 0.8, .min_objects = 1, .max_objects = 2, .nscales = 2, .scale = {2, 3}, .threshold = 0.1, .gamma = 1, .contrast = 1};
}

static int64_t scaled_side(int64_t side, double scale) { return (int64_t)floor(side * scale + 0.5); }

static PetscErrorCode check_opts(const bo_scene_opts *o, int64_t side)
{
  PetscFunctionBeginUser;
  CHECK(o, "scenes: options are NULL; expected bo_scene_defaults()");
  CHECK(o->h >= 1 && o->w >= 1 && o->h <= 65536 && o->w <= 65536, "scenes: scene %lld x %lld; expected 1..65536 pixels a side", (long long)o->h, (long long)o->w);
  CHECK(isfinite(o->bg_lo) && isfinite(o->bg_hi) && 0 <= o->bg_lo && o->bg_lo <= o->bg_hi && o->bg_hi <= 1, "scenes: background range [%g, %g]; expected 0 <= lo <= hi <= 1", o->bg_lo, o->bg_hi);
  CHECK(o->min_objects >= 0 && o->min_objects <= o->max_objects && o->max_objects <= BO_SCENES_MAX_OBJECTS, "scenes: %d..%d objects; expected 0 <= min <= max <= %d", o->min_objects, o->max_objects, BO_SCENES_MAX_OBJECTS);
  CHECK(o->nscales >= 1 && o->nscales <= BO_SCENES_MAX_SCALES, "scenes: %d scales; expected 1..%d", o->nscales, BO_SCENES_MAX_SCALES);
  CHECK(side >= 1, "scenes: object side %lld; expected >= 1", (long long)side);
  for (int j = 0; j < o->nscales; j++) {
    const int64_t m = isfinite(o->scale[j]) && o->scale[j] > 0 ? scaled_side(side, o->scale[j]) : 0;
    CHECK(m >= 1 && m <= o->h && m <= o->w, "scenes: scale %g makes %lld-pixel objects in a %lld x %lld scene; expected objects of 1 pixel up to the scene size", o->scale[j], (long long)m, (long long)o->h, (long long)o->w);
  }
  CHECK(isfinite(o->threshold) && o->threshold >= 0 && o->threshold < 1, "scenes: mask threshold %g; expected 0 <= threshold < 1", o->threshold);
  CHECK(isfinite(o->gamma) && o->gamma > 0 && isfinite(o->contrast) && o->contrast > 0 && o->contrast <= 1, "scenes: gamma %g, contrast %g; expected gamma > 0 and 0 < contrast <= 1 (intensities stay in [0, 1])", o->gamma, o->contrast);
  PetscFunctionReturn(0);
}

static PetscErrorCode check_textures(const bo_scene_opts *o, int ntex, const int64_t *tex_h, const int64_t *tex_w)
{
  PetscFunctionBeginUser;
  CHECK(ntex >= 1 && tex_h && tex_w, "scenes: %d textures; expected at least one", ntex);
  for (int t = 0; t < ntex; t++) CHECK(tex_h[t] >= o->h && tex_w[t] >= o->w, "scenes: texture %d is %lld x %lld; expected at least the scene size %lld x %lld", t, (long long)tex_h[t], (long long)tex_w[t], (long long)o->h, (long long)o->w);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_scene_make_plan(const bo_scene_opts *o, uint64_t seed, uint32_t stream, int64_t s, int ntex, const int64_t *tex_h, const int64_t *tex_w, int64_t side, int64_t row_lo, int64_t row_hi, bo_scene_plan *plan)
{
  bo_rng r;

  PetscFunctionBeginUser;
  PetscCall(check_opts(o, side));
  PetscCall(check_textures(o, ntex, tex_h, tex_w));
  CHECK(s >= 0, "scenes: scene id %lld; expected >= 0", (long long)s);
  CHECK(0 <= row_lo && row_lo < row_hi, "scenes: object rows [%lld, %lld); expected a non-empty range", (long long)row_lo, (long long)row_hi);
  memset(plan, 0, sizeof *plan);
  bo_rng_init(&r, seed, (uint64_t)s, BO_SCENES_RNG_PURPOSE + stream);
  plan->texture  = (int)bo_rng_below(&r, (uint64_t)ntex);
  plan->crop_y   = (int64_t)bo_rng_below(&r, (uint64_t)(tex_h[plan->texture] - o->h + 1));
  plan->crop_x   = (int64_t)bo_rng_below(&r, (uint64_t)(tex_w[plan->texture] - o->w + 1));
  plan->nobjects = o->min_objects + (int)bo_rng_below(&r, (uint64_t)(o->max_objects - o->min_objects + 1));
  for (int j = 0; j < plan->nobjects; j++) {
    plan->row[j]   = row_lo + (int64_t)bo_rng_below(&r, (uint64_t)(row_hi - row_lo));
    plan->scale[j] = o->scale[bo_rng_below(&r, (uint64_t)o->nscales)];
    plan->size[j]  = scaled_side(side, plan->scale[j]);
    plan->y[j]     = (int64_t)bo_rng_below(&r, (uint64_t)(o->h - plan->size[j] + 1));
    plan->x[j]     = (int64_t)bo_rng_below(&r, (uint64_t)(o->w - plan->size[j] + 1));
  }
  PetscFunctionReturn(0);
}

/* Bilinear sample of a side x side image at (fy, fx), zero outside. */
static double bilinear(const float *img, int64_t side, double fy, double fx)
{
  const double y0 = floor(fy), x0 = floor(fx), ay = fy - y0, ax = fx - x0;
  double       v = 0;
  for (int dy = 0; dy < 2; dy++)
    for (int dx = 0; dx < 2; dx++) {
      const int64_t yy = (int64_t)y0 + dy, xx = (int64_t)x0 + dx;
      if (yy < 0 || yy >= side || xx < 0 || xx >= side) continue;
      v += (dy ? ay : 1 - ay) * (dx ? ax : 1 - ax) * img[yy * side + xx];
    }
  return v;
}

PetscErrorCode bo_scene_render(const bo_scene_opts *o, const bo_scene_plan *plan, int ntex, const int64_t *tex_h, const int64_t *tex_w, const double *const *tex, int64_t side, const float *objects, const int32_t *labels, double *image, uint8_t *mask)
{
  const int64_t h = o->h, w = o->w;
  double        lo = INFINITY, hi = -INFINITY;

  PetscFunctionBeginUser;
  PetscCall(check_opts(o, side));
  PetscCall(check_textures(o, ntex, tex_h, tex_w));
  CHECK(plan && plan->texture >= 0 && plan->texture < ntex && plan->nobjects >= 0 && plan->nobjects <= BO_SCENES_MAX_OBJECTS, "scenes: plan names texture %d with %d objects; expected a plan of bo_scene_make_plan", plan ? plan->texture : -1, plan ? plan->nobjects : -1);
  CHECK(image && mask && tex && (objects || !plan->nobjects) && (labels || !plan->nobjects), "scenes: NULL arrays; expected image, mask, textures, objects and labels");
  const double *t  = tex[plan->texture];
  const int64_t tw = tex_w[plan->texture];
  CHECK(plan->crop_y + h <= tex_h[plan->texture] && plan->crop_x + w <= tw && plan->crop_y >= 0 && plan->crop_x >= 0, "scenes: crop outside the texture; expected a plan of bo_scene_make_plan");
  for (int j = 0; j < plan->nobjects; j++) {
    CHECK(labels[j] >= 0 && labels[j] < 255, "scenes: object %d has class %d; expected 0..254 (the mask stores 1 + class in a byte)", j, (int)labels[j]);
    CHECK(plan->size[j] >= 1 && plan->y[j] >= 0 && plan->x[j] >= 0 && plan->y[j] + plan->size[j] <= h && plan->x[j] + plan->size[j] <= w, "scenes: object %d outside the scene; expected a plan of bo_scene_make_plan", j);
  }
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      const double v = t[(plan->crop_y + y) * tw + plan->crop_x + x];
      CHECK(isfinite(v), "scenes: texture %d pixel (%lld, %lld) is not finite; expected finite intensities", plan->texture, (long long)(plan->crop_y + y), (long long)(plan->crop_x + x));
      lo = PetscMin(lo, v);
      hi = PetscMax(hi, v);
    }
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      const double v = t[(plan->crop_y + y) * tw + plan->crop_x + x];
      image[y * w + x] = hi > lo ? o->bg_lo + (o->bg_hi - o->bg_lo) * (v - lo) / (hi - lo) : 0.5 * (o->bg_lo + o->bg_hi);
      mask[y * w + x]  = 0;
    }
  for (int j = 0; j < plan->nobjects; j++) {
    const float  *obj = objects + (size_t)j * (size_t)(side * side);
    const double  sc  = plan->scale[j];
    const int64_t m   = plan->size[j];
    for (int64_t u = 0; u < m; u++)
      for (int64_t v = 0; v < m; v++) {
        const double val = bilinear(obj, side, (u + 0.5) / sc - 0.5, (v + 0.5) / sc - 0.5);
        if (!(val > o->threshold)) continue;
        const int64_t i = (plan->y[j] + u) * w + plan->x[j] + v;
        image[i] = PetscMin(1.0, val);
        mask[i]  = (uint8_t)(1 + labels[j]);
      }
  }
  if (o->gamma != 1 || o->contrast != 1)
    for (int64_t i = 0; i < h * w; i++) image[i] = 0.5 + o->contrast * (pow(PetscMax(0.0, image[i]), o->gamma) - 0.5);
  PetscFunctionReturn(0);
}
