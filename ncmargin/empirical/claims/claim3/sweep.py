"""Claim 3, non-conservative generalization: alignment × seed sweeps with a fixed simplex-ETF head
(docs/theory.md §1, §8, §10; sweep.json contract in docs/results.md).

A **sweep** trains one run per (alignment, seed) with the same network, data and schedule; only the
alignment of the labels with the vertices of the fixed ETF classifier and the seed change:

- alignment ``a`` = (label permutation π_a, frame rotation U_a), passed to the trainer as the config keys
  ``etf_perm_seed`` (-1 = identity, else ``np.random.default_rng(seed).permutation(K)``) and
  ``etf_rotation_seed`` (-1 = canonical frame, else a Haar rotation; ``ncmargin.theory.simplex_etf``).
  Alignment 0 is the identity permutation of the base frame.
- seed ``s`` = the config key ``seed``: model initialization and batch order. The data split
  (``split_seed``) is the same for every run, so that only alignment and seed vary.

Public functions::

    plan = plan_sweep("sweep_quick", "out/sweep", alignments=8, seeds=3)      # runs, configs, alignments
    doc = run_sweep("sweep_quick", "out/sweep", jobs=2)                          # train (reuse) + collect + stats
    cmds = train_commands(plan)                                                 # one `ncmargin train` per run
    doc = collect_sweep(plan)                                                   # no training: read what exists

The statistics are in :mod:`.stats`, the concentration check in :mod:`.concentration`, the verdicts,
settings and report section of claim 3 in :mod:`.claim`. Runs are trained by the one training pool
(ncmargin.empirical.pool).

Exclusion rule: a run whose **final** train accuracy is below 1 (it never reached, or left, the terminal
phase) is listed in ``sweep.json["excluded"]`` with the reason and left out of every statistic. The additive
two-way ANOVA needs a complete alignment × seed table, so every seed (column) containing an excluded run is
dropped (listwise deletion of a block, ``ncmargin.theory.stats.complete_table(drop="seeds")``); if fewer than
2 seeds remain, whole alignments are dropped instead; what was dropped is written to
``stats["table"]``. No cell is imputed.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ncmargin.empirical.pool import train_runs
from ncmargin.io import atomic_write_json, atomic_write_text
from ncmargin.runlock import RunLock
from ncmargin.store import (
    Sweep,
    check_keys,
    check_same_run,
    list_presets,
    read_preset,
    read_status,
    run_path,
    run_status,
)

from .concentration import concentration_experiment, deep_merge
from .stats import STAT_DEFAULTS, sweep_statistics

__all__ = ["PLAN_SCHEMA", "POWER_DEFAULTS", "PRESET_KEYS", "SWEEP_SCHEMA", "check_power_settings", "collect_run",
           "collect_sweep", "list_sweep_presets", "load_sweep_preset", "make_alignments", "plan_sweep", "read_sweep_json", "run_sweep", "train_commands", "write_plan"]

SWEEP_SCHEMA = Sweep.SCHEMA
PLAN_SCHEMA = "ncmargin.sweep_plan/1"
# the keys of a sweep preset (docs/sweeps.md); any other key is an error listing these
PRESET_KEYS = ("name", "train", "set", "alignments", "alignment_mode", "base_rotation_seed", "seeds", "statistics",
               "concentration", "sesoi", "target_power", "assumed_sigma", "power_design")
# the power settings of a sweep preset (docs/theory.md §13; docs/sweeps.md): ``sesoi`` = smallest alignment
# effect of interest (SD of the alignment effects, accuracy points, > 0), ``target_power`` in (0, 1),
# ``assumed_sigma`` = the residual SD (points, > 0) the design was sized with when no pilot exists, and
# ``power_design`` = the record of how the seeds were sized (a dict, documentation only, never read by code)
POWER_DEFAULTS = {"sesoi": 0.5, "target_power": 0.8}


# ------------------------------------------------------------------------------------------- presets

def list_sweep_presets() -> list[str]:
    return [f"sweep_{n}" for n in list_presets("sweep")]


def load_sweep_preset(source: str | os.PathLike | dict | None) -> dict:
    """A sweep preset: a dict, a JSON path, or a name in ``ncmargin/configs`` (``sweep_quick`` or ``quick``
    for ``sweep_quick.json``). Keys: ``train`` (training config: a dict, a training preset name or a
    JSON path), ``set`` (overrides), ``alignments`` (int), ``alignment_mode`` (perm|rotation|both),
    ``base_rotation_seed``, ``seeds`` (int count or list), ``statistics``, ``concentration``, and the power
    settings of claim 3 (docs/theory.md §13): ``sesoi`` (points, default 0.5), ``target_power`` (default 0.8),
    ``assumed_sigma`` (points; the residual SD a design without pilot was sized with), ``power_design``
    (a record of the sizing, documentation only).

    A training config (a preset name or JSON without a ``train`` key) is wrapped as ``{"train": it}``."""
    if source is None:
        source = "sweep_quick"
    if isinstance(source, dict):
        obj = dict(source)
        if "train" not in obj:
            obj = {"train": obj}
        return _checked(obj, "sweep preset")
    s = str(source)
    for kind in ("sweep", "train"):
        try:
            p, obj = read_preset(kind, s)
        except FileNotFoundError:
            continue
        if "train" not in obj:  # a plain training config
            obj = {"train": str(p)}
        obj.setdefault("name", p.stem)
        return _checked(obj, f"sweep preset {p}")
    raise FileNotFoundError(f"sweep config {s!r} is neither a JSON file nor a preset; sweep presets: "
                            f"{', '.join(list_sweep_presets())} (a training preset name works too)")


def _checked(obj: dict, where: str) -> dict:
    """``obj`` after rejecting unknown keys of a sweep preset and of its ``statistics``."""
    check_keys(obj, PRESET_KEYS, where)
    check_keys(obj.get("statistics") or {}, STAT_DEFAULTS, f"{where}: statistics")
    check_power_settings(obj, where)
    return obj


def check_power_settings(obj: dict, where: str) -> None:
    """Type and range checks of the power keys of a sweep preset or of a verify preset's ``claim3``
    section (``sesoi`` > 0, 0 < ``target_power`` < 1, ``assumed_sigma`` > 0, ``power_design`` a dict)."""
    for k in ("sesoi", "assumed_sigma"):
        v = obj.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
            raise ValueError(f"{where}: {k} must be a number > 0 (accuracy points), got {v!r}; e.g. \"{k}\": 0.5")
    v = obj.get("target_power")
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1):
        raise ValueError(f"{where}: target_power must be a number in (0, 1), got {v!r}; e.g. \"target_power\": 0.8")
    v = obj.get("power_design")
    if v is not None and not isinstance(v, dict):
        raise ValueError(f"{where}: power_design must be an object recording how the seeds were sized, got {v!r}")


def _base_config(preset: dict, overrides: dict | list | None = None):
    """The training config shared by every run of the sweep (head forced to the fixed ETF)."""
    from ncmargin.empirical.config import load_config, parse_overrides

    over: dict[str, Any] = dict(preset.get("set") or {})
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    over.update(overrides or {})
    for k in ("etf_perm_seed", "etf_rotation_seed", "seed"):
        if k in over:
            raise ValueError(f"--set {k}=... is chosen by the sweep for every run; use --alignments / "
                             "--alignment-mode / --base-rotation-seed / --seeds instead")
    if str(over.get("head", "etf")) != "etf":
        raise ValueError("a claim-3 sweep needs the fixed ETF head; drop --set head=...")
    over["head"] = "etf"
    train = preset["train"]
    cfg = load_config(train if not isinstance(train, dict) else dict(train), over)
    if cfg.dataset in ("digits", "mnist5k", "synthetic"):
        K = cfg.syn_classes if cfg.dataset == "synthetic" else 10
    elif cfg.dataset == "cifar100":
        K = 100
    else:
        K = 10
    return cfg, K


# ---------------------------------------------------------------------------------------- alignments

def make_alignments(A: int, K: int, mode: str = "perm", base_rotation_seed: int = 0) -> list[dict]:
    """A alignments (docs/theory.md §1: a label permutation π and a frame orientation U) of K classes.

    ``mode="perm"``: all share the base frame (``base_rotation_seed``; -1 = canonical), alignment 0 is the
    identity permutation and alignment a > 0 a distinct random permutation; ``"rotation"``: identity
    permutation, rotation seeds ``base, base+1, ...``; ``"both"``: alignment a > 0 changes both. Returns
    ``[{"id", "index", "perm_seed", "rotation_seed", "perm"}]`` (``perm[y]`` = vertex of class y; the
    trainer's ``etf_alignment`` draws the same permutation from ``perm_seed``)."""
    A, K = int(A), int(K)
    if A < 1:
        raise ValueError(f"alignments must be >= 1, got {A}; e.g. --alignments 8")
    if mode not in ("perm", "rotation", "both"):
        raise ValueError(f"alignment mode {mode!r}: choose perm, rotation or both")
    if mode != "rotation" and A > math.factorial(K):
        raise ValueError(f"{A} alignments but only {math.factorial(K)} permutations of {K} classes; "
                         "use fewer alignments or --alignment-mode rotation")
    base = int(base_rotation_seed)
    if mode == "rotation" and base < 0:
        raise ValueError("--alignment-mode rotation needs base_rotation_seed >= 0 (a seed per alignment)")
    out: list[dict] = []
    seen: set[tuple] = set()
    cand = 1
    for a in range(A):
        if a == 0 or mode == "rotation":
            ps, perm = -1, list(range(K))
        else:
            while True:  # next permutation seed giving a permutation not used yet with this frame
                perm = [int(v) for v in np.random.default_rng(cand).permutation(K)]
                ps, cand = cand, cand + 1
                if mode == "both" or (tuple(perm) not in seen and perm != list(range(K))):
                    break
        rot = base if mode == "perm" else base + a
        seen.add(tuple(perm))
        out.append({"id": f"a{a:02d}", "index": a, "perm_seed": ps, "rotation_seed": rot, "perm": perm})
    return out


def _seed_list(seeds) -> list[int]:
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}; e.g. --seeds 3")
        return list(range(int(seeds)))
    if isinstance(seeds, str):
        s = seeds.strip()
        if "," not in s:
            return _seed_list(int(s))
        seeds = [int(v) for v in s.split(",") if v.strip()]
    out = [int(v) for v in seeds]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"seeds {seeds!r} must be a count or a list of distinct integers, e.g. 0,1,2")
    return out


