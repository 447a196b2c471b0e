"""``ncmargin report``: report.md (verdict table, key numbers, figures) from saved results."""

from __future__ import annotations

HELP = "write report.md from a verify output directory (verdicts.json) or for a single run directory"
EXAMPLE = """
ncmargin report results/quick                        # rewrites results/quick/report.md
ncmargin report results/quick/runs/digits_wd0        # RUN/report.md: claims 1c and 2 on that run
"""


def add_arguments(p) -> None:
    p.add_argument("paths", nargs="+", metavar="OUT_OR_RUN",
                   help="a `ncmargin verify` output directory (has verdicts.json) or a run directory")


def run(args) -> int:
    from pathlib import Path

    from ncmargin.pipeline import write_report, write_run_report
    from ncmargin.store import CHECKPOINT_DIR, CONFIG_FILE, Verdicts

    for path in args.paths:
        p = Path(path)
        if (p / Verdicts.FILE).is_file():
            print(write_report(p))
        elif (p / CONFIG_FILE).is_file() and (p / CHECKPOINT_DIR).is_dir():
            print(write_run_report(p))
        elif not p.exists():
            raise FileNotFoundError(f"{p}: no such directory")
        else:
            raise ValueError(f"{p}: neither a verify output directory (no verdicts.json) nor a run directory "
                             "(no config.json + checkpoints/); run `ncmargin verify --out DIR` or "
                             "`ncmargin train` first")
    return 0
