#!/usr/bin/env bash
# Shape descriptors as the only supervision (arXiv 2105.00859, spec losses.md section 5) on the
# composited scenes of the loss-engine issue: the first TRAIN training and TEST test scenes of
# jobs/scenes-train.yaml and jobs/scenes-test.yaml (same generator, seed 2026, same streams: scene s
# depends on (seed, s) only, so they are those files' first scenes).  A 2-class pixel head on the
# 14 feature channels (x, y included: -seg_coords), Adam (beta2 0.99), trained with
#   full pixel supervision (CE) and, with no pixel label, per-image bounds on descriptor sets
#   size; size+centroid; size+centroid+dist; size+centroid+dist+length (extended log-barrier,
#   t = 1 x 1.1 per epoch, weight 1e-2 per descriptor, penalty / (W H), minibatch mean),
# with the one-hidden-layer head (-seg_head mlp, HIDDEN ReLU units, standardised features) and
# shuffled minibatches of BATCH scenes, EPOCHS epochs, lr LR, for CE and every set alike; then the
# linear head with the same minibatches and t per epoch (size, all four; lr LR_LIN), and the linear
# head full batch as before (CE and all four, 200 steps, lr 0.05, t x 1.1 per step).
# Prints one JSON line per case (test Dice fg, mean +- 95% CI over test images, training constraints
# violated, training pixels/s per epoch and its ratio to the CE run of the same head), one per
# trivial reference (all foreground: Dice 2 pi/(1 + pi); a random mask of the true size: expected
# Dice pi) and one per paired claim ("all four within 0.05 of CE", "all four > size", ...).
#   BIN=bin bash benchmarks/losses/descriptors.sh
# Knobs: TRAIN=60 TEST=100 scenes, EPOCHS=80, BATCH=4, HIDDEN=32, LR=0.005, LR_LIN=0.01, NP=2,
# FMNIST=<imported Fashion-MNIST>.  ~45 min on 2 shared cores (load 10).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BIN:=bin}" "${TRAIN:=60}" "${TEST:=100}" "${EPOCHS:=80}" "${BATCH:=4}" "${HIDDEN:=32}" "${LR:=0.005}" "${LR_LIN:=0.01}" "${NP:=2}" "${FMNIST:=benchmarks/out/fashion-mnist.h5}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
out=benchmarks/out/losses; mkdir -p "$out"
run() { mpirun -q -n "$NP" "$BIN/boundopt" "$@" | tee -a "$out/desc-log.txt" >&2; }
[ -f "$FMNIST" ] || run jobs/fmnist-import.yaml -output "$FMNIST"
tr="$out/desc-train-$TRAIN.h5" te="$out/desc-test-$TEST.h5"
[ -f "$tr" ] || run jobs/scenes-train.yaml -input "$FMNIST" -scenes_count "$TRAIN" -output "$tr"
[ -f "$te" ] || run jobs/scenes-test.yaml -input "$FMNIST" -scenes_count "$TEST" -output "$te"

: >"$out/desc-log.txt"
common=(-task train-seg -input "$tr" -seg_test "$te" -seg_beta2 0.99)
mlp=(-seg_head mlp -seg_hidden "$HIDDEN" -seg_batch "$BATCH" -seg_iterations "$EPOCHS" -seg_lr "$LR")
SETS="size,size+centroid,size+centroid+dist,size+centroid+dist+length"
run "${common[@]}" "${mlp[@]}" -seg_supervision pixels -seg_loss ce -output "$out/desc-mlp-ce.h5"
run "${common[@]}" "${mlp[@]}" -seg_supervision descriptors -seg_descriptors "$SETS" -output "$out/desc-mlp-elb.h5"
run "${common[@]}" -seg_batch "$BATCH" -seg_iterations "$EPOCHS" -seg_lr "$LR_LIN" -seg_supervision descriptors -seg_descriptors "size,size+centroid+dist+length" -output "$out/desc-lin-mb.h5"
run "${common[@]}" -seg_iterations 200 -seg_lr 0.05 -seg_supervision pixels -seg_loss ce -output "$out/desc-ce.h5"
run "${common[@]}" -seg_iterations 200 -seg_lr 0.05 -seg_supervision descriptors -seg_descriptors "size+centroid+dist+length" -output "$out/desc-elb.h5"

