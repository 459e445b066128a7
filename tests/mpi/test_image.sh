#!/usr/bin/env bash
# Integration: tasks restore (half-quadratic denoising / deblurring) and segment (Ambrosio-Tortorelli)
# at 1, 2 and 3 ranks on a small synthetic image: energy descent for every feasible inner solver,
# rank-count independence of rbgs (and fft) bit for bit, v in [0,1], PNG copies, bad input.
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH

# make_image FILE H W: a piecewise-constant H x W /image (float64 in [0,1]) through h5import
make_image() {
  awk -v h="$2" -v w="$3" 'BEGIN { for (y = 0; y < h; y++) { for (x = 0; x < w; x++) {
      v = 0.3; if (x < 0.45 * w && y < 0.5 * h) v = 0.85; dx = x - 0.65 * w; dy = y - 0.6 * h
      if (dx * dx + dy * dy < 0.04 * h * w) v = 0.55; printf "%.6f ", v } printf "\n" } }' >"$1.txt"
  printf 'PATH /image\nINPUT-CLASS TEXTFP\nRANK 2\nDIMENSION-SIZES %d %d\nOUTPUT-CLASS FP\nOUTPUT-SIZE 64\nOUTPUT-ARCHITECTURE IEEE\nOUTPUT-BYTE-ORDER LE\n' "$2" "$3" >"$1.cfg"
  h5import "$1.txt" -c "$1.cfg" -o "$1"
}
make_image "$D/img.h5" 48 40
make_image "$D/tiny.h5" 2 2
echo "not an image" >"$D/notimage.png"

# values DATASET FILE: one number per line
values() { h5dump -y -w 0 -m %.17g -d "$1" "$2" | sed -n '/DATA {/,/}/p' | tr ', ' '\n\n' | grep -E '^-?[0-9]'; }
# nonincreasing FILE: /energy never grows by more than 1e-12 relative
nonincreasing() { values /energy "$1" | awk 'NR > 1 && $1 > p + 1e-12 * (p < 0 ? -p : p) { bad = 1 } { p = $1 } END { exit bad || NR < 2 }'; }
# stage_nonincreasing FILE: segment: energy <= energy_before at every iteration
stage_nonincreasing() { paste <(values /energy "$1") <(values /energy_before "$1") | awk '$1 > $2 + 1e-12 * ($2 < 0 ? -$2 : $2) { bad = 1 } END { exit bad || NR < 2 }'; }
invariant() { h5dump -d /meta/rank_invariant "$1" | grep -q "(0): $2"; }
attr() { h5dump -a "/$1" "$2" | sed -n 's/.*(0): //p'; }

R="-task restore -input $D/img.h5 -restore_degrade -restore_noise_sigma 0.1 -restore_lambda 0.04 -restore_delta 0.15 -restore_tol 0"
S="-task segment -input $D/img.h5 -segment_max_it 4 -segment_epsilon 1 -segment_epsilon_final 0.25"

# rbgs: the same file at 1, 2 and 3 ranks
for p in $RANKS; do
  run_np "$p" $R -output "$D/r$p.h5" -restore_max_it 12 || fail "restore gm/rbgs at $p ranks" "$(cat "$D/err.txt")"
  run_np "$p" $S -output "$D/s$p.h5" || fail "segment rbgs at $p ranks" "$(cat "$D/err.txt")"
done
for p in 2 3; do
  check "restore gm/rbgs is identical (bit for bit, /meta aside) at 1 and $p ranks" same_results "$D/r1.h5" "$D/r$p.h5"
  check "segment rbgs is identical (bit for bit, /meta aside) at 1 and $p ranks" same_results "$D/s1.h5" "$D/s$p.h5"
done
check "restore and segment with rbgs record rank_invariant = 1" bash -c "$(declare -f invariant); invariant '$D/r3.h5' 1 && invariant '$D/s3.h5' 1"
check "restore gm/rbgs: the energy never increases over 12 outer iterations" bash -c "$(declare -f values nonincreasing); nonincreasing '$D/r2.h5'"
check "restore gm/rbgs: PSNR beats the noisy input's and SSIM is stored" bash -c "$(declare -f attr); awk -v a=\$(attr psnr '$D/r1.h5') -v b=\$(attr psnr_observed '$D/r1.h5') -v s=\$(attr ssim '$D/r1.h5') 'BEGIN { exit !(a > b + 3 && s > 0 && s <= 1) }'"
check "restore writes /u (48 x 40), /energy (13), /inner_iterations (12 x 1 sweep) and <output>-u.png" bash -c "h5dump -H -d /u '$D/r1.h5' | grep -q '( 48, 40 )' && h5dump -H -d /energy '$D/r1.h5' | grep -q '( 13 )' && h5dump -d /inner_iterations '$D/r1.h5' | grep -q '(0): 1, 1, 1' && head -c 8 '$D/r1-u.png' | od -c | grep -q 'P   N   G'"
check "segment: v stays in [0,1] and marks edges (min v < 0.5)" bash -c "$(declare -f values); values /v '$D/s2.h5' | awk 'NR == 1 || \$1 < lo { lo = \$1 } NR == 1 || \$1 > hi { hi = \$1 } END { exit !(lo >= 0 && hi <= 1 && lo < 0.5) }'"
check "segment: the energy never increases within an eps stage, for 3 stages" bash -c "$(declare -f values stage_nonincreasing); stage_nonincreasing '$D/s3.h5' && values /epsilon '$D/s3.h5' | sort -u | wc -l | grep -q 3"
check "segment writes /u, /v and the PNG copies <output>-u.png, <output>-v.png" bash -c "h5dump -H -d /v '$D/s1.h5' | grep -q '( 48, 40 )' && [ -s '$D/s1-u.png' ] && [ -s '$D/s1-v.png' ] && ! ls -A '$D' | grep -q '\.tmp\.'"

