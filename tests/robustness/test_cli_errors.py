"""Item 4 of issue 12: every bad input gets one line naming the file and the fix, exit code 2; bugs say
"internal error" (exit 3) and `--debug` shows their traceback."""

import json
import os
import shutil
import zipfile

import numpy as np
import pytest

from ncmargin.cli import main as cli_main
from ncmargin.empirical.train import train
from ncmargin.io import load_features

from .helpers import TINY, crafted_state


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "run"
    train(None, out, overrides=TINY + ["epochs=4"])
    return out


@pytest.fixture
def run(base_run, tmp_path):
    return shutil.copytree(base_run, tmp_path / "run")


@pytest.fixture
def separable(tmp_path):
    p = tmp_path / "sep.npz"
    y = np.repeat(np.arange(3), 6)
    np.savez(p, features=np.eye(3)[y] * 5 + 0.1 * np.random.default_rng(0).normal(size=(18, 3)), labels=y)
    return p


def _err(capsys, rc_want=2):
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


def _ckpt(run):
    return max((run / "checkpoints").glob("epoch_*.npz"))


def _crc_corrupt(p):
    raw = bytearray(p.read_bytes())
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("features.npy")
    off = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    raw[off] ^= 0xFF
    p.write_bytes(bytes(raw))


def test_crc_corrupted_npz_svm_and_analyze(run, capsys):
    p = _ckpt(run)
    _crc_corrupt(p)
    assert cli_main(["svm", str(p), "--soft", "1"]) == 2
    line = _err(capsys)
    assert p.name in line and "corrupted" in line and "regenerate" in line
    # analyze: the damaged checkpoint costs only itself (listed, with the file and the fix), exit code 1
    assert cli_main(["analyze", str(run), "--quiet", "--no-spectral"]) == 1
    line = _err(capsys)
    assert p.name in line and "corrupted" in line and "skipped" in line
    doc = json.loads((run / "analysis.json").read_text())
    n_ckpt = len(list((run / "checkpoints").glob("epoch_*.npz")))
    epoch = int(p.stem.split("_")[1])
    assert list(doc["skipped_checkpoints"]) == [str(epoch)] and p.name in doc["skipped_checkpoints"][str(epoch)]
    assert len(doc["checkpoints"]) == n_ckpt - 1 and epoch not in [r["epoch"] for r in doc["checkpoints"]]
    # with every checkpoint unreadable there is nothing to analyse: the error stands (exit 2, one line)
    for q in (run / "checkpoints").glob("epoch_*.npz"):
        q.write_bytes(q.read_bytes()[:100])
    assert cli_main(["analyze", str(run), "--quiet", "--no-spectral", "--force"]) == 2
    assert "no checkpoint could be read" in _err(capsys)


def test_object_array_npz_is_refused_naming_the_file(tmp_path, capsys):
    p = tmp_path / "obj.npz"
    np.savez(p, features=np.array([[object(), object()]], dtype=object), labels=np.array([0]))
    assert cli_main(["svm", str(p)]) == 2
    line = _err(capsys)
    assert "obj.npz" in line and "object array" in line


def test_complex_features_are_an_error_not_dropped(tmp_path, capsys):
    p = tmp_path / "c.npz"
    y = np.repeat(np.arange(3), 4)
    np.savez(p, features=(np.eye(3)[y] * (1 + 1j)), labels=y)
    assert cli_main(["svm", str(p), "--soft", "1"]) == 2
    line = _err(capsys)
    assert "c.npz" in line and "complex" in line
    with pytest.raises(ValueError, match="real-valued"):
        load_features(p)


