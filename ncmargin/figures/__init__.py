"""ncmargin.figures — every figure of the toolkit, regenerated from saved results only (never trains).

One module per figure, each ``plot_<name>(data, out_dir, name) -> FigureResult(name, png, pdf, csv,
caption)`` writing PNG + PDF + a CSV of exactly the numbers plotted, and registering itself
(:mod:`ncmargin.figures.registry`: name, stored inputs, caption, draw function) on import:

    terminal_phase.plot_terminal_phase(runs, out)   accuracy and loss vs epoch, onset of 100% train acc.
    pmin.plot_pmin(runs, out)                       p_min vs epoch, raw and normalized (paper Fig. 3)
    ce_svm.plot_ce_svm_deep(runs, out)              claim 1c: angle to W*(H_t) and margin ratio vs epoch
    ce_svm.plot_ce_svm_fixed(claim1a, out)          claim 1a: angle (with a + c/log t fit), margin ratio
    ce_svm.plot_ufm(claim1b, out)                   claim 1b: normalized margin → certified optimum, ...
    bound.plot_bound(run, out)                      claim 2: bound terms stacked vs test error and gap
    nc_metrics.plot_nc_metrics(runs, out)           NC1–NC4 vs epoch (Papyan et al. 2020 panels)
    alignment.plot_alignment(sweep, out)            claim 3: test accuracy across alignments (paper Fig. 4)
    predictors.plot_predictors(sweep, out)          claim 3: each predictor vs test accuracy, Spearman ρ
    concentration.plot_concentration(sweep, out)    claim 3 premise: P(||μ̂−μ|| ≥ ε) vs n against the bound

:func:`make_figures` finds what a set of paths holds (run directories, a ``verify`` output directory, a
sweep directory) and draws every registered figure the data supports; a new figure is one new module
here. File formats are read in ``data.py`` only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from .base import FigureResult

log = logging.getLogger("ncmargin.figures")

__all__ = ["FIGURE_NAMES", "INDEX_FILE", "FigureResult", "load_index", "make_figures", "write_index"]


def __getattr__(name: str):
    if name == "FIGURE_NAMES":  # every registered figure's name (importing the figure modules: lazy)
        from .registry import figure_names

        return figure_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_figures(paths: Sequence[str | os.PathLike] | str | os.PathLike, out_dir: str | os.PathLike,
                 skipped: list[str] | None = None, strict: bool = False) -> list[FigureResult]:
    """Draw every figure that the results under ``paths`` support, into ``out_dir``.

    ``paths``: run directories (log.jsonl [+ analysis.json]), a ``verify`` output directory (runs/,
    claim1a/, claim1b/, sweep/), a sweep directory (sweep.json), or the result files themselves.

    - Every results file is read first: a missing path or a malformed file raises FileNotFoundError /
      ValueError naming the file (nothing is drawn then).
    - A figure whose data is absent is skipped, the reason logged (logger ``ncmargin.figures``) and
      appended to ``skipped`` if given.
    - A figure that fails while drawing is reported in ``skipped`` as ``FAILED`` with the exception and
      logged with its traceback, and the other figures are still drawn; with ``strict=True`` the
      exception propagates instead.
    Writes ``out_dir/figures.json`` (files, captions, skips). Returns the written figures in a fixed order.
    """
    from .data import discover
    from .registry import Skip, plan, read_inputs

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise ValueError("no paths given; pass run directories, a sweep directory or a verify output "
                         "directory")
    out_dir = Path(out_dir)
    skipped = skipped if skipped is not None else []

    def skip(what: str, why: str) -> None:
        msg = f"{what}: skipped — {why}"
        log.info(msg)
        skipped.append(msg)

    # 1. read everything (strict: malformed files raise here, naming the file)
    inv = discover(paths)
    for note in inv.notes:
        skip("input", note)
    inputs = read_inputs(inv)

    # 2. plan the figures the data supports (every registered figure, ncmargin.figures.registry)
    jobs = []
    for name, job in plan(inputs, out_dir):
        if isinstance(job, Skip):
            skip(name, job.why)
        else:
            jobs.append((name, job))

    # 3. draw, each figure on its own
    results: list[FigureResult] = []
    for name, job in jobs:
        try:
            results.append(job())
        except Exception as exc:
            if strict:
                raise
            log.warning("figure %s failed", name, exc_info=True)
            skipped.append(f"{name}: FAILED — {type(exc).__name__}: {exc}")
    if results or skipped:
        write_index(out_dir, results, skipped)
    return results


INDEX_FILE = "figures.json"  # ncmargin.store.FiguresIndex.FILE


def write_index(out_dir: str | os.PathLike, results: Sequence[FigureResult], skipped: Sequence[str] = ()) -> Path:
    """``OUT/figures.json`` (the :class:`ncmargin.store.FiguresIndex` record): every figure's files
    (relative to ``out_dir``) and caption, and the skipped figures with their reasons, so that a report
    written later (without calling make_figures) can still show the captions."""
    from ncmargin.store import FiguresIndex

    out_dir = Path(out_dir)

    def rel(p: Path) -> str:
        try:
            return str(Path(p).resolve().relative_to(out_dir.resolve()))
        except ValueError:
            return str(p)

    return FiguresIndex(figures=[{"name": r.name, "png": rel(r.png), "pdf": rel(r.pdf), "csv": rel(r.csv),
                                  "caption": r.caption} for r in results],
                        skipped=list(skipped)).write(out_dir / INDEX_FILE)


def load_index(out_dir: str | os.PathLike) -> list[FigureResult]:
    """The figures listed in ``out_dir/figures.json`` (written by make_figures), as FigureResults with
    absolute paths — for a report written later without redrawing. A figure whose PNG is gone is left
    out. Missing index: FileNotFoundError; malformed: ValueError (both name the file and the key)."""
    from ncmargin.store import FiguresIndex

    out_dir = Path(out_dir)
    return [FigureResult(f.name, out_dir / f.png, f.pdf and out_dir / f.pdf, f.csv and out_dir / f.csv, f.caption)
            for f in FiguresIndex.read(out_dir / INDEX_FILE).figures if (out_dir / f.png).is_file()]
