"""Exact, certified multi-class max-margin SVMs on fixed features (THEORY.md §3(a)).

Problems (notation of THEORY.md §0: H is N x d, labels y in 0..K-1, W is K x d, logits H @ W.T):

    hard margin   minimize ½||W||_F²                 s.t. (w_{y_i} - w_k)·h_i ≥ 1          ∀ i, k ≠ y_i
    soft margin   minimize ½||W||_F² + C Σ_i ξ_i     s.t. (w_{y_i} - w_k)·h_i ≥ 1 - ξ_i,  ξ_i ≥ 0

(Soudry et al. 2018 for the hard margin; Crammer & Singer 2001, eq. (2) with hinge loss, one slack per
sample, for the soft margin — the objective LIBLINEAR/scikit-learn's
``LinearSVC(multi_class="crammer_singer", fit_intercept=False)`` minimizes with the same C.)

Lagrange dual [Crammer & Singer 2001, eq. (5); our form in pair variables]: one multiplier α_{ik} ≥ 0 per
constraint pair (i, k ≠ y_i),

    maximize D(α) = Σ α_{ik} - ½||W(α)||_F²,   W(α) = Σ α_{ik} (e_{y_i} - e_k) h_iᵀ,
    subject to α ≥ 0  (and Σ_k α_{ik} ≤ C for the soft margin).

Solvers
-------
``method="working_set"`` (the default, also ``"auto"``): a cutting-plane / working-set method over the
N(K-1) constraint pairs. The restricted dual QP on the working set is solved exactly by Clarabel (interior
point), then polished by an equality-constrained solve on its active set; the most violated pairs of the
FULL problem (found with chunked products H @ W.T) are added; repeat until no pair of the full problem is
violated by more than ``tol``. ``method="cvxpy"``: the full primal, vectorized (one constraint object),
solved by cvxpy + Clarabel at tight tolerances; the reference.

Certificate (both methods, on the full problem)
------------------------------------------------
* ``max_violation``: hard margin, ε = max(0, max_{i,k≠y_i} 1 - (w_{y_i}-w_k)·h_i). Soft margin, the
  violation of the restricted primal point (W, ξ^ws) with ξ^ws_i the slack the working set requires,
  max_i (ξ_i(W) - ξ^ws_i)_+ with ξ_i(W) = max(0, max_k 1-(w_{y_i}-w_k)·h_i).
* ``duality_gap`` (relative): (P_ub - D(α)) / P_ub, where D(α) is evaluated at a dual-FEASIBLE α (projected
  exactly onto α ≥ 0, Σ_k α_ik ≤ C; pairs outside the working set have α = 0) and P_ub is a certified upper
  bound on the optimum: hard margin W/(1-ε) is feasible, so P_ub = ½||W||²/(1-ε)²; soft margin
  (W, ξ(W)) is feasible, so P_ub = ½||W||² + C Σ ξ_i(W). By weak duality D(α) ≤ OPT ≤ P_ub, so the
  reported gap is a rigorous bound on the relative suboptimality of both.
* status is ``"optimal"`` only if max_violation ≤ tol and duality_gap ≤ gap_tol (default 1e-6).

Bias: ``bias=True`` appends a constant feature ``bias_scale`` (default 1) to every h_i; the bias
b = bias_scale · (last column of the augmented W) is then regularized like W (THEORY.md §3(a)).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ncmargin.theory.checks import check_features, row_slices

__all__ = ["NotSeparableError", "SVMSolution", "multiclass_svm", "svm_certificate"]

_CHUNK_ELEMS = 1 << 22  # float64 entries per N x K block (32 MiB)
_OK_STATUSES = ("Solved", "AlmostSolved")


class NotSeparableError(ValueError):
    """The hard-margin SVM is infeasible: the features are not linearly separable (use a soft margin)."""

    def __init__(self, message: str, n_misclassified: int | None = None, n_samples: int | None = None):
        super().__init__(message)
        self.n_misclassified = n_misclassified
        self.n_samples = n_samples


@dataclass
class SVMSolution:
    """Solution of the multi-class SVM with its optimality certificate (see the module docstring).

    W (K x d), b (K,) or None, objective (the primal objective at W, with ξ(W) for the soft margin),
    dual_objective D(α), margin = 1/||W_aug||_F (the geometric margin of the hard-margin problem in THEORY's
    normalization; W_aug includes the bias column when bias=True), p_min (min_i of the functional margin
    (w_{y_i} - max_{k≠y_i} w_k)·h_i + b terms, THEORY §2), normalized_margin p_min/(||W||_F max_i ||h_i||),
    duality_gap (relative, certified), kkt_residual, max_violation, support (sample indices with nonzero
    dual mass), support_pairs ((i, k) pairs with α_ik > 0), alpha (their multipliers), status, seconds,
    method, n_iter (cutting-plane rounds), working_set_size, n_misclassified (samples with p_i ≤ 0, ties
    counted as errors), C, bias, tol, gap_tol, info (upper_bound, per-round log, timings).
    """

    W: np.ndarray
    b: np.ndarray | None
    objective: float
    dual_objective: float
    margin: float
    p_min: float
    normalized_margin: float
    duality_gap: float
    kkt_residual: float
    max_violation: float
    support: np.ndarray
    support_pairs: np.ndarray
    alpha: np.ndarray
    status: str
    seconds: float
    method: str
    n_iter: int
    working_set_size: int
    n_misclassified: int
    C: float | None
    bias: bool
    tol: float
    gap_tol: float
    info: dict = field(default_factory=dict)

    @property
    def n_support(self) -> int:
        return int(self.support.size)

    def summary(self, include_arrays: bool = True) -> dict[str, Any]:
        """A JSON-ready dict (numpy arrays as lists when ``include_arrays``)."""
        out: dict[str, Any] = {
            "status": self.status, "method": self.method, "C": self.C, "bias": self.bias,
            "objective": self.objective, "dual_objective": self.dual_objective,
            "margin": self.margin, "p_min": self.p_min, "normalized_margin": self.normalized_margin,
            "duality_gap": self.duality_gap, "max_violation": self.max_violation,
            "kkt_residual": self.kkt_residual, "n_support": self.n_support,
            "n_support_pairs": int(self.support_pairs.shape[0]), "n_misclassified": self.n_misclassified,
            "n_iter": self.n_iter, "working_set_size": self.working_set_size, "seconds": self.seconds,
            "tol": self.tol, "gap_tol": self.gap_tol, "K": int(self.W.shape[0]), "d": int(self.W.shape[1]),
        }
        out.update({k: v for k, v in self.info.items() if k not in out})
        if include_arrays:
            out["W"] = self.W.tolist()
            out["b"] = None if self.b is None else self.b.tolist()
            out["support"] = self.support.tolist()
        return out

    def to_json(self, include_arrays: bool = True, indent: int | None = 2) -> str:
        import json

        from ncmargin.io import to_jsonable

        return json.dumps(to_jsonable(self.summary(include_arrays)), indent=indent, allow_nan=False)


# ----------------------------------------------------------------------------------------------------
# full-problem quantities (chunked)


def _pair_violations(H, y, W, xi_ws, ws_i=None, ws_k=None, per_sample: int = 1, floor: float = -np.inf):
    """One pass over the data with H @ W.T (chunked).

    Returns (max violation over ALL pairs of 1 - margin_ik - xi_ws_i, per-sample worst violation among
    pairs NOT in the working set and its class, per-sample max_k (1 - margin_ik)).
    """
    N, K = H.shape[0], W.shape[0]
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
    for sl in row_slices(N, K, _CHUNK_ELEMS):
        s, e = sl.start, sl.stop
        S = H[s:e] @ W.T
        r = np.arange(e - s)
        yc = y[s:e]
        V = 1.0 - (S[r, yc][:, None] - S)
        V[r, yc] = -np.inf
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
    if per_sample > 1:
        return vmax, top_v, top_k, hinge
    return vmax, best_v, best_k, hinge


def _W_from_alpha(Hs, yp, kp, alpha, K):
    """W(α) = Σ_p α_p (e_{y_p} - e_{k_p}) h_pᵀ  [Crammer & Singer 2001, eq. (7)]."""
    A = alpha[:, None] * Hs
    W = np.zeros((K, Hs.shape[1]))
    np.add.at(W, yp, A)
    np.add.at(W, kp, -A)
    return W


def _project_dual(alpha, si, C):
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


def svm_certificate(H, y, W, pair_i, pair_k, alpha, C=None, K=None, xi_ws=None) -> dict:
    """Certificate of optimality on the FULL problem for a primal W and dual multipliers α on pairs.

    α is first projected onto the dual feasible set; the dual objective uses W(α) [Crammer & Singer 2001,
    eq. (5)]. Returns objective, dual_objective, upper_bound, duality_gap (relative, certified),
    max_violation, kkt_residual, p_min, n_misclassified (see the module docstring) [our form].
    """
    N = H.shape[0]
    K = W.shape[0] if K is None else K
    pair_i = np.asarray(pair_i, dtype=np.int64)
    pair_k = np.asarray(pair_k, dtype=np.int64)
    alpha = _project_dual(np.asarray(alpha, dtype=np.float64), pair_i, C)
    Wa = _W_from_alpha(H[pair_i], y[pair_i], pair_k, alpha, K)
    dual = float(alpha.sum() - 0.5 * np.sum(Wa * Wa))
    if xi_ws is None:
        xi_ws = np.zeros(N)
    vmax, _, _, hinge = _pair_violations(H, y, W, xi_ws)
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
    Hp = H[pair_i]
    mp = np.einsum("pd,pd->p", Hp, W[y[pair_i]] - W[pair_k]) if pair_i.size else np.zeros(0)
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


# ----------------------------------------------------------------------------------------------------
# restricted dual QP


def _clarabel_settings(max_iter=200, tol=1e-10):
    import clarabel

    s = clarabel.DefaultSettings()
    s.verbose = False
    s.max_iter = max_iter
    # 1e-10: tighter settings (1e-12) make Clarabel stop early with "AlmostSolved" at reduced accuracy;
    # the active-set polish below takes the answer from ~1e-10 to rounding level.
    s.tol_gap_abs = tol
    s.tol_gap_rel = tol
    s.tol_feas = tol
    # faer: supernodal LDL, 3x faster than the default qdldl on the dense dual Gram (measured, order 1000);
    # clarabel builds without faer keep their default
    if hasattr(s, "direct_solve_method"):
        s.direct_solve_method = "faer"
    return s


def _restricted_gram(Hs, yp, kp):
    """Q_pq = (e_{y_p} - e_{k_p})·(e_{y_q} - e_{k_q}) · h_p·h_q."""
    B = ((yp[:, None] == yp[None, :]).astype(np.float64) - (yp[:, None] == kp[None, :])
         - (kp[:, None] == yp[None, :]) + (kp[:, None] == kp[None, :]))
    return B * (Hs @ Hs.T)


def _restricted_gram_cross(Ha, ya, ka, Hb, yb, kb):
    """Rows of the restricted Gram for pairs a against pairs b."""
    B = ((ya[:, None] == yb[None, :]).astype(np.float64) - (ya[:, None] == kb[None, :])
         - (ka[:, None] == yb[None, :]) + (ka[:, None] == kb[None, :]))
    return B * (Ha @ Hb.T)


def _solve_restricted_dual(Q, si, C):
    """maximize 1ᵀα - ½αᵀQα s.t. α ≥ 0 (, Σ_{p in sample i} α_p ≤ C), by Clarabel. Returns (α, status)."""
    import clarabel

    m = Q.shape[0]
    P = sp.csc_matrix(np.triu(Q))
    q = -np.ones(m)
    A = -sp.identity(m, format="csc")
    b = np.zeros(m)
    cones = [clarabel.NonnegativeConeT(m)]
    if C is not None:
        uniq, inv = np.unique(si, return_inverse=True)
        S = sp.csc_matrix((np.ones(m), (inv, np.arange(m))), shape=(uniq.size, m))
        A = sp.vstack([A, S], format="csc")
        b = np.concatenate([b, np.full(uniq.size, float(C))])
        cones.append(clarabel.NonnegativeConeT(uniq.size))
    for tol in (1e-10, 1e-8):
        res = clarabel.DefaultSolver(P, q, A, b, cones, _clarabel_settings(tol=tol)).solve()
        status = str(res.status).split(".")[-1]
        if status == "Solved" or "Infeasible" in status:
            break
    return np.asarray(res.x, dtype=np.float64), status


def _blas_single_thread():
    """Dense factorizations of the (small) restricted problems run with one BLAS thread: on a loaded
    machine a multithreaded OpenBLAS Cholesky of order 1000 was measured 60x slower than single-threaded
    (1.9 s vs 0.03 s). threadpoolctl is optional (it ships with scikit-learn)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


