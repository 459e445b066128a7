# tests/lib.sh - helpers for the MPI integration tests (sourced by tests/mpi/test_*.sh).
#
# Each check appends "PASS name" or "FAIL name: why" to $RESULTS; tests/run.sh counts them.
# Every scratch file lives under $SCRATCH (a fresh folder per script).

: "${BIN:=bin}" "${BUILD:=build}"
BOUNDOPT="$(cd "$(dirname "$BIN/boundopt")" && pwd)/boundopt"
TOOLS="$(cd "$BUILD" && pwd)/tests/tools"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1 HDF5_USE_FILE_LOCKING=FALSE
RANKS="${RANKS:-1 2 3}"
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/boundopt-test.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT

pass() { echo "PASS $1" >>"$RESULTS"; echo "  ok   $1"; }
fail() { echo "FAIL $1: $2" >>"$RESULTS"; echo "  FAIL $1: $2"; }

# run_np P args...: boundopt on P ranks; stdout and stderr to $SCRATCH/out.txt, err.txt.
run_np() {
  local p=$1; shift
  timeout 300 mpirun -q -n "$p" "$BOUNDOPT" "$@" >"$SCRATCH/out.txt" 2>"$SCRATCH/err.txt"
}

# check NAME cmd...: passes when cmd exits 0.
check() {
  local name=$1; shift
  if "$@" >"$SCRATCH/check.txt" 2>&1; then pass "$name"; else fail "$name" "$(tail -3 "$SCRATCH/check.txt" | tr '\n' ' ')"; fi
}

# expect_error NAME STATUS PATTERN DIR P args...: the job must exit with STATUS, print exactly one
# "boundopt: " line on stderr containing PATTERN (grep -E), and leave DIR with no new file.
expect_error() {
  local name=$1 status=$2 pattern=$3 dir=$4 p=$5; shift 5
  local before after rc lines
  before=$(ls -A "$dir" | sort)
  run_np "$p" "$@"; rc=$?
  after=$(ls -A "$dir" | sort)
  lines=$(grep -c '^boundopt: ' "$SCRATCH/err.txt")
  if [ "$rc" != "$status" ]; then fail "$name" "exit $rc, expected $status; stderr: $(head -c 300 "$SCRATCH/err.txt")"
  elif [ "$lines" != 1 ]; then fail "$name" "$lines 'boundopt:' lines, expected 1: $(head -c 400 "$SCRATCH/err.txt")"
  elif ! grep '^boundopt: ' "$SCRATCH/err.txt" | grep -Eq -- "$pattern"; then fail "$name" "message '$(grep '^boundopt: ' "$SCRATCH/err.txt")' lacks /$pattern/"
  elif ! grep '^boundopt: ' "$SCRATCH/err.txt" | grep -q 'expected'; then fail "$name" "message has no 'expected' part"
  elif [ "$before" != "$after" ]; then fail "$name" "the folder gained files: $(comm -13 <(echo "$before") <(echo "$after") | tr '\n' ' ')"
  else pass "$name"; fi
}

# same_results A B: identical apart from /meta.
same_results() { h5diff --exclude-path /meta "$1" "$2" >/dev/null; }
