"""cluster_peer.py - the Python side of benchmarks/cluster.sh: initial centroids, the peers
(scikit-learn KMeans, FAISS) and the JSON lines with ratios.

    /usr/bin/python3 benchmarks/cluster_peer.py init FEATURES.h5 K OUT.h5 [SEED]
        K distinct rows drawn with numpy.random.default_rng(SEED) (sorted) -> OUT.h5:/prototypes
        (K x D float32, attribute rows).  Every K-means below starts from these centroids.

    /usr/bin/python3 benchmarks/cluster_peer.py report --features F --init I --graph G
        [--threads 2] [--iters 20] [--reps 3] [--knn-reps 1] [--raw RAW.jsonl]
        [--iters-run RANKS:WALL:RESULTS.h5 ...] [--run NAME:RANKS:WALL:RESULTS.h5 ...]
        [--knn-run RANKS:WALL:GRAPH.h5 ...]
      prints, one JSON line per case (ratio = boundopt / peer unless the line says otherwise):
      * kmeans_kernels / kmeans_large / bound lines of RAW (bench_kmeans), passed through;
      * scaling: T(1 rank) / (2 T(2 ranks)) for bench_kmeans assign, iteration and bound lines;
      * kmeans_iteration: seconds per Lloyd iteration, boundopt (bench_kmeans `iteration` at
        THREADS ranks, and the --iters-run cluster job: compute / iterations) against
        scikit-learn KMeans(algorithm='lloyd', n_init=1, init=I, tol=0) and
        faiss.Kmeans(niter, max_points_per_centroid large enough for every row).train(x,
        init_centroids=I), both with THREADS threads.  The peers' per-iteration time is the
        slope (T(iters) - T(1)) / (iters - 1) of medians over REPS fits, which removes their fixed
        costs (validation, centring, index set-up, sklearn's final E-step), as bench_kmeans has
        none.  Objective after the same number of assignments, as a check that all three follow
        one trajectory;
      * knn: boundopt task knn compute time (per --knn-run) against FAISS IndexFlatL2 add +
        search(k) with THREADS threads (KNN_REPS, median), and the share of FAISS's neighbours
        (self excluded) that boundopt's graph has in the same row.  effective_gflops = 2 N^2 D /
        seconds for both, although boundopt computes each pair once (N^2 D flops);
      * cluster_run: per --run, time, iterations, NMI (arithmetic, geometric), ACC, lambda, knn
        (attributes of the results file; NMI re-computed here from /assignments as a check)
        against scikit-learn KMeans run to convergence from the same centroids (max_iter=100,
        tol=0) with THREADS threads: ratio = boundopt compute / sklearn fit.
"""
import argparse
import json
import os
import statistics
import sys
import time


def need(module):
    try:
        return __import__(module)
    except ImportError as e:
        sys.exit(f"cluster_peer: python module {module} missing ({e}); expected it installed: make bench-deps")


np = need("numpy")
h5py = need("h5py")
threadpoolctl = need("threadpoolctl")


def load_features(path):
    with h5py.File(path, "r") as f:
        x = np.ascontiguousarray(f["/features"][()], dtype=np.float32)
        y = f["/labels"][()] if "/labels" in f else None
    return x, y


def load_init(path):
    with h5py.File(path, "r") as f:
        return np.ascontiguousarray(f["/prototypes"][()], dtype=np.float32)


def loadavg():
    return float(open("/proc/loadavg").read().split()[0])


def emit(d):
    d.setdefault("load", loadavg())
    d = {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in d.items()}  # 6 significant digits
    print(json.dumps(d), flush=True)


def median_time(fn, reps, warmup=True):
    times, out = [], None
    if warmup:  # the first fit of a process pays imports and thread-pool start-up
        fn()
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


# ------------------------------------------------------------------------------ metrics
def nmi_acc(truth, pred):
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import normalized_mutual_info_score as nmi
    a = nmi(truth, pred, average_method="arithmetic")
    g = nmi(truth, pred, average_method="geometric")
    k, c = int(pred.max()) + 1, int(truth.max()) + 1
    cont = np.zeros((k, c), dtype=np.int64)
    np.add.at(cont, (pred, truth), 1)
    r, s = linear_sum_assignment(-cont)
    return a, g, float(cont[r, s].sum()) / len(truth)


