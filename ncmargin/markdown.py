"""Markdown helpers shared by the report renderer and the claims' report sections (no computation).

Importable by every room (like the disk owner): number formatting and pipe tables only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["cell", "fmt", "table"]


def fmt(v: Any, digits: int = 4) -> str:
    """A number for a report cell: ``–`` for None/NaN/inf, scientific outside [1e-3, 1e5)."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.{max(digits - 1, 1)}e}"
        return f"{v:.{digits}g}"
    return str(v)


def cell(s: Any) -> str:
    """Text safe inside a pipe-table cell (pipes escaped, newlines flattened)."""
    return str(s).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: Iterable[list]) -> str:
    """A markdown pipe table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(cell(c) for c in r) + " |")
    return "\n".join(lines)
