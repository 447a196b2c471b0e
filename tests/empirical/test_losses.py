import math

import torch
import torch.nn.functional as F

from ncmargin.empirical.losses import stable_cross_entropy


def test_matches_torch_cross_entropy_and_gradient():
    g = torch.Generator().manual_seed(0)
    z = (3 * torch.randn(64, 7, generator=g, dtype=torch.float64)).requires_grad_()
    y = torch.randint(0, 7, (64,), generator=g)
    a, b = stable_cross_entropy(z, y), F.cross_entropy(z, y)
    # float64, O(K) terms per sample: agreement to a few ulps of an O(1) value
    assert abs(a.item() - b.item()) < 1e-14
    ga, = torch.autograd.grad(a, z)
    gb, = torch.autograd.grad(b, z)
    assert torch.allclose(ga, gb, rtol=0, atol=1e-15)


def test_tiny_loss_stays_exact_where_torch_rounds_to_zero():
    # margin m for both wrong classes: CE = log(1 + 2 e^{-m}) = 2 e^{-m} (1 - e^{-m} + ...) exactly to 1e-17 rel
    for dtype, m in ((torch.float32, 30.0), (torch.float64, 60.0)):
        z = torch.tensor([[m, 0.0, 0.0]], dtype=dtype, requires_grad=True)
        y = torch.tensor([0])
        ref = math.log1p(2 * math.exp(-m))
        assert F.cross_entropy(z, y).item() == 0.0          # the naive form underflows
        loss = stable_cross_entropy(z, y)
        assert abs(loss.item() - ref) <= 4 * torch.finfo(dtype).eps * ref
        loss.backward()
        # d/dz_y = -sum_{k != y} p_k, nonzero (naive: p_y - 1 = 0)
        assert z.grad[0, 0].item() < 0
        assert abs(z.grad[0, 0].item() + 2 * math.exp(-m)) <= 4 * torch.finfo(dtype).eps * 2 * math.exp(-m)


def test_misclassified_branch_and_reductions():
    z = torch.tensor([[0.0, 50.0], [1.0, -1.0]], dtype=torch.float64)
    y = torch.tensor([0, 0])
    per = stable_cross_entropy(z, y, reduction="none")
    assert abs(per[0].item() - (50 + math.log1p(math.exp(-50)))) < 1e-12
    assert abs(per[1].item() - math.log1p(math.exp(-2))) < 1e-15
    assert stable_cross_entropy(z, y, reduction="sum").item() == per.sum().item()
