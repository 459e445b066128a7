#!/usr/bin/python3
"""scaling_report.py - the table and plot of slurm/scaling.sh.

    python3 slurm/scaling_report.py scaling.tsv scaling.md scaling.png

scaling.tsv has one line per run (kind strong|weak, ranks, size, read, compute, write seconds,
iterations or empty, file).  For each kind and rank count the median over the repetitions is
taken; strong speed-up is T(P0) / T(P) with P0 the fewest ranks measured, efficiency
speed-up * P0 / P; weak efficiency is T(P0) / T(P).  T is the compute phase, per outer iteration
when the results record iterations (cluster); "total" adds read and write (whole runs).  Needs matplotlib for the PNG
only (the table is written without it).
"""
import statistics
import sys


def load(path):
    runs = {}
    with open(path) as f:
        next(f)
        for line in f:
            kind, ranks, size, read, compute, write, its, _ = line.rstrip("\n").split("\t")
            if not compute:
                continue
            key = (kind, int(ranks))
            r = runs.setdefault(key, {"size": size, "read": [], "compute": [], "write": [], "its": [], "per_it": []})
            r["read"].append(float(read or 0))
            r["compute"].append(float(compute))
            r["its"].append(int(its) if its else 0)
            r["per_it"].append(float(compute) / int(its) if its else float(compute))
            r["write"].append(float(write or 0))
    return runs


def rows(runs, kind):
    ps = sorted(p for k, p in runs if k == kind)
    if not ps:
        return []
    out = []
    med = lambda p, what: statistics.median(runs[(kind, p)][what])
    p0 = ps[0]
    t0, tot0 = med(p0, "per_it"), med(p0, "read") + med(p0, "compute") + med(p0, "write")
    for p in ps:
        t = med(p, "per_it")
        tot = med(p, "read") + med(p, "compute") + med(p, "write")
        if kind == "strong":
            s, stot = t0 / t, tot0 / tot
            e, etot = s * p0 / p, stot * p0 / p
        else:
            s, stot = t0 / t * p / p0, tot0 / tot * p / p0  # scaled speed-up
            e, etot = t0 / t, tot0 / tot
        out.append(dict(ranks=p, size=runs[(kind, p)]["size"], reps=len(runs[(kind, p)]["compute"]),
                        read=med(p, "read"), compute=med(p, "compute"), write=med(p, "write"), total=tot,
                        its=runs[(kind, p)]["its"][0], per_it=t,
                        speedup=s, efficiency=e, speedup_total=stot, efficiency_total=etot))
    return out


def main():
    tsv, md, png = sys.argv[1:4]
    runs = load(tsv)
    tables = {k: rows(runs, k) for k in ("strong", "weak")}
    with open(md, "w") as f:
        for kind, rs in tables.items():
            if not rs:
                continue
            per = any(r["its"] for r in rs)
            f.write(f"\n{kind} scaling (medians; T = compute {'seconds per outer iteration' if per else 'phase'}, total = read + compute + write; "
                    f"{'speed-up T(P0)/T(P), efficiency speed-up*P0/P' if kind == 'strong' else 'efficiency T(P0)/T(P)'})\n\n")
            f.write("| ranks | size | runs | read s | compute s | write s | total s | iterations | T s | speed-up | efficiency | speed-up (total) | efficiency (total) |\n")
            f.write("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
            for r in rs:
                f.write(f"| {r['ranks']} | {r['size']} | {r['reps']} | {r['read']:.3f} | {r['compute']:.3f} | {r['write']:.3f} | {r['total']:.3f} | {r['its'] or '-'} | {r['per_it']:.4f} | "
                        f"{r['speedup']:.2f} | {r['efficiency']:.2f} | {r['speedup_total']:.2f} | {r['efficiency_total']:.2f} |\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"scaling_report: matplotlib missing, no plot; expected python3-matplotlib (Debian) for {png} ({md} is written)", file=sys.stderr)
        return 0
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    for kind, rs in tables.items():
        if not rs:
            continue
        p = [r["ranks"] for r in rs]
        ax[0].plot(p, [r["per_it"] for r in rs], "o-", label=f"{kind}: T (compute{' / iteration' if any(r['its'] for r in rs) else ''})")
        ax[0].plot(p, [r["total"] for r in rs], "s--", label=f"{kind}: total")
        ax[1].plot(p, [r["speedup"] for r in rs], "o-", label=f"{kind} ({'speed-up' if kind == 'strong' else 'scaled speed-up'})")
        ax[2].plot(p, [r["efficiency"] for r in rs], "o-", label=kind)
    allp = sorted({p for _, p in runs})
    ax[1].plot(allp, [q / allp[0] for q in allp], "k:", label="ideal")
    ax[2].axhline(1.0, color="k", linestyle=":", label="ideal")
    for a, title, ylabel in zip(ax, ("time", "speed-up", "efficiency"), ("seconds", "T(P0) / T(P)", "")):
        a.set_xscale("log", base=2)
        a.set_xticks(allp, [str(q) for q in allp])
        a.set_xlabel("ranks")
        a.set_title(title)
        a.set_ylabel(ylabel)
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    ax[2].set_ylim(0, 1.2)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
