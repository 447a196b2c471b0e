"""Simplex ETF construction and the ETF validator (docs/theory.md §1)."""

import numpy as np
import pytest

from ncmargin.theory import etf_deviation, haar_orthogonal, is_etf, simplex_etf

# Entries of M are O(1) and every identity below is a few float64 operations per entry (QR/matmul with
# K, d <= 50), so 1e-12 leaves ~1e3 eps of headroom.
TOL = 1e-12

CASES = [(2, None, None), (2, 1, None), (3, 2, 0), (4, 4, None), (5, 4, None), (5, 9, 7), (10, 9, 3),
         (10, 50, 1), (17, 16, None)]


@pytest.mark.parametrize("K,d,seed", CASES)
def test_gram_identity_and_etf_properties(K, d, seed):
    M = simplex_etf(K, d, seed=seed)
    assert M.shape == (K, K if d is None else d) and M.dtype == np.float64
    target = K / (K - 1) * (np.eye(K) - np.ones((K, K)) / K)
    np.testing.assert_allclose(M @ M.T, target, atol=TOL)
    np.testing.assert_allclose(np.linalg.norm(M, axis=1), 1.0, atol=TOL)
    np.testing.assert_allclose(M.sum(axis=0), 0.0, atol=TOL)
    assert np.linalg.matrix_rank(M) == K - 1
    D2 = np.sum((M[:, None] - M[None]) ** 2, axis=2)
    np.testing.assert_allclose(D2[~np.eye(K, dtype=bool)], 2 * K / (K - 1), atol=TOL)
    dev = etf_deviation(M)
    assert dev["max_dev"] < TOL and dev["rank"] == K - 1
    assert is_etf(M)


def test_canonical_is_deterministic_and_seed_rotates():
    np.testing.assert_array_equal(simplex_etf(6, 8), simplex_etf(6, 8))
    np.testing.assert_array_equal(simplex_etf(6, 8, seed=3), simplex_etf(6, 8, seed=3))
    A, B = simplex_etf(6, 8, seed=3), simplex_etf(6, 8, seed=4)
    assert np.abs(A - B).max() > 0.1
    # same Gram matrix: the seeds differ by an orthogonal change of frame only
    np.testing.assert_allclose(A @ A.T, B @ B.T, atol=TOL)
    # canonical d >= K is the centred identity, padded with zeros
    np.testing.assert_allclose(simplex_etf(3, 5)[:, 3:], 0.0)


def test_rotated_and_permuted_etf_is_etf():
    rng = np.random.default_rng(11)
    M = simplex_etf(7, 12, seed=5)
    Q = haar_orthogonal(12, rng)
    np.testing.assert_allclose(Q @ Q.T, np.eye(12), atol=TOL)
    assert is_etf(M @ Q)
    perm = rng.permutation(7)
    assert is_etf(M[perm])
    Mp = simplex_etf(7, 12, seed=5, perm=perm)
    np.testing.assert_array_equal(Mp, M[perm])  # class y gets vertex perm[y]
    assert is_etf(Mp)
    # scale invariance
    assert is_etf(3.5 * M) and not is_etf(3.5 * M, scale_invariant=False)


def test_deviation_values_on_known_perturbations():
    K = 5
    M = simplex_etf(K, 6, seed=2)
    A = M.copy()
    A[0] *= 1.1
    dev = etf_deviation(A)
    mean = (K + 0.1) / K
    assert dev["norm_dev"] == pytest.approx(max(1.1 / mean - 1, 1 - 1 / mean), rel=1e-12)
    assert dev["cos_dev"] < 1e-12  # scaling a row keeps all angles
    assert dev["center_norm"] == pytest.approx(0.1 / mean, rel=1e-12)  # sum = 0.1 m_0
    assert not is_etf(A)
    # a generic rotation of one row breaks the angles
    B = M.copy()
    B[1] = M[2]
    dev = etf_deviation(B)
    assert dev["cos_dev"] == pytest.approx(1 + 1 / (K - 1), rel=1e-12)
    assert dev["rank"] == K - 1 and dev["gram_error"] > 0.5 and not is_etf(B)
    # a full-rank non-centred frame: orthonormal rows
    dev = etf_deviation(np.eye(K))
    assert dev["rank"] == K and dev["cos_dev"] == pytest.approx(1 / (K - 1))


def test_bad_arguments():
    with pytest.raises(ValueError, match="d = 2 < K-1 = 3"):
        simplex_etf(4, 2)
    with pytest.raises(ValueError, match="K < 2"):
        simplex_etf(1, 3)
    with pytest.raises(ValueError, match="integer"):
        simplex_etf(4.5)
    with pytest.raises(ValueError, match="not a permutation"):
        simplex_etf(4, perm=[0, 1, 1, 2])
    with pytest.raises(ValueError, match="length K = 4"):
        simplex_etf(4, perm=[0, 1, 2])
    with pytest.raises(ValueError, match="all zeros"):
        etf_deviation(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN or Inf"):
        etf_deviation(np.full((3, 3), np.nan))
