#!/usr/bin/env bash
# benchmarks/fcam/run.sh - F-CAM (issue 8, arXiv 2109.07069): does guided parametric upscaling
# beat bilinear CAMs?  Makes the one-object scenes and the classifier's CAMs if they are missing,
# runs jobs/fcam-scenes.yaml once (100 test scenes: bilinear, CAM + CRF, F-CAM and its ablations,
# with the task's defaults, which were chosen on validation scenes by benchmarks/fcam/validate.sh,
# never on these) and prints one JSON line per method (benchmarks/fcam/table.py), then copies the
# examples PNG here; then once more with the predicted class's CAM (bilinear, CRF, F-CAM, no CRF).
#   BIN=build/bin NP=2 bash benchmarks/fcam/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BIN:=bin}" "${NP:=2}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
run() { mpirun -q --oversubscribe -n "$NP" "$BIN/boundopt" "$@"; }
OUT=benchmarks/out/fcam; mkdir -p "$OUT"   # ignored by git
[ -f jobs/data/fcam-scenes-cls.h5 ] || run jobs/fcam-scenes-cls.yaml
[ -f jobs/data/fcam-scenes-test.h5 ] || run jobs/fcam-scenes-test.yaml
[ -f jobs/data/fcam-cams.h5 ] || run jobs/fcam-cam.yaml
run jobs/fcam-scenes.yaml -output "$OUT/fcam-scenes.h5" >/dev/null
/usr/bin/python3 benchmarks/fcam/table.py "$OUT/fcam-scenes.h5" jobs/data/fcam-scenes-test.h5 jobs/data/fcam-cams.h5
cp "$OUT/fcam-scenes-examples.png" benchmarks/fcam/examples.png
# the same with the CAM of the predicted class (no re-tuning)
run jobs/fcam-scenes.yaml -fcam_cam_class pred -fcam_methods bilinear,crf,fcam,fcam-nocrf -fcam_examples 0 -output "$OUT/fcam-scenes-pred.h5" >/dev/null
/usr/bin/python3 benchmarks/fcam/table.py "$OUT/fcam-scenes-pred.h5" jobs/data/fcam-scenes-test.h5 jobs/data/fcam-cams.h5
