"""Claim 3: alignment predictors and the class-mean concentration check (docs/theory.md §8).

**[our form of Thm 4.10]** (Gao et al. 2023, Thms 4.8–4.10). For a class with n i.i.d. features
h ∈ R^d with ||h||_∞ ≤ ρ and mean μ, the empirical mean μ̂ satisfies

    P(||μ̂ − μ||_2 ≥ ε) ≤ 2d·exp(−n ε² / (2 d² ρ²)).                       (concentration_bound)

It is valid: Hoeffding per coordinate gives P(|μ̂_j − μ_j| ≥ t) ≤ 2 exp(−n t²/(2ρ²)); ||·||_2 ≥ ε forces
some |μ̂_j − μ_j| ≥ ε/√d, and the union over d coordinates gives 2d·exp(−nε²/(2dρ²)), which is ≤ the form
above (d² ≥ d). The looser d² is kept because it is the stated form of docs/theory.md §8.

Alignment score (smaller = better), with the fixed ETF classifier M (K × d, row m_y = vertex of class y):

    S(H, y, M) = Σ_y Σ_{y'≠y} 2d·exp(−n_y γ_{y,y'}⁺² / (2 d² ρ_y² ||m_y − m_{y'}||²)),

γ_{y,y'} = min_{i: y_i=y} (m_y − m_{y'})·h_i (``pairwise_margins(H, y, M)``), ρ_y = max over class-y rows of
||h||_∞, and n_y the number of class-y samples (for unbalanced classes each class uses its own count;
balanced: n_y = n = N/K). γ⁺ = max(γ, 0) **[our form]**: a pair whose margin is ≤ 0 contributes the
trivial value 2d (the concentration argument needs a positive margin; squaring a negative margin would
wrongly reward it).

Invariances (tested): relabelling (a permutation applied to both labels and ETF rows) leaves all
predictors unchanged. A rotation Q applied to both features and M (H → HQᵀ, M → MQᵀ) leaves every γ and
||m_y − m_{y'}|| unchanged, hence the normalized-margin statistics, but NOT the score, because ρ_y uses
||·||_∞, which is invariant only under signed permutations of the coordinates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .checks import check_features, check_matrix
from .margins import pairwise_margins

__all__ = [
    "alignment_predictors",
    "alignment_score",
    "concentration_bound",
    "concentration_check",
    "deviation_probability",
    "normalized_margin_stats",
]


def concentration_bound(n, eps, d, rho):
    """``2d·exp(−n ε²/(2 d² ρ²))`` ([our form of Thm 4.10], module docstring). Broadcasts over arrays
    of n, eps, rho; returns the raw value (it can exceed 1, where it is trivial; clip for plots)."""
    n = np.asarray(n, dtype=np.float64)
    eps = np.asarray(eps, dtype=np.float64)
    rho = np.asarray(rho, dtype=np.float64)
    d = int(d)
    if d < 1:
        raise ValueError(f"d must be ≥ 1 (feature dimension), got {d}.")
    if np.any(n <= 0) or np.any(eps < 0) or np.any(rho <= 0):
        raise ValueError("concentration_bound needs n > 0, eps ≥ 0 and rho > 0 (rho bounds ||h||_∞).")
    out = 2.0 * d * np.exp(-n * eps ** 2 / (2.0 * d ** 2 * rho ** 2))
    return float(out) if out.ndim == 0 else out


def _prepare(H, y, M):
    H, y, K = check_features(H, y)
    M = check_matrix(M, "ETF classifier M", shape=(K, H.shape[1]))
    return H, y, K, M


def _pair_distances(M: np.ndarray) -> np.ndarray:
    D = np.linalg.norm(M[:, None, :] - M[None, :, :], axis=2)
    off = ~np.eye(M.shape[0], dtype=bool)
    if np.any(D[off] == 0):
        raise ValueError("M has two identical rows (||m_y − m_y'|| = 0); pass a classifier with distinct "
                         "rows, e.g. simplex_etf(K, d).")
    return D


def alignment_score(H, y, M) -> float:
    """Alignment score Σ_y Σ_{y'≠y} 2d·exp(−n_y γ⁺² / (2 d² ρ_y² ||m_y − m_{y'}||²)) (module docstring;
    [our form of Thm 4.10]; smaller = better). Every class needs a sample."""
    H, y, K, M = _prepare(H, y, M)
    d = H.shape[1]
    gamma = pairwise_margins(H, y, M)
    n_y = np.bincount(y, minlength=K).astype(np.float64)
    rho = np.zeros(K)
    np.maximum.at(rho, y, np.abs(H).max(axis=1))
    if np.any(rho == 0):
        raise ValueError("a class has only zero features (ρ_y = 0): the score is undefined; check the "
                         "feature extraction.")
    D = _pair_distances(M)
    off = ~np.eye(K, dtype=bool)
    gp = np.where(off, np.maximum(np.nan_to_num(gamma, nan=0.0), 0.0), 0.0)
    expo = -n_y[:, None] * gp ** 2 / (2.0 * d ** 2 * rho[:, None] ** 2 * np.where(off, D, 1.0) ** 2)
    return float(np.sum(np.where(off, 2.0 * d * np.exp(expo), 0.0)))


def normalized_margin_stats(H, y, M) -> dict[str, float]:
    """Mean and minimum over ordered pairs y ≠ y' of γ_{y,y'}/||m_y − m_{y'}|| (docs/theory.md §8;
    the distance of class y's worst sample to the y/y' boundary of M)."""
    H, y, K, M = _prepare(H, y, M)
    gamma = pairwise_margins(H, y, M)
    D = _pair_distances(M)
    off = ~np.eye(K, dtype=bool)
    r = gamma[off] / D[off]
    return {"mean": float(np.mean(r)), "min": float(np.min(r))}


def alignment_predictors(H, y, M) -> dict[str, float]:
    """All three predictors of docs/theory.md §8 on train features H and the fixed ETF M:
    ``{"alignment_score", "normalized_margin_mean", "normalized_margin_min"}``. Expected signs: higher
    test accuracy with a smaller score and with larger normalized margins."""
    s = normalized_margin_stats(H, y, M)
    return {"alignment_score": alignment_score(H, y, M), "normalized_margin_mean": s["mean"],
            "normalized_margin_min": s["min"]}


def deviation_probability(sample_fn: Callable[[np.random.Generator, int], np.ndarray], mu, n: int, eps,
                          trials: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Monte-Carlo estimate of P(||μ̂ − μ||_2 ≥ ε) for the mean μ̂ of n samples of one class.

    ``sample_fn(rng, n)`` returns an (n, d) array of samples (fresh samples, or features of a network
    applied to fresh inputs); ``mu`` (d,) the true mean; ``eps`` a scalar or 1-D array. Returns
    ``{"eps", "p", "stderr", "trials", "n"}`` with ``p`` the fraction of trials whose deviation is ≥ ε
    and ``stderr = sqrt(p(1−p)/trials)`` (binomial standard error).
    """
    mu = np.asarray(mu, dtype=np.float64).ravel()
    eps_a = np.atleast_1d(np.asarray(eps, dtype=np.float64))
    n, trials = int(n), int(trials)
    if n < 1 or trials < 1:
        raise ValueError(f"n and trials must be ≥ 1, got n={n}, trials={trials}.")
    if np.any(eps_a < 0) or eps_a.ndim != 1:
        raise ValueError("eps must be a scalar or 1-D array of values ≥ 0.")
    rng = np.random.default_rng(seed)
    dev = np.empty(trials)
    for t in range(trials):
        X = np.asarray(sample_fn(rng, n), dtype=np.float64)
        if X.ndim != 2 or X.shape != (n, mu.size):
            raise ValueError(f"sample_fn(rng, {n}) must return an ({n}, {mu.size}) array, got {X.shape}.")
        dev[t] = np.linalg.norm(X.mean(axis=0) - mu)
    p = (dev[None, :] >= eps_a[:, None]).mean(axis=1)
    return {"eps": eps_a, "p": p, "stderr": np.sqrt(p * (1 - p) / trials), "trials": trials, "n": n,
            "deviations": dev}