class _CholCache:
    """Cholesky factor L (lower) of Q_FF for a free set F, identified by persistent pair codes, so that a
    larger free set is factored by extension (O(n²a) for a added pairs) instead of from scratch (O(n³)).
    Pairs only leave the free set rarely (BPP pivots, α that fall to 0); then it is refactored."""

    def __init__(self):
        self.codes = np.zeros(0, np.int64)
        self.L = np.zeros((0, 0))

    def solve_ones(self, Q, codes_ws, idx):
        """x_F with Q_FF x_F = 1 for F = idx (positions in the working set whose codes are codes_ws)."""
        import scipy.linalg as sla

        codes_F = codes_ws[idx]
        pos = {c: j for j, c in enumerate(codes_ws.tolist())}
        old = self.codes
        in_f = np.isin(old, codes_F)
        first_out = int(np.argmin(in_f)) if not in_f.all() else old.size
        if first_out < old.size:  # pairs left F: keep the factor of the leading pairs still in F
            old = old[:first_out]
            self.codes, self.L = old, self.L[:first_out, :first_out]
        if old.size:
            old_idx = np.array([pos[c] for c in old.tolist()], dtype=np.int64)
            add_idx = idx[~np.isin(codes_F, old)]
            if add_idx.size:
                X = sla.solve_triangular(self.L, Q[np.ix_(old_idx, add_idx)], lower=True,
                                         check_finite=False).T
                S = Q[np.ix_(add_idx, add_idx)] - X @ X.T
                L22 = sla.cholesky(S, lower=True, check_finite=False)
                n, a = old_idx.size, add_idx.size
                L = np.zeros((n + a, n + a))
                L[:n, :n] = self.L
                L[n:, :n] = X
                L[n:, n:] = L22
                self.L = L
                self.codes = np.concatenate([old, codes_ws[add_idx]])
            order = np.concatenate([old_idx, add_idx])
        else:
            order = idx
            self.L = sla.cholesky(Q[np.ix_(idx, idx)], lower=True, check_finite=False)
            self.codes = codes_ws[idx]
        z = sla.solve_triangular(self.L, np.ones(order.size), lower=True, check_finite=False)
        xo = sla.solve_triangular(self.L, z, lower=True, trans="T", check_finite=False)
        return order, xo


