"""Tests of ncmargin.theory.stats (trend tests, 1/log t fit, alignment ANOVA, permutation, bootstrap)."""

import numpy as np
import pytest
from scipy import stats as st

from ncmargin.theory.stats import (
    alignment_effect_verdict,
    bootstrap_ci,
    complete_table,
    fit_inverse_log,
    kendall_trend,
    permutation_test_alignment,
    spearman,
    two_way_anova,
)


def test_kendall_trend_monotone_and_reversed():
    t = np.arange(12)
    v = np.log1p(t) + 0.01 * t  # strictly increasing
    up = kendall_trend(v, t)
    assert up["tau"] == pytest.approx(1.0) and up["p_value"] < 1e-6 and up["n"] == 12
    down = kendall_trend(-v, t)
    assert down["tau"] == pytest.approx(-1.0)
    flat = kendall_trend(np.ones(5), np.arange(5))
    assert np.isnan(flat["tau"])


def test_kendall_rejects_nan_and_length_mismatch():
    with pytest.raises(ValueError, match="NaN"):
        kendall_trend([1.0, np.nan, 2.0], [0, 1, 2])
    with pytest.raises(ValueError, match="same length"):
        kendall_trend([1.0, 2.0, 3.0], [0, 1])


def test_spearman_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=20)
    y = x + rng.normal(size=20)
    r = spearman(x, y)
    ref = st.spearmanr(x, y)
    assert r["rho"] == pytest.approx(ref.statistic) and r["p_value"] == pytest.approx(ref.pvalue)


def test_fit_inverse_log_recovers_coefficients():
    t = np.unique(np.geomspace(2, 1e5, 40).astype(int)).astype(float)
    angle = 0.5 + 30.0 / np.log(t)
    f = fit_inverse_log(t, angle)
    assert f["a"] == pytest.approx(0.5, abs=1e-9) and f["c"] == pytest.approx(30.0, rel=1e-9)
    assert f["r2"] == pytest.approx(1.0) and f["c_positive"]
    with pytest.raises(ValueError, match="t > 1"):
        fit_inverse_log([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])


def _hand_ss(T):
    # explicit double loop with fitted additive model residuals
    A, S = T.shape
    g = T.mean()
    ra = T.mean(1)
    cs = T.mean(0)
    ss_a = sum(S * (ra[a] - g) ** 2 for a in range(A))
    ss_s = sum(A * (cs[s] - g) ** 2 for s in range(S))
    ss_e = sum((T[a, s] - ra[a] - cs[s] + g) ** 2 for a in range(A) for s in range(S))
    return ss_a, ss_s, ss_e


def test_two_way_anova_against_hand_decomposition():
    rng = np.random.default_rng(1)
    T = rng.normal(size=(5, 4)) + np.arange(5)[:, None] * 0.5
    an = two_way_anova(T)
    ss_a, ss_s, ss_e = _hand_ss(T)
    assert an["alignment"]["ss"] == pytest.approx(ss_a, rel=1e-12)
    assert an["seed"]["ss"] == pytest.approx(ss_s, rel=1e-12)
    assert an["error"]["ss"] == pytest.approx(ss_e, rel=1e-10)
    assert an["alignment"]["df"] == 4 and an["seed"]["df"] == 3 and an["error"]["df"] == 12
    F = (ss_a / 4) / (ss_e / 12)
    assert an["alignment"]["F"] == pytest.approx(F, rel=1e-10)
    assert an["alignment"]["p_value"] == pytest.approx(st.f.sf(F, 4, 12), rel=1e-10)
    tot = an["total"]["ss"]
    assert an["alignment"]["eta2"] + an["seed"]["eta2"] + ss_e / tot == pytest.approx(1.0)
    assert an["alignment"]["partial_eta2"] == pytest.approx(ss_a / (ss_a + ss_e))


def test_two_way_anova_one_factor_special_case_matches_f_oneway():
    # With no seed effect (all column means equal) SS_S = 0; the two-way F then equals the one-way F
    # rescaled by the error degrees of freedom: same SS_A and SS_within = SS_E, df_within = A(S-1).
    rng = np.random.default_rng(2)
    T = rng.normal(size=(4, 6))
    T = T - T.mean(axis=0, keepdims=True) + 3.0  # column means all equal: SS_seed = 0
    an = two_way_anova(T)
    assert an["seed"]["ss"] == pytest.approx(0.0, abs=1e-12)
    ow = st.f_oneway(*T)  # groups = alignments
    A, S = T.shape
    F_oneway_from_two = (an["alignment"]["ss"] / (A - 1)) / (an["error"]["ss"] / (A * (S - 1)))
    assert F_oneway_from_two == pytest.approx(ow.statistic, rel=1e-10)


