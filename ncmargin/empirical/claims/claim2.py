"""Claim 2, the margin bound against the test error (docs/theory.md §5, §9).

Over the terminal-phase checkpoints of each run: Spearman rho of each bound variant at gamma = p_min (the
paper's Cor. 4.5 choice) with the test error (> 0 predicted), for the paper's fixed-class reading, the
scale-invariant last-layer bound (= normalized margins) and the spectral bound; whether the best-gamma
bound is vacuous; whether the normalized margin grows.

Test-set resolution (docs/theory.md §14, issue 14): the test error of a run moves in steps of 1/N_test, so
every correlation with it reports the series' resolution (``detail["resolution"]``) and the bootstrap over
test images of the change of the test error from the first to the last terminal checkpoint
(``detail["test_error_change"]``, per-image correctness recomputed from the stored checkpoint test features
and classifier, the same resample at both checkpoints). The correlations with the test error are judged only
when that change exceeds resampling noise; a test error that moves by at most 2 images, or whose change is
within the noise, makes them inconclusive (the rule's result kept as ``rule_verdict``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ncmargin.markdown import fmt, table
from ncmargin.store import ErrorChange, load_checkpoint, settings_from

from .claim1c import runs_of
from .registry import Claim, register
from .verdicts import (
    TrendSettings,
    correlation_verdict,
    dig,
    make_verdict,
    num,
    per_run_verdicts,
    rule,
    test_resolution,
    trend_item,
)

__all__ = ["BOUND_VARIANTS", "Settings", "section", "test_error_change", "verdicts_2"]


@dataclass(frozen=True)
class Settings(TrendSettings):
    """Preset section ``claim2``: the trend settings of claim 1c plus the bootstrap over test images."""
    n_boot: int = 9999     # resamples of the test images (docs/theory.md §14)


def test_error_change(analysis: dict, rows: list[dict], *, alpha: float, n_boot: int) -> dict:
    """``ncmargin.theory.bootstrap_error_change`` between the first and the last terminal checkpoint of a run,
    from the per-image correctness recomputed from the stored checkpoints (test features, labels, classifier,
    bias; ``ncmargin.theory.correct_predictions``), as an ncmargin.store.ErrorChange dict; ``{"error": ...}``
    when the checkpoints cannot be read or the recomputed accuracy disagrees with the analysed one."""
    from ncmargin.theory import bootstrap_error_change, correct_predictions

    run_dir = analysis.get("run_dir")
    if len(rows) < 2 or not run_dir:
        return {"error": "fewer than 2 terminal-phase checkpoints" if len(rows) < 2 else "no run_dir in analysis"}
    ends = [rows[0], rows[-1]]
    C = []
    try:
        for r in ends:
            fs = load_checkpoint(run_dir, int(r["epoch"]), split="test")
            if fs.classifier is None:
                return {"error": f"checkpoint of epoch {r['epoch']} has no classifier"}
            c = correct_predictions(fs.features, fs.labels, fs.classifier, fs.bias)
            acc = num(r.get("test_acc"))
            if math.isfinite(acc) and abs(float(c.mean()) - acc) > 0.5 / c.size:
                return {"error": f"epoch {r['epoch']}: accuracy recomputed from the checkpoint ({c.mean():.6f}) "
                                 f"differs from the analysed test_acc ({acc:.6f}); re-run `ncmargin analyze`"}
            C.append(c)
    except (OSError, ValueError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}
    ch = bootstrap_error_change(np.stack(C), 0, -1, n_boot=int(n_boot), seed=0, alpha=alpha)
    return dict(ErrorChange({**ch, "checkpoints": [int(r["epoch"]) for r in ends]},
                            _where="detail.test_error_change"))


def _noise_gate(res: dict | None, ch: dict) -> str | None:
    """Why a correlation with the test error cannot be judged (docs/theory.md §14), or None."""
    if res and res["few_images"]:
        return (f"the test error moves by {res['range_images']} image(s) over the terminal phase (<= 2; "
                f"resolution 1/N_test = 1/{res['n_test']}): a trend carried by one or two images")
    if "error" in ch:
        return f"the test error's change could not be set against resampling noise: {ch['error']}"
    if not ch["exceeds_noise"]:
        return f"the test error's change over the terminal phase does not exceed resampling noise ({ch['reason']})"
    return None


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
    res = test_resolution(rows)
    ch = test_error_change(analysis, rows, alpha=s.alpha, n_boot=s.n_boot)
    gate = _noise_gate(res, ch)
    noise = {"resolution": res, "test_error_change": ch}
    out = []
    for variant, desc in BOUND_VARIANTS.items():
        totals = [num(dig(r, "bound", variant, "at_pmin", "total")) for r in rows]
        if not any(math.isfinite(t) for t in totals):
            errs = sorted({str(dig(r, "bound", variant, "error") or f"no {variant} bound") for r in rows})
            out.append(make_verdict(
                "2", f"2.{variant}_trend.{label}", f"The margin bound ({desc}) tracks the test error.",
                "Spearman rho(bound, test error) over terminal checkpoints", None,
                f"rho > 0 and p < {s.alpha}", "inconclusive", [run],
                {"reason": "; ".join(errs)[:500] or "no terminal-phase checkpoint", "epochs": epochs, **noise}))
            continue
        v, st = correlation_verdict(totals, test_err, alpha=s.alpha, **rule(s))
        gap_v, gap_st = correlation_verdict(totals, gap, alpha=s.alpha, **rule(s))
        extra = {}
        if gate is not None and v != "inconclusive":
            extra = {"rule_verdict": v, "reason": gate}
            v = "inconclusive"
        elif gate is not None:
            extra = {"rule_verdict": v, "noise_reason": gate}
        out.append(make_verdict(
            "2", f"2.{variant}_trend.{label}",
            f"The margin bound ({desc}) tracks the test error over the terminal phase: higher bound, higher "
            "test error.",
            "Spearman rho(bound, test error) over terminal checkpoints", st.get("rho"),
            f"rho > 0 and p < {s.alpha} (n >= {s.min_points}), judged only when the test error's change over "
            "the terminal phase exceeds resampling noise (bootstrap over test images) and spans > 2 images", v, [run],
            {**st, "epochs": epochs, "bound": totals, "test_error": test_err, "gap": gap,
             "gap_correlation": {**gap_st, "verdict": gap_v}, **noise, **extra}))
    # vacuity: the smallest best-gamma bound in the terminal phase (last layer and spectral)
    mins, at_min = {}, {}
    for variant in ("last_layer", "spectral"):
        cands = [(num(dig(r, "bound", variant, "best", "total")), r) for r in rows]
        cands = [(x, r) for x, r in cands if math.isfinite(x)]
        mins[variant] = min(x for x, _ in cands) if cands else None
        if cands:
            b = dig(min(cands, key=lambda c: c[0])[1], "bound", variant, "best") or {}
            g, G = num(b.get("gamma")), num(b.get("Gamma"))
            # the minimum over the gamma grid at gamma = Gamma (every margin <= Gamma, empirical term 1):
            # the bound is then 1 + c K R_N / Gamma + confidence, for the last layer 1 + c K / (2 sqrt(N)) + ...,
            # a number that does not depend on the run (docs/theory.md §5)
            at_min[variant] = {"gamma": g, "Gamma": G, "empirical_margin_loss": num(b.get("empirical_margin_loss")),
                               "at_trivial_end": bool(math.isfinite(g) and math.isfinite(G) and g >= G)}
    best = [m for m in mins.values() if m is not None]
    value = min(best) if best else None
    verdict = "inconclusive" if value is None else ("pass" if value < 1.0 else "fail")
    detail = {"min_by_variant": mins, "at_min_by_variant": at_min,
              "min_test_error": min(test_err) if test_err else None}
    if verdict == "fail" and at_min and all(v["at_trivial_end"] for v in at_min.values()):
        detail["note"] = ("the bound exceeds 1 at every gamma of the grid; its minimum sits at gamma = Gamma, where "
                          "every margin counts as an error (empirical term 1) and the value does not depend on "
                          "the run's margins")
    out.append(make_verdict(
        "2", f"2.non_vacuous.{label}",
        "The margin bound is non-vacuous (< 1, i.e. says something about the 0-1 risk) at some terminal-phase "
        "checkpoint.",
        "min over terminal checkpoints and bound variants of the best-gamma bound", value, "< 1", verdict, [run],
        detail))
    # does the margin grow beyond the weights' scale? (the normalization critique)
    nm = [num(r.get("normalized_margin")) for r in rows]
    out.append(trend_item(
        "2", f"2.normalized_margin_trend.{label}",
        "The margin growth behind the bound survives normalization: p_min/(||W||_F max||h||) increases over "
        "the terminal phase (raw p_min also grows merely because the weights grow).",
        "Kendall tau(normalized margin, epoch) over terminal checkpoints", nm, epochs, direction=+1,
        settings=s, runs=[run],
        detail={"epochs": epochs, "normalized_margin": nm, "p_min": [num(r.get("p_min")) for r in rows],
                "resolution": res}))
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
            res, ch = d.get("resolution") or {}, d.get("test_error_change") or {}
            change = ("–" if "change_images" not in ch else
                      f"{ch['change_images']:+d} img, CI [{fmt(100 * ch['ci_low'], 3)}, {fmt(100 * ch['ci_high'], 3)}] pts"
                      f", {ch['discordant']} discordant → {ch['verdict']}")
            rows.append([v["id"], v["verdict"], fmt(v.get("value")), fmt(d.get("p_value")), d.get("n"),
                         res.get("n_distinct", len(set(te))),
                         f"1/{res['n_test']}" if res.get("n_test") else "–", res.get("range_images", "–"), change,
                         fmt(dig(d, "gap_correlation", "rho")), fmt(dig(d, "gap_correlation", "p_value"))])
    text = ("The bound of docs/theory.md §5 per checkpoint is in the tables of claim 1c above "
            "(columns “bound …”); here the rank correlation of the bound at γ = p_min with the test error and "
            "with the gap over the terminal-phase checkpoints.\n\n")
    if rows:
        text += table(["verdict id", "verdict", "Spearman ρ (test error)", "p", "n", "distinct test errors",
                       "resolution", "range (images)", "test-error change (bootstrap over test images)",
                       "ρ (gap)", "p (gap)"], rows)
    return text


CLAIM = register(Claim(
    id="2", title="Claim 2 — the margin bound against the test error (docs/theory.md §5)", order=40,
    settings_key="claim2", Settings=Settings, run=_run, runs_needed=runs_of, section=section,
    figures=("bound_<run>",), per_run=lambda analysis, settings: verdicts_2(analysis, settings)))
