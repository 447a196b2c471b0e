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

from .names import is_safe_name

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
    unknown = sorted(str(k) for k in obj if k not in valid and not str(k).startswith("_"))
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
    .json`` (``source`` may carry the prefix already) for a safe name (:func:`~ncmargin.store.names.is_safe_name`:
    a preset name never reaches outside PRESET_DIR). FileNotFoundError lists the presets of ``kind``."""
    s = str(source)
    pre = _prefix(kind)
    named = (PRESET_DIR / f"{s}.json", PRESET_DIR / f"{pre}{s}.json") if is_safe_name(s) else ()
    for p in (Path(s), *named):
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


def settings_from(cls: type[T], obj: Mapping[str, Any] | T | None, where: str) -> T:
    """An instance of the dataclass ``cls`` from ``obj`` (an instance of ``cls`` is returned as it is).
    ``_comment`` keys are skipped; an unknown key raises :class:`UnknownKeyError` listing the valid ones;
    each value is checked against the field's annotation (an int passes for a float and is kept as
    given) and fields typed as dataclasses (or ``D | None``) are built recursively."""
    if isinstance(obj, cls):
        return obj
    if obj is None:
        obj = {}
    if not isinstance(obj, Mapping):
        raise UnknownKeyError(f"{where}: expected a JSON object of settings, got {type(obj).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    check_keys(obj, names, where)
    hints = typing.get_type_hints(cls)
    return cls(**{k: _check(v, hints[k], f"{where}.{k}") for k, v in obj.items() if not str(k).startswith("_")})


def _check(v: Any, tp: Any, where: str) -> Any:
    """``v`` if it fits the annotation ``tp`` (dataclass-typed values built), else ValueError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or isinstance(tp, TypeVar):
        return v
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        real = [a for a in args if a is not type(None)]
        if len(real) == 1:  # X | None: X's own error (e.g. an unknown key inside a nested settings object)
            return _check(v, real[0], where)
        for a in real:
            try:
                return _check(v, a, where)
            except ValueError:
                pass
        raise ValueError(f"{where} = {v!r:.80}: expected {_name(tp)}")
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"{where} = {v!r:.80}: expected a list")
        a = args[0] if args and args[-1] is not Ellipsis or len(args) == 2 else Any
        return type(v)(_check(x, a, f"{where}[{i}]") for i, x in enumerate(v))
    if origin is dict or tp is dict:
        if not isinstance(v, dict):
            raise ValueError(f"{where} = {v!r:.80}: expected an object")
        return v
    if dataclasses.is_dataclass(tp):
        return settings_from(tp, v, where)
    ok = {float: lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
          int: lambda x: isinstance(x, int) and not isinstance(x, bool),
          bool: lambda x: isinstance(x, bool), str: lambda x: isinstance(x, str)}.get(tp)
    if ok is not None and not ok(v):
        raise ValueError(f"{where} = {v!r:.80}: expected {_name(tp)}")
    return v


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _prefix(kind: str) -> str:
    if kind not in PRESET_PREFIX:
        raise ValueError(f"preset kind {kind!r}: choose one of {', '.join(PRESET_PREFIX)}")
    return PRESET_PREFIX[kind]
