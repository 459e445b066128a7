#!/usr/bin/env bash
# benchmarks/fewshot_torch.sh - boundopt's TIM-ADM and TIM-GD (2 ranks) against the same algorithms
# in PyTorch on CPU (float32, batched over tasks, 2 threads), on identical tasks replayed from
# boundopt's save_tasks output, in the same run.  One JSON line per (method, D) on stdout (see
# benchmarks/fewshot_torch.py for what is timed and compared).
#
#   BUILD=build BIN=bin bash benchmarks/fewshot_torch.sh
#   REPS=2 DIMS=64 METHODS=tim-adm BUILD=build BIN=bin bash benchmarks/fewshot_torch.sh   # one case
#   PRECISION=single REPS=2 DIMS=64 METHODS=tim-adm BUILD=build BIN=bin bash benchmarks/fewshot_torch.sh
#
# Ends with one "RATIO" line per case (also printed as each case ends, on stderr): torch / boundopt
# per task, wall (same run, medians) and CPU time.  The JSON lines are also appended to
# benchmarks/out/fewshot_torch.jsonl.  On a loaded machine read the CPU ratio and the load.
#
# Tasks: 5-way 5-shot 15 queries from Fashion-MNIST novel classes 5-9, features PCA-D fitted on the
# base classes 0-4, then L2 (jobs/fmnist-pca64-base.yaml; D = 640 is the same recipe, as in
# benchmarks/fewshot.sh), seed 2020, norm l2 (jobs/fewshot-fmnist-tim-adm.yaml).
# Env: PRECISION (double: boundopt's TIM-ADM arithmetic, -fewshot_precision double|single; TIM-GD
# is always double), DIMS ("64 640"), METHODS ("tim-adm tim-gd"), REPS (3: alternating boundopt / torch runs per
# case, medians reported), RANKS (2), THREADS (2), CHUNK (0: all tasks in one batch),
# TASKS_ADM_64 (10000), TASKS_ADM_640 (2000), TASKS_GD_64 (1000), TASKS_GD_640 (200): the full
# 10,000 tasks take about 2-15 minutes per repetition for the D = 640 and GD cases on 2 shared
# cores, so those default to fewer (the per-task times are what is compared).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BUILD:=build}" "${BIN:=bin}" "${DIMS:=64 640}" "${METHODS:=tim-adm tim-gd}" "${REPS:=3}" "${RANKS:=2}" "${THREADS:=2}" "${CHUNK:=0}" "${PRECISION:=double}"
: "${TASKS_ADM_64:=10000}" "${TASKS_ADM_640:=2000}" "${TASKS_GD_64:=1000}" "${TASKS_GD_640:=200}"
PY="${BENCH_PYTHON:-/usr/bin/python3}" # the system python: a pyenv python3 may shadow it in PATH
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1 HDF5_USE_FILE_LOCKING=FALSE
out=benchmarks/out

die() { echo "boundopt: bench fewshot_torch: $*" >&2; exit 1; }
[ -x "$BIN/boundopt" ] || die "$BIN/boundopt missing; expected a build (make all)"
[ -x "$PY" ] && "$PY" -c 'import torch, h5py, numpy' 2>/dev/null ||
  die "the peer (python3-torch, python3-h5py, python3-numpy for $PY) is missing; expected them installed: apt-get install python3-torch python3-h5py"
mkdir -p "$out"
log=$(mktemp)

data=$out/fashion-mnist.h5
[ -f "$data" ] || mpirun -q -n 2 "$BIN/boundopt" jobs/fmnist-import.yaml -output "$data" >&2
for D in $DIMS; do
  feat=$out/fmnist-pca$D-base.h5 # the same file benchmarks/fewshot.sh makes
  [ -f "$feat" ] || mpirun -q -n 2 "$BIN/boundopt" -task preprocess -input "$data" -output "$feat" -preprocess_center mean -preprocess_pca "$D" -preprocess_fit_classes 0-4 -preprocess_l2 >&2
  for m in $METHODS; do
    var="TASKS_${m#tim-}_$D"; var=${var^^}
    tasks=${!var:-10000}
    "$PY" benchmarks/fewshot_torch.py --bin "$BIN/boundopt" --features "$feat" --method "$m" --tasks "$tasks" \
      --reps "$REPS" --ranks "$RANKS" --threads "$THREADS" --chunk "$CHUNK" --precision "$PRECISION" --out "$out" 2> >(tee -a "$log" >&2) |
      tee -a "$out/fewshot_torch.jsonl" || die "case $m D=$D failed; expected one JSON line"
    rm -f "$out/fewshot-torch-$m-$D.h5"
  done
done
wait # the stderr tee
echo "== fewshot_torch summary (torch / boundopt per task; > 1: boundopt faster)" >&2
grep -h "RATIO" "$log" >&2 || true
rm -f "$log"
