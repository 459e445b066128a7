#!/usr/bin/env bash
# Integration: task fewshot on Letter Recognition features (PCA fitted on the base letters A-K
# only, tasks on the novel letters Q-Z): identical tasks and predictions at 1, 2 and 3 ranks,
# replayable tasks, imbalanced queries, and the bad inputs it refuses.
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH
mpirun -q -n 2 "$BOUNDOPT" -task import -import_format csv -input jobs/data/letter-recognition.data -output "$D/letters.h5" >/dev/null
mpirun -q -n 2 "$BOUNDOPT" -task preprocess -input "$D/letters.h5" -output "$D/feat.h5" -preprocess_center mean -preprocess_pca 12 -preprocess_fit_classes 0-10 -preprocess_l2 >/dev/null
check "PCA fitted on base classes only records them" bash -c "h5dump -a /preprocessing '$D/feat.h5' | grep -q 'classes 0-10'"
FS=(-task fewshot -input "$D/feat.h5" -fewshot_classes 16-25 -fewshot_tasks 60 -fewshot_method simpleshot,laplacianshot,kmeans,kmodes,slk-means,slk-ms,tim-gd,tim-adm -fewshot_iterations 60 -fewshot_save_tasks)
for p in $RANKS; do run_np "$p" "${FS[@]}" -output "$D/fs$p.h5" || fail "fewshot at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "fewshot: identical tasks, predictions and accuracies at 1 and $p ranks" same_results "$D/fs1.h5" "$D/fs$p.h5"; done
check "every method writes task_accuracy, mean_accuracy, ci95 and predictions" bash -c "for m in simpleshot laplacianshot kmeans kmodes slk-means slk-ms tim-gd tim-adm; do h5dump -H -d /\$m/task_accuracy '$D/fs1.h5' | grep -q '( 60 )' && h5dump -a /\$m/mean_accuracy '$D/fs1.h5' >/dev/null && h5dump -a /\$m/ci95 '$D/fs1.h5' >/dev/null && h5dump -H -d /\$m/predictions '$D/fs1.h5' | grep -q '( 60, 75 )' || exit 1; done"
check "save_tasks writes the support and query rows of every task" bash -c "h5dump -H -d /tasks/support '$D/fs1.h5' | grep -q '( 60, 25 )' && h5dump -H -d /tasks/query '$D/fs1.h5' | grep -q '( 60, 75 )'"
check "predictions are in the input's label space (the novel letters 16..25)" bash -c "h5dump -y -w 0 -d /simpleshot/predictions -s 0,0 -c 1,75 '$D/fs1.h5' | sed -n '/DATA {/,/}/p' | tr -s ', ' '\n\n' | awk '\$1+0==\$1 && NF {if (\$1 < 16 || \$1 > 25) bad=1; n++} END {exit !(n == 75 && !bad)}'"
check "the query rows of a task are rows of its classes (replayable from /tasks/query)" bash -c "r=\$(h5dump -y -w 0 -d /tasks/query -s 0,0 -c 1,1 '$D/fs1.h5' | sed -n '/DATA {/,/}/p' | tr -dc '0-9'); l=\$(h5dump -y -w 0 -d /labels -s \$r -c 1 '$D/feat.h5' | sed -n '/DATA {/,/}/p' | tr -dc '0-9'); [ \$l -ge 16 ] && [ \$l -le 25 ]"
run_np 2 "${FS[@]}" -output "$D/imb.h5" -fewshot_dirichlet 2 -fewshot_method simpleshot,tim-adm
check "imbalanced (Dirichlet) tasks run and differ from balanced ones" bash -c "! h5diff '$D/fs1.h5' '$D/imb.h5' /tasks/query /tasks/query >/dev/null"
run_np 3 "${FS[@]}" -output "$D/imb3.h5" -fewshot_dirichlet 2 -fewshot_method simpleshot,tim-adm
check "imbalanced tasks are identical at 2 and 3 ranks" same_results "$D/imb.h5" "$D/imb3.h5"

# Support constraints: clamping changes the clustering methods' predictions, not SimpleShot's.
run_np 2 "${FS[@]}" -output "$D/clamp.h5" -fewshot_method simpleshot,slk-means -fewshot_clamp
check "clamped support rows change slk-means predictions" bash -c "! h5diff '$D/fs1.h5' '$D/clamp.h5' /slk-means/predictions /slk-means/predictions >/dev/null"
check "clamping leaves simpleshot unchanged" h5diff "$D/fs1.h5" "$D/clamp.h5" /simpleshot/task_accuracy /simpleshot/task_accuracy

