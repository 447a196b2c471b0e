"""analyze_run on tiny synthetic run directories (tests/verify/synth.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ncmargin.empirical.analysis import SCHEMA, analyze_run, load_analysis, terminal_rows
from ncmargin.solvers import multiclass_svm
from ncmargin.theory import margins
from ncmargin.theory.compare import angle_deg, augment

from .synth import make_run


@pytest.fixture(scope="module")
def toward(tmp_path_factory):
    rd = make_run(tmp_path_factory.mktemp("runs") / "toward", mode="toward")
    return rd, analyze_run(rd)


def test_schema_and_terminal_phase(toward):
    rd, a = toward
    assert a["schema"] == SCHEMA and load_analysis(rd)["schema"] == SCHEMA
    assert a["onset_epoch"] == 1  # epoch 0 holds a random classifier below 100% train accuracy
    assert [r["epoch"] for r in a["checkpoints"]] == [0, 1, 2, 4, 8, 16, 32, 64]
    assert [r["terminal"] for r in a["checkpoints"]] == [False] + [True] * 7
    json.dumps(json.loads((rd / "analysis.json").read_text()), allow_nan=False)  # strict JSON on disk
    first = a["checkpoints"][0]
    assert first["svm"] is None and "skipped" in first["svm_error"]


def test_numbers_match_independent_computation(toward):
    rd, a = toward
    row = a["checkpoints"][-1]
    d = np.load(rd / "checkpoints" / "epoch_0064.npz")
    H, y, W, b = d["train_features"], d["train_labels"], d["classifier"], d["bias"]
    sol = multiclass_svm(H, y, bias=True)
    # angle to the SVM solution, recomputed here from the saved arrays (float64; solver tol 1e-8)
    assert row["svm"]["angle_deg"] == pytest.approx(angle_deg(augment(W, b), augment(sol.W, sol.b)), abs=1e-5)
    pm = margins(H, y, W, b).min()
    assert row["p_min"] == pytest.approx(pm, rel=1e-12)
    ratio = pm / np.linalg.norm(augment(W, b)) * np.linalg.norm(augment(sol.W, sol.b))
    assert row["svm"]["margin_ratio"] == pytest.approx(ratio, rel=1e-6)
    assert row["train_error"] == 0.0 and row["gap"] == pytest.approx(row["test_error"])


def test_svm_comparison_behaves(toward):
    _, a = toward
    rows = terminal_rows(a)
    ang = [r["svm"]["angle_deg"] for r in rows]
    ratio = [r["svm"]["margin_ratio"] for r in rows]
    assert all(np.diff(ang) < 0) and all(np.diff(ratio) > 0)  # the constructed run turns toward W*
    # W* maximizes p_min/||W||: the ratio is <= 1 up to the solver's tolerance
    assert max(ratio) <= 1 + 1e-6
    assert all(r["svm"]["status"] == "optimal" for r in rows)


def test_bound_terms(toward):
    _, a = toward
    for r in terminal_rows(a):
        b = r["bound"]
        ll = b["last_layer"]
        # the best-gamma bound includes gamma = p_min in its grid, so it is never worse
        assert ll["best"]["total"] <= ll["at_pmin"]["total"] + 1e-12
        assert ll["at_pmin"]["gamma"] == pytest.approx(r["p_min"])
        assert set(ll["at_pmin"]) >= {"empirical_margin_loss", "complexity", "uniform_gamma", "confidence", "total"}
        assert b["frozen"]["frozen_at_epoch"] == 1
        # no model weights in the synthetic run: the spectral bound says why instead of a number
        assert "not saved" in b["spectral"]["error"]
    # frozen complexity at the onset, gamma = p_min(t) grows: the frozen bound shrinks over the phase
    fr = [r["bound"]["frozen"]["at_pmin"]["complexity"] for r in terminal_rows(a)]
    assert all(np.diff(fr) < 0)


def test_reuse_and_force(tmp_path):
    rd = make_run(tmp_path / "r", mode="toward", epochs=(0, 1, 2, 4))
    a1 = analyze_run(rd)
    mtime = (rd / "analysis.json").stat().st_mtime_ns
    a2 = analyze_run(rd)
    assert a2["reused_checkpoints"] == 4
    assert [r["svm"] for r in a2["checkpoints"]] == [r["svm"] for r in a1["checkpoints"]]
    assert (rd / "analysis.json").stat().st_mtime_ns >= mtime
    a3 = analyze_run(rd, force=True)
    assert a3["reused_checkpoints"] == 0
    a4 = analyze_run(rd, svm_epochs="all")  # other settings: recomputed
    assert a4["reused_checkpoints"] == 0 and a4["checkpoints"][0]["svm"] is not None


def test_missing_run_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoints"):
        analyze_run(tmp_path)
    with pytest.raises(ValueError, match="svm_epochs"):
        rd = make_run(tmp_path / "r", epochs=(0, 1))
        analyze_run(rd, svm_epochs="sometimes")
