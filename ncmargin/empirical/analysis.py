"""Per-checkpoint analysis of a training run: ``RUN/analysis.json`` (docs/results.md).

For every checkpoint ``RUN/checkpoints/epoch_XXXX.npz`` (docs/formats.md) this computes, in float64:

- accuracies, errors and the gap ``test_error - train_error`` recomputed from the saved features and
  classifier (logits ``H W^T + b``), the train CE loss, ``p_min`` and the fixed-feature normalized margin
  ``p_min / (||W||_F max_i ||h_i||)`` (docs/theory.md §2);
- claim 1c (docs/theory.md §4): the hard-margin multi-class SVM W* on the train features (only when the
  features are separable: p_min > 0 or the solver finds a solution; otherwise ``svm_error`` says why),
  the angle between the trained classifier and W*, and the margin ratio
  ``(p_min(W_t, H_t)/||W_t||_F) / (1/||W*||_F)``. With a bias the comparison is made on the augmented
  classifier ``[W | b]`` against the SVM on the augmented features ``[H | 1]`` (docs/theory.md §3: the bias
  is then regularized) **[our form]**;
- the neural-collapse metrics (docs/theory.md §6);
- claim 2 (docs/theory.md §5): the margin bound's terms at ``gamma = p_min`` and at the best gamma of a grid,
  with the last-layer complexity (Mohri et al. 2018, Cor. 9.4) and with the spectral complexity of the
  whole network (Bartlett, Foster & Telgarsky 2017) when the checkpoint's model state was saved, plus the
  "frozen" variant of the paper's Corollary 4.5 reading (complexity of the class fixed at the onset of
  the terminal phase; see docs/theory.md §9).

Analysis never retrains. Reuse: checkpoints already present in ``analysis.json`` (same checkpoint file
size and mtime, same analysis settings) are kept unless ``force=True``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ncmargin.io import load_features
from ncmargin.store import (
    Analysis,
    AnalysisOptions,
    CheckpointAnalysis,
    FrozenComplexity,
    list_checkpoints,
    model_path,
    onset_epoch,
    read_log,
    read_meta,
    read_train_config,
    terminal_onset,
)

__all__ = [
    "ANALYSIS_VERSION",
    "SCHEMA",
    "analyze_checkpoint",
    "analyze_run",
    "list_checkpoints",
    "load_analysis",
    "terminal_rows",
]

SCHEMA = Analysis.SCHEMA
# Bumped when the content of a checkpoint entry changes; entries of another version are recomputed.
ANALYSIS_VERSION = 1


# ------------------------------------------------------------------------------------------ run dir

def _meta(cfg: dict) -> dict:
    keys = ("dataset", "model", "depth", "width", "head", "head_bias", "weight_decay", "seed", "epochs", "lr",
            "optimizer", "batch_size", "n_per_class", "etf_perm_seed", "etf_rotation_seed")
    return {k: cfg.get(k) for k in keys if k in cfg}


def _signature(path: Path) -> list:
    st = path.stat()
    return [int(st.st_size), int(st.st_mtime_ns)]


# ------------------------------------------------------------------------------------- model state

class _SpectralContext:
    """Rebuilds the network of a run at a checkpoint (``checkpoints/model_XXXX.pt``, docs/formats.md) and
    its train inputs, for the whole-network spectral complexity (Bartlett et al. 2017)."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self._data = None
        self._error: str | None = None

    def complexity(self, epoch: int) -> dict:
        meta = read_meta(self.run_dir)
        if "recorder" in meta:  # recorded / extracted run (docs/recorder.md): not rebuilt from a TrainConfig
            from ncmargin.empirical.recorded import recorded_complexity

            return recorded_complexity(self.run_dir, epoch, meta)
        state = model_path(self.run_dir, epoch)
        if not state.is_file():
            return {"error": f"model state for epoch {epoch} not saved ({state} missing): the whole-network "
                             "(spectral) bound needs the weights; retrain the run with a current ncmargin"}
        if self._error is not None:
            return {"error": self._error}
        try:
            import torch

            from ncmargin.empirical.complexity import network_spectral_complexity
            from ncmargin.empirical.config import load_config
            from ncmargin.empirical.data import load_dataset
            from ncmargin.empirical.models import build_model
            from ncmargin.empirical.runs import load_model_state
        except ImportError as exc:
            self._error = f"spectral complexity unavailable ({exc})"
            return {"error": self._error}
        try:
            cfg = load_config(meta["config"], {"device": "cpu", "quiet": True})
            if self._data is None:
                self._data = load_dataset(cfg)
            data = self._data
            torch.manual_seed(0)
            model = build_model(cfg, data.input_shape, data.num_classes)
            model.load_state_dict(load_model_state(self.run_dir, epoch))
            model.eval()
            if torch.cuda.is_available():  # conv power iterations (ResNet-18) run on the weights' device
                try:
                    return dict(network_spectral_complexity(model.to("cuda"), data.x_train))
                except RuntimeError:  # e.g. out of GPU memory: fall back to the CPU
                    model = model.to("cpu")
            return dict(network_spectral_complexity(model, data.x_train))
        except (ValueError, FileNotFoundError, RuntimeError, KeyError) as exc:
            return {"error": f"spectral complexity failed at epoch {epoch}: {type(exc).__name__}: {exc}"}


