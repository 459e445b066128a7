#!/usr/bin/env bash
# make run: import Fashion-MNIST (once), describe it, and run the default job (PCA-64) on 2 ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 HDF5_USE_FILE_LOCKING=FALSE
run() { echo "+ mpirun -n 2 bin/boundopt $*"; mpirun -q -n 2 bin/boundopt "$@"; }
[ -f jobs/data/fmnist.h5 ] || run jobs/fmnist-import.yaml
run jobs/fmnist-info.yaml
run jobs/fmnist-pca64.yaml
f=jobs/data/fmnist-pca64.h5
echo
echo "default job: $f"
for phase in read compute write; do
  printf '  %-8s %s s\n' "$phase" "$(h5dump -d /meta/timings/$phase $f | sed -n 's/.*(0): \(.*\)/\1/p')"
done
printf '  ranks    %s   rank_invariant %s\n' "$(h5dump -d /meta/nranks $f | sed -n 's/.*(0): \(.*\)/\1/p')" "$(h5dump -d /meta/rank_invariant $f | sed -n 's/.*(0): \(.*\)/\1/p')"
printf '  explained variance of the 64 axes: %s of the total\n' "$(h5dump -d /preprocess/explained_variance -a /preprocess/explained_variance/total_variance $f >/dev/null 2>&1; echo see /preprocess/explained_variance)"
