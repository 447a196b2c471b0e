"""Claim 1a: gradient descent on the unregularized cross-entropy over W alone, on fixed features.

Soudry, Hoffer, Nacson, Gunasekar & Srebro 2018 ("The implicit bias of gradient descent on separable
data", JMLR 19, Thm 7 multi-class): on separable features H, GD with a small enough constant step on
the unregularized CE ``L(W) = (1/N) Σ_i [logsumexp_k (W h_i)_k − (W h_i)_{y_i}]`` satisfies
``W(t)/||W(t)||_F → W*/||W*||_F``, W* the hard-margin multi-class SVM (docs/theory.md §3), with the angle
decaying only like 1/log t. The "normalized" schedule (aggressive steps that compensate the vanishing
gradient, Nacson, Lee, Gunasekar, Savarese, Srebro & Soudry 2019, "Convergence of gradient descent on
separable data", AISTATS) converges faster; **[our form]** of it:
``W ← W − lr·∇L(W) / (L(W)·sqrt(t+1))`` (the step length stays ≤ √2·lr·r/sqrt(t+1), r = max_i ||h_i||,
because ||∇L||_F ≤ √2·r·L for the CE).

Numerics (float64, numpy, single-threaded BLAS by default — small matmuls do not gain from threads and
lose under contention): logits are kept as a K × N array; the softmax is shifted by the true-class logit,
and the true-class gradient entry ``p_y − 1 = −Σ_{k≠y} p_k`` is computed from the other classes' terms,
never as a difference with 1, so the gradient stays exact (relative precision) when the loss is ~1e-300.
The per-record loss is ``m + log1p(Σ_{k≠y} e^{s_k − m} + expm1(−m))`` with s = z − z_y, m = max(0, max s):
exact for tiny losses.

Bias: ``bias=True`` appends a constant feature 1 (docs/theory.md §3; the bias is then regularized like W, as
in ``multiclass_svm(..., bias=True)``); W_star must then be the augmented (K, d+1) ``[W* | b*]``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ncmargin.store import log_spaced, thread_limits
from ncmargin.theory.checks import check_features, check_matrix
from ncmargin.theory.compare import angle_deg
from ncmargin.theory.margins import margins as _margins

__all__ = ["ce_gd_fixed_features", "default_lr", "record_steps"]


def record_steps(steps: int, n: int = 60) -> np.ndarray:
    """Log-spaced unique integer steps in [0, steps], always including 0, 1 and ``steps``."""
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}.")
    return np.asarray(log_spaced(steps, max(int(n), 2), floor=True, start=(0, 1)), dtype=np.int64)


def default_lr(H: np.ndarray, schedule: str = "constant") -> float:
    """Default step size. ``constant``: 1/β with β = ||H||_2²/(2N), an upper bound of the smoothness of
    the CE in W (the logit Hessian diag(p) − ppᵀ has norm ≤ 1/2), so GD is stable (Soudry et al. 2018
    need lr < 2/β). ``normalized``: 1/r with r = max_i ||h_i||, so the first step length is ≤ √2."""
    if schedule == "constant":
        s = np.linalg.norm(H, 2)
        return float(2.0 * H.shape[0] / s ** 2)
    return float(1.0 / np.linalg.norm(H, axis=1).max())


def ce_gd_fixed_features(H, y, *, W_star=None, steps: int = 100_000, lr: float | None = None,
                         schedule: str = "constant", record=None, W0=None, seed: int = 0,
                         bias: bool = False, threads: int | None = 1) -> list[dict[str, Any]]:
    """Gradient descent on the unregularized CE over W on fixed features (claim 1a, module docstring).

    Parameters
    ----------
    H, y : (N, d) features, (N,) labels in 0..K-1 (every class present).
    W_star : (K, d) SVM solution (``multiclass_svm(H, y).W``; with ``bias=True`` the augmented (K, d+1)
        ``[W* | b*]``), or None (then ``angle_deg`` and ``margin_ratio`` are NaN).
    steps : number of GD steps.
    lr : step size; default :func:`default_lr`.
    schedule : "constant" or "normalized" (module docstring).
    record : steps at which to record (default :func:`record_steps` (60 log-spaced)).
    W0 : initial classifier (K, d[+1]); None = zeros; "random" = N(0, 1e-2) entries from ``seed``.
    bias : append a constant feature 1.
    threads : BLAS threads during the loop (None = leave as is).

    Returns a list of dicts, one per recorded step: ``step, loss, p_min, normalized_margin
    (p_min/(||W||_F·max_i||h_i||)), angle_deg (to W_star), margin_ratio (p_min·||W*||_F/||W||_F),
    norm_W, lr (effective step at that step), seconds`` (wall time since start). At a zero W (step 0 of
    the zero init) the angle and normalized quantities are NaN.
    """
    H, y, K = check_features(H, y)
    if bias:
        H = np.column_stack([H, np.ones(H.shape[0])])
    N, d = H.shape
    if schedule not in ("constant", "normalized"):
        raise ValueError(f"schedule must be 'constant' or 'normalized', got {schedule!r}.")
    Ws = None
    if W_star is not None:
        Ws = check_matrix(W_star, "W_star", shape=(K, d))
        if not np.any(Ws):
            raise ValueError("W_star is zero; pass the SVM solution (multiclass_svm(H, y).W).")
    if W0 is None:
        W = np.zeros((K, d))
    elif isinstance(W0, str):
        if W0 != "random":
            raise ValueError(f"W0 must be None, 'random' or a (K, d) array, got {W0!r}.")
        W = 1e-2 * np.random.default_rng(seed).normal(size=(K, d))
    else:
        W = check_matrix(W0, "W0", shape=(K, d)).copy()
    lr = default_lr(H, schedule) if lr is None else float(lr)
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite positive step size, got {lr}.")
    steps = int(steps)
    rec = record_steps(steps) if record is None else np.unique(np.asarray(record, dtype=np.int64))
    if rec.size == 0 or rec.min() < 0 or rec.max() > steps:
        raise ValueError(f"record steps must lie in [0, {steps}].")
    rec_set = {int(s) for s in rec}

    r_max = float(np.linalg.norm(H, axis=1).max())
    nWs = float(np.linalg.norm(Ws)) if Ws is not None else float("nan")
    HT = np.ascontiguousarray(H.T)                  # (d, N)
    flat = y * N + np.arange(N)                     # positions of the true class in a (K, N) array
    Z = np.empty((K, N))
    G = np.empty((K, d))
    records: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    def loss_and_grad(W: np.ndarray, want_loss: bool):
        np.matmul(W, HT, out=Z)                      # logits z_k(h_i), (K, N)
        zy = Z.ravel()[flat]
        np.subtract(Z, zy, out=Z)                    # s = z − z_y (true entry exactly 0)
        m = Z.max(axis=0)                            # ≥ 0
        np.subtract(Z, m, out=Z)
        np.exp(Z, out=Z)                             # e^{s_k − m}; true entry e^{−m}
        Z.ravel()[flat] = 0.0
        o = Z.sum(axis=0)                            # Σ_{k≠y} e^{s_k − m}
        denom = o + np.exp(-m)
        np.divide(Z, denom, out=Z)                   # p_k for k ≠ y
        Z.ravel()[flat] = -o / denom                 # p_y − 1 = −Σ_{k≠y} p_k (exact)
        np.matmul(Z, H, out=G)
        np.divide(G, N, out=G)
        loss = float(np.mean(m + np.log1p(o + np.expm1(-m)))) if want_loss else float("nan")
        return loss, G

    def make_record(step: int, loss: float, eff_lr: float) -> dict[str, Any]:
        p = float(_margins(H, y, W).min())
        nW = float(np.linalg.norm(W))
        ok = nW > 0
        return {"step": step, "loss": loss, "p_min": p,
                "normalized_margin": p / (nW * r_max) if ok else float("nan"),
                "angle_deg": angle_deg(W, Ws) if (ok and Ws is not None) else float("nan"),
                "margin_ratio": p / nW * nWs if ok else float("nan"),
                "norm_W": nW, "lr": eff_lr, "seconds": time.perf_counter() - t0}

    with thread_limits(threads, torch=False), np.errstate(under="ignore"):
        for t in range(steps + 1):
            want = t in rec_set
            if schedule == "constant":
                loss, g = loss_and_grad(W, want)
                eff = lr
            else:
                loss, g = loss_and_grad(W, True)
                eff = lr / (loss * np.sqrt(t + 1.0)) if loss > 0 else 0.0
            if want:
                records.append(make_record(t, loss, eff))
            if t == steps:
                break
            if not np.isfinite(eff) or eff == 0.0:
                raise ValueError(f"GD stopped at step {t}: the loss underflowed to {loss} (normalized "
                                 "schedule needs L > 0); use fewer steps or a smaller lr.")
            W -= eff * g
    return records