# --------------------------------------------------------------------------------------- one checkpoint

def _acc(H, y, W, b) -> float:
    Z = H @ W.T
    if b is not None:
        Z = Z + b
    return float(np.mean(np.argmax(Z, axis=1) == y))


def _svm_compare(H, y, W, b, tol: float) -> tuple[dict | None, str | None]:
    """Hard-margin SVM on the train features (with a bias: constant feature 1 appended, bias regularized,
    docs/theory.md §3) and the claim-1c comparison of docs/theory.md §4 (angle, margin ratio)."""
    from ncmargin.solvers import multiclass_svm
    from ncmargin.theory.compare import svm_comparison

    t0 = time.perf_counter()
    try:
        sol = multiclass_svm(H, y, C=None, bias=b is not None, tol=tol, K=W.shape[0])
    except ValueError as exc:  # NotSeparableError (a ValueError): not linearly separable
        return None, f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    cmp = svm_comparison(H, y, W, sol.W, b, sol.b)
    out = {
        "status": str(sol.status),
        "objective": float(sol.objective),
        "svm_margin": float(cmp["svm_margin"]),
        "angle_deg": float(cmp["angle_deg"]),
        "margin_ratio": float(cmp["margin_ratio"]),
        "duality_gap": _f(sol.duality_gap),
        "max_violation": _f(sol.max_violation),
        "n_support": int(sol.support.size),
        "seconds": float(seconds),
        "bias": b is not None,
    }
    return out, None


def _f(v):
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _bound_terms(pm: np.ndarray, K: int, rad: float, Gamma: float, *, delta: float,
                 gamma_pmin: float) -> dict:
    """Bound of docs/theory.md §5 ([our form], ncmargin.theory.bounds) at gamma = p_min and at the best gamma of
    the default grid, for one Rademacher bound ``rad`` and margin range ``Gamma``."""
    from ncmargin.theory.bounds import best_gamma_bound, margin_bound

    out: dict[str, Any] = {"rademacher": float(rad), "Gamma": float(Gamma)}
    if 0 < gamma_pmin <= Gamma:
        out["at_pmin"] = margin_bound(pm, gamma_pmin, K=K, rademacher=rad, Gamma=Gamma, delta=delta)
    else:
        out["at_pmin"] = None
        out["at_pmin_error"] = ("p_min <= 0 (a train sample is misclassified): the bound at gamma = p_min is "
                                "undefined" if gamma_pmin <= 0 else "p_min > Gamma")
    best = best_gamma_bound(pm, K=K, rademacher=rad, Gamma=Gamma, delta=delta)
    best.pop("grid", None)
    best.pop("grid_total", None)
    out["best"] = best
    return out


