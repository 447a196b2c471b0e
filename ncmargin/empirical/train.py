"""Trainer: cross-entropy training into the terminal phase, with checkpointed features (docs/formats.md).

``train(config, run_dir, resume=False) -> run_dir`` writes a self-describing run directory:

    RUN/config.json                  resolved config + provenance (versions, git commit, device, data info)
    RUN/log.jsonl                    one line per epoch (epoch 0 = initialization), metrics in float64
    RUN/checkpoints/epoch_XXXX.npz   train/test features, labels, classifier (feature file: docs/formats.md)
    RUN/checkpoints/model_XXXX.pt    model weights at that checkpoint (for weight-based complexities)
    RUN/checkpoints/last.pt          resume state (model, optimizer, epoch, onset)
    RUN/summary.json                 onset epoch, checkpoint list, last epoch, complete flag

Every metric in the log is recomputed in float64 numpy from the features extracted in eval mode and the
head (``ncmargin.theory``): the loss with a stable formula that stays accurate at ~1e-300, so a log line at
the deep terminal phase is meaningful; ``saturated_f32`` counts samples whose naive float32 CE
(``F.cross_entropy``) is exactly 0. The terminal phase starts at ``onset_epoch``, the first epoch with 100%
train accuracy.

CPU runs are exactly resumable: batch order is drawn from a generator seeded by (seed, epoch), the lr is a
function of the epoch, and the resume state holds the model and optimizer state. CUDA path (bf16 autocast
forward, float32+ loss, channels_last, optional torch.compile, DDP under torchrun with rank 0 writing) is
written to the same contract but has not been run on a GPU in this project's CI.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ncmargin.io import atomic_path, atomic_save_npz, atomic_write_json
from ncmargin.runlock import RunLock
from ncmargin.store import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    RESUMABLE_KEYS,
    STATUS_FILE,
    DivergedError,
    append_log,
    check_not_failed,
    checkpoint_file,
    clean_temp_files,
    git_commit,
    identity_diff,
    log_path,
    log_spaced,
    mark_failed,
    model_path,
    reached_full_accuracy,
    read_log,
    read_meta,
    read_train_config,
    rewrite_log,
    state_path,
    thread_limits,
    versions,
    write_summary,
)

from .config import TrainConfig, load_config
from .data import load_dataset
from .evaluation import EvalSplit, dist_info, evaluate_split, gather_shards
from .losses import stable_cross_entropy
from .models import build_model, head_arrays
from .resume_state import load_resume_state, save_resume_state

__all__ = [
    "LOG_KEYS",
    "RESUMABLE_KEYS",
    "batch_order",
    "checkpoint_epochs",
    "epoch_metrics",
    "extract_features",
    "lr_at",
    "train",
    "train_epoch",
]

# keys of log.jsonl, in order (docs/formats.md)
LOG_KEYS = ("epoch", "loss", "loss_f32", "saturated_f32", "train_acc", "test_acc", "test_loss", "p_min",
            "normalized_margin", "nc1_topk", "nc2_equinorm_means", "nc2_equiangular_means",
            "nc3_self_duality", "nc4_ncc_mismatch", "lr", "batch_loss", "terminal_phase", "seconds",
            "eval_seconds")
# RESUMABLE_KEYS (ncmargin.store): the config keys a resume call may change (nothing else may)

_UTC = datetime.timezone.utc  # noqa: UP017 (datetime.UTC needs Python 3.11)
_NC_KEYS = ("nc1_topk", "nc2_equinorm_means", "nc2_equiangular_means", "nc3_self_duality", "nc4_ncc_mismatch")


# --------------------------------------------------------------------------------------------- schedules

def checkpoint_epochs(epochs: int, num: int) -> list[int]:
    """Epoch 0, ``num`` log-spaced epochs in [1, epochs] (rounded, deduplicated) and ``epochs`` itself
    (ncmargin.store.log_spaced). The onset of the terminal phase is added at run time."""
    return log_spaced(epochs, num)


def lr_at(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate used during (1-based) ``epoch``: constant; step = ``lr * gamma^#{m in milestones :
    m < epoch}`` (PyTorch MultiStepLR stepped once per epoch); cosine = ``lr * (1 + cos(pi (epoch-1) /
    epochs)) / 2`` (Loshchilov & Hutter 2017, per epoch, no restarts)."""
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** sum(1 for m in cfg.milestone_list() if m < epoch)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / cfg.epochs))


