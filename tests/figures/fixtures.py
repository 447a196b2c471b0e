"""Tiny synthetic results directories in the documented formats (docs/formats.md, docs/results.md).

The numbers are smooth, deterministic stand-ins shaped like real runs (accuracy saturating, loss
decaying, margins growing) so that figures drawn from them can also be looked at."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ncmargin.store import Analysis, Claim1a, Claim1b

NC_KEYS = ("nc1_topk", "nc2_equinorm_means", "nc2_equiangular_means", "nc3_self_duality",
           "nc4_ncc_mismatch")


def write_run(run_dir: Path, *, epochs: int = 30, onset: int = 8, wd: float = 5e-4, seed: int = 0,
              dataset: str = "digits", alignment=None, with_analysis: bool = True) -> Path:
    run_dir = Path(run_dir)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    cfg = {"config": {"dataset": dataset, "model": "mlp", "head": "learned", "weight_decay": wd,
                      "seed": seed, "epochs": epochs}, "seed": seed, "versions": {"numpy": np.__version__}}
    if alignment is not None:
        cfg["config"]["alignment"] = alignment
    (run_dir / "config.json").write_text(json.dumps(cfg))
    lines = []
    for e in range(1, epochs + 1):
        s = 1.0 + 0.1 * seed
        train_acc = 1.0 if e >= onset else 1.0 - 0.5 * (onset - e) / onset - 0.01
        row = {"epoch": e, "loss": 2.0 * math.exp(-0.35 * e * s), "train_acc": train_acc,
               "test_acc": 0.9 + 0.06 * (1 - math.exp(-e / 6)) + 0.001 * seed,
               "test_loss": 0.1 + 1.5 * math.exp(-0.3 * e), "p_min": -3.0 + 0.5 * (e - 1) * s,
               "normalized_margin": (-3.0 + 0.5 * (e - 1) * s) / (10 + e), "lr": 0.1,
               "nc1_topk": 2.0 * math.exp(-0.1 * e), "nc2_equinorm_means": 0.3 / e,
               "nc2_equiangular_means": 0.2 / math.sqrt(e), "nc3_self_duality": 0.5 * math.exp(-0.05 * e),
               "nc4_ncc_mismatch": max(0.0, 0.05 - 0.002 * e), "seconds": 0.1 * e}
        if e == 3:
            row["test_loss"] = None  # optional value written as null
        lines.append(json.dumps(row))
    (run_dir / "log.jsonl").write_text("\n".join(lines) + "\n")
    if with_analysis:
        write_analysis(run_dir, epochs=epochs, onset=onset, wd=wd, seed=seed, dataset=dataset)
    return run_dir


def bound_terms(e: int, scale: float) -> dict:
    emp, comp = 0.0, scale * 3.0 / math.sqrt(e)
    ll, conf = 0.05 / math.sqrt(e), 0.04
    total = emp + comp + ll + conf
    return {"empirical_margin_loss": emp, "complexity": comp, "uniform_gamma": ll, "confidence": conf,
            "total": total, "vacuous": total > 1, "gamma": 0.5 * e, "Gamma": 40.0, "N": 900, "K": 10,
            "delta": 0.05, "rademacher": 0.01}


def write_analysis(run_dir: Path, *, epochs: int, onset: int, wd: float = 5e-4, seed: int = 0,
                   dataset: str = "digits") -> Path:
    cps = []
    ep_list = sorted({1, 2, 4, onset, 12, 16, 23, epochs} & set(range(1, epochs + 1)))
    for e in ep_list:
        term = e >= onset
        te = 0.1 - 0.06 * (1 - math.exp(-e / 6))
        tr = 0.0 if term else 0.3 * (onset - e) / onset
        cp = {"epoch": e, "terminal": term, "train_acc": 1 - tr, "test_acc": 1 - te, "train_error": tr,
              "test_error": te, "gap": te - tr, "train_loss": 2.0 * math.exp(-0.35 * e),
              "test_loss": 0.1 + 1.5 * math.exp(-0.3 * e),
              "p_min": -3.0 + 0.5 * (e - 1), "normalized_margin": (-3.0 + 0.5 * (e - 1)) / (10 + e),
              "weight_norm": 1.0 + 0.1 * e, "feature_norm_max": 10.0 + e, "num_train": 900, "num_test": 300,
              "num_classes": 10,
              "svm": ({"status": "optimal", "objective": 10.0, "svm_margin": 0.3,
                       "angle_deg": 40.0 / math.log(e + 1.5), "margin_ratio": 1 - 0.5 / math.sqrt(e),
                       "duality_gap": 1e-9, "max_violation": 0.0, "n_support": 30, "seconds": 0.1,
                       "bias": False}
                      if term else None),
              "svm_error": None if term else "not separable",
              "nc": {"nc1_topk": 2.0 * math.exp(-0.1 * e), "nc3_self_duality": 0.5 * math.exp(-0.05 * e)},
              "bound": {"delta": 0.05,
                        "last_layer": {"rademacher": 0.01, "Gamma": 40.0,
                                       "at_pmin": bound_terms(e, 1.0) if term else None,
                                       "best": bound_terms(e, 0.7) if term else None},
                        "spectral": ({"rademacher": 3.0, "Gamma": 40.0, "at_pmin": bound_terms(e, 300.0),
                                      "best": bound_terms(e, 200.0), "complexity": {"layers": 3}}
                                     if term else {"error": "not computed"})}}
        cps.append(cp)
    rec = Analysis(run_dir=str(run_dir), run_id=Path(run_dir).name,
                   meta={"dataset": dataset, "model": "mlp", "head": "learned", "weight_decay": wd, "seed": seed},
                   onset_epoch=onset, onset_source="log.jsonl",
                   settings={"svm_tol": 1e-8, "delta": 0.05, "spectral": True, "version": 1,
                             "svm_epochs": "terminal"},
                   frozen_complexity=None, checkpoints=cps)
    return rec.write(run_dir)  # the store's record: a fixture cannot drift from the format


def claim1a_obj(n_exp: int = 2) -> dict:
    steps = np.concatenate([[0], np.unique(np.round(np.logspace(0, 5, 25)).astype(int))])
    exps = []
    for j in range(n_exp):
        recs = []
        for t in steps:
            lt = math.log(t + 1.0)
            if t == 0:  # W = 0 at step 0: angle and ratio undefined (null), as the real writer does
                recs.append({"step": 0, "loss": math.log(4), "p_min": 0.0, "normalized_margin": None,
                             "angle_deg": None, "margin_ratio": None})
                continue
            recs.append({"step": int(t), "loss": 1.0 / (t + 1.0), "p_min": lt, "normalized_margin": 0.1 * lt / (1 + lt),
                         "angle_deg": 2.0 + (20.0 + 5 * j) / lt, "margin_ratio": 1.0 - 0.8 / (1 + lt)})
        exps.append({"name": ["synthetic", "digits features"][j % 2], "N": 100, "d": 10, "K": 4,
                     "bias_as_constant_feature": False, "svm": {"objective": 1.0, "status": "optimal"},
                     "schedule": "normalized", "steps": int(steps[-1]), "lr": None, "records": recs,
                     "fit_inverse_log": {"a": 2.0, "c": 20.0 + 5 * j, "r2": 0.99, "c_positive": True, "n": 20}})
    return dict(Claim1a(experiments=exps))  # the store's record checks the fixture against the format


def claim1b_obj() -> dict:
    steps = np.concatenate([[0], np.unique(np.round(np.logspace(0, 4, 20)).astype(int))])
    K, n = 4, 5
    opt = 1.0 / ((K - 1) * math.sqrt(n))
    recs = []
    for t in steps:
        L = 1.3 / (1.0 + 0.5 * t)
        pmin = math.log(1 + t) - 0.5
        recs.append({"step": int(t), "loss": L, "p_min": pmin,
                     "normalized_margin": opt * (1 - 1 / (1 + math.log(1 + t))),
                     "normalized_margin_optimal": opt,
                     "loss_lower": L / 3, "loss_upper": 2 * L, "pmin_lower": pmin - 1.0, "pmin_upper": pmin + 1.0,
                     "sandwich_holds": True, "nc1_topk": 1.0 / (1 + t), "nc2_equinorm_means": 0.1 / (1 + t),
                     "nc3_self_duality": 0.3 / (1 + t) ** 0.5, "nc4_ncc_mismatch": 0.0})
    return dict(Claim1b(K=K, n=n, d=None, records=recs, nuclear_norm_objective=(K - 1) * math.sqrt(n),
                        normalized_margin_optimum=opt, certificate={"duality_gap": 1e-9}))


def sweep_obj(n_align: int = 3, seeds=(0, 1, 2)) -> dict:
    rng = np.random.default_rng(0)
    runs = []
    for a in range(n_align):
        for s in seeds:
            acc = 0.95 + 0.01 * a + 0.003 * rng.standard_normal()
            runs.append({"run_dir": f"sweep/a{a}_s{s}", "alignment": f"a{a}", "seed": s,
                         "reached_tpt": not (a == 0 and s == seeds[-1]), "onset_epoch": 10,
                         "final_train_acc": 1.0, "final_test_acc": acc, "final_train_loss": 1e-4,
                         "predictors": {"alignment_score": float(10 ** (3 - a + 0.1 * rng.standard_normal())),
                                        "normalized_margin_mean": 0.2 + 0.05 * a + 0.01 * rng.standard_normal(),
                                        "normalized_margin_min": 0.05 + 0.02 * a}})
    return {"schema": "ncmargin.sweep/1",
            "alignments": [{"id": f"a{a}", "perm": list(range(4)), "rotation_seed": a} for a in range(n_align)],
            "seeds": list(seeds), "runs": runs, "excluded": [{"run": "a0_s2", "reason": "no TPT"}],
            "stats": {"anova": {"p_alignment": 0.001, "eta2_alignment": 0.8, "eta2_seed": 0.05},
                      "permutation": {"p_value": 0.002, "n_perm": 999},
                      "predictor_correlations": {
                          "normalized_margin_mean": {"rho": 1.0, "p": 0.0, "ci_low": 1.0, "ci_high": 1.0,
                                                     "unit": "alignment means",
                                                     "runs": {"rho": 0.9, "p": 0.001, "ci_low": 0.7,
                                                              "ci_high": 1.0, "unit": "runs"}},
                          "alignment_score": {"rho": None, "p": None, "unit": "alignment means",
                                              "runs": {"rho": None, "p": None, "unit": "runs"}}}},
            "concentration": concentration_obj()}


def concentration_obj() -> dict:
    """sweep.json 'concentration' (docs/theory.md §8 check): fresh and trained tables."""
    def pts(trained: bool):
        out = []
        for n in (10, 40, 160):
            for eps in (0.1, 0.4):
                p = math.exp(-n * eps * eps / 2)
                r = {"n": n, "eps": eps, "empirical": p, "stderr": math.sqrt(p * (1 - p) / 500),
                     "bound": 4 * math.exp(-n * eps * eps / 8), "bound_holds": True, "nontrivial": False}
                if trained:
                    r.update(empirical=min(1.0, 2 * p), empirical_fresh=p, stderr_fresh=0.01)
                out.append(r)
        return out
    return {"fresh": pts(False), "fresh_info": {"d": 2, "rho": 1.0}, "trained": pts(True),
            "summary": {"fresh": {"points": 6, "held": 6, "nontrivial_points": 2, "held_nontrivial": 2},
                        "trained": {"points": 6, "held": 5, "nontrivial_points": 2, "held_nontrivial": 1}}}


def write_verify_dir(out: Path) -> Path:
    out = Path(out)
    write_run(out / "runs" / "digits_wd0", wd=0.0, onset=10)
    write_run(out / "runs" / "digits_wd5e-4", wd=5e-4, onset=8)
    (out / "runs" / "digits_wd5e-4" / "analysis.json").unlink()  # one run not analysed: bound skipped
    (out / "claim1a").mkdir(parents=True)
    (out / "claim1a" / "fixed_features.json").write_text(json.dumps(claim1a_obj()))
    (out / "claim1b").mkdir(parents=True)
    (out / "claim1b" / "ufm.json").write_text(json.dumps(claim1b_obj()))
    (out / "sweep").mkdir(parents=True)
    (out / "sweep" / "sweep.json").write_text(json.dumps(sweep_obj()))
    return out
