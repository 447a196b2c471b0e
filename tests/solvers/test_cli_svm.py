"""`ncmargin svm` end to end on small feature files."""

import json

import numpy as np
import pytest

from ncmargin.cli import main
from ncmargin.io import save_features
from ncmargin.theory import simplex_etf


def test_cli_svm_etf_file(tmp_path, capsys):
    K, n = 4, 3
    M = simplex_etf(K, 6, seed=0)
    y = np.repeat(np.arange(K), n)
    f = tmp_path / "feat.npz"
    save_features(f, M[y], y, split="train")
    out = tmp_path / "sol.json"
    rc = main(["svm", str(f), "--out", str(out)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads(out.read_text())
    assert saved["status"] == printed["status"] == "optimal"
    assert saved["objective"] == pytest.approx((K - 1) ** 2 / (2 * K), rel=1e-9)
    np.testing.assert_allclose(np.array(saved["W"]), (K - 1) / K * M, atol=1e-7)
    for key in ("b", "margin", "duality_gap", "max_violation", "n_support", "seconds"):
        assert key in saved


def test_cli_svm_split_bias_soft(tmp_path, capsys):
    rng = np.random.default_rng(0)
    H = rng.standard_normal((40, 3)) + 5.0
    y = np.arange(40) % 2
    H[y == 1] += 3.0
    f = tmp_path / "ck.npz"
    np.savez(f, train_features=H, train_labels=y, test_features=H[:4], test_labels=y[:4])
    assert main(["svm", str(f), "--split", "train", "--bias", "--no-arrays"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["status"] == "optimal" and res["bias"] is True and "W" not in res
    assert main(["svm", str(f), "--split", "test", "--soft", "2.0", "--method", "cvxpy"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["C"] == 2.0 and res["method"] == "cvxpy" and len(res["b"] or []) == 0


def test_cli_svm_not_separable_exit_2(tmp_path, capsys):
    rng = np.random.default_rng(1)
    f = tmp_path / "bad.npz"
    save_features(f, rng.standard_normal((50, 2)), rng.integers(0, 3, 50))
    out = tmp_path / "sol.json"
    assert main(["svm", str(f), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not linearly separable" in err and "--soft" in err
    assert not out.exists()
    assert main(["svm", str(tmp_path / "missing.npz")]) == 2
