"""Tests of ncmargin.theory.resolution (docs/theory.md §14) on constructed correctness matrices."""

import numpy as np
import pytest

from ncmargin.theory import bootstrap_error_change, series_resolution


def _correct(n_test, acc_start, flips_to_wrong, flips_to_right, n_ck=5, seed=0):
    """Per-image correctness at n_ck checkpoints: start with round(acc_start·n) correct images, then flip
    the given numbers of images gradually (the last checkpoint has all flips)."""
    rng = np.random.default_rng(seed)
    c0 = np.zeros(n_test, bool)
    c0[rng.permutation(n_test)[: round(acc_start * n_test)]] = True
    right, wrong = np.flatnonzero(c0), np.flatnonzero(~c0)
    tw = rng.choice(right, flips_to_wrong, replace=False)
    tr = rng.choice(wrong, flips_to_right, replace=False)
    C = np.tile(c0, (n_ck, 1))
    for k in range(1, n_ck):
        m_w, m_r = round(flips_to_wrong * k / (n_ck - 1)), round(flips_to_right * k / (n_ck - 1))
        C[k, tw[:m_w]] = False
        C[k, tr[:m_r]] = True
    return C


def test_series_resolution_counts_images():
    n = 360
    v = np.array([340, 341, 341, 342, 341]) / n
    r = series_resolution(v, n)
    assert r["n_distinct"] == 3 and r["resolution"] == pytest.approx(1 / 360)
    assert r["change_images"] == 1 and r["range_images"] == 2 and r["few_images"] and r["on_grid"]
    r2 = series_resolution(np.array([900, 910, 925, 930]) / 1000, 1000)
    assert r2["n_distinct"] == 4 and r2["change_images"] == 30 and not r2["few_images"]
    # float noise in a stored accuracy does not create a new value
    assert series_resolution(np.array([0.5, 0.5 + 1e-12, 0.75]), 4)["n_distinct"] == 2
    # a wrong n_test is visible: 0.5005 is not a multiple of 1/1000
    assert not series_resolution([0.5, 0.5005], 1000)["on_grid"]


def test_one_or_two_images_are_inconclusive():
    for k in (1, 2):
        C = _correct(1000, 0.92, flips_to_wrong=0, flips_to_right=k)
        r = bootstrap_error_change(C, 0, -1, n_boot=2000)
        assert r["verdict"] == "inconclusive" and r["discordant"] == k
        assert r["change"] == pytest.approx(-k / 1000)
        assert "image" in r["reason"]


def test_large_change_exceeds_noise():
    C = _correct(1000, 0.90, flips_to_wrong=2, flips_to_right=30)
    r = bootstrap_error_change(C, 0, -1, n_boot=4999, seed=1)
    assert r["verdict"] == "decrease" and r["exceeds_noise"]
    assert r["change"] == pytest.approx(-28 / 1000)
    assert r["ci_high"] < 0 < -r["ci_low"]
    assert r["p_mcnemar"] < 1e-5
    assert r["error_start"] == pytest.approx(0.10) and r["error_end"] == pytest.approx(0.072)


def test_balanced_churn_is_within_noise():
    # 20 images become wrong and 20 right: no net change, lots of churn
    C = _correct(1000, 0.9, flips_to_wrong=20, flips_to_right=20)
    r = bootstrap_error_change(C, 0, -1, n_boot=2000)
    assert r["change"] == 0 and r["verdict"] == "inconclusive" and "noise" in r["reason"]
    assert r["ci_low"] < 0 < r["ci_high"] and r["p_mcnemar"] == pytest.approx(1.0)


def test_bootstrap_interval_matches_numpy_resampling():
    """Cross-check of scipy.stats.bootstrap(paired=True) with a plain numpy paired resampling of images."""
    C = _correct(500, 0.8, flips_to_wrong=5, flips_to_right=25, seed=3)
    r = bootstrap_error_change(C, 0, -1, n_boot=9999, seed=4)
    rng = np.random.default_rng(5)
    d = C[0].astype(float) - C[-1].astype(float)
    idx = rng.integers(0, d.size, size=(20000, d.size))
    boots = d[idx].mean(axis=1)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    assert r["ci_low"] == pytest.approx(lo, abs=0.004) and r["ci_high"] == pytest.approx(hi, abs=0.004)


def test_same_resample_across_checkpoints_matters():
    """Pairing: with many images that are wrong at both checkpoints, an unpaired interval would be much
    wider; the paired one only sees the discordant images."""
    C = _correct(1000, 0.7, flips_to_wrong=0, flips_to_right=12)
    r = bootstrap_error_change(C, 0, -1, n_boot=4999)
    width = r["ci_high"] - r["ci_low"]
    unpaired_se = np.sqrt(2 * 0.3 * 0.7 / 1000)
    assert width < 2 * 1.96 * unpaired_se / 2  # paired CI far narrower than the unpaired one


@pytest.mark.parametrize("bad,match", [
    (np.zeros((1, 10), bool), "at least 2 checkpoints"),
    (np.zeros(10, bool), "2-D"),
    (np.full((3, 4), 0.5), "boolean"),
])
def test_bad_correctness_raises(bad, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_error_change(bad)


def test_bad_series_raise():
    with pytest.raises(ValueError, match="fractions"):
        series_resolution([93.5, 94.0], 1000)
    with pytest.raises(ValueError, match="n_test"):
        series_resolution([0.9, 0.91], 0)
    with pytest.raises(ValueError, match="same checkpoint"):
        bootstrap_error_change(np.ones((3, 5), bool), 1, 1)


def test_correct_predictions_matches_argmax():
    from ncmargin.theory import correct_predictions

    rng = np.random.default_rng(0)
    H, W, b = rng.standard_normal((50, 6)), rng.standard_normal((4, 6)), rng.standard_normal(4)
    y = rng.integers(0, 4, 50)
    c = correct_predictions(H, y, W, b)
    assert c.dtype == bool and np.array_equal(c, np.argmax(H @ W.T + b, axis=1) == y)
    with pytest.raises(ValueError, match="one entry per row"):
        correct_predictions(H, y[:10], W, b)
