"""Neural-collapse metrics (docs/theory.md §6): exact ETF cases, textbook cross-checks, streaming."""

import numpy as np
import pytest

from ncmargin.theory import (
    NCAccumulator,
    class_means,
    nc_metrics,
    nc_metrics_streaming,
    scatter_matrices,
    simplex_etf,
)

KEYS = ["nc1_topk", "nc1_pinv", "nc2_equinorm_means", "nc2_equiangular_means", "nc2_maxangle_means",
        "nc2_equinorm_classifier", "nc2_equiangular_classifier", "nc2_maxangle_classifier",
        "nc3_self_duality", "nc4_ncc_mismatch", "cdnv", "within_cov_trace", "between_cov_trace",
        "num_classes", "num_samples"]


def _structured(N=600, d=12, K=5, seed=0, offset=0.0, noise=1.0, balanced=False):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(K), N // K) if balanced else rng.integers(0, K, N)
    y[:K] = np.arange(K)
    mu = 3 * rng.standard_normal((K, d))
    H = offset + mu[y] + noise * rng.standard_normal((len(y), d))
    W = mu + 0.8 * rng.standard_normal((K, d))
    b = rng.standard_normal(K)
    return H, y, W, b


def _textbook(H, y, W, b):
    """Papyan et al. (2020) metrics the plain way: loop over classes, explicit covariances, pinv."""
    K = int(y.max()) + 1
    N, d = H.shape
    mu_G = H.mean(axis=0)
    means = np.stack([H[y == c].mean(axis=0) for c in range(K)])
    counts = np.array([np.sum(y == c) for c in range(K)])
    Sw = np.zeros((d, d))
    var = np.zeros(K)
    for c in range(K):
        R = H[y == c] - means[c]
        Sw += R.T @ R
        var[c] = np.mean(np.sum(R ** 2, axis=1))
    Sw /= N
    Sb = sum(counts[c] / N * np.outer(means[c] - mu_G, means[c] - mu_G) for c in range(K))
    lam, V = np.linalg.eigh(Sb)
    top = V[:, -(K - 1):] @ np.diag(1 / lam[-(K - 1):]) @ V[:, -(K - 1):].T
    out = {"nc1_topk": np.trace(Sw @ top) / K,
           "nc1_pinv": np.trace(Sw @ np.linalg.pinv(Sb, rcond=d * np.finfo(float).eps, hermitian=True)) / K}
    Mc = means - mu_G
    for name, R in (("means", Mc), ("classifier", W)):
        n = np.linalg.norm(R, axis=1)
        out[f"nc2_equinorm_{name}"] = np.std(n) / np.mean(n)
        cos = [R[i] @ R[j] / (n[i] * n[j]) for i in range(K) for j in range(K) if i < j]
        out[f"nc2_equiangular_{name}"] = np.std(cos)
        out[f"nc2_maxangle_{name}"] = np.mean([abs(c + 1 / (K - 1)) for c in cos])
    out["nc3_self_duality"] = np.linalg.norm(W / np.linalg.norm(W) - Mc / np.linalg.norm(Mc)) ** 2
    ncc = np.array([np.argmin([np.linalg.norm(h - m) for m in means]) for h in H])
    out["nc4_ncc_mismatch"] = np.mean(np.argmax(H @ W.T + b, axis=1) != ncc)
    out["cdnv"] = np.mean([(var[i] + var[j]) / (2 * np.sum((means[i] - means[j]) ** 2))
                           for i in range(K) for j in range(K) if i < j])
    out["within_cov_trace"] = np.trace(Sw)
    out["between_cov_trace"] = np.trace(Sb)
    return out, (Sw, Sb, mu_G, means)


@pytest.mark.parametrize("K,d,seed,perm", [(2, 1, None, False), (3, 2, 0, True), (5, 5, None, False),
                                          (6, 11, 4, True), (10, 9, 2, True)])
