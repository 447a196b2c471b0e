"""Record any PyTorch training loop into an ncmargin run directory (docs/recorder.md, docs/formats.md).

    from ncmargin import Recorder

    with Recorder("runs/mine", model, train=(X_tr, y_tr), test=test_loader, epochs=350,
                  metadata={"lr": 0.1, "weight_decay": 5e-4, "seed": 0}) as rec:
        rec.epoch_end(0)                       # optional: record the initialization
        for epoch in range(1, 351):
            ...                                # the user's own loop, optimizer, scheduler
            rec.epoch_end(epoch, lr=sched.get_last_lr()[0])
    # -> runs/mine: config.json, log.jsonl, summary.json, checkpoints/epoch_XXXX.npz + model_XXXX.pt

The head is the network's final ``nn.Linear`` (or the package's :class:`FixedETFHead`); a forward hook,
attached only while the recorder evaluates, captures the head's input as the penultimate features H, and
the head's weight and bias are the classifier (W, b). At the checkpoint epochs (log-spaced, reusing the
trainer's :func:`ncmargin.empirical.train.checkpoint_epochs`), at the onset of 100% train accuracy and at
:meth:`Recorder.close` the recorder evaluates the train and test data in eval mode without gradients
(optional autocast), stores the features as float32 and computes the log line with the trainer's own
:func:`ncmargin.empirical.train.epoch_metrics` (float64, ``ncmargin.theory``), so a recorded run and a run
of ``ncmargin train`` are read by the same analysis code.

Onset detection at every other epoch is cheap: the train samples misclassified at the previous check are
evaluated first (one small batch; they usually still are), then the train data are scanned in order in
growing batches (32, 64, ...) and the scan stops at the first misclassified sample; only a scan that finds
no error costs a full pass, and its features are then kept as the onset checkpoint's.

Distributed (``torch.distributed`` initialised, e.g. under ``torchrun`` with DDP): every rank evaluates a
contiguous shard of the data (``np.array_split`` of the dataset indices), the features and labels are
gathered to rank 0 in dataset order, and only rank 0 writes; every rank must call :meth:`epoch_end` and
:meth:`close` with the same epochs (they are collective).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ncmargin.io import atomic_path, atomic_save_npz, atomic_write_json, to_jsonable

__all__ = ["HeadNotFoundError", "Recorder", "RecorderError", "capped_balanced_subsample", "find_head"]

_UTC = datetime.timezone.utc  # noqa: UP017 (datetime.UTC needs Python 3.11)


class RecorderError(ValueError):
    """Bad input to the recorder (the message names the problem and the fix)."""


class HeadNotFoundError(RecorderError):
    """The classifier head could not be identified (missing or ambiguous); the message lists candidates."""


# ------------------------------------------------------------------------------------------------ head

def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DDP/DataParallel (``.module``) and ``torch.compile`` (``._orig_mod``)."""
    for _ in range(4):
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            break
    return model


def _is_etf(m: nn.Module) -> bool:
    from .models import FixedETFHead

    return isinstance(m, FixedETFHead)


def _is_head_like(m: nn.Module) -> bool:
    return isinstance(m, nn.Linear) or _is_etf(m)


def _describe(name: str, m: nn.Module) -> str:
    W = m.weight
    bias = getattr(m, "bias", None) is not None
    return f"{name or '<model>'}: {type(m).__name__}(in={W.shape[1]}, out={W.shape[0]}, bias={bias})"


def _last_head_in(name: str, m: nn.Module) -> tuple[str, nn.Module] | None:
    """``m`` itself if it is a Linear / fixed-ETF head, else the last such module inside it (VGG-style
    ``classifier = Sequential(..., Linear)``)."""
    if _is_head_like(m):
        return name, m
    found = [(f"{name}.{n}" if name else n, c) for n, c in m.named_modules() if n and _is_head_like(c)]
    return found[-1] if found else None


