"""Power behind the claim-3 verdict: the alignment effect in an alignments × seeds table (docs/theory.md §13).

``alignment_effect(table, sesoi=...)`` decides between *effect*, *no effect* and *inconclusive* for an
A×S table of test accuracy in percent (rows: alignments, columns: seeds; one run per cell) under the
additive model of a randomized complete block design (docs/theory.md §8, §10)::

    x_as = μ + α_a + β_s + ε_as,   Σ_a α_a = 0,   ε_as ~ N(0, σ²) i.i.d.

**Effect size.** The spread of the alignment effects is their standard deviation with divisor A,
``σ_α = sqrt(Σ_a α_a² / A)`` in accuracy points; Cohen's (1988, §8.2) ``f = σ_α / σ``. The F statistic of
alignments has the noncentral F distribution ``F'(A−1, (A−1)(S−1), λ)`` with ``λ = S Σ_a α_a² / σ² =
A S f²``. The smallest effect of interest ``sesoi`` is a value of σ_α (points).

Library code: the ANOVA is statsmodels ``ols`` + ``anova_lm``; power and minimum detectable effect are
statsmodels ``FTestPowerF2`` (``nc = f² (df_num + df_denom + ncc)``, so ``ncc = S`` gives ``λ = A S f²``,
checked against ``scipy.stats.ncf`` in the tests); the permutation test is ``scipy.stats.permutation_test``
with ``permutation_type="samples"`` (alignment labels permuted within each seed); the equivalence test is
``scipy.stats.ncf.cdf`` (Wellek 2010, §7.2). The own ANOVA/permutation code in ``stats.py`` is kept as a
cross-check in the tests only.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from math import lgamma, log
from typing import Any

import numpy as np
from scipy import stats as _st

from .stats import two_way_sums_of_squares

__all__ = ["AlignmentEffect", "alignment_effect", "design_for", "effect_power", "equivalence_power",
           "omega_squared_table"]


# ---------------------------------------------------------------------------------------------- input

def _check_table(table) -> np.ndarray:
    try:
        T = np.asarray(table, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise ValueError("table must be a rectangular 2-D array (alignments × seeds) of numbers; got a "
                         "ragged or non-numeric input. Give every alignment the same seeds (drop incomplete "
                         "seeds with ncmargin.theory.complete_table).") from exc
    if T.ndim != 2:
        raise ValueError(f"table must be 2-D (alignments × seeds), got shape {T.shape}; one row per "
                         "alignment, one column per seed.")
    A, S = T.shape
    if A < 2:
        raise ValueError(f"table has {A} alignment(s); an alignment effect needs at least 2 rows "
                         "(alignments).")
    if S < 2:
        raise ValueError(f"table has {S} seed(s); the additive model needs at least 2 seeds (columns) to "
                         "estimate the residual variance. Run more seeds.")
    if np.isnan(T).any():
        raise ValueError("table has missing cells (NaN); the additive ANOVA needs a complete table. Drop the "
                         "seeds (or alignments) with failed runs: ncmargin.theory.complete_table(table).")
    if not np.all(np.isfinite(T)):
        raise ValueError("table contains Inf; fix the offending run's accuracy.")
    if T.min() < 0 or T.max() > 100:
        raise ValueError(f"table values must be test accuracies in percent (0..100), got range "
                         f"[{T.min():.4g}, {T.max():.4g}].")
    if T.max() <= 1.0:
        raise ValueError("table values are all <= 1: these look like accuracy fractions, but the table and "
                         "sesoi are in percent (accuracy points). Multiply the table by 100.")
    return T


def _check_levels(alpha: float, power: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}; e.g. 0.05.")
    if not alpha < power < 1:
        raise ValueError(f"power must be in (alpha, 1), got {power}; e.g. 0.8.")


# ---------------------------------------------------------------------------------------------- pieces

def omega_squared_table(table) -> dict[str, float]:
    """ω² of alignments and seeds of an additive two-way table (docs/theory.md §10, §13):
    ``ω²_f = (SS_f − df_f·MS_E) / (SS_T + MS_E)`` (Hays 1963; Olejnik & Algina 2003, Table 1), truncated at
    0. Returns ``{"alignment", "seed"}``."""
    ss = two_way_sums_of_squares(_check_table(table))
    den = ss["ss_t"] + ss["ms_e"]
    out = {}
    for f, k in (("alignment", "a"), ("seed", "s")):
        out[f] = float("nan") if den <= 0 else max(0.0, (ss[f"ss_{k}"] - ss[f"df_{k}"] * ss["ms_e"]) / den)
    return out


def _anova_statsmodels(T: np.ndarray) -> dict[str, float]:
    """F and p of alignments and seeds from statsmodels ``anova_lm`` on ``acc ~ C(alignment) + C(seed)``
    (balanced, so type I = type II = type III sums of squares)."""
    import pandas as pd
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    A, S = T.shape
    df = pd.DataFrame({"acc": T.ravel(), "alignment": np.repeat(np.arange(A), S),
                       "seed": np.tile(np.arange(S), A)})
    tab = anova_lm(ols("acc ~ C(alignment) + C(seed)", data=df).fit(), typ=2)
    return {"F_alignment": float(tab.loc["C(alignment)", "F"]),
            "p_alignment": float(tab.loc["C(alignment)", "PR(>F)"]),
            "F_seed": float(tab.loc["C(seed)", "F"]), "p_seed": float(tab.loc["C(seed)", "PR(>F)"]),
            "ss_residual": float(tab.loc["Residual", "sum_sq"])}


def _ss_alignment_stat(*samples, axis=-1):
    """Vectorized SS_A / S (the between-alignment sum of squares up to the constant S) for
    ``scipy.stats.permutation_test``: ``samples`` are the A alignment rows, observations (seeds) on
    ``axis``. Within-seed permutations keep the grand mean, so Σ_a (x̄_a − mean_a x̄_a)² is equivalent."""
    m = np.stack([np.mean(s, axis=axis) for s in samples], axis=0)
    return np.sum((m - m.mean(axis=0)) ** 2, axis=0)


def _permutation_p(T: np.ndarray, n_perm: int, seed: int) -> tuple[float, str]:
    """Within-seed permutation test of the alignment effect via ``scipy.stats.permutation_test``.
    ``permutation_type="samples"`` permutes, for every index along the observation axis (a seed), which
    sample (alignment) each value belongs to: exactly the restricted permutation of a block design. Exact
    enumeration when (A!)^S <= n_perm (scipy decides), else ``n_perm`` random permutations with the +1
    correction (Phipson & Smyth 2010)."""
    res = _st.permutation_test(tuple(T), _ss_alignment_stat, permutation_type="samples", vectorized=True,
                               n_resamples=int(n_perm), alternative="greater",
                               rng=np.random.default_rng(seed))
    A, S = T.shape
    # scipy enumerates all (A!)^S within-seed permutations when there are at most n_resamples of them
    exact = S * lgamma(A + 1) <= log(int(n_perm)) + 1e-9
    method = ("exact (all (A!)^S within-seed permutations)" if exact
              else f"{int(n_perm)} random within-seed permutations")
    return float(res.pvalue), method


def effect_power(f, A: int, S: int, alpha: float = 0.05) -> float:
    """Power of the alignment F test (additive A×S design) at Cohen's ``f = σ_α/σ``: statsmodels
    ``FTestPowerF2().power(f², df_num=A−1, df_denom=(A−1)(S−1), alpha, ncc=S)``, i.e. noncentrality
    ``λ = f² (A−1 + (A−1)(S−1) + S) = A S f²`` (docs/theory.md §13)."""
    from statsmodels.stats.power import FTestPowerF2

    A, S = int(A), int(S)
    if A < 2 or S < 2:
        raise ValueError(f"the design needs A >= 2 alignments and S >= 2 seeds, got A={A}, S={S}.")
    return float(FTestPowerF2().power(effect_size=float(f) ** 2, df_num=A - 1, df_denom=(A - 1) * (S - 1),
                                      alpha=alpha, ncc=S))


def _mde_f(A: int, S: int, alpha: float, power: float) -> float:
    """Cohen's f detectable with ``power`` at ``alpha``: statsmodels ``FTestPowerF2().solve_power`` for f²."""
    from statsmodels.stats.power import FTestPowerF2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f2 = FTestPowerF2().solve_power(effect_size=None, df_num=A - 1, df_denom=(A - 1) * (S - 1),
                                        alpha=alpha, power=power, ncc=S)
    f2 = float(np.asarray(f2).ravel()[0])
    if not np.isfinite(f2) or f2 <= 0 or abs(effect_power(np.sqrt(f2), A, S, alpha) - power) > 1e-4:
        # statsmodels' root finder failed (it reports by warning); the power is increasing in f, so a
        # bracketed root on the same statsmodels power function is the fallback
        from scipy.optimize import brentq
        f2 = brentq(lambda x: effect_power(np.sqrt(x), A, S, alpha) - power, 1e-12, 1e4, xtol=1e-14)
    return float(np.sqrt(f2))


