"""The one status type of every solver in ncmargin.solvers (docs/theory.md §3, "certificate")."""

from __future__ import annotations

from enum import Enum

__all__ = ["Status"]


class Status(str, Enum):
    """Outcome of a certified solver. A ``str`` subclass: ``Status.OPTIMAL == "optimal"`` and
    ``str(Status.OPTIMAL) == "optimal"``, so JSON output and string comparisons keep working.

    - ``optimal``: the certificate holds (max violation ≤ tol and certified relative gap ≤ gap_tol);
    - ``inaccurate``: the solver finished but its certificate misses a tolerance;
    - ``time_limit`` / ``memory_limit`` / ``iteration_limit``: a limit stopped it; the returned point is the
      best feasible one found, with its honest certificate;
    - ``infeasible``: the problem is proven infeasible (e.g. features not linearly separable);
    - ``failed``: no usable answer.
    """

    OPTIMAL = "optimal"
    INACCURATE = "inaccurate"
    TIME_LIMIT = "time_limit"
    MEMORY_LIMIT = "memory_limit"
    ITERATION_LIMIT = "iteration_limit"
    INFEASIBLE = "infeasible"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)
