"""Comparison engine of the numeric regression suite: tolerances, comparisons, the result table.

A case returns ``{quantity name: Quantity(value, Tol)}``. Values are Python scalars (bool, int, float, str)
or numpy arrays. Every :class:`Tol` carries its kind, its numbers and WHY (the dtype/algorithm argument);
there is no default tolerance (docs/theory.md §11 lists the classes used).

Kinds
- ``exact``: equality (integers, booleans, strings, supports, statuses; arrays: same shape and entries,
  NaN in the same places).
- ``rel``: elementwise ``|now - golden| <= atol + rtol*|golden|`` (numpy ``isclose`` semantics, golden as
  the reference); NaN/inf must sit in the same places with the same sign.
- ``norm``: ``||now - golden||_F <= atol + rtol*||golden||_F`` (arrays whose entries are not individually
  meaningful, e.g. float32 features after training, or solutions known only up to a certified distance).

``certified=True`` marks an ``atol`` that is a per-run certified error bound (from a solver's duality
gap): each of the two runs is within its own bound of the exact optimum, so the allowed difference is the
SUM of the bound stored with the golden and the bound of the current run (triangle inequality).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Comparison", "Quantity", "Tol", "compare", "compare_all", "format_table", "format_value"]

_KINDS = ("exact", "rel", "norm")


@dataclass(frozen=True)
class Tol:
    """A tolerance: ``kind`` (exact | rel | norm), ``rtol``, ``atol``, ``certified`` and ``why``."""

    kind: str
    rtol: float = 0.0
    atol: float = 0.0
    why: str = ""
    certified: bool = False

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise ValueError(f"tolerance kind {self.kind!r} is not one of {_KINDS}")
        if not self.why:
            raise ValueError("every tolerance needs a justification (why=...); there is no blanket tolerance")
        if self.kind == "exact" and (self.rtol or self.atol):
            raise ValueError("an exact tolerance has no rtol/atol")
        if not (self.rtol >= 0 and self.atol >= 0 and math.isfinite(self.rtol) and math.isfinite(self.atol)):
            raise ValueError(f"tolerance rtol={self.rtol}, atol={self.atol} must be finite and >= 0")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rtol": self.rtol, "atol": self.atol, "certified": self.certified,
                "why": self.why}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tol:
        return cls(kind=d["kind"], rtol=float(d.get("rtol", 0.0)), atol=float(d.get("atol", 0.0)),
                   why=d.get("why") or "(stored)", certified=bool(d.get("certified", False)))

    def describe(self, atol: float | None = None) -> str:
        if self.kind == "exact":
            return "exact"
        a = self.atol if atol is None else atol
        parts = []
        if self.rtol:
            parts.append(f"rel {self.rtol:.0e}")
        if a or not self.rtol:
            parts.append(f"abs {a:.2g}" + (" (cert)" if self.certified else ""))
        return ("‖·‖F " if self.kind == "norm" else "") + " + ".join(parts)


@dataclass
class Quantity:
    value: Any
    tol: Tol


@dataclass
class Comparison:
    """One row of the table. ``ok`` None means there was nothing to compare (e.g. no golden)."""

    case: str
    quantity: str
    golden: str
    now: str
    diff: str
    tolerance: str
    ok: bool
    detail: str = ""
    why: str = ""
    label: str = ""  # overrides the verdict column (used by --update: new / removed / changed)

    @property
    def verdict(self) -> str:
        if self.label:
            return self.label
        return "ok" if self.ok else "FAIL"

    def message(self) -> str:
        """A readable one-paragraph failure message: case, quantity, both values, difference, tolerance."""
        s = (f"{self.case} / {self.quantity}: golden {self.golden}, now {self.now}, difference {self.diff}, "
             f"tolerance {self.tolerance}")
        if self.detail:
            s += f" [{self.detail}]"
        if self.why:
            s += f" (tolerance because: {self.why})"
        return s


# --------------------------------------------------------------------------------------------- values

def normalize(value: Any) -> Any:
    """Python scalar or numpy array (numpy scalars -> Python; lists/tuples -> arrays)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return value
    if value is None:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        a = np.asarray(value)
        if a.dtype == object:
            raise ValueError(f"regression value {value!r} is not a numeric array")
        return a
    raise ValueError(f"regression value of type {type(value).__name__} is not supported "
                     "(use bool, int, float, str, None or a numpy array)")