def equivalence_power(f0, A: int, S: int, alpha: float = 0.05) -> float:
    """Probability that the equivalence test (H0: f ≥ f0) rejects when there is no effect at all (f = 0),
    with σ known: ``P(F ≤ c)``, ``c = ncf.ppf(alpha, A−1, (A−1)(S−1), A S f0²)``, F central."""
    df1, df2 = A - 1, (A - 1) * (S - 1)
    c = _st.ncf.ppf(alpha, df1, df2, A * S * float(f0) ** 2)
    return float(_st.f.cdf(c, df1, df2))


def design_for(sesoi: float, sigma: float, A: int, power: float = 0.8, alpha: float = 0.05, *,
               target: str = "detect", max_seeds: int = 10_000) -> dict[str, Any]:
    """Smallest number of seeds S (>= 2) for an A-alignment sweep so that an alignment effect of spread
    ``sesoi`` (σ_α, accuracy points) is detected with probability >= ``power`` by the F test at ``alpha``,
    given the residual SD ``sigma`` (points; e.g. sqrt(MS_E) of a pilot sweep). ``target="both"`` also asks
    that a null table shows equivalence (``equivalence_p < alpha``, the *no effect* verdict) with that
    probability. Returns ``{"seeds", "runs", "power", "equivalence_power", "f", "lambda", ...}``."""
    if not (np.isfinite(sesoi) and sesoi > 0):
        raise ValueError(f"sesoi must be > 0 (accuracy points), got {sesoi}.")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be > 0 (residual SD in accuracy points), got {sigma}.")
    if int(A) < 2:
        raise ValueError(f"A must be >= 2 alignments, got {A}.")
    if target not in ("detect", "both"):
        raise ValueError(f"target must be 'detect' or 'both', got {target!r}.")
    _check_levels(alpha, power)
    A = int(A)
    f = float(sesoi) / float(sigma)
    for S in range(2, int(max_seeds) + 1):
        pw = effect_power(f, A, S, alpha)
        ep = equivalence_power(f, A, S, alpha)
        if pw >= power and (target == "detect" or ep >= power):
            return {"seeds": S, "alignments": A, "runs": A * S, "power": pw, "equivalence_power": ep, "f": f,
                    "lambda": A * S * f * f, "sesoi": float(sesoi), "sigma": float(sigma), "alpha": alpha,
                    "target_power": power, "target": target}
    raise ValueError(f"no design with <= {max_seeds} seeds reaches power {power} for f = {f:.3g}; raise "
                     "sesoi or lower the residual SD.")


