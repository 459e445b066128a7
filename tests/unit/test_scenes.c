/* test_scenes.c - properties of the composited scenes (scenes.h) and of the SegLossBias compound
 * losses and per-image metrics the drivers build on them (segloss.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <petscsys.h>

#include "boundopt/error.h"
#include "boundopt/repri.h"
#include "boundopt/rng.h"
#include "boundopt/scenes.h"
#include "boundopt/segloss.h"
#include "unit_support.h"

enum { SIDE = 28, TEXN = 2 };
static const int64_t tex_h[TEXN] = {120, 100}, tex_w[TEXN] = {110, 130};

/* Two random textures and 10 blob objects (a filled disk of radius 9 with value 0.9, class = row). */
static void fixtures(double **tex, float *objects, int32_t *labels)
{
  bo_rng r;
  bo_rng_init(&r, 7, 0, 0);
  for (int t = 0; t < TEXN; t++) {
    tex[t] = malloc(sizeof(double) * (size_t)(tex_h[t] * tex_w[t]));
    for (int64_t i = 0; i < tex_h[t] * tex_w[t]; i++) tex[t][i] = bo_rng_uniform(&r);
  }
  for (int k = 0; k < 10; k++) {
    labels[k] = k;
    for (int y = 0; y < SIDE; y++)
      for (int x = 0; x < SIDE; x++) objects[(k * SIDE + y) * SIDE + x] = (y - 13.5) * (y - 13.5) + (x - 13.5) * (x - 13.5) <= 81 ? 0.9f : 0.0f;
  }
}

static void a_scene_is_a_pure_function_of_seed_and_id(void **state)
{
  (void)state;
  bo_scene_opts o;
  bo_scene_plan a, b, c;
  bo_scene_defaults(&o);
  OK(bo_scene_make_plan(&o, 2026, 0, 17, TEXN, tex_h, tex_w, SIDE, 0, 10, &a));
  OK(bo_scene_make_plan(&o, 2026, 0, 3, TEXN, tex_h, tex_w, SIDE, 0, 10, &c)); /* another scene in between */
  OK(bo_scene_make_plan(&o, 2026, 0, 17, TEXN, tex_h, tex_w, SIDE, 0, 10, &b));
  assert_memory_equal(&a, &b, sizeof a);
  int differ = 0;
  for (int s = 0; s < 20; s++) {
    OK(bo_scene_make_plan(&o, 2026, 1, s, TEXN, tex_h, tex_w, SIDE, 0, 10, &b));
    OK(bo_scene_make_plan(&o, 2026, 0, s, TEXN, tex_h, tex_w, SIDE, 0, 10, &c));
    differ += memcmp(&b, &c, sizeof b) != 0;
    /* every draw lies in its documented range */
    assert_true(c.texture >= 0 && c.texture < TEXN && c.crop_y + 96 <= tex_h[c.texture] && c.crop_x + 96 <= tex_w[c.texture]);
    assert_true(c.nobjects >= 1 && c.nobjects <= 2);
    for (int j = 0; j < c.nobjects; j++) {
      assert_true(c.row[j] >= 0 && c.row[j] < 10 && (c.scale[j] == 2 || c.scale[j] == 3) && c.size[j] == (int64_t)(SIDE * c.scale[j]));
      assert_true(c.y[j] >= 0 && c.x[j] >= 0 && c.y[j] + c.size[j] <= 96 && c.x[j] + c.size[j] <= 96);
    }
  }
  assert_true(differ >= 19); /* the test stream is another stream */
}

