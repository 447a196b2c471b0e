"""``ncmargin figures``: regenerate every figure from saved results (never trains)."""

from __future__ import annotations

HELP = "draw every figure (PNG + PDF + CSV of the plotted numbers) from saved runs, verify or sweep results"
EXAMPLE = """\
ncmargin figures results/quick                  # a verify output dir -> results/quick/figures
ncmargin figures RUN_A RUN_B                     # run dirs; figures go to RUN_A/figures
ncmargin figures results/quick/sweep --out figs  # an alignment sweep (sweep.json)"""


def add_arguments(p) -> None:
    p.add_argument("paths", nargs="+", metavar="RUN_OR_SWEEP",
                   help="run directories, a sweep directory, a `verify` output directory, or result files")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default: <first path>/figures)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first figure that fails to draw (default: report it and draw the rest)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def run(args) -> int:
    import logging
    import sys
    from pathlib import Path

    from ncmargin.figures import make_figures

    first = Path(args.paths[0])
    out = Path(args.out) if args.out else (first.parent if first.is_file() else first) / "figures"
    skipped: list[str] = []
    results = make_figures(args.paths, out, skipped=skipped, strict=args.strict)
    if not args.quiet:
        for r in results:
            print(f"{r.png}  (+ .pdf, .csv)")
        for s in skipped:
            print(f"  {s}")
        print(f"{len(results)} figure(s) in {out}")
    failed = [s for s in skipped if ": FAILED" in s]
    for s in failed:
        print(f"ncmargin figures: {s}", file=sys.stderr)
    if not results:
        logging.getLogger("ncmargin.figures").warning("no figure could be drawn from %s", args.paths)
        return 1
    return 1 if failed else 0
