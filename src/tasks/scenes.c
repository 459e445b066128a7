/* scenes.c - task `scenes`: composited grey scenes from real content (texture photographs and
 * Fashion-MNIST objects), seeded and rank-count independent, so every benchmark can be regenerated.
 *
 *   task: scenes
 *   input: jobs/data/fmnist.h5            # the imported Fashion-MNIST features (/features N x 784, /labels)
 *   output: jobs/data/scenes-train.h5
 *   seed: 2026
 *   scenes: {count: 2000, split: train, object_rows: "0-59999",
 *            textures: "jobs/data/textures/brick.png,jobs/data/textures/grass.png", features: true}
 *
 * Scene s is drawn from the Philox stream (seed, s, purpose of the split) (scenes.h), so the file is
 * identical at any rank count; rank r makes the contiguous scenes [S r/P, S (r+1)/P), reads only the
 * object rows they use, and writes its rows of every dataset.
 *
 * Results (rows = scenes, the first dimension; seg_data.h reads them):
 *   /images        S x H x W float32 (attributes height, width, as before)
 *   /masks         S x H x W uint8: 0 background, 1 + Fashion-MNIST class of the topmost object
 *   /fg_fraction   S float64: fraction of pixels with mask > 0
 *   /texture       S int32: index into the root attribute `textures`
 *   /objects/{label (int32, -1 = none), row (int64, row of the input, -1 = none), scale (float64),
 *             corner (int64 y, x per object)}: S x max_objects each
 *   /features      (features: true) S x H x W x F float32, channel last (attributes height,
 *                  width, channels): features[s] is bo_feat2d_build of the scene (features2d.h);
 *   /feature_names F strings
 *   root attributes: source (the provenance text), seed, split, object_rows, scales, gamma, contrast.
 */
#include "boundopt/dataset.h"
#include "boundopt/error.h"
#include "boundopt/features2d.h"
#include "boundopt/h5.h"
#include "boundopt/image.h"
#include "boundopt/memory.h"
#include "boundopt/results.h"
#include "boundopt/scenes.h"
#include "boundopt/tasks.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXTURES 16

typedef struct {
  PetscInt      count, size, min_objects, max_objects, filters;
  char          split[16], rows[64], textures[4096], scales[256], sigmas[256];
  PetscReal     bg_lo, bg_hi, threshold, gamma, contrast;
  PetscBool     features, position;
  int64_t       row_lo, row_hi; /* object rows [lo, hi) */
  uint32_t      stream;
  bo_scene_opts so;
  bo_feat2d_opts fo;
} scenes_params;