@pytest.mark.parametrize("scale", [1.0, 37.0])
def test_exact_etf_features_are_collapsed(K, d, seed, perm, scale):
    perm = np.random.default_rng(1).permutation(K) if perm else None
    M = simplex_etf(K, d, seed=seed, perm=perm)
    y = np.repeat(np.arange(K), 4)
    H = scale * M[y]
    r = nc_metrics(H, y, 0.5 * M, np.zeros(K))
    assert sorted(r) == sorted(KEYS)
    # Collapsed features are exact up to rounding of the class means (relative ~eps), so every
    # metric is 0 up to ~eps (NC2 std/angles) or ~eps^2 (variance-type NC1/NC3/CDNV); 1e-12 is safe.
    for k in KEYS[:11]:
        assert abs(r[k]) < 1e-12, (k, r[k])
    assert r["nc4_ncc_mismatch"] == 0.0
    assert r["within_cov_trace"] < 1e-20 * scale ** 2
    # Sigma_B of a unit ETF: (1/K) sum m_c m_c^T has trace 1 (rows of unit norm)
    assert r["between_cov_trace"] == pytest.approx(scale ** 2, rel=1e-12)
    assert r["num_classes"] == K and r["num_samples"] == 4 * K


def test_classifier_keys_none_without_W_and_bias_needs_W():
    H, y, _W, b = _structured()
    r = nc_metrics(H, y)
    for k in ("nc2_equinorm_classifier", "nc2_equiangular_classifier", "nc2_maxangle_classifier",
              "nc3_self_duality", "nc4_ncc_mismatch"):
        assert r[k] is None
    assert r["nc1_topk"] > 0 and r["cdnv"] > 0
    with pytest.raises(ValueError, match="bias b was given without a classifier W"):
        nc_metrics(H, y, None, b)


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_total_equals_within_plus_between(offset):
    H, y, _W, _b = _structured(offset=offset, seed=3)  # unbalanced classes
    ST, SW, SB, mu_G, means = scatter_matrices(H, y)
    scale = np.abs(ST).max()
    # ST and SW come from independently centred rows: the identity holds to rounding, ~N eps relative
    np.testing.assert_allclose(ST, SW + SB, rtol=0, atol=1e-12 * scale)
    assert not np.allclose(SW, 0) and not np.allclose(SB, 0)
    np.testing.assert_allclose(means, class_means(H, y), rtol=1e-14)
    np.testing.assert_allclose(mu_G, H.mean(axis=0), rtol=1e-14)


@pytest.mark.parametrize("balanced", [True, False])
def test_against_textbook_reference(balanced):
    H, y, W, b = _structured(balanced=balanced, seed=5)
    W = 0.2 * W + 3.0 * np.random.default_rng(0).standard_normal(W.shape)  # NCC and W disagree sometimes
    r = nc_metrics(H, y, W, b)
    ref, (Sw, Sb, _mu_G, _means) = _textbook(H, y, W, b)
    _ST, SW, SB, _mu, _mm = scatter_matrices(H, y)
    np.testing.assert_allclose(SW, Sw, rtol=0, atol=1e-12 * np.abs(Sw).max())
    np.testing.assert_allclose(SB, Sb, rtol=0, atol=1e-12 * np.abs(Sb).max())
    for k, v in ref.items():
        # different summation orders only: well-conditioned data, 1e-10 relative is ~1e6 eps
        assert r[k] == pytest.approx(v, rel=1e-10, abs=1e-14), k
    assert 0 < r["nc4_ncc_mismatch"] < 1  # the data was made so that NCC and W disagree sometimes


