#!/usr/bin/env bash
# tests/run.sh - every test: cmocka unit tests, then the MPI integration scripts at 1, 2 and 3
# ranks.  Prints one summary line "N passed, N failed" and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
export BUILD="${BUILD:-build}" BIN="${BIN:-bin}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 HDF5_USE_FILE_LOCKING=FALSE
if [ "${SANITIZE:-0}" = 1 ]; then
  # Keep Open MPI's components loaded so their leaks can be suppressed by name (tests/sanitize/).
  export LD_PRELOAD="$(pwd)/$BUILD/nodlclose.so"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:detect_odr_violation=0:verify_asan_link_order=0"
  export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi
export RESULTS="$(mktemp)"
start=$(date +%s)

echo "== unit tests"
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  if timeout 300 "$t" >"$RESULTS.log" 2>&1; then echo "PASS unit/$name" >>"$RESULTS"; echo "  ok   unit/$name ($(grep -Eo '[0-9]+ test\(s\) run' "$RESULTS.log" | head -1))"
  else echo "FAIL unit/$name" >>"$RESULTS"; echo "  FAIL unit/$name"; sed 's/^/    /' "$RESULTS.log" | tail -30; fi
done

for script in tests/mpi/test_*.sh; do
  [ -n "${ONLY:-}" ] && [[ "$script" != *"$ONLY"* ]] && continue
  echo "== $script"
  bash "$script" || echo "FAIL $script: exited $?" >>"$RESULTS"
done

passed=$(grep -c '^PASS' "$RESULTS"); failed=$(grep -c '^FAIL' "$RESULTS")
echo
[ "$failed" -gt 0 ] && { echo "Failures:"; grep '^FAIL' "$RESULTS" | sed 's/^/  /'; }
echo "($(( $(date +%s) - start )) s)"
echo "$passed passed, $failed failed"
rm -f "$RESULTS" "$RESULTS.log"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
