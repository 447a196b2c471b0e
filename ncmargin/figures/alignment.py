"""Claim 3: test accuracy across label–ETF alignments, seeds as points (the paper's Fig. 4).

Each alignment (a permutation of labels onto the vertices of a fixed simplex-ETF head, and a rotation of
its frame; docs/theory.md §1, §8) is one column; every seed's final test accuracy is a point, with the mean
and its 95% Student-t confidence interval beside them (mean ± t_{0.975, n-1}·s/√n). Runs that did not
reach 100% train accuracy are drawn as hollow grey crosses and left out of the mean (the sweep
excludes them from the verdict too)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from scipy import stats

from . import style
from .base import FigureResult, fmt_num, to_percent, write_csv
from .data import Sweep, as_float, read_sweep
from .registry import Figure, Skip, register

__all__ = ["mean_ci", "plot_alignment"]


def mean_ci(x, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval; (mean, nan, nan) with fewer than 2 values."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if x.size < 2:
        return m, math.nan, math.nan
    h = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - h, m + h


def _stat_text(sweep: Sweep) -> str:
    """A short summary of the sweep's alignment statistics (ANOVA p and η² for alignment and seed,
    permutation-test p), whatever the exact key names."""
    parts = []
    an = sweep.stats.get("anova")
    if isinstance(an, dict):
        # the keys of sweep.json's stats.anova (ncmargin.store.Sweep; claims/claim3/stats.py writes them)
        p, eta, eta_s = an.get("p_alignment"), an.get("eta2_alignment"), an.get("eta2_seed")
        bits = []
        if p is not None:
            bits.append(f"p = {fmt_num(as_float(p), 2)}")
        if eta is not None:
            bits.append(f"η²(alignment) = {fmt_num(as_float(eta), 2)}")
        if eta_s is not None:
            bits.append(f"η²(seed) = {fmt_num(as_float(eta_s), 2)}")
        if bits:
            parts.append("ANOVA: " + ", ".join(bits))
    pe = sweep.stats.get("permutation")
    if isinstance(pe, dict):
        p = pe.get("p_value")
        if p is not None:
            parts.append(f"permutation p = {fmt_num(as_float(p), 2)}")
    return "; ".join(parts)


@style.styled
def plot_alignment(sweep: Sweep | str | os.PathLike, out_dir: str | os.PathLike,
                   name: str = "alignment") -> FigureResult:
    sweep = sweep if isinstance(sweep, Sweep) else read_sweep(sweep)
    acc = to_percent(np.array([r.final_test_acc for r in sweep.runs]))
    seeds = sorted({r.seed for r in sweep.runs if r.seed is not None})
    seed_idx = {s: i for i, s in enumerate(seeds)}
    fig, axes = style.new_figure(ncols=1, width=max(style.COLUMN_WIDTH, 0.55 * len(sweep.alignment_ids) + 1.3),
                                 height=2.6)
    ax = axes[0, 0]
    rows = []
    n_seeds = max(1, len(seeds))
    offsets = (np.arange(n_seeds) - (n_seeds - 1) / 2) * (0.36 / max(1, n_seeds - 1) if n_seeds > 1 else 0)
    for a_i, a in enumerate(sweep.alignment_ids):
        idx = [k for k, r in enumerate(sweep.runs) if r.alignment == a]
        inc = [k for k in idx if sweep.runs[k].reached_tpt and np.isfinite(acc[k])]
        m, lo, hi = mean_ci(acc[inc])
        for k in idx:
            r = sweep.runs[k]
            si = seed_idx.get(r.seed, 0)
            x = a_i - 0.12 + offsets[si % len(offsets)]
            if r.reached_tpt:
                ax.plot(x, acc[k], linestyle="none", marker=style.marker(si), color=style.color(si),
                        markersize=4, alpha=0.9, **style.POINT_EDGE)
            else:
                ax.plot(x, acc[k], linestyle="none", marker="x", color="0.55", markersize=5)
            rows.append([a, "" if r.seed is None else r.seed, r.reached_tpt, acc[k], m, lo, hi])
        if np.isfinite(m):
            yerr = None if not np.isfinite(lo) else [[m - lo], [hi - m]]
            ax.errorbar(a_i + 0.28, m, yerr=yerr, color="0.1", marker="_", markersize=10,
                        capsize=2.5, elinewidth=1.1, linestyle="none")
    ax.set_xticks(range(len(sweep.alignment_ids)))
    crowded = sum(len(a) for a in sweep.alignment_ids) > 40  # long ids would run into each other
    ax.set_xticklabels(sweep.alignment_ids, rotation=30 if crowded else 0, ha="right" if crowded else "center")
    ax.set_xlim(-0.6, len(sweep.alignment_ids) - 0.4)
    ax.set_xlabel("alignment of labels to ETF vertices")
    ax.set_ylabel("final test accuracy (%)")
    ax.grid(axis="x", visible=False)
    st = _stat_text(sweep)
    if st:
        ax.set_title(st, fontsize=7)
    handles = [Line2D([], [], linestyle="none", marker=style.marker(seed_idx[s]), color=style.color(seed_idx[s]),
                      label=f"seed {s}", **style.POINT_EDGE) for s in seeds]
    handles.append(Line2D([], [], color="0.1", marker="_", markersize=10, label="mean ± 95% CI"))
    if any(not r.reached_tpt for r in sweep.runs):
        handles.append(Line2D([], [], linestyle="none", marker="x", color="0.55",
                              label="excluded (no 100% train acc.)"))
    style.legend_below(fig, handles, ncols=min(len(handles), 4))
    out_dir = Path(out_dir)
    png, pdf = style.save_figure(fig, out_dir, name)
    csv = write_csv(out_dir / f"{name}.csv",
                    ["alignment", "seed", "included", "test_acc_pct", "alignment_mean_pct",
                     "ci95_low_pct", "ci95_high_pct"], rows)
    n_exc = sum(not r.reached_tpt for r in sweep.runs)
    caption = ("Claim 3, non-conservative generalization (cf. Gao et al. 2023, Fig. 4): final test accuracy "
               "of networks with a fixed simplex-ETF classifier, one column per alignment of the labels with "
               "the ETF vertices, one point per seed; black: mean and 95% Student-t interval over the seeds "
               "that reached 100% train accuracy"
               + (f" ({n_exc} run(s) that did not are shown as grey crosses and excluded)" if n_exc else "")
               + (f". {st}." if st else ".")
               + " Alignment matters if the columns differ by more than the spread within a column.")
    return FigureResult(name, png, pdf, csv, caption)


register(Figure(name="alignment", inputs="sweeps", each=True, order=10, draw=plot_alignment,
                caption="claim 3: test accuracy across feature alignments (Gao et al. 2023, Fig. 4)",
                select=lambda sw: sw if any(np.isfinite(r.final_test_acc) for r in sw.runs)
                else Skip(f"{sw.path}: no run has a final test accuracy (none trained?)")))
