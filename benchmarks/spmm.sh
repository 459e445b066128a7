#!/usr/bin/env bash
# spmm.sh - bench_spmm at 1, 2 and 3 ranks; JSON lines, then per method (boundopt with messages,
# boundopt with the node's rows shared, PETSc) whether B's hash is the
# same at every rank count.  Graph: benchmarks/out/fm-l2-knn5.h5 if present, else a kNN graph
# (k = 5) of a synthetic 20000 x 16 feature file built in benchmarks/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=${BIN:-bin}
K=${K:-10}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

need() { [ -x "$1" ] || { echo "boundopt: bench: $1 missing; expected make BUILD=$BUILD BIN=$BIN all tools first" >&2; exit 1; }; }
need "$BUILD/benchmarks/bench_spmm"
GRAPH=benchmarks/out/fm-l2-knn5.h5
if [ ! -f "$GRAPH" ]; then
  mkdir -p benchmarks/out
  FEAT=benchmarks/out/spmm-synth.h5
  GRAPH=benchmarks/out/spmm-synth-knn5.h5
  need "$BIN/boundopt"
  [ -f "$FEAT" ] || "$BUILD/tests/tools/mkfeatures" "$FEAT" -n 20000 -d 16
  [ -f "$GRAPH" ] || "$BIN/boundopt" -task knn -input "$FEAT" -output "$GRAPH" -knn_k 5
fi

lines=()
for p in 1 2 3; do
  line=$(mpirun -q --oversubscribe -n "$p" "$BUILD/benchmarks/bench_spmm" "$GRAPH" "$K" | grep '^{"bench":"spmm"')
  echo "$line"
  lines+=("$line")
done
for m in boundopt boundopt_shared petsc; do
  hashes=$(printf '%s\n' "${lines[@]}" | sed -n "s/.*\"${m}_hash\":\"\([0-9a-f]*\)\".*/\1/p")
  uniq_count=$(printf '%s\n' "$hashes" | sort -u | wc -l)
  if [ "$uniq_count" -eq 1 ]; then verdict=same; else verdict=different; fi
  echo "verdict $m: hash at 1,2,3 ranks: $(echo $hashes | tr ' ' ',') -> $verdict"
done
