"""Training-loop throughput: ncmargin's device-resident loop beside a plain PyTorch DataLoader loop.

CPU (default): the quick preset (``quick_digits``: MLP 3x256 on digits, batch 128, SGD momentum) —
epochs/s of :func:`ncmargin.empirical.train.train_epoch` (tensors in memory, one randperm per epoch,
stable CE) versus the textbook loop (``DataLoader(TensorDataset(x, y), batch_size, shuffle=True)``,
``F.cross_entropy``) over the same model (same init) and data; plus the end-to-end trainer (per-epoch
float64 evaluation, NC metrics, logging, checkpoints) in epochs/s. Prints the ratios.

``--cuda``: ResNet-18 (CIFAR variant) on random CIFAR-shaped data (3x32x32, 10 classes): images/s of
``train_epoch`` with GPU-resident data, bf16 autocast and channels_last (optionally ``--compile``) versus
the plain loop (CPU tensors through a DataLoader with pinned memory, float32). Timed with CUDA
synchronisation. Not run in this project's CI (no GPU).

    python benchmarks/bench_train.py [--epochs 20] [--threads 1]
    python benchmarks/bench_train.py --cuda [--n 10000] [--epochs 3] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ncmargin.empirical.config import load_config
from ncmargin.empirical.data import load_dataset
from ncmargin.empirical.models import build_model
from ncmargin.empirical.train import train, train_epoch


def plain_epoch(model, opt, loader, device, amp=False, channels_last=False) -> None:
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
            out = model(xb)
        loss = F.cross_entropy(out.float(), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _sgd(model, cfg):
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_pair(fa, fb, epochs: int, device) -> tuple[float, float]:
    """Median seconds per epoch of ``fa`` and ``fb``, run interleaved (a, b, a, b, ...) after one warm-up
    epoch each, so drifting load on a shared machine hits both alike."""
    fa(0)
    fb(0)
    ta, tb = [], []
    for e in range(1, epochs + 1):
        for f, acc in ((fa, ta), (fb, tb)):
            _sync(device)
            t = time.perf_counter()
            f(e)
            _sync(device)
            acc.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def bench_cpu(epochs: int, threads: int) -> None:
    torch.set_num_threads(threads)
    cfg = load_config("quick_digits")
    data = load_dataset(cfg)
    dev = torch.device("cpu")
    K, shape = data.num_classes, data.input_shape
    torch.manual_seed(0)
    m1 = build_model(cfg, shape, K)
    torch.manual_seed(0)
    m2 = build_model(cfg, shape, K)
    o1, o2 = _sgd(m1, cfg), _sgd(m2, cfg)
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=cfg.batch_size, shuffle=True)
    t_ours, t_plain = _time_pair(
        lambda e: train_epoch(m1, o1, data.x_train, data.y_train, cfg.batch_size, seed=0, epoch=e),
        lambda e: plain_epoch(m2, o2, loader, dev), epochs, dev)
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        train("quick_digits", f"{d}/run", overrides=[f"epochs={epochs}", "quiet=true", f"num_threads={threads}"])
        t_full = time.perf_counter() - t
    n = data.x_train.shape[0]
    print(f"quick_digits (digits, MLP {cfg.depth}x{cfg.width}, N={n}, batch {cfg.batch_size}), "
          f"{epochs} epochs, torch threads={threads}")
    print(f"  ncmargin train_epoch       {1 / t_ours:8.2f} epochs/s (median epoch, interleaved)")
    print(f"  plain DataLoader loop      {1 / t_plain:8.2f} epochs/s")
    print(f"  ratio ours / plain         {t_plain / t_ours:8.2f}x")
    print(f"  full trainer (eval+log+ckpt, incl. data load and epoch-0 eval) {epochs / t_full:8.2f} epochs/s "
          f"({t_full / (epochs * t_ours):.2f}x the bare loop's time)")


def bench_cuda(n: int, epochs: int, batch: int, compile_: bool) -> None:
    if not torch.cuda.is_available():
        raise SystemExit("--cuda: no CUDA device here")
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    cfg = load_config(None, ["model=resnet18", "lr=0.1", "weight_decay=5e-4"])
    g = torch.Generator().manual_seed(0)
    x_cpu = torch.randn(n, 3, 32, 32, generator=g)
    y_cpu = torch.randint(0, 10, (n,), generator=g)
    torch.manual_seed(0)
    m1 = build_model(cfg, (3, 32, 32), 10).to(dev).to(memory_format=torch.channels_last)
    torch.manual_seed(0)
    m2 = build_model(cfg, (3, 32, 32), 10).to(dev)
    o1, o2 = _sgd(m1, cfg), _sgd(m2, cfg)
    fwd = torch.compile(m1) if compile_ else m1
    x, y = x_cpu.to(dev), y_cpu.to(dev)
    loader = DataLoader(TensorDataset(x_cpu, y_cpu), batch_size=batch, shuffle=True, pin_memory=True)
    t_ours, t_plain = _time_pair(
        lambda e: train_epoch(fwd, o1, x, y, batch, seed=0, epoch=e, amp=True, channels_last=True),
        lambda e: plain_epoch(m2, o2, loader, dev), epochs, dev)
    print(f"ResNet-18 on random CIFAR-shaped data, N={n}, batch {batch}, {epochs} epochs, "
          f"{torch.cuda.get_device_name(dev)}")
    print(f"  ncmargin (resident, bf16, channels_last{', compiled' if compile_ else ''}) "
          f"{n / t_ours:10.0f} images/s (median epoch)")
    print(f"  plain DataLoader loop (fp32)                 {n / t_plain:10.0f} images/s")
    print(f"  ratio ours / plain                           {t_plain / t_ours:10.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=None, help="timed epochs (CPU default 20, CUDA 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--cuda", action="store_true", help="ResNet-18 images/s on the GPU")
    ap.add_argument("--n", type=int, default=10000, help="--cuda: number of random images")
    ap.add_argument("--batch", type=int, default=128, help="--cuda: batch size")
    ap.add_argument("--compile", action="store_true", help="--cuda: torch.compile our model")
    a = ap.parse_args()
    if a.cuda:
        bench_cuda(a.n, a.epochs or 3, a.batch, a.compile)
    else:
        bench_cpu(a.epochs or 20, a.threads)


if __name__ == "__main__":
    main()
