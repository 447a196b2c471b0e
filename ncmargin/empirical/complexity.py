"""Layer norms and the spectral complexity of a whole network (claim 2, docs/theory.md §5).

Per weight layer A_i (Bartlett, Foster & Telgarsky 2017, Thm 1.1, reference matrices 0):

- spectral norm ||A_i||_σ of the *operator* the layer applies:
  * ``nn.Linear`` (and the fixed-ETF head): ``torch.linalg.matrix_norm(W, ord=2)`` (exact, via SVD);
  * ``nn.Conv2d``: power iteration on AᵀA where A is the convolution at the layer's actual input spatial
    size (captured by a forward hook) and Aᵀ its adjoint, ``conv_transpose2d`` with the matching
    ``output_padding`` (autograd's vector-Jacobian product for string paddings and non-zero padding
    modes). The estimate increases monotonically to σ_max from below; it stops when the relative change
    of σ² is below ``tol`` or after ``n_iter`` iterations (float64, default 1000: a small CNN's conv
    layer with σ₂/σ₁ = 0.995 needed 358–553 iterations). Hitting the cap is reported, not silent:
    a ``RuntimeWarning`` and ``converged: False`` in the layer's entry (``layer_norms``);
  * BatchNorm in eval mode: the diagonal map x_c ↦ γ_c x_c / sqrt(var_c + eps) (the shift is not part of
    the linear operator): ||·||_σ = max_c |γ_c|/sqrt(var_c + eps). BatchNorm is always analysed with its
    running statistics (eval semantics), whatever the model's mode.
- (2,1) norm ||A_iᵀ||_{2,1} (sum over output units of the 2-norm of their incoming weights):
  * Linear: Σ_rows ||W_row||_2;
  * Conv2d **[our form]**: the kernel reshaped to (out, in·k_h·k_w), Σ_rows ||row||_2. This is the norm of
    one output position; the full conv operator's ||Aᵀ||_{2,1} is at most ``out_positions`` times it
    (each output unit's incoming weights are a subset of its channel's kernel); ``out_positions`` is
    reported so a caller can rescale;
  * BatchNorm: Σ_c |γ_c|/sqrt(var_c + eps) (per channel, same convention as conv).
- parameter-free layers are Lipschitz factors ρ: ReLU-type activations, Flatten, Identity, Dropout (eval)
  1; MaxPool2d ≤ ceil(k/s) per spatial axis product, square-rooted (each input lies in at most
  Π ceil(k/s) windows); average pools are linear: exact norm by power iteration.

Network treatment **[our form]** (``network_spectral_complexity``): a container's Lipschitz bound is the
product of its children's bounds in registration order (a chain), except a *residual block* — any module
with a child named ``shortcut`` or ``downsample`` — whose bound is
``L(shortcut) + Π L(other children)`` (x ↦ σ(F(x) + S(x)) with 1-Lipschitz σ; an empty shortcut is the
identity, L = 1). The other children are assumed to be F applied in registration order (true for the
models in ``ncmargin.empirical.models``). The sum term of R_A runs over *every* weight layer (BatchNorm
counted as its own layer, shortcut convs included). For a plain chain this is exactly
``bounds.spectral_complexity`` with ρ_i = 1. Constants and log factors as in ``bounds.spectral_complexity``.

Performance note: on a CPU, tiny convolutions run much faster with ``torch.set_num_threads(1)`` (intra-op
threads only add overhead, badly so under contention); for ResNet-18 on 32×32 inputs run on the model's
device (the power iteration uses the weight's device).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ncmargin.theory.bounds import spectral_complexity

__all__ = [
    "batchnorm_scale",
    "conv2d_spectral_norm",
    "layer_norms",
    "linear_spectral_norm",
    "network_spectral_complexity",
    "spectral_from_input_stats",
]

_UNIT_LIPSCHITZ = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.Flatten,
                   nn.Dropout, nn.Softplus, nn.SiLU, nn.ReLU6)
_RESIDUAL_NAMES = ("shortcut", "downsample")


def linear_spectral_norm(weight: torch.Tensor) -> float:
    """||W||_σ of a (out, in) matrix: ``torch.linalg.matrix_norm(W, ord=2)`` in float64."""
    return float(torch.linalg.matrix_norm(weight.detach().to(torch.float64), ord=2))


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


N_ITER = 1000  # default power-iteration cap (module docstring)


def _power_iteration(op, adj, x: torch.Tensor, n_iter: int, tol: float) -> tuple[float, int, bool]:
    """(σ estimate, iterations, converged): converged is False when ``n_iter`` iterations ran without the
    relative change of σ² falling to ``tol``."""
    x = x / x.norm()
    prev = 0.0
    s2 = 0.0
    it = 0
    converged = False
    for it in range(1, int(n_iter) + 1):
        y = op(x)
        s2 = float((y * y).sum())
        if s2 == 0.0:
            return 0.0, it, True
        z = adj(y)
        nz = z.norm()
        if nz == 0:
            return 0.0, it, True
        x = z / nz
        if abs(s2 - prev) <= tol * s2:
            converged = True
            break
        prev = s2
    y = op(x)
    return math.sqrt(max(float((y * y).sum()), s2)), it, converged


def _warn_unconverged(what: str, n_iter: int, tol: float) -> None:
    import warnings

    warnings.warn(f"{what}: power iteration stopped at the cap n_iter={n_iter} before the relative change "
                  f"of sigma^2 fell to tol={tol:g}; the spectral norm is underestimated (it approaches from "
                  "below). Raise n_iter.", RuntimeWarning, stacklevel=3)


def conv2d_spectral_norm(conv: nn.Conv2d, input_hw, *, n_iter: int = N_ITER, tol: float = 1e-7, seed: int = 0,
                         return_iters: bool = False):
    """Operator 2-norm of ``conv`` (bias excluded: it is not part of the linear map) acting on inputs of
    spatial size ``input_hw`` = (H, W), by power iteration on AᵀA in float64 (module docstring).

    Returns σ, or ``(σ, iterations)`` with ``return_iters``. Warns (``RuntimeWarning``) when the
    iteration hit ``n_iter`` without converging."""
    s, it, converged = _conv2d_power(conv, input_hw, n_iter, tol, seed)
    if not converged:
        _warn_unconverged(f"conv2d_spectral_norm({conv}, input {tuple(_pair(input_hw))})", n_iter, tol)
    return (s, it) if return_iters else s


def _conv2d_power(conv: nn.Conv2d, input_hw, n_iter: int, tol: float, seed: int) -> tuple[float, int, bool]:
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f"conv2d_spectral_norm needs an nn.Conv2d, got {type(conv).__name__}.")  # noqa: TRY004 (project rule: bad input is a ValueError)
    Hh, Ww = _pair(input_hw)
    w = conv.weight.detach().to(torch.float64)
    dev = w.device
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    x0 = torch.randn((1, conv.in_channels, Hh, Ww), generator=g, dtype=torch.float64).to(dev)
    stride, dil = _pair(conv.stride), _pair(conv.dilation)
    simple = conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
    if simple:
        pad = _pair(conv.padding)

        def op(x):
            return F.conv2d(x, w, None, stride, pad, dil, conv.groups)

        out_hw = op(x0).shape[-2:]
        k = w.shape[-2:]
        opad = tuple(int(n_in - ((n_out - 1) * s - 2 * p + d * (kk - 1) + 1))
                     for n_in, n_out, s, p, d, kk in zip((Hh, Ww), out_hw, stride, pad, dil, k))

        def adj(yv):
            return F.conv_transpose2d(yv, w, None, stride, pad, opad, conv.groups, dil)
    else:
        def op(x):
            return conv._conv_forward(x, w, None)

        def adj(yv):
            xx = torch.zeros_like(x0, requires_grad=True)
            with torch.enable_grad():
                out = op(xx)
                (gx,) = torch.autograd.grad(out, xx, grad_outputs=yv)
            return gx

    with torch.no_grad() if simple else torch.enable_grad():
        return _power_iteration(op, adj, x0, n_iter, tol)


def _linear_operator_norm(module: nn.Module, in_shape, n_iter: int, tol: float, seed: int
                          ) -> tuple[float, int, bool]:
    """Operator norm of a parameter-free *linear* module (average pools) via autograd power iteration."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    x0 = torch.randn((1, *in_shape), generator=g, dtype=torch.float64)

    def op(x):
        return module(x)

    def adj(yv):
        xx = torch.zeros_like(x0, requires_grad=True)
        with torch.enable_grad():
            (gx,) = torch.autograd.grad(module(xx), xx, grad_outputs=yv)
        return gx

    return _power_iteration(op, adj, x0, n_iter, tol)


