#!/usr/bin/python3
"""model.py - project boundopt's time per iteration to 1,024 ranks with an alpha-beta model.

    /usr/bin/python3 benchmarks/scaling/model.py OUT        (OUT as written by run.sh)

MEASURED inputs (OUT/measured.jsonl, bench_kmeans on this machine, 1 rank unless said):
  * K-means iteration (means + assignment, one pass), N x 128 floats, K = 1000: seconds per row;
  * bound iteration on a kNN graph: W*Y seconds per (edge x K), the rest of the step and energy
    per (row x K), edges per row; ghost rows per rank at 2 ranks (to check the ghost model);
  * few-shot seconds per task (OUT/jobs-fewshot, 1 rank).
MODELLED (everything at P > 2, and every communication term):
  T(P) = compute(P) + comm(P), compute = measured seconds per unit x work per rank (perfect
  division of rows or tasks over ranks, same per-core rate as measured here), and comm from the
  alpha-beta model (alpha s per message, beta s per byte) with the collective costs of Thakur,
  Rabenseifner and Gropp, "Optimization of collective communication operations in MPICH",
  IJHPCA 19(1), 2005:
    allreduce of m bytes (Rabenseifner, large m): 2 log2(P) alpha + 2 (P-1)/P m beta
    allreduce of a scalar (recursive doubling):     log2(P) (alpha + 16 beta)
    allgather of m bytes in all (ring):              (P-1) alpha + (P-1)/P m beta
    ghost exchange: alpha per neighbour rank + beta x bytes received (sends overlap, full duplex)
  K-means: the (K D + K) exact sums are 128-bit integers (16 bytes each, reduce.h), plus 3 scalar
  reductions (changes, max |x|, energy).
  SLK (one bound iteration, the inner loop): a ghost exchange of G(P) rows of K doubles, plus 2
  scalar reductions.  G(P) for the rows in the file's order (no locality: what the measured
  Fashion-MNIST and letters graphs show) is the expected number of distinct remote rows among
  N/P x e (P-1)/P random neighbours:  G = R (1 - exp(-(N/P) e (P-1)/P / R)),  R = N - N/P, with
  as many messages as neighbour ranks (at most P-1).  "partitioned": rows renumbered so that
  neighbours share a rank (a graph partitioner), G = GHOST_FRACTION x N/P rows from
  PARTITION_NEIGHBOURS ranks: an ASSUMPTION, not measured (boundopt does not renumber today).
  Few-shot: T tasks over P ranks (ceil(T/P) per rank), the novel rows allgathered once (they are
  replicated on every rank), 2 exact sums.
Defaults (inputs; environment variables override): ALPHA = 1.5e-6 s, BETA = 1 / 24e9 s/B: one
HDR InfiniBand link (200 Gb/s signalling, ~24 GB/s for MPI payload; small-message MPI latency is
~1 us on HDR per the MVAPICH/OSU published numbers, 1.5 us adds the switch hops of a fat tree).
N = 1e8, D = 128, K = 1000, knn graph degree from the measurement, FEWSHOT_TASKS = 100000,
FEWSHOT_NOVEL_ROWS = 1e6, GHOST_FRACTION = 0.05, PARTITION_NEIGHBOURS = 8, COMPUTE_SPEEDUP = 1
(divides every measured compute time: the cluster's cores against this loaded 2-core VM).
Writes OUT/model.md (tables) and OUT/model.png.
"""
import json
import math
import os
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else "benchmarks/out/scaling"
env = lambda k, d: float(os.environ.get(k, d))
ALPHA, BETA = env("ALPHA", 1.5e-6), env("BETA", 1.0 / 24e9)
N, D, K = env("N", 1e8), env("D", 128), env("K", 1000)
TASKS, NOVEL = env("FEWSHOT_TASKS", 1e5), env("FEWSHOT_NOVEL_ROWS", 1e6)
GHOST_FRACTION, PART_NBR = env("GHOST_FRACTION", 0.05), env("PARTITION_NEIGHBOURS", 8)
SPEEDUP = env("COMPUTE_SPEEDUP", 1.0)  # cores this much faster than the ones measured here
PS = [2 ** i for i in range(11)]


def measured():
    m = {}
    with open(os.path.join(OUT, "measured.jsonl")) as f:
        for line in f:
            j = json.loads(line)
            m[(j["bench"], j["case"], j["ranks"])] = j
    return m


