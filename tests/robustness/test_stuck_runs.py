"""Item 3 of issue 12: no stuck runs (kill points, temp leftovers, failed runs)."""

import json

import pytest

from ncmargin.cli import main as cli_main
from ncmargin.empirical.runs import load_run, read_log
from ncmargin.empirical.train import train

from .helpers import SET_TINY, TINY

TIMING = ("seconds", "eval_seconds")


def _strip(log):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in log]


def test_kill_between_last_pt_and_summary_at_the_final_epoch_is_finished_by_resume(tmp_path):
    full = tmp_path / "full"
    train(None, full, overrides=TINY + ["epochs=4"])
    run = tmp_path / "run"
    train(None, run, overrides=TINY + ["epochs=4"])
    # the kill point: last.pt of epoch 4 written, summary.json still the one of epoch 2 (save_every=2)
    s = json.loads((run / "summary.json").read_text())
    assert s["complete"] and s["state_epoch"] == 4
    (run / "summary.json").write_text(json.dumps({**s, "complete": False, "last_epoch": 2, "state_epoch": 2}))
    train(None, run, resume=True)
    r = load_run(run)
    assert r.summary["complete"] and r.summary["last_epoch"] == 4
    assert _strip(read_log(run)) == _strip(read_log(full))


def test_temp_files_left_by_a_kill_are_cleaned_on_resume(tmp_path, capsys):
    run = tmp_path / "run"
    train(None, run, overrides=TINY + ["epochs=4"], stop_after=3)
    leftovers = [run / ".summary.json.abcd1234.json", run / "checkpoints" / ".last.pt.k2j3h4k5.pt",
                 run / "checkpoints" / ".epoch_0003.npz.zz_9y8x7.npz", run / ".log.jsonl.q1w2e3r4.jsonl"]
    for p in leftovers:
        p.write_bytes(b"half-written")
    keep = [run / "checkpoints" / ".keep.me", run / "notes.txt"]
    for p in keep:
        p.write_text("mine")
    assert cli_main(["train", "--resume", str(run), "--quiet"]) == 0
    assert not any(p.exists() for p in leftovers)
    assert all(p.exists() for p in keep)
    assert "removed 4 temp file(s)" in capsys.readouterr().err


def test_diverged_run_is_marked_failed_and_out_says_how_to_replace_it(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "quick_digits", *SET_TINY, "--set", "epochs=3", "--set", "lr=1e30", "--out", str(run)]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert "diverged" in err and "marked failed" in err and "Traceback" not in err
    st = json.loads((run / "status.json").read_text())
    assert st["state"] == "failed" and "diverged" in st["reason"] and st["epoch"] == 1
    # a new run into the same --out, or a resume, is refused with the way out
    for again in (args, ["train", "--resume", str(run), "--quiet"]):
        assert cli_main(again) == 2
        err = capsys.readouterr().err
        assert "failed at epoch 1" in err and f"rm -r {run}" in err and "Traceback" not in err
    # deleting the directory (the advice) makes the --out usable again
    import shutil

    shutil.rmtree(run)
    ok = ["train", "quick_digits", *SET_TINY, "--set", "epochs=1", "--out", str(run)]
    assert cli_main(ok) == 0


def test_clean_temp_files_only_takes_atomic_write_names(tmp_path):
    from ncmargin.io import atomic_path
    from ncmargin.store import clean_temp_files

    # a real temp name of ncmargin.io.atomic_path, caught before its rename
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.json") as tmp:
        real = tmp.name
        raise RuntimeError
    (tmp_path / real).write_text("left by a kill")
    (tmp_path / ".ncmargin.lock").write_text("")
    (tmp_path / ".hidden.json").write_text("{}")
    removed = clean_temp_files(tmp_path)
    assert [p.name for p in removed] == [real]
    assert (tmp_path / ".ncmargin.lock").exists() and (tmp_path / ".hidden.json").exists()


def test_a_config_that_fails_at_build_time_leaves_the_out_reusable(tmp_path, capsys):
    run = tmp_path / "run"
    # an ETF head needs width >= K-1 = 9: the model cannot be built, nothing of a run is written
    bad = ["train", "quick_digits", *SET_TINY, "--set", "epochs=1", "--set", "head=etf", "--set", "width=4",
           "--out", str(run)]
    assert cli_main(bad) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not (run / "config.json").exists() and not (run / "status.json").exists()
    ok = ["train", "quick_digits", *SET_TINY, "--set", "epochs=1", "--out", str(run)]
    assert cli_main(ok) == 0
