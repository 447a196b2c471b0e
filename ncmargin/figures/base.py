"""FigureResult and the CSV writer shared by every figure module."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ncmargin.io import atomic_write_text

__all__ = ["FigureResult", "fmt_num", "read_csv", "to_percent", "write_csv"]


@dataclass(frozen=True)
class FigureResult:
    """One written figure: ``name`` (file stem), PNG, PDF, the CSV of exactly the numbers plotted,
    and a caption (Markdown-safe plain text) for the report."""

    name: str
    png: Path
    pdf: Path
    csv: Path
    caption: str


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return "nan" if math.isnan(f) else repr(f)  # repr round-trips float64 exactly
    return str(v)


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    """Write a CSV atomically; floats are written with ``repr`` so that reading them back gives the
    plotted float64 values bit for bit; NaN is written ``nan``, None as an empty cell."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(header))
    for r in rows:
        if len(r) != len(header):
            raise ValueError(f"{path}: row of {len(r)} cells for {len(header)} columns (bug in a figure)")
        w.writerow([_cell(v) for v in r])
    atomic_write_text(path, buf.getvalue())
    return Path(path)


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Read a figure CSV back as a list of row dicts (strings)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def to_percent(a) -> np.ndarray:
    """Accuracies/errors as percent: values all within [0, 1] are taken as fractions and scaled by 100."""
    a = np.asarray(a, dtype=np.float64)
    fin = a[np.isfinite(a)]
    if fin.size and np.nanmax(np.abs(fin)) <= 1.0:
        return a * 100.0
    return a


def fmt_num(x: float, digits: int = 3) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"