def format_value(v: Any, digits: int = 12) -> str:
    if v is None:
        return "None"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    if isinstance(v, str):
        return repr(v)
    a = np.asarray(v)
    if a.size <= 6 and a.ndim <= 1:
        return "[" + ", ".join(format_value(x.item(), digits) for x in a.ravel()) + "]"
    return f"<{a.dtype} array {tuple(a.shape)}>"


def _idx(i: tuple) -> str:
    return "[" + ",".join(str(int(j)) for j in i) + "]"


# --------------------------------------------------------------------------------------------- compare

def compare(case: str, name: str, golden: Any, now: Any, tol: Tol, golden_tol: Tol | None = None) -> Comparison:
    """Compare one quantity; never raises on a mismatch (the verdict is in the result)."""
    now = normalize(now)
    atol = tol.atol
    if tol.certified and golden_tol is not None:
        atol = tol.atol + golden_tol.atol
    tol_s = tol.describe(atol)

    def row(g, n, diff, ok, detail=""):
        return Comparison(case, name, g, n, diff, tol_s, bool(ok), detail, tol.why)

    g_is_arr, n_is_arr = isinstance(golden, np.ndarray), isinstance(now, np.ndarray)
    if g_is_arr != n_is_arr:
        return row(format_value(golden), format_value(now), "type", False,
                   "one is an array and the other a scalar")
    if not g_is_arr:
        return _compare_scalar(golden, now, tol, atol, row)
    return _compare_array(golden, now, tol, atol, row)


def _compare_scalar(g, n, tol, atol, row):
    gs, ns = format_value(g, 17), format_value(n, 17)
    numeric = (int, float)
    if tol.kind == "exact" or not (isinstance(g, numeric) and isinstance(n, numeric)) \
            or isinstance(g, bool) or isinstance(n, bool):
        same = type(g) is type(n) and (g == n or (isinstance(g, float) and math.isnan(g) and math.isnan(n)))
        if tol.kind != "exact" and not same and type(g) is not type(n):
            return row(gs, ns, "type", False, f"type {type(g).__name__} -> {type(n).__name__}")
        if same:
            return row(gs, ns, "0", True)
        diff = f"{n - g:+.3g}" if isinstance(g, numeric) and isinstance(n, numeric) \
            and not isinstance(g, bool) else "differs"
        return row(gs, ns, diff, False)
    g, n = float(g), float(n)
    if math.isnan(g) or math.isnan(n) or math.isinf(g) or math.isinf(n):
        ok = (g == n) or (math.isnan(g) and math.isnan(n))
        return row(gs, ns, "0" if ok else "non-finite", ok)
    d = abs(n - g)
    allowed = atol + tol.rtol * abs(g)
    return row(gs, ns, f"{d:.3g}", d <= allowed, "" if d <= allowed else f"allowed {allowed:.3g}")


