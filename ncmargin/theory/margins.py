"""Margins, cross-entropy and the CE--p_min sandwich (docs/theory.md §2).

Notation: features H (N x d), labels y in 0..K-1, classifier W (K x d, rows w_k), optional bias b (K).
Logits are ``H @ W.T + b``. Everything is float64 and vectorized; large N is processed in row chunks
so that no N x K temporary exceeds about 32 MiB beyond the output.
"""

from __future__ import annotations

import numpy as np

from .checks import check_classifier, check_features, check_matrix, check_tolerance, row_slices

__all__ = [
    "ce_loss",
    "ce_pmin_sandwich",
    "log_expm1",
    "logits",
    "margins",
    "normalized_margin",
    "normalized_pairwise_margins",
    "p_min",
    "pairwise_margins",
    "ufm_normalized_margin",
]

_CHUNK_ELEMS = 1 << 22  # float64 elements per N x K temporary (32 MiB); read at call time (tests shrink it)


def _prepare(H, y, W, b):
    W_arr = np.asarray(W)
    if W_arr.ndim != 2:
        raise ValueError(f"classifier W must be a 2-D array (K x d), got shape {W_arr.shape}; "
                         f"use the PyTorch Linear.weight layout (one row per class).")
    K = W_arr.shape[0]
    H, y, K = check_features(H, y, K, allow_empty_class=True)
    W, b = check_classifier(W_arr, b, K, H.shape[1])
    return H, y, W, b, K


def _logits(H, W, b):
    Z = H @ W.T
    if b is not None:
        Z += b
    return Z


def logits(H, W, b=None) -> np.ndarray:
    """Logits ``H @ W.T + b`` (N x K) in float64 (docs/theory.md §2)."""
    W_arr = np.asarray(W)
    if W_arr.ndim != 2:
        raise ValueError(f"classifier W must be a 2-D array (K x d), got shape {W_arr.shape}.")
    H = check_matrix(H, "features H", shape=(None, W_arr.shape[1]))
    W, b = check_classifier(W_arr, b, W_arr.shape[0], H.shape[1])
    return _logits(H, W, b)


def _margin_chunk(Z, yc):
    idx = np.arange(Z.shape[0])
    true = Z[idx, yc].copy()
    Z[idx, yc] = -np.inf
    return true - Z.max(axis=1)


def margins(H, y, W, b=None) -> np.ndarray:
    """Per-sample margins ``p_i = (w_{y_i} - max_{k != y_i} w_k) . h_i`` (+ ``b_{y_i} - b_k`` with a
    bias), i.e. ``z_{i,y_i} - max_{k != y_i} z_{i,k}`` for the logits z (docs/theory.md §2; Gao et al. 2023,
    Sec. 3). p_i > 0 iff sample i is classified correctly with no tie."""
    H, y, W, b, K = _prepare(H, y, W, b)
    out = np.empty(H.shape[0], dtype=np.float64)
    for sl in row_slices(H.shape[0], K, _CHUNK_ELEMS):
        out[sl] = _margin_chunk(_logits(H[sl], W, b), y[sl])
    return out


def p_min(H, y, W, b=None) -> float:
    """Minimum margin ``p_min = min_i p_i`` (docs/theory.md §2). p_min > 0 iff 100% training accuracy."""
    return float(margins(H, y, W, b).min())


def pairwise_margins(H, y, W, b=None) -> np.ndarray:
    """Pairwise class margins ``gamma[y, y'] = min_{i: y_i = y} (w_y - w_{y'}) . h_i (+ b_y - b_{y'})``
    (docs/theory.md §2; Gao et al. 2023, Sec. 4.3). K x K, diagonal NaN; rows of classes without a sample
    are NaN (the minimum over an empty set is undefined here)."""
    H, y, W, b, K = _prepare(H, y, W, b)
    gamma = np.full((K, K), np.inf)
    for sl in row_slices(H.shape[0], K, _CHUNK_ELEMS):
        Z = _logits(H[sl], W, b)
        yc = y[sl]
        D = Z[np.arange(Z.shape[0]), yc][:, None] - Z  # (w_{y_i} - w_k) . h_i (+ b terms)
        order = np.argsort(yc, kind="stable")
        ys = yc[order]
        starts = np.flatnonzero(np.r_[True, ys[1:] != ys[:-1]])
        mins = np.minimum.reduceat(D[order], starts, axis=0)
        cls = ys[starts]
        gamma[cls] = np.minimum(gamma[cls], mins)
    gamma[np.isinf(gamma) & (gamma > 0)] = np.nan  # classes with no sample
    np.fill_diagonal(gamma, np.nan)
    return gamma


