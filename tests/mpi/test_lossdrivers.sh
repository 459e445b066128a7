#!/usr/bin/env bash
# Integration: the data and drivers of the segmentation losses (issue 7) on real content (the
# Fashion-MNIST test images and the bundled textures): task scenes (seeded composites, feature
# fields) and task train-seg (SegLossBias losses on a linear pixel head), identical at 1, 2 and 3
# ranks, the properties their files promise, and the bad inputs they refuse; task fewshot-seg
# (RePRI and ablations), task adapt (SFDA) and task mixed (teacher and student heads) likewise.
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH
FM=/usr/share/datasets/fashion-mnist
TEX=jobs/data/textures
run_np 2 -task import -output "$D/fm.h5" -import_images "$FM/t10k-images-idx3-ubyte.gz" -import_labels "$FM/t10k-labels-idx1-ubyte.gz" || fail "import the Fashion-MNIST test images" "$(cat "$D/err.txt")"

SC=(-task scenes -input "$D/fm.h5" -seed 2026 -scenes_textures "$TEX/brick.png,$TEX/grass.png" -scenes_count 7 -scenes_features)
for p in $RANKS; do run_np "$p" "${SC[@]}" -output "$D/sc$p.h5" || fail "scenes at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "scenes: identical images, masks, objects and features at 1 and $p ranks" same_results "$D/sc1.h5" "$D/sc$p.h5"; done
run_np 2 "${SC[@]}" -scenes_count 3 -output "$D/sc-first3.h5"
check "scene s depends on (seed, s) only: the first 3 of 7 equal a 3-scene run" /usr/bin/python3 -c "
import h5py, numpy as np
a, b = h5py.File('$D/sc1.h5', 'r'), h5py.File('$D/sc-first3.h5', 'r')
for k in ('images', 'masks', 'features', 'objects/label', 'objects/corner'): assert np.array_equal(a[k][:3], b[k][:]), k"
check "scenes: masks are 0 or 1 + the class of a pasted object; fg_fraction and shapes agree" /usr/bin/python3 -c "
import h5py, numpy as np
f = h5py.File('$D/sc1.h5', 'r'); fm = h5py.File('$D/fm.h5', 'r')
im, m, lab, row = f['images'][:], f['masks'][:], f['objects/label'][:], f['objects/row'][:]
assert im.shape == (7, 96, 96) and m.shape == (7, 96, 96) and f['features'].shape == (7, 96, 96, 14) and m.dtype == np.uint8
assert f['images'].attrs['height'] == 96 and f['features'].attrs['channels'] == 14 and len(f['feature_names']) == 14
names = [n.decode() for n in f['feature_names'][:]]; x = f['features'][2, :, :, names.index('x')]; y = f['features'][2, :, :, names.index('y')]
assert np.allclose(x, np.arange(96)[None, :] / 95) and np.allclose(y, np.arange(96)[:, None] / 95)   # S x H x W x F: channel last
for s in range(7):
    objs = lab[s][lab[s] >= 0]; assert 1 <= len(objs) <= 2
    assert set(np.unique(m[s])) <= {0} | set(int(c) + 1 for c in objs), (s, np.unique(m[s]), objs)
    for j in range(len(objs)): assert fm['labels'][row[s, j]] == objs[j]
    assert abs(f['fg_fraction'][s] - (m[s] > 0).mean()) < 1e-12
    bg = im[s][m[s] == 0]; assert bg.min() >= 0.2 - 1e-6 and bg.max() <= 0.8 + 1e-6
assert set(np.unique(f['objects/scale'][:][lab >= 0])) <= {2.0, 3.0}"
run_np 2 "${SC[@]}" -scenes_gamma 0.7 -scenes_contrast 0.8 -output "$D/sc-target.h5"
check "scenes: the target intensity transform is 0.5 + 0.8 (I^0.7 - 0.5) on the same scenes" /usr/bin/python3 -c "
import h5py, numpy as np
a, b = h5py.File('$D/sc1.h5', 'r'), h5py.File('$D/sc-target.h5', 'r')
assert np.array_equal(a['masks'][:], b['masks'][:])
i = a['images'][:].astype(np.float64); assert np.abs(b['images'][:] - (0.5 + 0.8 * (i ** 0.7 - 0.5))).max() < 1e-6"
run_np 2 "${SC[@]}" -scenes_split test -output "$D/sc-test.h5"
check "scenes: the test split draws other scenes under the same seed" bash -c "! h5diff '$D/sc1.h5' '$D/sc-test.h5' /masks /masks >/dev/null"

