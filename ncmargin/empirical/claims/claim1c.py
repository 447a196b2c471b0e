"""Claim 1c, CE → SVM on deep-network features (docs/theory.md §4, §9).

Over the terminal-phase checkpoints of each run: Kendall tau of the margin ratio
(p_min/||W_t||)/(1/||W*(H_t)||) against the epoch (> 0 predicted) and of the angle between W_t and the
SVM solution W*(H_t) (< 0 predicted). An SVM at a terminal checkpoint that failed or is not certified
optimal makes both verdicts of that run inconclusive, with the epochs and reasons in the detail.
"""

from __future__ import annotations

from pathlib import Path

from ncmargin.markdown import fmt, table
from ncmargin.store import RUNS_DIR, Analysis, settings_from

from .registry import Claim, read_stored, register
from .verdicts import TrendSettings, dig, num, per_run_verdicts, solver_problem, test_resolution, trend_item

__all__ = ["RUN_HEADER", "Settings", "run_rows", "run_section", "runs_of", "runs_section", "svm_problems",
           "verdicts_1c"]


Settings = TrendSettings  # preset section ``claim1c`` (shared with claim 2)


def runs_of(settings, preset: dict) -> list[str]:
    """The preset runs a per-run claim judges: ``settings.runs`` or every run of the preset."""
    return list(settings.runs or list(preset.get("runs", {})))


def svm_problems(rows: list[dict]) -> list[dict]:
    """The terminal checkpoints whose SVM failed (``svm_error`` other than a skip) or is not certified
    optimal: ``[{"epoch", "reason"}]``."""
    out = []
    for r in rows:
        svm, err = r.get("svm"), r.get("svm_error")
        if svm:
            why = solver_problem(svm.get("status"), f"epoch {r.get('epoch')}")
        else:
            why = None if (not err or str(err).startswith("skipped")) else f"SVM at epoch {r.get('epoch')} failed: {err}"
        if why:
            out.append({"epoch": r.get("epoch"), "reason": why})
    return out


def _flag_solver(item: dict, problems: list[dict]) -> dict:
    """Make a verdict inconclusive when it rests on a solver result that is not a certified optimum."""
    if problems:
        item["verdict"] = "inconclusive"
        item["detail"]["solver_problems"] = problems
        item["detail"]["reason"] = "; ".join(p["reason"] for p in problems)[:500]
    return item


def verdicts_1c(analysis: dict, settings=None, *, label: str | None = None) -> list[dict]:
    """Claim 1c on one analysed run (``analysis.json`` content)."""
    from ncmargin.empirical.analysis import terminal_rows

    s = settings_from(Settings, settings, "claim1c settings")
    run = analysis.get("run_id", "run")
    label = label or run
    term = terminal_rows(analysis)
    problems = svm_problems(term)
    rows = [r for r in term if r.get("svm") and solver_problem(r["svm"].get("status"), "") is None]
    epochs = [r["epoch"] for r in rows]
    ratio = [num(dig(r, "svm", "margin_ratio")) for r in rows]
    angle = [num(dig(r, "svm", "angle_deg")) for r in rows]
    common = {"onset_epoch": analysis.get("onset_epoch"), "epochs": epochs, "margin_ratio": ratio,
              "angle_deg": angle, "n_terminal_checkpoints": len(term), "n_with_svm": len(rows),
              "weight_decay": dig(analysis, "meta", "weight_decay"),
              # the test set's resolution over these checkpoints (docs/theory.md §14): reported, not judged
              "resolution": test_resolution(rows)}
    out = [trend_item(
        "1c", f"1c.margin_ratio_trend.{label}",
        "In the terminal phase the trained classifier's normalized margin approaches the SVM optimum on its "
        "own features: the margin ratio (p_min/||W_t||)/(1/||W*(H_t)||) increases with the epoch.",
        "Kendall tau(margin ratio, epoch) over terminal checkpoints", ratio, epochs, direction=+1,
        settings=s, runs=[run], detail={**common, "final_margin_ratio": ratio[-1] if ratio else None}),
        trend_item(
        "1c", f"1c.angle_trend.{label}",
        "In the terminal phase the trained classifier turns toward the SVM solution W*(H_t): the angle "
        "between W_t and W*(H_t) decreases with the epoch.",
        "Kendall tau(angle to W*, epoch) over terminal checkpoints", angle, epochs, direction=-1,
        settings=s, runs=[run],
        detail={**{k: common[k] for k in ("onset_epoch", "epochs", "angle_deg", "n_with_svm", "resolution")},
                "final_angle_deg": angle[-1] if angle else None})]
    return [_flag_solver(v, problems) for v in out]


