"""Limits of a solve (wall time, memory) and the two exceptions by which a solver stops early
(docs/theory.md §3 "algorithm"; see ``ncmargin.solvers.svm``)."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["Limits", "NotSeparableSuspect", "Stop"]


class Limits:
    """Wall-clock deadline and memory budget (bytes of the solver's own arrays; H itself not counted)."""

    def __init__(self, t0, max_seconds, max_memory_bytes, passes_after: int = 1):
        self.t0 = t0
        self.deadline = None if max_seconds is None else t0 + float(max_seconds)
        self.mem = None if max_memory_bytes is None else float(max_memory_bytes)
        # time kept for what follows a stop: ``passes_after`` passes over the data (the closing certificate;
        # for the hard margin also the pass that rescales W to feasibility), each ~1.2 measured passes
        self.passes_after = int(passes_after)
        self.reserve = 0.0

    def out_of_time(self, margin_s: float = 0.0) -> bool:
        return self.deadline is not None and time.perf_counter() + margin_s + self.reserve > self.deadline

    def measured_pass(self, seconds: float) -> None:
        self.reserve = max(self.reserve, 1.2 * self.passes_after * seconds)

    def left(self) -> float:
        return np.inf if self.deadline is None else self.deadline - time.perf_counter()

    def left_for_work(self) -> float:
        """Seconds left before the reserve for the closing passes must begin."""
        return self.left() - self.reserve


class Stop(Exception):
    """A limit (time or memory) was hit inside a solver; ``status`` is the limit's :class:`Status`."""

    def __init__(self, status):
        self.status = status


class NotSeparableSuspect(Exception):
    """A hard-margin solver suspects the samples ``idx`` are not separable; ``multiclass_svm`` then asks for
    the LP proof (a NotSeparableError) or gives a RuntimeError."""

    def __init__(self, idx, detail):
        self.idx, self.detail = idx, detail
