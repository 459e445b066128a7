#!/usr/bin/env bash
# Integration: task fire-gauss (FIRE's linear Gaussian toy, spec losses.md section 4 (a)) gives the
# same file at 1, 2 and 3 ranks (samples keyed by (seed, sample id), exact sums), the file holds
# what the task promises, -help lists every option, and bad inputs are refused with one line.
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH
FG=(-task fire-gauss -fire_gauss_dim 8 -fire_gauss_n 1000 -fire_gauss_test_n 3000 -fire_gauss_iterations 80
    -fire_gauss_beta 1,8 -fire_gauss_at_eps 0.15,0.3 -fire_gauss_front_points 201 -seed 7)
for p in $RANKS; do run_np "$p" "${FG[@]}" -output "$D/fg$p.h5" || fail "fire-gauss at $p ranks" "$(cat "$D/err.txt")"; done
for p in 2 3; do check "fire-gauss: identical classifiers, accuracies and front at 1 and $p ranks" same_results "$D/fg1.h5" "$D/fg$p.h5"; done
check "fire-gauss: fronts, per-method points, Monte Carlo agreement and robustness gained by the regularisers" /usr/bin/python3 -c "
import h5py, numpy as np
f = h5py.File('$D/fg1.h5', 'r')
fc, fr = f['front/clean'][:], f['front/robust'][:]
assert fc.shape == (201,) and np.all(np.diff(fc) <= 1e-15) and np.all(np.diff(fr) >= -1e-15) and f.attrs['front_exact'] == 1
assert abs(f.attrs['bayes_clean'] - fc[0]) < 1e-15 and f['mu'].shape == (8,)
for m, k in (('ce', 1), ('at', 2), ('trades', 2), ('fire', 2)):
    g = f[m]
    assert g['weights'].shape == (k, 9) and g['history'].shape == (k, 80) and g['clean'].shape == (k,)
    c, r, cm, rm, gap = g['clean'][:], g['robust'][:], g['clean_mc'][:], g['robust_mc'][:], g['gap'][:]
    assert np.all(r <= c) and np.all(gap >= 0) and abs(g.attrs['min_gap'] - gap.min()) < 1e-15
    assert np.all(np.abs(cm - c) < 0.03) and np.all(np.abs(rm - r) < 0.03), (m, c, cm, r, rm)
    assert np.all(g['history'][:, -1] < g['history'][:, 0]) and abs(g['history'][0, 0] - np.log(2)) < 1e-12
    for i, w in enumerate(g['weights'][:]):   # closed form recomputed from the stored classifier
        from math import erfc, sqrt
        Phi = lambda t: 0.5 * erfc(-t / sqrt(2)); mu = f['mu'][:]; s = np.linalg.norm(w[:8])
        a = w[:8] @ mu; rr = 0.3 * np.abs(w[:8]).sum()
        assert abs(0.5 * (Phi((a + w[8]) / s) + Phi((a - w[8]) / s)) - c[i]) < 1e-12
        assert abs(0.5 * (Phi((a - rr + w[8]) / s) + Phi((a - rr - w[8]) / s)) - r[i]) < 1e-12
assert list(f['fire/param'][:]) == [1, 8] and list(f['at/param'][:]) == [0.15, 0.3]
assert f['fire/robust'][1] > f['ce/robust'][0] + 0.02 and f['trades/robust'][1] > f['ce/robust'][0] + 0.02"
run_np 1 "${FG[@]}" -fire_gauss_method fire -fire_gauss_seed 7 -seed 99 -output "$D/fire-only.h5"
check "fire-gauss: -fire_gauss_seed 7 reproduces the FIRE points of -seed 7" h5diff "$D/fg1.h5" "$D/fire-only.h5" /fire /fire
check "fire-gauss: -help lists every option with its default" bash -c "mpirun -q -n 1 '$BOUNDOPT' -task fire-gauss -help > '$D/help.txt' &&
  for o in method beta at_eps eps dim profile strong mu_strong mu_weak sigma n test_n seed iterations lr front_points monitor; do grep -Eq -- \"-fire_gauss_\$o:? <\" '$D/help.txt' || { echo \"missing \$o\"; exit 1; }; done"

O=$SCRATCH/o; mkdir -p "$O"
E=(-task fire-gauss -output "$O/f.h5" -fire_gauss_n 300 -fire_gauss_iterations 2)
expect_error "fire-gauss: an unknown method"      1 "option -fire_gauss_method: 'mart'; expected ce, at, trades or fire" "$O" 1 "${E[@]}" -fire_gauss_method fire,mart
expect_error "fire-gauss: a negative beta"        1 "option -fire_gauss_beta: '-1'; expected numbers >= 0" "$O" 3 "${E[@]}" -fire_gauss_beta 1,-1
expect_error "fire-gauss: a negative radius"      1 'option -fire_gauss_eps: -0\.1; expected a radius >= 0' "$O" 2 "${E[@]}" -fire_gauss_eps -0.1
expect_error "fire-gauss: more strong features than dimensions" 1 'option -fire_gauss_strong: 9; expected 0 <= strong <= dim = 8' "$O" 1 "${E[@]}" -fire_gauss_dim 8 -fire_gauss_strong 9
expect_error "fire-gauss: an unknown mean profile" 1 "option -fire_gauss_profile: 'cubic'; expected steps or linear" "$O" 1 "${E[@]}" -fire_gauss_profile cubic
expect_error "fire-gauss: sigma 0"                1 'option -fire_gauss_sigma: 0\.?; expected sigma > 0' "$O" 3 "${E[@]}" -fire_gauss_sigma 0
expect_error "fire-gauss: all class means 0"      1 'option -fire_gauss_mu_strong/mu_weak: 0\.?/0\.?; expected' "$O" 1 "${E[@]}" -fire_gauss_mu_strong 0 -fire_gauss_mu_weak 0
expect_error "fire-gauss: no samples"             1 'option -fire_gauss_n/test_n: 0/' "$O" 2 "${E[@]}" -fire_gauss_n 0
expect_error "fire-gauss: a bad seed"             1 "option -fire_gauss_seed: '-3'" "$O" 1 "${E[@]}" -fire_gauss_seed -3
expect_error "fire-gauss: an input file"          1 "option -input: '.*' is not used by task fire-gauss" "$O" 2 "${E[@]}" -input "$D/fg1.h5"
expect_error "fire-gauss: a misspelt option"      1 'fire_gauss_betas' "$O" 1 "${E[@]}" -fire_gauss_betas 1
expect_error "fire-gauss: no output"              1 'option -output: missing' "$O" 1 -task fire-gauss
