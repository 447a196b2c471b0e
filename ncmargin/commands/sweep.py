"""``ncmargin sweep``: claim-3 alignment × seed sweep with a fixed simplex-ETF head (docs/sweeps.md)."""

from __future__ import annotations

HELP = "claim 3: train an alignment x seed sweep with a fixed ETF head, then ANOVA/permutation test + predictors"
EXAMPLE = """\
ncmargin sweep sweep_quick --out runs/sweep --jobs 2                  # 8 alignments x 3 seeds on digits
ncmargin sweep quick_digits --alignments 4 --seeds 2 --set epochs=100 --out runs/sw
ncmargin sweep sweep_paper_cifar10 --out /scratch/sw --print-commands > cmds.txt   # for a SLURM array
ncmargin sweep sweep_paper_cifar10 --out /scratch/sw --no-train       # collect + statistics afterwards"""


def add_arguments(p) -> None:
    p.add_argument("config", nargs="?", default="sweep_quick",
                   help="sweep preset (sweep_quick, sweep_paper_cifar10, ...) or a training preset/JSON "
                        "(its head is set to the fixed ETF); default sweep_quick")
    p.add_argument("--alignments", type=int, default=None, metavar="A",
                   help="number of alignments (alignment 0 = identity); default from the preset (8)")
    p.add_argument("--seeds", default=None, metavar="S",
                   help="number of seeds (0..S-1) or a comma list, e.g. 0,1,2; default from the preset (3)")
    p.add_argument("--alignment-mode", choices=("perm", "rotation", "both"), default=None,
                   help="what an alignment changes: the label permutation (default), the frame rotation, or both")
    p.add_argument("--base-rotation-seed", type=int, default=None,
                   help="rotation seed of the shared frame (-1 = canonical frame); default from the preset (0)")
    p.add_argument("--jobs", type=int, default=1, help="parallel training processes (1 torch thread each)")
    p.add_argument("--out", default="runs/sweep", help="sweep directory: one run dir per (alignment, seed) + "
                   "sweep.json (default runs/sweep)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="training-config override for every run (repeatable), e.g. --set epochs=100")
    p.add_argument("--print-commands", action="store_true",
                   help="write OUT/plan/*.json and OUT/commands.txt, print one `ncmargin train` command per run "
                        "still to do (for a cluster), and exit without training")
    p.add_argument("--no-train", action="store_true",
                   help="do not train: collect the runs that exist (missing ones are reported as excluded)")
    p.add_argument("--no-concentration", action="store_true", help="skip the concentration check")
    p.add_argument("--n-perm", type=int, default=None, help="permutations of the permutation test (default 9999)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")


def run(args) -> int:
    import sys

    from ncmargin.empirical.claims.claim3.sweep import plan_sweep, run_sweep, train_commands, write_plan

    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    kw = {"alignments": args.alignments, "seeds": args.seeds, "alignment_mode": args.alignment_mode,
              "base_rotation_seed": args.base_rotation_seed, "overrides": list(args.overrides) or None}
    if args.jobs < 1:
        raise ValueError(f"--jobs {args.jobs}: give at least 1")
    if args.print_commands:
        plan = plan_sweep(args.config, args.out, jobs=args.jobs, **kw)
        path = write_plan(plan)
        for c in train_commands(plan):
            print(c)
        log(f"[sweep] {len(plan['runs'])} runs planned; commands also in {path}; afterwards run "
            f"`ncmargin sweep {args.config} --out {args.out} --no-train` (same options) to collect")
        return 0
    stats = {"n_perm": args.n_perm} if args.n_perm else None
    doc = run_sweep(args.config, args.out, jobs=args.jobs, train=not args.no_train,
                    concentration=not args.no_concentration, statistics=stats, log=log, **kw)
    st = doc["stats"]
    print(f"sweep: {args.out}/sweep.json  runs: {len(doc['runs'])}  excluded: {len(doc['excluded'])}  "
          f"wall: {doc['timings'].get('total_s', float('nan')):.1f}s")
    for e in doc["excluded"]:
        print(f"  excluded {e['run_id']}: {e['reason']}")
    if st.get("anova"):
        an, pm = st["anova"], st["permutation"]
        print(f"alignment: ANOVA p = {an['p_alignment']:.4g}, permutation p = {pm['p_value']:.4g}, "
              f"eta2 = {an['eta2_alignment']:.3f}, omega2 = {an['omega2_alignment']:.3f}; seed: ANOVA p = "
              f"{an['p_seed']:.4g}, eta2 = {an['eta2_seed']:.3f}, omega2 = {an['omega2_seed']:.3f}")
        print(f"claim-3 outcome: {st['verdict']['outcome']}  [{st['verdict']['rule']}]")
    else:
        print(f"no statistics: {st.get('error')}")
    for name, c in (st.get("predictor_correlations") or {}).items():
        def f(v):
            return "nan" if v is None else f"{v:.3f}"
        print(f"  {name}: Spearman rho across alignments = {f(c.get('rho'))} (p = {f(c.get('p'))}, "
              f"CI [{f(c.get('ci_low'))}, {f(c.get('ci_high'))}]); across runs = {f(c['runs'].get('rho'))}")
    conc = doc.get("concentration") or {}
    for k, v in (conc.get("summary") or {}).items():
        print(f"  concentration {k}: bound held at {v['held']}/{v['points']} grid points "
              f"({v['held_nontrivial']}/{v['nontrivial_points']} where the bound is < 1)")
    # exit 1 when a planned run is missing, incomplete or failed (a run that trained but never reached
    # 100% train accuracy is a result, not a failure: exit 0)
    return 1 if any(r.get("status") != "complete" for r in doc["runs"]) else 0
