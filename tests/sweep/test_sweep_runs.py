"""A tiny real sweep: 2 alignments x 2 seeds on a digits subset (seconds), reuse, exclusion, commands, CLI."""

import json
from pathlib import Path

import pytest

from ncmargin.empirical.claims.claim3 import (
    collect_sweep,
    plan_sweep,
    run_sweep,
    train_commands,
)

TINY = {"train": {"dataset": "digits", "n_per_class": 8, "n_test_per_class": 10, "model": "mlp", "depth": 1,
                  "width": 24, "head": "etf", "optimizer": "adam", "lr": 0.03, "epochs": 40, "batch_size": 0,
                  "num_checkpoints": 2, "save_every": 0, "num_threads": 1, "quiet": True},
        "alignments": 2, "seeds": 2, "statistics": {"n_perm": 199, "n_boot": 50}}
NO_CONC = False


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "sw"
    doc = run_sweep(TINY, out, jobs=1, concentration=NO_CONC, log=lambda m: None)
    return out, doc


def test_tiny_sweep_writes_a_well_formed_sweep_json(tiny_sweep):
    out, _ = tiny_sweep
    disk = json.loads((out / "sweep.json").read_text())
    assert disk["schema"] == "ncmargin.sweep/1"
    assert [a["id"] for a in disk["alignments"]] == ["a00", "a01"] and disk["seeds"] == [0, 1]
    assert len(disk["runs"]) == 4
    for r in disk["runs"]:
        assert {"run_dir", "alignment", "seed", "reached_tpt", "onset_epoch", "final_train_acc",
                "final_test_acc", "final_train_loss", "predictors"} <= set(r)
        assert Path(r["run_dir"]).is_dir() and 0 <= r["final_test_acc"] <= 1
        assert set(r["predictors"]) == {"alignment_score", "normalized_margin_mean", "normalized_margin_min"}
        cfg = json.loads((Path(r["run_dir"]) / "config.json").read_text())["config"]
        assert cfg["head"] == "etf" and cfg["seed"] == r["seed"] and cfg["split_seed"] == 0
    assert disk["run_status"]["trained"] and not disk["run_status"]["reused"]
    assert "stats" in disk and "plot_table" in disk["stats"]
    # every run reached 100% train accuracy (a 80-sample subset, 40 full-batch Adam epochs): 2x2 table
    assert disk["excluded"] == [] and disk["stats"]["table"]["method"] == "complete"
    assert set(disk["stats"]["anova"]) >= {"p_alignment", "eta2_alignment", "eta2_seed"}
    # both alignments really differ in the trained model's ETF head
    a0 = json.loads((out / "a00_s0" / "config.json").read_text())["config"]
    a1 = json.loads((out / "a01_s0" / "config.json").read_text())["config"]
    assert a0["etf_perm_seed"] == -1 and a1["etf_perm_seed"] >= 1


def test_rerun_reuses_complete_runs(tiny_sweep):
    out, doc = tiny_sweep
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*/log.jsonl")}
    doc2 = run_sweep(TINY, out, jobs=1, concentration=NO_CONC, log=lambda m: None)
    assert doc2["run_status"]["trained"] == [] and len(doc2["run_status"]["reused"]) == 4
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/log.jsonl")} == mtimes
    assert [r["final_test_acc"] for r in doc2["runs"]] == [r["final_test_acc"] for r in doc["runs"]]
    assert train_commands(plan_sweep(TINY, out)) == []   # nothing left to run on a cluster


def test_stored_run_with_another_config_is_an_error(tiny_sweep):
    out, _ = tiny_sweep
    with pytest.raises(ValueError, match="differs from this sweep"):
        collect_sweep(plan_sweep(TINY, out, overrides={"lr": 0.5}), write=False)


def test_runs_without_100_percent_train_accuracy_are_excluded(tmp_path):
    cfg = json.loads(json.dumps(TINY))
    cfg["train"]["epochs"] = 1
    cfg["train"]["lr"] = 1e-4
    doc = run_sweep(cfg, tmp_path / "sw", jobs=1, concentration=NO_CONC, log=lambda m: None)
    assert len(doc["excluded"]) == 4
    assert all("never reached 100%" in e["reason"] for e in doc["excluded"])
    assert all(r["reached_tpt"] is False for r in doc["runs"])
    assert doc["stats"]["verdict"] is None and "no complete" in doc["stats"]["error"]


