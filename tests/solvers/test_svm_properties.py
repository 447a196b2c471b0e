"""Property test of multiclass_svm (docs/theory.md §3): on random shapes, labels and feature scales
1e-8..1e8, every input is either solved with a certificate (status optimal: violation ≤ 1e-8, relative
gap ≤ 1e-6), proven not separable (NotSeparableError), or rejected with a clear ValueError (NaN/Inf)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncmargin.solvers import NotSeparableError, Status, multiclass_svm


@st.composite
def problems(draw):
    K = draw(st.integers(2, 5))
    d = draw(st.integers(1, 8))
    n = draw(st.integers(K, 40))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    scale = 10.0 ** draw(st.floats(-8, 8))
    spread = draw(st.sampled_from([0.5, 3.0, 10.0]))
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(K), rng.integers(0, K, n - K)])
    H = (spread * rng.standard_normal((K, d))[y] + rng.standard_normal((n, d))) * scale
    C = draw(st.sampled_from([None, None, 0.1, 10.0]))
    if C is not None:
        C = C / scale ** 2  # the same problem at every scale (docs §3 "scaling")
    bias = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    return H.astype(dtype), y, C, bias


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_certified_or_proven_infeasible(prob):
    H, y, C, bias = prob
    try:
        sol = multiclass_svm(H, y, C=C, bias=bias, bias_scale=float(np.abs(H).max()) or 1.0)
    except NotSeparableError as exc:
        assert C is None and "separating LP" in str(exc)
        return
    assert sol.status == Status.OPTIMAL and sol.certified, (sol.status, sol.duality_gap, sol.max_violation)
    assert np.all(np.isfinite(sol.W))
    if C is None:
        assert sol.p_min == pytest.approx(1.0, abs=1e-6)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.sampled_from([np.nan, np.inf, -np.inf]), st.booleans())
def test_nonfinite_is_a_value_error(seed, bad, f32):
    rng = np.random.default_rng(seed)
    H = rng.standard_normal((12, 3)).astype(np.float32 if f32 else np.float64)
    y = np.arange(12) % 3
    H[rng.integers(12), rng.integers(3)] = bad
    with pytest.raises(ValueError, match="NaN/Inf"):
        multiclass_svm(H, y)