def test_anova_rejects_bad_tables_and_complete_table_drops_failed_runs():
    T = np.arange(12.0).reshape(3, 4)
    T[1, 2] = np.nan
    with pytest.raises(ValueError, match="complete_table"):
        two_way_anova(T)
    with pytest.raises(ValueError, match="2-D"):
        two_way_anova(np.arange(4.0))
    c = complete_table(T, drop="seeds")
    assert c["table"].shape == (3, 3) and list(c["dropped_seeds"]) == [2]
    c2 = complete_table(T, drop="alignments")
    assert c2["table"].shape == (2, 4) and list(c2["dropped_alignments"]) == [1]


def _constructed(effect, seed):
    rng = np.random.default_rng(seed)
    A, S = 6, 5
    alignment_effect = effect * np.linspace(-1, 1, A)[:, None]
    seed_effect = 0.3 * rng.normal(size=(1, S))
    return 90 + alignment_effect + seed_effect + 0.3 * rng.normal(size=(A, S))


def test_verdict_detects_constructed_alignment_effect():
    v = alignment_effect_verdict(_constructed(2.0, 3), alpha=0.05, n_perm=1999, seed=0)
    assert v["verdict"] is True
    assert v["anova_p_alignment"] < 1e-4 and v["permutation_p_alignment"] < 0.01
    assert v["eta2_alignment"] > v["eta2_seed"]


def test_no_effect_not_detected_at_level_005():
    # Null (no alignment effect): over 40 seeded tables the rejection rate must stay near alpha = 0.05;
    # binomial(40, 0.05) exceeds 8 with probability < 1e-3.
    # The same bound holds for each test alone (F test and permutation test are level-alpha tests).
    rejections = anova_rej = perm_rej = 0
    for s in range(40):
        v = alignment_effect_verdict(_constructed(0.0, 100 + s), alpha=0.05, n_perm=199, seed=s)
        rejections += v["verdict"]
        anova_rej += v["anova_p_alignment"] < 0.05
        perm_rej += v["permutation_p_alignment"] < 0.05
    assert rejections <= 8 and anova_rej <= 8 and perm_rej <= 8
    # and a fixed seeded null table is not detected
    assert alignment_effect_verdict(_constructed(0.0, 7), n_perm=999)["verdict"] is False


def test_permutation_pvalue_bounds_and_agreement_with_anova():
    T = _constructed(0.0, 11)
    p = permutation_test_alignment(T, n_perm=999, seed=1)
    assert 1 / 1000 <= p["p_value"] <= 1
    pF = permutation_test_alignment(T, n_perm=999, seed=1, statistic="F")
    assert pF["p_value"] == pytest.approx(p["p_value"])  # same permutations, monotone statistic
    strong = permutation_test_alignment(_constructed(5.0, 11), n_perm=999, seed=1)
    assert strong["p_value"] == pytest.approx(1 / 1000)  # the +1 correction: never 0


def test_bootstrap_ci_of_mean_covers_and_is_reproducible():
    rng = np.random.default_rng(4)
    x = rng.normal(loc=2.0, size=200)
    ci = bootstrap_ci(np.mean, x, n_boot=1000, level=0.95, seed=0)
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert ci["low"] < x.mean() < ci["high"]
    assert ci["high"] - ci["low"] == pytest.approx(2 * 1.96 * se, rel=0.15)  # normal theory width
    assert bootstrap_ci(np.mean, x, n_boot=1000, seed=0) == ci
    # paired rows: a correlation of perfectly related pairs stays 1 in every replicate
    y = 3 * x + 1
    c = bootstrap_ci(lambda a, b: np.corrcoef(a, b)[0, 1], x, y, n_boot=200, seed=0)
    assert c["low"] == pytest.approx(1.0) and c["high"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="first axis"):
        bootstrap_ci(np.mean, x, y[:5])


def test_spearman_exact_p_small_n():
    """Perfect rank agreement at n=4: exact two-sided p = 2/4! (scipy's t approximation says 0)."""
    from ncmargin.theory.stats import spearman

    st = spearman([1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0])
    assert st["rho"] == pytest.approx(1.0) and st["p_value"] == pytest.approx(2 / 24)
    assert st["p_method"] == "exact permutation"
    # n=5, rho=0.9: pairings with |rho| >= 0.9 are the identity, the reversal and the 4+4 one-swap
    # neighbours of each (rho = 1 - 6*2/120 = 0.9 for an adjacent swap): 10 of 120.
    st5 = spearman([1, 2, 3, 4, 5], [1, 2, 3, 5, 4])
    assert st5["rho"] == pytest.approx(0.9) and st5["p_value"] == pytest.approx(10 / 120)
    big = spearman(np.arange(12.0), np.arange(12.0) ** 2)
    assert big["p_method"].startswith("t approximation")