def _bpp_nnqp(Q, alpha0, max_iter: int = 60, codes=None, cache=None):
    """Exact solution of the hard-margin restricted dual, the LCP α ≥ 0, g = Qα - 1 ≥ 0, αᵀg = 0, by
    block principal pivoting (Júdice & Pires 1994; Kim & Park 2011, Alg. 2 with Murty's backup rule),
    warm-started from the free set {α0 > 0}. Cholesky of Q_FF per pivot (extended, not refactored, when
    the free set only grows: ``cache``). Returns α or None when it does not converge (singular Q_FF, too
    many pivots): the caller then falls back to Clarabel."""
    import scipy.linalg as sla

    m = Q.shape[0]
    if codes is None:
        codes = np.arange(m, dtype=np.int64)
    if cache is None:
        cache = _CholCache()
    F = alpha0 > 0
    if not F.any():
        F = np.ones(m, bool)
    best, backup = m + 1, 3
    scale = max(1.0, float(np.abs(np.diag(Q)).max()))
    for _ in range(max_iter):
        idx = np.flatnonzero(F)
        x = np.zeros(m)
        if idx.size:
            try:
                order, xo = cache.solve_ones(Q, codes, idx)
                x[order] = xo
            except (np.linalg.LinAlgError, sla.LinAlgError, ValueError):
                cache.__init__()
                return None
            if not np.all(np.isfinite(x)):
                cache.__init__()
                return None
        g = Q[:, idx] @ x[idx] - 1.0
        bad_f = F & (x < -1e-13 * max(1.0, float(np.abs(x).max())))
        bad_g = ~F & (g < -1e-12 * scale)
        V = bad_f | bad_g
        nv = int(V.sum())
        if nv == 0:
            return np.maximum(x, 0.0)
        if nv < best:
            best, backup = nv, 3
            F = F ^ V
        elif backup > 0:
            backup -= 1
            F = F ^ V
        else:
            j = np.flatnonzero(V).max()
            F[j] = ~F[j]
    cache.__init__()
    return None


