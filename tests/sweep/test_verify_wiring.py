"""Claim 3 inside `ncmargin verify`: registration, verdicts.json entries, report.md section."""

import json

import numpy as np
import pytest
from scipy import stats as st

from ncmargin.empirical.claims.claim3.stats import omega_squared
from ncmargin.empirical.claims.claim3.stats import rank_rho as _rho
from ncmargin.theory.stats import two_way_anova

from .test_sweep_runs import TINY


def test_claim_3_is_registered():
    from ncmargin.empirical.claims import all_claims

    assert "3" in [c.id for c in all_claims()]


def test_fast_rank_correlation_equals_scipy():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 30).astype(float)   # with ties
    y = x + rng.standard_normal(30)
    assert _rho(x, y) == pytest.approx(st.spearmanr(x, y).statistic, abs=1e-12)
    assert np.isnan(_rho(np.ones(5), np.arange(5.0)))


def test_omega_squared_is_unbiased_where_eta_squared_is_not():
    """Null tables 8 x 3: mean eta2_alignment is about df_A/df_T = 7/23, mean omega2 is near 0 (truncated at 0,
    so slightly positive). 200 tables: the standard error of the eta2 mean is < 0.01."""
    rng = np.random.default_rng(0)
    eta, om = [], []
    for _ in range(200):
        an = two_way_anova(rng.standard_normal((8, 3)))
        eta.append(an["alignment"]["eta2"])
        om.append(omega_squared(an)["alignment"])
    assert np.mean(eta) == pytest.approx(7 / 23, abs=0.04)
    assert np.mean(om) < 0.08
    # a strong effect: omega2 close to the true variance share 4 / (4 + 1) = 0.8
    T = 2 * np.arange(8.0)[:, None] / np.arange(8.0).std() + rng.standard_normal((8, 200))
    assert omega_squared(two_way_anova(T))["alignment"] == pytest.approx(0.8, abs=0.05)


def test_verify_runs_claim_3_and_reports_it(tmp_path):
    from ncmargin.pipeline import verify

    preset = {"name": "tiny", "runs": {}, "claims": ["3"],
              "claim3": {"sweep": TINY, "jobs": 1, "concentration": {
                  "fresh": {"d": 2, "halfwidth": 1.0, "ns": [4, 64], "eps": [0.2, 0.5], "trials": 200},
                  "trained": {"K": 3, "input_dim": 4, "hidden": 8, "ns": [5], "eps": [0.2], "trials": 2,
                              "steps": 10, "population_per_class": 200}}}}
    doc = verify(preset, tmp_path, claims="3", quiet=True, figures=False)
    ids = {v["id"]: v for v in doc["verdicts"]}
    assert {"3.alignment_effect", "3.terminal_phase", "3.predictor.alignment_score",
            "3.concentration.fresh", "3.concentration.trained"} <= set(ids)
    assert ids["3.alignment_effect"]["verdict"] in ("pass", "fail", "inconclusive")
    assert ids["3.concentration.fresh"]["verdict"] == "pass"
    assert len(ids["3.alignment_effect"]["runs"]) == 4
    sweep = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert sweep["schema"] == "ncmargin.sweep/1" and len(sweep["runs"]) == 4
    report = (tmp_path / "report.md").read_text()
    assert "Claim 3" in report and "permutation p" in report and "Concentration check" in report
