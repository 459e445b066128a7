#!/usr/bin/env bash
# Integration: task cluster, every method, at 1, 2 and 3 ranks (identical results), quality on
# separated blobs, checkpoint/restart with a real signal, and every bad input it refuses.
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH
"$TOOLS/mkfeatures" "$D/blobs.h5" -n 1500 -d 10 -classes 4 -seed 3 -sep 8
mpirun -q -n 2 "$BOUNDOPT" -task import -import_format csv -input jobs/data/letter-recognition.data -output "$D/letters.h5" >/dev/null
mpirun -q -n 2 "$BOUNDOPT" -task preprocess -input "$D/letters.h5" -output "$D/letters-l2.h5" -preprocess_l2 >/dev/null

for m in kmeans soft-kmeans kmodes slk-means slk-ms slk-bo; do
  for p in $RANKS; do
    run_np "$p" -task cluster -input "$D/blobs.h5" -output "$D/$m-$p.h5" -cluster_method "$m" -cluster_k 4 -cluster_means hard \
      || fail "cluster $m at $p ranks" "$(cat "$D/err.txt")"
  done
  for p in 2 3; do check "cluster $m: identical assignments, prototypes and energies at 1 and $p ranks" same_results "$D/$m-1.h5" "$D/$m-$p.h5"; done
  check "cluster $m finds the 4 separated blobs (NMI > 0.99) and records rank_invariant = 1" bash -c "h5dump -a /nmi '$D/$m-1.h5' | grep -Eq '\(0\): (0\.99|1$)' && h5dump -d /meta/rank_invariant '$D/$m-1.h5' | grep -q '(0): 1'"
done
check "results hold assignments, prototypes, energy, bound_iterations, cluster_sizes and the metrics" bash -c "for o in /assignments /prototypes /energy /bound_iterations /cluster_sizes; do h5dump -H -d \$o '$D/slk-ms-1.h5' >/dev/null || exit 1; done; for a in nmi nmi_geometric acc iterations; do h5dump -a /\$a '$D/slk-ms-1.h5' >/dev/null || exit 1; done"
check "cluster sizes add up to N" bash -c "h5dump -y -w 0 -d /cluster_sizes '$D/kmeans-1.h5' | sed -n '/DATA {/,/}/p' | tr -s ', ' '\n\n' | awk '\$1+0==\$1 && NF {s+=\$1} END {exit !(s==1500)}'"

# Empty clusters: seeds x0, x1, x1 (a copy) on two blobs; cluster 2 loses every tie and empties.
"$TOOLS/mkfeatures" "$D/two.h5" -n 300 -d 6 -classes 2 -sep 50 -seed 1
"$TOOLS/mkfeatures" "$D/seeds.h5" -n 3 -d 6 -classes 2 -sep 50 -seed 1 -duplicate-last -labels none
for p in 1 3; do run_np "$p" -task cluster -input "$D/two.h5" -output "$D/empty$p.h5" -cluster_k 3 -cluster_init "$D/seeds.h5" -cluster_monitor; done
check "an empty cluster is re-seeded with the farthest point and reported" bash -c "h5dump -a /empty_reseeds '$D/empty1.h5' | grep -Eq '\(0\): [1-9]' && grep -q 'reseeded [1-9]' '$D/out.txt' && h5dump -y -w 0 -d /cluster_sizes '$D/empty1.h5' | sed -n '/DATA {/,/}/p' | grep -Evq '(^|[ ,])0(,|$| )'"
check "re-seeding is identical at 1 and 3 ranks" same_results "$D/empty1.h5" "$D/empty3.h5"
run_np 2 -task cluster -input "$D/two.h5" -output "$D/stop.h5" -cluster_k 3 -cluster_init "$D/seeds.h5" -cluster_on_empty stop
check "on_empty stop restores the previous iteration and stops (as the reference)" bash -c "h5dump -a /iterations '$D/stop.h5' | grep -q '(0): 1' && h5dump -a /empty_reseeds '$D/stop.h5' | grep -q '(0): 0'"

# Bundled data: Letter Recognition (26 clusters), K-means and SLK-MS, rank-count independent.
for m in kmeans slk-ms; do
  for p in 1 3; do run_np "$p" -task cluster -input "$D/letters-l2.h5" -output "$D/let-$m-$p.h5" -cluster_method $m -cluster_k 26 || fail "letters $m at $p ranks" "$(cat "$D/err.txt")"; done
  check "letters $m: identical at 1 and 3 ranks" same_results "$D/let-$m-1.h5" "$D/let-$m-3.h5"
done
run_np 2 -task cluster -input "$D/letters-l2.h5" -output "$D/mon.h5" -cluster_method slk-ms -cluster_k 26 -cluster_monitor
check "-cluster_monitor prints one line per outer iteration" bash -c "[ \$(grep -c '^  cluster ' '$D/out.txt') -eq \$(h5dump -a /iterations '$D/mon.h5' | sed -n 's/.*(0): //p') ]"
# K-means's monitor sums the ranks' skipped rows (each rank keeps its own count): the same column at 1 and 3 ranks
for p in 1 3; do run_np "$p" -task cluster -input "$D/letters-l2.h5" -output "$D/skip$p.h5" -cluster_method kmeans -cluster_k 10 -cluster_monitor; grep -o 'skipped [0-9.]*%' "$D/out.txt" > "$D/skip$p.txt"; done
check "-cluster_monitor (kmeans): the skipped share is the same at 1 and 3 ranks and reaches 90 %" bash -c "[ -s '$D/skip1.txt' ] && cmp -s '$D/skip1.txt' '$D/skip3.txt' && awk '{ sub(/%/, \"\", \$2); if (\$2 + 0 > m) m = \$2 + 0 } END { exit !(m >= 90) }' '$D/skip3.txt'"