def _sym_solve(A, r):
    """Solve the symmetric system A x = r (LDLᵀ via LAPACK sysv); least squares if A is singular."""
    import warnings

    import scipy.linalg as sla

    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", sla.LinAlgWarning)
            x = sla.solve(A, r, assume_a="sym", check_finite=False)
        if np.all(np.isfinite(x)) and np.linalg.norm(A @ x - r) <= 1e-8 * max(1.0, np.linalg.norm(r)):
            return x
    except (np.linalg.LinAlgError, ValueError, sla.LinAlgError):
        pass
    return np.linalg.lstsq(A, r, rcond=None)[0]


def _polish(Q, alpha, si, C):
    """Equality-constrained re-solve on the active set (exact up to rounding): hard margin solves
    Q_AA α_A = 1; soft margin adds one multiplier ν_i per sample whose duals sum to C. Returns a
    candidate α or None."""
    if alpha.size == 0:
        return None
    amax = float(alpha.max())
    if amax <= 0:
        return None
    act = np.flatnonzero(alpha > 1e-7 * amax)
    if act.size == 0:
        return None
    QA = Q[np.ix_(act, act)]
    rhs = np.ones(act.size)
    if C is None:
        sol = _sym_solve(QA, rhs)
        new = np.zeros_like(alpha)
        new[act] = sol
        return new
    sums = np.bincount(si, weights=alpha)
    sat = np.flatnonzero(sums >= C * (1 - 1e-7))
    sat = np.intersect1d(sat, si[act])
    E = (si[act][:, None] == sat[None, :]).astype(np.float64)
    KKT = np.block([[QA, E], [E.T, np.zeros((sat.size, sat.size))]])
    r = np.concatenate([rhs, np.full(sat.size, float(C))])
    sol = _sym_solve(KKT, r)
    if sat.size and np.any(sol[act.size:] < -1e-9 * max(1.0, abs(sol[act.size:]).max())):
        return None
    new = np.zeros_like(alpha)
    new[act] = sol[: act.size]
    return new


