"""Claim 1b, CE → SVM in the unconstrained feature model (Ji et al. 2022; Gao et al. Thm 4.1;
docs/theory.md §3, §7, §9).

UFM gradient dynamics (ncmargin.empirical.ufm) against the certified nuclear-norm optimum: the CE–p_min
sandwich holds at every record; p_min grows (tau > 0, p < alpha) while the loss falls; the UFM normalized
margin reaches at least ``ratio_min`` of the certified optimum 1/||Z*||_*; NC1 falls (tau < 0) to below
``nc1_max``. The UFM normalized margin p_min/(1/2(||W||^2+||H||^2)) is invariant under (W, H) -> (sW, sH)
(both sides homogeneous of degree 2), so its maximum is 1/min{1/2(||W||^2+||H||^2) : p_min >= 1} =
1/||Z*||_*; balanced: 1/((K-1) sqrt(n)). An optimum that is not certified makes the optimum verdict
inconclusive. Writes ``OUT/claim1b/ufm.json`` (schema ``ncmargin.claim1b/1``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ncmargin.markdown import fmt, table
from ncmargin.store import CLAIM1B_FILE, Claim1b, settings_from

from .registry import Claim, read_stored, register
from .verdicts import make_verdict, num, rule, solver_problem, trend_verdict

__all__ = ["Settings", "section", "verdicts_1b"]



@dataclass(frozen=True)
class Settings:
    """Preset section ``claim1b``."""
    K: int = 4
    n: int = 5
    d: int | None = None          # default K
    steps: int = 20_000
    step: str = "loss_adaptive"
    lr: float = 1.0
    init_scale: float = 0.1
    seed: int = 0
    num_records: int = 40
    alpha: float = 0.01
    min_points: int = 8
    min_distinct: int = 3
    ratio_min: float = 0.95
    nc1_max: float = 1e-2


def verdicts_1b(records: list[dict], optimum: float, settings=None, *, runs: list[str] | None = None,
                detail: dict | None = None, optimum_status="optimal") -> list[dict]:
    """Claim 1b on UFM gradient-descent records (``step``, ``loss``, ``p_min``, ``normalized_margin``,
    ``sandwich_holds``, ``nc1_topk``) and the certified optimum of the UFM normalized margin
    (``optimum_status``: the status of the nuclear-norm program that gave it)."""
    s = settings_from(Settings, settings, "claim1b settings")
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
    pm = [num(r.get("p_min")) for r in recs]
    loss = [num(r.get("loss")) for r in recs]
    v_p, st_p = trend_verdict(pm, steps, direction=+1, alpha=s.alpha, **rule(s))
    v_l, st_l = trend_verdict(loss, steps, direction=-1, alpha=s.alpha, **rule(s))
    v = v_p if v_p == v_l else ("fail" if "fail" in (v_p, v_l) else "inconclusive")
    out.append(make_verdict(
        "1b", "1b.pmin_diverges",
        "Under UFM gradient descent the loss goes to 0 and p_min grows without bound (p_min increases as the "
        "loss decreases).",
        "Kendall tau(p_min, step) (and tau(loss, step) < 0)", st_p.get("tau"),
        f"tau(p_min) > 0 and tau(loss) < 0, both p < {s.alpha}", v, runs or [],
        {"p_min": st_p, "loss": st_l, "final_loss": loss[-1] if loss else None,
         "final_p_min": pm[-1] if pm else None}))
    nm = [num(r.get("normalized_margin")) for r in recs]
    final_ratio = (nm[-1] / optimum) if nm and optimum and math.isfinite(nm[-1]) else None
    verdict = "inconclusive" if final_ratio is None else ("pass" if final_ratio >= s.ratio_min else "fail")
    od = {"optimum": optimum, "final_normalized_margin": nm[-1] if nm else None, **(detail or {})}
    why = solver_problem(optimum_status, "the UFM nuclear-norm program")
    if why:
        verdict, od["reason"] = "inconclusive", why
    out.append(make_verdict(
        "1b", "1b.normalized_margin_optimum",
        "The UFM normalized margin p_min/(1/2(||W||^2+||H||^2)) approaches the optimum 1/||Z*||_* certified by "
        "the nuclear-norm program.",
        "final normalized margin / certified optimum", final_ratio, f">= {s.ratio_min}", verdict, runs or [], od))
    nc1 = [num(r.get("nc1_topk", r.get("nc1"))) for r in recs]
    v_t, st_t = trend_verdict(nc1, steps, direction=-1, alpha=s.alpha, **rule(s))
    final_nc1 = nc1[-1] if nc1 else None
    small = final_nc1 is not None and math.isfinite(final_nc1) and final_nc1 <= s.nc1_max
    verdict = "pass" if (v_t == "pass" and small) else ("fail" if (v_t == "fail" or (
        final_nc1 is not None and math.isfinite(final_nc1) and not small)) else "inconclusive")
    nc_final = {k: recs[-1].get(k) for k in recs[-1] if k.startswith("nc")} if recs else {}
    out.append(make_verdict(
        "1b", "1b.neural_collapse",
        "The UFM dynamics collapse: NC1 (within-class variability) decreases to ~0.",
        "final NC1 (Tr(Sigma_W Sigma_B^+)/K)", final_nc1,
        f"<= {s.nc1_max:g} and Kendall tau(NC1, step) < 0 with p < {s.alpha}", verdict, runs or [],
        {"nc1_trend": st_t, "final_nc": nc_final}))
    return out


def _run(out_dir: Path, s: Settings, ctx) -> list[dict]:
    from ncmargin.empirical.ufm import ufm_dynamics
    from ncmargin.solvers import ufm_svm

    K, n = int(s.K), int(s.n)
    d = int(s.d or K)
    y = np.repeat(np.arange(K), n)
    t0 = time.perf_counter()
    sol = ufm_svm(y, d=d)
    optimum = 1.0 / float(sol.objective)
    recs = ufm_dynamics(K, n, d, int(s.steps), lr=float(s.lr), init_scale=float(s.init_scale), step=s.step,
                        seed=int(s.seed), num_logs=int(s.num_records))
    recs = [dict(r) for r in recs]
    cert = {k: v for k, v in (sol.certificate or {}).items() if isinstance(v, (int, float, str, bool))}
    detail = {"K": K, "n": n, "d": d, "nuclear_norm_objective": float(sol.objective),
              "closed_form_objective": (K - 1) * math.sqrt(n), "certificate_duality_gap": cert.get("duality_gap")}
    verdicts = verdicts_1b(recs, optimum, s, detail=detail, optimum_status=sol.status)
    Claim1b(settings=dataclasses.asdict(s), K=K, n=n, d=d, nuclear_norm_objective=float(sol.objective),
            normalized_margin_optimum=optimum, closed_form_objective=(K - 1) * math.sqrt(n), certificate=cert,
            seconds=time.perf_counter() - t0, records=recs).write(Path(out_dir) / CLAIM1B_FILE)
    return verdicts


def section(out_dir: Path, verdicts: list[dict], doc: dict) -> str:
    """Key numbers of claim 1b from ``OUT/claim1b/ufm.json``."""
    data, why = read_stored(Path(out_dir) / CLAIM1B_FILE, Claim1b)
    if data is None:
        return f"_No records ({why})._"
    recs = data.get("records") or [{}]
    last = recs[-1]
    cert = data.get("certificate") or {}
    opt = data.get("normalized_margin_optimum")
    nm = last.get("normalized_margin")
    return "\n".join([
        (f"K = {data.get('K')}, n = {data.get('n')} per class, d = {fmt(data.get('d'))}; "
        f"{len(recs)} records up to step {fmt(last.get('step'))}."),
        "",
        table(["quantity", "value"], [
            ["nuclear-norm optimum ||Z*||_* (certified)", fmt(data.get("nuclear_norm_objective"), 8)],
            ["closed form (K−1)√n", fmt(data.get("closed_form_objective"), 8)],
            ["certificate: relative duality gap", fmt(cert.get("duality_gap"))],
            ["optimal normalized margin 1/||Z*||_*", fmt(opt, 6)],
            ["final normalized margin p_min/(½(||W||²+||H||²))", fmt(nm, 6)],
            ["ratio final/optimal", fmt(nm / opt if (nm and opt) else None, 6)],
            ["final loss", fmt(last.get("loss"))],
            ["final p_min", fmt(last.get("p_min"))],
            ["final NC1 (Tr(Σ_W Σ_B^+)/K)", fmt(last.get("nc1_topk", last.get("nc1")))],
            ["seconds", fmt(data.get("seconds"), 3)],
        ]),
    ])


CLAIM = register(Claim(
    id="1b", title="Claim 1b — CE → SVM in the unconstrained feature model (Gao et al. Thm 4.1)", order=20,
    settings_key="claim1b", Settings=Settings, run=_run, section=section, figures=("ce_svm_ufm",)))
