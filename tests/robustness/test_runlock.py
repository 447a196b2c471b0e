"""Item 2 of issue 12: one writer per run directory."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from ncmargin.cli import main as cli_main
from ncmargin.empirical.runs import read_log
from ncmargin.empirical.train import train
from ncmargin.runlock import LOCK_NAME, LockHeldError, RunLock, read_holder

from .helpers import SET_TINY, TINY


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_second_trainer_on_the_same_out_fails_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "run"
    ready, done = threading.Event(), threading.Event()

    def hold():
        with RunLock(out, purpose="ncmargin train"):
            ready.set()
            done.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert ready.wait(30)
        rc = cli_main(["train", "quick_digits", *SET_TINY, "--set", "epochs=2",
                       "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and f"pid {os.getpid()}" in err and socket.gethostname() in err and "in use" in err
        assert "Traceback" not in err and not (out / "log.jsonl").exists()
    finally:
        done.set()
        t.join()
    # released: the same command now trains
    assert cli_main(["train", "quick_digits", *SET_TINY, "--set", "epochs=2",
                     "--out", str(out), "--quiet"]) == 0
    assert [r["epoch"] for r in read_log(out)] == [0, 1, 2]


def test_lock_held_by_another_process(tmp_path):
    out = tmp_path / "run"
    code = ("import sys, time; from ncmargin.runlock import RunLock\n"
            f"with RunLock({str(out)!r}, purpose='holder'):\n    print('held', flush=True); time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(LockHeldError, match=rf"in use by pid {p.pid} on host .*holder"):
            train(None, out, overrides=TINY + ["epochs=1"])
    finally:
        p.kill()
        p.wait()
    # the holder was SIGKILLed: its record is stale and is taken over with a message
    msgs = []
    with RunLock(out, log=msgs.append) as lk:
        assert lk.took_over["pid"] == p.pid
    assert msgs and "stale lock" in msgs[0] and str(p.pid) in msgs[0] and "is gone" in msgs[0]


def test_stale_lock_of_a_dead_pid_is_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    dead = _dead_pid()
    (out / LOCK_NAME).write_text(json.dumps({"pid": dead, "host": socket.gethostname(), "purpose": "x",
                                             "started": "2026-01-01T00:00:00+00:00"}))
    train(None, out, overrides=TINY + ["epochs=1"])
    err = capsys.readouterr().err
    assert f"pid {dead}" in err and "stale lock" in err
    assert [r["epoch"] for r in read_log(out)] == [0, 1]
    assert read_holder(out) is None  # released cleanly


@pytest.mark.slow  # two real CLI processes (~15 s); the thread and subprocess holders above cover it by default
def test_two_concurrent_cli_trainers_one_wins(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "ncmargin", "train", "quick_digits", *SET_TINY,
           "--set", "epochs=15", "--out", str(out), "--quiet"]
    a = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while read_holder(out) is None and a.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    b = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=120)
    ra = a.communicate(timeout=300)
    assert a.returncode == 0, ra[1]
    assert b.returncode == 2 and "in use by pid" in b.stderr and "Traceback" not in b.stderr
    assert [r["epoch"] for r in read_log(out)] == list(range(16))  # one writer's log, no interleaving


def test_lock_is_exclusive_within_one_process(tmp_path):
    with RunLock(tmp_path), pytest.raises(LockHeldError):
        RunLock(tmp_path).acquire()
    with RunLock(tmp_path):
        pass
