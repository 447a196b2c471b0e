"""Item 5 of issue 12: a name never chooses a path outside the output directory."""

import os

import pytest

from ncmargin.cli import main as cli_main
from ncmargin.empirical.config import load_config
from ncmargin.store import run_path, safe_run_name

BAD = ["../../x", "..", ".", "", ".hidden", "a/b", "a\\b", "/abs", "C:x", "x" * 129, "a\x00b", "a b", "a..b",
       "-rf", None, 3]
GOOD = ["digits_wd0", "digits_wd5e-4", "al03_s2", "quick.v2", "X"]


@pytest.mark.parametrize("name", BAD)
def test_bad_run_names_are_refused(name):
    with pytest.raises(ValueError, match="is not allowed"):
        safe_run_name(name)


@pytest.mark.parametrize("name", GOOD)
def test_good_run_names_pass(name):
    assert safe_run_name(name) == name


def test_run_path_stays_inside_root(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    assert run_path(root, "a") == root / "a"
    with pytest.raises(ValueError, match="not allowed"):
        run_path(root, "../../x")
    os.symlink(tmp_path, root / "link")  # an existing link that leads out of root
    with pytest.raises(ValueError, match="points outside"):
        run_path(root, "link")


def test_preset_lookup_never_leaves_the_preset_directory(tmp_path, monkeypatch):
    # a JSON file two levels above the presets: reachable as '../../x' relative to the preset dir before
    from ncmargin.empirical import config

    outside = config.PRESET_DIR.parent.parent / "i12_escape_probe.json"
    outside.write_text('{"epochs": 3}')
    try:
        monkeypatch.chdir(tmp_path)
        with pytest.raises(FileNotFoundError, match="neither a JSON file nor a preset"):
            load_config("../../i12_escape_probe")
    finally:
        outside.unlink()


def test_train_default_run_name_is_validated(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / ".json"  # the config's stem would be the hidden name '.json'
    cfg.write_text("{}")
    assert cli_main(["train", str(cfg), "--set", "epochs=1"]) == 2
    err = capsys.readouterr().err
    assert "not allowed" in err and "--out" in err and not (tmp_path / "runs").exists()
