"""Statistics for the verdicts: trends, rank correlations, the 1/log t fit, the alignment ANOVA.

Pure numpy/scipy, float64. Every function validates its input and raises ``ValueError`` naming the
problem and the fix. Sources:

- Kendall's tau-b and Spearman's rho: ``scipy.stats.kendalltau`` / ``scipy.stats.spearmanr``
  (two-sided p-values).
- ``fit_inverse_log``: least squares of ``angle ≈ a + c / log t`` (the rate of Soudry et al. 2018,
  Thm 3 / Cor. 8: the direction of gradient descent on separable data converges like 1/log t).
- ``two_way_anova``: the additive two-way ANOVA without replication (one observation per cell), e.g.
  Montgomery, *Design and Analysis of Experiments*, randomized complete block design (§4.1):
  SS_T = SS_A + SS_S + SS_E with (A-1), (S-1), (A-1)(S-1) degrees of freedom.
- ``permutation_test_alignment``: a restricted permutation test for a randomized block design
  (alignment labels permuted within each seed block), p-value ``(1 + #{T* ≥ T}) / (1 + n_perm)``
  (Phipson & Smyth 2010).
- ``bootstrap_ci``: the percentile bootstrap (Efron & Tibshirani 1993, §13.3) over paired rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats as _st

__all__ = [
    "alignment_effect_verdict",
    "bootstrap_ci",
    "complete_table",
    "fit_inverse_log",
    "kendall_trend",
    "permutation_test_alignment",
    "spearman",
    "two_way_anova",
    "two_way_sums_of_squares",
]


def _vector(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence, got shape {a.shape}; pass one value per point.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or Inf; drop those points (e.g. failed checkpoints) first.")
    return a


def _paired(x, y, nx: str, ny: str, min_n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    a, b = _vector(x, nx), _vector(y, ny)
    if a.shape != b.shape:
        raise ValueError(f"{nx} and {ny} must have the same length, got {a.size} and {b.size}; "
                         "pass one pair per point.")
    if a.size < min_n:
        raise ValueError(f"need at least {min_n} points for a rank statistic, got {a.size}; "
                         "record more checkpoints/runs.")
    return a, b


def _rank_statistic(test: Callable, a: np.ndarray, b: np.ndarray, key: str) -> dict[str, Any]:
    """``{key: statistic, "p_value", "n"}`` of the scipy rank test ``test(a, b)`` (two-sided); NaN
    statistic and p-value when either (validated, paired) series is constant."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return {key: float("nan"), "p_value": float("nan"), "n": int(a.size)}
    res = test(a, b)
    return {key: float(res.statistic), "p_value": float(res.pvalue), "n": int(a.size)}


def kendall_trend(values, times) -> dict[str, Any]:
    """Kendall's tau-b of ``values`` against ``times`` (a monotone trend test).

    Returns ``{"tau", "p_value", "n"}``; the p-value is two-sided (``scipy.stats.kendalltau``, exact
    for small n without ties). tau > 0: values increase with time. If either series is constant tau
    is undefined and returned as NaN with p_value NaN.
    """
    v, t = _paired(values, times, "values", "times")
    return _rank_statistic(_st.kendalltau, t, v, "tau")


SPEARMAN_EXACT_MAX_N = 9  # 9! = 362,880 permutations: exact enumeration stays well under a second


def _spearman_exact_p(a: np.ndarray, b: np.ndarray, rho: float) -> float:
    """Exact two-sided permutation p-value of Spearman's rho: the share of all n! pairings of the
    (mid)ranks of ``a`` with those of ``b`` whose |rho| reaches the observed |rho| (a relative slack of
    1e-12 keeps ties of the statistic itself inside). Exact conditional on the observed ranks, ties
    included. scipy's t approximation is poor at such n (e.g. p = 0 for rho = 1, n = 4; exact 2/24)."""
    import itertools

    ra, rb = _st.rankdata(a), _st.rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    perms = np.fromiter(itertools.chain.from_iterable(itertools.permutations(range(a.size))),
                        dtype=np.int8).reshape(-1, a.size)
    r = (rb[perms] @ ra) / np.sqrt((ra @ ra) * (rb @ rb))
    return float(np.mean(np.abs(r) >= abs(rho) * (1 - 1e-12)))


def spearman(x, y) -> dict[str, Any]:
    """Spearman's rank correlation ``{"rho", "p_value", "n", "p_method"}``, two-sided.

    rho from ``scipy.stats.spearmanr``. The p-value is exact (enumeration of all pairings, see
    :func:`_spearman_exact_p`) for n <= ``SPEARMAN_EXACT_MAX_N`` and scipy's t approximation above.
    NaN rho (and p) when either input is constant.
    """
    a, b = _paired(x, y, "x", "y")
    out = _rank_statistic(_st.spearmanr, a, b, "rho")
    if a.size <= SPEARMAN_EXACT_MAX_N and np.isfinite(out["rho"]):
        out["p_value"] = _spearman_exact_p(a, b, out["rho"])
        out["p_method"] = "exact permutation"
    else:
        out["p_method"] = "t approximation (scipy)"
    return out


