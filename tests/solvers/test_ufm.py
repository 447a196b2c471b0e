"""Tests of ncmargin.solvers.ufm_svm (docs/theory.md §3): balanced optimum (K-1)·sqrt(n), ETF factors."""

import numpy as np
import pytest

from ncmargin.solvers import ufm_svm
from ncmargin.theory import is_etf


@pytest.mark.parametrize("K,n", [(3, 4), (4, 5), (5, 3)])
def test_balanced_closed_form_and_etf(K, n):
    y = np.repeat(np.arange(K), n)
    sol = ufm_svm(y, d=K + 2)
    c = sol.certificate
    assert c["status"] == "optimal", c
    # interior point at 1e-10 tolerances: the optimum to ~1e-7 relative
    assert sol.objective == pytest.approx((K - 1) * np.sqrt(n), rel=1e-6)
    assert c["closed_form_rel_error"] < 1e-6
    assert c["duality_gap"] < 1e-6 and c["max_violation"] < 1e-7
    assert c["rank"] == K - 1
    assert sol.W.shape == (K, K + 2) and sol.H.shape == (K * n, K + 2)
    # the factors attain the nuclear norm and are feasible
    assert c["factor_objective"] == pytest.approx(sol.objective, rel=1e-6)
    assert c["factor_max_violation"] < 1e-6
    # neural collapse: features collapse to class means; means and classifier rows form a simplex ETF
    means = np.stack([sol.H[y == k].mean(axis=0) for k in range(K)])
    within = max(np.abs(sol.H[y == k] - means[k]).max() for k in range(K))
    assert within < 1e-4
    assert is_etf(means, atol=1e-4) and is_etf(sol.W, atol=1e-4)
    # self-duality: W proportional to the means
    np.testing.assert_allclose(sol.W / np.linalg.norm(sol.W), means / np.linalg.norm(means), atol=1e-4)


def test_unbalanced_has_certificate_without_closed_form():
    y = np.array([0, 0, 0, 1, 1, 2])
    sol = ufm_svm(y)
    assert sol.certificate["status"] == "optimal"
    assert "closed_form" not in sol.certificate
    assert sol.W.shape[1] == sol.certificate["rank"]


def test_bad_d_and_size():
    y = np.repeat(np.arange(4), 2)
    with pytest.raises(ValueError, match="d >= 3"):
        ufm_svm(y, d=2)
    with pytest.raises(ValueError, match="max_n"):
        ufm_svm(np.repeat(np.arange(3), 10), max_n=20, reduce=False)


def test_reduced_equals_full_program_unbalanced():
    y = np.array([0, 0, 1, 1, 1, 2, 2, 0, 1])
    red = ufm_svm(y)
    full = ufm_svm(y, reduce=False)
    assert red.certificate["reduced"] and not full.certificate["reduced"]
    assert red.certificate["status"] == full.certificate["status"] == "optimal"
    assert red.objective == pytest.approx(full.objective, rel=1e-6)


def test_reduced_scales_to_many_samples():
    K, n = 10, 500
    sol = ufm_svm(np.repeat(np.arange(K), n))
    c = sol.certificate
    assert c["status"] == "optimal" and c["closed_form_rel_error"] < 1e-6
    assert sol.H.shape == (K * n, K - 1)
