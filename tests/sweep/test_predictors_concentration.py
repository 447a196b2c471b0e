"""Predictor invariance and the concentration estimator (claim 3)."""

import math

import numpy as np
import pytest

from ncmargin.empirical.claims.claim3 import concentration_experiment, make_alignments
from ncmargin.theory import simplex_etf
from ncmargin.theory.alignment import alignment_predictors


def _collapsed_features(K, d, n, seed):
    rng = np.random.default_rng(seed)
    M = simplex_etf(K, d, seed=seed)
    y = np.repeat(np.arange(K), n)
    H = 2.0 * M[y] + 0.2 * rng.standard_normal((K * n, d))
    return H, y, M


@pytest.mark.parametrize("seed", [0, 1])
def test_predictors_invariant_under_relabelling_labels_and_etf_rows(seed):
    """Relabel classes by sigma (y -> sigma(y)) and move the ETF rows with them (row sigma(y) of the new M
    is row y of the old one): every docs/theory.md §8 predictor is unchanged (float64 round-off only)."""
    K, d, n = 5, 8, 12
    H, y, M = _collapsed_features(K, d, n, seed)
    sigma = np.random.default_rng(seed + 10).permutation(K)
    M2 = np.empty_like(M)
    M2[sigma] = M
    p1 = alignment_predictors(H, y, M)
    p2 = alignment_predictors(H, sigma[y], M2)
    for k in p1:
        assert p2[k] == pytest.approx(p1[k], rel=1e-12, abs=1e-14)
    # a relabelling of the labels alone (ETF rows kept) is another alignment: the predictors change
    p3 = alignment_predictors(H, sigma[y], M)
    assert p3["normalized_margin_min"] < p1["normalized_margin_min"]


def test_make_alignments_distinct_and_identity_first():
    al = make_alignments(8, 10, "perm", 0)
    assert al[0]["perm"] == list(range(10)) and al[0]["perm_seed"] == -1
    assert len({tuple(a["perm"]) for a in al}) == 8 and {a["rotation_seed"] for a in al} == {0}
    # the trainer's permutation is drawn from the same seed
    for a in al[1:]:
        assert a["perm"] == np.random.default_rng(a["perm_seed"]).permutation(10).tolist()
    rot = make_alignments(3, 10, "rotation", 5)
    assert [a["rotation_seed"] for a in rot] == [5, 6, 7] and all(a["perm_seed"] == -1 for a in rot)
    with pytest.raises(ValueError, match="permutations"):
        make_alignments(7, 3, "perm")


def test_concentration_estimator_on_a_known_case():
    """d = 1, n = 1, h = mu + U[-a, a]: P(|mu_hat - mu| >= eps) = 1 - eps/a exactly. With 4000 trials the
    binomial s.e. is <= 0.008; we allow 4 s.e."""
    a = 1.0
    eps = [0.25, 0.5, 0.9]
    res = concentration_experiment({"fresh": {"d": 1, "halfwidth": a, "ns": [1], "eps": eps, "trials": 4000},
                                    "trained": None})
    rows = res["fresh"]
    assert [r["eps"] for r in rows] == eps
    for r in rows:
        exact = 1 - r["eps"] / a
        assert abs(r["empirical"] - exact) <= 4 * math.sqrt(exact * (1 - exact) / 4000) + 1e-12
        assert r["bound_holds"]            # the bound is valid for bounded i.i.d. samples
    assert res["trained"] == [] and res["summary"]["fresh"]["all_held"]


def test_trained_concentration_rows_are_well_formed():
    res = concentration_experiment({
        "fresh": {"d": 2, "halfwidth": 1.0, "ns": [4, 16], "eps": [0.1, 0.5], "trials": 200},
        "trained": {"K": 3, "input_dim": 4, "hidden": 8, "separation": 2.0, "ns": [5, 20], "eps": [0.1, 0.5],
                    "trials": 2, "steps": 20, "lr": 0.01, "scale": 4.0, "population_per_class": 500}})
    tr = res["trained"]
    assert len(tr) == 4 and len(res["fresh"]) == 4
    for r in tr:
        assert 0 <= r["empirical"] <= 1 and 0 <= r["empirical_fresh"] <= 1 and r["events"] == 6
        assert r["bound"] == pytest.approx(2 * 2 * math.exp(-r["n"] * r["eps"] ** 2 / (2 * 4 * 1.0)))
        assert isinstance(r["bound_holds"], bool)
    assert [b["n"] for b in res["trained_info"]["deviation_by_n"]] == [5, 20]
