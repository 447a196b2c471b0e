"""Models: MLP, a small CNN and ResNet-18 (CIFAR variant), each ``features(x)`` + ``head``.

Every model is a :class:`FeatureClassifier`: ``features(x)`` returns the penultimate features h (N x d,
the input of the head) and ``head`` is either a learned ``nn.Linear(d, K, bias=...)`` or a
:class:`FixedETFHead` (a simplex ETF stored as a buffer: never a parameter, so no optimizer or weight
decay ever touches it). ``forward(x) = head(features(x))``. The head weight has the PyTorch
``Linear.weight`` layout K x d, the classifier W of docs/theory.md §2.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["MLP", "FeatureClassifier", "FixedETFHead", "ResNet18", "SmallCNN", "build_model", "head_arrays"]


class FixedETFHead(nn.Module):
    """Fixed simplex-ETF classifier ``logits = scale * h @ M.T`` (Yang et al. 2022; docs/theory.md §1, §8).

    ``M = ncmargin.theory.simplex_etf(K, d, seed=rotation_seed, perm=perm)``: rows are the vertices and
    class y gets vertex ``perm[y]`` (the alignment). ``M`` is a buffer (``requires_grad=False``), so it
    is saved in the state dict but never updated, with or without weight decay. No bias.
    """

    def __init__(self, d: int, K: int, *, perm=None, rotation_seed=None, scale: float = 1.0):
        super().__init__()
        from ncmargin.theory import simplex_etf

        M = simplex_etf(K, d, seed=rotation_seed, perm=perm) * float(scale)
        self.register_buffer("weight", torch.from_numpy(np.ascontiguousarray(M)).to(torch.float32))
        self.bias = None
        self.perm = None if perm is None else [int(p) for p in perm]
        self.rotation_seed = rotation_seed
        self.scale = float(scale)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.weight.to(h.dtype).T

    def extra_repr(self) -> str:
        K, d = self.weight.shape
        return f"K={K}, d={d}, perm={self.perm}, rotation_seed={self.rotation_seed}, scale={self.scale}"


class FeatureClassifier(nn.Module):
    """Base: subclasses define ``self.body`` (x -> features) and ``feature_dim``; ``head`` is attached."""

    feature_dim: int

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MLP(FeatureClassifier):
    """Flatten, then ``depth`` blocks of Linear(width) [+ BatchNorm1d] + ReLU; features = last block's output."""

    def __init__(self, input_shape, depth: int, width: int, batchnorm: bool = False):
        super().__init__()
        d_in = int(np.prod(input_shape))
        layers: list[nn.Module] = [nn.Flatten()]
        for _ in range(depth):
            layers.append(nn.Linear(d_in, width))
            if batchnorm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.ReLU())
            d_in = width
        self.body = nn.Sequential(*layers)
        self.feature_dim = width


class SmallCNN(FeatureClassifier):
    """Three 3x3 conv-BN-ReLU stages (c, 2c, 4c channels with c = 32; max-pool after the first two),
    global average pool, then Linear(4c -> width) + ReLU: features have dimension ``width``."""

    def __init__(self, input_shape, width: int, channels: int = 32):
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"model=cnn needs image inputs C x H x W, got input shape {tuple(input_shape)}; "
                             "use model=mlp for vector data (e.g. dataset=synthetic)")
        c_in, c = int(input_shape[0]), channels

        def block(a, b):
            return [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]

        self.body = nn.Sequential(*block(c_in, c), nn.MaxPool2d(2, ceil_mode=True), *block(c, 2 * c),
                                  nn.MaxPool2d(2, ceil_mode=True), *block(2 * c, 4 * c),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * c, width), nn.ReLU())
        self.feature_dim = width


class _BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(FeatureClassifier):
    """ResNet-18, CIFAR variant (He et al. 2016; 3x3 stem, stride 1, no max-pool; as in Papyan et al.
    2020's CIFAR experiments): stages of 2 basic blocks with 64/128/256/512 channels, global average pool;
    features have dimension 512."""

    def __init__(self, input_shape):
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"model=resnet18 needs image inputs C x H x W, got {tuple(input_shape)}")
        layers: list[nn.Module] = [nn.Conv2d(int(input_shape[0]), 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64),
                                   nn.ReLU()]
        c_in = 64
        for c, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [_BasicBlock(c_in, c, stride), _BasicBlock(c, c, 1)]
            c_in = c
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.feature_dim = 512


def etf_alignment(cfg, K: int):
    """(perm, rotation_seed) of a fixed-ETF head from the config: ``etf_perm_seed = -1`` is the identity,
    otherwise ``np.random.default_rng(etf_perm_seed).permutation(K)``; ``etf_rotation_seed = -1`` the
    canonical orientation."""
    perm = None if cfg.etf_perm_seed < 0 else np.random.default_rng(cfg.etf_perm_seed).permutation(K)
    rot = None if cfg.etf_rotation_seed < 0 else int(cfg.etf_rotation_seed)
    return perm, rot


def build_model(cfg, input_shape, K: int) -> FeatureClassifier:
    """Model from a TrainConfig; parameters are initialised from the current torch RNG state."""
    if cfg.model == "mlp":
        model: FeatureClassifier = MLP(input_shape, cfg.depth, cfg.width, cfg.batchnorm)
    elif cfg.model == "cnn":
        model = SmallCNN(input_shape, cfg.width)
    elif cfg.model == "resnet18":
        model = ResNet18(input_shape)
    else:
        raise ValueError(f"model={cfg.model!r}: choose mlp, cnn or resnet18")
    d = model.feature_dim
    if cfg.head == "linear":
        model.head = nn.Linear(d, K, bias=cfg.head_bias)
    elif cfg.head == "etf":
        if d < K - 1:
            raise ValueError(f"head=etf needs feature dimension d >= K-1 = {K - 1}, got d = {d}; "
                             f"raise width to >= {K - 1}")
        perm, rot = etf_alignment(cfg, K)
        model.head = FixedETFHead(d, K, perm=perm, rotation_seed=rot, scale=cfg.etf_scale)
    else:
        raise ValueError(f"head={cfg.head!r}: choose linear or etf")
    return model


def head_arrays(model: nn.Module) -> tuple[np.ndarray, np.ndarray | None]:
    """Classifier W (K x d) and bias (K or None) of a model's head as float64 numpy arrays."""
    m = model.module if hasattr(model, "module") else model
    m = getattr(m, "_orig_mod", m)
    W = m.head.weight.detach().to("cpu", torch.float64).numpy()
    b = m.head.bias
    return W, (None if b is None else b.detach().to("cpu", torch.float64).numpy())
