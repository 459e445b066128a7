#!/usr/bin/env bash
# Shape descriptors on PROMISE-like control scenes (spec losses.md section 5 "Honest experiment":
# one textured ellipse per scene; benchmarks/losses/ellipse_scenes.py), with exactly the composited
# scenes' chosen cell (README section 6, fourth version): 120 training scenes, feature scales
# 1, 2, 4, 8, 16 (22 channels), the mlp head with 32 units, minibatches of 4, 200 epochs, lr 0.005,
# beta2 0.99, the same bounds and barrier; CE, size only and all four, seeds SEEDS (default 1 2 3;
# size only for the first seed).  Prints one JSON line per head and one per paired claim.
#   BIN=bin bash benchmarks/losses/ellipses.sh        (~10 min per seed at 2 ranks)
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BIN:=bin}" "${NP:=2}" "${SEEDS:=1 2 3}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
out=benchmarks/out/losses/ell; mkdir -p "$out"
tr="$out/ell-train-140.h5" te="$out/ell-test-100.h5"
[ -f "$tr" ] || /usr/bin/python3 benchmarks/losses/ellipse_scenes.py "$tr" 140 train
[ -f "$te" ] || /usr/bin/python3 benchmarks/losses/ellipse_scenes.py "$te" 100 test
A4="size+centroid+dist+length"
common=(-task train-seg -input "$tr" -seg_scenes 120 -seg_test "$te" -seg_head mlp -seg_hidden 32 -seg_batch 4 -seg_iterations 200 -seg_lr 0.005 -seg_beta2 0.99)
first=1
for s in $SEEDS; do
  sets=$A4; [ $first = 1 ] && sets="size,$A4"; first=0
  [ -f "$out/s$s-ce.h5" ] || mpirun -q -n "$NP" "$BIN/boundopt" "${common[@]}" -seg_seed "$s" -seg_supervision pixels -seg_loss ce -output "$out/s$s-ce.h5" >&2
  [ -f "$out/s$s-elb.h5" ] || mpirun -q -n "$NP" "$BIN/boundopt" "${common[@]}" -seg_seed "$s" -seg_supervision descriptors -seg_descriptors "$sets" -output "$out/s$s-elb.h5" >&2
done
/usr/bin/python3 - "$out" $SEEDS <<'PYEOF'
import h5py, json, sys, numpy as np
out, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]]
A4 = "size+centroid+dist+length"
def ci(x): return float(1.96 * x.std(ddof=1) / np.sqrt(len(x)))
def dice(fn, g): f = h5py.File(fn, "r")[g]; return f["eval/metrics"][()][:, 0], f.attrs.get("violated"), f.attrs.get("constraints")
C, E = [], []
for s in seeds:
    c, _, _ = dice(f"{out}/s{s}-ce.h5", "ce"); C.append(c)
    rows = [("pixels (CE)", c, None, None)]
    e, v, n = dice(f"{out}/s{s}-elb.h5", A4); E.append(e); rows.append(("all four", e, v, n))
    if "size" in h5py.File(f"{out}/s{s}-elb.h5", "r"):
        z, v2, n2 = dice(f"{out}/s{s}-elb.h5", "size"); rows.append(("size", z, v2, n2))
    for name, d, v, n in rows:
        r = {"bench": "descriptors_ellipses", "seed": s, "case": name, "test_images": len(d), "dice_fg": round(float(d.mean()), 4), "dice_fg_ci95": round(ci(d), 4)}
        if v is not None: r.update(train_violated=int(v), train_constraints=int(n))
        print(json.dumps(r))
    for name, d, _, _ in rows[1:]:
        x = d - c
        print(json.dumps({"bench": "descriptors_ellipses_claim", "seed": s, "claim": f"{name} approaches CE (Dice within 0.05)", "mean_diff": round(float(x.mean()), 4), "ci95": round(ci(x), 4), "holds": bool(x.mean() - ci(x) > -0.05)}))
if len(C) > 1:
    x = np.mean([e - c for e, c in zip(E, C)], 0)
    print(json.dumps({"bench": "descriptors_ellipses_claim", "seed": "mean of " + " ".join(map(str, seeds)), "claim": "all four approach CE (Dice within 0.05)", "mean_diff": round(float(x.mean()), 4), "ci95": round(ci(x), 4), "holds": bool(x.mean() - ci(x) > -0.05)}))
PYEOF
