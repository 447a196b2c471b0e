"""ncmargin.empirical: torch side — datasets, models, trainer, per-checkpoint analysis, UFM dynamics, the
one training pool (``pool``), and the claims (``claims/``: a registry and one module per claim, run by
``ncmargin.pipeline``; docs/architecture.md).

Main entry points (imported lazily, so ``import ncmargin.empirical`` stays cheap; ``train`` is also the
name of its submodule, so import it as ``from ncmargin.empirical.train import train``):

    train(config, run_dir, resume=False) -> run_dir        ncmargin.empirical.train
    load_run(run_dir) -> Run                               ncmargin.empirical.runs
    load_config(preset_or_path, overrides) -> TrainConfig  ncmargin.empirical.config
    load_dataset(cfg) -> DataSplit                         ncmargin.empirical.data
    build_model(cfg, input_shape, K)                       ncmargin.empirical.models
    ufm_dynamics(K, n, d, steps, ...) -> records           ncmargin.empirical.ufm

Run-directory format: docs/formats.md.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "load_run": "runs", "load_config": "config", "TrainConfig": "config",
    "load_dataset": "data", "build_model": "models", "ufm_dynamics": "ufm", "stable_cross_entropy": "losses",
}

__all__ = ["TrainConfig", "build_model", "load_config", "load_dataset", "load_run", "stable_cross_entropy",
           "ufm_dynamics"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
