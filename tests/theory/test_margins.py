"""Margins, CE and the CE-p_min sandwich (docs/theory.md §2) against brute-force loops and mpmath."""

import math

import numpy as np
import pytest

from ncmargin.theory import (
    ce_loss,
    ce_pmin_sandwich,
    logits,
    margins,
    normalized_margin,
    normalized_pairwise_margins,
    p_min,
    pairwise_margins,
    simplex_etf,
    ufm_normalized_margin,
)
from ncmargin.theory.margins import log_expm1


def _random(N=40, d=6, K=4, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    H = scale * rng.standard_normal((N, d))
    W = scale * rng.standard_normal((K, d))
    b = scale * rng.standard_normal(K)
    y = rng.integers(0, K, N)
    y[:K] = np.arange(K)  # every class present
    return H, y, W, b


def _brute_margins(H, y, W, b):
    out = []
    for i in range(len(y)):
        best = math.inf  # p_i = min over k != y_i of (w_{y_i} - w_k).h_i (+ b_{y_i} - b_k)
        for k in range(W.shape[0]):
            if k != y[i]:
                v = float(np.dot(W[y[i]] - W[k], H[i])) + (0.0 if b is None else b[y[i]] - b[k])
                best = min(best, v)
        out.append(best)
    return np.array(out)


@pytest.mark.parametrize("use_bias", [False, True])
@pytest.mark.parametrize("K", [2, 3, 7])
def test_margins_equal_brute_force_loop(use_bias, K):
    H, y, W, b = _random(K=K, seed=K)
    b = b if use_bias else None
    p = margins(H, y, W, b)
    ref = _brute_margins(H, y, W, b)
    # logits differences vs. dot products of differences: both O(d eps |w||h|) accurate
    np.testing.assert_allclose(p, ref, rtol=1e-12, atol=1e-12)
    assert p_min(H, y, W, b) == pytest.approx(ref.min(), abs=1e-12)
    # pairwise: gamma[c, c'] = min over class c of (w_c - w_c').h + b_c - b_c'
    g = pairwise_margins(H, y, W, b)
    gn = normalized_pairwise_margins(H, y, W, b)
    for c in range(K):
        for c2 in range(K):
            if c == c2:
                assert np.isnan(g[c, c2]) and np.isnan(gn[c, c2])
                continue
            vals = [float(np.dot(W[c] - W[c2], H[i])) + (0.0 if b is None else b[c] - b[c2])
                    for i in range(len(y)) if y[i] == c]
            assert g[c, c2] == pytest.approx(min(vals), abs=1e-12)
            assert gn[c, c2] == pytest.approx(min(vals) / np.linalg.norm(W[c] - W[c2]), abs=1e-12)
    # p_min is the minimum over rows of the off-diagonal minimum of gamma
    assert np.nanmin(g) == pytest.approx(p_min(H, y, W, b), abs=1e-12)


def test_chunked_paths_match(monkeypatch):
    import importlib

    mm = importlib.import_module("ncmargin.theory.margins")  # the package attribute is the function

    H, y, W, b = _random(N=101, K=5, seed=9)
    full = (margins(H, y, W, b), pairwise_margins(H, y, W, b), ce_loss(H, y, W, b, reduction="none"))
    monkeypatch.setattr(mm, "_CHUNK_ELEMS", 7 * 5)  # 7-row chunks, some classes absent in a chunk
    chunked = (margins(H, y, W, b), pairwise_margins(H, y, W, b), ce_loss(H, y, W, b, reduction="none"))
    for a, c in zip(full, chunked):
        np.testing.assert_allclose(a, c, rtol=1e-14, atol=0)


def test_empty_class_rows_are_nan_and_logits():
    H, y, W, b = _random(K=3)
    y = np.where(y == 2, 0, y)
    g = pairwise_margins(H, y, W, b)
    assert np.all(np.isnan(g[2])) and np.all(np.isfinite(g[0, 1:]))
    np.testing.assert_allclose(logits(H, W, b), H @ W.T + b, rtol=1e-15)


def test_normalized_margins():
    H, y, W, _b = _random(seed=3)
    pm = p_min(H, y, W)
    assert normalized_margin(H, y, W) == pytest.approx(
        pm / (np.linalg.norm(W) * max(np.linalg.norm(h) for h in H)), rel=1e-13)
    assert ufm_normalized_margin(H, y, W) == pytest.approx(
        pm / (0.5 * (np.sum(W ** 2) + np.sum(H ** 2))), rel=1e-13)
    # scale behaviour: normalized margin is scale-free, p_min is not
    assert normalized_margin(5 * H, y, 2 * W) == pytest.approx(normalized_margin(H, y, W), rel=1e-12)
    assert p_min(5 * H, y, 2 * W) == pytest.approx(10 * pm, rel=1e-12)
    # ETF: p_min = K/(K-1) for unit ETF features and W = M; normalized by ||W||_F max||h|| = sqrt(K)
    K = 6
    M = simplex_etf(K, 8, seed=1)
    yy = np.repeat(np.arange(K), 3)
    assert p_min(M[yy], yy, M) == pytest.approx(K / (K - 1), rel=1e-13)
    assert normalized_margin(M[yy], yy, M) == pytest.approx(K / (K - 1) / np.sqrt(K), rel=1e-13)


def _ce_mpmath(H, y, W, b, mp):
    mp.mp.dps = 60
    total = mp.mpf(0)
    for i in range(len(y)):
        z = [mp.fsum(mp.mpf(float(a)) * mp.mpf(float(c)) for a, c in zip(W[k], H[i]))
             + (0 if b is None else mp.mpf(float(b[k]))) for k in range(W.shape[0])]
        total += mp.log(mp.fsum(mp.exp(zk - z[y[i]]) for zk in z))
    return total / len(y)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 25.0, 300.0])
