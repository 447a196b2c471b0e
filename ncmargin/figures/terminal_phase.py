"""Terminal-phase training curves: train/test accuracy and loss against epoch, onset of 100% train
accuracy marked (Papyan, Han & Donoho 2020, Fig. 2 style; the terminal phase of training, TPT)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from . import style
from .base import FigureResult, to_percent, write_csv
from .data import RunData, read_run, run_labels
from .registry import Figure, register

NAME = "terminal_phase"


def coerce_runs(runs) -> list[RunData]:
    if isinstance(runs, (RunData, str, os.PathLike)):
        runs = [runs]
    out = [r if isinstance(r, RunData) else read_run(r) for r in runs]
    if not out:
        raise ValueError("no runs given; pass one or more run directories (each with log.jsonl)")
    run_labels(out)
    return out


@style.styled
def plot_terminal_phase(runs: Sequence[RunData | str | os.PathLike], out_dir: str | os.PathLike,
                        name: str = NAME) -> FigureResult:
    """Accuracy (%) and cross-entropy loss (log y) against epoch for each run; train solid, test
    dashed; a dotted vertical line at each run's first epoch with 100% train accuracy.

    Needs per epoch: ``epoch`` and at least ``train_acc`` or ``loss`` (log.jsonl)."""
    runs = coerce_runs(runs)
    for r in runs:
        if not (r.has("train_acc") or r.has("loss")):
            raise ValueError(f"{r.run_dir / 'log.jsonl'}: has neither 'train_acc' nor 'loss'; "
                             f"the terminal-phase figure needs at least one of them")
    fig, axes = style.new_figure(ncols=2, height=2.5)
    ax_acc, ax_loss = axes[0]
    rows = []
    for i, r in enumerate(runs):
        c = style.color(i)
        ep = r.epochs
        tr, te = to_percent(r.series("train_acc")), to_percent(r.series("test_acc"))
        lo, tlo = r.series("loss"), r.series("test_loss")
        onset = r.onset_epoch
        ax_acc.plot(ep, tr, color=c, linestyle="-")
        ax_acc.plot(ep, te, color=c, linestyle="--")
        pos = lo > 0
        ax_loss.plot(ep[pos], lo[pos], color=c, linestyle="-")
        tpos = tlo > 0
        ax_loss.plot(ep[tpos], tlo[tpos], color=c, linestyle="--")
        for ax in (ax_acc, ax_loss):
            style.mark_onset(ax, onset, c)
        for k in range(len(ep)):
            rows.append([r.label, r.run_id, ep[k], tr[k], te[k], lo[k], tlo[k],
                         "" if onset is None else onset])
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy loss (log scale)")
    style.log_axis(ax_loss, "y")
    style.panel_label(ax_acc, "(a) accuracy")
    style.panel_label(ax_loss, "(b) loss")
    # Zoom the accuracy axis onto the interesting range: from a bit below the lowest test accuracy
    # reached after the first 10% of training to 100 (early epochs leave it below the axis).
    lows = []
    for r in runs:
        te = to_percent(r.series("test_acc"))
        tr = to_percent(r.series("train_acc"))
        k0 = max(1, len(te) // 10)
        for a in (te[k0:], tr[k0:]):
            if np.isfinite(a).any():
                lows.append(np.nanmin(a))
    if lows:
        lo = min(lows)
        ax_acc.set_ylim(max(0.0, lo - 0.15 * (100 - lo) - 0.5), 100.0 + 0.04 * (100 - lo) + 0.1)
    style_handles = [Line2D([], [], color="0.3", linestyle="-", label="train"),
                     Line2D([], [], color="0.3", linestyle="--", label="test"),
                     Line2D([], [], color="0.3", linestyle=":", label="100% train acc.")]
    run_handles = [Line2D([], [], color=style.color(i), linestyle=style.linestyle(i), label=r.label)
                   for i, r in enumerate(runs)]
    style.legend_below(fig, run_handles + style_handles)
    out_dir = Path(out_dir)
    png, pdf = style.save_figure(fig, out_dir, name)
    csv = write_csv(out_dir / f"{name}.csv",
                    ["run", "run_id", "epoch", "train_acc_pct", "test_acc_pct", "train_loss", "test_loss",
                     "onset_epoch"], rows)
    onsets = ", ".join(f"{r.label}: {r.onset_epoch if r.onset_epoch is not None else 'not reached'}"
                       for r in runs)
    caption = ("Training curves. (a) Train (solid) and test (dashed) accuracy against epoch, axis zoomed to "
               "the range reached after the first tenth of training; (b) train and test cross-entropy "
               "loss on a log scale. Dotted vertical lines: first epoch with 100% train accuracy, the "
               f"onset of the terminal phase ({onsets}).")
    return FigureResult(name, png, pdf, csv, caption)


register(Figure(name=NAME, inputs="runs", order=10, draw=plot_terminal_phase,
                caption="train and test accuracy and loss against epoch, onset of 100% train accuracy marked"))
