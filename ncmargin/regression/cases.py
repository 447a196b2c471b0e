"""The cases of the numeric regression suite and their tolerance classes (docs/theory.md §11).

Each case is a small, deterministic, CPU-fast computation through the PUBLIC functions of ncmargin that
returns ``{quantity: Quantity(value, Tol)}``. Inputs come from ``goldens/inputs/`` (stored once, see
:func:`make_inputs`), so a case measures drift of the computation, never of its input.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .engine import Quantity, Tol
from .inputs import INPUT_FILES, TRAIN_OVERRIDES, make_inputs, small_models
from .tolerances import (
    CLOSED_FORM,
    EXACT,
    GD_FLOAT64,
    POWER_ITERATION,
    TRAIN_FLOAT32_ARRAY,
    TRAIN_FLOAT32_SCALAR,
    svm_certified_tols,
    ufm_certified_tol,
)

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


def case_network_complexity(inputs: Path) -> dict[str, Quantity]:
    import torch

    from ncmargin.empirical.complexity import network_spectral_complexity

    q: dict[str, Quantity] = {}
    with np.load(inputs / "models_small.npz", allow_pickle=False) as z:
        stored = {k: z[k] for k in z.files}
    for tag, model in small_models().items():
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
