"""`ncmargin report OUT` on a verify output directory holding claim-3 verdicts, from a tiny fixture (no sweep)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ncmargin.io import atomic_write_json

SWEEP_SCHEMA = "ncmargin.sweep/1"  # ncmargin.empirical.claims.claim3.SWEEP_SCHEMA (not imported here on purpose)
VERDICTS_SCHEMA = "ncmargin.verdicts/1"


def _fixture(out: Path, n_align: int = 4, n_seeds: int = 10) -> list[str]:
    """OUT/verdicts.json with one claim-3 verdict naming every run, and OUT/sweep/sweep.json without stats."""
    run_ids = [f"a{a}_s{s}" for a in range(n_align) for s in range(n_seeds)]
    runs = [{"run_id": f"a{a}_s{s}", "run_dir": str(out / "sweep" / "runs" / f"a{a}_s{s}"), "alignment": f"a{a}",
             "seed": s, "reached_tpt": True, "final_test_acc": 0.9}
            for a in range(n_align) for s in range(n_seeds)]
    atomic_write_json(out / "sweep" / "sweep.json", {
        "schema": SWEEP_SCHEMA, "alignment_mode": "perm", "alignments": [{"id": f"a{a}"} for a in range(n_align)],
        "seeds": list(range(n_seeds)), "runs": runs, "excluded": [], "stats": {"error": "fixture: no statistics"},
        "timings": {"total_s": 1.5}})
    verdict = {"claim": "3", "id": "3.alignment_effect", "statement": "alignment changes the test accuracy",
               "statistic": "permutation p", "value": None, "threshold": 0.05, "verdict": "inconclusive",
               "runs": run_ids, "detail": {"reason": "fixture"}}
    atomic_write_json(out / "verdicts.json", {"schema": VERDICTS_SCHEMA, "preset": "fixture", "created": "now",
                                              "ncmargin_version": "0", "verdicts": [verdict]})
    return run_ids


def _report_in_fresh_process(out: Path) -> str:
    """Run `python -m ncmargin report OUT` in a new interpreter, so that nothing this test process imported
    (e.g. ncmargin.empirical.claims.claim3 through other tests) can register the claim-3 section."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    res = subprocess.run([sys.executable, "-m", "ncmargin", "report", str(out)], capture_output=True, text=True,
                         check=False, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    return (out / "report.md").read_text()


def test_report_command_alone_renders_claim3_section(tmp_path):
    _fixture(tmp_path)
    text = _report_in_fresh_process(tmp_path)
    section = text.split("## Claim 3", 1)[1].split("\n## ", 1)[0]
    # written only by the claim-3 plugin's section (ncmargin.empirical.claims.claim3.claim.section)
    assert "Sweep `sweep/sweep.json`: 4 alignments (perm) × 10 seeds, 40 runs, 0 excluded" in section
    assert "No statistics: fixture: no statistics" in section


def test_verdict_table_shortens_long_run_lists(tmp_path):
    import json

    from ncmargin.pipeline import write_report
    from ncmargin.report import MAX_RUN_IDS, runs_cell

    run_ids = _fixture(tmp_path)
    text = write_report(tmp_path).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| 3 | `3.alignment_effect`"))
    assert row.rstrip().endswith(f"| {', '.join(run_ids[:MAX_RUN_IDS])}, … (+{40 - MAX_RUN_IDS} more) |")
    assert run_ids[MAX_RUN_IDS] not in row
    # verdicts.json keeps every id
    assert json.loads((tmp_path / "verdicts.json").read_text())["verdicts"][0]["runs"] == run_ids
    # short lists are shown whole
    assert runs_cell(["a", "b", "c"]) == "a, b, c" and runs_cell([]) == "" and runs_cell(None) == ""
    assert runs_cell(["a", "b", "c", "d"]) == "a, b, c, … (+1 more)"
