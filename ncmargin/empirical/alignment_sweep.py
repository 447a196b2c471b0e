"""Claim 3, non-conservative generalization: alignment × seed sweeps with a fixed simplex-ETF head
(THEORY.md §1, §5; docs/theory.md §10; sweep.json contract in docs/results.md).

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
    stats = sweep_statistics(runs, alignment_ids, seeds)                        # ANOVA, permutation, predictors
    conc = concentration_experiment({...})                                      # THEORY §5 concentration check
    verdicts = claim3_verdicts(doc)                                             # for `ncmargin verify`

Claim "3" registers itself in :mod:`ncmargin.empirical.verify` (``register_claim``) and its key-numbers
section in :mod:`ncmargin.report` (``register_section``).

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
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ncmargin.io import atomic_write_json, atomic_write_text, read_json, read_schema_json

__all__ = [
    "SWEEP_SCHEMA", "PLAN_SCHEMA", "RULE", "omega_squared", "IGNORED_CONFIG_KEYS", "load_sweep_preset", "list_sweep_presets",
    "make_alignments", "plan_sweep", "train_commands", "write_plan", "run_sweep", "collect_sweep",
    "collect_run", "sweep_statistics", "predictor_correlations", "concentration_experiment",
    "claim3_verdicts", "claim_3", "read_sweep_json",
]

SWEEP_SCHEMA = "ncmargin.sweep/1"
PLAN_SCHEMA = "ncmargin.sweep_plan/1"
PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"

# config keys that may differ between a stored run and the plan without making it another experiment
IGNORED_CONFIG_KEYS = frozenset({"device", "quiet", "save_every", "eval_batch_size", "compile", "amp",
                                 "channels_last", "data_root", "download", "deterministic", "num_threads"})

PREDICTOR_DIRECTIONS = {"alignment_score": -1, "normalized_margin_mean": +1, "normalized_margin_min": +1}

STAT_DEFAULTS = {"alpha": 0.05, "n_perm": 9999, "n_boot": 2000, "level": 0.95, "seed": 0, "min_points": 5}

CONCENTRATION_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    # fresh: h = mu + Uniform[-a, a]^d, the mean mu known exactly, rho = ||mu||_inf + a
    "fresh": {"d": 2, "halfwidth": 1.0, "ns": [10, 40, 160, 640, 2560], "eps": [0.05, 0.1, 0.2, 0.4],
              "trials": 2000},
    # trained: a tanh-feature network (K classes, d = K-1, fixed ETF head) trained on n samples per class;
    # mean of its features on the training sample vs on n fresh samples, against the population mean
    "trained": {"K": 3, "input_dim": 10, "hidden": 32, "separation": 1.5, "ns": [10, 40, 160, 640],
                "eps": [0.05, 0.1, 0.2, 0.4], "trials": 16, "steps": 200, "lr": 0.02, "scale": 4.0,
                "population_per_class": 5000},
}


# ------------------------------------------------------------------------------------------- presets

def list_sweep_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("sweep_*.json"))


def load_sweep_preset(source: str | os.PathLike | dict | None) -> dict:
    """A sweep preset: a dict, a JSON path, or a name in ``ncmargin/configs`` (``sweep_quick`` or ``quick``
    for ``sweep_quick.json``). Keys: ``train`` (training config: a dict, a training preset name or a
    JSON path), ``set`` (overrides), ``alignments`` (int), ``alignment_mode`` (perm|rotation|both),
    ``base_rotation_seed``, ``seeds`` (int count or list), ``statistics``, ``concentration``.

    A training config (a preset name or JSON without a ``train`` key) is wrapped as ``{"train": it}``."""
    if source is None:
        source = "sweep_quick"
    if isinstance(source, dict):
        obj = dict(source)
        if "train" not in obj:
            obj = {"train": obj}
        return obj
    s = str(source)
    cands = [Path(s), PRESET_DIR / f"{s}.json", PRESET_DIR / f"sweep_{s}.json"]
    for p in cands:
        if p.is_file():
            obj = read_json(p)
            if not isinstance(obj, dict):
                raise ValueError(f"{p}: a sweep preset must be a JSON object; see ncmargin/configs/sweep_quick.json")
            obj = {k: v for k, v in obj.items() if not str(k).startswith("_")}
            if "train" not in obj:  # a plain training config
                obj = {"train": str(p)}
            obj.setdefault("name", p.stem)
            return obj
    raise FileNotFoundError(f"sweep config {s!r} is neither a JSON file nor a preset; sweep presets: "
                            f"{', '.join(list_sweep_presets())} (a training preset name works too)")


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
    """A alignments (THEORY.md §1: a label permutation π and a frame orientation U) of K classes.

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
            runs.append({"name": name, "run_dir": str(out / name), "alignment": al["id"], "seed": s,
                         "config": c.to_dict()})
    return {"schema": PLAN_SCHEMA, "out_dir": str(out), "preset": pre.get("name", "custom"), "num_classes": K,
            "alignment_mode": mode, "base_rotation_seed": base_rot, "alignments": als, "seeds": seed_list,
            "base_config": cfg.to_dict(),
            "statistics": {**STAT_DEFAULTS, **(pre.get("statistics") or {})},
            "concentration": pre.get("concentration", {}), "runs": runs}


def _replace(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes).validate()


def _run_status(run_dir: Path) -> str:
    from ncmargin.empirical.verify import run_status

    return run_status(run_dir)


def _check_stored(run: dict) -> None:
    rd = Path(run["run_dir"])
    stored = read_json(rd / "config.json").get("config", {})
    diff = sorted(k for k, v in run["config"].items() if k not in IGNORED_CONFIG_KEYS and stored.get(k) != v)
    if diff:
        raise ValueError(f"{rd} holds a run whose config differs from this sweep in {diff}; use another --out "
                         f"directory or delete {rd}")


