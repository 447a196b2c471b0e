"""Tests of ncmargin.solvers.multiclass_svm (docs/theory.md §3); tolerances: the certificate thresholds
(max violation 1e-8, relative gap 1e-6) and float64 rounding."""

import numpy as np
import pytest

from ncmargin.solvers import NotSeparableError, multiclass_svm, svm_certificate
from ncmargin.theory import margins, simplex_etf

from .conftest import separable


def _ok(sol, tol=1e-8):
    assert sol.status == "optimal"
    assert sol.max_violation <= tol
    assert 0 <= sol.duality_gap <= 1e-6


@pytest.mark.parametrize("K,d,n", [(3, 2, 4), (4, 10, 5), (10, 16, 3)])
@pytest.mark.parametrize("method", ["auto", "cvxpy"])
def test_unit_etf_closed_form(K, d, n, method):
    M = simplex_etf(K, d, seed=1)
    y = np.repeat(np.arange(K), n)
    sol = multiclass_svm(M[y], y, method=method)
    _ok(sol)
    np.testing.assert_allclose(sol.W, (K - 1) / K * M, atol=1e-7)
    assert sol.objective == pytest.approx((K - 1) ** 2 / (2 * K), rel=1e-9)
    assert sol.margin == pytest.approx(1 / np.linalg.norm((K - 1) / K * M), rel=1e-8)
    assert sol.p_min == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_working_set_matches_cvxpy(bias, seed):
    H, y = separable(300, 8, 4, seed=seed)
    H = H + 2.0 * bias  # off-centre data so the bias matters
    ref = multiclass_svm(H, y, method="cvxpy", bias=bias)
    ws = multiclass_svm(H, y, bias=bias)
    _ok(ref)
    _ok(ws)
    assert ws.method == "working_set" and ref.method == "cvxpy"
    assert ws.objective == pytest.approx(ref.objective, rel=1e-6)
    np.testing.assert_allclose(ws.W, ref.W, atol=1e-4)
    if bias:
        assert ws.b is not None and ref.b is not None
        np.testing.assert_allclose(ws.b, ref.b, atol=1e-4)
        # the reported b is the bias of the logits H W^T + b
        p = margins(H, y, ws.W, ws.b)
        assert p.min() == pytest.approx(ws.p_min, abs=1e-9)
    else:
        assert ws.b is None
    # working set is much smaller than the N(K-1) constraints, support matches the reference
    assert ws.working_set_size < 300 * 3
    # the interior-point reference leaves multipliers ~1e-9 of the largest on inactive pairs (measured:
    # 1.9e-10 on a pair with margin 1.001), so its support is read at 1e-6 of the largest multiplier
    ref_sup = np.unique(ref.support_pairs[ref.alpha > 1e-6 * ref.alpha.max(), 0])
    assert set(ws.support.tolist()) == set(ref_sup.tolist())


def test_soft_margin_matches_cvxpy_and_sklearn():
    sklearn_svm = pytest.importorskip("sklearn.svm")
    H, y = separable(240, 5, 4, seed=3, spread=1.5, noise=1.0)  # overlapping classes
    C = 0.7
    ws = multiclass_svm(H, y, C=C)
    ref = multiclass_svm(H, y, C=C, method="cvxpy")
    _ok(ws)
    _ok(ref)
    assert ws.objective == pytest.approx(ref.objective, rel=1e-6)
    np.testing.assert_allclose(ws.W, ref.W, atol=1e-4)
    clf = sklearn_svm.LinearSVC(multi_class="crammer_singer", fit_intercept=False, C=C, tol=1e-12,
                                max_iter=1_000_000).fit(H, y)
    Wsk = clf.coef_
    p = margins(H, y, Wsk)
    obj_sk = 0.5 * np.sum(Wsk ** 2) + C * np.maximum(0, 1 - p).sum()
    # LIBLINEAR minimizes the same objective with the same C: equal optimum up to its tolerance,
    # and never below our certified lower bound (the dual objective)
    assert obj_sk >= ws.dual_objective * (1 - 1e-12)
    assert obj_sk == pytest.approx(ws.objective, rel=1e-5)
    np.testing.assert_allclose(Wsk, ws.W, atol=1e-3)
    assert ws.n_misclassified > 0  # the soft margin really is active here


