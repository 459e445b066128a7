"""Independent check for benchmarks/fire/run.sh: the networks boundopt trained (/network of each
results file), attacked in PyTorch by its own PGD-CE (eps 0.1, step 0.01, 40 steps, start
x + 0.001 N(0, I), float64) on all 10000 test images.  Prints one JSON line per file: clean and robust
accuracy, next to the numbers boundopt recorded (its robust accuracy is on the first EVAL_ROWS images).
  /usr/bin/python3 benchmarks/fire/eval_torch.py DATA.h5 RESULTS.h5 ...
"""
import json, sys
import h5py, numpy as np, torch, torch.nn.functional as F

torch.manual_seed(0)
f = h5py.File(sys.argv[1], 'r')
X = torch.tensor(f['features'][-10000:], dtype=torch.float64)
Y = torch.tensor(f['labels'][-10000:].astype(np.int64))

def forward(layers, x):
    for l, (W, b) in enumerate(layers):
        x = x @ W + b
        if l + 1 < len(layers): x = torch.relu(x)
    return x

for path in sys.argv[2:]:
    r = h5py.File(path, 'r'); w, p = r['network/widths'][:], torch.tensor(r['network/param'][:]); o = 0; layers = []
    for l in range(len(w) - 1):
        W = p[o:o + w[l] * w[l + 1]].reshape(int(w[l]), int(w[l + 1])); o += w[l] * w[l + 1]
        b = p[o:o + w[l + 1]]; o += w[l + 1]
        layers.append((W, b))
    with torch.no_grad(): clean = (forward(layers, X).argmax(1) == Y).double().mean().item()
    xa = (X + 0.001 * torch.randn_like(X)).clamp(0, 1)
    for _ in range(40):
        xa.requires_grad_()
        g, = torch.autograd.grad(F.cross_entropy(forward(layers, xa), Y, reduction='sum'), [xa])
        xa = torch.min(torch.max(xa.detach() + 0.01 * torch.sign(g), X - 0.1), X + 0.1).clamp(0, 1)
    with torch.no_grad(): rob = (forward(layers, xa).argmax(1) == Y).double().mean().item()
    print(json.dumps({"bench": "fire", "case": "torch-eval", "file": path.split('/')[-1], "loss": r.attrs['loss'].decode(), "beta": float(r.attrs['beta']),
        "clean_accuracy_torch": round(clean, 4), "robust_accuracy_torch_10000": round(rob, 4), "clean_accuracy_boundopt": round(float(r.attrs['clean_accuracy']), 4),
        "robust_accuracy_boundopt": round(float(r.attrs['robust_accuracy']), 4)}), flush=True)
