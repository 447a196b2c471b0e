"""Claim 1 comparison of a trained classifier with the max-margin SVM (docs/theory.md §4).

- ``angle_deg(A, B)``: the angle between two matrices seen as vectors of the Frobenius inner product,
  computed as ``2·atan2(||Â − B̂||_F, ||Â + B̂||_F)`` with ``Â = A/||A||_F`` (Kahan's formula: accurate
  for angles near 0 and 180°, where ``arccos`` of the cosine loses half the digits).
- ``margin_ratio(H, y, W, W_star)``: ``(p_min(W, H)/||W||_F) / (1/||W*||_F)`` (docs/theory.md §4). If W*
  solves the hard-margin SVM on H, then ``1/||W*||_F = max_W p_min(W,H)/||W||_F``, so the ratio is ≤ 1,
  with equality iff W is a positive multiple of W*.

Bias convention [our form, consistent with docs/theory.md §3 "append a constant feature"]: a bias is the
weight of a constant feature 1 appended to every h_i. So with a bias, ``W`` is replaced by the augmented
``[W | b]`` (K × (d+1)) everywhere: in ||·||_F, in the angle, and the SVM solution must be the one with a
(regularized) bias, ``[W* | b*]``. (p_min with a bias is the p_min of the augmented model.)
"""

from __future__ import annotations

import numpy as np

from .checks import check_classifier, check_features, check_matrix
from .margins import p_min as _p_min

__all__ = ["angle_deg", "augment", "margin_ratio", "svm_comparison"]


def augment(W, b=None) -> np.ndarray:
    """``[W | b]`` (K × (d+1)) when ``b`` is given, else ``W`` as float64: the classifier of the model
    with a constant feature 1 appended (docs/theory.md §3)."""
    W = check_matrix(W, "classifier W")
    if b is None:
        return W
    _, b = check_classifier(W, b, W.shape[0], W.shape[1])
    return np.column_stack([W, b])


def angle_deg(A, B) -> float:
    """Angle in degrees between ``A`` and ``B`` as vectors (Frobenius inner product), in [0, 180].

    Robust form ``2·atan2(||Â − B̂||, ||Â + B̂||)`` (Kahan). Raises ValueError for shapes that differ or
    a zero matrix (the angle is undefined)."""
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if A.shape != B.shape:
        raise ValueError(f"angle_deg needs equal shapes, got {A.shape} and {B.shape}; with a bias compare "
                         "augment(W, b) with augment(W*, b*).")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(B))):
        raise ValueError("angle_deg got NaN/Inf entries; pass finite matrices.")
    na, nb = np.linalg.norm(A), np.linalg.norm(B)
    if na == 0 or nb == 0:
        raise ValueError("angle_deg of a zero matrix is undefined; pass a nonzero classifier "
                         "(e.g. skip the step-0 record of a zero initialisation).")
    a, b = A / na, B / nb
    return float(np.degrees(2.0 * np.arctan2(np.linalg.norm(a - b), np.linalg.norm(a + b))))


def margin_ratio(H, y, W, W_star, b=None, b_star=None) -> float:
    """``(p_min(W, H)/||W||_F) / (1/||W*||_F)`` (docs/theory.md §4); ≤ 1 when W* is the hard-margin SVM
    optimum on H (with the same bias convention), → 1 if CE training converges to the SVM direction.

    With a bias (``b`` given) the norms are those of the augmented classifiers ``[W | b]`` and
    ``[W* | b*]`` (constant feature 1, bias regularized, as ``multiclass_svm(..., bias=True)``); then
    ``b_star`` must be given too. Negative when W misclassifies a training sample.
    """
    H, y, K = check_features(H, y)
    W, b = check_classifier(W, b, K, H.shape[1])
    Ws, bs = check_classifier(W_star, b_star, K, H.shape[1])
    if (b is None) != (bs is None):
        raise ValueError("margin_ratio: pass both b and b_star (an SVM solved with bias=True) or neither; "
                         "mixing a biased and an unbiased model compares different programs.")
    nW = np.linalg.norm(augment(W, b))
    if nW == 0:
        raise ValueError("margin_ratio of a zero classifier W is undefined; pass a trained classifier.")
    nWs = np.linalg.norm(augment(Ws, bs))
    return float(_p_min(H, y, W, b) / nW * nWs)


def svm_comparison(H, y, W, W_star, b=None, b_star=None) -> dict:
    """Both numbers of docs/theory.md §4 at one checkpoint: ``{"angle_deg", "margin_ratio", "p_min",
    "norm_W", "norm_W_star", "svm_margin"}`` (``svm_margin = 1/||W*||_F``, the best normalized margin)."""
    ratio = margin_ratio(H, y, W, W_star, b, b_star)
    A, As = augment(W, b), augment(W_star, b_star)
    return {"angle_deg": angle_deg(A, As), "margin_ratio": ratio,
            "p_min": float(_p_min(H, y, W, b)), "norm_W": float(np.linalg.norm(A)),
            "norm_W_star": float(np.linalg.norm(As)), "svm_margin": float(1.0 / np.linalg.norm(As))}