def write_plan(plan: dict) -> Path:
    """Write ``OUT/plan/<run>.json`` (each run's full training config), ``OUT/plan/plan.json`` and
    ``OUT/commands.txt`` (one ``ncmargin train`` command per run still to do; see docs/sweeps.md)."""
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
        status = _run_status(rd)
        if status == "complete" and not all_runs:
            continue
        if status == "partial":
            cmds.append(f"{exe} train --resume {shlex.quote(str(rd))} --quiet")
        else:
            cfg = out / "plan" / f"{r['name']}.json"
            cmds.append(f"{exe} train {shlex.quote(str(cfg))} --out {shlex.quote(str(rd))} --quiet")
    return cmds


# ---------------------------------------------------------------------------------------------- train

def _train_worker(train_fn: Callable | None, cfg: dict, run_dir: str, resume: bool, threads: int | None) -> str:
    """Train (or resume) one run; a top-level function so that a spawn-context pool can pickle it."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    if train_fn is None:
        from ncmargin.empirical.train import train as train_fn
    if resume:
        train_fn(None, run_dir, resume=True)
    else:
        train_fn(cfg, run_dir)
    return run_dir


def _train_missing(plan: dict, jobs: int, train_fn: Callable | None, log: Callable[[str], None]) -> dict:
    """Train missing runs, resume partial ones, reuse complete ones. Returns the lists by status."""
    todo, reused = [], []
    for r in plan["runs"]:
        rd = Path(r["run_dir"])
        status = _run_status(rd)
        if status != "absent":
            _check_stored(r)
        if status == "complete":
            reused.append(r["name"])
        else:
            todo.append((r, status == "partial"))
    if reused:
        log(f"[sweep] reusing {len(reused)} complete run(s)")
    if not todo:
        return {"trained": [], "resumed": [], "reused": reused}
    jobs = max(1, min(int(jobs or 1), len(todo)))
    log(f"[sweep] training {len(todo)} run(s) with {jobs} job(s)")
    Path(plan["out_dir"]).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if jobs == 1:
        for i, (r, resume) in enumerate(todo):
            _train_worker(train_fn, r["config"], r["run_dir"], resume, None)
            log(f"[sweep] {i + 1}/{len(todo)} {r['name']} done ({time.perf_counter() - t0:.0f}s)")
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as ex:
            futs = {ex.submit(_train_worker, train_fn, r["config"], r["run_dir"], resume, 1): r["name"]
                    for r, resume in todo}
            for i, f in enumerate(as_completed(futs)):
                f.result()
                log(f"[sweep] {i + 1}/{len(todo)} {futs[f]} done ({time.perf_counter() - t0:.0f}s)")
    return {"trained": [r["name"] for r, res in todo if not res], "resumed": [r["name"] for r, res in todo if res],
            "reused": reused}


# -------------------------------------------------------------------------------------------- collect

def collect_run(run_dir: str | os.PathLike) -> dict:
    """Final numbers and THEORY §5 predictors of one complete run (last checkpoint's train features and the
    fixed ETF ``M`` stored as its classifier): ``{"reached_tpt", "onset_epoch", "final_epoch",
    "final_train_acc", "final_test_acc", "final_train_loss", "final_p_min", "predictors", "reason"}``."""
    from ncmargin.empirical.runs import load_run
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
                  timings: dict | None = None, write: bool = True) -> dict:
    """Read every planned run (never trains), compute the statistics and write ``OUT/sweep.json``.

    A run that is missing or incomplete is listed in ``excluded`` (reason ``"missing"``/``"incomplete"``)."""
    runs, excluded = [], []
    for r in plan["runs"]:
        rd = Path(r["run_dir"])
        status = _run_status(rd)
        rec = {"run_dir": str(rd), "run_id": r["name"], "alignment": r["alignment"], "seed": r["seed"]}
        if status != "complete":
            reason = "missing (never trained)" if status == "absent" else "incomplete (train --resume it)"
            rec.update(reached_tpt=False, final_test_acc=None, predictors={}, reason=reason, status=status)
            excluded.append({"run_id": r["name"], "run_dir": str(rd), "reason": reason})
        else:
            _check_stored(r)
            rec.update(collect_run(rd), status=status)
            if not rec["reached_tpt"]:
                excluded.append({"run_id": r["name"], "run_dir": str(rd), "reason": rec["reason"]})
        runs.append(rec)
    st = {**plan.get("statistics", {}), **(statistics or {})}
    stats = sweep_statistics(runs, [a["id"] for a in plan["alignments"]], plan["seeds"], **st)
    doc = {"schema": SWEEP_SCHEMA, "preset": plan.get("preset"), "out_dir": plan["out_dir"],
           "num_classes": plan.get("num_classes"), "alignment_mode": plan.get("alignment_mode"),
           "base_rotation_seed": plan.get("base_rotation_seed"),
           "alignments": plan["alignments"], "seeds": plan["seeds"], "base_config": plan.get("base_config"),
           "data_fixed": {"split_seed": plan.get("base_config", {}).get("split_seed"),
                          "note": "seed changes model init and batch order only; the data split is fixed"},
           "runs": runs, "excluded": excluded, "stats": stats,
           "concentration": concentration, "timings": timings or {}}
    if write:
        atomic_write_json(Path(plan["out_dir"]) / "sweep.json", doc)
    return doc


def read_sweep_json(path: str | os.PathLike) -> dict:
    """Read and check ``sweep.json`` (a sweep directory holding it or the file itself)."""
    return read_schema_json(path, SWEEP_SCHEMA, what="a sweep", fix="rerun `ncmargin sweep`",
                            name="sweep.json")[1]


# ----------------------------------------------------------------------------------------- statistics

def _rho(x, y) -> float:
    """Spearman's rho as the Pearson correlation of average ranks (the definition scipy.stats.spearmanr
    uses; tested equal to it); NaN when either input is constant. Fast enough for thousands of bootstrap
    replicates."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x), rankdata(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _corr_with_ci(x, y, *, n_boot: int, level: float, seed: int) -> dict:
    from ncmargin.theory.stats import bootstrap_ci, spearman

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3:
        return {"rho": None, "p": None, "ci_low": None, "ci_high": None, "n": int(x.size),
                "reason": f"{x.size} points < 3"}
    st = spearman(x, y)
    ci = bootstrap_ci(_rho, x, y, n_boot=n_boot, level=level, seed=seed)
    return {"rho": st["rho"], "p": st["p_value"], "ci_low": ci["low"], "ci_high": ci["high"], "n": int(x.size),
            "level": level, "n_boot": n_boot, "n_valid_boot": ci["n_valid"]}


