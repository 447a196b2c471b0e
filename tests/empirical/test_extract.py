"""``ncmargin extract``: saved state dicts -> the run directory the Recorder writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ncmargin.cli import main
from ncmargin.empirical.extract import ExtractError, epoch_from_name, extract_run, load_state_dict
from ncmargin.empirical.recorder import Recorder
from ncmargin.empirical.runs import load_run

HERE = Path(__file__).resolve().parent


@pytest.fixture
def factory(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    import _extract_models

    return _extract_models


def _save_series(tmp_path, factory, X, y, epochs=(1, 3, 7, 12)):
    torch.manual_seed(0)
    net = factory.tiny_cnn()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    wdir = tmp_path / "ckpts"
    wdir.mkdir()
    states = {}
    for ep in range(1, max(epochs) + 1):
        loss = torch.nn.functional.cross_entropy(net(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if ep in epochs:
            sd = {k: v.clone() for k, v in net.state_dict().items()}
            states[ep] = sd
            # two common layouts: a bare state dict, and a DDP-prefixed one under "state_dict"
            if ep % 2:
                torch.save(sd, wdir / f"model_epoch{ep:03d}.pt")
            else:
                torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": ep},
                           wdir / f"model_epoch{ep:03d}.pt")
    return wdir, states


def test_extract_equals_recording_the_same_weights(tmp_path, factory):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(50, 1, 8, 8, generator=g), torch.arange(50) % 10
    Xt, yt = torch.randn(20, 1, 8, 8, generator=g), torch.arange(20) % 10
    np.savez(tmp_path / "data.npz", images=X.numpy(), labels=y.numpy(), test_images=Xt.numpy(),
             test_labels=yt.numpy())
    wdir, states = _save_series(tmp_path, factory, X, y)
    rc = main(["extract", "--model", "_extract_models:tiny_cnn", "--kwargs", '{"num_classes": 10}',
               "--weights", str(wdir / "*.pt"), "--data", str(tmp_path / "data.npz"), "--out",
               str(tmp_path / "ex"), "--meta", "weight_decay=0.0", "--quiet"])
    assert rc == 0
    run = load_run(tmp_path / "ex")
    assert run.checkpoint_epochs == [1, 3, 7, 12]
    assert run.meta["config"]["weight_decay"] == 0.0 and run.meta["config"]["model_factory"] == \
        "_extract_models:tiny_cnn"
    # reference: the Recorder driven by hand with the same weights
    net = factory.tiny_cnn()
    rec = Recorder(tmp_path / "ref", net, train=(X, y), test=(Xt, yt), schedule=list(states), epochs=12,
                   check_onset=False)
    for ep, sd in states.items():
        net.load_state_dict(sd)
        rec.epoch_end(ep)
    rec.close()
    for ep in states:
        with np.load(tmp_path / "ex" / "checkpoints" / f"epoch_{ep:04d}.npz") as a, \
                np.load(tmp_path / "ref" / "checkpoints" / f"epoch_{ep:04d}.npz") as b:
            for k in b.files:
                np.testing.assert_array_equal(a[k], b[k])
    ref = load_run(tmp_path / "ref")
    for la, lb in zip(run.log, ref.log, strict=True):
        assert {k: v for k, v in la.items() if "seconds" not in k} == \
            {k: v for k, v in lb.items() if "seconds" not in k}
    assert main(["analyze", str(tmp_path / "ex"), "--quiet", "--no-spectral"]) == 0


def test_extract_registry_dataset_and_explicit_epochs(tmp_path, factory):
    wdir = tmp_path / "w"
    wdir.mkdir()
    torch.manual_seed(0)
    for name in ("first.pt", "second.pt"):
        torch.save(factory.tiny_cnn().state_dict(), wdir / name)
    with pytest.raises(ExtractError, match="no epoch number"):
        extract_run(tmp_path / "x", "_extract_models:tiny_cnn", str(wdir / "*.pt"), data="digits")
    out = extract_run(tmp_path / "d", "_extract_models:tiny_cnn", str(wdir / "*.pt"), data="digits",
                      epochs=[5, 10], data_options={"n_per_class": 20})
    run = load_run(out)
    assert run.checkpoint_epochs == [5, 10]
    assert run.meta["data"]["n_train"] == 200


def test_extract_errors(tmp_path, factory):
    np.savez(tmp_path / "d.npz", images=np.zeros((4, 1, 8, 8), np.float32), labels=np.arange(4),
             test_images=np.zeros((2, 1, 8, 8), np.float32), test_labels=np.arange(2))
    torch.save({"net": {"a": 1}}, tmp_path / "bad_2.pt")
    with pytest.raises(ExtractError, match="not a state dict"):
        load_state_dict(tmp_path / "bad_2.pt")

    torch.save({"model": factory.Opaque()}, tmp_path / "obj_3.pt")  # weights_only=True refuses it
    with pytest.raises(ExtractError, match="weights_only=True"):
        load_state_dict(tmp_path / "obj_3.pt")
    with pytest.raises(ExtractError, match="pkg.module:factory"):
        extract_run(tmp_path / "o", "nocolon", str(tmp_path / "*.pt"), data=str(tmp_path / "d.npz"))
    with pytest.raises(ExtractError, match="not callable"):
        extract_run(tmp_path / "o", "_extract_models:NOT_CALLABLE", str(tmp_path / "obj_3.pt"),
                    data=str(tmp_path / "d.npz"))
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(3, 3).state_dict(), tmp_path / "lin_4.pt")
    np.savez(tmp_path / "notest.npz", images=np.zeros((4, 1, 8, 8), np.float32), labels=np.arange(4))
    torch.save(factory.tiny_cnn().state_dict(), tmp_path / "good_5.pt")
    with pytest.raises(ExtractError, match="no test arrays"):
        extract_run(tmp_path / "o", "_extract_models:tiny_cnn", str(tmp_path / "good_5.pt"),
                    data=str(tmp_path / "notest.npz"))
    with pytest.raises(ExtractError, match=r"does not fit the model.*missing keys \['0.bias'"):
        extract_run(tmp_path / "o", "_extract_models:tiny_cnn", str(tmp_path / "lin_4.pt"),
                    data=str(tmp_path / "d.npz"))
    assert not (tmp_path / "o").exists()  # nothing written
    with pytest.raises(FileNotFoundError, match="no file matches"):
        extract_run(tmp_path / "o2", "_extract_models:tiny_cnn", str(tmp_path / "none_*.pt"),
                    data=str(tmp_path / "d.npz"))
    assert epoch_from_name("ckpt_epoch=0042.pt") == 42
    assert epoch_from_name("run3/resnet18-e7.pth") == 7
    # the CLI turns these into one line and exit code 2
    assert main(["extract", "--model", "nocolon", "--weights", "x", "--data", "y.npz", "--out",
                 str(tmp_path / "z")]) == 2


def test_torchvision_data_without_torchvision_is_a_clear_error():
    import importlib.util

    from ncmargin.empirical.extract import load_data

    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed")
    with pytest.raises(ExtractError, match="needs the optional torchvision package"):
        load_data("torchvision:CIFAR10:/nonexistent")
    with pytest.raises(ExtractError, match="torchvision:NAME:ROOT"):
        load_data("torchvision:CIFAR10")
    with pytest.raises(ExtractError, match="registry dataset"):
        load_data("imagenet")
