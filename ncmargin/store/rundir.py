"""The run directory (docs/formats.md): where each file lives, reading the log, checkpoints, onset, status.

    RUN/config.json                  resolved config + provenance          read_meta / read_train_config
    RUN/log.jsonl                    one JSON object per epoch             read_log / append_log / rewrite_log
    RUN/checkpoints/epoch_XXXX.npz   features, labels, classifier          list_checkpoints / checkpoint_path
    RUN/checkpoints/model_XXXX.pt    model weights at that checkpoint      model_path
    RUN/checkpoints/last.pt          resume state                          state_path
    RUN/summary.json                 onset, checkpoints, complete flag     read_summary / run_status
    RUN/analysis.json                per-checkpoint analysis               ncmargin.store.records.Analysis
    RUN/status.json                  the failed mark (training diverged)   read_status / mark_failed

This module is the only one that knows these names. It imports numpy and the standard library only
(features are read through ``ncmargin.io``); torch-side readers (model weights) live in the producers.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ncmargin.io import FeatureSet, atomic_write_json, atomic_write_text, load_features, read_json

__all__ = [
    "ANALYSIS_FILE", "CHECKPOINT_DIR", "CONFIG_FILE", "LOG_FILE", "STATUS_FILE", "STATUS_SCHEMA", "SUMMARY_FILE",
    "Checkpoint", "LogError", "Run", "RunFailedError",
    "append_log", "check_not_failed", "checkpoint_file", "checkpoint_path", "complexity_path", "is_run_dir",
    "list_checkpoints",
    "load_checkpoint", "load_run", "log_path", "mark_failed", "model_path", "onset_epoch", "reached_full_accuracy",
    "read_log", "read_meta", "read_status", "read_summary", "read_train_config", "rewrite_log", "run_status",
    "state_path", "terminal_onset", "write_summary",
]

CONFIG_FILE = "config.json"
LOG_FILE = "log.jsonl"
SUMMARY_FILE = "summary.json"
ANALYSIS_FILE = "analysis.json"
CHECKPOINT_DIR = "checkpoints"
STATUS_FILE = "status.json"
STATUS_SCHEMA = "ncmargin.run_status/1"
_CKPT_RE = re.compile(r"^epoch_(\d+)\.npz$")
_ACC_KEYS = ("train_acc", "test_acc")


class LogError(ValueError):
    """A log.jsonl line that is not one epoch's JSON object; the message names the file and the line."""


class RunFailedError(ValueError):
    """The run directory holds a run marked failed (``RUN/status.json``); it cannot be resumed or reused."""


class DivergedError(ValueError):
    """Training produced a non-finite loss, features or classifier (the trainer marks the run failed)."""


# ------------------------------------------------------------------------------------------- paths

def log_path(run_dir: str | os.PathLike) -> Path:
    """``RUN/log.jsonl`` (``run_dir`` may also be the log file itself)."""
    p = Path(run_dir)
    return p if p.name == LOG_FILE and not p.is_dir() else p / LOG_FILE


def checkpoint_file(run_dir: str | os.PathLike, epoch: int) -> Path:
    """Where the checkpoint of ``epoch`` is written (:func:`checkpoint_path` checks that it exists)."""
    return Path(run_dir) / CHECKPOINT_DIR / f"epoch_{int(epoch):04d}.npz"


def model_path(run_dir: str | os.PathLike, epoch: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"model_{int(epoch):04d}.pt"


def complexity_path(run_dir: str | os.PathLike, epoch: int) -> Path:
    """The whole-network spectral complexity stored by a recorder at ``epoch`` (docs/recorder.md)."""
    return Path(run_dir) / CHECKPOINT_DIR / f"complexity_{int(epoch):04d}.json"


def state_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / "last.pt"


def is_run_dir(path: str | os.PathLike) -> bool:
    """A directory with a log.jsonl (runs the toolkit did not train count too: config.json is optional)."""
    return (Path(path) / LOG_FILE).is_file()


# ------------------------------------------------------------------------------------------- config

def read_meta(run_dir: str | os.PathLike) -> dict:
    """The whole ``RUN/config.json`` (the training config is under ``"config"``); errors name the file."""
    p = Path(run_dir) / CONFIG_FILE
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file, so {Path(run_dir)} is not a run directory; create one "
                                f"with `ncmargin train CONFIG --out {Path(run_dir)}`")
    meta = read_json(p)
    if not isinstance(meta, dict):
        raise ValueError(f"{p}: expected a JSON object, got {type(meta).__name__}; rerun `ncmargin train`")  # noqa: TRY004
    return meta


