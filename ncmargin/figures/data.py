"""Readers for every saved result a figure uses — the ONE place that knows the file formats.

Formats: the run directory (docs/formats.md: ``config.json``, ``log.jsonl``), ``RUN/analysis.json``,
``verdicts.json`` and ``sweep/sweep.json`` (docs/results.md), the claim-1a and claim-1b record files
written by ``verify`` (``OUT/claim1a/fixed_features.json``, ``OUT/claim1b/ufm.json``).

Parsing is tolerant but strict:
- a key a figure cannot do without is *required*; when it is missing the error names the file, the
  record and the key (``ValueError``); a missing file raises ``FileNotFoundError`` naming the path;
- every other key is optional: absent, ``null`` or non-numeric values become NaN in the numeric columns
  and the figure leaves that series out (saying why in its caption or log);
- a ``schema`` string, where present, must have the expected prefix (a file of another kind is
  rejected with the file named); where the writer did not put one, the file is accepted.

Changing a format therefore means changing this module only.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ncmargin.io import read_json

log = logging.getLogger("ncmargin.figures")

__all__ = [
    "Analysis",
    "Claim1a",
    "Claim1b",
    "Inventory",
    "Records",
    "RunData",
    "Sweep",
    "SweepRun",
    "as_float",
    "column",
    "discover",
    "read_analysis",
    "read_claim1a",
    "read_claim1b",
    "read_config",
    "read_log",
    "read_run",
    "read_sweep",
    "run_labels",
    "run_meta",
]

# Where things live (docs/results.md, "Layout of a verify output directory").
LOG_FILE = "log.jsonl"
CONFIG_FILE = "config.json"
ANALYSIS_FILE = "analysis.json"
SWEEP_FILE = "sweep.json"
CLAIM1A_FILE = Path("claim1a") / "fixed_features.json"
CLAIM1B_FILE = Path("claim1b") / "ufm.json"

# Keys of one log.jsonl line (docs/formats.md). Only "epoch" is required.
LOG_KEYS = ("epoch", "loss", "train_acc", "test_acc", "test_loss", "p_min", "normalized_margin", "lr",
            "nc1_topk", "nc2_equinorm_means", "nc2_equinorm_classifiers", "nc2_equiangular_means",
            "nc2_equiangular_classifiers", "nc2_maxangle_means", "nc3_self_duality", "nc4_ncc_mismatch",
            "seconds")


# ---------------------------------------------------------------------------------------------------
# small helpers


def as_float(v: Any) -> float:
    """JSON value -> float; None / bool / non-numbers become NaN (results files write NaN as null)."""
    if v is None or isinstance(v, bool):
        return math.nan
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return math.nan
    return math.nan


def _get(d: Any, path: Sequence[str]) -> Any:
    for k in path:
        if not isinstance(d, Mapping) or k not in d:
            return None
        d = d[k]
    return d


def column(records: Sequence[Mapping], *path: str) -> np.ndarray:
    """float64 array of ``record[path[0]][path[1]]...`` over records; absent/null -> NaN."""
    return np.array([as_float(_get(r, path)) for r in records], dtype=np.float64)


def _require(obj: Any, key: str, where: str, fix: str = "") -> Any:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}. {fix}".strip())
    if key not in obj:
        raise ValueError(f"{where}: missing required key '{key}' (keys present: {sorted(obj)[:20]}). "
                         f"{fix}".strip())
    return obj[key]


def _check_schema(obj: Mapping, path: Path, prefix: str) -> None:
    schema = obj.get("schema") if isinstance(obj, Mapping) else None
    if schema is not None and not str(schema).startswith(prefix):
        raise ValueError(f"{path}: schema is '{schema}', expected '{prefix}/…'; "
                         f"this is not the file a figure of this kind reads")


def _open_doc(path: str | Path, name: str | Path, schema_prefix: str, *, missing: str, fix: str,
              require_object: bool = True) -> tuple[Path, Any]:
    """Resolve ``path`` (a file, or a directory holding ``name``, or ``name``'s last part), check that it
    exists (``missing``: what writes it; ``{dir}`` is replaced by the file's folder), read it and check its
    schema prefix. ``require_object``: the document must be a JSON object, else a bare list is allowed."""
    path = Path(path)
    if path.is_dir():
        name = Path(name)
        path = path / name if (path / name).is_file() or name.parent == Path(".") else path / name.name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; {missing.format(dir=path.parent)}")
    obj = read_json(path)
    if require_object and not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object; {fix}")
    if isinstance(obj, Mapping):
        _check_schema(obj, path, schema_prefix)
    return path, obj


def _records(obj: Any, path: Path, key: str, required_fields: Iterable[str], fix: str) -> list[dict]:
    recs = _require(obj, key, str(path), fix)
    if not isinstance(recs, list) or not recs:
        raise ValueError(f"{path}: '{key}' must be a non-empty list of records. {fix}")
    for i, r in enumerate(recs):
        if not isinstance(r, Mapping):
            raise ValueError(f"{path}: {key}[{i}] is not a JSON object. {fix}")
        for f in required_fields:
            if f not in r:
                raise ValueError(f"{path}: {key}[{i}] is missing required key '{f}' "
                                 f"(keys present: {sorted(r)[:20]}). {fix}")
    return list(recs)


def _find_key(d: Any, names: Sequence[str], depth: int = 3) -> Any:
    """First value of any of ``names`` in a nested dict (breadth first, top level wins)."""
    level = [d]
    for _ in range(depth + 1):
        nxt = []
        for obj in level:
            if not isinstance(obj, Mapping):
                continue
            for n in names:
                if n in obj and obj[n] is not None and not isinstance(obj[n], Mapping):
                    return obj[n]
            nxt.extend(v for v in obj.values() if isinstance(v, Mapping))
        level = nxt
    return None


# ---------------------------------------------------------------------------------------------------
# run directories


def read_config(run_dir: str | Path) -> dict:
    """RUN/config.json as a dict; {} when absent (the labels then fall back to the directory name)."""
    p = Path(run_dir) / CONFIG_FILE
    if not p.is_file():
        return {}
    cfg = read_json(p)
    if not isinstance(cfg, dict):
        raise ValueError(f"{p}: expected a JSON object, got {type(cfg).__name__}; rerun `ncmargin train`")
    return cfg


def read_log(run_dir: str | Path) -> dict[str, np.ndarray]:
    """RUN/log.jsonl as float64 columns (one entry per epoch line; sorted by epoch, last line wins).

    ``epoch`` is required on every line; every other key is optional (NaN where absent). Blank lines
    are skipped; a truncated *last* line (an interrupted write) is ignored with a warning, a malformed
    line elsewhere is an error naming the file and line number.
    """
    p = Path(run_dir) / LOG_FILE if Path(run_dir).is_dir() else Path(run_dir)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file; a run directory has log.jsonl "
                                f"(run `ncmargin train CONFIG --out RUN` to create one)")
    lines = p.read_text().splitlines()
    rows: list[dict] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if n == len(lines):
                log.warning("%s: ignoring truncated last line %d (%s)", p, n, exc)
                continue
            raise ValueError(f"{p}: line {n} is not valid JSON ({exc}); the log is corrupt — "
                             f"rerun or resume the training run") from exc
        if not isinstance(row, dict) or "epoch" not in row:
            raise ValueError(f"{p}: line {n} is missing required key 'epoch'; "
                             f"each log line is one epoch's JSON object with an 'epoch' key")
        rows.append(row)
    if not rows:
        raise ValueError(f"{p}: empty log (no epoch lines); the run has not finished an epoch")
    by_epoch = {int(as_float(r["epoch"])): r for r in rows}
    rows = [by_epoch[e] for e in sorted(by_epoch)]
    keys = list(dict.fromkeys(k for r in rows for k, v in r.items()
                              if isinstance(v, (int, float)) or v is None))
    return {k: column(rows, k) for k in keys}


@dataclass
class Analysis:
    """RUN/analysis.json (schema ncmargin.analysis/1)."""

    path: Path
    run_id: str
    meta: dict
    onset_epoch: int | None
    checkpoints: list[dict]

    def col(self, *path: str) -> np.ndarray:
        return column(self.checkpoints, *path)

    @property
    def epochs(self) -> np.ndarray:
        return self.col("epoch")


def read_analysis(path: str | Path) -> Analysis:
    """RUN/analysis.json: required top-level 'checkpoints' (each with 'epoch'); the rest optional."""
    fix = "rerun `ncmargin analyze RUN` to rewrite it"
    path, obj = _open_doc(path, ANALYSIS_FILE, "ncmargin.analysis", missing="run `ncmargin analyze {dir}` first",
                          fix=fix)
    cps = _records(obj, path, "checkpoints", ["epoch"], fix)
    cps = sorted(cps, key=lambda c: as_float(c["epoch"]))
    onset = obj.get("onset_epoch")
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    return Analysis(path, str(obj.get("run_id") or path.parent.name), meta,
                    None if onset is None else int(onset), cps)


@dataclass
class RunData:
    """Everything figures use from one run directory."""

    run_dir: Path
    run_id: str
    meta: dict                      # dataset, model, weight_decay, seed, alignment, ... (may be partial)
    log: dict[str, np.ndarray]      # per-epoch columns from log.jsonl
    analysis: Analysis | None = None
    label: str = ""                 # legend text, filled by run_labels()

    @property
    def epochs(self) -> np.ndarray:
        return self.log["epoch"]

    def series(self, key: str) -> np.ndarray:
        """A log column, all-NaN if the log has no such key."""
        return self.log.get(key, np.full(len(self.epochs), np.nan))

    def has(self, key: str) -> bool:
        return key in self.log and bool(np.isfinite(self.log[key]).any())

    @property
    def onset_epoch(self) -> int | None:
        """First epoch with 100% train accuracy: from analysis.json if present, else from the log."""
        if self.analysis is not None and self.analysis.onset_epoch is not None:
            return self.analysis.onset_epoch
        acc = self.series("train_acc")
        if not np.isfinite(acc).any():
            return None
        full = 100.0 if np.nanmax(acc) > 1.0 + 1e-9 else 1.0  # accept fractions or percent
        hit = np.nonzero(acc >= full - 1e-12)[0]
        return int(self.epochs[hit[0]]) if hit.size else None


def run_meta(config: Mapping, analysis_meta: Mapping | None = None, fallback_id: str = "") -> dict:
    """What a legend needs, found by name anywhere in config.json (nested sections allowed)."""
    meta: dict[str, Any] = {}
    src = [analysis_meta or {}, config]
    names = {
        "dataset": ("dataset", "data", "dataset_name"),
        "model": ("model", "arch", "architecture"),
        "head": ("head",),
        "weight_decay": ("weight_decay", "wd"),
        "seed": ("seed",),
        "alignment": ("alignment", "alignment_id", "perm_id"),
        "run_id": ("run_id",),
        "etf_perm_seed": ("etf_perm_seed",),
        "etf_rotation_seed": ("etf_rotation_seed",),
    }
    for key, alias in names.items():
        for s in src:
            v = _find_key(s, alias)
            if v is not None and not isinstance(v, (list, dict)):
                meta[key] = v
                break
    meta.setdefault("run_id", fallback_id)
    if "alignment" not in meta and str(meta.get("head", "")).startswith("etf") and (
            meta.get("etf_perm_seed") is not None or meta.get("etf_rotation_seed") is not None):
        meta["alignment"] = f"perm {meta.get('etf_perm_seed')}/rot {meta.get('etf_rotation_seed')}"
    return meta


def read_run(run_dir: str | Path, with_analysis: bool = True) -> RunData:
    """A run directory: log.jsonl (required), config.json and analysis.json (optional)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory")
    lg = read_log(run_dir)
    cfg = read_config(run_dir)
    an = None
    if with_analysis and (run_dir / ANALYSIS_FILE).is_file():
        an = read_analysis(run_dir / ANALYSIS_FILE)
    meta = run_meta(cfg, an.meta if an else None, run_dir.name)
    return RunData(run_dir, str(meta.get("run_id") or run_dir.name), meta, lg, an)


def _fmt_wd(v: Any) -> str:
    f = as_float(v)
    if math.isnan(f):
        return str(v)
    return "0" if f == 0 else f"{f:g}"


def run_labels(runs: Sequence[Any]) -> list[str]:
    """Legend labels that name runs by meaning: dataset and weight decay always (when known), model,
    alignment and seed when they differ between the runs shown; the run id when nothing else separates
    them. Also stored on each run's ``label`` attribute when it has one."""
    metas = [r.meta if hasattr(r, "meta") else dict(r) for r in runs]

    def varies(k):
        vals = {str(m.get(k)) for m in metas if m.get(k) is not None}
        return len(vals) > 1

    labels = []
    for m in metas:
        parts = []
        if m.get("dataset") is not None:
            parts.append(str(m["dataset"]))
        if m.get("model") is not None and varies("model"):
            parts.append(str(m["model"]))
        if m.get("weight_decay") is not None:
            parts.append(f"wd={_fmt_wd(m['weight_decay'])}")
        if m.get("alignment") is not None and (varies("alignment") or len(metas) == 1):
            parts.append(f"align {m['alignment']}")
        if m.get("seed") is not None and varies("seed"):
            parts.append(f"seed {m['seed']}")
        labels.append(", ".join(parts) if parts else str(m.get("run_id", "run")))
    if len(set(labels)) < len(labels):  # still ambiguous: append the run id
        labels = [f"{lab} ({m.get('run_id', i)})" for i, (lab, m) in enumerate(zip(labels, metas))]
    for r, lab in zip(runs, labels):
        if hasattr(r, "label"):
            r.label = lab
    return labels


# ---------------------------------------------------------------------------------------------------
# claim 1a / 1b record files


@dataclass
class Records:
    """One recorded trajectory: columns by key, plus the experiment's top-level info."""

    name: str
    columns: dict[str, np.ndarray]
    info: dict = field(default_factory=dict)

    def get(self, *names: str) -> np.ndarray | None:
        """The first column present (with at least one finite value) among ``names``."""
        for n in names:
            c = self.columns.get(n)
            if c is not None and np.isfinite(c).any():
                return c
        return None


def _flatten_record(r: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in r.items():
        if isinstance(v, Mapping):
            out.update(_flatten_record(v, f"{prefix}{k}."))
        elif not isinstance(v, (list, str)):
            out[f"{prefix}{k}"] = v
    return out


def _trajectories(obj: Any, path: Path, required: Sequence[str], fix: str) -> list[Records]:
    """Accept {records: [...]} (one experiment) or {experiments: [{name, records}, ...] | {name: {...}}}."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a JSON object; {fix}")
    if "records" in obj:
        groups = [(str(obj.get("name") or obj.get("experiment") or path.stem), obj)]
    elif "experiments" in obj:
        ex = obj["experiments"]
        if isinstance(ex, Mapping):
            groups = [(str(k), v) for k, v in ex.items()]
        elif isinstance(ex, list):
            groups = [(str(e.get("name") or e.get("id") or i) if isinstance(e, Mapping) else str(i), e)
                      for i, e in enumerate(ex)]
        else:
            raise ValueError(f"{path}: 'experiments' must be a list or an object; {fix}")
        if not groups:
            raise ValueError(f"{path}: 'experiments' is empty; {fix}")
    else:
        raise ValueError(f"{path}: missing required key 'records' (or 'experiments' with records); {fix}")
    out = []
    for name, g in groups:
        where = path if len(groups) == 1 else Path(f"{path} [experiment {name}]")
        recs = _records(g, where, "records", required, fix)
        flat = [_flatten_record(r) for r in recs]
        keys = list(dict.fromkeys(k for f in flat for k in f))
        cols = {k: column(flat, k) for k in keys}
        order = np.argsort(cols[required[0]], kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
        info = {k: v for k, v in g.items() if k != "records"}
        if g is not obj:  # top-level info (e.g. a shared certificate) is visible to each experiment
            info = {**{k: v for k, v in obj.items() if k not in ("experiments", "records")}, **info}
        out.append(Records(name, cols, info))
    return out


@dataclass
class Claim1a:
    path: Path
    experiments: list[Records]


@dataclass
class Claim1b:
    path: Path
    experiments: list[Records]


def read_claim1a(path: str | Path) -> Claim1a:
    """Claim-1a records (fixed-feature GD): per recorded step 'step' and 'angle_deg' required;
    'margin_ratio', 'loss', 'p_min', 'normalized_margin' optional; top-level fit info optional."""
    path, obj = _open_doc(path, CLAIM1A_FILE, "ncmargin.claim1a", missing="`ncmargin verify --claims 1a` writes it",
                          fix="", require_object=False)
    return Claim1a(path, _trajectories(obj, path, ["step", "angle_deg"],
                                       "rerun `ncmargin verify --claims 1a` to rewrite it"))


def read_claim1b(path: str | Path) -> Claim1b:
    """Claim-1b records (UFM GD): per recorded step 'step' and 'loss' required; 'p_min', the normalized
    margin, sandwich bounds and NC metrics optional; the certified optimum at the top level (optional)."""
    path, obj = _open_doc(path, CLAIM1B_FILE, "ncmargin.claim1b", missing="`ncmargin verify --claims 1b` writes it",
                          fix="", require_object=False)
    return Claim1b(path, _trajectories(obj, path, ["step", "loss"],
                                       "rerun `ncmargin verify --claims 1b` to rewrite it"))


def certified_normalized_margin(info: Mapping) -> tuple[float, str]:
    """The optimum of the UFM normalized margin p_min / (½(||W||²+||H||²)), and where it came from.

    Direct keys first; else 1/objective of the nuclear-norm program (UFM-SVM with margin ≥ 1 has
    optimum ½(||W||²+||H||²) = ||Z||_* at p_min = 1, THEORY.md §3(b)) [our form]."""
    direct = _find_key(info, ("normalized_margin_optimum", "normalized_margin_opt", "certified_normalized_margin",
                              "optimal_normalized_margin", "certified_optimum"))
    if direct is not None and np.isfinite(as_float(direct)):
        return as_float(direct), "certified optimum (nuclear-norm program)"
    obj = _find_key(info, ("nuclear_norm_objective", "objective", "optimal_value", "nuclear_norm"))
    if obj is not None and as_float(obj) > 0:
        return 1.0 / as_float(obj), "1 / nuclear-norm optimum"
    return math.nan, ""


# ---------------------------------------------------------------------------------------------------
# sweeps


@dataclass
class SweepRun:
    run_dir: str
    alignment: str
    seed: int | None
    reached_tpt: bool
    final_test_acc: float
    final_train_acc: float
    final_train_loss: float
    predictors: dict[str, float]


@dataclass
class Sweep:
    path: Path
    runs: list[SweepRun]
    alignment_ids: list[str]
    stats: dict
    excluded: list
    # concentration check (THEORY.md §5): {"fresh"|"trained": columns n, eps, empirical, stderr, bound,
    # empirical_fresh, stderr_fresh (float64, NaN where absent)}; info: the *_info and settings entries
    concentration: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    concentration_info: dict = field(default_factory=dict)


def read_sweep(path: str | Path) -> Sweep:
    """sweep/sweep.json (schema ncmargin.sweep/1): 'runs' with 'alignment' and 'final_test_acc'
    required per run; seed, reached_tpt (default true), predictors and stats optional."""
    fix = "rerun `ncmargin sweep` (or `ncmargin verify --claims 3`) to rewrite it"
    path, obj = _open_doc(path, SWEEP_FILE, "ncmargin.sweep", missing="`ncmargin sweep` writes it", fix=fix)
    recs = _records(obj, path, "runs", ["alignment", "final_test_acc"], fix)
    runs = []
    for r in recs:
        preds = r.get("predictors") or {}
        if not isinstance(preds, Mapping):
            raise ValueError(f"{path}: 'predictors' of run {r.get('run_dir')} must be an object; {fix}")
        seed = r.get("seed")
        runs.append(SweepRun(str(r.get("run_dir", "")), str(r["alignment"]),
                             None if seed is None else int(seed), bool(r.get("reached_tpt", True)),
                             as_float(r["final_test_acc"]), as_float(r.get("final_train_acc")),
                             as_float(r.get("final_train_loss")),
                             {str(k): as_float(v) for k, v in preds.items()}))
    ids = []
    for a in obj.get("alignments") or []:
        if isinstance(a, Mapping) and "id" in a:
            ids.append(str(a["id"]))
    for r in runs:
        if r.alignment not in ids:
            ids.append(r.alignment)
    stats = obj.get("stats") if isinstance(obj.get("stats"), dict) else {}
    conc, conc_info = _concentration(obj.get("concentration"), path)
    return Sweep(path, runs, ids, stats, list(obj.get("excluded") or []), conc, conc_info)


CONCENTRATION_KEYS = ("n", "eps", "empirical", "stderr", "bound", "empirical_fresh", "stderr_fresh")


def _concentration(c: Any, path: Path) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """sweep.json ``concentration``: optional; when present each of its ``fresh``/``trained`` lists needs
    'n', 'eps' and 'empirical' per point (error names the file, the list and the point)."""
    if c is None:
        return {}, {}
    if not isinstance(c, Mapping):
        raise ValueError(f"{path}: 'concentration' must be an object with 'fresh'/'trained' lists; "
                         f"rerun `ncmargin sweep`")
    out = {}
    for part in ("fresh", "trained"):
        pts = c.get(part)
        if not pts:
            continue
        recs = _records({part: pts}, Path(f"{path} [concentration]"), part, ["n", "eps", "empirical"],
                        "rerun `ncmargin sweep`")
        out[part] = {k: column(recs, k) for k in CONCENTRATION_KEYS}
    info = {k: v for k, v in c.items() if k not in ("fresh", "trained")}
    return out, info


# ---------------------------------------------------------------------------------------------------
# discovery


@dataclass
class Inventory:
    """What a set of paths holds, for make_figures."""

    runs: list[Path] = field(default_factory=list)         # run dirs for per-run figures
    claim1a: list[Path] = field(default_factory=list)
    claim1b: list[Path] = field(default_factory=list)
    sweeps: list[Path] = field(default_factory=list)        # sweep.json files
    notes: list[str] = field(default_factory=list)

    def add(self, lst: list[Path], p: Path) -> None:
        p = p.resolve()
        if p not in lst:
            lst.append(p)


def _is_run(d: Path) -> bool:
    return (d / LOG_FILE).is_file()


def discover(paths: Sequence[str | Path]) -> Inventory:
    """Classify each path: a run dir (has log.jsonl), a sweep dir (has sweep.json), a verify output dir
    (runs/, claim1a/, claim1b/, sweep/), a directory of run dirs, or one of the result files itself."""
    inv = Inventory()
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or directory; give run directories, a sweep "
                                    f"directory or a `verify` output directory")
        if p.is_file():
            name = p.name
            if name == SWEEP_FILE:
                inv.add(inv.sweeps, p)
            elif name == ANALYSIS_FILE or name == LOG_FILE:
                inv.add(inv.runs, p.parent)
            elif name == CLAIM1A_FILE.name or p.parent.name == "claim1a":
                inv.add(inv.claim1a, p)
            elif name == CLAIM1B_FILE.name or p.parent.name == "claim1b":
                inv.add(inv.claim1b, p)
            else:
                raise ValueError(f"{p}: not a results file figures know (expected a run directory, "
                                 f"{SWEEP_FILE}, {ANALYSIS_FILE}, {CLAIM1A_FILE} or {CLAIM1B_FILE})")
            continue
        found = False
        if _is_run(p):
            inv.add(inv.runs, p)
            found = True
        if (p / SWEEP_FILE).is_file():
            inv.add(inv.sweeps, p / SWEEP_FILE)
            found = True
        if (p / "runs").is_dir():
            for d in sorted((p / "runs").iterdir()):
                if d.is_dir() and _is_run(d):
                    inv.add(inv.runs, d)
                    found = True
        for sub, lst in ((CLAIM1A_FILE, inv.claim1a), (CLAIM1B_FILE, inv.claim1b)):
            if (p / sub).is_file():
                inv.add(lst, p / sub)
                found = True
        if (p / "sweep" / SWEEP_FILE).is_file():
            inv.add(inv.sweeps, p / "sweep" / SWEEP_FILE)
            found = True
        if not found:  # a plain directory of run dirs
            subs = [d for d in sorted(p.iterdir()) if d.is_dir() and _is_run(d)]
            for d in subs:
                inv.add(inv.runs, d)
            found = bool(subs)
        if not found:
            inv.notes.append(f"{p}: holds no run directory (log.jsonl), sweep.json, claim1a/ or claim1b/ "
                             f"results; nothing to plot from it")
    return inv