def predictor_correlations(runs: list[dict], alignment_ids: list[str], *, n_boot: int = 2000,
                           level: float = 0.95, seed: int = 0) -> dict:
    """Spearman ρ of each predictor with the final test accuracy, with a percentile-bootstrap interval:
    across alignments (predictor and accuracy averaged over an alignment's included seeds; the headline
    numbers ``rho``/``p``/``ci_low``/``ci_high``, THEORY §5) and across runs (``runs`` sub-dict)."""
    inc = [r for r in runs if r.get("reached_tpt") and r.get("final_test_acc") is not None]
    names = list(dict.fromkeys(k for r in inc for k in (r.get("predictors") or {})))
    out = {}
    for j, name in enumerate(names):
        x = [float(r["predictors"].get(name, np.nan)) for r in inc]
        y = [float(r["final_test_acc"]) for r in inc]
        per_run = _corr_with_ci(x, y, n_boot=n_boot, level=level, seed=seed + 2 * j)
        xm, ym = [], []
        for a in alignment_ids:
            rs = [r for r in inc if r["alignment"] == a]
            if rs:
                xm.append(float(np.mean([r["predictors"].get(name, np.nan) for r in rs])))
                ym.append(float(np.mean([r["final_test_acc"] for r in rs])))
        per_al = _corr_with_ci(xm, ym, n_boot=n_boot, level=level, seed=seed + 2 * j + 1)
        out[name] = {**per_al, "unit": "alignment means", "expected_sign": PREDICTOR_DIRECTIONS.get(name, 0),
                     "runs": {**per_run, "unit": "runs"}}
    return out