def read_train_config(run_dir: str | os.PathLike) -> dict:
    """The training config of a run (``config.json["config"]``); {} when the run has no config.json."""
    if not (Path(run_dir) / CONFIG_FILE).is_file():
        return {}
    meta = read_meta(run_dir)
    return dict(meta["config"]) if isinstance(meta.get("config"), dict) else dict(meta)


# ------------------------------------------------------------------------------------------- log

def read_log(run_dir: str | os.PathLike, *, missing_ok: bool = False) -> list[dict]:
    """``RUN/log.jsonl`` as a list of dicts, one per epoch in increasing order (epoch 0 = initialization).

    Strict: a line that is not a JSON object with an integer ``epoch``, an epoch that does not increase,
    or an accuracy outside [0, 1] raises :class:`LogError` naming the file and the line. The one
    exception is a last line without its newline that does not parse: the trace of a write killed
    midway; it is dropped with a warning naming the file and line (the trainer's resume rewrites the log
    to its last state anyway). Blank lines are skipped. A missing file raises FileNotFoundError, or gives
    [] with ``missing_ok``."""
    path = log_path(run_dir)
    if not path.is_file():
        if missing_ok:
            return []
        raise FileNotFoundError(f"{path}: no such file; a run directory has log.jsonl "
                                "(run `ncmargin train CONFIG --out RUN` to create one)")
    text = path.read_text()
    lines = text.split("\n")  # a complete file ends with "\n": the last element is then ""
    rows: list[dict] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if n == len(lines):  # no newline after it: an interrupted append
                warnings.warn(f"{path}:{n}: dropping an unterminated last line (a write was interrupted)",
                              stacklevel=2)
                break
            raise LogError(f"{path}:{n}: not valid JSON ({exc}); the log is corrupt: fix or delete the line, "
                           "or retrain the run") from exc
        _check_row(row, path, n, rows[-1]["epoch"] if rows else None)
        rows.append(row)
    return rows


def _check_row(row: Any, path: Path, n: int, prev: int | None) -> None:
    if not isinstance(row, dict) or "epoch" not in row:
        raise LogError(f"{path}:{n}: expected a JSON object with an 'epoch' key (one line per epoch, "
                       "docs/formats.md)")
    ep = row["epoch"]
    if isinstance(ep, bool) or not isinstance(ep, int) or ep < 0:
        raise LogError(f"{path}:{n}: 'epoch' must be a non-negative integer, got {ep!r}")
    if prev is not None and ep <= prev:
        raise LogError(f"{path}:{n}: epoch {ep} does not follow epoch {prev}; epochs must increase "
                       "(a log appended to by two runs?); retrain or resume into a fresh directory")
    for k in _ACC_KEYS:
        v = row.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0):
            raise LogError(f"{path}:{n}: '{k}' = {v!r} is not a fraction in [0, 1] (percentages: divide by 100)")


def _line(row: Mapping) -> str:
    return json.dumps(dict(row), allow_nan=False) + "\n"


def append_log(run_dir: str | os.PathLike, row: Mapping) -> None:
    """Append one epoch line to ``RUN/log.jsonl`` and fsync it (NaN/inf are not allowed: write None)."""
    with open(log_path(run_dir), "a") as fh:
        fh.write(_line(row))
        fh.flush()
        os.fsync(fh.fileno())