# Checkpoint and restart: a signal mid-run, exit 3, resume (also at another rank count), the same
# results as an uninterrupted run.
SLOW=(-task cluster -input "$D/letters-l2.h5" -cluster_method slk-ms -cluster_k 26 -cluster_max_it 12 -cluster_tol 0 -cluster_bound_tol 0 -cluster_bound_max_it 15 -cluster_monitor)
run_np 2 "${SLOW[@]}" -output "$D/straight.h5" || fail "uninterrupted slow run" "$(cat "$D/err.txt")"
run_np 3 "${SLOW[@]}" -output "$D/resumed.h5" -checkpoint_file "$D/ck.h5" -debug_signal_at 4; rc=$?
check "SIGUSR1 at an iteration boundary: checkpoint written, exit 3, no results file" bash -c "[ $rc = 3 ] && [ -f '$D/ck.h5' ] && [ ! -e '$D/resumed.h5' ]"
run_np 2 "${SLOW[@]}" -output "$D/resumed.h5" -checkpoint_file "$D/ck.h5"; rc=$?
check "rerunning the job resumes from the checkpoint at 2 ranks" bash -c "[ $rc = 0 ] && grep -q 'resuming from .* at iteration 5' '$D/out.txt'"
check "the resumed run equals the uninterrupted run (h5diff, no tolerance)" same_results "$D/straight.h5" "$D/resumed.h5"
check "a finished job removes its checkpoint" test ! -e "$D/ck.h5"

# A real signal sent to the launcher while the job runs.
mpirun -q -n 2 "$BOUNDOPT" "${SLOW[@]}" -cluster_max_it 40 -output "$D/real.h5" -checkpoint_file "$D/ck2.h5" >"$D/real.txt" 2>&1 &
launcher=$!
for _ in $(seq 1 600); do grep -q '^  cluster   2' "$D/real.txt" 2>/dev/null && break; sleep 0.1; done
kill -USR1 "$launcher"   # Open MPI forwards SIGUSR1 to the ranks
wait "$launcher"; rc=$?
check "kill -USR1 to mpirun mid-run: exit 3 with a checkpoint" bash -c "[ $rc = 3 ] && [ -f '$D/ck2.h5' ]"
run_np 1 "${SLOW[@]}" -cluster_max_it 40 -output "$D/real.h5" -checkpoint_file "$D/ck2.h5" && run_np 2 "${SLOW[@]}" -cluster_max_it 40 -output "$D/real-straight.h5"
check "the run resumed after a real signal (at 1 rank) equals an uninterrupted one" same_results "$D/real.h5" "$D/real-straight.h5"

# Bad input.
O=$SCRATCH/o; mkdir -p "$O"
CL=(-task cluster -input "$D/blobs.h5" -output "$O/c.h5")
expect_error "K < 1"                  1 'option -cluster_k: 0 with N = 1500; expected 1 <= K <= N' "$O" 3 "${CL[@]}" -cluster_k 0
expect_error "K > N"                  1 'option -cluster_k: 2000 with N = 1500' "$O" 2 "${CL[@]}" -cluster_k 2000
expect_error "lambda < 0"             1 'option -cluster_lambda: -1\.?; expected lambda >= 0' "$O" 3 "${CL[@]}" -cluster_method slk-ms -cluster_lambda -1
expect_error "knn >= N"               1 'option -cluster_knn: 1501 with N = 1500' "$O" 2 "${CL[@]}" -cluster_method slk-ms -cluster_knn 1501
expect_error "unknown method"         1 "option -cluster_method: 'slk'; expected kmeans" "$O" 2 "${CL[@]}" -cluster_method slk
"$TOOLS/mkfeatures" "$D/other.h5" -n 700 -d 10
mpirun -q -n 2 "$BOUNDOPT" -task knn -input "$D/other.h5" -output "$D/other-graph.h5" >/dev/null 2>&1
expect_error "a graph file whose N differs" 1 'other-graph\.h5: .*700.*expected.*1500|other-graph\.h5: .*1500' "$O" 3 "${CL[@]}" -cluster_method slk-ms -cluster_graph "$D/other-graph.h5"
expect_error "an init file of the wrong shape" 1 'option -cluster_init: .*other\.h5/features is 700 x 10; expected K x D = 4 x 10' "$O" 2 "${CL[@]}" -cluster_k 4 -cluster_init "$D/other.h5"
"$TOOLS/mkfeatures" "$D/ident.h5" -n 30 -d 4 -identical
expect_error "all-identical points"   1 'ident\.h5: all 30 rows are the same point' "$O" 3 -task cluster -input "$D/ident.h5" -output "$O/c.h5" -cluster_k 2
run_np 2 -task cluster -input "$D/letters-l2.h5" -output "$O/l.h5" -cluster_k 26 -checkpoint_file "$D/ck3.h5" -debug_signal_at 2
check "a checkpoint to refuse exists" test -f "$D/ck3.h5"
expect_error "a checkpoint of another job" 1 'ck3\.h5: checkpoint of another job' "$O" 2 -task cluster -input "$D/letters-l2.h5" -output "$O/l.h5" -cluster_k 25 -checkpoint_file "$D/ck3.h5"