def sweep_statistics(runs: list[dict], alignment_ids: list[str], seeds: list[int], *, alpha: float = 0.05,
                     n_perm: int = 9999, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                     min_points: int = 5) -> dict:
    """Statistics of a sweep (docs/theory.md §10): the alignment × seed table of final test accuracy of the
    included runs, made complete by dropping seeds (else alignments) with an excluded run; the additive
    two-way ANOVA and the within-seed permutation test (``alignment_effect_verdict``); the same ANOVA on
    log10 of the final train loss (the claim's premise: equal loss); the predictor correlations; and a
    plot-ready ``plot_table`` (a list of flat rows, one per run, CSV-friendly)."""
    from ncmargin.theory.stats import alignment_effect_verdict, complete_table, two_way_anova

    aidx = {a: i for i, a in enumerate(alignment_ids)}
    sidx = {s: j for j, s in enumerate(seeds)}
    T = np.full((len(alignment_ids), len(seeds)), np.nan)
    Lt = np.full_like(T, np.nan)
    for r in runs:
        if r.get("reached_tpt") and r.get("final_test_acc") is not None and r["alignment"] in aidx \
                and r["seed"] in sidx:
            T[aidx[r["alignment"]], sidx[r["seed"]]] = float(r["final_test_acc"])
            loss = r.get("final_train_loss")
            Lt[aidx[r["alignment"]], sidx[r["seed"]]] = math.log10(loss) if loss and loss > 0 else np.nan
    plot_rows = []
    for r in runs:
        acc = r.get("final_test_acc")
        row = {"alignment": r["alignment"], "seed": r["seed"], "included": bool(r.get("reached_tpt")),
               "final_test_acc": acc, "final_train_acc": r.get("final_train_acc"),
               "final_train_loss": r.get("final_train_loss")}
        row.update({k: v for k, v in (r.get("predictors") or {}).items()})
        plot_rows.append(row)
    means = []
    for a in alignment_ids:
        v = T[aidx[a]][np.isfinite(T[aidx[a]])]
        means.append({"alignment": a, "n": int(v.size), "mean_test_acc": float(v.mean()) if v.size else None,
                      "std_test_acc": float(v.std(ddof=1)) if v.size > 1 else None,
                      "min_test_acc": float(v.min()) if v.size else None,
                      "max_test_acc": float(v.max()) if v.size else None})
    stats: dict[str, Any] = {"plot_table": plot_rows, "alignment_means": means,
                             "settings": {"alpha": alpha, "n_perm": n_perm, "n_boot": n_boot, "level": level,
                                          "seed": seed}}
    table = None
    method = None
    for drop in ("seeds", "alignments"):
        try:
            table = complete_table(T, drop=drop)
            method = drop
            break
        except ValueError as exc:
            err = str(exc)
    if table is None:
        stats["error"] = (f"no complete 2x2 alignment x seed table of runs with 100% train accuracy: {err}")
        stats["verdict"] = None
        stats["predictor_correlations"] = predictor_correlations(runs, alignment_ids, n_boot=n_boot,
                                                                  level=level, seed=seed)
        return stats
    kept_a = [alignment_ids[i] for i in table["kept_alignments"]]
    kept_s = [seeds[j] for j in table["kept_seeds"]]
    Tc = table["table"]
    stats["table"] = {"alignments": kept_a, "seeds": kept_s, "test_acc": Tc.tolist(),
                      "missing_cells": int(np.isnan(T).sum()), "method": (
                          "complete" if not np.isnan(T).any() else f"dropped every {method[:-1]} with an excluded run"),
                      "dropped_seeds": [seeds[j] for j in table["dropped_seeds"]],
                      "dropped_alignments": [alignment_ids[i] for i in table["dropped_alignments"]]}
    ver = alignment_effect_verdict(Tc, alpha=alpha, n_perm=n_perm, seed=seed)
    an = ver["anova"]
    om = omega_squared(an)
    stats["anova"] = {"p_alignment": an["alignment"]["p_value"], "p_seed": an["seed"]["p_value"],
                      "F_alignment": an["alignment"]["F"], "F_seed": an["seed"]["F"],
                      "eta2_alignment": an["alignment"]["eta2"], "eta2_seed": an["seed"]["eta2"],
                      "partial_eta2_alignment": an["alignment"]["partial_eta2"],
                      "partial_eta2_seed": an["seed"]["partial_eta2"],
                      "df_alignment": an["alignment"]["df"], "df_seed": an["seed"]["df"],
                      "df_error": an["error"]["df"], "ss_alignment": an["alignment"]["ss"],
                      "ss_seed": an["seed"]["ss"], "ss_error": an["error"]["ss"], "ss_total": an["total"]["ss"],
                      "eta2_error": an["error"]["ss"] / an["total"]["ss"] if an["total"]["ss"] > 0 else None,
                      "omega2_alignment": om["alignment"], "omega2_seed": om["seed"]}
    stats["permutation"] = {"p_value": ver["permutation_p_alignment"], "n_perm": ver["n_perm"],
                            "statistic": "SS_alignment (within-seed permutations)", "seed": seed}
    pa, pp = an["alignment"]["p_value"], ver["permutation_p_alignment"]
    more = om["alignment"] > om["seed"]
    stats["verdict"] = {
        "alignment_matters_more_than_seed": bool(pa < alpha and pp < alpha and more),
        "outcome": _outcome(pa, pp, more, alpha),
        "rule": RULE.format(alpha=alpha),
        "eta2_rule_verdict": ver["verdict"], "eta2_rule": ver["rule"], "alpha": alpha}
    stats["spread"] = {"test_acc_range_of_alignment_means": float(np.ptp(Tc.mean(axis=1))),
                       "test_acc_range_of_seed_means": float(np.ptp(Tc.mean(axis=0))),
                       "test_acc_std_all": float(Tc.std(ddof=1))}
    Lc = Lt[np.ix_(table["kept_alignments"], table["kept_seeds"])]
    if np.isfinite(Lc).all():
        la = two_way_anova(Lc)
        stats["train_loss_anova"] = {"of": "log10 final train loss", "p_alignment": la["alignment"]["p_value"],
                                     "eta2_alignment": la["alignment"]["eta2"], "p_seed": la["seed"]["p_value"],
                                     "eta2_seed": la["seed"]["eta2"],
                                     "loss_min": float(10 ** Lc.min()), "loss_max": float(10 ** Lc.max())}
    stats["predictor_correlations"] = predictor_correlations(runs, alignment_ids, n_boot=n_boot, level=level,
                                                             seed=seed)
    return stats


RULE = ("pass iff ANOVA p_alignment < {alpha} and within-seed permutation p < {alpha} and "
        "omega2_alignment > omega2_seed; fail iff both p >= {alpha} (no detectable alignment effect); "
        "inconclusive otherwise (the tests disagree, or alignment is significant but explains less variance "
        "than seed)")


def omega_squared(anova: dict) -> dict:
    """ω² of each factor of an additive two-way ANOVA (``ncmargin.theory.stats.two_way_anova`` output):
    ``ω²_f = (SS_f − df_f·MS_E) / (SS_T + MS_E)`` (Hays 1963; Olejnik & Algina 2003, Table 1), the
    less biased estimate of the variance share than η² = SS_f/SS_T, whose null expectation is about
    df_f/df_T: with 8 alignments and 3 seeds η²_alignment ≈ 0.30 and η²_seed ≈ 0.09 under no effect at
    all, so comparing η² favours the factor with more levels. Negative estimates are reported as 0."""
    ms_e, ss_t = anova["error"]["ms"], anova["total"]["ss"]
    out = {}
    for f in ("alignment", "seed"):
        if ss_t + ms_e <= 0:
            out[f] = float("nan")
        else:
            out[f] = max(0.0, (anova[f]["ss"] - anova[f]["df"] * ms_e) / (ss_t + ms_e))
    return out


def _outcome(p_anova: float, p_perm: float, more: bool, alpha: float) -> str:
    if p_anova < alpha and p_perm < alpha and more:
        return "pass"
    if p_anova >= alpha and p_perm >= alpha:
        return "fail"
    return "inconclusive"


# ------------------------------------------------------------------------------------------ sweep

