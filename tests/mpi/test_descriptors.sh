#!/usr/bin/env bash
# Integration: task train-seg with shape descriptors as the only supervision (supervision:
# descriptors, arXiv 2105.00859) on small composited scenes (48 x 48, Fashion-MNIST test images on
# the bundled textures): identical heads, bounds and metrics at 1, 2 and 3 ranks; the bounds contain
# the true descriptors of every training mask (computed here independently); the t schedule; the
# x, y channels on and off; the one-hidden-layer head (-seg_head mlp) with shuffled minibatches and
# t per epoch, for descriptors and for CE (identical at 1, 2 and 3 ranks, minibatches split across
# ranks); restarts keeping the fewest-violations seed's head, bit for bit; the bad inputs it refuses
# with one line.
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH
FM=/usr/share/datasets/fashion-mnist
TEX=jobs/data/textures
run_np 2 -task import -output "$D/fm.h5" -import_images "$FM/t10k-images-idx3-ubyte.gz" -import_labels "$FM/t10k-labels-idx1-ubyte.gz" || fail "import the Fashion-MNIST test images" "$(cat "$D/err.txt")"
SC=(-task scenes -input "$D/fm.h5" -seed 2026 -scenes_textures "$TEX/brick.png,$TEX/grass.png" -scenes_size 48 -scenes_scale 1,1.5 -scenes_features)
run_np 2 "${SC[@]}" -scenes_count 7 -output "$D/train.h5" || fail "scenes (train)" "$(cat "$D/err.txt")"
run_np 2 "${SC[@]}" -scenes_count 5 -scenes_split test -output "$D/test.h5" || fail "scenes (test)" "$(cat "$D/err.txt")"

TS=(-task train-seg -input "$D/train.h5" -seg_test "$D/test.h5" -seg_supervision descriptors -seg_descriptors "size,size+centroid+dist+length" -seg_iterations 6 -seg_lr 0.05)
for p in $RANKS; do run_np "$p" "${TS[@]}" -output "$D/d$p.h5" || fail "train-seg descriptors at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "descriptors: identical heads, losses, bounds and metrics at 1 and $p ranks" same_results "$D/d1.h5" "$D/d$p.h5"; done
run_np 3 "${TS[@]}" -seg_penalty quad -seg_descriptors size+length -output "$D/q3.h5" || fail "quad at 3 ranks" "$(cat "$D/err.txt")"
check "descriptors: bounds contain each training mask's size, centroid, spread and length (spec margins); unused ones are inactive; t = 1.1^i" /usr/bin/python3 -c "
import h5py, numpy as np
f, s = h5py.File('$D/d1.h5', 'r'), h5py.File('$D/train.h5', 'r')
assert f.attrs['supervision'] == b'descriptors' and f.attrs['centroid_margin'] == 7.5 and f.attrs['size_margin'] == 0.1
m = (s['masks'][()].reshape(7, 48, 48) > 0).astype(float)
def desc(g):   # size, cx, cy, dx, dy, length of a 0/1 map, x = column
    S = g.sum(); yy, xx = np.mgrid[0:48, 0:48]; cx, cy = (g * xx).sum() / S, (g * yy).sum() / S
    dx, dy = np.sqrt((g * (xx - cx) ** 2).sum() / S), np.sqrt((g * (yy - cy) ** 2).sum() / S)
    L = (g[:, 1:] != g[:, :-1]).sum() + (g[1:, :] != g[:-1, :]).sum() + (g[1:, 1:] != g[:-1, :-1]).sum() + (g[1:, :-1] != g[:-1, 1:]).sum()
    return np.array([S, cx, cy, dx, dy, L])
