"""``ncmargin verify --runs DIR...`` (issue 13): the claims that declare ``external_runs`` judged on run
directories recorded anywhere (the Recorder in a user's loop, ``ncmargin extract``, ``ncmargin train``), with
the same verdicts.json, figures and report.md as :func:`ncmargin.pipeline.verify` (docs/recorder.md)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ncmargin.empirical.claims import all_claims, get_claim
from ncmargin.empirical.claims.verdicts import run_error_verdict, with_skipped_checkpoints
from ncmargin.runlock import RunLock
from ncmargin.store import AnalysisOptions, settings_from, versions

from .core import (
    VerifyContext,
    check_preset,
    load_preset,
    make_figures,
    read_verdicts,
    write_report,
    write_verdicts,
)

__all__ = ["verify_runs"]


def verify_runs(run_dirs, out: str | os.PathLike | None = None, *, claims: str | list[str] | None = None,
                preset: str | dict | None = None, quiet: bool = False, figures: bool = True,
                force_analysis: bool = False) -> dict:
    """``ncmargin verify --runs DIR...``: analyse each run directory (``RUN/analysis.json``, reused when
    current), judge every claim that declares ``external_runs`` (claims 1c and 2) on each with the claim's
    own per-run verdict code, and write ``OUT/verdicts.json``, the figures and ``OUT/report.md`` as
    :func:`verify` does. ``preset`` (optional) supplies the ``analysis`` and ``claim<id>`` sections."""
    from ncmargin.store import is_run_dir

    t_all = time.perf_counter()
    paths = [Path(p) for p in ([run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else run_dirs)]
    if not paths:
        raise ValueError("verify --runs: give at least one run directory")
    for p in paths:
        if not is_run_dir(p):
            raise ValueError(f"{p}: not a run directory (no log.jsonl); give directories written by the Recorder, "
                             "`ncmargin extract` or `ncmargin train`")
    pre = load_preset(preset) if preset is not None else {"name": "runs", "runs": {}}
    settings = check_preset(pre)
    able = [c for c in all_claims() if c.external_runs]
    if claims is None or claims in ("", "all"):
        selected, want3 = able, True
    else:
        ids = [c.strip() for c in claims.split(",")] if isinstance(claims, str) else list(claims)
        known = {c.id for c in all_claims()}
        bad = [i for i in ids if i not in known]
        if bad:
            raise ValueError(f"unknown claim(s) {bad}; with --runs: {', '.join(c.id for c in able)}")
        no = [i for i in ids if i not in {c.id for c in able} | {"3"}]
        if no:
            raise ValueError(f"claim(s) {no} cannot be judged on given run directories (they train or solve "
                             f"their own experiments); with --runs: {', '.join(c.id for c in able)} (and 3 on "
                             "fixed-ETF runs with alignment and seed labels)")
        selected, want3 = [c for c in able if c.id in ids], "3" in ids
    out_dir = Path(out) if out is not None else Path("results") / "runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    # one writer per output directory (issue 12), as for verify
    with RunLock(out_dir, purpose="ncmargin verify --runs"):
        return _verify_runs_locked(out_dir, paths, pre, settings, selected, want3, quiet, figures,
                                   force_analysis, preset is not None, t_all)


def _verify_runs_locked(out_dir, paths, pre, settings, selected, want3, quiet, figures, force_analysis,
                        named_preset, t_all) -> dict:
    from ncmargin.empirical.analysis import analyze_run
    from ncmargin.empirical.recorded import etf_sweep_plan, mirror_run, run_labels
    from ncmargin.store import RUNS_DIR

    ctx = VerifyContext(out_dir, pre, quiet=quiet)
    labels = run_labels(paths)
    a = settings_from(AnalysisOptions, pre.get("analysis"), "preset section 'analysis'")
    analyses = {}
    for label, rd in zip(labels, paths):
        t0 = time.perf_counter()
        res = analyze_run(rd, svm_tol=float(a.svm_tol), force=force_analysis, svm_epochs=a.svm_epochs,
                          spectral=bool(a.spectral), delta=float(a.delta), quiet=quiet)
        analyses[label] = dict(res, run_id=label)
        mirror_run(rd, out_dir / RUNS_DIR / label, analyses[label])
        ctx.timings[f"analyze_{label}_s"] = time.perf_counter() - t0
        ctx.log(f"[verify] analysed {rd} as {label}: {len(res['checkpoints'])} checkpoints")
    plan, why = etf_sweep_plan(labels, paths, out_dir)
    if plan is None:
        ctx.notes.append(f"claim 3 not judged with --runs: {why}")
    verdicts: list[dict] = []
    errors = {}
    for c in selected:
        t0 = time.perf_counter()
        for label, an in analyses.items():
            try:
                verdicts += with_skipped_checkpoints(an, c.per_run(an, settings[c.id]))
            except Exception as exc:  # noqa: BLE001 - one broken run/claim must not hide the others
                errors[f"{c.id}:{label}"] = f"{type(exc).__name__}: {exc}"
                verdicts.append(run_error_verdict(c.id, label, errors[f"{c.id}:{label}"]))
        ctx.timings[f"claim_{c.id}_s"] = time.perf_counter() - t0
    if plan is not None and want3:  # claim 3's own collection and verdict code on the given runs
        from ncmargin.empirical.claims.claim3 import claim3_verdicts, collect_sweep

        Path(plan["out_dir"]).mkdir(parents=True, exist_ok=True)
        verdicts += claim3_verdicts(collect_sweep(plan))
        selected = [*selected, get_claim("3")]
    extra = {"claims": [c.id for c in selected], "timings": ctx.timings,
             "runs": {lab: str(p.resolve()) for lab, p in zip(labels, paths)}, "errors": errors,
             "versions": versions(), "notes": ctx.notes}
    name = f"runs ({pre['name']})" if named_preset else "runs"
    write_verdicts(out_dir, verdicts, preset=name, extra=extra)
    figs = make_figures(out_dir, ctx) if figures else None
    ctx.timings["total_s"] = time.perf_counter() - t_all
    write_verdicts(out_dir, verdicts, preset=name, extra=extra)
    write_report(out_dir, figures=figs)
    return read_verdicts(out_dir)
