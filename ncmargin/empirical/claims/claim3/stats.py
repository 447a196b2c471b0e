"""Claim-3 statistics of a sweep (docs/theory.md §8, §10): the alignment × seed table, the additive
two-way ANOVA and the within-seed permutation test, ω², the premise check on the train loss and the
predictor correlations with bootstrap intervals."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["POWER_OUTCOME", "PREDICTOR_DIRECTIONS", "RULE", "STAT_DEFAULTS", "omega_squared", "outcome", "power_result", "predictor_correlations",
           "rank_rho", "sweep_statistics"]

PREDICTOR_DIRECTIONS = {"alignment_score": -1, "normalized_margin_mean": +1, "normalized_margin_min": +1}

STAT_DEFAULTS = {"alpha": 0.05, "n_perm": 9999, "n_boot": 2000, "level": 0.95, "seed": 0, "min_points": 5}


def rank_rho(x, y) -> float:
    """Spearman's rho as the Pearson correlation of average ranks (the definition scipy.stats.spearmanr
    uses; tested equal to it); NaN when either input is constant. Fast enough for thousands of bootstrap
    replicates."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x), rankdata(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _corr_with_ci(x, y, *, n_boot: int, level: float, seed: int) -> dict:
    from ncmargin.theory.stats import bootstrap_ci, spearman

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3:
        return {"rho": None, "p": None, "ci_low": None, "ci_high": None, "n": int(x.size),
                "reason": f"{x.size} points < 3"}
    st = spearman(x, y)
    ci = bootstrap_ci(rank_rho, x, y, n_boot=n_boot, level=level, seed=seed)
    return {"rho": st["rho"], "p": st["p_value"], "ci_low": ci["low"], "ci_high": ci["high"], "n": int(x.size),
            "level": level, "n_boot": n_boot, "n_valid_boot": ci["n_valid"]}


def predictor_correlations(runs: list[dict], alignment_ids: list[str], *, n_boot: int = 2000,
                           level: float = 0.95, seed: int = 0) -> dict:
    """Spearman ρ of each predictor with the final test accuracy, with a percentile-bootstrap interval:
    across alignments (predictor and accuracy averaged over an alignment's included seeds; the headline
    numbers ``rho``/``p``/``ci_low``/``ci_high``, docs/theory.md §8) and across runs (``runs`` sub-dict)."""
    inc = [r for r in runs if r.get("reached_tpt") and r.get("final_test_acc") is not None]
    names = list(dict.fromkeys(k for r in inc for k in (r.get("predictors") or {})))
    out = {}
    for j, name in enumerate(names):
        x = [float(r["predictors"].get(name, np.nan)) for r in inc]
        y = [float(r["final_test_acc"]) for r in inc]
        per_run = _corr_with_ci(x, y, n_boot=n_boot, level=level, seed=seed + 2 * j)
        xm, ym = [], []
        for a in alignment_ids:
            rs = [r for r in inc if r["alignment"] == a]
            if rs:
                xm.append(float(np.mean([r["predictors"].get(name, np.nan) for r in rs])))
                ym.append(float(np.mean([r["final_test_acc"] for r in rs])))
        per_al = _corr_with_ci(xm, ym, n_boot=n_boot, level=level, seed=seed + 2 * j + 1)
        out[name] = {**per_al, "unit": "alignment means", "expected_sign": PREDICTOR_DIRECTIONS.get(name, 0),
                     "runs": {**per_run, "unit": "runs"}}
    return out


