"""The cvxpy reference solver of the multi-class SVM (``method="cvxpy"``, docs/theory.md §3)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .certificate import gather
from .limits import NotSeparableSuspect

__all__ = ["solve_cvxpy"]


def _all_pairs(y, K):
    N = y.shape[0]
    I = np.repeat(np.arange(N), K)
    Kc = np.tile(np.arange(K), N)
    keep = Kc != y[I]
    return I[keep], Kc[keep]


def solve_cvxpy(be, y, K, C):
    """Reference: the full primal in cvxpy, ONE vectorized constraint (a sparse selector on vec(H Wᵀ)),
    solved by Clarabel at tight tolerances. Duals of that constraint are the α_{ik}."""
    import cvxpy as cp

    N = be.H.shape[0]
    H = gather(be, np.arange(N))
    d = H.shape[1]
    pi, pk = _all_pairs(y, K)
    m = pi.size
    # margin_p = S[i_p, y_p] - S[i_p, k_p] with S = H Wᵀ (N x K), vec in column-major order: S[i,k] -> i + kN
    rows = np.concatenate([np.arange(m), np.arange(m)])
    cols = np.concatenate([pi + y[pi] * N, pi + pk * N])
    vals = np.concatenate([np.ones(m), -np.ones(m)])
    Sel = sp.csr_matrix((vals, (rows, cols)), shape=(m, N * K))
    W = cp.Variable((K, d))
    marg = Sel @ cp.vec(H @ W.T, order="F")
    if C is None:
        cons = [marg >= 1]
        obj = 0.5 * cp.sum_squares(W)
    else:
        xi = cp.Variable(N)
        cons = [marg >= 1 - xi[pi], xi >= 0]
        obj = 0.5 * cp.sum_squares(W) + C * cp.sum(xi)
    prob = cp.Problem(cp.Minimize(obj), cons)
    xi_val = None
    try:
        prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11,
                   max_iter=500)
    except cp.error.SolverError as exc:
        if prob.status is None:
            raise RuntimeError(f"cvxpy/Clarabel failed on the SVM reference problem: {exc}") from exc
    if prob.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        raise NotSeparableSuspect(np.arange(N), "cvxpy/Clarabel reports the primal infeasible")
    if W.value is None:
        raise RuntimeError(f"cvxpy/Clarabel returned status {prob.status} without a solution")
    alpha = np.asarray(cons[0].dual_value, dtype=np.float64).ravel()
    if C is not None:
        xi_val = np.maximum(np.asarray(xi.value, dtype=np.float64).ravel(), 0.0)
    return (np.asarray(W.value, dtype=np.float64), pi, pk, alpha, 1, {"solver_status": prob.status},
            xi_val)
