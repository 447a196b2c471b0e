"""End-to-end trainer tests on tiny digits runs (a few seconds each on a shared 2-core machine)."""

import json

import numpy as np
import pytest
import torch

from ncmargin.cli import main as cli_main
from ncmargin.empirical.config import load_config
from ncmargin.empirical.train import LOG_KEYS, checkpoint_epochs, lr_at, train
from ncmargin.io import load_features
from ncmargin.store import list_checkpoints, load_run, read_log
from ncmargin.theory import simplex_etf

TINY = ["n_per_class=15", "n_test_per_class=10", "depth=2", "width=32", "batch_size=32", "lr=0.05",
        "num_checkpoints=3", "save_every=3", "quiet=true", "num_threads=1"]
TIMING = ("seconds", "eval_seconds")


def _strip(log):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in log]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The quick preset, shortened to 30 epochs (onset of 100% train accuracy measured at epoch 8)."""
    out = tmp_path_factory.mktemp("quick") / "run"
    train("quick_digits", out, overrides=["epochs=30", "quiet=true", "num_checkpoints=4"])
    return load_run(out)


def test_quick_preset_reaches_terminal_phase(quick_run):
    r = quick_run
    assert r.onset_epoch is not None and r.onset_epoch <= 25
    last = r.log[-1]
    assert last["epoch"] == 30 and last["train_acc"] == 1.0 and last["p_min"] > 0
    assert last["terminal_phase"] and not r.log[0]["terminal_phase"]
    assert last["test_acc"] > 0.9
    assert [x["epoch"] for x in r.log] == list(range(31))
    assert all(set(x) == set(LOG_KEYS) for x in r.log)
    # the onset and the end are checkpoints, beside the log-spaced schedule
    assert {0, r.onset_epoch, 30} <= set(r.checkpoint_epochs)
    assert r.summary["onset_epoch"] == r.onset_epoch and r.summary["complete"]
    meta = r.meta
    assert meta["config"]["epochs"] == 30 and meta["versions"]["torch"] == torch.__version__
    assert meta["data"]["n_train"] + meta["data"]["n_test"] == 1797


def test_accuracy_and_margin_recomputed_from_checkpoint_files(quick_run):
    r = quick_run
    for ep in r.checkpoint_epochs:
        rec = r.log_at(ep)
        path = r.checkpoint_path(ep)
        for split in ("train", "test"):
            fs = load_features(path, split=split)
            Z = fs.features @ fs.classifier.T + fs.bias
            acc = float(np.mean(Z.argmax(1) == fs.labels))
            assert acc == rec[f"{split}_acc"]                  # same float64 numbers, exactly
        fs = load_features(path, split="train")
        Z = fs.features @ fs.classifier.T + fs.bias
        true = Z[np.arange(len(fs.labels)), fs.labels]
        Z[np.arange(len(fs.labels)), fs.labels] = -np.inf
        assert np.min(true - Z.max(1)) == pytest.approx(rec["p_min"], rel=1e-12, abs=1e-12)
        # plain (no split) read gives the train split: a valid feature file (docs/formats.md)
        plain = load_features(path)
        assert plain.split == "train" and np.array_equal(plain.features, fs.features)
        with np.load(path) as d:
            assert int(d["epoch"]) == ep and d["features"].dtype == np.float32 and "train_features" not in d.files


def test_loss_is_float64_and_tracks_float32_saturation(quick_run):
    last = quick_run.log[-1]
    assert 0 < last["loss"] < 1e-2
    # float32 rounding makes many per-sample CEs exactly 0; the float64 loss stays positive
    assert last["saturated_f32"] > 0
    assert last["loss_f32"] <= last["loss"] * 1.01


def test_kill_and_resume_reproduces_the_log(tmp_path):
    full = tmp_path / "full"
    train(None, full, overrides=TINY + ["epochs=8"])
    part = tmp_path / "part"
    # stop after epoch 7 without saving: the last state is epoch 6 (save_every=3), so the resume must
    # drop log line 7 and recompute it
    train(None, part, overrides=TINY + ["epochs=8"], stop_after=7)
    assert [x["epoch"] for x in read_log(part)][-1] == 7
    assert json.loads((part / "summary.json").read_text())["state_epoch"] == 6
    train(None, part, resume=True)
    a, b = _strip(read_log(full)), _strip(read_log(part))
    assert [x["epoch"] for x in b] == list(range(9))
    assert a == b
    assert [c.epoch for c in list_checkpoints(full)] == [c.epoch for c in list_checkpoints(part)]
    for ep, _ in list_checkpoints(full):
        with np.load(full / "checkpoints" / f"epoch_{ep:04d}.npz") as x, \
                np.load(part / "checkpoints" / f"epoch_{ep:04d}.npz") as y:
            assert np.array_equal(x["features"], y["features"])
    with pytest.raises(ValueError, match="already holds a run"):
        train(None, full, overrides=TINY)
    with pytest.raises(ValueError, match=r"differs from the stored run in \['lr'\]"):
        train(None, part, resume=True, overrides=["lr=0.5"])


def test_fixed_etf_head_bit_identical_after_training(tmp_path):
    out = tmp_path / "etf"
    train(None, out, overrides=TINY + ["epochs=3", "head=etf", "etf_perm_seed=1", "etf_rotation_seed=2",
                                       "weight_decay=5e-3", "optimizer=sgd"])
    perm = np.random.default_rng(1).permutation(10)
    M = simplex_etf(10, 32, seed=2, perm=perm).astype(np.float32)
    r = load_run(out)
    first, last = r.checkpoint_epochs[0], r.checkpoint_epochs[-1]
    for ep in (first, last):
        fs = r.features(ep)
        assert np.array_equal(fs.classifier, M.astype(np.float64)) and fs.bias is None
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert torch.equal(state["model"]["head.weight"], torch.from_numpy(M))
    # ... while the body did train
    assert not np.array_equal(r.features(first).features, r.features(last).features)


def test_adam_cosine_and_schedules(tmp_path):
    cfg = load_config(None, ["schedule=step", "milestones=2,4", "gamma=0.5", "lr=1", "epochs=6"])
    assert [lr_at(cfg, e) for e in range(1, 7)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    cfg = load_config(None, ["schedule=cosine", "lr=1", "epochs=4"])
    assert lr_at(cfg, 1) == 1.0 and lr_at(cfg, 3) == pytest.approx(0.5)
    assert checkpoint_epochs(100, 3) == [0, 1, 10, 100]
    out = tmp_path / "adam"
    train(None, out, overrides=TINY + ["epochs=2", "optimizer=adam", "lr=1e-3", "schedule=cosine",
                                       "head_bias=false", "loss_dtype=float64"])
    log = read_log(out)
    assert log[1]["lr"] == 1e-3 and log[2]["lr"] == pytest.approx(5e-4)
    assert load_run(out).features(2).bias is None


def test_missing_dataset_and_unknown_key_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=true"):
        train(None, tmp_path / "c10", overrides=["dataset=cifar10", f"data_root={tmp_path}"])
    with pytest.raises(ValueError, match="unknown config key 'epoch'"):
        train(None, tmp_path / "x", overrides=["epoch=3"])
    assert not (tmp_path / "x").exists()


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = cli_main(["train", "quick_digits", "--set", "epochs=2", "--set", "n_per_class=10", "--out", str(out),
                   "--quiet"])
    assert rc == 0 and "onset of 100% train acc" in capsys.readouterr().out
    assert load_run(out).log[-1]["epoch"] == 2
    rc = cli_main(["train", "quick_digits", "--set", "nope=1", "--out", str(tmp_path / "y")])
    assert rc == 2 and "unknown config key 'nope'" in capsys.readouterr().err
    rc = cli_main(["train", "--resume", str(out), "--set", "epochs=3", "--quiet"])
    r = load_run(out)
    assert rc == 0 and r.log[-1]["epoch"] == 3 and r.summary["complete"]
    assert r.meta["resumes"][0]["from_epoch"] == 2 and r.meta["resumes"][0]["changed"]["epochs"] == [2, 3]
    rc = cli_main(["ufm", "-K", "3", "-n", "2", "-d", "3", "-T", "20", "--quiet", "--out", str(tmp_path / "u")])
    assert rc == 0 and (tmp_path / "u" / "ufm.jsonl").is_file()


def test_deterministic_flag_is_used_and_restored(tmp_path):
    before = torch.are_deterministic_algorithms_enabled()
    train(None, tmp_path / "det", overrides=TINY + ["epochs=1", "deterministic=true"])
    assert torch.are_deterministic_algorithms_enabled() == before
    assert load_run(tmp_path / "det").meta["config"]["deterministic"] is True


@pytest.mark.parametrize("extra", [["dataset=synthetic", "syn_classes=4", "syn_dim=8", "syn_per_class=40", "n_test_per_class=5",
                                    "syn_groups=2"],
                                   ["model=cnn", "width=16", "n_per_class=5", "n_test_per_class=3"]])
def test_other_datasets_and_models_train(tmp_path, extra):
    out = tmp_path / "run"
    train(None, out, overrides=TINY + ["epochs=2"] + extra)
    r = load_run(out)
    assert [x["epoch"] for x in r.log] == [0, 1, 2]
    fs = r.features(2, split="test")
    assert fs.features.shape[1] == r.meta["model"]["feature_dim"] and np.isfinite(fs.features).all()


@pytest.mark.slow
def test_full_quick_preset_goes_deep_into_the_terminal_phase(tmp_path):
    """The whole quick preset (600 epochs; ~2 min on 2 busy cores): measured onset at epoch 8, final
    float64 loss 6.8e-6 with 960 of 1438 per-sample float32 losses rounded to exactly 0, p_min 8.55."""
    train("quick_digits", tmp_path / "q", overrides=["quiet=true"])
    r = load_run(tmp_path / "q")
    last = r.log[-1]
    assert r.onset_epoch is not None and r.onset_epoch <= 20
    assert last["train_acc"] == 1.0 and last["loss"] < 1e-4 and last["saturated_f32"] > 100
    p = [x["p_min"] for x in r.log if x["epoch"] >= r.onset_epoch]
    assert p[-1] > 2 * p[0] > 0


def test_resume_refuses_a_corrupt_log_and_leaves_it_alone(tmp_path):
    """A malformed line in log.jsonl stops --resume with file:line; the log is not rewritten from it."""
    from ncmargin.store import LogError

    run = tmp_path / "r"
    train(None, run, overrides=TINY + ["epochs=6"], stop_after=4)
    lines = (run / "log.jsonl").read_text().splitlines(keepends=True)
    lines[2] = '{"epoch": 2, "loss": \n'
    text = "".join(lines)
    (run / "log.jsonl").write_text(text)
    with pytest.raises(LogError, match=r"log\.jsonl:3: not valid JSON"):
        train(None, run, resume=True)
    assert (run / "log.jsonl").read_text() == text
