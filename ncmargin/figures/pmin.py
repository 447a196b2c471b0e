"""Minimum margin p_min against epoch for several runs, raw and normalized (the paper's Fig. 3).

p_min = min_i (w_{y_i} - max_{k≠y_i} w_k)·h_i (docs/theory.md §2; Gao et al. 2023, Def. of the minimum
margin); the normalized margin is p_min / (||W||_F · max_i ||h_i||) as logged by the trainer."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from . import style
from .base import FigureResult, write_csv
from .data import RunData
from .registry import Figure, Skip, register
from .terminal_phase import coerce_runs

NAME = "pmin"


def cut_deep_negatives(ax, runs: Sequence[RunData], key: str) -> str:
    """Before 100% train accuracy p_min can be far more negative than it ever gets positive; drawn in
    full, that dip flattens the terminal-phase growth the figure is about. If the minimum is below
    −1.5× the largest positive value, stop the axis at −1× that value and say (on the axes and in the
    returned note) what lies below. Returns '' when nothing is cut."""
    vals = [(r, r.series(key)) for r in runs if r.has(key)]
    if not vals:
        return ""
    top = max(float(np.nanmax(v)) for _, v in vals)
    low = min(float(np.nanmin(v)) for _, v in vals)
    if not (top > 0 and low < -1.5 * top):
        return ""
    bottom = -top
    ax.set_ylim(bottom, top + 0.08 * (top - bottom))
    parts = []
    for r, v in vals:
        k = int(np.nanargmin(v))
        if v[k] < bottom:
            parts.append(f"{r.label}: min {v[k]:.3g} at epoch {int(r.epochs[k])}")
    ax.annotate("↓ axis cut, see caption", xy=(0.99, 0.02), xycoords="axes fraction", ha="right", va="bottom",
                fontsize=6.5, color="0.3")
    return "; ".join(parts)


@style.styled
def plot_pmin(runs: Sequence[RunData | str | os.PathLike], out_dir: str | os.PathLike,
              name: str = NAME) -> FigureResult:
    """(a) p_min and (b) the normalized margin against epoch, one line per run, zero line and the
    onset of 100% train accuracy marked. Needs ``epoch`` and ``p_min`` per log line; the normalized
    panel uses ``normalized_margin`` where logged."""
    runs = coerce_runs(runs)
    for r in runs:
        if not r.has("p_min"):
            raise ValueError(f"{r.run_dir / 'log.jsonl'}: no 'p_min' values; the p_min figure needs the "
                             f"per-epoch minimum margin")
    fig, axes = style.new_figure(ncols=2, height=2.5)
    ax_raw, ax_norm = axes[0]
    rows = []
    any_norm = False
    for i, r in enumerate(runs):
        c, ls = style.color(i), style.linestyle(i)
        ep, pm, nm = r.epochs, r.series("p_min"), r.series("normalized_margin")
        ax_raw.plot(ep, pm, color=c, linestyle=ls)
        if r.has("normalized_margin"):
            any_norm = True
            ax_norm.plot(ep, nm, color=c, linestyle=ls)
        for ax in (ax_raw, ax_norm):
            style.mark_onset(ax, r.onset_epoch, c)
        for k in range(len(ep)):
            rows.append([r.label, r.run_id, ep[k], pm[k], nm[k],
                         "" if r.onset_epoch is None else r.onset_epoch])
    cut_notes = []
    for ax, key, sym in ((ax_raw, "p_min", "p_min"), (ax_norm, "normalized_margin", "normalized")):
        ax.axhline(0.0, color="0.2", linewidth=0.8, zorder=1)
        ax.set_xlabel("epoch")
        note = cut_deep_negatives(ax, runs, key)
        if note:
            cut_notes.append(f"{sym}: {note}")
    ax_raw.set_ylabel(r"$p_{\min}$ (logit units)")
    ax_norm.set_ylabel(r"$p_{\min}\,/\,(\|W\|_F \mathrm{max}_i \|h_i\|)$")
    style.panel_label(ax_raw, "(a) minimum margin")
    style.panel_label(ax_norm, "(b) normalized minimum margin")
    if not any_norm:
        ax_norm.text(0.5, 0.5, "normalized margin not logged", transform=ax_norm.transAxes,
                     ha="center", va="center", color="0.4")
    handles = [Line2D([], [], color=style.color(i), linestyle=style.linestyle(i), label=r.label)
               for i, r in enumerate(runs)]
    handles.append(Line2D([], [], color="0.3", linestyle=":", label="100% train acc."))
    style.legend_below(fig, handles)
    out_dir = Path(out_dir)
    png, pdf = style.save_figure(fig, out_dir, name)
    csv = write_csv(out_dir / f"{name}.csv",
                    ["run", "run_id", "epoch", "p_min", "normalized_margin", "onset_epoch"], rows)
    caption = ("Minimum training margin against epoch (cf. Gao et al. 2023, Fig. 3). (a) Raw "
               "p_min = min_i (w_{y_i} − max_{k≠y_i} w_k)·h_i, positive exactly when all training samples "
               "are classified correctly; (b) the same divided by ||W||_F·max_i ||h_i||, which removes the "
               "growth that comes from the scale of W and H alone. Dotted lines: onset of 100% train "
               "accuracy.")
    if cut_notes:
        caption += (" The y axes stop at minus the largest positive value so that the terminal phase is "
                    "readable; the early minima below the axis (all in the CSV) are " + "; ".join(cut_notes) + ".")
    return FigureResult(name, png, pdf, csv, caption)


register(Figure(name=NAME, inputs="runs", order=20, draw=plot_pmin,
                caption="p_min against epoch, raw and normalized (Gao et al. 2023, Fig. 3)",
                select=lambda runs: [r for r in runs if r.has("p_min")] or Skip("no run logs 'p_min'")))
