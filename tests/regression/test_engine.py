"""The regression engine itself: tolerance semantics, golden I/O, keep-going behaviour, the CLI."""

import json
import math
import shutil

import numpy as np
import pytest

from ncmargin import regression as R
from ncmargin.cli import main
from ncmargin.regression import cases as C
from ncmargin.regression.engine import Quantity, Tol, compare, compare_all
from ncmargin.regression.golden import load_golden, save_golden

REL = Tol("rel", rtol=1e-10, atol=1e-12, why="test: closed form")


def test_tolerance_needs_a_reason_and_valid_kind():
    with pytest.raises(ValueError, match="justification"):
        Tol("rel", rtol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        Tol("blanket", rtol=1e-6, why="x")
    with pytest.raises(ValueError, match="exact"):
        Tol("exact", rtol=1e-6, why="x")


def test_exact_scalars_and_arrays():
    ex = C.EXACT
    assert compare("c", "n", 3, 3, ex).ok
    r = compare("c", "n_support", 8, 9, ex)
    assert not r.ok and "n_support" in r.message() and "8" in r.message() and "9" in r.message()
    assert "exact" in r.message()
    assert not compare("c", "status", "optimal", "inaccurate", ex).ok
    assert not compare("c", "flag", True, False, ex).ok
    assert compare("c", "s", np.array([1, 4, 7]), np.array([1, 4, 7]), ex).ok
    r = compare("c", "support", np.array([1, 4, 7]), np.array([1, 5, 7]), ex)
    assert not r.ok and "[1]" in r.golden
    assert not compare("c", "support", np.array([1, 4]), np.array([1, 4, 7]), ex).ok  # shape
    assert compare("c", "acc", np.array([0.5, np.nan]), np.array([0.5, np.nan]), ex).ok


def test_rel_tolerance_edges():
    g = 0.052066621332616650
    assert compare("c", "q", g, g * (1 + 5e-11), REL).ok
    r = compare("c", "q", g, g * (1 + 1e-9), REL)
    assert not r.ok and "rel 1e-10" in r.tolerance
    assert compare("c", "q", 0.0, 5e-13, REL).ok          # absolute floor near 0
    assert not compare("c", "q", 0.0, 5e-12, REL).ok
    assert compare("c", "q", math.nan, math.nan, REL).ok
    assert not compare("c", "q", math.nan, 1.0, REL).ok
    a = np.array([[np.nan, 1.0], [2.0, np.nan]])
    assert compare("c", "A", a, a * (1 + 1e-12), REL).ok
    b = a.copy()
    b[1, 0] = 2.1
    r = compare("c", "A", a, b, REL)
    assert not r.ok and "[1,0]" in r.golden and "2.1" in r.now
    b = a.copy()
    b[0, 0] = 0.0                                          # NaN moved
    assert not compare("c", "A", a, b, REL).ok
    assert not compare("c", "q", 1.0, np.array([1.0]), REL).ok   # scalar vs array


def test_norm_and_certified_tolerances():
    t = Tol("norm", rtol=1e-5, why="test: float32")
    g = np.ones((10, 3), dtype=np.float32)
    assert compare("c", "F", g, g + 1e-6, t).ok
    assert not compare("c", "F", g, g + 1e-4, t).ok
    cert_now = Tol("rel", atol=1e-9, certified=True, why="test cert")
    cert_golden = Tol("rel", atol=2e-9, certified=True, why="test cert")
    assert compare("c", "obj", 1.0, 1.0 + 2.9e-9, cert_now, cert_golden).ok   # bounds add up
    assert not compare("c", "obj", 1.0, 1.0 + 3.1e-9, cert_now, cert_golden).ok
    assert not compare("c", "obj", 1.0, 1.0 + 2.9e-9, cert_now, None).ok


def test_compare_all_keeps_going_and_reports_new_and_missing():
    golden = {"a": (1.0, REL), "b": (2, C.EXACT), "gone": (3.0, REL)}
    now = {"a": Quantity(1.5, REL), "b": Quantity(3, C.EXACT), "new": Quantity(4.0, REL)}
    rows = compare_all("case", golden, now)
    by = {r.quantity: r for r in rows}
    assert set(by) == {"a", "b", "gone", "new"}
    assert not by["a"].ok and not by["b"].ok and not by["gone"].ok   # drift, drift, a number disappeared
    assert by["new"].ok and by["new"].verdict == "new" and "--update" in by["new"].detail  # coverage gap


def test_golden_roundtrip_and_torn_pair(tmp_path):
    q = {"f": Quantity(0.1 + 0.2, REL), "nan": Quantity(math.nan, REL), "inf": Quantity(-math.inf, REL),
         "i": Quantity(7, C.EXACT), "b": Quantity(True, C.EXACT), "s": Quantity("optimal", C.EXACT),
         "none": Quantity(None, C.EXACT), "A": Quantity(np.arange(6.0).reshape(2, 3) / 3, REL),
         "I": Quantity(np.array([3, 1]), C.EXACT)}
    _jpath, npath = save_golden("demo", "demo case", q, tmp_path)
    got, meta = load_golden("demo", tmp_path)
    assert got["f"][0] == 0.1 + 0.2 and math.isnan(got["nan"][0]) and got["inf"][0] == -math.inf
    assert got["i"][0] == 7 and got["b"][0] is True and got["s"][0] == "optimal" and got["none"][0] is None
    np.testing.assert_array_equal(got["A"][0], q["A"].value)
    assert got["A"][1] == REL
    for k in ("numpy", "scipy", "torch", "cvxpy", "clarabel", "python", "platform", "ncmargin"):
        assert k in meta["versions"]
    rows = compare_all("demo", got, q)
    assert all(r.ok for r in rows)
    # a golden .npz that does not match the sha256 recorded in the JSON is refused
    np.savez(npath, A=np.zeros((2, 3)), I=np.array([3, 1]))
    with pytest.raises(ValueError, match="sha256"):
        load_golden("demo", tmp_path)
    with pytest.raises(FileNotFoundError, match="--update"):
        load_golden("absent", tmp_path)


@pytest.fixture
def golden_copy(tmp_path):
    """A private copy of the packaged goldens (with inputs) for the CLI tests."""
    d = tmp_path / "goldens"
    shutil.copytree(R.GOLDEN_DIR, d)
    return d


def _perturb_golden(d, case, quantity, factor):
    p = d / f"{case}.json"
    doc = json.loads(p.read_text())
    doc["quantities"][quantity]["value"] *= factor
    p.write_text(json.dumps(doc))


def test_suite_keeps_going_past_failures_and_crashes(golden_copy, monkeypatch):
    _perturb_golden(golden_copy, "nc_metrics", "nc1_topk", 1.001)
    _perturb_golden(golden_copy, "nc_metrics", "cdnv", 0.999)

    def boom(inputs):
        raise RuntimeError("deliberate")

    monkeypatch.setitem(C.CASES, "boom", C.Case("boom", "crashes", boom))
    save_golden("boom", "crashes", {}, golden_copy)
    results = R.run_suite(["nc_metrics", "boom", "etf"], golden_copy)
    by = {r.case: r for r in results}
    assert [f.quantity for f in by["nc_metrics"].failures] == ["nc1_topk", "cdnv"]
    assert "RuntimeError: deliberate" in by["boom"].error
    assert by["etf"].ok
    rep = by["nc_metrics"].failure_report()
    assert "nc_metrics / nc1_topk: golden" in rep and "tolerance rel 1e-10" in rep


def test_cli_table_failure_update(golden_copy, capsys):
    assert main(["regress", "--only", "etf", "--golden-dir", str(golden_copy)]) == 0
    out = capsys.readouterr().out
    for col in ("case", "quantity", "golden", "now", "difference", "tolerance", "verdict"):
        assert col in out.splitlines()[0]
    _perturb_golden(golden_copy, "etf", "dev_perturbed.gram_error", 1.01)
    assert main(["regress", "--only", "etf,alignment", "--golden-dir", str(golden_copy)]) == 1
    out = capsys.readouterr().out
    assert "FAIL etf / dev_perturbed.gram_error: golden" in out
    assert "1 case(s) failed (etf)" in out
    assert main(["regress", "--update", "--only", "etf", "--golden-dir", str(golden_copy)]) == 0
    out = capsys.readouterr().out
    assert "1 quantities changed" in out and "dev_perturbed.gram_error" in out
    assert out.splitlines()[3].rstrip().endswith("CHANGED")  # beyond tolerance, flagged in the table
    assert main(["regress", "--only", "etf", "--golden-dir", str(golden_copy)]) == 0
    assert main(["regress", "--update", "--only", "etf", "--golden-dir", str(golden_copy)]) == 0
    assert "no quantity changed" in capsys.readouterr().out


def test_cli_list_and_unknown_case(capsys):
    assert main(["regress", "--list"]) == 0
    assert "train_digits" in capsys.readouterr().out
    assert main(["regress", "--only", "nope"]) == 2
    assert "unknown regression case 'nope'" in capsys.readouterr().err


def test_missing_golden_is_a_failure_with_the_fix(tmp_path):
    res = R.run_case("etf", tmp_path)
    assert not res.ok and "--update --only etf" in res.error


def test_stored_tolerances_are_typed():
    """Integers, booleans and strings are compared exactly; floats never exactly by accident."""
    for name in R.case_names():
        golden, _ = load_golden(name)
        for q, (v, tol) in golden.items():
            if isinstance(v, (bool, int, str)) or v is None:
                assert tol.kind == "exact", (name, q)
            if isinstance(v, np.ndarray) and v.dtype.kind in "iub":
                assert tol.kind == "exact", (name, q)
            assert tol.why, (name, q)


def test_cli_missing_golden_dir_is_one_clear_error(tmp_path, capsys):
    # not 15 "no golden" failures: one line naming the directory and the two ways out, exit 2
    missing = tmp_path / "nope"
    assert main(["regress", "--only", "etf", "--golden-dir", str(missing)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and str(missing) in err[0] and "--update" in err[0]
    assert not missing.exists()