# train-seg: every loss, data-parallel, on 7 training and 7 test scenes, 6 Adam steps
TS=(-task train-seg -input "$D/sc1.h5" -seg_test "$D/sc-test.h5" -seg_iterations 6)
for p in $RANKS; do run_np "$p" "${TS[@]}" -output "$D/seg$p.h5" || fail "train-seg at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "train-seg: identical losses, heads and metrics at 1 and $p ranks" same_results "$D/seg1.h5" "$D/seg$p.h5"; done
check "train-seg: per-iteration losses, weights and per-image metrics for every loss; CE >= KL(pi || pihat) on every test image" /usr/bin/python3 -c "
import h5py, numpy as np
f = h5py.File('$D/seg1.h5', 'r')
for l in ('ce', 'dice', 'logdice', 'ce+l1', 'ce+kl'):
    g = f[l]; assert g['loss'].shape == (6,) and g['loss_terms'].shape == (6, 2) and g['weights'].shape == (30,)
    m = g['eval/metrics'][:]; cols = g['eval/metrics'].attrs['columns'].decode().split(',')
    assert m.shape == (7, 11) and cols[0] == 'dice_fg' and cols[10] == 'ce_minus_kl'
    assert np.all(m[:, 8] >= m[:, 9]) and g.attrs['bound_violations'] == 0 and g.attrs['min_bound_gap'] >= 0
    assert abs(g.attrs['mean_dice_fg'] - m[:, 0].mean()) < 1e-12
    if l in ('ce', 'dice', 'logdice'): assert g['loss'][-1] < g['loss'][0], (l, g['loss'][:])
assert np.all(f['ce/loss_terms'][:, 1] == 0) and np.all(f['ce+l1/loss_terms'][:, 1] > 0)
assert abs(f['ce/loss'][0] - np.log(2)) < 1e-12   # a zero head predicts 1/2 everywhere"
run_np 1 "${TS[@]}" -seg_loss ce+l1 -seg_alpha 0 -output "$D/l1a0.h5"
check "train-seg: ce+l1 with alpha 0 trains exactly as ce" h5diff "$D/seg1.h5" "$D/l1a0.h5" /ce/weights /ce+l1/weights
# scenes files of boundopt before N-D rows (S x (H W) images and masks, S x (H W F) features) read alike
/usr/bin/python3 -c "
import h5py
a = h5py.File('$D/sc1.h5', 'r'); b = h5py.File('$D/sc1-flat.h5', 'w')
for k in ('images', 'masks', 'features', 'fg_fraction', 'feature_names', 'objects/label', 'objects/row'):
    v = a[k][()]; b.create_dataset(k, data=v.reshape(v.shape[0], -1) if v.ndim > 2 else v)
for k in ('images', 'features'):
    for n, x in a[k].attrs.items(): b[k].attrs[n] = x"
