"""Ambrosio-Tortorelli segmentation (task segment) on BrainT1Slice.png and camera.png with the jobs'
parameters (jobs/at-brain.yaml, jobs/at-camera.yaml), per inner solver: time, outer iterations,
time per outer iteration; the peer is scikit-image chan_vese (default parameters) on the same
image, in grey (chan_vese takes one channel: the brain slice, stored as RGB, goes through
rgb2gray, while boundopt segments its three channels).  The v maps (rbgs) are copied to
benchmarks/image/at-<image>-v.png.  One JSON line per case.
  BIN=build/bin /usr/bin/python3 benchmarks/image/at.py
Knobs: SOLVERS ("rbgs mg"), REPS (1; best time kept).
"""
import os
import shutil
import time

import numpy as np
from skimage.color import rgb2gray
from skimage.segmentation import chan_vese

from common import OUT, ROOT, emit, load, load_png, rnd, run_boundopt

SOLVERS = os.environ.get("SOLVERS", "rbgs mg").split()
REPS = max(int(os.environ.get("REPS", "1")), 1)
SINK = os.path.join(OUT, "at.jsonl")
CASES = (("brain", "jobs/at-brain.yaml", "jobs/data/BrainT1Slice.png"), ("camera", "jobs/at-camera.yaml", "jobs/data/camera.png"))

for name, job, png in CASES:
    img = load_png(png)
    grey = rgb2gray(img) if img.ndim == 3 else img
    times = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        seg = chan_vese(grey)
        times.append(time.perf_counter() - t0)
    t_cv = min(times)
    emit({"bench": "at", "image": name, "method": "chan_vese", "shape": list(img.shape), "seconds": rnd(t_cv),
          "foreground_fraction": rnd(float(np.mean(seg)), 3), "load": load()}, SINK)
    for inner in SOLVERS:
        out = os.path.join(OUT, "at-%s-%s.h5" % (name, inner))
        runs = [run_boundopt([job, "-segment_inner", inner], 1, out)[0] for _ in range(REPS)]
        r = min(runs, key=lambda r: r["compute_seconds"])
        v = r["v"]
        emit({"bench": "at", "image": name, "method": "boundopt", "inner": inner, "outer_iterations": int(r["iterations"]),
              "eps_stages": int(len(np.unique(r["epsilon"]))), "inner_iterations": int(np.sum(r["inner_iterations"])),
              "compute_seconds": rnd(r["compute_seconds"]), "seconds_per_outer": rnd(r["compute_seconds"] / r["iterations"], 5),
              "v_min": rnd(float(v.min())), "v_max": rnd(float(v.max())), "edge_fraction_v_below_0.5": rnd(float(np.mean(v < 0.5)), 4),
              "time_ratio_vs_chan_vese": rnd(r["compute_seconds"] / t_cv, 3), "load": load()}, SINK)
        if inner == "rbgs":
            shutil.copyfile(out[:-3] + "-v.png", os.path.join(ROOT, "benchmarks", "image", "at-%s-v.png" % name))
