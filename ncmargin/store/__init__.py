"""The disk owner: run-directory layout, log reading, onset, run identity and status, typed result
records with schema ids, presets, and the provenance recorded with every result.

Everyone may import it; it imports numpy, the standard library and ``ncmargin.io`` only (never
theory, solvers, empirical, figures or the report). Formats: docs/formats.md (the run directory) and
docs/results.md (the result files, generated from :mod:`ncmargin.store.records`).
"""

from .identity import NON_IDENTITY_KEYS, RESUMABLE_KEYS, RunMismatchError, check_same_run, identity_diff
from .presets import (
    PRESET_DIR,
    UnknownKeyError,
    check_keys,
    find_preset,
    list_presets,
    read_preset,
    settings_from,
)
from .record import F, Record, SchemaError, describe
from .records import (
    VERDICT_VALUES,
    Analysis,
    AnalysisSettings,
    CheckpointAnalysis,
    FigureEntry,
    FiguresIndex,
    FrozenComplexity,
    SvmComparison,
    Sweep,
    SweepRun,
    Verdict,
    Verdicts,
)
from .rundir import (
    ANALYSIS_FILE,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    LOG_FILE,
    SUMMARY_FILE,
    Checkpoint,
    LogError,
    Run,
    append_log,
    checkpoint_path,
    is_run_dir,
    list_checkpoints,
    load_checkpoint,
    load_run,
    log_path,
    model_path,
    onset_epoch,
    reached_full_accuracy,
    read_log,
    read_meta,
    read_summary,
    read_train_config,
    rewrite_log,
    run_status,
    state_path,
    terminal_onset,
    write_summary,
)
from .runtime import git_commit, log_spaced, thread_limits, versions

__all__ = [
    "ANALYSIS_FILE", "CHECKPOINT_DIR", "CONFIG_FILE", "LOG_FILE", "NON_IDENTITY_KEYS", "PRESET_DIR",
    "RESUMABLE_KEYS", "SUMMARY_FILE", "VERDICT_VALUES",
    "Analysis", "AnalysisSettings", "Checkpoint", "CheckpointAnalysis", "F", "FigureEntry", "FiguresIndex",
    "FrozenComplexity", "LogError", "Record", "Run", "RunMismatchError", "SchemaError", "SvmComparison", "Sweep",
    "SweepRun", "UnknownKeyError", "Verdict", "Verdicts",
    "append_log", "check_keys", "check_same_run", "checkpoint_path", "describe", "find_preset", "git_commit",
    "identity_diff", "is_run_dir", "list_checkpoints", "list_presets", "load_checkpoint", "load_run", "log_path",
    "log_spaced", "model_path", "onset_epoch", "reached_full_accuracy", "read_log", "read_meta", "read_preset",
    "read_summary", "read_train_config", "rewrite_log", "run_status", "settings_from", "state_path",
    "terminal_onset", "thread_limits", "versions", "write_summary",
]
