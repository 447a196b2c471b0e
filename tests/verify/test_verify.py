"""verify(): orchestration, reuse without retraining, pluggable claims, verdicts.json and report.md."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from ncmargin.empirical.claims import Claim, make_verdict, register, unregister
from ncmargin.pipeline import core as V
from ncmargin.pipeline import write_report

from . import synth

PRESET = {
    "name": "tiny",
    "runs": {"wd0": {"config": "quick_digits", "set": {"epochs": 64}},
             "wd": {"config": "quick_digits_wd", "set": {"epochs": 64}}},
    "analysis": {"svm_epochs": "terminal", "spectral": True},
    "claim1a": {"steps": 3000, "num_records": 20, "final_angle_max_deg": 10.0,
                "synthetic": {"K": 3, "n": 10, "d": 5, "separation": 5.0}, "real_run": "wd0"},
    "claim1c": {"runs": ["wd0", "wd"], "alpha": 0.05, "min_points": 5},
    "claim2": {"runs": ["wd0", "wd"], "alpha": 0.05, "min_points": 5},
}
VERDICT_KEYS = {"claim", "id", "statement", "statistic", "value", "threshold", "verdict", "runs", "detail"}


def _mtimes(out):
    return {str(p): p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()
            and p.name != "analysis.json"}


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify")
    synth.CALLS.clear()
    doc = V.verify(PRESET, out, claims="1a,1c,2", quiet=True, figures=False, train_fn=synth.fake_train)
    return out, doc, list(synth.CALLS)


def test_verdicts_file_well_formed(first):
    out, _, calls = first
    assert len(calls) == 2  # both runs trained once
    on_disk = json.loads((out / "verdicts.json").read_text())
    assert on_disk["schema"] == V.SCHEMA == "ncmargin.verdicts/1"
    assert V.read_verdicts(out)["verdicts"] == on_disk["verdicts"]
    ids = [v["id"] for v in on_disk["verdicts"]]
    assert len(ids) == len(set(ids))
    for v in on_disk["verdicts"]:
        assert set(v) == VERDICT_KEYS and v["verdict"] in ("pass", "fail", "inconclusive")
        assert v["value"] is None or isinstance(v["value"], float)
    assert {v["claim"] for v in on_disk["verdicts"]} == {"1a", "1c", "2"}
    assert not on_disk["errors"]
    assert set(on_disk["timings"]) >= {"total_s", "claim_1a_s", "claim_1c_s", "claim_2_s"}
    assert on_disk["trained"] == ["wd0", "wd"] and on_disk["reused"] == []
    # the fake "wd" run turns away from the SVM, "wd0" toward it: 1c must say so
    vs = {v["id"]: v["verdict"] for v in on_disk["verdicts"]}
    assert vs["1c.margin_ratio_trend.wd0"] == "pass" and vs["1c.margin_ratio_trend.wd"] == "fail"
    assert vs["1c.angle_trend.wd0"] == "pass" and vs["1c.angle_trend.wd"] == "fail"
    assert vs["1a.angle_trend.synthetic"] == "pass"
    c1a = json.loads((out / "claim1a" / "fixed_features.json").read_text())
    assert c1a["schema"] == "ncmargin.claim1a/1"
    assert [e["name"] for e in c1a["experiments"]] == ["synthetic", "wd0_final"]
    assert c1a["experiments"][1]["bias_as_constant_feature"] is True


def test_report_written(first):
    out, doc, _ = first
    text = (out / "report.md").read_text()
    assert "| claim | id | statement | statistic | value | threshold | verdict | runs |" in text
    for v in doc["verdicts"]:
        assert f"`{v['id']}`" in text
    assert "Figures not generated" in text
    assert "## Claim 1c" in text and "angle to W*" in text and "## Timings" in text


def test_rerun_reuses_runs_and_analysis(first):
    out, doc, _ = first
    before = _mtimes(out)
    synth.CALLS.clear()
    doc2 = V.verify(PRESET, out, claims="1c,2", quiet=True, figures=False, train_fn=synth.fake_train)
    assert synth.CALLS == []  # nothing retrained
    assert _mtimes(out) == before  # run files untouched
    assert doc2["reused"] == ["wd0", "wd"] and doc2["trained"] == []
    a = json.loads((out / "runs" / "wd0" / "analysis.json").read_text())
    assert a["reused_checkpoints"] == len(a["checkpoints"])
    old = {v["id"]: v["value"] for v in doc["verdicts"] if v["claim"] in ("1c", "2")}
    assert {v["id"]: v["value"] for v in doc2["verdicts"] if v["claim"] in ("1c", "2")} == old
    # the partial --claims run merged into verdicts.json: claim 1a's verdicts are kept as they were (issue 12)
    assert [v for v in doc2["verdicts"] if v["claim"] == "1a"] == [v for v in doc["verdicts"] if v["claim"] == "1a"]
    assert doc2["claims"] == ["1a", "1c", "2"]
    assert next(n for n in doc2["notes"] if "kept from the previous verify" in n).startswith("claim 1a:")


def test_partial_run_is_resumed_not_restarted(tmp_path):
    synth.make_run(tmp_path / "runs" / "wd0", config=V.resolve_run_config(PRESET["runs"]["wd0"], None,
                                                                         True).to_dict(), complete=False)
    calls = []

    def train(cfg, rd, resume=False):
        calls.append(resume)
        return synth.make_run(rd + "_unused", config=cfg) and _complete(rd)

    def _complete(rd):
        (tmp_path / "runs" / "wd0" / "summary.json").write_text('{"complete": true}')

    ctx = V.VerifyContext(tmp_path, PRESET, quiet=True, train_fn=train)
    ctx.ensure_runs(["wd0"])
    assert calls == [True] and ctx.resumed == ["wd0"]


def test_config_mismatch_is_an_error(tmp_path):
    synth.make_run(tmp_path / "runs" / "wd0", config={"dataset": "digits", "lr": 123.0})
    with pytest.raises(ValueError, match="differs from preset"):
        V.verify(PRESET, tmp_path, claims="1c", quiet=True, figures=False, train_fn=synth.fake_train)


def test_unknown_claim_and_preset():
    with pytest.raises(ValueError, match="unknown claim"):
        V.parse_claims("1c,9z", PRESET)
    with pytest.raises(FileNotFoundError, match="verify preset"):
        V.load_preset("no_such_preset")
    assert {"quick", "paper"} <= set(V.list_verify_presets())
    for name in ("quick", "paper"):
        p = V.load_preset(name)
        for c in ("claim1c", "claim2"):
            assert set(p[c]["runs"]) <= set(p["runs"])


@dataclass(frozen=True)
class _NoSettings:
    pass


def test_plugin_claim_and_failing_step(tmp_path):
    register(Claim(id="zz", title="test plug-in", order=99, Settings=_NoSettings, run=lambda out, s, ctx: [
        make_verdict("zz", "zz.ok", "plug-in ran", "n", 1.0, "= 1", "pass", [])]))

    def _zy(out_dir, s, ctx):
        raise RuntimeError("boom")

    register(Claim(id="zy", title="broken", order=98, Settings=_NoSettings, run=_zy))
    try:
        doc = V.verify(PRESET, tmp_path, claims="zz,zy", quiet=True, figures=False, train_fn=synth.fake_train)
        vs = {v["id"]: v for v in doc["verdicts"]}
        assert vs["zz.ok"]["verdict"] == "pass"
        assert vs["zy.error"]["verdict"] == "inconclusive" and "boom" in vs["zy.error"]["detail"]["error"]
        assert "boom" in (tmp_path / "report.md").read_text()
    finally:
        unregister("zz")
        unregister("zy")


def test_report_with_figures_and_missing_files(tmp_path):
    png = tmp_path / "figures" / "p_min.png"
    png.parent.mkdir()
    png.write_bytes(b"\x89PNG\r\n")
    V.write_verdicts(tmp_path, [make_verdict("1b", "1b.sandwich", "s", "f", 1.0, "= 1", "pass")], preset="x")

    from types import SimpleNamespace

    fig = SimpleNamespace(name="p_min", png=png, pdf=None, csv=None, caption="p_min against epoch")
    text = write_report(tmp_path, figures=[fig]).read_text()
    assert "![p_min](figures/p_min.png)" in text and "p_min against epoch" in text
    assert "ufm.json` not found" in text  # the claim-1b records are missing: said, not crashed


def test_bad_verdicts_file(tmp_path):
    (tmp_path / "verdicts.json").write_text('{"schema": "other"}')
    with pytest.raises(ValueError, match="verdicts.json"):
        V.read_verdicts(tmp_path)


def test_report_reads_figure_index(tmp_path):
    """Without a figure list, report.md takes names and captions from figures/figures.json."""
    fig = tmp_path / "figures"
    fig.mkdir()
    (fig / "nc.png").write_bytes(b"\x89PNG\r\n")
    (fig / "figures.json").write_text(json.dumps({"schema": "ncmargin.figures/1", "figures": [
        {"name": "nc", "png": "nc.png", "pdf": "nc.pdf", "csv": None, "caption": "NC metrics against epoch"}]}))
    V.write_verdicts(tmp_path, [make_verdict("1b", "1b.sandwich", "s", "f", 1.0, "= 1", "pass")], preset="x")
    text = write_report(tmp_path).read_text()
    assert "![nc](figures/nc.png)" in text and "NC metrics against epoch" in text
