"""Claim 3, non-conservative generalization: alignment × seed sweeps with a fixed simplex-ETF head
(docs/theory.md §8, §10). :mod:`.sweep` plans, trains and collects a sweep; :mod:`.stats` and
:mod:`.concentration` compute; :mod:`.claim` registers the claim (settings, verdicts, report section)."""

from __future__ import annotations

from .claim import Settings, claim3_verdicts, section
from .concentration import CONCENTRATION_DEFAULTS, concentration_experiment
from .stats import RULE, omega_squared, predictor_correlations, rank_rho, sweep_statistics
from .sweep import (
    PLAN_SCHEMA,
    SWEEP_SCHEMA,
    collect_run,
    collect_sweep,
    list_sweep_presets,
    load_sweep_preset,
    make_alignments,
    plan_sweep,
    read_sweep_json,
    run_sweep,
    train_commands,
    write_plan,
)

__all__ = ["CONCENTRATION_DEFAULTS", "PLAN_SCHEMA", "RULE", "SWEEP_SCHEMA", "Settings", "claim3_verdicts",
           "collect_run", "collect_sweep", "concentration_experiment", "list_sweep_presets", "load_sweep_preset",
           "make_alignments", "omega_squared", "plan_sweep", "predictor_correlations", "rank_rho", "read_sweep_json",
           "run_sweep", "section", "sweep_statistics", "train_commands", "write_plan"]
