"""One prepared device check (issue 15): the certified SVM on synthetic float32 features with the torch
backend (CUDA when available), and ResNet-18 training throughput on CIFAR-shaped synthetic data.

    python benchmarks/gpu_check.py                                  # (1.28M, 2048, 1000) on the GPU
    python benchmarks/gpu_check.py --n 20000 --d 64 --k 10 --resnet-n 512 --svm-seconds 60   # CPU smoke

The SVM part is bounded by --svm-seconds (the solver's own max_seconds, honored within ~10%): it prints
the wall time, the status (optimal, or time_limit with the certified gap of the best feasible W) and how
far the time is from the 10-minute target. Features: class means + Gaussian noise (benchmarks/bench_svm.py
``make_features`` distribution), generated on the device in chunks and kept as one float32 array.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def features(n, d, k, noise, seed, device):
    import torch

    g = torch.Generator(device=device).manual_seed(seed)
    M = torch.randn(k, d, generator=g, device=device) / d ** 0.5
    y = torch.randint(0, k, (n,), generator=g, device=device)
    H = np.empty((n, d), dtype=np.float32)
    step = max(1, (1 << 26) // d)
    for s in range(0, n, step):
        e = min(n, s + step)
        blk = M[y[s:e]] + noise * torch.randn(e - s, d, generator=g, device=device) / d ** 0.5
        H[s:e] = blk.float().cpu().numpy()
    return H, y.cpu().numpy().astype(np.int64)


def svm_check(args, device):
    from ncmargin.solvers import multiclass_svm

    t = time.perf_counter()
    H, y = features(args.n, args.d, args.k, args.noise, args.seed, device)
    t_gen = time.perf_counter() - t
    t = time.perf_counter()
    sol = multiclass_svm(H, y, backend="torch" if device == "cpu" else f"torch:{device}",
                         max_seconds=args.svm_seconds)
    el = time.perf_counter() - t
    out = {"problem": [args.n, args.d, args.k], "dtype": "float32", "device": device,
           "generate_seconds": round(t_gen, 1), "svm_seconds": round(el, 1), "status": str(sol.status),
           "certified": sol.certified, "gap": sol.duality_gap, "violation": sol.max_violation,
           "n_support": sol.n_support, "sv_fraction": sol.n_support / args.n, "method": sol.method,
           "target_seconds": 600, "time_vs_target": round(el / 600, 3),
           "phases": {k: round(v, 1) for k, v in sol.info.items() if k.startswith("seconds")}}
    print("SVM " + json.dumps(out), flush=True)
    return out


def resnet_check(args, device):
    import torch
    import torch.nn.functional as F

    from ncmargin.empirical.models import ResNet18

    torch.manual_seed(0)
    model = ResNet18((3, 32, 32))
    model.head = torch.nn.Linear(512, 10)
    model = model.to(device)
    cuda = device.startswith("cuda")
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.resnet_n, 3, 32, 32, device=device)
    yy = torch.randint(0, 10, (args.resnet_n,), device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    bs = min(args.batch, args.resnet_n)

    def epoch():
        model.train()
        perm = torch.randperm(args.resnet_n, device=device)
        for s in range(0, args.resnet_n - bs + 1, bs):
            idx = perm[s:s + bs]
            with torch.autocast(device_type="cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(x[idx]), yy[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    epoch()  # warm-up (cuDNN autotune, allocator)
    if cuda:
        torch.cuda.synchronize()
    t = time.perf_counter()
    n_ep = 0
    while n_ep < args.resnet_epochs and time.perf_counter() - t < args.resnet_seconds:
        epoch()
        n_ep += 1
    if cuda:
        torch.cuda.synchronize()
    el = time.perf_counter() - t
    imgs = n_ep * (args.resnet_n // bs) * bs
    out = {"model": "resnet18 (CIFAR variant)", "device": device, "batch": bs, "epochs": n_ep,
           "images": imgs, "seconds": round(el, 2), "images_per_second": round(imgs / el, 1),
           "bf16_autocast": cuda, "channels_last": cuda}
    print("RESNET " + json.dumps(out), flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_280_000)
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--noise", type=float, default=1.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--svm-seconds", type=float, default=330.0)
    ap.add_argument("--resnet-n", type=int, default=25_600)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--resnet-epochs", type=int, default=5)
    ap.add_argument("--resnet-seconds", type=float, default=60.0)
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    ap.add_argument("--out", default=None, help="write both results as JSON here")
    args = ap.parse_args(argv)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device {device}" + (f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else ""),
          flush=True)
    res = {"svm": svm_check(args, device), "resnet": resnet_check(args, device)}
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
