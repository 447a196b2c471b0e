"""The record machinery: a result file is a :class:`Record`, a dict with declared, typed, documented keys.

A record class declares its keys once, each with a type and a one-line description::

    class Verdict(Record):
        claim: str = F("claim id, e.g. '1c'")
        value: float | None = F("the measured statistic (null when undefined)", None)

Writing and reading go through the same class: ``rec.write(path)`` validates and writes atomically
(NaN/inf as null), ``Cls.read(path)`` reads, checks the schema id (``"ncmargin.<kind>/N"``; ids listed
in ``READS`` are older versions still read) and every key; nested records (a list of rows, an optional
sub-object) are converted to their classes. An unknown key, a missing required key or a value of the
wrong type raises :class:`SchemaError` naming the file, the key and the valid keys. Records are dict
subclasses, so code that indexes the JSON document keeps working; ``rec.key`` reads a declared key.
:func:`describe` renders a class's keys as a markdown table (docs/results.md is generated from it).
"""

from __future__ import annotations

import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Union

from ncmargin.io import atomic_write_json, read_json

__all__ = ["F", "Record", "SchemaError", "describe"]

_REQUIRED = object()


class SchemaError(ValueError):
    """A result file that does not match its record class (message: file, key, fix)."""


class F:
    """A declared key: its description and default (none: the key is required)."""

    __slots__ = ("default", "doc", "name")

    def __init__(self, doc: str, default: Any = _REQUIRED):
        self.doc, self.default, self.name = doc, default, ""

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