for grp, used in (('size', [[0], [0]]), ('size+centroid+dist+length', [[0], [0, 1, 2, 3, 4, 5]])):
    b = f[grp]['bounds'][()]; assert b.shape == (7, 24)
    lo, hi = b[:, :12].reshape(7, 2, 6), b[:, 12:].reshape(7, 2, 6)
    for i in range(7):
        for c, g in ((0, 1 - m[i]), (1, m[i])):
            d = desc(g)
            for j in range(6):
                if j in used[c]: assert lo[i, c, j] <= d[j] + 1e-9 <= hi[i, c, j] + 2e-9, (grp, i, c, j, lo[i, c, j], d[j], hi[i, c, j])
                else: assert lo[i, c, j] > hi[i, c, j], (grp, i, c, j)
        assert abs(hi[i, 1, 0] - 1.1 * m[i].sum()) < 1e-9 and (grp == 'size' or abs(lo[i, 1, 1] - (desc(m[i])[1] - 7.5)) < 1e-9)
    g = f[grp]; assert g['weights'].shape == (30,) and g['eval/metrics'].shape == (5, 11) and g.attrs['penalty'] == b'elb'
    assert g.attrs['constraints'] == 2 * 7 * (2 if grp == 'size' else 7) and 0 <= g.attrs['violated'] <= g.attrs['constraints']
    assert np.allclose(g['t'][()], 1.1 ** np.arange(6), rtol=1e-12) and np.all(np.isfinite(g['loss'][()]))
q = h5py.File('$D/q3.h5', 'r')['size+length']; b = q['bounds'][()]
assert q.attrs['penalty'] == b'quad' and q.attrs['constraints'] == 2 * 7 * 3 and np.all(b[:, [0, 6, 11]] <= b[:, [12, 18, 23]]) and np.all(np.isfinite(q['loss'][()]))"
run_np 2 "${TS[@]}" -seg_descriptors size -seg_coords false -output "$D/nocoords.h5"
run_np 2 "${SC[@]}" -scenes_count 7 -scenes_feat_position false -output "$D/nopos.h5"
run_np 2 -task train-seg -input "$D/nopos.h5" -seg_supervision descriptors -seg_descriptors size -seg_iterations 2 -output "$D/appended.h5"
check "descriptors: -seg_coords false drops x, y (26 weights); scenes without x, y get them appended (30)" /usr/bin/python3 -c "
import h5py
a, b = h5py.File('$D/nocoords.h5', 'r'), h5py.File('$D/appended.h5', 'r')
assert a['size/weights'].shape == (26,) and a.attrs['features'] == 12 and a.attrs['coords'] == 0
assert b['size/weights'].shape == (30,) and b.attrs['features'] == 14 and b.attrs['coords'] == 1"

# The mlp head, minibatches of 3 scenes shuffled per epoch (3 epochs of 3 steps each), descriptors and CE
MB=(-seg_head mlp -seg_hidden 8 -seg_batch 3 -seg_iterations 3 -seg_lr 0.01 -seg_seed 5)
for p in $RANKS; do
  run_np "$p" "${TS[@]}" "${MB[@]}" -output "$D/m$p.h5" || fail "mlp descriptors at $p ranks" "$(cat "$D/err.txt")"
  run_np "$p" -task train-seg -input "$D/train.h5" -seg_test "$D/test.h5" -seg_loss ce "${MB[@]}" -output "$D/mce$p.h5" || fail "mlp CE at $p ranks" "$(cat "$D/err.txt")"
done
for p in 2 3; do
  check "mlp + minibatches, descriptors: identical heads, losses and metrics at 1 and $p ranks" same_results "$D/m1.h5" "$D/m$p.h5"
  check "mlp + minibatches, CE: identical heads, losses and metrics at 1 and $p ranks" same_results "$D/mce1.h5" "$D/mce$p.h5"
done
run_np 2 "${TS[@]}" "${MB[@]}" -seg_seed 6 -output "$D/m-seed6.h5"
check "mlp + minibatches: 14 x 8 + 8 + 8 x 2 + 2 = 138 weights, t = 1.1^epoch, a finite loss per epoch; another seed gives another head" /usr/bin/python3 -c "
import h5py, numpy as np
f, c, o = h5py.File('$D/m1.h5', 'r'), h5py.File('$D/mce1.h5', 'r'), h5py.File('$D/m-seed6.h5', 'r')
assert f.attrs['head'] == b'mlp' and f.attrs['hidden'] == 8 and f.attrs['batch'] == 3 and c.attrs['head'] == b'mlp'
for g in ('size', 'size+centroid+dist+length'):
    assert f[g]['weights'].shape == (138,) and f[g]['loss'].shape == (3,) and np.all(np.isfinite(f[g]['loss'][()]))
    assert np.allclose(f[g]['t'][()], 1.1 ** np.arange(3), rtol=1e-12) and f[g]['eval/metrics'].shape == (5, 11)
    assert not np.array_equal(f[g]['weights'][()], o[g]['weights'][()])
