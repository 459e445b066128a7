#!/usr/bin/env bash
# bound.sh - strong scaling of the SLK bound step (bench_bound) from 1 to 2 ranks, and whether its
# result is the same at 1, 2 and 3 ranks.
#
#   BUILD=build bash benchmarks/bound.sh            # knobs: ROUNDS=5 REPS=15 ITS=20 K=10 OUT=...
#   BASE=/path/to/other/build/benchmarks/bench_kmeans bash benchmarks/bound.sh
#       also runs `bench_kmeans bound` of another build (e.g. the last commit, unpacked with
#       git archive and built elsewhere) in the same rounds: case "base_bound_iteration".
#
# Data: benchmarks/out/fm-l2.h5, fm-l2-knn5.h5 and fm-l2-init10.h5 (made by benchmarks/cluster.sh).
# The 1- and 2-rank runs alternate, ROUNDS rounds, so that a change of load on the shared machine
# hits both; then one 3-rank run for the hashes.  Every JSON line goes to $OUT (appended) and to
# stdout; the summary gives, per case, the median over rounds of each run's median, the
# efficiency T1 / (2 T2) of those medians and of each round's pair, and the load averages.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-5} REPS=${REPS:-15} ITS=${ITS:-20} K=${K:-10}
OUT=${OUT:-benchmarks/out/bound.jsonl}
PY=${BENCH_PYTHON:-/usr/bin/python3}
D=benchmarks/out
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
die() { echo "boundopt: bench: $*" >&2; exit 1; }
[ -x "$BUILD/benchmarks/bench_bound" ] || die "$BUILD/benchmarks/bench_bound missing; expected make BUILD=$BUILD tools first"
for f in fm-l2.h5 fm-l2-knn5.h5 fm-l2-init10.h5; do
  [ -f "$D/$f" ] || die "$D/$f missing; expected the files of benchmarks/cluster.sh (run it once)"
done

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
run() { # ranks round
  mpirun -q --oversubscribe -n "$1" "$BUILD/benchmarks/bench_bound" "$D/fm-l2.h5" "$D/fm-l2-knn5.h5" --init "$D/fm-l2-init10.h5" \
    --k "$K" --its "$ITS" --reps "$REPS" | grep '^{"bench":"bound"' | sed "s/}\$/,\"round\":$2,\"git\":\"$(git rev-parse --short HEAD)\",\"date\":\"$(date -u +%FT%TZ)\"}/" | tee -a "$tmp"
}
base() { # ranks round
  [ -n "${BASE:-}" ] || return 0
  mpirun -q --oversubscribe -n "$1" "$BASE" bound "$D/fm-l2.h5" "$D/fm-l2-knn5.h5" --init "$D/fm-l2-init10.h5" --k "$K" --its "$ITS" --reps "$REPS" |
    grep '^{"bench":"bound"' | sed -e 's/"case":"bound_iteration"/"case":"base_bound_iteration"/' -e "s/}\$/,\"round\":$2,\"base\":\"$(echo "$BASE" | sed 's/[\/&]/\\&/g')\"}/" | tee -a "$tmp"
}
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then run 1 "$r"; base 1 "$r"; run 2 "$r"; base 2 "$r"
  else base 2 "$r"; run 2 "$r"; base 1 "$r"; run 1 "$r"; fi
done
run 3 0
cat "$tmp" >>"$OUT"

"$PY" - "$tmp" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(v): return statistics.median(v) if v else float('nan')
cases = ["base_bound_iteration", "bound_iteration", "bound_iteration_messages", "bound_iteration_alloc", "spmm", "spmm_reference", "shared_spmm", "gather", "shared_exchange"]
for key, what in (("seconds", "median of the repetitions"), ("seconds_min", "fastest repetition")):
  print(f"\n{what}:\ncase                      T1 ms    T2 ms   T1/(2 T2)  rounds (T1/(2 T2))")
  for c in cases:
    t = {p: {r["round"]: r[key] for r in rows if r["case"] == c and r["ranks"] == p and key in r} for p in (1, 2)}
    if not t[1] and not t[2]: continue
    t1, t2 = med(list(t[1].values())), med(list(t[2].values()))
    eff = t1 / (2 * t2) if t2 > 0 else float('nan')
    per = [t[1][k] / (2 * t[2][k]) for k in sorted(t[1]) if k in t[2] and t[2][k] > 0]
    print(f"{c:24s} {t1*1e3:7.2f}  {t2*1e3:7.2f}   {eff:6.2f}     {' '.join(f'{e:.2f}' for e in per)}")
it = [r for r in rows if r["case"] == "bound_iteration" and "y_hash" in r]
for p in (1, 2, 3):
    x = [r for r in it if r["ranks"] == p]
    if x:
        r = x[0]
        print(f"ranks {p}: bytes/iteration needed {r['bytes_per_iteration']:,} (messages without sharing), by message with sharing {r['message_bytes_per_iteration']:,}, "
              f"read in place {r['shared_bytes_per_iteration']:,}; loads {', '.join(str(q['load']) for q in x)}")
for key in ("y_hash", "energy_bits"):
    v = sorted({r[key] for r in it})
    print(f"{key} at ranks {sorted({r['ranks'] for r in it})}: {', '.join(v)} -> {'same' if len(v) == 1 else 'DIFFERENT'}")
ok = all(r["runs_identical"] for r in it) and all(r.get("peer_b_identical", True) for r in rows) and all(r.get("b_identical_to_spmm", True) for r in rows)
print("shared, message and per-call runs identical, new and old W*Y identical:", "yes" if ok else "NO")
EOF
