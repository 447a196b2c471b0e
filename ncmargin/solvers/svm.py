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

from ncmargin.theory.checks import check_labels

from ._dcd import make_backend
from .certificate import svm_certificate
from .dcd import feasible_hard, run_dcd, run_dcd_continue
from .limits import Limits, NotSeparableSuspect, Stop
from .reference import solve_cvxpy
from .restricted import DEFAULT_GRAM_PAIRS, solve_working_set
from .separability import check_H, feature_scale, lp_separable
from .status import Status

__all__ = ["NotSeparableError", "SVMSolution", "Status", "multiclass_svm", "svm_certificate"]

# method "auto": after the first DCD phase (certified gap 1e-3), the exact working-set finish (dense Gram and
# Cholesky of the support pairs: O(m²d + m³)) runs when the support has at most this many pairs, or when the
# requested gap is below what DCD reaches quickly (_DCD_GAP_FLOOR); otherwise DCD continues to 0.1·gap_tol.
# Measured on hard features (benchmarks/bench_svm.py, noise 3, 2 threads): at 5k x 512 x 10 (1,906 support
# pairs) the exact finish took 0.26-0.28 s in all, DCD to gap 6e-8 0.155-0.16 s; at 20k (2,359 pairs)
# 0.59-0.63 s against 0.41-0.45 s; at 1,000 pairs the Cholesky costs ~0.01 s and the finish is cheap.
_EXACT_FINISH_PAIRS = 1000
_DCD_GAP_FLOOR = 1e-9


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


def _not_separable(N, n_mis, detail, C_ref=1.0):
    return NotSeparableError(
        f"the features are not linearly separable, so the hard-margin SVM (C=None) is infeasible "
        f"({detail}); the soft-margin solution with C={C_ref:g} misclassifies {n_mis} of {N} training "
        f"samples. Use C=... for a soft margin (e.g. C=1.0; `ncmargin svm --soft 1.0` on the command line).",
        n_misclassified=n_mis, n_samples=N)


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
    H = check_H(H)
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
    limits = Limits(t0, max_seconds, max_memory_bytes, passes_after=2 if C is None else 1)
    # well-scaled form (docs §3 "scaling"): h -> h/s, bias feature -> bias_scale/s, C -> C s²; W = W_s/s
    s, sq_scaled = feature_scale(H)
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
            W, pi, pk, alpha, n_iter, inf2, xi_ws = solve_cvxpy(be, y, K, Cs)
            info.update(inf2)
        elif method == "working_set":
            W, pi, pk, alpha, n_iter, inf2, xi_ws, status = solve_working_set(
                be, y, K, Cs, tol, max_iter, init_size, verbose, limits)
            info.update(inf2)
        else:
            W, pi, pk, alpha, n_iter, xi_ws, status, method = _solve_auto(
                be, y, K, Cs, tol, gap_tol, max_iter, verbose, limits, info, method)
    except NotSeparableSuspect as exc:
        raise _certify_not_separable(H, y, K, be, bias, bias_scale, exc.idx, limits, exc.detail) from None
    # the closing certificate always runs to the end (no deadline), with chunks sized by the memory cap
    cert = svm_certificate(be, y, W, pi, pk, alpha, C=Cs, K=K, xi_ws=xi_ws, _pass=info.pop("_pass", None),
                           limits=Limits(t0, None, max_memory_bytes))
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
    # objectives are divided by s twice (s² alone may under/overflow where the result does not); for features
    # scaled like 1e-200 the objectives and multipliers are ~1e400, outside float64: reported as inf, expected
    # (W, margins and the relative certificate come from the well-scaled problem and are finite)
    with np.errstate(over="ignore"):
        ub_out, obj_out = cert["upper_bound"] / s / s, cert["objective"] / s / s
        dual_out, alpha_out = cert["dual_objective"] / s / s, alpha[nz] / s / s
    info.update({"upper_bound": ub_out, "N": N, "bias_scale": bias_scale if bias else None})
    info.pop("_dcd_state", None)
    info.pop("_dcd_pass", None)
    return SVMSolution(
        W=Wout, b=bout, objective=obj_out, dual_objective=dual_out,
        margin=1.0 / nW if nW > 0 else np.inf, p_min=cert["p_min"],
        normalized_margin=cert["p_min"] / (nW * rmax) if nW * rmax > 0 else np.nan,
        duality_gap=cert["duality_gap"], kkt_residual=cert["kkt_residual"],
        max_violation=cert["max_violation"], support=support, support_pairs=support_pairs,
        alpha=alpha_out, status=status, seconds=time.perf_counter() - t0, method=method, n_iter=n_iter,
        working_set_size=int(pi.size), n_misclassified=cert["n_misclassified"], C=C, bias=bool(bias),
        tol=tol, gap_tol=gap_tol, info=info)


