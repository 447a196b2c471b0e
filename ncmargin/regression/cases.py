"""The cases of the numeric regression suite and their tolerance classes (docs/theory.md §11).

Each case is a small, deterministic, CPU-fast computation through the PUBLIC functions of ncmargin that
returns ``{quantity: Quantity(value, Tol)}``. Inputs come from ``goldens/inputs/`` (stored once, see
:func:`make_inputs`), so a case measures drift of the computation, never of its input.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .engine import Quantity, Tol

__all__ = [
    "CASES",
    "CLOSED_FORM",
    "EXACT",
    "GD_FLOAT64",
    "INPUT_FILES",
    "TRAIN_FLOAT32_ARRAY",
    "TRAIN_FLOAT32_SCALAR",
    "Case",
    "case_names",
    "get_case",
    "make_inputs",
    "svm_certified_tols",
    "ufm_certified_tol",
]

# ------------------------------------------------------------------------------------- tolerance classes
# Every number below is argued here and in docs/theory.md §11; the measurements quoted were made on the
# machine that recorded the goldens (see the versions in each golden file).

EXACT = Tol("exact", why="discrete output (integer count, boolean, string status, index set): "
                         "any change is a real change")
# Closed-form float64: a fixed sequence of O(10^3) flops on inputs with |entries| <= ~10. Rounding error is
# then <= ~1e3 * eps * 10 ~ 2e-12 absolute and ~1e-13 relative for quantities not produced by cancellation.
# Measured: recomputing the nc_metrics, margins, bounds and alignment cases on three random row
# permutations of their inputs (a different summation order) moved the values by <= 5.1e-16 relative.
# 1e-10 relative leaves a wide margin for other BLAS/LAPACK builds (different blocking, FMA); the 1e-12
# absolute floor is for values that are 0 up to rounding (ETF deviations ~1e-16, NC metrics of exact
# structure), whose relative error is meaningless.
CLOSED_FORM = Tol("rel", rtol=1e-10, atol=1e-12,
                  why="closed-form float64 (rounding <= ~1e-13 rel, measured <= 5.1e-16 under row "
                      "permutation; 1e-12 floor for values that are 0 up to rounding)")
# Gradient descent in float64 for a few hundred steps (UFM dynamics in torch float64, fixed-feature GD in
# numpy): deterministic, but rounding differences (another BLAS kernel, summation order) are propagated
# and amplified by the iteration. Measured amplification: perturbing the step size by one ulp (a relative
# perturbation of 1.1e-16 at every step) moved every recorded quantity by <= 5.1e-15 relative (UFM) and
# <= 3.0e-15 (fixed features; row-permuted features: <= 6.0e-16). 1e-9 relative leaves >= 1e5x for
# kernels that round differently; the 1e-12 floor covers quantities that are 0 up to rounding.
GD_FLOAT64 = Tol("rel", rtol=1e-9, atol=1e-12,
                 why="float64 gradient descent, <= 300 steps (one-ulp step-size perturbation moved the "
                     "records by <= 5.1e-15 rel)")
# Training in float32 (torch, CPU, --deterministic, one thread): bitwise reproducible run-to-run
# (measured: 0 difference). Changing the torch thread count from 1 to 2 (a different reduction order in
# the float32 GEMMs) moved the features after 5 epochs by 6.6e-8 relative (Frobenius) and the float64 log
# metrics by <= 4.5e-8 relative. 1e-5 leaves >= 100x for other CPUs' kernels.
TRAIN_FLOAT32_ARRAY = Tol("norm", rtol=1e-5,
                          why="float32 training, few epochs: thread-count variation measured 6.6e-8 rel "
                              "(Frobenius); 1e-5 leaves >= 100x")
TRAIN_FLOAT32_SCALAR = Tol("rel", rtol=1e-5, atol=1e-6,
                           why="float64 metric of float32 features after a few epochs: thread-count "
                               "variation measured <= 4.5e-8 rel; 1e-6 floor for values near 0")


# Power iteration (conv-layer spectral norms, float64, seeded start, stop when the relative change of
# sigma^2 is <= tol = 1e-7): deterministic, but a rounding difference can move the stopping point by one
# iteration, which changes each conv sigma by <= tol/2 relative; products over the 3 conv layers of the
# small CNN (spectral product, R_A, Rademacher term) by <= 1.5e-7. 5e-7 relative covers that.
POWER_ITERATION = Tol("rel", rtol=5e-7, atol=1e-12,
                      why="float64 power iteration stopped at rel. change 1e-7 of sigma^2: a one-iteration "
                          "shift of the stop moves each sigma <= 5e-8, products over 3 conv layers <= 1.5e-7")


def svm_certified_tols(sol) -> tuple[Tol, Tol]:
    """(objective tolerance, W tolerance) of one SVM run from ITS certificate [our form]:

    - objective: a primal W that violates constraints by v has W/(1-v) feasible, and dual <= opt, so
      |objective - opt| <= (objective - dual) + 2 v objective (+ 1e-12 objective for float64 rounding of
      the objective itself);
    - W: the objective (1/2)||W||^2 (+ C sum xi) is 1-strongly convex, so a feasible point with
      P(W) - opt <= g is within sqrt(2 g) of the unique optimum W* in Frobenius norm; with the
      feasibility correction, ||W - W*||_F <= sqrt(2 (gap + 3 v obj)) + 1.01 v ||W||_F (+ 1e-12 ||W||).

    Both are per-run bounds (``certified=True``): the allowed golden-vs-now difference is their sum.
    """
    obj = float(sol.objective)
    gap = max(0.0, obj - float(sol.dual_objective))
    v = max(0.0, float(sol.max_violation))
    nW = float(np.linalg.norm(sol.W))
    a_obj = gap + 2.0 * v * obj + 1e-12 * abs(obj)
    a_W = math.sqrt(2.0 * (gap + 3.0 * v * obj)) + 1.01 * v * nW + 1e-12 * nW
    why = "certified by this run's duality gap and max violation (strong convexity of 1/2||W||^2)"
    return (Tol("rel", atol=a_obj, certified=True, why="certified: " + why),
            Tol("norm", atol=a_W, certified=True, why="certified: " + why))


def ufm_certified_tol(sol, scale: float = 1.0) -> Tol:
    """Objective tolerance of one UFM nuclear-norm solve from its certificate: primal upper bound minus
    dual lower bound (both certified), plus 1e-12 relative rounding [our form]."""
    c = sol.certificate
    gap = max(0.0, float(c["primal_upper_bound"]) - float(c["dual_lower_bound"]))
    return Tol("rel", atol=scale * (gap + 1e-12 * abs(float(sol.objective))), certified=True,
               why="certified: primal upper bound - dual lower bound of this solve")


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
        for tag, model in _small_models().items():
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


def _features(inputs: Path, name: str):
    from ncmargin.io import load_features

    return load_features(inputs / name)


def _extra(inputs: Path, name: str, key: str) -> np.ndarray:
    with np.load(inputs / name, allow_pickle=False) as z:
        return np.asarray(z[key])


def _dict(prefix: str, d: dict, tol_for: Callable[[str, object], Tol], skip=()) -> dict[str, Quantity]:
    out = {}
    for k, v in d.items():
        if k in skip:
            continue
        out[f"{prefix}{k}"] = Quantity(v, tol_for(k, v))
    return out


def _by_type(v) -> Tol:
    """EXACT for bool/int/str/None, CLOSED_FORM for floats (for closed-form dicts)."""
    if v is None or isinstance(v, (bool, np.bool_, int, np.integer, str)):
        return EXACT
    return CLOSED_FORM


# ------------------------------------------------------------------------------------------------- cases

def case_etf(inputs: Path) -> dict[str, Quantity]:
    from ncmargin import theory

    q: dict[str, Quantity] = {}
    M = theory.simplex_etf(5, 7, seed=11, perm=[3, 0, 4, 1, 2])
    q["M_seed11_perm"] = Quantity(M, CLOSED_FORM)
    q["M_canonical_K4"] = Quantity(theory.simplex_etf(4), CLOSED_FORM)
    q.update(_dict("dev.", theory.etf_deviation(M), lambda k, v: _by_type(v)))
    q["is_etf"] = Quantity(theory.is_etf(M), EXACT)
    Mp = M.copy()
    Mp[0] *= 1.1
    Mp[1] += 0.05
    q.update(_dict("dev_perturbed.", theory.etf_deviation(Mp), lambda k, v: _by_type(v)))
    q.update(_dict("dev_perturbed_scaled.", theory.etf_deviation(3.0 * Mp, scale_invariant=False),
                   lambda k, v: _by_type(v)))
    q["is_etf_perturbed"] = Quantity(theory.is_etf(Mp), EXACT)
    return q


def case_nc_metrics(inputs: Path) -> dict[str, Quantity]:
    from ncmargin import theory

    fs = _features(inputs, "features_nc.npz")
    q = _dict("", theory.nc_metrics(fs.features, fs.labels, fs.classifier, fs.bias), lambda k, v: _by_type(v))
    H, y = fs.features, fs.labels

    def chunks():
        for s in range(0, H.shape[0], 7):
            yield H[s:s + 7], y[s:s + 7]

    q.update(_dict("streaming.", theory.nc_metrics_streaming(chunks, 4, fs.classifier, fs.bias),
                   lambda k, v: _by_type(v)))
    q.update(_dict("no_classifier.", theory.nc_metrics(H, y), lambda k, v: _by_type(v)))
    return q


def case_margins(inputs: Path) -> dict[str, Quantity]:
    from ncmargin import theory

    fs = _features(inputs, "features_nc.npz")
    H, y, W, b = fs.features, fs.labels, fs.classifier, fs.bias
    N, K = H.shape[0], W.shape[0]
    q = {
        "logits": Quantity(theory.logits(H, W, b), CLOSED_FORM),
        "margins": Quantity(theory.margins(H, y, W, b), CLOSED_FORM),
        "p_min": Quantity(theory.p_min(H, y, W, b), CLOSED_FORM),
        "p_min_no_bias": Quantity(theory.p_min(H, y, W), CLOSED_FORM),
        "pairwise_margins": Quantity(theory.pairwise_margins(H, y, W, b), CLOSED_FORM),
        "normalized_pairwise_margins": Quantity(theory.normalized_pairwise_margins(H, y, W, b), CLOSED_FORM),
        "normalized_margin": Quantity(theory.normalized_margin(H, y, W, b), CLOSED_FORM),
        "ufm_normalized_margin": Quantity(theory.ufm_normalized_margin(H, y, W), CLOSED_FORM),
        "ce_loss": Quantity(theory.ce_loss(H, y, W, b), CLOSED_FORM),
        "ce_loss_sum": Quantity(theory.ce_loss(H, y, W, b, reduction="sum"), CLOSED_FORM),
        "ce_loss_per_sample": Quantity(theory.ce_loss(H, y, W, b, reduction="none"), CLOSED_FORM),
        # deep terminal phase: W scaled by 60 gives a loss ~1e-80; the stable form keeps it relative-accurate
        "ce_loss_W_x60": Quantity(theory.ce_loss(H, y, 60.0 * W, 60.0 * b), CLOSED_FORM),
    }
    loss, pm = theory.ce_loss(H, y, W, b), theory.p_min(H, y, W, b)
    q.update(_dict("sandwich.", theory.ce_pmin_sandwich(loss, pm, N, K), lambda k, v: _by_type(v)))
    loss60, pm60 = theory.ce_loss(H, y, 60.0 * W, 60.0 * b), theory.p_min(H, y, 60.0 * W, 60.0 * b)
    q.update(_dict("sandwich_W_x60.", theory.ce_pmin_sandwich(loss60, pm60, N, K), lambda k, v: _by_type(v)))
    return q


def _svm_quantities(sol, prefix: str = "") -> dict[str, Quantity]:
    t_obj, t_W = svm_certified_tols(sol)
    margin_tol = Tol("rel", atol=float(sol.margin) * t_obj.atol / (2.0 * float(sol.objective)) + 1e-12,
                     certified=True, why="certified: margin = 1/sqrt(2 objective), first-order in the "
                                         "certified objective error")
    q = {
        "status": Quantity(sol.status, EXACT),
        "method": Quantity(sol.method, EXACT),
        "objective": Quantity(float(sol.objective), t_obj),
        "margin": Quantity(float(sol.margin), margin_tol),
        "W": Quantity(np.asarray(sol.W), t_W),
        "support": Quantity(np.sort(np.asarray(sol.support, dtype=np.int64)), EXACT),
        "n_support": Quantity(int(sol.n_support), EXACT),
        "n_misclassified": Quantity(int(sol.n_misclassified), EXACT),
        # the certificate itself is rounding noise; what must not drift is that it certifies
        "certified": Quantity(bool(sol.duality_gap <= sol.gap_tol and sol.max_violation <= sol.tol), EXACT),
    }
    if sol.b is not None:
        q["b"] = Quantity(np.asarray(sol.b), Tol("norm", atol=t_W.atol, certified=True, why=t_W.why))
    return {prefix + k: v for k, v in q.items()}


def case_svm_hard(inputs: Path) -> dict[str, Quantity]:
    from ncmargin.solvers import multiclass_svm

    fs = _features(inputs, "features_nc.npz")
    q = _svm_quantities(multiclass_svm(fs.features, fs.labels))
    q.update(_svm_quantities(multiclass_svm(fs.features, fs.labels, bias=True), "bias."))
    return q


def case_svm_soft(inputs: Path) -> dict[str, Quantity]:
    from ncmargin.solvers import NotSeparableError, multiclass_svm

    fs = _features(inputs, "features_soft.npz")
    q = _svm_quantities(multiclass_svm(fs.features, fs.labels, C=1.0), "C1.")
    q.update(_svm_quantities(multiclass_svm(fs.features, fs.labels, C=0.1), "C0.1."))
    try:
        multiclass_svm(fs.features, fs.labels)
        raised = False
    except NotSeparableError:
        raised = True
    q["hard_margin_raises_not_separable"] = Quantity(raised, EXACT)
    return q


def case_svm_cvxpy(inputs: Path) -> dict[str, Quantity]:
    from ncmargin.solvers import multiclass_svm

    fs = _features(inputs, "features_tiny.npz")
    q = _svm_quantities(multiclass_svm(fs.features, fs.labels, method="cvxpy"), "hard.")
    q.update(_svm_quantities(multiclass_svm(fs.features, fs.labels, C=0.5, method="cvxpy"), "soft_C0.5."))
    return q


def case_ufm_svm(inputs: Path) -> dict[str, Quantity]:
    from ncmargin import theory
    from ncmargin.solvers import ufm_svm

    q: dict[str, Quantity] = {}
    for tag, y in (("balanced", np.repeat(np.arange(3), 4)), ("imbalanced", np.repeat(np.arange(3), [2, 4, 5]))):
        sol = ufm_svm(y, d=4)
        t = ufm_certified_tol(sol)
        c = sol.certificate
        q[f"{tag}.status"] = Quantity(sol.status, EXACT)
        q[f"{tag}.objective"] = Quantity(float(sol.objective), t)
        q[f"{tag}.factor_objective"] = Quantity(float(c["factor_objective"]), t)
        q[f"{tag}.rank"] = Quantity(int(c["rank"]), EXACT)
        q[f"{tag}.balanced"] = Quantity(bool(c["balanced"]), EXACT)
        if c.get("closed_form") is not None:
            q[f"{tag}.closed_form"] = Quantity(float(c["closed_form"]), CLOSED_FORM)
        # UFM margin of the factors = p_min / (1/2(||W||^2+||H||^2)) -> 1/objective; its certified error
        # is (objective error)/objective^2 + the factors' max violation (relative) [our form]
        m = theory.ufm_normalized_margin(sol.H, y, sol.W)
        q[f"{tag}.ufm_normalized_margin"] = Quantity(m, Tol(
            "rel", atol=m * (t.atol / float(sol.objective) + float(c["factor_max_violation"])) + 1e-12,
            certified=True, why="certified: from the objective's certified gap and the factors' violation"))
    return q


def case_ufm_dynamics(inputs: Path) -> dict[str, Quantity]:
    from ncmargin.empirical.ufm import ufm_dynamics

    recs = ufm_dynamics(3, 4, 4, 300, lr=1.0, seed=0, num_logs=5)
    return _records("", recs, "step", GD_FLOAT64, skip=("seconds",))


def _records(prefix: str, recs: list[dict], index_key: str, float_tol: Tol, skip=()) -> dict[str, Quantity]:
    """A list of log records as one array per key over the records (exact for ints/bools/strs)."""
    q: dict[str, Quantity] = {}
    keys = [k for k in recs[0] if k not in skip]
    for k in keys:
        vals = [r.get(k) for r in recs]
        if all(isinstance(v, (bool, np.bool_)) for v in vals) or all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals) or k == index_key:
            q[prefix + k] = Quantity(np.asarray(vals), EXACT)
        elif all(isinstance(v, str) for v in vals):
            q[prefix + k] = Quantity("|".join(vals), EXACT)
        else:
            q[prefix + k] = Quantity(np.asarray([np.nan if v is None else float(v) for v in vals]), float_tol)
    return q


def case_fixed_features_gd(inputs: Path) -> dict[str, Quantity]:
    from ncmargin.empirical.fixed_features import ce_gd_fixed_features

    fs = _features(inputs, "features_nc.npz")
    W_star = _extra(inputs, "features_nc.npz", "svm_W")
    q: dict[str, Quantity] = {}
    for sched in ("constant", "normalized"):
        recs = ce_gd_fixed_features(fs.features, fs.labels, W_star=W_star, steps=300, schedule=sched,
                                    record=[0, 1, 10, 100, 300])
        q.update(_records(f"{sched}.", recs, "step", GD_FLOAT64, skip=("seconds",)))
    return q


# log keys that are timings (not numbers the toolkit reports about the model)
_TIMING_KEYS = ("seconds", "eval_seconds")
# log keys that are exact: counts, flags, epochs; accuracies and the NCC mismatch are count/N ratios
# (a change means a sample changed class; measured: no flips under the thread-count change)
_EXACT_LOG_KEYS = ("epoch", "saturated_f32", "train_acc", "test_acc", "nc4_ncc_mismatch", "terminal_phase")


def case_train_digits(inputs: Path) -> dict[str, Quantity]:
    from ncmargin.empirical.train import train
    from ncmargin.store import list_checkpoints, load_checkpoint, read_log, read_train_config

    with tempfile.TemporaryDirectory() as tmp:
        run = train("quick_digits", Path(tmp) / "run", overrides=TRAIN_OVERRIDES)
        cfg = read_train_config(run)
        log = read_log(run)
        eps = [c.epoch for c in list_checkpoints(run)]
        last = eps[-1]
        tr, te = load_checkpoint(run, last, "train"), load_checkpoint(run, last, "test")
    q: dict[str, Quantity] = {"checkpoint_epochs": Quantity(np.asarray(eps), EXACT)}
    # the resolved config (preset + overrides), key by key: a changed preset is named in the failure
    for k, v in cfg.items():
        q[f"config.{k}"] = Quantity(v, EXACT)
    for k in log[0]:
        if k in _TIMING_KEYS:
            continue
        vals = [r.get(k) for r in log]
        if k in _EXACT_LOG_KEYS:
            q[f"log.{k}"] = Quantity(np.asarray([np.nan if v is None else v for v in vals]), EXACT)
        elif k == "lr":
            q[f"log.{k}"] = Quantity(np.asarray(vals, dtype=float), CLOSED_FORM)
        else:
            q[f"log.{k}"] = Quantity(np.asarray([np.nan if v is None else float(v) for v in vals]),
                                     TRAIN_FLOAT32_SCALAR)
    q["ckpt.train_features"] = Quantity(tr.features.astype(np.float32), TRAIN_FLOAT32_ARRAY)
    q["ckpt.test_features"] = Quantity(te.features.astype(np.float32), TRAIN_FLOAT32_ARRAY)
    q["ckpt.train_labels"] = Quantity(tr.labels, EXACT)
    q["ckpt.test_labels"] = Quantity(te.labels, EXACT)
    q["ckpt.classifier"] = Quantity(tr.classifier, TRAIN_FLOAT32_ARRAY)
    if tr.bias is not None:
        q["ckpt.bias"] = Quantity(tr.bias, TRAIN_FLOAT32_ARRAY)
    return q


def case_bounds(inputs: Path) -> dict[str, Quantity]:
    from ncmargin import theory

    fs = _features(inputs, "checkpoint_digits.npz")
    H, y, W, b = fs.features, fs.labels, fs.classifier, fs.bias
    rep = theory.last_layer_bound(H, y, W, b)
    q: dict[str, Quantity] = {}
    for k, v in rep.items():
        if isinstance(v, dict):
            q.update(_dict(f"{k}.", v, lambda kk, vv: _by_type(vv)))
        elif v is None or isinstance(v, str):
            q[k] = Quantity(v, EXACT)
        else:
            q[k] = Quantity(v, _by_type(v))
    m = theory.margins(H, y, W, b)
    q.update(_dict("margin_bound_delta0.01.",
                   theory.margin_bound(m, float(np.median(m)), K=W.shape[0], rademacher=0.3, Gamma=2.0 * float(m.max()),
                                       delta=0.01),
                   lambda k, v: _by_type(v)))
    q.update(_dict("spectral_complexity.",
                   theory.spectral_complexity([3.0, 2.5, 1.7], [10.0, 8.0, 4.0], 25.0, 300),
                   lambda k, v: _by_type(v)))
    q["spectral_product"] = Quantity(theory.spectral_product([3.0, 2.5, 1.7], 1.0), CLOSED_FORM)
    return q


def _small_models() -> dict:
    """The two architectures of the network-complexity case (weights come from the stored input)."""
    from torch import nn

    from ncmargin.empirical.models import MLP, SmallCNN

    mlp = MLP((64,), depth=2, width=16, batchnorm=True)
    mlp.head = nn.Linear(16, 10)
    cnn = SmallCNN((1, 8, 8), width=8, channels=4)
    cnn.head = nn.Linear(8, 10)
    return {"mlp": mlp, "cnn": cnn}


def case_network_complexity(inputs: Path) -> dict[str, Quantity]:
    import torch

    from ncmargin.empirical.complexity import network_spectral_complexity

    q: dict[str, Quantity] = {}
    with np.load(inputs / "models_small.npz", allow_pickle=False) as z:
        stored = {k: z[k] for k in z.files}
    for tag, model in _small_models().items():
        sd = {k.split("__", 1)[1]: torch.from_numpy(v) for k, v in stored.items() if k.startswith(tag + "__")}
        model.load_state_dict(sd)
        X = stored[f"X_{tag}"]
        rep = network_spectral_complexity(model, X)
        # the MLP's norms are exact (SVD, closed form); the CNN's conv norms come from power iteration
        tol = CLOSED_FORM if tag == "mlp" else POWER_ITERATION
        w = [e for e in rep["layers"] if e["kind"] == "weight"]
        q[f"{tag}.layer_names"] = Quantity("|".join(e["name"] for e in w), EXACT)
        q[f"{tag}.spectral"] = Quantity(np.array([e["spectral"] for e in w]),
                                        tol if tag == "cnn" else CLOSED_FORM)
        q[f"{tag}.l21"] = Quantity(np.array([e["l21"] for e in w]), CLOSED_FORM)
        q[f"{tag}.lipschitz_layers"] = Quantity(
            np.array([e["lipschitz"] for e in rep["layers"] if e["kind"] == "lipschitz"]), tol)  # avg pool: power it.
        for k in ("R_A", "lipschitz_bound", "spectral_product", "sum_term", "rademacher", "input_norm_F"):
            q[f"{tag}.{k}"] = Quantity(float(rep[k]), CLOSED_FORM if k == "input_norm_F" else tol)
        q[f"{tag}.N"] = Quantity(int(rep["N"]), EXACT)
        q[f"{tag}.n_weight_layers"] = Quantity(int(rep["n_weight_layers"]), EXACT)
    return q


def case_alignment(inputs: Path) -> dict[str, Quantity]:
    from ncmargin import theory

    fs = _features(inputs, "features_nc.npz")
    M = _extra(inputs, "features_nc.npz", "etf")
    q = _dict("predictors.", theory.alignment_predictors(fs.features, fs.labels, M), lambda k, v: _by_type(v))
    q["alignment_score_perm"] = Quantity(theory.alignment_score(fs.features, fs.labels, M[[1, 0, 3, 2]]),
                                         CLOSED_FORM)
    q["concentration_bound"] = Quantity(
        theory.concentration_bound(np.array([10, 100, 1000]), 0.5, 6, np.array([1.0, 2.0, 0.5])), CLOSED_FORM)
    # Monte-Carlo deviation probability (seeded): empirical frequencies are count/trials -> exact
    mu = np.array([0.2, -0.1, 0.3])

    def sample(rng, n):
        return mu + rng.uniform(-0.5, 0.5, size=(n, 3))

    rows = theory.concentration_check(sample, mu, [5, 20], [0.1, 0.3], rho=0.8, trials=200, seed=4)
    q["concentration_check.empirical"] = Quantity(np.asarray([r["empirical"] for r in rows]), EXACT)
    q["concentration_check.stderr"] = Quantity(np.asarray([r["stderr"] for r in rows]), CLOSED_FORM)
    q["concentration_check.bound"] = Quantity(np.asarray([r["bound"] for r in rows]), CLOSED_FORM)
    q["concentration_check.bound_holds"] = Quantity(np.asarray([r["bound_holds"] for r in rows]), EXACT)
    return q


def case_svm_comparison(inputs: Path) -> dict[str, Quantity]:
    from ncmargin import theory

    fs = _features(inputs, "features_nc.npz")
    W_star = _extra(inputs, "features_nc.npz", "svm_W")
    q = _dict("", theory.svm_comparison(fs.features, fs.labels, fs.classifier, W_star), lambda k, v: _by_type(v))
    q["angle_deg_to_etf"] = Quantity(theory.angle_deg(fs.classifier, _extra(inputs, "features_nc.npz", "etf")),
                                     CLOSED_FORM)
    return q


def case_claim3_stats(inputs: Path) -> dict[str, Quantity]:
    from ncmargin import theory

    data = json.loads((inputs / "claim3_table.json").read_text())
    T = np.asarray(data["table"])
    q: dict[str, Quantity] = {}

    def add(prefix, d, skip=()):
        for k, v in d.items():
            if k in skip:
                continue
            if isinstance(v, dict):
                add(f"{prefix}{k}.", v)
            elif isinstance(v, (tuple, list)):
                q[prefix + k] = Quantity(np.asarray(v), EXACT)
            elif v is None or isinstance(v, str):
                q[prefix + k] = Quantity(v, EXACT)
            else:
                q[prefix + k] = Quantity(v, _by_type(v))

    add("anova.", theory.two_way_anova(T))
    perm = theory.permutation_test_alignment(T, n_perm=999, seed=0)
    add("permutation.", perm)
    # a permutation p-value is (count + 1)/(n_perm + 1) from a seeded stream: exact (a change means a
    # different count, e.g. a changed numpy Generator stream)
    q["permutation.p_value"] = Quantity(perm["p_value"], EXACT)
    v = theory.alignment_effect_verdict(T, n_perm=999, seed=0)
    add("verdict.", v, skip=("anova",))
    q["verdict.permutation_p_alignment"] = Quantity(v["permutation_p_alignment"], EXACT)
    x = np.asarray(data["x"])
    bs = theory.bootstrap_ci(lambda a, c: float(np.corrcoef(a, c)[0, 1]), x, x ** 3 + 0.5 * x, n_boot=400,
                             seed=3)
    add("bootstrap.", bs)
    t, ang = np.asarray(data["t"]), np.asarray(data["angle"])
    add("kendall.", theory.kendall_trend(ang, t))
    add("spearman.", theory.spearman(ang, t))
    add("fit_inverse_log.", theory.fit_inverse_log(t, ang))
    return q


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    func: Callable[[Path], dict[str, Quantity]]
    inputs: tuple[str, ...] = ()


CASES: dict[str, Case] = {c.name: c for c in (
    Case("etf", "simplex_etf (seed, perm, canonical) and etf_deviation / is_etf", case_etf),
    Case("nc_metrics", "nc_metrics (every key; in-memory, streaming, no classifier) on a stored feature file",
         case_nc_metrics, ("features_nc.npz",)),
    Case("margins", "logits, margins, p_min, pairwise/normalized margins, ce_loss, CE-p_min sandwich",
         case_margins, ("features_nc.npz",)),
    Case("svm_hard", "multiclass_svm hard margin (working set), without and with bias", case_svm_hard,
         ("features_nc.npz",)),
    Case("svm_soft", "multiclass_svm soft margin C=1, C=0.1 on non-separable features", case_svm_soft,
         ("features_soft.npz",)),
    Case("svm_cvxpy", "multiclass_svm method='cvxpy' (hard and soft) on a tiny case", case_svm_cvxpy,
         ("features_tiny.npz",)),
    Case("ufm_svm", "ufm_svm nuclear-norm program (balanced and imbalanced) with certificates", case_ufm_svm),
    Case("ufm_dynamics", "300 steps of UFM gradient dynamics (float64 torch)", case_ufm_dynamics),
    Case("fixed_features_gd", "300 steps of CE gradient descent on fixed features (constant, normalized)",
         case_fixed_features_gd, ("features_nc.npz",)),
    Case("train_digits", "5 epochs of the quick digits MLP, deterministic, 1 thread: log lines and "
                         "last-checkpoint features", case_train_digits),
    Case("bounds", "last_layer_bound on a stored trained checkpoint; margin_bound; spectral complexity",
         case_bounds, ("checkpoint_digits.npz",)),
    Case("network_complexity", "layer spectral and (2,1) norms, spectral complexity R_A of a stored small "
                               "MLP (BatchNorm) and CNN", case_network_complexity, ("models_small.npz",)),
    Case("svm_comparison", "claim-1 numbers: angle and margin ratio of a classifier to the stored SVM "
                           "solution", case_svm_comparison, ("features_nc.npz",)),
    Case("alignment", "alignment predictors, concentration bound and Monte-Carlo check", case_alignment,
         ("features_nc.npz",)),
    Case("claim3_stats", "two-way ANOVA, permutation test, verdict, bootstrap CI, trends on a stored table",
         case_claim3_stats, ("claim3_table.json",)),
)}


def case_names() -> list[str]:
    return list(CASES)


def get_case(name: str) -> Case:
    if name not in CASES:
        raise ValueError(f"unknown regression case {name!r}; choose one of {', '.join(CASES)} "
                         "(`ncmargin regress --list`)")
    return CASES[name]
