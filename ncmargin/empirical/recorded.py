"""Runs recorded elsewhere, for ``ncmargin verify --runs`` (labels, the OUT/runs mirror, claim 3's table) and
the whole-network spectral complexity of a recorded run (Recorder / ``ncmargin extract``; docs/recorder.md).

A recorded run's ``config.json["config"]`` is the user's metadata, not a TrainConfig, so the analysis
cannot rebuild the network from it. :func:`recorded_complexity` uses, in this order, the complexity the
recorder stored (``checkpoints/complexity_XXXX.json``, ``Recorder(spectral=True)`` / ``extract
--spectral``), or the network rebuilt from the recorded model factory (``config.json["model"]["factory"]``,
kwargs ``config["factory_kwargs"]``) with the saved weights; else an ``{"error": ...}`` saying why the
spectral bound is unavailable (never a number from the wrong network).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ncmargin.io import read_json
from ncmargin.store import complexity_path, model_path

__all__ = ["NO_SPECTRAL", "etf_sweep_plan", "is_recorded", "mirror_run", "recorded_complexity", "run_labels"]

NO_SPECTRAL = ("recorded run without spectral data: record with Recorder(spectral=True) or extract --spectral, "
               "or give Recorder(model_factory='pkg.module:factory') so the network can be rebuilt")


def is_recorded(meta: dict) -> bool:
    """A run written by the Recorder or ``ncmargin extract`` (``config.json`` has the ``recorder`` key)."""
    return "recorder" in meta


def recorded_complexity(run_dir: str | os.PathLike, epoch: int, meta: dict) -> dict:
    """The spectral complexity of recorded run ``run_dir`` at ``epoch``, or ``{"error": reason}``."""
    run_dir = Path(run_dir)
    stored = complexity_path(run_dir, epoch)
    if stored.is_file():
        d = dict(read_json(stored))
        d.pop("epoch", None)
        return d
    factory = (meta.get("model") or {}).get("factory")
    if not factory:
        return {"error": NO_SPECTRAL}
    if not model_path(run_dir, epoch).is_file():
        return {"error": f"recorded run: no weights saved at epoch {epoch} (Recorder(save_model=False)); "
                         "the spectral bound needs them"}
    data = meta.get("data") or {}
    try:
        import torch

        from .complexity import spectral_from_input_stats
        from .extract import load_factory
        from .runs import load_model_state

        kwargs = (meta.get("config") or {}).get("factory_kwargs") or {}
        torch.manual_seed(0)
        net = load_factory(factory)(**kwargs)
        net.load_state_dict(load_model_state(run_dir, epoch))
        net.eval()
        return spectral_from_input_stats(net, input_norm_F=float(data.get("train_input_norm_F") or np.nan),
                                         n=data.get("n_train"), input_shape=data.get("input_shape"))
    except (ValueError, ImportError, RuntimeError, TypeError, FileNotFoundError) as exc:
        return {"error": f"spectral complexity of the recorded network ({factory}) failed at epoch {epoch}: "
                         f"{type(exc).__name__}: {exc}"}


# ------------------------------------------------------------------ verify --runs (ncmargin.pipeline)

def run_labels(run_dirs: list[Path]) -> list[str]:
    """Unique labels (safe run names): the directory name, with its parent's name (then a counter) where
    names repeat."""
    import re

    def safe(name: str) -> str:
        s = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:120]
        return s if s[:1].isalnum() else f"run{s}"[:120]

    run_dirs = [p.resolve() for p in run_dirs]
    names = [safe(p.name) for p in run_dirs]
    out = [safe(f"{p.parent.name}-{p.name}") if names.count(n) > 1 else n for p, n in zip(run_dirs, names)]
    seen: dict[str, int] = {}
    for i, lab in enumerate(out):
        seen[lab] = seen.get(lab, 0) + 1
        if seen[lab] > 1:
            out[i] = f"{lab}-{seen[lab]}"
    return out


def mirror_run(src: Path, dst: Path, analysis: dict) -> None:
    """OUT/runs/<label>: the run's config/log/summary and its analysis (no checkpoints), for the figures and
    the report, which read OUT/runs/<run>; ``source.json`` names the original directory."""
    import shutil

    from ncmargin.io import atomic_path, atomic_write_json
    from ncmargin.store import CHECKPOINT_DIR, CONFIG_FILE, LOG_FILE, SUMMARY_FILE, Analysis

    if dst.resolve() == src.resolve():
        return
    if dst.exists() and ((dst / CHECKPOINT_DIR).exists() or not (dst / "source.json").is_file()):
        raise ValueError(f"{dst} holds a run that verify --runs did not write; use another --out directory")
    dst.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_FILE, LOG_FILE, SUMMARY_FILE):
        if (src / name).is_file():
            with atomic_path(dst / name) as tmp:
                shutil.copyfile(src / name, tmp)
    Analysis(analysis).write(dst)
    atomic_write_json(dst / "source.json", {"run_dir": str(src.resolve())})


def etf_sweep_plan(labels: list[str], paths: list[Path], out_dir: Path) -> tuple[dict | None, str]:
    """Claim 3 on given runs: a sweep plan (``claims.claim3.collect_sweep``) when every run has a fixed
    simplex-ETF head (recorded ``model.head == "FixedETFHead"``), the heads are one frame up to a row
    permutation and scale (last checkpoints' classifiers, 1e-6 relative), and alignment and seed labels
    give a complete table of at least 2 x 2; else ``(None, reason)``."""
    from ncmargin.store import list_checkpoints, load_checkpoint, read_meta, read_train_config

    runs, frame = [], None
    for lab, rd in zip(labels, paths):
        meta = read_meta(rd)
        model, cfg = meta.get("model") or {}, read_train_config(rd)
        if model.get("head") != "FixedETFHead":
            return None, f"run {lab} has no fixed ETF head (config.json model.head = {model.get('head')!r})"
        etf = model.get("etf") or {}
        align = cfg.get("alignment")
        if align is None and etf.get("perm") is not None:
            align = f"perm {','.join(map(str, etf['perm']))}/rot {etf.get('rotation_seed')}"
        seed = cfg.get("seed", meta.get("seed"))
        if align is None or seed is None:
            return None, (f"run {lab} has no alignment/seed labels (record metadata={{'alignment': ..., "
                          "'seed': ...}} or the package's FixedETFHead(perm=...))")
        M = load_checkpoint(rd, list_checkpoints(rd, required=True)[-1].epoch).classifier
        M = M / np.linalg.norm(M)
        M = M[np.lexsort(M.T[::-1])]  # rows in a canonical order: equal frames up to a row permutation
        if frame is None:
            frame = M
        elif M.shape != frame.shape or not np.allclose(M, frame, rtol=0, atol=1e-6):
            return None, f"run {lab}'s fixed head is not the same simplex-ETF frame as run {labels[0]}'s"
        runs.append({"run_dir": str(rd), "name": lab, "alignment": str(align), "seed": int(seed),
                     "config": cfg})  # the wanted config is the stored one: no preset to compare with
    aligns = list(dict.fromkeys(r["alignment"] for r in runs))
    seeds = sorted({r["seed"] for r in runs})
    cells = {(r["alignment"], r["seed"]) for r in runs}
    if len(aligns) < 2 or len(seeds) < 2 or len(cells) < len(aligns) * len(seeds):
        return None, (f"the runs give an incomplete alignment x seed table ({len(aligns)} alignments, "
                      f"{len(seeds)} seeds, {len(cells)} cells); claim 3 needs a complete table of at least 2 x 2")
    from ncmargin.store import SWEEP_DIR

    return {"runs": runs, "alignments": [{"id": a} for a in aligns], "seeds": seeds,
            "out_dir": str(out_dir / SWEEP_DIR), "num_classes": int(frame.shape[0]), "preset": "runs"}, ""
