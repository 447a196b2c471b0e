"""Claim 3's verdict through ncmargin.theory.alignment_effect (issue 14, docs/theory.md §10, §13): effect ->
pass, equivalence shown -> fail, otherwise inconclusive with the MDE; the power settings are typed preset keys."""

from __future__ import annotations

import numpy as np
import pytest

from ncmargin.empirical.claims.claim3.claim import Settings, claim3_verdicts, power_line
from ncmargin.empirical.claims.claim3.stats import sweep_statistics
from ncmargin.empirical.claims.claim3.sweep import load_sweep_preset
from ncmargin.store import AlignmentPower, UnknownKeyError, settings_from


def _doc(effect_points, sd_points, seeds, A=6, rng=0):
    """A sweep document whose final test accuracies (fractions, as sweep.json stores them) are
    0.9 + effect_a + noise, with alignment effects spread by ``effect_points`` accuracy points."""
    g = np.random.default_rng(rng)
    eff = np.linspace(-1, 1, A) * effect_points
    ids = [f"a{a:02d}" for a in range(A)]
    runs = [{"alignment": ids[a], "seed": s, "reached_tpt": True, "run_id": f"{ids[a]}_s{s}",
             "final_test_acc": 0.9 + (eff[a] + g.normal(0, sd_points)) / 100.0, "predictors": {}}
            for a in range(A) for s in range(seeds)]
    stats = sweep_statistics(runs, ids, list(range(seeds)), n_perm=999, n_boot=50)
    return {"runs": runs, "alignments": [{"id": i} for i in ids], "stats": stats}


def _effect(doc, **kw):
    return {v["id"]: v for v in claim3_verdicts(doc, **kw)}["3.alignment_effect"]


def test_true_effect_passes_with_power_stored():
    doc = _doc(1.0, 0.1, seeds=4)
    v = _effect(doc)
    assert v["verdict"] == "pass" and v["detail"]["power"]["verdict"] == "effect"
    AlignmentPower(v["detail"]["power"])   # the stored record validates
    assert doc["stats"]["power"]["design"] == [6, 4]
    assert doc["stats"]["verdict"]["outcome"] == "pass"
    # percent, not fractions: the alignment means are accuracies around 90 points
    assert 85 < np.mean(v["detail"]["power"]["alignment_means"]) < 95


def test_no_effect_with_many_seeds_fails_as_an_evidenced_negative():
    v = _effect(_doc(0.0, 0.3, seeds=12))
    assert v["verdict"] == "fail" and v["detail"]["power"]["verdict"] == "no_effect"
    assert v["detail"]["power"]["equivalence_p"] < 0.05
    assert v["value"] == v["detail"]["power"]["p_permutation"]


def test_no_effect_with_three_seeds_is_inconclusive_and_names_the_mde():
    doc = _doc(0.0, 0.8, seeds=3, A=4)
    v = _effect(doc)
    pw = v["detail"]["power"]
    assert v["verdict"] == "inconclusive" and pw["verdict"] == "inconclusive"
    assert "underpowered (MDE = " in v["detail"]["reason"] and pw["mde"] > 0.5
    # the old rule (both p >= alpha -> fail) would have called this a negative
    assert doc["stats"]["verdict"]["both_p_rule_outcome"] == "fail"
    assert "MDE = " in power_line(pw) and "A×S = 4×3" in power_line(pw)


def test_predictors_stay_unjudged_without_an_effect():
    doc = _doc(0.0, 0.3, seeds=12)
    for r in doc["runs"]:
        r["predictors"] = {"alignment_score": float(r["final_test_acc"])}
    doc["stats"] = sweep_statistics(doc["runs"], [a["id"] for a in doc["alignments"]], list(range(12)),
                                    n_perm=999, n_boot=50)
    vs = {v["id"]: v for v in claim3_verdicts(doc)}
    assert vs["3.alignment_effect"]["verdict"] == "fail"
    assert vs["3.predictor.alignment_score"]["verdict"] == "inconclusive"


def test_verify_settings_override_the_sesoi():
    doc = _doc(0.0, 0.3, seeds=12)
    assert doc["stats"]["power"]["sesoi"] == 0.5
    v = _effect(doc, power={"sesoi": 0.01})   # a SESOI far below the MDE: equivalence cannot be shown
    assert v["detail"]["power"]["sesoi"] == 0.01 and v["verdict"] == "inconclusive"


def test_power_settings_are_typed_and_checked():
    s = settings_from(Settings, {"sweep": "sweep_quick", "sesoi": 0.5, "target_power": 0.8}, "claim3")
    assert s.sesoi == 0.5 and s.target_power == 0.8
    with pytest.raises(ValueError, match="target_power"):
        settings_from(Settings, {"target_power": 1.5}, "claim3")
    with pytest.raises(ValueError, match="sesoi"):
        settings_from(Settings, {"sesoi": -1}, "claim3")
    with pytest.raises(UnknownKeyError, match="valid keys"):
        settings_from(Settings, {"sesio": 0.5}, "claim3")
    pre = load_sweep_preset("sweep_standard")
    assert pre["sesoi"] == 0.5 and pre["power_design"]["seeds"] == pre["seeds"]
    with pytest.raises(UnknownKeyError, match="sesoi, target_power"):
        load_sweep_preset({"train": "quick_digits", "sesio": 0.5})
    with pytest.raises(ValueError, match="assumed_sigma"):
        load_sweep_preset({"train": "quick_digits", "assumed_sigma": 0})


@pytest.mark.parametrize("name", ["sweep_quick", "sweep_standard", "sweep_paper_cifar10", "sweep_paper_cifar100"])
def test_every_sweep_preset_loads(name):
    assert load_sweep_preset(name)["train"]


@pytest.mark.parametrize("name", ["quick", "standard", "paper"])
def test_every_verify_preset_loads(name):
    from ncmargin.pipeline import check_preset, load_preset

    settings = check_preset(load_preset(name))
    if name != "quick":
        assert settings["3"].sesoi == 0.5 and settings["3"].target_power == 0.8
