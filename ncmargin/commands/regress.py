"""``ncmargin regress``: the numeric regression suite (golden values; docs/theory.md §11)."""

from __future__ import annotations

HELP = "run the numeric regression suite against stored golden values (or --update them on purpose)"
EXAMPLE = """ncmargin regress                       # all cases; table of quantity, golden, now, difference, tolerance
ncmargin regress --only nc_metrics,svm_hard --failures-only
ncmargin regress --list
ncmargin regress --update --only bounds   # rewrite that golden deliberately and show what changed"""


def add_arguments(p) -> None:
    p.add_argument("--update", action="store_true",
                   help="recompute the selected cases and rewrite their goldens (atomically); prints what "
                        "changed. Commit the new goldens only after checking the change is intended")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only these cases (repeat or comma-separate); see --list")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--failures-only", action="store_true", help="print only failing rows of the table")
    p.add_argument("--golden-dir", default=None, metavar="DIR",
                   help="golden directory (default: the packaged ncmargin/regression/goldens); its inputs/ "
                        "subdirectory holds the stored input files")


def _selected(args) -> list[str]:
    from ncmargin.regression import case_names, get_case

    if not args.only:
        return case_names()
    names = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    for n in names:
        get_case(n)  # ValueError naming the valid cases
    return names


def run(args) -> int:
    from pathlib import Path

    from ncmargin import regression as R

    gdir = Path(args.golden_dir) if args.golden_dir else None
    if args.list:
        for name, case in R.CASES.items():
            print(f"{name:20s} {case.description}")
        return 0
    names = _selected(args)
    if gdir is not None and not args.update and not gdir.is_dir():
        raise ValueError(f"--golden-dir {gdir}: no such directory; omit --golden-dir to use the packaged goldens "
                         f"({R.GOLDEN_DIR}), or record new ones there with `ncmargin regress --update "
                         f"--golden-dir {gdir}`")
    if args.update:
        total = 0
        for n in names:
            changed = R.update_case(n, gdir)
            total += len(changed)
            if changed:
                print(f"{n}: golden rewritten; {len(changed)} quantities changed (verdict column: new, "
                      f"removed, changed = within tolerance, CHANGED = beyond it, tol = tolerance only):")
                print(R.format_table(changed))
            else:
                print(f"{n}: golden rewritten; no quantity changed")
        print(f"updated {len(names)} golden(s) in {gdir or R.GOLDEN_DIR}; {total} quantities changed "
              f"(review with `git diff --stat`, then commit)")
        return 0
    results = R.run_suite(names, gdir)
    rows = [r for res in results for r in res.rows]
    shown = [r for r in rows if not r.ok or r.label == "new"] if args.failures_only else rows
    if shown:
        print(R.format_table(shown))
    n_fail = sum(not r.ok for r in rows)
    bad = [res for res in results if not res.ok]
    for res in results:
        if not res.ok or res.new:
            print()
            print(res.failure_report())
    secs = sum(res.seconds for res in results)
    n_new = sum(len(res.new) for res in results)
    print()
    print(f"{len(results)} cases, {len(rows)} quantities: {len(rows) - n_fail} ok ({n_new} new, not in the "
          f"golden), {n_fail} failed; {len(bad)} case(s) failed ({', '.join(r.case for r in bad) or 'none'}); "
          f"{secs:.1f} s")
    return 1 if bad else 0
