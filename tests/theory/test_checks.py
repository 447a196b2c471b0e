"""Input validation: every bad input raises ValueError whose message names the problem (issue 2 item 6)."""

import numpy as np
import pytest

from ncmargin.theory import check_classifier, check_features, nc_metrics, simplex_etf


def _data(N=12, d=3, K=3):
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, d)), np.arange(N) % K


def test_valid_inputs_are_converted():
    H, y = _data()
    H2, y2, K = check_features(H.astype(np.float32), y.astype(np.int32))
    assert H2.dtype == np.float64 and H2.flags.c_contiguous and y2.dtype == np.int64 and K == 3
    # integral float labels are accepted; K inferred as max+1
    _, y3, K3 = check_features(H, y.astype(float), K=5, allow_empty_class=True)
    assert y3.dtype == np.int64 and K3 == 5


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((2, 3, 4))])
def test_features_not_2d(bad):
    with pytest.raises(ValueError, match="2-D"):
        check_features(bad, np.zeros(len(bad), dtype=int))


def test_labels_not_1d_and_length_mismatch():
    H, y = _data()
    with pytest.raises(ValueError, match="1-D"):
        check_features(H, y.reshape(-1, 1))
    with pytest.raises(ValueError, match=r"length 11 .* 12 rows"):
        check_features(H, y[:-1])


def test_non_integer_labels():
    H, y = _data()
    with pytest.raises(ValueError, match="non-integer"):
        check_features(H, y + 0.5)
    with pytest.raises(ValueError, match="dtype"):
        check_features(H, y.astype(str))


def test_labels_outside_range_name_the_values():
    H, y = _data()
    y = y.copy()
    y[0], y[1] = 7, 9
    with pytest.raises(ValueError, match=r"outside 0\.\.K-1.*7, 9"):
        check_features(H, y, K=3)
    y[0] = -2
    with pytest.raises(ValueError, match=r"outside 0\.\.K-1.*-2"):
        check_features(H, y)


def test_empty_class_named_unless_allowed():
    H, y = _data()
    with pytest.raises(ValueError, match=r"no sample.*classes 3, 4"):
        check_features(H, y, K=5)
    _, _, K = check_features(H, y, K=5, allow_empty_class=True)
    assert K == 5
    with pytest.raises(ValueError, match="no sample"):
        nc_metrics(H, y, np.zeros((5, 3)))


def test_nan_inf_rows_counted():
    H, y = _data()
    H[2, 1] = np.nan
    H[5, 0] = np.inf
    H[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf in 2 of 12 rows"):
        check_features(H, y)


def test_too_few_classes():
    H, _y = _data()
    with pytest.raises(ValueError, match="K < 2"):
        check_features(H, np.zeros(12, dtype=int))
    with pytest.raises(ValueError, match="K < 2"):
        check_features(H, np.zeros(12, dtype=int), K=1)
    with pytest.raises(ValueError, match="K < 2"):
        simplex_etf(1)


def test_etf_dimension_too_small():
    with pytest.raises(ValueError, match=r"d = 3 < K-1 = 4"):
        simplex_etf(5, 3)


def test_classifier_checks():
    W, b = check_classifier(np.ones((3, 4), dtype=np.float32), np.zeros(3, dtype=int), 3, 4)
    assert W.dtype == np.float64 and b.dtype == np.float64
    assert check_classifier(np.ones((3, 4)), None, 3, 4)[1] is None
    with pytest.raises(ValueError, match=r"shape \(4, 3\) but dimension 0 must be 3"):
        check_classifier(np.ones((4, 3)), None, 3, 4)
    with pytest.raises(ValueError, match="2-D"):
        check_classifier(np.ones(12), None, 3, 4)
    with pytest.raises(ValueError, match=r"bias b must have shape \(3,\)"):
        check_classifier(np.ones((3, 4)), np.zeros(4), 3, 4)
    W = np.ones((3, 4))
    W[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf in 1 of 3 rows"):
        check_classifier(W, None, 3, 4)
    with pytest.raises(ValueError, match="bias b contains 1 NaN"):
        check_classifier(np.ones((3, 4)), np.array([0.0, np.inf, 1.0]), 3, 4)