def test_nc1_pinv_differs_from_topk_when_d_small():
    # d = K-1: Sigma_B has rank K-1 = d, so both variants agree; with K-1 < d they coincide too for
    # generic data (rank K-1). A rank-deficient Sigma_B (two equal class means) separates them.
    H, y, _W, _b = _structured(K=4, d=6, seed=7)
    r = nc_metrics(H, y)
    assert r["nc1_topk"] == pytest.approx(r["nc1_pinv"], rel=1e-10)
    H2 = H.copy()
    H2[y == 3] += (H[y == 2].mean(axis=0) - H[y == 3].mean(axis=0))  # class 3 mean = class 2 mean
    r2 = nc_metrics(H2, y)
    assert np.isfinite(r2["nc1_pinv"]) and r2["nc1_topk"] > 1e6 * r2["nc1_pinv"]


def _chunker(H, y, sizes):
    def chunks():
        start = 0
        i = 0
        while start < len(y):
            n = sizes[i % len(sizes)]
            yield H[start:start + n], y[start:start + n]
            start += n
            i += 1
    return chunks


@pytest.mark.parametrize("offset,noise", [(0.0, 1.0), (1e6, 1.0), (50.0, 1e-6)])
def test_streaming_equals_in_memory(offset, noise):
    H, y, W, b = _structured(N=900, d=16, K=7, seed=2, offset=offset, noise=noise)
    r = nc_metrics(H, y, W, b)
    for sizes in ([1, 2, 500], [37], [900], [13, 1]):
        s = nc_metrics_streaming(_chunker(H, y, sizes), 7, W, b)
        assert sorted(s) == sorted(KEYS)
        for k in KEYS:
            assert s[k] == pytest.approx(r[k], rel=1e-10, abs=0), (k, sizes)
    s = nc_metrics_streaming(_chunker(H, y, [100]), 7)
    r = nc_metrics(H, y)
    for k in KEYS:
        assert s[k] == (None if r[k] is None else pytest.approx(r[k], rel=1e-10, abs=0)), k


def test_accumulator_has_no_cancellation():
    # Collapsed features far from the origin: E[hh^T] - mu mu^T would leave ~eps * 1e12 ~ 1e-4 noise.
    K = 4
    M = simplex_etf(K, 6, seed=3)
    y = np.tile(np.arange(K), 50)
    H = 1e6 + M[y]
    acc = NCAccumulator(K, 6)
    for i in range(0, len(y), 7):
        acc.update(H[i:i + 7], y[i:i + 7])
    SW, SB, _mu_G = acc.covariances()
    assert np.abs(SW).max() < 1e-18
    np.testing.assert_allclose(SB, M.T @ M / K, atol=1e-9)  # mean rounding at 1e6: ~1e-10
    assert acc.num_samples == 200


def test_streaming_errors():
    H, y, W, b = _structured()
    with pytest.raises(ValueError, match="zero-argument callable"):
        nc_metrics_streaming([(H, y)], 5)
    with pytest.raises(ValueError, match="yielded no chunk"):
        nc_metrics_streaming(lambda: iter([]), 5)
    with pytest.raises(ValueError, match=r"class with no sample: classes 5"):
        nc_metrics_streaming(lambda: iter([(H, y)]), 6)
    with pytest.raises(ValueError, match=r"outside 0\.\.K-1"):
        nc_metrics_streaming(lambda: iter([(H, y)]), 3)
    calls = []

    def changing():
        calls.append(1)
        return iter([(H, y)] if len(calls) == 1 else [(H[:10], y[:10])])
    with pytest.raises(ValueError, match="second pass"):
        nc_metrics_streaming(changing, 5, W, b)
    with pytest.raises(ValueError, match="feature dimension"):
        NCAccumulator(5, 12).update(H[:, :3], y)
    with pytest.raises(ValueError, match="NaN or Inf"):
        H2 = H.copy()
        H2[0, 0] = np.nan
        nc_metrics(H2, y)


