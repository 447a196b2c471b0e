"""`ncmargin report OUT --reference-out MD`: the reference-result document is generated from stored files."""

from __future__ import annotations

import numpy as np
import pytest

from ncmargin.cli import main
from ncmargin.empirical.claims.claim3.claim import claim3_verdicts
from ncmargin.pipeline import write_verdicts

from .test_claim3_power import _doc


def test_reference_document_states_power_and_versions(tmp_path):
    out = tmp_path / "out"
    vs = claim3_verdicts(_doc(0.0, 0.8, seeds=3, A=4))
    write_verdicts(out, vs, preset="synthetic", extra={"timings": {"total_s": 12.5}, "versions": {"numpy": np.__version__}})
    (out / "figures").mkdir()
    from matplotlib import pyplot as plt

    plt.imsave(out / "figures" / "alignment.png", np.zeros((4, 4)))
    md = tmp_path / "docs" / "results-x.md"
    assert main(["report", str(out), "--reference-out", str(md), "--figures-dir", str(tmp_path / "docs" / "x")]) == 0
    text = md.read_text()
    assert "do not edit by hand" in text and f"ncmargin report {out}" in text
    assert "A×S = 4×3; MDE = " in text and "**inconclusive**" in text and "underpowered (MDE = " in text
    assert "12.5" in text and "numpy" in text
    assert "[alignment.png](x/alignment.png)" in text and (tmp_path / "docs" / "x" / "alignment.png").is_file()


def test_reference_needs_one_verify_directory(tmp_path):
    from types import SimpleNamespace

    from ncmargin.commands.report import run

    with pytest.raises(ValueError, match="exactly one verify output"):
        run(SimpleNamespace(paths=[str(tmp_path)], reference_out=str(tmp_path / "r.md"), figures_dir=None))
    assert not (tmp_path / "r.md").exists()
