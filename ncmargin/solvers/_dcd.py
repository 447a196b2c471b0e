"""Dual coordinate descent for the Crammer–Singer SVM over (sample, class) pairs (docs/theory.md §3).

One *block* is the set of active pairs (i, k) of one sample i; the block subproblem

    maximize_{β ≥ 0 (, Σ_k β_k ≤ C)}  Σ_k β_k - ½||W + Σ_k (β_k - α_ik)(e_{y_i} - e_k) h_iᵀ||²

has Hessian s(11ᵀ + I) (s = ||h_i||²) and is solved EXACTLY by a sort (Keerthi et al. 2008, §3; Crammer &
Singer 2001, Alg. "fixed point" for the same threshold structure): β_k = max(0, c_k - θ) with
c_k = (1 - m_k)/s + A + α_ik (m_k the current margin of the pair, A = Σ_k α_ik) and θ the unique root of
θ = Σ_k max(0, c_k - θ); for the soft margin, when that root exceeds C, θ solves Σ_k max(0, c_k - θ) = C.

Why numba and not vectorized block updates: the method is Gauss–Seidel (each block sees the W left by the
previous block); a vectorized (Jacobi) update of many samples at once with the same exact block step is not
a descent method when samples share classes (it overshoots and can diverge), and damping it by the number
of samples that share a class makes it as slow as projected gradient. A per-sample Python loop costs
~10 µs of interpreter overhead per block, ~100x the arithmetic at d = 512 with a few active pairs; the
compiled loop is bound by memory traffic of W rows (measured in benchmarks/bench_svm.py: a sweep over
~3,000 active pairs at d = 512 takes ~1 ms).

Features may be float32 or float64; every product is accumulated in float64, and every feature entry is
multiplied by ``inv_s`` (the solver works on H/s, docs/theory.md §3 "scaling") on the fly, so no scaled or
float64 copy of H is made.
"""

from __future__ import annotations

import numpy as np

_KERNEL = None


def _build():
    import numba

    @numba.njit(cache=True, nogil=True, fastmath=True)
    def sweeps(H, inv_s, bias_val, y, W, sq, act_k, alpha, n_act, order, C, n_sweeps, tol, seed):
        """Run up to n_sweeps Gauss–Seidel sweeps over the samples in ``order`` (shuffled each sweep).
        Returns (sweeps done, last sweep's max margin change s·|Δα|)."""
        np.random.seed(seed)
        d = H.shape[1]
        has_bias = W.shape[1] > d
        T = act_k.shape[1]
        m = np.empty(T)
        c = np.empty(T)
        cs = np.empty(T)
        beta = np.empty(T)
        h = np.empty(W.shape[1])
        soft = C > 0.0
        maxd = 0.0
        done = 0
        # in-call shrinking (LIBLINEAR-style): a sample whose block step left every β at 0 with all margins
        # above 1 + tol is skipped by the following sweeps; a sweep that meets the tolerance on the rest is
        # repeated over ALL samples before convergence is declared
        skip = np.zeros(H.shape[0], dtype=np.bool_)
        full = True
        sw = 0
        while sw < n_sweeps:
            sw += 1
            np.random.shuffle(order)
            maxd = 0.0
            for oi in range(order.shape[0]):
                i = order[oi]
                nt = n_act[i]
                if nt == 0:
                    continue
                if skip[i] and not full:
                    continue
                yi = y[i]
                s = sq[i]
                if s <= 0.0:
                    continue
                for j in range(d):
                    h[j] = H[i, j] * inv_s
                if has_bias:
                    h[d] = bias_val
                dd = W.shape[1]
                hy = 0.0
                for j in range(dd):
                    hy += W[yi, j] * h[j]
                A = 0.0
                for t in range(nt):
                    k = act_k[i, t]
                    hk = 0.0
                    for j in range(dd):
                        hk += W[k, j] * h[j]
                    m[t] = hy - hk
                    A += alpha[i, t]
                for t in range(nt):
                    c[t] = (1.0 - m[t]) / s + A + alpha[i, t]
                    cs[t] = c[t]
                cs[:nt].sort()  # ascending; walk from the top
                theta = 0.0
                if cs[nt - 1] > 0.0:
                    cum = 0.0
                    for r in range(1, nt + 1):
                        cum += cs[nt - r]
                        th = cum / (r + 1)
                        nxt = cs[nt - r - 1] if r < nt else -np.inf
                        if th >= nxt:
                            theta = th
                            break
                    if soft and theta > C:
                        cum = 0.0
                        for r in range(1, nt + 1):
                            cum += cs[nt - r]
                            th = (cum - C) / r
                            nxt = cs[nt - r - 1] if r < nt else -np.inf
                            if th >= nxt:
                                theta = th
                                break
                if theta == 0.0 and A == 0.0:
                    mn = np.inf
                    for t in range(nt):
                        mn = min(mn, m[t])
                    skip[i] = mn > 1.0 + tol
                else:
                    skip[i] = False
                D = 0.0
                for t in range(nt):
                    b = c[t] - theta
                    beta[t] = max(b, 0.0)
                    dl = beta[t] - alpha[i, t]
                    D += dl
                    maxd = max(maxd, s * abs(dl))
                if D != 0.0:
                    for j in range(dd):
                        W[yi, j] += D * h[j]
                for t in range(nt):
                    dl = beta[t] - alpha[i, t]
                    if dl != 0.0:
                        k = act_k[i, t]
                        for j in range(dd):
                            W[k, j] -= dl * h[j]
                    alpha[i, t] = beta[t]
            done = sw
            if maxd <= tol:
                if full:
                    break
                full = True  # confirm on all samples
            else:
                full = False
        return done, maxd

    return sweeps


