"""``ncmargin verify``: all claims end to end (train what is missing, analyse, verdicts, report)."""

from __future__ import annotations

HELP = "train what is missing, analyse, and write verdicts.json and report.md for every claim"
EXAMPLE = """
ncmargin verify --preset quick --out results/quick          # every claim (1a, 1b, 1c, 2, 3), CPU
ncmargin verify --preset quick --claims 1c,2 --out results/quick   # reuses the trained runs
ncmargin verify --preset paper --device cuda --out results/paper --jobs 2
ncmargin verify --runs runs/mine runs/theirs --out results/mine   # claims 1c, 2 on recorded runs
"""


def add_arguments(p) -> None:
    p.add_argument("--preset", default=None,
                   help="verify preset: quick (digits, CPU, ~2 min idle), standard (MNIST-5k, CPU), paper (CIFAR-10/100 ResNet-18, GPU), or "
                        "a JSON file (default: quick)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None,
                   help="training device (default: the preset's)")
    p.add_argument("--out", default=None, help="output directory (default: results/<preset>)")
    p.add_argument("--claims", default=None,
                   help="comma-separated claim ids to evaluate, e.g. 1a,1b,1c,2,3 (default: the preset's, all)")
    p.add_argument("--jobs", type=int, default=None,
                   help="training runs in parallel processes (default: the preset's; quick: 2)")
    p.add_argument("--force-analysis", action="store_true",
                   help="recompute the per-checkpoint analysis even where analysis.json has it")
    p.add_argument("--no-figures", action="store_true", help="do not call ncmargin.figures")
    p.add_argument("--quiet", action="store_true", help="no progress output (for CI)")
    p.add_argument("--runs", nargs="+", default=None, metavar="DIR",
                   help="judge claims 1c and 2 (and 3 on fixed-ETF runs with alignment/seed labels) on these run "
                        "directories (Recorder, ncmargin extract or ncmargin train) instead of training a preset's "
                        "runs; --preset then only supplies settings if given")


def run(args) -> int:
    from ncmargin.pipeline import verify

    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs {args.jobs}: give a positive number of parallel training runs")
    if args.runs:
        from ncmargin.pipeline import verify_runs

        doc = verify_runs(args.runs, args.out, claims=args.claims, preset=args.preset,
                          quiet=args.quiet, figures=not args.no_figures, force_analysis=args.force_analysis)
    else:
        doc = verify(args.preset or "quick", args.out, device=args.device, claims=args.claims, jobs=args.jobs,
                     quiet=args.quiet, figures=not args.no_figures, force_analysis=args.force_analysis)
    width = max((len(v["id"]) for v in doc["verdicts"]), default=10)
    for v in doc["verdicts"]:
        val = v.get("value")
        val = "-" if val is None else f"{val:.4g}"
        print(f"{v['verdict']:<13} {v['id']:<{width}}  {val:>10}  ({v['threshold']})")
    tm = doc.get("timings", {}).get("total_s")
    print(f"verdicts.json and report.md written ({tm:.0f} s)" if tm else "verdicts.json and report.md written")
    # exit 1 when a verdict records an error (a run or claim that could not be evaluated), else 0
    from ncmargin.verdict_merge import exit_status, failed_verdicts, skipped_checkpoints

    rc = exit_status(doc)
    if rc:
        import sys

        failed = failed_verdicts(doc) or list(doc.get("errors") or {})
        if failed:
            print(f"errors: {', '.join(failed)} (see their detail in verdicts.json); exit code 1", file=sys.stderr)
        for run, eps in skipped_checkpoints(doc).items():
            print(f"run {run} judged without its unreadable checkpoint(s) at epoch {', '.join(sorted(eps, key=int))} "
                  f"({next(iter(eps.values()))}); see skipped_checkpoints in verdicts.json; exit code 1",
                  file=sys.stderr)
    return rc