run_np 2 "${TS[@]}" -input "$D/sc1-flat.h5" -seg_loss ce,ce+l1 -output "$D/seg-flat.h5" || fail "train-seg on a legacy scenes file" "$(cat "$D/err.txt")"
check "train-seg: a legacy S x (H W) scenes file trains and evaluates exactly as its S x H x W copy" h5diff "$D/seg1.h5" "$D/seg-flat.h5" /ce /ce
O=$SCRATCH/o; mkdir -p "$O"
"$TOOLS/mkfeatures" "$D/nolab.h5" -n 20 -d 784 -labels none
"$TOOLS/mkfeatures" "$D/d12.h5" -n 20 -d 12
run_np 1 "${SC[@]}" -scenes_features false -scenes_count 2 -output "$D/nofeat.h5"
run_np 1 "${SC[@]}" -scenes_feat_sigma 1,2 -scenes_count 2 -output "$D/f10.h5"
E=(-task scenes -input "$D/fm.h5" -output "$O/s.h5" -scenes_count 2)
expect_error "scenes: no textures"            1 'option -scenes_textures: missing' "$O" 1 "${E[@]}"
expect_error "scenes: objects larger than the scene" 1 'option -scenes_scale: 4\.? makes 112\.?-pixel objects in 96-pixel scenes' "$O" 1 "${E[@]}" -scenes_textures "$TEX/brick.png" -scenes_scale 2,4
expect_error "scenes: object rows beyond the input" 1 "option -scenes_object_rows: '9000-10000' with 10000 input rows" "$O" 3 "${E[@]}" -scenes_textures "$TEX/brick.png" -scenes_object_rows 9000-10000
expect_error "scenes: an unknown split"       1 "option -scenes_split: 'val'; expected train or test" "$O" 1 "${E[@]}" -scenes_textures "$TEX/brick.png" -scenes_split val
expect_error "scenes: input without labels"   1 'nolab\.h5: no /labels' "$O" 1 -task scenes -input "$D/nolab.h5" -output "$O/s.h5" -scenes_textures "$TEX/brick.png"
expect_error "scenes: rows that are not square images" 1 'd12\.h5: rows of 12 values; expected square object images' "$O" 1 -task scenes -input "$D/d12.h5" -output "$O/s.h5" -scenes_textures "$TEX/brick.png"
expect_error "scenes: a missing texture"      1 'nope\.png: cannot open' "$O" 1 "${E[@]}" -scenes_textures "$TEX/nope.png"
expect_error "train-seg: an unknown loss"     1 "option -seg_loss: 'focal'; expected ce, dice" "$O" 1 -task train-seg -input "$D/sc1.h5" -output "$O/t.h5" -seg_loss ce,focal
expect_error "train-seg: scenes without feature fields" 1 'nofeat\.h5: no /features; expected a scenes file written with features: true' "$O" 3 -task train-seg -input "$D/nofeat.h5" -output "$O/t.h5"
expect_error "train-seg: test scenes with other channels" 1 'f10\.h5: 10 feature channels; expected 14' "$O" 1 -task train-seg -input "$D/sc1.h5" -seg_test "$D/f10.h5" -output "$O/t.h5"
/usr/bin/python3 -c "
import h5py, numpy as np
a = h5py.File('$D/sc1.h5', 'r'); b = h5py.File('$D/badshape.h5', 'w')
b['masks'] = a['masks'][()]; b['images'] = a['images'][()]; b['features'] = a['features'][:, :, :95, :]"
expect_error "train-seg: feature fields that do not match the masks" 1 'badshape\.h5: /features does not match /masks \(7 x 96 x 96\); expected S x H x W x F' "$O" 2 -task train-seg -input "$D/badshape.h5" -output "$O/t.h5"
expect_error "train-seg: more scenes than the file has" 1 'sc1\.h5: 7 scenes; expected at least the 9 asked for' "$O" 1 -task train-seg -input "$D/sc1.h5" -seg_scenes 9 -output "$O/t.h5"
expect_error "train-seg: a non-positive learning rate" 1 'option -seg_lr: 0\.?; expected lr > 0' "$O" 1 -task train-seg -input "$D/sc1.h5" -seg_lr 0 -output "$O/t.h5"

# fewshot-seg: RePRI and its ablations on tasks drawn from the 7 training scenes, dealt to ranks
run_np 1 -task scenes -input "$D/fm.h5" -seed 2026 -scenes_textures "$TEX/brick.png" -scenes_count 24 -scenes_features -scenes_min_objects 2 -output "$D/fs-scenes.h5"
FS=(-task fewshot-seg -input "$D/fs-scenes.h5" -seed 2026 -fsseg_tasks 5 -fsseg_iters 12 -fsseg_t_pi 4 -fsseg_classes 0,6)
for p in $RANKS; do run_np "$p" "${FS[@]}" -output "$D/fs$p.h5" || fail "fewshot-seg at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "fewshot-seg: identical tasks, IoU counts and losses at 1 and $p ranks" same_results "$D/fs1.h5" "$D/fs$p.h5"; done
check "fewshot-seg: tasks are of their class; oracle uses the true proportion; IoU counts are consistent; repri re-estimates pi" /usr/bin/python3 -c "
import h5py, numpy as np
f, s = h5py.File('$D/fs1.h5', 'r'), h5py.File('$D/fs-scenes.h5', 'r')
lab = s['objects/label'][:]
cls, sup, q = f['tasks/class'][:], f['tasks/support'][:].reshape(5, -1), f['tasks/query'][:]
for t in range(5):
    assert cls[t] in (0, 6) and cls[t] in lab[q[t]] and cls[t] in lab[sup[t, 0]] and sup[t, 0] != q[t]
    assert f['tasks/query_fg'][t] > 0 and abs(f['tasks/query_fg'][t] - (s['masks'][q[t]] == 1 + cls[t]).mean()) < 1e-12
