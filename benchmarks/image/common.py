"""Shared helpers of the image benchmarks (benchmarks/image/*.py): run boundopt, read its results
file, write the observed images that boundopt and the scikit-image peers both get, print JSON lines.

Environment: BIN (folder of boundopt, default bin), OUT (scratch folder, default
benchmarks/out/image, git-ignored), RANKS (where a script runs at one rank count: 1).
"""
import json
import os
import subprocess
import sys
import time

import h5py
import numpy as np
from skimage import io
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("BIN", "bin")
OUT = os.environ.get("OUT", os.path.join(ROOT, "benchmarks", "out", "image"))
os.makedirs(OUT, exist_ok=True)
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")


def load_png(path):
    """A PNG as float64 in [0,1] (grey stays 2-D)."""
    img = io.imread(os.path.join(ROOT, path))
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    return img.astype(np.float64) / scale


def write_image_h5(path, img):
    """HDF5 /image as boundopt reads it (float64, not clipped: the noisy observation as is)."""
    with h5py.File(path, "w") as f:
        f.create_dataset("/image", data=np.ascontiguousarray(img, dtype=np.float64))


def psnr(ref, x):
    return float(peak_signal_noise_ratio(ref, x, data_range=1.0))


def ssim(ref, x):
    return float(structural_similarity(ref, x, data_range=1.0))


def load():
    return float(open("/proc/loadavg").read().split()[0])


def run_boundopt(args, ranks=1, output=None, rss=False, timeout=None):
    """mpirun -n ranks boundopt ARGS -output OUTPUT; returns (results dict, printed lines).
    With rss, every rank runs under /usr/bin/time and the largest maxrss (bytes) is returned too."""
    cmd = ["mpirun", "-q", "--oversubscribe", "-n", str(ranks)]
    if rss:
        cmd += ["/usr/bin/time", "-f", "maxrss_kb %M"]
    cmd += [os.path.join(BIN, "boundopt")] + [str(a) for a in args] + ["-output", output]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if p.returncode:
        raise RuntimeError("boundopt: bench: %s failed (%d): %s" % (" ".join(cmd[-12:]), p.returncode, p.stderr.strip()[-300:]))
    r = read_results(output if os.path.isabs(output) else os.path.join(ROOT, output))
    r["wall_seconds"] = wall
    if rss:
        kb = [int(l.split()[1]) for l in (p.stdout + p.stderr).splitlines() if l.startswith("maxrss_kb")]
        r["max_rss_bytes_per_rank"] = max(kb) * 1024 if kb else None
    return r, p.stdout


def read_results(path):
    """The datasets, root attributes, compute time and rank_invariant of a results file."""
    r = {}
    with h5py.File(path, "r") as f:
        for k in ("u", "v", "energy", "inner_iterations", "energy_before", "epsilon"):
            if k in f:
                r[k] = f[k][()]
        for k, v in f["/"].attrs.items():  # attributes named like a dataset (segment's epsilon) get "attr_"
            r[k if k not in r else "attr_" + k] = v.decode() if isinstance(v, bytes) else (v.item() if hasattr(v, "item") else v)
        r["compute_seconds"] = float(f["/meta/timings/compute"][()])
        if "/meta/rank_invariant" in f:
            r["rank_invariant"] = int(f["/meta/rank_invariant"][()])
    return r


def emit(obj, sink=None):
    """One JSON line on stdout (and appended to sink)."""
    line = json.dumps(obj, sort_keys=False)
    print(line, flush=True)
    if sink:
        with open(sink, "a") as f:
            f.write(line + "\n")


def rnd(x, n=4):
    return None if x is None else float(round(x, n))
