"""Tests of ncmargin.theory.power (docs/theory.md §13): verdicts on constructed tables, the MDE against a
Monte-Carlo simulation of the same design, statsmodels power against scipy.stats.ncf, ω² by hand, the
equivalence test's level, and input errors."""

import numpy as np
import pytest
from scipy import stats

from ncmargin.theory import (
    alignment_effect,
    design_for,
    effect_power,
    equivalence_power,
    omega_squared_table,
    permutation_test_alignment,
    two_way_anova,
)
from ncmargin.theory.power import _mde_f


def _table(A, S, effects_sd, sigma, seed, seed_sd=0.3, base=90.0):
    """A×S table: alignment effects equally spaced with SD (divisor A) = effects_sd, seed blocks, noise."""
    rng = np.random.default_rng(seed)
    eff = np.linspace(-1.0, 1.0, A)
    eff = eff / np.sqrt(np.mean(eff ** 2)) * effects_sd if effects_sd > 0 else np.zeros(A)
    blocks = seed_sd * rng.standard_normal(S)[None, :]
    return base + eff[:, None] + blocks + sigma * rng.standard_normal((A, S))


def _sim_f_pvalues(A, S, effects_sd, sigma, n, rng):
    """Vectorized F-test p-values of n simulated tables (own sums of squares, a cross-check)."""
    eff = np.linspace(-1.0, 1.0, A)
    eff = eff / np.sqrt(np.mean(eff ** 2)) * effects_sd
    T = eff[None, :, None] + 0.5 * rng.standard_normal((n, 1, S)) + sigma * rng.standard_normal((n, A, S))
    g = T.mean(axis=(1, 2))
    ss_a = S * np.sum((T.mean(axis=2) - g[:, None]) ** 2, axis=1)
    ss_s = A * np.sum((T.mean(axis=1) - g[:, None]) ** 2, axis=1)
    ss_t = np.sum((T - g[:, None, None]) ** 2, axis=(1, 2))
    df1, df2 = A - 1, (A - 1) * (S - 1)
    mse = (ss_t - ss_a - ss_s) / df2
    F = (ss_a / df1) / mse
    return stats.f.sf(F, df1, df2), F, mse


# ------------------------------------------------------------------------------------------ verdicts

def test_true_one_point_effect_small_noise_is_effect():
    T = _table(8, 5, effects_sd=1.0, sigma=0.2, seed=1)
    r = alignment_effect(T, sesoi=0.5, n_perm=999)
    assert r.verdict == "effect", r.reason
    assert r.p_anova < 1e-6 and r.p_permutation < 0.01
    assert r.omega2_alignment > r.omega2_seed
    assert r.effect_sd == pytest.approx(1.0, rel=0.15)
    assert r.design == (8, 5) and r.df == (7, 28)


def test_no_effect_many_seeds_is_no_effect():
    T = _table(6, 40, effects_sd=0.0, sigma=0.5, seed=2)
    r = alignment_effect(T, sesoi=0.5, n_perm=999)
    assert r.verdict == "no_effect", r.reason
    assert r.equivalence_p < 0.05
    assert r.mde < 0.5 and r.power_at_sesoi > 0.99


def test_no_effect_three_seeds_is_inconclusive_with_mde():
    T = _table(8, 3, effects_sd=0.0, sigma=0.6, seed=3)
    r = alignment_effect(T, sesoi=0.5, n_perm=999)
    assert r.verdict == "inconclusive", r.reason
    assert "underpowered" in r.reason and f"{r.mde:.3g}" in r.reason
    assert r.equivalence_p >= 0.05
    assert r.mde > 0.5 * r.sigma  # an effect smaller than half the residual SD is out of reach with 3 seeds
    d = r.to_dict()
    for k in ("verdict", "mde", "p_anova", "p_permutation", "omega2_alignment", "omega2_seed",
              "equivalence_p"):
        assert k in d


def test_significant_but_seed_dominates_is_inconclusive():
    rng = np.random.default_rng(4)
    A, S = 6, 8
    T = 90 + 0.6 * np.linspace(-1, 1, A)[:, None] + 5.0 * rng.standard_normal(S)[None, :] \
        + 0.1 * rng.standard_normal((A, S))
    r = alignment_effect(T, sesoi=0.5, n_perm=999)
    assert r.p_anova < 0.05 and r.p_permutation < 0.05
    assert r.omega2_alignment <= r.omega2_seed
    # significant effect but seed explains more: not "effect"; the equivalence test may or may not hold
    assert r.verdict in ("inconclusive", "no_effect")
    if r.verdict == "inconclusive":
        assert "ω²_alignment" in r.reason


# ------------------------------------------------------------------------------------------ library vs own