# lambda tuning on validation letters L-P: one run per value, the grid and the best value.
TUNE=(-task fewshot -input "$D/feat.h5" -fewshot_classes 11-15 -fewshot_tasks 40 -fewshot_method simpleshot,laplacianshot,slk-ms -fewshot_lambda 0.1,0.7,2)
run_np 2 "${TUNE[@]}" -output "$D/tune2.h5" || fail "lambda tuning run" "$(cat "$D/err.txt")"
run_np 3 "${TUNE[@]}" -output "$D/tune3.h5"
check "lambda tuning: identical at 2 and 3 ranks" same_results "$D/tune2.h5" "$D/tune3.h5"
check "lambda tuning writes the grid, the accuracy per value and the best value" bash -c "for m in laplacianshot slk-ms; do h5dump -H -d /\$m/lambda_accuracy '$D/tune2.h5' | grep -q '( 3 )' && h5dump -a /\$m/best_lambda '$D/tune2.h5' >/dev/null && h5dump -a /\$m/lambda_2/lambda '$D/tune2.h5' | grep -q ' 2' || exit 1; done; h5dump -a /simpleshot/mean_accuracy '$D/tune2.h5' >/dev/null"
run_np 2 -task fewshot -input "$D/feat.h5" -fewshot_classes 11-15 -fewshot_tasks 40 -fewshot_method slk-ms -fewshot_lambda 0.7 -output "$D/one.h5"
check "each lambda of the grid equals a run with that lambda alone" h5diff "$D/tune2.h5" "$D/one.h5" /slk-ms/lambda_1/task_accuracy /slk-ms/task_accuracy
check "best_lambda is the value of the highest accuracy" /usr/bin/python3 -c "
import h5py, numpy as np
f = h5py.File('$D/tune2.h5', 'r')
for m in ('laplacianshot', 'slk-ms'):
    g = f[m]; acc = [g['lambda_%d' % j].attrs['mean_accuracy'] for j in range(3)]
    assert np.allclose(acc, g['lambda_accuracy'][()]), m
    assert g.attrs['best_lambda'] == g['lambda'][int(np.argmax(acc))], m"

# Checkpoint on a signal at a task boundary, resume at another rank count: same results.
CK=(-task fewshot -input "$D/feat.h5" -fewshot_classes 16-25 -fewshot_tasks 60 -fewshot_method simpleshot,slk-ms,tim-adm -fewshot_iterations 60 -fewshot_save_tasks -checkpoint_file "$D/fs.ck.h5")
run_np 2 "${CK[@]}" -output "$D/ck-ref.h5" -restart false
run_np 2 "${CK[@]}" -output "$D/ck.h5" -debug_signal_at 10; rc=$?
check "fewshot: a signal mid-run exits 3 with a checkpoint and no results" bash -c "[ $rc = 3 ] && [ -f '$D/fs.ck.h5' ] && [ ! -f '$D/ck.h5' ]"
check "fewshot: the checkpoint holds some tasks done, not all" /usr/bin/python3 -c "
import h5py; d = h5py.File('$D/fs.ck.h5', 'r')['rows/done'][()].ravel(); assert 0 < d.sum() < 60, d.sum()"
run_np 3 "${CK[@]}" -output "$D/ck.h5"
check "fewshot: resumed at 3 ranks, results equal an uninterrupted run" same_results "$D/ck-ref.h5" "$D/ck.h5"
check "fewshot: the checkpoint is removed once the job is done" test ! -f "$D/fs.ck.h5"

