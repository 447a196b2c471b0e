"""The default SVM solver (dual coordinate descent + exact finish + certificate, docs/theory.md §3):
agreement with cvxpy, float32 input, scaling, limits, status type, the torch backend, non-separability.
Tolerances: the certificate thresholds (violation 1e-8, relative gap 1e-6) and the issue's cvxpy agreement
(objective 1e-6 relative, W 1e-4)."""

import json
import time
import tracemalloc

import numpy as np
import pytest

from ncmargin.solvers import NotSeparableError, Status, multiclass_svm

from .conftest import separable


def _agree(sol, ref, w_tol=1e-4):
    assert sol.certified and ref.certified
    assert sol.objective == pytest.approx(ref.objective, rel=1e-6)
    np.testing.assert_allclose(sol.W, ref.W, atol=w_tol * max(1.0, np.abs(ref.W).max()))
    if ref.b is not None:
        np.testing.assert_allclose(sol.b, ref.b, atol=w_tol * max(1.0, np.abs(ref.W).max()))


@pytest.mark.parametrize("method", ["auto", "dcd"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("C", [None, 0.5, 50.0])
def test_matches_cvxpy(method, bias, C):
    H, y = separable(200, 6, 4, seed=11, spread=2.5, noise=0.7 if C is None else 1.2)
    H = H + 1.5 * bias
    if C is None:
        try:
            ref = multiclass_svm(H, y, bias=bias, method="cvxpy")
        except NotSeparableError:
            pytest.skip("draw not separable")
    else:
        ref = multiclass_svm(H, y, C=C, bias=bias, method="cvxpy")
    if method == "dcd" and C == 50.0 and not bias:
        # a limit of the method family, not of our kernel: on this non-separable d = 6, K = 4 draw (dual rank
        # <= 24 for ~40 active pairs, samples at the bound C) coordinate descent converges linearly at a rate
        # near 1 -- DCD alone ends at certified gap 2.5e-4 (status iteration_limit, never "optimal"), and
        # liblinear's Crammer-Singer solver (LinearSVC, C = 50, tol 1e-8) is 2.1e-4 above the optimum after
        # 100,000 iterations. method="auto" sees DCD's round budget spent and finishes exactly (tested above).
        pytest.xfail("coordinate descent alone (ours and liblinear's) stalls at gap ~2e-4 here")
    sol = multiclass_svm(H, y, C=C, bias=bias, method=method)
    assert sol.method == ("working_set" if method == "auto" else "dcd")
    # DCD alone stops at a certified gap 1e-7: W within sqrt(2 gap obj) of the optimum (strong convexity)
    _agree(sol, ref, w_tol=1e-4 if method == "auto" else 3e-3)


def test_status_type_and_to_dict():
    H, y = separable(80, 4, 3, spread=6.0)
    sol = multiclass_svm(H, y)
    assert sol.status == Status.OPTIMAL == "optimal" and type(sol.status) is str
    assert str(Status.TIME_LIMIT) == "time_limit" and f"{Status.OPTIMAL}" == "optimal"
    assert sol.certified is True
    d = sol.to_dict()
    json.dumps(d, allow_nan=False)  # plain Python values only
    assert d["status"] == "optimal" and d["certified"] is True and len(d["W"]) == 3


def test_no_io_import_in_solvers():
    import ast
    from pathlib import Path

    import ncmargin.solvers as S

    for f in Path(S.__file__).parent.glob("*.py"):
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n.startswith("ncmargin.io") for n in names if n), (f, names)
        for node in tree.body:  # torch only lazily (inside functions), never at module import
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n.startswith("torch") for n in names if n), (f, names)


def test_float32_input():
    H, y = separable(300, 16, 5, seed=2, spread=4.0, noise=0.8)
    H32 = H.astype(np.float32)
    _agree(multiclass_svm(H32, y), multiclass_svm(H32.astype(np.float64), y), w_tol=1e-6)


