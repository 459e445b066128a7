"""cluster_table.py - the clustering JSON lines (benchmarks/cluster.sh) as the Markdown tables of
benchmarks/README.md.

    /usr/bin/python3 benchmarks/cluster_table.py [benchmarks/out/results.jsonl]
"""
import json
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "benchmarks/out/results.jsonl"
rows = [json.loads(line) for line in open(path) if line.strip()]


def sel(bench):
    return [r for r in rows if r.get("bench") == bench]


def f(v, fmt):
    return "-" if v is None else format(v, fmt)


kk = sel("kmeans_kernels")
if kk:
    print("| ranks | kernel | seconds | GFlop/s | X GB/s | stream s | stream GB/s | ratio to stream | CPU-time ratio | sgemm per tile s | load |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in kk:
        print(f"| {r['ranks']} | {r['case']} | {r['seconds']:.4f} | {f(r['gflops'] or None, '.2f')} | {r['x_gb_per_s']:.2f} | {r['peer_seconds']:.4f} | "
              f"{r['peer_gb_per_s']:.2f} | {r['ratio']:.2f} | {f(r.get('cpu_ratio'), '.2f')} | {r['sgemm_tile_seconds']:.4f} | {r['load']:.2f} |")
    print()

ki = sel("kmeans_iteration")
if ki:
    print("| boundopt (ranks) | s / iteration | peer | peer s / iteration | ratio | objective after 21 assignments, rel. diff to boundopt | load |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for r in ki:
        print(f"| {r['case']} ({r['ranks']}) | {r['seconds']:.4f} | {r['peer']} | {r['peer_seconds']:.4f} | {r['ratio']:.2f} | "
              f"{r['objective_rel_diff']:.1e} | {r['load']:.2f} |")
    print()

kl = sel("kmeans_large")
if kl:
    print("| ranks | N x D, K | assign s | GFlop/s | peer | peer s | peer GFlop/s | ratio | load |")
    print("|---:|---|---:|---:|---|---:|---:|---:|---:|")
    for r in kl:
        print(f"| {r['ranks']} | {r['n']:,} x {r['d']}, {r['k']} | {r['seconds']:.3f} | {r['gflops']:.1f} | {r['peer']} ({r['peer_rows']} rows) | "
              f"{r['peer_seconds']:.3f} | {r['peer_gflops']:.1f} | {r['ratio']:.2f} | {r['load']:.2f} |")
    print()

kn = sel("knn")
if kn:
    print("| ranks | boundopt compute s | effective GFlop/s (2 N^2 D / s) | peer | peer s | ratio | FAISS neighbours in boundopt's rows | load |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|")
    for r in kn:
        print(f"| {r['ranks']} | {r['seconds']:.1f} | {r['effective_gflops']:.0f} | {r['peer']} | {r['peer_seconds']:.1f} | {r['ratio']:.2f} | {r['peer_neighbours_in_graph']:.4f} | {r['load']:.2f} |")
    print()

cr = sel("cluster_run")
if cr:
    print("| job (ranks) | compute s | iterations | s / iteration | NMI | NMI geo. | ACC | empty re-seeds | lambda | knn | sklearn s (its) | ratio | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in cr:
        lam = r["lambda"] if r["method"].startswith("slk") else None
        print(f"| {r['case']} ({r['ranks']}) | {r['seconds']:.1f} | {r['iterations']}{'' if r['converged'] else ' (cap)'} | {r['seconds_per_iteration']:.3f} | "
              f"{r['nmi']:.4f} | {r['nmi_geometric']:.4f} | {r['acc']:.4f} | {r['empty_reseeds']} | {f(lam, 'g')} | {r['knn'] if lam is not None else '-'} | "
              f"{r['peer_seconds']:.2f} ({r['peer_iterations']}) | {r['ratio']:.2f} | {r['load']:.2f} |")
    sk = cr[0]
    print(f"\nscikit-learn from the same centroids: NMI {sk['peer_nmi']:.4f} (geometric {sk['peer_nmi_geometric']:.4f}), ACC {sk['peer_acc']:.4f}.\n")

sc = sel("scaling")
if sc:
    print("| step | T 1 rank s | T 2 ranks s | efficiency T1 / (2 T2) | bytes per iteration (all ranks) | load 1 / 2 |")
    print("|---|---:|---:|---:|---:|---|")
    for r in sc:
        print(f"| {r['case']} | {r['peer_seconds']:.4f} | {r['seconds']:.4f} | {r['efficiency']:.2f} | {f(r.get('bytes_per_iteration'), ',')} | "
              f"{f(r.get('load_1rank'), '.2f')} / {f(r.get('load_2ranks'), '.2f')} |")