# ------------------------------------------------------------------------------ peers
def sklearn_fit(x, init, max_iter):
    from sklearn.cluster import KMeans
    km = KMeans(n_clusters=init.shape[0], init=init, n_init=1, max_iter=max_iter, tol=0, algorithm="lloyd", random_state=0)
    km.fit(x)
    return km


def faiss_fit(x, init, niter):
    import faiss
    km = faiss.Kmeans(x.shape[1], init.shape[0], niter=niter, verbose=False, seed=1,
                      max_points_per_centroid=x.shape[0] // init.shape[0] + 1, min_points_per_centroid=1)
    km.train(x, init_centroids=init)
    return km


def init_cmd(argv):
    if len(argv) not in (3, 4):
        sys.exit("cluster_peer: usage: cluster_peer.py init FEATURES.h5 K OUT.h5 [SEED]; expected 3 or 4 arguments")
    features, k, out = argv[0], int(argv[1]), argv[2]
    seed = int(argv[3]) if len(argv) > 3 else 0
    with h5py.File(features, "r") as f:
        n = f["/features"].shape[0]
        rows = np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))
        c = np.asarray(f["/features"][rows.tolist(), :], dtype=np.float32)
    tmp = out + ".tmp"
    with h5py.File(tmp, "w") as g:
        g["/prototypes"] = c
        g["/prototypes"].attrs["rows"] = rows
        g["/prototypes"].attrs["seed"] = seed
        g.attrs["source"] = features
    os.replace(tmp, out)