def sweep_statistics(runs: list[dict], alignment_ids: list[str], seeds: list[int], *, alpha: float = 0.05,
                     n_perm: int = 9999, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                     min_points: int = 5, sesoi: float = 0.5, target_power: float = 0.8) -> dict:
    """Statistics of a sweep (docs/theory.md §10): the alignment × seed table of final test accuracy of the
    included runs, made complete by dropping seeds (else alignments) with an excluded run; the additive
    two-way ANOVA and the within-seed permutation test (``alignment_effect_verdict``); the same ANOVA on
    log10 of the final train loss (the claim's premise: equal loss); the predictor correlations; and a
    plot-ready ``plot_table`` (a list of flat rows, one per run, CSV-friendly); ``power``: the verdict with
    its power (``ncmargin.theory.alignment_effect`` on the table in percent, smallest effect of interest
    ``sesoi`` points, MDE at ``target_power``; docs/theory.md §13), an ``ncmargin.store.AlignmentPower``."""
    from ncmargin.theory.stats import alignment_effect_verdict, complete_table, two_way_anova

    aidx = {a: i for i, a in enumerate(alignment_ids)}
    sidx = {s: j for j, s in enumerate(seeds)}
    T = np.full((len(alignment_ids), len(seeds)), np.nan)
    Lt = np.full_like(T, np.nan)
    for r in runs:
        if r.get("reached_tpt") and r.get("final_test_acc") is not None and r["alignment"] in aidx \
                and r["seed"] in sidx:
            T[aidx[r["alignment"]], sidx[r["seed"]]] = float(r["final_test_acc"])
            loss = r.get("final_train_loss")
            Lt[aidx[r["alignment"]], sidx[r["seed"]]] = math.log10(loss) if loss and loss > 0 else np.nan
    plot_rows = []
    for r in runs:
        acc = r.get("final_test_acc")
        row = {"alignment": r["alignment"], "seed": r["seed"], "included": bool(r.get("reached_tpt")),
               "final_test_acc": acc, "final_train_acc": r.get("final_train_acc"),
               "final_train_loss": r.get("final_train_loss")}
        row.update({k: v for k, v in (r.get("predictors") or {}).items()})
        plot_rows.append(row)
    means = []
    for a in alignment_ids:
        v = T[aidx[a]][np.isfinite(T[aidx[a]])]
        means.append({"alignment": a, "n": int(v.size), "mean_test_acc": float(v.mean()) if v.size else None,
                      "std_test_acc": float(v.std(ddof=1)) if v.size > 1 else None,
                      "min_test_acc": float(v.min()) if v.size else None,
                      "max_test_acc": float(v.max()) if v.size else None})
    stats: dict[str, Any] = {"plot_table": plot_rows, "alignment_means": means,
                             "settings": {"alpha": alpha, "n_perm": n_perm, "n_boot": n_boot, "level": level,
                                          "seed": seed}}
    table = None
    method = None
    for drop in ("seeds", "alignments"):
        try:
            table = complete_table(T, drop=drop)
            method = drop
            break
        except ValueError as exc:
            err = str(exc)
    if table is None:
        stats["error"] = (f"no complete 2x2 alignment x seed table of runs with 100% train accuracy: {err}")
        stats["verdict"] = None
        stats["predictor_correlations"] = predictor_correlations(runs, alignment_ids, n_boot=n_boot,
                                                                  level=level, seed=seed)
        return stats
    kept_a = [alignment_ids[i] for i in table["kept_alignments"]]
    kept_s = [seeds[j] for j in table["kept_seeds"]]
    Tc = table["table"]
    stats["table"] = {"alignments": kept_a, "seeds": kept_s, "test_acc": Tc.tolist(),
                      "missing_cells": int(np.isnan(T).sum()), "method": (
                          "complete" if not np.isnan(T).any() else f"dropped every {method[:-1]} with an excluded run"),
                      "dropped_seeds": [seeds[j] for j in table["dropped_seeds"]],
                      "dropped_alignments": [alignment_ids[i] for i in table["dropped_alignments"]]}
    ver = alignment_effect_verdict(Tc, alpha=alpha, n_perm=n_perm, seed=seed)
    an = ver["anova"]
    om = omega_squared(an)
    stats["anova"] = {"p_alignment": an["alignment"]["p_value"], "p_seed": an["seed"]["p_value"],
                      "F_alignment": an["alignment"]["F"], "F_seed": an["seed"]["F"],
                      "eta2_alignment": an["alignment"]["eta2"], "eta2_seed": an["seed"]["eta2"],
                      "partial_eta2_alignment": an["alignment"]["partial_eta2"],
                      "partial_eta2_seed": an["seed"]["partial_eta2"],
                      "df_alignment": an["alignment"]["df"], "df_seed": an["seed"]["df"],
                      "df_error": an["error"]["df"], "ss_alignment": an["alignment"]["ss"],
                      "ss_seed": an["seed"]["ss"], "ss_error": an["error"]["ss"], "ss_total": an["total"]["ss"],
                      "eta2_error": an["error"]["ss"] / an["total"]["ss"] if an["total"]["ss"] > 0 else None,
                      "omega2_alignment": om["alignment"], "omega2_seed": om["seed"]}
    stats["permutation"] = {"p_value": ver["permutation_p_alignment"], "n_perm": ver["n_perm"],
                            "statistic": "SS_alignment (within-seed permutations)", "seed": seed}
    pa, pp = an["alignment"]["p_value"], ver["permutation_p_alignment"]
    more = om["alignment"] > om["seed"]
    pw = power_result(Tc, sesoi=sesoi, target_power=target_power, alpha=alpha, n_perm=n_perm, seed=seed)
    stats["power"] = pw
    stats["verdict"] = {
        "alignment_matters_more_than_seed": bool(pa < alpha and pp < alpha and more),
        "outcome": POWER_OUTCOME.get(pw.get("verdict"), "inconclusive"),
        "rule": RULE.format(alpha=alpha),
        # the rule before issue 14 (fail iff both p >= alpha: absence of evidence read as a negative), kept
        # for comparison with older sweep.json files
        "both_p_rule_outcome": outcome(pa, pp, more, alpha),
        "eta2_rule_verdict": ver["verdict"], "eta2_rule": ver["rule"], "alpha": alpha}
    stats["spread"] = {"test_acc_range_of_alignment_means": float(np.ptp(Tc.mean(axis=1))),
                       "test_acc_range_of_seed_means": float(np.ptp(Tc.mean(axis=0))),
                       "test_acc_std_all": float(Tc.std(ddof=1))}
    Lc = Lt[np.ix_(table["kept_alignments"], table["kept_seeds"])]
    if np.isfinite(Lc).all():
        la = two_way_anova(Lc)
        stats["train_loss_anova"] = {"of": "log10 final train loss", "p_alignment": la["alignment"]["p_value"],
                                     "eta2_alignment": la["alignment"]["eta2"], "p_seed": la["seed"]["p_value"],
                                     "eta2_seed": la["seed"]["eta2"],
                                     "loss_min": float(10 ** Lc.min()), "loss_max": float(10 ** Lc.max())}
    stats["predictor_correlations"] = predictor_correlations(runs, alignment_ids, n_boot=n_boot, level=level,
                                                             seed=seed)
    return stats


