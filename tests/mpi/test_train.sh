#!/usr/bin/env bash
# Integration: task train (an MLP with CE, AT, TRADES or FIRE, issue 8) and task extract on real
# Fashion-MNIST test images: identical networks, losses and accuracies at 1, 2 and 3 ranks, a job
# stopped by a signal resumes (at another rank count) to the same result, the base-training ->
# extract -> fewshot pipeline, and the bad inputs they refuse.  Tiny runs: a few hundred rows,
# small hidden layers, 2 epochs, 3 PGD steps.
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH
FM=/usr/share/datasets/fashion-mnist
run_np 2 -task import -output "$D/fm.h5" -import_images "$FM/t10k-images-idx3-ubyte.gz" -import_labels "$FM/t10k-labels-idx1-ubyte.gz" || fail "import the Fashion-MNIST test images" "$(cat "$D/err.txt")"

TR=(-task train -input "$D/fm.h5" -seed 7 -train_train_rows 300 -train_test_rows 200 -train_epochs 2 -train_batch 32 -train_lr 0.05 -train_hidden 24,12 -train_steps 3 -train_eval_steps 5 -train_eval_rows 100)
for p in $RANKS; do run_np "$p" "${TR[@]}" -train_loss fire -output "$D/fire$p.h5" || fail "train fire at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "train fire: identical weights, losses and accuracies at 1 and $p ranks" same_results "$D/fire1.h5" "$D/fire$p.h5"; done
for p in 1 3; do run_np "$p" "${TR[@]}" -train_loss trades -train_optimizer adam -train_lr 0.002 -train_schedule cosine -output "$D/trades$p.h5" || fail "train trades at $p ranks" "$(cat "$D/err.txt")"; done
check "train trades (Adam, cosine schedule): identical at 1 and 3 ranks" same_results "$D/trades1.h5" "$D/trades3.h5"
for l in ce at; do run_np 1 "${TR[@]}" -train_loss $l -output "$D/$l.h5" || fail "train $l" "$(cat "$D/err.txt")"; done
check "train: the network, per-epoch history and attributes are written; losses fall; accuracies beat chance; robust <= clean" /usr/bin/python3 -c "
import h5py, numpy as np
for l in ('ce', 'at', 'trades1', 'fire1'):
    f = h5py.File('$D/' + l + '.h5', 'r'); n = f['network']
    assert list(n['widths'][:]) == [784, 24, 12, 10] and n['param'].shape == ((784 + 1) * 24 + 25 * 12 + 13 * 10,) and list(n['classes'][:]) == list(range(10))
    e = f['epochs']; loss, clean, rob = e['loss'][:], e['clean_accuracy'][:], e['robust_accuracy'][:]
    assert loss.shape == (2,) and f['meta/epoch_seconds'].shape == (2,) and np.all(f['meta/epoch_seconds'][:] > 0)
    assert loss[1] < loss[0], (l, loss)
    assert clean[1] > 0.2 and 0 <= rob[1] <= clean[1] + 0.05, (l, clean, rob)
    assert f.attrs['clean_accuracy'] == clean[1] and f.attrs['robust_accuracy'] == rob[1]
    assert np.all(e['reg'][:] == 0) == (l in ('ce', 'at')), (l, e['reg'][:])
    assert abs(loss[1] - e['ce'][1] - f.attrs['beta'] * e['reg'][1]) < 1e-12
assert h5py.File('$D/fire1.h5', 'r').attrs['beta'] == 20 and h5py.File('$D/trades1.h5', 'r').attrs['beta'] == 6"
run_np 1 "${TR[@]}" -train_loss fire -train_beta 0.000001 -train_steps 0 -train_sigma 0 -output "$D/fire-b0.h5"
check "train fire: the FR term is 0 when x' = x (no attack, no random start)" /usr/bin/python3 -c "
import h5py, numpy as np; assert np.all(h5py.File('$D/fire-b0.h5', 'r')['epochs/reg'][:] == 0)"

# checkpoint: the last rank is signalled after epoch 1 of 2 at 2 ranks; the rerun resumes at 3 ranks
CK=("${TR[@]}" -train_loss fire -checkpoint_file "$D/tr.ck.h5")
run_np 2 "${CK[@]}" -output "$D/resumed.h5" -debug_signal_at 0; rc=$?
check "train: a signal stops after the epoch with a checkpoint (exit 3) and no results" test "$rc" = 3 -a -f "$D/tr.ck.h5" -a ! -e "$D/resumed.h5"
run_np 3 "${CK[@]}" -output "$D/resumed.h5" -restart || fail "train resume" "$(cat "$D/err.txt")"
check "train: the resumed job says so and equals the uninterrupted one; the checkpoint is removed" bash -c "grep -q 'resuming from .*after epoch 1 of 2' '$D/out.txt' && h5diff --exclude-path /meta '$D/fire1.h5' '$D/resumed.h5' && test ! -e '$D/tr.ck.h5'"

