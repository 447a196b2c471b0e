import numpy as np
import pytest
import torch

from ncmargin.empirical.config import load_config
from ncmargin.empirical.models import FixedETFHead, build_model, head_arrays
from ncmargin.theory import simplex_etf


@pytest.mark.parametrize("model, shape, d", [("mlp", (1, 8, 8), 16), ("cnn", (1, 8, 8), 16),
                                             ("resnet18", (3, 8, 8), 512)])
def test_features_and_head(model, shape, d):
    cfg = load_config(None, [f"model={model}", "width=16", "depth=2"])
    torch.manual_seed(0)
    m = build_model(cfg, shape, 10).eval()
    x = torch.randn(3, *shape)
    with torch.no_grad():
        h = m.features(x)
        assert h.shape == (3, d)
        assert torch.allclose(m(x), m.head(h))
    W, b = head_arrays(m)
    assert W.shape == (10, d) and b.shape == (10,) and W.dtype == np.float64


def test_cnn_rejects_vectors():
    with pytest.raises(ValueError, match="model=mlp for vector data"):
        build_model(load_config(None, ["model=cnn"]), (6,), 3)


def test_fixed_etf_head_is_a_buffer_with_the_requested_alignment():
    cfg = load_config(None, ["head=etf", "width=12", "depth=1", "etf_perm_seed=3", "etf_rotation_seed=5",
                             "etf_scale=2.0"])
    m = build_model(cfg, (4,), 5)
    assert isinstance(m.head, FixedETFHead)
    assert not any(p is m.head.weight for p in m.parameters())
    assert not m.head.weight.requires_grad and "head.weight" in m.state_dict()
    perm = np.random.default_rng(3).permutation(5)
    M = simplex_etf(5, 12, seed=5, perm=perm) * 2.0
    assert torch.equal(m.head.weight, torch.from_numpy(M).float())
    W, b = head_arrays(m)
    assert b is None
    G = W @ W.T / 4.0                                       # scale 2 -> Gram / 4 is the unit ETF Gram
    assert np.allclose(G, 5 / 4 * (np.eye(5) - 1 / 5), atol=1e-6)   # float32 storage


def test_etf_head_needs_d_ge_K_minus_1():
    with pytest.raises(ValueError, match="d >= K-1"):
        build_model(load_config(None, ["head=etf", "width=3"]), (4,), 10)
