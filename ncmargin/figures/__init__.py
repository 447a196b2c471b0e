"""ncmargin.figures — every figure of the toolkit, regenerated from saved results only (never trains).

One module per figure, each ``plot_<name>(inputs..., out_dir) -> FigureResult(name, png, pdf, csv,
caption)`` writing PNG + PDF + a CSV of exactly the numbers plotted:

    terminal_phase.plot_terminal_phase(runs, out)   accuracy and loss vs epoch, onset of 100% train acc.
    pmin.plot_pmin(runs, out)                       p_min vs epoch, raw and normalized (paper Fig. 3)
    pmin_datasets.plot_pmin_datasets(runs, out)     the same, one column per dataset (runs of >= 2 datasets)
    ce_svm.plot_ce_svm_deep(runs, out)              claim 1c: angle to W*(H_t) and margin ratio vs epoch
    ce_svm.plot_ce_svm_fixed(claim1a, out)          claim 1a: angle (with a + c/log t fit), margin ratio
    ce_svm.plot_ufm(claim1b, out)                   claim 1b: normalized margin → certified optimum, ...
    bound.plot_bound(run, out)                      claim 2: bound terms stacked vs test error and gap
    nc_metrics.plot_nc_metrics(runs, out)           NC1–NC4 vs epoch (Papyan et al. 2020 panels)
    alignment.plot_alignment(sweep, out)            claim 3: test accuracy across alignments (paper Fig. 4)
    predictors.plot_predictors(sweep, out)          claim 3: each predictor vs test accuracy, Spearman ρ
    concentration.plot_concentration(sweep, out)    claim 3 premise: P(||μ̂−μ|| ≥ ε) vs n against the bound

:func:`make_figures` finds what a set of paths holds (run directories, a ``verify`` output directory, a
sweep directory) and draws every figure the data supports; file formats are read in ``data.py`` only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from .base import FigureResult

log = logging.getLogger("ncmargin.figures")

__all__ = ["FIGURE_NAMES", "INDEX_FILE", "FigureResult", "load_index", "make_figures", "write_index"]

FIGURE_NAMES = ("terminal_phase", "pmin", "pmin_datasets", "nc_metrics", "ce_svm_deep", "bound_<run>",
                "ce_svm_fixed", "ce_svm_ufm", "alignment", "concentration", "predictors")


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
    import numpy as np

    from .alignment import plot_alignment
    from .bound import plot_bound
    from .ce_svm import plot_ce_svm_deep, plot_ce_svm_fixed, plot_ufm
    from .concentration import plot_concentration
    from .data import discover, read_claim1a, read_claim1b, read_run, read_sweep, run_labels
    from .nc_metrics import ALL_KEYS as nc_keys
    from .nc_metrics import plot_nc_metrics
    from .pmin import plot_pmin
    from .pmin_datasets import dataset_of, plot_pmin_datasets
    from .predictors import plot_predictors
    from .terminal_phase import plot_terminal_phase

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
    runs = [read_run(d) for d in inv.runs]
    run_labels(runs)
    claims1a = [read_claim1a(p) for p in inv.claim1a]
    claims1b = [read_claim1b(p) for p in inv.claim1b]
    sweeps = [read_sweep(p) for p in inv.sweeps]

    # 2. plan the figures the data supports
    jobs: list[tuple[str, object]] = []
    if runs:
        jobs.append(("terminal_phase", lambda: plot_terminal_phase(runs, out_dir)))
        pm = [r for r in runs if r.has("p_min")]
        if pm:
            jobs.append(("pmin", lambda: plot_pmin(pm, out_dir)))
            if len({dataset_of(r) for r in pm}) >= 2:
                jobs.append(("pmin_datasets", lambda: plot_pmin_datasets(pm, out_dir)))
            else:  # one dataset: the pmin figure is the whole story; not a skip worth reporting
                log.debug("pmin_datasets: not drawn, all runs are from one dataset")
        else:
            skip("pmin", "no run logs 'p_min'")
        ncr = [r for r in runs if any(r.has(k) for k in nc_keys)
               or (r.analysis is not None and any(np.isfinite(r.analysis.col("nc", k)).any() for k in nc_keys))]
        if ncr:
            jobs.append(("nc_metrics", lambda: plot_nc_metrics(ncr, out_dir)))
        else:
            skip("nc_metrics", "no run logs NC metrics")
        svm = [r for r in runs if r.analysis is not None
               and np.isfinite(r.analysis.col("svm", "angle_deg")).any()]
        if svm:
            jobs.append(("ce_svm_deep", lambda: plot_ce_svm_deep(svm, out_dir)))
        else:
            skip("ce_svm_deep", "no run has analysis.json with an SVM solution "
                 "(run `ncmargin analyze RUN`; before 100% train accuracy there is none)")
        for r in runs:
            if r.analysis is None:
                skip(f"bound_{r.run_id}", f"{r.run_dir}/analysis.json absent (run `ncmargin analyze`)")
            elif not any(isinstance(cp.get("bound"), dict) for cp in r.analysis.checkpoints):
                skip(f"bound_{r.run_id}", f"{r.analysis.path}: no checkpoint has a bound")
            else:
                jobs.append((f"bound_{r.run_id}", lambda r=r: plot_bound(r, out_dir)))  # name sanitized there
    else:
        skip("terminal_phase, pmin, nc_metrics, ce_svm_deep, bound", "no run directory among the inputs")
    for i, c in enumerate(claims1a):
        nm = "ce_svm_fixed" if i == 0 else f"ce_svm_fixed_{i}"
        jobs.append((nm, lambda c=c, nm=nm: plot_ce_svm_fixed(c, out_dir, name=nm)))
    if not claims1a:
        skip("ce_svm_fixed", "no claim1a/fixed_features.json among the inputs")
    for i, c in enumerate(claims1b):
        nm = "ce_svm_ufm" if i == 0 else f"ce_svm_ufm_{i}"
        jobs.append((nm, lambda c=c, nm=nm: plot_ufm(c, out_dir, name=nm)))
    if not claims1b:
        skip("ce_svm_ufm", "no claim1b/ufm.json among the inputs")
    for i, sw in enumerate(sweeps):
        sfx = "" if i == 0 else f"_{i}"
        if any(np.isfinite(r.final_test_acc) for r in sw.runs):
            jobs.append((f"alignment{sfx}", lambda sw=sw, sfx=sfx: plot_alignment(sw, out_dir, name=f"alignment{sfx}")))
        else:
            skip(f"alignment{sfx}", f"{sw.path}: no run has a final test accuracy (none trained?)")
        if sw.concentration:
            jobs.append((f"concentration{sfx}",
                         lambda sw=sw, sfx=sfx: plot_concentration(sw, out_dir, name=f"concentration{sfx}")))
        else:
            skip(f"concentration{sfx}", f"{sw.path}: no 'concentration' results in it")
        if any(r.predictors for r in sw.runs) and any(r.reached_tpt for r in sw.runs):
            jobs.append((f"predictors{sfx}",
                         lambda sw=sw, sfx=sfx: plot_predictors(sw, out_dir, name=f"predictors{sfx}")))
        else:
            skip(f"predictors{sfx}", f"{sw.path}: no predictors, or no run reached 100% train accuracy")
    if not sweeps:
        skip("alignment, concentration, predictors", "no sweep.json among the inputs")

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


INDEX_FILE = "figures.json"


def write_index(out_dir: str | os.PathLike, results: Sequence[FigureResult], skipped: Sequence[str] = ()) -> Path:
    """``OUT/figures.json`` (schema ncmargin.figures/1): every figure's files (relative to ``out_dir``)
    and caption, and the skipped figures with their reasons, so that a report written later (without
    calling make_figures) can still show the captions."""
    from ncmargin.io import atomic_write_json

    out_dir = Path(out_dir)

    def rel(p: Path) -> str:
        try:
            return str(Path(p).resolve().relative_to(out_dir.resolve()))
        except ValueError:
            return str(p)

    doc = {"schema": "ncmargin.figures/1",
           "figures": [{"name": r.name, "png": rel(r.png), "pdf": rel(r.pdf), "csv": rel(r.csv),
                        "caption": r.caption} for r in results],
           "skipped": list(skipped)}
    p = out_dir / INDEX_FILE
    atomic_write_json(p, doc)
    return p


def load_index(out_dir: str | os.PathLike) -> list[FigureResult]:
    """The figures listed in ``out_dir/figures.json`` (written by make_figures), as FigureResults with
    absolute paths — for a report written later without redrawing. A figure whose PNG is gone is left
    out. Missing index: FileNotFoundError; malformed: ValueError (both name the file)."""
    from ncmargin.io import read_json

    out_dir = Path(out_dir)
    p = out_dir / INDEX_FILE
    doc = read_json(p)
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("ncmargin.figures/") \
            or not isinstance(doc.get("figures"), list):
        raise ValueError(f"{p}: not a figures index (schema ncmargin.figures/1); rerun `ncmargin figures`")
    out = []
    for i, f in enumerate(doc["figures"]):
        if not isinstance(f, dict) or not all(k in f for k in ("name", "png", "pdf", "csv", "caption")):
            raise ValueError(f"{p}: figures[{i}] needs name, png, pdf, csv and caption; rerun `ncmargin figures`")
        png = out_dir / f["png"]
        if png.is_file():
            out.append(FigureResult(f["name"], png, out_dir / f["pdf"], out_dir / f["csv"], f["caption"]))
    return out