def run_sweep(preset="sweep_quick", out_dir="runs/sweep", *, alignments: int | None = None, seeds=None,
              alignment_mode: str | None = None, base_rotation_seed: int | None = None,
              overrides: dict | list | None = None, jobs: int = 1, train: bool = True,
              concentration: bool | dict = True, statistics: dict | None = None,
              train_fn: Callable | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Plan, train what is missing (``jobs`` processes, spawn context; complete runs are reused, partial ones
    resumed), run the concentration check, collect and write ``OUT/sweep.json``; returns its content.

    ``train=False`` only collects (runs trained elsewhere, e.g. by a SLURM array over ``commands.txt``).
    ``concentration``: False skips it, a dict overrides the preset's settings."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    plan = plan_sweep(preset, out_dir, alignments=alignments, seeds=seeds, alignment_mode=alignment_mode,
                      base_rotation_seed=base_rotation_seed, overrides=overrides, jobs=jobs)
    write_plan(plan)
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
            cs = _merge(cs, concentration)
        conc = concentration_experiment(cs)
        timings["concentration_s"] = time.perf_counter() - t1
        log(f"[sweep] concentration check in {timings['concentration_s']:.1f}s")
    t2 = time.perf_counter()
    doc = collect_sweep(plan, statistics=statistics, concentration=conc, write=False)
    timings["collect_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0
    doc["timings"] = timings
    doc["run_status"] = status
    atomic_write_json(Path(plan["out_dir"]) / "sweep.json", doc)
    return read_sweep_json(Path(plan["out_dir"]) / "sweep.json")


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# ---------------------------------------------------------------------------------- concentration

def _fresh_check(s: dict, seed: int) -> dict:
    """Bounded features with a known mean: h = μ + U[-a, a]^d (ρ = ||μ||_∞ + a bounds ||h||_∞)."""
    from ncmargin.theory.alignment import concentration_check

    d, a = int(s["d"]), float(s["halfwidth"])
    rng = np.random.default_rng(seed)
    mu = rng.uniform(-0.5, 0.5, size=d)
    rho = float(np.max(np.abs(mu)) + a)

    def sample(g, n):
        return mu + g.uniform(-a, a, size=(n, d))

    rows = concentration_check(sample, mu, s["ns"], s["eps"], rho=rho, trials=int(s["trials"]), seed=seed)
    for r in rows:
        r["nontrivial"] = r["bound"] < 1.0
    return {"rows": rows, "d": d, "rho": rho, "mu": mu.tolist(),
            "distribution": f"mu + Uniform[-{a}, {a}]^{d}, mu known exactly"}


def _trained_check(s: dict, seed: int) -> dict:
    """Features of a trained network on its own training sample vs on fresh samples (docs/theory.md §10).

    Data: K Gaussian classes in R^D (means ``separation``·random unit vectors, identity covariance).
    Network: Linear(D, hidden)–ReLU–Linear(hidden, d)–tanh, d = K−1 (so ||h||_∞ ≤ ρ = 1 surely;
    PyTorch's default Linear init U(±1/√fan_in)), with a fixed ETF head ``scale·simplex_etf(K, d)``;
    full-batch Adam on the CE for ``steps`` steps. The ``trials`` networks of one n are trained together
    as one batched model (independent weights, summed losses; Adam is elementwise, so this is exactly
    ``trials`` separate trainings). For each trial (a fresh training sample of n per class):
    μ_y = mean feature of the trained network over ``population_per_class`` fresh samples (the population
    mean up to Monte-Carlo error ≈ σ/√population ≤ 1/√5000 ≈ 0.014 by default), μ̂_train = mean over the training sample, μ̂_fresh =
    mean over n fresh samples. Events ||μ̂ − μ_y|| ≥ ε are pooled over the K classes (K·trials events per
    cell; the binomial standard error treats them as independent, which the K classes of one trial are
    not exactly)."""
    import torch

    from ncmargin.theory import simplex_etf
    from ncmargin.theory.alignment import concentration_bound

    K, D, hid = int(s["K"]), int(s["input_dim"]), int(s["hidden"])
    d = K - 1
    T, steps = int(s["trials"]), int(s["steps"])
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((K, D))
    means *= float(s["separation"]) / np.linalg.norm(means, axis=1, keepdims=True)
    M = torch.from_numpy(float(s["scale"]) * simplex_etf(K, d)).float()
    npop = int(s["population_per_class"])
    eps = np.asarray(s["eps"], dtype=np.float64)
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def draw(g, n):
        """T independent samples of n per class: X (T, K n, D) float64, labels (K n,) (same order each)."""
        y = np.repeat(np.arange(K), n)
        x = means[y][None] + g.standard_normal((T, K * n, D))
        return torch.from_numpy(x).float(), torch.from_numpy(y)

    def uniform(g, shape, fan_in):
        b = 1.0 / math.sqrt(fan_in)
        return torch.from_numpy(g.uniform(-b, b, size=shape)).float().requires_grad_(True)

    def features(params, x):
        W1, b1, W2, b2 = params
        return torch.tanh(torch.relu(x @ W1 + b1) @ W2 + b2)

    rows, dev_summary = [], []
    try:
        for j, n in enumerate(s["ns"]):
            n = int(n)
            g = np.random.default_rng([seed, j])
            params = [uniform(g, (T, D, hid), D), uniform(g, (T, 1, hid), D), uniform(g, (T, hid, d), hid),
                      uniform(g, (T, 1, d), hid)]
            opt = torch.optim.Adam(params, lr=float(s["lr"]))
            x, y = draw(g, n)
            yy = y.repeat(T)
            for _ in range(steps):
                opt.zero_grad()
                logits = features(params, x) @ M.T                     # (T, K n, K)
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, K), yy, reduction="sum") / (K * n)
                loss.backward()                                        # sum over trials: independent grads
                opt.step()
            with torch.no_grad():
                h_tr = features(params, x).double().numpy()
                xf, _ = draw(g, n)
                h_fr = features(params, xf).double().numpy()
                mu = np.empty((T, K, d))
                for c in range(K):                                     # population means, chunked by class
                    xc = torch.from_numpy(means[c] + g.standard_normal((T, npop, D))).float()
                    mu[:, c] = features(params, xc).double().numpy().mean(axis=1)
            yn = y.numpy()
            dev_tr = np.stack([np.linalg.norm(h_tr[:, yn == c].mean(axis=1) - mu[:, c], axis=1)
                               for c in range(K)], axis=1).ravel()
            dev_fr = np.stack([np.linalg.norm(h_fr[:, yn == c].mean(axis=1) - mu[:, c], axis=1)
                               for c in range(K)], axis=1).ravel()
            m = dev_tr.size
            bnd = np.atleast_1d(concentration_bound(n, eps, d, 1.0))
            for e, b in zip(eps, bnd):
                p_tr = float(np.mean(dev_tr >= e))
                p_fr = float(np.mean(dev_fr >= e))
                se_tr = math.sqrt(p_tr * (1 - p_tr) / m)
                se_fr = math.sqrt(p_fr * (1 - p_fr) / m)
                rows.append({"n": n, "eps": float(e), "empirical": p_tr, "stderr": se_tr,
                             "empirical_fresh": p_fr, "stderr_fresh": se_fr, "bound": float(b),
                             "nontrivial": bool(b < 1.0), "bound_holds": bool(p_tr <= b + 3 * se_tr),
                             "bound_holds_fresh": bool(p_fr <= b + 3 * se_fr), "events": m})
            dev_summary.append({"n": n, "mean_deviation_train": float(dev_tr.mean()),
                                "mean_deviation_fresh": float(dev_fr.mean()),
                                "ratio": float(dev_tr.mean() / dev_fr.mean()) if dev_fr.mean() > 0 else None,
                                "final_train_loss": float(loss.detach()) / T})
    finally:
        torch.set_num_threads(prev_threads)
    return {"rows": rows, "d": d, "rho": 1.0, "K": K, "deviation_by_n": dev_summary,
            "network": f"Linear({D},{hid})-ReLU-Linear({hid},{d})-tanh, fixed ETF head x{s['scale']}, "
                       f"Adam lr {s['lr']} full batch {steps} steps (float32; means in float64), {T} trials per n"}


