"""Claim-3 statistics on constructed alignment x seed tables (ncmargin.empirical.claims.claim3)."""

import numpy as np
import pytest

from ncmargin.empirical.claims.claim3 import claim3_verdicts, sweep_statistics


def _runs(table, predictors=None, excluded=()):
    """Run records of an A x S table of test accuracies (alignment ids a00.., seeds 0..)."""
    A, S = table.shape
    out = []
    for a in range(A):
        for s in range(S):
            ok = (a, s) not in excluded
            out.append({"run_id": f"a{a:02d}_s{s}", "run_dir": f"x/a{a:02d}_s{s}", "alignment": f"a{a:02d}",
                        "seed": s, "reached_tpt": ok, "final_test_acc": float(table[a, s]),
                        "final_train_acc": 1.0 if ok else 0.99, "final_train_loss": 1e-3,
                        "predictors": (predictors[a, s] if predictors is not None else {})})
    return out


def _doc(table, **kw):
    A, S = table.shape
    runs = _runs(table, **kw)
    ids = [f"a{a:02d}" for a in range(A)]
    st = sweep_statistics(runs, ids, list(range(S)), n_perm=1999, n_boot=300)
    return {"runs": runs, "alignments": [{"id": i} for i in ids], "seeds": list(range(S)), "stats": st,
            "excluded": [{"run_id": r["run_id"]} for r in runs if not r["reached_tpt"]]}


def test_known_alignment_effect_is_detected():
    rng = np.random.default_rng(1)
    A, S = 8, 3
    effect = np.linspace(-0.02, 0.02, A)[:, None]          # 4 points of accuracy between alignments
    T = 0.95 + effect + 0.003 * rng.standard_normal((A, S))  # seed noise 0.3 points
    doc = _doc(T)
    st = doc["stats"]
    assert st["anova"]["p_alignment"] < 1e-4 and st["permutation"]["p_value"] < 0.01
    assert st["anova"]["eta2_alignment"] > st["anova"]["eta2_seed"]
    assert st["verdict"]["alignment_matters_more_than_seed"] is True
    v = {x["id"]: x for x in claim3_verdicts(doc)}
    assert v["3.alignment_effect"]["verdict"] == "pass"
    assert v["3.terminal_phase"]["verdict"] == "pass"
    # eta2 of the three sources add up to 1 (exact decomposition of the additive model)
    an = st["anova"]
    assert an["eta2_alignment"] + an["eta2_seed"] + an["eta2_error"] == pytest.approx(1.0, abs=1e-12)


def test_no_alignment_effect_is_not_detected():
    """Pure noise plus a strong seed effect: at alpha = 0.05 the combined rule rejects rarely. Over 20
    seeded null tables the rule may reject by chance with probability <= 0.05 each (both tests must
    reject), so more than 4 rejections (binomial tail < 2%) would indicate a broken test."""
    rejections, fails = 0, 0
    for k in range(20):
        rng = np.random.default_rng(100 + k)
        T = 0.95 + 0.01 * rng.standard_normal((1, 3)) + 0.003 * rng.standard_normal((6, 3))
        doc = _doc(T)
        rejections += bool(doc["stats"]["verdict"]["alignment_matters_more_than_seed"])
        fails += claim3_verdicts(doc)[0]["verdict"] == "fail"
    assert rejections <= 4
    assert fails >= 10  # seed dominates and alignment is not significant in most tables -> "fail"


def test_excluded_run_drops_its_seed_column_and_is_reported():
    rng = np.random.default_rng(3)
    T = 0.95 + 0.003 * rng.standard_normal((4, 4))
    doc = _doc(T, excluded={(2, 1)})
    tab = doc["stats"]["table"]
    assert tab["dropped_seeds"] == [1] and tab["seeds"] == [0, 2, 3] and tab["dropped_alignments"] == []
    assert np.asarray(tab["test_acc"]).shape == (4, 3)
    assert "dropped every seed" in tab["method"]
    v = {x["id"]: x for x in claim3_verdicts(doc)}
    assert v["3.terminal_phase"]["verdict"] == "inconclusive"
    assert v["3.terminal_phase"]["value"] == pytest.approx(15 / 16)


def test_too_few_included_runs_gives_inconclusive_not_a_crash():
    T = np.full((2, 2), 0.9)
    doc = _doc(T, excluded={(0, 0), (1, 1)})
    assert doc["stats"]["verdict"] is None and "no complete" in doc["stats"]["error"]
    v = claim3_verdicts(doc)[0]
    assert v["id"] == "3.alignment_effect" and v["verdict"] == "inconclusive" and v["value"] is None


def test_predictor_correlations_and_plot_table():
    rng = np.random.default_rng(5)
    A, S = 8, 3
    score = np.linspace(1.0, 8.0, A)
    T = 0.97 - 0.003 * score[:, None] + 0.001 * rng.standard_normal((A, S))
    preds = np.empty((A, S), dtype=object)
    for a in range(A):
        for s in range(S):
            preds[a, s] = {"alignment_score": score[a] + 0.01 * rng.standard_normal(),
                           "normalized_margin_mean": float(rng.standard_normal())}
    doc = _doc(T, predictors=preds)
    pc = doc["stats"]["predictor_correlations"]
    assert pc["alignment_score"]["rho"] == pytest.approx(-1.0)
    assert pc["alignment_score"]["n"] == A and pc["alignment_score"]["runs"]["n"] == A * S
    assert pc["alignment_score"]["ci_low"] <= pc["alignment_score"]["ci_high"] <= -0.5
    v = {x["id"]: x for x in claim3_verdicts(doc)}
    assert v["3.predictor.alignment_score"]["verdict"] == "pass"
    assert v["3.predictor.normalized_margin_mean"]["verdict"] in ("fail", "inconclusive")
    rows = doc["stats"]["plot_table"]
    assert len(rows) == A * S and {"alignment", "seed", "included", "final_test_acc"} <= set(rows[0])


def test_predictors_are_not_judged_without_an_alignment_effect():
    rng = np.random.default_rng(7)
    A, S = 6, 3
    T = 0.95 + 0.003 * rng.standard_normal((A, S))
    preds = np.empty((A, S), dtype=object)
    for a in range(A):
        for s in range(S):
            preds[a, s] = {"alignment_score": float(-T[a].mean())}   # ranks the (noise) means perfectly
    doc = _doc(T, predictors=preds)
    v = {x["id"]: x for x in claim3_verdicts(doc)}
    assert v["3.alignment_effect"]["verdict"] != "pass"
    p = v["3.predictor.alignment_score"]
    assert p["value"] == pytest.approx(-1.0)   # still reported
    assert p["verdict"] == "inconclusive" and p["detail"]["rule_verdict"] == "pass"
    assert "no established alignment effect" in p["detail"]["reason"]
