"""The evaluation path shared by the Recorder and the package's own trainer (docs/recorder.md).

One split of evaluation data (:class:`EvalSplit`: tensors or a DataLoader, optionally subsampled, then cut
into this rank's contiguous shard) is run through the network in eval mode without gradients
(:func:`eval_mode`); a forward hook on the classifier head captures the head's input, the penultimate
features H, stored float32 (:func:`evaluate_split`). Under ``torch.distributed`` every rank evaluates its
shard and :func:`gather_shards` concatenates them on rank 0 in rank order, which is dataset order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .heads import RecorderError

__all__ = [
    "EvalSplit",
    "HeadHook",
    "ShardEval",
    "all_ranks_ok",
    "capped_balanced_subsample",
    "comm_device",
    "dist_info",
    "eval_mode",
    "evaluate_split",
    "gather_input_stats",
    "gather_shards",
    "labels_of_dataset",
    "misclassified",
]


# ------------------------------------------------------------------------------------------------ data

def labels_of_dataset(ds) -> np.ndarray:
    for attr in ("targets", "labels"):
        t = getattr(ds, attr, None)
        if t is not None:
            return np.asarray(t.cpu() if isinstance(t, torch.Tensor) else t, dtype=np.int64)
    if isinstance(ds, torch.utils.data.Subset):
        return labels_of_dataset(ds.dataset)[np.asarray(ds.indices)]
    if isinstance(ds, torch.utils.data.TensorDataset):
        return ds.tensors[1].cpu().numpy().astype(np.int64)
    return np.asarray([int(ds[i][1]) for i in range(len(ds))], dtype=np.int64)  # loads every item once


def capped_balanced_subsample(y: np.ndarray, n_per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of ``min(n_per_class, count_c)`` samples of every class c, drawn with
    ``np.random.default_rng(seed)`` (classes in increasing order)."""
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        out.append(idx if idx.size <= n_per_class else np.sort(rng.choice(idx, n_per_class, replace=False)))
    return np.sort(np.concatenate(out)) if out else np.arange(0)


