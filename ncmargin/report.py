"""``report.md``: the verdict table, the key numbers of each claim, timings, versions and figures.

Reads saved results only (docs/results.md): ``OUT/verdicts.json``, ``OUT/claim1a/fixed_features.json``,
``OUT/claim1b/ufm.json``, ``OUT/runs/*/analysis.json``; figures are the ``FigureResult`` list returned by
:func:`ncmargin.figures.make_figures` or, when none is given, the PNG files found in ``OUT/figures``.
A claim module may add its own section with :func:`register_section` (e.g. claim 3's sweep table).
A missing optional file is said in the report, never a crash.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ncmargin.empirical.verify import _get
from ncmargin.io import atomic_write_text, read_json

__all__ = [
    "SECTIONS",
    "register_section",
    "render_report",
    "render_run_report",
    "write_report",
    "write_run_report",
]

# claim id -> fn(out_dir, verdicts_of_that_claim, doc) -> markdown (without the heading)
SECTIONS: dict[str, Callable[[Path, list[dict], dict], str]] = {}

CLAIM_TITLES = {
    "1a": "Claim 1a — CE → SVM on fixed features (Soudry et al. 2018)",
    "1b": "Claim 1b — CE → SVM in the unconstrained feature model (Gao et al. Thm 4.1)",
    "1c": "Claim 1c — CE → SVM on deep-network features (THEORY §3c)",
    "2": "Claim 2 — the margin bound against the test error (THEORY §4)",
    "3": "Claim 3 — non-conservative generalization across ETF alignments (THEORY §5)",
}
_MARK = {"pass": "**pass**", "fail": "**FAIL**", "inconclusive": "inconclusive"}


def register_section(claim_id: str, fn: Callable | None = None):
    """Register ``fn(out_dir, verdicts, doc) -> markdown`` as the key-numbers section of a claim."""
    def deco(f):
        SECTIONS[str(claim_id)] = f
        return f
    return deco(fn) if fn is not None else deco


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.{max(digits - 1, 1)}e}"
        return f"{v:.{digits}g}"
    return str(v)


def _cell(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: Iterable[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(c) for c in r) + " |")
    return "\n".join(lines)


MAX_RUN_IDS = 3  # run ids shown per verdict in the report's table (verdicts.json keeps the full list)


def _runs_cell(runs, most: int = MAX_RUN_IDS) -> str:
    """The first ``most`` run ids, then ``… (+N more)`` (a claim-3 verdict names every run of a sweep)."""
    runs = [str(r) for r in runs or []]
    if len(runs) <= most:
        return ", ".join(runs)
    return ", ".join(runs[:most]) + f", … (+{len(runs) - most} more)"


def _read_optional(p: Path) -> tuple[Any, str | None]:
    if not p.is_file():
        return None, f"`{p.name}` not found"
    try:
        return read_json(p), None
    except ValueError as exc:
        return None, str(exc)


# ------------------------------------------------------------------------------------ claim sections

def _section_1a(out_dir: Path, verdicts: list[dict], doc: dict) -> str:
    data, err = _read_optional(out_dir / "claim1a" / "fixed_features.json")
    if data is None:
        return f"_No records ({err})._"
    rows = []
    for e in data.get("experiments", []):
        recs = e.get("records") or [{}]
        last = recs[-1]
        fit = e.get("fit_inverse_log") or {}
        rows.append([e.get("name"), e.get("N"), e.get("d"), e.get("K"), e.get("schedule"), _fmt(last.get("step")),
                     _fmt(last.get("angle_deg")), _fmt(last.get("margin_ratio")), _fmt(last.get("loss")),
                     f"{_fmt(fit.get('a'))} + {_fmt(fit.get('c'))}/log t (R²={_fmt(fit.get('r2'), 3)})",
                     _fmt(e.get("seconds"), 3)])
    return ("Gradient descent on the unregularized CE over W alone, W* from the exact multi-class SVM "
            "(`ncmargin.solvers.multiclass_svm`), records at log-spaced steps.\n\n" + _table(
                ["experiment", "N", "d", "K", "schedule", "steps", "final angle (°)", "margin ratio", "loss",
                 "fit angle ≈ a + c/log t", "seconds"], rows))


def _section_1b(out_dir: Path, verdicts: list[dict], doc: dict) -> str:
    data, err = _read_optional(out_dir / "claim1b" / "ufm.json")
    if data is None:
        return f"_No records ({err})._"
    recs = data.get("records") or [{}]
    last = recs[-1]
    cert = data.get("certificate") or {}
    opt = data.get("normalized_margin_optimum")
    nm = last.get("normalized_margin")
    lines = [
        f"K = {data.get('K')}, n = {data.get('n')} per class, d = {_fmt(data.get('d'))}; "
        f"{len(recs)} records up to step {_fmt(last.get('step'))}.",
        "",
        _table(["quantity", "value"], [
            ["nuclear-norm optimum ||Z*||_* (certified)", _fmt(data.get("nuclear_norm_objective"), 8)],
            ["closed form (K−1)√n", _fmt(data.get("closed_form_objective"), 8)],
            ["certificate: relative duality gap", _fmt(cert.get("duality_gap"))],
            ["optimal normalized margin 1/||Z*||_*", _fmt(opt, 6)],
            ["final normalized margin p_min/(½(||W||²+||H||²))", _fmt(nm, 6)],
            ["ratio final/optimal", _fmt(nm / opt if (nm and opt) else None, 6)],
            ["final loss", _fmt(last.get("loss"))],
            ["final p_min", _fmt(last.get("p_min"))],
            ["final NC1 (Tr(Σ_W Σ_B^+)/K)", _fmt(last.get("nc1_topk", last.get("nc1")))],
            ["seconds", _fmt(data.get("seconds"), 3)],
        ]),
    ]
    return "\n".join(lines)


def _run_rows(analysis: dict) -> list[list]:
    rows = []
    for r in analysis.get("checkpoints", []):
        b = r.get("bound") or {}
        best = [_get(b, v, "best", "total") for v in ("last_layer", "spectral")]
        best = [x for x in best if isinstance(x, (int, float))]
        rows.append([
            r.get("epoch"), "✓" if r.get("terminal") else "", _fmt(r.get("train_acc")), _fmt(r.get("test_acc")),
            _fmt(r.get("p_min")), _fmt(r.get("normalized_margin")), _fmt(_get(r, "svm", "angle_deg")),
            _fmt(_get(r, "svm", "margin_ratio")), _fmt(_get(r, "nc", "nc1_topk")),
            _fmt(_get(b, "frozen", "at_pmin", "total")), _fmt(_get(b, "last_layer", "at_pmin", "total")),
            _fmt(_get(b, "spectral", "at_pmin", "total")), _fmt(min(best) if best else None),
        ])
    return rows


_RUN_HEADER = ["epoch", "TPT", "train acc", "test acc", "p_min", "norm. margin", "angle to W* (°)",
               "margin ratio", "NC1", "bound @p_min: frozen", "bound @p_min: last layer",
               "bound @p_min: spectral", "best-γ bound (min)"]


def _analyses(out_dir: Path, verdicts: list[dict]) -> list[tuple[str, dict | None, str | None]]:
    names = []
    for v in verdicts:
        for r in v.get("runs", []):
            if r not in names:
                names.append(r)
    out = []
    for n in names:
        p = out_dir / "runs" / n / "analysis.json"
        data, err = _read_optional(p)
        out.append((n, data, err))
    return out


def _section_runs(out_dir: Path, verdicts: list[dict], doc: dict) -> str:
    parts = []
    for name, a, err in _analyses(out_dir, verdicts):
        if a is None:
            parts.append(f"**{name}**: analysis not available ({err}).")
            continue
        meta = a.get("meta", {})
        parts.append(f"**{name}** — {meta.get('dataset')}, {meta.get('model')} (depth {meta.get('depth')}, width "
                     f"{meta.get('width')}), weight decay "
                     f"{_fmt(meta.get('weight_decay'))}, onset of 100% train accuracy at epoch "
                     f"{_fmt(a.get('onset_epoch'))}.\n\n" + _table(_RUN_HEADER, _run_rows(a)))
        notes = sorted({str(_get(r, "bound", "spectral", "error")) for r in a.get("checkpoints", [])
                        if _get(r, "bound", "spectral", "error")})
        if notes:
            parts.append("Spectral bound not available: " + "; ".join(notes)[:400])
    return "\n\n".join(parts) if parts else "_No runs._"


SECTIONS.update({"1a": _section_1a, "1b": _section_1b, "1c": _section_runs})


def _section_2(out_dir: Path, verdicts: list[dict], doc: dict) -> str:
    rows = []
    for v in verdicts:
        d = v.get("detail", {})
        if "bound" in d:
            te = [x for x in d.get("test_error") or [] if isinstance(x, (int, float))]
            rows.append([v["id"], _fmt(v.get("value")), _fmt(d.get("p_value")), d.get("n"), len(set(te)),
                         _fmt(_get(d, "gap_correlation", "rho")), _fmt(_get(d, "gap_correlation", "p_value"))])
    text = ("The bound of THEORY §4 (docs/theory.md §5) per checkpoint is in the tables of claim 1c above "
            "(columns “bound …”); here the rank correlation of the bound at γ = p_min with the test error and "
            "with the gap over the terminal-phase checkpoints.\n\n")
    if rows:
        text += _table(["verdict id", "Spearman ρ (test error)", "p", "n", "distinct test errors", "ρ (gap)",
                        "p (gap)"], rows)
    return text


SECTIONS["2"] = _section_2


# ----------------------------------------------------------------------------------------- figures

def _figure_entries(out_dir: Path, figures) -> list[dict]:
    out = []
    if figures:
        for f in figures:
            png = getattr(f, "png", None) or (f.get("png") if isinstance(f, dict) else None)
            if png is None:
                continue
            d = f if isinstance(f, dict) else {k: getattr(f, k, None) for k in ("name", "pdf", "csv", "caption")}
            out.append({"name": d.get("name") or Path(png).stem, "png": Path(png), "pdf": d.get("pdf"),
                        "csv": d.get("csv"), "caption": d.get("caption") or ""})
        return out
    fig_dir = out_dir / "figures"
    index = fig_dir / "figures.json"  # written by ncmargin.figures.make_figures: names, files, captions
    if index.is_file():
        try:
            for f in read_json(index).get("figures", []):
                png = fig_dir / f["png"]
                if png.is_file():
                    out.append({"name": f.get("name") or png.stem, "png": png,
                                "pdf": fig_dir / f["pdf"] if f.get("pdf") else None,
                                "csv": fig_dir / f["csv"] if f.get("csv") else None,
                                "caption": f.get("caption") or ""})
            return out
        except (ValueError, KeyError, TypeError, AttributeError):
            out = []  # malformed index: fall back to the PNG files themselves
    if fig_dir.is_dir():
        for png in sorted(fig_dir.glob("*.png")):
            out.append({"name": png.stem, "png": png, "pdf": png.with_suffix(".pdf"),
                        "csv": png.with_suffix(".csv"), "caption": ""})
    return out


def _rel(p, base: Path) -> str:
    try:
        return Path(os.path.relpath(Path(p).resolve(), base.resolve())).as_posix()
    except ValueError:  # different drive (Windows)
        return Path(p).as_posix()


# ------------------------------------------------------------------------------------------ report

def render_report(out_dir: str | os.PathLike, doc: dict | None = None, figures=None) -> str:
    """The markdown of ``OUT/report.md`` from ``OUT/verdicts.json`` (or ``doc``) and the figures."""
    from ncmargin.empirical.verify import load_plugins, read_verdicts

    load_plugins()  # claim modules (e.g. claim 3) register their sections on import
    out_dir = Path(out_dir)
    if doc is None:
        doc = read_verdicts(out_dir)
    verdicts = doc.get("verdicts", [])
    counts = {k: sum(v["verdict"] == k for v in verdicts) for k in ("pass", "fail", "inconclusive")}
    L = [f"# ncmargin verification report — preset `{doc.get('preset')}`", "",
         f"Created {doc.get('created')} with ncmargin {doc.get('ncmargin_version')}"
         f"{', device ' + str(doc['device']) if doc.get('device') else ''}. "
         f"Claims: {', '.join(doc.get('claims') or sorted({v['claim'] for v in verdicts}))}. "
         f"Verdicts: {counts['pass']} pass, {counts['fail']} fail, {counts['inconclusive']} inconclusive.", "",
         "Theory, statistics and thresholds: `docs/theory.md` §9 of the ncmargin repository (rule: *pass* = predicted direction and p < α; *fail* = wrong direction or threshold "
         "missed; *inconclusive* = right direction without significance, too few points, or an error).", ""]
    L += ["## Verdicts", "", _table(
        ["claim", "id", "statement", "statistic", "value", "threshold", "verdict", "runs"],
        [[v["claim"], f"`{v['id']}`", v["statement"], v["statistic"], _fmt(v.get("value")),
          _fmt(v.get("threshold")), _MARK.get(v["verdict"], v["verdict"]), _runs_cell(v.get("runs"))]
         for v in verdicts]), ""]
    figs = _figure_entries(out_dir, figures)
    by_claim: dict[str, list[dict]] = {}
    for v in verdicts:
        by_claim.setdefault(v["claim"], []).append(v)
    for claim, vs in by_claim.items():
        L += [f"## {CLAIM_TITLES.get(claim, 'Claim ' + claim)}", ""]
        fn = SECTIONS.get(claim)
        if fn is not None:
            try:
                L += [fn(out_dir, vs, doc), ""]
            except Exception as exc:  # noqa: BLE001 - a broken section must not lose the report
                L += [f"_Section could not be rendered: {type(exc).__name__}: {exc}_", ""]
        for v in vs:
            if v["id"].endswith(".error"):
                L += [f"- `{v['id']}`: {_get(v, 'detail', 'error')}"]
        L.append("")
    L += ["## Figures", ""]
    if figs:
        for f in figs:
            rel = _rel(f["png"], out_dir)
            extra = []
            for k in ("pdf", "csv"):
                if f.get(k) and Path(f[k]).is_file():
                    extra.append(f"[{k.upper()}]({_rel(f[k], out_dir)})")
            L += [f"### {f['name']}", "", f"![{f['name']}]({rel})", "",
                  (f["caption"] + " " if f["caption"] else "") + " ".join(extra), ""]
    else:
        why = [n for n in doc.get("notes", []) if "figure" in n]
        L += ["Figures not generated" + (f" ({'; '.join(why)})" if why else "") +
              "; run `ncmargin figures " + str(out_dir) + "` to make them.", ""]
    tm = doc.get("timings") or {}
    if tm:
        L += ["## Timings", "", _table(["step", "seconds"], [[k, _fmt(float(v), 4)] for k, v in tm.items()]), ""]
    L += ["Runs trained: " + (", ".join(doc.get("trained") or []) or "none") + "; resumed: " +
          (", ".join(doc.get("resumed") or []) or "none") + "; reused: " +
          (", ".join(doc.get("reused") or []) or "none") + ".", ""]
    if doc.get("notes"):
        L += ["Notes: " + "; ".join(doc["notes"]), ""]
    ver = doc.get("versions") or {}
    if ver:
        L += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in ver.items() if v), ""]
    return "\n".join(L).rstrip() + "\n"


def write_report(out_dir: str | os.PathLike, doc: dict | None = None, figures=None) -> Path:
    """Write ``OUT/report.md`` (atomic) and return its path."""
    out_dir = Path(out_dir)
    text = render_report(out_dir, doc, figures)
    p = out_dir / "report.md"
    atomic_write_text(p, text)
    return p


def render_run_report(run_dir: str | os.PathLike, analysis: dict, verdicts: list[dict], figures=None) -> str:
    """The markdown of ``RUN/report.md`` for one run: claims 1c and 2 on that run alone."""
    run_dir = Path(run_dir)
    meta = analysis.get("meta", {})
    L = [f"# ncmargin run report — `{run_dir.name}`", "",
         f"{meta.get('dataset')}, {meta.get('model')}, weight decay {_fmt(meta.get('weight_decay'))}, seed "
         f"{meta.get('seed')}; onset of 100% train accuracy at epoch {_fmt(analysis.get('onset_epoch'))}.", "",
         "## Verdicts (claims 1c and 2 on this run)", "",
         _table(["claim", "id", "statistic", "value", "threshold", "verdict"],
                [[v["claim"], f"`{v['id']}`", v["statistic"], _fmt(v.get("value")), _fmt(v.get("threshold")),
                  _MARK.get(v["verdict"], v["verdict"])] for v in verdicts]), "",
         "## Checkpoints", "", _table(_RUN_HEADER, _run_rows(analysis)), ""]
    figs = _figure_entries(run_dir, figures)
    L += ["## Figures", ""]
    if figs:
        for f in figs:
            L += [f"![{f['name']}]({_rel(f['png'], run_dir)})", "", f["caption"], ""]
    else:
        L += [f"Figures not generated; run `ncmargin figures {run_dir}`.", ""]
    return "\n".join(L).rstrip() + "\n"


def write_run_report(run_dir: str | os.PathLike, *, settings: dict | None = None, figures=None) -> Path:
    """Analyse ``run_dir`` (reusing ``analysis.json``) and write ``RUN/report.md``."""
    from ncmargin.empirical.analysis import analyze_run
    from ncmargin.empirical.verify import verdicts_1c, verdicts_2

    run_dir = Path(run_dir)
    analysis = analyze_run(run_dir)
    verdicts = verdicts_1c(analysis, settings) + verdicts_2(analysis, settings)
    p = run_dir / "report.md"
    atomic_write_text(p, render_run_report(run_dir, analysis, verdicts, figures))
    return p
