"""ncmargin.regression: golden-value regression suite for the numbers the toolkit reports.

Each case (:mod:`.cases`) runs a small deterministic computation through the public API; its quantities
are compared with the stored golden (:mod:`.golden`) under a tolerance justified by dtype and algorithm
(:mod:`.engine`; docs/theory.md §11). The suite keeps going past failures: every quantity of every case
is compared and reported.

    from ncmargin import regression
    res = regression.run_case("nc_metrics")      # CaseResult: .ok, .rows, .failures, .failure_report()
    results = regression.run_suite()             # all cases
    regression.update_case("nc_metrics")         # rewrite the golden on purpose (returns the changes)

CLI: ``ncmargin regress [--update] [--only NAME] [--list]``; pytest: ``tests/regression`` (marker
``regression``).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncmargin.store import thread_limits

from .cases import CASES, Case, case_names, get_case, make_inputs
from .engine import Comparison, Quantity, Tol, compare, compare_all, format_table
from .golden import GOLDEN_DIR, load_golden, save_golden, versions

__all__ = [
    "CASES",
    "GOLDEN_DIR",
    "INPUT_DIR",
    "Case",
    "CaseResult",
    "Comparison",
    "Quantity",
    "Tol",
    "case_names",
    "compute_case",
    "format_table",
    "get_case",
    "load_golden",
    "make_inputs",
    "run_case",
    "run_suite",
    "save_golden",
    "update_case",
    "versions",
]

INPUT_DIR = GOLDEN_DIR / "inputs"


@dataclass
class CaseResult:
    case: str
    rows: list[Comparison] = field(default_factory=list)
    error: str | None = None          # the case could not run or had no golden
    seconds: float = 0.0
    golden_versions: dict[str, Any] | None = None

    @property
    def failures(self) -> list[Comparison]:
        return [r for r in self.rows if not r.ok]

    @property
    def new(self) -> list[Comparison]:
        """Quantities computed now but absent from the golden (not failures; record with --update)."""
        return [r for r in self.rows if r.label == "new"]

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failures

    def failure_report(self) -> str:
        """Every failing comparison as a readable line, plus the version differences vs. the golden."""
        lines = []
        if self.error:
            lines.append(f"case {self.case}: {self.error}")
        fails = self.failures
        if fails:
            lines.append(f"case {self.case}: {len(fails)} of {len(self.rows)} quantities outside tolerance:")
            lines.extend("  FAIL " + r.message() for r in fails)
        if self.new:
            lines.append(f"case {self.case}: {len(self.new)} new quantities not in the golden (not failures; "
                         f"record them with `ncmargin regress --update --only {self.case}`): "
                         + ", ".join(r.quantity for r in self.new))
        diff = version_changes(self.golden_versions)
        if lines and diff:
            lines.append("  versions changed since the golden: " + diff)
        return "\n".join(lines)


def version_changes(golden_versions: dict[str, Any] | None) -> str:
    if not golden_versions:
        return ""
    now = versions()
    ch = [f"{k} {golden_versions.get(k)} -> {now.get(k)}" for k in now if golden_versions.get(k) != now.get(k)]
    return "; ".join(ch)


def compute_case(name: str, input_dir: Path | None = None) -> dict[str, Quantity]:
    """Run one case and return its quantities (no comparison)."""
    case = get_case(name)
    inputs = Path(input_dir) if input_dir is not None else INPUT_DIR
    missing = [f for f in case.inputs if not (inputs / f).is_file()]
    if missing:
        raise FileNotFoundError(f"case {name!r}: stored input(s) {missing} missing in {inputs}; restore them "
                                f"from git, or create new ones deliberately with `ncmargin regress --update`")
    with thread_limits(1):  # numpy BLAS and torch (if loaded) on one thread: a fixed reduction order
        return case.func(inputs)


def run_case(name: str, golden_dir: Path | None = None, input_dir: Path | None = None) -> CaseResult:
    """Run one case and compare every quantity with its golden. Never raises for a mismatch or a
    crashing case (the error is recorded), so a suite keeps going."""
    get_case(name)
    t0 = time.perf_counter()
    res = CaseResult(name)
    try:
        golden, meta = load_golden(name, golden_dir)
        res.golden_versions = meta.get("versions")
    except (FileNotFoundError, ValueError, KeyError) as exc:
        res.error = str(exc)
        res.seconds = time.perf_counter() - t0
        return res
    try:
        now = compute_case(name, input_dir if input_dir is not None else _inputs_for(golden_dir))
    except Exception as exc:  # noqa: BLE001 - a crash in one case must not hide the others
        res.error = f"raised {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
        res.seconds = time.perf_counter() - t0
        return res
    res.rows = compare_all(name, golden, now)
    res.seconds = time.perf_counter() - t0
    return res


def _inputs_for(golden_dir: Path | None) -> Path:
    return INPUT_DIR if golden_dir is None else Path(golden_dir) / "inputs"


def run_suite(names: list[str] | None = None, golden_dir: Path | None = None,
              input_dir: Path | None = None) -> list[CaseResult]:
    return [run_case(n, golden_dir, input_dir) for n in (names or case_names())]


def update_case(name: str, golden_dir: Path | None = None, input_dir: Path | None = None) -> list[Comparison]:
    """Recompute a case and rewrite its golden atomically (on purpose). Returns the comparisons against
    the previous golden that CHANGED (any nonzero difference, new or removed quantities); all of them when
    there was no previous golden."""
    case = get_case(name)
    inputs = Path(input_dir) if input_dir is not None else _inputs_for(golden_dir)
    make_inputs(inputs)  # only the missing ones
    now = compute_case(name, inputs)
    changed: list[Comparison]
    try:
        old, _ = load_golden(name, golden_dir)
        rows = compare_all(name, old, now)
        same = Tol("exact", why="bitwise identity (update report)")
        changed = []
        for r in rows:
            q = r.quantity
            if q in old and q in now:
                if not compare(name, q, old[q][0], now[q].value, same).ok:
                    r.label = "changed" if r.ok else "CHANGED"  # within / beyond the tolerance
                    changed.append(r)
                elif not now[q].tol.certified and old[q][1] != now[q].tol:
                    r.detail = f"value identical; tolerance changed from {old[q][1].describe()}"
                    r.diff, r.label = "tolerance", "tol"
                    changed.append(r)
            else:
                r.label = "new" if q in now else "removed"
                r.ok = True  # an update records it
                changed.append(r)
    except (FileNotFoundError, ValueError):
        changed = compare_all(name, {}, now)
        for r in changed:
            r.label = "new"
    save_golden(name, case.description, now, golden_dir)
    return changed
