"""Full-problem quantities of the multi-class SVM, in chunked passes over the data (docs/theory.md §3):
the pair violations of a W, rows of the scaled features, W(α), the projection onto the dual feasible set,
the class means, and the certificate :func:`svm_certificate` (see ``ncmargin.solvers.svm``)."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from ._dcd import NumpyBackend
from .limits import Stop
from .status import Status

__all__ = ["CHUNK_ELEMS", "W_from_alpha", "chunk_rows", "class_means", "gather", "pair_violations",
           "project_dual", "svm_certificate", "violation_chunks"]

CHUNK_ELEMS = 1 << 22  # float64 entries per N x K block (32 MiB)


def _as_backend(H):
    return H if isinstance(H, NumpyBackend) else NumpyBackend(np.asarray(H), 1.0, 0.0)


def chunk_rows(N, K, dd, limits=None):
    """Rows per chunk of a pass: (rows x (dd + 4K)) float64 temporaries within CHUNK_ELEMS, and within a
    tenth of the memory budget."""
    budget = CHUNK_ELEMS
    if limits is not None and limits.mem is not None:
        budget = min(budget, int(limits.mem / 10 / 8))
    return max(1, budget // max(1, dd + 4 * K))


def violation_chunks(be, y, W, step: int, limits=None):
    """One pass over the data in row chunks of ``step``: yields ``(s, e, V)`` with
    V[i, k] = 1 − ((Hw_{y_i})_i − (Hw_k)_i) for the rows s:e and V[i, y_i] = −inf (docs/theory.md §3); the
    time limit is checked per chunk (raises Stop)."""
    N = be.H.shape[0]
    for s in range(0, N, step):
        e = min(N, s + step)
        if limits is not None and limits.out_of_time():
            raise Stop(Status.TIME_LIMIT)
        S = be.scores(s, e, W)
        r = np.arange(e - s)
        yc = y[s:e]
        V = 1.0 - (S[r, yc][:, None] - S)
        V[r, yc] = -np.inf
        yield s, e, V


def pair_violations(H, y, W, xi_ws, ws_i=None, ws_k=None, per_sample: int = 1, floor: float = -np.inf,
                     limits=None):
    """One pass over the data with H @ W.T (chunked; ``H`` an array or a backend).

    Returns (max violation over ALL pairs of 1 - margin_ik - xi_ws_i, per-sample worst violation among
    pairs NOT in the working set and its class, per-sample max_k (1 - margin_ik)). Raises Stop on timeout
    (checked per chunk) when ``limits`` is given.
    """
    be = _as_backend(H)
    N, K = be.H.shape[0], W.shape[0]
    best_v = np.full(N, -np.inf)
    best_k = np.zeros(N, dtype=np.int64)
    hinge = np.empty(N)
    vmax = -np.inf
    if per_sample > 1:
        top_v = np.full((N, min(per_sample, K)), -np.inf)
        top_k = np.zeros((N, min(per_sample, K)), dtype=np.int64)
    if ws_i is not None and ws_i.size:
        order = np.argsort(ws_i, kind="stable")
        wi, wk = ws_i[order], ws_k[order]
    step = chunk_rows(N, K, W.shape[1], limits)
    t_start = time.perf_counter()
    for s, e, V in violation_chunks(be, y, W, step, limits):
        r = np.arange(e - s)
        hinge[s:e] = V.max(axis=1)
        V -= xi_ws[s:e, None]
        vmax = max(vmax, float(V.max()))
        if ws_i is not None and ws_i.size:
            lo, hi = np.searchsorted(wi, [s, e])
            V[wi[lo:hi] - s, wk[lo:hi]] = -np.inf
        k = V.argmax(axis=1)
        best_k[s:e] = k
        best_v[s:e] = V[r, k]
        if per_sample > 1:  # top-t candidates only for rows that have one above ``floor``
            t = min(per_sample, K)
            rows = np.flatnonzero(best_v[s:e] > floor)
            if rows.size:
                Vr = V[rows]
                top = np.argpartition(-Vr, t - 1, axis=1)[:, :t]
                top_k[s + rows] = top
                top_v[s + rows] = np.take_along_axis(Vr, top, axis=1)
    if limits is not None:
        limits.measured_pass(time.perf_counter() - t_start)
    if per_sample > 1:
        return vmax, top_v, top_k, hinge
    return vmax, best_v, best_k, hinge


def gather(H, idx):
    """Scaled float64 rows (with the bias column when the backend has one) of the samples ``idx``."""
    be = _as_backend(H)
    idx = np.asarray(idx, dtype=np.int64)
    R = np.asarray(be.H[idx], dtype=np.float64) * be.inv_s
    if be.bias_val:
        R = np.hstack([R, np.full((idx.size, 1), be.bias_val)])
    return R


def W_from_alpha(Hs, yp, kp, alpha, K):
    """W(α) = Σ_p α_p (e_{y_p} - e_{k_p}) h_pᵀ  [Crammer & Singer 2001, eq. (7)]."""
    m = alpha.size
    # one sparse (K x m) @ dense (m x d) product; np.add.at is ~10x slower for many pairs
    Y = sp.csr_matrix((np.concatenate([alpha, -alpha]), (np.concatenate([yp, kp]), np.tile(np.arange(m), 2))),
                      shape=(K, m))
    return np.asarray(Y @ Hs)


def project_dual(alpha, si, C):
    """Exact projection-by-scaling onto the dual feasible set: α ≥ 0 and Σ_{k} α_ik ≤ C per sample."""
    alpha = np.maximum(alpha, 0.0)
    if C is not None and alpha.size:
        sums = np.bincount(si, weights=alpha)
        scale = np.ones_like(sums)
        over = sums > C
        scale[over] = C / sums[over]
        alpha = alpha * scale[si]
        alpha = np.minimum(alpha, C)
    return alpha


def svm_certificate(H, y, W, pair_i, pair_k, alpha, C=None, K=None, xi_ws=None, limits=None,
                    _pass=None) -> dict:
    """Certificate of optimality on the FULL problem for a primal W and dual multipliers α on pairs.

    α is first projected onto the dual feasible set; the dual objective uses W(α) [Crammer & Singer 2001,
    eq. (5)]. Returns objective, dual_objective, upper_bound, duality_gap (relative, certified),
    max_violation, kkt_residual, p_min, n_misclassified (see the module docstring) [our form].
    """
    be = _as_backend(H)
    N = be.H.shape[0]
    K = W.shape[0] if K is None else K
    pair_i = np.asarray(pair_i, dtype=np.int64)
    pair_k = np.asarray(pair_k, dtype=np.int64)
    alpha = project_dual(np.asarray(alpha, dtype=np.float64), pair_i, C)
    Wa = np.zeros_like(W, dtype=np.float64)
    mp = np.zeros(pair_i.size)
    # pair blocks: never all support rows at once (8192 rows, fewer under a memory cap)
    block = min(8192, chunk_rows(max(pair_i.size, 1), K, W.shape[1], limits))
    for s in range(0, pair_i.size, block):
        sl = slice(s, min(pair_i.size, s + block))
        Hp = gather(be, pair_i[sl])
        Wa += W_from_alpha(Hp, y[pair_i[sl]], pair_k[sl], alpha[sl], K)
        mp[sl] = np.einsum("pd,pd->p", Hp, W[y[pair_i[sl]]] - W[pair_k[sl]])
    dual = float(alpha.sum() - 0.5 * np.sum(Wa * Wa))
    soft_own_slack = C is not None and xi_ws is None  # (W, ξ(W)) itself: feasible, violation 0
    if xi_ws is None:
        xi_ws = np.zeros(N)
    if _pass is not None and _pass[0] is W and _pass[1] is xi_ws:  # the caller's pass at this very W
        vmax, hinge = _pass[2], _pass[3]
    else:
        vmax, _, _, hinge = pair_violations(be, y, W, xi_ws, limits=limits)
    if soft_own_slack:
        vmax = 0.0
    nW2 = float(np.sum(W * W))
    xi = np.maximum(hinge, 0.0)
    if C is None:
        eps = max(vmax, 0.0)
        obj = 0.5 * nW2
        ub = obj / (1.0 - eps) ** 2 if eps < 1.0 else np.inf
        max_viol = eps
    else:
        obj = 0.5 * nW2 + C * float(xi.sum())
        ub = obj
        max_viol = max(vmax, 0.0)
    gap = (ub - dual) / max(abs(ub), 1e-300) if np.isfinite(ub) else np.inf
    # componentwise complementarity α_p (margin_p - 1 + ξ_i) and ξ_i (C - Σ_k α_ik), and stationarity
    comp = np.abs(alpha * (mp - 1.0 + xi[pair_i])) if pair_i.size else np.zeros(0)
    kkt = [max_viol, float(comp.max()) if comp.size else 0.0,
           float(np.abs(W - Wa).max()) / max(1.0, float(np.abs(W).max()))]
    if C is not None:
        sums = np.bincount(pair_i, weights=alpha, minlength=N)
        kkt.append(float(np.max(xi * (C - sums))))
    pm = -(hinge.max()) + 1.0 if N else np.nan  # min_i p_i = 1 - max_i hinge_i
    return {
        "objective": obj, "dual_objective": dual, "upper_bound": ub, "duality_gap": float(gap),
        "max_violation": float(max_viol), "kkt_residual": float(max(kkt)), "p_min": float(pm),
        "n_misclassified": int(np.sum(hinge >= 1.0)), "alpha": alpha, "W_alpha": Wa,
    }


def class_means(be, y, K, limits=None):
    """Centred class means of the scaled features (with the bias column), one chunked pass."""
    N = be.H.shape[0]
    dd = be.d + (1 if be.bias_val else 0)
    Mu = np.zeros((K, dd))
    step = chunk_rows(N, 1, be.d, limits)
    for s in range(0, N, step):
        e = min(N, s + step)
        _add_rows(Mu[:, : be.d], y[s:e], be.rows(s, e), K)
    if be.bias_val:
        Mu[:, be.d] = be.bias_val
    cnt = np.bincount(y, minlength=K)
    Mu[cnt > 0] /= cnt[cnt > 0, None]
    Mu[cnt > 0] -= Mu[cnt > 0].mean(axis=0)
    return Mu


def _add_rows(M, y, R, K):
    """M[k] += Σ_{y_i = k} R_i as one sparse-dense product (np.add.at is slow for many rows)."""
    Y = sp.csr_matrix((np.ones(y.size), (y, np.arange(y.size))), shape=(K, y.size))
    M += Y @ R
