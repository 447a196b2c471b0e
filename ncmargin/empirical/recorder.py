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
trainer's schedule, :func:`ncmargin.store.log_spaced`), at the onset of 100% train accuracy and at
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

Split by job: head detection in :mod:`ncmargin.empirical.heads`, the shard evaluation and rank-0 gather
(shared with the package's trainer) in :mod:`ncmargin.empirical.evaluation`; this module is the recorder.
"""


from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ncmargin.io import atomic_path, atomic_save_npz, atomic_write_json, to_jsonable
from ncmargin.store import (
    CONFIG_FILE,
    LOG_FILE,
    append_log,
    checkpoint_file,
    complexity_path,
    git_commit,
    log_spaced,
    model_path,
    read_meta,
    versions,
    write_summary,
)

from .complexity import spectral_from_input_stats
from .evaluation import (
    EvalSplit,
    all_ranks_ok,
    capped_balanced_subsample,
    dist_info,
    eval_mode,
    evaluate_split,
    gather_input_stats,
    gather_shards,
)
from .heads import HeadNotFoundError, RecorderError, find_head, head_weights, is_etf_head, unwrap_model

__all__ = ["HeadNotFoundError", "Recorder", "RecorderError", "capped_balanced_subsample", "find_head"]

_UTC = datetime.timezone.utc  # noqa: UP017 (datetime.UTC needs Python 3.11)


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
        self.dist, self.rank, self.world = dist_info()
        self.main = self.rank == 0
        self.out_dir = Path(out_dir)
        self.model = model
        self.net = unwrap_model(model)
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
                # the trainer's checkpoint schedule (ncmargin.empirical.train.checkpoint_epochs)
                self.schedule: set[int] | None = set(log_spaced(self.epochs, int(num_checkpoints)))
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
        self.train = EvalSplit("train", train, batch_size=eval_batch_size, subsample=self.subsample,
                            seed=self.subsample_seed, rank=self.rank, world=self.world, unpack=unpack)
        self.test = EvalSplit("test", test, batch_size=eval_batch_size, subsample=0, seed=0, rank=self.rank,
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
            if (self.out_dir / LOG_FILE).exists() or (self.out_dir / CONFIG_FILE).exists():
                raise RecorderError(f"{self.out_dir} already holds a run; pass another out_dir (recorded runs "
                                    "are not resumed: start a new directory)")
            checkpoint_file(self.out_dir, 0).parent.mkdir(parents=True, exist_ok=True)
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
            with eval_mode(self.net, device=self.device, amp=self.amp):
                return self.net(x[:2].to(self.device))
        return None

    def _evaluate(self, split: EvalSplit, W, b, *, stop_on_error: bool = False, input_stats: bool = False):
        """This rank's shard of ``split`` (ncmargin.empirical.evaluation.evaluate_split): (H, y), or None
        when ``stop_on_error`` and a sample is misclassified. For the train split the shard positions of
        misclassified samples are kept in ``self._hard`` (checked first by the next onset scan)."""
        is_train = split is self.train
        r = evaluate_split(self.net, self.head, split, device=self.device, amp=self.amp,
                           W=W if is_train else None, b=b, stop_on_error=stop_on_error, input_stats=input_stats,
                           head_name=self.head_name)
        if stop_on_error:
            self.stats["scan_samples"] += r.scanned
        if is_train:
            self._hard = r.wrong
        if input_stats:
            self._input_stats = r.input_stats
        return None if r.H is None else (r.H, r.y)

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
        part = EvalSplit("hard", (x, torch.as_tensor(y)), batch_size=len(idx), subsample=0, seed=0, rank=0,
                         world=1, unpack=None)
        r = evaluate_split(self.net, self.head, part, device=self.device, amp=self.amp, W=W, b=b,
                           head_name=self.head_name)
        if r.wrong.size:
            self._hard = pos[r.wrong]
            return True
        return False

    def _onset_scan(self):
        """Early-exit scan of the train shard: its (H, y) when every sample of every rank is classified
        correctly (then the onset is this epoch), else None."""
        t0 = time.perf_counter()
        W, b = head_weights(self.head)
        self.stats["onset_checks"] += 1
        if self._hard_still_wrong(W, b):
            self.stats["ended_on_hard"] += 1
            part = None
        else:
            part = self._evaluate(self.train, W, b, stop_on_error=True)
        ok = all_ranks_ok(part is not None, self.dist)
        self.stats["check_seconds"] += time.perf_counter() - t0
        return part if ok else None

    def _record(self, epoch: int, seconds: float, scalars: dict, train_pre=None) -> dict | None:
        from .train import LOG_KEYS, epoch_metrics

        t0 = time.perf_counter()
        W, b = head_weights(self.head)
        need_stats = self._input_stats is None
        tr = train_pre if (train_pre is not None and not need_stats) else \
            self._evaluate(self.train, W, b, input_stats=need_stats)
        te = self._evaluate(self.test, W, b)
        g = {"main": self.main, "world": self.world}
        tr, te = gather_shards(tr, self.dist, **g), gather_shards(te, self.dist, **g)
        if need_stats:  # every rank keeps stats (not None), so all ranks take this branch only once
            total = gather_input_stats(self._input_stats, self.dist, **g)
            if self.main:
                self._input_stats = total
        rec = None
        if self.main:
            H_tr, y_tr = tr
            H_te, y_te = te
            for nm, yv in (("train", y_tr), ("test", y_te)):
                if yv.size and (yv.min() < 0 or yv.max() >= self.K):
                    raise RecorderError(f"{nm} labels must lie in 0..{self.K - 1} (the head has {self.K} "
                                        f"outputs), got {int(yv.min())}..{int(yv.max())}")
            m = epoch_metrics(H_tr, y_tr, H_te, y_te, W, b)
            if self.onset is None and m["train_acc"] == 1.0:
                self.onset = epoch
            rec = {"epoch": epoch, **m, "lr": scalars.pop("lr", None),
                   "batch_loss": scalars.pop("batch_loss", None), "terminal_phase": self.onset is not None,
                   "seconds": seconds, "eval_seconds": time.perf_counter() - t0}
            rec = {k: rec.get(k) for k in LOG_KEYS}
            rec.update(scalars)
            rec = to_jsonable(rec)
            self._save_checkpoint(epoch, H_tr, y_tr, H_te, y_te, W, b)
            append_log(self.out_dir, rec)
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
        extra = {} if b is None else {"bias": b}
        atomic_save_npz(checkpoint_file(self.out_dir, epoch), features=H_tr, labels=y_tr, split=np.asarray("train"),
                        test_features=H_te, test_labels=y_te, classifier=W, epoch=np.asarray(epoch),
                        onset_epoch=np.asarray(-1 if self.onset is None else self.onset), **extra)
        if self.save_model:
            with atomic_path(model_path(self.out_dir, epoch)) as tmp:
                torch.save({k: v.detach().cpu() for k, v in self.net.state_dict().items()}, tmp)
        if self.spectral:
            atomic_write_json(complexity_path(self.out_dir, epoch), {"epoch": epoch, **self._complexity()})

    def _complexity(self) -> dict:
        """``network_spectral_complexity`` of the network now (Bartlett et al. 2017; docs/theory.md §5),
        from the train inputs' N and ||X||_F collected during evaluation, or ``{"error": ...}``."""
        st = self._input_stats or {}
        try:
            return spectral_from_input_stats(self.net, input_norm_F=float(np.sqrt(st.get("sq", 0.0))),
                                             n=st.get("n"), input_shape=st.get("shape"))
        except (ValueError, RuntimeError) as exc:
            return {"error": f"spectral complexity failed: {type(exc).__name__}: {exc}"}

    def _write_summary(self, complete: bool) -> None:
        write_summary(self.out_dir, onset_epoch=self.onset, last_epoch=self.last_epoch,
                      epochs=self.epochs if self.epochs is not None else self.last_epoch, complete=bool(complete),
                      resumable=False, source="recorder")

    def _write_config(self) -> None:
        from .train import LOG_KEYS

        cp = self.out_dir / CONFIG_FILE
        prev = read_meta(self.out_dir) if cp.is_file() else None
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
            "versions": versions(), "git_commit": self.metadata.get("git_commit"),
            "ncmargin_git_commit": git_commit(),
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
        if is_etf_head(self.head):
            meta["model"]["etf"] = {"perm": self.head.perm, "rotation_seed": self.head.rotation_seed,
                                    "scale": self.head.scale}
        atomic_write_json(cp, meta)

