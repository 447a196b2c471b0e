"""The multi-class margin bound of claim 2 (docs/theory.md §5) and its complexity terms.

**[our form]** of the paper's Theorem 4.4 / Corollary 4.5: Mohri, Rostamizadeh & Talwalkar,
*Foundations of Machine Learning* (2nd ed., 2018), Thm 9.2 (multi-class margin bound, factor 4K/γ),
made uniform over the margin γ ∈ (0, Γ] by the union-over-a-geometric-grid argument of their Thm 5.9.
With probability ≥ 1 − δ over the N training samples, for every γ ∈ (0, Γ]:

    R(f) ≤ (1/N)·#{i : p_i ≤ γ}  +  (4K/γ)·R_N(Π1(F))  +  sqrt(log(log2(2Γ/γ))/N)  +  sqrt(log(2/δ)/(2N)).
           empirical_margin_loss   complexity             uniform_gamma               confidence

The empirical term uses the indicator 1[p_i ≤ γ], an upper bound of Mohri's ρ-margin loss Φ_ρ.

Constant caveat: Mohri's binary Thm 5.8 has 2/ρ and its uniform version Thm 5.9 has 4/ρ (the geometric grid
ρ_k = Γ/2^k costs a factor 2). Applying the same argument to the multi-class Thm 9.2 (4K/ρ) gives 8K/γ;
the project spec (docs/theory.md §5) fixes 4K/γ. ``factor`` (default 4, that form) selects the constant; ``factor=8`` is the
form that follows from the union-bound argument without loss. Trends (claim 2) do not depend on it.
For γ ∈ (0, Γ], log2(2Γ/γ) ≥ 1, so the inner log is ≥ 0 and the uniform term is real (0 at γ = Γ);
γ ≤ 0 or γ > Γ is outside the theorem and raises. Γ must bound the margins of the class, e.g.
``margin_range(H, W) = 2·r·Λ`` ≥ |(w_y − w_k)·h| for all samples (then the empirical loss at Γ is 1 and no
larger γ can help).

Caveat (stated in docs/theory.md): the bound holds for a class F fixed before seeing the data; plugging in
r, Λ or the spectral norms of the *trained* network is the usual data-dependent use, not a theorem
(a further union bound over norm scales would add log-log terms). What claim 2 verifies is the trend.

Rademacher terms:
- ``rademacher_last_layer(H, W)``: Mohri et al. 2018, Thm 9.3 / Cor. 9.4 (kernel-based multi-class
  hypotheses, linear kernel): R_N(Π1(H_{K,p})) ≤ sqrt(r²Λ²/N) with K(x,x) ≤ r² and the group norm
  ||W||_{H,p} ≤ Λ for any p ≥ 1; we use the p → ∞ limit Λ = max_k ||w_k|| (the proof only uses
  ||w_y|| ≤ Λ for each y; the class {max_k ||w_k|| ≤ Λ} is the closure of the increasing union of the
  p-balls, with the same Rademacher complexity). r = max_i ||h_i||.
- ``spectral_complexity``: Bartlett, Foster & Telgarsky 2017 ("Spectrally-normalized margin bounds for
  neural networks"), Thm 1.1, with reference matrices M_i = 0:
  R_A = (Π_i ρ_i ||A_i||_σ) · (Σ_i (||A_iᵀ||_{2,1} / ||A_i||_σ)^{2/3})^{3/2}, and their bound's complexity
  term ||X||_F·R_A/(γN) times log factors (ln(N), ln(W)); we return ``rademacher = ||X||_F·R_A/N``
  without the log factors and constants, and plug it into the margin bound above as R_N — **[our form]**.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .checks import check_matrix

__all__ = [
    "best_gamma_bound",
    "bound_report",
    "default_gamma_grid",
    "last_layer_bound",
    "margin_bound",
    "margin_range",
    "normalized_margins",
    "rademacher_last_layer",
    "spectral_complexity",
    "spectral_product",
]


def _margins(margins) -> np.ndarray:
    p = np.asarray(margins, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"margins must be a non-empty 1-D array (one per training sample), got shape {p.shape}; "
                         "use ncmargin.theory.margins(H, y, W, b).")
    if np.isnan(p).any():
        raise ValueError("margins contain NaN; recompute them from finite features and classifier.")
    return p


def _positive(x, name: str) -> float:
    x = float(x)
    if not np.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {x}.")
    return x


def margin_bound(margins, gamma, *, K: int, rademacher: float, Gamma: float,
                 delta: float = 0.05, factor: float = 4.0) -> dict[str, Any]:
    """Evaluate the uniform-in-γ multi-class margin bound (module docstring; [our form] of Mohri et al.
    2018 Thm 9.2 + Thm 5.9) at one margin γ.

    Parameters: ``margins`` the N training margins p_i; ``gamma`` in (0, Gamma]; ``K`` classes;
    ``rademacher`` an upper bound of R_N(Π1(F)) (e.g. :func:`rademacher_last_layer` or
    ``spectral_complexity(...)["rademacher"]``); ``Gamma`` the upper end of the γ range (fixed in
    advance, e.g. :func:`margin_range`); ``delta`` the failure probability; ``factor`` the constant
    in ``factor·K/γ·R_N`` (4: the form of docs/theory.md §5; 8: the rigorous uniform constant, module docstring).

    Returns a dict with ``empirical_margin_loss``, ``complexity``, ``uniform_gamma``, ``confidence``,
    ``total`` (their sum), ``vacuous`` (total > 1: the bound says nothing about a 0-1 risk), ``gamma``,
    ``Gamma``, ``N``, ``K``, ``delta``, ``rademacher``.
    """
    p = _margins(margins)
    N = p.size
    gamma = float(gamma)
    Gamma = _positive(Gamma, "Gamma")
    rademacher = float(rademacher)
    if not np.isfinite(rademacher) or rademacher < 0:
        raise ValueError(f"rademacher must be a finite number ≥ 0, got {rademacher}.")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}; e.g. 0.05.")
    if int(K) < 2:
        raise ValueError(f"K must be ≥ 2 classes, got {K}.")
    factor = _positive(factor, "factor")
    if not np.isfinite(gamma) or gamma <= 0:
        raise ValueError(f"gamma must be > 0 (the bound holds for γ in (0, Γ]), got {gamma}; with "
                         "p_min ≤ 0 (not 100% train accuracy) use best_gamma_bound on a positive grid.")
    if gamma > Gamma * (1 + 1e-12):
        raise ValueError(f"gamma={gamma} exceeds Gamma={Gamma}: the uniform bound covers γ in (0, Γ] only "
                         "(log(log2(2Γ/γ)) < 0 beyond); raise Gamma (e.g. margin_range(H, W)) or lower γ.")
    gamma = min(gamma, Gamma)
    emp = float(np.count_nonzero(p <= gamma)) / N
    comp = factor * int(K) / gamma * rademacher
    unif = float(np.sqrt(max(np.log(np.log2(2.0 * Gamma / gamma)), 0.0) / N))
    conf = float(np.sqrt(np.log(2.0 / delta) / (2.0 * N)))
    total = emp + comp + unif + conf
    return {"empirical_margin_loss": emp, "complexity": comp, "uniform_gamma": unif, "confidence": conf,
            "total": total, "vacuous": bool(total > 1.0), "gamma": gamma, "Gamma": Gamma, "N": N,
            "K": int(K), "delta": float(delta), "rademacher": rademacher, "factor": factor}


def default_gamma_grid(Gamma: float, n: int = 200, low: float = 1e-4) -> np.ndarray:
    """``n`` log-spaced margins from ``low·Γ`` to Γ (the default grid of :func:`best_gamma_bound`)."""
    Gamma = _positive(Gamma, "Gamma")
    if not 0 < low < 1 or int(n) < 2:
        raise ValueError(f"need 0 < low < 1 and n ≥ 2, got low={low}, n={n}.")
    return np.geomspace(low * Gamma, Gamma, int(n))


def best_gamma_bound(margins, gammas=None, *, K: int, rademacher: float, Gamma: float,
                     delta: float = 0.05, include_pmin: bool = True, factor: float = 4.0) -> dict[str, Any]:
    """Minimize the uniform margin bound over a grid of γ (legitimate because the bound holds for all
    γ ∈ (0, Γ] simultaneously).

    ``gammas`` defaults to :func:`default_gamma_grid` (200 log-spaced points in [1e-4·Γ, Γ]); values
    outside (0, Γ] are dropped. With ``include_pmin`` the sample's p_min is added to the grid when it lies
    in (0, Γ], so the result is never worse than the bound at γ = p_min. Returns the terms at the
    minimizing γ (as :func:`margin_bound`) plus ``grid`` and ``grid_total`` (the bound at every grid γ).
    """
    p = _margins(margins)
    Gamma = _positive(Gamma, "Gamma")
    g = default_gamma_grid(Gamma) if gammas is None else np.asarray(gammas, dtype=np.float64).ravel()
    pm = float(p.min())
    if include_pmin and 0 < pm <= Gamma:
        g = np.append(g, pm)
    g = np.unique(g[np.isfinite(g) & (g > 0) & (g <= Gamma)])
    if g.size == 0:
        raise ValueError(f"no γ of the grid lies in (0, Γ={Gamma}]; pass positive margins ≤ Gamma.")
    # vectorized evaluation of all terms (same formulas as margin_bound)
    ps = np.sort(p)
    N = p.size
    emp = np.searchsorted(ps, g, side="right") / N
    comp = float(factor) * int(K) / g * float(rademacher)
    unif = np.sqrt(np.maximum(np.log(np.log2(2.0 * Gamma / g)), 0.0) / N)
    total = emp + comp + unif
    best = float(g[int(np.argmin(total))])
    out = margin_bound(p, best, K=K, rademacher=rademacher, Gamma=Gamma, delta=delta, factor=factor)
    conf = out["confidence"]
    out["grid"] = g
    out["grid_total"] = total + conf
    return out


def margin_range(H, W) -> float:
    """``Γ = 2·r·Λ`` with r = max_i ||h_i||, Λ = max_k ||w_k||: |(w_y − w_k)·h_i| ≤ 2rΛ bounds every
    margin of the class, so the bound need not look at γ > Γ ([our form] choice of Γ). With a bias pass
    the augmented ``[H | 1]`` and ``[W | b]``."""
    H = check_matrix(H, "features H")
    W = check_matrix(W, "classifier W", shape=(None, H.shape[1]))
    return float(2.0 * np.linalg.norm(H, axis=1).max() * np.linalg.norm(W, axis=1).max())


def rademacher_last_layer(H, W) -> float:
    """``R_N ≤ r·Λ/sqrt(N)`` with r = max_i ||h_i||, Λ = max_k ||w_k|| (Mohri et al. 2018, Thm 9.3 /
    Cor. 9.4, linear kernel, group norm p → ∞; see module docstring). ``H`` is N × d, ``W`` K × d; with a
    bias pass the augmented ``[H | 1]`` and ``[W | b]``."""
    H = check_matrix(H, "features H")
    W = check_matrix(W, "classifier W", shape=(None, H.shape[1]))
    r = float(np.linalg.norm(H, axis=1).max())
    lam = float(np.linalg.norm(W, axis=1).max())
    return r * lam / float(np.sqrt(H.shape[0]))


def _norm_vector(x, name: str) -> np.ndarray:
    a = np.atleast_1d(np.asarray(x, dtype=np.float64))
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence (one per layer), got shape {a.shape}.")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"{name} must be finite and ≥ 0, got {a}.")
    return a


def spectral_product(spectral_norms: Sequence[float], lipschitz=1.0) -> float:
    """``Π_i ρ_i ||A_i||_σ`` (the Lipschitz constant of a chain network; Bartlett et al. 2017)."""
    s = _norm_vector(spectral_norms, "spectral_norms")
    rho = np.broadcast_to(_norm_vector(lipschitz, "lipschitz"), s.shape)
    return float(np.prod(rho * s))


def spectral_complexity(spectral_norms: Sequence[float], l21_norms: Sequence[float], input_norm_F: float,
                        N: int, lipschitz=1.0) -> dict[str, Any]:
    """Spectral complexity of Bartlett, Foster & Telgarsky 2017, Thm 1.1, with reference matrices 0:

        R_A = (Π_i ρ_i ||A_i||_σ) · (Σ_i (||A_iᵀ||_{2,1} / ||A_i||_σ)^{2/3})^{3/2},
        rademacher = ||X||_F · R_A / N.

    ``spectral_norms[i]`` = ||A_i||_σ, ``l21_norms[i]`` = ||A_iᵀ||_{2,1} (sum over output units of the
    2-norm of their incoming weights), ``input_norm_F`` = ||X||_F = sqrt(Σ_i ||x_i||²) over the N training
    inputs, ``lipschitz`` the ρ_i of the activations (scalar or per layer; 1 for ReLU).
    Their Thm 1.1 bounds the risk by R̂_γ + Õ(||X||_F R_A/(γN)·ln(W) + sqrt(ln(1/δ)/N)); ``rademacher``
    drops the log factors and constants and is plugged into :func:`margin_bound` as R_N — **[our form]**
    (the resulting numbers are a trend proxy, not a certified bound). Layers with a zero spectral norm
    make the network constant: R_A = 0.
    Returns ``{"R_A", "spectral_product", "sum_term", "rademacher", "N", "input_norm_F", "n_layers"}``.
    """
    s = _norm_vector(spectral_norms, "spectral_norms")
    l21 = _norm_vector(l21_norms, "l21_norms")
    if s.shape != l21.shape:
        raise ValueError(f"spectral_norms and l21_norms need one entry per layer, got {s.size} and {l21.size}.")
    N = int(N)
    if N < 1:
        raise ValueError(f"N must be ≥ 1 (number of training samples), got {N}.")
    xF = float(input_norm_F)
    if not np.isfinite(xF) or xF < 0:
        raise ValueError(f"input_norm_F must be finite and ≥ 0, got {xF}.")
    prod = spectral_product(s, lipschitz)
    if prod == 0:
        sum_term = float("nan")
        RA = 0.0
    else:
        sum_term = float(np.sum((l21 / s) ** (2.0 / 3.0)) ** 1.5)
        RA = prod * sum_term
    return {"R_A": float(RA), "spectral_product": prod, "sum_term": sum_term,
            "rademacher": float(xF * RA / N), "N": N, "input_norm_F": xF, "n_layers": int(s.size)}


def normalized_margins(margins, scale: float) -> np.ndarray:
    """Margins divided by a network scale, for the "does the trend survive normalization" check
    (the known critique of margin-growth arguments; Bartlett et al. 2017, §1, normalize by R_A).

    Typical scales: the spectral product Π ρ_i||A_i||_σ (Lipschitz constant of the network), R_A itself,
    or r·Λ for the last layer. Note the bound is invariant when margins, γ, Γ and the Rademacher term are
    all divided by the same scale; what changes is that a γ = p_min growing only because the weights grow
    is no longer credited. The normalized trend is read from e.g. ``kendall_trend`` of
    ``normalized_margins(...).min()`` against epoch.
    """
    s = _positive(scale, "scale")
    return _margins(margins) / s


def bound_report(margins, *, K: int, rademacher: float, Gamma: float, delta: float = 0.05, gammas=None,
                 factor: float = 4.0) -> dict[str, Any]:
    """The bound at γ = p_min and at the best γ of a grid (docs/theory.md §5 asks for both at every checkpoint).

    Returns ``{"p_min", "at_pmin", "best"}``: ``at_pmin`` is :func:`margin_bound` at γ = p_min, or None when
    p_min ∉ (0, Γ] (not 100% train accuracy: the γ = p_min reading does not exist; ``at_pmin_reason`` says
    why); ``best`` is :func:`best_gamma_bound` without its grid arrays.
    """
    p = _margins(margins)
    pm = float(p.min())
    kw = {"K": K, "rademacher": rademacher, "Gamma": Gamma, "delta": delta, "factor": factor}
    out: dict[str, Any] = {"p_min": pm, "at_pmin": None, "at_pmin_reason": None}
    if pm <= 0:
        out["at_pmin_reason"] = "p_min ≤ 0: not all training samples are classified correctly"
    elif pm > float(Gamma):
        out["at_pmin_reason"] = "p_min > Gamma: choose a larger Gamma"
    else:
        out["at_pmin"] = margin_bound(p, pm, **kw)
    best = best_gamma_bound(p, gammas, **kw)
    best.pop("grid")
    best.pop("grid_total")
    out["best"] = best
    return out


def last_layer_bound(H, y, W, b=None, *, delta: float = 0.05, gammas=None,
                     factor: float = 4.0) -> dict[str, Any]:
    """The bound of docs/theory.md §5 with the last-layer Rademacher term on fixed features, at γ = p_min and at
    the best γ: margins from ``ncmargin.theory.margins``, R_N = r·Λ/sqrt(N) (:func:`rademacher_last_layer`),
    Γ = 2rΛ (:func:`margin_range`); with a bias, r and Λ are those of ``[H | 1]`` and ``[W | b]``.

    Returns :func:`bound_report`'s dict plus ``rademacher``, ``Gamma``, ``r``, ``Lambda`` and
    ``normalized_p_min = p_min/(r·Λ)`` (the scale-free margin the bound's trend follows: at γ = p_min the
    complexity term is factor·K/(sqrt(N)·normalized_p_min)).
    """
    from .checks import check_classifier, check_features
    from .margins import margins as _sample_margins

    H, y, K = check_features(H, y)
    W, b = check_classifier(W, b, K, H.shape[1])
    p = _sample_margins(H, y, W, b)
    Ha = H if b is None else np.column_stack([H, np.ones(H.shape[0])])
    Wa = W if b is None else np.column_stack([W, b])
    r = float(np.linalg.norm(Ha, axis=1).max())
    lam = float(np.linalg.norm(Wa, axis=1).max())
    if r == 0 or lam == 0:
        raise ValueError("last_layer_bound: all features or all classifier rows are zero; the margins are 0 "
                         "and the bound is undefined. Pass trained features and classifier.")
    rad = rademacher_last_layer(Ha, Wa)
    Gamma = margin_range(Ha, Wa)
    out = bound_report(p, K=K, rademacher=rad, Gamma=Gamma, delta=delta, gammas=gammas, factor=factor)
    out.update({"rademacher": rad, "Gamma": Gamma, "r": r, "Lambda": lam,
                "normalized_p_min": out["p_min"] / (r * lam)})
    return out
