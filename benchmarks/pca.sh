#!/usr/bin/env bash
# benchmarks/pca.sh - time of `boundopt` task preprocess (centre + PCA to NCOMP) against
# scikit-learn's PCA on the same matrix, in the same run.
#
#   BIN=bin bash benchmarks/pca.sh FEATURES.h5 [OUTDIR]
#
# Env: RANKS ("1 2"), NCOMP (64), REPS (3: boundopt runs per rank count), PEER_REPS (3: sklearn
# fits per solver and thread count).  boundopt's per-phase times come from the results file's
# /meta/timings/{read,compute,write}; the wall time is that of the whole mpirun.  Each run also
# leaves PETSc's -log_view (stages Read/Compute/Write) in OUTDIR/pca-logview-<ranks>.txt.
# Prints one JSON line per rank count and sklearn solver (see benchmarks/pca_peer.py).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-bin}"
PY="${BENCH_PYTHON:-/usr/bin/python3}" # the system python: a pyenv python3 may shadow it in PATH
features="${1:?usage: pca.sh FEATURES.h5 [OUTDIR]}"
out="${2:-benchmarks/out}"
RANKS="${RANKS:-1 2}" NCOMP="${NCOMP:-64}" REPS="${REPS:-3}" PEER_REPS="${PEER_REPS:-3}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE

die() { echo "boundopt: bench pca: $*" >&2; exit 1; }
[ -x "$BIN/boundopt" ] || die "$BIN/boundopt missing; expected a build (make all)"
[ -f "$features" ] || die "$features missing; expected a features file (benchmarks/run.sh imports Fashion-MNIST)"
[ -x "$PY" ] && "$PY" -c 'import sklearn, h5py, numpy, threadpoolctl' 2>/dev/null ||
  die "the peer (python3-sklearn, python3-h5py, python3-numpy, python3-threadpoolctl for $PY) is missing; expected it installed: make bench-deps"
mkdir -p "$out"

runs=()
for p in $RANKS; do
  for r in $(seq 1 "$REPS"); do
    res="$out/pca-$p-$r.h5"
    echo "pca: boundopt preprocess, $p rank(s), repetition $r/$REPS" >&2
    t0=$(date +%s.%N)
    mpirun -q --oversubscribe -n "$p" "$BIN/boundopt" -task preprocess -input "$features" -output "$res" \
      -preprocess_center mean -preprocess_pca "$NCOMP" -log_view ":$out/pca-logview-$p.txt" >/dev/null ||
      die "boundopt preprocess failed on $p rank(s); expected it to write $res"
    t1=$(date +%s.%N)
    runs+=("$p:$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'):$res")
  done
done
echo "pca: scikit-learn peers ($PEER_REPS fits each)" >&2
"$PY" benchmarks/pca_peer.py "$features" "$NCOMP" "$PEER_REPS" "${runs[@]}"
rm -f "$out"/pca-*-*.h5