def _restricted_score(Q, alpha, si, C):
    """max(constraint violation on the working set, relative gap) of a dual point (for polish choice)."""
    a = _project_dual(alpha, si, C)
    g = Q @ a  # margins of the working-set pairs under W(a)
    wq = float(a @ g)
    if C is None:
        eps = max(0.0, float((1.0 - g).max()))
        P = 0.5 * wq / (1 - eps) ** 2 if eps < 1 else np.inf
    else:
        xi = np.zeros(si.max() + 1)
        np.maximum.at(xi, si, 1.0 - g)
        eps = 0.0
        P = 0.5 * wq + C * float(np.maximum(xi, 0).sum())
    D = float(a.sum()) - 0.5 * wq
    return max(eps, (P - D) / max(abs(P), 1e-300)), a


# ----------------------------------------------------------------------------------------------------
# public entry point


def _not_separable(N, n_mis, detail):
    return NotSeparableError(
        f"the features are not linearly separable, so the hard-margin SVM (C=None) is infeasible "
        f"({detail}); the best classifier found misclassifies {n_mis} of {N} training samples. "
        f"Use C=... for a soft margin (e.g. C=1.0; `ncmargin svm --soft 1.0` on the command line).",
        n_misclassified=n_mis, n_samples=N)


def multiclass_svm(H, y, *, C: float | None = None, bias: bool = False, tol: float = 1e-8,
                   method: str = "auto", K: int | None = None, gap_tol: float = 1e-6,
                   bias_scale: float = 1.0, max_iter: int = 200, init_size: int | None = None,
                   max_seconds: float | None = None, verbose: bool = False) -> SVMSolution:
    """Solve the hard (``C=None``) or soft (Crammer–Singer, hinge, penalty ``C``) multi-class SVM exactly
    and certify the answer on the full problem (THEORY.md §3(a); see the module docstring).

    Parameters
    ----------
    H, y : features (N x d) and labels (N,) in 0..K-1; converted to float64.
    C : None for the hard margin; a positive float for the soft margin (the same C as scikit-learn's
        ``LinearSVC(multi_class="crammer_singer", fit_intercept=False)``).
    bias : append a constant feature ``bias_scale`` (the bias is then regularized).
    tol : threshold on the full-problem max constraint violation for status "optimal".
    gap_tol : threshold on the certified relative duality gap for status "optimal".
    method : "auto" or "working_set" (scalable), or "cvxpy" (reference, full problem).
    K : number of classes (default max(y)+1); classes without samples still get a row of W.
    max_iter, max_seconds : limits on the working-set rounds / wall time; when hit, the last iterate is
        returned with its (honest) certificate and status "inaccurate" unless it happens to certify.
    init_size : initial working-set size (default max(100, 10K) samples with the smallest class-mean
        margins).

    Raises
    ------
    NotSeparableError (a ValueError) if C is None and the features are not linearly separable.
    ValueError for bad input (shapes, NaN/Inf, labels, C ≤ 0, unknown method).
    """
    t0 = time.perf_counter()
    H, y, K = check_features(H, y, K, allow_empty_class=True)
    if C is not None:
        if isinstance(C, bool) or not np.isscalar(C) or not np.isfinite(C) or C <= 0:
            raise ValueError(f"C must be a positive finite number for the soft margin (or None for the hard "
                             f"margin), got {C!r}; pass e.g. C=1.0.")
        C = float(C)
    if not (np.isfinite(tol) and tol > 0) or not (np.isfinite(gap_tol) and gap_tol > 0):
        raise ValueError(f"tol and gap_tol must be positive, got tol={tol!r}, gap_tol={gap_tol!r}.")
    if method not in ("auto", "working_set", "cvxpy"):
        raise ValueError(f"unknown method {method!r}; use 'auto', 'working_set' or 'cvxpy'.")
    N, d = H.shape
    if N == 0:
        raise ValueError("no samples: H has 0 rows; pass at least one labelled feature row.")
    Hx = np.hstack([H, np.full((N, 1), float(bias_scale))]) if bias else H
    if method == "cvxpy":
        W, pi, pk, alpha, n_iter, info, xi_ws = _solve_cvxpy(Hx, y, K, C)
    else:
        W, pi, pk, alpha, n_iter, info, xi_ws = _solve_working_set(Hx, y, K, C, tol, max_iter, init_size,
                                                                   verbose, max_seconds, t0)
        method = "working_set"
    cert = svm_certificate(Hx, y, W, pi, pk, alpha, C=C, K=K, xi_ws=xi_ws)
    if C is None and cert["n_misclassified"] > 0 and cert["max_violation"] >= 1.0:
        raise _not_separable(N, cert["n_misclassified"], "the solver's answer violates the constraints")
    alpha = cert["alpha"]
    # support: pairs with α above 1e-9 of the largest (interior-point duals are never exactly 0)
    nz = alpha > 1e-9 * float(alpha.max()) if alpha.size and alpha.max() > 0 else np.zeros(alpha.size, bool)
    support_pairs = np.stack([pi[nz], pk[nz]], axis=1) if nz.any() else np.zeros((0, 2), dtype=np.int64)
    support = np.unique(pi[nz])
    nW = float(np.linalg.norm(W))
    rmax = float(np.sqrt(np.max(np.einsum("nd,nd->n", Hx, Hx))))
    status = "optimal" if (cert["max_violation"] <= tol and cert["duality_gap"] <= gap_tol) else "inaccurate"
    Wout, bout = (W[:, :d].copy(), W[:, d] * bias_scale) if bias else (W, None)
    info = dict(info)
    info.update({"upper_bound": cert["upper_bound"], "N": N, "bias_scale": bias_scale if bias else None})
    return SVMSolution(
        W=Wout, b=bout, objective=cert["objective"], dual_objective=cert["dual_objective"],
        margin=1.0 / nW if nW > 0 else np.inf, p_min=cert["p_min"],
        normalized_margin=cert["p_min"] / (nW * rmax) if nW * rmax > 0 else np.nan,
        duality_gap=cert["duality_gap"], kkt_residual=cert["kkt_residual"],
        max_violation=cert["max_violation"], support=support, support_pairs=support_pairs,
        alpha=alpha[nz], status=status, seconds=time.perf_counter() - t0, method=method, n_iter=n_iter,
        working_set_size=int(pi.size), n_misclassified=cert["n_misclassified"], C=C, bias=bool(bias),
        tol=tol, gap_tol=gap_tol, info=info)