@pytest.mark.parametrize("offset,noise", [(0.0, 1e-5), (1e3, 1e-4)])
def test_near_collapsed_nc1_matches_extended_precision(offset, noise):
    # NC1 ~ 1e-11 .. 1e-9 (collapsed features, also far from the origin): the accumulated Sigma_W must keep
    # its relative accuracy; a Gram identity H^T H / N - sum_c (n_c/N) mu_c mu_c^T would lose all digits
    # here. Reference: explicit per-class centring in long double (docs/theory.md §6).
    rng = np.random.default_rng(1)
    K, d, N = 6, 20, 1200
    y = rng.integers(0, K, N)
    y[:K] = np.arange(K)
    mu = rng.standard_normal((K, d))
    H = offset + mu[y] + noise * rng.standard_normal((N, d))
    Hl = H.astype(np.longdouble)
    means = np.array([Hl[y == c].mean(axis=0) for c in range(K)])
    R = Hl - means[y]
    Sw = R.T @ R / N
    n = np.bincount(y).astype(np.longdouble)
    Mc = means - (n[:, None] * means).sum(axis=0) / N
    Sb = (Mc * (n / N)[:, None]).T @ Mc
    V = np.linalg.eigh(Sb.astype(np.float64))[1][:, d - (K - 1):].astype(np.longdouble)
    nc1_ref = float(np.sum(np.einsum("ij,ij->j", V, Sw @ V) / np.einsum("ij,ij->j", V, Sb @ V)) / K)
    var0 = float(np.sum(R[y == 0] ** 2) / n[0])
    r = nc_metrics(H, y)
    assert 1e-13 < nc1_ref < 1e-8
    assert r["nc1_topk"] == pytest.approx(nc1_ref, rel=1e-10)
    assert r["within_cov_trace"] == pytest.approx(float(np.trace(Sw)), rel=1e-10)
    acc = NCAccumulator(K, d).update(H, y)
    assert acc.class_sq_spread[0] / acc.counts[0] == pytest.approx(var0, rel=1e-10)


@pytest.fixture
def compiled(monkeypatch):
    """Force the compiled row loops of theory/_nc_kernels.py at test sizes (they are used from 4M entries)."""
    from ncmargin.theory import nc as nc_module
    monkeypatch.setattr(nc_module, "_KERNEL_MIN_ELEMS", 0)


@pytest.mark.parametrize("offset,noise,K,d", [(0.0, 1.0, 5, 12), (1e6, 1.0, 7, 16), (50.0, 1e-6, 7, 16),
                                              (3.0, 1.0, 9, 4)])
def test_compiled_passes_equal_numpy_passes(offset, noise, K, d, monkeypatch):
    # the same arithmetic in two implementations: the numpy block code (small inputs) and the numba row
    # loops (inputs >= nc._KERNEL_MIN_ELEMS entries); the row norms differ only in summation order
    from ncmargin.theory import nc as nc_module
    H, y, W, b = _structured(N=1500, d=d, K=K, seed=4, offset=offset, noise=noise)
    W = 0.2 * W + 3.0 * np.random.default_rng(0).standard_normal(W.shape)  # NCC and W disagree sometimes
    ref = nc_metrics(H, y, W, b)
    monkeypatch.setattr(nc_module, "_KERNEL_MIN_ELEMS", 0)
    got = nc_metrics(H, y, W, b)
    stream = nc_metrics_streaming(_chunker(H, y, [1, 300, 7]), K, W, b)
    for k in KEYS:
        assert got[k] == pytest.approx(ref[k], rel=1e-12, abs=0), k
        assert stream[k] == pytest.approx(ref[k], rel=1e-10, abs=0), k
    assert got["nc4_ncc_mismatch"] == ref["nc4_ncc_mismatch"]
    if offset == 0.0:
        assert 0 < ref["nc4_ncc_mismatch"] < 1


