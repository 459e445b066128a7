"""table.py - benchmarks/out/results.jsonl as the Markdown tables of benchmarks/README.md.

    /usr/bin/python3 benchmarks/table.py [benchmarks/out/results.jsonl]
"""
import json
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "benchmarks/out/results.jsonl"
rows = [json.loads(line) for line in open(path) if line.strip()]

read = [r for r in rows if r["bench"] == "read"]
if read:
    print("| ranks | page cache | buffers | case | seconds | GB/s | serial H5Dread GB/s | ratio | fread GB/s | ratio | page faults |")
    print("|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    seen = {}
    for r in read:
        key = (r["ranks"], r["cache"], r["alloc"], r["case"])
        seen.setdefault(key, {})["h5" if "H5Dread" in r["peer"] else "fread"] = r
    for (ranks, cache, alloc, case), p in seen.items():
        h, f = p.get("h5"), p.get("fread")
        base = h or f
        print(f"| {ranks} | {cache} | {alloc} | {case} | {base['seconds']:.3f} | {base['gb_per_s']:.2f} | "
              f"{h['peer_gb_per_s']:.2f} | {h['ratio']:.2f} | {f['peer_gb_per_s']:.2f} | {f['ratio']:.2f} | {base['page_faults']:.0f} |")
    print()

pca = [r for r in rows if r["bench"] == "pca"]
if pca:
    print("| ranks | wall s | read s | compute s | write s | peer | peer s | ratio compute/peer | max rel. diff of explained variance |")
    print("|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in pca:
        peer = r["peer"].split(" PCA ")[1].split(",")[0]
        print(f"| {r['ranks']} | {r['wall_seconds']:.2f} | {r['read_seconds']:.2f} | {r['compute_seconds']:.2f} | "
              f"{r['write_seconds']:.2f} | {peer} | {r['peer_seconds']:.2f} | {r['ratio']:.2f} | {r['ev_max_rel_diff']:.1e} |")
