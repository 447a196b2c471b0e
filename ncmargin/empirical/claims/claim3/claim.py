"""Claim 3, non-conservative generalization across ETF alignments (docs/theory.md §8, §10): its settings,
verdicts, verify step and report section. The sweep itself is :mod:`.sweep`."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ncmargin.markdown import fmt, table

from ..registry import Claim, register
from ..verdicts import correlation_verdict, make_verdict
from .stats import POWER_OUTCOME, PREDICTOR_DIRECTIONS, RULE, STAT_DEFAULTS, power_result
from .sweep import POWER_DEFAULTS, check_power_settings, load_sweep_preset, read_sweep_json, run_sweep

__all__ = ["Settings", "claim3_verdicts", "power_line", "section"]


@dataclass(frozen=True)
class Statistics:
    """Overrides of the sweep statistics (defaults: the sweep preset's, else stats.STAT_DEFAULTS)."""
    alpha: float | None = None
    n_perm: int | None = None
    n_boot: int | None = None
    level: float | None = None
    seed: int | None = None
    min_points: int | None = None

    def given(self) -> dict | None:
        d = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        return d or None


@dataclass(frozen=True)
class Settings:
    """Preset section ``claim3`` (all optional)."""
    sweep: Any = None          # a sweep preset name/path/dict or a list of them (default below)
    sweeps: Any = None         # the same, plural spelling
    alignments: int | None = None
    seeds: Any = None          # a count or a list of seeds
    alignment_mode: str | None = None
    set: dict | None = None    # training overrides for every run
    statistics: Statistics | None = None
    concentration: Any = True  # False skips the concentration check; a dict overrides its settings
    jobs: int | None = None    # training processes (default: verify's --jobs when > 1, else min(2, CPUs))
    # power of the 3.alignment_effect verdict (docs/theory.md §13): the smallest effect of interest (SD of the
    # alignment effects, accuracy points) and the power the MDE is computed for; default: the sweep preset's
    # keys of the same name, else sweep.POWER_DEFAULTS (0.5 points, 0.8)
    sesoi: float | None = None
    target_power: float | None = None

    def __post_init__(self):
        check_power_settings({"sesoi": self.sesoi, "target_power": self.target_power}, "preset section claim3")


def _power(stats: dict, st: dict, power: dict | None) -> dict | None:
    """The stored ``stats["power"]`` (an ncmargin.store.AlignmentPower), recomputed from the stored table when
    the verify settings ask for another SESOI, power, α or number of permutations than it was made with, or
    when an older sweep.json has none; None without a complete table."""
    tab = (stats.get("table") or {}).get("test_acc")
    if not tab:
        return None
    pw = stats.get("power")
    want = {"sesoi": float((power or {}).get("sesoi") or (pw or {}).get("sesoi") or POWER_DEFAULTS["sesoi"]),
            "power": float((power or {}).get("target_power") or (pw or {}).get("power")
                           or POWER_DEFAULTS["target_power"]),
            "alpha": float(st["alpha"]), "n_perm": int(st["n_perm"])}
    if pw and "error" not in pw and all(pw.get(k) == v for k, v in want.items()):
        return pw
    return power_result(tab, sesoi=want["sesoi"], target_power=want["power"], alpha=want["alpha"],
                        n_perm=want["n_perm"], seed=int(st["seed"]))


def claim3_verdicts(doc: dict, statistics: dict | None = None, *, label: str | None = None,
                    power: dict | None = None) -> list[dict]:
    """Claim-3 verdicts (docs/results.md ``verdicts.json`` entries) from a sweep document.

    - ``3.alignment_effect``: :data:`RULE` through ``ncmargin.theory.alignment_effect`` on the table in
      percent (docs/theory.md §13): effect → pass, no_effect (equivalence to σ_α < ``sesoi`` shown) → fail,
      inconclusive (the reason states the MDE) → inconclusive; also inconclusive when no complete 2×2 table
      of included runs exists. ``detail["power"]`` is the ncmargin.store.AlignmentPower record; ``power``
      = ``{"sesoi", "target_power"}`` overrides the sweep's.
    - ``3.terminal_phase``: every run ended at 100% train accuracy (pass), else inconclusive with the list.
    - ``3.predictor.<name>``: Spearman ρ across alignment means with the predicted sign (score: negative,
      normalized margins: positive), p < α (three-valued rule of ..verdicts); judged only
      when ``3.alignment_effect`` passed — otherwise inconclusive (the rule's result kept in the detail).
    - ``3.concentration.fresh`` / ``3.concentration.trained``: the bound held at every grid point."""
    suffix = f".{label}" if label else ""
    stats = doc.get("stats") or {}
    st = {**STAT_DEFAULTS, **(stats.get("settings") or {}), **(statistics or {})}
    alpha = float(st["alpha"])
    run_ids = [r.get("run_id") or Path(r["run_dir"]).name for r in doc.get("runs", [])]
    out = []
    an, perm = stats.get("anova"), stats.get("permutation")
    pw = _power(stats, st, power)
    if an and perm and pw and "error" not in pw:
        v = POWER_OUTCOME[pw["verdict"]]
        value = pw["p_permutation"]
        detail = {"reason": pw["reason"], "power": pw, "anova": an, "permutation": perm,
                  "table": stats.get("table"), "spread": stats.get("spread"),
                  "train_loss_anova": stats.get("train_loss_anova"),
                  "alignment_means": stats.get("alignment_means"), "rule": RULE.format(alpha=alpha)}
    else:
        v, value = "inconclusive", None
        detail = {"reason": stats.get("error") or (pw or {}).get("error") or "no statistics", "power": pw}
    effect = v
    out.append(make_verdict(
        "3", f"3.alignment_effect{suffix}",
        "Networks with a fixed simplex-ETF classifier that all reach 100% train accuracy generalize differently "
        "depending on the alignment of labels with the ETF vertices: alignment explains more variance of the "
        "final test accuracy than the seed does.",
        "within-seed permutation p-value of the alignment effect (ANOVA p, omega2, MDE, equivalence p and power "
        "in detail)", value,
        RULE.format(alpha=alpha), v, run_ids, detail))
    runs = doc.get("runs", [])
    n_ok = sum(bool(r.get("reached_tpt")) for r in runs)
    frac = n_ok / len(runs) if runs else None
    out.append(make_verdict(
        "3", f"3.terminal_phase{suffix}",
        "Every sweep run reaches the terminal phase (100% train accuracy at its final epoch); excluded runs "
        "are left out of the statistics.",
        "fraction of runs with final train accuracy 1", frac, "= 1",
        "inconclusive" if frac is None or frac < 1 else "pass", run_ids,
        {"excluded": doc.get("excluded", []), "table": stats.get("table")}))
    for name, pc in (stats.get("predictor_correlations") or {}).items():
        direction = PREDICTOR_DIRECTIONS.get(name, 1)
        xs, ys = [], []
        for a in doc.get("alignments", []):
            rs = [r for r in runs if r["alignment"] == a["id"] and r.get("reached_tpt")
                  and r.get("final_test_acc") is not None]
            if rs:
                xs.append(float(np.mean([r["predictors"][name] for r in rs])))
                ys.append(float(np.mean([r["final_test_acc"] for r in rs])))
        vv, vst = correlation_verdict(xs, ys, alpha=alpha, min_points=int(st["min_points"]), direction=direction)
        extra = {"rule_verdict": vv}
        if effect != "pass":  # nothing to predict: report the correlation, do not judge the predictor on noise
            vv = "inconclusive"
            extra["reason"] = (f"no established alignment effect (3.alignment_effect = {effect}): the ranking of "
                               "alignment means that are not shown to differ is not a target for a predictor")
        out.append(make_verdict(
            "3", f"3.predictor.{name}{suffix}",
            f"The docs/theory.md §8 predictor {name} (train features, fixed ETF) ranks the alignments by test accuracy "
            f"({'smaller' if direction < 0 else 'larger'} = better).",
            "Spearman rho(predictor, test accuracy) across alignment means", pc.get("rho"),
            f"rho {'<' if direction < 0 else '>'} 0 and p < {alpha} (n >= {st['min_points']} alignments)", vv,
            run_ids, {**pc, "verdict_stats": vst, **extra}))
    conc = doc.get("concentration") or {}
    for part, stmt in (("fresh", ("On fresh i.i.d. bounded samples with a known mean, the empirical "
                                  "P(||mu_hat - mu|| >= eps) stays below the concentration bound "
                                  "2d exp(-n eps^2/(2 d^2 rho^2)) at every (n, eps) of the grid.")),
                       ("trained", ("On the features a trained network produces for its own training sample "
                                    "(not independent of the network: the caveat of the argument), the "
                                    "empirical P(||mu_hat - mu|| >= eps) stays below the same bound."))):
        rows = conc.get(part) or []
        if not rows:
            continue
        held = sum(bool(r["bound_holds"]) for r in rows)
        nt = [r for r in rows if r.get("nontrivial")]
        out.append(make_verdict(
            "3", f"3.concentration.{part}{suffix}", stmt, "fraction of grid points where the bound holds "
            "(empirical <= bound + 3 s.e.)", held / len(rows), "= 1", "pass" if held == len(rows) else "fail", [],
            {"summary": (conc.get("summary") or {}).get(part), "nontrivial_points": len(nt),
             "held_nontrivial": sum(bool(r["bound_holds"]) for r in nt),
             "max_empirical_minus_bound": max(r["empirical"] - min(r["bound"], 1.0) for r in rows),
             "info": conc.get(f"{part}_info")}))
    return out


# ---------------------------------------------------------------------------------- verify wiring

def _sweeps(preset: dict, s: Settings) -> list:
    sw = s.sweep if s.sweep is not None else s.sweeps
    if sw is None:
        sw = ["sweep_paper_cifar10", "sweep_paper_cifar100"] if preset.get("name") == "paper" else ["sweep_quick"]
    return [sw] if isinstance(sw, (str, dict)) else list(sw)


def _run(out_dir: Path, s: Settings, ctx) -> list[dict]:
    """One sweep writes ``OUT/sweep/sweep.json``; several write ``OUT/sweep/<name>/sweep.json``."""
    sweeps = _sweeps(ctx.preset, s)
    stats = s.statistics.given() if s.statistics is not None else None
    pw = {k: v for k, v in (("sesoi", s.sesoi), ("target_power", s.target_power)) if v is not None} or None
    over = dict(s.set or {})
    # verify's --jobs when given (> 1), else claim3.jobs, else min(2, CPU count): the quick sweep is 40
    # small single-threaded runs, so two processes halve its wall time on the 2-core reference machine
    jobs = int(ctx.jobs) if int(ctx.jobs or 1) > 1 else int(s.jobs if s.jobs is not None
                                                             else min(2, os.cpu_count() or 1))
    if ctx.device:
        over["device"] = ctx.device
    out = []
    for i, sw in enumerate(sweeps):
        pre = load_sweep_preset(sw)
        name = str(pre.get("name", f"sweep{i}"))
        label = None if len(sweeps) == 1 else name.replace("sweep_", "")
        sdir = Path(out_dir) / "sweep" if len(sweeps) == 1 else Path(out_dir) / "sweep" / label
        t0 = time.perf_counter()
        doc = run_sweep(pre, sdir, alignments=s.alignments, seeds=s.seeds, alignment_mode=s.alignment_mode,
                        overrides=over, jobs=jobs, concentration=(s.concentration if i == 0 else False),
                        statistics=stats, train_fn=getattr(ctx, "train_fn", None), log=ctx.log, power=pw)
        ctx.timings[f"sweep_{label or name.replace('sweep_', '')}_s"] = time.perf_counter() - t0
        for k in ("trained", "resumed", "reused"):
            getattr(ctx, k).extend(f"sweep/{n}" for n in doc.get("run_status", {}).get(k, []))
        st = doc["stats"]
        p3 = st.get("power") or {}
        ctx.log(f"[verify] claim 3 {name}: {len(doc['runs'])} runs, {len(doc['excluded'])} excluded, "
                f"perm p = {(st.get('permutation') or {}).get('p_value')}, {p3.get('verdict')}, "
                f"MDE = {p3.get('mde')} points")
        out += claim3_verdicts(doc, stats, label=label, power=pw)
    return out


def power_line(pw: dict | None) -> str | None:
    """One report line with the design and the power behind the verdict (docs/theory.md §13)."""
    if not pw:
        return None
    if "error" in pw:
        return f"Power: not computed ({pw['error']})."
    A, S = pw["design"]
    return (f"Power (docs/theory.md §13): A×S = {A}×{S}; MDE = {fmt(pw['mde'], 3)} points (σ_α of the alignment "
            f"effects; max−min range {fmt(pw['mde_range_half'], 3)}–{fmt(pw['mde_range_two'], 3)} points; "
            f"partial ω² {fmt(pw['mde_omega2'], 3)}) at {fmt(100 * pw['power'], 3)}% power and α = {pw['alpha']}; "
            f"residual SD {fmt(pw['sigma'], 3)} points; power for the SESOI {fmt(pw['sesoi'], 3)} points = "
            f"{fmt(pw['power_at_sesoi'], 3)}; equivalence p = {fmt(pw['equivalence_p'], 3)}; ANOVA p = "
            f"{fmt(pw['p_anova'], 3)}, permutation p = {fmt(pw['p_permutation'], 3)}; ω² alignment/seed = "
            f"{fmt(pw['omega2_alignment'], 3)}/{fmt(pw['omega2_seed'], 3)} → **{pw['verdict']}** ({pw['reason']}).")


def section(out_dir: Path, verdicts: list[dict], doc: dict) -> str:
    """report.md key numbers of claim 3 (the sweep table, statistics, predictors, concentration)."""
    paths = [Path(out_dir) / "sweep" / "sweep.json"] + sorted((Path(out_dir) / "sweep").glob("*/sweep.json"))
    parts = []
    for p in paths:
        if not p.is_file():
            continue
        try:
            sw = read_sweep_json(p)
        except ValueError as exc:
            parts.append(f"`{p}`: {exc}")
            continue
        st = sw.get("stats") or {}
        rel = p.relative_to(out_dir) if p.is_relative_to(out_dir) else p
        parts.append(f"Sweep `{rel}`: {len(sw['alignments'])} alignments ({sw.get('alignment_mode')}) × "
                     f"{len(sw['seeds'])} seeds, {len(sw['runs'])} runs, {len(sw['excluded'])} excluded; "
                     f"wall time {fmt((sw.get('timings') or {}).get('total_s'), 3)} s.")
        an, pm = st.get("anova"), st.get("permutation")
        if an and pm:
            parts.append(table(["statistic", "alignment", "seed"], [
                ["ANOVA F", fmt(an["F_alignment"]), fmt(an["F_seed"])],
                ["ANOVA p", fmt(an["p_alignment"]), fmt(an["p_seed"])],
                ["η²", fmt(an["eta2_alignment"]), fmt(an["eta2_seed"])],
                ["partial η²", fmt(an["partial_eta2_alignment"]), fmt(an["partial_eta2_seed"])],
                ["ω²", fmt(an.get("omega2_alignment")), fmt(an.get("omega2_seed"))],
                ["permutation p", fmt(pm["p_value"]), "–"]]))
            tab = st.get("table") or {}
            parts.append(f"Outcome: **{st['verdict'].get('outcome')}**. Table: {tab.get('method')}; dropped seeds "
                         f"{tab.get('dropped_seeds')}, dropped alignments {tab.get('dropped_alignments')}. "
                         f"Rule: {st['verdict']['rule']}.")
            pl = power_line(st.get("power"))
            if pl:
                parts.append(pl)
            tl = st.get("train_loss_anova")
            if tl:
                parts.append(f"Premise (equal train loss): final train loss {fmt(tl['loss_min'])} to "
                             f"{fmt(tl['loss_max'])}; ANOVA of log10 loss: alignment p = {fmt(tl['p_alignment'])}, "
                             f"η² = {fmt(tl['eta2_alignment'])}; seed p = {fmt(tl['p_seed'])}.")
        elif st.get("error"):
            parts.append(f"No statistics: {st['error']}")
        means = st.get("alignment_means") or []
        if means:
            parts.append(table(["alignment", "n", "mean test acc", "std", "min", "max"],
                                [[m["alignment"], m["n"], fmt(m["mean_test_acc"]), fmt(m["std_test_acc"]),
                                  fmt(m["min_test_acc"]), fmt(m["max_test_acc"])] for m in means]))
        pc = st.get("predictor_correlations") or {}
        if pc:
            rows = []
            for k, c in pc.items():
                r = c.get("runs") or {}
                rows.append([k, fmt(c.get("rho")), fmt(c.get("p")),
                             f"[{fmt(c.get('ci_low'), 3)}, {fmt(c.get('ci_high'), 3)}]",
                             fmt(r.get("rho")), fmt(r.get("p")),
                             f"[{fmt(r.get('ci_low'), 3)}, {fmt(r.get('ci_high'), 3)}]"])
            parts.append(table(["predictor", "ρ (alignment means)", "p", "95% CI", "ρ (runs)", "p", "95% CI"],
                                rows))
        conc = sw.get("concentration") or {}
        if conc.get("summary"):
            rows = [[k, v["points"], v["held"], v["nontrivial_points"], v["held_nontrivial"]]
                    for k, v in conc["summary"].items()]
            parts.append("Concentration check (bound 2d·exp(−nε²/(2d²ρ²)), held = empirical ≤ bound + 3 s.e.):\n\n"
                         + table(["features", "grid points", "held", "non-trivial (bound < 1)",
                                   "held (non-trivial)"], rows))
    return "\n\n".join(parts) if parts else "No `sweep/sweep.json` found."


CLAIM = register(Claim(
    id="3", title="Claim 3 — non-conservative generalization across ETF alignments (docs/theory.md §8, §10)",
    order=50, settings_key="claim3", Settings=Settings, run=_run, section=section,
    figures=("alignment", "concentration", "predictors")))
