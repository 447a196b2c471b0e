"""Bad input -> one clear line; bugs stay bugs. Used by :func:`ncmargin.cli.main`.

:func:`describe` turns an exception raised by bad input (a missing, unreadable, truncated, corrupted or
hostile file, a wrong path, an invalid value) into one line naming the file and the fix, or returns None
for an exception that is not about the input (a bug: the CLI then says "internal error" and how to see
the traceback). :func:`isolated` runs one unit of work (one run, one checkpoint, one claim) and turns
such an input error into a record, so that one bad file costs only itself.

Argparse value types that reject negative, zero, NaN and infinite numbers live here too
(:func:`positive_float`, :func:`nonnegative_float`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import zipfile
from collections.abc import Callable
from typing import Any

__all__ = ["INPUT_ERRORS", "describe", "file_hint", "isolated", "nonnegative_float", "positive_float"]

# local names under which ncmargin code keeps the file it is reading (innermost frame first)
_PATH_NAMES = ("path", "p", "fname", "filename", "file", "jpath", "state_path", "run_dir", "rd")

# torch.load's messages for a damaged archive (RuntimeError is otherwise a bug class)
_TORCH_CORRUPT = ("PytorchStreamReader", "failed finding central directory", "zip archive",
                  "checkpoint file is corrupted", "invalid header or archive is corrupted", "unexpected EOF")

INPUT_ERRORS = (ValueError, OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, KeyError,
                RuntimeError)


def file_hint(exc: BaseException) -> str | None:
    """The file an exception is about: its ``filename`` (OSError), else a path-like local of the innermost
    ncmargin frame of its traceback that has one."""
    fn = getattr(exc, "filename2", None) or getattr(exc, "filename", None)  # filename2: a rename's target
    if fn:
        return _untemp(str(fn))
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for fr in reversed(frames):
        if not str(fr.f_globals.get("__name__", "")).startswith("ncmargin"):
            continue
        for name in _PATH_NAMES:
            v = fr.f_locals.get(name)
            if isinstance(v, (str, os.PathLike)) and str(v):
                return str(v)
    return None


def _untemp(path: str) -> str:
    """The final name of an atomic-write temp file ``.NAME.XXXXXXXX.SUFFIX`` (ncmargin.io.atomic_path)."""
    from ncmargin.store import temp_file_target

    return temp_file_target(path)


def _where(exc: BaseException) -> str:
    f = file_hint(exc)
    return f"{f}: " if f else ""


def describe(exc: BaseException) -> str | None:
    """One line for an input error (naming the file and the fix), None for anything else (a bug)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{_where(exc)}malformed JSON ({exc}); fix the file or regenerate it"
    if isinstance(exc, (ValueError, FileNotFoundError)) and not isinstance(exc, UnicodeDecodeError):
        msg = str(exc)
        if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in msg:
            msg = f"{exc.filename}: no such file or directory; check the path"
        return " ".join(msg.split())
    w = _where(exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"{w}not a text file ({exc.reason} at byte {exc.start}); pass the right file or regenerate it"
    if isinstance(exc, PermissionError):
        return f"{w}permission denied; make it readable/writable for you (chmod/chown) or use another path"
    if isinstance(exc, IsADirectoryError):
        return f"{w}is a directory where a file is expected; give the file's path"
    if isinstance(exc, NotADirectoryError):
        return f"{w}a part of this path is a file, not a directory; give a directory path"
    if isinstance(exc, FileExistsError):
        f = file_hint(exc)
        if f and os.path.exists(f) and not os.path.isdir(f):
            return f"{w}exists as a file where a directory is needed; remove it or choose another path"
        return f"{w}already exists; remove it or choose another path"
    if isinstance(exc, zipfile.BadZipFile):
        return (f"{w}corrupted archive ({exc}); the file is damaged: regenerate it (rerun the command that "
                "wrote it) or delete it")
    if isinstance(exc, pickle.UnpicklingError):
        text = str(exc)
        if "Weights only load failed" in text or "global" in text.lower():
            return (f"{w}refused: the file needs unpickling of arbitrary objects, which could run code; "
                    "delete it and regenerate it with ncmargin")
        return f"{w}not a readable checkpoint ({text.splitlines()[0][:120] if text else 'bad pickle data'}); " \
               "regenerate it or delete it"
    if isinstance(exc, EOFError):
        return f"{w}truncated file (unexpected end of data); regenerate it or delete it"
    if isinstance(exc, KeyError) and "is not a file in the archive" in str(exc):
        name = str(exc.args[0]).replace(" is not a file in the archive", "")
        return f"{w}missing array {name!r} in the .npz archive; regenerate the file"
    if isinstance(exc, RuntimeError) and any(s in str(exc) for s in _TORCH_CORRUPT):
        first = str(exc).strip().splitlines()[0][:160]
        return f"{w}corrupted torch checkpoint ({first}); regenerate it (retrain) or delete it"
    if isinstance(exc, OSError) and exc.strerror:  # disk full, read-only file system, I/O error ...
        return f"{w}{exc.strerror}; free space / fix the device or choose another path"
    return None


def isolated(fn: Callable[..., Any], *args, what: str = "", **kwargs) -> tuple[Any, dict | None]:
    """Run ``fn(*args, **kwargs)``; return ``(result, None)``, or ``(None, {"error": line, "what": what,
    "type": name})`` when it raised an input error (see :func:`describe`). Bugs propagate."""
    try:
        return fn(*args, **kwargs), None
    except INPUT_ERRORS as exc:
        line = describe(exc)
        if line is None:
            raise
        return None, {"what": what, "type": type(exc).__name__, "error": line}


def _number(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None


def positive_float(s: str) -> float:
    """argparse type: a finite number > 0 (tolerances, step sizes, C)."""
    v = _number(s)
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"{s!r}: give a finite number > 0")
    return v


def nonnegative_float(s: str) -> float:
    """argparse type: a finite number >= 0."""
    v = _number(s)
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"{s!r}: give a finite number >= 0")
    return v