# --------------------------------------------------------------------------------------------- metrics

@torch.no_grad()
def extract_features(model, x: torch.Tensor, batch_size: int, channels_last: bool = False) -> np.ndarray:
    """Penultimate features of ``x`` in eval mode, float32, as a CPU numpy array (N x d)."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, x.shape[0], batch_size):
        xb = x[i:i + batch_size]
        if channels_last and xb.ndim == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        out.append(model.features(xb).float().cpu())
    model.train(was_training)
    return torch.cat(out).numpy()


def _logits64(H: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    Z = H.astype(np.float64) @ W.T
    if b is not None:
        Z += b
    return Z


def epoch_metrics(H_tr, y_tr, H_te, y_te, W, b) -> dict:
    """Per-epoch metrics from features (float32 or float64) and head (float64): see docs/formats.md.

    Accuracy: argmax of the float64 logits ``H @ W.T + b`` (the same numbers a reader recomputes from the
    checkpoint file). Loss/test_loss: ``ncmargin.theory.ce_loss`` (float64, stable). loss_f32 and
    saturated_f32: naive ``F.cross_entropy`` on float32 logits, and how many samples it rounds to 0.
    """
    from ncmargin import theory

    if not (np.all(np.isfinite(H_tr)) and np.all(np.isfinite(W))):
        raise DivergedError("training diverged: non-finite features or classifier; lower lr (or use "
                         "weight_decay / a smaller init) and start a new run")
    y_tr64 = np.asarray(y_tr, dtype=np.int64)
    y_te64 = np.asarray(y_te, dtype=np.int64)
    out: dict = {}
    Z = _logits64(H_tr, W, b)
    out["loss"] = theory.ce_loss(H_tr.astype(np.float64), y_tr64, W, b)
    z32 = torch.from_numpy(np.asarray(H_tr, dtype=np.float32)) @ torch.from_numpy(W.astype(np.float32)).T
    if b is not None:
        z32 = z32 + torch.from_numpy(b.astype(np.float32))
    per32 = F.cross_entropy(z32, torch.from_numpy(y_tr64), reduction="none")
    out["loss_f32"] = float(per32.mean())
    out["saturated_f32"] = int((per32 == 0).sum())
    out["train_acc"] = float(np.mean(Z.argmax(1) == y_tr64))
    Zt = _logits64(H_te, W, b)
    out["test_acc"] = float(np.mean(Zt.argmax(1) == y_te64))
    out["test_loss"] = theory.ce_loss(H_te.astype(np.float64), y_te64, W, b)
    out["p_min"] = theory.p_min(H_tr.astype(np.float64), y_tr64, W, b)
    out["normalized_margin"] = theory.normalized_margin(H_tr.astype(np.float64), y_tr64, W, b)
    nc = theory.nc_metrics(H_tr.astype(np.float64), y_tr64, W, b)
    out.update({k: nc.get(k) for k in _NC_KEYS})
    return out


# --------------------------------------------------------------------------------------------- helpers

def _resolve_device(cfg: TrainConfig, local_rank: int) -> torch.device:
    dev = cfg.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={cfg.device} but CUDA is not available here; use --set device=cpu")
        if dev == "cuda":
            dev = f"cuda:{local_rank}"
    return torch.device(dev)


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# --------------------------------------------------------------------------------------------- train

def batch_order(N: int, seed: int, epoch: int) -> torch.Tensor:
    """Permutation of 0..N-1 for ``epoch``, from a CPU generator seeded by (seed, epoch) only, so a resumed
    run sees the same batches as an uninterrupted one."""
    return torch.randperm(N, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def train_epoch(fwd, opt, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, seed: int, epoch: int,
                amp: bool = False, channels_last: bool = False, loss_dtype=torch.float32, rank: int = 0,
                world: int = 1) -> float:
    """One epoch of minibatch training on device-resident tensors (no DataLoader, no workers).

    Batches are consecutive slices of :func:`batch_order`; the last one may be smaller. Under DDP
    (``world > 1``) every rank takes the same global batch and keeps its share ``idx[rank::world]``; a last
    batch with fewer samples than ranks is skipped. The forward runs under bf16 autocast when ``amp``
    (CUDA); the loss is :func:`stable_cross_entropy` in ``loss_dtype`` (float32 or float64). Returns the
    sample-weighted mean of the minibatch losses (what the optimizer saw)."""
    N = x.shape[0]
    perm = batch_order(N, seed, epoch).to(x.device)
    fwd.train()
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    count = 0
    for i in range(0, N, batch_size):
        idx = perm[i:i + batch_size]
        if world > 1:
            if idx.numel() < world:
                continue
            idx = idx[rank::world]
        xb, yb = x[idx], y[idx]
        if channels_last and xb.ndim == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        if amp:
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                logits = fwd(xb)
        else:
            logits = fwd(xb)
        loss = stable_cross_entropy(logits.to(loss_dtype), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach().double() * yb.shape[0]
        count += yb.shape[0]
    return float(total) / max(count, 1)


def train(config=None, run_dir: str | os.PathLike = "runs/run", resume: bool = False, *,
          overrides: dict | list | None = None, stop_after: int | None = None) -> Path:
    """Train per ``config`` (TrainConfig, preset name, JSON path or dict; ``overrides`` key=value on top)
    into ``run_dir`` and return its path. ``resume=True`` continues the run in ``run_dir`` from its last
    complete state (``config`` may then be None; given, it must match the stored one except for
    RESUMABLE_KEYS). ``stop_after=k`` stops after epoch k without saving extra state (simulates a kill;
    for tests). The writing process holds ``run_dir``'s lock (:mod:`ncmargin.runlock`) throughout: a second
    writer gets a LockHeldError naming the holder."""
    run_dir = Path(run_dir)
    if resume:
        read_meta(run_dir)  # FileNotFoundError: not a run directory to resume
    else:
        load_config(config, overrides)  # a bad config fails before anything is created
    writer = int(os.environ.get("RANK", "0")) == 0
    with RunLock(run_dir, purpose="ncmargin train") if writer else contextlib.nullcontext():
        return _train_locked(config, run_dir, resume, overrides, stop_after)


def _train_locked(config, run_dir: Path, resume: bool, overrides, stop_after) -> Path:
    state = None
    check_not_failed(run_dir)  # a failed run (RUN/status.json) is never resumed nor overwritten
    if resume:
        if not state_path(run_dir).is_file():
            raise FileNotFoundError(f"{state_path(run_dir)}: no resume state (the run stopped before its first "
                                    "checkpoint); delete the run directory and start again")
        stored = load_config(read_train_config(run_dir))
        if config is None and not overrides:
            cfg = stored
        else:
            cfg = load_config(stored if config is None else config, overrides)
            diff = identity_diff(stored.to_dict(), cfg.to_dict(), allowed=RESUMABLE_KEYS)
            if diff:
                raise ValueError(f"--resume: config differs from the stored run in {diff}; only "
                                 f"{', '.join(sorted(RESUMABLE_KEYS))} may change (start a new run otherwise)")
        read_log(run_dir)  # a corrupt log line is an error here, before anything is rewritten
        state = load_resume_state(state_path(run_dir))  # weights_only=True: never unpickles objects (resume_state.py)
        removed = clean_temp_files(run_dir)  # half-written temp files of a kill (we hold the lock)
        if removed:
            print(f"[train] {run_dir}: removed {len(removed)} temp file(s) left by an interrupted write",
                  file=sys.stderr)
    else:
        cfg = load_config(config, overrides)
        if log_path(run_dir).exists() or (run_dir / CONFIG_FILE).exists():
            raise ValueError(f"{run_dir} already holds a run; resume it with --resume {run_dir}, or pass "
                             "another --out directory")

    # process-wide settings changed for the run (threads, deterministic algorithms) are restored afterwards
    det = torch.are_deterministic_algorithms_enabled()
    try:
        with thread_limits(cfg.num_threads):
            return _train(cfg, run_dir, state, stop_after)
    except DivergedError as exc:
        if not (run_dir / CONFIG_FILE).is_file():
            raise
        try:
            ep = [r["epoch"] for r in read_log(run_dir, missing_ok=True)]
        except ValueError:  # a corrupt log must not hide the divergence
            ep = []
        at = ep[-1] + 1 if ep else 0
        if int(os.environ.get("RANK", "0")) == 0:
            mark_failed(run_dir, str(exc), at)
        raise DivergedError(f"{run_dir}: {exc} (at epoch {at}); the run is marked failed in "
                            f"{run_dir}/{STATUS_FILE}: delete it (rm -r {run_dir}) before reusing that --out") from None
    finally:
        torch.use_deterministic_algorithms(det)


def _train(cfg: TrainConfig, run_dir: Path, state, stop_after) -> Path:
    ckpt_dir = run_dir / CHECKPOINT_DIR
    # --- distributed / device ---------------------------------------------------------------------
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _resolve_device(cfg, local_rank)
    ddp = world > 1
    if ddp:
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    main = rank == 0
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    cuda = device.type == "cuda"
    amp = cfg.amp and cuda
    chl = cfg.channels_last and cuda

    # --- data, model, optimizer ---------------------------------------------------------------------
    data = load_dataset(cfg).to(device)
    K = data.num_classes
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data.input_shape, K).to(device)
    if chl and len(data.input_shape) == 3:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                              weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    fwd = model
    if ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP
        fwd = DDP(model, device_ids=[device.index] if cuda else None)
    if cfg.compile:
        fwd = torch.compile(fwd)
    loss_dtype = torch.float64 if cfg.loss_dtype == "float64" else torch.float32

    sched = checkpoint_epochs(cfg.epochs, cfg.num_checkpoints)
    start_epoch, onset = 0, None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, onset = int(state["epoch"]), state["onset_epoch"]
        if main:  # drop log lines and checkpoints newer than the state (they will be recomputed)
            rewrite_log(run_dir, [r for r in read_log(run_dir) if r["epoch"] <= start_epoch])
            for p in ckpt_dir.glob("*_*.*"):
                stem = p.stem.split("_")[-1]
                if stem.isdigit() and int(stem) > start_epoch:
                    p.unlink()
            meta = read_meta(run_dir)
            changed = {k: [meta["config"].get(k), v] for k, v in cfg.to_dict().items()
                       if meta["config"].get(k) != v}
            meta["config"] = cfg.to_dict()
            meta["checkpoint_epochs"] = sched
            meta.setdefault("resumes", []).append({
                "from_epoch": start_epoch, "changed": changed,
                "time": datetime.datetime.now(_UTC).isoformat(timespec="seconds")})
            atomic_write_json(run_dir / CONFIG_FILE, meta)
    elif main:
        run_dir.mkdir(parents=True, exist_ok=True)
        ckpt_dir.mkdir(exist_ok=True)
        n_params = sum(p.numel() for p in model.parameters())
        meta = {
            "config": cfg.to_dict(), "seed": cfg.seed, "created": datetime.datetime.now(
                _UTC).isoformat(timespec="seconds"),
            "versions": versions(), "git_commit": git_commit(),
            "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if cuda else ""),
            "world_size": world, "num_threads": torch.get_num_threads(),
            "data": data.info, "num_classes": K,
            "model": {"class": type(model).__name__, "feature_dim": model.feature_dim,
                      "head": type(model.head).__name__, "num_parameters": n_params},
            "checkpoint_epochs": sched, "log_keys": list(LOG_KEYS), "format": "docs/formats.md",
        }
        atomic_write_json(run_dir / CONFIG_FILE, meta)

    # the Recorder's evaluation path (ncmargin.empirical.evaluation): every rank evaluates its shard of
    # the data (head input by a forward hook = model.features), gathered to rank 0 in dataset order
    dist_mod = dist_info()[0]
    splits = [EvalSplit(nm, xy, batch_size=cfg.eval_batch_size, subsample=0, seed=0, rank=rank, world=world,
                        unpack=None) for nm, xy in (("train", (data.x_train, data.y_train)),
                                                    ("test", (data.x_test, data.y_test)))]

    def evaluate(epoch: int, lr: float, batch_loss, seconds: float):
        """Collective: every rank calls it; rank 0 gets ``(log line, arrays)``, the others None."""
        t0 = time.perf_counter()
        H_tr, H_te = (gather_shards((r.H, r.y), dist_mod, main=main, world=world) for r in
                      (evaluate_split(model, model.head, sp, device=device, channels_last=chl) for sp in splits))
        if not main:
            return None, None
        H_tr, H_te = H_tr[0], H_te[0]
        W, b = head_arrays(model)
        m = epoch_metrics(H_tr, data.y_train.cpu().numpy(), H_te, data.y_test.cpu().numpy(), W, b)
        rec = {"epoch": epoch, **m, "lr": lr, "batch_loss": batch_loss, "terminal_phase": False,
               "seconds": seconds, "eval_seconds": time.perf_counter() - t0}
        return {k: _clean(rec[k]) for k in LOG_KEYS}, (H_tr, H_te, W, b)

    def save_checkpoint(epoch: int, arrays) -> None:
        H_tr, H_te, W, b = arrays
        ytr, yte = data.y_train.cpu().numpy(), data.y_test.cpu().numpy()
        extra = {} if b is None else {"bias": b}
        atomic_save_npz(checkpoint_file(run_dir, epoch), features=H_tr, labels=ytr, split=np.asarray("train"),
                        test_features=H_te, test_labels=yte,
                        classifier=W, epoch=np.asarray(epoch),
                        onset_epoch=np.asarray(-1 if onset is None else onset), **extra)
        with atomic_path(model_path(run_dir, epoch)) as tmp:
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)

    def save_state(epoch: int) -> None:
        save_resume_state(state_path(run_dir), {"epoch": epoch, "onset_epoch": onset, "model": model.state_dict(),
                                                "optimizer": opt.state_dict(), "config": cfg.to_dict()})

    def summary(epoch: int, complete: bool) -> None:
        write_summary(run_dir, onset_epoch=onset, last_epoch=epoch, epochs=cfg.epochs, complete=complete)

    def barrier():
        if ddp:
            import torch.distributed as dist
            dist.barrier()

    if state is None:
        rec, arrays = evaluate(0, lr_at(cfg, 1), None, 0.0)
        if main:
            if reached_full_accuracy(rec["train_acc"]):
                onset = 0
                rec["terminal_phase"] = True
            append_log(run_dir, rec)
            save_checkpoint(0, arrays)
            save_state(0)
            summary(0, cfg.epochs == 0)
        barrier()

    x_tr, y_tr = data.x_train, data.y_train
    N = x_tr.shape[0]
    B = N if cfg.batch_size == 0 else min(cfg.batch_size, N)
    pbar = None
    if main and not cfg.quiet:
        from tqdm.auto import tqdm
        pbar = tqdm(total=cfg.epochs, initial=start_epoch, desc=f"train {run_dir.name}", unit="ep")

    epoch = start_epoch
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        lr = lr_at(cfg, epoch)
        for g in opt.param_groups:
            g["lr"] = lr
        t0 = time.perf_counter()
        batch_loss = train_epoch(fwd, opt, x_tr, y_tr, B, seed=cfg.seed, epoch=epoch, amp=amp,
                                 channels_last=chl, loss_dtype=loss_dtype, rank=rank, world=world)
        if not math.isfinite(batch_loss):
            raise DivergedError(f"training diverged: minibatch loss {batch_loss}; lower lr and start a new run")
        if cuda:
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        rec, arrays = evaluate(epoch, lr, batch_loss, seconds)
        if main:
            new_onset = onset is None and reached_full_accuracy(rec["train_acc"])
            if new_onset:
                onset = epoch
            rec["terminal_phase"] = onset is not None
            append_log(run_dir, rec)
            is_ckpt = epoch in sched or new_onset
            if is_ckpt:
                save_checkpoint(epoch, arrays)
            if is_ckpt or (cfg.save_every and epoch % cfg.save_every == 0):
                save_state(epoch)
                summary(epoch, epoch == cfg.epochs)
            if pbar is not None:
                pbar.update(1)
                pbar.set_postfix(loss=f"{rec['loss']:.3g}", acc=f"{rec['train_acc']:.4f}",
                                 test=f"{rec['test_acc']:.4f}", pmin=f"{rec['p_min']:.3g}")
        barrier()
        if stop_after is not None and epoch >= stop_after:
            break
    if main and epoch == cfg.epochs:
        # also when a kill fell between last.pt and summary.json at the final epoch: the resume has no epoch
        # left to train and must still mark the run complete
        summary(epoch, True)
    if pbar is not None:
        pbar.close()
    if ddp:
        import torch.distributed as dist
        dist.destroy_process_group()
    return run_dir
