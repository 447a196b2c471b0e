"""The concentration check behind claim 3 (docs/theory.md §8, §10): the empirical P(||μ̂_y − μ_y|| ≥ ε)
against the bound on fresh bounded samples and on the features a trained network gives its own sample."""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import numpy as np

__all__ = ["CONCENTRATION_DEFAULTS", "concentration_experiment", "deep_merge"]

CONCENTRATION_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    # fresh: h = mu + Uniform[-a, a]^d, the mean mu known exactly, rho = ||mu||_inf + a
    "fresh": {"d": 2, "halfwidth": 1.0, "ns": [10, 40, 160, 640, 2560], "eps": [0.05, 0.1, 0.2, 0.4],
              "trials": 2000},
    # trained: a tanh-feature network (K classes, d = K-1, fixed ETF head) trained on n samples per class;
    # mean of its features on the training sample vs on n fresh samples, against the population mean
    "trained": {"K": 3, "input_dim": 10, "hidden": 32, "separation": 1.5, "ns": [10, 40, 160, 640],
                "eps": [0.05, 0.1, 0.2, 0.4], "trials": 16, "steps": 200, "lr": 0.02, "scale": 4.0,
                "population_per_class": 5000},
}



def deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out



def _fresh_check(s: dict, seed: int) -> dict:
    """Bounded features with a known mean: h = μ + U[-a, a]^d (ρ = ||μ||_∞ + a bounds ||h||_∞)."""
    from ncmargin.theory.alignment import concentration_check

    d, a = int(s["d"]), float(s["halfwidth"])
    rng = np.random.default_rng(seed)
    mu = rng.uniform(-0.5, 0.5, size=d)
    rho = float(np.max(np.abs(mu)) + a)

    def sample(g, n):
        return mu + g.uniform(-a, a, size=(n, d))

    rows = concentration_check(sample, mu, s["ns"], s["eps"], rho=rho, trials=int(s["trials"]), seed=seed)
    for r in rows:
        r["nontrivial"] = r["bound"] < 1.0
    return {"rows": rows, "d": d, "rho": rho, "mu": mu.tolist(),
            "distribution": f"mu + Uniform[-{a}, {a}]^{d}, mu known exactly"}