def test_ce_loss_against_mpmath(scale):
    mp = pytest.importorskip("mpmath")
    K = 4
    M = simplex_etf(K, 5, seed=2)
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(K), 3)
    H = scale * (M[y] + 0.1 * rng.standard_normal((len(y), 5)))
    b = 0.01 * scale * rng.standard_normal(K)
    # The mpmath reference uses the float64 inputs exactly; the only float64 errors left are the
    # logits (relative ~d eps per entry, i.e. an absolute error ~1e-13 in z at scale 300, which
    # is a relative error ~1e-13 in exp(z_k - z_y)) and log1p/exp (a few eps): rtol 1e-11.
    for bb in (None, b):
        ref = float(_ce_mpmath(H, y, M, bb, mp))
        got = ce_loss(H, y, M, bb)
        assert got == pytest.approx(ref, rel=1e-11)
    # these scales reach loss ~1e-13 (scale 25) and ~1e-170 (scale 300)
    if scale >= 25:
        assert ce_loss(H, y, M) < 1e-10


def test_ce_loss_exact_two_class_and_tiny_losses():
    # K = 2, one sample with margin p: L = log(1 + e^{-p}); for p >= 40, log1p(e^{-p}) = e^{-p}(1 - e^{-p}/2 ...)
    W = np.array([[1.0], [0.0]])
    for p in [1e-8, 0.5, 30.0, 40.0, 690.0, 740.0]:
        got = ce_loss(np.array([[p]]), np.array([0]), W)
        exact = math.log1p(math.exp(-p))
        assert got == pytest.approx(exact, rel=1e-14, abs=0)
    assert ce_loss(np.array([[-800.0]]), np.array([0]), W) == pytest.approx(800.0, rel=1e-15)
    # loss ~1e-300: e^{-690.8}
    L = ce_loss(np.array([[690.7755]]), np.array([0]), W)
    assert 0 < L < 1.1e-300 and L == pytest.approx(math.exp(-690.7755), rel=1e-13)
    # reductions
    H, y, W, b = _random(seed=5)
    per = ce_loss(H, y, W, b, reduction="none")
    assert per.shape == (len(y),) and np.all(per > 0)
    assert ce_loss(H, y, W, b, reduction="sum") == pytest.approx(per.sum(), rel=1e-14)
    with pytest.raises(ValueError, match="reduction"):
        ce_loss(H, y, W, b, reduction="max")


