"""Cross-entropy that stays accurate when it is tiny (the terminal phase).

``F.cross_entropy`` computes ``logsumexp(z) - z_y``. When the true class wins by a margin m, that is
``log(1 + sum_{k != y} e^{z_k - z_y})`` evaluated as ``log`` of a number that rounds to 1, so the loss
becomes exactly 0 once it drops below the unit roundoff (about 6e-8 in float32, 1.1e-16 in float64), and
the gradient entry of the true logit, ``p_y - 1``, becomes 0 as well.

:func:`stable_cross_entropy` uses the identity (standard; [our form] of the implementation)

    CE_i = log1p( sum_{k != y_i} exp(z_ik - z_iy) )           if z_iy >= max_{k != y_i} z_ik
         = logsumexp_k(z_ik) - z_iy                            otherwise,

which is exact in both cases; the first branch is accurate down to the smallest normal number (1e-38 in
float32, 1e-308 in float64) and autograd through it gives the exact gradient ``-sum_{k != y} p_k`` for
the true logit. Both branches are evaluated on safe inputs (clamped exponent), so ``torch.where`` never
propagates inf/NaN gradients.
"""

from __future__ import annotations

import torch

__all__ = ["stable_cross_entropy"]


def stable_cross_entropy(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Per-sample (``reduction="none"``), mean or sum cross-entropy of ``logits`` (N x K) against ``y``
    (N), in the dtype of ``logits``, accurate for tiny losses (module docstring)."""
    if logits.ndim != 2 or y.ndim != 1 or y.shape[0] != logits.shape[0]:
        raise ValueError(f"logits must be N x K and y length N; got {tuple(logits.shape)} and {tuple(y.shape)}")
    zy = logits.gather(1, y[:, None])                               # N x 1
    rel = logits - zy                                               # z_k - z_y, 0 at k = y
    onehot = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, y[:, None], True)
    others = rel.masked_fill(onehot, float("-inf"))
    wins = others.amax(dim=1) <= 0
    small = torch.log1p(torch.exp(rel.clamp(max=0)).masked_fill(onehot, 0.0).sum(dim=1))
    large = torch.logsumexp(rel, dim=1)
    loss = torch.where(wins, small, large)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"reduction={reduction!r}: choose none, mean or sum")