def fit_inverse_log(t, angle) -> dict[str, Any]:
    """Least-squares fit ``angle ≈ a + c / log(t)`` (Soudry et al. 2018: the angle to the max-margin
    direction decays like 1/log t for gradient descent on separable data).

    ``t`` must be > 1 (log t > 0); step 0 and step 1 records must be dropped by the caller.
    Returns ``{"a", "c", "r2", "c_positive", "n"}``; ``r2`` is the coefficient of determination of the
    fit (1 - SS_res/SS_tot; NaN if ``angle`` is constant). ``c_positive`` is the sign check the theory
    predicts (the angle shrinks as t grows).
    """
    tt, ang = _paired(t, angle, "t", "angle")
    if np.any(tt <= 1):
        raise ValueError("fit_inverse_log needs t > 1 (log t > 0); drop the records at steps 0 and 1.")
    x = 1.0 / np.log(tt)
    X = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(X, ang, rcond=None)
    resid = ang - X @ coef
    ss_tot = float(np.sum((ang - ang.mean()) ** 2))
    r2 = float("nan") if ss_tot == 0 else 1.0 - float(resid @ resid) / ss_tot
    return {"a": float(coef[0]), "c": float(coef[1]), "r2": r2, "c_positive": bool(coef[1] > 0),
            "n": int(tt.size)}


# --------------------------------------------------------------------------------------------------
# alignment × seed statistics
# --------------------------------------------------------------------------------------------------

def _table(table) -> np.ndarray:
    T = np.asarray(table, dtype=np.float64)
    if T.ndim != 2:
        raise ValueError(f"table must be 2-D (alignments × seeds), got shape {T.shape}.")
    A, S = T.shape
    if A < 2 or S < 2:
        raise ValueError(f"table needs at least 2 alignments and 2 seeds, got {A}×{S}; "
                         "run more alignments/seeds.")
    if np.isnan(T).any():
        raise ValueError("table has missing cells (NaN): the additive ANOVA needs a complete table. "
                         "Exclude failed runs with complete_table(table, drop='seeds'|'alignments') "
                         "and report what was dropped.")
    if not np.all(np.isfinite(T)):
        raise ValueError("table contains Inf; fix the offending run's value.")
    return T


def complete_table(table, drop: str = "seeds") -> dict[str, Any]:
    """Make an alignment × seed table complete by deleting whole seeds (columns) or whole alignments
    (rows) that contain a missing cell (NaN, e.g. a run that did not reach 100% train accuracy).

    This is the documented way to exclude failed runs: the additive model with one observation per cell
    has no missing-cell estimator here, so listwise deletion of a block keeps the design balanced.
    Returns ``{"table", "kept_alignments", "kept_seeds", "dropped_alignments", "dropped_seeds"}``
    (index arrays into the original table). Raises if fewer than 2×2 cells remain.
    """
    T = np.asarray(table, dtype=np.float64)
    if T.ndim != 2:
        raise ValueError(f"table must be 2-D (alignments × seeds), got shape {T.shape}.")
    if drop not in ("seeds", "alignments"):
        raise ValueError(f"drop must be 'seeds' or 'alignments', got {drop!r}.")
    bad = np.isnan(T)
    rows = np.arange(T.shape[0])
    cols = np.arange(T.shape[1])
    if drop == "seeds":
        keep_c = ~bad.any(axis=0)
        keep_r = np.ones(T.shape[0], bool)
    else:
        keep_r = ~bad.any(axis=1)
        keep_c = np.ones(T.shape[1], bool)
    out = T[np.ix_(keep_r, keep_c)]
    if out.shape[0] < 2 or out.shape[1] < 2:
        raise ValueError(f"after dropping {drop} with failed runs only {out.shape[0]}×{out.shape[1]} "
                         "cells remain; rerun the failed runs (longer training) or drop the other axis.")
    return {"table": out, "kept_alignments": rows[keep_r], "kept_seeds": cols[keep_c],
            "dropped_alignments": rows[~keep_r], "dropped_seeds": cols[~keep_c]}


