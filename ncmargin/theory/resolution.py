"""Trends that respect the test set's resolution (docs/theory.md §14).

A test accuracy on N_test images moves in steps of 1/N_test. A terminal-phase trend of the test error that
rests on one or two images is not evidence of anything, however small its rank-test p-value. Two tools:

- ``series_resolution(values, n_test)``: how many distinct values a series of test accuracies (or errors)
  takes, the resolution 1/N_test, and how many test images its total change and its range correspond to;
- ``bootstrap_error_change(correct, start, end)``: from per-image correctness at every checkpoint, a paired
  bootstrap over test images (the same resample of images for both checkpoints, ``scipy.stats.bootstrap``
  with ``paired=True``) of the change in test error between two checkpoints, with the exact McNemar test
  (statsmodels) of the same paired change as a second opinion; a change carried by fewer than
  ``MIN_DISCORDANT`` images whose correctness differs between the two checkpoints is inconclusive.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as _st

__all__ = ["MIN_DISCORDANT", "bootstrap_error_change", "correct_predictions", "series_resolution"]

MIN_DISCORDANT = 3  # a change carried by 1 or 2 images (discordant pairs) is inconclusive


def series_resolution(values, n_test: int, *, tol: float = 1e-9) -> dict[str, Any]:
    """Resolution facts of a series of test accuracies or errors given as fractions in [0, 1].

    Returns ``{"n", "n_distinct", "resolution" (1/N_test), "n_test", "change" (last − first),
    "change_images" (round(change·N_test)), "range" (max − min), "range_images", "on_grid" (every value is a
    multiple of 1/N_test within ``tol``), "few_images" (range_images <= 2: the series is carried by one or two
    images)}``. ``n_distinct`` counts values that differ by more than half an image (so float noise in a
    stored accuracy does not make new values).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D series (one accuracy per checkpoint), got shape "
                         f"{v.shape}.")
    if not np.all(np.isfinite(v)):
        raise ValueError("values contain NaN or Inf; drop checkpoints without a test accuracy first.")
    if v.min() < 0 or v.max() > 1:
        raise ValueError(f"values must be fractions in [0, 1] (accuracy or error), got range [{v.min():.4g}, "
                         f"{v.max():.4g}]; divide percentages by 100.")
    if isinstance(n_test, bool) or int(n_test) != n_test or int(n_test) < 1:
        raise ValueError(f"n_test must be a positive integer (the number of test images), got {n_test!r}.")
    n_test = int(n_test)
    counts = v * n_test
    on_grid = bool(np.all(np.abs(counts - np.round(counts)) <= tol * n_test + 1e-9))
    s = np.sort(counts)
    n_distinct = int(1 + np.sum(np.diff(s) > 0.5))
    change = float(v[-1] - v[0])
    rng = float(v.max() - v.min())
    range_images = round(rng * n_test)
    return {"n": int(v.size), "n_distinct": n_distinct, "resolution": 1.0 / n_test, "n_test": n_test,
            "change": change, "change_images": round(change * n_test), "range": rng,
            "range_images": range_images, "on_grid": on_grid, "few_images": range_images <= 2}


def correct_predictions(H, y, W, b=None) -> np.ndarray:
    """Per-sample correctness ``argmax_k (H Wᵀ + b)_k == y`` (float64 logits, ``ncmargin.theory.logits``):
    one row of the ``correct`` matrix of :func:`bootstrap_error_change`, e.g. from a checkpoint's
    ``test_features``, ``test_labels``, ``classifier`` and ``bias``. Ties go to the smaller class index
    (``numpy.argmax``), as in the trainer's accuracy."""
    from .margins import logits

    y = np.asarray(y)
    Z = logits(H, W, b)
    if y.shape != (Z.shape[0],):
        raise ValueError(f"labels y must have one entry per row of H ({Z.shape[0]}), got shape {y.shape}.")
    return np.argmax(Z, axis=1) == y


