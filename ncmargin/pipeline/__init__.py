"""The pipeline (docs/architecture.md): ``verify`` = preset → claims → figures → report
(:mod:`.core`), and ``verify --runs`` on run directories recorded anywhere (:mod:`.runs`)."""

from .core import (
    SCHEMA,
    VerifyContext,
    check_numbers,
    check_preset,
    list_verify_presets,
    load_preset,
    make_figures,
    parse_claims,
    read_verdicts,
    resolve_run_config,
    verify,
    write_report,
    write_run_report,
    write_verdicts,
)
from .runs import verify_runs

__all__ = ["SCHEMA", "VerifyContext", "check_numbers", "check_preset", "list_verify_presets", "load_preset",
           "make_figures", "parse_claims", "read_verdicts", "resolve_run_config", "verify", "verify_runs",
           "write_report", "write_run_report", "write_verdicts"]