# ------------------------------------------------------------------------------------------------ plan

def plan_sweep(preset="sweep_quick", out_dir="runs/sweep", *, alignments: int | None = None,
               seeds=None, alignment_mode: str | None = None, base_rotation_seed: int | None = None,
               overrides: dict | list | None = None, jobs: int = 1) -> dict:
    """Resolve a sweep: the alignments, the seeds and one training config per (alignment, seed).

    Arguments left at None come from the preset (defaults: 8 alignments, 3 seeds, mode perm, base
    rotation seed 0). With ``jobs > 1`` every run uses one torch thread (``num_threads=1``). Returns
    ``{"schema", "out_dir", "preset", "alignments", "seeds", "base_config", "runs": [{"name", "run_dir",
    "alignment", "seed", "config"}], "statistics", "concentration"}``."""
    pre = load_sweep_preset(preset)
    A = int(alignments if alignments is not None else pre.get("alignments", 8))
    mode = alignment_mode or pre.get("alignment_mode", "perm")
    base_rot = int(base_rotation_seed if base_rotation_seed is not None else pre.get("base_rotation_seed", 0))
    seed_list = _seed_list(seeds if seeds is not None else pre.get("seeds", 3))
    cfg, K = _base_config(pre, overrides)
    if int(jobs) > 1:
        cfg = _replace(cfg, num_threads=1)
    cfg = _replace(cfg, quiet=True)
    als = make_alignments(A, K, mode, base_rot)
    out = Path(out_dir)
    runs = []
    for al in als:
        for s in seed_list:
            c = _replace(cfg, etf_perm_seed=al["perm_seed"], etf_rotation_seed=al["rotation_seed"], seed=s)
            name = f"{al['id']}_s{s}"
            runs.append({"name": name, "run_dir": str(run_path(out, name, "sweep run name")), "alignment": al["id"],
                         "seed": s,
                         "config": c.to_dict()})
    return {"schema": PLAN_SCHEMA, "out_dir": str(out), "preset": pre.get("name", "custom"), "num_classes": K,
            "alignment_mode": mode, "base_rotation_seed": base_rot, "alignments": als, "seeds": seed_list,
            "base_config": cfg.to_dict(),
            "statistics": {**STAT_DEFAULTS, **(pre.get("statistics") or {})},
            "power": {k: pre.get(k, v) for k, v in POWER_DEFAULTS.items()},
            "concentration": pre.get("concentration", {}), "runs": runs}


