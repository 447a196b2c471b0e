"""`ncmargin analyze`, `ncmargin report`, `ncmargin verify` through the CLI dispatcher; the slow full preset."""

from __future__ import annotations

import json
import time

import pytest

from ncmargin.cli import main

from . import synth
from .test_verify import PRESET


def test_analyze_and_run_report(tmp_path, capsys):
    rd = synth.make_run(tmp_path / "run", epochs=(0, 1, 2, 4, 8), nonseparable_epoch0=True)
    assert main(["analyze", str(rd), "--quiet"]) == 0
    assert "analysis.json" in capsys.readouterr().out
    a = json.loads((rd / "analysis.json").read_text())
    assert a["schema"] == "ncmargin.analysis/1" and a["checkpoints"][0]["svm"] is None
    assert main(["analyze", str(rd), "--quiet", "--svm-epochs", "0,8"]) == 0
    a = json.loads((rd / "analysis.json").read_text())
    assert [r["svm"] is not None for r in a["checkpoints"]] == [False, False, False, False, True]
    # epoch 0's features are not separable: the hard-margin SVM does not exist and the entry says why
    assert "NotSeparable" in a["checkpoints"][0]["svm_error"]
    assert a["checkpoints"][1]["svm_error"].startswith("skipped")
    assert main(["report", str(rd)]) == 0
    text = (rd / "report.md").read_text()
    assert "1c.margin_ratio_trend" in text and "| epoch | TPT |" in text


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["analyze", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "checkpoints" in err and "Traceback" not in err
    assert main(["report", str(tmp_path)]) == 2
    assert "neither a verify output directory" in capsys.readouterr().err
    assert main(["verify", "--preset", "nope", "--out", str(tmp_path)]) == 2
    assert "verify preset" in capsys.readouterr().err


def test_verify_command_prints_verdicts(tmp_path, capsys, monkeypatch):
    from ncmargin.pipeline import core as V

    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({k: v for k, v in PRESET.items() if k != "claim1a"}))
    monkeypatch.setattr(V, "default_train", synth.fake_train)
    monkeypatch.setattr(V.VerifyContext, "train_fn", synth.fake_train)
    out = tmp_path / "out"
    assert main(["verify", "--preset", str(preset), "--out", str(out), "--claims", "1c", "--quiet",
                 "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "1c.margin_ratio_trend.wd0" in printed and (out / "report.md").is_file()


@pytest.mark.slow
def test_quick_preset_end_to_end(tmp_path):
    """The README's main job: `ncmargin verify --preset quick` for claims 1 and 2 (minutes)."""
    t0 = time.perf_counter()
    out = tmp_path / "quick"
    assert main(["verify", "--preset", "quick", "--out", str(out), "--claims", "1a,1b,1c,2", "--quiet"]) == 0
    wall = time.perf_counter() - t0
    doc = json.loads((out / "verdicts.json").read_text())
    ids = {v["id"] for v in doc["verdicts"]}
    for run in ("digits_wd0", "digits_wd5e-4"):
        assert {f"1c.margin_ratio_trend.{run}", f"1c.angle_trend.{run}", f"2.last_layer_trend.{run}",
                f"2.frozen_trend.{run}", f"2.spectral_trend.{run}", f"2.non_vacuous.{run}"} <= ids
    assert {"1a.final_angle.synthetic", "1a.final_angle.digits_wd0_final", "1b.sandwich",
            "1b.normalized_margin_optimum"} <= ids
    assert not doc["errors"], doc["errors"]
    assert not any(i.endswith(".error") for i in ids)
    # rerun: nothing retrained, analyses reused
    t1 = time.perf_counter()
    assert main(["verify", "--preset", "quick", "--out", str(out), "--claims", "1c,2", "--quiet"]) == 0
    doc2 = json.loads((out / "verdicts.json").read_text())
    assert doc2["trained"] == [] and set(doc2["reused"]) == {"digits_wd0", "digits_wd5e-4"}
    print(f"quick preset claims 1+2: {wall:.0f} s; rerun of 1c,2: {time.perf_counter() - t1:.0f} s")