class Record(dict):
    """Base of every result record (see the module docstring)."""

    SCHEMA: ClassVar[str | None] = None     # "ncmargin.<kind>/N" for a file; None for a nested record
    READS: ClassVar[tuple[str, ...]] = ()   # older schema ids that still read
    FILE: ClassVar[str | None] = None       # file name inside a directory ("analysis.json")
    FIX: ClassVar[str] = "rewrite the file with the command that made it"
    _fields: ClassVar[dict[str, F]] = {}
    _hints: ClassVar[dict[str, Any] | None] = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        own = {k: v for k, v in vars(cls).items() if isinstance(v, F)}
        for k, f in own.items():
            f.name = k
            delattr(cls, k)  # instances are dicts: the key lives in the dict, read through __getattr__
        cls._fields = {**{k: v for b in reversed(cls.__mro__[1:]) for k, v in vars(b).get("_fields", {}).items()},
                       **own}
        cls._hints = None

    # -- construction --------------------------------------------------------------------------------
    def __init__(self, *args, _where: str | None = None, _fix: str | None = None, **kw):
        super().__init__(*args, **kw)
        self._validate(_where or type(self).__name__, _fix)

    @classmethod
    def fields(cls) -> dict[str, F]:
        return dict(cls._fields)

    @classmethod
    def _types(cls) -> dict[str, Any]:
        if cls._hints is None:
            hints = typing.get_type_hints(cls)  # each class's annotations in its own module
            cls._hints = {k: hints[k] for k in cls._fields}
        return cls._hints

    def _validate(self, where: str, fix: str | None = None) -> None:
        cls = type(self)
        fix = fix or cls.FIX
        if cls.SCHEMA is not None:
            got = self.get("schema", cls.SCHEMA)
            if got != cls.SCHEMA and got not in cls.READS:
                raise SchemaError(f"{where}: schema is {got!r}, expected {cls.SCHEMA!r}; this is not "
                                  f"{_article(cls.__name__)} file of this version; {fix}")
        unknown = [k for k in self if k not in cls._fields and k != "schema"]
        if unknown:
            raise SchemaError(f"{where}: unknown key(s) {unknown}; valid keys: {', '.join(cls._fields)}; {fix}")
        types_ = cls._types()
        content = {}
        for name, f in cls._fields.items():
            if name in self:
                content[name] = _convert(self[name], types_[name], _sub(where, name), fix)
            elif f.required:
                raise SchemaError(f"{where}: missing required key '{name}' ({f.doc}); {fix}")
            else:
                content[name] = f.default() if callable(f.default) else f.default
        self.clear()
        if cls.SCHEMA is not None:
            self["schema"] = cls.SCHEMA
        self.update(content)

    def __getattr__(self, name: str) -> Any:
        if name in type(self)._fields:
            return self[name]
        raise AttributeError(f"{type(self).__name__} has no key {name!r}; keys: {', '.join(type(self)._fields)}")

    # -- files ---------------------------------------------------------------------------------------
    @classmethod
    def path_of(cls, path: str | os.PathLike) -> Path:
        """``path`` itself, or ``path/FILE`` when ``path`` is a directory."""
        p = Path(path)
        return p / cls.FILE if cls.FILE and p.is_dir() else p

    def write(self, path: str | os.PathLike) -> Path:
        """Validate and write atomically (a directory gets ``FILE`` inside); return the file path."""
        p = Path(path)
        if self.FILE and (p.is_dir() or not p.suffix):
            p = p / self.FILE
        self._validate(str(p))
        atomic_write_json(p, self)
        return p

    @classmethod
    def read(cls, path: str | os.PathLike) -> Record:
        """Read and validate a file of this record (a directory holding ``FILE`` or the file itself)."""
        p = cls.path_of(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such file; {cls.FIX}")
        doc = read_json(p)
        if not isinstance(doc, dict):
            raise SchemaError(f"{p}: expected a JSON object, got {type(doc).__name__}; {cls.FIX}")
        if cls.SCHEMA is not None and "schema" not in doc:
            raise SchemaError(f"{p}: no 'schema' key, expected {cls.SCHEMA!r}; {cls.FIX}")
        return cls(doc, _where=str(p))


def _sub(where: str, name: str) -> str:
    """``file: key`` for a top-level key, ``file: outer[i].key`` below it."""
    return f"{where}.{name}" if ": " in where else f"{where}: {name}"


def _article(name: str) -> str:
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(v: Any, tp: Any, where: str, fix: str) -> Any:
    """``v`` checked against the annotation ``tp``; nested records converted to their class."""
    if tp is Any:
        return v
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if v is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(v, a, where, fix)
            except SchemaError as exc:
                errors.append(str(exc))
        raise SchemaError(errors[0] if len(errors) == 1 else
                          f"{where} must be {' or '.join(_type_name(a) for a in args)}, got {v!r:.80}; {fix}")
    if origin is list:
        if not isinstance(v, list):
            raise SchemaError(f"{where} must be a list, got {type(v).__name__}; {fix}")
        (a,) = typing.get_args(tp) or (Any,)
        return [_convert(x, a, f"{where}[{i}]", fix) for i, x in enumerate(v)]
    if origin is dict:
        if not isinstance(v, dict):
            raise SchemaError(f"{where} must be an object, got {type(v).__name__}; {fix}")
        _, a = typing.get_args(tp) or (str, Any)
        return {str(k): _convert(x, a, f"{where}.{k}", fix) for k, x in v.items()}
    if isinstance(tp, type) and issubclass(tp, Record):
        if not isinstance(v, dict):
            raise SchemaError(f"{where} must be an object ({tp.__name__}), got {type(v).__name__}; {fix}")
        if type(v) is tp:  # re-check in place: a record may have been changed since it was built
            v._validate(where, fix)
            return v
        return tp(v, _where=where, _fix=fix)
    ok = {float: lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
          int: lambda x: isinstance(x, int) and not isinstance(x, bool),
          bool: lambda x: isinstance(x, bool), str: lambda x: isinstance(x, str),
          dict: lambda x: isinstance(x, dict), list: lambda x: isinstance(x, list)}.get(tp)
    if ok is None:
        raise TypeError(f"record annotation {tp!r} is not supported")  # pragma: no cover - a coding error
    if not ok(v):
        if tp is float and hasattr(v, "__float__") and not isinstance(v, (bool, str)):
            return float(v)  # numpy scalars
        if tp is int and hasattr(v, "__index__") and not isinstance(v, bool):
            return int(v)
        raise SchemaError(f"{where} must be {_type_name(tp)}, got {v!r:.80}; {fix}")
    return v


def describe(cls: type[Record], *, level: int = 3) -> str:
    """Markdown for one record class: heading (with the schema id for a file), then a table of its keys
    (type, required or default, description), then the same for each nested record class."""
    seen: list[type[Record]] = []

    def walk(c):
        if c in seen:
            return
        seen.append(c)
        for tp in c._types().values():
            for a in _record_args(tp):
                walk(a)

    walk(cls)
    out = []
    for c in seen:
        head = f"`{c.FILE}` — {c.__name__} (schema `{c.SCHEMA}`)" if c.SCHEMA else f"{c.__name__}"
        out += [f"{'#' * level} {head}", "", (c.__doc__ or "").strip().split("\n\n")[0].replace("\n", " "), "",
                "| key | type | default | meaning |", "|---|---|---|---|"]
        hints = c._types()
        for name, f in c._fields.items():
            d = "required" if f.required else ("[]" if f.default is list else "{}" if f.default is dict
                                               else repr(f.default))
            text = f.doc.replace("|", "\\|")
            out.append(f"| `{name}` | {_fmt_type(hints[name])} | {d} | {text} |")
        out.append("")
    return "\n".join(out)


def _record_args(tp) -> list[type[Record]]:
    if isinstance(tp, type) and issubclass(tp, Record):
        return [tp]
    return [r for a in typing.get_args(tp) for r in _record_args(a)]


def _fmt_type(tp) -> str:
    import re

    s = str(tp).replace("<class '", "").replace("'>", "").replace("NoneType", "None")
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", s).replace("|", "\\|")  # module prefixes dropped
