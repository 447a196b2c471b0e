"""Run-directory housekeeping that keeps runs from getting stuck (issue 12): the names under
:mod:`ncmargin.store` that issue 12 introduced, plus :class:`DivergedError`.

The layout facts live in the store (one copy): the failed mark ``RUN/status.json`` and
``run_status() == "failed"`` in :mod:`ncmargin.store.rundir`; safe run names and the temp files of
interrupted atomic writes in :mod:`ncmargin.store.names`. This module re-exports them under the names the
robustness code and tests use.
"""

from __future__ import annotations

from ncmargin.store import (
    RUN_NAME_RE,
    STATUS_SCHEMA,
    RunFailedError,
    check_not_failed,
    clean_temp_files,
    mark_failed,
    read_status,
    run_path,
    safe_run_name,
)
from ncmargin.store import STATUS_FILE as STATUS_NAME

__all__ = ["RUN_NAME_RE", "STATUS_NAME", "STATUS_SCHEMA", "DivergedError", "RunFailedError", "check_not_failed",
           "clean_temp_files", "mark_failed", "read_status", "run_path", "safe_run_name"]


class DivergedError(ValueError):
    """Training produced a non-finite loss, features or classifier (the trainer marks the run failed)."""
