#!/usr/bin/env bash
# FIRE (arXiv 2106.06685) on Fashion-MNIST: the same MLP (784-HIDDEN-10, ReLU), epochs, seed and
# optimiser (SGD 0.01, momentum 0.9, batch 128, x0.1 at 75% and 90% of the epochs) trained with CE,
# AT (CE on PGD-CE examples), TRADES (beta 6, PGD-KL) and FIRE (beta 20, PGD-FR); training attacks
# eps 0.1, step 0.01, 10 steps, start x + 0.001 N(0, I).  The threat model is image space (pixels in
# [0, 1]).  Parts (PARTS, default all):
#   accuracy  clean test accuracy (all 10000 test images) and PGD-CE robust accuracy (eps 0.1, step
#             0.01, 40 steps, on the first EVAL_ROWS test images) per loss, at NP ranks
#   sweep     the trade-off: TRADES and FIRE at other betas (SWEEP="loss:beta ..."), same budget
#   time      training seconds per epoch at 1 and 2 ranks, interleaved (1, 2, 1, 2, ...: the machine
#             is shared, so the pairs see similar load), TIME_ROWS rows, REPEAT pairs per loss
#   check     the trained networks attacked by an independent PGD-CE in PyTorch (eval_torch.py) on
#             all 10000 test images: robust accuracy with a smaller standard error
#   peer      one TRADES epoch of the same MLP in PyTorch (one thread, float32 and float64) against
#             boundopt at 1 rank on the same rows, run back to back: the time ratio
# One JSON line per case.
#   BIN=bin bash benchmarks/fire/run.sh
# Knobs: EPOCHS=3 ROWS=20000 (the first training images) EVAL_ROWS=2000 HIDDEN=256 NP=2 SEED=1
#        DATA=jobs/data/fmnist.h5 (70000 x 784: 60000 training, then 10000 test images)
#        TIME_ROWS=5000 REPEAT=2
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BIN:=bin}" "${EPOCHS:=3}" "${ROWS:=20000}" "${EVAL_ROWS:=2000}" "${HIDDEN:=256}" "${NP:=2}" "${DATA:=jobs/data/fmnist.h5}" "${SEED:=1}"
: "${LOSSES:=ce at trades fire}" "${SWEEP:=trades:2 trades:12 fire:4 fire:12}" "${TIME_ROWS:=5000}" "${REPEAT:=2}" "${PARTS:=accuracy sweep check time peer}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
out=benchmarks/out/fire; mkdir -p "$out"
COMMON=(-task train -input "$DATA" -seed "$SEED" -train_hidden "$HIDDEN" -train_test_rows 10000)
report() { # file case ranks train_rows robust_rows
  /usr/bin/python3 - "$@" <<'PY'
import h5py, json, sys
f = h5py.File(sys.argv[1], 'r'); e = f['epochs']; r = float(f.attrs['robust_accuracy'])
print(json.dumps({"bench": "fire", "case": sys.argv[2], "ranks": int(sys.argv[3]), "loss": f.attrs['loss'].decode(), "beta": float(f.attrs['beta']),
    "hidden": f.attrs['hidden'].decode(), "epochs": int(f.attrs['epochs']), "train_rows": int(sys.argv[4]),
    "clean_accuracy": round(float(f.attrs['clean_accuracy']), 4), "clean_test_rows": int(f.attrs['test_rows']),
    "robust_accuracy": None if r != r else round(r, 4), "robust_test_rows": int(sys.argv[5]),
    "attack": "PGD-CE eps %g step %g, %d steps" % (f.attrs['eval_eps'], f.attrs['eval_step'], f.attrs['eval_steps']),
    "clean_by_epoch": [round(float(v), 4) for v in e['clean_accuracy'][:]], "loss_by_epoch": [round(float(v), 4) for v in e['loss'][:]],
    "seconds_per_epoch": round(float(f['meta/epoch_seconds'][:].mean()), 2)}))
PY
}
accuracy_run() { # case loss beta
  local f="$out/fire-$2-b$3.h5"
  mpirun -q -n "$NP" "$BIN/boundopt" "${COMMON[@]}" -train_train_rows "$ROWS" -train_loss "$2" -train_beta "$3" -train_epochs "$EPOCHS" -train_eval_every 0 -train_eval_rows "$EVAL_ROWS" -train_monitor -output "$f" >&2
  report "$f" "$1" "$NP" "$ROWS" "$EVAL_ROWS"
}
time_run() { # loss ranks -> seconds of one epoch
  mpirun -q -n "$2" "$BIN/boundopt" "${COMMON[@]}" -train_train_rows "$TIME_ROWS" -train_loss "$1" -train_epochs 1 -train_eval_rows 1 -train_eval_steps 0 -output "$out/time.h5" >&2
  /usr/bin/python3 -c "import h5py; print(float(h5py.File('$out/time.h5', 'r')['meta/epoch_seconds'][0]))"
}
if [[ " $PARTS " == *" accuracy "* ]]; then
  for loss in $LOSSES; do accuracy_run accuracy "$loss" 0; done
fi
if [[ " $PARTS " == *" sweep "* ]]; then
  for lb in $SWEEP; do accuracy_run sweep "${lb%%:*}" "${lb##*:}"; done
fi
if [[ " $PARTS " == *" check "* ]]; then
  files=()
  for loss in $LOSSES; do files+=("$out/fire-$loss-b0.h5"); done
  for lb in $SWEEP; do files+=("$out/fire-${lb%%:*}-b${lb##*:}.h5"); done
  /usr/bin/python3 benchmarks/fire/eval_torch.py "$DATA" "${files[@]}"
fi
if [[ " $PARTS " == *" time "* ]]; then
  for loss in $LOSSES; do
    t1=(); t2=()
    for r in $(seq "$REPEAT"); do t1+=("$(time_run "$loss" 1)"); t2+=("$(time_run "$loss" 2)"); done
    /usr/bin/python3 -c "
import json, sys; a, b = [float(v) for v in '${t1[*]}'.split()], [float(v) for v in '${t2[*]}'.split()]
print(json.dumps({'bench': 'fire', 'case': 'time-per-epoch', 'loss': '$loss', 'train_rows': $TIME_ROWS, 'seconds_1rank': a, 'seconds_2ranks': b,
    'speedup_2ranks': round(min(a) / min(b), 2), 'seconds_per_60000_rows_1rank': round(min(a) * 60000 / $TIME_ROWS, 1)}))"
  done
fi
if [[ " $PARTS " == *" peer "* ]]; then
  ours=$(time_run trades 1)
  for dt in float32 float64; do
    /usr/bin/python3 benchmarks/fire/trades_torch.py "$DATA" "$TIME_ROWS" "$HIDDEN" "$dt" | /usr/bin/python3 -c "
import json, sys; d = json.loads(sys.stdin.read()); d['boundopt_1rank_seconds'] = $ours; d['ratio_boundopt_over_torch'] = round($ours / d['seconds'], 2); print(json.dumps(d))"
  done
fi
