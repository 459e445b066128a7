#!/usr/bin/env bash
# Integration: the Slurm workflow.
#   Without Slurm: task merge (job-array slices joined into one file equal to a single run, at 1, 2
#   and 3 ranks, with and without a lambda grid; the slices it refuses), slurm/scaling.sh --local.
#   With a real single-node Slurm (slurm/local-cluster.sh: Debian slurmctld + slurmd, auth/none,
#   started in $SCRATCH and stopped by process id on every exit path), only as root: a clustering
#   job through slurm/boundopt.sbatch under srun, a few-shot job array with its afterok merge,
#   preemption by `scancel --signal=USR1 --batch` (mpirun launcher) and by SIGTERM to the srun
#   tasks, each requeued and resumed to the results of an uninterrupted run, lambda tuning with
#   the written test job, and a failing rank (job FAILED, merge never runs).
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH
REPO=$(pwd)
mpirun -q -n 2 "$BOUNDOPT" -task import -import_format csv -input jobs/data/letter-recognition.data -output "$D/letters.h5" >/dev/null
mpirun -q -n 2 "$BOUNDOPT" -task preprocess -input "$D/letters.h5" -output "$D/feat.h5" -preprocess_center mean -preprocess_pca 12 -preprocess_fit_classes 0-10 -preprocess_l2 >/dev/null
mpirun -q -n 2 "$BOUNDOPT" -task preprocess -input "$D/letters.h5" -output "$D/letters-l2.h5" -preprocess_l2 >/dev/null

# --- merge: slices of a few-shot evaluation joined = one run over all the tasks ---------------
FS=(-task fewshot -input "$D/feat.h5" -fewshot_classes 16-25 -fewshot_method simpleshot,laplacianshot,tim-adm -fewshot_iterations 30 -fewshot_save_tasks)
run_np 2 "${FS[@]}" -fewshot_tasks 47 -output "$D/single.h5" || fail "single few-shot run" "$(cat "$D/err.txt")"
mkdir -p "$D/sl"
run_np 1 "${FS[@]}" -fewshot_tasks 20 -output "$D/sl/fs.slice-0.h5"
run_np 3 "${FS[@]}" -fewshot_tasks 4 -fewshot_first 20 -output "$D/sl/fs.slice-20.h5"
run_np 2 "${FS[@]}" -fewshot_tasks 23 -fewshot_first 24 -output "$D/sl/fs.slice-24.h5"
for p in $RANKS; do
  run_np "$p" -task merge -merge_inputs "$D/sl/fs.slice-*.h5" -output "$D/merged$p.h5" || fail "merge at $p ranks" "$(cat "$D/err.txt")"
  check "merge at $p ranks of 3 uneven slices (run at 1, 3, 2 ranks) equals one run over all tasks: accuracies, mean, ci95, predictions, tasks (h5diff)" same_results "$D/single.h5" "$D/merged$p.h5"
done
check "the merged file says tasks 47 and first_task 0, and merge prints the joined accuracies" bash -c "h5dump -a /tasks '$D/merged1.h5' | grep -q '(0): 47' && h5dump -a /first_task '$D/merged1.h5' | grep -q '(0): 0' && grep -q 'merge: 3 slices, tasks 0-46' '$D/out.txt'"
cp "$D/merged1.h5" "$D/sl/fs.h5"
run_np 2 -task merge -merge_inputs "$D/sl/fs*.h5" -output "$D/sl/fs.h5"
check "a glob that matches the merge's own output leaves it out (a rerun merges the slices again)" bash -c "[ $? = 0 ] && h5diff --exclude-path /meta '$D/single.h5' '$D/sl/fs.h5'"
run_np 1 -task merge -merge_inputs "$D/sl/fs.slice-24.h5, $D/sl/fs.slice-0.h5,$D/sl/fs.slice-20.h5" -output "$D/merged-list.h5"
check "a comma list in any order gives the same file" same_results "$D/single.h5" "$D/merged-list.h5"