O=$SCRATCH/o; mkdir -p "$O"
E=(-task fewshot -input "$D/feat.h5" -output "$O/f.h5" -fewshot_tasks 5)
"$TOOLS/mkfeatures" "$D/other.h5" -n 100 -d 7
"$TOOLS/mkfeatures" "$D/small.h5" -n 60 -d 12 -classes 6
expect_error "a class with fewer rows than shots + queries" 1 'small\.h5: class 0 has 10 rows; expected at least shots \+ queries = 20' "$O" 2 -task fewshot -input "$D/small.h5" -output "$O/f.h5" -fewshot_classes 0-5
expect_error "more ways than novel classes" 1 'option -fewshot_ways: 5 with 3 novel classes' "$O" 2 "${E[@]}" -fewshot_classes 16-18
expect_error "an unknown class id"         1 'option -fewshot_classes: class 40 has no rows' "$O" 3 "${E[@]}" -fewshot_classes 16-19,40
expect_error "a base file with another D"  1 'option -fewshot_base: .*other\.h5 has D = 7; expected D = 12' "$O" 2 "${E[@]}" -fewshot_classes 16-25 -fewshot_norm cl2n -fewshot_base "$D/other.h5"
expect_error "non-positive tau"            1 'option -fewshot_tau: 0\.?; expected tau > 0' "$O" 2 "${E[@]}" -fewshot_classes 16-25 -fewshot_tau 0
expect_error "negative iterations"         1 'option -fewshot_iterations: -3' "$O" 2 "${E[@]}" -fewshot_classes 16-25 -fewshot_iterations -3
expect_error "unknown method"              1 "option -fewshot_method: 'tim'; expected simpleshot" "$O" 2 "${E[@]}" -fewshot_classes 16-25 -fewshot_method tim
expect_error "a method twice"              1 "option -fewshot_method: 'tim-adm' twice; expected each name once" "$O" 2 "${E[@]}" -fewshot_classes 16-25 -fewshot_method tim-adm,simpleshot,tim-adm
expect_error "an empty method list"        1 'option -fewshot_method: empty; expected at least one of simpleshot, laplacianshot, .* or tim-adm' "$O" 2 "${E[@]}" -fewshot_classes 16-25 -fewshot_method ,
expect_error "a lambda twice"              1 'option -fewshot_lambda: 0.5 twice; expected each value once' "$O" 2 "${E[@]}" -fewshot_classes 16-25 -fewshot_lambda 0.5,0.1,0.5
expect_error "classes missing"             1 'option -fewshot_classes: missing' "$O" 2 "${E[@]}"
expect_error "a negative lambda"           1 "option -fewshot_lambda: '-1'; expected numbers >= 0" "$O" 2 "${E[@]}" -fewshot_classes 16-25 -fewshot_lambda 0.1,-1
expect_error "a lambda that is not a number" 1 "option -fewshot_lambda: 'x'" "$O" 2 "${E[@]}" -fewshot_classes 16-25 -fewshot_lambda x

# TIM-ADM in single precision (-fewshot_precision single): the same file at 1, 2 and 3 ranks, and
# the mean accuracy within 0.1 point of double precision on the same tasks (fs1.h5 above).
FS32=(-task fewshot -input "$D/feat.h5" -fewshot_classes 16-25 -fewshot_tasks 60 -fewshot_method tim-adm -fewshot_iterations 60 -fewshot_save_tasks -fewshot_precision single)
for p in $RANKS; do run_np "$p" "${FS32[@]}" -output "$D/fs32-$p.h5" || fail "single-precision tim-adm at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "single-precision tim-adm: identical results at 1 and $p ranks" same_results "$D/fs32-1.h5" "$D/fs32-$p.h5"; done
check "single-precision tim-adm: mean accuracy within 0.1 point of double, precision recorded" /usr/bin/python3 -c "
import h5py
s, d = h5py.File('$D/fs32-1.h5', 'r'), h5py.File('$D/fs1.h5', 'r')
a, b = s['tim-adm'].attrs['mean_accuracy'], d['tim-adm'].attrs['mean_accuracy']
assert abs(a - b) <= 0.001, (a, b)
assert (s['/tasks/query'][()] == d['/tasks/query'][()]).all()
p = s.attrs['tim_adm_precision']; p = p.decode() if isinstance(p, bytes) else p
assert p == 'single', p
print('single %.4f double %.4f' % (a, b))"
# ... and in its rows form (n <= d: 3-way 1-shot 2 queries is 9 rows in 12 dimensions, solvers/tim.c)
FSR=(-task fewshot -input "$D/feat.h5" -fewshot_classes 16-25 -fewshot_tasks 90 -fewshot_ways 3 -fewshot_shots 1 -fewshot_queries 2 -fewshot_method tim-adm -fewshot_save_tasks)
for p in $RANKS; do run_np "$p" "${FSR[@]}" -fewshot_precision single -output "$D/fsr-$p.h5" || fail "single-precision tim-adm, rows form, at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "single-precision tim-adm, rows form: identical results at 1 and $p ranks" same_results "$D/fsr-1.h5" "$D/fsr-$p.h5"; done
run_np 2 "${FSR[@]}" -output "$D/fsr-double.h5" || fail "double tim-adm, 3-way 1-shot" "$(cat "$D/err.txt")"
check "single-precision tim-adm, rows form: predictions of at least 99% of the queries as double's" /usr/bin/python3 -c "
import h5py
s, d = h5py.File('$D/fsr-1.h5', 'r'), h5py.File('$D/fsr-double.h5', 'r')
a, b = s['tim-adm/predictions'][()], d['tim-adm/predictions'][()]
same = (a == b).mean()
assert same >= 0.99, same
print('rows form: %.4f of the predictions as double; accuracy %.4f vs %.4f' % (same, s['tim-adm'].attrs['mean_accuracy'], d['tim-adm'].attrs['mean_accuracy']))"
expect_error "an unknown precision" 1 "option -fewshot_precision: 'half'; expected double or single" "$O" 2 "${E[@]}" -fewshot_classes 16-25 -fewshot_precision half
