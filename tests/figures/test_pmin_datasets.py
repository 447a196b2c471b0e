"""The across-datasets p_min figure (paper Fig. 3 on several datasets) from stored logs only."""

from __future__ import annotations

import json
import math

import pytest

from ncmargin.figures import make_figures
from ncmargin.figures.base import read_csv
from ncmargin.figures.pmin_datasets import plot_pmin_datasets

from .fixtures import write_run


def _f(s: str) -> float:
    return math.nan if s in ("", "nan") else float(s)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pd")
    return [write_run(root / "runs" / "digits_wd0", wd=0.0, onset=10, dataset="digits"),
            write_run(root / "runs" / "mnist5k_wd0", wd=0.0, onset=6, epochs=40, dataset="mnist5k", seed=1),
            write_run(root / "runs" / "mnist5k_wd5e-4", wd=5e-4, onset=7, epochs=40, dataset="mnist5k",
                      seed=2, with_analysis=False),
            write_run(root / "runs" / "synthetic_wd0", wd=0.0, onset=4, epochs=20, dataset="synthetic")]


def test_csv_equals_logs_and_columns_per_dataset(runs, tmp_path):
    res = plot_pmin_datasets(runs, tmp_path)
    assert res.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and res.pdf.read_bytes()[:5] == b"%PDF-"
    rows = read_csv(res.csv)
    first = [r["dataset"] for r in rows if _f(r["epoch"]) == 1]
    assert first == ["digits", "mnist5k", "mnist5k", "synthetic"]
    for rd in runs:
        log = [json.loads(x) for x in (rd / "log.jsonl").read_text().splitlines() if x.strip()]
        mine = [r for r in rows if r["run_id"] == rd.name]
        assert [int(float(r["epoch"])) for r in mine] == [x["epoch"] for x in log]
        assert [_f(r["p_min"]) for r in mine] == [x["p_min"] for x in log]
        assert [_f(r["normalized_margin"]) for r in mine] == [x["normalized_margin"] for x in log]
    assert "3 datasets (digits, mnist5k, synthetic" in res.caption
    assert {r["onset_epoch"] for r in rows if r["run_id"] == "mnist5k_wd0"} == {"6"}


def test_make_figures_draws_it_for_several_datasets_only(runs, tmp_path):
    skipped: list[str] = []
    res = {r.name: r for r in make_figures(runs, tmp_path / "all", skipped=skipped, strict=True)}
    assert "pmin_datasets" in res and "pmin" in res
    one = {r.name for r in make_figures(runs[1:3], tmp_path / "one", strict=True)}
    assert "pmin_datasets" not in one and "pmin" in one


def test_one_dataset_or_missing_pmin_is_an_error(runs, tmp_path):
    with pytest.raises(ValueError, match="at least two datasets"):
        plot_pmin_datasets(runs[1:3], tmp_path)
    bad = runs[0].parent / "nopmin"
    write_run(bad, dataset="cifar10")
    lines = [json.loads(x) for x in (bad / "log.jsonl").read_text().splitlines() if x.strip()]
    (bad / "log.jsonl").write_text("\n".join(json.dumps({k: v for k, v in x.items() if k != "p_min"})
                                             for x in lines) + "\n")
    with pytest.raises(ValueError, match="p_min"):
        plot_pmin_datasets([runs[0], bad], tmp_path)
