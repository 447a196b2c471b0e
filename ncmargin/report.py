"""The report renderer: ``report.md`` markdown from stored results only (no computation).

:func:`render_report` turns a verdicts document (``OUT/verdicts.json``, docs/results.md) and the figures
(the ``FigureResult`` list of :func:`ncmargin.figures.make_figures` or, when none is given, the index
``OUT/figures/figures.json`` or the PNG files in ``OUT/figures``) into markdown. The heading and the
key-numbers section of each claim come from the claims passed in (objects with ``id``, ``title``,
``section(out_dir, verdicts, doc)`` and ``figures``: the registry entries of ncmargin.empirical.claims, which
the caller, ncmargin.pipeline, supplies); this module imports none of them. A missing optional file or a
section that fails is said in the report, never a crash.
"""

from __future__ import annotations

import os
from pathlib import Path

from ncmargin.markdown import fmt, table
from ncmargin.store import FiguresIndex
from ncmargin.verdict_merge import skipped_checkpoints

__all__ = ["MAX_RUN_IDS", "render_report", "render_run_report", "runs_cell"]

_MARK = {"pass": "**pass**", "fail": "**FAIL**", "inconclusive": "inconclusive"}

MAX_RUN_IDS = 3  # run ids shown per verdict in the report's table (verdicts.json keeps the full list)


def runs_cell(runs, most: int = MAX_RUN_IDS) -> str:
    """The first ``most`` run ids, then ``… (+N more)`` (a claim-3 verdict names every run of a sweep)."""
    runs = [str(r) for r in runs or []]
    if len(runs) <= most:
        return ", ".join(runs)
    return ", ".join(runs[:most]) + f", … (+{len(runs) - most} more)"


def _figure_matches(pattern: str, name: str) -> bool:
    """A claim's figure name against a drawn figure's: ``<run>`` stands for any run id."""
    if "<run>" in pattern:
        head = pattern.split("<run>")[0]
        return name.startswith(head)
    return name == pattern or (name.startswith(pattern + "_") and name[len(pattern) + 1:].isdigit())


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
    if (fig_dir / FiguresIndex.FILE).is_file():  # written by ncmargin.figures.make_figures
        try:
            index = FiguresIndex.read(fig_dir)
        except ValueError:
            index = None  # malformed index: fall back to the PNG files themselves
        if index is not None:
            for f in index["figures"]:
                png = fig_dir / f["png"]
                if png.is_file():
                    out.append({"name": f["name"], "png": png, "pdf": fig_dir / f["pdf"] if f["pdf"] else None,
                                "csv": fig_dir / f["csv"] if f["csv"] else None, "caption": f["caption"]})
            return out
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