def _mean_diff(a, b, axis=-1):
    """Vectorized statistic for ``scipy.stats.bootstrap``: mean(a) − mean(b) along ``axis``."""
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def bootstrap_error_change(correct, start: int = 0, end: int = -1, *, n_boot: int = 9999, seed: int = 0,
                           alpha: float = 0.05, min_discordant: int = MIN_DISCORDANT) -> dict[str, Any]:
    """Change in test error from checkpoint ``start`` to ``end`` with a paired bootstrap over test images.

    ``correct``: (checkpoints × N_test) boolean, ``correct[c, i]`` = image i classified correctly at
    checkpoint c (the same images, in the same order, at every checkpoint). The change is
    ``Δ = err[end] − err[start] = mean_i(correct[start, i]) − mean_i(correct[end, i])``. The interval is the
    ``scipy.stats.bootstrap`` percentile interval at level 1 − alpha over ``n_boot`` resamples of the test
    images, the same resample for both checkpoints (``paired=True``). McNemar's exact test
    (``statsmodels.stats.contingency_tables.mcnemar``) of the 2×2 table of (correct at start, correct at
    end) is reported beside it.

    Verdict ``"increase"``/``"decrease"`` when the interval excludes 0 and at least ``min_discordant``
    images changed correctness; else ``"inconclusive"`` (the change is within resampling noise, or carried
    by fewer than ``min_discordant`` images). ``exceeds_noise`` is True exactly for the first two.
    """
    C = np.asarray(correct)
    if C.ndim != 2:
        raise ValueError(f"correct must be 2-D (checkpoints × test images), got shape {C.shape}.")
    if C.shape[0] < 2 or C.shape[1] < 2:
        raise ValueError(f"correct needs at least 2 checkpoints and 2 test images, got shape {C.shape}.")
    if C.dtype != bool:
        if not np.all(np.isin(C, (0, 1))):
            raise ValueError("correct must be boolean (or 0/1): per-image correctness at each checkpoint.")
        C = C.astype(bool)
    n_ck, n = C.shape
    try:
        s, e = range(n_ck)[start], range(n_ck)[end]
    except (IndexError, TypeError) as exc:
        raise ValueError(f"start={start!r} and end={end!r} must index the {n_ck} checkpoints.") from exc
    if s == e:
        raise ValueError(f"start and end are the same checkpoint ({s}); pick two different checkpoints.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}.")
    if int(n_boot) < 100:
        raise ValueError(f"n_boot must be >= 100 for a percentile interval, got {n_boot}; e.g. 9999.")
    a, b = C[s].astype(np.float64), C[e].astype(np.float64)
    change = float(a.mean() - b.mean())
    to_wrong = int(np.sum(C[s] & ~C[e]))
    to_right = int(np.sum(~C[s] & C[e]))
    discordant = to_wrong + to_right
    if discordant == 0:
        low = high = 0.0
    else:
        res = _st.bootstrap((a, b), _mean_diff, paired=True, vectorized=True, n_resamples=int(n_boot),
                            confidence_level=1 - alpha, method="percentile", rng=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    from statsmodels.stats.contingency_tables import mcnemar

    both = int(np.sum(C[s] & C[e]))
    neither = int(np.sum(~C[s] & ~C[e]))
    p_mcnemar = float(mcnemar([[both, to_wrong], [to_right, neither]], exact=True).pvalue)
    ci_excludes_0 = bool(low > 0 or high < 0)
    enough = discordant >= int(min_discordant)
    exceeds = ci_excludes_0 and enough
    if exceeds:
        verdict = "increase" if change > 0 else "decrease"
        reason = (f"test error {'rises' if change > 0 else 'falls'} by {abs(change):.4g} ({to_wrong} images "
                  f"became wrong, {to_right} right); {100 * (1 - alpha):g}% bootstrap CI "
                  f"[{low:.4g}, {high:.4g}] excludes 0")
    else:
        verdict = "inconclusive"
        if not enough:
            reason = (f"carried by {discordant} image(s) whose correctness changed (< {min_discordant}): "
                      "below the test set's resolution")
        else:
            reason = (f"within resampling noise: {100 * (1 - alpha):g}% bootstrap CI [{low:.4g}, {high:.4g}] "
                      "contains 0")
    return {"start": s, "end": e, "n_test": n, "error_start": float(1 - a.mean()),
            "error_end": float(1 - b.mean()),
            "change": change, "change_images": to_wrong - to_right, "ci_low": low, "ci_high": high,
            "level": 1 - alpha, "n_boot": int(n_boot), "seed": seed, "to_wrong": to_wrong,
            "to_right": to_right,
            "discordant": discordant, "p_mcnemar": p_mcnemar, "exceeds_noise": exceeds, "verdict": verdict,
            "reason": reason, "resolution": 1.0 / n}
