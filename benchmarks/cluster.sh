#!/usr/bin/env bash
# benchmarks/cluster.sh - the clustering benchmarks: K-means kernels against memory streaming and
# sgemm, K-means iterations against scikit-learn and FAISS, the kNN graph against FAISS, full
# cluster jobs (kmeans, slk-ms, slk-means soft/hard) with NMI/ACC, and strong scaling 1 -> 2 ranks.
#
#   BIN=bin BUILD=build bash benchmarks/cluster.sh FEATURES.h5 [OUTDIR]
#
# FEATURES.h5 is Fashion-MNIST as imported by benchmarks/run.sh (pixels / 255).  Made once in
# OUTDIR and reused: fm-l2.h5 (task preprocess -preprocess_l2) and fm-l2-init10.h5 (K rows drawn
# with numpy's default_rng(0): the initial centroids of every K-means here, boundopt's
# -cluster_init and the peers' init).  The kNN graph (task knn -knn_k KNN) is built by the timed
# knn runs and reused by the slk jobs (-cluster_graph).
# Env: RANKS ("1 2": bench_kmeans assign/bound, the scaling pairs), JOB_RANKS (2: cluster jobs),
# KNN_RANKS ("2": timed knn runs; "1 2" adds the 1-rank run, 1-3 min more; "" reuses the graph), THREADS (2: peers),
# K (10), KNN (5), ITERS (20: Lloyd iterations timed), KREPS (15: bench_kmeans repetitions),
# REPS (3: boundopt K-means jobs and peer fits), BOUND_ITS (20), ROUNDS (3: bench_kmeans assign
# and bound runs, alternating 1 and 2 ranks, so that a change of machine load hits both; the
# median round counts), METHODS ("kmeans slk-ms slk-means:soft slk-means:hard"; each
# METHOD[:MEANS[:LAMBDA[:TOL]]], e.g. "slk-means:hard:0.5 slk-ms::0.2:0" for a lambda sweep; TOL is
# -cluster_tol, the outer stop of the soft/SLK methods, default 1e-5), RUN_PASSES (56: the K-means run from
# the init converges in 56 passes; each round also times all of them, passes 3-56 in one bench_kmeans
# assign --reps 54 run, and kmeans_passes.py reports the mean pass against the stream; 0: skip), BENCH_LARGE (1: also the synthetic 2,000,000 x 128, K = 1000
# assignment vs sgemm at each of RANKS; ~3 min, 1 GB per rank at 1 rank), LARGE_N (2000000).
# Prints the JSON lines of benchmarks/cluster_peer.py (one per case, each with a ratio).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-bin}" BUILD="${BUILD:-build}"
PY="${BENCH_PYTHON:-/usr/bin/python3}" # the system python: a pyenv python3 may shadow it in PATH
features="${1:?usage: cluster.sh FEATURES.h5 [OUTDIR]}"
out="${2:-benchmarks/out}"
RANKS="${RANKS-1 2}" JOB_RANKS="${JOB_RANKS:-2}" KNN_RANKS="${KNN_RANKS-2}" THREADS="${THREADS:-2}"
K="${K:-10}" KNN="${KNN:-5}" ITERS="${ITERS:-20}" KREPS="${KREPS:-15}" REPS="${REPS:-3}" BOUND_ITS="${BOUND_ITS:-20}"
METHODS="${METHODS:-kmeans slk-ms slk-means:soft slk-means:hard}" ROUNDS="${ROUNDS:-3}" RUN_PASSES="${RUN_PASSES:-56}" BENCH_LARGE="${BENCH_LARGE:-0}" LARGE_N="${LARGE_N:-2000000}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
# (no OPENBLAS_NUM_THREADS here: boundopt and bench_kmeans set one BLAS thread per rank themselves,
# and the peers get THREADS threads from threadpoolctl; they run without the variable, which
# OpenBLAS reads when it starts its thread pool)