def batchnorm_scale(bn: nn.modules.batchnorm._BatchNorm) -> torch.Tensor:
    """Per-channel eval-mode scale γ_c/sqrt(running_var_c + eps) (γ = 1 without affine), float64."""
    if bn.running_var is None:
        raise ValueError(f"{type(bn).__name__} without running statistics (track_running_stats=False) is not a "
                         "fixed linear map; build it with track_running_stats=True.")
    scale = 1.0 / torch.sqrt(bn.running_var.detach().to(torch.float64) + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.detach().to(torch.float64)
    return scale


def _is_linear_head(m: nn.Module) -> bool:
    w = getattr(m, "weight", None)
    return type(m).__name__ == "FixedETFHead" and isinstance(w, torch.Tensor) and w.ndim == 2


def _leaf_entry(name: str, m: nn.Module, in_shape, out_shape, n_iter, tol, seed) -> dict[str, Any] | None:
    base = {"name": name, "type": type(m).__name__, "input_shape": tuple(in_shape) if in_shape else None,
            "output_shape": tuple(out_shape) if out_shape else None}
    if isinstance(m, nn.Linear) or _is_linear_head(m):
        W = m.weight.detach().to(torch.float64)
        return {**base, "kind": "weight", "spectral": linear_spectral_norm(W),
                "l21": float(W.norm(dim=1).sum()), "out_positions": 1, "iterations": None, "converged": True}
    if isinstance(m, nn.Conv2d):
        if in_shape is None:
            raise ValueError(f"layer {name!r} was not reached by the forward pass; pass the model's real "
                             "input_shape (C, H, W).")
        s, it, converged = _conv2d_power(m, in_shape[-2:], n_iter, tol, seed)
        if not converged:
            _warn_unconverged(f"layer {name!r} ({m})", n_iter, tol)
        Wk = m.weight.detach().to(torch.float64).reshape(m.out_channels, -1)
        pos = int(np.prod(out_shape[-2:])) if out_shape is not None else None
        return {**base, "kind": "weight", "spectral": s, "l21": float(Wk.norm(dim=1).sum()),
                "out_positions": pos, "iterations": it, "converged": converged}
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        sc = batchnorm_scale(m).abs()
        pos = int(np.prod(out_shape[1:])) // sc.numel() if out_shape is not None else None
        return {**base, "kind": "weight", "spectral": float(sc.max()), "l21": float(sc.sum()),
                "out_positions": pos, "iterations": None, "converged": True}
    if isinstance(m, _UNIT_LIPSCHITZ) or (isinstance(m, nn.Sequential) and len(m) == 0):
        return {**base, "kind": "lipschitz", "lipschitz": 1.0}
    if isinstance(m, nn.MaxPool2d):
        k, s = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size)
        dil = _pair(m.dilation)
        over = [math.ceil((dd * (kk - 1) + 1) / ss) for kk, ss, dd in zip(k, s, dil)]
        return {**base, "kind": "lipschitz", "lipschitz": math.sqrt(over[0] * over[1])}
    if isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AvgPool1d, nn.AdaptiveAvgPool1d)):
        if in_shape is None:
            raise ValueError(f"layer {name!r} was not reached by the forward pass; pass the real input_shape.")
        L, it, converged = _linear_operator_norm(m, in_shape, n_iter, tol, seed)
        if not converged:
            _warn_unconverged(f"layer {name!r} ({m})", n_iter, tol)
        return {**base, "kind": "lipschitz", "lipschitz": L, "iterations": it, "converged": converged}
    return None