assert np.array_equal(f['oracle/pi'][:], f['tasks/query_fg'][:]) and np.all(f['ce/pi'][:] == 0)
for m in ('init', 'ce', 'ce+h', 'repri', 'oracle'):
    c = f[m + '/iou_counts'][:]; assert np.all(c[:, 0] <= c[:, 1]) and np.all(c[:, 2] <= c[:, 3])
    assert np.all(c[:, 1] + c[:, 3] - c[:, 0] - c[:, 2] >= 0)
    assert np.allclose(f[m + '/task_iou_fg'][:], c[:, 0] / np.maximum(c[:, 1], 1))
assert f['repri/loss'].shape == (5, 12) and 'loss' not in f['init']
assert np.all(f['ce/loss'][:, -1] < f['ce/loss'][:, 0])"
# checkpoint on a signal at a task boundary, resume at another rank count: the same results
CK=(-task fewshot-seg -input "$D/fs-scenes.h5" -seed 2026 -fsseg_tasks 6 -fsseg_iters 12 -fsseg_t_pi 4 -fsseg_classes 0,6 -fsseg_method ce,repri,oracle -checkpoint_file "$D/fsseg.ck.h5")
run_np 2 "${CK[@]}" -output "$D/fsck-ref.h5" -restart false || fail "fewshot-seg with a checkpoint file" "$(cat "$D/err.txt")"
run_np 2 "${CK[@]}" -output "$D/fsck.h5" -debug_signal_at 1; rc=$?
check "fewshot-seg: a signal mid-run exits 3 with a checkpoint and no results" bash -c "[ $rc = 3 ] && [ -f '$D/fsseg.ck.h5' ] && [ ! -f '$D/fsck.h5' ]"
check "fewshot-seg: the checkpoint holds some tasks done, not all, with their results" /usr/bin/python3 -c "
import h5py; f = h5py.File('$D/fsseg.ck.h5', 'r'); d = f['rows/done'][()].ravel(); r = f['rows/accuracy'][()]
assert 0 < d.sum() < 6 and r.shape == (6, 3 + 1 + 3 * (6 + 12)), (d, r.shape)
assert all(r[t, 0] in (0, 6) for t in range(6) if d[t]) and not r[d == 0].any()"
cp "$D/fsseg.ck.h5" "$D/other.ck.h5"
run_np 3 "${CK[@]}" -output "$D/fsck.h5" || fail "fewshot-seg resumed at 3 ranks" "$(cat "$D/err.txt")"
check "fewshot-seg: resumed at 3 ranks, results equal an uninterrupted run" same_results "$D/fsck-ref.h5" "$D/fsck.h5"
check "fewshot-seg: the resume skipped the done tasks; the checkpoint is removed once the job is done" bash -c "grep -q 'resuming from .*fsseg.ck.h5: 4 of 6 tasks done' '$D/out.txt' && [ ! -f '$D/fsseg.ck.h5' ]"
run_np 1 "${CK[@]}" -output "$D/fsck1.h5" -restart false
check "fewshot-seg: the checkpointed job at 1 rank equals its 2-rank run" same_results "$D/fsck-ref.h5" "$D/fsck1.h5"
E=(-task fewshot-seg -input "$D/fs-scenes.h5" -output "$O/f.h5" -fsseg_tasks 2)
expect_error "fewshot-seg: an unknown method"  1 "option -fsseg_method: 'tim'; expected init, ce" "$O" 1 "${E[@]}" -fsseg_method ce,tim
expect_error "fewshot-seg: a class in too few scenes" 1 'class 0 is in [0-9]+ scenes; expected at least shots \+ 1 = 30' "$O" 3 "${E[@]}" -fsseg_classes 0 -fsseg_shots 29
expect_error "fewshot-seg: scenes without feature fields" 1 'nofeat\.h5: no /features' "$O" 1 -task fewshot-seg -input "$D/nofeat.h5" -output "$O/f.h5"
expect_error "fewshot-seg: the checkpoint of another job" 1 'other\.ck\.h5: checkpoint of another job \(options or input differ\)' "$O" 2 "${E[@]}" -checkpoint_file "$D/other.ck.h5"