def test_load_features_bogus_split_lists_the_valid_ones(separable):
    with pytest.raises(ValueError, match=r"split='bogus'.*train, test"):
        load_features(separable, split="bogus")


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "crafted"])
def test_damaged_model_weights_make_analyze_fail_loudly(run, capsys, damage, tmp_path):
    p = run / "checkpoints" / "model_0004.pt"
    raw = p.read_bytes()
    if damage == "truncated":
        p.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        p.write_bytes(b"")
    elif damage == "garbage":
        p.write_bytes(b"\x00" * 99)
    else:
        crafted_state(p, tmp_path / "PWNED")
    rc = cli_main(["analyze", str(run), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert "epoch 4" in err and "model_0004.pt" in err
    assert not (tmp_path / "PWNED").exists()
    # the other checkpoints' entries stand
    doc = json.loads((run / "analysis.json").read_text())
    ok = [r for r in doc["checkpoints"] if "error" not in r["bound"]["spectral"]]
    assert {r["epoch"] for r in ok} == {0, 1}


def test_binary_config_json_names_the_file(run, capsys):
    (run / "config.json").write_bytes(b"\x89PNG\x00\xff\xfe" * 20)
    assert cli_main(["analyze", str(run), "--quiet"]) == 2
    assert "config.json" in _err(capsys)


def test_out_paths_is_a_directory_unwritable_under_a_file(separable, tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    assert cli_main(["svm", str(separable), "--no-arrays", "--out", str(tmp_path / "adir")]) == 2
    line = _err(capsys)
    assert f"{tmp_path / 'adir'}: is a directory" in line  # the target, not the temp file's name
    (tmp_path / "afile").write_text("x")
    assert cli_main(["svm", str(separable), "--no-arrays", "--out", str(tmp_path / "afile" / "s.json")]) == 2
    line = _err(capsys)
    assert "afile: exists as a file where a directory is needed" in line
    assert cli_main(["train", "quick_digits", "--set", "epochs=1", "--out", str(tmp_path / "afile")]) == 2
    line = _err(capsys)
    assert "afile" in line


@pytest.mark.skipif(not os.path.isdir("/sys"), reason="needs Linux /sys (not writable, even for root)")
def test_unwritable_out_names_the_target(separable, capsys):
    assert cli_main(["svm", str(separable), "--no-arrays", "--out", "/sys/ncmargin_i12.json"]) == 2
    line = _err(capsys)
    assert "/sys/ncmargin_i12.json: permission denied" in line


def test_permission_denied_names_the_file(separable, capsys, monkeypatch):
    import ncmargin.io as nio

    def deny(path, *a, **k):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(nio, "atomic_write_json", deny)
    assert cli_main(["svm", str(separable), "--no-arrays", "--out", "/somewhere/sol.json"]) == 2
    line = _err(capsys)
    assert "/somewhere/sol.json" in line and "permission denied" in line


@pytest.mark.parametrize("args", [["svm", "SEP", "--tol", "-1"], ["svm", "SEP", "--tol", "nan"],
                                  ["svm", "SEP", "--gap-tol=-1e-6"], ["svm", "SEP", "--soft", "-5"],
                                  ["analyze", "RUN", "--svm-tol", "-1"], ["analyze", "RUN", "--svm-tol", "nan"],
                                  ["ufm", "-K", "3", "-n", "2", "-d", "3", "-T", "5", "--lr", "nan"]])
def test_negative_or_nan_tolerances_are_rejected(args, separable, run, capsys):
    args = [str(separable) if a == "SEP" else str(run) if a == "RUN" else a for a in args]
    with pytest.raises(SystemExit) as ei:
        cli_main(args)
    assert ei.value.code == 2
    assert "finite number > 0" in capsys.readouterr().err


def test_analyze_epochs_that_do_not_exist(run, capsys):
    assert cli_main(["analyze", str(run), "--quiet", "--no-spectral", "--svm-epochs", "4,999"]) == 2
    line = _err(capsys)
    assert "[999]" in line and "not checkpoint epochs" in line


def test_theory_tolerances_are_validated():
    from ncmargin.theory import ce_pmin_sandwich, is_etf, simplex_etf

    for bad in (-1e-8, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="atol"):
            is_etf(simplex_etf(4), atol=bad)
        with pytest.raises(ValueError, match="rtol"):
            ce_pmin_sandwich(0.1, 1.0, 10, 3, rtol=bad)


def test_a_bug_is_an_internal_error_and_debug_shows_the_traceback(separable, capsys, monkeypatch):
    from ncmargin import solvers

    def boom(*a, **k):
        raise TypeError("simulated bug")

    monkeypatch.setattr(solvers, "multiclass_svm", boom)
    assert cli_main(["svm", str(separable)]) == 3
    err = capsys.readouterr().err
    assert "internal error" in err and "--debug" in err and "Traceback" not in err
    with pytest.raises(TypeError, match="simulated bug"):
        cli_main(["--debug", "svm", str(separable)])
