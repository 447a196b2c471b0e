"""ncmargin.errors.describe: every bad-input class gives one line naming the file; bugs give None."""

import json
import pickle
import zipfile

import numpy as np
import pytest
import torch

from ncmargin.errors import describe, isolated


def _raised(fn):
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - the exception is what the test inspects
        return exc
    raise AssertionError("no exception")


def test_each_input_error_class_names_the_file(tmp_path):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    trunc = tmp_path / "trunc.pt"
    torch.save({"a": torch.zeros(3)}, trunc)
    trunc.write_bytes(trunc.read_bytes()[:60])
    npz = tmp_path / "x.npz"
    np.savez(npz, a=np.zeros(2))
    cases = {
        "is a directory": _raised(lambda: open(tmp_path, "rb")),  # noqa: SIM115
        "already exists": _raised(lambda: (tmp_path / "d").mkdir() or (tmp_path / "d").mkdir()),
        "not a directory": _raised(lambda: open(npz / "child")),  # noqa: SIM115
        "not a readable checkpoint": _raised(lambda: pickle.loads(b"\x80\x04\x95")),
        "corrupted torch checkpoint": _raised(lambda: torch.load(trunc, weights_only=True)),
        "missing array": _raised(lambda: np.load(npz)["nope"]),
        "corrupted archive": _raised(lambda: zipfile.ZipFile(empty)),
        "malformed JSON": _raised(lambda: json.loads("{")),
    }
    for want, exc in cases.items():
        line = describe(exc)
        assert line is not None and "\n" not in line, (want, exc)
        assert want in line, (want, line)
    assert str(tmp_path) in describe(cases["is a directory"])
    assert "x.npz" in describe(cases["not a directory"])
    assert "'nope'" in describe(cases["missing array"])


def test_bugs_are_not_input_errors():
    for exc in (TypeError("x"), AttributeError("x"), RuntimeError("plain bug"), KeyError("a key"), ZeroDivisionError()):
        assert describe(exc) is None
    with pytest.raises(RuntimeError):
        isolated(lambda: (_ for _ in ()).throw(RuntimeError("plain bug")))
