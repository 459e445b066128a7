#!/usr/bin/env bash
# Integration: every task of the foundation at 1, 2 and 3 ranks, on files made here and on the
# bundled data; results must not depend on the number of ranks.
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH
FM=/usr/share/datasets/fashion-mnist
"$TOOLS/mkfeatures" "$D/blobs.h5" -n 1000 -d 12 -classes 4 -names
"$TOOLS/mkfeatures" "$D/base.h5" -n 700 -d 12 -classes 4 -seed 9
"$TOOLS/mkfeatures" "$D/f64.h5" -n 300 -d 5 -dtype float64

# version, help and installation
# (not under the sanitizers: install relinks with the default flags, which would replace the
# instrumented binary the other checks use)
if [ "${SANITIZE:-0}" != 1 ]; then
  check "make install PREFIX=... installs a working boundopt, headers and jobs" bash -c "make --no-print-directory install PREFIX='$D/inst' BUILD='$BUILD' BIN='$BIN' >/dev/null && '$D/inst/bin/boundopt' --version | grep -q '^boundopt ' && [ -f '$D/inst/include/boundopt/dataset.h' ] && [ -f '$D/inst/share/boundopt/jobs/fmnist-slk-ms.yaml' ]"
fi
check "boundopt --version names the version and git revision" bash -c "'$BOUNDOPT' --version | grep -Eq '^boundopt [0-9.]+ \(git '"
check "-help without a task lists the tasks" bash -c "mpirun -q -n 1 '$BOUNDOPT' -help | grep -Eq 'boundopt tasks: .*cluster, .*fewshot, .*import, info, knn, merge, .*preprocess, restore, .*segment'"
check "-help with a task lists its options with defaults and exits 0" bash -c "mpirun -q -n 2 '$BOUNDOPT' -task preprocess -help | grep -Eq -- '-preprocess_pca <now 0'"

# import: IDX (the Fashion-MNIST test set), CSV (letters), PNG (camera), at 1, 2 and 3 ranks
for p in $RANKS; do
  run_np "$p" -task import -output "$D/fm$p.h5" -import_images "$FM/t10k-images-idx3-ubyte.gz" -import_labels "$FM/t10k-labels-idx1-ubyte.gz" \
    && check "import idx at $p ranks: 10000 x 784 with labels" bash -c "h5dump -H -d /features '$D/fm$p.h5' | grep -q '( 10000, 784 )' && h5dump -H -d /labels '$D/fm$p.h5' | grep -q '( 10000 )'" \
    || fail "import idx at $p ranks" "$(cat "$D/err.txt")"
  run_np "$p" -task import -import_format csv -input jobs/data/letter-recognition.data -output "$D/let$p.h5" \
    && check "import csv at $p ranks: 20000 x 16, 26 named classes in sorted order" bash -c "h5dump -H -d /features '$D/let$p.h5' | grep -q '( 20000, 16 )' && h5dump -d /label_names '$D/let$p.h5' | grep -q '(0): \"A\", \"B\"'" \
    || fail "import csv at $p ranks" "$(cat "$D/err.txt")"
  run_np "$p" -task import -import_format png -import_images jobs/data/camera.png -output "$D/cam$p.h5" \
    && check "import png at $p ranks: /image 512 x 512 float64" bash -c "h5dump -H -d /image '$D/cam$p.h5' | grep -q '( 512, 512 )'" \
    || fail "import png at $p ranks" "$(cat "$D/err.txt")"
done
for p in 2 3; do
  check "import idx gives the same file at 1 and $p ranks" same_results "$D/fm1.h5" "$D/fm$p.h5"
  check "import csv gives the same file at 1 and $p ranks" same_results "$D/let1.h5" "$D/let$p.h5"
done
check "import idx scales pixels to [0,1] (first test label is 9)" bash -c "h5dump -d /labels -s 0 -c 1 '$D/fm1.h5' | grep -q '(0): 9'"
check "import png of a PNG list gives one flattened row per image" bash -c "mpirun -q -n 2 '$BOUNDOPT' -task import -import_format png -import_images jobs/data/camera.png,jobs/data/camera.png -output '$D/cams.h5' >/dev/null && h5dump -H -d /features '$D/cams.h5' | grep -q '( 2, 262144 )'"

# info
for p in $RANKS; do
  run_np "$p" -task info -input "$D/blobs.h5" -output "$D/info$p.h5" \
    && check "info at $p ranks prints N, D and the class counts by name" grep -q 'class-A=250 class-B=250 class-C=250 class-D=250' "$D/out.txt" \
    || fail "info at $p ranks" "$(cat "$D/err.txt")"
done
check "info stores its summary as attributes of the output" bash -c "h5dump -a /n '$D/info2.h5' | grep -q '(0): 1000' && h5dump -a /class_counts '$D/info2.h5' | grep -q '250, 250, 250, 250'"
check "info gives the same summary at 1, 2 and 3 ranks" bash -c "h5diff --exclude-path /meta '$D/info1.h5' '$D/info2.h5' && h5diff --exclude-path /meta '$D/info1.h5' '$D/info3.h5'"
"$TOOLS/mkfeatures" "$D/nan.h5" -n 600 -nan 450
run_np 3 -task info -input "$D/nan.h5"
check "info counts NaN rows instead of refusing them" grep -q 'NaN/Inf values    1 (in 1 rows, first row 450)' "$D/out.txt"

