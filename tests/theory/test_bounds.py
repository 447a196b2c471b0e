"""Tests of ncmargin.theory.bounds (docs/theory.md §5: the uniform margin bound and complexity terms)."""

import math

import numpy as np
import pytest

from ncmargin.theory.bounds import (
    best_gamma_bound,
    default_gamma_grid,
    margin_bound,
    margin_range,
    normalized_margins,
    rademacher_last_layer,
    spectral_complexity,
    spectral_product,
)


def test_margin_bound_terms_by_hand():
    p = np.array([0.1, 0.5, 1.0, 2.0])
    out = margin_bound(p, 0.5, K=3, rademacher=0.01, Gamma=4.0, delta=0.05)
    assert out["empirical_margin_loss"] == 0.5  # 0.1 and 0.5 are ≤ γ (the inequality is not strict)
    assert out["complexity"] == pytest.approx(4 * 3 / 0.5 * 0.01)
    assert out["uniform_gamma"] == pytest.approx(math.sqrt(math.log(math.log2(16.0)) / 4))
    assert out["confidence"] == pytest.approx(math.sqrt(math.log(2 / 0.05) / 8))
    assert out["total"] == pytest.approx(0.5 + 0.24 + math.sqrt(math.log(4) / 4) + math.sqrt(math.log(40) / 8))
    assert out["vacuous"] is True
    at_top = margin_bound(p, 4.0, K=3, rademacher=0.0, Gamma=4.0)
    assert at_top["uniform_gamma"] == 0.0 and at_top["empirical_margin_loss"] == 1.0


def test_margin_bound_domain_errors():
    p = np.array([0.3, 0.6])
    with pytest.raises(ValueError, match="gamma must be > 0"):
        margin_bound(p, 0.0, K=2, rademacher=0.1, Gamma=1.0)
    with pytest.raises(ValueError, match="exceeds Gamma"):
        margin_bound(p, 2.0, K=2, rademacher=0.1, Gamma=1.0)
    with pytest.raises(ValueError, match="delta"):
        margin_bound(p, 0.5, K=2, rademacher=0.1, Gamma=1.0, delta=1.5)
    with pytest.raises(ValueError, match="NaN"):
        margin_bound([np.nan], 0.5, K=2, rademacher=0.1, Gamma=1.0)


def test_complexity_and_uniform_terms_decrease_in_gamma_empirical_increases():
    rng = np.random.default_rng(0)
    p = rng.uniform(-0.2, 3, size=500)
    g = default_gamma_grid(4.0, n=50)
    outs = [margin_bound(p, x, K=10, rademacher=0.02, Gamma=4.0) for x in g]
    comp = np.array([o["complexity"] for o in outs])
    unif = np.array([o["uniform_gamma"] for o in outs])
    emp = np.array([o["empirical_margin_loss"] for o in outs])
    assert np.all(np.diff(comp) < 0) and np.all(np.diff(unif) <= 0) and np.all(np.diff(emp) >= 0)


def test_best_gamma_no_worse_than_pmin_and_matches_grid_minimum():
    rng = np.random.default_rng(1)
    p = 1.0 + rng.exponential(size=300)
    kw = {"K": 5, "rademacher": 0.01, "Gamma": 10.0}
    best = best_gamma_bound(p, **kw)
    at_pmin = margin_bound(p, p.min(), **kw)
    assert best["total"] <= at_pmin["total"] + 1e-15
    assert best["total"] == pytest.approx(best["grid_total"].min())
    # brute force on the same grid through the scalar function
    brute = min(margin_bound(p, g, **kw)["total"] for g in best["grid"])
    assert best["total"] == pytest.approx(brute, rel=1e-12)
    # a grid outside (0, Γ] is rejected
    with pytest.raises(ValueError, match="no γ"):
        best_gamma_bound(-p, [-1.0, 20.0], **kw)


def test_rademacher_last_layer_and_margin_range():
    H = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    W = np.array([[1.0, 0.0], [0.0, -2.0], [0.5, 0.5]])
    assert rademacher_last_layer(H, W) == pytest.approx(5.0 * 2.0 / 2.0)
    assert margin_range(H, W) == pytest.approx(20.0)
    # margin_range bounds every pairwise score difference
    D = (H @ W.T)[:, :, None] - (H @ W.T)[:, None, :]
    assert np.abs(D).max() <= margin_range(H, W)