def test_anova_and_permutation_match_own_versions():
    T = _table(5, 4, effects_sd=0.4, sigma=0.5, seed=5)
    r = alignment_effect(T, sesoi=0.5, n_perm=4999, seed=1)
    own = two_way_anova(T)
    assert r.p_anova == pytest.approx(own["alignment"]["p_value"], rel=1e-9)
    assert r.F_alignment == pytest.approx(own["alignment"]["F"], rel=1e-9)
    assert r.p_anova_seed == pytest.approx(own["seed"]["p_value"], rel=1e-9)
    p_own = permutation_test_alignment(T, n_perm=20000, seed=2)["p_value"]
    se = np.sqrt(p_own * (1 - p_own) / 4999) + np.sqrt(p_own * (1 - p_own) / 20000)
    assert abs(r.p_permutation - p_own) < 4 * se + 1e-3


def test_permutation_exact_small_table():
    # 2 alignments × 3 seeds: (2!)^3 = 8 within-seed permutations; scipy enumerates them all
    T = np.array([[80.0, 81.0, 82.5], [80.4, 81.9, 83.1]])
    r = alignment_effect(T, sesoi=0.5, n_perm=9999)
    assert r.permutation_method.startswith("exact")
    # the observed assignment and its mirror give the largest SS_A: p = 2/8
    assert r.p_permutation == pytest.approx(2 / 8)


def test_omega_squared_by_hand():
    T = _table(4, 6, effects_sd=0.5, sigma=0.4, seed=6)
    A, S = T.shape
    g = T.mean()
    ss_a = S * np.sum((T.mean(1) - g) ** 2)
    ss_s = A * np.sum((T.mean(0) - g) ** 2)
    ss_t = np.sum((T - g) ** 2)
    ms_e = (ss_t - ss_a - ss_s) / ((A - 1) * (S - 1))
    om = omega_squared_table(T)
    assert om["alignment"] == pytest.approx(max(0, (ss_a - (A - 1) * ms_e) / (ss_t + ms_e)), rel=1e-12)
    assert om["seed"] == pytest.approx(max(0, (ss_s - (S - 1) * ms_e) / (ss_t + ms_e)), rel=1e-12)
    r = alignment_effect(T, sesoi=0.5, n_perm=99)
    assert (r.omega2_alignment, r.omega2_seed) == (om["alignment"], om["seed"])
    assert r.sigma == pytest.approx(np.sqrt(ms_e), rel=1e-12)


@pytest.mark.parametrize("A,S,f", [(8, 5, 0.5), (4, 3, 1.2), (12, 10, 0.2), (2, 2, 2.0)])
def test_statsmodels_power_equals_direct_ncf(A, S, f):
    df1, df2 = A - 1, (A - 1) * (S - 1)
    lam = A * S * f * f  # λ = S Σ α² / σ² = A S f² for σ_α = f σ
    direct = stats.ncf.sf(stats.f.isf(0.05, df1, df2), df1, df2, lam)
    assert effect_power(f, A, S, 0.05) == pytest.approx(direct, rel=1e-8)


def test_mde_solves_power_equation():
    for A, S in [(8, 3), (8, 5), (4, 20)]:
        f = _mde_f(A, S, 0.05, 0.8)
        df1, df2 = A - 1, (A - 1) * (S - 1)
        crit = stats.f.isf(0.05, df1, df2)
        assert stats.ncf.sf(crit, df1, df2, A * S * f * f) == pytest.approx(0.8, abs=1e-4)


# ------------------------------------------------------------------------------------------ simulation

@pytest.mark.parametrize("A,S", [(8, 5), (4, 3)])
def test_mde_agrees_with_monte_carlo_within_20_percent(A, S):
    """Simulate the same design with σ = the table's σ̂: power at the reported MDE is ≈ 0.8, power at
    0.8·MDE is below 0.8 and at 1.2·MDE above it, so the simulated MDE lies within ±20% of the reported."""
    T = _table(A, S, effects_sd=0.0, sigma=0.5, seed=7)
    r = alignment_effect(T, sesoi=0.5, n_perm=99)
    rng = np.random.default_rng(8)
    n = 4000
    pw = {}
    for k in (0.8, 1.0, 1.2):
        p, _, _ = _sim_f_pvalues(A, S, k * r.mde, r.sigma, n, rng)
        pw[k] = float(np.mean(p < 0.05))
    se = np.sqrt(0.8 * 0.2 / n)
    assert abs(pw[1.0] - 0.8) < 4 * se, pw
    assert pw[0.8] < 0.8 < pw[1.2], pw


def test_equivalence_test_level_at_the_margin():
    """At the boundary σ_α = sesoi the plug-in equivalence test (λ = A S sesoi²/σ̂²) rejects at most α (+ MC
    error); with σ known the test is exact (level α)."""
    rng = np.random.default_rng(9)
    n = 4000
    lim = 4 * np.sqrt(0.05 * 0.95 / n)
    for A, S in [(8, 3), (8, 5), (4, 10)]:
        df1, df2 = A - 1, (A - 1) * (S - 1)
        _, F, mse = _sim_f_pvalues(A, S, 0.5, 1.0, n, rng)
        plug = stats.ncf.cdf(F, df1, df2, A * S * 0.25 / mse)
        assert np.mean(plug < 0.05) <= 0.05 + lim, (A, S)
        known = stats.ncf.cdf(F, df1, df2, A * S * 0.25)
        assert abs(np.mean(known < 0.05) - 0.05) < lim, (A, S)


