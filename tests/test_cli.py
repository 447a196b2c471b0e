"""The command line starts: `ncmargin --help` and `python -m ncmargin --help` (issue 2 item 1)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _script():
    here = Path(sys.executable).parent / ("ncmargin.exe" if os.name == "nt" else "ncmargin")
    return str(here) if here.exists() else shutil.which("ncmargin")


def _run(cmd):
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)


def test_python_m_help():
    r = _run([sys.executable, "-m", "ncmargin", "--help"])
    assert r.returncode == 0, r.stderr
    assert "usage: ncmargin" in r.stdout and "neural collapse" in r.stdout.lower()


def test_console_script_help():
    script = _script()
    if script is None:
        pytest.fail("the `ncmargin` console script is not installed; run `pip install -e .`")
    r = _run([script, "--help"])
    assert r.returncode == 0, r.stderr
    assert "usage: ncmargin" in r.stdout


def test_unknown_command_fails():
    r = _run([sys.executable, "-m", "ncmargin", "no-such-command"])
    assert r.returncode != 0
    assert "invalid choice" in r.stderr or "no-such-command" in r.stderr
