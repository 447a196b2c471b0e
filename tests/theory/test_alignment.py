"""Tests of ncmargin.theory.alignment (docs/theory.md §8: predictors, concentration bound and its check)."""

import numpy as np
import pytest
from scipy import stats as st

from ncmargin.theory import pairwise_margins, simplex_etf
from ncmargin.theory.alignment import (
    alignment_predictors,
    alignment_score,
    concentration_bound,
    concentration_check,
    deviation_probability,
    normalized_margin_stats,
)


def _features(K=4, d=6, n=30, seed=0, spread=0.4):
    rng = np.random.default_rng(seed)
    M = simplex_etf(K, d, seed=seed)
    y = np.repeat(np.arange(K), n)
    H = M[y] + spread * rng.normal(size=(K * n, d)) / np.sqrt(d)
    return H, y, M


def test_score_by_hand_small_case():
    K, d = 3, 3
    M = simplex_etf(K, d)
    H = np.vstack([M[0] * 2, M[0] * 1.5, M[1], M[2] * 0.8])
    y = np.array([0, 0, 1, 2])
    g = pairwise_margins(H, y, M)
    n = np.array([2, 1, 1])
    rho = np.array([np.abs(H[:2]).max(), np.abs(H[2]).max(), np.abs(H[3]).max()])
    expected = 0.0
    for a in range(K):
        for b in range(K):
            if a != b:
                dist2 = np.sum((M[a] - M[b]) ** 2)
                expected += 2 * d * np.exp(-n[a] * max(g[a, b], 0) ** 2 / (2 * d**2 * rho[a] ** 2 * dist2))
    assert alignment_score(H, y, M) == pytest.approx(expected, rel=1e-12)


def test_negative_margin_pair_contributes_trivial_value():
    K, d = 3, 3
    M = simplex_etf(K, d)
    H = np.vstack([M[1], M[1], M[2]])  # class 0's samples sit on vertex 1: γ_{0,1} < 0
    y = np.array([0, 1, 2])
    g = pairwise_margins(H, y, M)
    assert g[0, 1] < 0
    assert alignment_score(H, y, M) > 2 * d  # the (0,1) pair contributes exactly 2d, the rest > 0


def test_predictors_invariant_under_relabelling():
    H, y, M = _features()
    K = M.shape[0]
    pi = np.array([2, 0, 3, 1])
    y2 = pi[y]
    M2 = np.empty_like(M)
    M2[pi] = M  # class pi(k) gets the vertex class k had
    a, b = alignment_predictors(H, y, M), alignment_predictors(H, y2, M2)
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-12)
    # but permuting the ETF rows alone (a different alignment) changes the predictors
    c = alignment_predictors(H, y, M[pi])
    assert c["normalized_margin_mean"] != pytest.approx(a["normalized_margin_mean"], rel=1e-6)
    assert K == 4


def test_rotation_invariance_of_margins_but_not_of_infinity_norm_score():
    H, y, M = _features(seed=1)
    Q = st.ortho_group.rvs(M.shape[1], random_state=5)
    s0, s1 = normalized_margin_stats(H, y, M), normalized_margin_stats(H @ Q.T, y, M @ Q.T)
    assert s1["mean"] == pytest.approx(s0["mean"], rel=1e-10)
    assert s1["min"] == pytest.approx(s0["min"], rel=1e-10)
    # ||.||_inf is not rotation invariant: the score changes under a generic rotation ...
    assert alignment_score(H @ Q.T, y, M @ Q.T) != pytest.approx(alignment_score(H, y, M), rel=1e-3)
    # ... and is invariant under a signed permutation of the coordinates (which preserves ||.||_inf)
    d = M.shape[1]
    P = np.eye(d)[np.random.default_rng(2).permutation(d)] * np.array([1, -1, 1, 1, -1, -1])
    assert alignment_score(H @ P.T, y, M @ P.T) == pytest.approx(alignment_score(H, y, M), rel=1e-12)


def test_predictor_errors():
    H, y, M = _features()
    with pytest.raises(ValueError):
        alignment_score(H, y, M[:, :3])
    M2 = M.copy()
    M2[1] = M2[0]
    with pytest.raises(ValueError, match="identical rows"):
        normalized_margin_stats(H, y, M2)


def test_concentration_bound_formula():
    assert concentration_bound(10, 0.5, 4, 2.0) == pytest.approx(8 * np.exp(-10 * 0.25 / (2 * 16 * 4)))
    b = concentration_bound(np.array([10, 100]), 0.5, 4, 2.0)
    assert b.shape == (2,) and b[1] < b[0]
    with pytest.raises(ValueError):
        concentration_bound(0, 0.5, 4, 1.0)


def test_deviation_probability_gaussian_known_answer():
    # ||mu_hat - mu||^2 ~ sigma^2/n chi^2_d for Gaussian samples; compare with scipy within 4 s.e.
    d, n, sigma, trials = 3, 20, 0.7, 4000
    mu = np.array([1.0, -2.0, 0.5])

    def sample(rng, m):
        return mu + sigma * rng.normal(size=(m, d))

    eps = np.array([0.1, 0.2, 0.3, 0.4])
    est = deviation_probability(sample, mu, n, eps, trials=trials, seed=0)
    exact = st.chi2.sf(n * eps**2 / sigma**2, d)
    se = np.sqrt(exact * (1 - exact) / trials)
    assert np.all(np.abs(est["p"] - exact) <= 4 * se + 1e-12)
    assert np.all(np.diff(est["p"]) <= 0)


def test_concentration_check_bound_holds_for_bounded_features():
    d, rho = 2, 1.0
    mu = np.zeros(d)

    def sample(rng, m):
        return rng.uniform(-rho, rho, size=(m, d))

    rows = concentration_check(sample, mu, [10, 50], [0.2, 0.5], rho=rho, trials=500, seed=0)
    assert len(rows) == 4
    assert all(r["bound_holds"] for r in rows)
    assert all(r["bound"] == pytest.approx(concentration_bound(r["n"], r["eps"], d, rho)) for r in rows)
    with pytest.raises(ValueError, match="must return"):
        deviation_probability(lambda rng, m: np.zeros((m, 3)), mu, 5, 0.1, trials=2)