def test_equivalence_p_formula():
    T = _table(5, 6, effects_sd=0.1, sigma=0.4, seed=10)
    r = alignment_effect(T, sesoi=0.5, n_perm=99)
    assert r.equivalence_lambda == pytest.approx(5 * 6 * 0.25 / r.sigma ** 2, rel=1e-12)
    direct = stats.ncf.cdf(r.F_alignment, 4, 20, r.equivalence_lambda)
    assert r.equivalence_p == pytest.approx(direct, rel=1e-12)


# ------------------------------------------------------------------------------------------ design_for

def test_design_for_is_minimal_and_reaches_power():
    d = design_for(0.5, 0.6, 8, power=0.8)
    S = d["seeds"]
    assert d["power"] >= 0.8 and d["runs"] == 8 * S
    if S > 2:
        assert effect_power(0.5 / 0.6, 8, S - 1) < 0.8
    both = design_for(0.5, 0.6, 8, power=0.8, target="both")
    assert both["seeds"] >= S and both["equivalence_power"] >= 0.8
    assert equivalence_power(0.5 / 0.6, 8, both["seeds"]) == pytest.approx(both["equivalence_power"])
    # more noise needs more seeds
    assert design_for(0.5, 1.2, 8)["seeds"] > S


def test_design_for_mde_consistency():
    """A design sized for sesoi has its MDE (at the same σ) at or below sesoi."""
    d = design_for(0.5, 0.7, 6)
    assert _mde_f(6, d["seeds"], 0.05, 0.8) * 0.7 <= 0.5 + 1e-9


# ------------------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("bad,match", [
    ([[90.0, np.nan], [91.0, 92.0]], "missing cells"),
    ([[90.0], [91.0]], "at least 2 seeds"),
    ([[90.0, 91.0, 92.0]], "at least 2 rows"),
    ([[90.0, 91.0], [92.0]], "rectangular"),
    ([90.0, 91.0], "2-D"),
    ([[0.9, 0.91], [0.92, 0.93]], "fractions"),
    ([[90.0, np.inf], [91.0, 92.0]], "Inf"),
])
def test_bad_tables_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        alignment_effect(bad, sesoi=0.5)


def test_bad_settings_raise():
    T = _table(3, 3, 0.0, 0.5, 0)
    with pytest.raises(ValueError, match="sesoi"):
        alignment_effect(T, sesoi=0.0)
    with pytest.raises(ValueError, match="alpha"):
        alignment_effect(T, sesoi=0.5, alpha=1.5)
    with pytest.raises(ValueError, match="power"):
        alignment_effect(T, sesoi=0.5, power=0.01)
    with pytest.raises(ValueError, match="sigma"):
        design_for(0.5, 0.0, 4)


def test_exactly_additive_table_is_inconclusive():
    T = 90 + np.add.outer([0.0, 1.0, 2.0], [0.0, 0.5])
    r = alignment_effect(T, sesoi=0.5, n_perm=99)
    assert r.verdict == "inconclusive" and "residual variance is 0" in r.reason


# ------------------------------------------------------------------------------------------ invariances

from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), shift=st.lists(st.floats(-3, 3), min_size=3, max_size=3))
def test_invariant_to_seed_blocks_and_relabelling(seed, shift):
    """Adding a constant per seed (a block effect) and permuting alignments or seeds leaves the tests, the
    MDE and the equivalence test unchanged (3×3 tables: scipy enumerates all (3!)^3 = 216 within-seed
    permutations, exact p). ω² is not block-invariant (its denominator SS_T contains the seed variance), so it
    is compared under the permutations alone."""
    rng = np.random.default_rng(seed)
    T = 90 + rng.standard_normal((3, 3))
    a = alignment_effect(T, sesoi=0.5)
    T2 = (T + np.asarray(shift)[None, :])[rng.permutation(3)][:, rng.permutation(3)]
    b = alignment_effect(T2, sesoi=0.5)
    assert a.permutation_method.startswith("exact")
    for k in ("p_anova", "p_permutation", "mde", "equivalence_p", "sigma", "effect_sd", "power_at_sesoi"):
        assert getattr(b, k) == pytest.approx(getattr(a, k), rel=1e-7, abs=1e-9), k
    c = alignment_effect(T[rng.permutation(3)][:, rng.permutation(3)], sesoi=0.5)
    assert (c.omega2_alignment, c.omega2_seed) == pytest.approx((a.omega2_alignment, a.omega2_seed), rel=1e-9)