/usr/bin/python3 - "$out" <<'EOF'
import h5py, json, sys, numpy as np
out = sys.argv[1]
def ci(x): return float(1.96 * x.std(ddof=1) / np.sqrt(len(x)))
cases = [("desc-mlp-ce", "ce", "pixels (CE)"), ("desc-mlp-elb", "size", "size"), ("desc-mlp-elb", "size+centroid", "size+centroid"),
         ("desc-mlp-elb", "size+centroid+dist", "size+centroid+dist"), ("desc-mlp-elb", "size+centroid+dist+length", "all four"),
         ("desc-lin-mb", "size", "linear, minibatch: size"), ("desc-lin-mb", "size+centroid+dist+length", "linear, minibatch: all four"),
         ("desc-ce", "ce", "linear, full batch: CE"), ("desc-elb", "size+centroid+dist+length", "linear, full batch: all four")]
import re
speed = {}
for line in open("%s/desc-log.txt" % out):
    r = re.match(r"train-seg: (\S+)\s.*?(\S+) pixels/s per iteration", line)
    if r: speed.setdefault(r.group(1), []).append(float(r.group(2)))
# log order = run order: CE (mlp), the four sets (mlp), size and all four (linear minibatch), CE and all four (linear full batch)
order = {k: 0 for k in speed}
dice = {}
for fn, grp, label in cases:
    f = h5py.File("%s/%s.h5" % (out, fn), "r"); g = f[grp]; m = g["eval/metrics"][()]
    dice[label] = m[:, 0]
    row = {"bench": "descriptors", "case": label, "supervision": f.attrs["supervision"].decode(), "group": grp,
           "penalty": g.attrs["penalty"].decode() if "penalty" in g.attrs else None, "lr": float(f.attrs["lr"]), "coords": int(f.attrs["coords"]),
           "head": (lambda v: v.decode() if isinstance(v, bytes) else v)(f.attrs["head"]), "hidden": int(f.attrs["hidden"]), "batch": int(f.attrs["batch"]),
           "iterations": int(f.attrs["iterations"]), "train_scenes": int(f.attrs["train_scenes"]), "test_images": len(m),
           "dice_fg": round(float(m[:, 0].mean()), 4), "dice_fg_ci95": round(ci(m[:, 0]), 4), "iou_fg": round(float(m[:, 2].mean()), 4),
           "fg_true": round(float(m[:, 3].mean()), 4), "fg_pred_hard": round(float(m[:, 5].mean()), 4),
           "prop_err_hard": round(float(m[:, 7].mean()), 4), "prop_err_hard_ci95": round(ci(m[:, 7]), 4)}
    if "constraints" in g.attrs: row.update(train_constraints=int(g.attrs["constraints"]), train_violated=int(g.attrs["violated"]))
    if grp in speed and order[grp] < len(speed[grp]):
        row["pixels_per_s"] = speed[grp][order[grp]]; order[grp] += 1
        row["speed_ratio_vs_ce"] = round(row["pixels_per_s"] / speed["ce"][0 if row["head"] == "mlp" else min(1, len(speed["ce"]) - 1)], 3)
    print(json.dumps(row))
pi = m[:, 3]
for label, d in (("all foreground", 2 * pi / (1 + pi)), ("random mask of the true size (expected)", pi)):
    dice[label] = d
    print(json.dumps({"bench": "descriptors_reference", "case": label, "test_images": len(d), "dice_fg": round(float(d.mean()), 4), "dice_fg_ci95": round(ci(d), 4)}))
for a, b, margin, claim in (("all four", "pixels (CE)", -0.05, "all four approach CE (Dice within 0.05)"),
                            ("all four", "size", 0.0, "all four > size"), ("size+centroid", "size", 0.0, "size+centroid > size"),
                            ("size", "all foreground", 0.0, "size > all foreground"), ("all four", "all foreground", 0.0, "all four > all foreground"),
                            ("all four", "linear, full batch: all four", 0.0, "mlp + minibatches > the linear full-batch realisation (all four)"),
                            ("linear, minibatch: all four", "linear, full batch: all four", 0.0, "t per epoch with minibatches helps the linear head (all four)")):
    d = dice[a] - dice[b]
    print(json.dumps({"bench": "descriptors_claim", "claim": claim, "mean_diff": round(float(d.mean()), 4), "ci95": round(ci(d), 4),
                      "holds": bool(d.mean() - ci(d) > margin)}))
EOF
