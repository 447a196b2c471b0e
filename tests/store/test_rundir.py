"""ncmargin.store run-directory owner: strict log reader, onset, identity keys, status, schedules."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ncmargin.store import (
    NON_IDENTITY_KEYS,
    RESUMABLE_KEYS,
    LogError,
    RunMismatchError,
    append_log,
    check_same_run,
    identity_diff,
    list_checkpoints,
    log_spaced,
    onset_epoch,
    reached_full_accuracy,
    read_log,
    run_status,
    terminal_onset,
    thread_limits,
    versions,
)


def _log(tmp_path, rows, tail=""):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)
    return run


ROWS = [{"epoch": e, "train_acc": min(1.0, 0.5 + 0.2 * e), "loss": 1.0 / (e + 1)} for e in range(5)]


def test_read_log_round_trip_and_append(tmp_path):
    run = _log(tmp_path, ROWS[:3])
    for r in ROWS[3:]:
        append_log(run, r)
    assert read_log(run) == ROWS
    assert read_log(run / "log.jsonl") == ROWS
    assert read_log(tmp_path / "nothing", missing_ok=True) == []
    with pytest.raises(FileNotFoundError, match=r"nothing/log\.jsonl: no such file"):
        read_log(tmp_path / "nothing")


@pytest.mark.parametrize("bad, line, msg", [
    ('{"epoch": 2,, "loss": 1}', 3, "not valid JSON"),
    ('[1, 2]', 3, "expected a JSON object with an 'epoch' key"),
    ('{"loss": 1}', 3, "expected a JSON object with an 'epoch' key"),
    ('{"epoch": "2"}', 3, "'epoch' must be a non-negative integer"),
    ('{"epoch": 1}', 3, "epoch 1 does not follow epoch 1"),
    ('{"epoch": 2, "train_acc": 97.5}', 3, "'train_acc' = 97.5 is not a fraction in \\[0, 1\\]"),
])
def test_malformed_line_is_an_error_naming_file_and_line(tmp_path, bad, line, msg):
    """A bad line in the middle (or a bad complete last line) raises; nothing is silently dropped."""
    lines = [json.dumps(r) for r in ROWS[:2]] + [bad] + [json.dumps(r) for r in ROWS[3:]]
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(LogError, match=rf"run/log\.jsonl:{line}: {msg}"):
        read_log(run)
    (run / "log.jsonl").write_text("\n".join(lines[:3]) + "\n")  # as a complete last line: still an error
    with pytest.raises(LogError, match=rf"log\.jsonl:{line}:"):
        read_log(run)


def test_unterminated_last_line_is_dropped_with_a_warning(tmp_path):
    run = _log(tmp_path, ROWS[:3], tail='{"epoch": 3, "lo')
    with pytest.warns(UserWarning, match=r"log\.jsonl:4: dropping an unterminated last line"):
        assert read_log(run) == ROWS[:3]


def test_onset():
    assert [reached_full_accuracy(v) for v in (1.0, 1, 0.999, None, True, "1.0")] == \
        [True, True, False, False, False, False]
    assert onset_epoch(ROWS) == 3 and onset_epoch(ROWS[:3]) is None and onset_epoch([]) is None
    assert terminal_onset(3, {0: 0.5, 2: 1.0, 4: 1.0}) == (2, "checkpoints")
    assert terminal_onset(3, {0: 0.5, 4: 1.0}) == (3, "log.jsonl")
    assert terminal_onset(None, {0: 0.5, 4: 1.0}) == (4, "checkpoints")
    assert terminal_onset(None, {0: 0.5}) == (None, "checkpoints")


def test_identity_keys_one_list():
    from dataclasses import fields

    from ncmargin.empirical.config import TrainConfig

    keys = {f.name for f in fields(TrainConfig)}
    assert NON_IDENTITY_KEYS <= keys and "num_threads" in NON_IDENTITY_KEYS
    assert RESUMABLE_KEYS == NON_IDENTITY_KEYS | {"epochs"}
    base = TrainConfig().to_dict()
    # a run differing only in how it is computed is the same run; anything else is another one
    assert identity_diff(base, dict(base, num_threads=1, device="cuda", quiet=True)) == []
    assert identity_diff(base, dict(base, lr=0.5, seed=3)) == ["lr", "seed"]
    assert identity_diff(base, dict(base, epochs=7)) == ["epochs"]
    assert identity_diff(base, dict(base, epochs=7), allowed=RESUMABLE_KEYS) == []


def test_check_same_run_and_status(tmp_path):
    from ncmargin.empirical.config import TrainConfig

    rd = tmp_path / "r"
    assert run_status(rd) == "absent"
    rd.mkdir()
    cfg = TrainConfig().to_dict()
    (rd / "config.json").write_text(json.dumps({"config": cfg}))
    assert run_status(rd) == "partial"
    (rd / "summary.json").write_text(json.dumps({"complete": True}))
    assert run_status(rd) == "complete"
    (rd / "summary.json").write_text("{broken")
    assert run_status(rd) == "partial"
    check_same_run(rd, dict(cfg, num_threads=1), what="preset 'quick'")
    with pytest.raises(RunMismatchError, match=r"differs from preset 'quick' in \['lr'\]; use another --out"):
        check_same_run(rd, dict(cfg, lr=1.0), what="preset 'quick'")


def test_list_checkpoints(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    for e in (12, 0, 3):
        (tmp_path / "checkpoints" / f"epoch_{e:04d}.npz").write_bytes(b"")
    (tmp_path / "checkpoints" / "model_0003.pt").write_bytes(b"")
    cps = list_checkpoints(tmp_path)
    assert [c.epoch for c in cps] == [0, 3, 12]
    ep, path = cps[-1]
    assert ep == 12 and path.name == "epoch_0012.npz"
    assert list_checkpoints(tmp_path / "none") == []
    with pytest.raises(FileNotFoundError, match="no epoch_XXXX.npz checkpoint"):
        list_checkpoints(tmp_path / "none", required=True)


def _old_rounded(stop, num):  # the trainer's and the UFM's former formula
    pts = {0, stop}
    if num > 0 and stop >= 1:
        pts.update(int(round(v)) for v in np.logspace(0, math.log10(max(stop, 1)), num))  # noqa: RUF046
    return sorted(p for p in pts if 0 <= p <= stop)


def _old_floored(stop, n):  # fixed_features.record_steps' former formula
    r = np.unique(np.concatenate([[0, 1, stop], np.geomspace(1, stop, max(int(n), 2)).astype(np.int64)]))
    return [int(v) for v in r[(r >= 0) & (r <= stop)]]


@pytest.mark.parametrize("stop", [0, 1, 2, 7, 10, 99, 100, 600, 1000, 5000, 20_000, 100_000])
@pytest.mark.parametrize("num", [0, 1, 2, 3, 12, 30, 40, 60])
def test_log_spaced_equals_the_schedules_it_replaces(stop, num):
    assert log_spaced(stop, num) == _old_rounded(stop, num)
    if stop >= 1:
        assert log_spaced(stop, max(num, 2), floor=True, start=(0, 1)) == _old_floored(stop, num)
    s = log_spaced(stop, num)
    assert s[0] == 0 and s[-1] == stop and s == sorted(set(s))


def test_thread_limits_restores():
    import torch

    before = torch.get_num_threads()
    with thread_limits(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), thread_limits(1):
        raise RuntimeError("x")
    assert torch.get_num_threads() == before
    with thread_limits(0):
        assert torch.get_num_threads() == before


def test_versions():
    import torch

    v = versions()
    for k in ("ncmargin", "python", "platform", "numpy", "scipy", "torch", "cvxpy", "clarabel", "scikit-learn"):
        assert k in v
    assert v["torch"] == torch.__version__ and v["numpy"] == np.__version__


def test_run_status_reports_a_failed_mark(tmp_path):
    from ncmargin.store import RunFailedError, check_not_failed, mark_failed, read_status

    rd = tmp_path / "r"
    rd.mkdir()
    (rd / "config.json").write_text(json.dumps({"config": {}}))
    (rd / "summary.json").write_text(json.dumps({"complete": False}))
    assert run_status(rd) == "partial" and read_status(rd) is None
    check_not_failed(rd)
    mark_failed(rd, "training diverged: minibatch loss nan", 7)
    assert read_status(rd)["state"] == "failed" and read_status(rd)["epoch"] == 7
    assert run_status(rd) == "failed"
    with pytest.raises(RunFailedError, match=r"failed at epoch 7 \(training diverged.*rm -r"):
        check_not_failed(rd)
    (rd / "status.json").write_text("{broken")  # only ever written on failure: unreadable still means failed
    assert run_status(rd) == "failed"


def test_preset_names_never_leave_the_preset_directory(tmp_path):
    from ncmargin.store import PRESET_DIR, find_preset, is_safe_name

    assert find_preset("verify", "quick").parent == PRESET_DIR
    escape = PRESET_DIR.parent.parent / "store_escape_probe.json"  # '../../store_escape_probe' from the presets
    escape.write_text("{}")
    try:
        assert not is_safe_name("../../store_escape_probe")
        with pytest.raises(FileNotFoundError, match="not found"):
            find_preset("train", "../../store_escape_probe")
        assert find_preset("train", escape) == escape  # an explicit path to a file is still a path
    finally:
        escape.unlink()


def test_temp_file_names(tmp_path):
    from ncmargin.store import clean_temp_files, temp_file_target

    (tmp_path / ".summary.json.ab12cd34.json").write_text("{")  # atomic_path temp of summary.json
    (tmp_path / ".ncmargin.lock").write_text("")                # the lock file is never a temp file
    (tmp_path / "summary.json").write_text("{}")
    assert [p.name for p in clean_temp_files(tmp_path)] == [".summary.json.ab12cd34.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ncmargin.lock", "summary.json"]
    assert temp_file_target(str(tmp_path / ".log.jsonl.x1y2z3w4.jsonl")) == str(tmp_path / "log.jsonl")
    assert temp_file_target("plain.json") == "plain.json"
