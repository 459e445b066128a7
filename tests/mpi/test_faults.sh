#!/usr/bin/env bash
# Fault tolerance without Slurm: real signals mid-run (SIGTERM to ranks launched directly, as srun
# and slurmstepd deliver it; SIGUSR1 to mpirun for few-shot) give a checkpoint and exit 3, and the
# rerun, at another rank count, ends with the results of an uninterrupted run, for clustering and
# few-shot; SIGKILL during a checkpoint write leaves the previous checkpoint intact and loadable;
# a rank failing on purpose in cluster, fewshot or merge ends the job with one line and a non-zero
# status, without a hang.  (tests/mpi/test_cluster.sh already covers -debug_signal_at and SIGUSR1
# to mpirun for clustering; not repeated here.)
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH
mpirun -q -n 2 "$BOUNDOPT" -task import -import_format csv -input jobs/data/letter-recognition.data -output "$D/letters.h5" >/dev/null
mpirun -q -n 2 "$BOUNDOPT" -task preprocess -input "$D/letters.h5" -output "$D/l2.h5" -preprocess_l2 >/dev/null
mpirun -q -n 2 "$BOUNDOPT" -task preprocess -input "$D/letters.h5" -output "$D/feat.h5" -preprocess_center mean -preprocess_pca 12 -preprocess_fit_classes 0-10 -preprocess_l2 >/dev/null

