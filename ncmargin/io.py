"""File formats shared by every subpackage: feature files (.npz) and atomic writes.

Feature file (docs/formats.md, checkpoints/epoch_XXXX.npz): ``.npz`` with
    features    (n, d) float       train or test features, one row per sample
    labels      (n,)   int         class ids in 0..K-1
    classifier  (K, d) float       optional, PyTorch ``Linear.weight`` layout
    bias        (K,)   float       optional
    split       str               optional, "train" or "test"
Extra arrays are allowed and kept. The trainer stores the train split as ``features``/``labels``
(``split="train"``) and the test split once more as ``test_features``/``test_labels``;
:func:`load_features` takes ``split=`` to pick one: ``<split>_features`` if present, else the plain
arrays when the file's ``split`` matches (or is absent).

Writes are atomic: a temporary file in the same directory, fsync, then ``os.replace``,
so an interrupted write never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FeatureSet",
    "atomic_path",
    "atomic_save_npz",
    "atomic_write_json",
    "atomic_write_text",
    "load_features",
    "read_json",
    "save_features",
    "to_jsonable",
]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or (path.suffix or ".tmp"),
                               dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays (recursively) to plain Python for ``json``; NaN/inf become None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=indent, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing or malformed file raises an error that names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # UnicodeDecodeError: binary garbage
        raise ValueError(f"{path}: malformed JSON ({exc}); regenerate it or delete it") from exc


def atomic_save_npz(path: str | os.PathLike, compressed: bool = False, **arrays: Any) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        (np.savez_compressed if compressed else np.savez)(tmp, **arrays)


SPLITS = ("train", "test")


def _real(path: Path, name: str, a) -> np.ndarray:
    """``a`` as float64; a complex or non-numeric array is an error (astype would drop the imaginary part)."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{path}: '{name}' has dtype {a.dtype}; it must be real-valued numbers (save "
                         f"np.real(...) or the magnitudes explicitly if that is what you mean)")
    return a.astype(np.float64)


@dataclass
class FeatureSet:
    """Features and labels of one split, plus the classifier if the file has one (float64)."""

    features: np.ndarray
    labels: np.ndarray
    classifier: np.ndarray | None = None
    bias: np.ndarray | None = None
    split: str | None = None
    path: Path | None = None

    @property
    def num_classes(self) -> int:
        if self.classifier is not None:
            return int(self.classifier.shape[0])
        return int(self.labels.max()) + 1


def save_features(path: str | os.PathLike, features, labels, classifier=None, bias=None,
                  split: str | None = None, **extra: Any) -> None:
    """Write a feature file in the format above (docs/formats.md; atomic)."""
    arrays: dict[str, Any] = {"features": np.asarray(features), "labels": np.asarray(labels, dtype=np.int64)}
    if classifier is not None:
        arrays["classifier"] = np.asarray(classifier)
    if bias is not None:
        arrays["bias"] = np.asarray(bias)
    if split is not None:
        arrays["split"] = np.asarray(split)
    arrays.update(extra)
    atomic_save_npz(path, **arrays)


def load_features(path: str | os.PathLike, split: str | None = None) -> FeatureSet:
    """Read a feature file; with ``split="train"``/``"test"`` read that split (see the module docstring).

    Errors name the file and what is wrong (missing array, wrong shape, non-integer labels).
    """
    path = Path(path)
    if split is not None and split not in SPLITS:
        raise ValueError(f"split={split!r} is not a split; choose one of {', '.join(SPLITS)} (or None)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such feature file")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:  # zipfile.BadZipFile, OSError, ValueError
        raise ValueError(f"{path}: not a readable .npz feature file ({exc}); regenerate it (rerun the command "
                         "that wrote it) or delete it") from exc
    try:
        return _read_features(path, data, split)
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, zlib.error) as exc:
        # a member that fails its CRC or is cut short is only read here, after np.load opened the archive
        raise ValueError(f"{path}: corrupted .npz feature file ({type(exc).__name__}: {exc}); regenerate it "
                         "(rerun the command that wrote it) or delete it") from None
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # an object array: loading it would unpickle
            raise ValueError(f"{path}: holds an object array, which is refused (loading it would unpickle "
                             "arbitrary objects); save numeric arrays only") from None
        raise


def _read_features(path: Path, data, split: str | None) -> FeatureSet:
    with data:
        keys = set(data.files)
        pre = ""
        if split is not None:
            if f"{split}_features" in keys:
                pre = f"{split}_"
            elif "features" not in keys:
                raise ValueError(f"{path}: has no '{split}_features' nor 'features' array "
                                 f"(arrays present: {sorted(keys)})")
            elif "split" in keys and str(data["split"]) != split:
                # the plain arrays hold another split: never hand them out under the wrong name
                raise ValueError(f"{path}: asked for split '{split}', but 'features' holds split "
                                 f"'{data['split']!s}' and there is no '{split}_features' array")
        for name in ("features", "labels"):
            if pre + name not in keys:
                raise ValueError(f"{path}: missing array '{pre + name}' (arrays present: {sorted(keys)}); "
                                 "a feature file needs 'features' (n x d) and 'labels' (n)")
        H = _real(path, pre + "features", data[pre + "features"])
        y_raw = np.asarray(data[pre + "labels"])
        W = _real(path, "classifier", data["classifier"]) if "classifier" in keys else None
        b = _real(path, "bias", data["bias"]) if "bias" in keys else None
        if pre:
            sp = split  # the prefixed arrays were read: that is the split, whatever 'split' says
        else:
            sp = str(data["split"]) if "split" in keys else split
    if H.ndim != 2:
        raise ValueError(f"{path}: 'features' must be 2-D (n x d), got shape {H.shape}")
    if y_raw.ndim != 1 or y_raw.shape[0] != H.shape[0]:
        raise ValueError(f"{path}: 'labels' must be 1-D with one label per feature row, "
                         f"got shape {y_raw.shape} for features {H.shape}")
    if y_raw.dtype.kind not in "biuf":
        raise ValueError(f"{path}: 'labels' have dtype {y_raw.dtype}; they must be integers 0..K-1")
    if not np.issubdtype(y_raw.dtype, np.integer) and not np.all(np.equal(np.mod(y_raw, 1), 0)):
        raise ValueError(f"{path}: 'labels' must be integers 0..K-1")
    y = y_raw.astype(np.int64)
    if W is not None and (W.ndim != 2 or W.shape[1] != H.shape[1]):
        raise ValueError(f"{path}: 'classifier' must be K x d with d={H.shape[1]}, got {W.shape}")
    if b is not None and (W is None or b.shape != (W.shape[0],)):
        raise ValueError(f"{path}: 'bias' must have one entry per classifier row")
    return FeatureSet(H, y, W, b, sp, path)
