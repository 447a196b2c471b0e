"""``ncmargin verify``: train what is missing, analyse, and give a verdict on each claim (THEORY.md §3–5).

A verification is a **preset** (``ncmargin/configs/verify_<name>.json``): the training runs it needs and
the settings of each claim. Each claim is a pluggable step registered in :data:`CLAIMS`::

    @register_claim("3", title="non-conservative generalization", order=30)
    def claim3(out_dir: Path, preset: dict, ctx: VerifyContext) -> list[dict]: ...

A step receives the output directory, the whole preset (its own settings under ``preset["claim3"]``)
and a :class:`VerifyContext`, which trains or reuses runs (``ctx.ensure_runs``), analyses them with reuse
(``ctx.analysis``), logs and times. It returns verdict dicts made with :func:`make_verdict`
(docs/results.md, ``verdicts.json``). Claim modules outside this file are imported from
:data:`PLUGIN_MODULES` (e.g. claim 3 from ``ncmargin.empirical.alignment_sweep``) and register themselves.

Verdicts, statistics and thresholds are documented in docs/theory.md §9. Summary:

- 1a (fixed features, Soudry et al. 2018): GD on the CE over W; the angle to the SVM solution must
  decrease (Kendall tau < 0 against the step, p < alpha) and end below ``final_angle_max_deg``.
- 1b (UFM, Ji et al. 2022 / Gao et al. Thm 4.1): the CE--p_min sandwich holds at every record; p_min
  grows (tau > 0, p < alpha) while the loss falls; the UFM normalized margin reaches at least
  ``ratio_min`` of the certified optimum 1/||Z*||_*; NC1 falls (tau < 0) to below ``nc1_max``.
- 1c (deep networks): over the terminal-phase checkpoints, Kendall tau of the margin ratio against the
  epoch (> 0 predicted) and of the angle to W*(H_t) (< 0 predicted).
- 2 (margin bound): Spearman rho of the bound with the test error over the terminal phase (> 0
  predicted), for the paper's fixed-class reading, the scale-invariant last-layer bound (= normalized
  margins) and the spectral bound; and whether the bound is vacuous.

Three-valued rule for a predicted monotone relation: **pass** if the statistic has the predicted sign and
p < alpha; **fail** if it has the wrong sign (or is zero); **inconclusive** if the sign is right but p >=
alpha, or there are fewer than ``min_points`` points, or a series is constant or takes fewer than
``min_distinct`` (3) distinct values (its ranks are then two groups, not a trend).
"""

from __future__ import annotations

import datetime
import importlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ncmargin.io import atomic_write_json, read_json, read_schema_json

__all__ = [
    "CLAIMS",
    "PLUGIN_MODULES",
    "SCHEMA",
    "ClaimStep",
    "VerifyContext",
    "available_claims",
    "correlation_verdict",
    "list_verify_presets",
    "load_plugins",
    "load_preset",
    "make_verdict",
    "read_verdicts",
    "register_claim",
    "run_status",
    "trend_verdict",
    "verdicts_1a",
    "verdicts_1b",
    "verdicts_1c",
    "verdicts_2",
    "verify",
    "write_verdicts",
]

SCHEMA = "ncmargin.verdicts/1"
VERDICTS = ("pass", "fail", "inconclusive")
PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"
PLUGIN_MODULES = ("ncmargin.empirical.alignment_sweep",)


# ---------------------------------------------------------------------------------------- registry

@dataclass
class ClaimStep:
    claim_id: str
    fn: Callable[[Path, dict, VerifyContext], list[dict]]
    title: str = ""
    order: int = 100


CLAIMS: dict[str, ClaimStep] = {}


def register_claim(claim_id: str, fn: Callable | None = None, *, title: str = "", order: int = 100):
    """Register ``fn(out_dir, preset, ctx) -> list[verdict dict]`` as claim ``claim_id`` (usable as a
    decorator). Re-registering an id replaces the previous step."""
    def deco(f):
        CLAIMS[str(claim_id)] = ClaimStep(str(claim_id), f, title, order)
        return f
    return deco(fn) if fn is not None else deco


def load_plugins() -> list[str]:
    """Import the modules of :data:`PLUGIN_MODULES` so their claims (and report sections) register
    themselves; returns a note for each module that is not installed."""
    notes = []
    for mod in PLUGIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name == mod:
                notes.append(f"{mod} not installed")
            else:
                raise
    return notes


_load_plugins = load_plugins  # the earlier private name


def available_claims() -> list[str]:
    """Claim ids in run order (built-in 1a, 1b, 1c, 2 plus registered plugins)."""
    load_plugins()
    return [c.claim_id for c in sorted(CLAIMS.values(), key=lambda c: (c.order, c.claim_id))]


# ------------------------------------------------------------------------------------------ presets

def list_verify_presets() -> list[str]:
    return sorted(p.stem[len("verify_"):] for p in PRESET_DIR.glob("verify_*.json"))