def _all_pairs(y, K):
    N = y.shape[0]
    I = np.repeat(np.arange(N), K)
    Kc = np.tile(np.arange(K), N)
    keep = Kc != y[I]
    return I[keep], Kc[keep]


def _solve_cvxpy(H, y, K, C):
    """Reference: the full primal in cvxpy, ONE vectorized constraint (a sparse selector on vec(H Wᵀ)),
    solved by Clarabel at tight tolerances. Duals of that constraint are the α_{ik}."""
    import cvxpy as cp

    N, d = H.shape
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
        Mu = np.zeros((K, d))
        np.add.at(Mu, y, H)
        cnt = np.bincount(y, minlength=K)[:, None]
        Mu = np.where(cnt > 0, Mu / np.maximum(cnt, 1), 0)
        Mu -= Mu.mean(axis=0)
        _, _, _, hinge = _pair_violations(H, y, Mu, np.zeros(N))
        raise _not_separable(N, int(np.sum(hinge >= 1.0)),
                             "cvxpy/Clarabel reports the primal infeasible; the count is for the "
                             "class-mean classifier")
    if W.value is None:
        raise RuntimeError(f"cvxpy/Clarabel returned status {prob.status} without a solution")
    alpha = np.asarray(cons[0].dual_value, dtype=np.float64).ravel()
    if C is not None:
        xi_val = np.maximum(np.asarray(xi.value, dtype=np.float64).ravel(), 0.0)
    return (np.asarray(W.value, dtype=np.float64), pi, pk, alpha, 1, {"solver_status": prob.status},
            xi_val)