def _replace(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes).validate()


def _check_stored(run: dict) -> None:
    check_same_run(Path(run["run_dir"]), run["config"], what="this sweep")


def write_plan(plan: dict) -> Path:
    """Write ``OUT/plan/<run>.json`` (each run's full training config), ``OUT/plan/plan.json`` and
    ``OUT/commands.txt`` (one ``ncmargin train`` command per run still to do; see docs/sweeps.md), holding
    the sweep directory's lock (one writer per directory; the cluster jobs lock their own run dirs)."""
    with RunLock(plan["out_dir"], purpose="ncmargin sweep --print-commands"):
        return _write_plan(plan)


def _failed_reason(run_dir: Path) -> str:
    """The ``excluded`` reason of a run marked failed: why, and the fix."""
    st = read_status(run_dir) or {}
    at = f" at epoch {st['epoch']}" if st.get("epoch") is not None else ""
    return (f"failed{at}: {st.get('reason')}; not retrained: delete the run directory (rm -r {run_dir}) "
            "and run the sweep again")


def _write_plan(plan: dict) -> Path:
    out = Path(plan["out_dir"])
    for r in plan["runs"]:
        atomic_write_json(out / "plan" / f"{r['name']}.json", r["config"])
    atomic_write_json(out / "plan" / "plan.json", plan)
    cmds = train_commands(plan)
    atomic_write_text(out / "commands.txt", "".join(c + "\n" for c in cmds))
    return out / "commands.txt"


