"""Item 1 of issue 12: the resume state never unpickles arbitrary objects."""


import numpy as np
import pytest
import torch

from ncmargin.cli import main as cli_main
from ncmargin.empirical.runs import read_log
from ncmargin.empirical.train import train

from .helpers import TINY, crafted_state

TIMING = ("seconds", "eval_seconds")


def _strip(log):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in log]


@pytest.fixture
def partial_run(tmp_path):
    part = tmp_path / "part"
    train(None, part, overrides=TINY + ["epochs=5"], stop_after=3)
    return part


def test_crafted_last_pt_is_refused_and_runs_no_code(partial_run, tmp_path):
    marker = tmp_path / "PWNED"
    crafted_state(partial_run / "checkpoints" / "last.pt", marker)
    with pytest.raises(ValueError, match=r"last\.pt: refused to load the resume state") as ei:
        train(None, partial_run, resume=True)
    assert "train again" in str(ei.value)
    assert not marker.exists()


def test_crafted_last_pt_via_cli_is_one_line_exit_2(partial_run, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    crafted_state(partial_run / "checkpoints" / "last.pt", marker)
    rc = cli_main(["train", "--resume", str(partial_run), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "refused to load" in err and "Traceback" not in err
    assert not marker.exists()


def test_resume_state_loads_with_weights_only(partial_run):
    state = torch.load(partial_run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert state["epoch"] == 2 and set(state["model"]) and state["optimizer"]["state"]


def test_resume_after_refactor_is_bit_identical(tmp_path, partial_run):
    full = tmp_path / "full"
    train(None, full, overrides=TINY + ["epochs=5"])
    train(None, partial_run, resume=True)
    assert _strip(read_log(full)) == _strip(read_log(partial_run))
    with np.load(full / "checkpoints" / "epoch_0005.npz") as a, \
            np.load(partial_run / "checkpoints" / "epoch_0005.npz") as b:
        assert np.array_equal(a["features"], b["features"])


@pytest.mark.parametrize("damage", ["truncate", "garbage", "not_a_dict"])
def test_corrupted_last_pt_is_a_clear_error(partial_run, damage):
    p = partial_run / "checkpoints" / "last.pt"
    if damage == "truncate":
        p.write_bytes(p.read_bytes()[:100])
    elif damage == "garbage":
        p.write_bytes(b"\x00not a checkpoint" * 10)
    else:
        torch.save([1, 2, 3], p)
    with pytest.raises(ValueError, match=r"last\.pt: (corrupted|not an ncmargin resume state)"):
        train(None, partial_run, resume=True)


def test_to_safe_converts_rng_states_and_refuses_objects():
    import random

    from ncmargin.empirical.resume_state import to_safe

    safe = to_safe({"np": np.random.RandomState(3).get_state(), "py": random.Random(1).getstate(),
                    "torch": torch.get_rng_state(), "n": np.int64(4)})
    assert isinstance(safe["np"][1], torch.Tensor) and safe["n"] == 4 and type(safe["n"]) is int
    buf = __import__("io").BytesIO()
    torch.save(safe, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=True)
    st = np.random.RandomState()
    st.set_state((back["np"][0], back["np"][1].numpy(), *back["np"][2:]))
    assert st.randint(1 << 30) == np.random.RandomState(3).randint(1 << 30)
    r = random.Random()
    r.setstate(back["py"])
    assert r.random() == random.Random(1).random()
    with pytest.raises(TypeError, match="cannot be stored"):
        to_safe({"x": object()})
