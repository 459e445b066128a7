#!/usr/bin/env bash
# benchmarks/run.sh - every benchmark, JSON lines into benchmarks/out/results.jsonl (also printed).
#
#   make bench-deps && make bench          (make bench = make all tools, then this script)
#
# Builds the data once: Fashion-MNIST (70,000 x 784) imported by boundopt itself (the job
# jobs/fmnist-import.yaml with -output benchmarks/out/fashion-mnist.h5).  Then:
#   read  build/benchmarks/bench_read at 1 and 2 ranks: warm page cache with fresh and with
#         reused buffers, and a cold page cache (this file evicted with posix_fadvise)
#   pca   benchmarks/pca.sh: task preprocess (centre + PCA 64) against scikit-learn
#   cluster  benchmarks/cluster.sh: K-means kernels (build/benchmarks/bench_kmeans) against memory
#         streaming and sgemm, K-means iterations against scikit-learn and FAISS, task knn against
#         FAISS, full cluster jobs (kmeans, slk-ms, slk-means) with NMI/ACC, scaling 1 -> 2 ranks
#   fewshot  benchmarks/fewshot.sh (tasks/s per method, D 64/640) and fewshot_quality.sh (accuracy of
#         every method)
#   losses_throughput  benchmarks/losses/throughput.sh: train-seg pixels/s per iteration at 1 and 2
#         ranks (~1 min)
# Those five run by default (make bench).  Only on request (ONLY=name), because they are long:
#   losses             benchmarks/losses/run.sh: the four loss-engine drivers' claims with CIs and
#                      the training throughput at 1 and 2 ranks (~70 min)
#   image              benchmarks/image/run.sh (~45 min)
#   fewshot_torch      TIM against PyTorch on replayed tasks (long)
#   fire               benchmarks/fire/run.sh: CE/AT/TRADES/FIRE MLPs on Fashion-MNIST, clean and
#                      PGD-40 accuracy, seconds per epoch at 1 and 2 ranks (~1-2 h)
#   fire_gauss         benchmarks/fire_gauss/run.sh: the linear Gaussian toy's fronts (~20 min)
#   fcam               benchmarks/fcam/run.sh: F-CAM against bilinear CAMs and CAM + CRF (~30 min)
# Env: RANKS ("1 2"), READ_REPS (7), REPS / PEER_REPS (3, see pca.sh), ONLY (read, pca, cluster, fewshot, or one above),
# BENCH_LARGE (1: also the 2,000,000 x 128, K = 1000 assignment, ~3 min; see cluster.sh for its
# other knobs), BENCH_PYTHON (/usr/bin/python3: the interpreter the peers are installed for).
# Machine facts (nproc, CPU, load, versions) go to benchmarks/out/machine.txt and stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${BUILD:-build}" BIN="${BIN:-bin}"
RANKS="${RANKS:-1 2}" READ_REPS="${READ_REPS:-7}" ONLY="${ONLY:-}"
OUT=benchmarks/out
DATA="$OUT/fashion-mnist.h5"
SRC=/usr/share/datasets/fashion-mnist
PY="${BENCH_PYTHON:-/usr/bin/python3}" # the system python: a pyenv python3 may shadow it in PATH
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
export BIN RANKS

die() { echo "boundopt: bench: $*" >&2; exit 1; }

# ---- what the benchmarks need ----------------------------------------------------------------
[ -x "$BIN/boundopt" ] || die "$BIN/boundopt missing; expected a build: make bench (runs make all tools)"
[ -x "$BUILD/benchmarks/bench_read" ] || die "$BUILD/benchmarks/bench_read missing; expected a build: make bench (runs make all tools)"
[ -x "$BUILD/benchmarks/bench_kmeans" ] || die "$BUILD/benchmarks/bench_kmeans missing; expected a build: make bench (runs make all tools)"
command -v mpirun >/dev/null || die "mpirun missing; expected Open MPI: make deps"
missing=()
if [ -x "$PY" ]; then
  for m in sklearn h5py numpy threadpoolctl scipy faiss; do "$PY" -c "import $m" 2>/dev/null || missing+=("$m"); done