# adapt: SFDA from the train-seg ce head (source: brick/grass) to gravel scenes with the gamma/contrast map
run_np 2 -task scenes -input "$D/fm.h5" -seed 2026 -scenes_textures "$TEX/gravel.png" -scenes_gamma 0.7 -scenes_contrast 0.8 -scenes_count 5 -scenes_features -scenes_split test -output "$D/tgt.h5"
AD=(-task adapt -input "$D/tgt.h5" -adapt_source "$D/seg1.h5" -adapt_iterations 5)
for p in $RANKS; do run_np "$p" "${AD[@]}" -output "$D/ad$p.h5" || fail "adapt at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "adapt: identical losses, heads and metrics at 1 and $p ranks" same_results "$D/ad1.h5" "$D/ad$p.h5"; done
check "adapt: none keeps the source head; methods record losses; the tag prior is the source's training fraction" /usr/bin/python3 -c "
import h5py, numpy as np
a, s = h5py.File('$D/ad1.h5', 'r'), h5py.File('$D/seg1.h5', 'r')
assert np.array_equal(a['none/weights'][:], s['ce/weights'][:]) and 'loss' not in a['none']
assert a.attrs['prior_fg'] == s.attrs['train_fg_fraction'] and 0 < a.attrs['prior_fg'] < 1
for m in ('entropy', 'sfda', 'sfda-true', 'oracle'):
    assert a[m + '/loss'].shape == (5,) and a[m + '/eval/metrics'].shape == (5, 11) and not np.array_equal(a[m + '/weights'][:], s['ce/weights'][:])
assert np.all(a['entropy/loss_terms'][:, 1] == 0) and np.all(a['sfda/loss_terms'][:, 1] > 0)"
expect_error "adapt: an unknown method"     1 "option -adapt_method: 'tent'; expected none, entropy" "$O" 1 "${AD[@]}" -output "$O/a.h5" -adapt_method sfda,tent
expect_error "adapt: one class weight"       1 "option -adapt_weights: '2'; expected two weights w_bg,w_fg" "$O" 2 "${AD[@]}" -output "$O/a.h5" -adapt_weights 2
expect_error "adapt: a negative class weight" 1 "option -adapt_weights: '-1'; expected numbers >= 0" "$O" 1 "${AD[@]}" -output "$O/a.h5" -adapt_weights 1,-1
expect_error "adapt: three class weights"    1 'option -adapt_weights: more than 2 values' "$O" 3 "${AD[@]}" -output "$O/a.h5" -adapt_weights 1,1,1
expect_error "adapt: no source head"        1 'option -adapt_source: missing' "$O" 1 -task adapt -input "$D/tgt.h5" -output "$O/a.h5"
expect_error "adapt: a head not in the source" 1 "seg1\.h5: no /focal/weights; expected train-seg results" "$O" 3 "${AD[@]}" -output "$O/a.h5" -adapt_head focal
expect_error "adapt: a head for other channels" 1 'seg1\.h5: /ce/weights has 30 weights; expected 22' "$O" 1 "${AD[@]}" -input "$D/f10.h5" -output "$O/a.h5"