def _compare_array(g: np.ndarray, n: np.ndarray, tol, atol, row):
    if g.shape != n.shape:
        return row(f"shape {g.shape}", f"shape {n.shape}", "shape", False, "array shapes differ")
    if g.size == 0:
        return row("[]", "[]", "0", True)
    kinds = {g.dtype.kind, n.dtype.kind}
    if tol.kind == "exact" or not kinds <= {"f", "i", "u"}:
        if g.dtype.kind in "fc" or n.dtype.kind in "fc":
            eq = (g == n) | (np.isnan(g.astype(float)) & np.isnan(n.astype(float)))
        else:
            eq = g == n
        if kinds - {"i", "u"} and g.dtype.kind != n.dtype.kind:
            return row(str(g.dtype), str(n.dtype), "dtype", False, "array dtypes differ")
        if np.all(eq):
            return row(format_value(g, 17), format_value(n, 17), "0", True)
        bad = np.argwhere(~eq)
        i = tuple(bad[0])
        return row(f"{_idx(i)}={format_value(g[i].item(), 17)}", f"{_idx(i)}={format_value(n[i].item(), 17)}",
                   f"{len(bad)} of {g.size} differ", False,
                   f"first differing entries at {', '.join(_idx(tuple(b)) for b in bad[:5])}")
    gf, nf = g.astype(np.float64), n.astype(np.float64)
    fin_g, fin_n = np.isfinite(gf), np.isfinite(nf)
    nonfin_same = np.array_equal(fin_g, fin_n) and np.array_equal(
        np.where(fin_g, 0.0, np.nan_to_num(gf, nan=7.0, posinf=8.0, neginf=9.0)),
        np.where(fin_n, 0.0, np.nan_to_num(nf, nan=7.0, posinf=8.0, neginf=9.0)))
    if not nonfin_same:
        bad = np.argwhere((fin_g != fin_n) | (~fin_g & ~fin_n & (np.nan_to_num(gf, nan=7.0) != np.nan_to_num(nf, nan=7.0))))
        i = tuple(bad[0])
        return row(f"{_idx(i)}={gf[i]!r}", f"{_idx(i)}={nf[i]!r}", "non-finite", False,
                   "NaN/inf entries are not in the same places")
    gz, nz = np.where(fin_g, gf, 0.0), np.where(fin_n, nf, 0.0)
    if tol.kind == "norm":
        d = float(np.linalg.norm(nz - gz))
        ref = float(np.linalg.norm(gz))
        allowed = atol + tol.rtol * ref
        ok = d <= allowed
        return row(f"‖·‖F={ref:.12g}", f"‖·‖F={float(np.linalg.norm(nz)):.12g}",
                   f"‖Δ‖F={d:.3g}" + (f" (rel {d / ref:.3g})" if ref > 0 else ""), ok,
                   "" if ok else f"allowed ‖Δ‖F {allowed:.3g}; largest entry change {np.abs(nz - gz).max():.3g}")
    diff = np.abs(nz - gz)
    allowed = atol + tol.rtol * np.abs(gz)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(allowed > 0, diff / allowed, np.where(diff > 0, np.inf, 0.0))
    i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    ok = bool(np.all(diff <= allowed))
    nbad = int(np.count_nonzero(diff > allowed))
    return row(f"{_idx(i)}={format_value(gz[i].item(), 17)}", f"{_idx(i)}={format_value(nz[i].item(), 17)}",
               f"max {diff.max():.3g}", ok,
               "" if ok else f"{nbad} of {g.size} entries outside tolerance; worst shown (allowed {allowed[i]:.3g})")


def compare_all(case: str, golden: dict[str, tuple[Any, Tol]], now: dict[str, Quantity]) -> list[Comparison]:
    """Compare every quantity of a case: the union of the golden's and the current names, so that a
    quantity that disappeared (a failure) or appeared (shown as "new", not a failure) is reported too.
    Keeps going past failures."""
    out: list[Comparison] = []
    for name in list(now) + [k for k in golden if k not in now]:
        if name not in golden:
            # a NEW quantity is a coverage gap, not a drift of a reported number: shown (verdict "new"),
            # not failed, so adding an output elsewhere does not break CI until the golden is updated
            q = now[name]
            out.append(Comparison(case, name, "(absent)", format_value(normalize(q.value)), "new", q.tol.describe(),
                                  True, f"quantity not in the golden; record it with "
                                        f"`ncmargin regress --update --only {case}`", q.tol.why, label="new"))
            continue
        gv, gtol = golden[name]
        if name not in now:
            out.append(Comparison(case, name, format_value(gv), "(absent)", "missing", gtol.describe(), False,
                                  "quantity no longer computed", gtol.why))
            continue
        out.append(compare(case, name, gv, now[name].value, now[name].tol, gtol))
    return out


# --------------------------------------------------------------------------------------------- table

_HEAD = ("case", "quantity", "golden", "now", "difference", "tolerance", "verdict")


def _clip(s: str, w: int) -> str:
    return s if len(s) <= w else s[: w - 1] + "…"


def format_table(rows: list[Comparison], widths=(16, 34, 30, 30, 24, 26, 7)) -> str:
    """Fixed-width text table of comparisons (long values are clipped; failure messages carry them whole)."""
    lines = ["  ".join(h.ljust(w) for h, w in zip(_HEAD, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        cells = (r.case, r.quantity, r.golden, r.now, r.diff, r.tolerance, r.verdict)
        lines.append("  ".join(_clip(c, w).ljust(w) for c, w in zip(cells, widths)).rstrip())
    return "\n".join(lines)
