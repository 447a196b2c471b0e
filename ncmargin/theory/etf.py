"""Simplex equiangular tight frames (docs/theory.md §1).

A simplex ETF in rows is ``M = sqrt(K/(K-1)) (I_K - 11^T/K) U^T`` with ``U`` (d x K) having orthonormal
columns (Papyan, Han & Donoho 2020, Definition 1, written in rows). Its rows have unit norm, pairwise
cosine -1/(K-1), sum to zero, the matrix has rank K-1 and Gram matrix ``M M^T = K/(K-1)(I - 11^T/K)``.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.linalg

from .checks import check_matrix, check_num_classes, check_tolerance

__all__ = ["etf_deviation", "haar_orthogonal", "is_etf", "simplex_etf"]


def haar_orthogonal(d: int, rng) -> np.ndarray:
    """A Haar-distributed d x d orthogonal matrix: QR of a Gaussian matrix with the sign fix
    ``Q <- Q diag(sign(diag(R)))`` (Mezzadri 2007, "How to generate random matrices from the classical
    compact groups", eq. (5.1)-(5.3))."""
    rng = np.random.default_rng(rng)
    Z = rng.standard_normal((d, d))
    Q, R = np.linalg.qr(Z)
    s = np.sign(np.diag(R))
    s[s == 0] = 1.0
    return Q * s


def _check_perm(perm, K: int) -> np.ndarray:
    p = np.asarray(perm)
    if p.ndim != 1 or p.shape[0] != K:
        raise ValueError(f"perm must be a 1-D permutation of 0..{K - 1} (length K = {K}), got shape "
                         f"{p.shape}; pass e.g. np.random.default_rng(0).permutation({K}).")
    if p.dtype.kind not in "iu":
        if p.dtype.kind == "f" and np.all(np.isfinite(p)) and np.all(p == np.round(p)):
            p = p.astype(np.int64)
        else:
            raise ValueError(f"perm must hold integers (a permutation of 0..{K - 1}), got dtype {p.dtype}.")
    p = p.astype(np.int64, copy=False)
    if not np.array_equal(np.sort(p), np.arange(K)):
        missing = np.setdiff1d(np.arange(K), p)
        raise ValueError(f"perm is not a permutation of 0..{K - 1}: values {sorted(set(p.tolist()))[:10]} "
                         f"with {missing.size} missing ({missing[:10].tolist()}) and/or repeated; "
                         f"pass each vertex index exactly once.")
    return p


def simplex_etf(K, d=None, *, seed=None, perm=None) -> np.ndarray:
    """Simplex ETF as a (K, d) float64 array of rows (docs/theory.md §1).

    ``M = sqrt(K/(K-1)) (I_K - 11^T/K) U^T`` with ``U`` d x K, ``U^T U = I_K`` (Papyan et al. 2020,
    Def. 1), for d >= K. For ``d = K-1`` (the smallest dimension an ETF fits in) the rows are
    ``sqrt(K/(K-1)) V`` with V (K x (K-1)) an orthonormal basis of the centred subspace 1^perp (the
    transposed Helmert basis), which has the same Gram matrix.

    Parameters
    ----------
    K : int >= 2, number of classes (vertices).
    d : int >= K-1 or None (None means d = K).
    seed : None gives a fixed canonical orientation (deterministic): U = first K columns of I_d for
        d >= K, the Helmert basis for d = K-1. An int (or Generator) gives a random orientation
        ``M_canonical @ Q`` with Q a Haar orthogonal d x d matrix drawn from
        ``np.random.default_rng(seed)`` (:func:`haar_orthogonal`).
    perm : optional length-K permutation; row y of the result is vertex ``perm[y]`` (class y gets
        vertex pi(y), the alignment of docs/theory.md §1).
    """
    K = check_num_classes(K)
    if d is None:
        d = K
    if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral):
        raise ValueError(f"d must be an integer feature dimension >= K-1 = {K - 1}, got {d!r}.")  # noqa: TRY004 (project rule: bad input is a ValueError)
    d = int(d)
    if d < K - 1:
        raise ValueError(f"d = {d} < K-1 = {K - 1}: a simplex ETF of K = {K} vertices needs dimension "
                         f"d >= K-1; pass d >= {K - 1} (or d=None for d = K).")
    c = np.sqrt(K / (K - 1.0))
    M = np.zeros((K, d), dtype=np.float64)
    if d >= K:
        M[:, :K] = c * (np.eye(K) - 1.0 / K)
    else:  # d == K - 1: orthonormal basis of the centred subspace (Helmert rows are orthonormal, sum 0)
        M[:, :] = c * scipy.linalg.helmert(K, full=False).T
    if seed is not None:
        M = M @ haar_orthogonal(d, seed)
    if perm is not None:
        M = M[_check_perm(perm, K)]
    return np.ascontiguousarray(M)


