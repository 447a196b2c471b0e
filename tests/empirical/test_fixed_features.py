"""Tests of ncmargin.empirical.fixed_features (claim 1a: GD on CE over W converges to the SVM direction)."""

import numpy as np
import pytest

from ncmargin.empirical.fixed_features import ce_gd_fixed_features, record_steps
from ncmargin.solvers import multiclass_svm
from ncmargin.theory import ce_loss, ce_pmin_sandwich, simplex_etf
from ncmargin.theory.stats import kendall_trend


def _clusters(K=3, d=5, n=10, seed=0, noise=0.6):
    rng = np.random.default_rng(seed)
    M = simplex_etf(K, d, seed=seed)
    y = np.repeat(np.arange(K), n)
    H = M[y] + noise * rng.normal(size=(K * n, d)) / np.sqrt(d)
    return H, y


@pytest.fixture(scope="module")
def case():
    H, y = _clusters()
    sol = multiclass_svm(H, y)
    assert sol.status == "optimal"
    return H, y, sol.W


def test_record_steps_log_spaced():
    r = record_steps(100_000, n=30)
    assert r[0] == 0 and r[1] == 1 and r[-1] == 100_000 and np.all(np.diff(r) > 0)
    assert len(r) <= 33


def test_angle_to_svm_decreases_and_ratio_approaches_one(case):
    H, y, Ws = case
    rec = ce_gd_fixed_features(H, y, W_star=Ws, steps=20_000)
    late = [r for r in rec if r["step"] >= 10]
    ang = np.array([r["angle_deg"] for r in late])
    tr = kendall_trend(ang, [r["step"] for r in late])
    assert tr["tau"] < -0.9 and tr["p_value"] < 1e-6  # monotone decrease (slow: 1/log t)
    assert ang[-1] < ang[0]
    assert all(r["margin_ratio"] <= 1 + 1e-6 for r in late)  # W* maximizes p_min/||W|| (solver tol)
    # normalized steps get much closer in the same number of steps (Nacson et al. 2019)
    recn = ce_gd_fixed_features(H, y, W_star=Ws, steps=20_000, schedule="normalized")
    assert recn[-1]["angle_deg"] < 0.5 * rec[-1]["angle_deg"]
    assert recn[-1]["margin_ratio"] > rec[-1]["margin_ratio"]
    assert recn[-1]["margin_ratio"] <= 1 + 1e-6


def test_recorded_loss_matches_theory_ce_and_sandwich(case):
    H, y, Ws = case
    rec = ce_gd_fixed_features(H, y, W_star=Ws, steps=3000, schedule="normalized", record=[0, 10, 3000])
    assert rec[0]["loss"] == pytest.approx(np.log(3), rel=1e-14)  # zero init: uniform softmax
    assert rec[-1]["loss"] < 1e-8  # deep in the terminal phase
    for r in rec:  # the exact CE / p_min sandwich (docs/theory.md §2) holds at every record
        assert ce_pmin_sandwich(r["loss"], r["p_min"], len(y), 3)["holds"]


def test_loss_precision_against_ce_loss_at_known_W(case):
    H, y, Ws = case
    # one recorded step from a given W0: the step-0 record evaluates the loss at W0 exactly
    for scale in (1.0, 10.0, 60.0):
        rec = ce_gd_fixed_features(H, y, W_star=Ws, steps=1, W0=scale * Ws, record=[0])
        assert rec[0]["loss"] == pytest.approx(ce_loss(H, y, scale * Ws), rel=1e-12)
        assert rec[0]["angle_deg"] == pytest.approx(0.0, abs=1e-6)
        assert rec[0]["margin_ratio"] == pytest.approx(1.0, rel=1e-6)


def test_unit_etf_closed_form_direction():
    # features on a unit ETF: W* = ((K-1)/K) M and GD from zero stays on that ray (angle 0)
    K = 4
    M = simplex_etf(K, 6)
    y = np.repeat(np.arange(K), 3)
    rec = ce_gd_fixed_features(M[y], y, W_star=(K - 1) / K * M, steps=500)
    assert all(r["angle_deg"] < 1e-6 for r in rec[1:])
    assert rec[-1]["p_min"] > rec[1]["p_min"] > 0


def test_bias_appends_constant_feature(case):
    H, y, _ = case
    H2 = H + 2.0  # off-centre features: the bias matters
    sol = multiclass_svm(H2, y, bias=True)
    Wa = np.column_stack([sol.W, sol.b])
    rec = ce_gd_fixed_features(H2, y, W_star=Wa, steps=20_000, bias=True, schedule="normalized")
    assert rec[-1]["angle_deg"] < rec[2]["angle_deg"]
    with pytest.raises(ValueError, match="W_star"):
        ce_gd_fixed_features(H2, y, W_star=sol.W, steps=10, bias=True)


def test_input_errors(case):
    H, y, Ws = case
    with pytest.raises(ValueError, match="schedule"):
        ce_gd_fixed_features(H, y, W_star=Ws, steps=10, schedule="adam")
    with pytest.raises(ValueError, match="lr"):
        ce_gd_fixed_features(H, y, W_star=Ws, steps=10, lr=-1.0)
    with pytest.raises(ValueError, match="record"):
        ce_gd_fixed_features(H, y, W_star=Ws, steps=10, record=[20])
