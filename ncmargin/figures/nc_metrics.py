"""Neural-collapse metrics NC1–NC4 against epoch, in the panels of Papyan, Han & Donoho (2020, Figs. 6–9).

Definitions: docs/theory.md §6 (NC1 = Tr(Σ_W Σ_B^†)/K with the top-(K-1) pseudo-inverse; NC2 equinorm =
std/mean of centred class-mean norms, equiangularity = std of pairwise cosines; NC3 = ||W/||W||_F −
Ṁ/||Ṁ||_F||_F²; NC4 = fraction of samples where the classifier disagrees with the nearest class mean)."""

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

NAME = "nc_metrics"

# (panel title, y label, log y, [((key and its aliases), legend text, line style)])
PANELS = [
    ("(a) NC1: within-class variability", r"Tr$(\Sigma_W \Sigma_B^\dagger)/K$", True,
     [(("nc1_topk",), "NC1", "-")]),
    ("(b) NC2: equinorm and equiangularity", "std/mean of norms; std of cosines", True,
     [(("nc2_equinorm_means",), "equinorm (means)", "-"),
      (("nc2_equinorm_classifier", "nc2_equinorm_classifiers"), "equinorm (classifier)", "-."),
      (("nc2_equiangular_means",), "equiangular (means)", "--"),
      (("nc2_equiangular_classifier", "nc2_equiangular_classifiers"), "equiangular (classifier)",
       (0, (4, 1, 1, 1, 1, 1)))]),
    ("(c) NC3: self-duality", r"$\|W/\|W\|_F - \dot M/\|\dot M\|_F\|_F^2$", True,
     [(("nc3_self_duality",), "NC3", "-")]),
    ("(d) NC4: classifier vs nearest class mean", "mismatch (% of train samples)", False,
     [(("nc4_ncc_mismatch",), "NC4", "-")]),
]


def _series(r: RunData, keys) -> tuple[np.ndarray, np.ndarray, str]:
    """Per-epoch values from log.jsonl; else the checkpoints' 'nc' dict of analysis.json."""
    keys = (keys,) if isinstance(keys, str) else keys
    for key in keys:
        if r.has(key):
            return r.epochs, r.series(key), key
    if r.analysis is not None:
        for key in keys:
            v = r.analysis.col("nc", key)
            if np.isfinite(v).any():
                return r.analysis.epochs, v, key
    return np.array([]), np.array([]), keys[0]


ALL_KEYS = [k for _, _, _, spec in PANELS for keys, _, _ in spec for k in keys]


@style.styled
def plot_nc_metrics(runs: Sequence[RunData | str | os.PathLike], out_dir: str | os.PathLike,
                    name: str = NAME) -> FigureResult:
    """Four panels (NC1, NC2, NC3, NC4) against epoch, one colour per run; NC1–NC3 on log y (they decay
    towards 0 under collapse), NC4 in percent on a linear axis (it reaches exactly 0)."""
    runs = coerce_runs(runs)
    if not any(_series(r, k)[0].size for r in runs for k in ALL_KEYS):
        raise ValueError(f"{runs[0].run_dir / 'log.jsonl'}: none of the NC metric keys {ALL_KEYS} is logged "
                         f"(nor in analysis.json); nothing to plot")
    fig, axes = style.new_figure(ncols=2, nrows=2, height=4.6)
    rows = []
    used_styles: dict[str, object] = {}
    from_checkpoints: set[str] = set()
    for p, (title, ylab, logy, spec) in enumerate(PANELS):
        ax = axes.flat[p]
        drawn = False
        for i, r in enumerate(runs):
            c = style.color(i)
            for keys, text, ls in spec:
                ep, v, key = _series(r, keys)
                if not ep.size:
                    continue
                if key == "nc4_ncc_mismatch":
                    v = v * 100.0 if np.nanmax(v) <= 1.0 else v
                for k in range(len(ep)):
                    rows.append([r.label, r.run_id, key, ep[k], v[k]])
                m = np.isfinite(v) & ((v > 0) if logy else True)
                sparse = not r.has(key)  # from analysis.json checkpoints, not the per-epoch log
                ax.plot(ep[m], v[m], color=c, linestyle=ls, marker="." if sparse else None,
                        markersize=4 if sparse else None)
                if sparse:
                    from_checkpoints.add(text if len(spec) > 1 else title.split(":")[0].split(") ")[-1])
                drawn = True
                if len(spec) > 1:
                    used_styles[text] = ls
            style.mark_onset(ax, r.onset_epoch, c)
        if logy and drawn:
            style.log_axis(ax, "y")
        if not drawn:
            ax.text(0.5, 0.5, "not logged", transform=ax.transAxes, ha="center", va="center", color="0.4")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylab)
        style.panel_label(ax, title)
    handles = [Line2D([], [], color=style.color(i), linestyle="-", label=r.label) for i, r in enumerate(runs)]
    handles += [Line2D([], [], color="0.3", linestyle=ls, label=t) for t, ls in used_styles.items()]
    handles.append(Line2D([], [], color="0.3", linestyle=":", label="100% train acc."))
    style.legend_below(fig, handles, ncols=3)
    out_dir = Path(out_dir)
    png, pdf = style.save_figure(fig, out_dir, name)
    csv = write_csv(out_dir / f"{name}.csv", ["run", "run_id", "metric", "epoch", "value"], rows)
    caption = ("Neural-collapse metrics against epoch (Papyan, Han & Donoho 2020). (a) NC1, within-class "
               "variability relative to between-class spread; (b) NC2, variation of the centred class-mean "
               "(and classifier) norms and of their pairwise cosines; (c) NC3, distance between the "
               "normalized classifier and normalized class means; (d) NC4, share of training samples where "
               "the network's prediction differs from the nearest-class-mean rule (NC4 in %; values 0 are "
               "left off the log axes). All tend to 0 under neural collapse. Dotted lines: onset of 100% "
               "train accuracy.")
    if from_checkpoints:
        caption += (" Lines with dots (" + ", ".join(sorted(from_checkpoints)) + ") are not in the per-epoch "
                    "log and come from the checkpoints analysed in analysis.json (log-spaced epochs).")
    return FigureResult(name, png, pdf, csv, caption)


def _with_nc(runs: Sequence[RunData]) -> list[RunData] | Skip:
    """The runs with an NC metric in log.jsonl or in analysis.json."""
    return [r for r in runs if any(r.has(k) for k in ALL_KEYS) or (
        r.analysis is not None and any(np.isfinite(r.analysis.col("nc", k)).any() for k in ALL_KEYS))
    ] or Skip("no run logs NC metrics")


register(Figure(name=NAME, inputs="runs", order=30, draw=plot_nc_metrics, select=_with_nc,
                caption="NC1–NC4 against epoch (Papyan, Han & Donoho 2020 panels)"))
