#!/usr/bin/env bash
# benchmarks/fcam/run.sh - F-CAM (issue 8, arXiv 2109.07069): does guided parametric upscaling
# beat bilinear CAMs?  Makes the one-object scenes and the classifier's CAMs if they are missing,
# chooses the mean-field CRF weight on validation scenes (CAMs of 100 training scenes: the
# classifier saw their image labels, never their masks), runs jobs/fcam-scenes.yaml (100 test
# scenes: bilinear, CAM + CRF, F-CAM and its ablations) and prints one JSON line per method
# (benchmarks/fcam/table.py), then copies the examples PNG here.
#   BIN=build/bin NP=2 bash benchmarks/fcam/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BIN:=bin}" "${NP:=2}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
run() { mpirun -q --oversubscribe -n "$NP" "$BIN/boundopt" "$@"; }
OUT=benchmarks/out/fcam; mkdir -p "$OUT"   # ignored by git
[ -f jobs/data/fcam-scenes-train.h5 ] || run jobs/fcam-scenes-train.yaml
[ -f jobs/data/fcam-scenes-cls.h5 ] || run jobs/fcam-scenes-cls.yaml
[ -f jobs/data/fcam-scenes-test.h5 ] || run jobs/fcam-scenes-test.yaml
[ -f jobs/data/fcam-cams.h5 ] || run jobs/fcam-cam.yaml
# validation: the CRF baseline's pairwise weight, by best-threshold IoU on 100 training scenes
run jobs/fcam-cam.yaml -input jobs/data/fcam-scenes-train.h5 -fcam_scenes 100 -output "$OUT/val-cams.h5" >/dev/null
best=""; bestiou=-1
for w in 1 2 5 10 20; do
  run -task fcam -seed 2109 -input jobs/data/fcam-scenes-train.h5 -fcam_scenes 100 -fcam_cams "$OUT/val-cams.h5" \
      -fcam_methods crf -fcam_mf_weight "$w" -fcam_examples 0 -fcam_write_maps 0 -output "$OUT/val-mf$w.h5" >/dev/null
  iou=$(/usr/bin/python3 -c "import h5py; print(h5py.File('$OUT/val-mf$w.h5', 'r')['crf'].attrs['iou'])")
  echo "{\"validation\": \"crf\", \"mf_weight\": $w, \"iou\": $iou}"
  if /usr/bin/python3 -c "import sys; sys.exit(not $iou > $bestiou)"; then best=$w; bestiou=$iou; fi
done
run jobs/fcam-scenes.yaml -fcam_mf_weight "$best" -output "$OUT/fcam-scenes.h5" >/dev/null
/usr/bin/python3 benchmarks/fcam/table.py "$OUT/fcam-scenes.h5" jobs/data/fcam-scenes-test.h5 jobs/data/fcam-cams.h5
cp "$OUT/fcam-scenes-examples.png" benchmarks/fcam/examples.png