def _trained_check(s: dict, seed: int) -> dict:
    """Features of a trained network on its own training sample vs on fresh samples (docs/theory.md §10).

    Data: K Gaussian classes in R^D (means ``separation``·random unit vectors, identity covariance).
    Network: Linear(D, hidden)–ReLU–Linear(hidden, d)–tanh, d = K−1 (so ||h||_∞ ≤ ρ = 1 surely;
    PyTorch's default Linear init U(±1/√fan_in)), with a fixed ETF head ``scale·simplex_etf(K, d)``;
    full-batch Adam on the CE for ``steps`` steps. The ``trials`` networks of one n are trained together
    as one batched model (independent weights, summed losses; Adam is elementwise, so this is exactly
    ``trials`` separate trainings). For each trial (a fresh training sample of n per class):
    μ_y = mean feature of the trained network over ``population_per_class`` fresh samples (the population
    mean up to Monte-Carlo error ≈ σ/√population ≤ 1/√5000 ≈ 0.014 by default), μ̂_train = mean over the training sample, μ̂_fresh =
    mean over n fresh samples. Events ||μ̂ − μ_y|| ≥ ε are pooled over the K classes (K·trials events per
    cell; the binomial standard error treats them as independent, which the K classes of one trial are
    not exactly)."""
    import torch

    from ncmargin.empirical.data import gaussian_means
    from ncmargin.store import thread_limits
    from ncmargin.theory import simplex_etf
    from ncmargin.theory.alignment import concentration_bound

    K, D, hid = int(s["K"]), int(s["input_dim"]), int(s["hidden"])
    d = K - 1
    T, steps = int(s["trials"]), int(s["steps"])
    rng = np.random.default_rng(seed)
    means = gaussian_means(rng, K, D, float(s["separation"]))
    M = torch.from_numpy(float(s["scale"]) * simplex_etf(K, d)).float()
    npop = int(s["population_per_class"])
    eps = np.asarray(s["eps"], dtype=np.float64)
    threads = contextlib.ExitStack()
    threads.enter_context(thread_limits(1, blas=False))

    def draw(g, n):
        """T independent samples of n per class: X (T, K n, D) float64, labels (K n,) (same order each)."""
        y = np.repeat(np.arange(K), n)
        x = means[y][None] + g.standard_normal((T, K * n, D))
        return torch.from_numpy(x).float(), torch.from_numpy(y)

    def uniform(g, shape, fan_in):
        b = 1.0 / math.sqrt(fan_in)
        return torch.from_numpy(g.uniform(-b, b, size=shape)).float().requires_grad_(True)

    def features(params, x):
        W1, b1, W2, b2 = params
        return torch.tanh(torch.relu(x @ W1 + b1) @ W2 + b2)

    rows, dev_summary = [], []
    try:
        for j, n in enumerate(s["ns"]):
            n = int(n)
            g = np.random.default_rng([seed, j])
            params = [uniform(g, (T, D, hid), D), uniform(g, (T, 1, hid), D), uniform(g, (T, hid, d), hid),
                      uniform(g, (T, 1, d), hid)]
            opt = torch.optim.Adam(params, lr=float(s["lr"]))
            x, y = draw(g, n)
            yy = y.repeat(T)
            for _ in range(steps):
                opt.zero_grad()
                logits = features(params, x) @ M.T                     # (T, K n, K)
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, K), yy, reduction="sum") / (K * n)
                loss.backward()                                        # sum over trials: independent grads
                opt.step()
            with torch.no_grad():
                h_tr = features(params, x).double().numpy()
                xf, _ = draw(g, n)
                h_fr = features(params, xf).double().numpy()
                mu = np.empty((T, K, d))
                for c in range(K):                                     # population means, chunked by class
                    xc = torch.from_numpy(means[c] + g.standard_normal((T, npop, D))).float()
                    mu[:, c] = features(params, xc).double().numpy().mean(axis=1)
            yn = y.numpy()
            dev_tr = np.stack([np.linalg.norm(h_tr[:, yn == c].mean(axis=1) - mu[:, c], axis=1)
                               for c in range(K)], axis=1).ravel()
            dev_fr = np.stack([np.linalg.norm(h_fr[:, yn == c].mean(axis=1) - mu[:, c], axis=1)
                               for c in range(K)], axis=1).ravel()
            m = dev_tr.size
            bnd = np.atleast_1d(concentration_bound(n, eps, d, 1.0))
            for e, b in zip(eps, bnd):
                p_tr = float(np.mean(dev_tr >= e))
                p_fr = float(np.mean(dev_fr >= e))
                se_tr = math.sqrt(p_tr * (1 - p_tr) / m)
                se_fr = math.sqrt(p_fr * (1 - p_fr) / m)
                rows.append({"n": n, "eps": float(e), "empirical": p_tr, "stderr": se_tr,
                             "empirical_fresh": p_fr, "stderr_fresh": se_fr, "bound": float(b),
                             "nontrivial": bool(b < 1.0), "bound_holds": bool(p_tr <= b + 3 * se_tr),
                             "bound_holds_fresh": bool(p_fr <= b + 3 * se_fr), "events": m})
            dev_summary.append({"n": n, "mean_deviation_train": float(dev_tr.mean()),
                                "mean_deviation_fresh": float(dev_fr.mean()),
                                "ratio": float(dev_tr.mean() / dev_fr.mean()) if dev_fr.mean() > 0 else None,
                                "final_train_loss": float(loss.detach()) / T})
    finally:
        threads.close()
    return {"rows": rows, "d": d, "rho": 1.0, "K": K, "deviation_by_n": dev_summary,
            "network": f"Linear({D},{hid})-ReLU-Linear({hid},{d})-tanh, fixed ETF head x{s['scale']}, "
                       f"Adam lr {s['lr']} full batch {steps} steps (float32; means in float64), {T} trials per n"}


def concentration_experiment(settings: dict | None = None) -> dict:
    """docs/theory.md §8 concentration check: the empirical P(||μ̂_y − μ_y|| ≥ ε) against
    ``concentration_bound(n, ε, d, ρ)`` over a grid of n and ε, (i) on fresh bounded samples with a known
    mean and (ii) on the features a trained network produces for its own training sample (and, as the
    baseline, for fresh samples through the same network). Returns ``{"fresh": [rows], "trained": [rows],
    "fresh_info", "trained_info", "summary", "seconds"}``; a row is ``{"n", "eps", "empirical", "stderr",
    "bound", "bound_holds", "nontrivial", ...}`` with ``bound_holds`` = empirical ≤ bound + 3·s.e."""
    t0 = time.perf_counter()
    s = deep_merge(CONCENTRATION_DEFAULTS, settings or {})
    seed = int(s.get("seed", 0))
    fresh = _fresh_check(s["fresh"], seed)
    trained = _trained_check(s["trained"], seed + 1) if s.get("trained") else None

    def summary(rows, key="bound_holds"):
        nt = [r for r in rows if r["nontrivial"]]
        return {"points": len(rows), "held": sum(r[key] for r in rows), "nontrivial_points": len(nt),
                "held_nontrivial": sum(r[key] for r in nt), "all_held": all(r[key] for r in rows)}

    out = {"fresh": fresh["rows"], "fresh_info": {k: v for k, v in fresh.items() if k != "rows"},
           "trained": trained["rows"] if trained else [],
           "trained_info": {k: v for k, v in trained.items() if k != "rows"} if trained else None,
           "settings": s}
    out["summary"] = {"fresh": summary(fresh["rows"])}
    if trained:
        out["summary"]["trained"] = summary(trained["rows"])
        out["summary"]["trained_fresh_samples"] = summary(trained["rows"], "bound_holds_fresh")
    out["seconds"] = time.perf_counter() - t0
    return out
