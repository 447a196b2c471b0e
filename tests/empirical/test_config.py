import json

import pytest

from ncmargin.empirical.config import TrainConfig, apply_overrides, list_presets, load_config, parse_overrides


def test_overrides_convert_types():
    cfg = load_config("quick_digits", ["lr=0.25", "epochs=7", "head_bias=false", "milestones=3,5",
                                       "schedule=step"])
    assert cfg.lr == 0.25 and isinstance(cfg.lr, float)
    assert cfg.epochs == 7 and isinstance(cfg.epochs, int)
    assert cfg.head_bias is False
    assert cfg.milestone_list() == [3, 5]


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError, match=r"unknown config key 'learning_rate'.*valid keys:.*\blr\b"):
        load_config("quick_digits", ["learning_rate=0.1"])
    with pytest.raises(ValueError, match="unknown config key 'bogus'"):
        load_config({"bogus": 1})


def test_unknown_key_in_json_file(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"epochs": 3, "optimiser": "sgd"}))
    with pytest.raises(ValueError, match="unknown config key 'optimiser'"):
        load_config(str(p))


@pytest.mark.parametrize("item, msg", [("epochs=1.5", "expected an integer"), ("quiet=maybe", "boolean"),
                                       ("lr=fast", "expected a number"), ("optimizer=lbfgs", "choose one of"),
                                       ("lr", "not key=value"), ("schedule=step", "needs milestones")])
def test_bad_values(item, msg):
    with pytest.raises(ValueError, match=msg):
        load_config("quick_digits", [item])


def test_presets_resolve():
    names = list_presets()
    assert {"quick_digits", "quick_digits_wd", "paper_cifar10", "paper_cifar100"} <= set(names)
    for n in names:
        load_config(n)
    c10 = load_config("paper_cifar10")
    assert (c10.model, c10.epochs, c10.batch_size, c10.weight_decay, c10.milestone_list()) == \
        ("resnet18", 350, 128, 5e-4, [116, 233])
    assert load_config("quick_digits_wd").weight_decay == 5e-4


def test_sweep_file_is_not_a_train_config():
    from ncmargin.empirical.config import PRESET_DIR
    others = [p for p in sorted(PRESET_DIR.glob("*.json")) if p.stem not in list_presets()]
    if not others:
        pytest.skip("no presets of other commands")
    for p in others:
        with pytest.raises(ValueError, match="not a training config"):
            load_config(p.stem)


def test_other_presets_name_their_command(capsys):
    from ncmargin.cli import main

    with pytest.raises(ValueError, match=r"sweep preset: run `ncmargin sweep sweep_quick`"):
        load_config("sweep_quick")
    with pytest.raises(ValueError, match=r"verify preset: run `ncmargin verify --preset quick`"):
        load_config("verify_quick")
    assert main(["train", "sweep_quick"]) == 2
    assert "`ncmargin sweep sweep_quick`" in capsys.readouterr().err
    # --list shows training presets only
    assert main(["train", "--list"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("presets:") and "quick_digits" in first
    assert "sweep_" not in first and "verify_" not in first


def test_missing_config():
    with pytest.raises(FileNotFoundError, match="neither a JSON file nor a preset"):
        load_config("no_such_preset")


def test_parse_and_apply():
    assert parse_overrides(["lr=1", "--head-bias=0"]) == {"lr": "1", "head_bias": "0"}
    cfg = apply_overrides(TrainConfig(), {"width": "64"})
    assert cfg.width == 64
