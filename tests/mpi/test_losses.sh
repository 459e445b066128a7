#!/usr/bin/env bash
# test_losses.sh - data-parallel losses (losses.h), head gradients (heads.h) and Adam steps
# (optim.h) give the same bits at every rank count.  Uses build/tests/tools/loss_mpi_check (see its
# header): images split between ranks, exact sums of the aggregates and of the tile partials.
source "$(dirname "$0")/../lib.sh"

LC="$TOOLS/loss_mpi_check"
if [ ! -x "$LC" ]; then fail "losses" "$LC missing; expected 'make tools'"; exit 0; fi

ref=""
for p in $RANKS; do
  if timeout 300 mpirun -q --oversubscribe -n "$p" "$LC" "$SCRATCH/loss.$p.txt" >"$SCRATCH/lc.log" 2>&1; then
    [ -z "$ref" ] && ref=$p
  else
    fail "loss_mpi_check at $p ranks" "$(tail -3 "$SCRATCH/lc.log" | tr '\n' ' ')"
    rm -f "$SCRATCH/loss.$p.txt"
  fi
done

# the reference covers all 6 steps and the prototype head, and its gradients are not all zero
covers_everything() {
  [ "$(grep -c '^param ' "$1")" = 6 ] && [ "$(grep -c '^dlogits ' "$1")" = 6 ] && grep -q '^proto grad ' "$1" &&
    grep '^grad ' "$1" | head -1 | tr ' ' '\n' | grep -vq -e '^grad$' -e '^0x0p+0$'
}
if [ -n "$ref" ]; then
  check "loss check at $ref rank(s) covers 6 Adam steps with nonzero gradients and the prototype head" covers_everything "$SCRATCH/loss.$ref.txt"
  for p in $RANKS; do
    [ "$p" = "$ref" ] && continue
    [ -f "$SCRATCH/loss.$p.txt" ] || continue
    check "loss values, logit gradients, head gradients and Adam steps at $p ranks are byte-identical to $ref rank(s)" cmp "$SCRATCH/loss.$ref.txt" "$SCRATCH/loss.$p.txt"
  done
fi