static void rendered_masks_label_object_pixels_and_the_background_spans_its_range(void **state)
{
  (void)state;
  bo_scene_opts o;
  bo_scene_plan pl;
  double       *tex[TEXN], img[96 * 96], img2[96 * 96];
  float         objects[10 * SIDE * SIDE], sel[2 * SIDE * SIDE];
  int32_t       labels[10], lab[2];
  uint8_t       mask[96 * 96], mask2[96 * 96];

  fixtures(tex, objects, labels);
  bo_scene_defaults(&o);
  for (int s = 0; s < 10; s++) {
    OK(bo_scene_make_plan(&o, 5, 0, s, TEXN, tex_h, tex_w, SIDE, 0, 10, &pl));
    for (int j = 0; j < pl.nobjects; j++) {
      memcpy(sel + j * SIDE * SIDE, objects + pl.row[j] * SIDE * SIDE, sizeof(float) * SIDE * SIDE);
      lab[j] = labels[pl.row[j]];
    }
    OK(bo_scene_render(&o, &pl, TEXN, tex_h, tex_w, (const double *const *)tex, SIDE, sel, lab, img, mask));
    double lo = 1, hi = 0;
    int64_t fg = 0;
    for (int i = 0; i < 96 * 96; i++) {
      if (!mask[i]) { lo = fmin(lo, img[i]); hi = fmax(hi, img[i]); continue; }
      fg++;
      assert_true(mask[i] == 1 + lab[0] || (pl.nobjects == 2 && mask[i] == 1 + lab[1]));
      assert_true(img[i] > 0.1 && img[i] <= 0.9 + 1e-6); /* a resampled object value above the threshold */
    }
    /* the last object is on top: its centre pixel carries its class */
    const int j = pl.nobjects - 1;
    const int64_t cy = pl.y[j] + pl.size[j] / 2, cx = pl.x[j] + pl.size[j] / 2;
    assert_int_equal(mask[cy * 96 + cx], 1 + lab[j]);
    assert_true(fg > 0 && lo >= 0.2 - 1e-12 && hi <= 0.8 + 1e-12 && hi - lo > 0.3);
    /* the intensity transform maps every pixel and leaves the masks alone */
    bo_scene_opts t = o;
    t.gamma = 0.7; t.contrast = 0.8;
    OK(bo_scene_render(&t, &pl, TEXN, tex_h, tex_w, (const double *const *)tex, SIDE, sel, lab, img2, mask2));
    assert_memory_equal(mask, mask2, sizeof mask);
    for (int i = 0; i < 96 * 96; i++) assert_true(fabs(img2[i] - (0.5 + 0.8 * (pow(img[i], 0.7) - 0.5))) < 1e-12);
  }
  for (int k = 0; k < TEXN; k++) free(tex[k]);
}

static void bilinear_resampling_keeps_area_to_first_order(void **state)
{
  (void)state;
  bo_scene_opts o;
  bo_scene_plan pl;
  double       *tex[TEXN], img[96 * 96];
  float         objects[10 * SIDE * SIDE];
  int32_t       labels[10];
  uint8_t       mask[96 * 96];

  fixtures(tex, objects, labels);
  bo_scene_defaults(&o);
  o.min_objects = o.max_objects = 1;
  const double scales[3] = {0.5, 1, 3}, disk = 3.14159265358979 * 81;
  for (int k = 0; k < 3; k++) {
    o.nscales  = 1;
    o.scale[0] = scales[k];
    OK(bo_scene_make_plan(&o, 1, 0, 0, TEXN, tex_h, tex_w, SIDE, 0, 10, &pl));
    OK(bo_scene_render(&o, &pl, TEXN, tex_h, tex_w, (const double *const *)tex, SIDE, objects + pl.row[0] * SIDE * SIDE, &labels[pl.row[0]], img, mask));
    int64_t fg = 0;
    for (int i = 0; i < 96 * 96; i++) fg += mask[i] > 0;
    const double want = disk * scales[k] * scales[k];
    if (fabs(fg - want) > 0.15 * want + 4) fail_msg("scale %g: %lld mask pixels, expected about %g", scales[k], (long long)fg, want);
  }
  for (int k = 0; k < TEXN; k++) free(tex[k]);
}

static void bad_scene_options_give_one_line_errors(void **state)
{
  (void)state;
  bo_scene_opts o;
  bo_scene_plan pl;
  bo_scene_defaults(&o);
  o.scale[1] = 4;
  EXPECT_INPUT_ERROR(bo_scene_make_plan(&o, 1, 0, 0, TEXN, tex_h, tex_w, SIDE, 0, 10, &pl), "scenes: ", "makes 112-pixel objects");
  bo_scene_defaults(&o);
  o.h = 200;
  EXPECT_INPUT_ERROR(bo_scene_make_plan(&o, 1, 0, 0, TEXN, tex_h, tex_w, SIDE, 0, 10, &pl), "scenes: ", "texture 0 is 120 x 110");
  bo_scene_defaults(&o);
  EXPECT_INPUT_ERROR(bo_scene_make_plan(&o, 1, 0, 0, TEXN, tex_h, tex_w, SIDE, 5, 5, &pl), "scenes: ", "object rows [5, 5)");
  o.contrast = 1.5;
  EXPECT_INPUT_ERROR(bo_scene_make_plan(&o, 1, 0, 0, TEXN, tex_h, tex_w, SIDE, 0, 10, &pl), "scenes: ", "contrast 1.5");
}

/* A 2-image batch of binary logits with labels, for the compound losses. */
static void batch(double *z, uint8_t *y, int32_t *g, double *target)
{
  bo_rng r;
  bo_rng_init(&r, 3, 0, 0);
  for (int i = 0; i < 40; i++) {
    z[2 * i] = bo_rng_normal(&r); z[2 * i + 1] = bo_rng_normal(&r);
    g[i] = i / 20;
    y[i] = (i % 20) < (g[i] ? 3 : 11); /* 11/20 and 3/20 foreground */
  }
  target[0] = 9 / 20.0; target[1] = 11 / 20.0; target[2] = 17 / 20.0; target[3] = 3 / 20.0;
}