def train_commands(plan: dict, *, python: str | None = None, all_runs: bool = False) -> list[str]:
    """One shell command per run that is not complete yet (all runs with ``all_runs``): ``ncmargin train
    OUT/plan/<run>.json --out OUT/<run> --quiet`` for a new run, ``ncmargin train --resume OUT/<run>
    --quiet`` for a partial one, with absolute paths. Each command is independent (a SLURM array task,
    a submitit job).
    ``python`` (e.g. ``sys.executable``) prefixes ``-m ncmargin`` instead of the ``ncmargin`` script."""
    exe = f"{shlex.quote(python)} -m ncmargin" if python else "ncmargin"
    out = Path(plan["out_dir"]).resolve()  # absolute: a cluster job may start in another directory
    cmds = []
    for r in plan["runs"]:
        rd = Path(r["run_dir"]).resolve()
        status = run_status(rd)
        if (status == "complete" and not all_runs) or status == "failed":  # failed: excluded, says why
            continue
        if status == "partial":
            cmds.append(f"{exe} train --resume {shlex.quote(str(rd))} --quiet")
        else:
            cfg = out / "plan" / f"{r['name']}.json"
            cmds.append(f"{exe} train {shlex.quote(str(cfg))} --out {shlex.quote(str(rd))} --quiet")
    return cmds



# ---------------------------------------------------------------------------------------------- train

def _train_missing(plan: dict, jobs: int, train_fn: Callable | None, log: Callable[[str], None]) -> dict:
    """Train missing runs, resume partial ones, reuse complete ones (ncmargin.empirical.pool, one torch
    thread per process). Returns the lists by status."""
    todo, reused, failed = [], [], []
    for r in plan["runs"]:
        status = run_status(Path(r["run_dir"]))
        if status == "failed":  # never resumed nor retrained; collect_sweep excludes it with the reason
            failed.append(r["name"])
            log(f"[sweep] {_failed_reason(Path(r['run_dir']))}")
            continue
        if status != "absent":
            _check_stored(r)
        if status == "complete":
            reused.append(r["name"])
        else:
            todo.append((r, status == "partial"))
    if reused:
        log(f"[sweep] reusing {len(reused)} complete run(s)")
    if not todo:
        return {"trained": [], "resumed": [], "reused": reused, "failed": failed}
    log(f"[sweep] training {len(todo)} run(s) with {max(1, min(int(jobs or 1), len(todo)))} job(s)")
    Path(plan["out_dir"]).mkdir(parents=True, exist_ok=True)
    train_runs([(r["name"], None if resume else r["config"], r["run_dir"], resume) for r, resume in todo],
               jobs=jobs, threads=1, train_fn=train_fn, log=log, tag="sweep")
    return {"trained": [r["name"] for r, res in todo if not res], "resumed": [r["name"] for r, res in todo if res],
            "reused": reused, "failed": failed}