def test_print_commands_and_collect_missing(tmp_path, capsys):
    from ncmargin.cli import main

    out = tmp_path / "sw"
    assert main(["sweep", "sweep_quick", "--alignments", "2", "--seeds", "0,3", "--out", str(out),
                 "--print-commands", "--quiet"]) == 0
    cmds = capsys.readouterr().out.strip().splitlines()
    assert len(cmds) == 4 and all(c.startswith("ncmargin train ") and "--out" in c for c in cmds)
    assert (out / "commands.txt").read_text().strip().splitlines() == cmds
    plan_cfg = json.loads((out / "plan" / "a01_s3.json").read_text())
    assert plan_cfg["seed"] == 3 and plan_cfg["head"] == "etf" and plan_cfg["etf_perm_seed"] >= 1
    # collecting before anything ran: an error saying how to train (issue 12; was exit 0, 4/4 excluded)
    capsys.readouterr()
    assert main(["sweep", "sweep_quick", "--alignments", "2", "--seeds", "0,3", "--out", str(out),
                 "--no-train", "--no-concentration", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no trained runs to collect (0 of 4 complete)" in err and "commands.txt" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (out / "sweep.json").exists() and not any(out.glob("*/log.jsonl"))


def test_bad_overrides_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="chosen by the sweep"):
        plan_sweep(TINY, tmp_path, overrides={"seed": 3})
    with pytest.raises(ValueError, match="fixed ETF head"):
        plan_sweep(TINY, tmp_path, overrides=["head=linear"])
    with pytest.raises(FileNotFoundError, match="sweep presets"):
        plan_sweep("no_such_sweep", tmp_path)


@pytest.mark.slow
def test_process_pool_gives_the_same_runs(tiny_sweep, tmp_path):
    """--jobs 2 (spawn pool, one torch thread each) trains the same runs as jobs=1 (CPU, same thread count)."""
    _, doc = tiny_sweep
    doc2 = run_sweep(TINY, tmp_path / "sw", jobs=2, concentration=NO_CONC, log=lambda m: None)
    assert len(doc2["run_status"]["trained"]) == 4
    for a, b in zip(doc["runs"], doc2["runs"]):
        assert a["run_id"] == b["run_id"]
        assert b["final_test_acc"] == a["final_test_acc"] and b["final_train_loss"] == a["final_train_loss"]


def test_sweep_preset_keys_are_checked():
    from ncmargin.empirical.claims.claim3 import load_sweep_preset

    assert load_sweep_preset("quick")["name"] == "sweep_quick"
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['alignmnets'\]; valid keys: name, train"):
        load_sweep_preset({**TINY, "alignmnets": 4})
    with pytest.raises(ValueError, match=r"statistics: unknown key\(s\) \['nperm'\]"):
        load_sweep_preset({**TINY, "statistics": {"nperm": 9}})



def test_failed_run_is_excluded_with_reason_and_fix(tiny_sweep, tmp_path, capsys):
    """A run marked failed (status.json) is neither resumed nor retrained; it is excluded with its reason and
    the fix, no train command is printed for it, and the CLI exits 1 (issue 12)."""
    import shutil

    from ncmargin.cli import main
    from ncmargin.store import mark_failed

    src, _ = tiny_sweep
    out = tmp_path / "sw"
    shutil.copytree(src, out)
    bad = out / "a01_s1"
    (bad / "summary.json").unlink()
    mark_failed(bad, "non-finite loss", epoch=7)
    plan = plan_sweep(TINY, out)
    assert train_commands(plan, all_runs=True) and not any("a01_s1" in c for c in train_commands(plan, all_runs=True))
    calls = []
    doc = run_sweep(TINY, out, jobs=1, concentration=NO_CONC, log=lambda m: None,
                    train_fn=lambda *a, **k: calls.append(a))
    assert calls == [] and doc["run_status"]["failed"] == ["a01_s1"]
    (ex,) = [e for e in doc["excluded"] if e["run_id"] == "a01_s1"]
    assert ex["reason"].startswith("failed at epoch 7: non-finite loss") and f"rm -r {bad}" in ex["reason"]
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    capsys.readouterr()
    assert main(["sweep", str(cfg), "--out", str(out), "--no-concentration", "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "excluded a01_s1: failed at epoch 7: non-finite loss" in printed
    assert not (bad / "summary.json").exists()  # untouched