@pytest.mark.parametrize("scale", [1e-3, 1e-2, 1e-1, 1.0, 10.0, 1e2])
@pytest.mark.parametrize("use_bias", [False, True])
def test_sandwich_holds_across_scales(scale, use_bias):
    rng = np.random.default_rng(int(scale * 1000) % 97 + use_bias)
    K, d, N = 5, 8, 60
    for trial in range(4):
        y = rng.integers(0, K, N)
        M = simplex_etf(K, d, seed=trial)
        # from random (p_min < 0) to nearly separable (p_min > 0)
        H = scale * (M[y] * trial + rng.standard_normal((N, d)))
        W = scale * (M * trial + 0.3 * rng.standard_normal((K, d)))
        b = scale * rng.standard_normal(K) if use_bias else None
        L, pm = ce_loss(H, y, W, b), p_min(H, y, W, b)
        s = ce_pmin_sandwich(L, pm, N, K)
        assert s["holds"], s
        assert s["loss_lower"] <= L <= s["loss_upper"] * (1 + 1e-12)
        assert s["pmin_lower"] <= pm * (1 + 1e-12) + 1e-12 and pm <= s["pmin_upper"] + 1e-9 * max(1, abs(pm))
        if s["loss_below_log2_over_N"]:
            assert pm > 0


def test_sandwich_equality_cases_and_violation():
    # upper bound attained: exact ETF features with W = M (all K-1 competitors tied)
    K = 6
    M = simplex_etf(K, 6, seed=4)
    y = np.repeat(np.arange(K), 4)
    for c in [0.1, 1.0, 50.0, 600.0]:
        L, pm = ce_loss(c * M[y], y, M), p_min(c * M[y], y, M)
        s = ce_pmin_sandwich(L, pm, len(y), K)
        assert s["holds"]
        assert s["loss_upper"] == pytest.approx(L, rel=1e-12)
        assert s["pmin_upper"] == pytest.approx(pm, rel=1e-12)
    # lower bound attained: K = 2, N = 1
    W = np.array([[1.0, 0.0], [0.0, 1.0]])
    for p in [-3.0, 0.2, 25.0]:
        H = np.array([[p, 0.0]])
        s = ce_pmin_sandwich(ce_loss(H, [0], W), p_min(H, [0], W), 1, 2)
        assert s["holds"] and s["loss_lower"] == pytest.approx(s["loss"], rel=1e-13)
        assert s["pmin_lower"] == pytest.approx(p, rel=1e-12, abs=1e-12)
    # a violation is detected (the check can fail)
    s = ce_pmin_sandwich(1e-3, 1.0, 10, 3)
    assert not s["holds"]
    s = ce_pmin_sandwich(2.0, 5.0, 10, 3)
    assert not s["holds"]


def test_sandwich_extreme_values_finite():
    s = ce_pmin_sandwich(1e-300, 690.0, 1000, 100)
    assert all(np.isfinite(s[k]) for k in ("loss_lower", "loss_upper", "pmin_lower", "pmin_upper"))
    assert s["pmin_lower"] == pytest.approx(-math.log(1000 * 1e-300), rel=1e-14)
    assert s["pmin_upper"] == pytest.approx(math.log(99) - math.log(1e-300), rel=1e-14)
    s = ce_pmin_sandwich(0.0, 1000.0, 10, 3)
    assert s["holds"] and s["pmin_lower"] == np.inf and s["loss_lower"] == 0.0
    s = ce_pmin_sandwich(1000.0, -1000.0, 10, 3)
    assert s["holds"] and s["loss_upper"] == pytest.approx(1000 + math.log(2), rel=1e-14)
    assert s["pmin_lower"] == pytest.approx(-10000.0, rel=1e-14)  # -log(e^{10 L} - 1) = -10 L
    np.testing.assert_allclose(log_expm1([1e-300, 1e-5, 1.0, 50.0, 800.0]),
                               [math.log(1e-300), math.log(math.expm1(1e-5)), math.log(math.e - 1),
                                50 + math.log1p(-math.exp(-50)), 800.0], rtol=1e-14)
    with pytest.raises(ValueError, match="loss"):
        ce_pmin_sandwich(-1.0, 1.0, 10, 3)
    with pytest.raises(ValueError, match="K = 1"):
        ce_pmin_sandwich(1.0, 1.0, 10, 1)


def test_margin_input_errors():
    H, y, W, b = _random()
    with pytest.raises(ValueError, match="dimension 1 must be 6"):
        margins(H, y, W[:, :5])
    with pytest.raises(ValueError, match=r"outside 0\.\.K-1.*4"):
        margins(H, np.where(y == 0, 4, y), W)
    with pytest.raises(ValueError, match="bias b must have shape"):
        p_min(H, y, W, b[:2])
    with pytest.raises(ValueError, match="2-D"):
        pairwise_margins(H, y, W.ravel())
