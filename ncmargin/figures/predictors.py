"""Claim 3: each alignment predictor (docs/theory.md §8; the paper's Thms 4.8–4.10 in [our form]) against
final test accuracy, one point per run, Spearman's rank correlation ρ in the panel title.

ρ and its p-value are taken from sweep.json's ``stats.predictor_correlations`` when present (they may
carry a bootstrap interval, shown too); otherwise computed here with ncmargin.theory.stats.spearman over the runs
that reached 100% train accuracy."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from ncmargin.theory.stats import spearman

from . import style
from .base import FigureResult, fmt_num, to_percent, write_csv
from .data import Sweep, as_float, read_sweep
from .registry import Figure, Skip, register

__all__ = ["plot_predictors"]

NICE = {
    "alignment_score": "concentration score{scale}; smaller = better",
    "concentration_score": "concentration score{scale}; smaller = better",
    "normalized_margin_mean": r"mean$_{y \neq y'}$ $\gamma_{y,y'}/\|m_y - m_{y'}\|${scale}",
    "normalized_margin_min": r"min$_{y \neq y'}$ $\gamma_{y,y'}/\|m_y - m_{y'}\|${scale}",
    "gamma_over_dist_mean": r"mean $\gamma_{y,y'}/\|m_y - m_{y'}\|${scale}",
    "gamma_over_dist_min": r"min $\gamma_{y,y'}/\|m_y - m_{y'}\|${scale}",
}


def _from_file(d) -> tuple[float, float, float, float]:
    if not isinstance(d, dict):
        return math.nan, math.nan, math.nan, math.nan
    return (as_float(d.get("rho", d.get("spearman_rho"))), as_float(d.get("p", d.get("p_value"))),
            as_float(d.get("ci_low")), as_float(d.get("ci_high")))


def _corr(sweep: Sweep, name: str, x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float, str]:
    """Spearman ρ across the plotted runs: sweep.json's per-run entry (``[name]["runs"]``, or the entry
    itself when it says its unit is runs or gives none) when present, else ncmargin.theory.stats.spearman
    (exact permutation p-value at small n)."""
    pc = sweep.stats.get("predictor_correlations")
    d = pc.get(name) if isinstance(pc, dict) else None
    if isinstance(d, dict):
        cand = d.get("runs") if isinstance(d.get("runs"), dict) else (d if d.get("unit", "runs") == "runs" else None)
        rho, p, lo, hi = _from_file(cand)
        if np.isfinite(rho):
            return rho, p, lo, hi, "sweep.json"
    m = np.isfinite(x) & np.isfinite(y)
    if m.sum() < 3 or np.ptp(x[m]) == 0 or np.ptp(y[m]) == 0:
        return math.nan, math.nan, math.nan, math.nan, "too few distinct values"
    res = spearman(x[m], y[m])
    return float(res["rho"]), float(res["p_value"]), math.nan, math.nan, "computed here"


def _alignment_level(sweep: Sweep, name: str) -> str:
    """The headline correlation across alignment means, if sweep.json has one."""
    pc = sweep.stats.get("predictor_correlations")
    d = pc.get(name) if isinstance(pc, dict) else None
    if not isinstance(d, dict) or d.get("unit") != "alignment means":
        return ""
    rho, p, lo, hi = _from_file(d)
    if not np.isfinite(rho):
        return ""
    ci = f", CI {fmt_num(lo, 2)} to {fmt_num(hi, 2)}" if np.isfinite(lo) and np.isfinite(hi) else ""
    return f"ρ over alignment means = {fmt_num(rho, 2)} (p = {fmt_num(p, 2)}{ci})"


@style.styled
def plot_predictors(sweep: Sweep | str | os.PathLike, out_dir: str | os.PathLike,
                    name: str = "predictors") -> FigureResult:
    sweep = sweep if isinstance(sweep, Sweep) else read_sweep(sweep)
    names = list(dict.fromkeys(k for r in sweep.runs for k in r.predictors))
    if not names:
        raise ValueError(f"{sweep.path}: no run has 'predictors'; the sweep must compute the alignment "
                         f"predictors (rerun `ncmargin sweep`)")
    inc = [r for r in sweep.runs if r.reached_tpt]
    if not inc:
        raise ValueError(f"{sweep.path}: no run reached 100% train accuracy; nothing to correlate")
    acc = to_percent(np.array([r.final_test_acc for r in sweep.runs]))
    acc_by_run = {id(r): a for r, a in zip(sweep.runs, acc)}
    al_idx = {a: i for i, a in enumerate(sweep.alignment_ids)}
    n = len(names)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = style.new_figure(ncols=ncols, nrows=nrows,
                                 width=style.COLUMN_WIDTH if n == 1 else style.PAGE_WIDTH,
                                 height=2.4 * nrows)
    rows, summary = [], []
    for p, pname in enumerate(names):
        ax = axes.flat[p]
        x = np.array([r.predictors.get(pname, math.nan) for r in inc])
        y = np.array([acc_by_run[id(r)] for r in inc])
        for r, xi, yi in zip(inc, x, y):
            ai = al_idx.get(r.alignment, 0)
            ax.plot(xi, yi, linestyle="none", marker=style.marker(ai), color=style.color(ai), alpha=0.9,
                    **style.POINT_EDGE)
            rows.append([pname, r.alignment, "" if r.seed is None else r.seed, xi, yi])
        fin = x[np.isfinite(x)]
        if fin.size and (fin > 0).all() and fin.max() / fin.min() > 100:
            style.log_axis(ax, "x")
            xlab_scale = " (log scale)"
        else:
            xlab_scale = ""
        rho, pv, lo, hi, src = _corr(sweep, pname, x, y)
        ci = f" (CI {fmt_num(lo, 2)} to {fmt_num(hi, 2)})" if np.isfinite(lo) and np.isfinite(hi) else ""
        n_pts = int((np.isfinite(x) & np.isfinite(y)).sum())
        ax.set_title(f"Spearman ρ = {fmt_num(rho, 2)}, p = {fmt_num(pv, 2)}\n"
                     + (f"95% CI {fmt_num(lo, 2)} to {fmt_num(hi, 2)}, " if ci else "")
                     + f"{n_pts} runs", fontsize=7)
        lab = NICE.get(pname, pname.replace("_", " ") + "{scale}")
        ax.set_xlabel(lab.replace("{scale}", xlab_scale.replace(" (log scale)", ", log scale"))
                      if "{scale}" in lab else lab + xlab_scale)
        if p % ncols == 0:
            ax.set_ylabel("final test accuracy (%)")
        al = _alignment_level(sweep, pname)
        summary.append(f"{pname}: ρ over runs = {fmt_num(rho, 2)}{ci} (p = {fmt_num(pv, 2)}, {src})"
                       + (f", {al}" if al else ""))
        rows.append([pname, "spearman_rho", "", rho, pv])
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    handles = [Line2D([], [], linestyle="none", marker=style.marker(i), color=style.color(i),
                      label=f"alignment {a}", **style.POINT_EDGE) for a, i in al_idx.items()]
    style.legend_below(fig, handles, ncols=min(len(handles), 6))
    out_dir = Path(out_dir)
    png, pdf = style.save_figure(fig, out_dir, name)
    csv = write_csv(out_dir / f"{name}.csv", ["predictor", "alignment", "seed", "value", "test_acc_pct"],
                    rows)
    n_exc = len(sweep.runs) - len(inc)
    caption = ("Claim 3, alignment predictors from the theory against final test accuracy, one point per run "
               "(colour = alignment)"
               + (f", {n_exc} run(s) without 100% train accuracy left out" if n_exc else "")
               + ". Titles: Spearman rank correlation over the plotted runs" + ("; " if summary else "")
               + "; ".join(summary) + ". A predictor that explains the alignment effect correlates with "
               "accuracy (negatively for the concentration score, where smaller is better). The rows "
               "'spearman_rho' of the CSV hold ρ in 'value' and its p-value in 'test_acc_pct'.")
    return FigureResult(name, png, pdf, csv, caption)


register(Figure(name="predictors", inputs="sweeps", each=True, order=30, draw=plot_predictors,
                caption="claim 3: each generalization predictor against test accuracy, with Spearman ρ",
                select=lambda sw: sw if any(r.predictors for r in sw.runs) and any(r.reached_tpt for r in sw.runs)
                else Skip(f"{sw.path}: no predictors, or no run reached 100% train accuracy")))
