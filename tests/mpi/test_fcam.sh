#!/usr/bin/env bash
# Integration: task fcam (F-CAM, issue 8) on tiny real-content scenes (Fashion-MNIST test images on
# the bundled textures, 48x48, one object each): stage cam (pooled-feature classifier, CAMs) and
# stage upscale (bilinear, mean-field CRF, F-CAM and its ablations, metrics, the examples PNG) give
# identical files at 1, 2 and 3 ranks; the files keep their promises; bad inputs get one line.
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH
FM=/usr/share/datasets/fashion-mnist
TEX=jobs/data/textures
run_np 2 -task import -output "$D/fm.h5" -import_images "$FM/t10k-images-idx3-ubyte.gz" -import_labels "$FM/t10k-labels-idx1-ubyte.gz" || fail "import the Fashion-MNIST test images" "$(cat "$D/err.txt")"
SC=(-task scenes -input "$D/fm.h5" -seed 7 -scenes_textures "$TEX/brick.png,$TEX/grass.png" -scenes_size 48 -scenes_scale 1,1.5 -scenes_min_objects 1 -scenes_max_objects 1 -scenes_features -scenes_feat_sigma 1,2 -scenes_feat_filters 2)
run_np 2 "${SC[@]}" -scenes_count 40 -scenes_object_rows 0-4999 -output "$D/train.h5" || fail "fcam: training scenes" "$(cat "$D/err.txt")"
run_np 2 "${SC[@]}" -scenes_count 7 -scenes_split test -scenes_object_rows 5000-9999 -output "$D/test.h5" || fail "fcam: test scenes" "$(cat "$D/err.txt")"

CAM=(-task fcam -input "$D/test.h5" -seed 7 -fcam_stage cam -fcam_train "$D/train.h5" -fcam_classifier_iterations 30)
for p in $RANKS; do run_np "$p" "${CAM[@]}" -output "$D/cam$p.h5" || fail "fcam cam at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "fcam cam: identical classifier and CAMs at 1 and $p ranks" same_results "$D/cam1.h5" "$D/cam$p.h5"; done
check "fcam cam: 6x6 CAMs of the true and predicted class are the classifier weights applied to the 8x8-pooled field" /usr/bin/python3 -c "
import h5py, numpy as np
f, s = h5py.File('$D/cam1.h5', 'r'), h5py.File('$D/test.h5', 'r')
C = int(f.attrs['classes']); ch = f['classifier/channels'][:]; d = len(ch)
W = f['classifier/weights'][:][:d * C].reshape(d, C); mu, sd = f['classifier/mean'][:], f['classifier/std'][:]
assert f['cams'].shape == (7, 36) and f.attrs['cam_height'] == 6 and f.attrs['pool'] == 8 and d == s['features'].attrs['channels'] - 2
lab = s['objects/label'][:].reshape(7, -1)[:, 0]; assert np.array_equal(f['labels'][:], lab)
F = s['features'].attrs['channels']; X = s['features'][:].reshape(7, 48, 48, F)[..., ch].astype(np.float64)
P = X.reshape(7, 6, 8, 6, 8, d).mean(axis=(2, 4)).reshape(7, 36, d)
Z = ((P - mu) / sd)
for i in range(7):
    assert np.allclose(Z[i] @ W[:, lab[i]], f['cams'][i], atol=1e-9)
    assert np.allclose(Z[i] @ W[:, f['pred'][i]], f['cams_pred'][i], atol=1e-9)
g = Z.mean(axis=1) @ W + f['classifier/weights'][:][d * C:]
assert np.array_equal(g.argmax(axis=1), f['pred'][:]) and abs(f.attrs['accuracy'] - (g.argmax(axis=1) == lab).mean()) < 1e-12
assert f['train_loss'][-1] < f['train_loss'][0]"

