#!/usr/bin/env bash
# Bad input: one line "boundopt: <what>: <problem>; expected <what>", exit 1 (2 for runtime
# failures) on every rank, no hang, and the output folder gains no file.  Run at 3 ranks (and 1
# where the failing rank matters), so that a collective check prints once.
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH/in
O=$SCRATCH/out
mkdir -p "$D" "$O"
mk() { "$TOOLS/mkfeatures" "$D/$1" "${@:2}"; }
mk good.h5 -n 600 -d 8
mk f64.h5 -d 5 -dtype float64
mk int.h5 -dtype int32
mk rank3.h5 -rank 3
mk n0.h5 -n 0
mk d0.h5 -d 0
mk short.h5 -labels short
mk floatlab.h5 -labels float
mk neg.h5 -n 900 -labels negative
mk nan.h5 -n 900 -nan 700
mk nofeat.h5 -no-features
head -c 4000 "$D/good.h5" >"$D/truncated.h5"
echo "not hdf5" >"$D/text.h5"
PP=(-task preprocess -output "$O/r.h5" -preprocess_center mean)

expect_error "missing input file"          1 'missing\.h5: cannot open \(No such file'        "$O" 3 "${PP[@]}" -input "$D/missing.h5"
expect_error "input is not HDF5"           1 'text\.h5: not an HDF5 file'                       "$O" 3 "${PP[@]}" -input "$D/text.h5"
expect_error "truncated HDF5"              1 'truncated\.h5: .*truncated or corrupt'           "$O" 3 "${PP[@]}" -input "$D/truncated.h5"
expect_error "no /features"                1 'nofeat\.h5: no /features dataset'                 "$O" 3 "${PP[@]}" -input "$D/nofeat.h5"
expect_error "features of rank 3"          1 'rank3\.h5: /features has rank 3; expected a 2-D' "$O" 3 "${PP[@]}" -input "$D/rank3.h5"
expect_error "integer features"            1 'int\.h5: /features is integer.*expected float32' "$O" 3 "${PP[@]}" -input "$D/int.h5"
expect_error "N = 0"                       1 'n0\.h5: /features is 0 x 8'                       "$O" 3 "${PP[@]}" -input "$D/n0.h5"
expect_error "D = 0"                       1 'd0\.h5: /features is 200 x 0'                     "$O" 3 "${PP[@]}" -input "$D/d0.h5"
expect_error "labels length differs from N" 1 'short\.h5: /labels has 199 entries.*expected 200' "$O" 3 "${PP[@]}" -input "$D/short.h5"
expect_error "float labels"                1 'floatlab\.h5: /labels is float; expected int32'   "$O" 3 "${PP[@]}" -input "$D/floatlab.h5"
expect_error "negative label (found on rank 0 of 3)" 1 'neg\.h5: /labels\[5\] = -3; expected labels >= 0' "$O" 3 "${PP[@]}" -input "$D/neg.h5"
expect_error "NaN in features: first bad row, found by rank 2 of 3" 1 'nan\.h5: /features row 700, column 4 is NaN or Inf' "$O" 3 "${PP[@]}" -input "$D/nan.h5"
expect_error "NaN in features at 1 rank"   1 'nan\.h5: /features row 700, column 4 is NaN'      "$O" 1 "${PP[@]}" -input "$D/nan.h5"
expect_error "unknown task"                1 "option -task: 'cluser' is not a task; expected one of .*cluster, .*import, info, knn, .*preprocess" "$O" 3 -task cluser -input "$D/good.h5"
expect_error "missing task"                1 'option -task: missing'                            "$O" 2 -input "$D/good.h5"
expect_error "unknown option (a typo)"     1 'option -preprocess_pcaa: not used by task preprocess' "$O" 3 "${PP[@]}" -input "$D/good.h5" -preprocess_pcaa 3
expect_error "option of another task"      1 'option -import_format: not used by task info'    "$O" 3 -task info -input "$D/good.h5" -import_format csv
printf 'task: info\ninput: %s\ninfo:\n  typo: 1\n' "$D/good.h5" >"$D/unused.yaml"
expect_error "unused key in a job file"    1 'option -info_typo: not used by task info'        "$O" 2 "$D/unused.yaml"
printf 'task: info\n  input: [x\n' >"$D/bad.yaml"
expect_error "malformed YAML"              1 'bad\.yaml:2:[0-9]+: .*expected a YAML mapping'   "$O" 3 "$D/bad.yaml"
printf -- '- task\n- info\n' >"$D/list.yaml"
expect_error "YAML whose top level is a list" 1 'list\.yaml:1: the top level is not a mapping' "$O" 2 "$D/list.yaml"
expect_error "missing job file"            1 'nojob\.yaml: cannot open the job file'           "$O" 2 "$D/nojob.yaml"
expect_error "output folder does not exist" 1 'nodir/r\.h5: cannot create the output \(No such file' "$O" 3 -task preprocess -input "$D/good.h5" -output "$O/nodir/r.h5"
touch "$O/afile"
expect_error "output folder is a file"     1 'afile/r\.h5: cannot create the output \(Not a directory' "$O" 2 -task preprocess -input "$D/good.h5" -output "$O/afile/r.h5"
expect_error "PCA d > D"                   1 'option -preprocess_pca: 9 with D = 8; expected 0 \(no PCA\) or 1 <= d <= D' "$O" 3 "${PP[@]}" -input "$D/good.h5" -preprocess_pca 9
expect_error "PCA fit file of another D"   1 'option -preprocess_fit: .*f64\.h5 has D = 5; expected D = 8' "$O" 2 "${PP[@]}" -input "$D/good.h5" -preprocess_fit "$D/f64.h5"
expect_error "not enough memory"           1 'memory: preprocess needs .* per rank \(input shard .*available per rank.*expected a job that fits' "$O" 3 "${PP[@]}" -input "$D/good.h5" -preprocess_pca 4 -memory_limit 20K
expect_error "bad memory limit"            1 "option -memory_limit: 'lots' is not a size"      "$O" 2 "${PP[@]}" -input "$D/good.h5" -memory_limit lots
expect_error "bad seed"                    1 "option -seed: 'x1'; expected an integer"         "$O" 2 "${PP[@]}" -input "$D/good.h5" -seed x1
expect_error "bad centring"                1 "option -preprocess_center: 'median'; expected none or mean" "$O" 2 "${PP[@]}" -input "$D/good.h5" -preprocess_center median
expect_error "ScaLAPACK grid larger than the job" 1 "option -preprocess_scalapack_grid: '2x2' with 3 ranks" "$O" 3 "${PP[@]}" -input "$D/good.h5" -preprocess_pca 2 -preprocess_eigensolver scalapack -preprocess_scalapack_grid 2x2
expect_error "import: bad IDX file"        1 'text\.h5: .*expected .*IDX'                        "$O" 3 -task import -output "$O/i.h5" -import_images "$D/text.h5"
expect_error "import: IDX labels count differs" 1 'labels; expected 10000' "$O" 2 -task import -output "$O/i.h5" -import_images /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz -import_labels /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz
printf '1,2,3\n4,x,6\n' >"$D/bad.csv"
expect_error "import: CSV with a non-number" 1 'bad\.csv:2: column 1: .x. is not a number'     "$O" 3 -task import -import_format csv -input "$D/bad.csv" -output "$O/c.h5"
expect_error "import: not a PNG"           1 'text\.h5: .*PNG'                                  "$O" 2 -task import -import_format png -import_images "$D/text.h5" -output "$O/p.h5"
expect_error "import: unknown format"      1 "option -import_format: 'tiff' is not a format"  "$O" 2 -task import -import_format tiff -import_images "$D/text.h5" -output "$O/p.h5"

# One rank failing alone: the job ends with one line and exit 2, no hang, no output file.
for at in read compute write; do
  expect_error "rank 2 of 3 fails alone at $at: exit 2, no hang" 2 "debug: rank 2 fails on purpose as phase $at begins" "$O" 3 "${PP[@]}" -input "$D/good.h5" -preprocess_pca 3 -debug_fail_rank 2 -debug_fail_at $at
done
expect_error "rank 0 fails alone at compute" 2 "debug: rank 0 fails on purpose as phase compute begins" "$O" 2 "${PP[@]}" -input "$D/good.h5" -debug_fail_rank 0 -debug_fail_at compute