assert c['ce/weights'].shape == (138,) and np.all(np.isfinite(c['ce/loss'][()])) and c['ce/loss'][2] < c['ce/loss'][0]"

# Restarts: seeds 5, 6, 7 in one job (2 ranks) keep the head of the fewest training violations,
# the same bits as that seed's own job (1 rank)
run_np 2 "${TS[@]}" "${MB[@]}" -seg_descriptors size+centroid+dist+length -seg_restarts 3 -output "$D/restarts.h5" || fail "restarts at 2 ranks" "$(cat "$D/err.txt")"
for s in 5 6 7; do run_np 1 "${TS[@]}" "${MB[@]}" -seg_descriptors size+centroid+dist+length -seg_seed $s -output "$D/r-seed$s.h5" || fail "seed $s" "$(cat "$D/err.txt")"; done
check "restarts: each seed's violations recorded; the kept head is the fewest-violations seed's (lowest on ties), bit for bit" /usr/bin/python3 -c "
import h5py, numpy as np
g = 'size+centroid+dist+length'
r = h5py.File('$D/restarts.h5', 'r'); one = [h5py.File('$D/r-seed%d.h5' % s, 'r')[g] for s in (5, 6, 7)]
v = [int(o.attrs['violated']) for o in one]
assert list(r[g]['restart_violated'][()]) == v, (list(r[g]['restart_violated'][()]), v)
k = int(np.argmin(v)); assert r[g].attrs['seed'] == 5 + k and r.attrs['restarts'] == 3 and r.attrs['seed'] == 5
assert r[g].attrs['violated'] == v[k] and all(o.attrs['seed'] == s for o, s in zip(one, (5, 6, 7)))
for name in ('weights', 'loss', 't', 'eval/metrics'): assert np.array_equal(r[g][name][()], one[k][name][()]), name
assert len(set(o['weights'][()].tobytes() for o in one)) == 3"

