/* scenes.h - composited grey scenes made from real content: a texture background and one or two
 * object images (Fashion-MNIST) pasted on it, for the segmentation-loss drivers (issue 7).
 *
 * A scene s is a pure function of (seed, stream, s): bo_scene_plan draws every random choice from
 * the Philox stream (seed, id = s, purpose = BO_SCENES_RNG_PURPOSE + stream) in a fixed order, so
 * a scene is the same whichever rank makes it and however many ranks there are.  `stream` keeps
 * sets apart that share a seed (the scenes task: 0 for train, 1 for test).
 *
 * Plan (draw order): texture t uniform in 0..ntex-1; crop corner y0, x0 uniform so that the h x w
 * crop lies inside texture t; object count uniform in min_objects..max_objects; then per object:
 * its row uniform in [row_lo, row_hi) of the caller's object table, its scale uniform among
 * opts.scale[], its corner y, x uniform so that the scaled object lies inside the scene.
 *
 * Render (bo_scene_render, given the plan and the object pixels the caller fetched):
 *   background  the crop rescaled linearly to [bg_lo, bg_hi] (a constant crop: their midpoint);
 *   objects     each side x side object image (values in [0, 1]) resampled to m = round(side scale)
 *               pixels a side by bilinear interpolation at ((u + 0.5)/scale - 0.5) (zero outside
 *               the object), its mask = resampled value > threshold; pasted in plan order, the
 *               scene pixel takes the object value where the mask is set (a later object covers
 *               an earlier one);
 *   labels      mask[i] = 0 for background, 1 + class of the topmost object covering pixel i;
 *   intensity   finally I <- 0.5 + contrast (I^gamma - 0.5) on every pixel (1, 1: unchanged;
 *               the SFDA target domain uses gamma 0.7, contrast 0.8).
 *
 * Contract: pure functions on arrays, local, no MPI, no files.  Errors: one line
 * "scenes: ...; expected ..." (BO_ERR_INPUT) before anything is written.
 */
#ifndef BOUNDOPT_SCENES_H
#define BOUNDOPT_SCENES_H
#include <petscsys.h>
#include <stdint.h>

#define BO_SCENES_MAX_OBJECTS 4
#define BO_SCENES_MAX_SCALES  16
#define BO_SCENES_RNG_PURPOSE 0x5CE0u

typedef struct {
  int64_t h, w;                       /* scene size (96 x 96) */
  double  bg_lo, bg_hi;               /* background intensity range (0.2, 0.8) */
  int     min_objects, max_objects;   /* 1, 2 (at most BO_SCENES_MAX_OBJECTS) */
  int     nscales;                    /* 2 */
  double  scale[BO_SCENES_MAX_SCALES];/* 2, 3: upscaling factors, > 0 */
  double  threshold;                  /* object mask: value > threshold (0.1) */
  double  gamma, contrast;            /* intensity transform (1, 1) */
} bo_scene_opts;

typedef struct {
  int     texture;                           /* index into the caller's textures */
  int64_t crop_y, crop_x;                    /* crop corner in the texture */
  int     nobjects;
  int64_t row[BO_SCENES_MAX_OBJECTS];        /* object rows in [row_lo, row_hi) */
  double  scale[BO_SCENES_MAX_OBJECTS];
  int64_t size[BO_SCENES_MAX_OBJECTS];       /* m = round(side scale) */
  int64_t y[BO_SCENES_MAX_OBJECTS], x[BO_SCENES_MAX_OBJECTS];
} bo_scene_plan;

/* 96 x 96, background [0.2, 0.8], 1-2 objects, scales {2, 3}, threshold 0.1, gamma = contrast = 1. */
void bo_scene_defaults(bo_scene_opts *o);

/* The plan of scene s.  tex_h, tex_w: ntex texture sizes (each >= the scene); side: object side
 * (28); objects are drawn from rows [row_lo, row_hi). */
PetscErrorCode bo_scene_make_plan(const bo_scene_opts *o, uint64_t seed, uint32_t stream, int64_t s, int ntex, const int64_t *tex_h, const int64_t *tex_w, int64_t side, int64_t row_lo, int64_t row_hi, bo_scene_plan *plan);

/* image (h w doubles) and mask (h w) of a planned scene.  tex: ntex grey images (tex_h x tex_w,
 * row-major); objects: plan->nobjects images side x side (the rows plan->row[], in plan order);
 * labels: their classes (0..254; mask stores 1 + class). */
PetscErrorCode bo_scene_render(const bo_scene_opts *o, const bo_scene_plan *plan, int ntex, const int64_t *tex_h, const int64_t *tex_w, const double *const *tex, int64_t side, const float *objects, const int32_t *labels, double *image, uint8_t *mask);
#endif