# -------------------------------------------------------------------------------------------- collect

def collect_run(run_dir: str | os.PathLike) -> dict:
    """Final numbers and docs/theory.md §8 predictors of one complete run (last checkpoint's train features and the
    fixed ETF ``M`` stored as its classifier): ``{"reached_tpt", "onset_epoch", "final_epoch",
    "final_train_acc", "final_test_acc", "final_train_loss", "final_p_min", "predictors", "reason"}``."""
    from ncmargin.store import load_run
    from ncmargin.theory.alignment import alignment_predictors

    run = load_run(run_dir)
    if not run.log:
        raise ValueError(f"{run_dir}: empty log.jsonl; retrain the run")
    last = run.log[-1]
    ep = run.checkpoint_epochs[-1]
    fs = run.features(ep, split="train")
    if fs.classifier is None:
        raise ValueError(f"{run_dir}: checkpoint {ep} has no classifier; retrain with the current trainer")
    preds = alignment_predictors(fs.features, fs.labels, fs.classifier)
    acc = float(last["train_acc"])
    reached = acc == 1.0
    reason = None
    if not reached:
        reason = (f"final train accuracy {acc:.6f} < 1: never reached 100%" if run.onset_epoch is None else
                  f"reached 100% train accuracy at epoch {run.onset_epoch} but ended at {acc:.6f}")
    return {"reached_tpt": reached, "onset_epoch": run.onset_epoch, "final_epoch": int(last["epoch"]),
            "checkpoint_epoch": int(ep), "final_train_acc": acc, "final_test_acc": float(last["test_acc"]),
            "final_train_loss": last.get("loss"), "final_p_min": last.get("p_min"),
            "final_normalized_margin": last.get("normalized_margin"), "predictors": preds, "reason": reason}


def collect_sweep(plan: dict, *, statistics: dict | None = None, concentration: dict | None = None,
                  timings: dict | None = None, write: bool = True, power: dict | None = None) -> dict:
    """Read every planned run (never trains), compute the statistics and write ``OUT/sweep.json``.

    A run that is missing or incomplete is listed in ``excluded`` (reason ``"missing"``/``"incomplete"``).
    ``power``: ``{"sesoi", "target_power"}`` overriding the plan's (the sweep preset's, else POWER_DEFAULTS)."""
    runs, excluded = [], []
    for r in plan["runs"]:
        rd = Path(r["run_dir"])
        status = run_status(rd)
        rec = {"run_dir": str(rd), "run_id": r["name"], "alignment": r["alignment"], "seed": r["seed"]}
        if status != "complete":
            reason = {"absent": "missing (never trained)", "failed": _failed_reason(rd)}.get(
                status, "incomplete (train --resume it)")
            rec.update(reached_tpt=False, final_test_acc=None, predictors={}, reason=reason, status=status)
            excluded.append({"run_id": r["name"], "run_dir": str(rd), "reason": reason})
        else:
            _check_stored(r)
            rec.update(collect_run(rd), status=status)
            if not rec["reached_tpt"]:
                excluded.append({"run_id": r["name"], "run_dir": str(rd), "reason": rec["reason"]})
        runs.append(rec)
    st = {**plan.get("statistics", {}), **(statistics or {})}
    pw = {**POWER_DEFAULTS, **(plan.get("power") or {}), **{k: v for k, v in (power or {}).items() if v is not None}}
    stats = sweep_statistics(runs, [a["id"] for a in plan["alignments"]], plan["seeds"], **st, **pw)
    doc = {"schema": SWEEP_SCHEMA, "preset": plan.get("preset"), "out_dir": plan["out_dir"],
           "num_classes": plan.get("num_classes"), "alignment_mode": plan.get("alignment_mode"),
           "base_rotation_seed": plan.get("base_rotation_seed"),
           "alignments": plan["alignments"], "seeds": plan["seeds"], "base_config": plan.get("base_config"),
           "data_fixed": {"split_seed": plan.get("base_config", {}).get("split_seed"),
                          "note": "seed changes model init and batch order only; the data split is fixed"},
           "runs": runs, "excluded": excluded, "stats": stats,
           "concentration": concentration, "timings": timings or {}}
    if write:
        Sweep(doc).write(Path(plan["out_dir"]) / "sweep.json")
    return doc