# wait_for FILE PATTERN: until the pattern shows in the file (at most 120 s).
wait_for() { for _ in $(seq 1 1200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# The rank processes of an mpirun (its children).
ranks_of() { pgrep -P "$1" | tr '\n' ' '; }

# --- clustering: SIGTERM to the ranks themselves ---------------------------------------------
CL=(-task cluster -input "$D/l2.h5" -cluster_method slk-ms -cluster_k 26 -cluster_max_it 10 -cluster_tol 0 -cluster_bound_tol 0 -cluster_bound_max_it 10 -cluster_monitor)
run_np 2 "${CL[@]}" -output "$D/ref.h5" || fail "uninterrupted clustering" "$(cat "$D/err.txt")"

# One rank started without mpirun (a singleton), as a launcher that starts ranks directly would.
"$BOUNDOPT" "${CL[@]}" -output "$D/single.h5" -checkpoint_file "$D/ck1.h5" >"$D/single.txt" 2>&1 &
pid=$!
wait_for "$D/single.txt" '^  cluster   2 ' && kill -TERM "$pid"
wait "$pid"; rc=$?
check "SIGTERM to a rank started directly (no mpirun): checkpoint written, exit 3, no results file" bash -c "[ $rc = 3 ] && [ -f '$D/ck1.h5' ] && [ ! -e '$D/single.h5' ] && grep -q 'signal received; checkpoint' '$D/single.txt'"
run_np 3 "${CL[@]}" -output "$D/single.h5" -checkpoint_file "$D/ck1.h5"
check "... the rerun at 3 ranks resumes and equals the uninterrupted run (h5diff)" bash -c "grep -q 'resuming from' '$D/out.txt' && h5diff --exclude-path /meta '$D/ref.h5' '$D/single.h5'"

# Two ranks under mpirun, SIGTERM sent to each rank process (not to mpirun, which would kill them).
mpirun -q -n 2 "$BOUNDOPT" "${CL[@]}" -output "$D/term.h5" -checkpoint_file "$D/ck2.h5" >"$D/term.txt" 2>&1 &
launcher=$!
wait_for "$D/term.txt" '^  cluster   2 ' && kill -TERM $(ranks_of "$launcher")
wait "$launcher"; rc=$?
check "SIGTERM to both ranks of a 2-rank job: they agree at an iteration boundary, checkpoint, exit 3" bash -c "[ $rc = 3 ] && [ -f '$D/ck2.h5' ] && [ ! -e '$D/term.h5' ]"
run_np 1 "${CL[@]}" -output "$D/term.h5" -checkpoint_file "$D/ck2.h5"
check "... the rerun at 1 rank equals the uninterrupted run" same_results "$D/ref.h5" "$D/term.h5"

# SIGTERM to one rank only: the others learn of it through the agreement.
mpirun -q -n 3 "$BOUNDOPT" "${CL[@]}" -output "$D/one.h5" -checkpoint_file "$D/ck3.h5" >"$D/one.txt" 2>&1 &
launcher=$!
wait_for "$D/one.txt" '^  cluster   1 ' && kill -TERM $(ranks_of "$launcher" | awk '{print $2}')
wait "$launcher"; rc=$?
run_np 2 "${CL[@]}" -output "$D/one.h5" -checkpoint_file "$D/ck3.h5"
check "SIGTERM to one rank of 3: every rank checkpoints and exits 3; the rerun at 2 ranks equals the uninterrupted run" bash -c "[ $rc = 3 ] && h5diff --exclude-path /meta '$D/ref.h5' '$D/one.h5'"

# --- SIGKILL during a checkpoint write -----------------------------------------------------------
# 200,000 rows, soft K-means with K = 30: the checkpoint holds Y (48 MB), so a write lasts long
# enough to be caught: wait for the first checkpoint, then for the next write's temporary file,
# and kill every process of the job with SIGKILL (a node failure).
"$TOOLS/mkfeatures" "$D/big.h5" -n 200000 -d 8 -classes 30 -seed 5
BIG=(-task cluster -input "$D/big.h5" -cluster_method soft-kmeans -cluster_k 30 -cluster_max_it 7 -cluster_tol 0)
run_np 2 "${BIG[@]}" -output "$D/bigref.h5" || fail "uninterrupted soft K-means" "$(cat "$D/err.txt")"
caught=0
for attempt in 1 2 3; do
  rm -f "$D/bigck.h5" "$D/bigck.h5.tmp"
  mpirun -q -n 2 "$BOUNDOPT" "${BIG[@]}" -output "$D/big.h5.out" -checkpoint_file "$D/bigck.h5" -checkpoint_every 1 >"$D/kill.txt" 2>&1 &
  launcher=$!
  for _ in $(seq 1 1200); do [ -e "$D/bigck.h5" ] && break; sleep 0.1; done
  while [ ! -e "$D/bigck.h5.tmp" ] && kill -0 "$launcher" 2>/dev/null; do :; done
  kill -KILL $(ranks_of "$launcher") "$launcher" 2>/dev/null
  wait "$launcher" 2>/dev/null
  [ -e "$D/bigck.h5.tmp" ] && { caught=1; break; } # killed mid-write (a finished write renames it away)
done
check "SIGKILL of every process while a checkpoint is being written (its .tmp caught half-written)" test "$caught" = 1
check "... the previous checkpoint is intact: a complete HDF5 file with its job hash" bash -c "h5dump -a /job_hash '$D/bigck.h5' >/dev/null"
run_np 3 "${BIG[@]}" -output "$D/big-resumed.h5" -checkpoint_file "$D/bigck.h5"
check "... it loads: the rerun resumes from it and ends with the uninterrupted run's results" bash -c "grep -q 'resuming from .*bigck.h5 at iteration' '$D/out.txt' && h5diff --exclude-path /meta '$D/bigref.h5' '$D/big-resumed.h5' && [ ! -e '$D/bigck.h5' ]"

# --- few-shot: signals at task boundaries --------------------------------------------------------
FS=(-task fewshot -input "$D/feat.h5" -fewshot_classes 16-25 -fewshot_method simpleshot,laplacianshot,tim-gd -fewshot_tasks 160 -fewshot_save_tasks -fewshot_monitor)
run_np 2 "${FS[@]}" -output "$D/fsref.h5" || fail "uninterrupted few-shot" "$(cat "$D/err.txt")"
# The first periodic checkpoint shows the run is under way; the signal comes after it.
mpirun -q -n 2 "$BOUNDOPT" "${FS[@]}" -output "$D/fs1.h5" -checkpoint_file "$D/fsck1.h5" -checkpoint_every 8 >"$D/fs1.txt" 2>&1 &
launcher=$!
wait_for "$D/fs1.txt" 'fewshot checkpoint written' && kill -USR1 "$launcher"
wait "$launcher"; rc=$?
check "few-shot: SIGUSR1 to mpirun mid-run: checkpoint at a task boundary, exit 3, no results file" bash -c "[ $rc = 3 ] && [ -f '$D/fsck1.h5' ] && [ ! -e '$D/fs1.h5' ] && grep -q 'fewshot: signal received' '$D/fs1.txt'"
run_np 3 "${FS[@]}" -output "$D/fs1.h5" -checkpoint_file "$D/fsck1.h5"
check "... the rerun at 3 ranks resumes and equals the uninterrupted run (accuracies, predictions, tasks)" bash -c "grep -q 'fewshot: resuming from' '$D/out.txt' && h5diff --exclude-path /meta '$D/fsref.h5' '$D/fs1.h5' && [ ! -e '$D/fsck1.h5' ]"

mpirun -q -n 2 "$BOUNDOPT" "${FS[@]}" -output "$D/fs2.h5" -checkpoint_file "$D/fsck2.h5" -checkpoint_every 8 >"$D/fs2.txt" 2>&1 &
launcher=$!
wait_for "$D/fs2.txt" 'fewshot checkpoint written' && kill -TERM $(ranks_of "$launcher")
wait "$launcher"; rc=$?
run_np 1 "${FS[@]}" -output "$D/fs2.h5" -checkpoint_file "$D/fsck2.h5"
check "few-shot: SIGTERM to the ranks: exit 3; the rerun at 1 rank equals the uninterrupted run" bash -c "[ $rc = 3 ] && h5diff --exclude-path /meta '$D/fsref.h5' '$D/fs2.h5'"

# --- a rank failing on purpose ------------------------------------------------------------------
O=$D/o; mkdir -p "$O"
expect_error "cluster: rank 1 of 3 fails as compute begins (others inside collectives): exit 2, one line, no hang" 2 'debug: rank 1 fails on purpose as phase compute begins' "$O" 3 "${CL[@]}" -output "$O/c.h5" -debug_fail_rank 1 -debug_fail_at compute
expect_error "cluster: the last rank fails as the results are written" 2 'debug: rank 2 fails on purpose as phase write begins' "$O" 3 "${CL[@]}" -output "$O/c.h5" -debug_fail_rank 2 -debug_fail_at write
expect_error "fewshot: rank 0 fails as reading begins" 2 'debug: rank 0 fails on purpose as phase read begins' "$O" 2 "${FS[@]}" -output "$O/f.h5" -debug_fail_rank 0 -debug_fail_at read
expect_error "fewshot: rank 2 of 3 fails as the results are written" 2 'debug: rank 2 fails on purpose as phase write begins' "$O" 3 "${FS[@]}" -output "$O/f.h5" -debug_fail_rank 2 -debug_fail_at write
expect_error "merge: rank 1 fails as it writes" 2 'debug: rank 1 fails on purpose as phase write begins' "$O" 2 -task merge -merge_inputs "$D/fsref.h5" -output "$O/m.h5" -debug_fail_rank 1 -debug_fail_at write
expect_error "a checkpointing job whose rank fails: exit 2, no checkpoint left half-written" 2 'debug: rank 1 fails on purpose as phase compute begins' "$O" 2 "${CL[@]}" -output "$O/c.h5" -checkpoint_file "$O/ck.h5" -checkpoint_every 1 -debug_fail_rank 1 -debug_fail_at compute
