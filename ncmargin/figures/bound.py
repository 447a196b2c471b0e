"""Claim 2: the margin bound against the measured test error and generalization gap over epochs.

The bound (docs/theory.md §5, [our form] of Gao et al. 2023 Thm 4.4 / Cor. 4.5 after Mohri, Rostamizadeh &
Talwalkar 2018, Thm 9.2 made uniform over γ):
    R ≤ (1/N)#{i: p_i ≤ γ} + (4K/γ)·R_N + sqrt(log(log2(2Γ/γ))/N) + sqrt(log(2/δ)/(2N)),
evaluated by ``ncmargin analyze`` at γ = p_min and at the best γ on a grid, for each complexity measure
(last layer on fixed features; spectral norm of the whole network; normalized margins). This module only
plots what analysis.json holds: the terms stacked, the total, and the measured errors."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from . import style
from .base import FigureResult, fmt_num, write_csv
from .data import RunData, as_float, read_run, run_labels
from .registry import Figure, Skip, item_name, register

NAME = "bound_<run>"

__all__ = ["bound_terms", "plot_bound"]

VARIANT_TITLES = {"last_layer": "last layer (fixed features)", "spectral": "whole network (spectral)",
                  "normalized": "normalized margins", "frozen": "class fixed at onset (Cor. 4.5 reading)"}
SHORT_TITLES = {"last_layer": "last layer", "spectral": "spectral (whole net)", "normalized": "normalized",
                "frozen": "class fixed at onset"}
TOTAL_KEYS = ("total", "bound", "value")
# Numeric entries of a terms dict that are not summands of the bound.
NOT_TERMS = {"total", "bound", "value", "gamma", "margin", "vacuous", "n", "N", "K", "delta", "Gamma",
             "gamma_max", "r", "Lambda", "rademacher", "R_N", "radius", "lambda", "n_train", "num_classes",
             "grid_index", "complexity_measure", "spectral_complexity", "frac_below_gamma", "log_terms",
             "factor"}
# Preferred stacking order (bottom to top) and legend names, for the names we know.
TERM_NAMES = [
    (("empirical_margin_loss", "empirical", "margin_loss", "empirical_term"), "empirical margin loss"),
    (("complexity", "complexity_term", "rademacher_term"), "complexity (4K/γ)·R_N"),
    (("uniform_gamma", "loglog", "union", "union_term", "loglog_term"), "union over γ"),
    (("confidence", "confidence_term", "delta_term"), "confidence log(2/δ)"),
]
_RTOL = 1e-6
# terms: sky blue, orange, yellow, pink; totals in panel (d) use blue, vermillion, green (no clash)
TERM_COLORS = {"empirical margin loss": style.OKABE_ITO[4], "complexity (4K/γ)·R_N": style.OKABE_ITO[5],
               "union over γ": style.OKABE_ITO[6], "confidence log(2/δ)": style.OKABE_ITO[3]}


def bound_terms(terms: dict, where: str) -> tuple[list[tuple[str, str, float]], float, str]:
    """Split one terms dict into [(key, legend name, value)], the total and a warning ('' if none)."""
    if not isinstance(terms, dict):
        return [], math.nan, ""
    total = math.nan
    for k in TOTAL_KEYS:
        if k in terms:
            total = as_float(terms[k])
            break
    known = [(k, nice) for alias, nice in TERM_NAMES for k in alias if k in terms]
    out = []
    if known:  # the documented term names (docs/theory.md §5): exactly those are the summands
        for k, nice in known:
            out.append((k, nice, as_float(terms[k])))
    else:  # unknown writer: every numeric entry that is not a known non-summand
        for k, v in terms.items():
            if k not in NOT_TERMS and (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))):
                out.append((k, k.replace("_", " "), as_float(v)))
    warn = ""
    s = sum(v for _, _, v in out)
    if not np.isfinite(total):
        total = s
    elif np.isfinite(s) and abs(s - total) > _RTOL * max(1.0, abs(total)):
        warn = (f"{where}: the terms {[k for k, _, _ in out]} sum to {s:.6g}, not to the total {total:.6g}; "
                f"plotted as given")
    return out, total, warn


@style.styled
def plot_bound(run: RunData | str | os.PathLike, out_dir: str | os.PathLike, name: str | None = None,
               gamma_choice: str = "at_pmin") -> FigureResult:
    """One panel per complexity measure with the bound's terms stacked at γ = p_min (linear y, line at 1),
    and one log-y panel with every total (γ = p_min solid, best γ dashed) beside the measured test
    error and gap. Needs analysis.json with ``checkpoints[].bound``."""
    if not isinstance(run, RunData):
        run = read_run(run)
        run_labels([run])
    if not run.label:
        run_labels([run])
    an = run.analysis
    if an is None:
        raise FileNotFoundError(f"{run.run_dir / 'analysis.json'}: no such file; run "
                                f"`ncmargin analyze {run.run_dir}` first")
    name = name or item_name(NAME, run, 0)
    variants = []
    for cp in an.checkpoints:
        b = cp.get("bound")
        if isinstance(b, dict):
            for v in b:
                if (isinstance(b[v], dict) and v not in variants
                        and any(isinstance(b[v].get(g), dict) for g in (gamma_choice, "best"))):
                    variants.append(v)
    if not variants:
        raise ValueError(f"{an.path}: no checkpoint has a 'bound' entry (it is null before the onset of "
                         f"100% train accuracy); nothing to plot")
    ep_all = an.epochs
    test_err = an.col("test_error")
    if not np.isfinite(test_err).any():
        acc = an.col("test_acc")
        test_err = 1.0 - (acc / 100.0 if np.nanmax(acc) > 1.0 else acc)
    elif np.nanmax(test_err) > 1.0:  # percent
        test_err = test_err / 100.0
    gap = an.col("gap")
    if np.isfinite(gap).any() and np.nanmax(np.abs(gap)) > 1.0:
        gap = gap / 100.0
    nv = len(variants)
    fig = style.Figure(figsize=(style.PAGE_WIDTH, 5.0), layout="constrained")
    gs = fig.add_gridspec(2, nv, height_ratios=[1.0, 1.1])
    axes = [fig.add_subplot(gs[0, j]) for j in range(nv)]
    axes.append(fig.add_subplot(gs[1, :]))
    rows, warns, handles_terms = [], [], {}
    log_stacks: list[str] = []
    ax_cmp = axes[nv]
    totals_txt = []
    for j, v in enumerate(variants):
        ax = axes[j]
        per_ep, totals = [], []
        term_names: list[tuple[str, str]] = []
        for cp, e in zip(an.checkpoints, ep_all):
            b = cp.get("bound") if isinstance(cp.get("bound"), dict) else {}
            t = b.get(v, {}) if isinstance(b.get(v), dict) else {}
            terms, total, warn = bound_terms(t.get(gamma_choice), f"{an.path} epoch {int(e)} {v}")
            if warn:
                warns.append(warn)
            _, best_total, _ = bound_terms(t.get("best"), "")
            if terms:
                per_ep.append((e, terms))
                for k, nice, _ in terms:
                    if (k, nice) not in term_names:
                        term_names.append((k, nice))
            totals.append((e, total, best_total))
            for k, nice, val in terms:
                rows.append([v, gamma_choice, e, k, val])
            if terms:
                rows.append([v, gamma_choice, e, "total", total])
            if np.isfinite(best_total):
                rows.append([v, "best", e, "total", best_total])
        if per_ep:
            x = np.array([e for e, _ in per_ep])
            ys = [np.array([{kk: val for kk, _, val in terms}.get(k, 0.0) for _, terms in per_ep])
                  for k, _ in term_names]
            ys = [np.nan_to_num(y, nan=0.0) for y in ys]
            # smallest terms at the bottom, so that on a log axis each band is visible
            order = np.argsort([float(np.median(y)) for y in ys], kind="stable")
            cum = np.cumsum([ys[q] for q in order], axis=0)
            pos_vals = cum[cum > 0]
            use_log = pos_vals.size > 0 and cum[-1].max() / pos_vals.min() > 100
            floor = pos_vals.min() / 3 if use_log else 0.0
            lower = np.full(len(x), floor)
            for q, top in zip(order, cum):
                k, nice = term_names[q]
                c = TERM_COLORS.get(nice, style.color(q))
                ax.fill_between(x, lower, np.maximum(top, floor), color=c, alpha=0.85, linewidth=0)
                handles_terms.setdefault(nice, c)
                lower = np.maximum(top, floor)
            ax.plot(x, cum[-1], color="0.1", linewidth=1.0)
            if use_log:
                style.log_axis(ax, "y")
                ax.set_ylim(bottom=floor)
                log_stacks.append(SHORT_TITLES.get(v, v))
            else:
                ax.set_ylim(bottom=0)
            if len(x) > 1:
                style.log_axis(ax, "x")
        style.mark_vacuous(ax)
        ax.set_xlabel("epoch (log scale)")
        if j == 0:
            ax.set_ylabel("bound on test error\n(terms stacked)")
        style.panel_label(ax, f"({chr(97 + j)}) {SHORT_TITLES.get(v, v)}")
        e_arr = np.array([e for e, _, _ in totals])
        tot = np.array([t for _, t, _ in totals])
        best = np.array([b for _, _, b in totals])
        c = style.color(j)
        m = np.isfinite(tot) & (tot > 0)
        ax_cmp.plot(e_arr[m], tot[m], color=c, marker=style.marker(j), label=f"{VARIANT_TITLES.get(v, v)}")
        mb = np.isfinite(best) & (best > 0)
        if mb.any():
            ax_cmp.plot(e_arr[mb], best[mb], color=c, linestyle="--", marker=style.marker(j),
                        markerfacecolor="none")
        if m.any():
            totals_txt.append(f"{VARIANT_TITLES.get(v, v)}: {fmt_num(np.nanmin(tot[m]))}–"
                              f"{fmt_num(np.nanmax(tot[m]))}")
    # log axes: epoch 0 (initialization) and non-positive errors/gaps cannot be drawn; the CSV keeps
    # only what is drawn
    me = np.isfinite(test_err) & (test_err > 0) & (ep_all > 0)
    ax_cmp.plot(ep_all[me], test_err[me], color="0.1", marker="o", markersize=3, label="test error")
    mg = np.isfinite(gap) & (gap > 0) & (ep_all > 0)
    ax_cmp.plot(ep_all[mg], gap[mg], color="0.45", linestyle="-.", marker="x", markersize=3,
                label="gap (test − train error)")
    for k in range(len(ep_all)):
        if me[k]:
            rows.append(["measured", "", ep_all[k], "test_error", test_err[k]])
        if mg[k]:
            rows.append(["measured", "", ep_all[k], "gap", gap[k]])
    style.log_axis(ax_cmp, "y")
    style.log_axis(ax_cmp, "x")
    style.mark_vacuous(ax_cmp, annotate=False)  # crowded there: named in the legend instead
    style.mark_onset(ax_cmp, run.onset_epoch, "0.3")
    ax_cmp.set_xlabel("epoch (log scale)")
    ax_cmp.set_ylabel("error / bound (log scale)")
    style.panel_label(ax_cmp, f"({chr(97 + nv)}) bound totals vs measured test error and gap")
    from matplotlib.patches import Patch
    handles = [Patch(color=c, alpha=0.85, label=n) for n, c in handles_terms.items()]
    handles += [Line2D([], [], color=style.color(j), marker=style.marker(j), label=f"total: {VARIANT_TITLES.get(v, v)}")
                for j, v in enumerate(variants)]
    handles += [Line2D([], [], color="0.3", linestyle="-", label="γ = p_min"),
                Line2D([], [], color="0.3", linestyle="--", marker="o", markerfacecolor="none", label="best γ on grid"),
                Line2D([], [], color="0.1", marker="o", markersize=3, label="test error"),
                Line2D([], [], color="0.45", linestyle="-.", marker="x", markersize=3, label="gap (test − train error)"),
                Line2D([], [], color="0.3", linestyle=":", label="100% train acc."),
                Line2D([], [], color="0.35", linestyle="--", linewidth=0.9, label="1 (vacuous above)")]
    style.legend_below(fig, handles, ncols=3)
    fig.suptitle(f"{run.label}: terms at γ = p_min" if gamma_choice == "at_pmin" else run.label,
                 fontsize=8)
    out_dir = Path(out_dir)
    png, pdf = style.save_figure(fig, out_dir, name)
    csv = write_csv(out_dir / f"{name}.csv", ["complexity", "gamma", "epoch", "quantity", "value"], rows)
    vac = "vacuous (above 1) throughout" if all(
        as_float(r[4]) > 1 for r in rows if r[3] == "total" and np.isfinite(as_float(r[4]))) else \
        "not vacuous at every checkpoint"
    caption = (f"Claim 2, margin bound for {run.label}. Panels "
               f"{', '.join(f'({chr(97 + j)})' for j in range(nv))}: the bound's terms stacked, at γ = p_min, "
               f"for each complexity measure (total ranges {'; '.join(totals_txt) or 'n/a'}); the dashed line "
               f"marks 1, above which a bound on an error probability says nothing. Panel ({chr(97 + nv)}): "
               f"every total (solid: γ = p_min; dashed: best γ on the grid) against the measured test error "
               f"and gap on a log scale. The bound is {vac}; what claim 2 needs is the trend, not the level. "
               f"Checkpoints before 100% train accuracy have no bound at γ = p_min (p_min ≤ 0).")
    if log_stacks:
        caption += (f" The stacked panels for {', '.join(log_stacks)} use a log axis (terms span more than "
                    f"two decades): smallest terms at the bottom, band heights are not proportional to "
                    f"the terms, the top edge is the total.")
    if warns:
        caption += f" Warning: {warns[0]}" + (f" (and {len(warns) - 1} more)" if len(warns) > 1 else "")
    return FigureResult(name, png, pdf, csv, caption)


def _with_bound(run: RunData) -> RunData | Skip:
    if run.analysis is None:
        return Skip(f"{run.run_dir}/analysis.json absent (run `ncmargin analyze`)")
    if not any(isinstance(cp.get("bound"), dict) for cp in run.analysis.checkpoints):
        return Skip(f"{run.analysis.path}: no checkpoint has a bound")
    return run


register(Figure(name=NAME, inputs="runs", each=True, order=50, draw=plot_bound, select=_with_bound,
                caption="claim 2: the margin bound's terms stacked, against the test error and gap"))