def concentration_experiment(settings: dict | None = None) -> dict:
    """THEORY §5 concentration check: the empirical P(||μ̂_y − μ_y|| ≥ ε) against
    ``concentration_bound(n, ε, d, ρ)`` over a grid of n and ε, (i) on fresh bounded samples with a known
    mean and (ii) on the features a trained network produces for its own training sample (and, as the
    baseline, for fresh samples through the same network). Returns ``{"fresh": [rows], "trained": [rows],
    "fresh_info", "trained_info", "summary", "seconds"}``; a row is ``{"n", "eps", "empirical", "stderr",
    "bound", "bound_holds", "nontrivial", ...}`` with ``bound_holds`` = empirical ≤ bound + 3·s.e."""
    t0 = time.perf_counter()
    s = _merge(CONCENTRATION_DEFAULTS, settings or {})
    seed = int(s.get("seed", 0))
    fresh = _fresh_check(s["fresh"], seed)
    trained = _trained_check(s["trained"], seed + 1) if s.get("trained") else None

    def summary(rows, key="bound_holds"):
        nt = [r for r in rows if r["nontrivial"]]
        return {"points": len(rows), "held": sum(r[key] for r in rows), "nontrivial_points": len(nt),
                "held_nontrivial": sum(r[key] for r in nt), "all_held": all(r[key] for r in rows)}

    out = {"fresh": fresh["rows"], "fresh_info": {k: v for k, v in fresh.items() if k != "rows"},
           "trained": trained["rows"] if trained else [],
           "trained_info": {k: v for k, v in trained.items() if k != "rows"} if trained else None,
           "settings": s}
    out["summary"] = {"fresh": summary(fresh["rows"])}
    if trained:
        out["summary"]["trained"] = summary(trained["rows"])
        out["summary"]["trained_fresh_samples"] = summary(trained["rows"], "bound_holds_fresh")
    out["seconds"] = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------------------------------- verdicts