def test_spectral_complexity_by_hand_and_against_matrices():
    rng = np.random.default_rng(2)
    A1, A2 = rng.normal(size=(6, 4)), rng.normal(size=(3, 6))
    s = [np.linalg.norm(A, 2) for A in (A1, A2)]
    l21 = [np.linalg.norm(A, axis=1).sum() for A in (A1, A2)]  # ||A^T||_{2,1}: rows of A = output units
    X = rng.normal(size=(50, 4))
    out = spectral_complexity(s, l21, np.linalg.norm(X), 50)
    RA = s[0] * s[1] * ((l21[0] / s[0]) ** (2 / 3) + (l21[1] / s[1]) ** (2 / 3)) ** 1.5
    assert out["R_A"] == pytest.approx(RA, rel=1e-12)
    assert out["rademacher"] == pytest.approx(np.linalg.norm(X) * RA / 50, rel=1e-12)
    assert out["spectral_product"] == pytest.approx(spectral_product(s))
    # ||A^T||_{2,1} ≥ ||A||_σ always, so every ratio ≥ 1 and R_A ≥ n_layers^{3/2} · product
    assert out["R_A"] >= 2 ** 1.5 * s[0] * s[1]
    # Lipschitz constants multiply the product
    assert spectral_complexity(s, l21, 1.0, 1, lipschitz=[2.0, 0.5])["R_A"] == pytest.approx(RA)
    with pytest.raises(ValueError, match="one entry per layer"):
        spectral_complexity(s, l21[:1], 1.0, 1)


def test_normalized_margins_make_bound_scale_free():
    rng = np.random.default_rng(3)
    p = 0.5 + rng.random(100)
    c = 7.0
    a = best_gamma_bound(p, K=3, rademacher=0.01, Gamma=4.0, include_pmin=False)
    b = best_gamma_bound(p * c, default_gamma_grid(4.0 * c), K=3, rademacher=0.01 * c, Gamma=4.0 * c,
                         include_pmin=False)
    assert a["total"] == pytest.approx(b["total"], rel=1e-9)  # joint rescaling leaves the bound unchanged
    np.testing.assert_allclose(normalized_margins(p * c, c), p, rtol=1e-15)
    with pytest.raises(ValueError, match="positive"):
        normalized_margins(p, 0.0)


def test_factor_selects_the_complexity_constant():
    p = np.array([0.5, 1.0, 1.5])
    a = margin_bound(p, 1.0, K=4, rademacher=0.01, Gamma=3.0)
    b = margin_bound(p, 1.0, K=4, rademacher=0.01, Gamma=3.0, factor=8.0)
    assert a["factor"] == 4.0 and b["complexity"] == pytest.approx(2 * a["complexity"])
    assert b["total"] - a["total"] == pytest.approx(a["complexity"])
    best8 = best_gamma_bound(p, K=4, rademacher=0.01, Gamma=3.0, factor=8.0)
    assert best8["factor"] == 8.0 and best8["total"] >= best_gamma_bound(p, K=4, rademacher=0.01, Gamma=3.0)["total"]


def test_last_layer_bound_and_report():
    from ncmargin.theory import margins as sample_margins
    from ncmargin.theory import simplex_etf
    from ncmargin.theory.bounds import bound_report, last_layer_bound

    K = 4
    M = simplex_etf(K, 5)
    y = np.repeat(np.arange(K), 6)
    rng = np.random.default_rng(5)
    H = M[y] + 0.1 * rng.normal(size=(len(y), 5))
    W = 3.0 * M
    out = last_layer_bound(H, y, W)
    p = sample_margins(H, y, W)
    r, lam = np.linalg.norm(H, axis=1).max(), np.linalg.norm(W, axis=1).max()
    assert out["rademacher"] == pytest.approx(r * lam / np.sqrt(len(y)))
    assert out["Gamma"] == pytest.approx(2 * r * lam)
    ref = margin_bound(p, p.min(), K=K, rademacher=out["rademacher"], Gamma=out["Gamma"])
    assert out["at_pmin"]["total"] == pytest.approx(ref["total"])
    assert out["best"]["total"] <= out["at_pmin"]["total"] + 1e-15
    assert out["normalized_p_min"] == pytest.approx(p.min() / (r * lam))
    # scale invariance of the last-layer bound: W -> 10 W changes nothing
    assert last_layer_bound(H, y, 10 * W)["best"]["total"] == pytest.approx(out["best"]["total"], rel=1e-9)
    # a misclassifying classifier has no gamma = p_min reading, but the grid bound exists
    bad = bound_report(np.array([-0.5, 1.0, 2.0]), K=3, rademacher=0.01, Gamma=5.0)
    assert bad["at_pmin"] is None and "p_min" in bad["at_pmin_reason"] and bad["best"]["total"] > 1 / 3
    # with a bias: augmented norms
    b = np.array([0.1, -0.2, 0.0, 0.3])
    ob = last_layer_bound(H, y, W, b)
    Ha, Wa = np.column_stack([H, np.ones(len(y))]), np.column_stack([W, b])
    assert ob["rademacher"] == pytest.approx(np.linalg.norm(Ha, axis=1).max() * np.linalg.norm(Wa, axis=1).max()
                                             / np.sqrt(len(y)))
