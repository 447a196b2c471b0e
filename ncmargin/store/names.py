"""Names that become paths, and the temp files of interrupted atomic writes.

    safe names      a run or preset name from a preset, config or command line is one plain path component
                    (``RUN_NAME_RE``, never ``..``): :func:`safe_run_name`, :func:`run_path`; a name never
                    chooses a path outside the output (or preset) directory.
    temp files      ``.NAME.XXXXXXXX.SUFFIX`` beside NAME, left when a kill hits an atomic write
                    (:func:`ncmargin.io.atomic_path`: ``mkstemp(prefix=".NAME.", suffix=SUFFIX)``);
                    :func:`clean_temp_files` removes them. Call it only while holding the directory's lock
                    (:mod:`ncmargin.runlock`): a live writer's temp file looks the same.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["RUN_NAME_RE", "TEMP_FILE_RE", "clean_temp_files", "is_safe_name", "run_path", "safe_run_name",
           "temp_file_target"]

# a run (or preset) name that is one plain path component: no separators, no '..', not hidden, not empty
RUN_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# tempfile.mkstemp(prefix=".NAME.", suffix=SUFFIX): 8 characters from [a-z0-9_] between them
TEMP_FILE_RE = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}(?P<suffix>\.[A-Za-z0-9]+)$")


def is_safe_name(name) -> bool:
    """Whether ``name`` is a string matching ``RUN_NAME_RE`` without ``..``."""
    return isinstance(name, str) and RUN_NAME_RE.fullmatch(name) is not None and ".." not in name


def safe_run_name(name, what: str = "run name") -> str:
    """Return ``name`` if it is a safe single path component (``RUN_NAME_RE``: a letter or digit, then up
    to 127 of letters, digits, ``. _ -``; never ``..``), else raise ValueError naming it and the rule.
    Call it wherever a name from a preset, config or command line becomes part of a path."""
    if not is_safe_name(name):
        raise ValueError(f"{what} {name!r} is not allowed: use 1-128 letters, digits, '.', '_' or '-', starting "
                         "with a letter or digit, without '..' (a name never chooses a path outside the "
                         "output directory)")
    return name


def run_path(root: str | os.PathLike, name, what: str = "run name") -> Path:
    """``root / name`` for a :func:`safe_run_name`, checked to stay inside ``root`` after resolving
    symlinks that already exist."""
    root = Path(root)
    p = root / safe_run_name(name, what)
    base = root.resolve()
    if p.exists() or p.is_symlink():
        real = p.resolve()
        if real != base and base not in real.parents:
            raise ValueError(f"{p} points outside {root} (to {real}); remove that link or use another name")
    return p


def temp_file_target(path: str) -> str:
    """The final name an atomic-write temp file ``.NAME.XXXXXXXX.SUFFIX`` stands for (``path`` itself when
    it is not one), keeping its directory."""
    head, _, name = path.rpartition(os.sep)
    m = TEMP_FILE_RE.match(name)
    if m is None:
        return path
    return f"{head}{os.sep}{m.group('name')}" if head else m.group("name")


def clean_temp_files(directory: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Remove the temp files of interrupted atomic writes in ``directory`` (and its subdirectories);
    returns what was removed. Hold the directory's lock while calling it."""
    d = Path(directory)
    if not d.is_dir():
        return []
    removed = []
    for p in (d.rglob(".*") if recursive else d.glob(".*")):
        m = TEMP_FILE_RE.match(p.name)
        if m is None or not p.is_file() or p.is_symlink():
            continue
        name, suffix = m.group("name"), m.group("suffix")
        if suffix != ".tmp" and not name.endswith(suffix):
            continue
        p.unlink()
        removed.append(p)
    return removed