static void compound_losses_are_their_terms_and_alpha_zero_is_ce(void **state)
{
  (void)state;
  double           z[80], t[4], g1[80] = {0}, g2[80] = {0}, v, v0, terms[2], ce, l1;
  uint8_t          y[40];
  int32_t          grp[40];
  bo_seg_loss_opts o;
  bo_prop_opts     prop;
  batch(z, y, grp, t);
  bo_loss_batch b = {.comm = PETSC_COMM_SELF, .n = 40, .k = 2, .logits = z, .ngroups = 2, .group = grp};
  bo_seg_loss_defaults(&o);
  o.alpha = 0.7;
  OK(bo_seg_loss(BO_SEG_CE_L1, &o, &b, y, t, &v, terms, g1));
  OK(bo_loss_ce(&b, y, NULL, 1, &ce, g2));
  bo_prop_defaults(&prop);
  prop.temperature = 10; prop.smooth = 1e-10;
  OK(bo_loss_l1_prop(&b, &prop, t, 0.7, &l1, g2));
  assert_true(v == ce + 0.7 * l1 && terms[0] == ce && terms[1] == l1);
  for (int i = 0; i < 80; i++) assert_true(g1[i] == g2[i]);
  o.alpha = 0;
  OK(bo_seg_loss(BO_SEG_CE_KL, &o, &b, y, t, &v0, terms, NULL));
  assert_true(v0 == ce);
  /* Dice is a batch Dice: the groups do not matter */
  double vd1, vd2;
  OK(bo_seg_loss(BO_SEG_DICE, &o, &b, y, t, &vd1, NULL, NULL));
  b.ngroups = 1; b.group = NULL;
  OK(bo_seg_loss(BO_SEG_DICE, &o, &b, y, t, &vd2, NULL, NULL));
  assert_true(vd1 == vd2 && vd1 > 0 && vd1 < 1);
  bo_seg_loss_kind k;
  assert_true(bo_seg_loss_from_name("ce+kl", &k) && k == BO_SEG_CE_KL && !bo_seg_loss_from_name("focal", &k));
}

static void image_metrics_count_and_the_ce_kl_bound_holds(void **state)
{
  (void)state;
  double         z[80], t[4];
  uint8_t        y[40];
  int32_t        grp[40];
  bo_seg_metrics m;
  batch(z, y, grp, t);
  /* perfect logits: Dice 1, proportion errors 0 (hard) */
  double zp[40];
  for (int i = 0; i < 20; i++) { zp[2 * i] = y[i] ? -5 : 5; zp[2 * i + 1] = -zp[2 * i]; }
  OK(bo_seg_image_metrics(20, zp, y, &m));
  assert_true(m.dice_fg == 1 && m.dice_bg == 1 && m.iou_fg == 1 && m.prop_hard == m.prop_true && m.prop_true == 11 / 20.0);
  /* random logits and many random label maps: CE >= KL(pi || pihat) every time */
  bo_rng r;
  bo_rng_init(&r, 11, 0, 0);
  for (int trial = 0; trial < 2000; trial++) {
    const double sc = 0.1 + 5 * bo_rng_uniform(&r);
    for (int i = 0; i < 20; i++) {
      zp[2 * i] = 0; zp[2 * i + 1] = sc * bo_rng_normal(&r);
      y[i] = bo_rng_uniform(&r) < 0.3;
    }
    OK(bo_seg_image_metrics(20, zp, y, &m));
    if (!(m.ce >= m.kl)) fail_msg("trial %d: CE %.17g < KL %.17g", trial, m.ce, m.kl);
  }
  y[3] = 2;
  EXPECT_INPUT_ERROR(bo_seg_image_metrics(20, zp, y, &m), "segloss: ", "label 2");
}

