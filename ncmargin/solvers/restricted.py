"""The restricted dual of the multi-class SVM on a working set of pairs, solved exactly, and the
working-set (cutting-plane) method around it (docs/theory.md §3 "working-set method"): the restricted Gram,
block principal pivoting with an extended Cholesky factor, Clarabel as fallback, the active-set polish."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from .certificate import W_from_alpha, class_means, gather, pair_violations, project_dual
from .limits import NotSeparableSuspect, Stop
from .status import Status

__all__ = ["DEFAULT_GRAM_PAIRS", "solve_working_set"]

DEFAULT_GRAM_PAIRS = 6000  # largest restricted problem solved exactly by default (dense m x m Gram)


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


def _restricted_gram(Hu, inv, yp, kp):
    """Q_pq = (e_{y_p} - e_{k_p})·(e_{y_q} - e_{k_q}) · h_p·h_q for pairs p whose sample rows are Hu[inv[p]]
    (Hu: the distinct samples of the working set, each once)."""
    # the sample Gram on distinct samples (a sample with several pairs enters once): at 5k x 512 with 29%
    # support vectors 1,444 samples carry 1,906 pairs, and the product is 1.7x cheaper than on pair rows.
    # B = E Eᵀ with E_p = e_{y_p} - e_{k_p}: one (m x K)(K x m) product, ~5x faster than four m x m
    # comparisons (measured at m = 1,100, K = 10)
    K = int(max(yp.max(), kp.max())) + 1 if yp.size else 1
    E = np.zeros((yp.size, K))
    r = np.arange(yp.size)
    E[r, yp] = 1.0
    E[r, kp] = -1.0
    G = Hu @ Hu.T
    Q = G[inv][:, inv] if inv.size != Hu.shape[0] or np.any(inv != np.arange(inv.size)) else G
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


_BLAS_CONTROLLER: list = []  # [ThreadpoolController or None], made once per process


def _blas_single_thread():
    """Dense factorizations of the (small) restricted problems run with one BLAS thread: on a loaded
    machine a multithreaded OpenBLAS Cholesky of order 1000 was measured 60x slower than single-threaded
    (1.9 s vs 0.03 s). threadpoolctl is optional (it ships with scikit-learn). Its controller (the scan of
    the loaded BLAS libraries) is made once, after scipy.linalg has loaded its BLAS: ``threadpool_limits``
    rescans them on every call, measured 7-25 ms each, two calls per working-set round."""
    import contextlib

    if not _BLAS_CONTROLLER:
        try:
            import scipy.linalg  # noqa: F401  (loads scipy's BLAS before the scan)
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover
            _BLAS_CONTROLLER.append(None)
        else:
            _BLAS_CONTROLLER.append(ThreadpoolController())
    ctl = _BLAS_CONTROLLER[0]
    return contextlib.nullcontext() if ctl is None else ctl.limit(limits=1, user_api="blas")


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
    a = project_dual(alpha, si, C)
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


def solve_working_set(be, y, K, C, tol, max_iter, init_size, verbose, limits, init=None, gram_cap=None):
    """Cutting planes with exact restricted solves (module docstring). ``init``: (pairs i, k, α) to start
    from (the DCD support) instead of the class-mean start. Returns (..., status) with status None when
    it finished, or a limit Status (then W is the last restricted optimum)."""
    N = be.H.shape[0]
    H = be
    if gram_cap is None:
        gram_cap = DEFAULT_GRAM_PAIRS if limits.mem is None else int(np.sqrt(limits.mem / 48))
    # warm start: centred class means (Papyan et al. 2020's nearest-class-mean direction)
    m0 = init_size or min(N, max(100, 10 * K))
    Mu = class_means(be, y, K, limits) if init is None else np.zeros((K, be.d + (1 if be.bias_val else 0)))
    if init is None:
        _, v0, k0, _ = pair_violations(H, y, Mu, np.zeros(N), limits=limits)
        first = np.argsort(-v0, kind="stable")[:m0]  # the smallest class-mean margins
    # dedupe identical samples (same row and label) among those entering the working set
    keys: dict[int, bytes] = {}

    def _key(idx):
        miss = [i for i in idx if i not in keys]
        if miss:
            for i, row in zip(miss, gather(be, np.asarray(miss, dtype=np.int64))):
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
        uniq, inv = np.unique(ws_i, return_inverse=True)
        Hu = gather(be, uniq)
        Hs = Hu[inv]
        yp = y[ws_i]
        n_old = int((~new_mask).sum()) if new_mask.size == ws_i.size else 0
        if Q is None or Q.shape[0] != n_old or n_old == 0:
            Q = _restricted_gram(Hu, inv, yp, ws_k)
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
            raise NotSeparableSuspect(ws_i, f"Clarabel reports the restricted dual of {np.unique(ws_i).size} samples "
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
        W = W_from_alpha(Hs, yp, ws_k, alpha, K)
        if C is None and np.sum(W * W) * scale > 1e16:
            raise NotSeparableSuspect(ws_i, "the normalized margin 1/(||W||·max||h||) fell below 1e-8")
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
            vmax, bv, bk, hinge_ = pair_violations(H, y, W, xi_ws, ws_i, ws_k, per_sample=3, floor=floor,
                                                    limits=limits)
            info["_pass"] = (W, xi_ws, vmax, hinge_)  # reused by the certificate when W is final
        except Stop as stop:
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
