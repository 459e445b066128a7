#!/usr/bin/env python3
"""benchmarks/fcam/val_row.py RESULTS.h5 LABEL - one JSON line per method of a task-fcam upscale result
on the validation scenes (the task's own attributes: PxAP, per-image AP, best-threshold IoU,
MaxBoxAcc v1/v2), tagged with LABEL (the settings tried).  Used by benchmarks/fcam/validate.sh."""
import json, sys
import h5py

res = h5py.File(sys.argv[1], "r")
for m in res.attrs["methods"].decode().split(","):
    a = res[m].attrs
    print(json.dumps({"validation": sys.argv[2], "method": m, "images": int(res.attrs["scenes"]),
                      "pxap": round(float(a["pxap"]), 4), "ap_image": round(float(a["ap_mean"]), 4),
                      "iou": round(float(a["iou"]), 4), "maxboxacc_v1": round(float(a["maxboxacc_v1"]), 4),
                      "maxboxacc_v2": round(float(a["maxboxacc_v2"]), 4)}))