@pytest.mark.slow  # ~10 s (tracemalloc slows numpy down)
def test_float32_without_float64_copy(monkeypatch):
    # memory: a float64 copy of H alone would take 2x the float32 input; chunks made small (1 MiB) so that
    # they do not dominate at this test size
    import ncmargin.solvers.certificate as certificate_mod

    monkeypatch.setattr(certificate_mod, "CHUNK_ELEMS", 1 << 17)
    Hb, yb = separable(40_000, 128, 5, seed=2, spread=6.0, noise=0.5)
    Hb = Hb.astype(np.float32)
    # numba's one-time start-up in this process (its typing registries and the cached kernel: ~20 MB of Python
    # objects, whatever the size of H) happens before tracing, as in test_memory_cap_honored; traced, it was
    # what made this test fail (43.5 MB peak) while the solver itself peaks at ~0.7x H here
    multiclass_svm(Hb[:2000], yb[:2000])
    tracemalloc.start()
    sol = multiclass_svm(Hb, yb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sol.certified
    assert peak < 1.5 * Hb.nbytes, (peak, Hb.nbytes)  # chunks (<= 32 MiB) and O(N) vectors only


@pytest.mark.parametrize("scale", [1e-6, 1e-200, 1e200, 1e8])
def test_scaled_features_solve_and_map_back(scale):
    H, y = separable(150, 5, 3, seed=4)
    base = multiclass_svm(H, y)
    sol = multiclass_svm(H * scale, y)
    assert sol.certified
    # W scales by 1/s, the objective by 1/s², margins p_min are invariant
    np.testing.assert_allclose(sol.W * scale, base.W, rtol=1e-6, atol=1e-8 * np.abs(base.W).max())
    assert sol.margin / scale == pytest.approx(base.margin, rel=1e-8)
    if 1e-100 < scale < 1e100:  # elsewhere ½||W||² ~ scale^-2 is outside float64's range
        assert sol.objective * scale * scale == pytest.approx(base.objective, rel=1e-8)
    assert sol.p_min == pytest.approx(base.p_min, abs=1e-8)
    assert sol.normalized_margin == pytest.approx(base.normalized_margin, rel=1e-8)


def test_scaled_soft_margin_and_bias():
    H, y = separable(150, 5, 3, seed=5, spread=1.5, noise=1.0)
    base = multiclass_svm(H, y, C=2.0, bias=True)
    s = 1e-6
    sol = multiclass_svm(H * s, y, C=2.0 / s ** 2, bias=True, bias_scale=s)  # the same problem in H*s units
    assert sol.certified
    np.testing.assert_allclose(sol.W * s, base.W, atol=1e-6)
    np.testing.assert_allclose(sol.b, base.b, atol=1e-6)


def _nonsep(seed=0, N=60):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, 3)), rng.integers(0, 3, N)


def test_not_separable_is_certified_with_soft_count():
    H, y = _nonsep()
    with pytest.raises(NotSeparableError, match=r"separating LP on \d+ samples is infeasible.*misclassifies"
                                                r" \d+ of 60") as ei:
        multiclass_svm(H, y)
    soft = multiclass_svm(H, y, C=1.0)
    assert ei.value.n_misclassified == soft.n_misclassified > 0


@pytest.mark.parametrize("C", [1.0, 1e6, 1e12])
def test_soft_margin_never_reports_hard_margin_infeasible(C):
    H, y = _nonsep(1)
    sol = multiclass_svm(H, y, C=C)  # must not raise: a soft margin is always feasible
    assert sol.status in (Status.OPTIMAL, Status.INACCURATE)
    if C <= 1.0:  # C = 1e6, 1e12: finishes, but DCD and Clarabel may not reach gap 1e-6 (known limit)
        assert sol.certified


def test_cli_soft_1e12_on_nonseparable_file(tmp_path, capsys):
    from ncmargin.cli import main
    from ncmargin.io import save_features

    H, y = _nonsep(2, 80)
    f = tmp_path / "nonsep.npz"
    save_features(f, H, y, split="train")
    rc = main(["svm", str(f), "--soft", "1e12", "--no-arrays"])
    out = capsys.readouterr()
    assert "infeasible" not in out.err and "not linearly separable" not in out.err
    res = json.loads(out.out)
    assert res["C"] == 1e12 and res["status"] in ("optimal", "inaccurate") and rc in (0, 1)


