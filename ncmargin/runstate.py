"""Run-directory housekeeping that keeps runs from getting stuck: failed-run marks and kill leftovers.

    RUN/status.json    {"schema": "ncmargin.run_status/1", "state": "failed", "reason", "epoch", "time"}
                       written when a run fails for good (training diverged): resuming would repeat the
                       failure, so ``train --resume`` and ``train --out RUN`` refuse it and say how to
                       replace it (delete the directory).
    temp files         ``.NAME.XXXXXXXX.SUFFIX`` beside NAME, left when a kill hits an atomic write
                       (:func:`ncmargin.io.atomic_path`); :func:`clean_temp_files` removes them. Call it only
                       while holding the directory's lock (:mod:`ncmargin.runlock`): a live writer's temp
                       file looks the same.

Only reads and writes JSON; never imports torch.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path

from ncmargin.io import atomic_write_json

__all__ = ["RUN_NAME_RE", "STATUS_NAME", "STATUS_SCHEMA", "DivergedError", "RunFailedError", "check_not_failed",
           "clean_temp_files", "mark_failed", "read_status", "run_path", "safe_run_name"]

STATUS_NAME = "status.json"
STATUS_SCHEMA = "ncmargin.run_status/1"

# tempfile.mkstemp(prefix=".NAME.", suffix=SUFFIX): 8 characters from [a-z0-9_] between them
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}(?P<suffix>\.[A-Za-z0-9]+)$")


# a run (or preset) name that is one plain path component: no separators, no '..', not hidden, not empty
RUN_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def safe_run_name(name, what: str = "run name") -> str:
    """Return ``name`` if it is a safe single path component (``RUN_NAME_RE``: a letter or digit, then up
    to 127 of letters, digits, ``. _ -``; never ``..``), else raise ValueError naming it and the rule.
    Call it wherever a name from a preset, config or command line becomes part of a path."""
    if not isinstance(name, str) or not RUN_NAME_RE.fullmatch(name) or ".." in name:
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


class DivergedError(ValueError):
    """Training produced a non-finite loss, features or classifier."""


class RunFailedError(ValueError):
    """The run directory holds a run marked failed; it cannot be resumed or reused."""


def read_status(run_dir: str | os.PathLike) -> dict | None:
    """``RUN/status.json`` as a dict, or None when absent. A malformed file counts as a failed mark (it is
    only ever written on failure)."""
    p = Path(run_dir) / STATUS_NAME
    if not p.is_file():
        return None
    try:
        doc = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {"schema": STATUS_SCHEMA, "state": "failed", "reason": f"unreadable {p.name}"}
    return doc if isinstance(doc, dict) else {"schema": STATUS_SCHEMA, "state": "failed",
                                              "reason": f"malformed {p.name}"}


def mark_failed(run_dir: str | os.PathLike, reason: str, epoch: int | None = None) -> Path:
    """Write ``RUN/status.json`` saying the run failed (atomic)."""
    p = Path(run_dir) / STATUS_NAME
    atomic_write_json(p, {"schema": STATUS_SCHEMA, "state": "failed", "reason": reason, "epoch": epoch,
                          "time": datetime.datetime.now(datetime.timezone.utc).isoformat(  # noqa: UP017
                              timespec="seconds")})
    return p


def check_not_failed(run_dir: str | os.PathLike) -> None:
    """Raise :class:`RunFailedError` (naming the reason and the fix) when ``run_dir`` is marked failed."""
    st = read_status(run_dir)
    if st and st.get("state") == "failed":
        at = f" at epoch {st['epoch']}" if st.get("epoch") is not None else ""
        raise RunFailedError(f"{run_dir} holds a run that failed{at} ({st.get('reason')}); it cannot be resumed: "
                             f"delete the directory (rm -r {run_dir}) and train again, or pass another --out")


def clean_temp_files(directory: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Remove the temp files of interrupted atomic writes in ``directory`` (and its subdirectories);
    returns what was removed. Hold the directory's lock while calling it."""
    d = Path(directory)
    if not d.is_dir():
        return []
    removed = []
    for p in (d.rglob(".*") if recursive else d.glob(".*")):
        m = _TEMP_RE.match(p.name)
        if m is None or not p.is_file() or p.is_symlink():
            continue
        name, suffix = m.group("name"), m.group("suffix")
        if suffix != ".tmp" and not name.endswith(suffix):
            continue
        p.unlink()
        removed.append(p)
    return removed
