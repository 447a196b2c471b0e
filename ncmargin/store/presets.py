"""Presets (``ncmargin/configs/*.json``) and typed settings: where presets live, how they are read, and
the one rule for keys: an unknown key is an error that lists the valid ones.

Preset kinds by file name: ``verify_<name>.json`` (``ncmargin verify --preset <name>``),
``sweep_<name>.json`` (``ncmargin sweep``), anything else a training config (``ncmargin train``).
Keys starting with ``_`` are comments everywhere and are dropped on reading.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ncmargin.io import read_json

__all__ = ["PRESET_DIR", "PRESET_PREFIX", "UnknownKeyError", "check_keys", "find_preset", "list_presets",
           "read_preset", "settings_from"]

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"
PRESET_PREFIX = {"verify": "verify_", "sweep": "sweep_", "train": ""}
T = TypeVar("T")


class UnknownKeyError(ValueError):
    """A preset, settings or config key that nothing reads."""


def check_keys(obj: Mapping, valid: Iterable[str], where: str) -> None:
    """Raise :class:`UnknownKeyError` naming ``where``, the unknown keys and the valid ones, if ``obj`` has
    a key outside ``valid`` (``_comment`` keys are allowed)."""
    valid = list(valid)
    unknown = [k for k in obj if k not in valid and not str(k).startswith("_")]
    if unknown:
        raise UnknownKeyError(f"{where}: unknown key(s) {unknown}; valid keys: {', '.join(valid)}")


def list_presets(kind: str) -> list[str]:
    """Names of the presets of ``kind`` (``verify``/``sweep``: without the prefix; ``train``: every file
    without a verify_/sweep_ prefix)."""
    pre = _prefix(kind)
    others = [p for k, p in PRESET_PREFIX.items() if p and k != kind]
    return sorted(p.stem[len(pre):] for p in PRESET_DIR.glob(f"{pre}*.json")
                  if not any(p.stem.startswith(o) for o in others))


def find_preset(kind: str, source: str | os.PathLike) -> Path:
    """The JSON file of a preset: ``source`` as a path if it is a file, else ``PRESET_DIR/<prefix><source>
    .json`` (``source`` may carry the prefix already). FileNotFoundError lists the presets of ``kind``."""
    s = str(source)
    pre = _prefix(kind)
    for p in (Path(s), PRESET_DIR / f"{s}.json", PRESET_DIR / f"{pre}{s}.json"):
        if p.is_file() and (p.parent.resolve() != PRESET_DIR.resolve() or p.stem.startswith(pre)):
            return p
    raise FileNotFoundError(f"{kind} preset {s!r} not found; presets: {', '.join(list_presets(kind))} "
                            "(or give a path to a JSON file)")


def read_preset(kind: str, source: str | os.PathLike) -> tuple[Path, dict]:
    """``(path, preset)`` with the ``_comment`` keys dropped; the file must hold a JSON object."""
    p = find_preset(kind, source)
    obj = read_json(p)
    if not isinstance(obj, dict):
        raise ValueError(f"{p}: a {kind} preset must be a JSON object; see {PRESET_DIR}")  # noqa: TRY004
    return p, {k: v for k, v in obj.items() if not str(k).startswith("_")}


def settings_from(cls: type[T], obj: Mapping[str, Any] | None, where: str) -> T:
    """An instance of the dataclass ``cls`` from ``obj``: unknown keys rejected (the valid ones listed),
    ints accepted for floats, everything else checked against the field's annotation."""
    obj = dict(obj or {})
    names = [f.name for f in dataclasses.fields(cls)]
    check_keys(obj, names, where)
    hints = typing.get_type_hints(cls)
    out = {}
    for k, v in obj.items():
        if str(k).startswith("_"):
            continue
        out[k] = _coerce(v, hints[k], f"{where}: {k}")
    return cls(**out)


def _coerce(v: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return v
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(v, a, where)
            except ValueError:
                pass
        raise ValueError(f"{where} = {v!r}: expected {tp}")
    if origin in (list, tuple):
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"{where} = {v!r}: expected a list")
        a = args[0] if args else Any
        return type(v)(_coerce(x, a, where) for x in v) if origin is list else tuple(_coerce(x, a, where) for x in v)
    if origin is dict or tp is dict:
        if not isinstance(v, dict):
            raise ValueError(f"{where} = {v!r}: expected an object")
        return dict(v)
    if dataclasses.is_dataclass(tp):
        return settings_from(tp, v, where)
    if tp is float and isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if tp is int and isinstance(v, int) and not isinstance(v, bool):
        return v
    if tp in (bool, str) and isinstance(v, tp):
        return v
    if tp in (int, float, bool, str):
        raise ValueError(f"{where} = {v!r}: expected {tp.__name__}")
    return v


def _prefix(kind: str) -> str:
    if kind not in PRESET_PREFIX:
        raise ValueError(f"preset kind {kind!r}: choose one of {', '.join(PRESET_PREFIX)}")
    return PRESET_PREFIX[kind]