RULE = ("pass (effect) iff ANOVA p_alignment < {alpha} and within-seed permutation p < {alpha} and "
        "omega2_alignment > omega2_seed; fail (no_effect) iff equivalence to sigma_alpha < sesoi is shown "
        "(equivalence p < {alpha}); inconclusive otherwise, the reason stating the MDE (underpowered, the tests "
        "disagree, or seed dominates)")
# ncmargin.theory.alignment_effect verdicts -> verdicts.json values (docs/theory.md §10, §13)
POWER_OUTCOME = {"effect": "pass", "no_effect": "fail", "inconclusive": "inconclusive"}


def power_result(table_fraction, *, sesoi: float, target_power: float, alpha: float, n_perm: int,
                 seed: int) -> dict:
    """``ncmargin.theory.alignment_effect`` on a complete A×S table of test accuracy stored as **fractions**
    (sweep.json), converted to percent, as an ``ncmargin.store.AlignmentPower`` dict; ``{"error": ...}``
    when it cannot be computed (e.g. an exactly additive table)."""
    from ncmargin.store import AlignmentPower
    from ncmargin.theory import alignment_effect

    try:
        res = alignment_effect(100.0 * np.asarray(table_fraction, dtype=np.float64), sesoi=float(sesoi),
                               alpha=float(alpha), power=float(target_power), n_perm=int(n_perm), seed=int(seed))
    except ValueError as exc:
        return {"error": str(exc), "sesoi": float(sesoi), "power": float(target_power)}
    return dict(AlignmentPower(res.to_dict(), _where="stats.power"))


def omega_squared(anova: dict) -> dict:
    """ω² of each factor of an additive two-way ANOVA (``ncmargin.theory.stats.two_way_anova`` output):
    ``ω²_f = (SS_f − df_f·MS_E) / (SS_T + MS_E)`` (Hays 1963; Olejnik & Algina 2003, Table 1), the
    less biased estimate of the variance share than η² = SS_f/SS_T, whose null expectation is about
    df_f/df_T: with 8 alignments and 3 seeds η²_alignment ≈ 0.30 and η²_seed ≈ 0.09 under no effect at
    all, so comparing η² favours the factor with more levels. Negative estimates are reported as 0."""
    ms_e, ss_t = anova["error"]["ms"], anova["total"]["ss"]
    out = {}
    for f in ("alignment", "seed"):
        if ss_t + ms_e <= 0:
            out[f] = float("nan")
        else:
            out[f] = max(0.0, (anova[f]["ss"] - anova[f]["df"] * ms_e) / (ss_t + ms_e))
    return out


def outcome(p_anova: float, p_perm: float, more: bool, alpha: float) -> str:
    if p_anova < alpha and p_perm < alpha and more:
        return "pass"
    if p_anova >= alpha and p_perm >= alpha:
        return "fail"
    return "inconclusive"
