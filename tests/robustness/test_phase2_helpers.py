"""Helpers built for the verify/sweep wiring of issue 12 (phase 2): verdict merging, exit status and
error isolation. They are pure and tested here; /work/notes/i12_wiring.md says where they are called."""


import numpy as np
import pytest

from ncmargin.errors import isolated
from ncmargin.io import load_features
from ncmargin.verdict_merge import exit_status, failed_verdicts, merge_verdicts


def _v(claim, vid, verdict="pass", detail=None):
    return {"claim": claim, "id": vid, "statement": "", "statistic": "", "value": 1.0, "threshold": "",
            "verdict": verdict, "runs": [], "detail": detail or {}}


OLD = {"schema": "s", "preset": "quick", "created": "T0", "claims": ["1a", "1b", "1c", "2"],
       "verdicts": [_v("1a", "1a.angle"), _v("1b", "1b.ratio"), _v("1c", "1c.a"), _v("1c", "1c.b"),
                    _v("2", "2.bound")], "errors": {}}


def test_partial_claims_run_merges_instead_of_overwriting():
    new = {"schema": "s", "preset": "quick", "created": "T1", "claims": ["1c"],
           "verdicts": [_v("1c", "1c.a", "fail")], "errors": {}}
    doc = merge_verdicts(OLD, new)
    assert [v["id"] for v in doc["verdicts"]] == ["1a.angle", "1b.ratio", "1c.a", "2.bound"]
    assert next(v for v in doc["verdicts"] if v["id"] == "1c.a")["verdict"] == "fail"  # replaced
    assert doc["claims"] == ["1a", "1b", "1c", "2"] and doc["merged"]["kept"]["2"] == "T0"
    assert exit_status(doc) == 0


def test_merge_refuses_other_presets_and_flags_errors():
    with pytest.raises(ValueError, match="another --out"):
        merge_verdicts(OLD, {"preset": "paper", "verdicts": [], "claims": ["1c"]})
    new = {"preset": "quick", "claims": ["2"], "verdicts": [_v("2", "2.error", "inconclusive", {"error": "x"})],
           "errors": {"2": "ValueError: run digits_wd0 checkpoint 0004: truncated"}}
    doc = merge_verdicts(OLD, new)
    assert failed_verdicts(doc) == ["2.error"] and exit_status(doc) == 1
    assert merge_verdicts(None, new)["verdicts"] == new["verdicts"]


def test_isolated_keeps_a_bad_file_to_itself(tmp_path):
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    np.savez(good, features=np.eye(3), labels=np.arange(3))
    bad.write_bytes(b"PK\x03\x04 truncated")
    out = {p.name: isolated(load_features, p, what=p.name) for p in (good, bad)}
    assert out["good.npz"][1] is None and out["good.npz"][0].features.shape == (3, 3)
    res, err = out["bad.npz"]
    assert res is None and "bad.npz" in err["error"] and err["what"] == "bad.npz"
    # a bug is not swallowed
    with pytest.raises(TypeError):
        isolated(lambda: (_ for _ in ()).throw(TypeError("bug")))
