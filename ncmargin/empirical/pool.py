"""The one training pool: train, resume or reuse a set of runs, in parallel processes when asked.

Used by every claim that trains (``ncmargin.pipeline.VerifyContext.ensure_runs`` for the preset runs, the
claim-3 sweep for its alignment × seed runs). Each task is ``(name, config dict or None, run_dir,
resume)``; ``train_fn(config, run_dir, resume=...)`` defaults to ``ncmargin.empirical.train.train``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["NON_IDENTITY_KEYS", "TrainTask", "config_differences", "default_train", "run_status", "train_runs",
           "train_worker"]

TrainTask = tuple[str, "dict | None", "str | Path", bool]


# config keys that may differ between a stored run and the wanted config without making it another run
NON_IDENTITY_KEYS = frozenset({"device", "quiet", "save_every", "eval_batch_size", "compile", "amp",
                               "channels_last", "data_root", "download", "deterministic", "num_threads"})


def run_status(run_dir) -> str:
    """``"complete"`` (summary.json says so), ``"partial"`` (a run dir that can be resumed) or ``"absent"``."""
    from ncmargin.io import read_json

    p = Path(run_dir)
    if not (p / "config.json").is_file():
        return "absent"
    s = p / "summary.json"
    if s.is_file():
        try:
            if read_json(s).get("complete"):
                return "complete"
        except ValueError:
            pass
    return "partial"


def config_differences(run_dir, want: dict) -> list[str]:
    """The keys of ``want`` (a training config dict) in which the run stored in ``run_dir`` differs,
    leaving out :data:`NON_IDENTITY_KEYS`."""
    from ncmargin.io import read_json

    stored = read_json(Path(run_dir) / "config.json").get("config", {})
    return sorted(k for k, v in want.items() if k not in NON_IDENTITY_KEYS and stored.get(k) != v)


def default_train(config, run_dir, resume: bool = False):
    from ncmargin.empirical.train import train

    return train(config, run_dir, resume=resume)


def train_worker(train_fn: Callable | None, cfg: dict | None, run_dir: str, resume: bool,
                 threads: int | None) -> str:
    """Train (or resume) one run; a top-level function so that a spawn-context pool can pickle it.
    ``threads``: torch intra-op threads for this process (None: leave torch's default)."""
    if threads:
        try:
            import torch

            torch.set_num_threads(int(threads))
        except ImportError:  # pragma: no cover
            pass
    (train_fn or default_train)(cfg, run_dir, resume=resume)
    return run_dir


def train_runs(tasks: Sequence[TrainTask], *, jobs: int = 1, threads: int | None = None,
               train_fn: Callable | None = None, log: Callable[[str], None] | None = None,
               tag: str = "train") -> list[str]:
    """Run every task: one after another with ``jobs == 1`` (in this process, torch threads untouched),
    else in ``jobs`` spawned processes with ``threads`` torch threads each. Logs ``[tag] i/n name done``
    as runs finish; returns the names in completion order. A failure in any run raises."""
    log = log or (lambda m: None)
    tasks = list(tasks)
    done: list[str] = []
    if not tasks:
        return done
    jobs = max(1, min(int(jobs or 1), len(tasks)))
    t0 = time.perf_counter()
    for _, _, rd, _ in tasks:
        Path(rd).parent.mkdir(parents=True, exist_ok=True)

    def finished(name):
        done.append(name)
        log(f"[{tag}] {len(done)}/{len(tasks)} {name} done ({time.perf_counter() - t0:.0f}s)")

    if jobs == 1:
        for name, cfg, rd, resume in tasks:
            train_worker(train_fn, cfg, str(rd), resume, None)
            finished(name)
        return done
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as ex:
        futs = {ex.submit(train_worker, train_fn, cfg, str(rd), resume, threads): name
                for name, cfg, rd, resume in tasks}
        for f in as_completed(futs):
            f.result()
            finished(futs[f])
    return done