def _run(out_dir: Path, s: Settings, ctx) -> list[dict]:
    names = runs_of(s, ctx.preset)
    ctx.ensure_runs(names)
    return per_run_verdicts("1c", names, ctx, lambda analysis, name: verdicts_1c(analysis, s, label=name))


# ------------------------------------------------------------------------------- report section

RUN_HEADER = ["epoch", "TPT", "train acc", "test acc", "p_min", "norm. margin", "angle to W* (°)",
              "margin ratio", "NC1", "bound @p_min: frozen", "bound @p_min: last layer",
              "bound @p_min: spectral", "best-γ bound (min)"]


def run_rows(analysis: dict) -> list[list]:
    """One report row per checkpoint of an ``analysis.json`` (columns :data:`RUN_HEADER`)."""
    rows = []
    for r in analysis.get("checkpoints", []):
        b = r.get("bound") or {}
        best = [dig(b, v, "best", "total") for v in ("last_layer", "spectral")]
        best = [x for x in best if isinstance(x, (int, float))]
        rows.append([
            r.get("epoch"), "✓" if r.get("terminal") else "", fmt(r.get("train_acc")), fmt(r.get("test_acc")),
            fmt(r.get("p_min")), fmt(r.get("normalized_margin")), fmt(dig(r, "svm", "angle_deg")),
            fmt(dig(r, "svm", "margin_ratio")), fmt(dig(r, "nc", "nc1_topk")),
            fmt(dig(b, "frozen", "at_pmin", "total")), fmt(dig(b, "last_layer", "at_pmin", "total")),
            fmt(dig(b, "spectral", "at_pmin", "total")), fmt(min(best) if best else None),
        ])
    return rows


def runs_section(out_dir: Path, verdicts: list[dict], doc: dict) -> str:
    """The per-checkpoint table of every run named by ``verdicts`` (from ``OUT/runs/<run>/analysis.json``)."""
    names = list(dict.fromkeys(r for v in verdicts for r in v.get("runs", [])))
    parts = []
    for name in names:
        a, err = read_stored(Path(out_dir) / RUNS_DIR / name / Analysis.FILE, Analysis)
        if a is None:
            parts.append(f"**{name}**: analysis not available ({err}).")
            continue
        meta = a.get("meta", {})
        parts.append(f"**{name}** — {meta.get('dataset')}, {meta.get('model')} (depth {meta.get('depth')}, width "
                     f"{meta.get('width')}), weight decay "
                     f"{fmt(meta.get('weight_decay'))}, onset of 100% train accuracy at epoch "
                     f"{fmt(a.get('onset_epoch'))}.\n\n" + table(RUN_HEADER, run_rows(a)))
        res = next((v["detail"].get("resolution") for v in verdicts
                    if name in v.get("runs", []) and (v.get("detail") or {}).get("resolution")), None)
        if res:
            parts.append(f"Test-set resolution over the terminal phase (docs/theory.md §14): 1/N_test = "
                         f"1/{res['n_test']}; the test accuracy takes {res['n_distinct']} distinct values, changes "
                         f"by {res['change_images']:+d} and spans {res['range_images']} test image(s).")
        notes = sorted({str(dig(r, "bound", "spectral", "error")) for r in a.get("checkpoints", [])
                        if dig(r, "bound", "spectral", "error")})
        if notes:
            parts.append("Spectral bound not available: " + "; ".join(notes)[:400])
    return "\n\n".join(parts) if parts else "_No runs._"


def run_section(analysis: dict) -> str:
    """The per-checkpoint table of one run (``ncmargin report RUN_DIR``)."""
    return "## Checkpoints\n\n" + table(RUN_HEADER, run_rows(analysis))


CLAIM = register(Claim(
    id="1c", title="Claim 1c — CE → SVM on deep-network features (docs/theory.md §4)", order=30,
    settings_key="claim1c", Settings=Settings, run=_run, runs_needed=runs_of, section=runs_section,
    figures=("terminal_phase", "pmin", "nc_metrics", "ce_svm_deep"),
    per_run=lambda analysis, settings: verdicts_1c(analysis, settings), run_section=run_section))