else missing+=("the interpreter itself"); fi
[ ${#missing[@]} -eq 0 ] || die "benchmark peers missing (${missing[*]} for $PY); expected python3-sklearn python3-h5py python3-numpy python3-threadpoolctl python3-faiss installed: make bench-deps"
mkdir -p "$OUT"

# ---- data: imported once by boundopt ---------------------------------------------------------
if [ ! -f "$DATA" ]; then
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [ -f "$SRC/$f.gz" ] || die "$SRC/$f.gz missing; expected the Debian package dataset-fashion-mnist: make deps"
  done
  echo "bench: importing Fashion-MNIST into $DATA" >&2
  [ -f jobs/fmnist-import.yaml ] || die "jobs/fmnist-import.yaml missing; expected the project's import job"
  mpirun -q --oversubscribe -n 2 "$BIN/boundopt" jobs/fmnist-import.yaml -output "$DATA" >&2 || die "import of Fashion-MNIST failed; expected $DATA"
fi

# ---- machine facts ---------------------------------------------------------------------------
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "boundopt: $("$BIN/boundopt" --version)"
  echo "python peers: $("$PY" -c 'import sklearn, numpy, h5py, faiss; print("scikit-learn", sklearn.__version__, "numpy", numpy.__version__, "h5py", h5py.__version__, "faiss", faiss.__version__)')"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"
sed 's/^/bench: /' "$OUT/machine.txt" >&2

# ---- benchmarks ------------------------------------------------------------------------------
tmp="$OUT/results.jsonl.tmp"
: >"$tmp"
if [ -z "$ONLY" ] || [ "$ONLY" = read ]; then
  for p in $RANKS; do
    for mode in "" --reuse --cold; do
      echo "bench: read, $p rank(s) ${mode:-(warm, fresh buffers)}" >&2
      mpirun -q --oversubscribe -n "$p" "$BUILD/benchmarks/bench_read" "$DATA" --reps "$READ_REPS" $mode >>"$tmp" ||
        die "bench_read failed on $p rank(s) ($mode); expected JSON lines"
    done
  done
fi
if [ -z "$ONLY" ] || [ "$ONLY" = pca ]; then
  bash benchmarks/pca.sh "$DATA" "$OUT" >>"$tmp" || die "benchmarks/pca.sh failed; expected JSON lines"
fi
if [ -z "$ONLY" ] || [ "$ONLY" = cluster ]; then
  BUILD="$BUILD" bash benchmarks/cluster.sh "$DATA" "$OUT" >>"$tmp" || die "benchmarks/cluster.sh failed; expected JSON lines"
fi
if [ -z "$ONLY" ] || [ "$ONLY" = fewshot ]; then
  BUILD="$BUILD" BIN="$BIN" bash benchmarks/fewshot.sh >>"$tmp" || die "benchmarks/fewshot.sh failed; expected JSON lines"
  BUILD="$BUILD" BIN="$BIN" bash benchmarks/fewshot_quality.sh >>"$tmp" || die "benchmarks/fewshot_quality.sh failed; expected JSON lines"
fi
if [ "$ONLY" = losses ]; then # about 70 minutes (four drivers' comparisons and their throughput): only on request
  BIN="$BIN" bash benchmarks/losses/run.sh >>"$tmp" || die "benchmarks/losses/run.sh failed; expected JSON lines"
fi
if [ -z "$ONLY" ] || [ "$ONLY" = losses_throughput ]; then # about a minute: train-seg pixels/s per iteration at 1 and 2 ranks
  BIN="$BIN" bash benchmarks/losses/throughput.sh >>"$tmp" || die "benchmarks/losses/throughput.sh failed; expected JSON lines"
fi
if [ "$ONLY" = image ]; then # about 45 minutes (exact-AM limits, deblurring tuning): only on request
  BIN="$BIN" bash benchmarks/image/run.sh >>"$tmp" || die "benchmarks/image/run.sh failed; expected JSON lines"
fi
# The issue-8 experiments (FIRE, its Gaussian toy, F-CAM): long, only on request.
for b in fire fire_gauss fcam; do
  if [ "$ONLY" = "$b" ]; then
    BUILD="$BUILD" BIN="$BIN" bash "benchmarks/$b/run.sh" >>"$tmp" || die "benchmarks/$b/run.sh failed; expected JSON lines"
  fi
done
# Long (minutes per repetition): only on request.
if [ "$ONLY" = fewshot_torch ]; then
  BUILD="$BUILD" BIN="$BIN" bash benchmarks/fewshot_torch.sh >>"$tmp" || die "benchmarks/fewshot_torch.sh failed; expected JSON lines"
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
echo "bench: load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
mv "$tmp" "$OUT/results.jsonl"
cat "$OUT/results.jsonl"
