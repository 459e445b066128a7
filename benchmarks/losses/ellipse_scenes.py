#!/usr/bin/env python3
"""PROMISE-like control scenes for the shape-descriptor experiment (spec losses.md section 5,
"Honest experiment": one textured ellipse per scene).  benchmarks/losses/README.md section 6,
seventh version, uses them to ask whether the descriptors' gap to CE on the composited
Fashion-MNIST scenes comes from the objects' shapes: here every foreground is one convex blob.

Scene s (numpy Generator PCG64 seeded with (seed, split, s), so a scene does not depend on how many
are made): a 96 x 96 crop of brick.png or grass.png (jobs/data/textures, CC0) rescaled to
[0.2, 0.8]; one ellipse, semi-axes uniform in [10, 24] px, angle uniform, centre uniform with
the ellipse inside the scene; inside it a smooth texture (white noise blurred with sigma 2, then
scaled to std 0.08) around a level uniform in [0.35, 0.65], so that neither the level nor the
background separates it; mask = the ellipse.  Features as features2d.h (the scenes task's
channel order: per sigma smooth, gradient, Laplacian, local variance; then x, y), computed here
with scipy.ndimage (half-sample reflection, Gaussian truncated at 3 sigma): on the composited
scenes' images they agree with the task's stored features within 5e-8 (float32 storage).  Writes /images, /masks (uint8), /features (S x H x W x F float32),
/feature_names, /fg_fraction: what train-seg reads.

  ellipse_scenes.py OUT.h5 COUNT {train|test} [SEED] [SIGMAS]
"""
import sys, os
import numpy as np, h5py
from PIL import Image
from scipy import ndimage

def textures():
    d = os.path.join(os.path.dirname(__file__), "..", "..", "jobs", "data", "textures")
    return [np.asarray(Image.open(os.path.join(d, t + ".png")).convert("L"), dtype=float) / 255 for t in ("brick", "grass")]

def scene(rng, tex, n=96):
    t = tex[rng.integers(len(tex))]
    y0, x0 = rng.integers(t.shape[0] - n + 1), rng.integers(t.shape[1] - n + 1)
    bg = t[y0:y0 + n, x0:x0 + n]
    bg = 0.2 + 0.6 * (bg - bg.min()) / max(bg.max() - bg.min(), 1e-12)
    a, b = rng.uniform(10, 24, size=2); th = rng.uniform(0, np.pi)
    r = max(a, b) + 1
    cy, cx = rng.uniform(r, n - 1 - r, size=2)
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    u = (xx - cx) * np.cos(th) + (yy - cy) * np.sin(th); v = -(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)
    m = (u / a) ** 2 + (v / b) ** 2 <= 1
    noise = ndimage.gaussian_filter(rng.standard_normal((n, n)), 2, mode="reflect")
    inside = rng.uniform(0.35, 0.65) + 0.08 * noise / noise.std()
    img = np.where(m, np.clip(inside, 0, 1), bg)
    return img, m.astype(np.uint8)

def features(img, sigmas):
    h, w = img.shape; ch, names = [], []
    for s in sigmas:
        S = ndimage.gaussian_filter(img, s, mode="reflect", truncate=3.0) if s > 0 else img
        P = np.pad(S, 1, mode="symmetric"); gx = (P[1:-1, 2:] - P[1:-1, :-2]) / 2; gy = (P[2:, 1:-1] - P[:-2, 1:-1]) / 2
        sp = max(s, 1)
        lap = sp * sp * (P[1:-1, 2:] + P[1:-1, :-2] + P[2:, 1:-1] + P[:-2, 1:-1] - 4 * S)
        G = lambda z: ndimage.gaussian_filter(z, sp, mode="reflect", truncate=3.0)
        var = np.maximum(G(img * img) - G(img) ** 2, 0)
        ch += [S, np.hypot(gx, gy), lap, var]
        names += ["%s s=%g c=0" % (k, s) for k in ("smooth", "gradient", "laplacian", "variance")]
    ch += [np.tile(np.arange(w) / (w - 1), (h, 1)), np.tile((np.arange(h) / (h - 1))[:, None], (1, w))]
    return np.stack(ch, -1), names + ["x", "y"]

def main():
    out, count, split = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 2026
    sigmas = [float(v) for v in (sys.argv[5] if len(sys.argv) > 5 else "1,2,4,8,16").split(",")]
    tex = textures(); I, M, X = [], [], []
    for s in range(count):
        rng = np.random.Generator(np.random.PCG64([seed, {"train": 0, "test": 1}[split], s]))
        img, m = scene(rng, tex); f, names = features(img, sigmas)
        I.append(img); M.append(m); X.append(f.astype(np.float32))
    with h5py.File(out + ".tmp", "w") as g:
        g["images"] = np.array(I); g["masks"] = np.array(M); g["features"] = np.array(X)
        g["feature_names"] = np.array(names, dtype="S32")  # fixed-length: what parallel HDF5 reads
        g["fg_fraction"] = np.array(M).reshape(count, -1).mean(1)
        g.attrs["source"] = "benchmarks/losses/ellipse_scenes.py: one textured ellipse on brick/grass (jobs/data/textures, CC0)"
        g.attrs["seed"] = seed; g.attrs["split"] = split
    os.replace(out + ".tmp", out)

if __name__ == "__main__":
    main()
