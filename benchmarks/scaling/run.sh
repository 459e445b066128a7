#!/usr/bin/env bash
# benchmarks/scaling/run.sh - strong and weak scaling of K-means, SLK and few-shot at 1 and 2 ranks
# on this machine (MEASURED), the per-phase compute rates and bytes per iteration of the kernels
# (MEASURED), and their projection to 1,024 ranks at N = 10^8, D = 128, K = 1,000 with an alpha-beta
# network model (MODELLED, benchmarks/scaling/model.py).
#
#   make all tools && bash benchmarks/scaling/run.sh          (about 3-5 minutes on 2 cores)
#   ALPHA=1.5e-6 BETA=4e-11 /usr/bin/python3 benchmarks/scaling/model.py benchmarks/out/scaling   # re-project only
#
# Env: BUILD (build), BIN (bin), RANKS ("1 2"), REPS (2 runs per job and rank count), OUT
# (benchmarks/out/scaling: data and results files, not kept in git), ALPHA / BETA / COMPUTE_SPEEDUP
# (see model.py).
# Writes OUT/measured.jsonl (bench_kmeans lines), OUT/jobs-<family>/ (slurm/scaling.sh --local:
# scaling.tsv, scaling.md, scaling.png per family), OUT/model.md and OUT/model.png, and
# OUT/machine.txt, and copies the text and plots to benchmarks/scaling/results/ (what
# benchmarks/scaling/README.md shows).  Prints the tables.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build} BIN=${BIN:-bin} RANKS=${RANKS:-1 2} REPS=${REPS:-2} OUT=${OUT:-benchmarks/out/scaling}
PY=/usr/bin/python3
die() { echo "boundopt: bench: $1" >&2; exit 1; }
[ -x "$BIN/boundopt" ] && [ -x "$BUILD/benchmarks/bench_kmeans" ] && [ -x "$BUILD/tests/tools/mkfeatures" ] || die "$BIN/boundopt, $BUILD/benchmarks/bench_kmeans or $BUILD/tests/tools/mkfeatures missing; expected a build (make all tools)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1 HDF5_USE_FILE_LOCKING=FALSE
export BOUNDOPT=$(cd "$BIN" && pwd)/boundopt
mkdir -p "$OUT" || die "$OUT: cannot create; expected a writable folder"
OUT=$(cd "$OUT" && pwd)
mk() { "$BUILD/tests/tools/mkfeatures" "$@" >/dev/null || die "mkfeatures $*: failed"; }
load() { cut -d' ' -f1 /proc/loadavg; }
{
  echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' (plus uncommitted work)')"
  echo "nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "load at start $(load)"
} >"$OUT/machine.txt"

# --- data (synthetic, from the project's own generator; letters from jobs/data) ----------------
echo "scaling: data (load $(load))" >&2
mk "$OUT/x128.h5" -n 100000 -d 128 -classes 50 -seed 11
for p in $RANKS; do
  mk "$OUT/km-$p.h5" -n $((100000 * p)) -d 32 -classes 20 -seed 12   # K-means: 100,000 rows per rank
  mk "$OUT/slk-$p.h5" -n $((10000 * p)) -d 16 -classes 26 -seed 13   # SLK: 10,000 rows per rank
done
mpirun -q -n 2 "$BOUNDOPT" -task import -import_format csv -input jobs/data/letter-recognition.data -output "$OUT/letters.h5" >/dev/null || die "letters import failed"
mpirun -q -n 2 "$BOUNDOPT" -task preprocess -input "$OUT/letters.h5" -output "$OUT/letters-l2.h5" -preprocess_l2 >/dev/null
mpirun -q -n 2 "$BOUNDOPT" -task preprocess -input "$OUT/letters.h5" -output "$OUT/letters-fs.h5" -preprocess_center mean -preprocess_pca 12 -preprocess_fit_classes 0-10 -preprocess_l2 >/dev/null
mpirun -q -n 2 "$BOUNDOPT" -task knn -input "$OUT/letters-l2.h5" -output "$OUT/letters-knn5.h5" -knn_k 5 >/dev/null || die "knn failed"

# --- kernels: rates per phase and bytes per iteration ------------------------------------------
: >"$OUT/measured.jsonl"
for p in $RANKS; do
  echo "scaling: bench_kmeans assign N=100,000 D=128 K=1000, $p rank(s) (load $(load))" >&2
  mpirun -q -n "$p" "$BUILD/benchmarks/bench_kmeans" assign "$OUT/x128.h5" --k 1000 --reps 3 >>"$OUT/measured.jsonl" || die "bench_kmeans assign failed"
  echo "scaling: bench_kmeans bound letters kNN-5 K=100, $p rank(s) (load $(load))" >&2
  mpirun -q -n "$p" "$BUILD/benchmarks/bench_kmeans" bound "$OUT/letters-l2.h5" "$OUT/letters-knn5.h5" --k 100 --its 20 --reps 3 >>"$OUT/measured.jsonl" || die "bench_kmeans bound failed"
done

# --- whole jobs: strong (same size) and weak (size per rank fixed) -------------------------------
job() { # job NAME YAML-BODY: a job file in OUT
  printf '%s\n' "$2" >"$OUT/$1.yaml"
}
job kmeans "task: cluster
input: $OUT/km-2.h5
cluster: {method: kmeans, k: 20, max_it: 15}"
job slk "task: cluster
input: $OUT/slk-2.h5
cluster: {method: slk-ms, k: 26, max_it: 4, tol: 0, bound_max_it: 20, bound_tol: 0}"
job fewshot "task: fewshot
input: $OUT/letters-fs.h5
fewshot: {classes: \"16-25\", method: \"laplacianshot,tim-adm\", tasks: 400}"
for fam in kmeans slk fewshot; do
  echo "scaling: jobs $fam at ranks $RANKS, $REPS runs each (load $(load))" >&2
  rm -rf "$OUT/jobs-$fam"
  case $fam in
  kmeans) weak=(--weak-input "$OUT/km-%P.h5") ;;
  slk) weak=(--weak-input "$OUT/slk-%P.h5") ;;
  fewshot) weak=(--weak fewshot_tasks=200) ;;
  esac
  bash slurm/scaling.sh --local --ranks "$RANKS" --reps "$REPS" "${weak[@]}" --out "$OUT/jobs-$fam" "$OUT/$fam.yaml" >"$OUT/jobs-$fam.log" 2>&1 || die "slurm/scaling.sh for $fam failed; see $OUT/jobs-$fam.log"
  echo "== $fam"; cat "$OUT/jobs-$fam/scaling.md"
done
echo "load at end $(load)" >>"$OUT/machine.txt"

# --- the projection ----------------------------------------------------------------------------
"$PY" benchmarks/scaling/model.py "$OUT" || die "model.py failed; expected python3 with matplotlib"
cat "$OUT/model.md"
R=benchmarks/scaling/results
mkdir -p "$R"
cp "$OUT/measured.jsonl" "$OUT/machine.txt" "$OUT/model.md" "$OUT/model.png" "$R/"
for fam in kmeans slk fewshot; do for f in scaling.md scaling.tsv scaling.png; do cp "$OUT/jobs-$fam/$f" "$R/jobs-$fam-$f" 2>/dev/null; done; done
echo "scaling: results copied to $R" >&2
