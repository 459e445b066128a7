#!/usr/bin/python3
"""report.py - the fronts of a fire-gauss results file: one JSON line per (method, parameter), one
summary JSON line per method, a Markdown table (--table) and a PNG plot of the fronts (--png).

  /usr/bin/python3 benchmarks/fire_gauss/report.py RESULTS.h5 [--png fronts.png] [--table]

gap = how much both accuracies would have to gain to escape domination by the optimal front of
linear classifiers (0 = Pareto-optimal); the CE point's gap is the finite-sample floor (the
classifiers are trained on n samples and scored on the population, in closed form).
"""
import argparse
import json

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--png")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--case", default="", help="a name for the JSON lines")
    a = ap.parse_args()
    f = h5py.File(a.results, "r")
    eps = float(f.attrs["eps"])
    methods = [m for m in ("ce", "at", "trades", "fire") if m in f]
    floor = float(f["ce/gap"][0]) if "ce" in f else 0.0
    rows, summary = [], {}
    for m in methods:
        g = f[m]
        name = g.attrs["param_name"].decode() if isinstance(g.attrs["param_name"], bytes) else g.attrs["param_name"]
        par, c, r, cm, rm, gap = (g[k][:] for k in ("param", "clean", "robust", "clean_mc", "robust_mc", "gap"))
        for i in range(len(par)):
            row = {"bench": "fire_gauss", "case": a.case, "method": m, name: float(par[i]), "eps": eps, "clean": round(float(c[i]), 5),
                   "robust": round(float(r[i]), 5), "clean_mc": round(float(cm[i]), 5), "robust_mc": round(float(rm[i]), 5),
                   "gap": round(float(gap[i]), 5)}
            rows.append((m, name, row))
            print(json.dumps(row))
        # grid-independent summary: the smallest gap, and the stretch of the front that the method's
        # near-optimal points (gap <= max(2 x the finite-sample floor, 0.001)) span, as a fraction
        # of the front's clean-accuracy range (Bayes -> most robust)
        tol = max(2 * floor, 1e-3)
        near = gap <= tol
        span = max(0.0, min(c[near].max(), float(f.attrs["bayes_clean"])) - max(c[near].min(), float(f.attrs["robust_opt_clean"]))) if near.any() else 0.0
        frange = float(f.attrs["bayes_clean"] - f.attrs["robust_opt_clean"])
        summary[m] = {"bench": "fire_gauss_summary", "case": a.case, "method": m, "points": int(len(par)), "min_gap": round(float(gap.min()), 5),
                      "max_gap": round(float(gap.max()), 5), "max_robust": round(float(r.max()), 5), "near_optimal_tol": round(tol, 5),
                      "near_optimal_points": int(near.sum()), "front_span_covered": round(span / frange, 3) if frange > 0 else None,
                      "max_robust_near_optimal": round(float(r[near].max()), 5) if near.any() else None}
    for m in methods:
        print(json.dumps(summary[m]))
    # second order, KL(p||p') ~ p(1-p) dz^2 / 2 and arccos(BC)^2 ~ p(1-p) dz^2 / 4: FIRE at 2 beta ~ TRADES at beta
    if "fire" in f and "trades" in f:
        tb, fb = list(f["trades/param"][:]), list(f["fire/param"][:])
        pairs = [(i, fb.index(2 * b)) for i, b in enumerate(tb) if 2 * b in fb]
        if pairs:
            dc = max(abs(f["trades/clean"][i] - f["fire/clean"][j]) for i, j in pairs)
            dr = max(abs(f["trades/robust"][i] - f["fire/robust"][j]) for i, j in pairs)
            print(json.dumps({"bench": "fire_gauss_fire_2beta_vs_trades_beta", "case": a.case, "pairs": len(pairs),
                              "max_abs_clean_diff": round(float(dc), 5), "max_abs_robust_diff": round(float(dr), 5)}))
    print(json.dumps({"bench": "fire_gauss_front", "case": a.case, "eps": eps, "bayes_clean": round(float(f.attrs["bayes_clean"]), 5),
                      "bayes_robust": round(float(f.attrs["bayes_robust"]), 5), "robust_opt_clean": round(float(f.attrs["robust_opt_clean"]), 5),
                      "robust_opt_robust": round(float(f.attrs["robust_opt_robust"]), 5), "finite_sample_floor": round(floor, 5)}))
    if a.table:
        print("\n| method | parameter | clean | robust | clean (MC) | robust (MC) | gap to front |")
        print("|---|---|---|---|---|---|---|")
        for m, name, row in rows:
            print(f"| {m} | {name} {row[name]:g} | {row['clean']:.4f} | {row['robust']:.4f} | {row['clean_mc']:.4f} | {row['robust_mc']:.4f} | {row['gap']:.4f} |")
    if a.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7.5, 5.5))
        ax.plot(f["front/clean"][:], f["front/robust"][:], "k-", lw=2.5, label="optimal linear front (closed form)")
        style = {"ce": ("*", "tab:gray"), "at": ("s", "tab:green"), "trades": ("o", "tab:blue"), "fire": ("^", "tab:red")}
        for m in methods:
            g = f[m]
            mk, col = style[m]
            lab = {"ce": "CE", "at": "PGD-AT (training radius swept)", "trades": "TRADES (beta swept)", "fire": "FIRE (beta swept)"}[m]
            ax.plot(g["clean"][:], g["robust"][:], marker=mk, color=col, ls="-" if m != "ce" else "", ms=7 if m != "ce" else 12, alpha=0.85, label=lab)
            if m in ("trades", "fire"):
                for p, x, y in zip(g["param"][:], g["clean"][:], g["robust"][:]):
                    if p in (0.1, 1, 4, 16, 64):
                        ax.annotate(f"{p:g}", (x, y), textcoords="offset points", xytext=(4, -10 if m == "trades" else 4), fontsize=7, color=col)
        # inset: the front itself, where the near-optimal points are
        c0, c1 = float(f.attrs["robust_opt_clean"]), float(f.attrs["bayes_clean"])
        r0, r1 = float(f.attrs["bayes_robust"]), float(f.attrs["robust_opt_robust"])
        lo_c = min(float(f[m]["clean"][:].min()) for m in methods)
        if lo_c > c0 - 2 * (c1 - c0):  # the trained points stay near the front: no inset needed
            ins = None
        else:
            ins = ax.inset_axes([0.40, 0.05, 0.44, 0.38])

        if ins is not None:
            ins.plot(f["front/clean"][:], f["front/robust"][:], "k-", lw=2)
            for m in methods:
                mk, col = style[m]
                ins.plot(f[m]["clean"][:], f[m]["robust"][:], marker=mk, color=col, ls="", ms=5 if m != "ce" else 9, alpha=0.85)
            pad_c, pad_r = 0.15 * (c1 - c0), 0.15 * (r1 - r0)
            ins.set_xlim(c0 - pad_c, c1 + pad_c)
            ins.set_ylim(r0 - pad_r, r1 + pad_r)
            ins.tick_params(labelsize=7)
            ins.set_title("the optimal front, zoomed", fontsize=7)
            ins.grid(alpha=0.3)
        ax.set_xlabel("clean accuracy")
        ax.set_ylabel(f"robust accuracy (L-inf, eps = {eps:g})")
        prof = f.attrs["profile"].decode() if isinstance(f.attrs["profile"], bytes) else f.attrs["profile"]
        mu = f["mu"][:]
        ax.set_title(f"Linear Gaussian toy ({prof} profile, mu {mu.max():g}..{mu.min():g}, d = {len(mu)}, sigma = {float(f.attrs['sigma']):g}, n = {int(f.attrs['n'])})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left" if ins is not None else "lower left", fontsize=8)
        fig.tight_layout()
        fig.savefig(a.png, dpi=110)


if __name__ == "__main__":
    main()
