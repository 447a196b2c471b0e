"""Verdict entries and the three-valued rule shared by every claim (docs/theory.md §9).

Three-valued rule for a predicted monotone relation: **pass** if the statistic has the predicted sign and
p < alpha; **fail** if it has the wrong sign (or is zero); **inconclusive** if the sign is right but p >=
alpha, or there are fewer than ``min_points`` points, or a series is constant or takes fewer than
``min_distinct`` (3) distinct values (its ranks are then two groups, not a trend).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["VERDICTS", "TrendSettings", "correlation_verdict", "dig", "make_verdict", "num", "per_run_verdicts", "rule",
           "run_error_verdict", "solver_problem", "test_resolution", "trend_item", "trend_verdict",
           "with_skipped_checkpoints"]

VERDICTS = ("pass", "fail", "inconclusive")


@dataclass(frozen=True)
class TrendSettings:
    """Preset sections ``claim1c`` and ``claim2`` (per-run trends over the terminal phase, docs/theory.md §9)."""
    runs: list[str] | None = None   # preset runs to judge (default: every run of the preset)
    alpha: float = 0.05
    min_points: int = 5
    min_distinct: int = 3


def test_resolution(rows: list[dict]) -> dict | None:
    """``ncmargin.theory.series_resolution`` of the test accuracy at the analysis ``rows`` (fractions;
    N_test = the rows' ``num_test``), as an ncmargin.store.SeriesResolution dict: the number of distinct
    values and the resolution 1/N_test behind a trend over these checkpoints (docs/theory.md §14); None
    when the rows carry no test accuracy."""
    from ncmargin.store import SeriesResolution
    from ncmargin.theory import series_resolution

    acc = [num(r.get("test_acc")) for r in rows]
    n_test = next((r.get("num_test") for r in reversed(rows) if r.get("num_test")), None)
    if not rows or not n_test or not all(math.isfinite(a) for a in acc):
        return None
    return dict(SeriesResolution(series_resolution(acc, int(n_test)), _where="detail.resolution"))


def make_verdict(claim: str, vid: str, statement: str, statistic: str, value, threshold, verdict: str,
                 runs: list[str] | None = None, detail: dict | None = None) -> dict:
    """One entry of ``verdicts.json`` (docs/results.md)."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    v = None if value is None else float(value)
    if v is not None and not math.isfinite(v):
        v = None
    return {"claim": str(claim), "id": str(vid), "statement": statement, "statistic": statistic, "value": v,
            "threshold": threshold, "verdict": verdict, "runs": list(runs or []), "detail": detail or {}}


def rule(s) -> dict:
    """The sample limits of a claim's settings (``alpha`` is passed separately)."""
    return {"min_points": int(s.min_points), "min_distinct": int(getattr(s, "min_distinct", 3))}


def trend_item(claim: str, vid: str, statement: str, statistic: str, values, times, *, direction: int,
               settings, runs: list[str] | None, detail: dict | None = None) -> dict:
    """A Kendall-trend verdict entry: :func:`trend_verdict` on ``values`` against ``times`` under the
    claim's typed ``settings`` (alpha and sample limits), with the threshold text derived from them;
    ``detail`` is merged with the test's statistics."""
    v, st = trend_verdict(values, times, direction=direction, alpha=settings.alpha, **rule(settings))
    sign = ">" if direction > 0 else "<"
    return make_verdict(claim, vid, statement, statistic, st.get("tau"),
                        f"tau {sign} 0 and p < {settings.alpha} (n >= {settings.min_points})", v, runs,
                        {**(detail or {}), **st})


def _too_few(a, b, min_points: int, min_distinct: int, key: str) -> dict | None:
    if a.size < max(min_points, 3):
        return {key: None, "p_value": None, "n": int(a.size), "reason": f"{a.size} points < min_points={min_points}"}
    nd = min(np.unique(a).size, np.unique(b).size)
    if 1 < nd < min_distinct:
        return {key: None, "p_value": None, "n": int(a.size), "n_distinct": int(nd),
                "reason": f"a series takes only {nd} distinct values (< min_distinct={min_distinct}): its ranks "
                          "are two groups, not a trend"}
    return None


def _rank_verdict(a, b, statistic: Callable[[np.ndarray, np.ndarray], dict], key: str, what: str, *,
                  direction: int, alpha: float, min_points: int, min_distinct: int) -> tuple[str, dict]:
    """The three-valued rule applied to the rank statistic ``statistic(a, b)[key]`` over the pairs where
    both series are finite; ``what`` names it in the constant-series reason."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    few = _too_few(a, b, min_points, min_distinct, key)
    if few is not None:
        return "inconclusive", few
    # the number of distinct values of the coarser series (issue 14: reported beside every trend)
    st = {**statistic(a, b), "n_distinct": int(min(np.unique(a).size, np.unique(b).size))}
    r, p = st[key], st["p_value"]
    if not math.isfinite(r):
        return "inconclusive", {**st, "reason": f"a series is constant: no rank {what}"}
    if r * direction <= 0:
        return "fail", st
    return ("pass" if p < alpha else "inconclusive"), st


def trend_verdict(values, times, *, direction: int, alpha: float, min_points: int = 5,
                  min_distinct: int = 3) -> tuple[str, dict]:
    """Kendall tau-b of ``values`` against ``times`` (ncmargin.theory.stats.kendall_trend) judged by the
    three-valued rule; ``direction`` +1 (increase predicted) or -1."""
    from ncmargin.theory.stats import kendall_trend

    return _rank_verdict(values, times, kendall_trend, "tau", "trend", direction=direction, alpha=alpha,
                         min_points=min_points, min_distinct=min_distinct)


def correlation_verdict(x, y, *, alpha: float, min_points: int = 5, direction: int = 1,
                        min_distinct: int = 3) -> tuple[str, dict]:
    """Spearman rho of ``x`` with ``y`` (ncmargin.theory.stats.spearman), same three-valued rule."""
    from ncmargin.theory.stats import spearman

    return _rank_verdict(x, y, spearman, "rho", "correlation", direction=direction, alpha=alpha,
                         min_points=min_points, min_distinct=min_distinct)


def dig(d, *path):
    """``d[path[0]][path[1]]...``, or None where a key is missing, a value is None or not a dict."""
    for k in path:
        if not isinstance(d, dict) or k not in d or d[k] is None:
            return None
        d = d[k]
    return d


def num(v) -> float:
    """``float(v)``, NaN where ``v`` is not a number."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def solver_problem(status, where: str) -> str | None:
    """None when an SVM solver ``status`` (a ``Status`` enum or its stored string) is ``"optimal"``, else the
    reason a verdict built on that solution is inconclusive (docs/theory.md §3: only certified optima
    are compared with)."""
    s = str(getattr(status, "value", status))
    if s.split(".")[-1].lower() == "optimal":  # "optimal", Status.OPTIMAL or its str() "Status.OPTIMAL"
        return None
    return f"SVM at {where} not solved to optimality (status {s!r}): its solution is not used"


# ------------------------------------------------------------------ per-run isolation (issue 12)

def run_error_verdict(claim: str, run: str, error: str) -> dict:
    """The verdict standing in for run ``run``'s verdicts of ``claim`` when its files could not be read or
    analysed: ``<claim>.<run>.error``, inconclusive, with the error (naming the file and the fix)."""
    return make_verdict(claim, f"{claim}.{run}.error", f"claim {claim} could not be evaluated on run {run}",
                        "error", None, "-", "inconclusive", [run], {"run": run, "error": error})


def with_skipped_checkpoints(analysis: dict, verdicts: list[dict]) -> list[dict]:
    """Each verdict of a run whose analysis skipped unreadable checkpoints says so in its detail
    (``skipped_checkpoints``: epoch -> error naming the file): judged on the others, never silently."""
    skipped = analysis.get("skipped_checkpoints") or {}
    if skipped:
        for v in verdicts:
            v.setdefault("detail", {})["skipped_checkpoints"] = dict(skipped)
    return verdicts


def per_run_verdicts(claim: str, names: list[str], ctx, judge: Callable[[dict, str], list[dict]]) -> list[dict]:
    """``judge(analysis, name)`` for each run in ``names``; a run whose analysis raises an input error (a
    truncated checkpoint, a run marked failed, ...) gives one :func:`run_error_verdict` and the other runs'
    verdicts stand (a bad file costs only itself). Bugs propagate."""
    from ncmargin.errors import isolated

    out: list[dict] = []
    for name in names:
        analysis, err = isolated(ctx.analysis, name, what=f"run {name}")
        if err is not None:
            ctx.log(f"[verify] claim {claim}, run {name}: {err['error']}")
            out.append(run_error_verdict(claim, name, err["error"]))
            continue
        out += with_skipped_checkpoints(analysis, judge(analysis, name))
    return out