def two_way_sums_of_squares(T: np.ndarray) -> dict[str, float]:
    """Sums of squares, degrees of freedom and mean squares of the additive two-way model (alignment + seed,
    one observation per cell) on a complete A×S table (docs/theory.md §10): ``ss_a, ss_s, ss_e, ss_t``,
    ``df_a, df_s, df_e`` and ``ms_a, ms_s, ms_e``."""
    A, S = T.shape
    g = T.mean()
    ss_a = S * float(np.sum((T.mean(axis=1) - g) ** 2))
    ss_s = A * float(np.sum((T.mean(axis=0) - g) ** 2))
    ss_t = float(np.sum((T - g) ** 2))
    ss_e = max(ss_t - ss_a - ss_s, 0.0)
    df_a, df_s, df_e = A - 1, S - 1, (A - 1) * (S - 1)
    return {"ss_a": ss_a, "ss_s": ss_s, "ss_e": ss_e, "ss_t": ss_t, "df_a": df_a, "df_s": df_s, "df_e": df_e,
            "ms_a": ss_a / df_a, "ms_s": ss_s / df_s, "ms_e": ss_e / df_e}


def two_way_anova(table) -> dict[str, Any]:
    """Additive two-way ANOVA without replication on an A×S table (rows: alignments, columns: seeds).

    Model ``x_as = μ + α_a + β_s + ε_as`` (randomized complete block design; Montgomery §4.1):

        SS_A = S Σ_a (x̄_a· − x̄)²,  SS_S = A Σ_s (x̄_·s − x̄)²,  SS_T = Σ (x_as − x̄)²,
        SS_E = SS_T − SS_A − SS_S,  df = (A−1, S−1, (A−1)(S−1)),
        F_A = (SS_A/df_A)/(SS_E/df_E),  p_A = P(F(df_A, df_E) ≥ F_A)  (same for seeds),
        η²_f = SS_f/SS_T,  partial η²_f = SS_f/(SS_f + SS_E).

    The table must be complete (no NaN): use :func:`complete_table` to exclude failed runs.
    If SS_E = 0 (a perfectly additive table), F is +Inf and p is 0 for a factor with SS > 0.
    Returns a dict with ``alignment`` and ``seed`` sub-dicts (ss, df, ms, F, p_value, eta2,
    partial_eta2), ``error`` (ss, df, ms), ``total`` (ss, df), and ``shape``.
    """
    T = _table(table)
    A, S = T.shape
    q = two_way_sums_of_squares(T)
    ss_a, ss_s, ss_e, ss_t = q["ss_a"], q["ss_s"], q["ss_e"], q["ss_t"]
    df_a, df_s, df_e = A - 1, S - 1, (A - 1) * (S - 1)
    ms_e = ss_e / df_e

    def factor(ss: float, df: int) -> dict[str, float]:
        ms = ss / df
        if ms_e > 0:
            F = ms / ms_e
            p = float(_st.f.sf(F, df, df_e))
        else:
            F = float("inf") if ms > 0 else float("nan")
            p = 0.0 if ms > 0 else float("nan")
        eta2 = ss / ss_t if ss_t > 0 else float("nan")
        peta2 = ss / (ss + ss_e) if (ss + ss_e) > 0 else float("nan")
        return {"ss": ss, "df": df, "ms": ms, "F": float(F), "p_value": p, "eta2": eta2,
                "partial_eta2": peta2}

    return {"alignment": factor(ss_a, df_a), "seed": factor(ss_s, df_s),
            "error": {"ss": ss_e, "df": df_e, "ms": ms_e},
            "total": {"ss": ss_t, "df": A * S - 1}, "shape": (A, S)}


