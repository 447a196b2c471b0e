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

from ncmargin.empirical.claims import Claim, all_claims, make_verdict
from ncmargin.empirical.pool import default_train, train_runs
from ncmargin.io import atomic_write_text
from ncmargin.runlock import RunLock
from ncmargin.store import (
    AnalysisOptions,
    Verdicts,
    check_keys,
    check_not_failed,
    check_same_run,
    clean_temp_files,
    list_presets,
    read_preset,
    read_status,
    run_path,
    run_status,
    safe_run_name,
    settings_from,
    versions,
)
from ncmargin.verdict_merge import merge_verdicts

__all__ = ["SCHEMA", "VerifyContext", "list_verify_presets", "load_preset", "parse_claims",
           "read_verdicts", "resolve_run_config", "verify", "write_report", "write_run_report",
           "write_verdicts"]

SCHEMA = Verdicts.SCHEMA
PRESET_KEYS = ("name", "device", "jobs", "runs", "analysis", "claims")


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
    check_numbers(settings_from(AnalysisOptions, preset.get("analysis"), "preset section 'analysis'"),
                  "analysis")
    pname = preset.get("name")
    for name, spec in (preset.get("runs") or {}).items():
        safe_run_name(name, f"run name in verify preset {pname!r}")  # never a path outside OUT/runs (issue 12)
        settings_from(RunSpec, spec, f"preset run {name!r}")
    out = {}
    for c in claims:
        out[c.id] = c.settings(preset)
        check_numbers(out[c.id], c.settings_key)
        for run in _named_runs(out[c.id]):
            if run not in (preset.get("runs") or {}):
                raise ValueError(f"verify preset {pname!r}: {c.settings_key} names run {run!r}, which is not "
                                 f"under 'runs' ({', '.join(preset.get('runs') or {}) or 'none'}); add it there "
                                 "or fix the name")
    return out


# issue 12: numeric preset settings are checked before any work (a negative or NaN tolerance would make
# every comparison against it silently false; alpha and delta are probabilities)
_POSITIVE_INTS = {"steps", "num_records", "min_points", "min_distinct", "K", "n", "d", "jobs"}


def check_numbers(settings, where: str) -> None:
    """Raise ValueError naming ``where.key`` for a non-finite number, a tolerance (``*tol``) <= 0, an
    ``alpha``/``delta`` outside (0, 1), a count that is not >= 1, or a negative ``lr``/``*per_class``;
    nested settings dataclasses are checked too."""
    import dataclasses
    import math

    if settings is None or not dataclasses.is_dataclass(settings):
        return
    for f in dataclasses.fields(settings):
        v, key = getattr(settings, f.name), f"{where}.{f.name}"
        if dataclasses.is_dataclass(v):
            check_numbers(v, key)
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        fix = "fix it in the preset"
        if not math.isfinite(v):
            raise ValueError(f"{key} = {v!r} is not a finite number; {fix}")
        if f.name.endswith("tol") and not v > 0:
            raise ValueError(f"{key} = {v!r} is not a tolerance: give a finite number > 0 (e.g. 1e-8); {fix}")
        if f.name in ("alpha", "delta") and not 0 < v < 1:
            raise ValueError(f"{key} = {v!r} is not a probability in (0, 1); {fix}")
        if f.name in _POSITIVE_INTS and not (float(v).is_integer() and v >= 1):
            raise ValueError(f"{key} = {v!r}: give a whole number >= 1; {fix}")
        if (f.name == "lr" or f.name.endswith("per_class")) and v < 0:
            raise ValueError(f"{key} = {v!r} is negative; {fix}")


