"""Scale: gm denoising of a 4096 x 4096 image at 1 and 2 ranks: time per outer iteration and the
largest resident set per rank (/usr/bin/time -f %M on every rank, as benchmarks/fewshot.sh).

The image is camera.png upsampled 8x (bicubic, skimage.transform.resize) + Gaussian noise sigma
0.1 (seed 3), written once as HDF5 /image (float64, 128 MiB; boundopt replicates the input image
on every rank, image.h).  Each case runs OUTER outer iterations (tol 0) with the inner solver
given (compute = /meta/timings/compute: setup, iterations and the PSNR-free result gather); the peer is scikit-image denoise_tv_chambolle (1 thread) on the same image with
max_num_iter TV_IT, whose time per iteration is the comparison (both are one smoothing pass per
iteration over the image; the ratio says how the per-iteration costs compare, not the time to a
result).  One JSON line per case.
  BIN=build/bin /usr/bin/python3 benchmarks/image/scale.py
Knobs: RANKS ("1 2"), SOLVERS ("rbgs"), OUTER (3), TV_IT (10, 0 skips the peer), SIZE (4096),
SPLIT (1: also run 1 outer iteration; (T_OUTER - T_1) / (OUTER - 1) is the per-iteration cost
without the setup -- grid, matrix, solver -- that compute / OUTER spreads over the iterations).
"""
import os
import time

import numpy as np
from skimage.restoration import denoise_tv_chambolle
from skimage.transform import resize

from common import OUT, emit, load, load_png, rnd, run_boundopt, write_image_h5

RANKS = [int(x) for x in os.environ.get("RANKS", "1 2").split()]
SOLVERS = os.environ.get("SOLVERS", "rbgs").split()
OUTER, TV_IT, SIZE = int(os.environ.get("OUTER", "3")), int(os.environ.get("TV_IT", "10")), int(os.environ.get("SIZE", "4096"))
SPLIT = int(os.environ.get("SPLIT", "1"))
SINK = os.path.join(OUT, "scale.jsonl")

path = os.path.join(OUT, "camera-%d-noisy.h5" % SIZE)
clean = resize(load_png("jobs/data/camera.png"), (SIZE, SIZE), order=3, mode="reflect", anti_aliasing=False)
noisy = clean + 0.1 * np.random.default_rng(3).standard_normal(clean.shape)
if not os.path.exists(path):
    write_image_h5(path, noisy)

if TV_IT:
    t0 = time.perf_counter()
    denoise_tv_chambolle(noisy, weight=0.08, max_num_iter=TV_IT, eps=0)
    t_tv = (time.perf_counter() - t0) / TV_IT
    emit({"bench": "scale", "method": "tv_chambolle", "size": SIZE, "iterations": TV_IT, "seconds_per_iteration": rnd(t_tv), "load": load()}, SINK)
del clean, noisy
base = {}
for inner in SOLVERS:
    for p in RANKS:
        args = ["-task", "restore", "-input", path, "-restore_potential", "gm", "-restore_lambda", 0.04, "-restore_delta", 0.15,
                "-restore_inner", inner, "-restore_max_it", OUTER, "-restore_tol", 0]
        r, _ = run_boundopt(args, p, os.path.join(OUT, "scale-%s-%d.h5" % (inner, p)), rss=True)
        per = r["compute_seconds"] / r["iterations"]
        marginal = None
        if SPLIT and OUTER > 1:  # the same job with 1 outer iteration: setup vs per-iteration cost
            args1 = args[:]
            args1[args1.index("-restore_max_it") + 1] = 1
            r1, _ = run_boundopt(args1, p, os.path.join(OUT, "scale-%s-%d-1.h5" % (inner, p)))
            marginal = (r["compute_seconds"] - r1["compute_seconds"]) / (OUTER - 1)
        base.setdefault(inner, marginal or per)
        line = {"bench": "scale", "method": "boundopt", "inner": inner, "size": SIZE, "ranks": p, "outer_iterations": int(r["iterations"]),
                "compute_seconds": rnd(r["compute_seconds"]), "seconds_per_outer": rnd(per), "wall_seconds": rnd(r["wall_seconds"]),
                "compute_seconds_1_outer": rnd(r1["compute_seconds"]) if marginal else None,
                "seconds_per_outer_marginal": rnd(marginal), "setup_seconds": rnd(r1["compute_seconds"] - marginal) if marginal else None,
                "speedup_vs_first_ranks": rnd(base[inner] / (marginal or per), 3), "max_rss_bytes_per_rank": r["max_rss_bytes_per_rank"],
                "load": load()}
        if TV_IT:
            line["ratio_per_iteration_vs_tv"] = rnd((marginal or per) / t_tv, 3)
        emit(line, SINK)
