"""Cross-entropy → multi-class SVM (claim 1, docs/theory.md §4).

- :func:`plot_ce_svm_deep` — claim 1c: at each checkpoint of a deep run, the angle between the trained
  classifier W_t and the hard-margin SVM solution W*(H_t) on its own train features, and the margin ratio
  (p_min(W_t,H_t)/||W_t||_F) / (1/||W*(H_t)||_F) (≤ 1, → 1 if the claim holds), against epoch.
- :func:`plot_ce_svm_fixed` — claim 1a: gradient descent on fixed features; angle and margin ratio against
  step on a log axis, with the fitted reference angle(t) ≈ a + c / log t (Soudry et al. 2018, Thm 3: the
  direction converges at rate 1/log t).
- :func:`plot_ufm` — claim 1b: UFM gradient descent; the normalized margin p_min / (½(||W||²+||H||²))
  converging to the optimum certified by the nuclear-norm program (docs/theory.md §3), the loss, p_min
  with its CE sandwich bounds (docs/theory.md §2), and NC metrics where recorded.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from . import style
from .base import FigureResult, fmt_num, write_csv
from .data import (
    Claim1a,
    Claim1b,
    Records,
    RunData,
    as_float,
    certified_normalized_margin,
    read_claim1a,
    read_claim1b,
)
from .registry import Figure, Skip, register
from .terminal_phase import coerce_runs

__all__ = ["fit_inverse_log", "plot_ce_svm_deep", "plot_ce_svm_fixed", "plot_ufm"]


# ---------------------------------------------------------------------------------------------------
# claim 1c: deep runs


def _angle_and_ratio_panels(ax_a, ax_m, xlabel: str, w: str, w_star: str, ratio_note: str) -> None:
    """Axes of the two CE → SVM panels (claims 1a and 1c), log x: (a) the angle between the classifier ``w``
    and the SVM solution ``w_star``, from 0; (b) the margin ratio, its maximum 1 dashed."""
    ax_m.axhline(1.0, color="0.35", linestyle="--", linewidth=0.9)
    for ax in (ax_a, ax_m):
        style.log_axis(ax, "x")
        ax.set_xlabel(xlabel)
    ax_a.set_ylabel(f"angle$({w}, {w_star})$ (degrees)")
    ax_a.set_ylim(bottom=0)
    ax_m.set_ylabel(r"margin ratio $\frac{p_{\min}/\|" + w + r"\|_F}{1/\|W^*\|_F}$")
    style.panel_label(ax_a, "(a) angle to the SVM solution")
    style.panel_label(ax_m, "(b) margin ratio" + ratio_note)


@style.styled
def plot_ce_svm_deep(runs: Sequence[RunData | str | os.PathLike], out_dir: str | os.PathLike,
                     name: str = "ce_svm_deep") -> FigureResult:
    """Angle (degrees) and margin ratio against epoch at every checkpoint with an SVM solution.
    Needs analysis.json with ``checkpoints[].svm.angle_deg`` / ``margin_ratio``."""
    runs = coerce_runs(runs)
    usable = []
    for r in runs:
        if r.analysis is None:
            raise FileNotFoundError(f"{r.run_dir / 'analysis.json'}: no such file; run "
                                    f"`ncmargin analyze {r.run_dir}` first")
        if np.isfinite(r.analysis.col("svm", "angle_deg")).any():
            usable.append(r)
    if not usable:
        raise ValueError(f"{runs[0].analysis.path}: no checkpoint has an SVM solution (svm.angle_deg); "
                         f"the features were never separable, so there is no CE→SVM comparison to draw")
    fig, axes = style.new_figure(ncols=2, height=2.5)
    ax_a, ax_m = axes[0]
    rows = []
    for i, r in enumerate(runs):
        if r not in usable:
            continue
        c, ls, mk = style.color(i), style.linestyle(i), style.marker(i)
        ep = r.analysis.epochs
        ang, mr = r.analysis.col("svm", "angle_deg"), r.analysis.col("svm", "margin_ratio")
        m = np.isfinite(ang)
        ax_a.plot(ep[m], ang[m], color=c, linestyle=ls, marker=mk)
        m2 = np.isfinite(mr)
        ax_m.plot(ep[m2], mr[m2], color=c, linestyle=ls, marker=mk)
        for ax in (ax_a, ax_m):
            style.mark_onset(ax, r.onset_epoch, c)
        for k in range(len(ep)):
            if m[k] or m2[k]:
                rows.append([r.label, r.run_id, ep[k], ang[k], mr[k]])
    _angle_and_ratio_panels(ax_a, ax_m, "epoch (log scale)", "W_t", "W^*(H_t)", " (1 = max margin)")
    handles = [Line2D([], [], color=style.color(i), linestyle=style.linestyle(i), marker=style.marker(i),
                      label=r.label) for i, r in enumerate(runs) if r in usable]
    handles.append(Line2D([], [], color="0.3", linestyle=":", label="100% train acc."))
    style.legend_below(fig, handles)
    out_dir = Path(out_dir)
    png, pdf = style.save_figure(fig, out_dir, name)
    csv = write_csv(out_dir / f"{name}.csv", ["run", "run_id", "epoch", "angle_deg", "margin_ratio"], rows)
    caption = ("Claim 1c, deep networks: at each checkpoint after the features become separable, "
               "(a) the angle between the trained last-layer classifier W_t and the hard-margin multi-class "
               "SVM solution W*(H_t) on the same train features, and (b) the margin ratio "
               "(p_min/||W_t||_F)/(1/||W*||_F), which is at most 1 and tends to 1 if cross-entropy training "
               "drives the classifier to the max-margin solution. Epoch on a log axis (checkpoints are "
               "log-spaced); before the onset of 100% train accuracy there is no hard-margin SVM.")
    return FigureResult(name, png, pdf, csv, caption)


# ---------------------------------------------------------------------------------------------------
# claim 1a: fixed features


def fit_inverse_log(t, angle) -> tuple[float, float]:
    """Least-squares fit angle ≈ a + c / log t over the records with t > 1 (Soudry et al. 2018: the
    direction error decays like 1/log t), by ncmargin.theory.stats.fit_inverse_log. Returns (a, c);
    NaNs if fewer than 3 usable points."""
    from ncmargin.theory.stats import fit_inverse_log as _fit

    t, angle = np.asarray(t, float), np.asarray(angle, float)
    m = (t > 1) & np.isfinite(angle) & np.isfinite(t)
    if m.sum() < 3:
        return math.nan, math.nan
    f = _fit(t[m], angle[m])
    return float(f["a"]), float(f["c"])


def _fit_params(rec: Records) -> tuple[float, float, str]:
    fit = rec.info
    for k in ("fit_inverse_log", "fit"):
        if isinstance(rec.info.get(k), dict):
            fit = rec.info[k]
            break
    a, c = as_float(fit.get("a")), as_float(fit.get("c"))
    if np.isfinite(a) and np.isfinite(c):
        return a, c, "least-squares fit from the results file"
    t, ang = rec.columns["step"], rec.columns["angle_deg"]
    a, c = fit_inverse_log(t, ang)
    return a, c, "least-squares fit over t > 1, computed here"


@style.styled
def plot_ce_svm_fixed(claim: Claim1a | str | os.PathLike, out_dir: str | os.PathLike,
                      name: str = "ce_svm_fixed") -> FigureResult:
    """Claim 1a: angle to W* (with the a + c/log t reference) and margin ratio against GD step (log x)."""
    claim = claim if isinstance(claim, Claim1a) else read_claim1a(claim)
    fig, axes = style.new_figure(ncols=2, height=2.5)
    ax_a, ax_m = axes[0]
    rows = []
    handles = []
    fit_src = set()
    fits = []
    for i, rec in enumerate(claim.experiments):
        c = style.color(i)
        t, ang = rec.columns["step"], rec.columns["angle_deg"]
        mr = rec.get("margin_ratio")
        mr = mr if mr is not None else np.full(len(t), np.nan)
        a_fit, c_fit, src = _fit_params(rec)
        fit_src.add(src)
        fits.append(f"{rec.name}: a = {fmt_num(a_fit)}°, c = {fmt_num(c_fit)}°")
        pos = t > 0
        ax_a.plot(t[pos], ang[pos], color=c, marker=style.marker(i), markersize=3, linestyle="-")
        ref = np.where(t > 1, a_fit + c_fit / np.log(np.where(t > 1, t, np.e)), np.nan)
        if np.isfinite(ref).any():
            ax_a.plot(t[t > 1], ref[t > 1], color=c, linestyle="--", linewidth=1.0)
        ax_m.plot(t[pos], mr[pos], color=c, marker=style.marker(i), markersize=3, linestyle="-")
        for k in np.flatnonzero(pos):  # step 0 cannot sit on the log axis: not drawn, not in the CSV
            rows.append([rec.name, t[k], ang[k], ref[k], mr[k], a_fit, c_fit])
        handles.append(Line2D([], [], color=c, marker=style.marker(i), markersize=3, label=rec.name))
    _angle_and_ratio_panels(ax_a, ax_m, "gradient-descent step t (log scale)", "W(t)", "W^*", "")
    handles.append(Line2D([], [], color="0.3", linestyle="--", label=r"fit $a + c/\log t$"))
    style.legend_below(fig, handles)
    out_dir = Path(out_dir)
    png, pdf = style.save_figure(fig, out_dir, name)
    csv = write_csv(out_dir / f"{name}.csv",
                    ["experiment", "step", "angle_deg", "fit_angle_deg", "margin_ratio", "fit_a", "fit_c"],
                    rows)
    caption = ("Claim 1a, fixed features: gradient descent on the unregularized cross-entropy over W alone. "
               "(a) Angle between W(t) and the hard-margin SVM solution W* against step (log axis); dashed: "
               f"the reference a + c/log t ({'; '.join(sorted(fit_src))}; {'; '.join(fits)}), the slow "
               "rate predicted by Soudry et al. (2018). (b) Margin ratio (p_min/||W(t)||_F)/(1/||W*||_F), "
               "1 at the max-margin direction.")
    return FigureResult(name, png, pdf, csv, caption)


# ---------------------------------------------------------------------------------------------------
# claim 1b: UFM


def _bounds(rec: Records) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The CE sandwich bounds on p_min (docs/theory.md §2) if the records carry them (names searched)."""
    lo = up = None
    for k, v in rec.columns.items():
        kl = k.lower()
        if not ("pmin" in kl or "p_min" in kl) or not np.isfinite(v).any():
            continue
        if "low" in kl and lo is None:
            lo = v
        elif ("up" in kl or "high" in kl) and up is None:
            up = v
    return lo, up