# the classifier's own random-filter bank, rebuilt from /images (training scenes without /features)
run_np 2 -task scenes -input "$D/fm.h5" -seed 7 -scenes_textures "$TEX/brick.png,$TEX/grass.png" -scenes_size 48 -scenes_scale 1,1.5 -scenes_min_objects 1 -scenes_max_objects 1 -scenes_count 40 -scenes_object_rows 0-4999 -output "$D/trainimg.h5" || fail "fcam: training scenes without features" "$(cat "$D/err.txt")"
RB=("${CAM[@]}" -fcam_train "$D/trainimg.h5" -fcam_classifier_filters 3 -fcam_classifier_sigma 1,2)
for p in $RANKS; do run_np "$p" "${RB[@]}" -output "$D/rb$p.h5" || fail "fcam cam, rebuilt features, at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "fcam cam, rebuilt features: identical classifier and CAMs at 1 and $p ranks" same_results "$D/rb1.h5" "$D/rb$p.h5"; done
check "fcam cam, rebuilt features: 4 families + 3 filters at 2 scales (14 channels); the mean CAM cell + bias gives the predicted class" /usr/bin/python3 -c "
import h5py, numpy as np
f = h5py.File('$D/rb1.h5', 'r'); C = int(f.attrs['classes']); d = len(f['classifier/channels'][:])
assert d == 14 and f.attrs['classifier_filters'] == 3 and f['cams'].shape == (7, 36)
W = f['classifier/weights'][:]; b = W[d * C:]; lab = f['labels'][:]
for i in range(7):   # CAM of the predicted class averaged over the cells + its bias is that class's logit, the largest
    assert f['pred'][i] == lab[i] or np.mean(f['cams_pred'][i]) + b[f['pred'][i]] >= np.mean(f['cams'][i]) + b[lab[i]] - 1e-9
assert f['train_loss'][-1] < f['train_loss'][0] and not np.allclose(f['cams'][:], h5py.File('$D/cam1.h5', 'r')['cams'][:])"

UP=(-task fcam -input "$D/test.h5" -seed 7 -fcam_cams "$D/cam1.h5" -fcam_methods bilinear,crf,fcam,fcam-nocrf,fcam-noasc -fcam_steps 6 -fcam_hidden 4 -fcam_examples 3)
for p in $RANKS; do run_np "$p" "${UP[@]}" -output "$D/up$p.h5" || fail "fcam upscale at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do
  check "fcam upscale: identical maps and metrics at 1 and $p ranks" same_results "$D/up1.h5" "$D/up$p.h5"
  check "fcam upscale: identical examples PNG at 1 and $p ranks" cmp "$D/up1-examples.png" "$D/up$p-examples.png"
done
check "fcam upscale: maps in [0, 1], bilinear = the upsampled normalised CAM, metrics agree with the per-image rows" /usr/bin/python3 -c "
import h5py, numpy as np
f, c, s = h5py.File('$D/up1.h5', 'r'), h5py.File('$D/cam1.h5', 'r'), h5py.File('$D/test.h5', 'r')
gt = s['masks'][:].reshape(7, 48 * 48) > 0
for m in ('bilinear', 'crf', 'fcam', 'fcam-nocrf', 'fcam-noasc'):
    g = f[m]; M = g['maps'][:]
    assert M.shape == (7, 2304) and M.min() >= 0 and M.max() <= 1, m
    assert g['iou'].shape == (7, 100) and g['box_v1'].shape == (7, 100) and g['ap'].shape == (7,)
    assert abs(g.attrs['ap_mean'] - g['ap'][:].mean()) < 1e-12 and abs(g.attrs['iou'] - g['iou_curve'][:].max()) < 1e-12
    assert abs(g.attrs['maxboxacc_v1'] - (g['box_v1'][:] >= 0.5).mean(axis=0).max()) < 1e-12
    assert 0 <= g.attrs['pxap'] <= 1
    for i in range(7):   # IoU at threshold 0.5 recomputed from the stored map
        p = M[i] >= 0.5; u = (p | gt[i]).sum(); assert abs(g['iou'][i, 50] - ((p & gt[i]).sum() / u if u else 1)) < 1e-6, (m, i)
cam = c['cams'][:].reshape(7, 6, 6); lo = cam.min(axis=(1, 2), keepdims=True); hi = cam.max(axis=(1, 2), keepdims=True); cn = (cam - lo) / (hi - lo)
src = np.clip((np.arange(48) + 0.5) / 8 - 0.5, 0, None); i0 = np.minimum(np.floor(src).astype(int), 5); i1 = np.minimum(i0 + 1, 5); a = src - i0
up = (1 - a)[:, None] * ((1 - a)[None, :] * cn[:, i0][:, :, i0] + a[None, :] * cn[:, i0][:, :, i1]) + a[:, None] * ((1 - a)[None, :] * cn[:, i1][:, :, i0] + a[None, :] * cn[:, i1][:, :, i1])
assert np.abs(up.reshape(7, -1) - f['bilinear/maps'][:]).max() < 1e-6
assert not np.array_equal(f['fcam/maps'][:], f['fcam-nocrf/maps'][:]) and not np.array_equal(f['fcam/maps'][:], f['fcam-noasc/maps'][:])"
check "fcam upscale: the file records the settings used (the validated defaults: erode 5, lambda_sz 1, lambda_crf 5e-10, CRF weight 0.5)" /usr/bin/python3 -c "
import h5py; a = h5py.File('$D/up1.h5', 'r').attrs
assert (a['erode'], a['min_p'], a['sl_max'], a['sl_min'], a['ksz'], a['lambda_sl'], a['lambda_sz'], a['lambda_crf'], a['mf_weight'], a['steps'], a['hidden']) == (5, 0.1, 1, 1, 3, 1.0, 1.0, 5e-10, 0.5, 6, 4), dict(a)"
check "fcam upscale: the examples PNG has 3 rows of 6 panels" /usr/bin/python3 -c "
import struct; b = open('$D/up1-examples.png', 'rb').read(); w, h = struct.unpack('>II', b[16:24]); assert (w, h) == (6 * 50 - 2, 3 * 50 - 2), (w, h)"
run_np 1 "${UP[@]}" -fcam_methods fcam -fcam_scenes 3 -fcam_examples 0 -output "$D/first3.h5"
check "fcam upscale: an image's F-CAM map does not depend on the other images (seeds keyed by image and step)" /usr/bin/python3 -c "
import h5py, numpy as np
a, b = h5py.File('$D/up1.h5', 'r'), h5py.File('$D/first3.h5', 'r'); assert np.array_equal(a['fcam/maps'][:3], b['fcam/maps'][:])"

