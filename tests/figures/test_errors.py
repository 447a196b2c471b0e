"""Missing or malformed results files give clear errors that name the file (and the key)."""

from __future__ import annotations

import json

import pytest

from ncmargin.cli import main
from ncmargin.figures import make_figures
from ncmargin.figures.data import (
    discover,
    read_analysis,
    read_claim1a,
    read_claim1b,
    read_run,
    read_sweep,
    run_labels,
)

from .fixtures import claim1b_obj, sweep_obj, write_run


def test_missing_run_dir_and_log(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        read_run(tmp_path / "nope")
    (tmp_path / "r").mkdir()
    with pytest.raises(FileNotFoundError, match=r"r/log\.jsonl"):
        read_run(tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="nope"):
        make_figures([tmp_path / "nope"], tmp_path / "out")


def test_log_line_without_epoch_names_file_and_line(tmp_path):
    run = write_run(tmp_path / "r", epochs=5, with_analysis=False)
    lines = (run / "log.jsonl").read_text().splitlines()
    bad = json.loads(lines[1])
    del bad["epoch"]
    lines[1] = json.dumps(bad)
    (run / "log.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"log\.jsonl:2: expected a JSON object with an 'epoch' key"):
        read_run(run)


def test_corrupt_log_line_but_truncated_last_line_tolerated(tmp_path):
    run = write_run(tmp_path / "r", epochs=5, with_analysis=False)
    text = (run / "log.jsonl").read_text()
    (run / "log.jsonl").write_text(text + '{"epoch": 6, "loss": 0.')  # interrupted write
    with pytest.warns(UserWarning, match=r"log\.jsonl:6: dropping an unterminated last line"):
        assert list(read_run(run).epochs) == [1, 2, 3, 4, 5]
    (run / "log.jsonl").write_text('{"epoch": 1,,}\n' + text)
    with pytest.raises(ValueError, match=r"log\.jsonl:1: not valid JSON"):
        read_run(run)


def test_malformed_analysis(tmp_path):
    run = write_run(tmp_path / "r", epochs=12, onset=4)
    p = run / "analysis.json"
    obj = json.loads(p.read_text())
    p.write_text("{not json")
    with pytest.raises(ValueError, match=r"analysis\.json: malformed JSON"):
        read_run(run)
    p.write_text(json.dumps({k: v for k, v in obj.items() if k != "checkpoints"}))
    with pytest.raises(ValueError, match=r"analysis\.json: missing required key 'checkpoints'"):
        read_analysis(p)
    obj2 = dict(obj, checkpoints=[{k: v for k, v in obj["checkpoints"][0].items() if k != "epoch"}])
    p.write_text(json.dumps(obj2))
    with pytest.raises(ValueError, match=r"analysis\.json: checkpoints\[0\]: missing required key 'epoch'"):
        read_analysis(p)
    p.write_text(json.dumps(dict(obj, schema="ncmargin.sweep/1")))
    with pytest.raises(ValueError, match=r"analysis\.json: schema is 'ncmargin\.sweep/1'"):
        read_analysis(p)
    with pytest.raises(FileNotFoundError, match=r"analysis\.json.*ncmargin analyze"):
        read_analysis(tmp_path)


def test_malformed_sweep_and_claim_files(tmp_path):
    obj = sweep_obj()
    del obj["runs"][2]["final_test_acc"]
    p = tmp_path / "sweep.json"
    p.write_text(json.dumps(obj))
    with pytest.raises(ValueError, match=r"sweep\.json: runs\[2\]: missing required key 'final_test_acc'"):
        read_sweep(tmp_path)
    obj = sweep_obj()
    del obj["concentration"]["trained"][1]["empirical"]
    p.write_text(json.dumps(obj))
    with pytest.raises(ValueError, match=r"sweep\.json \[concentration\]: trained\[1\] is missing required key "
                                         r"'empirical'"):
        read_sweep(tmp_path)
    c = claim1b_obj()
    del c["records"][0]["loss"]
    q = tmp_path / "claim1b" / "ufm.json"
    q.parent.mkdir()
    q.write_text(json.dumps(c))
    with pytest.raises(ValueError, match=r"ufm\.json: records\[0\] is missing required key 'loss'"):
        read_claim1b(tmp_path)
    with pytest.raises(ValueError, match=r"ufm\.json: .*make_figures|ufm\.json"):
        make_figures([tmp_path], tmp_path / "out")
    r = tmp_path / "claim1a" / "fixed_features.json"
    r.parent.mkdir()
    r.write_text(json.dumps({"schema": "ncmargin.claim1a/1", "experiments": []}))
    with pytest.raises(ValueError, match=r"fixed_features\.json: 'experiments' is empty"):
        read_claim1a(r)


def test_discover_verify_dir_and_labels(tmp_path):
    write_run(tmp_path / "v" / "runs" / "a", wd=0.0, with_analysis=False)
    write_run(tmp_path / "v" / "runs" / "b", wd=5e-4, seed=1, with_analysis=False)
    (tmp_path / "v" / "sweep").mkdir()
    (tmp_path / "v" / "sweep" / "sweep.json").write_text(json.dumps(sweep_obj()))
    inv = discover([tmp_path / "v"])
    assert [p.name for p in inv.runs] == ["a", "b"] and len(inv.sweeps) == 1
    assert not inv.claim1a and not inv.claim1b
    runs = [read_run(p) for p in inv.runs]
    assert run_labels(runs) == ["digits, wd=0, seed 0", "digits, wd=0.0005, seed 1"]
    empty = tmp_path / "empty"
    empty.mkdir()
    skipped: list[str] = []
    assert make_figures([empty], tmp_path / "out", skipped=skipped) == []
    assert any("holds no run directory" in s for s in skipped)


def test_cli_figures(tmp_path, capsys):
    (tmp_path / "sw").mkdir()
    obj = sweep_obj()
    obj["concentration"] = None  # absent: skipped with its reason
    for r in obj["runs"]:
        r["predictors"] = {}  # no predictors: that figure is skipped with its reason
    (tmp_path / "sw" / "sweep.json").write_text(json.dumps(obj))
    assert main(["figures", str(tmp_path / "sw")]) == 0
    out = capsys.readouterr().out
    for ext in ("png", "pdf", "csv"):
        assert (tmp_path / "sw" / "figures" / f"alignment.{ext}").is_file()
    assert not (tmp_path / "sw" / "figures" / "predictors.png").exists()
    assert "1 figure(s)" in out and "predictors: skipped" in out and "concentration: skipped" in out
    assert main(["figures", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


def test_failing_figure_does_not_cost_the_others(tmp_path, monkeypatch):
    """A drawing failure is reported (skipped: FAILED ...) and the other figures are still written;
    strict=True lets it propagate."""
    import dataclasses

    from ncmargin.figures.registry import REGISTRY, all_figures

    (tmp_path / "sw").mkdir()
    obj = sweep_obj()
    obj["concentration"] = None
    (tmp_path / "sw" / "sweep.json").write_text(json.dumps(obj))

    def boom(*a, **k):
        raise RuntimeError("drawing bug")

    all_figures()  # the package's figures registered
    monkeypatch.setitem(REGISTRY, "alignment", dataclasses.replace(REGISTRY["alignment"], draw=boom))
    skipped: list[str] = []
    res = make_figures([tmp_path / "sw"], tmp_path / "out", skipped=skipped)
    assert [r.name for r in res] == ["predictors"]
    assert any(s.startswith("alignment: FAILED") and "drawing bug" in s for s in skipped)
    with pytest.raises(RuntimeError, match="drawing bug"):
        make_figures([tmp_path / "sw"], tmp_path / "out", strict=True)


def test_pmin_axis_cut_is_announced(tmp_path):
    """A deep pre-onset dip is cut off the p_min axis only with a note naming the hidden minimum."""
    from ncmargin.figures import style
    from ncmargin.figures.pmin import cut_deep_negatives

    run = write_run(tmp_path / "r", epochs=12, with_analysis=False)
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    lines[2]["p_min"] = -40.0  # epoch 3; the largest positive p_min is 2.5
    (run / "log.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    r = read_run(run)
    run_labels([r])
    _, axes = style.new_figure()
    ax = axes[0, 0]
    ax.plot(r.epochs, r.series("p_min"))
    note = cut_deep_negatives(ax, [r], "p_min")
    assert "min -40 at epoch 3" in note
    assert ax.get_ylim()[0] == pytest.approx(-2.5)
    _, axes2 = style.new_figure()
    # normalized: min -3/11 at epoch 1 < -1.5 x max 2.5/22: cut too, and said
    assert "min -0.273 at epoch 1" in cut_deep_negatives(axes2[0, 0], [r], "normalized_margin")
    _, axes3 = style.new_figure()
    assert cut_deep_negatives(axes3[0, 0], [r], "loss") == ""  # never negative: nothing cut
