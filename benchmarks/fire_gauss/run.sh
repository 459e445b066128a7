#!/usr/bin/env bash
# benchmarks/fire_gauss/run.sh - FIRE vs TRADES vs PGD-AT on the linear Gaussian toy (spec
# losses.md section 4 (a)), two cases with a dense beta sweep:
#   linear  jobs/fire-gauss.yaml as is: mu_j evenly from 1 to 0.05, sigma 1.5, eps 0.5 (the front's
#           classifiers drop the weak features one by one: a discriminating case)
#   steps   2 strong features (mu 1) and 18 weak ones (mu 0.25), sigma 1, eps 0.3 (every front
#           classifier weighs a group's features equally: a sanity case)
# For each: one JSON line per (method, beta or training radius), one summary line per method, the
# front's end points, and a PNG of the fronts (benchmarks/fire_gauss/fronts-<case>.png).
#   BIN=bin bash benchmarks/fire_gauss/run.sh [ranks]        (about 2 x 3 CPU-minutes)
# Results files: benchmarks/out/fire_gauss/<case>.h5 (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin}
P=${1:-2}
OUT=${OUT:-benchmarks/out/fire_gauss}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT"
BETAS=0.05,0.1,0.2,0.3,0.5,0.75,1,1.5,2,3,4,6,8,12,16,24,32,64
declare -A CASE=(
  [linear]=""
  [steps]="-fire_gauss_profile steps -fire_gauss_strong 2 -fire_gauss_mu_weak 0.25 -fire_gauss_sigma 1 -fire_gauss_eps 0.3 -fire_gauss_at_eps 0.05,0.1,0.15,0.2,0.25,0.3,0.35"
)
for c in linear steps; do
  # shellcheck disable=SC2086
  mpirun -q --oversubscribe -n "$P" "$BIN/boundopt" jobs/fire-gauss.yaml -output "$OUT/$c.h5" -fire_gauss_beta "$BETAS" ${CASE[$c]} >"$OUT/$c.log"
  /usr/bin/python3 benchmarks/fire_gauss/report.py "$OUT/$c.h5" --case "$c" --png "benchmarks/fire_gauss/fronts-$c.png"
done
