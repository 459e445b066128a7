#!/usr/bin/env python3
"""kmeans_passes.py RAW.jsonl [--passes N]: the cost per iteration of a whole K-means run, from
`bench_kmeans assign --start 0 --reps R` lines (several rounds at each rank count).

Each repetition of bench_kmeans's iteration cases is one more Lloyd pass, so with --reps covering
the run its "pass_seconds" list is the run pass by pass (passes 3 .. R+2; pass 1 is made from the
seeds and pass 2 is the untimed warm-up).  Per rank count and case, this script takes each pass's
median over the rounds (a pass disturbed by another job in one round does not count), counts
passes 1 and 2 at the median plain pass of the same runs ("assign" for the assignment,
"iteration" for the iterations: full passes, as no row can be skipped before bounds exist), and
divides the mean over passes 1 .. N by the median time to
stream X of the same runs.  One JSON line per (ranks, case):
  {"bench":"kmeans_run","case":"iteration (bounds)","ranks":2,"passes":56,"rounds":5,
   "mean_seconds":..,"peer":"stream X","peer_seconds":..,"ratio":..,"ratio_passes_3_on":..}
"""
import json
import statistics
import sys
from collections import defaultdict


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    path, npass = args[0], None
    if "--passes" in args:
        npass = int(args[args.index("--passes") + 1])
    series = defaultdict(list)   # (ranks, case) -> [pass_seconds of each round]
    stream = defaultdict(list)   # ranks -> the stream medians of the rounds
    plain = defaultdict(list)    # (ranks, "assign" | "iteration") -> the plain case's medians of the rounds
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        o = json.loads(line)
        if o.get("bench") != "kmeans_kernels" or o.get("passes", "3-").split("-")[0] != "3":
            continue  # other benchmarks, or runs timed from a later pass (--start > 0)
        if o["case"] in ("assign", "iteration"):
            plain[(o["ranks"], o["case"])].append(o["seconds"])
        if o["case"] == "iteration":
            stream[o["ranks"]].append(o["peer_seconds"])
        if "pass_seconds" in o:
            series[(o["ranks"], o["case"])].append(o["pass_seconds"])
    for (ranks, case), rounds in sorted(series.items()):
        reps = min(len(r) for r in rounds)
        per_pass = [statistics.median(r[p] for r in rounds) for p in range(reps)]
        n = npass if npass else reps + 2
        if n - 2 > reps:
            sys.exit("kmeans_passes: %d passes asked, the runs timed passes 3-%d; expected --passes <= %d" % (n, reps + 2, reps + 2))
        first_two = statistics.median(plain[(ranks, "assign" if case.startswith("assign") else "iteration")])
        total = 2 * first_two + sum(per_pass[: n - 2])
        peer = statistics.median(stream[ranks])
        print(json.dumps({"bench": "kmeans_run", "case": case, "ranks": ranks, "passes": n, "rounds": len(rounds),
                          "mean_seconds": round(total / n, 6), "peer": "stream X", "peer_seconds": round(peer, 6),
                          "ratio": round(total / n / peer, 3),
                          "ratio_passes_3_on": round(sum(per_pass[: n - 2]) / (n - 2) / peer, 3)}))


if __name__ == "__main__":
    main()