UFM_NC = [("nc1_topk", "NC1"), ("nc2_equinorm_means", "NC2 equinorm (means)"),
          ("nc2_equiangular_means", "NC2 equiangular (means)"), ("nc3_self_duality", "NC3")]


def _ufm_nc_keys(rec: Records) -> list[tuple[str, str]]:
    """The NC metrics drawn in the UFM panel (one per NC property; NC4 is 0 from the first steps)."""
    return [(k, nice) for k, nice in UFM_NC if rec.get(k) is not None]


@style.styled
def plot_ufm(claim: Claim1b | str | os.PathLike, out_dir: str | os.PathLike,
             name: str = "ce_svm_ufm") -> FigureResult:
    """Claim 1b: (a) normalized margin vs step with the certified optimum as a horizontal line;
    (b) loss (log-log); (c) p_min with the sandwich bounds; (d) NC metrics (if recorded)."""
    claim = claim if isinstance(claim, Claim1b) else read_claim1b(claim)
    fig, axes = style.new_figure(ncols=2, nrows=2, height=4.6)
    ax_nm, ax_l, ax_p, ax_nc = axes.flat
    rows = []
    handles = []
    opt_texts = []
    nc_style = {}
    multi = len(claim.experiments) > 1
    for i, rec in enumerate(claim.experiments):
        c = style.color(i)
        t, L = rec.columns["step"], rec.columns["loss"]
        nm = rec.get("normalized_margin", "normalized_margin_ufm", "margin_normalized")
        nm = nm if nm is not None else np.full(len(t), np.nan)
        pm = rec.get("p_min", "pmin")
        pm = pm if pm is not None else np.full(len(t), np.nan)
        lo, up = _bounds(rec)
        lo = lo if lo is not None else np.full(len(t), np.nan)
        up = up if up is not None else np.full(len(t), np.nan)
        opt, opt_src = certified_normalized_margin(rec.info)
        pos = t > 0
        ax_nm.plot(t[pos], nm[pos], color=c, marker=style.marker(i), markersize=3)
        if np.isfinite(opt):
            ax_nm.axhline(opt, color=c if multi else "0.2", linestyle="--", linewidth=1.0)
            opt_texts.append(f"{rec.name + ': ' if multi else ''}{fmt_num(opt, 4)}, {opt_src}")
        lp = pos & (L > 0)
        ax_l.plot(t[lp], L[lp], color=c, marker=style.marker(i), markersize=3)
        ax_p.plot(t[pos], pm[pos], color=c, marker=style.marker(i), markersize=3)
        if np.isfinite(lo).any() and np.isfinite(up).any():
            ax_p.fill_between(t[pos], lo[pos], up[pos], color=c, alpha=0.18, linewidth=0)
        for j, (k, nice) in enumerate(_ufm_nc_keys(rec)):
            v = rec.columns[k]
            m = pos & (v > 0)
            # one experiment: a colour per metric; several: the experiment's colour, a style per metric
            cc = style.color(j + 1) if not multi else c
            ls = "-" if not multi else style.LINESTYLES[j % len(style.LINESTYLES)]
            nc_style.setdefault(nice, (cc if not multi else "0.3", ls))
            ax_nc.plot(t[m], v[m], color=cc, linestyle=ls)
            for q in np.flatnonzero(pos):
                rows.append([rec.name, t[q], k, v[q]])
        llo, lup = rec.get("loss_lower"), rec.get("loss_upper")
        if llo is not None and lup is not None:
            mb = pos & (llo > 0) & (lup > 0)
            ax_l.fill_between(t[mb], llo[mb], lup[mb], color=c, alpha=0.18, linewidth=0)
            for q in np.flatnonzero(pos):
                rows.append([rec.name, t[q], "loss_lower_bound", llo[q]])
                rows.append([rec.name, t[q], "loss_upper_bound", lup[q]])
        for q in np.flatnonzero(pos):  # step 0 is off the log axis: not drawn, not in the CSV
            rows.append([rec.name, t[q], "normalized_margin", nm[q]])
            rows.append([rec.name, t[q], "loss", L[q]])
            rows.append([rec.name, t[q], "p_min", pm[q]])
            rows.append([rec.name, t[q], "p_min_lower_bound", lo[q]])
            rows.append([rec.name, t[q], "p_min_upper_bound", up[q]])
        rows.append([rec.name, "", "certified_normalized_margin", opt])
        if multi:
            handles.append(Line2D([], [], color=c, marker=style.marker(i), markersize=3, label=rec.name))
    for ax in axes.flat:
        style.log_axis(ax, "x")
        ax.set_xlabel("gradient-descent step t (log scale)")
    ax_nm.set_ylabel(r"$p_{\min} / (\frac{1}{2}(\|W\|_F^2 + \|H\|_F^2))$")
    style.log_axis(ax_l, "y")
    ax_l.set_ylabel("cross-entropy loss (log scale)")
    ax_p.set_ylabel(r"$p_{\min}$ (logit units)")
    style.panel_label(ax_nm, "(a) normalized margin → certified optimum")
    style.panel_label(ax_l, "(b) training loss")
    style.panel_label(ax_p, r"(c) $p_{\min}$ within its CE sandwich bounds")
    style.panel_label(ax_nc, "(d) neural-collapse metrics")
    if nc_style:
        style.log_axis(ax_nc, "y")
        ax_nc.set_ylabel("metric value (log scale)")
        for k, (cc, ls) in nc_style.items():
            handles.append(Line2D([], [], color=cc, linestyle=ls, label=k))
    else:
        ax_nc.text(0.5, 0.5, "no NC metrics recorded", transform=ax_nc.transAxes, ha="center",
                   va="center", color="0.4")
    if opt_texts:
        handles.append(Line2D([], [], color="0.2", linestyle="--", label="certified optimum"))
    if any(np.isfinite(r[3]) for r in rows if r[2] == "p_min_lower_bound"):
        from matplotlib.patches import Patch
        handles.append(Patch(color="0.3", alpha=0.25, label="CE–$p_{\\min}$ sandwich bounds"))
    style.legend_below(fig, handles)
    out_dir = Path(out_dir)
    png, pdf = style.save_figure(fig, out_dir, name)
    csv = write_csv(out_dir / f"{name}.csv", ["experiment", "step", "quantity", "value"], rows)
    caption = ("Claim 1b, unconstrained feature model: gradient descent on the unregularized cross-entropy "
               "over (W, H). (a) Normalized margin p_min/(½(||W||²+||H||²)) against step; dashed: the "
               "optimum certified by the convex nuclear-norm program "
               f"({'; '.join(opt_texts) if opt_texts else 'not in the results file'}). (b) Loss → 0; "
               "(c) p_min → ∞; shaded in (b) and (c): the exact sandwich (1/N)log(1+e^{−p_min}) ≤ L ≤ "
               "log(1+(K−1)e^{−p_min}) read as bounds on L given p_min and on p_min given L (docs/theory.md §2); "
               "(d) NC metrics → 0.")
    return FigureResult(name, png, pdf, csv, caption)


def _with_svm(runs: Sequence[RunData]) -> list[RunData] | Skip:
    """The runs whose analysis.json has an SVM solution at some checkpoint."""
    return [r for r in runs if r.analysis is not None and np.isfinite(r.analysis.col("svm", "angle_deg")).any()
            ] or Skip("no run has analysis.json with an SVM solution (run `ncmargin analyze RUN`; before 100% "
                      "train accuracy there is none)")


register(Figure(name="ce_svm_deep", inputs="runs", order=40, draw=plot_ce_svm_deep, select=_with_svm,
                caption="claim 1c: angle between W_t and the SVM solution W*(H_t), and margin ratio, against epoch"))
register(Figure(name="ce_svm_fixed", inputs="claim1a", each=True, draw=plot_ce_svm_fixed,
                caption="claim 1a: angle to W* (with an a + c/log t fit) and margin ratio against GD step"))
register(Figure(name="ce_svm_ufm", inputs="claim1b", each=True, draw=plot_ufm,
                caption="claim 1b: normalized margin against its certified optimum, loss, p_min, NC metrics"))