# ---------------------------------------------------------------------------------------------- result

@dataclass(frozen=True)
class AlignmentEffect:
    """Result of :func:`alignment_effect` (all spreads in accuracy points; docs/theory.md §13)."""

    verdict: str                 # "effect" | "no_effect" | "inconclusive"
    reason: str
    design: tuple                # (A, S)
    alpha: float
    power: float                 # the target power of the MDE
    sesoi: float                 # smallest effect of interest, σ_α in points
    p_anova: float               # statsmodels anova_lm, alignment
    p_anova_seed: float
    F_alignment: float
    df: tuple                    # (A−1, (A−1)(S−1))
    p_permutation: float         # scipy permutation_test, within-seed
    permutation_method: str
    omega2_alignment: float
    omega2_seed: float
    sigma: float                 # residual SD sqrt(MS_E)
    effect_sd: float             # unbiased estimate of σ_α (truncated at 0)
    alignment_means: tuple
    range_of_means: float        # max − min of the alignment means (observed)
    mde: float                   # σ_α detectable with `power` at `alpha`
    mde_f: float                 # the same as Cohen's f
    mde_omega2: float            # the same as partial ω² = f²/(1+f²)
    mde_range_two: float         # max−min range at the MDE if only two alignments differ (±r/2): sqrt(2A)·mde
    mde_range_half: float        # max−min range at the MDE, half the alignments at +r/2, half at −r/2: 2·mde
    equivalence_p: float         # H0: σ_α >= sesoi; ncf.cdf(F, df1, df2, A S sesoi²/σ̂²)
    equivalence_lambda: float
    power_at_sesoi: float        # power of the F test for σ_α = sesoi (plug-in σ̂)
    n_perm: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["design"] = list(self.design)
        d["df"] = list(self.df)
        d["alignment_means"] = list(self.alignment_means)
        return d


