"""Read a run directory written by :func:`ncmargin.empirical.train.train` (format: docs/formats.md).

    run = load_run("runs/quick")
    run.config["lr"], run.onset_epoch, run.log[-1]["test_acc"], run.checkpoint_epochs
    fs = run.features(run.checkpoint_epochs[-1], split="train")   # ncmargin.io.FeatureSet (float64)

The layout, the log reader and the onset live in :mod:`ncmargin.store` (the disk owner); this module
re-exports them under their historical names and adds the one torch-side reader, :func:`load_model_state`.
"""

from __future__ import annotations

import pickle
import zipfile

from ncmargin.store import (
    Run,
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    load_run,
    model_path,
    onset_epoch,
)
from ncmargin.store import read_log as _read_log
from ncmargin.store import read_meta as read_config

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


def read_log(run_dir) -> list[dict]:
    """log.jsonl as a list of dicts ([] when the run has no log yet); see :func:`ncmargin.store.read_log`."""
    return _read_log(run_dir, missing_ok=True)


def load_model_state(run_dir, epoch: int) -> dict:
    """Model ``state_dict`` (CPU tensors) saved at a checkpoint epoch (``checkpoints/model_XXXX.pt``)."""
    import torch

    p = model_path(run_dir, epoch)
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
