"""Readers for every saved result a figure uses — the ONE place that knows the file formats.

Formats: the run directory (docs/formats.md) and ``RUN/analysis.json``, ``sweep/sweep.json``
(docs/results.md) are read through :mod:`ncmargin.store` (the strict log reader and the typed
``Analysis``/``Sweep`` records: a missing or mistyped key is an error naming the file and the key); the
claim-1a and claim-1b record files written by ``verify`` (``OUT/claim1a/fixed_features.json``,
``OUT/claim1b/ufm.json``) are read here:
- a key a figure cannot do without is *required*; when it is missing the error names the file, the
  record and the key (``ValueError``); a missing file raises ``FileNotFoundError`` naming the path;
- every other key is optional: absent, ``null`` or non-numeric values become NaN in the numeric columns
  and the figure leaves that series out (saying why in its caption or log);
- the ``schema`` string, where present, must have the expected prefix.

Here the stored documents become float64 columns for plotting; no figure reads a file itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ncmargin import store
from ncmargin.store import CLAIM1A_FILE, CLAIM1B_FILE, Inventory, discover

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
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}. {fix}".strip())  # noqa: TRY004
    if key not in obj:
        raise ValueError(f"{where}: missing required key '{key}' (keys present: {sorted(obj)[:20]}). "
                         f"{fix}".strip())
    return obj[key]


def _records(obj: Any, path: Path, key: str, required_fields: Iterable[str], fix: str) -> list[dict]:
    recs = _require(obj, key, str(path), fix)
    if not isinstance(recs, list) or not recs:
        raise ValueError(f"{path}: '{key}' must be a non-empty list of records. {fix}")
    for i, r in enumerate(recs):
        if not isinstance(r, Mapping):
            raise ValueError(f"{path}: {key}[{i}] is not a JSON object. {fix}")  # noqa: TRY004
        for f in required_fields:
            if f not in r:
                raise ValueError(f"{path}: {key}[{i}] is missing required key '{f}' "
                                 f"(keys present: {sorted(r)[:20]}). {fix}")
    return list(recs)


# ---------------------------------------------------------------------------------------------------
# run directories


def read_config(run_dir: str | Path) -> dict:
    """RUN/config.json as a dict; {} when absent (the labels then fall back to the directory name)."""
    return store.read_meta(run_dir) if (Path(run_dir) / store.CONFIG_FILE).is_file() else {}


def read_log(run_dir: str | Path) -> dict[str, np.ndarray]:
    """RUN/log.jsonl (:func:`ncmargin.store.read_log`, strict: errors name the file and line) as float64
    columns, one entry per epoch; every key but ``epoch`` is optional (NaN where absent)."""
    rows = store.read_log(run_dir)
    if not rows:
        raise ValueError(f"{store.log_path(run_dir)}: empty log (no epoch lines); the run has not finished an epoch")
    keys = list(dict.fromkeys(k for r in rows for k, v in r.items() if isinstance(v, (int, float)) or v is None))
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
    """RUN/analysis.json (a run directory or the file) through the :class:`ncmargin.store.Analysis` record."""
    path = store.Analysis.path_of(path)
    rec = store.Analysis.read(path)
    cps = sorted(rec.checkpoints, key=lambda c: as_float(c.epoch))
    return Analysis(path, rec.run_id or path.parent.name, rec.meta, rec.onset_epoch, cps)


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
        return store.onset_epoch([{"epoch": int(e), "train_acc": a}
                                  for e, a in zip(self.epochs, self.series("train_acc"))])


def run_meta(config: Mapping, analysis_meta: Mapping | None = None, fallback_id: str = "") -> dict:
    """What a legend needs, by exact key: from analysis.json's ``meta``, else config.json's training config
    (``config["config"]``, or ``config`` itself when it is a bare training config)."""
    train = config.get("config") if isinstance(config.get("config"), Mapping) else config
    src = [analysis_meta or {}, train]
    meta: dict[str, Any] = {}
    for key in ("dataset", "model", "head", "weight_decay", "seed", "alignment", "run_id", "etf_perm_seed",
                "etf_rotation_seed"):
        for s in src:
            v = s.get(key)
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
    if with_analysis and (run_dir / store.ANALYSIS_FILE).is_file():
        an = read_analysis(run_dir)
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


def _trajectory(name: str, group: Mapping, where: Path, required: Sequence[str], fix: str,
                info: Mapping) -> Records:
    """A record group's ``records`` as float64 columns sorted by ``required[0]`` (nested dicts flattened)."""
    recs = _records(group, where, "records", required, fix)
    flat = [_flatten_record(r) for r in recs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    cols = {k: column(flat, k) for k in keys}
    order = np.argsort(cols[required[0]], kind="stable")
    return Records(name, {k: v[order] for k, v in cols.items()}, dict(info))


@dataclass
class Claim1a:
    path: Path
    experiments: list[Records]


@dataclass
class Claim1b:
    path: Path
    experiments: list[Records]


def _result_path(path: str | Path, rel: Path) -> Path:
    """``path`` itself, ``path/rel`` (a verify output directory) or ``path/rel.name`` (the claim folder)."""
    p = Path(path)
    if p.is_dir():
        return p / rel if (p / rel).is_file() else p / rel.name
    return p


def read_claim1a(path: str | Path) -> Claim1a:
    """Claim-1a records through :class:`ncmargin.store.Claim1a`; per recorded step 'step' and
    'angle_deg' are required for a figure, the other columns optional."""
    path = _result_path(path, CLAIM1A_FILE)
    rec = store.Claim1a.read(path)
    if not rec.experiments:
        raise ValueError(f"{path}: 'experiments' is empty; {rec.FIX}")
    many = len(rec.experiments) > 1
    return Claim1a(path, [_trajectory(e.name, e, Path(f"{path} [experiment {e.name}]") if many else path,
                                      ["step", "angle_deg"], rec.FIX,
                                      {"settings": rec.settings, **{k: v for k, v in e.items() if k != "records"}})
                          for e in rec.experiments])


def read_claim1b(path: str | Path) -> Claim1b:
    """Claim-1b records through :class:`ncmargin.store.Claim1b`; per recorded step 'step' and 'loss' are
    required for a figure, the other columns optional."""
    path = _result_path(path, CLAIM1B_FILE)
    rec = store.Claim1b.read(path)
    return Claim1b(path, [_trajectory(path.stem, rec, path, ["step", "loss"], rec.FIX,
                                      {k: v for k, v in rec.items() if k != "records"})])


def certified_normalized_margin(info: Mapping) -> tuple[float, str]:
    """The optimum of the UFM normalized margin p_min / (½(||W||²+||H||²)) of a claim-1b record, and where
    it came from: ``normalized_margin_optimum``, else 1/``nuclear_norm_objective`` (the UFM-SVM with
    margin ≥ 1 has optimum ½(||W||²+||H||²) = ||Z||_* at p_min = 1, docs/theory.md §3) [our form]."""
    direct = as_float(info.get("normalized_margin_optimum"))
    if np.isfinite(direct):
        return direct, "certified optimum (nuclear-norm program)"
    obj = as_float(info.get("nuclear_norm_objective"))
    if obj > 0:
        return 1.0 / obj, "1 / nuclear-norm optimum"
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
    # concentration check (docs/theory.md §8): {"fresh"|"trained": columns n, eps, empirical, stderr, bound,
    # empirical_fresh, stderr_fresh (float64, NaN where absent)}; info: the *_info and settings entries
    concentration: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    concentration_info: dict = field(default_factory=dict)


def read_sweep(path: str | Path) -> Sweep:
    """sweep/sweep.json (a sweep directory or the file) through the :class:`ncmargin.store.Sweep` record."""
    p = Path(path)
    path = p / store.SWEEP_DIR / store.SWEEP_FILE if p.is_dir() and not (p / store.SWEEP_FILE).is_file() \
        and (p / store.SWEEP_DIR / store.SWEEP_FILE).is_file() else store.Sweep.path_of(p)
    rec = store.Sweep.read(path)
    runs = [SweepRun(r.run_dir, r.alignment, r.seed, r.reached_tpt, as_float(r.final_test_acc),
                     as_float(r.final_train_acc), as_float(r.final_train_loss),
                     {str(k): as_float(v) for k, v in r.predictors.items()}) for r in rec.runs]
    ids = list(dict.fromkeys([str(a["id"]) for a in rec.alignments if "id" in a] + [r.alignment for r in runs]))
    conc, conc_info = _concentration(rec.concentration, path)
    return Sweep(path, runs, ids, rec.stats, list(rec.excluded), conc, conc_info)


CONCENTRATION_KEYS = ("n", "eps", "empirical", "stderr", "bound", "empirical_fresh", "stderr_fresh")


def _concentration(c: Any, path: Path) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """sweep.json ``concentration``: optional; when present each of its ``fresh``/``trained`` lists needs
    'n', 'eps' and 'empirical' per point (error names the file, the list and the point)."""
    if c is None:
        return {}, {}
    if not isinstance(c, Mapping):
        raise ValueError(f"{path}: 'concentration' must be an object with 'fresh'/'trained' lists; "  # noqa: TRY004
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
