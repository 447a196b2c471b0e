"""The one training pool: train, resume or reuse a set of runs, in parallel processes when asked.

Used by every claim that trains (``ncmargin.pipeline.VerifyContext.ensure_runs`` for the preset runs, the
claim-3 sweep for its alignment × seed runs). Each task is ``(name, config dict or None, run_dir,
resume)``; ``train_fn(config, run_dir, resume=...)`` defaults to ``ncmargin.empirical.train.train``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["TrainTask", "default_train", "train_runs", "train_worker"]

TrainTask = tuple[str, "dict | None", "str | Path", bool]


def default_train(config, run_dir, resume: bool = False):
    from ncmargin.empirical.train import train

    return train(config, run_dir, resume=resume)


def train_worker(train_fn: Callable | None, cfg: dict | None, run_dir: str, resume: bool,
                 threads: int | None) -> str:
    """Train (or resume) one run; a top-level function so that a spawn-context pool can pickle it.
    ``threads``: torch intra-op threads for this process (None: leave torch's default)."""
    from ncmargin.store import thread_limits

    if threads:
        import torch  # noqa: F401 - imported first so that thread_limits sets its pool

    with thread_limits(threads, blas=False):
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
