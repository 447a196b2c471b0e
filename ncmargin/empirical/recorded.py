"""The whole-network spectral complexity of a recorded run (Recorder / ``ncmargin extract``; docs/recorder.md).

A recorded run's ``config.json["config"]`` is the user's metadata, not a TrainConfig, so the analysis
cannot rebuild the network from it. :func:`recorded_complexity` uses, in this order, the complexity the
recorder stored (``checkpoints/complexity_XXXX.json``, ``Recorder(spectral=True)`` / ``extract
--spectral``), or the network rebuilt from the recorded model factory (``config.json["model"]["factory"]``,
kwargs ``config["factory_kwargs"]``) with the saved weights; else an ``{"error": ...}`` saying why the
spectral bound is unavailable (never a number from the wrong network).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ncmargin.io import read_json
from ncmargin.store import complexity_path, model_path

__all__ = ["NO_SPECTRAL", "is_recorded", "recorded_complexity"]

NO_SPECTRAL = ("recorded run without spectral data: record with Recorder(spectral=True) or extract --spectral, "
               "or give Recorder(model_factory='pkg.module:factory') so the network can be rebuilt")


def is_recorded(meta: dict) -> bool:
    """A run written by the Recorder or ``ncmargin extract`` (``config.json`` has the ``recorder`` key)."""
    return "recorder" in meta


def recorded_complexity(run_dir: str | os.PathLike, epoch: int, meta: dict) -> dict:
    """The spectral complexity of recorded run ``run_dir`` at ``epoch``, or ``{"error": reason}``."""
    run_dir = Path(run_dir)
    stored = complexity_path(run_dir, epoch)
    if stored.is_file():
        d = dict(read_json(stored))
        d.pop("epoch", None)
        return d
    factory = (meta.get("model") or {}).get("factory")
    if not factory:
        return {"error": NO_SPECTRAL}
    if not model_path(run_dir, epoch).is_file():
        return {"error": f"recorded run: no weights saved at epoch {epoch} (Recorder(save_model=False)); "
                         "the spectral bound needs them"}
    data = meta.get("data") or {}
    try:
        import torch

        from .complexity import spectral_from_input_stats
        from .extract import load_factory
        from .runs import load_model_state

        kwargs = (meta.get("config") or {}).get("factory_kwargs") or {}
        torch.manual_seed(0)
        net = load_factory(factory)(**kwargs)
        net.load_state_dict(load_model_state(run_dir, epoch))
        net.eval()
        return spectral_from_input_stats(net, input_norm_F=float(data.get("train_input_norm_F") or np.nan),
                                         n=data.get("n_train"), input_shape=data.get("input_shape"))
    except (ValueError, ImportError, RuntimeError, TypeError, FileNotFoundError) as exc:
        return {"error": f"spectral complexity of the recorded network ({factory}) failed at epoch {epoch}: "
                         f"{type(exc).__name__}: {exc}"}
