"""The identity of a run: which training-config keys make a different experiment.

One list, used by everyone who compares a stored run with a wanted one (``ncmargin verify`` and
``ncmargin sweep`` reusing runs, ``ncmargin train --resume`` continuing one): the keys of
:data:`NON_IDENTITY_KEYS` change how or where a run is computed or shown, not which experiment it is.
Every other key of ``TrainConfig`` is part of the identity.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["NON_IDENTITY_KEYS", "RESUMABLE_KEYS", "RunMismatchError", "check_same_run", "identity_diff"]

# key -> why it does not make another run
_WHY = {
    "device": "where the run is computed",
    "amp": "CUDA only: bf16 autocast of the forward pass",
    "channels_last": "CUDA only: memory layout",
    "compile": "torch.compile of the same forward pass",
    "deterministic": "bitwise reproducibility of the same computation",
    "num_threads": "CPU threads of the same computation",
    "quiet": "progress output",
    "save_every": "how often resume state is written",
    "eval_batch_size": "batch size of feature extraction (eval mode: the same features)",
    "data_root": "where the dataset files are found",
    "download": "whether missing dataset files are fetched",
}
NON_IDENTITY_KEYS: frozenset[str] = frozenset(_WHY)
# a resume may also extend the run: more epochs continue the same trajectory
RESUMABLE_KEYS: frozenset[str] = NON_IDENTITY_KEYS | {"epochs"}


class RunMismatchError(ValueError):
    """A stored run is another experiment than the one asked for."""


def identity_diff(stored: Mapping, wanted: Mapping, *, allowed: frozenset[str] = NON_IDENTITY_KEYS) -> list[str]:
    """Sorted keys of ``wanted`` whose value differs in ``stored`` (missing counts as different), leaving
    out the keys in ``allowed`` (default: :data:`NON_IDENTITY_KEYS`)."""
    return sorted(k for k in wanted if k not in allowed and stored.get(k) != wanted[k])


def check_same_run(run_dir: str | os.PathLike, wanted: Mapping, *, what: str) -> None:
    """Raise :class:`RunMismatchError` when the run stored in ``run_dir`` (its ``config.json``) is not the
    experiment of the training config ``wanted``; ``what`` names the asker, e.g. ``"preset 'quick'"``."""
    from .rundir import read_train_config

    rd = Path(run_dir)
    diff = identity_diff(read_train_config(rd), wanted)
    if diff:
        raise RunMismatchError(f"{rd} holds a run whose config differs from {what} in {diff}; use another "
                               f"--out directory or delete {rd}")
