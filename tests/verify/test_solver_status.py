"""Solver status is checked: an SVM that failed or is not certified optimal makes the verdict built on it
inconclusive with the reason (claims 1a, 1b, 1c), never used silently."""

from __future__ import annotations

import copy
import enum

import numpy as np
import pytest

from ncmargin.empirical.analysis import analyze_run
from ncmargin.empirical.claims.claim1a import verdicts_1a
from ncmargin.empirical.claims.claim1b import verdicts_1b
from ncmargin.empirical.claims.claim1c import verdicts_1c
from ncmargin.empirical.claims.verdicts import solver_problem

from .synth import make_run
from .test_verdicts import _fixed_records, _ufm_records, by_id


class Status(str, enum.Enum):  # the shape of the solvers' status enum (a str-enum)
    OPTIMAL = "optimal"
    INACCURATE = "inaccurate"


def test_solver_problem_reads_strings_and_enums():
    assert solver_problem("optimal", "x") is None and solver_problem(Status.OPTIMAL, "x") is None
    assert solver_problem(str(Status.OPTIMAL), "x") is None  # "Status.OPTIMAL" as str() writes it
    why = solver_problem(Status.INACCURATE, "epoch 7")
    assert "epoch 7" in why and "inaccurate" in why
    assert "None" in solver_problem(None, "x")


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    return analyze_run(make_run(tmp_path_factory.mktemp("run") / "toward", mode="toward"))


def test_claim_1c_inaccurate_svm_is_inconclusive(analysis):
    ok = by_id(verdicts_1c(analysis, {"alpha": 0.05, "min_points": 5}))
    assert ok["1c.angle_trend"]["verdict"] == "pass" and "solver_problems" not in ok["1c.angle_trend"]["detail"]
    bad = copy.deepcopy(analysis)
    row = next(r for r in bad["checkpoints"] if r.get("svm"))
    row["svm"]["status"] = "inaccurate"
    vs = by_id(verdicts_1c(bad, {"alpha": 0.05, "min_points": 5}))
    for k in ("1c.angle_trend", "1c.margin_ratio_trend"):
        assert vs[k]["verdict"] == "inconclusive"
        assert vs[k]["detail"]["solver_problems"] == [
            {"epoch": row["epoch"], "reason": f"SVM at epoch {row['epoch']} not solved to optimality "
                                              "(status 'inaccurate'): its solution is not used"}]
        assert row["epoch"] not in vs[k]["detail"]["epochs"]  # the uncertified solution is not used
    # a solver failure at a terminal checkpoint (not a skip) is reported the same way
    bad = copy.deepcopy(analysis)
    row = next(r for r in bad["checkpoints"] if r.get("svm"))
    row["svm"], row["svm_error"] = None, "RuntimeError: solver crashed"
    vs = by_id(verdicts_1c(bad, {"alpha": 0.05, "min_points": 5}))
    assert vs["1c.angle_trend"]["verdict"] == "inconclusive"
    assert "solver crashed" in vs["1c.angle_trend"]["detail"]["reason"]


def test_claim_1a_inaccurate_svm_is_inconclusive():
    t = np.geomspace(2, 1e5, 20)
    good = _fixed_records(3.0 + 20.0 / np.log(t))
    vs = by_id(verdicts_1a("syn", good, {}, svm_status=Status.INACCURATE))
    for k in ("1a.angle_trend", "1a.final_angle"):
        assert vs[k]["verdict"] == "inconclusive" and "inaccurate" in vs[k]["detail"]["reason"]
    assert by_id(verdicts_1a("syn", good, {}, svm_status=Status.OPTIMAL))["1a.final_angle"]["verdict"] == "pass"


def test_claim_1b_uncertified_optimum_is_inconclusive():
    vs = by_id(verdicts_1b(_ufm_records(), optimum=1.0, optimum_status="inaccurate"))
    assert vs["1b.normalized_margin_optimum"]["verdict"] == "inconclusive"
    assert "nuclear-norm" in vs["1b.normalized_margin_optimum"]["detail"]["reason"]
    assert vs["1b.sandwich"]["verdict"] == "pass"  # verdicts that do not use the optimum stand