def _augmented(H, W, b):
    """``[H | 1]`` and ``[W | b]`` with a bias (the bias as the weight of a constant feature), else H, W."""
    if b is None:
        return H, W
    return np.hstack([H, np.ones((H.shape[0], 1))]), np.hstack([W, b[:, None]])


def analyze_checkpoint(path: str | os.PathLike, *, epoch: int | None = None, svm_tol: float = 1e-8,
                       svm: bool = True, delta: float = 0.05,
                       spectral: Callable[[int], dict] | None = None, frozen: dict | None = None) -> dict:
    """The analysis entry of one checkpoint file (docs/results.md, ``checkpoints[i]``).

    ``spectral(epoch)`` returns the whole-network complexity (``{"rademacher", ...}`` or ``{"error"}``);
    ``frozen`` = ``{"epoch", "rademacher"}`` of the onset checkpoint for the paper's fixed-class reading.
    """
    from ncmargin.theory import ce_loss, margins, nc_metrics, normalized_margin
    from ncmargin.theory.bounds import margin_range, rademacher_last_layer

    path = Path(path)
    tr = load_features(path, split="train")
    te = load_features(path, split="test")
    if tr.classifier is None:
        raise ValueError(f"{path}: no 'classifier' array; a run checkpoint must store the trained classifier "
                         "(docs/formats.md); re-extract the checkpoint")
    H, y, W, b = tr.features, tr.labels, tr.classifier, tr.bias
    K, N = W.shape[0], H.shape[0]
    pm = margins(H, y, W, b)
    p_min_value = float(pm.min())
    train_acc = _acc(H, y, W, b)
    test_acc = _acc(te.features, te.labels, W, b)
    Ha, Wa = _augmented(H, W, b)
    row: dict[str, Any] = {
        "epoch": int(epoch) if epoch is not None else None,
        "train_acc": train_acc, "test_acc": test_acc,
        "train_error": 1.0 - train_acc, "test_error": 1.0 - test_acc,
        "gap": (1.0 - test_acc) - (1.0 - train_acc),
        "train_loss": float(ce_loss(H, y, W, b)),
        "test_loss": float(ce_loss(te.features, te.labels, W, b)),
        "p_min": p_min_value,
        "normalized_margin": float(normalized_margin(H, y, W, b)),
        "weight_norm": float(np.linalg.norm(Wa)),
        "feature_norm_max": float(np.linalg.norm(Ha, axis=1).max()),
        "num_train": int(N), "num_test": int(te.features.shape[0]), "num_classes": int(K),
    }
    # claim 1c (docs/theory.md §4)
    row["svm"], row["svm_error"] = None, None
    if svm:
        row["svm"], row["svm_error"] = _svm_compare(H, y, W, b, svm_tol)
    else:
        row["svm_error"] = "skipped: not a selected SVM checkpoint (analysis svm_epochs)"
    try:
        row["nc"] = nc_metrics(H, y, W, b)
    except ValueError as exc:
        row["nc"] = {"error": str(exc)}
    # claim 2 (docs/theory.md §5): Gamma = 2 r Lambda of the (augmented) last layer bounds every margin
    Gamma = margin_range(Ha, Wa)
    bound: dict[str, Any] = {"delta": delta}
    bound["last_layer"] = _bound_terms(pm, K, rademacher_last_layer(Ha, Wa), Gamma, delta=delta,
                                       gamma_pmin=p_min_value)
    if spectral is not None and epoch is not None:
        sc = spectral(int(epoch))
        if "error" in sc:
            bound["spectral"] = {"error": sc["error"]}
        else:
            bound["spectral"] = _bound_terms(pm, K, float(sc["rademacher"]), Gamma, delta=delta,
                                             gamma_pmin=p_min_value)
            bound["spectral"]["complexity"] = {k: v for k, v in sc.items() if k != "rademacher"}
    else:
        bound["spectral"] = {"error": "not computed (analysis run with spectral=False)"}
    # the paper's Cor. 4.5 reading: the class (hence R_N) fixed at the onset checkpoint, gamma = p_min(t);
    # Gamma grows with the weights, so it is the current range (a log-log term only).
    if frozen is not None and frozen.get("rademacher") is not None:
        bound["frozen"] = _bound_terms(pm, K, float(frozen["rademacher"]), Gamma, delta=delta,
                                       gamma_pmin=p_min_value)
        bound["frozen"]["frozen_at_epoch"] = frozen.get("epoch")
    row["bound"] = bound
    return row