# A lambda grid: per-lambda groups, /lambda_accuracy and best_lambda recomputed from all tasks.
LG=(-task fewshot -input "$D/feat.h5" -fewshot_classes 11-15 -fewshot_method simpleshot,laplacianshot -fewshot_lambda 0.1,0.3,1,3)
run_np 2 "${LG[@]}" -fewshot_tasks 30 -output "$D/lgrid.h5"
run_np 1 "${LG[@]}" -fewshot_tasks 3 -output "$D/lg-a.h5"
run_np 3 "${LG[@]}" -fewshot_tasks 27 -fewshot_first 3 -output "$D/lg-b.h5"
run_np 2 -task merge -merge_inputs "$D/lg-a.h5,$D/lg-b.h5" -output "$D/lg-m.h5"
check "merge of a lambda grid equals one run (per-lambda accuracies, lambda_accuracy, best_lambda, best_accuracy)" same_results "$D/lgrid.h5" "$D/lg-m.h5"

O=$D/o; mkdir -p "$O"
run_np 1 "${FS[@]}" -fewshot_tasks 10 -fewshot_first 15 -output "$D/ov.h5"
run_np 1 "${FS[@]}" -fewshot_tasks 4 -fewshot_first 20 -seed 7 -output "$D/seed7.h5"
run_np 1 "${FS[@]}" -fewshot_tasks 4 -fewshot_first 20 -fewshot_shots 1 -output "$D/shots1.h5"
expect_error "merge: overlapping slices"   1 'fs\.slice-0\.h5 \(tasks 0-19\) and .*ov\.h5 \(tasks 15-24\) overlap; expected non-overlapping' "$O" 2 -task merge -merge_inputs "$D/sl/fs.slice-0.h5,$D/ov.h5" -output "$O/m.h5"
expect_error "merge: a gap between slices" 1 'tasks 20-23 are missing between .*fs\.slice-0\.h5 and .*fs\.slice-24\.h5; expected contiguous' "$O" 3 -task merge -merge_inputs "$D/sl/fs.slice-0.h5,$D/sl/fs.slice-24.h5" -output "$O/m.h5"
expect_error "merge: slices of another seed" 1 'option -seed 7 is set in .*seed7\.h5 only or differs; expected slices of one job' "$O" 2 -task merge -merge_inputs "$D/sl/fs.slice-0.h5,$D/seed7.h5" -output "$O/m.h5"
expect_error "merge: slices of another shape (shots)" 1 'option -fewshot_shots 1 is set in .*shots1\.h5 only or differs' "$O" 1 -task merge -merge_inputs "$D/sl/fs.slice-0.h5,$D/shots1.h5" -output "$O/m.h5"
expect_error "merge: not a fewshot results file" 1 'feat\.h5: no first_task and tasks attributes; expected the results file of a fewshot job' "$O" 2 -task merge -merge_inputs "$D/feat.h5" -output "$O/m.h5"
expect_error "merge: a glob that matches nothing" 1 "option -merge_inputs: no file matches '.*nothing-\*\.h5'" "$O" 2 -task merge -merge_inputs "$D/nothing-*.h5" -output "$O/m.h5"
expect_error "merge: no inputs"            1 'option -merge_inputs: missing' "$O" 1 -task merge -output "$O/m.h5"