def load_preset(name_or_path: str | os.PathLike | dict) -> dict:
    """A verify preset: ``quick``/``paper`` (``ncmargin/configs/verify_<name>.json``) or a JSON path."""
    if isinstance(name_or_path, dict):
        return json.loads(json.dumps(name_or_path))
    s = str(name_or_path)
    p = Path(s)
    if not p.is_file():
        p = PRESET_DIR / f"verify_{s}.json"
    if not p.is_file():
        raise FileNotFoundError(f"verify preset {s!r} not found; use one of {', '.join(list_verify_presets())} "
                                "or a path to a JSON preset")
    preset = read_json(p)
    if not isinstance(preset, dict) or "runs" not in preset:
        raise ValueError(f"{p}: a verify preset is a JSON object with at least 'runs' (name -> training "
                         "config); see ncmargin/configs/verify_quick.json")
    preset.setdefault("name", p.stem.replace("verify_", ""))
    return preset


# ------------------------------------------------------------------------------------------ verdicts

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


def trend_item(claim: str, vid: str, statement: str, statistic: str, values, times, *, direction: int,
               settings: dict, runs: list[str] | None, detail: dict | None = None) -> dict:
    """A Kendall-trend verdict entry: :func:`trend_verdict` on ``values`` against ``times`` under the
    claim section's ``settings`` (alpha and sample limits), with the threshold text derived from them;
    ``detail`` is merged with the test's statistics."""
    v, st = trend_verdict(values, times, direction=direction, alpha=settings["alpha"], **_rule(settings))
    sign = ">" if direction > 0 else "<"
    return make_verdict(claim, vid, statement, statistic, st.get("tau"),
                        f"tau {sign} 0 and p < {settings['alpha']} (n >= {settings['min_points']})", v, runs,
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
    """The three-valued rule of the module docstring applied to the rank statistic ``statistic(a, b)[key]``
    over the pairs where both series are finite; ``what`` names it in the constant-series reason."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    few = _too_few(a, b, min_points, min_distinct, key)
    if few is not None:
        return "inconclusive", few
    st = statistic(a, b)
    r, p = st[key], st["p_value"]
    if not math.isfinite(r):
        return "inconclusive", {**st, "reason": f"a series is constant: no rank {what}"}
    if r * direction <= 0:
        return "fail", st
    return ("pass" if p < alpha else "inconclusive"), st


def trend_verdict(values, times, *, direction: int, alpha: float, min_points: int = 5,
                  min_distinct: int = 3) -> tuple[str, dict]:
    """Kendall tau-b of ``values`` against ``times`` (ncmargin.theory.stats.kendall_trend) judged by the
    three-valued rule of the module docstring; ``direction`` +1 (increase predicted) or -1."""
    from ncmargin.theory.stats import kendall_trend

    return _rank_verdict(values, times, kendall_trend, "tau", "trend", direction=direction, alpha=alpha,
                         min_points=min_points, min_distinct=min_distinct)


def correlation_verdict(x, y, *, alpha: float, min_points: int = 5, direction: int = 1,
                        min_distinct: int = 3) -> tuple[str, dict]:
    """Spearman rho of ``x`` with ``y`` (ncmargin.theory.stats.spearman), same three-valued rule."""
    from ncmargin.theory.stats import spearman

    return _rank_verdict(x, y, spearman, "rho", "correlation", direction=direction, alpha=alpha,
                         min_points=min_points, min_distinct=min_distinct)


def _rule(s: dict) -> dict:
    """The rule settings of a claim section: ``alpha`` is passed separately; these are the sample limits."""
    return {"min_points": int(s["min_points"]), "min_distinct": int(s.get("min_distinct", 3))}


def _get(d, *path):
    """``d[path[0]][path[1]]...``, or None where a key is missing, a value is None or not a dict
    (also used by ncmargin.report)."""
    for k in path:
        if not isinstance(d, dict) or k not in d or d[k] is None:
            return None
        d = d[k]
    return d


def _num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f


# --- claim 1c ------------------------------------------------------------------------------------

def verdicts_1c(analysis: dict, settings: dict | None = None, *, label: str | None = None) -> list[dict]:
    """Claim 1c on one analysed run: Kendall tau of the margin ratio (> 0 predicted) and of the angle to
    W*(H_t) (< 0 predicted) against the epoch over the terminal-phase checkpoints with an SVM."""
    from ncmargin.empirical.analysis import terminal_rows

    s = {"alpha": 0.05, "min_points": 5, **(settings or {})}
    run = analysis.get("run_id", "run")
    label = label or run
    rows = [r for r in terminal_rows(analysis) if r.get("svm")]
    epochs = [r["epoch"] for r in rows]
    ratio = [_num(_get(r, "svm", "margin_ratio")) for r in rows]
    angle = [_num(_get(r, "svm", "angle_deg")) for r in rows]
    common = {"onset_epoch": analysis.get("onset_epoch"), "epochs": epochs, "margin_ratio": ratio,
              "angle_deg": angle,
              "n_terminal_checkpoints": len(terminal_rows(analysis)), "n_with_svm": len(rows),
              "weight_decay": _get(analysis, "meta", "weight_decay")}
    out = []
    out.append(trend_item(
        "1c", f"1c.margin_ratio_trend.{label}",
        "In the terminal phase the trained classifier's normalized margin approaches the SVM optimum on its "
        "own features: the margin ratio (p_min/||W_t||)/(1/||W*(H_t)||) increases with the epoch.",
        "Kendall tau(margin ratio, epoch) over terminal checkpoints", ratio, epochs, direction=+1,
        settings=s, runs=[run], detail={**common, "final_margin_ratio": ratio[-1] if ratio else None}))
    out.append(trend_item(
        "1c", f"1c.angle_trend.{label}",
        "In the terminal phase the trained classifier turns toward the SVM solution W*(H_t): the angle "
        "between W_t and W*(H_t) decreases with the epoch.",
        "Kendall tau(angle to W*, epoch) over terminal checkpoints", angle, epochs, direction=-1,
        settings=s, runs=[run],
        detail={**{k: common[k] for k in ("onset_epoch", "epochs", "angle_deg", "n_with_svm")},
                "final_angle_deg": angle[-1] if angle else None}))
    return out


# --- claim 2 -------------------------------------------------------------------------------------

BOUND_VARIANTS = {
    "frozen": "the paper's reading (Cor. 4.5): class complexity frozen at the onset checkpoint, gamma = p_min(t)",
    "last_layer": "last-layer bound with the current norms r, Lambda at gamma = p_min(t) (scale-invariant: the "
                  "bound of the normalized margins)",
    "spectral": "whole-network spectral-complexity bound (Bartlett et al. 2017) at gamma = p_min(t)",
}


def verdicts_2(analysis: dict, settings: dict | None = None, *, label: str | None = None) -> list[dict]:
    """Claim 2 on one analysed run: Spearman rho of each bound variant at gamma = p_min (the paper's
    Cor. 4.5 choice) with the test error over the terminal-phase checkpoints (> 0 predicted); whether the
    best-gamma bound is vacuous; whether the normalized margin grows (docs/theory.md §9)."""
    from ncmargin.empirical.analysis import terminal_rows

    s = {"alpha": 0.05, "min_points": 5, **(settings or {})}
    run = analysis.get("run_id", "run")
    label = label or run
    rows = terminal_rows(analysis)
    epochs = [r["epoch"] for r in rows]
    test_err = [_num(r.get("test_error")) for r in rows]
    gap = [_num(r.get("gap")) for r in rows]
    out = []
    for variant, desc in BOUND_VARIANTS.items():
        totals = [_num(_get(r, "bound", variant, "at_pmin", "total")) for r in rows]
        if not any(math.isfinite(t) for t in totals):
            errs = sorted({str(_get(r, "bound", variant, "error") or f"no {variant} bound") for r in rows})
            out.append(make_verdict(
                "2", f"2.{variant}_trend.{label}", f"The margin bound ({desc}) tracks the test error.",
                "Spearman rho(bound, test error) over terminal checkpoints", None,
                f"rho > 0 and p < {s['alpha']}", "inconclusive", [run],
                {"reason": "; ".join(errs)[:500] or "no terminal-phase checkpoint", "epochs": epochs}))
            continue
        v, st = correlation_verdict(totals, test_err, alpha=s["alpha"], **_rule(s))
        gap_v, gap_st = correlation_verdict(totals, gap, alpha=s["alpha"], **_rule(s))
        out.append(make_verdict(
            "2", f"2.{variant}_trend.{label}",
            f"The margin bound ({desc}) tracks the test error over the terminal phase: higher bound, higher "
            "test error.",
            "Spearman rho(bound, test error) over terminal checkpoints", st.get("rho"),
            f"rho > 0 and p < {s['alpha']} (n >= {s['min_points']})", v, [run],
            {**st, "epochs": epochs, "bound": totals, "test_error": test_err, "gap": gap,
             "gap_correlation": {**gap_st, "verdict": gap_v}}))
    # vacuity: the smallest best-gamma bound in the terminal phase (last layer and spectral)
    mins = {}
    for variant in ("last_layer", "spectral"):
        vals = [_num(_get(r, "bound", variant, "best", "total")) for r in rows]
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
    nm = [_num(r.get("normalized_margin")) for r in rows]
    out.append(trend_item(
        "2", f"2.normalized_margin_trend.{label}",
        "The margin growth behind the bound survives normalization: p_min/(||W||_F max||h||) increases over "
        "the terminal phase (raw p_min also grows merely because the weights grow).",
        "Kendall tau(normalized margin, epoch) over terminal checkpoints", nm, epochs, direction=+1,
        settings=s, runs=[run],
        detail={"epochs": epochs, "normalized_margin": nm, "p_min": [_num(r.get("p_min")) for r in rows]}))
    return out


# --- claim 1a ------------------------------------------------------------------------------------

def verdicts_1a(name: str, records: list[dict], settings: dict | None = None, *,
                runs: list[str] | None = None, fit: dict | None = None) -> list[dict]:
    """Claim 1a on one fixed-feature GD trajectory (records with ``step`` and ``angle_deg``)."""
    s = {"alpha": 0.01, "min_points": 8, "final_angle_max_deg": 10.0, **(settings or {})}
    recs = [r for r in records if r.get("step", 0) >= 1 and r.get("angle_deg") is not None]
    steps = [float(r["step"]) for r in recs]
    ang = [_num(r["angle_deg"]) for r in recs]
    out = [trend_item(
        "1a", f"1a.angle_trend.{name}",
        "Gradient descent on the unregularized CE over W with fixed separable features turns W(t) toward the "
        "hard-margin SVM solution W*: the angle decreases with the step.",
        "Kendall tau(angle to W*, step) over log-spaced records", ang, steps, direction=-1,
        settings=s, runs=runs or [], detail={"fit_inverse_log": fit})]
    final = ang[-1] if ang else None
    thr = float(s["final_angle_max_deg"])
    verdict = "inconclusive" if final is None else ("pass" if final < thr else "fail")
    out.append(make_verdict(
        "1a", f"1a.final_angle.{name}",
        f"After {int(steps[-1]) if steps else 0} steps the direction of W(t) is within {thr:g} degrees of W*.",
        "angle(W(T), W*) in degrees at the last record", final, f"< {thr:g} deg", verdict, runs or [],
        {"final_step": steps[-1] if steps else None,
         "final_margin_ratio": _num(recs[-1].get("margin_ratio")) if recs else None,
         "fit_inverse_log": fit}))
    return out


# --- claim 1b ------------------------------------------------------------------------------------

def verdicts_1b(records: list[dict], optimum: float, settings: dict | None = None, *,
                runs: list[str] | None = None, detail: dict | None = None) -> list[dict]:
    """Claim 1b on UFM gradient-descent records (``step``, ``loss``, ``p_min``, ``normalized_margin``,
    ``sandwich_holds``, ``nc1_topk``) and the certified optimum of the UFM normalized margin."""
    s = {"alpha": 0.01, "min_points": 8, "ratio_min": 0.95, "nc1_max": 1e-2, **(settings or {})}
    recs = [r for r in records if r.get("step", 0) >= 1]
    steps = [float(r["step"]) for r in recs]
    out = []
    hold = [bool(r.get("sandwich_holds")) for r in records if r.get("sandwich_holds") is not None]
    frac = (sum(hold) / len(hold)) if hold else None
    out.append(make_verdict(
        "1b", "1b.sandwich",
        "The CE--p_min sandwich (1/N)log(1+e^-p_min) <= L <= log(1+(K-1)e^-p_min) holds at every record.",
        "fraction of records where the sandwich holds", frac, "= 1 (all records)",
        "inconclusive" if frac is None else ("pass" if frac == 1.0 else "fail"), runs or [],
        {"n_records": len(hold), "violations": [r.get("step") for r in records
                                                if r.get("sandwich_holds") is False][:20]}))
    pm = [_num(r.get("p_min")) for r in recs]
    loss = [_num(r.get("loss")) for r in recs]
    v_p, st_p = trend_verdict(pm, steps, direction=+1, alpha=s["alpha"], **_rule(s))
    v_l, st_l = trend_verdict(loss, steps, direction=-1, alpha=s["alpha"], **_rule(s))
    v = v_p if v_p == v_l else ("fail" if "fail" in (v_p, v_l) else "inconclusive")
    out.append(make_verdict(
        "1b", "1b.pmin_diverges",
        "Under UFM gradient descent the loss goes to 0 and p_min grows without bound (p_min increases as the "
        "loss decreases).",
        "Kendall tau(p_min, step) (and tau(loss, step) < 0)", st_p.get("tau"),
        f"tau(p_min) > 0 and tau(loss) < 0, both p < {s['alpha']}", v, runs or [],
        {"p_min": st_p, "loss": st_l, "final_loss": loss[-1] if loss else None,
         "final_p_min": pm[-1] if pm else None}))
    nm = [_num(r.get("normalized_margin")) for r in recs]
    final_ratio = (nm[-1] / optimum) if nm and optimum and math.isfinite(nm[-1]) else None
    verdict = "inconclusive" if final_ratio is None else ("pass" if final_ratio >= s["ratio_min"] else "fail")
    out.append(make_verdict(
        "1b", "1b.normalized_margin_optimum",
        "The UFM normalized margin p_min/(1/2(||W||^2+||H||^2)) approaches the optimum 1/||Z*||_* certified by "
        "the nuclear-norm program.",
        "final normalized margin / certified optimum", final_ratio, f">= {s['ratio_min']}", verdict, runs or [],
        {"optimum": optimum, "final_normalized_margin": nm[-1] if nm else None, **(detail or {})}))
    nc1 = [_num(r.get("nc1_topk", r.get("nc1"))) for r in recs]
    v_t, st_t = trend_verdict(nc1, steps, direction=-1, alpha=s["alpha"], **_rule(s))
    final_nc1 = nc1[-1] if nc1 else None
    small = final_nc1 is not None and math.isfinite(final_nc1) and final_nc1 <= s["nc1_max"]
    verdict = "pass" if (v_t == "pass" and small) else ("fail" if (v_t == "fail" or (
        final_nc1 is not None and math.isfinite(final_nc1) and not small)) else "inconclusive")
    nc_final = {k: recs[-1].get(k) for k in recs[-1] if k.startswith("nc")} if recs else {}
    out.append(make_verdict(
        "1b", "1b.neural_collapse",
        "The UFM dynamics collapse: NC1 (within-class variability) decreases to ~0.",
        "final NC1 (Tr(Sigma_W Sigma_B^+)/K)", final_nc1,
        f"<= {s['nc1_max']:g} and Kendall tau(NC1, step) < 0 with p < {s['alpha']}", verdict, runs or [],
        {"nc1_trend": st_t, "final_nc": nc_final}))
    return out


# ------------------------------------------------------------------------------------------ runs

def run_status(run_dir: str | os.PathLike) -> str:
    """``"complete"`` (summary.json says so), ``"partial"`` (a run dir that can be resumed) or ``"absent"``."""
    p = Path(run_dir)
    if not (p / "config.json").is_file():
        return "absent"
    s = p / "summary.json"
    if s.is_file():
        try:
            if read_json(s).get("complete"):
                return "complete"
        except ValueError:
            pass
    return "partial"


# keys that may differ between a stored run and the preset without making it another experiment
_IGNORED_CONFIG_KEYS = {"device", "quiet", "save_every", "eval_batch_size", "compile", "amp", "channels_last",
                        "data_root", "download", "deterministic"}


def _resolve_run_config(spec: dict, device: str | None, quiet: bool):
    from ncmargin.empirical.config import load_config

    overrides = dict(spec.get("set") or {})
    if device:
        overrides["device"] = device
    overrides["quiet"] = quiet
    return load_config(spec["config"], overrides)


def _train_worker(train_fn, cfg_dict: dict, run_dir: str, resume: bool, threads: int | None) -> str:
    """Train one run (in a worker process when ``--jobs`` > 1)."""
    if threads:
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:  # pragma: no cover
            pass
    train_fn(cfg_dict, run_dir, resume=resume)
    return run_dir


def _default_train(config, run_dir, resume=False):
    from ncmargin.empirical.train import train

    return train(config, run_dir, resume=resume)


@dataclass
class VerifyContext:
    """What a claim step may use: run training/reuse, cached analyses, logging, timings."""

    out_dir: Path
    preset: dict
    device: str | None = None
    jobs: int = 1
    quiet: bool = False
    force_analysis: bool = False
    train_fn: Callable = _default_train
    timings: dict = field(default_factory=dict)
    trained: list = field(default_factory=list)
    reused: list = field(default_factory=list)
    resumed: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    _analyses: dict = field(default_factory=dict)

    def log(self, msg: str) -> None:
        if not self.quiet:
            print(msg, file=sys.stderr, flush=True)

    def run_dir(self, name: str) -> Path:
        return self.out_dir / "runs" / name

    def run_spec(self, name: str) -> dict:
        runs = self.preset.get("runs", {})
        if name not in runs:
            raise ValueError(f"run {name!r} is not defined in preset {self.preset.get('name')!r} "
                             f"(runs: {', '.join(runs)}); add it under 'runs'")
        return runs[name]

    def ensure_runs(self, names: list[str]) -> dict[str, Path]:
        """Train the runs that are missing, resume partial ones, reuse complete ones (no retraining).

        A stored run whose config differs from the preset (beyond device/IO keys) is an error: the caller
        must pick another ``--out`` or delete the run."""
        todo = []
        paths = {}
        for name in dict.fromkeys(names):
            cfg = _resolve_run_config(self.run_spec(name), self.device, True)
            rd = self.run_dir(name)
            paths[name] = rd
            status = run_status(rd)
            if status != "absent":
                stored = read_json(rd / "config.json").get("config", {})
                want = cfg.to_dict()
                diff = sorted(k for k in want if k not in _IGNORED_CONFIG_KEYS and stored.get(k) != want[k])
                if diff:
                    raise ValueError(f"{rd} holds a run whose config differs from preset "
                                     f"{self.preset.get('name')!r} in {diff}; use another --out directory or "
                                     f"delete {rd}")
            if status == "complete":
                if name not in self.reused and name not in self.trained:
                    self.reused.append(name)
                    self.log(f"[verify] reusing complete run {rd}")
                continue
            todo.append((name, cfg, rd, status == "partial"))
        if not todo:
            return paths
        t0 = time.perf_counter()
        jobs = max(1, min(int(self.jobs or 1), len(todo)))
        for name, _, rd, resume in todo:
            self.log(f"[verify] {'resuming' if resume else 'training'} run {name} -> {rd}")
        if jobs == 1:
            for name, cfg, rd, resume in todo:
                rd.parent.mkdir(parents=True, exist_ok=True)
                self.train_fn(cfg.to_dict(), str(rd), resume=resume)
        else:
            # one process per run, each with cpu_count/jobs intra-op threads: the small CPU models of the
            # quick preset lose time to thread spinning with more threads than their share of the cores
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            threads = max(1, (os.cpu_count() or 1) // jobs)
            with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as ex:
                futs = []
                for name, cfg, rd, resume in todo:
                    rd.parent.mkdir(parents=True, exist_ok=True)
                    futs.append(ex.submit(_train_worker, self.train_fn, cfg.to_dict(), str(rd), resume, threads))
                for f in futs:
                    f.result()
        for name, _, rd, resume in todo:
            if run_status(rd) != "complete":
                raise RuntimeError(f"training {name} finished but {rd}/summary.json does not say complete")
            (self.resumed if resume else self.trained).append(name)
        self.timings["train_s"] = self.timings.get("train_s", 0.0) + time.perf_counter() - t0
        return paths

    def analysis(self, name: str) -> dict:
        """``analysis.json`` of run ``name`` (trained if needed; checkpoints already analysed are reused)."""
        if name in self._analyses:
            return self._analyses[name]
        from ncmargin.empirical.analysis import analyze_run

        rd = self.ensure_runs([name])[name]
        t0 = time.perf_counter()
        a = self.preset.get("analysis", {})
        res = analyze_run(rd, svm_tol=float(a.get("svm_tol", 1e-8)), force=self.force_analysis,
                          svm_epochs=a.get("svm_epochs", "terminal"), spectral=bool(a.get("spectral", True)),
                          delta=float(a.get("delta", 0.05)), quiet=self.quiet)
        dt = time.perf_counter() - t0
        self.timings[f"analyze_{name}_s"] = dt
        self.log(f"[verify] analysed {name}: {len(res['checkpoints'])} checkpoints "
                 f"({res.get('reused_checkpoints', 0)} reused) in {dt:.1f}s")
        self._analyses[name] = res
        return res


# ------------------------------------------------------------------------------------------ claims

def _per_run_claim(preset: dict, ctx: VerifyContext, section: str, verdicts_fn) -> list[dict]:
    """``verdicts_fn(analysis, settings, label=run)`` over the runs of ``preset[section]["runs"]`` (default:
    every run of the preset), training and analysing them as needed."""
    s = preset.get(section, {})
    names = s.get("runs") or list(preset["runs"])
    ctx.ensure_runs(names)
    return [v for name in names for v in verdicts_fn(ctx.analysis(name), s, label=name)]


@register_claim("1c", title="CE -> SVM on deep-network features", order=30)
def claim_1c(out_dir: Path, preset: dict, ctx: VerifyContext) -> list[dict]:
    return _per_run_claim(preset, ctx, "claim1c", verdicts_1c)


@register_claim("2", title="the margin bound and the test error", order=40)
def claim_2(out_dir: Path, preset: dict, ctx: VerifyContext) -> list[dict]:
    return _per_run_claim(preset, ctx, "claim2", verdicts_2)


def _synthetic_features(spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """Separable Gaussian class clusters: means ``separation``·(random unit vectors), unit noise."""
    rng = np.random.default_rng(int(spec.get("seed", 0)))
    K, n, d = int(spec.get("K", 4)), int(spec.get("n", 25)), int(spec.get("d", 10))
    means = rng.standard_normal((K, d))
    means *= float(spec.get("separation", 4.0)) / np.linalg.norm(means, axis=1, keepdims=True)
    y = np.repeat(np.arange(K), n)
    H = means[y] + float(spec.get("noise", 1.0)) * rng.standard_normal((K * n, d))
    return H, y


def _fixed_feature_experiment(name: str, H, y, s: dict, ctx: VerifyContext, runs: list[str], *,
                              bias: bool = False) -> tuple[dict, list]:
    """One claim-1a trajectory: W* by the exact SVM, then GD on the CE over W (ncmargin.empirical.
    fixed_features), the 1/log t fit and the verdicts. With ``bias`` a constant feature is appended to H
    in both (the bias regularized, THEORY §3a)."""
    from ncmargin.empirical.fixed_features import ce_gd_fixed_features, record_steps
    from ncmargin.solvers import multiclass_svm
    from ncmargin.theory.compare import augment
    from ncmargin.theory.stats import fit_inverse_log

    t0 = time.perf_counter()
    steps = int(s.get("steps", 100_000))
    schedule = s.get("schedule", "normalized")
    sol = multiclass_svm(H, y, bias=bias, tol=float(s.get("svm_tol", 1e-8)))
    recs = ce_gd_fixed_features(H, y, W_star=augment(sol.W, sol.b), steps=steps, schedule=schedule,
                                lr=s.get("lr"), record=record_steps(steps, int(s.get("num_records", 40))),
                                bias=bias)
    recs = [dict(r) for r in recs]
    usable = [r for r in recs if r.get("step", 0) > 1 and _finite(r.get("angle_deg"))]
    try:
        fit = fit_inverse_log([r["step"] for r in usable], [r["angle_deg"] for r in usable])
    except ValueError as exc:
        fit = {"error": str(exc)}
    exp = {"name": name, "N": int(H.shape[0]), "d": int(H.shape[1]) + int(bias), "K": int(y.max()) + 1,
           "bias_as_constant_feature": bias,
           "svm": {"objective": float(sol.objective), "margin": float(sol.margin), "status": sol.status,
                   "duality_gap": float(sol.duality_gap), "max_violation": float(sol.max_violation),
                   "n_support": int(sol.support.size)},
           "schedule": schedule, "steps": steps, "lr": s.get("lr"), "fit_inverse_log": fit, "records": recs,
           "runs": runs}
    exp["seconds"] = time.perf_counter() - t0
    return exp, verdicts_1a(name, recs, s, runs=runs, fit=fit)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


@register_claim("1a", title="CE -> SVM on fixed features", order=10)
def claim_1a(out_dir: Path, preset: dict, ctx: VerifyContext) -> list[dict]:
    s = dict(preset.get("claim1a", {}))
    experiments, verdicts = [], []
    if s.get("synthetic") is not None:
        H, y = _synthetic_features(s["synthetic"])
        exp, v = _fixed_feature_experiment("synthetic", H, y, s, ctx, [])
        experiments.append(exp)
        verdicts += v
        ctx.log(f"[verify] 1a synthetic: final angle {exp['records'][-1].get('angle_deg'):.3g} deg "
                f"({exp['seconds']:.1f}s)")
    real = s.get("real_run")
    if real:
        rd = ctx.ensure_runs([real])[real]
        from ncmargin.empirical.analysis import list_checkpoints
        from ncmargin.io import load_features

        ep, path = list_checkpoints(rd)[-1]
        fs = load_features(path, split="train")
        H, y = fs.features, fs.labels
        sub = int(s.get("real_per_class", 0) or 0)
        if sub:  # balanced subsample (paper preset: 50k x 512 CIFAR features are too many for 1e5 steps)
            rng = np.random.default_rng(0)
            idx = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == k))[:sub] for k in np.unique(y)]))
            H, y = H[idx], y[idx]
        exp, v = _fixed_feature_experiment(f"{real}_final", H, y, s, ctx, [real], bias=fs.bias is not None)
        exp.update({"source": str(path), "epoch": ep, "per_class_subsample": sub or None})
        experiments.append(exp)
        verdicts += v
        ctx.log(f"[verify] 1a {real}: final angle {exp['records'][-1].get('angle_deg'):.3g} deg "
                f"({exp['seconds']:.1f}s)")
    atomic_write_json(out_dir / "claim1a" / "fixed_features.json",
                      {"schema": "ncmargin.claim1a/1", "settings": s, "experiments": experiments})
    return verdicts


@register_claim("1b", title="CE -> SVM in the unconstrained feature model", order=20)
def claim_1b(out_dir: Path, preset: dict, ctx: VerifyContext) -> list[dict]:
    """UFM gradient dynamics (ncmargin.empirical.ufm) against the certified nuclear-norm optimum.

    The UFM normalized margin p_min/(1/2(||W||^2+||H||^2)) is invariant under (W, H) -> (sW, sH) (both
    sides are homogeneous of degree 2), so its maximum is 1/min{1/2(||W||^2+||H||^2) : p_min >= 1} =
    1/||Z*||_*, the inverse of the nuclear-norm program's optimum (ncmargin.solvers.ufm_svm); balanced:
    1/((K-1) sqrt(n)) (docs/theory.md §9).
    """
    from ncmargin.empirical.ufm import ufm_dynamics
    from ncmargin.solvers import ufm_svm

    s = dict(preset.get("claim1b", {}))
    K, n = int(s.get("K", 4)), int(s.get("n", 5))
    d = int(s.get("d") or K)
    y = np.repeat(np.arange(K), n)
    t0 = time.perf_counter()
    sol = ufm_svm(y, d=d)
    optimum = 1.0 / float(sol.objective)
    recs = ufm_dynamics(K, n, d, int(s.get("steps", 20_000)), lr=float(s.get("lr", 1.0)),
                        init_scale=float(s.get("init_scale", 0.1)), step=s.get("step", "loss_adaptive"),
                        seed=int(s.get("seed", 0)), num_logs=int(s.get("num_records", 40)))
    recs = [dict(r) for r in recs]
    cert = {k: v for k, v in (sol.certificate or {}).items() if isinstance(v, (int, float, str, bool))}
    detail = {"K": K, "n": n, "d": d, "nuclear_norm_objective": float(sol.objective),
              "closed_form_objective": (K - 1) * math.sqrt(n), "certificate_duality_gap": cert.get("duality_gap")}
    verdicts = verdicts_1b(recs, optimum, s, detail=detail)
    atomic_write_json(out_dir / "claim1b" / "ufm.json", {
        "schema": "ncmargin.claim1b/1", "settings": s, "K": K, "n": n, "d": d,
        "nuclear_norm_objective": float(sol.objective), "normalized_margin_optimum": optimum,
        "closed_form_objective": (K - 1) * math.sqrt(n), "certificate": cert,
        "seconds": time.perf_counter() - t0, "records": recs})
    return verdicts


# ------------------------------------------------------------------------------------------ output

def _versions() -> dict:
    import scipy

    from ncmargin import __version__

    out = {"ncmargin": __version__, "python": platform.python_version(), "numpy": np.__version__,
           "scipy": scipy.__version__, "platform": platform.platform()}
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("torch", "cvxpy", "clarabel", "scikit-learn", "matplotlib"):
        try:
            out[dist] = version(dist)  # package metadata: no import of the (heavy) package itself
        except PackageNotFoundError:
            out[dist] = None
    return out


def write_verdicts(out_dir: str | os.PathLike, verdicts: list[dict], *, preset: str, extra: dict | None = None
                   ) -> Path:
    from ncmargin import __version__

    ids = [v["id"] for v in verdicts]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"duplicate verdict ids {dup}: every verdict id must be unique")
    doc = {"schema": SCHEMA, "preset": preset,
           "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
           "ncmargin_version": __version__, "verdicts": verdicts, **(extra or {})}
    p = Path(out_dir) / "verdicts.json"
    atomic_write_json(p, doc)
    return p


def read_verdicts(path: str | os.PathLike) -> dict:
    """Read and check ``verdicts.json`` (a directory holding it or the file itself)."""
    p, doc = read_schema_json(path, SCHEMA, what="a verdicts", fix="rerun `ncmargin verify`",
                              name="verdicts.json", check=lambda d: isinstance(d.get("verdicts"), list))
    for i, v in enumerate(doc["verdicts"]):
        for k in ("claim", "id", "statement", "statistic", "value", "threshold", "verdict", "runs"):
            if k not in v:
                raise ValueError(f"{p}: verdicts[{i}] lacks key {k!r}; rerun `ncmargin verify`")
        if v["verdict"] not in VERDICTS:
            raise ValueError(f"{p}: verdicts[{i}] has verdict {v['verdict']!r}, not one of {VERDICTS}")
    return doc


def _parse_claims(claims, preset: dict) -> list[str]:
    avail = available_claims()
    if claims is None or claims == "" or claims == "all":
        wanted = preset.get("claims") or avail
        return [c for c in avail if c in wanted]
    if isinstance(claims, str):
        claims = [c.strip() for c in claims.split(",") if c.strip()]
    unknown = [c for c in claims if c not in avail]
    if unknown:
        raise ValueError(f"unknown claim(s) {unknown}; available: {', '.join(avail)} (claims registered by "
                         f"plugin modules {', '.join(PLUGIN_MODULES)} appear when those modules are installed)")
    return [c for c in avail if c in claims]


def verify(preset: str | dict = "quick", out: str | os.PathLike | None = None, *, device: str | None = None,
           claims: str | list[str] | None = None, jobs: int | None = None, quiet: bool = False,
           figures: bool = True,
           force_analysis: bool = False, train_fn: Callable | None = None) -> dict:
    """Run the verification: train what is missing (reuse complete runs), analyse, evaluate each claim,
    write ``OUT/verdicts.json`` and ``OUT/report.md`` (atomic), and the figures when available.
    ``jobs``: training processes in parallel (default: the preset's ``jobs``, else 1).

    Returns the verdicts document. Bad input (unknown preset or claim, a stored run with another config)
    raises before any claim runs; a claim step that raises is recorded as an ``inconclusive`` verdict with
    the error (``<claim>.error``) and the other claims still run.
    """
    t_all = time.perf_counter()
    pre = load_preset(preset)
    name = pre.get("name", "custom")
    out_dir = Path(out) if out is not None else Path("results") / name
    out_dir.mkdir(parents=True, exist_ok=True)
    if device == "auto" or (device is None and pre.get("device") == "auto"):
        try:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:  # pragma: no cover
            device = "cpu"
    device = device or pre.get("device")
    jobs = int(jobs if jobs is not None else pre.get("jobs", 1))
    if jobs < 1:
        raise ValueError(f"jobs={jobs}: give a positive number of parallel training processes")
    ctx = VerifyContext(out_dir, pre, device=device, jobs=jobs, quiet=quiet, force_analysis=force_analysis,
                        train_fn=train_fn or _default_train)
    selected = _parse_claims(claims, pre)
    ctx.log(f"[verify] preset {name}, claims {', '.join(selected)}, out {out_dir}")
    # train every run the selected claims need up front, so --jobs can train them in parallel
    needed = []
    for c in selected:
        key = {"1a": "claim1a", "1b": "claim1b", "1c": "claim1c", "2": "claim2"}.get(c)
        if key is None:
            continue
        s = pre.get(key, {})
        if c == "1a":
            needed += [s["real_run"]] if s.get("real_run") else []
        elif c in ("1c", "2"):
            needed += s.get("runs") or list(pre["runs"])
    if needed:
        ctx.ensure_runs(needed)
    verdicts: list[dict] = []
    errors = {}
    for c in selected:
        step = CLAIMS[c]
        t0 = time.perf_counter()
        try:
            verdicts += step.fn(out_dir, pre, ctx)
        except Exception as exc:  # noqa: BLE001 - a broken claim step must not hide the others' verdicts
            import traceback

            errors[c] = f"{type(exc).__name__}: {exc}"
            ctx.log(f"[verify] claim {c} failed: {errors[c]}\n{traceback.format_exc()}")
            verdicts.append(make_verdict(c, f"{c}.error", f"claim {c} ({step.title}) could not be evaluated",
                                         "error", None, "-", "inconclusive", [], {"error": errors[c]}))
        ctx.timings[f"claim_{c}_s"] = time.perf_counter() - t0
        ctx.log(f"[verify] claim {c} done in {ctx.timings[f'claim_{c}_s']:.1f}s")
    ctx.timings["total_s"] = time.perf_counter() - t_all
    extra = {"claims": selected, "device": device, "jobs": jobs, "timings": ctx.timings,
             "runs": {n: str(ctx.run_dir(n)) for n in pre.get("runs", {})},
             "trained": ctx.trained, "resumed": ctx.resumed, "reused": ctx.reused, "errors": errors,
             "versions": _versions(), "notes": ctx.notes}
    write_verdicts(out_dir, verdicts, preset=name, extra=extra)
    figs = None
    if figures:
        t0 = time.perf_counter()
        figs = _make_figures(out_dir, ctx)
        ctx.timings["figures_s"] = time.perf_counter() - t0
    from ncmargin.report import write_report

    write_report(out_dir, figures=figs)
    ctx.timings["total_s"] = time.perf_counter() - t_all
    extra["timings"] = ctx.timings
    write_verdicts(out_dir, verdicts, preset=name, extra=extra)
    write_report(out_dir, figures=figs)
    return read_verdicts(out_dir)


def _make_figures(out_dir: Path, ctx: VerifyContext):
    """Call ncmargin.figures.make_figures when it exists; a failure is logged, never fatal."""
    try:
        from ncmargin.figures import make_figures
    except ImportError as exc:
        ctx.notes.append(f"figures not generated: ncmargin.figures.make_figures unavailable ({exc})")
        return None
    skipped: list[str] = []
    try:
        figs = list(make_figures([out_dir], out_dir / "figures", skipped=skipped))
        ctx.notes += [f"figure skipped: {s}" for s in skipped]
        return figs
    except Exception as exc:  # noqa: BLE001 - figures are a by-product; verdicts stand without them
        ctx.notes.append(f"figures not generated: {type(exc).__name__}: {exc}")
        ctx.log(f"[verify] figures failed: {exc}")
        return None
