"""``ncmargin analyze``: per-checkpoint SVM comparison, margins, NC metrics and bounds of a run."""

from __future__ import annotations

from ncmargin.errors import positive_float

HELP = "per-checkpoint SVM, margins, NC metrics and margin bounds of a run -> RUN/analysis.json"
EXAMPLE = """
ncmargin analyze results/quick/runs/digits_wd0
ncmargin analyze RUN --force --svm-epochs all      # recompute, SVM at every checkpoint
"""


def add_arguments(p) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="RUN", help="run directory written by `ncmargin train`")
    p.add_argument("--force", action="store_true", help="recompute checkpoints already in analysis.json")
    from ncmargin.store import AnalysisOptions

    default = AnalysisOptions()
    p.add_argument("--svm-tol", type=positive_float, default=default.svm_tol,
                   help=f"SVM max-violation tolerance (default {default.svm_tol:g})")
    p.add_argument("--svm-epochs", default=default.svm_epochs,
                   help="where to solve the SVM: terminal (default; epochs >= onset of 100%% train accuracy), "
                        "all, or a comma-separated list of epochs")
    p.add_argument("--no-spectral", action="store_true",
                   help="skip the whole-network spectral complexity (needs the saved model weights)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args) -> int:
    import sys

    from ncmargin.empirical.analysis import analyze_run

    se = args.svm_epochs
    if se not in ("terminal", "all"):
        try:
            se = [int(v) for v in se.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--svm-epochs {args.svm_epochs!r}: use terminal, all, or epochs like 10,20,50") \
                from None
    failed = 0
    for rd in args.run_dirs:
        res = analyze_run(rd, svm_tol=args.svm_tol, force=args.force, svm_epochs=se,
                          spectral=not args.no_spectral, quiet=args.quiet,
                          log=None if args.quiet else print)
        last = res.checkpoints[-1]
        svm = last.svm or {}
        print(f"{rd}: {len(res.checkpoints)} checkpoints ({res.reused_checkpoints} reused), onset epoch "
              f"{res.onset_epoch}; last epoch {last.epoch}: test acc {last.test_acc:.4f}, "
              f"p_min {last.p_min:.4g}, angle to W* {svm.get('angle_deg', float('nan')):.3g} deg, "
              f"margin ratio {svm.get('margin_ratio', float('nan')):.4g} -> {rd}/analysis.json")
        # a damaged file costs only its checkpoint's entry, but the exit code says something failed
        for ep, err in (res.get("skipped_checkpoints") or {}).items():
            failed += 1
            print(f"ncmargin analyze: warning: {rd} epoch {ep} skipped: {err}", file=sys.stderr)
        for row in res["checkpoints"]:
            err = ((row.get("bound") or {}).get("spectral") or {}).get("error") or ""
            if err.startswith("spectral complexity failed"):
                failed += 1
                print(f"ncmargin analyze: warning: {rd} epoch {row['epoch']}: {err}", file=sys.stderr)
    return 1 if failed else 0