# every feasible (model, inner solver) pair descends, at 2 ranks (ssor at 1: block SSOR is not feasible)
for model in gm hl tq-mult tq-add; do
  inners="jacobi mg fft exact"
  case $model in tq-*) inners="jacobi fft" ;; esac
  for inner in $inners; do
    run_np 2 $R -output "$D/e.h5" -restore_max_it 6 -restore_potential $model -restore_inner $inner -restore_sweeps 2 \
      && check "restore $model/$inner (2 sweeps, 2 ranks): the energy never increases" bash -c "$(declare -f values nonincreasing); nonincreasing '$D/e.h5'" \
      || fail "restore $model/$inner at 2 ranks" "$(cat "$D/err.txt")"
  done
  case $model in gm|tq-add) ;; *) continue ;; esac
  run_np 1 $R -output "$D/e.h5" -restore_max_it 6 -restore_potential $model -restore_inner ssor -restore_omega 1.5 \
    && check "restore $model/ssor (omega 1.5, 1 rank): the energy never increases" bash -c "$(declare -f values nonincreasing); nonincreasing '$D/e.h5'" \
    || fail "restore $model/ssor at 1 rank" "$(cat "$D/err.txt")"
done
check "ssor records rank_invariant = 0 (PCSOR is block SSOR in parallel)" bash -c "$(declare -f invariant); invariant '$D/e.h5' 0"
run_np 2 $R -output "$D/x.h5" -restore_max_it 2 -restore_inner exact
check "exact (CG + AMG) records rank_invariant = 0" bash -c "$(declare -f invariant); invariant '$D/x.h5' 0"
for inner in jacobi mg fft exact; do
  run_np 3 $S -output "$D/se.h5" -segment_inner $inner \
    && check "segment $inner (3 ranks): the energy never increases within a stage" bash -c "$(declare -f values stage_nonincreasing); stage_nonincreasing '$D/se.h5'" \
    || fail "segment $inner at 3 ranks" "$(cat "$D/err.txt")"
done

# deblurring: blur sigma 1 + noise 0.01, matrix-free K^T K
B="$R -restore_blur_sigma 1 -restore_noise_sigma 0.01 -restore_lambda 0.002 -restore_delta 0.03 -restore_mu 0.01 -restore_max_it 6"
for p in 1 3; do run_np "$p" $B -restore_inner fft -output "$D/b$p.h5" || fail "deblur fft at $p ranks" "$(cat "$D/err.txt")"; done
check "deblur gm/fft: the energy never increases and PSNR improves on the blurred input" bash -c "$(declare -f values nonincreasing attr); nonincreasing '$D/b1.h5' && awk -v a=\$(attr psnr '$D/b1.h5') -v b=\$(attr psnr_observed '$D/b1.h5') 'BEGIN { exit !(a > b) }'"
check "deblur gm/fft is identical at 1 and 3 ranks and says rank_invariant = 1" bash -c "$(declare -f invariant); h5diff --exclude-path /meta '$D/b1.h5' '$D/b3.h5' && invariant '$D/b3.h5' 1"
for inner in mg exact; do
  run_np 2 $B -restore_inner $inner -restore_boundary replicate -output "$D/bm.h5" \
    && check "deblur gm/$inner with replicate boundary (2 ranks): the energy never increases" bash -c "$(declare -f values nonincreasing); nonincreasing '$D/bm.h5'" \
    || fail "deblur $inner at 2 ranks" "$(cat "$D/err.txt")"
done

# RGB PNG input (8-bit): channels restored independently, an RGB PNG copy
run_np 2 -task restore -input jobs/data/BrainT1Slice.png -output "$D/rgb.h5" -restore_max_it 2 \
  && check "an RGB PNG gives /u of 217 x 181 x 3 and an RGB PNG copy" bash -c "h5dump -H -d /u '$D/rgb.h5' | grep -q '( 217, 181, 3 )' && [ -s '$D/rgb-u.png' ]" \
  || fail "restore of an RGB PNG" "$(cat "$D/err.txt")"