def _solve_working_set(H, y, K, C, tol, max_iter, init_size, verbose, max_seconds=None, t0=None):
    N, d = H.shape
    # warm start: centred class means (Papyan et al. 2020's nearest-class-mean direction)
    Mu = np.zeros((K, d))
    np.add.at(Mu, y, H)
    cnt = np.bincount(y, minlength=K)
    Mu[cnt > 0] /= cnt[cnt > 0, None]
    Mu[cnt > 0] -= Mu[cnt > 0].mean(axis=0)
    _, v0, k0, _ = _pair_violations(H, y, Mu, np.zeros(N))
    m0 = init_size or min(N, max(100, 10 * K))
    first = np.argsort(-v0, kind="stable")[:m0]  # the smallest class-mean margins
    # dedupe identical samples (same row and label) among those entering the working set
    def _dedupe(ii, kk):
        seen = {(H[i].tobytes(), int(y[i]), k) for i, k in zip(ws_i.tolist(), ws_k.tolist())}
        keep = []
        for j, (i, k) in enumerate(zip(ii.tolist(), kk.tolist())):
            key = (H[i].tobytes(), int(y[i]), k)
            if key not in seen:
                seen.add(key)
                keep.append(j)
        return ii[keep], kk[keep]

    ws_i, ws_k = np.zeros(0, np.int64), np.zeros(0, np.int64)
    ws_i, ws_k = _dedupe(first.astype(np.int64), k0[first].astype(np.int64))
    W_prev = Mu
    alpha = np.zeros(0)
    n_iter = 0
    info: dict[str, Any] = {"rounds": []}
    scale = float(np.max(np.einsum("nd,nd->n", H, H)))
    xi_ws = np.zeros(N)
    t_qp = t_pass = 0.0
    Q = None
    vmax_prev = np.inf
    chol = _CholCache()
    new_mask = np.ones(ws_i.size, bool)
    for n_iter in range(1, max_iter + 1):
        Hs = H[ws_i]
        yp = y[ws_i]
        n_old = int((~new_mask).sum()) if new_mask.size == ws_i.size else 0
        if Q is None or Q.shape[0] != n_old or n_old == 0:
            Q = _restricted_gram(Hs, yp, ws_k)
        else:  # grow the cached Gram by the rows of the pairs just added
            Qn = _restricted_gram_cross(Hs[n_old:], yp[n_old:], ws_k[n_old:], Hs, yp, ws_k)
            Q = np.block([[Q[:n_old, :n_old], Qn[:, :n_old].T], [Qn[:, :n_old], Qn[:, n_old:]]])
        with _blas_single_thread():
            tq = time.perf_counter()
            a = None
            if C is None:
                # warm start: previous free set plus the pairs just added (they are violated)
                a0 = np.ones(ws_i.size) if alpha.size != ws_i.size else np.where(new_mask, 1.0, alpha)
                a = _bpp_nnqp(Q, a0, codes=ws_i * K + ws_k, cache=chol)
            st = "Solved (BPP)"
            if a is None:
                a, st = _solve_restricted_dual(Q, ws_i, C)
            t_qp += time.perf_counter() - tq
        if st in ("DualInfeasible", "AlmostDualInfeasible") or (C is None and not np.all(np.isfinite(a))):
            _, _, _, hinge = _pair_violations(H, y, W_prev, np.zeros(N))
            raise _not_separable(N, int(np.sum(hinge >= 1.0)), f"Clarabel proves a subset of "
                                 f"{np.unique(ws_i).size} samples infeasible (status {st})")
        score, a = _restricted_score(Q, a, ws_i, C)
        if st == "Solved (BPP)" and score > 1e-9:  # numerically poor pivot solve: use Clarabel instead
            with _blas_single_thread():
                a, st = _solve_restricted_dual(Q, ws_i, C)
            score, a = _restricted_score(Q, a, ws_i, C)
        with _blas_single_thread():
            cand = _polish(Q, a, ws_i, C) if st != "Solved (BPP)" else None
        if cand is not None:
            s2, c2 = _restricted_score(Q, cand, ws_i, C)
            if s2 < score:
                score, a = s2, c2
        alpha = a
        W = _W_from_alpha(Hs, yp, ws_k, alpha, K)
        if C is None and np.sum(W * W) * scale > 1e16:
            _, _, _, hinge = _pair_violations(H, y, W_prev, np.zeros(N))
            raise _not_separable(N, int(np.sum(hinge >= 1.0)),
                                 "the normalized margin 1/(||W||·max||h||) fell below 1e-8")
        # slack the working set requires (soft margin): ξ^ws_i = max(0, max_{(i,k) in ws} 1 - margin_ik)
        g = Q @ alpha
        xi_ws = np.zeros(N)
        if C is not None:
            np.maximum.at(xi_ws, ws_i, 1.0 - g)
        tp = time.perf_counter()
        # candidates: violated pairs, and (anticipating the next rounds) pairs whose margin is within the
        # current max violation of 1, up to 3 per sample
        floor = -max(vmax_prev, tol) if np.isfinite(vmax_prev) else tol * 0.5
        vmax, bv, bk, _ = _pair_violations(H, y, W, xi_ws, ws_i, ws_k, per_sample=3, floor=floor)
        vmax_prev = vmax
        t_pass += time.perf_counter() - tp
        vi, vj = np.nonzero(bv > floor)
        viol = np.flatnonzero(bv.max(axis=1) > tol * 0.5)
        info["rounds"].append({"ws": int(ws_i.size), "max_violation": vmax, "restricted_status": st,
                               "restricted_score": score, "new": int(viol.size)})
        if verbose:
            print(f"[svm] round {n_iter}: working set {ws_i.size}, max violation {vmax:.3e}, "
                  f"restricted score {score:.2e}, status {st}, violators {viol.size}")
        W_prev = W
        if viol.size == 0:
            break
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            info["stopped"] = f"max_seconds={max_seconds} reached after {n_iter} rounds"
            break
        # drop pairs that are strictly inactive (α = 0 and margin above what they require): the restricted
        # optimum is unchanged, and each added violated pair strictly raises it, so no cycling.
        amax = float(alpha.max()) if alpha.size else 0.0
        need = 1.0 - xi_ws[ws_i] if C is not None else np.ones(ws_i.size)
        keep = (alpha > 1e-10 * amax) | (g <= need + 1e-9)
        if not keep.all():
            ws_i, ws_k, alpha = ws_i[keep], ws_k[keep], alpha[keep]
            Q = Q[np.ix_(keep, keep)]
            info["rounds"][-1]["dropped"] = int((~keep).sum())
        cap = max(m0, ws_i.size)
        n_viol_pairs = int(np.sum(bv > tol * 0.5))
        take = min(cap, 2 * n_viol_pairs + 100)  # violated pairs first, then at most as many near ones
        order = np.argsort(-bv[vi, vj], kind="stable")[:take]
        ni, nk = _dedupe(vi[order].astype(np.int64), bk[vi[order], vj[order]])
        if ni.size == 0:
            break
        new_mask = np.concatenate([np.zeros(ws_i.size, bool), np.ones(ni.size, bool)])
        ws_i = np.concatenate([ws_i, ni])
        ws_k = np.concatenate([ws_k, nk])
        alpha = np.concatenate([alpha, np.zeros(ni.size)])
    info["seconds_restricted_qp"] = t_qp
    info["seconds_full_passes"] = t_pass
    # return the multipliers of the pairs of the last solved restricted problem
    m = alpha.size
    return W_prev, ws_i[:m], ws_k[:m], alpha, n_iter, info, xi_ws
