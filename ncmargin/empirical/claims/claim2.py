"""Claim 2, the margin bound against the test error (docs/theory.md §5, §9).

Over the terminal-phase checkpoints of each run: Spearman rho of each bound variant at gamma = p_min (the
paper's Cor. 4.5 choice) with the test error (> 0 predicted), for the paper's fixed-class reading, the
scale-invariant last-layer bound (= normalized margins) and the spectral bound; whether the best-gamma
bound is vacuous; whether the normalized margin grows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ncmargin.markdown import fmt, table
from ncmargin.store import settings_from

from .claim1c import runs_of
from .registry import Claim, register
from .verdicts import correlation_verdict, dig, make_verdict, num, per_run_verdicts, rule, trend_item

__all__ = ["BOUND_VARIANTS", "Settings", "section", "verdicts_2"]


@dataclass(frozen=True)
class Settings:
    """Preset section ``claim2``."""
    runs: list[str] | None = None   # preset runs to judge (default: every run of the preset)
    alpha: float = 0.05
    min_points: int = 5
    min_distinct: int = 3


BOUND_VARIANTS = {
    "frozen": "the paper's reading (Cor. 4.5): class complexity frozen at the onset checkpoint, gamma = p_min(t)",
    "last_layer": "last-layer bound with the current norms r, Lambda at gamma = p_min(t) (scale-invariant: the "
                  "bound of the normalized margins)",
    "spectral": "whole-network spectral-complexity bound (Bartlett et al. 2017) at gamma = p_min(t)",
}


def verdicts_2(analysis: dict, settings=None, *, label: str | None = None) -> list[dict]:
    """Claim 2 on one analysed run (``analysis.json`` content)."""
    from ncmargin.empirical.analysis import terminal_rows

    s = settings_from(Settings, settings, "claim2 settings")
    run = analysis.get("run_id", "run")
    label = label or run
    rows = terminal_rows(analysis)
    epochs = [r["epoch"] for r in rows]
    test_err = [num(r.get("test_error")) for r in rows]
    gap = [num(r.get("gap")) for r in rows]
    out = []
    for variant, desc in BOUND_VARIANTS.items():
        totals = [num(dig(r, "bound", variant, "at_pmin", "total")) for r in rows]
        if not any(math.isfinite(t) for t in totals):
            errs = sorted({str(dig(r, "bound", variant, "error") or f"no {variant} bound") for r in rows})
            out.append(make_verdict(
                "2", f"2.{variant}_trend.{label}", f"The margin bound ({desc}) tracks the test error.",
                "Spearman rho(bound, test error) over terminal checkpoints", None,
                f"rho > 0 and p < {s.alpha}", "inconclusive", [run],
                {"reason": "; ".join(errs)[:500] or "no terminal-phase checkpoint", "epochs": epochs}))
            continue
        v, st = correlation_verdict(totals, test_err, alpha=s.alpha, **rule(s))
        gap_v, gap_st = correlation_verdict(totals, gap, alpha=s.alpha, **rule(s))
        out.append(make_verdict(
            "2", f"2.{variant}_trend.{label}",
            f"The margin bound ({desc}) tracks the test error over the terminal phase: higher bound, higher "
            "test error.",
            "Spearman rho(bound, test error) over terminal checkpoints", st.get("rho"),
            f"rho > 0 and p < {s.alpha} (n >= {s.min_points})", v, [run],
            {**st, "epochs": epochs, "bound": totals, "test_error": test_err, "gap": gap,
             "gap_correlation": {**gap_st, "verdict": gap_v}}))
    # vacuity: the smallest best-gamma bound in the terminal phase (last layer and spectral)
    mins = {}
    for variant in ("last_layer", "spectral"):
        vals = [num(dig(r, "bound", variant, "best", "total")) for r in rows]
        vals = [x for x in vals if math.isfinite(x)]
        mins[variant] = min(vals) if vals else None
    best = [m for m in mins.values() if m is not None]
    value = min(best) if best else None
    verdict = "inconclusive" if value is None else ("pass" if value < 1.0 else "fail")
    out.append(make_verdict(
        "2", f"2.non_vacuous.{label}",
        "The margin bound is non-vacuous (< 1, i.e. says something about the 0-1 risk) at some terminal-phase "
        "checkpoint.",
        "min over terminal checkpoints and bound variants of the best-gamma bound", value, "< 1", verdict, [run],
        {"min_by_variant": mins, "min_test_error": min(test_err) if test_err else None}))
    # does the margin grow beyond the weights' scale? (the normalization critique)
    nm = [num(r.get("normalized_margin")) for r in rows]
    out.append(trend_item(
        "2", f"2.normalized_margin_trend.{label}",
        "The margin growth behind the bound survives normalization: p_min/(||W||_F max||h||) increases over "
        "the terminal phase (raw p_min also grows merely because the weights grow).",
        "Kendall tau(normalized margin, epoch) over terminal checkpoints", nm, epochs, direction=+1,
        settings=s, runs=[run],
        detail={"epochs": epochs, "normalized_margin": nm, "p_min": [num(r.get("p_min")) for r in rows]}))
    return out


def _run(out_dir: Path, s: Settings, ctx) -> list[dict]:
    names = runs_of(s, ctx.preset)
    ctx.ensure_runs(names)
    return per_run_verdicts("2", names, ctx, lambda analysis, name: verdicts_2(analysis, s, label=name))


def section(out_dir: Path, verdicts: list[dict], doc: dict) -> str:
    """Key numbers of claim 2 (from the verdicts' details)."""
    rows = []
    for v in verdicts:
        d = v.get("detail", {})
        if "bound" in d:
            te = [x for x in d.get("test_error") or [] if isinstance(x, (int, float))]
            rows.append([v["id"], fmt(v.get("value")), fmt(d.get("p_value")), d.get("n"), len(set(te)),
                         fmt(dig(d, "gap_correlation", "rho")), fmt(dig(d, "gap_correlation", "p_value"))])
    text = ("The bound of docs/theory.md §5 per checkpoint is in the tables of claim 1c above "
            "(columns “bound …”); here the rank correlation of the bound at γ = p_min with the test error and "
            "with the gap over the terminal-phase checkpoints.\n\n")
    if rows:
        text += table(["verdict id", "Spearman ρ (test error)", "p", "n", "distinct test errors", "ρ (gap)",
                       "p (gap)"], rows)
    return text


CLAIM = register(Claim(
    id="2", title="Claim 2 — the margin bound against the test error (docs/theory.md §5)", order=40,
    settings_key="claim2", Settings=Settings, run=_run, runs_needed=runs_of, section=section,
    figures=("bound_<run>",), per_run=lambda analysis, settings: verdicts_2(analysis, settings)))
