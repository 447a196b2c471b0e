"""Gradient dynamics of the unconstrained feature model (UFM) under unregularized cross-entropy.

Free variables: classifier W (K x d) and features H (N x d), N = K n, labels ``y_i = i // n`` (balanced).
Objective: ``L(W, H) = (1/N) sum_i CE(W h_i, y_i)`` (no bias, no regularization; docs/theory.md §7, the
setting of Gao et al. 2023, Thm 4.1 / Ji et al. 2022). Everything is float64 (torch), and the loss uses
the stable form of :mod:`ncmargin.empirical.losses`, so both the loss and its gradient stay exact as
L -> 1e-300 (a naive ``logsumexp - z_y`` rounds to 0 below ~1e-16 in float64 and stalls the true-class
gradient).

Step rules (``step``):
- ``"gd"``: plain gradient descent ``theta <- theta - lr * grad L``. Slow: in the terminal phase the
  gradient shrinks like L, and the direction converges like 1/log t.
- ``"loss_adaptive"``: ``theta <- theta - lr / (L * max(1, log(1/L))) * grad L``, the loss-based
  learning-rate schedule of Lyu & Li 2020 ("Gradient descent maximizes the margin of homogeneous neural
  networks", ICLR 2020; step ``eta / (L (log 1/L)^{2 - 2/q})`` for a q-homogeneous model, here q = 2 as the
  logits ``W h`` are 2-homogeneous in (W, H); the ``max(1, .)`` guard for L > 1/e is [our form]). In the
  terminal phase ||grad L|| ~ L ||theta|| and log(1/L) ~ ||theta||^2, so the step length stays bounded
  while the margin grows much faster than under plain GD. The run stops early (and says so in the last
  record, ``stopped``) if the loss underflows float64 (p_min > ~745).

At log-spaced iterations (plus 0 and the last) a record holds: loss (float64), p_min, the UFM-normalized
margin ``p_min / (1/2 (||W||_F^2 + ||H||_F^2))`` (docs/theory.md §2) and its optimum ``1/((K-1) sqrt(n))``
(docs/theory.md §3: the balanced UFM-SVM optimum is (K-1) sqrt(n)), the CE-p_min sandwich bounds and whether
they hold (docs/theory.md §2, ``ncmargin.theory.ce_pmin_sandwich``), NC metrics (``ncmargin.theory.nc_metrics``),
norms and the step size used.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from ncmargin.io import atomic_save_npz, atomic_write_json, atomic_write_text
from ncmargin.store import log_spaced, thread_limits

from .losses import stable_cross_entropy

__all__ = ["UFM_NC_KEYS", "log_steps", "ufm_dynamics"]

UFM_NC_KEYS = ("nc1_topk", "nc2_equinorm_means", "nc2_equiangular_means", "nc2_maxangle_means",
               "nc2_equinorm_classifier", "nc2_equiangular_classifier", "nc3_self_duality", "nc4_ncc_mismatch")


def log_steps(steps: int, num: int) -> list[int]:
    """0, ``num`` log-spaced iterations in [1, steps] (rounded, deduplicated), and ``steps``
    (ncmargin.store.log_spaced)."""
    return log_spaced(steps, num)


def _record(t: int, W: torch.Tensor, H: torch.Tensor, y: torch.Tensor, K: int, n: int, lr_t: float) -> dict:
    from ncmargin import theory

    Wn, Hn, yn = W.detach().numpy(), H.detach().numpy(), y.numpy()
    N = Hn.shape[0]
    loss = float(stable_cross_entropy(H.detach() @ W.detach().T, y))
    pm = theory.p_min(Hn, yn, Wn)
    sw = theory.ce_pmin_sandwich(loss, pm, N, K)
    nc = theory.nc_metrics(Hn, yn, Wn)
    rec = {
        "step": t, "loss": loss, "p_min": pm,
        "normalized_margin": theory.ufm_normalized_margin(Hn, yn, Wn),
        "normalized_margin_optimal": 1.0 / ((K - 1) * math.sqrt(n)),
        "loss_lower": sw["loss_lower"], "loss_upper": sw["loss_upper"],
        "pmin_lower": sw["pmin_lower"], "pmin_upper": sw["pmin_upper"], "sandwich_holds": sw["holds"],
        "norm_W": float(np.linalg.norm(Wn)), "norm_H": float(np.linalg.norm(Hn)), "lr": lr_t,
    }
    rec.update({k: nc.get(k) for k in UFM_NC_KEYS})
    return rec


def ufm_dynamics(K: int, n: int, d: int, steps: int, *, lr: float = 1.0, init_scale: float = 0.1,
                 step: str = "gd", seed: int = 0, num_logs: int = 40, out: str | os.PathLike | None = None,
                 quiet: bool = True) -> list[dict]:
    """Run UFM gradient dynamics (module docstring) and return the log records (list of dicts).

    ``W, H ~ init_scale * N(0, 1)`` entries (seeded). With ``out``, writes ``out/ufm.jsonl`` (one record
    per line), ``out/ufm_config.json`` (the arguments) and ``out/ufm_final.npz`` (a feature file:
    ``features`` = H, ``labels`` = y, ``classifier`` = W, ``split`` = "train"), all atomically.
    """
    for name, v in (("K", K), ("n", n), ("d", d)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name}={v} must be a positive integer")
    if K < 2:
        raise ValueError(f"K={K}: the UFM needs at least 2 classes")
    if steps < 0 or int(steps) != steps:
        raise ValueError(f"steps={steps} must be a non-negative integer")
    if not lr > 0 or not init_scale > 0:
        raise ValueError(f"lr={lr} and init_scale={init_scale} must be > 0")
    if step not in ("gd", "loss_adaptive"):
        raise ValueError(f"step={step!r}: choose gd or loss_adaptive")
    if d < K - 1:
        raise ValueError(f"d={d} < K-1={K - 1}: neural collapse (a simplex ETF) needs d >= K-1; raise --dim")
    with thread_limits(1, blas=False):  # tiny problem: avoid OpenMP spin contention (restored after)
        return _run(K, n, d, int(steps), lr, init_scale, step, seed, num_logs, out, quiet)


def _run(K, n, d, steps, lr, init_scale, step, seed, num_logs, out, quiet):
    g = torch.Generator().manual_seed(int(seed))
    W = (init_scale * torch.randn(K, d, generator=g, dtype=torch.float64)).requires_grad_()
    H = (init_scale * torch.randn(K * n, d, generator=g, dtype=torch.float64)).requires_grad_()
    y = torch.arange(K).repeat_interleave(n)
    when = set(log_steps(int(steps), num_logs))
    records: list[dict] = []
    pbar = None
    if not quiet:
        from tqdm.auto import tqdm
        pbar = tqdm(total=steps, desc="ufm", unit="it")
    t0 = time.perf_counter()
    lr_t = lr
    for t in range(int(steps) + 1):
        loss = stable_cross_entropy(H @ W.T, y)
        L = float(loss.detach())
        if not math.isfinite(L):
            raise ValueError(f"UFM dynamics diverged at step {t} (loss {L}); lower --lr or --init-scale")
        underflow = L == 0.0
        lr_t = lr / (L * max(1.0, math.log(1.0 / L))) if step == "loss_adaptive" and not underflow else lr
        if t in when or underflow:
            rec = _record(t, W, H, y, K, n, lr_t)
            rec["seconds"] = time.perf_counter() - t0
            if underflow:
                rec["stopped"] = "loss underflowed to 0 in float64"
            records.append(rec)
        if t == steps or underflow:
            break
        gW, gH = torch.autograd.grad(loss, (W, H))
        with torch.no_grad():
            W -= lr_t * gW
            H -= lr_t * gH
        if pbar is not None:
            pbar.update(1)
    if pbar is not None:
        pbar.close()
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "ufm_config.json", {"K": K, "n": n, "d": d, "steps": steps, "lr": lr,
                                                     "init_scale": init_scale, "step": step, "seed": seed})
        atomic_write_text(out / "ufm.jsonl", "".join(json.dumps(_jsonable(r), allow_nan=False) + "\n"
                                                     for r in records))
        atomic_save_npz(out / "ufm_final.npz", features=H.detach().numpy(), labels=y.numpy(),
                        classifier=W.detach().numpy(), split=np.asarray("train"))
    return records


def _jsonable(r: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
