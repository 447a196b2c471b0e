"""The classifier head of any PyTorch network: detection and its (W, b) (docs/recorder.md).

:func:`find_head` finds the final ``nn.Linear`` (or the package's fixed simplex-ETF head) of a user's
network; the Recorder hooks its input as the penultimate features H, and :func:`head_weights` reads its
weight and bias as the classifier (W, b).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["HeadNotFoundError", "RecorderError", "find_head", "head_weights", "is_etf_head", "unwrap_model"]


class RecorderError(ValueError):
    """Bad input to the recorder (the message names the problem and the fix)."""


class HeadNotFoundError(RecorderError):
    """The classifier head could not be identified (missing or ambiguous); the message lists candidates."""


# ------------------------------------------------------------------------------------------------ head

def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module under DDP/DataParallel (``.module``) and ``torch.compile`` (``._orig_mod``)."""
    for _ in range(4):
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            break
    return model


def is_etf_head(m: nn.Module) -> bool:
    from .models import FixedETFHead

    return isinstance(m, FixedETFHead)


def _is_head_like(m: nn.Module) -> bool:
    return isinstance(m, nn.Linear) or is_etf_head(m)


def _describe(name: str, m: nn.Module) -> str:
    W = m.weight
    bias = getattr(m, "bias", None) is not None
    return f"{name or '<model>'}: {type(m).__name__}(in={W.shape[1]}, out={W.shape[0]}, bias={bias})"


def _last_head_in(name: str, m: nn.Module) -> tuple[str, nn.Module] | None:
    """``m`` itself if it is a Linear / fixed-ETF head, else the last such module inside it (VGG-style
    ``classifier = Sequential(..., Linear)``)."""
    if _is_head_like(m):
        return name, m
    found = [(f"{name}.{n}" if name else n, c) for n, c in m.named_modules() if n and _is_head_like(c)]
    return found[-1] if found else None


def find_head(model: nn.Module, head: str | nn.Module | None = None, *, num_classes: int | None = None,
              exact_classes: bool = True, probe: Callable[[], Any] | None = None) -> tuple[str, nn.Module]:
    """``(dotted name, module)`` of the classifier head of ``model`` (DDP/compile wrappers are unwrapped).

    ``head``: a module of ``model`` or its dotted name (``"fc"``, ``"classifier"``, ``"head"``); a container
    stands for the last ``nn.Linear`` / ``FixedETFHead`` inside it. ``None``: automatic — the candidates are
    every ``nn.Linear`` and ``FixedETFHead``, narrowed to ``out_features == num_classes`` when it is known
    (``>=`` with ``exact_classes=False``: K inferred from labels, which may miss classes); if several remain,
    ``probe()`` (one forward pass on a sample batch) keeps the one whose output *is* the model's output
    (without a probe, the single one with ``out_features == num_classes``). Anything else raises
    :class:`HeadNotFoundError` listing the candidates.
    """
    model = unwrap_model(model)
    named = list(model.named_modules())
    if isinstance(head, nn.Module):
        for n, m in named:
            if m is head:
                got = _last_head_in(n, m)
                if got is None:
                    break
                return got
        else:
            raise HeadNotFoundError(f"the head module {type(head).__name__} is not a submodule of the model; "
                                    "pass a module of the model you record (or its dotted name)")
        raise HeadNotFoundError(f"head {type(head).__name__} contains no nn.Linear / FixedETFHead")
    all_heads = [(n, m) for n, m in named if _is_head_like(m)]
    listing = "; ".join(_describe(n, m) for n, m in all_heads) or "none"
    if isinstance(head, str):
        try:
            m = model.get_submodule(head)
        except AttributeError:
            raise HeadNotFoundError(f"head={head!r}: the model has no submodule of that name; Linear layers "
                                    f"present: {listing}") from None
        got = _last_head_in(head, m)
        if got is None:
            raise HeadNotFoundError(f"head={head!r} ({type(m).__name__}) contains no nn.Linear / FixedETFHead; "
                                    f"Linear layers present: {listing}")
        return got
    if head is not None:
        raise HeadNotFoundError(f"head={head!r}: pass None (automatic), a dotted module name or the module")
    if not all_heads:
        raise HeadNotFoundError("the model has no nn.Linear (nor FixedETFHead) layer, so no linear classifier "
                                "head to record; ncmargin needs logits = W h + b with a final linear layer")
    cands = all_heads
    if num_classes is not None:
        # given: out_features == K; inferred from labels (a split may miss the last classes): >= K, and among
        # several, those with == K
        ok = (lambda k: k == num_classes) if exact_classes else (lambda k: k >= num_classes)
        cands = [(n, m) for n, m in all_heads if ok(m.weight.shape[0])]
        if not cands:
            raise HeadNotFoundError(f"no nn.Linear with out_features {'=' if exact_classes else '>='} "
                                    f"{num_classes} (the number of classes) in the model; Linear layers present: "
                                    f"{listing}. Name the head: head='...'")
        eq = [(n, m) for n, m in cands if m.weight.shape[0] == num_classes]
        if len(cands) > 1 and len(eq) == 1 and probe is None:
            return eq[0]
    if len(cands) == 1:
        return cands[0]
    if probe is not None:
        outs: dict[str, Any] = {}
        hooks = [m.register_forward_hook(lambda mod, i, o, n=n: outs.__setitem__(n, o)) for n, m in cands]
        try:
            y = probe()
        finally:
            for h in hooks:
                h.remove()
        hit = [(n, m) for n, m in cands if n in outs and outs[n] is y]
        if len(hit) == 1:
            return hit[0]
    raise HeadNotFoundError("ambiguous head: several layers could be the classifier ("
                            + "; ".join(_describe(n, m) for n, m in cands)
                            + ") and none of them alone produces the model's output; name it, e.g. head="
                            + repr(cands[-1][0]))


def head_weights(head: nn.Module) -> tuple[np.ndarray, np.ndarray | None]:
    """W (K x d) and b (K or None) as float64: exact images of the stored parameters/buffer."""
    W = head.weight.detach().to("cpu", torch.float64).numpy()
    b = getattr(head, "bias", None)
    return W, (None if b is None else b.detach().to("cpu", torch.float64).numpy())
