#!/usr/bin/env bash
# scaling.sh - strong and weak scaling of one boundopt job: submit it at several rank counts,
# then gather /meta/timings/* of the results into a table and a plot.
#
#   bash slurm/scaling.sh [--ranks "1 2 4 8 16"] [--weak OPTION=PER_RANK] [--weak-input TEMPLATE]
#                         [--reps R] [--out DIR] [--local] JOB.yaml [-option value ...]
#   bash slurm/scaling.sh --gather DIR          # the table and plot again, from DIR's results
#
# Strong scaling: the job as given, at each rank count P of --ranks (default "1 2 4 8").
# Weak scaling (when --weak or --weak-input is given): the size grows with P:
#   --weak OPTION=PER_RANK   sets -OPTION P*PER_RANK, e.g. --weak fewshot_tasks=2000;
#   --weak-input TEMPLATE    sets -input TEMPLATE with %P replaced by P, e.g. data-%P.h5 (inputs you
#                            made with P times the rows of data-1.h5).
# Each run writes DIR/<strong|weak>-P-<rep>.h5 (DIR defaults to scaling-<date>); each is submitted
# with slurm/boundopt.sbatch (--ntasks=P; BOUNDOPT_SBATCH_ARGS adds arguments), and a gather job
# (--dependency=afterany on all of them) writes
#   DIR/scaling.tsv   one line per run: kind, ranks, size, read, compute, write seconds, iterations
#   DIR/scaling.md    the table: medians over the reps, speed-up and efficiency
#   DIR/scaling.png   time, speed-up and efficiency against ranks (needs python3 with matplotlib)
# Strong: speed-up S(P) = T(P0) / T(P) with P0 the fewest ranks, efficiency S(P) P0 / P.  Weak:
# efficiency T(P0) / T(P).  T is the compute phase (also shown: read + compute + write); for jobs
# that record their outer iterations (cluster) T is compute seconds per iteration, so runs that
# stop after different numbers of iterations compare fairly.
# --local runs the same jobs one after the other with mpirun on this machine, no Slurm (as
# benchmarks/scaling/ does).  Prints what it submitted and where the results go.
set -u
die() { echo "scaling: $1" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${BOUNDOPT_PYTHON:-$( [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)}

h5value() { h5dump -m %.17g -d "$2" "$1" 2>/dev/null | sed -n 's/^ *(0): *//p' | head -1; }
h5attr() { h5dump -a "$2" "$1" 2>/dev/null | sed -n 's/^ *(0): *//p' | head -1; }

gather() {
  local dir=$1 f kind p size
  [ -d "$dir" ] || die "--gather $dir: no such folder; expected the folder of a scaling run"
  printf 'kind\tranks\tsize\tread\tcompute\twrite\titerations\tfile\n' >"$dir/scaling.tsv"
  for f in "$dir"/strong-*.h5 "$dir"/weak-*.h5; do
    [ -f "$f" ] || continue
    kind=$(basename "$f" | cut -d- -f1)
    p=$(h5value "$f" /meta/nranks)
    size=$(cat "${f%.h5}.size" 2>/dev/null || echo -)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$p" "$size" "$(h5value "$f" /meta/timings/read)" "$(h5value "$f" /meta/timings/compute)" "$(h5value "$f" /meta/timings/write)" "$(h5attr "$f" /iterations)" "$(basename "$f")" >>"$dir/scaling.tsv"
  done
  [ "$(wc -l <"$dir/scaling.tsv")" -gt 1 ] || die "$dir: no results (strong-*.h5, weak-*.h5); expected finished runs (see the logs in $dir)"
  rm -f "$dir/scaling.png"
  "$PYTHON" "$here/scaling_report.py" "$dir/scaling.tsv" "$dir/scaling.md" "$dir/scaling.png" || die "the report failed; expected python3 (and python3-matplotlib for the plot)"
  cat "$dir/scaling.md"
  echo "scaling: table $dir/scaling.md, data $dir/scaling.tsv$([ -f "$dir/scaling.png" ] && echo ", plot $dir/scaling.png")"
}

[ "${1:-}" = --gather ] && { gather "${2:-}"; exit; }

ranks="1 2 4 8" weak= weak_input= reps=1 out= local=0
while [ $# -gt 0 ]; do
  case $1 in
  --ranks) ranks=$2; shift 2 ;;
  --weak) weak=$2; shift 2 ;;
  --weak-input) weak_input=$2; shift 2 ;;
  --reps) reps=$2; shift 2 ;;
  --out) out=$2; shift 2 ;;
  --local) local=1; shift ;;
  --*) die "$1: not an option; expected --ranks, --weak, --weak-input, --reps, --out, --local or --gather" ;;
  *) break ;;
  esac
