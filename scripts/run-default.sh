#!/usr/bin/env bash
# make run: the default job, SLK-MS clustering of all 70,000 Fashion-MNIST images on 2 ranks.
# Steps whose output exists are skipped: import, L2 normalisation, the 5-NN graph.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 HDF5_USE_FILE_LOCKING=FALSE
run() { echo "+ mpirun -n 2 bin/boundopt $*"; mpirun -q -n 2 bin/boundopt "$@"; }
value() { h5dump -a "$2" "$1" 2>/dev/null | sed -n 's/.*(0): //p'; }
dataset() { h5dump -d "$2" "$1" 2>/dev/null | sed -n 's/.*(0): //p'; }
start=$(date +%s)
[ -f jobs/data/fmnist.h5 ] || run jobs/fmnist-import.yaml
[ -f jobs/data/fmnist-l2.h5 ] || run jobs/fmnist-l2.yaml
[ -f jobs/data/fmnist-knn5.h5 ] || run jobs/fmnist-knn.yaml
rm -f jobs/data/fmnist-slk-ms.ck.h5
run jobs/fmnist-slk-ms.yaml
f=jobs/data/fmnist-slk-ms.h5
echo
echo "default job: SLK-MS, Fashion-MNIST 70,000 x 784, K = 10, lambda $(value $f /lambda), knn $(value $f /knn), 2 ranks -> $f"
printf '  NMI %s (geometric %s)   ACC %s   iterations %s\n' "$(value $f /nmi)" "$(value $f /nmi_geometric)" "$(value $f /acc)" "$(value $f /iterations)"
printf '  time: read %s s, compute %s s, write %s s; make run total %s s\n' "$(dataset $f /meta/timings/read)" "$(dataset $f /meta/timings/compute)" "$(dataset $f /meta/timings/write)" "$(( $(date +%s) - start ))"