def render_report(out_dir: str | os.PathLike, doc: dict, figures=None, claims=()) -> str:
    """The markdown of ``OUT/report.md`` from a verdicts document, the figures and the claims (their
    titles, sections and figure names; a claim not among them gets a plain heading)."""
    out_dir = Path(out_dir)
    by_id = {str(c.id): c for c in claims}
    verdicts = doc.get("verdicts", [])
    counts = {k: sum(v["verdict"] == k for v in verdicts) for k in ("pass", "fail", "inconclusive")}
    L = [f"# ncmargin verification report — preset `{doc.get('preset')}`", "",
         (f"Created {doc.get('created')} with ncmargin {doc.get('ncmargin_version')}"
         f"{', device ' + str(doc['device']) if doc.get('device') else ''}. "
         f"Claims: {', '.join(doc.get('claims') or sorted({v['claim'] for v in verdicts}))}. "
         f"Verdicts: {counts['pass']} pass, {counts['fail']} fail, {counts['inconclusive']} inconclusive."), "",
         ("Theory, statistics and thresholds: `docs/theory.md` §9 of the ncmargin repository (rule: *pass* = predicted direction and p < α; *fail* = wrong direction or threshold "
         "missed; *inconclusive* = right direction without significance, too few points, or an error)."), ""]
    L += ["## Verdicts", "", table(
        ["claim", "id", "statement", "statistic", "value", "threshold", "verdict", "runs"],
        [[v["claim"], f"`{v['id']}`", v["statement"], v["statistic"], fmt(v.get("value")),
          fmt(v.get("threshold")), _MARK.get(v["verdict"], v["verdict"]), runs_cell(v.get("runs"))]
         for v in verdicts]), ""]
    figs = _figure_entries(out_dir, figures)
    by_claim: dict[str, list[dict]] = {}
    for v in verdicts:
        by_claim.setdefault(v["claim"], []).append(v)
    for claim, vs in by_claim.items():
        c = by_id.get(claim)
        L += [f"## {c.title if c is not None else 'Claim ' + claim}", ""]
        fn = getattr(c, "section", None)
        if fn is not None:
            try:
                L += [fn(out_dir, vs, doc), ""]
            except Exception as exc:  # noqa: BLE001 - a broken section must not lose the report
                L += [f"_Section could not be rendered: {type(exc).__name__}: {exc}_", ""]
        for v in vs:
            if v["id"].endswith(".error"):
                L += [f"- `{v['id']}`: {(v.get('detail') or {}).get('error')}"]
        skipped = skipped_checkpoints({"verdicts": vs})
        for run, eps in skipped.items():
            L += [(f"- run `{run}` judged without its unreadable checkpoint(s) at epoch "
                  f"{', '.join(sorted(eps, key=int))}: {next(iter(eps.values()))}")]
        if skipped:
            L.append("")
        shown = [f["name"] for f in figs if any(_figure_matches(p, f["name"]) for p in getattr(c, "figures", ()))]
        if shown:
            L += ["Figures: " + ", ".join(f"`{n}`" for n in shown) + " (below).", ""]
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
        L += ["## Timings", "", table(["step", "seconds"], [[k, fmt(float(v), 4)] for k, v in tm.items()]), ""]
    L += ["Runs trained: " + (", ".join(doc.get("trained") or []) or "none") + "; resumed: " +
          (", ".join(doc.get("resumed") or []) or "none") + "; reused: " +
          (", ".join(doc.get("reused") or []) or "none") + ".", ""]
    if doc.get("notes"):
        L += ["Notes: " + "; ".join(doc["notes"]), ""]
    ver = doc.get("versions") or {}
    if ver:
        L += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in ver.items() if v), ""]
    return "\n".join(L).rstrip() + "\n"



def render_run_report(run_dir: str | os.PathLike, analysis: dict, verdicts: list[dict], sections: list[str],
                      figures=None, claim_ids=()) -> str:
    """The markdown of ``RUN/report.md`` for one run: the per-run verdicts and sections (pre-rendered by
    the claims that judge a run alone) and the figures."""
    run_dir = Path(run_dir)
    meta = analysis.get("meta", {})
    ids = list(claim_ids) or list(dict.fromkeys(v["claim"] for v in verdicts))
    L = [f"# ncmargin run report — `{run_dir.name}`", "",
         (f"{meta.get('dataset')}, {meta.get('model')}, weight decay {fmt(meta.get('weight_decay'))}, seed "
         f"{meta.get('seed')}; onset of 100% train accuracy at epoch {fmt(analysis.get('onset_epoch'))}."), "",
         f"## Verdicts (claims {' and '.join(ids)} on this run)", "",
         table(["claim", "id", "statistic", "value", "threshold", "verdict"],
               [[v["claim"], f"`{v['id']}`", v["statistic"], fmt(v.get("value")), fmt(v.get("threshold")),
                 _MARK.get(v["verdict"], v["verdict"])] for v in verdicts]), ""]
    for sec in sections:
        L += [sec, ""]
    figs = _figure_entries(run_dir, figures)
    L += ["## Figures", ""]
    if figs:
        for f in figs:
            L += [f"![{f['name']}]({_rel(f['png'], run_dir)})", "", f["caption"], ""]
    else:
        L += [f"Figures not generated; run `ncmargin figures {run_dir}`.", ""]
    return "\n".join(L).rstrip() + "\n"


# ------------------------------------------------------------------- reference result (issue 14)

MAX_COPIED_PNG = 200_000  # bytes: figures copied next to a reference document stay small