def test_time_limit_returns_feasible_certified_gap():
    rng = np.random.default_rng(0)
    K, d, N = 50, 128, 60000
    M = rng.standard_normal((K, d)) / np.sqrt(d)
    y = rng.integers(0, K, N)
    H = M[y] + 0.9 * rng.standard_normal((N, d)) / np.sqrt(d)
    multiclass_svm(H[:500], y[:500])  # compiled kernel loaded
    t = time.perf_counter()
    sol = multiclass_svm(H, y, max_seconds=0.5)
    el = time.perf_counter() - t
    assert el < 0.5 * 1.1 + 0.5  # honored (0.5 s slack for the shared test machine)
    if sol.status == Status.OPTIMAL:
        pytest.skip("solved within the limit on this machine")
    assert sol.status == Status.TIME_LIMIT and not sol.certified
    if sol.max_violation >= 1.0:
        # stopped before any iterate separated the data (seen on a loaded machine): no rescaling of W is
        # feasible, and the certificate must not pretend otherwise: the certified gap is infinite
        assert sol.duality_gap == np.inf
        return
    # the returned W is feasible (W/(1-ε) rescaled), so ½||W||² bounds the optimum from above (weak duality;
    # for an infeasible W above it does not), and its gap is a certified finite bound
    assert sol.max_violation <= 1e-8
    assert sol.dual_objective <= sol.objective
    assert np.isfinite(sol.duality_gap) and sol.duality_gap >= 0


@pytest.mark.parametrize("shape,cap", [((20000, 32, 10), 40e6), ((8000, 256, 20), 12e6)])
def test_memory_cap_honored(shape, cap):
    # (8000, 256, 20) under 12 MB: the closing certificate used to take its default chunks (32 MiB) and pair
    # blocks whatever the cap (measured 54.7 MB traced at 12,000 samples; 114 MB under a 100 MB cap at
    # 50k x 512 x 100); it now sizes them by the cap
    H, y = separable(*shape, seed=3, spread=4.0, noise=0.8)
    multiclass_svm(H[:300], y[:300])
    tracemalloc.start()
    sol = multiclass_svm(H, y, max_memory_bytes=cap)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak <= 1.1 * cap, peak
    assert sol.status in (Status.OPTIMAL, Status.MEMORY_LIMIT)


def test_memory_cap_too_small_is_a_status_not_a_crash():
    H, y = separable(5000, 16, 5, seed=3)
    sol = multiclass_svm(H, y, max_memory_bytes=1e4)
    assert sol.status == Status.MEMORY_LIMIT and not sol.certified


def test_torch_backend_same_certified_answer():
    pytest.importorskip("torch")
    H, y = separable(400, 8, 5, seed=9, spread=3.0, noise=0.8)
    a = multiclass_svm(H, y)
    b = multiclass_svm(H, y, backend="torch")
    assert b.info["backend"] == "torch"
    _agree(b, a, w_tol=1e-9)
    c = multiclass_svm(H.astype(np.float32), y, C=3.0, backend="torch")
    d = multiclass_svm(H.astype(np.float32), y, C=3.0)
    _agree(c, d, w_tol=1e-8)


def test_bad_inputs_clear_errors():
    H, y = separable(30, 4, 3)
    for bad in (np.nan, np.inf):
        Hb = H.copy()
        Hb[3, 1] = bad
        with pytest.raises(ValueError, match="NaN/Inf"):
            multiclass_svm(Hb, y)
    with pytest.raises(ValueError, match="max_seconds"):
        multiclass_svm(H, y, max_seconds=-1)
    with pytest.raises(ValueError, match="backend"):
        multiclass_svm(H, y, backend="jax")


def test_auto_policy_exact_finish_or_dcd_both_certified():
    # > 1,000 support pairs: "auto" continues DCD to 0.1 gap_tol (method "dcd"); a gap_tol below 1e-9 asks for
    # the exact working-set finish instead (docs/theory.md §3); both answers are certified and the DCD one is
    # above the exact optimum by no more than its certified gap
    rng = np.random.default_rng(1)
    N, d, K = 2000, 256, 10
    M = rng.standard_normal((K, d)) / np.sqrt(d)
    y = np.arange(N) % K
    H = M[y] + 3.0 * rng.standard_normal((N, d)) / np.sqrt(d)
    fast = multiclass_svm(H, y)
    exact = multiclass_svm(H, y, gap_tol=1e-12)
    assert fast.method == "dcd" and len(fast.support_pairs) > 1000 and fast.certified
    assert exact.method == "working_set" and exact.certified and exact.duality_gap <= 1e-12
    # the relative gap is (P - D)/P, so P (1 - gap) = D <= P* <= P (rounding of the exact one: 1e-12)
    assert exact.objective <= fast.objective * (1 + 1e-12)
    assert fast.objective * (1 - fast.duality_gap) <= exact.objective * (1 + 1e-12)
    assert fast.max_violation <= 1e-8
