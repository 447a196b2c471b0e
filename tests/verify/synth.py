"""Tiny synthetic run directories in the trainer's format (docs/formats.md), for the verify tests.

The features are fixed Gaussian clusters (separable); the saved classifier ``[W_t | b_t]`` at epoch t is
``s_t * (u* + eps_t q)`` with u* the unit direction of the hard-margin SVM on the train features (bias as a
constant feature), q a unit direction orthogonal to u*, s_t a growing scale. ``mode="toward"``: eps_t
shrinks (the classifier turns toward the SVM: claim 1c must pass); ``mode="away"``: eps_t grows (it turns
away: claim 1c must fail). Epoch 0 holds a random classifier (below 100% train accuracy); with
``nonseparable_epoch0`` its train features are made non-separable (a duplicated point with two labels).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ncmargin.io import atomic_save_npz, atomic_write_json

EPOCHS = (0, 1, 2, 4, 8, 16, 32, 64)


def clusters(K=3, n=20, d=6, seed=0, separation=5.0):
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((K, d))
    means *= separation / np.linalg.norm(means, axis=1, keepdims=True)
    y = np.repeat(np.arange(K), n)
    return means[y] + rng.standard_normal((K * n, d)), y, means, rng


def make_run(run_dir, *, mode: str = "toward", K=3, n=20, d=6, seed=0, epochs=EPOCHS, config=None,
             complete=True, nonseparable_epoch0=False) -> Path:
    from ncmargin.solvers import multiclass_svm
    from ncmargin.theory import margins

    run_dir = Path(run_dir)
    H, y, means, rng = clusters(K, n, d, seed)
    y_te = np.repeat(np.arange(K), n)
    H_te = means[y_te] + 1.3 * rng.standard_normal((K * n, d))
    sol = multiclass_svm(H, y, bias=True)
    u = np.column_stack([sol.W, sol.b]).ravel()
    u /= np.linalg.norm(u)
    q = rng.standard_normal(u.size)
    q -= (q @ u) * u
    q /= np.linalg.norm(q)
    ck = run_dir / "checkpoints"
    ck.mkdir(parents=True, exist_ok=True)
    log = []
    onset = None
    for t in epochs:
        if t == 0:
            Wa = 0.1 * rng.standard_normal((K, d + 1))
        else:
            eps = 0.6 / (1 + t / 4) if mode == "toward" else 0.05 * (1 + t / 8)
            Wa = (1 + np.log1p(t)) * (u + eps * q).reshape(K, d + 1)
        W, b = Wa[:, :d], Wa[:, d]
        pm = margins(H, y, W, b)
        train_acc = float(np.mean(np.argmax(H @ W.T + b, axis=1) == y))
        test_acc = float(np.mean(np.argmax(H_te @ W.T + b, axis=1) == y_te))
        if onset is None and train_acc == 1.0:
            onset = t
        if t > 0 and pm.min() <= 0:
            raise AssertionError(f"synthetic run {mode}: epoch {t} not separating; adjust eps")
        Ht = H
        if t == 0 and nonseparable_epoch0:  # two identical features with different labels
            Ht = H.copy()
            Ht[np.flatnonzero(y == 1)[0]] = Ht[np.flatnonzero(y == 0)[0]]
        atomic_save_npz(ck / f"epoch_{t:04d}.npz", features=Ht, labels=y, split=np.asarray("train"),
                        train_features=Ht, train_labels=y, test_features=H_te, test_labels=y_te,
                        classifier=W, bias=b, epoch=np.asarray(t))
        log.append({"epoch": t, "train_acc": train_acc, "test_acc": test_acc, "p_min": float(pm.min())})
    cfg = dict(config or {"dataset": "synthetic", "model": "mlp", "weight_decay": 0.0, "seed": seed})
    atomic_write_json(run_dir / "config.json", {"config": cfg, "num_classes": K})
    (run_dir / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    atomic_write_json(run_dir / "summary.json", {"onset_epoch": onset, "complete": bool(complete),
                                                  "last_epoch": int(epochs[-1])})
    return run_dir


CALLS: list[str] = []


def fake_train(config: dict, run_dir, resume: bool = False):
    """Stands in for ncmargin.empirical.train.train in verify tests: records the call, writes a run."""
    CALLS.append(str(run_dir))
    mode = "away" if float(config.get("weight_decay", 0.0)) > 0 else "toward"
    return make_run(run_dir, mode=mode, config=config, seed=int(config.get("seed", 0)))