def layer_norms(model: nn.Module, input_shape, *, n_iter: int = N_ITER, tol: float = 1e-7,
                seed: int = 0) -> list[dict[str, Any]]:
    """Per-layer norms of ``model`` for inputs of shape ``input_shape`` (one sample, no batch axis).

    Runs one forward pass (eval mode, no grad; the mode is restored) on a zero input to capture every
    leaf module's input/output shape, then returns, in module order, one dict per leaf:
    weight layers (Linear, fixed-ETF head, Conv2d, BatchNorm) ``{"name", "type", "kind": "weight",
    "spectral", "l21", "out_positions", "iterations", "converged", "input_shape", "output_shape"}``;
    Lipschitz layers (activations, pools) ``{"kind": "lipschitz", "lipschitz", ...}`` (average pools also
    ``"iterations"``, ``"converged"``). ``converged`` is False where the power iteration hit ``n_iter``
    (a ``RuntimeWarning`` names the layer); exact layers have ``iterations`` None, ``converged`` True. Raises ValueError on a leaf module
    with parameters of an unsupported type (e.g. LayerNorm), naming it.
    """
    shapes: dict[str, tuple] = {}
    hooks = []
    for n, m in model.named_modules():
        if len(list(m.children())) == 0:
            def hook(mod, inp, out, n=n):
                shapes[n] = (tuple(inp[0].shape[1:]), tuple(out.shape[1:]))
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    p = next(model.parameters(), None)
    dev = p.device if p is not None else torch.device("cpu")
    dt = p.dtype if p is not None else torch.float32
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *tuple(int(s) for s in input_shape)), device=dev, dtype=dt))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    out = []
    for n, m in model.named_modules():
        if len(list(m.children())):
            continue  # containers: handled by the network treatment
        ins, outs = shapes.get(n, (None, None))
        e = _leaf_entry(n, m, ins, outs, n_iter, tol, seed)
        if e is None:
            if any(True for _ in m.parameters(recurse=False)):
                raise ValueError(f"layer {n!r} ({type(m).__name__}) has parameters but no supported norm; "
                                 "supported: Linear, Conv2d, BatchNorm, fixed-ETF head.")
            raise ValueError(f"layer {n!r} ({type(m).__name__}) has no known Lipschitz constant; "
                             "supported: ReLU-type activations, Flatten, Dropout, Max/Avg pools.")
        out.append(e)
    return out