def kernel():
    """The compiled sweep kernel (compiled on first use, cached on disk by numba)."""
    global _KERNEL
    if _KERNEL is None:
        _KERNEL = _build()
    return _KERNEL


# ---------------------------------------------------------------------------------------------------
# backends for the passes over the data (S = (H/s) Wᵀ, chunked, float64)


class NumpyBackend:
    name = "numpy"

    def __init__(self, H, inv_s, bias_val):
        self.H, self.inv_s, self.bias_val = H, inv_s, bias_val
        self.d = H.shape[1]

    def rows(self, s, e):
        """Scaled float64 rows s:e (a chunk-sized copy only)."""
        Hc = np.asarray(self.H[s:e], dtype=np.float64) * self.inv_s
        return Hc

    def scores(self, s, e, W):
        Wt = np.ascontiguousarray(W[:, : self.d].T)  # measured 1.4x faster than the transposed view
        if self.H.dtype == np.float64:  # no chunk copy: (H W_dᵀ)·inv_s
            S = self.H[s:e] @ Wt
            S *= self.inv_s
        else:
            S = self.rows(s, e) @ Wt
        if W.shape[1] > self.d:
            S += self.bias_val * W[:, self.d]
        return S


class TorchBackend(NumpyBackend):
    """Same products with torch (CPU threads, or CUDA when ``device`` is a CUDA device: H is moved to the
    device once, in its own dtype, and each chunk is cast to float64 there). torch is imported here only."""

    name = "torch"

    def __init__(self, H, inv_s, bias_val, device=None):
        import torch

        super().__init__(H, inv_s, bias_val)
        self.torch = torch
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.Ht = torch.from_numpy(np.ascontiguousarray(H))
        if self.device.type != "cpu":
            self.Ht = self.Ht.to(self.device)

    def scores(self, s, e, W):
        t = self.torch
        Wt = t.from_numpy(np.ascontiguousarray(W[:, : self.d])).to(self.device)
        Hc = self.Ht[s:e].to(t.float64) * self.inv_s
        S = Hc @ Wt.T
        if W.shape[1] > self.d:
            S += self.bias_val * t.from_numpy(np.ascontiguousarray(W[:, self.d])).to(self.device)
        return S.cpu().numpy() if self.device.type != "cpu" else S.numpy()


def make_backend(name, H, inv_s, bias_val):
    if name in (None, "numpy"):
        return NumpyBackend(H, inv_s, bias_val)
    if name == "torch" or name.startswith("torch:"):
        dev = name.split(":", 1)[1] if ":" in name else None
        return TorchBackend(H, inv_s, bias_val, device=dev)
    raise ValueError(f"unknown backend {name!r}; use 'numpy', 'torch' or 'torch:cuda'.")
