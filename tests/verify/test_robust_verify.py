"""Issue 12 phase 2 in `ncmargin verify`: one writer per --out, run names, a bad file costs only itself,
partial --claims merges, failed runs, numeric preset settings (tiny synthetic runs: seconds)."""

from __future__ import annotations

import json
import math
import os
import threading

import pytest

from ncmargin.cli import main
from ncmargin.pipeline import core as V
from ncmargin.runlock import RunLock
from ncmargin.store import mark_failed

from . import synth
from .test_verify import PRESET

NO_1A = {k: v for k, v in PRESET.items() if k != "claim1a"}


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(V, "default_train", synth.fake_train)
    monkeypatch.setattr(V.VerifyContext, "train_fn", synth.fake_train)
    synth.CALLS.clear()
    return synth.CALLS


def _preset(tmp_path, preset=None, name="p.json"):
    p = tmp_path / name
    p.write_text(json.dumps(NO_1A if preset is None else preset))
    return str(p)


def _verdicts(out):
    return {v["id"]: v for v in json.loads((out / "verdicts.json").read_text())["verdicts"]}


def test_second_verify_on_one_out_is_refused(tmp_path, fake, capsys):
    preset, out = _preset(tmp_path), tmp_path / "out"
    held, release = threading.Event(), threading.Event()

    def holder():
        with RunLock(out, purpose="ncmargin verify", log=lambda m: None):
            held.set()
            release.wait(30)

    t = threading.Thread(target=holder)
    t.start()
    try:
        held.wait(10)
        assert main(["verify", "--preset", preset, "--out", str(out), "--claims", "1c", "--no-figures"]) == 2
    finally:
        release.set()
        t.join()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"is in use by pid {os.getpid()}" in err and "Traceback" not in err
    assert not (out / "verdicts.json").exists() and not (out / "runs").exists() and fake == []
    # the lock released, the same command runs, and each progress line is printed once
    assert main(["verify", "--preset", preset, "--out", str(out), "--claims", "1c", "--no-figures"]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[verify]")]
    assert lines and len(lines) == len(set(lines))
    assert sorted(fake) == sorted(str(out / "runs" / r) for r in ("wd0", "wd"))


def test_sweep_refuses_a_locked_directory(tmp_path):
    from ncmargin.empirical.claims.claim3.sweep import run_sweep
    from ncmargin.runlock import LockHeldError

    with RunLock(tmp_path / "sw", log=lambda m: None), pytest.raises(LockHeldError, match="is in use by pid"):
        run_sweep("sweep_quick", tmp_path / "sw", alignments=2, seeds=1, concentration=False, log=lambda m: None,
                  train_fn=lambda *a, **k: pytest.fail("trained under another writer's lock"))
    assert not (tmp_path / "sw" / "plan").exists()


def test_preset_run_name_cannot_leave_out(tmp_path, fake, capsys):
    bad = {**NO_1A, "runs": {"../../x_trav": PRESET["runs"]["wd0"]}, "claim1c": {"runs": ["../../x_trav"]},
           "claim2": {"runs": ["../../x_trav"]}}
    out = tmp_path / "a" / "b" / "out"
    assert main(["verify", "--preset", _preset(tmp_path, bad), "--out", str(out), "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert "'../../x_trav' is not allowed" in err and "run name in verify preset" in err
    assert not out.exists() and not (tmp_path / "a" / "x_trav").exists() and fake == []
    assert [p for p in tmp_path.rglob("*") if p.name != "p.json"] == []  # nothing written anywhere


def test_claim_naming_an_unknown_run_is_refused(tmp_path):
    with pytest.raises(ValueError, match="claim1c names run 'nope', which is not under 'runs'"):
        V.verify({**NO_1A, "claim1c": {"runs": ["nope"]}}, tmp_path / "o", claims="1c", quiet=True)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("section", "key", "value", "match"), [
    ("analysis", "svm_tol", -1, "analysis.svm_tol = -1 is not a tolerance"),
    ("analysis", "svm_tol", float("nan"), "analysis.svm_tol = nan is not a finite number"),
    ("analysis", "delta", 1.5, "analysis.delta = 1.5 is not a probability"),
    ("claim1a", "svm_tol", 0.0, "claim1a.svm_tol = 0.0 is not a tolerance"),
    ("claim1c", "alpha", -0.05, "claim1c.alpha = -0.05 is not a probability"),
    ("claim2", "min_points", 0, "claim2.min_points = 0: give a whole number >= 1"),
])
def test_bad_numbers_in_the_preset_fail_before_any_work(tmp_path, fake, capsys, section, key, value, match):
    pre = json.loads(json.dumps(PRESET))
    pre.setdefault(section, {})[key] = value
    out = tmp_path / "out"
    # NaN is not JSON; pass the dict to verify() and the file to the CLI where it can be written
    with pytest.raises(ValueError, match=match.replace(".", r"\.").replace("(", r"\(")):
        V.verify(pre, out, quiet=True, figures=False)
    assert not out.exists() and fake == []
    if math.isfinite(value):  # finite: through the CLI too (exit 2, one line)
        assert main(["verify", "--preset", _preset(tmp_path, pre), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert match in err and err.count("\n") == 1 and not out.exists()


@pytest.fixture
def verified(tmp_path, fake, capsys):
    """Claims 1c and 2 of both synthetic runs (wd0 turns toward the SVM, wd away), through the CLI."""
    preset, out = _preset(tmp_path), tmp_path / "out"
    assert main(["verify", "--preset", preset, "--out", str(out), "--claims", "1c,2", "--quiet",
                 "--no-figures"]) == 0
    capsys.readouterr()
    return preset, out, _verdicts(out)


def test_a_truncated_checkpoint_costs_only_itself(verified, capsys):
    preset, out, before = verified
    ck = out / "runs" / "wd" / "checkpoints" / "epoch_0064.npz"
    data = ck.read_bytes()
    ck.write_bytes(data[: len(data) // 2])
    assert main(["verify", "--preset", preset, "--out", str(out), "--claims", "1c,2", "--quiet",
                 "--no-figures"]) == 1
    after = _verdicts(out)
    healthy = {i: v["value"] for i, v in before.items() if i.endswith(".wd0")}
    assert len(healthy) == 7 and {i: after[i]["value"] for i in healthy} == healthy
    assert {i: after[i]["verdict"] for i in healthy} == {i: before[i]["verdict"] for i in healthy}
    # the damaged run is judged on its other checkpoints, and every one of its verdicts says which was left out
    wd = {i: v for i, v in after.items() if i.endswith(".wd")}
    assert set(wd) == {i for i in before if i.endswith(".wd")} and not [i for i in after if i.endswith(".error")]
    for v in wd.values():
        sk = v["detail"]["skipped_checkpoints"]
        assert list(sk) == ["64"] and "epoch_0064.npz" in sk["64"]
        assert 64 not in v["detail"].get("epochs", [])
    err = capsys.readouterr().err
    assert "run wd judged without its unreadable checkpoint(s) at epoch 64" in err and "epoch_0064.npz" in err
    # every checkpoint of the run unreadable: one error verdict per claim, the other run's verdicts stand
    for q in (out / "runs" / "wd" / "checkpoints").glob("epoch_*.npz"):
        q.write_bytes(q.read_bytes()[:100])
    assert main(["verify", "--preset", preset, "--out", str(out), "--claims", "1c,2", "--quiet",
                 "--no-figures"]) == 1
    after = _verdicts(out)
    for claim in ("1c", "2"):
        e = after[f"{claim}.wd.error"]
        assert e["verdict"] == "inconclusive" and e["runs"] == ["wd"] and e["detail"]["run"] == "wd"
        assert "no checkpoint could be read" in e["detail"]["error"]
    assert not [i for i in after if i.endswith(".wd") and not i.endswith(".error")]  # no stale wd verdicts
    assert {i: after[i]["value"] for i in healthy} == healthy
    assert "errors: 1c.wd.error, 2.wd.error" in capsys.readouterr().err


def test_partial_claims_merge_into_verdicts_json(verified):
    preset, out, before = verified
    assert main(["verify", "--preset", preset, "--out", str(out), "--claims", "1c", "--quiet",
                 "--no-figures"]) == 0
    after = _verdicts(out)
    assert set(after) == set(before)  # claim 2's verdicts are kept, not dropped
    assert all(after[i] == before[i] for i in before if i.startswith("2."))
    doc = json.loads((out / "verdicts.json").read_text())
    assert doc["claims"] == ["1c", "2"] and any(n.startswith("claim 2: verdicts kept") for n in doc["notes"])


def test_verdicts_of_another_preset_are_not_mixed(verified, fake):
    _, out, _ = verified
    other = {**NO_1A, "name": "other"}
    with pytest.raises(ValueError, match="holds verdicts of preset 'tiny', not 'other'"):
        V.verify(other, out, claims="1c", quiet=True, figures=False)


def test_failed_run_is_reported_not_retrained(verified, fake, capsys):
    preset, out, before = verified
    rd = out / "runs" / "wd"
    (rd / "summary.json").unlink()  # a run that diverged never wrote a complete summary
    mark_failed(rd, "non-finite loss at epoch 9", epoch=9)
    fake.clear()
    assert main(["verify", "--preset", preset, "--out", str(out), "--claims", "1c,2", "--no-figures"]) == 1
    err = capsys.readouterr().err
    assert fake == []  # neither retrained nor resumed
    assert "run wd is marked failed (non-finite loss at epoch 9)" in err and "Traceback" not in err
    after = _verdicts(out)
    for claim in ("1c", "2"):
        msg = after[f"{claim}.wd.error"]["detail"]["error"]
        assert "failed at epoch 9 (non-finite loss at epoch 9)" in msg and f"rm -r {rd}" in msg
    assert all(after[i]["value"] == v["value"] for i, v in before.items() if i.endswith(".wd0"))
