"""The unconstrained-feature-model SVM as a convex nuclear-norm program (docs/theory.md §3).

    (UFM-SVM)  minimize ½(||W||_F² + ||H||_F²)  s.t. (w_{y_i} - w_k)·h_i ≥ 1   (non-convex in W, H)

equals, with Z = W Hᵀ (K x N) and min{½(||W||²+||H||²) : W Hᵀ = Z} = ||Z||_* (Srebro et al. 2005;
Recht, Fazel & Parrilo 2010, Lemma 5.1),

    (NUC)      minimize ||Z||_*  s.t.  Z[y_i, i] - Z[k, i] ≥ 1   ∀ i, k ≠ y_i,

and an optimal Z = A S Bᵀ (thin SVD) factors back into W = A S^½ (K x r), H = B S^½ (N x r)
(docs/theory.md §3). For balanced classes (n per class) the optimum is (K-1)·sqrt(n) [derived in docs/theory.md
§3: attained by the simplex-ETF solution].

Certificate [our form]: Lagrange dual of (NUC) is maximize 1ᵀλ s.t. ||A*(λ)||_2 ≤ 1, λ ≥ 0, with
A*(λ) = Σ λ_ik (e_{y_i} - e_k) e_iᵀ (K x N) and ||·||_2 the spectral norm. From cvxpy's multipliers λ ≥ 0,
λ / max(1, ||A*(λ)||_2) is dual feasible, so its value is a rigorous lower bound; the primal Z with max
violation ε < 1 gives the feasible Z/(1-ε), an upper bound ||Z||_*/(1-ε). The relative gap between the
two bounds is reported.

Class reduction [our form]: (NUC) is convex and invariant under permuting the samples within a class, so
averaging an optimum over those permutations gives an optimum whose columns are equal within each class:
Z = Zc E with Zc K x K and E the K x N class indicator, and ||Zc E||_* = ||Zc diag(sqrt(n_c))||_*. The
default (reduce=True) solves that K x K program (any N; the certificate is still computed on the full
K x N problem, with λ_ik = μ_{y_i,k}/n_{y_i} from the reduced multipliers μ). reduce=False solves the full
K x N program, an SDP with a PSD block of order K+N: measured 76 s at K=10, N=100 on the loaded 2-core
machine, and killed (time/memory) at N=300 — for cross-checks on tiny problems only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ncmargin.theory.checks import check_labels

from .status import Status

__all__ = ["UFMSolution", "ufm_svm"]


@dataclass
class UFMSolution:
    """W (K x d), H (N x d), Z = W Hᵀ (K x N), objective ||Z||_*, and the certificate dict."""

    W: np.ndarray
    H: np.ndarray
    Z: np.ndarray
    objective: float
    certificate: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        """A Status value (plain str)."""
        return Status(self.certificate.get("status", Status.FAILED)).value


def _selector(y, K):
    N = y.shape[0]
    I = np.repeat(np.arange(N), K)
    Kc = np.tile(np.arange(K), N)
    keep = Kc != y[I]
    pi, pk = I[keep], Kc[keep]
    m = pi.size
    # vec(Z) in column-major order: Z[k, i] -> k + i*K
    rows = np.concatenate([np.arange(m), np.arange(m)])
    cols = np.concatenate([y[pi] + pi * K, pk + pi * K])
    vals = np.concatenate([np.ones(m), -np.ones(m)])
    return sp.csr_matrix((vals, (rows, cols)), shape=(m, K * N)), pi, pk


def ufm_svm(y, d: int | None = None, *, K: int | None = None, solver: str = "CLARABEL",
            tol: float = 1e-7, gap_tol: float = 1e-6, reduce: bool = True, max_n: int = 2000) -> UFMSolution:
    """Solve the UFM max-margin problem through its nuclear-norm program (module docstring).

    Parameters
    ----------
    y : labels (N,) in 0..K-1 (every class needs a sample).
    d : feature dimension of the returned factors; W, H are zero-padded to d columns. Must be ≥ the rank
        of the optimal Z (≤ K-1 for balanced classes: the factors need d ≥ K-1). Default: that rank.
    solver : "CLARABEL" (default; interior point, accurate) or "SCS" (first order, less accurate).
    tol, gap_tol : thresholds on the max violation and the certified relative gap for status "optimal".
    reduce : solve the exact K x K class-reduced program (default; any N) instead of the K x N one.
    max_n : with reduce=False, refuse N above this (the SDP is of order K+N); raise it knowingly.
    """
    import cvxpy as cp

    t0 = time.perf_counter()
    y, K = check_labels(y, K=K)
    N = y.shape[0]
    if not reduce and N > max_n:
        raise ValueError(f"ufm_svm builds an SDP of order K+N = {K + N}; N = {N} exceeds max_n = {max_n}. "
                         f"Use fewer samples per class (the balanced optimum is (K-1)*sqrt(n)) or pass a "
                         f"larger max_n knowingly.")
    if d is not None and (isinstance(d, bool) or int(d) != d or d < K - 1):
        raise ValueError(f"d = {d!r} is too small: the UFM optimum has rank K-1 = {K - 1} for balanced "
                         f"classes (a simplex ETF needs d >= K-1); pass d >= {K - 1} or d=None.")
    Sel, pi, pk = _selector(y, K)
    counts = np.bincount(y, minlength=K)
    kw = ({"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10, "max_iter": 500}
          if solver.upper() == "CLARABEL" else {"eps": 1e-9, "max_iters": 200000})
    if reduce:
        # [our form] the program is convex and invariant under permutations of the samples within a
        # class, so averaging an optimum over them gives an optimum with one column Zc[:, c] per class:
        # Z = Zc E (E the K x N class indicator), ||Zc E||_* = ||Zc diag(sqrt(n_c))||_* (E Eᵀ = diag(n)).
        Sel_r, _, _ = _selector(np.arange(K), K)
        Zc = cp.Variable((K, K))
        con = Sel_r @ cp.vec(Zc, order="F") >= 1
        prob = cp.Problem(cp.Minimize(cp.normNuc(Zc @ np.diag(np.sqrt(counts.astype(np.float64))))), [con])
        prob.solve(solver=solver.upper(), **kw)
        if Zc.value is None:
            raise RuntimeError(f"cvxpy/{solver} returned status {prob.status} for the reduced UFM program")
        Zv = np.asarray(Zc.value, dtype=np.float64)[:, y]
        mu = np.asarray(con.dual_value, dtype=np.float64).ravel()
        # full-problem multipliers λ_ik = μ_{y_i,k} / n_{y_i} (same dual value and spectral norm)
        lam_full = mu[y[pi] * (K - 1) + pk - (pk > y[pi])] / counts[y[pi]]
    else:
        Z = cp.Variable((K, N))
        con = Sel @ cp.vec(Z, order="F") >= 1
        prob = cp.Problem(cp.Minimize(cp.normNuc(Z)), [con])
        prob.solve(solver=solver.upper(), **kw)
        if Z.value is None:
            raise RuntimeError(f"cvxpy/{solver} returned status {prob.status} for the UFM nuclear-norm "
                               f"program")
        Zv = np.asarray(Z.value, dtype=np.float64)
        lam_full = np.asarray(con.dual_value, dtype=np.float64).ravel()
    # certificate
    marg = Sel @ Zv.ravel(order="F")
    eps = max(0.0, float((1.0 - marg).max()))
    s_all = np.linalg.svd(Zv, compute_uv=False)
    nuc = float(s_all.sum())
    ub = nuc / (1.0 - eps) if eps < 1 else np.inf
    lam = np.maximum(lam_full, 0.0)
    Astar = np.zeros((K, N))
    np.add.at(Astar, (y[pi], pi), lam)
    np.add.at(Astar, (pk, pi), -lam)
    spec = float(np.linalg.norm(Astar, 2))
    lb = float(lam.sum()) / max(1.0, spec)
    gap = (ub - lb) / max(abs(ub), 1e-300)
    # factor back: Z = A S B^T, W = A S^1/2, H = B S^1/2
    A, s, Bt = np.linalg.svd(Zv, full_matrices=False)
    r = int(np.sum(s > 1e-6 * s[0])) if s.size and s[0] > 0 else 0
    W = A[:, :r] * np.sqrt(s[:r])
    Hf = Bt[:r].T * np.sqrt(s[:r])
    if d is not None:
        if d < r:
            raise ValueError(f"d = {d} is smaller than the rank {r} of the optimal Z; pass d >= {r}.")
        W = np.hstack([W, np.zeros((K, d - r))])
        Hf = np.hstack([Hf, np.zeros((N, d - r))])
    cert = {
        "reduced": bool(reduce),
        "solver": solver.upper(), "solver_status": prob.status, "objective": nuc,
        "cvxpy_value": float(prob.value), "dual_lower_bound": lb, "primal_upper_bound": ub,
        "duality_gap": float(gap), "max_violation": eps, "dual_spectral_norm": spec, "rank": r,
        "factor_objective": 0.5 * float(np.sum(W * W) + np.sum(Hf * Hf)),
        "factor_max_violation": float(max(0.0, (1.0 - Sel @ (W @ Hf.T).ravel(order="F")).max())),
        "balanced": bool(np.all(counts == counts[0])),
    }
    if cert["balanced"]:
        closed = (K - 1) * np.sqrt(counts[0])
        cert["closed_form"] = float(closed)
        cert["closed_form_rel_error"] = abs(nuc - closed) / closed
    cert["status"] = (Status.OPTIMAL if (eps <= tol and gap <= gap_tol) else Status.INACCURATE).value
    cert["seconds"] = time.perf_counter() - t0
    return UFMSolution(W=W, H=Hf, Z=Zv, objective=nuc, certificate=cert)
