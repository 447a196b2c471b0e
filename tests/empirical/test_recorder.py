"""The Recorder: any training loop -> a run directory that the analysis reads (docs/recorder.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import ncmargin
from ncmargin.empirical.models import FixedETFHead
from ncmargin.empirical.recorder import HeadNotFoundError, Recorder, RecorderError, find_head
from ncmargin.empirical.runs import load_run
from ncmargin.io import load_features

HERE = Path(__file__).resolve().parent
ROOT = Path(ncmargin.__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ models

class TinyResNet(nn.Module):
    """torchvision ResNet layout: conv1/bn1/relu/layer1(downsample)/avgpool/fc."""

    def __init__(self, K=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, K)

    def forward(self, x):
        x = self.layer1(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TinyVGG(nn.Module):
    """VGG layout: features, avgpool, classifier = Sequential(Linear, ReLU, Dropout, Linear(., K)); the
    hidden width equals K, so two Linear layers have out_features == K."""

    def __init__(self, K=10, bias=True):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(32, K), nn.ReLU(), nn.Dropout(0.5), nn.Linear(K, K, bias=bias))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class ETFNet(nn.Module):
    def __init__(self, K=4, d=8):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, d), nn.ReLU())
        self.head = FixedETFHead(d, K, perm=[1, 0, 3, 2], scale=2.0)

    def forward(self, x):
        return self.head(self.body(x))


class TwoHeads(nn.Module):
    def __init__(self, K=3):
        super().__init__()
        self.body = nn.Linear(5, 6)
        self.a, self.b = nn.Linear(6, K), nn.Linear(6, K)

    def forward(self, x):
        h = torch.relu(self.body(x))
        return self.a(h) + self.b(h)


def _probe(model, x):
    return lambda: model(x)


# ------------------------------------------------------------------------------------------ head detection

def test_head_detection_cases():
    x = torch.randn(2, 1, 8, 8)
    m = TinyResNet()
    assert find_head(m, num_classes=10)[0] == "fc"
    assert find_head(m)[0] == "fc"  # the only Linear
    v = TinyVGG()
    # two Linear layers with out_features == K: the probe keeps the one whose output is the model's output
    assert find_head(v, num_classes=10, probe=_probe(v, x))[0] == "classifier.3"
    assert find_head(v, "classifier")[0] == "classifier.3"  # a container stands for its last Linear
    assert find_head(v, v.classifier[3])[0] == "classifier.3"
    vb = TinyVGG(bias=False)
    name, head = find_head(vb, num_classes=10, probe=_probe(vb, x))
    assert name == "classifier.3" and head.bias is None
    e = ETFNet()
    name, head = find_head(e, num_classes=4)
    assert name == "head" and isinstance(head, FixedETFHead)
    ddp_like = nn.DataParallel(TinyResNet())
    assert find_head(ddp_like, num_classes=10)[0] == "fc"


def test_head_detection_errors_list_candidates():
    t = TwoHeads()
    with pytest.raises(HeadNotFoundError, match=r"ambiguous head.*a: Linear\(in=6, out=3.*b: Linear"):
        find_head(t, num_classes=3, probe=_probe(t, torch.randn(2, 5)))
    with pytest.raises(HeadNotFoundError, match="no nn.Linear"):
        find_head(nn.Sequential(nn.Conv2d(1, 3, 3), nn.Flatten()))
    with pytest.raises(HeadNotFoundError, match=r"out_features = 7.*fc: Linear\(in=16, out=10"):
        find_head(TinyResNet(), num_classes=7)
    with pytest.raises(HeadNotFoundError, match="no submodule of that name.*fc: Linear"):
        find_head(TinyResNet(), "head")
    with pytest.raises(HeadNotFoundError, match="not a submodule"):
        find_head(TinyResNet(), nn.Linear(16, 10))
    with pytest.raises(HeadNotFoundError, match="contains no nn.Linear"):
        find_head(TinyResNet(), "layer1")
    # through the Recorder: the error names both candidates
    with pytest.raises(HeadNotFoundError, match="a: Linear.*b: Linear"):
        Recorder("unused", t, train=(torch.randn(6, 5), torch.arange(6) % 3),
                 test=(torch.randn(3, 5), torch.arange(3)), epochs=2)


# ------------------------------------------------------------------------------------------ recording

def _data(n=90, K=3, shape=(1, 8, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.arange(n) % K


def _train(model, X, y, epochs, rec=None, lr=0.05):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if rec is not None:
        rec.epoch_end(0)
    for ep in range(1, epochs + 1):
        model.train()
        for i in range(0, X.shape[0], 30):
            loss = nn.functional.cross_entropy(model(X[i:i + 30]), y[i:i + 30])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if rec is not None:
            rec.epoch_end(ep, lr=lr)


def _direct_features(model, head, X):
    got = []
    h = head.register_forward_hook(lambda m, i, o: got.append(i[0].detach()))
    model.eval()
    with torch.no_grad():
        model(X)
    h.remove()
    return got[0].numpy()


def test_recorded_run_matches_direct_forward_and_format(tmp_path):
    torch.manual_seed(0)
    X, y = _data(K=10)
    Xt, yt = _data(40, K=10, seed=1)
    model = TinyResNet()
    out = tmp_path / "run"
    with Recorder(out, model, train=(X, y), test=(Xt, yt), epochs=12, num_checkpoints=4,
                  metadata={"lr": 0.05, "weight_decay": 0.0, "seed": 0}, eval_batch_size=32) as rec:
        _train(model, X, y, 12, rec)
    assert model.training  # mode restored after evaluation
    run = load_run(out)
    assert run.checkpoint_epochs[0] == 0 and run.checkpoint_epochs[-1] == 12
    assert [r["epoch"] for r in run.log] == run.checkpoint_epochs
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["checkpoints"] == run.checkpoint_epochs
    assert summary["onset_epoch"] == run.onset_epoch
    meta = run.meta
    assert meta["config"] == {"lr": 0.05, "weight_decay": 0.0, "seed": 0}
    assert meta["model"]["head_name"] == "fc" and meta["num_classes"] == 10
    assert meta["data"]["n_train"] == 90 and meta["data"]["input_shape"] == [1, 8, 8]
    # last checkpoint = the final model: features equal a direct forward pass, classifier the fc weights
    tr = load_features(out / "checkpoints" / "epoch_0012.npz", split="train")
    te = load_features(out / "checkpoints" / "epoch_0012.npz", split="test")
    np.testing.assert_allclose(tr.features, _direct_features(model, model.fc, X), atol=1e-6, rtol=0)
    np.testing.assert_allclose(te.features, _direct_features(model, model.fc, Xt), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(tr.labels, y.numpy())
    np.testing.assert_array_equal(tr.classifier, model.fc.weight.detach().double().numpy())
    np.testing.assert_array_equal(tr.bias, model.fc.bias.detach().double().numpy())
    # the log line is the float64 recomputation from the stored arrays
    from ncmargin import theory
    last = run.log_at(12)
    Z = tr.features @ tr.classifier.T + tr.bias
    assert last["train_acc"] == float(np.mean(Z.argmax(1) == tr.labels))
    assert last["loss"] == pytest.approx(theory.ce_loss(tr.features, tr.labels, tr.classifier, tr.bias),
                                         rel=1e-12)
    assert last["p_min"] == pytest.approx(theory.p_min(tr.features, tr.labels, tr.classifier, tr.bias),
                                          rel=1e-12)
    assert last["lr"] == 0.05 and set(meta["log_keys"]) <= set(last)
    # model weights for the spectral bound
    sd = torch.load(out / "checkpoints" / "model_0012.pt", weights_only=True)
    for k, v in model.state_dict().items():
        assert torch.equal(sd[k], v)


def test_analyze_reads_a_recorded_run(tmp_path):
    from ncmargin.cli import main

    torch.manual_seed(0)
    X, y = _data(60, K=3, shape=(6,))
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))
    out = tmp_path / "run"
    with Recorder(out, model, train=(X, y), test=_data(30, K=3, shape=(6,), seed=1), epochs=40,
                  num_checkpoints=6) as rec:
        _train(model, X, y, 40, rec, lr=0.2)
    assert main(["analyze", str(out), "--quiet", "--no-spectral"]) == 0
    a = json.loads((out / "analysis.json").read_text())
    assert len(a["checkpoints"]) == len(load_run(out).checkpoint_epochs)
    if a["onset_epoch"] is not None:
        assert any(r.get("svm") for r in a["checkpoints"] if r["terminal"])


def test_onset_recorded_at_the_first_epoch_with_full_train_accuracy(tmp_path):
    torch.manual_seed(0)
    X, y = _data(60, K=3, shape=(6,))
    model = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 3))
    # reference: train accuracy after every epoch with an identical twin
    twin = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 3))
    twin.load_state_dict(model.state_dict())
    accs = []
    opt = torch.optim.SGD(twin.parameters(), lr=0.2, momentum=0.9)
    for _ in range(60):
        for i in range(0, 60, 30):
            loss = nn.functional.cross_entropy(twin(X[i:i + 30]), y[i:i + 30])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            accs.append(float((twin(X).argmax(1) == y).float().mean()))
    expected = next(i + 1 for i, a in enumerate(accs) if a == 1.0)
    rec = Recorder(tmp_path / "r", model, train=(X, y), test=(X[:9], y[:9]), epochs=60, schedule=[0, 60])
    _train(model, X, y, 60, rec, lr=0.2)
    rec.close()
    run = load_run(tmp_path / "r")
    assert run.onset_epoch == expected == rec.onset
    assert run.checkpoint_epochs == [0, expected, 60]
    assert run.log_at(expected)["terminal_phase"] and not run.log_at(0)["terminal_phase"]


def test_dataloader_shuffled_gives_dataset_order(tmp_path):
    torch.manual_seed(0)
    X, y = _data(70, K=10)
    model = TinyResNet().eval()
    ds = torch.utils.data.TensorDataset(X, y)
    rec = Recorder(tmp_path / "a", model, train=torch.utils.data.DataLoader(ds, batch_size=16, shuffle=True),
                   test=(X[:5], y[:5]),
                   schedule=[0])
    rec.epoch_end(0)
    rec.close()
    tr = load_features(tmp_path / "a" / "checkpoints" / "epoch_0000.npz", "train")
    np.testing.assert_array_equal(tr.labels, y.numpy())
    np.testing.assert_allclose(tr.features, _direct_features(model, model.fc, X), atol=1e-6, rtol=0)
    assert not model.training


def test_balanced_seeded_subsample(tmp_path):
    X, y = _data(90, K=3, shape=(6,))
    y = torch.cat([torch.zeros(50), torch.ones(30), 2 * torch.ones(10)]).long()
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    labs = []
    for name in ("a", "b"):
        rec = Recorder(tmp_path / name, model, train=(X, y), test=(X[:9], y[:9]), schedule=[0], subsample=12, subsample_seed=3)
        rec.close(0)
        labs.append(load_features(tmp_path / name / "checkpoints" / "epoch_0000.npz", "train").labels)
    np.testing.assert_array_equal(labs[0], labs[1])
    assert np.bincount(labs[0]).tolist() == [12, 12, 10]
    assert json.loads((tmp_path / "a" / "config.json").read_text())["data"]["n_train"] == 34


def test_fixed_etf_head_classifier_is_the_buffer(tmp_path):
    torch.manual_seed(0)
    model = ETFNet()
    X, y = torch.randn(40, 6), torch.arange(40) % 4
    rec = Recorder(tmp_path / "e", model, train=(X, y), test=(X[:8], y[:8]), schedule=[0])
    rec.close(0)
    tr = load_features(tmp_path / "e" / "checkpoints" / "epoch_0000.npz", "train")
    np.testing.assert_array_equal(tr.classifier, model.head.weight.double().numpy())
    assert tr.bias is None
    meta = json.loads((tmp_path / "e" / "config.json").read_text())
    assert meta["model"]["head"] == "FixedETFHead" and meta["model"]["etf"]["perm"] == [1, 0, 3, 2]


def test_amp_features_stored_float32(tmp_path):
    torch.manual_seed(0)
    X, y = _data(40, K=3, shape=(6,))
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    rec = Recorder(tmp_path / "amp", model, train=(X, y), test=(X[:9], y[:9]), schedule=[0], amp=True)
    rec.close(0)
    with np.load(tmp_path / "amp" / "checkpoints" / "epoch_0000.npz") as f:
        assert f["features"].dtype == np.float32
        np.testing.assert_allclose(f["features"], _direct_features(model, model[2], X), atol=0.05, rtol=0.02)


def test_bad_input_errors(tmp_path):
    X, y = _data(20, K=3, shape=(6,))
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(RecorderError, match="needs epochs="):
        Recorder(tmp_path / "x", model, train=(X, y), test=(X, y))
    with pytest.raises(RecorderError, match="test= is required"):
        Recorder(tmp_path / "x", model, train=(X, y), test=None, epochs=3)
    with pytest.raises(RecorderError, match="labels must be integers"):
        Recorder(tmp_path / "x", model, train=(X, y.float()), test=(X, y), epochs=3)
    with pytest.raises(RecorderError, match="same N"):
        Recorder(tmp_path / "x", model, train=(X, y[:5]), test=(X, y), epochs=3)
    with pytest.raises(RecorderError, match="only 3 outputs"):
        Recorder(tmp_path / "x", model, train=(X, y + 1), test=(X, y), epochs=3, head="2")
    rec = Recorder(tmp_path / "ok", model, train=(X, y), test=(X[:9], y[:9]), epochs=3)
    rec.epoch_end(1)
    with pytest.raises(RecorderError, match="epochs must increase"):
        rec.epoch_end(1)
    rec.close()
    with pytest.raises(RecorderError, match="already holds a run"):
        Recorder(tmp_path / "ok", model, train=(X, y), test=(X[:9], y[:9]), epochs=3)


def test_spectral_complexity_recorded_in_process(tmp_path):
    from ncmargin.empirical.complexity import network_spectral_complexity

    torch.manual_seed(0)
    X, y = _data(30, K=10)
    model = TinyResNet()
    rec = Recorder(tmp_path / "s", model, train=(X, y), test=(X[:9], y[:9]), schedule=[0], spectral=True)
    rec.close(0)
    got = json.loads((tmp_path / "s" / "checkpoints" / "complexity_0000.json").read_text())
    ref = network_spectral_complexity(model, X)
    assert got["R_A"] == pytest.approx(ref["R_A"], rel=1e-9)
    assert got["rademacher"] == pytest.approx(ref["rademacher"], rel=1e-6)
    assert got["N"] == 30


def test_import_ncmargin_stays_light():
    code = "import sys, ncmargin; assert 'torch' not in sys.modules; print(ncmargin.Recorder.__name__)"
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Recorder"


# ------------------------------------------------------------------------------------------ distributed

def test_ddp_gloo_equals_single_process(tmp_path):
    """2 gloo ranks (each evaluates its shard, rank 0 writes) give the single-process run directory."""
    script = str(HERE / "_recorder_ddp_script.py")
    base = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "OMP_NUM_THREADS": "1"}
    init = f"file://{tmp_path / 'rendezvous'}"
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, script, str(tmp_path / "single")], env=base,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)]
    for r in range(2):
        env = {**base, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2", "NCMARGIN_TEST_INIT": init}
        procs.append(subprocess.Popen([sys.executable, script, str(tmp_path / "ddp")], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out.decode()[-3000:]
    elapsed = time.perf_counter() - t0
    a, b = tmp_path / "single", tmp_path / "ddp"
    ra, rb = load_run(a), load_run(b)
    assert ra.checkpoint_epochs == rb.checkpoint_epochs and len(ra.checkpoint_epochs) >= 4
    assert ra.meta["world_size"] == 1 and rb.meta["world_size"] == 2
    for la, lb in zip(ra.log, rb.log, strict=True):
        for k, v in la.items():
            if k in ("seconds", "eval_seconds"):
                continue
            if isinstance(v, float):
                assert lb[k] == pytest.approx(v, rel=1e-6, abs=1e-9), (la["epoch"], k)
            else:
                assert lb[k] == v, (la["epoch"], k)
    for ep in ra.checkpoint_epochs:
        with np.load(a / "checkpoints" / f"epoch_{ep:04d}.npz") as fa, \
                np.load(b / "checkpoints" / f"epoch_{ep:04d}.npz") as fb:
            assert sorted(fa.files) == sorted(fb.files)
            for k in fa.files:
                if "labels" in k or k in ("epoch", "onset_epoch", "split"):
                    np.testing.assert_array_equal(fa[k], fb[k])
                else:
                    np.testing.assert_allclose(fa[k], fb[k], atol=1e-6, rtol=0)
        ca = json.loads((a / "checkpoints" / f"complexity_{ep:04d}.json").read_text())
        cb = json.loads((b / "checkpoints" / f"complexity_{ep:04d}.json").read_text())
        assert cb["rademacher"] == pytest.approx(ca["rademacher"], rel=1e-9)
    sa = json.loads((a / "summary.json").read_text())
    sb = json.loads((b / "summary.json").read_text())
    assert sa == sb
    print(f"DDP gloo test: 3 processes in {elapsed:.1f}s")