# Validation (the reference's protocol): after every epoch the head is scored on labelled scenes;
# -seg_keep best keeps the best epoch's head (the same bits as a job stopped after that epoch),
# -seg_lr_schedule reference halves the lr by its rule; the same at 1, 2 and 3 ranks
V=(-task train-seg -input "$D/train.h5" -seg_test "$D/test.h5" -seg_val "$D/test.h5" -seg_head mlp -seg_hidden 6 -seg_batch 2 -seg_seed 5 -seg_lr 0.1)
for p in $RANKS; do run_np "$p" "${V[@]}" -seg_loss ce -seg_iterations 10 -seg_keep best -output "$D/vbest$p.h5" || fail "keep best at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "validation: identical val_dice, lr and kept head at 1 and $p ranks" same_results "$D/vbest1.h5" "$D/vbest$p.h5"; done
b=$(/usr/bin/python3 -c "import h5py; print(int(h5py.File('$D/vbest1.h5', 'r')['ce'].attrs['best_epoch']))")
run_np 2 "${V[@]}" -seg_loss ce -seg_iterations $((b + 1)) -output "$D/vstop.h5" || fail "a job stopped after the best epoch" "$(cat "$D/err.txt")"
run_np 3 "${V[@]}" -seg_loss ce -seg_iterations 10 -output "$D/vlast.h5" || fail "keep last with validation" "$(cat "$D/err.txt")"
check "validation: the kept head is the best epoch's (earliest maximum, not the last), bit for bit a job stopped there; val_dice is the mean Dice fg of the evaluated head" /usr/bin/python3 -c "
import h5py, numpy as np
k, s, l = (h5py.File('$D/%s.h5' % n, 'r')['ce'] for n in ('vbest1', 'vstop', 'vlast'))
v = k['val_dice'][()]; b = int(k.attrs['best_epoch'])
assert b == int(np.argmax(v)) and b < 9 and k.attrs['kept_epoch'] == b and l.attrs['kept_epoch'] == 9 and k.attrs['val_dice_best'] == v[b], (b, v)
assert np.array_equal(k['weights'][()], s['weights'][()]) and not np.array_equal(k['weights'][()], l['weights'][()])
assert np.array_equal(v, l['val_dice'][()]) and np.array_equal(s['val_dice'][()], v[:b + 1])
assert abs(l['eval/metrics'][()][:, 0].mean() - v[9]) < 1e-12 and abs(k['eval/metrics'][()][:, 0].mean() - v[b]) < 1e-12
assert np.all(k['lr'][()] == 0.1) and h5py.File('$D/vbest1.h5', 'r').attrs['keep'] == b'best'"
for p in 1 3; do run_np "$p" "${V[@]}" -seg_supervision descriptors -seg_iterations 45 -seg_keep best -seg_lr_schedule reference -output "$D/vref$p.h5" || fail "lr schedule reference at $p ranks" "$(cat "$D/err.txt")"; done
check "validation: identical descriptor heads with the reference lr schedule at 1 and 3 ranks" same_results "$D/vref1.h5" "$D/vref3.h5"
check "validation: -seg_lr_schedule reference halves the lr after epoch e exactly when e % (best epoch so far + 20) == 0 (epoch 0 included)" /usr/bin/python3 -c "
import h5py, numpy as np
g = h5py.File('$D/vref1.h5', 'r')['size+centroid+dist+length']; v, lr = g['val_dice'][()], g['lr'][()]
assert lr[0] == 0.1 and h5py.File('$D/vref1.h5', 'r').attrs['lr_schedule'] == b'reference'
halved = 0
for e in range(44):
    best = int(np.argmax(v[:e + 1])); h = e % (best + 20) == 0; halved += h
    assert lr[e + 1] == lr[e] * (0.5 if h else 1), (e, best, lr[e], lr[e + 1])
assert halved >= 2 and g.attrs['best_epoch'] == int(np.argmax(v)), (halved, lr)"

# Validation scenes taken from the training file after the trained ones (-seg_val_first)
run_np 3 -task train-seg -input "$D/train.h5" -seg_scenes 5 -seg_test "$D/train.h5" -seg_val "$D/train.h5" -seg_val_first 5 -seg_head mlp -seg_hidden 6 -seg_batch 2 -seg_seed 5 -seg_lr 0.1 -seg_loss ce -seg_iterations 4 -output "$D/vfirst.h5" || fail "-seg_val_first at 3 ranks" "$(cat "$D/err.txt")"
check "validation: -seg_val_first 5 scores the file's scenes 5 and 6 (their evaluation rows' mean Dice)" /usr/bin/python3 -c "
import h5py, numpy as np
f = h5py.File('$D/vfirst.h5', 'r'); g = f['ce']; m = g['eval/metrics'][()]
assert m.shape[0] == 7 and f.attrs['val_first'] == 5 and f.attrs['val_scenes'] == 2 and f.attrs['train_scenes'] == 5
assert abs(m[5:, 0].mean() - g['val_dice'][3]) < 1e-12 and abs(m[:2, 0].mean() - g['val_dice'][3]) > 1e-9, (m[:, 0], g['val_dice'][()])"