def claim3_verdicts(doc: dict, settings: dict | None = None, *, label: str | None = None) -> list[dict]:
    """Claim-3 verdicts (docs/results.md ``verdicts.json`` entries) from a sweep document.

    - ``3.alignment_effect``: :data:`RULE` (pass iff both tests give p < α and ω²_alignment > ω²_seed;
      fail iff both p ≥ α; inconclusive otherwise, or when no complete 2×2 table of included runs exists).
    - ``3.terminal_phase``: every run ended at 100% train accuracy (pass), else inconclusive with the list.
    - ``3.predictor.<name>``: Spearman ρ across alignment means with the predicted sign (score: negative,
      normalized margins: positive), p < α (three-valued rule of ncmargin.empirical.verify); judged only
      when ``3.alignment_effect`` passed — otherwise inconclusive (the rule's result kept in the detail).
    - ``3.concentration.fresh`` / ``3.concentration.trained``: the bound held at every grid point."""
    from ncmargin.empirical.verify import correlation_verdict, make_verdict

    suffix = f".{label}" if label else ""
    stats = doc.get("stats") or {}
    st = {**STAT_DEFAULTS, **(stats.get("settings") or {}), **(settings or {})}
    alpha = float(st["alpha"])
    run_ids = [r.get("run_id") or Path(r["run_dir"]).name for r in doc.get("runs", [])]
    out = []
    an, perm = stats.get("anova"), stats.get("permutation")
    if an and perm:
        pa, pp = an["p_alignment"], perm["p_value"]
        v = _outcome(pa, pp, an["omega2_alignment"] > an["omega2_seed"], alpha)
        value = pp
        detail = {"anova": an, "permutation": perm, "table": stats.get("table"),
                  "spread": stats.get("spread"), "train_loss_anova": stats.get("train_loss_anova"),
                  "alignment_means": stats.get("alignment_means"), "rule": stats["verdict"]["rule"]}
    else:
        v, value = "inconclusive", None
        detail = {"reason": stats.get("error", "no statistics")}
    effect = v
    out.append(make_verdict(
        "3", f"3.alignment_effect{suffix}",
        "Networks with a fixed simplex-ETF classifier that all reach 100% train accuracy generalize differently "
        "depending on the alignment of labels with the ETF vertices: alignment explains more variance of the "
        "final test accuracy than the seed does.",
        "within-seed permutation p-value of the alignment effect (ANOVA p, eta2, omega2 in detail)", value,
        RULE.format(alpha=alpha), v, run_ids, detail))
    runs = doc.get("runs", [])
    n_ok = sum(bool(r.get("reached_tpt")) for r in runs)
    frac = n_ok / len(runs) if runs else None
    out.append(make_verdict(
        "3", f"3.terminal_phase{suffix}",
        "Every sweep run reaches the terminal phase (100% train accuracy at its final epoch); excluded runs "
        "are left out of the statistics.",
        "fraction of runs with final train accuracy 1", frac, "= 1",
        "inconclusive" if frac is None or frac < 1 else "pass", run_ids,
        {"excluded": doc.get("excluded", []), "table": stats.get("table")}))
    for name, pc in (stats.get("predictor_correlations") or {}).items():
        direction = PREDICTOR_DIRECTIONS.get(name, 1)
        xs, ys = [], []
        for a in doc.get("alignments", []):
            rs = [r for r in runs if r["alignment"] == a["id"] and r.get("reached_tpt")
                  and r.get("final_test_acc") is not None]
            if rs:
                xs.append(float(np.mean([r["predictors"][name] for r in rs])))
                ys.append(float(np.mean([r["final_test_acc"] for r in rs])))
        vv, vst = correlation_verdict(xs, ys, alpha=alpha, min_points=int(st["min_points"]), direction=direction)
        extra = {"rule_verdict": vv}
        if effect != "pass":  # nothing to predict: report the correlation, do not judge the predictor on noise
            vv = "inconclusive"
            extra["reason"] = (f"no established alignment effect (3.alignment_effect = {effect}): the ranking of "
                               "alignment means that are not shown to differ is not a target for a predictor")
        out.append(make_verdict(
            "3", f"3.predictor.{name}{suffix}",
            f"The THEORY §5 predictor {name} (train features, fixed ETF) ranks the alignments by test accuracy "
            f"({'smaller' if direction < 0 else 'larger'} = better).",
            "Spearman rho(predictor, test accuracy) across alignment means", pc.get("rho"),
            f"rho {'<' if direction < 0 else '>'} 0 and p < {alpha} (n >= {st['min_points']} alignments)", vv,
            run_ids, {**pc, "verdict_stats": vst, **extra}))
    conc = doc.get("concentration") or {}
    for part, stmt in (("fresh", ("On fresh i.i.d. bounded samples with a known mean, the empirical "
                                  "P(||mu_hat - mu|| >= eps) stays below the concentration bound "
                                  "2d exp(-n eps^2/(2 d^2 rho^2)) at every (n, eps) of the grid.")),
                       ("trained", ("On the features a trained network produces for its own training sample "
                                    "(not independent of the network: the caveat of the argument), the "
                                    "empirical P(||mu_hat - mu|| >= eps) stays below the same bound."))):
        rows = conc.get(part) or []
        if not rows:
            continue
        held = sum(bool(r["bound_holds"]) for r in rows)
        nt = [r for r in rows if r.get("nontrivial")]
        out.append(make_verdict(
            "3", f"3.concentration.{part}{suffix}", stmt, "fraction of grid points where the bound holds "
            "(empirical <= bound + 3 s.e.)", held / len(rows), "= 1", "pass" if held == len(rows) else "fail", [],
            {"summary": (conc.get("summary") or {}).get(part), "nontrivial_points": len(nt),
             "held_nontrivial": sum(bool(r["bound_holds"]) for r in nt),
             "max_empirical_minus_bound": max(r["empirical"] - min(r["bound"], 1.0) for r in rows),
             "info": conc.get(f"{part}_info")}))
    return out


# ---------------------------------------------------------------------------------- verify wiring

def _claim3_sweeps(preset: dict, s: dict) -> list[str]:
    sw = s.get("sweep") or s.get("sweeps")
    if sw is None:
        sw = ["sweep_paper_cifar10", "sweep_paper_cifar100"] if preset.get("name") == "paper" else ["sweep_quick"]
    return [sw] if isinstance(sw, (str, dict)) else list(sw)


def claim_3(out_dir: Path, preset: dict, ctx) -> list[dict]:
    """``ncmargin verify`` step for claim 3. Settings under ``preset["claim3"]`` (all optional): ``sweep``
    (a sweep preset name/path/dict or a list of them; default ``sweep_quick``, ``sweep_paper_cifar10`` +
    ``sweep_paper_cifar100`` for the paper preset), ``alignments``, ``seeds``, ``alignment_mode``, ``set``
    (training overrides), ``statistics``, ``concentration`` (False to skip). One sweep writes
    ``OUT/sweep/sweep.json``; several write ``OUT/sweep/<name>/sweep.json``."""
    s = dict(preset.get("claim3") or {})
    sweeps = _claim3_sweeps(preset, s)
    over = dict(s.get("set") or {})
    # verify's --jobs when given (> 1), else claim3.jobs, else min(2, CPU count): the quick sweep is 40
    # small single-threaded runs, so two processes halve its wall time on the 2-core reference machine
    jobs = int(ctx.jobs) if int(ctx.jobs or 1) > 1 else int(s.get("jobs", min(2, os.cpu_count() or 1)))
    if ctx.device:
        over["device"] = ctx.device
    out = []
    for i, sw in enumerate(sweeps):
        pre = load_sweep_preset(sw)
        name = str(pre.get("name", f"sweep{i}"))
        label = None if len(sweeps) == 1 else name.replace("sweep_", "")
        sdir = Path(out_dir) / "sweep" if len(sweeps) == 1 else Path(out_dir) / "sweep" / label
        t0 = time.perf_counter()
        doc = run_sweep(pre, sdir, alignments=s.get("alignments"), seeds=s.get("seeds"),
                        alignment_mode=s.get("alignment_mode"), overrides=over, jobs=jobs,
                        concentration=(s.get("concentration", True) if i == 0 else False),
                        statistics=s.get("statistics"), train_fn=getattr(ctx, "train_fn", None), log=ctx.log)
        ctx.timings[f"sweep_{label or 'quick'}_s"] = time.perf_counter() - t0
        for k in ("trained", "resumed", "reused"):
            getattr(ctx, k).extend(f"sweep/{n}" for n in doc.get("run_status", {}).get(k, []))
        st = doc["stats"]
        ctx.log(f"[verify] claim 3 {name}: {len(doc['runs'])} runs, {len(doc['excluded'])} excluded, "
                f"perm p = {(st.get('permutation') or {}).get('p_value')}, "
                f"eta2 a/s = {(st.get('anova') or {}).get('eta2_alignment')}/{(st.get('anova') or {}).get('eta2_seed')}")
        out += claim3_verdicts(doc, s.get("statistics"), label=label)
    return out


