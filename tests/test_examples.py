"""examples/ run on a CPU on small random data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ncmargin
from ncmargin.empirical.runs import load_run

ROOT = Path(ncmargin.__file__).resolve().parents[1]


def test_train_cifar10_resnet18_example_fake_data(tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "train_cifar10_resnet18.py"), "--fake-data",
                        "--n-train", "40", "--n-test", "20", "--image-size", "8", "--batch-size", "20",
                        "--epochs", "2", "--num-checkpoints", "2", "--workers", "0", "--device", "cpu",
                        "--out", str(out)], check=False, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    run = load_run(out)
    assert run.checkpoint_epochs == [0, 1, 2]
    assert run.meta["config"]["model"] == "resnet18" and run.meta["model"]["feature_dim"] == 512
    assert run.summary["complete"]
