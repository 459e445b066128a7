#!/usr/bin/env bash
# SFDA (arXiv 2108.03152) on composited real-content scenes: a linear foreground head trained with
# CE on source scenes (brick, grass backgrounds), adapted without source data to target scenes
# (gravel backgrounds, intensity 0.5 + 0.8 (I^0.7 - 0.5)) by: nothing, entropy only, SFDA (entropy
# w = [0.1, 0.9] + KL(pihat || tag prior), prior fg = the source's mean fraction where an object is
# present), SFDA with the true sizes (upper bound), and target-supervised CE (oracle).  Two Adam
# learning rates (0.01, 0.001), and unweighted entropy (w = [0.5, 0.5]) as an ablation.  Prints one
# JSON line per (lr, w, method): Dice fg/bg and proportion error (mean +- 95% CI over target images),
# and one per claim ("sfda > none", "none > entropy", ... on Dice fg; paired per-image difference
# and CI; holds = the CI lies above 0).
#   BIN=bin bash benchmarks/losses/adapt.sh
# Knobs: SOURCE=100 TARGET=100 scenes, ITERS=100, FMNIST=<imported Fashion-MNIST>.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BIN:=bin}" "${SOURCE:=100}" "${TARGET:=100}" "${ITERS:=100}" "${NP:=2}" "${FMNIST:=benchmarks/out/fashion-mnist.h5}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
out=benchmarks/out/losses; mkdir -p "$out"
run() { mpirun -q -n "$NP" "$BIN/boundopt" "$@" >&2; }
[ -f "$FMNIST" ] || run jobs/fmnist-import.yaml -output "$FMNIST"
run jobs/scenes-train.yaml -input "$FMNIST" -scenes_count "$SOURCE" -output "$out/sfda-source.h5"
run jobs/scenes-target.yaml -input "$FMNIST" -scenes_count "$TARGET" -output "$out/sfda-target.h5"
run -task train-seg -input "$out/sfda-source.h5" -seg_loss ce -seg_iterations 150 -output "$out/sfda-source-head.h5"
ALL=none,entropy,sfda,sfda-true,oracle
for cfg in "0.01 0.1,0.9 $ALL" "0.001 0.1,0.9 $ALL" "0.001 0.5,0.5 none,entropy,sfda,sfda-true"; do
  set -- $cfg
  f="$out/sfda-lr$1-w$2.h5"
  run -task adapt -input "$out/sfda-target.h5" -adapt_source "$out/sfda-source-head.h5" -adapt_iterations "$ITERS" -adapt_lr $1 -adapt_weights $2 -adapt_method $3 -output "$f"
  /usr/bin/python3 - "$f" "$1" "$2" <<'PY'
import h5py, json, sys, numpy as np
f, lr, w = h5py.File(sys.argv[1], 'r'), float(sys.argv[2]), sys.argv[3]
meth = f.attrs['methods'].decode().split(',')
m = {k: f[k]['eval/metrics'][()] for k in meth}
def ci(x): return float(1.96 * x.std(ddof=1) / np.sqrt(len(x)))
for k, a in m.items():
    print(json.dumps({"bench": "sfda", "lr": lr, "entropy_w": w, "method": k, "images": len(a), "dice_fg": round(float(a[:, 0].mean()), 4), "dice_fg_ci95": round(ci(a[:, 0]), 4),
        "dice_bg": round(float(a[:, 1].mean()), 4), "prop_err_soft": round(float(a[:, 6].mean()), 4), "prop_err_soft_ci95": round(ci(a[:, 6]), 4),
        "fg_pred_hard": round(float(a[:, 5].mean()), 4), "fg_true": round(float(a[:, 3].mean()), 4)}))
for a, b in (("sfda", "none"), ("none", "entropy"), ("sfda", "entropy"), ("sfda-true", "sfda"), ("oracle", "none")):
    if a not in m or b not in m: continue
    d = m[a][:, 0] - m[b][:, 0]
    print(json.dumps({"bench": "sfda_claim", "claim": "%s > %s (Dice fg)" % (a, b), "lr": lr, "entropy_w": w, "mean_diff": round(float(d.mean()), 4), "ci95": round(ci(d), 4), "holds": bool(d.mean() - ci(d) > 0)}))
PY
done