run_np 1 -task segment -input "$D/rgb-u.png" -output "$D/rgb2.h5" -segment_max_it 1 -segment_epsilon_final 2 \
  && check "the PNG copy reads back as an input of the same shape" bash -c "h5dump -H -d /v '$D/rgb2.h5' | grep -q '( 217, 181, 3 )'" \
  || fail "segment of a PNG copy" "$(cat "$D/err.txt")"

# options, help, logging
check "-help lists the restore options and the inner KSP's prefix" bash -c "mpirun -q -n 1 '$BOUNDOPT' -task restore -help | grep -q -- '-restore_inner <now rbgs' && mpirun -q -n 1 '$BOUNDOPT' -task restore -help | grep -q -- '-restore_u_ksp_type'"
run_np 2 $R -output "$D/log.h5" -restore_max_it 3 -restore_inner mg -restore_u_mg_levels_ksp_max_it 2 -restore_monitor -log_view
check "-log_view shows the outer-iteration events, -restore_monitor one line per iteration, and PETSc level options are accepted" bash -c "grep -q '^HQOuterStep' '$D/out.txt' && grep -q '^HQInnerSolve' '$D/out.txt' && [ \$(grep -c '^  restore ' '$D/out.txt') = 3 ] && h5dump -H -d /meta/timings/compute '$D/log.h5' >/dev/null"

# bad input: one line, exit 1, no file left behind
mkdir -p "$D/bad"
O="-output $D/bad/x.h5"
expect_error "a file that is not an image is refused" 1 "notimage.png: not an image" "$D/bad" 2 -task restore -input "$D/notimage.png" $O
expect_error "an image smaller than 3 x 3 is refused" 1 "2 x 2 pixels; expected at least 3 x 3" "$D/bad" 1 -task segment -input "$D/tiny.h5" $O
expect_error "epsilon <= 0 is refused" 1 "segment_epsilon: 0\\.?; expected epsilon > 0" "$D/bad" 1 $S $O -segment_epsilon 0
expect_error "lambda <= 0 is refused (restore)" 1 "restore_lambda: -1\\.?; expected lambda > 0" "$D/bad" 1 $R $O -restore_lambda -1
expect_error "lambda <= 0 is refused (segment)" 1 "segment_lambda: 0\\.?; expected lambda > 0" "$D/bad" 1 $S $O -segment_lambda 0
expect_error "a negative blur sigma is refused" 1 "restore_blur_sigma: -1\\.?; expected sigma >= 0" "$D/bad" 1 $R $O -restore_blur_sigma -1
expect_error "a negative noise sigma is refused" 1 "restore_noise_sigma: -0.5; expected sigma >= 0" "$D/bad" 1 $R $O -restore_noise_sigma -0.5
expect_error "sweeps < 1 is refused" 1 "restore_sweeps: 0; expected sweeps >= 1" "$D/bad" 1 $R $O -restore_sweeps 0
expect_error "fft with the replicate boundary is refused" 1 "fft with boundary replicate; expected boundary reflect" "$D/bad" 1 $R $O -restore_blur_sigma 1 -restore_boundary replicate -restore_inner fft
expect_error "a blur wider than the image is refused" 1 "restore_blur_sigma: 20\\.? needs a 60-pixel margin" "$D/bad" 1 $R $O -restore_blur_sigma 20 -restore_inner fft
expect_error "rbgs with a blur is refused" 1 "rbgs with a blur; expected fft, mg" "$D/bad" 1 $R $O -restore_blur_sigma 1
expect_error "an unknown inner solver is refused" 1 "restore_inner: 'gs'; expected exact, cg" "$D/bad" 1 $R $O -restore_inner gs
expect_error "a misspelt option is refused after the first iteration" 1 "option -restore_lamda: not used" "$D/bad" 2 $R $O -restore_lamda 1

# the example jobs run as they are (shortened by command-line overrides)
for job in denoise-camera-gm deblur-camera at-camera at-brain; do
  case $job in at-*) short="-segment_max_it 1 -segment_epsilon_final 2" ;; *) short="-restore_max_it 2" ;; esac
  run_np 1 "jobs/$job.yaml" -output "$D/job-$job.h5" $short \
    && check "jobs/$job.yaml runs and writes its results and PNG copies" bash -c "h5dump -H -d /u '$D/job-$job.h5' >/dev/null && [ -s '$D/job-$job-u.png' ]" \
    || fail "jobs/$job.yaml" "$(cat "$D/err.txt")"
done
check "jobs/denoise-camera-gm.yaml improves PSNR after 2 iterations" bash -c "$(declare -f attr); awk -v a=\$(attr psnr '$D/job-denoise-camera-gm.h5') -v b=\$(attr psnr_observed '$D/job-denoise-camera-gm.h5') 'BEGIN { exit !(a > b + 3) }'"
