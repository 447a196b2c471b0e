"""Stored inputs of the regression suite (``goldens/inputs/``), made once from seeded generators."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["CHECKPOINT_OVERRIDES", "INPUT_FILES", "TRAIN_OVERRIDES", "make_inputs", "small_models"]

# ------------------------------------------------------------------------------------------------ inputs

INPUT_FILES = ("features_nc.npz", "features_soft.npz", "features_tiny.npz", "checkpoint_digits.npz",
               "claim3_table.json", "models_small.npz")

# overrides of the quick digits preset for the training case and for the stored checkpoint input
TRAIN_OVERRIDES = {"epochs": 5, "n_per_class": 30, "n_test_per_class": 10, "width": 32, "depth": 2,
                   "num_checkpoints": 1, "deterministic": True, "num_threads": 1, "quiet": True,
                   "save_every": 0}
CHECKPOINT_OVERRIDES = dict(TRAIN_OVERRIDES, epochs=40)


def make_inputs(directory: Path, force: bool = False) -> list[Path]:
    """Write the stored input files that are missing (all of them with ``force``); returns those written.

    Inputs are made ONCE from seeded generators and then kept in the repository: the cases read them and
    never regenerate them, so a change in a generator (numpy's Gaussian sampler, the trainer) cannot move
    an input. Regenerate only deliberately (delete the file, then ``ncmargin regress --update``).
    """
    from ncmargin import theory
    from ncmargin.io import atomic_write_json, save_features
    from ncmargin.solvers import multiclass_svm

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def want(name: str) -> Path | None:
        p = directory / name
        return p if (force or not p.exists()) else None

    if p := want("features_nc.npz"):
        # K=4, d=6, unequal class sizes; features near a 2x-scaled ETF (separable), a perturbed ETF head
        rng = np.random.default_rng(20231012)
        y = np.repeat(np.arange(4), [10, 9, 11, 10])
        M = theory.simplex_etf(4, 6, seed=7)
        H = 2.0 * M[y] + 0.3 * rng.standard_normal((y.size, 6))
        W = 1.5 * M + 0.05 * rng.standard_normal((4, 6))
        b = 0.1 * rng.standard_normal(4)
        svm = multiclass_svm(H, y)
        save_features(p, H, y, classifier=W, bias=b, split="train", etf=M, svm_W=svm.W)
        written.append(p)
    if p := want("features_soft.npz"):
        # K=3, d=4, overlapping classes (not separable): the soft-margin case
        rng = np.random.default_rng(20231013)
        y = np.repeat(np.arange(3), 8)
        M = theory.simplex_etf(3, 4, seed=1)
        H = M[y] + 0.8 * rng.standard_normal((y.size, 4))
        save_features(p, H, y, split="train")
        written.append(p)
    if p := want("features_tiny.npz"):
        # K=3, d=3, 5 per class, separable: the cvxpy reference case
        rng = np.random.default_rng(20231014)
        y = np.repeat(np.arange(3), 5)
        M = theory.simplex_etf(3, 3, seed=2)
        H = 1.5 * M[y] + 0.25 * rng.standard_normal((y.size, 3))
        save_features(p, H, y, split="train")
        written.append(p)
    if p := want("checkpoint_digits.npz"):
        from ncmargin.empirical.train import train
        from ncmargin.store import list_checkpoints, load_checkpoint

        with tempfile.TemporaryDirectory() as tmp:
            run = train("quick_digits", Path(tmp) / "run", overrides=CHECKPOINT_OVERRIDES)
            ep = list_checkpoints(run)[-1].epoch
            fs = load_checkpoint(run, ep, "train")
        save_features(p, fs.features.astype(np.float32), fs.labels, classifier=fs.classifier, bias=fs.bias,
                      split="train", epoch=np.int64(ep),
                      recipe=np.asarray("quick_digits " + json.dumps(CHECKPOINT_OVERRIDES, sort_keys=True)))
        written.append(p)
    if p := want("models_small.npz"):
        # weights of a small MLP (with BatchNorm) and a small CNN, plus probe inputs, for the network
        # complexity case; BatchNorm running statistics set to non-trivial values
        import torch

        g = torch.Generator().manual_seed(20231016)
        arrays = {}
        for tag, model in small_models().items():
            for k, v in model.state_dict().items():
                v = v.detach().clone()
                if v.dtype.is_floating_point:
                    if k.endswith("running_var"):
                        v = 0.5 + torch.rand(v.shape, generator=g, dtype=v.dtype)
                    elif k.endswith("running_mean") or (k.endswith("bias") and ".weight" not in k):
                        v = 0.1 * torch.randn(v.shape, generator=g, dtype=v.dtype)
                    else:
                        v = 0.3 * torch.randn(v.shape, generator=g, dtype=v.dtype)
                arrays[f"{tag}__{k}"] = v.numpy()
        rng = np.random.default_rng(20231016)
        arrays["X_mlp"] = rng.standard_normal((20, 64))
        arrays["X_cnn"] = rng.standard_normal((20, 1, 8, 8))
        from ncmargin.io import atomic_save_npz

        atomic_save_npz(p, **arrays)
        written.append(p)
    if p := want("claim3_table.json"):
        # 4 alignments x 5 seeds test-accuracy table: alignment effect + seed effect + noise
        rng = np.random.default_rng(20231015)
        a_eff = np.array([0.0, 0.01, 0.02, 0.03])
        s_eff = 0.004 * rng.standard_normal(5)
        table = 0.85 + a_eff[:, None] + s_eff[None, :] + 0.003 * rng.standard_normal((4, 5))
        t = np.array([10, 30, 100, 300, 1000, 3000], dtype=float)
        angle = 2.0 + 40.0 / np.log(t) + 0.2 * rng.standard_normal(t.size)
        atomic_write_json(p, {"table": table.tolist(), "t": t.tolist(), "angle": angle.tolist(),
                              "x": rng.standard_normal(12).tolist(), "about": "seeded (20231015), stored once"})
        written.append(p)
    return written


def small_models() -> dict:
    """The two architectures of the network-complexity case (weights come from the stored input)."""
    from torch import nn

    from ncmargin.empirical.models import MLP, SmallCNN

    mlp = MLP((64,), depth=2, width=16, batchnorm=True)
    mlp.head = nn.Linear(16, 10)
    cnn = SmallCNN((1, 8, 8), width=8, channels=4)
    cnn.head = nn.Linear(8, 10)
    return {"mlp": mlp, "cnn": cnn}
