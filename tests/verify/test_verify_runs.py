"""``ncmargin verify --runs``: claims declaring ``external_runs`` on run directories written elsewhere."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from ncmargin import Recorder
from ncmargin.empirical.claims import all_claims
from ncmargin.empirical.train import train
from ncmargin.pipeline import verify_runs


def _record(out, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    X, y = torch.randn(60, 6, generator=g), torch.arange(60) % 3
    Xt, yt = torch.randn(30, 6, generator=g), torch.arange(30) % 3
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    with Recorder(out, net, train=(X, y), test=(Xt, yt), schedule="every", metadata={"seed": seed}) as rec:
        rec.epoch_end(0)
        for ep in range(1, 9):
            loss = nn.functional.cross_entropy(net(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.epoch_end(ep)


def test_claims_declare_external_runs():
    assert [c.id for c in all_claims() if c.external_runs] == ["1c", "2"]


def test_verify_runs_on_recorded_and_trained_runs(tmp_path):
    _record(tmp_path / "a" / "run", 0)
    _record(tmp_path / "b" / "run", 1)
    train("quick_digits", tmp_path / "trained", overrides={"epochs": 3, "n_per_class": 10, "quiet": True})
    dirs = [tmp_path / "a" / "run", tmp_path / "b" / "run", tmp_path / "trained"]
    doc = verify_runs(dirs, tmp_path / "out", quiet=True, figures=False)
    assert doc["claims"] == ["1c", "2"]
    assert doc["runs"] == {"a-run": str(dirs[0].resolve()), "b-run": str(dirs[1].resolve()),
                           "trained": str(dirs[2].resolve())}
    for lab in doc["runs"]:
        ids = {v["id"] for v in doc["verdicts"] if v["runs"] == [lab]}
        assert {f"1c.angle_trend.{lab}", f"2.spectral_trend.{lab}", f"2.non_vacuous.{lab}"} <= ids
        mirror = tmp_path / "out" / "runs" / lab
        assert json.loads((mirror / "source.json").read_text())["run_dir"] == doc["runs"][lab]
        assert json.loads((mirror / "analysis.json").read_text())["run_id"] == lab
    assert not doc["errors"]
    assert "claim 3" in " ".join(doc["notes"])
    # the trained run rebuilds its network from its TrainConfig: a spectral bound, no error
    sp = next(v for v in doc["verdicts"] if v["id"] == "2.spectral_trend.trained")
    assert "Recorder(spectral=True)" not in json.dumps(sp["detail"])
    report = (tmp_path / "out" / "report.md").read_text()
    assert "a-run" in report and "b-run" in report
    # rerun: analyses reused, mirrors rewritten
    again = verify_runs(dirs, tmp_path / "out", quiet=True, figures=False)
    assert [v["id"] for v in again["verdicts"]] == [v["id"] for v in doc["verdicts"]]


def test_verify_runs_bad_input(tmp_path):
    _record(tmp_path / "run", 0)
    with pytest.raises(ValueError, match="not a run directory"):
        verify_runs([tmp_path / "nothing"], tmp_path / "out", quiet=True, figures=False)
    with pytest.raises(ValueError, match=r"cannot be judged on given run directories.*1c, 2 \(and 3"):
        verify_runs([tmp_path / "run"], tmp_path / "out", claims="1a", quiet=True, figures=False)
    with pytest.raises(ValueError, match="unknown claim"):
        verify_runs([tmp_path / "run"], tmp_path / "out", claims="9", quiet=True, figures=False)
    (tmp_path / "out" / "runs" / "run" / "checkpoints").mkdir(parents=True)  # a trained run lives there
    with pytest.raises(ValueError, match="did not write; use another --out"):
        verify_runs([tmp_path / "run"], tmp_path / "out", quiet=True, figures=False)


def _record_etf(out, perm, seed: int) -> None:
    from ncmargin.empirical.models import FixedETFHead

    g = torch.Generator().manual_seed(123)  # the same data for every run
    X, y = torch.randn(60, 6, generator=g), torch.arange(60) % 3
    Xt, yt = torch.randn(30, 6, generator=g), torch.arange(30) % 3
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), FixedETFHead(16, 3, perm=perm, rotation_seed=0, scale=4.0))
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    with Recorder(out, net, train=(X, y), test=(Xt, yt), schedule=[0, 10], metadata={"seed": seed}) as rec:
        for ep in range(1, 11):
            loss = nn.functional.cross_entropy(net(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.epoch_end(ep)


def test_verify_runs_judges_claim3_on_fixed_etf_runs(tmp_path):
    dirs = []
    for perm in ([0, 1, 2], [2, 0, 1]):
        for seed in (0, 1):
            dirs.append(tmp_path / f"p{perm[0]}_s{seed}")
            _record_etf(dirs[-1], perm, seed)
    doc = verify_runs(dirs, tmp_path / "out", quiet=True, figures=False)
    assert doc["claims"] == ["1c", "2", "3"]
    ids = {v["id"] for v in doc["verdicts"] if v["claim"] == "3"}
    assert "3.alignment_effect" in ids and "3.terminal_phase" in ids
    sweep = json.loads((tmp_path / "out" / "sweep" / "sweep.json").read_text())
    assert sorted(r["alignment"] for r in sweep["runs"]) == ["perm 0,1,2/rot 0"] * 2 + ["perm 2,0,1/rot 0"] * 2
    assert sorted(sweep["seeds"]) == [0, 1]
    # three runs: no complete table -> claim 3 skipped with the reason
    doc3 = verify_runs(dirs[:3], tmp_path / "out3", quiet=True, figures=False)
    assert doc3["claims"] == ["1c", "2"] and "incomplete alignment x seed table" in " ".join(doc3["notes"])
