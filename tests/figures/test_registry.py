"""The figure registry: a figure is one module that registers itself; make_figures draws every registered
figure the data supports and lists it in figures.json. The toy figures here are declared in this file alone,
no package file changes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ncmargin.figures import make_figures, registry, style
from ncmargin.figures.base import FigureResult, read_csv, write_csv
from ncmargin.figures.registry import Figure, Skip, all_figures, register, unregister

from .fixtures import write_run


def _draw_final_loss(runs, out_dir, name):
    """Toy: one bar per run, its last logged loss."""
    fig, axes = style.new_figure()
    losses = [float(r.series("loss")[-1]) for r in runs]
    axes[0, 0].bar(range(len(runs)), losses)
    png, pdf = style.save_figure(fig, out_dir, name)
    csv = write_csv(out_dir / f"{name}.csv", ["run_id", "final_loss"], [[r.run_id, x] for r, x in zip(runs, losses)])
    return FigureResult(name, png, pdf, csv, f"Toy: final training loss of {len(runs)} run(s).")


def _draw_checkpoints(run, out_dir, name):
    """Toy, one per run: the analysed checkpoint epochs."""
    fig, axes = style.new_figure()
    axes[0, 0].plot(run.analysis.epochs, np.ones(len(run.analysis.epochs)), "o")
    png, pdf = style.save_figure(fig, out_dir, name)
    csv = write_csv(out_dir / f"{name}.csv", ["epoch"], [[int(e)] for e in run.analysis.epochs])
    return FigureResult(name, png, pdf, csv, f"Toy: checkpoints of {run.run_id}.")


def _keep_only(monkeypatch, keep) -> None:
    """Draw only the package figures ``keep`` accepts (drawing all of them takes seconds each time)."""
    all_figures()  # the package's own figures registered
    monkeypatch.setattr(registry, "REGISTRY", {n: f for n, f in registry.REGISTRY.items() if keep(f)})


@pytest.fixture
def toys(monkeypatch):
    _keep_only(monkeypatch, lambda f: f.name == "terminal_phase")
    figs = [register(Figure(name="toy_loss", inputs="runs", order=999, draw=_draw_final_loss,
                            caption="toy: final loss per run")),
            register(Figure(name="toy_ckpt_<run>", inputs="runs", each=True, draw=_draw_checkpoints,
                            caption="toy: analysed checkpoints",
                            select=lambda r: r if r.analysis is not None else Skip("no analysis.json")))]
    yield figs
    for f in figs:
        unregister(f.name)


def test_a_figure_registered_from_a_test_file_is_drawn_and_indexed(tmp_path, toys):
    write_run(tmp_path / "v" / "runs" / "a", epochs=12, onset=4)                      # with analysis.json
    write_run(tmp_path / "v" / "runs" / "b", epochs=12, onset=4, seed=1, with_analysis=False)
    skipped: list[str] = []
    res = {r.name: r for r in make_figures([tmp_path / "v"], tmp_path / "figs", skipped=skipped, strict=True)}
    assert {"toy_loss", "toy_ckpt_a"} <= set(res) and "toy_ckpt_b" not in res
    assert "toy_ckpt_b: skipped — no analysis.json" in skipped
    rows = read_csv(res["toy_loss"].csv)
    logs = {d: [json.loads(x) for x in (tmp_path / "v" / "runs" / d / "log.jsonl").read_text().splitlines()]
            for d in "ab"}
    assert [(r["run_id"], float(r["final_loss"])) for r in rows] == [(d, logs[d][-1]["loss"]) for d in "ab"]
    assert res["toy_loss"].png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    index = json.loads((tmp_path / "figs" / "figures.json").read_text())
    listed = {f["name"]: f for f in index["figures"]}
    assert listed["toy_loss"]["caption"] == "Toy: final training loss of 2 run(s)."
    assert listed["toy_ckpt_a"]["csv"] == "toy_ckpt_a.csv"
    # run figures first (all runs, then per run), the toy after the package's own all-runs figures
    names = [f["name"] for f in index["figures"]]
    assert names.index("terminal_phase") < names.index("toy_loss") < names.index("toy_ckpt_a")
    from ncmargin import figures

    assert {"toy_loss", "toy_ckpt_<run>"} <= set(figures.FIGURE_NAMES)


def test_unregistered_figure_is_not_drawn(tmp_path, toys):
    write_run(tmp_path / "r", epochs=6, onset=3, with_analysis=False)
    unregister("toy_loss")
    res = make_figures([tmp_path / "r"], tmp_path / "figs")
    assert "toy_loss" not in {r.name for r in res} and "toy_loss" not in registry.REGISTRY


def test_package_figures_declare_everything():
    """The package's own figures, in the order of the quick preset's figures.json."""
    figs = [f for f in all_figures() if f.draw.__module__.startswith("ncmargin.figures.")]
    assert [f.name for f in figs] == ["terminal_phase", "pmin", "pmin_datasets", "nc_metrics", "ce_svm_deep", "bound_<run>",
                                      "ce_svm_fixed", "ce_svm_ufm", "alignment", "concentration", "predictors"]
    assert all(f.caption and f.inputs for f in figs)


def test_bad_declarations_are_refused():
    with pytest.raises(ValueError, match="inputs 'run' is not one of runs, claim1a, claim1b, sweeps"):
        Figure(name="x", inputs="run", caption="", draw=_draw_final_loss)
    with pytest.raises(ValueError, match="'<run>' in a name needs each=True"):
        Figure(name="x_<run>", inputs="runs", caption="", draw=_draw_final_loss)


def test_absent_input_kind_skips_its_figures_in_one_line(tmp_path, monkeypatch):
    _keep_only(monkeypatch, lambda f: f.inputs != "runs")
    write_run(tmp_path / "r", epochs=6, onset=3, with_analysis=False)
    skipped: list[str] = []
    make_figures([tmp_path / "r"], tmp_path / "figs", skipped=skipped)
    assert "alignment, concentration, predictors: skipped — no sweep.json among the inputs" in skipped
    assert "ce_svm_fixed: skipped — no claim1a/fixed_features.json among the inputs" in skipped