# bad inputs: one line, nothing written
O=$D/out; mkdir -p "$O"
run_np 2 -task scenes -input "$D/fm.h5" -seed 7 -scenes_textures "$TEX/brick.png" -scenes_size 48 -scenes_scale 1 -scenes_min_objects 2 -scenes_max_objects 2 -scenes_features -scenes_feat_sigma 1,2 -scenes_feat_filters 2 -scenes_count 4 -output "$D/two.h5"
expect_error "fcam: scenes with two objects"   1 'two\.h5: scene 0 does not hold exactly one object' "$O" 2 "${CAM[@]}" -fcam_train "$D/two.h5" -output "$O/x.h5"
expect_error "fcam: cam stage without training scenes" 1 'option -fcam_train: missing' "$O" 1 -task fcam -input "$D/test.h5" -fcam_stage cam -output "$O/x.h5"
expect_error "fcam: upscale without CAMs"      1 'option -fcam_cams: missing' "$O" 3 -task fcam -input "$D/test.h5" -output "$O/x.h5"
expect_error "fcam: an unknown stage"          1 "option -fcam_stage: 'train'; expected cam or upscale" "$O" 1 -task fcam -input "$D/test.h5" -fcam_stage train -output "$O/x.h5"
expect_error "fcam: an unknown method"         1 "option -fcam_methods: 'gradcam'" "$O" 2 "${UP[@]}" -fcam_methods bilinear,gradcam -output "$O/x.h5"
expect_error "fcam: a CRF stride not dividing the scene" 1 'option -fcam_crf_stride: 5 does not divide the 48 x 48 scenes' "$O" 2 "${UP[@]}" -fcam_crf_stride 5 -output "$O/x.h5"
expect_error "fcam: CAMs that are not a CAM file" 1 'test\.h5: no cam_height' "$O" 2 "${UP[@]}" -fcam_cams "$D/test.h5" -output "$O/x.h5"
/usr/bin/python3 -c "
import h5py, shutil; shutil.copy('$D/cam1.h5', '$D/camw.h5'); h5py.File('$D/camw.h5', 'r+').attrs['cam_width'] = 5"
expect_error "fcam: CAM rows that do not match cam_height x cam_width (every rank raises it)" 1 'camw\.h5: /cams has 7 rows of 36 values; expected at least 7 rows of 30' "$O" 3 "${UP[@]}" -fcam_cams "$D/camw.h5" -output "$O/x.h5"
expect_error "fcam: more scenes than CAMs"     1 'cam1\.h5: CAMs of 7 scenes; expected one for each of the 40 scenes' "$O" 3 "${UP[@]}" -input "$D/train.h5" -output "$O/x.h5"
expect_error "fcam: even seed windows"         1 'option -fcam_sl_max/sl_min/ksz/erode/min_p' "$O" 1 "${UP[@]}" -fcam_ksz 4 -output "$O/x.h5"
expect_error "fcam: a classifier scale too large for the scene" 1 "option -fcam_classifier_sigma: 20\\.?; expected scales with 3 sigma below the scene side" "$O" 2 "${RB[@]}" -fcam_classifier_sigma 1,20 -output "$O/x.h5"
expect_error "fcam: too many classifier filters" 1 'option -fcam_classifier_filters: 300; expected 0..256' "$O" 1 "${RB[@]}" -fcam_classifier_filters 300 -output "$O/x.h5"
