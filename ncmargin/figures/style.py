"""One plotting style for every ncmargin figure.

- Headless, non-interactive rendering: figures are ``matplotlib.figure.Figure`` objects made without
  pyplot, so PNGs are drawn by the Agg renderer (PDFs by the PDF backend) whatever backend the calling
  process uses, nothing opens a window, and the global backend of a notebook that imports this is left
  alone; figures are freed by garbage collection (no pyplot figure registry to leak into).
- The Okabe & Ito (2008) colour-blind-safe palette, in a fixed order, with line styles that cycle
  independently so that more than eight runs stay distinguishable in greyscale too.
- Sizes for a two-column paper: ``COLUMN_WIDTH`` (3.3 in) for one panel, ``PAGE_WIDTH`` (6.9 in) for a
  row of panels; 8 pt text, so a figure printed at its nominal size is readable without zooming.
- :func:`save_figure` writes PNG (200 dpi) and PDF atomically (ncmargin.io.atomic_path) and closes the figure.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from ncmargin.io import atomic_path

__all__ = [
    "COLUMN_WIDTH",
    "LINESTYLES",
    "MARKERS",
    "OKABE_ITO",
    "PAGE_WIDTH",
    "POINT_EDGE",
    "RC",
    "Figure",
    "color",
    "legend_below",
    "linestyle",
    "log_axis",
    "log_epoch_axis",
    "mark_onset",
    "mark_vacuous",
    "marker",
    "new_figure",
    "panel_label",
    "save_figure",
    "styled",
]

# fontTools warns about font-header timestamps when it subsets a TrueType font into the PDF; harmless.
logging.getLogger("fontTools").setLevel(logging.ERROR)

# Okabe, M. & Ito, K. (2008) "Color Universal Design"; black moved last, yellow after the strong hues.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#F0E442", "#000000"]
LINESTYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]

COLUMN_WIDTH = 3.3  # inches, one column of a two-column paper
PAGE_WIDTH = 6.9    # inches, full text width

RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.framealpha": 0.85,
    "legend.borderaxespad": 0.3,
    "legend.handlelength": 1.8,
    "lines.linewidth": 1.3,
    "lines.markersize": 4,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
    "pdf.fonttype": 42,  # embed TrueType: text stays text in the PDF
    "ps.fonttype": 42,
}


def color(i: int) -> str:
    """The i-th colour of the Okabe–Ito palette (cycles after 8)."""
    return OKABE_ITO[i % len(OKABE_ITO)]


def linestyle(i: int) -> str:
    """Line style for the i-th series: changes once every 8 series so colour + style stay unique."""
    return LINESTYLES[(i // len(OKABE_ITO)) % len(LINESTYLES)]


def marker(i: int) -> str:
    return MARKERS[i % len(MARKERS)]


# Scatter points get a thin dark edge: the palette's yellow is otherwise faint on white.
POINT_EDGE = {"markeredgecolor": "0.25", "markeredgewidth": 0.4}


def styled(func):
    """Decorator: run a plotting function inside the house rc context (fonts, palette, grid)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(RC):
            return func(*args, **kwargs)

    return wrapper


def legend_below(fig, handles, ncols: int | None = None) -> None:
    """One legend under the panels, where it cannot hide data."""
    if not handles:
        return
    n = len(handles)
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols or min(n, 4 if n != 5 else 3),
               frameon=False)


def new_figure(ncols: int = 1, nrows: int = 1, width: float | None = None, height: float | None = None,
               **kwargs):
    """A figure in the house style: one panel is COLUMN_WIDTH wide, two or more span PAGE_WIDTH."""
    if width is None:
        width = COLUMN_WIDTH if ncols == 1 else PAGE_WIDTH
    if height is None:
        height = 2.4 * nrows if ncols > 1 else 2.5 * nrows
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def save_figure(fig, out_dir: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """Write ``out_dir/name.png`` and ``out_dir/name.pdf`` atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf = out_dir / f"{name}.png", out_dir / f"{name}.pdf"
    with matplotlib.rc_context(RC):
        with atomic_path(png) as tmp:
            fig.savefig(tmp, format="png")
        with atomic_path(pdf) as tmp:
            fig.savefig(tmp, format="pdf")
    return png, pdf


def mark_onset(ax, epoch, col, label: str | None = None) -> None:
    """Dotted vertical line at the onset of the terminal phase (first epoch with 100% train accuracy)."""
    if epoch is None:
        return
    ax.axvline(epoch, color=col, linestyle=":", linewidth=1.0, alpha=0.9, label=label, zorder=1)


def mark_vacuous(ax, annotate: bool = True) -> None:
    """Horizontal line at 1: an error bound above it says nothing (vacuous)."""
    ax.axhline(1.0, color="0.35", linestyle="--", linewidth=0.9, zorder=1)
    if not annotate:
        return
    ax.annotate("vacuous above 1", xy=(0.0, 1.0), xycoords=("axes fraction", "data"), xytext=(3, -2),
                textcoords="offset points", ha="left", va="top", fontsize=6.5, color="0.3",
                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})


def _plain(v: float) -> str:
    """1, 0.5, 200 as plain numbers; 10^k in mathtext outside [1e-3, 1e4)."""
    import math

    if v <= 0:
        return ""
    if 1e-3 <= v < 1e4:
        return f"{v:g}"
    k = math.log10(v)
    if abs(k - round(k)) < 1e-9:
        return f"$10^{{{round(k)}}}$"
    return f"{v:.0e}"


def log_axis(ax, axis: str = "y") -> None:
    """Log scale with readable tick labels: plain numbers (0.2, 1, 30) within [1e-3, 1e4) and 10^k
    outside (10^k throughout when the axis spans 4 decades or more), instead of 2×10^-1; on a narrow
    axis the minor ticks are labelled too (2, 3, 5 below 1.3 decades; 2, 5 below 2.2 decades), since
    it would otherwise show one label or none."""
    from matplotlib import ticker

    getattr(ax, f"set_{axis}scale")("log")
    a = getattr(ax, f"{axis}axis")
    sci = ticker.LogFormatterSciNotation()
    sci.set_axis(a)

    def major(v, pos):
        return sci(v, pos) if _decades(ax, axis) >= 4 else _plain(v)

    a.set_major_formatter(ticker.FuncFormatter(major))
    def minor(v, pos):
        dec = _decades(ax, axis)
        lead = f"{v:.0e}"[0]
        if dec < 1.3 and lead in "235":
            return _plain(v)
        if dec < 2.2 and lead in "25":
            return _plain(v)
        return ""

    a.set_minor_formatter(ticker.FuncFormatter(minor))


log_epoch_axis = log_axis  # epochs and steps: the same readable log axis


def _decades(ax, axis: str) -> float:
    import math

    lo, hi = getattr(ax, f"get_{axis}lim")()
    return math.log10(hi / lo) if lo > 0 and hi > 0 else math.inf


def panel_label(ax, text: str) -> None:
    """Panel letter '(a)' etc. at the top left, outside the data area."""
    ax.set_title(text, loc="left", fontsize=8, fontweight="bold")