def find_head(model: nn.Module, head: str | nn.Module | None = None, *, num_classes: int | None = None,
              exact_classes: bool = True, probe: Callable[[], Any] | None = None) -> tuple[str, nn.Module]:
    """``(dotted name, module)`` of the classifier head of ``model`` (DDP/compile wrappers are unwrapped).

    ``head``: a module of ``model`` or its dotted name (``"fc"``, ``"classifier"``, ``"head"``); a container
    stands for the last ``nn.Linear`` / ``FixedETFHead`` inside it. ``None``: automatic — the candidates are
    every ``nn.Linear`` and ``FixedETFHead``, narrowed to ``out_features == num_classes`` when it is known
    (``>=`` with ``exact_classes=False``: K inferred from labels, which may miss classes); if several remain,
    ``probe()`` (one forward pass on a sample batch) keeps the one whose output *is* the model's output
    (without a probe, the single one with ``out_features == num_classes``). Anything else raises
    :class:`HeadNotFoundError` listing the candidates.
    """
    model = _unwrap(model)
    named = list(model.named_modules())
    if isinstance(head, nn.Module):
        for n, m in named:
            if m is head:
                got = _last_head_in(n, m)
                if got is None:
                    break
                return got
        else:
            raise HeadNotFoundError(f"the head module {type(head).__name__} is not a submodule of the model; "
                                    "pass a module of the model you record (or its dotted name)")
        raise HeadNotFoundError(f"head {type(head).__name__} contains no nn.Linear / FixedETFHead")
    all_heads = [(n, m) for n, m in named if _is_head_like(m)]
    listing = "; ".join(_describe(n, m) for n, m in all_heads) or "none"
    if isinstance(head, str):
        try:
            m = model.get_submodule(head)
        except AttributeError:
            raise HeadNotFoundError(f"head={head!r}: the model has no submodule of that name; Linear layers "
                                    f"present: {listing}") from None
        got = _last_head_in(head, m)
        if got is None:
            raise HeadNotFoundError(f"head={head!r} ({type(m).__name__}) contains no nn.Linear / FixedETFHead; "
                                    f"Linear layers present: {listing}")
        return got
    if head is not None:
        raise HeadNotFoundError(f"head={head!r}: pass None (automatic), a dotted module name or the module")
    if not all_heads:
        raise HeadNotFoundError("the model has no nn.Linear (nor FixedETFHead) layer, so no linear classifier "
                                "head to record; ncmargin needs logits = W h + b with a final linear layer")
    cands = all_heads
    if num_classes is not None:
        # given: out_features == K; inferred from labels (a split may miss the last classes): >= K, and among
        # several, those with == K
        ok = (lambda k: k == num_classes) if exact_classes else (lambda k: k >= num_classes)
        cands = [(n, m) for n, m in all_heads if ok(m.weight.shape[0])]
        if not cands:
            raise HeadNotFoundError(f"no nn.Linear with out_features {'=' if exact_classes else '>='} "
                                    f"{num_classes} (the number of classes) in the model; Linear layers present: "
                                    f"{listing}. Name the head: head='...'")
        eq = [(n, m) for n, m in cands if m.weight.shape[0] == num_classes]
        if len(cands) > 1 and len(eq) == 1 and probe is None:
            return eq[0]
    if len(cands) == 1:
        return cands[0]
    if probe is not None:
        outs: dict[str, Any] = {}
        hooks = [m.register_forward_hook(lambda mod, i, o, n=n: outs.__setitem__(n, o)) for n, m in cands]
        try:
            y = probe()
        finally:
            for h in hooks:
                h.remove()
        hit = [(n, m) for n, m in cands if n in outs and outs[n] is y]
        if len(hit) == 1:
            return hit[0]
    raise HeadNotFoundError("ambiguous head: several layers could be the classifier ("
                            + "; ".join(_describe(n, m) for n, m in cands)
                            + ") and none of them alone produces the model's output; name it, e.g. head="
                            + repr(cands[-1][0]))


