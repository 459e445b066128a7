"""Peer for benchmarks/fire/run.sh: one epoch of TRADES (beta 6, PGD-KL 10 steps, eps 0.1, step 0.01,
start x + 0.001 N(0, I)) on the same MLP (784-hidden-10, ReLU) and rows in PyTorch, SGD 0.01 momentum
0.9, batch 128, one thread (as one boundopt rank).  Prints one JSON line: seconds for the epoch and the
clean test accuracy after it (a sanity check that the peer trains, not a comparison of accuracy).
  /usr/bin/python3 benchmarks/fire/trades_torch.py DATA.h5 ROWS HIDDEN DTYPE
"""
import json, sys, time
import h5py, numpy as np, torch, torch.nn as nn, torch.nn.functional as F

path, rows, hidden, dtype = sys.argv[1], int(sys.argv[2]), [int(h) for h in sys.argv[3].split(',')], getattr(torch, sys.argv[4])
torch.set_num_threads(1)
torch.manual_seed(1)
f = h5py.File(path, 'r')
X = torch.tensor(f['features'][:rows], dtype=dtype)
Y = torch.tensor(f['labels'][:rows].astype(np.int64))
Xt = torch.tensor(f['features'][-10000:], dtype=dtype)
Yt = torch.tensor(f['labels'][-10000:].astype(np.int64))
layers, w = [], X.shape[1]
for h in hidden:
    layers += [nn.Linear(w, h), nn.ReLU()]
    w = h
model = nn.Sequential(*layers, nn.Linear(w, 10)).to(dtype)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
perm = torch.randperm(rows)
t0 = time.time()
for b in range(0, rows, 128):
    idx = perm[b:b + 128]
    x, y = X[idx], Y[idx]
    model.eval()
    p_nat = F.softmax(model(x), 1).detach()
    xa = (x + 0.001 * torch.randn_like(x)).clamp(0, 1)
    for _ in range(10):
        xa.requires_grad_()
        kl = F.kl_div(F.log_softmax(model(xa), 1), p_nat, reduction='sum')
        g, = torch.autograd.grad(kl, [xa])
        xa = torch.min(torch.max(xa.detach() + 0.01 * torch.sign(g), x - 0.1), x + 0.1).clamp(0, 1)
    model.train()
    opt.zero_grad()
    z = model(x)
    loss = F.cross_entropy(z, y) + 6.0 * F.kl_div(F.log_softmax(model(xa), 1), F.softmax(z, 1), reduction='batchmean')
    loss.backward()
    opt.step()
sec = time.time() - t0
with torch.no_grad():
    acc = (model(Xt).argmax(1) == Yt).double().mean().item()
print(json.dumps({"bench": "fire", "case": "torch-trades-epoch", "dtype": sys.argv[4], "rows": rows, "hidden": sys.argv[3], "threads": 1, "seconds": round(sec, 2), "clean_accuracy_after_1_epoch": round(acc, 4)}))
