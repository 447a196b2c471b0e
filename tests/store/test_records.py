"""Typed result records: written and read through the same class, schema ids, unknown keys rejected."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ncmargin.store import (
    F,
    FiguresIndex,
    Record,
    SchemaError,
    Sweep,
    UnknownKeyError,
    Verdict,
    Verdicts,
    check_keys,
    find_preset,
    list_presets,
    read_preset,
    settings_from,
)
from ncmargin.store.records import results_markdown


def _verdict(i="1c.x", verdict="pass", **kw):
    return {"claim": "1c", "id": i, "statement": "s", "statistic": "tau", "value": 0.5, "threshold": "> 0",
            "verdict": verdict, "runs": ["a"], "detail": {"n": 5}, **kw}


def _verdicts(**kw):
    return Verdicts(preset="quick", created="2026-01-01T00:00:00+00:00", ncmargin_version="0.1.0",
                    verdicts=[_verdict(), _verdict("1c.y", "fail")], **kw)


def test_round_trip_is_exact(tmp_path):
    rec = _verdicts(timings={"total_s": 1.5}, notes=["n"])
    p = rec.write(tmp_path)
    assert p == tmp_path / "verdicts.json"
    doc = json.loads(p.read_text())
    assert next(iter(doc)) == "schema" and doc["schema"] == "ncmargin.verdicts/1"
    back = Verdicts.read(tmp_path)
    assert back == rec and json.dumps(back) == json.dumps(rec)
    assert isinstance(back.verdicts[0], Verdict) and back.verdicts[1].verdict == "fail"
    assert back["timings"]["total_s"] == 1.5 and back.reused == []  # defaults filled in


def test_unknown_key_rejected_listing_valid_ones(tmp_path):
    doc = dict(_verdicts(), tmings={})
    (tmp_path / "verdicts.json").write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match=r"verdicts\.json: unknown key\(s\) \['tmings'\]; valid keys: preset, "
                                          r"created, .*timings.*; rerun `ncmargin verify`"):
        Verdicts.read(tmp_path)
    doc = _verdicts()
    doc["verdicts"][1]["pvalue"] = 0.1
    (tmp_path / "verdicts.json").write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match=r"verdicts\[1\]: unknown key\(s\) \['pvalue'\]; valid keys: claim, id"):
        Verdicts.read(tmp_path)


def test_missing_and_mistyped_keys(tmp_path):
    doc = _verdicts()
    del doc["verdicts"][0]["statement"]
    with pytest.raises(SchemaError, match=r"x\.json: verdicts\[0\]: missing required key 'statement'"):
        Verdicts(doc, _where="x.json")
    with pytest.raises(SchemaError, match=r"verdicts\[0\]\.runs must be a list"):
        Verdicts(dict(_verdicts(), verdicts=[_verdict(runs="a")]), _where="x.json")
    with pytest.raises(SchemaError, match=r"verdict 'maybe' is not one of"):
        Verdict(_verdict(verdict="maybe"))
    with pytest.raises(SchemaError, match=r"duplicate verdict ids \['1c\.x'\]"):
        Verdicts(dict(_verdicts(), verdicts=[_verdict(), _verdict()]))


def test_schema_id_mismatch_and_missing(tmp_path):
    p = tmp_path / "verdicts.json"
    p.write_text(json.dumps(dict(_verdicts(), schema="ncmargin.verdicts/2")))
    with pytest.raises(SchemaError, match=r"schema is 'ncmargin\.verdicts/2', expected 'ncmargin\.verdicts/1'"):
        Verdicts.read(p)
    p.write_text(json.dumps(dict(_verdicts(), schema="ncmargin.sweep/1")))
    with pytest.raises(SchemaError, match=r"schema is 'ncmargin\.sweep/1'"):
        Verdicts.read(p)
    doc = dict(_verdicts())
    doc.pop("schema")
    p.write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match=r"no 'schema' key, expected 'ncmargin\.verdicts/1'"):
        Verdicts.read(p)
    with pytest.raises(FileNotFoundError, match=r"nope/verdicts\.json: no such file"):
        Verdicts.read(tmp_path / "nope" / "verdicts.json")


class _Thing(Record):
    """A test record with an older version that still reads."""

    SCHEMA = "test.thing/2"
    READS = ("test.thing/1",)
    FILE = "thing.json"

    name: str = F("a name")
    size: float | None = F("a size", None)
    tags: list[str] = F("tags", list)


def test_older_schema_still_reads_and_is_written_as_current(tmp_path):
    (tmp_path / "thing.json").write_text(json.dumps({"schema": "test.thing/1", "name": "a"}))
    t = _Thing.read(tmp_path)
    assert t.name == "a" and t.size is None and t.tags == [] and t["schema"] == "test.thing/2"
    t.write(tmp_path)
    assert json.loads((tmp_path / "thing.json").read_text())["schema"] == "test.thing/2"
    with pytest.raises(AttributeError, match="no key 'nme'; keys: name, size, tags"):
        t.nme  # noqa: B018


def test_numpy_values_and_nan_written_as_null(tmp_path):
    import numpy as np

    t = _Thing(name="a", size=np.float64("nan"), tags=[])
    t.write(tmp_path)
    assert json.loads((tmp_path / "thing.json").read_text())["size"] is None
    assert _Thing(name="b", size=np.float32(2.5)).size == 2.5


def test_baseline_files_round_trip():
    """Result files written by the code before the records read back unchanged (when present)."""
    base = Path("/work/baseline_quick")
    if not base.is_dir():
        pytest.skip("no baseline verify output on this machine")
    from ncmargin.store import Analysis, Claim1a, Claim1b

    def subset(raw, rec):  # every stored key reads back unchanged (absent optional keys get their default)
        if isinstance(raw, dict):
            return all(k in rec and subset(v, rec[k]) for k, v in raw.items())
        if isinstance(raw, list):
            return len(raw) == len(rec) and all(subset(a, b) for a, b in zip(raw, rec))
        return raw == rec

    for cls, p in ((Verdicts, base / "verdicts.json"), (Sweep, base / "sweep" / "sweep.json"),
                   (FiguresIndex, base / "figures" / "figures.json")):
        assert json.dumps(cls.read(p)) == json.dumps(json.loads(p.read_text()))
    # analysis.json has gained an optional key since (skipped_checkpoints, default {})
    p = base / "runs" / "digits_wd0" / "analysis.json"
    rec = Analysis.read(p)
    assert subset(json.loads(p.read_text()), rec) and rec["skipped_checkpoints"] == {}
    for cls, p in ((Claim1a, base / "claim1a"), (Claim1b, base / "claim1b")):
        assert subset(json.loads(cls.path_of(p).read_text()), cls.read(p))


def test_results_doc_is_generated_from_the_records():
    text = (Path(__file__).resolve().parents[2] / "docs" / "results.md").read_text()
    assert results_markdown() in text, "docs/results.md is stale: regenerate it (python -m ncmargin.store.records)"


@dataclass
class _Syn:
    K: int = 4
    separation: float = 4.0


@dataclass
class _Settings:
    steps: int = 100
    lr: float | None = None
    runs: list[str] = field(default_factory=list)
    synthetic: _Syn | None = None


def test_settings_from_rejects_unknown_keys_listing_valid_ones():
    s = settings_from(_Settings, {"steps": 5, "lr": 1, "runs": ["a"], "synthetic": {"K": 3}, "_about": "x"}, "c")
    assert s == _Settings(5, 1, ["a"], _Syn(3, 4.0))
    assert settings_from(_Settings, s, "c") is s and settings_from(_Settings, None, "c") == _Settings()
    with pytest.raises(UnknownKeyError, match=r"preset section 'claim1a': unknown key\(s\) \['step'\]; "
                                              r"valid keys: steps, lr, runs, synthetic"):
        settings_from(_Settings, {"step": 5}, "preset section 'claim1a'")
    with pytest.raises(UnknownKeyError, match=r"c\.synthetic: unknown key\(s\) \['k'\]; valid keys: K, separation"):
        settings_from(_Settings, {"synthetic": {"k": 3}}, "c")
    with pytest.raises(ValueError, match=r"c\.steps = '5': expected int"):
        settings_from(_Settings, {"steps": "5"}, "c")
    with pytest.raises(ValueError, match=r"c\.lr = True: expected float"):
        settings_from(_Settings, {"lr": True}, "c")
    with pytest.raises(UnknownKeyError, match=r"where: unknown key\(s\) \['b'\]; valid keys: a"):
        check_keys({"a": 1, "b": 2, "_c": 3}, ["a"], "where")


def test_presets():
    assert "quick" in list_presets("verify") and "quick" in list_presets("sweep")
    assert "quick_digits" in list_presets("train") and not any(n.startswith(("sweep_", "verify_"))
                                                               for n in list_presets("train"))
    assert find_preset("verify", "quick").name == "verify_quick.json"
    assert find_preset("sweep", "sweep_quick").name == "sweep_quick.json"
    _, obj = read_preset("verify", "quick")
    assert "runs" in obj and not any(k.startswith("_") for k in obj)
    with pytest.raises(FileNotFoundError, match=r"verify preset 'quik' not found; presets: paper, quick"):
        find_preset("verify", "quik")
    with pytest.raises(ValueError, match="preset kind 'x'"):
        list_presets("x")