def _head_arrays(head: nn.Module) -> tuple[np.ndarray, np.ndarray | None]:
    """W (K x d) and b (K or None) as float64: exact images of the stored parameters/buffer."""
    W = head.weight.detach().to("cpu", torch.float64).numpy()
    b = getattr(head, "bias", None)
    return W, (None if b is None else b.detach().to("cpu", torch.float64).numpy())


# ------------------------------------------------------------------------------------------------ data

def _labels_of_dataset(ds) -> np.ndarray:
    for attr in ("targets", "labels"):
        t = getattr(ds, attr, None)
        if t is not None:
            return np.asarray(t.cpu() if isinstance(t, torch.Tensor) else t, dtype=np.int64)
    if isinstance(ds, torch.utils.data.Subset):
        return _labels_of_dataset(ds.dataset)[np.asarray(ds.indices)]
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


class _Split:
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
            self.labels_all = _labels_of_dataset(ds) if subsample else None
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

def _dist():
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist, dist.get_rank(), dist.get_world_size()
    return None, 0, 1


def _comm_device(dist) -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
        else torch.device("cpu")


# ------------------------------------------------------------------------------------------------ recorder

class Recorder:
    """Record a user's training loop into a run directory (module docstring; docs/recorder.md).

    Parameters
    ----------
    out_dir: the run directory (created; must not already hold a run).
    model: the network being trained (a DDP / compiled wrapper is unwrapped for evaluation).
    train, test: ``(X, y)`` tensors/arrays or DataLoaders of the *evaluation* data (no augmentation);
        a DataLoader's dataset is read in order with its batch size, workers and collate_fn.
    head: None (automatic), a dotted module name (``"fc"``, ``"classifier"``) or the module itself.
    epochs: planned number of epochs; needed by ``schedule="log"``.
    schedule: ``"log"`` (epoch 0, ``num_checkpoints`` log-spaced epochs in 1..epochs, and ``epochs``: the
        trainer's schedule), ``"every"`` (every epoch) or an explicit iterable of epochs.
    metadata: JSON-able dict stored as ``config.json["config"]`` (lr, weight_decay, seed, dataset ...).
    subsample: keep at most this many train samples per class (balanced, seeded by ``subsample_seed``);
        0 = all. Train accuracy, onset and the stored train features then refer to the subsample.
    amp: autocast the evaluation forward (True = bfloat16, or a torch dtype); features are stored float32.
    device: where evaluation batches go (default: the device of the model's first parameter).
    check_onset: look for the onset of 100% train accuracy at every ``epoch_end`` (cheap, early exit).
    save_model: also save ``checkpoints/model_XXXX.pt`` (the state dict, for the spectral bound).
    spectral: also compute the whole-network spectral complexity at every checkpoint, in process (the
        user's model class need not be importable later): ``checkpoints/complexity_XXXX.json``.
    """

    def __init__(self, out_dir: str | os.PathLike, model: nn.Module, *, train, test,
                 head: str | nn.Module | None = None, epochs: int | None = None,
                 schedule: str | Iterable[int] = "log", num_checkpoints: int = 12,
                 metadata: dict | None = None, subsample: int = 0, subsample_seed: int = 0,
                 amp: bool | torch.dtype = False, device: str | torch.device | None = None,
                 eval_batch_size: int = 1024, num_classes: int | None = None, check_onset: bool = True,
                 save_model: bool = True, spectral: bool = False, unpack: Callable | None = None, model_factory: str | None = None):
        self.dist, self.rank, self.world = _dist()
        self.main = self.rank == 0
        self.out_dir = Path(out_dir)
        self.model = model
        self.net = _unwrap(model)
        p = next(self.net.parameters(), None)
        if device is None:
            device = p.device if p is not None else torch.device("cpu")
        self.device = torch.device(device)
        if amp is True:
            amp = torch.bfloat16
        self.amp = amp or None
        self.metadata = dict(metadata or {})
        self.save_model = bool(save_model)
        self.spectral = bool(spectral)
        self.check_onset = bool(check_onset)
        self.model_factory = model_factory
        if epochs is not None and (int(epochs) != epochs or epochs < 0):
            raise RecorderError(f"epochs={epochs!r}: give the planned number of epochs (an int >= 0)")
        self.epochs = None if epochs is None else int(epochs)
        if isinstance(schedule, str):
            if schedule == "log":
                if self.epochs is None:
                    raise RecorderError("schedule='log' needs epochs= (the planned number of epochs) to place "
                                        "the log-spaced checkpoints; or pass schedule=[...] / 'every'")
                from .train import checkpoint_epochs

                self.schedule: set[int] | None = set(checkpoint_epochs(self.epochs, int(num_checkpoints)))
            elif schedule == "every":
                self.schedule = None
            else:
                raise RecorderError(f"schedule={schedule!r}: use 'log', 'every' or a list of epochs")
        else:
            self.schedule = {int(e) for e in schedule}
        self.num_checkpoints = int(num_checkpoints)
        self.schedule_name = schedule if isinstance(schedule, str) else "explicit"
        self.subsample, self.subsample_seed = int(subsample or 0), int(subsample_seed)
        if self.subsample < 0:
            raise RecorderError(f"subsample={subsample}: give a per-class count >= 1, or 0 for all samples")
        if test is None:
            raise RecorderError("test= is required: claim 2 and the analysis compare with the test error; pass "
                                "a held-out split as (X, y) or a DataLoader (without augmentation)")
        self.train = _Split("train", train, batch_size=eval_batch_size, subsample=self.subsample,
                            seed=self.subsample_seed, rank=self.rank, world=self.world, unpack=unpack)
        self.test = _Split("test", test, batch_size=eval_batch_size, subsample=0, seed=0, rank=self.rank,
                           world=self.world, unpack=unpack)
        exact = num_classes is not None
        if num_classes is None and self.train.labels_all is not None:
            labs = [self.train.labels_all] + ([] if self.test is None or self.test.labels_all is None
                                              else [self.test.labels_all])
            num_classes = int(max(int(v.max()) for v in labs if v.size)) + 1
        self.head_name, self.head = find_head(self.net, head, num_classes=num_classes, exact_classes=exact,
                                              probe=self._probe)
        self.K = int(self.head.weight.shape[0])
        if num_classes is not None and num_classes > self.K:
            raise RecorderError(f"labels go up to {num_classes - 1} but the head {self.head_name!r} has only "
                                f"{self.K} outputs; pass the right head=")
        self.onset: int | None = None
        self.last_epoch: int | None = None
        self.recorded: list[int] = []
        self.closed = False
        self._t_last = time.perf_counter()
        self._input_stats: dict | None = None
        self._hard: np.ndarray | None = None  # shard positions of train samples last seen misclassified
        # cost accounting of the onset checks (benchmarks/bench_recorder.py prints it)
        self.stats = {"onset_checks": 0, "ended_on_hard": 0, "scan_samples": 0, "check_seconds": 0.0,
                      "seconds": 0.0}  # seconds: all time spent inside epoch_end/close
        if self.main:
            if (self.out_dir / "log.jsonl").exists() or (self.out_dir / "config.json").exists():
                raise RecorderError(f"{self.out_dir} already holds a run; pass another out_dir (recorded runs "
                                    "are not resumed: start a new directory)")
            (self.out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            self._write_config()

    # -------------------------------------------------------------------------------------- public
    def epoch_end(self, epoch: int, **scalars: Any) -> dict | None:
        """Call after every epoch (``epoch`` = number of completed epochs; 0 = before training). Evaluates
        and writes a checkpoint at scheduled epochs and at the onset of 100% train accuracy. ``scalars``
        (e.g. ``lr=``, ``batch_loss=``) go into the log line when this epoch is recorded. Returns the log
        line written (rank 0) or None."""
        if self.closed:
            raise RecorderError("epoch_end after close(); create a new Recorder for a new run")
        epoch = int(epoch)
        if self.last_epoch is not None and epoch <= self.last_epoch:
            raise RecorderError(f"epoch_end({epoch}) after epoch_end({self.last_epoch}): epochs must increase")
        t_in = time.perf_counter()
        seconds = t_in - self._t_last
        self.last_epoch = epoch
        try:
            scheduled = self.schedule is None or epoch in self.schedule
            if scheduled:
                return self._record(epoch, seconds, scalars)
            if self.check_onset and self.onset is None:
                pre = self._onset_scan()
                if pre is not None:
                    return self._record(epoch, seconds, scalars, train_pre=pre)
            return None
        finally:
            self._t_last = time.perf_counter()
            self.stats["seconds"] += self._t_last - t_in

    def close(self, epoch: int | None = None, **scalars: Any) -> None:
        """Record the final epoch (``epoch`` or the last one seen, unless already recorded) and mark the
        run complete in summary.json. Collective under torch.distributed."""
        if self.closed:
            return
        if epoch is not None and (self.last_epoch is None or int(epoch) > self.last_epoch):
            self.epoch_end(int(epoch), **scalars)
        elif self.last_epoch is None:
            raise RecorderError("close() before any epoch_end(); call rec.epoch_end(epoch) in the loop "
                                "(or close(epoch=N))")
        t_in = time.perf_counter()
        if self.last_epoch not in self.recorded:
            self._record(self.last_epoch, t_in - self._t_last, scalars)
        self.closed = True
        if self.main:
            self._write_summary(complete=True)
        self.stats["seconds"] += time.perf_counter() - t_in

    def __enter__(self) -> Recorder:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()

    # -------------------------------------------------------------------------------------- evaluation
    def _probe(self):
        for x, _ in self.train.batches():
            with self._eval_mode():
                return self.net(x[:2].to(self.device))
        return None

    @contextlib.contextmanager
    def _eval_mode(self):
        modes = [(m, m.training) for m in self.net.modules()]
        self.net.eval()
        try:
            with torch.no_grad(), (torch.autocast(device_type=self.device.type, dtype=self.amp)
                                   if self.amp is not None else contextlib.nullcontext()):
                yield
        finally:
            for m, t in modes:
                m.training = t

    def _features(self, x: torch.Tensor, got: list) -> np.ndarray:
        """Head input for one batch (the hook appends to ``got``), float32 numpy."""
        got.clear()
        self.net(x.to(self.device, non_blocking=True))
        if len(got) != 1:
            raise RecorderError(f"the head {self.head_name!r} ran {len(got)} times in one forward pass; name "
                                "the final classifier layer with head=")
        h = got[0].detach()
        if h.ndim != 2:
            raise RecorderError(f"the head {self.head_name!r} received input of shape {tuple(h.shape)}; the "
                                "recorder needs (batch, d) features")
        return h.float().cpu().numpy()

    @staticmethod
    def _wrong(h: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        """Misclassified rows: argmax of the float64 logits ``H W^T + b`` (ties to the lowest index) != y."""
        Z = h.astype(np.float64) @ W.T
        if b is not None:
            Z += b
        return Z.argmax(1) != y

    def _forward_split(self, split: _Split, W: np.ndarray, b: np.ndarray | None, stop_on_error: bool,
                       input_stats: bool = False):
        """This rank's shard of ``split``: (H float32 (n, d), y int64 (n,)), or None when ``stop_on_error``
        and a sample is misclassified. For the train split, the shard positions of misclassified samples
        seen are kept in ``self._hard`` (checked first by the next onset scan)."""
        got: list[torch.Tensor] = []
        hook = self.head.register_forward_hook(lambda m, inp, out: got.append(inp[0]))
        feats, labels, hard = [], [], []
        sq, n_in, shape, pos = 0.0, 0, None, 0
        try:
            with self._eval_mode():
                for x, y in split.batches(growing=stop_on_error):
                    h = self._features(x, got)
                    yy = y.cpu().numpy().astype(np.int64)
                    if split is self.train:
                        wrong = self._wrong(h, yy, W, b)
                        hard.append(pos + np.flatnonzero(wrong))
                        if stop_on_error and wrong.any():
                            self.stats["scan_samples"] += yy.size
                            self._hard = np.concatenate(hard)
                            return None
                    pos += yy.size
                    if stop_on_error:
                        self.stats["scan_samples"] += yy.size
                    if input_stats:
                        xf = x.detach().to(torch.float64)
                        sq += float((xf * xf).sum())
                        n_in += int(xf.shape[0])
                        shape = list(xf.shape[1:])
                    feats.append(h)
                    labels.append(yy)
        finally:
            hook.remove()
        if split is self.train:
            self._hard = np.concatenate(hard) if hard else np.zeros(0, np.int64)
        if input_stats:
            self._input_stats = {"n": n_in, "sq": sq, "shape": shape}
        if not feats:
            return np.zeros((0, W.shape[1]), np.float32), np.zeros(0, np.int64)
        return np.concatenate(feats), np.concatenate(labels)

    def _hard_still_wrong(self, W, b) -> bool:
        """Whether a train sample misclassified at the previous scan/evaluation still is (one small batch,
        outside the data loader's workers): misclassified samples tend to stay so, so the scan before the
        onset usually ends here."""
        sp, hard = self.train, self._hard
        if hard is None or hard.size == 0 or sp.indices is None:
            return False
        pos = hard[:8]  # a few suffice: the check ends at the first that is still wrong (cost ~ batch size)
        idx = sp.indices[pos]
        if sp.loader is None:
            t = torch.from_numpy(idx)
            x, y = sp.X[t], sp.y[t]
        else:
            batch = sp.loader.collate_fn([sp.loader.dataset[int(i)] for i in idx])
            x, y = sp.unpack(batch) if sp.unpack is not None else (batch[0], batch[1])
        got: list[torch.Tensor] = []
        hook = self.head.register_forward_hook(lambda m, inp, out: got.append(inp[0]))
        try:
            with self._eval_mode():
                h = self._features(x, got)
        finally:
            hook.remove()
        wrong = self._wrong(h, torch.as_tensor(y).cpu().numpy().astype(np.int64), W, b)
        if wrong.any():
            self._hard = pos[wrong]
            return True
        return False

    def _gather(self, part):
        """Concatenate the ranks' shards on rank 0 in rank order (= dataset order); None elsewhere."""
        if self.dist is None:
            return part
        out = [None] * self.world if self.main else None
        self.dist.gather_object(part, out, dst=0)
        if not self.main:
            return None
        return np.concatenate([p[0] for p in out]), np.concatenate([p[1] for p in out])

    def _all_ok(self, ok: bool) -> bool:
        if self.dist is None:
            return ok
        t = torch.tensor([1 if ok else 0], device=_comm_device(self.dist))
        self.dist.all_reduce(t, op=self.dist.ReduceOp.MIN)
        return bool(t.item())

    def _onset_scan(self):
        """Early-exit scan of the train shard: its (H, y) when every sample of every rank is classified
        correctly (then the onset is this epoch), else None."""
        t0 = time.perf_counter()
        W, b = _head_arrays(self.head)
        self.stats["onset_checks"] += 1
        if self._hard_still_wrong(W, b):
            self.stats["ended_on_hard"] += 1
            part = None
        else:
            part = self._forward_split(self.train, W, b, stop_on_error=True)
        ok = self._all_ok(part is not None)
        self.stats["check_seconds"] += time.perf_counter() - t0
        return part if ok else None

    def _record(self, epoch: int, seconds: float, scalars: dict, train_pre=None) -> dict | None:
        from .train import LOG_KEYS, epoch_metrics

        t0 = time.perf_counter()
        W, b = _head_arrays(self.head)
        need_stats = self._input_stats is None
        tr = train_pre if (train_pre is not None and not need_stats) else \
            self._forward_split(self.train, W, b, False, input_stats=need_stats)
        te = self._forward_split(self.test, W, b, False) if self.test is not None else None
        tr = self._gather(tr)
        te = self._gather(te) if te is not None else None
        if need_stats and self.dist is not None:
            stats = [None] * self.world if self.main else None
            self.dist.gather_object(self._input_stats, stats, dst=0)
            if self.main:
                self._input_stats = {"n": sum(s["n"] for s in stats), "sq": sum(s["sq"] for s in stats),
                                     "shape": next((s["shape"] for s in stats if s["shape"]), None)}
        rec = None
        if self.main:
            H_tr, y_tr = tr
            H_te, y_te = te if te is not None else (H_tr, y_tr)  # metrics need a test split; nulled below
            for nm, yv in (("train", y_tr), ("test", y_te)):
                if yv.size and (yv.min() < 0 or yv.max() >= self.K):
                    raise RecorderError(f"{nm} labels must lie in 0..{self.K - 1} (the head has {self.K} "
                                        f"outputs), got {int(yv.min())}..{int(yv.max())}")
            m = epoch_metrics(H_tr, y_tr, H_te, y_te, W, b)
            if te is None:
                m["test_acc"] = m["test_loss"] = None
            if self.onset is None and m["train_acc"] == 1.0:
                self.onset = epoch
            rec = {"epoch": epoch, **m, "lr": scalars.pop("lr", None),
                   "batch_loss": scalars.pop("batch_loss", None), "terminal_phase": self.onset is not None,
                   "seconds": seconds, "eval_seconds": time.perf_counter() - t0}
            rec = {k: rec.get(k) for k in LOG_KEYS}
            rec.update(scalars)
            rec = to_jsonable(rec)
            if te is None:
                H_te, y_te = np.zeros((0, H_tr.shape[1]), np.float32), np.zeros(0, np.int64)
            self._save_checkpoint(epoch, H_tr, y_tr, H_te, y_te, W, b)
            self._append_log(rec)
            if epoch not in self.recorded:
                self.recorded.append(epoch)
            if len(self.recorded) == 1:
                self._write_config()  # now with the data info
            self._write_summary(complete=False)
        else:
            self.recorded.append(epoch)
        if self.dist is not None:
            box = [self.onset]
            self.dist.broadcast_object_list(box, src=0)
            self.onset = box[0]
        return rec

    # -------------------------------------------------------------------------------------- writing
    def _save_checkpoint(self, epoch, H_tr, y_tr, H_te, y_te, W, b) -> None:
        ck = self.out_dir / "checkpoints"
        extra = {} if b is None else {"bias": b}
        atomic_save_npz(ck / f"epoch_{epoch:04d}.npz", features=H_tr, labels=y_tr, split=np.asarray("train"),
                        test_features=H_te, test_labels=y_te, classifier=W, epoch=np.asarray(epoch),
                        onset_epoch=np.asarray(-1 if self.onset is None else self.onset), **extra)
        if self.save_model:
            with atomic_path(ck / f"model_{epoch:04d}.pt") as tmp:
                torch.save({k: v.detach().cpu() for k, v in self.net.state_dict().items()}, tmp)
        if self.spectral:
            atomic_write_json(ck / f"complexity_{epoch:04d}.json", {"epoch": epoch, **self._complexity()})

    def _complexity(self) -> dict:
        """``network_spectral_complexity`` of the network now (Bartlett et al. 2017; docs/theory.md §5),
        from the train inputs' N and ||X||_F collected during evaluation, or ``{"error": ...}``."""
        from .complexity import network_spectral_complexity

        st = self._input_stats
        try:
            if not st or not st["n"] or not st["shape"]:
                raise RecorderError("no train inputs were seen")
            xF = float(np.sqrt(st["sq"]))
            # R_A depends on the weights only; ||X||_F and N enter through rademacher = ||X||_F R_A / N, so a
            # one-row stand-in with the same Frobenius norm gives R_A and we rescale rademacher by N.
            x1 = torch.zeros((1, *st["shape"]), dtype=torch.float64)
            x1.view(-1)[0] = xF
            sc = network_spectral_complexity(self.net, x1, input_shape=tuple(st["shape"]))
            sc.update(N=int(st["n"]), input_norm_F=xF, rademacher=xF * sc["R_A"] / int(st["n"]))
            return sc
        except (ValueError, RuntimeError) as exc:
            return {"error": f"spectral complexity failed: {type(exc).__name__}: {exc}"}

    def _append_log(self, rec: dict) -> None:
        with open(self.out_dir / "log.jsonl", "a") as fh:
            fh.write(json.dumps(rec, allow_nan=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _write_summary(self, complete: bool) -> None:
        ckpts = sorted(int(p.stem.split("_")[1]) for p in (self.out_dir / "checkpoints").glob("epoch_*.npz"))
        atomic_write_json(self.out_dir / "summary.json", {
            "onset_epoch": self.onset, "last_epoch": self.last_epoch, "state_epoch": None,
            "epochs": self.epochs if self.epochs is not None else self.last_epoch,
            "complete": bool(complete), "checkpoints": ckpts, "source": "recorder"})

    def _write_config(self) -> None:
        from .train import LOG_KEYS, _git_commit, _versions  # provenance helpers shared with the trainer

        prev = None
        cp = self.out_dir / "config.json"
        if cp.is_file():
            prev = json.loads(cp.read_text())
        d = self.net.state_dict()
        n_params = sum(p.numel() for p in self.net.parameters())
        W = self.head.weight
        st = self._input_stats
        data = {"dataset": self.metadata.get("dataset", "external"),
                "n_train": self.train.n_total, "n_test": None if self.test is None else self.test.n_total,
                "num_classes": self.K, "train_subsample_per_class": self.subsample or None,
                "train_subsample_seed": self.subsample_seed if self.subsample else None,
                "input_shape": st["shape"] if st else None,
                "train_input_norm_F": float(np.sqrt(st["sq"])) if st else None}
        dev = str(self.device) + (f" ({torch.cuda.get_device_name(self.device)})"
                                  if self.device.type == "cuda" else "")
        meta = {
            "config": to_jsonable(self.metadata), "seed": self.metadata.get("seed"),
            "created": prev["created"] if prev else datetime.datetime.now(_UTC).isoformat(timespec="seconds"),
            "versions": _versions(), "git_commit": self.metadata.get("git_commit"),
            "ncmargin_git_commit": _git_commit(),
            "device": dev, "world_size": self.world, "num_threads": torch.get_num_threads(),
            "data": data, "num_classes": self.K,
            "model": {"class": type(self.net).__name__, "feature_dim": int(W.shape[1]),
                      "head": type(self.head).__name__, "head_name": self.head_name,
                      "head_bias": getattr(self.head, "bias", None) is not None,
                      "num_parameters": int(n_params), "state_keys": len(d), "factory": self.model_factory},
            "checkpoint_epochs": sorted(self.schedule) if self.schedule is not None else "every",
            "log_keys": list(LOG_KEYS), "format": "docs/formats.md",
            "recorder": {"schedule": self.schedule_name, "num_checkpoints": self.num_checkpoints,
                         "epochs": self.epochs, "check_onset": self.check_onset,
                         "amp": None if self.amp is None else str(self.amp).replace("torch.", ""),
                         "eval_batch_size": self.train.batch_size, "save_model": self.save_model,
                         "spectral": self.spectral},
        }
        if _is_etf(self.head):
            meta["model"]["etf"] = {"perm": self.head.perm, "rotation_seed": self.head.rotation_seed,
                                    "scale": self.head.scale}
        atomic_write_json(cp, meta)

