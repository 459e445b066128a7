#!/usr/bin/env bash
# Bad option values: every option-range / option-value check of src/tasks/*.c that no other script
# triggers.  Each case is a small valid command of its task plus exactly one bad option, and must
# give one line "boundopt: option -x: ...; expected ...", exit 1 on every rank, no hang and no file
# left in the output folder (tests/lib.sh expect_error).  The cases cycle through the rank counts of
# $RANKS (see bad() below).  Tiny inputs, made once.  (A base command that became invalid at an
# earlier check would show as a wrong message, so the bases are not run on their own.)
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH
O=$SCRATCH/o
mkdir -p "$O"
FM=/usr/share/datasets/fashion-mnist
TEX=jobs/data/textures
IMG=$FM/t10k-images-idx3-ubyte.gz
LAB=$FM/t10k-labels-idx1-ubyte.gz

# bad NAME PATTERN ARGS...: expect_error at the next rank count of the cycle, output folder $O.
# The cycle is $RANKS then $RANKS without 1 (1 2 3 2 3): the multi-rank cases are the ones that could
# hang or print twice, and mpirun takes about a second longer to end a 1-rank job that aborts.
read -ra CYCLE <<<"$RANKS $(echo " $RANKS " | sed 's/ 1 / /g')"
ncase=0
bad() {
  local name=$1 pattern=$2 p=${CYCLE[ncase % ${#CYCLE[@]}]}
  shift 2
  ncase=$((ncase + 1))
  expect_error "$name (np $p)" 1 "$pattern" "$O" "$p" "$@"
}
# inputs: Fashion-MNIST test images; 8 one-object 32 x 32 scenes with feature fields, a 1-step
# train-seg head on them; 2 such 40 x 40 scenes; 4 such 144 x 144 scenes and 2-step CAMs on them;
# 200 labelled Gaussian rows, 50 unlabelled ones; 16 x 16 and 12 x 12 images
IM=(-task import -import_images "$IMG" -import_labels "$LAB")
run_np 2 "${IM[@]}" -output "$D/fm.h5" || fail "import the Fashion-MNIST test images" "$(cat "$SCRATCH/err.txt")"
SC=(-task scenes -input "$D/fm.h5" -seed 5 -scenes_textures "$TEX/brick.png" -scenes_size 32 -scenes_scale 1 -scenes_min_objects 1 -scenes_max_objects 1 -scenes_count 8 -scenes_features -scenes_feat_sigma 1 -scenes_feat_filters 2)
run_np 2 "${SC[@]}" -output "$D/sc.h5" || fail "scenes" "$(cat "$SCRATCH/err.txt")"
run_np 1 "${SC[@]}" -scenes_size 40 -scenes_count 2 -output "$D/sc40.h5" || fail "40-pixel scenes" "$(cat "$SCRATCH/err.txt")"
TS=(-task train-seg -input "$D/sc.h5" -seg_loss ce -seg_iterations 1)
run_np 1 "${TS[@]}" -output "$D/seg.h5" || fail "train-seg head" "$(cat "$SCRATCH/err.txt")"
run_np 2 "${SC[@]}" -scenes_size 144 -scenes_count 4 -output "$D/sc144.h5" || fail "144-pixel scenes" "$(cat "$SCRATCH/err.txt")"
FC=(-task fcam -fcam_stage cam -input "$D/sc144.h5" -fcam_train "$D/sc144.h5" -fcam_classifier_iterations 2)
run_np 2 "${FC[@]}" -output "$D/cam.h5" || fail "fcam CAMs" "$(cat "$SCRATCH/err.txt")"
"$TOOLS/mkfeatures" "$D/feat.h5" -n 200 -d 8 -classes 4
"$TOOLS/mkfeatures" "$D/nolab.h5" -n 50 -d 8 -labels none
/usr/bin/python3 -c "
import h5py, numpy as np
for n, s in (('img', 16), ('img12', 12)):
    y, x = np.mgrid[0:s, 0:s]; h5py.File('$D/' + n + '.h5', 'w')['image'] = 0.3 + 0.5 * ((x < s / 2) & (y < s / 2))
m = h5py.File('$D/sc.h5', 'r')['masks'][:]
c = [k for k in range(10) if sum(bool((s == k + 1).any()) for s in m) >= 2]
print(c[0] if c else 0)" >"$D/class.txt"
CLS=$(cat "$D/class.txt")   # a class in at least 2 scenes: fewshot-seg's 1-shot tasks need it

AD=(-task adapt -input "$D/sc.h5" -adapt_source "$D/seg.h5" -adapt_iterations 1 -adapt_method none,sfda)
CL=(-task cluster -input "$D/feat.h5" -cluster_k 4 -cluster_max_it 3)
FU=(-task fcam -input "$D/sc144.h5" -fcam_cams "$D/cam.h5" -fcam_methods bilinear -fcam_examples 0)
FS=(-task fewshot -input "$D/feat.h5" -fewshot_classes 0-3 -fewshot_ways 3 -fewshot_shots 1 -fewshot_queries 2 -fewshot_tasks 2 -fewshot_method simpleshot)
FSS=(-task fewshot-seg -input "$D/sc.h5" -fsseg_classes "$CLS" -fsseg_tasks 1 -fsseg_iters 2 -fsseg_t_pi 1 -fsseg_method ce)
FG=(-task fire-gauss -fire_gauss_n 300 -fire_gauss_test_n 300 -fire_gauss_iterations 2 -fire_gauss_front_points 3)
MX=(-task mixed -input "$D/sc.h5" -mixed_strong 2 -mixed_iterations 1 -mixed_method teacher,pce)
PP=(-task preprocess -input "$D/feat.h5" -preprocess_center mean)
RS=(-task restore -input "$D/img.h5" -restore_max_it 1)
SG=(-task segment -input "$D/img.h5" -segment_max_it 1 -segment_epsilon 1 -segment_epsilon_final 1)
TR=(-task train -input "$D/fm.h5" -train_train_rows 100 -train_test_rows 50 -train_epochs 1 -train_hidden 8 -train_steps 1 -train_eval_steps 1 -train_eval_rows 10)
TD=(-task train-seg -input "$D/sc.h5" -seg_supervision descriptors -seg_descriptors size -seg_iterations 1)

# adapt
bad "adapt: no iteration"            'option -adapt_iterations: 0; expected at least 1' "${AD[@]}" -output "$O/a.h5" -adapt_iterations 0
bad "adapt: a zero learning rate"    'option -adapt_lr/weight_decay/lambda: 0\.?/0\.0001/1\.?; expected lr > 0, the others >= 0' "${AD[@]}" -output "$O/a.h5" -adapt_lr 0
bad "adapt: a tag prior of 1"        'option -adapt_prior_fg: 1\.?; expected a fraction below 1' "${AD[@]}" -output "$O/a.h5" -adapt_prior_fg 1
bad "adapt: an unknown KL direction" "option -adapt_kl: 'kl'; expected pred_prior or prior_pred" "${AD[@]}" -output "$O/a.h5" -adapt_kl kl
bad "adapt: an unknown proportion estimator" "option -adapt_prop: 'max'; expected mean or maxnorm" "${AD[@]}" -output "$O/a.h5" -adapt_prop max
bad "adapt: a negative scene count"  'option -adapt_scenes: -1; expected a count >= 0' "${AD[@]}" -output "$O/a.h5" -adapt_scenes -1

# cluster
bad "cluster: an unknown empty-cluster rule" "option -cluster_on_empty: 'skip'; expected reseed or stop" "${CL[@]}" -output "$O/c.h5" -cluster_on_empty skip
bad "cluster: an unknown symmetrisation"     "option -cluster_symmetrize: 'sum'; expected avg, max or none" "${CL[@]}" -output "$O/c.h5" -cluster_symmetrize sum
bad "cluster: unknown graph weights"         "option -cluster_weights: 'cosine'; expected binary or gaussian" "${CL[@]}" -output "$O/c.h5" -cluster_weights cosine
bad "cluster: an unknown sigma denominator"  "option -cluster_sigma_denom: 'n'; expected ref5 or nnz" "${CL[@]}" -output "$O/c.h5" -cluster_sigma_denom n
bad "cluster: a negative kernel width"       'option -cluster_sigma: -1\.?; expected sigma > 0, or 0 to estimate it' "${CL[@]}" -output "$O/c.h5" -cluster_sigma -1
bad "cluster: no outer iteration"            'option -cluster_max_it: 0; expected at least 1 outer iteration' "${CL[@]}" -output "$O/c.h5" -cluster_max_it 0
bad "cluster: a negative bound cap"          'option -cluster_bound_max_it: -1; expected a cap >= 0 on the bound iterations' "${CL[@]}" -output "$O/c.h5" -cluster_bound_max_it -1
bad "cluster: a negative mean-shift cap"     'option -cluster_ms_max_it: -1; expected a cap >= 0 on the mean-shift sweeps' "${CL[@]}" -output "$O/c.h5" -cluster_ms_max_it -1
bad "cluster: an unknown prototype update"   "option -cluster_means: 'mean'; expected soft or hard" "${CL[@]}" -output "$O/c.h5" -cluster_means mean
bad "cluster: seeds from a file without /prototypes or /features" 'option -cluster_init: .*img\.h5 has neither /prototypes nor /features; expected a K x D dataset' "${CL[@]}" -output "$O/c.h5" -cluster_init "$D/img.h5"

# fcam, stage upscale
bad "fcam: a negative scene count"      'option -fcam_scenes/train_scenes: -1/0; expected counts >= 0' "${FU[@]}" -output "$O/f.h5" -fcam_scenes -1
bad "fcam: pool 0"                      'option -fcam_pool: 0; expected 1\.\.64' "${FU[@]}" -output "$O/f.h5" -fcam_pool 0
bad "fcam: no classifier iteration"     'option -fcam_classifier_\*: 0 iterations, lr 0\.05, decay 0\.0001; expected >= 1, > 0, >= 0' "${FU[@]}" -output "$O/f.h5" -fcam_classifier_iterations 0
bad "fcam: an unknown CAM class"        "option -fcam_cam_class: 'best'; expected true or pred" "${FU[@]}" -output "$O/f.h5" -fcam_cam_class best
bad "fcam: no F-CAM step"               'option -fcam_steps/hidden/lr: 0/32/0\.01; expected 1\.\.100000 steps, 0\.\.1024 hidden units, lr > 0' "${FU[@]}" -output "$O/f.h5" -fcam_steps 0
bad "fcam: t_max below t"               'option -fcam_lambda_\*/t\*: 1\.?/5e-10/1\.?, t 1\.? x 1\.01 up to 0\.5; expected weights >= 0, t > 0, growth >= 1, t_max >= t' "${FU[@]}" -output "$O/f.h5" -fcam_t_max 0.5
bad "fcam: a zero CRF width"            'option -fcam_sigma_xy/sigma_rgb/crf_stride/mf_\*: 0\.?/15\.?/2/0\.5/10; expected positive widths, stride >= 1, weight and iterations >= 0' "${FU[@]}" -output "$O/f.h5" -fcam_sigma_xy 0
bad "fcam: one threshold"               'option -fcam_thresholds/bins/examples: 1/1000/0; expected 2\.\.10000, 2\.\.100000, 0\.\.64' "${FU[@]}" -output "$O/f.h5" -fcam_thresholds 1
bad "fcam: a CRF stride leaving too many blocks" 'option -fcam_crf_stride: 1 leaves 20736 CRF blocks; expected at most 20000' "${FU[@]}" -output "$O/f.h5" -fcam_crf_stride 1
# fcam, stage cam: checks on the scenes' size (after the output file was opened: it must go away)
bad "fcam: a pool not dividing the scenes (stored features)" 'option -fcam_pool: 5 does not divide the 144 x 144 scenes; expected a divisor of both sides' "${FC[@]}" -output "$O/f.h5" -fcam_pool 5
bad "fcam: a pool not dividing the scenes (rebuilt features)" 'option -fcam_pool: 5 does not divide the 144 x 144 scenes; expected a divisor of both sides' "${FC[@]}" -output "$O/f.h5" -fcam_pool 5 -fcam_classifier_filters 2
bad "fcam: rebuilt features of more than 1024 channels" 'option -fcam_classifier_filters: 1040 channels; expected at most 1024' "${FC[@]}" -output "$O/f.h5" -fcam_classifier_filters 256 -fcam_classifier_sigma 1,2,3,4

# fewshot
bad "fewshot: one way"                   'option -fewshot_ways/shots/queries: 1/1/2; expected ways >= 2, shots >= 1, queries >= 1' "${FS[@]}" -output "$O/f.h5" -fewshot_ways 1
bad "fewshot: a negative first task"     'option -fewshot_first: -1; expected a task id >= 0' "${FS[@]}" -output "$O/f.h5" -fewshot_first -1
bad "fewshot: no task"                   'option -fewshot_tasks: 0; expected at least one task' "${FS[@]}" -output "$O/f.h5" -fewshot_tasks 0
bad "fewshot: a negative Dirichlet a"    'option -fewshot_dirichlet: -1\.?; expected a >= 0' "${FS[@]}" -output "$O/f.h5" -fewshot_dirichlet -1
bad "fewshot: knn 1"                     'option -fewshot_knn: 1; expected knn >= 2' "${FS[@]}" -output "$O/f.h5" -fewshot_knn 1
bad "fewshot: an unknown normalisation"  "option -fewshot_norm: 'l1'; expected none, l2 or cl2n" "${FS[@]}" -output "$O/f.h5" -fewshot_norm l1
bad "fewshot: cl2n without base classes" 'option -fewshot_norm: cl2n without -fewshot_base; expected a base-class features file' "${FS[@]}" -output "$O/f.h5" -fewshot_norm cl2n
bad "fewshot: imbalanced queries a class cannot hold" 'feat\.h5: class 0 has 50 rows; expected at least shots \+ ways\*queries - \(ways-1\) = 89 for imbalanced tasks' "${FS[@]}" -output "$O/f.h5" -fewshot_dirichlet 1 -fewshot_queries 30

# fewshot-seg
bad "fewshot-seg: no shot"         'option -fsseg_shots: 0; expected 1\.\.64' "${FSS[@]}" -output "$O/f.h5" -fsseg_shots 0
bad "fewshot-seg: no task"         'option -fsseg_tasks: 0; expected at least one task' "${FSS[@]}" -output "$O/f.h5" -fsseg_tasks 0
bad "fewshot-seg: negative steps"  'option -fsseg_iters/t_pi: -1/1; expected counts >= 0' "${FSS[@]}" -output "$O/f.h5" -fsseg_iters -1
bad "fewshot-seg: a zero temperature" 'option -fsseg_lr/tau: 0\.025/0\.?; expected lr > 0 and tau > 0' "${FSS[@]}" -output "$O/f.h5" -fsseg_tau 0

# fire-gauss
bad "fire-gauss: dimension 0"       'option -fire_gauss_dim: 0; expected 1 <= dim <= 100000' "${FG[@]}" -output "$O/f.h5" -fire_gauss_dim 0
bad "fire-gauss: no iteration"      'option -fire_gauss_iterations: 0; expected 1 to 1000000 steps' "${FG[@]}" -output "$O/f.h5" -fire_gauss_iterations 0
bad "fire-gauss: a zero learning rate" 'option -fire_gauss_lr: 0\.?; expected lr > 0' "${FG[@]}" -output "$O/f.h5" -fire_gauss_lr 0
bad "fire-gauss: a one-point front" 'option -fire_gauss_front_points: 1; expected 2 to 1000000 points' "${FG[@]}" -output "$O/f.h5" -fire_gauss_front_points 1

# import
bad "import: no input files"               'option -import_images: missing; expected the input files \(or -input\)' -task import -output "$O/i.h5"
bad "import: one labels file for two images files" 'option -import_labels: 1 files for 2 images files; expected one labels file per images file' -task import -import_images "$IMG,$IMG" -import_labels "$LAB" -output "$O/i.h5"
bad "import: labels files with CSV"        'option -import_labels: given for format csv; expected it only with format idx' -task import -import_format csv -input jobs/data/letter-recognition.data -import_labels "$LAB" -output "$O/i.h5"
bad "import: two CSV files"                'option -import_images: 2 CSV files; expected one CSV file' -task import -import_format csv -import_images jobs/data/letter-recognition.data,jobs/data/letter-recognition.data -output "$O/i.h5"
bad "import: IDX files of other item sizes" 't10k-labels-idx1-ubyte\.gz: items of 1 values; expected 784 like .*t10k-images-idx3-ubyte\.gz' -task import -import_images "$IMG,$LAB" -output "$O/i.h5"
bad "import: PNG files of other sizes"     'BrainT1Slice\.png: 217 x 181 x 3; expected the size of jobs/data/camera\.png \(512 x 512 x 1\)' -task import -import_format png -import_images jobs/data/camera.png,jobs/data/BrainT1Slice.png -output "$O/i.h5"

# mixed
bad "mixed: no strong scene"          'option -mixed_strong: 0; expected at least one fully labelled scene' "${MX[@]}" -output "$O/m.h5" -mixed_strong 0
bad "mixed: a zero temperature"       'option -mixed_iterations/lr/T: 1/0\.05/0\.?; expected iterations >= 1, lr > 0, T > 0' "${MX[@]}" -output "$O/m.h5" -mixed_T 0
bad "mixed: a negative disk radius"   'option -mixed_kd_weight/weak_weight/entropy_weight/radius: 20\.?/0\.1/1\.?/-1\.?; expected values >= 0' "${MX[@]}" -output "$O/m.h5" -mixed_radius -1
bad "mixed: a negative test scene count" 'option -mixed_scenes/test_scenes: 0/-1; expected counts >= 0' "${MX[@]}" -output "$O/m.h5" -mixed_test_scenes -1

# preprocess
bad "preprocess: an unknown eigensolver" "option -preprocess_eigensolver: 'arpack'; expected auto, lapack or scalapack" "${PP[@]}" -output "$O/p.h5" -preprocess_eigensolver arpack
bad "preprocess: ScaLAPACK block 0"      'option -preprocess_scalapack_block: 0; expected a positive block size' "${PP[@]}" -output "$O/p.h5" -preprocess_scalapack_block 0
bad "preprocess: fit classes of a fit file without labels" 'option -preprocess_fit_classes: .*nolab\.h5 has no /labels; expected labels to select classes' "${PP[@]}" -output "$O/p.h5" -preprocess_pca 2 -preprocess_fit "$D/nolab.h5" -preprocess_fit_classes 0-1

# restore (lambda, blur_sigma, noise_sigma, sweeps, inner and its pairings are in test_image.sh)
bad "restore: an unknown potential" "option -restore_potential: 'tv'; expected tq-mult, tq-add, gm or hl" "${RS[@]}" -output "$O/r.h5" -restore_potential tv
bad "restore: an unknown boundary"  "option -restore_boundary: 'zero'; expected replicate or reflect" "${RS[@]}" -output "$O/r.h5" -restore_boundary zero
bad "restore: delta 0"              'option -restore_delta: 0\.?; expected delta > 0' "${RS[@]}" -output "$O/r.h5" -restore_delta 0
bad "restore: a negative mu"        'option -restore_mu: -1\.?; expected mu >= 0' "${RS[@]}" -output "$O/r.h5" -restore_mu -1
bad "restore: omega 2"              'option -restore_omega: 2\.?; expected 0 < omega < 2' "${RS[@]}" -output "$O/r.h5" -restore_omega 2
bad "restore: no outer iteration"   'option -restore_max_it: 0; expected at least 1 outer iteration' "${RS[@]}" -output "$O/r.h5" -restore_max_it 0
bad "restore: a negative tolerance" 'option -restore_tol: -1\.?; expected tol >= 0' "${RS[@]}" -output "$O/r.h5" -restore_tol -1
bad "restore: a clean reference of another size" "img12\.h5: 12 x 12 x 1; expected the input's size 16 x 16 x 1" "${RS[@]}" -output "$O/r.h5" -restore_clean "$D/img12.h5"

# scenes (split, object rows, scale too large, textures missing are in test_lossdrivers.sh)
bad "scenes: no scene"                'option -scenes_count: 0; expected at least one scene' "${SC[@]}" -output "$O/s.h5" -scenes_count 0
bad "scenes: 7-pixel scenes"          'option -scenes_size: 7; expected 8\.\.4096 pixels' "${SC[@]}" -output "$O/s.h5" -scenes_size 7
bad "scenes: min objects above max"   'option -scenes_min_objects/max_objects: 2/1; expected 0 <= min <= max <= 4' "${SC[@]}" -output "$O/s.h5" -scenes_min_objects 2
bad "scenes: threshold 1"             'option -scenes_threshold: 1\.?; expected 0 <= threshold < 1' "${SC[@]}" -output "$O/s.h5" -scenes_threshold 1
bad "scenes: a background range above 1" 'option -scenes_bg_lo/bg_hi: \[0\.2, 1\.5\]; expected 0 <= lo <= hi <= 1' "${SC[@]}" -output "$O/s.h5" -scenes_bg_hi 1.5
bad "scenes: contrast above 1"        'option -scenes_gamma/contrast: 1\.?/1\.5; expected gamma > 0 and 0 < contrast <= 1' "${SC[@]}" -output "$O/s.h5" -scenes_contrast 1.5
bad "scenes: a feature scale too large for the scene" 'option -scenes_feat_sigma: 11\.?; expected 0 <= sigma with 3 sigma below the scene size 32' "${SC[@]}" -output "$O/s.h5" -scenes_feat_sigma 1,11
bad "scenes: too many feature filters" 'option -scenes_feat_filters: 65; expected 0\.\.64' "${SC[@]}" -output "$O/s.h5" -scenes_feat_filters 65
T17=$(printf "$TEX/brick.png,%.0s" $(seq 17)); T17=${T17%,}
bad "scenes: 17 textures"             'option -scenes_textures: 17 files; expected 1\.\.16' "${SC[@]}" -output "$O/s.h5" -scenes_textures "$T17"
bad "scenes: a colour texture"        'BrainT1Slice\.png: 3 channels; expected a grey texture' "${SC[@]}" -output "$O/s.h5" -scenes_textures "$TEX/brick.png,jobs/data/BrainT1Slice.png"
bad "scenes: a texture smaller than the scene" 'brick\.png: 512 x 512; expected a texture of at least the scene size 600 x 600' "${SC[@]}" -output "$O/s.h5" -scenes_size 600

# segment (epsilon, lambda are in test_image.sh)
bad "segment: an unknown inner solver" "option -segment_inner: 'gs'; expected exact, cg, rbgs, jacobi, mg, ssor or fft" "${SG[@]}" -output "$O/s.h5" -segment_inner gs
bad "segment: alpha 0"                 'option -segment_alpha: 0\.?; expected alpha > 0' "${SG[@]}" -output "$O/s.h5" -segment_alpha 0
bad "segment: a final eps above the first" 'option -segment_epsilon_final: 2\.? with epsilon 1\.?; expected 0 < epsilon_final <= epsilon' "${SG[@]}" -output "$O/s.h5" -segment_epsilon_final 2
bad "segment: a negative mu"           'option -segment_mu: -1\.?; expected mu >= 0' "${SG[@]}" -output "$O/s.h5" -segment_mu -1
bad "segment: no sweep"                'option -segment_sweeps: 0; expected sweeps >= 1' "${SG[@]}" -output "$O/s.h5" -segment_sweeps 0
bad "segment: omega 0"                 'option -segment_omega: 0\.?; expected 0 < omega < 2' "${SG[@]}" -output "$O/s.h5" -segment_omega 0
bad "segment: no outer iteration"      'option -segment_max_it: 0; expected at least 1 outer iteration per eps' "${SG[@]}" -output "$O/s.h5" -segment_max_it 0
bad "segment: a negative tolerance"    'option -segment_tol: -1\.?; expected tol >= 0' "${SG[@]}" -output "$O/s.h5" -segment_tol -1

# train (loss, hidden, rows, classes, schedule, beta, eps, milestones are in test_train.sh)
bad "train: an unknown optimiser"  "option -train_optimizer: 'rmsprop'; expected sgd or adam" "${TR[@]}" -output "$O/t.h5" -train_optimizer rmsprop
bad "train: no epoch"              'option -train_epochs: 0; expected at least 1' "${TR[@]}" -output "$O/t.h5" -train_epochs 0
bad "train: batch 0"               'option -train_batch: 0; expected at least 1' "${TR[@]}" -output "$O/t.h5" -train_batch 0
bad "train: no test row"           'option -train_train_rows/test_rows: 100/0; expected at least 1 of each' "${TR[@]}" -output "$O/t.h5" -train_test_rows 0
bad "train: a zero learning rate"  'option -train_lr: 0\.?; expected lr > 0' "${TR[@]}" -output "$O/t.h5" -train_lr 0
bad "train: momentum 1"            'option -train_momentum: 1\.?; expected 0 <= momentum < 1' "${TR[@]}" -output "$O/t.h5" -train_momentum 1
bad "train: a negative weight decay" 'option -train_weight_decay: -1\.?; expected >= 0' "${TR[@]}" -output "$O/t.h5" -train_weight_decay -1
bad "train: gamma 0"               'option -train_gamma: 0\.?; expected gamma > 0' "${TR[@]}" -output "$O/t.h5" -train_gamma 0
bad "train: an evaluation eps beyond the box" 'option -train_eval_eps: 2\.?; expected 0 <= eps <= 1' "${TR[@]}" -output "$O/t.h5" -train_eval_eps 2
bad "train: a negative evaluation PGD step" 'option -train_step/eval_step: 0\.01/-1\.?; expected steps >= 0' "${TR[@]}" -output "$O/t.h5" -train_eval_step -1
bad "train: negative PGD steps"    'option -train_steps/eval_steps: -1/1; expected >= 0' "${TR[@]}" -output "$O/t.h5" -train_steps -1
bad "train: a negative random start" 'option -train_sigma: -1\.?; expected sigma >= 0' "${TR[@]}" -output "$O/t.h5" -train_sigma -1
bad "train: FIRE guard 1"          'option -train_fr_guard: 1\.?; expected 0 <= guard < 1' "${TR[@]}" -output "$O/t.h5" -train_fr_guard 1
bad "train: negative evaluation rows" 'option -train_eval_every/eval_rows: 1/-1; expected >= 0' "${TR[@]}" -output "$O/t.h5" -train_eval_rows -1
bad "train: 8 hidden widths"       "option -train_hidden: '8'; expected up to 7 widths >= 1" "${TR[@]}" -output "$O/t.h5" -train_hidden 8,8,8,8,8,8,8,8
M17=$(printf '0.5,%.0s' $(seq 17)); M17=${M17%,}
bad "train: 17 milestones"         "option -train_milestones: '0\.5'; expected up to 16 fractions in \(0, 1\)" "${TR[@]}" -output "$O/t.h5" -train_milestones "$M17"

# train-seg (supervision, unknown loss or descriptor, centroid margin, penalty, t factor, head,
# batch, hidden, lr are in test_lossdrivers.sh and test_descriptors.sh)
bad "train-seg: no loss"            'option -seg_loss: empty; expected at least one loss' "${TS[@]}" -output "$O/t.h5" -seg_loss ,
bad "train-seg: a loss twice"       "option -seg_loss: 'ce' twice; expected each loss once" "${TS[@]}" -output "$O/t.h5" -seg_loss ce,dice,ce
bad "train-seg: a descriptor set twice" "option -seg_descriptors: 'size' twice; expected each set once" "${TD[@]}" -output "$O/t.h5" -seg_descriptors size,centroid,size
bad "train-seg: a negative size margin" 'option -seg_size_margin: -1\.?; expected a margin >= 0' "${TD[@]}" -output "$O/t.h5" -seg_size_margin -1
bad "train-seg: a negative spread margin" 'option -seg_dist_margin: -1\.?; expected a margin >= 0 \(pixels\)' "${TD[@]}" -output "$O/t.h5" -seg_dist_margin -1
bad "train-seg: a negative length margin" 'option -seg_length_margin: -1\.?; expected a margin >= 0' "${TD[@]}" -output "$O/t.h5" -seg_length_margin -1
bad "train-seg: shape weight 0"     'option -seg_shape_weight: 0\.?; expected weight > 0' "${TD[@]}" -output "$O/t.h5" -seg_shape_weight 0
bad "train-seg: barrier t 0"        'option -seg_t: 0\.?; expected t > 0' "${TD[@]}" -output "$O/t.h5" -seg_t 0
bad "train-seg: a negative seed"    'option -seg_seed: -1; expected a seed >= 0' "${TS[@]}" -output "$O/t.h5" -seg_seed -1
bad "train-seg: no iteration"       'option -seg_iterations: 0; expected at least 1' "${TS[@]}" -output "$O/t.h5" -seg_iterations 0
bad "train-seg: beta2 1"            'option -seg_beta2: 1\.?; expected 0 <= beta2 < 1' "${TS[@]}" -output "$O/t.h5" -seg_beta2 1
bad "train-seg: a negative proportion weight" 'option -seg_alpha: -1\.?; expected alpha >= 0' "${TS[@]}" -output "$O/t.h5" -seg_alpha -1
bad "train-seg: temperature 0 (not -seg_T, which PETSc would read as -seg_t)" 'option -seg_temperature: 0\.?; expected T > 0' "${TS[@]}" -output "$O/t.h5" -seg_temperature 0
bad "train-seg: a negative scene count" 'option -seg_scenes/test_scenes: -1/0; expected counts >= 0' "${TS[@]}" -output "$O/t.h5" -seg_scenes -1
bad "train-seg: test scenes of another size" 'sc40\.h5: 40 x 40 scenes with [0-9]+ head channels; expected 32 x 32 and [0-9]+ like the training scenes' "${TS[@]}" -output "$O/t.h5" -seg_test "$D/sc40.h5"

# merge
bad "merge: an input list without a file" 'option -merge_inputs: no file given; expected results files of fewshot slices' -task merge -merge_inputs , -output "$O/m.h5"
LONG=$D/$(printf 'a%.0s' $(seq 4100)).h5
bad "merge: a path longer than PETSC_MAX_PATH_LEN" 'option -merge_inputs: a path of [0-9]+ characters; expected at most 4095' -task merge -merge_inputs "$LONG" -output "$O/m.h5"
