#!/usr/bin/env bash
# test_knn.sh - the distributed exact kNN graph, W*Y and the SLK bound iterations (with work shared
# within a node, also when a rank is slowed down) give the same bits at 1, 2 and 3 ranks; the graph
# equals a brute-force search; the knn task gives the same file at every rank count; knn >= N is
# refused.  Uses build/tests/tools/knn_check (see its header) and the knn task.
source "$(dirname "$0")/../lib.sh"

KC="$TOOLS/knn_check"
# kc P args...: the tool on P ranks, output to $SCRATCH/kc.log (its tail printed on failure)
kc() {
  local p=$1 rc=0; shift
  timeout 300 mpirun -q --oversubscribe -n "$p" "$KC" "$@" >"$SCRATCH/kc.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || tail -5 "$SCRATCH/kc.log"
  return "$rc"
}

if [ ! -x "$KC" ]; then fail "knn" "$KC missing; expected 'make tools'"; exit 0; fi

# ---- graph (indices, weights), W*Y, per-edge distances: byte-identical at every rank count.
# Cases: n across tile edges, several knn, both weights, the three symmetrisations, exact ties.
CASES=(
  "n1000-k5-avg:-n 1000 -k 5 -sym avg"
  "n1000-k10-gauss-max:-n 1000 -k 10 -sym max -weights gaussian"
  "n3000-k5-none:-n 3000 -k 5 -sym none"
  "n3000-k8-gauss-avg:-n 3000 -k 8 -sym avg -weights gaussian"
  "n3000-k3-noself-max:-n 3000 -k 3 -self 0 -sym max"
  "n3000-k6-grid-avg:-n 3000 -k 6 -sym avg -data grid"
)
for c in "${CASES[@]}"; do
  name=${c%%:*}; read -r -a args <<<"${c#*:}"
  ref=""
  for p in $RANKS; do
    if kc "$p" graph "$SCRATCH/$name.$p.txt" "${args[@]}" -d 20; then
      [ -z "$ref" ] && ref=$p
    else
      fail "graph $name at $p ranks" "$(tail -3 "$SCRATCH/kc.log" | tr '\n' ' ')"
      rm -f "$SCRATCH/$name.$p.txt"
    fi
  done
  [ -n "$ref" ] || continue
  n=${name#n}; n=${n%%-*}
  check "graph $name at $ref rank(s) has all $n rows" bash -c "[ \$(grep -c '^[0-9]*:' '$SCRATCH/$name.$ref.txt') = $n ]"
  for p in $RANKS; do
    [ "$p" = "$ref" ] || [ ! -f "$SCRATCH/$name.$p.txt" ] && continue
    check "graph, W*Y and edge distances ($name) at $p ranks are byte-identical to $ref rank(s)" cmp "$SCRATCH/$name.$ref.txt" "$SCRATCH/$name.$p.txt"
  done
done

# ---- against a brute-force search in double on one process (rank 0 of the run)
for p in $RANKS; do
  check "kNN at $p ranks equals brute force with exact ties (grid data; row-wise, avg, max), n 3000 k 6" kc "$p" verify -n 3000 -d 20 -k 6 -data grid
  check "kNN at $p ranks equals brute force up to float near-ties (Gaussian data with duplicates), n 3000 k 5" kc "$p" verify -n 3000 -d 20 -k 5 -data gauss
done
check "kNN at 4 ranks (a split ring step) equals brute force with exact ties, n 1000 k 4" kc 4 verify -n 1000 -d 20 -k 4 -data grid

# ---- SLK bound iterations with the node's ranks sharing the work: the same bits at every rank
# count, and when one rank is slowed down (it sleeps after each tile) the others take some of its
# tiles in both phases (the tool exits 1 otherwise) and the bits still do not change.
for p in $RANKS; do
  kc "$p" bound "$SCRATCH/bound.$p.txt" -n 5000 -d 20 -k 5 || fail "bound iterations at $p ranks" "$(tail -3 "$SCRATCH/kc.log" | tr '\n' ' ')"
done
check "bound iterations at 1 rank cover all 5000 rows" bash -c "[ \$(grep -c '^[0-9]*:' '$SCRATCH/bound.1.txt') = 5000 ]"
for p in $RANKS; do
  [ "$p" = 1 ] && continue
  check "bound iterations at $p ranks are byte-identical to 1 rank" cmp "$SCRATCH/bound.1.txt" "$SCRATCH/bound.$p.txt"
  check "bound iterations at $p ranks with rank 1 slowed: the others take some of its tiles, same bits" bash -c "timeout 300 mpirun -q --oversubscribe -n $p '$KC' bound '$SCRATCH/bslow.$p.txt' -n 5000 -d 20 -k 5 -slow 1 && cmp '$SCRATCH/bound.1.txt' '$SCRATCH/bslow.$p.txt'"
done

# The same with ranks grouped as if on several nodes: rows between groups travel by message into
# the ghost windows, and a rank that helps reads its neighbour's ghosts.
check "bound iterations at 3 ranks in groups of 2 (two 'nodes'; rank 1 slowed) are byte-identical to 1 rank" bash -c "timeout 300 mpirun -q --oversubscribe -n 3 '$KC' bound '$SCRATCH/bgroup.txt' -n 5000 -d 20 -k 5 -group 2 -slow 1 && cmp '$SCRATCH/bound.1.txt' '$SCRATCH/bgroup.txt'"
check "bound iterations at 2 ranks in groups of 1 (every row of the other rank by message) are byte-identical to 1 rank" bash -c "timeout 300 mpirun -q --oversubscribe -n 2 '$KC' bound '$SCRATCH/bgroup1.txt' -n 5000 -d 20 -k 5 -group 1 && cmp '$SCRATCH/bound.1.txt' '$SCRATCH/bgroup1.txt'"

# ---- graph files: written at 3 ranks (and read back there), read at 1 and 2 ranks
if kc 3 graph "$SCRATCH/io.3.txt" -n 3000 -d 20 -k 7 -sym avg -weights gaussian -save "$SCRATCH/g3.h5"; then
  pass "a graph written at 3 ranks reads back identically at 3 ranks"
  for p in 1 2; do
    check "a graph written at 3 ranks reads back at $p rank(s) with the same rows, W*Y and distances" bash -c "timeout 300 mpirun -q --oversubscribe -n $p '$KC' graph '$SCRATCH/io.r$p.txt' -n 3000 -d 20 -k 7 -sym avg -weights gaussian -load '$SCRATCH/g3.h5' && cmp '$SCRATCH/io.3.txt' '$SCRATCH/io.r$p.txt'"
  done
else
  fail "graph write/read at 3 ranks" "$(tail -3 "$SCRATCH/kc.log" | tr '\n' ' ')"
fi

# ---- the knn task: identical results at 1, 2 and 3 ranks
"$TOOLS/mkfeatures" "$SCRATCH/feat.h5" -n 2000 -d 16 -classes 5
for p in $RANKS; do
  run_np "$p" -task knn -input "$SCRATCH/feat.h5" -output "$SCRATCH/knn$p.h5" -knn_k 5 \
    && run_np "$p" -task knn -input "$SCRATCH/feat.h5" -output "$SCRATCH/knng$p.h5" -knn_k 8 -knn_weights gaussian -knn_symmetrize max \
    || fail "knn task at $p ranks" "$(head -c 400 "$SCRATCH/err.txt")"
done
for p in $RANKS; do
  [ "$p" = 1 ] && continue
  check "knn task (k 5, binary, avg) gives the same file at 1 and $p ranks" same_results "$SCRATCH/knn1.h5" "$SCRATCH/knn$p.h5"
  check "knn task (k 8, gaussian, max) gives the same file at 1 and $p ranks" same_results "$SCRATCH/knng1.h5" "$SCRATCH/knng$p.h5"
done
check "knn task writes /graph/indptr (N+1), indices and data, with its options as attributes" bash -c "h5dump -H -d /graph/indptr '$SCRATCH/knn1.h5' | grep -q '( 2001 )' && h5dump -a /graph/knn '$SCRATCH/knn1.h5' | grep -q '(0): 5' && h5dump -a /graph/symmetrize '$SCRATCH/knn1.h5' | grep -q '\"avg\"' && h5dump -a /graph/scale '$SCRATCH/knng1.h5' >/dev/null"
check "knn task: binary avg weights are exactly 0.5 (one way) and 1 (both ways)" bash -c "h5dump -d /graph/data -y -w 0 '$SCRATCH/knn1.h5' | sed -n '/DATA {/,/}/p' | tr ', ' '\n\n' | grep -E '^[0-9.]+$' | sort -u | tr '\n' ' ' | grep -qx '0.5 1 '"
check "knn task records rank_invariant = 1" bash -c "h5dump -d /meta/rank_invariant '$SCRATCH/knn2.h5' | grep -q '(0): 1'"

# ---- errors: one line, exit 1, no file left behind
mkdir -p "$SCRATCH/out"
expect_error "knn task: k >= N"         1 'option -knn_k: 2000 with N = 2000; expected 2 <= k < N' "$SCRATCH/out" 3 -task knn -input "$SCRATCH/feat.h5" -output "$SCRATCH/out/x.h5" -knn_k 2000
expect_error "knn task: k = 1 with self" 1 'option -knn_k: 1 with N = 2000; expected 2 <= k < N'   "$SCRATCH/out" 2 -task knn -input "$SCRATCH/feat.h5" -output "$SCRATCH/out/x.h5" -knn_k 1
expect_error "knn task: bad weights"    1 "option -knn_weights: 'cosine'; expected binary or gaussian" "$SCRATCH/out" 2 -task knn -input "$SCRATCH/feat.h5" -output "$SCRATCH/out/x.h5" -knn_weights cosine
expect_error "knn task: bad symmetrize" 1 "option -knn_symmetrize: 'sum'; expected none, avg or max" "$SCRATCH/out" 2 -task knn -input "$SCRATCH/feat.h5" -output "$SCRATCH/out/x.h5" -knn_symmetrize sum
