"""Where the results of a ``verify`` output directory live, and what a set of paths holds.

    OUT/runs/<run>/                   run directories (log.jsonl, analysis.json)
    OUT/claim1a/fixed_features.json   claim 1a records
    OUT/claim1b/ufm.json              claim 1b records
    OUT/sweep/sweep.json              claim 3 sweep
    OUT/verdicts.json, OUT/figures.json, OUT/report.md
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .rundir import ANALYSIS_FILE, LOG_FILE, is_run_dir

__all__ = ["CLAIM1A_FILE", "CLAIM1B_FILE", "RUNS_DIR", "SWEEP_DIR", "SWEEP_FILE", "Inventory", "discover"]

RUNS_DIR = "runs"
SWEEP_DIR = "sweep"
SWEEP_FILE = "sweep.json"
CLAIM1A_FILE = Path("claim1a") / "fixed_features.json"
CLAIM1B_FILE = Path("claim1b") / "ufm.json"


@dataclass
class Inventory:
    """What a set of paths holds (absolute paths, each once)."""

    runs: list[Path] = field(default_factory=list)         # run directories
    claim1a: list[Path] = field(default_factory=list)
    claim1b: list[Path] = field(default_factory=list)
    sweeps: list[Path] = field(default_factory=list)        # sweep.json files
    notes: list[str] = field(default_factory=list)

    def add(self, lst: list[Path], p: Path) -> None:
        p = p.resolve()
        if p not in lst:
            lst.append(p)


def discover(paths: Sequence[str | Path]) -> Inventory:
    """Classify each path: a run dir (has log.jsonl), a sweep dir (has sweep.json), a verify output dir
    (runs/, claim1a/, claim1b/, sweep/), a directory of run dirs, or one of the result files itself."""
    inv = Inventory()
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or directory; give run directories, a sweep "
                                    f"directory or a `verify` output directory")
        if p.is_file():
            _add_file(inv, p)
            continue
        found = False
        if is_run_dir(p):
            inv.add(inv.runs, p)
            found = True
        for f, lst in ((p / SWEEP_FILE, inv.sweeps), (p / CLAIM1A_FILE, inv.claim1a), (p / CLAIM1B_FILE, inv.claim1b),
                       (p / SWEEP_DIR / SWEEP_FILE, inv.sweeps)):
            if f.is_file():
                inv.add(lst, f)
                found = True
        if (p / RUNS_DIR).is_dir():
            for d in sorted((p / RUNS_DIR).iterdir()):
                if d.is_dir() and is_run_dir(d):
                    inv.add(inv.runs, d)
                    found = True
        if not found:  # a plain directory of run dirs
            subs = [d for d in sorted(p.iterdir()) if d.is_dir() and is_run_dir(d)]
            for d in subs:
                inv.add(inv.runs, d)
            found = bool(subs)
        if not found:
            inv.notes.append(f"{p}: holds no run directory (log.jsonl), sweep.json, claim1a/ or claim1b/ "
                             f"results; nothing to plot from it")
    return inv


def _add_file(inv: Inventory, p: Path) -> None:
    name = p.name
    if name == SWEEP_FILE:
        inv.add(inv.sweeps, p)
    elif name in (ANALYSIS_FILE, LOG_FILE):
        inv.add(inv.runs, p.parent)
    elif name == CLAIM1A_FILE.name or p.parent.name == "claim1a":
        inv.add(inv.claim1a, p)
    elif name == CLAIM1B_FILE.name or p.parent.name == "claim1b":
        inv.add(inv.claim1b, p)
    else:
        raise ValueError(f"{p}: not a results file figures know (expected a run directory, "
                         f"{SWEEP_FILE}, {ANALYSIS_FILE}, {CLAIM1A_FILE} or {CLAIM1B_FILE})")