def permutation_test_alignment(table, n_perm: int = 9999, seed: int = 0,
                               statistic: str = "ss") -> dict[str, Any]:
    """Permutation test of the alignment effect in an A×S (alignments × seeds) table.

    Under H0 (no alignment effect) the alignment labels are exchangeable within each seed block, so each
    column is permuted independently (a restricted permutation for a block design). The statistic is the
    alignment sum of squares SS_A (``statistic="ss"``) or F_A (``"F"``); within-block permutations keep
    SS_S and SS_T fixed, so both give the same p-value, and F differs only where SS_E = 0. p-value with
    the +1 correction (Phipson & Smyth 2010): ``(1 + #{T* ≥ T_obs}) / (1 + n_perm)``, never 0.
    A relative tolerance of 1e-12 counts ties as ≥ (so a table without effect is not spuriously
    significant through rounding).
    """
    T = _table(table)
    if int(n_perm) < 1:
        raise ValueError(f"n_perm must be ≥ 1, got {n_perm}; use e.g. 9999.")
    if statistic not in ("ss", "F"):
        raise ValueError(f"statistic must be 'ss' or 'F', got {statistic!r}.")
    n_perm = int(n_perm)
    A, S = T.shape
    rng = np.random.default_rng(seed)
    g = T.mean()
    col_means = T.mean(axis=0)
    ss_t = float(np.sum((T - g) ** 2))
    ss_s = A * float(np.sum((col_means - g) ** 2))
    df_a, df_e = A - 1, (A - 1) * (S - 1)

    def stat_of(ss_a: np.ndarray) -> np.ndarray:
        if statistic == "ss":
            return ss_a
        ss_e = np.maximum(ss_t - ss_s - ss_a, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (ss_a / df_a) / (ss_e / df_e)

    obs_ss = S * float(np.sum((T.mean(axis=1) - g) ** 2))
    obs = float(stat_of(np.array([obs_ss]))[0])
    count = 0
    chunk = max(1, min(n_perm, 2_000_000 // max(A * S, 1)))
    done = 0
    while done < n_perm:
        m = min(chunk, n_perm - done)
        P = rng.permuted(np.broadcast_to(T, (m, A, S)).copy(), axis=1)  # permute within each column
        row_means = P.mean(axis=2)  # (m, A)
        ss_a = S * np.sum((row_means - g) ** 2, axis=1)
        st = stat_of(ss_a)
        count += int(np.sum(st >= obs - 1e-12 * max(abs(obs), 1e-300)))
        done += m
    return {"statistic": statistic, "observed": obs, "p_value": (1 + count) / (1 + n_perm),
            "n_perm": n_perm, "seed": seed}


def bootstrap_ci(stat_fn: Callable[..., float], *arrays, n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> dict[str, Any]:
    """Percentile bootstrap interval of ``stat_fn(*arrays)`` resampling paired rows.

    All arrays share their first axis (one row per unit, e.g. per alignment: predictor value and
    test accuracy); each replicate draws the same row indices with replacement for all arrays
    (Efron & Tibshirani 1993, percentile interval). Replicates where ``stat_fn`` returns NaN (e.g. a
    rank correlation of a resample with constant values) are dropped and counted in ``n_nan``.
    Returns ``{"estimate", "low", "high", "level", "n_boot", "n_valid", "n_nan"}``.
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array after stat_fn.")
    arrs = [np.asarray(a) for a in arrays]
    n = arrs[0].shape[0] if arrs[0].ndim else 0
    if n < 2 or any(a.ndim == 0 or a.shape[0] != n for a in arrs):
        raise ValueError("bootstrap_ci arrays must share a first axis of length ≥ 2 (paired rows); "
                         f"got shapes {[a.shape for a in arrs]}.")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}; e.g. 0.95.")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be ≥ 1, got {n_boot}.")
    rng = np.random.default_rng(seed)
    est = float(stat_fn(*arrs))
    vals = np.empty(int(n_boot))
    for b in range(int(n_boot)):
        idx = rng.integers(0, n, size=n)
        try:
            vals[b] = float(stat_fn(*[a[idx] for a in arrs]))
        except ValueError:
            vals[b] = np.nan
    ok = vals[np.isfinite(vals)]
    alpha = (1 - level) / 2
    if ok.size == 0:
        low = high = float("nan")
    else:
        low, high = (float(v) for v in np.quantile(ok, [alpha, 1 - alpha]))
    return {"estimate": est, "low": low, "high": high, "level": level, "n_boot": int(n_boot),
            "n_valid": int(ok.size), "n_nan": int(vals.size - ok.size)}


def alignment_effect_verdict(table, alpha: float = 0.05, n_perm: int = 9999,
                             seed: int = 0) -> dict[str, Any]:
    """Verdict of docs/theory.md §8 (claim 3) on an A×S test-accuracy table (alignments × seeds).

    Rule (stated in the returned ``rule``): "alignment matters more than seed" is True iff
    (i) the ANOVA alignment p-value < alpha, (ii) the within-seed permutation p-value < alpha, and
    (iii) η²_alignment > η²_seed. Both tests must agree so that neither the normality assumption of the
    F test nor the permutation resolution (min p = 1/(1+n_perm)) decides alone.
    The table must be complete (use :func:`complete_table` first and report what was dropped).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}.")
    an = two_way_anova(table)
    perm = permutation_test_alignment(table, n_perm=n_perm, seed=seed)
    ea, es = an["alignment"]["eta2"], an["seed"]["eta2"]
    verdict = bool(an["alignment"]["p_value"] < alpha and perm["p_value"] < alpha and ea > es)
    return {
        "verdict": verdict,
        "rule": (f"alignment matters more than seed iff ANOVA p_alignment < {alpha} and permutation "
                 f"p < {alpha} and eta2_alignment > eta2_seed"),
        "alpha": alpha,
        "anova_p_alignment": an["alignment"]["p_value"],
        "anova_p_seed": an["seed"]["p_value"],
        "permutation_p_alignment": perm["p_value"],
        "F_alignment": an["alignment"]["F"],
        "F_seed": an["seed"]["F"],
        "eta2_alignment": ea,
        "eta2_seed": es,
        "partial_eta2_alignment": an["alignment"]["partial_eta2"],
        "partial_eta2_seed": an["seed"]["partial_eta2"],
        "n_perm": perm["n_perm"],
        "shape": an["shape"],
        "anova": an,
    }
