"""Property-based tests (hypothesis) of the theory entry points: every input either gives an answer that
satisfies an independent invariant, or a clear ValueError; no other exception, no silent NaN.

Inputs: random shapes, labels (including empty classes and labels outside 0..K-1), scales 1e-8..1e8,
NaN/Inf entries. Invariants: margins equal a brute-force loop, p_min is their minimum, NC metrics are
>= 0 and Sigma_T = Sigma_W + Sigma_B, an ETF's Gram matrix is K/(K-1)(I - 11^T/K), the margin bound's
total is the sum of its terms.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncmargin import theory

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw, bias=True):
    K = draw(st.integers(2, 5))
    d = draw(st.integers(1, 6))
    N = draw(st.integers(1, 24))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = 10.0 ** draw(st.integers(-8, 8))
    rng = np.random.default_rng(seed)
    H = rng.normal(size=(N, d)) * scale
    W = rng.normal(size=(K, d)) * draw(st.sampled_from([1.0, scale]))
    b = rng.normal(size=K) * scale if bias and draw(st.booleans()) else None
    kind = draw(st.sampled_from(["ok", "ok", "ok", "empty_class", "outside", "nan", "inf", "wrong_len"]))
    y = rng.integers(0, K, size=N)
    if kind == "empty_class":
        y = np.zeros(N, dtype=int)
    elif kind == "outside":
        y[rng.integers(N)] = K + 1
    elif kind == "nan":
        H[rng.integers(N), rng.integers(d)] = np.nan
    elif kind == "inf":
        W[rng.integers(K), rng.integers(d)] = np.inf
    elif kind == "wrong_len":
        y = y[:-1]
    return H, y, W, b


def _call(fn, *args, **kw):
    """The result, or None when the function refused the input with a ValueError (the only allowed error)."""
    try:
        return fn(*args, **kw)
    except ValueError as exc:
        assert str(exc), "a ValueError must say what is wrong"
        return None


def _brute_margins(H, y, W, b):
    out = []
    for i in range(H.shape[0]):
        z = [float(np.dot(H[i], W[k])) + (0.0 if b is None else float(b[k])) for k in range(W.shape[0])]
        true = z[y[i]]
        out.append(true - max(z[k] for k in range(len(z)) if k != y[i]))
    return np.array(out)


@SETTINGS
@given(problems())
def test_margins_equal_a_brute_force_loop(prob):
    H, y, W, b = prob
    m = _call(theory.margins, H, y, W, b)
    if m is None:
        return
    ref = _brute_margins(H, y, W, b)
    zmax = np.abs(H @ W.T).max() + (0 if b is None else np.abs(b).max())
    assert m.shape == ref.shape and np.all(np.isfinite(m))
    np.testing.assert_allclose(m, ref, rtol=1e-9, atol=1e-12 * zmax + 1e-300)
    pm = theory.p_min(H, y, W, b)
    assert pm == pytest.approx(ref.min(), rel=1e-9, abs=1e-12 * zmax + 1e-300)


@SETTINGS
@given(problems(bias=False))
def test_nc_metrics_nonnegative_and_scatter_identity(prob):
    H, y, W, _ = prob
    out = _call(theory.nc_metrics, H, y, W)
    if out is None:
        return
    assert out["num_samples"] == H.shape[0]
    for k, v in out.items():
        if isinstance(v, float):
            assert not math.isnan(v) or k in ("nc1_topk", "nc1_pinv", "cdnv"), (k, v)
            if not math.isnan(v):
                assert v >= -1e-12 * max(1.0, abs(v)), (k, v)
    S = _call(theory.scatter_matrices, H, y, W.shape[0])
    if S is None:
        return
    S_T, S_W, S_B = S[0], S[1], S[2]
    tol = 1e-10 * max(np.abs(S_T).max(), np.abs(S_W).max(), np.abs(S_B).max(), 1e-300)
    np.testing.assert_allclose(S_T, S_W + S_B, rtol=0, atol=tol)
    assert out["within_cov_trace"] == pytest.approx(np.trace(S_W), rel=1e-8, abs=tol)


@SETTINGS
@given(st.integers(-1, 8), st.integers(-1, 10), st.one_of(st.none(), st.integers(0, 10)))
def test_simplex_etf_gram_or_value_error(K, d, seed):
    M = _call(theory.simplex_etf, K, d, seed=seed)
    if M is None:
        assert K < 2 or (d is not None and d < K - 1)
        return
    assert M.shape == (K, d if d is not None else K) and M.dtype == np.float64
    G = M @ M.T
    want = K / (K - 1) * (np.eye(K) - np.ones((K, K)) / K)
    np.testing.assert_allclose(G, want, atol=1e-12)
    assert theory.is_etf(M)


@SETTINGS
@given(st.lists(st.floats(min_value=-1e8, max_value=1e8) | st.sampled_from([np.nan, np.inf, -np.inf]),
                min_size=0, max_size=20),
       st.floats(min_value=-1.0, max_value=10.0) | st.just(np.nan),
       st.integers(0, 6), st.floats(min_value=-1, max_value=100) | st.just(np.nan),
       st.floats(min_value=-1, max_value=100) | st.just(np.inf))
def test_margin_bound_total_is_the_sum_of_its_terms(margins, gamma, K, rademacher, Gamma):
    out = _call(theory.margin_bound, np.array(margins, dtype=np.float64), gamma, K=K, rademacher=rademacher,
                Gamma=Gamma)
    if out is None:
        return
    parts = out["empirical_margin_loss"] + out["complexity"] + out["uniform_gamma"] + out["confidence"]
    assert out["total"] == pytest.approx(parts, rel=1e-12)
    assert 0 <= out["empirical_margin_loss"] <= 1 and out["complexity"] >= 0 and out["confidence"] >= 0
    assert out["vacuous"] == (out["total"] > 1)


@SETTINGS
@given(problems())
def test_ce_loss_is_finite_nonnegative_or_value_error(prob):
    H, y, W, b = prob
    L = _call(theory.ce_loss, H, y, W, b)
    if L is None:
        return
    assert math.isfinite(L) and L >= 0
