"""A claim is one module: a toy claim defined in this test file alone appears in verdicts.json and
report.md (its section and its title) without any package file changing; its settings are typed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from ncmargin.empirical.claims import Claim, make_verdict, register, unregister
from ncmargin.io import atomic_write_json
from ncmargin.pipeline import verify

from . import synth
from .test_verify import PRESET


@dataclass(frozen=True)
class ToySettings:
    threshold: float = 0.5
    runs: list[str] | None = None


def _toy_run(out_dir: Path, s: ToySettings, ctx) -> list[dict]:
    """Reads the final train accuracy of each run it needs from the run's log and stores a result file."""
    out = []
    for name in s.runs or []:
        rd = ctx.ensure_runs([name])[name]
        last = json.loads((rd / "log.jsonl").read_text().splitlines()[-1])
        out.append(make_verdict("toy", f"toy.final_acc.{name}", "the run ends at full train accuracy",
                                "final train accuracy", last["train_acc"], f">= {s.threshold}",
                                "pass" if last["train_acc"] >= s.threshold else "fail", [name]))
    atomic_write_json(Path(out_dir) / "toy" / "toy.json", {"n": len(out)})
    return out


def _toy_section(out_dir: Path, verdicts: list[dict], doc: dict) -> str:
    n = json.loads((Path(out_dir) / "toy" / "toy.json").read_text())["n"]
    return f"Toy key numbers: {n} run(s) judged."


@pytest.fixture
def toy():
    claim = register(Claim(id="toy", title="Claim toy — a claim registered by a test", order=99,
                           Settings=ToySettings, run=_toy_run, runs_needed=lambda s, preset: list(s.runs or []),
                           section=_toy_section))
    yield claim
    unregister("toy")


def test_toy_claim_appears_in_verdicts_and_report(tmp_path, toy):
    preset = {**PRESET, "claimtoy": {"threshold": 0.9, "runs": ["wd0"]}}
    synth.CALLS.clear()
    doc = verify(preset, tmp_path, claims="toy", quiet=True, figures=False, train_fn=synth.fake_train)
    assert synth.CALLS == [str(tmp_path / "runs" / "wd0")]  # the run it declared was trained up front
    on_disk = json.loads((tmp_path / "verdicts.json").read_text())
    assert on_disk["claims"] == ["toy"] and doc["verdicts"] == on_disk["verdicts"]
    (v,) = on_disk["verdicts"]
    assert v["id"] == "toy.final_acc.wd0" and v["verdict"] == "pass" and v["threshold"] == ">= 0.9"
    report = (tmp_path / "report.md").read_text()
    assert "## Claim toy — a claim registered by a test" in report
    assert "Toy key numbers: 1 run(s) judged." in report and "`toy.final_acc.wd0`" in report


def test_toy_claim_settings_are_typed(tmp_path, toy):
    synth.CALLS.clear()
    with pytest.raises(ValueError, match=r"claimtoy.*unknown key\(s\) \['treshold'\].*valid keys: threshold, runs"):
        verify({**PRESET, "claimtoy": {"treshold": 0.9}}, tmp_path, claims="toy", quiet=True, figures=False,
               train_fn=synth.fake_train)
    assert synth.CALLS == []  # rejected before anything trained


def test_mistyped_key_of_a_builtin_claim_is_rejected(tmp_path):
    bad = {**PRESET, "claim1c": {**PRESET["claim1c"], "min_point": 3}}
    with pytest.raises(ValueError, match=r"claim1c.*min_point.*valid keys: runs, alpha, min_points"):
        verify(bad, tmp_path, claims="1c", quiet=True, figures=False, train_fn=synth.fake_train)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['claim1d'\]"):
        verify({**PRESET, "claim1d": {}}, tmp_path, claims="1c", quiet=True, figures=False,
               train_fn=synth.fake_train)