def rewrite_log(run_dir: str | os.PathLike, rows: Sequence[Mapping]) -> None:
    """Replace ``RUN/log.jsonl`` by ``rows`` (atomic)."""
    atomic_write_text(log_path(run_dir), "".join(_line(r) for r in rows))


# ------------------------------------------------------------------------------------------- onset

def reached_full_accuracy(train_acc: Any) -> bool:
    """The terminal-phase test: 100% train accuracy (a fraction, exactly 1)."""
    return isinstance(train_acc, (int, float)) and not isinstance(train_acc, bool) and train_acc >= 1.0


def onset_epoch(rows: Sequence[Mapping]) -> int | None:
    """First epoch whose ``train_acc`` is 100% (the onset of the terminal phase), or None."""
    for r in rows:
        if reached_full_accuracy(r.get("train_acc")):
            return int(r["epoch"])
    return None


def terminal_onset(log_onset: int | None, checkpoint_acc: Mapping[int, float]) -> tuple[int | None, str]:
    """Onset from the log and from the checkpoints' recomputed train accuracy: the earlier of the two
    (the log has every epoch; a run without a log has only its checkpoints). Returns (epoch, source)
    with source ``"log.jsonl"`` or ``"checkpoints"``."""
    first_ckpt = next((ep for ep in sorted(checkpoint_acc) if reached_full_accuracy(checkpoint_acc[ep])), None)
    candidates = [e for e in (log_onset, first_ckpt) if e is not None]
    onset = min(candidates) if candidates else None
    return onset, ("log.jsonl" if log_onset is not None and onset == log_onset else "checkpoints")


# ------------------------------------------------------------------------------------------- checkpoints

class Checkpoint(NamedTuple):
    """One ``RUN/checkpoints/epoch_XXXX.npz`` (unpacks as ``epoch, path``)."""

    epoch: int
    path: Path


def list_checkpoints(run_dir: str | os.PathLike, *, required: bool = False) -> list[Checkpoint]:
    """The run's checkpoint files sorted by epoch; with ``required`` an empty list is an error."""
    ck = Path(run_dir) / CHECKPOINT_DIR
    out = sorted(Checkpoint(int(m.group(1)), p) for p in (ck.iterdir() if ck.is_dir() else ())
                 if (m := _CKPT_RE.match(p.name)) and p.is_file())
    if required and not out:
        raise FileNotFoundError(f"{ck}: no epoch_XXXX.npz checkpoint; is {Path(run_dir)} a run directory "
                                "written by `ncmargin train` (docs/formats.md)? Train it first or resume it "
                                "(`ncmargin train --resume RUN`).")
    return out


def checkpoint_path(run_dir: str | os.PathLike, epoch: int) -> Path:
    p = checkpoint_file(run_dir, epoch)
    if not p.is_file():
        have = [c.epoch for c in list_checkpoints(run_dir)]
        raise FileNotFoundError(f"{p}: no checkpoint at epoch {epoch}; available: {have}")
    return p


def load_checkpoint(run_dir: str | os.PathLike, epoch: int, split: str = "train") -> FeatureSet:
    """Features, labels, classifier and bias of one split at a checkpoint epoch (float64)."""
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}: choose train or test")
    return load_features(checkpoint_path(run_dir, epoch), split=split)


# ------------------------------------------------------------------------------------------- status

def read_summary(run_dir: str | os.PathLike) -> dict:
    """``RUN/summary.json`` ({} when absent)."""
    p = Path(run_dir) / SUMMARY_FILE
    return read_json(p) if p.is_file() else {}


def write_summary(run_dir: str | os.PathLike, *, onset_epoch: int | None, last_epoch: int, epochs: int,
                  complete: bool, resumable: bool = True, source: str | None = None) -> None:
    """``RUN/summary.json``. ``resumable=False`` (recorded runs: no resume state) stores ``state_epoch``
    null; ``source`` (e.g. ``"recorder"``) names what wrote the run."""
    doc = {"onset_epoch": onset_epoch, "last_epoch": last_epoch, "epochs": epochs, "complete": complete,
           "checkpoints": [c.epoch for c in list_checkpoints(run_dir)],
           "state_epoch": last_epoch if resumable else None}
    if source is not None:
        doc["source"] = source
    atomic_write_json(Path(run_dir) / SUMMARY_FILE, doc)


