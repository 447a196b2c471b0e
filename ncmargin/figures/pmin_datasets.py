"""p_min and normalized p_min over training across datasets (the paper's Fig. 3 shows several datasets).

One column of panels per dataset (top: p_min, bottom: p_min / (||W||_F · max_i ||h_i||)), one line per
run of that dataset, each dataset on its own epoch axis (training lengths differ). Values as logged by the
trainer (docs/theory.md §2, §12); nothing is recomputed. Reads stored logs only."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.lines import Line2D

from . import style
from .base import FigureResult, write_csv
from .data import RunData
from .pmin import cut_deep_negatives
from .registry import Figure, Skip, register
from .terminal_phase import coerce_runs

NAME = "pmin_datasets"

__all__ = ["NAME", "dataset_of", "plot_pmin_datasets"]


def dataset_of(run: RunData) -> str:
    """The run's dataset name from its config (``meta["dataset"]``), or ``"unknown"``."""
    d = run.meta.get("dataset")
    return str(d) if d is not None else "unknown"


@style.styled
def plot_pmin_datasets(runs: Sequence[RunData | str | os.PathLike], out_dir: str | os.PathLike,
                       name: str = NAME) -> FigureResult:
    """p_min (top row) and the normalized margin (bottom row) against epoch, one column per dataset
    (in the order the datasets first appear in ``runs``), one line per run. Needs ``p_min`` in every
    run's log; runs of at least two datasets (for one dataset use :func:`ncmargin.figures.pmin.plot_pmin`)."""
    runs = coerce_runs(runs)
    for r in runs:
        if not r.has("p_min"):
            raise ValueError(f"{r.run_dir / 'log.jsonl'}: no 'p_min' values; the p_min figure needs the "
                             "per-epoch minimum margin")
    groups: dict[str, list[RunData]] = {}
    for r in runs:
        groups.setdefault(dataset_of(r), []).append(r)
    if len(groups) < 2:
        raise ValueError(f"all runs are from one dataset ({next(iter(groups))}); the across-datasets figure "
                         "needs runs of at least two datasets (use plot_pmin for one)")
    D = len(groups)
    fig, axes = style.new_figure(ncols=D, nrows=2, height=4.4)
    rows, cut_notes = [], []
    handles = []
    for j, (ds, rs) in enumerate(groups.items()):
        ax_raw, ax_norm = axes[0][j], axes[1][j]
        for i, r in enumerate(rs):
            k = runs.index(r)  # colour by position in the whole figure, so no two runs share a style
            c, ls = style.color(k), style.linestyle(k)
            ep, pm, nm = r.epochs, r.series("p_min"), r.series("normalized_margin")
            ax_raw.plot(ep, pm, color=c, linestyle=ls)
            if r.has("normalized_margin"):
                ax_norm.plot(ep, nm, color=c, linestyle=ls)
            for ax in (ax_raw, ax_norm):
                style.mark_onset(ax, r.onset_epoch, c)
            handles.append(Line2D([], [], color=c, linestyle=ls, label=r.label))
            for t in range(len(ep)):
                rows.append([ds, r.label, r.run_id, ep[t], pm[t], nm[t],
                             "" if r.onset_epoch is None else r.onset_epoch])
        for ax, key in ((ax_raw, "p_min"), (ax_norm, "normalized_margin")):
            ax.axhline(0.0, color="0.2", linewidth=0.8, zorder=1)
            note = cut_deep_negatives(ax, rs, key)
            if note:
                cut_notes.append(f"{ds} {key}: {note}")
        if not any(r.has("normalized_margin") for r in rs):
            ax_norm.text(0.5, 0.5, "normalized margin not logged", transform=ax_norm.transAxes,
                         ha="center", va="center", color="0.4")
        ax_norm.set_xlabel("epoch")
        style.panel_label(ax_raw, f"({chr(ord('a') + j)}) {ds}")
        if j == 0:
            ax_raw.set_ylabel(r"$p_{\min}$ (logit units)")
            ax_norm.set_ylabel(r"$p_{\min}\,/\,(\|W\|_F \mathrm{max}_i \|h_i\|)$")
    handles.append(Line2D([], [], color="0.3", linestyle=":", label="100% train acc."))
    style.legend_below(fig, handles)
    out_dir = Path(out_dir)
    png, pdf = style.save_figure(fig, out_dir, name)
    csv = write_csv(out_dir / f"{name}.csv",
                    ["dataset", "run", "run_id", "epoch", "p_min", "normalized_margin", "onset_epoch"], rows)
    caption = (f"Minimum training margin against epoch on {D} datasets ({', '.join(groups)}; cf. Gao et al. "
               "2023, Fig. 3). Top: p_min = min_i (w_{y_i} − max_{k≠y_i} w_k)·h_i; bottom: p_min divided by "
               "||W||_F·max_i ||h_i||, which removes the growth from the scale of W and H alone. Each column "
               "has its own epoch axis. Dotted lines: onset of 100% train accuracy.")
    if cut_notes:
        caption += (" Some y axes stop at minus the largest positive value so that the terminal phase is "
                    "readable; the early minima below the axis (all in the CSV) are "
                    + "; ".join(cut_notes) + ".")
    return FigureResult(name, png, pdf, csv, caption)


def _select(runs: Sequence[RunData]):
    pm = [r for r in runs if r.has("p_min")]
    if not pm:
        return Skip("no run logs 'p_min'")
    if len({dataset_of(r) for r in pm}) < 2:
        return Skip("all runs are from one dataset (the pmin figure shows them)")
    return pm


register(Figure(name=NAME, inputs="runs", order=21, draw=plot_pmin_datasets, select=_select,
                caption="p_min and normalized p_min against epoch, one column per dataset (Gao et al. 2023, Fig. 3)"))
