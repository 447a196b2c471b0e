"""The trainer's resume state (``RUN/checkpoints/last.pt``), stored so that ``torch.load(weights_only=True)``
reads it: nothing in it needs unpickling of arbitrary objects, so a crafted file cannot run code.

    save_resume_state(path, {"epoch": 6, "onset_epoch": None, "model": ..., "optimizer": ..., ...})
    state = load_resume_state(path)      # UnsafeStateError / CorruptStateError (ValueError) on a bad file

What may be stored: tensors, ``int``/``float``/``bool``/``str``/``None`` and ``dict``/``list``/``tuple`` of
those (the model and optimizer ``state_dict`` of torch's SGD/Adam are exactly that). :func:`to_safe`
converts what else a resume state usually holds (numpy arrays and scalars, e.g. a numpy RNG state
``np.random.get_state()``, and Python's ``random.getstate()``, a tuple of ints) and refuses anything else
at save time, so an unloadable file is never written.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ncmargin.io import atomic_path

__all__ = ["CorruptStateError", "UnsafeStateError", "load_resume_state", "save_resume_state", "to_safe"]

REQUIRED_KEYS = ("epoch", "onset_epoch", "model", "optimizer")


class UnsafeStateError(ValueError):
    """The file needs unpickling of objects beyond tensors and plain containers (it could run code)."""


class CorruptStateError(ValueError):
    """The file is truncated, corrupted, or not a resume state of this format."""


def to_safe(obj: Any, where: str = "state") -> Any:
    """``obj`` with numpy arrays as tensors, numpy scalars as Python numbers and containers rebuilt as plain
    ``dict``/``list``/``tuple``; any other object raises TypeError naming where it sits."""
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError(f"{where}: a numpy object array cannot be stored in a weights_only resume state")
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k if isinstance(k, (str, int)) else _bad_key(k, where): to_safe(v, f"{where}[{k!r}]")
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        out = [to_safe(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return out if isinstance(obj, list) else tuple(out)
    raise TypeError(f"{where}: {type(obj).__name__} cannot be stored in a weights_only resume state; "
                    "store tensors, numbers, strings and plain containers")


def _bad_key(k, where):
    raise TypeError(f"{where}: dict key {k!r} ({type(k).__name__}) cannot be stored; use str or int keys")


def save_resume_state(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` atomically (temp file + rename) after :func:`to_safe`."""
    for k in REQUIRED_KEYS:
        if k not in state:
            raise KeyError(f"resume state lacks {k!r}")
    safe = to_safe(state)
    with atomic_path(path) as tmp:
        torch.save(safe, tmp)


def load_resume_state(path: str | os.PathLike) -> dict:
    """Read a resume state with ``torch.load(weights_only=True)`` (never unpickles arbitrary objects).

    A file that needs more (a crafted pickle, or a state written by something else) raises
    :class:`UnsafeStateError`; a truncated or corrupted one :class:`CorruptStateError`. Both name the file
    and the fix."""
    path = Path(path)
    run_dir = path.parent.parent
    if path.is_file() and not zipfile.is_zipfile(path):  # torch.save writes a zip archive since torch 1.6
        raise CorruptStateError(f"{path}: corrupted resume state, not a torch checkpoint archive (truncated?); the run "
                                f"cannot be resumed from it: delete the run directory ({run_dir}) and train again")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's weights_only unpickler refuses globals it does not allow-list; its message names them
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        first = next((ln for ln in lines if "GLOBAL" in ln or "global" in ln), lines[0] if lines else "")
        first = first.split(" was not an allowed global")[0].split(". Please use")[0]
        raise UnsafeStateError(
            f"{path}: refused to load the resume state: it needs unpickling of objects beyond tensors and "
            f"plain containers, which could run code ({first[:200]}). Do not resume from a file you did "
            f"not write; delete {path} and the run directory ({run_dir}) and train again") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        if isinstance(exc, (PermissionError, IsADirectoryError)):
            raise
        raise CorruptStateError(
            f"{path}: corrupted or truncated resume state ({type(exc).__name__}: {str(exc)[:200]}); the run "
            f"cannot be resumed from it: delete the run directory ({run_dir}) and train again") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        have = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CorruptStateError(f"{path}: not an ncmargin resume state (needs keys {list(REQUIRED_KEYS)}, has "
                                f"{have}); delete the run directory ({run_dir}) and train again")
    if not isinstance(state["epoch"], int) or isinstance(state["epoch"], bool) or state["epoch"] < 0:
        raise CorruptStateError(f"{path}: 'epoch' is {state['epoch']!r}, not an epoch number; delete the run "
                                f"directory ({run_dir}) and train again")
    return state