def fewshot_task_seconds():
    """Compute seconds per task at 1 rank (median of the strong runs), from the jobs' table."""
    rows = []
    with open(os.path.join(OUT, "jobs-fewshot", "scaling.tsv")) as f:
        next(f)
        for line in f:
            kind, ranks, size, read, compute, write, its, name = line.rstrip("\n").split("\t")
            if kind == "strong" and ranks == "1":
                rows.append(float(compute))
    rows.sort()
    return rows[len(rows) // 2] / 400.0  # run.sh's strong few-shot job runs 400 tasks


def allreduce(m, p):
    return 0.0 if p == 1 else 2 * math.log2(p) * ALPHA + 2 * (p - 1) / p * m * BETA


def scalar(p):
    return 0.0 if p == 1 else math.log2(p) * (ALPHA + 16 * BETA)


def ghosts_random(p, e, n=None):
    n = N if n is None else n
    if p == 1:
        return 0.0, 0
    local, remote = n / p, n - n / p
    g = remote * (1 - math.exp(-local * e * (p - 1) / p / remote))
    return g, min(p - 1, local * e)


def main():
    m = measured()
    it1 = m[("kmeans_kernels", "iteration", 1)]
    it2 = m.get(("kmeans_kernels", "iteration", 2))
    b1 = m[("bound", "bound_iteration", 1)]
    b2 = m.get(("bound", "bound_iteration", 2))
    km_row = it1["seconds"] / it1["n"] / SPEEDUP                     # s per row at D=128, K=1000 (measured)
    km_scale = (D * K) / (it1["d"] * it1["k"])             # 1 when the measured shape is the projected one
    e = b1["edges"] / b1["n"]                              # stored edges per row (measured graph)
    spmm_unit = b1["spmm_seconds"] / (b1["edges"] * b1["k"]) / SPEEDUP                                 # s per edge x K
    step_unit = max(0.0, b1["seconds"] - b1["spmm_seconds"] - b1["gather_seconds"]) / (b1["n"] * b1["k"]) / SPEEDUP  # s per row x K
    fs_task = fewshot_task_seconds() * D / 12.0 / SPEEDUP            # measured at D = 12, scaled linearly to D (assumption)

    lines = []
    w = lines.append
    w("# Projected time per iteration (MODELLED from rates MEASURED here)\n")
    w(f"N = {N:,.0f}, D = {D:.0f}, K = {K:.0f}; alpha = {ALPHA:.2e} s, beta = {BETA:.2e} s/B ({1 / BETA / 1e9:.1f} GB/s); compute times divided by COMPUTE_SPEEDUP = {SPEEDUP:g}.\n")
    w("Measured inputs (this machine, 1 rank, see measured.jsonl):\n")
    w(f"* K-means iteration (means + assignment) at N = {it1['n']:,}, D = {it1['d']}, K = {it1['k']}: {it1['seconds']:.3f} s = {km_row * 1e6:.2f} us per row ({it1['gflops']:.1f} GFlop/s)"
      + (f"; at 2 ranks {it2['seconds']:.3f} s (efficiency {it1['seconds'] / (2 * it2['seconds']):.2f})" if it2 else "") + "\n")
    w(f"* bound iteration on the letters kNN graph (N = {b1['n']:,}, {e:.2f} stored edges per row, K = {b1['k']}): {b1['seconds'] * 1e3:.2f} ms; W*Y {spmm_unit * 1e9:.2f} ns per edge x K, step + energy {step_unit * 1e9:.2f} ns per row x K"
      + (f"; at 2 ranks {b2['seconds'] * 1e3:.2f} ms (efficiency {b1['seconds'] / (2 * b2['seconds']):.2f}), ghost rows {b2['ghost_rows_max']:,} of {b2['n'] // 2:,} per rank ({b2['ghost_rows_max'] / (b2['n'] / 2):.0%}), {b2['bytes_per_iteration']:,} bytes per iteration in all" if b2 else "") + "\n")
    if b2:
        pred, _ = ghosts_random(2, e, b2["n"])
        w(f"* ghost model check at 2 ranks on that graph: {pred:,.0f} rows predicted, {b2['ghost_rows_max']:,} measured\n")
    w(f"* few-shot: {fewshot_task_seconds() * 1e3:.2f} ms per task (laplacianshot + tim-adm, D = 12), taken as {fs_task * 1e3:.2f} ms at D = {D:.0f} (linear in D: an assumption)\n")

    w(f"* bytes per iteration (from the code, not a measurement): a K-means iteration allreduces (K D + K) x 16 B = {(K * D + K) * 16 / 1e6:.2f} MB of exact 128-bit sums and 3 scalars; "
      f"a bound iteration receives G(P) x K x 8 B of ghost rows per rank and reduces 2 scalars; few-shot allgathers the novel rows once ({NOVEL:,.0f} x {D:.0f} x 4 B = {NOVEL * D * 4 / 1e9:.2f} GB to every rank)\n")
    rows = []
    for p in PS:
        km_comp = km_row * km_scale * N / p
        km_comm = allreduce((K * D + K) * 16, p) + 3 * scalar(p)
        b_comp = (spmm_unit * e + step_unit) * K * N / p
        g, msgs = ghosts_random(p, e)
        b_comm_rand = (msgs * ALPHA + g * K * 8 * BETA) + 2 * scalar(p) if p > 1 else 0.0
        gp = 0.0 if p == 1 else GHOST_FRACTION * N / p
        b_comm_part = (min(p - 1, PART_NBR) * ALPHA + gp * K * 8 * BETA) + 2 * scalar(p) if p > 1 else 0.0
        fs_comp = fs_task * math.ceil(TASKS / p)  # whole tasks per rank
        fs_comm = 0.0 if p == 1 else (p - 1) * ALPHA + (p - 1) / p * NOVEL * D * 4 * BETA + 2 * scalar(p)
        rows.append(dict(p=p, km=(km_comp, km_comm), brand=(b_comp, b_comm_rand), bpart=(b_comp, b_comm_part), fs=(fs_comp, fs_comm),
                         ghosts=g, mem_y=N / p * K * 8 * 3, mem_ghost=g * K * 8))
    base = rows[0]

    def eff(r, key):
        c, m_ = r[key]
        c1, m1 = base[key]
        return (c1 + m1) / (r["p"] * (c + m_))

    w("\n| ranks | K-means: compute s | comm s | efficiency | SLK bound it., file order: compute s | comm s | efficiency | ghost rows per rank | Y+A+WY / ghosts GB per rank | SLK bound it., partitioned: comm s | efficiency | few-shot 1e5 tasks: s | efficiency |\n")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    for r in rows:
        w(f"| {r['p']} | {r['km'][0]:.4g} | {r['km'][1]:.3g} | {eff(r, 'km'):.2f} | {r['brand'][0]:.4g} | {r['brand'][1]:.3g} | {eff(r, 'brand'):.2f} | {r['ghosts']:,.0f} | "
          f"{r['mem_y'] / 1e9:.1f} / {r['mem_ghost'] / 1e9:.1f} | {r['bpart'][1]:.3g} | {eff(r, 'bpart'):.2f} | {sum(r['fs']):.4g} | {eff(r, 'fs'):.2f} |\n")
    w("\nEfficiency = T(1) / (P T(P)) of the modelled times; at P = 1 and 2 the compute column is the measured rate times the work, the rest is model.\n")
    suffix = os.environ.get("MODEL_SUFFIX", "")
    with open(os.path.join(OUT, f"model{suffix}.md"), "w") as f:
        f.writelines(lines)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.2))
    series = [("km", "K-means iteration"), ("brand", "SLK bound iteration (file order)"), ("bpart", "SLK bound iteration (partitioned, assumed)"), ("fs", "few-shot, 1e5 tasks (whole run)")]
    for key, label in series:
        ax[0].plot(PS, [sum(r[key]) for r in rows], "o-", label=label)
        ax[0].plot(PS[1:], [r[key][1] for r in rows[1:]], ":", color=ax[0].lines[-1].get_color(), label="  its communication")
        ax[1].plot(PS, [eff(r, key) for r in rows], "o-", label=label)
    ax[0].set_yscale("log")
    ax[0].set_ylabel("seconds (modelled)")
    ax[0].set_title(f"N = 1e8, D = {D:.0f}, K = {K:.0f}: time per iteration")
    ax[1].set_ylabel("T(1) / (P T(P))")
    ax[1].set_title(f"parallel efficiency (alpha {ALPHA * 1e6:.1f} us, {1 / BETA / 1e9:.0f} GB/s)")
    ax[1].set_ylim(0, 1.05)
    for a in ax:
        a.set_xscale("log", base=2)
        a.set_xticks(PS, [str(p) for p in PS])
        a.set_xlabel("ranks")
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, f"model{suffix}.png"), dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