# --- the scripts ------------------------------------------------------------------------------
check "every Slurm script parses (bash -n)" bash -c "for f in slurm/*.sbatch slurm/*.sh; do bash -n \"\$f\" || exit 1; done"
check "no Slurm script hard-codes a site path (/scratch, /home, /work, /lustre, /gpfs)" bash -c "! grep -nE '(^|[^A-Za-z_])/(scratch|home|work|lustre|gpfs|project)/' slurm/*"
printf 'task: fewshot\ninput: %s\noutput: %s/fsjob.h5\nfewshot:\n  classes: "16-25"\n  method: "simpleshot"\n' "$D/feat.h5" "$D" >"$D/fsjob.yaml"
BOUNDOPT=$BOUNDOPT bash slurm/scaling.sh --local --ranks "1 2" --weak fewshot_tasks=40 --out "$D/scal" "$D/fsjob.yaml" -fewshot_tasks 80 >"$D/scal.txt" 2>&1
check "scaling.sh --local: strong and weak runs at 1 and 2 ranks, a table with speed-up and efficiency, and a PNG plot" bash -c "grep -q '^| 2 | - | 1 |' '$D/scal/scaling.md' && grep -q '^| 2 | 80 | 1 |' '$D/scal/scaling.md' && [ \$(grep -c '^strong\|^weak' '$D/scal/scaling.tsv') = 4 ] && head -c 4 '$D/scal/scaling.png' | grep -q PNG"

# --- a real Slurm ------------------------------------------------------------------------------
if [ "$(id -u)" != 0 ]; then
  echo "  skip Slurm tests: not root (the test starts slurmctld and slurmd as SlurmUser=root; CI runs as root)"
  exit 0
fi
S=$D/slurm
trap 'bash "$REPO/slurm/local-cluster.sh" stop "$S" >/dev/null 2>&1; rm -rf "$SCRATCH"' EXIT
trap 'exit 130' INT TERM
if ! bash slurm/local-cluster.sh start "$S" >"$D/cluster.txt" 2>&1; then
  fail "a single-node Slurm starts (slurmctld, slurmd, auth/none)" "$(tail -5 "$D/cluster.txt" | tr '\n' ' ')"
  exit 1