def _certify_not_separable(H, y, K, be, bias, bias_scale, idx, limits, detail):
    """Prove infeasibility with the separating LP on a subset (the suspect samples, then everything if
    small); return the NotSeparableError, or a RuntimeError when no proof is found."""
    N = H.shape[0]
    proven = None
    for sub in (idx, np.arange(N)):
        if sub is None or np.size(sub) == 0:
            continue
        r = lp_separable(be, y, K, sub, limits)
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
        W, slots, st = run_dcd(be, y, K, C, limits, info, tol_final=1e-5 if method == "auto" else 1e-12,
                                gap_target=1e-3 if method == "auto" else 0.1 * gap_tol,
                                max_rounds=min(max_iter, 10) if method == "auto" else max_iter, verbose=verbose)
    except Stop as stop:
        st = stop.status
        if "_dcd_state" not in info:  # stopped before the first iterate: W = 0, no pairs
            z = np.zeros(0, np.int64)
            W0 = np.zeros((K, be.d + (1 if be.bias_val else 0)))
            return W0, z, z, np.zeros(0), 0, None, st, method
        W, slots = info["_dcd_state"]
    pi, pk, alpha = slots.pairs()
    if method == "auto" and st in (None, Status.ITERATION_LIMIT):
        cap_full = DEFAULT_GRAM_PAIRS
        if limits.mem is not None:
            cap_full = min(cap_full, int(np.sqrt(limits.mem / (8 * 6))))
        # the exact finish right away when the support is small, when DCD is slow (phase-1 round budget
        # spent: e.g. a soft margin with large C) or when the requested gap is below what DCD reaches quickly
        prefer_exact = st == Status.ITERATION_LIMIT or gap_tol < _DCD_GAP_FLOOR
        cap = cap_full if prefer_exact else min(cap_full, _EXACT_FINISH_PAIRS)
        done = _exact_finish(be, y, K, C, tol, max_iter, verbose, limits, info, pi, pk, alpha, cap)
        if done is not None:
            return done
        if not limits.out_of_time():
            try:
                W, slots, st = run_dcd_continue(be, y, K, C, limits, info, W, slots, gap_tol, max_iter,
                                                 verbose)
            except Stop as stop:
                st = stop.status
            pi, pk, alpha = slots.pairs()
            if st == Status.ITERATION_LIMIT and cap < cap_full:  # DCD stalled: the exact finish after all
                done = _exact_finish(be, y, K, C, tol, max_iter, verbose, limits, info, pi, pk, alpha, cap_full)
                if done is not None:
                    return done
        else:
            st = Status.TIME_LIMIT
    xi_ws = None
    if C is None:
        W = feasible_hard(be, y, W, info.pop("_dcd_pass", None))
    n_iter = len(info.get("dcd_rounds", []))
    return W, pi, pk, alpha, n_iter, xi_ws, st, "dcd"


def _exact_finish(be, y, K, C, tol, max_iter, verbose, limits, info, pi, pk, alpha, cap):
    """The exact working-set finish from the pairs that carry weight, when there are at most ``cap`` of them;
    the solver's return tuple, or None (too many pairs, or stopped: the caller continues with DCD)."""
    sup = alpha > 0
    m = int(sup.sum())
    if m > cap:
        info["exact_finish"] = f"support of {m} pairs above the exact-finish cap {cap}; DCD to tight tolerance"
        return None
    try:
        Ww, wi, wk, wa, n_iter, inf2, xi_ws, st2 = solve_working_set(
            be, y, K, C, tol, max_iter, None, verbose, limits, init=(pi[sup], pk[sup], alpha[sup]), gram_cap=cap)
    except Stop:
        st2 = Status.TIME_LIMIT
    else:
        info.update(inf2)
        if st2 is None:
            info["exact_finish"] = f"{m} support pairs"
            return Ww, wi, wk, wa, len(info.get("dcd_rounds", [])) + n_iter, xi_ws, None, "working_set"
    info["exact_finish"] = f"stopped ({st2}): continuing with DCD"
    return None