def _named_runs(settings) -> list[str]:
    """The preset runs a claim's settings name (``runs``, ``real_run``)."""
    names = list(getattr(settings, "runs", None) or [])
    if getattr(settings, "real_run", None):
        names.append(settings.real_run)
    return names


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
    failed: list = field(default_factory=list)

    def log(self, msg: str) -> None:
        if not self.quiet:
            print(msg, file=sys.stderr, flush=True)

    def run_dir(self, name: str) -> Path:
        return run_path(self.out_dir / "runs", name, f"run name in preset {self.preset.get('name')!r}")

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
            if status == "failed":  # never retrained or resumed: the claims that read it say why
                if name not in self.failed:
                    self.failed.append(name)
                    self.log(f"[verify] run {name} is marked failed ({(read_status(rd) or {}).get('reason')}); "
                             f"delete {rd} to train it again")
                continue
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
        check_not_failed(rd)  # RunFailedError: the reason and the fix (rm -r the run)
        t0 = time.perf_counter()
        a = settings_from(AnalysisOptions, self.preset.get("analysis"), "preset section 'analysis'")
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
    device = _device(device, pre)
    jobs = int(jobs if jobs is not None else pre.get("jobs", 1))
    if jobs < 1:
        raise ValueError(f"jobs={jobs}: give a positive number of parallel training processes")
    ctx = VerifyContext(out_dir, pre, device=device, jobs=jobs, quiet=quiet, force_analysis=force_analysis,
                        train_fn=train_fn or default_train)
    out_dir.mkdir(parents=True, exist_ok=True)
    # one writer per output directory (issue 12): a second verify on this --out gets LockHeldError
    with RunLock(out_dir, purpose="ncmargin verify", log=ctx.log):
        for d in (out_dir, out_dir / "figures"):  # temp files of a killed writer (each run cleans its own)
            clean_temp_files(d, recursive=False)
        old = _previous_verdicts(out_dir, name, selected, ctx)
        return _verify_locked(ctx, name, selected, settings, old, figures, t_all)


def _previous_verdicts(out_dir: Path, preset_name: str, selected: list[Claim], ctx: VerifyContext) -> dict | None:
    """The ``verdicts.json`` a partial ``--claims`` run merges into (None: none, unreadable, or replaced
    whole). Another preset's file is an error before any work unless every one of its claims is rerun."""
    if not (out_dir / Verdicts.FILE).is_file():
        return None
    try:
        old = read_verdicts(out_dir)
    except ValueError as exc:
        ctx.notes.append(f"the previous verdicts.json was not readable and is replaced: {exc}")
        ctx.log(f"[verify] previous verdicts.json not readable, replacing it: {exc}")
        return None
    if old.get("preset") != preset_name:
        ids = {c.id for c in selected}
        if {str(v.get("claim")) for v in old.get("verdicts", [])} <= ids:
            return None
        raise ValueError(f"{out_dir / Verdicts.FILE} holds verdicts of preset {old.get('preset')!r}, not "
                         f"{preset_name!r}: use another --out directory (verdicts of two presets never mix)")
    return old


def _verify_locked(ctx: VerifyContext, name: str, selected: list[Claim], settings: dict, old: dict | None,
                   figures: bool, t_all: float) -> dict:
    """The body of :func:`verify`, run under the output directory's lock."""
    out_dir, pre = ctx.out_dir, ctx.preset
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
    extra = {"claims": [c.id for c in selected], "device": ctx.device, "jobs": ctx.jobs, "timings": ctx.timings,
             "runs": {n: str(ctx.run_dir(n)) for n in pre.get("runs", {})},
             "trained": ctx.trained, "resumed": ctx.resumed, "reused": ctx.reused, "errors": errors,
             "versions": versions(), "notes": ctx.notes}

    def write() -> None:
        # a partial --claims run replaces only its claims' verdicts in the existing file (issue 12)
        new = {"preset": name, "verdicts": verdicts, **extra}
        doc = merge_verdicts(old, new, evaluated=[c.id for c in selected]) if old else new
        kept = (doc.pop("merged", None) or {}).get("kept") or {}
        if kept:
            doc["notes"] = [*doc["notes"], *(f"claim {c}: verdicts kept from the previous verify of {t} (not "
                                              "evaluated by this call)" for c, t in kept.items())]
        rest = {k: v for k, v in doc.items() if k not in ("preset", "verdicts")}
        write_verdicts(out_dir, doc["verdicts"], preset=name, extra=rest)

    write()
    figs = None
    if figures:
        t0 = time.perf_counter()
        figs = make_figures(out_dir, ctx)
        ctx.timings["figures_s"] = time.perf_counter() - t0
    write_report(out_dir, figures=figs)
    ctx.timings["total_s"] = time.perf_counter() - t_all
    extra["timings"] = ctx.timings
    write()
    write_report(out_dir, figures=figs)
    return read_verdicts(out_dir)