def normalized_pairwise_margins(H, y, W, b=None) -> np.ndarray:
    """``gamma[y, y'] / ||w_y - w_{y'}||`` (docs/theory.md §2): the signed distance of class y's worst sample
    to the y/y' decision boundary (the boundary includes the bias when one is given). NaN on the
    diagonal, for empty classes and where ``w_y = w_{y'}``."""
    gamma = pairwise_margins(H, y, W, b)
    W = np.asarray(W, dtype=np.float64)
    dist = np.linalg.norm(W[:, None, :] - W[None, :, :], axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = gamma / dist
    out[dist == 0] = np.nan
    return out


def normalized_margin(H, y, W, b=None) -> float:
    """Scale-free margin for fixed features: ``p_min / (||W||_F * max_i ||h_i||)`` (docs/theory.md §2).
    With a bias, the bias enters p_min only [our form]."""
    H, y, W, b, _K = _prepare(H, y, W, b)
    denom = np.linalg.norm(W) * np.linalg.norm(H, axis=1).max()
    if denom == 0:
        raise ValueError("normalized_margin is undefined: W or every feature row is zero; "
                         "pass a non-zero classifier and features.")
    return p_min(H, y, W, b) / float(denom)


def ufm_normalized_margin(H, y, W) -> float:
    """Unconstrained-feature-model margin ``p_min / (1/2 (||W||_F^2 + ||H||_F^2))`` (docs/theory.md §2), the
    quantity maximized by the UFM-SVM (docs/theory.md §3). No bias (the UFM has none)."""
    H, y, W, _b, _K = _prepare(H, y, W, None)
    denom = 0.5 * (np.sum(W * W) + np.sum(H * H))
    if denom == 0:
        raise ValueError("ufm_normalized_margin is undefined for W = 0 and H = 0; pass non-zero W, H.")
    return p_min(H, y, W) / float(denom)


def _ce_chunk(Z, yc):
    """Per-sample CE ``log(1 + sum_{k != y} exp(z_k - z_y))`` evaluated stably [our numerics].

    With ``a = max(0, max_{k != y} (z_k - z_y))`` and ``s = sum_{k != y} exp(z_k - z_y - a)``:
    ``loss = log1p(s)`` when a = 0 (then s <= K-1 and log1p keeps full relative accuracy for tiny s,
    i.e. loss down to the float64 subnormal range), else ``a + log(exp(-a) + s)`` (then the argument
    is >= 1). Every exponent is <= 0, so nothing overflows.
    """
    n = Z.shape[0]
    idx = np.arange(n)
    Dlt = Z - Z[idx, yc][:, None]
    Dlt[idx, yc] = -np.inf
    a = np.maximum(Dlt.max(axis=1), 0.0)
    s = np.exp(Dlt - a[:, None]).sum(axis=1)
    pos = a > 0
    loss = np.log1p(s)
    if pos.any():
        loss[pos] = a[pos] + np.log(np.exp(-a[pos]) + s[pos])
    return loss


def ce_loss(H, y, W, b=None, reduction: str = "mean"):
    """Softmax cross-entropy ``L = (1/N) sum_i [logsumexp_k z_{ik} - z_{i,y_i}]`` in float64 with a
    stable evaluation that stays accurate down to losses ~1e-300 (see :func:`_ce_chunk`).
    ``reduction``: "mean" (float), "sum" (float) or "none" (N array)."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")
    H, y, W, b, K = _prepare(H, y, W, b)
    out = np.empty(H.shape[0], dtype=np.float64)
    for sl in row_slices(H.shape[0], K, _CHUNK_ELEMS):
        out[sl] = _ce_chunk(_logits(H[sl], W, b), y[sl])
    if reduction == "none":
        return out
    total = float(np.sum(out))
    return total if reduction == "sum" else total / H.shape[0]


def log_expm1(x):
    """``log(exp(x) - 1)`` for x >= 0, accurate and finite for large x (``x + log1p(-exp(-x))``) and
    for tiny x (``log(expm1(x))``); -inf at x = 0."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        big = x > 1.0
        out = np.where(big, x + np.log1p(-np.exp(-np.where(big, x, 1.0))),
                       np.log(np.expm1(np.where(big, 1.0, x))))
    return out[()] if out.ndim == 0 else out


# Relative slack of the sandwich check. Both bounds are attained with equality (lower: N = 1, K = 2;
# upper: all samples share one margin with K-1 tied competitors, e.g. exact ETF features), so the check
# must allow rounding. The loss and each bound are computed with relative error O(K eps) from the
# logits; the logits themselves carry an absolute error <= d * eps * ||w|| * ||h|| that turns into a
# *relative* error of the same size in exp(-p_min). For d <= 1e4 and logits of size <= 1e3 this is
# <= 1e4 * 1e3 * 2.2e-16 ~ 2e-9, so 1e-8 is safe yet far below any genuine violation we look for.
SANDWICH_RTOL = 1e-8
# Absolute slack: per-sample losses below the float64 normal range (2.2e-308) are subnormal and carry
# an absolute error up to ~5e-324 each; 1e3 * tiny ~ 2.2e-305 covers sums of up to ~1e16 of them.
SANDWICH_ATOL = 1e3 * np.finfo(np.float64).tiny


def ce_pmin_sandwich(loss, p_min, N, K, *, rtol: float = SANDWICH_RTOL) -> dict:
    """The CE--p_min sandwich of docs/theory.md §2 (exact for any W, H):

        loss_lower = (1/N) log(1 + e^{-p_min})  <=  L  <=  log(1 + (K-1) e^{-p_min}) = loss_upper,
        pmin_lower = -log(e^{N L} - 1)  <=  p_min  <=  log((K-1)/(e^{L} - 1)) = pmin_upper.

    The two lines are equivalent rearrangements. Evaluated with logaddexp / log1p / expm1 so they stay
    finite and accurate for |p_min| up to ~1e3 and L down to 1e-300. L = 0 gives pmin bounds +inf.
    ``holds`` checks the loss line with relative slack ``rtol`` (see SANDWICH_RTOL) plus an absolute
    slack SANDWICH_ATOL for subnormal losses. Also returns ``loss_below_log2_over_N`` (L < log(2)/N,
    which implies p_min > 0).
    """
    rtol = check_tolerance(rtol, "rtol")
    L = float(loss)
    p = float(p_min)
    if not np.isfinite(L) or L < 0:
        raise ValueError(f"loss must be a finite number >= 0 (cross-entropy), got {loss!r}.")
    if np.isnan(p):
        raise ValueError("p_min is NaN; compute it with p_min(H, y, W, b) on finite inputs.")
    N = int(N)
    if N < 1:
        raise ValueError(f"N must be the number of samples (>= 1), got {N}.")
    K = int(K)
    if K < 2:
        raise ValueError(f"K = {K} < 2 classes; pass K >= 2.")
    loss_lower = float(np.logaddexp(0.0, -p)) / N
    loss_upper = float(np.logaddexp(0.0, np.log(K - 1.0) - p))
    pmin_lower = float(-log_expm1(N * L)) if L > 0 else np.inf
    pmin_upper = float(np.log(K - 1.0) - log_expm1(L)) if L > 0 else np.inf
    holds = bool(loss_lower <= L * (1 + rtol) + SANDWICH_ATOL and L <= loss_upper * (1 + rtol) + SANDWICH_ATOL)
    return {
        "loss": L,
        "p_min": p,
        "loss_lower": loss_lower,
        "loss_upper": loss_upper,
        "pmin_lower": pmin_lower,
        "pmin_upper": pmin_upper,
        "holds": holds,
        "loss_below_log2_over_N": bool(L < np.log(2.0) / N),
        "rtol": rtol,
    }