O=$SCRATCH/o; mkdir -p "$O"
E=(-task train-seg -input "$D/train.h5" -output "$O/t.h5" -seg_supervision descriptors)
expect_error "descriptors: an unknown supervision"   1 "option -seg_supervision: 'boxes'; expected pixels or descriptors" "$O" 1 -task train-seg -input "$D/train.h5" -output "$O/t.h5" -seg_supervision boxes
expect_error "descriptors: an unknown descriptor"    1 "option -seg_descriptors: 'area' in 'size\+area'; expected size, centroid, dist, length" "$O" 2 "${E[@]}" -seg_descriptors size,size+area
expect_error "descriptors: a negative margin"        1 'option -seg_centroid_margin: -2\.?; expected a margin >= 0' "$O" 3 "${E[@]}" -seg_centroid_margin -2
expect_error "descriptors: an unknown penalty"       1 "option -seg_penalty: 'l1'; expected elb or quad" "$O" 2 "${E[@]}" -seg_penalty l1
expect_error "descriptors: a shrinking t"            1 'option -seg_t_factor: 0\.5; expected a factor >= 1' "$O" 1 "${E[@]}" -seg_t_factor 0.5
expect_error "descriptors: no descriptor set"        1 'option -seg_descriptors: empty; expected at least one set' "$O" 1 "${E[@]}" -seg_descriptors ","
expect_error "descriptors: an unknown head"          1 "option -seg_head: 'cnn'; expected linear or mlp" "$O" 2 "${E[@]}" -seg_head cnn
expect_error "descriptors: a negative minibatch"     1 'option -seg_batch: -1; expected scenes per minibatch >= 1, or 0' "$O" 3 "${E[@]}" -seg_batch -1
expect_error "descriptors: no restart"               1 'option -seg_restarts: 0; expected 1 to 1000 heads' "$O" 2 "${E[@]}" -seg_head mlp -seg_restarts 0
expect_error "descriptors: restarts of pixel CE"     1 'option -seg_restarts: 2 with -seg_supervision pixels; expected 1' "$O" 1 -task train-seg -input "$D/train.h5" -output "$O/t.h5" -seg_head mlp -seg_restarts 2
expect_error "descriptors: restarts of a linear head" 1 'option -seg_restarts: 2 with the linear head; expected 1' "$O" 3 "${E[@]}" -seg_restarts 2
expect_error "descriptors: no hidden units"          1 'option -seg_hidden: 0; expected 1 to 4096 hidden units' "$O" 1 "${E[@]}" -seg_head mlp -seg_hidden 0
run_np 1 -task scenes -input "$D/fm.h5" -seed 2026 -scenes_textures "$TEX/brick.png" -scenes_size 40 -scenes_scale 1 -scenes_features -scenes_count 2 -output "$O/small.h5" || fail "scenes (40 px)" "$(cat "$D/err.txt")"
expect_error "validation: keep best without -seg_val" 1 'option -seg_keep: best without -seg_val; expected a labelled validation scenes file' "$O" 2 "${E[@]}" -seg_keep best
expect_error "validation: reference lr without -seg_val" 1 'option -seg_lr_schedule: reference without -seg_val; expected a labelled validation scenes file' "$O" 3 "${E[@]}" -seg_lr_schedule reference
expect_error "validation: an unknown kept head"      1 "option -seg_keep: 'first'; expected last or best" "$O" 1 "${E[@]}" -seg_keep first
expect_error "validation: an unknown lr schedule"    1 "option -seg_lr_schedule: 'cosine'; expected constant or reference" "$O" 2 "${E[@]}" -seg_lr_schedule cosine
expect_error "validation: a negative scene count"    1 'option -seg_val_first/val_scenes: 0/-1; expected a first scene >= 0 and a count >= 0' "$O" 1 "${E[@]}" -seg_val "$D/test.h5" -seg_val_scenes -1
expect_error "validation: scenes of another size"    1 'small\.h5: 40 x 40 scenes with [0-9]+ head channels; expected 48 x 48' "$O" 3 "${E[@]}" -seg_val "$O/small.h5"
expect_error "validation: scenes it trains on"        1 'option -seg_val_first: 3 in the training file, whose first 5 scenes are trained on; expected validation scenes the head is not trained on' "$O" 2 "${E[@]}" -seg_scenes 5 -seg_val "$D/train.h5" -seg_val_first 3
expect_error "validation: past the file's end"       1 'train\.h5: 7 scenes; expected at least the 8 asked for' "$O" 3 "${E[@]}" -seg_val "$D/train.h5" -seg_val_first 7
