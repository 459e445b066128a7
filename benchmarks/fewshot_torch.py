"""fewshot_torch.py - boundopt's TIM-ADM / TIM-GD against the same algorithms in PyTorch (CPU,
float32, batched over tasks), on exactly the same tasks, in the same run (benchmarks/fewshot_torch.sh).

    /usr/bin/python3 benchmarks/fewshot_torch.py --bin BIN/boundopt --features F.h5 --method tim-adm
        [--tasks 10000] [--reps 3] [--ranks 2] [--chunk 0] [--threads 2] [--seed 2020] [--out DIR]

Each repetition runs, alternately:
  1. boundopt: mpirun -n RANKS boundopt -task fewshot -fewshot_method METHOD -fewshot_save_tasks
     (5-way 5-shot 15 queries, classes 5-9, norm l2, seed SEED: the recipe of
     jobs/fewshot-fmnist-tim-adm.yaml); its time is /meta/timings/compute (max over ranks of the
     compute phase: drawing the tasks, gathering and L2-normalising their rows, the method, the
     accuracies; file reading and writing are the read and write phases, not counted).
  2. PyTorch: the tasks replayed from that file's /tasks/support and /tasks/query (row indices into
     the features file), with torch.set_num_threads(THREADS).  Timed (time.perf_counter): gathering
     the tasks' rows from the features tensor (already in memory), the L2 normalisation, the
     weight initialisation, the iterations, the predictions and the per-task accuracies.  Not timed:
     reading the features file and the task indices with h5py.
Prints one JSON line: the medians of both times over the repetitions, their ratio
(torch / boundopt: > 1 means boundopt faster), per-task times (time / tasks), both mean accuracies
and the fraction of tasks whose query predictions agree exactly; and, on stderr, one
"fewshot_torch: RATIO ..." line with the same ratios in words.

CPU times, for a loaded machine (other processes steal wall time from both sides alike only on
average; CPU time is what each side itself consumed): PyTorch's is time.process_time() over the
timed part (all its threads; OpenMP worker threads that spin while waiting count too).
boundopt's is the user + system time of the whole mpirun (getrusage of the child processes: all
ranks, including start-up, reading and writing, and MPI's polling), so it overstates boundopt's
compute CPU time: the CPU ratio is a lower bound on the compute-only one.

The PyTorch side is written from the spec (clustering-fewshot.md section 8) and solvers/tim.c, op
for op: features L2-normalised per row (a zero row stays 0); W_0 = support class means;
logits tau (z.w_k - |w_k|^2 / 2) (the -tau |z|^2 / 2 term is the same for every class of a row and
cancels in the softmax, as in tim.c); loss weights [0.1, 1, 0.1], log guard 1e-12 in every log;
GD: autograd + torch.optim.Adam(lr 1e-4, betas (0.9, 0.999), eps 1e-8), 1000 iterations, the
loss summed over tasks (tasks do not interact, so each task's W gets its own exact gradient);
ADM: 150 iterations of the closed-form q- and w-updates, damping 1.  Predictions: argmax of the
query probabilities at the final W (first maximum).  All tasks of a chunk are one T x n x D tensor
(support rows first, then queries); each iteration is a few bmm and element-wise ops on it, with no
Python loop over tasks.  --chunk 0 takes all the tasks in one batch.  Plain bmm, not baddbmm:
in torch 1.13 on CPU, baddbmm with a broadcast bias copies it and then calls addmm once per task
(profiled: about 1.6x the time of bmm plus a separate subtraction).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def need(module):
    try:
        return __import__(module)
    except ImportError as e:
        sys.exit(f"boundopt: bench fewshot_torch: python module {module} missing ({e}); expected python3-{module} installed (apt-get install python3-torch python3-h5py python3-numpy)")


np = need("numpy")
h5py = need("h5py")
torch = need("torch")

WAYS, SHOTS, QUERIES, CLASSES = 5, 5, 15, "5-9"
TAU, LAMBDA_CE, ALPHA, W_MARGINAL, LOG_EPS = 15.0, 0.1, 0.1, 1.0, 1e-12
GD_ITERS, GD_LR, GD_BETAS, GD_EPS = 1000, 1e-4, (0.9, 0.999), 1e-8
ADM_ITERS, ADM_DAMPING = 150, 1.0


# ---------------------------------------------------------------------------------------- TIM
def l2_rows(x):
    """x / |x| per row; a zero row stays zero (bo_fewshot_l2)."""
    n = x.norm(dim=2, keepdim=True)
    return x / torch.where(n > 0, n, torch.ones_like(n))


def probabilities(z, w):
    """softmax_k tau (z_i.w_k - |w_k|^2 / 2): T x n x K."""
    logits = z.bmm(w.transpose(1, 2)) - 0.5 * (w * w).sum(2).unsqueeze(1)
    return torch.softmax(TAU * logits, dim=2)


def init_weights(zs, ys1h):
    """W_0 = support class means: T x K x D."""
    return ys1h.transpose(1, 2).bmm(zs) / ys1h.sum(1).unsqueeze(2)


def tim_adm(z, ys1h):
    ns = ys1h.shape[1]
    nq = z.shape[1] - ns
    cs, cq = LAMBDA_CE / (1 + ALPHA), ns / nq
    beta = W_MARGINAL / (W_MARGINAL + 1)
    count = ys1h.sum(1)  # T x K support rows per class (>= 1: den > 0 always)
    w = init_weights(z[:, :ns], ys1h)
    for _ in range(ADM_ITERS):
        p = probabilities(z, w)
        ps, pq = p[:, :ns], p[:, ns:]
        q = pq.pow(1 + ALPHA)
        q = q / q.sum(1, keepdim=True).pow(beta)
        q = q / q.sum(2, keepdim=True)
        # num_k = c_S [(Y - P_S)^T Z_S] + c_Q [(Q - P_Q)^T Z_Q] + (c_S sum_S p_k + c_Q sum_Q p_k) w_k
        g = torch.cat((cs * (ys1h - ps), cq * (q - pq)), dim=1)
        coef = cs * ps.sum(1) + cq * pq.sum(1)
        num = g.transpose(1, 2).bmm(z) + coef.unsqueeze(2) * w
        den = cs * count + cq * q.sum(1)
        w = w + ADM_DAMPING * (num / den.unsqueeze(2) - w)
    return probabilities(z[:, ns:], w).argmax(2)


def tim_gd(z, ys1h):
    ns = ys1h.shape[1]
    w = init_weights(z[:, :ns], ys1h).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=GD_LR, betas=GD_BETAS, eps=GD_EPS)
    for _ in range(GD_ITERS):
        p = probabilities(z, w)
        ps, pq = p[:, :ns], p[:, ns:]
        ce = -(ys1h * torch.log(ps + LOG_EPS)).sum(2).mean(1)
        phat = pq.mean(1)
        neg_marginal = (phat * torch.log(phat + LOG_EPS)).sum(1)  # -H(Y_Q)
        conditional = -(pq * torch.log(pq + LOG_EPS)).sum(2).mean(1)  # H(Y_Q|X_Q)
        loss = (LAMBDA_CE * ce + W_MARGINAL * neg_marginal + ALPHA * conditional).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return probabilities(z[:, ns:], w).argmax(2)


def run_torch(method, feats, support, query, chunk):
    """Predictions (T x nq, task-local labels) and per-task accuracies for the replayed tasks.
    feats: N x D float32 tensor; support T x ns, query T x nq: row indices (int64 tensors)."""
    ntasks, ns, nq = support.shape[0], support.shape[1], query.shape[1]
    ys = torch.arange(WAYS).repeat_interleave(SHOTS)  # way-major support: row j*shots+s is way j
    yq = torch.arange(WAYS).repeat_interleave(nq // WAYS)
    solve = tim_adm if method == "tim-adm" else tim_gd
    preds, accs = [], []
    step = chunk if chunk > 0 else ntasks
    for t0 in range(0, ntasks, step):
        rows = torch.cat((support[t0:t0 + step], query[t0:t0 + step]), dim=1)
        z = l2_rows(feats[rows])  # T x n x D
        ys1h = torch.nn.functional.one_hot(ys, WAYS).to(z.dtype).expand(rows.shape[0], ns, WAYS)
        if method == "tim-adm":
            with torch.inference_mode():
                pred = solve(z, ys1h)
        else:
            pred = solve(z, ys1h)
        preds.append(pred)
        accs.append((pred == yq).to(torch.float64).mean(1))
    return torch.cat(preds), torch.cat(accs)


# ---------------------------------------------------------------------------------------- run
def run_boundopt(a, res):
    cmd = ["mpirun", "-q", "--oversubscribe", "-n", str(a.ranks), a.bin, "-task", "fewshot",
           "-input", a.features, "-output", res, "-seed", str(a.seed),
           "-fewshot_method", a.method, "-fewshot_classes", CLASSES, "-fewshot_ways", str(WAYS),
           "-fewshot_shots", str(SHOTS), "-fewshot_queries", str(QUERIES),
           "-fewshot_tasks", str(a.tasks), "-fewshot_norm", "l2", "-fewshot_save_tasks"]
    if a.method == "tim-adm":  # TIM-GD is double only
        cmd += ["-fewshot_precision", a.precision]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", HDF5_USE_FILE_LOCKING="FALSE")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with h5py.File(res, "r") as f:
        return {"compute": float(f["/meta/timings/compute"][()]), "cpu": cpu,
                "support": np.asarray(f["/tasks/support"][()], dtype=np.int64),
                "query": np.asarray(f["/tasks/query"][()], dtype=np.int64),
                "pred": np.asarray(f[f"/{a.method}/predictions"][()]),
                "acc": np.asarray(f[f"/{a.method}/task_accuracy"][()]),
                "mean_accuracy": float(f[f"/{a.method}"].attrs["mean_accuracy"])}


def check_tasks(labels, b):
    """The replayed tasks are what the sampler says: way j's support and queries share one class."""
    ls, lq = labels[b["support"]], labels[b["query"]]
    ls = ls.reshape(ls.shape[0], WAYS, SHOTS)
    lq = lq.reshape(lq.shape[0], WAYS, QUERIES)
    ok = (ls == ls[:, :, :1]).all() and (lq == ls[:, :, :1]).all()
    if not ok:
        sys.exit("boundopt: bench fewshot_torch: /tasks/support and /tasks/query: ways mix classes; expected way-major balanced tasks")
    return ls[:, :, 0]  # T x ways: the input label of each way


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--features", required=True)
    ap.add_argument("--method", choices=("tim-adm", "tim-gd"), required=True)
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=0, help="tasks per batch (0: all)")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--precision", choices=("double", "single"), default="double",
                    help="boundopt's TIM-ADM arithmetic (-fewshot_precision); torch is float32 either way")
    ap.add_argument("--out", default="benchmarks/out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    with h5py.File(a.features, "r") as f:
        feats = torch.from_numpy(np.asarray(f["/features"][()], dtype=np.float32))
        labels = np.asarray(f["/labels"][()])
    d = feats.shape[1]
    res = os.path.join(a.out, f"fewshot-torch-{a.method}-{d}.h5")
    b_times, t_times, b_cpus, t_cpus, loads = [], [], [], [], []
    b = t_pred = t_acc = None
    torch_repeatable = True
    for r in range(a.reps):
        print(f"fewshot_torch: {a.method} D={d} rep {r + 1}/{a.reps}: boundopt, {a.ranks} ranks", file=sys.stderr)
        b = run_boundopt(a, res)
        b_times.append(b["compute"])
        b_cpus.append(b["cpu"])
        ways_label = check_tasks(labels, b)
        support, query = torch.from_numpy(b["support"]), torch.from_numpy(b["query"])
        print(f"fewshot_torch: {a.method} D={d} rep {r + 1}/{a.reps}: torch, {a.threads} threads", file=sys.stderr)
        t0, c0 = time.perf_counter(), time.process_time()
        pred, acc = run_torch(a.method, feats, support, query, a.chunk)
        t_times.append(time.perf_counter() - t0)
        t_cpus.append(time.process_time() - c0)
        loads.append(os.getloadavg()[0])
        if t_pred is not None and not torch.equal(pred, t_pred):
            torch_repeatable = False
        t_pred, t_acc = pred, acc
        print(f"fewshot_torch:   boundopt {b_times[-1]:.3f} s (CPU {b_cpus[-1]:.2f} s), torch {t_times[-1]:.3f} s (CPU {t_cpus[-1]:.2f} s), "
              f"ratio {t_times[-1] / b_times[-1]:.2f} (CPU {t_cpus[-1] / b_cpus[-1]:.2f}), load {loads[-1]:.2f}", file=sys.stderr)

    # predictions in the input's label space, like boundopt's /<method>/predictions
    t_pred_labels = np.take_along_axis(ways_label, t_pred.numpy(), axis=1)
    agree = (t_pred_labels == b["pred"]).all(axis=1)
    tb, tt = statistics.median(b_times), statistics.median(t_times)
    cb, ct = statistics.median(b_cpus), statistics.median(t_cpus)
    b_acc, torch_acc = 100 * b["mean_accuracy"], 100 * float(t_acc.mean())
    print(f"fewshot_torch: RATIO {a.method} D={d} tasks={a.tasks}: torch/boundopt per task {tt / tb:.2f}x wall "
          f"(per rep {', '.join(f'{x / y:.2f}' for x, y in zip(t_times, b_times))}), {ct / cb:.2f}x CPU; "
          f"boundopt {1000 * tb / a.tasks:.3f} ms/task, torch {1000 * tt / a.tasks:.3f} ms/task; "
          f"accuracy boundopt {b_acc:.4f} torch {torch_acc:.4f}; boundopt precision {a.precision if a.method == 'tim-adm' else 'double'}; load {statistics.median(loads):.2f}", file=sys.stderr)
    print(json.dumps({
        "bench": "fewshot_torch", "method": a.method, "d": d, "tasks": a.tasks,
        "ways": WAYS, "shots": SHOTS, "queries": QUERIES,
        "boundopt_ranks": a.ranks, "torch_threads": a.threads, "torch_chunk": a.chunk or a.tasks,
        "reps": a.reps, "boundopt_precision": a.precision if a.method == "tim-adm" else "double",
        "boundopt_compute_seconds": round(tb, 4), "torch_seconds": round(tt, 4),
        "boundopt_ms_per_task": round(1000 * tb / a.tasks, 4), "torch_ms_per_task": round(1000 * tt / a.tasks, 4),
        "ratio_torch_over_boundopt": round(tt / tb, 3),
        "ratios_per_rep": [round(x / y, 3) for x, y in zip(t_times, b_times)],
        "boundopt_cpu_seconds": round(cb, 3), "torch_cpu_seconds": round(ct, 3),
        "cpu_ratio_torch_over_boundopt": round(ct / cb, 3),
        "boundopt_accuracy": round(b_acc, 3), "torch_accuracy": round(torch_acc, 3),
        "accuracy_diff_points": round(torch_acc - b_acc, 3),
        "tasks_same_predictions": round(float(agree.mean()), 5),
        "queries_same_prediction": round(float((t_pred_labels == b["pred"]).mean()), 6),
        "torch_repeatable": torch_repeatable,
        "boundopt_seconds_all": [round(x, 3) for x in b_times], "torch_seconds_all": [round(x, 3) for x in t_times],
        "boundopt_cpu_seconds_all": [round(x, 3) for x in b_cpus], "torch_cpu_seconds_all": [round(x, 3) for x in t_cpus],
        "load": round(statistics.median(loads), 2), "torch": torch.__version__,
    }), flush=True)


if __name__ == "__main__":
    main()
