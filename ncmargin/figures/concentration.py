"""Claim 3 premise: the class-mean concentration inequality, empirical probability against the bound.

[our form of Gao et al. 2023, Thm 4.10] (docs/theory.md §8): for n i.i.d. features with ||h||_∞ ≤ ρ,
P(||μ̂ − μ|| ≥ ε) ≤ 2d·exp(−n ε² / (2 d² ρ²)). The sweep estimates the left side by Monte Carlo (binomial
standard error) (a) on fresh samples with a known mean, and (b) on features of the samples a network was
trained on — the setting of the theorem, where the samples are *not* independent of the feature map —
beside fresh samples pushed through the same network. This module plots what sweep.json holds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from . import style
from .base import FigureResult, fmt_num, write_csv
from .data import Sweep, read_sweep
from .registry import Figure, Skip, register

__all__ = ["plot_concentration"]

PANELS = {"fresh": "(a) fresh i.i.d. samples, known mean",
          "trained": "(b) features of the training samples"}


@style.styled
def plot_concentration(sweep: Sweep | str | os.PathLike, out_dir: str | os.PathLike,
                       name: str = "concentration") -> FigureResult:
    """P(||μ̂ − μ|| ≥ ε) against n (log x), one colour per ε: empirical (solid, ±2 s.e. bars), bound
    (dashed). The y axis is the probability scale [0, 1]; a bound above 1 is vacuous and runs off the top."""
    sweep = sweep if isinstance(sweep, Sweep) else read_sweep(sweep)
    parts = [p for p in ("fresh", "trained") if p in sweep.concentration]
    if not parts:
        raise ValueError(f"{sweep.path}: no 'concentration' results; run the sweep with the concentration "
                         f"check (`ncmargin sweep` without --no-concentration)")
    fig, axes = style.new_figure(ncols=len(parts), height=2.7)
    eps_all = sorted({float(e) for p in parts for e in sweep.concentration[p]["eps"] if np.isfinite(e)})
    eps_idx = {e: i for i, e in enumerate(eps_all)}
    rows = []
    any_fresh_through_net = False
    for j, part in enumerate(parts):
        ax = axes[0, j]
        c = sweep.concentration[part]
        for e in eps_all:
            m = c["eps"] == e
            order = np.argsort(c["n"][m])
            n = c["n"][m][order]
            emp, se, bd = c["empirical"][m][order], c["stderr"][m][order], c["bound"][m][order]
            col = style.color(eps_idx[e])
            yerr = None if not np.isfinite(se).any() else 2 * np.nan_to_num(se)
            ax.errorbar(n, emp, yerr=yerr, color=col, marker=style.marker(eps_idx[e]), markersize=3.5,
                        linestyle="-", capsize=1.5, elinewidth=0.8)
            ax.plot(n, bd, color=col, linestyle="--", linewidth=1.0)
            ef = c["empirical_fresh"][m][order]
            if part == "trained" and np.isfinite(ef).any():
                any_fresh_through_net = True
                ax.plot(n, ef, color=col, linestyle=":", linewidth=1.2)
            for k in range(len(n)):
                rows.append([part, n[k], e, emp[k], se[k], bd[k], ef[k]])
        style.log_axis(ax, "x")
        ax.set_ylim(-0.03, 1.05)
        ax.set_xlabel("samples per class n (log scale)")
        if j == 0:
            ax.set_ylabel(r"P$(\|\hat\mu - \mu\| \geq \varepsilon)$")
        style.panel_label(ax, PANELS.get(part, part))
    handles = [Line2D([], [], color=style.color(i), marker=style.marker(i), markersize=3.5, label=f"ε = {e:g}")
               for e, i in eps_idx.items()]
    handles += [Line2D([], [], color="0.3", linestyle="-", label="empirical (±2 s.e.)"),
                Line2D([], [], color="0.3", linestyle="--", label="bound 2d·exp(−nε²/(2d²ρ²)), off the top where > 1")]
    if any_fresh_through_net:
        handles.append(Line2D([], [], color="0.3", linestyle=":", label="fresh samples, same network"))
    style.legend_below(fig, handles, ncols=3)
    out_dir = Path(out_dir)
    png, pdf = style.save_figure(fig, out_dir, name)
    csv = write_csv(out_dir / f"{name}.csv",
                    ["setting", "n", "eps", "empirical", "stderr", "bound", "empirical_fresh_same_network"], rows)
    summ = sweep.concentration_info.get("summary") if isinstance(sweep.concentration_info, dict) else None
    held = ""
    if isinstance(summ, dict):
        bits = []
        for part in parts:
            sp = summ.get(part)
            if isinstance(sp, dict) and "held" in sp and "points" in sp:
                bits.append(f"{part}: held at {sp['held']}/{sp['points']} points "
                            f"({sp.get('held_nontrivial', '?')}/{sp.get('nontrivial_points', '?')} where the bound "
                            f"is below 1)")
        held = (" " + "; ".join(bits) + ".") if bits else ""
    caption = ("Claim 3 premise, class-mean concentration (our form of Gao et al. 2023, Thm 4.10): the probability "
               "that an empirical class mean is ε or more away from the true mean, against the number of samples "
               "per class (log axis); solid: Monte Carlo estimate with ±2 standard errors, dashed: the bound "
               "2d·exp(−nε²/(2d²ρ²)), which is vacuous (above 1, off the axis) for small n. "
               + ("(a) fresh i.i.d. samples; " if "fresh" in parts else "")
               + ("(b) features of the very samples a network was trained on, where the independence the bound "
                  "assumes fails" + ("; dotted: fresh samples through the same network" if any_fresh_through_net
                                     else "") + "." if "trained" in parts else "")
               + held
               + (f" ε values: {', '.join(fmt_num(e) for e in eps_all)}." if eps_all else ""))
    return FigureResult(name, png, pdf, csv, caption)


register(Figure(name="concentration", inputs="sweeps", each=True, order=20, draw=plot_concentration,
                caption="claim 3 premise: P(||μ̂−μ|| ≥ ε) against n, measured and bounded",
                select=lambda sw: sw if sw.concentration else Skip(f"{sw.path}: no 'concentration' results in it")))
