"""Read a run directory written by :func:`ncmargin.empirical.train.train` (format: docs/formats.md).

    run = load_run("runs/quick")
    run.config["lr"], run.onset_epoch, run.log[-1]["test_acc"], run.checkpoint_epochs
    fs = run.features(run.checkpoint_epochs[-1], split="train")   # ncmargin.io.FeatureSet (float64)

Only reads files; never imports torch (model weights are loaded by :func:`load_model_state` on request).
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ncmargin.io import FeatureSet, load_features, read_json

__all__ = [
    "Run",
    "checkpoint_path",
    "list_checkpoints",
    "load_checkpoint",
    "load_model_state",
    "load_run",
    "onset_epoch",
    "read_config",
    "read_log",
]


def _run_path(run_dir) -> Path:
    p = Path(run_dir)
    if not (p / "config.json").is_file():
        raise FileNotFoundError(f"{p}: not a run directory (no config.json); create one with "
                                "`ncmargin train CONFIG --out {p}`")
    return p


def read_config(run_dir) -> dict:
    """The whole config.json (the resolved training config is under ``"config"``)."""
    return read_json(_run_path(run_dir) / "config.json")


def read_log(run_dir) -> list[dict]:
    """log.jsonl as a list of dicts, one per epoch (epoch 0 = initialization). A trailing partial line
    (a run killed while writing) is dropped; a malformed line elsewhere raises ValueError."""
    path = _run_path(run_dir) / "log.jsonl"
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{path}: line {i + 1} is not valid JSON ({exc}); the log is corrupted, "
                             "re-run the training") from exc
    return out


def list_checkpoints(run_dir) -> list[int]:
    """Sorted epochs that have a complete ``checkpoints/epoch_XXXX.npz``."""
    d = _run_path(run_dir) / "checkpoints"
    return sorted(int(p.stem.split("_")[1]) for p in d.glob("epoch_*.npz") if p.stem.split("_")[1].isdigit())


def checkpoint_path(run_dir, epoch: int) -> Path:
    p = _run_path(run_dir) / "checkpoints" / f"epoch_{int(epoch):04d}.npz"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no checkpoint at epoch {epoch}; available: {list_checkpoints(run_dir)}")
    return p


def load_checkpoint(run_dir, epoch: int, split: str = "train") -> FeatureSet:
    """Features, labels, classifier and bias of one split at a checkpoint epoch (float64)."""
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}: choose train or test")
    return load_features(checkpoint_path(run_dir, epoch), split=split)


def load_model_state(run_dir, epoch: int) -> dict:
    """Model ``state_dict`` (CPU tensors) saved at a checkpoint epoch (``checkpoints/model_XXXX.pt``)."""
    import torch

    p = _run_path(run_dir) / "checkpoints" / f"model_{int(epoch):04d}.pt"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no model weights at epoch {epoch}")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        # UnpicklingError: a crafted file (or legacy-format garbage); RuntimeError/EOFError: truncated
        what = ("needs unpickling of arbitrary objects, which is refused (it could run code)"
                if isinstance(exc, pickle.UnpicklingError) and zipfile.is_zipfile(p) else
                f"corrupted or truncated ({type(exc).__name__})")
        raise ValueError(f"{p}: model weights {what}; delete it (analyze then skips the weight-based "
                         "complexity: --no-spectral) or retrain the run") from None


def onset_epoch(log: list[dict]) -> int | None:
    """First epoch with 100% train accuracy in a log (the onset of the terminal phase), or None."""
    for r in log:
        if r.get("train_acc") == 1.0:
            return int(r["epoch"])
    return None


@dataclass
class Run:
    """A loaded run directory: ``meta`` (config.json), ``config`` (the training config), ``log``,
    ``checkpoint_epochs``, ``onset_epoch`` (None if 100% train accuracy was never reached), ``summary``."""

    path: Path
    meta: dict
    log: list[dict]
    checkpoint_epochs: list[int]
    onset_epoch: int | None
    summary: dict = field(default_factory=dict)

    @property
    def config(self) -> dict:
        return self.meta["config"]

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    def features(self, epoch: int, split: str = "train") -> FeatureSet:
        return load_checkpoint(self.path, epoch, split)

    def checkpoint_path(self, epoch: int) -> Path:
        return checkpoint_path(self.path, epoch)

    def log_at(self, epoch: int) -> dict:
        for r in self.log:
            if r["epoch"] == epoch:
                return r
        raise KeyError(f"epoch {epoch} not in {self.path}/log.jsonl")


def load_run(run_dir: str | os.PathLike) -> Run:
    p = _run_path(run_dir)
    log = read_log(p)
    summary = read_json(p / "summary.json") if (p / "summary.json").is_file() else {}
    return Run(p, read_config(p), log, list_checkpoints(p), onset_epoch(log), summary)
