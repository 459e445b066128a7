#!/usr/bin/env bash
# Training throughput of the loss engine: pixels/s per full-batch iteration of task train-seg with
# CE (forward, the collective loss with exact sums, the head gradient summed per image, one Adam
# step) at 1 and 2 ranks, best of REPS runs of ITERS iterations, compared as a ratio in the same
# run.  One JSON line per rank count.  About 1 minute on 2 cores (the scenes are made once).
#   BIN=bin bash benchmarks/losses/throughput.sh [train-scenes.h5]
# Without an argument it makes the 40 training scenes of seglossbias.sh's fg18 regime (one object,
# scale 2, seed 2026).  Knobs: TRAIN=40, ITERS=20, REPS=3, RANKS="1 2", FMNIST=<imported Fashion-MNIST>.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BIN:=bin}" "${TRAIN:=40}" "${ITERS:=20}" "${REPS:=3}" "${RANKS:=1 2}" "${FMNIST:=benchmarks/out/fashion-mnist.h5}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
out=benchmarks/out/losses; mkdir -p "$out"
scenes="${1:-$out/fg18-train.h5}"
if [ ! -f "$scenes" ]; then
  [ -f "$FMNIST" ] || mpirun -q -n 2 "$BIN/boundopt" jobs/fmnist-import.yaml -output "$FMNIST" >&2
  mpirun -q -n 2 "$BIN/boundopt" -task scenes -input "$FMNIST" -seed 2026 -scenes_textures jobs/data/textures/brick.png,jobs/data/textures/grass.png \
    -scenes_min_objects 1 -scenes_max_objects 1 -scenes_scale 2 -scenes_features -scenes_count "$TRAIN" -scenes_split train -scenes_object_rows 0-59999 -output "$scenes" >&2
fi
pixels=$(/usr/bin/python3 -c "import h5py, numpy; print(int(numpy.prod(h5py.File('$scenes', 'r')['masks'].shape)))")
base=""
for p in $RANKS; do
  best=0
  for rep in $(seq "$REPS"); do
    pps=$(mpirun -q -n "$p" "$BIN/boundopt" -task train-seg -input "$scenes" -seg_loss ce -seg_iterations "$ITERS" -output "$out/tp.h5" | sed -n 's/.* \([0-9.e+]*\) pixels\/s per iteration/\1/p')
    [ -n "$pps" ] || { echo "boundopt: bench: train-seg printed no 'pixels/s per iteration' line; expected one" >&2; exit 1; }
    best=$(/usr/bin/python3 -c "print(max($best, $pps))")
  done
  [ -z "$base" ] && base=$best
  printf '{"bench":"train_seg_throughput","loss":"ce","ranks":%d,"pixels":%d,"pixels_per_s":%.4g,"ratio_vs_1_rank":%.3f}\n' "$p" "$pixels" "$best" "$(/usr/bin/python3 -c "print($best / $base)")"
done
rm -f "$out/tp.h5"