def read_results(path):
    with h5py.File(path, "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
        t = {k: float(f["/meta/timings/" + k][()]) for k in ("read", "compute", "write")}
        energy = f["/energy"][()] if "/energy" in f else None
        assign = f["/assignments"][()].ravel() if "/assignments" in f else None
        opts = f["/meta/options"][()].decode() if "/meta/options" in f else ""
    return attrs, t, energy, assign, opts


def median_rounds(lines):
    """bench_kmeans lines repeated over rounds: per (bench, case, ranks, peer), the line of the
    median round by seconds (the upper median for an even count), with the count and every
    round's seconds and load."""
    groups = {}
    for r in lines:
        groups.setdefault((r["bench"], r["case"], r["ranks"], r.get("peer")), []).append(r)
    out = []
    for g in groups.values():
        s = sorted(g, key=lambda r: r["seconds"])
        m = dict(s[len(s) // 2])
        m["rounds"] = len(g)
        m["seconds_rounds"] = [r["seconds"] for r in g]
        m["load_rounds"] = [r.get("load") for r in g]
        out.append(m)
    return out


def split_run(spec, named):
    parts = spec.split(":", 3 if named else 2)
    if named:
        return parts[0], int(parts[1]), float(parts[2]), parts[3]
    return int(parts[0]), float(parts[1]), parts[2]


def report_cmd(argv):
    ap = argparse.ArgumentParser(prog="cluster_peer.py report")
    ap.add_argument("--features", required=True)
    ap.add_argument("--init", required=True)
    ap.add_argument("--graph")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--knn-reps", type=int, default=1)
    ap.add_argument("--knn", type=int, default=5)
    ap.add_argument("--raw")
    ap.add_argument("--iters-run", action="append", default=[])
    ap.add_argument("--run", action="append", default=[])
    ap.add_argument("--knn-run", action="append", default=[])
    a = ap.parse_args(argv)
    thr = a.threads
    raw = median_rounds([json.loads(line) for line in open(a.raw) if line.strip()] if a.raw else [])
    for r in raw:
        emit(r)

    # ---- strong scaling of the kernels (bench_kmeans at 1 and 2 ranks, same run)
    def find(bench, case, ranks):
        for r in raw:
            if r["bench"] == bench and r["case"] == case and r["ranks"] == ranks:
                return r
        return None
    for bench, case in (("kmeans_kernels", "assign"), ("kmeans_kernels", "means"), ("kmeans_kernels", "iteration"), ("kmeans_kernels", "iteration (bounds)"), ("kmeans_kernels", "assign (bounds)"),
                        ("bound", "bound_iteration"), ("kmeans_large", "assign")):
        r1, r2 = find(bench, case, 1), find(bench, case, 2)
        if not (r1 and r2):
            continue
        line = {"bench": "scaling", "case": f"{bench}/{case}", "ranks": 2, "n": r2["n"], "d": r2["d"], "k": r2["k"],
                "seconds": r2["seconds"], "peer": "the same at 1 rank", "peer_seconds": r1["seconds"],
                "ratio": r2["seconds"] / r1["seconds"], "efficiency": r1["seconds"] / (2 * r2["seconds"]),
                "load_1rank": r1.get("load"), "load_2ranks": r2.get("load"), "rounds": r2.get("rounds", 1)}
        if r1.get("rounds", 1) == r2.get("rounds", 1) > 1:  # round by round: the two runs were adjacent in time
            line["efficiency_rounds"] = [round(t1 / (2 * t2), 3) for t1, t2 in zip(r1["seconds_rounds"], r2["seconds_rounds"])]
        if bench == "bound":
            line.update({"bytes_per_iteration": r2["bytes_per_iteration"], "bytes_per_iteration_max_rank": r2["bytes_per_iteration_max_rank"],
                         "ghost_rows_total": r2["ghost_rows_total"], "gather_seconds_2ranks": r2["gather_seconds"],
                         "spmm_seconds_1rank": r1["spmm_seconds"], "spmm_seconds_2ranks": r2["spmm_seconds"]})
        emit(line)

    x, labels = load_features(a.features)
    init = load_init(a.init)
    n, d = x.shape
    k = init.shape[0]
    import sklearn
    blas = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    versions = {"sklearn": sklearn.__version__, "blas": f"{blas[0]['internal_api']} {blas[0]['version']}" if blas else "unknown"}
    try:
        import faiss
        versions["faiss"] = faiss.__version__
        faiss.omp_set_num_threads(thr)
    except ImportError:
        faiss = None

    # ---- per-iteration time against sklearn and FAISS
    if a.iters_run:
        per_it, objs = [], set()
        for spec in a.iters_run:  # repetitions of one job: median of compute / iterations
            ranks, wall, path = split_run(spec, False)
            attrs, t, energy, _, _ = read_results(path)
            its = int(attrs["iterations"])
            per_it.append(t["compute"] / its)
            objs.add(float(energy[its - 1]))
        if len(objs) != 1:
            sys.exit(f"cluster_peer: the K-means jobs' energies differ between repetitions ({sorted(objs)}); expected identical runs")
        bo_sources = [(f"cluster job (compute / iterations, median of {len(per_it)})", statistics.median(per_it), ranks)]
        it_line = find("kmeans_kernels", "iteration", thr)
        if it_line:
            bo_sources.insert(0, ("bench_kmeans iteration (means + assign)", it_line["seconds"], thr))
        # the job ran iters + 1 assignments: energy[iters] is the objective after iters mean updates
        bo_obj = float(energy[its - 1])
        peers = []
        with threadpoolctl.threadpool_limits(limits=thr):
            t_hi, km = median_time(lambda: sklearn_fit(x, init, a.iters), a.reps)
            t_lo, km1 = median_time(lambda: sklearn_fit(x, init, 1), a.reps)
            peers.append((f"scikit-learn {sklearn.__version__} KMeans lloyd ({thr} threads)", (t_hi - t_lo) / (a.iters - 1), t_hi, int(km.n_iter_), float(km.inertia_)))
            if faiss is not None:
                t_hi, fk = median_time(lambda: faiss_fit(x, init, a.iters + 1), a.reps)
                t_lo, _ = median_time(lambda: faiss_fit(x, init, 2), a.reps)
                peers.append((f"FAISS {faiss.__version__} Kmeans ({thr} threads, init_centroids)", (t_hi - t_lo) / (a.iters - 1), t_hi, a.iters + 1, float(fk.obj[-1])))
        for src, sec, r in bo_sources:
            for peer, psec, ptotal, pits, pobj in peers:
                emit({"bench": "kmeans_iteration", "case": src, "ranks": r, "n": n, "d": d, "k": k, "iterations": its,
                      "seconds": sec, "objective": bo_obj, "peer": peer, "peer_seconds": psec, "peer_total_seconds": ptotal,
                      "peer_iterations": pits, "peer_objective": pobj, "objective_rel_diff": abs(pobj - bo_obj) / abs(bo_obj),
                      "ratio": sec / psec, "reps": a.reps, **versions})

    # ---- knn against FAISS exact search
    if a.knn_run:
        import faiss
        def search():
            index = faiss.IndexFlatL2(d)
            index.add(x)
            return index.search(x, a.knn)
        with threadpoolctl.threadpool_limits(limits=thr):
            t_f, (_, nbr) = median_time(search, a.knn_reps, warmup=False)
        for spec in a.knn_run:
            ranks, wall, path = split_run(spec, False)
            with h5py.File(path, "r") as f:
                ip, ind = f["/graph/indptr"][()], f["/graph/indices"][()]
                t = {kk: float(f["/meta/timings/" + kk][()]) for kk in ("read", "compute", "write")}
            row = np.repeat(np.arange(n), a.knn)
            col = nbr.ravel()
            keep = col != row
            row, col = row[keep], col[keep]
            # is col among boundopt's columns of row? (rows sorted: searchsorted within the row)
            pos = np.empty(len(row), dtype=bool)
            for i0 in range(0, len(row), 1 << 20):
                r_, c_ = row[i0:i0 + (1 << 20)], col[i0:i0 + (1 << 20)]
                lo, hi = ip[r_], ip[r_ + 1]
                # each row has few entries: scan up to the largest degree
                found = np.zeros(len(r_), dtype=bool)
                for off in range(int((ip[1:] - ip[:-1]).max())):
                    j = lo + off
                    ok = j < hi
                    found[ok] |= ind[j[ok]] == c_[ok]
                pos[i0:i0 + len(r_)] = found
            emit({"bench": "knn", "case": f"exact kNN graph k={a.knn}", "ranks": ranks, "n": n, "d": d, "k": a.knn,
                  "wall_seconds": wall, "seconds": t["compute"], "read_seconds": t["read"], "write_seconds": t["write"],
                  "effective_gflops": 2.0 * n * n * d / t["compute"] / 1e9,
                  "peer": f"FAISS {faiss.__version__} IndexFlatL2 add + search k={a.knn} ({thr} threads)", "peer_seconds": t_f,
                  "peer_effective_gflops": 2.0 * n * n * d / t_f / 1e9, "ratio": t["compute"] / t_f, "peer_neighbours_in_graph": float(pos.mean()),
                  "knn_reps": a.knn_reps})

    # ---- full cluster runs against sklearn to convergence
    if a.run:
        with threadpoolctl.threadpool_limits(limits=thr):
            t_sk, km = median_time(lambda: sklearn_fit(x, init, 100), a.reps)
        sk_nmi, sk_nmig, sk_acc = nmi_acc(labels, km.labels_)
        base_nmi = None
        for spec in a.run:
            name, ranks, wall, path = split_run(spec, True)
            attrs, t, energy, assign, opts = read_results(path)
            nmi, nmig, acc = nmi_acc(labels, assign) if labels is not None else (None, None, None)
            if name == "kmeans":
                base_nmi = attrs.get("nmi")
            emit({"bench": "cluster_run", "case": name, "ranks": ranks, "n": n, "d": d, "k": int(attrs["k"]),
                  "method": attrs.get("method"), "options": opts, "wall_seconds": wall, "seconds": t["compute"], "read_seconds": t["read"],
                  "iterations": int(attrs["iterations"]), "converged": int(attrs.get("converged", 0)), "empty_reseeds": int(attrs.get("empty_reseeds", 0)),
                  "seconds_per_iteration": t["compute"] / int(attrs["iterations"]),
                  "nmi": attrs.get("nmi"), "nmi_geometric": attrs.get("nmi_geometric"), "acc": attrs.get("acc"),
                  "nmi_recomputed": nmi, "acc_recomputed": acc, "nmi_minus_kmeans": (attrs.get("nmi") - base_nmi) if base_nmi is not None else None,
                  "lambda": attrs.get("lambda"), "knn": attrs.get("knn"), "sigma": attrs.get("sigma"),
                  "peer": f"scikit-learn {sklearn.__version__} KMeans lloyd to convergence, same init ({thr} threads)",
                  "peer_seconds": t_sk, "peer_reps": a.reps, "peer_iterations": int(km.n_iter_), "peer_nmi": sk_nmi, "peer_nmi_geometric": sk_nmig, "peer_acc": sk_acc,
                  "ratio": t["compute"] / t_sk})


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("init", "report"):
        sys.exit("cluster_peer: usage: cluster_peer.py init ... | report ...; expected a subcommand (see the docstring)")
    (init_cmd if sys.argv[1] == "init" else report_cmd)(sys.argv[2:])


if __name__ == "__main__":
    main()