class EvalSplit:
    """One evaluation split: tensors ``(X, y)`` or a DataLoader, restricted to ``indices`` (subsample),
    then to this rank's contiguous shard. Iterating yields ``(x, y)`` batches in dataset order."""

    def __init__(self, name: str, data, *, batch_size: int, subsample: int, seed: int, rank: int, world: int,
                 unpack: Callable | None):
        self.name, self.unpack, self.batch_size = name, unpack, batch_size
        self.loader = None
        if isinstance(data, torch.utils.data.DataLoader):
            self.loader = data
            ds = data.dataset
            if isinstance(ds, torch.utils.data.IterableDataset):
                if world > 1 or subsample:
                    raise RecorderError(f"{name}: an IterableDataset cannot be sharded or subsampled by the "
                                        "recorder; pass a map-style dataset (or tensors)")
                self.n_total, self.labels_all, self.indices = None, None, None
                return
            n = len(ds)
            self.labels_all = labels_of_dataset(ds) if subsample else None
        elif isinstance(data, (tuple, list)) and len(data) == 2:
            X, y = data
            X = torch.as_tensor(X) if not isinstance(X, torch.Tensor) else X
            y = torch.as_tensor(y) if not isinstance(y, torch.Tensor) else y
            if X.shape[0] != y.shape[0] or y.ndim != 1:
                raise RecorderError(f"{name}=(X, y): need X (N, ...) and y (N,) with the same N, got "
                                    f"{tuple(X.shape)} and {tuple(y.shape)}")
            if y.dtype.is_floating_point or y.dtype == torch.bool:
                raise RecorderError(f"{name}: labels must be integers 0..K-1, got dtype {y.dtype}")
            self.X, self.y = X, y.long()
            n = X.shape[0]
            self.labels_all = self.y.cpu().numpy()
        else:
            raise RecorderError(f"{name}: pass a torch DataLoader or a tuple (X, y) of tensors/arrays, got "
                                f"{type(data).__name__}")
        idx = np.arange(n)
        if subsample:
            idx = capped_balanced_subsample(self.labels_all, int(subsample), seed)
        self.n_total = int(idx.size)
        self.indices = np.array_split(idx, world)[rank] if world > 1 else idx

    def known_labels(self) -> np.ndarray | None:
        return None if self.labels_all is None else self.labels_all[self.indices]

    def batches(self, growing: bool = False) -> Iterable:
        """``growing``: (tensor data) batch sizes 32, 64, ... up to the batch size, so that an early-exit
        scan that stops in its first batch costs little."""
        if self.loader is None:
            i, bs = 0, min(32, self.batch_size) if growing else self.batch_size
            while i < self.indices.size:
                sel = self.indices[i:i + bs]
                i += bs
                bs = min(2 * bs, self.batch_size)
                if sel.size == sel[-1] - sel[0] + 1:  # contiguous: a view, no copy
                    yield self.X[int(sel[0]):int(sel[-1]) + 1], self.y[int(sel[0]):int(sel[-1]) + 1]
                else:
                    t = torch.from_numpy(sel)
                    yield self.X[t], self.y[t]
            return
        L = self.loader
        if self.indices is None:
            it = L
        elif (self.indices.size == len(L.dataset) and isinstance(L.sampler, torch.utils.data.SequentialSampler)
              and L.batch_sampler is not None and not L.drop_last):
            it = L  # already sequential over the whole dataset
        else:
            it = torch.utils.data.DataLoader(
                torch.utils.data.Subset(L.dataset, self.indices.tolist()),
                batch_size=L.batch_size or self.batch_size, shuffle=False, drop_last=False,
                num_workers=L.num_workers, collate_fn=L.collate_fn, pin_memory=L.pin_memory)
        for batch in it:
            if self.unpack is not None:
                x, y = self.unpack(batch)
            elif isinstance(batch, (tuple, list)) and len(batch) >= 2:
                x, y = batch[0], batch[1]
            else:
                raise RecorderError(f"{self.name}: a batch is a {type(batch).__name__}, not (inputs, labels); "
                                    "pass unpack=lambda batch: (inputs, labels)")
            yield x, torch.as_tensor(y).long()


# ------------------------------------------------------------------------------------------------ dist

def dist_info():
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist, dist.get_rank(), dist.get_world_size()
    return None, 0, 1


def comm_device(dist) -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
        else torch.device("cpu")


@contextlib.contextmanager
def eval_mode(net: nn.Module, *, device: torch.device, amp=None):
    """Eval mode (every module's own train/eval flag restored afterwards), no gradients, optional autocast
    to the dtype ``amp``."""
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        with torch.no_grad(), (torch.autocast(device_type=device.type, dtype=amp)
                               if amp is not None else contextlib.nullcontext()):
            yield
    finally:
        for m, t in modes:
            m.training = t