def _key_numbers(v: dict) -> str:
    """The power / resolution behind one verdict, from its detail (docs/theory.md §13, §14)."""
    d = v.get("detail") or {}
    pw, res, ch = d.get("power"), d.get("resolution"), d.get("test_error_change")
    parts = []
    if isinstance(pw, dict) and "mde" in pw:
        A, S = pw["design"]
        parts.append(f"A×S = {A}×{S}; MDE = {fmt(pw['mde'], 3)} pts (ω² {fmt(pw['mde_omega2'], 3)}); power at "
                     f"SESOI {fmt(pw['sesoi'], 3)} = {fmt(pw['power_at_sesoi'], 3)}; equiv. p = "
                     f"{fmt(pw['equivalence_p'], 3)}; p_anova = {fmt(pw['p_anova'], 3)}, p_perm = "
                     f"{fmt(pw['p_permutation'], 3)}; ω² a/s = {fmt(pw['omega2_alignment'], 3)}/"
                     f"{fmt(pw['omega2_seed'], 3)}")
    if isinstance(res, dict) and "n_test" in res:
        parts.append(f"test acc.: {res['n_distinct']} distinct values, resolution 1/{res['n_test']}, range "
                     f"{res['range_images']} img")
    if isinstance(ch, dict) and "ci_low" in ch:
        parts.append(f"test-error change {ch['change_images']:+d} img, 95% CI [{fmt(100 * ch['ci_low'], 3)}, "
                     f"{fmt(100 * ch['ci_high'], 3)}] pts → {ch['verdict']}")
    elif isinstance(ch, dict) and "error" in ch:
        parts.append(f"test-error change: {ch['error']}")
    return "; ".join(parts) or "–"


def render_reference(out_dir: str | os.PathLike, doc: dict, target: str | os.PathLike, *, command: str,
                     figures_dir: str | os.PathLike | None = None) -> str:
    """A reference-result document (e.g. docs/results-standard.md) from a verify output directory: how it
    was made (``command``), the versions and wall time, the verdict table with the power (MDE) and the
    test-set resolution behind each verdict, and the figures. Figures are linked relative to ``target``;
    with ``figures_dir`` the PNGs under :data:`MAX_COPIED_PNG` bytes are copied there (and linked), the
    others are listed with their path inside the output directory."""
    import shutil

    out_dir, target = Path(out_dir), Path(target)
    base = target.parent
    t = doc.get("timings") or {}
    lines = [f"# Reference result: `{doc.get('preset')}` preset", "",
             "Generated by the command below from the verify output directory; do not edit by hand (rerun it).", "",
             f"    {command}", "",
             (f"- verify run: preset `{doc.get('preset')}`, written {doc.get('created')}, ncmargin "
             f"{doc.get('ncmargin_version')}, device {doc.get('device') or 'cpu'}, jobs {doc.get('jobs')}"),
             (f"- wall time of the verify call that wrote it: {fmt(t.get('total_s'), 4)} s; runs trained "
             f"{len(doc.get('trained') or [])}, resumed {len(doc.get('resumed') or [])}, reused "
             f"{len(doc.get('reused') or [])} (a call that reuses finished runs does not include their training "
             "time; the time per step is below)")]
    vers = doc.get("versions") or {}
    if vers:
        lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    counts = {k: sum(v["verdict"] == k for v in doc["verdicts"]) for k in ("pass", "fail", "inconclusive")}
    lines += ["", "## Verdicts", "", (f"{counts['pass']} pass, {counts['fail']} fail, {counts['inconclusive']} "
              "inconclusive. Power and resolution: docs/theory.md §13 (claim 3: MDE = σ_α of the alignment effects "
              "detectable with the target power) and §14 (test-set resolution; bootstrap over test images)."), "",
              table(["verdict id", "verdict", "value", "power / resolution behind it"],
                    [[v["id"], f"**{v['verdict']}**", fmt(v.get("value")), _key_numbers(v)]
                     for v in doc["verdicts"]])]
    reasons = [(v["id"], (v.get("detail") or {}).get("reason")) for v in doc["verdicts"]
               if v["verdict"] != "pass" and (v.get("detail") or {}).get("reason")]
    if reasons:
        lines += ["", "Reasons of the verdicts that are not a pass:", ""]
        lines += [f"- `{i}`: {str(r)[:400]}" for i, r in reasons]
    if t:
        lines += ["", "## Wall time per step (s)", "", table(["step", "seconds"], [[k, fmt(v, 4)] for k, v in t.items()])]
    lines += ["", "## Figures", ""]
    entries = _figure_entries(out_dir, None)
    if figures_dir is not None:
        Path(figures_dir).mkdir(parents=True, exist_ok=True)
    rows = []
    for f in entries:
        png = Path(f["png"])
        link = _rel(png, out_dir)
        if figures_dir is not None and png.stat().st_size < MAX_COPIED_PNG:
            dest = Path(figures_dir) / png.name
            shutil.copyfile(png, dest)
            link = f"[{png.name}]({_rel(dest, base)})"
        else:
            link = f"`{link}` (in the output directory)"
        rows.append([f["name"], link, f["caption"]])
    lines.append(table(["figure", "file", "caption"], rows) if rows else "No figures found.")
    return "\n".join(lines) + "\n"
