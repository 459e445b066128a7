#!/usr/bin/env bash
# Integration: task fewshot on Letter Recognition features (PCA fitted on the base letters A-K
# only, tasks on the novel letters Q-Z): identical tasks and predictions at 1, 2 and 3 ranks,
# replayable tasks, imbalanced queries, and the bad inputs it refuses.
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH
mpirun -q -n 2 "$BOUNDOPT" -task import -import_format csv -input jobs/data/letter-recognition.data -output "$D/letters.h5" >/dev/null
mpirun -q -n 2 "$BOUNDOPT" -task preprocess -input "$D/letters.h5" -output "$D/feat.h5" -preprocess_center mean -preprocess_pca 12 -preprocess_fit_classes 0-10 -preprocess_l2 >/dev/null
check "PCA fitted on base classes only records them" bash -c "h5dump -a /preprocessing '$D/feat.h5' | grep -q 'classes 0-10'"
FS=(-task fewshot -input "$D/feat.h5" -fewshot_classes 16-25 -fewshot_tasks 60 -fewshot_method simpleshot,laplacianshot,tim-gd,tim-adm -fewshot_iterations 60 -fewshot_save_tasks)
for p in $RANKS; do run_np "$p" "${FS[@]}" -output "$D/fs$p.h5" || fail "fewshot at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "fewshot: identical tasks, predictions and accuracies at 1 and $p ranks" same_results "$D/fs1.h5" "$D/fs$p.h5"; done
check "every method writes task_accuracy, mean_accuracy, ci95 and predictions" bash -c "for m in simpleshot laplacianshot tim-gd tim-adm; do h5dump -H -d /\$m/task_accuracy '$D/fs1.h5' | grep -q '( 60 )' && h5dump -a /\$m/mean_accuracy '$D/fs1.h5' >/dev/null && h5dump -a /\$m/ci95 '$D/fs1.h5' >/dev/null && h5dump -H -d /\$m/predictions '$D/fs1.h5' | grep -q '( 60, 75 )' || exit 1; done"
check "save_tasks writes the support and query rows of every task" bash -c "h5dump -H -d /tasks/support '$D/fs1.h5' | grep -q '( 60, 25 )' && h5dump -H -d /tasks/query '$D/fs1.h5' | grep -q '( 60, 75 )'"
check "predictions are in the input's label space (the novel letters 16..25)" bash -c "h5dump -y -w 0 -d /simpleshot/predictions -s 0,0 -c 1,75 '$D/fs1.h5' | sed -n '/DATA {/,/}/p' | tr -s ', ' '\n\n' | awk '\$1+0==\$1 && NF {if (\$1 < 16 || \$1 > 25) bad=1; n++} END {exit !(n == 75 && !bad)}'"
check "the query rows of a task are rows of its classes (replayable from /tasks/query)" bash -c "r=\$(h5dump -y -w 0 -d /tasks/query -s 0,0 -c 1,1 '$D/fs1.h5' | sed -n '/DATA {/,/}/p' | tr -dc '0-9'); l=\$(h5dump -y -w 0 -d /labels -s \$r -c 1 '$D/feat.h5' | sed -n '/DATA {/,/}/p' | tr -dc '0-9'); [ \$l -ge 16 ] && [ \$l -le 25 ]"
run_np 2 "${FS[@]}" -output "$D/imb.h5" -fewshot_dirichlet 2 -fewshot_method simpleshot,tim-adm
check "imbalanced (Dirichlet) tasks run and differ from balanced ones" bash -c "! h5diff '$D/fs1.h5' '$D/imb.h5' /tasks/query /tasks/query >/dev/null"
run_np 3 "${FS[@]}" -output "$D/imb3.h5" -fewshot_dirichlet 2 -fewshot_method simpleshot,tim-adm
check "imbalanced tasks are identical at 2 and 3 ranks" same_results "$D/imb.h5" "$D/imb3.h5"

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
expect_error "classes missing"             1 'option -fewshot_classes: missing' "$O" 2 "${E[@]}"