done
[ $# -ge 1 ] || die "no job file; expected: bash slurm/scaling.sh [--ranks \"1 2 4\"] JOB.yaml [-option value ...]"
job=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); shift
[ -f "$job" ] || die "$job: no such job file; expected a YAML job"
if [ -n "$weak" ]; then
  [[ "$weak" =~ ^([A-Za-z0-9_]+)=([0-9]+)$ ]] || die "--weak $weak; expected OPTION=PER_RANK, e.g. fewshot_tasks=2000"
  weak_option=${BASH_REMATCH[1]} per_rank=${BASH_REMATCH[2]}
fi
out=${out:-scaling-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out" || die "$out: cannot create; expected a writable folder"
out=$(cd "$out" && pwd)
if [ "$local" = 1 ]; then
  if [ -n "${BOUNDOPT:-}" ]; then prog=$BOUNDOPT; elif command -v boundopt >/dev/null; then prog=$(command -v boundopt); else prog=$here/../bin/boundopt; fi
  [ -x "$prog" ] || die "$prog: not an executable; expected BOUNDOPT=/path/to/boundopt"
else
  command -v sbatch >/dev/null || die "sbatch not found; expected a Slurm login node (or --local)"
fi

ids=
run() { # run KIND P REP SIZE args...
  local kind=$1 p=$2 rep=$3 size=$4; shift 4
  local res=$out/$kind-$p-$rep.h5
  echo "$size" >"${res%.h5}.size"
  if [ "$local" = 1 ]; then
    echo "scaling: mpirun -n $p $prog $job $* -output $res"
    mpirun ${BOUNDOPT_MPIRUN_ARGS--q} -n "$p" "$prog" "$job" "$@" -output "$res" >"${res%.h5}.out" 2>&1 || echo "scaling: the $kind run at $p ranks failed (exit $?); see ${res%.h5}.out"
  else
    local id
    id=$(sbatch --parsable ${BOUNDOPT_SBATCH_ARGS:-} --ntasks="$p" --job-name="scaling-$kind-$p" --output="${res%.h5}.out" "$here/boundopt.sbatch" "$job" "$@" -output "$res") || die "sbatch failed"
    id=${id%%;*}; ids+=":$id"
    echo "scaling: submitted job $id: $kind, $p ranks -> $res"
  fi
}
for p in $ranks; do
  [[ "$p" =~ ^[1-9][0-9]*$ ]] || die "--ranks '$ranks'; expected positive integers"
  for ((r = 1; r <= reps; r++)); do
    run strong "$p" "$r" - "$@"
    if [ -n "$weak" ] || [ -n "$weak_input" ]; then
      extra=() size=
      [ -n "$weak" ] && { extra+=("-$weak_option" $((p * per_rank))); size=$((p * per_rank)); }
      [ -n "$weak_input" ] && { extra+=(-input "${weak_input//%P/$p}"); f=${weak_input//%P/$p}; size=${size:-${f##*/}}; }
      run weak "$p" "$r" "$size" "$@" "${extra[@]}"
    fi
  done
done
if [ "$local" = 1 ]; then gather "$out"; exit; fi
gid=$(sbatch --parsable ${BOUNDOPT_SBATCH_ARGS:-} --ntasks=1 --job-name=scaling-gather --output="$out/gather.out" --dependency="afterany$ids" --wrap="bash '$here/scaling.sh' --gather '$out'") || die "sbatch of the gather job failed"
echo "scaling: submitted gather job ${gid%%;*} (afterany$ids) -> $out/scaling.md, $out/scaling.png"