def etf_deviation(M, *, scale_invariant: bool = True) -> dict:
    """How far the rows of ``M`` (K x d) are from a simplex ETF (docs/theory.md §1) [our form of the report].

    Keys (all 0 for an exact ETF):

    - ``norm_dev``: ``max_k | ||m_k|| / mean_j ||m_j|| - 1 |`` (``max_k | ||m_k|| - 1 |`` when
      ``scale_invariant=False``, i.e. against the unit-norm ETF);
    - ``cos_dev``: ``max_{i != j} | cos(m_i, m_j) + 1/(K-1) |``;
    - ``center_norm``: ``||sum_k m_k|| / mean_k ||m_k||`` (absolute ``||sum_k m_k||`` if not scale-invariant);
    - ``gram_error``: ``|| G/s - K/(K-1) (I - 11^T/K) ||_F`` with ``G = M M^T`` and s the mean squared
      row norm (s = 1 if not scale-invariant);
    - ``max_dev``: the maximum of the four above;
    - ``rank``: numerical rank of M (``np.linalg.matrix_rank``; K-1 for an ETF), reported, not in max_dev.
    """
    M = check_matrix(M, "M")
    K = M.shape[0]
    check_num_classes(K, name="number of rows of M")
    norms = np.linalg.norm(M, axis=1)
    mean_norm = float(norms.mean())
    if mean_norm == 0.0:
        raise ValueError("M is all zeros, which is not an ETF at any scale; pass the matrix whose rows are "
                         "the vertices (class means or classifier rows).")
    G = M @ M.T
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = G / np.outer(norms, norms)
    off = ~np.eye(K, dtype=bool)
    cos_off = cos[off]
    cos_dev = float(np.max(np.abs(cos_off + 1.0 / (K - 1)))) if np.all(np.isfinite(cos_off)) else np.inf
    center = float(np.linalg.norm(M.sum(axis=0)))
    target = K / (K - 1.0) * (np.eye(K) - 1.0 / K)
    if scale_invariant:
        norm_dev = float(np.max(np.abs(norms / mean_norm - 1.0)))
        center_norm = center / mean_norm
        s = float(np.trace(G)) / K
    else:
        norm_dev = float(np.max(np.abs(norms - 1.0)))
        center_norm = center
        s = 1.0
    gram_error = float(np.linalg.norm(G / s - target))
    out = {
        "norm_dev": norm_dev,
        "cos_dev": cos_dev,
        "center_norm": center_norm,
        "gram_error": gram_error,
        "rank": int(np.linalg.matrix_rank(M)),
        "num_vertices": K,
    }
    out["max_dev"] = max(norm_dev, cos_dev, center_norm, gram_error)
    return out


def is_etf(M, atol: float = 1e-8, *, scale_invariant: bool = True) -> bool:
    """True if every deviation of :func:`etf_deviation` is <= ``atol`` and rank(M) = K-1."""
    atol = check_tolerance(atol, "atol")
    dev = etf_deviation(M, scale_invariant=scale_invariant)
    return bool(dev["max_dev"] <= atol and dev["rank"] == dev["num_vertices"] - 1)
