"""``ncmargin verify``: preset → claims → figures → report (docs/architecture.md, docs/theory.md §9).

A verification is a **preset** (``ncmargin/configs/verify_<name>.json``): the training runs it needs
(``runs``: name → ``{"config", "set"}``), the per-checkpoint analysis settings (``analysis``) and each
claim's section (``claim1a``, ``claim1c``, ...; the keys of a claim's ``Settings`` dataclass; an unknown
key is an error listing the valid ones). The claims are those of the registry
(:mod:`ncmargin.empirical.claims`); this module trains what they need (reusing complete runs, resuming
partial ones, through the one training pool), runs each claim, writes ``OUT/verdicts.json``, draws the
figures from the stored results and renders ``OUT/report.md``.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncmargin.empirical.claims import Claim, all_claims, get_claim, make_verdict
from ncmargin.empirical.pool import default_train, train_runs
from ncmargin.io import atomic_write_text
from ncmargin.store import (
    Verdicts,
    check_keys,
    check_same_run,
    list_presets,
    read_preset,
    run_status,
    settings_from,
    versions,
)

__all__ = ["SCHEMA", "AnalysisSettings", "VerifyContext", "list_verify_presets", "load_preset", "parse_claims",
           "read_verdicts", "resolve_run_config", "verify", "verify_runs", "write_report", "write_run_report",
           "write_verdicts"]

SCHEMA = Verdicts.SCHEMA
PRESET_KEYS = ("name", "device", "jobs", "runs", "analysis", "claims")


@dataclass(frozen=True)
class AnalysisSettings:
    """Preset section ``analysis``: arguments of ncmargin.empirical.analysis.analyze_run."""
    svm_tol: float = 1e-8
    svm_epochs: Any = "terminal"
    spectral: bool = True
    delta: float = 0.05


@dataclass(frozen=True)
class RunSpec:
    """One entry of the preset's ``runs``: a training preset name or path, and overrides."""
    config: Any
    set: dict | None = None


# ------------------------------------------------------------------------------------------ presets

def list_verify_presets() -> list[str]:
    return list_presets("verify")


def load_preset(name_or_path: str | os.PathLike | dict) -> dict:
    """A verify preset: ``quick``/``paper`` (``ncmargin/configs/verify_<name>.json``), a JSON path or a dict."""
    if isinstance(name_or_path, dict):
        return json.loads(json.dumps(name_or_path))
    p, preset = read_preset("verify", name_or_path)
    if "runs" not in preset:
        raise ValueError(f"{p}: a verify preset is a JSON object with at least 'runs' (name -> training "
                         "config); see ncmargin/configs/verify_quick.json")
    preset.setdefault("name", p.stem.replace("verify_", ""))
    return preset


def check_preset(preset: dict) -> dict:
    """Reject unknown top-level keys (``_``-keys are comments) and parse every registered claim's
    settings, so that a mistyped key fails before anything trains. Returns ``{claim id: settings}``."""
    claims = all_claims()
    check_keys(preset, list(PRESET_KEYS) + [c.settings_key for c in claims], f"verify preset {preset.get('name')!r}")
    settings_from(AnalysisSettings, preset.get("analysis"), "preset section 'analysis'")
    for name, spec in (preset.get("runs") or {}).items():
        settings_from(RunSpec, spec, f"preset run {name!r}")
    return {c.id: c.settings(preset) for c in claims}


def resolve_run_config(spec: dict, device: str | None, quiet: bool):
    """The TrainConfig of a preset run (``spec``: ``{"config", "set"}``) on ``device``."""
    from ncmargin.empirical.config import load_config

    rs = settings_from(RunSpec, spec, "preset run")
    overrides = dict(rs.set or {})
    if device:
        overrides["device"] = device
    overrides["quiet"] = quiet
    return load_config(rs.config, overrides)


# ------------------------------------------------------------------------------------------ context

