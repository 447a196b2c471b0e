"""Feature-file I/O (ncmargin.io): round trip, split selection, clear errors, atomic writes."""

import numpy as np
import pytest

from ncmargin.io import atomic_write_json, load_features, read_json, save_features


def test_round_trip_and_split_selection(tmp_path):
    rng = np.random.default_rng(0)
    Htr, Hte = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
    ytr, yte = np.array([0, 1, 2, 0, 1, 2]), np.array([2, 1, 0, 0])
    W, b = rng.normal(size=(3, 3)), rng.normal(size=3)
    path = tmp_path / "f.npz"
    save_features(path, Htr, ytr, W, b, split="train", train_features=Htr, train_labels=ytr,
                  test_features=Hte, test_labels=yte)
    fs = load_features(path)
    assert fs.split == "train" and np.array_equal(fs.features, Htr) and np.array_equal(fs.labels, ytr)
    assert np.array_equal(fs.classifier, W) and np.array_equal(fs.bias, b) and fs.num_classes == 3
    te = load_features(path, split="test")
    assert te.split == "test" and np.array_equal(te.features, Hte) and np.array_equal(te.labels, yte)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such feature file"):
        load_features(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, features=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="missing array 'labels'"):
        load_features(bad)
    bad2 = tmp_path / "bad2.npz"
    np.savez(bad2, features=np.zeros((3, 2)), labels=np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="one label per feature row"):
        load_features(bad2)
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    with pytest.raises(ValueError, match="junk.json: malformed JSON"):
        read_json(junk)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(TypeError):
        atomic_write_json(target, {"x": object()})
    assert not target.exists() and list(tmp_path.iterdir()) == []
    atomic_write_json(target, {"x": np.float64(1.5), "nan": float("nan"), "arr": np.arange(3)})
    assert read_json(target) == {"x": 1.5, "nan": None, "arr": [0, 1, 2]}


def test_plain_arrays_serve_their_own_split_only(tmp_path):
    """The trainer's layout: train split as plain `features` (split="train"), test split prefixed."""
    rng = np.random.default_rng(1)
    Htr, Hte = rng.normal(size=(5, 2)), rng.normal(size=(3, 2))
    path = tmp_path / "ckpt.npz"
    save_features(path, Htr, [0, 1, 0, 1, 0], split="train", test_features=Hte, test_labels=np.array([1, 0, 1]))
    tr = load_features(path, split="train")
    assert tr.split == "train" and np.array_equal(tr.features, Htr)
    assert np.array_equal(load_features(path, split="test").features, Hte)
    only_test = tmp_path / "test_only.npz"
    save_features(only_test, Hte, [1, 0, 1], split="test")
    with pytest.raises(ValueError, match="holds split 'test'"):
        load_features(only_test, split="train")
