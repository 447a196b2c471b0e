"""``ncmargin train`` under 2 gloo ranks evaluates through the Recorder's shard + gather path (issue 13
item 2) and writes the run directory of a single process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ncmargin.store import load_checkpoint, load_run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def test_train_ddp_gloo_equals_single_process(tmp_path):
    script = str(HERE / "_train_ddp_script.py")
    base = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        base.pop(k, None)
    procs = [subprocess.Popen([sys.executable, script, str(tmp_path / "single")], env=base,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)]
    for r in range(2):
        env = {**base, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2",
               "NCMARGIN_TEST_INIT": f"file://{tmp_path / 'rendezvous'}"}
        procs.append(subprocess.Popen([sys.executable, script, str(tmp_path / "ddp")], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out.decode()[-3000:]
    ra, rb = load_run(tmp_path / "single"), load_run(tmp_path / "ddp")
    assert rb.meta["world_size"] == 2 and ra.checkpoint_epochs == rb.checkpoint_epochs
    assert [r["epoch"] for r in ra.log] == [r["epoch"] for r in rb.log] == list(range(5))
    # epoch 0: same initial network, evaluated as two gathered shards = one pass (dataset order)
    a0, b0 = load_checkpoint(ra.path, 0), load_checkpoint(rb.path, 0)
    np.testing.assert_array_equal(a0.labels, b0.labels)
    np.testing.assert_allclose(b0.features, a0.features, rtol=0, atol=1e-6)
    assert rb.log[0]["loss"] == pytest.approx(ra.log[0]["loss"], rel=1e-9)
    # later epochs: the DDP-averaged gradient of the two half batches equals the full-batch one up to rounding
    for la, lb in zip(ra.log, rb.log, strict=True):
        assert lb["train_acc"] == la["train_acc"] and lb["test_acc"] == la["test_acc"], la["epoch"]
        assert lb["loss"] == pytest.approx(la["loss"], rel=1e-4), la["epoch"]
