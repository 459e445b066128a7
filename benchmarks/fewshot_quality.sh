#!/usr/bin/env bash
# Few-shot accuracy of every method on the two real-feature recipes of the few-shot issue, on the
# same tasks, as the papers report it (mean +- 95% CI over tasks):
#   letters: Letter Recognition, PCA-12 fitted on the base letters A-K; lambda of laplacianshot,
#            slk-means and slk-ms tuned on 500 tasks of the validation letters L-P (best_lambda,
#            separately with support rows free and clamped), then tested on the novel letters Q-Z;
#   fmnist:  Fashion-MNIST, PCA-64 fitted on the base classes 0-4, tested on 5-9 (no validation
#            classes are left, so the methods keep their reference lambda: 1.0 / 0.7).
# The clustering family runs with support rows free (reference) and clamped.  One JSON line per
# (data, method, clamp).  TASKS=2000 by default (TIM-GD too: 1000 Adam steps per task).
#   BUILD=build BIN=bin bash benchmarks/fewshot_quality.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BIN:=bin}" "${TASKS:=2000}" "${NP:=2}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
out=benchmarks/out; mkdir -p "$out"
run() { mpirun -q -n "$NP" "$BIN/boundopt" "$@" >&2; }
attr() { h5dump -a "$2" "$1" | sed -n 's/.*(0): //p'; }

# letters features (PCA fitted on A-K only)
[ -f "$out/letters.h5" ] || run -task import -import_format csv -input jobs/data/letter-recognition.data -output "$out/letters.h5"
[ -f "$out/letters-pca12.h5" ] || run jobs/letters-pca-base.yaml -input "$out/letters.h5" -output "$out/letters-pca12.h5"
declare -A best # per method and clamp mode: lambda is tuned in the mode it is tested in
for clamp in false true; do
  run jobs/fewshot-letters-tune-lambda.yaml -input "$out/letters-pca12.h5" -output "$out/tune-letters-$clamp.h5" -fewshot_clamp $clamp
  for m in laplacianshot slk-means slk-ms; do best[$m-$clamp]=$(attr "$out/tune-letters-$clamp.h5" "/$m/best_lambda"); done
done

# fmnist features (PCA fitted on 0-4 only)
[ -f "$out/fashion-mnist.h5" ] || run jobs/fmnist-import.yaml -output "$out/fashion-mnist.h5"
[ -f "$out/fmnist-pca64-base.h5" ] || run -task preprocess -input "$out/fashion-mnist.h5" -output "$out/fmnist-pca64-base.h5" -preprocess_center mean -preprocess_pca 64 -preprocess_fit_classes 0-4 -preprocess_l2

emit() { # data method clamp lambda file
  local acc ci
  acc=$(attr "$5" "/$2/mean_accuracy"); ci=$(attr "$5" "/$2/ci95")
  printf '{"bench":"fewshot_quality","data":"%s","method":"%s","clamp":%s,"lambda":%s,"tasks":%s,"mean_accuracy":%s,"ci95":%s}\n' "$1" "$2" "$3" "$4" "$TASKS" "$acc" "$ci"
}
for data in letters fmnist; do
  if [ $data = letters ]; then feat=$out/letters-pca12.h5; cls=16-25; else feat=$out/fmnist-pca64-base.h5; cls=5-9; fi
  common=(-task fewshot -input "$feat" -fewshot_classes $cls -fewshot_tasks "$TASKS" -seed 1)
  run "${common[@]}" -output "$out/q-$data-base.h5" -fewshot_method simpleshot,tim-adm,tim-gd
  for m in simpleshot tim-adm tim-gd; do emit $data $m null null "$out/q-$data-base.h5"; done
  for clamp in false true; do
    run "${common[@]}" -output "$out/q-$data-km-$clamp.h5" -fewshot_method kmeans,kmodes -fewshot_clamp $clamp
    for m in kmeans kmodes; do emit $data $m $clamp 0 "$out/q-$data-km-$clamp.h5"; done
    for m in laplacianshot slk-means slk-ms; do
      [ $m = laplacianshot ] && [ $clamp = true ] && continue # no support rows to clamp
      if [ $data = letters ]; then lam=${best[$m-$clamp]}; elif [ $m = laplacianshot ]; then lam=1.0; else lam=0.7; fi
      run "${common[@]}" -output "$out/q-$data-$m-$clamp.h5" -fewshot_method $m -fewshot_lambda "$lam" -fewshot_clamp $clamp
      emit $data $m "$([ $m = laplacianshot ] && echo null || echo $clamp)" "$lam" "$out/q-$data-$m-$clamp.h5"
    done
  done
done