def alignment_effect(table, *, sesoi: float, alpha: float = 0.05, power: float = 0.8, n_perm: int = 9999,
                     seed: int = 0) -> AlignmentEffect:
    """Claim-3 verdict with the power behind it (docs/theory.md §13).

    ``table``: A×S test accuracy in percent (alignments × seeds, complete). ``sesoi``: smallest effect of
    interest as the SD σ_α of the alignment effects, in accuracy points (e.g. 0.5).

    - **effect**: ANOVA p < alpha and permutation p < alpha and ω²_alignment > ω²_seed;
    - **no_effect**: otherwise, if the equivalence test rejects σ_α ≥ sesoi (equivalence_p < alpha);
    - **inconclusive**: otherwise; the reason names the MDE (σ_α and max−min range) the design could detect.
    """
    T = _check_table(table)
    if not (np.isfinite(sesoi) and sesoi > 0):
        raise ValueError(f"sesoi must be > 0 accuracy points (the smallest alignment-effect SD of interest), "
                         f"got {sesoi}.")
    _check_levels(alpha, power)
    if int(n_perm) < 1:
        raise ValueError(f"n_perm must be >= 1, got {n_perm}; e.g. 9999.")
    A, S = T.shape
    ss = two_way_sums_of_squares(T)
    df1, df2 = ss["df_a"], ss["df_e"]
    om = omega_squared_table(T)
    means = T.mean(axis=1)
    degenerate = ss["ms_e"] <= 1e-12 * max(ss["ss_t"], 1e-300) or ss["ss_t"] == 0
    if degenerate:
        # an exactly additive (or constant) table: no residual variance, so neither F nor power is defined
        nan = float("nan")
        F = p_an = p_seed = sigma = mde_f = mde = eq_p = lam0 = pw = nan
        p_perm, method = (_permutation_p(T, n_perm, seed) if ss["ss_t"] > 0
                          else (nan, "not run (constant table)"))
    else:
        an = _anova_statsmodels(T)
        F, p_an, p_seed = an["F_alignment"], an["p_alignment"], an["p_seed"]
        p_perm, method = _permutation_p(T, n_perm, seed)
        sigma = float(np.sqrt(ss["ms_e"]))
        mde_f = _mde_f(A, S, alpha, power)
        mde = mde_f * sigma
        lam0 = A * S * (sesoi / sigma) ** 2
        eq_p = float(_st.ncf.cdf(F, df1, df2, lam0))
        pw = effect_power(sesoi / sigma, A, S, alpha)
    effect_sd = float(np.sqrt(max(0.0, (ss["ms_a"] - ss["ms_e"]) * (A - 1) / (A * S))))
    mde_omega2 = mde_f ** 2 / (1 + mde_f ** 2) if np.isfinite(mde_f) else float("nan")

    sig = p_an < alpha and p_perm < alpha
    if degenerate:
        verdict = "inconclusive"
        reason = ("the residual variance is 0 (the table is exactly additive or constant), so neither the F "
                  "test nor its power is defined; run more seeds")
    elif sig and om["alignment"] > om["seed"]:
        verdict = "effect"
        reason = (f"alignment effect: ANOVA p = {p_an:.3g}, permutation p = {p_perm:.3g} (< {alpha}), "
                  f"ω²_alignment = {om['alignment']:.3f} > ω²_seed = {om['seed']:.3f}; estimated σ_α = "
                  f"{effect_sd:.3g} points")
        if eq_p < alpha:
            reason += f" (smaller than the SESOI {sesoi:g}: equivalence p = {eq_p:.3g})"
    elif eq_p < alpha:
        verdict = "no_effect"
        reason = (f"equivalence shown: σ_α < SESOI = {sesoi:g} points (equivalence p = {eq_p:.3g} < "
                  f"{alpha}); "
                  f"ANOVA p = {p_an:.3g}, permutation p = {p_perm:.3g}")
    else:
        verdict = "inconclusive"
        why = []
        if sig:
            why.append(f"alignment is significant (ANOVA p = {p_an:.3g}, permutation p = {p_perm:.3g}) but "
                       f"ω²_alignment = {om['alignment']:.3f} <= ω²_seed = {om['seed']:.3f}")
        elif (p_an < alpha) != (p_perm < alpha):
            why.append(f"the tests disagree (ANOVA p = {p_an:.3g}, permutation p = {p_perm:.3g})")
        else:
            why.append(f"no significant effect (ANOVA p = {p_an:.3g}, permutation p = {p_perm:.3g})")
        why.append(f"underpowered (MDE = {mde:.3g} points SD of alignment effects, i.e. a max-min range of "
                   f"{2 * mde:.3g}-{np.sqrt(2 * A) * mde:.3g} points, ω² = {mde_omega2:.3f}, at power "
                   f"{power}; "
                   f"power for the SESOI {sesoi:g} = {pw:.2f}; equivalence p = {eq_p:.3g} >= {alpha})")
        reason = "; ".join(why)
    return AlignmentEffect(
        verdict=verdict, reason=reason, design=(A, S), alpha=float(alpha), power=float(power),
        sesoi=float(sesoi),
        p_anova=float(p_an), p_anova_seed=float(p_seed), F_alignment=float(F), df=(df1, df2),
        p_permutation=float(p_perm), permutation_method=method, omega2_alignment=float(om["alignment"]),
        omega2_seed=float(om["seed"]), sigma=float(sigma), effect_sd=effect_sd,
        alignment_means=tuple(float(m) for m in means), range_of_means=float(np.ptp(means)), mde=float(mde),
        mde_f=float(mde_f), mde_omega2=float(mde_omega2), mde_range_two=float(np.sqrt(2 * A) * mde),
        mde_range_half=float(2 * mde), equivalence_p=float(eq_p), equivalence_lambda=float(lam0),
        power_at_sesoi=float(pw), n_perm=int(n_perm))