def _lipschitz_tree(m: nn.Module, prefix: str, by_name: dict[str, dict]) -> float:
    """Lipschitz bound of module ``m`` by the [our form] treatment of the module docstring."""
    kids = list(m.named_children())
    if not kids:
        e = by_name[prefix]
        return e["spectral"] if e["kind"] == "weight" else e["lipschitz"]
    full = lambda n: f"{prefix}.{n}" if prefix else n
    res = [(n, c) for n, c in kids if n in _RESIDUAL_NAMES]
    if res:
        (rn, rc), = res[:1]
        branch = 1.0
        for n, c in kids:
            if n not in _RESIDUAL_NAMES:
                branch *= _lipschitz_tree(c, full(n), by_name)
        return _lipschitz_tree(rc, full(rn), by_name) + branch
    L = 1.0
    for n, c in kids:
        L *= _lipschitz_tree(c, full(n), by_name)
    return L


def network_spectral_complexity(model: nn.Module, X, *, input_shape=None, n_iter: int = N_ITER,
                                tol: float = 1e-7, seed: int = 0) -> dict[str, Any]:
    """Spectral complexity R_A and the Rademacher-style term ||X||_F·R_A/N of ``model`` on training inputs
    ``X`` (N, *input_shape) (Bartlett et al. 2017, Thm 1.1; network treatment [our form], module docstring).

    Returns ``{"R_A", "lipschitz_bound", "spectral_product", "sum_term", "rademacher", "N", "input_norm_F",
    "n_weight_layers", "layers", "converged", "treatment"}`` (``converged``: every power iteration
    converged, see ``layer_norms``): ``lipschitz_bound`` is the residual-aware product used in
    R_A; ``spectral_product`` the plain product of all weight layers' spectral norms (the chain reading).
    Divide margins by ``lipschitz_bound`` for the normalized-margin check (``bounds.normalized_margins``).
    """
    Xt = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
    if Xt.ndim < 2 or Xt.shape[0] < 1:
        raise ValueError(f"X must be the (N, ...) training inputs, got shape {tuple(Xt.shape)}.")
    if not torch.isfinite(Xt).all():
        raise ValueError("X contains NaN/Inf; pass the finite training inputs.")
    N = int(Xt.shape[0])
    shape = tuple(Xt.shape[1:]) if input_shape is None else tuple(input_shape)
    xF = float(Xt.detach().to(torch.float64).reshape(N, -1).norm())
    layers = layer_norms(model, shape, n_iter=n_iter, tol=tol, seed=seed)
    by_name = {e["name"]: e for e in layers}
    w = [e for e in layers if e["kind"] == "weight"]
    if not w:
        raise ValueError("the model has no weight layer (Linear/Conv2d/BatchNorm); nothing to measure.")
    L = _lipschitz_tree(model, "", by_name)
    s = np.array([e["spectral"] for e in w])
    l21 = np.array([e["l21"] for e in w])
    chain = spectral_complexity(s, l21, xF, N)
    sum_term = chain["sum_term"]
    RA = L * sum_term if L > 0 else 0.0
    return {"R_A": float(RA), "lipschitz_bound": float(L), "spectral_product": chain["spectral_product"],
            "sum_term": sum_term, "rademacher": float(xF * RA / N), "N": N, "input_norm_F": xF,
            "n_weight_layers": len(w), "layers": layers,
            "converged": all(e.get("converged", True) for e in layers),
            "treatment": "chain in registration order; residual blocks L(shortcut) + prod L(branch) [our form]"}


def spectral_from_input_stats(net, *, input_norm_F: float, n: int, input_shape) -> dict:
    """``network_spectral_complexity`` of ``net`` (Bartlett et al. 2017; docs/theory.md §5) for N = ``n``
    train inputs of Frobenius norm ``input_norm_F``. R_A depends on the weights only; ||X||_F and N enter
    through rademacher = ||X||_F R_A / N, so a one-row stand-in with the same Frobenius norm gives R_A."""
    if not n or not input_shape:
        raise ValueError("no train inputs were seen (N and the input shape are unknown)")
    x1 = torch.zeros((1, *input_shape), dtype=torch.float64)
    x1.view(-1)[0] = float(input_norm_F)
    sc = dict(network_spectral_complexity(net, x1, input_shape=tuple(input_shape)))
    sc.update(N=int(n), input_norm_F=float(input_norm_F), rademacher=float(input_norm_F) * sc["R_A"] / int(n))
    return sc