@dataclass
class VerifyContext:
    """What a claim may use: run training/reuse, cached analyses, logging, timings."""

    out_dir: Path
    preset: dict
    device: str | None = None
    jobs: int = 1
    quiet: bool = False
    force_analysis: bool = False
    train_fn: Callable = default_train
    timings: dict = field(default_factory=dict)
    trained: list = field(default_factory=list)
    reused: list = field(default_factory=list)
    resumed: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    analyses: dict = field(default_factory=dict)

    def log(self, msg: str) -> None:
        if not self.quiet:
            print(msg, file=sys.stderr, flush=True)

    def run_dir(self, name: str) -> Path:
        return self.out_dir / "runs" / name

    def run_spec(self, name: str) -> dict:
        runs = self.preset.get("runs", {})
        if name not in runs:
            raise ValueError(f"run {name!r} is not defined in preset {self.preset.get('name')!r} "
                             f"(runs: {', '.join(runs)}); add it under 'runs'")
        return runs[name]

    def ensure_runs(self, names: list[str]) -> dict[str, Path]:
        """Train the runs that are missing, resume partial ones, reuse complete ones (no retraining).

        A stored run whose config differs from the preset (beyond device/IO keys) is an error: the caller
        must pick another ``--out`` or delete the run."""
        todo, paths = [], {}
        for name in dict.fromkeys(names):
            cfg = resolve_run_config(self.run_spec(name), self.device, True)
            rd = self.run_dir(name)
            paths[name] = rd
            status = run_status(rd)
            if status != "absent":
                check_same_run(rd, cfg.to_dict(), what=f"preset {self.preset.get('name')!r}")
            if status == "complete":
                if name not in self.reused and name not in self.trained:
                    self.reused.append(name)
                    self.log(f"[verify] reusing complete run {rd}")
                continue
            todo.append((name, cfg.to_dict(), rd, status == "partial"))
        if not todo:
            return paths
        t0 = time.perf_counter()
        for name, _, rd, resume in todo:
            self.log(f"[verify] {'resuming' if resume else 'training'} run {name} -> {rd}")
        jobs = max(1, min(int(self.jobs or 1), len(todo)))
        # one process per run, each with cpu_count/jobs intra-op threads: the small CPU models of the
        # quick preset lose time to thread spinning with more threads than their share of the cores
        train_runs(todo, jobs=jobs, threads=max(1, (os.cpu_count() or 1) // jobs), train_fn=self.train_fn)
        for name, _, rd, resume in todo:
            if run_status(rd) != "complete":
                raise RuntimeError(f"training {name} finished but {rd}/summary.json does not say complete")
            (self.resumed if resume else self.trained).append(name)
        self.timings["train_s"] = self.timings.get("train_s", 0.0) + time.perf_counter() - t0
        return paths

    def analysis(self, name: str) -> dict:
        """``analysis.json`` of run ``name`` (trained if needed; checkpoints already analysed are reused)."""
        if name in self.analyses:
            return self.analyses[name]
        from ncmargin.empirical.analysis import analyze_run

        rd = self.ensure_runs([name])[name]
        t0 = time.perf_counter()
        a = settings_from(AnalysisSettings, self.preset.get("analysis"), "preset section 'analysis'")
        res = analyze_run(rd, svm_tol=float(a.svm_tol), force=self.force_analysis, svm_epochs=a.svm_epochs,
                          spectral=bool(a.spectral), delta=float(a.delta), quiet=self.quiet)
        dt = time.perf_counter() - t0
        self.timings[f"analyze_{name}_s"] = dt
        self.log(f"[verify] analysed {name}: {len(res['checkpoints'])} checkpoints "
                 f"({res.get('reused_checkpoints', 0)} reused) in {dt:.1f}s")
        self.analyses[name] = res
        return res


# ------------------------------------------------------------------------------------------ output

def write_verdicts(out_dir: str | os.PathLike, verdicts: list[dict], *, preset: str, extra: dict | None = None
                   ) -> Path:
    """Write ``OUT/verdicts.json`` through its record (ncmargin.store.Verdicts: keys checked, ids unique)."""
    from ncmargin.version import __version__

    return Verdicts(preset=preset, created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                    ncmargin_version=__version__, verdicts=verdicts, **(extra or {})).write(Path(out_dir))


def read_verdicts(path: str | os.PathLike) -> dict:
    """Read and check ``verdicts.json`` (a directory holding it or the file itself)."""
    return Verdicts.read(path)


def write_report(out_dir: str | os.PathLike, doc: dict | None = None, figures=None) -> Path:
    """Render ``OUT/report.md`` from the stored verdicts with every registered claim's section."""
    from ncmargin.report import render_report

    out_dir = Path(out_dir)
    doc = doc if doc is not None else read_verdicts(out_dir)
    p = out_dir / "report.md"
    atomic_write_text(p, render_report(out_dir, doc, figures, claims=all_claims()))
    return p


def write_run_report(run_dir: str | os.PathLike, *, settings: dict | None = None, figures=None) -> Path:
    """Analyse ``run_dir`` (reusing ``analysis.json``) and write ``RUN/report.md``: the verdicts of every
    claim judged per run (``Claim.per_run``) on that run alone, and their per-run sections."""
    from ncmargin.empirical.analysis import analyze_run
    from ncmargin.report import render_run_report

    run_dir = Path(run_dir)
    analysis = analyze_run(run_dir)
    per_run = [c for c in all_claims() if c.per_run is not None]
    verdicts = [v for c in per_run for v in c.per_run(analysis, settings)]
    sections = [c.run_section(analysis) for c in per_run if c.run_section is not None]
    p = run_dir / "report.md"
    atomic_write_text(p, render_run_report(run_dir, analysis, verdicts, sections, figures,
                                           claim_ids=[c.id for c in per_run]))
    return p


def make_figures(out_dir: Path, ctx: VerifyContext):
    """ncmargin.figures.make_figures on the stored results; a failure is logged, never fatal."""
    from ncmargin.figures import make_figures as draw

    skipped: list[str] = []
    try:
        figs = list(draw([out_dir], out_dir / "figures", skipped=skipped))
        ctx.notes += [f"figure skipped: {s}" for s in skipped]
        return figs
    except Exception as exc:  # noqa: BLE001 - figures are a by-product; verdicts stand without them
        ctx.notes.append(f"figures not generated: {type(exc).__name__}: {exc}")
        ctx.log(f"[verify] figures failed: {exc}")
        return None


# ------------------------------------------------------------------------------------------ verify

def parse_claims(claims, preset: dict) -> list[Claim]:
    """The claims to run: ``claims`` (ids, comma string, None/"all": the preset's ``claims`` or all)."""
    avail = all_claims()
    ids = [c.id for c in avail]
    if claims is None or claims == "" or claims == "all":
        wanted = preset.get("claims") or ids
        return [c for c in avail if c.id in wanted]
    if isinstance(claims, str):
        claims = [c.strip() for c in claims.split(",") if c.strip()]
    unknown = [c for c in claims if c not in ids]
    if unknown:
        raise ValueError(f"unknown claim(s) {unknown}; available: {', '.join(ids)}")
    return [c for c in avail if c.id in claims]


def _device(device: str | None, pre: dict) -> str | None:
    if device == "auto" or (device is None and pre.get("device") == "auto"):
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:  # pragma: no cover
            return "cpu"
    return device or pre.get("device")


def verify(preset: str | dict = "quick", out: str | os.PathLike | None = None, *, device: str | None = None,
           claims: str | list[str] | None = None, jobs: int | None = None, quiet: bool = False,
           figures: bool = True, force_analysis: bool = False, train_fn: Callable | None = None) -> dict:
    """Run the verification: train what is missing (reuse complete runs), analyse, evaluate each claim,
    write ``OUT/verdicts.json`` and ``OUT/report.md`` (atomic), and the figures.
    ``jobs``: training processes in parallel (default: the preset's ``jobs``, else 1).

    Returns the verdicts document. Bad input (unknown preset, claim or settings key, a stored run with
    another config) raises before any claim runs; a claim that raises is recorded as an ``inconclusive``
    verdict with the error (``<claim>.error``) and the other claims still run.
    """
    t_all = time.perf_counter()
    pre = load_preset(preset)
    name = pre.get("name", "custom")
    selected = parse_claims(claims, pre)
    settings = check_preset(pre)
    out_dir = Path(out) if out is not None else Path("results") / name
    out_dir.mkdir(parents=True, exist_ok=True)
    device = _device(device, pre)
    jobs = int(jobs if jobs is not None else pre.get("jobs", 1))
    if jobs < 1:
        raise ValueError(f"jobs={jobs}: give a positive number of parallel training processes")
    ctx = VerifyContext(out_dir, pre, device=device, jobs=jobs, quiet=quiet, force_analysis=force_analysis,
                        train_fn=train_fn or default_train)
    ctx.log(f"[verify] preset {name}, claims {', '.join(c.id for c in selected)}, out {out_dir}")
    # train every run the selected claims need up front, so --jobs can train them in parallel
    needed = [r for c in selected for r in c.runs_needed(settings[c.id], pre)]
    if needed:
        ctx.ensure_runs(needed)
    verdicts: list[dict] = []
    errors = {}
    for c in selected:
        t0 = time.perf_counter()
        try:
            verdicts += c.run(out_dir, settings[c.id], ctx)
        except Exception as exc:  # noqa: BLE001 - a broken claim must not hide the others' verdicts
            import traceback

            errors[c.id] = f"{type(exc).__name__}: {exc}"
            ctx.log(f"[verify] claim {c.id} failed: {errors[c.id]}\n{traceback.format_exc()}")
            verdicts.append(make_verdict(c.id, f"{c.id}.error", f"claim {c.id} ({c.title}) could not be evaluated",
                                         "error", None, "-", "inconclusive", [], {"error": errors[c.id]}))
        ctx.timings[f"claim_{c.id}_s"] = time.perf_counter() - t0
        ctx.log(f"[verify] claim {c.id} done in {ctx.timings[f'claim_{c.id}_s']:.1f}s")
    ctx.timings["total_s"] = time.perf_counter() - t_all
    extra = {"claims": [c.id for c in selected], "device": device, "jobs": jobs, "timings": ctx.timings,
             "runs": {n: str(ctx.run_dir(n)) for n in pre.get("runs", {})},
             "trained": ctx.trained, "resumed": ctx.resumed, "reused": ctx.reused, "errors": errors,
             "versions": versions(), "notes": ctx.notes}
    write_verdicts(out_dir, verdicts, preset=name, extra=extra)
    figs = None
    if figures:
        t0 = time.perf_counter()
        figs = make_figures(out_dir, ctx)
        ctx.timings["figures_s"] = time.perf_counter() - t0
    write_report(out_dir, figures=figs)
    ctx.timings["total_s"] = time.perf_counter() - t_all
    extra["timings"] = ctx.timings
    write_verdicts(out_dir, verdicts, preset=name, extra=extra)
    write_report(out_dir, figures=figs)
    return read_verdicts(out_dir)


# ------------------------------------------------------------------------------------------ verify --runs
# (issue 13) claims judged on run directories recorded anywhere: Recorder, `ncmargin extract`, `ncmargin train`

def verify_runs(run_dirs, out: str | os.PathLike | None = None, *, claims: str | list[str] | None = None,
                preset: str | dict | None = None, quiet: bool = False, figures: bool = True,
                force_analysis: bool = False) -> dict:
    """``ncmargin verify --runs DIR...``: analyse each run directory (``RUN/analysis.json``, reused when
    current), judge every claim that declares ``external_runs`` (claims 1c and 2) on each with the claim's
    own per-run verdict code, and write ``OUT/verdicts.json``, the figures and ``OUT/report.md`` as
    :func:`verify` does. ``preset`` (optional) supplies the ``analysis`` and ``claim<id>`` sections."""
    from ncmargin.empirical.analysis import analyze_run
    from ncmargin.empirical.recorded import etf_sweep_plan, mirror_run, run_labels
    from ncmargin.store import RUNS_DIR, is_run_dir

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
        selected = able
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
        selected = [c for c in able if c.id in ids]
    out_dir = Path(out) if out is not None else Path("results") / "runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = VerifyContext(out_dir, pre, quiet=quiet)
    labels = run_labels(paths)
    a = settings_from(AnalysisSettings, pre.get("analysis"), "preset section 'analysis'")
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
                verdicts += c.per_run(an, settings[c.id])
            except Exception as exc:  # noqa: BLE001 - one broken run/claim must not hide the others
                errors[f"{c.id}:{label}"] = f"{type(exc).__name__}: {exc}"
                verdicts.append(make_verdict(c.id, f"{c.id}.error.{label}", f"claim {c.id} could not be evaluated "
                                             f"on run {label}", "error", None, "-", "inconclusive", [label],
                                             {"error": errors[f"{c.id}:{label}"]}))
        ctx.timings[f"claim_{c.id}_s"] = time.perf_counter() - t0
    want3 = claims is None or claims in ("", "all") or "3" in (
        [c.strip() for c in claims.split(",")] if isinstance(claims, str) else list(claims))
    if plan is not None and want3:  # claim 3's own collection and verdict code on the given runs
        from ncmargin.empirical.claims.claim3 import claim3_verdicts, collect_sweep

        Path(plan["out_dir"]).mkdir(parents=True, exist_ok=True)
        verdicts += claim3_verdicts(collect_sweep(plan))
        selected = [*selected, get_claim("3")]
    extra = {"claims": [c.id for c in selected], "timings": ctx.timings,
             "runs": {lab: str(p.resolve()) for lab, p in zip(labels, paths)}, "errors": errors,
             "versions": versions(), "notes": ctx.notes}
    name = f"runs ({pre['name']})" if preset is not None else "runs"
    write_verdicts(out_dir, verdicts, preset=name, extra=extra)
    figs = make_figures(out_dir, ctx) if figures else None
    ctx.timings["total_s"] = time.perf_counter() - t_all
    write_verdicts(out_dir, verdicts, preset=name, extra=extra)
    write_report(out_dir, figures=figs)
    return read_verdicts(out_dir)
