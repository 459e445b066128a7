#!/usr/bin/env bash
# Mixed supervision ("the student becomes the master", arXiv 2012.08051) on composited real-content
# scenes: STRONG fully labelled training scenes, the others with weak labels only (a radius-3 disk of
# foreground pixels), a teacher head (CE on the strong scenes) and student heads trained with partial
# CE only, + KD from the teacher, + KD + entropy (the method), + entropy without KD; held-out Dice.
# Prints one JSON line per variant (Dice fg/bg, proportion error, mean +- 95% CI over test images)
# and one per claim ("pce+kd+h > pce", "pce+kd+h > teacher", "pce+kd+h > pce+kd"; paired per-image
# Dice difference and CI; holds = the CI lies above 0), for two numbers of strong scenes.
#   BIN=bin bash benchmarks/losses/mixed.sh
# Knobs: TRAIN=100 TEST=100 scenes, ITERS=150, FMNIST=<imported Fashion-MNIST>.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BIN:=bin}" "${TRAIN:=100}" "${TEST:=100}" "${ITERS:=150}" "${NP:=2}" "${FMNIST:=benchmarks/out/fashion-mnist.h5}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
out=benchmarks/out/losses; mkdir -p "$out"
run() { mpirun -q -n "$NP" "$BIN/boundopt" "$@" >&2; }
[ -f "$FMNIST" ] || run jobs/fmnist-import.yaml -output "$FMNIST"
run jobs/scenes-train.yaml -input "$FMNIST" -scenes_count "$TRAIN" -output "$out/mixed-train.h5"
run jobs/scenes-test.yaml -input "$FMNIST" -scenes_count "$TEST" -output "$out/mixed-test.h5"
for strong in 3 10; do
  run -task mixed -input "$out/mixed-train.h5" -mixed_test "$out/mixed-test.h5" -mixed_strong $strong -mixed_iterations "$ITERS" -output "$out/mixed-strong$strong.h5"
  /usr/bin/python3 - "$out/mixed-strong$strong.h5" "$strong" <<'PY'
import h5py, json, sys, numpy as np
f, strong = h5py.File(sys.argv[1], 'r'), int(sys.argv[2])
meth = f.attrs['methods'].decode().split(',')
m = {k: f[k]['eval/metrics'][()] for k in meth}
def ci(x): return float(1.96 * x.std(ddof=1) / np.sqrt(len(x)))
for k, a in m.items():
    print(json.dumps({"bench": "mixed", "strong": strong, "weak_pixels": int(f.attrs['weak_pixels']), "variant": k, "images": len(a), "dice_fg": round(float(a[:, 0].mean()), 4),
        "dice_fg_ci95": round(ci(a[:, 0]), 4), "dice_bg": round(float(a[:, 1].mean()), 4), "prop_err_soft": round(float(a[:, 6].mean()), 4)}))
for a, b in (("pce+kd+h", "pce"), ("pce+kd+h", "teacher"), ("pce+kd+h", "pce+kd")):
    d = m[a][:, 0] - m[b][:, 0]
    print(json.dumps({"bench": "mixed_claim", "claim": "%s > %s (Dice fg)" % (a, b), "strong": strong, "mean_diff": round(float(d.mean()), 4), "ci95": round(ci(d), 4), "holds": bool(d.mean() - ci(d) > 0)}))
PY
done
