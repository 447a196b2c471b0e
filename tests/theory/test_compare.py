"""Tests of ncmargin.theory.compare (angle to the SVM, margin ratio; docs/theory.md §4)."""

import numpy as np
import pytest

from ncmargin.theory import simplex_etf
from ncmargin.theory.compare import angle_deg, augment, margin_ratio, svm_comparison


def _etf_case(K=5, n=4, d=8, seed=0):
    M = simplex_etf(K, d, seed=seed)
    y = np.repeat(np.arange(K), n)
    H = M[y]  # features exactly on a unit ETF: W* = ((K-1)/K) M (docs/theory.md §3 closed form)
    return H, y, M, (K - 1) / K * M


def test_angle_exact_values_and_precision():
    A = np.arange(6.0).reshape(2, 3) + 1
    assert angle_deg(A, 3 * A) == pytest.approx(0.0, abs=1e-12)  # rounding of the normalisation
    assert angle_deg(A, -A) == pytest.approx(180.0)
    assert angle_deg(np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]])) == pytest.approx(90.0)
    # tiny angles are resolved (arccos of the cosine would return 0 below ~1e-6 degrees)
    eps = 1e-9
    B = np.array([[1.0, eps]])
    assert angle_deg(np.array([[1.0, 0.0]]), B) == pytest.approx(np.degrees(eps), rel=1e-6)
    with pytest.raises(ValueError, match="zero"):
        angle_deg(np.zeros((2, 2)), A[:, :2])
    with pytest.raises(ValueError, match="shapes"):
        angle_deg(A, A.T)


def test_margin_ratio_one_at_svm_and_below_elsewhere():
    H, y, _M, Ws = _etf_case()
    assert margin_ratio(H, y, Ws, Ws) == pytest.approx(1.0, rel=1e-12)
    assert margin_ratio(H, y, 7.3 * Ws, Ws) == pytest.approx(1.0, rel=1e-12)  # scale invariant
    rng = np.random.default_rng(1)
    for _ in range(20):
        W = Ws + 0.3 * rng.normal(size=Ws.shape)
        assert margin_ratio(H, y, W, Ws) < 1.0
    c = svm_comparison(H, y, Ws + 0.1 * rng.normal(size=Ws.shape), Ws)
    assert 0 < c["angle_deg"] < 90 and c["margin_ratio"] < 1
    assert c["svm_margin"] == pytest.approx(1 / np.linalg.norm(Ws))


def test_margin_ratio_with_bias_uses_augmented_norm():
    H, y, M, Ws = _etf_case()
    K = M.shape[0]
    b = np.zeros(K)
    # zero bias is exactly the SVM with a constant feature (ETF features are centred, so b* = 0)
    assert margin_ratio(H, y, Ws, Ws, b=b, b_star=b) == pytest.approx(1.0, rel=1e-12)
    b2 = np.linspace(-0.5, 0.5, K)
    pm = min((Ws[y[i]] - Ws[k]) @ H[i] + b2[y[i]] - b2[k] for i in range(len(y)) for k in range(K) if k != y[i])
    val = margin_ratio(H, y, Ws, Ws, b=b2, b_star=b)
    assert val == pytest.approx(pm / np.linalg.norm(augment(Ws, b2)) * np.linalg.norm(Ws), rel=1e-12)
    assert val < 1
    with pytest.raises(ValueError, match="b_star"):
        margin_ratio(H, y, Ws, Ws, b=b)


def test_margin_ratio_against_solver_solution_with_and_without_bias():
    from ncmargin import solvers
    rng = np.random.default_rng(3)
    K, d, n = 3, 4, 8
    M = simplex_etf(K, d, seed=1)
    y = np.repeat(np.arange(K), n)
    H = 1.5 + M[y] + 0.3 * rng.normal(size=(K * n, d))
    sol = solvers.multiclass_svm(H, y)
    assert margin_ratio(H, y, sol.W, sol.W) == pytest.approx(1.0, rel=1e-9)
    ratios = [margin_ratio(H, y, sol.W + 0.2 * rng.normal(size=sol.W.shape), sol.W) for _ in range(20)]
    assert max(ratios) < 1 + 1e-6  # W* maximizes p_min/||W||_F (up to the solver's tolerance)
    # the solver's p_min of its own solution is 1 (functional margin), so the ratio is ||W*||·1/||W*||
    solb = solvers.multiclass_svm(H, y, bias=True)
    assert margin_ratio(H, y, solb.W, solb.W, b=solb.b, b_star=solb.b) == pytest.approx(1.0, rel=1e-9)
    # the biased SVM has a larger best normalized margin than the unbiased one on off-centre features,
    # so the unbiased W* judged in the augmented geometry (b = 0) has ratio < 1
    r = margin_ratio(H, y, sol.W, solb.W, b=np.zeros(K), b_star=solb.b)
    assert r < 1 + 1e-6