# ------------------------------------------------------------------------------------------- run

def load_analysis(run_dir: str | os.PathLike) -> Analysis:
    """Read ``RUN/analysis.json`` (or that file itself) through its record (errors name the file and key)."""
    return Analysis.read(run_dir)


_DEFAULT = AnalysisOptions()  # the defaults, declared once (the preset section 'analysis')


def analyze_run(run_dir: str | os.PathLike, *, svm_tol: float = _DEFAULT.svm_tol, force: bool = False,
                svm_epochs: str | list[int] = _DEFAULT.svm_epochs, spectral: bool = _DEFAULT.spectral,
                delta: float = _DEFAULT.delta, quiet: bool = True,
                log: Callable[[str], None] | None = None) -> Analysis:
    """Analyse every checkpoint of ``run_dir`` and write ``RUN/analysis.json`` (atomic, through the
    :class:`ncmargin.store.Analysis` record, a dict); return the record.

    ``svm_epochs``: ``"terminal"`` (default: the SVM is solved at the checkpoints at or after the onset
    of 100% train accuracy, where claim 1c is evaluated), ``"all"`` (every checkpoint; where the solver
    finds the features not separable its reason goes to ``svm_error``), or an explicit list of epochs. Checkpoints already analysed with the same settings and an unchanged file
    are reused unless ``force``. Never retrains.
    """
    run_dir = Path(run_dir)
    if not (isinstance(svm_tol, (int, float)) and math.isfinite(svm_tol) and svm_tol > 0):
        raise ValueError(f"svm_tol={svm_tol!r}: give a finite tolerance > 0 (e.g. 1e-8)")
    ckpts = list_checkpoints(run_dir, required=True)
    cfg = read_train_config(run_dir)
    settings = AnalysisOptions(svm_tol=svm_tol, svm_epochs=svm_epochs, spectral=spectral,
                               delta=delta).record(ANALYSIS_VERSION)
    previous: dict[int, CheckpointAnalysis] = {}
    ap = Analysis.path_of(run_dir)
    if ap.is_file() and not force:
        try:
            old = load_analysis(run_dir)
            if old.get("settings") == settings:
                previous = {int(r["epoch"]): r for r in old.get("checkpoints", [])}
        except ValueError:
            previous = {}
    say = log or (lambda s: None)

    # onset: the earlier of the log's (every epoch) and the first checkpoint with 100% train accuracy
    # recomputed from the saved features (ncmargin.store.terminal_onset)
    # a checkpoint that cannot be read costs only itself (issue 12): it is listed in skipped_checkpoints with
    # the error naming the file, and the run is analysed on the others; with none readable, the error stands
    train_acc: dict[int, float] = {}
    skipped: dict[str, str] = {}
    for ep, path in ckpts:
        try:
            tr = load_features(path, split="train")
            if tr.classifier is None:
                raise ValueError(f"{path}: no 'classifier' array; a run checkpoint must store the trained "
                                 "classifier (docs/formats.md)")
        except ValueError as exc:
            if len(ckpts) == 1:
                raise
            skipped[str(ep)] = str(exc)
            say(f"  {run_dir.name} epoch {ep}: skipped, {exc}")
            continue
        train_acc[ep] = _acc(tr.features, tr.labels, tr.classifier, tr.bias)
    if skipped and not train_acc:
        raise ValueError(f"{run_dir}: no checkpoint could be read; first error: {next(iter(skipped.values()))}")
    all_epochs = [ep for ep, _ in ckpts]
    ckpts = [(ep, path) for ep, path in ckpts if str(ep) not in skipped]
    onset, onset_source = terminal_onset(onset_epoch(read_log(run_dir, missing_ok=True)), train_acc)

    if svm_epochs == "all":
        svm_set = {ep for ep, _ in ckpts}
    elif svm_epochs == "terminal":
        svm_set = {ep for ep, _ in ckpts if onset is not None and ep >= onset}
    elif isinstance(svm_epochs, str):
        raise ValueError(f"svm_epochs={svm_epochs!r} is not valid; use 'terminal', 'all' or a list of epochs")
    else:
        svm_set = {int(e) for e in svm_epochs}
        missing = sorted(svm_set - set(all_epochs))
        if missing:
            raise ValueError(f"{run_dir}: svm_epochs {missing} are not checkpoint epochs of this run; its "
                             f"checkpoints: {all_epochs}")

    # the paper's fixed-class reading: last-layer Rademacher term of the first terminal-phase checkpoint
    frozen = None
    ep0 = min((ep for ep, _ in ckpts if onset is not None and ep >= onset), default=None)
    if ep0 is not None:
        from ncmargin.theory.bounds import rademacher_last_layer

        tr = load_features(dict(ckpts)[ep0], split="train")
        frozen = FrozenComplexity(epoch=ep0, rademacher=float(rademacher_last_layer(
            *_augmented(tr.features, tr.classifier, tr.bias))))

    spec = _SpectralContext(run_dir) if spectral else None
    rows = []
    t_start = time.perf_counter()
    reused = 0
    it = ckpts
    if not quiet:
        try:
            from tqdm import tqdm

            it = tqdm(ckpts, desc=f"analyze {run_dir.name}", leave=False)
        except ImportError:  # pragma: no cover
            pass
    for ep, path in it:
        sig = _signature(path)
        old = previous.get(ep)
        if old is not None and old.get("file_signature") == sig and (
                (frozen or {}).get("epoch") == old.get("bound", {}).get("frozen", {}).get("frozen_at_epoch")):
            row = old
            reused += 1
        else:
            t0 = time.perf_counter()
            row = analyze_checkpoint(path, epoch=ep, svm_tol=svm_tol, svm=ep in svm_set, delta=delta,
                                     spectral=spec.complexity if spec else None, frozen=frozen)
            row["file_signature"] = sig
            row["seconds"] = time.perf_counter() - t0
            say(f"  {run_dir.name} epoch {ep}: p_min={row['p_min']:.4g} "
                f"angle={(row['svm'] or {}).get('angle_deg', float('nan')):.3g}deg ({row['seconds']:.1f}s)")
        row["terminal"] = onset is not None and ep >= onset
        rows.append(row)
    out = Analysis(run_dir=str(run_dir), run_id=run_dir.name, meta=_meta(cfg), onset_epoch=onset,
                   onset_source=onset_source, settings=settings, frozen_complexity=frozen,
                   checkpoints=[CheckpointAnalysis(r) for r in rows], skipped_checkpoints=skipped,
                   reused_checkpoints=reused,
                   seconds=time.perf_counter() - t_start)
    out.write(ap)
    return out


def terminal_rows(analysis: dict) -> list[dict]:
    """The analysis rows of the terminal phase (epoch >= onset), sorted by epoch (an :class:`Analysis`
    or its JSON document)."""
    rows = [r for r in analysis.get("checkpoints", []) if r.get("terminal")]
    return sorted(rows, key=lambda r: r["epoch"])


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)