# preprocess: identical output (no tolerance) for 1, 2 and 3 ranks
for p in $RANKS; do
  run_np "$p" -task preprocess -input "$D/blobs.h5" -output "$D/pp$p.h5" -preprocess_center mean -preprocess_pca 5 -preprocess_l2 \
    || fail "preprocess at $p ranks" "$(cat "$D/err.txt")"
  run_np "$p" -task preprocess -input "$D/blobs.h5" -output "$D/fit$p.h5" -preprocess_center mean -preprocess_pca 3 -preprocess_fit "$D/base.h5" \
    || fail "preprocess with fit at $p ranks" "$(cat "$D/err.txt")"
  run_np "$p" -task preprocess -input "$D/f64.h5" -output "$D/l2_$p.h5" -preprocess_l2 || fail "preprocess l2 at $p ranks" "$(cat "$D/err.txt")"
done
for p in 2 3; do
  check "preprocess (centre, PCA, L2) is identical at 1 and $p ranks" same_results "$D/pp1.h5" "$D/pp$p.h5"
  check "preprocess fitted on another file is identical at 1 and $p ranks" same_results "$D/fit1.h5" "$D/fit$p.h5"
  check "preprocess L2 of float64 input is identical at 1 and $p ranks" same_results "$D/l2_1.h5" "$D/l2_$p.h5"
done
check "preprocess records rank_invariant = 1 with LAPACK" bash -c "h5dump -d /meta/rank_invariant '$D/pp2.h5' | grep -q '(0): 1'"
check "preprocess writes /meta/timings for read, compute and write" bash -c "for ph in read compute write; do h5dump -H -d /meta/timings/\$ph '$D/pp2.h5' >/dev/null || exit 1; done"
check "preprocess carries labels and label names over" bash -c "h5diff '$D/blobs.h5' '$D/pp1.h5' /labels /labels && h5diff '$D/blobs.h5' '$D/pp1.h5' /label_names /label_names"
check "preprocess with fit stores the fit file's mean" bash -c "h5dump -H -d /preprocess/mean '$D/fit1.h5' | grep -q '( 12 )' && grep -q . <(h5dump -a /preprocessing '$D/fit1.h5' | grep base.h5)"
check "L2 rows have unit norm" bash -c "h5dump -y -w 0 -d /features -s 7,0 -c 1,5 -m %.9g '$D/l2_1.h5' | sed -n '/DATA {/,/}/p' | tr -d ',' | awk 'NF==1 && \$1+0==\$1 {s+=\$1*\$1; n++} END {exit !(n==5 && s>0.99999 && s<1.00001)}'"
check "the ScaLAPACK eigensolver path gives the same PCA to 1e-10 and records rank_invariant = 0" bash -c "mpirun -q -n 2 '$BOUNDOPT' -task preprocess -input '$D/blobs.h5' -output '$D/sl.h5' -preprocess_center mean -preprocess_pca 5 -preprocess_l2 -preprocess_eigensolver scalapack -preprocess_scalapack_grid 1x2 -preprocess_scalapack_block 4 >/dev/null && h5diff -d 1e-6 '$D/pp1.h5' '$D/sl.h5' /features /features >/dev/null && h5diff -d 1e-10 '$D/pp1.h5' '$D/sl.h5' /preprocess/explained_variance /preprocess/explained_variance >/dev/null && h5diff -d 1e-10 '$D/pp1.h5' '$D/sl.h5' /preprocess/components /preprocess/components >/dev/null && h5dump -d /meta/rank_invariant '$D/sl.h5' | grep -q '(0): 0'"

# job files: YAML keys become options, the command line overrides the file, PETSc options work
cat >"$D/job.yaml" <<YAML
task: preprocess
input: $D/blobs.h5
output: $D/job-a.h5
preprocess: {center: mean, pca: 4}
YAML
run_np 2 "$D/job.yaml" -output "$D/job-b.h5" -preprocess_pca 2 -log_view
check "the command line overrides the job file" bash -c "[ ! -e '$D/job-a.h5' ] && h5dump -H -d /features '$D/job-b.h5' | grep -q '( 1000, 2 )'"
check "-log_view shows one stage per phase" bash -c "grep -Eq '1: +Read' '$D/out.txt' && grep -Eq '2: +Compute' '$D/out.txt' && grep -Eq '3: +Write' '$D/out.txt'"
check "/meta/options records the job's options" bash -c "h5dump -d /meta/options '$D/job-b.h5' | grep -q 'preprocess_pca 2'"
check "more ranks than rows works (empty shards)" bash -c "'$TOOLS/mkfeatures' '$D/tiny.h5' -n 3 -d 4 && mpirun -q -n 3 '$BOUNDOPT' -task preprocess -input '$D/tiny.h5' -output '$D/tiny3.h5' -preprocess_center mean -preprocess_pca 2 >/dev/null && mpirun -q -n 1 '$BOUNDOPT' -task preprocess -input '$D/tiny.h5' -output '$D/tiny1.h5' -preprocess_center mean -preprocess_pca 2 >/dev/null && h5diff --exclude-path /meta '$D/tiny1.h5' '$D/tiny3.h5'"
check "a finished job leaves no temporary file" bash -c "! ls -A '$D' | grep -q '\.tmp\.'"
