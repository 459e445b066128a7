#!/usr/bin/env bash
# test_parallel_services.sh - the parallel services (tiles, exact sums, stats, PCA, checkpoints)
# give the same bits at every rank count.  Uses build/tests/tools/parallel_check (see its header).
source "$(dirname "$0")/../lib.sh"

PC="$TOOLS/parallel_check"
# pc P args...: the tool on P ranks, output to $SCRATCH/pc.log (its tail printed on failure)
pc() {
  local p=$1 rc=0; shift
  timeout 300 mpirun -q --oversubscribe -n "$p" "$PC" "$@" >"$SCRATCH/pc.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || tail -5 "$SCRATCH/pc.log"
  return "$rc"
}

if [ ! -x "$PC" ]; then fail "parallel services" "$PC missing; expected 'make tools'"; exit 0; fi

# ---- column means, row statistics, PCA and projections: byte-identical at every rank count
ref=""
for p in $RANKS; do
  if pc "$p" stats "$SCRATCH/stats.$p.txt"; then
    [ -z "$ref" ] && ref=$p
  else
    fail "stats/PCA run at $p ranks" "$(tail -3 "$SCRATCH/pc.log" | tr '\n' ' ')"
    rm -f "$SCRATCH/stats.$p.txt"
  fi
done

# the reference output covers all seven sizes, so identical outputs are not identical by being empty
covers_all_sizes() { [ "$(grep -c '^n ' "$1")" = 7 ] && [ "$(grep -c '^pca_components ' "$1")" = 7 ]; }
if [ -n "$ref" ]; then
  check "stats/PCA output at $ref rank(s) covers n = 0, 1, 255, 256, 257, 1000, 5000" covers_all_sizes "$SCRATCH/stats.$ref.txt"
  for p in $RANKS; do
    [ "$p" = "$ref" ] && continue
    [ -f "$SCRATCH/stats.$p.txt" ] || continue
    check "column means, row stats, PCA and projections at $p ranks are byte-identical to $ref rank(s)" cmp "$SCRATCH/stats.$ref.txt" "$SCRATCH/stats.$p.txt"
  done
fi

# ---- checkpoints: written at 3 ranks, read back at 2 and 1 (another partition of the rows)
CK="$SCRATCH/ck.h5"
written_cleanly() { pc 3 ckwrite "$CK" "$SCRATCH/written.txt" && [ -f "$CK" ] && [ ! -e "$CK.tmp" ] && [ -s "$SCRATCH/written.txt" ]; }
check "a checkpoint written at 3 ranks is renamed into place, no .tmp left" written_cleanly

# reads_back P: the tool checks every row against the generator, and its dump equals the writer's
reads_back() { pc "$1" ckread "$CK" "$SCRATCH/read.$1.txt" && cmp "$SCRATCH/written.txt" "$SCRATCH/read.$1.txt"; }
for p in 2 1; do
  check "a checkpoint written at 3 ranks reads back identically at $p rank(s)" reads_back "$p"
done

check "opening the checkpoint as another job is refused ('another job') on every rank" pc 2 ckforeign "$CK"