def _report_section(out_dir: Path, verdicts: list[dict], doc: dict) -> str:
    """report.md key numbers of claim 3 (the sweep table, statistics, predictors, concentration)."""
    from ncmargin.report import _fmt, _table

    paths = [Path(out_dir) / "sweep" / "sweep.json"] + sorted((Path(out_dir) / "sweep").glob("*/sweep.json"))
    parts = []
    for p in paths:
        if not p.is_file():
            continue
        try:
            sw = read_sweep_json(p)
        except ValueError as exc:
            parts.append(f"`{p}`: {exc}")
            continue
        st = sw.get("stats") or {}
        rel = p.relative_to(out_dir) if p.is_relative_to(out_dir) else p
        parts.append(f"Sweep `{rel}`: {len(sw['alignments'])} alignments ({sw.get('alignment_mode')}) × "
                     f"{len(sw['seeds'])} seeds, {len(sw['runs'])} runs, {len(sw['excluded'])} excluded; "
                     f"wall time {_fmt((sw.get('timings') or {}).get('total_s'), 3)} s.")
        an, pm = st.get("anova"), st.get("permutation")
        if an and pm:
            parts.append(_table(["statistic", "alignment", "seed"], [
                ["ANOVA F", _fmt(an["F_alignment"]), _fmt(an["F_seed"])],
                ["ANOVA p", _fmt(an["p_alignment"]), _fmt(an["p_seed"])],
                ["η²", _fmt(an["eta2_alignment"]), _fmt(an["eta2_seed"])],
                ["partial η²", _fmt(an["partial_eta2_alignment"]), _fmt(an["partial_eta2_seed"])],
                ["ω²", _fmt(an.get("omega2_alignment")), _fmt(an.get("omega2_seed"))],
                ["permutation p", _fmt(pm["p_value"]), "–"]]))
            tab = st.get("table") or {}
            parts.append(f"Outcome: **{st['verdict'].get('outcome')}**. Table: {tab.get('method')}; dropped seeds "
                         f"{tab.get('dropped_seeds')}, dropped alignments {tab.get('dropped_alignments')}. "
                         f"Rule: {st['verdict']['rule']}.")
            tl = st.get("train_loss_anova")
            if tl:
                parts.append(f"Premise (equal train loss): final train loss {_fmt(tl['loss_min'])} to "
                             f"{_fmt(tl['loss_max'])}; ANOVA of log10 loss: alignment p = {_fmt(tl['p_alignment'])}, "
                             f"η² = {_fmt(tl['eta2_alignment'])}; seed p = {_fmt(tl['p_seed'])}.")
        elif st.get("error"):
            parts.append(f"No statistics: {st['error']}")
        means = st.get("alignment_means") or []
        if means:
            parts.append(_table(["alignment", "n", "mean test acc", "std", "min", "max"],
                                [[m["alignment"], m["n"], _fmt(m["mean_test_acc"]), _fmt(m["std_test_acc"]),
                                  _fmt(m["min_test_acc"]), _fmt(m["max_test_acc"])] for m in means]))
        pc = st.get("predictor_correlations") or {}
        if pc:
            rows = []
            for k, c in pc.items():
                r = c.get("runs") or {}
                rows.append([k, _fmt(c.get("rho")), _fmt(c.get("p")),
                             f"[{_fmt(c.get('ci_low'), 3)}, {_fmt(c.get('ci_high'), 3)}]",
                             _fmt(r.get("rho")), _fmt(r.get("p")),
                             f"[{_fmt(r.get('ci_low'), 3)}, {_fmt(r.get('ci_high'), 3)}]"])
            parts.append(_table(["predictor", "ρ (alignment means)", "p", "95% CI", "ρ (runs)", "p", "95% CI"],
                                rows))
        conc = sw.get("concentration") or {}
        if conc.get("summary"):
            rows = [[k, v["points"], v["held"], v["nontrivial_points"], v["held_nontrivial"]]
                    for k, v in conc["summary"].items()]
            parts.append("Concentration check (bound 2d·exp(−nε²/(2d²ρ²)), held = empirical ≤ bound + 3 s.e.):\n\n"
                         + _table(["features", "grid points", "held", "non-trivial (bound < 1)",
                                   "held (non-trivial)"], rows))
    return "\n\n".join(parts) if parts else "No `sweep/sweep.json` found."


def _register() -> None:
    from ncmargin.empirical.verify import register_claim

    register_claim("3", claim_3, title="non-conservative generalization across ETF alignments", order=50)
    try:
        from ncmargin.report import register_section
    except ImportError:  # pragma: no cover - report module absent
        return
    register_section("3", _report_section)


_register()
