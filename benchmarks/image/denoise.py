"""Denoising quality and time: boundopt restore (every potential x inner solver) against
scikit-image denoise_tv_chambolle, camera.png + Gaussian noise sigma 0.1.

Both methods get the SAME noisy images, made here (numpy default_rng, not clipped) and handed to
boundopt as HDF5 /image with degrade off and `clean` the original.  Parameters (boundopt: lambda,
delta per potential with the rbgs solver; TV: weight) are picked by PSNR on the tuning seed, then
applied unchanged to the test seed.  One JSON line per case; the chosen parameters go to
$OUT/denoise-params.json (energy.py reuses gm's).
  BIN=build/bin /usr/bin/python3 benchmarks/image/denoise.py
Knobs: SOLVERS ("rbgs jacobi mg exact cg fft"), POTENTIALS ("tq-mult tq-add gm hl"), TOL (1e-5),
MAX_IT (200), TUNE_SEED (1), TEST_SEED (2), REPS (1: repetitions of each timed test case, best kept),
SHIFTS (3: moves of the 3 x 3 grid), REFINE (1: a finer 3 x 3 grid around the best point),
TUNE_ONLY (1: stop after tuning), PARAMS (a denoise-params.json to reuse instead of tuning).
"""
import json
import os
import time

import numpy as np
from skimage.restoration import denoise_tv_chambolle

from common import OUT, emit, load, load_png, psnr, rnd, run_boundopt, ssim, write_image_h5

SOLVERS = os.environ.get("SOLVERS", "rbgs jacobi mg exact cg fft").split()
POTENTIALS = os.environ.get("POTENTIALS", "tq-mult tq-add gm hl").split()
TOL, MAX_IT = float(os.environ.get("TOL", "1e-5")), int(os.environ.get("MAX_IT", "200"))
TUNE_SEED, TEST_SEED = int(os.environ.get("TUNE_SEED", "1")), int(os.environ.get("TEST_SEED", "2"))
REPS = int(os.environ.get("REPS", "1"))
SIGMA = 0.1
SINK = os.path.join(OUT, "denoise.jsonl")
# starting grids (lambda x delta, 3 x 3) per potential; when the best point lies on the grid's edge
# the grid moves one step that way (lambda x2, delta x sqrt 2), at most SHIFTS times (each new
# point is one run; points already run are reused)
GRID = {
    "gm": ([0.02, 0.04, 0.08], [0.1, 0.14, 0.2]),
    "hl": ([0.01, 0.02, 0.04], [0.03, 0.042, 0.06]),
    "tq-mult": ([0.04, 0.08, 0.16], [0.25, 0.35, 0.5]),
    "tq-add": ([0.04, 0.08, 0.16], [0.25, 0.35, 0.5]),
}
SHIFTS = int(os.environ.get("SHIFTS", "3"))
REFINE = int(os.environ.get("REFINE", "1"))
TV_WEIGHTS = [0.06, 0.08, 0.1, 0.12, 0.15]

clean = load_png("jobs/data/camera.png")
obs = {}
for tag, seed in (("tune", TUNE_SEED), ("test", TEST_SEED)):
    obs[tag] = clean + SIGMA * np.random.default_rng(seed).standard_normal(clean.shape)
    write_image_h5(os.path.join(OUT, "camera-noisy-%s.h5" % tag), obs[tag])


def boundopt(tag, potential, lam, delta, inner, name):
    args = ["-task", "restore", "-input", os.path.join(OUT, "camera-noisy-%s.h5" % tag),
            "-restore_clean", "jobs/data/camera.png", "-restore_potential", potential,
            "-restore_lambda", lam, "-restore_delta", delta, "-restore_inner", inner,
            "-restore_tol", TOL, "-restore_max_it", MAX_IT]
    r, _ = run_boundopt(args, 1, os.path.join(OUT, name + ".h5"))
    r["psnr_py"] = psnr(clean, r["u"])
    return r


def tv(img, weight):
    t0 = time.perf_counter()
    u = denoise_tv_chambolle(img, weight=weight)
    return u, time.perf_counter() - t0


# --- tuning seed (or PARAMS: a denoise-params.json of an earlier run, whose choice is reused) ---
params = {}
if os.environ.get("PARAMS"):
    params = json.load(open(os.environ["PARAMS"]))
    best_tv = params["tv"]["weight"]
    for k, v in params.items():
        emit(dict({"bench": "denoise", "stage": "tune", "method": "tv_chambolle" if k == "tv" else "boundopt", "potential": k, "reused_from": os.environ["PARAMS"]}, **v), SINK)
    POTENTIALS = [p for p in POTENTIALS if p in params]
    TUNED = True
else:
    TUNED = False
if not TUNED:
    best_tv = max(TV_WEIGHTS, key=lambda w: psnr(clean, tv(obs["tune"], w)[0]))
    params["tv"] = {"weight": best_tv, "psnr_tune": rnd(psnr(clean, tv(obs["tune"], best_tv)[0]))}
    emit({"bench": "denoise", "stage": "tune", "method": "tv_chambolle", "grid": TV_WEIGHTS, "weight": best_tv,
          "psnr_tune": params["tv"]["psnr_tune"]}, SINK)
