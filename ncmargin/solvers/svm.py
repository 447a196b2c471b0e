"""Exact, certified multi-class max-margin SVMs on fixed features (docs/theory.md §3).

Problems (H is N x d, labels y in 0..K-1, W is K x d, logits H @ W.T):

    hard margin   minimize ½||W||_F²                 s.t. (w_{y_i} - w_k)·h_i ≥ 1          ∀ i, k ≠ y_i
    soft margin   minimize ½||W||_F² + C Σ_i ξ_i     s.t. (w_{y_i} - w_k)·h_i ≥ 1 - ξ_i,  ξ_i ≥ 0

(Soudry et al. 2018 for the hard margin; Crammer & Singer 2001, eq. (2) with hinge loss, one slack per
sample, for the soft margin — the objective LIBLINEAR/scikit-learn's
``LinearSVC(multi_class="crammer_singer", fit_intercept=False)`` minimizes with the same C.)

Lagrange dual [Crammer & Singer 2001, eq. (5); our form in pair variables]: one multiplier α_{ik} ≥ 0 per
constraint pair (i, k ≠ y_i),

    maximize D(α) = Σ α_{ik} - ½||W(α)||_F²,   W(α) = Σ α_{ik} (e_{y_i} - e_k) h_iᵀ,
    subject to α ≥ 0  (and Σ_k α_{ik} ≤ C for the soft margin).

Solvers (docs/theory.md §3 "algorithm")
---------------------------------------
``method="auto"`` (default): the problem is first put in a well-scaled form (H/s with s = max_i ||h_i||,
C·s²; the answer is mapped back, W = W_s/s). Then

1. dual coordinate descent over (sample, class) pairs (``_dcd.py``: exact block steps, Keerthi et al. 2008
   family) on a shrinking set of active pairs, grown from passes over all N(K-1) pairs (chunked H @ W.T);
   its cost follows passes over the data;
2. when the identified support is small enough (the dense restricted Gram within the memory cap), the
   working-set method below finishes EXACTLY from the DCD pairs (the reported ``method`` is then
   ``"working_set"``, the method that produced W); otherwise DCD runs to a tight tolerance (``"dcd"``);
3. the certificate on the full problem (below), always.

``method="working_set"``: cutting planes over the pairs from a class-mean start; the restricted dual QP is
solved exactly by block principal pivoting (Clarabel as fallback), the most violated pairs of the full
problem are added, until none is violated. ``method="dcd"``: step 1 only, to a tight tolerance.
``method="cvxpy"``: the full primal, vectorized, solved by cvxpy + Clarabel; the reference.

Certificate (every method, on the full problem)
-----------------------------------------------
* ``max_violation``: hard margin, ε = max(0, max_{i,k≠y_i} 1 - (w_{y_i}-w_k)·h_i). Soft margin, the
  violation of the restricted primal point (W, ξ^ws) with ξ^ws_i the slack the working set requires,
  max_i (ξ_i(W) - ξ^ws_i)_+ with ξ_i(W) = max(0, max_k 1-(w_{y_i}-w_k)·h_i).
* ``duality_gap`` (relative): (P_ub - D(α)) / P_ub, where D(α) is evaluated at a dual-FEASIBLE α (projected
  exactly onto α ≥ 0, Σ_k α_ik ≤ C; pairs outside the working set have α = 0) and P_ub is a certified upper
  bound on the optimum: hard margin W/(1-ε) is feasible, so P_ub = ½||W||²/(1-ε)²; soft margin
  (W, ξ(W)) is feasible, so P_ub = ½||W||² + C Σ ξ_i(W). By weak duality D(α) ≤ OPT ≤ P_ub, so the
  reported gap is a rigorous bound on the relative suboptimality of both.
* ``status`` (:class:`Status`) is ``optimal`` only if max_violation ≤ tol and duality_gap ≤ gap_tol
  (default 1e-6); ``SVMSolution.certified`` says the same as a bool.

Bias: ``bias=True`` appends a constant feature ``bias_scale`` (default 1) to every h_i (implicitly, no copy
of H); the bias b = bias_scale · (last column of the augmented W) is then regularized like W.

Features: float32 or float64, never copied to float64 as a whole (chunks are; products accumulate in
float64). ``backend="torch"`` runs the passes with torch (CPU threads, CUDA when available; imported only
then).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ncmargin.theory.checks import check_labels, row_slices

from ._dcd import NumpyBackend, kernel, make_backend
from .status import Status

__all__ = ["NotSeparableError", "SVMSolution", "Status", "multiclass_svm", "svm_certificate"]

_CHUNK_ELEMS = 1 << 22  # float64 entries per N x K block (32 MiB)
_OK_STATUSES = ("Solved", "AlmostSolved")
_DEFAULT_GRAM_PAIRS = 6000  # largest restricted problem solved exactly by default (dense m x m Gram)


class NotSeparableError(ValueError):
    """The hard-margin SVM is infeasible: the features are not linearly separable (use a soft margin).
    Raised only with a proof (an infeasible separating LP on a subset of the samples, or a sample whose
    feature row equals one of another class)."""

    def __init__(self, message: str, n_misclassified: int | None = None, n_samples: int | None = None):
        super().__init__(message)
        self.n_misclassified = n_misclassified
        self.n_samples = n_samples


@dataclass
class SVMSolution:
    """Solution of the multi-class SVM with its optimality certificate (see the module docstring).

    W (K x d), b (K,) or None, objective (the primal objective at W, with ξ(W) for the soft margin),
    dual_objective D(α), margin = 1/||W_aug||_F (the geometric margin of the hard-margin problem; W_aug
    includes the bias column when bias=True), p_min (min_i of the functional margin
    (w_{y_i} - max_{k≠y_i} w_k)·h_i + b terms, docs §2), normalized_margin p_min/(||W||_F max_i ||h_i||),
    duality_gap (relative, certified), kkt_residual, max_violation, support (sample indices with nonzero
    dual mass), support_pairs ((i, k) pairs with α_ik > 0), alpha (their multipliers), status
    (:class:`Status`), seconds, method, n_iter (rounds), working_set_size, n_misclassified (samples with
    p_i ≤ 0, ties counted as errors), C, bias, tol, gap_tol, info (upper_bound, per-round log, timings).
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
    status: str  # a Status value
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

    def __post_init__(self):
        # stored as the plain str value of a Status (equal to it: Status.OPTIMAL == "optimal"), so code and
        # files that compare or serialize plain strings see no difference
        self.status = Status(self.status).value

    @property
    def n_support(self) -> int:
        return int(self.support.size)

    @property
    def certified(self) -> bool:
        """True iff status is optimal and the certificate is within tolerance (gap and violation)."""
        return bool(self.status == Status.OPTIMAL and self.duality_gap <= self.gap_tol
                    and self.max_violation <= self.tol)

    def to_dict(self, include_arrays: bool = True) -> dict[str, Any]:
        """A dict of plain Python values (floats, ints, str, lists; no numpy), ready for JSON."""
        out: dict[str, Any] = {
            "status": str(self.status), "certified": self.certified, "method": self.method, "C": self.C,
            "bias": self.bias, "objective": self.objective, "dual_objective": self.dual_objective,
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
        return _plain(out)

    summary = to_dict  # the earlier name


def _plain(v):
    """numpy scalars/arrays -> Python values; non-finite floats -> None (strict JSON)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, Status):
        return v.value
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if np.isfinite(v) else None
    return v


class _Limits:
    """Wall-clock deadline and memory budget (bytes of the solver's own arrays; H itself not counted)."""

    def __init__(self, t0, max_seconds, max_memory_bytes):
        self.t0 = t0
        self.deadline = None if max_seconds is None else t0 + float(max_seconds)
        self.mem = None if max_memory_bytes is None else float(max_memory_bytes)
        self.reserve = 0.0  # time kept for the closing certificate: ~one measured pass over the data

    def out_of_time(self, margin_s: float = 0.0) -> bool:
        return self.deadline is not None and time.perf_counter() + margin_s + self.reserve > self.deadline

    def measured_pass(self, seconds: float) -> None:
        self.reserve = max(self.reserve, 1.2 * seconds)

    def left(self) -> float:
        return np.inf if self.deadline is None else self.deadline - time.perf_counter()


class _Stop(Exception):
    def __init__(self, status):
        self.status = status


# ----------------------------------------------------------------------------------------------------
# full-problem quantities (chunked)


def _as_backend(H):
    return H if isinstance(H, NumpyBackend) else NumpyBackend(np.asarray(H), 1.0, 0.0)


def _chunk_rows(N, K, dd, limits=None):
    """Rows per chunk of a pass: (rows x (dd + 4K)) float64 temporaries within _CHUNK_ELEMS, and within a
    tenth of the memory budget."""
    budget = _CHUNK_ELEMS
    if limits is not None and limits.mem is not None:
        budget = min(budget, int(limits.mem / 10 / 8))
    return max(1, budget // max(1, dd + 4 * K))


def _pair_violations(H, y, W, xi_ws, ws_i=None, ws_k=None, per_sample: int = 1, floor: float = -np.inf,
                     limits=None):
    """One pass over the data with H @ W.T (chunked; ``H`` an array or a backend).

    Returns (max violation over ALL pairs of 1 - margin_ik - xi_ws_i, per-sample worst violation among
    pairs NOT in the working set and its class, per-sample max_k (1 - margin_ik)). Raises _Stop on timeout
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
    step = _chunk_rows(N, K, W.shape[1], limits)
    t_start = time.perf_counter()
    for s in range(0, N, step):
        e = min(N, s + step)
        if limits is not None and limits.out_of_time():
            raise _Stop(Status.TIME_LIMIT)
        S = be.scores(s, e, W)
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
    if limits is not None:
        limits.measured_pass(time.perf_counter() - t_start)
    if per_sample > 1:
        return vmax, top_v, top_k, hinge
    return vmax, best_v, best_k, hinge


def _gather(H, idx):
    """Scaled float64 rows (with the bias column when the backend has one) of the samples ``idx``."""
    be = _as_backend(H)
    idx = np.asarray(idx, dtype=np.int64)
    R = np.asarray(be.H[idx], dtype=np.float64) * be.inv_s
    if be.bias_val:
        R = np.hstack([R, np.full((idx.size, 1), be.bias_val)])
    return R


def _W_from_alpha(Hs, yp, kp, alpha, K):
    """W(α) = Σ_p α_p (e_{y_p} - e_{k_p}) h_pᵀ  [Crammer & Singer 2001, eq. (7)]."""
    m = alpha.size
    # one sparse (K x m) @ dense (m x d) product; np.add.at is ~10x slower for many pairs
    Y = sp.csr_matrix((np.concatenate([alpha, -alpha]), (np.concatenate([yp, kp]), np.tile(np.arange(m), 2))),
                      shape=(K, m))
    return np.asarray(Y @ Hs)


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
    alpha = _project_dual(np.asarray(alpha, dtype=np.float64), pair_i, C)
    Wa = np.zeros_like(W, dtype=np.float64)
    mp = np.zeros(pair_i.size)
    for s in range(0, pair_i.size, 8192):  # pair blocks: never all support rows at once
        sl = slice(s, min(pair_i.size, s + 8192))
        Hp = _gather(be, pair_i[sl])
        Wa += _W_from_alpha(Hp, y[pair_i[sl]], pair_k[sl], alpha[sl], K)
        mp[sl] = np.einsum("pd,pd->p", Hp, W[y[pair_i[sl]]] - W[pair_k[sl]])
    dual = float(alpha.sum() - 0.5 * np.sum(Wa * Wa))
    soft_own_slack = C is not None and xi_ws is None  # (W, ξ(W)) itself: feasible, violation 0
    if xi_ws is None:
        xi_ws = np.zeros(N)
    if _pass is not None and _pass[0] is W and _pass[1] is xi_ws:  # the caller's pass at this very W
        vmax, hinge = _pass[2], _pass[3]
    else:
        vmax, _, _, hinge = _pair_violations(be, y, W, xi_ws, limits=limits)
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
    # B = E Eᵀ with E_p = e_{y_p} - e_{k_p}: one (m x K)(K x m) product, ~5x faster than four m x m
    # comparisons (measured at m = 1,100, K = 10)
    K = int(max(yp.max(), kp.max())) + 1 if yp.size else 1
    E = np.zeros((yp.size, K))
    r = np.arange(yp.size)
    E[r, yp] = 1.0
    E[r, kp] = -1.0
    Q = Hs @ Hs.T
    Q *= E @ E.T
    return Q


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
# dual coordinate descent driver (docs/theory.md §3 "algorithm")


def _sqnorms(be, limits=None):
    N = be.H.shape[0]
    out = np.empty(N)
    step = _chunk_rows(N, 1, be.d, limits)
    for s in range(0, N, step):
        e = min(N, s + step)
        R = be.rows(s, e)
        out[s:e] = np.einsum("nd,nd->n", R, R)
    if be.bias_val:
        out += be.bias_val ** 2
    return out


def _class_means(be, y, K, limits=None):
    N = be.H.shape[0]
    dd = be.d + (1 if be.bias_val else 0)
    Mu = np.zeros((K, dd))
    step = _chunk_rows(N, 1, be.d, limits)
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


class _Slots:
    """Active pairs of DCD: per sample up to T classes (act_k, -1 = empty) and their multipliers."""

    def __init__(self, N, T):
        self.act_k = np.full((N, T), -1, dtype=np.int32)
        self.alpha = np.zeros((N, T))
        self.n_act = np.zeros(N, dtype=np.int32)

    @property
    def T(self):
        return self.act_k.shape[1]

    def nbytes(self, T=None):
        T = self.T if T is None else T
        return self.act_k.shape[0] * (12 * T + 4)

    def pairs(self):
        """Flat (i, k, α) of the occupied slots."""
        mask = np.arange(self.T)[None, :] < self.n_act[:, None]
        ii, tt = np.nonzero(mask)
        return ii.astype(np.int64), self.act_k[ii, tt].astype(np.int64), self.alpha[ii, tt].copy()

    def grow(self, T_new):
        N, T = self.act_k.shape
        a = np.full((N, T_new), -1, dtype=np.int32)
        a[:, :T] = self.act_k
        al = np.zeros((N, T_new))
        al[:, :T] = self.alpha
        self.act_k, self.alpha = a, al

    def add(self, ii, kk):
        """Append pairs (ii sorted or not; at most one entry per (i, k), none already present)."""
        if ii.size == 0:
            return
        order = np.argsort(ii, kind="stable")
        ii, kk = ii[order], kk[order]
        first = np.searchsorted(ii, ii, side="left")
        rank = np.arange(ii.size) - first
        pos = self.n_act[ii] + rank
        self.act_k[ii, pos] = kk
        self.alpha[ii, pos] = 0.0
        np.add.at(self.n_act, ii, 1)

    def keep(self, mask):
        """Keep the occupied slots where mask (N, T) is True, compacting each row."""
        occ = np.arange(self.T)[None, :] < self.n_act[:, None]
        mask = mask & occ
        order = np.argsort(~mask, axis=1, kind="stable")
        self.act_k = np.take_along_axis(self.act_k, order, axis=1)
        self.alpha = np.take_along_axis(self.alpha, order, axis=1)
        self.n_act = mask.sum(axis=1).astype(np.int32)
        self.act_k[np.arange(self.T)[None, :] >= self.n_act[:, None]] = -1


def _dcd_pass(be, y, W, slots, C, add_per, add_floor, limits):
    """One pass over all N(K-1) pairs: max KKT violation of α = 0 pairs (1 - m_ik - ξ^ws_i, with ξ^ws_i
    the slack the active pairs of a sample at Σα = C require), the violation of each occupied slot, and up
    to ``add_per`` most violated pairs per sample outside the slots (violation > add_floor)."""
    N, K = be.H.shape[0], W.shape[0]
    T = slots.T
    slot_v = np.full((N, T), -np.inf)
    hinge = np.empty(N)
    new_i, new_k, new_v = [], [], []
    vmax = -np.inf
    step = _chunk_rows(N, K + T, W.shape[1], limits)
    t_start = time.perf_counter()
    for s in range(0, N, step):
        e = min(N, s + step)
        if limits.out_of_time():
            raise _Stop(Status.TIME_LIMIT)
        S = be.scores(s, e, W)
        r = np.arange(e - s)
        yc = y[s:e]
        V = 1.0 - (S[r, yc][:, None] - S)
        V[r, yc] = -np.inf
        hinge[s:e] = V.max(axis=1)
        ak = slots.act_k[s:e]
        occ = ak >= 0
        akc = np.where(occ, ak, 0)
        Vs = np.where(occ, np.take_along_axis(V, akc, axis=1), -np.inf)
        if C is not None:
            A = slots.alpha[s:e].sum(axis=1)
            xi = np.where(A >= C * (1 - 1e-9), np.maximum(Vs.max(axis=1, initial=-np.inf), 0.0), 0.0)
            V -= xi[:, None]
            Vs = Vs - xi[:, None]
        slot_v[s:e] = Vs
        rr, cc = np.nonzero(occ)
        V[rr, akc[rr, cc]] = -np.inf
        vmax = max(vmax, float(V.max()))
        if add_per >= 1:
            t = min(add_per, K - 1)
            top = np.argpartition(-V, t - 1, axis=1)[:, :t] if t < K else np.argsort(-V, axis=1)[:, :t]
            tv = np.take_along_axis(V, top, axis=1)
            ri, ci = np.nonzero(tv > add_floor)
            new_i.append(ri + s)
            new_k.append(top[ri, ci])
            new_v.append(tv[ri, ci])
    limits.measured_pass(time.perf_counter() - t_start)
    ni = np.concatenate(new_i) if new_i else np.zeros(0, np.int64)
    nk = np.concatenate(new_k) if new_k else np.zeros(0, np.int64)
    nv = np.concatenate(new_v) if new_v else np.zeros(0)
    return vmax, slot_v, hinge, ni.astype(np.int64), nk.astype(np.int64), nv


def _run_dcd(be, y, K, C, limits, info, *, tol_final, gap_target, max_rounds, verbose, seed=0, state=None):
    """Dual coordinate descent with shrinking on the scaled problem. Returns (W, slots, status) where
    status is None (the certified relative gap of the full problem, estimated from the pass — hard margin
    with W/(1-ε), soft margin with ξ(W) — is below ``gap_target``) or a limit Status."""
    sweeps = kernel()
    N = be.H.shape[0]
    dd = be.d + (1 if be.bias_val else 0)
    sq = be.sq if getattr(be, "sq", None) is not None else _sqnorms(be, limits)
    Cn = -1.0 if C is None else float(C)
    if state is None:
        W = np.zeros((K, dd))
        T0 = min(K - 1, 2)
        if limits.mem is not None and N * (12 * T0 + 4) + 8 * 6 * N > limits.mem:
            raise _Stop(Status.MEMORY_LIMIT)
        slots = _Slots(N, T0)
        info["_dcd_state"] = (W, slots)
        # first candidates: the pairs the centred class-mean classifier finds least separated
        Mu = _class_means(be, y, K, limits)
        _, v0, k0, _ = _pair_violations(be, y, Mu, np.zeros(N), per_sample=T0, limits=limits)
        v0, k0 = v0.reshape(N, -1), k0.reshape(N, -1)  # (N,) when T0 = 1
        # only the samples least separated by the class means start active (the others enter when a pass
        # finds them violated): starting all N from W = 0 makes every sample a (temporary) support vector
        n0 = min(N, max(1000, 20 * K, N // 10))
        first = np.argsort(-v0.max(axis=1), kind="stable")[:n0].astype(np.int64)
        n_start = n0 * T0
        slots.add(np.repeat(first, T0), k0[first].ravel().astype(np.int64))
        tol_in = 2e-2
    else:
        W, slots = state["W"], state["slots"]
        tol_in = 1e-4
        n_start = int(slots.n_act.sum())
    next_lp = 5
    t_sweep = t_pass = 0.0
    n_sweeps_total = 0
    rounds = info.setdefault("dcd_rounds", [])
    rng = np.random.default_rng(seed)
    status = Status.ITERATION_LIMIT
    for rnd in range(1, max_rounds + 1):
        # --- sweeps over the active pairs (batches, so the time limit is checked between them)
        ts = time.perf_counter()
        order = np.flatnonzero(slots.n_act > 0).astype(np.int64)
        maxd = np.inf
        n0 = n_sweeps_total
        batch = 1
        while order.size:
            if limits.out_of_time():
                raise _Stop(Status.TIME_LIMIT)
            tb = time.perf_counter()
            done, maxd = sweeps(be.H, be.inv_s, float(be.bias_val), y, W, sq, slots.act_k, slots.alpha,
                                slots.n_act, order, Cn, batch, tol_in, int(rng.integers(2 ** 31)))
            n_sweeps_total += done
            if maxd <= tol_in:
                break
            el = time.perf_counter() - tb
            left = limits.left()
            # batches of ~0.5 s (or a tenth of the time left)
            batch = int(max(1, min(1000, batch * 2 if el < 0.25 else batch, (min(0.5, left / 10) / max(
                el / max(done, 1), 1e-6)))))
            if n_sweeps_total - n0 > 500:  # per round; the pass below decides what comes next
                break
        t_sweep += time.perf_counter() - ts
        # --- pass over all pairs
        tp = time.perf_counter()
        vmax, slot_v, hinge, ni, nk, nv = _dcd_pass(be, y, W, slots, C, add_per=min(K - 1, 4),
                                                add_floor=max(tol_in, tol_final), limits=limits)
        t_pass += time.perf_counter() - tp
        n_act = int(slots.n_act.sum())
        # certified gap of this iterate (docs §3): D = Σα - ½||W||², P_ub from the pass
        nW2 = float(np.sum(W * W))
        D = float(slots.alpha.sum()) - 0.5 * nW2
        if C is None:
            eps = max(0.0, float(hinge.max()))
            P = 0.5 * nW2 / (1 - eps) ** 2 if eps < 1 else np.inf
        else:
            P = 0.5 * nW2 + C * float(np.maximum(hinge, 0.0).sum())
        gap = (P - D) / max(abs(P), 1e-300) if np.isfinite(P) else np.inf
        rounds.append({"round": rnd, "active_pairs": n_act, "max_violation": vmax, "sweep_tol": tol_in,
                       "last_change": float(maxd), "new": int(ni.size), "sweeps": n_sweeps_total,
                       "gap": gap})
        if verbose:
            print(f"[svm/dcd] round {rnd}: active {n_act} pairs, new-pair violation {vmax:.3e}, gap {gap:.2e}, "
                  f"sweep tol {tol_in:.1e}, new {ni.size}, sweeps {n_sweeps_total}")
        if C is None and rnd >= next_lp and np.any(hinge >= 1.0):
            # still misclassifying after several rounds: ask the separating LP on the suspects (the
            # active samples and the misclassified ones); infeasible = proof of non-separability
            next_lp *= 2
            sub = np.union1d(np.flatnonzero(slots.n_act > 0), np.flatnonzero(hinge >= 1.0))
            if sub.size > 4000:
                sub = np.flatnonzero(hinge >= 1.0)[:4000]
            r = _lp_separable(be, y, K, sub, limits)
            info.setdefault("lp_checks", []).append({"round": rnd, "samples": int(sub.size), "separable": r})
            if r is False:
                raise _NotSep(sub, f"still {int(np.sum(hinge >= 1.0))} misclassified after {rnd} DCD rounds")
        info["_dcd_pass"] = (W.copy(), hinge)  # the last pass, for the feasibility rescale
        if gap <= gap_target:
            status = None
            break
        # --- shrink: pairs at α = 0 whose margin exceeds what they require by a clear amount
        keep = (slots.alpha > 0) | (slot_v > -max(0.1, 10 * tol_in))
        slots.keep(keep)
        # --- grow: the most violated new pairs, at most as many as are active (plus the first batch size),
        # so that a poor early W does not pull every sample in (measured: all 200k samples of a well
        # separated d = 16 problem entered in round 2 and DCD then needed thousands of sweeps)
        cap_new = max(n_start, int(slots.n_act.sum()))
        if ni.size > cap_new:
            sel = np.argpartition(-nv, cap_new - 1)[:cap_new]
            ni, nk = ni[sel], nk[sel]
        if ni.size:
            need = int((slots.n_act + np.bincount(ni, minlength=N)).max())
            if need > slots.T:
                T_new = min(K - 1, max(need, 2 * slots.T))
                if limits.mem is not None and slots.nbytes(T_new) + slots.nbytes() > 0.5 * limits.mem:
                    raise _Stop(Status.MEMORY_LIMIT)
                slots.grow(T_new)
            slots.add(ni, nk)
        tol_in = max(tol_final, tol_in * 0.02)
    info["dcd_sweeps"] = info.get("dcd_sweeps", 0) + n_sweeps_total
    info["seconds_dcd_sweeps"] = info.get("seconds_dcd_sweeps", 0.0) + t_sweep
    info["seconds_dcd_passes"] = info.get("seconds_dcd_passes", 0.0) + t_pass
    info["_dcd_state"] = (W, slots)
    return W, slots, status


# ----------------------------------------------------------------------------------------------------
# public entry point


def _not_separable(N, n_mis, detail, C_ref=1.0):
    return NotSeparableError(
        f"the features are not linearly separable, so the hard-margin SVM (C=None) is infeasible "
        f"({detail}); the soft-margin solution with C={C_ref:g} misclassifies {n_mis} of {N} training "
        f"samples. Use C=... for a soft margin (e.g. C=1.0; `ncmargin svm --soft 1.0` on the command line).",
        n_misclassified=n_mis, n_samples=N)


def _check_H(H):
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


def _feature_scale(H):
    """One pass over H: finiteness (ValueError naming the rows), s = max_i ||h_i|| and the squared row norms
    of H/s, without overflow/underflow (a second, pre-divided pass only when max|H| is outside
    [1e-150, 1e150]). s = 1 if H = 0."""
    N = H.shape[0]
    r2 = np.empty(N)
    amax = 0.0
    for sl in row_slices(N, H.shape[1], _CHUNK_ELEMS):
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
        for sl in row_slices(N, H.shape[1], _CHUNK_ELEMS):
            R = np.asarray(H[sl], dtype=np.float64) / amax
            r2[sl] = np.einsum("nd,nd->n", R, R)
        m = float(r2.max())
        return amax * np.sqrt(m), r2 / m
    m = float(r2.max())
    return float(np.sqrt(m)), r2 / m


def _lp_separable(be, y, K, idx, limits):
    """Is the sample subset ``idx`` linearly separable? The LP  find W: (w_{y_i} - w_k)·h_i ≥ 1  on all
    pairs of those samples, by HiGHS. Returns True (feasible), False (proven infeasible) or None (LP too
    large or undecided). A proof on a subset proves the full problem infeasible."""
    from scipy.optimize import linprog

    idx = np.unique(np.asarray(idx, dtype=np.int64))
    R = _gather(be, idx)
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


def multiclass_svm(H, y, *, C: float | None = None, bias: bool = False, tol: float = 1e-8,
                   method: str = "auto", K: int | None = None, gap_tol: float = 1e-6,
                   bias_scale: float = 1.0, max_iter: int = 200, init_size: int | None = None,
                   max_seconds: float | None = None, max_memory_bytes: float | None = None,
                   backend: str = "numpy", verbose: bool = False) -> SVMSolution:
    """Solve the hard (``C=None``) or soft (Crammer–Singer, hinge, penalty ``C``) multi-class SVM exactly
    and certify the answer on the full problem (docs/theory.md §3; see the module docstring).

    Parameters
    ----------
    H, y : features (N x d, float32 or float64, used without a float64 copy) and labels (N,) in 0..K-1.
    C : None for the hard margin; a positive float for the soft margin (the same C as scikit-learn's
        ``LinearSVC(multi_class="crammer_singer", fit_intercept=False)``).
    bias : append a constant feature ``bias_scale`` (the bias is then regularized).
    tol : threshold on the full-problem max constraint violation for status "optimal".
    gap_tol : threshold on the certified relative duality gap for status "optimal".
    method : "auto" (DCD, exact working-set finish, certificate), "dcd", "working_set", or "cvxpy"
        (reference, full problem).
    K : number of classes (default max(y)+1); classes without samples still get a row of W.
    max_iter : limit on rounds. max_seconds, max_memory_bytes : wall time and the solver's own memory
        (H excluded), checked inside rounds; when hit, the best feasible point found is returned with its
        honest certificate and status ``time_limit`` / ``memory_limit``.
    init_size : initial working-set size of method="working_set".
    backend : "numpy" or "torch" (CPU threads; CUDA when available) for the passes over the data.

    Raises
    ------
    NotSeparableError (a ValueError) if C is None and the features are proven not linearly separable.
    ValueError for bad input (shapes, NaN/Inf, labels, C ≤ 0, unknown method).
    """
    t0 = time.perf_counter()
    H = _check_H(H)
    y, K = check_labels(y, N=H.shape[0], K=K, allow_empty_class=True)
    if C is not None:
        if isinstance(C, bool) or not np.isscalar(C) or not np.isfinite(C) or C <= 0:
            raise ValueError(f"C must be a positive finite number for the soft margin (or None for the hard "
                             f"margin), got {C!r}; pass e.g. C=1.0.")
        C = float(C)
    if not (np.isfinite(tol) and tol > 0) or not (np.isfinite(gap_tol) and gap_tol > 0):
        raise ValueError(f"tol and gap_tol must be positive, got tol={tol!r}, gap_tol={gap_tol!r}.")
    if method not in ("auto", "working_set", "cvxpy", "dcd"):
        raise ValueError(f"unknown method {method!r}; use 'auto', 'dcd', 'working_set' or 'cvxpy'.")
    if not (np.isfinite(bias_scale) and bias_scale > 0):
        raise ValueError(f"bias_scale must be a positive finite number, got {bias_scale!r}.")
    for name, v in (("max_seconds", max_seconds), ("max_memory_bytes", max_memory_bytes)):
        if v is not None and not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number or None, got {v!r}.")
    N, d = H.shape
    limits = _Limits(t0, max_seconds, max_memory_bytes)
    # well-scaled form (docs §3 "scaling"): h -> h/s, bias feature -> bias_scale/s, C -> C s²; W = W_s/s
    s, sq_scaled = _feature_scale(H)
    Cs = None if C is None else C * s * s
    if Cs is not None and not (np.isfinite(Cs) and Cs > 0):
        raise ValueError(f"C={C!r} times the squared feature scale {s:.3g}² is not a finite positive "
                         f"float64; rescale the features (H/s with C*s² is the same problem).")
    bias_val = float(bias_scale) / s if bias else 0.0
    if bias and not (np.isfinite(bias_val) and bias_val > 0):
        raise ValueError(f"bias_scale/feature scale = {bias_scale}/{s:.3g} is not representable; rescale H.")
    be = make_backend(backend, H, 1.0 / s, bias_val)
    be.sq = sq_scaled + bias_val ** 2  # ||h_i/s||² (+ bias feature²), used by DCD
    info: dict[str, Any] = {"feature_scale": s, "backend": be.name}
    status = None
    xi_ws = None
    try:
        if method == "cvxpy":
            W, pi, pk, alpha, n_iter, inf2, xi_ws = _solve_cvxpy(be, y, K, Cs)
            info.update(inf2)
        elif method == "working_set":
            W, pi, pk, alpha, n_iter, inf2, xi_ws, status = _solve_working_set(
                be, y, K, Cs, tol, max_iter, init_size, verbose, limits)
            info.update(inf2)
        else:
            W, pi, pk, alpha, n_iter, xi_ws, status, method = _solve_auto(
                be, y, K, Cs, tol, gap_tol, max_iter, verbose, limits, info, method)
    except _NotSep as exc:
        raise _certify_not_separable(H, y, K, be, bias, bias_scale, exc.idx, limits, exc.detail) from None
    cert = svm_certificate(be, y, W, pi, pk, alpha, C=Cs, K=K, xi_ws=xi_ws, _pass=info.pop("_pass", None))
    if C is None and cert["max_violation"] >= 1.0 and status is None:
        # hard margin, no classifier found that separates: decide with the separating LP
        raise _certify_not_separable(H, y, K, be, bias, bias_scale, pi, limits,
                                     "the solver's answer violates the constraints") from None
    alpha = cert["alpha"]
    nz = alpha > 1e-9 * float(alpha.max()) if alpha.size and alpha.max() > 0 else np.zeros(alpha.size, bool)
    support_pairs = np.stack([pi[nz], pk[nz]], axis=1) if nz.any() else np.zeros((0, 2), dtype=np.int64)
    support = np.unique(pi[nz])
    ok = cert["max_violation"] <= tol and cert["duality_gap"] <= gap_tol
    if status is None:
        status = Status.OPTIMAL if ok else Status.INACCURATE
    # map back to the caller's scale: W = W_s/s (all columns), objectives / s², α / s²
    Wt = W / s
    nW = float(np.linalg.norm(W)) / s  # not norm(W/s): its squares may overflow where the norm does not
    rmax = s * float(np.sqrt(1.0 + be.bias_val ** 2)) if bias else s
    Wout, bout = (Wt[:, :d].copy(), Wt[:, d] * bias_scale) if bias else (Wt, None)
    # objectives are divided by s twice (s² alone may under/overflow where the result does not)
    info.update({"upper_bound": cert["upper_bound"] / s / s, "N": N, "bias_scale": bias_scale if bias else None})
    info.pop("_dcd_state", None)
    info.pop("_dcd_pass", None)
    return SVMSolution(
        W=Wout, b=bout, objective=cert["objective"] / s / s, dual_objective=cert["dual_objective"] / s / s,
        margin=1.0 / nW if nW > 0 else np.inf, p_min=cert["p_min"],
        normalized_margin=cert["p_min"] / (nW * rmax) if nW * rmax > 0 else np.nan,
        duality_gap=cert["duality_gap"], kkt_residual=cert["kkt_residual"],
        max_violation=cert["max_violation"], support=support, support_pairs=support_pairs,
        alpha=alpha[nz] / s / s, status=status, seconds=time.perf_counter() - t0, method=method, n_iter=n_iter,
        working_set_size=int(pi.size), n_misclassified=cert["n_misclassified"], C=C, bias=bool(bias),
        tol=tol, gap_tol=gap_tol, info=info)


class _NotSep(Exception):
    def __init__(self, idx, detail):
        self.idx, self.detail = idx, detail


def _certify_not_separable(H, y, K, be, bias, bias_scale, idx, limits, detail):
    """Prove infeasibility with the separating LP on a subset (the suspect samples, then everything if
    small); return the NotSeparableError, or a RuntimeError when no proof is found."""
    N = H.shape[0]
    proven = None
    for sub in (idx, np.arange(N)):
        if sub is None or np.size(sub) == 0:
            continue
        r = _lp_separable(be, y, K, sub, limits)
        if r is False:
            proven = f"the separating LP on {np.unique(sub).size} samples is infeasible (HiGHS)"
            break
        if r is True and np.unique(sub).size == N:
            break
    if proven is None:
        return RuntimeError(f"the hard-margin solver could not separate the features ({detail}), and no "
                            f"infeasibility proof was found (the separating LP was too large or feasible); "
                            f"try C=... (soft margin) or method='cvxpy'.")
    left = limits.left()
    try:
        soft = multiclass_svm(H, y, C=1.0, bias=bias, bias_scale=bias_scale, K=K,
                              max_seconds=None if not np.isfinite(left) else max(1.0, left))
        n_mis = soft.n_misclassified
    except (ValueError, RuntimeError):  # pragma: no cover - the count is informative only
        n_mis = None
    return _not_separable(N, n_mis, f"{proven}; {detail}")


def _solve_auto(be, y, K, C, tol, gap_tol, max_iter, verbose, limits, info, method):
    """DCD, then (method "auto", support small enough) the exact working-set finish from the DCD pairs."""
    try:
        W, slots, st = _run_dcd(be, y, K, C, limits, info, tol_final=1e-5 if method == "auto" else 1e-12,
                                gap_target=1e-3 if method == "auto" else 0.1 * gap_tol,
                                max_rounds=min(max_iter, 10) if method == "auto" else max_iter, verbose=verbose)
    except _Stop as stop:
        st = stop.status
        if "_dcd_state" not in info:  # stopped before the first iterate: W = 0, no pairs
            z = np.zeros(0, np.int64)
            W0 = np.zeros((K, be.d + (1 if be.bias_val else 0)))
            return W0, z, z, np.zeros(0), 0, None, st, method
        W, slots = info["_dcd_state"]
    pi, pk, alpha = slots.pairs()
    # the exact finish also after the phase-1 round budget (slow DCD: e.g. a soft margin with huge C)
    if method == "auto" and st in (None, Status.ITERATION_LIMIT):
        sup = alpha > 0
        m = int(sup.sum())
        cap = _DEFAULT_GRAM_PAIRS
        if limits.mem is not None:
            cap = min(cap, int(np.sqrt(limits.mem / (8 * 6))))
        if m <= cap:
            try:
                init = (pi[sup], pk[sup], alpha[sup])
                Ww, wi, wk, wa, n_iter, inf2, xi_ws, st2 = _solve_working_set(
                    be, y, K, C, tol, max_iter, None, verbose, limits, init=init, gram_cap=cap)
                info.update(inf2)
                if st2 is None:
                    return Ww, wi, wk, wa, len(info.get("dcd_rounds", [])) + n_iter, xi_ws, None, "working_set"
            except _Stop:
                pass
            info["exact_finish"] = "skipped or stopped: continuing with DCD"
        else:
            info["exact_finish"] = f"support of {m} pairs above the dense-Gram cap {cap}; DCD to tight tolerance"
        if not limits.out_of_time():
            try:
                W, slots, st = _run_dcd_continue(be, y, K, C, limits, info, W, slots, gap_tol, max_iter,
                                                 verbose)
            except _Stop as stop:
                st = stop.status
            pi, pk, alpha = slots.pairs()
        else:
            st = Status.TIME_LIMIT
    xi_ws = None
    if C is None:
        W = _feasible_hard(be, y, W, info.pop("_dcd_pass", None))
    n_iter = len(info.get("dcd_rounds", []))
    return W, pi, pk, alpha, n_iter, xi_ws, st, "dcd"


def _run_dcd_continue(be, y, K, C, limits, info, W, slots, gap_tol, max_iter, verbose):
    """Continue DCD (same W, slots) to a tight tolerance."""
    info.setdefault("dcd_restarts", 0)
    info["dcd_restarts"] += 1
    state = {"W": W, "slots": slots}
    return _run_dcd(be, y, K, C, limits, info, tol_final=1e-12, gap_target=0.1 * gap_tol,
                    max_rounds=max_iter, verbose=verbose, state=state)


def _feasible_hard(be, y, W, last_pass=None):
    """Hard margin: W/(1-ε) is feasible when W violates the constraints by ε < 1 (docs §3); returns it.
    ε comes from the last DCD pass when W has not changed since (else from a new pass); the certificate
    then re-measures the violation of the returned W on the full problem."""
    if last_pass is not None and np.array_equal(last_pass[0], W):
        vmax = float(last_pass[1].max())
    else:
        vmax, _, _, _ = _pair_violations(be, y, W, np.zeros(be.H.shape[0]), limits=None)
    if 0 < vmax < 1.0:
        return W / (1.0 - vmax)
    return W


def _all_pairs(y, K):
    N = y.shape[0]
    I = np.repeat(np.arange(N), K)
    Kc = np.tile(np.arange(K), N)
    keep = Kc != y[I]
    return I[keep], Kc[keep]


def _solve_cvxpy(be, y, K, C):
    """Reference: the full primal in cvxpy, ONE vectorized constraint (a sparse selector on vec(H Wᵀ)),
    solved by Clarabel at tight tolerances. Duals of that constraint are the α_{ik}."""
    import cvxpy as cp

    N = be.H.shape[0]
    H = _gather(be, np.arange(N))
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
        raise _NotSep(np.arange(N), "cvxpy/Clarabel reports the primal infeasible")
    if W.value is None:
        raise RuntimeError(f"cvxpy/Clarabel returned status {prob.status} without a solution")
    alpha = np.asarray(cons[0].dual_value, dtype=np.float64).ravel()
    if C is not None:
        xi_val = np.maximum(np.asarray(xi.value, dtype=np.float64).ravel(), 0.0)
    return (np.asarray(W.value, dtype=np.float64), pi, pk, alpha, 1, {"solver_status": prob.status},
            xi_val)


def _solve_working_set(be, y, K, C, tol, max_iter, init_size, verbose, limits, init=None, gram_cap=None):
    """Cutting planes with exact restricted solves (module docstring). ``init``: (pairs i, k, α) to start
    from (the DCD support) instead of the class-mean start. Returns (..., status) with status None when
    it finished, or a limit Status (then W is the last restricted optimum)."""
    N = be.H.shape[0]
    H = be
    if gram_cap is None:
        gram_cap = _DEFAULT_GRAM_PAIRS if limits.mem is None else int(np.sqrt(limits.mem / 48))
    # warm start: centred class means (Papyan et al. 2020's nearest-class-mean direction)
    m0 = init_size or min(N, max(100, 10 * K))
    Mu = _class_means(be, y, K, limits) if init is None else np.zeros((K, be.d + (1 if be.bias_val else 0)))
    if init is None:
        _, v0, k0, _ = _pair_violations(H, y, Mu, np.zeros(N), limits=limits)
        first = np.argsort(-v0, kind="stable")[:m0]  # the smallest class-mean margins
    # dedupe identical samples (same row and label) among those entering the working set
    keys: dict[int, bytes] = {}

    def _key(idx):
        miss = [i for i in idx if i not in keys]
        if miss:
            for i, row in zip(miss, _gather(be, np.asarray(miss, dtype=np.int64))):
                keys[i] = row.tobytes()
        return [keys[i] for i in idx]

    def _dedupe(ii, kk):
        seen = {(h, int(y[i]), k) for h, i, k in zip(_key(ws_i.tolist()), ws_i.tolist(), ws_k.tolist())}
        keep = []
        for j, (h, i, k) in enumerate(zip(_key(ii.tolist()), ii.tolist(), kk.tolist())):
            key = (h, int(y[i]), k)
            if key not in seen:
                seen.add(key)
                keep.append(j)
        return ii[keep], kk[keep]

    ws_i, ws_k = np.zeros(0, np.int64), np.zeros(0, np.int64)
    if init is None:
        ws_i, ws_k = _dedupe(first.astype(np.int64), k0[first].astype(np.int64))
        alpha = np.zeros(0)
    else:
        ws_i, ws_k, alpha = (np.asarray(a) for a in init)
        ws_i, ws_k, alpha = ws_i.astype(np.int64), ws_k.astype(np.int64), alpha.astype(np.float64)
    W_prev = Mu
    status = None
    n_iter = 0
    info: dict[str, Any] = {"rounds": []}
    scale = 1.0 + be.bias_val ** 2  # max_i ||h_i||² of the scaled problem
    xi_ws = np.zeros(N)
    t_qp = t_pass = 0.0
    Q = None
    vmax_prev = np.inf
    chol = _CholCache()
    new_mask = np.ones(ws_i.size, bool) if init is None else np.zeros(ws_i.size, bool)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        if ws_i.size > gram_cap:
            status = Status.MEMORY_LIMIT
            info["stopped"] = f"working set {ws_i.size} above the dense-Gram cap {gram_cap}"
            break
        if limits.out_of_time():
            status = Status.TIME_LIMIT
            break
        Hs = _gather(be, ws_i)
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
            # warm start: previous free set plus the pairs just added (they are violated). Soft margin: the
            # hard restricted optimum is also the soft one when no sample's dual mass exceeds C (ξ = 0).
            a0 = np.ones(ws_i.size) if alpha.size != ws_i.size else np.where(new_mask, 1.0, alpha)
            a = _bpp_nnqp(Q, a0, codes=ws_i * K + ws_k, cache=chol)
            if C is not None and a is not None and np.bincount(ws_i, weights=a).max() > C:
                a = None
            st = "Solved (BPP)"
            if a is None:
                a, st = _solve_restricted_dual(Q, ws_i, C)
            t_qp += time.perf_counter() - tq
        if C is None and (st in ("DualInfeasible", "AlmostDualInfeasible") or not np.all(np.isfinite(a))):
            raise _NotSep(ws_i, f"Clarabel reports the restricted dual of {np.unique(ws_i).size} samples "
                                f"unbounded (status {st})")
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
            raise _NotSep(ws_i, "the normalized margin 1/(||W||·max||h||) fell below 1e-8")
        # slack the working set requires (soft margin): ξ^ws_i = max(0, max_{(i,k) in ws} 1 - margin_ik)
        g = Q @ alpha
        xi_ws = np.zeros(N)
        if C is not None:
            np.maximum.at(xi_ws, ws_i, 1.0 - g)
        tp = time.perf_counter()
        # candidates: violated pairs, and (anticipating the next rounds) pairs whose margin is within the
        # current max violation of 1, up to 3 per sample
        floor = -max(vmax_prev, tol) if np.isfinite(vmax_prev) else tol * 0.5
        try:
            vmax, bv, bk, hinge_ = _pair_violations(H, y, W, xi_ws, ws_i, ws_k, per_sample=3, floor=floor,
                                                    limits=limits)
            info["_pass"] = (W, xi_ws, vmax, hinge_)  # reused by the certificate when W is final
        except _Stop as stop:
            W_prev, status = W, stop.status
            break
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
        if limits.out_of_time():
            info["stopped"] = f"time limit reached after {n_iter} rounds"
            status = Status.TIME_LIMIT
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
    if status is None and n_iter >= max_iter and viol.size:
        status = Status.ITERATION_LIMIT
    return W_prev, ws_i[:m], ws_k[:m], alpha, n_iter, info, xi_ws, status