# base training on classes 0-4, the penultimate layer of classes 5-9, few-shot on it
run_np 2 -task train -input "$D/fm.h5" -seed 3 -train_loss ce -train_classes 0-4 -train_train_rows 2000 -train_test_rows 500 -train_epochs 2 -train_hidden 64,32 -train_eval_rows 50 -train_eval_steps 2 -output "$D/base.h5" || fail "train on classes 0-4" "$(cat "$D/err.txt")"
for p in 1 3; do run_np "$p" -task extract -input "$D/fm.h5" -extract_network "$D/base.h5" -extract_classes 5-9 -output "$D/novel$p.h5" || fail "extract at $p ranks" "$(cat "$D/err.txt")"; done
check "extract: identical features at 1 and 3 ranks" same_results "$D/novel1.h5" "$D/novel3.h5"
check "extract: the 32 penultimate units of every class 5-9 row, in input order, with its label; equal to a NumPy forward pass" /usr/bin/python3 -c "
import h5py, numpy as np
fm, nv, net = h5py.File('$D/fm.h5', 'r'), h5py.File('$D/novel1.h5', 'r'), h5py.File('$D/base.h5', 'r')['network']
lab = fm['labels'][:]; sel = (lab >= 5) & (lab <= 9)
assert list(net['classes'][:]) == [0, 1, 2, 3, 4] and list(net['widths'][:]) == [784, 64, 32, 5]
assert nv['features'].shape == (sel.sum(), 32) and np.array_equal(nv['labels'][:], lab[sel])
w, p = net['widths'][:], net['param'][:]; a = fm['features'][:][sel].astype(np.float64); o = 0
for l in range(2):
    W = p[o:o + w[l] * w[l + 1]].reshape(w[l], w[l + 1]); o += w[l] * w[l + 1]; b = p[o:o + w[l + 1]]; o += w[l + 1]
    a = np.maximum(a @ W + b, 0)
assert np.abs(nv['features'][:] - a).max() < 1e-5 * max(1, np.abs(a).max())"
run_np 2 -task fewshot -input "$D/novel1.h5" -fewshot_classes 5-9 -fewshot_tasks 40 -fewshot_method simpleshot,tim-adm -fewshot_iterations 30 -output "$D/fs.h5" || fail "fewshot on extracted features" "$(cat "$D/err.txt")"
check "fewshot on features learned on classes 0-4 beats chance (1/5) on classes 5-9" /usr/bin/python3 -c "
import h5py; f = h5py.File('$D/fs.h5', 'r')
for m in ('simpleshot', 'tim-adm'): a = f[m].attrs['mean_accuracy']; assert a > 0.4, (m, a)"

O=$SCRATCH/o; mkdir -p "$O"
"$TOOLS/mkfeatures" "$D/gauss.h5" -n 60 -d 784
"$TOOLS/mkfeatures" "$D/d12.h5" -n 60 -d 12
E=(-task train -input "$D/fm.h5" -output "$O/t.h5" -train_train_rows 100 -train_test_rows 50 -train_epochs 1)
expect_error "train: an unknown loss"            1 "option -train_loss: 'mart'; expected ce, at, trades or fire" "$O" 1 "${E[@]}" -train_loss mart
expect_error "train: a bad hidden width"         1 "option -train_hidden: '0'; expected up to 7 widths >= 1" "$O" 1 "${E[@]}" -train_hidden 32,0
expect_error "train: more rows than the input"   1 'option -train_train_rows/test_rows: 9999 \+ 50 rows; expected at most the 10000 rows' "$O" 3 "${E[@]}" -train_train_rows 9999
expect_error "train: features outside [0, 1]"    1 'gauss\.h5: [0-9]+ feature values outside \[0, 1\]; expected pixel intensities' "$O" 1 -task train -input "$D/gauss.h5" -output "$O/t.h5" -train_train_rows 40 -train_test_rows 20
expect_error "train: classes absent from the rows" 1 "no row of rows 0..99 has a label in -train_classes '40-41'" "$O" 1 "${E[@]}" -train_classes 40-41
expect_error "train: one class"                  1 'option -train_classes: 1 class; expected at least 2' "$O" 1 "${E[@]}" -train_classes 3
expect_error "train: an unknown schedule"        1 "option -train_schedule: 'poly'; expected constant, step or cosine" "$O" 1 "${E[@]}" -train_schedule poly
expect_error "train: a negative beta"            1 'option -train_beta: -1\.?; expected beta >= 0' "$O" 1 "${E[@]}" -train_beta -1
expect_error "train: eps beyond the box"         1 'option -train_eps: 2\.?; expected 0 <= eps <= 1' "$O" 1 "${E[@]}" -train_eps 2
expect_error "train: a milestone outside (0, 1)" 1 "option -train_milestones: '75'; expected up to 16 fractions in \(0, 1\)" "$O" 1 "${E[@]}" -train_milestones 75
X=(-task extract -input "$D/fm.h5" -output "$O/x.h5")
expect_error "extract: no network option"        1 'option -extract_network: missing' "$O" 1 "${X[@]}"
expect_error "extract: a file without /network"  1 'fm\.h5: no /network/\{widths,param,classes\}; expected the output of task train' "$O" 2 "${X[@]}" -extract_network "$D/fm.h5"
expect_error "extract: rows of another size"     1 'd12\.h5: rows of 12 values; expected 784, the inputs of the network' "$O" 1 -task extract -input "$D/d12.h5" -output "$O/x.h5" -extract_network "$D/base.h5"
expect_error "extract: classes absent"           1 "no row has a label in -extract_classes '50-52'" "$O" 1 "${X[@]}" -extract_network "$D/base.h5" -extract_classes 50-52