def test_more_classes_than_dimensions_against_textbook(compiled):
    # K > d: Sigma_B has rank d, the basis of the centred means is d x d (docs/theory.md §6)
    H, y, W, b = _structured(N=800, d=4, K=9, seed=11)
    r = nc_metrics(H, y, W, b)
    ref, _ = _textbook(H, y, W, b)
    for k in ("nc1_pinv", "nc4_ncc_mismatch", "cdnv", "within_cov_trace", "between_cov_trace"):
        assert r[k] == pytest.approx(ref[k], rel=1e-10), k
    assert np.isfinite(r["nc1_topk"])  # top min(K-1, d) = d eigenpairs, all positive here


def test_accumulator_without_scatter(compiled):
    H, y, _W, _b = _structured()
    full = NCAccumulator(5, 12).update(H, y)
    lean = NCAccumulator(5, 12, scatter=False).update(H, y)
    np.testing.assert_allclose(lean.means, full.means, rtol=1e-14)
    np.testing.assert_allclose(lean.class_sq_spread, full.class_sq_spread, rtol=1e-12)
    np.testing.assert_array_equal(lean.counts, full.counts)
    with pytest.raises(ValueError, match="scatter=False"):
        _ = lean.within_scatter
    leaner = NCAccumulator(5, 12, scatter=False, spread=False).update(H, y)  # what nc_metrics runs as pass 1
    np.testing.assert_array_equal(leaner.means, lean.means)
    with pytest.raises(ValueError, match="spread=False"):
        _ = leaner.class_sq_spread


@pytest.mark.parametrize("offset,noise", [(0.0, 1e-5), (1e3, 1e-4)])
def test_near_collapsed_nc1_compiled(offset, noise, compiled):
    test_near_collapsed_nc1_matches_extended_precision(offset, noise)


@pytest.mark.parametrize("use_kernels", [False, True])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rows_are_named_after_pass_1(bad, use_kernels, monkeypatch):
    # nc_metrics scans H for NaN/Inf only when pass 1's class sums come out non-finite; the error must still
    # name the rows, whether the bad row is the first of its class (its shift) or a later one
    from ncmargin.theory import nc as nc_module
    if use_kernels:
        monkeypatch.setattr(nc_module, "_KERNEL_MIN_ELEMS", 0)
    H, y, W, b = _structured()
    for row in (int(np.flatnonzero(y == 2)[0]), 77):
        H2 = H.copy()
        H2[row, 3] = bad
        with pytest.raises(ValueError, match=rf"NaN or Inf in 1 of {len(y)} rows \(first rows: {row}\)"):
            nc_metrics(H2, y, W, b)
    # finite values near the top of float64 are not an input error: rescaled (see the absurd-scales test)
    H3 = H.copy()
    H3[y == 1] = 1e308
    H3[y == 2] = -1e308
    r = nc_metrics(H3, y)  # (the classes near 1 are then ~1e-308: their squared distances underflow, so
    assert r["num_samples"] == len(y) and np.isfinite(r["nc1_pinv"])  # the CDNV of those pairs is undefined)


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e-120, 1e120, 1e200, 1e300])
def test_absurd_scales_give_the_same_metrics(scale):
    # every metric but the traces is invariant under h -> s h (with b -> s b); beyond ~1e+-90 nc_metrics
    # rescales by an exact power of two first (at 1e-200 Sigma_B's eigenvalues would underflow to 0)
    H, y, W, b = _structured(seed=8)
    base = nc_metrics(H, y, W, b)
    with np.errstate(all="raise"):  # no silent overflow/underflow/NaN inside
        r = nc_metrics(H * scale, y, W, b * scale)
        st = nc_metrics_streaming(_chunker(H * scale, y, [37]), 5, W, b * scale)
    for res in (r, st):
        for k in KEYS:
            if k in ("within_cov_trace", "between_cov_trace"):
                continue
            assert res[k] == pytest.approx(base[k], rel=1e-9, abs=0), k
        if 1e-150 < scale < 1e150:  # the traces scale by s^2 where that is a float64
            assert res["within_cov_trace"] == pytest.approx(base["within_cov_trace"] * scale ** 2, rel=1e-9)
