"""Input checks and scaling of the features, and the LP certificate of non-separability
(docs/theory.md §3 "scaling" and "Non-separable features")."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ncmargin.theory.checks import row_slices

from . import certificate
from .certificate import gather

__all__ = ["check_H", "feature_scale", "lp_separable"]


def check_H(H):
    """Features as a 2-D float32/float64 array (no copy when already one; other dtypes -> float64), with
    finite entries (checked in chunks)."""
    if not isinstance(H, np.ndarray):
        H = np.asarray(H)
    if H.ndim != 2:
        raise ValueError(f"features H must be a 2-D array (N samples x d), got shape {H.shape}; "
                         f"reshape to (N, d), e.g. H.reshape(len(H), -1).")
    if H.dtype.kind not in "biuf" or H.dtype.kind == "b":
        raise ValueError(f"features H have dtype {H.dtype}; pass a real float array.")
    if H.dtype not in (np.float32, np.float64):
        H = H.astype(np.float64)
    if not H.flags.c_contiguous:
        H = np.ascontiguousarray(H)
    if H.shape[1] == 0:
        raise ValueError("features H have 0 columns; pass at least one feature per sample.")
    return H


def feature_scale(H):
    """One pass over H: finiteness (ValueError naming the rows), s = max_i ||h_i|| and the squared row norms
    of H/s, without overflow/underflow (a second, pre-divided pass only when max|H| is outside
    [1e-150, 1e150]). s = 1 if H = 0."""
    N = H.shape[0]
    r2 = np.empty(N)
    amax = 0.0
    for sl in row_slices(N, H.shape[1], certificate.CHUNK_ELEMS):
        R = np.asarray(H[sl], dtype=np.float64)
        a = max(float(R.max()), -float(R.min())) if R.size else 0.0  # no |R| temporary
        if not np.isfinite(a):
            bad = ~np.isfinite(R)
            raise ValueError(f"features H contain NaN/Inf ({int(bad.sum())} entries in rows "
                             f"{sl.start}..{sl.stop - 1} alone); remove or impute them before solving.")
        amax = max(amax, a)
        r2[sl] = np.einsum("nd,nd->n", R, R)
    if amax == 0.0:
        return 1.0, r2
    if not (1e-150 <= amax <= 1e150):
        for sl in row_slices(N, H.shape[1], certificate.CHUNK_ELEMS):
            R = np.asarray(H[sl], dtype=np.float64) / amax
            r2[sl] = np.einsum("nd,nd->n", R, R)
        m = float(r2.max())
        return amax * np.sqrt(m), r2 / m
    m = float(r2.max())
    return float(np.sqrt(m)), r2 / m


def lp_separable(be, y, K, idx, limits):
    """Is the sample subset ``idx`` linearly separable? The LP  find W: (w_{y_i} - w_k)·h_i ≥ 1  on all
    pairs of those samples, by HiGHS. Returns True (feasible), False (proven infeasible) or None (LP too
    large or undecided). A proof on a subset proves the full problem infeasible."""
    from scipy.optimize import linprog

    idx = np.unique(np.asarray(idx, dtype=np.int64))
    R = gather(be, idx)
    n, dd = R.shape
    m = n * (K - 1)
    if m * 2 * dd > 2e7:
        return None
    ii = np.repeat(np.arange(n), K - 1)
    kk = np.tile(np.arange(K - 1), n)
    yy = y[idx][ii]
    kk = kk + (kk >= yy)
    rows = np.repeat(np.arange(m), 2 * dd)
    cols = np.concatenate([(yy[:, None] * dd + np.arange(dd)), (kk[:, None] * dd + np.arange(dd))],
                          axis=1).ravel()
    vals = np.concatenate([-R[ii], R[ii]], axis=1).ravel()
    A = sp.csr_matrix((vals, (rows, cols)), shape=(m, K * dd))
    opts = {"presolve": True}
    if limits.deadline is not None:
        opts["time_limit"] = max(1.0, limits.left())
    res = linprog(np.zeros(K * dd), A_ub=A, b_ub=-np.ones(m), bounds=(None, None), method="highs",
                  options=opts)
    if res.status == 2:
        return False
    if res.status == 0:
        return True
    return None
