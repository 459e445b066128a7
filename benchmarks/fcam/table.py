#!/usr/bin/env python3
"""benchmarks/fcam/table.py RESULTS.h5 SCENES.h5 CAMS.h5 [FIRST] - one JSON line per method of a task-fcam
upscale result: PxAP (dataset level, with a 95% bootstrap interval over images, 1000 resamples,
seed 0), per-image AP, best-threshold IoU and MaxBoxAcc v1 (95% normal intervals), MaxBoxAcc v2,
and the paired differences to the bilinear CAM: per-image IoU (each method at its own best
threshold), per-image AP and box hit (v1, at each method's MaxBoxAcc threshold; images won/lost),
95% normal intervals of the mean difference; PxAP with a paired bootstrap interval (the same
resampled images for both methods).  The PxAP recomputed here from the stored
maps (float32) must agree with the task's to 1e-3 (a check of both); the table reports the task's value.
With FIRST, only the first FIRST scenes of the result are scored (to compare a run on a subset with
another run's same scenes): every metric is then recomputed here from the stored per-image rows
and maps (MaxBoxAcc v2 from the per-image box rows)."""
import json, sys
import h5py
import numpy as np

res, scenes, cams = (h5py.File(p, "r") for p in sys.argv[1:4])
n = int(res.attrs["scenes"]); sub = len(sys.argv) > 4 and int(sys.argv[4]) < n
if sub:
    n = int(sys.argv[4])
bins = int(res.attrs["bins"]); T = int(res.attrs["thresholds"])
gt = scenes["masks"][:n].reshape(n, -1) > 0
rng = np.random.default_rng(0)
boot = rng.integers(0, n, size=(1000, n))


def pxap(hf, hb):
    tp = np.cumsum(hf[::-1])[::-1].astype(float); fp = np.cumsum(hb[::-1])[::-1].astype(float)
    r = tp / tp[0]; p = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
    return float(np.sum((r - np.append(r[1:], 0.0)) * p))


def ci(x):
    return 1.96 * x.std(ddof=1) / np.sqrt(len(x))


base = None
for m in res.attrs["methods"].decode().split(","):
    g = res[m]; maps = g["maps"][:n]
    b = np.clip((maps * bins).astype(np.int64), 0, bins - 1)
    hf = np.stack([np.bincount(b[i][gt[i]], minlength=bins) for i in range(n)])
    hb = np.stack([np.bincount(b[i][~gt[i]], minlength=bins) for i in range(n)])
    px = pxap(hf.sum(0), hb.sum(0))
    assert sub or abs(px - g.attrs["pxap"]) < 1e-3, (m, px, g.attrs["pxap"])  # maps are stored as float32: a few pixels change bins
    bs = np.array([pxap(hf[k].sum(0), hb[k].sum(0)) for k in boot])
    iou = g["iou"][:n]; j = int(np.argmax(iou.mean(0))); per = iou[:, j]
    row = {"method": m, "images": n, "pxap": round(px if sub else float(g.attrs["pxap"]), 4), "pxap_ci95": [round(float(np.percentile(bs, 2.5)), 4), round(float(np.percentile(bs, 97.5)), 4)],
           "ap_image": round(float(g["ap"][:n].mean()), 4), "ap_image_ci95": round(float(ci(g["ap"][:n])), 4),
           "iou": round(float(per.mean()), 4), "iou_ci95": round(float(ci(per)), 4), "best_threshold": j / T,
           "maxboxacc_v1": round(float(g.attrs["maxboxacc_v1"]), 4), "maxboxacc_v1_ci95": round(float(g.attrs["ci95_maxboxacc_v1"]), 4),
           "maxboxacc_v2": round(float(g.attrs["maxboxacc_v2"]), 4)}
    if sub:
        v1 = (g["box_v1"][:n] >= 0.5).mean(0); k = int(np.argmax(v1)); a = v1[k]
        row["maxboxacc_v1"] = round(float(a), 4); row["maxboxacc_v1_ci95"] = round(float(1.96 * np.sqrt(a * (1 - a) / n)), 4)
        row["maxboxacc_v2"] = round(float(np.mean([(g["box_v2"][:n] >= dl).mean(0).max() for dl in (0.3, 0.5, 0.7)])), 4)
    v1 = g["box_v1"][:n] >= 0.5; hit = v1[:, int(np.argmax(v1.mean(0)))].astype(float)  # box hits at the method's MaxBoxAcc v1 threshold
    if base is None and m == "bilinear":
        base = (per, g["ap"][:n], hit, hf, hb, bs)
    elif base is not None:
        d = per - base[0]
        row["iou_minus_bilinear"] = round(float(d.mean()), 4); row["iou_minus_bilinear_ci95"] = round(float(ci(d)), 4)
        row["images_better_than_bilinear"] = int((d > 0).sum())
        d = g["ap"][:n] - base[1]
        row["ap_image_minus_bilinear"] = round(float(d.mean()), 4); row["ap_image_minus_bilinear_ci95"] = round(float(ci(d)), 4)
        d = hit - base[2]
        row["box_v1_hits_minus_bilinear"] = round(float(d.mean()), 4); row["box_v1_hits_minus_bilinear_ci95"] = round(float(ci(d)), 4)
        row["box_v1_won_lost"] = [int((d > 0).sum()), int((d < 0).sum())]
        dp = bs - np.array([pxap(base[3][k].sum(0), base[4][k].sum(0)) for k in boot])  # paired: the same resampled images
        row["pxap_minus_bilinear"] = round(px - pxap(base[3].sum(0), base[4].sum(0)), 4)
        row["pxap_minus_bilinear_ci95"] = [round(float(np.percentile(dp, 2.5)), 4), round(float(np.percentile(dp, 97.5)), 4)]
    print(json.dumps(row))
print(json.dumps({"classifier_accuracy": round(float(cams.attrs["accuracy"]), 4), "classifier_train_accuracy": round(float(cams.attrs["train_accuracy"]), 4),
                  "foreground_rate": round(float(gt.mean()), 4)}))