# mixed: teacher on 3 strong scenes, students on weak disks of the other 4
MX=(-task mixed -input "$D/sc1.h5" -mixed_test "$D/sc-test.h5" -mixed_strong 3 -mixed_iterations 5)
for p in $RANKS; do run_np "$p" "${MX[@]}" -output "$D/mx$p.h5" || fail "mixed at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "mixed: identical teacher, students and metrics at 1 and $p ranks" same_results "$D/mx1.h5" "$D/mx$p.h5"; done
check "mixed: weak labels are few foreground pixels; each variant has its terms; a student without KD ignores the teacher" /usr/bin/python3 -c "
import h5py, numpy as np
f, s = h5py.File('$D/mx1.h5', 'r'), h5py.File('$D/sc1.h5', 'r')
fg = (s['masks'][:] > 0).sum(); assert 0 < f.attrs['weak_pixels'] <= 29 * 7 and f.attrs['weak_pixels'] < 0.05 * fg
t = {k: f[k + '/loss_terms'][:] for k in ('pce', 'pce+kd', 'pce+kd+h', 'pce+h')}
assert np.all(t['pce'][:, 2:] == 0) and np.all(t['pce+kd'][:, 2] > 0) and np.all(t['pce+kd'][:, 3] == 0)
assert np.all(t['pce+kd+h'][:, 2:] > 0) and np.all(t['pce+h'][:, 2] == 0) and np.all(t['pce+h'][:, 3] > 0)
assert np.all(t['pce'][:, :2] > 0) and f['teacher/loss'].shape == (5,) and f['teacher/eval/metrics'].shape == (7, 11)"
expect_error "mixed: every scene strong"   1 'option -mixed_strong: 7 of 7 training scenes; expected fewer' "$O" 1 "${MX[@]}" -output "$O/m.h5" -mixed_strong 7
expect_error "mixed: an unknown variant"   1 "option -mixed_method: 'kd'; expected teacher, pce" "$O" 1 "${MX[@]}" -output "$O/m.h5" -mixed_method pce,kd
# the reference code's KD (double softmax, student || teacher, not detached): each KD variant trains its own teacher
MC=("${MX[@]}" -mixed_method teacher,pce+kd,pce+kd+h -mixed_kd code -mixed_kd_detach 0)
for p in $RANKS; do run_np "$p" "${MC[@]}" -output "$D/mxc$p.h5" || fail "mixed code KD at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "mixed: code KD, teacher not detached: identical teachers, students and metrics at 1 and $p ranks" same_results "$D/mxc1.h5" "$D/mxc$p.h5"; done
run_np 2 "${MX[@]}" -mixed_method teacher,pce+kd -mixed_kd code -mixed_kd_detach 0 -mixed_kd_weight 0 -output "$D/mxc-w0.h5"
run_np 2 "${MX[@]}" -mixed_method pce+kd -mixed_kd paper -mixed_kd_detach 1 -output "$D/mxp-explicit.h5"
run_np 2 "${MX[@]}" -mixed_method teacher,pce+kd -mixed_kd code -mixed_kd_detach 1 -output "$D/mxc-detached.h5"
check "mixed: explicit -mixed_kd paper -mixed_kd_detach 1 is the default" h5diff "$D/mx1.h5" "$D/mxp-explicit.h5" /pce+kd /pce+kd
check "mixed: not detached, each KD variant has its own teacher, moved by KD (KD weight 0: exactly the standalone teacher); code KD is small and bounded" /usr/bin/python3 -c "
import h5py, numpy as np
c, w0, d, p = (h5py.File('$D/' + n, 'r') for n in ('mxc1.h5', 'mxc-w0.h5', 'mxc-detached.h5', 'mx1.h5'))
assert c.attrs['kd'] == b'code' and c.attrs['kd_detach'] == 0 and p.attrs['kd'] == b'paper' and p.attrs['kd_detach'] == 1
assert 'teacher' not in p['pce+kd'] and 'teacher' not in d['pce+kd']
for k in ('pce+kd', 'pce+kd+h'):
    t = c[k + '/teacher']; assert t['loss'].shape == (5,) and t['eval/metrics'].shape == (7, 11) and t['weights'].shape == (30,)
    assert not np.array_equal(t['weights'][:], c['teacher/weights'][:]), k   # the KD gradient reached the teacher
    kd = c[k + '/loss_terms'][:, 2]; assert kd[0] == 0 and np.all(kd[1:] > 0) and np.all(kd <= 2 / (2 * 2)), kd   # both heads start at 0; L <= 2 / (T k)
assert np.array_equal(w0['pce+kd/teacher/weights'][:], w0['teacher/weights'][:]) and np.array_equal(w0['pce+kd/teacher/loss'][:], w0['teacher/loss'][:])
assert np.array_equal(c['pce+kd/teacher/loss'][0], c['teacher/loss'][0])   # both teachers start from zero
assert not np.array_equal(d['pce+kd/weights'][:], p['pce+kd/weights'][:]) and np.array_equal(d['teacher/weights'][:], p['teacher/weights'][:])"
check "mixed: -help lists the KD options with their defaults" bash -c "mpirun -q -n 1 '$BOUNDOPT' -task mixed -help > '$D/mxhelp.txt' &&
  grep -q -- '-mixed_kd <now paper' '$D/mxhelp.txt' && grep -q -- '-mixed_kd_detach <now 1' '$D/mxhelp.txt'"
expect_error "mixed: an unknown KD form"   1 "option -mixed_kd: 'soft'; expected paper or code" "$O" 2 "${MX[@]}" -output "$O/m.h5" -mixed_kd soft
expect_error "mixed: a bad detach flag"    1 "option -mixed_kd_detach: '2'; expected 1 \(teacher detached\) or 0" "$O" 3 "${MX[@]}" -output "$O/m.h5" -mixed_kd_detach 2
