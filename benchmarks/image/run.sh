#!/usr/bin/env bash
# Image benchmarks (issue 5: tasks restore and segment), each against scikit-image in the same run.
# One JSON line per case on stdout; each script also appends its lines to $OUT/<name>.jsonl
# (OUT=benchmarks/out/image by default, git-ignored).  About 45 minutes on 2 loaded cores.
#   BUILD=build BIN=bin bash benchmarks/image/run.sh            (ONLY="denoise energy deblur at scale")
# energy.py reuses the gm parameters denoise.py picked (else the job's), so run denoise first.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BIN:=bin}" "${ONLY:=denoise energy deblur at scale}" "${BENCH_PYTHON:=/usr/bin/python3}"
export BIN PYTHONDONTWRITEBYTECODE=1
[ -x "$BIN/boundopt" ] || { echo "boundopt: bench: $BIN/boundopt: missing; expected a built boundopt (make all)" >&2; exit 1; }
"$BENCH_PYTHON" -c 'import skimage, h5py, matplotlib, scipy' 2>/dev/null \
  || { echo "boundopt: bench: $BENCH_PYTHON: no scikit-image/h5py/matplotlib/scipy; expected apt-get install python3-skimage python3-h5py python3-matplotlib" >&2; exit 1; }
for b in $ONLY; do
  rm -f "${OUT:-benchmarks/out/image}/$b.jsonl"
  "$BENCH_PYTHON" "benchmarks/image/$b.py"
done