fi
pass "a single-node Slurm starts (slurmctld, slurmd, auth/none) and the node is idle"
export SLURM_CONF=$S/slurm.conf BOUNDOPT
W=$D/w; mkdir -p "$W"; cd "$W" || exit 1
state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -1; }
field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
wait_state() { # wait_state ID SECONDS STATE...: until the job is in one of the states
  local id=$1 t=$2; shift 2
  for _ in $(seq 1 $((t * 5))); do
    local s; s=$(state "$id")
    for want in "$@"; do [ "$s" = "$want" ] && return 0; done
    sleep 0.2
  done
  echo "job $id is $(state "$id"), expected $*" >&2; return 1
}
wait_log() { # wait_log FILE PATTERN SECONDS
  for _ in $(seq 1 $(($3 * 5))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.2; done
  echo "no '$2' in $1" >&2; return 1
}
release() { # a requeued job is held cred_expire seconds (BeginTime; 10 s in local-cluster.sh, 120 s by default)
  # `scontrol update StartTime=now` at once can race with the revocation of the killed run's
  # credential ("Killing non-startable batch job: Job credential revoked", the job FAILED 1:0: seen
  # 2 times in 6 after `scancel --signal=TERM`), so the job starts when the short hold ends, and
  # StartTime=now only nudges it if it is still pending after that.
  wait_state "$1" 30 PENDING && for _ in $(seq 1 50); do [ "$(field "$1" Restarts)" -ge 1 ] 2>/dev/null && break; sleep 0.2; done
  for _ in $(seq 1 100); do [ "$(state "$1")" = PENDING ] || return 0; sleep 0.2; done
  scontrol update JobId="$1" StartTime=now
}

cat >"$W/cl.yaml" <<EOF
# slk-ms on Letter Recognition, small: 10 outer iterations of 10 bound iterations.
task: cluster
input: $D/letters-l2.h5
output: $W/cl.h5
cluster: {method: slk-ms, k: 26, max_it: 10, tol: 0, bound_tol: 0, bound_max_it: 10, monitor: ""}
EOF
mpirun -q -n 2 "$BOUNDOPT" "$W/cl.yaml" -output "$W/ref.h5" >/dev/null 2>&1 || fail "uninterrupted reference clustering" "mpirun failed"

# Submit the independent jobs at once; Slurm runs them as the two cores free up.
j_srun=$(sbatch --parsable -n 2 "$REPO/slurm/boundopt.sbatch" "$W/cl.yaml" -output "$W/srun.h5")
read -r j_array j_merge < <(bash "$REPO/slurm/fewshot-array.sbatch" --slices 3 --tasks 47 "$D/fsjob.yaml" "${FS[@]:2}" -output "$W/fsarray.h5" | tee "$W/array.txt" | tail -1)
j_fail=$(sbatch --parsable -n 2 "$REPO/slurm/boundopt.sbatch" "$D/fsjob.yaml" -fewshot_tasks 20 -output "$W/fail.h5" -debug_fail_rank 1 -debug_fail_at compute)
j_fmerge=$(sbatch --parsable --dependency="afterok:$j_fail" --kill-on-invalid-dep=yes "$REPO/slurm/merge.sbatch" "$W/never.h5" "$W/fail*.h5")

wait_state "$j_srun" 120 COMPLETED FAILED CANCELLED
check "a clustering job through boundopt.sbatch under srun --mpi=pmix completes (exit 0:0) and prints what it ran and where the results go" bash -c "[ '$(state "$j_srun")' = COMPLETED ] && [ '$(field "$j_srun" ExitCode)' = 0:0 ] && grep -q 'running: srun --mpi=pmix' boundopt-$j_srun.out && grep -q 'results: $W/srun.h5' boundopt-$j_srun.out"
check "... and its results equal the same job under mpirun" same_results "$W/ref.h5" "$W/srun.h5"

wait_state "$j_merge" 150 COMPLETED FAILED CANCELLED
check "fewshot-array.sbatch prints the array and merge jobs and where the slices and the merged file go" bash -c "grep -q 'submitted array job $j_array: 3 slices of tasks 0-46' array.txt && grep -q 'submitted merge job $j_merge (afterok:$j_array) -> $W/fsarray.h5' array.txt"
check "a 3-element few-shot array and its afterok merge give the file of one run over the 47 tasks (h5diff)" bash -c "[ '$(state "$j_merge")' = COMPLETED ] && h5diff --exclude-path /meta '$D/single.h5' '$W/fsarray.h5'"
check "the array's slices are contiguous task ranges 0-14, 15-30, 31-46" bash -c "for f in 0:15 15:16 31:16; do h5dump -a /tasks \"$W/fsarray.slice-\${f%%:*}.h5\" | grep -q \"(0): \${f#*:}\$\" || exit 1; done"

wait_state "$j_fail" 60 FAILED COMPLETED CANCELLED
check "a rank failing on purpose under Slurm: job FAILED with exit 2, one 'boundopt:' line in its log" bash -c "[ '$(state "$j_fail")' = FAILED ] && [ '$(field "$j_fail" ExitCode)' = 2:0 ] && [ \$(grep -c '^boundopt: debug: rank 1 fails on purpose as phase compute begins' boundopt-$j_fail.out) = 1 ]"
wait_state "$j_fmerge" 30 CANCELLED COMPLETED FAILED
check "... and the merge that depends on it (afterok) never runs" bash -c "[ '$(state "$j_fmerge")' = CANCELLED ] && [ ! -e '$W/never.h5' ]"

# Preemption 1: the warning signal to the batch shell (mpirun launcher), requeue, resume.
j_usr1=$(BOUNDOPT_LAUNCHER=mpirun sbatch --parsable -n 2 "$REPO/slurm/boundopt.sbatch" "$W/cl.yaml" -output "$W/usr1.h5")
wait_log "boundopt-$j_usr1.out" '^  cluster   2 ' 120 && scancel --signal=USR1 --batch "$j_usr1"
release "$j_usr1"
wait_state "$j_usr1" 150 COMPLETED FAILED CANCELLED
log=boundopt-$j_usr1.out
check "scancel --signal=USR1 --batch mid-run (mpirun): the script forwards it, the ranks checkpoint and exit 3, the job requeues itself" bash -c "grep -q 'SIGUSR1 received' $log && grep -q 'checkpoint .* written at iteration' $log && grep -q 'requeueing job $j_usr1' $log && [ '$(field "$j_usr1" Restarts)' = 1 ] || { echo 'job $j_usr1: $(state "$j_usr1"), restarts $(field "$j_usr1" Restarts); log:'; grep -v '^  cluster  ' $log | tail -6; exit 1; }"
check "the requeued job resumes from its checkpoint and completes" bash -c "grep -q 'cluster: resuming from .*boundopt-$j_usr1.ck.h5 at iteration' $log && [ '$(state "$j_usr1")' = COMPLETED ] && [ ! -e boundopt-$j_usr1.ck.h5 ]"
check "the preempted and resumed job's results equal an uninterrupted run (h5diff)" same_results "$W/ref.h5" "$W/usr1.h5"

# Preemption 2: SIGTERM to the srun tasks themselves (as Slurm does at preemption or time limit).
j_term=$(sbatch --parsable -n 2 "$REPO/slurm/boundopt.sbatch" "$W/cl.yaml" -output "$W/term.h5")
wait_log "boundopt-$j_term.out" '^  cluster   2 ' 120 && scancel --signal=TERM "$j_term"
release "$j_term"
wait_state "$j_term" 150 COMPLETED FAILED CANCELLED
log=boundopt-$j_term.out
check "SIGTERM to the srun tasks mid-run: checkpoint, exit 3, requeue, resume, complete" bash -c "grep -q 'checkpointed (exit 3); requeueing job $j_term' $log && grep -q 'resuming from' $log && [ '$(state "$j_term")' = COMPLETED ] || { echo 'job $j_term: $(state "$j_term"), restarts $(field "$j_term" Restarts); log:'; grep -v '^  cluster  ' $log | tail -6; exit 1; }"
check "the SIGTERM-preempted job's results equal an uninterrupted run (h5diff)" same_results "$W/ref.h5" "$W/term.h5"

# Lambda tuning: an array over the grid, the pick, the written test job, run.
read -r j_tune j_pick < <(bash "$REPO/slurm/tune-lambda.sbatch" --lambdas 0.1,0.3,3 --validation 11-15 --test 16-25 --run-test "$D/fsjob.yaml" -fewshot_method simpleshot,laplacianshot -fewshot_tasks 30 -output "$W/tuned.h5" | tail -1)
wait_state "$j_pick" 150 COMPLETED FAILED CANCELLED
j_test=$(sed -n 's/^tune-lambda: submitted the test job \([0-9]*\).*/\1/p' "boundopt-lambda-pick-$j_pick.out")
[ -n "$j_test" ] && wait_state "$j_test" 120 COMPLETED FAILED CANCELLED
best=$(for v in 0.1 0.3 3; do echo "$v $(h5dump -m %.17g -a /laplacianshot/mean_accuracy "$W/tuned.val-lambda-$v.h5" | sed -n 's/.*(0): //p')"; done | sort -k2,2gr -k1,1g | head -1 | cut -d' ' -f1)
check "tune-lambda: the pick takes the lambda of the best validation accuracy and writes the test job with it and the test classes" bash -c "[ -n '$best' ] && grep -q '^fewshot_lambda: \"$best\"' '$W/tuned.test.yaml' && grep -q '^fewshot_classes: \"16-25\"' '$W/tuned.test.yaml' && grep -q '^output: \"$W/tuned.h5\"' '$W/tuned.test.yaml'"
mpirun -q -n 2 "$BOUNDOPT" -task fewshot -input "$D/feat.h5" -fewshot_classes 16-25 -fewshot_method simpleshot,laplacianshot -fewshot_tasks 30 -fewshot_lambda "$best" -output "$W/tuned-direct.h5" >/dev/null 2>&1
check "... and the test job it submitted gives the results of a direct run with that lambda" bash -c "[ '$(state "$j_test")' = COMPLETED ] && h5diff --exclude-path /meta '$W/tuned-direct.h5' '$W/tuned.h5'"
cd "$REPO" || exit 1