def read_status(run_dir: str | os.PathLike) -> dict | None:
    """``RUN/status.json`` as a dict (``{"schema", "state": "failed", "reason", "epoch", "time"}``), or None
    when absent. A malformed file counts as a failed mark (it is only ever written on failure)."""
    p = Path(run_dir) / STATUS_FILE
    if not p.is_file():
        return None
    try:
        doc = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {"schema": STATUS_SCHEMA, "state": "failed", "reason": f"unreadable {p.name}"}
    return doc if isinstance(doc, dict) else {"schema": STATUS_SCHEMA, "state": "failed",
                                              "reason": f"malformed {p.name}"}


def mark_failed(run_dir: str | os.PathLike, reason: str, epoch: int | None = None) -> Path:
    """Write ``RUN/status.json`` saying the run failed for good (atomic): resuming would repeat the failure."""
    p = Path(run_dir) / STATUS_FILE
    atomic_write_json(p, {"schema": STATUS_SCHEMA, "state": "failed", "reason": reason, "epoch": epoch,
                          "time": datetime.datetime.now(datetime.timezone.utc).isoformat(  # noqa: UP017
                              timespec="seconds")})
    return p


def check_not_failed(run_dir: str | os.PathLike) -> None:
    """Raise :class:`RunFailedError` (naming the reason and the fix) when ``run_dir`` is marked failed."""
    st = read_status(run_dir)
    if st and st.get("state") == "failed":
        at = f" at epoch {st['epoch']}" if st.get("epoch") is not None else ""
        raise RunFailedError(f"{run_dir} holds a run that failed{at} ({st.get('reason')}); it cannot be resumed: "
                             f"delete the directory (rm -r {run_dir}) and train again, or pass another --out")


def run_status(run_dir: str | os.PathLike) -> str:
    """``"failed"`` (status.json marks it: never resumed, :func:`check_not_failed` says why), ``"complete"``
    (summary.json says so), ``"partial"`` (a run dir that can be resumed) or ``"absent"``."""
    p = Path(run_dir)
    st = read_status(p)
    if st and st.get("state") == "failed":
        return "failed"
    if not (p / CONFIG_FILE).is_file():
        return "absent"
    try:
        return "complete" if read_summary(p).get("complete") else "partial"
    except ValueError:  # a malformed summary: the run is resumed, which rewrites it
        return "partial"


# ------------------------------------------------------------------------------------------- Run

@dataclass
class Run:
    """A loaded run directory: ``meta`` (config.json), ``config`` (the training config), ``log``,
    ``checkpoint_epochs``, ``onset_epoch`` (None if 100% train accuracy was never reached), ``summary``."""

    path: Path
    meta: dict
    log: list[dict]
    checkpoint_epochs: list[int]
    onset_epoch: int | None
    summary: dict = field(default_factory=dict)

    @property
    def config(self) -> dict:
        return self.meta["config"]

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    def features(self, epoch: int, split: str = "train") -> FeatureSet:
        return load_checkpoint(self.path, epoch, split)

    def checkpoint_path(self, epoch: int) -> Path:
        return checkpoint_path(self.path, epoch)

    def log_at(self, epoch: int) -> dict:
        for r in self.log:
            if r["epoch"] == epoch:
                return r
        raise KeyError(f"epoch {epoch} not in {log_path(self.path)}")


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read a run directory written by ``ncmargin train`` (config.json required; the log may be absent)."""
    p = Path(run_dir)
    meta = read_meta(p)
    log = read_log(p, missing_ok=True)
    return Run(p, meta, log, [c.epoch for c in list_checkpoints(p)], onset_epoch(log), read_summary(p))