for pot in [] if TUNED else POTENTIALS:
    lams, deltas = GRID[pot]
    scores = {}
    for shift in range(SHIFTS + 1):
        for lam in lams:
            for d in deltas:
                key = (round(lam, 6), round(d, 6))
                if key in scores:
                    continue
                try:
                    scores[key] = boundopt("tune", pot, lam, d, "rbgs", "tune-%s" % pot)["psnr_py"]
                except RuntimeError as e:
                    print(e, flush=True)
                    scores[key] = -1.0
        inside = {k: v for k, v in scores.items() if k[0] in map(lambda x: round(x, 6), lams) and k[1] in map(lambda x: round(x, 6), deltas)}
        (lam, d), ps = max(inside.items(), key=lambda kv: kv[1])
        li = [round(x, 6) for x in lams].index(lam)
        di = [round(x, 6) for x in deltas].index(d)
        edge = li in (0, 2) or di in (0, 2)
        if not edge or shift == SHIFTS:
            break
        if li != 1:
            lams = [x * (2.0 if li == 2 else 0.5) for x in lams]
        if di != 1:
            deltas = [x * (2 ** 0.5 if di == 2 else 2 ** -0.5) for x in deltas]
    if REFINE:  # one finer 3 x 3 grid around the best point (lambda x2^+-1/2, delta x2^+-1/4)
        for fl in (2 ** -0.5, 1.0, 2 ** 0.5):
            for fd in (2 ** -0.25, 1.0, 2 ** 0.25):
                key = (round(lam * fl, 6), round(d * fd, 6))
                if key not in scores:
                    try:
                        scores[key] = boundopt("tune", pot, key[0], key[1], "rbgs", "tune-%s" % pot)["psnr_py"]
                    except RuntimeError as e:
                        print(e, flush=True)
                        scores[key] = -1.0
        (lam, d), ps = max(scores.items(), key=lambda kv: kv[1])
    params[pot] = {"lambda": lam, "delta": d, "psnr_tune": rnd(ps)}
    emit({"bench": "denoise", "stage": "tune", "method": "boundopt", "potential": pot, "inner": "rbgs",
          "lambda_grid": [rnd(x, 5) for x in lams], "delta_grid": [rnd(x, 5) for x in deltas], "runs": len(scores), "lambda": lam, "delta": d, "psnr_tune": rnd(ps),
          "on_grid_edge": edge, "grid_psnr": {"%.4g/%.4g" % k: rnd(v, 3) for k, v in sorted(scores.items())}}, SINK)
if not TUNED:
    with open(os.path.join(OUT, "denoise-params.json"), "w") as f:
        json.dump(params, f, indent=1)
if os.environ.get("TUNE_ONLY"):
    raise SystemExit(0)

# --- test seed: the peer first, then every potential x solver, same noisy image ---
times = []
for _ in range(max(REPS, 1)):
    u_tv, t = tv(obs["test"], best_tv)
    times.append(t)
tv_psnr, tv_time = psnr(clean, u_tv), min(times)
emit({"bench": "denoise", "stage": "test", "method": "tv_chambolle", "weight": best_tv, "psnr": rnd(tv_psnr),
      "ssim": rnd(ssim(clean, u_tv)), "psnr_observed": rnd(psnr(clean, obs["test"])), "seconds": rnd(tv_time),
      "load": load()}, SINK)
for pot in POTENTIALS:
    for inner in SOLVERS:
        p = params[pot]
        try:
            runs = [boundopt("test", pot, p["lambda"], p["delta"], inner, "test-%s-%s" % (pot, inner)) for _ in range(max(REPS, 1))]
        except RuntimeError as e:
            emit({"bench": "denoise", "stage": "test", "method": "boundopt", "potential": pot, "inner": inner, "error": str(e)[-200:]}, SINK)
            continue
        r = min(runs, key=lambda r: r["compute_seconds"])
        emit({"bench": "denoise", "stage": "test", "method": "boundopt", "potential": pot, "inner": inner,
              "lambda": p["lambda"], "delta": p["delta"], "psnr": rnd(r["psnr_py"]), "psnr_boundopt": rnd(r["psnr"]),
              "ssim": rnd(r["ssim"]), "psnr_minus_tv": rnd(r["psnr_py"] - tv_psnr, 3),
              "within_0.3dB_of_tv": bool(r["psnr_py"] >= tv_psnr - 0.3), "outer_iterations": int(r["iterations"]),
              "converged": bool(r["converged"]), "inner_iterations": int(np.sum(r["inner_iterations"])),
              "compute_seconds": rnd(r["compute_seconds"]), "seconds_per_outer": rnd(r["compute_seconds"] / r["iterations"], 5),
              "time_ratio_vs_tv": rnd(r["compute_seconds"] / tv_time, 3), "load": load()}, SINK)
