"""pca_peer.py - the scikit-learn side of benchmarks/pca.sh.

    /usr/bin/python3 benchmarks/pca_peer.py FEATURES.h5 NCOMP REPS RUN [RUN ...]

RUN is "ranks:wall_seconds:results.h5" for one boundopt preprocess run; the runs of one rank
count are repetitions, summarised by the median of each time.  For each rank count this times, on the same matrix loaded with h5py and with BLAS limited
to `ranks` threads by threadpoolctl, PCA(n_components=NCOMP).fit_transform with
svd_solver='full' and with the default 'auto' (randomized here, fixed random_state), the median
of REPS repetitions, and prints one JSON line per (run, solver):
    ratio = boundopt compute time / sklearn time  (< 1: boundopt faster)
    ev_max_rel_diff = max_k |ev_boundopt[k] - ev_sklearn[k]| / ev_sklearn[k]
fit_transform is timed because boundopt's compute phase also projects every row (and computes
the mean).  The matrix is given to sklearn as float64, the precision boundopt computes in.
"""
import json
import statistics
import sys
import time


def need(module):
    try:
        return __import__(module)
    except ImportError as e:
        sys.exit(f"pca_peer: python module {module} missing ({e}); expected it installed: make bench-deps")


np = need("numpy")
h5py = need("h5py")
threadpoolctl = need("threadpoolctl")
need("sklearn")
from sklearn import __version__ as sklearn_version  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402


def read_run(spec):
    ranks, wall, path = spec.split(":", 2)
    with h5py.File(path, "r") as f:
        t = {k: float(f["/meta/timings/" + k][()]) for k in ("read", "compute", "write")}
        ev = np.asarray(f["/preprocess/explained_variance"][()], dtype=np.float64)
    return int(ranks), float(wall), t, ev


def main():
    if len(sys.argv) < 5:
        sys.exit("pca_peer: usage: pca_peer.py FEATURES.h5 NCOMP REPS RANKS:WALL:RESULTS.h5 ...; expected at least one run")
    features, ncomp, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    by_ranks = {}
    for spec in sys.argv[4:]:
        ranks, wall, t, ev = read_run(spec)
        by_ranks.setdefault(ranks, []).append((wall, t, ev))
    runs = []
    for ranks, reps_of in sorted(by_ranks.items()):
        med = {k: statistics.median(r[1][k] for r in reps_of) for k in ("read", "compute", "write")}
        evs = [r[2] for r in reps_of]
        if any(not np.array_equal(e, evs[0]) for e in evs):
            sys.exit(f"pca_peer: boundopt's explained variance differs between repetitions at {ranks} ranks; expected identical runs")
        runs.append((ranks, statistics.median(r[0] for r in reps_of), med, evs[0], len(reps_of)))
    same_across_ranks = all(np.array_equal(r[3], runs[0][3]) for r in runs)
    t0 = time.perf_counter()
    with h5py.File(features, "r") as f:
        x = f["/features"][()].astype(np.float64)
    load_seconds = time.perf_counter() - t0
    blas = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    blas_name = f"{blas[0]['internal_api']} {blas[0]['version']}" if blas else "unknown"
    for ranks, wall, t, ev, nreps in runs:
        for solver in ("full", "auto"):
            times = []
            with threadpoolctl.threadpool_limits(limits=ranks, user_api="blas"):
                for _ in range(reps):
                    pca = PCA(n_components=ncomp, svd_solver=solver, random_state=0)
                    s = time.perf_counter()
                    pca.fit_transform(x)
                    times.append(time.perf_counter() - s)
            sk = statistics.median(times)
            ev_sk = pca.explained_variance_
            rel = float(np.max(np.abs(ev - ev_sk) / ev_sk))
            chosen = getattr(pca, "_fit_svd_solver", solver)
            print(json.dumps({
                "bench": "pca", "ranks": ranks, "n": int(x.shape[0]), "d": int(x.shape[1]), "ncomp": ncomp,
                "reps": nreps, "wall_seconds": round(wall, 3), "read_seconds": round(t["read"], 3),
                "compute_seconds": round(t["compute"], 3), "write_seconds": round(t["write"], 3),
                "peer": f"sklearn {sklearn_version} PCA svd_solver={solver} ({chosen}), float64, {ranks} BLAS thread(s)",
                "peer_blas": blas_name, "peer_reps": reps, "peer_seconds": round(sk, 3),
                "peer_load_seconds": round(load_seconds, 3),
                "ratio": round(t["compute"] / sk, 3),
                "ev_max_abs_diff": float(np.max(np.abs(ev - ev_sk))), "ev_max_rel_diff": rel,
                "ev_identical_across_ranks": same_across_ranks,
            }, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
