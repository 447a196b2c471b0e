"""``ncmargin report``: report.md (verdict table, key numbers, figures) from saved results."""

from __future__ import annotations

HELP = "write report.md from a verify output directory (verdicts.json) or for a single run directory"
EXAMPLE = """
ncmargin report results/quick                        # rewrites results/quick/report.md
ncmargin report results/quick/runs/digits_wd0        # RUN/report.md: claims 1c and 2 on that run
ncmargin report /work/runs_standard --reference-out docs/results-standard.md --figures-dir docs/results-standard
                                                     # the reference result (verdicts, power, figures, versions)
"""


def add_arguments(p) -> None:
    p.add_argument("paths", nargs="+", metavar="OUT_OR_RUN",
                   help="a `ncmargin verify` output directory (has verdicts.json) or a run directory")
    p.add_argument("--reference-out", metavar="MD", default=None,
                   help="also write a reference-result document (verdict table with power and resolution, "
                        "figures, versions, wall time) for the one verify output directory given")
    p.add_argument("--figures-dir", metavar="DIR", default=None,
                   help="with --reference-out: copy the PNGs under 200 KB here and link them")


def run(args) -> int:
    from pathlib import Path

    from ncmargin.pipeline import write_report, write_run_report
    from ncmargin.store import CHECKPOINT_DIR, CONFIG_FILE, Verdicts

    if args.figures_dir and not args.reference_out:
        raise ValueError("--figures-dir goes with --reference-out MD; add it or drop --figures-dir")
    if args.reference_out:
        return _reference(args, Path, Verdicts)
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


def _reference(args, Path, Verdicts) -> int:
    import shlex

    from ncmargin.io import atomic_write_text
    from ncmargin.report import render_reference

    if len(args.paths) != 1 or not (Path(args.paths[0]) / Verdicts.FILE).is_file():
        raise ValueError("--reference-out needs exactly one verify output directory (with verdicts.json), "
                         f"got {args.paths}")
    out = Path(args.paths[0])
    doc = Verdicts.read(out / Verdicts.FILE)
    cmd = "ncmargin report " + " ".join(shlex.quote(a) for a in
                                         [str(out), "--reference-out", args.reference_out]
                                         + (["--figures-dir", args.figures_dir] if args.figures_dir else []))
    text = render_reference(out, doc, args.reference_out, command=cmd, figures_dir=args.figures_dir)
    atomic_write_text(Path(args.reference_out), text)
    print(args.reference_out)
    return 0