die() { echo "boundopt: bench cluster: $*" >&2; exit 1; }
load() { echo "$(cut -d' ' -f1 /proc/loadavg), ${SECONDS}s in"; }
[ -x "$BIN/boundopt" ] || die "$BIN/boundopt missing; expected a build (make all)"
[ -x "$BUILD/benchmarks/bench_kmeans" ] || die "$BUILD/benchmarks/bench_kmeans missing; expected a build (make all tools)"
[ -f "$features" ] || die "$features missing; expected a features file (benchmarks/run.sh imports Fashion-MNIST)"
[ -x "$PY" ] && "$PY" -c 'import sklearn, h5py, numpy, threadpoolctl, scipy, faiss' 2>/dev/null ||
  die "the peers (python3-sklearn, python3-h5py, python3-numpy, python3-threadpoolctl, python3-faiss for $PY) are missing; expected them installed: make bench-deps"
mkdir -p "$out"
run() { mpirun -q --oversubscribe -n "$@"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

l2="$out/fm-l2.h5" init="$out/fm-l2-init$K.h5" graph="$out/fm-l2-knn$KNN.h5" raw="$out/cluster-raw.jsonl" passes_raw="$out/cluster-passes-raw.jsonl"
if [ ! -f "$l2" ]; then
  echo "cluster: L2-normalising $features into $l2" >&2
  run 2 "$BIN/boundopt" -task preprocess -input "$features" -output "$l2" -preprocess_l2 >&2 || die "preprocess -preprocess_l2 failed; expected $l2"
fi
[ -f "$init" ] || "$PY" benchmarks/cluster_peer.py init "$l2" "$K" "$init" 0 || die "writing $init failed; expected K x D initial centroids"

# ---- kNN graph: timed runs (the graph is the same at any rank count; the last one is kept) ----
knn_args=()
for p in $KNN_RANKS; do
  echo "cluster: task knn k=$KNN, $p rank(s) (load $(load))" >&2
  t0=$(date +%s.%N)
  run "$p" "$BIN/boundopt" -task knn -input "$l2" -output "$out/knn-$p.h5" -knn_k "$KNN" >&2 || die "task knn failed on $p rank(s); expected $out/knn-$p.h5"
  knn_args+=(--knn-run "$p:$(secs "$t0" "$(date +%s.%N)"):$out/knn-$p.h5")
  cp "$out/knn-$p.h5" "$graph"
done
if [ ! -f "$graph" ]; then
  echo "cluster: building the kNN graph $graph (untimed: KNN_RANKS is empty)" >&2
  run 2 "$BIN/boundopt" -task knn -input "$l2" -output "$graph" -knn_k "$KNN" >&2 || die "task knn failed; expected $graph"
fi

# ---- kernels: assignment, means, bound iterations; rank counts interleaved, ROUNDS times ----
: >"$raw"
: >"$passes_raw"
for round in $(seq 1 "$ROUNDS"); do
  for p in $RANKS; do
    if [ "$RUN_PASSES" -gt 2 ]; then
      echo "cluster: bench_kmeans assign, the whole run (passes 3-$RUN_PASSES), $p rank(s), round $round/$ROUNDS (load $(load))" >&2
      run "$p" "$BUILD/benchmarks/bench_kmeans" assign "$l2" --k "$K" --init "$init" --reps $((RUN_PASSES - 2)) >>"$passes_raw" || die "bench_kmeans assign (whole run) failed on $p rank(s); expected JSON lines"
    fi
    echo "cluster: bench_kmeans assign, $p rank(s), round $round/$ROUNDS (load $(load))" >&2
    run "$p" "$BUILD/benchmarks/bench_kmeans" assign "$l2" --k "$K" --init "$init" --reps "$KREPS" >>"$raw" || die "bench_kmeans assign failed on $p rank(s); expected JSON lines"
    echo "cluster: bench_kmeans bound, $p rank(s), round $round/$ROUNDS (load $(load))" >&2
    run "$p" "$BUILD/benchmarks/bench_kmeans" bound "$l2" "$graph" --k "$K" --init "$init" --its "$BOUND_ITS" --reps 5 >>"$raw" || die "bench_kmeans bound failed on $p rank(s); expected a JSON line"
  done
done
if [ "$BENCH_LARGE" = 1 ]; then
  for p in $RANKS; do
    echo "cluster: bench_kmeans synthetic $LARGE_N x 128, K = 1000, $p rank(s) (load $(load))" >&2
    run "$p" "$BUILD/benchmarks/bench_kmeans" synthetic --n "$LARGE_N" --d 128 --k 1000 --reps 3 >>"$raw" || die "bench_kmeans synthetic failed on $p rank(s); expected JSON lines"
  done
fi

# ---- K-means per iteration: the cluster job with ITERS + 1 assignments (ITERS mean updates) ----
iters_args=()
for r in $(seq 1 "$REPS"); do
  res="$out/cluster-iters-$r.h5"
  echo "cluster: task cluster kmeans, $((ITERS + 1)) iterations, $JOB_RANKS rank(s), repetition $r/$REPS (load $(load))" >&2
  t0=$(date +%s.%N)
  run "$JOB_RANKS" "$BIN/boundopt" -task cluster -input "$l2" -output "$res" -cluster_method kmeans -cluster_k "$K" \
    -cluster_init "$init" -cluster_max_it $((ITERS + 1)) >&2 || die "task cluster (kmeans, $((ITERS + 1)) iterations) failed; expected $res"
  iters_args+=(--iters-run "$JOB_RANKS:$(secs "$t0" "$(date +%s.%N)"):$res")
done

# ---- full jobs ----
run_args=()
for m in $METHODS; do # METHOD[:MEANS[:LAMBDA[:TOL]]]
  IFS=: read -r method means lambda tol <<<"$m"
  extra=()
  [ -n "$means" ] && extra+=(-cluster_means "$means")
  [ -n "$lambda" ] && extra+=(-cluster_lambda "$lambda")
  [ -n "$tol" ] && extra+=(-cluster_tol "$tol")
  name="$method${means:+ ($means means)}${lambda:+ lambda=$lambda}${tol:+ tol=$tol}" res="$out/cluster-$method${means:+-$means}${lambda:+-l$lambda}${tol:+-t$tol}.h5"
  case "$method" in slk-*) extra+=(-cluster_graph "$graph" -cluster_knn "$KNN");; esac
  echo "cluster: task cluster $name, $JOB_RANKS rank(s) (load $(load))" >&2
  t0=$(date +%s.%N)
  run "$JOB_RANKS" "$BIN/boundopt" -task cluster -input "$l2" -output "$res" -cluster_method "$method" -cluster_k "$K" \
    -cluster_init "$init" "${extra[@]}" >&2 || die "task cluster $name failed; expected $res"
  run_args+=(--run "$name:$JOB_RANKS:$(secs "$t0" "$(date +%s.%N)"):$res")
done

echo "cluster: peers (scikit-learn, FAISS; $THREADS threads) and the JSON lines (load $(load))" >&2
env -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS "$PY" benchmarks/cluster_peer.py report --features "$l2" --init "$init" --graph "$graph" --threads "$THREADS" --iters "$ITERS" \
  --reps "$REPS" --knn "$KNN" --raw "$raw" "${iters_args[@]}" "${run_args[@]}" "${knn_args[@]}" || die "cluster_peer.py report failed; expected JSON lines"
if [ "$RUN_PASSES" -gt 2 ]; then
  "$PY" benchmarks/kmeans_passes.py "$passes_raw" --passes "$RUN_PASSES" || die "kmeans_passes.py failed; expected JSON lines"
fi
rm -f "$out"/cluster-iters-*.h5 "$out"/knn-[0-9]*.h5