def read_sweep_json(path: str | os.PathLike) -> dict:
    """Read and check ``sweep.json`` (a sweep directory holding it or the file itself)."""
    return Sweep.read(path)


# ------------------------------------------------------------------------------------------ sweep

def run_sweep(preset="sweep_quick", out_dir="runs/sweep", *, alignments: int | None = None, seeds=None,
              alignment_mode: str | None = None, base_rotation_seed: int | None = None,
              overrides: dict | list | None = None, jobs: int = 1, train: bool = True,
              concentration: bool | dict = True, statistics: dict | None = None,
              train_fn: Callable | None = None, log: Callable[[str], None] | None = None,
              power: dict | None = None) -> dict:
    """Plan, train what is missing (``jobs`` processes, spawn context; complete runs are reused, partial ones
    resumed), run the concentration check, collect and write ``OUT/sweep.json``; returns its content.

    ``train=False`` only collects (runs trained elsewhere, e.g. by a SLURM array over ``commands.txt``).
    ``concentration``: False skips it, a dict overrides the preset's settings. ``power``:
    ``{"sesoi", "target_power"}`` overriding the preset's (docs/theory.md §13)."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    plan = plan_sweep(preset, out_dir, alignments=alignments, seeds=seeds, alignment_mode=alignment_mode,
                      base_rotation_seed=base_rotation_seed, overrides=overrides, jobs=jobs)
    if not train:
        _check_something_trained(plan)
    # one writer per sweep directory (issue 12); each training run also locks its own run directory
    with RunLock(plan["out_dir"], purpose="ncmargin sweep", log=log):
        return _run_sweep_locked(plan, t0, jobs=jobs, train=train, concentration=concentration,
                                 statistics=statistics, train_fn=train_fn, log=log, power=power)


def _check_something_trained(plan: dict) -> None:
    """``--no-train`` collects; with no complete run there is nothing to collect (issue 12: not exit 0)."""
    n = len(plan["runs"])
    if not any(run_status(Path(r["run_dir"])) == "complete" for r in plan["runs"]):
        out = plan["out_dir"]
        raise ValueError(f"{out}: no trained runs to collect (0 of {n} complete); train them first: the same "
                         f"`ncmargin sweep` command without --no-train, or the commands in {out}/commands.txt "
                         "(written by --print-commands)")


def _run_sweep_locked(plan: dict, t0: float, *, jobs: int, train: bool, concentration, statistics,
                      train_fn, log, power: dict | None = None) -> dict:
    _write_plan(plan)
    timings: dict[str, float] = {}
    status = {"trained": [], "resumed": [], "reused": []}
    if train:
        status = _train_missing(plan, jobs, train_fn, log)
    timings["train_s"] = time.perf_counter() - t0
    conc = None
    if concentration is not False:
        t1 = time.perf_counter()
        cs = dict(plan.get("concentration") or {})
        if isinstance(concentration, dict):
            cs = deep_merge(cs, concentration)
        conc = concentration_experiment(cs)
        timings["concentration_s"] = time.perf_counter() - t1
        log(f"[sweep] concentration check in {timings['concentration_s']:.1f}s")
    t2 = time.perf_counter()
    doc = collect_sweep(plan, statistics=statistics, concentration=conc, write=False, power=power)
    timings["collect_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0
    doc["timings"] = timings
    doc["run_status"] = status
    Sweep(doc).write(Path(plan["out_dir"]) / "sweep.json")
    return read_sweep_json(Path(plan["out_dir"]) / "sweep.json")