def concentration_check(sample_fn, mu, ns, epss, *, rho: float, trials: int = 1000,
                        seed: int = 0) -> list[dict[str, Any]]:
    """Empirical P(||μ̂ − μ|| ≥ ε) beside :func:`concentration_bound` on a grid of n and ε.

    ``rho`` must bound ||h||_∞ of the sampled features (the bound's hypothesis). Returns one row per
    (n, ε): ``{"n", "eps", "empirical", "stderr", "bound", "bound_holds"}`` where ``bound_holds`` is
    ``empirical ≤ bound + 3·stderr`` (allowing Monte-Carlo error). Seeds differ per n (seed + index).
    """
    mu = np.asarray(mu, dtype=np.float64).ravel()
    d = mu.size
    rows = []
    for j, n in enumerate(np.atleast_1d(ns)):
        est = deviation_probability(sample_fn, mu, int(n), epss, trials=trials, seed=seed + j)
        bnd = np.atleast_1d(concentration_bound(int(n), est["eps"], d, rho))
        for e, p, se, bb in zip(est["eps"], est["p"], est["stderr"], bnd):
            rows.append({"n": int(n), "eps": float(e), "empirical": float(p), "stderr": float(se),
                         "bound": float(bb), "bound_holds": bool(p <= bb + 3 * se)})
    return rows