def test_not_separable_raises():
    rng = np.random.default_rng(0)
    H = rng.standard_normal((60, 3))
    y = rng.integers(0, 3, 60)
    for method in ("auto", "cvxpy"):
        with pytest.raises(NotSeparableError, match=r"misclassifies \d+ of 60.*C=") as ei:
            multiclass_svm(H, y, method=method)
        assert isinstance(ei.value, ValueError)
        assert 0 < ei.value.n_misclassified <= 60


def test_degenerate_duplicates_singleton_class_and_d_gt_N():
    rng = np.random.default_rng(5)
    d = 40
    H = rng.standard_normal((12, d))
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 1, 0])  # class 3 has a single sample; d > N
    H2 = np.vstack([H, H[:5]])  # exact duplicates (same rows and labels)
    y2 = np.concatenate([y, y[:5]])
    ref = multiclass_svm(H, y, method="cvxpy")
    for HH, yy in ((H, y), (H2, y2)):
        sol = multiclass_svm(HH, yy)
        _ok(sol)
        assert sol.objective == pytest.approx(ref.objective, rel=1e-6)
        np.testing.assert_allclose(sol.W, ref.W, atol=1e-5)
    # a class with no sample at all (K given): its row is still constrained as a competitor
    sol = multiclass_svm(H[y < 3], y[y < 3], K=5)
    _ok(sol)
    assert sol.W.shape == (5, d)


def test_certificate_is_honest_for_a_suboptimal_point():
    H, y = separable(200, 6, 3, seed=2)
    sol = multiclass_svm(H, y)
    idx = np.flatnonzero(sol.alpha > 0)
    pi, pk = sol.support_pairs[:, 0], sol.support_pairs[:, 1]
    # a scaled-down classifier violates the constraints, a scaled-up one has a positive gap
    bad = svm_certificate(H, y, 0.9 * sol.W, pi, pk, sol.alpha)
    assert bad["max_violation"] == pytest.approx(0.1, rel=1e-6)
    up = svm_certificate(H, y, 1.1 * sol.W, pi, pk, sol.alpha)
    assert up["max_violation"] == 0 and up["duality_gap"] > 0.1
    assert idx.size == sol.support_pairs.shape[0]


def test_bad_input():
    H, y = separable(30, 4, 3)
    with pytest.raises(ValueError, match="C must be a positive"):
        multiclass_svm(H, y, C=-1.0)
    with pytest.raises(ValueError, match="unknown method"):
        multiclass_svm(H, y, method="magic")
    Hn = H.copy()
    Hn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        multiclass_svm(Hn, y)
    with pytest.raises(ValueError):
        multiclass_svm(H, y[:-1])


def test_summary_json_roundtrip():
    import json

    H, y = separable(60, 4, 3)
    sol = multiclass_svm(H, y, bias=True)
    out = json.loads(json.dumps(sol.to_dict(), allow_nan=False))
    for key in ("W", "b", "objective", "margin", "duality_gap", "max_violation", "n_support", "status",
                "seconds", "kkt_residual", "p_min"):
        assert key in out
    assert out["status"] == "optimal" and len(out["b"]) == 3


@pytest.mark.slow
def test_benchmark_shape_medium():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from bench_svm import make_features

    H, y, _ = make_features(5000, 64, 10, seed=0, noise=1.5)
    ws = multiclass_svm(H, y)
    _ok(ws)
    ref = multiclass_svm(H, y, method="cvxpy")
    assert ws.objective == pytest.approx(ref.objective, rel=1e-6)


@pytest.mark.parametrize("N,d,K,spread,noise", [
    (400, 6, 12, 6.0, 0.5),    # K·d small: singular restricted Gram, pivoting falls back to Clarabel
    (150, 200, 5, 3.0, 1.0),   # d > N: every sample can be a support vector
])
def test_working_set_matches_cvxpy_shapes(N, d, K, spread, noise):
    H, y = separable(N, d, K, seed=7, spread=spread, noise=noise)
    ws = multiclass_svm(H, y)
    ref = multiclass_svm(H, y, method="cvxpy")
    _ok(ws)
    _ok(ref)
    assert ws.objective == pytest.approx(ref.objective, rel=1e-6)
    np.testing.assert_allclose(ws.W, ref.W, atol=1e-4 * max(1.0, np.abs(ref.W).max()))
