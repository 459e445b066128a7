#!/usr/bin/env bash
# Few-shot throughput: tasks per second, latency per task and memory per rank, for each method,
# 5-way 5-shot 15 queries, on Fashion-MNIST novel classes 5-9 with PCA-D fitted on base classes
# 0-4 (D = 64 and 640), at 1 and 2 ranks.  One JSON line per case.
#   BUILD=build BIN=bin bash benchmarks/fewshot.sh        (TASKS=2000, TASKS_GD=200 by default)
#   METHODS="tim-adm tim-adm/single" DIMS=64 ...           (a subset; "M/single": -fewshot_precision single)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BUILD:=build}" "${BIN:=bin}" "${TASKS:=2000}" "${TASKS_GD:=200}" "${DIMS:=64 640}"
: "${METHODS:=simpleshot laplacianshot kmeans kmodes slk-means slk-ms tim-adm tim-adm/single tim-gd}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
out=benchmarks/out; mkdir -p "$out"
data=$out/fashion-mnist.h5
[ -f "$data" ] || mpirun -q -n 2 "$BIN/boundopt" jobs/fmnist-import.yaml -output "$data" >&2
value() { h5dump -d "$2" "$1" | sed -n 's/.*(0): //p'; }
for D in $DIMS; do
  feat=$out/fmnist-pca$D-base.h5
  [ -f "$feat" ] || mpirun -q -n 2 "$BIN/boundopt" -task preprocess -input "$data" -output "$feat" -preprocess_center mean -preprocess_pca $D -preprocess_fit_classes 0-4 -preprocess_l2 >&2
  for mp in $METHODS; do
    m=${mp%/single} prec=double; [ "$m" != "$mp" ] && prec=single
    tasks=$TASKS; [ "$m" = tim-gd ] && tasks=$TASKS_GD
    for p in 1 2; do
      res=$out/fewshot-${mp/\//-}-$D-$p.h5
      # /usr/bin/time on every rank: the largest maximum resident set, in bytes
      log=$(mpirun -q -n $p /usr/bin/time -f 'maxrss_kb %M' "$BIN/boundopt" -task fewshot -input "$feat" -output "$res" -fewshot_classes 5-9 -fewshot_tasks $tasks -fewshot_method $m -fewshot_precision $prec 2>&1)
      rss=$(echo "$log" | awk '/^maxrss_kb/ {if ($2 > m) m = $2} END {print m * 1024}')
      compute=$(value "$res" /meta/timings/compute)
      acc=$(h5dump -a /$m/mean_accuracy "$res" | sed -n 's/.*(0): //p')
      printf '{"bench":"fewshot","method":"%s","precision":"%s","d":%s,"ranks":%s,"tasks":%s,"compute_seconds":%s,"tasks_per_second":%s,"latency_ms_per_task":%s,"max_rss_bytes_per_rank":%s,"mean_accuracy":%s,"load":%s}\n' \
        "$m" "$prec" "$D" "$p" "$tasks" "$compute" "$(awk "BEGIN{print $tasks/$compute}")" "$(awk "BEGIN{print 1000*$compute*$p/$tasks}")" "${rss:-null}" "$acc" "$(cut -d' ' -f1 /proc/loadavg)"
    done
  done
done