static PetscErrorCode read_options(bo_job *job, scenes_params *p)
{
  PetscFunctionBeginUser;
  p->count = 2000; p->size = 96; p->min_objects = 1; p->max_objects = 2;
  p->bg_lo = 0.2; p->bg_hi = 0.8; p->threshold = 0.1; p->gamma = 1; p->contrast = 1;
  p->position = PETSC_TRUE;
  snprintf(p->split, sizeof p->split, "train");
  snprintf(p->scales, sizeof p->scales, "2,3");
  snprintf(p->sigmas, sizeof p->sigmas, "1,2,4");
  PetscOptionsBegin(job->comm, "scenes_", "Task scenes: composited texture + Fashion-MNIST scenes", "boundopt");
  PetscCall(PetscOptionsInt("-count", "Number of scenes", "", p->count, &p->count, NULL));
  PetscCall(PetscOptionsString("-split", "train or test: separate random streams under one seed", "", p->split, p->split, sizeof p->split, NULL));
  PetscCall(PetscOptionsString("-object_rows", "Rows of the input the objects come from, \"lo-hi\" inclusive (default: all)", "", p->rows, p->rows, sizeof p->rows, NULL));
  PetscCall(PetscOptionsString("-textures", "Background textures (grey PNG), comma separated; each scene crops one", "", p->textures, p->textures, sizeof p->textures, NULL));
  PetscCall(PetscOptionsInt("-size", "Scene side in pixels", "", p->size, &p->size, NULL));
  PetscCall(PetscOptionsInt("-min_objects", "Fewest objects per scene", "", p->min_objects, &p->min_objects, NULL));
  PetscCall(PetscOptionsInt("-max_objects", "Most objects per scene", "", p->max_objects, &p->max_objects, NULL));
  PetscCall(PetscOptionsString("-scale", "Object upscaling factors, comma separated: one drawn per object", "", p->scales, p->scales, sizeof p->scales, NULL));
  PetscCall(PetscOptionsReal("-threshold", "Object mask: pixel > threshold", "", p->threshold, &p->threshold, NULL));
  PetscCall(PetscOptionsReal("-bg_lo", "Background intensity range: low end", "", p->bg_lo, &p->bg_lo, NULL));
  PetscCall(PetscOptionsReal("-bg_hi", "Background intensity range: high end", "", p->bg_hi, &p->bg_hi, NULL));
  PetscCall(PetscOptionsReal("-gamma", "Intensity transform I <- 0.5 + contrast (I^gamma - 0.5): gamma (target domain 0.7)", "", p->gamma, &p->gamma, NULL));
  PetscCall(PetscOptionsReal("-contrast", "Intensity transform: contrast (target domain 0.8)", "", p->contrast, &p->contrast, NULL));
  PetscCall(PetscOptionsBool("-features", "Also write the per-pixel feature fields /features (features2d.h)", "", p->features, &p->features, NULL));
  PetscCall(PetscOptionsString("-feat_sigma", "Feature scales in pixels, comma separated", "", p->sigmas, p->sigmas, sizeof p->sigmas, NULL));
  PetscCall(PetscOptionsInt("-feat_filters", "Random dilated 3x3 filters per scale", "", p->filters, &p->filters, NULL));
  PetscCall(PetscOptionsBool("-feat_position", "Normalised x, y feature channels", "", p->position, &p->position, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscErrorCode check_options(bo_job *job, scenes_params *p, int64_t n, int64_t d)
{
  int    ns = 0;
  double sig[BO_FEAT2D_MAX_SCALES];
  char  *end;

  PetscFunctionBeginUser;
  PetscCheck(p->count >= 1, job->comm, BO_ERR_INPUT, "option -scenes_count: %d; expected at least one scene", (int)p->count);
  PetscCheck(!strcmp(p->split, "train") || !strcmp(p->split, "test"), job->comm, BO_ERR_INPUT, "option -scenes_split: '%s'; expected train or test", p->split);
  p->stream = strcmp(p->split, "train") ? 1 : 0;
  PetscCheck(p->size >= 8 && p->size <= 4096, job->comm, BO_ERR_INPUT, "option -scenes_size: %d; expected 8..4096 pixels", (int)p->size);
  p->row_lo = 0; p->row_hi = n;
  if (p->rows[0]) {
    long long a = strtoll(p->rows, &end, 10), b = -1;
    if (*end == '-') b = strtoll(end + 1, &end, 10);
    PetscCheck(!*end && 0 <= a && a <= b && b < n, job->comm, BO_ERR_INPUT, "option -scenes_object_rows: '%s' with %lld input rows; expected \"lo-hi\" with 0 <= lo <= hi < %lld", p->rows, (long long)n, (long long)n);
    p->row_lo = a; p->row_hi = b + 1;
  }
  int64_t side = (int64_t)floor(sqrt((double)d) + 0.5);
  PetscCheck(side * side == d, job->comm, BO_ERR_INPUT, "%s: rows of %lld values; expected square object images (28 x 28 = 784 for Fashion-MNIST)", job->input, (long long)d);
  bo_scene_defaults(&p->so);
  p->so.h = p->so.w = p->size;
  p->so.bg_lo = p->bg_lo; p->so.bg_hi = p->bg_hi;
  p->so.min_objects = (int)p->min_objects; p->so.max_objects = (int)p->max_objects;
  p->so.threshold = p->threshold; p->so.gamma = p->gamma; p->so.contrast = p->contrast;
  PetscCall(bo_job_parse_reals(job, "scenes_scale", p->scales, -INFINITY, BO_SCENES_MAX_SCALES, p->so.scale, &p->so.nscales));
  PetscCheck(p->min_objects >= 0 && p->min_objects <= p->max_objects && p->max_objects <= BO_SCENES_MAX_OBJECTS, job->comm, BO_ERR_INPUT, "option -scenes_min_objects/max_objects: %d/%d; expected 0 <= min <= max <= %d", (int)p->min_objects, (int)p->max_objects, BO_SCENES_MAX_OBJECTS);
  for (int j = 0; j < p->so.nscales; j++) {
    const double m = side * p->so.scale[j];
    PetscCheck(p->so.scale[j] > 0 && m >= 1 && m < p->size + 0.5, job->comm, BO_ERR_INPUT, "option -scenes_scale: %g makes %g-pixel objects in %d-pixel scenes; expected 1/%lld <= scale <= %g", p->so.scale[j], m, (int)p->size, (long long)side, p->size / (double)side);
  }
  PetscCheck(p->threshold >= 0 && p->threshold < 1, job->comm, BO_ERR_INPUT, "option -scenes_threshold: %g; expected 0 <= threshold < 1", (double)p->threshold);
  PetscCheck(0 <= p->bg_lo && p->bg_lo <= p->bg_hi && p->bg_hi <= 1, job->comm, BO_ERR_INPUT, "option -scenes_bg_lo/bg_hi: [%g, %g]; expected 0 <= lo <= hi <= 1", (double)p->bg_lo, (double)p->bg_hi);
  PetscCheck(p->gamma > 0 && p->contrast > 0 && p->contrast <= 1, job->comm, BO_ERR_INPUT, "option -scenes_gamma/contrast: %g/%g; expected gamma > 0 and 0 < contrast <= 1", (double)p->gamma, (double)p->contrast);
  bo_feat2d_defaults(&p->fo);
  if (p->features) {
    PetscCall(bo_job_parse_reals(job, "scenes_feat_sigma", p->sigmas, -INFINITY, BO_FEAT2D_MAX_SCALES, sig, &ns));
    p->fo.nscales = ns;
    for (int s = 0; s < ns; s++) {
      PetscCheck(sig[s] >= 0 && ceil(3 * PetscMax(sig[s], 1.0)) < p->size, job->comm, BO_ERR_INPUT, "option -scenes_feat_sigma: %g; expected 0 <= sigma with 3 sigma below the scene size %d", sig[s], (int)p->size);
      p->fo.sigma[s] = sig[s];
    }
    PetscCheck(p->filters >= 0 && p->filters <= 64, job->comm, BO_ERR_INPUT, "option -scenes_feat_filters: %d; expected 0..64", (int)p->filters);
    p->fo.nfilters = (int)p->filters;
    p->fo.position = p->position;
    p->fo.seed     = (uint64_t)job->seed;
  }
  PetscFunctionReturn(0);
}

typedef struct {
  int      n;
  int64_t  h[MAX_TEXTURES], w[MAX_TEXTURES];
  double  *pix[MAX_TEXTURES];
  char   **names;
} texture_set;

/* Every rank reads every texture (a few 512 x 512 grey images); colour is refused. */
static PetscErrorCode read_textures(bo_job *job, const scenes_params *p, texture_set *t)
{
  bo_image img;
  int      n;

  PetscFunctionBeginUser;
  PetscCheck(p->textures[0], job->comm, BO_ERR_INPUT, "option -scenes_textures: missing; expected grey PNG textures, comma separated");
  PetscCall(PetscStrToArray(p->textures, ',', &n, &t->names));
  PetscCheck(n >= 1 && n <= MAX_TEXTURES, job->comm, BO_ERR_INPUT, "option -scenes_textures: %d files; expected 1..%d", n, MAX_TEXTURES);
  t->n = n;
  for (int k = 0; k < n; k++) {
    PetscCall(bo_image_read(job->comm, t->names[k], &img));
    PetscCheck(img.c == 1, job->comm, BO_ERR_INPUT, "%s: %d channels; expected a grey texture", t->names[k], img.c);
    PetscCheck(img.h >= p->size && img.w >= p->size, job->comm, BO_ERR_INPUT, "%s: %lld x %lld; expected a texture of at least the scene size %d x %d", t->names[k], (long long)img.h, (long long)img.w, (int)p->size, (int)p->size);
    t->h[k] = img.h; t->w[k] = img.w; t->pix[k] = img.data; /* owned from here */
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode free_textures(texture_set *t)
{
  PetscFunctionBeginUser;
  for (int k = 0; k < t->n; k++) PetscCall(PetscFree(t->pix[k]));
  PetscCall(PetscStrToArrayDestroy(t->n, t->names));
  PetscFunctionReturn(0);
}

/* The object images and labels of this rank's plans, read row by row from the input (each rank
 * opens it alone: the rows are scattered, a few per scene). */
static PetscErrorCode read_objects_local(const char *path, hid_t f, int64_t nlocal, const bo_scene_plan *plan, int maxobj, int64_t d, float *obj, int32_t *lab)
{
  PetscFunctionBeginUser;
  for (int64_t s = 0; s < nlocal; s++)
    for (int j = 0; j < plan[s].nobjects; j++) {
      const int64_t r = plan[s].row[j], q = s * maxobj + j;
      PetscCall(bo_h5_read_rows(f, "/features", H5T_NATIVE_FLOAT, d, r, r + 1, obj + q * d));
      PetscCall(bo_h5_read_rows(f, "/labels", H5T_NATIVE_INT32, 1, r, r + 1, lab + q));
      PetscCheck(lab[q] >= 0 && lab[q] <= 254, PETSC_COMM_SELF, BO_ERR_INPUT, "%s: label %d at row %lld; expected classes 0..254", path, (int)lab[q], (long long)r);
      for (int64_t k = 0; k < d; k++) PetscCheck(isfinite(obj[q * d + k]), PETSC_COMM_SELF, BO_ERR_INPUT, "%s: row %lld is not finite; expected finite object images", path, (long long)r);
    }
  PetscFunctionReturn(0);
}

static PetscErrorCode read_objects(bo_job *job, int64_t nlocal, const bo_scene_plan *plan, int maxobj, int64_t d, float *obj, int32_t *lab)
{
  hid_t          f = -1;
  PetscErrorCode ierr;

  PetscFunctionBeginUser;
  PetscCall(bo_error_try_begin());
  ierr = bo_h5_open_read(PETSC_COMM_SELF, job->input, &f);
  if (!ierr) ierr = read_objects_local(job->input, f, nlocal, plan, maxobj, d, obj, lab);
  if (f >= 0) H5Fclose(f);
  PetscCall(bo_error_try_end(job->comm, ierr));
  PetscFunctionReturn(0);
}

static PetscErrorCode write_attributes(bo_job *job, const scenes_params *p, const texture_set *t, int64_t nf, hid_t file)
{
  char text[8192];

  PetscFunctionBeginUser;
  snprintf(text, sizeof text,
           "composited scenes from real content: background = a random %dx%d crop of a grey texture photograph (%.2000s; scikit-image data, CC0), "
           "rescaled to [%g, %g]; %d-%d objects = Fashion-MNIST images (Zalando Research, MIT; rows %lld-%lld of %s), upscaled by one of {%s} "
           "(bilinear), mask = pixel > %g, pasted at random positions; intensity 0.5 + %g (I^%g - 0.5); seed %lld, split %s",
           (int)p->size, (int)p->size, p->textures, (double)p->bg_lo, (double)p->bg_hi, (int)p->min_objects, (int)p->max_objects, (long long)p->row_lo, (long long)(p->row_hi - 1), job->input, p->scales, (double)p->threshold, (double)p->contrast, (double)p->gamma, (long long)job->seed, p->split);
  PetscCall(bo_h5_attr_write_string(file, "/", "source", text));
  PetscCall(bo_h5_attr_write_string(file, "/", "split", p->split));
  PetscCall(bo_h5_attr_write_string(file, "/", "textures", p->textures));
  PetscCall(bo_h5_attr_write_string(file, "/", "scales", p->scales));
  PetscCall(bo_h5_attr_write_string(file, "/", "masks", "0 background, 1 + class of the topmost object"));
  PetscCall(bo_h5_attr_write_int64(file, "/", "seed", job->seed));
  PetscCall(bo_h5_attr_write_int64(file, "/", "object_row_lo", p->row_lo));
  PetscCall(bo_h5_attr_write_int64(file, "/", "object_row_hi", p->row_hi));
  PetscCall(bo_h5_attr_write_double(file, "/", "gamma", p->gamma));
  PetscCall(bo_h5_attr_write_double(file, "/", "contrast", p->contrast));
  PetscCall(bo_h5_attr_write_int64(file, "/images", "height", p->size));
  PetscCall(bo_h5_attr_write_int64(file, "/images", "width", p->size));
  if (nf) {
    char **names;
    PetscCall(bo_h5_attr_write_int64(file, "/features", "height", p->size));
    PetscCall(bo_h5_attr_write_int64(file, "/features", "width", p->size));
    PetscCall(bo_h5_attr_write_int64(file, "/features", "channels", nf));
    PetscCall(PetscMalloc1(nf, &names));
    for (int64_t j = 0; j < nf; j++) {
      PetscCall(PetscMalloc1(64, &names[j]));
      PetscCall(bo_feat2d_channel_name(&p->fo, 1, j, names[j], 64));
    }
    PetscCall(bo_h5_write_strings(file, "/feature_names", nf, names));
    for (int64_t j = 0; j < nf; j++) PetscCall(PetscFree(names[j]));
    PetscCall(PetscFree(names));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_scenes(bo_job *job)
{
  scenes_params  p = {0};
  texture_set    tex = {0};
  bo_results     res;
  bo_memory_plan mem = {.task = "scenes"};
  bo_scene_plan *plan;
  PetscBool      stop, has_labels;
  int64_t        n, d, lo, hi, nlocal, npix, nf = 0, maxobj, side;
  float         *obj, *images, *feat = NULL;
  int32_t       *lab, *olab, *texid;
  int64_t       *orow, *corner;
  double        *oscale, *fgfrac, *img, *field = NULL;
  uint8_t       *masks;
  hid_t          in;

  PetscFunctionBeginUser;
  PetscCall(read_options(job, &p));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) PetscFunctionReturn(0);
  PetscCall(bo_job_require(job, "input", job->input, "the imported Fashion-MNIST features file (/features, /labels)"));
  PetscCall(bo_job_require(job, "output", job->output, "the scenes file to write"));
  PetscCall(bo_dataset_probe(job->comm, job->input, &n, &d));
  PetscCall(bo_h5_open_read(job->comm, job->input, &in));
  PetscCall(bo_h5_exists(in, "/labels", &has_labels));
  PetscCall(bo_h5_close(&in));
  PetscCheck(has_labels, job->comm, BO_ERR_INPUT, "%s: no /labels; expected the object classes (an imported Fashion-MNIST file)", job->input);
  PetscCall(check_options(job, &p, n, d));
  side   = (int64_t)floor(sqrt((double)d) + 0.5);
  maxobj = p.max_objects > 0 ? p.max_objects : 1;
  npix   = p.size * p.size;
  if (p.features) PetscCall(bo_feat2d_channels(&p.fo, 1, &nf));
  lo     = p.count * job->rank / job->size;
  hi     = p.count * (job->rank + 1) / job->size;
  nlocal = hi - lo;
  bo_memory_plan_add(&mem, "scenes (images, masks)", (double)(nlocal + 1) * (double)npix * 5);
  bo_memory_plan_add(&mem, "feature fields", (double)(nlocal + 1) * (double)npix * (double)nf * 4 + (double)npix * (double)nf * 8);
  bo_memory_plan_add(&mem, "object images", (double)(nlocal + 1) * (double)maxobj * (double)d * 4);
  PetscCall(bo_memory_preflight(job->comm, &mem, job->memory_limit));
  PetscCall(bo_results_create(job, job->output, &res));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(read_textures(job, &p, &tex));
  PetscCall(PetscMalloc1(PetscMax(1, nlocal), &plan));
  PetscCall(bo_error_try_begin());
  PetscErrorCode ierr = 0;
  for (int64_t s = 0; s < nlocal && !ierr; s++) ierr = bo_scene_make_plan(&p.so, (uint64_t)job->seed, p.stream, lo + s, tex.n, tex.h, tex.w, side, p.row_lo, p.row_hi, &plan[s]);
  PetscCall(bo_error_try_end(job->comm, ierr));
  PetscCall(PetscMalloc2(PetscMax(1, nlocal * maxobj * d), &obj, PetscMax(1, nlocal * maxobj), &lab));
  PetscCall(read_objects(job, nlocal, plan, (int)maxobj, d, obj, lab));
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  PetscCall(PetscMalloc4(PetscMax(1, nlocal * npix), &images, PetscMax(1, nlocal * npix), &masks, npix, &img, PetscMax(1, nlocal), &fgfrac));
  PetscCall(PetscMalloc5(PetscMax(1, nlocal * maxobj), &olab, PetscMax(1, nlocal * maxobj), &orow, PetscMax(1, nlocal * maxobj), &oscale, PetscMax(1, 2 * nlocal * maxobj), &corner, PetscMax(1, nlocal), &texid));
  if (nf) PetscCall(PetscMalloc2(PetscMax(1, nlocal * npix * nf), &feat, npix * nf, &field));
  PetscCall(bo_error_try_begin());
  for (int64_t s = 0; s < nlocal && !ierr; s++) {
    int64_t fg = 0;
    ierr = bo_scene_render(&p.so, &plan[s], tex.n, tex.h, tex.w, (const double *const *)tex.pix, side, obj + s * maxobj * d, lab + s * maxobj, img, masks + s * npix);
    if (!ierr && nf) ierr = bo_feat2d_build(&p.fo, p.size, p.size, 1, img, field);
    if (ierr) break;
    for (int64_t i = 0; i < npix; i++) {
      images[s * npix + i] = (float)img[i];
      fg += masks[s * npix + i] > 0;
    }
    for (int64_t i = 0; i < npix * nf; i++) feat[s * npix * nf + i] = (float)field[i];
    fgfrac[s] = (double)fg / (double)npix;
    texid[s]  = plan[s].texture;
    for (int j = 0; j < maxobj; j++) {
      const PetscBool on = j < plan[s].nobjects;
      olab[s * maxobj + j]           = on ? lab[s * maxobj + j] : -1;
      orow[s * maxobj + j]           = on ? plan[s].row[j] : -1;
      oscale[s * maxobj + j]         = on ? plan[s].scale[j] : 0;
      corner[2 * (s * maxobj + j)]     = on ? plan[s].y[j] : -1;
      corner[2 * (s * maxobj + j) + 1] = on ? plan[s].x[j] : -1;
    }
  }
  PetscCall(bo_error_try_end(job->comm, ierr));
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
  const hsize_t shape[4] = {(hsize_t)p.count, (hsize_t)p.size, (hsize_t)p.size, (hsize_t)nf}; /* S x H x W (x F) */
  PetscCall(bo_h5_write_rows_nd(res.file, "/images", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 3, shape, lo, hi, images));
  PetscCall(bo_h5_write_rows_nd(res.file, "/masks", H5T_NATIVE_UINT8, H5T_STD_U8LE, 3, shape, lo, hi, masks));
  PetscCall(bo_h5_write_rows(res.file, "/fg_fraction", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, p.count, 1, lo, hi, fgfrac));
  PetscCall(bo_h5_write_rows(res.file, "/texture", H5T_NATIVE_INT32, H5T_STD_I32LE, p.count, 1, lo, hi, texid));
  PetscCall(bo_h5_write_rows(res.file, "/objects/label", H5T_NATIVE_INT32, H5T_STD_I32LE, p.count, maxobj, lo, hi, olab));
  PetscCall(bo_h5_write_rows(res.file, "/objects/row", H5T_NATIVE_INT64, H5T_STD_I64LE, p.count, maxobj, lo, hi, orow));
  PetscCall(bo_h5_write_rows(res.file, "/objects/scale", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, p.count, maxobj, lo, hi, oscale));
  PetscCall(bo_h5_write_rows(res.file, "/objects/corner", H5T_NATIVE_INT64, H5T_STD_I64LE, p.count, 2 * maxobj, lo, hi, corner));
  if (nf) PetscCall(bo_h5_write_rows_nd(res.file, "/features", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 4, shape, lo, hi, feat));
  PetscCall(write_attributes(job, &p, &tex, nf, res.file));
  {
    double sum = 0, tot;
    for (int64_t s = 0; s < nlocal; s++) sum += fgfrac[s] * npix;
    PetscCallMPI(MPI_Allreduce(&sum, &tot, 1, MPI_DOUBLE, MPI_SUM, job->comm)); /* integer-valued: exact */
    PetscCall(bo_h5_attr_write_double(res.file, "/", "mean_fg_fraction", tot / ((double)npix * (double)p.count)));
    PetscCall(PetscPrintf(job->comm, "scenes: %lld %s scenes %dx%d, %d texture(s), objects from rows %lld-%lld, mean foreground %.2f%%%s\n", (long long)p.count, p.split, (int)p.size, (int)p.size, tex.n, (long long)p.row_lo, (long long)(p.row_hi - 1), 100 * tot / ((double)npix * (double)p.count), nf ? ", with feature fields" : ""));
  }
  PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
  PetscCall(bo_results_commit(&res, job));

  if (nf) PetscCall(PetscFree2(feat, field));
  PetscCall(PetscFree5(olab, orow, oscale, corner, texid));
  PetscCall(PetscFree4(images, masks, img, fgfrac));
  PetscCall(PetscFree2(obj, lab));
  PetscCall(PetscFree(plan));
  PetscCall(free_textures(&tex));
  PetscFunctionReturn(0);
}