static void weak_labels_are_a_foreground_disk_and_sfda_is_its_terms(void **state)
{
  (void)state;
  uint8_t y[20 * 20], wk[20 * 20];
  int64_t nw = 0;
  for (int i = 0; i < 400; i++) y[i] = (i / 20 >= 4 && i / 20 < 14 && i % 20 >= 6 && i % 20 < 16); /* a 10 x 10 square */
  OK(bo_seg_weak_disk(20, 20, y, 2, wk));
  for (int i = 0; i < 400; i++) {
    assert_true(wk[i] == BO_LABEL_IGNORE || (wk[i] == 1 && y[i]));
    nw += wk[i] == 1;
  }
  assert_int_equal(nw, 13); /* a radius-2 disk of 13 pixels inside the square */
  memset(y, 0, sizeof y);
  OK(bo_seg_weak_disk(20, 20, y, 2, wk));
  for (int i = 0; i < 400; i++) assert_int_equal(wk[i], BO_LABEL_IGNORE);
  /* SFDA: entropy + KL with the given weights; l_prior 0 is the entropy alone */
  double z[80], t[4], v, terms[2], ent, gA[80] = {0}, gB[80] = {0}, w[2] = {0.1, 0.9};
  uint8_t lab[40];
  int32_t grp[40];
  batch(z, lab, grp, t);
  bo_loss_batch b = {.comm = PETSC_COMM_SELF, .n = 40, .k = 2, .logits = z, .ngroups = 2, .group = grp};
  bo_sfda_opts  o;
  bo_sfda_defaults(&o);
  o.l_prior = 0;
  OK(bo_sfda_loss(&o, &b, w, t, &v, terms, gA));
  OK(bo_loss_entropy(&b, w, 1, &ent, gB));
  assert_true(v == ent && terms[1] == 0);
  for (int i = 0; i < 80; i++) assert_true(gA[i] == gB[i]);
  o.l_prior = 1;
  OK(bo_sfda_loss(&o, &b, w, t, &v, terms, NULL));
  assert_true(terms[1] > 0 && v == terms[0] + terms[1]);
}

static void repri_modes_do_what_they_say(void **state)
{
  (void)state;
  enum { NS = 50, NQ = 50, D = 4 };
  double xs[NS * D], xq[NQ * D], loss[20], pi;
  uint8_t ys[NS], pred[NQ], pred0[NQ];
  bo_rng r;
  bo_rng_init(&r, 4, 0, 0);
  for (int i = 0; i < NS + NQ; i++) {
    double *x = i < NS ? xs + i * D : xq + (i - NS) * D;
    const int fg = i % 5 == 0;
    if (i < NS) ys[i] = (uint8_t)fg;
    for (int j = 0; j < D; j++) x[j] = (fg && j == 0 ? 2.0 : 0.0) + (j == 1 ? 1.0 : 0.0) + 0.3 * bo_rng_normal(&r);
  }
  bo_repri_opts o;
  bo_repri_defaults(&o);
  o.iters = 20;
  OK(bo_repri_run(&o, BO_REPRI_INIT, 1, NS, NQ, D, xs, ys, xq, 0.2, pred0, NULL, &pi));
  assert_true(pi == 0);
  OK(bo_repri_run(&o, BO_REPRI_CE, 1, NS, NQ, D, xs, ys, xq, 0.2, pred, loss, &pi));
  assert_true(loss[19] < loss[0] && pi == 0);
  OK(bo_repri_run(&o, BO_REPRI_ORACLE, 1, NS, NQ, D, xs, ys, xq, 0.2, pred, loss, &pi));
  assert_true(pi == 0.2);
  OK(bo_repri_run(&o, BO_REPRI_FULL, 1, NS, NQ, D, xs, ys, xq, 0.2, pred, loss, &pi));
  assert_true(pi > 0 && pi < 1);
  int agree = 0;
  for (int i = 0; i < NQ; i++) agree += pred[i] == (i % 5 == 0);
  assert_true(agree >= 45); /* a separable toy: RePRI segments the query */
  EXPECT_INPUT_ERROR(bo_repri_run(&o, BO_REPRI_ORACLE, 1, NS, NQ, D, xs, ys, xq, 0.0, pred, loss, &pi), "repri: ", "oracle proportion 0");
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("a scene's plan is a pure function of (seed, stream, id), every draw in its documented range; the test stream differs", a_scene_is_a_pure_function_of_seed_and_id),
    PROPERTY("rendered masks hold 1 + class on object pixels (topmost object last), background in [0.2, 0.8]; the gamma/contrast transform maps pixels and keeps masks", rendered_masks_label_object_pixels_and_the_background_spans_its_range),
    PROPERTY("a resampled object's mask area scales with scale^2 (0.5, 1, 3)", bilinear_resampling_keeps_area_to_first_order),
    PROPERTY("objects larger than the scene, small textures, empty row ranges and bad contrast give one-line USER_INPUT errors", bad_scene_options_give_one_line_errors),
    PROPERTY("ce+l1 is CE + alpha L1 (values and gradients), alpha 0 gives CE, Dice ignores the groups", compound_losses_are_their_terms_and_alpha_zero_is_ce),
    PROPERTY("weak labels are a radius-r disk of foreground pixels (none without foreground); SFDA is entropy + KL, l_prior 0 the entropy alone", weak_labels_are_a_foreground_disk_and_sfda_is_its_terms),
    PROPERTY("RePRI: init takes no step, CE decreases its loss, oracle uses the true pi, repri estimates one and segments a separable toy", repri_modes_do_what_they_say),
    PROPERTY("image metrics are exact on a perfect prediction and CE >= KL(pi || pihat) on 2000 random images", image_metrics_count_and_the_ce_kl_bound_holds),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