def misclassified(h: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Misclassified rows: argmax of the float64 logits ``H W^T + b`` (ties to the lowest index) != y."""
    Z = h.astype(np.float64) @ W.T
    if b is not None:
        Z += b
    return Z.argmax(1) != y


class HeadHook:
    """Captures the input of ``head`` during ``net(x)`` (attached only inside ``with HeadHook(...)``)."""

    def __init__(self, net: nn.Module, head: nn.Module, *, device: torch.device, head_name: str = "head",
                 channels_last: bool = False):
        self.net, self.head, self.device, self.head_name = net, head, device, head_name
        self.channels_last = channels_last
        self.got: list[torch.Tensor] = []

    def __enter__(self) -> HeadHook:  # noqa: PYI034 (typing.Self needs Python 3.11)
        self.hook = self.head.register_forward_hook(lambda m, inp, out: self.got.append(inp[0]))
        return self

    def __exit__(self, *exc) -> None:
        self.hook.remove()

    def features(self, x: torch.Tensor) -> np.ndarray:
        """Head input for one batch, float32 numpy (N, d)."""
        self.got.clear()
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        self.net(x)
        if len(self.got) != 1:
            raise RecorderError(f"the head {self.head_name!r} ran {len(self.got)} times in one forward pass; "
                                "name the final classifier layer with head=")
        h = self.got[0].detach()
        if h.ndim != 2:
            raise RecorderError(f"the head {self.head_name!r} received input of shape {tuple(h.shape)}; the "
                                "recorder needs (batch, d) features")
        return h.float().cpu().numpy()


@dataclass
class ShardEval:
    """This rank's part of one evaluated split. ``H``/``y`` are None when an early-exit scan stopped."""
    H: np.ndarray | None
    y: np.ndarray | None
    wrong: np.ndarray             # shard positions of misclassified samples seen (with W given)
    scanned: int                  # samples evaluated
    input_stats: dict | None      # {"n", "sq" (sum of squared inputs), "shape"} when asked


def evaluate_split(net: nn.Module, head: nn.Module, split: EvalSplit, *, device: torch.device, amp=None,
                   W: np.ndarray | None = None, b: np.ndarray | None = None, stop_on_error: bool = False,
                   input_stats: bool = False, channels_last: bool = False, head_name: str = "head") -> ShardEval:
    """Penultimate features of this rank's shard of ``split`` (head input by a forward hook, float32), in
    eval mode without gradients. With the classifier ``W, b`` the misclassified shard positions are
    collected; ``stop_on_error`` ends the scan (batches growing from 32) at the first one (H, y = None)."""
    feats, labels, hard = [], [], []
    sq, n_in, shape, pos = 0.0, 0, None, 0
    with HeadHook(net, head, device=device, head_name=head_name, channels_last=channels_last) as hk, \
            eval_mode(net, device=device, amp=amp):
        for x, y in split.batches(growing=stop_on_error):
            h = hk.features(x)
            yy = y.cpu().numpy().astype(np.int64)
            if W is not None:
                wrong = misclassified(h, yy, W, b)
                hard.append(pos + np.flatnonzero(wrong))
                if stop_on_error and wrong.any():
                    return ShardEval(None, None, np.concatenate(hard), pos + yy.size, None)
            pos += yy.size
            if input_stats:
                xf = x.detach().to(torch.float64)
                sq += float((xf * xf).sum())
                n_in += int(xf.shape[0])
                shape = list(xf.shape[1:])
            feats.append(h)
            labels.append(yy)
    wrong_pos = np.concatenate(hard) if hard else np.zeros(0, np.int64)
    stats = {"n": n_in, "sq": sq, "shape": shape} if input_stats else None
    if not feats:
        d = W.shape[1] if W is not None else int(getattr(head, "in_features", 0) or head.weight.shape[1])
        return ShardEval(np.zeros((0, d), np.float32), np.zeros(0, np.int64), wrong_pos, 0, stats)
    return ShardEval(np.concatenate(feats), np.concatenate(labels), wrong_pos, pos, stats)


def gather_shards(part, dist=None, *, main: bool = True, world: int = 1):
    """``(H, y)`` of all ranks concatenated on rank 0 in rank order (= dataset order); None elsewhere.
    Without ``dist`` (single process) ``part`` itself."""
    if dist is None:
        return part
    out = [None] * world if main else None
    dist.gather_object(part, out, dst=0)
    if not main:
        return None
    return np.concatenate([p[0] for p in out]), np.concatenate([p[1] for p in out])


def gather_input_stats(stats: dict, dist=None, *, main: bool = True, world: int = 1) -> dict | None:
    """The input statistics of :func:`evaluate_split` summed over the ranks (on rank 0)."""
    if dist is None:
        return stats
    out = [None] * world if main else None
    dist.gather_object(stats, out, dst=0)
    if not main:
        return None
    return {"n": sum(s["n"] for s in out), "sq": sum(s["sq"] for s in out),
            "shape": next((s["shape"] for s in out if s["shape"]), None)}


def all_ranks_ok(ok: bool, dist=None) -> bool:
    """``ok`` on every rank (all-reduce MIN); ``ok`` itself in a single process."""
    if dist is None:
        return ok
    t = torch.tensor([1 if ok else 0], device=comm_device(dist))
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())
