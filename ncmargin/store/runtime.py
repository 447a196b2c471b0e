"""Process facts recorded with every result: package versions, thread limits, log-spaced schedules.

Imports the standard library and numpy only; torch is touched only if the caller already imported it.
"""

from __future__ import annotations

import contextlib
import platform
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = ["VERSION_PACKAGES", "git_commit", "log_spaced", "thread_limits", "versions"]

# distributions whose versions are recorded (config.json, verdicts.json, regression goldens)
VERSION_PACKAGES = ("numpy", "scipy", "torch", "cvxpy", "clarabel", "scikit-learn", "matplotlib", "torchvision")


def versions() -> dict[str, str | None]:
    """``ncmargin``, ``python``, ``platform``, ``machine`` and the version of each of
    :data:`VERSION_PACKAGES` (None when not installed), read from package metadata without importing."""
    from ncmargin.version import __version__

    out: dict[str, str | None] = {"ncmargin": __version__, "python": platform.python_version(),
                                  "platform": platform.platform(), "machine": platform.machine()}
    for dist in VERSION_PACKAGES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def git_commit() -> str | None:
    """The commit of the source tree ncmargin runs from (``+dirty`` when tracked files changed), or None."""
    try:
        root = Path(__file__).resolve().parents[2]
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5,
                           check=False)
        if r.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5, check=False).stdout.strip()
        return r.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):  # no git, or it hangs
        return None


@contextlib.contextmanager
def thread_limits(n: int | None, *, blas: bool = True, torch: bool = True) -> Iterator[None]:
    """Run the block with ``n`` threads (None or 0: leave everything as it is): numpy's BLAS/OpenMP pools
    through threadpoolctl (a scikit-learn dependency) when ``blas``, torch's intra-op pool when ``torch``
    and torch is imported already. Everything is restored afterwards, also on error. Small models and
    small dense factorizations run faster on one thread on a busy machine (OpenMP spin contention)."""
    if not n:
        yield
        return
    limiter = None
    if blas:
        try:
            from threadpoolctl import threadpool_limits

            limiter = threadpool_limits(limits=int(n))
        except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
            pass
    th = sys.modules.get("torch") if torch else None
    prev = None
    try:
        if th is not None:
            prev = th.get_num_threads()
            th.set_num_threads(int(n))
        yield
    finally:
        if prev is not None:
            th.set_num_threads(prev)
        if limiter is not None:
            limiter.restore_original_limits()


def log_spaced(stop: int, num: int, *, floor: bool = False, start: tuple[int, ...] = (0,)) -> list[int]:
    """Sorted unique integers: ``start``, ``num`` log-spaced points in [1, stop] (``np.geomspace(1, stop,
    num)``, rounded to the nearest integer, or floored with ``floor``), and ``stop``; all in [0, stop].

    Used for checkpoint epochs (``start=(0,)``), UFM log steps and fixed-feature record steps
    (``floor=True, start=(0, 1)``)."""
    stop = int(stop)
    pts = {*start, stop}
    if num > 0 and stop >= 1:
        g = np.geomspace(1, stop, int(num))
        pts.update(int(v) for v in (np.floor(g) if floor else np.round(g)))
    return sorted(p for p in pts if 0 <= p <= stop)

